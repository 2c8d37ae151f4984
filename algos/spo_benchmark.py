"""SPO benchmark: SPO against a Bradley-Terry reward model + the same RL algorithm, at equal env steps and
equal comparisons, under transitive, noisy and intransitive raters.

    python -m algos.spo_benchmark --envs Hopper-v4 HalfCheetah-v4 HopperBulletEnv-v0 \\
        --raters bt noisy intransitive --seeds 0 1 2 -n 150000

Each (rater, env, seed) runs ``spo_<algo>@<rater>`` first; its run records how many comparisons it used, and
``rm_<algo>@<rater>`` of the same (rater, env, seed) then gets exactly that budget (:mod:`algos.rm`). Runs go
through :mod:`rl.benchmark` (one process each, two at a time, resumable from their checkpoints; finished runs
are kept under ``results/<name>/runs/`` and not redone). Raters: ``bt`` = transitive (the larger true return
wins, Bradley-Terry at temperature 0), ``noisy`` = that with labels flipped with probability 0.1 (B-Pref's
"mistake" rater), ``intransitive`` = the majority of one voter per reward term of
:class:`rl.preferences.RewardTermsInInfo` (Hopper: forward, control, survival; HalfCheetah: forward, control
of the back leg, of the front leg; PyBullet: its five terms), each preferring the larger return of its term.
On random-policy trajectories that majority disagrees with the true return on 25-57% of pairs and has
3-cycles; voters that each leave one term out, or weigh one term up, agreed with it on (nearly) all pairs and
were not used.

Writes ``results/<name>/README.md`` (table: final true return, mean +- std over seeds, and comparisons used),
``learning_curves.png`` (true return against env steps and against comparisons used), ``command.txt``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rl.benchmark import LOGS_ROOT, RESULTS_ROOT, ProcessBackend, RunSpec, execute, folder_name, format_mean_std
from rl.preferences.benchmark_runs import (
    comparisons_at,
    evaluation_curve,
    final_return_and_comparisons,
    finished_record,
    run_spec,
    write_readme,
)
from rl.run_record import command_line

RATER_LABELS = {
    "bt": "transitive (BT, T=0)", "noisy": "noisy (10% flips)", "intransitive": "intransitive (majority of terms)"
}


IMITATION_FRAGMENT_LENGTH = {"Hopper-v4": 25, "HopperBulletEnv-v0": 25}
"""imitation's fragment_length where its default 100 cannot start: an untrained hopper's episodes are shorter
(median 17 steps on Hopper-v4; no fragment can be cut and imitation stops). Elsewhere imitation's own 100."""


def imitation_dir(results_root: str, name: str, rater: str, env: str, seed: int) -> Path:
    return Path(results_root) / name / "runs" / f"imitation_pc@{rater}" / f"{folder_name(env)}_seed{seed}"


def run_imitation(cells: Sequence[tuple[str, str, int]], budgets: dict[tuple[str, str, int], int], n_timesteps: int, *,
                  name: str, results_root: str, workers: int) -> None:
    """imitation's PreferenceComparisons on each cell, with the SPO run's comparisons, in imitation's own venv."""
    from concurrent.futures import ThreadPoolExecutor

    from rl.external.imitation_baseline import run_imitation_preference_baseline

    def one(cell: tuple[str, str, int]) -> None:
        rater, env, seed = cell
        overrides = {"fragment_length": IMITATION_FRAGMENT_LENGTH[env]} if env in IMITATION_FRAGMENT_LENGTH else None
        try:
            run_imitation_preference_baseline(
                env, rater, n_timesteps, budgets[cell], seed, imitation_dir(results_root, name, rater, env, seed),
                rater_kwargs={"temperature": 0.0} if rater == "bt" else None,
                reward_terms_wrapper=rater == "intransitive", overrides=overrides,
            )
        except Exception as error:  # one failed baseline must not stop the others; the table shows it missing
            print(f"imitation failed: {rater} {env} seed {seed}: {error}", file=sys.stderr)

    with ThreadPoolExecutor(max_workers=workers) as pool:  # each run is a subprocess: threads only wait
        list(pool.map(one, [cell for cell in cells if cell in budgets]))


def _imitation_final(results_root: str, name: str, cell: tuple[str, str, int]) -> float | None:
    path = imitation_dir(results_root, name, *cell) / "imitation_pc.json"
    if not path.is_file():
        return None
    return float(json.loads(path.read_text())["final"]["true_return_mean"])


