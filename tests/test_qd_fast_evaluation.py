"""Selection of the fast evaluation path (qd.fast_evaluation), numpy's loops (qd.fast_numpy) and the compiled
controller (qd.fast_controller): the controller's float32 actions equal MLPController's exactly."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from qd_point_task import register_point_task

from envs.hard_maze import HardMazeEnv
from qd.evaluation import ProcessPoolEvaluator, SerialEvaluator, _ActionScaler, evaluate_genome, evaluate_genomes
from qd.fast_arm import RedundantArmKernel
from qd.fast_controller import _act, _margin, layer_sizes, scaler_arrays
from qd.fast_evaluation import FAST_EVALUATION_ENV, fast_class, fast_kernel, fast_path_enabled
from qd.fast_maze import HardMazeKernel
from qd.fast_numpy import LIBM_ARCTAN2, LIBM_COS, LIBM_EXP, LIBM_SIN, NumpyLoopsUnavailable, _float64_loop, numpy_loops
from qd.genome import MLPController, genome_size

POINT_ID = "QDFastTestPoint-v0"
register_point_task(POINT_ID)
SHORT_MAZE_ID = "QDFastTestShortMaze-v0"
if SHORT_MAZE_ID not in gym.registry:
    gym.register(id=SHORT_MAZE_ID, entry_point="envs.hard_maze:HardMazeEnv", max_episode_steps=10)


def test_switch_reads_the_argument_then_the_environment(monkeypatch):
    monkeypatch.delenv(FAST_EVALUATION_ENV, raising=False)
    assert fast_path_enabled() and fast_path_enabled(True) and not fast_path_enabled(False)
    for off in ("0", "false", "No", " off "):
        monkeypatch.setenv(FAST_EVALUATION_ENV, off)
        assert not fast_path_enabled() and fast_path_enabled(True)
        assert not SerialEvaluator("HardMaze-v0").fast
    monkeypatch.setenv(FAST_EVALUATION_ENV, "1")
    assert SerialEvaluator("HardMaze-v0").fast and not SerialEvaluator("HardMaze-v0", fast=False).fast


def test_kernels_are_selected_only_for_the_plain_tasks():
    assert fast_class(gym.spec("HardMaze-v0")) is HardMazeEnv
    assert fast_class(gym.spec(POINT_ID)) is None and fast_class(gym.spec(SHORT_MAZE_ID)) is None
    assert isinstance(fast_kernel(gym.spec("HardMaze-v0")), HardMazeKernel)
    assert isinstance(fast_kernel(gym.spec("RedundantArm-v0")), RedundantArmKernel)
    assert fast_kernel(gym.spec(POINT_ID)) is None  # no kernel for this task
    assert fast_kernel(gym.spec(SHORT_MAZE_ID)) is None  # a time limit the kernel does not reproduce
    # ... so the evaluators step the env there: 10 steps, not the task's 2000
    genome = np.zeros((1, genome_size("HardMaze-v0")))
    assert SerialEvaluator(SHORT_MAZE_ID).evaluate(genome)[0].trajectory.shape == (10, 2)


def test_all_entry_points_agree():
    genomes = np.random.default_rng(1).uniform(-1, 1, (6, genome_size("RedundantArm-v0")))
    slow = SerialEvaluator("RedundantArm-v0", fast=False).evaluate(genomes)
    pool = ProcessPoolEvaluator("RedundantArm-v0", workers=2, fast=True)
    try:
        pooled = pool.evaluate(genomes)
    finally:
        pool.close()
    for results in (SerialEvaluator("RedundantArm-v0").evaluate(genomes), pooled,
                    evaluate_genomes("RedundantArm-v0", genomes, fast=True),
                    [evaluate_genome("RedundantArm-v0", genome) for genome in genomes]):
        for a, b in zip(results, slow, strict=True):
            np.testing.assert_array_equal(a.trajectory, b.trajectory)
            np.testing.assert_array_equal(a.state, b.state)
    assert evaluate_genomes("RedundantArm-v0", genomes[:0]) == []


def test_numpy_loops_table():
    table = numpy_loops()
    assert set(table[[LIBM_EXP, LIBM_SIN, LIBM_COS, LIBM_ARCTAN2]].tolist()) <= {0, 1}
    assert table[0] != 0  # numpy's exp loop was found
    with pytest.raises(NumpyLoopsUnavailable, match="no float64 inner loop"):
        _float64_loop(np.bitwise_and)


@pytest.mark.parametrize("obs_dim, act_dim, hidden, obs_scale", [(5, 2, (5, 5), 100.0), (20, 20, (5, 5), 1.0),
                                                                  (29, 8, (10, 10, 10), 30.0)])
def test_compiled_controller_actions_equal_mlp_controller(obs_dim, act_dim, hidden, obs_scale):
    table = numpy_loops()
    sizes, size = layer_sizes(obs_dim, act_dim, hidden)
    space = gym.spaces.Box(-1.0, 1.0, (act_dim,), np.float32)
    low, span, bounded = scaler_arrays(space)
    rng = np.random.default_rng(obs_dim)
    n = 64
    genomes = np.concatenate([rng.uniform(-1, 1, (n // 2, size)), rng.uniform(-5, 5, (n // 2, size))])
    obs = rng.uniform(-obs_scale, obs_scale, (n, obs_dim))
    controller, scaler = MLPController(obs_dim, act_dim, hidden), _ActionScaler(space)
    expected = np.empty((n, act_dim))
    with np.errstate(over="ignore"):  # saturated units: exp(-x) overflows to inf, the unit to -1
        for g in range(n):
            controller.set_params(genomes[g])
            expected[g] = scaler(controller.act(obs[g]))
    work, scratch = np.zeros((4, n * int(sizes.max()))), np.zeros(16, dtype=np.intp)
    margins = np.array([_margin(genome, sizes) for genome in genomes])
    for exact, bounds, fallbacks in ((False, margins, None), (True, margins, n), (False, margins + 1.0, n)):
        actions = np.zeros((n, act_dim))
        used = _act(table, genomes, bounds, sizes, obs, low, span, bounded, actions, work, scratch, exact)
        np.testing.assert_array_equal(actions, expected)
        if fallbacks is not None:  # forced or huge bounds: numpy's loops for every genome
            assert used == fallbacks
