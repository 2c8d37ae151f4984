"""What Ray costs and what it survives on one machine: the same small benchmark on the process pool and on local Ray
(with and without a worker killed mid-run), and a sweep with ASHA; writes ``results/scale/``.

    python -m rl.scale_benchmark --workers 2 -n 20000 --trials 16

Three invocations of :func:`rl.benchmark.run_benchmark` with the same runs (``--algos`` x ``--envs`` x
``--seeds``; default 2 x 2 x 3 = 12), each from scratch (a measurement: earlier folders of these benchmarks are
deleted first):

- ``process``: the local process pool (:class:`rl.benchmark.ProcessBackend`);
- ``ray``: local Ray with as many CPUs (:class:`rl.ray_backend.RayBackend`);
- ``ray_killed``: the same, and once the first checkpoint of any run is written, one Ray worker running a run
  gets SIGKILL. Ray retries the task; the run resumes from its checkpoint.

For each: wall-clock, each run's time in its worker (task wall seconds) and its training seconds (``run.json``),
and the per-run overhead ``workers * wall-clock / runs - mean training seconds`` (start-up, imports, evaluation,
checkpoints and scheduling; the pool's is the baseline). For ``ray_killed``: which run was retried, from which
checkpoint, and whether every run finished once with its full budget and the same final evaluation as on the
process pool (deterministic runs: nothing lost, nothing counted twice).

Then a sweep (:func:`rl.sweep.run_sweep`) of ``--trials`` trials of ``--sweep-algo`` on ``--sweep-env`` with ASHA;
its trial table and best entry are copied into ``results/scale/sweep/``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

RESULTS = Path("results") / "scale"
LOGS = Path("logs") / "benchmarks" / "scale"
BACKENDS = ("process", "ray", "ray_killed")
RUN_TASK = "ray::run_task"
"""The process title of a Ray worker running a benchmark run (:func:`rl.ray_backend.run_task`)."""


class TimedBackend:
    """Wraps a back end and keeps each outcome's wall seconds and finish time."""

    def __init__(self, backend: Any) -> None:
        self.backend, self.outcomes = backend, []

    def run_all(self, specs: Sequence[Any], fn: Any) -> Iterable[dict[str, Any]]:
        for outcome in self.backend.run_all(specs, fn):
            self.outcomes.append({"run": f"{outcome['spec']['algo']}/{outcome['spec']['env']}_seed"
                                         f"{outcome['spec']['seed']}", "wall_seconds": outcome["wall_seconds"],
                                  "error": outcome.get("error")})
            yield outcome


class WorkerKiller(threading.Thread):
    """Sends SIGKILL to one Ray worker running a run, once every run in progress has a checkpoint.

    Ray's process title names the task, not the run, so the killer waits until ``workers`` unfinished runs (those
    running, as runs start in order) have each written a checkpoint: whichever worker it kills, the run it held
    has one to resume from.
    """

    def __init__(self, logs: Path, results: Path, workers: int) -> None:
        super().__init__(daemon=True)
        self.logs, self.results, self.workers, self.stop = logs, results, workers, threading.Event()
        self.killed: dict[str, Any] | None = None

    def run(self) -> None:
        import psutil

        while not self.stop.wait(0.2):
            checkpoints = sorted(str(path.relative_to(self.logs)) for path in self.logs.glob("*/*/checkpoints/step_*"))
            running = {str(Path(name).parents[1]) for name in checkpoints
                       if not (self.results / "runs" / Path(name).parents[1] / "run.json").is_file()}
            if len(running) < self.workers:
                continue
            for process in psutil.process_iter(["pid", "cmdline"]):
                if RUN_TASK in " ".join(process.info["cmdline"] or []):
                    os.kill(process.info["pid"], signal.SIGKILL)
                    self.killed = {"pid": process.info["pid"], "checkpoints_then": checkpoints}
                    return


def _fresh(name: str) -> None:
    shutil.rmtree(RESULTS / name, ignore_errors=True)
    shutil.rmtree(LOGS / name, ignore_errors=True)


