"""Weight vectors on the probability simplex for multi-objective RL (C-MORL, PGMORL).

Three things live here:

* ``preference_grid``: the stage-1 preference grid of C-MORL (Liu et al., ICLR 2025, "C-MORL: Multi-Objective
  Reinforcement Learning through Efficient Discovery of Pareto Front"), one PPO policy is trained per vector
  before the constrained extension stage. It reproduces the authors' ``generate_weights_batch_dfs`` (same
  vectors, same depth-first order).
* ``weight_grid``: the dense grid the expected-utility metric averages over (the authors'
  ``generate_w_batch_test``).
* ``check_preference``: validation of a user-supplied preference vector, failing with one line that says
  what to pass instead of a traceback deep inside a training loop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["PreferenceVectorError", "check_preference", "preference_grid", "weight_grid"]

# Grid entries are computed as (integer count) * delta and rounded to this many decimals so that e.g.
# 3 * 0.2 is 0.6, not 0.6000000000000001, and each vector sums to 1 to within float precision.
_DECIMALS = 12


class PreferenceVectorError(ValueError):
    """A preference (weight) vector that is not a point of the simplex for the task's number of objectives."""


def _check_n_objectives(n_objectives: int) -> int:
    if isinstance(n_objectives, bool) or not isinstance(n_objectives, (int, np.integer)) or n_objectives < 1:
        raise ValueError(f"n_objectives must be a positive integer, got {n_objectives!r}")
    return int(n_objectives)


def _steps_per_unit(step: float, name: str) -> int:
    """How many ``step`` make 1; refuses a step that does not divide 1 (no grid vector would sum to 1)."""
    if not (isinstance(step, (int, float, np.floating)) and math.isfinite(step) and 0 < step <= 1):
        raise ValueError(f"{name} must be in (0, 1], got {step!r}")
    k = round(1.0 / step)
    if abs(k * step - 1.0) > 1e-9:
        raise ValueError(f"{name}={step!r} does not divide 1 into whole steps; pass e.g. 0.1, 0.05 or 0.01")
    return k


def preference_grid(
    n_objectives: int, delta: float = 0.2, min_weight: float = 0.0, max_weight: float = 1.0
) -> np.ndarray:
    """Stage-1 preference vectors of C-MORL: simplex points whose entries are ``min_weight + j * delta``.

    Follows the authors' ``generate_weights_batch_dfs``: a depth-first walk over the first ``n - 1`` entries
    (each ascending from ``min_weight`` in steps of ``delta`` up to ``max_weight``, while the running sum
    stays <= 1), the last entry being ``1 - sum(others)``. So the rows come out with the first weight
    ascending, then the second, ...; for 2 objectives and delta 0.2: [0, 1], [0.2, 0.8], ..., [1, 0].

    The authors' code never checks the last entry against [min_weight, max_weight]; here a vector whose last
    entry falls outside that range is left out, so every entry lies in the range. With the defaults
    (min 0, max 1) nothing is left out and the grid is exactly the authors'.

    Returns a float64 array of shape (n_vectors, n_objectives).
    """
    n = _check_n_objectives(n_objectives)
    for name, value in (("delta", delta), ("min_weight", min_weight), ("max_weight", max_weight)):
        if not (isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(value)):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    if delta <= 0:
        raise ValueError(f"delta must be positive, got {delta!r}")
    if not 0 <= min_weight <= max_weight:
        raise ValueError(f"need 0 <= min_weight <= max_weight, got min_weight={min_weight}, max_weight={max_weight}")
    if n == 1:
        return np.ones((1, 1))

    tol = 0.5 * delta  # the authors' slack on both loop bounds
    # Candidate values of one (non-last) entry: min_weight + j * delta while <= max_weight (with slack).
    values = []
    j = 0
    while min_weight + j * delta < max_weight + tol:
        values.append(round(min_weight + j * delta, _DECIMALS))
        j += 1

    rows: list[list[float]] = []

    def walk(prefix: list[float], total: float) -> None:
        if len(prefix) == n - 1:
            last = round(1.0 - total, _DECIMALS)
            if min_weight - 1e-9 <= last <= max_weight + 1e-9:
                rows.append([*prefix, max(last, 0.0)])
            return
        for w in values:
            if total + w >= 1.0 + tol:
                break
            walk([*prefix, w], round(total + w, _DECIMALS))

    walk([], 0.0)
    return np.asarray(rows, dtype=np.float64).reshape(-1, n)


