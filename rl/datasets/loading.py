"""One entry point for offline algorithms: ``load_dataset(spec)`` -> :class:`OfflineDataset`.

``spec`` may be a D4RL-style name (``"hopper-medium-v2"``, read from the project's local Minari dataset
``frontier/hopper/medium-v0``), any local Minari id (``"mujoco/hopper/medium-v0"``), or the path of an
HDF5 file in D4RL's layout. Whatever the source, the result holds the same flat float32 transitions, by
D4RL's rules (time-limit steps dropped, terminal steps kept), with the env to evaluate on and the
reference returns that normalise scores.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from rl.datasets.d4rl import (
    as_numeric_array,
    check_finite_fields,
    load_d4rl_hdf5,
    qlearning_dataset,
    read_d4rl_attributes,
)
from rl.datasets.errors import MalformedDatasetError, UnknownDatasetEnvError
from rl.datasets.minari_store import (
    load_minari_dataset,
    minari_dataset_exists,
    minari_reference_returns,
    minari_to_transitions,
)
from rl.datasets.names import is_d4rl_name, minari_id_for, parse_d4rl_name
from rl.datasets.scores import d4rl_reference_returns, normalized_score

HDF5_SUFFIXES = (".hdf5", ".h5")


@dataclass(frozen=True, eq=False)
class OfflineDataset:
    """Flat transitions for offline RL, with the env they came from and their score scale."""

    name: str
    """D4RL-style name, Minari id, or the file's name."""
    env_id: str
    """The Gymnasium env to evaluate policies on."""
    observations: np.ndarray
    """(N, obs_dim) float32."""
    actions: np.ndarray
    """(N, act_dim) float32."""
    next_observations: np.ndarray
    """(N, obs_dim) float32."""
    rewards: np.ndarray
    """(N,) float32."""
    terminals: np.ndarray
    """(N,) bool: no bootstrapping from ``next_observations``."""
    timeouts: np.ndarray
    """(N,) bool: time-limit ends that were kept (all False with the default ``drop_timeouts=True``)."""
    ref_min: float | None = None
    """Random-policy return of the score scale (D4RL's constant, or the dataset's own); None if unknown."""
    ref_max: float | None = None
    """Expert return of the score scale; None if unknown."""
    source: str = ""
    """Where it was read from: a file path or a Minari id."""
    recorded_env_id: str | None = None
    """The env the data was collected on, as the dataset itself records it (the file's ``env_id`` attribute, the
    Minari env spec, or its D4RL-style name); None when it records none. ``env_id`` differs from it when the
    caller chose the env (``load_dataset(..., env_id=...)``, ``--env``)."""

    def __post_init__(self) -> None:
        """Refuse arrays that offline training cannot use, naming the field and the first bad transition.

        Every loader ends here (and data built in memory too): the six arrays must be numbers of the shapes the
        field docs give, one row per transition, at least one row, with no NaN or inf; flags are made bool.
        """
        where = f"Dataset {self.name!r}" + (f" ({self.source})" if self.source and self.source != self.name else "")
        arrays = {}
        for key in ("observations", "actions", "next_observations", "rewards", "terminals", "timeouts"):
            arrays[key] = as_numeric_array(key, getattr(self, key), where)
        for key in ("observations", "actions", "next_observations"):
            if arrays[key].ndim < 2:
                raise MalformedDatasetError(
                    f"{where}: field {key!r} must have shape (N, dim), got {arrays[key].shape}."
                )
        for key in ("rewards", "terminals", "timeouts"):
            if arrays[key].ndim != 1:
                raise MalformedDatasetError(f"{where}: field {key!r} must have shape (N,), got {arrays[key].shape}.")
        n = len(arrays["observations"])
        if n == 0:
            raise MalformedDatasetError(f"{where} has no transitions: 'observations' is empty.")
        wrong = [f"{key!r} has {len(value)}" for key, value in arrays.items() if len(value) != n]
        if wrong:
            raise MalformedDatasetError(
                f"{where}: {', '.join(wrong)} rows but 'observations' has {n}; every field needs one row per "
                "transition."
            )
        if arrays["next_observations"].shape != arrays["observations"].shape:
            raise MalformedDatasetError(
                f"{where}: field 'next_observations' has shape {arrays['next_observations'].shape} but 'observations' "
                f"has {arrays['observations'].shape}; they must match."
            )
        check_finite_fields(arrays, tuple(arrays), where, lambda row: f"transition {row}")
        for key in ("terminals", "timeouts"):
            flags = arrays[key]
            if flags.dtype != bool:
                if np.any((flags != 0) & (flags != 1)):
                    raise MalformedDatasetError(f"{where}: field {key!r} must hold 0/1 or True/False.")
                arrays[key] = flags.astype(bool)
        for key, value in arrays.items():
            if value is not getattr(self, key):
                object.__setattr__(self, key, value)

    def __len__(self) -> int:
        return len(self.rewards)

    def normalized_score(self, returns: float | np.ndarray | list[float]) -> float | np.ndarray:
        """D4RL's 100 * (R - ref_min) / (ref_max - ref_min) for episode returns of this dataset's env."""
        return normalized_score(self.name, returns, self.ref_min, self.ref_max)

    def as_dict(self) -> dict[str, np.ndarray]:
        """The six arrays, keyed as in :func:`rl.datasets.qlearning_dataset`."""
        arrays = ("observations", "actions", "next_observations", "rewards", "terminals", "timeouts")
        return {field.name: getattr(self, field.name) for field in fields(self) if field.name in arrays}

    def fingerprint(self) -> str:
        """A short SHA-256 of the six arrays (values, dtypes, shapes), recorded with every run trained on them.

        Datasets are made on each machine by the project's pipeline; a policy-zoo run that differs (a resumed
        training run, another library version) makes a dataset of the same name with other transitions. Runs
        meant to be compared (seeds, the two sides of a benchmark pair) should show one fingerprint.
        """
        digest = hashlib.sha256()
        for key, array in sorted(self.as_dict().items()):
            array = np.ascontiguousarray(array)
            digest.update(f"{key}:{array.dtype.str}:{array.shape}".encode())
            digest.update(array.tobytes())
        return digest.hexdigest()[:16]


