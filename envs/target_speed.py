"""Locomotion with a hidden target-speed reward: tasks where what the rater wants is not the env's usual reward.

PARL's benchmark asks for MuJoCo and PyBullet tasks "with a hidden true reward that the rater prefers (e.g. a
target speed)". :class:`TargetSpeedReward` keeps every term of a locomotion reward except forward progress,
which it replaces by speed tracking, ``weight * (target - |v - target|)``: the same value as the original term
at the target speed, less on either side of it. The env's reward (what Monitor logs, what evaluation reports,
what the synthetic raters compare) is this hidden reward; a preference learner never sees it.

- MuJoCo (Hopper-v4, HalfCheetah-v4): ``v`` is ``info["x_velocity"]``, the replaced term is the env's forward
  reward ``forward_reward_weight * v``.
- PyBullet locomotors (HopperBulletEnv-v0): ``v`` is the torso's x speed (``robot.robot_body.speed()[0]``); the
  replaced term is ``progress`` (the change of the potential ``-distance to the walk target / dt``, which is
  the speed towards the target), weight 1.

Registered (``import envs``): ``HopperTargetSpeed-v4`` (1 m/s), ``HalfCheetahTargetSpeed-v4`` (3 m/s),
``HopperBulletTargetSpeed-v0`` (1 m/s), each with the base task's 1000-step limit. The targets sit well
below what PPO reaches on the usual reward (Hopper ~2.5 m/s, HalfCheetah ~5 m/s at a return of 3000 and 5000),
so running as fast as possible is not what the rater wants.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

TARGET_SPEEDS: dict[str, tuple[str, float]] = {
    "HopperTargetSpeed-v4": ("Hopper-v4", 1.0),
    "HalfCheetahTargetSpeed-v4": ("HalfCheetah-v4", 3.0),
    "HopperBulletTargetSpeed-v0": ("HopperBulletEnv-v0", 1.0),
}
"""Registered id -> (base task, target speed in m/s)."""

SPEED_KEY = "x_velocity"
TRACKING_KEY = "reward_speed_tracking"
ORIGINAL_REWARD_KEY = "original_reward"


class TargetSpeedReward(gym.Wrapper):
    """Replaces a locomotion reward's forward term by target-speed tracking (see the module docstring).

    ``info`` gains ``x_velocity`` (PyBullet too), ``reward_speed_tracking`` and ``original_reward``.
    """

    def __init__(self, env: gym.Env, target_speed: float) -> None:
        super().__init__(env)
        if not target_speed > 0:
            raise ValueError(f"target_speed must be > 0 m/s, got {target_speed!r}.")
        unwrapped = env.unwrapped
        self.bullet = hasattr(unwrapped, "robot") and type(unwrapped).__module__.startswith("pybullet_envs")
        if not self.bullet and not hasattr(unwrapped, "_forward_reward_weight"):
            raise ValueError(f"{type(unwrapped).__name__} is not a MuJoCo or PyBullet locomotion task: it has no "
                             "forward term to replace by target-speed tracking.")
        self.target_speed = float(target_speed)
        self.weight = 1.0 if self.bullet else float(unwrapped._forward_reward_weight)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        unwrapped = self.env.unwrapped
        if self.bullet:
            speed = float(unwrapped.robot.robot_body.speed()[0])
            forward = float(unwrapped.rewards[1])  # progress
        else:
            speed = float(info[SPEED_KEY])
            forward = self.weight * speed
        tracking = self.weight * (self.target_speed - abs(speed - self.target_speed))
        info = {**info, SPEED_KEY: speed, TRACKING_KEY: tracking, ORIGINAL_REWARD_KEY: float(reward)}
        return observation, float(reward) - forward + tracking, terminated, truncated, info


def make_target_speed_env(base_id: str, target_speed: float, **kwargs: Any) -> gym.Env:
    """The base task (without its registered wrappers: the new id adds its own time limit) with the hidden
    target-speed reward."""
    if base_id.endswith("BulletEnv-v0"):
        import pybullet_envs_gymnasium  # noqa: F401 - registers the PyBullet envs
    return TargetSpeedReward(gym.make(base_id, **kwargs).unwrapped, target_speed)
