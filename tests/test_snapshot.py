"""S3RL: snapshot collection and files, status classification, truncation, the switch back, the CLI.

Mutation testing (mutmut 3.8.1) of algos/snapshot.py: 992 mutants; of the first 405 run, 146 survived before these
tests, 59 after (the env-free tests at the end: hand-built sets, file errors, the parser, main's wiring). None of the
59 changes a value, a default, a file or an error a user sees:

- ``help=`` text of a flag changed, ``None`` or left out (50 mutants): only ``--help`` shows it; not pinned.
- ``runner_parser("XXsnapshotXX")``/``("SNAPSHOT")`` (2): the name only sets ``prog``, overwritten next line, and
  "snapshot" is no registered algorithm either way, so ``--env`` stays required and no offline flags appear.
- ``default=None`` left out of ``--teacher-algo``, ``--snapshots``, ``--clusters`` (3): argparse's default is None.
- ``KMeans(...)`` without ``n_init="auto"``: scikit-learn's default has been "auto" since 1.4.
- ``values.reshape(-2, 1)``: numpy reads any negative size as "infer", the same as -1.
- ``config_from_args(args, None)`` or ``(args, )`` in ``main`` (2): it falls back to ``args.algo``.

Second pass, the snapshot choice itself (the wrapper, collection and the teacher's value: 255 mutants): 62 survived
before the tests under "the wrapper's settings and seeds", 6 after:

- ``np.array(obs, copy=...)`` in ``collect_snapshots`` with ``copy=None``/``False`` or left out (3): MuJoCo envs build
  a new observation array each step, so nothing else holds the stored one.
- ``np.array(snapshot.observation)`` without ``copy=True`` in ``reset`` (1): numpy copies by default.
- ``episodes.sort()`` without its key (2): sorting the (return, snapshots) pairs orders by return; only two equal
  returns would reach the snapshot lists (and raise).

Third pass (the cache, the teacher's files, the runner's configuration: 423 mutants of ``SnapshotSet.save``/``load``,
``default_snapshot_path``, ``file_sha256``, ``get_or_collect_snapshots``, ``teacher_algo_name``, ``load_teacher``,
``SnapshotOptions`` and ``configure``, regenerated after snapshot.py changed): 93 survived the tests of the day
(without the 12-second CLI test), 19 of them among the first 142. The tests they led to (the file's missing folders,
the teacher's errors and a teacher without a record; the cache's defaults, refusals and first collection; configure's
wiring, checked by hand) kill all but 5:

- ``pickle.dump`` with ``protocol=None`` or none (2): the default protocol writes the same set, which loads the same.
- ``hashlib.file_digest(handle, "SHA256")``: hashlib takes the algorithm's name in either case.
- ``getattr(snapshots, "collection")`` without its default, in ``get_or_collect_snapshots`` and ``configure`` (2):
  ``collection`` is a dataclass field with a default, so the class has it even where an old pickle does not.
"""

import copy
import json
import pickle
import re
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import PPO, SAC

from algos.snapshot import (
    SNAPSHOT_FORMAT_VERSION,
    Snapshot,
    SnapshotFileError,
    SnapshotOptions,
    SnapshotReset,
    SnapshotSet,
    TeacherError,
    build_parser,
    collect_snapshots,
    configure,
    default_snapshot_path,
    get_or_collect_snapshots,
    load_teacher,
    main,
    recover_collection,
    teacher_algo_name,
    teacher_value,
)
from rl.env_state import StateNotRestorableError, capture_state, restore_state
from rl.envs import make_env

EPISODE = 60  # short HalfCheetah episodes keep the tests fast


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """An untrained but real SAC teacher, saved as the runner saves models."""
    folder = tmp_path_factory.mktemp("teacher")
    model = SAC("MlpPolicy", "HalfCheetah-v4", policy_kwargs=dict(net_arch=[16]), seed=0, buffer_size=100)
    path = folder / "HalfCheetah-v4.zip"
    model.save(path)
    (folder / "run.json").write_text(json.dumps({"algo": "sac"}))
    return model, path


@pytest.fixture(scope="module")
def snapshots(teacher):
    env = make_env("HalfCheetah-v4", max_episode_steps=EPISODE)
    return collect_snapshots(teacher[0], env, n_episodes=3, keep_best=2, interval=10, progress=False)


def test_collection_keeps_the_best_episodes_every_interval(snapshots):
    assert len(snapshots.episode_returns) == 2
    assert snapshots.episode_returns[0] >= snapshots.episode_returns[1]
    assert len(snapshots) == 2 * EPISODE // 10
    assert sorted({s.step for s in snapshots.snapshots}) == list(range(0, EPISODE, 10))
    assert np.isfinite(snapshots.values).all() and np.ptp(snapshots.values) > 0


def test_snapshot_reset_returns_the_recorded_observation(snapshots):
    env = SnapshotReset(make_env("HalfCheetah-v4", max_episode_steps=EPISODE), snapshots, seed=0)
    obs, info = env.reset(seed=0)
    snapshot = snapshots.snapshots[info["snapshot"]]
    np.testing.assert_array_equal(obs, snapshot.observation)
    np.testing.assert_array_equal(obs, env.unwrapped._get_obs())  # the simulator is really in that state


def test_status_classification_samples_every_cluster(snapshots):
    env = SnapshotReset(make_env("HalfCheetah-v4", max_episode_steps=EPISODE), snapshots, n_clusters=4, seed=0)
    labels = snapshots.labels
    assert len(np.unique(labels)) == 4
    chosen = [env.choose() for _ in range(400)]
    counts = np.bincount(labels[chosen], minlength=4)
    assert (counts > 0).all()
    # A cluster is chosen uniformly, whatever its size: each gets about a quarter of the draws.
    assert counts.min() > 60
    uniform = SnapshotReset(make_env("HalfCheetah-v4", max_episode_steps=EPISODE), snapshots, classify=False, seed=0)
    assert len(set(uniform.choose() for _ in range(400))) == len(snapshots)


def test_truncation_is_a_truncation_not_a_termination(snapshots):
    env = SnapshotReset(make_env("HalfCheetah-v4", max_episode_steps=1000), snapshots, max_steps=7, seed=0)
    env.reset(seed=0)
    flags = [env.step(env.action_space.sample())[2:4] for _ in range(7)]
    assert flags[-1] == (False, True)
    assert all(flag == (False, False) for flag in flags[:-1])
    no_stt = SnapshotReset(make_env("HalfCheetah-v4", max_episode_steps=1000), snapshots, max_steps=7,
                           truncate=False, seed=0)
    no_stt.reset(seed=0)
    assert not any(no_stt.step(no_stt.action_space.sample())[3] for _ in range(10))


