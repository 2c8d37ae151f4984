"""The d3rlpy baseline's pieces that need neither d3rlpy's venv nor the network.

- ``d3rlpy_run.py``'s pure-numpy data conversion (imported by path: the script runs in d3rlpy's own venv and
  d3rlpy is not importable here), checked against the project's D4RL ``qlearning_dataset`` through a model
  of d3rlpy 2.8's episode and transition rules;
- its output writers (``evaluations.npz`` in SB3's EvalCallback format, strict ``run.json``);
- ``run_d3rlpy``'s subprocess handling, with fake python executables;
- ``ensure_venv``'s completion marker (a half-installed venv is detected and repaired).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from external_helpers import check_script_imports, check_venv_location, fake_python, load_script, make_venv_dir

from rl.datasets import qlearning_dataset
from rl.external import d3rlpy_baseline, d3rlpy_venv
from rl.external.d3rlpy_baseline import RUN_SCRIPT, d3rlpy_command, run_d3rlpy
from rl.external.errors import ExternalBaselineError


@pytest.fixture(scope="module")
def run_module():
    return load_script(RUN_SCRIPT, "d3rlpy_run_under_test")


# ------------------------------------------------------------------------------------------ data conversion


def d3rlpy_transitions(observations, actions, rewards, terminals, timeouts):
    """A model of d3rlpy 2.8.1: EpisodeGenerator splits at terminals | timeouts (rows after the last end are
    lost); BasicTransitionPicker gives size (terminated) or size - 1 transitions per episode, the next
    observation from the next row, zeros after a terminal."""
    assert not np.any(np.logical_and(terminals, timeouts)), "d3rlpy 2.8.1 asserts this"
    out = {k: [] for k in ("observations", "actions", "rewards", "next_observations", "terminals")}
    start = 0
    for i in range(len(terminals)):
        if terminals[i] or timeouts[i]:
            terminated = bool(terminals[i])
            size = i + 1 - start
            for j in range(start, start + (size if terminated else size - 1)):
                last = terminated and j == i
                out["observations"].append(observations[j])
                out["actions"].append(actions[j])
                out["rewards"].append(rewards[j])
                out["next_observations"].append(np.zeros_like(observations[j]) if last else observations[j + 1])
                out["terminals"].append(last)
            start = i + 1
    return {k: np.asarray(v) for k, v in out.items()}


def random_flags(rng, n):
    terminals = rng.random(n) < 0.08
    timeouts = rng.random(n) < 0.08  # some rows get both flags, some single-row timeout episodes
    return terminals, timeouts


@pytest.mark.parametrize("seed", range(25))
def test_d3rlpy_sees_exactly_d4rl_qlearning_transitions(run_module, seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 120))
    terminals, timeouts = random_flags(rng, n)
    if seed % 3 == 0:
        terminals[-1] = True  # D4RL never uses the last row, even a terminal one
    observations = rng.normal(size=(n, 3)).astype(np.float32)
    actions = rng.normal(size=(n, 2)).astype(np.float32)
    rewards = rng.normal(size=n).astype(np.float32)
    expected = qlearning_dataset(
        {"observations": observations, "actions": actions, "rewards": rewards, "terminals": terminals,
         "timeouts": timeouts},
        use_next_observations=False,
    )
    if len(expected["rewards"]) == 0:
        with pytest.raises(ValueError, match="no transition"):
            run_module.episode_flags(terminals, timeouts)
        return
    keep, term, tout = run_module.episode_flags(terminals, timeouts)
    assert term.dtype == np.float32 and tout.dtype == np.float32 and keep.dtype == bool
    got = d3rlpy_transitions(observations[keep], actions[keep], rewards[keep], term, tout)
    np.testing.assert_array_equal(got["observations"], expected["observations"])
    np.testing.assert_array_equal(got["actions"], expected["actions"])
    np.testing.assert_array_equal(got["rewards"], expected["rewards"])
    np.testing.assert_array_equal(got["terminals"], expected["terminals"])
    live = ~expected["terminals"]
    np.testing.assert_array_equal(got["next_observations"][live], expected["next_observations"][live])
    assert len(run_module.transition_rows(term, tout)) == len(expected["rewards"])


def test_episode_flags_rules_by_hand(run_module):
    #                 0  1  2  3  4  5  6  7
    terminals = np.array([0, 1, 0, 0, 1, 0, 0, 0])
    timeouts = np.array([[0], [0], [1], [0], [1], [1], [0], [0]])  # (N, 1) as some D4RL files store it
    keep, term, tout = run_module.episode_flags(terminals, timeouts)
    # row 2: a one-row timeout episode (no transition) is removed; row 4: both flags -> timeout;
    # row 5: one-row timeout episode after row 4 -> removed; row 7: last row -> timeout
    np.testing.assert_array_equal(keep, [1, 1, 0, 1, 1, 0, 1, 1])
    np.testing.assert_array_equal(term, [0, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(tout, [0, 0, 0, 1, 0, 1])
    np.testing.assert_array_equal(run_module.transition_rows(term, tout), [0, 1, 2, 4])
    # no row both terminal and timeout (d3rlpy 2.8.1 asserts), and every episode has a transition
    assert not np.any(term.astype(bool) & tout.astype(bool))


def test_episode_flags_without_timeouts_and_errors(run_module):
    keep, term, tout = run_module.episode_flags(np.array([0, 0, 1, 0, 0]), None)
    np.testing.assert_array_equal(keep, [1, 1, 1, 1, 1])
    np.testing.assert_array_equal(term, [0, 0, 1, 0, 0])
    np.testing.assert_array_equal(tout, [0, 0, 0, 0, 1])
    with pytest.raises(ValueError, match="no rows"):
        run_module.episode_flags(np.zeros(0), np.zeros(0))
    with pytest.raises(ValueError, match="rows"):
        run_module.episode_flags(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="no transition"):
        run_module.episode_flags(np.zeros(3), np.ones(3))


def test_next_observation_mismatches(run_module):
    rng = np.random.default_rng(0)
    observations = rng.normal(size=(10, 2)).astype(np.float32)
    terminals = np.zeros(10, bool)
    timeouts = np.zeros(10, bool)
    terminals[3], timeouts[6] = True, True
    next_observations = np.roll(observations, -1, axis=0)
    next_observations[3] = 99.0  # after a terminal: not used
    next_observations[6] = 99.0  # the true final observation of a timeout episode: not a transition
    keep, term, tout = run_module.episode_flags(terminals, timeouts)
    assert run_module.next_observation_mismatches(observations, next_observations, keep, term, tout) == 0
    next_observations[1] += 1.0
    assert run_module.next_observation_mismatches(observations, next_observations, keep, term, tout) == 1


def test_read_hdf5_d4rl_layout(run_module, tmp_path):
    from rl.datasets import write_d4rl_hdf5

    n = 12
    data = {"observations": np.arange(n * 2, dtype=np.float32).reshape(n, 2), "actions": np.zeros((n, 1)),
            "rewards": np.ones(n), "terminals": np.zeros(n, bool), "timeouts": np.eye(n, dtype=bool)[5]}
    path = write_d4rl_hdf5(tmp_path / "d.hdf5", data, attributes={"ref_min_score": -1.5, "name": "x-medium-v0"})
    arrays, attributes = run_module.read_hdf5(path)
    assert set(arrays) == {"observations", "actions", "rewards", "terminals", "timeouts"}
    np.testing.assert_array_equal(arrays["observations"], data["observations"])
    assert attributes == {"ref_min_score": -1.5, "name": "x-medium-v0"}


# --------------------------------------------------------------------------------------------------- output


def test_evaluations_npz_in_eval_callback_format(run_module, tmp_path):
    path = run_module.write_evaluations(tmp_path, [250, 500], [[1.0, 2.0], [3.0, 4.5]], [[10, 20], [30, 40]])
    assert path == tmp_path / "evaluations.npz"
    with np.load(path) as data:
        assert sorted(data.files) == ["ep_lengths", "results", "timesteps"]
        np.testing.assert_array_equal(data["timesteps"], [250, 500])
        assert data["results"].shape == (2, 2) and data["results"][1, 1] == 4.5
        assert data["ep_lengths"].dtype.kind == "i" and data["ep_lengths"][1, 0] == 30
    assert [p.name for p in tmp_path.iterdir()] == ["evaluations.npz"]  # no temporary file left


def test_run_json_is_strict_json(run_module, tmp_path):
    final = run_module.summarize([1.0, 3.0], [5, 7])
    assert final == {"mean_reward": 2.0, "std_reward": 1.0, "n_episodes": 2, "episode_rewards": [1.0, 3.0],
                     "episode_lengths": [5, 7]}
    record = {"label": "d3rlpy_iql", "score": float("nan"), "np": np.float32(1.5), "arr": np.arange(2),
              "final_evaluation": final, "final_normalized_score": run_module.normalized_score(2.0, 0.0, 4.0)}
    path = run_module.write_run_json(tmp_path, record)
    text = path.read_text()
    assert "NaN" not in text
    loaded = json.loads(text)
    assert loaded["score"] is None and loaded["np"] == 1.5 and loaded["arr"] == [0, 1]
    assert loaded["final_normalized_score"] == 50.0
    assert run_module.normalized_score(2.0, None, None) is None
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_cli_checks_eval_freq(run_module):
    common = ["--algo", "iql", "--dataset", "d.hdf5", "--env", "Hopper-v4", "--out", "o"]
    args = run_module.parse_args([*common, "--n-steps", "500", "--eval-freq", "250"])
    assert args.n_steps == 500 and args.ref_min is None
    with pytest.raises(SystemExit):
        run_module.parse_args([*common, "--n-steps", "500", "--eval-freq", "300"])
    with pytest.raises(SystemExit):
        run_module.parse_args([*common, "--n-steps", "500", "--eval-freq", "250", "--ref-min", "0"])


def test_run_script_imports_only_what_the_d3rlpy_venv_has():
    check_script_imports(RUN_SCRIPT, {"numpy", "h5py", "torch", "gymnasium", "d3rlpy", "mujoco"})


# -------------------------------------------------------------------------------------------- run_d3rlpy


def call(python, out, **kwargs):
    return run_d3rlpy(
        "d3rlpy_iql", "data.hdf5", "Hopper-v4", n_steps=10, seed=3, out_dir=out, eval_freq=5, eval_episodes=1,
        final_eval_episodes=1, python=python, echo=False, **kwargs,
    )


def test_run_d3rlpy_failure_raises_with_stderr_tail(tmp_path):
    python = fake_python(tmp_path, "print('some progress')\nprint('boom: d3rlpy exploded', file=sys.stderr)\n"
                                   "sys.exit(1)")
    out = tmp_path / "run"
    with pytest.raises(ExternalBaselineError) as error:
        call(python, out)
    message = str(error.value)
    assert "boom: d3rlpy exploded" in message and "exit status 1" in message and "--algo iql" in message
    assert "some progress" not in message  # stderr's tail only
    log = (out / d3rlpy_baseline.LOG_NAME).read_text()
    assert "some progress" in log and "boom" in log


def test_run_d3rlpy_success_returns_run_json_and_cleans_env(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    python = fake_python(
        tmp_path,
        "args = sys.argv[1:]\nout = args[args.index('--out') + 1]\n"
        "record = {'algo': 'd3rlpy_iql', 'argv': args, 'pythonpath': os.environ.get('PYTHONPATH'),\n"
        "          'omp': os.environ.get('OMP_NUM_THREADS')}\n"
        "open(os.path.join(out, 'run.json'), 'w').write(json.dumps(record))",
    )
    record = call(python, tmp_path / "run", ref_min=-1.0, ref_max=2.0)
    argv = record["argv"]
    assert argv[0] == str(RUN_SCRIPT)
    assert argv[argv.index("--dataset") + 1] == str(Path("data.hdf5").resolve())
    assert argv[argv.index("--algo") + 1] == "iql" and argv[argv.index("--ref-max") + 1] == "2.0"
    assert record["pythonpath"] is None and record["omp"] == "1"


def test_run_d3rlpy_never_returns_a_stale_run_json(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text('{"algo": "stale"}')
    with pytest.raises(ExternalBaselineError, match="no readable"):
        call(fake_python(tmp_path, "sys.exit(0)"), out)


def test_observation_scaler_option_reaches_the_script(run_module, tmp_path):
    assert d3rlpy_baseline.OBSERVATION_SCALERS == run_module.OBSERVATION_SCALERS
    common = dict(n_steps=10, seed=0, out_dir=tmp_path, eval_freq=5, eval_episodes=1, final_eval_episodes=1)
    assert "--observation-scaler" not in d3rlpy_command("py", "iql", "d.hdf5", "Hopper-v4", **common)
    command = d3rlpy_command("py", "iql", "d.hdf5", "Hopper-v4", observation_scaler="standard", **common)
    assert command[-2:] == ["--observation-scaler", "standard"]
    args = run_module.parse_args(command[2:])
    assert args.observation_scaler == "standard"
    with pytest.raises(ValueError, match="script, standard, none"):
        d3rlpy_command("py", "iql", "d.hdf5", "Hopper-v4", observation_scaler="minmax", **common)


def test_command_arguments_are_checked():
    with pytest.raises(ValueError, match="Unknown d3rlpy algorithm"):
        d3rlpy_command("python", "bcq", "d", "Hopper-v4", n_steps=1, seed=0, out_dir="o", eval_freq=1,
                       eval_episodes=1, final_eval_episodes=1)
    with pytest.raises(ValueError, match="both"):
        d3rlpy_command("python", "cql", "d", "Hopper-v4", n_steps=1, seed=0, out_dir="o", eval_freq=1,
                       eval_episodes=1, final_eval_episodes=1, ref_min=0.0)


# ----------------------------------------------------------------------------- the exported file and its data


def hopper_episodes(seed: int, lengths=(6, 5, 4)) -> list:
    """Synthetic Hopper-v4-shaped episodes, the last one ending by termination (so the file holds one fewer)."""
    from rl.datasets import Episode

    rng = np.random.default_rng(seed)
    episodes = []
    for index, steps in enumerate(lengths):
        terminations, truncations = np.zeros(steps, bool), np.zeros(steps, bool)
        (terminations if index % 2 == 0 else truncations)[-1] = True
        episodes.append(Episode(
            observations=rng.normal(size=(steps + 1, 11)), actions=rng.uniform(-1, 1, size=(steps, 3)),
            rewards=rng.normal(size=steps), terminations=terminations, truncations=truncations, seed=index,
        ))
    return episodes


@pytest.fixture
def minari_store(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    return tmp_path / "minari"


def test_export_fingerprint_is_the_files_and_a_remade_dataset_is_exported_again(minari_store, tmp_path):
    from rl.datasets import load_dataset, write_minari_dataset

    write_minari_dataset("frontier/hopper/medium-v0", hopper_episodes(0), env_id="Hopper-v4")
    first = d3rlpy_baseline.export_dataset("hopper-medium-v2", tmp_path / "exports")
    assert first.rewritten and first.path == tmp_path / "exports" / "hopper-medium-v2.hdf5"
    in_file = load_dataset(first.path)
    assert first.fingerprint == in_file.fingerprint()  # the transitions d3rlpy reads
    assert first.source_fingerprint == load_dataset("hopper-medium-v2").fingerprint()  # what our side reads
    assert first.fingerprint != first.source_fingerprint and len(in_file) == 15 - 1 - 1  # D4RL drops the last row
    record = json.loads((tmp_path / "exports" / "hopper-medium-v2.hdf5.source.json").read_text())
    assert (record["fingerprint"], record["source_fingerprint"]) == (first.fingerprint, first.source_fingerprint)

    again = d3rlpy_baseline.export_dataset("hopper-medium-v2", tmp_path / "exports")
    assert not again.rewritten and (again.fingerprint, again.source_fingerprint) == (first.fingerprint,
                                                                                      first.source_fingerprint)

    # The dataset is remade with other transitions: the stale export is detected and written again.
    write_minari_dataset("frontier/hopper/medium-v0", hopper_episodes(1, (7, 3)), env_id="Hopper-v4", overwrite=True)
    remade = d3rlpy_baseline.export_dataset("hopper-medium-v2", tmp_path / "exports")
    source = load_dataset("hopper-medium-v2")
    assert remade.rewritten and remade.source_fingerprint == source.fingerprint() != first.source_fingerprint
    in_file = load_dataset(remade.path)
    assert remade.fingerprint == in_file.fingerprint() != first.fingerprint
    np.testing.assert_array_equal(in_file.observations, source.observations[: len(in_file)])


def test_an_export_without_a_record_or_changed_since_is_written_again(minari_store, tmp_path):
    from rl.datasets import export_d4rl_file, load_dataset, write_minari_dataset

    write_minari_dataset("frontier/hopper/medium-v0", hopper_episodes(0), env_id="Hopper-v4")
    write_minari_dataset("frontier/hopper/expert-v0", hopper_episodes(1), env_id="Hopper-v4")
    other = export_d4rl_file("hopper-expert-v2", tmp_path / "other")
    exports = tmp_path / "exports"
    exports.mkdir()
    # An export made before records were kept (here of other data): which data it holds is unknown.
    shutil.copy(other, exports / "hopper-medium-v2.hdf5")
    exported = d3rlpy_baseline.export_dataset("hopper-medium-v2", exports)
    assert exported.rewritten
    assert exported.fingerprint == load_dataset(exported.path).fingerprint() != load_dataset(other).fingerprint()
    # The file changed after its record was written: written again.
    shutil.copy(other, exported.path)
    assert d3rlpy_baseline.export_dataset("hopper-medium-v2", exports).rewritten
    assert not d3rlpy_baseline.export_dataset("hopper-medium-v2", exports).rewritten


def test_an_hdf5_file_is_read_as_it_is(tmp_path):
    from offline_data import random_dataset, write_hdf5

    from rl.datasets import load_dataset

    path = write_hdf5(random_dataset("Pendulum-v1", n=50), tmp_path / "tiny.hdf5")
    exported = d3rlpy_baseline.export_dataset(path, tmp_path / "exports")
    assert exported.path == path and not exported.rewritten
    assert exported.fingerprint == exported.source_fingerprint == load_dataset(path).fingerprint()
    assert not list((tmp_path / "exports").glob("*.json"))


# ------------------------------------------------------------------------------------------------- the venv


def test_venv_path_override(monkeypatch, tmp_path):
    check_venv_location(d3rlpy_venv, monkeypatch, tmp_path, "d3rlpy-2.8.1")


def test_marker_decides_completeness(tmp_path):
    assert not d3rlpy_venv.is_complete(tmp_path / "missing")
    make_venv_dir(tmp_path / "half", None)
    assert not d3rlpy_venv.is_complete(tmp_path / "half")
    make_venv_dir(tmp_path / "old", {"requirements": ["d3rlpy==2.7.0"]})
    assert not d3rlpy_venv.is_complete(tmp_path / "old")
    make_venv_dir(tmp_path / "ok", {"requirements": list(d3rlpy_venv.REQUIREMENTS)})
    assert d3rlpy_venv.is_complete(tmp_path / "ok")
    d3rlpy_venv.venv_python(tmp_path / "ok").unlink()
    assert not d3rlpy_venv.is_complete(tmp_path / "ok")


def test_half_installed_venv_is_repaired_and_marked_last(tmp_path):
    path = tmp_path / "venv"
    make_venv_dir(path, None)
    calls = []

    def fake_run(command, *, echo, what, path):
        calls.append((list(command), d3rlpy_venv.marker_path(path).exists()))
        return '{"d3rlpy": "2.8.1"}\n' if "-c" in command else ""

    python = d3rlpy_venv.ensure_venv(path, run=fake_run, python_runs=lambda python: True)
    assert python == d3rlpy_venv.venv_python(path)
    commands = [command for command, _ in calls]
    assert "venv" not in commands[0]  # its python still runs: repaired in place, not recreated
    assert commands[0][-1] == d3rlpy_venv.TORCH_REQUIREMENT  # torch first, alone
    assert commands[1][-len(d3rlpy_venv.REQUIREMENTS):] == list(d3rlpy_venv.REQUIREMENTS)
    assert commands[2][1] == "-c"  # the import check
    assert not any(marked for _, marked in calls)  # marker written only after every step
    assert d3rlpy_venv.read_marker(path)["versions"] == {"d3rlpy": "2.8.1"}
    calls.clear()
    assert d3rlpy_venv.ensure_venv(path) == python and calls == []  # complete: nothing runs


def test_failed_install_names_command_and_fix_and_leaves_no_marker(tmp_path):
    base = fake_python(tmp_path, "print('ERROR: No matching distribution (network unreachable)')\nsys.exit(2)")
    path = tmp_path / "venv"
    with pytest.raises(ExternalBaselineError) as error:
        d3rlpy_venv.ensure_venv(path, base_python=base)
    message = str(error.value)
    assert "\n" not in message  # one line
    assert "-m venv" in message and "network unreachable" in message and "status 2" in message
    assert "Fix:" in message and d3rlpy_venv.VENV_ENV_VAR in message
    assert not d3rlpy_venv.marker_path(path).exists() and not d3rlpy_venv.is_complete(path)
    assert os.path.exists(tmp_path / f".{path.name}.lock")
