"""C-MORL's benchmark: C-MORL vs the linear-scalarisation grid vs PGMORL (morl-baselines) at one budget.

``python -m algos.cmorl_benchmark --envs mo-hopper-2obj-v5 mo-halfcheetah-v5 --seeds 0 1 2 -n 300000`` runs,
per env and seed:

- ``cmorl``: :class:`algos.cmorl.CMORL` (stage 1 on 2/3 of the budget, stage 2 on the rest);
- ``grid``: the same driver with ``init_fraction=1``: the stage-1 preference grid alone on the whole budget,
  the standard linear-scalarisation baseline;
- ``pgmorl``: PGMORL from morl-baselines in its own virtual environment (:mod:`rl.external.pgmorl_baseline`),
  same env, episode cap (500) and budget, its archive evaluated with the same protocol.

It writes ``results/cmorl/`` : ``table.md`` (hypervolume, expected utility, sparsity, cardinality as mean +- std
over seeds, env steps per second), ``results.json``, ``fronts_<env>.png`` (all fronts of a task in one
picture) and ``command.txt``. Each run lives in ``runs/<env>/<method>_s<seed>/`` and resumes where it stopped
(C-MORL's finished tasks, PGMORL's finished JSON), so a killed benchmark continues.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

METHODS = ("cmorl", "grid", "pgmorl")
DEFAULT_OUT = "results/cmorl"


def _run_driver(env_id: str, seed: int, method: str, budget: int, run_dir: str, moppo_kwargs: dict[str, Any],
                driver_kwargs: dict[str, Any]) -> dict[str, Any]:
    import torch as th

    from algos.cmorl import CMORL

    th.set_num_threads(1)
    summary_path = Path(run_dir) / "summary.json"
    if summary_path.is_file():
        summary = json.loads(summary_path.read_text())
        if summary["budget"] == budget:
            return summary
    init_fraction = 1.0 if method == "grid" else driver_kwargs.get("init_fraction", 2 / 3)
    kwargs = {**driver_kwargs, "init_fraction": init_fraction}
    driver = CMORL(env_id, seed=seed, workers=1, run_dir=run_dir, moppo_kwargs=moppo_kwargs, **kwargs)
    started = time.time()
    driver.learn(budget)
    wall = time.time() - started
    driver.save(run_dir)
    driver.discard_iterates()
    points = driver.archive.points
    summary = {"method": method, "env": env_id, "seed": seed, "budget": budget, "env_steps": driver.env_steps,
               "wall_s": wall, "steps_per_s": driver.env_steps / wall if wall > 0 else None,
               "points": points.tolist(), "stages": [row["stage"] for row in driver.pareto_front()],
               "settings": driver.settings()}
    from rl.checkpoint import write_json_atomic

    write_json_atomic(summary_path, summary)
    return summary


def _run_pgmorl(env_id: str, seed: int, budget: int, run_dir: str, ref_point: list[float],
                venv: str | None) -> dict[str, Any]:
    from rl.external.pgmorl_baseline import run_pgmorl

    Path(run_dir).mkdir(parents=True, exist_ok=True)
    result = run_pgmorl(env_id, budget, seed, ref_point, Path(run_dir) / "pgmorl.json", venv=venv)
    return {"method": "pgmorl", "env": env_id, "seed": seed, "budget": budget, "env_steps": result["env_steps"],
            "wall_s": result["wall_s"], "steps_per_s": result["steps_per_s"], "points": result["points"],
            "settings": result.get("settings", {})}


def _run(job: dict[str, Any]) -> dict[str, Any]:
    if job["method"] == "pgmorl":
        return _run_pgmorl(job["env"], job["seed"], job["budget"], job["run_dir"], job["ref_point"], job["venv"])
    return _run_driver(job["env"], job["seed"], job["method"], job["budget"], job["run_dir"], job["moppo_kwargs"],
                       job["driver_kwargs"])


def summarise(results: list[dict[str, Any]], ref_points: dict[str, list[float]]) -> list[dict[str, Any]]:
    """Per env and method: each metric's mean and std over seeds, and env steps per second."""
    from rl.mo_metrics import front_metrics

    rows = []
    for env_id in dict.fromkeys(r["env"] for r in results):
        for method in dict.fromkeys(r["method"] for r in results if r["env"] == env_id):
            runs = [r for r in results if r["env"] == env_id and r["method"] == method]
            metrics = [front_metrics(np.array(r["points"], dtype=np.float64).reshape(-1, len(ref_points[env_id])),
                                     ref_points[env_id]) for r in runs]
            row = {"env": env_id, "method": method, "seeds": [r["seed"] for r in runs],
                   "env_steps": [r["env_steps"] for r in runs],
                   "steps_per_s": float(np.mean([r["steps_per_s"] for r in runs]))}
            for key in ("hypervolume", "expected_utility", "sparsity", "cardinality"):
                values = np.array([m[key] for m in metrics], dtype=np.float64)
                row[key] = {"mean": float(values.mean()), "std": float(values.std()), "per_seed": values.tolist()}
            rows.append(row)
    return rows


