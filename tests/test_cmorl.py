"""C-MORL's driver: budget split, a tiny two-stage run (reproducible, resumable, saved and loaded), bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from algos.cmorl import CMORL, main

DST = "deep-sea-treasure-v0"
TINY = {"n_steps": 32}
TINY_DRIVER = {"update_iter": 2, "eval_interval": 1, "eval_episodes": 1, "num_select": 2, "max_episode_steps": 40}
TINY_PARAMS = ["n_steps:32", "update_iter:2", "eval_interval:1", "eval_episodes:1", "num_select:2",
               "max_episode_steps:40"]
BUDGET = 2000


def test_the_budget_split_is_the_authors():
    """mo-hopper-2d's 1.5M steps with 1M for stage 1, 2048 steps x 4 envs per update, 5 selections:
    1_000_000 // 6 // 8192 = 20 updates per grid policy, 500_000 // 5 // 8192 // 2 = 6 per extension."""
    driver = CMORL("mo-hopper-2obj-v5", n_envs=4, num_select=5, init_fraction=2 / 3)
    assert driver.plan(1_500_000) == {"init_updates": 20, "extension_updates": 6}
    assert len(driver.weights_grid) == 6
    with pytest.raises(ValueError, match="too small.*pass -n >= 73728"):
        driver.plan(10_000)


def _front(run_dir: Path) -> list[tuple[str, list[float], str]]:
    saved = json.loads((run_dir / "front.json").read_text())
    return [(row["policy_id"], row["objectives"], row["stage"]) for row in saved["front"]]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("cmorl") / "run"
    driver = CMORL(DST, seed=3, n_envs=2, workers=1, run_dir=run_dir, moppo_kwargs=TINY, **TINY_DRIVER)
    driver.learn(BUDGET)
    driver.save(run_dir)
    return run_dir


def test_a_tiny_run_goes_through_both_stages_and_writes_its_outputs(tiny_run):
    saved = json.loads((tiny_run / "front.json").read_text())
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert [row["stage"] for row in metrics["history"]][:2] == ["init", "extension"]
    assert {task.name.split("-")[0] for task in (tiny_run / "tasks").iterdir()} == {"init", "ext"}
    assert (tiny_run / "front.png").stat().st_size > 0
    for row in saved["front"]:
        assert (tiny_run / row["file"]).is_file()
    assert metrics["cardinality"] == len(saved["front"])
    assert metrics["env_steps"] <= BUDGET


def test_the_same_seed_gives_the_same_front_also_with_parallel_workers(tiny_run, tmp_path):
    driver = CMORL(DST, seed=3, n_envs=2, workers=2, run_dir=tmp_path, moppo_kwargs=TINY, **TINY_DRIVER)
    driver.learn(BUDGET)
    driver.save(tmp_path)
    assert _front(tmp_path) == _front(tiny_run)


def test_save_and_load_give_back_the_front_and_loadable_policies(tiny_run):
    loaded = CMORL.load(tiny_run)
    assert [(row["policy_id"], row["objectives"]) for row in loaded.pareto_front()] == [
        (policy_id, objectives) for policy_id, objectives, _ in _front(tiny_run)]
    policy = loaded.policy(loaded.pareto_front()[0]["policy_id"])
    assert policy.n_objectives == 2
    assert policy.predict_raw(np.array([0.0, 0.0])).shape == ()


def test_a_killed_run_resumes_to_the_uninterrupted_result(tiny_run, tmp_path):
    """Kill the command line after the first stage-1 tasks finished; -i <run folder> finishes the same front."""
    args = [sys.executable, "-m", "algos.cmorl", "--env", DST, "-n", str(BUDGET), "--seed", "3", "--n-envs", "2",
            "--workers", "1", "-f", str(tmp_path), "--no-progress", "-params", *TINY_PARAMS]
    child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    run_dir = tmp_path / "cmorl" / f"{DST}_1"
    deadline = time.time() + 120
    while not (run_dir / "tasks" / "init-2.json").is_file() and child.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    assert not (run_dir / "front.json").exists(), "the run finished before it was killed"
    assert main(["-i", str(run_dir), "--workers", "1", "--no-progress"]) == 0
    assert _front(run_dir) == _front(tiny_run)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["inputs"]["seed"] == 3 and record["env_steps"] <= BUDGET


def test_a_resume_with_other_inputs_is_refused(tiny_run, tmp_path, capsys):
    args = ["--env", DST, "-n", str(BUDGET), "--seed", "3", "--n-envs", "2", "--workers", "1", "-f", str(tmp_path),
            "--no-progress", "-params", *TINY_PARAMS]
    run_dir = tmp_path / "cmorl" / f"{DST}_1"
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({"inputs": {
        "env": DST, "n_timesteps": BUDGET, "seed": 3, "n_envs": 2, "ref_point": None,
        "hyperparams": {"n_steps": 32, "update_iter": 2, "eval_interval": 1, "eval_episodes": 1, "num_select": 2,
                        "max_episode_steps": 40}}}))
    assert main([*args[:-7], "-i", str(run_dir), "--seed", "4"]) == 2
    line = capsys.readouterr().err.strip()
    assert "cannot resume" in line and "seed: 3 -> 4" in line and len(line.splitlines()) == 1


@pytest.mark.parametrize(("argv", "expected"), [
    (["--env", "Pendulum-v1"], "Pendulum-v1 has a scalar reward"),
    (["--env", "mo-hoper-2obj-v5"], "Unknown environment id"),
    (["--env", DST, "--ref-point", "0", "-25", "1"], "reference point has 3 values but deep-sea-treasure-v0 has 2"),
    (["--env", DST, "-params", "num_selct:3"], "Did you mean num_select"),
    (["--env", DST, "-params", "num_select:0"], "num_select must be a positive integer"),
    (["--env", DST, "-params", "beta:-1"], "beta must be a positive number"),
    (["--env", DST, "-n", "100"], "is too small"),
    (["--env", "mo-mountaincar-v0"], "has no reference point from the literature; pass one value per objective"),
    (["--env", "mo-lunar-lander-v3", "--ref-point", "0", "0", "0", "0"], "Box2D is not installed"),
    (["-i", "/nonexistent/run"], "not a C-MORL run folder"),
], ids=["single objective", "unknown env", "reference point length", "unknown key", "num_select 0", "negative beta",
        "budget too small", "no literature reference point", "missing env dependency", "resume of no run"])
def test_bad_input_is_one_line_exit_2_and_no_run_folder(argv, expected, tmp_path, capsys):
    assert main([*argv, "-f", str(tmp_path / "logs"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and expected in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "logs").exists() or not any((tmp_path / "logs").rglob("*"))


def test_three_objectives_get_pairwise_projections_and_a_3d_grid(tmp_path):
    from algos.cmorl import plot_front

    driver = CMORL("mo-hopper-v5", n_envs=1, moppo_kwargs={"n_steps": 16})
    assert driver.n_objectives == 3 and len(driver.weights_grid) == 21
    np.testing.assert_array_equal(driver.ref_point, [-100.0, -100.0, -100.0])
    front = [{"objectives": [1.0, 2.0, 3.0], "stage": "init"}, {"objectives": [3.0, 1.0, 2.0], "stage": "extension"}]
    path = plot_front(front, tmp_path / "front.png", title="3 objectives", env_id="mo-hopper-v5")
    import matplotlib.image

    height, width = matplotlib.image.imread(path).shape[:2]
    assert width > 2.5 * height  # three panels side by side: (0, 1), (0, 2), (1, 2)
