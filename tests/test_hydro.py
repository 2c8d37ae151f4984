"""Tests of the hydrothermal dispatch data (envs.hydro.system) and its LPs (envs.hydro.lp)."""

import copy
import json

import numpy as np
import pytest

from envs.hydro import (
    HydroLPError,
    SystemDataError,
    load_system,
    solve_perfect_foresight,
    solve_stage,
    system_from_dict,
    toy_case_path,
)


@pytest.fixture(scope="module")
def toy():
    return load_system(toy_case_path())


@pytest.fixture()
def toy_dict():
    return json.loads(toy_case_path().read_text())


def tiny_dict(inflow_scenarios, initial_volume=5.0):
    """2 stages, 1 bus: cheap thermal 6 MW at 10, expensive 3 MW at 50, deficit 100, demand 10 then 12,
    one reservoir (holding 5 by default) with production factor 1."""
    return {
        "name": "tiny",
        "num_stages": 2,
        "network": "single_bus",
        "deficit_cost": 100.0,
        "buses": ["B"],
        "thermals": [
            {"name": "cheap", "bus": "B", "capacity": 6.0, "cost": 10.0},
            {"name": "dear", "bus": "B", "capacity": 3.0, "cost": 50.0},
        ],
        "hydros": [
            {
                "name": "H",
                "bus": "B",
                "min_volume": 0.0,
                "max_volume": 100.0,
                "initial_volume": initial_volume,
                "max_turbine": 20.0,
                "production_factor": 1.0,
            }
        ],
        "demand": {"B": [10.0, 12.0]},
        "inflows": {"H": inflow_scenarios},
    }


# ------------------------------------------------------------------------------------------------ data


def test_toy_case_loads(toy):
    assert toy.num_stages == 12
    assert toy.buses == ("B1", "B2", "B3")
    assert len(toy.lines) == 3 and len(toy.hydros) == 1 and len(toy.thermals) == 2
    assert toy.demand.shape == (12, 3)
    assert toy.inflows.shape == (20, 12, 1)
    assert toy.network == "dc"
    assert np.all(toy.inflows >= 0)
    assert toy.initial_volumes.tolist() == [150.0]


def _set(data, path, value):
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("thermals", 0, "capacity"), -5.0, "thermals[0].capacity: must be >= 0"),
        (("lines", 1, "capacity"), -1.0, "lines[1].capacity: must be >= 0"),
        (("lines", 0, "reactance"), 0.0, "lines[0].reactance: must be > 0"),
        (("lines", 0, "to"), "B9", "lines[0].to: unknown bus 'B9'"),
        (("hydros", 0, "downstream"), "H9", "hydros[0].downstream: unknown plant 'H9'"),
        (("hydros", 0, "initial_volume"), 500.0, "hydros[0].initial_volume: 500.0 outside"),
        (("hydros", 0, "max_volume"), _DELETE, "hydros[0].max_volume: missing"),
        (("demand", "B3"), [80.0] * 11, "demand.B3: expected 12 values (one per stage), got 11"),
        (("demand", "B7"), [80.0] * 12, "demand.B7: unknown bus"),
        (("inflows", "H1", 3), [10.0] * 13, "inflows.H1[3]: expected 12 values"),
        (("deficit_cost",), "high", "deficit_cost: expected a finite number"),
        (("network",), "ac", "network: must be one of"),
        (("num_stages",), 0, "num_stages: expected an integer >= 1"),
    ],
)
def test_bad_data_is_refused_naming_the_field(toy_dict, path, value, message):
    _set(toy_dict, path, value)
    with pytest.raises(SystemDataError) as info:
        system_from_dict(toy_dict)
    assert message in str(info.value)


def test_cascade_cycle_is_refused(toy_dict):
    second = copy.deepcopy(toy_dict["hydros"][0])
    second.update(name="H2", downstream="H1")
    toy_dict["hydros"][0]["downstream"] = "H2"
    toy_dict["hydros"].append(second)
    toy_dict["inflows"]["H2"] = toy_dict["inflows"]["H1"]
    with pytest.raises(SystemDataError, match=r"hydros\[0\]\.downstream: cascade cycle H1 -> H2 -> H1"):
        system_from_dict(toy_dict)


