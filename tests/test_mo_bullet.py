"""Tests of the PyBullet multi-objective tasks mo-halfcheetah-bullet-v0 and mo-hopper-bullet-v0 (envs/mo_bullet.py).

Real PyBullet physics throughout: each vector reward is recomputed from the base env's own state and reward terms,
and the wrapped env is run side by side with pybullet_envs_gymnasium's plain env to check it changes no physics.
"""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pybullet_envs_gymnasium  # noqa: F401  (registers the plain PyBullet ids)
import pytest
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401  (registers the ids)
from envs.mo_bullet import HOPPER_CTRL_COST_WEIGHT, PYBULLET_REWARD_TERMS, MOHalfCheetahBullet, MOHopperBullet

MO_IDS = ("mo-halfcheetah-bullet-v0", "mo-hopper-bullet-v0")
BASE_IDS = {"mo-halfcheetah-bullet-v0": "HalfCheetahBulletEnv-v0", "mo-hopper-bullet-v0": "HopperBulletEnv-v0"}


@pytest.fixture(autouse=True)
def _no_vector_reward_warning():
    """Gymnasium's passive checker warns that a vector reward is not a float (it does so for mo-gymnasium too)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*The reward returned by `step\\(\\)` must be a float.*")
        yield


def _actions(n: int, dim: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, size=(n, dim)).astype(np.float32)


def _torso_x(env: gym.Env) -> float:
    return float(env.unwrapped.robot.robot_body.get_position()[0])


@pytest.mark.parametrize("env_id", MO_IDS)
def test_make_spaces_and_registration(env_id: str) -> None:
    env = gym.make(env_id)
    assert env.spec.max_episode_steps == 1000
    assert isinstance(env.unwrapped, (MOHalfCheetahBullet, MOHopperBullet))
    assert env.unwrapped.reward_dim == 2 and env.unwrapped.reward_space.shape == (2,)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    _, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert isinstance(reward, np.ndarray) and reward.dtype == np.float32 and reward.shape == (2,)
    assert env.unwrapped.reward_space.contains(reward)
    assert set(PYBULLET_REWARD_TERMS) <= set(info) and {"x_velocity", "control_cost", "original_reward"} <= set(info)
    env.close()


@pytest.mark.parametrize("env_id", MO_IDS)
def test_check_env(env_id: str) -> None:
    # Render check skipped: check_env makes one env per metadata render mode, and PyBullet's "human" mode opens a
    # GUI window, which needs an X server and kills a headless process.
    env = gym.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # infinite observation bounds; PyBullet's legacy seed()
        check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_halfcheetah_reward_is_velocity_and_control_cost_and_physics_unchanged() -> None:
    env, base = gym.make("mo-halfcheetah-bullet-v0"), gym.make("HalfCheetahBulletEnv-v0")
    obs, _ = env.reset(seed=3)
    base_obs, _ = base.reset(seed=3)
    np.testing.assert_array_equal(obs, base_obs)
    dt = env.unwrapped.scene.dt
    assert dt == pytest.approx(0.0165)
    x_start, forward_sum, progress_sum = _torso_x(base), 0.0, 0.0
    for action in _actions(120, 6):
        x_before = _torso_x(base)
        obs, reward, terminated, truncated, info = env.step(action)
        base_obs, base_reward, *_ = base.step(action)
        np.testing.assert_array_equal(obs, base_obs)  # same physics as the plain PyBullet env
        x_velocity = (_torso_x(base) - x_before) / dt
        expected = np.array([x_velocity, -np.sum(np.square(action.astype(np.float64)))], dtype=np.float32)
        np.testing.assert_allclose(reward, expected, rtol=1e-6, atol=1e-7)
        assert dict(zip(PYBULLET_REWARD_TERMS, base.unwrapped.rewards)) == {k: info[k] for k in PYBULLET_REWARD_TERMS}
        assert info["original_reward"] == pytest.approx(base_reward)
        assert not terminated and not truncated
        forward_sum += float(reward[0])
        progress_sum += info["progress"]
    displacement = _torso_x(base) - x_start
    assert forward_sum * dt == pytest.approx(displacement, abs=1e-5)  # the velocities add up to the displacement
    # PyBullet's own forward term (mean x of its parts, floor included) covers about the same distance.
    assert abs(progress_sum * dt - displacement) < 0.1 + 0.2 * abs(displacement)
    env.close()
    base.close()


def test_hopper_reward_mirrors_mo_hopper_2obj() -> None:
    env = gym.make("mo-hopper-bullet-v0")
    terminated = False
    for seed in range(5):
        env.reset(seed=seed)
        for action in _actions(200, 3, seed):
            x_before = _torso_x(env)
            obs, reward, terminated, truncated, info = env.step(action)
            robot = env.unwrapped.robot
            height = float(robot.body_xyz[2] - robot.initial_z)
            assert obs[0] == pytest.approx(height, abs=1e-6)  # PyBullet's own observation of the torso height
            healthy = 1.0 if env.unwrapped.rewards[0] > 0 else 0.0
            shared = healthy - HOPPER_CTRL_COST_WEIGHT * np.sum(np.square(action.astype(np.float64)))
            x_velocity = (_torso_x(env) - x_before) / env.unwrapped.scene.dt
            expected = np.array([x_velocity + shared, 10.0 * height + shared], dtype=np.float32)
            np.testing.assert_allclose(reward, expected, rtol=1e-5, atol=1e-6)
            if terminated:
                assert info["alive"] == -1.0 and info["healthy_reward"] == 0.0  # 0 on the falling step, as Gymnasium
                break
        if terminated:
            break
    assert terminated, "random actions should make the hopper fall within 200 steps"
    env.close()


@pytest.mark.parametrize("env_id", MO_IDS)
def test_same_seed_same_rewards(env_id: str) -> None:
    def rollout(env: gym.Env) -> np.ndarray:
        env.reset(seed=7)
        rewards = []
        for action in _actions(40, env.action_space.shape[0], seed=1):
            _, reward, terminated, truncated, _ = env.step(action)
            rewards.append(reward)
            if terminated or truncated:
                break
        return np.array(rewards)

    first_env, second_env = gym.make(env_id), gym.make(env_id)
    first = rollout(first_env)
    np.testing.assert_array_equal(first, rollout(second_env))  # a fresh env
    np.testing.assert_array_equal(first, rollout(first_env))  # the same env reset again
    first_env.close()
    second_env.close()


def test_halfcheetah_objectives_trade_off() -> None:
    """Zero actions are energy-optimal (objective 2 = 0) and go nowhere; a gait runs forward and pays energy."""
    env = gym.make("mo-halfcheetah-bullet-v0")
    returns = {}
    for name, gait in (("zero", lambda t: np.zeros(6)), ("gait", lambda t: np.sin(0.5 * t + np.arange(6)))):
        env.reset(seed=0)
        total = np.zeros(2)
        for t in range(100):
            _, reward, *_ = env.step(gait(t).astype(np.float32))
            total += reward
        returns[name] = total
    dt = env.unwrapped.scene.dt
    assert returns["zero"][1] == 0.0 and abs(returns["zero"][0] * dt) < 0.02
    assert returns["gait"][1] < -100.0 and returns["gait"][0] * dt > 0.1
    env.close()
