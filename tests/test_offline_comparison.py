"""The ours-vs-d3rlpy table: rows per (pair, dataset), the within-noise rule, speed ratios, the CLI's errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from rl.external.offline_comparison import TABLE_NOTES, main, markdown_table, pair_rows, within_noise


def write_run(root: Path, pair: str, label: str, dataset: str, seed: int, score: float, speed: float,
              batch_size: int = 256, size: int = 1000, updates: int = 500, fingerprint: str | None = "f0",
              source_fingerprint: str | None = None) -> None:
    """A finished run's record; ``fingerprint=None`` is a run recorded before fingerprints were."""
    folder = root / pair / "runs" / label / f"{dataset}_seed{seed}"
    folder.mkdir(parents=True)
    record = {"final_normalized_score": score, "steps_per_second": speed, "dataset_size": size,
              "offline_steps": updates, "hyperparams": {"batch_size": batch_size}, "dataset_fingerprint": fingerprint}
    if source_fingerprint is not None:  # a d3rlpy run: the fingerprint of the dataset its exported file came from
        record["source_dataset_fingerprint"] = source_fingerprint
    (folder / "run.json").write_text(json.dumps(record))


def test_within_noise_is_two_standard_errors_of_the_difference():
    ours, theirs = [10.0, 12.0, 14.0], [9.0, 10.0, 11.0]  # sample variances 4 and 1
    two_se = 2 * math.sqrt(4 / 3 + 1 / 3)
    assert within_noise(ours, theirs) == f"yes (+2.0, {two_se:.1f})"
    assert within_noise([20.0, 21.0, 22.0], theirs).startswith("no, ours higher (+11.0")
    assert within_noise([0.0, 1.0, 2.0], theirs).startswith("no, ours lower (-9.0")
    assert within_noise([10.0], theirs) == "n/a (< 2 seeds each)"


def test_table_rows_follow_the_pair_order_and_report_speed_and_samples_ratio(tmp_path):
    for seed, (score, speed) in enumerate([(40.0, 100.0), (42.0, 110.0)]):
        write_run(tmp_path, "iql", "iql", "hopper-medium-v2", seed, score, speed, size=200_028)
        write_run(tmp_path, "iql", "d3rlpy_iql", "hopper-medium-v2", seed, score - 1, speed / 2, size=200_027)
    write_run(tmp_path, "awac", "awac", "hopper-medium-v2", 0, 20.0, 40.0, batch_size=256)
    write_run(tmp_path, "awac", "d3rlpy_awac", "hopper-medium-v2", 0, 10.0, 10.0, batch_size=1024)
    write_run(tmp_path, "td3_bc", "td3_bc", "walker2d-medium-replay-v2", 0, 5.0, 90.0)  # d3rlpy side not run yet
    (tmp_path / "td3_bc" / "runs" / "td3_bc" / "walker2d-medium-replay-v2_seed1").mkdir()  # unfinished: no run.json

    rows = pair_rows(tmp_path)
    assert [(r.pair, r.dataset) for r in rows] == [
        ("td3_bc", "walker2d-medium-replay-v2"), ("iql", "hopper-medium-v2"), ("awac", "hopper-medium-v2")]
    lines = markdown_table(rows).splitlines()
    assert lines[2].startswith("| TD3+BC (500) | walker2d-medium-replay-v2 (1,000) | 5.0 +- 0.0 | n/a |")
    assert lines[2].endswith("| 90 | n/a | n/a | 1, 0 |")
    assert "| IQL (500) | hopper-medium-v2 (200,028) | 41.0 +- 1.0 | 40.0 +- 1.0 | yes (+1.0," in lines[3]
    assert lines[3].endswith("| 105 | 52 | 2.00x | 2, 2 |")
    # AWAC: 4x the updates per second on a quarter of the batch is the same samples per second.
    assert lines[4].endswith("| 40 | 10.0 | 4.00x (1.00x) | 1, 1 |")


