"""Offline datasets: D4RL files and qlearning_dataset, names, scores, the Minari store, resumable generation."""

import sys

import h5py
import minari
import numpy as np
import pytest

import rl.datasets.generate as generate_module
from rl.datasets import (
    TRANSITION_KEYS,
    DatasetNotFoundError,
    Episode,
    MalformedDatasetError,
    ReferenceScoreError,
    UnknownDatasetEnvError,
    UnknownDatasetNameError,
    WorkFolderError,
    collect_episodes,
    episodes_to_transitions,
    generate_dataset,
    load_d4rl_hdf5,
    load_dataset,
    make_medium_expert,
    minari_id_for,
    normalized_score,
    parse_d4rl_name,
    qlearning_dataset,
    read_d4rl_attributes,
    read_episodes,
    write_d4rl_hdf5,
    write_minari_dataset,
)

# --- D4RL files -------------------------------------------------------------------------------------------------

# Seven rows, three episodes: A = rows 0-2 (row 2 cut by the time limit), B = rows 3-4 (row 4 terminal),
# C = rows 5-6 (the data end mid-episode). FINAL_* are the true observations after each episode's last row.
OBS = np.array([[i, 10 * i] for i in range(7)], dtype=np.float64)
FINAL_A, FINAL_B, FINAL_C = [99.0, 990.0], [98.0, 980.0], [97.0, 970.0]


def d4rl_rows(*, next_observations: bool = True) -> dict[str, np.ndarray]:
    data = {
        "observations": OBS,
        "actions": np.arange(7, dtype=np.float64)[:, None] + 0.5,
        "rewards": np.arange(7, dtype=np.float64)[:, None],  # (N, 1) as in some D4RL files
        "terminals": np.array([0, 0, 0, 0, 1, 0, 0], dtype=np.float32),
        "timeouts": np.array([0, 0, 1, 0, 0, 0, 0], dtype=bool),
        "infos/qpos": OBS * 2,
    }
    if next_observations:
        data["next_observations"] = np.array([OBS[1], OBS[2], FINAL_A, OBS[4], FINAL_B, OBS[6], FINAL_C])
    return data


def test_qlearning_dataset_keeps_d4rls_transitions():
    out = qlearning_dataset(d4rl_rows())
    # row 2 (timeout) and row 6 (the last row) are dropped; the terminal row 4 is kept
    assert out["rewards"].tolist() == [0, 1, 3, 4, 5]
    assert out["observations"].tolist() == OBS[[0, 1, 3, 4, 5]].tolist()
    assert out["actions"][:, 0].tolist() == [0.5, 1.5, 3.5, 4.5, 5.5]
    assert out["terminals"].tolist() == [False, False, False, True, False]
    assert not out["timeouts"].any()
    # stored next observations: the terminal row pairs with episode B's true final observation
    expected_next = [*OBS[[1, 2, 4]].tolist(), FINAL_B, OBS[6].tolist()]
    assert out["next_observations"].tolist() == expected_next
    assert {key: value.dtype for key, value in out.items()} == {
        "observations": np.float32, "actions": np.float32, "next_observations": np.float32,
        "rewards": np.float32, "terminals": bool, "timeouts": bool,
    }


@pytest.mark.parametrize("with_key", [True, False])
def test_qlearning_dataset_pairs_with_the_next_row_like_d4rl(with_key):
    out = qlearning_dataset(d4rl_rows(next_observations=with_key), use_next_observations=False)
    # D4RL 1.1: observations[i + 1], so the terminal row 4 pairs with episode C's first observation (row 5)
    assert out["next_observations"].tolist() == OBS[[1, 2, 4, 5, 6]].tolist()
    assert out["rewards"].tolist() == [0, 1, 3, 4, 5]


