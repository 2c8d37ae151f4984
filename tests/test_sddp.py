"""Tests of the SDDP baseline (algos.sddp): bounds, stopping rules, snapshots, policy vs perfect foresight,
save/load, CLI errors, one iteration by hand.

Mutation testing (mutmut 3.8.1) of algos/sddp.py: 771 mutants; the 311 of the code that makes the cuts, the bound
and the stopping decisions were run (CutPool, forward and backward passes, lower bound, the statistical test and
both rules, ``train``, ``simulate``): 70 survived before the hand computations below, 6 after. None changes a value:

- ``reshape(-2, ...)`` for ``reshape(-1, ...)`` (2, ``CutPool.arrays`` and ``statistical_test``): numpy reads any
  negative size as "infer".
- ``statistical_test``: ``reshape(None)`` and ``dtype=None`` or no dtype (3): mean and std flatten the array and
  return floats whatever its shape or number type.
- ``tqdm(..., unit="it")`` left out (1): "it" is tqdm's default unit.

Second pass, after the kept stage LPs and the per-iteration checkpoint (803 mutants now): ``save``, ``load``,
``train``, ``_stage_lp``, ``_solve``, ``_solve_batch``, the backward pass and the lower bound, 233 run: 16 survived,
2 after: the tqdm unit above, and ``stop = None`` for ``stop = False`` (both falsy).

Not run yet: ``snapshot``, ``evaluate``, ``simulate``, ``train_run``, ``main`` and the stopping flags, which the
tests of snapshots, the CLI and its errors cover.
"""

import json
import re
import time
from types import SimpleNamespace

import numpy as np
import pytest

from algos.hydro_common import HydroConfigError, perfect_foresight_costs, sample_stagewise
from algos.sddp import (
    ITERATION_LIMIT,
    SDDP,
    SDDPConfigError,
    StallRule,
    StatisticalRule,
    StopCheck,
    main,
    make_stopping_rule,
    statistical_test,
)
from envs.hydro import load_system, system_from_dict, toy_case_path
from envs.hydro.cut_lp import solve_stage_with_cuts


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


# ------------------------------------------------------------------------ one iteration by hand (stage LPs)


def _stage(system, stage, volumes, inflow, intercepts, slopes):
    """The stage LP with the given cuts, solved directly (not through SDDP)."""
    return solve_stage_with_cuts(system, stage, volumes_in=volumes, inflow=inflow,
                                 cut_intercepts=np.array(intercepts),
                                 cut_slopes=np.array(slopes).reshape(-1, len(system.hydros)))


def test_one_forward_and_backward_pass_by_hand(toy):
    """Forward: stage by stage from the initial volumes, costs summed from 0. Backward: from the last stage down, one
    cut per stage t-1 at the trial point trial[t-1], the mean of stage t's objective and water value over stage t's
    realisations (with the cuts stage t holds by then); the last stage gets none. Lower bound: stage 0's mean
    objective over stage 0's realisations from the initial volumes."""
    model = SDDP(toy, seed=0)
    num_stages, hydros = toy.num_stages, len(toy.hydros)
    path = model.support[1]  # one training scenario's inflows, stage by stage
    trial, cost = model.forward_pass(path)
    volumes, expected_cost = toy.initial_volumes, 0.0
    for t in range(num_stages):  # no cuts yet: theta is absent
        solution = _stage(toy, t, volumes, path[t], [], [])
        np.testing.assert_allclose(trial[t], solution.volumes)
        volumes, expected_cost = solution.volumes, expected_cost + solution.operating_cost
    assert cost == pytest.approx(expected_cost, rel=1e-12) and len(trial) == num_stages

    # A trial that swings between a dry and a full reservoir, so that each stage's cut depends on its own point
    # (along the forward path neighbouring points can lie on one linear piece of the value function).
    trial = [np.array([380.0 if t % 2 else 20.0]) * np.ones(len(toy.hydros)) for t in range(num_stages)]
    model.backward_pass(trial)
    intercepts = [[] for _ in range(num_stages)]
    slopes = [[] for _ in range(num_stages)]
    for t in reversed(range(1, num_stages)):
        solutions = [_stage(toy, t, trial[t - 1], inflow, intercepts[t], slopes[t]) for inflow in model.support[:, t]]
        value = np.mean([s.objective for s in solutions])
        slope = np.mean([s.water_value for s in solutions], axis=0)
        intercepts[t - 1].append(value - slope @ trial[t - 1])
        slopes[t - 1].append(list(slope))
    assert model.cuts.intercepts[num_stages - 1] == [] and model.cuts.slopes[num_stages - 1] == []
    for t in range(num_stages - 1):
        assert len(model.cuts.intercepts[t]) == 1
        assert model.cuts.intercepts[t][0] == pytest.approx(intercepts[t][0], rel=1e-9)
        np.testing.assert_allclose(model.cuts.slopes[t][0], slopes[t][0], rtol=1e-9)
        assert all(type(b) is float for b in model.cuts.slopes[t][0])
    alphas, betas = model.cuts.arrays(0, hydros)
    assert alphas.shape == (1,) and betas.shape == (1, hydros)

    stage0 = [_stage(toy, 0, toy.initial_volumes, inflow, intercepts[0], slopes[0]) for inflow in model.support[:, 0]]
    assert model.lower_bound() == pytest.approx(np.mean([s.objective for s in stage0]), rel=1e-12)
    assert model.lower_bound() > np.mean([s.operating_cost for s in stage0])  # the cut adds a future cost


