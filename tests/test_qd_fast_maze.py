"""HardMaze-v0's compiled episodes (qd.fast_maze) against run_episode: equal bit for bit (no tolerance).

The kernel repeats the env's arithmetic in the same order and takes numpy's own exp / arctan2 / matmul where
they could differ from the C library's (qd.fast_numpy), so every comparison here is exact equality.
"""

from __future__ import annotations

import numpy as np
import pytest

from envs import hard_maze
from qd.evaluation import SerialEvaluator
from qd.fast_maze import HardMazeKernel
from qd.fast_numpy import numpy_loops
from qd.genome import genome_size

ENV_ID = "HardMaze-v0"


@pytest.fixture(scope="module")
def kernel() -> HardMazeKernel:
    return HardMazeKernel(numpy_loops())


@pytest.fixture(scope="module")
def genomes() -> np.ndarray:
    rng = np.random.default_rng(7)
    size = genome_size(ENV_ID)
    # uniform in the genome bounds, as the algorithms draw them, plus larger weights (saturated, wall-hugging)
    return np.concatenate([rng.uniform(-1, 1, (16, size)), rng.uniform(-4, 4, (4, size))])


@pytest.fixture(scope="module")
def reference(genomes: np.ndarray) -> list:
    return SerialEvaluator(ENV_ID, fast=False).evaluate(genomes)


def assert_same(fast: list, slow: list) -> None:
    assert len(fast) == len(slow)
    for a, b in zip(fast, slow):
        np.testing.assert_array_equal(a.trajectory, b.trajectory)
        np.testing.assert_array_equal(a.outcome, b.outcome)
        np.testing.assert_array_equal(a.state, b.state)
        assert (a.reward, a.reward_area) == (b.reward, b.reward_area)
        assert a.state.dtype == b.state.dtype and a.trajectory.shape == b.trajectory.shape


def test_random_genomes_match_run_episode_exactly(kernel, genomes, reference):
    fast = kernel.evaluate(genomes)
    assert_same(fast, reference)
    assert all(r.observation is None for r in fast)
    # the robots went places (not a vacuous comparison): many distinct final cells, some wall contacts
    assert len({tuple(np.round(r.outcome / 30)) for r in reference}) > 10
    assert any(np.any(np.all(np.diff(r.trajectory, axis=0) == 0, axis=1)) for r in reference)


def test_numpy_controller_path_gives_the_same_results(genomes, reference):
    exact = HardMazeKernel(numpy_loops(), exact_controller=True)
    assert_same(exact.evaluate(genomes[:12]), reference[:12])
    assert exact.fallbacks == 12 * hard_maze.MAX_STEPS  # every step went through numpy's loops


def test_a_genome_does_not_depend_on_its_batch(kernel, genomes):
    alone = kernel.evaluate(genomes[4:5])
    together = kernel.evaluate(genomes[:8])
    np.testing.assert_array_equal(alone[0].trajectory, together[4].trajectory)


def test_reward_and_render_match(kernel, genomes, monkeypatch):
    final = kernel.evaluate(genomes[:1])[0].outcome
    goals = hard_maze.GOAL_CENTERS.copy()
    goals[1] = final + np.array([10.0, 0.0])  # the second area, 10 from its centre: reward (50 - 10) / 50
    monkeypatch.setattr(hard_maze, "GOAL_CENTERS", goals)
    fast = kernel.evaluate(genomes[:2], render=True)
    slow = SerialEvaluator(ENV_ID, fast=False).evaluate(genomes[:2], render=True)
    assert_same(fast, slow)
    assert fast[0].reward_area == 1 and fast[0].reward == pytest.approx(0.8)
    for a, b in zip(fast, slow):
        assert a.observation.shape == (64, 64)
        np.testing.assert_array_equal(a.observation, b.observation)


def test_wrong_genome_size_is_refused(kernel):
    with pytest.raises(ValueError, match="genomes must have shape"):
        kernel.evaluate(np.zeros((2, genome_size(ENV_ID) + 1)))