def run(
    name: str, algo: str, envs: Sequence[str], raters: Sequence[str], seeds: Sequence[int], n_timesteps: int, *,
    workers: int = 2, results_root: str = RESULTS_ROOT, logs_root: str = LOGS_ROOT, eval_freq: int = 10_000,
    extra_hyperparams: dict[str, Any] | None = None, imitation_seeds: Sequence[int] = (),
    phases: Sequence[str] = ("spo", "rm", "imitation"),
) -> Path:
    """Run every unfinished SPO run, then every reward-model run whose SPO partner is done; write the report."""
    command = command_line()
    out = Path(results_root) / name
    out.mkdir(parents=True, exist_ok=True)
    (out / "command.txt").write_text(command + "\n")
    common = dict(results_root=results_root, logs_root=logs_root, command=command, eval_freq=eval_freq)
    extra = dict(extra_hyperparams or {})
    cells = [(rater, env, seed) for seed in seeds for env in envs for rater in raters]
    spo = {cell: run_spec(name, f"spo_{algo}@{cell[0]}", cell[1], cell[2], n_timesteps,
                          {**extra, "spo_rater": cell[0]}, **common) for cell in cells}
    rm: dict[tuple[str, str, int], RunSpec] = {}
    backend = ProcessBackend(workers)
    for seed in seeds:  # seed by seed, so that a cut-short benchmark has whole seeds
        for phase in ("spo", "rm"):
            if phase not in phases:
                continue
            if phase == "rm":
                for cell, spec in spo.items():
                    record = finished_record(spec)
                    if cell[2] == seed and record is not None:
                        budget = int(record["spo"]["comparisons_used"])
                        rm[cell] = run_spec(name, f"rm_{algo}@{cell[0]}", cell[1], seed, n_timesteps,
                                         {**extra, "rm_rater": cell[0], "rm_total_comparisons": budget}, **common)
            specs = spo if phase == "spo" else rm
            todo = [spec for cell, spec in specs.items() if cell[2] == seed and not spec.done]
            for outcome in backend.run_all(todo, execute):
                if "error" in outcome:
                    print(f"run failed: {outcome['spec']['algo']} {outcome['spec']['env']}\n{outcome['error']}",
                          file=sys.stderr)
            write_report(out, algo, envs, raters, seeds, spo, rm, n_timesteps, results_root=results_root, name=name)
        if seed in imitation_seeds and "imitation" in phases:
            cells = [cell for cell in spo if cell[2] == seed]
            budgets = {cell: int(finished_record(spo[cell])["spo"]["comparisons_used"]) for cell in cells
                       if finished_record(spo[cell]) is not None}
            run_imitation(cells, budgets, n_timesteps, name=name, results_root=results_root, workers=workers)
            write_report(out, algo, envs, raters, seeds, spo, rm, n_timesteps, results_root=results_root, name=name)
    return write_report(out, algo, envs, raters, seeds, spo, rm, n_timesteps, results_root=results_root, name=name)


