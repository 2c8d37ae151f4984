"""The stage LP of long-term hydrothermal dispatch, and the whole-horizon perfect-foresight LP, on HiGHS.

Stage ``t`` (0-based), given incoming volumes ``v_in``, inflows ``a`` and target end volumes ``target``::

    min  sum_g cost_g p_g + deficit_cost sum_i d_i + target_penalty sum_r (z+_r + z-_r)
    s.t. v_r + q_r + s_r - sum_{u upstream of r} (q_u + s_u) = v_in_r + a_r       (water balance)
         v_r + z+_r - z-_r = target_r                                             (target, dual = dObj/dtarget)
         sum_{g at i} p_g + sum_{r at i} rho_r q_r + d_i - sum_{l from i} f_l + sum_{l to i} f_l = D_{t,i}
                                                                                  (bus balance)
         f_l = (theta_from(l) - theta_to(l)) / x_l,  |f_l| <= cap_l,  theta_{bus 0} = 0  (DC flow)
         v_min <= v <= v_max, 0 <= q <= q_max, 0 <= s <= s_max, 0 <= p <= p_max, d >= 0, z+/- >= 0

With ``network="single_bus"`` the bus balances collapse into one system-wide balance and lines are ignored.
The perfect-foresight LP chains ``T`` stages (``v_in`` of stage ``t`` is ``v`` of stage ``t-1``), has no
target rows and sees the whole inflow scenario: its optimum is a lower bound on the cost of any
non-anticipative policy on that scenario.

The target-row dual is what TS-DDR differentiates through: by the envelope theorem it is the derivative of the
optimal stage cost with respect to the target (HiGHS's ``row_dual`` is d objective / d row bound).

Two more LPs serve the algorithms of ``algos.tsddr`` and ``algos.sddp``:

* :func:`solve_horizon_with_targets`: the perfect-foresight chain plus a slack-penalised target row per stage and
  plant (TS-DDR's deterministic-equivalent mode); returns the target duals of every stage.
* :func:`envs.hydro.cut_lp.solve_stage_with_cuts` (its own module, with the persistent stage LP SDDP re-solves):
  a stage without targets whose cost-to-go ``theta`` is bounded below by Benders cuts.
"""

from __future__ import annotations

from dataclasses import dataclass

import highspy
import numpy as np

from envs.hydro.system import HydroSystem


class HydroLPError(RuntimeError):
    """A stage or horizon LP has no optimal solution; the message names the stage and HiGHS's status."""


@dataclass(frozen=True)
class StageSolution:
    """Optimal solution of one stage LP (arrays in the order of the system's hydros, thermals, buses, lines)."""

    objective: float
    """Thermal cost + deficit cost + target penalty."""
    operating_cost: float
    """Thermal cost + deficit cost (the cost a policy is evaluated on)."""
    penalty_cost: float
    volumes: np.ndarray
    turbined: np.ndarray
    spilled: np.ndarray
    hydro_generation: np.ndarray
    thermal_generation: np.ndarray
    deficit: np.ndarray
    line_flows: np.ndarray
    angles: np.ndarray
    target_slack: np.ndarray
    """``volumes - target``: positive when the end volume is above target."""
    target_duals: np.ndarray
    """d objective / d target for each hydro plant."""
    water_value: np.ndarray
    """d objective / d v_in (dual of the water balance rows)."""


@dataclass(frozen=True)
class HorizonSolution:
    """Optimal solution of the perfect-foresight LP; per-stage arrays have a leading stage axis."""

    objective: float
    stage_costs: np.ndarray
    volumes: np.ndarray
    turbined: np.ndarray
    spilled: np.ndarray
    hydro_generation: np.ndarray
    thermal_generation: np.ndarray
    deficit: np.ndarray
    line_flows: np.ndarray


