"""Run folders shared by every QD algorithm: progress bar, atomic checkpoints and resume, pictures,
``metrics.json``, and the command line ``python -m qd.<algo> --env <id> --budget <n>``.

A run folder ``<log_folder>/<algo>/<env>_<n>/`` holds ``config.json`` (written first), ``checkpoint.pkl``
(replaced atomically every ``save_freq`` evaluations and at the end), and at the end ``metrics.json``,
``coverage_map.png``, ``reward_areas.png`` and ``curves.png``.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import importlib.metadata
import inspect
import os
import pickle
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qd.base import QDAlgorithm
from qd.evaluation import Evaluator, NotAQDTaskError, ProcessPoolEvaluator, SerialEvaluator
from rl.checkpoint import write_pickle_atomic

CHECKPOINT_FILE = "checkpoint.pkl"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
PICTURES = ("coverage_map.png", "reward_areas.png", "curves.png")
_NOT_HYPERPARAMS = {"self", "env_id", "seed", "evaluator"}


def load_checkpoint(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint of a run folder: ``{"algorithm", "config", "state"}``.

    Raises:
        rl.checkpoint.CheckpointError: when the folder has no checkpoint or it cannot be read.
    """
    from rl.checkpoint import CheckpointError

    path = Path(run_dir) / CHECKPOINT_FILE
    if not path.is_file():
        raise CheckpointError(f"No QD checkpoint in {run_dir!s} (expected {CHECKPOINT_FILE}).")
    try:
        with open(path, "rb") as handle:
            return pickle.load(handle)
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as error:
        raise CheckpointError(f"Cannot read {path}: {error}") from error


def make_evaluator(env_id: str, workers: int) -> Evaluator:
    """Serial evaluator for one worker, a process pool otherwise."""
    return SerialEvaluator(env_id) if workers <= 1 else ProcessPoolEvaluator(env_id, workers)


