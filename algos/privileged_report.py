"""How far each run of a privileged-curriculum benchmark got, when none succeeds without privileges.

The benchmark table (``rl.benchmark``) reports the success rate at level 0, which stays at zero when no variant
learns at the budget that fits this machine. Issue 23 asks then for how far each got; this module answers with
each finished run's final policy, evaluated again:

- at level 0 (no privileges, as the table): success rate, the highest point the object's lowest point reached
  above the table in each episode (the tasks' achieved goal; the target is ``LIFT_HEIGHT``) and its height at
  the end;
- at the level the run ended its training at (``run.json``'s ``privileged.final_level``): the same, plus the
  mean upward object force while the object is off the table, against the object's weight. A policy that lifts
  with the force alone needs more than its weight (``OBJECT_MASS * g``), so a success curriculum whose level
  stalls where the force drops below the weight shows a policy that never learnt to grasp.

    python -m algos.privileged_report --name privileged --episodes 20

reads ``results/<name>/runs/<arm>/<env>_seed<k>/run.json`` and the final models under
``logs/benchmarks/<name>/...`` (not committed), and writes ``results/<name>/analysis.md`` and
``results/<name>/levels.png`` (each run's privilege level over training).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from envs.lift_goal import LIFT_HEIGHT, OBJECT_MASS

GRAVITY = 9.81
OBJECT_WEIGHT = OBJECT_MASS * GRAVITY
"""Newtons the object force must exceed to lift the object alone."""
OFF_TABLE = 0.01
"""Metres of the object's lowest point above the table from which it counts as lifted (for the force average)."""
EPISODE_SEED = 10_000
"""Episode ``i`` resets with seed ``EPISODE_SEED + i``: other starts than the benchmark's own evaluations."""


@dataclass
class LiftStatistics:
    """What a policy does to the object over some episodes at one privilege level."""

    level: float
    episodes: int
    success_rate: float
    max_height: float
    """Mean over episodes of the highest the object's lowest point got above the table (metres)."""
    final_height: float
    """Mean height of the object's lowest point at the end of the episodes (metres)."""
    lifted_force: float | None
    """Mean upward object force (newtons) over the steps the object was off the table; None when it never was
    or at level 0."""


def lift_statistics(model: Any, env_id: str, options: Any, level: float, *, episodes: int,
                    normalizer: Any = None) -> LiftStatistics:
    """Run ``episodes`` deterministic episodes of ``model`` at ``level`` and measure the object's heights."""
    import gymnasium as gym

    from rl.envs import ensure_registered
    from sim2real import PrivilegedManipulation

    env = PrivilegedManipulation(gym.make(ensure_registered(env_id)), options.privileges, level=level,
                                 max_force=options.max_force)
    successes, highest, final, forces = [], [], [], []
    for episode in range(episodes):
        observation, _ = env.reset(seed=EPISODE_SEED + episode)
        heights, done, info = [], False, {}
        while not done:
            seen = normalizer.normalize_obs(observation) if normalizer is not None else observation
            action, _ = model.predict(seen, deterministic=True)
            observation, _, terminated, truncated, info = env.step(action)
            height = float(observation["achieved_goal"][0])
            heights.append(height)
            if height > OFF_TABLE and level > 0:
                forces.append(float(env.object_force[2]))
            done = terminated or truncated
        successes.append(bool(info.get("is_success", False)))
        highest.append(max(heights))
        final.append(heights[-1])
    env.close()
    return LiftStatistics(level=level, episodes=episodes, success_rate=float(np.mean(successes)),
                          max_height=float(np.mean(highest)), final_height=float(np.mean(final)),
                          lifted_force=float(np.mean(forces)) if forces else None)


@dataclass
class RunSummary:
    """One finished run: where its curriculum got and what its final policy does."""

    arm: str
    env: str
    seed: int
    steps: int
    final_level: float
    level_curve: list[list[Any]]
    best_eval_success: float
    """Best success rate of the periodic and final evaluations (level 0)."""
    at_level_0: LiftStatistics
    at_final_level: LiftStatistics | None
    """None when the run ended at level 0 (the ``none`` arm, or a curriculum that finished)."""


