"""SDDP's stage LP: the stage dispatch plus a cost-to-go ``theta`` bounded below by Benders cuts, kept between solves.

Stage ``t`` from incoming volumes ``v_in`` under inflow ``a`` (the rows of :mod:`envs.hydro.lp`, without targets)::

    min  stage operating cost + theta
    s.t. the stage's water balance (right-hand side v_in + a), bus balances and DC flows
         theta >= alpha_k + beta_k . v_out    for each cut k,    theta >= 0

SDDP solves each stage LP about 150 times per iteration on the bolivia-like case (once per inflow realisation in the
backward pass), with the same cuts and other incoming volumes and inflows. :class:`StageCutLP` therefore builds the
LP once per set of cuts and only changes the water-balance rows' right-hand side per solve: rebuilding it in Python
for every solve took about half of SDDP's time. Within a batch (:meth:`StageCutLP.solve_batch`: one incoming
volume, many inflows, as in SDDP's backward pass and lower bound) HiGHS re-solves from the previous basis (dual
simplex after a right-hand-side change; where HiGHS gives up on a warm start, that solve is redone from a cleared
basis, and where it gives up on that too, on a fresh copy of the LP with HiGHS's default settings).
Every batch and every single solve starts from a cleared basis, so a solution depends only on the cuts and the
batch, never on what was solved before it (a resumed SDDP run reproduces an uninterrupted one).

``theta >= 0`` is imposed with the cuts (every cost in the problem is non-negative, so 0 is a valid first cut);
without cuts ``theta`` is fixed at 0, so the LP is the stage's dispatch alone and ``future_cost`` is 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import highspy
import numpy as np

from envs.hydro.lp import (
    HydroLPError,
    _add_stage,
    _check_vector,
    _Model,
    _operating_cost,
    _use_single_bus,
    run_highs,
)
from envs.hydro.system import HydroSystem


@dataclass(frozen=True)
class CutStageSolution:
    """Optimal solution of one SDDP stage LP: stage dispatch plus ``theta`` bounded below by Benders cuts."""

    objective: float
    """Operating cost of the stage + ``future_cost``."""
    operating_cost: float
    future_cost: float
    """Value of ``theta`` (the cuts' approximation of the expected cost of the later stages); 0 without cuts."""
    volumes: np.ndarray
    turbined: np.ndarray
    spilled: np.ndarray
    thermal_generation: np.ndarray
    deficit: np.ndarray
    water_value: np.ndarray
    """d objective / d v_in (dual of the water balance rows): the slope of a Benders cut."""


class StageCutLP:
    """One stage's SDDP LP with a fixed set of cuts, held in HiGHS: ``(v_in, inflow)`` only moves the right-hand side.

    :param system: the hydrothermal system.
    :param stage: stage index, 0-based (selects the demand).
    :param cut_intercepts: ``alpha``, shape ``(K,)`` (None or empty: no cuts, ``theta`` fixed at 0).
    :param cut_slopes: ``beta``, shape ``(K, num_hydros)``.
    :param single_bus: override the system's network model.

    The cuts are set here once: HiGHS keeps state from earlier solves that a cleared basis does not reset, and rows
    appended after a solve gave optima a few units in the last place away from the same LP built with them. A new
    cut therefore means a new ``StageCutLP`` (SDDP builds one per stage and iteration, against ~150 solves).
    """

    def __init__(self, system: HydroSystem, stage: int, cut_intercepts: np.ndarray | None = None,
                 cut_slopes: np.ndarray | None = None, *, single_bus: bool | None = None) -> None:
        if not 0 <= stage < system.num_stages:
            raise ValueError(f"stage: expected 0 <= stage < {system.num_stages}, got {stage}")
        self.system, self.stage = system, stage
        n = self.num_hydros = len(system.hydros)
        alphas = np.zeros(0) if cut_intercepts is None else np.asarray(cut_intercepts, dtype=float).reshape(-1)
        betas = np.zeros((0, n)) if cut_slopes is None else np.asarray(cut_slopes, dtype=float)
        if betas.shape != (alphas.size, n):
            raise ValueError(f"cut_slopes: expected shape ({alphas.size}, {n}), got {betas.shape}")
        self.num_cuts = alphas.size
        model = _Model()
        zeros = np.zeros(n)
        self._vars = _add_stage(model, system, stage, zeros, zeros, None, _use_single_bus(system, single_bus))
        self._theta = model.var(1.0, 0.0, highspy.kHighsInf if alphas.size else 0.0)  # fixed at 0 without cuts
        for alpha, beta in zip(alphas, betas):
            # theta - beta . v >= alpha
            model.row({self._theta: 1.0, **{v: -float(b) for v, b in zip(self._vars.volumes, beta)}},
                      float(alpha), highspy.kHighsInf)
        self._model = model
        self._highs = model.to_highs()
        # Presolve off: on the bolivia-like case SDDP's iterations take 20 % less time without it (the LP is small,
        # and presolve would redo its reductions on every warm-started re-solve).
        self._highs.setOptionValue("presolve", "off")
        self._balance_rows = np.asarray(self._vars.balance_rows, dtype=np.int32)

    def solve(self, volumes_in: np.ndarray, inflow: np.ndarray) -> CutStageSolution:
        """The optimum from ``volumes_in`` under ``inflow``, solved from a cleared basis."""
        return self.solve_batch(volumes_in, [inflow])[0]

    def solve_batch(self, volumes_in: np.ndarray, inflows: Sequence[np.ndarray] | np.ndarray) -> list[CutStageSolution]:
        """The optimum from ``volumes_in`` under each inflow in turn: the first from a cleared basis, each next one
        from the basis of the one before (same results as separate solves up to the choice among optimal vertices)."""
        volumes_in = _check_vector("volumes_in", volumes_in, self.num_hydros)
        self._highs.clearSolver()
        return [self._solve_from_current_basis(volumes_in, _check_vector("inflow", inflow, self.num_hydros))
                for inflow in inflows]

    def _solve_from_current_basis(self, volumes_in: np.ndarray, inflow: np.ndarray) -> CutStageSolution:
        rhs = volumes_in + inflow
        where = f"stage {self.stage} (with {self.num_cuts} cuts)"
        self._highs.changeRowsBounds(len(rhs), self._balance_rows, rhs, rhs)
        try:
            objective, x, row_dual = run_highs(self._highs, where, cold_retry=True)
        except HydroLPError:
            # Without presolve HiGHS sometimes ends with status "Unknown" even from a cleared basis (bolivia-like,
            # stage 92 with 10 cuts): solve a fresh copy of the LP with HiGHS's defaults before giving up.
            fresh = self._model.to_highs()
            fresh.changeRowsBounds(len(rhs), self._balance_rows, rhs, rhs)
            objective, x, row_dual = run_highs(fresh, where)
        v = self._vars
        thermal, deficit = x[v.thermal], x[v.deficit]
        return CutStageSolution(
            objective=objective,
            operating_cost=float(_operating_cost(self.system, thermal, deficit)),
            future_cost=float(x[self._theta]),
            volumes=x[v.volumes],
            turbined=x[v.turbined],
            spilled=x[v.spilled],
            thermal_generation=thermal,
            deficit=deficit,
            water_value=row_dual[v.balance_rows],
        )


def solve_stage_with_cuts(
    system: HydroSystem,
    stage: int,
    *,
    volumes_in: np.ndarray,
    inflow: np.ndarray,
    cut_intercepts: np.ndarray | None = None,
    cut_slopes: np.ndarray | None = None,
    single_bus: bool | None = None,
) -> CutStageSolution:
    """Solve one stage of SDDP once: dispatch + ``theta``, with ``theta >= alpha_k + beta_k . v_out`` for each cut k.

    Without cuts (``None`` or zero cuts, e.g. the last stage) ``future_cost`` is 0. A caller solving the same stage
    repeatedly keeps a :class:`StageCutLP` instead.

    Args:
        system: the hydrothermal system.
        stage: stage index, 0-based.
        volumes_in: incoming reservoir volumes.
        inflow: this stage's inflow realisation.
        cut_intercepts: ``alpha``, shape ``(K,)``.
        cut_slopes: ``beta``, shape ``(K, num_hydros)``.
        single_bus: override the system's network model.

    Raises:
        ValueError: a wrong shape or stage index.
        HydroLPError: the LP has no optimal solution.
    """
    return StageCutLP(system, stage, cut_intercepts, cut_slopes, single_bus=single_bus).solve(volumes_in, inflow)
