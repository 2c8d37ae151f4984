"""Ours against d3rlpy, side by side: one table over the offline benchmark's per-algorithm folders.

Each algorithm pair is its own ``rl.benchmark`` folder (``results/offline/td3_bc``, ``iql``, ...: runs of our
label and of ``d3rlpy_<label>`` on the same HDF5 files); this module reads their ``run.json`` records and writes
the combined table of ``results/offline/README.md``: normalised scores, whether they agree within noise, updates
per second, and the dataset each pair trained on (rows whose runs recorded different dataset fingerprints,
or loaded different numbers of transitions, i.e. a dataset remade between runs, are flagged; rows with a run that
recorded no fingerprint say "unverified": that both sides trained on the same data is not shown).

    python -m rl.external.offline_comparison results/offline          # prints the markdown table and its notes

Fingerprints compared: ours, ``dataset_fingerprint`` (the dataset our run loaded); d3rlpy's,
``source_dataset_fingerprint`` (the dataset its exported file was made from; the file's own fingerprint is its
``dataset_fingerprint``), or for runs recorded before exports were checked, their ``dataset_fingerprint``, which
was then the source dataset's.

"Within noise": the difference of the means is at most two standard errors of that difference
(``2 * sqrt(s1^2 / n1 + s2^2 / n2)``, sample standard deviations over the seeds); with fewer than two seeds on
either side there is no standard error and the row says so.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rl.benchmark import EXTERNAL_PREFIX, format_mean_std

PAIR_ORDER = ("td3_bc", "iql", "awac", "cql")
"""Folders in the order the table lists them; any other pair folder follows, sorted."""

DISPLAY_NAMES = {"td3_bc": "TD3+BC", "iql": "IQL", "awac": "AWAC", "cql": "CQL"}

_SEED_SUFFIX = re.compile(r"_seed\d+$")


@dataclass
class SideRuns:
    """The finished runs of one side (ours or d3rlpy) of a pair on one dataset."""

    scores: list[float] = field(default_factory=list)
    updates_per_second: list[float] = field(default_factory=list)
    batch_sizes: set[int] = field(default_factory=set)
    dataset_sizes: set[int] = field(default_factory=set)
    updates: set[int] = field(default_factory=set)
    fingerprints: set[str] = field(default_factory=set)
    """``OfflineDataset.fingerprint`` of the dataset each run's data came from (see the module docstring)."""
    unfingerprinted: int = 0
    """Runs that recorded no fingerprint (made before fingerprints were recorded): their data is unverified."""

    def add(self, record: dict) -> None:
        self.scores.append(float(record["final_normalized_score"]))
        self.updates_per_second.append(float(record["steps_per_second"]))
        self.batch_sizes.add(int(record.get("hyperparams", {}).get("batch_size", 0)))
        self.dataset_sizes.add(int(record["dataset_size"]))
        self.updates.add(int(record.get("offline_steps") or record.get("train_steps") or 0))
        fingerprint = record.get("source_dataset_fingerprint") or record.get("dataset_fingerprint")
        if fingerprint:
            self.fingerprints.add(str(fingerprint))
        else:
            self.unfingerprinted += 1


@dataclass
class PairRow:
    """One table row: an algorithm pair on one dataset."""

    pair: str
    dataset: str
    ours: SideRuns
    theirs: SideRuns


def _read_runs(folder: Path) -> dict[str, SideRuns]:
    """Finished runs of one label, by dataset name (from the run folder's name, ``<dataset>_seed<k>``)."""
    by_dataset: dict[str, SideRuns] = defaultdict(SideRuns)
    for record_path in sorted(folder.glob("*/run.json")):
        record = json.loads(record_path.read_text())
        if record.get("final_normalized_score") is None:
            continue
        by_dataset[_SEED_SUFFIX.sub("", record_path.parent.name)].add(record)
    return by_dataset


def pair_rows(results_dir: str | Path) -> list[PairRow]:
    """Every (pair, dataset) with a run of either side, pairs in :data:`PAIR_ORDER`, datasets sorted."""
    root = Path(results_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder: pass the offline benchmark's results folder "
                                f"(e.g. results/offline).")
    folders = [p for p in sorted(root.iterdir()) if (p / "runs").is_dir()]
    folders.sort(key=lambda p: (PAIR_ORDER.index(p.name) if p.name in PAIR_ORDER else len(PAIR_ORDER), p.name))
    rows = []
    for folder in folders:
        labels = [p.name for p in (folder / "runs").iterdir() if p.is_dir()]
        ours_labels = [label for label in labels if not label.startswith(EXTERNAL_PREFIX)]
        for ours_label in sorted(ours_labels):
            ours = _read_runs(folder / "runs" / ours_label)
            theirs = _read_runs(folder / "runs" / f"{EXTERNAL_PREFIX}{ours_label}")
            for dataset in sorted(set(ours) | set(theirs)):
                rows.append(
                    PairRow(folder.name, dataset, ours.get(dataset, SideRuns()), theirs.get(dataset, SideRuns()))
                )
    return rows


