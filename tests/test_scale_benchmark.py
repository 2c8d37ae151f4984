"""rl.scale_benchmark: a tiny measurement on the process pool writes its table; bad values are one line, exit 2."""

from __future__ import annotations

import json

from rl.scale_benchmark import main


def test_a_tiny_process_pool_measurement_writes_its_table(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["--algos", "a2c", "--envs", "CartPole-v1", "--seeds", "0", "-n", "64", "--workers", "1",
            "--backends", "process", "--trials", "0"]
    assert main(argv) == 0
    readme = (tmp_path / "results" / "scale" / "README.md").read_text()
    assert "| process |" in readme and "| 1/1 |" in readme
    (measurement,) = json.loads((tmp_path / "results" / "scale" / "measurements.json").read_text())["measurements"]
    assert measurement["finished"] == 1 and measurement["num_timesteps"]["a2c/CartPole-v1_seed0"] >= 64


def test_bad_values_are_one_line_exit_2(capsys):
    assert main(["-n", "2"]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