def _scale(name: str, env_id: str, own: tuple[float, float] | None) -> tuple[float | None, float | None]:
    """The dataset's own reference returns, else D4RL's for its name or env, else none."""
    scale = own or d4rl_reference_returns(name) or d4rl_reference_returns(env_id)
    return scale if scale is not None else (None, None)


def _no_env_message(what: str) -> str:
    return (
        f"Cannot tell which env {what} was collected on: it records none. Pass the env with --env <id> on the "
        "command line (e.g. --env Hopper-v4), or load_dataset(..., env_id='Hopper-v4') from Python."
    )


def _from_hdf5(path: Path, env_id: str | None, drop_timeouts: bool) -> OfflineDataset:
    data = load_d4rl_hdf5(path)
    attributes = read_d4rl_attributes(path)
    name = str(attributes.get("name") or path.stem)
    recorded = attributes.get("env_id")
    if recorded is not None and (not isinstance(recorded, str) or not recorded.strip()):
        raise MalformedDatasetError(
            f"D4RL file {str(path)!r}: its env_id attribute is {recorded!r}, not an env id such as 'Hopper-v4'. "
            "Rewrite the attribute, or pass the env with --env <id>."
        )
    recorded = recorded or (parse_d4rl_name(name).env_id if is_d4rl_name(name) else None)
    env_id = env_id or recorded
    if env_id is None:
        raise UnknownDatasetEnvError(
            _no_env_message(f"{str(path)!r}") + f" (It has no env_id attribute, and its name {name!r} is not a "
            "D4RL-style name such as hopper-medium-v2.)"
        )
    if not drop_timeouts and "next_observations" not in data:
        raise MalformedDatasetError(
            f"{str(path)!r} has no next_observations, so time-limit steps have no valid next observation (the next row "
            "is the next episode's start). Load it with drop_timeouts=True (D4RL's rule)."
        )
    own = None
    if attributes.get("ref_min_score") is not None and attributes.get("ref_max_score") is not None:
        try:
            own = (float(attributes["ref_min_score"]), float(attributes["ref_max_score"]))
        except (TypeError, ValueError):
            raise MalformedDatasetError(
                f"D4RL file {str(path)!r}: its ref_min_score/ref_max_score attributes "
                f"({attributes['ref_min_score']!r}, {attributes['ref_max_score']!r}) are not numbers."
            ) from None
    ref_min, ref_max = _scale(name, recorded or env_id, own)
    transitions = qlearning_dataset(data, terminate_on_end=not drop_timeouts)
    return OfflineDataset(
        name=name, env_id=env_id, ref_min=ref_min, ref_max=ref_max, source=str(path), recorded_env_id=recorded,
        **transitions,
    )