def test_switches_back_to_normal_resets_after_active_steps(snapshots):
    env = SnapshotReset(make_env("HalfCheetah-v4", max_episode_steps=EPISODE), snapshots, active_steps=15,
                        max_steps=5, seed=0)
    starts = []  # (env steps so far, whether the reset restored a snapshot)
    _, info = env.reset(seed=0)
    starts.append((env.steps_taken, "snapshot" in info))
    for _ in range(40):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            _, info = env.reset()
            starts.append((env.steps_taken, "snapshot" in info))
    # Restarts every 5 steps from snapshots while fewer than 15 steps were taken, then normal episodes.
    assert starts[:4] == [(0, True), (5, True), (10, True), (15, False)]
    assert not env.active


def test_snapshot_file_round_trip_and_errors(snapshots, tmp_path):
    path = tmp_path / "cache" / "HalfCheetah-v4" / "snaps.pkl"  # folders that do not exist yet
    snapshots.save(path)
    assert [p.name for p in path.parent.iterdir()] == ["snaps.pkl"]  # no temporary file left beside it
    loaded = SnapshotSet.load(path)
    assert loaded.env_id == "HalfCheetah-v4" and len(loaded) == len(snapshots)
    np.testing.assert_array_equal(loaded.values, snapshots.values)
    np.testing.assert_array_equal(loaded.snapshots[3].state.physics, snapshots.snapshots[3].state.physics)
    with pytest.raises(SnapshotFileError, match="does not exist"):
        SnapshotSet.load(tmp_path / "missing.pkl")
    (tmp_path / "garbage.pkl").write_bytes(b"not a pickle")
    with pytest.raises(SnapshotFileError, match="corrupt"):
        SnapshotSet.load(tmp_path / "garbage.pkl")
    (tmp_path / "other.pkl").write_bytes(pickle.dumps({"something": "else"}))
    with pytest.raises(SnapshotFileError, match="not a frontier-rl snapshot file"):
        SnapshotSet.load(tmp_path / "other.pkl")
    wrong_class = {"format": "frontier-rl snapshots", "version": SNAPSHOT_FORMAT_VERSION, "set": {"snapshots": []}}
    (tmp_path / "wrong_class.pkl").write_bytes(pickle.dumps(wrong_class))
    with pytest.raises(SnapshotFileError, match="holds a builtins.dict, not an algos.snapshot.SnapshotSet"):
        SnapshotSet.load(tmp_path / "wrong_class.pkl")


def test_wrong_env_for_snapshots(snapshots):
    with pytest.raises(SnapshotFileError, match="collected on HalfCheetah-v4"):
        SnapshotReset(make_env("Hopper-v4"), snapshots)


def test_teacher_errors(teacher, tmp_path):
    from gymnasium.envs.mujoco.half_cheetah_v4 import HalfCheetahEnv
    from gymnasium.envs.mujoco.hopper_v4 import HopperEnv

    with pytest.raises(TeacherError, match=f"^Teacher {re.escape(repr(str(teacher[1])))} was trained with "
                                           r"observation_space Box\(.+\), but Hopper-v4 has Box\("):
        load_teacher(teacher[1], make_env("Hopper-v4"))
    with pytest.raises(TeacherError, match=r", but the env has Box\("):
        load_teacher(teacher[1], HopperEnv())  # no spec: not made by gym.make
    with pytest.raises(TeacherError, match="does not exist") as error:
        load_teacher(tmp_path / "none.zip", make_env("HalfCheetah-v4"))
    assert str(error.value).endswith(" Train one with the shared runner, e.g. "
                                     "`python -m rl --algo sac --env HalfCheetah-v4 -n 300000`.")
    with pytest.raises(TeacherError, match=re.escape("`python -m rl --algo sac --env <env> -n 300000`.")):
        load_teacher(tmp_path / "none.zip", HalfCheetahEnv())  # no spec: not made by gym.make
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / "model.zip").write_bytes(teacher[1].read_bytes())
    message = (f"Cannot tell which algorithm trained {str(tmp_path / 'bare' / 'model.zip')!r} (no run.json or "
               "entry.json beside it): pass --teacher-algo (sac, td3, ppo, mdpo, mdpo_off, ...).")
    with pytest.raises(TeacherError, match=f"^{re.escape(message)}$"):
        teacher_algo_name(tmp_path / "bare" / "model.zip")


def test_a_teacher_without_a_record_loads_with_its_algorithm_named_on_the_device_asked(teacher, tmp_path,
                                                                                       requested_devices):
    (tmp_path / "model.zip").write_bytes(teacher[1].read_bytes())  # no run.json or entry.json beside it
    model, normalization = load_teacher(tmp_path / "model.zip", make_env("HalfCheetah-v4"), algo="sac", device="cpu")
    assert isinstance(model, SAC) and normalization is None
    assert "cpu" in requested_devices and "auto" not in requested_devices


def test_unrestorable_env_is_refused_before_collecting():
    model = PPO("MlpPolicy", "CartPole-v1", n_steps=64, policy_kwargs=dict(net_arch=[8]))
    with pytest.raises(StateNotRestorableError, match="CartPole-v1"):
        collect_snapshots(model, make_env("CartPole-v1"), n_episodes=1, progress=False)


def test_cli_trains_a_student_from_a_tiny_teacher(teacher, tmp_path):
    argv = ["--algo", "sac", "--env", "HalfCheetah-v4", "--teacher", str(teacher[1]), "-n", "300",
            "--snapshots", str(tmp_path / "s.pkl"), "--teacher-episodes", "1", "--snapshot-steps", "200",
            "--max-student-steps", "50", "-f", str(tmp_path), "--eval-freq", "-1", "--final-eval-episodes", "1",
            "--save-freq", "-1", "--no-progress", "--verbose", "0",
            "-params", "learning_starts:100", "buffer_size:1000", "policy_kwargs:dict(net_arch=[16])"]
    assert main(argv) == 0
    record = json.loads((tmp_path / "s3rl_sac" / "HalfCheetah-v4_1" / "run.json").read_text())
    assert record["snapshotrl"]["n_clusters"] == 4 and record["snapshotrl"]["truncation"]
    assert record["num_timesteps"] == 300
    assert record["config"]["env_wrapper"] == "algos.snapshot.SnapshotReset"  # by name: the snapshots are big
    # The student's monitor saw the truncated snapshot episodes: 200 snapshot steps / 50 per restart.
    lines = (tmp_path / "s3rl_sac" / "HalfCheetah-v4_1" / "0.monitor.csv").read_text().splitlines()[2:]
    assert [int(line.split(",")[1]) for line in lines][:4] == [50, 50, 50, 50]
    assert (tmp_path / "s.pkl").is_file()  # snapshots cached for the next student


def test_cli_reports_a_missing_teacher(tmp_path, capsys):
    assert main(["--algo", "sac", "--env", "HalfCheetah-v4", "--teacher", str(tmp_path / "no.zip"),
                 "-f", str(tmp_path)]) == 2
    assert "Train one with the shared runner" in capsys.readouterr().err


