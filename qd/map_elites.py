"""MAP-Elites (Mouret & Clune, 2015) baseline built from pyribs parts, on the ground-truth descriptor.

A ``GridArchive`` of 50x50 cells over the task's outcome bounds, one emitter, a ``Scheduler``; fitness =
episode reward. SERENE's own MAP-Elites (``core/evolvers/map_elites.py``) picks a uniformly random elite and
applies the NS mutation (Gaussian, sigma 0.05, clipped): that is pyribs's ``GaussianEmitter`` with sigma
0.05, the default here; ``emitter="iso_line"`` uses pyribs's ``IsoLineEmitter`` (Vassiliades & Mouret,
2018) with its default sigmas.

Deviation: the first batch is a uniform random population in the genome bounds (``initial_solutions``),
as for NS, instead of SERENE's N(0, 1) genomes.

Run: ``python -m qd.map_elites --env Curling-v0 --budget 50000``.
"""

from __future__ import annotations

import copy
import sys
from typing import Any, ClassVar

import numpy as np
from ribs.archives import GridArchive
from ribs.emitters import GaussianEmitter, IsoLineEmitter
from ribs.schedulers import Scheduler

from qd.base import QDAlgorithm
from qd.evaluation import Evaluator
from qd.metrics import COVERAGE_CELLS

EMITTERS = ("gaussian", "iso_line")


class MapElites(QDAlgorithm):
    """pyribs MAP-Elites over the outcome space.

    Args:
        env_id: The QD task.
        seed: Random seed (archive and emitter generators are seeded from it).
        evaluator: Where episodes run (default: serial).
        batch_size: Genomes per generation (100, the NS population size, so budgets compare).
        emitter: "gaussian" (SERENE's MAP-Elites mutation) or "iso_line".
        sigma: Gaussian emitter standard deviation (0.05, SERENE's mutation sigma).
        iso_sigma: Iso-line emitter isotropic sigma (pyribs default 0.01).
        line_sigma: Iso-line emitter line sigma (pyribs default 0.2).
        cells: Grid cells per outcome dimension (50).

    Raises:
        ValueError: for an unknown emitter or a non-positive size.
    """

    name: ClassVar[str] = "map_elites"

    def __init__(self, env_id: str, *, seed: int = 0, evaluator: Evaluator | None = None, batch_size: int = 100,
                 emitter: str = "gaussian", sigma: float = 0.05, iso_sigma: float = 0.01, line_sigma: float = 0.2,
                 cells: int = COVERAGE_CELLS) -> None:
        super().__init__(env_id, seed=seed, evaluator=evaluator)
        if emitter not in EMITTERS:
            raise ValueError(f"emitter must be one of {EMITTERS}, got {emitter!r}.")
        if batch_size < 1 or cells < 1:
            raise ValueError(f"batch_size and cells must be >= 1, got {batch_size} and {cells}.")
        self.batch_size = int(batch_size)
        seeds = self.rng.integers(2**31, size=2)
        bounds = [tuple(map(float, b)) for b in self.task.outcome_bounds]
        self.archive = GridArchive(solution_dim=self.genome_size, dims=(int(cells),) * len(bounds), ranges=bounds,
                                   seed=int(seeds[0]), dtype=np.float64)
        low, high = self.genome_bounds
        common = {
            "initial_solutions": self.rng.uniform(low, high, size=(self.batch_size, self.genome_size)),
            "bounds": [(low, high)] * self.genome_size,
            "batch_size": self.batch_size,
            "seed": int(seeds[1]),
        }
        if emitter == "gaussian":
            made = GaussianEmitter(self.archive, sigma=float(sigma), **common)
        else:
            made = IsoLineEmitter(self.archive, iso_sigma=float(iso_sigma), line_sigma=float(line_sigma), **common)
        self.scheduler = Scheduler(self.archive, [made])

    def step(self) -> None:
        """ask -> evaluate -> tell(reward, outcome)."""
        genomes = self.scheduler.ask()
        results = self.evaluate(genomes)
        rewards = np.array([r.reward for r in results], dtype=np.float64)
        outcomes = np.stack([np.asarray(r.outcome, dtype=np.float64).reshape(-1) for r in results])
        self.scheduler.tell(rewards, outcomes)

    def state_dict(self) -> dict[str, Any]:
        """Base state plus the scheduler (its archive and emitter, with their generators)."""
        return {**super().state_dict(), "scheduler": copy.deepcopy(self.scheduler)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`."""
        super().load_state_dict(state)
        self.scheduler = copy.deepcopy(state["scheduler"])
        self.archive = self.scheduler.archive


if __name__ == "__main__":
    # The class of the importable module, not of ``__main__``: checkpoints record ``qd.map_elites.MapElites``.
    from qd.map_elites import MapElites as _MapElites
    from qd.run import main

    sys.exit(main(_MapElites))
