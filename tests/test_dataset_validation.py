"""Malformed offline datasets are refused at load with one line that names the field (and the first bad row):
NaN or inf values, wrong lengths, wrong dtypes, missing keys, wrong dimensionality; whatever the source (a
D4RL-layout HDF5 file, the Minari store, arrays in memory). Never a numpy or h5py traceback."""

from __future__ import annotations

import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rl.cli import USER_ERRORS, main
from rl.datasets import (
    MalformedDatasetError,
    OfflineDataset,
    UnknownDatasetEnvError,
    load_dataset,
    write_d4rl_hdf5,
)
from rl.datasets.episodes import Episode
from tests.offline_data import random_dataset, write_hdf5

N, OBS_DIM, ACT_DIM = 12, 3, 1
FLOAT_FIELDS = ("observations", "actions", "rewards", "next_observations")
ALL_FIELDS = (*FLOAT_FIELDS, "terminals", "timeouts")


def valid_rows(n: int = N) -> dict[str, np.ndarray]:
    """Two episodes in D4RL's layout (the first cut by the time limit), float64 like MuJoCo data."""
    rng = np.random.default_rng(0)
    timeouts = np.zeros(n, dtype=bool)
    timeouts[n // 2 - 1] = True
    terminals = np.zeros(n, dtype=np.float32)
    terminals[-1] = 1.0
    return {
        "observations": rng.normal(size=(n, OBS_DIM)),
        "actions": rng.uniform(-2, 2, size=(n, ACT_DIM)),
        "rewards": rng.normal(size=n),
        "next_observations": rng.normal(size=(n, OBS_DIM)),
        "terminals": terminals,
        "timeouts": timeouts,
    }


def write_raw(path: Path, data: dict[str, np.ndarray], env_id: str | None = "Pendulum-v1") -> Path:
    """Write ``data`` as HDF5 datasets as they are (write_d4rl_hdf5 would refuse malformed data)."""
    with h5py.File(path, "w") as handle:
        for key, value in data.items():
            handle.create_dataset(key, data=value)
        if env_id is not None:
            handle.attrs["env_id"] = env_id
    return path


# --- generated corruptions ------------------------------------------------------------------------------------


@st.composite
def corruptions(draw) -> tuple[dict[str, np.ndarray], str, str]:
    """(data, the field the message must name, another text it must hold) for one random corruption."""
    data = valid_rows()
    kind = draw(st.sampled_from(["nonfinite", "length", "text", "objects", "missing", "dims", "flag"]))
    if kind == "nonfinite":
        field = draw(st.sampled_from((*FLOAT_FIELDS, "terminals")))  # terminals are float32 here
        row = draw(st.integers(0, N - 1))
        value = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        array = data[field]
        if array.ndim == 2:
            array[row, draw(st.integers(0, array.shape[1] - 1))] = value
        else:
            array[row] = value
        return data, field, f"{'NaN' if np.isnan(value) else 'inf'} at row {row}"
    if kind == "length":
        field = draw(st.sampled_from(ALL_FIELDS[1:]))
        length = draw(st.integers(1, 2 * N).filter(lambda n: n != N))
        data[field] = np.resize(data[field], (length, *data[field].shape[1:]))
        return data, field, f"{length} rows"
    if kind == "text":
        field = draw(st.sampled_from(ALL_FIELDS))
        data[field] = np.full(data[field].shape, b"abc")
        return data, field, "must hold numbers"
    if kind == "objects":
        field = draw(st.sampled_from(ALL_FIELDS))
        data[field] = np.array(["x"] * N, dtype=h5py.string_dtype())
        return data, field, "must hold numbers"
    if kind == "missing":
        field = draw(st.sampled_from(("observations", "actions", "rewards", "terminals", "timeouts")))
        del data[field]
        return data, field, "missing"
    if kind == "dims":
        field = draw(st.sampled_from(ALL_FIELDS))
        if field in ("observations", "actions", "next_observations"):
            data[field] = data[field][:, 0]  # (N,) instead of (N, dim)
        else:
            data[field] = np.stack([data[field]] * 2, axis=1)  # (N, 2) instead of (N,)
        return data, field, "shape"
    field = draw(st.sampled_from(("terminals", "timeouts")))
    data[field] = np.zeros(N, dtype=np.float32)
    data[field][draw(st.integers(0, N - 1))] = 2.0
    return data, field, "0/1"


@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(corruptions())
def test_malformed_hdf5_files_are_refused_naming_the_field(case):
    data, field, detail = case
    with tempfile.TemporaryDirectory() as folder:
        path = write_raw(Path(folder) / "bad.hdf5", data)
        with pytest.raises(MalformedDatasetError) as error:
            load_dataset(path, env_id="Pendulum-v1")
    message = str(error.value)
    assert repr(field) in message, message
    assert detail in message, message
    assert "bad.hdf5" in message and "\n" not in message


def test_the_valid_rows_load():
    """The base of the generated cases is valid: only the corruption makes them fail."""
    with tempfile.TemporaryDirectory() as folder:
        data = load_dataset(write_raw(Path(folder) / "good.hdf5", valid_rows()), env_id="Pendulum-v1")
    assert len(data) == N - 2 and data.terminals.dtype == bool  # the timeout row and the last row dropped


# --- each source ------------------------------------------------------------------------------------------------


def test_nan_reward_in_a_file_names_the_field_and_the_row(tmp_path):
    data = valid_rows()
    data["rewards"][7] = np.nan
    with pytest.raises(MalformedDatasetError, match=r"field 'rewards' has NaN at row 7 \(1 row "):
        load_dataset(write_raw(tmp_path / "x.hdf5", data))
    data["observations"][4, 2] = np.inf
    with pytest.raises(MalformedDatasetError, match=r"field 'observations' has \+inf at row 4, column 2"):
        write_d4rl_hdf5(tmp_path / "never.hdf5", data)  # nor is such a file written
    assert not (tmp_path / "never.hdf5").exists()


def test_nan_in_a_minari_dataset_names_the_episode_and_step(tmp_path, monkeypatch):
    from rl.datasets import write_minari_dataset

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    rng = np.random.default_rng(0)
    episodes = [
        Episode(observations=rng.normal(size=(6, 3)), actions=rng.uniform(-1, 1, size=(5, 1)),
                rewards=rng.normal(size=5), terminations=np.zeros(5, bool), truncations=np.eye(5, dtype=bool)[-1],
                seed=i)
        for i in range(2)
    ]
    episodes[1].rewards[3] = np.nan
    write_minari_dataset("test/pendulum/nan-v0", episodes, env_id="Pendulum-v1")
    with pytest.raises(MalformedDatasetError, match=r"Minari dataset 'test/pendulum/nan-v0': field 'rewards' has NaN "
                                                    r"at episode 1, step 3 \(row 8\)"):
        load_dataset("test/pendulum/nan-v0")


@pytest.mark.parametrize(
    ("field", "value", "text"),
    [
        ("rewards", lambda d: np.where(np.arange(len(d)) == 5, np.nan, d.rewards),
         "field 'rewards' has NaN at transition 5"),
        ("actions", lambda d: d.actions.astype(str), "field 'actions' has dtype <U"),
        ("actions", lambda d: d.actions[:, 0], "field 'actions' must have shape (N, dim)"),
        ("terminals", lambda d: d.terminals[:-1], "'terminals' has 49 rows"),
        ("next_observations", lambda d: d.next_observations[:, :2], "'next_observations' has shape (50, 2)"),
        ("observations", lambda d: d.observations[:0], "no transitions"),
    ],
)
def test_datasets_built_in_memory_are_checked_too(field, value, text):
    data = random_dataset("Pendulum-v1", n=50)
    arrays = {**data.as_dict(), field: value(data)}
    if field == "observations":
        arrays = {key: array[:0] for key, array in arrays.items()}
    with pytest.raises(MalformedDatasetError) as error:
        OfflineDataset(name="mine", env_id="Pendulum-v1", **arrays)
    assert text in str(error.value)


def test_flags_given_as_numbers_become_bool():
    data = random_dataset("Pendulum-v1", n=20)
    again = OfflineDataset(name="mine", env_id="Pendulum-v1", **{**data.as_dict(), "terminals": np.zeros(20)})
    assert again.terminals.dtype == bool


# --- which env ----------------------------------------------------------------------------------------------------


def test_a_file_without_env_id_asks_for_env(tmp_path):
    path = write_raw(tmp_path / "anonymous.hdf5", valid_rows(), env_id=None)
    with pytest.raises(UnknownDatasetEnvError, match="--env <id>"):
        load_dataset(path, env_id=None)
    assert load_dataset(path, env_id="Pendulum-v1").recorded_env_id is None


def test_a_bad_env_id_attribute_is_refused(tmp_path):
    path = write_raw(tmp_path / "odd.hdf5", valid_rows(), env_id=None)
    with h5py.File(path, "a") as handle:
        handle.attrs["env_id"] = 3
    with pytest.raises(MalformedDatasetError, match="env_id attribute is 3"):
        load_dataset(path)


def test_the_recorded_env_is_kept_apart_from_the_env_used(tmp_path):
    path = write_hdf5(random_dataset("Pendulum-v1", n=30), tmp_path / "pendulum.hdf5")
    used_elsewhere = load_dataset(path, env_id="InvertedPendulum-v4")
    assert (used_elsewhere.env_id, used_elsewhere.recorded_env_id) == ("InvertedPendulum-v4", "Pendulum-v1")
    assert load_dataset(path).recorded_env_id == "Pendulum-v1"


def test_cli_without_env_for_an_anonymous_file_says_pass_env(tmp_path, capsys):
    path = write_raw(tmp_path / "anonymous.hdf5", valid_rows(), env_id=None)
    assert issubclass(UnknownDatasetEnvError, USER_ERRORS)
    assert main(None, ["--algo", "iql", "--dataset", str(path), "-f", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--env <id>" in err and "Traceback" not in err


def test_cli_refuses_a_file_with_nan_in_one_line(tmp_path, capsys):
    data = valid_rows()
    data["actions"][3, 0] = -np.inf
    path = write_raw(tmp_path / "nan.hdf5", data)
    assert main(None, ["--algo", "td3_bc", "--dataset", str(path), "-f", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "field 'actions' has -inf at row 3" in err
    assert not (tmp_path / "td3_bc").exists()