def test_benchmark_harness_runs_s3rl_labels(teacher, tmp_path):
    from rl.benchmark import execute, plan

    hyperparams = {"teacher": str(teacher[1]), "snapshots": str(tmp_path / "s.pkl"), "teacher_episodes": 1,
                   "snapshot_steps": 100, "classification": False, "learning_starts": 50, "buffer_size": 500,
                   "policy_kwargs": {"net_arch": [16]}}
    spec = plan("s3rl", ["s3rl_sac_nosc"], ["HalfCheetah-v4"], [0], 150, hyperparams={"s3rl_sac_nosc": hyperparams},
                results_root=str(tmp_path / "results"), logs_root=str(tmp_path / "logs"), eval_freq=-1,
                final_eval_episodes=1, save_freq=-1)[0]
    outcome = execute(spec)
    assert "error" not in outcome, outcome.get("error")
    record = outcome["record"]
    assert record["label"] == "s3rl_sac_nosc" and record["algo"] == "sac"
    assert record["snapshotrl"]["classification"] is False and record["num_timesteps"] == 150


def test_snapshots_on_a_pybullet_env():
    model = PPO("MlpPolicy", make_env("HopperBulletEnv-v0"), n_steps=64, policy_kwargs=dict(net_arch=[8]), seed=0)
    snapshots = collect_snapshots(model, make_env("HopperBulletEnv-v0"), n_episodes=2, interval=5, progress=False)
    assert snapshots.snapshots[0].state.engine == "pybullet"
    env = SnapshotReset(make_env("HopperBulletEnv-v0"), snapshots, n_clusters=2, max_steps=3, seed=1)
    obs, info = env.reset(seed=1)
    np.testing.assert_array_equal(obs, snapshots.snapshots[info["snapshot"]].observation)
    assert [env.step(env.action_space.sample())[3] for _ in range(3)][-1] or env.unwrapped._alive < 0


def test_resumed_s3rl_run_continues_the_snapshot_phase(teacher, tmp_path):
    import shutil

    from rl.checkpoint import list_checkpoints
    from rl.runner import RunConfig, train

    def run(n_timesteps):
        config = RunConfig(algo="sac", env="HalfCheetah-v4", n_timesteps=n_timesteps, run_dir=str(tmp_path / "run"),
                           eval_freq=-1, final_eval_episodes=1, save_freq=100, progress=False, verbose=0,
                           hyperparams={"learning_starts": 50, "buffer_size": 500, "policy_kwargs": {"net_arch": [16]}})
        options = SnapshotOptions(teacher=str(teacher[1]), snapshots=str(tmp_path / "s.pkl"), teacher_episodes=1,
                                  snapshot_steps=1000)
        return train(configure(config, options, progress=False))

    run(200)
    shutil.rmtree(list_checkpoints(tmp_path / "run" / "checkpoints")[-1])  # interrupted after step 100
    result = run(300)
    assert result.record["resumed_from"].endswith("step_000000000100")
    assert result.model.get_env().get_attr("steps_taken") == [300]  # 100 before the interruption + 200 after


def test_teacher_from_the_policy_zoo(teacher, tmp_path, monkeypatch):
    import shutil

    from rl import zoo
    from rl.runner import RunConfig

    folder = tmp_path / "zoo" / "HalfCheetah-v4" / "expert"
    folder.mkdir(parents=True)
    shutil.copy(teacher[1], folder / zoo.MODEL_FILE)
    (folder / zoo.ENTRY_FILE).write_text(json.dumps(dict(
        env="HalfCheetah-v4", level="expert", algo="sac", target_return=1.0, mean_return=1.0, std_return=0.0,
        reached=True, n_timesteps=1, seed=0, folder=str(folder))))
    monkeypatch.setenv(zoo.ZOO_ENV_VAR, str(tmp_path / "zoo"))
    config = RunConfig(algo="td3", env="HalfCheetah-v4")
    configure(config, SnapshotOptions(teacher="zoo:expert", teacher_episodes=1), progress=False)
    assert config.extra_record["snapshotrl"]["teacher"] == str(folder / zoo.MODEL_FILE)
    assert config.label == "s3rl_td3" and config.env_wrapper is not None


def test_cached_snapshots_of_a_retrained_teacher_are_refused(teacher, tmp_path):
    """A cache beside a teacher that was retrained since would silently mix two teachers into one benchmark."""
    model_path = tmp_path / "teacher.zip"
    model_path.write_bytes(teacher[1].read_bytes())
    (tmp_path / "run.json").write_text(json.dumps({"algo": "sac"}))
    collected, cache = get_or_collect_snapshots("HalfCheetah-v4", str(model_path), n_episodes=1, progress=False)
    assert collected.teacher_sha256
    assert get_or_collect_snapshots("HalfCheetah-v4", str(model_path), n_episodes=1)[1] == cache
    SAC("MlpPolicy", "HalfCheetah-v4", policy_kwargs=dict(net_arch=[16]), seed=1, buffer_size=100).save(model_path)
    with pytest.raises(SnapshotFileError, match="another version of the teacher"):
        get_or_collect_snapshots("HalfCheetah-v4", str(model_path), n_episodes=1)


def test_python_m_cli_reuses_its_own_snapshot_cache(teacher, tmp_path):
    """`python -m algos.snapshot` runs the module as ``__main__``: its cache must still load, there and elsewhere."""
    import subprocess
    import sys

    cache = tmp_path / "s.pkl"
    argv = [sys.executable, "-m", "algos.snapshot", "--algo", "sac", "--env", "HalfCheetah-v4",
            "--teacher", str(teacher[1]), "--snapshots", str(cache), "--teacher-episodes", "1", "-n", "110",
            "-f", str(tmp_path), "--eval-freq", "-1", "--final-eval-episodes", "1", "--save-freq", "-1",
            "--no-progress", "--verbose", "0", "-params", "learning_starts:100", "buffer_size:200",
            "policy_kwargs:dict(net_arch=[8])"]
    for _ in range(2):  # the first run collects the snapshots, the second loads them
        result = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
    assert SnapshotSet.load(cache).env_id == "HalfCheetah-v4"


def test_a_cache_collected_with_other_settings_is_refused_and_the_record_holds_the_real_ones(teacher, tmp_path):
    cache = str(tmp_path / "s.pkl")
    collected, _ = get_or_collect_snapshots("HalfCheetah-v4", str(teacher[1]), path=cache, n_episodes=1,
                                            keep_best=1, interval=10, progress=False)
    assert collected.collection == {"interval": 10, "teacher_episodes": 1, "keep_best": 1, "seed": 0}
    with pytest.raises(SnapshotFileError, match="--snapshot-interval 10 in the cache, 5 asked"):
        get_or_collect_snapshots("HalfCheetah-v4", str(teacher[1]), path=cache, n_episodes=1, keep_best=1,
                                 interval=5, progress=False)
    from rl.runner import RunConfig

    config = configure(RunConfig(algo="sac", env="HalfCheetah-v4"), SnapshotOptions(
        teacher=str(teacher[1]), snapshots=cache, teacher_episodes=1, keep_best=1), progress=False)
    assert config.extra_record["snapshotrl"]["collection"]["interval"] == 10


