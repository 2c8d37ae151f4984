"""Benchmark harness: an algorithm and its baseline, side by side, over envs and seeds, in one command.

    python -m rl.benchmark --name mdpo_on --algos mdpo ppo \\
        --envs HalfCheetah-v4 Hopper-v4 HopperBulletEnv-v0 --seeds 0 1 2 -n 300000

Every (algo, env, seed) is one :func:`rl.runner.train` call in its own process with one torch thread.
The algorithm and the baseline of the same env and seed are scheduled next to each other, so with two
workers they run at the same time, under the same load, and their throughputs compare fairly.

Resumable at two levels: a finished run's record is kept under ``results/<name>/runs/`` (committed, so
it is not redone by a later session), and an unfinished run resumes from its last atomic checkpoint
under ``logs/benchmarks/<name>/``. Runs go through a :class:`Backend`: the local process pool, or Ray
(``--backend ray``, :mod:`rl.ray_backend`: one Ray task per run on a local Ray instance or a cluster joined
with ``--address``; same runs, results and resume rules; see ``docs/scale.md``)::

    python -m rl.benchmark --name mdpo_on --algos mdpo ppo --envs Hopper-v4 --seeds 0 1 2 -n 300000 \\
        --backend ray --address auto

Offline algorithms run on datasets instead of envs (``--datasets``; ``-n`` is then gradient steps,
``--online-steps`` the fine-tuning env steps after them), and the same labels with a ``d3rlpy_`` prefix
run d3rlpy's implementation on the very same data in its own virtual environment
(:mod:`rl.external.d3rlpy_baseline`)::

    python -m rl.benchmark --name offline/iql --algos iql d3rlpy_iql \
        --datasets halfcheetah-medium-v2 hopper-medium-v2 --seeds 0 1 2 -n 100000

Output under ``results/<name>/``: ``README.md`` (the table: mean +- std and per-seed returns of both
algorithms, the ratio, budgets, wall-clock and env steps per second), ``learning_curves.png``,
``command.txt`` (the latest invocation), ``versions.json`` (every invocation: time, command, commit, software
versions, runs started) and ``runs/<algo>/<env>_seed<k>/`` (run.json: its command is the invocation that
started the run, its versions include the commit the run finished at; evaluations.npz, monitor CSVs).
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import json
import multiprocessing
import os
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from filelock import FileLock
from tqdm import tqdm

from rl.hyperparams import parse_overrides
from rl.registry import load_method, parse_run_label
from rl.run_record import command_line, git_commit, package_versions

RESULTS_ROOT = "results"
LOGS_ROOT = os.path.join("logs", "benchmarks")
_KEPT_FILES = (
    "run.json", "evaluations.npz", "config.yml", "learning_curve.png",
    "dynamics_ratio.png", "dynamics_ratio.npz",  # H2O's learned ratio (algos.h2o)
)


@dataclass(frozen=True)
class RunSpec:
    """One training run of a benchmark."""

    algo: str
    env: str
    seed: int
    n_timesteps: int
    work_dir: str
    """Where the run trains (checkpoints; not committed)."""
    result_dir: str
    """Where the finished run's small artefacts are kept (committed)."""
    hyperparams: dict[str, Any] = field(default_factory=dict)
    eval_freq: int = 10_000
    eval_episodes: int = 5
    final_eval_episodes: int = 10
    stochastic_eval: bool = False
    """Evaluate the sampled policy (see :attr:`rl.runner.RunConfig.stochastic_eval`)."""
    save_freq: int = 10_000
    dataset: str | None = None
    """Offline runs: the dataset (then ``env`` is its name too, and ``n_timesteps`` counts gradient steps)."""
    online_steps: int = 0
    """Offline runs: env steps of online fine-tuning after the ``n_timesteps`` gradient steps."""
    command: str | None = None
    """The benchmark invocation that starts the run (``python -m rl.benchmark ...``), recorded as the run's
    command; None records the worker process's own (the multiprocessing spawn line)."""

    @property
    def done(self) -> bool:
        """Finished with at least the requested budget."""
        record = Path(self.result_dir) / "run.json"
        if not record.is_file():
            return False
        return json.loads(record.read_text()).get("num_timesteps", 0) >= self.n_timesteps + self.online_steps


