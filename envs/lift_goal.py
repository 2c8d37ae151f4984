"""The goal and reward shared by the lift tasks (``envs.panda_lift`` on PyBullet, ``envs.fetch_lift`` on MuJoCo).

The goal is a height of the object's lowest point above the table top (``LIFT_HEIGHT``, 0.1 m): the achieved
goal is that height, the desired goal the target. ``sparse``: 0 on success, -1 otherwise (HER's convention);
``dense``: minus the height still missing. Both tasks' episodes last ``EPISODE_STEPS`` (100: a push or pivot,
then the grasp).

Mutation testing (mutmut, with tests/test_panda_lift.py): 35 mutants, 2 survive, both equivalent: the comparison
in :func:`lift_success` is already boolean, so dropping ``dtype=bool`` or making it None changes nothing.
"""

from __future__ import annotations

import numpy as np

LIFT_HEIGHT = 0.1
EPISODE_STEPS = 100
OBJECT_MASS = 0.5
"""kg, the object of every lift task (its weight, 4.9 N, is what a privileged object force must exceed to lift it
alone)."""
REWARD_TYPES = ("sparse", "dense")


def check_reward_type(reward_type: str) -> str:
    """``reward_type`` if it is one of :data:`REWARD_TYPES`, else a ValueError naming them."""
    if reward_type not in REWARD_TYPES:
        raise ValueError(f"reward_type must be 'sparse' or 'dense', got {reward_type!r}.")
    return reward_type


def lift_success(achieved_goal: np.ndarray, desired_goal: np.ndarray) -> np.ndarray:
    """Whether the lowest point is at or above the target height (batched over leading axes)."""
    return np.array(np.asarray(achieved_goal)[..., 0] >= np.asarray(desired_goal)[..., 0], dtype=bool)


def lift_reward(achieved_goal: np.ndarray, desired_goal: np.ndarray, reward_type: str) -> np.ndarray:
    """The tasks' reward for (batches of) achieved and desired goals, as ``compute_reward`` returns it."""
    if reward_type == "sparse":
        return lift_success(achieved_goal, desired_goal).astype(np.float32) - 1.0
    missing = np.asarray(desired_goal)[..., 0] - np.asarray(achieved_goal)[..., 0]
    return -np.clip(missing, 0.0, None).astype(np.float32)