def test_a_cache_from_before_settings_were_recorded_is_used_and_says_so(teacher, tmp_path):
    cache = tmp_path / "old.pkl"
    collected, _ = get_or_collect_snapshots("HalfCheetah-v4", str(teacher[1]), path=str(cache), n_episodes=1,
                                            keep_best=1, progress=False)
    collected.collection = None
    collected.save(cache)
    from rl.runner import RunConfig

    config = configure(RunConfig(algo="sac", env="HalfCheetah-v4"), SnapshotOptions(
        teacher=str(teacher[1]), snapshots=str(cache), teacher_episodes=3), progress=False)
    assert config.extra_record["snapshotrl"]["collection"].startswith("unknown")


def test_a_cache_of_the_default_settings_loads_with_the_defaults_and_only_for_its_env(tmp_path):
    """The defaults are the CLI's (10 episodes, 10 kept, every 10 steps, seed 0): their own cache loads unasked."""
    cache = tmp_path / "s.pkl"
    cached = _hand_set([1.0, 2.0])
    cached.collection = {"interval": 10, "teacher_episodes": 10, "keep_best": 10, "seed": 0}
    cached.teacher_sha256 = "digest of a model file"
    cached.save(cache)
    # "zoo:expert" is no file, so there is no digest to compare with the recorded one: the cache is used
    loaded, path = get_or_collect_snapshots("HalfCheetah-v4", "zoo:expert", path=str(cache))
    assert path == str(cache) and [s.value for s in loaded.snapshots] == [1.0, 2.0]
    message = f"{str(cache)!r} holds snapshots of HalfCheetah-v4, not Hopper-v4."
    with pytest.raises(SnapshotFileError, match=f"^{re.escape(message)}$"):
        get_or_collect_snapshots("Hopper-v4", "zoo:expert", path=str(cache))


def test_a_cache_of_other_settings_is_refused_naming_each_flag_and_the_fix(tmp_path):
    cache = tmp_path / "s.pkl"
    cached = _hand_set([1.0])
    cached.collection = {"interval": 10, "teacher_episodes": 10, "keep_best": 10, "seed": 0}
    cached.save(cache)
    message = (f"{str(cache)!r} was collected with other settings (--snapshot-interval 10 in the cache, 5 asked; "
               "--teacher-episodes 10 in the cache, 3 asked; --keep-best 10 in the cache, 2 asked; "
               "seed= (of get_or_collect_snapshots) 0 in the cache, 1 asked): pass the cache's settings, or delete "
               "the file (or pass --snapshots <new file>) to collect again.")
    with pytest.raises(SnapshotFileError, match=f"^{re.escape(message)}$"):
        get_or_collect_snapshots("HalfCheetah-v4", "zoo:expert", path=str(cache), n_episodes=3, keep_best=2,
                                 interval=5, seed=1)


def test_configure_hands_every_option_to_the_reset_wrapper_and_the_record(tmp_path):
    """What ``configure`` builds from the options: the wrapper's settings, the label, the teacher's statistics."""
    from rl.runner import RunConfig

    cache = tmp_path / "s.pkl"
    cached = _hand_set([1.0, 2.0])
    cached.collection = {"interval": 5, "teacher_episodes": 1, "keep_best": 1, "seed": 0}
    cached.save(cache)
    options = dict(teacher=str(tmp_path / "teacher.zip"), snapshots=str(cache), teacher_episodes=1, keep_best=1,
                   snapshot_interval=5, snapshot_steps=7, max_student_steps=9)
    config = configure(RunConfig(algo="td3", env="HalfCheetah-v4", seed=3, n_envs=2), SnapshotOptions(
        **options, classification=False, truncation=False), progress=False)
    assert config.label == "s3rl_td3_nosc_nostt" and config.initial_vec_normalize is None
    assert config.env_wrapper.func is SnapshotReset and config.env_wrapper.keywords == dict(
        snapshots=config.env_wrapper.keywords["snapshots"], active_steps=3, max_steps=9, n_clusters=6,
        classify=False, truncate=False, seed=3)  # active steps per env: 7 // 2; k = 6 for a TD3 student
    record = config.extra_record["snapshotrl"]
    assert record["snapshots"] == str(cache) and record["n_snapshots"] == 2 and record["n_clusters"] == 6
    assert record["collection"] == cached.collection and record["snapshot_interval"] == 5
    assert record["teacher_returns"] == cached.episode_returns and record["initial_vec_normalize"] is None

    (tmp_path / "vecnormalize.pkl").write_bytes(b"")  # beside the teacher: an on-policy student starts from it
    ppo = configure(RunConfig(algo="ppo", env="HalfCheetah-v4"), SnapshotOptions(**options), progress=False)
    assert ppo.label == "s3rl_ppo" and ppo.initial_vec_normalize == str(tmp_path / "vecnormalize.pkl")
    assert ppo.env_wrapper.keywords["classify"] and ppo.env_wrapper.keywords["truncate"]
    sac = configure(RunConfig(algo="sac", env="HalfCheetah-v4"), SnapshotOptions(**options), progress=False)
    assert sac.initial_vec_normalize is None and sac.env_wrapper.keywords["n_clusters"] == 4  # off-policy; k = 4
    (tmp_path / "vecnormalize.pkl").unlink()
    assert configure(RunConfig(algo="ppo", env="HalfCheetah-v4"), SnapshotOptions(**options),
                     progress=False).initial_vec_normalize is None


def test_configure_names_the_teachers_algorithm_when_its_folder_does_not(teacher, tmp_path, capsys):
    from rl.runner import RunConfig

    (tmp_path / "model.zip").write_bytes(teacher[1].read_bytes())  # no run.json or entry.json beside it
    config = configure(RunConfig(algo="sac", env="HalfCheetah-v4"), SnapshotOptions(
        teacher=str(tmp_path / "model.zip"), teacher_algo="sac", teacher_episodes=1, keep_best=1), progress=False)
    record = config.extra_record["snapshotrl"]
    assert record["n_snapshots"] > 0 and record["snapshots"] == str(default_snapshot_path(tmp_path / "model.zip"))
    assert record["teacher_returns"] == SnapshotSet.load(record["snapshots"]).episode_returns
    assert "teacher episodes" not in capsys.readouterr().err  # progress=False reaches the collection


