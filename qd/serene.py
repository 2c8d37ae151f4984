"""SERENE (Paolo, Coninx, Doncieux, Laflaquière, "Sparse reward exploration via novelty search and emitters",
GECCO 2021): alternate chunks of novelty search, which explores, and of reward emitters, which exploit the
rewarding areas novelty search finds.

Settings and rules from GPaolo/SERENE (MIT): ``parameters.py``, ``core/searcher.py`` (``chunk_step``,
``_main_search``, ``_emitter_search``), ``core/evolvers/emitter_evolver.py`` and ``core/evolvers/serene.py``:

- Budget split: chunks of ``chunk_size`` = 1000 evaluations, alternating novelty search and emitters. The
  emitter chunk is skipped while there is no emitter nor candidate. A chunk ends at the first generation
  boundary where it has spent >= ``chunk_size``.
- Novelty search's novelty (``evaluate_performances`` with ``get_novelty_ref_set``): parents and offspring are
  scored (:func:`qd.novelty.knn_novelty`) against parents + offspring + novelty archive + *reward archive*, so
  that the areas the emitters exploit push exploration away from them.
- Candidates (``init_emitters``, which runs after an offspring generation is evaluated and before its novelty
  is measured): each rewarding genome of the parents and offspring not yet used (so the initial population's
  with the first offspring, then the new offspring's) becomes a candidate emitter centred on it, with sigma =
  (distance to the nearest other genome of parents + offspring) / 3 (the mutation sigma when that distance is
  0), and enters the reward archive, before the generation's novelty is measured.
- Bootstrap: at the start of an emitter chunk the candidates are ordered by novelty of their ancestor
  against the reward archive (most novel first); while more than ``chunk_size / 3`` of the chunk is left,
  the next candidate runs ``bootstrap_generations`` = 6 generations (initial population + 5) and becomes an
  emitter only if its improvement is > 0.
- Selection: the emitter is drawn uniformly from the first Pareto front of (novelty of its ancestor
  against the reward archive, improvement); it runs until the chunk ends or it terminates, and its
  improvement is re-estimated at the chunk's end.
- Termination: the emitter's stagnation rule (and CMA-ES's own ``check_stop``), see :mod:`qd.emitters`.
- Reward archive: the rewarding genomes of novelty search, then per emitter generation the emitter's best
  rewarding individual when it has archived none yet, else every individual whose reward beats the best it
  archived.
- Feedback: once the bootstraps of an emitter chunk are done, the novelty reference set is fixed for the rest
  of the chunk: NS population + last NS offspring + novelty archive + reward archive (``ns_reference_set``).
  Each generation of the selected emitter scores its population's novelty against it; individuals more novel
  than the most novel so far become candidates. At the end of the chunk the NS population and offspring are
  rescored against the grown reward archive, then each terminated emitter's ``archive_per_generation`` (5,
  ``_lambda``) most novel candidates (random ones with ``archive_selection="random"``) enter the novelty
  archive.

Reward archive: a plain :class:`RewardArchive` (arrays + the evaluation results), not a pyribs archive. The
authors' reward archive is an unbounded list (every improving rewarding solution is kept, not one elite
per cell); its descriptors serve as a novelty reference; and in STAX the descriptor space is a learned latent
that changes, so a GridArchive over fixed bounds would have to be rebuilt. Coverage and best reward per area
are already kept by :class:`~qd.metrics.RunMetrics` over the outcome grid.

Deviations (besides those of :class:`~qd.ns.NoveltySearch`):

- The reward archive is updated after every emitter generation including the initial population, and a
  terminated emitter's ancestor is not stored a second time (it entered at candidate creation).
- A candidate whose optimiser stops during the bootstrap (CMA-ES ``check_stop``) is dropped at once.
- Novelty-archive candidates of an emitter are kept once per genome (the elitist ES can offer the same
  survivor again).
- Candidates of equal ancestor novelty keep their creation order (a stable sort); the authors' tie order is their
  container's. The authors' ``max_emitter_steps`` check is not applied: an emitter ends by stagnation or by
  CMA-ES's own stop.
- The candidate pool has no cap, as in the authors' code (docs/algorithms/qd.md: what that does at 500k).

Run: ``python -m qd.serene --env HardMaze-v0 --budget 50000`` (``-params emitter:cmaes`` for CMA-ES).
"""

from __future__ import annotations

import copy
import sys
from typing import Any, ClassVar

import numpy as np
from scipy.spatial.distance import cdist