def write_table(rows: list[dict[str, Any]], path: Path, budget: int, ref_points: dict[str, list[float]]) -> None:
    lines = [f"Budget: {budget:,} env steps per run (all of a method's policies together); mean +- std over seeds.",
             "", "| env | method | hypervolume | expected utility | sparsity | cardinality | env steps/s | seeds |",
             "|---|---|---|---|---|---|---|---|"]
    def cell(row: dict[str, Any], key: str, digits: int) -> str:
        return f"{row[key]['mean']:.{digits}f} +- {row[key]['std']:.{digits}f}"

    for row in rows:
        lines.append(f"| {row['env']} | {row['method']} | {cell(row, 'hypervolume', 0)} | "
                     f"{cell(row, 'expected_utility', 1)} | "
                     f"{cell(row, 'sparsity', 1)} | {cell(row, 'cardinality', 1)} | {row['steps_per_s']:.0f} | "
                     f"{len(row['seeds'])} |")
    lines += ["", "Reference points: " + ", ".join(f"{env} {tuple(point)}" for env, point in ref_points.items())]
    lines += ["", "Per seed (hypervolume; env steps the method really used of the budget):", ""]
    for row in rows:
        cells = ", ".join(f"seed {seed}: {hv:.0f} ({steps:,} steps)" for seed, hv, steps in
                          zip(row["seeds"], row["hypervolume"]["per_seed"], row["env_steps"], strict=True))
        lines.append(f"- {row['env']} {row['method']}: {cells}")
    path.write_text("\n".join(lines) + "\n")


def plot_fronts(results: list[dict[str, Any]], out: Path) -> list[Path]:
    """One picture per env: every run's non-dominated points, one colour per method, one marker per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from algos.cmorl import objective_label
    from rl.pareto import non_dominated_indices

    paths = []
    colours = {"cmorl": "tab:red", "grid": "tab:blue", "pgmorl": "tab:green"}
    markers = ["o", "s", "^", "D", "v"]
    for env_id in dict.fromkeys(r["env"] for r in results):
        figure, axis = plt.subplots(figsize=(6, 5))
        for result in (r for r in results if r["env"] == env_id):
            points = np.array(result["points"], dtype=np.float64)
            if not len(points):
                continue
            points = points[non_dominated_indices(points)]
            order = np.argsort(points[:, 0])
            axis.plot(points[order, 0], points[order, 1], marker=markers[result["seed"] % len(markers)],
                      color=colours.get(result["method"], "black"), alpha=0.7, markersize=4, linewidth=0.8,
                      label=f"{result['method']} seed {result['seed']}")
        axis.set(xlabel=objective_label(env_id, 0), ylabel=objective_label(env_id, 1),
                 title=f"Pareto fronts on {env_id} (non-dominated points of each run)")
        axis.legend(fontsize="x-small", ncol=2)
        figure.tight_layout()
        path = out / f"fronts_{env_id}.png"
        figure.savefig(path, dpi=100)
        plt.close(figure)
        paths.append(path)
    return paths


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m algos.cmorl_benchmark", description=__doc__.split("\n")[0])
    parser.add_argument("--envs", nargs="+", default=["mo-hopper-2obj-v5", "mo-halfcheetah-v5"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("-n", "--n-timesteps", type=int, default=300_000, help="env steps per run")
    parser.add_argument("--processes", type=int, default=2, help="runs at once (one core each)")
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--pgmorl-venv", default=None, help="morl-baselines venv (default: rl.external's)")
    parser.add_argument("-params", "--hyperparams", nargs="+", default=None, metavar="KEY:VALUE",
                        help="C-MORL settings and MOPPO arguments for both driver methods (as python -m algos.cmorl)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from algos.cmorl import split_hyperparams
    from rl.checkpoint import write_json_atomic
    from rl.hyperparams import parse_overrides
    from rl.mo_metrics import REFERENCE_POINTS

    args = build_parser().parse_args(argv)
    driver_kwargs, moppo_kwargs = split_hyperparams(parse_overrides(args.hyperparams))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["python", "-m", "algos.cmorl_benchmark", *(sys.argv[1:] if argv is None else argv)])
    (out / "command.txt").write_text(command + "\n")
    ref_points = {env: list(REFERENCE_POINTS[env]) for env in args.envs}
    jobs = [{"env": env, "seed": seed, "method": method, "budget": args.n_timesteps, "ref_point": ref_points[env],
             "run_dir": str(out / "runs" / env / f"{method}_s{seed}"), "venv": args.pgmorl_venv,
             "moppo_kwargs": moppo_kwargs, "driver_kwargs": driver_kwargs}
            for seed in args.seeds for env in args.envs for method in args.methods]
    results = []
    with ProcessPoolExecutor(max_workers=args.processes, mp_context=get_context("spawn")) as pool:
        for job, result in zip(jobs, pool.map(_run, jobs), strict=True):
            print(f"{job['env']} {job['method']} seed {job['seed']}: {len(result['points'])} points, "
                  f"{result['steps_per_s']:.0f} steps/s", flush=True)
            results.append(result)
    rows = summarise(results, ref_points)
    write_json_atomic(out / "results.json", {"command": command, "budget": args.n_timesteps, "rows": rows,
                                             "runs": results, "reference_points": ref_points})
    write_table(rows, out / "table.md", args.n_timesteps, ref_points)
    plot_fronts(results, out)
    print((out / "table.md").read_text())
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from rl.interrupt import run_main

    sys.exit(run_main(main, "Rerun the same command to resume the benchmark (finished runs are not redone)."))
