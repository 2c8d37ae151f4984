"""Check that killed runs resume to the same result: SIGKILL a real training command at random moments.

``python -m rl.resume_check --kills 5 --out results/resume/sac -- --algo sac --env Hopper-v4 -n 3000 ...`` runs
the command once uninterrupted, then ``--kills`` times more, each killed from outside with SIGKILL at a random
wall-clock moment after its first checkpoint (during a rollout, an update, an evaluation or a checkpoint write:
wherever it happens to be), resumed with ``-i <run folder>`` and compared with the uninterrupted run: final
parameters and optimizer states, periodic and final evaluations, monitored episodes. Writes ``README.md``
(the table and the exact command) and ``resume_check.json`` under ``--out``; the run folders go to
``--out/runs/`` (not committed: they hold checkpoints and replay buffers).

The unit tests (tests/test_resume_faults.py) kill at chosen training steps; this check kills at moments no one
chose, at budgets too long for a test.
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.save_util import load_from_zip_file
from tqdm import tqdm

from rl.checkpoint import list_checkpoints
from rl.run_record import git_commit


class ReferenceRunError(RuntimeError):
    """The training command failed before anything was killed (a bad flag, a missing dataset)."""


def _differences_in(a: Any, b: Any, where: str, out: list[str]) -> None:
    if isinstance(a, th.Tensor):
        if not (isinstance(b, th.Tensor) and a.shape == b.shape and th.equal(a, b)):
            out.append(where)
    elif isinstance(a, dict):
        if not isinstance(b, dict) or a.keys() != b.keys():
            out.append(f"{where} (keys)")
            return
        for key in a:
            _differences_in(a[key], b[key], f"{where}.{key}", out)
    elif isinstance(a, (list, tuple)):
        if not isinstance(b, (list, tuple)) or len(a) != len(b):
            out.append(f"{where} (length)")
            return
        for i, (x, y) in enumerate(zip(a, b)):
            _differences_in(x, y, f"{where}[{i}]", out)
    elif a != b:
        out.append(where)


def monitored_episodes(run_dir: str | Path) -> list[tuple[float, int]]:
    """(return, length) of every episode in the run's Monitor files, in file order (the time column left out)."""
    episodes = []
    for path in sorted(Path(run_dir).glob("*.monitor.csv")):
        for line in path.read_text().splitlines()[2:]:
            fields = line.split(",")
            episodes.append((float(fields[0]), int(fields[1])))
    return episodes


def differences(reference: str | Path, resumed: str | Path) -> list[str]:
    """What differs between two finished run folders (empty: bit-identical results)."""
    reference, resumed = Path(reference), Path(resumed)
    record_a = json.loads((reference / "run.json").read_text())
    record_b = json.loads((resumed / "run.json").read_text())
    found: list[str] = []
    if record_a["num_timesteps"] != record_b["num_timesteps"]:
        found.append("num_timesteps")
    if (record_a.get("final_evaluation") or {}).get("episode_rewards") != (
        record_b.get("final_evaluation") or {}
    ).get("episode_rewards"):
        found.append("final evaluation")
    if (reference / "evaluations.npz").is_file():
        evals_a, evals_b = np.load(reference / "evaluations.npz"), np.load(resumed / "evaluations.npz")
        if evals_a["timesteps"].tolist() != evals_b["timesteps"].tolist() or not np.array_equal(
            evals_a["results"], evals_b["results"]
        ):
            found.append("periodic evaluations")
    if monitored_episodes(reference) != monitored_episodes(resumed):
        found.append("monitored episodes")
    # The saved parameters and optimizer states, read from the zip without building the model: a model with
    # HerReplayBuffer cannot be built without its env.
    model_file = f"{record_a['env']}.zip"
    _, params_a, _ = load_from_zip_file(reference / model_file, device="cpu")
    _, params_b, _ = load_from_zip_file(resumed / model_file, device="cpu")
    _differences_in(params_a, params_b, "parameters", found)
    return found


def _run_folder(root: Path) -> Path | None:
    found = sorted(p.parent for p in root.glob("*/*/run_inputs.json"))
    return found[0] if found else None


def _has_checkpoint(root: Path) -> bool:
    return any(list_checkpoints(folder) for folder in root.glob("*/*/checkpoints"))


