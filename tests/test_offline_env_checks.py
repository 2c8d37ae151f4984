"""Envs an offline algorithm cannot use are refused up front, in one line naming the problem and the fix: a
VecNormalize wrapper (it would rescale and clip the dataset with the env's running statistics), several envs
(the dataset fills a one-env replay buffer); and a dataset of another env names the env it was collected on."""

from __future__ import annotations

import numpy as np
import pytest
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

from rl.cli import USER_ERRORS, main
from rl.datasets import load_dataset
from rl.offline import DatasetMismatchError, OfflineEnvError
from rl.registry import ALGORITHMS
from tests.offline_data import random_dataset, write_hdf5

ENV_ID = "Pendulum-v1"
TINY = dict(policy_kwargs=dict(net_arch=[8]), batch_size=16, buffer_size=500, device="cpu")
OFFLINE = sorted(name for name, spec in ALGORITHMS.items() if spec.offline)
LEARN_FROM_DATA_FIRST = [name for name in OFFLINE if name != "h2o"]  # H2O steps the sim from its first update


@pytest.fixture(scope="module")
def dataset():
    return random_dataset(ENV_ID, n=150)  # two episodes


def build(name, dataset, env, **kwargs):
    return ALGORITHMS[name].load_class()("MlpPolicy", env, dataset=dataset, seed=0, **{**TINY, **kwargs})


def test_the_errors_are_user_errors():
    assert issubclass(OfflineEnvError, DatasetMismatchError) and issubclass(OfflineEnvError, USER_ERRORS)


@pytest.mark.parametrize("name", LEARN_FROM_DATA_FIRST)
def test_vec_normalize_is_refused(name, dataset):
    env = VecNormalize(make_vec_env(ENV_ID, n_envs=1, seed=0))
    with pytest.raises(OfflineEnvError, match="do not wrap the env in VecNormalize") as error:
        build(name, dataset, env)
    assert "normalize: false" in str(error.value) and "\n" not in str(error.value)


def test_vec_normalize_is_refused_by_set_env_and_load(dataset, tmp_path):
    model = build("iql", dataset, make_vec_env(ENV_ID, n_envs=1, seed=0))
    normalized = VecNormalize(make_vec_env(ENV_ID, n_envs=1, seed=0))
    with pytest.raises(OfflineEnvError, match="VecNormalize"):
        model.set_env(normalized)
    model.save(tmp_path / "iql.zip")
    with pytest.raises(OfflineEnvError, match="VecNormalize"):
        type(model).load(tmp_path / "iql.zip", env=normalized)


def test_h2o_takes_vec_normalize_for_sim_steps_but_not_offline_updates(dataset):
    model = build("h2o", dataset, VecNormalize(make_vec_env(ENV_ID, n_envs=1, seed=0)), discriminator_batch_size=16)
    model.learn(4)
    with pytest.raises(OfflineEnvError, match="offline updates with a VecNormalize env"):
        model.learn_offline(2)


@pytest.mark.parametrize("name", OFFLINE)
def test_several_envs_are_refused(name, dataset):
    with pytest.raises(OfflineEnvError, match=f"n_envs must be 1 for {ALGORITHMS[name].load_class().__name__}: "):
        build(name, dataset, make_vec_env(ENV_ID, n_envs=2, seed=0))


def test_cli_refuses_normalize_and_several_envs_in_one_line(tmp_path, capsys, dataset):
    path = write_hdf5(dataset, tmp_path / "pendulum.hdf5")
    base = ["--algo", "td3_bc", "--dataset", str(path), "-f", str(tmp_path / "logs"), "--no-progress", "-n", "10",
            "--offline-steps", "10"]
    assert main(None, [*base, "-params", "normalize:True"]) == 2
    assert "do not wrap the env in VecNormalize" in capsys.readouterr().err
    assert main(None, [*base, "--n-envs", "2"]) == 2
    assert "n_envs must be 1 for TD3BC" in capsys.readouterr().err


def test_a_dataset_used_with_another_env_names_the_env_it_was_collected_on(tmp_path):
    path = write_hdf5(random_dataset("Hopper-v4", n=60, max_episode_steps=20), tmp_path / "hopper.hdf5")
    data = load_dataset(path, env_id=ENV_ID)  # what the runner does with --dataset hopper.hdf5 --env Pendulum-v1
    with pytest.raises(DatasetMismatchError, match=r"collected on Hopper-v4: train on that env \(--env Hopper-v4\)"):
        build("td3_bc", data, make_vec_env(ENV_ID, n_envs=1, seed=0))


def test_a_dataset_that_records_no_env_says_so(tmp_path):
    hopper = random_dataset("Hopper-v4", n=60, max_episode_steps=20)
    import h5py

    path = write_hdf5(hopper, tmp_path / "anonymous.hdf5")
    with h5py.File(path, "a") as handle:
        del handle.attrs["env_id"]
    data = load_dataset(path, env_id=ENV_ID)
    assert data.recorded_env_id is None and np.array_equal(data.rewards, hopper.rewards[:-1])
    with pytest.raises(DatasetMismatchError, match="records no env of its own"):
        build("td3_bc", data, make_vec_env(ENV_ID, n_envs=1, seed=0))
