"""Redundant arm: a 20-joint planar arm reaching three small goal areas (numpy kinematics).

The task of SERENE / STAX (Paolo et al.), after ``environments/assets/gym_redarm/envs/arm_env.py`` of
github.com/GPaolo/SERENE (itself after P. Loviken's MCGB arm). The arena is the unit square, the arm's base
is at its centre and the arm starts curled in a spiral. The controller is closed loop: a feed-forward net
maps the 20 normalised joint angles to 20 joint accelerations (``environments/environments.py`` entry
``NDofArm``: input 20, output 20, 2 hidden layers of 5 units, ``max_steps`` 100).

Each step integrates the accelerations for two sub-steps of 0.01 s; a sub-step that would be illegal
(end effector too fast, arm leaving the arena, a joint inside a wall of the cross, the arm crossing itself)
is not taken and ends the episode, as in the authors' ``isLegal``.

Deviations: self-collision is an exact test of non-adjacent links intersecting as segments (the authors
approximate it with an L1 ball of radius 0.95 link lengths around every joint), and an episode ended by an
illegal move earns no reward (the authors end it too but still pay the reward of the last legal pose).
Observations are clipped to [-1, 1] (joint angles to [-pi, pi]; the authors do not clip, but with
accelerations in [-1, 1] no joint can leave [-pi, pi] within 100 steps).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from envs.qd_task import QDTaskEnv, QDTaskSpec, area_reward, blank_canvas, paint_discs, paint_polygons, paint_segments

__all__ = ["RedundantArmEnv", "forward_kinematics", "self_collides"]

DOF = 20
"""Number of joints (``arm_env.py``: ``self.dof = 20``)."""
ARM_LENGTH = 1.0
"""Total arm length; each of the 20 links is 0.05 (``arm_env.py``: ``armLength = 1.0``)."""
LINK_LENGTH = ARM_LENGTH / DOF
ROOT = np.array([0.5, 0.5])
"""Base of the arm, centre of the unit-square arena (``arm_env.py``: ``self.root``)."""
BASE_ANGLE = np.pi / 2
"""Direction of the first link at zero joint angles: straight up (``getCoordinates``: ``tmpAng = np.pi / 2``)."""
MAX_ANGLE = np.pi
"""Joint angles are normalised by this (``arm_env.py``: ``aMax = np.pi``)."""
START_ANGLES = np.linspace(4 * np.pi / DOF, np.pi / DOF, DOF)
"""Start pose, a spiral (``arm_env.py``: ``np.linspace(aStart, aStart / 4, dof)`` with ``aStart = 4 pi / dof``)."""
DT = 0.01
"""Integration step (``arm_env.py`` ``step``: ``dt = .01``)."""
SUBSTEPS = 2
"""Integration sub-steps per env step (``arm_env.py``: ``update_steps = 2``)."""
MAX_SPEED = 1.0
"""Limit of the authors' end-effector speed test (``arm_env.py``: ``max_update_speed = 1.``)."""
WALL_THICKNESS = 0.02
CORRIDOR = 0.2
WALLS = np.array(
    [
        [0.5 - 0.5 * WALL_THICKNESS, 0.0, WALL_THICKNESS, CORRIDOR],
        [0.5 - 0.5 * WALL_THICKNESS, 1.0 - CORRIDOR, WALL_THICKNESS, CORRIDOR],
        [0.0, 0.5 - 0.5 * WALL_THICKNESS, CORRIDOR, WALL_THICKNESS],
        [1.0 - CORRIDOR, 0.5 - 0.5 * WALL_THICKNESS, CORRIDOR, WALL_THICKNESS],
    ]
)
"""Walls as rows (x, y, width, height): the "cross" of ``arm_env.py`` (``wall_setting = 8``, ``cW``, ``wW``)."""
GOAL_CENTERS = np.array([[0.25, 0.25], [0.85, 0.85], [0.25, 0.90]])
"""Goal area centres (``arm_env.py``: ``self.goals``)."""
GOAL_RADII = np.array([0.05, 0.05, 0.05])
"""Goal area radii (``arm_env.py``: ``self.goalRadius``)."""
MAX_STEPS = 100
"""Evaluation length (``environments.py`` ``NDofArm`` ``max_steps``; the env's own cap of 250 is never reached)."""


def forward_kinematics(angles: np.ndarray) -> np.ndarray:
    """Joint positions (DOF + 1, 2), base first, end effector last, for relative joint angles (radians)."""
    absolute = BASE_ANGLE + np.cumsum(angles)
    steps = LINK_LENGTH * np.stack([np.cos(absolute), np.sin(absolute)], axis=1)
    return np.concatenate([ROOT[None], ROOT + np.cumsum(steps, axis=0)])


def self_collides(joints: np.ndarray) -> bool:
    """Whether two non-adjacent links intersect: a proper crossing, or collinear links that overlap or touch."""
    a, b = joints[:-1], joints[1:]
    n = len(a)
    i, j = np.triu_indices(n, k=2)

    def orientation(p: np.ndarray, q: np.ndarray, r: np.ndarray) -> np.ndarray:
        return (q[:, 0] - p[:, 0]) * (r[:, 1] - p[:, 1]) - (q[:, 1] - p[:, 1]) * (r[:, 0] - p[:, 0])

    o1, o2 = orientation(a[i], b[i], a[j]), orientation(a[i], b[i], b[j])
    o3, o4 = orientation(a[j], b[j], a[i]), orientation(a[j], b[j], b[i])
    if np.any((o1 * o2 < 0) & (o3 * o4 < 0)):  # proper crossing
        return True
    # collinear links (e.g. folded back onto each other): overlapping if their extents along link i meet
    collinear = (np.abs(o1) < 1e-12) & (np.abs(o2) < 1e-12)
    if not collinear.any():
        return False
    i, j = i[collinear], j[collinear]
    direction = b[i] - a[i]
    length2 = (direction * direction).sum(axis=1)
    t_a = ((a[j] - a[i]) * direction).sum(axis=1) / length2
    t_b = ((b[j] - a[i]) * direction).sum(axis=1) / length2
    return bool(np.any((np.maximum(t_a, t_b) >= 0.0) & (np.minimum(t_a, t_b) <= 1.0)))


