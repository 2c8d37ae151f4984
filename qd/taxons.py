"""TAXONS: Novelty Search in a behaviour space an autoencoder learns from the final observation.

Paolo, Laflaquière, Coninx, Doncieux, "Unsupervised Learning and Exploration of Reachable Outcome
Space", ICRA 2020 (arXiv 1909.05508). The behaviour descriptor of a genome is the AE latent of the final
observation (the 64x64 render, the papers' input and the default); novelty (:func:`qd.novelty.knn_novelty`)
is the mean distance to the k = 15 nearest latents of population + offspring + archive; surprise is the AE's
reconstruction error. Each generation ranks by one criterion, novelty or surprise with probability 0.5 each;
the 5 best offspring by that criterion enter the archive and the best 100 of parents + offspring by it
survive. The AE trains on the archive + population + last offspring observations, after which the latents
(and surprise) of the archive and the population are recomputed with the new encoder.

When the AE trains, and when surprise starts:

- The TAXONS repository (GPaolo/taxons ``core/rnd_qd.py``, ``scripts/parameters.py``) trains every
  ``update_interval`` = 30 generations (the first time at generation 30) and ranks by novelty alone for the
  first 30 generations (``NoveltySurpriseOptimizer``: ``step_count < 30``), i.e. until the first training; its
  generations evaluate 100 genomes, so that is every 3,000 evaluations, for 500 to 2,000 generations.
- The authors' later code, GPaolo/STAX, runs TAXONS (``TaxonsSearch``) in the searcher it shares with STAX:
  the AE trains after exploration chunks of ``chunk_size`` = 1000 evaluations on a growing interval (after
  chunk 1, then 2 more, then 3 more, ...; :class:`qd.autoencoder.TrainingSchedule`), and the coin is flipped
  from the first generation.

Here TAXONS follows the STAX repository's schedule, in evaluations, so that TAXONS and STAX learn on the
same schedule and a short run trains at all: with the NS generations of 200 evaluations used here, "every
30 generations" would first train at 6,000 evaluations, after the end of a 3,000-evaluation benchmark, whose
rows would then be novelty search in an untrained latent space. Surprise is used only once the AE has been
trained (as in the TAXONS repository, whose 30 novelty-only generations are exactly those before its first
training; STAX's ``TaxonsSearch`` flips the coin from the start, when the reconstruction error of an untrained
AE is noise). :meth:`TAXONS.summary` records the trainings and the generations ranked by each criterion
(``metrics.json``).

Other settings from the authors' code: 5 archived per generation by the criterion and population update by
the criterion (STAX ``core/evolvers/taxons.py`` ``TaxonsSearch``), training data archive + population +
offspring (STAX ``core/searcher.py`` ``get_training_data``); the AE and its training in :mod:`qd.autoencoder`;
population, mutation and k from :class:`qd.ns.NoveltySearch`.

Deviations: the training schedule is the STAX repository's, not the TAXONS repository's, and the coin waits for
the first training unlike STAX's ``TaxonsSearch`` (both above); each training runs to early stopping (STAX's
``_train_ae``, at most 100 epochs) instead of the TAXONS repository's 5 epochs on the generations since the last
training; the coin is drawn from the algorithm's seeded generator.

Run: ``python -m qd.taxons --env HardMaze-v0 --budget 50000``.
"""

from __future__ import annotations

import copy
import sys
from typing import Any, ClassVar

import numpy as np

from qd.autoencoder import (
    LATENT_DIM,
    LEARNING_RATE,
    MAX_EPOCHS,
    PATIENCE,
    LearnedBehaviourSpace,
    TrainingSchedule,
)
from qd.evaluation import EvaluationResult, Evaluator
from qd.novelty import K_NEIGHBORS, NoveltyArchive
from qd.ns import NoveltySearch

CRITERIA = ("novelty", "surprise")
CHUNK_SIZE = 1000
"""Exploration evaluations per chunk of the training schedule (``chunk_size`` in GPaolo/STAX ``parameters.py``)."""
SURPRISE_PROBABILITY = 0.5
"""Chance of ranking a generation by surprise once the AE is trained (``np.random.uniform() <= 0.5``)."""


