"""sim2real.PrivilegeCurriculum: the level falls on schedule (success-gated, linear, never, none), reaches the training
envs only, and survives a resume."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv

from sim2real import PrivilegeCurriculum, PrivilegeError


class _Toy(gym.Env):
    """Two-step episodes that succeed when ``succeed`` says so; remembers the privilege level it was given."""

    observation_space = spaces.Box(-1, 1, shape=(1,))
    action_space = spaces.Box(-1, 1, shape=(1,))

    def __init__(self, succeed: bool = True) -> None:
        self.succeed, self.level, self.t = succeed, None, 0

    def set_privilege_level(self, level: float) -> None:
        self.level = level

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action):
        self.t += 1
        done = self.t == 2
        return np.zeros(1, dtype=np.float32), 0.0, done, False, {"is_success": self.succeed} if done else {}


def _train(callback: PrivilegeCurriculum, steps: int, *, succeed: bool = True, model: PPO | None = None) -> PPO:
    if model is None:
        model = PPO("MlpPolicy", DummyVecEnv([lambda: _Toy(succeed)]), n_steps=8, batch_size=8, n_epochs=1, seed=0,
                    policy_kwargs=dict(net_arch=[4]))
    model.learn(steps, callback=callback, reset_num_timesteps=False)
    return model


def test_success_schedule_lowers_the_level_after_each_full_window_of_successes():
    curriculum = PrivilegeCurriculum("success", window=2, threshold=1.0, step=0.25)
    model = _train(curriculum, 24)
    # Two 2-step episodes per drop: the level falls at steps 4, 8, 12 and 16, then stays at 0.
    assert curriculum.level_curve == [(0, 1.0, None), (4, 0.75, 1.0), (8, 0.5, 1.0), (12, 0.25, 1.0), (16, 0.0, 1.0)]
    assert model.get_env().get_attr("level") == [0.0]


def test_without_successes_the_level_stays():
    curriculum = PrivilegeCurriculum("success", window=2, threshold=0.5)
    _train(curriculum, 16, succeed=False)
    assert curriculum.level == 1.0 and curriculum.success_rate == 0.0


@pytest.mark.parametrize("schedule, at_12, at_40", [("linear", 0.5, 0.0), ("never", 1.0, 1.0), ("none", 0.0, 0.0)])
def test_linear_never_and_none(schedule, at_12, at_40):
    curriculum = PrivilegeCurriculum(schedule, fraction=0.5, total_timesteps=48)
    _train(curriculum, 48)

    def level_at(step: int) -> float:
        return [level for at, level, _ in curriculum.level_curve if at <= step][-1]

    assert level_at(12) == pytest.approx(at_12) and level_at(40) == pytest.approx(at_40)


def test_resume_state_continues_the_same_schedule():
    whole = PrivilegeCurriculum("success", window=2, threshold=1.0, step=0.25)
    _train(whole, 24)
    first = PrivilegeCurriculum("success", window=2, threshold=1.0, step=0.25)
    model = _train(first, 8)
    second = PrivilegeCurriculum("success", window=2, threshold=1.0, step=0.25)
    second.set_resume_state(first.get_resume_state())
    _train(second, 16, model=model)
    assert second.level_curve == whole.level_curve and second.level == whole.level


@pytest.mark.parametrize("kwargs, message", [
    ({"schedule": "exponential"}, "unknown curriculum 'exponential': choose one of success, linear, never, none"),
    ({"window": 0}, "window must be an integer >= 1"),
    ({"threshold": 1.5}, r"threshold, step and fraction must be in \(0, 1\]"),
])
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(PrivilegeError, match=message):
        PrivilegeCurriculum(**kwargs)
