"""envs.fetch_lift: the non-graspable lifting tasks on Fetch (MuJoCo) pass Gymnasium's checker, render, reward the
object's lowest point above the table exactly as the Panda tasks do, are built at run time (the installed XML is
untouched), repeat bit for bit from a seed, and train in a tiny privileged run (with and without HER)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import gymnasium as gym
import mujoco
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401 - registers the tasks
from envs import fetch_lift, panda_lift
from envs.fetch_lift import FETCH_XML, GRIPPER_OPENING, SHAPES, TABLE_CENTRE, TABLE_TOP, WALL_Y, FetchLiftEnv

IDS = ["FetchLiftWide-v0", "FetchLiftPlate-v0"]
FINGERS = ("robot0:r_gripper_finger_joint", "robot0:l_gripper_finger_joint")


@pytest.mark.parametrize("shape", ["wide", "plate"])
def test_passes_the_checker_and_renders_rgb(shape):
    check_env(FetchLiftEnv(shape=shape))  # rgb_array included (no spec, so "human" is not tried)
    env = gym.make(IDS[list(SHAPES).index(shape)])
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (360, 480, 3) and frame.dtype == np.uint8 and frame.std() > 0
    assert env.spec.max_episode_steps == 100 and not env.spec.nondeterministic


def _finger_gap(env: FetchLiftEnv) -> float:
    """Distance between the fingers' inner faces (the fingers open along y)."""
    right, left = (env.model.geom(f"robot0:{side}_gripper_finger_link").id for side in ("r", "l"))
    centres = np.linalg.norm(env.data.geom_xpos[right] - env.data.geom_xpos[left])
    return float(centres - env.model.geom_size[right][1] - env.model.geom_size[left][1])


def test_the_objects_are_wider_than_the_gripper_opens():
    env = FetchLiftEnv()
    env.reset(seed=0)
    for name in FINGERS:  # both slides at their limit: the widest opening the model allows
        env.data.joint(name).qpos[:] = env.model.joint(name).range[1]
    mujoco.mj_kinematics(env.model, env.data)
    assert _finger_gap(env) == pytest.approx(GRIPPER_OPENING, abs=1e-4)
    env.reset(seed=0)
    for _ in range(10):  # fully open by the policy's own action
        env.step(np.array([0, 0, 0, 1], dtype=np.float32))
    assert _finger_gap(env) == pytest.approx(GRIPPER_OPENING, abs=5e-4)
    assert (SHAPES["wide"][:2] > 1.4 * GRIPPER_OPENING).all()  # both horizontal sides, with room to spare
    assert (SHAPES["plate"][:2] > 1.2 * GRIPPER_OPENING).all() and SHAPES["plate"][2] <= 0.01


def test_the_scene_is_built_at_run_time_and_the_installed_xml_is_untouched():
    digest = hashlib.sha256(Path(FETCH_XML).read_bytes()).hexdigest()
    wide, plate = FetchLiftEnv(shape="wide"), FetchLiftEnv(shape="plate")
    assert hashlib.sha256(Path(FETCH_XML).read_bytes()).hexdigest() == digest
    installed = mujoco.MjModel.from_xml_path(FETCH_XML)
    np.testing.assert_allclose(installed.geom("object0").size, [0.025] * 3)  # Fetch's own 5 cm block
    assert mujoco.mj_name2id(installed, mujoco.mjtObj.mjOBJ_GEOM, "wall") == -1
    for env in (wide, plate):
        np.testing.assert_allclose(env.model.geom("object0").size, SHAPES[env.shape] / 2)
        assert env.model.body("object0").mass[0] == pytest.approx(0.5)
    assert mujoco.mj_name2id(wide.model, mujoco.mjtObj.mjOBJ_GEOM, "wall") == -1
    wall = plate.model.geom("wall")
    plate.reset(seed=0)
    assert plate.data.geom_xpos[wall.id][1] - wall.size[1] == pytest.approx(TABLE_CENTRE[1] + WALL_Y - 0.01)
    assert plate.data.geom_xpos[wall.id][2] - wall.size[2] == pytest.approx(TABLE_TOP)  # standing on the table


def _place(env: FetchLiftEnv, position, quaternion) -> None:
    env.data.joint("object0:joint").qpos[:] = [*position, *quaternion]
    mujoco.mj_forward(env.model, env.data)


