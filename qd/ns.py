"""Novelty Search (Lehman & Stanley, 2011) on the hand-designed descriptor, as run in TAXONS / SERENE.

Settings from SERENE's ``parameters.py`` and ``core/evolvers/base_evolver.py`` (GPaolo/SERENE, MIT):
population 100, 2 offspring per parent, Gaussian mutation mu 0, sigma 0.05 on every gene (``mut_prob`` 1)
then clipping to the genome bounds, novelty (:func:`qd.novelty.knn_novelty`) = mean distance to the k = 15
nearest of parents + offspring + archive after the element itself, 5 offspring per generation enter the
archive, the next population is the 100 most novel of parents + offspring.

Deviations: the archive takes the 5 *most novel* offspring (TAXONS paper and the project spec; SERENE's
default ``selection_operator`` is "random", available here as ``archive_selection="random"``); the initial
population is uniform in the genome bounds (SERENE: N(0, 1) clipped to [-5, 5]; the spec's bounds are
[-1, 1], where clipping N(0, 1) would pile a third of the genes on the bounds).

Run: ``python -m qd.ns --env HardMaze-v0 --budget 50000``.
"""

from __future__ import annotations

import copy
import sys
from typing import Any, ClassVar

import numpy as np

from qd.base import QDAlgorithm
from qd.evaluation import EvaluationResult, Evaluator
from qd.novelty import K_NEIGHBORS, NoveltyArchive

ARCHIVE_SELECTIONS = ("best", "random")