class RedundantArmEnv(QDTaskEnv):
    """20-joint planar arm in the unit square with a cross of walls and three goal areas (SERENE's arm).

    Observation: the joint angles divided by pi, in [-1, 1]. Action: the 20 joint accelerations in [-1, 1]
    (rad/s^2), integrated for two sub-steps of 0.01 s per step. An illegal sub-step (see the module
    docstring) is refused and terminates the episode with no reward. Reward: at the last step only,
    ``(0.05 - d) / 0.05`` when the end effector lies within 0.05 of a goal centre. Episodes are truncated
    after 100 steps. ``info["outcome"]`` is the end effector's (x, y).

    :param render_mode: ``"rgb_array"`` (200 x 200 top-down image) or None.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}
    spec_qd = QDTaskSpec(
        outcome_bounds=((0.0, 1.0), (0.0, 1.0)),
        reward_areas=("goal_lower_left", "goal_upper_right", "goal_upper_left"),
        controller="mlp",
        controller_hidden=(5, 5),
        max_steps=MAX_STEPS,
        description="20-joint planar arm (joint accelerations) reaching 3 small goal areas around a cross of walls.",
    )

    def __init__(self, render_mode: str | None = None):
        super().__init__(render_mode)
        self.observation_space = spaces.Box(low=-1.0, high=1.0, shape=(DOF,), dtype=np.float32)
        self.action_space = spaces.Box(low=-1.0, high=1.0, shape=(DOF,), dtype=np.float32)
        self.angles = START_ANGLES.copy()
        self.joint_speeds = np.zeros(DOF)
        self._steps = 0

    def is_legal(self, angles: np.ndarray, previous: np.ndarray | None = None) -> bool:
        """The authors' ``isLegal``: speed limit (if ``previous`` given), arena, walls, self-collision."""
        joints = forward_kinematics(angles)
        if previous is not None:
            # authors' speed test, on the end effector only (arm_env.py: "Modified to only check end effector")
            end_previous = forward_kinematics(previous)[-1]
            speed = np.linalg.norm(joints[-1] - end_previous) / SUBSTEPS + self.joint_speeds[-1]
            if speed > MAX_SPEED:
                return False
        if joints.min() < 0.0 or joints.max() >= 1.0:
            return False
        x, y = joints[:, 0:1], joints[:, 1:2]
        low_x, low_y = WALLS[:, 0], WALLS[:, 1]
        inside = (low_x < x) & (x < low_x + WALLS[:, 2]) & (low_y < y) & (y < low_y + WALLS[:, 3])
        if inside.any():  # authors test the joints only, not the links between them
            return False
        return not self_collides(joints)

    def _observation(self) -> np.ndarray:
        return np.clip(self.angles / MAX_ANGLE, -1.0, 1.0).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Curl the arm into the start spiral (no randomness; ``seed`` only seeds ``np_random``)."""
        super().reset(seed=seed)
        self.angles = START_ANGLES.copy()
        self.joint_speeds = np.zeros(DOF)
        self._steps = 0
        return self._observation(), {"outcome": self.outcome(), "reward_area": -1}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (DOF,):
            raise ValueError(f"action must have shape ({DOF},), got {action.shape}")
        acceleration = np.clip(action, -1.0, 1.0)
        stopped = False
        for _ in range(SUBSTEPS):
            next_angles = acceleration / 2 * DT**2 + self.joint_speeds * DT + self.angles
            if not self.is_legal(next_angles, self.angles):
                stopped = True
                break
            self.joint_speeds = (next_angles - self.angles) / DT
            self.angles = next_angles
        self._steps += 1
        truncated = not stopped and self._steps >= MAX_STEPS
        if truncated:
            reward, area = area_reward(self.outcome(), GOAL_CENTERS, GOAL_RADII)
        else:
            reward, area = 0.0, -1
        info = {"outcome": self.outcome(), "reward_area": area, "illegal_move": stopped}
        return self._observation(), reward, stopped, truncated, info

    def outcome(self) -> np.ndarray:
        """Ground-truth outcome: the end effector's (x, y) in the unit square."""
        return forward_kinematics(self.angles)[-1].copy()

    def state_observation(self) -> np.ndarray:
        """Low-dimensional state: the joint angles divided by pi."""
        return self._observation()

    def render(self) -> np.ndarray | None:
        """Top-down 200 x 200 image (y up): black walls, red goal areas, blue arm."""
        if self.render_mode != "rgb_array":
            return None
        size = 200

        def to_pixels(points: np.ndarray) -> np.ndarray:
            return np.stack([points[..., 0] * size, (1.0 - points[..., 1]) * size], axis=-1)

        image = blank_canvas(size, size)
        paint_discs(image, to_pixels(GOAL_CENTERS), GOAL_RADII * size, (255, 0, 0))
        corners = [np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]]) for x, y, w, h in WALLS]
        paint_polygons(image, [to_pixels(c) for c in corners], (0, 0, 0))
        pixels = to_pixels(forward_kinematics(self.angles))
        paint_segments(image, np.concatenate([pixels[:-1], pixels[1:]], axis=1), 3.0, (0, 0, 255))
        return image