@pytest.mark.parametrize("shape", ["wide", "plate"])
def test_goal_is_the_lowest_point_above_the_table(shape):
    env = FetchLiftEnv(shape=shape)
    observation, info = env.reset(seed=0)
    assert observation["achieved_goal"][0] == pytest.approx(0.0, abs=1e-3) and observation["desired_goal"][0] == 0.1
    assert not info["is_success"]
    size = SHAPES[shape]
    # Lifted flat so that its bottom is 0.2 above the table: a success, reward 0.
    _place(env, [1.3, 0.75, TABLE_TOP + 0.2 + size[2] / 2], [1, 0, 0, 0])
    achieved = env._get_obs()["achieved_goal"]
    assert achieved[0] == pytest.approx(0.2, abs=1e-9)
    assert env.compute_reward(achieved, env.goal, {}) == 0.0
    # Stood on an edge (90 degrees about x): the lowest point is half the y side below the centre.
    _place(env, [1.3, 0.75, TABLE_TOP + 0.15], [np.cos(np.pi / 4), np.sin(np.pi / 4), 0, 0])
    assert env.lowest_point() == pytest.approx(0.15 - size[1] / 2, abs=1e-9)
    # Any orientation: the lowest of the box's 8 corners, rotated by the joint's quaternion.
    rng = np.random.default_rng(0)
    for _ in range(20):
        quaternion = rng.normal(size=4)
        quaternion /= np.linalg.norm(quaternion)
        centre = np.array([1.3, 0.75, TABLE_TOP + 0.3])
        _place(env, centre, quaternion)
        rotation = np.empty(9)
        mujoco.mju_quat2Mat(rotation, quaternion)
        corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]) * size / 2
        lowest = np.min(centre[2] + corners @ rotation.reshape(3, 3)[2]) - TABLE_TOP
        assert env.lowest_point() == pytest.approx(lowest, abs=1e-9)


def test_goal_reward_and_episode_are_the_panda_tasks():
    import gymnasium

    assert (fetch_lift.LIFT_HEIGHT, gymnasium.spec("FetchLiftWide-v0").max_episode_steps) == (
        panda_lift.LIFT_HEIGHT, gymnasium.spec("PandaLiftWide-v0").max_episode_steps)
    achieved = np.linspace(-0.05, 0.3, 36).reshape(-1, 1)  # a batch, as HerReplayBuffer asks
    desired = np.full_like(achieved, 0.1)
    for reward_type in ("sparse", "dense"):
        fetch = FetchLiftEnv(reward_type=reward_type)
        panda = panda_lift.PandaLiftEnv(reward_type=reward_type)
        expected = panda.task.compute_reward(achieved, desired)
        np.testing.assert_array_equal(fetch.compute_reward(achieved, desired, [{}] * 36), expected)
        assert fetch.compute_reward(np.array([0.1]), np.array([0.1]), {}) == 0.0  # reaching the height is enough
        panda.close()
    sparse = FetchLiftEnv().compute_reward(achieved, desired, {})
    assert set(sparse.tolist()) == {-1.0, 0.0} and sparse.shape == (36,)


def _episode(env: gym.Env, seed: int) -> np.ndarray:
    env.reset(seed=seed)
    env.action_space.seed(seed)
    return np.concatenate([env.step(env.action_space.sample())[0]["observation"] for _ in range(30)])


@pytest.mark.parametrize("env_id", IDS)
def test_same_seed_same_episode_whatever_came_before(env_id):
    first = _episode(gym.make(env_id), 3)
    other = gym.make(env_id)
    _episode(other, 5)  # another history first
    assert np.array_equal(first, _episode(other, 3))
    assert not np.array_equal(first, _episode(other, 4))
    starts = {tuple(gym.make(env_id).reset(seed=seed)[0]["observation"][3:5]) for seed in range(5)}
    assert len(starts) == 5  # the object's start is drawn from the seed


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="Unknown shape 'disc': choose one of wide, plate"):
        FetchLiftEnv(shape="disc")
    with pytest.raises(ValueError, match="reward_type must be 'sparse' or 'dense'"):
        FetchLiftEnv(reward_type="shaped")


TINY = ["--eval-freq", "100", "--eval-episodes", "1", "--final-eval-episodes", "1", "--no-progress", "--verbose",
        "0", "--num-threads", "1"]
NET = ["buffer_size:1000", "batch_size:16", "policy_kwargs:dict(net_arch=[8])"]


@pytest.mark.parametrize("params", [["learning_starts:60", "replay_buffer_class:DictReplayBuffer",
                                     "replay_buffer_kwargs:dict()"],
                                    ["replay_buffer_class:HerReplayBuffer", "learning_starts:100"]],
                         ids=["sac", "sac-her"])
def test_tiny_privileged_run(params, tmp_path):
    from algos.privileged import main

    argv = ["--algo", "sac", "--env", "FetchLiftWide-v0", "--curriculum", "linear", "-n", "300", "-f", str(tmp_path),
            *TINY, "-params", *params, *NET]
    assert main(argv) == 0
    (run,) = tmp_path.glob("priv_sac/*/run.json")
    record = json.loads(run.read_text())
    assert record["privileged"]["final_level"] == 0.0 and record["privileged"]["level_curve"][0] == [0, 1.0, None]
    for name in ("privileges.png", "episode_frames.png", "learning_curve.png"):
        assert (run.parent / name).is_file()
    with np.load(run.parent / "evaluations.npz") as evaluations:
        assert "successes" in evaluations.files