from qd.emitters import EMITTER_POP_SIZE, BaseEmitter, CMAESEmitter, ElitistESEmitter
from qd.evaluation import EvaluationResult, Evaluator
from qd.novelty import K_NEIGHBORS, knn_novelty
from qd.ns import NoveltySearch

CHUNK_SIZE = 1000
"""Evaluations per chunk of novelty search and of emitters (``chunk_size`` in SERENE's ``parameters.py``)."""
BOOTSTRAP_GENERATIONS = 6
"""Candidate bootstrap: initial population + 5 generations (``candidate_emitter_eval``)."""
SIGMA_STDS = 3
"""Initial sigma = nearest-genome distance / 3 (``number_of_std`` in ``calculate_init_sigma``)."""
EMITTERS = {"elitist": ElitistESEmitter, "cmaes": CMAESEmitter}
PHASES = ("ns", "emitters")


def pareto_front(objectives: np.ndarray) -> np.ndarray:
    """Indices of the first non-dominated front of ``objectives`` (n, m), every objective maximised.

    ``p`` dominates ``q`` when it is >= on every objective and > on one (the authors'
    ``fast_non_dominated_sort``); equal points are both on the front.
    """
    objectives = np.asarray(objectives, dtype=np.float64)
    if objectives.ndim != 2:
        raise ValueError(f"objectives must have shape (n, m), got {objectives.shape}.")
    geq = np.all(objectives[:, None, :] >= objectives[None, :, :], axis=2)
    gt = np.any(objectives[:, None, :] > objectives[None, :, :], axis=2)
    dominated = np.any(geq & gt, axis=0)  # column q: some p dominates q
    return np.flatnonzero(~dominated)


def initial_sigma(genome_index: int, genomes: np.ndarray, *, fallback: float) -> float:
    """SERENE's initial emitter sigma: distance from ``genomes[genome_index]`` to the nearest other genome / 3.

    Returns ``fallback`` (the mutation sigma) when that distance is 0 or there is no other genome.
    """
    genomes = np.asarray(genomes, dtype=np.float64)
    others = np.delete(genomes, genome_index, axis=0)
    if len(others) == 0:
        return float(fallback)
    sigma = float(cdist(genomes[genome_index][None], others).min()) / SIGMA_STDS
    return sigma if sigma > 0 else float(fallback)


class RewardArchive:
    """The rewarding solutions SERENE found: genomes, descriptors, rewards, areas and evaluation results.

    An unbounded list in insertion order (the authors' ``rew_archive``). Results are kept so that a
    subclass whose behaviour space changes (STAX) can recompute :attr:`descriptors`.
    """

    def __init__(self, genome_size: int) -> None:
        self.genome_size = int(genome_size)
        self.genomes: list[np.ndarray] = []
        self.descriptors_list: list[np.ndarray] = []
        self.rewards: list[float] = []
        self.areas: list[int] = []
        self.results: list[EvaluationResult] = []

    def __len__(self) -> int:
        return len(self.genomes)

    def add(self, genome: np.ndarray, descriptor: np.ndarray, result: EvaluationResult) -> None:
        """Store one rewarding solution."""
        self.genomes.append(np.asarray(genome, dtype=np.float64).copy())
        self.descriptors_list.append(np.asarray(descriptor, dtype=np.float64).reshape(-1).copy())
        self.rewards.append(float(result.reward))
        self.areas.append(int(result.reward_area))
        self.results.append(result)

    @property
    def descriptors(self) -> np.ndarray:
        """(len, d) descriptors; (0, 0) when empty."""
        return np.stack(self.descriptors_list) if self.descriptors_list else np.empty((0, 0))

    def best_per_area(self) -> dict[int, float]:
        """Best archived reward per reward-area id."""
        best: dict[int, float] = {}
        for area, reward in zip(self.areas, self.rewards):
            best[area] = max(reward, best.get(area, -np.inf))
        return best


