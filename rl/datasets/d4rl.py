"""D4RL's HDF5 files: read and write them in D4RL's key layout, and D4RL's ``qlearning_dataset``.

A D4RL file holds one row per environment step, all episodes back to back:

- ``observations`` (N, obs_dim), ``actions`` (N, act_dim), ``rewards`` (N,)
- ``terminals`` (N,): the step ended the episode in a terminal state (the MDP's own end; no bootstrapping)
- ``timeouts`` (N,): the step ended the episode by the time limit (not terminal; D4RL's ``-v1``/``-v2``)
- optional ``next_observations`` (N, obs_dim), and per-step ``infos/qpos``, ``infos/qvel`` (the MuJoCo
  state at ``observations[i]``), ``infos/...``; ``metadata/...`` datasets are kept as they are.

There is no explicit episode index: an episode ends at a row whose ``terminals`` or ``timeouts`` is set,
and the next row starts the next episode.

``qlearning_dataset`` follows D4RL 1.1 (``d4rl/__init__.py``), see its docstring for every rule.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rl.datasets.errors import DatasetNotFoundError, MalformedDatasetError, import_optional

REQUIRED_KEYS: tuple[str, ...] = ("observations", "actions", "rewards", "terminals", "timeouts")
"""The datasets every D4RL ``-v2`` file has."""

TRANSITION_KEYS: tuple[str, ...] = (
    "observations",
    "actions",
    "next_observations",
    "rewards",
    "terminals",
    "timeouts",
)
"""Keys of the flat transition dict that :func:`qlearning_dataset` returns (and every loader here)."""

_FLAGS = ("terminals", "timeouts")
_SCALAR_PER_STEP = ("rewards", "terminals", "timeouts")
_LEARNING_KEYS = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")
"""The fields offline algorithms learn from: they must hold finite numbers."""


def _is_per_step(key: str) -> bool:
    """Whether ``key`` holds one row per step (and so must have N rows)."""
    return key in REQUIRED_KEYS or key == "next_observations" or key.startswith("infos/")


def _first_bad_row(array: np.ndarray, bad: np.ndarray) -> tuple[int, str]:
    """The first row with a True in ``bad`` (same shape as ``array``) and, for a 2-D or wider array, its column."""
    flat = bad.reshape(len(bad), -1)
    row = int(np.argmax(flat.any(axis=1)))
    if array.ndim < 2:
        return row, ""
    column = int(np.argmax(flat[row]))
    index = np.unravel_index(column, array.shape[1:])
    return row, f", column {index[0] if len(index) == 1 else tuple(int(i) for i in index)}"


def check_finite_fields(
    arrays: Mapping[str, np.ndarray],
    keys: Sequence[str],
    source: str,
    describe_row: Callable[[int], str] | None = None,
) -> None:
    """Refuse NaN or inf in the float arrays ``keys`` of ``arrays``: name the field, the first bad row and its column.

    Raises:
        MalformedDatasetError: e.g. ``D4RL file 'x.hdf5': field 'rewards' has NaN at row 17 (3 rows in all); ...``.
    """
    for key in keys:
        array = arrays.get(key)
        if array is None or array.dtype.kind != "f" or array.size == 0:
            continue
        finite = np.isfinite(array)
        if finite.all():
            continue
        row, column = _first_bad_row(array, ~finite)
        value = array[row].flat[int(np.argmax(~finite[row].reshape(-1)))] if array.ndim > 1 else array[row]
        what = "NaN" if np.isnan(value) else "+inf" if value > 0 else "-inf"
        n_rows = int((~finite).reshape(len(array), -1).any(axis=1).sum())
        where = describe_row(row) if describe_row is not None else f"row {row}"
        raise MalformedDatasetError(
            f"{source}: field {key!r} has {what} at {where}{column} ({n_rows} row{'s' * (n_rows != 1)} with NaN or "
            "inf in that field). A dataset must hold finite numbers: regenerate it, or drop those rows."
        )


def as_numeric_array(key: str, value: Any, source: str) -> np.ndarray:
    """``value`` as a numeric (bool, integer or float) array, or a MalformedDatasetError naming ``key``."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as error:  # ragged nested lists
        raise MalformedDatasetError(f"{source}: field {key!r} is not a rectangular array ({error}).") from None
    if array.dtype.kind not in "biuf":
        kind = {"U": "text", "S": "bytes", "O": "Python objects", "c": "complex numbers", "V": "records"}.get(
            array.dtype.kind, array.dtype.kind
        )
        raise MalformedDatasetError(
            f"{source}: field {key!r} has dtype {array.dtype} ({kind}); it must hold numbers (float, int or bool)."
        )
    return array