def test_a_first_use_collects_with_the_teachers_statistics_and_the_asked_settings(teacher, tmp_path):
    """No cache yet: the teacher's file, its vecnormalize.pkl and every setting asked reach the collection."""
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    folder = tmp_path / "teacher"
    folder.mkdir()
    (folder / "model.zip").write_bytes(teacher[1].read_bytes())
    (folder / "run.json").write_text(json.dumps({"algo": "sac"}))
    stats = VecNormalize(DummyVecEnv([_cheetah]), training=False)
    stats.obs_rms.mean, stats.obs_rms.var = np.full(17, 0.3), np.full(17, 4.0)
    stats.save(folder / "vecnormalize.pkl")
    collected, _ = get_or_collect_snapshots("HalfCheetah-v4", str(folder / "model.zip"), n_episodes=2, keep_best=1,
                                            interval=50, seed=1, progress=False)
    assert collected.collection == {"interval": 50, "teacher_episodes": 2, "keep_best": 1, "seed": 1}
    assert collected.teacher == str(folder / "model.zip") and len(collected) == 1000 // 50
    by_hand = collect_snapshots(teacher[0], make_env("HalfCheetah-v4"), vec_normalize=stats, n_episodes=2,
                                keep_best=1, interval=50, seed=1, progress=False)
    unnormalised = collect_snapshots(teacher[0], make_env("HalfCheetah-v4"), n_episodes=2, keep_best=1, interval=50,
                                     seed=1, progress=False)
    values = [s.value for s in collected.snapshots]
    assert values == pytest.approx([s.value for s in by_hand.snapshots], rel=1e-6)
    assert values != pytest.approx([s.value for s in unnormalised.snapshots], rel=1e-3)


def test_the_retrained_teacher_refusal_names_the_cache_the_teacher_and_the_fix(tmp_path):
    cache, model_path = tmp_path / "s.pkl", tmp_path / "teacher.zip"
    model_path.write_bytes(b"a retrained teacher")
    cached = _hand_set([1.0])
    cached.collection = {"interval": 10, "teacher_episodes": 10, "keep_best": 10, "seed": 0}
    cached.teacher_sha256 = "digest of the teacher it was collected from"
    cached.save(cache)
    message = (f"{str(cache)!r} was collected from another version of the teacher {str(model_path)!r} (the model "
               "file changed since): delete it to collect the snapshots again, or pass the matching teacher.")
    with pytest.raises(SnapshotFileError, match=f"^{re.escape(message)}$"):
        get_or_collect_snapshots("HalfCheetah-v4", str(model_path), path=str(cache))


def test_collecting_through_the_cache_or_configure_shows_a_progress_bar_by_default(teacher, tmp_path, capsys):
    from rl.runner import RunConfig

    get_or_collect_snapshots("HalfCheetah-v4", str(teacher[1]), path=str(tmp_path / "s.pkl"), n_episodes=1,
                             keep_best=1)
    assert "teacher episodes: 100%" in capsys.readouterr().err
    configure(RunConfig(algo="sac", env="HalfCheetah-v4"), SnapshotOptions(
        teacher=str(teacher[1]), snapshots=str(tmp_path / "by_configure.pkl"), teacher_episodes=1, keep_best=1))
    assert "teacher episodes: 100%" in capsys.readouterr().err


def test_collection_settings_of_an_old_cache_are_recovered_from_its_content(teacher):
    env = make_env("HalfCheetah-v4", max_episode_steps=EPISODE)
    collected = collect_snapshots(teacher[0], env, n_episodes=2, keep_best=2, interval=15, seed=3, progress=False)
    settings = collected.collection
    collected.collection = None  # as in a cache written before the settings were recorded
    recovered = recover_collection(collected, seeds=range(5))
    assert recovered is not None and recovered.pop("recovered").startswith("inferred from the cache's content")
    assert recovered == settings == {"interval": 15, "teacher_episodes": 2, "keep_best": 2, "seed": 3}
    assert recover_collection(collected, seeds=[0, 1]) is None  # no candidate seed starts episode 0
    missing_first = SnapshotSet(env_id=collected.env_id, episode_returns=collected.episode_returns[:1],
                                snapshots=[s for s in collected.snapshots if s.episode == 1])
    assert recover_collection(missing_first, seeds=range(5)) is None  # episode 0 was not kept: how many ran?


@pytest.mark.parametrize("env_id, n_snapshots", [("HalfCheetah-v4", 1000), ("Hopper-v4", 717)])
def test_committed_teacher_caches_record_how_they_were_collected(env_id, n_snapshots):
    """The benchmark's caches predate the recording; their settings were recovered from their content (and agree
    with every committed S3RL run record: 10 episodes, 10 kept, every 10 steps) without touching the snapshots."""
    from pathlib import Path

    teachers = Path(__file__).parent.parent / "results" / "snapshot" / "teachers"
    cache = teachers / env_id / "expert" / "model.snapshots.pkl"
    snapshots = SnapshotSet.load(cache)
    assert len(snapshots) == n_snapshots and snapshots.teacher_sha256
    assert {k: snapshots.collection[k] for k in ("interval", "teacher_episodes", "keep_best", "seed")} == {
        "interval": 10, "teacher_episodes": 10, "keep_best": 10, "seed": 0}
    assert "recovered" in snapshots.collection


def _continue_snapshot_resets(env: SnapshotReset, n_steps: int) -> list[tuple]:
    """(snapshot index or None, truncated) of each step, resetting (without a seed) whenever an episode ends."""
    out = []
    for _ in range(n_steps):
        obs, _, terminated, truncated, _ = env.step(np.full(6, 0.1, dtype=np.float32))
        out.append(("step", truncated, obs.tobytes()))
        if terminated or truncated:
            obs, info = env.reset()
            out.append(("reset", info.get("snapshot"), obs.tobytes()))
    return out


def test_snapshot_reset_resume_state_makes_a_fresh_wrapper_choose_the_same(snapshots):
    """A killed run's wrapper, copied into a fresh one (what the checkpoint does), makes the same snapshot choices,
    truncates at the same steps and switches to normal resets at the same step."""
    def wrapper(seed: int) -> SnapshotReset:
        return SnapshotReset(make_env("HalfCheetah-v4", max_episode_steps=EPISODE), snapshots, active_steps=25,
                             max_steps=4, seed=seed)

    source = wrapper(0)
    source.reset(seed=0)
    for _ in range(6):  # one truncation and reset behind it, 2 steps into the next snapshot trajectory
        if source.step(np.zeros(6, dtype=np.float32))[3]:
            source.reset()
    state = source.get_resume_state()
    assert set(state) == {"rng", "steps_taken", "steps_from_snapshot"}
    assert (state["steps_taken"], state["steps_from_snapshot"]) == (6, 2)

    def copied(with_resume_state: bool) -> SnapshotReset:
        fresh = wrapper(123)
        fresh.reset(seed=123)
        restore_state(fresh, capture_state(source))
        fresh.unwrapped.np_random.bit_generator.state = source.unwrapped.np_random.bit_generator.state
        if with_resume_state:
            fresh.set_resume_state(copy.deepcopy(state))
        return fresh

    resumed, unresumed = copied(True), copied(False)
    expected = _continue_snapshot_resets(source, 40)
    assert _continue_snapshot_resets(resumed, 40) == expected
    assert [e[1] for e in expected if e[0] == "reset"][-1] is None  # normal resets after 25 steps
    assert _continue_snapshot_resets(unresumed, 40) != expected