EXTERNAL_PREFIX = "d3rlpy_"
"""Labels ``d3rlpy_<algo>`` run d3rlpy's implementation of ``<algo>`` (offline runs only); a variant
``d3rlpy_<algo>@<name>`` takes the option ``observation_scaler`` (``script``, ``standard``, ``none``), e.g.
``-params d3rlpy_iql@obsnorm.observation_scaler:standard``."""
EXTERNAL_OPTIONS = ("observation_scaler",)


def check_label(label: str) -> None:
    """Refuse a label that names no algorithm, method or external baseline (with close names)."""
    if label.startswith(EXTERNAL_PREFIX):
        from rl.external.d3rlpy_baseline import D3RLPY_LABELS

        if label.split("@", 1)[0] not in D3RLPY_LABELS:
            raise SystemExit(f"error: {label!r}: the d3rlpy baselines are {', '.join(D3RLPY_LABELS)}.")
        return
    parse_run_label(label)


def _execute_external(spec: RunSpec) -> dict[str, Any]:
    """Run d3rlpy's implementation on the spec's dataset, exported to a D4RL-layout file (again when stale).

    The record's ``dataset_fingerprint`` is that of the file d3rlpy read, taken before and checked after the
    run; ``source_dataset_fingerprint`` that of the dataset it was exported from, which our side's runs record.
    """
    from rl.checkpoint import write_json_atomic
    from rl.datasets import load_dataset
    from rl.external.d3rlpy_baseline import export_dataset, run_d3rlpy
    from rl.external.errors import ExternalBaselineError

    assert spec.dataset is not None, "d3rlpy baselines run on datasets (--datasets)"
    unknown = sorted(set(spec.hyperparams) - set(EXTERNAL_OPTIONS))
    if unknown:
        raise ValueError(
            f"{spec.algo}: d3rlpy baselines run the reproduction scripts' settings and take only "
            f"{', '.join(EXTERNAL_OPTIONS)} as an option, got {', '.join(unknown)}."
        )
    data = load_dataset(spec.dataset)
    exports = Path(spec.work_dir).parents[1] / "_datasets"  # <logs>/<name>/_datasets, shared by the runs
    exported = export_dataset(spec.dataset, exports, source=data)
    os.makedirs(spec.work_dir, exist_ok=True)
    record = run_d3rlpy(
        spec.algo.split("@", 1)[0], exported.path, data.env_id, n_steps=spec.n_timesteps, seed=spec.seed,
        out_dir=spec.work_dir, eval_freq=spec.eval_freq, eval_episodes=spec.eval_episodes,
        final_eval_episodes=spec.final_eval_episodes,
        ref_min=data.ref_min, ref_max=data.ref_max, echo=False,
        observation_scaler=str(spec.hyperparams.get("observation_scaler", "script")),
    )
    if load_dataset(exported.path).fingerprint() != exported.fingerprint:  # rewritten while d3rlpy read it
        raise ExternalBaselineError(
            f"{exported.path} changed during the d3rlpy run (re-exported by another run of this benchmark, its "
            "dataset remade meanwhile?), so which data it trained on is unknown: run it again."
        )
    record["dataset_fingerprint"] = exported.fingerprint
    record["source_dataset_fingerprint"] = exported.source_fingerprint
    record["benchmark_command"] = spec.command  # the run's own "command" is the d3rlpy script's command line
    commit = git_commit()  # the checkout whose d3rlpy_run.py ran (the script, in d3rlpy's venv, cannot tell)
    if commit:
        record.setdefault("versions", {})["frontier-rl commit"] = commit
    write_json_atomic(Path(spec.work_dir) / "run.json", record)
    return record