def test_disconnected_network_is_refused_unless_single_bus(toy_dict):
    toy_dict["lines"] = [line for line in toy_dict["lines"] if "B2" not in (line["from"], line["to"])]
    with pytest.raises(SystemDataError, match=r"lines: buses \['B2'\] are not connected"):
        system_from_dict(toy_dict)
    toy_dict["network"] = "single_bus"
    assert system_from_dict(toy_dict).network == "single_bus"


def test_load_system_reads_a_file_and_refuses_bad_json(tmp_path, toy_dict):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(tiny_dict([[0.0, 2.0]])))
    assert load_system(good).name == "tiny"
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SystemDataError, match="not valid JSON"):
        load_system(bad)


# ---------------------------------------------------------------------------------------------- stage LP


def _cascade_dict(toy_dict):
    """The toy case plus an upstream plant H0 at bus B1 whose water flows into H1."""
    upstream = copy.deepcopy(toy_dict["hydros"][0])
    upstream.update(
        name="H0",
        bus="B1",
        downstream="H1",
        max_volume=100.0,
        initial_volume=50.0,
        max_turbine=20.0,
        production_factor=0.8,
        max_spill=30.0,
    )
    toy_dict["hydros"].insert(0, upstream)
    toy_dict["inflows"]["H0"] = [[0.5 * v for v in s] for s in toy_dict["inflows"]["H1"]]
    return toy_dict


@pytest.mark.parametrize("network", ["dc", "single_bus"])
def test_stage_solution_satisfies_water_and_bus_balance(toy_dict, network):
    system = system_from_dict(_cascade_dict(toy_dict))
    stage = 6
    v_in = np.array([60.0, 120.0])
    inflow = system.inflows[3, stage]
    target = np.array([40.0, 95.0])
    sol = solve_stage(system, stage, volumes_in=v_in, inflow=inflow, target=target, single_bus=network == "single_bus")

    # Water balance with the cascade: H1 receives H0's turbined and spilled water.
    upstream_release = np.array([0.0, sol.turbined[0] + sol.spilled[0]])
    np.testing.assert_allclose(sol.volumes, v_in + inflow + upstream_release - sol.turbined - sol.spilled, atol=1e-6)
    np.testing.assert_allclose(sol.hydro_generation, [0.8 * sol.turbined[0], 1.0 * sol.turbined[1]], atol=1e-9)
    assert np.all(sol.turbined <= [20.0 + 1e-9, 60.0 + 1e-9]) and np.all(sol.spilled >= -1e-9)
    assert sol.spilled[0] <= 30.0 + 1e-9

    demand = system.demand[stage]
    if network == "single_bus":
        supplied = sol.thermal_generation.sum() + sol.hydro_generation.sum() + sol.deficit.sum()
        assert supplied == pytest.approx(demand.sum(), abs=1e-6)
    else:
        injection = np.zeros(3)
        for unit, p in zip(system.thermals, sol.thermal_generation):
            injection[system.bus_index(unit.bus)] += p
        for plant, g in zip(system.hydros, sol.hydro_generation):
            injection[system.bus_index(plant.bus)] += g
        injection += sol.deficit - demand
        net_out = np.zeros(3)
        for line, f in zip(system.lines, sol.line_flows):
            net_out[system.bus_index(line.from_bus)] += f
            net_out[system.bus_index(line.to_bus)] -= f
            # DC flow law and limit.
            theta = sol.angles[system.bus_index(line.from_bus)] - sol.angles[system.bus_index(line.to_bus)]
            assert f == pytest.approx(theta / line.reactance, abs=1e-6)
            assert abs(f) <= line.capacity + 1e-6
        np.testing.assert_allclose(injection, net_out, atol=1e-6)
    costs = [u.cost for u in system.thermals]
    expected = np.dot(costs, sol.thermal_generation) + system.deficit_cost * sol.deficit.sum()
    assert sol.operating_cost == pytest.approx(expected)
    penalty = system.target_penalty * np.abs(sol.target_slack).sum()
    assert sol.objective == pytest.approx(expected + penalty, rel=1e-9, abs=1e-6)


