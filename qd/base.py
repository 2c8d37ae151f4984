"""The part every QD algorithm shares: the task, the evaluator, the metrics, seeding and the state."""

from __future__ import annotations

import copy
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from qd.evaluation import EvaluationResult, Evaluator, SerialEvaluator, task_spec
from qd.genome import GENOME_HIGH, GENOME_LOW, genome_size
from qd.metrics import RunMetrics
from qd.phase_clock import PhaseClock


class QDAlgorithm(ABC):
    """Base class: one call of :meth:`step` is one generation (ask genomes, evaluate them, tell the results).

    Subclasses implement :meth:`step` and extend :meth:`state_dict` / :meth:`load_state_dict` with their
    own state. All randomness must come from :attr:`rng` (or from generators seeded from it), so that a
    run is reproducible for a seed and a checkpointed run resumes exactly.

    Args:
        env_id: The QD task (an env with a ``spec_qd`` attribute).
        seed: Seed of :attr:`rng`.
        evaluator: Where episodes run; default a :class:`~qd.evaluation.SerialEvaluator`.

    Raises:
        rl.envs.UnknownEnvError: for an unregistered id (with the closest registered ids).
        qd.evaluation.NotAQDTaskError: for an env without ``spec_qd``.
    """

    name: ClassVar[str] = "qd"
    """Short name: the CLI's module name and the run folder's parent."""

    def __init__(self, env_id: str, *, seed: int = 0, evaluator: Evaluator | None = None) -> None:
        self.env_id = env_id
        self.task = task_spec(env_id)
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)
        self.evaluator: Evaluator = evaluator if evaluator is not None else SerialEvaluator(env_id)
        self.genome_size = genome_size(env_id)
        self.genome_bounds = (GENOME_LOW, GENOME_HIGH)
        self.metrics = RunMetrics(self.task.outcome_bounds, self.task.reward_areas)
        self.generation = 0
        self.clock = PhaseClock()
        """Where the run's wall time goes (evaluation, novelty, autoencoder, the rest); ``metrics.json``'s
        ``"seconds"``."""

    @property
    def evaluations(self) -> int:
        """Evaluations spent so far."""
        return self.metrics.evaluations

    def evaluate(self, genomes: np.ndarray, *, render: bool = False) -> list[EvaluationResult]:
        """Evaluate genomes through the evaluator and record them in :attr:`metrics`."""
        start = time.perf_counter()
        with self.clock.measure("evaluation"):
            results = self.evaluator.evaluate(np.asarray(genomes, dtype=np.float64), render=render)
        self.metrics.update(results, seconds=time.perf_counter() - start)
        return results

    @abstractmethod
    def step(self) -> None:
        """One generation: ask for genomes, :meth:`evaluate` them, tell the algorithm the results."""

    def run(self, budget: int, *, callback: Callable[[QDAlgorithm], Any] | None = None) -> RunMetrics:
        """Run generations until at least ``budget`` evaluations are spent (the last generation is whole).

        Generations are never cut short: cutting one would change the algorithm (an ES told part of a batch, a
        population refilled from part of its offspring), so the last one may go past the budget. Budgets are
        compared at exactly ``budget`` evaluations instead: :meth:`qd.metrics.RunMetrics.at` reads every metric there,
        and :class:`qd.run.QDRun` reports that reading.

        Args:
            budget: Total evaluations, counting those of earlier calls (so a resumed run continues).
            callback: Called after every generation with the algorithm.

        Returns:
            The run's metrics (all evaluations, the last generation's overshoot included).

        Raises:
            ValueError: for ``budget < 1``.
        """
        if budget < 1:
            raise ValueError(f"budget must be >= 1, got {budget}.")
        while self.evaluations < budget:
            with self.clock.measure("generation"):
                self.step()
            self.generation += 1
            if callback is not None:
                callback(self)
        return self.metrics

    def summary(self) -> dict[str, Any]:
        """What the algorithm did, beyond the metrics (``metrics.json``'s ``"algorithm"``): JSON values only.

        Subclasses add their own counts (archive sizes, autoencoder trainings, emitters).
        """
        return {"generations": self.generation, "evaluations_spent": self.evaluations}

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the run (not the evaluator): picklable values only."""
        return {
            "env_id": self.env_id,
            "seed": self.seed,
            "generation": self.generation,
            "rng": self.rng.bit_generator.state,
            "metrics": copy.deepcopy(self.metrics),
            "clock": self.clock.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` taken from an algorithm built with the same env and settings.

        Raises:
            ValueError: when the state belongs to another env.
        """
        if state["env_id"] != self.env_id:
            raise ValueError(f"state is for env {state['env_id']!r}, this algorithm runs {self.env_id!r}.")
        self.seed = state["seed"]
        self.generation = state["generation"]
        self.rng.bit_generator.state = state["rng"]
        self.metrics = copy.deepcopy(state["metrics"])
        self.clock.load_state_dict(state.get("clock"))

    def close(self) -> None:
        """Release the evaluator's resources (worker processes, envs)."""
        close = getattr(self.evaluator, "close", None)
        if close is not None:
            close()
