"""TS-DDR's differentiable LP layer: the stage LP as a torch autograd function whose backward pass uses the duals.

:class:`StageLP` solves a batch of stage LPs (HiGHS, ``envs.hydro.lp``) from incoming volumes and targets. By the
envelope theorem the target-row dual is d objective / d target and the water-balance dual d objective / d incoming
volumes, so nothing is differentiated through the solver. The realised end volumes depend on the targets and the
incoming volumes too; :func:`volume_jacobians` gives that Jacobian (by finite differences of the LP; the authors use
DiffOpt), which carries the gradient of later stages back in TS-DDR's stage mode.
"""

from __future__ import annotations

import numpy as np
import torch

from envs.hydro import HydroSystem, solve_stage


def volume_jacobians(
    system: HydroSystem, stage: int, v_in: np.ndarray, inflow: np.ndarray, target: np.ndarray,
    penalty: float, volumes: np.ndarray, step: float,
) -> tuple[np.ndarray, np.ndarray]:
    """d realised volumes / d (v_in, target) by one-sided finite differences of the stage LP.

    Deviation: the authors use DiffOpt; the LP is piecewise linear, so a small forward step is exact unless a
    breakpoint lies within it.
    """
    n = len(v_in)
    steps = step * np.array([max(h.max_volume - h.min_volume, 1.0) for h in system.hydros])
    jac_in, jac_target = np.zeros((n, n)), np.zeros((n, n))
    for j in range(n):
        e = np.zeros(n)
        e[j] = steps[j]
        moved = solve_stage(system, stage, volumes_in=v_in + e, inflow=inflow, target=target, target_penalty=penalty)
        jac_in[:, j] = (moved.volumes - volumes) / steps[j]
        moved = solve_stage(system, stage, volumes_in=v_in, inflow=inflow, target=target + e, target_penalty=penalty)
        jac_target[:, j] = (moved.volumes - volumes) / steps[j]
    return jac_in, jac_target


class StageLP(torch.autograd.Function):
    """Batched stage LP: ``(v_in, target) -> (objective, realised volumes, operating cost)``; the backward pass
    uses the duals.

    d objective / d target = target-row dual, d objective / d v_in = water-balance dual (envelope theorem); the
    realised volumes' Jacobians carry the gradient of later stages back (see :func:`volume_jacobians`).
    """

    @staticmethod
    def forward(ctx, v_in, target, system, stage, inflow, penalty, fd_step, transition):  # noqa: D102
        b, n = target.shape
        objective, operating, volumes = np.zeros(b), np.zeros(b), np.zeros((b, n))
        lam, mu = np.zeros((b, n)), np.zeros((b, n))
        jac_in, jac_target = np.zeros((b, n, n)), np.zeros((b, n, n))
        v_np, t_np = v_in.detach().numpy(), target.detach().numpy()
        for k in range(b):
            sol = solve_stage(system, stage, volumes_in=v_np[k], inflow=inflow[k], target=t_np[k],
                              target_penalty=penalty)
            objective[k], operating[k], volumes[k] = sol.objective, sol.operating_cost, sol.volumes
            lam[k], mu[k] = sol.target_duals, sol.water_value
            if transition:
                jac_in[k], jac_target[k] = volume_jacobians(
                    system, stage, v_np[k], inflow[k], t_np[k], penalty, sol.volumes, fd_step)
        ctx.save_for_backward(*(torch.as_tensor(a) for a in (lam, mu, jac_in, jac_target)))
        operating = torch.as_tensor(operating)
        ctx.mark_non_differentiable(operating)
        return torch.as_tensor(objective), torch.as_tensor(volumes), operating

    @staticmethod
    def backward(ctx, grad_objective, grad_volumes, _grad_operating):  # noqa: D102
        lam, mu, jac_in, jac_target = ctx.saved_tensors
        grad_v_in = grad_objective[:, None] * mu + torch.einsum("bi,bij->bj", grad_volumes, jac_in)
        grad_target = grad_objective[:, None] * lam + torch.einsum("bi,bij->bj", grad_volumes, jac_target)
        return grad_v_in, grad_target, None, None, None, None, None, None