def within_noise(ours: Sequence[float], theirs: Sequence[float]) -> str:
    """"yes (+d, 2SE)" / "no, ours higher|lower (...)" / "n/a (< 2 seeds each)"."""
    if len(ours) < 2 or len(theirs) < 2:
        return "n/a (< 2 seeds each)"
    difference = float(np.mean(ours) - np.mean(theirs))
    two_se = 2.0 * math.sqrt(np.var(ours, ddof=1) / len(ours) + np.var(theirs, ddof=1) / len(theirs))
    detail = f"({difference:+.1f}, {two_se:.1f})"
    if abs(difference) <= two_se:
        return f"yes {detail}"
    return f"no, ours {'higher' if difference > 0 else 'lower'} {detail}"


def _speed_ratio(ours: SideRuns, theirs: SideRuns) -> str:
    """Updates/s ratio, and the samples/s ratio in brackets where the two batch sizes differ."""
    if not ours.updates_per_second or not theirs.updates_per_second:
        return "n/a"
    ratio = float(np.mean(ours.updates_per_second) / np.mean(theirs.updates_per_second))
    text = f"{ratio:.2f}x"
    if len(ours.batch_sizes) == 1 and len(theirs.batch_sizes) == 1 and ours.batch_sizes != theirs.batch_sizes:
        (ours_batch,), (their_batch,) = ours.batch_sizes, theirs.batch_sizes
        if ours_batch and their_batch:
            text += f" ({ratio * ours_batch / their_batch:.2f}x)"
    return text


def _size(row: PairRow) -> str:
    """Transitions our side loaded (d3rlpy's count, when only it ran; it may differ by the last transition), and
    whether the runs' data differ (a remade dataset) or is unverified (a run without a fingerprint)."""
    sizes = sorted(row.ours.dataset_sizes or row.theirs.dataset_sizes)
    text = " / ".join(f"{size:,}" for size in sizes) if sizes else "?"
    if len(row.ours.fingerprints | row.theirs.fingerprints) > 1 or len(row.ours.dataset_sizes) > 1:
        text += ", **runs on different data**"  # a remade dataset: these runs do not compare
    missing = row.ours.unfingerprinted + row.theirs.unfingerprinted
    if missing:
        text += f", unverified ({missing} of {len(row.ours.scores) + len(row.theirs.scores)} runs without fingerprint)"
    return text


def _speed(side: SideRuns) -> str:
    if not side.updates_per_second:
        return "n/a"
    mean = float(np.mean(side.updates_per_second))
    return f"{mean:.1f}" if mean < 20 else f"{mean:.0f}"


def markdown_table(rows: Sequence[PairRow]) -> str:
    """The comparison table, one row per (pair, dataset)."""
    lines = [
        "| algorithm (updates) | dataset (transitions) | ours: score | d3rlpy: score "
        "| within noise? (difference, 2 SE) "
        "| ours updates/s | d3rlpy updates/s | speed ratio (samples/s ratio) | seeds done (ours, d3rlpy) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        updates = sorted(row.ours.updates | row.theirs.updates)
        name = DISPLAY_NAMES.get(row.pair, row.pair)
        budget = "/".join(f"{u:,}" for u in updates)
        lines.append(
            f"| {name} ({budget}) | {row.dataset} ({_size(row)}) | {format_mean_std(row.ours.scores)} "
            f"| {format_mean_std(row.theirs.scores)} | {within_noise(row.ours.scores, row.theirs.scores)} "
            f"| {_speed(row.ours)} | {_speed(row.theirs)} | {_speed_ratio(row.ours, row.theirs)} "
            f"| {len(row.ours.scores)}, {len(row.theirs.scores)} |"
        )
    return "\n".join(lines) + "\n"


TABLE_NOTES = (
    "+- is the population standard deviation over seeds (numpy's std, ddof=0); the within-noise test's standard "
    "errors use the sample one (ddof=1). \"unverified\": some of the row's runs recorded no fingerprint of their "
    "data (they ran before fingerprints were recorded), so that both sides trained on the same transitions is not "
    "shown; \"runs on different data\": the runs' fingerprints, or our side's numbers of transitions, differ."
)
"""The sentences printed under the table."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rl.external.offline_comparison", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("results_dir", help="the offline benchmark's folder, e.g. results/offline")
    args = parser.parse_args(argv)
    try:
        rows = pair_rows(args.results_dir)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not rows:
        print(f"error: no finished runs under {args.results_dir}/*/runs/: run `python -m rl.benchmark --name "
              f"offline/<algo> --algos <algo> d3rlpy_<algo> --datasets ...` first.", file=sys.stderr)
        return 2
    sys.stdout.write(markdown_table(rows) + "\n" + TABLE_NOTES + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
