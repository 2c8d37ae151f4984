"""Where a QD run's time goes (qd/phase_clock.py): the clock's arithmetic on a fake timer, and the phases a real
NS, SERENE, TAXONS and STAX run fill, through metrics.json and a resume, into the benchmark's report."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from qd_point_task import register_point_task

import qd.phase_clock
from qd.benchmark import time_lines
from qd.ns import NoveltySearch
from qd.phase_clock import PhaseClock
from qd.run import QDRun
from qd.serene import SERENE
from qd.stax import STAX
from qd.taxons import TAXONS

POINT_ID = "QDClockPoint-v0"
register_point_task(POINT_ID, max_steps=4, step_size=0.3, radius=0.6)


@pytest.fixture
def fake_timer(monkeypatch):
    """perf_counter returns 0, 1, 2, ...: every measured block lasts one tick per timer read inside it + 1."""
    ticks = itertools.count()
    monkeypatch.setattr(qd.phase_clock.time, "perf_counter", lambda: float(next(ticks)))


def test_phases_add_up_and_a_nested_phase_counts_for_the_outer_one(fake_timer):
    clock = PhaseClock()
    with clock.measure("generation"):  # reads 0 ... 9
        with clock.measure("evaluation"):  # 1 -> 2
            pass
        with clock.measure("novelty"):  # 3 -> 4
            pass
        with clock.measure("autoencoder"):  # 5 -> 8: the novelty inside it is not read
            with clock.measure("novelty"):
                with clock.measure("evaluation"):
                    pass
            _ = qd.phase_clock.time.perf_counter(), qd.phase_clock.time.perf_counter()  # 6, 7
    assert clock.seconds == {"evaluation": 1.0, "novelty": 1.0, "autoencoder": 3.0, "generation": 9.0}
    assert clock.breakdown() == {"evaluation": 1.0, "novelty": 1.0, "autoencoder": 3.0, "other": 4.0, "total": 9.0}


def test_other_is_never_negative_and_unknown_phases_are_refused(fake_timer):
    clock = PhaseClock()
    with clock.measure("evaluation"):  # outside any generation (an evaluation a caller made itself)
        pass
    assert clock.breakdown() == {"evaluation": 1.0, "novelty": 0.0, "autoencoder": 0.0, "other": 0.0, "total": 1.0}
    with pytest.raises(KeyError, match="unknown phase 'selection'; the phases are evaluation, novelty"):
        with clock.measure("selection"):
            pass


def test_state_round_trip_and_an_old_checkpoint_without_a_clock():
    clock = PhaseClock()
    clock.seconds.update(evaluation=2.5, generation=4.0)
    restored = PhaseClock()
    restored.load_state_dict(clock.state_dict())
    assert restored.seconds == clock.seconds
    restored.load_state_dict(None)  # a checkpoint written before the clock existed
    assert set(restored.seconds.values()) == {0.0}


@pytest.mark.parametrize("algo_class, kwargs, phases", [
    (NoveltySearch, {"pop_size": 4}, ("evaluation", "novelty")),
    (SERENE, {"pop_size": 4, "chunk_size": 16, "emitter_pop_size": 3, "bootstrap_generations": 2},
     ("evaluation", "novelty")),
    (TAXONS, {"pop_size": 4, "chunk_size": 12, "observation_kind": "state", "max_epochs": 2},
     ("evaluation", "novelty", "autoencoder")),
    (STAX, {"pop_size": 4, "chunk_size": 16, "observation_kind": "state", "max_epochs": 2, "emitter_pop_size": 3,
            "bootstrap_generations": 2}, ("evaluation", "novelty", "autoencoder")),
], ids=["ns", "serene", "taxons", "stax"])
def test_runs_record_their_phases_and_a_resume_keeps_counting(tmp_path, algo_class, kwargs, phases):
    algorithm = algo_class(POINT_ID, seed=0, **kwargs)
    config = {"algo": algo_class.name, "env": POINT_ID, "seed": 0, "hyperparams": kwargs, "budget": 30}
    run = QDRun(algorithm, tmp_path / "run", config=config, save_freq=0, progress=False)
    run.run(30)
    first = dict(algorithm.clock.seconds)
    assert all(first[phase] > 0 for phase in phases), first
    if "autoencoder" not in phases:
        assert first["autoencoder"] == 0.0
    resumed = QDRun.resume(tmp_path / "run", progress=False)
    assert resumed.algorithm.clock.seconds == first  # the checkpoint carries the totals
    metrics = resumed.run(60)
    seconds = json.loads((tmp_path / "run" / "metrics.json").read_text())["seconds"]
    assert seconds == metrics["seconds"]
    assert all(seconds[phase] >= first[phase] for phase in phases) and seconds["total"] > first["generation"]
    assert seconds["other"] >= 0
    assert np.isclose(seconds["evaluation"] + seconds["novelty"] + seconds["autoencoder"] + seconds["other"],
                      seconds["total"])


def test_the_report_says_where_the_time_goes():
    def record(evaluation: float, novelty: float, wall: float) -> dict:
        return {"seconds": {"evaluation": evaluation, "novelty": novelty, "autoencoder": 0.0,
                            "other": 10.0 - evaluation - novelty, "total": 10.0},
                "benchmark": {"wall_seconds": wall}}

    lines = time_lines({"ns": [record(6.0, 2.0, 600.0), record(8.0, 2.0, 1200.0)], "old": [{"benchmark": {}}]})
    assert lines == ["", "Where the time goes:", "",
                     "- ns: 15.0 +- 5.0 min per run (wall clock, all segments); of the generations' time: "
                     "evaluation 70%, novelty 20%, autoencoder 0%, other 10%."]
    assert time_lines({"old": [{"benchmark": {}}]}) == []  # runs from before the clock: no section
