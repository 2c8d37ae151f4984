"""Tests of TS-DDR / TS-LDR (algos.tsddr, tsddr_lp, tsddr_cli): dual gradients, reproducibility, learning, save/load,
CLI errors.

Mutation testing (mutmut 3.8.1, docs/development.md) of algos/tsddr_lp.py with this file: 125 mutants, 15 survived
before the stage-layer test with both gradient paths, 5 after, all equivalent:

- the finite-difference step scaled otherwise (``step / range``, ``max + min``, a floor of 2 instead of 1; 3
  mutants): the stage LP is piecewise linear, so any forward step inside the current piece gives the same exact
  Jacobian, and the floor only acts on a reservoir whose range is below 2;
- ``einsum("BI,BIJ->BJ")`` (2): torch accepts upper-case subscripts, the same contraction.
"""

import numpy as np
import pytest
import torch

from algos.hydro_common import HydroConfigError, split_scenarios
from algos.tsddr import TSDDR, TSLDR, TSDDRConfigError, annealed_penalty_schedule
from algos.tsddr_cli import main
from algos.tsddr_lp import StageLP
from envs.hydro import (
    VIOLATION_TOLERANCE,
    SystemDataError,
    load_system,
    solve_horizon_with_targets,
    solve_stage,
    system_from_dict,
    toy_case_path,
)

PENALTY = 5000.0
TARGETS = np.array([150.0, 160.0, 170.0, 180.0, 175.0, 160.0, 140.0, 120.0, 110.0, 105.0, 110.0, 120.0])[:, None]


@pytest.fixture(scope="module")
def toy():
    return load_system(toy_case_path())


def _stage_total(system, inflows, targets, transition=True):
    """Total stage-wise objective of fixed targets (realised volumes fed forward), as a differentiable tensor."""
    volumes = torch.as_tensor(system.initial_volumes[None])
    total = torch.zeros(1, dtype=torch.float64)
    for t in range(system.num_stages):
        objective, volumes, _ = StageLP.apply(volumes, targets[t][None], system, t, inflows[None, t], PENALTY,
                                              1e-4, transition)
        total = total + objective
    return total.sum()