class _Model:
    """Collects columns and rows, then hands them to HiGHS in one call each."""

    def __init__(self) -> None:
        self.cost: list[float] = []
        self.col_lower: list[float] = []
        self.col_upper: list[float] = []
        self.row_lower: list[float] = []
        self.row_upper: list[float] = []
        self.rows: list[dict[int, float]] = []

    def var(self, cost: float, lower: float, upper: float) -> int:
        self.cost.append(cost)
        self.col_lower.append(lower)
        self.col_upper.append(upper)
        return len(self.cost) - 1

    def row(self, coefficients: dict[int, float], lower: float, upper: float) -> int:
        self.rows.append(coefficients)
        self.row_lower.append(lower)
        self.row_upper.append(upper)
        return len(self.rows) - 1

    def to_highs(self) -> highspy.Highs:
        """A HiGHS instance holding this model (quiet), ready to run or to modify."""
        highs = highspy.Highs()
        highs.setOptionValue("output_flag", False)
        n = len(self.cost)
        highs.addCols(
            n,
            np.asarray(self.cost),
            np.asarray(self.col_lower),
            np.asarray(self.col_upper),
            0,
            np.zeros(0, dtype=np.int32),
            np.zeros(0, dtype=np.int32),
            np.zeros(0),
        )
        starts, indices, values = [], [], []
        for coefficients in self.rows:
            starts.append(len(indices))
            indices.extend(coefficients)
            values.extend(coefficients.values())
        highs.addRows(
            len(self.rows),
            np.asarray(self.row_lower),
            np.asarray(self.row_upper),
            len(indices),
            np.asarray(starts, dtype=np.int32),
            np.asarray(indices, dtype=np.int32),
            np.asarray(values, dtype=float),
        )
        return highs

    def solve(self, where: str) -> tuple[float, np.ndarray, np.ndarray]:
        return run_highs(self.to_highs(), where)


def run_highs(highs: highspy.Highs, where: str, *, cold_retry: bool = False) -> tuple[float, np.ndarray, np.ndarray]:
    """Solve ``highs``: (objective, column values, row duals); :class:`HydroLPError` naming ``where`` if not optimal.

    ``cold_retry``: when a solve from the kept basis ends without an optimum (HiGHS sometimes gives up on a warm
    start with status "Unknown"), clear the basis and solve once more from scratch before giving up.
    """
    highs.run()
    status = highs.getModelStatus()
    if status != highspy.HighsModelStatus.kOptimal and cold_retry:
        highs.clearSolver()
        highs.run()
        status = highs.getModelStatus()
    if status != highspy.HighsModelStatus.kOptimal:
        raise HydroLPError(f"{where}: no optimal solution (HiGHS status: {highs.modelStatusToString(status)})")
    solution = highs.getSolution()
    objective = float(highs.getInfo().objective_function_value)
    return objective, np.asarray(solution.col_value), np.asarray(solution.row_dual)


@dataclass
class _StageVars:
    volumes: list[int]
    turbined: list[int]
    spilled: list[int]
    thermal: list[int]
    deficit: list[int]
    flows: list[int]
    angles: list[int]
    balance_rows: list[int]


