"""QD benchmark: STAX, SERENE, TAXONS, Novelty Search and a MAP-Elites baseline, side by side, over envs and
seeds, in one command (issue 7)::

    python -m qd.benchmark --name qd --algos stax serene taxons ns map_elites \\
        --envs RedundantArm-v0 Curling-v0 HardMaze-v0 --seeds 0 1 2 --budget 5000 --workers 2

Every (algo, env, seed) is one :class:`qd.run.QDRun` with a serial evaluator, in its own process (the
process pool of :class:`rl.benchmark.ProcessBackend`, one torch thread each). Resumable at two levels: a
finished run's ``metrics.json``, ``config.json``, ``benchmark.json`` and pictures are kept under
``results/<name>/runs/<algo>/<env>_seed<k>/`` and not redone; an unfinished run resumes from its atomic
checkpoint under ``logs/qd_benchmark/<name>/<algo>/<env>_seed<k>/``.

TAXONS and STAX learn their behaviour space with an autoencoder of the papers' input, the final 64x64 render
(``observation_kind="image"``, :data:`DEFAULT_HYPERPARAMS`). The faster ``-params taxons.observation_kind:state``
feeds it the env's ``state_observation()``, which on HardMaze, Curling and AntMaze holds the very outcome
coordinates the coverage is measured on, so it is not offered as a default.

Every run is compared at exactly ``--budget`` evaluations: each metric is read there
(:meth:`qd.metrics.RunMetrics.at`), although a run's last generation may go past it (``evaluations_spent``
in ``metrics.json``).

Output under ``results/<name>/``: ``README.md`` (per env and algorithm: coverage of the 50x50 grid of the
true outcome space, reward areas found, best reward per area, evaluations to the first reward,
evaluations per second; the two targets of the papers checked per env), ``curves.png`` (coverage and best
reward against evaluations, mean over seeds, one column per env), ``command.txt`` and ``versions.json``.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import importlib.metadata
import json
import math
import os
import shutil
import sys
import time
import traceback
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qd.phase_clock import PHASES
from rl.benchmark import STD_NOTE, format_mean_std

RESULTS_ROOT = "results"
LOGS_ROOT = os.path.join("logs", "qd_benchmark")
ALGORITHMS: dict[str, str] = {
    "stax": "qd.stax.STAX",
    "serene": "qd.serene.SERENE",
    "taxons": "qd.taxons.TAXONS",
    "ns": "qd.ns.NoveltySearch",
    "map_elites": "qd.map_elites.MapElites",
}
"""Benchmark labels and the classes they run."""
DEFAULT_HYPERPARAMS: dict[str, dict[str, Any]] = {
    "taxons": {"observation_kind": "image"},
    "stax": {"observation_kind": "image"},
}
"""The benchmark's explicit settings: the autoencoders see the papers' input, the final 64x64 render (the
classes' default too, written out so that every run's ``config.json`` and the report name it)."""
DEFAULT_ENVS = ("RedundantArm-v0", "Curling-v0", "HardMaze-v0")
_OBSERVATION_WORDS = {
    "image": "the final 64x64 render (`image`, the papers' input, which shows the scene, not coordinates)",
    "state": ("the env's state vector (`state`; on HardMaze, Curling and AntMaze it holds the outcome coordinates "
              "themselves, so that space is not learned without them)"),
    "signature": "the signature of the outcome trajectory (`signature`, STAX's trajectory option)",
}
"""How the report names each autoencoder input."""
BENCHMARK_FILE = "benchmark.json"
"""Per run: evaluations and the wall-clock seconds of the whole run (all segments, algorithm included)."""
CURVE_POINTS = 101


class BenchmarkError(ValueError):
    """A benchmark request that cannot run (unknown algorithm, env or hyperparameter)."""


def algorithm_class(label: str) -> type:
    """The class a benchmark label runs.

    Raises:
        BenchmarkError: for an unknown label, naming the closest ones.
    """
    if label not in ALGORITHMS:
        close = difflib.get_close_matches(label, list(ALGORITHMS), n=3, cutoff=0.4)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise BenchmarkError(f"Unknown QD algorithm {label!r}.{hint} Known: {', '.join(ALGORITHMS)}.")
    module, _, qualname = ALGORITHMS[label].rpartition(".")
    return getattr(importlib.import_module(module), qualname)


@dataclass(frozen=True)
class QDRunSpec:
    """One run of a QD benchmark."""

    algo: str
    env: str
    seed: int
    budget: int
    """Evaluations."""
    work_dir: str
    """Where the run runs and checkpoints (not committed)."""
    result_dir: str
    """Where the finished run's small artefacts are kept (committed)."""
    hyperparams: dict[str, Any] = field(default_factory=dict)
    save_freq: int = 1000

    @property
    def done(self) -> bool:
        """Finished at exactly the requested budget, with the requested env, seed and hyperparameters."""
        path = Path(self.result_dir) / "metrics.json"
        if not path.is_file():
            return False
        record = json.loads(path.read_text())
        config = record.get("config", {})
        return (record.get("evaluations") == self.budget == record.get("budget")
                and same_inputs(config, self))


