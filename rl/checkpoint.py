"""Atomic checkpoints: an interrupted run never leaves a half-written model behind.

A checkpoint is a folder ``step_<n>/`` holding ``model.zip``, ``vecnormalize.pkl`` (when the env is
normalised), ``replay_buffer.pkl`` (off-policy algorithms), ``resume_state.pkl`` (random generators, the
episode in progress, callback counters: :mod:`rl.resume_state`) and ``state.json``. It is written under a
hidden temporary name and renamed into place in one ``os.replace``, so a folder named ``step_<n>`` is
always complete; readers ignore the hidden ones. A checkpoint damaged after it was written (a disk error, a
file cut short) is found by :func:`check_checkpoint`, and :func:`usable_checkpoint` falls back to the
previous one.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import signal
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
RESUME_STATE_FILE = "resume_state.pkl"
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

    For acting with a saved policy outside training (no VecEnv to wrap): use ``normalize_obs``. A damaged or
    foreign file raises :class:`CheckpointError`.
    """
    path = Path(model_path).parent / VECNORMALIZE_FILE
    if not path.is_file():
        return None
    vec_normalize = read_pickle(path, "VecNormalize statistics")
    if not isinstance(vec_normalize, VecNormalize):
        raise CheckpointError(f"{str(path)!r} holds a {type(vec_normalize).__name__}, not SB3 VecNormalize "
                              "statistics.")
    vec_normalize.training = False
    return vec_normalize


def save_checkpoint(
    model: BaseAlgorithm, root: str | os.PathLike, *, keep: int = 2, resume_state: Any = None
) -> Path:
    """Write a complete checkpoint of ``model`` under ``root`` and keep only the newest ``keep``.

    ``resume_state`` (a :class:`rl.resume_state.ResumeState`) is what a bit-identical resume needs beyond
    the model; without it a resumed run restarts the episode in progress and reseeds nothing.
    """
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
    if resume_state is not None:
        from rl import resume_state as resume

        resume.save(resume_state, tmp / RESUME_STATE_FILE)
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


def read_pickle(path: str | os.PathLike, what: str) -> Any:
    """Unpickle ``path``; a damaged file raises :class:`CheckpointError` naming ``what`` it should be.

    Unpickling damaged bytes can raise almost anything (UnpicklingError, EOFError, ValueError, UnicodeDecodeError,
    OverflowError, MemoryError, KeyError, TypeError, ...), so every failure becomes the one error.
    """
    try:
        with open(path, "rb") as handle:
            return pickle.load(handle)
    except Exception as error:  # noqa: BLE001 - any failure means the file cannot be used
        raise CheckpointError(f"{what} {str(path)!r} is corrupt ({type(error).__name__}: {error}).") from error


def check_checkpoint(checkpoint: str | os.PathLike) -> Path:
    """Check every file of a checkpoint folder (model archive CRCs, each pickle readable); raise CheckpointError."""
    checkpoint = Path(checkpoint)
    check_model_file(checkpoint / MODEL_FILE)
    for name, what in ((VECNORMALIZE_FILE, "VecNormalize statistics"), (RESUME_STATE_FILE, "Resume state")):
        if (checkpoint / name).is_file():
            read_pickle(checkpoint / name, what)  # a cut-short pickle raises
    buffer = checkpoint / REPLAY_BUFFER_FILE
    if buffer.is_file():
        read_pickle(buffer, "Replay buffer")
    return checkpoint


def usable_checkpoint(root: str | os.PathLike) -> tuple[Path | None, list[str]]:
    """The newest checkpoint under ``root`` whose files are whole, and a note for each newer one skipped."""
    skipped: list[str] = []
    for checkpoint in reversed(list_checkpoints(root)):
        try:
            return check_checkpoint(checkpoint), skipped
        except CheckpointError as error:
            skipped.append(f"skipped checkpoint {checkpoint.name}: {error}")
    return None, skipped


