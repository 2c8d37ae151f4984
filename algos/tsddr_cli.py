"""TS-DDR's command line and run folders: ``python -m algos.tsddr`` (whose ``__main__`` calls :func:`main` here).

:func:`train_run` trains in ``<log_folder>/tsddr/<case>_<n>`` (or continues a run folder from its checkpoint) and
writes the records, the model, the held-out evaluation against perfect foresight and :func:`plot_learning_curve`'s
figure; :func:`build_parser` and :func:`main` are the CLI, whose user errors print one line and exit 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from algos.hydro_common import USER_ERRORS, next_run_dir, perfect_foresight_costs
from algos.tsddr import MODES, POLICIES, SAMPLERS, TSDDR, TSDDRConfigError
from envs.hydro import case_path, load_system


def plot_learning_curve(history: list[dict[str, float]], path: Path, *, reference: float | None = None,
                        title: str = "TS-DDR") -> Path:
    """Training and held-out operating cost per epoch (and the held-out perfect-foresight mean, if given)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = [row["epoch"] for row in history]
    ax.plot(epochs, [row["train_cost"] for row in history], label="train (operating cost)")
    held = [(row["epoch"], row["holdout_cost"]) for row in history if "holdout_cost" in row]
    if held:
        ax.plot(*zip(*held), marker="o", label="held-out (deployed)")
    if reference is not None:
        ax.axhline(reference, color="gray", linestyle="--", label="perfect foresight (held-out)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cost per scenario")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def train_run(
    case: str,
    *,
    epochs: int,
    seed: int = 0,
    log_folder: str | Path = "logs",
    resume: str | Path | None = None,
    progress: bool = True,
    **kwargs: Any,
) -> Path:
    """Train TS-DDR on a case in a run folder ``<log_folder>/tsddr/<case>_<n>`` (or continue ``resume``).

    Writes ``config.json``, ``progress.csv``, ``history.json``, ``checkpoint.pt`` (per epoch), ``model.pt``,
    ``learning_curve.png`` and ``results.json`` (held-out cost, violation shares, timings, perfect foresight).
    """
    from rl.checkpoint import write_json_atomic
    from rl.run_record import command_line, package_versions

    if not isinstance(epochs, int) or epochs < 1:  # before a run folder exists: a failed start leaves none
        raise TSDDRConfigError(f"epochs: must be an integer >= 1, got {epochs}")
    if resume is not None:
        run_dir = Path(resume)
        if not (run_dir / "checkpoint.pt").is_file():
            raise FileNotFoundError(f"{str(run_dir)!r} has no checkpoint.pt to resume from")
        model = TSDDR.load(run_dir / "checkpoint.pt")
    else:
        system = load_system(case_path(case))
        model = TSDDR(system, seed=seed, case=str(case), **kwargs)
        run_dir = next_run_dir(log_folder, "tsddr", str(case))
        run_dir.mkdir(parents=True)
        write_json_atomic(run_dir / "config.json", {**model.config, "epochs": epochs, "command": command_line(),
                                                    "versions": package_versions(),
                                                    "train_scenarios": model.train_indices.tolist(),
                                                    "holdout_scenarios": model.holdout_indices.tolist()})
    start = time.perf_counter()
    model.learn(epochs, run_dir=run_dir, progress=progress)
    training_seconds = time.perf_counter() - start
    model.save(run_dir / "model.pt")
    results = {"training_seconds": training_seconds, "epochs": model.epoch}
    if len(model.holdout_indices):
        pf = perfect_foresight_costs(model.system, model.holdout_indices)
        evaluation = model.evaluate(model.holdout_indices)
        results.update(holdout=evaluation, perfect_foresight_holdout_mean=float(pf.mean()),
                       perfect_foresight_holdout=pf.tolist())
        plot_learning_curve(model.history, run_dir / "learning_curve.png", reference=float(pf.mean()),
                            title=f"TS-DDR ({model.config['policy']}, {model.config['mode']}) on {case}")
    write_json_atomic(run_dir / "results.json", results)
    return run_dir


# -------------------------------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m algos.tsddr", description="Train TS-DDR / TS-LDR on a hydro case.")
    parser.add_argument("--case", default="toy", help="case name (envs/hydro/cases/<name>.json) or JSON path")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mode", choices=MODES, default="stage")
    parser.add_argument("--policy", choices=POLICIES, default="mlp", help="linear = TS-LDR")
    parser.add_argument("--hidden", type=int, nargs="*", default=None, help="hidden sizes (default 64 64)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--batches-per-epoch", type=int, default=100)
    parser.add_argument("--penalty-schedule", choices=("annealed", "constant"), default="annealed")
    parser.add_argument("--sampler", choices=SAMPLERS, default="stagewise")
    parser.add_argument("--holdout-fraction", type=float, default=0.25)
    parser.add_argument("--no-transition-gradient", action="store_true",
                        help="stage mode: do not back-propagate through the realised volumes")
    parser.add_argument("-f", "--log-folder", default="logs")
    parser.add_argument("--resume", default=None, help="run folder to continue (its checkpoint.pt)")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m algos.tsddr``; user errors print one line and exit 2."""
    args = build_parser().parse_args(argv)
    kwargs: dict[str, Any] = dict(
        mode=args.mode, policy=args.policy, learning_rate=args.lr, batch_size=args.batch_size,
        batches_per_epoch=args.batches_per_epoch, penalty_schedule=args.penalty_schedule, sampler=args.sampler,
        holdout_fraction=args.holdout_fraction, transition_gradient=not args.no_transition_gradient)
    if args.hidden is not None:
        kwargs["hidden_sizes"] = args.hidden
    elif args.policy == "linear":
        kwargs["hidden_sizes"] = ()
    try:
        run_dir = train_run(args.case, epochs=args.epochs, seed=args.seed, log_folder=args.log_folder,
                            resume=args.resume, progress=not args.no_progress, **kwargs)
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"run folder: {run_dir}")
    return 0

