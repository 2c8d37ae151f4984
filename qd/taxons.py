"""TAXONS: Novelty Search in a behaviour space an autoencoder learns from the final observation.

Paolo, Laflaquière, Coninx, Doncieux, "Unsupervised Learning and Exploration of Reachable Outcome
Space", ICRA 2020 (arXiv 1909.05508). The behaviour descriptor of a genome is the AE latent of the final
observation (the 64x64 render, or the ``state_observation()`` vector for speed); novelty is the mean
distance to the k = 15 nearest latents of population + offspring + archive; surprise is the AE's
reconstruction error. Each generation ranks by one criterion: novelty during the first 30 generations,
then novelty or surprise with probability 0.5 each; the 5 best offspring by that criterion enter the
archive and the best 100 of parents + offspring by it survive. Every 30 generations the AE is retrained
on the archive + parents + offspring observations, and the latents (and surprise) of the archive and the
population are recomputed with the new encoder.

Settings from the authors' code: 30 novelty-only generations and the 0.5 coin
(GPaolo/taxons ``core/utils/optimizer.py`` ``NoveltySurpriseOptimizer``), retraining every 30 generations
(``update_interval`` in ``scripts/parameters.py``), 5 archived per generation by the criterion and
population update by the criterion (GPaolo/STAX ``core/evolvers/taxons.py`` ``TaxonsSearch``), training
data archive + population + offspring (STAX ``core/searcher.py`` ``get_training_data``); the AE and its
training in :mod:`qd.autoencoder`; population, mutation and k from :class:`qd.ns.NoveltySearch`.

Deviations: each retraining runs to early stopping (STAX's ``_train_ae``, at most 100 epochs) instead of
the TAXONS repository's 5 epochs on the generations since the last training; the coin is drawn from the
algorithm's seeded generator.

Run: ``python -m qd.taxons --env HardMaze-v0 --budget 50000`` (``-params observation_kind:state`` for the
fast state-vector AE).
"""

from __future__ import annotations

import copy
import sys
from typing import Any, ClassVar

import numpy as np

from qd.autoencoder import LATENT_DIM, LEARNING_RATE, MAX_EPOCHS, PATIENCE, LearnedBehaviourSpace, rebuilt_archive
from qd.evaluation import EvaluationResult, Evaluator
from qd.novelty import K_NEIGHBORS, NoveltyArchive
from qd.ns import NoveltySearch

