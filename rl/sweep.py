"""Hyperparameter sweeps on Ray Tune: Optuna's sampler, ASHA early stopping, any registered algorithm.

    python -m rl.sweep --algo mdpo --env Hopper-v4 --space sweeps/mdpo.yml --trials 32 -n 300000

Each trial is one :func:`rl.runner.train` run of the algorithm with its ``algos/hyperparams/<algo>.yml``
defaults, the trial's sample of the search space (:mod:`rl.sweep_space`, a YAML file in rl-zoo3's
vocabulary) over them, and ``-params`` over both. A callback reports every periodic evaluation's mean return
to Tune (``--eval-freq`` env steps apart), which ASHA (``--pruner asha``, the default) uses to stop the
trials that trail at each rung; the final evaluation is the trial's score. Optuna's TPE sampler
(``--sampler``) proposes the samples through Tune's ``OptunaSearch``.

Ray runs the trials: a local Ray instance with ``--num-cpus`` CPUs by default, or the cluster at
``--address`` (checked first: every node must import the driver's version of the project). Flags follow
rl-baselines3-zoo's ``train.py -optimize`` where it has them (``--n-trials``, ``--sampler``, ``--pruner``,
``--n-startup-trials``, ``--n-evaluations``, ``--n-jobs``).

Output under ``<log-folder>/sweeps/<algo>/<env>_<n>/``: ``best.yml`` (the best trial's hyperparameters as an
``algos/hyperparams`` entry for the env: train with it by ``-conf best.yml``, or copy the entry into
``algos/hyperparams/<algo>.yml``), ``trials.csv`` and ``trials.md`` (every trial: its hyperparameters, final
metric, env steps and reports reached, and whether ASHA stopped it early), ``command.txt`` and Tune's own
experiment folder ``tune/``.
"""

from __future__ import annotations

import argparse
import ast
import csv
import math
import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, EvalCallback

from rl.ray_backend import INSTALL_HINT, RayBackendError, RayUnavailableError, require_ray, source_commit
from rl.sweep_space import SearchSpace, SearchSpaceError, load_search_space, plain, to_hyperparams

METRIC = "mean_reward"
"""What trials report and the sweep maximises: a periodic evaluation's mean return, then the final one's."""
TIME_ATTR = "env_steps"
"""The progress ASHA's rungs are measured in."""
SAMPLERS = ("tpe", "random", "cmaes")
PRUNERS = ("asha", "median", "none")


class SweepFailedError(RuntimeError):
    """No trial of the sweep reported a result (their errors are in the trial table)."""


@dataclass(frozen=True)
class TrialSetup:
    """What every trial shares (sent once to the workers by ``tune.with_parameters``)."""

    label: str
    """Algorithm or method label (``mdpo``, ``s3rl_sac``)."""
    env: str
    seed: int
    n_timesteps: int
    eval_freq: int
    eval_episodes: int
    final_eval_episodes: int
    fixed: dict[str, Any] = field(default_factory=dict)
    """Raw values every trial uses (the space's fixed values and ``-params``), read by :func:`to_hyperparams`."""
    command: str | None = None
    use_gpu: bool = False


def _find_eval_callback(callback: Any) -> EvalCallback | None:
    """The runner's evaluation callback among the callbacks SB3 trains with (nested lists included)."""
    if isinstance(callback, EvalCallback):
        return callback
    if isinstance(callback, CallbackList):
        for child in callback.callbacks:
            found = _find_eval_callback(child)
            if found is not None:
                return found
    return None


class TuneReportCallback(BaseCallback):
    """Reports each periodic evaluation of the runner's evaluation callback to Ray Tune.

    The runner builds its evaluation callback itself; this one finds it among the callbacks SB3 trains with
    and reports ``{env_steps, mean_reward}`` once per new evaluation (one step later, or at the end of
    training), which is the intermediate result ASHA compares trials by. An evaluation at ``last_step`` or
    later is not reported: the final evaluation, reported right after training, speaks for that step.
    """

    def __init__(self, last_step: int | None = None) -> None:
        super().__init__()
        self.last_step = last_step
        self.evaluations: EvalCallback | None = None
        self.reported = 0

    def _on_training_start(self) -> None:
        self.evaluations = _find_eval_callback(self.locals.get("callback"))

    def _on_step(self) -> bool:
        self.report_new()
        return True

    def _on_training_end(self) -> None:
        self.report_new()

    def report_new(self) -> None:
        """Report the evaluations made since the last call."""
        if self.evaluations is None:
            return
        from ray import tune

        timesteps, results = self.evaluations.evaluations_timesteps, self.evaluations.evaluations_results
        while self.reported < len(timesteps):
            index = self.reported
            self.reported += 1
            if self.last_step is not None and timesteps[index] >= self.last_step:
                continue
            tune.report({TIME_ATTR: int(timesteps[index]), METRIC: float(np.mean(results[index])), "finished": False})


