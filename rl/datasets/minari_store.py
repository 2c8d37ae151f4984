"""The local Minari store: write whole episodes as a Minari dataset, read them back, flatten them.

Minari (the maintained successor of D4RL) keeps each dataset in ``<root>/<dataset id>/data/`` with
``root = $MINARI_DATASETS_PATH`` or ``~/.minari/datasets``. The project makes its datasets locally
(:mod:`rl.datasets.generate`, namespace ``frontier/``); a public Minari id (``mujoco/hopper/medium-v0``) is
downloaded into the same store only when allowed (``--download`` or ``FRONTIER_RL_DOWNLOAD=1``).

Minari 0.5.4 facts this module relies on (checked against its source):

- ``DataCollector`` and ``EpisodeBuffer.add_step_data`` import jax (``minari[create]``, ~600 MB). An
  ``EpisodeBuffer`` built directly from whole-episode arrays, passed to ``create_dataset_from_buffers``,
  needs only h5py; that is what :func:`write_minari_dataset` does.
- ``create_dataset_from_buffers`` refuses an id that exists, creates ``<root>/<id>/`` before writing, and
  leaves a half-written folder behind when it fails. So the dataset is written under a hidden staging
  root inside the store (Minari's listing skips hidden folders) and moved into place in one rename.
  Minari takes its root from ``MINARI_DATASETS_PATH`` on every call, so the variable points at the staging
  root while Minari writes: do not write datasets from two threads of one process at once.
- It stores ``ref_min_score`` only when ``ref_max_score`` is given too, and with ``ref_max_score`` alone it
  rolls out 100 random episodes to estimate the minimum: here both or neither are required.
- It warns for every missing ``author``/``author_email``/``code_permalink``/``algorithm_name``/
  ``description``/``eval_env``; those warnings are silenced (they are optional for local datasets).
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import shutil
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rl.datasets.episodes import Episode, episodes_to_transitions
from rl.datasets.errors import DatasetNotFoundError, MalformedDatasetError, ReferenceScoreError, import_optional

if TYPE_CHECKING:
    from minari import MinariDataset

ROOT_VARIABLE = "MINARI_DATASETS_PATH"
"""Environment variable that moves Minari's local store."""
DOWNLOAD_VARIABLE = "FRONTIER_RL_DOWNLOAD"
"""Environment variable that allows downloading public Minari datasets (``--download`` sets it)."""

_ID = re.compile(r"^(?:[-_\w][-_\w/]*[-_\w]+/)?[-_\w]+-v\d+$")
_NONE_WARNINGS = r"(`\w+` is set to None|env_spec is None)"


def minari_root() -> Path:
    """The folder Minari reads and writes: ``$MINARI_DATASETS_PATH``, else ``~/.minari/datasets`` (as Minari)."""
    value = os.environ.get(ROOT_VARIABLE)
    return Path(value) if value is not None else Path.home() / ".minari" / "datasets"


def minari_dataset_path(dataset_id: str) -> Path:
    """Where the dataset ``dataset_id`` lives (or would live) in the local store."""
    return minari_root() / dataset_id


def minari_dataset_exists(dataset_id: str) -> bool:
    """Whether the local store holds ``dataset_id`` (Minari's own test: its ``data`` folder exists)."""
    return (minari_dataset_path(dataset_id) / "data").is_dir()


def _check_id(dataset_id: str) -> None:
    if not _ID.match(dataset_id):
        raise ValueError(
            f"{dataset_id!r} is not a Minari dataset id: ids look like 'namespace/env/name-v0' (the namespace is "
            "optional, the version is not)."
        )


def _root_description() -> str:
    value = os.environ.get(ROOT_VARIABLE)
    if value is not None:
        return f"{ROOT_VARIABLE}={value}"
    return f"the default ~/.minari/datasets ({ROOT_VARIABLE} is not set)"


@contextlib.contextmanager
def _root_at(path: Path) -> Iterator[None]:
    """Point Minari at another store for the duration (Minari reads the variable on every call)."""
    old = os.environ.get(ROOT_VARIABLE)
    os.environ[ROOT_VARIABLE] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(ROOT_VARIABLE, None)
        else:
            os.environ[ROOT_VARIABLE] = old