def _from_minari(dataset_id: str, name: str, env_id: str | None, drop_timeouts: bool,
                 download: bool | None = None) -> OfflineDataset:
    dataset = load_minari_dataset(dataset_id, download=download)
    recorded = dataset.env_spec.id if dataset.env_spec is not None else None
    env_id = env_id or recorded
    if env_id is None:
        raise UnknownDatasetEnvError(_no_env_message(f"Minari dataset {dataset_id!r}"))
    ref_min, ref_max = _scale(name, recorded or env_id, minari_reference_returns(dataset))
    transitions = minari_to_transitions(dataset, drop_timeouts=drop_timeouts)
    return OfflineDataset(
        name=name, env_id=env_id, ref_min=ref_min, ref_max=ref_max, source=dataset_id, recorded_env_id=recorded,
        **transitions,
    )


def load_dataset(spec: str | os.PathLike, env_id: str | None = None, *, drop_timeouts: bool = True,
                 download: bool | None = None) -> OfflineDataset:
    """Load an offline dataset as flat transitions.

    Args:
        spec: a D4RL-style name (``"halfcheetah-medium-v2"`` -> local Minari ``frontier/halfcheetah/medium-v0``),
            a local Minari id, or the path of a D4RL-layout HDF5 file (``.hdf5``/``.h5``, or any existing file).
        env_id: the env to evaluate on, overriding what the dataset records (needed for an HDF5 file that
            records none and is not named like a D4RL dataset).
        drop_timeouts: drop time-limit steps, D4RL's ``qlearning_dataset`` rule (default). ``False`` keeps
            them with their true next observation (Minari datasets, or HDF5 files with ``next_observations``).
        download: a public Minari id missing from the local store (``"mujoco/hopper/medium-v0"``) is downloaded
            into it first; None: as ``FRONTIER_RL_DOWNLOAD`` says (:func:`rl.datasets.download_allowed`).
            Normalised scores then use the dataset's own reference scores (Minari's ``ref_min_score`` /
            ``ref_max_score``) where it has them.

    Raises:
        DatasetNotFoundError: no such file, or no such dataset in the local Minari store (says where it looked
            and how to make it).
        UnknownDatasetNameError: a name that is neither a D4RL-style name nor a local Minari id.
        MalformedDatasetError: a file that is not in D4RL's layout, or data that is not finite numbers of the
            right shapes (NaN, inf, text, missing fields, mismatched lengths); the message names the field and
            the first bad row.
        UnknownDatasetEnvError: ``env_id`` is None and the dataset records no env (says to pass ``--env <id>``).
    """
    text = os.fspath(spec)
    path = Path(text)
    if path.suffix.lower() in HDF5_SUFFIXES or path.is_file():
        return _from_hdf5(path, env_id, drop_timeouts)
    if "/" not in text and not is_d4rl_name(text) and minari_dataset_exists(text):
        return _from_minari(text, text, env_id, drop_timeouts)  # a local Minari id without a namespace
    dataset_id, d4rl = minari_id_for(text)
    return _from_minari(dataset_id, d4rl.name if d4rl is not None else dataset_id, env_id, drop_timeouts, download)
