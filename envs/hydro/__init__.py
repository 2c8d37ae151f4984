"""Long-term hydrothermal dispatch: the system as data, and its stage and perfect-foresight LPs (HiGHS).

The problem of TS-DDR (Rosemberg, Street, Valladao, Van Hentenryck, 2024, "Two-Stage Deep Decision Rules"):
reservoirs in cascades, inflow scenarios, hydro production factors, thermal units with linear costs, a
deficit cost for unserved demand, and a DC network (or a single bus). Each stage is an LP in which the end
volumes are asked to meet a target through a slack-penalised constraint; the dual of that constraint is the
derivative of the stage cost with respect to the target (see ``envs.hydro.lp``).

Public API::

    from envs.hydro import case_path, load_system, solve_stage, solve_perfect_foresight
    system = load_system(case_path("toy"))      # or any cases/<name>.json, or a file path (envs.hydro.system)
    stage = solve_stage(system, 0, volumes_in=system.initial_volumes, inflow=system.inflows[0, 0],
                        target=[140.0])
    stage.target_duals        # d(stage objective) / d(target)
    solve_perfect_foresight(system, scenario=0).objective   # lower bound on scenario 0

Units: all water quantities (volumes, inflows, turbined and spilled water) are volumes per stage (the toy case
uses hm3); power is MW averaged over the stage; costs are per MW sustained over one stage. Hydro generation is
``production_factor * turbined`` MW. Unlike HydroPowerModels (the authors' data), there is no flow-to-volume
factor: convert flows to volumes per stage before writing the file.

File format (JSON; ``envs/hydro/cases/toy.json`` is an example to copy)::

    {
      "name": "my-system",                 # optional; any other unknown key (e.g. "description") is ignored
      "num_stages": 12,                    # T, integer >= 1
      "network": "dc",                     # "dc" (default) or "single_bus" (lines ignored)
      "deficit_cost": 1000.0,              # cost per MW of unserved demand, any bus, >= 0
      "target_penalty": 5000.0,            # optional; cost per unit of target slack
                                           #   (default 10 * deficit_cost * max(1, max production factor))
      "buses": ["B1", "B2", "B3"],         # bus names; the first is the angle reference
      "lines": [                           # optional with "single_bus"; the DC network must be connected
        {"name": "L13", "from": "B1", "to": "B3", "reactance": 1.0, "capacity": 50.0}
      ],                                   # flow = (angle_from - angle_to) / reactance, |flow| <= capacity
      "thermals": [
        {"name": "T1", "bus": "B1", "capacity": 40.0, "cost": 50.0}
      ],
      "hydros": [
        {"name": "H1", "bus": "B3", "min_volume": 0.0, "max_volume": 400.0, "initial_volume": 150.0,
         "max_turbine": 60.0,              # water per stage
         "production_factor": 1.0,         # MW per unit of water turbined in a stage
         "downstream": null,               # name of the plant receiving H1's turbined + spilled water, or null
         "max_spill": null}                # water per stage, null = unbounded
      ],
      "demand": {"B3": [70, 70, ...]},     # MW per stage (T values) for each bus with demand; others 0
      "inflows": {"H1": [[...T values...], [...], ...]}   # per plant: the same number of scenarios, T each
    }

Every problem found while loading raises :class:`SystemDataError` naming the field
(e.g. ``hydros[0].downstream: unknown plant 'H9'``, ``demand.B3: expected 12 values (one per stage), got 11``).
"""

from envs.hydro.cut_lp import CutStageSolution, StageCutLP, solve_stage_with_cuts
from envs.hydro.lp import (
    HorizonSolution,
    HydroLPError,
    StageSolution,
    TargetHorizonSolution,
    solve_horizon_with_targets,
    solve_perfect_foresight,
    solve_stage,
)
from envs.hydro.system import (
    CASES_DIR,
    VIOLATION_TOLERANCE,
    HydroPlant,
    HydroSystem,
    Line,
    SystemDataError,
    ThermalUnit,
    UnknownCaseError,
    case_names,
    case_path,
    load_system,
    system_from_dict,
    toy_case_path,
)

__all__ = [
    "CASES_DIR",
    "CutStageSolution",
    "StageCutLP",
    "TargetHorizonSolution",
    "UnknownCaseError",
    "case_names",
    "case_path",
    "solve_horizon_with_targets",
    "solve_stage_with_cuts",
    "HorizonSolution",
    "HydroLPError",
    "HydroPlant",
    "HydroSystem",
    "Line",
    "StageSolution",
    "SystemDataError",
    "ThermalUnit",
    "load_system",
    "solve_perfect_foresight",
    "solve_stage",
    "system_from_dict",
    "toy_case_path",
    "VIOLATION_TOLERANCE",
]
