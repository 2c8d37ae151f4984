"""Collect D4RL-style datasets from any policy, resumably, and store them in Minari and/or D4RL HDF5.

The collector does not care where the policy came from (a trained SB3 model, a checkpoint at a third of
expert return, uniform random actions): it takes a function ``observation -> action``, or None for
uniform random actions, D4RL's "random" level.

Determinism: episode ``k`` is reset with its own seed, derived from ``(seed, k)`` by numpy's
``SeedSequence``, and random actions are drawn from the action space seeded the same way. An episode's data
therefore depend only on ``(env, seed, k, policy)``, not on what ran before it in the process, which makes
both "same seed, same arrays" and resuming exact. A policy that samples its own noise must be seeded by
its owner to keep that property.

Resuming: with a ``work_dir``, finished episodes are written in chunks of about ``chunk_transitions``
steps (``chunk_000000.npz``, ...; temporary file, fsync, rename), next to ``manifest.json`` recording the
arguments that determine the data. A restart with the same arguments loads the chunks and collects only
the rest; the episodes of an unfinished chunk are collected again, identically.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from rl.checkpoint import write_json_atomic
from rl.datasets.d4rl import write_d4rl_hdf5
from rl.datasets.episodes import Episode, episodes_to_d4rl
from rl.datasets.errors import MalformedDatasetError
from rl.datasets.minari_store import (
    minari_dataset_exists,
    minari_dataset_path,
    minari_root,
    read_episodes,
    write_minari_dataset,
)
from rl.datasets.names import D4RL_VERSION, minari_id_for
from rl.datasets.scores import d4rl_reference_returns

Policy = Callable[[np.ndarray], np.ndarray]
"""A policy for collection: observation -> action (e.g. ``lambda obs: model.predict(obs)[0]``)."""

MANIFEST_FILE = "manifest.json"
_CHUNK = re.compile(r"^chunk_(\d{6})\.npz$")
_FORMAT = 1


class WorkFolderError(ValueError):
    """Raised when a work folder holds another collection's chunks, or a damaged chunk."""


def episode_seed(seed: int, index: int) -> int:
    """The reset seed of episode ``index`` of a collection with ``seed`` (independent streams per episode)."""
    return int(np.random.SeedSequence(entropy=seed, spawn_key=(index,)).generate_state(1)[0])


def _mujoco_data(env: gym.Env) -> Any | None:
    """MuJoCo's ``MjData`` of a Gymnasium MuJoCo env (for qpos/qvel), else None."""
    data = getattr(env.unwrapped, "data", None)
    return data if data is not None and hasattr(data, "qpos") and hasattr(data, "qvel") else None


def _run_episode(env: gym.Env, policy: Policy | None, seed: int, record_state: bool) -> Episode:
    """Run one whole episode from ``env.reset(seed=seed)`` until it terminates or is truncated."""
    observation, _ = env.reset(seed=seed)
    if policy is None:
        env.action_space.seed(seed)
    mujoco = _mujoco_data(env) if record_state else None
    observations, actions, rewards, terminations, truncations = [observation], [], [], [], []
    qpos, qvel = ([mujoco.qpos.copy()], [mujoco.qvel.copy()]) if mujoco is not None else ([], [])
    while True:
        if policy is None:
            action = env.action_space.sample()
        else:
            action = np.asarray(policy(observation), dtype=env.action_space.dtype)
        observation, reward, terminated, truncated, _ = env.step(action)
        observations.append(observation)
        actions.append(action)
        rewards.append(reward)
        terminations.append(terminated)
        truncations.append(truncated)
        if mujoco is not None:
            qpos.append(mujoco.qpos.copy())
            qvel.append(mujoco.qvel.copy())
        if terminated or truncated:
            break
    return Episode(
        observations=np.stack(observations),
        actions=np.stack(actions),
        rewards=np.asarray(rewards, dtype=np.float64),
        terminations=np.asarray(terminations, dtype=bool),
        truncations=np.asarray(truncations, dtype=bool),
        infos={"qpos": np.stack(qpos), "qvel": np.stack(qvel)} if mujoco is not None else {},
        seed=seed,
    )


