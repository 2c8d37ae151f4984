"""SnapshotRL / S3RL: start student agents from teacher states, for any SB3 algorithm.

Paper: Zhao et al., "Snapshot Reinforcement Learning: Leveraging Prior Trajectories for Efficiency",
2024. Authors' code (CleanRL-style): github.com/sdpkjc/snapshotrl (``src/snapshot_{td3,sac,ppo_fix}_mujoco.py``).

SnapshotRL changes the environment, not the algorithm. S3RL, its baseline, has three parts:

1. Snapshots: run a trained teacher for a few episodes and store the full env state every few steps,
   tagged with the teacher's value of that state; keep the best episodes by return.
2. Status classification (SC): 1-D k-means over the teacher values; each student reset picks a
   cluster uniformly, then a snapshot uniformly inside it.
3. Student trajectory truncation (STT): from a snapshot the student runs at most N steps; the end is a
   truncation (time limit), not a termination, so value bootstrapping stays correct.

Snapshot resets are used for the first T env steps, then the env resets normally.

Two lines in an SB3 script::

    snapshots = SnapshotSet.load("logs/sac/HalfCheetah-v4_1/HalfCheetah-v4.snapshots.pkl")
    env = make_vec_env(lambda: SnapshotReset(gym.make("HalfCheetah-v4"), snapshots))

Deliberate deviations from the authors' code, each for a stated reason:

- The teacher acts deterministically (the issue and the paper's description); the authors' SAC and
  PPO scripts sample teacher actions. The teacher value is critic 1 at the teacher's deterministic
  action (Q1(s, pi(s))), or V(s) for on-policy teachers, as in their code.
- States are restored through :mod:`rl.env_state` (MuJoCo's integration state, PyBullet's saved
  state) instead of deep-copying the whole wrapper stack; the first observation is the stored one, as
  theirs is. The env's own time limit is kept: a student started at step 950 of a 1000-step episode
  is truncated at 1000, where the authors' code extends the limit to 1050.
- Snapshots are taken every ``interval`` steps of each episode (theirs count steps over all episodes).
- For PPO-family students the teacher's VecNormalize statistics are handed to the student (the issue
  and the paper); the authors' PPO script starts the student's statistics from scratch.
- At the switch to normal resets the episode in progress finishes; theirs is cut off.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecNormalize
from tqdm import tqdm

from rl.checkpoint import CheckpointError, check_model_file, load_normalization_stats, read_pickle
from rl.env_state import EnvState, capture_state, engine_of, restore_state
from rl.envs import make_env

SNAPSHOT_FORMAT_VERSION = 1
DEFAULT_CLUSTERS = {"sac": 4}
"""k of the status classification per student algorithm (authors' defaults: 4 for SAC, 6 otherwise)."""
DEFAULT_K = 6
ZOO_PREFIX = "zoo:"


class SnapshotFileError(ValueError):
    """Raised for a missing or malformed snapshot file."""


class TeacherError(ValueError):
    """Raised for a missing teacher, an unknown teacher algorithm, or spaces that do not match the env."""


@dataclass
class Snapshot:
    """One restorable teacher state."""

    state: EnvState
    observation: np.ndarray
    """The raw (unnormalised) observation the env returned in this state."""
    info: dict[str, Any]
    value: float
    """The teacher's value of this state: Q1(s, pi(s)) or V(s)."""
    episode: int
    step: int
    """Env steps into the teacher's episode."""


@dataclass
class SnapshotSet:
    """Teacher snapshots of one env, with their status classification."""

    env_id: str
    snapshots: list[Snapshot]
    teacher: str = ""
    teacher_sha256: str = ""
    """SHA-256 of the teacher model file, so a cache is not reused after the teacher is retrained ("" if unknown)."""
    episode_returns: list[float] = field(default_factory=list)
    """Returns of the kept teacher episodes."""
    labels: np.ndarray | None = None
    """Cluster of each snapshot (None until :meth:`classify`)."""
    collection: dict[str, Any] | None = None
    """How the set was collected (interval, teacher_episodes, keep_best, seed; ``recovered``, a note, when they
    were inferred afterwards by :func:`recover_collection`); None in caches that predate it."""

    def __len__(self) -> int:
        return len(self.snapshots)

    @property
    def values(self) -> np.ndarray:
        return np.array([s.value for s in self.snapshots], dtype=np.float64)

    def classify(self, n_clusters: int, *, seed: int = 0) -> np.ndarray:
        """1-D k-means over the teacher values (scikit-learn); empty clusters cannot occur in the result."""
        from sklearn.cluster import KMeans

        if not self.snapshots:
            raise SnapshotFileError("Cannot classify an empty snapshot set.")
        k = max(1, min(int(n_clusters), len(np.unique(self.values))))
        kmeans = KMeans(n_clusters=k, random_state=seed, n_init="auto")
        self.labels = kmeans.fit_predict(self.values.reshape(-1, 1))
        return self.labels

    def clusters(self) -> list[np.ndarray]:
        """Indices of the snapshots in each non-empty cluster (one cluster when unclassified)."""
        if self.labels is None:
            return [np.arange(len(self.snapshots))]
        return [np.flatnonzero(self.labels == label) for label in np.unique(self.labels)]

    def save(self, path: str | os.PathLike) -> None:
        """Pickle to ``path`` atomically (write, then rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"format": "frontier-rl snapshots", "version": SNAPSHOT_FORMAT_VERSION, "set": self}
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as handle:
            pickle.dump(payload, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)

    @staticmethod
    def load(path: str | os.PathLike) -> SnapshotSet:
        """Load a snapshot file, with an error that says what is wrong with a bad one."""
        path = Path(path)
        if not path.is_file():
            raise SnapshotFileError(
                f"Snapshot file {str(path)!r} does not exist. `python -m algos.snapshot --algo <algo> --env <id> "
                "--teacher <model.zip>` collects a teacher's snapshots on first use and caches them."
            )
        try:
            payload = read_pickle(path, "Snapshot file")
        except CheckpointError as error:
            raise SnapshotFileError(str(error)) from error
        if not isinstance(payload, dict) or payload.get("format") != "frontier-rl snapshots":
            raise SnapshotFileError(f"{str(path)!r} is a pickle but not a frontier-rl snapshot file.")
        if payload.get("version") != SNAPSHOT_FORMAT_VERSION:
            raise SnapshotFileError(
                f"Snapshot file {str(path)!r} has format version {payload.get('version')}, this code reads "
                f"{SNAPSHOT_FORMAT_VERSION}: collect the snapshots again."
            )
        snapshot_set = payload.get("set")
        if not isinstance(snapshot_set, SnapshotSet):
            kind = type(snapshot_set)
            raise SnapshotFileError(
                f"Snapshot file {str(path)!r} holds a {kind.__module__}.{kind.__qualname__}, not an "
                "algos.snapshot.SnapshotSet (files cached by `python -m algos.snapshot` before 2026-12-04 name "
                "__main__): delete it to collect the snapshots again."
            )
        if not snapshot_set.snapshots:
            raise SnapshotFileError(f"Snapshot file {str(path)!r} holds no snapshots.")
        return snapshot_set


# ----------------------------------------------------------------------------------------------------
# The teacher


def teacher_algo_name(model_path: str | os.PathLike, algo: str | None = None) -> str:
    """The teacher's algorithm: given, or read from the runner's ``run.json`` or the zoo's ``entry.json`` beside it."""
    if algo:
        return algo
    for record_name in ("run.json", "entry.json"):  # the runner's run record, or a policy-zoo entry
        record = Path(model_path).parent / record_name
        if record.is_file():
            return json.loads(record.read_text())["algo"]
    raise TeacherError(
        f"Cannot tell which algorithm trained {str(model_path)!r} (no run.json or entry.json beside it): "
        "pass --teacher-algo (sac, td3, ppo, mdpo, mdpo_off, ...)."
    )


def load_teacher(
    model_path: str | os.PathLike, env: gym.Env, *, algo: str | None = None, device: str = "auto"
) -> tuple[BaseAlgorithm, VecNormalize | None]:
    """Load a teacher model (and the VecNormalize statistics beside it) and check it fits ``env``."""
    from rl.registry import get_algo

    try:
        check_model_file(model_path)
    except CheckpointError as error:
        raise TeacherError(
            f"Teacher: {error} Train one with the shared runner, e.g. "
            f"`python -m rl --algo sac --env {env.spec.id if env.spec else '<env>'} -n 300000`."
        ) from error
    algo_class = get_algo(teacher_algo_name(model_path, algo)).load_class()
    model = algo_class.load(model_path, device=device)
    for name in ("observation_space", "action_space"):
        teacher_space, env_space = getattr(model, name), getattr(env, name)
        if teacher_space.shape != env_space.shape or type(teacher_space) is not type(env_space):
            raise TeacherError(
                f"Teacher {str(model_path)!r} was trained with {name} {teacher_space}, but "
                f"{env.spec.id if env.spec else 'the env'} has {env_space}."
            )
    return model, load_normalization_stats(model_path)


def teacher_value(model: BaseAlgorithm, observation: np.ndarray) -> float:
    """Q1(s, pi(s)) for actor-critic teachers with Q-functions, V(s) for on-policy teachers.

    ``observation`` is as the teacher sees it (normalised when the teacher was).
    """
    policy = model.policy
    obs_tensor, _ = policy.obs_to_tensor(observation)
    with th.no_grad():
        critic = getattr(policy, "critic", None)
        if critic is not None:
            action = policy._predict(obs_tensor, deterministic=True)
            return float(critic(obs_tensor, action)[0].item())
        if hasattr(policy, "predict_values"):
            return float(policy.predict_values(obs_tensor).item())
    raise TeacherError(f"Teacher {type(model).__name__} has neither a Q-function nor a value function.")


def collect_snapshots(
    model: BaseAlgorithm,
    env: gym.Env,
    *,
    vec_normalize: VecNormalize | None = None,
    n_episodes: int = 10,
    keep_best: int = 10,
    interval: int = 10,
    seed: int = 0,
    progress: bool = True,
    teacher: str = "",
) -> SnapshotSet:
    """Run the teacher deterministically and store a snapshot every ``interval`` steps.

    Args:
        model: the teacher.
        env: a single (not vectorised) env of the id the students will train on.
        vec_normalize: the teacher's observation statistics, applied to what the teacher sees.
        n_episodes: teacher episodes to run.
        keep_best: keep the snapshots of this many best episodes by return.
        interval: env steps between snapshots (the reset state is the first snapshot of an episode).
        seed: seed of the first reset; later episodes continue the env's random stream.
        progress: show a progress bar over episodes.
        teacher: a description of the teacher for the record (e.g. its path).
    """
    engine_of(env)  # refuse an env whose state cannot be restored before running anything

    def seen(obs: np.ndarray) -> np.ndarray:
        return vec_normalize.normalize_obs(obs) if vec_normalize is not None else obs

    episodes: list[tuple[float, list[Snapshot]]] = []
    obs, info = env.reset(seed=seed)
    for episode in tqdm(range(n_episodes), desc="teacher episodes", disable=not progress):
        if episode > 0:
            obs, info = env.reset()
        snapshots: list[Snapshot] = []
        episode_return, step, done = 0.0, 0, False
        while not done:
            if step % interval == 0:
                snapshots.append(Snapshot(
                    state=capture_state(env), observation=np.array(obs, copy=True), info=dict(info),
                    value=teacher_value(model, seen(obs)), episode=episode, step=step,
                ))
            action, _ = model.predict(seen(obs), deterministic=True)
            obs, reward, terminated, truncated, info = env.step(action)
            episode_return += float(reward)
            step += 1
            done = terminated or truncated
        episodes.append((episode_return, snapshots))
    episodes.sort(key=lambda item: item[0], reverse=True)
    kept = episodes[: max(1, keep_best)]
    return SnapshotSet(
        env_id=env.spec.id if env.spec else type(env.unwrapped).__name__,
        snapshots=[s for _, snaps in kept for s in snaps],
        teacher=teacher,
        episode_returns=[r for r, _ in kept],
        collection={"interval": int(interval), "teacher_episodes": int(n_episodes), "keep_best": int(keep_best),
                    "seed": int(seed)},
    )


def recover_collection(snapshots: SnapshotSet, *, seeds: Sequence[int] = (0,)) -> dict[str, Any] | None:
    """The collection settings of a cache that predates their recording, where its content determines them.

    The interval is the spacing of each kept episode's snapshot steps (0, interval, 2 * interval, ...). When the
    kept episodes are episodes 0 to k-1, k teacher episodes were run and all were kept: ``teacher_episodes`` and
    ``keep_best`` are k (more episodes, all worse than the first k, would leave the same content: the note says
    so). The seed is the one in ``seeds`` whose reset gives episode 0's first observation. Returns None when
    any of them cannot be told (steps not evenly spaced, episodes missing, no seed matches): the cache then
    stays "unknown".
    """
    steps: dict[int, list[int]] = {}
    for snapshot in snapshots.snapshots:
        steps.setdefault(int(snapshot.episode), []).append(int(snapshot.step))
    spacings = {b - a for episode in steps.values() for a, b in zip(sorted(episode), sorted(episode)[1:])}
    if len(spacings) != 1 or any(min(episode) != 0 for episode in steps.values()):
        return None
    interval = spacings.pop()
    kept = len(steps)
    if set(steps) != set(range(kept)) or len(snapshots.episode_returns) != kept:
        return None
    first = next(s for s in snapshots.snapshots if s.episode == 0 and s.step == 0)
    env = make_env(snapshots.env_id)
    try:
        seed = next((s for s in seeds if np.array_equal(env.reset(seed=int(s))[0], first.observation)), None)
    finally:
        env.close()
    if seed is None:
        return None
    return {
        "interval": interval, "teacher_episodes": kept, "keep_best": kept, "seed": int(seed),
        "recovered": (f"inferred from the cache's content: snapshots every {interval} steps, teacher episodes 0-"
                      f"{kept - 1} all kept (or more episodes, all worse), episode 0 starts at reset(seed={seed})"),
    }


# ----------------------------------------------------------------------------------------------------
# The student's env


class SnapshotReset(gym.Wrapper):
    """Reset to teacher snapshots for the first ``active_steps`` env steps, then reset normally.

    Wrap the env right after ``gym.make`` (inside SB3's Monitor). Each reset while active restores a
    snapshot chosen by status classification (a cluster uniformly, then a snapshot uniformly) or
    uniformly (``classify=False``), and returns the snapshot's observation; ``info["snapshot"]`` is its
    index. A student trajectory from a snapshot ends after ``max_steps`` steps as a truncation
    (``truncate=False``: only the env's own ends). ``active_steps`` counts this env's steps; with
    several envs give each ``total // n_envs``.

    Args:
        env: the env, as made by ``gym.make`` (with its TimeLimit).
        snapshots: the teacher's snapshots of this env id.
        active_steps: T, env steps during which resets use snapshots. Paper: 100,000.
        max_steps: N, steps a student runs from a snapshot before truncation. Paper: 100.
        n_clusters: k of the status classification. Authors' code: 4 for SAC, 6 for TD3 and PPO.
        classify: use status classification (False: the "no SC" ablation, uniform over snapshots).
        truncate: use student trajectory truncation (False: the "no STT" ablation).
        seed: seed of the snapshot choice (a seed passed to ``reset`` replaces it).
    """

    def __init__(
        self,
        env: gym.Env,
        snapshots: SnapshotSet,
        *,
        active_steps: int = 100_000,
        max_steps: int = 100,
        n_clusters: int = DEFAULT_K,
        classify: bool = True,
        truncate: bool = True,
        seed: int | None = None,
    ) -> None:
        super().__init__(env)
        engine_of(env)
        if env.spec is not None and snapshots.env_id != env.spec.id:
            raise SnapshotFileError(f"The snapshots were collected on {snapshots.env_id}, not {env.spec.id}.")
        first = snapshots.snapshots[0].observation
        if np.shape(first) != env.observation_space.shape:
            raise SnapshotFileError(
                f"Snapshot observations have shape {np.shape(first)}, the env's {env.observation_space.shape}."
            )
        if max_steps < 1 or active_steps < 0:
            raise ValueError(
                f"--max-student-steps must be >= 1 and --snapshot-steps >= 0, got {max_steps} and {active_steps}."
            )
        self.snapshots = snapshots
        self.active_steps = int(active_steps)
        self.max_steps = int(max_steps)
        self.truncate = truncate
        if classify:
            snapshots.classify(n_clusters)
        self._clusters = snapshots.clusters() if classify else [np.arange(len(snapshots))]
        self._rng = np.random.default_rng(seed)
        self.steps_taken = 0
        self._steps_from_snapshot: int | None = None

    def get_resume_state(self) -> dict[str, Any]:
        """What decides this wrapper's future resets (for a checkpoint: :mod:`rl.resume_state`)."""
        return {"rng": self._rng.bit_generator.state, "steps_taken": self.steps_taken,
                "steps_from_snapshot": self._steps_from_snapshot}

    def set_resume_state(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`get_resume_state`'s capture: the same snapshot choices and truncations follow."""
        self._rng.bit_generator.state = state["rng"]
        self.steps_taken = int(state["steps_taken"])
        self._steps_from_snapshot = state["steps_from_snapshot"]

    def resume_from_step(self, steps: int) -> None:
        """A resumed run already took ``steps`` steps in this env: continue the snapshot phase from there."""
        self.steps_taken = int(steps)

    @property
    def active(self) -> bool:
        """Whether resets still start from snapshots."""
        return self.steps_taken < self.active_steps

    def choose(self) -> int:
        """Index of the next snapshot: a cluster uniformly, then a snapshot uniformly within it."""
        cluster = self._clusters[self._rng.integers(len(self._clusters))]
        return int(cluster[self._rng.integers(len(cluster))])

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        obs, info = self.env.reset(seed=seed, options=options)
        if not self.active:
            self._steps_from_snapshot = None
            return obs, info
        index = self.choose()
        snapshot = self.snapshots.snapshots[index]
        restore_state(self.env, snapshot.state)
        self._steps_from_snapshot = 0
        return np.array(snapshot.observation, copy=True), {**snapshot.info, "snapshot": index}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.steps_taken += 1
        if self._steps_from_snapshot is not None:
            self._steps_from_snapshot += 1
            if self.truncate and self._steps_from_snapshot >= self.max_steps and not terminated:
                truncated = True
                info = {**info, "snapshot_truncated": True}
        return obs, reward, terminated, truncated, info


# ----------------------------------------------------------------------------------------------------
# Command line


def default_snapshot_path(teacher: str | os.PathLike) -> Path:
    """Where a teacher's snapshots are cached: beside the model, ``<model>.snapshots.pkl``."""
    teacher = Path(teacher)
    return teacher.with_name(teacher.stem + ".snapshots.pkl")


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    import hashlib

    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def get_or_collect_snapshots(
    env_id: str, teacher: str, *, teacher_algo: str | None = None, path: str | None = None,
    n_episodes: int = 10, keep_best: int = 10, interval: int = 10, seed: int = 0, progress: bool = True,
) -> tuple[SnapshotSet, str]:
    """Load the teacher's cached snapshots, or run the teacher once and cache them; returns (set, path)."""
    snapshot_path = Path(path) if path else default_snapshot_path(teacher)
    teacher_digest = file_sha256(teacher) if Path(teacher).is_file() else ""
    if snapshot_path.is_file():
        snapshots = SnapshotSet.load(snapshot_path)
        if snapshots.env_id != env_id:
            raise SnapshotFileError(f"{str(snapshot_path)!r} holds snapshots of {snapshots.env_id}, not {env_id}.")
        recorded = getattr(snapshots, "collection", None)
        wanted = {"interval": interval, "teacher_episodes": n_episodes, "keep_best": keep_best, "seed": seed}
        differ = {k: (recorded[k], v) for k, v in wanted.items() if recorded is not None and recorded.get(k) != v}
        if differ:
            flags = {"interval": "--snapshot-interval", "teacher_episodes": "--teacher-episodes",
                     "keep_best": "--keep-best", "seed": "seed= (of get_or_collect_snapshots)"}
            said = "; ".join(f"{flags[k]} {old} in the cache, {new} asked" for k, (old, new) in differ.items())
            raise SnapshotFileError(
                f"{str(snapshot_path)!r} was collected with other settings ({said}): pass the cache's settings, "
                "or delete the file (or pass --snapshots <new file>) to collect again."
            )
        if snapshots.teacher_sha256 and teacher_digest and snapshots.teacher_sha256 != teacher_digest:
            raise SnapshotFileError(
                f"{str(snapshot_path)!r} was collected from another version of the teacher {str(teacher)!r} "
                f"(the model file changed since): delete it to collect the snapshots again, or pass the "
                "matching teacher."
            )
        return snapshots, str(snapshot_path)
    env = make_env(env_id)
    model, vec_normalize = load_teacher(teacher, env, algo=teacher_algo)
    snapshots = collect_snapshots(
        model, env, vec_normalize=vec_normalize, n_episodes=n_episodes, keep_best=keep_best, interval=interval,
        seed=seed, progress=progress, teacher=str(teacher),
    )
    env.close()
    snapshots.teacher_sha256 = teacher_digest
    snapshots.save(snapshot_path)
    return snapshots, str(snapshot_path)


def build_parser() -> argparse.ArgumentParser:
    from rl.cli import build_parser as runner_parser

    parser = runner_parser("snapshot")
    parser.prog = "python -m algos.snapshot"
    parser.description = (
        "S3RL: train --algo with resets from a teacher's snapshots for the first --snapshot-steps steps. "
        "Get a teacher with the shared runner first, e.g. `python -m rl --algo sac --env HalfCheetah-v4 -n 300000`."
    )
    parser.add_argument("--algo", required=True, help="student algorithm: sac, td3, ppo, mdpo, mdpo_off, ...")
    parser.add_argument(
        "--teacher", required=True,
        help="teacher model .zip (its vecnormalize.pkl beside it is used), or zoo:<level> for the policy zoo's",
    )
    parser.add_argument("--teacher-algo", default=None, help="teacher's algorithm (default: its run.json)")
    parser.add_argument("--snapshots", default=None, help="snapshot file (default: <teacher>.snapshots.pkl)")
    parser.add_argument("--teacher-episodes", type=int, default=10, help="teacher episodes to record")
    parser.add_argument("--keep-best", type=int, default=10, help="keep this many best teacher episodes")
    parser.add_argument("--snapshot-interval", type=int, default=10, help="env steps between snapshots")
    parser.add_argument("--snapshot-steps", type=int, default=100_000, help="T: steps with snapshot resets")
    parser.add_argument("--max-student-steps", type=int, default=100, help="N: truncation after a snapshot")
    parser.add_argument("--clusters", type=int, default=None, help="k (default: 4 for sac, else 6)")
    parser.add_argument("--no-classification", action="store_true", help="ablation: uniform snapshot choice")
    parser.add_argument("--no-truncation", action="store_true", help="ablation: no student trajectory truncation")
    return parser


@dataclass
class SnapshotOptions:
    """S3RL's settings for one student run (the CLI flags; the benchmark passes them as hyperparameters)."""

    teacher: str
    """Teacher model .zip (its vecnormalize.pkl beside it is used), or ``zoo:<level>``: the policy zoo's
    policy of that level for the run's env (one setting for every env of a benchmark)."""
    teacher_algo: str | None = None
    snapshots: str | None = None
    """Snapshot file (default: ``<teacher>.snapshots.pkl``), collected on first use."""
    teacher_episodes: int = 10
    keep_best: int = 10
    snapshot_interval: int = 10
    snapshot_steps: int = 100_000
    max_student_steps: int = 100
    clusters: int | None = None
    """k (default: 4 for SAC students, 6 otherwise, as in the authors' code)."""
    classification: bool = True
    truncation: bool = True

    def __post_init__(self) -> None:
        """Refuse settings no run can use, naming the flag (before any teacher is loaded or run)."""
        checks = (("--teacher-episodes", self.teacher_episodes, 1), ("--keep-best", self.keep_best, 1),
                  ("--snapshot-interval", self.snapshot_interval, 1), ("--snapshot-steps", self.snapshot_steps, 0),
                  ("--max-student-steps", self.max_student_steps, 1))
        if self.clusters is not None:  # None: the authors' k for the student's algorithm; 0 is not a way to ask
            checks += (("--clusters", self.clusters, 1),)
        for flag, value, least in checks:
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise TeacherError(f"{flag} must be an integer >= {least}, got {value!r}.")

    @classmethod
    def pop_from(cls, hyperparams: dict[str, Any]) -> SnapshotOptions:
        """Take S3RL's keys out of a run's hyperparameters (what the benchmark harness passes)."""
        from dataclasses import fields

        names = {f.name for f in fields(cls)}
        options = {name: hyperparams.pop(name) for name in list(hyperparams) if name in names}
        if "teacher" not in options:
            raise TeacherError("An S3RL run needs a teacher: pass teacher:<model.zip> with its hyperparameters.")
        return cls(**options)


def configure(config: Any, options: SnapshotOptions | None = None, *, progress: bool = True) -> Any:
    """Turn a runner RunConfig into an S3RL student run (collecting the teacher's snapshots if needed).

    Without ``options`` they are taken from ``config.hyperparams`` (keys of :class:`SnapshotOptions`),
    which is how the benchmark harness runs S3RL students.
    """
    from dataclasses import asdict

    from rl.registry import get_algo

    options = options or SnapshotOptions.pop_from(config.hyperparams)
    if options.teacher.startswith(ZOO_PREFIX):
        from rl import zoo

        level = options.teacher[len(ZOO_PREFIX):]
        options = replace(options, teacher=str(zoo.get_entry(config.env, level).model_path))
    spec = get_algo(config.algo)
    snapshots, snapshot_path = get_or_collect_snapshots(
        config.env, options.teacher, teacher_algo=options.teacher_algo, path=options.snapshots,
        n_episodes=options.teacher_episodes, keep_best=options.keep_best, interval=options.snapshot_interval,
        progress=progress,
    )
    n_clusters = options.clusters or DEFAULT_CLUSTERS.get(spec.name, DEFAULT_K)
    n_envs = config.n_envs or 1
    if config.label is None:
        ablations = ("" if options.classification else "_nosc") + ("" if options.truncation else "_nostt")
        config.label = f"s3rl_{spec.name}{ablations}"
    config.env_wrapper = partial(
        SnapshotReset, snapshots=snapshots, active_steps=options.snapshot_steps // n_envs,
        max_steps=options.max_student_steps, n_clusters=n_clusters, classify=options.classification,
        truncate=options.truncation, seed=config.seed,
    )
    teacher_stats = Path(options.teacher).parent / "vecnormalize.pkl"
    if not spec.is_off_policy and teacher_stats.is_file():
        config.initial_vec_normalize = str(teacher_stats)
    config.extra_record = {"snapshotrl": {
        **asdict(options), "snapshots": snapshot_path, "n_snapshots": len(snapshots), "n_clusters": n_clusters,
        "teacher_returns": snapshots.episode_returns, "initial_vec_normalize": config.initial_vec_normalize,
        # what the cache was really collected with (the flags above are what was asked for)
        "collection": getattr(snapshots, "collection", None) or "unknown (the cache predates recording it)",
    }}
    return config


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m algos.snapshot --algo sac --env HalfCheetah-v4 --teacher teacher.zip [runner flags]``."""
    import shlex

    from rl.cli import config_from_args, run_and_report
    from rl.runner import train

    args = build_parser().parse_args(argv)

    def start() -> object:
        options = SnapshotOptions(
            teacher=args.teacher, teacher_algo=args.teacher_algo, snapshots=args.snapshots,
            teacher_episodes=args.teacher_episodes, keep_best=args.keep_best,
            snapshot_interval=args.snapshot_interval, snapshot_steps=args.snapshot_steps,
            max_student_steps=args.max_student_steps, clusters=args.clusters,
            classification=not args.no_classification, truncation=not args.no_truncation,
        )
        config = configure(config_from_args(args, args.algo), options, progress=args.progress)
        config.command = shlex.join(["python", "-m", "algos.snapshot", *(sys.argv[1:] if argv is None else argv)])
        return train(config)

    return run_and_report(start, (SnapshotFileError, TeacherError))


if __name__ == "__main__":
    # Run the importable module, not this ``__main__`` copy: what it pickles must name
    # ``algos.snapshot``'s classes to load elsewhere, and its isinstance checks must see one class.
    from algos.snapshot import main as module_main

    sys.exit(module_main())
