"""Tests of the TS-DDR benchmark harness (algos.tsddr_benchmark, its evaluation sets and report) with tiny budgets
on the toy case."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from algos.hydro_common import HydroConfigError, holdout_stagewise_inflows
from algos.tsddr_benchmark import (
    ENV_IDS,
    BenchmarkConfig,
    BenchmarkConfigError,
    _env_id_and_kwargs,
    build_parser,
    main,
    method_names,
    run_benchmark,
)
from algos.tsddr_eval_sets import holdout_set, sampled_set
from envs.hydro import case_path, load_system, system_from_dict


def _tiny(tmp_path, **overrides) -> BenchmarkConfig:
    settings = dict(case="toy", seeds=[0], epochs=1, batches_per_epoch=2, sddp_max_iterations=4,
                    sddp_report_iterations=[2, 6], sddp_replications=10, sddp_check_every=2, ppo_steps=64,
                    eval_scenarios=6, results_root=str(tmp_path / "results"), logs_root=str(tmp_path / "logs"),
                    progress=False, command="pytest tiny benchmark")
    settings.update(overrides)
    return BenchmarkConfig(**settings)


# ---------------------------------------------------------------------------------------- evaluation sets


def _split_system(num_hydros: int = 2) -> tuple:
    """A 4-stage system with 8 scenarios: 0..5 train (inflows < 1), 6..7 held out (inflows >= 10), all distinct."""
    rng = np.random.default_rng(0)
    inflows = np.concatenate([rng.uniform(0.0, 1.0, (6, 4, num_hydros)), rng.uniform(10.0, 20.0, (2, 4, num_hydros))])
    names = [f"H{p}" for p in range(num_hydros)]
    system = system_from_dict({
        "num_stages": 4, "network": "single_bus", "deficit_cost": 10.0, "buses": ["B"], "thermals": [],
        "demand": {"B": [1.0] * 4}, "inflows": {name: inflows[:, :, p].tolist() for p, name in enumerate(names)},
        "hydros": [{"name": name, "bus": "B", "min_volume": 0, "max_volume": 10, "initial_volume": 5,
                    "max_turbine": 5, "production_factor": 1} for name in names]})
    return system, np.arange(6), np.arange(6, 8)


def test_out_of_sample_sampler_is_deterministic_and_draws_only_held_out_rows():
    system, train, holdout = _split_system()
    sample = holdout_stagewise_inflows(system, holdout, 200, seed=5)
    assert sample.shape == (200, 4, 2)
    np.testing.assert_array_equal(sample, holdout_stagewise_inflows(system, holdout, 200, seed=5))
    assert not np.array_equal(sample, holdout_stagewise_inflows(system, holdout, 200, seed=6))
    for t in range(4):
        held_rows = {tuple(row) for row in system.inflows[holdout, t]}
        train_rows = {tuple(row) for row in system.inflows[train, t]}
        drawn = {tuple(row) for row in sample[:, t]}
        assert drawn <= held_rows and not drawn & train_rows  # whole rows (all plants of one scenario) of held-out
        assert drawn == held_rows  # 200 draws of 2 values: both appear
    # mixing across stages: some sample's stages come from different held-out scenarios
    origin = np.array([[next(k for k in holdout if np.array_equal(system.inflows[k, t], sample[j, t]))
                        for t in range(4)] for j in range(200)])
    assert np.any(origin.min(axis=1) != origin.max(axis=1))


def test_out_of_sample_sampler_refuses_bad_input():
    system, _, holdout = _split_system(1)
    with pytest.raises(HydroConfigError, match="at least one held-out scenario"):
        holdout_stagewise_inflows(system, [], 5, seed=0)
    with pytest.raises(HydroConfigError, match="indices must be in 0..7"):
        holdout_stagewise_inflows(system, [8], 5, seed=0)
    with pytest.raises(HydroConfigError, match="count: must be an integer >= 1"):
        holdout_stagewise_inflows(system, holdout, 0, seed=0)


def test_evaluation_sets_of_the_toy_case():
    toy = load_system(case_path("toy"))
    held = holdout_set(toy, [15, 16, 17, 18, 19])
    assert held.key == "holdout" and held.indices == (15, 16, 17, 18, 19)
    np.testing.assert_array_equal(held.inflows, toy.inflows[15:])
    sampled = sampled_set(toy, [15, 16, 17, 18, 19], "holdout-stagewise", 32, seed=1)
    assert sampled.key == "sampled" and sampled.size == 32 and "seed 1" in sampled.description
    with pytest.raises(HydroConfigError, match="'make-case' needs a case written by envs.hydro.make_case"):
        sampled_set(toy, [15], "make-case", 4, seed=1)
    with pytest.raises(HydroConfigError, match="eval_set: must be one of"):
        sampled_set(toy, [15], "everything", 4, seed=1)


# -------------------------------------------------------------------------------------------- benchmark


def test_benchmark_writes_outputs_and_resumes(tmp_path):
    cfg = _tiny(tmp_path)
    summary = run_benchmark(cfg)
    out = tmp_path / "results" / "tsddr" / "toy"
    for name in ("README.md", "results.json", "command.txt", "reservoir_trajectories.png", "learning_curves.png",
                 "sddp_bounds.png"):
        assert (out / name).is_file(), name
    assert (out / "command.txt").read_text().strip() == "pytest tiny benchmark"
    readme = (out / "README.md").read_text()
    for label in ("Perfect-foresight LP", "TS-DDR (MLP, horizon)", "TS-LDR (horizon)", "SDDP, 2 iterations",
                  "SDDP, 6 iterations", "SB3 PPO"):
        assert f"| {label} |" in readme
    for heading in ("## Sampled out-of-sample set (6 scenarios)", "## The case's held-out scenarios (5)",
                    "## SDDP: bounds, stopping and iteration counts"):
        assert heading in readme
    data = json.loads((out / "results.json").read_text())
    assert data["holdout_scenarios"] == [15, 16, 17, 18, 19]
    assert {k: v["size"] for k, v in data["eval_sets"].items()} == {"sampled": 6, "holdout": 5}
    rows = {"perfect-foresight", *method_names(["horizon"]), "sddp@2", "sddp@6"}
    assert set(data["methods"]) == rows
    for key in ("sampled", "holdout"):
        pf = np.array(data["perfect_foresight_costs"][key])
        for method in method_names(["horizon"]):
            costs = np.array(data["per_scenario_costs"][f"{method}_seed0"][key])
            assert costs.shape == pf.shape
            assert np.all(costs >= pf - 1e-6 * np.maximum(1.0, pf)), (method, key)  # PF bounds every scenario
        for row in rows:
            assert data["methods"][row]["sets"][key]["gap_to_pf_percent"] >= -1e-6
        assert data["methods"]["sddp"]["sets"][key]["ratio_to_sddp"] == pytest.approx(1.0)

    # SDDP: stopped by its rule or the cap of 4, then trained on to 6 for the report; each policy's bounds
    sddp = data["sddp"]["0"]
    assert sddp["stopped_by"] in ("statistical", "iteration limit") and 1 <= sddp["stop_iteration"] <= 4
    assert set(sddp["policies"]) == {"stop", "2", "6"}
    for label, policy in sddp["policies"].items():
        assert policy["iterations"] == (sddp["stop_iteration"] if label == "stop" else int(label))
        assert policy["upper_bound_replications"] == 10 and policy["upper_bound_half_width"] > 0
        in_interval = policy["lower_bound"] >= policy["upper_bound_mean"] - policy["upper_bound_half_width"]
        assert policy["bound_in_interval"] == in_interval
    assert sddp["policies"]["stop"]["bound_in_interval"] == (sddp["stopped_by"] == "statistical")
    record = json.loads((tmp_path / "logs" / "tsddr_benchmark" / "tsddr" / "toy" / "sddp_seed0.json").read_text())
    assert len(record["history"]) == 6

    assert summary["skipped_runs"] == 0
    logs = tmp_path / "logs" / "tsddr_benchmark" / "tsddr" / "toy"
    expected = {"perfect-foresight", *(f"{m}_seed0" for m in method_names(["horizon"]))}
    assert {p.stem for p in logs.glob("*.json")} == expected

    again = run_benchmark(cfg)  # every (method, seed) is finished: all reused, same numbers
    assert again["skipped_runs"] == 1 + len(method_names(["horizon"]))
    assert again["methods"]["ppo"]["sets"]["sampled"]["cost_mean"] == pytest.approx(
        summary["methods"]["ppo"]["sets"]["sampled"]["cost_mean"])

    without_ppo = run_benchmark(_tiny(tmp_path, ppo_steps=0))  # the other runs' settings are unchanged: reused
    assert "ppo" not in without_ppo["methods"] and "left out" in without_ppo["notes"]["ppo"]
    assert "| SB3 PPO |" not in (out / "README.md").read_text()

    with pytest.raises(BenchmarkConfigError, match="computed with other settings"):
        run_benchmark(_tiny(tmp_path, eval_seed=99))  # a result of another evaluation set is never mixed in


def test_cli_accepts_cases_and_refuses_bad_settings(tmp_path, capsys):
    args = build_parser().parse_args(["--case", "bolivia-like", "--modes", "horizon", "stage", "--eval-set",
                                      "make-case", "--sddp-report-iterations", "5", "10", "--ppo-steps", "0"])
    assert args.case == "bolivia-like" and args.modes == ["horizon", "stage"] and args.eval_set == "make-case"
    assert args.sddp_report_iterations == [5, 10] and args.ppo_steps == 0
    assert case_path("bolivia-like").is_file()
    assert _env_id_and_kwargs("bolivia-like", np.arange(3)) == (ENV_IDS["bolivia-like"], {"scenarios": [0, 1, 2]})
    roots = ["--results-root", str(tmp_path / "r"), "--logs-root", str(tmp_path / "l"), "--no-progress"]
    assert main(["--case", "no-such-case", *roots]) == 2
    assert "unknown case" in capsys.readouterr().err
    assert main(["--case", "toy", "--epochs", "0", *roots]) == 2
    assert "epochs" in capsys.readouterr().err
    assert main(["--case", "toy", "--eval-set", "make-case", *roots]) == 2
    assert "needs a case written by envs.hydro.make_case" in capsys.readouterr().err
    assert main(["--case", "toy", "--sddp-replications", "1", *roots]) == 2
    assert "sddp_replications" in capsys.readouterr().err


def test_committed_toy_report_is_the_generators_and_names_its_standard_deviations():
    """results/tsddr/toy/README.md is render_table of its results.json, with the +- columns' definition."""
    from algos.tsddr_report import STD_NOTE, render_table

    out = Path(__file__).resolve().parents[1] / "results" / "tsddr" / "toy"
    summary = json.loads((out / "results.json").read_text())
    text = render_table(summary, BenchmarkConfig(**summary["config"]))
    assert STD_NOTE in text and "population standard deviations" in STD_NOTE
    assert (out / "README.md").read_text() == text