def saved_model_data(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON ``data`` member of an SB3 model archive (attribute names, the policy class's module)."""
    with zipfile.ZipFile(check_model_file(path)) as archive:
        try:
            return json.loads(archive.read("data"))
        except ValueError as error:
            raise CheckpointError(f"Model file {str(path)!r} has an unreadable 'data' member: {error}") from error


def _policy_modules(algo_class: type[BaseAlgorithm]) -> set[str]:
    aliases = getattr(algo_class, "policy_aliases", {}) or {}
    return {policy.__module__ for policy in aliases.values() if isinstance(policy, type)}


def load_model(
    algo_class: type[BaseAlgorithm],
    path: str | os.PathLike,
    *,
    env: VecEnv | None = None,
    device: str = "auto",
    overrides: dict[str, Any] | None = None,
    **kwargs: Any,
) -> BaseAlgorithm:
    """``algo_class.load`` with clear errors for a missing, corrupt or mismatched model file.

    ``overrides`` are hyperparameters to change on load (rl-zoo3's ``-i`` with ``-params``): each must be an
    attribute the archive stores, or the change could not take effect and is refused. They are set before
    the model's networks, schedules and optimizers are built (SB3's ``load(**kwargs)``).
    """
    path = check_model_file(path)
    data = saved_model_data(path)
    saved_module = (data.get("policy_class") or {}).get("__module__")
    expected = _policy_modules(algo_class)
    if saved_module and expected and saved_module not in expected:
        raise CheckpointError(
            f"Model file {str(path)!r} was saved by another algorithm (its policy is from {saved_module}), "
            f"not {algo_class.__name__}: pass the --algo it was trained with."
        )
    overrides = dict(overrides or {})
    unknown = sorted(key for key in overrides if key not in data)
    if unknown:
        raise CheckpointError(
            f"Cannot change {', '.join(unknown)} when continuing {str(path)!r}: the saved "
            f"{algo_class.__name__} does not store {'it' if len(unknown) == 1 else 'them'}, so the change would not "
            "take effect. Start a new run with these values instead."
        )
    try:
        return algo_class.load(path, env=env, device=device, **overrides, **kwargs)
    except ValueError as error:
        if "spaces do not match" in str(error) or "space" in str(error) or "policy kwargs" in str(error):
            raise CheckpointError(f"Model file {str(path)!r} does not fit this run: {error}") from error
        raise
    except AssertionError as error:  # SB3's set_env: another number of envs
        raise CheckpointError(f"Model file {str(path)!r} does not fit this env: {error}") from error
    except (KeyError, EOFError, RuntimeError, AttributeError, TypeError) as error:
        raise CheckpointError(
            f"Model file {str(path)!r} could not be loaded as {algo_class.__name__}: {error!r}"
        ) from error


class InterruptRequest:
    """A Ctrl-C (SIGINT) that asks training to stop at the next point where a checkpoint is exact."""

    def __init__(self) -> None:
        self.requested = False


@contextmanager
def checkpoint_on_interrupt() -> Iterator[InterruptRequest]:
    """Inside the block, the first SIGINT only sets ``requested`` (the checkpoint callback then saves and
    stops training); a second one interrupts at once, as usual. Outside the main thread nothing changes."""
    request = InterruptRequest()

    def handler(signum: int, frame: Any) -> None:  # noqa: ARG001 - signal handler signature
        if request.requested:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        request.requested = True
        print("\nInterrupted: saving a checkpoint at the next safe point (Ctrl-C again to stop at once).", flush=True)

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        yield request
        return
    try:
        yield request
    finally:
        signal.signal(signal.SIGINT, previous)


class AtomicCheckpointCallback(BaseCallback):
    """Save an atomic checkpoint (model, VecNormalize, replay buffer, resume state) every ``save_freq`` env steps.

    Unlike SB3's CheckpointCallback it counts env steps, not callback calls, saves only where a resumed
    run continues exactly (at the start of a rollout), writes atomically and keeps only the newest
    ``keep`` checkpoints, which is what a resumable run needs. ``capture_resume_state`` returns the
    :class:`rl.resume_state.ResumeState` to store with each checkpoint. With an ``interrupt`` request set
    (Ctrl-C, :func:`checkpoint_on_interrupt`) it saves at the next rollout start and stops training;
    ``interrupted`` then holds the checkpoint's path.
    """

    def __init__(
        self,
        save_freq: int,
        checkpoint_dir: str | os.PathLike,
        *,
        keep: int = 2,
        verbose: int = 0,
        capture_resume_state: Callable[[], Any] | None = None,
        interrupt: InterruptRequest | None = None,
    ):
        super().__init__(verbose)
        self.save_freq = int(save_freq)
        self.checkpoint_dir = Path(checkpoint_dir)
        self.keep = keep
        self.capture_resume_state = capture_resume_state
        self.interrupt = interrupt
        self.interrupted: Path | None = None
        self.seconds = 0.0
        """Wall time spent writing checkpoints (subtracted when measuring training throughput)."""
        self._last_saved = 0

    def _on_training_start(self) -> None:
        self._last_saved = self.model.num_timesteps

    def save(self) -> Path:
        """Write a checkpoint now (call only where one is exact: a rollout start, or the end of training)."""
        start = time.perf_counter()
        resume_state = self.capture_resume_state() if self.capture_resume_state is not None else None
        path = save_checkpoint(self.model, self.checkpoint_dir, keep=self.keep, resume_state=resume_state)
        self.seconds += time.perf_counter() - start
        self._last_saved = self.model.num_timesteps
        if self.verbose:
            print(f"Saved checkpoint {path}")
        return path

    def _on_rollout_start(self) -> None:
        # Between a finished update and the next collection: the model, the replay buffer and the step
        # count agree here (SB3 calls on_step before it stores the step's transition), and an on-policy
        # run loses no collected data on resume.
        if self.interrupt is not None and self.interrupt.requested and self.interrupted is None:
            self.interrupted = self.save()
        elif self.save_freq > 0 and self.num_timesteps - self._last_saved >= self.save_freq:
            self.save()

    def _on_step(self) -> bool:
        return self.interrupted is None
