"""Tests of the quality-diversity tasks: RedundantArm-v0, HardMaze-v0, Curling-v0 (envs/)."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401  (registers the ids)
from envs import curling, hard_maze, redundant_arm
from envs.qd_task import QDTaskSpec, area_reward

ENV_IDS = ("RedundantArm-v0", "HardMaze-v0", "Curling-v0", "AntMaze-v0")


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_check_env_and_spec(env_id):
    env = gym.make(env_id, render_mode="rgb_array")
    check_env(env.unwrapped, skip_render_check=True)
    spec = type(env.unwrapped).spec_qd
    assert isinstance(spec, QDTaskSpec)
    assert env.unwrapped.outcome_bounds == spec.outcome_bounds and env.unwrapped.max_steps == spec.max_steps
    assert env.unwrapped.controller == "mlp" and len(spec.reward_areas) >= 2
    obs, info = env.reset(seed=0)
    assert info["outcome"].shape == (2,) and info["reward_area"] == -1
    image = env.render()
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert env.unwrapped.state_observation().ndim == 1
    env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_deterministic_outcome(env_id):
    actions = np.random.default_rng(1).uniform(-1, 1, size=(60,) + gym.spec(env_id).make().action_space.shape)
    outcomes = []
    for _ in range(2):
        env = gym.make(env_id)
        env.reset(seed=0)
        for action in actions:
            _, _, terminated, truncated, info = env.step(action.astype(np.float32))
            if terminated or truncated:
                break
        outcomes.append(info["outcome"])
    np.testing.assert_array_equal(outcomes[0], outcomes[1])


def test_full_episode_reports_reward_area():
    env = hard_maze.HardMazeEnv()
    env.reset(seed=0)
    for step in range(hard_maze.MAX_STEPS):
        _, reward, terminated, truncated, info = env.step(np.zeros(2, dtype=np.float32))
        assert not terminated and truncated == (step == hard_maze.MAX_STEPS - 1)
    assert info["reward_area"] == -1 and reward == 0.0
    np.testing.assert_allclose(info["outcome"], hard_maze.START_POSE[:2])


def test_area_reward():
    centers, radii = np.array([[0.0, 0.0], [1.0, 0.0]]), np.array([0.5, 0.2])
    assert area_reward(np.array([0.0, 0.0]), centers, radii) == (1.0, 0)
    reward, area = area_reward(np.array([1.1, 0.0]), centers, radii)
    assert area == 1 and reward == pytest.approx(0.5)
    assert area_reward(np.array([3.0, 0.0]), centers, radii) == (0.0, -1)


# ------------------------------------------------------------------ redundant arm
def test_arm_kinematics():
    joints = redundant_arm.forward_kinematics(np.zeros(redundant_arm.DOF))
    # zero angles: straight along the base direction (up, authors' tmpAng = pi / 2), length 1
    np.testing.assert_allclose(joints[-1], [0.5, 1.5], atol=1e-12)
    angles = np.zeros(redundant_arm.DOF)
    angles[0] = -np.pi / 2  # first joint turns the whole arm to +x
    np.testing.assert_allclose(redundant_arm.forward_kinematics(angles)[-1], [1.5, 0.5], atol=1e-12)
    angles[10] = np.pi / 2  # half way, turn back up: end at (0.5 + 0.5, 0.5 + 0.5)
    np.testing.assert_allclose(redundant_arm.forward_kinematics(angles)[-1], [1.0, 1.0], atol=1e-12)


def test_arm_self_collision():
    env = redundant_arm.RedundantArmEnv()
    env.reset(seed=0)
    assert env.is_legal(redundant_arm.START_ANGLES)
    folded = np.full(redundant_arm.DOF, 2 * np.pi / 5)  # a closed pentagon repeated: links overlap
    assert redundant_arm.self_collides(redundant_arm.forward_kinematics(folded))
    hairpin = np.zeros(redundant_arm.DOF)
    hairpin[4] = 0.95 * np.pi  # up 4 links, turn back down just left of them ...
    assert not redundant_arm.self_collides(redundant_arm.forward_kinematics(hairpin))
    hairpin[6] = 0.3 * np.pi  # ... then veer right: link 6 runs from (0.484, 0.601) to (0.52, 0.566) across link 1
    assert redundant_arm.self_collides(redundant_arm.forward_kinematics(hairpin))
    assert not env.is_legal(hairpin)
    assert not redundant_arm.self_collides(redundant_arm.forward_kinematics(np.zeros(redundant_arm.DOF)))


def test_arm_illegal_move_ends_episode_without_reward():
    env = redundant_arm.RedundantArmEnv()
    env.reset(seed=0)
    env.angles = np.zeros(redundant_arm.DOF)
    env.angles[0] = -np.pi / 2 + 0.05  # nearly horizontal: the tip is outside the unit square
    _, reward, terminated, truncated, info = env.step(np.zeros(redundant_arm.DOF, dtype=np.float32))
    assert terminated and not truncated and reward == 0.0 and info["reward_area"] == -1 and info["illegal_move"]


def test_arm_goal_reward(monkeypatch):
    env = redundant_arm.RedundantArmEnv()
    env.reset(seed=0)
    tip = env.outcome()  # zero accelerations keep the arm still
    goals = redundant_arm.GOAL_CENTERS.copy()
    goals[2] = tip + np.array([0.025, 0.0])  # move goal 2 half a radius from the resting tip
    monkeypatch.setattr(redundant_arm, "GOAL_CENTERS", goals)
    for step in range(redundant_arm.MAX_STEPS):
        _, reward, terminated, truncated, info = env.step(np.zeros(redundant_arm.DOF, dtype=np.float32))
        assert not terminated
        if step < redundant_arm.MAX_STEPS - 1:
            assert reward == 0.0 and info["reward_area"] == -1  # sparse: only the final step pays
    assert truncated and info["reward_area"] == 2 and reward == pytest.approx(0.5)
    np.testing.assert_allclose(info["outcome"], tip)


# ------------------------------------------------------------------ hard maze
def _crosses(p: np.ndarray, q: np.ndarray, segments: np.ndarray) -> bool:
    a, b = segments[:, :2], segments[:, 2:]

    def orient(u, v, w):
        return (v[..., 0] - u[..., 0]) * (w[..., 1] - u[..., 1]) - (v[..., 1] - u[..., 1]) * (w[..., 0] - u[..., 0])

    o1, o2 = orient(p, q, a), orient(p, q, b)
    o3, o4 = orient(a, b, p), orient(a, b, q)
    return bool(np.any((o1 * o2 < 0) & (o3 * o4 < 0)))


def test_maze_robot_stops_at_wall():
    env = hard_maze.HardMazeEnv()
    env.reset(seed=0)
    env.set_pose(30.0, 300.0, np.pi)  # facing the left border (inner face at x = 9)
    previous = env.outcome()
    bumped = False
    for _ in range(40):
        observation, *_ = env.step(np.ones(2, dtype=np.float32))
        position = env.outcome()
        assert not _crosses(previous, position, hard_maze.WALL_SEGMENTS)
        assert position[0] >= 9.0 + hard_maze.ROBOT_RADIUS - 1e-9
        bumped |= bool(observation[3] or observation[4])
        previous = position
    assert position[0] < 9.0 + hard_maze.ROBOT_RADIUS + 1.0 and bumped
    # a random walk never crosses a wall
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    previous = env.outcome()
    for _ in range(500):
        env.step(rng.uniform(-1, 1, 2).astype(np.float32))
        assert not _crosses(previous, env.outcome(), hard_maze.WALL_SEGMENTS)
        previous = env.outcome()


def test_maze_laser_range():
    env = hard_maze.HardMazeEnv()
    env.reset(seed=0)
    env.set_pose(80.0, 180.0, np.pi)  # facing the left border, whose inner face is at x = 9
    assert env.lasers()[1] == pytest.approx(71.0)
    env.set_pose(150.0, 180.0, np.pi)  # 141 away: out of range
    assert env.lasers()[1] == hard_maze.LASER_RANGE
    env.set_pose(150.0, 180.0, -np.pi / 2)  # facing up (y points down): the sloping wall's lower edge
    (x0, y0), (x1, y1) = hard_maze.MAZE_POLYGONS[5][3], hard_maze.MAZE_POLYGONS[5][2]
    assert env.lasers()[1] == pytest.approx(180.0 - (y0 + (150.0 - x0) * (y1 - y0) / (x1 - x0)))
    env.set_pose(300.0, 300.0, 0.0)
    segment = hard_maze.WallGeometry(np.array([[0.0, 0.0, 600.0, 0.0]]))
    assert segment.cast_rays(np.array([300.0, 30.0]), np.array([-np.pi / 2]), 100.0)[0] == pytest.approx(30.0)
    assert segment.cast_rays(np.array([300.0, 300.0]), np.array([-np.pi / 2]), 100.0)[0] == 100.0


def test_maze_goal_reward():
    env = hard_maze.HardMazeEnv()
    env.reset(seed=0)
    env.set_pose(100.0, 210.0, 0.0)  # 10 from the inner goal's centre
    env._steps = hard_maze.MAX_STEPS - 1
    _, reward, _, truncated, info = env.step(np.zeros(2, dtype=np.float32))
    assert truncated and info["reward_area"] == 1 and reward == pytest.approx(0.8)


def test_maze_render():
    env = hard_maze.HardMazeEnv(render_mode="rgb_array")
    env.reset(seed=0)
    image = env.render()
    assert image.shape == (200, 200, 3)
    assert (image[100, 0] == 0).all() and (image[150, 20] == [0, 0, 255]).all()  # border wall, robot


# ------------------------------------------------------------------ curling
def test_curling_ball_moves_when_pushed():
    env = curling.CurlingEnv()
    env.reset(seed=0)
    start = env.outcome()
    for step in range(200):  # swing left then right: link 1 sweeps through the ball at (-0.5, 0.2)
        env.step(np.array([-1.0 if step < 60 else 1.0, 0.0], dtype=np.float32))
    assert np.linalg.norm(env.outcome() - start) > 0.3
    assert np.all(np.abs(env.outcome()) <= 1.5 - 0.05 - 0.15 + 1e-3)


def test_curling_reward_only_in_areas():
    env = curling.CurlingEnv()
    for position, expected_area, expected_reward in (
        ((0.8, 0.9), 0, 0.75),
        ((0.8, -0.8), 1, 1.0),
        ((-0.8, 0.8), -1, 0.0),
        ((0.8, -0.5), -1, 0.0),
    ):
        env.reset(seed=0)
        env._steps = curling.MAX_STEPS - 1
        env.set_ball(position)
        _, reward, _, truncated, info = env.step(np.zeros(2, dtype=np.float32))
        assert truncated and info["reward_area"] == expected_area
        assert reward == pytest.approx(expected_reward, abs=1e-6)
    env.reset(seed=0)
    env.set_ball((0.8, 0.8))
    _, reward, _, truncated, info = env.step(np.zeros(2, dtype=np.float32))
    assert not truncated and reward == 0.0 and info["reward_area"] == -1  # sparse: only the final step pays
    with pytest.raises(ValueError, match="inside the walls"):
        env.set_ball((1.4, 0.0))


def test_curling_render():
    env = curling.CurlingEnv(render_mode="rgb_array")
    env.reset(seed=0)
    image = env.render()
    assert image.shape == (300, 300, 3)
    assert (image[130, 100] == [0, 0, 255]).all()  # the ball at (-0.5, 0.2) -> pixel (100, 130)


def test_curling_random_controllers_keep_ball_on_table():
    from qd import evaluate_genome, genome_size

    rng = np.random.default_rng(0)
    size = genome_size("Curling-v0")
    inside = 1.5 - 0.05 - 0.15 + 0.02  # ball centre within the walls (+ soft-contact penetration)
    (low, high), _ = curling.CurlingEnv.spec_qd.outcome_bounds
    for _ in range(20):
        result = evaluate_genome("Curling-v0", rng.uniform(-1, 1, size), render=False)
        assert np.all(np.abs(result.trajectory) <= inside), np.abs(result.trajectory).max()
        assert np.all((result.outcome >= low) & (result.outcome <= high))


@pytest.mark.parametrize("velocity", [(20.0, 0.0), (-50.0, 0.0), (0.0, 100.0), (60.0, 60.0)])
def test_curling_fast_ball_bounces_off_walls(velocity):
    env = curling.CurlingEnv()
    env.reset(seed=0)
    env.set_ball((0.8, 0.8), velocity)  # clear of the arm (its tip is at (0, 0.4))
    speed = np.linalg.norm(velocity)
    bounced = False
    for _ in range(30):
        before = env.outcome()
        env.step(np.zeros(2, dtype=np.float32))
        assert np.all(np.abs(env.outcome()) <= 1.5 - 0.05), env.outcome()  # never beyond a wall's inner face
        bounced |= np.dot(env.outcome() - before, velocity) < 0
        ball_speed = np.linalg.norm(env.data.qvel[env._ball_qvel])
        assert ball_speed <= speed * 1.05  # contacts add no energy (before the fix: x3 per wall hit)
    assert bounced
    assert np.all(np.abs(env.outcome()) <= 1.5 - 0.05 - 0.15 + 0.02)
