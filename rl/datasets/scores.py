"""D4RL's normalised score: 100 * (R - min) / (max - min), 0 = a random policy, 100 = D4RL's expert.

The reference returns are D4RL's (``d4rl/infos.py``): the average return of a uniformly random policy
(min) and of D4RL's expert policy (max). D4RL defined them for its ``-v0`` datasets and uses the same
constants for ``-v1`` and ``-v2``; every level of an env shares them. Papers report scores on this scale,
so offline results here are comparable with published tables (up to the ``-v3`` -> ``-v4`` env change,
see :mod:`rl.datasets.names`).
"""

from __future__ import annotations

import numpy as np

from rl.datasets.errors import ReferenceScoreError
from rl.datasets.names import D4RL_ENVS, d4rl_env_key

D4RL_REFERENCE_RETURNS: dict[str, tuple[float, float]] = {
    "halfcheetah": (-280.178953, 12135.0),
    "hopper": (-20.272305, 3234.3),
    "walker2d": (1.629008, 4592.3),
    "ant": (-325.6, 3879.7),
}
"""D4RL env key -> (random return, expert return), D4RL's REF_MIN_SCORE / REF_MAX_SCORE."""

def d4rl_reference_returns(name_or_env: str) -> tuple[float, float] | None:
    """D4RL's (min, max) reference returns for a D4RL name, env key, Gymnasium id or project Minari id.

    ``"hopper-medium-v2"``, ``"hopper"``, ``"Hopper-v4"`` and ``"frontier/hopper/medium-v0"`` all give
    hopper's constants; anything else gives None.
    """
    key = d4rl_env_key(name_or_env)
    return D4RL_REFERENCE_RETURNS[key] if key is not None else None


def reference_returns(
    name_or_env: str, ref_min: float | None = None, ref_max: float | None = None
) -> tuple[float, float]:
    """The (min, max) returns that :func:`normalized_score` uses: ``ref_min``/``ref_max`` when given, else D4RL's.

    Given reference returns (a dataset's own, as stored in its Minari metadata) win over D4RL's constants,
    so a dataset that was collected on a different env version keeps its own scale.

    Raises:
        ReferenceScoreError: when only one of ``ref_min``/``ref_max`` is given, when they are equal, or when
            neither they nor D4RL constants exist for ``name_or_env``.
    """
    if (ref_min is None) != (ref_max is None):
        raise ReferenceScoreError(
            f"Give both ref_min and ref_max or neither (got ref_min={ref_min}, ref_max={ref_max})."
        )
    if ref_min is None:
        d4rl = d4rl_reference_returns(name_or_env)
        if d4rl is None:
            raise ReferenceScoreError(
                f"No reference returns for {name_or_env!r}: it is not a D4RL env ({', '.join(D4RL_ENVS)}) and no "
                "ref_min/ref_max were given. Pass the dataset's own reference returns (OfflineDataset.ref_min and "
                ".ref_max, or its Minari metadata ref_min_score/ref_max_score)."
            )
        ref_min, ref_max = d4rl
    if ref_max == ref_min:
        raise ReferenceScoreError(f"ref_max equals ref_min ({ref_min}) for {name_or_env!r}: the scale is undefined.")
    return float(ref_min), float(ref_max)


def normalized_score(
    dataset_name_or_env: str,
    returns: float | np.ndarray | list[float],
    ref_min: float | None = None,
    ref_max: float | None = None,
) -> float | np.ndarray:
    """D4RL's normalised score, ``100 * (R - ref_min) / (ref_max - ref_min)``.

    Args:
        dataset_name_or_env: a D4RL name (``"halfcheetah-medium-v2"``), D4RL env key, Gymnasium id
            (``"HalfCheetah-v4"``) or any dataset name when ``ref_min``/``ref_max`` are given.
        returns: one undiscounted episode return or an array of them.
        ref_min: the dataset's own random-policy return (with ``ref_max``); overrides D4RL's constants.
        ref_max: the dataset's own expert return (with ``ref_min``).

    Returns:
        A float for a scalar return, else an array of the same shape. D4RL's ``get_normalized_score``
        returns the fraction; this is 100 times that, the scale papers report.

    Raises:
        ReferenceScoreError: see :func:`reference_returns`.
    """
    low, high = reference_returns(dataset_name_or_env, ref_min, ref_max)
    scores = 100.0 * (np.asarray(returns, dtype=np.float64) - low) / (high - low)
    return float(scores) if scores.ndim == 0 else scores
