"""The QD command line and run folders (qd/run.py): bad input, resume rules, Ctrl-C and the pictures."""

from __future__ import annotations

import json
import os
import signal
import string
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qd_point_task import register_point_task

import qd.run
from qd import MapElites, NoveltySearch, QDRun, RunMetrics, SerialEvaluator, main
from qd.evaluation import EvaluationResult, task_spec
from qd.run import outcome_geometry, picture_figures
from qd.serene import SERENE
from qd.taxons import TAXONS

ENV_ID = "QDRunTestPoint-v0"
register_point_task(ENV_ID, goal=(0.25, 0.25), radius=0.3, graded=True, frame_size=8)
TINY = ["pop_size:6", "archive_per_generation:2"]
"""NS: 6 initial evaluations, then 12 per generation."""


def _cli(tmp_path: Path, *argv: str, algo: type = NoveltySearch) -> int:
    return main(algo, ["-f", str(tmp_path), "--no-progress", *argv])


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in lines[0], lines
    return lines[0]


# -- bad input ------------------------------------------------------------------------------------------------
def test_bad_values_give_one_line_exit_2_and_no_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    cases = [
        (SERENE, ["--env", ENV_ID, "-params", "chunk_size:0"], "chunk_size must be >= 1, got 0"),
        (SERENE, ["--env", ENV_ID, "-params", "emitter:cma"], "emitter must be one of"),
        (SERENE, ["--env", ENV_ID, "-params", "chunk_size:abc"], "'chunk_size' of serene must be int"),
        (NoveltySearch, ["--env", ENV_ID, "--budget", "0"], "--budget must be >= 1"),
        (NoveltySearch, ["--env", ENV_ID, "--workers", "0"], "--workers must be >= 1"),
        (NoveltySearch, ["--budget", "10"], "--env is required"),
        (MapElites, ["--env", ENV_ID, "-params", "sigma:nan"], "must be a finite number"),
        (TAXONS, ["--env", ENV_ID, "-params", "observation_kind:pixels"], "observation_kind must be one of"),
        (NoveltySearch, ["--env", ENV_ID, "--address", "auto"], "--address needs --backend ray"),
        (NoveltySearch, ["--env", ENV_ID, "--backend", "ray", "--batch-size", "0"], "--batch-size must be >= 1"),
    ]
    for algo, argv, expected in cases:
        assert _cli(tmp_path, *argv, algo=algo) == 2, argv
        line = _one_line_error(capsys)
        assert expected in line, (argv, line)
    assert not any(tmp_path.iterdir())  # no run folder left behind


