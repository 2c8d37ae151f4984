"""Tests of the SDDP baseline (algos.sddp): bounds, stopping rules, snapshots, policy vs perfect foresight,
save/load, CLI errors."""

from types import SimpleNamespace

import numpy as np
import pytest

from algos.hydro_common import HydroConfigError, perfect_foresight_costs
from algos.sddp import (
    ITERATION_LIMIT,
    SDDP,
    SDDPConfigError,
    StallRule,
    StatisticalRule,
    main,
    make_stopping_rule,
    statistical_test,
)
from envs.hydro import load_system, system_from_dict, toy_case_path


@pytest.fixture(scope="module")
def toy():
    return load_system(toy_case_path())


@pytest.fixture(scope="module")
def trained(toy):
    model = SDDP(toy, seed=0, case="toy")
    model.train(8, stopping=None, progress=False)
    return model


def test_lower_bound_is_non_decreasing(trained):
    bounds = [row["lower_bound"] for row in trained.history]
    assert all(b >= a - 1e-6 * abs(a) for a, b in zip(bounds, bounds[1:]))
    assert bounds[-1] > bounds[0]


def test_lower_bound_is_below_the_simulated_policy_cost(trained):
    costs = trained.simulate(40, seed=5)
    noise = 2.0 * costs.std(ddof=1) / np.sqrt(len(costs))
    assert trained.history[-1]["lower_bound"] <= costs.mean() + noise


def test_policy_costs_at_least_perfect_foresight_scenario_by_scenario(trained):
    scenarios = np.arange(trained.system.num_scenarios)
    evaluation = trained.evaluate(scenarios)
    policy = np.array(evaluation["costs"])
    assert np.all(policy >= perfect_foresight_costs(trained.system, scenarios) - 1e-6)
    assert evaluation["violation_share"] is None  # the cut policy sets end volumes, not targets


def test_save_load_round_trip(trained, tmp_path):
    loaded = SDDP.load(trained.save(tmp_path / "cuts.json"))
    assert loaded.evaluate([15, 16])["costs"] == trained.evaluate([15, 16])["costs"]
    assert loaded.lower_bound() == pytest.approx(trained.lower_bound())
    assert loaded.stopped_by == trained.stopped_by == ITERATION_LIMIT


# ------------------------------------------------------------------------------------------- stopping rules


def test_statistical_test_compares_the_bound_with_the_interval_s_lower_end():
    costs = np.array([90.0, 110.0] * 50)  # mean 100, sample std 10.05, K = 100
    half = 1.96 * costs.std(ddof=1) / 10.0
    assert statistical_test(100.0 - half - 1e-6, costs).converged is False
    estimate = statistical_test(100.0 - half + 1e-6, costs)
    assert estimate.converged is True
    assert estimate.mean == pytest.approx(100.0) and estimate.half_width == pytest.approx(half)
    assert estimate.replications == 100
    assert statistical_test(100.0 - 2 * half, costs, z=4.0).converged is True  # a wider interval accepts it
    with pytest.raises(SDDPConfigError, match="needs >= 2 simulated costs"):
        statistical_test(1.0, [5.0])