def execute(spec: RunSpec) -> dict[str, Any]:
    """Train one run (resuming from its checkpoint if any) and keep its small artefacts."""
    import torch

    from rl.runner import RunConfig, train

    torch.set_num_threads(1)
    start = time.time()
    try:
        if spec.algo.startswith(EXTERNAL_PREFIX):
            record, run_dir = _execute_external(spec), spec.work_dir
        else:
            method, algo = parse_run_label(spec.algo)
            offline = spec.dataset is not None
            config = RunConfig(
                algo=algo, env=None if offline else spec.env, seed=spec.seed,
                n_timesteps=spec.online_steps if offline else spec.n_timesteps, label=spec.algo,
                run_dir=spec.work_dir, eval_freq=spec.eval_freq, eval_episodes=spec.eval_episodes,
                final_eval_episodes=spec.final_eval_episodes, stochastic_eval=spec.stochastic_eval,
                save_freq=spec.save_freq, hyperparams=dict(spec.hyperparams), progress=False, verbose=0, num_threads=1,
                dataset=spec.dataset, offline_steps=spec.n_timesteps if offline else None, command=spec.command,
            )
            if method is not None:
                config = load_method(method)(config, progress=False)
            result = train(config)
            record, run_dir = result.record, result.run_dir
    except Exception:  # one failed run must not stop the others; its error goes into the report
        return {"spec": asdict(spec), "error": traceback.format_exc(), "wall_seconds": time.time() - start}
    os.makedirs(spec.result_dir, exist_ok=True)
    for name in os.listdir(run_dir):
        if name in _KEPT_FILES or name.endswith(".monitor.csv"):
            shutil.copy2(os.path.join(run_dir, name), os.path.join(spec.result_dir, name))
    return {"spec": asdict(spec), "record": record, "wall_seconds": time.time() - start}


class Backend(Protocol):
    """Where runs execute. ``run_all`` yields each run's outcome as it finishes."""

    def run_all(
        self, specs: Sequence[RunSpec], fn: Callable[[RunSpec], dict[str, Any]]
    ) -> Iterable[dict[str, Any]]: ...


