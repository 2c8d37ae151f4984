"""C-MORL's log-barrier term: maximise one objective while every other stays above beta times its return.

Paper: Liu et al., "C-MORL: Multi-Objective Reinforcement Learning through Efficient Discovery of Pareto
Front", ICLR 2025 (Pareto extension, the interior-point form). Authors' code: github RuohLiuq/C-MORL,
``a2c_ppo_acktr/algo/ppo.py`` ``ipo_update``.

On a minibatch with probability ratios r_k and (normalised) per-objective returns R_k, with J = mean_k R_k:

    cost_kj   = clip(r_k, 1 - eps, 1 + eps) * J_j
    barrier   = -(1/t) * mean_{k, j != i} log( max(cost_kj - beta * J_j, floor) )

which the policy loss adds to PPO's clipped loss on objective i's advantage. Where the argument falls
below ``floor`` (the constraint is violated or J_j <= 0) the term is the constant log(floor): no gradient.

Deliberate deviation: the authors drop objective i with ``torch.cat((hat_cost[:obj], hat_cost[obj+1:]))``
on a (batch, n_objectives) tensor, which removes row ``obj`` of the batch, not column ``obj``, so their
barrier also covers the objective being maximised. We drop the column, as the paper's sum over j != i says.
Like the authors we average over the constrained objectives (the paper writes a sum; for two objectives
they are equal).
"""

from __future__ import annotations

import torch as th

BETA = 0.9
"""Constraint relaxation: keep each other objective above beta times its current return (authors' --beta)."""
BARRIER_T = 20.0
"""Log-barrier coefficient t: the barrier is weighted 1/t (authors' --t)."""
BARRIER_FLOOR = 1e-3
"""Smallest argument of the logarithm (authors' ``clamp(..., max=-0.001)`` on its negative)."""


def barrier_loss(ratio: th.Tensor, returns: th.Tensor, objective: int, *, clip_range: float, beta: float = BETA,
                 t: float = BARRIER_T, floor: float = BARRIER_FLOOR) -> th.Tensor:
    """The barrier term (to be minimised) for maximising ``objective`` under the others' constraints.

    :param ratio: (batch,) probability ratios pi_new / pi_old of the minibatch's actions.
    :param returns: (batch, n_objectives) returns of the minibatch (the normalised scale PPO trains on).
    :param objective: index i of the objective being maximised (not constrained).
    :param clip_range: PPO's epsilon; the ratio is clipped to [1 - eps, 1 + eps] as in the authors' code.
    """
    n_objectives = returns.shape[1]
    if not 0 <= objective < n_objectives:
        raise ValueError(f"objective must be in 0..{n_objectives - 1}, got {objective}")
    mean_returns = returns.mean(dim=0)
    cost = th.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range).unsqueeze(1) * mean_returns.unsqueeze(0)
    slack = th.clamp(cost - beta * mean_returns.unsqueeze(0), min=floor)
    others = [j for j in range(n_objectives) if j != objective]
    return -th.log(slack[:, others]).mean() / t