def check_d4rl_arrays(
    data: Mapping[str, Any],
    source: str = "the data",
    *,
    describe_row: Callable[[int], str] | None = None,
) -> dict[str, np.ndarray]:
    """Validate arrays in D4RL's layout and return them normalised.

    Normalisation follows D4RL's ``get_dataset``: ``rewards``/``terminals``/``timeouts`` of shape (N, 1)
    become (N,); the two flags become bool.

    Args:
        data: the arrays, keyed as in a D4RL file.
        source: what they are, for messages (``"D4RL file 'x.hdf5'"``).
        describe_row: how a message names row ``i`` (default ``"row i"``; episodes give their episode and step).

    Raises:
        MalformedDatasetError: a required key is missing; a field holds no numbers (text, objects), has the
            wrong number of dimensions, or NaN/inf (the message names the field and the first bad row); a flag
            holds values other than 0/1; a per-step array (required, ``next_observations``, ``infos/*``) does
            not have one row per step; no rows at all. The message names the key and ``source``.
    """
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise MalformedDatasetError(
            f"{source} is not in D4RL's layout: missing {', '.join(repr(k) for k in missing)} "
            f"(found: {', '.join(sorted(data)) or 'nothing'}). A D4RL v2 dataset needs {', '.join(REQUIRED_KEYS)}; "
            "timeouts is True at the last step of an episode cut by the time limit."
        )
    arrays: dict[str, np.ndarray] = {}
    for key, value in data.items():
        if key in _LEARNING_KEYS:
            arrays[key] = as_numeric_array(key, value, source)
        else:
            try:
                arrays[key] = np.asarray(value)
            except (ValueError, TypeError) as error:
                raise MalformedDatasetError(f"{source}: {key!r} is not a rectangular array ({error}).") from None
    for key in _SCALAR_PER_STEP:
        if arrays[key].ndim == 2 and arrays[key].shape[1] == 1:
            arrays[key] = arrays[key][:, 0]
        if arrays[key].ndim != 1:
            raise MalformedDatasetError(
                f"{source}: {key!r} must have shape (N,) or (N, 1), got {arrays[key].shape}."
            )
    for key, what in (("observations", "obs_dim"), ("actions", "act_dim"), ("next_observations", "obs_dim")):
        if key in arrays and arrays[key].ndim < 2:
            raise MalformedDatasetError(
                f"{source}: {key!r} must have shape (N, {what}), got {arrays[key].shape}."
            )
    n_steps = len(arrays["observations"])
    if n_steps == 0:
        raise MalformedDatasetError(f"{source} has no rows: 'observations' is empty.")
    for key, value in arrays.items():
        if _is_per_step(key) and (value.ndim == 0 or len(value) != n_steps):
            length = "a scalar" if value.ndim == 0 else f"{len(value)} rows"
            raise MalformedDatasetError(
                f"{source}: {key!r} has {length} but 'observations' has {n_steps}. Every per-step array "
                f"({', '.join(REQUIRED_KEYS)}, next_observations, infos/*) needs one row per step."
            )
    if "next_observations" in arrays and arrays["next_observations"].shape != arrays["observations"].shape:
        raise MalformedDatasetError(
            f"{source}: 'next_observations' has shape {arrays['next_observations'].shape} but 'observations' has "
            f"{arrays['observations'].shape}; they must match."
        )
    check_finite_fields(arrays, _LEARNING_KEYS, source, describe_row)
    for key in _FLAGS:
        flags = arrays[key]
        if flags.dtype != bool:
            not_flag = (flags != 0) & (flags != 1)
            if not_flag.any():
                row, _ = _first_bad_row(flags, not_flag)
                where = describe_row(row) if describe_row is not None else f"row {row}"
                raise MalformedDatasetError(
                    f"{source}: field {key!r} holds {flags[row]!r} at {where}; a flag must be 0/1 or True/False."
                )
            arrays[key] = flags.astype(bool)
    return arrays


