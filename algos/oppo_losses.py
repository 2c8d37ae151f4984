"""OPPO's loss terms as plain functions of tensors (Kang et al., ICML 2023), pinned by hand computations in
tests/test_oppo.py.

The authors' scripted-label trainer (bkkgbkjb/OPPO: oppo/scripted/gym/decision_transformer/training/pdt_trainer.py)
builds the same terms from ``nn.MSELoss`` and ``nn.TripletMarginLoss(margin=1.0, p=2)``; here each is written out so
that a reader sees the formula and a test can check it number by number.
"""

from __future__ import annotations

import torch as th

TRIPLET_MARGIN = 1.0
"""The triplet loss's margin (the paper's and ``pdt_trainer.py``'s ``TripletMarginLoss(margin=1.0)``)."""
DISTANCE_EPS = 1e-6
"""Added to the difference before the norm, as ``torch.nn.functional.pairwise_distance`` does (the triplet loss the
authors call), so that the distance has a gradient where two embeddings coincide."""


def hindsight_matching_loss(predicted: th.Tensor, target: th.Tensor, mask: th.Tensor) -> th.Tensor:
    """Action regression of pi(a | s, E(tau)) on the dataset's actions: the mean of ``(a_hat - a)^2`` over every
    action dimension of every unpadded step.

    Args:
        predicted: (batch, steps, act_dim) the policy's actions.
        target: (batch, steps, act_dim) the dataset's actions.
        mask: (batch, steps), 1 for a real step, 0 for left padding.
    """
    keep = mask.reshape(-1) > 0
    act_dim = predicted.shape[-1]
    return (predicted.reshape(-1, act_dim)[keep] - target.reshape(-1, act_dim)[keep]).pow(2).mean()


def distance(a: th.Tensor, b: th.Tensor, eps: float = DISTANCE_EPS) -> th.Tensor:
    """Euclidean distance along the last dimension, ``||a - b + eps||_2`` (PyTorch's ``pairwise_distance``)."""
    return (a - b + eps).norm(dim=-1)


def preference_triplet_loss(
    anchor: th.Tensor, positive: th.Tensor, negative: th.Tensor, margin: float = TRIPLET_MARGIN
) -> th.Tensor:
    """The paper's preference model: ``mean_i max(d(z*, z+_i) - d(z*, z-_i) + margin, 0)``.

    ``anchor`` is z* (shape (z_dim,) or (batch, z_dim)), ``positive`` the encodings of the preferred segments and
    ``negative`` those of the other segments, (batch, z_dim). Minimised over the encoder (z* detached) it pulls
    preferred segments towards z* and pushes the others away; minimised over z* (encodings detached) it moves z*
    towards the preferred side.
    """
    anchor = anchor.expand_as(positive)
    return (distance(anchor, positive) - distance(anchor, negative) + margin).clamp(min=0.0).mean()


def norm_loss(z: th.Tensor) -> th.Tensor:
    """``mean_i (||z_i|| - 1)^2``: keeps the encodings near the unit sphere, where a margin of 1 is meaningful
    (``pdt_trainer.py``: ``MSELoss(norm(phi, dim=1), ones)``, once per side of the pairs)."""
    return (z.norm(dim=-1) - 1.0).pow(2).mean()


def encoder_policy_loss(
    recon: th.Tensor, triplet: th.Tensor, norm: th.Tensor, *, preference_weight: float, norm_weight: float
) -> th.Tensor:
    """What the encoder and the policy minimise together: ``recon + preference_weight * triplet + norm_weight *
    norm`` (the paper's and the authors' weights: 0.1 and 0.1)."""
    return recon + preference_weight * triplet + norm_weight * norm
