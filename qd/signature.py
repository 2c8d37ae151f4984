"""Truncated path signature of a trajectory, an optional trajectory descriptor for STAX.

The signature of a path X: [0, T] -> R^d is the sequence of iterated integrals; truncated at depth m it
is a fixed-size summary of the whole trajectory (d + d^2 + ... + d^m numbers), invariant to
reparametrisation. For a piecewise-linear path it follows from two facts: a straight segment with
increment D has signature (D, D⊗D/2!, D⊗D⊗D/3!, ...) (the tensor exponential), and Chen's identity
S(a * b) = S(a) ⊗ S(b) joins consecutive segments. STAX computes the same quantity with ``iisignature.sig``
at depth 2 (GPaolo/STAX ``core/behavior_descriptors/behavior_descriptors.py`` ``sign_bd``,
``signature_order = 2`` in ``parameters.py``); the layout here is iisignature's: levels 1..m, each
flattened in row-major order, without the constant 1 of level 0.

Written with numpy so the project does not need iisignature (it built here and the tests compare against
it when it is installed). ``time_augment`` appends the channel t / (T - 1), as STAX's ``time_logsign_bd``
does to make signatures of paths that retrace themselves distinct.
"""

from __future__ import annotations

import math

import numpy as np

SIGNATURE_DEPTH = 2
"""Default truncation depth (``signature_order`` in STAX's ``parameters.py``)."""


def signature_size(channels: int, depth: int) -> int:
    """Length of a depth-``depth`` signature of a ``channels``-dimensional path: d + d^2 + ... + d^m."""
    return sum(channels**level for level in range(1, depth + 1))


def _segment_levels(increment: np.ndarray, depth: int) -> list[np.ndarray]:
    """Signature levels 1..depth of one straight segment: increment^{⊗k} / k!."""
    levels, term = [], np.ones(())
    for level in range(1, depth + 1):
        term = np.multiply.outer(term, increment)
        levels.append(term / math.factorial(level))
    return levels


def _chen(left: list[np.ndarray], right: list[np.ndarray]) -> list[np.ndarray]:
    """Levels of S(a) ⊗ S(b) from the levels of S(a) and S(b) (level 0 = 1 on both sides)."""
    joined = []
    for level in range(1, len(left) + 1):
        total = left[level - 1] + right[level - 1]
        for split in range(1, level):
            total = total + np.multiply.outer(left[split - 1], right[level - split - 1])
        joined.append(total)
    return joined


def path_signature(path: np.ndarray, depth: int = SIGNATURE_DEPTH, *, time_augment: bool = False) -> np.ndarray:
    """Truncated signature of the piecewise-linear path through the rows of ``path``.

    Args:
        path: (T, d) points (e.g. the T x 2 outcomes of an episode); T >= 1.
        depth: Truncation depth m >= 1 (2, as STAX).
        time_augment: Append the channel t / (T - 1) (0 for T = 1) before taking the signature.

    Returns:
        (d + ... + d^m,) float64: levels 1..m flattened (iisignature's ``sig`` layout). A one-point path
        has the zero signature.

    Raises:
        ValueError: for a path that is not 2-D or empty, or depth < 1.
    """
    path = np.asarray(path, dtype=np.float64)
    if path.ndim != 2 or len(path) == 0:
        raise ValueError(f"path must have shape (T, d) with T >= 1, got {path.shape}.")
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}.")
    if time_augment:
        time = np.linspace(0.0, 1.0, len(path)) if len(path) > 1 else np.zeros(1)
        path = np.concatenate([path, time[:, None]], axis=1)
    channels = path.shape[1]
    levels = [np.zeros((channels,) * level) for level in range(1, depth + 1)]
    for increment in np.diff(path, axis=0):
        levels = _chen(levels, _segment_levels(increment, depth))
    return np.concatenate([level.reshape(-1) for level in levels])


def trajectory_signatures(trajectories: list[np.ndarray], depth: int = SIGNATURE_DEPTH, *,
                          time_augment: bool = False) -> np.ndarray:
    """(n, size) signatures of n trajectories (see :func:`path_signature`)."""
    return np.stack([path_signature(t, depth, time_augment=time_augment) for t in trajectories])
