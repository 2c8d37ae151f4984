"""envs.target_speed: the hidden target-speed reward replaces exactly the forward term, on MuJoCo and PyBullet."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401 - registers the tasks
from envs.target_speed import ORIGINAL_REWARD_KEY, SPEED_KEY, TargetSpeedReward


@pytest.mark.parametrize("env_id, target, weight", [
    ("HopperTargetSpeed-v4", 1.0, 1.0), ("HalfCheetahTargetSpeed-v4", 3.0, 1.0),
    ("HopperBulletTargetSpeed-v0", 1.0, 1.0),
])
def test_reward_is_the_original_with_the_forward_term_replaced_by_tracking(env_id, target, weight):
    env = gym.make(env_id)
    env.reset(seed=0)
    assert env.spec.max_episode_steps == 1000
    rng = np.random.default_rng(0)
    for _ in range(10):
        _, reward, terminated, _, info = env.step(rng.uniform(-1, 1, size=env.action_space.shape))
        speed = info[SPEED_KEY]
        forward = env.unwrapped.rewards[1] if "Bullet" in env_id else weight * speed
        expected = info[ORIGINAL_REWARD_KEY] - forward + weight * (target - abs(speed - target))
        assert reward == pytest.approx(expected, abs=1e-9)
        if terminated:
            break


class _Runner(gym.Env):
    """A stand-in locomotion task: reward = 0.5 (survival) + 2 x speed, the speed set from outside."""

    observation_space = gym.spaces.Box(-1, 1, shape=(1,))
    action_space = gym.spaces.Box(-1, 1, shape=(1,))
    _forward_reward_weight = 2.0
    speed = 0.0

    def reset(self, *, seed=None, options=None):
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action):
        return np.zeros(1, dtype=np.float32), 0.5 + 2.0 * self.speed, False, False, {SPEED_KEY: self.speed}


@pytest.mark.parametrize("speed, expected", [(1.0, 0.5 + 2.0), (2.0, 0.5 + 0.0), (0.5, 0.5 + 1.0), (-1.0, 0.5 - 2.0)])
def test_tracking_by_hand(speed, expected):
    runner = _Runner()
    env = TargetSpeedReward(runner, target_speed=1.0)
    runner.speed = speed
    assert env.step(np.zeros(1))[1] == pytest.approx(expected)


def test_a_task_without_a_forward_term_is_refused():
    with pytest.raises(ValueError, match="no forward term"):
        TargetSpeedReward(gym.make("Pendulum-v1"), target_speed=1.0)
    with pytest.raises(ValueError, match="target_speed must be > 0"):
        TargetSpeedReward(gym.make("Hopper-v4").unwrapped, target_speed=0.0)