# --------------------------------------------------------------------- stopping rules: settings and edges


def test_statistical_test_edges_and_messages():
    assert statistical_test(0.0, [1.0, 3.0]).replications == 2  # two costs are enough for a sample std
    assert statistical_test(0.0, [1.0, 3.0]).half_width == pytest.approx(1.96 * np.sqrt(2.0) / np.sqrt(2.0))
    with pytest.raises(SDDPConfigError, match=r"^z: must be > 0 \(1\.96 for a 95 % interval\), got 0\.0$"):
        statistical_test(1.0, [1.0, 2.0], z=0.0)
    assert statistical_test(1.0, [1.0, 2.0]).record() == {
        "upper_bound_mean": 1.5, "upper_bound_half_width": pytest.approx(1.96 * np.sqrt(0.5) / np.sqrt(2.0)),
        "upper_bound_replications": 2}


def test_statistical_rule_settings_are_checked():
    assert StatisticalRule(replications=2).replications == 2
    for bad in (1, 2.5, True):
        with pytest.raises(SDDPConfigError, match=rf"^replications: must be an integer >= 2 \(simulated scenarios per "
                                                  rf"statistical test\), got {bad!r}$"):
            StatisticalRule(replications=bad)
    with pytest.raises(SDDPConfigError, match=r"^z: must be > 0 \(1\.96 for a 95 % interval\), got 0$"):
        StatisticalRule(z=0)
    with pytest.raises(SDDPConfigError, match=r"^check_every: must be an integer >= 1 \(iterations between two "
                                              r"statistical tests\), got 0$"):
        StatisticalRule(check_every=0)


def test_statistical_rule_uses_its_own_z_and_says_no_between_checks():
    model = _ScriptedModel(history=[{"lower_bound": 50.0}] * 3, seed=0, simulate_calls=[])
    wide, narrow = StatisticalRule(replications=10, z=3.0), StatisticalRule(replications=10, z=1.0)
    assert wide.estimate(model).half_width == pytest.approx(3 * narrow.estimate(model).half_width)
    assert StatisticalRule(check_every=2).check(model) == StopCheck(False)  # iteration 3: no test, a plain "no"


@pytest.mark.parametrize("seed", range(4))
def test_stall_rule_compares_the_last_bound_with_the_one_iterations_before(seed):
    """Stops when ``h[-1] - h[-1-k] <= tolerance * max(|h[-1]|, 1)``; before ``k + 1`` rows it never stops."""
    rng = np.random.default_rng(seed)
    for _ in range(50):
        k = int(rng.integers(1, 5))
        history = [{"lower_bound": float(b)} for b in rng.uniform(-3.0, 3.0, size=k + 1 + int(rng.integers(0, 4)))]
        tolerance = float(rng.uniform(0.0, 1.5))
        bound, old = history[-1]["lower_bound"], history[-1 - k]["lower_bound"]
        expected = bound - old <= tolerance * max(abs(bound), 1.0)
        assert StallRule(iterations=k, tolerance=tolerance).check(SimpleNamespace(history=history)).stop is expected
        assert StallRule(iterations=k).check(SimpleNamespace(history=history[:k])) == StopCheck(False)


