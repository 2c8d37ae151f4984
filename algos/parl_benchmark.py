"""PARL's benchmark: PARL against reward-model preference RL without the bilevel correction (PEBBLE-style: learn the
reward from the rater, train on it), at equal rater queries and env steps.

    python -m algos.parl_benchmark --envs HopperTargetSpeed-v4 HalfCheetahTargetSpeed-v4 \\
        HopperBulletTargetSpeed-v0 --raters bt noisy --seeds 0 1 2 -n 200000 --comparisons 1000

Each (rater, env, seed) runs ``parl_<algo>@<rater>`` (:mod:`algos.parl`) and ``rm_<algo>@<rater>``
(:mod:`algos.rm`) with the same query budget, schedule, segments and reward-model fitting: the runs differ only
by PARL's implicit term (with ``implicit_weight`` 0 the two are the same run; ``tests/test_parl.py`` checks it).
The tasks' true reward is hidden from both (``envs.target_speed``: a target speed instead of the usual forward
reward); the rater compares true returns. Runs go through :mod:`rl.benchmark` (one process each, ``--workers`` at
a time, resumable; finished runs are kept under ``results/<name>/runs/`` and not redone).

Writes ``results/<name>/README.md``: the final true return (mean +- std over seeds) of both, and the rater
queries and env steps each needed to first reach a return level (``--levels``, one per env; default: half of
the better method's mean final return), ``learning_curves.png`` (true return against env steps and against
queries) and ``command.txt``. A hand-written ``analysis.md`` in the folder is appended to the README.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rl.benchmark import LOGS_ROOT, RESULTS_ROOT, ProcessBackend, RunSpec, execute, format_mean_std
from rl.preferences.benchmark_runs import (
    comparisons_at,
    evaluation_curve,
    final_return_and_comparisons,
    run_spec,
    write_readme,
)
from rl.run_record import command_line

METHODS = ("parl", "rm")
METHOD_NAMES = {"parl": "PARL", "rm": "reward model (no correction)"}
RATER_LABELS = {"bt": "transitive (BT, T=0)", "noisy": "noisy (10% flips)"}
Cell = tuple[str, str, int]
"""(rater, env, seed)."""


def plan(name: str, algo: str, envs: Sequence[str], raters: Sequence[str], seeds: Sequence[int], n_timesteps: int,
         *, comparisons: int, query_interval: int, segment_length: int, results_root: str, logs_root: str,
         eval_freq: int, command: str, extra_hyperparams: dict[str, Any] | None = None
         ) -> dict[str, dict[Cell, RunSpec]]:
    """Both methods' runs per cell, ordered seed, env, rater (a cut-short benchmark has whole seeds)."""
    specs: dict[str, dict[Cell, RunSpec]] = {method: {} for method in METHODS}
    for seed in seeds:
        for env in envs:
            for rater in raters:
                for method in METHODS:
                    settings = {"rater": rater, "total_comparisons": comparisons, "query_interval": query_interval,
                                "segment_length": segment_length}
                    hyperparams = {**(extra_hyperparams or {}),
                                   **{f"{method}_{key}": value for key, value in settings.items()}}
                    specs[method][(rater, env, seed)] = run_spec(
                        name, f"{method}_{algo}@{rater}", env, seed, n_timesteps, hyperparams,
                        results_root=results_root, logs_root=logs_root, command=command, eval_freq=eval_freq)
    return specs


