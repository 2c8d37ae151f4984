"""Restoring a captured state reproduces the next observations and rewards exactly (MuJoCo, PyBullet)."""

import gymnasium as gym
import numpy as np
import pytest

from rl.env_state import StateNotRestorableError, capture_state, restore_state
from rl.envs import make_env


def _rollout(env, actions):
    return [env.step(action)[:3] for action in actions]


@pytest.mark.parametrize("env_id", ["HalfCheetah-v4", "Hopper-v4", "HopperBulletEnv-v0"])
def test_restore_reproduces_the_next_steps(env_id):
    env = make_env(env_id)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(23):
        env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
    state = capture_state(env)
    actions = [rng.uniform(-1, 1, env.action_space.shape).astype(np.float32) for _ in range(5)]
    original = _rollout(env, actions)

    env.reset(seed=123)  # somewhere else entirely
    for _ in range(7):
        env.step(env.action_space.sample())
    restore_state(env, state)
    replayed = _rollout(env, actions)
    for (obs_a, reward_a, term_a), (obs_b, reward_b, term_b) in zip(original, replayed):
        np.testing.assert_array_equal(obs_a, obs_b)
        assert reward_a == reward_b and term_a == term_b
    env.close()


def test_time_limit_counter_is_restored():
    env = make_env("HalfCheetah-v4", max_episode_steps=30)
    env.reset(seed=0)
    for _ in range(25):
        env.step(env.action_space.sample())
    state = capture_state(env)
    assert state.elapsed_steps == 25
    env.reset(seed=1)
    restore_state(env, state)
    truncations = [env.step(env.action_space.sample())[3] for _ in range(5)]
    assert truncations == [False, False, False, False, True]  # the 30-step limit counts from step 25


def test_unsupported_env_is_named():
    with pytest.raises(StateNotRestorableError, match="CartPole-v1"):
        capture_state(gym.make("CartPole-v1"))


def test_state_of_another_model_is_refused():
    cheetah, hopper = make_env("HalfCheetah-v4"), make_env("Hopper-v4")
    cheetah.reset(seed=0)
    hopper.reset(seed=0)
    with pytest.raises(StateNotRestorableError, match="another model"):
        restore_state(hopper, capture_state(cheetah))