def _add_stage(
    model: _Model,
    system: HydroSystem,
    stage: int,
    inflow: np.ndarray,
    v_in_values: np.ndarray,
    v_in_vars: list[int] | None,
    single_bus: bool,
) -> _StageVars:
    """Add one stage's columns and rows. ``v_in_vars`` (previous stage's volume columns) or constant values."""
    inf = highspy.kHighsInf
    hydros, thermals = system.hydros, system.thermals
    volumes = [model.var(0.0, h.min_volume, h.max_volume) for h in hydros]
    turbined = [model.var(0.0, 0.0, h.max_turbine) for h in hydros]
    spilled = [model.var(0.0, 0.0, inf if h.max_spill is None else h.max_spill) for h in hydros]
    thermal = [model.var(unit.cost, 0.0, unit.capacity) for unit in thermals]
    n_balance = 1 if single_bus else len(system.buses)
    deficit = [model.var(system.deficit_cost, 0.0, inf) for _ in range(n_balance)]

    balance_rows = []
    for r in range(len(hydros)):
        coefficients = {volumes[r]: 1.0, turbined[r]: 1.0, spilled[r]: 1.0}
        for u in system.upstream(r):
            coefficients[turbined[u]] = -1.0
            coefficients[spilled[u]] = -1.0
        rhs = float(inflow[r])
        if v_in_vars is None:
            rhs += float(v_in_values[r])
        else:
            coefficients[v_in_vars[r]] = -1.0
        balance_rows.append(model.row(coefficients, rhs, rhs))

    demand = system.demand[stage]
    flows: list[int] = []
    angles: list[int] = []
    if single_bus:
        coefficients = {deficit[0]: 1.0}
        coefficients.update({p: 1.0 for p in thermal})
        for r, h in enumerate(hydros):
            coefficients[turbined[r]] = h.production_factor
        total = float(demand.sum())
        model.row(coefficients, total, total)
    else:
        angles = [model.var(0.0, -inf, inf) if i else model.var(0.0, 0.0, 0.0) for i in range(len(system.buses))]
        flows = [model.var(0.0, -line.capacity, line.capacity) for line in system.lines]
        for line, f in zip(system.lines, flows):
            a, b = system.bus_index(line.from_bus), system.bus_index(line.to_bus)
            model.row({f: line.reactance, angles[a]: -1.0, angles[b]: 1.0}, 0.0, 0.0)
        for i, bus in enumerate(system.buses):
            coefficients = {deficit[i]: 1.0}
            for p, unit in zip(thermal, thermals):
                if unit.bus == bus:
                    coefficients[p] = 1.0
            for r, h in enumerate(hydros):
                if h.bus == bus:
                    coefficients[turbined[r]] = h.production_factor
            for f, line in zip(flows, system.lines):
                if line.from_bus == bus:
                    coefficients[f] = -1.0
                if line.to_bus == bus:
                    coefficients[f] = 1.0
            model.row(coefficients, float(demand[i]), float(demand[i]))
    return _StageVars(volumes, turbined, spilled, thermal, deficit, flows, angles, balance_rows)


def _use_single_bus(system: HydroSystem, single_bus: bool | None) -> bool:
    return system.network == "single_bus" if single_bus is None else bool(single_bus)


def _check_vector(name: str, value: np.ndarray, size: int) -> np.ndarray:
    value = np.asarray(value, dtype=float)
    if value.shape != (size,):
        raise ValueError(f"{name}: expected shape ({size},), got {value.shape}")
    return value


def solve_stage(
    system: HydroSystem,
    stage: int,
    *,
    volumes_in: np.ndarray,
    inflow: np.ndarray,
    target: np.ndarray,
    target_penalty: float | None = None,
    single_bus: bool | None = None,
) -> StageSolution:
    """Solve one stage's dispatch with the slack-penalised target constraint.

    Args:
        system: the hydrothermal system.
        stage: stage index, 0-based (selects the demand).
        volumes_in: incoming reservoir volumes, one per hydro plant.
        inflow: this stage's inflow realisation, one per hydro plant.
        target: target end volumes, one per hydro plant.
        target_penalty: cost per unit of target slack; defaults to ``system.target_penalty``.
        single_bus: override the system's network model (True: one bus, lines ignored).

    Returns:
        The :class:`StageSolution`, including ``target_duals`` = d objective / d target.

    Raises:
        HydroLPError: the LP has no optimal solution (e.g. incoming water cannot keep a reservoir above its
            minimum volume); the message names the stage.
    """
    if not 0 <= stage < system.num_stages:
        raise ValueError(f"stage: expected 0 <= stage < {system.num_stages}, got {stage}")
    n = len(system.hydros)
    volumes_in = _check_vector("volumes_in", volumes_in, n)
    inflow = _check_vector("inflow", inflow, n)
    target = _check_vector("target", target, n)
    penalty = system.target_penalty if target_penalty is None else float(target_penalty)
    single = _use_single_bus(system, single_bus)

    model = _Model()
    v = _add_stage(model, system, stage, inflow, volumes_in, None, single)
    above = [model.var(penalty, 0.0, highspy.kHighsInf) for _ in range(n)]
    below = [model.var(penalty, 0.0, highspy.kHighsInf) for _ in range(n)]
    # v_r - above_r + below_r = target_r, so above_r - below_r = v_r - target_r.
    target_rows = [
        model.row({v.volumes[r]: 1.0, above[r]: -1.0, below[r]: 1.0}, float(target[r]), float(target[r]))
        for r in range(n)
    ]
    objective, x, row_dual = model.solve(f"stage {stage}")

    thermal = x[v.thermal]
    deficit = x[v.deficit]
    operating = float(np.dot([u.cost for u in system.thermals], thermal) + system.deficit_cost * deficit.sum())
    factors = np.array([h.production_factor for h in system.hydros])
    volumes = x[v.volumes]
    return StageSolution(
        objective=objective,
        operating_cost=operating,
        penalty_cost=objective - operating,
        volumes=volumes,
        turbined=x[v.turbined],
        spilled=x[v.spilled],
        hydro_generation=factors * x[v.turbined],
        thermal_generation=thermal,
        deficit=deficit,
        line_flows=x[v.flows],
        angles=x[v.angles],
        target_slack=volumes - target,
        target_duals=row_dual[target_rows],
        water_value=row_dual[v.balance_rows],
    )