class NoveltySearch(QDAlgorithm):
    """Novelty Search whose behaviour descriptor is :meth:`descriptors` (here: the final outcome).

    Subclasses (TAXONS) change the behaviour space by overriding :meth:`descriptors`; the rest of the
    loop stays the same.

    Args:
        env_id: The QD task.
        seed: Random seed.
        evaluator: Where episodes run (default: serial).
        pop_size: Population size (100).
        offspring_per_parent: Offspring per parent and generation (2).
        mutation_sigma: Standard deviation of the Gaussian mutation (0.05).
        mutation_prob: Probability that a gene is mutated (1.0).
        archive_per_generation: Offspring added to the archive per generation (5, the authors' lambda).
        archive_selection: "best" (most novel) or "random" offspring enter the archive.
        k_neighbors: k of the k-NN novelty (15).

    Raises:
        ValueError: for a non-positive size or probability outside [0, 1], or an unknown selection.
    """

    name: ClassVar[str] = "ns"

    def __init__(self, env_id: str, *, seed: int = 0, evaluator: Evaluator | None = None, pop_size: int = 100,
                 offspring_per_parent: int = 2, mutation_sigma: float = 0.05, mutation_prob: float = 1.0,
                 archive_per_generation: int = 5, archive_selection: str = "best",
                 k_neighbors: int = K_NEIGHBORS) -> None:
        super().__init__(env_id, seed=seed, evaluator=evaluator)
        for label, value in (("pop_size", pop_size), ("offspring_per_parent", offspring_per_parent),
                             ("k_neighbors", k_neighbors)):
            if value < 1:
                raise ValueError(f"{label} must be >= 1, got {value}.")
        if archive_per_generation < 0:
            raise ValueError(f"archive_per_generation must be >= 0, got {archive_per_generation}.")
        if mutation_sigma < 0:
            raise ValueError(f"mutation_sigma must be >= 0, got {mutation_sigma}.")
        if not 0.0 <= mutation_prob <= 1.0:
            raise ValueError(f"mutation_prob must be in [0, 1], got {mutation_prob}.")
        if archive_selection not in ARCHIVE_SELECTIONS:
            raise ValueError(f"archive_selection must be one of {ARCHIVE_SELECTIONS}, got {archive_selection!r}.")
        self.pop_size = int(pop_size)
        self.offspring_per_parent = int(offspring_per_parent)
        self.mutation_sigma = float(mutation_sigma)
        self.mutation_prob = float(mutation_prob)
        self.archive_per_generation = int(archive_per_generation)
        self.archive_selection = archive_selection
        self.k_neighbors = int(k_neighbors)
        self.archive: NoveltyArchive | None = None
        self.population: np.ndarray | None = None
        """(pop_size, genome_size) genomes of the current population."""
        self.population_descriptors: np.ndarray | None = None
        self.population_novelty: np.ndarray | None = None

    # -- the behaviour space ------------------------------------------------------------------------
    def descriptors(self, results: list[EvaluationResult]) -> np.ndarray:
        """Behaviour descriptors of evaluated genomes: the final ground-truth outcome (hand-designed)."""
        return np.stack([np.asarray(r.outcome, dtype=np.float64).reshape(-1) for r in results])

    # -- variation ----------------------------------------------------------------------------------
    def initial_population(self) -> np.ndarray:
        """Uniform genomes in the genome bounds."""
        low, high = self.genome_bounds
        return self.rng.uniform(low, high, size=(self.pop_size, self.genome_size))

    def mutate(self, parents: np.ndarray) -> np.ndarray:
        """``offspring_per_parent`` Gaussian mutants of every parent, clipped to the genome bounds."""
        parents = np.repeat(parents, self.offspring_per_parent, axis=0)
        noise = self.rng.normal(0.0, self.mutation_sigma, size=parents.shape)
        if self.mutation_prob < 1.0:
            noise *= self.rng.random(parents.shape) < self.mutation_prob
        return np.clip(parents + noise, *self.genome_bounds)

    # -- one generation -----------------------------------------------------------------------------
    def _select_for_archive(self, novelty: np.ndarray) -> np.ndarray:
        count = min(self.archive_per_generation, len(novelty))
        if self.archive_selection == "random":
            return self.rng.permutation(len(novelty))[:count]
        return np.argsort(-novelty, kind="stable")[:count]

    def extra_novelty_reference(self) -> np.ndarray | None:
        """Reference descriptors novelty is also measured against, besides the scored batch and the archive.

        None here; SERENE adds its reward archive (the authors' ``get_novelty_ref_set``).
        """
        return None

    def score_novelty(self, descriptors: np.ndarray) -> np.ndarray:
        """Novelty of a batch (parents + offspring) against itself, the extra reference and the archive."""
        with self.clock.measure("novelty"):
            return self.archive.novelty(descriptors, extra=self.extra_novelty_reference())

    def offspring_evaluated(self, parents: np.ndarray | None, offspring: np.ndarray,
                            results: list[EvaluationResult], descriptors: np.ndarray) -> None:
        """Called after a generation's offspring are evaluated and described, before novelty is measured.

        For the initial population ``parents`` is None and ``offspring`` is the initial population. No-op here;
        SERENE creates its candidate emitters and fills its reward archive at this point (the authors'
        ``init_emitters`` runs before ``evaluate_performances``).
        """

    def step(self) -> None:
        """First call: evaluate the initial population. Then: mutate, evaluate, score, archive, select."""
        if self.population is None:
            genomes = self.initial_population()
            results = self.evaluate(genomes)
            descriptors = self.descriptors(results)
            self.archive = NoveltyArchive(self.genome_size, descriptors.shape[1], k_neighbors=self.k_neighbors)
            self.offspring_evaluated(None, genomes, results, descriptors)
            self.population, self.population_descriptors = genomes, descriptors
            self.population_novelty = self.score_novelty(descriptors)
            return
        offspring = self.mutate(self.population)
        results = self.evaluate(offspring)
        offspring_descriptors = self.descriptors(results)
        self.offspring_evaluated(self.population, offspring, results, offspring_descriptors)
        genomes = np.concatenate([self.population, offspring])
        descriptors = np.concatenate([self.population_descriptors, offspring_descriptors])
        novelty = self.score_novelty(descriptors)
        offspring_novelty = novelty[len(self.population):]
        chosen = self._select_for_archive(offspring_novelty)
        self.archive.add(offspring[chosen], offspring_descriptors[chosen])
        survivors = np.argsort(-novelty, kind="stable")[:self.pop_size]
        self.population = genomes[survivors]
        self.population_descriptors = descriptors[survivors]
        self.population_novelty = novelty[survivors]

    def summary(self) -> dict[str, Any]:
        """Base summary plus the novelty archive's size."""
        return {**super().summary(), "novelty_archive_size": 0 if self.archive is None else len(self.archive)}

    # -- state --------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Base state plus population, its descriptors and novelty, and the archive."""
        return {**super().state_dict(), "population": copy.deepcopy(self.population),
                "population_descriptors": copy.deepcopy(self.population_descriptors),
                "population_novelty": copy.deepcopy(self.population_novelty), "archive": copy.deepcopy(self.archive)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`."""
        super().load_state_dict(state)
        for key in ("population", "population_descriptors", "population_novelty", "archive"):
            setattr(self, key, copy.deepcopy(state[key]))


if __name__ == "__main__":
    # The class of the importable module, not of ``__main__``: checkpoints record ``qd.ns.NoveltySearch``.
    from qd.ns import NoveltySearch as _NoveltySearch
    from qd.run import main

    sys.exit(main(_NoveltySearch))
