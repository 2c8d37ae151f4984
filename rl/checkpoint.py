"""Atomic checkpoints: an interrupted run never leaves a half-written model behind.

A checkpoint is a folder ``step_<n>/`` holding ``model.zip``, ``vecnormalize.pkl`` (when the env is
normalised), ``replay_buffer.pkl`` (off-policy algorithms) and ``state.json``. It is written under a
hidden temporary name and renamed into place in one ``os.replace``, so a folder named ``step_<n>`` is
always complete; readers ignore the hidden ones.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

MODEL_FILE = "model.zip"
VECNORMALIZE_FILE = "vecnormalize.pkl"
REPLAY_BUFFER_FILE = "replay_buffer.pkl"
STATE_FILE = "state.json"
_STEP_DIR = re.compile(r"^step_(\d+)$")


class CheckpointError(RuntimeError):
    """Raised for a missing, incomplete or corrupt model or checkpoint."""


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write JSON to ``path`` via a temporary file and a rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as handle:
        json.dump(data, handle, indent=2, default=str)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_pickle_atomic(path: str | os.PathLike, data: Any) -> None:
    """Pickle ``data`` to ``path`` via a temporary file, fsync and a rename (e.g. a QD run's checkpoint)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        pickle.dump(data, handle, protocol=pickle.HIGHEST_PROTOCOL)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def save_model_atomic(model: BaseAlgorithm, path: str | os.PathLike) -> None:
    """``model.save`` to a temporary file, then rename: the target is either old or new, never partial."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.zip")
    model.save(tmp)
    os.replace(tmp, path)


def save_vecnormalize_atomic(vec_normalize: VecNormalize, path: str | os.PathLike) -> None:
    """``VecNormalize.save`` to a temporary file, then rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    vec_normalize.save(str(tmp))
    os.replace(tmp, path)


def load_normalization_stats(model_path: str | os.PathLike) -> VecNormalize | None:
    """The frozen VecNormalize statistics saved beside a model (``vecnormalize.pkl``), or None.

    For acting with a saved policy outside training (no VecEnv to wrap): use ``normalize_obs``.
    """
    path = Path(model_path).parent / VECNORMALIZE_FILE
    if not path.is_file():
        return None
    with open(path, "rb") as handle:
        vec_normalize = pickle.load(handle)
    vec_normalize.training = False
    return vec_normalize


def save_checkpoint(model: BaseAlgorithm, root: str | os.PathLike, *, keep: int = 2) -> Path:
    """Write a complete checkpoint of ``model`` under ``root`` and keep only the newest ``keep``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{model.num_timesteps:012d}"
    tmp = root / f".tmp_step_{model.num_timesteps}_{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    model.save(tmp / MODEL_FILE)
    vec_normalize = model.get_vec_normalize_env()
    if vec_normalize is not None:
        vec_normalize.save(str(tmp / VECNORMALIZE_FILE))
    # An offline algorithm whose buffer still holds only its dataset reads it again on load: not saved.
    if isinstance(model, OffPolicyAlgorithm) and model.replay_buffer is not None and not getattr(
        model, "replay_buffer_is_dataset", False
    ):
        model.save_replay_buffer(tmp / REPLAY_BUFFER_FILE)
    state = {"num_timesteps": model.num_timesteps, "seed": model.seed, "saved_at": time.time()}
    with open(tmp / STATE_FILE, "w") as handle:
        json.dump(state, handle)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in list_checkpoints(root)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def checkpoint_state(checkpoint: str | os.PathLike) -> dict[str, Any]:
    """The ``state.json`` of a checkpoint folder (step count, seed); empty when absent or unreadable."""
    try:
        with open(Path(checkpoint) / STATE_FILE) as handle:
            state = json.load(handle)
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def list_checkpoints(root: str | os.PathLike) -> list[Path]:
    """Complete checkpoints under ``root``, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def latest_checkpoint(root: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint under ``root``, or None."""
    checkpoints = list_checkpoints(root)
    return checkpoints[-1] if checkpoints else None


def check_model_file(path: str | os.PathLike) -> Path:
    """Check that ``path`` is a readable SB3 model archive, with an error that says what is wrong."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"Model file {str(path)!r} does not exist.")
    if not path.is_file():
        raise CheckpointError(f"Model path {str(path)!r} is not a file.")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            broken = archive.testzip()
    except zipfile.BadZipFile as error:
        raise CheckpointError(
            f"Model file {str(path)!r} is corrupt or not an SB3 model archive ({error}). "
            "Use an earlier checkpoint or retrain."
        ) from error
    if broken is not None:
        raise CheckpointError(f"Model file {str(path)!r} is corrupt: member {broken!r} fails its CRC check.")
    if "data" not in names:
        raise CheckpointError(
            f"Model file {str(path)!r} is a zip archive but not an SB3 model (no 'data' member)."
        )
    return path


def load_model(
    algo_class: type[BaseAlgorithm],
    path: str | os.PathLike,
    *,
    env: VecEnv | None = None,
    device: str = "auto",
    **kwargs: Any,
) -> BaseAlgorithm:
    """``algo_class.load`` with clear errors for a missing, corrupt or mismatched model file."""
    path = check_model_file(path)
    try:
        return algo_class.load(path, env=env, device=device, **kwargs)
    except ValueError as error:
        if "spaces do not match" in str(error) or "space" in str(error):
            raise CheckpointError(f"Model file {str(path)!r} does not fit this env: {error}") from error
        raise
    except (KeyError, EOFError, RuntimeError) as error:
        raise CheckpointError(
            f"Model file {str(path)!r} could not be loaded as {algo_class.__name__}: {error!r}"
        ) from error


class AtomicCheckpointCallback(BaseCallback):
    """Save an atomic checkpoint (model, VecNormalize, replay buffer) every ``save_freq`` env steps.

    Unlike SB3's CheckpointCallback it counts env steps, not callback calls, saves only where a resumed
    run continues exactly (at the start of a rollout), writes atomically and keeps only the newest
    ``keep`` checkpoints, which is what a resumable run needs.
    """

    def __init__(self, save_freq: int, checkpoint_dir: str | os.PathLike, *, keep: int = 2, verbose: int = 0):
        super().__init__(verbose)
        self.save_freq = int(save_freq)
        self.checkpoint_dir = Path(checkpoint_dir)
        self.keep = keep
        self.seconds = 0.0
        """Wall time spent writing checkpoints (subtracted when measuring training throughput)."""
        self._last_saved = 0

    def _on_training_start(self) -> None:
        self._last_saved = self.model.num_timesteps

    def _on_rollout_start(self) -> None:
        # Between a finished update and the next collection: the model, the replay buffer and the step
        # count agree here (SB3 calls on_step before it stores the step's transition), and an on-policy
        # run loses no collected data on resume.
        if self.save_freq > 0 and self.num_timesteps - self._last_saved >= self.save_freq:
            start = time.perf_counter()
            path = save_checkpoint(self.model, self.checkpoint_dir, keep=self.keep)
            self.seconds += time.perf_counter() - start
            self._last_saved = self.num_timesteps
            if self.verbose:
                print(f"Saved checkpoint {path}")

    def _on_step(self) -> bool:
        return True