def hyperparameter_names(algo_class: type[QDAlgorithm]) -> list[str]:
    """Keyword arguments of the algorithm's constructor that ``-params`` may set."""
    parameters = inspect.signature(algo_class.__init__).parameters
    return [name for name, p in parameters.items() if name not in _NOT_HYPERPARAMS
            and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


def check_hyperparams(algo_class: type[QDAlgorithm], params: dict[str, Any]) -> None:
    """Refuse ``-params`` keys the algorithm does not take, naming the closest valid ones.

    Raises:
        rl.hyperparams.HyperparameterError: for an unknown key.
    """
    from rl.hyperparams import HyperparameterError

    valid = hyperparameter_names(algo_class)
    for key in params:
        if key not in valid:
            close = difflib.get_close_matches(key, valid, n=3)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise HyperparameterError(f"Unknown hyperparameter {key!r} for {algo_class.name}.{hint} "
                                      f"Valid keys: {', '.join(valid)}.")


class QDRun:
    """Runs an algorithm into a run folder, checkpointing as it goes.

    Args:
        algorithm: The algorithm (fresh, or restored with :meth:`resume`).
        run_dir: The run folder (created when missing).
        config: What built the run (algorithm, env, seed, hyperparameters, ...); saved with checkpoints.
        save_freq: Checkpoint every this many evaluations (<= 0: only at the end).
        progress: Show a tqdm bar over evaluations.
    """

    def __init__(self, algorithm: QDAlgorithm, run_dir: str | os.PathLike, *, config: dict[str, Any] | None = None,
                 save_freq: int = 10_000, progress: bool = True) -> None:
        self.algorithm = algorithm
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.config = dict(config or {})
        self.save_freq = int(save_freq)
        self.progress = progress

    @classmethod
    def resume(cls, run_dir: str | os.PathLike, *, evaluator: Evaluator | None = None, save_freq: int = 10_000,
               progress: bool = True) -> QDRun:
        """Rebuild the algorithm of a run folder from its checkpoint, ready to continue.

        Raises:
            rl.checkpoint.CheckpointError: when the folder has no readable checkpoint.
        """
        checkpoint = load_checkpoint(run_dir)
        module, _, qualname = checkpoint["algorithm"].rpartition(".")
        algo_class = getattr(importlib.import_module(module), qualname)
        config = checkpoint["config"]
        algorithm = algo_class(config["env"], seed=config["seed"], evaluator=evaluator, **config["hyperparams"])
        algorithm.load_state_dict(checkpoint["state"])
        return cls(algorithm, run_dir, config=config, save_freq=save_freq, progress=progress)

    def save_checkpoint(self) -> Path:
        """Write ``checkpoint.pkl`` atomically and return its path."""
        path = self.run_dir / CHECKPOINT_FILE
        algo_class = type(self.algorithm)
        write_pickle_atomic(path, {"algorithm": f"{algo_class.__module__}.{algo_class.__qualname__}",
                                   "config": self.config, "state": self.algorithm.state_dict()})
        return path

    def run(self, budget: int) -> dict[str, Any]:
        """Run to ``budget`` evaluations in total, then write metrics and pictures; returns the metrics."""
        from tqdm.auto import tqdm

        from rl.checkpoint import write_json_atomic

        self.config["budget"] = int(budget)
        write_json_atomic(self.run_dir / CONFIG_FILE, self.config)
        algorithm = self.algorithm
        bar = tqdm(total=budget, initial=min(algorithm.evaluations, budget), unit="eval", disable=not self.progress,
                   desc=f"{algorithm.name} {algorithm.env_id}")
        last_saved = [algorithm.evaluations]

        def after_generation(algo: QDAlgorithm) -> None:
            bar.update(min(algo.evaluations, budget) - bar.n)
            bar.set_postfix(coverage=f"{algo.metrics.coverage:.3f}", areas=len(algo.metrics.reward_areas_found))
            if self.save_freq > 0 and algo.evaluations // self.save_freq > last_saved[0] // self.save_freq:
                self.save_checkpoint()
                last_saved[0] = algo.evaluations

        try:
            algorithm.run(budget, callback=after_generation)
        finally:
            bar.close()
        self.save_checkpoint()
        return self.write_outputs()

    def write_outputs(self) -> dict[str, Any]:
        """``metrics.json`` and the three pictures; returns what ``metrics.json`` holds."""
        from rl.checkpoint import write_json_atomic
        from rl.run_record import command_line, package_versions

        metrics = self.algorithm.metrics
        versions = package_versions()
        try:
            versions["ribs"] = importlib.metadata.version("ribs")
        except importlib.metadata.PackageNotFoundError:
            versions["ribs"] = "not installed"
        data = {**metrics.as_dict(), "config": self.config, "generations": self.algorithm.generation,
                "command": self.config.get("command", command_line()), "versions": versions}
        write_json_atomic(self.run_dir / METRICS_FILE, data)
        save_pictures(self.algorithm, self.run_dir)
        return data


def save_pictures(algorithm: QDAlgorithm, run_dir: str | os.PathLike) -> list[Path]:
    """``coverage_map.png`` (visits per outcome cell), ``reward_areas.png`` (outcomes coloured by reward
    area) and ``curves.png`` (coverage and best reward against evaluations)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    metrics = algorithm.metrics
    (x_low, x_high), (y_low, y_high) = metrics.grid.bounds[:2]
    title = f"{algorithm.name} on {algorithm.env_id}, {metrics.evaluations} evaluations"
    paths = [run_dir / name for name in PICTURES]

    fig, ax = plt.subplots(figsize=(5, 4.5))
    counts = np.ma.masked_equal(metrics.grid.counts.T, 0)
    image = ax.imshow(np.ma.log10(counts), origin="lower", extent=(x_low, x_high, y_low, y_high), aspect="auto",
                      cmap="viridis")
    fig.colorbar(image, ax=ax, label="log10 outcomes per cell")
    ax.set(title=f"{title}\ncoverage {metrics.coverage:.3f}", xlabel="outcome x", ylabel="outcome y")
    fig.tight_layout()
    fig.savefig(paths[0], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 4.5))
    outcomes, areas = metrics.outcomes, metrics.outcome_areas
    none = areas < 0
    ax.scatter(outcomes[none, 0], outcomes[none, 1], s=2, c="lightgrey", label="no reward")
    for area, name in enumerate(metrics.reward_areas):
        hit = areas == area
        if hit.any():
            ax.scatter(outcomes[hit, 0], outcomes[hit, 1], s=4, label=name)
    ax.set(xlim=(x_low, x_high), ylim=(y_low, y_high), title=title, xlabel="outcome x", ylabel="outcome y")
    ax.legend(loc="best", fontsize="small", markerscale=3)
    fig.tight_layout()
    fig.savefig(paths[1], dpi=100)
    plt.close(fig)

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    evaluations = [row["evaluations"] for row in metrics.history]
    left.plot(evaluations, [row["coverage"] for row in metrics.history])
    left.set(xlabel="evaluations", ylabel="coverage (50x50 grid)")
    best = [np.nan if row["best_reward"] is None else row["best_reward"] for row in metrics.history]
    right.plot(evaluations, best)
    right.set(xlabel="evaluations", ylabel="best reward")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(paths[2], dpi=100)
    plt.close(fig)
    return paths


def build_parser(name: str) -> argparse.ArgumentParser:
    """The parser of ``python -m qd.<name>``."""
    parser = argparse.ArgumentParser(prog=f"python -m qd.{name}",
                                     description="Run a quality-diversity algorithm into a run folder "
                                                 "(<log-folder>/<algo>/<env>_<n>/).")
    parser.add_argument("--env", default=None, help="QD task id: RedundantArm-v0, HardMaze-v0, Curling-v0, AntMaze-v0")
    parser.add_argument("--budget", type=int, default=50_000, help="total evaluations")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("-f", "--log-folder", default="logs", help="root of the run folders")
    parser.add_argument("--workers", type=int, default=1, help="evaluation processes (1: serial)")
    parser.add_argument("--save-freq", type=int, default=10_000, help="checkpoint every n evaluations (-1: end only)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--resume", default=None, metavar="RUN_DIR",
                        help="continue the run in RUN_DIR from its checkpoint up to --budget evaluations")
    parser.add_argument("-params", "--hyperparams", nargs="+", default=None, metavar="KEY:VALUE",
                        help="constructor arguments of the algorithm, e.g. pop_size:50 mutation_sigma:0.1")
    return parser


def _user_errors() -> tuple[type[Exception], ...]:
    from rl.checkpoint import CheckpointError
    from rl.envs import UnknownEnvError
    from rl.hyperparams import HyperparameterError

    return (UnknownEnvError, HyperparameterError, NotAQDTaskError, CheckpointError)


def run_from_args(algo_class: type[QDAlgorithm], args: argparse.Namespace, command: str) -> QDRun:
    """Build (or resume) the run the parsed flags describe; the CLI's only logic."""
    from rl.hyperparams import parse_overrides
    from rl.runner import next_run_dir

    workers = max(1, int(args.workers))
    progress = not args.no_progress
    if args.resume:
        checkpoint_env = load_checkpoint(args.resume)["config"]["env"]
        return QDRun.resume(args.resume, evaluator=make_evaluator(checkpoint_env, workers),
                            save_freq=args.save_freq, progress=progress)
    if not args.env:
        raise SystemExit(f"python -m qd.{algo_class.name}: error: --env is required (unless --resume)")
    params = parse_overrides(args.hyperparams)
    check_hyperparams(algo_class, params)
    algorithm = algo_class(args.env, seed=args.seed, evaluator=make_evaluator(args.env, workers), **params)
    config = {"algo": algo_class.name, "env": args.env, "seed": args.seed, "workers": workers,
              "hyperparams": params, "command": command}
    run_dir = next_run_dir(args.log_folder, algo_class.name, args.env)
    return QDRun(algorithm, run_dir, config=config, save_freq=args.save_freq, progress=progress)


def main(algo_class: type[QDAlgorithm], argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m qd.<algo>``: user errors print one line and exit with status 2."""
    args = build_parser(algo_class.name).parse_args(argv)
    command = shlex.join(["python", "-m", f"qd.{algo_class.name}", *(sys.argv[1:] if argv is None else argv)])
    run = None
    try:
        run = run_from_args(algo_class, args, command)
        run.run(args.budget)
    except _user_errors() as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        if run is not None:
            run.algorithm.close()
    print(f"run folder: {run.run_dir}")
    return 0
