"""Curricula that remove privileges (:class:`sim2real.PrivilegedManipulation`) while an SB3 agent trains.

Mao et al. (2025) remove the simulator's privileges gradually until the policy acts without any; the paper's
schedule could not be checked, so this one is designed (and the ablations come with it):

- ``success``: start at level 1; after each finished training episode, once the success rate over the last
  ``window`` episodes at the current level reaches ``threshold``, lower the level by ``step`` (and start counting
  again at the new level). Stops at 0.
- ``linear``: ``1 - t / (fraction * total)`` rounded up to a hundredth, clipped at 0: gone after ``fraction`` of
  the run.
- ``never``: level 1 throughout (privileges never removed).
- ``none``: level 0 throughout (no privileges).

:class:`PrivilegeCurriculum` is an SB3 callback: it sets the level of every training env through
``VecEnv.env_method("set_privilege_level", level)``, logs ``privileges/level`` and ``privileges/success_rate``
(tensorboard and the other logger outputs), keeps ``level_curve`` (env steps, level, success rate) for the run
folder, and checkpoints its state with the run (``get_resume_state``/``set_resume_state``). Evaluation envs are
not touched: they are built at level 0.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

from sim2real._privileges import PrivilegeError, check_level

CURRICULA = ("success", "linear", "never", "none")
"""The schedules :class:`PrivilegeCurriculum` runs."""
LINEAR_STEPS = 100
"""``linear`` moves in steps of 1/100 (rounded up), so the envs are told and the curve records 100 changes."""


class PrivilegeCurriculum(BaseCallback):
    """Lowers the training envs' privilege level by ``schedule`` (see the module docstring).

    Args:
        schedule: one of :data:`CURRICULA`.
        window: finished episodes the success rate is taken over (``success``).
        threshold: the success rate that lowers the level (``success``).
        step: how much the level drops each time (``success``).
        fraction: the part of the run over which ``linear`` goes from 1 to 0.
        total_timesteps: the run's length for ``linear`` (default: the model's ``learn`` total).
    """

    def __init__(self, schedule: str = "success", *, window: int = 50, threshold: float = 0.5, step: float = 0.1,
                 fraction: float = 0.5, total_timesteps: int | None = None, verbose: int = 0) -> None:
        super().__init__(verbose)
        if schedule not in CURRICULA:
            raise PrivilegeError(f"unknown curriculum {schedule!r}: choose one of {', '.join(CURRICULA)}")
        if int(window) != window or window < 1:
            raise PrivilegeError(f"window must be an integer >= 1 episodes, got {window!r}")
        if not 0 < threshold <= 1 or not 0 < step <= 1 or not 0 < fraction <= 1:
            raise PrivilegeError(f"threshold, step and fraction must be in (0, 1], got {threshold!r}, {step!r} and "
                                 f"{fraction!r}")
        self.schedule, self.window, self.threshold = schedule, int(window), float(threshold)
        self.step_size, self.fraction, self.total_timesteps = float(step), float(fraction), total_timesteps
        self.level = 0.0 if schedule == "none" else 1.0
        self.recent: deque[bool] = deque(maxlen=self.window)
        self.level_curve: list[tuple[int, float, float | None]] = []
        """(env steps, level, the success rate it was lowered on; None at the start and where no episode had
        finished) at the start and after every change."""

    @property
    def success_rate(self) -> float:
        return float(sum(self.recent) / len(self.recent)) if self.recent else float("nan")

    def _on_training_start(self) -> None:
        if self.schedule == "linear" and self.total_timesteps is None:
            self.total_timesteps = int(self.model._total_timesteps)
        self._apply()
        if not self.level_curve:
            self.level_curve.append((int(self.num_timesteps), self.level, None))

    def _on_step(self) -> bool:
        for done, info in zip(self.locals["dones"], self.locals["infos"]):
            if done:
                self.recent.append(bool(info.get("is_success", False)))
        level = self._scheduled_level()
        if level != self.level:
            rate = self.success_rate if self.recent else None  # what the level was lowered on
            self.level = level
            self.recent.clear()
            self._apply()
            self.level_curve.append((int(self.num_timesteps), self.level, rate))
        self.logger.record("privileges/level", self.level)
        if self.recent:
            self.logger.record("privileges/success_rate", self.success_rate)
        return True

    def _scheduled_level(self) -> float:
        if self.schedule == "linear":
            assert self.total_timesteps is not None
            remaining = max(0.0, 1.0 - self.num_timesteps / (self.fraction * self.total_timesteps))
            return math.ceil(round(remaining * LINEAR_STEPS, 9)) / LINEAR_STEPS
        if self.schedule == "success" and len(self.recent) == self.window and self.success_rate >= self.threshold:
            return max(0.0, round(self.level - self.step_size, 10))
        return self.level

    def _apply(self) -> None:
        self.training_env.env_method("set_privilege_level", check_level(self.level))

    def get_resume_state(self) -> dict[str, Any]:
        return {"level": self.level, "recent": list(self.recent), "level_curve": list(self.level_curve),
                "total_timesteps": self.total_timesteps}

    def set_resume_state(self, state: dict[str, Any]) -> None:
        self.level = float(state["level"])
        self.recent = deque(state["recent"], maxlen=self.window)
        self.level_curve = [tuple(point) for point in state["level_curve"]]
        self.total_timesteps = state["total_timesteps"]
