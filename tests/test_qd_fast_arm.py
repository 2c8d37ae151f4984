"""RedundantArm-v0's compiled episodes (qd.fast_arm) against run_episode: equal bit for bit (no tolerance)."""

from __future__ import annotations

import numpy as np
import pytest

from envs import redundant_arm
from qd.evaluation import SerialEvaluator
from qd.fast_arm import RedundantArmKernel
from qd.fast_numpy import numpy_loops
from qd.genome import genome_size

ENV_ID = "RedundantArm-v0"


@pytest.fixture(scope="module")
def kernel() -> RedundantArmKernel:
    return RedundantArmKernel(numpy_loops())


@pytest.fixture(scope="module")
def genomes() -> np.ndarray:
    rng = np.random.default_rng(3)
    size = genome_size(ENV_ID)
    return np.concatenate([rng.uniform(-1, 1, (50, size)), rng.uniform(-3, 3, (10, size))])


@pytest.fixture(scope="module")
def reference(genomes: np.ndarray) -> list:
    return SerialEvaluator(ENV_ID, fast=False).evaluate(genomes)


def assert_same(fast: list, slow: list) -> None:
    assert len(fast) == len(slow)
    for a, b in zip(fast, slow):
        assert a.trajectory.shape == b.trajectory.shape  # same step at which an illegal move ended the episode
        np.testing.assert_array_equal(a.trajectory, b.trajectory)
        np.testing.assert_array_equal(a.outcome, b.outcome)
        np.testing.assert_array_equal(a.state, b.state)
        assert (a.reward, a.reward_area) == (b.reward, b.reward_area)


def test_random_genomes_match_run_episode_exactly(kernel, genomes, reference):
    assert_same(kernel.evaluate(genomes), reference)
    lengths = [len(r.trajectory) for r in reference]
    # both endings are compared: episodes stopped by an illegal move, and episodes that ran to the end
    assert min(lengths) < redundant_arm.MAX_STEPS and lengths.count(redundant_arm.MAX_STEPS) >= 5


def test_numpy_controller_path_gives_the_same_results(genomes, reference):
    exact = RedundantArmKernel(numpy_loops(), exact_controller=True)
    assert_same(exact.evaluate(genomes[:20]), reference[:20])
    assert exact.fallbacks == sum(len(r.trajectory) for r in reference[:20])


def test_reward_and_render_match(kernel, genomes, reference, monkeypatch):
    full = next(i for i, r in enumerate(reference) if len(r.trajectory) == redundant_arm.MAX_STEPS)
    goals = redundant_arm.GOAL_CENTERS.copy()
    goals[2] = reference[full].outcome + np.array([0.0, 0.025])  # half a radius away: reward 0.5
    monkeypatch.setattr(redundant_arm, "GOAL_CENTERS", goals)
    stopped = next(i for i, r in enumerate(reference) if len(r.trajectory) < redundant_arm.MAX_STEPS)
    batch = genomes[[full, stopped]]
    fast = kernel.evaluate(batch, render=True)
    slow = SerialEvaluator(ENV_ID, fast=False).evaluate(batch, render=True)
    assert_same(fast, slow)
    assert fast[0].reward_area == 2 and fast[0].reward == pytest.approx(0.5)
    assert (fast[1].reward, fast[1].reward_area) == (0.0, -1)  # an illegal move earns nothing
    for a, b in zip(fast, slow):
        np.testing.assert_array_equal(a.observation, b.observation)
