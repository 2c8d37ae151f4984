"""The reward terms a task's reward is the sum of, written into ``info`` so that raters can weigh them.

The intransitive rater needs at least three reward terms (three voters), and a recorder that runs inside a
SubprocVecEnv can only read what the env puts in ``info``. Gymnasium's MuJoCo envs differ by version:
HalfCheetah-v4 reports ``reward_run`` and ``reward_ctrl``, Hopper-v4 and Walker2d-v4 report none (only
``x_velocity``), the v5 envs report ``reward_forward``, ``reward_ctrl`` and (Hopper, Walker2d, Ant)
``reward_survive``; PyBullet's locomotors keep their five terms in ``env.unwrapped.rewards`` (alive,
progress, electricity, joints at limit, feet collision) and put nothing in ``info``.

:class:`RewardTermsInInfo` writes ``info["reward_<term>"]`` for each term of :func:`reward_term_names`, from
the env's own weights, so that the terms always sum to the env's reward (checked on every step):

- MuJoCo locomotion: ``reward_forward`` (forward weight x ``x_velocity``, or the env's own
  ``reward_forward`` / ``reward_run``), ``reward_ctrl`` (the env's, or ``-ctrl_cost_weight * |a|^2``), and
  ``reward_survive`` = the rest (the healthy reward; zero for HalfCheetah);
- HalfCheetah (no survival term): the control cost split into back leg (actions 0-2) and front leg
  (3-5), ``reward_ctrl_back`` and ``reward_ctrl_front``, so that the task has three terms too;
- PyBullet locomotors: ``reward_alive``, ``reward_progress``, ``reward_electricity``,
  ``reward_joints_at_limit``, ``reward_feet_collision``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

BULLET_TERMS = (
    "reward_alive", "reward_progress", "reward_electricity", "reward_joints_at_limit", "reward_feet_collision"
)
CHEETAH_TERMS = ("reward_forward", "reward_ctrl_back", "reward_ctrl_front")
SURVIVAL_TERMS = ("reward_forward", "reward_ctrl", "reward_survive")
_SUM_TOLERANCE = 1e-4


class NoRewardTermsError(ValueError):
    """The env's reward cannot be split into terms (not a MuJoCo or PyBullet locomotion task)."""


def _kind(env: gym.Env) -> str:
    unwrapped = env.unwrapped
    if hasattr(unwrapped, "robot") and type(unwrapped).__module__.startswith("pybullet_envs"):
        return "bullet"  # its step() sets ``rewards``, the list of the five terms
    if hasattr(unwrapped, "_ctrl_cost_weight") and hasattr(unwrapped, "_forward_reward_weight"):
        return "cheetah" if "cheetah" in type(unwrapped).__name__.lower() else "survival"
    env_id = env.spec.id if env.spec is not None else type(unwrapped).__name__
    raise NoRewardTermsError(
        f"{env_id} is not a MuJoCo or PyBullet locomotion task, so its reward has no known terms; pass reward "
        "terms the env reports in info, or a rater that compares true returns (--rater bt or noisy)"
    )


def reward_term_names(env: gym.Env) -> tuple[str, ...]:
    """The ``info`` keys :class:`RewardTermsInInfo` writes for this env."""
    return {"bullet": BULLET_TERMS, "cheetah": CHEETAH_TERMS, "survival": SURVIVAL_TERMS}[_kind(env)]


class RewardTermsInInfo(gym.Wrapper):
    """Adds the reward's terms to ``info`` (see the module docstring); the reward itself is unchanged."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.kind = _kind(env)
        self.term_names = reward_term_names(env)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        info = dict(info)
        info.update(zip(self.term_names, self._terms(np.asarray(action, dtype=np.float64), info, float(reward))))
        return observation, reward, terminated, truncated, info

    def _terms(self, action: np.ndarray, info: dict[str, Any], reward: float) -> list[float]:
        unwrapped = self.env.unwrapped
        if self.kind == "bullet":
            terms = [float(term) for term in unwrapped.rewards]
        else:
            forward = info.get("reward_forward", info.get("reward_run"))
            if forward is None:
                forward = unwrapped._forward_reward_weight * float(info["x_velocity"])
            squares = np.square(action)
            weight = float(unwrapped._ctrl_cost_weight)
            if self.kind == "cheetah":
                terms = [float(forward), -weight * float(np.sum(squares[:3])), -weight * float(np.sum(squares[3:]))]
            else:
                ctrl = float(info.get("reward_ctrl", -weight * float(np.sum(squares))))
                terms = [float(forward), ctrl, reward - float(forward) - ctrl]
        if abs(sum(terms) - reward) > _SUM_TOLERANCE * max(1.0, abs(reward)):
            raise NoRewardTermsError(
                f"the reward terms {dict(zip(self.term_names, terms))} do not sum to the reward {reward}: this env's "
                "reward is not the locomotion reward RewardTermsInInfo knows; pass a rater on true returns"
            )
        return terms
