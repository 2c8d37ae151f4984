"""rl-zoo3's layout in a finished run folder: ``<env>/config.yml``, ``args.yml``, ``vecnormalize.pkl``.

The first tests read the files the way rl-zoo3 2.x does (``yaml.load(..., Loader=yaml.UnsafeLoader)``, the keys its
``get_saved_hyperparams``, ``enjoy.py`` and ``get_trained_models`` use); the last runs zoo's own functions and is
skipped where rl_zoo3 is not installed (it is not a dependency of the project).
"""

from __future__ import annotations

import importlib.util
from collections import OrderedDict
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import yaml
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from rl.zoo_layout import write_zoo_layout, zoo_env_name, zoo_stats_path

HYPERPARAMS = {"n_steps": 128, "normalize": True, "policy": "MlpPolicy", "n_timesteps": 256,
               "policy_kwargs": {"net_arch": [8], "activation_fn": "torch.nn.modules.activation.Tanh"},
               "env_kwargs": {"g": 9.81}}
ARGS = {"algo": "ppo", "env": "Pendulum-v1", "seed": 3, "n_timesteps": 256, "command": "python -m algos.ppo -n 256"}


def saved_vecnormalize(path: Path) -> VecNormalize:
    """Pendulum statistics after a few steps, saved as the runner saves them."""
    env = VecNormalize(DummyVecEnv([lambda: gym.make("Pendulum-v1")]))
    env.reset()
    for _ in range(20):
        env.step(np.zeros((1, 1), dtype=np.float32))
    env.save(str(path))
    return env


def zoo_read(path: Path) -> OrderedDict:
    with open(path) as handle:
        return yaml.load(handle, Loader=yaml.UnsafeLoader)


def run_folder(tmp_path: Path, env_id: str = "Pendulum-v1") -> Path:
    run = tmp_path / "logs" / "ppo" / f"{zoo_env_name(env_id)}_1"
    run.mkdir(parents=True)
    (run / f"{zoo_env_name(env_id)}.zip").write_bytes(b"model")
    return run


def test_files_are_where_and_as_zoo_reads_them(tmp_path):
    run = run_folder(tmp_path)
    saved_vecnormalize(run / "vecnormalize.pkl")
    (run / "config.yml").write_text("n_steps: 128\n")  # the runner's own record
    write_zoo_layout(str(run), "Pendulum-v1", HYPERPARAMS, ARGS, str(run / "vecnormalize.pkl"))
    stats = run / "Pendulum-v1"
    assert zoo_stats_path(run, "Pendulum-v1") == stats
    config = zoo_read(stats / "config.yml")
    assert isinstance(config, OrderedDict) and list(config) == sorted(HYPERPARAMS)  # zoo's sorted OrderedDict
    assert dict(config) == HYPERPARAMS and config["normalize"] is True
    args = zoo_read(stats / "args.yml")
    assert isinstance(args, OrderedDict) and list(args) == sorted(args)
    assert args["env"] == "Pendulum-v1" and args["env_kwargs"] is None and args["seed"] == 3  # what zoo reads
    assert (stats / "command.txt").read_text() == ARGS["command"]
    assert (stats / "vecnormalize.pkl").read_bytes() == (run / "vecnormalize.pkl").read_bytes()
    assert (run / "config.yml").read_text() == "n_steps: 128\n"  # the project's own record is left as it is


def test_normalize_follows_the_statistics(tmp_path):
    run = run_folder(tmp_path)
    (run / "vecnormalize.pkl").write_bytes(b"stats")
    # Statistics without normalize (e.g. started from a teacher's): zoo loads them only with normalize set.
    write_zoo_layout(str(run), "Pendulum-v1", {"normalize": False, "replay_buffer_class": None}, {},
                     str(run / "vecnormalize.pkl"))
    config = zoo_read(run / "Pendulum-v1" / "config.yml")
    assert config["normalize"] is True
    assert "replay_buffer_class" not in config  # enjoy.py's `"HerReplayBuffer" in None` would raise
    # normalize without statistics: zoo would refuse the folder, so this is an error now, not at load time.
    with pytest.raises(ValueError, match="no VecNormalize statistics"):
        write_zoo_layout(str(run), "Pendulum-v1", {"normalize": {"norm_reward": False}}, {}, None)
    write_zoo_layout(str(run), "Pendulum-v1", {"normalize": False}, {}, None)
    assert zoo_read(run / "Pendulum-v1" / "config.yml")["normalize"] is False
    with pytest.raises(FileNotFoundError, match="do not exist"):
        write_zoo_layout(str(run), "Pendulum-v1", {}, {}, str(run / "missing.pkl"))


def test_env_ids_zoo_renames_and_a_missing_model(tmp_path):
    assert zoo_env_name("ALE/Pong-v5") == "ALE-Pong-v5" and zoo_env_name("my_envs:Maze-v0") == "Maze-v0"
    run = tmp_path / "run"
    (run / "ALE").mkdir(parents=True)
    (run / "ALE" / "Pong-v5.zip").write_bytes(b"model")  # the runner's f"{env}.zip" for an id with a slash
    write_zoo_layout(str(run), "ALE/Pong-v5", {}, {"env": None}, None)
    assert (run / "ALE-Pong-v5.zip").read_bytes() == b"model"
    assert zoo_read(run / "ALE-Pong-v5" / "args.yml")["env"] == "ALE/Pong-v5"  # the gym id, as zoo records it
    with pytest.raises(FileNotFoundError, match="No final model"):
        write_zoo_layout(str(tmp_path / "empty"), "Pendulum-v1", {}, {}, None)


@pytest.mark.skipif(importlib.util.find_spec("rl_zoo3") is None, reason="rl_zoo3 is not installed")
def test_rl_zoo3_loads_the_folder(tmp_path):
    from huggingface_sb3 import EnvironmentName
    from rl_zoo3.utils import create_test_env, get_model_path, get_saved_hyperparams, get_trained_models

    run = run_folder(tmp_path)
    saved = saved_vecnormalize(run / "vecnormalize.pkl")
    write_zoo_layout(str(run), "Pendulum-v1", {k: v for k, v in HYPERPARAMS.items() if k != "env_kwargs"}, ARGS,
                     str(run / "vecnormalize.pkl"))
    _, model_path, log_path = get_model_path(1, str(tmp_path / "logs"), "ppo", EnvironmentName("Pendulum-v1"))
    assert Path(model_path) == run / "Pendulum-v1.zip"
    hyperparams, stats_path = get_saved_hyperparams(str(Path(log_path) / "Pendulum-v1"), test_mode=True)
    assert stats_path is not None and hyperparams["normalize"] is True and hyperparams["n_steps"] == 128
    env = create_test_env("Pendulum-v1", n_envs=1, stats_path=stats_path, seed=0, hyperparams=hyperparams)
    assert isinstance(env, VecNormalize) and not env.training
    np.testing.assert_array_equal(env.obs_rms.mean, saved.obs_rms.mean)
    assert set(get_trained_models(str(tmp_path / "logs")).values()) == {("ppo", "Pendulum-v1")}