def _loading_env(env_id: str, options: Any) -> Any:
    """The task with the run's privilege channels, for ``load``: SB3 needs an env to load a HER replay buffer."""
    import gymnasium as gym
    from stable_baselines3.common.vec_env import DummyVecEnv

    from rl.envs import ensure_registered
    from sim2real import PrivilegedManipulation

    return DummyVecEnv([lambda: PrivilegedManipulation(gym.make(ensure_registered(env_id)), options.privileges,
                                                       level=0.0, max_force=options.max_force)])


def summarise_run(result_dir: Path, work_dir: Path, *, episodes: int) -> RunSummary:
    """Evaluate the final model of one finished benchmark run (``result_dir``: its committed folder)."""
    from algos.privileged import PrivilegedOptions
    from rl.checkpoint import load_normalization_stats
    from rl.registry import get_algo, parse_run_label

    record = json.loads((result_dir / "run.json").read_text())
    privileged = record["privileged"]
    options = PrivilegedOptions(**{key: privileged[key] for key in ("curriculum", "privileges", "max_force",
                                                                      "window", "threshold", "step", "fraction")})
    _, algo = parse_run_label(record["label"])
    model_path = work_dir / f"{record['env']}.zip"
    if not model_path.is_file():
        raise FileNotFoundError(f"{model_path}: the run's final model is not here (the benchmark's logs/ folder "
                                "is not committed): run the benchmark on this machine first.")
    model = get_algo(algo).load_class().load(model_path, env=_loading_env(record["env"], options), device="cpu")
    normalizer = load_normalization_stats(model_path)
    evaluations = np.load(result_dir / "evaluations.npz")
    successes = evaluations["successes"].mean(axis=1) if "successes" in evaluations else np.zeros(1)
    final_level = float(privileged["final_level"])
    at_zero = lift_statistics(model, record["env"], options, 0.0, episodes=episodes, normalizer=normalizer)
    at_final = (lift_statistics(model, record["env"], options, final_level, episodes=episodes, normalizer=normalizer)
                if final_level > 0 else None)
    return RunSummary(arm=record["label"], env=record["env"], seed=int(record["seed"]),
                      steps=int(record["num_timesteps"]), final_level=final_level,
                      level_curve=privileged["level_curve"], best_eval_success=float(np.max(successes)),
                      at_level_0=at_zero, at_final_level=at_final)


def _number(value: float, digits: int) -> str:
    """``value`` to ``digits`` decimals, a rounded negative zero written as 0."""
    return f"{round(float(value), digits) + 0.0:.{digits}f}"


def _mean_std(values: Sequence[float], digits: int) -> str:
    return f"{_number(np.mean(values), digits)} +- {_number(np.std(values), digits)}"


def _optional(value: float | None, digits: int) -> str:
    return "-" if value is None else _number(value, digits)