def solve_perfect_foresight(
    system: HydroSystem,
    *,
    scenario: int | None = None,
    inflows: np.ndarray | None = None,
    single_bus: bool | None = None,
) -> HorizonSolution:
    """Solve the whole horizon for one inflow scenario with the inflows known in advance (a lower bound).

    Args:
        system: the hydrothermal system.
        scenario: index into ``system.inflows``; give this or ``inflows``.
        inflows: an inflow scenario of shape ``(num_stages, num_hydros)``.
        single_bus: override the system's network model.

    Raises:
        HydroLPError: the LP has no optimal solution; the message names the first stage that cannot be
            satisfied on its own from the initial volumes, or the horizon if none can be singled out.
    """
    if (scenario is None) == (inflows is None):
        raise ValueError("give exactly one of scenario and inflows")
    if inflows is None:
        if not 0 <= scenario < system.num_scenarios:
            raise ValueError(f"scenario: expected 0 <= scenario < {system.num_scenarios}, got {scenario}")
        inflows = system.inflows[scenario]
    inflows = np.asarray(inflows, dtype=float)
    shape = (system.num_stages, len(system.hydros))
    if inflows.shape != shape:
        raise ValueError(f"inflows: expected shape {shape}, got {inflows.shape}")
    single = _use_single_bus(system, single_bus)

    model = _Model()
    stages: list[_StageVars] = []
    for t in range(system.num_stages):
        previous = stages[-1].volumes if stages else None
        stages.append(_add_stage(model, system, t, inflows[t], system.initial_volumes, previous, single))
    try:
        objective, x, _ = model.solve(f"perfect-foresight horizon (stages 0-{system.num_stages - 1})")
    except HydroLPError as error:
        raise HydroLPError(f"{error}; {_first_infeasible_stage(system, inflows)}") from error

    costs = np.array([u.cost for u in system.thermals])
    thermal = np.array([x[s.thermal] for s in stages])
    deficit = np.array([x[s.deficit] for s in stages])
    turbined = np.array([x[s.turbined] for s in stages])
    factors = np.array([h.production_factor for h in system.hydros])
    return HorizonSolution(
        objective=objective,
        stage_costs=thermal @ costs + system.deficit_cost * deficit.sum(axis=1),
        volumes=np.array([x[s.volumes] for s in stages]),
        turbined=turbined,
        spilled=np.array([x[s.spilled] for s in stages]),
        hydro_generation=turbined * factors,
        thermal_generation=thermal,
        deficit=deficit,
        line_flows=np.array([x[s.flows] for s in stages]),
    )


def _first_infeasible_stage(system: HydroSystem, inflows: np.ndarray) -> str:
    """Name the first stage at which even holding all water back leaves a reservoir below its minimum."""
    volumes = system.initial_volumes
    for t in range(system.num_stages):
        kept = np.minimum(volumes + inflows[t], [h.max_volume for h in system.hydros])
        for r, h in enumerate(system.hydros):
            if volumes[r] + inflows[t, r] + 1e-9 < h.min_volume:
                return f"stage {t}: plant {h.name!r} cannot reach min_volume {h.min_volume} (upstream releases aside)"
        volumes = kept
    return "no single stage is infeasible on its own"


# ------------------------------------------------------------------------ TS-DDR horizon LP and SDDP stage LP


