"""MOPPO's loss terms as plain functions, so each is pinned by a hand computation (and by mutation tests).

Authors' code: github RuohLiuq/C-MORL, ``a2c_ppo_acktr/algo/ppo.py`` (``update`` and ``ipo_update``).
"""

from __future__ import annotations

import numpy as np
import torch as th

ADVANTAGE_EPS = 1e-5
"""Added to the advantage's standard deviation when standardising (the authors' 1e-5)."""


def scalar_advantages(advantages: np.ndarray, scale: np.ndarray, weights: np.ndarray, target_objective: int | None,
                      standardise: bool = True) -> np.ndarray:
    """The advantage PPO's clip sees, from per-objective advantages (..., n_objectives) in the normalised scale.

    Preference mode (``target_objective`` None): w . (scale * A), the weighted advantage on the raw objective
    scale (the authors multiply normalised returns and values by sqrt(obj_var + 1e-8) before scalarising).
    Constrained mode: objective i's advantage. Then standardised over the whole rollout with the unbiased std.
    """
    raw = advantages * scale
    scalar = raw[..., target_objective] if target_objective is not None else raw @ weights
    if standardise:
        scalar = (scalar - scalar.mean()) / (scalar.std(ddof=1) + ADVANTAGE_EPS)
    return scalar.astype(np.float32)


def clipped_surrogate(ratio: th.Tensor, advantages: th.Tensor, clip_range: float) -> th.Tensor:
    """PPO's clipped surrogate, to minimise: -mean(min(r A, clip(r, 1 - eps, 1 + eps) A))."""
    clipped = th.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)
    return -th.min(ratio * advantages, clipped * advantages).mean()


def clipped_value_loss(values: th.Tensor, old_values: th.Tensor, returns: th.Tensor,
                       clip_range_vf: float | None) -> th.Tensor:
    """0.5 * mean over batch and objectives of max((V - R)^2, (V_clip - R)^2), V_clip = V_old +
    clip(V - V_old, -eps, eps): the authors' clipped value loss; 0.5 * mean (V - R)^2 without a clip."""
    losses = (values - returns).pow(2)
    if clip_range_vf is not None:
        clipped = old_values + (values - old_values).clamp(-clip_range_vf, clip_range_vf)
        losses = th.max(losses, (clipped - returns).pow(2))
    return 0.5 * losses.mean()
