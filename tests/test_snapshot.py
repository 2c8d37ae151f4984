"""S3RL: snapshot collection and files, status classification, truncation, the switch back, the CLI."""

import copy
import json
import pickle

import numpy as np
import pytest
from stable_baselines3 import PPO, SAC

from algos.snapshot import (
    SNAPSHOT_FORMAT_VERSION,
    SnapshotFileError,
    SnapshotReset,
    SnapshotSet,
    TeacherError,
    collect_snapshots,
    get_or_collect_snapshots,
    load_teacher,
    main,
    recover_collection,
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
    path = tmp_path / "snaps.pkl"
    snapshots.save(path)
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
    with pytest.raises(TeacherError, match="does not exist"):
        load_teacher(tmp_path / "none.zip", make_env("HalfCheetah-v4"))
    with pytest.raises(TeacherError, match="observation_space"):
        load_teacher(teacher[1], make_env("Hopper-v4"))


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

    from algos.snapshot import SnapshotOptions, configure
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

    from algos.snapshot import SnapshotOptions, configure
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
    from algos.snapshot import get_or_collect_snapshots

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
    from algos.snapshot import SnapshotOptions, configure
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
    from algos.snapshot import SnapshotOptions, configure
    from rl.runner import RunConfig

    config = configure(RunConfig(algo="sac", env="HalfCheetah-v4"), SnapshotOptions(
        teacher=str(teacher[1]), snapshots=str(cache), teacher_episodes=3), progress=False)
    assert config.extra_record["snapshotrl"]["collection"].startswith("unknown")


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