def _save_chunk(path: Path, episodes: Sequence[Episode]) -> None:
    """Write episodes to one ``.npz`` chunk atomically."""
    arrays = {
        "observations": np.concatenate([e.observations for e in episodes]),
        "actions": np.concatenate([e.actions for e in episodes]),
        "rewards": np.concatenate([e.rewards for e in episodes]),
        "terminations": np.concatenate([e.terminations for e in episodes]),
        "truncations": np.concatenate([e.truncations for e in episodes]),
        "lengths": np.asarray([len(e) for e in episodes], dtype=np.int64),
        "seeds": np.asarray([-1 if e.seed is None else e.seed for e in episodes], dtype=np.int64),
    }
    for key in episodes[0].infos:
        arrays[f"infos.{key}"] = np.concatenate([e.infos[key] for e in episodes])
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        np.savez(handle, **arrays)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _load_chunk(path: Path) -> list[Episode]:
    """Read the episodes of one chunk."""
    try:
        with np.load(path) as chunk:
            arrays = {key: chunk[key] for key in chunk.files}
    except (OSError, ValueError, EOFError) as error:
        raise WorkFolderError(
            f"Chunk {str(path)!r} is damaged ({error}). Delete it and every later chunk; they are collected again."
        ) from error
    episodes, step, row = [], 0, 0
    for length, seed in zip(arrays["lengths"].tolist(), arrays["seeds"].tolist()):
        steps, rows = slice(step, step + length), slice(row, row + length + 1)
        infos = {key.split(".", 1)[1]: value[rows] for key, value in arrays.items() if key.startswith("infos.")}
        episodes.append(
            Episode(
                observations=arrays["observations"][rows],
                actions=arrays["actions"][steps],
                rewards=arrays["rewards"][steps],
                terminations=arrays["terminations"][steps],
                truncations=arrays["truncations"][steps],
                infos=infos,
                seed=None if seed < 0 else seed,
            )
        )
        step, row = step + length, row + length + 1
    return episodes


def _open_work_dir(work_dir: Path, manifest: dict[str, Any]) -> list[Path]:
    """Create or check the work folder; return its chunks in order."""
    work_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = work_dir / MANIFEST_FILE
    if manifest_path.exists():
        stored = json.loads(manifest_path.read_text())
        differences = [
            f"{key}: {stored.get(key)!r} there, {value!r} now"
            for key, value in manifest.items()
            if stored.get(key) != value
        ]
        if differences:
            raise WorkFolderError(
                f"Work folder {str(work_dir)!r} holds a different collection ({'; '.join(differences)}). Use another "
                "work_dir, or delete this one to start over."
            )
    else:
        write_json_atomic(manifest_path, manifest)
    found = sorted((int(m.group(1)), p) for p in work_dir.iterdir() if (m := _CHUNK.match(p.name)))
    if [index for index, _ in found] != list(range(len(found))):
        raise WorkFolderError(
            f"Work folder {str(work_dir)!r} has chunks {[index for index, _ in found]}, not 0..{len(found) - 1}. "
            "Delete the chunks after the first gap; they are collected again."
        )
    return [path for _, path in found]