def run(name: str, algo: str, envs: Sequence[str], raters: Sequence[str], seeds: Sequence[int], n_timesteps: int,
        *, comparisons: int = 1000, query_interval: int = 10_000, segment_length: int = 50, workers: int = 2,
        results_root: str = RESULTS_ROOT, logs_root: str = LOGS_ROOT, eval_freq: int = 10_000,
        levels: dict[str, float] | None = None, extra_hyperparams: dict[str, Any] | None = None) -> Path:
    """Run every unfinished run, seed by seed (the report is rewritten after each seed), and write the report."""
    command = command_line()
    out = Path(results_root) / name
    out.mkdir(parents=True, exist_ok=True)
    (out / "command.txt").write_text(command + "\n")
    specs = plan(name, algo, envs, raters, seeds, n_timesteps, comparisons=comparisons, query_interval=query_interval,
                 segment_length=segment_length, results_root=results_root, logs_root=logs_root, eval_freq=eval_freq,
                 command=command, extra_hyperparams=extra_hyperparams)
    backend = ProcessBackend(workers)
    for seed in seeds:
        todo = [spec for method in METHODS for cell, spec in specs[method].items() if cell[2] == seed
                and not spec.done]
        todo.sort(key=lambda spec: (spec.env, spec.algo.split("@")[1], spec.algo))  # a cell's pair side by side
        for outcome in backend.run_all(todo, execute):
            if "error" in outcome:
                print(f"run failed: {outcome['spec']['algo']} {outcome['spec']['env']}\n{outcome['error']}",
                      file=sys.stderr)
        write_report(out, algo, envs, raters, seeds, specs, n_timesteps, comparisons=comparisons, levels=levels)
    return write_report(out, algo, envs, raters, seeds, specs, n_timesteps, comparisons=comparisons, levels=levels)


def first_reach(spec: RunSpec, level: float) -> tuple[float, float] | None:
    """(env steps, queries used) at the first evaluation whose mean true return is >= ``level``; None if never."""
    curve = evaluation_curve(spec)
    if curve is None:
        return None
    steps, returns = curve
    reached = np.flatnonzero(returns >= level)
    if len(reached) == 0:
        return None
    step = steps[reached[0]]
    queries = comparisons_at(spec, np.array([step]))
    return float(step), float(queries[0]) if queries is not None else float("nan")


def _reach_cell(specs: Sequence[RunSpec], level: float) -> str:
    reached = [first_reach(spec, level) for spec in specs]
    hits = [r for r in reached if r is not None]
    if not hits:
        return f"not reached (0/{len(specs)})"
    queries = np.mean([r[1] for r in hits])
    steps = np.mean([r[0] for r in hits])
    return f"{queries:,.0f} queries, {steps:,.0f} steps ({len(hits)}/{len(specs)})"


