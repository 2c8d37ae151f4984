"""The QD benchmark harness: tiny runs write the table, the curves and the command, a rerun skips finished runs,
and bad requests fail with close names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qd import benchmark
from rl.envs import UnknownEnvError
from rl.hyperparams import HyperparameterError

ENV = "RedundantArm-v0"
TINY = ["ns.pop_size:10", "map_elites.batch_size:10", "serene.pop_size:10", "serene.chunk_size:10",
        "serene.bootstrap_generations:1", "taxons.pop_size:3", "taxons.chunk_size:6", "taxons.max_epochs:1",
        "stax.pop_size:3", "stax.chunk_size:6", "stax.max_epochs:1", "stax.emitter_pop_size:3",
        "stax.bootstrap_generations:1"]
"""Tiny runs; TAXONS and STAX keep the benchmark's image input (the final 64x64 render)."""


def _run(tmp_path: Path, algos: list[str], budget: int = 30, extra: tuple[str, ...] = ()) -> str:
    argv = ["--name", "tiny", "--algos", *algos, "--envs", ENV, "--seeds", "0", "--budget", str(budget),
            "--workers", "1", "--save-freq", "10", "--no-progress", "-f", str(tmp_path / "results"),
            "--logs-root", str(tmp_path / "logs"), "-params", *[p for p in TINY if p.split(".")[0] in algos], *extra]
    assert benchmark.main(argv) == 0
    return (tmp_path / "results" / "tiny" / "README.md").read_text()


def test_tiny_benchmark_writes_report_and_skips_finished_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    algos = ["stax", "serene", "taxons", "ns", "map_elites"]
    table = _run(tmp_path, algos, budget=25)  # no algorithm's generations add up to 25 exactly
    out = tmp_path / "results" / "tiny"
    for name in ("README.md", "curves.png", "command.txt", "versions.json"):
        assert (out / name).is_file(), name
    assert "qd.benchmark" in (out / "command.txt").read_text() or (out / "command.txt").read_text().strip()
    assert "ribs" in json.loads((out / "versions.json").read_text())
    assert f"## {ENV}" in table and "Targets:" in table and "every metric read at exactly 25" in table
    assert "SERENE reaches reward in fewer evaluations than NS" in table
    assert "the final 64x64 render" in table and "taxons autoencoder, per seed:" in table
    spent = {}
    for algo in algos:
        run_dir = out / "runs" / algo / f"{ENV}_seed0"
        metrics = json.loads((run_dir / "metrics.json").read_text())
        # Every algorithm reports exactly the budget, whatever its last generation spent.
        assert metrics["evaluations"] == metrics["budget"] == 25 == metrics["history"][-1]["evaluations"]
        spent[algo] = metrics["evaluations_spent"]
        assert (run_dir / "coverage_map.png").is_file() and (run_dir / "benchmark.json").is_file()
        assert f"| {algo} | 1/1 |" in table
        assert (tmp_path / "logs" / "tiny" / algo / f"{ENV}_seed0" / "checkpoint.pkl").is_file()
    assert len(set(spent.values())) > 1 and min(spent.values()) >= 25  # the overshoots differ, the reports not
    config = json.loads((out / "runs" / "taxons" / f"{ENV}_seed0" / "config.json").read_text())
    assert config["hyperparams"]["observation_kind"] == "image"

    def must_not_run(spec):
        raise AssertionError(f"finished run redone: {spec}")

    monkeypatch.setattr(benchmark, "execute", must_not_run)
    assert _run(tmp_path, algos, budget=25) == table


def test_a_finished_run_with_other_inputs_is_not_reused(tmp_path: Path):
    _run(tmp_path, ["ns"], budget=10)
    specs = benchmark.plan("tiny", ["ns"], [ENV], [0], 10, hyperparams={"ns": {"pop_size": 5}},
                           results_root=str(tmp_path / "results"), logs_root=str(tmp_path / "logs"))
    assert not specs[0].done  # the finished run had pop_size 10
    table = _run(tmp_path, ["ns"], budget=20, extra=("ns.mutation_sigma:0.1",))
    assert "## Failed runs" in table and "holds a run with other inputs" in table and "delete that folder" in table


def test_a_report_counts_only_runs_finished_at_its_budget(tmp_path: Path):
    _run(tmp_path, ["ns"], budget=10)
    tiny_ns = benchmark.per_algo_overrides([p for p in TINY if p.startswith("ns.")], ["ns"])
    roots = dict(hyperparams=tiny_ns, results_root=str(tmp_path / "results"), logs_root=str(tmp_path / "logs"))
    assert benchmark.load_finished(benchmark.plan("tiny", ["ns"], [ENV], [0], 10, **roots)[0]) is not None
    larger = benchmark.plan("tiny", ["ns"], [ENV], [0], 20, **roots)
    assert benchmark.load_finished(larger[0]) is None  # kept on disk, but not a 20-evaluation run
    table = Path(benchmark.write_report("tiny", larger, ["ns"], [ENV], results_root=str(tmp_path / "results")))
    assert "| ns | 0/1 |" in table.read_text()