def test_qlearning_dataset_timeout_rules():
    kept = qlearning_dataset(d4rl_rows(), terminate_on_end=True)
    assert kept["rewards"].tolist() == [0, 1, 2, 3, 4, 5]  # timeout row kept, the last row still not
    assert kept["timeouts"].tolist() == [False, False, True, False, False, False]
    assert kept["terminals"][2] == False  # noqa: E712 - D4RL does not set done on kept timeouts
    both = d4rl_rows()
    both["terminals"] = both["terminals"].copy()
    both["terminals"][2] = 1  # a step both terminal and timed out is skipped: the timeout test comes first
    assert qlearning_dataset(both)["rewards"].tolist() == [0, 1, 3, 4, 5]


def test_d4rl_file_round_trip(tmp_path):
    path = write_d4rl_hdf5(
        tmp_path / "sub" / "hopper-medium-v2.hdf5", d4rl_rows(), attributes={"env_id": "Hopper-v4", "tags": ["a"]}
    )
    loaded = load_d4rl_hdf5(path)
    assert sorted(loaded) == sorted(d4rl_rows())
    assert loaded["rewards"].shape == (7,) and loaded["terminals"].dtype == bool
    np.testing.assert_array_equal(loaded["infos/qpos"], OBS * 2)
    assert read_d4rl_attributes(path) == {"env_id": "Hopper-v4", "tags": '["a"]'}
    assert list(tmp_path.joinpath("sub").iterdir()) == [path]  # no temporary file left


def test_fingerprint_identifies_the_transitions(tmp_path):
    """Same transitions, same fingerprint, wherever they are read from; one changed value or dtype changes it."""
    first = write_d4rl_hdf5(tmp_path / "a.hdf5", d4rl_rows(), attributes={"env_id": "Hopper-v4"})
    second = write_d4rl_hdf5(tmp_path / "b.hdf5", d4rl_rows(), attributes={"env_id": "Hopper-v4", "tags": ["x"]})
    rows = d4rl_rows()
    rows["rewards"] = rows["rewards"].copy()
    rows["rewards"][3] += 1e-3
    changed = write_d4rl_hdf5(tmp_path / "c.hdf5", rows, attributes={"env_id": "Hopper-v4"})
    fingerprint = load_dataset(str(first)).fingerprint()
    assert len(fingerprint) == 16 and fingerprint == load_dataset(str(second)).fingerprint()
    assert load_dataset(str(changed)).fingerprint() != fingerprint
    dataset = load_dataset(str(first))
    as_float64 = type(dataset)(**{**dataset.__dict__, "rewards": dataset.rewards.astype(np.float64)})
    assert as_float64.fingerprint() != fingerprint


def test_missing_d4rl_file_says_where_it_looked(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="does not exist") as error:
        load_d4rl_hdf5(tmp_path / "nope.hdf5")
    assert str((tmp_path / "nope.hdf5").absolute()) in str(error.value)
    with pytest.raises(DatasetNotFoundError, match="nope.hdf5"):
        load_dataset(tmp_path / "nope.hdf5")


def test_malformed_d4rl_files_name_the_problem(tmp_path):
    path = tmp_path / "bad.hdf5"
    with h5py.File(path, "w") as handle:
        for key, value in d4rl_rows().items():
            if key != "timeouts":
                handle.create_dataset(key, data=value)
    with pytest.raises(MalformedDatasetError, match="missing 'timeouts'"):
        load_d4rl_hdf5(path)
    with h5py.File(path, "w") as handle:
        for key, value in d4rl_rows().items():
            handle.create_dataset(key, data=value[:6] if key == "actions" else value)
    with pytest.raises(MalformedDatasetError, match="'actions' has 6 rows but 'observations' has 7"):
        load_d4rl_hdf5(path)
    path.write_text("not hdf5")
    with pytest.raises(MalformedDatasetError, match="not a readable HDF5 file"):
        load_d4rl_hdf5(path)
    short = d4rl_rows()
    short["infos/qvel"] = OBS[:3]
    with pytest.raises(MalformedDatasetError, match="'infos/qvel' has 3 rows"):
        write_d4rl_hdf5(tmp_path / "never.hdf5", short)
    assert not (tmp_path / "never.hdf5").exists()


