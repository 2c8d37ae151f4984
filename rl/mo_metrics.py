"""Metrics of a Pareto front for multi-objective RL, as reported by C-MORL and PGMORL.

C-MORL (Liu et al., ICLR 2025, "C-MORL: Multi-Objective Reinforcement Learning through Efficient Discovery of
Pareto Front") reports hypervolume (pymoo), expected utility (the authors' ``compute_eu`` over the
``generate_w_batch_test`` weight grid) and sparsity (PGMORL's ``compute_sparsity``); cardinality is the
number of non-dominated points. All objectives are maximised.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rl.pareto import non_dominated_indices
from rl.simplex import weight_grid

__all__ = [
    "REFERENCE_POINTS",
    "ReferencePointError",
    "cardinality",
    "expected_utility",
    "front_metrics",
    "hypervolume",
    "sparsity",
]

#: Hypervolume reference points used in the literature, by environment id.
REFERENCE_POINTS: dict[str, tuple[float, ...]] = {
    # 2-objective MuJoCo tasks: C-MORL's scripts (hopper-2d.py, ant-2d.py, ...) pass --ref-point -100 -100.
    "mo-hopper-2obj-v5": (-100.0, -100.0),
    "mo-halfcheetah-v5": (-100.0, -100.0),
    "mo-ant-2obj-v5": (-100.0, -100.0),
    # 3-objective hopper: the 3-objective analogue; C-MORL's scripts/hopper-3d.py passes --ref-point -100 -100 -100.
    "mo-hopper-v5": (-100.0, -100.0, -100.0),
    # Discrete benchmarks: morl-baselines' reference points (C-MORL's scripts/minecart.py also passes -1 -1 -200).
    "deep-sea-treasure-v0": (0.0, -25.0),
    "minecart-v0": (-1.0, -1.0, -200.0),
    # The project's PyBullet tasks (envs.mo_bullet) define their objectives as mo-halfcheetah-v5 and
    # mo-hopper-2obj-v5 do, on the same scales: the same point as those.
    "mo-halfcheetah-bullet-v0": (-100.0, -100.0),
    "mo-hopper-bullet-v0": (-100.0, -100.0),
}


class ReferencePointError(ValueError):
    """A hypervolume reference point that does not fit the front (wrong length, not finite)."""


def _as_front(points: Any) -> np.ndarray:
    """``points`` as a float64 (k, m) array; an empty input becomes shape (0, m) or (0, 0)."""
    arr = np.asarray(points, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, arr.shape[-1] if arr.ndim == 2 else 0))
    if arr.ndim != 2:
        raise ValueError(f"a front must be a 2-D array (n_points, n_objectives), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("the front contains NaN or infinite objective values; evaluate the policies again")
    return arr


def _example_ref(m: int) -> str:
    return "--ref-point " + " ".join(["-100"] * max(m, 1))


def _check_reference(reference_point: Any, n_objectives: int) -> np.ndarray:
    try:
        ref = np.asarray(reference_point, dtype=np.float64)
    except (TypeError, ValueError):
        raise ReferencePointError(
            f"reference point {reference_point!r} is not a list of numbers; pass one value per objective, "
            f"e.g. {_example_ref(n_objectives)}"
        ) from None
    ref = ref.reshape(-1) if ref.ndim <= 1 else ref
    if ref.ndim != 1:
        raise ReferencePointError(
            f"reference point must be one flat list of numbers, got shape {ref.shape}; pass one value per "
            f"objective, e.g. {_example_ref(n_objectives)}"
        )
    if n_objectives and ref.shape[0] != n_objectives:
        raise ReferencePointError(
            f"reference point has {ref.shape[0]} value{'s' if ref.shape[0] != 1 else ''} but the front has "
            f"{n_objectives} objective{'s' if n_objectives != 1 else ''}; pass one value per objective, "
            f"e.g. {_example_ref(n_objectives)}"
        )
    if not np.all(np.isfinite(ref)):
        raise ReferencePointError(
            f"reference point {ref.tolist()} has a non-finite value; pass finite numbers, "
            f"e.g. {_example_ref(ref.shape[0])}"
        )
    return ref


def hypervolume(points: Any, reference_point: Sequence[float] | np.ndarray) -> float:
    """Volume dominated by the front and bounded below by ``reference_point`` (maximisation), via pymoo.

    pymoo minimises, so it gets ``-points`` and ``-reference_point`` (as C-MORL's ``eval`` does). Points that
    are not strictly better than the reference in every objective add no volume and are dropped first.
    Raises ReferencePointError when the reference point does not have one finite value per objective.
    """
    from pymoo.indicators.hv import HV

    front = _as_front(points)
    ref = _check_reference(reference_point, front.shape[1])
    front = front[np.all(front > ref, axis=1)] if front.shape[0] else front
    if front.shape[0] == 0:
        return 0.0
    return float(HV(ref_point=-ref).do(-front))


def expected_utility(points: Any, weights: Any) -> float:
    """Mean over the weight vectors of the best linear utility ``max_p w . p`` on the front (``compute_eu``).

    ``weights`` is a (n_weights, m) array, normally ``rl.simplex.weight_grid(m, step)``. An empty front has
    no utility: NaN.
    """
    front = _as_front(points)
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 1:
        w = w.reshape(1, -1)
    if front.shape[0] == 0:
        return float("nan")
    if w.ndim != 2 or w.shape[1] != front.shape[1]:
        raise ValueError(f"weights of shape {w.shape} do not fit a front with {front.shape[1]} objectives")
    if w.shape[0] == 0:
        raise ValueError("expected utility needs at least one weight vector")
    return float(np.mean(np.max(w @ front.T, axis=1)))


def sparsity(points: Any) -> float:
    """PGMORL's sparsity: per objective, sum of squared gaps between sorted values, summed, over (k - 1).

    Lower is a denser front. 0 for fewer than 2 points.
    """
    front = _as_front(points)
    k = front.shape[0]
    if k < 2:
        return 0.0
    gaps = np.diff(np.sort(front, axis=0), axis=0)
    return float(np.sum(gaps**2) / (k - 1))


def cardinality(points: Any) -> int:
    """Number of distinct non-dominated points of the front."""
    front = _as_front(points)
    return int(non_dominated_indices(front).shape[0])


def front_metrics(
    points: Any, reference_point: Sequence[float] | np.ndarray, eu_step: float = 0.01
) -> dict[str, float | int]:
    """Hypervolume, expected utility, sparsity and cardinality of the non-dominated subset of ``points``.

    The reference point is used only for the hypervolume (the non-dominated filter is not reference-filtered,
    so a point below the reference still counts for EU, sparsity and cardinality). The EU weight grid is
    ``weight_grid(m, eu_step)``.
    """
    front = _as_front(points)
    ref = _check_reference(reference_point, front.shape[1])
    nd = front[non_dominated_indices(front)] if front.shape[0] else front
    m = nd.shape[1] if nd.shape[1] else ref.shape[0]
    return {
        "hypervolume": hypervolume(nd, ref) if nd.shape[0] else 0.0,
        "expected_utility": expected_utility(nd, weight_grid(m, eu_step)),
        "sparsity": sparsity(nd),
        "cardinality": int(nd.shape[0]),
    }
