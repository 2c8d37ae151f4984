"""Tests of the AntMaze-v0 quality-diversity task (envs/ant_maze.py)."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401  (registers the ids)
from envs import ant_maze
from envs.qd_task import QDTaskSpec

TORSO_RADIUS = 0.25
"""Radius of the Ant's torso sphere (Gymnasium's ``ant.xml``)."""


def _placed(env, x, y, velocity=(0.0, 0.0)):
    """Put the Ant, upright and with its joints at rest, at (x, y) with a horizontal torso velocity."""
    qpos = env.init_qpos.copy()
    qpos[:2] = (x, y)
    qvel = np.zeros(env.model.nv)
    qvel[:2] = velocity
    env.set_state(qpos, qvel)


def test_check_env_spec_and_observation():
    env = gym.make("AntMaze-v0", render_mode="rgb_array")
    check_env(env.unwrapped)
    spec = ant_maze.AntMazeEnv.spec_qd
    assert isinstance(spec, QDTaskSpec)
    assert spec.outcome_bounds == ((-30.0, 40.0), (-30.0, 40.0))
    assert spec.reward_areas == ("lower_right", "upper_left")
    assert spec.controller == "mlp" and spec.controller_hidden == (10, 10, 10) and spec.max_steps == 1000
    assert env.unwrapped.outcome_bounds == spec.outcome_bounds and env.unwrapped.max_steps == 1000
    assert env.observation_space.shape == (29,) and env.action_space.shape == (8,)
    np.testing.assert_array_equal(env.action_space.low, -1.0)
    np.testing.assert_array_equal(env.action_space.high, 1.0)
    obs, info = env.reset(seed=0)
    assert obs.shape == (29,) and info["reward_area"] == -1
    # the start is the authors' torso position plus U(-0.1, 0.1) noise; the observation's x, y are (x - 5) / 70
    assert np.all(np.abs(info["outcome"] - np.array([-25.0, -25.0])) <= 0.1)
    np.testing.assert_allclose(obs[:2], (info["outcome"] - 5.0) / 70.0)
    np.testing.assert_allclose(obs[2:15], env.unwrapped.data.qpos[2:])
    np.testing.assert_allclose(obs[15:], env.unwrapped.data.qvel)
    state = env.unwrapped.state_observation()
    assert state.shape == (6,)
    np.testing.assert_allclose(state[:2], obs[:2], atol=1e-6)
    env.close()


def test_mjcf_has_the_authors_walls_timestep_and_mass():
    env = ant_maze.AntMazeEnv()
    model = env.model
    assert model.opt.timestep == pytest.approx(0.005)
    assert model.body_mass.sum() == pytest.approx(ant_maze.ANT_MASS)
    for index, (x, y, half_x, half_y) in enumerate(ant_maze.WALL_BOXES):
        wall = model.geom(f"wall_{index}")
        np.testing.assert_allclose(wall.pos, [x, y, 0.0])
        np.testing.assert_allclose(wall.size, [half_x, half_y, ant_maze.WALL_HALF_HEIGHT])
    np.testing.assert_allclose(model.qpos0[:3], ant_maze.START_POSITION)
    assert ant_maze.in_wall(np.array([10.0, -20.0])) and not ant_maze.in_wall(np.array([11.0, -20.0]))
    assert ant_maze.in_wall(np.array([11.0, -20.0]), margin=1.0)
    np.testing.assert_array_equal(ant_maze.in_wall(np.array([[0.0, 40.1], [0.0, 0.0]])), [True, False])


def test_deterministic_per_seed():
    actions = np.random.default_rng(1).uniform(-1, 1, size=(80, 8)).astype(np.float32)
    runs = []
    for seed in (0, 0, 1):
        env = gym.make("AntMaze-v0")
        obs, _ = env.reset(seed=seed)
        for action in actions:
            obs, _, terminated, truncated, info = env.step(action)
            assert not terminated and not truncated
        runs.append((obs, info["outcome"]))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert not np.array_equal(runs[0][1], runs[2][1])  # another seed, another start noise


@pytest.mark.parametrize(
    "start, velocity, axis, face, side",
    [
        ((8.5, -20.0), (10.0, 0.0), 0, 9.7, -1),  # inner wall x = 10, from the left
        ((11.5, -20.0), (-10.0, 0.0), 0, 10.3, 1),  # the same wall, from the right
        ((0.0, -13.5), (0.0, -10.0), 1, -14.7, 1),  # inner wall y = -15, from above
        ((-13.5, 20.0), (-30.0, 0.0), 0, -14.7, 1),  # inner wall x = -15, from the right, very fast
        ((0.0, 38.5), (0.0, 30.0), 1, 39.7, -1),  # outer wall y = 40, very fast
    ],
)
def test_walls_block_the_ant(start, velocity, axis, face, side):
    env = ant_maze.AntMazeEnv()
    env.reset(seed=0)
    _placed(env, *start, velocity=velocity)
    closest = np.inf
    for _ in range(60):
        env.step(np.zeros(8, dtype=np.float32))
        distance = side * (env.outcome()[axis] - face)  # > 0 on the starting side of the wall's face
        assert distance >= TORSO_RADIUS - 0.05, (env.outcome(), face)
        closest = min(closest, distance)
    assert closest < 1.0  # it did reach the wall (and was stopped there)


def test_random_torques_next_to_walls_never_cross_them():
    env = ant_maze.AntMazeEnv()
    rng = np.random.default_rng(0)
    for start, velocity in (((9.0, -5.0), (6.0, 3.0)), ((-29.0, 39.0), (-5.0, 5.0)), ((-14.0, 3.5), (-4.0, 4.0))):
        env.reset(seed=0)
        _placed(env, *start, velocity=velocity)
        for _ in range(150):
            env.step(rng.uniform(-1, 1, 8).astype(np.float32))
            assert not ant_maze.in_wall(env.outcome(), margin=TORSO_RADIUS - 0.05), env.outcome()


def test_reward_only_at_the_last_step_inside_a_goal():
    env = ant_maze.AntMazeEnv()
    for position, expected_area, expected_reward in (
        ((35.0, -25.0), 0, 1.0),
        ((-25.0, 36.5), 1, 0.5),
        ((35.0, -21.5), -1, 0.0),
        ((0.0, 0.0), -1, 0.0),
    ):
        env.reset(seed=0)
        env._steps = ant_maze.MAX_STEPS - 1
        _placed(env, *position)
        _, reward, terminated, truncated, info = env.step(np.zeros(8, dtype=np.float32))
        assert truncated and not terminated and info["reward_area"] == expected_area
        assert reward == pytest.approx(expected_reward, abs=0.02)
        np.testing.assert_allclose(info["outcome"], position, atol=0.05)
    # sparse: at the goal's centre but before the last step, nothing
    env.reset(seed=0)
    _placed(env, 35.0, -25.0)
    _, reward, _, truncated, info = env.step(np.zeros(8, dtype=np.float32))
    assert not truncated and reward == 0.0 and info["reward_area"] == -1


def test_episode_truncates_at_max_steps_without_termination():
    env = gym.make("AntMaze-v0")
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for step in range(ant_maze.MAX_STEPS):
        _, reward, terminated, truncated, info = env.step(rng.uniform(-1, 1, 8).astype(np.float32))
        assert not terminated and truncated == (step == ant_maze.MAX_STEPS - 1)
        assert info["outcome"].shape == (2,)
        if not truncated:
            assert reward == 0.0 and info["reward_area"] == -1
    assert info["reward_area"] == -1 and reward == 0.0  # random torques do not walk the Ant 60 units


def test_render():
    env = ant_maze.AntMazeEnv(render_mode="rgb_array")
    env.reset(seed=0)
    _placed(env, -25.0, -25.0)
    image = env.render()
    assert image.dtype == np.uint8 and image.shape == (200, 200, 3)
    scale = 200 / 70
    assert (image[int(65 * scale), int(5 * scale)] == [0, 0, 255]).all()  # the Ant at (-25, -25)
    assert (image[int(65 * scale), int(65 * scale)] == [255, 0, 0]).all()  # goal 0 at (35, -25)
    assert (image[int(55 * scale), int(40 * scale)] == [100, 100, 100]).all()  # wall x = 10 at y = -15
    _placed(env, 0.0, 20.0)
    moved = env.render()
    assert not np.array_equal(image, moved)
    assert (moved[int(20 * scale), int(30 * scale)] == [0, 0, 255]).all()
    assert (moved[int(65 * scale), int(5 * scale)] == [255, 255, 255]).all()
    assert ant_maze.AntMazeEnv().render() is None


def test_serial_evaluator_outcomes_within_bounds():
    from qd.evaluation import SerialEvaluator
    from qd.genome import genome_size

    size = genome_size("AntMaze-v0")
    assert size == (29 * 10 + 1) + 2 * (10 * 10 + 1) + (10 * 8 + 1)
    genomes = np.random.default_rng(0).uniform(-1, 1, (2, size))
    evaluator = SerialEvaluator("AntMaze-v0")
    results = evaluator.evaluate(np.concatenate([genomes, genomes[:1]]))
    (low_x, high_x), (low_y, high_y) = ant_maze.AntMazeEnv.spec_qd.outcome_bounds
    for result in results:
        assert result.trajectory.shape == (1000, 2) and result.state.shape == (6,)
        assert low_x <= result.outcome[0] <= high_x and low_y <= result.outcome[1] <= high_y
        assert result.reward_area in (-1, 0, 1)
    np.testing.assert_array_equal(results[0].trajectory, results[2].trajectory)  # fixed start (seed 0)
    evaluator.close()
