"""Tests of the TS-DDR benchmark harness (algos.tsddr_benchmark) with tiny budgets on the toy case."""

from __future__ import annotations

import json

import numpy as np
import pytest

from algos.tsddr_benchmark import (
    ENV_IDS,
    BenchmarkConfig,
    _env_id_and_kwargs,
    build_parser,
    main,
    method_names,
    run_benchmark,
)
from envs.hydro import case_path


def _tiny(tmp_path) -> BenchmarkConfig:
    return BenchmarkConfig(case="toy", seeds=[0], epochs=1, batches_per_epoch=2, sddp_iterations=2, ppo_steps=64,
                           results_root=str(tmp_path / "results"), logs_root=str(tmp_path / "logs"),
                           progress=False, command="pytest tiny benchmark")


def test_benchmark_writes_outputs_and_resumes(tmp_path):
    cfg = _tiny(tmp_path)
    summary = run_benchmark(cfg)
    out = tmp_path / "results" / "tsddr" / "toy"
    for name in ("README.md", "results.json", "command.txt", "reservoir_trajectories.png", "learning_curves.png"):
        assert (out / name).is_file(), name
    assert (out / "command.txt").read_text().strip() == "pytest tiny benchmark"
    readme = (out / "README.md").read_text()
    for label in ("Perfect-foresight LP", "TS-DDR (MLP, horizon)", "TS-LDR (horizon)", "SDDP", "SB3 PPO"):
        assert f"| {label} |" in readme
    data = json.loads((out / "results.json").read_text())
    assert data["holdout_scenarios"] == [15, 16, 17, 18, 19]
    assert set(data["methods"]) == {"perfect-foresight", *method_names(["horizon"])}
    pf = np.array(data["perfect_foresight_costs"])
    for method in method_names(["horizon"]):
        costs = np.array(data["per_scenario_costs"][f"{method}_seed0"])
        assert costs.shape == pf.shape
        assert np.all(costs >= pf - 1e-6 * np.maximum(1.0, pf)), method  # PF is the lower bound per scenario
        assert data["methods"][method]["gap_to_pf_percent"] >= -1e-6
    assert data["methods"]["sddp"]["ratio_to_sddp"] == pytest.approx(1.0)
    assert summary["skipped_runs"] == 0
    logs = tmp_path / "logs" / "tsddr_benchmark" / "tsddr" / "toy"
    expected = {"perfect-foresight", *(f"{m}_seed0" for m in method_names(["horizon"]))}
    assert {p.stem for p in logs.glob("*.json")} == expected

    again = run_benchmark(cfg)  # every (method, seed) is finished: all reused, same numbers
    assert again["skipped_runs"] == 1 + len(method_names(["horizon"]))
    assert again["methods"]["ppo"]["cost_mean"] == pytest.approx(summary["methods"]["ppo"]["cost_mean"])


def test_cli_accepts_cases_and_refuses_bad_settings(tmp_path, capsys):
    args = build_parser().parse_args(["--case", "bolivia-like", "--modes", "horizon", "stage"])
    assert args.case == "bolivia-like" and args.modes == ["horizon", "stage"]
    assert case_path("bolivia-like").is_file()
    assert _env_id_and_kwargs("bolivia-like", np.arange(3)) == (ENV_IDS["bolivia-like"], {"scenarios": [0, 1, 2]})
    roots = ["--results-root", str(tmp_path / "r"), "--logs-root", str(tmp_path / "l"), "--no-progress"]
    assert main(["--case", "no-such-case", *roots]) == 2
    assert "unknown case" in capsys.readouterr().err
    assert main(["--case", "toy", "--epochs", "0", *roots]) == 2
    assert "epochs" in capsys.readouterr().err


def test_committed_toy_report_is_the_generators_and_names_its_standard_deviations():
    """results/tsddr/toy/README.md is render_table of its results.json, with the +- columns' definition."""
    from pathlib import Path

    from algos.tsddr_benchmark import STD_NOTE, render_table

    out = Path(__file__).resolve().parents[1] / "results" / "tsddr" / "toy"
    summary = json.loads((out / "results.json").read_text())
    text = render_table(summary, BenchmarkConfig(**summary["config"]))
    assert STD_NOTE in text and "population standard deviations" in STD_NOTE
    assert (out / "README.md").read_text() == text