class SERENE(NoveltySearch):
    """SERENE on the behaviour descriptor :meth:`descriptors` (here the hand-designed outcome).

    One :meth:`step` is one generation of whichever chunk is running: a novelty-search generation
    (:meth:`NoveltySearch.step`) or one emitter generation (a bootstrap generation of a candidate or a
    generation of the selected emitter). All state lives in :meth:`state_dict`, so a checkpoint taken
    between any two steps resumes exactly.

    Novelty search plugs in through :class:`~qd.ns.NoveltySearch`'s hooks: :meth:`offspring_evaluated`
    (candidates and reward archive, before novelty is measured) and :meth:`extra_novelty_reference` (the reward
    archive). Subclass hooks: :meth:`descriptors` (the behaviour space), :meth:`on_descriptor_space_changed`
    (called by subclasses whose behaviour space changes, e.g. STAX after retraining its autoencoder; no-op here;
    :meth:`recompute_descriptors` refreshes SERENE's own stored descriptors) and :meth:`feed_novelty_archive`
    (where emitter offspring enter the novelty archive).

    The arguments not listed below (``env_id``, ``seed``, ``evaluator``, ``pop_size``,
    ``offspring_per_parent``, ``mutation_sigma``, ``mutation_prob``, ``archive_per_generation``,
    ``archive_selection``, ``k_neighbors``) are as in :class:`~qd.ns.NoveltySearch`;
    ``archive_per_generation`` / ``archive_selection`` also choose the terminated emitters' offspring fed
    back to the novelty archive (the authors' ``_lambda`` / ``selection_operator``).

    Args:
        chunk_size: Evaluations per chunk of novelty search and of emitters (1000).
        emitter: "elitist" (the paper's ES) or "cmaes" (pyribs CMA-ES).
        emitter_pop_size: Emitter population (6).
        bootstrap_generations: Candidate bootstrap generations, initial population included (6).
        stagnation_window: Generations of the stagnation test (None: ``int(20 * genome_size / 6 + 120)``).

    Raises:
        ValueError: for an unknown emitter or non-positive sizes.
    """

    name: ClassVar[str] = "serene"

    def __init__(self, env_id: str, *, seed: int = 0, evaluator: Evaluator | None = None, pop_size: int = 100,
                 offspring_per_parent: int = 2, mutation_sigma: float = 0.05, mutation_prob: float = 1.0,
                 archive_per_generation: int = 5, archive_selection: str = "best",
                 k_neighbors: int = K_NEIGHBORS, chunk_size: int = CHUNK_SIZE, emitter: str = "elitist",
                 emitter_pop_size: int = EMITTER_POP_SIZE, bootstrap_generations: int = BOOTSTRAP_GENERATIONS,
                 stagnation_window: int | None = None) -> None:
        super().__init__(env_id, seed=seed, evaluator=evaluator, pop_size=pop_size,
                         offspring_per_parent=offspring_per_parent, mutation_sigma=mutation_sigma,
                         mutation_prob=mutation_prob, archive_per_generation=archive_per_generation,
                         archive_selection=archive_selection, k_neighbors=k_neighbors)
        if emitter not in EMITTERS:
            raise ValueError(f"emitter must be one of {tuple(EMITTERS)}, got {emitter!r}.")
        for label, value in (("chunk_size", chunk_size), ("emitter_pop_size", emitter_pop_size),
                             ("bootstrap_generations", bootstrap_generations)):
            if value < 1:
                raise ValueError(f"{label} must be >= 1, got {value}.")
        self.chunk_size = int(chunk_size)
        self.emitter_kind = emitter
        self.emitter_pop_size = int(emitter_pop_size)
        self.bootstrap_generations = int(bootstrap_generations)
        self.stagnation_window = stagnation_window
        self.phase = "ns"
        self.chunk_spent = 0
        """Evaluations spent in the running chunk."""
        self.ns_evaluations = 0
        self.emitter_evaluations = 0
        self.ns_generations = 0
        """Novelty-search generations, the initial population included."""
        self.reward_archive = RewardArchive(self.genome_size)
        self.candidates: dict[int, BaseEmitter] = {}
        """Candidate emitters waiting for (or in) their bootstrap, by id."""
        self.candidate_queue: list[int] = []
        """Bootstrap order of this emitter chunk."""
        self.bootstrapping: int | None = None
        """Candidate whose bootstrap is running."""
        self.emitters: dict[int, BaseEmitter] = {}
        """Emitters that passed the bootstrap, by id."""
        self.active: int | None = None
        """Emitter selected for the running chunk."""
        self.finished: dict[int, BaseEmitter] = {}
        """Emitters terminated in the running chunk (their offspring are fed back at its end)."""
        self.next_emitter_id = 0
        self.emitters_created = 0
        self.emitters_promoted = 0
        self.emitters_terminated = 0
        self.pending_initial: list[tuple[int, np.ndarray, np.ndarray, EvaluationResult]] = []
        """(index, genome, descriptor, result) of the initial population's rewarding genomes: they become
        candidates with the first offspring (the authors' ``init_emitters`` runs after offspring generations)."""
        self.offspring_descriptors: np.ndarray | None = None
        """Descriptors of the last novelty-search offspring (part of the emitters' novelty reference)."""
        self.offspring_results: list[EvaluationResult] = []
        """Their evaluation results (to recompute the descriptors when the behaviour space changes)."""
        self.chunk_reference: np.ndarray | None = None
        """The emitter chunk's novelty reference set, fixed once its bootstraps are done (None before)."""

    # -- hooks --------------------------------------------------------------------------------------------
    def on_descriptor_space_changed(self) -> None:
        """Called when :meth:`descriptors` changes meaning (STAX retrains its AE); no-op on a fixed space."""

    def recompute_descriptors(self) -> None:
        """Recompute SERENE's stored descriptors (reward archive, last offspring, waiting initial genomes,
        emitters) with the current :meth:`descriptors`."""
        archive = self.reward_archive
        if len(archive):
            archive.descriptors_list = list(self.descriptors(archive.results))
        if self.offspring_results:
            self.offspring_descriptors = self.descriptors(self.offspring_results)
        if self.pending_initial:
            fresh = self.descriptors([entry[3] for entry in self.pending_initial])
            self.pending_initial = [(i, g, d, r) for (i, g, _, r), d in zip(self.pending_initial, fresh)]
        for emitter in [*self.candidates.values(), *self.emitters.values(), *self.finished.values()]:
            emitter.ancestor_descriptor = self.descriptors([emitter.ancestor_result])[0]
            if emitter.population_results:
                emitter.population_descriptors = self.descriptors(emitter.population_results)
            if emitter.novelty_candidates:
                fresh = self.descriptors([c[3] for c in emitter.novelty_candidates])
                emitter.novelty_candidates = [(g, d, n, r) for (g, _, n, r), d in
                                              zip(emitter.novelty_candidates, fresh)]

    def feed_novelty_archive(self, genomes: np.ndarray, descriptors: np.ndarray,
                             results: list[EvaluationResult]) -> None:
        """Insert emitter offspring into the novelty archive (results passed for subclasses that keep them)."""
        self.archive.add(genomes, descriptors)

    # -- novelty search -----------------------------------------------------------------------------------
    def extra_novelty_reference(self) -> np.ndarray | None:
        """The reward archive's descriptors: novelty search also measures novelty against them."""
        return self.reward_archive.descriptors if len(self.reward_archive) else None

    def offspring_evaluated(self, parents: np.ndarray | None, offspring: np.ndarray,
                            results: list[EvaluationResult], descriptors: np.ndarray) -> None:
        """Create the candidate emitters (and fill the reward archive) before the generation's novelty is measured.

        Called with ``parents=None`` for the initial population, whose rewarding genomes wait for the first
        offspring generation.
        """
        if parents is None:
            self.pending_initial = [(i, offspring[i].copy(), descriptors[i].copy(), result)
                                    for i, result in enumerate(results) if result.reward > 0]
            return
        self.offspring_descriptors = np.asarray(descriptors, dtype=np.float64).copy()
        self.offspring_results = list(results)
        reference = np.concatenate([parents, offspring])
        entries = [(i, g, d, r) for i, g, d, r in self.pending_initial]
        entries += [(len(parents) + i, offspring[i], descriptors[i], result)
                    for i, result in enumerate(results) if result.reward > 0]
        self.pending_initial = []
        for index, genome, descriptor, result in entries:
            self.reward_archive.add(genome, descriptor, result)
            sigma = initial_sigma(index, reference, fallback=self.mutation_sigma)
            emitter = EMITTERS[self.emitter_kind](
                genome, descriptor, sigma=sigma, bounds=self.genome_bounds, pop_size=self.emitter_pop_size,
                seed=int(self.rng.integers(2**31)), ancestor_result=result, stagnation_window=self.stagnation_window)
            self.candidates[self.next_emitter_id] = emitter
            self.next_emitter_id += 1
            self.emitters_created += 1

    # -- the loop -----------------------------------------------------------------------------------------
    def step(self) -> None:
        """One generation of the running chunk; switches chunks at their ends."""
        while True:
            if self.phase == "ns":
                self._ns_generation()
                return
            if self._emitter_generation():
                return

    def _ns_generation(self) -> None:
        before = self.evaluations
        NoveltySearch.step(self)
        self.ns_generations += 1
        spent = self.evaluations - before
        self.ns_evaluations += spent
        self.chunk_spent += spent
        if self.chunk_spent >= self.chunk_size:
            self.chunk_spent = 0
            if self.candidates or self.emitters:
                self._start_emitter_chunk()

    def _reward_novelty(self, descriptors: np.ndarray) -> np.ndarray:
        """Novelty of ancestor descriptors against the reward archive, which holds them (the nearest dropped)."""
        with self.clock.measure("novelty"):
            return knn_novelty(descriptors, self.reward_archive.descriptors, k=self.k_neighbors)

    def _start_emitter_chunk(self) -> None:
        """Order the candidates by novelty against the reward archive (``candidates_by_novelty``)."""
        self.phase = "emitters"
        ids = list(self.candidates)
        if ids and len(self.reward_archive):
            novelty = self._reward_novelty(np.stack([self.candidates[i].ancestor_descriptor for i in ids]))
            ids = [ids[j] for j in np.argsort(-novelty, kind="stable")]
        self.candidate_queue = ids

    def _emitter_generation(self) -> bool:
        """One emitter generation; False (nothing evaluated) when the chunk ended instead."""
        if self.bootstrapping is None and self.candidate_queue and \
                self.chunk_size - self.chunk_spent > self.chunk_size / 3:
            self.bootstrapping = self.candidate_queue.pop(0)
        if self.bootstrapping is not None:
            self._bootstrap_generation()
            return True
        if self.chunk_spent < self.chunk_size and (self.active is not None or self.emitters):
            if self.active is None:
                self._select_emitter()
            self._active_generation()
            return True
        self._end_emitter_chunk()
        return False

    def _run_generation(self, emitter: BaseEmitter) -> None:
        """Ask, evaluate, tell; then the reward-archive update (``update_reward_archive``)."""
        genomes = emitter.ask()
        results = self.evaluate(genomes)
        descriptors = self.descriptors(results)
        emitter.tell(genomes, np.array([r.reward for r in results], dtype=np.float64), descriptors, results)
        self.chunk_spent += len(genomes)
        self.emitter_evaluations += len(genomes)
        rewards = emitter.population_rewards
        if not emitter.archived_rewards:
            best = int(np.argmax(rewards))
            chosen = [best] if rewards[best] > 0 else []
        else:
            limit = max(emitter.archived_rewards)
            chosen = list(np.flatnonzero(rewards > limit))
        for i in chosen:
            emitter.archived_rewards.append(float(rewards[i]))
            self.reward_archive.add(emitter.population[i], emitter.population_descriptors[i],
                                    emitter.population_results[i])

    def _bootstrap_generation(self) -> None:
        ident = self.bootstrapping
        candidate = self.candidates[ident]
        self._run_generation(candidate)
        if len(candidate.values) < self.bootstrap_generations and not candidate.terminated:
            return
        self.bootstrapping = None
        del self.candidates[ident]
        if not candidate.terminated and candidate.estimate_improvement() > 0:
            self.emitters[ident] = candidate
            self.emitters_promoted += 1

    def novelty_reference(self) -> np.ndarray:
        """The emitters' novelty reference set: NS population + last NS offspring + novelty archive + reward
        archive (``get_novelty_ref_set(ns_pop, ns_off)``)."""
        parts = [self.population_descriptors, self.offspring_descriptors, self.archive.descriptors]
        if len(self.reward_archive):
            parts.append(self.reward_archive.descriptors)
        return np.concatenate([p.reshape(len(p), -1) for p in parts if p is not None and len(p)])

    def _fixed_reference(self) -> np.ndarray:
        """The chunk's novelty reference set, taken on first use (once the bootstraps are done) and then kept."""
        if self.chunk_reference is None:
            self.chunk_reference = self.novelty_reference()
        return self.chunk_reference

    def _select_emitter(self) -> None:
        """Uniform draw from the Pareto front of (ancestor novelty vs reward archive, improvement)."""
        ids = list(self.emitters)
        improvements = np.array([self.emitters[i].improvement for i in ids])
        if len(self.reward_archive):
            novelty = self._reward_novelty(np.stack([self.emitters[i].ancestor_descriptor for i in ids]))
            front = pareto_front(np.column_stack([novelty, improvements]))
            chosen = ids[int(self.rng.choice(front))]
        else:
            chosen = ids[int(np.argmax(improvements))]
        emitter = self.emitters[chosen]
        with self.clock.measure("novelty"):
            emitter.ancestor_novelty = float(knn_novelty(emitter.ancestor_descriptor[None], self._fixed_reference(),
                                                         k=self.k_neighbors)[0])
        self.active = chosen

    def _active_generation(self) -> None:
        ident = self.active
        emitter = self.emitters[ident]
        self._run_generation(emitter)
        # update_emitter_novelties: novelty-archive candidates and the most novel so far. As the authors'
        # ``novelty`` helper, the nearest reference element is dropped although the offspring are not in the
        # reference set: offspring and ancestor novelty then compare like with like.
        with self.clock.measure("novelty"):
            novelty = knn_novelty(emitter.population_descriptors, self._fixed_reference(), k=self.k_neighbors)
        known = {c[0].tobytes() for c in emitter.novelty_candidates}
        threshold = emitter.threshold_novelty
        for i in np.flatnonzero(novelty > threshold):
            genome = emitter.population[i]
            if genome.tobytes() not in known:
                known.add(genome.tobytes())
                emitter.novelty_candidates.append((genome.copy(), emitter.population_descriptors[i].copy(),
                                                   float(novelty[i]), emitter.population_results[i]))
        if novelty.max() > threshold:
            # Kept across chunks with the novelty it had when found, while the ancestor's is recomputed at each
            # selection: as the authors' ``most_novel`` (``FitnessEmitter.most_novel`` starts as the ancestor
            # itself and is replaced by a copy of the more novel agent).
            emitter.most_novel_novelty = float(novelty.max())
        if emitter.terminated:
            self.finished[ident] = self.emitters.pop(ident)
            self.emitters_terminated += 1
            self.active = None

    def _end_emitter_chunk(self) -> None:
        """Re-estimate the running emitter, rescore the NS population against the grown reward archive, feed
        terminated emitters' offspring to the novelty archive, start a novelty-search chunk."""
        if self.active is not None:
            self.emitters[self.active].estimate_improvement()
            self.active = None
        if self.population_descriptors is not None:  # ``evaluate_performances`` after ``emitter_step``
            parts = [self.population_descriptors]
            if self.offspring_descriptors is not None:
                parts.append(self.offspring_descriptors)
            self.population_novelty = self.score_novelty(np.concatenate(parts))[:len(self.population_descriptors)]
        for ident in sorted(self.finished):  # ``elaborate_archive_candidates``
            candidates = self.finished[ident].novelty_candidates
            if not candidates:
                continue
            novelty = np.array([c[2] for c in candidates])
            chosen = self._select_for_archive(novelty)
            self.feed_novelty_archive(np.stack([candidates[i][0] for i in chosen]),
                                      np.stack([candidates[i][1] for i in chosen]),
                                      [candidates[i][3] for i in chosen])
        self.finished = {}
        self.phase = "ns"
        self.chunk_spent = 0
        self.candidate_queue = []
        self.chunk_reference = None

    def summary(self) -> dict[str, Any]:
        """NS summary plus the evaluations of each phase, the emitters' counts and the reward archive's size."""
        return {**super().summary(), "ns_generations": self.ns_generations, "ns_evaluations": self.ns_evaluations,
                "emitter_evaluations": self.emitter_evaluations, "emitters_created": self.emitters_created,
                "emitters_promoted": self.emitters_promoted, "emitters_terminated": self.emitters_terminated,
                "reward_archive_size": len(self.reward_archive)}

    # -- state --------------------------------------------------------------------------------------------
    _STATE_KEYS = ("phase", "chunk_spent", "ns_evaluations", "emitter_evaluations", "ns_generations",
                   "reward_archive", "candidates", "candidate_queue", "bootstrapping", "emitters", "active",
                   "finished", "next_emitter_id",
                   "emitters_created", "emitters_promoted", "emitters_terminated", "pending_initial",
                   "offspring_descriptors", "offspring_results", "chunk_reference")

    def state_dict(self) -> dict[str, Any]:
        """Novelty-search state plus the chunk, the emitters (with their generators) and the reward archive."""
        return {**super().state_dict(), **{key: copy.deepcopy(getattr(self, key)) for key in self._STATE_KEYS}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`."""
        super().load_state_dict(state)
        for key in self._STATE_KEYS:
            setattr(self, key, copy.deepcopy(state[key]))


if __name__ == "__main__":
    # Run the classes of the importable module, not of ``__main__``: checkpoints then record
    # ``qd.serene.SERENE`` and ``qd.serene.RewardArchive``, so ``QDRun.resume`` works from any script.
    from qd.run import main
    from qd.serene import SERENE as _SERENE

    sys.exit(main(_SERENE))