def _stage_objective(system, target, **kwargs):
    return solve_stage(system, kwargs.pop("stage", 5), target=np.array([target]), **kwargs).objective


@pytest.mark.parametrize(
    ("v_in", "target", "expected_dual"),
    [
        # Reachable target with T2 (cost 150) at the margin: holding one more hm3 costs 150.
        (100.0, 80.0, 150.0),
        # Target above what inflow can bring (v_in + inflow < target): the slack pays the penalty downwards.
        (10.0, 200.0, 5000.0),
        # Target below what max turbining alone reaches: the rest is spilled for free, the target is met.
        (300.0, 250.0, 0.0),
    ],
)
def test_target_dual_matches_finite_difference(toy, v_in, target, expected_dual):
    kwargs = {"volumes_in": np.array([v_in]), "inflow": toy.inflows[0, 5]}
    sol = solve_stage(toy, 5, target=np.array([target]), **kwargs)
    step = 1e-3
    forward = (_stage_objective(toy, target + step, **kwargs) - sol.objective) / step
    backward = (sol.objective - _stage_objective(toy, target - step, **kwargs)) / step
    assert forward == pytest.approx(backward, abs=1e-4)  # not at a kink, so the derivative is defined
    assert sol.target_duals[0] == pytest.approx(forward, rel=1e-6, abs=1e-6)
    assert sol.target_duals[0] == pytest.approx(expected_dual, abs=1e-6)


def test_target_duals_match_finite_differences_in_a_cascade(toy_dict):
    system = system_from_dict(_cascade_dict(toy_dict))
    kwargs = {"volumes_in": np.array([60.0, 120.0]), "inflow": system.inflows[3, 6]}
    target = np.array([55.0, 140.0])  # holds water back: deficit at B3, congested line L32
    sol = solve_stage(system, 6, target=target, **kwargs)
    step = 1e-3
    for r in range(2):
        bumped = target.copy()
        bumped[r] += step
        fd = (solve_stage(system, 6, target=bumped, **kwargs).objective - sol.objective) / step
        assert sol.target_duals[r] == pytest.approx(fd, rel=1e-5, abs=1e-5)
    assert np.any(np.abs(sol.target_duals) > 1.0)  # the check is not vacuous


def test_stage_infeasibility_names_the_stage(toy_dict):
    toy_dict["hydros"][0]["min_volume"] = 100.0
    system = system_from_dict(toy_dict)
    with pytest.raises(HydroLPError, match="stage 7: no optimal solution"):
        solve_stage(system, 7, volumes_in=np.array([90.0]), inflow=np.array([5.0]), target=np.array([100.0]))
    with pytest.raises(HydroLPError, match="stage 2: plant 'H1' cannot reach min_volume"):
        inflows = np.full((12, 1), 10.0)
        inflows[2] = -200.0  # e.g. evaporation beyond what the reservoir holds
        solve_perfect_foresight(system, inflows=inflows)


# ------------------------------------------------------------------------------------- perfect foresight


@pytest.mark.parametrize(
    ("inflows", "initial_volume", "expected"),
    [
        # 7 units of water (5 stored + 2 arriving in stage 2) cover 7 of the 10 MW above the cheap units'
        # 6 + 6; the 3 left go to the dear unit: 12 * 10 + 3 * 50 = 270.
        ([0.0, 2.0], 5.0, 270.0),
        # 5 units of water: 5 MW from the dear unit (within its 3 MW per stage): 12 * 10 + 5 * 50 = 370.
        ([0.0, 0.0], 5.0, 370.0),
        # 1 unit of water covers 1 of the 10; the dear unit is capped at 3 + 3, leaving a 3 MW deficit:
        # 120 + 6 * 50 + 3 * 100 = 720.
        ([0.0, 0.0], 1.0, 720.0),
    ],
)
def test_perfect_foresight_cost_on_a_hand_checked_instance(inflows, initial_volume, expected):
    system = system_from_dict(tiny_dict([inflows], initial_volume))
    sol = solve_perfect_foresight(system, inflows=np.array(inflows)[:, None])
    assert sol.objective == pytest.approx(expected)
    assert sol.stage_costs.sum() == pytest.approx(expected)


