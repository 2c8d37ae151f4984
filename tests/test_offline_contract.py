"""The SB3 contract and the offline core (rl.offline) for every offline algorithm: IQL, CQL, AWAC, TD3+BC.

Each test runs a few dozen gradient steps with tiny networks on a tiny dataset from a real env, and
asserts what a user of SB3 relies on: the dataset in the replay buffer as SB3 stores it, offline
training through callbacks and the progress bar, offline-to-online continuity, save/load of every
network and optimizer, predict / evaluate_policy, seeding, the runner and the command line.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch as th
from offline_data import random_dataset, write_hdf5
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.save_util import load_from_zip_file

from rl.cli import main
from rl.offline import (
    DatasetMismatchError,
    NoOfflineDataError,
    StandardizedObservations,
    episode_returns,
    observation_statistics,
)
from rl.registry import ALGORITHMS

# OPPO is offline too, but learns from windows of whole episodes (no replay buffer) and has no online phase: its
# SB3 contract tests are in tests/test_oppo.py.
OFFLINE = sorted(name for name, spec in ALGORITHMS.items() if spec.offline and name != "oppo")
ENV_ID = "Pendulum-v1"
TINY = dict(policy_kwargs=dict(net_arch=[16, 16]), batch_size=32, buffer_size=2_000, device="cpu")


def _available(name: str) -> bool:
    try:
        ALGORITHMS[name].load_class()
    except ImportError:
        return False
    return True


ALGOS = [
    pytest.param(name, marks=pytest.mark.skipif(not _available(name), reason=f"{name} not built")) for name in OFFLINE
]


@pytest.fixture(scope="module")
def dataset():
    return random_dataset(ENV_ID, n=600)


def make(name: str, dataset, seed: int = 0, env=None, **kwargs):
    algo_class = ALGORITHMS[name].load_class()
    env = env if env is not None else make_vec_env(ENV_ID, n_envs=1, seed=seed)
    return algo_class("MlpPolicy", env, dataset=dataset, seed=seed, **{**TINY, **kwargs})


def parameters(model) -> dict[str, np.ndarray]:
    return {
        f"{group}.{key}": value.detach().cpu().numpy().copy()
        for group, state in model.get_parameters().items()
        if group != "__optimizer_states__"
        for key, value in state.items()
        if isinstance(value, th.Tensor)
    }


def assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_every_offline_algorithm_is_registered():
    assert {"iql", "cql", "awac", "td3_bc"} <= set(OFFLINE)


@pytest.mark.parametrize("name", ALGOS)
def test_dataset_fills_the_replay_buffer_as_sb3_stores_it(name, dataset):
    model = make(name, dataset)
    buffer, n = model.replay_buffer, len(dataset)
    assert buffer.size() == n
    np.testing.assert_allclose(buffer.observations[:n, 0], dataset.observations, rtol=1e-6)
    np.testing.assert_allclose(buffer.next_observations[:n, 0], dataset.next_observations, rtol=1e-6)
    # Pendulum's actions lie in [-2, 2]; SB3 stores them scaled to [-1, 1].
    np.testing.assert_allclose(buffer.actions[:n, 0], dataset.actions / 2.0, atol=1e-6)
    np.testing.assert_array_equal(buffer.dones[:n, 0], dataset.terminals)
    if model.normalize_observations:
        mean, std = observation_statistics(dataset.observations)
        normalizers = [m for m in model.policy.modules() if isinstance(m, StandardizedObservations)]
        assert normalizers
        for module in normalizers:
            np.testing.assert_allclose(module.mean.numpy(), mean)
            np.testing.assert_allclose(module.std.numpy(), std)


class CountingCallback(BaseCallback):
    def __init__(self) -> None:
        super().__init__()
        self.calls = {"training_start": 0, "rollout_start": 0, "step": 0, "rollout_end": 0, "training_end": 0}

    def _on_training_start(self) -> None:
        self.calls["training_start"] += 1

    def _on_rollout_start(self) -> None:
        self.calls["rollout_start"] += 1

    def _on_step(self) -> bool:
        self.calls["step"] += 1
        return self.num_timesteps < 30  # stop early: training must honour it

    def _on_rollout_end(self) -> None:
        self.calls["rollout_end"] += 1

    def _on_training_end(self) -> None:
        self.calls["training_end"] += 1


@pytest.mark.parametrize("name", ALGOS)
def test_learn_offline_drives_callbacks_and_stops_when_asked(name, dataset):
    model = make(name, dataset)
    before = parameters(model)
    callback = CountingCallback()
    model.learn_offline(50, callback=callback, progress_bar=True)
    assert model.num_timesteps == 30 and model.offline_updates == 30 and model._n_updates >= 30
    expected = {"training_start": 1, "rollout_start": 30, "step": 30, "rollout_end": 29, "training_end": 1}
    assert callback.calls == expected
    after = parameters(model)
    assert any(not np.array_equal(before[k], after[k]) for k in before), "no parameter changed"
    assert model.replay_buffer.size() == len(dataset), "offline training must not touch the env"


@pytest.mark.parametrize("name", ALGOS)
def test_eval_callback_evaluates_every_n_updates_offline(name, dataset, tmp_path):
    model = make(name, dataset)
    eval_env = make_vec_env(ENV_ID, n_envs=1, seed=5)
    eval_callback = EvalCallback(eval_env, eval_freq=20, n_eval_episodes=1, log_path=str(tmp_path), verbose=0)
    model.learn_offline(40, callback=eval_callback)
    assert eval_callback.evaluations_timesteps == [20, 40]


@pytest.mark.parametrize("name", ALGOS)
def test_offline_then_online_continues_in_the_same_buffer(name, dataset):
    model = make(name, dataset)
    model.learn_offline(20)
    model.learn(40, reset_num_timesteps=False)
    assert model.num_timesteps == 60
    assert model.offline_updates == 20
    assert model.replay_buffer.size() == len(dataset) + 40
    assert not model.replay_buffer_is_dataset


@pytest.mark.parametrize("name", ALGOS)
def test_save_load_keeps_every_network_optimizer_and_statistic(name, dataset, tmp_path):
    model = make(name, dataset)
    model.learn_offline(20)
    model.save(tmp_path / "model.zip")
    algo_class = type(model)
    loaded = algo_class.load(tmp_path / "model.zip", device="cpu")  # no env
    assert_same(parameters(model), parameters(loaded))
    saved, restored = model.get_parameters(), loaded.get_parameters()
    assert saved.keys() == restored.keys()
    for group in saved:
        if group.endswith("optimizer") or "optim" in group:
            # An optimizer that has stepped keeps its Adam moments (one that has not, e.g. H2O's
            # discriminators before any sim data, has none to keep).
            assert bool(restored[group]["state"]) == bool(saved[group]["state"]), f"{group} lost its Adam moments"
            assert any(saved[g]["state"] for g in saved if "optim" in g), "no optimizer stepped"
            for key, state in saved[group]["state"].items():
                for field, value in state.items():
                    if isinstance(value, th.Tensor):
                        np.testing.assert_array_equal(value.numpy(), restored[group]["state"][key][field].numpy())
    observations = dataset.observations[:8]
    np.testing.assert_allclose(
        model.predict(observations, deterministic=True)[0], loaded.predict(observations, deterministic=True)[0]
    )
    assert loaded.offline_updates == 20


@pytest.mark.parametrize("name", ALGOS)
def test_loaded_model_reads_its_hdf5_dataset_again_and_trains_without_env(name, dataset, tmp_path):
    path = write_hdf5(dataset, tmp_path / "tiny.hdf5")
    model = make(name, str(path))
    assert model.dataset_spec == str(path)
    model.learn_offline(10)
    model.save(tmp_path / "model.zip")
    loaded = type(model).load(tmp_path / "model.zip", device="cpu")
    assert loaded.replay_buffer.size() == model.replay_buffer.size() >= len(dataset) - 1
    loaded.learn_offline(10, reset_num_timesteps=False)
    assert loaded.num_timesteps == 20


@pytest.mark.parametrize("name", ALGOS)
def test_same_seed_same_training(name, dataset):
    runs = []
    for _ in range(2):
        model = make(name, dataset, seed=3)
        model.learn_offline(25)
        runs.append(parameters(model))
    assert_same(*runs)
    other = make(name, dataset, seed=4)
    other.learn_offline(25)
    assert any(not np.array_equal(runs[0][k], v) for k, v in parameters(other).items())


@pytest.mark.parametrize("name", ALGOS)
def test_predict_and_evaluate_policy_on_raw_observations(name, dataset):
    model = make(name, dataset)
    model.learn_offline(10)
    env = make_vec_env(ENV_ID, n_envs=2, seed=1)
    actions, _ = model.predict(env.reset(), deterministic=True)
    assert actions.shape == (2, 1) and np.all(np.abs(actions) <= 2.0)
    mean, _ = evaluate_policy(model, env, n_eval_episodes=2)
    assert np.isfinite(mean)
    params = model.get_parameters()
    fresh = make(name, dataset, seed=9)
    fresh.set_parameters(params, exact_match=True)
    assert_same(parameters(model), parameters(fresh))


@pytest.mark.parametrize("name", ALGOS)
def test_trains_on_mujoco_float64_observations(name):
    hopper = random_dataset("Hopper-v4", n=300)
    model = make(name, hopper, env=make_vec_env("Hopper-v4", n_envs=1, seed=0))
    assert model.replay_buffer.observations.dtype == np.float64
    model.learn_offline(3)
    model.learn(3, reset_num_timesteps=False)
    assert model.num_timesteps == 6


@pytest.mark.parametrize("name", ALGOS)
def test_dataset_from_another_env_is_refused(name):
    hopper = random_dataset("Hopper-v4", n=50)
    with pytest.raises(DatasetMismatchError, match="Hopper-v4"):
        make(name, hopper)


@pytest.mark.parametrize("name", ALGOS)
def test_offline_training_without_data_says_how_to_add_it(name):
    model = make(name, None)
    with pytest.raises(NoOfflineDataError, match="load_offline_data"):
        model.learn_offline(5)


def test_episode_returns_split_at_terminals_and_discontinuities():
    data = random_dataset(ENV_ID, n=250, max_episode_steps=100)  # episodes of 100, 100 and 50 steps
    returns = episode_returns(data)
    assert len(returns) == 3
    expected = [data.rewards[:100].sum(), data.rewards[100:200].sum(), data.rewards[200:].sum()]
    np.testing.assert_allclose(returns, expected, rtol=1e-5)


@pytest.mark.parametrize("name", ALGOS)
def test_cli_trains_offline_then_online_and_reports_the_normalised_score(name, dataset, tmp_path, capsys):
    path = write_hdf5(dataset, tmp_path / "tiny.hdf5")
    hyperparams = ["policy_kwargs:dict(net_arch=[16,16])", "batch_size:32", "buffer_size:2000"]
    argv = ["--dataset", str(path), "-n", "40", "--online-steps", "30", "--eval-freq", "20", "--eval-episodes", "1",
            "--final-eval-episodes", "1", "--save-freq", "20", "-f", str(tmp_path / "logs"), "--no-progress",
            "-params", *hyperparams]
    assert main(name, argv) == 0
    run_dir = tmp_path / "logs" / name / f"{ENV_ID}_1"
    record = json.loads((run_dir / "run.json").read_text())
    assert record["offline_steps"] == 40 and record["online_steps"] == 30 and record["num_timesteps"] == 70
    assert record["env"] == ENV_ID
    score = record["final_normalized_score"]
    assert score == pytest.approx(100 * (record["final_evaluation"]["mean_reward"] + 1500) / 1500)
    assert "D4RL normalised score" in capsys.readouterr().out
    assert (run_dir / "learning_curve.png").is_file()
    np.testing.assert_array_equal(np.load(run_dir / "evaluations.npz")["timesteps"], [20, 40, 60])


def test_checkpoint_in_the_offline_phase_skips_the_dataset_and_resumes(dataset, tmp_path):
    name = next(n for n in ("td3_bc", *OFFLINE) if _available(n))
    path = write_hdf5(dataset, tmp_path / "tiny.hdf5")
    common = ["--dataset", str(path), "--eval-freq", "-1", "--final-eval-episodes", "1", "--save-freq", "20",
              "--no-progress", "-params", "policy_kwargs:dict(net_arch=[16,16])", "batch_size:32", "buffer_size:2000"]
    run_dir = tmp_path / "run"
    from rl.runner import RunConfig, train

    config = RunConfig(algo=name, env=None, dataset=str(path), offline_steps=30, n_timesteps=0, run_dir=str(run_dir),
                       eval_freq=-1, final_eval_episodes=1, save_freq=20, progress=False,
                       hyperparams=dict(policy_kwargs=dict(net_arch=[16, 16]), batch_size=32, buffer_size=2000))
    train(config)
    checkpoints = sorted((run_dir / "checkpoints").iterdir())
    assert not any((c / "replay_buffer.pkl").exists() for c in checkpoints), "the dataset is re-read, not copied"
    # Resume in place with a longer budget: continues from the last checkpoint, offline then online.
    assert main(name, ["-i", str(run_dir), "-n", "40", "--online-steps", "10", *common]) == 0
    record = json.loads((run_dir / "run.json").read_text())
    assert record["num_timesteps"] == 50 and record["resumed_from"]


@pytest.mark.parametrize("argv, message", [
    (["--env", ENV_ID, "-n", "5"], "--dataset"),
])
def test_offline_cli_requires_a_dataset(argv, message, capsys):
    with pytest.raises(SystemExit):
        main("td3_bc", argv)
    assert message in capsys.readouterr().err


def test_online_algorithm_refuses_a_dataset(capsys, dataset, tmp_path):
    path = write_hdf5(dataset, tmp_path / "tiny.hdf5")
    assert main(None, ["--algo", "sac", "--env", ENV_ID, "--dataset", str(path), "-n", "10"]) == 2
    assert "does not train from a dataset" in capsys.readouterr().err


def test_missing_dataset_says_how_to_make_it(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    assert main("td3_bc", ["--dataset", "hopper-medium-v2", "-n", "5"]) == 2
    assert "python -m rl.datasets make hopper-medium-v2" in capsys.readouterr().err


@pytest.mark.parametrize("name", ALGOS)
def test_the_device_reaches_sb3_and_the_zip_pickles_no_network(name, dataset, tmp_path, requested_devices):
    """The device request is handed to SB3 (on a CPU-only machine "auto" and "cpu" give the same device, so the
    request itself is checked), and every network is saved in the policy's state dict only, not pickled again with
    the model's attributes (a target critic has no optimizer by which SB3 would leave it out)."""
    model = make(name, dataset)
    assert requested_devices == ["cpu"]
    model.save(tmp_path / "model.zip")
    data, params, _ = load_from_zip_file(tmp_path / "model.zip", device="cpu")
    assert not [key for key, value in data.items() if isinstance(value, th.nn.Module)]
    assert "policy" in params
