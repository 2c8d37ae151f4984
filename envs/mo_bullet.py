"""Multi-objective PyBullet locomotion: HalfCheetah (speed vs energy) and Hopper (speed vs jump height).

What: :class:`MOHalfCheetahBullet` and :class:`MOHopperBullet` are pybullet_envs_gymnasium's
``HalfCheetahBulletEnv-v0`` and ``HopperBulletEnv-v0`` (real PyBullet physics, same robots, observations,
actions, termination) whose ``step`` returns a 2-vector reward (``np.float32``), with mo-gymnasium's interface:
a ``reward_space`` Box of shape (2,) and ``reward_dim = 2`` on the env itself (``env.unwrapped``), as
mo-gymnasium's ``mo-halfcheetah-v5`` and ``mo-hopper-2obj-v5`` have.

Why: they are the PyBullet multi-objective tasks of C-MORL's benchmarks (registered as
``mo-halfcheetah-bullet-v0`` and ``mo-hopper-bullet-v0`` in :mod:`envs`), the PyBullet counterparts of
mo-gymnasium's MuJoCo tasks, whose objectives they copy term for term.

Objectives:

- HalfCheetah, ``[x_velocity, -control_cost]``, as ``mo-halfcheetah-v5``:

  0. ``x_velocity = (x_after - x_before) / dt``: the torso's x displacement over the step divided by the step's
     duration (``dt = 4 x 0.0165 / 4 = 0.0165`` s). This is mo-halfcheetah's ``x_velocity`` (its root x, the
     torso, before and after the step over ``dt``). PyBullet's own ``progress`` term is *not* used: it is
     the rate of approach of the mean x of every entry of ``robot.parts`` to a target 1 km ahead, and that
     dict also holds the static floor and the slider joints' dummy links, so it is a diluted (16/17 for the
     cheetah), leg-swing-weighted speed, and on the first step after the env's first reset its old potential
     was computed before the floor was added. It stays in ``info["progress"]``.
  1. ``-control_cost = -sum(action ** 2)``: mo-halfcheetah's objective exactly (its ``reward_ctrl`` divided by
     the control-cost weight), on the action as passed to ``step`` (PyBullet clips it to [-1, 1] before
     applying torques; the action space is [-1, 1]). PyBullet's ``electricity_cost``
     (``-2 mean|a * joint_speed| - 0.1 mean(a^2)``) is not used: it is a different quantity (mechanical
     power, depends on joint speeds) with no counterpart in mo-gymnasium; it stays in ``info``.

- Hopper, ``[x_velocity + healthy + ctrl, 10 * z_distance + healthy + ctrl]``, as ``mo-hopper-2obj-v5``:
  ``x_velocity`` as above, ``z_distance`` = torso height minus its height at reset, ``healthy`` = 1 while the
  hopper is upright (PyBullet's alive bonus is +1) and 0 on the step where it falls (PyBullet's -1, which
  terminates the episode; Gymnasium's Hopper gives 0 there too), ``ctrl = -1e-3 * sum(action ** 2)``
  (Gymnasium Hopper-v5's ``ctrl_cost_weight``).

``info`` holds ``x_position``, ``x_velocity``, ``control_cost`` (``sum(action ** 2)``), PyBullet's reward terms
(``alive``, ``progress``, ``electricity_cost``, ``joints_at_limit_cost``, ``feet_collision_cost``) and its
scalar reward as ``original_reward``; the Hopper adds ``z_distance_from_origin`` and ``healthy_reward``.
Episodes: PyBullet's 1000 steps (``max_episode_steps`` in the registration).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pybullet_envs_gymnasium  # noqa: F401  (registers the PyBullet ids)
from gymnasium.spaces import Box
from gymnasium.utils import EzPickle
from pybullet_envs_gymnasium.gym_locomotion_envs import HalfCheetahBulletEnv, HopperBulletEnv

__all__ = ["MOHalfCheetahBullet", "MOHopperBullet", "PYBULLET_REWARD_TERMS", "HOPPER_CTRL_COST_WEIGHT"]

PYBULLET_REWARD_TERMS = ("alive", "progress", "electricity_cost", "joints_at_limit_cost", "feet_collision_cost")
"""The names of the entries of PyBullet's ``WalkerBaseBulletEnv.rewards`` list, in its order."""
HOPPER_CTRL_COST_WEIGHT = 1e-3
"""Gymnasium Hopper-v5's ``ctrl_cost_weight``, which mo-hopper-2obj-v5 adds to both objectives."""