# ----------------------------------------------------------------------------------------------------
# Small, env-free tests of what the mutation testing found unpinned (hand-built sets, the parser, main's wiring)


def _hand_set(values, *, steps=None, episodes=None, env_id="HalfCheetah-v4", observations=None) -> SnapshotSet:
    """A SnapshotSet of hand-made snapshots (no env state: classification and recovery never read it)."""
    n = len(values)
    steps = steps if steps is not None else [10 * i for i in range(n)]
    episodes = episodes if episodes is not None else [0] * n
    observations = observations if observations is not None else [np.full(1, float(i)) for i in range(n)]
    return SnapshotSet(env_id=env_id, snapshots=[
        Snapshot(state=None, observation=obs, info={}, value=float(v), episode=e, step=s)
        for v, e, s, obs in zip(values, episodes, steps, observations)
    ], episode_returns=[0.0] * (max(episodes, default=-1) + 1))


def test_classify_labels_every_snapshot_and_clusters_partition_them():
    values = [0.0, 0.1, 0.2, 5.0, 5.1, 9.0, 9.1, 9.2, 9.3]  # three clear groups, an odd count
    snapshot_set = _hand_set(values)
    assert [list(c) for c in snapshot_set.clusters()] == [list(range(9))]  # unclassified: one cluster of all
    labels = snapshot_set.classify(3)
    assert labels is snapshot_set.labels and labels.shape == (9,)
    groups = sorted(sorted(int(i) for i in cluster) for cluster in snapshot_set.clusters())
    assert groups == [[0, 1, 2], [3, 4], [5, 6, 7, 8]]
    for cluster in snapshot_set.clusters():  # each cluster holds exactly the snapshots of one label
        assert len(set(labels[cluster])) == 1
    # k never exceeds the distinct values, and k = 1 is one cluster (not two).
    assert len(snapshot_set.classify(1, seed=0)) == 9 and len(snapshot_set.clusters()) == 1
    single = _hand_set([3.0])
    assert list(single.classify(4)) == [0] and [list(c) for c in single.clusters()] == [[0]]
    same = _hand_set([2.0, 2.0, 2.0])
    assert list(same.classify(4)) == [0, 0, 0]


def test_classify_default_seed_is_zero_and_an_empty_set_is_refused():
    """The k-means seed decides the label numbering, hence the order of the clusters a seeded run draws from."""
    values = [5.0, 1.0, 9.0, 2.0, 8.0, 4.0, 0.0, 7.0, 3.0, 6.0]
    default = _hand_set(values).classify(3)
    np.testing.assert_array_equal(default, _hand_set(values).classify(3, seed=0))
    assert not np.array_equal(default, _hand_set(values).classify(3, seed=1))  # the seed matters for these values
    with pytest.raises(SnapshotFileError, match=r"^Cannot classify an empty snapshot set\.$"):
        SnapshotSet(env_id="HalfCheetah-v4", snapshots=[]).classify(2)


def test_snapshot_file_errors_name_the_file_and_the_fix(tmp_path):
    def quoted(path) -> str:
        return re.escape(repr(str(path)))

    missing = tmp_path / "missing.pkl"
    with pytest.raises(SnapshotFileError, match=rf"^Snapshot file {quoted(missing)} does not exist\. .*--teacher "
                                                r"<model\.zip>` collects a teacher's snapshots on first use and "
                                                r"caches them\.$"):
        SnapshotSet.load(missing)
    garbage = tmp_path / "garbage.pkl"
    garbage.write_bytes(b"not a pickle")
    with pytest.raises(SnapshotFileError, match=rf"^Snapshot file {quoted(garbage)} is corrupt"):
        SnapshotSet.load(garbage)
    other = tmp_path / "other.pkl"
    other.write_bytes(pickle.dumps({"something": "else"}))
    with pytest.raises(SnapshotFileError, match=rf"^{quoted(other)} is a pickle but not"):
        SnapshotSet.load(other)
    old = tmp_path / "old.pkl"
    old.write_bytes(pickle.dumps({"format": "frontier-rl snapshots", "version": 0, "set": None}))
    with pytest.raises(SnapshotFileError, match=rf"^Snapshot file {quoted(old)} has format version 0, this code "
                                                rf"reads {SNAPSHOT_FORMAT_VERSION}: collect the snapshots again\.$"):
        SnapshotSet.load(old)
    wrong = tmp_path / "wrong_class.pkl"
    wrong.write_bytes(pickle.dumps({"format": "frontier-rl snapshots", "version": SNAPSHOT_FORMAT_VERSION, "set": []}))
    with pytest.raises(SnapshotFileError, match=rf"^Snapshot file {quoted(wrong)} holds a builtins\.list, .*name "
                                                r"__main__\): delete it to collect the snapshots again\.$"):
        SnapshotSet.load(wrong)
    empty = tmp_path / "empty.pkl"
    SnapshotSet(env_id="HalfCheetah-v4", snapshots=[]).save(empty)
    with pytest.raises(SnapshotFileError, match=rf"^Snapshot file {quoted(empty)} holds no snapshots\.$"):
        SnapshotSet.load(empty)


def test_recover_collection_by_hand():
    """Unevenly spaced or late-starting episodes cannot be told; the seed is read from episode 0's first state even
    when a better episode comes first in the file; the note names the kept episodes."""
    late_start = _hand_set([1.0, 2.0, 3.0], steps=[5, 15, 25])  # evenly spaced, but not from step 0
    assert recover_collection(late_start, seeds=[0]) is None
    env = make_env("HalfCheetah-v4")
    first_obs = env.reset(seed=2)[0]
    later_obs = env.reset()[0]  # episode 1 starts where the env's random stream went on
    env.close()
    # The best episode (1) comes first, as collect_snapshots sorts by return.
    snapshot_set = _hand_set([4.0, 3.0, 2.0, 1.0], steps=[0, 10, 0, 10], episodes=[1, 1, 0, 0],
                             observations=[later_obs, later_obs, first_obs, first_obs])
    recovered = recover_collection(snapshot_set, seeds=range(4))
    assert recovered is not None
    assert recovered.pop("recovered") == ("inferred from the cache's content: snapshots every 10 steps, teacher "
                                          "episodes 0-1 all kept (or more episodes, all worse), episode 0 starts at "
                                          "reset(seed=2)")
    assert recovered == {"interval": 10, "teacher_episodes": 2, "keep_best": 2, "seed": 2}


def test_default_snapshot_path_is_beside_the_model():
    from pathlib import Path

    assert default_snapshot_path("runs/teacher/model.zip") == Path("runs/teacher/model.snapshots.pkl")