def test_hdf5_without_an_env_asks_for_one(tmp_path):
    path = write_d4rl_hdf5(tmp_path / "mine.hdf5", d4rl_rows())
    with pytest.raises(UnknownDatasetEnvError, match="Pass the env with --env <id>") as error:
        load_dataset(path)
    assert "env_id='Hopper-v4'" in str(error.value)  # the Python spelling too
    data = load_dataset(path, env_id="Hopper-v4")
    assert data.env_id == "Hopper-v4" and data.ref_min == -20.272305  # D4RL's hopper scale via the env
    assert data.rewards.tolist() == [0, 1, 3, 4, 5]


# --- names and scores -------------------------------------------------------------------------------------------


def test_d4rl_names():
    parsed = parse_d4rl_name("halfcheetah-medium-replay-v2")
    assert (parsed.env_id, parsed.level) == ("HalfCheetah-v4", "medium-replay")
    assert parsed.minari_id == "frontier/halfcheetah/medium-replay-v0"
    assert parse_d4rl_name("walker2d-medium-expert-v2").env_id == "Walker2d-v4"
    assert parse_d4rl_name("ant-random-v2").env_id == "Ant-v4"
    assert minari_id_for("hopper-expert-v2") == ("frontier/hopper/expert-v0", parse_d4rl_name("hopper-expert-v2"))
    assert minari_id_for("mujoco/hopper/medium-v0") == ("mujoco/hopper/medium-v0", None)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("halfcheetah-medum-v2", "Did you mean medium"),
        ("halfchetah-medium-v2", "Did you mean halfcheetah"),
        ("hopper-medium-v0", "Use 'hopper-medium-v2'"),
        ("hopper_medium", "Did you mean hopper-medium-v2"),
    ],
)
def test_bad_names_list_valid_ones(name, expected):
    with pytest.raises(UnknownDatasetNameError, match=expected) as error:
        parse_d4rl_name(name)
    assert "random" in str(error.value) or "hopper" in str(error.value)


def test_normalized_scores():
    assert normalized_score("halfcheetah-medium-v2", 12135.0) == pytest.approx(100.0)
    assert normalized_score("halfcheetah", -280.178953) == pytest.approx(0.0)
    assert normalized_score("Hopper-v4", (3234.3 - 20.272305) / 2) == pytest.approx(50.0)
    walker = normalized_score("walker2d-expert-v2", np.array([1.629008, 4592.3]))
    np.testing.assert_allclose(walker, [0.0, 100.0])
    assert normalized_score("ant-random-v2", 0.0) == pytest.approx(100 * 325.6 / (3879.7 + 325.6))
    assert normalized_score("my-data", 5.0, ref_min=0.0, ref_max=10.0) == pytest.approx(50.0)
    assert normalized_score("hopper", 5.0, ref_min=0.0, ref_max=10.0) == pytest.approx(50.0)  # own scale wins
    with pytest.raises(ReferenceScoreError, match="not a D4RL env"):
        normalized_score("CartPole-v1", 1.0)
    with pytest.raises(ReferenceScoreError, match="both"):
        normalized_score("hopper", 1.0, ref_min=0.0)


# --- the Minari store -------------------------------------------------------------------------------------------


@pytest.fixture
def minari_store(tmp_path, monkeypatch):
    root = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    return root


def hopper_episodes(lengths=(3, 4, 2), seed=0) -> list[Episode]:
    """Synthetic Hopper-v4-shaped episodes: ends by termination, then truncation, then termination."""
    rng = np.random.default_rng(seed)
    episodes = []
    for index, steps in enumerate(lengths):
        terminations, truncations = np.zeros(steps, bool), np.zeros(steps, bool)
        (truncations if index % 2 else terminations)[-1] = True
        episodes.append(
            Episode(
                observations=rng.normal(size=(steps + 1, 11)),
                actions=rng.uniform(-1, 1, size=(steps, 3)).astype(np.float32),
                rewards=rng.normal(size=steps),
                terminations=terminations,
                truncations=truncations,
                infos={"qpos": rng.normal(size=(steps + 1, 6)), "qvel": rng.normal(size=(steps + 1, 6))},
                seed=100 + index,
            )
        )
    return episodes