def load_d4rl_hdf5(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a D4RL HDF5 file into a dict keyed by dataset path (``"observations"``, ``"infos/qpos"``, ...).

    Every dataset in the file is read, as D4RL's ``get_dataset`` does, then checked and normalised by
    :func:`check_d4rl_arrays`.

    Raises:
        DatasetNotFoundError: the file does not exist (the message gives the absolute path looked at).
        MalformedDatasetError: not an HDF5 file, a required key missing, or mismatched lengths.
        MissingDependencyError: h5py is not installed.
    """
    h5py = import_optional("h5py")
    path = Path(path)
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise DatasetNotFoundError(
            f"D4RL HDF5 file {str(path.absolute())!r} {what}. Check the path, or write one with "
            "rl.datasets.write_d4rl_hdf5 / rl.datasets.generate_dataset(..., hdf5_path=...)."
        )
    data: dict[str, Any] = {}

    def read(name: str, item: Any) -> None:
        if isinstance(item, h5py.Dataset):
            data[name] = item[()]

    try:
        with h5py.File(path, "r") as handle:
            handle.visititems(read)
    except (OSError, RuntimeError, TypeError, ValueError, KeyError) as error:  # not HDF5, truncated, odd types
        raise MalformedDatasetError(f"{str(path)!r} is not a readable HDF5 file ({error}).") from error
    return check_d4rl_arrays(data, source=f"D4RL file {str(path)!r}")


def read_d4rl_attributes(path: str | os.PathLike) -> dict[str, Any]:
    """The root attributes of an HDF5 file (what :func:`write_d4rl_hdf5` stored as ``attributes``).

    D4RL's own files have none; the project's files carry ``env_id``, ``name``, ``ref_min_score``,
    ``ref_max_score``. Bytes are decoded to str, numpy scalars to Python numbers.
    """
    h5py = import_optional("h5py")
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"D4RL HDF5 file {str(path.absolute())!r} does not exist.")
    try:
        with h5py.File(path, "r") as handle:
            attributes = dict(handle.attrs)
    except (OSError, RuntimeError, TypeError, ValueError, KeyError) as error:
        raise MalformedDatasetError(f"{str(path)!r} is not a readable HDF5 file ({error}).") from error
    return {
        key: value.decode() if isinstance(value, bytes) else value.item() if isinstance(value, np.generic) else value
        for key, value in attributes.items()
    }


def _attribute(value: Any) -> Any:
    """An HDF5-storable attribute: strings and numbers as they are, anything else as JSON text."""
    if isinstance(value, (str, bytes, int, float, bool, np.generic)):
        return value
    return json.dumps(value, default=str)


def write_d4rl_hdf5(
    path: str | os.PathLike,
    data: Mapping[str, Any],
    *,
    attributes: Mapping[str, Any] | None = None,
    compression: str | None = None,
) -> Path:
    """Write arrays in D4RL's key layout to ``path``, atomically (temporary file, fsync, rename).

    Args:
        path: the ``.hdf5`` file to write; an existing file is replaced only once the new one is complete.
        data: at least :data:`REQUIRED_KEYS`; keys with ``/`` (``"infos/qpos"``) become nested datasets.
        attributes: root attributes, e.g. ``{"env_id": "Hopper-v4", "ref_min_score": ...}``; None values
            are skipped, lists and dicts stored as JSON text.
        compression: h5py compression for every dataset (``"gzip"``), or None (fastest).

    Raises:
        MalformedDatasetError: ``data`` is not in D4RL's layout (checked before anything is written).
    """
    h5py = import_optional("h5py")
    path = Path(path)
    arrays = check_d4rl_arrays(data, source=f"data for {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with h5py.File(tmp, "w") as handle:
            for key, value in arrays.items():
                handle.create_dataset(key, data=value, compression=compression if value.ndim else None)
            for key, value in (attributes or {}).items():
                if value is not None:
                    handle.attrs[key] = _attribute(value)
        with open(tmp, "rb+") as raw:
            os.fsync(raw.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def qlearning_dataset(
    data: Mapping[str, Any],
    *,
    terminate_on_end: bool = False,
    use_next_observations: bool = True,
) -> dict[str, np.ndarray]:
    """Flat (s, a, r, s', done) transitions from D4RL-layout arrays, with D4RL's ``qlearning_dataset`` rules.

    D4RL 1.1 walks rows ``i = 0 .. N-2`` and:

    1. pairs ``observations[i]`` with ``observations[i + 1]`` as the next observation;
    2. skips row ``i`` when ``timeouts[i]`` is set (unless ``terminate_on_end``): a time-limit step's next row
       is already the next episode's first observation, so it has no valid s'. A row that is both timeout and
       terminal is skipped too (the timeout test comes first);
    3. keeps terminal rows with ``terminals = True``; their paired next row is the next episode's start, which
       does not matter because a terminal transition is not bootstrapped;
    4. never uses the last row ``N - 1`` (no row after it), whatever its flags;
    5. casts observations, actions, rewards to float32 and terminals to bool.

    ``terminate_on_end=True`` keeps the timeout rows (D4RL's docstring says it then sets done on them, but its
    code does not: ``terminals`` stays as stored; same here).

    One deliberate difference, on by default: when the file has ``next_observations`` they are used as s'
    (``use_next_observations=True``) instead of ``observations[i + 1]``. D4RL 1.1 ignores that key. The kept
    rows are the same either way; only s' of terminal rows (and of timeout rows with ``terminate_on_end``)
    differ, where the stored next observation is the true one. Pass ``use_next_observations=False`` for
    D4RL's arrays bit for bit.

    Returns:
        ``observations``, ``actions``, ``next_observations``, ``rewards``, ``terminals`` (D4RL's keys) and
        ``timeouts`` (False everywhere unless ``terminate_on_end`` kept timeout rows).

    Raises:
        MalformedDatasetError: the arrays are not in D4RL's layout (see :func:`check_d4rl_arrays`).
    """
    arrays = check_d4rl_arrays(data)
    n_steps = len(arrays["rewards"])
    keep = np.zeros(n_steps, dtype=bool)
    keep[: n_steps - 1] = True  # rule 4
    if not terminate_on_end:
        keep &= ~arrays["timeouts"]  # rule 2
    rows = np.flatnonzero(keep)
    if use_next_observations and "next_observations" in arrays:
        next_observations = arrays["next_observations"][rows]
    else:
        next_observations = arrays["observations"][rows + 1]  # rule 1
    return {
        "observations": arrays["observations"][rows].astype(np.float32),
        "actions": arrays["actions"][rows].astype(np.float32),
        "next_observations": next_observations.astype(np.float32),
        "rewards": arrays["rewards"][rows].astype(np.float32),
        "terminals": arrays["terminals"][rows],
        "timeouts": arrays["timeouts"][rows],
    }