class _ScriptedModel(SimpleNamespace):
    """A stand-in SDDP whose lower bounds follow a hand-made sequence and whose simulated costs are fixed."""

    def simulate(self, count, seed):
        self.simulate_calls.append(seed)
        return np.array([90.0, 110.0] * (count // 2))


@pytest.mark.parametrize(("check_every", "expected_stop"), [(1, 4), (2, 4), (3, 6)])
def test_statistical_rule_stops_at_the_first_check_with_the_bound_in_the_interval(check_every, expected_stop):
    """Bounds 60, 80, 95 (below the interval's lower end 100 - 1.97) then 98.5, 99, ... (inside): the rule stops
    at the first test from iteration 4 on, and tests only every ``check_every`` iterations."""
    rule = StatisticalRule(replications=100, check_every=check_every)
    model = _ScriptedModel(history=[], seed=7, simulate_calls=[])
    stopped_at = None
    for iteration, bound in enumerate([60.0, 80.0, 95.0, 98.5, 99.0, 99.5, 99.8], start=1):
        model.history.append({"lower_bound": bound})
        decision = rule.check(model)
        if iteration % check_every:
            assert decision.record == {} and not decision.stop
        else:
            assert decision.record["upper_bound_mean"] == pytest.approx(100.0)
        if decision.stop:
            stopped_at = iteration
            break
    assert stopped_at == expected_stop
    assert [seed[2] for seed in model.simulate_calls] == list(range(check_every, expected_stop + 1, check_every))
    assert all(seed[:2] == (7, 1) for seed in model.simulate_calls)  # a stream of its own, not the forward passes'


def test_statistical_rule_stops_sddp_on_the_toy_case_when_the_bound_enters_the_interval(toy):
    model = SDDP(toy, seed=1)
    model.train(200, stopping=StatisticalRule(replications=50, check_every=2), progress=False)
    assert model.stopped_by == "statistical" and len(model.history) < 200
    checked = [row for row in model.history if "upper_bound_mean" in row]
    assert [row["iteration"] for row in checked] == list(range(2, len(model.history) + 1, 2))
    last = checked[-1]
    assert last["lower_bound"] >= last["upper_bound_mean"] - last["upper_bound_half_width"]
    assert all(row["lower_bound"] < row["upper_bound_mean"] - row["upper_bound_half_width"] for row in checked[:-1])


def test_the_statistical_tests_do_not_change_the_cuts(toy):
    """The tests simulate from their own random stream: the cuts after k iterations are the same with or without
    them, so a run stopped by the rule is the fixed-budget run of the same length."""
    tested = SDDP(toy, seed=3)
    tested.train(6, stopping=StatisticalRule(replications=4, z=1e-9, check_every=1), progress=False)
    plain = SDDP(toy, seed=3)
    plain.train(len(tested.history), stopping=None, progress=False)
    assert tested.cuts.intercepts == plain.cuts.intercepts and tested.cuts.slopes == plain.cuts.slopes


def test_stall_rule_is_still_available(toy):
    model = SDDP(toy, seed=0)
    model.train(50, stopping=StallRule(iterations=2, tolerance=1.0), progress=False)
    assert model.stopped_by == "stall" and len(model.history) == 3  # any improvement below 100 % stalls
    assert make_stopping_rule("stall", stall_iterations=4) == StallRule(iterations=4)
    assert make_stopping_rule("none") is None
    with pytest.raises(SDDPConfigError, match="stopping: must be one of"):
        make_stopping_rule("never")
    with pytest.raises(SDDPConfigError, match="replications: must be an integer >= 2"):
        StatisticalRule(replications=1)


def test_seeds_reach_the_forward_pass_sampler(toy):
    bounds = []
    for seed in (0, 1):
        model = SDDP(toy, seed=seed)
        model.train(3, stopping=None, progress=False)
        bounds.append([row["lower_bound"] for row in model.history])
    assert bounds[0] != bounds[1]


def test_snapshot_is_the_policy_of_the_shorter_run(toy):
    long = SDDP(toy, seed=2, forward_passes=2)
    long.train(5, stopping=None, progress=False)
    short = SDDP(toy, seed=2, forward_passes=2)
    short.train(2, stopping=None, progress=False)
    snapshot = long.snapshot(2)
    assert snapshot.cuts.intercepts == short.cuts.intercepts and snapshot.cuts.slopes == short.cuts.slopes
    def without_time(history):
        return [{k: v for k, v in row.items() if k != "seconds"} for row in history]

    assert without_time(snapshot.history) == without_time(short.history)
    assert snapshot.evaluate([15, 19])["costs"] == short.evaluate([15, 19])["costs"]
    assert len(long.cuts.intercepts[0]) == 10  # the original keeps all its cuts
    for bad in (0, 6, True):
        with pytest.raises(SDDPConfigError, match=r"a snapshot needs 1\.\.5"):
            long.snapshot(bad)


def test_cli_refuses_an_unknown_case(capsys, tmp_path):
    assert main(["--case", "toyy", "--iterations", "1", "-f", str(tmp_path), "--no-progress"]) == 2
    assert "did you mean 'toy'" in capsys.readouterr().err


def test_bad_settings_raise_sddps_own_error(trained, tmp_path):
    """SDDP's settings raise SDDPConfigError (a HydroConfigError), never TS-DDR's error, and say what they count."""
    with pytest.raises(SDDPConfigError, match=r"forward_passes: must be an integer >= 1 \(sampled scenarios per SDDP"):
        SDDP(trained.system, forward_passes=0)
    with pytest.raises(SDDPConfigError, match="iterations: must be an integer >= 1"):
        SDDP(trained.system).train(0, progress=False)
    assert issubclass(SDDPConfigError, HydroConfigError)
    three_stages = system_from_dict({
        "num_stages": 3, "network": "single_bus", "deficit_cost": 10.0, "buses": ["B"], "thermals": [],
        "demand": {"B": [1.0, 1.0, 1.0]}, "inflows": {"H": [[1.0, 1.0, 1.0]] * 4},
        "hydros": [{"name": "H", "bus": "B", "min_volume": 0, "max_volume": 10, "initial_volume": 5,
                    "max_turbine": 5, "production_factor": 1}]})
    with pytest.raises(SDDPConfigError, match="SDDP cuts for 12 stages, the system has 3"):
        SDDP.load(trained.save(tmp_path / "cuts.json"), three_stages)


@pytest.mark.parametrize(("argv", "expected"), [
    (["--forward-passes", "0"], "forward_passes: must be an integer >= 1"),
    (["--iterations", "0"], "iterations: must be an integer >= 1"),
    (["--replications", "1"], "replications: must be an integer >= 2"),
    (["--check-every", "0"], "check_every: must be an integer >= 1"),
], ids=["no forward passes", "no iterations", "one replication", "no test period"])
def test_cli_bad_settings_are_one_line_exit_2_and_no_run_folder(argv, expected, capsys, tmp_path):
    assert main([*argv, "-f", str(tmp_path / "logs"), "--no-progress"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0]
    assert not (tmp_path / "logs").exists()
