"""Run folders shared by every QD algorithm: progress bar, atomic checkpoints and resume, pictures,
``metrics.json``, and the command line ``python -m qd.<algo> --env <id> --budget <n>``.

A run folder ``<log_folder>/<algo>/<env>_<n>/`` holds ``config.json`` (written first), ``checkpoint.pkl``
(replaced atomically every ``save_freq`` evaluations, at the end, and at the first generation boundary after
Ctrl-C), and at the end ``metrics.json``, ``coverage_map.png``, ``reward_areas.png`` and ``curves.png``. Every
metric is read at exactly the budget (:meth:`qd.metrics.RunMetrics.at`), although the last generation may go
past it; ``metrics.json`` records the evaluations actually spent as ``evaluations_spent``.

Command-line errors (a bad flag or ``-params`` value, a resume with other inputs) print one line naming the
problem and the fix and exit with status 2, leaving no new run folder behind.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import importlib.metadata
import inspect
import math
import os
import shlex
import shutil
import sys
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qd.base import QDAlgorithm
from qd.evaluation import Evaluator, NotAQDTaskError, ProcessPoolEvaluator, SerialEvaluator, make_task_env, task_spec
from qd.metrics import RunMetrics
from rl.checkpoint import write_pickle_atomic

CHECKPOINT_FILE = "checkpoint.pkl"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
PICTURES = ("coverage_map.png", "reward_areas.png", "curves.png")
DEFAULT_BUDGET = 50_000
"""Evaluations of a new run when ``--budget`` is not given (a resume continues to the run's own budget)."""
CHECKPOINT_FORMAT = 2
"""Version of the checkpoint's state layout. 2: issue 27 (plain-array novelty archive, per-evaluation rewards in
the metrics, SERENE's and TAXONS's new state); a checkpoint of another version cannot be continued."""
_NOT_HYPERPARAMS = {"self", "env_id", "seed", "evaluator"}
_RESUME_INPUTS = ("env", "seed", "hyperparams")
"""What a resumed run cannot change: the algorithm state was built on them."""


class QDInputError(ValueError):
    """A QD run that cannot start as asked; the message names the problem and the fix."""


class QDRunInterrupted(KeyboardInterrupt):
    """Ctrl-C ended a run; the message says where its checkpoint is and how to resume."""


def load_checkpoint(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint of a run folder: ``{"format", "algorithm", "config", "state"}``.

    Raises:
        rl.checkpoint.CheckpointError: when the folder has no checkpoint or it cannot be read.
    """
    from rl.checkpoint import CheckpointError, read_pickle

    path = Path(run_dir) / CHECKPOINT_FILE
    if not path.is_file():
        raise CheckpointError(f"No QD checkpoint in {run_dir!s} (expected {CHECKPOINT_FILE}): pass the run folder "
                              "that python -m qd.<algo> printed.")
    checkpoint = read_pickle(path, "QD checkpoint")
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path} holds a {type(checkpoint).__name__}, not a QD checkpoint.")
    if not {"format", "state"} <= set(checkpoint):  # e.g. another pickled dict (a snapshot file) under this name
        raise CheckpointError(f"{path} holds a dict without 'format' and 'state', not a QD checkpoint.")
    return checkpoint


def make_evaluator(env_id: str, workers: int, *, backend: str = "process", address: str | None = None,
                   batch_size: int = 16) -> Evaluator:
    """Serial evaluator for one worker, a process pool otherwise; with ``backend="ray"`` a
    :class:`qd.ray_evaluator.RayEvaluator` (batches of ``batch_size`` genomes as Ray tasks, on a local Ray instance
    with ``workers`` CPUs or on the cluster at ``address``), connected now so that a Ray problem stops the run
    before its folder is made."""
    if backend == "ray":
        from qd.ray_evaluator import RayEvaluator

        evaluator = RayEvaluator(env_id, batch_size=batch_size, address=address,
                                 num_cpus=None if address else workers)
        evaluator.start()
        return evaluator
    return SerialEvaluator(env_id) if workers <= 1 else ProcessPoolEvaluator(env_id, workers)


# -- hyperparameters --------------------------------------------------------------------------------------
def hyperparameter_names(algo_class: type[QDAlgorithm]) -> list[str]:
    """Keyword arguments of the algorithm's constructor that ``-params`` may set."""
    parameters = inspect.signature(algo_class.__init__).parameters
    return [name for name, p in parameters.items() if name not in _NOT_HYPERPARAMS
            and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _accepts(hint: Any, value: Any) -> bool:
    """Whether ``value`` fits a constructor annotation (int, float, str, bool, None and unions of them)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_accepts(arg, value) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if hint is str:
        return isinstance(value, str)
    return True  # other annotations: the constructor checks


def _describe(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in typing.get_args(hint))
    if hint is float:
        return "a finite number"
    return "None" if hint is type(None) else getattr(hint, "__name__", str(hint))


def check_hyperparams(algo_class: type[QDAlgorithm], params: dict[str, Any]) -> None:
    """Refuse ``-params`` keys the algorithm does not take (naming the closest valid ones) and values of the
    wrong type (naming the type and the default as an example).

    Raises:
        rl.hyperparams.HyperparameterError: for an unknown key or a value of the wrong type.
    """
    from rl.hyperparams import HyperparameterError

    valid = hyperparameter_names(algo_class)
    hints = typing.get_type_hints(algo_class.__init__)
    defaults = inspect.signature(algo_class.__init__).parameters
    for key, value in params.items():
        if key not in valid:
            close = difflib.get_close_matches(key, valid, n=3)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise HyperparameterError(f"Unknown hyperparameter {key!r} for {algo_class.name}.{hint} "
                                      f"Valid keys: {', '.join(valid)}.")
        if key in hints and not _accepts(hints[key], value):
            raise HyperparameterError(
                f"Hyperparameter {key!r} of {algo_class.name} must be {_describe(hints[key])}, got {value!r}: "
                f"pass e.g. -params {key}:{defaults[key].default!r}.")


def build_algorithm(algo_class: type[QDAlgorithm], env_id: str, *, seed: int, evaluator: Evaluator | None,
                    hyperparams: dict[str, Any]) -> QDAlgorithm:
    """The algorithm, with ``-params`` checked; a value its constructor refuses becomes a :class:`QDInputError`.

    Raises:
        rl.hyperparams.HyperparameterError: unknown key or wrong type; QDInputError: a refused value;
        rl.envs.UnknownEnvError / qd.evaluation.NotAQDTaskError: a bad env.
    """
    check_hyperparams(algo_class, hyperparams)
    try:
        return algo_class(env_id, seed=seed, evaluator=evaluator, **hyperparams)
    except _user_errors():
        raise
    except (ValueError, TypeError) as error:
        shown = " ".join(f"{key}:{value!r}" for key, value in hyperparams.items()) or "(none)"
        raise QDInputError(f"{algo_class.name} refuses -params {shown}: {error} Fix that value.") from None


# -- run folders ----------------------------------------------------------------------------------------
class QDRun:
    """Runs an algorithm into a run folder, checkpointing as it goes.

    Args:
        algorithm: The algorithm (fresh, or restored with :meth:`resume`).
        run_dir: The run folder (created when missing).
        config: What built the run (algorithm, env, seed, hyperparameters, ...); saved with checkpoints.
        save_freq: Checkpoint every this many evaluations (<= 0: only at the end and on Ctrl-C).
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
        self.last_checkpoint: int | None = None
        """Evaluations of the newest checkpoint written or loaded (None: none yet)."""

    @classmethod
    def resume(cls, run_dir: str | os.PathLike, *, evaluator: Evaluator | None = None, save_freq: int = 10_000,
               progress: bool = True) -> QDRun:
        """Rebuild the algorithm of a run folder from its checkpoint, ready to continue.

        Raises:
            rl.checkpoint.CheckpointError: when the folder has no readable checkpoint.
        """
        from rl.checkpoint import CheckpointError

        checkpoint = load_checkpoint(run_dir)
        if checkpoint.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(
                f"{Path(run_dir) / CHECKPOINT_FILE} was written by another version of qd (format "
                f"{checkpoint.get('format', 1)}, this one reads {CHECKPOINT_FORMAT}) and cannot be continued: start a "
                "new run, or delete that folder.")
        module, _, qualname = checkpoint["algorithm"].rpartition(".")
        algo_class = getattr(importlib.import_module(module), qualname)
        config = checkpoint["config"]
        algorithm = algo_class(config["env"], seed=config["seed"], evaluator=evaluator, **config["hyperparams"])
        algorithm.load_state_dict(checkpoint["state"])
        run = cls(algorithm, run_dir, config=config, save_freq=save_freq, progress=progress)
        run.last_checkpoint = algorithm.evaluations
        return run

    def save_checkpoint(self) -> Path:
        """Write ``checkpoint.pkl`` atomically and return its path."""
        path = self.run_dir / CHECKPOINT_FILE
        algo_class = type(self.algorithm)
        write_pickle_atomic(path, {"format": CHECKPOINT_FORMAT,
                                   "algorithm": f"{algo_class.__module__}.{algo_class.__qualname__}",
                                   "config": self.config, "state": self.algorithm.state_dict()})
        self.last_checkpoint = self.algorithm.evaluations
        return path

    def check_budget(self, budget: int) -> None:
        """Refuse a budget below 1, or below the budget the run was started (or last resumed) with.

        Raises:
            QDInputError: with the budget to pass instead.
        """
        if budget < 1:
            raise QDInputError(f"--budget must be >= 1 evaluation, got {budget}: pass the total number of "
                               f"evaluations, e.g. --budget {DEFAULT_BUDGET}.")
        recorded = self.config.get("budget")
        if recorded is not None and budget < recorded:
            raise QDInputError(
                f"--budget {budget} is below the budget {recorded} of the run in {self.run_dir} (it has spent "
                f"{self.algorithm.evaluations} evaluations): a resume continues a run, pass --budget {recorded} or "
                "more.")

    def run(self, budget: int) -> dict[str, Any]:
        """Run to ``budget`` evaluations in total, then write metrics and pictures; returns the metrics.

        Ctrl-C asks the run to stop: at the end of the running generation a checkpoint is written and
        :class:`QDRunInterrupted` raised (a second Ctrl-C stops at once, keeping the previous checkpoint).

        Raises:
            QDInputError: for a budget :meth:`check_budget` refuses; QDRunInterrupted: after Ctrl-C.
        """
        from tqdm.auto import tqdm

        from rl.checkpoint import checkpoint_on_interrupt, write_json_atomic

        self.check_budget(budget)
        if "budget" in self.config and budget != self.config["budget"]:
            self.config.setdefault("resumes", []).append(
                {"from_evaluations": self.algorithm.evaluations, "budget": int(budget)})
        self.config["budget"] = int(budget)
        write_json_atomic(self.run_dir / CONFIG_FILE, self.config)
        algorithm = self.algorithm
        bar = tqdm(total=budget, initial=min(algorithm.evaluations, budget), unit="eval", disable=not self.progress,
                   desc=f"{algorithm.name} {algorithm.env_id}")
        last_saved = [algorithm.evaluations]

        class _Stop(Exception):
            """Raised by the callback to leave the generation loop after a Ctrl-C."""

        with checkpoint_on_interrupt() as interrupt:
            def after_generation(algo: QDAlgorithm) -> None:
                bar.update(min(algo.evaluations, budget) - bar.n)
                bar.set_postfix(coverage=f"{algo.metrics.coverage:.3f}", areas=len(algo.metrics.reward_areas_found))
                if interrupt.requested:
                    raise _Stop
                if self.save_freq > 0 and algo.evaluations // self.save_freq > last_saved[0] // self.save_freq:
                    self.save_checkpoint()
                    last_saved[0] = algo.evaluations

            try:
                algorithm.run(budget, callback=after_generation)
            except _Stop:
                path = self.save_checkpoint()
                raise QDRunInterrupted(
                    f"Interrupted after {algorithm.evaluations} evaluations: checkpoint {path} saved; resume with "
                    f"python -m qd.{algorithm.name} --resume {self.run_dir}") from None
            except KeyboardInterrupt as error:
                if isinstance(error, QDRunInterrupted):
                    raise
                kept = (f"the newest checkpoint ({self.run_dir / CHECKPOINT_FILE}, {self.last_checkpoint} "
                        f"evaluations) resumes with python -m qd.{algorithm.name} --resume {self.run_dir}"
                        if self.last_checkpoint is not None else "no checkpoint had been written yet")
                raise QDRunInterrupted(f"Stopped at once, inside a generation: nothing saved; {kept}") from None
            finally:
                bar.close()
        self.save_checkpoint()
        return self.write_outputs()

    def write_outputs(self) -> dict[str, Any]:
        """``metrics.json`` and the three pictures, read at exactly the budget; returns what ``metrics.json`` holds.

        ``metrics.json`` also records ``evaluations_spent`` (the last generation may go past the budget) and
        ``algorithm``, the algorithm's :meth:`~qd.base.QDAlgorithm.summary`, and ``seconds``, where the run's wall
        time went (:meth:`qd.phase_clock.PhaseClock.breakdown`, all segments of a resumed run).
        """
        from rl.checkpoint import write_json_atomic
        from rl.run_record import command_line, package_versions

        budget = int(self.config.get("budget", self.algorithm.evaluations))
        metrics = self.algorithm.metrics.at(budget)
        versions = package_versions()
        try:
            versions["ribs"] = importlib.metadata.version("ribs")
        except importlib.metadata.PackageNotFoundError:
            versions["ribs"] = "not installed"
        data = {**metrics.as_dict(), "budget": budget, "evaluations_spent": self.algorithm.evaluations,
                "algorithm": self.algorithm.summary(), "seconds": self.algorithm.clock.breakdown(),
                "config": self.config,
                "generations": self.algorithm.generation,
                "command": self.config.get("command", command_line()), "versions": versions}
        write_json_atomic(self.run_dir / METRICS_FILE, data)
        save_pictures(self.algorithm, self.run_dir, metrics=metrics)
        return data


# -- pictures -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OutcomeGeometry:
    """What the maps draw over the outcome space: walls, reward areas, the start and the orientation."""

    walls: tuple[np.ndarray, ...]
    """Wall polygons, each (m, 2) in outcome coordinates."""
    goals: tuple[tuple[str, np.ndarray, float], ...]
    """(name, centre, radius) of every reward area."""
    start: np.ndarray | None
    """The outcome at the start of every episode (``info["outcome"]`` after reset)."""
    y_down: bool
    """Whether the task's y axis points down (its render puts y = 0 at the top)."""


def _rectangle(x_low: float, y_low: float, x_high: float, y_high: float) -> np.ndarray:
    return np.array([[x_low, y_low], [x_high, y_low], [x_high, y_high], [x_low, y_high]], dtype=np.float64)


def _hard_maze_walls(module: types.ModuleType) -> list[np.ndarray]:
    return [np.asarray(polygon, dtype=np.float64) for polygon in module.MAZE_POLYGONS]


def _redundant_arm_walls(module: types.ModuleType) -> list[np.ndarray]:
    return [_rectangle(x, y, x + width, y + height) for x, y, width, height in module.WALLS]


def _curling_walls(module: types.ModuleType) -> list[np.ndarray]:
    half, thick = module.TABLE_SIZE / 2, module.WALL_THICKNESS / 2  # walls centred on the table's edges
    return [_rectangle(-half - thick, -half - thick, half + thick, -half + thick),
            _rectangle(-half - thick, half - thick, half + thick, half + thick),
            _rectangle(-half - thick, -half - thick, -half + thick, half + thick),
            _rectangle(half - thick, -half - thick, half + thick, half + thick)]


def _ant_maze_walls(module: types.ModuleType) -> list[np.ndarray]:
    return [_rectangle(x - half_x, y - half_y, x + half_x, y + half_y) for x, y, half_x, half_y in module.WALL_BOXES]


_WALLS = {"envs.hard_maze": _hard_maze_walls, "envs.redundant_arm": _redundant_arm_walls,
          "envs.curling": _curling_walls, "envs.ant_maze": _ant_maze_walls}
"""How each task module lays out its walls (in its own constants), as polygons in outcome coordinates."""
_Y_DOWN = {"envs.hard_maze"}
"""Tasks whose y axis points down: HardMaze uses fastsim's map frame, "x to the right, y down (image rows)"
(``envs/hard_maze.py``), and its render and the papers' figures put y = 0 at the top."""


def outcome_geometry(env_id: str) -> OutcomeGeometry:
    """The walls, reward areas and start of a task, read from its env module's constants and a reset.

    Goals are the module's ``GOAL_CENTERS`` / ``GOAL_RADII`` named by ``spec_qd.reward_areas``; a task whose
    module is not one of the four QD tasks gets its goals only when it has these constants, and no walls.
    """
    env = make_task_env(env_id)
    try:
        _, info = env.reset(seed=0)
        start = np.asarray(info["outcome"], dtype=np.float64).reshape(-1) if "outcome" in info else None
        module_name = type(env.unwrapped).__module__
    finally:
        env.close()
    module = sys.modules[module_name]
    walls = tuple(_WALLS[module_name](module)) if module_name in _WALLS else ()
    goals: tuple[tuple[str, np.ndarray, float], ...] = ()
    if hasattr(module, "GOAL_CENTERS") and hasattr(module, "GOAL_RADII"):
        names = task_spec(env_id).reward_areas
        goals = tuple((str(name), np.asarray(centre, dtype=np.float64), float(radius))
                      for name, centre, radius in zip(names, module.GOAL_CENTERS, module.GOAL_RADII))
    return OutcomeGeometry(walls=walls, goals=goals, start=start, y_down=module_name in _Y_DOWN)


def _draw_geometry(ax: Any, geometry: OutcomeGeometry, bounds: np.ndarray) -> None:
    """Walls (grey), reward areas (red circles, named), the start (star); limits and orientation."""
    from matplotlib.patches import Circle, Polygon

    points = [bounds.T]
    for polygon in geometry.walls:
        ax.add_patch(Polygon(polygon, closed=True, facecolor="dimgrey", edgecolor="none", zorder=3))
        points.append(polygon)
    for name, centre, radius in geometry.goals:
        ax.add_patch(Circle(centre, radius, fill=False, edgecolor="red", linewidth=1.5, zorder=4))
        ax.annotate(name, centre, ha="center", va="center", fontsize="x-small", color="red", zorder=4)
    if geometry.start is not None:
        ax.plot(*geometry.start[:2], marker="*", markersize=12, color="white", markeredgecolor="black",
                linestyle="none", zorder=5, label="start")
    low, high = np.concatenate(points).min(axis=0), np.concatenate(points).max(axis=0)
    ax.set(xlim=(low[0], high[0]), ylim=(low[1], high[1]), aspect="equal")
    if geometry.y_down:
        ax.invert_yaxis()


def picture_figures(name: str, env_id: str, metrics: RunMetrics) -> dict[str, Any]:
    """The three run pictures as matplotlib figures, keyed by file name (see :func:`save_pictures`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    geometry = outcome_geometry(env_id)
    bounds = metrics.grid.bounds[:2]
    (x_low, x_high), (y_low, y_high) = bounds
    title = f"{name} on {env_id}, {metrics.evaluations} evaluations"
    y_label = "outcome y (down)" if geometry.y_down else "outcome y"
    figures: dict[str, Any] = {}

    fig, ax = plt.subplots(figsize=(5.5, 5))
    counts = metrics.grid.counts.T.astype(np.float64)
    with np.errstate(divide="ignore"):
        shown = np.ma.masked_equal(counts, 0)
        image = ax.imshow(np.ma.log10(shown), origin="lower", extent=(x_low, x_high, y_low, y_high),
                          cmap="viridis", zorder=1)
    fig.colorbar(image, ax=ax, label="log10 outcomes per cell")
    _draw_geometry(ax, geometry, bounds)
    ax.set(title=f"{title}\ncoverage {metrics.coverage:.3f}", xlabel="outcome x", ylabel=y_label)
    fig.tight_layout()
    figures[PICTURES[0]] = fig

    fig, ax = plt.subplots(figsize=(5.5, 5))
    outcomes, areas = metrics.outcomes, metrics.outcome_areas
    none = areas < 0
    ax.scatter(outcomes[none, 0], outcomes[none, 1], s=2, c="lightgrey", label="no reward", zorder=2)
    for area, area_name in enumerate(metrics.reward_areas):
        hit = areas == area
        if hit.any():
            ax.scatter(outcomes[hit, 0], outcomes[hit, 1], s=4, label=area_name, zorder=2)
    _draw_geometry(ax, geometry, bounds)
    found = ", ".join(metrics.reward_areas_found) or "no reward found"
    ax.set(title=f"{title}\nreward areas: {found}", xlabel="outcome x", ylabel=y_label)
    ax.legend(loc="best", fontsize="small", markerscale=1.5)
    fig.tight_layout()
    figures[PICTURES[1]] = fig

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    evaluations = [row["evaluations"] for row in metrics.history]
    left.plot(evaluations, [row["coverage"] for row in metrics.history])
    left.set(xlabel="evaluations", ylabel="coverage (50x50 grid)")
    best = [np.nan if row["best_reward"] is None else row["best_reward"] for row in metrics.history]
    if np.all(np.isnan(best)):
        right.text(0.5, 0.5, "no reward found", ha="center", va="center", transform=right.transAxes,
                   fontsize="large", color="grey")
        right.set(xticks=[], yticks=[], title="best reward")
    else:
        right.plot(evaluations, best)
        right.set(xlabel="evaluations", ylabel="best reward")
    fig.suptitle(title)
    fig.tight_layout()
    figures[PICTURES[2]] = fig
    return figures


def save_pictures(algorithm: QDAlgorithm, run_dir: str | os.PathLike, *,
                  metrics: RunMetrics | None = None) -> list[Path]:
    """``coverage_map.png`` (visits per outcome cell), ``reward_areas.png`` (outcomes coloured by reward area)
    and ``curves.png`` (coverage and best reward against evaluations), the first two over the task's walls,
    reward areas and start, in the orientation of its render.

    Args:
        algorithm: The algorithm (its name and env title the pictures).
        run_dir: Where to write them.
        metrics: What to draw (default the algorithm's metrics; :class:`QDRun` passes them read at the budget).

    Returns:
        The paths written.
    """
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    figures = picture_figures(algorithm.name, algorithm.env_id, algorithm.metrics if metrics is None else metrics)
    paths = []
    for file_name, fig in figures.items():
        fig.savefig(run_dir / file_name, dpi=100)
        plt.close(fig)
        paths.append(run_dir / file_name)
    return paths


# -- command line ---------------------------------------------------------------------------------------------
def build_parser(name: str) -> argparse.ArgumentParser:
    """The parser of ``python -m qd.<name>``."""
    parser = argparse.ArgumentParser(prog=f"python -m qd.{name}",
                                     description="Run a quality-diversity algorithm into a run folder "
                                                 "(<log-folder>/<algo>/<env>_<n>/).")
    parser.add_argument("--env", default=None, help="QD task id: RedundantArm-v0, HardMaze-v0, Curling-v0, AntMaze-v0")
    parser.add_argument("--budget", type=int, default=None,
                        help=f"total evaluations (default {DEFAULT_BUDGET:,}; with --resume, the run's own budget)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    parser.add_argument("-f", "--log-folder", default="logs", help="root of the run folders")
    parser.add_argument("--workers", type=int, default=1,
                        help="evaluation processes (1: serial); with --backend ray and no --address, the CPUs of the "
                             "local Ray instance")
    parser.add_argument("--backend", choices=["process", "ray"], default="process",
                        help="where evaluations run: this machine's processes, or Ray tasks (pip install -e "
                             "\".[ray]\"; see docs/scale.md)")
    parser.add_argument("--address", default=None,
                        help="--backend ray: the cluster to join (auto or HEAD:6379; default a local Ray instance)")
    parser.add_argument("--batch-size", type=int, default=16, help="--backend ray: genomes per Ray task")
    parser.add_argument("--save-freq", type=int, default=10_000, help="checkpoint every n evaluations (-1: end only)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--resume", default=None, metavar="RUN_DIR",
                        help="continue the run in RUN_DIR from its checkpoint up to --budget evaluations (its env, "
                             "seed and -params cannot change)")
    parser.add_argument("-params", "--hyperparams", nargs="+", default=None, metavar="KEY:VALUE",
                        help="constructor arguments of the algorithm, e.g. pop_size:50 mutation_sigma:0.1")
    return parser


def _user_errors() -> tuple[type[Exception], ...]:
    from rl.checkpoint import CheckpointError
    from rl.envs import UnknownEnvError
    from rl.hyperparams import HyperparameterError
    from rl.ray_backend import RayBackendError

    return (UnknownEnvError, HyperparameterError, NotAQDTaskError, CheckpointError, QDInputError, RayBackendError)


def check_resume_inputs(algo_class: type[QDAlgorithm], checkpoint: dict[str, Any], run_dir: str,
                        given: dict[str, Any]) -> None:
    """Refuse to resume a run with another algorithm, or with an env, seed or ``-params`` that differ from its own.

    Args:
        algo_class: The entry point's algorithm.
        checkpoint: The run's checkpoint (:func:`load_checkpoint`).
        run_dir: The run folder (for the message).
        given: The inputs passed on the command line (env, seed, hyperparams; those not passed are left out).

    Raises:
        QDInputError: naming the differences and the fix.
    """
    recorded_algo = checkpoint["algorithm"]
    expected = f"{algo_class.__module__}.{algo_class.__qualname__}"
    if recorded_algo != expected:
        raise QDInputError(f"{run_dir} is a run of {recorded_algo}, not of {expected}: resume it with its own "
                           f"entry point (python -m {recorded_algo.rpartition('.')[0]} --resume {run_dir}).")
    config = checkpoint["config"]
    changes = [f"{key} {config.get(key)!r} -> {value!r}" for key, value in given.items()
               if key in _RESUME_INPUTS and value != config.get(key)]
    if changes:
        raise QDInputError(f"{run_dir} was started with other inputs ({'; '.join(changes)}): resume with the run's "
                           "own --env, --seed and -params (or leave them out), or start a new run.")


def _evaluator(env_id: str, args: argparse.Namespace) -> Evaluator:
    return make_evaluator(env_id, args.workers, backend=args.backend, address=args.address,
                          batch_size=args.batch_size)


def run_from_args(algo_class: type[QDAlgorithm], args: argparse.Namespace, command: str) -> tuple[QDRun, int]:
    """Build (or resume) the run the parsed flags describe, and its budget; the CLI's only logic.

    Raises:
        QDInputError, rl.hyperparams.HyperparameterError, rl.envs.UnknownEnvError,
        qd.evaluation.NotAQDTaskError, rl.checkpoint.CheckpointError: for input that cannot run.
    """
    from rl.hyperparams import parse_overrides
    from rl.runner import next_run_dir

    if args.workers < 1:
        raise QDInputError(f"--workers must be >= 1, got {args.workers}: pass the number of evaluation processes "
                           "(1: serial).")
    if args.backend != "ray" and args.address is not None:
        raise QDInputError("--address needs --backend ray: add --backend ray, or leave --address out.")
    if args.batch_size < 1:
        raise QDInputError(f"--batch-size must be >= 1 genome per Ray task, got {args.batch_size}.")
    if args.budget is not None and args.budget < 1:
        raise QDInputError(f"--budget must be >= 1 evaluation, got {args.budget}: pass the total number of "
                           f"evaluations, e.g. --budget {DEFAULT_BUDGET}.")
    progress = not args.no_progress
    params = parse_overrides(args.hyperparams) if args.hyperparams is not None else None
    if args.resume:
        checkpoint = load_checkpoint(args.resume)
        given = {key: value for key, value in (("env", args.env), ("seed", args.seed), ("hyperparams", params))
                 if value is not None}
        check_resume_inputs(algo_class, checkpoint, args.resume, given)
        config = checkpoint["config"]
        budget = args.budget if args.budget is not None else config.get("budget")
        if budget is None:
            raise QDInputError(f"{args.resume} records no budget: pass --budget.")
        run = QDRun.resume(args.resume, evaluator=_evaluator(config["env"], args),
                           save_freq=args.save_freq, progress=progress)
        run.check_budget(budget)
        return run, budget
    if not args.env:
        raise QDInputError(f"--env is required (unless --resume): e.g. python -m qd.{algo_class.name} --env "
                           "HardMaze-v0.")
    params = params or {}
    seed = 0 if args.seed is None else args.seed
    evaluator = _evaluator(args.env, args)
    try:
        algorithm = build_algorithm(algo_class, args.env, seed=seed, evaluator=evaluator, hyperparams=params)
    except BaseException:
        close = getattr(evaluator, "close", None)
        if close is not None:
            close()
        raise
    config = {"algo": algo_class.name, "env": args.env, "seed": seed, "workers": args.workers,
              "backend": args.backend, "address": args.address, "hyperparams": params, "command": command}
    run_dir = next_run_dir(args.log_folder, algo_class.name, args.env)
    return QDRun(algorithm, run_dir, config=config, save_freq=args.save_freq, progress=progress), \
        DEFAULT_BUDGET if args.budget is None else args.budget


def main(algo_class: type[QDAlgorithm], argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m qd.<algo>``.

    Returns 0 on success; 2 for a user error (one line on stderr, and a run folder this call created is
    removed unless it holds a checkpoint); 130 after Ctrl-C (the line says where the checkpoint is).
    """
    args = build_parser(algo_class.name).parse_args(argv)
    command = shlex.join(["python", "-m", f"qd.{algo_class.name}", *(sys.argv[1:] if argv is None else argv)])
    run = None
    created = False
    try:
        run, budget = run_from_args(algo_class, args, command)
        created = args.resume is None
        run.run(budget)
    except _user_errors() as error:
        print(f"error: {error}", file=sys.stderr)
        if created and run is not None and not (run.run_dir / CHECKPOINT_FILE).is_file():
            shutil.rmtree(run.run_dir, ignore_errors=True)
        return 2
    except KeyboardInterrupt as interrupt:
        print(str(interrupt) or "Interrupted before the run started; nothing was saved.", file=sys.stderr)
        return 130
    finally:
        if run is not None:
            run.algorithm.close()
    print(f"run folder: {run.run_dir}")
    return 0