def collect_episodes(
    env_id: str,
    policy: Policy | None,
    n_transitions: int,
    seed: int,
    *,
    policy_name: str | None = None,
    work_dir: str | os.PathLike | None = None,
    chunk_transitions: int = 50_000,
    max_episode_steps: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    record_state: bool = True,
    progress: bool = True,
) -> list[Episode]:
    """Run whole episodes of ``policy`` in ``env_id`` until at least ``n_transitions`` steps are collected.

    Args:
        env_id: a Gymnasium id (registered on demand, see :func:`rl.envs.ensure_registered`).
        policy: observation -> action, or None for uniform random actions (D4RL's "random").
        n_transitions: steps to collect; the last episode is kept whole, so the total can exceed this by
            less than one episode (D4RL cut its files at exactly 1M steps instead).
        seed: seeds every episode's reset (and the random actions), see :func:`episode_seed`.
        policy_name: recorded in the work folder's manifest; a restart with another name is refused. Defaults to
            "random" for None, else the callable's ``__name__``. Give a distinct name per trained policy.
        work_dir: folder for resumable chunks (None: keep everything in memory, no resume).
        chunk_transitions: steps per chunk; only how much work an interruption loses, not the data.
        max_episode_steps: time limit (default: the env's registered one, 1000 for MuJoCo locomotion).
        env_kwargs: keyword arguments for ``gym.make``.
        record_state: store MuJoCo ``qpos``/``qvel`` per observation in ``Episode.infos`` (as D4RL's
            ``infos/qpos``, ``infos/qvel``), for MuJoCo envs.
        progress: show a tqdm progress bar of collected steps.

    Returns:
        The episodes, in order (resumed ones first).

    Raises:
        WorkFolderError: ``work_dir`` belongs to a collection with other arguments, or has a damaged chunk.
        ValueError: ``n_transitions`` < 1, or the env has no time limit.
    """
    from rl.envs import make_env

    if n_transitions < 1:
        raise ValueError(f"n_transitions must be at least 1, got {n_transitions}.")
    kwargs = dict(env_kwargs or {})
    if max_episode_steps is not None:
        kwargs["max_episode_steps"] = max_episode_steps
    if policy_name is None:
        policy_name = "random" if policy is None else getattr(policy, "__name__", type(policy).__name__)
    env = make_env(env_id, **kwargs)
    try:
        if env.spec is None or env.spec.max_episode_steps is None:
            raise ValueError(f"{env_id} has no time limit, so an episode might never end: pass max_episode_steps.")
        manifest = {
            "format": _FORMAT,
            "env_id": env_id,
            "seed": int(seed),
            "policy": policy_name,
            "max_episode_steps": env.spec.max_episode_steps,
            "env_kwargs": json.loads(json.dumps(env_kwargs or {}, default=str)),
            "record_state": record_state,
        }
        episodes: list[Episode] = []
        chunks = _open_work_dir(Path(work_dir), manifest) if work_dir is not None else []
        steps = 0
        for episode in (episode for chunk in chunks for episode in _load_chunk(chunk)):
            if steps >= n_transitions:
                break
            episodes.append(episode)
            steps += len(episode)
        pending: list[Episode] = []
        next_chunk = len(chunks)
        with tqdm(total=n_transitions, initial=min(steps, n_transitions), unit="step", desc=f"collect {env_id}",
                  disable=not progress) as bar:
            while steps < n_transitions:
                episode = _run_episode(env, policy, episode_seed(seed, len(episodes)), record_state)
                episodes.append(episode)
                pending.append(episode)
                bar.update(min(len(episode), n_transitions - steps))
                steps += len(episode)
                if work_dir is not None and (sum(map(len, pending)) >= chunk_transitions or steps >= n_transitions):
                    _save_chunk(Path(work_dir) / f"chunk_{next_chunk:06d}.npz", pending)
                    next_chunk, pending = next_chunk + 1, []
    finally:
        env.close()
    return episodes


def _reference_returns(
    name: str, env_id: str, ref_min_score: float | None, ref_max_score: float | None
) -> tuple[float | None, float | None]:
    if ref_min_score is not None or ref_max_score is not None:
        return ref_min_score, ref_max_score
    d4rl = d4rl_reference_returns(name) or d4rl_reference_returns(env_id)
    return d4rl if d4rl is not None else (None, None)