def measure(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark ``name`` (one of :data:`BACKENDS`) from scratch and return its timings."""
    from rl.benchmark import ProcessBackend, run_benchmark

    _fresh(name)
    if name == "process":
        backend: Any = ProcessBackend(args.workers)
    else:
        from rl.ray_backend import RayBackend

        backend = RayBackend(num_cpus=args.workers, cpus_per_run=1.0, max_retries=3)
    timed = TimedBackend(backend)
    killer = WorkerKiller(LOGS / name, RESULTS / name, args.workers) if name == "ray_killed" else None
    start = time.perf_counter()
    if killer is not None:
        killer.start()
    run_benchmark(name, args.algos, args.envs, args.seeds, args.n_timesteps, backend=timed, workers=args.workers,
                  results_root=str(RESULTS), logs_root=str(LOGS), progress=False, eval_freq=args.n_timesteps // 4,
                  eval_episodes=5, final_eval_episodes=10, save_freq=args.n_timesteps // 4,
                  command=args.command)
    wall = time.perf_counter() - start
    if killer is not None:
        killer.stop.set()
    records = {path.parent.parent.name + "/" + path.parent.name: json.loads(path.read_text())
               for path in sorted((RESULTS / name / "runs").glob("*/*/run.json"))}
    train = [record["train_seconds"] for record in records.values()]
    runs = len(args.algos) * len(args.envs) * len(args.seeds)
    return {
        "backend": name, "wall_seconds": wall, "runs": runs, "finished": len(records),
        "failed": [o["run"] for o in timed.outcomes if o["error"]],
        "task_wall_seconds": sum(o["wall_seconds"] for o in timed.outcomes) / max(len(timed.outcomes), 1),
        "train_seconds": sum(train) / max(len(train), 1),
        "overhead_per_run": args.workers * wall / runs - sum(train) / max(len(train), 1),
        "killed": killer.killed if killer is not None else None,
        "final_returns": {run: record["final_evaluation"]["mean_reward"] for run, record in records.items()},
        "num_timesteps": {run: record["num_timesteps"] for run, record in records.items()},
        "resumed": {run: record.get("resumes") for run, record in records.items() if record.get("resumes")},
    }


def run_the_sweep(args: argparse.Namespace) -> dict[str, Any]:
    """The ASHA sweep; its table and best entry are copied to ``results/scale/sweep/``."""
    from rl.sweep import run_sweep

    start = time.perf_counter()
    result = run_sweep(args.sweep_algo, args.sweep_env, args.sweep_space, trials=args.trials,
                       n_timesteps=args.sweep_steps, eval_freq=args.sweep_steps // 10, eval_episodes=5,
                       final_eval_episodes=10, seed=0, num_cpus=args.workers, log_folder=str(LOGS.parent.parent),
                       command=args.command, verbose=0)
    wall = time.perf_counter() - start
    out = RESULTS / "sweep"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for path in (result.best_path, result.table_path, result.table_path.with_suffix(".csv")):
        shutil.copy2(path, out / path.name)
    stopped = sum(row.stopped_early == "yes" for row in result.rows)
    return {"trials": len(result.rows), "stopped_early": stopped,
            "finished": sum(row.stopped_early == "no" for row in result.rows),
            "errors": sum(row.stopped_early == "error" for row in result.rows), "wall_seconds": wall,
            "env_steps": sum(row.env_steps or 0 for row in result.rows),
            "best": result.rows[0].final_metric, "folder": str(result.out_dir)}


def render(measurements: Sequence[dict[str, Any]], sweep: dict[str, Any] | None, args: argparse.Namespace) -> str:
    """The README of ``results/scale/``."""
    runs = measurements[0]["runs"]
    lines = [
        "# Scaling out: the process pool vs local Ray on this machine", "",
        f"{runs} runs ({' '.join(args.algos)} x {' '.join(args.envs)} x seeds {' '.join(map(str, args.seeds))}, "
        f"{args.n_timesteps} env steps each, a checkpoint every {args.n_timesteps // 4}) on {args.workers} workers "
        "(2 CPU cores, other jobs running: timings are indicative). Overhead per run = workers x wall-clock / runs "
        "- mean training seconds: start-up, imports, evaluations, checkpoints and scheduling.", "",
        f"Command: `{args.command}`", "",
        "| back end | wall-clock (s) | runs finished | mean task time (s) | mean training time (s) | "
        "overhead per run (s) |", "|---|---|---|---|---|---|",
    ]
    for m in measurements:
        lines.append(f"| {m['backend']} | {m['wall_seconds']:.1f} | {m['finished']}/{m['runs']} | "
                     f"{m['task_wall_seconds']:.1f} | {m['train_seconds']:.1f} | {m['overhead_per_run']:.1f} |")
    baseline = next((m for m in measurements if m["backend"] == "process"), None)
    killed = next((m for m in measurements if m["backend"] == "ray_killed"), None)
    if killed is not None:
        lines += ["", "## One worker killed mid-run", ""]
        if killed["killed"] is None:
            lines.append("No worker was killed (every run finished before the first checkpoint).")
        else:
            lines.append(f"A Ray worker running a run (pid {killed['killed']['pid']}) got SIGKILL once the first "
                         "checkpoint was on disk.")
        for run, resumes in killed["resumed"].items():
            lines.append(f"- retried: `{run}`, resumed {json.dumps(resumes)}")
        full = all(steps >= args.n_timesteps for steps in killed["num_timesteps"].values())
        lines.append(f"- runs finished: {killed['finished']}/{killed['runs']}, each once, every one with its full "
                     f"budget: {'yes' if full else 'no'}; failed: {', '.join(killed['failed']) or 'none'}.")
        if baseline is not None:
            same = [run for run, value in killed["final_returns"].items()
                    if baseline["final_returns"].get(run) == value]
            lines.append(f"- final evaluation equal to the process pool's: {len(same)}/{len(killed['final_returns'])} "
                         "runs" + ("" if len(same) == len(killed["final_returns"]) else
                                   f" (differ: {', '.join(sorted(set(killed['final_returns']) - set(same)))})"))
    if sweep is not None:
        lines += ["", "## Sweep", "",
                  f"`{args.sweep_algo}` on `{args.sweep_env}`, space `{args.sweep_space}`, {args.sweep_steps} env "
                  f"steps per trial at most, ASHA (evaluation every {args.sweep_steps // 10} steps), Optuna's TPE "
                  f"through Tune, {args.workers} trials at a time.", "",
                  f"- trials: {sweep['trials']}; stopped early by ASHA: {sweep['stopped_early']}; finished: "
                  f"{sweep['finished']}; errors: {sweep['errors']}",
                  f"- env steps used: {sweep['env_steps']} of {sweep['trials'] * args.sweep_steps} had every trial "
                  f"run to the end; wall-clock {sweep['wall_seconds']:.0f} s",
                  f"- best final mean return: {sweep['best']:.1f}; trial table `sweep/trials.md`, best entry "
                  "`sweep/best.yml`"]
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rl.scale_benchmark", description=__doc__.split("\n\n")[0])
    parser.add_argument("--algos", nargs="+", default=["ppo", "a2c"])
    parser.add_argument("--envs", nargs="+", default=["CartPole-v1", "Acrobot-v1"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("-n", "--n-timesteps", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--trials", type=int, default=16, help="sweep trials (0: no sweep)")
    parser.add_argument("--sweep-algo", default="ppo")
    parser.add_argument("--sweep-env", default="CartPole-v1")
    parser.add_argument("--sweep-space", default="sweeps/ppo.yml")
    parser.add_argument("--sweep-steps", type=int, default=20_000)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.n_timesteps < 4 or args.workers < 1 or args.trials < 0 or args.sweep_steps < 10:
        print("error: -n must be >= 4, --workers >= 1, --trials >= 0 and --sweep-steps >= 10.", file=sys.stderr)
        return 2
    from rl.ray_backend import RayBackendError, require_ray

    args.command = shlex.join(["python", "-m", "rl.scale_benchmark", *(sys.argv[1:] if argv is None else argv)])
    try:
        if any(name != "process" for name in args.backends) or args.trials:
            require_ray()
        RESULTS.mkdir(parents=True, exist_ok=True)
        measurements = [measure(name, args) for name in args.backends]
        sweep = run_the_sweep(args) if args.trials else None
    except RayBackendError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    (RESULTS / "measurements.json").write_text(json.dumps({"measurements": measurements, "sweep": sweep}, indent=1))
    (RESULTS / "README.md").write_text(render(measurements, sweep, args))
    (RESULTS / "command.txt").write_text(args.command + "\n")
    print((RESULTS / "README.md").read_text())
    return 0


if __name__ == "__main__":
    from rl.interrupt import run_main

    sys.exit(run_main(main, "This benchmark measures from scratch: rerun the command to start it again."))