CRITERIA = ("novelty", "surprise")
WARMUP_GENERATIONS = 30
"""Novelty-only generations before the coin flips (``NoveltySurpriseOptimizer``: ``step_count < 30``)."""
RETRAIN_EVERY = 30
"""Generations between AE trainings (``update_interval``, GPaolo/taxons ``scripts/parameters.py``)."""
SURPRISE_PROBABILITY = 0.5
"""Chance of ranking a generation by surprise after the warm-up (``np.random.uniform() <= 0.5``)."""


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
        observation_kind: "image" (final 64x64 render, the paper), "state" (``state_observation()``) or
            "signature" (depth-2 signature of the outcome trajectory, :mod:`qd.signature`).
        latent_dim: AE latent size (10).
        learning_rate: AE Adam learning rate (1e-3).
        max_epochs: Epoch cap of a retraining (100).
        patience: Early-stopping patience of a retraining (3).
        warmup_generations: Novelty-only generations at the start (30).
        retrain_every: Generations between AE trainings (30; 0 never trains: the untrained AE stays).
        surprise_probability: Chance a post-warm-up generation ranks by surprise (0.5).

    Raises:
        ValueError: for invalid NS settings, an unknown ``observation_kind``, a negative interval or a
            probability outside [0, 1].
    """

    name: ClassVar[str] = "taxons"

    def __init__(self, env_id: str, *, seed: int = 0, evaluator: Evaluator | None = None, pop_size: int = 100,
                 offspring_per_parent: int = 2, mutation_sigma: float = 0.05, mutation_prob: float = 1.0,
                 archive_per_generation: int = 5, archive_selection: str = "best",
                 k_neighbors: int = K_NEIGHBORS, observation_kind: str = "image", latent_dim: int = LATENT_DIM,
                 learning_rate: float = LEARNING_RATE, max_epochs: int = MAX_EPOCHS, patience: int = PATIENCE,
                 warmup_generations: int = WARMUP_GENERATIONS, retrain_every: int = RETRAIN_EVERY,
                 surprise_probability: float = SURPRISE_PROBABILITY) -> None:
        super().__init__(env_id, seed=seed, evaluator=evaluator, pop_size=pop_size,
                         offspring_per_parent=offspring_per_parent, mutation_sigma=mutation_sigma,
                         mutation_prob=mutation_prob, archive_per_generation=archive_per_generation,
                         archive_selection=archive_selection, k_neighbors=k_neighbors)
        if warmup_generations < 0 or retrain_every < 0:
            raise ValueError(f"warmup_generations and retrain_every must be >= 0, got {warmup_generations} and "
                             f"{retrain_every}.")
        if not 0.0 <= surprise_probability <= 1.0:
            raise ValueError(f"surprise_probability must be in [0, 1], got {surprise_probability}.")
        self.space = LearnedBehaviourSpace(observation_kind, latent_dim=latent_dim, learning_rate=learning_rate,
                                           max_epochs=max_epochs, patience=patience)
        self.warmup_generations = int(warmup_generations)
        self.retrain_every = int(retrain_every)
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

    def choose_criterion(self, generation: int) -> str:
        """Novelty during the warm-up, then surprise with ``surprise_probability`` (one draw of :attr:`rng`)."""
        if generation <= self.warmup_generations:
            return "novelty"
        return "surprise" if self.rng.random() < self.surprise_probability else "novelty"

    # -- one generation -----------------------------------------------------------------------------
    def step(self) -> None:
        """First call: evaluate the initial population. Then: mutate, evaluate, encode, pick the criterion,
        archive the best offspring by it, keep the best of parents + offspring by it, and retrain the AE
        (recomputing every stored latent) when due."""
        if self.population is None:
            genomes = self.initial_population()
            observations = self.space.observations(self.evaluate(genomes))
            latents, surprise = self.space.describe(observations, self.rng)
            self.archive = NoveltyArchive(self.genome_size, latents.shape[1], k_neighbors=self.k_neighbors,
                                          seed=int(self.rng.integers(2**31)))
            self.archive_observations = np.zeros((0, *observations.shape[1:]), dtype=np.float32)
            self.population, self.population_observations = genomes, observations
            self.population_descriptors, self.population_surprise = latents, surprise
            self.population_novelty = self.archive.novelty(latents)
            return
        generation = self.generation
        offspring = self.mutate(self.population)
        offspring_observations = self.space.observations(self.evaluate(offspring))
        offspring_latents, offspring_surprise = self.space.describe(offspring_observations, self.rng)
        genomes = np.concatenate([self.population, offspring])
        observations = np.concatenate([self.population_observations, offspring_observations])
        latents = np.concatenate([self.population_descriptors, offspring_latents])
        surprise = np.concatenate([self.population_surprise, offspring_surprise])
        novelty = self.archive.novelty(latents)
        criterion = self.choose_criterion(generation)
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
        if self.retrain_every and generation % self.retrain_every == 0:
            self.retrain(np.concatenate([self.archive_observations, observations]))

    def retrain(self, observations: np.ndarray) -> None:
        """Train the AE on ``observations``, then recompute the latents and surprise of archive and population
        (the archive is rebuilt with the new latents) and the population's novelty."""
        self.space.train(observations, self.rng)
        self.refresh_descriptors()

    def refresh_descriptors(self) -> None:
        """Re-encode the stored observations with the current AE: archive latents, population latents,
        surprise and novelty."""
        archive_latents, _ = self.space.describe(self.archive_observations, self.rng)
        self.archive = rebuilt_archive(self.archive, archive_latents, seed=int(self.rng.integers(2**31)))
        self.population_descriptors, self.population_surprise = self.space.describe(self.population_observations,
                                                                                    self.rng)
        self.population_novelty = self.archive.novelty(self.population_descriptors)

    # -- state --------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """NS state plus the AE (weights, Adam state), stored observations, surprise and criteria."""
        return {**super().state_dict(), "space": self.space.state_dict(),
                "archive_observations": copy.deepcopy(self.archive_observations),
                "population_observations": copy.deepcopy(self.population_observations),
                "population_surprise": copy.deepcopy(self.population_surprise), "criteria": list(self.criteria)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`."""
        super().load_state_dict(state)
        self.space.load_state_dict(state["space"])
        for key in ("archive_observations", "population_observations", "population_surprise"):
            setattr(self, key, copy.deepcopy(state[key]))
        self.criteria = list(state["criteria"])


if __name__ == "__main__":
    # Run the class of the importable module, not of ``__main__``: checkpoints record
    # ``qd.taxons.TAXONS``, so ``QDRun.resume`` works from any script.
    from qd.run import main
    from qd.taxons import TAXONS as _TAXONS

    sys.exit(main(_TAXONS))