def write_report(
    out: Path, algo: str, envs: Sequence[str], raters: Sequence[str], seeds: Sequence[int],
    spo: dict[tuple[str, str, int], RunSpec], rm: dict[tuple[str, str, int], RunSpec], n_timesteps: int, *,
    results_root: str = RESULTS_ROOT, name: str = "spo",
) -> Path:
    """The table and the learning curves of whatever runs are finished."""
    lines = [
        f"# SPO vs reward model + {algo.upper()}: true return at equal env steps and comparisons",
        "",
        f"{n_timesteps:,} env steps per run; final true return = mean over 10 deterministic evaluation episodes; "
        "mean +- std over seeds (population std); comparisons = rater queries (SPO: one per opponent per finished "
        "trajectory, plus prefix queries at rollout ends; the reward model got the same number, queried in rounds).",
        "",
        "| env | rater | SPO true return | reward model true return | SPO - RM | comparisons (mean) | seeds | "
        "imitation PC true return (seeds) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for env in envs:
        for rater in raters:
            pairs = [(final_return_and_comparisons(spo.get((rater, env, s))),
                      final_return_and_comparisons(rm.get((rater, env, s)))) for s in seeds]
            done = [(a, b) for a, b in pairs if a is not None and b is not None]
            spo_returns = [a[0] for a, _ in done]
            rm_returns = [b[0] for _, b in done]
            finals = (_imitation_final(results_root, name, (rater, env, s)) for s in seeds)
            imitation = [v for v in finals if v is not None]
            imitation_cell = f"{format_mean_std(imitation)} ({len(imitation)})" if imitation else "-"
            if not done:
                lines.append(f"| {env} | {RATER_LABELS.get(rater, rater)} | - | - | - | - | 0 | {imitation_cell} |")
                continue
            difference = float(np.mean(spo_returns) - np.mean(rm_returns))
            comparisons = np.mean([a[1] for a, _ in done])
            lines.append(
                f"| {env} | {RATER_LABELS.get(rater, rater)} | {format_mean_std(spo_returns)} | "
                f"{format_mean_std(rm_returns)} | {difference:+.1f} | {comparisons:,.0f} | {len(done)} | "
                f"{imitation_cell} |"
            )
    _plot(out, envs, raters, seeds, spo, rm)
    return write_readme(out, lines)


def _plot(out: Path, envs: Sequence[str], raters: Sequence[str], seeds: Sequence[int],
          spo: dict[tuple[str, str, int], RunSpec], rm: dict[tuple[str, str, int], RunSpec]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(envs), 2 * len(raters), figsize=(4.2 * 2 * len(raters), 3.2 * len(envs)),
                                squeeze=False)
    for row, env in enumerate(envs):
        for k, rater in enumerate(raters):
            for method, specs, colour in (("SPO", spo, "tab:blue"), ("reward model", rm, "tab:orange")):
                for seed in seeds:
                    spec = specs.get((rater, env, seed))
                    curve = evaluation_curve(spec) if spec is not None and spec.done else None
                    if curve is None:
                        continue
                    steps, returns = curve
                    label = method if seed == seeds[0] else None
                    axes[row, 2 * k].plot(steps, returns, color=colour, alpha=0.8, label=label)
                    comparisons = comparisons_at(spec, steps)
                    if comparisons is not None:
                        axes[row, 2 * k + 1].plot(comparisons, returns, color=colour, alpha=0.8, label=label)
            for seed in seeds:
                path = imitation_dir(str(out.parents[0]), out.name, rater, env, seed) / "imitation_pc.json"
                if path.is_file():
                    curve = json.loads(path.read_text())["curve"]
                    label = "imitation PC" if seed == seeds[0] else None
                    returns = [point["true_return_mean"] for point in curve]
                    axes[row, 2 * k].plot([p["env_steps"] for p in curve], returns, color="tab:green", alpha=0.8,
                                          label=label)
                    axes[row, 2 * k + 1].plot([p["comparisons"] for p in curve], returns, color="tab:green", alpha=0.8,
                                              label=label)
            axes[row, 2 * k].set_title(f"{env}\n{RATER_LABELS.get(rater, rater)}", fontsize=9)
            axes[row, 2 * k].set_xlabel("env steps")
            axes[row, 2 * k + 1].set_title(f"{env}\n{RATER_LABELS.get(rater, rater)}", fontsize=9)
            axes[row, 2 * k + 1].set_xlabel("comparisons used")
            axes[row, 2 * k].set_ylabel("true return")
            axes[row, 2 * k].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(out / "learning_curves.png", dpi=80)
    plt.close(figure)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m algos.spo_benchmark", description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", default="spo", help="results/<name>/ (default spo)")
    parser.add_argument("--algo", default="ppo", help="the RL algorithm both sides use (default ppo)")
    parser.add_argument("--envs", nargs="+", default=["Hopper-v4", "HalfCheetah-v4", "HopperBulletEnv-v0"])
    parser.add_argument("--raters", nargs="+", default=["bt", "noisy", "intransitive"], choices=sorted(RATER_LABELS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("-n", "--n-timesteps", type=int, default=150_000)
    parser.add_argument("--eval-freq", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--phases", nargs="+", choices=["spo", "rm", "imitation"], default=["spo", "rm", "imitation"],
                        help="which side to run (e.g. imitation alone, beside a running invocation of the others)")
    parser.add_argument("--imitation-seeds", nargs="*", type=int, default=[],
                        help="also run imitation's PreferenceComparisons (own venv) for these seeds")
    parser.add_argument("--results-root", default=RESULTS_ROOT)
    parser.add_argument("--logs-root", default=LOGS_ROOT)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.n_timesteps < 1:
        print(f"error: -n must be >= 1, got {args.n_timesteps}", file=sys.stderr)
        return 2
    from rl.envs import UnknownEnvError, ensure_registered

    try:
        for env in args.envs:
            ensure_registered(env)
    except UnknownEnvError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    table = run(args.name, args.algo, args.envs, args.raters, args.seeds, args.n_timesteps, workers=args.workers,
                results_root=args.results_root, logs_root=args.logs_root, eval_freq=args.eval_freq,
                imitation_seeds=args.imitation_seeds, phases=args.phases)
    print(table.read_text())
    return 0


if __name__ == "__main__":
    from rl.interrupt import run_main

    sys.exit(run_main(main, "Rerun the same command to resume the benchmark (finished runs are not redone)."))