@pytest.mark.parametrize("clusters", [0, -1, True, 2.0])
def test_clusters_is_a_positive_integer_or_none(clusters):
    """None asks for the authors' k; 0 once slipped through as "default k" without a word."""
    assert SnapshotOptions(teacher="t.zip", clusters=None).clusters is None
    with pytest.raises(TeacherError, match=rf"^--clusters must be an integer >= 1, got {clusters!r}\.$"):
        SnapshotOptions(teacher="t.zip", clusters=clusters)


def test_pop_from_takes_the_s3rl_keys_and_needs_a_teacher():
    hyperparams = {"teacher": "t.zip", "clusters": 3, "learning_starts": 5}
    assert SnapshotOptions.pop_from(hyperparams) == SnapshotOptions(teacher="t.zip", clusters=3)
    assert hyperparams == {"learning_starts": 5}
    with pytest.raises(TeacherError, match=r"^An S3RL run needs a teacher: pass teacher:<model\.zip> with its "
                                           r"hyperparameters\.$"):
        SnapshotOptions.pop_from({"clusters": 3})


def test_parser_defaults_types_and_required_flags(capsys):
    parser = build_parser()
    args = parser.parse_args(["--algo", "sac", "--env", "HalfCheetah-v4", "--teacher", "t.zip"])
    assert (args.teacher_algo, args.snapshots, args.clusters) == (None, None, None)
    assert (args.teacher_episodes, args.keep_best, args.snapshot_interval, args.snapshot_steps,
            args.max_student_steps) == (10, 10, 10, 100_000, 100)
    assert args.no_classification is False and args.no_truncation is False
    args = parser.parse_args(["--algo", "sac", "--env", "HalfCheetah-v4", "--teacher", "t.zip", "--keep-best", "3",
                              "--snapshot-interval", "4", "--clusters", "5", "--teacher-episodes", "6",
                              "--no-classification", "--no-truncation"])
    assert (args.keep_best, args.snapshot_interval, args.clusters, args.teacher_episodes) == (3, 4, 5, 6)
    assert all(type(v) is int for v in (args.keep_best, args.snapshot_interval, args.clusters))
    assert args.no_classification is True and args.no_truncation is True
    for missing in ("--algo", "--teacher"):
        argv = ["--algo", "sac", "--env", "HalfCheetah-v4", "--teacher", "t.zip"]
        del argv[argv.index(missing):argv.index(missing) + 2]
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("usage: python -m algos.snapshot ") and f"required: {missing}" in err