def write_minari_dataset(
    dataset_id: str,
    episodes: Sequence[Episode],
    *,
    env_id: str,
    ref_min_score: float | None = None,
    ref_max_score: float | None = None,
    algorithm_name: str | None = None,
    author: str | None = None,
    author_email: str | None = None,
    code_permalink: str | None = None,
    description: str | None = None,
    requirements: list[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> MinariDataset:
    """Write ``episodes`` to the local Minari store as ``dataset_id``, without jax, atomically.

    Args:
        dataset_id: e.g. ``"frontier/hopper/medium-v0"``.
        episodes: whole episodes (:class:`rl.datasets.Episode`); their ``infos`` (``qpos``/``qvel``) and
            reset seeds are stored too.
        env_id: the Gymnasium env they were collected on; its spec and spaces go into the metadata, so
            ``dataset.recover_environment()`` works.
        ref_min_score: random-policy return for normalised scores (with ``ref_max_score``).
        ref_max_score: expert return for normalised scores (with ``ref_min_score``).
        algorithm_name: what collected the data ("random", "SAC medium policy", ...).
        author: Minari metadata.
        author_email: Minari metadata.
        code_permalink: Minari metadata.
        description: Minari metadata.
        requirements: pip requirement strings to recover the env, e.g. ``["mujoco>=3"]``.
        metadata: extra JSON-serialisable metadata (e.g. the generation seed).
        overwrite: replace an existing dataset of that id (only once the new one is complete).

    Returns:
        The dataset, loaded from its final place.

    Raises:
        ValueError: a malformed id, or the id exists and ``overwrite`` is False.
        ReferenceScoreError: only one of the reference scores given.
        MissingDependencyError: minari or h5py missing.
    """
    minari = import_optional("minari")
    import_optional("h5py")
    from minari.data_collector.episode_buffer import EpisodeBuffer

    from rl.envs import ensure_registered

    _check_id(dataset_id)
    if (ref_min_score is None) != (ref_max_score is None):
        raise ReferenceScoreError(
            "Give both ref_min_score and ref_max_score or neither: Minari stores ref_min_score only together with "
            "ref_max_score, and estimates a missing minimum by rolling out 100 random episodes."
        )
    if not episodes:
        raise MalformedDatasetError(f"No episodes to write to {dataset_id!r}.")
    final = minari_dataset_path(dataset_id)
    if final.exists() and not overwrite:
        raise ValueError(
            f"Minari dataset {dataset_id!r} already exists at {final}. Pass overwrite=True, delete it "
            f"(minari.delete_dataset({dataset_id!r})), or write a new version (-v1, ...)."
        )
    import gymnasium as gym

    env_spec = gym.spec(ensure_registered(env_id))
    buffers = [
        EpisodeBuffer(
            seed=episode.seed,
            observations=episode.observations,
            actions=episode.actions,
            rewards=episode.rewards,
            terminations=episode.terminations,
            truncations=episode.truncations,
            infos=dict(episode.infos) or None,
        )
        for episode in episodes
    ]
    root = minari_root()
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".staging-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        with _root_at(staging), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_NONE_WARNINGS, category=UserWarning)
            dataset = minari.create_dataset_from_buffers(
                dataset_id=dataset_id,
                buffer=buffers,
                env=env_spec,
                algorithm_name=algorithm_name,
                author=author,
                author_email=author_email,
                code_permalink=code_permalink,
                ref_min_score=ref_min_score,
                ref_max_score=ref_max_score,
                description=description,
                requirements=requirements,
            )
            if metadata:
                dataset.storage.update_metadata(dict(metadata))
        _move_into_store(staging, root, dataset_id)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return minari.load_dataset(dataset_id, download=False)


def _move_into_store(staging: Path, root: Path, dataset_id: str) -> None:
    """Rename the staged dataset to its place, replacing an old one, and copy its namespace files."""
    from minari.namespace import NAMESPACE_METADATA_FILENAME

    final = root / dataset_id
    final.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if final.exists():
        old = root / f".old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        os.replace(final, old)
    os.replace(staging / dataset_id, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    parts = Path(dataset_id).parts[:-1]
    for depth in range(1, len(parts) + 1):
        namespace = Path(*parts[:depth], NAMESPACE_METADATA_FILENAME)
        source, target = staging / namespace, root / namespace
        if source.exists() and not target.exists():
            shutil.copyfile(source, target)


def local_minari_ids() -> list[str]:
    """Ids of the datasets in the local store (empty when there is none or Minari is missing)."""
    try:
        minari = import_optional("minari")
    except ImportError:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return list(minari.list_local_datasets())


def _make_command(dataset_id: str) -> str:
    """The command that makes ``dataset_id`` when it is one of the project's D4RL-style ids."""
    from rl.datasets.names import d4rl_name_from_minari_id

    d4rl = d4rl_name_from_minari_id(dataset_id)
    return f"python -m rl.datasets make {d4rl.name if d4rl is not None else '<env>-<level>-v2'}"


def download_allowed(download: bool | None = None) -> bool:
    """Whether a public Minari dataset missing from the local store may be downloaded: ``download`` when given,
    else the ``FRONTIER_RL_DOWNLOAD`` environment variable (``1``, ``true`` or ``yes``; the command line's
    ``--download`` sets it, so benchmark workers inherit it)."""
    if download is not None:
        return bool(download)
    return os.environ.get(DOWNLOAD_VARIABLE, "").strip().lower() in ("1", "true", "yes")


def load_minari_dataset(dataset_id: str, *, download: bool | None = None) -> MinariDataset:
    """``minari.load_dataset(dataset_id)`` from the local store, downloading a public dataset first when allowed
    (:func:`download_allowed`), with errors that say where it looked and what to do.

    The project's own namespace (``frontier/...``) is never downloaded: those datasets are made here.

    Raises:
        DatasetNotFoundError: the id is not in the local store and may not (or could not) be downloaded; the
            message names the folder looked at, the store's root and where it came from, close local ids, how
            to make the dataset and how to download a public one.
    """
    minari = import_optional("minari")
    import_optional("h5py")
    from rl.datasets.names import MINARI_NAMESPACE

    public = not dataset_id.startswith(f"{MINARI_NAMESPACE}/")
    if not minari_dataset_exists(dataset_id) and public and download_allowed(download):
        _download(minari, dataset_id)
    if not minari_dataset_exists(dataset_id):
        local = local_minari_ids()
        close = difflib.get_close_matches(dataset_id, local, n=3, cutoff=0.6)
        hint = f" Close local ids: {', '.join(close)}." if close else ""
        listing = f" Local datasets: {', '.join(local[:10])}{' ...' if len(local) > 10 else ''}." if local else ""
        fetch = (f" A public Minari dataset (e.g. mujoco/hopper/medium-v0) downloads with --download (or "
                 f"{DOWNLOAD_VARIABLE}=1)." if public else "")
        raise DatasetNotFoundError(
            f"Minari dataset {dataset_id!r} is not in the local store: looked for "
            f"{minari_dataset_path(dataset_id) / 'data'} (root from {_root_description()}).{hint}{listing} "
            f"Make it with `{_make_command(dataset_id)}` (or "
            "rl.datasets.generate_dataset('<env>-<level>-v2', policy, ...) from Python), or set "
            f"{ROOT_VARIABLE} to the store that holds it.{fetch}"
        )
    return minari.load_dataset(dataset_id, download=False)


def _download(minari: Any, dataset_id: str) -> None:
    """``minari.download_dataset(dataset_id)`` into the local store; a failure becomes one named error."""
    try:
        minari.download_dataset(dataset_id)
    except Exception as error:  # noqa: BLE001 - network, remote and unknown-id errors all mean "not fetched"
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DatasetNotFoundError(
            f"could not download Minari dataset {dataset_id!r} ({first_line}): check the id against "
            "`minari list remote` and the network, or make the dataset locally with `python -m rl.datasets make`."
        ) from None


def _as_dataset(dataset: MinariDataset | str) -> MinariDataset:
    return load_minari_dataset(dataset) if isinstance(dataset, str) else dataset


def read_episodes(dataset: MinariDataset | str) -> list[Episode]:
    """All episodes of a Minari dataset (or id) as :class:`rl.datasets.Episode`, with reset seeds and infos.

    Infos entries that are arrays with one row per observation are kept (``qpos``, ``qvel``); nested dicts
    and other shapes are left out.

    Raises:
        MalformedDatasetError: observations or actions are not flat arrays (Dict/Tuple spaces).
    """
    dataset = _as_dataset(dataset)
    seeds = [meta.get("seed") for meta in dataset.storage.get_episode_metadata(dataset.episode_indices)]
    episodes = []
    for data, seed in zip(dataset.iterate_episodes(), seeds):
        if not isinstance(data.observations, np.ndarray) or not isinstance(data.actions, np.ndarray):
            raise MalformedDatasetError(
                f"Minari dataset {dataset.id!r} has {type(dataset.observation_space).__name__} observations and "
                f"{type(dataset.action_space).__name__} actions; only flat Box arrays are supported. Flatten them "
                "(gymnasium.wrappers.FlattenObservation) when collecting."
            )
        rows = len(data.observations)
        infos = {
            key: value
            for key, value in (data.infos or {}).items()
            if isinstance(value, np.ndarray) and value.ndim >= 1 and len(value) == rows
        }
        episodes.append(
            Episode(
                observations=data.observations,
                actions=data.actions,
                rewards=data.rewards,
                terminations=data.terminations,
                truncations=data.truncations,
                infos=infos,
                seed=None if seed is None else int(seed),
            )
        )
    return episodes


def minari_to_transitions(dataset: MinariDataset | str, *, drop_timeouts: bool = True) -> dict[str, np.ndarray]:
    """A Minari dataset (or id) as the flat transition dict of :func:`rl.datasets.qlearning_dataset`.

    See :func:`rl.datasets.episodes_to_transitions` for the rules (``drop_timeouts=True`` is D4RL's).
    """
    dataset = _as_dataset(dataset)
    return episodes_to_transitions(
        read_episodes(dataset), drop_timeouts=drop_timeouts, source=f"Minari dataset {dataset.id!r}"
    )


def minari_reference_returns(dataset: MinariDataset | str) -> tuple[float, float] | None:
    """The dataset's own ``(ref_min_score, ref_max_score)`` from its metadata, or None when it has none."""
    metadata = _as_dataset(dataset).storage.metadata
    low, high = metadata.get("ref_min_score"), metadata.get("ref_max_score")
    return None if low is None or high is None else (float(low), float(high))