@pytest.mark.parametrize("stage", [0, 3, 9])
def test_stage_mode_dual_gradient_matches_finite_differences(toy, stage):
    inflows = toy.inflows[2]
    targets = torch.tensor(TARGETS, requires_grad=True)
    _stage_total(toy, inflows, targets).backward()
    h = 0.25
    up, down = TARGETS.copy(), TARGETS.copy()
    up[stage] += h
    down[stage] -= h
    with torch.no_grad():
        fd = (_stage_total(toy, inflows, torch.tensor(up)) - _stage_total(toy, inflows, torch.tensor(down))) / (2 * h)
    assert targets.grad[stage, 0].item() == pytest.approx(float(fd), rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("stage", [0, 4, 11])
def test_horizon_mode_dual_gradient_matches_finite_differences(toy, stage):
    inflows = toy.inflows[2]
    sol = solve_horizon_with_targets(toy, inflows=inflows, targets=TARGETS, target_penalty=PENALTY)
    h = 0.25
    up, down = TARGETS.copy(), TARGETS.copy()
    up[stage] += h
    down[stage] -= h
    fd = (solve_horizon_with_targets(toy, inflows=inflows, targets=up, target_penalty=PENALTY).objective
          - solve_horizon_with_targets(toy, inflows=inflows, targets=down, target_penalty=PENALTY).objective) / (2 * h)
    assert sol.target_duals[stage, 0] == pytest.approx(fd, rel=1e-6, abs=1e-6)


# (incoming volume, target, penalty): target met; target out of reach (the volume follows the incoming water); a
# penalty below the water's value (the target is given up); a dry reservoir. None is the system's own penalty (5000).
STAGE_POINTS = [(150.0, 200.0, 300.0), (150.0, 390.0, 300.0), (150.0, 200.0, 1.0), (20.0, 100.0, 40.0)]


@pytest.mark.parametrize(("v_in", "target", "penalty"), STAGE_POINTS)
def test_stage_layer_gradient_through_objective_and_volumes_matches_finite_differences(toy, v_in, target, penalty):
    """Both paths of StageLP's backward: the duals (d objective) and the volumes' Jacobians (d realised volumes),
    against central differences of the stage LP itself at a penalty that is not the system's; each point lies
    inside one linear piece of the LP (the two step sizes agree)."""
    inflow = np.array([[100.0]])
    weight_objective, weight_volume = 0.5, 3.0

    def loss_by_lp(v, t):
        sol = solve_stage(toy, 0, volumes_in=np.array([v]), inflow=inflow[0], target=np.array([t]),
                          target_penalty=penalty)
        return weight_objective * sol.objective + weight_volume * sol.volumes[0]

    v = torch.tensor([[v_in]], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([[target]], dtype=torch.float64, requires_grad=True)
    objective, volumes, _ = StageLP.apply(v, t, toy, 0, inflow, penalty, 1e-4, True)
    direct = solve_stage(toy, 0, volumes_in=np.array([v_in]), inflow=inflow[0], target=np.array([target]),
                         target_penalty=penalty)
    assert float(objective.detach()[0]) == pytest.approx(direct.objective, rel=1e-12)
    np.testing.assert_allclose(volumes.detach().numpy()[0], direct.volumes, rtol=1e-12)
    (weight_objective * objective.sum() + weight_volume * volumes.sum()).backward()
    for h in (0.5, 0.1):
        d_v = (loss_by_lp(v_in + h, target) - loss_by_lp(v_in - h, target)) / (2 * h)
        d_t = (loss_by_lp(v_in, target + h) - loss_by_lp(v_in, target - h)) / (2 * h)
        assert float(v.grad[0, 0]) == pytest.approx(d_v, rel=1e-6, abs=1e-6)
        assert float(t.grad[0, 0]) == pytest.approx(d_t, rel=1e-6, abs=1e-6)


def test_annealed_schedule_follows_the_authors_phases():
    assert annealed_penalty_schedule(24) == [(0, 1, 0.1), (2, 3, 1.0), (4, 7, 10.0), (8, 23, 30.0)]
    assert annealed_penalty_schedule(2) == [(0, 0, 10.0), (1, 1, 30.0)]
    schedule = annealed_penalty_schedule(7)
    assert schedule[0][0] == 0 and schedule[-1][1] == 6 and schedule[-1][2] == 30.0


def test_split_holds_out_the_last_quarter():
    train, held = split_scenarios(20)
    assert train.tolist() == list(range(15)) and held.tolist() == [15, 16, 17, 18, 19]
    with pytest.raises(HydroConfigError, match="holdout_fraction"):
        split_scenarios(20, 1.0)


def _tiny(toy, **kwargs):
    return TSDDR(toy, batches_per_epoch=1, batch_size=2, seed=3, hidden_sizes=(8,), **kwargs)


@pytest.mark.parametrize("mode", ["stage", "horizon"])
def test_tiny_run_is_reproducible_for_a_seed(toy, mode):
    runs = []
    for _ in range(2):
        model = _tiny(toy, mode=mode)
        history = model.learn(2, progress=False)
        runs.append(([(r["train_objective"], r["holdout_cost"]) for r in history],
                     [p.detach().clone() for p in model.policy.parameters()]))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))


def test_training_lowers_the_cost_of_the_initial_policy(toy):
    model = TSDDR(toy, mode="horizon", policy="mlp", hidden_sizes=(32,), learning_rate=1e-2, batches_per_epoch=15,
                  seed=0)
    scenarios = model.train_indices[:6]
    before = model.evaluate(scenarios)["cost_mean"]
    model.learn(3, progress=False)
    after = model.evaluate(scenarios)["cost_mean"]
    assert after < 0.8 * before


@pytest.mark.parametrize("policy", ["mlp", "lstm", "linear"])
def test_save_load_round_trip_gives_identical_targets(toy, tmp_path, policy):
    model = _tiny(toy, policy=policy, case="toy") if policy != "linear" else TSLDR(toy, batches_per_epoch=1, case="toy")
    model.learn(1, progress=False)
    path = model.save(tmp_path / "model.pt")
    loaded = TSDDR.load(path)
    assert loaded.config["policy"] == policy
    assert np.array_equal(model.predict(toy.inflows[16]), loaded.predict(toy.inflows[16]))


def test_a_model_saved_with_the_former_violation_tolerance_setting_loads(toy, tmp_path):
    """Models saved before the tolerance became envs.hydro.VIOLATION_TOLERANCE recorded it (1e-3) in their config."""
    model = _tiny(toy, case="toy")
    path = model.save(tmp_path / "model.pt")
    state = torch.load(path, weights_only=False)
    state["config"]["violation_tolerance"] = 1e-3
    torch.save(state, path)
    loaded = TSDDR.load(path)
    assert "violation_tolerance" not in loaded.config
    assert np.array_equal(model.predict(toy.inflows[16]), loaded.predict(toy.inflows[16]))


