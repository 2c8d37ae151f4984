"""The shared runner end to end on a tiny budget: run folder, run record, resume with -i."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml
from stable_baselines3.common.monitor import load_results

from rl.checkpoint import list_checkpoints
from rl.cli import main
from rl.runner import RunConfig, next_run_dir, train

TINY_MDPO = ["n_steps:128", "policy_kwargs:dict(net_arch=[16])", "vf_batch_size:64"]
TINY_FLAGS = ["--eval-freq", "128", "--eval-episodes", "1", "--final-eval-episodes", "2", "--save-freq", "128",
              "--no-progress", "--verbose", "0"]


def _run(tmp_path, *extra):
    return main("mdpo", ["--env", "Pendulum-v1", "-f", str(tmp_path), "--seed", "3", "-params", *TINY_MDPO,
                         *TINY_FLAGS, *extra])


def test_cli_writes_a_complete_run_folder(tmp_path):
    assert _run(tmp_path, "-n", "256") == 0
    run_dir = tmp_path / "mdpo" / "Pendulum-v1_1"
    for name in ("Pendulum-v1.zip", "vecnormalize.pkl", "0.monitor.csv", "evaluations.npz", "learning_curve.png",
                 "run.json", "config.yml", "run_inputs.json",
                 "Pendulum-v1/config.yml", "Pendulum-v1/args.yml", "Pendulum-v1/vecnormalize.pkl"):  # rl-zoo3's
        assert (run_dir / name).is_file(), name
    record = json.loads((run_dir / "run.json").read_text())
    assert record["seed"] == 3 and record["num_timesteps"] == 256
    assert "algos.mdpo" in record["command"] and "--env Pendulum-v1" in record["command"]
    assert record["hyperparams"]["n_steps"] == 128 and record["hyperparams"]["sgd_steps"] == 10
    assert record["versions"]["stable-baselines3"] and record["versions"]["torch"]
    assert len(record["final_evaluation"]["episode_rewards"]) == 2
    assert np.load(run_dir / "evaluations.npz")["timesteps"].tolist() == [128, 256]
    # A second run goes to the next folder, as in rl-zoo3.
    assert next_run_dir(str(tmp_path), "mdpo", "Pendulum-v1").endswith("Pendulum-v1_2")


def test_resume_an_interrupted_run_in_place(tmp_path):
    assert _run(tmp_path, "-n", "256") == 0
    run_dir = tmp_path / "mdpo" / "Pendulum-v1_1"
    # Simulate a run killed after its first checkpoint: drop the later checkpoint and the final record.
    checkpoints = list_checkpoints(run_dir / "checkpoints")
    assert [p.name for p in checkpoints] == ["step_000000000128", "step_000000000256"]
    shutil.rmtree(checkpoints[-1])
    os.remove(run_dir / "run.json")

    assert _run(tmp_path, "-n", "384", "-i", str(run_dir)) == 0
    record = json.loads((run_dir / "run.json").read_text())
    assert record["resumed_from"].endswith("step_000000000128")
    assert record["num_timesteps"] == 384  # continued from 128 up to the total
    assert not (tmp_path / "mdpo" / "Pendulum-v1_2").exists()  # resumed in place
    assert np.load(run_dir / "evaluations.npz")["timesteps"].tolist() == [128, 256, 384]
    # The same run uninterrupted: the episode that ended at step 200 is in the monitor once, as there.
    assert _run(tmp_path / "uninterrupted", "-n", "384") == 0
    reference = tmp_path / "uninterrupted" / "mdpo" / "Pendulum-v1_1"
    assert load_results(str(run_dir))[["r", "l"]].equals(load_results(str(reference))[["r", "l"]])
    assert record["final_evaluation"] == json.loads((reference / "run.json").read_text())["final_evaluation"]


def test_resuming_in_place_with_another_seed_is_refused(tmp_path, capsys):
    assert _run(tmp_path, "-n", "256") == 0
    run_dir = tmp_path / "mdpo" / "Pendulum-v1_1"
    shutil.rmtree(list_checkpoints(run_dir / "checkpoints")[-1])
    os.remove(run_dir / "run.json")

    assert _run(tmp_path, "-n", "384", "-i", str(run_dir), "--seed", "4") == 2
    error = capsys.readouterr().err
    assert "holds a run with seed 3, not 4" in error and "--seed 3" in error
    assert not (run_dir / "run.json").exists()  # nothing trained
    assert _run(tmp_path, "-n", "384", "-i", str(run_dir)) == 0  # the run's own seed resumes it


def test_continue_from_a_model_file_into_a_new_run(tmp_path):
    assert _run(tmp_path, "-n", "128") == 0
    model = tmp_path / "mdpo" / "Pendulum-v1_1" / "Pendulum-v1.zip"
    assert _run(tmp_path, "-n", "128", "-i", str(model)) == 0
    record = json.loads((tmp_path / "mdpo" / "Pendulum-v1_2" / "run.json").read_text())
    assert record["num_timesteps"] == 256  # rl-zoo3 semantics: -n more steps, timestep count kept


def test_continuing_a_model_applies_and_records_the_overrides(tmp_path):
    """rl-zoo3's ``-i model.zip -params ...``: the loaded model trains with the new values, and the records say
    what trained (the model's own values for the keys not overridden, not the YAML defaults)."""
    assert main("mdpo", ["--env", "Pendulum-v1", "-f", str(tmp_path), "-n", "128", "-params", *TINY_MDPO,
                         "sgd_steps:5", *TINY_FLAGS]) == 0
    model = tmp_path / "mdpo" / "Pendulum-v1_1" / "Pendulum-v1.zip"
    assert main("mdpo", ["--env", "Pendulum-v1", "-f", str(tmp_path), "-n", "128", "-i", str(model),
                         "-params", "learning_rate:0.1", *TINY_FLAGS]) == 0
    run_dir = tmp_path / "mdpo" / "Pendulum-v1_2"
    from algos.mdpo import MDPO

    trained = MDPO.load(run_dir / "Pendulum-v1.zip")
    assert trained.learning_rate == 0.1 and trained.sgd_steps == 5
    for recorded in (json.loads((run_dir / "run.json").read_text())["hyperparams"],
                     yaml.safe_load((run_dir / "config.yml").read_text())):
        assert recorded["learning_rate"] == 0.1 and recorded["sgd_steps"] == 5  # the YAML default is 10
        assert recorded["n_timesteps"] == 128  # -n, not the YAML's budget


def test_off_policy_resume_restores_the_replay_buffer(tmp_path):
    config = RunConfig(
        algo="mdpo_off", env="Pendulum-v1", n_timesteps=300, seed=1, run_dir=str(tmp_path / "run"),
        eval_freq=-1, final_eval_episodes=1, save_freq=150, progress=False, verbose=0,
        hyperparams={"learning_starts": 100, "buffer_size": 1000, "policy_kwargs": {"net_arch": [16]}},
    )
    train(config)
    episodes = len(load_results(str(tmp_path / "run")))  # an explicit run folder gets a readable monitor file
    assert episodes == 1
    first = list_checkpoints(tmp_path / "run" / "checkpoints")[0]
    assert (first / "replay_buffer.pkl").is_file()
    shutil.rmtree(list_checkpoints(tmp_path / "run" / "checkpoints")[-1])
    config.n_timesteps = 400
    result = train(config)
    assert result.model.num_timesteps == 400
    assert result.model.replay_buffer.size() == 400  # 150 restored + 250 new transitions
    assert len(load_results(str(tmp_path / "run"))) == 2  # the resumed run appended its episode


def test_same_seed_same_result(tmp_path):
    results = []
    for name in ("a", "b"):
        config = RunConfig(
            algo="mdpo", env="Pendulum-v1", n_timesteps=256, seed=7, run_dir=str(tmp_path / name), eval_freq=-1,
            final_eval_episodes=2, save_freq=-1, progress=False, verbose=0,
            hyperparams={"n_steps": 128, "policy_kwargs": {"net_arch": [16]}, "vf_batch_size": 64},
        )
        results.append(train(config).evaluation.episode_rewards)
    assert results[0] == results[1]


def _tiny_mdpo(tmp_path, **kwargs) -> RunConfig:
    return RunConfig(
        algo="mdpo", env="Pendulum-v1", n_timesteps=512, seed=7, run_dir=str(tmp_path / "run"), eval_freq=128,
        eval_episodes=1, final_eval_episodes=1, save_freq=-1, progress=False, verbose=0,
        hyperparams={"n_steps": 128, "policy_kwargs": {"net_arch": [16]}, "vf_batch_size": 64}, **kwargs,
    )


def test_stop_reward_ends_training_at_the_first_evaluation_that_reaches_it(tmp_path):
    result = train(_tiny_mdpo(tmp_path, stop_reward=-1e9))  # any return reaches it
    assert result.model.num_timesteps == 128
    assert list(np.load(tmp_path / "run" / "evaluations.npz")["timesteps"]) == [128]


def test_best_model_is_the_best_periodic_evaluation(tmp_path):

    from algos.mdpo import MDPO

    train(_tiny_mdpo(tmp_path, save_best_model=True))
    evaluations = np.load(tmp_path / "run" / "evaluations.npz")
    best = int(np.argmax(evaluations["results"].mean(axis=1)))
    best_model = MDPO.load(tmp_path / "run" / "best_model.zip")
    assert best_model.num_timesteps == evaluations["timesteps"][best]


@pytest.mark.timeout(120)
def test_python_dash_m_entry_point(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "algos.mdpo", "--env", "Pendulum-v1", "-n", "128", "-f", str(tmp_path),
         "-params", *TINY_MDPO, *TINY_FLAGS],
        capture_output=True, text=True, timeout=110,
    )
    assert completed.returncode == 0, completed.stderr
    assert (tmp_path / "mdpo" / "Pendulum-v1_1" / "Pendulum-v1.zip").is_file()