def render_analysis(summaries: Sequence[RunSummary], command: str, episodes: int) -> str:
    """The Markdown of ``analysis.md``: a row per task and arm (mean +- std over seeds) and one row per run."""
    groups = list(dict.fromkeys((summary.env, summary.arm) for summary in summaries))
    lines = [
        "# How far each run got", "",
        f"Each finished run's final policy, evaluated again over {episodes} deterministic episodes (reset seeds "
        f"{EPISODE_SEED}...) at level 0 and at the level its training ended at. Heights are of the object's lowest "
        f"point above the table (the target is {LIFT_HEIGHT} m); the force is the mean upward object force while "
        f"the object is more than {OFF_TABLE} m off the table, against its weight ({OBJECT_WEIGHT:.1f} N: at a "
        "level whose full force is below it, the force alone cannot lift the object).", "",
        f"Command: `{command}`", "",
        "| task | arm | runs | final level | best eval success (level 0) | max height at level 0 (m) | "
        "success at final level | max height at final level (m) | upward force at final level (N) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for env, arm in groups:
        runs = [summary for summary in summaries if (summary.env, summary.arm) == (env, arm)]
        trained = [run.at_final_level for run in runs if run.at_final_level is not None]
        forces = [stats.lifted_force for stats in trained if stats.lifted_force is not None]
        lines.append(
            f"| {env} | {arm} | {len(runs)} | {_mean_std([run.final_level for run in runs], 2)} | "
            f"{_mean_std([run.best_eval_success for run in runs], 2)} | "
            f"{_mean_std([run.at_level_0.max_height for run in runs], 3)} | "
            + (f"{_mean_std([stats.success_rate for stats in trained], 2)} | "
               f"{_mean_std([stats.max_height for stats in trained], 3)} | " if trained else "- | - | ")
            + (f"{_mean_std(forces, 1)} |" if forces else "- |"))
    lines += ["", "## Runs", "",
              "| task | arm | seed | env steps | level curve (steps: level) | success / max height at level 0 | "
              "success / max height / force at final level |", "|---|---|---|---|---|---|---|"]
    for run in summaries:
        curve = ", ".join(f"{int(point[0])}: {point[1]:.1f}" for point in run.level_curve)
        final = run.at_final_level
        lines.append(
            f"| {run.env} | {run.arm} | {run.seed} | {run.steps} | {curve} | {run.at_level_0.success_rate:.2f} / "
            f"{_number(run.at_level_0.max_height, 3)} | "
            + ("-" if final is None else f"{final.success_rate:.2f} / {_number(final.max_height, 3)} / "
                                         f"{_optional(final.lifted_force, 1)}") + " |")
    return "\n".join(lines) + "\n"


def plot_level_curves(summaries: Sequence[RunSummary], path: Path) -> None:
    """Every run's privilege level over training (a step plot per run, one colour per arm, a panel per task)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = list(dict.fromkeys(summary.env for summary in summaries))
    figure, axes = plt.subplots(1, len(envs), figsize=(7 * len(envs), 3.5), squeeze=False)
    arms = list(dict.fromkeys(summary.arm for summary in summaries))
    colours = dict(zip(arms, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for axis, env in zip(axes[0], envs):
        runs = [run for run in summaries if run.env == env]
        for run in runs:
            steps = [point[0] for point in run.level_curve] + [run.steps]
            levels = [point[1] for point in run.level_curve] + [run.level_curve[-1][1]]
            offset = 0.01 * (run.seed - 1)  # keeps overlapping seeds apart
            axis.step(steps, np.asarray(levels) + offset, where="post", color=colours[run.arm], alpha=0.8,
                      label=run.arm if run.seed == min(r.seed for r in runs if r.arm == run.arm) else None)
        axis.axhline(OBJECT_WEIGHT / 10.0, color="grey", linestyle=":",
                     label="level whose full force = weight (10 N max)")
        axis.set(title=env, xlabel="env steps", ylabel="privilege level", ylim=(-0.05, 1.08))
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8, loc="best")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def analyse(name: str, *, episodes: int = 20, results_root: str | None = None, logs_root: str | None = None,
            command: str | None = None) -> Path:
    """Summarise every finished run of benchmark ``name``; returns the path of ``analysis.md``."""
    from rl.benchmark import LOGS_ROOT, RESULTS_ROOT

    results = Path(results_root or RESULTS_ROOT) / name
    logs = Path(logs_root or LOGS_ROOT) / name
    records = sorted((results / "runs").glob("*/*/run.json"))
    if not records:
        raise FileNotFoundError(f"{results / 'runs'} has no finished runs: run the benchmark first.")
    summaries = [summarise_run(record.parent, logs / record.parent.parent.name / record.parent.name,
                               episodes=episodes) for record in records]
    summaries.sort(key=lambda run: (run.env, run.arm, run.seed))
    command = command or shlex.join(["python", "-m", "algos.privileged_report", "--name", name,
                                     "--episodes", str(episodes)])
    (results / "analysis.md").write_text(render_analysis(summaries, command, episodes))
    (results / "analysis.json").write_text(json.dumps([asdict(run) for run in summaries], indent=1))
    plot_level_curves(summaries, results / "levels.png")
    return results / "analysis.md"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m algos.privileged_report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True, help="the benchmark: results/<name>/ and logs/benchmarks/<name>/")
    parser.add_argument("--episodes", type=int, default=20, help="episodes per evaluation")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.exit(2, f"error: --episodes must be >= 1, got {args.episodes}.\n")
    try:
        path = analyse(args.name, episodes=args.episodes)
    except FileNotFoundError as error:
        parser.exit(2, f"error: {error}\n")
    print(path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