def test_resume_continues_from_the_checkpoint(toy, tmp_path):
    model = _tiny(toy, mode="horizon", case="toy")
    model.learn(2, run_dir=tmp_path, progress=False, stop_after=1)
    resumed = TSDDR.load(tmp_path / "checkpoint.pt")
    resumed.learn(2, run_dir=tmp_path, progress=False)
    straight = _tiny(toy, mode="horizon", case="toy")
    straight.learn(2, progress=False)
    assert [r["train_objective"] for r in resumed.history] == [r["train_objective"] for r in straight.history]
    assert (tmp_path / "progress.csv").read_text().count("\n") == 3


def test_evaluation_reports_costs_violations_and_timing(toy):
    model = _tiny(toy)
    stats = model.evaluate([15, 16])
    assert len(stats["costs"]) == 2 and stats["cost_mean"] > 0
    assert 0.0 <= stats["violation_share"] <= 1.0 and 0.0 <= stats["penalty_share"] <= 1.0
    assert stats["inference_seconds_per_scenario"] > 0
    # the share of (stage, plant) pairs missing their target by more than VIOLATION_TOLERANCE of the range
    slack = np.array([model.rollout(toy.inflows[k]).target_slack for k in (15, 16)])
    assert stats["violation_share"] == np.mean(np.abs(slack) > VIOLATION_TOLERANCE * 400.0)


def test_policy_scale_ignores_the_held_out_scenarios(toy):
    """The policy's inflow scale is the training scenarios' mean: changing held-out inflows changes no decision."""
    import dataclasses

    inflows = toy.inflows.copy()
    inflows[15:] *= 4.0
    changed = dataclasses.replace(toy, inflows=inflows)
    scenario = toy.inflows[3]
    np.testing.assert_array_equal(_tiny(changed).predict(scenario), _tiny(toy).predict(scenario))


def test_bad_settings_and_data_are_refused(toy):
    with pytest.raises(TSDDRConfigError, match="mode: must be one of"):
        TSDDR(toy, mode="window")
    assert issubclass(TSDDRConfigError, HydroConfigError)
    with pytest.raises(HydroConfigError, match="holdout_fraction"):
        TSDDR(toy, holdout_fraction=1.0)
    with pytest.raises(TSDDRConfigError, match="policy"):
        TSDDR(toy, policy="transformer")
    no_hydro = system_from_dict({"num_stages": 1, "network": "single_bus", "deficit_cost": 10.0, "buses": ["B"],
                                 "thermals": [], "hydros": [], "demand": {"B": [1.0]}, "inflows": {}})
    with pytest.raises(SystemDataError, match="hydros: TS-DDR needs at least one hydro plant"):
        TSDDR(no_hydro)


def test_cli_refuses_an_unknown_case_with_close_names(capsys, tmp_path):
    assert main(["--case", "tyo", "--epochs", "1", "-f", str(tmp_path), "--no-progress"]) == 2
    assert "did you mean 'toy'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--mode", "window"])


def test_cli_writes_a_run_folder(tmp_path):
    assert main(["--case", "toy", "--epochs", "2", "--mode", "horizon", "--batches-per-epoch", "2", "--hidden", "8",
                 "-f", str(tmp_path), "--no-progress"]) == 0
    run = tmp_path / "tsddr" / "toy_1"
    for name in ("config.json", "progress.csv", "history.json", "checkpoint.pt", "model.pt", "results.json",
                 "learning_curve.png"):
        assert (run / name).is_file(), name


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A tiny run folder written by the CLI (its checkpoint.pt is what --resume reads)."""
    root = tmp_path_factory.mktemp("tsddr_run")
    assert main(["--epochs", "1", "--batches-per-epoch", "2", "--hidden", "8", "-f", str(root), "--no-progress"]) == 0
    return root / "tsddr" / "toy_1"


@pytest.mark.parametrize("damage", ["empty", "first 10 bytes", "a third", "all but the last byte", "other tensors"])
def test_resume_from_a_damaged_checkpoint_is_one_line_naming_the_file_and_the_fix(
    finished_run, tmp_path, capsys, damage
):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    checkpoint = run_dir / "checkpoint.pt"
    data = checkpoint.read_bytes()
    cuts = {"empty": 0, "first 10 bytes": 10, "a third": len(data) // 3, "all but the last byte": len(data) - 1}
    if damage in cuts:
        checkpoint.write_bytes(data[: cuts[damage]])
    else:  # a whole file whose network does not fit the recorded configuration
        state = torch.load(checkpoint, weights_only=False)
        state["policy"] = {name: value[..., :1] for name, value in state["policy"].items()}
        torch.save(state, checkpoint)
    capsys.readouterr()
    assert main(["--epochs", "2", "--resume", str(run_dir), "--no-progress"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert str(checkpoint) in lines[0] and "truncated or not a TS-DDR checkpoint" in lines[0]
    assert "delete it to start the run over" in lines[0]