def assert_same_episodes(actual, expected):
    assert len(actual) == len(expected)
    for a, b in zip(actual, expected):
        for key in ("observations", "actions", "rewards", "terminations", "truncations"):
            np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=key)
        assert a.infos.keys() == b.infos.keys() and a.seed == b.seed
        for key in a.infos:
            np.testing.assert_array_equal(a.infos[key], b.infos[key], err_msg=key)


def test_minari_round_trip(minari_store):
    episodes = hopper_episodes()
    write_minari_dataset(
        "frontier/hopper/medium-v0", episodes, env_id="Hopper-v4", ref_min_score=-1.0, ref_max_score=3.0,
        algorithm_name="test", metadata={"seed": 7},
    )
    assert_same_episodes(read_episodes("frontier/hopper/medium-v0"), episodes)
    stored = minari.load_dataset("frontier/hopper/medium-v0", download=False)
    metadata = stored.storage.metadata
    assert (metadata["ref_min_score"], metadata["ref_max_score"], metadata["seed"]) == (-1.0, 3.0, 7)
    assert stored.env_spec.id == "Hopper-v4" and stored.total_steps == 9
    assert sorted(p.name for p in minari_store.iterdir()) == ["frontier"]  # no staging folder left

    data = load_dataset("hopper-medium-v2")
    assert (data.name, data.env_id, data.ref_min, data.ref_max) == ("hopper-medium-v2", "Hopper-v4", -1.0, 3.0)
    expected = episodes_to_transitions(episodes)
    for key in TRANSITION_KEYS:
        np.testing.assert_array_equal(getattr(data, key), expected[key], err_msg=key)
    assert len(data) == 3 + 4 - 1 + 2  # the truncated episode's last step is dropped, D4RL's rule
    np.testing.assert_array_equal(data.next_observations[:3], episodes[0].observations[1:].astype(np.float32))
    assert data.terminals.tolist() == [False, False, True, False, False, False, False, True]
    assert len(load_dataset("frontier/hopper/medium-v0", drop_timeouts=False)) == 9
    assert data.normalized_score(3.0) == pytest.approx(100.0)


def test_minari_ids_are_not_overwritten_by_accident(minari_store):
    write_minari_dataset("frontier/hopper/expert-v0", hopper_episodes(), env_id="Hopper-v4")
    with pytest.raises(ValueError, match="already exists"):
        write_minari_dataset("frontier/hopper/expert-v0", hopper_episodes(), env_id="Hopper-v4")
    write_minari_dataset("frontier/hopper/expert-v0", hopper_episodes((5,), seed=1), env_id="Hopper-v4", overwrite=True)
    assert [len(e) for e in read_episodes("frontier/hopper/expert-v0")] == [5]
    with pytest.raises(ReferenceScoreError, match="both"):
        write_minari_dataset("frontier/hopper/random-v0", hopper_episodes(), env_id="Hopper-v4", ref_max_score=1.0)


def test_missing_minari_dataset_says_where_it_looked(minari_store):
    with pytest.raises(DatasetNotFoundError) as error:
        load_dataset("walker2d-medium-v2")
    message = str(error.value)
    assert str(minari_store / "frontier/walker2d/medium-v0") in message
    assert "MINARI_DATASETS_PATH" in message and "generate_dataset" in message
    with pytest.raises(UnknownDatasetNameError, match="Did you mean hopper"):
        load_dataset("hoper-medium-v2")


# --- generation -------------------------------------------------------------------------------------------------

ENV = "InvertedPendulum-v4"  # cheap, and its observation is (qpos, qvel), which checks the recorded state


def collect(n_transitions=120, seed=0, **kwargs):
    return collect_episodes(ENV, None, n_transitions, seed, progress=False, **kwargs)