@dataclass(frozen=True)
class TargetHorizonSolution(HorizonSolution):
    """Whole-horizon LP with per-stage slack-penalised targets (TS-DDR's deterministic-equivalent mode).

    ``objective`` includes the target penalty; ``stage_costs`` and ``operating_cost`` do not.
    """

    operating_cost: float
    penalty_cost: float
    target_slack: np.ndarray
    """``volumes - targets``, shape ``(num_stages, num_hydros)``."""
    target_duals: np.ndarray
    """d objective / d target, shape ``(num_stages, num_hydros)``."""


def _operating_cost(system: HydroSystem, thermal: np.ndarray, deficit: np.ndarray) -> np.ndarray:
    """Thermal + deficit cost; works on one stage (1-d arrays) or a stack of stages (leading axis)."""
    costs = np.array([u.cost for u in system.thermals])
    return thermal @ costs + system.deficit_cost * deficit.sum(axis=-1)


def solve_horizon_with_targets(
    system: HydroSystem,
    *,
    inflows: np.ndarray,
    targets: np.ndarray,
    target_penalty: float | None = None,
    initial_volumes: np.ndarray | None = None,
    single_bus: bool | None = None,
) -> TargetHorizonSolution:
    """Solve the whole horizon for one inflow scenario with a slack-penalised target row per stage and plant.

    This is the deterministic equivalent of TS-DDR (the authors' ``deterministic_equivalent!``): the policy fixes
    all ``T`` targets, the LP chains the stages and projects the targets onto the feasible set; the target-row
    duals are d objective / d target for every stage (envelope theorem).

    Args:
        system: the hydrothermal system.
        inflows: the scenario, shape ``(num_stages, num_hydros)``.
        targets: target end volumes, shape ``(num_stages, num_hydros)``.
        target_penalty: cost per unit of target slack; defaults to ``system.target_penalty``.
        initial_volumes: volumes before stage 0; defaults to the system's initial volumes.
        single_bus: override the system's network model.

    Raises:
        ValueError: an array has the wrong shape (the message names it).
        HydroLPError: the LP has no optimal solution.
    """
    shape = (system.num_stages, len(system.hydros))
    inflows = np.asarray(inflows, dtype=float)
    targets = np.asarray(targets, dtype=float)
    for name, value in (("inflows", inflows), ("targets", targets)):
        if value.shape != shape:
            raise ValueError(f"{name}: expected shape {shape}, got {value.shape}")
    v0 = system.initial_volumes if initial_volumes is None else initial_volumes
    v0 = _check_vector("initial_volumes", v0, len(system.hydros))
    penalty = system.target_penalty if target_penalty is None else float(target_penalty)
    single = _use_single_bus(system, single_bus)

    model = _Model()
    stages: list[_StageVars] = []
    target_rows: list[list[int]] = []
    for t in range(system.num_stages):
        previous = stages[-1].volumes if stages else None
        stage = _add_stage(model, system, t, inflows[t], v0, previous, single)
        stages.append(stage)
        rows = []
        for r, volume in enumerate(stage.volumes):
            above = model.var(penalty, 0.0, highspy.kHighsInf)
            below = model.var(penalty, 0.0, highspy.kHighsInf)
            rows.append(model.row({volume: 1.0, above: -1.0, below: 1.0}, float(targets[t, r]), float(targets[t, r])))
        target_rows.append(rows)
    objective, x, row_dual = model.solve(f"target horizon (stages 0-{system.num_stages - 1})")

    thermal = np.array([x[s.thermal] for s in stages])
    deficit = np.array([x[s.deficit] for s in stages])
    turbined = np.array([x[s.turbined] for s in stages])
    volumes = np.array([x[s.volumes] for s in stages])
    stage_costs = _operating_cost(system, thermal, deficit)
    factors = np.array([h.production_factor for h in system.hydros])
    return TargetHorizonSolution(
        objective=objective,
        stage_costs=stage_costs,
        volumes=volumes,
        turbined=turbined,
        spilled=np.array([x[s.spilled] for s in stages]),
        hydro_generation=turbined * factors,
        thermal_generation=thermal,
        deficit=deficit,
        line_flows=np.array([x[s.flows] for s in stages]),
        operating_cost=float(stage_costs.sum()),
        penalty_cost=objective - float(stage_costs.sum()),
        target_slack=volumes - targets,
        target_duals=np.array([row_dual[rows] for rows in target_rows]).reshape(shape),
    )
