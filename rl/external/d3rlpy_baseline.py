"""Run d3rlpy's IQL / CQL / AWAC / TD3+BC on a D4RL-layout HDF5 file, from the project's venv.

:func:`run_d3rlpy` makes sure d3rlpy's own venv exists (:func:`rl.external.d3rlpy_venv.ensure_venv`), runs
``d3rlpy_run.py`` there as a subprocess, and returns the run's ``run.json`` as a dict. The run folder gets
``evaluations.npz`` (SB3's EvalCallback format: ``timesteps`` are gradient steps), ``run.json`` (our runs'
keys: ``label``, ``steps_per_second``, ``final_evaluation``, ``final_normalized_score``, ``versions``, ...)
and ``d3rlpy_output.log`` (the subprocess's stdout and stderr).

:func:`export_dataset` gives the D4RL-layout file a run reads, exported again when the dataset was remade since,
with the fingerprint of the file's transitions and of the dataset it came from.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock

from rl.external.child_process import child_env, run_logged
from rl.external.d3rlpy_venv import ensure_venv
from rl.external.errors import ExternalBaselineError

if TYPE_CHECKING:
    from rl.datasets import OfflineDataset

D3RLPY_ALGOS: tuple[str, ...] = ("iql", "cql", "awac", "td3_bc")
"""The algorithms ``d3rlpy_run.py`` runs (d3rlpy's IQL, CQL, AWAC, TD3PlusBC)."""

D3RLPY_LABELS: dict[str, str] = {f"d3rlpy_{algo}": algo for algo in D3RLPY_ALGOS}
"""Benchmark label -> algorithm: ``d3rlpy_iql``, ``d3rlpy_cql``, ``d3rlpy_awac``, ``d3rlpy_td3_bc``."""

OBSERVATION_SCALERS: tuple[str, ...] = ("script", "standard", "none")
"""``d3rlpy_run.py --observation-scaler``: the reproduction script's, the dataset's mean/std (as ours), none.
The same tuple as the script's own (a standalone file that imports nothing of the project; a test compares them)."""

RUN_SCRIPT = Path(__file__).with_name("d3rlpy_run.py")
"""The standalone script run by the d3rlpy venv's python."""

LOG_NAME = "d3rlpy_output.log"
"""The subprocess's output, in the run folder."""

_TAIL_LINES = 40


EXPORT_RECORD_SUFFIX = ".source.json"
"""Beside an exported ``<name>.hdf5``: ``<name>.hdf5.source.json`` records the fingerprint of the dataset it was
exported from and of its own transitions, so that a stale export (the dataset remade since) is rewritten."""


@dataclass(frozen=True)
class ExportedDataset:
    """The D4RL-layout file a d3rlpy run reads, and which data it holds."""

    path: Path
    fingerprint: str
    """``OfflineDataset.fingerprint()`` of the file's own transitions (``load_dataset(path)``): what d3rlpy reads."""
    source_fingerprint: str
    """``OfflineDataset.fingerprint()`` of the dataset it was exported from: what our algorithms train on. It
    differs from ``fingerprint`` for an exported Minari dataset: loading the file applies D4RL's
    ``qlearning_dataset`` rule that the file's last row is never a transition, so the file holds one fewer when
    the data's last step is not a time-limit step (why a d3rlpy run's ``dataset_size`` can be one less than ours)."""
    rewritten: bool = False
    """This call wrote the file: there was none, or it was stale."""


def export_dataset(
    spec: str | os.PathLike, folder: str | os.PathLike, *, source: OfflineDataset | None = None
) -> ExportedDataset:
    """The D4RL-layout file of dataset ``spec`` for d3rlpy, rewritten when the dataset changed since its export.

    An HDF5 file is used as it is (it is what both sides read). Any other dataset is exported to
    ``<folder>/<name>.hdf5`` (:func:`rl.datasets.export_d4rl_file`) with a record beside it
    (:data:`EXPORT_RECORD_SUFFIX`) of the source's fingerprint and the file's; an export whose record is missing
    (an export from before records were kept), names another source fingerprint (the dataset was remade) or
    another file fingerprint (the file was changed) is written again.

    Args:
        spec: what the benchmark was given (a D4RL-style name, a Minari id or an HDF5 path).
        folder: where exports are kept (one per dataset name, shared by the runs of a benchmark).
        source: ``load_dataset(spec)`` if the caller has it (loaded here otherwise).
    """
    from rl.checkpoint import write_json_atomic
    from rl.datasets import export_d4rl_file, load_dataset

    source = source if source is not None else load_dataset(spec)
    source_fingerprint = source.fingerprint()
    folder = Path(folder)
    with FileLock(folder / ".export.lock"):  # benchmark workers export into one folder at once
        path = export_d4rl_file(spec, folder)
        if Path(os.fspath(spec)) == path:  # a file given as it is: both sides read this very file
            return ExportedDataset(path, source_fingerprint, source_fingerprint)
        record_path = path.with_name(path.name + EXPORT_RECORD_SUFFIX)
        try:
            record = json.loads(record_path.read_text())
        except (OSError, ValueError):
            record = {}
        fingerprint = None
        if record.get("source_fingerprint") == source_fingerprint:
            fingerprint = load_dataset(path).fingerprint()
        if fingerprint is not None and fingerprint == record.get("fingerprint"):
            return ExportedDataset(path, fingerprint, source_fingerprint)
        record_path.unlink(missing_ok=True)
        path.unlink(missing_ok=True)
        path = export_d4rl_file(spec, folder)
        fingerprint = load_dataset(path).fingerprint()
        write_json_atomic(record_path, {
            "source": os.fspath(spec), "source_fingerprint": source_fingerprint, "fingerprint": fingerprint,
            "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        })
        return ExportedDataset(path, fingerprint, source_fingerprint, rewritten=True)


def algo_name(algo: str) -> str:
    """``"iql"`` for ``"iql"`` or ``"d3rlpy_iql"``; ValueError listing the valid names otherwise."""
    name = D3RLPY_LABELS.get(algo, algo)
    if name not in D3RLPY_ALGOS:
        valid = ", ".join([*D3RLPY_ALGOS, *D3RLPY_LABELS])
        raise ValueError(f"Unknown d3rlpy algorithm {algo!r}; expected one of: {valid}.")
    return name


def d3rlpy_command(
    python: str | os.PathLike,
    algo: str,
    dataset_path: str | os.PathLike,
    env_id: str,
    *,
    n_steps: int,
    seed: int,
    out_dir: str | os.PathLike,
    eval_freq: int,
    eval_episodes: int,
    final_eval_episodes: int,
    ref_min: float | None = None,
    ref_max: float | None = None,
    observation_scaler: str = "script",
) -> list[str]:
    """The command line that runs ``d3rlpy_run.py`` with ``python`` (paths made absolute)."""
    command = [
        str(python), str(RUN_SCRIPT), "--algo", algo_name(algo),
        "--dataset", str(Path(dataset_path).resolve()), "--env", env_id,
        "--n-steps", str(int(n_steps)), "--seed", str(int(seed)), "--eval-freq", str(int(eval_freq)),
        "--eval-episodes", str(int(eval_episodes)), "--final-eval-episodes", str(int(final_eval_episodes)),
        "--out", str(Path(out_dir).resolve()),
    ]
    if (ref_min is None) != (ref_max is None):
        raise ValueError("Give both ref_min and ref_max, or neither.")
    if ref_min is not None:
        command += ["--ref-min", repr(float(ref_min)), "--ref-max", repr(float(ref_max))]
    if observation_scaler not in OBSERVATION_SCALERS:
        raise ValueError(
            f"observation_scaler must be one of {', '.join(OBSERVATION_SCALERS)} (script: the reproduction "
            f"script's choice), got {observation_scaler!r}."
        )
    if observation_scaler != "script":
        command += ["--observation-scaler", observation_scaler]
    return command


def run_d3rlpy(
    algo: str,
    dataset_path: str | os.PathLike,
    env_id: str,
    *,
    n_steps: int,
    seed: int,
    out_dir: str | os.PathLike,
    eval_freq: int,
    eval_episodes: int,
    final_eval_episodes: int,
    ref_min: float | None = None,
    ref_max: float | None = None,
    observation_scaler: str = "script",
    python: str | os.PathLike | None = None,
    echo: bool = True,
    timeout: float | None = None,
) -> dict:
    """Train and evaluate d3rlpy's ``algo`` on a D4RL-layout HDF5 file in d3rlpy's own venv.

    Args:
        algo: ``iql``, ``cql``, ``awac``, ``td3_bc`` or the label ``d3rlpy_<algo>``.
        dataset_path: the D4RL-layout ``.hdf5`` file (the same one our offline algorithms load).
        env_id: the gymnasium id to evaluate in (``Hopper-v4``).
        n_steps: gradient steps; ``eval_freq`` must divide it (d3rlpy trains in epochs of ``eval_freq`` steps).
        seed: seeds d3rlpy (python, numpy, torch) and the evaluation env.
        out_dir: the run folder (created); gets ``evaluations.npz``, ``run.json``, ``d3rlpy_output.log``.
        eval_freq, eval_episodes: evaluate every ``eval_freq`` gradient steps with ``eval_episodes`` episodes.
        final_eval_episodes: episodes of the final evaluation.
        ref_min, ref_max: D4RL reference returns for ``final_normalized_score`` (null without them).
        observation_scaler: ``script`` (the reproduction script's), ``standard`` (the dataset's mean and std, as
            the project's offline algorithms) or ``none``.
        python: the d3rlpy venv's python; default :func:`ensure_venv` (creates the venv if needed).
        echo: also print the subprocess's output here as it comes.
        timeout: seconds before the run is killed (ExternalBaselineError); None waits.

    Returns:
        The parsed ``run.json``.

    Raises:
        ExternalBaselineError: the venv cannot be made, or the run fails (the message has the command and the
            end of its stderr), times out, or leaves no ``run.json``.
        ValueError: an unknown ``algo``, or only one of ``ref_min``/``ref_max``.
    """
    out = Path(out_dir)
    python = Path(python) if python is not None else ensure_venv()
    command = d3rlpy_command(
        python, algo, dataset_path, env_id, n_steps=n_steps, seed=seed, out_dir=out, eval_freq=eval_freq,
        eval_episodes=eval_episodes, final_eval_episodes=final_eval_episodes, ref_min=ref_min, ref_max=ref_max,
        observation_scaler=observation_scaler,
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "run.json").unlink(missing_ok=True)  # so that a stale one from an earlier run is never returned
    try:
        code, stderr_tail = run_logged(command, out / LOG_NAME, env=child_env(), cwd=out, timeout=timeout, echo=echo,
                                       tail_lines=_TAIL_LINES)
    except OSError as error:
        raise ExternalBaselineError(
            f"Could not start the d3rlpy run {shlex.join(command)}: {error}. Is {str(python)!r} the python "
            "of a complete d3rlpy venv? `python -m rl.external.d3rlpy_venv` makes one."
        ) from error
    tail = "\n".join(f"    {line}" for line in stderr_tail) or "    (nothing on stderr)"
    if code is None:
        raise ExternalBaselineError(
            f"The d3rlpy run timed out after {timeout} s and was killed:\n    {shlex.join(command)}\n"
            f"Last stderr lines:\n{tail}\nFull output: {out / LOG_NAME}"
        )
    if code != 0:
        raise ExternalBaselineError(
            f"The d3rlpy run failed with exit status {code}:\n    {shlex.join(command)}\n"
            f"Last stderr lines:\n{tail}\nFull output: {out / LOG_NAME}"
        )
    try:
        return json.loads((out / "run.json").read_text())
    except (OSError, ValueError) as error:
        raise ExternalBaselineError(
            f"The d3rlpy run exited normally but left no readable {out / 'run.json'} ({error}):\n"
            f"    {shlex.join(command)}\nFull output: {out / LOG_NAME}"
        ) from error
