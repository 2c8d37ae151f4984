"""What a QD run is judged by (Paolo et al.): coverage of the true outcome space, reward found per area,
evaluations to the first reward, plus the evaluation throughput.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from qd.evaluation import EvaluationResult

COVERAGE_CELLS = 50
"""Cells per dimension of the coverage grid (50x50 in SERENE's ``registered_envs[...]["grid"]["bins"]``)."""


class CoverageGrid:
    """Counts of outcomes in a regular grid over the outcome bounds.

    Outcomes outside the bounds are counted in the nearest edge cell.

    Args:
        bounds: ((low, high), ...) per outcome dimension.
        cells: Cells per dimension.

    Raises:
        ValueError: for a bound whose low is not below its high, or cells < 1.
    """

    def __init__(self, bounds: Sequence[tuple[float, float]], cells: int = COVERAGE_CELLS) -> None:
        self.bounds = np.asarray(bounds, dtype=np.float64).reshape(-1, 2)
        if np.any(self.bounds[:, 0] >= self.bounds[:, 1]):
            raise ValueError(f"bounds must be (low, high) pairs with low < high, got {bounds}.")
        if cells < 1:
            raise ValueError(f"cells must be >= 1, got {cells}.")
        self.cells = int(cells)
        self.counts = np.zeros((self.cells,) * len(self.bounds), dtype=np.int64)

    def index(self, outcomes: np.ndarray) -> np.ndarray:
        """(n, dims) integer cell index of each outcome."""
        outcomes = np.asarray(outcomes, dtype=np.float64).reshape(-1, len(self.bounds))
        low, high = self.bounds[:, 0], self.bounds[:, 1]
        scaled = (outcomes - low) / (high - low) * self.cells
        return np.clip(np.floor(scaled), 0, self.cells - 1).astype(np.int64)

    def add(self, outcomes: np.ndarray) -> None:
        """Count (n, dims) outcomes."""
        index = self.index(outcomes)
        np.add.at(self.counts, tuple(index.T), 1)

    @property
    def occupied(self) -> int:
        """Number of cells with at least one outcome."""
        return int(np.count_nonzero(self.counts))

    @property
    def coverage(self) -> float:
        """Share of occupied cells, in [0, 1]."""
        return self.occupied / self.counts.size


class RunMetrics:
    """Metrics of a run, updated after every batch of evaluations.

    Args:
        outcome_bounds: Bounds of the ground-truth outcome space (the task's ``outcome_bounds``).
        reward_areas: Names of the reward areas (index = area id).
        cells: Cells per dimension of the coverage grid.
    """

    def __init__(self, outcome_bounds: Sequence[tuple[float, float]], reward_areas: Sequence[str], *,
                 cells: int = COVERAGE_CELLS) -> None:
        self.grid = CoverageGrid(outcome_bounds, cells)
        self.reward_areas = tuple(reward_areas)
        self.evaluations = 0
        self.best_reward = np.full(len(self.reward_areas), -np.inf)
        """Best reward per reward area (-inf while the area has not been reached)."""
        self.first_reward_evaluation: int | None = None
        """1-based count of the evaluation that first got a reward > 0 (None until then)."""
        self.elapsed_seconds = 0.0
        self.history: list[dict[str, Any]] = []
        self._outcomes: list[np.ndarray] = []
        self._areas: list[np.ndarray] = []
        self._rewards: list[np.ndarray] = []
        self._seconds: list[float] = []

    def update(self, results: Sequence[EvaluationResult], *, seconds: float = 0.0) -> None:
        """Record a batch of results; ``seconds`` is the wall time their evaluation took."""
        if not results:
            return
        outcomes = np.stack([np.asarray(r.outcome, dtype=np.float64).reshape(-1) for r in results])
        areas = np.array([r.reward_area for r in results], dtype=np.int64)
        rewards = np.array([r.reward for r in results], dtype=np.float64)
        self._record(outcomes, areas, rewards, float(seconds))

    def _record(self, outcomes: np.ndarray, areas: np.ndarray, rewards: np.ndarray, seconds: float) -> None:
        self.grid.add(outcomes)
        self._outcomes.append(outcomes)
        self._areas.append(areas)
        self._rewards.append(rewards)
        self._seconds.append(seconds)
        for area, reward in zip(areas, rewards):
            if 0 <= area < len(self.reward_areas):
                self.best_reward[area] = max(self.best_reward[area], reward)
        if self.first_reward_evaluation is None and np.any(rewards > 0):
            self.first_reward_evaluation = self.evaluations + int(np.argmax(rewards > 0)) + 1
        self.evaluations += len(outcomes)
        self.elapsed_seconds += seconds
        self.history.append(self.snapshot())

    def at(self, evaluations: int) -> RunMetrics:
        """The metrics after exactly the first ``evaluations`` evaluations (all of them when there are fewer).

        Batches are replayed in order; the batch that crosses ``evaluations`` is cut there and its evaluation
        time prorated. This is how runs of different algorithms, whose last generations overshoot the budget
        by different amounts, are compared at the same number of evaluations.

        Raises:
            ValueError: for a negative count.
        """
        if evaluations < 0:
            raise ValueError(f"evaluations must be >= 0, got {evaluations}.")
        cut = RunMetrics(self.grid.bounds, self.reward_areas, cells=self.grid.cells)
        for outcomes, areas, rewards, seconds in zip(self._outcomes, self._areas, self._rewards, self._seconds):
            left = evaluations - cut.evaluations
            if left <= 0:
                break
            if left < len(outcomes):
                seconds *= left / len(outcomes)
                outcomes, areas, rewards = outcomes[:left], areas[:left], rewards[:left]
            cut._record(outcomes, areas, rewards, seconds)
        return cut

    @property
    def coverage(self) -> float:
        """Share of the 50x50 outcome grid reached so far."""
        return self.grid.coverage

    @property
    def reward_areas_found(self) -> list[str]:
        """Names of the reward areas reached so far."""
        return [name for name, best in zip(self.reward_areas, self.best_reward) if np.isfinite(best)]

    @property
    def evaluations_per_second(self) -> float:
        """Evaluation throughput over the run so far (0 before any timed batch)."""
        return self.evaluations / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    @property
    def outcomes(self) -> np.ndarray:
        """(evaluations, dims) final outcome of every evaluation, in order."""
        return np.concatenate(self._outcomes) if self._outcomes else np.zeros((0, len(self.grid.bounds)))

    @property
    def outcome_areas(self) -> np.ndarray:
        """(evaluations,) reward area of every evaluation (-1 none)."""
        return np.concatenate(self._areas) if self._areas else np.zeros(0, dtype=np.int64)

    def snapshot(self) -> dict[str, Any]:
        """The current values, one row of :attr:`history`."""
        best = self.best_reward[np.isfinite(self.best_reward)]
        return {
            "evaluations": self.evaluations,
            "coverage": self.coverage,
            "reward_areas_found": len(self.reward_areas_found),
            "best_reward": float(best.max()) if best.size else None,
            "evaluations_per_second": self.evaluations_per_second,
        }

    def as_dict(self) -> dict[str, Any]:
        """Everything as JSON-friendly values (``metrics.json``)."""
        return {
            "evaluations": self.evaluations,
            "coverage": self.coverage,
            "coverage_cells": list(self.grid.counts.shape),
            "reward_areas": list(self.reward_areas),
            "reward_areas_found": self.reward_areas_found,
            "best_reward_per_area": {name: (float(best) if np.isfinite(best) else None)
                                     for name, best in zip(self.reward_areas, self.best_reward)},
            "evaluations_to_first_reward": self.first_reward_evaluation,
            "evaluations_per_second": self.evaluations_per_second,
            "elapsed_seconds": self.elapsed_seconds,
            "history": self.history,
        }