def plan(name: str, algos: Sequence[str], envs: Sequence[str], seeds: Sequence[int], budget: int, *,
         hyperparams: dict[str, dict[str, Any]] | None = None, results_root: str = RESULTS_ROOT,
         logs_root: str = LOGS_ROOT, save_freq: int = 1000) -> list[QDRunSpec]:
    """All runs of a benchmark, ordered seed, env, algo (runs compared with each other are neighbours and
    share the machine); hyperparameters are :data:`DEFAULT_HYPERPARAMS` updated by ``hyperparams``."""
    hyperparams = hyperparams or {}
    return [
        QDRunSpec(algo=algo, env=env, seed=seed, budget=int(budget),
                  work_dir=os.path.join(logs_root, name, algo, f"{env}_seed{seed}"),
                  result_dir=os.path.join(results_root, name, "runs", algo, f"{env}_seed{seed}"),
                  hyperparams={**DEFAULT_HYPERPARAMS.get(algo, {}), **hyperparams.get(algo, {})},
                  save_freq=save_freq)
        for seed in seeds for env in envs for algo in algos
    ]


def same_inputs(config: dict[str, Any], spec: QDRunSpec) -> bool:
    """Whether a run's recorded config was built from the spec's algorithm, env, seed and hyperparameters."""
    return (config.get("algo") == spec.algo and config.get("env") == spec.env and config.get("seed") == spec.seed
            and config.get("hyperparams") == spec.hyperparams)


def check_request(algos: Sequence[str], envs: Sequence[str], hyperparams: dict[str, dict[str, Any]],
                  budget: int = 1) -> None:
    """Fail before any run on a bad budget, an unknown algorithm or env, or a hyperparameter an algorithm does
    not take or refuses (every algorithm is built once on every env, without evaluating anything).

    Raises:
        BenchmarkError: a budget < 1 or an unknown algorithm; rl.envs.UnknownEnvError /
        qd.evaluation.NotAQDTaskError: bad env; rl.hyperparams.HyperparameterError: a key the algorithm does
        not take or a value of the wrong type; qd.run.QDInputError: a value the algorithm refuses.
    """
    from qd.evaluation import SerialEvaluator, task_spec
    from qd.run import build_algorithm, check_hyperparams

    if budget < 1:
        raise BenchmarkError(f"--budget must be >= 1 evaluation per run, got {budget}: pass e.g. --budget 3000.")
    classes = {algo: algorithm_class(algo) for algo in algos}
    for algo, cls in classes.items():
        check_hyperparams(cls, {**DEFAULT_HYPERPARAMS.get(algo, {}), **hyperparams.get(algo, {})})
    for env in envs:
        task_spec(env)
        for algo, cls in classes.items():
            evaluator = SerialEvaluator(env)
            try:
                build_algorithm(cls, env, seed=0, evaluator=evaluator,
                                hyperparams={**DEFAULT_HYPERPARAMS.get(algo, {}), **hyperparams.get(algo, {})})
            finally:
                evaluator.close()


def _wall_seconds(path: Path) -> float:
    return float(json.loads(path.read_text()).get("wall_seconds", 0.0)) if path.is_file() else 0.0