def test_collection_is_deterministic_for_a_seed():
    first, second, other = collect(), collect(), collect(seed=1)
    assert_same_episodes(first, second)
    assert sum(map(len, first)) >= 120 > sum(map(len, first[:-1]))  # whole episodes, just enough of them
    assert not np.array_equal(first[0].observations, other[0].observations)
    for episode in first:
        assert episode.terminations[-1] or episode.truncations[-1]
        np.testing.assert_array_equal(np.hstack([episode.infos["qpos"], episode.infos["qvel"]]), episode.observations)
        assert episode.actions.dtype == np.float32 and np.all(np.abs(episode.actions) <= 3.0)


def test_collection_resumes_after_an_interruption(tmp_path, monkeypatch):
    reference = collect(work_dir=tmp_path / "whole", chunk_transitions=30)
    run_episode, calls = generate_module._run_episode, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) > 12:
            raise KeyboardInterrupt
        return run_episode(*args, **kwargs)

    monkeypatch.setattr(generate_module, "_run_episode", interrupted)
    with pytest.raises(KeyboardInterrupt):
        collect(work_dir=tmp_path / "cut", chunk_transitions=30)
    chunks = sorted(p.name for p in (tmp_path / "cut").glob("chunk_*.npz"))
    assert chunks and len(chunks) < len(list((tmp_path / "whole").glob("chunk_*.npz")))

    def counted(*args, **kwargs):
        calls.append(1)
        return run_episode(*args, **kwargs)

    calls.clear()
    monkeypatch.setattr(generate_module, "_run_episode", counted)
    resumed = collect(work_dir=tmp_path / "cut", chunk_transitions=30)
    assert_same_episodes(resumed, reference)
    assert 0 < len(calls) < len(reference) - 1  # finished chunks were not collected again
    calls.clear()
    assert_same_episodes(collect(work_dir=tmp_path / "cut", chunk_transitions=30), reference)
    assert not calls  # everything is in the work folder now
    with pytest.raises(WorkFolderError, match="seed: 0 there, 1 now"):
        collect(seed=1, work_dir=tmp_path / "cut")


def test_generate_store_and_combine(minari_store, tmp_path):
    medium = generate_dataset("hopper-medium-v2", None, n_transitions=60, seed=0, policy_name="test", progress=False)
    expert = generate_dataset("hopper-expert-v2", None, n_transitions=60, seed=1, progress=False)
    assert not (minari_store / ".frontier-work").exists()  # the work folder is gone once the data are stored
    with pytest.raises(ValueError, match="already exists"):
        generate_dataset("hopper-medium-v2", None, n_transitions=60, progress=False)

    combined = make_medium_expert("hopper", hdf5_path=tmp_path / "hopper-medium-expert-v2.hdf5")
    assert_same_episodes(read_episodes("frontier/hopper/medium-expert-v0"), medium + expert)
    assert minari.load_dataset("frontier/hopper/medium-expert-v0").combined_datasets == [
        "frontier/hopper/medium-v0", "frontier/hopper/expert-v0",
    ]
    from_store = load_dataset("hopper-medium-expert-v2")
    from_file = load_dataset(tmp_path / "hopper-medium-expert-v2.hdf5")
    assert from_store.env_id == from_file.env_id == "Hopper-v4"
    assert (from_file.ref_min, from_file.ref_max) == (-20.272305, 3234.3)
    assert len(from_store) == sum(map(len, combined)) - sum(int(e.truncations[-1]) for e in combined)
    # the same data through D4RL's flat file: identical, except that the file's very last row is dropped
    for key in TRANSITION_KEYS:
        np.testing.assert_array_equal(getattr(from_file, key), getattr(from_store, key)[: len(from_file)])
    assert len(from_file) == len(from_store) - 1


def test_missing_optional_packages_say_what_to_install(monkeypatch, tmp_path):
    from rl.datasets import MissingDependencyError

    monkeypatch.setitem(sys.modules, "h5py", None)  # as if h5py were not installed
    with pytest.raises(MissingDependencyError, match=r'pip install -e "\.\[offline\]"'):
        write_d4rl_hdf5(tmp_path / "x.hdf5", d4rl_rows())