def write_report(out: Path, algo: str, envs: Sequence[str], raters: Sequence[str], seeds: Sequence[int],
                 specs: dict[str, dict[Cell, RunSpec]], n_timesteps: int, *, comparisons: int,
                 levels: dict[str, float] | None = None) -> Path:
    """The table and the learning curves of whatever runs are finished."""
    lines = [
        f"# PARL vs reward-model preference RL ({algo.upper()}): true return at equal queries and env steps",
        "",
        f"{n_timesteps:,} env steps and a budget of {comparisons:,} rater queries per run; final true return = mean "
        "over 10 deterministic evaluation episodes of the hidden reward; mean +- std over seeds (population std). "
        "'To reach' = the rater queries and env steps used when a run's periodic evaluation first reached the level "
        "(mean over the seeds that reached it).",
        "",
        "| env | rater | PARL true return | RM true return | PARL - RM | queries (mean) | seeds | level "
        "| PARL to reach | RM to reach |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for env in envs:
        for rater in raters:
            pairs = [(specs["parl"].get((rater, env, s)), specs["rm"].get((rater, env, s))) for s in seeds]
            finished = [(a, b) for a, b in pairs
                        if final_return_and_comparisons(a) is not None and final_return_and_comparisons(b) is not None]
            label = RATER_LABELS.get(rater, rater)
            if not finished:
                lines.append(f"| {env} | {label} | - | - | - | - | 0 | - | - | - |")
                continue
            parl = [final_return_and_comparisons(a)[0] for a, _ in finished]
            rm = [final_return_and_comparisons(b)[0] for _, b in finished]
            queries = np.mean([final_return_and_comparisons(a)[1] for a, _ in finished])
            level = (levels or {}).get(env, 0.5 * max(np.mean(parl), np.mean(rm)))
            lines.append(
                f"| {env} | {label} | {format_mean_std(parl)} | {format_mean_std(rm)} | "
                f"{np.mean(parl) - np.mean(rm):+.1f} | {queries:,.0f} | {len(finished)} | {level:.1f} | "
                f"{_reach_cell([a for a, _ in finished], level)} | {_reach_cell([b for _, b in finished], level)} |"
            )
    _plot(out, envs, raters, seeds, specs)
    return write_readme(out, lines)


def _plot(out: Path, envs: Sequence[str], raters: Sequence[str], seeds: Sequence[int],
          specs: dict[str, dict[Cell, RunSpec]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(envs), 2 * len(raters), figsize=(4.2 * 2 * len(raters), 3.2 * len(envs)),
                                squeeze=False)
    for row, env in enumerate(envs):
        for k, rater in enumerate(raters):
            by_steps, by_queries = axes[row, 2 * k], axes[row, 2 * k + 1]
            for method, colour in (("parl", "tab:blue"), ("rm", "tab:orange")):
                for seed in seeds:
                    spec = specs[method].get((rater, env, seed))
                    curve = evaluation_curve(spec) if spec is not None and spec.done else None
                    if curve is None:
                        continue
                    steps, returns = curve
                    label = METHOD_NAMES[method] if seed == seeds[0] else None
                    by_steps.plot(steps, returns, color=colour, alpha=0.8, label=label)
                    queries = comparisons_at(spec, steps)
                    if queries is not None:
                        by_queries.plot(queries, returns, color=colour, alpha=0.8, label=label)
            title = f"{env}\n{RATER_LABELS.get(rater, rater)}"
            by_steps.set(title=title, xlabel="env steps", ylabel="true return")
            by_queries.set(title=title, xlabel="rater queries used")
            by_steps.title.set_fontsize(9)
            by_queries.title.set_fontsize(9)
            by_steps.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(out / "learning_curves.png", dpi=80)
    plt.close(figure)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m algos.parl_benchmark", description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", default="parl", help="results/<name>/ (default parl)")
    parser.add_argument("--algo", default="ppo", help="the RL algorithm both sides use (default ppo)")
    parser.add_argument("--envs", nargs="+",
                        default=["HopperTargetSpeed-v4", "HalfCheetahTargetSpeed-v4", "HopperBulletTargetSpeed-v0"])
    parser.add_argument("--raters", nargs="+", default=["bt", "noisy"], choices=sorted(RATER_LABELS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("-n", "--n-timesteps", type=int, default=200_000)
    parser.add_argument("--comparisons", type=int, default=1000, help="rater queries per run (both methods)")
    parser.add_argument("--query-interval", type=int, default=10_000, help="env steps between query rounds")
    parser.add_argument("--segment-length", type=int, default=50, help="steps per compared segment")
    parser.add_argument("--levels", nargs="*", default=[], metavar="ENV=RETURN",
                        help="the return level to count queries to, per env (default: half the better final return)")
    parser.add_argument("--eval-freq", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--results-root", default=RESULTS_ROOT)
    parser.add_argument("--logs-root", default=LOGS_ROOT)
    return parser


def _levels(items: Sequence[str]) -> dict[str, float]:
    levels = {}
    for item in items:
        env, _, value = item.partition("=")
        try:
            levels[env] = float(value)
        except ValueError:
            raise ValueError(f"--levels takes ENV=RETURN with a number, got {item!r}") from None
    return levels


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from rl.envs import UnknownEnvError, ensure_registered

    try:
        for name, value in (("-n", args.n_timesteps), ("--comparisons", args.comparisons),
                            ("--query-interval", args.query_interval), ("--segment-length", args.segment_length)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        levels = _levels(args.levels)
        for env in args.envs:
            ensure_registered(env)
    except (UnknownEnvError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    table = run(args.name, args.algo, args.envs, args.raters, args.seeds, args.n_timesteps,
                comparisons=args.comparisons, query_interval=args.query_interval, segment_length=args.segment_length,
                workers=args.workers, results_root=args.results_root, logs_root=args.logs_root,
                eval_freq=args.eval_freq, levels=levels)
    print(table.read_text())
    return 0


if __name__ == "__main__":
    from rl.interrupt import run_main

    sys.exit(run_main(main, "Rerun the same command to resume the benchmark (finished runs are not redone)."))