def _command(module: str, run_args: Sequence[str], root: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", module, *run_args, "-f", str(root), "--no-progress", *extra]


def check(
    module: str, run_args: Sequence[str], out: Path, *, kills: int, seed: int, progress: bool = True
) -> list[dict[str, Any]]:
    """The uninterrupted run, then ``kills`` killed-and-resumed runs; one row per killed run."""
    rng = random.Random(seed)
    reference_root = out / "runs" / "reference"
    shutil.rmtree(reference_root, ignore_errors=True)
    start = time.perf_counter()
    reference_run = subprocess.run(_command(module, run_args, reference_root), capture_output=True, text=True)
    if reference_run.returncode != 0:
        raise ReferenceRunError(
            f"The uninterrupted run failed (exit {reference_run.returncode}): "
            f"{(reference_run.stderr.strip().splitlines() or ['no output'])[-1]}"
        )
    duration = time.perf_counter() - start
    reference = _run_folder(reference_root)
    assert reference is not None
    rows = []
    for i in tqdm(range(kills), desc="killed runs", disable=not progress):
        root = out / "runs" / f"killed_{i}"
        shutil.rmtree(root, ignore_errors=True)
        process = subprocess.Popen(_command(module, run_args, root), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        started = time.perf_counter()
        while process.poll() is None and not _has_checkpoint(root):
            time.sleep(0.05)
        first_checkpoint = time.perf_counter() - started
        delay = rng.uniform(0.0, max(duration * 0.95 - first_checkpoint, 0.1))
        time.sleep(delay)
        killed_at = time.perf_counter() - started
        finished_first = process.poll() is not None
        process.send_signal(signal.SIGKILL)
        process.wait()
        run_dir = _run_folder(root)
        assert run_dir is not None
        checkpoints = list_checkpoints(run_dir / "checkpoints")
        resumed = subprocess.run(_command(module, run_args, root, "-i", str(run_dir)), capture_output=True, text=True)
        record = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").is_file() else {}
        diff = differences(reference, run_dir) if resumed.returncode == 0 else [f"resume failed: {resumed.stderr}"]
        rows.append({
            "kill": i, "killed_after_seconds": round(killed_at, 2), "finished_before_kill": finished_first,
            "resumed_from_step": (record.get("resumes") or [{}])[-1].get("at_step"),
            "checkpoints_left": [p.name for p in checkpoints], "differences": diff, "identical": not diff,
        })
    return rows


def write_report(out: Path, rows: list[dict[str, Any]], command: str) -> None:
    """``README.md`` (table and command) and ``resume_check.json`` under ``out``."""
    lines = [
        "# Resume check: runs killed with SIGKILL at random moments, then resumed with `-i`",
        "",
        f"Command: `{command}` (commit {git_commit()})",
        "",
        "Each run was killed from outside at a random wall-clock moment after its first checkpoint, resumed from "
        "its newest complete checkpoint, and compared with the same command run uninterrupted: final parameters "
        "and optimizer states, periodic and final evaluations, monitored episodes (returns and lengths).",
        "",
        "| kill | killed after (s) | resumed from step | identical | differences |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(f"| {row['kill']} | {row['killed_after_seconds']} | {row['resumed_from_step']} | "
                     f"{'yes' if row['identical'] else 'no'} | {', '.join(row['differences'][:5]) or '-'} |")
    identical = sum(row["identical"] for row in rows)
    lines += ["", f"{identical} of {len(rows)} resumed runs are bit-identical to the uninterrupted run.", ""]
    (out / "README.md").write_text("\n".join(lines))
    (out / "resume_check.json").write_text(json.dumps({"command": command, "rows": rows}, indent=2))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        print("error: give the training command after --, e.g. python -m rl.resume_check --out results/resume/sac "
              "-- --algo sac --env Hopper-v4 -n 3000", file=sys.stderr)
        return 2
    split = argv.index("--")
    parser = argparse.ArgumentParser(prog="python -m rl.resume_check", description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=5, help="killed-and-resumed runs")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    parser.add_argument("--module", default="rl", help="the training command's module (rl, algos.snapshot, ...)")
    parser.add_argument("--out", required=True, help="folder for the runs and the report")
    args = parser.parse_args(argv[:split])
    if args.kills < 1:
        print("error: --kills must be >= 1.", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        rows = check(args.module, argv[split + 1:], out, kills=args.kills, seed=args.seed)
    except ReferenceRunError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    write_report(out, rows, shlex.join(["python", "-m", "rl.resume_check", *argv]))
    print((out / "README.md").read_text())
    return 0 if all(row["identical"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