def test_runs_on_different_data_are_flagged(tmp_path):
    write_run(tmp_path, "cql", "cql", "hopper-medium-v2", 0, 30.0, 5.0, fingerprint="aaaa")
    write_run(tmp_path, "cql", "d3rlpy_cql", "hopper-medium-v2", 0, 20.0, 5.0, fingerprint="aaaa")
    write_run(tmp_path, "cql", "cql", "walker2d-medium-replay-v2", 0, 30.0, 5.0, fingerprint="aaaa")
    write_run(tmp_path, "cql", "d3rlpy_cql", "walker2d-medium-replay-v2", 0, 20.0, 5.0, fingerprint="bbbb")
    write_run(tmp_path, "cql", "d3rlpy_cql", "walker2d-medium-replay-v2", 1, 20.0, 5.0, fingerprint=None)
    write_run(tmp_path, "iql", "iql", "hopper-medium-v2", 0, 30.0, 5.0, size=1000, fingerprint=None)  # sizes
    write_run(tmp_path, "iql", "iql", "hopper-medium-v2", 1, 30.0, 5.0, size=1200, fingerprint=None)
    iql, hopper, walker = markdown_table(pair_rows(tmp_path)).splitlines()[2:]  # pairs in PAIR_ORDER
    assert "| hopper-medium-v2 (1,000) |" in hopper  # neither flag: same fingerprint on both sides
    assert "| hopper-medium-v2 (1,000 / 1,200, **runs on different data**, unverified (2 of 2 runs without " \
           "fingerprint)) |" in iql
    assert "| walker2d-medium-replay-v2 (1,000, **runs on different data**, unverified (1 of 3 runs without " \
           "fingerprint)) |" in walker


def test_rows_with_a_run_without_fingerprint_say_unverified(tmp_path):
    for seed in range(2):
        write_run(tmp_path, "td3_bc", "td3_bc", "hopper-medium-v2", seed, 30.0, 5.0, fingerprint="src")
        # d3rlpy's own fingerprint is its exported file's; the source's is the one compared with ours.
        write_run(tmp_path, "td3_bc", "d3rlpy_td3_bc", "hopper-medium-v2", seed, 30.0, 5.0, fingerprint="file",
                  source_fingerprint="src")
        write_run(tmp_path, "td3_bc", "td3_bc", "walker2d-medium-v2", seed, 30.0, 5.0, fingerprint=None)
        write_run(tmp_path, "td3_bc", "d3rlpy_td3_bc", "walker2d-medium-v2", seed, 30.0, 5.0, fingerprint="file",
                  source_fingerprint="src")
        write_run(tmp_path, "td3_bc", "td3_bc", "halfcheetah-medium-v2", seed, 30.0, 5.0, fingerprint="src")
        write_run(tmp_path, "td3_bc", "d3rlpy_td3_bc", "halfcheetah-medium-v2", seed, 30.0, 5.0,
                  fingerprint=None if seed else "src")  # seed 0 from before exports were checked: the source's
    halfcheetah, hopper, walker = markdown_table(pair_rows(tmp_path)).splitlines()[2:]
    assert "| hopper-medium-v2 (1,000) |" in hopper
    assert "| walker2d-medium-v2 (1,000, unverified (2 of 4 runs without fingerprint)) |" in walker
    assert "| halfcheetah-medium-v2 (1,000, unverified (1 of 4 runs without fingerprint)) |" in halfcheetah


def test_cli_prints_the_table_and_names_the_fix_when_there_is_nothing(tmp_path, capsys):
    assert main([str(tmp_path / "missing")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main([str(tmp_path)]) == 2
    assert "python -m rl.benchmark --name offline/<algo>" in capsys.readouterr().err
    write_run(tmp_path, "cql", "cql", "hopper-medium-v2", 0, 30.0, 5.0)
    assert main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| CQL (500) | hopper-medium-v2 (1,000) | 30.0 +- 0.0 |" in out
    assert TABLE_NOTES in out and "population standard deviation" in TABLE_NOTES and '"unverified"' in TABLE_NOTES


def test_committed_offline_readme_shows_the_current_table():
    """results/offline/README.md holds the table this module prints for the committed runs, and its notes."""
    root = Path(__file__).resolve().parents[1] / "results" / "offline"
    readme = (root / "README.md").read_text()
    assert markdown_table(pair_rows(root)) in readme and TABLE_NOTES in readme


@pytest.mark.parametrize("name", ["td3_bc", "iql", "awac", "cql"])
def test_committed_offline_results_are_readable(name):
    """The committed folders parse: every pair there yields rows with at least one finished run."""
    root = Path(__file__).resolve().parents[1] / "results" / "offline"
    rows = [row for row in pair_rows(root) if row.pair == name]
    assert rows and all(row.ours.scores or row.theirs.scores for row in rows)