def train_trial(config: dict[str, Any], setup: TrialSetup) -> None:
    """The Tune trainable: one run of the runner with the trial's sample, reporting its evaluations."""
    from ray import tune

    from rl.registry import load_method, parse_run_label
    from rl.runner import RunConfig, train

    if not setup.use_gpu:  # a trial that asked for no GPU trains on the CPU
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    method, algo = parse_run_label(setup.label)
    run_config = RunConfig(
        algo=algo, env=setup.env, seed=setup.seed, n_timesteps=setup.n_timesteps, label=setup.label,
        run_dir=os.path.join(tune.get_context().get_trial_dir(), "run"), eval_freq=setup.eval_freq,
        eval_episodes=setup.eval_episodes, final_eval_episodes=setup.final_eval_episodes, save_freq=-1,
        hyperparams=to_hyperparams({**setup.fixed, **config}), progress=False, verbose=0, num_threads=1,
        command=setup.command,
    )
    if method is not None:
        run_config = load_method(method)(run_config, progress=False)
    inner = run_config.model_callbacks
    run_config.model_callbacks = lambda model: [*(inner(model) if inner else []),
                                                TuneReportCallback(last_step=setup.n_timesteps)]
    result = train(run_config)
    final = result.evaluation.mean_reward if result.evaluation is not None else math.nan
    tune.report({TIME_ATTR: int(result.model.num_timesteps), METRIC: float(final), "final_mean_reward": float(final),
                 "finished": True})


def raw_overrides(items: Sequence[str] | None) -> dict[str, Any]:
    """``-params key:value`` as the values a YAML file would hold: Python literals as such, anything else
    (``dict(...)``, ``nn.ReLU``, ``lin_3e-4``) as text, which :func:`to_hyperparams` parses like the files'."""
    from rl.hyperparams import parse_overrides

    parse_overrides(list(items or []))  # the same errors as every other command for a malformed item
    values: dict[str, Any] = {}
    for item in items or []:
        key, text = (part.strip() for part in item.split(":", 1))
        try:
            values[key] = ast.literal_eval(text)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            values[key] = text
    return values


def _require_tune() -> tuple[Any, Any]:
    """Ray Tune and Optuna, or :class:`RayUnavailableError` naming the install command."""
    require_ray()
    try:
        import optuna
        from ray import tune
    except ImportError as error:
        raise RayUnavailableError(f"Sweeps need Ray Tune and Optuna ({error}): install them with {INSTALL_HINT}.") \
            from None
    return tune, optuna


def make_sampler(name: str, seed: int, n_startup_trials: int) -> Any:
    """Optuna's sampler of that name (``tpe``, ``random``, ``cmaes``), seeded."""
    _, optuna = _require_tune()
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup_trials)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=n_startup_trials)
    raise ValueError(f"unknown sampler {name!r}; one of {', '.join(SAMPLERS)}")


def make_scheduler(name: str, n_timesteps: int, grace_period: int, reduction_factor: float) -> Any:
    """Tune's trial scheduler: ASHA, the median stopping rule, or None (every trial runs to the end)."""
    from ray.tune.schedulers import ASHAScheduler, MedianStoppingRule

    if name == "asha":
        # max_t past the last report: ASHA stops a trial that reaches max_t before its final evaluation is reported.
        return ASHAScheduler(time_attr=TIME_ATTR, max_t=n_timesteps + 1, grace_period=grace_period,
                             reduction_factor=reduction_factor)
    if name == "median":
        return MedianStoppingRule(time_attr=TIME_ATTR, grace_period=grace_period)
    return None


@dataclass
class TrialRow:
    """One line of the trial table."""

    trial: str
    hyperparams: dict[str, Any]
    final_metric: float | None
    env_steps: int | None
    reports: int | None
    """Results the trial reported (Tune's ``training_iteration``): periodic evaluations, plus the final one."""
    status: str
    """``finished``, ``stopped early`` (by the scheduler) or ``error: <last line>``."""

    @property
    def stopped_early(self) -> str:
        return "yes" if self.status == "stopped early" else ("no" if self.status == "finished" else "error")


