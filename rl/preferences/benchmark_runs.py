"""The run bookkeeping shared by the preference benchmarks (SPO's, PARL's): one run's spec, its finished record,
its evaluation curve and its comparisons against env steps.

Every preference method records its settings and ``comparisons_used`` / ``comparison_curve`` under its own key
of ``run.json`` (``spo``, ``rm``, ``parl``): :func:`method_record` finds it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from rl.benchmark import RunSpec, folder_name

METHOD_KEYS = ("spo", "rm", "parl")
"""The ``run.json`` keys the preference methods record themselves under."""


def run_spec(name: str, label: str, env: str, seed: int, n_timesteps: int, hyperparams: dict[str, Any], *,
             results_root: str, logs_root: str, command: str, eval_freq: int) -> RunSpec:
    """One benchmark run: work folder under ``<logs_root>/<name>/``, finished record under ``<results_root>/<name>/
    runs/``."""
    return RunSpec(
        algo=label, env=env, seed=seed, n_timesteps=n_timesteps,
        work_dir=os.path.join(logs_root, name, label, f"{folder_name(env)}_seed{seed}"),
        result_dir=os.path.join(results_root, name, "runs", label, f"{folder_name(env)}_seed{seed}"),
        hyperparams=hyperparams, eval_freq=eval_freq, command=command,
    )


def finished_record(spec: RunSpec | None) -> dict[str, Any] | None:
    """The finished run's ``run.json``, or None while it is not finished."""
    if spec is None:
        return None
    path = Path(spec.result_dir) / "run.json"
    return json.loads(path.read_text()) if spec.done and path.is_file() else None


def method_record(record: dict[str, Any]) -> dict[str, Any]:
    """The preference method's own part of a ``run.json`` (settings, comparisons used, comparison curve)."""
    for key in METHOD_KEYS:
        if key in record:
            return record[key]
    raise KeyError(f"run.json of {record.get('label')} has none of {', '.join(METHOD_KEYS)}")


def final_return_and_comparisons(spec: RunSpec | None) -> tuple[float, int] | None:
    """(final mean true return, comparisons used) of a finished run."""
    record = finished_record(spec)
    if record is None:
        return None
    return float(record["final_evaluation"]["mean_reward"]), int(method_record(record)["comparisons_used"])


def evaluation_curve(spec: RunSpec) -> tuple[np.ndarray, np.ndarray] | None:
    """(env steps, mean evaluation return) of the run's periodic evaluations."""
    path = Path(spec.result_dir) / "evaluations.npz"
    if not path.is_file():
        return None
    with np.load(path) as data:
        return data["timesteps"], data["results"].mean(axis=1)


def comparisons_at(spec: RunSpec, steps: np.ndarray) -> np.ndarray | None:
    """Comparisons used by each of ``steps`` env steps (interpolated along the run's comparison curve)."""
    record = finished_record(spec)
    if record is None:
        return None
    curve = np.asarray(method_record(record)["comparison_curve"], dtype=np.float64)
    return np.interp(steps, curve[:, 0], curve[:, 1])


ANALYSIS_FILE = "analysis.md"
"""A benchmark folder's hand-written reading of its numbers, appended to every rewrite of its README."""


def write_readme(out: Path, lines: list[str]) -> Path:
    """``out/README.md`` from the report's ``lines``, with ``analysis.md`` appended when the folder has one."""
    analysis = out / ANALYSIS_FILE
    if analysis.is_file():
        lines = [*lines, "", analysis.read_text().rstrip()]
    path = out / "README.md"
    path.write_text("\n".join(lines) + "\n")
    return path
