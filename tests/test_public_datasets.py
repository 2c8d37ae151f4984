"""Public Minari datasets: downloaded into the local store only when allowed (``--download`` or
``FRONTIER_RL_DOWNLOAD=1``), never for the project's own namespace, with one-line errors otherwise.

Nothing can be downloaded on the test machines: ``minari.download_dataset`` is replaced by a stand-in that copies
a dataset the test made into a separate "remote" store, as Minari copies one from its remote; the code under test
makes the real call.
"""

from __future__ import annotations

import shutil

import minari
import numpy as np
import pytest

from rl.cli import main
from rl.datasets import DatasetNotFoundError, Episode, load_dataset, minari_root, write_minari_dataset
from rl.datasets.minari_store import DOWNLOAD_VARIABLE

PUBLIC_ID = "mujoco/pendulum/tiny-v0"


def _pendulum_episodes(n: int = 3, steps: int = 20) -> list[Episode]:
    rng = np.random.default_rng(0)
    episodes = []
    for index in range(n):
        truncations = np.zeros(steps, bool)
        truncations[-1] = True
        episodes.append(Episode(observations=rng.normal(size=(steps + 1, 3)).astype(np.float32),
                                actions=rng.uniform(-2, 2, size=(steps, 1)).astype(np.float32),
                                rewards=rng.normal(size=steps), terminations=np.zeros(steps, bool),
                                truncations=truncations, seed=index))
    return episodes


@pytest.fixture
def remote(tmp_path, monkeypatch) -> list[str]:
    """A "remote" store holding PUBLIC_ID, an empty local store, and the stand-in download; returns its calls."""
    remote_root = tmp_path / "remote"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(remote_root))
    write_minari_dataset(PUBLIC_ID, _pendulum_episodes(), env_id="Pendulum-v1", ref_min_score=-1500.0,
                         ref_max_score=-150.0)
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "local"))
    monkeypatch.delenv(DOWNLOAD_VARIABLE, raising=False)
    calls: list[str] = []

    def download_dataset(dataset_id: str, force_download: bool = False) -> None:
        calls.append(dataset_id)
        source = remote_root / dataset_id
        if not source.is_dir():
            raise ValueError(f"Couldn't find any compatible version of dataset {dataset_id} with the local installed "
                             "version of Minari\nmore detail")
        shutil.copytree(source, minari_root() / dataset_id)

    monkeypatch.setattr(minari, "download_dataset", download_dataset)
    return calls


def test_a_missing_public_dataset_is_not_downloaded_unless_asked(remote):
    with pytest.raises(DatasetNotFoundError, match=r"downloads with --download \(or FRONTIER_RL_DOWNLOAD=1\)"):
        load_dataset(PUBLIC_ID)
    assert remote == []


def test_download_fetches_it_once_and_scores_use_its_reference_returns(remote):
    data = load_dataset(PUBLIC_ID, download=True)
    assert remote == [PUBLIC_ID] and len(data) == 57 and data.env_id == "Pendulum-v1"  # 60 steps, 3 time limits
    assert (data.ref_min, data.ref_max) == (-1500.0, -150.0)
    load_dataset(PUBLIC_ID, download=True)  # now local: no second download
    assert remote == [PUBLIC_ID]


def test_the_environment_variable_allows_it_too(remote, monkeypatch):
    monkeypatch.setenv(DOWNLOAD_VARIABLE, "1")
    assert len(load_dataset(PUBLIC_ID)) == 57 and remote == [PUBLIC_ID]


def test_a_failed_download_is_one_named_error(remote):
    with pytest.raises(DatasetNotFoundError, match=r"could not download Minari dataset 'mujoco/pendulum/none-v0' "
                                                   r"\(Couldn't find any compatible version.*\): check the id"):
        load_dataset("mujoco/pendulum/none-v0", download=True)


def test_the_projects_own_datasets_are_never_downloaded(remote):
    with pytest.raises(DatasetNotFoundError, match="python -m rl.datasets make hopper-medium-v2") as error:
        load_dataset("hopper-medium-v2", download=True)
    assert remote == [] and "--download" not in str(error.value)


def test_cli_download_flag_trains_on_the_public_dataset(remote, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(DOWNLOAD_VARIABLE, "0")  # restored after the test: the flag sets it for the process
    argv = ["--algo", "iql", "--dataset", PUBLIC_ID, "--offline-steps", "20", "-n", "0", "--eval-freq", "-1",
            "--final-eval-episodes", "1", "--no-progress", "--verbose", "0", "-f", str(tmp_path / "logs"),
            "-params", "batch_size:16", "policy_kwargs:dict(net_arch=[8])"]
    assert main(None, argv) == 2  # without --download: one line, nothing written
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--download" in error and not (tmp_path / "logs").exists()
    assert main(None, [*argv, "--download"]) == 0
    assert remote == [PUBLIC_ID] and list((tmp_path / "logs").glob("iql/*/run.json"))