def test_larger_budget_resumes_from_checkpoint(tmp_path: Path):
    _run(tmp_path, ["ns"], budget=10)
    first = json.loads((tmp_path / "results" / "tiny" / "runs" / "ns" / f"{ENV}_seed0" / "metrics.json").read_text())
    _run(tmp_path, ["ns"], budget=30)
    second = json.loads((tmp_path / "results" / "tiny" / "runs" / "ns" / f"{ENV}_seed0" / "metrics.json").read_text())
    assert second["evaluations"] == 30
    assert second["history"][: len(first["history"])] == first["history"]


def test_a_run_stopped_before_its_end_keeps_its_checkpointed_time(tmp_path: Path):
    """A segment killed before the end writes no benchmark.json: the resumed run's wall clock still counts the
    generation time its checkpoint carries (else a resumed STAX run reads as a few seconds)."""
    import pickle

    _run(tmp_path, ["ns"], budget=10)
    work_dir = tmp_path / "logs" / "tiny" / "ns" / f"{ENV}_seed0"
    (work_dir / "benchmark.json").unlink()  # as after a kill
    checkpoint = pickle.loads((work_dir / "checkpoint.pkl").read_bytes())
    checkpoint["state"]["clock"]["generation"] = 1000.0
    (work_dir / "checkpoint.pkl").write_bytes(pickle.dumps(checkpoint))
    _run(tmp_path, ["ns"], budget=20)
    wall = json.loads((tmp_path / "results" / "tiny" / "runs" / "ns" / f"{ENV}_seed0" / "benchmark.json").read_text())
    assert 1000.0 < wall["wall_seconds"] < 1100.0
    assert wall["evaluations_per_wall_second"] == pytest.approx(20 / wall["wall_seconds"])


def test_bad_requests_name_close_choices(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    with pytest.raises(benchmark.BenchmarkError, match="Did you mean: serene"):
        benchmark.algorithm_class("seren")
    with pytest.raises(UnknownEnvError, match="RedundantArm-v0"):
        benchmark.check_request(["ns"], ["RedundantArm-v1"], {})
    with pytest.raises(HyperparameterError, match="pop_size"):
        benchmark.check_request(["ns"], [ENV], {"ns": {"pop_sise": 3}})
    argv = ["--name", "x", "--algos", "nss", "--budget", "10", "-f", str(tmp_path)]
    assert benchmark.main(argv) == 2
    assert "Did you mean: ns" in capsys.readouterr().err
    with pytest.raises(benchmark.BenchmarkError, match="<algo>.<key>"):
        benchmark.per_algo_overrides(["pop_size:3"], ["ns"])


def _record(history: list[tuple[int, float | None]], first: int | None) -> dict:
    return {"history": [{"evaluations": e, "best_reward": r} for e, r in history], "evaluations_to_first_reward": first,
            "reward_areas_found": [], "reward_areas": ["goal"], "best_reward_per_area": {"goal": None}}


def test_targets_compare_serene_and_ns_on_first_reward_and_on_nss_best_reward():
    # SERENE and NS find reward together (SERENE is NS until then); SERENE's emitters then reach NS's best
    # reward (0.6) at 700 evaluations where NS needs 900 on seed 0; on seed 1 NS's 0.5 is reached by both at 400.
    serene = [_record([(100, None), (300, 0.2), (700, 0.6), (900, 0.9)], 300),
              _record([(100, None), (400, 0.5)], 400)]
    ns = [_record([(100, None), (300, 0.2), (900, 0.6)], 300), _record([(100, None), (400, 0.5)], 400)]
    lines = benchmark.check_targets({"serene": serene, "ns": ns}, {"serene": True, "ns": True})
    assert "**not met** (SERENE is NS until its first reward, so this can only tie)" in lines[1]
    assert "700 vs 900 (reward 0.60); 400 vs 400 (reward 0.50)" in lines[2]
    assert lines[2].endswith("**not met** (1/2 seeds faster)")
    assert benchmark.evaluations_to_reward(serene[0], 0.95) == float("inf")
    only_serene_faster = benchmark.check_targets({"serene": serene[:1], "ns": ns[:1]}, {"serene": True, "ns": True})
    assert only_serene_faster[2].endswith("**met** (1/1 seeds faster)")
    no_reward = [_record([(100, None)], None)]
    assert "not checked (NS found no reward)" in benchmark.check_targets(
        {"serene": no_reward, "ns": no_reward}, {"serene": True, "ns": True})[2]


def test_report_says_which_standard_deviation_it_shows(tmp_path: Path):
    from rl.benchmark import STD_NOTE

    specs = benchmark.plan("tiny", ["ns"], [ENV], [0], 30, results_root=str(tmp_path / "results"),
                           logs_root=str(tmp_path / "logs"))
    text = Path(benchmark.write_report("tiny", specs, ["ns"], [ENV], results_root=str(tmp_path / "results")))
    assert STD_NOTE in text.read_text()