class ProcessBackend:
    """A local pool of worker processes (spawned: a clean interpreter per worker, one torch thread)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def run_all(self, specs: Sequence[RunSpec], fn: Callable[[RunSpec], dict[str, Any]]) -> Iterable[dict[str, Any]]:
        if self.workers <= 1:
            for spec in specs:
                yield fn(spec)
            return
        context = multiprocessing.get_context("spawn")
        with futures.ProcessPoolExecutor(max_workers=self.workers, mp_context=context, max_tasks_per_child=1) as pool:
            pending = [pool.submit(fn, spec) for spec in specs]
            for future in futures.as_completed(pending):
                yield future.result()


def folder_name(env_or_dataset: str) -> str:
    """A run-folder name for an env id, a dataset name, a Minari id (``a/b/c`` -> ``a-b-c``) or a file (its stem)."""
    if env_or_dataset.lower().endswith((".hdf5", ".h5")):
        return Path(env_or_dataset).stem
    return env_or_dataset.replace("/", "-")


def plan(
    name: str,
    algos: Sequence[str],
    envs: Sequence[str],
    seeds: Sequence[int],
    n_timesteps: int,
    *,
    hyperparams: dict[str, dict[str, Any]] | None = None,
    results_root: str = RESULTS_ROOT,
    logs_root: str = LOGS_ROOT,
    datasets: bool = False,
    online_steps: int = 0,
    **run_options: Any,
) -> list[RunSpec]:
    """All runs of a benchmark, ordered seed, env, algo so that paired runs are neighbours.

    With ``datasets=True`` the ``envs`` are dataset names and the runs are offline runs.
    """
    hyperparams = hyperparams or {}
    return [
        RunSpec(
            algo=algo, env=env, seed=seed, n_timesteps=n_timesteps,
            work_dir=os.path.join(logs_root, name, algo, f"{folder_name(env)}_seed{seed}"),
            result_dir=os.path.join(results_root, name, "runs", algo, f"{folder_name(env)}_seed{seed}"),
            hyperparams=hyperparams.get(algo, {}), dataset=env if datasets else None,
            online_steps=online_steps if datasets else 0, **run_options,
        )
        for seed in seeds
        for env in envs
        for algo in algos
    ]


def load_finished(spec: RunSpec) -> dict[str, Any] | None:
    """The record of a finished run, with its evaluation curve, or None."""
    path = Path(spec.result_dir) / "run.json"
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    curve = Path(spec.result_dir) / "evaluations.npz"
    if curve.is_file():
        data = np.load(curve)
        record["_curve"] = (data["timesteps"], data["results"].mean(axis=1))
    else:
        record["_curve"] = (np.array([]), np.array([]))
    return record


@cache
def _dataset_reference_returns(dataset: str) -> tuple[float | None, float | None]:
    from rl.datasets import load_dataset

    data = load_dataset(dataset)
    return data.ref_min, data.ref_max


def dataset_normalized_score(dataset: str, value: float) -> float | None:
    """D4RL's normalised score of a return with ``dataset``'s reference returns (its own, else D4RL's).

    Loads the dataset once per process for its references; None when it has none.
    """
    from rl.datasets import normalized_score

    ref_min, ref_max = _dataset_reference_returns(dataset)
    if ref_min is None or ref_max is None:
        return None
    return float(normalized_score(dataset, value, ref_min, ref_max))


def offline_phase_return(record: dict[str, Any], offline_steps: int) -> float | None:
    """The periodic evaluation's mean return at the last offline gradient step, None if none was logged there."""
    timesteps, values = record["_curve"]
    at_boundary = np.flatnonzero(np.asarray(timesteps) == offline_steps)
    return float(values[at_boundary[0]]) if at_boundary.size else None


def _offline_phase_lines(
    records: dict[tuple[str, str, int], dict[str, Any] | None], algos: Sequence[str], envs: Sequence[str],
    seeds: Sequence[int], offline_steps: int, eval_episodes: int,
) -> list[str]:
    """The table of offline-to-online runs' scores where the offline phase ended, before fine-tuning."""
    lines = ["", f"At the end of the offline phase (the periodic evaluation at gradient step {offline_steps:,}, "
             f"{eval_episodes} episodes; mean +- std over seeds of the normalised score, else the return):", "",
             "| dataset | " + " | ".join(algos) + " |", "|---|" + "---|" * len(algos)]
    for env in envs:
        cells = []
        for algo in algos:
            values = []
            for seed in seeds:
                record = records.get((algo, env, seed))
                value = offline_phase_return(record, offline_steps) if record else None
                if value is not None:
                    score = dataset_normalized_score(env, value)
                    values.append(value if score is None else score)
            cells.append(f"{format_mean_std(values)} (n={len(values)})")
        lines.append(f"| {env} | " + " | ".join(cells) + " |")
    return lines


STD_NOTE = "+- is the population standard deviation over seeds (numpy's std, ddof=0)."
"""The sentence under every table of :func:`format_mean_std` values."""


def format_mean_std(values: Sequence[float], digits: int = 1) -> str:
    """``"mean +- std"`` of ``values`` with ``digits`` decimals (population std, as in every report), "n/a" if empty."""
    return f"{np.mean(values):.{digits}f} +- {np.std(values):.{digits}f}" if len(values) else "n/a"


def write_report(
    name: str, specs: Sequence[RunSpec], algos: Sequence[str], envs: Sequence[str], *,
    results_root: str = RESULTS_ROOT, notes: str = "", failures: Sequence[dict[str, Any]] = (),
) -> str:
    """Write the table, the learning-curve plot, the command and the versions; return the table path."""
    from rl.plotting import plot_benchmark

    out = Path(results_root) / name
    out.mkdir(parents=True, exist_ok=True)
    records = {(s.algo, s.env, s.seed): load_finished(s) for s in specs}
    seeds = sorted({s.seed for s in specs})
    budget = specs[0].n_timesteps if specs else 0
    algo, baseline = algos[0], (algos[1] if len(algos) > 1 else None)

    offline = bool(specs) and specs[0].dataset is not None
    stochastic = bool(specs) and specs[0].stochastic_eval
    online = specs[0].online_steps if offline else 0
    lines = [f"# Benchmark `{name}`: {' vs '.join(algos)}", ""]
    budget_text = (
        f"{budget:,} gradient steps on the dataset" + (f" then {online:,} env steps online" if online else "")
        if offline else f"{budget:,} env steps"
    )
    lines += [
        f"Budget: {budget_text} per run; seeds {', '.join(map(str, seeds))}; final evaluation: "
        f"{'sampled (stochastic) policy, mean and best episode return' if stochastic else 'deterministic policy'}, "
        f"{specs[0].final_eval_episodes if specs else 0} episodes; periodic evaluation "
        f"every {specs[0].eval_freq if specs else 0:,} steps. Throughput is "
        + ("gradient updates" if offline and not online else "steps")
        + " per second of training (evaluation and checkpoint time excluded), paired runs sharing the machine."
        + (" Returns are followed by D4RL normalised scores." if offline else ""),
        "",
    ]
    header = "| " + ("dataset" if offline else "env") + " | " + " | ".join(f"{a} return" for a in algos)
    header += f" | ratio {algo}/{baseline} | " if baseline else " | "
    header += " | ".join(f"{a} {'updates' if offline and not online else 'steps'}/s" for a in algos)
    header += " | speed ratio | wall-clock (min) |" if baseline else " | wall-clock (min) |"
    lines.append(header)
    lines.append("|" + "---|" * (header.count("|") - 1))
    seed_header = f"| {'dataset' if offline else 'env'} | algo | " + " | ".join(f"seed {s}" for s in seeds) + " |"
    per_seed_lines = ["", "Per-seed final returns:", "", seed_header, "|---|---|" + "---|" * len(seeds)]
    curves: dict[str, dict[str, list[tuple[np.ndarray, np.ndarray]]]] = {}
    for env in envs:
        returns: dict[str, list[float]] = {}
        scores: dict[str, list[float]] = {a: [] for a in algos}
        bests: dict[str, list[float]] = {a: [] for a in algos}
        speeds: dict[str, list[float]] = {}
        wall = 0.0
        curves[env] = {}
        for a in algos:
            returns[a], speeds[a], curves[env][a] = [], [], []
            row = []
            for seed in seeds:
                record = records.get((a, env, seed))
                if record is None or record.get("final_evaluation") is None:
                    row.append("-")
                    continue
                value = record["final_evaluation"]["mean_reward"]
                returns[a].append(value)
                score = record.get("final_normalized_score")
                if score is not None:
                    scores[a].append(score)
                best = max(record["final_evaluation"].get("episode_rewards") or [value])
                bests[a].append(best)
                row.append(f"{value:.1f}" + (f" ({score:.1f})" if score is not None else "")
                           + (f", best {best:.1f}" if stochastic else ""))
                if record.get("steps_per_second"):
                    speeds[a].append(record["steps_per_second"])
                wall += record.get("train_seconds", 0.0)
                curves[env][a].append(record["_curve"])
            per_seed_lines.append(f"| {env} | {a} | " + " | ".join(row) + " |")
        cells = [
            format_mean_std(returns[a]) + (f", score {format_mean_std(scores[a])}" if scores[a] else "")
            + (f", best {format_mean_std(bests[a])}" if stochastic and bests[a] else "") + f" (n={len(returns[a])})"
            for a in algos
        ]
        if baseline:
            ratio = _ratio(returns[algo], returns[baseline])
            cells.append(ratio)
        cells += [f"{np.mean(speeds[a]):.0f}" if speeds[a] else "n/a" for a in algos]
        if baseline:
            cells.append(_ratio(speeds[algo], speeds[baseline], fmt="{:.2f}x"))
        cells.append(f"{wall / 60:.0f}")
        lines.append(f"| {env} | " + " | ".join(cells) + " |")
    lines += ["", STD_NOTE, *per_seed_lines]
    if online:
        lines += _offline_phase_lines(records, algos, envs, seeds, budget, specs[0].eval_episodes)
    if failures:
        lines += ["", "Failed runs:", ""]
        lines += [f"- {f['spec']['algo']} {f['spec']['env']} seed {f['spec']['seed']}: "
                  f"{f['error'].strip().splitlines()[-1]}" for f in failures]
    if notes:
        lines += ["", notes.strip()]
    lines += ["", "Learning curves (mean +- std over seeds of the periodic evaluation): `learning_curves.png`.",
              "", "Command: see `command.txt` (the latest invocation); every invocation's command, commit and "
              "software versions: `versions.json`; each run's own: its `run.json`."]
    table_path = out / "README.md"
    table_path.write_text("\n".join(lines) + "\n")
    x_label = ("gradient steps, then env steps" if online else "gradient steps") if offline else "env steps"
    plot_benchmark(curves, str(out / "learning_curves.png"), f"{name}: {' vs '.join(algos)} ({budget:,} steps)",
                   x_label=x_label, online_from=budget if online else None)
    return str(table_path)


def _ratio(numerator: Sequence[float], denominator: Sequence[float], fmt: str = "{:.2f}") -> str:
    """mean(numerator) / mean(denominator); "n/a" without data, and for a baseline mean <= 0, where a ratio of
    returns reads backwards (-50 / -100 = 0.5 for a run twice as good)."""
    if not numerator or not denominator:
        return "n/a"
    base = float(np.mean(denominator))
    if base <= 1e-9:
        return "n/a (baseline <= 0)"
    return fmt.format(float(np.mean(numerator)) / base)


VERSIONS_FILE = "versions.json"
"""Per benchmark folder: every invocation's time, command, commit, software versions and the runs it started."""
VERSIONS_LOCK_FILE = ".versions.lock"
"""Held while an invocation appends itself to ``versions.json``."""


def _run_name(spec: RunSpec) -> str:
    """``<algo>/<env>_seed<k>``: the run's folder under ``runs/``."""
    return f"{spec.algo}/{Path(spec.result_dir).name}"


def read_invocations(out: str | os.PathLike) -> list[dict[str, Any]]:
    """The invocations recorded in ``<out>/versions.json``, oldest first ([] without the file).

    A file from before invocations were kept (one flat dict of versions, rewritten by every invocation) becomes
    one entry with what it knew: its versions and commit, the command of ``command.txt`` and no time or runs.
    """
    path = Path(out) / VERSIONS_FILE
    if not path.is_file():
        return []
    content = json.loads(path.read_text())
    if isinstance(content, dict) and isinstance(content.get("invocations"), list):
        return list(content["invocations"])
    command_file = Path(out) / "command.txt"
    return [{
        "invoked_at": None,
        "command": command_file.read_text().strip() if command_file.is_file() else None,
        "commit": content.get("frontier-rl commit"),
        "runs_started": None,
        "versions": content,
        "note": "recorded before invocations were kept: the last invocation then, not necessarily the one that "
                "made each run; each run's own command, commit and versions are in its run.json",
    }]


def record_invocation(out: str | os.PathLike, command: str, started: Sequence[RunSpec]) -> dict[str, Any]:
    """Append this invocation to ``<out>/versions.json`` (written atomically) and return its entry.

    A benchmark folder collects runs made by several invocations, possibly at different commits, so the file
    keeps them all instead of claiming the latest commit for every run; each run's own command, commit and
    versions are in its ``run.json``. Invocations started side by side (other seeds of one cell on the other core)
    take turns under ``<out>/.versions.lock``: read-then-write without it lost one of two started in one second.
    """
    versions = package_versions()
    entry = {
        "invoked_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "commit": versions.get("frontier-rl commit"),
        "runs_started": [_run_name(spec) for spec in started],
        "versions": versions,
    }
    with FileLock(Path(out) / VERSIONS_LOCK_FILE):
        write_invocations(out, [*read_invocations(out), entry])
    return entry


def write_invocations(out: str | os.PathLike, invocations: Sequence[dict[str, Any]]) -> None:
    """Write ``<out>/versions.json`` (atomically) with these invocations, oldest first."""
    from rl.checkpoint import write_json_atomic

    write_json_atomic(Path(out) / VERSIONS_FILE, {
        "about": "One entry per invocation of this benchmark, oldest first: when, the command, the checkout's "
                 "commit and software versions, and the runs it started (finished runs are not redone). Each "
                 "run's own command, commit and versions: runs/<algo>/<env>_seed<k>/run.json.",
        "invocations": list(invocations),
    })


def run_benchmark(
    name: str,
    algos: Sequence[str],
    envs: Sequence[str],
    seeds: Sequence[int],
    n_timesteps: int,
    *,
    backend: Backend | None = None,
    workers: int = 2,
    hyperparams: dict[str, dict[str, Any]] | None = None,
    results_root: str = RESULTS_ROOT,
    logs_root: str = LOGS_ROOT,
    notes: str = "",
    progress: bool = True,
    command: str | None = None,
    **run_options: Any,
) -> str:
    """Run every unfinished run of the benchmark, then write the report; returns the table's path.

    ``command`` is the invocation recorded as each run's command and in ``versions.json``; None takes this
    process's command line (``python -m rl.benchmark ...`` from the command line).
    """
    from rl.envs import ensure_registered

    for algo in algos:
        check_label(algo)
    if run_options.get("datasets"):
        from rl.datasets import load_dataset

        for dataset in envs:  # fail now, not in every worker, on a dataset that is not there
            load_dataset(dataset)
    else:
        for env in envs:
            ensure_registered(env)
    command = command or command_line()
    specs = plan(name, algos, envs, seeds, n_timesteps, hyperparams=hyperparams,
                 results_root=results_root, logs_root=logs_root, command=command, **run_options)
    out = Path(results_root) / name
    out.mkdir(parents=True, exist_ok=True)
    todo = [s for s in specs if not s.done]
    record_invocation(out, command, todo)
    (out / "command.txt").write_text(command + "\n")
    backend = backend or ProcessBackend(workers)
    failures: list[dict[str, Any]] = []
    with tqdm(total=len(specs), initial=len(specs) - len(todo), desc=f"benchmark {name}", unit="run",
              disable=not progress) as bar:
        for outcome in backend.run_all(todo, execute):
            if "error" in outcome:
                failures.append(outcome)
                tqdm.write(f"run failed: {outcome['spec']['algo']} {outcome['spec']['env']} "
                           f"seed {outcome['spec']['seed']}\n{outcome['error']}")
            bar.update(1)
            write_report(name, specs, algos, envs, results_root=results_root, notes=notes, failures=failures)
    return write_report(name, specs, algos, envs, results_root=results_root, notes=notes, failures=failures)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rl.benchmark", description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True, help="benchmark name: results go to results/<name>/")
    parser.add_argument("--algos", nargs="+", required=True, help="algorithm under test first, then the baseline")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--envs", nargs="+", help="env ids")
    where.add_argument("--datasets", nargs="+", help="offline runs: dataset names, Minari ids or .hdf5 files")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="seeds")
    parser.add_argument("-n", "--n-timesteps", type=int, required=True,
                        help="env steps per run (offline runs: gradient steps on the dataset)")
    parser.add_argument("--online-steps", type=int, default=0, help="offline runs: env steps of fine-tuning after")
    parser.add_argument("--workers", type=int, default=2,
                        help="parallel processes (one torch thread each); with --backend ray and no --address, "
                        "the CPUs of the local Ray instance")
    ray = parser.add_argument_group("Ray back end (pip install -e \".[ray]\"; see docs/scale.md)")
    ray.add_argument("--backend", choices=["process", "ray"], default="process",
                     help="where runs execute: a local process pool, or one Ray task per run")
    ray.add_argument("--address", default=None,
                     help="Ray cluster to join: auto (the cluster this machine is a node of) or HEAD:6379; "
                     "default: a local Ray instance with --workers CPUs")
    ray.add_argument("--cpus-per-run", type=float, default=1.0, help="CPUs each run's Ray task requests")
    ray.add_argument("--gpus-per-run", type=float, default=0.0,
                     help="GPUs each run's Ray task requests (fractions share a GPU; 0: CPU training)")
    ray.add_argument("--max-retries", type=int, default=3,
                     help="times Ray reruns a run whose worker died; it resumes from its newest checkpoint")
    ray.add_argument("--storage", default=None, metavar="DIR",
                     help="a folder every node mounts at the same path: run folders and checkpoints go there "
                     "(instead of logs/benchmarks/, sent to the driver); pass it again to resume")
    parser.add_argument("--eval-freq", type=int, default=10_000, help="periodic evaluation every n env steps")
    parser.add_argument("--eval-episodes", type=int, default=5, help="episodes per periodic evaluation")
    parser.add_argument("--final-eval-episodes", type=int, default=10, help="episodes of the final evaluation")
    parser.add_argument("--stochastic-eval", action="store_true",
                        help="evaluate the sampled policy, not its mode; the report adds the best episode's return")
    parser.add_argument("--save-freq", type=int, default=10_000, help="checkpoint every n env steps")
    parser.add_argument(
        "-params", "--hyperparams", nargs="+", default=None, metavar="ALGO.KEY:VALUE",
        help="per-algorithm overrides, e.g. sac.learning_starts:5000; method options the same way, "
        "e.g. s3rl_sac.teacher:teachers/sac/HalfCheetah-v4.zip s3rl_sac_nosc.classification:False",
    )
    parser.add_argument("--notes", default="", help="text appended to the report")
    parser.add_argument("--report-only", action="store_true", help="rewrite the report from finished runs")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    return parser


