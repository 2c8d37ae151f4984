"""AWAC's own behaviour: the advantage weights, the critic target, the actor update, predict, save/load.

The SB3 contract shared by all offline algorithms is in test_offline_contract.py; here the update rules
are checked against hand computations with fixed critics, on tiny networks and a tiny Pendulum dataset.
"""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np
import pytest
import torch as th
from offline_data import random_dataset
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.logger import configure
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.utils import get_device
from torch import nn

from algos.awac import AWAC, EXP_ADV_MAX
from rl.hyperparams import resolve_hyperparams, split_runner_keys
from rl.offline import StandardizedObservations

ENV_ID = "Pendulum-v1"  # actions in [-2, 2]: SB3's buffer holds them halved, in [-1, 1]
TINY = dict(policy_kwargs=dict(net_arch=[16, 16]), batch_size=32, buffer_size=2_000, device="cpu")


@pytest.fixture(scope="module")
def dataset():
    return random_dataset(ENV_ID, n=300)


def make(dataset, seed: int = 0, **kwargs) -> AWAC:
    return AWAC("MlpPolicy", ENV_ID, dataset=dataset, seed=seed, **{**TINY, **kwargs})


class FixedCritic(nn.Module):
    """Two Q functions of the (scaled) action only, ``q1(a)`` and ``q2(a)``; a dummy parameter so that
    ``train()`` can step its optimizer without changing anything."""

    def __init__(self, q1, q2) -> None:
        super().__init__()
        self.q1, self.q2 = q1, q2
        self.dummy = nn.Parameter(th.zeros(()))
        self.optimizer = th.optim.SGD([self.dummy], lr=0.0)

    def forward(self, observations: th.Tensor, actions: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        zero = 0.0 * self.dummy
        return self.q1(actions) + zero, self.q2(actions) + zero

    def set_training_mode(self, mode: bool) -> None:
        self.train(mode)


def fix_critics(model: AWAC, critic: FixedCritic, target: FixedCritic | None = None) -> None:
    model.critic = critic
    model.critic_target = target if target is not None else critic


def pin_actor(model: AWAC, mean: float) -> None:
    """Make the actor output ``mean`` (scaled) for every state, with the smallest std the clamp allows."""
    with th.no_grad():
        model.actor.mu.weight.zero_()
        model.actor.mu.bias.fill_(mean)
        model.actor.log_std.fill_(-30.0)  # clamped to -20: std 2e-9


def obs_tensor(dataset, n: int) -> th.Tensor:
    return th.as_tensor(dataset.observations[:n])


ACTIONS = th.tensor([[-1.0], [-0.5], [0.0], [0.5], [1.0]])


def q1(a: th.Tensor) -> th.Tensor:
    return 2.0 * a


def q2(a: th.Tensor) -> th.Tensor:
    return a + 0.25


def hand_advantages(actions: np.ndarray, policy_action: float) -> np.ndarray:
    """min(q1, q2)(a) - min(q1, q2)(a_pi), computed without torch."""
    q = np.minimum(2.0 * actions, actions + 0.25)
    v = min(2.0 * policy_action, policy_action + 0.25)
    return q - v


def test_advantage_weights_are_the_clipped_exponential_of_min_q_advantages(dataset):
    model = make(dataset, awac_lambda=0.5, exp_adv_max=5.0)
    fix_critics(model, FixedCritic(q1, q2))
    pin_actor(model, 0.1)
    weights, advantages = model.advantage_weights(obs_tensor(dataset, 5), ACTIONS)
    expected_adv = hand_advantages(ACTIONS.numpy(), 0.1)  # [-2.2, -1.2, -0.2, 0.55, 1.05]
    np.testing.assert_allclose(advantages.numpy(), expected_adv, atol=1e-6)
    assert not np.allclose(expected_adv, 2.0 * ACTIONS.numpy() - 0.2), "q2 is the minimum somewhere: min is checked"
    expected = np.minimum(np.exp(expected_adv / 0.5), 5.0)
    np.testing.assert_allclose(weights.numpy(), expected, rtol=1e-5)
    assert weights[-1].item() == 5.0 and weights[-2].item() < 5.0, "exp(2.1) is clipped, exp(1.1) is not"
    assert not weights.requires_grad and not advantages.requires_grad


def test_softmax_weights_are_normalised_over_the_batch(dataset):
    model = make(dataset, awac_lambda=0.5, normalize_weights=True)
    fix_critics(model, FixedCritic(q1, q2))
    pin_actor(model, 0.1)
    weights, _ = model.advantage_weights(obs_tensor(dataset, 5), ACTIONS)
    scores = hand_advantages(ACTIONS.numpy(), 0.1) / 0.5
    expected = 5 * np.exp(scores) / np.exp(scores).sum()
    np.testing.assert_allclose(weights.numpy(), expected, rtol=1e-5)
    assert weights.mean().item() == pytest.approx(1.0)


def test_defaults_are_corls_and_bad_temperatures_are_refused():
    defaults = {name: p.default for name, p in inspect.signature(AWAC).parameters.items()}
    assert EXP_ADV_MAX == 100.0 and defaults["exp_adv_max"] == EXP_ADV_MAX
    assert defaults["awac_lambda"] == 1.0 and defaults["normalize_weights"] is False
    assert (defaults["batch_size"], defaults["learning_rate"], defaults["tau"]) == (256, 3e-4, 0.005)
    with pytest.raises(ValueError, match="awac_lambda"):
        AWAC("MlpPolicy", ENV_ID, awac_lambda=0.0)


@pytest.mark.parametrize("kwargs, refused", [
    (dict(awac_lambda=0.0), True), (dict(awac_lambda=-1.0), True), (dict(awac_lambda=1e-3), False),
    (dict(exp_adv_max=0.0), True), (dict(exp_adv_max=0.5), False),
])
def test_temperature_and_clip_must_be_positive(dataset, kwargs, refused):
    if refused:
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            make(dataset, **kwargs)
    else:
        model = make(dataset, **kwargs)
        assert {key: getattr(model, key) for key in kwargs} == kwargs


def test_defaults_reach_the_model_and_every_setting_reaches_sb3(dataset, tmp_path):
    """CORL's defaults on the built model (lambda 1, clip 100, lr 3e-4, batch 256, tau 0.005, standardised states), and
    non-default values are not dropped on the way to SB3 (where they equal SB3's defaults, a dropped argument would go
    unseen)."""
    model = AWAC("MlpPolicy", ENV_ID, dataset=dataset)
    assert (model.awac_lambda, model.exp_adv_max, model.normalize_weights) == (1.0, 100.0, False)
    assert model.normalize_observations and isinstance(model.actor.features_extractor, StandardizedObservations)
    settings = (model.learning_rate, model.buffer_size, model.learning_starts, model.batch_size)
    assert settings == (3e-4, 2_000_000, 0, 256)
    assert (model.tau, model.gamma, model.gradient_steps, model.train_freq.frequency) == (0.005, 0.99, 1, 1)
    assert model._stats_window_size == 100 and model.verbose == 0 and model.device == get_device("auto")
    assert model.n_steps == 1 and not model.optimize_memory_usage and model.action_noise is None

    class OwnBuffer(ReplayBuffer):
        pass

    noise = NormalActionNoise(np.zeros(1), 0.2 * np.ones(1))
    settings = dict(learning_rate=1e-3, buffer_size=5_000, learning_starts=7, batch_size=32, tau=0.01, gamma=0.9,
                    gradient_steps=3, action_noise=noise, tensorboard_log=str(tmp_path), verbose=1)
    model = AWAC("MlpPolicy", ENV_ID, dataset=dataset, device="cpu", train_freq=4, stats_window_size=7,
                 normalize_observations=False, replay_buffer_class=OwnBuffer,
                 replay_buffer_kwargs=dict(handle_timeout_termination=False), **settings)
    assert {key: getattr(model, key) for key in settings} == settings
    assert model.train_freq.frequency == 4 and model._stats_window_size == 7 and not model.normalize_observations
    assert type(model.replay_buffer) is OwnBuffer and not model.replay_buffer.handle_timeout_termination
    assert model.replay_buffer.size() == len(dataset.observations)
    assert not isinstance(model.actor.features_extractor, StandardizedObservations)
    assert model.actor.optimizer.param_groups[0]["lr"] == model.critic.optimizer.param_groups[0]["lr"] == 1e-3
    n_step = AWAC("MlpPolicy", ENV_ID, dataset=dataset, device="cpu", n_steps=3)
    assert n_step.replay_buffer.n_steps == 3 and n_step.replay_buffer.size() == len(dataset.observations)
    memory = AWAC("MlpPolicy", ENV_ID, device="cpu", optimize_memory_usage=True,
                  replay_buffer_kwargs=dict(handle_timeout_termination=False))  # without data: SB3's buffer variant
    assert memory.replay_buffer.optimize_memory_usage
    with pytest.raises(AssertionError, match="Discrete"):  # continuous actions only
        AWAC("MlpPolicy", "CartPole-v1", device="cpu")


def test_critic_target_is_reward_plus_discounted_min_of_target_critics_without_entropy(dataset):
    model = make(dataset, gamma=0.9)
    # The online critics would give another value: the target must read the target critics.
    fix_critics(model, FixedCritic(lambda a: 100 + a, lambda a: 100 + a), FixedCritic(lambda a: 3 + a, lambda a: 1 - a))
    pin_actor(model, 0.5)  # a' = 0.5: min(3.5, 0.5) = 0.5. Tiny std: an entropy term would add ~19 nats.
    rewards = th.tensor([[1.0], [-2.0], [0.5]])
    dones = th.tensor([[0.0], [1.0], [0.0]])
    target = model.critic_target_q(obs_tensor(dataset, 3), rewards, dones, 0.9)
    np.testing.assert_allclose(target.numpy(), [[1.0 + 0.9 * 0.5], [-2.0], [0.5 + 0.9 * 0.5]], atol=1e-6)


def test_next_actions_of_the_target_are_clamped_samples_of_the_current_actor(dataset):
    model = make(dataset)
    fix_critics(model, FixedCritic(q1, q2), FixedCritic(lambda a: a, lambda a: a))
    pin_actor(model, 3.0)  # mean beyond the bound: a' is clamped to 1
    target = model.critic_target_q(obs_tensor(dataset, 2), th.zeros(2, 1), th.zeros(2, 1), 1.0)
    np.testing.assert_allclose(target.numpy(), [[1.0], [1.0]])


def bandit(dataset, n: int = 256):
    """One-step data: half the actions +0.8, half -0.8 (scaled), reward = the scaled action, all terminal."""
    signs = np.where(np.arange(n) % 2 == 0, 1.0, -1.0).astype(np.float32)
    actions = (1.6 * signs)[:, None]  # env units: Pendulum scales by 2
    return dataclasses.replace(
        dataset, observations=dataset.observations[:n], next_observations=dataset.next_observations[:n],
        actions=actions, rewards=0.8 * signs, terminals=np.ones(n, dtype=bool), timeouts=np.zeros(n, dtype=bool),
    )


def mean_action(model: AWAC, observations: np.ndarray) -> float:
    with th.no_grad():
        return model.actor.distribution(th.as_tensor(observations)).mean.mean().item()


@pytest.mark.parametrize("awac_lambda", [0.1, 1.0, 1e6])
def test_actor_converges_to_the_advantage_weighted_mean_of_the_data_actions(dataset, awac_lambda):
    data = bandit(dataset)
    model = make(data, awac_lambda=awac_lambda, learning_rate=3e-3, batch_size=64)
    fix_critics(model, FixedCritic(lambda a: a, lambda a: a))  # Q = a: +0.8 is better than -0.8 by 1.6
    assert abs(mean_action(model, data.observations)) < 0.3
    model.set_logger(configure(None, []))
    model.train(gradient_steps=300, batch_size=64)
    # The weighted likelihood peaks at the weighted mean of +-0.8 with weights exp(+-0.8 / lambda) (V cancels):
    # 0.8 * tanh(0.8 / lambda): 0.8 for lambda 0.1 (clipping keeps it there), 0.53 for 1, 0 (cloning) for 1e6.
    expected = 0.8 * np.tanh(0.8 / awac_lambda)
    assert mean_action(model, data.observations) == pytest.approx(expected, abs=0.08)


def test_awac_learns_the_better_action_end_to_end(dataset):
    data = bandit(dataset)
    model = make(data, awac_lambda=0.1, learning_rate=3e-3, batch_size=64, seed=1)
    model.learn_offline(400)
    assert mean_action(model, data.observations) > 0.5
    q = th.min(*model.critic(th.as_tensor(data.observations[:2]), th.tensor([[0.8], [-0.8]])))
    assert q[0].item() > q[1].item() + 1.0, "the critic learned Q(s, +0.8) = 0.8 > Q(s, -0.8) = -0.8"


def test_deterministic_predict_is_the_mean_clipped_to_the_bounds(dataset):
    model = make(dataset)
    with th.no_grad():
        model.actor.mu.bias.fill_(0.0)
        model.actor.mu.weight.mul_(200.0)  # means far on both sides of [-1, 1]
    observations = dataset.observations[:64]
    with th.no_grad():
        mean = model.actor.distribution(th.as_tensor(observations)).mean.numpy()
    assert (mean > 1).any() and (mean < -1).any() and (np.abs(mean) < 1).any()
    actions, _ = model.predict(observations, deterministic=True)
    np.testing.assert_allclose(actions, 2.0 * np.clip(mean, -1, 1), rtol=1e-5, atol=1e-6)
    sampled, _ = model.predict(observations, deterministic=False)
    assert np.all(np.abs(sampled) <= 2.0) and not np.allclose(sampled, actions)


def test_online_phase_acts_with_samples_of_the_offline_policy(dataset):
    model = make(dataset)
    model.learn_offline(5)
    pin_actor(model, 0.5)
    model.learn(20, reset_num_timesteps=False)
    online = model.replay_buffer.actions[len(dataset):len(dataset) + 20, 0, 0]
    np.testing.assert_allclose(online, 0.5, atol=0.05)  # no uniform warm-up (learning_starts=0)


def optimizer_states(model: AWAC) -> dict[str, np.ndarray]:
    return {
        f"{name}.{index}.{field}": value.numpy().copy()
        for name, optimizer in (("actor", model.actor.optimizer), ("critic", model.critic.optimizer))
        for index, state in optimizer.state_dict()["state"].items()
        for field, value in state.items()
    }


def test_save_load_keeps_every_optimizer_and_training_continues_identically(dataset, tmp_path):
    model = make(dataset, awac_lambda=0.3, exp_adv_max=20.0, normalize_weights=True)
    model.learn_offline(15)
    model.save(tmp_path / "awac.zip")
    with pytest.warns(UserWarning, match="could not be read"):  # an in-memory dataset is not saved
        loaded = AWAC.load(tmp_path / "awac.zip", device="cpu")  # no env
    assert (loaded.awac_lambda, loaded.exp_adv_max, loaded.normalize_weights) == (0.3, 20.0, True)
    saved, restored = optimizer_states(model), optimizer_states(loaded)
    assert saved.keys() == restored.keys() and any("exp_avg" in key for key in saved)
    for key in saved:
        np.testing.assert_array_equal(saved[key], restored[key], err_msg=key)
    loaded.load_offline_data(dataset)
    for algo in (model, loaded):
        algo.set_random_seed(7)
        algo.learn_offline(5, reset_num_timesteps=False)
    for (key, a), b in zip(model.policy.state_dict().items(), loaded.policy.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=key)


def test_hyperparameter_file_holds_corls_locomotion_values():
    params = resolve_hyperparams("awac", AWAC, "HalfCheetah-v4")
    runner, algo_kwargs = split_runner_keys(params)
    assert runner == {"offline_steps": 1_000_000, "n_timesteps": 0}
    assert algo_kwargs["awac_lambda"] == pytest.approx(1 / 3, abs=1e-4)
    assert algo_kwargs["batch_size"] == 256 and algo_kwargs["learning_rate"] == 3e-4 and algo_kwargs["tau"] == 0.005
    assert algo_kwargs["policy_kwargs"] == {"net_arch": [256, 256, 256]}