def _torso_x(env: HalfCheetahBulletEnv | HopperBulletEnv) -> float:
    """The torso's world x position (mo-gymnasium's root ``qpos[0]``)."""
    return float(env.robot.robot_body.get_position()[0])


def _step_terms(
    env: HalfCheetahBulletEnv | HopperBulletEnv, step: Any, action: np.ndarray
) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
    """Runs the PyBullet ``step`` and returns its outputs plus an info with the per-term values."""
    x_before = _torso_x(env)
    obs, reward, terminated, truncated, info = step(action)
    x_after = _torso_x(env)
    info = dict(info)
    info.update(zip(PYBULLET_REWARD_TERMS, (float(term) for term in env.rewards)))
    info["original_reward"] = float(reward)
    info["x_position"] = x_after
    info["x_velocity"] = (x_after - x_before) / env.scene.dt
    info["control_cost"] = float(np.sum(np.square(np.asarray(action, dtype=np.float64))))
    return obs, float(reward), bool(terminated), bool(truncated), info


class MOHalfCheetahBullet(HalfCheetahBulletEnv, EzPickle):
    """PyBullet HalfCheetah with the 2-objective reward ``[x_velocity, -sum(action ** 2)]`` (mo-halfcheetah-v5's)."""

    def __init__(self, render_mode: str | None = None) -> None:
        HalfCheetahBulletEnv.__init__(self, render_mode=render_mode)
        EzPickle.__init__(self, render_mode=render_mode)
        self.reward_dim = 2
        self.reward_space = Box(low=-np.inf, high=np.inf, shape=(self.reward_dim,), dtype=np.float32)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool, bool, dict[str, Any]]:
        """One PyBullet step; the reward is the float32 vector ``[x_velocity, -control_cost]``."""
        obs, _, terminated, truncated, info = _step_terms(self, super().step, action)
        vector = np.array([info["x_velocity"], -info["control_cost"]], dtype=np.float32)
        return obs, vector, terminated, truncated, info


class MOHopperBullet(HopperBulletEnv, EzPickle):
    """PyBullet Hopper with mo-hopper-2obj-v5's reward ``[x_velocity, 10 * z_distance]`` (+ healthy + ctrl each)."""

    def __init__(self, render_mode: str | None = None) -> None:
        HopperBulletEnv.__init__(self, render_mode=render_mode)
        EzPickle.__init__(self, render_mode=render_mode)
        self.reward_dim = 2
        self.reward_space = Box(low=-np.inf, high=np.inf, shape=(self.reward_dim,), dtype=np.float32)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool, bool, dict[str, Any]]:
        """One PyBullet step; the reward is the float32 vector of mo-hopper-2obj-v5's two objectives."""
        obs, _, terminated, truncated, info = _step_terms(self, super().step, action)
        info["z_distance_from_origin"] = float(self.robot.body_xyz[2] - self.robot.initial_z)
        info["healthy_reward"] = 1.0 if info["alive"] > 0 else 0.0
        shared = info["healthy_reward"] - HOPPER_CTRL_COST_WEIGHT * info["control_cost"]
        vector = np.array(
            [info["x_velocity"] + shared, 10.0 * info["z_distance_from_origin"] + shared], dtype=np.float32
        )
        return obs, vector, terminated, truncated, info