class TAXONS(NoveltySearch):
    """TAXONS: Novelty Search / Surprise Search in the latent space of an autoencoder of the final observation.

    Args:
        env_id: The QD task.
        seed: Random seed (mutation, the coin, the AE's initial weights and its training shuffles).
        evaluator: Where episodes run (default: serial).
        pop_size: Population size (100).
        offspring_per_parent: Offspring per parent (2).
        mutation_sigma: Gaussian mutation standard deviation (0.05).
        mutation_prob: Per-gene mutation probability (1.0).
        archive_per_generation: Offspring archived per generation, the best by the criterion (5).
        archive_selection: "best" (by the generation's criterion) or "random".
        k_neighbors: k of the k-NN novelty (15).
        observation_kind: "image" (final 64x64 render, the papers' input), "state" (``state_observation()``,
            which holds the outcome coordinates on HardMaze, Curling and AntMaze; see :mod:`qd.autoencoder`) or
            "signature" (depth-2 signature of the outcome trajectory, :mod:`qd.signature`).
        latent_dim: AE latent size (10).
        learning_rate: AE Adam learning rate (1e-3).
        max_epochs: Epoch cap of a training (100).
        patience: Early-stopping patience of a training (3).
        chunk_size: Evaluations per chunk of the training schedule (1000).
        first_training_interval: Chunks before the first training (1); the interval then grows by 1 after every
            training (:class:`~qd.autoencoder.TrainingSchedule`).
        surprise_probability: Chance that a generation ranks by surprise once the AE is trained (0.5).

    Raises:
        ValueError: for invalid NS settings, an unknown ``observation_kind``, a chunk size or interval < 1 or a
            probability outside [0, 1].
    """

    name: ClassVar[str] = "taxons"

    def __init__(self, env_id: str, *, seed: int = 0, evaluator: Evaluator | None = None, pop_size: int = 100,
                 offspring_per_parent: int = 2, mutation_sigma: float = 0.05, mutation_prob: float = 1.0,
                 archive_per_generation: int = 5, archive_selection: str = "best",
                 k_neighbors: int = K_NEIGHBORS, observation_kind: str = "image", latent_dim: int = LATENT_DIM,
                 learning_rate: float = LEARNING_RATE, max_epochs: int = MAX_EPOCHS, patience: int = PATIENCE,
                 chunk_size: int = CHUNK_SIZE, first_training_interval: int = 1,
                 surprise_probability: float = SURPRISE_PROBABILITY) -> None:
        super().__init__(env_id, seed=seed, evaluator=evaluator, pop_size=pop_size,
                         offspring_per_parent=offspring_per_parent, mutation_sigma=mutation_sigma,
                         mutation_prob=mutation_prob, archive_per_generation=archive_per_generation,
                         archive_selection=archive_selection, k_neighbors=k_neighbors)
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}.")
        if not 0.0 <= surprise_probability <= 1.0:
            raise ValueError(f"surprise_probability must be in [0, 1], got {surprise_probability}.")
        self.space = LearnedBehaviourSpace(observation_kind, latent_dim=latent_dim, learning_rate=learning_rate,
                                           max_epochs=max_epochs, patience=patience)
        self.space.clock = self.clock
        self.schedule = TrainingSchedule(first_training_interval)
        self.chunk_size = int(chunk_size)
        self.chunk_spent = 0
        """Evaluations spent in the running chunk of the training schedule."""
        self.surprise_probability = float(surprise_probability)
        self.archive_observations: np.ndarray | None = None
        """AE inputs of the archived entries, in archive order (kept to recompute their latents)."""
        self.population_observations: np.ndarray | None = None
        self.population_surprise: np.ndarray | None = None
        self.criteria: list[str] = []
        """The ranking criterion of every generation after the first ("novelty" or "surprise")."""

    # -- the behaviour space ------------------------------------------------------------------------
    def evaluate(self, genomes: np.ndarray, *, render: bool = False) -> list[EvaluationResult]:
        """Evaluate, rendering the final image when the AE works on images."""
        return super().evaluate(genomes, render=render or self.space.needs_render)

    def descriptors(self, results: list[EvaluationResult]) -> np.ndarray:
        """AE latents of the final observations (the learned behaviour descriptors)."""
        observations = self.space.observations(results)
        return self.space.describe(observations, self.rng)[0]

    def surprise(self, results: list[EvaluationResult]) -> np.ndarray:
        """AE reconstruction errors of the final observations."""
        observations = self.space.observations(results)
        return self.space.describe(observations, self.rng)[1]

    @property
    def trainings(self) -> int:
        """Number of AE trainings so far."""
        return len(self.space.reports)

    def choose_criterion(self) -> str:
        """Novelty until the AE has trained once, then surprise with ``surprise_probability`` (one draw of
        :attr:`rng` per generation)."""
        if self.trainings == 0:
            return "novelty"
        return "surprise" if self.rng.random() < self.surprise_probability else "novelty"

    # -- one generation -----------------------------------------------------------------------------
    def step(self) -> None:
        """First call: evaluate the initial population. Then: mutate, evaluate, encode, pick the criterion,
        archive the best offspring by it and keep the best of parents + offspring by it. After every finished
        chunk of ``chunk_size`` evaluations the schedule may call for a training (every stored latent is then
        recomputed)."""
        before = self.evaluations
        if self.population is None:
            genomes = self.initial_population()
            observations = self.space.observations(self.evaluate(genomes))
            latents, surprise = self.space.describe(observations, self.rng)
            self.archive = NoveltyArchive(self.genome_size, latents.shape[1], k_neighbors=self.k_neighbors)
            self.archive_observations = np.zeros((0, *observations.shape[1:]), dtype=np.float32)
            self.population, self.population_observations = genomes, observations
            self.population_descriptors, self.population_surprise = latents, surprise
            self.population_novelty = self.score_novelty(latents)
            offspring_observations = observations[:0]
        else:
            offspring = self.mutate(self.population)
            offspring_observations = self.space.observations(self.evaluate(offspring))
            offspring_latents, offspring_surprise = self.space.describe(offspring_observations, self.rng)
            genomes = np.concatenate([self.population, offspring])
            observations = np.concatenate([self.population_observations, offspring_observations])
            latents = np.concatenate([self.population_descriptors, offspring_latents])
            surprise = np.concatenate([self.population_surprise, offspring_surprise])
            novelty = self.score_novelty(latents)
            criterion = self.choose_criterion()
            self.criteria.append(criterion)
            score = novelty if criterion == "novelty" else surprise
            parents = len(self.population)
            chosen = self._select_for_archive(score[parents:])
            self.archive.add(offspring[chosen], offspring_latents[chosen])
            self.archive_observations = np.concatenate([self.archive_observations, offspring_observations[chosen]])
            survivors = np.argsort(-score, kind="stable")[:self.pop_size]
            self.population = genomes[survivors]
            self.population_observations = observations[survivors]
            self.population_descriptors = latents[survivors]
            self.population_surprise = surprise[survivors]
            self.population_novelty = novelty[survivors]
        self.chunk_spent += self.evaluations - before
        if self.chunk_spent >= self.chunk_size:
            self.chunk_spent = 0
            if self.schedule.chunk_finished():
                # ``get_training_data``: archive + population (after selection) + the last offspring.
                self.retrain(np.concatenate([self.archive_observations, self.population_observations,
                                             offspring_observations]))

    def retrain(self, observations: np.ndarray) -> None:
        """Train the AE on ``observations``, then recompute the latents and surprise of archive and population
        and the population's novelty."""
        self.space.train(observations, self.rng)
        self.refresh_descriptors()

    def refresh_descriptors(self) -> None:
        """Re-encode the stored observations with the current AE: archive latents, population latents,
        surprise and novelty."""
        archive_latents, _ = self.space.describe(self.archive_observations, self.rng)
        self.archive.relabel(archive_latents)
        self.population_descriptors, self.population_surprise = self.space.describe(self.population_observations,
                                                                                    self.rng)
        self.population_novelty = self.score_novelty(self.population_descriptors)

    def summary(self) -> dict[str, Any]:
        """NS summary plus the AE's input, its trainings and the generations ranked by novelty and by surprise."""
        return {**super().summary(), "observation_kind": self.space.observation_kind,
                "autoencoder_trainings": self.trainings,
                "autoencoder_training_samples": [report.samples for report in self.space.reports],
                "generations_by_novelty": self.criteria.count("novelty"),
                "generations_by_surprise": self.criteria.count("surprise")}

    # -- state --------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """NS state plus the AE (weights, Adam state), the schedule, stored observations, surprise and criteria."""
        return {**super().state_dict(), "space": self.space.state_dict(), "schedule": copy.deepcopy(self.schedule),
                "chunk_spent": self.chunk_spent, "archive_observations": copy.deepcopy(self.archive_observations),
                "population_observations": copy.deepcopy(self.population_observations),
                "population_surprise": copy.deepcopy(self.population_surprise), "criteria": list(self.criteria)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`."""
        super().load_state_dict(state)
        self.space.load_state_dict(state["space"])
        for key in ("schedule", "archive_observations", "population_observations", "population_surprise"):
            setattr(self, key, copy.deepcopy(state[key]))
        self.chunk_spent = int(state["chunk_spent"])
        self.criteria = list(state["criteria"])


if __name__ == "__main__":
    # Run the class of the importable module, not of ``__main__``: checkpoints record
    # ``qd.taxons.TAXONS``, so ``QDRun.resume`` works from any script.
    from qd.run import main
    from qd.taxons import TAXONS as _TAXONS

    sys.exit(main(_TAXONS))