def weight_grid(n_objectives: int, step: float = 0.01) -> np.ndarray:
    """All weight vectors with entries in {0, step, 2 step, ..., 1} that sum to 1 (the expected-utility grid).

    Same set as the authors' ``generate_w_batch_test``, which builds the full Cartesian product of
    ``np.arange(0, 1 + step, step)`` and keeps the rows whose float sum is exactly 1. That is slow for 3+
    objectives (101**3 rows at step 0.01) and the exact float test can silently drop rows such as
    (0.07, 0.93); here the vectors are enumerated as integer compositions of ``1 / step`` instead, so every
    vector is present. Rows are in ascending lexicographic order (the order ``np.unique`` gives the authors).

    Returns a float64 array of shape (C(1/step + n - 1, n - 1), n_objectives).
    """
    n = _check_n_objectives(n_objectives)
    k = _steps_per_unit(step, "step")
    rows: list[tuple[int, ...]] = []

    def walk(prefix: tuple[int, ...], remaining: int) -> None:
        if len(prefix) == n - 1:
            rows.append((*prefix, remaining))
            return
        for c in range(remaining + 1):
            walk((*prefix, c), remaining - c)

    walk((), k)
    return np.asarray(rows, dtype=np.float64).reshape(-1, n) / k


def _example(n: int) -> str:
    """An example preference that sums to 1 (two decimals each, remainder on the last), e.g. 0.33,0.33,0.34."""
    if n == 1:
        return "1"
    each = math.floor(100 / n)
    parts = [each] * (n - 1) + [100 - each * (n - 1)]
    return ",".join(f"{p / 100:g}" for p in parts)


def check_preference(
    weights: Sequence[float] | np.ndarray | str, n_objectives: int, env_id: str | None = None
) -> np.ndarray:
    """Return ``weights`` as a float64 vector, or raise PreferenceVectorError naming what to pass instead.

    A preference must have one entry per objective, every entry finite and non-negative, and sum to 1
    (within 1e-6). A string such as ``"0.5,0.5"`` (commas and/or spaces) is parsed, so a command-line value
    can be passed as is. ``env_id`` only makes the message name the task.
    """
    n = _check_n_objectives(n_objectives)
    task = env_id if env_id else "the task"
    fix = f"pass {n} non-negative weight{'s' if n != 1 else ''} that sum to 1, e.g. {_example(n)}"

    if isinstance(weights, str):
        tokens = weights.replace(",", " ").split()
        try:
            values = [float(t) for t in tokens]
        except ValueError:
            raise PreferenceVectorError(f"preference vector {weights!r} is not a list of numbers; {fix}") from None
        arr = np.asarray(values, dtype=np.float64)
    else:
        try:
            arr = np.asarray(weights, dtype=np.float64)
        except (TypeError, ValueError):
            raise PreferenceVectorError(f"preference vector {weights!r} is not a list of numbers; {fix}") from None
    if arr.ndim != 1:
        raise PreferenceVectorError(f"preference vector must be one flat list of numbers, got shape {arr.shape}; {fix}")
    if arr.shape[0] != n:
        raise PreferenceVectorError(
            f"preference vector has {arr.shape[0]} value{'s' if arr.shape[0] != 1 else ''} but {task} has "
            f"{n} objective{'s' if n != 1 else ''}; {fix}"
        )
    if not np.all(np.isfinite(arr)):
        bad = arr[~np.isfinite(arr)][0]
        raise PreferenceVectorError(f"preference vector has a non-finite weight ({bad}); {fix}")
    if np.any(arr < 0):
        bad = arr[arr < 0][0]
        raise PreferenceVectorError(f"preference vector has a negative weight ({bad:g}); {fix}")
    total = float(arr.sum())
    if abs(total - 1.0) > 1e-6:
        raise PreferenceVectorError(f"preference vector sums to {total:.6g}, not 1; {fix}")
    return arr
