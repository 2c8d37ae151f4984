"""Tsallis q-logarithm, the generalised log behind Tsallis-entropy regularisation (used by MDPO)."""

from __future__ import annotations

import torch as th


def log_q(x: th.Tensor, q: float, *, floor: float = 1e-6) -> th.Tensor:
    """``log_q(x) = (x^(1-q) - 1) / (1 - q)``, and ``log(x)`` at q = 1; ``x`` floored at ``floor``.

    The floor keeps densities of improbable actions from producing infinities, as in the MDPO
    authors' implementation.
    """
    safe_x = th.clamp(x, min=floor)
    if q == 1.0:
        return th.log(safe_x)
    return (safe_x.pow(1.0 - q) - 1.0) / (1.0 - q)
