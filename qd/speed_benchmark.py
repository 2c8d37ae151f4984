"""Speed of QD evaluation: the env-stepping evaluator against the fast path, on the same random genomes::

    python -m qd.speed_benchmark --tasks HardMaze-v0 RedundantArm-v0 Curling-v0 AntMaze-v0 --genomes 100 \\
        --out results/qd_speed

For every task, ``--genomes`` genomes are drawn uniformly in the genome bounds (``--seed``) and evaluated once by
``SerialEvaluator(task, fast=False)`` (Gymnasium env, :func:`qd.evaluation.run_episode` per genome) and once
by ``SerialEvaluator(task, fast=True)`` (:mod:`qd.fast_evaluation`), each after a warm-up call on one genome
(env construction, numba's compilation or cache load). Everything runs on one core: numba, torch and BLAS
at one thread. Both wall-clock and CPU time are recorded: on a machine shared with other jobs the CPU-time
rates are the steadier ones. The results are compared field by field (outcome, trajectory, state, reward and
reward area); the largest absolute difference is reported and should be 0.

For the MuJoCo tasks the report adds MuJoCo's own cost as a ceiling on the speed: the CPU time the fast path
spent in its ``mj_step`` loop (:attr:`qd.fast_mujoco.MujocoBatchKernel.stepping_seconds`). No evaluator that
steps MuJoCo as the env does can evaluate faster than that rate on one core.

Output under ``--out``: ``README.md`` (the table, the exact command, machine and versions), ``results.json``
and ``speed.png`` (evaluations per second of CPU time per task, both evaluators and the MuJoCo ceiling, log
scale). The exit status is 1 when
the two evaluators disagree.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_TASKS = ("HardMaze-v0", "RedundantArm-v0", "Curling-v0", "AntMaze-v0")
DEFAULT_OUT = os.path.join("results", "qd_speed")


@dataclass
class TaskTiming:
    """One task's measurements."""

    task: str
    genomes: int
    serial_wall: float
    """Seconds of wall-clock time of the env-stepping evaluator for all genomes."""
    serial_cpu: float
    """Seconds of CPU time of this process for the same."""
    fast_wall: float
    fast_cpu: float
    floor_cpu: float | None
    """CPU seconds the fast path spent stepping MuJoCo (MuJoCo tasks), else None."""
    max_abs_difference: float
    """Largest absolute difference over outcomes, trajectories, states and rewards (inf on a shape mismatch)."""
    areas_agree: bool
    """Whether every reward area id is the same."""

    @property
    def agree(self) -> bool:
        """Whether the two evaluators gave the same results."""
        return self.areas_agree and self.max_abs_difference == 0.0


def one_thread() -> None:
    """torch and BLAS at one thread (the evaluators are compared on one core).

    numba's thread pool is left alone: the kernels are not parallel (no ``prange``), and setting
    ``NUMBA_NUM_THREADS`` once numba's threads exist makes numba refuse any later change of it in the process.
    """
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = "1"
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # BLAS then keeps its own setting; the evaluators' matrices are tiny anyway
        return
    threadpool_limits(1)


def max_abs_difference(slow: Sequence[Any], fast: Sequence[Any]) -> tuple[float, bool]:
    """Largest absolute difference between two lists of evaluation results, and whether the areas agree."""
    worst, areas = 0.0, True
    for a, b in zip(slow, fast, strict=True):
        areas &= a.reward_area == b.reward_area
        worst = max(worst, abs(a.reward - b.reward))
        for left, right in ((a.outcome, b.outcome), (a.trajectory, b.trajectory), (a.state, b.state)):
            if np.shape(left) != np.shape(right):
                return float("inf"), areas
            if np.size(left):
                worst = max(worst, float(np.max(np.abs(np.asarray(left) - np.asarray(right)))))
    return worst, areas


def time_task(task: str, genomes: int, seed: int) -> TaskTiming:
    """Evaluate the same random genomes with both evaluators and compare (one warm-up genome each first)."""
    import gymnasium as gym

    from qd.evaluation import SerialEvaluator
    from qd.fast_evaluation import fast_kernel
    from qd.genome import GENOME_HIGH, GENOME_LOW, genome_size
    from rl.envs import ensure_registered

    batch = np.random.default_rng(seed).uniform(GENOME_LOW, GENOME_HIGH, size=(genomes, genome_size(task)))
    timings: dict[bool, tuple[float, float, list]] = {}
    kernel = fast_kernel(gym.spec(ensure_registered(task)))
    stepping = 0.0
    for fast in (False, True):
        evaluator = SerialEvaluator(task, fast=fast)
        evaluator.evaluate(batch[:1])
        stepping = getattr(kernel, "stepping_seconds", None)
        wall, cpu = time.perf_counter(), time.process_time()
        results = evaluator.evaluate(batch)
        timings[fast] = (time.perf_counter() - wall, time.process_time() - cpu, results)
        evaluator.close()
    floor = None if stepping is None else kernel.stepping_seconds - stepping
    worst, areas = max_abs_difference(timings[False][2], timings[True][2])
    return TaskTiming(task=task, genomes=genomes, serial_wall=timings[False][0], serial_cpu=timings[False][1],
                      fast_wall=timings[True][0], fast_cpu=timings[True][1], floor_cpu=floor,
                      max_abs_difference=worst, areas_agree=areas)


def _rate(genomes: int, seconds: float | None) -> float | None:
    return None if seconds is None or seconds <= 0 else genomes / seconds