def _killed_at_save(monkeypatch, cfg: BenchmarkConfig, save_number: int) -> list[int]:
    """Run the benchmark with ``SDDP.save`` interrupted (Ctrl-C) at its ``save_number``-th call, that iteration's
    checkpoint unwritten; returns the iteration counts it was called with. ``SDDP.save`` is restored after."""
    from algos.sddp import SDDP

    save, saves = SDDP.save, []

    def killed(model, path):
        saves.append(len(model.history))
        if len(saves) == save_number:
            raise KeyboardInterrupt
        return save(model, path)

    monkeypatch.setattr(SDDP, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(cfg)
    monkeypatch.setattr(SDDP, "save", save)
    return saves


def test_a_killed_sddp_run_resumes_to_the_same_record(tmp_path, monkeypatch):
    """SDDP checkpoints every iteration: killed in its first phase (under the stopping rule) and again in the second
    (on to the report count), the benchmark resumes both times and ends with the uninterrupted run's record."""

    def sddp_record(root: Path) -> dict:
        path = root / "logs" / "tsddr_benchmark" / "tsddr" / "toy" / "sddp_seed0.json"
        return json.loads(path.read_text())

    whole_root, killed_root = tmp_path / "whole", tmp_path / "killed"
    run_benchmark(_tiny(whole_root, ppo_steps=0, sddp_stopping="none", sddp_report_iterations=[3, 7]))
    cfg = _tiny(killed_root, ppo_steps=0, sddp_stopping="none", sddp_report_iterations=[3, 7])
    run_dir = killed_root / "logs" / "tsddr_benchmark" / "tsddr" / "toy" / "runs" / "sddp_seed0"
    # Killed at iteration 3 of the first phase (cap 4), then at iteration 5, in the second.
    assert _killed_at_save(monkeypatch, cfg, 3) == [1, 2, 3]
    assert _killed_at_save(monkeypatch, cfg, 3) == [3, 4, 5] and (run_dir / "sddp_stop.json").is_file()
    run_benchmark(cfg)
    whole, resumed = sddp_record(whole_root), sddp_record(killed_root)
    assert json.loads((run_dir / "sddp_stop.json").read_text()) == {"stop_at": 4, "stopped_by": "iteration limit"}
    assert [r["lower_bound"] for r in resumed["history"]] == [r["lower_bound"] for r in whole["history"]]
    assert len(resumed["history"]) == 7 and resumed["stop_iteration"] == whole["stop_iteration"] == 4
    for label in ("stop", "3", "7"):
        assert resumed["policies"][label]["evaluations"]["sampled"]["costs"] == \
            whole["policies"][label]["evaluations"]["sampled"]["costs"]
    assert resumed["training_seconds"] == pytest.approx(sum(r["seconds"] + r["check_seconds"]
                                                            for r in resumed["history"][:4]))


def test_an_sddp_checkpoint_of_another_run_is_refused(tmp_path):
    from algos.sddp import SDDP

    cfg = _tiny(tmp_path, ppo_steps=0)
    run_dir = tmp_path / "logs" / "tsddr_benchmark" / "tsddr" / "toy" / "runs" / "sddp_seed0"
    run_dir.mkdir(parents=True)
    other = SDDP(load_system(case_path("toy")), seed=5, case="toy")
    other.train(1, stopping=None, progress=False)
    other.save(run_dir / "sddp_checkpoint.json")
    with pytest.raises(BenchmarkConfigError, match="belongs to another SDDP run .seed 5"):
        run_benchmark(cfg)


def test_a_killed_sddp_run_is_not_resumed_with_other_settings(tmp_path, monkeypatch):
    _killed_at_save(monkeypatch, _tiny(tmp_path, ppo_steps=0), 2)
    with pytest.raises(BenchmarkConfigError, match="was trained with other settings"):
        run_benchmark(_tiny(tmp_path, ppo_steps=0, sddp_replications=12))


def test_a_killed_sddp_run_goes_on_under_a_cap_it_has_not_passed(tmp_path, monkeypatch):
    """Killed at iteration 2 under a cap of 6, the run resumes under a cap of 3 to the record of a fresh run with a cap
    of 3; once a run has passed a cap (or stopped), that cap is refused."""

    def tiny(root: Path, cap: int) -> BenchmarkConfig:
        return _tiny(root, ppo_steps=0, sddp_stopping="none", sddp_max_iterations=cap, sddp_report_iterations=[2])

    def sddp_record(root: Path) -> dict:
        return json.loads((root / "logs" / "tsddr_benchmark" / "tsddr" / "toy" / "sddp_seed0.json").read_text())

    run_benchmark(tiny(tmp_path / "fresh", 3))
    assert _killed_at_save(monkeypatch, tiny(tmp_path / "killed", 6), 3) == [1, 2, 3]  # iteration 3 not saved
    with pytest.raises(BenchmarkConfigError, match="has 2 iterations under a cap of 6: --sddp-max-iterations 1"):
        run_benchmark(tiny(tmp_path / "killed", 1))
    run_benchmark(tiny(tmp_path / "killed", 3))
    fresh, resumed = sddp_record(tmp_path / "fresh"), sddp_record(tmp_path / "killed")
    assert resumed["stop_iteration"] == fresh["stop_iteration"] == 3
    assert [r["lower_bound"] for r in resumed["history"]] == [r["lower_bound"] for r in fresh["history"]]
    assert resumed["policies"]["stop"]["evaluations"]["sampled"]["costs"] == \
        fresh["policies"]["stop"]["evaluations"]["sampled"]["costs"]
    assert resumed["settings"]["max_iterations"] == 3
    (tmp_path / "killed" / "logs" / "tsddr_benchmark" / "tsddr" / "toy" / "sddp_seed0.json").unlink()
    with pytest.raises(BenchmarkConfigError, match="has 3 iterations and has stopped under a cap of 3"):
        run_benchmark(tiny(tmp_path / "killed", 5))
