"""rl.preferences.reward_model: the Bradley-Terry ensemble recovers a known reward; the wrappers swap rewards."""

from __future__ import annotations

import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv

from rl.preferences import (
    BradleyTerryRater,
    BradleyTerryRewardModel,
    ComparisonQueue,
    RewardModelError,
    RewardModelVecEnvWrapper,
    RewardModelWrapper,
    Segment,
)

WEIGHTS = np.array([1.0, -2.0, 0.5])
"""The true reward of the toy task: r(s, a) = WEIGHTS . s."""

OBS_SPACE = spaces.Box(-np.inf, np.inf, shape=(3,))
ACT_SPACE = spaces.Box(-1.0, 1.0, shape=(1,))


def linear_segments(n: int, length: int, rng: np.random.Generator, prefix: str) -> list[Segment]:
    """Segments of random 3-d states (and random actions the reward ignores), rewarded by WEIGHTS . s."""
    segments = []
    for i in range(n):
        states = rng.normal(size=(length, 3))
        segments.append(
            Segment(
                observations=states,
                actions=rng.uniform(-1, 1, size=(length, 1)),
                rewards=states @ WEIGHTS,
                segment_id=f"{prefix}{i}",
            )
        )
    return segments


def labelled_queue(n_pairs: int, rng: np.random.Generator) -> ComparisonQueue:
    segments = linear_segments(2 * n_pairs, 10, rng, "train")
    queue = ComparisonQueue()
    queue.compare_pairs(BradleyTerryRater(temperature=1.0), list(zip(segments[::2], segments[1::2])), rng)
    return queue


def test_the_reward_model_recovers_a_known_linear_reward():
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    queue = labelled_queue(400, rng)
    model = BradleyTerryRewardModel(OBS_SPACE, ACT_SPACE, seed=0)
    stats = model.train(queue, epochs=15, batch_size=64, rng=1)
    held_out = linear_segments(200, 10, rng, "test")
    learned = model.segment_returns(held_out).mean(axis=0)
    true = np.array([s.true_return for s in held_out])
    assert np.corrcoef(learned, true)[0, 1] > 0.95
    assert stats["accuracy"] > 0.8 and np.isfinite(stats["loss"])
    # the normalised per-step reward tracks the true one too
    states = rng.normal(size=(500, 3))
    predicted = model.predict(states, rng.uniform(-1, 1, size=(500, 1)))
    assert predicted.shape == (500,) and np.corrcoef(predicted, states @ WEIGHTS)[0, 1] > 0.95
    assert time.perf_counter() - start < 5.0


def test_training_is_reproducible_and_members_see_different_bootstraps():
    queue = labelled_queue(40, np.random.default_rng(3))
    states = np.random.default_rng(4).normal(size=(5, 3))
    actions = np.zeros((5, 1))
    predictions = []
    for _ in range(2):
        model = BradleyTerryRewardModel(OBS_SPACE, ACT_SPACE, seed=7, net_arch=(16,))
        model.train(queue, epochs=2, rng=5)
        predictions.append(model.predict(states, actions))
    np.testing.assert_array_equal(predictions[0], predictions[1])
    members = model.member_rewards(states, actions)
    assert members.shape == (3, 5) and not np.allclose(members[0], members[1])


def test_segments_of_different_lengths_train_together():
    rng = np.random.default_rng(0)
    short, long_ = linear_segments(4, 3, rng, "short"), linear_segments(4, 9, rng, "long")
    model = BradleyTerryRewardModel(OBS_SPACE, ACT_SPACE, net_arch=(8,), n_members=2)
    stats = model.train((list(zip(short, long_)), [1.0, 0.0, 0.5, 1.0]), epochs=1, rng=0)
    assert np.isfinite(stats["loss"]) and model.segment_returns(short + long_).shape == (2, 8)
    with pytest.raises(RewardModelError, match="at least one labelled comparison"):
        model.train(([], []))


def test_save_load_round_trip(tmp_path: Path):
    queue = labelled_queue(20, np.random.default_rng(1))
    model = BradleyTerryRewardModel(OBS_SPACE, ACT_SPACE, net_arch=(8,), reward_offset=0.5)
    model.train(queue, epochs=1, rng=0)
    path = model.save(tmp_path / "reward.pt")
    loaded = BradleyTerryRewardModel.load(path)
    states, actions = np.ones((4, 3)), np.zeros((4, 1))
    np.testing.assert_array_equal(loaded.predict(states, actions), model.predict(states, actions))
    assert (loaded.reward_mean, loaded.reward_std, loaded.comparisons_trained) == (
        model.reward_mean,
        model.reward_std,
        20,
    )
    # training continues from the saved optimizer state identically
    model.train(queue, epochs=1, rng=9)
    loaded.train(queue, epochs=1, rng=9)
    np.testing.assert_array_equal(loaded.predict(states, actions), model.predict(states, actions))


def test_discrete_actions_are_one_hot_and_bad_shapes_are_named():
    model = BradleyTerryRewardModel(OBS_SPACE, spaces.Discrete(4), net_arch=(8,))
    assert model.predict(np.zeros((2, 3)), np.array([0, 3])).shape == (2,)
    with pytest.raises(RewardModelError, match="do not end in the observation shape"):
        model.predict(np.zeros((2, 4)), np.array([0, 1]))
    with pytest.raises(RewardModelError, match="Box or Discrete"):
        BradleyTerryRewardModel(spaces.MultiBinary(3), ACT_SPACE)


def test_the_wrapper_replaces_the_reward_and_keeps_the_true_one():
    env_id = "Pendulum-v1"
    model = BradleyTerryRewardModel(gym.make(env_id).observation_space, gym.make(env_id).action_space, net_arch=(8,))
    wrapped = RewardModelWrapper(gym.make(env_id, max_episode_steps=4), model)
    plain = gym.make(env_id, max_episode_steps=4)
    observation, _ = wrapped.reset(seed=0)
    plain.reset(seed=0)
    true_total = 0.0
    for step in range(4):
        action = np.array([0.5 - 0.3 * step], dtype=np.float32)
        expected = float(model.predict(observation[None], action[None])[0])
        observation, reward, terminated, truncated, info = wrapped.step(action)
        _, true_reward, *_ = plain.step(action)
        true_total += true_reward
        assert reward == pytest.approx(expected) and reward != pytest.approx(true_reward)
        assert info["true_reward"] == pytest.approx(true_reward)
    assert truncated and info["true_episode_return"] == pytest.approx(true_total)


def test_the_vec_wrapper_under_an_sb3_algorithm():
    env_id = "Pendulum-v1"
    probe = gym.make(env_id)
    model = BradleyTerryRewardModel(probe.observation_space, probe.action_space, net_arch=(8,))
    venv = RewardModelVecEnvWrapper(DummyVecEnv([lambda: gym.make(env_id, max_episode_steps=5)] * 2), model)
    observations = venv.reset()
    actions = np.array([[0.1], [-0.2]], dtype=np.float32)
    _, rewards, dones, infos = venv.step(actions)
    np.testing.assert_allclose(rewards, model.predict(observations, actions), rtol=1e-6)
    assert all("true_reward" in info for info in infos) and not dones.any()
    ppo = PPO("MlpPolicy", venv, n_steps=8, batch_size=8, n_epochs=1, seed=0, device="cpu")
    ppo.learn(16)
    assert ppo.num_timesteps == 16