def test_perfect_foresight_is_a_lower_bound_on_fixed_target_policies(toy):
    scenario = 4
    bound = solve_perfect_foresight(toy, scenario=scenario)
    policy_costs = []
    for fraction in (0.0, 0.3, 0.6, 1.0):
        volumes = toy.initial_volumes
        operating = penalised = 0.0
        for t in range(toy.num_stages):
            target = np.array([fraction * h.max_volume for h in toy.hydros])
            sol = solve_stage(toy, t, volumes_in=volumes, inflow=toy.inflows[scenario, t], target=target)
            operating += sol.operating_cost
            penalised += sol.objective
            volumes = sol.volumes
        policy_costs.append(operating)
        assert bound.objective <= operating + 1e-6
        assert operating <= penalised + 1e-6
    assert min(policy_costs) > bound.objective + 1.0  # fixed targets are strictly worse here: not vacuous
    np.testing.assert_allclose(
        bound.volumes[1:],
        bound.volumes[:-1] + toy.inflows[scenario, 1:] - bound.turbined[1:] - bound.spilled[1:],
        atol=1e-6,
    )


# ------------------------------------------------------------------ TS-DDR / SDDP LPs and case names


def test_target_horizon_satisfies_the_water_balance(toy):
    from envs.hydro import solve_horizon_with_targets

    inflows = toy.inflows[4]
    targets = np.linspace(120.0, 220.0, toy.num_stages)[:, None]
    sol = solve_horizon_with_targets(toy, inflows=inflows, targets=targets)
    previous = np.vstack([toy.initial_volumes[None], sol.volumes[:-1]])
    assert np.allclose(sol.volumes, previous + inflows - sol.turbined - sol.spilled, atol=1e-6)
    assert np.allclose(sol.target_slack, sol.volumes - targets)
    total = sol.thermal_generation.sum(axis=1) + sol.hydro_generation.sum(axis=1) + sol.deficit.sum(axis=1)
    assert np.allclose(total, toy.demand.sum(axis=1), atol=1e-6)
    assert sol.objective == pytest.approx(sol.operating_cost + sol.penalty_cost)


def test_target_horizon_on_perfect_foresight_volumes_costs_the_perfect_foresight_optimum(toy):
    from envs.hydro import solve_horizon_with_targets

    pf = solve_perfect_foresight(toy, scenario=3)
    sol = solve_horizon_with_targets(toy, inflows=toy.inflows[3], targets=pf.volumes)
    assert sol.objective == pytest.approx(pf.objective)
    assert sol.penalty_cost == pytest.approx(0.0, abs=1e-6)


def test_stage_with_cuts_prices_the_future_and_returns_water_values(toy):
    from envs.hydro import solve_stage_with_cuts

    kwargs = dict(inflow=toy.inflows[0, 5], cut_intercepts=[30000.0, 20000.0], cut_slopes=[[-100.0], [-40.0]])
    sol = solve_stage_with_cuts(toy, 5, volumes_in=np.array([200.0]), **kwargs)
    v = sol.volumes[0]
    assert sol.future_cost == pytest.approx(max(30000.0 - 100.0 * v, 20000.0 - 40.0 * v, 0.0), abs=1e-6)
    up = solve_stage_with_cuts(toy, 5, volumes_in=np.array([200.5]), **kwargs).objective
    down = solve_stage_with_cuts(toy, 5, volumes_in=np.array([199.5]), **kwargs).objective
    assert sol.water_value[0] == pytest.approx((up - down) / 1.0, rel=1e-6)
    last = solve_stage_with_cuts(toy, 11, volumes_in=np.array([200.0]), inflow=toy.inflows[0, 11])
    assert last.future_cost == 0.0 and last.objective == pytest.approx(last.operating_cost)


def test_case_path_resolves_names_and_files_and_suggests_close_names(tmp_path):
    from envs.hydro import UnknownCaseError, case_path

    assert case_path("toy") == toy_case_path()
    copy_path = tmp_path / "mine.json"
    copy_path.write_text(toy_case_path().read_text())
    assert case_path(str(copy_path)) == copy_path
    with pytest.raises(UnknownCaseError, match="did you mean 'toy'"):
        case_path("tyo")
