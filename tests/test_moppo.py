"""Multi-objective PPO and C-MORL's barrier: losses against hand computations, save/load, bad settings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch as th

from algos.cmorl_barrier import barrier_loss
from algos.moppo import MOPPO
from algos.moppo_losses import clipped_surrogate, clipped_value_loss, scalar_advantages
from rl.simplex import PreferenceVectorError
from rl.vector_reward import make_mo_vec_env

RATIO = [0.9, 1.0, 1.3]
RETURNS = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]  # mean J = (3, 4)


def test_barrier_matches_a_hand_computation_and_its_gradient():
    """Maximise objective 0; objective 1 (J = 4) must stay above 0.9 * 4 = 3.6.

    clip(ratio) = (0.9, 1.0, 1.2), so clip(r) J - beta J = (0 -> floor 1e-3, 0.4, 1.2) and the barrier is
    -(1/20) mean(log 1e-3, log 0.4, log 1.2). Only the middle ratio moves it: d/dr = -(1/20)(1/3)(4/0.4).
    """
    ratio = th.tensor(RATIO, requires_grad=True)
    loss = barrier_loss(ratio, th.tensor(RETURNS), 0, clip_range=0.2, beta=0.9, t=20.0, floor=1e-3)
    expected = -(math.log(1e-3) + math.log(0.4) + math.log(1.2)) / 3 / 20
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    np.testing.assert_allclose(ratio.grad.numpy(), [0.0, -(1 / 20) * (1 / 3) * (4 / 0.4), 0.0], rtol=1e-5)


def test_the_barrier_constrains_the_other_objective_not_the_maximised_one():
    """Maximising objective 1 constrains objective 0 (J = 3): slack (0 -> floor, 0.3, 0.9)."""
    loss = barrier_loss(th.tensor(RATIO), th.tensor(RETURNS), 1, clip_range=0.2, beta=0.9, t=20.0, floor=1e-3)
    expected = -(math.log(1e-3) + math.log(0.3) + math.log(0.9)) / 3 / 20
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_beta_and_t_change_the_barrier():
    """beta 0.5: slack (3.6 - 2, 4 - 2, 4.8 - 2); t = 10 doubles it. A flipped sign or a changed beta fails."""
    returns = th.tensor(RETURNS)
    loss = barrier_loss(th.tensor(RATIO), returns, 0, clip_range=0.2, beta=0.5, t=10.0)
    assert loss.item() == pytest.approx(-(math.log(1.6) + math.log(2.0) + math.log(2.8)) / 3 / 10, rel=1e-5)
    # a ratio below 1 - eps is clipped up: 0.5 -> 0.8, slack 0.8 * 4 - 2 = 1.2 (unclipped it would be 0 -> floor)
    loss = barrier_loss(th.tensor([0.5, 1.0, 1.3]), returns, 0, clip_range=0.2, beta=0.5, t=10.0)
    assert loss.item() == pytest.approx(-(math.log(1.2) + math.log(2.0) + math.log(2.8)) / 3 / 10, rel=1e-5)


@pytest.mark.parametrize("objective", [-1, 2])
def test_an_objective_outside_the_returns_is_refused(objective):
    with pytest.raises(ValueError, match=rf"^objective must be in 0\.\.1, got {objective}$"):
        barrier_loss(th.tensor(RATIO), th.tensor(RETURNS), objective, clip_range=0.2)


def test_three_objectives_average_over_the_constrained_ones():
    returns = th.tensor([[2.0, 1.0, 4.0], [2.0, 3.0, 4.0]])  # J = (2, 2, 4)
    loss = barrier_loss(th.tensor([1.0, 1.1]), returns, 1, clip_range=0.2, beta=0.9, t=20.0)
    slack = [2 * 1.0 - 1.8, 4 * 1.0 - 3.6, 2 * 1.1 - 1.8, 4 * 1.1 - 3.6]
    assert loss.item() == pytest.approx(-sum(math.log(s) for s in slack) / 4 / 20, rel=1e-5)


@pytest.fixture(scope="module")
def model() -> MOPPO:
    env = make_mo_vec_env("mo-hopper-2obj-v5", n_envs=2, seed=0, max_episode_steps=30)
    model = MOPPO("MlpPolicy", env, weights=[0.25, 0.75], n_steps=32, n_epochs=2, seed=0)
    return model.learn(128)


def test_preference_advantage_is_the_weighted_raw_advantage_standardised():
    advantages = np.array([[1.0, -2.0], [0.5, 4.0], [-1.0, 0.0], [2.0, 2.0]])
    scale, weights = np.array([2.0, 0.5]), np.array([0.25, 0.75])
    raw = np.array([0.25 * 2 - 0.75 * 1, 0.25 * 1 + 0.75 * 2, 0.25 * -2 + 0, 0.25 * 4 + 0.75 * 1])
    expected = (raw - raw.mean()) / (raw.std(ddof=1) + 1e-5)
    result = scalar_advantages(advantages, scale, weights, None)
    np.testing.assert_allclose(result, expected, rtol=1e-5)
    assert result.dtype == np.float32  # the rollout buffer's dtype
    np.testing.assert_allclose(scalar_advantages(advantages, scale, weights, None, standardise=False), raw, rtol=1e-6)
    column = advantages[:, 1] * 0.5
    np.testing.assert_allclose(scalar_advantages(advantages, scale, weights, 1),
                               (column - column.mean()) / (column.std(ddof=1) + 1e-5), rtol=1e-5)


def test_policy_loss_is_the_clipped_surrogate_plus_the_barrier_in_the_constrained_mode(model):
    ratio, advantages, returns = th.tensor(RATIO), th.tensor([1.0, -1.0, 2.0]), th.tensor(RETURNS)
    # min(r A, clip(r) A) per sample: (0.9, -1.0, min(2.6, 2.4))
    surrogate = -(0.9 * 1.0 - 1.0 + 1.2 * 2.0) / 3
    assert clipped_surrogate(ratio, advantages, 0.2).item() == pytest.approx(surrogate, rel=1e-6)
    # a negative advantage with a ratio below the clip keeps the unclipped (smaller) term
    assert clipped_surrogate(th.tensor([0.5]), th.tensor([-1.0]), 0.2).item() == pytest.approx(0.8, rel=1e-6)
    loss, barrier = model.policy_loss(ratio, advantages, returns)
    assert loss.item() == pytest.approx(surrogate, rel=1e-6) and barrier.item() == 0.0
    model.target_objective = 0
    try:
        loss, barrier = model.policy_loss(ratio, advantages, returns)
    finally:
        model.target_objective = None
    expected_barrier = -(math.log(1e-3) + math.log(0.4) + math.log(1.2)) / 3 / 20
    assert barrier.item() == pytest.approx(expected_barrier, rel=1e-5)
    assert loss.item() == pytest.approx(surrogate + expected_barrier, rel=1e-5)


def test_value_loss_is_the_authors_clipped_loss_over_all_objectives():
    values = th.tensor([[1.0, 0.0], [2.0, 3.0]])
    old = th.tensor([[0.5, 0.0], [2.0, 2.0]])
    returns = th.tensor([[0.0, 1.0], [2.5, 2.0]])
    # clipped values: (0.7, 0.0), (2.0, 2.2); squared errors unclipped (1, 1, 0.25, 1), clipped (0.49, 1, 0.25, 0.04)
    assert clipped_value_loss(values, old, returns, 0.2).item() == pytest.approx(0.5 * (1 + 1 + 0.25 + 1) / 4)
    # the larger of the two errors counts: here the unclipped one (V = 1 vs V_clip = 0.2, R = -0.1) ...
    assert clipped_value_loss(th.tensor([[1.0]]), th.tensor([[0.0]]), th.tensor([[-0.1]]), 0.2).item() == \
        pytest.approx(0.5 * 1.1 ** 2)
    # ... and here the clipped one (V = 0.1 vs V_clip = 0.8, R = 0)
    assert clipped_value_loss(th.tensor([[0.1]]), th.tensor([[1.0]]), th.tensor([[0.0]]), 0.2).item() == \
        pytest.approx(0.5 * 0.8 ** 2)
    # ... and the clipped one from above (V = 0.5 vs V_clip = 0.2, R = 2)
    assert clipped_value_loss(th.tensor([[0.5]]), th.tensor([[0.0]]), th.tensor([[2.0]]), 0.2).item() == \
        pytest.approx(0.5 * 1.8 ** 2)
    assert clipped_value_loss(values, old, returns, None).item() == pytest.approx(0.5 * (1 + 1 + 0.25 + 1) / 4)


def test_values_have_one_column_per_objective_and_save_load_keeps_actions_values_and_statistics(model, tmp_path):
    obs = model.env.reset()
    values = model.policy.predict_values(th.as_tensor(obs))
    assert values.shape == (2, 2)
    model.save(tmp_path / "moppo.zip")
    loaded = MOPPO.load(tmp_path / "moppo.zip", device="cpu")
    np.testing.assert_array_equal(loaded.weights, [0.25, 0.75])
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
    th.testing.assert_close(loaded.policy.predict_values(th.as_tensor(obs)), values)
    stats = model.env.get_statistics()
    np.testing.assert_array_equal(loaded.normalization["obj_var"], stats["obj_var"])
    raw_obs = model.env.get_original_obs()
    np.testing.assert_array_equal(loaded.predict_raw(raw_obs[0]), model.predict(obs[0], deterministic=True)[0])
    # a fresh normalising env given to load takes the stored statistics
    fresh = make_mo_vec_env("mo-hopper-2obj-v5", n_envs=2, seed=1, max_episode_steps=30)
    reloaded = MOPPO.load(tmp_path / "moppo.zip", env=fresh, device="cpu")
    np.testing.assert_array_equal(fresh.obj_rms.var, stats["obj_var"])
    assert reloaded.n_objectives == 2


@pytest.mark.parametrize(("weights", "match"), [
    ([1.0], "has 1 value but mo-hopper-2obj-v5 has 2 objectives"),
    ([0.7, 0.7], "sum to 1"),
    ([1.5, -0.5], "non-negative"),
])
def test_a_bad_preference_vector_is_refused_with_what_to_pass(weights, match):
    env = make_mo_vec_env("mo-hopper-2obj-v5", n_envs=1, seed=0)
    with pytest.raises(PreferenceVectorError, match=match):
        MOPPO("MlpPolicy", env, weights=weights)


def test_a_target_objective_that_does_not_exist_is_refused():
    env = make_mo_vec_env("mo-hopper-2obj-v5", n_envs=1, seed=0)
    with pytest.raises(ValueError, match="objective index 0..1"):
        MOPPO("MlpPolicy", env, target_objective=2)


def test_an_env_id_makes_a_normalised_multi_objective_env():
    model = MOPPO("MlpPolicy", "deep-sea-treasure-v0", n_steps=16, seed=0)
    assert model.n_objectives == 2 and model.env.num_envs == 1
    np.testing.assert_array_equal(model.weights, [0.5, 0.5])


def test_moppo_trains_on_the_pybullet_multi_objective_task():
    env = make_mo_vec_env("mo-halfcheetah-bullet-v0", n_envs=1, seed=0, max_episode_steps=20)
    model = MOPPO("MlpPolicy", env, weights=[0.5, 0.5], n_steps=32, n_epochs=1, seed=0).learn(64)
    assert model.rollout_buffer.rewards.shape == (32, 1, 2)
    assert np.isfinite(model.rollout_buffer.rewards).all() and model.num_timesteps == 64
