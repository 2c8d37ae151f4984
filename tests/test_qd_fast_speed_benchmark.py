"""A tiny run of qd/speed_benchmark.py: it times both evaluators, finds them equal and writes its report."""

from __future__ import annotations

import json
from pathlib import Path

from qd.speed_benchmark import main


def test_tiny_speed_benchmark_writes_report(tmp_path: Path):
    out = tmp_path / "speed"
    assert main(["--tasks", "RedundantArm-v0", "HardMaze-v0", "--genomes", "2", "--out", str(out)]) == 0
    readme = (out / "README.md").read_text()
    assert "python -m qd.speed_benchmark --tasks RedundantArm-v0 HardMaze-v0 --genomes 2" in readme
    rows = [line for line in readme.splitlines() if line.startswith("| RedundantArm-v0") or
            line.startswith("| HardMaze-v0")]
    assert len(rows) == 2 and all(row.rstrip().endswith("| 0 | yes |") for row in rows)
    results = json.loads((out / "results.json").read_text())
    assert [t["task"] for t in results["tasks"]] == ["RedundantArm-v0", "HardMaze-v0"]
    assert all(t["agree"] and t["max_abs_difference"] == 0.0 and t["fast_wall"] > 0 for t in results["tasks"])
    assert (out / "speed.png").stat().st_size > 1000
