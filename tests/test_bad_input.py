"""Bad input on the command line: one line on stderr naming the problem, exit status 2, no traceback, and no
run folder left behind. Table-driven: each row is one command a user could type."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from stable_baselines3 import PPO, SAC

from tests.offline_data import random_dataset, write_hdf5

QUIET = ["--no-progress", "--verbose", "0", "--eval-freq", "-1", "--final-eval-episodes", "1", "-n", "50"]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("inputs")
    data = random_dataset("Pendulum-v1", n=200)
    hopper = random_dataset("Hopper-v4", n=200, max_episode_steps=50)
    SAC("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(net_arch=[8]), buffer_size=10).save(folder / "sac_pendulum.zip")
    PPO("MlpPolicy", "HalfCheetah-v4", policy_kwargs=dict(net_arch=[8]), n_steps=64).save(folder / "ppo_cheetah.zip")
    return {
        "pendulum_data": str(write_hdf5(data, folder / "pendulum.hdf5")),
        "hopper_data": str(write_hdf5(hopper, folder / "hopper.hdf5")),
        "sac_pendulum": str(folder / "sac_pendulum.zip"),
        "ppo_cheetah": str(folder / "ppo_cheetah.zip"),
    }


# (id, module whose main() runs, arguments with {placeholders} from `files`, text the one line must contain)
CASES = [
    ("unknown env", "rl.cli", ["--algo", "sac", "--env", "HalfCheetah-v9"], "Unknown environment id"),
    ("negative steps", "rl.cli", ["--algo", "sac", "--env", "Pendulum-v1", "-n", "-5"], "Steps must be >= 0"),
    ("iql expectile out of range", "rl.cli",
     ["--algo", "iql", "--dataset", "{pendulum_data}", "-params", "expectile:1.5"], "expectile"),
    ("awac negative lambda", "rl.cli",
     ["--algo", "awac", "--dataset", "{pendulum_data}", "-params", "awac_lambda:-1"], "awac_lambda"),
    ("h2o sim_ratio above 1", "algos.h2o",
     ["--dataset", "{pendulum_data}", "-params", "sim_ratio:1.5"], "sim_ratio"),
    ("subpo no episodes per update", "rl.cli",
     ["--algo", "subpo", "--env", "Coverage-Constant-v0", "-params", "episodes_per_update:0"], "episodes_per_update"),
    ("subpo one episode per update", "rl.cli",
     ["--algo", "subpo", "--env", "Coverage-Constant-v0", "-params", "episodes_per_update:1"],
     "every advantage is zero"),
    ("subpo on an env without the submodular interface", "rl.cli",
     ["--algo", "subpo", "--env", "CartPole-v1"], "Coverage-Constant-v0, Coverage-Constant-History-v0"),
    ("subpo misspelt reward", "rl.cli",
     ["--algo", "subpo", "--env", "Coverage-Constant-v0", "-params", "reward:'modulr'"], "modulr"),
    ("HER with a warm-up shorter than an episode", "rl.cli",
     ["--algo", "sac", "--env", "PandaReach-v3", "-params", "replay_buffer_class:HerReplayBuffer",
      "learning_starts:10"], "learning_starts:50 or more"),
    ("continue a SAC model as PPO", "rl.cli",
     ["--algo", "ppo", "--env", "Pendulum-v1", "-i", "{sac_pendulum}"], "another algorithm"),
    ("continue a HalfCheetah model on Hopper", "rl.cli",
     ["--algo", "ppo", "--env", "Hopper-v4", "-i", "{ppo_cheetah}"], "does not fit"),
    ("unknown key when continuing a model", "rl.cli",
     ["--algo", "sac", "--env", "Pendulum-v1", "-i", "{sac_pendulum}", "-params", "dataset:x"],
     "Unknown hyperparameter"),
    ("dataset of another env", "rl.cli",
     ["--algo", "iql", "--dataset", "{hopper_data}", "--env", "Pendulum-v1"], "Hopper-v4"),
    ("s3rl snapshot interval 0", "algos.snapshot",
     ["--algo", "sac", "--env", "HalfCheetah-v4", "--teacher", "{sac_pendulum}", "--teacher-algo", "sac",
      "--snapshot-interval", "0"],
     "interval"),
    ("s3rl no student steps", "algos.snapshot",
     ["--algo", "sac", "--env", "HalfCheetah-v4", "--teacher", "{sac_pendulum}", "--max-student-steps", "0"],
     "--max-student-steps must be"),
    ("s3rl zero clusters", "algos.snapshot",
     ["--algo", "sac", "--env", "HalfCheetah-v4", "--teacher", "{sac_pendulum}", "--clusters", "0"],
     "--clusters must be an integer >= 1, got 0"),
]


def _main(module: str):
    imported = importlib.import_module(module)
    return (lambda argv: imported.main(None, argv)) if module == "rl.cli" else imported.main


@pytest.mark.parametrize(("module", "argv", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_no_run_folder(module, argv, expected, files, tmp_path, capsys):
    argv = [arg.format(**files) for arg in argv]
    logs = tmp_path / "logs"
    assert _main(module)([*QUIET, *argv, "-f", str(logs)]) == 2  # the row's own -n comes last and wins
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert expected in lines[0]
    assert "Traceback" not in captured.err
    leftover = [p for p in logs.rglob("*")] if logs.exists() else []
    assert not [p for p in leftover if p.is_file()], f"a failed start left {leftover}"


def test_a_failed_start_keeps_an_existing_run_folder(tmp_path, capsys):
    """Only a folder the failed start made is removed: a bad resume of a real run must not delete it."""
    from rl.cli import main

    assert main(None, ["--algo", "sac", "--env", "Pendulum-v1", *QUIET, "--save-freq", "20", "-f", str(tmp_path),
                       "-params", "learning_starts:10", "policy_kwargs:dict(net_arch=[8])"]) == 0
    run_dir = Path(tmp_path) / "sac" / "Pendulum-v1_1"
    (run_dir / "run.json").unlink()
    assert main(None, ["--algo", "sac", "--env", "Pendulum-v1", *QUIET, "-i", str(run_dir), "--seed", "9"]) == 2
    assert run_dir.is_dir() and (run_dir / "checkpoints").is_dir()
    capsys.readouterr()


def test_an_override_the_saved_model_does_not_store_is_refused(files):
    """Setting it on load would change nothing: refuse rather than record a value that did not train."""
    from rl.checkpoint import CheckpointError, load_model

    with pytest.raises(CheckpointError, match="Cannot change not_a_setting"):
        load_model(SAC, files["sac_pendulum"], overrides={"not_a_setting": 1})


@pytest.mark.parametrize(("argv", "expected"), [
    (["--epochs", "0"], "epochs: must be an integer >= 1"),
    (["--hidden"], "needs at least one hidden size"),
    (["--policy", "lstm", "--hidden"], "needs at least one hidden size"),
], ids=["no epochs", "mlp without sizes", "lstm without sizes"])
def test_tsddr_bad_settings_are_one_line_and_leave_no_run_folder(argv, expected, tmp_path, capsys):
    from algos.tsddr_cli import main

    assert main([*argv, "-f", str(tmp_path / "logs"), "--no-progress"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0]
    assert not (tmp_path / "logs").exists() or not any((tmp_path / "logs").rglob("*.json"))


def test_tsddr_resume_from_a_truncated_checkpoint_is_one_line(tmp_path, capsys):
    from algos.tsddr_cli import main

    argv = ["--epochs", "1", "--batches-per-epoch", "2", "--hidden", "8", "-f", str(tmp_path), "--no-progress"]
    assert main(argv) == 0
    run_dir = next((tmp_path / "tsddr").iterdir())
    checkpoint = run_dir / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 3])
    capsys.readouterr()
    assert main(["--epochs", "2", "--resume", str(run_dir), "--no-progress"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "truncated or not a TS-DDR checkpoint" in lines[0]