def test_a_bad_value_from_the_shell_prints_one_line(tmp_path: Path):
    import subprocess
    import sys

    # In a fresh interpreter: the package imports no algorithm module, so runpy adds no warning line either.
    argv = [sys.executable, "-m", "qd.serene", "--env", "RedundantArm-v0", "-f", str(tmp_path), "-params",
            "emitter:cma"]
    done = subprocess.run(argv, cwd=Path(__file__).resolve().parents[1], env={**os.environ, "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "error: serene refuses -params emitter:'cma': emitter must be one of ('elitist', 'cmaes'), got 'cma'. "
        "Fix that value."]
    assert not any(tmp_path.iterdir())


_INT_KEYS = ("pop_size", "chunk_size", "emitter_pop_size", "bootstrap_generations", "k_neighbors",
             "offspring_per_parent")
_bad_int = st.one_of(st.integers(max_value=0), st.text(string.ascii_letters, min_size=1, max_size=8),
                     st.sampled_from(["1.5", "nan", "inf", "-2.0", "[3]", "{}", "True"]))
_bad_params = st.one_of(
    st.tuples(st.sampled_from(_INT_KEYS), _bad_int),
    st.tuples(st.just("emitter"), st.text(string.ascii_letters, min_size=1, max_size=8).filter(
        lambda text: text not in ("elitist", "cmaes"))),
    st.tuples(st.just("mutation_sigma"), st.sampled_from(["-0.1", "nan", "-inf", "abc", "None"])),
    st.tuples(st.just("archive_selection"), st.sampled_from(["worst", "3", "None"])),
)


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(param=_bad_params, budget=st.one_of(st.none(), st.integers(max_value=0)))
def test_malformed_input_never_ends_in_a_traceback(param: tuple[str, str], budget: int | None,
                                                   capsys: pytest.CaptureFixture[str]):
    key, value = param
    with tempfile.TemporaryDirectory() as folder:
        argv = ["--env", ENV_ID, "-params", f"{key}:{value}", *([] if budget is None else ["--budget", str(budget)])]
        assert main(SERENE, ["-f", folder, "--no-progress", *argv]) == 2
        _one_line_error(capsys)
        assert not any(Path(folder).iterdir())


# -- resume ----------------------------------------------------------------------------------------------------
def test_resume_refuses_other_inputs_and_a_smaller_budget(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert _cli(tmp_path, "--env", ENV_ID, "--budget", "30", "--seed", "1", "-params", *TINY) == 0
    run_dir = tmp_path / "ns" / f"{ENV_ID}_1"
    config = (run_dir / "config.json").read_text()
    capsys.readouterr()
    refused = [
        (["--budget", "20"], "below the budget 30"),
        (["--seed", "2"], "seed 1 -> 2"),
        (["-params", "pop_size:7", "archive_per_generation:2"], "hyperparams"),
        (["--env", "QDOther-v0"], "env"),
    ]
    for argv, expected in refused:
        assert _cli(tmp_path, "--resume", str(run_dir), *argv) == 2, argv
        assert expected in _one_line_error(capsys)
    assert main(SERENE, ["--resume", str(run_dir), "--no-progress"]) == 2
    assert "resume it with its own entry point (python -m qd.ns" in _one_line_error(capsys)
    assert (run_dir / "config.json").read_text() == config  # nothing rewritten
    # The run's own inputs (or none) and a larger budget are fine; the extension is recorded.
    assert _cli(tmp_path, "--resume", str(run_dir), "--seed", "1", "--budget", "42") == 0
    recorded = json.loads((run_dir / "config.json").read_text())
    assert recorded["budget"] == 42 and recorded["resumes"] == [{"from_evaluations": 30, "budget": 42}]
    assert _cli(tmp_path, "--resume", str(run_dir)) == 0  # no --budget: the run's own
    assert json.loads((run_dir / "metrics.json").read_text())["evaluations"] == 42


# -- Ctrl-C ----------------------------------------------------------------------------------------------------
class _InterruptingEvaluator(SerialEvaluator):
    """Sends itself SIGINT (``times`` signals) during its ``at``-th call, as a Ctrl-C in the middle of a generation."""

    def __init__(self, env_id: str, at: int, times: int = 1) -> None:
        super().__init__(env_id)
        self.calls, self.at, self.times = 0, at, times

    def evaluate(self, genomes: np.ndarray, *, render: bool = False) -> list[EvaluationResult]:
        self.calls += 1
        if self.calls == self.at:
            for _ in range(self.times):
                os.kill(os.getpid(), signal.SIGINT)
        return super().evaluate(genomes, render=render)


def test_ctrl_c_checkpoints_at_the_generation_end_and_resumes_exactly(tmp_path: Path, monkeypatch,
                                                                       capsys: pytest.CaptureFixture[str]):
    monkeypatch.setattr(qd.run, "make_evaluator", lambda env_id, workers, **_: _InterruptingEvaluator(env_id, at=3))
    argv = ["--env", ENV_ID, "--budget", "60", "--save-freq", "-1", "-params", *TINY]
    assert _cli(tmp_path, *argv) == 130
    err = capsys.readouterr().err
    run_dir = tmp_path / "ns" / f"{ENV_ID}_1"
    assert f"Interrupted after 30 evaluations: checkpoint {run_dir / 'checkpoint.pkl'} saved" in err
    assert f"--resume {run_dir}" in err and "Traceback" not in err
    monkeypatch.setattr(qd.run, "make_evaluator", lambda env_id, workers, **_: SerialEvaluator(env_id))
    assert _cli(tmp_path, "--resume", str(run_dir)) == 0
    straight = NoveltySearch(ENV_ID, seed=0, pop_size=6, archive_per_generation=2)
    straight.run(60)
    resumed = QDRun.resume(run_dir, progress=False).algorithm
    np.testing.assert_array_equal(resumed.metrics.outcomes, straight.metrics.outcomes)


def test_a_second_ctrl_c_stops_at_once_and_keeps_the_last_checkpoint(tmp_path: Path, monkeypatch,
                                                                     capsys: pytest.CaptureFixture[str]):
    monkeypatch.setattr(qd.run, "make_evaluator",
                        lambda env_id, workers, **_: _InterruptingEvaluator(env_id, 4, times=2))
    assert _cli(tmp_path, "--env", ENV_ID, "--budget", "60", "--save-freq", "10", "-params", *TINY) == 130
    err = capsys.readouterr().err
    run_dir = tmp_path / "ns" / f"{ENV_ID}_1"
    assert "Stopped at once, inside a generation: nothing saved; the newest checkpoint" in err
    assert "30 evaluations" in err  # saved after generation 2 (18 -> 30 crossed 20 and 30)
    assert QDRun.resume(run_dir, progress=False).algorithm.evaluations == 30


# -- pictures --------------------------------------------------------------------------------------------------
def test_geometry_is_read_from_the_env_modules():
    from envs import ant_maze, curling, hard_maze, redundant_arm

    maze = outcome_geometry("HardMaze-v0")
    assert maze.y_down and len(maze.walls) == len(hard_maze.MAZE_POLYGONS)
    for drawn, wall in zip(maze.walls, hard_maze.MAZE_POLYGONS):
        np.testing.assert_array_equal(drawn, wall)
    assert [g[0] for g in maze.goals] == list(task_spec("HardMaze-v0").reward_areas)
    np.testing.assert_array_equal([g[1] for g in maze.goals], hard_maze.GOAL_CENTERS)
    np.testing.assert_array_equal([g[2] for g in maze.goals], hard_maze.GOAL_RADII)
    np.testing.assert_allclose(maze.start, hard_maze.START_POSE[:2])
    arm = outcome_geometry("RedundantArm-v0")
    assert not arm.y_down and len(arm.walls) == len(redundant_arm.WALLS)
    x, y, width, height = redundant_arm.WALLS[0]
    np.testing.assert_allclose(arm.walls[0].min(axis=0), [x, y])
    np.testing.assert_allclose(arm.walls[0].max(axis=0), [x + width, y + height])
    np.testing.assert_allclose(arm.start, redundant_arm.forward_kinematics(redundant_arm.START_ANGLES)[-1])
    table = outcome_geometry("Curling-v0")
    np.testing.assert_allclose(table.start, curling.BALL_START)
    inner_faces = [np.abs(wall).min() for wall in table.walls]  # walls centred on the table's edges
    np.testing.assert_allclose(inner_faces, [curling.TABLE_SIZE / 2 - curling.WALL_THICKNESS / 2] * 4)
    ant = outcome_geometry("AntMaze-v0")
    assert len(ant.walls) == len(ant_maze.WALL_BOXES) and len(ant.goals) == len(ant_maze.GOAL_CENTERS)
    assert np.allclose(ant.start, ant_maze.START_POSITION[:2], atol=ant_maze.RESET_QPOS_NOISE + 1e-9)


def _metrics(env_id: str, outcomes: list[list[float]], rewards: list[float]) -> RunMetrics:
    task = task_spec(env_id)
    metrics = RunMetrics(task.outcome_bounds, task.reward_areas)
    metrics.update([EvaluationResult(reward=r, reward_area=0 if r > 0 else -1, outcome=np.asarray(o, float),
                                     trajectory=np.asarray([o], float), observation=None, state=np.zeros(2))
                    for o, r in zip(outcomes, rewards)])
    return metrics


def test_maps_draw_walls_goals_and_start_the_right_way_up():
    import matplotlib.pyplot as plt

    from envs import hard_maze

    figures = picture_figures("ns", "HardMaze-v0", _metrics("HardMaze-v0", [[60.0, 450.0], [300.0, 100.0]], [0, 0]))
    for name in ("coverage_map.png", "reward_areas.png"):
        ax = figures[name].axes[0]
        assert ax.yaxis_inverted()  # y = 0 at the top, as the render and the papers' figures
        assert len(ax.patches) == len(hard_maze.MAZE_POLYGONS) + len(hard_maze.GOAL_CENTERS)
        assert any(line.get_label() == "start" for line in ax.lines)
    assert "no reward found" in figures["reward_areas.png"].axes[0].get_title()
    right = figures["curves.png"].axes[1]
    assert [text.get_text() for text in right.texts] == ["no reward found"] and not right.lines
    arm = picture_figures("ns", "RedundantArm-v0", _metrics("RedundantArm-v0", [[0.25, 0.25]], [0.5]))
    assert not arm["coverage_map.png"].axes[0].yaxis_inverted()
    assert not arm["curves.png"].axes[1].texts and arm["curves.png"].axes[1].lines
    for figure in [*figures.values(), *arm.values()]:
        plt.close(figure)
