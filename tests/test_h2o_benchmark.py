"""H2O's benchmark (algos.h2o_benchmark) and the ``sim_<algo>`` method it runs SAC with: each contender trains on
the data it is meant to see, the report compares the four in the real env, and finished runs are not redone."""

from __future__ import annotations

import json
import re

import pytest
from offline_data import random_dataset, write_hdf5

import algos.h2o_benchmark as bench
from rl.benchmark import RunSpec, execute

TINY_NETS = {"policy_kwargs": {"net_arch": [16, 16]}, "batch_size": 32, "buffer_size": 2_000}
TINY = {
    "h2o": {**TINY_NETS, "discriminator_net_arch": [16, 16], "discriminator_batch_size": 32},
    "naive_mix": TINY_NETS,
    "sac_sim": TINY_NETS,
    "cql_real": {**TINY_NETS, "cql_n_actions": 2},
}


@pytest.fixture
def pendulum_setting(tmp_path, monkeypatch):
    """A setting of the real Pendulum with a tiny random dataset and a simulator with doubled gravity."""
    path = write_hdf5(random_dataset("Pendulum-v1", n=300), tmp_path / "pendulum.hdf5")
    setting = bench.Setting("pendulum-gravity", "Pendulum-v1", "gravity=2.0", str(path))
    monkeypatch.setitem(bench.SETTINGS, setting.name, setting)
    return setting


def roots(tmp_path) -> dict[str, str]:
    return dict(results_root=str(tmp_path / "results"), logs_root=str(tmp_path / "logs"))


def test_each_contender_trains_on_its_own_data(pendulum_setting, tmp_path):
    runs = {r.contender.name: r.spec for r in bench.plan("b", [pendulum_setting.name], list(bench.CONTENDERS), [0],
                                                          40, overrides=TINY, **roots(tmp_path))}
    assert (runs["h2o"].algo, runs["h2o"].dataset, runs["h2o"].n_timesteps, runs["h2o"].online_steps) == (
        "sim_h2o", pendulum_setting.dataset, 0, 40)
    assert runs["h2o"].hyperparams["sim"] == "gravity=2.0" and "dynamics_aware" not in runs["h2o"].hyperparams
    assert runs["naive_mix"].algo == "sim_h2o" and runs["naive_mix"].hyperparams["dynamics_aware"] is False
    assert (runs["sac_sim"].algo, runs["sac_sim"].env, runs["sac_sim"].dataset) == ("sim_sac", "Pendulum-v1", None)
    assert runs["sac_sim"].hyperparams["sim"] == "gravity=2.0"
    assert (runs["cql_real"].algo, runs["cql_real"].n_timesteps, runs["cql_real"].online_steps) == ("cql", 40, 0)
    assert "sim" not in runs["cql_real"].hyperparams
    assert len({spec.work_dir for spec in runs.values()}) == 4


def test_sim_method_trains_any_algorithm_in_the_variant_and_evaluates_in_the_real_env(tmp_path):
    spec = RunSpec(algo="sim_sac", env="Pendulum-v1", seed=0, n_timesteps=60, work_dir=str(tmp_path / "w"),
                   result_dir=str(tmp_path / "r"), hyperparams={**TINY_NETS, "sim": "gravity=2.0",
                                                                 "learning_starts": 0},
                   eval_freq=-1, final_eval_episodes=1, save_freq=-1)
    outcome = execute(spec)
    assert "error" not in outcome, outcome.get("error")
    record = json.loads((tmp_path / "r" / "run.json").read_text())
    assert record["sim"] == {"spec": "gravity=2", "parameters": {"gravity": 2.0}}
    assert record["config"]["env_wrapper"] == "sim2real._wrappers.SimVariant" and record["env"] == "Pendulum-v1"
    missing = execute(RunSpec(algo="sim_sac", env="Pendulum-v1", seed=0, n_timesteps=10, work_dir=str(tmp_path / "m"),
                              result_dir=str(tmp_path / "mr")))
    assert "-params sim_sac.sim:gravity=2.0" in missing["error"]


def test_benchmark_reports_the_four_contenders_and_resumes(pendulum_setting, tmp_path, monkeypatch):
    options = dict(overrides=TINY, workers=1, progress=False, eval_freq=20, eval_episodes=1, final_eval_episodes=1,
                   save_freq=-1, **roots(tmp_path))
    table = bench.run_benchmark("b", [pendulum_setting.name], list(bench.CONTENDERS), [0], 40, **options)
    text = open(table).read()
    assert "| pendulum-gravity | Pendulum-v1 | gravity=2.0 |" in text
    assert all(f"| pendulum-gravity | {name} |" in text for name in bench.CONTENDERS)  # per-seed rows
    assert "n=1" in text and "(so far)" not in text and re.search(r"best mean return on [01] of the 1 settings", text)
    assert "Failed runs" not in text
    out = tmp_path / "results" / "b"
    for name in ("learning_curves.png", "dynamics_ratio.png", "command.txt", "versions.json"):
        assert (out / name).stat().st_size > 0, name
    h2o = json.loads((out / "runs" / "pendulum-gravity" / "h2o" / "seed0" / "run.json").read_text())
    mix = json.loads((out / "runs" / "pendulum-gravity" / "naive_mix" / "seed0" / "run.json").read_text())
    cql = json.loads((out / "runs" / "pendulum-gravity" / "cql_real" / "seed0" / "run.json").read_text())
    assert h2o["num_timesteps"] == mix["num_timesteps"] == 40 and h2o["sim"]["parameters"] == {"gravity": 2.0}
    assert "dynamics_ratio" in h2o and "dynamics_ratio" not in mix
    assert cql["offline_steps"] == 40 and "sim" not in cql
    assert (out / "runs" / "pendulum-gravity" / "h2o" / "seed0" / "dynamics_ratio.npz").is_file()
    # A second call finds every run finished and only rewrites the report.
    monkeypatch.setattr(bench, "execute", lambda spec: pytest.fail(f"reran {spec.result_dir}"))
    assert bench.run_benchmark("b", [pendulum_setting.name], list(bench.CONTENDERS), [0], 40, notes="Budget: tiny.",
                               **options) == table
    assert "\nBudget: tiny.\n" in open(table).read()  # --notes goes into the report
    # With a second seed planned and not run, the setting is unfinished: its best is provisional, not counted.
    partial = bench.plan("b", [pendulum_setting.name], list(bench.CONTENDERS), [0, 1], 40, overrides=TINY,
                         **roots(tmp_path))
    text = open(bench.write_report("b", partial, results_root=roots(tmp_path)["results_root"])).read()
    assert "(so far) |" in text and "best mean return on 0 of the 0 settings" in text


def test_unknown_setting_names_the_known_ones(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--settings", "halfcheetah-gravty", "-n", "10"])
    error = capsys.readouterr().err
    assert "Did you mean halfcheetah-gravity" in error and "walker2d-friction" in error


def test_report_says_which_standard_deviation_it_shows(pendulum_setting, tmp_path):
    from rl.benchmark import STD_NOTE

    planned = bench.plan("b", [pendulum_setting.name], list(bench.CONTENDERS), [0], 40, **roots(tmp_path))
    text = open(bench.write_report("b", planned, results_root=roots(tmp_path)["results_root"])).read()
    assert STD_NOTE in text and "population standard deviation" in STD_NOTE