def per_algo_overrides(items: Sequence[str] | None, algos: Sequence[str]) -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {a: {} for a in algos}
    for key, value in parse_overrides(list(items or [])).items():
        algo, _, param = key.partition(".")
        if algo not in table or not param:
            raise SystemExit(f"error: override {key!r} must be <algo>.<key> with algo one of {', '.join(algos)}")
        table[algo][param] = value
    return table


_RAY_FLAGS = {"address": None, "cpus_per_run": 1.0, "gpus_per_run": 0.0, "max_retries": 3, "storage": None}
"""Flags of the Ray back end and their defaults: refused with ``--backend process``, where they would do nothing."""


def ray_backend(args: argparse.Namespace) -> Backend:
    """The :class:`rl.ray_backend.RayBackend` the flags describe, connected and checked before any run starts.

    Raises:
        rl.ray_backend.RayBackendError: Ray is not installed, the cluster cannot be reached, or a node lacks the
            driver's version of the project or the resources of one run.
    """
    from rl.ray_backend import RayBackend

    backend = RayBackend(address=args.address, num_cpus=None if args.address else max(1, args.workers),
                         cpus_per_run=args.cpus_per_run, gpus_per_run=args.gpus_per_run,
                         max_retries=args.max_retries)
    backend.start()  # fail now, before versions.json records an invocation
    return backend


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; a Ray set-up problem (not installed, cluster unreachable or without the project) prints one
    line and returns 2; Ctrl-C prints where the running run's checkpoint is and returns 130 (no traceback)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.backend != "ray":
        misplaced = [f"--{key.replace('_', '-')}" for key, default in _RAY_FLAGS.items()
                     if getattr(args, key) != default]
        if misplaced:
            parser.error(f"{', '.join(misplaced)} need --backend ray")
    overrides = per_algo_overrides(args.hyperparams, args.algos)
    options = dict(eval_freq=args.eval_freq, eval_episodes=args.eval_episodes,
                   final_eval_episodes=args.final_eval_episodes, stochastic_eval=args.stochastic_eval,
                   save_freq=args.save_freq, datasets=args.datasets is not None, online_steps=args.online_steps)
    if args.storage:
        options["logs_root"] = os.path.abspath(args.storage)
    envs = args.datasets or args.envs
    if args.report_only:
        specs = plan(args.name, args.algos, envs, args.seeds, args.n_timesteps, hyperparams=overrides, **options)
        path = write_report(args.name, specs, args.algos, envs, notes=args.notes)
    else:
        from rl.interrupt import interrupted_message
        from rl.ray_backend import RayBackendError

        try:
            backend = ray_backend(args) if args.backend == "ray" else None
            path = run_benchmark(args.name, args.algos, envs, args.seeds, args.n_timesteps, backend=backend,
                                 workers=args.workers, hyperparams=overrides, notes=args.notes,
                                 progress=args.progress, **options)
        except RayBackendError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        except KeyboardInterrupt as interrupt:
            print(interrupted_message(interrupt, "Rerun the same command to resume the benchmark (finished runs are "
                                                 "not redone)."), file=sys.stderr)
            return 130
    print(Path(path).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
