"""Tiny deterministic 2-D point tasks for the qd/ tests, each registered under a test-only id.

A point starts at (0, 0) and moves by ``step_size * action`` (clipped to [-1, 1]^2) for ``max_steps`` steps; at
the last step it is rewarded inside the disc of ``radius`` around ``goal``: 1, or with ``graded`` the tasks'
area reward (radius - d) / radius, so that emitters can improve on a rewarding genome.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np

from envs.qd_task import QDTaskSpec


class PointTask(gym.Env):
    """The point task; :func:`register_point_task` makes a subclass with its own constants and ``spec_qd``."""

    metadata = {"render_modes": ["rgb_array"]}
    spec_qd: QDTaskSpec
    step_size: float
    goal: np.ndarray
    radius: float
    graded: bool
    frame_size: int
    time_in_state: bool

    def __init__(self, render_mode: str | None = None) -> None:
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float64)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float64)
        self.position, self.steps = np.zeros(2), 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.position, self.steps = np.zeros(2), 0
        return self.position.copy(), {"outcome": self.position.copy()}

    def step(self, action):
        self.position = np.clip(self.position + self.step_size * np.asarray(action), -1.0, 1.0)
        self.steps += 1
        info, reward, done = {"outcome": self.position.copy()}, 0.0, self.steps >= self.spec_qd.max_steps
        if done:
            distance = float(np.linalg.norm(self.position - self.goal))
            inside = distance <= self.radius
            info["reward_area"] = 0 if inside else -1
            if inside:
                reward = (self.radius - distance) / self.radius if self.graded else 1.0
        return self.position.copy(), reward, done, False, info

    def render(self):
        size = self.frame_size
        frame = np.zeros((size, size, 3), dtype=np.uint8)
        x, y = ((self.position + 1.0) / 2.0 * (size - 1)).astype(int)
        frame[y, x] = 255
        return frame

    def state_observation(self) -> np.ndarray:
        if self.time_in_state:
            return np.concatenate([self.position, [self.steps / self.spec_qd.max_steps]])
        return self.position.copy()


def register_point_task(
    env_id: str, *, max_steps: int = 5, step_size: float = 0.2, goal: Sequence[float] = (0.3, 0.3),
    radius: float = 0.25, graded: bool = False, frame_size: int = 32, time_in_state: bool = False,
) -> type[PointTask]:
    """Register (once) a point task under ``env_id`` and return its class."""
    if env_id in gym.registry:
        return gym.registry[env_id].entry_point
    spec = QDTaskSpec(outcome_bounds=((-1.0, 1.0), (-1.0, 1.0)), reward_areas=("goal",), controller="mlp",
                      controller_hidden=(3,), max_steps=max_steps)
    task = type(env_id.replace("-", "_"), (PointTask,), {
        "spec_qd": spec, "step_size": step_size, "goal": np.asarray(goal, dtype=np.float64), "radius": radius,
        "graded": graded, "frame_size": frame_size, "time_in_state": time_in_state,
    })
    gym.register(id=env_id, entry_point=task)
    return task
