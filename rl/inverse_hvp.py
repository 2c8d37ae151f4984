"""Approximate inverse-Hessian-vector products: solve ``A x = b`` for a symmetric positive (semi-)definite ``A``
that is only available as a product ``v -> A v``.

Implicit differentiation through an optimum (PARL's ``d theta* / d nu = -[Hessian_theta V]^-1 d^2_{theta,nu} V``)
needs ``A^-1 b`` where ``A = -Hessian_theta V`` has as many rows as the policy has parameters: it is never formed,
only multiplied through double backpropagation. Two standard solvers:

- :func:`conjugate_gradient`: SciPy's ``scipy.sparse.linalg.cg`` on a ``LinearOperator`` around the product (each
  iteration one product; exact in ``n`` iterations for an ``n``-dimensional ``A`` in exact arithmetic). ``damping``
  solves ``(A + damping I) x = b`` instead, the usual guard when the estimated Hessian is not definite.
- :func:`neumann_series`: ``A^-1 b ~= scale * sum_{k=0}^{K} (I - scale A)^k b`` (Lorraine et al., 2020), which
  converges when ``0 < scale < 2 / lambda_max(A)``; cheaper per iteration than CG, no convergence test.

A singular ``A`` (a softmax policy's logits can all shift by a constant per state without changing the policy)
is fine when ``b`` lies in its range, as every gradient of a shift-invariant function does: started from zero,
both solvers then stay in the range, and CG converges to the minimum-norm solution.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch as th

HessianVectorProduct = Callable[[th.Tensor], th.Tensor]
"""``v -> A v`` for a flat tensor ``v`` of the operator's size."""

SOLVERS = ("cg", "neumann")
"""The names :func:`solve` accepts."""


def conjugate_gradient(
    hvp: HessianVectorProduct, b: th.Tensor, *, iterations: int = 10, damping: float = 0.0, tolerance: float = 1e-10
) -> th.Tensor:
    """``(A + damping I)^-1 b`` by at most ``iterations`` steps of conjugate gradient (SciPy's ``cg``).

    Args:
        hvp: ``v -> A v`` with ``A`` symmetric positive semi-definite.
        b: the right-hand side (flat).
        iterations: the most products with ``A``.
        damping: added to ``A``'s diagonal (>= 0).
        tolerance: relative residual at which CG stops early.

    Returns:
        ``x`` with ``b``'s dtype and device.
    """
    from scipy.sparse.linalg import LinearOperator, cg

    _check(iterations=iterations, damping=damping)
    size = b.numel()

    def matvec(vector: np.ndarray) -> np.ndarray:
        v = th.as_tensor(np.ravel(vector), dtype=b.dtype, device=b.device)
        return (hvp(v).detach() + damping * v).cpu().numpy().astype(np.float64)

    operator = LinearOperator((size, size), matvec=matvec, dtype=np.float64)
    right = b.detach().cpu().numpy().astype(np.float64).ravel()
    if not np.any(right):
        return th.zeros_like(b)
    solution, _ = cg(operator, right, rtol=tolerance, atol=0.0, maxiter=iterations)
    return th.as_tensor(solution, dtype=b.dtype, device=b.device).reshape(b.shape)


def neumann_series(
    hvp: HessianVectorProduct, b: th.Tensor, *, iterations: int = 10, scale: float = 0.1, damping: float = 0.0
) -> th.Tensor:
    """``(A + damping I)^-1 b ~= scale * sum_{k=0}^{iterations} (I - scale (A + damping I))^k b``.

    Converges as ``iterations`` grows when ``0 < scale < 2 / lambda_max(A + damping I)``; truncated, it is a
    damped inverse that shrinks the directions of small curvature (Lorraine, Vicol and Duvenaud, AISTATS 2020).
    """
    _check(iterations=iterations, damping=damping)
    if not scale > 0:
        raise ValueError(f"scale must be > 0 (below 2 / the largest eigenvalue), got {scale!r}.")
    term = b.detach().clone()
    total = term.clone()
    for _ in range(iterations):
        term = term - scale * (hvp(term).detach() + damping * term)
        total = total + term
    return scale * total


def solve(
    hvp: HessianVectorProduct, b: th.Tensor, *, method: str = "cg", iterations: int = 10, damping: float = 0.0,
    scale: float = 0.1,
) -> th.Tensor:
    """``(A + damping I)^-1 b`` by ``method`` (``"cg"`` or ``"neumann"``; ``scale`` is the Neumann step)."""
    if method == "cg":
        return conjugate_gradient(hvp, b, iterations=iterations, damping=damping)
    if method == "neumann":
        return neumann_series(hvp, b, iterations=iterations, scale=scale, damping=damping)
    raise ValueError(f"Unknown inverse-HVP method {method!r}: choose one of {', '.join(SOLVERS)}.")


def _check(*, iterations: int, damping: float) -> None:
    if int(iterations) != iterations or iterations < 1:
        raise ValueError(f"iterations must be an integer >= 1, got {iterations!r}.")
    if not damping >= 0:
        raise ValueError(f"damping must be >= 0, got {damping!r}.")