def execute(spec: QDRunSpec) -> dict[str, Any]:
    """Run one benchmark run (resuming from its checkpoint if any) and keep its small artefacts."""
    import torch

    from qd.evaluation import SerialEvaluator
    from qd.run import CHECKPOINT_FILE, CONFIG_FILE, METRICS_FILE, PICTURES, QDRun, load_checkpoint
    from rl.checkpoint import write_json_atomic
    from rl.run_record import command_line

    torch.set_num_threads(1)
    start = time.time()
    work_dir = Path(spec.work_dir)
    run = None
    carried = _wall_seconds(work_dir / BENCHMARK_FILE)  # the earlier segments of this run
    try:
        evaluator = SerialEvaluator(spec.env)
        if (work_dir / CHECKPOINT_FILE).is_file():
            recorded = load_checkpoint(work_dir)["config"]
            if not same_inputs(recorded, spec):
                raise BenchmarkError(
                    f"{work_dir} holds a run with other inputs (env {recorded.get('env')}, seed {recorded.get('seed')}"
                    f", hyperparams {recorded.get('hyperparams')}; asked: {spec.hyperparams}): delete that folder to "
                    "start afresh, or pick another --name.")
            run = QDRun.resume(work_dir, evaluator=evaluator, save_freq=spec.save_freq, progress=False)
            # A segment stopped before the end writes no benchmark.json; its checkpointed generation time still
            # counts (the time after its last checkpoint is spent again in this segment).
            carried = max(carried, run.algorithm.clock.breakdown()["total"])
        else:
            algorithm = algorithm_class(spec.algo)(spec.env, seed=spec.seed, evaluator=evaluator, **spec.hyperparams)
            config = {"algo": spec.algo, "env": spec.env, "seed": spec.seed, "workers": 1,
                      "hyperparams": dict(spec.hyperparams), "command": command_line()}
            run = QDRun(algorithm, work_dir, config=config, save_freq=spec.save_freq, progress=False)
        metrics = run.run(spec.budget)
        wall = carried + time.time() - start
        write_json_atomic(work_dir / BENCHMARK_FILE, {"evaluations": metrics["evaluations"], "wall_seconds": wall,
                                                      "evaluations_per_wall_second": metrics["evaluations"] / wall})
    except Exception:  # one failed run must not stop the others; its error goes into the report
        return {"spec": asdict(spec), "error": traceback.format_exc(), "wall_seconds": time.time() - start}
    finally:
        if run is not None:
            run.algorithm.close()
    os.makedirs(spec.result_dir, exist_ok=True)
    for name in (METRICS_FILE, CONFIG_FILE, BENCHMARK_FILE, *PICTURES):
        if (work_dir / name).is_file():
            shutil.copy2(work_dir / name, Path(spec.result_dir) / name)
    return {"spec": asdict(spec), "evaluations": metrics["evaluations"], "wall_seconds": time.time() - start}


def load_finished(spec: QDRunSpec) -> dict[str, Any] | None:
    """``metrics.json`` of a run finished at ``spec``'s budget and inputs, with ``benchmark.json`` under the key
    ``"benchmark"``, or None: a run kept from an earlier budget is not reported beside this one's."""
    if not spec.done:
        return None
    record = json.loads((Path(spec.result_dir) / "metrics.json").read_text())
    bench = Path(spec.result_dir) / BENCHMARK_FILE
    record["benchmark"] = json.loads(bench.read_text()) if bench.is_file() else {}
    return record


def _first_reward(records: Sequence[dict[str, Any]]) -> float:
    """Median evaluations to the first reward over seeds, a run without reward counting as infinity."""
    values = [r["evaluations_to_first_reward"] for r in records]
    return float(np.median([math.inf if v is None else v for v in values])) if values else math.nan


def _format_first_reward(records: Sequence[dict[str, Any]]) -> str:
    if not records:
        return "n/a"
    median = _first_reward(records)
    reached = sum(r["evaluations_to_first_reward"] is not None for r in records)
    return f"{'never' if math.isinf(median) else f'{median:,.0f}'} ({reached}/{len(records)} reached)"


def _union_areas(records: Sequence[dict[str, Any]]) -> list[str]:
    found = {area for r in records for area in r["reward_areas_found"]}
    order = records[0]["reward_areas"] if records else []
    return [area for area in order if area in found]


def _best_per_area(records: Sequence[dict[str, Any]]) -> str:
    """``area: best (seeds that reached it)`` for every area reached by some seed."""
    parts = []
    for area in _union_areas(records):
        rewards = [r["best_reward_per_area"][area] for r in records if r["best_reward_per_area"].get(area) is not None]
        parts.append(f"{area}: {max(rewards):.3f} ({len(rewards)}/{len(records)})")
    return "; ".join(parts) if parts else "none"