def trial_rows(results: Any, space: SearchSpace) -> list[TrialRow]:
    """The trials of a Tune ``ResultGrid``, best first (finished trials before stopped ones, then by metric)."""
    rows = []
    for result in results:
        metrics = result.metrics or {}
        finished = bool(metrics.get("finished"))
        if result.error is not None:
            status = "error: " + (str(result.error).strip().splitlines() or ["?"])[-1]
        else:
            status = "finished" if finished else "stopped early"
        metric = metrics.get("final_mean_reward") if finished else metrics.get(METRIC)
        rows.append(TrialRow(
            trial=str(metrics.get("trial_id") or Path(str(result.path)).name),
            hyperparams={name: plain(result.config.get(name)) for name in space.dimensions},
            final_metric=None if metric is None or not math.isfinite(metric) else float(metric),
            env_steps=metrics.get(TIME_ATTR), reports=metrics.get("training_iteration"), status=status,
        ))
    rows.sort(key=lambda r: (r.status != "finished", r.final_metric is None, -(r.final_metric or 0.0)))
    return rows


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def write_trial_table(rows: Sequence[TrialRow], out: Path, title: str) -> tuple[Path, Path]:
    """``trials.csv`` and ``trials.md``: one line per trial, its hyperparameters, final metric, env steps and
    reports reached, and whether it was stopped early."""
    names = list(rows[0].hyperparams) if rows else []
    header = ["trial", *names, "final_metric", "env_steps", "reports", "stopped_early", "status"]
    lines = [[r.trial, *(r.hyperparams[n] for n in names), r.final_metric, r.env_steps, r.reports, r.stopped_early,
              r.status] for r in rows]
    csv_path, md_path = out / "trials.csv", out / "trials.md"
    with open(csv_path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows([["" if v is None else v for v in line] for line in lines])
    markdown = [f"# {title}", "",
                f"Final metric: the final evaluation's mean return (`{METRIC}`) of a finished trial, the last periodic "
                "evaluation's of one stopped early. Best first.", "",
                "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    markdown += ["| " + " | ".join(_cell(v).replace("|", "\\|") for v in line) + " |" for line in lines]
    md_path.write_text("\n".join(markdown) + "\n")
    return csv_path, md_path


def write_best(row: TrialRow, fixed: Mapping[str, Any], env: str, path: Path, comment: str) -> Path:
    """The best trial's hyperparameters (fixed values included) as an ``algos/hyperparams``-style entry for ``env``."""
    entry = {key: plain(value) for key, value in {**fixed, **row.hyperparams}.items()}
    text = "".join(f"# {line}\n" for line in comment.splitlines())
    path.write_text(text + yaml.safe_dump({env: entry}, sort_keys=True))
    return path


@dataclass
class SweepResult:
    """Where a sweep wrote its output, and its trials (best first)."""

    out_dir: Path
    best_path: Path
    table_path: Path
    rows: list[TrialRow]


def run_sweep(
    label: str, env: str, space_path: str, *, trials: int = 32, n_timesteps: int | None = None,
    eval_freq: int = 10_000, eval_episodes: int = 5, final_eval_episodes: int = 10, seed: int = 0,
    sampler: str = "tpe", pruner: str = "asha", grace_period: int | None = None, reduction_factor: float = 3.0,
    n_startup_trials: int = 10, max_concurrent: int | None = None, cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0, address: str | None = None, num_cpus: int | None = None,
    overrides: Sequence[str] | None = None, log_folder: str = "logs", storage: str | None = None,
    command: str | None = None, verbose: int = 1,
) -> SweepResult:
    """Run the sweep (see the module's docstring) and write its output; returns where.

    Raises:
        SearchSpaceError: a malformed space file, or ``-params`` fixing a searched key.
        rl.hyperparams.HyperparameterError: a key the algorithm does not take.
        rl.ray_backend.RayBackendError: Ray, Tune or Optuna missing; a cluster unreachable or without the project.
        SweepFailedError: no trial reported a result.
    """
    from rl.envs import ensure_registered
    from rl.hyperparams import default_hyperparams, validate_keys
    from rl.registry import get_algo, parse_run_label
    from rl.run_record import command_line
    from rl.runner import next_run_dir

    method, algo = parse_run_label(label)
    ensure_registered(env)
    space = load_search_space(space_path)
    fixed = {**space.fixed, **raw_overrides(overrides)}
    clash = sorted(set(fixed) & set(space.dimensions))
    if clash:
        raise SearchSpaceError(f"{', '.join(clash)}: both searched ({space_path}) and fixed (-params); drop one.")
    if method is None:  # a method's own options are checked by the method
        spec = get_algo(algo)
        validate_keys(to_hyperparams({**space.example(), **fixed}), spec.load_class(), spec.name)
    if n_timesteps is None:
        n_timesteps = int(default_hyperparams(algo, env).get("n_timesteps", 1_000_000))
    if trials < 1 or n_timesteps < 1 or eval_freq == 0:
        raise SearchSpaceError(f"--trials and -n must be >= 1, --eval-freq not 0 (got {trials}, {n_timesteps}, "
                               f"{eval_freq}).")
    grace = grace_period or max(eval_freq if eval_freq > 0 else 1, n_timesteps // 10)
    tune, _ = _require_tune()
    from ray.tune.search.optuna import OptunaSearch

    from rl.ray_backend import check_cluster_code, check_resources, connect

    started = connect(address, num_cpus=num_cpus)
    try:
        if not started:
            check_cluster_code()
        check_resources(cpus_per_trial, gpus_per_trial)
        out = Path(next_run_dir(os.path.join(log_folder, "sweeps"), label, env)).resolve()
        out.mkdir(parents=True)
        command = command or command_line()
        (out / "command.txt").write_text(command + "\n")
        setup = TrialSetup(label=label, env=env, seed=seed, n_timesteps=n_timesteps, eval_freq=eval_freq,
                           eval_episodes=eval_episodes, final_eval_episodes=final_eval_episodes, fixed=fixed,
                           command=command, use_gpu=gpus_per_trial > 0)
        trainable = tune.with_resources(tune.with_parameters(train_trial, setup=setup),
                                        {"cpu": cpus_per_trial, "gpu": gpus_per_trial})
        tuner = tune.Tuner(
            trainable, param_space=space.to_tune(),
            tune_config=tune.TuneConfig(
                metric=METRIC, mode="max", num_samples=trials, max_concurrent_trials=max_concurrent,
                reuse_actors=True,  # a trial's process is the next one's: no torch import per trial
                search_alg=OptunaSearch(sampler=make_sampler(sampler, seed, n_startup_trials)),
                scheduler=make_scheduler(pruner, n_timesteps, grace, reduction_factor),
            ),
            run_config=tune.RunConfig(name="tune", storage_path=storage or str(out), verbose=verbose),
        )
        rows = trial_rows(tuner.fit(), space)
    finally:
        if started:
            require_ray().shutdown()
    title = f"Sweep of {label} on {env}: {trials} trials of {n_timesteps:,} env steps ({sampler}, {pruner})"
    _, table = write_trial_table(rows, out, title)
    scored = [r for r in rows if r.final_metric is not None]
    if not scored:
        raise SweepFailedError(f"No trial of the sweep reported a result: see {table} for their errors.")
    best = scored[0]
    comment = (f"Best of {len(rows)} trials ({best.trial}: {best.status}, mean return {best.final_metric:.4g} after "
               f"{best.env_steps:,} env steps) of\n  {command}\n"
               f"at commit {source_commit() or 'unknown'}. Train with it: python -m rl --algo {algo} --env {env} "
               f"-conf {out / 'best.yml'}\nor copy the entry into algos/hyperparams/{algo}.yml.")
    best_path = write_best(best, fixed, env, out / "best.yml", comment)
    return SweepResult(out_dir=out, best_path=best_path, table_path=table, rows=rows)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m rl.sweep`` (rl-zoo3's flag names where it has them)."""
    parser = argparse.ArgumentParser(prog="python -m rl.sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("--algo", required=True, help="algorithm (or method label) from the registry: mdpo, ppo, ...")
    parser.add_argument("--env", required=True, help="env id")
    parser.add_argument("--space", required=True, help="search space YAML (e.g. sweeps/mdpo.yml)")
    parser.add_argument("--trials", "--n-trials", dest="trials", type=int, default=32, help="number of trials")
    parser.add_argument("-n", "--n-timesteps", type=int, default=None,
                        help="env steps per trial (default: the algorithm's YAML n_timesteps)")
    evaluation = parser.add_mutually_exclusive_group()
    evaluation.add_argument("--eval-freq", type=int, default=None,
                            help="evaluate (and report to ASHA) every n env steps (default 10000)")
    evaluation.add_argument("--n-evaluations", type=int, default=None,
                            help="evaluations per trial instead (rl-zoo3's flag): --eval-freq is -n divided by it")
    parser.add_argument("--eval-episodes", type=int, default=5, help="episodes per periodic evaluation")
    parser.add_argument("--final-eval-episodes", type=int, default=10, help="episodes of a trial's final evaluation")
    parser.add_argument("--seed", type=int, default=0, help="training seed of every trial, and the sampler's seed")
    parser.add_argument("--sampler", choices=SAMPLERS, default="tpe", help="Optuna sampler")
    parser.add_argument("--pruner", choices=PRUNERS, default="asha",
                        help="early stopping: ASHA (asynchronous successive halving), Tune's median rule, or none")
    parser.add_argument("--n-startup-trials", type=int, default=10, help="random trials before TPE/CMA-ES model")
    parser.add_argument("--grace-period", type=int, default=None,
                        help="env steps before ASHA may stop a trial (default: max(eval freq, n / 10))")
    parser.add_argument("--reduction-factor", type=float, default=3.0, help="ASHA keeps 1 / this of trials per rung")
    parser.add_argument("--max-concurrent", "--n-jobs", dest="max_concurrent", type=int, default=None,
                        help="trials at a time (default: as many as the CPUs allow)")
    parser.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs each trial requests")
    parser.add_argument("--gpus-per-trial", type=float, default=0.0, help="GPUs each trial requests (0: CPU)")
    parser.add_argument("--address", default=None,
                        help="Ray cluster to join: auto or HEAD:6379 (default: a local Ray instance)")
    parser.add_argument("--num-cpus", type=int, default=None,
                        help="CPUs of the local Ray instance (default: all of this machine's)")
    parser.add_argument("--storage", default=None,
                        help="Tune's storage path (a folder all nodes share, or a cloud URI); "
                        "default: the output folder")
    parser.add_argument("-params", "--hyperparams", nargs="+", default=None, metavar="KEY:VALUE",
                        help="fixed overrides for every trial, e.g. normalize:True n_envs:4")
    parser.add_argument("-f", "--log-folder", default="logs",
                        help="output goes to <log-folder>/sweeps/<algo>/<env>_<n>/")
    parser.add_argument("--verbose", type=int, default=1, help="Tune's verbosity: 0 silent, 1 status, 2 results")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: user errors (a bad space, an unreachable cluster, Ray missing) print one line and return 2."""
    from rl.cli import run_and_report

    args = build_parser().parse_args(argv)
    command = shlex.join(["python", "-m", "rl.sweep", *(sys.argv[1:] if argv is None else argv)])
    eval_freq = args.eval_freq or 10_000
    outcome: list[SweepResult] = []

    def start() -> None:
        nonlocal eval_freq
        if args.n_evaluations:
            from rl.hyperparams import default_hyperparams
            from rl.registry import parse_run_label

            n = args.n_timesteps or int(default_hyperparams(parse_run_label(args.algo)[1], args.env)
                                        .get("n_timesteps", 1_000_000))
            eval_freq = max(1, n // args.n_evaluations)
        outcome.append(run_sweep(
            args.algo, args.env, args.space, trials=args.trials, n_timesteps=args.n_timesteps, eval_freq=eval_freq,
            eval_episodes=args.eval_episodes, final_eval_episodes=args.final_eval_episodes, seed=args.seed,
            sampler=args.sampler, pruner=args.pruner, grace_period=args.grace_period,
            reduction_factor=args.reduction_factor, n_startup_trials=args.n_startup_trials,
            max_concurrent=args.max_concurrent, cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial,
            address=args.address, num_cpus=args.num_cpus, overrides=args.hyperparams, log_folder=args.log_folder,
            storage=args.storage, command=command, verbose=args.verbose,
        ))

    try:
        status = run_and_report(start, extra_errors=(SearchSpaceError, RayBackendError))
    except SweepFailedError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if status == 0:
        result = outcome[0]
        print(result.table_path.read_text())
        print(f"Best hyperparameters: {result.best_path}")
    return status


if __name__ == "__main__":
    sys.exit(main())
