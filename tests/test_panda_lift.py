"""envs.panda_lift: the non-graspable lifting tasks pass Gymnasium's checker, render, reward the object's lowest
point above the table, and repeat bit for bit from a seed."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401 - registers the tasks
from envs.panda_lift import GRIPPER_OPENING, SHAPES, PandaLiftEnv

IDS = ["PandaLiftWide-v0", "PandaLiftPlate-v0"]


@pytest.mark.parametrize("env_id", IDS)
def test_passes_the_checker_and_renders_rgb(env_id):
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)  # "human" would open a window; rgb_array is checked below
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (360, 480, 3) and frame.dtype == np.uint8 and frame.std() > 0
    assert env.spec.max_episode_steps == 100


def test_the_objects_cannot_be_grasped_where_they_lie():
    assert (SHAPES["wide"][:2] > GRIPPER_OPENING).all()  # both horizontal sides wider than the opening
    assert SHAPES["plate"][2] <= 0.01  # too flat for the fingers to get under from above


@pytest.mark.parametrize("shape", ["wide", "plate"])
def test_goal_is_the_lowest_point_above_the_table(shape):
    env = PandaLiftEnv(shape=shape)
    observation, _ = env.reset(seed=0)
    assert observation["achieved_goal"][0] == pytest.approx(0.0, abs=1e-3) and observation["desired_goal"][0] == 0.1
    size = SHAPES[shape]
    # Lifted flat to 0.2 (centre at 0.2 + half the height): lowest point 0.2, a success, reward 0.
    env.sim.set_base_pose("object", np.array([0.0, 0.0, 0.2 + size[2] / 2]), np.array([0.0, 0.0, 0.0, 1.0]))
    achieved = env.task.get_achieved_goal()
    assert achieved[0] == pytest.approx(0.2, abs=1e-6)
    assert env.task.compute_reward(achieved, env.task.get_goal()) == 0.0
    # Stood on an edge (90 degrees about x): the lowest point is half the y side below the centre.
    quarter_turn = np.array([np.sin(np.pi / 4), 0.0, 0.0, np.cos(np.pi / 4)])
    env.sim.set_base_pose("object", np.array([0.0, 0.0, 0.15]), quarter_turn)
    assert env.task.get_achieved_goal()[0] == pytest.approx(0.15 - size[1] / 2, abs=1e-6)
    assert env.task.compute_reward(np.array([0.05]), np.array([0.1])) == -1.0
    assert env.task.compute_reward(np.array([0.1]), np.array([0.1])) == 0.0  # reaching the height is enough
    # Any orientation: the lowest corner is the bottom of Bullet's bounding box of the box.
    client = env.sim.physics_client
    env.sim.set_base_pose("object", np.array([0.0, 0.0, 0.3]),
                          np.array(client.getQuaternionFromEuler([0.7, 0.4, 1.1])))
    bottom = client.getAABB(env.sim._bodies_idx["object"])[0][2]
    assert env.task.get_achieved_goal()[0] == pytest.approx(bottom, abs=1e-6)
    dense = PandaLiftEnv(shape=shape, reward_type="dense").task
    assert dense.compute_reward(np.array([0.04]), np.array([0.1])) == pytest.approx(-0.06)
    assert dense.compute_reward(np.array([0.3]), np.array([0.1])) == 0.0


def test_same_seed_same_episode():
    def episode() -> np.ndarray:
        env = gym.make("PandaLiftWide-v0")
        env.reset(seed=3)
        env.action_space.seed(3)
        return np.concatenate([env.step(env.action_space.sample())[0]["observation"] for _ in range(30)])

    assert np.array_equal(episode(), episode())


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="Unknown shape 'disc': choose one of wide, plate"):
        PandaLiftEnv(shape="disc")
    with pytest.raises(ValueError, match="reward_type must be 'sparse' or 'dense'"):
        PandaLiftEnv(reward_type="shaped")


def test_rewards_are_float32_as_her_stores_them():
    from envs.lift_goal import lift_reward

    achieved, desired = np.array([[0.04], [0.3]]), np.array([[0.1], [0.1]])
    for reward_type in ("sparse", "dense"):
        assert lift_reward(achieved, desired, reward_type).dtype == np.float32