def evaluations_to_reward(record: dict[str, Any], level: float) -> float:
    """Evaluations after which the run's best reward first reached ``level`` (infinity if it never did)."""
    for row in record["history"]:
        if row["best_reward"] is not None and row["best_reward"] >= level:
            return float(row["evaluations"])
    return math.inf


def _reward_level_line(serene: Sequence[dict[str, Any]], ns: Sequence[dict[str, Any]]) -> str:
    """SERENE vs NS on the evaluations needed to reach the best reward NS reached, seed by seed.

    SERENE runs plain NS until it finds a reward (same seed, same genomes), so its first reward always
    ties with NS's; what its emitters claim to buy is reaching *high* reward sooner. Seeds are paired by
    order (both lists follow the benchmark's seeds).
    """
    pairs = []
    for serene_run, ns_run in zip(serene, ns):
        best = [r["best_reward"] for r in ns_run["history"] if r["best_reward"] is not None]
        if best:
            level = max(best)
            pairs.append((evaluations_to_reward(serene_run, level), evaluations_to_reward(ns_run, level), level))
    if not pairs:
        return "- SERENE reaches NS's best reward in fewer evaluations: not checked (NS found no reward)"
    faster = sum(s < n for s, n, _ in pairs)
    shown = "; ".join(f"{'never' if math.isinf(s) else f'{s:,.0f}'} vs {n:,.0f} (reward {level:.2f})"
                      for s, n, level in pairs)
    verdict = "**met**" if faster > len(pairs) / 2 else "**not met**"
    return (f"- SERENE reaches NS's best reward in fewer evaluations (per seed where NS found reward, SERENE vs NS: "
            f"{shown}): {verdict} ({faster}/{len(pairs)} seeds faster)")


def check_targets(by_algo: dict[str, list[dict[str, Any]]], complete: dict[str, bool]) -> list[str]:
    """The papers' claims on one env, each stated as met / not met (or why it was not checked)."""
    lines = []
    if "stax" in by_algo and "serene" in by_algo and complete["stax"] and complete["serene"]:
        stax, serene = set(_union_areas(by_algo["stax"])), _union_areas(by_algo["serene"])
        missing = [a for a in serene if a not in stax]
        verdict = ("**not met** (STAX misses " + ", ".join(missing) + ")" if missing
                   else "**met**" if serene else "**met** (vacuously: SERENE found none)")
        lines.append(f"- STAX finds every reward area SERENE finds (union over seeds; SERENE: "
                     f"{', '.join(serene) or 'none'}): {verdict}")
    else:
        lines.append("- STAX finds every reward area SERENE finds: not checked (needs finished stax and serene runs)")
    if "serene" in by_algo and "ns" in by_algo and complete["serene"] and complete["ns"]:
        serene, ns = _first_reward(by_algo["serene"]), _first_reward(by_algo["ns"])
        met = serene < ns
        why = " (neither reached reward)" if math.isinf(serene) and math.isinf(ns) else ""
        why = why or (" (SERENE is NS until its first reward, so this can only tie)" if serene == ns else "")
        shown = ", ".join(f"{label} {'never' if math.isinf(v) else f'{v:,.0f}'}"
                          for label, v in (("SERENE", serene), ("NS", ns)))
        lines.append(f"- SERENE reaches reward in fewer evaluations than NS (median; {shown}): "
                     f"{'**met**' if met else '**not met**'}{why}")
        lines.append(_reward_level_line(by_algo["serene"], by_algo["ns"]))
    else:
        lines.append("- SERENE reaches reward in fewer evaluations than NS: not checked "
                     "(needs finished serene and ns runs)")
    return lines