def test_help_says_what_s3rl_does_and_how_to_get_a_teacher(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    usage, description, *_ = capsys.readouterr().out.split("\n\n")
    assert usage.startswith("usage: python -m algos.snapshot ")
    description = " ".join(description.split())  # argparse rewraps it
    assert description.startswith("S3RL: train --algo with resets from a teacher's snapshots for the first ")
    assert description.endswith(" Get a teacher with the shared runner first, e.g. `python -m rl --algo sac --env "
                                "HalfCheetah-v4 -n 300000`.")


@pytest.mark.parametrize("from_sys_argv", [False, True])
def test_main_hands_every_flag_to_configure_and_records_the_command(from_sys_argv, monkeypatch):
    import sys

    import algos.snapshot
    import rl.runner
    seen = {}

    def fake_configure(config, options, *, progress=True):
        seen.update(config=config, options=options, progress=progress)
        return config

    monkeypatch.setattr(algos.snapshot, "configure", fake_configure)
    monkeypatch.setattr(rl.runner, "train", lambda config: seen.setdefault("trained", config))
    argv = ["--algo", "td3", "--env", "HalfCheetah-v4", "--teacher", "t.zip", "--teacher-algo", "sac",
            "--snapshots", "s.pkl", "--teacher-episodes", "3", "--keep-best", "2", "--snapshot-interval", "5",
            "--snapshot-steps", "700", "--max-student-steps", "7", "--clusters", "3", "--no-classification",
            "--no-truncation", "--no-progress"]
    if from_sys_argv:
        monkeypatch.setattr(sys, "argv", ["snapshot.py", *argv])
        assert main() == 0
    else:
        assert main(argv) == 0
    assert seen["options"] == SnapshotOptions(
        teacher="t.zip", teacher_algo="sac", snapshots="s.pkl", teacher_episodes=3, keep_best=2, snapshot_interval=5,
        snapshot_steps=700, max_student_steps=7, clusters=3, classification=False, truncation=False)
    assert seen["progress"] is False
    assert seen["trained"] is seen["config"] and seen["config"].algo == "td3"
    assert seen["config"].command == "python -m algos.snapshot " + " ".join(argv)


# ------------------------------------------------------------------------- the wrapper's settings and seeds


def _cheetah(episode=EPISODE):
    return make_env("HalfCheetah-v4", max_episode_steps=episode)


def test_snapshot_reset_defaults_and_bad_settings(snapshots):
    env = SnapshotReset(_cheetah(), snapshots)
    assert (env.active_steps, env.max_steps) == (100_000, 100)  # the paper's T and N
    assert env.get_resume_state()["steps_from_snapshot"] is None  # no snapshot start before the first reset
    assert SnapshotReset(_cheetah(), snapshots, max_steps=1, active_steps=0).max_steps == 1
    for max_steps, active_steps in ((0, 10), (5, -1)):
        with pytest.raises(ValueError, match=rf"^--max-student-steps must be >= 1 and --snapshot-steps >= 0, got "
                                             rf"{max_steps} and {active_steps}\.$"):
            SnapshotReset(_cheetah(), snapshots, max_steps=max_steps, active_steps=active_steps)
    wrong_first = _hand_set([0.0, 1.0], observations=[np.zeros(3), np.zeros(17)])
    with pytest.raises(SnapshotFileError, match=r"^Snapshot observations have shape \(3,\), the env's \(17,\)\.$"):
        SnapshotReset(_cheetah(), wrong_first)


def test_the_no_sc_ablation_draws_snapshots_uniformly_even_from_a_classified_set():
    """One snapshot of value 0 and nine of value 10: by cluster it is drawn half the time, uniformly a tenth."""
    snapshot_set = _hand_set([0.0] + [10.0] * 9, observations=[np.zeros(17)] * 10)
    snapshot_set.classify(2)
    by_cluster = SnapshotReset(_cheetah(), snapshot_set, n_clusters=2, seed=0)
    uniform = SnapshotReset(_cheetah(), snapshot_set, classify=False, seed=0)
    assert 400 < sum(by_cluster.choose() == 0 for _ in range(1000)) < 600
    assert 50 < sum(uniform.choose() == 0 for _ in range(1000)) < 150


def test_snapshot_choice_follows_the_seed(snapshots):
    def draws(env, n=30):
        return [env.choose() for _ in range(n)]

    assert draws(SnapshotReset(_cheetah(), snapshots, seed=3)) == draws(SnapshotReset(_cheetah(), snapshots, seed=3))
    first, second = SnapshotReset(_cheetah(), snapshots, seed=1), SnapshotReset(_cheetah(), snapshots, seed=2)
    first.reset(seed=5)
    second.reset(seed=5)  # a seed passed to reset replaces the wrapper's
    assert draws(first) == draws(second)


class _RecordingReset(gym.Wrapper):
    """Records the arguments each reset receives."""

    def __init__(self, env):
        super().__init__(env)
        self.calls = []

    def reset(self, **kwargs):
        self.calls.append(kwargs)
        return self.env.reset(**kwargs)


def test_reset_hands_seed_and_options_to_the_env_and_returns_a_copy(snapshots):
    inner = _RecordingReset(_cheetah())
    env = SnapshotReset(inner, snapshots, seed=0)
    obs, info = env.reset(seed=11, options={"x": 1})
    assert inner.calls == [{"seed": 11, "options": {"x": 1}}]
    recorded = snapshots.snapshots[info["snapshot"]].observation.copy()
    obs[:] = 123.0  # a caller writing into the observation must not change the snapshot
    np.testing.assert_array_equal(snapshots.snapshots[info["snapshot"]].observation, recorded)
    normal = SnapshotReset(_cheetah(), snapshots, active_steps=0)
    np.testing.assert_array_equal(normal.reset(seed=7)[0], _cheetah().reset(seed=7)[0])


def test_the_truncating_step_says_so_in_info(snapshots):
    env = SnapshotReset(_cheetah(1000), snapshots, max_steps=2, seed=0)
    env.reset(seed=0)
    assert "snapshot_truncated" not in env.step(env.action_space.sample())[4]
    assert env.step(env.action_space.sample())[4]["snapshot_truncated"] is True


def test_teacher_value_is_the_first_q_at_the_deterministic_action(teacher):
    model = teacher[0]
    observation = np.linspace(-1.0, 1.0, 17).astype(np.float32)
    obs = th.as_tensor(observation).unsqueeze(0)
    with th.no_grad():
        action = model.actor(obs, deterministic=True)
        q1, q2 = model.critic(obs, action)
    assert teacher_value(model, observation) == pytest.approx(float(q1.item()), rel=1e-6)
    assert float(q1.item()) != pytest.approx(float(q2.item()), rel=1e-3)
    ppo = PPO("MlpPolicy", "Pendulum-v1", seed=0)
    with th.no_grad():
        value = ppo.policy.predict_values(th.zeros(1, 3))
    assert teacher_value(ppo, np.zeros(3, dtype=np.float32)) == pytest.approx(float(value.item()), rel=1e-6)

    class NoValueTeacher:
        policy = SimpleNamespace(obs_to_tensor=lambda o: (th.as_tensor(o)[None], True))

    with pytest.raises(TeacherError, match=r"^Teacher NoValueTeacher has neither a Q-function nor a value function\.$"):
        teacher_value(NoValueTeacher(), np.zeros(3, dtype=np.float32))


def test_collection_by_hand_with_a_normalising_teacher(teacher, capsys):
    """The teacher acts deterministically on normalised observations; episodes are ranked by their summed reward;
    snapshots keep the raw observation and the teacher's value of the normalised one."""
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    model = teacher[0]
    stats = VecNormalize(DummyVecEnv([_cheetah]), training=False)
    stats.obs_rms.mean, stats.obs_rms.var = np.full(17, 0.3), np.full(17, 4.0)
    collected = collect_snapshots(model, _cheetah(20), vec_normalize=stats, n_episodes=3, keep_best=2, interval=5,
                                  seed=4, teacher="by hand")
    assert re.search(r"teacher episodes: 100%.*3/3", capsys.readouterr().err)
    env, episodes = _cheetah(20), []
    obs, _ = env.reset(seed=4)
    for episode in range(3):
        if episode:
            obs, _ = env.reset()
        total, snaps, done, step = 0.0, [], False, 0
        while not done:
            seen = np.clip((obs - 0.3) / np.sqrt(4.0 + 1e-8), -10.0, 10.0)
            if step % 5 == 0:
                snaps.append((obs.copy(), teacher_value(model, seen)))
            obs, reward, terminated, truncated, _ = env.step(model.predict(seen, deterministic=True)[0])
            total, step, done = total + reward, step + 1, terminated or truncated
        episodes.append((total, snaps))
    episodes.sort(key=lambda item: item[0], reverse=True)
    assert collected.episode_returns == pytest.approx([episodes[0][0], episodes[1][0]], rel=1e-9)
    expected = [s for _, snaps in episodes[:2] for s in snaps]
    assert len(collected) == len(expected) == 8 and collected.teacher == "by hand"
    for snapshot, (observation, value) in zip(collected.snapshots, expected):
        np.testing.assert_allclose(snapshot.observation, observation, rtol=1e-6)
        assert snapshot.value == pytest.approx(value, rel=1e-5)


def test_collection_defaults_are_the_authors(teacher, capsys):
    """10 teacher episodes, the 10 best kept, a snapshot every 10 steps, first reset seeded 0 (2-step episodes here)."""
    collected = collect_snapshots(teacher[0], _cheetah(2))
    assert collected.collection == {"interval": 10, "teacher_episodes": 10, "keep_best": 10, "seed": 0}
    assert len(collected.episode_returns) == 10 and collected.teacher == ""
    assert "teacher episodes: 100%" in capsys.readouterr().err
    collect_snapshots(teacher[0], _cheetah(2), n_episodes=1, progress=False)
    assert capsys.readouterr().err == ""


def test_collection_keeps_keep_best_episodes_and_names_an_env_without_a_spec(teacher):
    from gymnasium.envs.mujoco.half_cheetah_v4 import HalfCheetahEnv

    one = collect_snapshots(teacher[0], _cheetah(2), n_episodes=3, keep_best=1, progress=False)
    assert len(one.episode_returns) == 1 and len(one) == 1
    bare = collect_snapshots(teacher[0], gym.wrappers.TimeLimit(HalfCheetahEnv(), 2), n_episodes=1, progress=False)
    assert bare.env_id == "HalfCheetahEnv"


@pytest.mark.parametrize(("name", "flag", "least"), [
    ("teacher_episodes", "--teacher-episodes", 1), ("keep_best", "--keep-best", 1),
    ("snapshot_interval", "--snapshot-interval", 1), ("snapshot_steps", "--snapshot-steps", 0),
    ("max_student_steps", "--max-student-steps", 1)])
def test_each_setting_is_accepted_at_its_least_value_and_refused_below(name, flag, least):
    assert getattr(SnapshotOptions(teacher="t.zip", **{name: least}), name) == least
    for clusters in (None, 3):  # a valid --clusters does not stand in for the other checks
        with pytest.raises(TeacherError, match=rf"^{flag} must be an integer >= {least}, got {least - 1}\.$"):
            SnapshotOptions(teacher="t.zip", clusters=clusters, **{name: least - 1})
    assert SnapshotOptions(teacher="t.zip", clusters=1).clusters == 1
