"""Reward emitters of SERENE (Paolo et al., 2021): small local optimisers of the reward started on a rewarding
genome, which run until they stagnate.

Two kinds behind one protocol (:class:`Emitter`):

- :class:`ElitistESEmitter`, the paper's emitter (``FitnessEmitter`` in ``core/evolvers/serene.py`` of
  GPaolo/SERENE, MIT): a (6 + 12) elitist evolution strategy. The population of ``pop_size`` = 6
  (``emitter_population`` in the authors' ``parameters.py``) starts as Gaussian mutants of the ancestor
  with the emitter's sigma; every generation each parent has 2 offspring (Gaussian mutation, same sigma,
  clipped to the genome bounds) and the 6 best of parents + offspring by reward survive.
- :class:`CMAESEmitter`, the authors' CMA-ES variant (``CMAESEmitter`` in ``core/evolvers/cma_ns.py``, which
  uses the ``cmaes`` package): here pyribs's :class:`ribs.emitters.opt.CMAEvolutionStrategy`, population 6,
  ``num_parents`` = 3 (lambda / 2), mean at the ancestor, sigma0 the emitter's sigma, bounded to the genome
  bounds. It terminates when pyribs's ``check_stop`` fires (ill-conditioned covariance, vanishing step size,
  flat rewards) or on SERENE's stagnation rule, never restarts.

Shared bookkeeping (:class:`BaseEmitter`), from ``FitnessEmitter`` / ``EmitterEvolver``:

- ``values``: the rewards of the emitter's population after every generation (one array per generation).
- improvement (``estimate_improvement``): ``max(mean(values[-3:]) - mean(values[:3]), 0)``, the first three
  generations frozen as the reference on the first call (``local_improvement = False``).
- stagnation (``stagnation = 'custom'``, the authors' default): once ``steps > W`` with
  ``W = int(20 * genome_size / pop_size + 120)``, look at the last ``W`` generations and stop when the
  median of their first 20 is >= the median of their last 20, or the max of the first 20 >= the max of the
  last 20.
- the state SERENE keeps per emitter: ancestor (genome, descriptor, evaluation result, novelty), the rewards
  already archived, the most novel novelty seen and the offspring that beat it (novelty-archive
  candidates).

Deviation: survivors of the elitist ES are sorted by reward with a stable sort (the authors'
``np.argsort(r)[::-1]`` puts the later of equal rewards first); only the order among ties differs.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

EMITTER_POP_SIZE = 6
"""Emitter population (``emitter_population`` in SERENE's ``parameters.py``)."""
OFFSPRING_PER_PARENT = 2
"""Offspring per parent of the elitist ES (``generate_off`` in SERENE's ``FitnessEmitter``)."""
IMPROVEMENT_WINDOW = 3
"""Generations averaged at both ends of the improvement (``values[:3]``, ``values[-3:]``)."""
STAGNATION_COMPARE = 20
"""Generations compared at both ends of the stagnation window (``values[:20]``, ``values[-20:]``)."""


def default_stagnation_window(genome_size: int, pop_size: int) -> int:
    """The authors' stagnation window ``int(20 * genome_size / pop_size + 120)`` (``stagnation='custom'``)."""
    return int(20 * genome_size / pop_size + 120)


@runtime_checkable
class Emitter(Protocol):
    """What SERENE needs of an emitter: ask/tell on the reward, termination and the bookkeeping it selects on."""

    ancestor_genome: np.ndarray
    """Genome the emitter started from (the rewarding individual of novelty search)."""
    ancestor_descriptor: np.ndarray
    """Behaviour descriptor of the ancestor."""
    ancestor_novelty: float
    """Novelty of the ancestor against the novelty-search reference set (set by SERENE on selection)."""
    improvement: float
    """Reward improvement estimate used for selection; see :meth:`estimate_improvement`."""
    evaluations: int
    """Evaluations spent by this emitter."""
    steps: int
    """Generations told after the initial population."""
    values: list[np.ndarray]
    """Rewards of the population after every generation."""

    def ask(self) -> np.ndarray:
        """Genomes to evaluate next, shape (n, genome_size)."""
        ...

    def tell(self, genomes: np.ndarray, rewards: np.ndarray, descriptors: np.ndarray,
             results: Sequence[Any]) -> None:
        """Results of the genomes of the last :meth:`ask`."""
        ...

    @property
    def terminated(self) -> bool:
        """Whether the emitter stopped (stagnation, or its optimiser's own stop rule)."""
        ...

    def estimate_improvement(self) -> float:
        """Update and return :attr:`improvement`."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the emitter."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`."""
        ...


class BaseEmitter:
    """Bookkeeping shared by both emitters: values, improvement, stagnation, archive and novelty state.

    Args:
        ancestor_genome: The rewarding genome the emitter is centred on.
        ancestor_descriptor: Its behaviour descriptor.
        sigma: Initial mutation / step size (SERENE: distance to the nearest genome / 3).
        bounds: (low, high) genome bounds.
        pop_size: Population size (6).
        seed: Seed of the emitter's own generator.
        ancestor_result: The ancestor's evaluation result (kept so descriptors can be recomputed).
        stagnation_window: Generations of the stagnation test (None: :func:`default_stagnation_window`).
        stagnation_compare: Generations compared at each end of the window (20).

    Raises:
        ValueError: for a negative sigma, a pop_size < 1 or a window shorter than ``stagnation_compare``.
    """

    def __init__(self, ancestor_genome: np.ndarray, ancestor_descriptor: np.ndarray, *, sigma: float,
                 bounds: tuple[float, float], pop_size: int = EMITTER_POP_SIZE, seed: int | None = None,
                 ancestor_result: Any = None, stagnation_window: int | None = None,
                 stagnation_compare: int = STAGNATION_COMPARE) -> None:
        if sigma < 0:
            raise ValueError(f"sigma must be >= 0, got {sigma}.")
        if pop_size < 1:
            raise ValueError(f"pop_size must be >= 1, got {pop_size}.")
        self.ancestor_genome = np.asarray(ancestor_genome, dtype=np.float64).copy()
        self.ancestor_descriptor = np.asarray(ancestor_descriptor, dtype=np.float64).copy()
        self.ancestor_result = ancestor_result
        self.ancestor_novelty = 0.0
        self.sigma = float(sigma)
        self.bounds = (float(bounds[0]), float(bounds[1]))
        self.pop_size = int(pop_size)
        self.rng = np.random.default_rng(seed)
        window = (default_stagnation_window(self.ancestor_genome.size, self.pop_size)
                  if stagnation_window is None else int(stagnation_window))
        if window < stagnation_compare or stagnation_compare < 1:
            raise ValueError(f"stagnation_window ({window}) must be >= stagnation_compare ({stagnation_compare}) "
                             f">= 1.")
        self.stagnation_window = window
        self.stagnation_compare = int(stagnation_compare)
        self.values: list[np.ndarray] = []
        self.improvement = 0.0
        self._init_values: list[np.ndarray] | None = None
        self.evaluations = 0
        self.steps = 0
        self.stopped = False
        """Set by the optimiser's own stop rule (CMA-ES's check_stop)."""
        # The emitter's current population as SERENE sees it (for the reward and novelty archives).
        self.population: np.ndarray = np.empty((0, self.ancestor_genome.size))
        self.population_rewards: np.ndarray = np.empty(0)
        self.population_descriptors: np.ndarray = np.empty((0, self.ancestor_descriptor.size))
        self.population_results: list[Any] = []
        # SERENE's per-emitter archive state (``archived_values``, ``most_novel``, ``ns_arch_candidates``).
        self.archived_rewards: list[float] = []
        self.most_novel_novelty: float | None = None
        """Novelty of the most novel offspring so far; None while that is still the ancestor."""
        self.novelty_candidates: list[tuple[np.ndarray, np.ndarray, float, Any]] = []
        """(genome, descriptor, novelty, result) of offspring more novel than the most novel before them."""

    # -- selection measures ------------------------------------------------------------------------------
    def estimate_improvement(self) -> float:
        """``max(mean(last 3 values) - mean(first 3 values), 0)``; the first 3 are frozen on the first call."""
        if not self.values:
            self.improvement = 0.0
            return self.improvement
        if self._init_values is None:
            self._init_values = [v.copy() for v in self.values[:IMPROVEMENT_WINDOW]]
        recent = np.concatenate(self.values[-IMPROVEMENT_WINDOW:])
        self.improvement = float(max(recent.mean() - np.concatenate(self._init_values).mean(), 0.0))
        return self.improvement

    def stagnated(self) -> bool:
        """The authors' ``'custom'`` stagnation rule on the last ``stagnation_window`` generations."""
        if self.steps <= self.stagnation_window:
            return False
        window = self.values[-self.stagnation_window:]
        first = np.concatenate(window[:self.stagnation_compare])
        last = np.concatenate(window[-self.stagnation_compare:])
        return bool(np.median(first) >= np.median(last) or first.max() >= last.max())

    @property
    def terminated(self) -> bool:
        """Stopped by the optimiser's own rule or stagnated."""
        return self.stopped or self.stagnated()

    @property
    def threshold_novelty(self) -> float:
        """Novelty an offspring must beat to become a novelty-archive candidate (most novel so far)."""
        return self.ancestor_novelty if self.most_novel_novelty is None else self.most_novel_novelty

    def _record(self, genomes: np.ndarray, rewards: np.ndarray, descriptors: np.ndarray,
                results: Sequence[Any]) -> None:
        self.population = np.asarray(genomes, dtype=np.float64).copy()
        self.population_rewards = np.asarray(rewards, dtype=np.float64).copy()
        self.population_descriptors = np.asarray(descriptors, dtype=np.float64).copy()
        self.population_results = list(results)
        self.values.append(self.population_rewards.copy())

    @staticmethod
    def _check_batch(genomes: np.ndarray, rewards: np.ndarray, descriptors: np.ndarray,
                     results: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        genomes = np.atleast_2d(np.asarray(genomes, dtype=np.float64))
        rewards = np.asarray(rewards, dtype=np.float64).reshape(-1)
        descriptors = np.asarray(descriptors, dtype=np.float64).reshape(len(genomes), -1)
        if not len(genomes) == len(rewards) == len(results):
            raise ValueError(f"genomes, rewards and results must have the same length, got {len(genomes)}, "
                             f"{len(rewards)} and {len(results)}.")
        return genomes, rewards, descriptors

    # -- state --------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """A deep copy of every attribute (generator and optimiser included)."""
        return copy.deepcopy(self.__dict__)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` of an emitter of the same class."""
        self.__dict__.update(copy.deepcopy(state))


class ElitistESEmitter(BaseEmitter):
    """SERENE's emitter: a (pop_size + pop_size * offspring_per_parent) elitist ES on the reward.

    The first :meth:`ask` returns the initial population (Gaussian mutants of the ancestor); every later
    one returns ``offspring_per_parent`` mutants of each parent. :meth:`tell` of offspring keeps the
    ``pop_size`` best of parents + offspring.

    Args: those of :class:`BaseEmitter`, plus
        offspring_per_parent: Offspring per parent and generation (2).
    """

    def __init__(self, ancestor_genome: np.ndarray, ancestor_descriptor: np.ndarray, *, sigma: float,
                 bounds: tuple[float, float], pop_size: int = EMITTER_POP_SIZE,
                 offspring_per_parent: int = OFFSPRING_PER_PARENT, seed: int | None = None,
                 ancestor_result: Any = None, stagnation_window: int | None = None,
                 stagnation_compare: int = STAGNATION_COMPARE) -> None:
        super().__init__(ancestor_genome, ancestor_descriptor, sigma=sigma, bounds=bounds, pop_size=pop_size,
                         seed=seed, ancestor_result=ancestor_result, stagnation_window=stagnation_window,
                         stagnation_compare=stagnation_compare)
        if offspring_per_parent < 1:
            raise ValueError(f"offspring_per_parent must be >= 1, got {offspring_per_parent}.")
        self.offspring_per_parent = int(offspring_per_parent)
        self.initialised = False
        """Whether the initial population has been told."""

    def _mutate(self, genomes: np.ndarray) -> np.ndarray:
        return np.clip(genomes + self.rng.normal(0.0, self.sigma, size=genomes.shape), *self.bounds)

    def ask(self) -> np.ndarray:
        """Initial population first (``_init_pop``), then ``offspring_per_parent`` mutants per parent."""
        if not self.initialised:
            return self._mutate(np.repeat(self.ancestor_genome[None], self.pop_size, axis=0))
        return self._mutate(np.repeat(self.population, self.offspring_per_parent, axis=0))

    def tell(self, genomes: np.ndarray, rewards: np.ndarray, descriptors: np.ndarray,
             results: Sequence[Any]) -> None:
        """Initial population: becomes the population. Offspring: the best ``pop_size`` of parents + them."""
        genomes, rewards, descriptors = self._check_batch(genomes, rewards, descriptors, results)
        self.evaluations += len(genomes)
        if not self.initialised:
            self.initialised = True
            self._record(genomes, rewards, descriptors, results)
            return
        all_genomes = np.concatenate([self.population, genomes])
        all_rewards = np.concatenate([self.population_rewards, rewards])
        all_descriptors = np.concatenate([self.population_descriptors, descriptors])
        all_results = [*self.population_results, *results]
        best = np.argsort(-all_rewards, kind="stable")[:self.pop_size]
        self.steps += 1
        self._record(all_genomes[best], all_rewards[best], all_descriptors[best], [all_results[i] for i in best])


class CMAESEmitter(BaseEmitter):
    """CMA-ES on the reward (pyribs's :class:`~ribs.emitters.opt.CMAEvolutionStrategy`), no restarts.

    Every :meth:`tell` is a generation: the batch becomes the emitter's population, the ES is updated
    with the batch ranked by reward (``num_parents`` = pop_size // 2), and ``check_stop`` on the ranked
    rewards sets :attr:`stopped`.

    Args: those of :class:`BaseEmitter`.
    """

    def __init__(self, ancestor_genome: np.ndarray, ancestor_descriptor: np.ndarray, *, sigma: float,
                 bounds: tuple[float, float], pop_size: int = EMITTER_POP_SIZE, seed: int | None = None,
                 ancestor_result: Any = None, stagnation_window: int | None = None,
                 stagnation_compare: int = STAGNATION_COMPARE) -> None:
        super().__init__(ancestor_genome, ancestor_descriptor, sigma=sigma, bounds=bounds, pop_size=pop_size,
                         seed=seed, ancestor_result=ancestor_result, stagnation_window=stagnation_window,
                         stagnation_compare=stagnation_compare)
        from ribs.emitters.opt import CMAEvolutionStrategy  # here: importing pyribs costs seconds, elitist runs skip it

        # A zero step size would make CMA-ES degenerate; SERENE never passes one (it falls back to the
        # mutation sigma), this keeps direct users safe too.
        self.es = CMAEvolutionStrategy(sigma0=max(self.sigma, 1e-12), solution_dim=self.ancestor_genome.size,
                                       batch_size=self.pop_size, seed=int(self.rng.integers(2**31)),
                                       lower_bounds=self.bounds[0], upper_bounds=self.bounds[1])
        self.es.reset(np.clip(self.ancestor_genome, *self.bounds))
        self._asked: np.ndarray | None = None

    def ask(self) -> np.ndarray:
        """A batch of ``pop_size`` samples of the current search distribution."""
        self._asked = np.array(self.es.ask(), dtype=np.float64)
        return self._asked.copy()

    def tell(self, genomes: np.ndarray, rewards: np.ndarray, descriptors: np.ndarray,
             results: Sequence[Any]) -> None:
        """Update the ES with the batch ranked by reward, then check pyribs's stop conditions.

        Raises:
            ValueError: when the genomes are not those of the last :meth:`ask`.
        """
        genomes, rewards, descriptors = self._check_batch(genomes, rewards, descriptors, results)
        if self._asked is None or not np.array_equal(genomes, self._asked):
            raise ValueError("CMAESEmitter.tell needs the genomes of the last ask, in order.")
        self._asked = None
        ranking = np.argsort(-rewards, kind="stable")
        ranked = rewards[ranking]
        self.es.tell(ranking, ranked, num_parents=max(1, self.pop_size // 2))
        self.stopped = self.stopped or bool(self.es.check_stop(ranked))
        self.evaluations += len(genomes)
        self.steps += 1
        self._record(genomes, rewards, descriptors, results)