def autoencoder_lines(by_algo: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Per learned-space algorithm: autoencoder trainings and generations ranked by novelty / surprise, per seed
    (from ``metrics.json``'s ``algorithm`` summary)."""
    lines = []
    for algo, records in by_algo.items():
        summaries = [r.get("algorithm", {}) for r in records]
        if not summaries or any("autoencoder_trainings" not in summary for summary in summaries):
            continue
        shown = "; ".join(f"{s['autoencoder_trainings']} trainings, {s['generations_by_novelty']} by novelty, "
                          f"{s['generations_by_surprise']} by surprise" for s in summaries)
        lines.append(f"- {algo} autoencoder, per seed: {shown}.")
    return ["", *lines] if lines else []


def time_lines(by_algo: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Per algorithm: wall-clock minutes per run and where the time went (``metrics.json``'s ``seconds``: evaluation,
    novelty queries, autoencoder training and encoding, the rest), means over the finished seeds."""
    lines = []
    for algo, records in by_algo.items():
        timed = [r for r in records if r.get("seconds", {}).get("total")]
        if not timed:
            continue
        walls = [r["benchmark"]["wall_seconds"] / 60 for r in timed if r["benchmark"].get("wall_seconds")]
        shares = ", ".join(f"{phase} {100 * np.mean([r['seconds'][phase] / r['seconds']['total'] for r in timed]):.0f}%"
                           for phase in (*PHASES, "other"))
        lines.append(f"- {algo}: {format_mean_std(walls, 1)} min per run (wall clock, all segments); of the "
                     f"generations' time: {shares}.")
    return ["", "Where the time goes:", "", *lines] if lines else []


def _curve(record: dict[str, Any], grid: np.ndarray, key: str) -> np.ndarray:
    """A history column on an evaluation grid (the value after the last generation at or before each point;
    nan before the first generation, 0 for a best reward not yet found)."""
    history = record["history"]
    evaluations = np.array([row["evaluations"] for row in history], dtype=np.float64)
    values = np.array([0.0 if row[key] is None else row[key] for row in history], dtype=np.float64)
    index = np.searchsorted(evaluations, grid, side="right") - 1
    return np.where(index >= 0, values[np.clip(index, 0, None)], np.nan)


def plot_curves(records: dict[tuple[str, str, int], dict[str, Any] | None], algos: Sequence[str],
                envs: Sequence[str], budget: int, path: str | os.PathLike, title: str) -> None:
    """Coverage and best reward against evaluations, mean over finished seeds, one column per env."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.linspace(0, budget, CURVE_POINTS)
    fig, axes = plt.subplots(2, len(envs), figsize=(4.5 * len(envs), 7), squeeze=False)
    for column, env in enumerate(envs):
        for algo in algos:
            runs = [r for (a, e, _), r in records.items() if a == algo and e == env and r is not None]
            if not runs:
                continue
            for row, key in enumerate(("coverage", "best_reward")):
                with warnings.catch_warnings():  # all-nan columns before a seed's first generation
                    warnings.simplefilter("ignore", RuntimeWarning)
                    mean = np.nanmean(np.stack([_curve(r, grid, key) for r in runs]), axis=0)
                axes[row, column].plot(grid, mean, label=f"{algo} (n={len(runs)})")
        axes[0, column].set(title=env, ylabel="coverage (50x50 outcome grid)")
        axes[1, column].set(xlabel="evaluations", ylabel="best reward (0 before any)")
        axes[0, column].legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(name: str, specs: Sequence[QDRunSpec], algos: Sequence[str], envs: Sequence[str], *,
                 results_root: str = RESULTS_ROOT, notes: str = "",
                 failures: Sequence[dict[str, Any]] = ()) -> str:
    """Write ``README.md`` and ``curves.png`` from the finished runs; return the table's path."""
    out = Path(results_root) / name
    out.mkdir(parents=True, exist_ok=True)
    records = {(s.algo, s.env, s.seed): load_finished(s) for s in specs}
    seeds = sorted({s.seed for s in specs})
    budget = specs[0].budget if specs else 0
    observation = {s.algo: s.hyperparams.get("observation_kind", "image") for s in specs
                   if s.algo in ("taxons", "stax")}
    lines = [f"# QD benchmark `{name}`: {', '.join(algos)}", "",
             f"Budget: {budget:,} evaluations per run, every metric read at exactly {budget:,} (a run's last "
             "generation may go past it; those evaluations are not counted); seeds "
             f"{', '.join(map(str, seeds))}; one process per run with a serial evaluator and one torch thread. NS "
             "and SERENE use the hand-designed descriptor (the final position), MAP-Elites (pyribs) a 50x50 grid "
             "of it" + ("; TAXONS and STAX learn theirs with an autoencoder of "
                        + ", ".join(f"{a}: {_OBSERVATION_WORDS.get(k, f'`{k}`')}" for a, k in observation.items())
                        if observation else "") + ".",
             "",
             "Coverage: share of the 50x50 grid of the true outcome space reached (mean +- std over seeds). "
             "Areas: reward areas reached (mean over seeds; union over seeds by name). Best reward: per area, the "
             "best over seeds (seeds that reached it). First reward: median over seeds of the evaluations to the "
             "first reward, a seed that never got one counting as infinite. Evals/s: evaluation throughput "
             "(episodes only) and wall-clock throughput (the algorithm's own work included: autoencoder training, "
             "novelty, archives), mean over seeds; runs shared the machine with each other. " + STD_NOTE, ""]
    seed_lines = ["", "## Per seed", "", "| env | algo | " + " | ".join(f"seed {s}" for s in seeds) + " |",
                  "|---|---|" + "---|" * len(seeds)]
    for env in envs:
        lines += [f"## {env}", "",
                  "| algo | runs | coverage | areas found (mean) | areas found (union) | best reward per area "
                  "| first reward (median evals) | evals/s (episodes) | evals/s (wall) |",
                  "|---|---|---|---|---|---|---|---|---|"]
        by_algo: dict[str, list[dict[str, Any]]] = {}
        complete: dict[str, bool] = {}
        for algo in algos:
            runs = [records[(algo, env, s)] for s in seeds]
            done = [r for r in runs if r is not None]
            by_algo[algo], complete[algo] = done, bool(done) and len(done) == len(runs)
            speeds = [r["evaluations_per_second"] for r in done]
            walls = [r["benchmark"]["evaluations_per_wall_second"] for r in done
                     if r["benchmark"].get("evaluations_per_wall_second")]
            union = _union_areas(done)
            lines.append(
                f"| {algo} | {len(done)}/{len(runs)} | {format_mean_std([r['coverage'] for r in done], 3)} | "
                + (f"{np.mean([len(r['reward_areas_found']) for r in done]):.1f}" if done else "n/a")
                + f" | {len(union)}: {', '.join(union) or 'none'} | {_best_per_area(done) if done else 'n/a'} | "
                f"{_format_first_reward(done)} | {format_mean_std(speeds, 0)} | {format_mean_std(walls, 0)} |")
            cells = []
            for record in runs:
                if record is None:
                    cells.append("-")
                    continue
                first = record["evaluations_to_first_reward"]
                cells.append(f"cov {record['coverage']:.3f}, areas {len(record['reward_areas_found'])}, "
                             f"first {'never' if first is None else f'{first:,}'}")
            seed_lines.append(f"| {env} | {algo} | " + " | ".join(cells) + " |")
        lines += [*autoencoder_lines(by_algo), *time_lines(by_algo), "", "Targets:", "",
                  *check_targets(by_algo, complete), ""]
    lines += seed_lines
    if failures:
        lines += ["", "## Failed runs", ""]
        lines += [f"- {f['spec']['algo']} {f['spec']['env']} seed {f['spec']['seed']}: "
                  f"{f['error'].strip().splitlines()[-1]}" for f in failures]
    if notes:
        lines += ["", notes.strip()]
    lines += ["", "Curves (coverage and best reward against evaluations, mean over seeds): `curves.png`; per run: "
              "`runs/<algo>/<env>_seed<k>/` (metrics.json, config.json, benchmark.json, pictures).", "",
              "Command: see `command.txt`; software versions: `versions.json`."]
    table_path = out / "README.md"
    table_path.write_text("\n".join(lines) + "\n")
    plot_curves(records, algos, envs, budget, out / "curves.png", f"{name}: {budget:,} evaluations per run")
    return str(table_path)


def run_benchmark(name: str, algos: Sequence[str], envs: Sequence[str], seeds: Sequence[int], budget: int, *,
                  workers: int = 2, hyperparams: dict[str, dict[str, Any]] | None = None,
                  results_root: str = RESULTS_ROOT, logs_root: str = LOGS_ROOT, save_freq: int = 1000,
                  notes: str = "", progress: bool = True, backend: Any = None) -> str:
    """Run every unfinished run, then write the report; returns the table's path.

    ``backend`` is an :class:`rl.benchmark.Backend` (default: a local pool of ``workers`` processes).
    """
    from tqdm import tqdm

    from rl.benchmark import ProcessBackend
    from rl.run_record import command_line, package_versions

    hyperparams = hyperparams or {}
    check_request(algos, envs, hyperparams, budget)
    specs = plan(name, algos, envs, seeds, budget, hyperparams=hyperparams, results_root=results_root,
                 logs_root=logs_root, save_freq=save_freq)
    out = Path(results_root) / name
    out.mkdir(parents=True, exist_ok=True)
    (out / "command.txt").write_text(command_line() + "\n")
    versions = package_versions()
    for package in ("ribs", "scikit-learn"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    (out / "versions.json").write_text(json.dumps(versions, indent=2) + "\n")
    todo = [s for s in specs if not s.done]
    backend = backend or ProcessBackend(workers)
    failures: list[dict[str, Any]] = []
    with tqdm(total=len(specs), initial=len(specs) - len(todo), desc=f"qd benchmark {name}", unit="run",
              disable=not progress) as bar:
        for outcome in backend.run_all(todo, execute):
            spec = outcome["spec"]
            if "error" in outcome:
                failures.append(outcome)
                tqdm.write(f"run failed: {spec['algo']} {spec['env']} seed {spec['seed']}\n{outcome['error']}")
            else:
                tqdm.write(f"done: {spec['algo']} {spec['env']} seed {spec['seed']} "
                           f"({outcome['evaluations']} evaluations, {outcome['wall_seconds']:.0f} s)")
            bar.update(1)
            write_report(name, specs, algos, envs, results_root=results_root, notes=notes, failures=failures)
    return write_report(name, specs, algos, envs, results_root=results_root, notes=notes, failures=failures)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m qd.benchmark``."""
    parser = argparse.ArgumentParser(prog="python -m qd.benchmark", description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True, help="benchmark name: results go to results/<name>/")
    parser.add_argument("--algos", nargs="+", default=list(ALGORITHMS), help=f"of {', '.join(ALGORITHMS)}")
    parser.add_argument("--envs", nargs="+", default=list(DEFAULT_ENVS), help="QD task ids")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="seeds")
    parser.add_argument("--budget", type=int, required=True, help="evaluations per run")
    parser.add_argument("--workers", type=int, default=2, help="runs in parallel (one process each)")
    parser.add_argument("--save-freq", type=int, default=1000, help="checkpoint every n evaluations")
    parser.add_argument("-params", "--hyperparams", nargs="+", default=None, metavar="ALGO.KEY:VALUE",
                        help="per-algorithm constructor arguments, e.g. taxons.observation_kind:image ns.pop_size:50")
    parser.add_argument("-f", "--results-root", default=RESULTS_ROOT, help="root of results/<name>/")
    parser.add_argument("--logs-root", default=LOGS_ROOT, help="root of the run folders (checkpoints)")
    parser.add_argument("--notes", default="", help="text appended to the report")
    parser.add_argument("--report-only", action="store_true", help="rewrite the report from finished runs")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    return parser


def per_algo_overrides(items: Sequence[str] | None, algos: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``["stax.latent_dim:5", ...]`` as ``{"stax": {"latent_dim": 5}, ...}``.

    Raises:
        BenchmarkError: for an item that is not ``<algo>.<key>:<value>`` with a benchmarked algo.
    """
    from rl.benchmark import per_algo_overrides

    try:
        return per_algo_overrides(items, algos)
    except SystemExit as error:  # the RL harness's parser error: the same rule, raised as this module's error
        raise BenchmarkError(str(error).removeprefix("error: ")) from None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: user errors print one line and exit with status 2."""
    from qd.run import _user_errors

    args = build_parser().parse_args(argv)
    try:
        for algo in args.algos:
            algorithm_class(algo)
        overrides = per_algo_overrides(args.hyperparams, args.algos)
        if args.report_only:
            specs = plan(args.name, args.algos, args.envs, args.seeds, args.budget, hyperparams=overrides,
                         results_root=args.results_root, logs_root=args.logs_root)
            path = write_report(args.name, specs, args.algos, args.envs, results_root=args.results_root,
                                notes=args.notes)
        else:
            path = run_benchmark(args.name, args.algos, args.envs, args.seeds, args.budget, workers=args.workers,
                                 hyperparams=overrides, results_root=args.results_root, logs_root=args.logs_root,
                                 save_freq=args.save_freq, notes=args.notes, progress=args.progress)
    except (BenchmarkError, *_user_errors()) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("Interrupted: each running run saved a checkpoint at its next generation boundary (unless Ctrl-C "
              "came twice); rerun the same command to resume.", file=sys.stderr)
        return 130
    print(Path(path).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