def test_stall_rule_edges():
    def stops(bounds, k, tolerance):
        return StallRule(iterations=k, tolerance=tolerance).check(
            SimpleNamespace(history=[{"lower_bound": b} for b in bounds])).stop

    assert stops([1.0, 2.0], 1, 0.5) is True  # an improvement of exactly tolerance * |bound| stalls
    assert stops([0.0, 0.5], 1, 0.4) is False  # |bound| < 1: the scale is 1, so 0.5 > 0.4 * 1
    assert stops([100.0, 100.0, 0.0, 100.5, 100.5], 3, 0.001) is False  # h[-4] = 100: 0.5 > 0.1005
    assert stops([0.0, 100.0, 100.0, 100.2, 100.5], 3, 0.001) is False  # h[-4] = 100 (not h[2] or h[-2])
    assert stops([0.0, 100.0, 104.0, 104.0, 100.05], 3, 0.001) is True  # h[-1] = 100.05 (not h[1] or h[-2])
    with pytest.raises(SDDPConfigError, match=r"^stall_iterations: must be an integer >= 1 \(iterations over which "
                                              r"the lower bound must improve\), got 0$"):
        StallRule(iterations=0)


def test_make_stopping_rule_defaults_and_settings():
    assert make_stopping_rule("statistical") == StatisticalRule(replications=300, z=1.96, check_every=5)
    assert make_stopping_rule("stall") == StallRule(iterations=5, tolerance=1e-4)
    assert make_stopping_rule("statistical", replications=7, z=2.5, check_every=3) == StatisticalRule(7, 2.5, 3)
    assert make_stopping_rule("stall", stall_iterations=2, stall_tolerance=0.1) == StallRule(2, 0.1)


def test_train_shows_a_progress_bar_and_records_the_iteration_limit(toy, capsys):
    model = SDDP(toy, seed=0)
    model.train(2, stopping=None)  # progress is on by default
    bar = capsys.readouterr().err
    assert re.search(r"SDDP: 100%\|.*\| 2/2 \[.*(it/s|s/it), bound=\d[\d.e+]*\]", bar), bar
    assert model.stopped_by == ITERATION_LIMIT
    model.train(1, stopping=None, progress=False)
    assert capsys.readouterr().err == "" and len(model.history) == 3  # a later call continues the run
    with pytest.raises(SDDPConfigError, match=r"^iterations: must be an integer >= 1 \(SDDP forward/backward "
                                              r"iterations\), got 0$"):
        model.train(0)


def test_simulate_draws_from_its_seed_only(trained):
    """Seeded by ``default_rng(seed)`` (1 by default): the same seed gives the same scenarios, whatever ran before."""
    first = trained.simulate(6, seed=3)
    np.testing.assert_array_equal(trained.simulate(6, seed=3), first)
    np.testing.assert_array_equal(trained.simulate(6), trained.simulate(6, seed=1))
    assert not np.array_equal(trained.simulate(6), trained.simulate(6, seed=2))
    inflows = sample_stagewise(trained.support, 6, np.random.default_rng(3))
    np.testing.assert_allclose(first, [trained.forward_pass(path)[1] for path in inflows])


def test_history_rows_by_hand(toy):
    """An iteration samples ``forward_passes`` paths from ``default_rng(seed)``, each forward pass followed by its
    backward pass; the row holds the forward passes' mean cost, the new bound and the iteration's own seconds."""
    model = SDDP(toy, seed=4, forward_passes=2)
    started = time.perf_counter()
    history = model.train(1, stopping=None, progress=False)
    elapsed = time.perf_counter() - started
    replay = SDDP(toy, seed=4, forward_passes=2)
    costs = []
    for path in sample_stagewise(replay.support, 2, np.random.default_rng(4)):
        trial, cost = replay.forward_pass(path)
        costs.append(cost)
        replay.backward_pass(trial)
    assert history is model.history and set(history[0]) == {"iteration", "lower_bound", "forward_cost", "seconds",
                                                                        "check_seconds"}
    assert history[0]["iteration"] == 1 and history[0]["forward_cost"] == pytest.approx(np.mean(costs), rel=1e-12)
    assert history[0]["lower_bound"] == pytest.approx(replay.lower_bound(), rel=1e-12)
    assert 0 < history[0]["seconds"] <= elapsed


def test_train_returns_the_history_when_its_rule_stops_it(toy):
    model = SDDP(toy, seed=0)
    assert model.train(10, stopping=StallRule(iterations=1, tolerance=10.0), progress=False) is model.history
    assert model.stopped_by == "stall" and len(model.history) == 2


def test_lower_bound_by_hand_after_training(trained, toy):
    """Stage 0 from the initial volumes, averaged over stage 0's own realisations, with every stage-0 cut (after 8
    iterations the cuts make the bound depend on which stage's inflows are used)."""
    alphas, betas = trained.cuts.intercepts[0], trained.cuts.slopes[0]
    stage0 = [_stage(toy, 0, toy.initial_volumes, inflow, alphas, betas) for inflow in trained.support[:, 0]]
    assert trained.lower_bound() == pytest.approx(np.mean([s.objective for s in stage0]), rel=1e-12)


