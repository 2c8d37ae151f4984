"""Learning-curve pictures for a run folder and for a benchmark."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from stable_baselines3.common.monitor import load_results  # noqa: E402
from stable_baselines3.common.results_plotter import X_TIMESTEPS, ts2xy, window_func  # noqa: E402

from rl.evaluation import EVALUATIONS_FILE  # noqa: E402

SMOOTHING_WINDOW = 20


def _steps_axis(ax: plt.Axes) -> None:
    """Env steps in thousands (k) or millions (M), so long tick labels do not run into each other."""
    def label(x: float, _: int) -> str:
        return f"{x / 1e6:g}M" if abs(x) >= 1e6 else f"{x / 1e3:g}k" if abs(x) >= 1e3 else f"{x:g}"

    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(label))
    ax.set_xlabel("env steps")


def plot_run(
    run_dir: str, title: str, path: str | None = None, *, offline_steps: int = 0, stochastic_eval: bool = False
) -> str:
    """Plot training-episode returns (from the monitor CSVs) and evaluation returns of one run.

    ``offline_steps`` > 0: the run first took that many gradient steps on a dataset (the x axis counts
    them, then env steps); online episodes are shifted past them and a line marks where online starts.
    ``stochastic_eval``: the evaluations sampled the policy (the legend says so).
    """
    path = path or os.path.join(run_dir, "learning_curve.png")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    try:
        monitor = load_results(run_dir)
    except Exception:  # no monitor file yet (a run that has not finished an episode)
        monitor = None
    if monitor is not None and len(monitor):
        steps, returns = ts2xy(monitor.sort_values("t"), X_TIMESTEPS)
        steps = steps + offline_steps
        ax.plot(steps, returns, color="tab:blue", alpha=0.2, lw=0.8)
        if len(returns) >= SMOOTHING_WINDOW:
            ax.plot(*window_func(steps, returns, SMOOTHING_WINDOW, np.mean), color="tab:blue",
                    label=f"training episodes ({SMOOTHING_WINDOW}-episode mean)")
    eval_path = os.path.join(run_dir, EVALUATIONS_FILE)
    if os.path.isfile(eval_path):
        data = np.load(eval_path)
        if len(data["timesteps"]):
            mean, std = data["results"].mean(axis=1), data["results"].std(axis=1)
            policy = "sampled policy" if stochastic_eval else "deterministic"
            ax.plot(data["timesteps"], mean, "o-", color="tab:orange", label=f"evaluation ({policy})")
            ax.fill_between(data["timesteps"], mean - std, mean + std, color="tab:orange", alpha=0.2)
    _steps_axis(ax)
    if offline_steps > 0:
        ax.axvline(offline_steps, color="gray", ls="--", lw=1, label="online fine-tuning starts")
        ax.set_xlabel("offline gradient steps, then env steps")
    ax.set_ylabel("episode return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_benchmark(
    curves: Mapping[str, Mapping[str, Sequence[tuple[np.ndarray, np.ndarray]]]],
    path: str,
    title: str,
    *,
    x_label: str = "env steps",
    online_from: int | None = None,
) -> str:
    """One panel per env: mean +- std over seeds of the evaluation return of each algorithm.

    Args:
        curves: ``curves[env][algo]`` is a list (one per seed) of (timesteps, mean eval return).
        path: where to write the PNG.
        title: figure title.
        x_label: what the steps count (offline benchmarks: gradient steps).
        online_from: offline-to-online benchmarks: the step where online fine-tuning starts (a dashed line).
    """
    envs = list(curves)
    fig, axes = plt.subplots(1, len(envs), figsize=(5.2 * len(envs), 4.2), squeeze=False)
    for ax, env_id in zip(axes[0], envs):
        for algo, runs in curves[env_id].items():
            runs = [r for r in runs if len(r[0])]
            if not runs:
                continue
            length = min(len(r[0]) for r in runs)
            steps = runs[0][0][:length]
            values = np.stack([r[1][:length] for r in runs])
            mean, std = values.mean(axis=0), values.std(axis=0)
            (line,) = ax.plot(steps, mean, label=f"{algo} ({len(runs)} seeds)")
            ax.fill_between(steps, mean - std, mean + std, color=line.get_color(), alpha=0.2)
        if online_from is not None:
            ax.axvline(online_from, color="gray", ls="--", lw=1, label="online fine-tuning starts")
        ax.set_title(env_id)
        _steps_axis(ax)
        ax.set_xlabel(x_label)
        ax.set_ylabel("evaluation return")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best", fontsize=8)
    fig.suptitle(title, wrap=True)  # wrapped to the figure: one panel is narrower than a long title
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
