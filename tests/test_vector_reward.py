"""Vector rewards through SB3: the wrapper, per-objective normalisation and the per-objective rollout buffer."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.vec_env import DummyVecEnv

from rl.mo_buffer import VectorRolloutBuffer
from rl.vector_reward import (
    MOVecNormalize,
    NotMultiObjectiveError,
    VectorRewardInInfo,
    make_mo_vec_env,
    normalize_observation,
    vector_rewards,
)

DST = "deep-sea-treasure-v0"


def test_the_wrapper_returns_the_weighted_sum_and_keeps_the_vector():
    from rl.envs import make_env

    env = VectorRewardInInfo(make_env(DST, disable_env_checker=True), weights=[0.25, 0.75])
    env.reset(seed=0)
    total = np.zeros(2)
    for action in [1, 1, 1, 1]:  # down: the first treasure (0.7) is one step below the start
        _, scalar, terminated, truncated, info = env.step(action)
        vector = info["vector_reward"]
        assert vector.dtype == np.float32 and vector.shape == (2,)
        assert scalar == pytest.approx(0.25 * vector[0] + 0.75 * vector[1])
        total += vector
        if terminated or truncated:
            np.testing.assert_allclose(info["episode_vector_return"], total)
            break
    assert terminated and total[0] == pytest.approx(0.7) and total[1] == pytest.approx(-1.0)


def test_a_single_objective_env_is_refused_with_a_hint():
    with pytest.raises(NotMultiObjectiveError, match="scalar reward.*mo-hopper-2obj-v5"):
        make_mo_vec_env("Pendulum-v1")


def test_infos_without_vectors_say_which_wrapper_to_use():
    with pytest.raises(NotMultiObjectiveError, match="VectorRewardInInfo"):
        vector_rewards([{}], 2)


def test_mo_vec_normalize_divides_each_objective_by_its_own_return_std():
    venv = make_mo_vec_env("mo-hopper-2obj-v5", n_envs=2, seed=3, gamma=0.9)
    assert isinstance(venv, MOVecNormalize)
    venv.reset()
    returns = np.zeros((2, 2))
    for _ in range(30):
        _, _, dones, infos = venv.step(np.zeros((2, 3), dtype=np.float32))
        raw = np.stack([info["raw_vector_reward"] for info in infos]).astype(np.float64)
        returns = returns * 0.9 + raw
        expected = np.clip(raw / np.sqrt(venv.obj_rms.var + venv.epsilon), -10, 10)
        np.testing.assert_allclose(np.stack([info["vector_reward"] for info in infos]), expected, rtol=1e-5)
        returns[dones] = 0
    # the two objectives have different scales, so their statistics differ
    assert not np.allclose(venv.obj_rms.var[0], venv.obj_rms.var[1])
    restored = pickle.loads(pickle.dumps(venv))
    np.testing.assert_array_equal(restored.obj_rms.var, venv.obj_rms.var)
    stats = venv.get_statistics()
    obs = np.ones(11)
    np.testing.assert_allclose(normalize_observation(obs, stats),
                               np.clip((obs - venv.obs_rms.mean) / np.sqrt(venv.obs_rms.var + 1e-8), -10, 10))


def _filled_buffers(n_objectives: int = 2, n_steps: int = 6, n_envs: int = 2, seed: int = 0):
    rng = np.random.default_rng(seed)
    obs_space, act_space = spaces.Box(-1, 1, (3,)), spaces.Box(-1, 1, (1,))
    vector = VectorRolloutBuffer(n_steps, obs_space, act_space, gamma=0.9, gae_lambda=0.8, n_envs=n_envs,
                                 n_objectives=n_objectives)
    scalars = [RolloutBuffer(n_steps, obs_space, act_space, gamma=0.9, gae_lambda=0.8, n_envs=n_envs)
               for _ in range(n_objectives)]
    for step in range(n_steps):
        obs = rng.normal(size=(n_envs, 3)).astype(np.float32)
        action = rng.normal(size=(n_envs, 1)).astype(np.float32)
        reward = rng.normal(size=(n_envs, n_objectives)).astype(np.float32)
        value = th.as_tensor(rng.normal(size=(n_envs, n_objectives)), dtype=th.float32)
        start = (rng.random(n_envs) < 0.3).astype(np.float32) if step else np.ones(n_envs, dtype=np.float32)
        log_prob = th.as_tensor(rng.normal(size=n_envs), dtype=th.float32)
        vector.add(obs, action, reward, start, value, log_prob)
        for column, buffer in enumerate(scalars):
            buffer.add(obs, action, reward[:, column], start, value[:, column], log_prob)
    last = th.as_tensor(rng.normal(size=(n_envs, n_objectives)), dtype=th.float32)
    dones = np.array([True, False])
    vector.compute_returns_and_advantage(last, dones)
    for column, buffer in enumerate(scalars):
        buffer.compute_returns_and_advantage(last[:, column], dones)
    return vector, scalars


def test_gae_per_objective_equals_sb3s_gae_on_each_column():
    vector, scalars = _filled_buffers(n_objectives=3)
    for column, buffer in enumerate(scalars):
        np.testing.assert_allclose(vector.advantages[..., column], buffer.advantages, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(vector.returns[..., column], buffer.returns, rtol=1e-6, atol=1e-6)


def test_samples_keep_the_objective_axis_and_the_scalar_advantage():
    vector, _ = _filled_buffers()
    vector.policy_advantages = np.arange(12, dtype=np.float32).reshape(6, 2)
    batch = next(vector.get(batch_size=None))
    assert batch.advantages.shape == (12, 2) and batch.returns.shape == (12, 2) and batch.old_values.shape == (12, 2)
    assert sorted(batch.policy_advantages.tolist()) == list(range(12))


def test_vector_rewards_survive_the_vec_env_and_the_buffer():
    """MOPPO's rollout buffer holds exactly the env's reward vectors (no normalisation here)."""
    from algos.moppo import MOPPO
    from rl.envs import make_env

    def make():
        return VectorRewardInInfo(make_env("mo-hopper-2obj-v5", disable_env_checker=True, max_episode_steps=7))

    venv = DummyVecEnv([make, make])
    venv.seed(5)
    recorded: list[np.ndarray] = []
    truncated: list[np.ndarray] = []
    original_step_wait = venv.step_wait

    def step_wait():
        result = original_step_wait()
        recorded.append(np.stack([info["vector_reward"] for info in result[3]]))
        truncated.append(np.array([info.get("TimeLimit.truncated", False) for info in result[3]]))
        return result

    venv.step_wait = step_wait
    model = MOPPO("MlpPolicy", venv, n_steps=16, batch_size=8, n_epochs=1, seed=0, gamma=0.99)
    model.learn(32)
    stored = model.rollout_buffer.rewards  # (16 steps, 2 envs, 2 objectives): the last rollout
    expected = np.stack(recorded[-16:])
    cut = np.stack(truncated[-16:])
    assert cut.any() and (~cut).any()
    # exact where the episode went on or terminated; at a time limit the value of the cut-off state is added
    np.testing.assert_allclose(stored[~cut], expected[~cut], rtol=1e-6)
    assert not np.allclose(stored[cut], expected[cut])
