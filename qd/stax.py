"""STAX: SERENE in the behaviour space TAXONS learns (an autoencoder of the final observation).

Paolo, Coninx, Laflaquière, Doncieux, "Discovering and Exploiting Sparse Rewards in a Learned Behavior
Space" (Evolutionary Computation, 2023; arXiv 2111.01919). Novelty search and the emitters of
:class:`qd.serene.SERENE` work on the AE latent of the final observation instead of the hand-designed
outcome. The AE is retrained on a growing interval: after the first novelty-search chunk, then after 2
more, then 3 more, ... (:class:`qd.autoencoder.TrainingSchedule`, after GPaolo/STAX ``core/searcher.py``:
``training_interval`` starts at 1, counts exploration chunks and grows by 1 after every training; TAXONS
uses the same schedule), each training running to early stopping
(``_train_ae``, see :mod:`qd.autoencoder`), on the novelty archive + population + last offspring + reward
archive observations (``get_training_data`` with ``train_on_reward``). After a training the latents of
everything stored are recomputed: novelty archive (rebuilt), population (and its novelty), reward archive
and emitters (:meth:`SERENE.recompute_descriptors`); then :meth:`SERENE.on_descriptor_space_changed` is
called. ``observation_kind="signature"`` feeds the AE the truncated signature of the outcome trajectory
(:mod:`qd.signature`; STAX's ``sign_bd`` option).

The AE machinery is :class:`qd.autoencoder.LearnedBehaviourSpace`, shared with :class:`qd.taxons.TAXONS`.

Deviation: the authors' ``SereneTaxons`` also ranks each novelty-search generation by novelty or by
surprise (the TAXONS coin); SERENE's novelty-search generation here is :meth:`NoveltySearch.step`, which
ranks by novelty, so STAX ranks by novelty only (the authors' ``STAX_NT`` selection with a trained AE).

The AE's input is the final 64x64 render by default, as in the paper; ``observation_kind="state"`` (fast, for
tests) holds the outcome coordinates on HardMaze, Curling and AntMaze (see :mod:`qd.autoencoder`).

Run: ``python -m qd.stax --env HardMaze-v0 --budget 50000``.
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
from qd.emitters import EMITTER_POP_SIZE
from qd.evaluation import EvaluationResult, Evaluator
from qd.novelty import K_NEIGHBORS
from qd.serene import BOOTSTRAP_GENERATIONS, CHUNK_SIZE, SERENE
from qd.signature import SIGNATURE_DEPTH


class STAX(SERENE):
    """SERENE whose behaviour descriptors are AE latents, with the AE retrained on a growing interval.

    The arguments not listed below (``env_id``, ``seed``, ``evaluator``, ``pop_size``,
    ``offspring_per_parent``, ``mutation_sigma``, ``mutation_prob``, ``archive_per_generation``,
    ``archive_selection``, ``k_neighbors``, ``chunk_size``, ``emitter``, ``emitter_pop_size``,
    ``bootstrap_generations``, ``stagnation_window``) are as in :class:`~qd.serene.SERENE`.

    Args:
        observation_kind: "image" (final 64x64 render, the paper), "state" (``state_observation()``, which
            holds the outcome coordinates on HardMaze, Curling and AntMaze) or "signature" (signature of the
            outcome trajectory).
        latent_dim: AE latent size (10).
        learning_rate: AE Adam learning rate (1e-3).
        max_epochs: Epoch cap of a training (100).
        patience: Early-stopping patience (3).
        signature_depth: Signature depth of the "signature" option (2).
        first_training_interval: Novelty-search chunks before the first training (1); the interval then
            grows by 1 after every training.

    Raises:
        ValueError: for invalid SERENE or AE settings, or a first interval < 1.
    """

    name: ClassVar[str] = "stax"

    def __init__(self, env_id: str, *, seed: int = 0, evaluator: Evaluator | None = None, pop_size: int = 100,
                 offspring_per_parent: int = 2, mutation_sigma: float = 0.05, mutation_prob: float = 1.0,
                 archive_per_generation: int = 5, archive_selection: str = "best",
                 k_neighbors: int = K_NEIGHBORS, chunk_size: int = CHUNK_SIZE, emitter: str = "elitist",
                 emitter_pop_size: int = EMITTER_POP_SIZE, bootstrap_generations: int = BOOTSTRAP_GENERATIONS,
                 stagnation_window: int | None = None, observation_kind: str = "image",
                 latent_dim: int = LATENT_DIM, learning_rate: float = LEARNING_RATE, max_epochs: int = MAX_EPOCHS,
                 patience: int = PATIENCE, signature_depth: int = SIGNATURE_DEPTH,
                 first_training_interval: int = 1) -> None:
        super().__init__(env_id, seed=seed, evaluator=evaluator, pop_size=pop_size,
                         offspring_per_parent=offspring_per_parent, mutation_sigma=mutation_sigma,
                         mutation_prob=mutation_prob, archive_per_generation=archive_per_generation,
                         archive_selection=archive_selection, k_neighbors=k_neighbors, chunk_size=chunk_size,
                         emitter=emitter, emitter_pop_size=emitter_pop_size,
                         bootstrap_generations=bootstrap_generations, stagnation_window=stagnation_window)
        self.space = LearnedBehaviourSpace(observation_kind, latent_dim=latent_dim, learning_rate=learning_rate,
                                           max_epochs=max_epochs, patience=patience, signature_depth=signature_depth)
        self.space.clock = self.clock
        self.schedule = TrainingSchedule(first_training_interval)
        """When the AE trains: counts finished novelty-search chunks."""
        self.archive_observations: np.ndarray | None = None
        """AE inputs of the novelty archive's entries, in archive order."""
        self.population_observations: np.ndarray | None = None
        self._recent: dict[bytes, np.ndarray] = {}
        """AE inputs of the genomes evaluated in the running step, by genome bytes (not saved: step-local)."""

    # -- the behaviour space ------------------------------------------------------------------------
    def evaluate(self, genomes: np.ndarray, *, render: bool = False) -> list[EvaluationResult]:
        """Evaluate (rendering when the AE works on images), remembering the AE inputs of this step."""
        results = super().evaluate(genomes, render=render or self.space.needs_render)
        for genome, observation in zip(np.asarray(genomes, dtype=np.float64), self.space.observations(results)):
            self._recent[genome.tobytes()] = observation
        return results

    def descriptors(self, results: list[EvaluationResult]) -> np.ndarray:
        """AE latents of the results' observations."""
        return self.space.describe(self.space.observations(results), self.rng)[0]

    def feed_novelty_archive(self, genomes: np.ndarray, descriptors: np.ndarray,
                             results: list[EvaluationResult]) -> None:
        """SERENE's insertion of emitter offspring, keeping their AE inputs beside the archive."""
        super().feed_novelty_archive(genomes, descriptors, results)
        self._sync_archive_observations(extra=self.space.observations(results))

    def _sync_archive_observations(self, extra: np.ndarray | None = None) -> None:
        """Append the AE inputs of archive entries added since the last sync (``extra`` first, then this step's)."""
        if self.archive is None:
            return
        known = [] if self.archive_observations is None else [self.archive_observations]
        if extra is not None:
            known.append(extra)
        stored = sum(len(k) for k in known)
        missing = []
        if len(self.archive) > stored:
            missing = [self._recent[g.tobytes()] for g in self.archive.genomes[stored:]]
        if missing:
            known.append(np.stack(missing))
        if known:
            self.archive_observations = np.concatenate(known)

    # -- one generation -----------------------------------------------------------------------------
    def step(self) -> None:
        """A SERENE generation; the stored AE inputs follow the archive and population, and after a finished
        novelty-search chunk the AE retrains when :attr:`schedule` says so."""
        self._recent = {}
        ns_before = self.ns_evaluations
        previous = {} if self.population is None else {
            g.tobytes(): o for g, o in zip(self.population, self.population_observations)}
        super().step()
        if self.ns_evaluations == ns_before:  # an emitter generation: archive and population unchanged
            self._recent = {}
            return
        lookup = {**previous, **self._recent}
        self.population_observations = np.stack([lookup[g.tobytes()] for g in self.population])
        if self.archive_observations is None:
            self.archive_observations = self.population_observations[:0].copy()
        self._sync_archive_observations()
        chunk_ended = self.phase == "emitters" or self.chunk_spent == 0
        if chunk_ended and self.schedule.chunk_finished():
            offspring = [o for key, o in self._recent.items() if key not in previous]
            self.retrain(np.concatenate([self.archive_observations, self.population_observations,
                                         *([np.stack(offspring)] if offspring else []),
                                         *self._reward_observations()]))
        self._recent = {}

    def _reward_observations(self) -> list[np.ndarray]:
        if not len(self.reward_archive):
            return []
        return [self.space.observations(self.reward_archive.results)]

    def retrain(self, observations: np.ndarray) -> None:
        """Train the AE, then recompute every stored latent (novelty archive, population, reward archive,
        emitters) and call :meth:`on_descriptor_space_changed`."""
        self.space.train(observations, self.rng)
        self.archive.relabel(self.space.encode(self.archive_observations))
        self.population_descriptors = self.space.encode(self.population_observations)
        self.recompute_descriptors()
        self.population_novelty = self.score_novelty(self.population_descriptors)
        if self.phase == "emitters":  # the chunk just switched: order its candidates in the new space
            self._start_emitter_chunk()
        self.on_descriptor_space_changed()

    def summary(self) -> dict[str, Any]:
        """SERENE summary plus the AE's input and trainings (every novelty-search generation ranks by novelty)."""
        return {**super().summary(), "observation_kind": self.space.observation_kind,
                "autoencoder_trainings": len(self.space.reports),
                "autoencoder_training_samples": [report.samples for report in self.space.reports],
                "generations_by_novelty": max(self.ns_generations - 1, 0), "generations_by_surprise": 0}

    # -- state --------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """SERENE's state plus the AE, the stored AE inputs and the training schedule."""
        return {**super().state_dict(), "space": self.space.state_dict(),
                "archive_observations": copy.deepcopy(self.archive_observations),
                "population_observations": copy.deepcopy(self.population_observations),
                "schedule": copy.deepcopy(self.schedule)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`."""
        super().load_state_dict(state)
        self.space.load_state_dict(state["space"])
        for key in ("archive_observations", "population_observations", "schedule"):
            setattr(self, key, copy.deepcopy(state[key]))


if __name__ == "__main__":
    # Run the class of the importable module, not of ``__main__``: checkpoints record
    # ``qd.stax.STAX``, so ``QDRun.resume`` works from any script.
    from qd.run import main
    from qd.stax import STAX as _STAX

    sys.exit(main(_STAX))