class _KilledAt:
    """A stopping rule that kills training (KeyboardInterrupt) when the history reaches ``iteration`` rows."""

    name = "killer"

    def __init__(self, iteration: int) -> None:
        self.iteration = iteration

    def check(self, model: SDDP) -> StopCheck:
        if len(model.history) == self.iteration:
            raise KeyboardInterrupt
        return StopCheck(False)


def test_a_killed_run_resumes_from_its_checkpoint_to_the_same_cuts(toy, tmp_path):
    whole = SDDP(toy, seed=3, case="toy")
    whole.train(6, stopping=None, progress=False)
    path = tmp_path / "checkpoint.json"
    with pytest.raises(KeyboardInterrupt):
        SDDP(toy, seed=3, case="toy").train(6, stopping=_KilledAt(4), progress=False, checkpoint=path)
    resumed = SDDP.load(path, system=toy)
    assert len(resumed.history) == 3  # saved after every finished iteration, not the killed one
    resumed.train(3, stopping=None, progress=False, checkpoint=path)
    assert resumed.cuts == whole.cuts
    assert [row["lower_bound"] for row in resumed.history] == [row["lower_bound"] for row in whole.history]
    assert len(SDDP.load(path, system=toy).history) == 6
    # without the sampler's state (cuts saved by an older version) the forward passes restart their stream
    data = json.loads(path.read_text())
    data.pop("sampler_state")
    path.write_text(json.dumps(data))
    restarted = SDDP.load(path, system=toy)
    assert restarted.rng.bit_generator.state == np.random.default_rng(3).bit_generator.state


def test_history_rows_time_the_stopping_rule_apart(toy):
    model = SDDP(toy, seed=0, case="toy")
    start = time.perf_counter()
    model.train(2, stopping=StatisticalRule(replications=5, check_every=2), progress=False)
    wall = time.perf_counter() - start
    first, second = model.history
    assert sum(row["seconds"] + row["check_seconds"] for row in model.history) <= wall  # durations, not clock times
    assert "upper_bound_mean" not in first and "upper_bound_mean" in second  # the test runs at iteration 2 only
    assert 0.0 < first["check_seconds"] < second["check_seconds"]
    model.train(1, stopping=None, progress=False)
    assert model.history[2]["check_seconds"] == 0.0


def test_save_load_keeps_every_setting_and_reads_older_files(toy, tmp_path):
    model = SDDP(toy, forward_passes=2, holdout_fraction=0.3, seed=4, case="toy")
    model.train(1, stopping=None, progress=False)
    path = model.save(tmp_path / "cuts.json")
    loaded = SDDP.load(path)
    assert (loaded.forward_passes, loaded.holdout_fraction, loaded.seed, loaded.case) == (2, 0.3, 4, "toy")
    assert loaded.history == model.history and loaded.cuts == model.cuts
    data = json.loads(path.read_text())
    del data["history"], data["case"]
    path.write_text(json.dumps(data))
    message = f"{path}: the SDDP cuts record no case; pass system= to load()"
    with pytest.raises(SDDPConfigError, match=re.escape(message)):
        SDDP.load(path)
    bare = SDDP.load(path, system=toy)
    assert bare.history == [] and bare.case is None and bare.cuts == model.cuts


def test_stage_lps_are_kept_until_the_pool_changes(toy):
    """Each stage's LP is built once per set of cuts (the speed of SDDP on the bolivia-like case); a new cut or
    another pool assigned to ``cuts`` (even with as many cuts) rebuilds it, so no solve sees stale cuts."""
    from algos.sddp import CutPool

    model = SDDP(toy, seed=0, case="toy")
    model.train(2, stopping=None, progress=False)
    lp = model._stage_lp(3)
    assert model._stage_lp(3) is lp and lp.num_cuts == 2
    model.cuts.add(3, 1.0, np.zeros(1))
    grown = model._stage_lp(3)
    assert grown is not lp and grown.num_cuts == 3 and model._stage_lp(3) is grown
    volumes, inflow = np.array([200.0]), toy.inflows[0, 3]
    assert model._solve(3, volumes, inflow).future_cost < 1e6
    model.cuts = CutPool([[a + 1e6 for a in stage] for stage in model.cuts.intercepts], model.cuts.slopes)
    assert model._solve(3, volumes, inflow).future_cost >= 1e6  # the replaced pool's cuts, not the kept LP's