def _cell(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _speedup(fast: float | None, serial: float | None) -> str:
    return "-" if fast is None or serial is None else f"{fast / serial:,.1f}x"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages (where the OS has them)."""
    try:
        return " / ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def write_report(out: Path, timings: Sequence[TaskTiming], command: str, loads: tuple[str, str]) -> None:
    """``README.md``, ``results.json`` and ``speed.png`` under ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mujoco
    import numba

    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for t in timings:
        serial, fast = _rate(t.genomes, t.serial_wall), _rate(t.genomes, t.fast_wall)
        serial_cpu, fast_cpu = _rate(t.genomes, t.serial_cpu), _rate(t.genomes, t.fast_cpu)
        rows.append(f"| {t.task} | {t.genomes} | {_cell(serial)} | {_cell(fast)} | {_speedup(fast, serial)} "
                    f"| {_cell(serial_cpu)} | {_cell(fast_cpu)} | {_speedup(fast_cpu, serial_cpu)} "
                    f"| {_cell(_rate(t.genomes, t.floor_cpu))} | {t.max_abs_difference:.3g} "
                    f"| {'yes' if t.agree else 'NO'} |")
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    lines = [
        "# QD evaluation speed: env-stepping evaluator against the fast path",
        "",
        "Written by `qd/speed_benchmark.py`. Exact command:",
        "",
        "```bash",
        command,
        "```",
        "",
        "Evaluations per second on one core (numba, torch and BLAS at one thread), the same random genomes "
        "(uniform in the genome bounds) for both evaluators, after one warm-up genome each. *serial*: "
        "`SerialEvaluator(task, fast=False)`, today's path through the Gymnasium env; *fast*: "
        "`SerialEvaluator(task, fast=True)` (`qd.fast_evaluation`). *MuJoCo ceiling*: the rate if only the fast "
        "path's `mj_step` calls ran (their CPU time), the most any evaluator that steps MuJoCo as the env does can "
        "reach on one core. "
        "*max abs diff*: largest absolute difference over outcomes, trajectories, states and rewards.",
        "",
        "| task | genomes | serial evals/s (wall) | fast evals/s (wall) | speed-up (wall) | serial evals/s (CPU) "
        "| fast evals/s (CPU) | speed-up (CPU) | MuJoCo ceiling evals/s (CPU) | max abs diff | same results |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Machine: {cpu}, {os.cpu_count()} logical cores; load average (1 / 5 / 15 min) {loads[0]} at the start "
        f"and {loads[1]} at the end. Other jobs share these cores, so wall-clock rates are noisy: CPU-time rates "
        "(this process's own time) are the steadier comparison.",
        "",
        f"Versions: Python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}, "
        f"mujoco {mujoco.__version__}.",
        "",
        "![evaluations per second (CPU time)](speed.png)",
        "",
    ]
    (out / "README.md").write_text("\n".join(lines))
    payload = {"command": command, "load_average": {"start": loads[0], "end": loads[1]},
               "tasks": [asdict(t) | {"agree": t.agree} for t in timings]}
    (out / "results.json").write_text(json.dumps(payload, indent=2, default=float) + "\n")

    figure, axis = plt.subplots(figsize=(1.8 + 1.6 * len(timings), 3.6))
    positions = np.arange(len(timings))
    serial = [_rate(t.genomes, t.serial_cpu) or 0.0 for t in timings]
    fast = [_rate(t.genomes, t.fast_cpu) or 0.0 for t in timings]
    axis.bar(positions - 0.2, serial, width=0.4, label="serial (env)")
    axis.bar(positions + 0.2, fast, width=0.4, label="fast path")
    label = "MuJoCo stepping alone"
    for x, (t, slow_rate, fast_rate) in enumerate(zip(timings, serial, fast)):
        if slow_rate > 0:
            axis.annotate(f"{fast_rate / slow_rate:.1f}x", (x + 0.2, fast_rate), ha="center", va="bottom", fontsize=8)
        ceiling = _rate(t.genomes, t.floor_cpu)
        if ceiling is not None:
            axis.hlines(ceiling, x - 0.4, x + 0.4, colors="black", linestyles="dashed", linewidth=1, label=label)
            label = None  # one legend entry
    axis.set_xticks(positions, [t.task for t in timings], fontsize=8)
    axis.set_yscale("log")
    axis.set_ylabel("evaluations / s (CPU time, one core)")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out / "speed.png", dpi=120)
    plt.close(figure)


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m qd.speed_benchmark", description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS), help="QD task ids")
    parser.add_argument("--genomes", type=int, default=100, help="random genomes per task")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random genomes")
    parser.add_argument("--out", default=DEFAULT_OUT, help="output folder")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 when both evaluators agree on every task, else 1."""
    args = build_parser().parse_args(argv)
    if args.genomes < 1:
        raise SystemExit("--genomes must be at least 1")
    one_thread()
    arguments = list(sys.argv[1:] if argv is None else argv)
    command = "python -m qd.speed_benchmark " + " ".join(shlex.quote(a) for a in arguments)
    start_load = load_average()
    timings = []
    for task in args.tasks:
        timing = time_task(task, args.genomes, args.seed)
        timings.append(timing)
        print(f"{task}: serial {_cell(_rate(timing.genomes, timing.serial_wall))}/s, "
              f"fast {_cell(_rate(timing.genomes, timing.fast_wall))}/s (wall), "
              f"max abs diff {timing.max_abs_difference:.3g}", flush=True)
    write_report(Path(args.out), timings, command, (start_load, load_average()))
    return 0 if all(t.agree for t in timings) else 1


if __name__ == "__main__":
    sys.exit(main())