def save_episodes(
    episodes: Sequence[Episode],
    name: str,
    *,
    env_id: str | None = None,
    to_minari: bool = True,
    hdf5_path: str | os.PathLike | None = None,
    ref_min_score: float | None = None,
    ref_max_score: float | None = None,
    algorithm_name: str | None = None,
    description: str | None = None,
    metadata: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> None:
    """Store episodes as a local Minari dataset and/or a D4RL-layout HDF5 file.

    Args:
        episodes: the collected episodes.
        name: a D4RL-style name (``"hopper-medium-v2"``: env, Minari id and D4RL reference returns follow) or
            a Minari id (then ``env_id`` is required).
        env_id: the Gymnasium env (default: the one the D4RL name stands for).
        to_minari: write the local Minari dataset (the id from :func:`rl.datasets.names.minari_id_for`).
        hdf5_path: also write a D4RL-layout HDF5 file there (with ``env_id``, ``name`` and reference
            returns as root attributes).
        ref_min_score: reference returns (default: D4RL's for D4RL envs, else none).
        ref_max_score: see ``ref_min_score``.
        algorithm_name: what collected the data, for the Minari metadata.
        description: for the Minari metadata.
        metadata: extra metadata for both (Minari metadata, HDF5 attributes); JSON-serialisable scalars.
        overwrite: replace an existing Minari dataset of that id.
    """
    if not to_minari and hdf5_path is None:
        raise ValueError("Nothing to write: to_minari is False and no hdf5_path was given.")
    dataset_id, d4rl = minari_id_for(name)
    env_id = env_id or (d4rl.env_id if d4rl is not None else None)
    if env_id is None:
        raise ValueError(f"{name!r} is not a D4RL-style name, so pass env_id= (the env the episodes come from).")
    ref_min_score, ref_max_score = _reference_returns(name, env_id, ref_min_score, ref_max_score)
    extra = {"d4rl_name": d4rl.name if d4rl is not None else None, **(metadata or {})}
    extra = {key: value for key, value in extra.items() if value is not None}
    if to_minari:
        write_minari_dataset(
            dataset_id,
            episodes,
            env_id=env_id,
            ref_min_score=ref_min_score,
            ref_max_score=ref_max_score,
            algorithm_name=algorithm_name,
            description=description,
            metadata=extra,
            overwrite=overwrite,
        )
    if hdf5_path is not None:
        attributes = {"env_id": env_id, "name": d4rl.name if d4rl is not None else dataset_id, **extra}
        attributes.update(ref_min_score=ref_min_score, ref_max_score=ref_max_score, algorithm_name=algorithm_name)
        write_d4rl_hdf5(hdf5_path, episodes_to_d4rl(episodes), attributes=attributes)


def default_work_dir(name: str, seed: int) -> Path:
    """Where :func:`generate_dataset` keeps its chunks: a hidden folder in the Minari store (Minari skips it)."""
    dataset_id, _ = minari_id_for(name)
    return minari_root() / ".frontier-work" / f"{dataset_id.replace('/', '__')}-seed{seed}"


def generate_dataset(
    name: str,
    policy: Policy | None,
    *,
    n_transitions: int = 1_000_000,
    seed: int = 0,
    policy_name: str | None = None,
    env_id: str | None = None,
    to_minari: bool = True,
    hdf5_path: str | os.PathLike | None = None,
    work_dir: str | os.PathLike | None = None,
    keep_work_dir: bool = False,
    chunk_transitions: int = 50_000,
    overwrite: bool = False,
    progress: bool = True,
) -> list[Episode]:
    """Collect a dataset (resumably) and store it: :func:`collect_episodes` then :func:`save_episodes`.

    ``generate_dataset("hopper-random-v2", None)`` makes D4RL's hopper-random (1M steps of uniform random
    actions on Hopper-v4) as the local Minari dataset ``frontier/hopper/random-v0``. An interrupted call,
    run again with the same arguments, continues from its work folder (default :func:`default_work_dir`),
    which is deleted once the dataset is stored unless ``keep_work_dir``.

    See :func:`collect_episodes` and :func:`save_episodes` for the arguments.
    """
    _, d4rl = minari_id_for(name)
    env_id = env_id or (d4rl.env_id if d4rl is not None else None)
    if env_id is None:
        raise ValueError(f"{name!r} is not a D4RL-style name, so pass env_id= (the env to collect on).")
    dataset_id, _ = minari_id_for(name)
    if to_minari and minari_dataset_exists(dataset_id) and not overwrite:
        raise ValueError(
            f"Minari dataset {dataset_id!r} already exists at {minari_dataset_path(dataset_id)}; nothing collected. "
            "Pass overwrite=True to replace it, or load it with rl.datasets.load_dataset."
        )
    work = Path(work_dir) if work_dir is not None else default_work_dir(name, seed)
    policy_name = policy_name or ("random" if policy is None else getattr(policy, "__name__", type(policy).__name__))
    episodes = collect_episodes(
        env_id,
        policy,
        n_transitions,
        seed,
        policy_name=policy_name,
        work_dir=work,
        chunk_transitions=chunk_transitions,
        progress=progress,
    )
    save_episodes(
        episodes,
        name,
        env_id=env_id,
        to_minari=to_minari,
        hdf5_path=hdf5_path,
        algorithm_name=policy_name,
        metadata={"seed": int(seed), "n_transitions": int(n_transitions), "policy": policy_name},
        overwrite=overwrite,
    )
    if not keep_work_dir:
        shutil.rmtree(work, ignore_errors=True)
        if work_dir is None:
            with contextlib.suppress(OSError):
                work.parent.rmdir()  # the shared hidden folder, once empty
    return episodes


def combine_datasets(
    sources: Sequence[str],
    target: str,
    *,
    hdf5_path: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> list[Episode]:
    """Concatenate local Minari datasets, in order, into a new one (D4RL's medium-expert = medium + expert).

    ``sources`` and ``target`` are D4RL-style names or Minari ids; every source must come from the same env.
    The result keeps the sources' episodes (with seeds and infos) and records them as ``combined_datasets``
    in its metadata. Minari's own ``combine_datasets`` would drop the reference scores and algorithm name.
    """
    from rl.datasets.minari_store import load_minari_dataset

    if len(sources) < 2:
        raise ValueError(f"combine_datasets needs at least two sources, got {list(sources)}.")
    datasets = [load_minari_dataset(minari_id_for(source)[0]) for source in sources]
    env_ids = {dataset.env_spec.id if dataset.env_spec is not None else None for dataset in datasets}
    if len(env_ids) != 1 or None in env_ids:
        raise MalformedDatasetError(
            f"Cannot combine {list(sources)}: they come from different or unknown envs ({sorted(map(str, env_ids))})."
        )
    episodes = [episode for dataset in datasets for episode in read_episodes(dataset)]
    save_episodes(
        episodes,
        target,
        env_id=env_ids.pop(),
        hdf5_path=hdf5_path,
        algorithm_name=f"concatenation of {' + '.join(sources)}",
        metadata={"combined_datasets": [dataset.id for dataset in datasets]},
        overwrite=overwrite,
    )
    return episodes


def make_medium_expert(
    env: str, *, hdf5_path: str | os.PathLike | None = None, overwrite: bool = False
) -> list[Episode]:
    """D4RL's ``{env}-medium-expert-v2``: the local medium dataset followed by the expert one, e.g. ``"hopper"``."""
    return combine_datasets(
        [f"{env}-medium-v{D4RL_VERSION}", f"{env}-expert-v{D4RL_VERSION}"],
        f"{env}-medium-expert-v{D4RL_VERSION}",
        hdf5_path=hdf5_path,
        overwrite=overwrite,
    )
