"""Curling-v0 and AntMaze-v0 batches stepped in lockstep (qd.fast_mujoco) against run_episode: equal bit for bit.

Same MjModel, a copy of the reset MjData per genome, the same controls: MuJoCo is deterministic, so trajectories,
final states, rewards and renders are compared with exact equality.
"""

from __future__ import annotations

import numpy as np
import pytest

from envs.ant_maze import AntMazeEnv
from envs.curling import CurlingEnv
from qd.evaluation import SerialEvaluator
from qd.fast_mujoco import MujocoBatchKernel
from qd.fast_numpy import numpy_loops
from qd.genome import genome_size


def assert_same(fast: list, slow: list) -> None:
    assert len(fast) == len(slow)
    for a, b in zip(fast, slow):
        np.testing.assert_array_equal(a.trajectory, b.trajectory)
        np.testing.assert_array_equal(a.outcome, b.outcome)
        np.testing.assert_array_equal(a.state, b.state)
        assert (a.reward, a.reward_area) == (b.reward, b.reward_area)
        if a.observation is not None or b.observation is not None:
            np.testing.assert_array_equal(a.observation, b.observation)


@pytest.fixture(scope="module")
def curling() -> MujocoBatchKernel:
    return MujocoBatchKernel(CurlingEnv, numpy_loops())


def test_curling_matches_run_episode_exactly(curling):
    genomes = np.random.default_rng(5).uniform(-1, 1, (6, genome_size("Curling-v0")))
    slow = SerialEvaluator("Curling-v0", fast=False).evaluate(genomes)
    fast = curling.evaluate(genomes)
    assert_same(fast, slow)
    assert np.ptp(np.stack([r.outcome for r in slow]), axis=0).max() > 0.05  # the arms pushed the ball around
    # a genome's episode does not depend on the rest of its batch
    assert_same(curling.evaluate(genomes[2:3]), slow[2:3])


def test_curling_render_is_the_envs(curling):
    genomes = np.random.default_rng(6).uniform(-1, 1, (2, genome_size("Curling-v0")))
    assert_same(curling.evaluate(genomes, render=True), SerialEvaluator("Curling-v0", fast=False).evaluate(
        genomes, render=True))


def test_ant_maze_matches_run_episode_exactly():
    kernel = MujocoBatchKernel(AntMazeEnv, numpy_loops())
    genomes = np.random.default_rng(8).uniform(-1, 1, (2, genome_size("AntMaze-v0")))
    slow = SerialEvaluator("AntMaze-v0", fast=False).evaluate(genomes, render=True)
    assert_same(kernel.evaluate(genomes, render=True), slow)
    assert not np.array_equal(slow[0].trajectory, slow[1].trajectory)
