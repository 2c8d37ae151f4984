"""FamO2O's settings, on both bases: the authors' defaults (IQL: FamilyLearner and IQL's locomotion config; CQL: the
FamO2O-CQL locomotion config, cited in the class docstrings and ``algos/hyperparams/famo2o*.yml``), every argument
reaching the algorithm, its policy or SB3, and the validation boundaries (accepted at the boundary, refused just
past it)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch as th
from offline_data import random_dataset
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.noise import NormalActionNoise

from algos.famo2o import FamO2O
from algos.famo2o_cql import FamO2OCQL
from algos.famo2o_policies import BalanceSample, FamO2OCQLPolicy, FamO2OPolicy

ENV_ID = "Pendulum-v1"
SMALL = dict(policy_kwargs=dict(net_arch=[8]), buffer_size=1_000, device="cpu")
VARIANTS = [pytest.param(FamO2O, id="iql"), pytest.param(FamO2OCQL, id="cql")]


@pytest.fixture(scope="module")
def dataset():
    return random_dataset(ENV_ID, n=60)


def auto_device() -> th.device:
    return th.device("cuda" if th.cuda.is_available() else "cpu")


class OwnBuffer(ReplayBuffer):
    """A replay buffer class of the user's."""


def test_iql_defaults_are_the_authors():
    model = FamO2O("MlpPolicy", ENV_ID)
    assert (model.beta_min, model.beta_max, model.expectile, model.exp_adv_max) == (1.0, 5.0, 0.7, 100.0)
    assert (model.beta_encoding_dim, model.beta_encoding_base) == (6, 10_000.0)
    assert (model.actor.beta_encoding_dim, model.actor.beta_encoding_base) == (6, 10_000.0)
    assert (model.balance_model.beta_min, model.balance_model.beta_max) == (1.0, 5.0)
    assert model.balance_lr == 3e-4 and model.balance_model.optimizer.param_groups[0]["lr"] == 3e-4
    assert model.balance_temperature_init == 1.0 and model.log_balance_temperature.item() == 0.0
    assert model.balance_temperature_lr == 3e-4
    assert model.balance_temperature_optimizer.param_groups[0]["lr"] == 3e-4
    assert model.balance_target_entropy == -0.5  # "auto": -1/2 for the one-dimensional beta
    assert (model.actor_dropout, model.actor_lr_schedule, model.deterministic_actor) == (None, "constant", False)
    assert (model.normalize_observations, model.normalize_reward, model.reward_bias) == (False, True, 0.0)
    assert model.expl_noise == 0.0 and model.action_noise is None and not hasattr(model, "beta")
    assert model.learning_rate == 3e-4 and model.actor.optimizer.param_groups[0]["lr"] == 3e-4
    assert (model.buffer_size, model.learning_starts, model.batch_size, model.tau, model.gamma) == (
        2_000_000, 0, 256, 0.005, 0.99)
    assert (model.train_freq.frequency, model.train_freq.unit.value, model.gradient_steps) == (1, "step", 1)
    assert model._stats_window_size == 100 and model.tensorboard_log is None and model.verbose == 0
    assert model.device == auto_device() and isinstance(model.policy, FamO2OPolicy)
    assert model.policy_kwargs["net_arch"] == [256, 256] and type(model.replay_buffer) is ReplayBuffer


def test_cql_defaults_are_the_authors():
    model = FamO2OCQL("MlpPolicy", ENV_ID)
    assert (model.beta_min, model.beta_max, model.beta_encoding_dim, model.beta_encoding_base) == (
        0.5, 1.5, 6, 10_000.0)
    assert (model.actor.beta_encoding_dim, model.actor.beta_encoding_base) == (6, 10_000.0)
    assert (model.balance_model.beta_min, model.balance_model.beta_max) == (0.5, 1.5)
    assert model.balance_lr == 3e-4 and model.balance_model.optimizer.param_groups[0]["lr"] == 3e-4
    assert (model.cql_alpha, model.cql_n_actions, model.cql_temp, model.cql_importance_sample) == (1.0, 10, 1.0, True)
    assert (model.cql_lagrange, model.cql_target_action_gap, model.cql_max_target_backup) == (False, 1.0, False)
    assert (model.cql_clip_diff_min, model.cql_clip_diff_max, model.cql_alpha_online) == (-np.inf, np.inf, None)
    assert (model.backup_entropy, model.bc_steps, model.normalize_observations) == (False, 0, False)
    assert (model.reward_scale, model.reward_bias) == (1.0, 0.0)
    assert model.policy_lr == 3e-4 and model.actor.optimizer.param_groups[0]["lr"] == 3e-4
    assert model.learning_rate == 3e-4 and model.critic.optimizer.param_groups[0]["lr"] == 3e-4
    assert (model.buffer_size, model.learning_starts, model.batch_size, model.tau, model.gamma) == (
        2_000_000, 0, 256, 0.005, 0.99)
    assert (model.train_freq.frequency, model.train_freq.unit.value, model.gradient_steps) == (1, "step", 1)
    assert (model.optimize_memory_usage, model.n_steps, model.target_update_interval) == (False, 1, 1)
    assert model.ent_coef == "auto" and model.log_ent_coef.item() == 0.0 and model.target_entropy == -1.0
    assert model._stats_window_size == 100 and model.tensorboard_log is None and model.verbose == 0
    assert model.device == auto_device() and isinstance(model.policy, FamO2OCQLPolicy)
    assert model.action_noise is None and type(model.replay_buffer) is ReplayBuffer


def test_iql_settings_reach_the_algorithm_and_sb3(dataset):
    settings = dict(beta_min=0.5, beta_max=2.5, expectile=0.8, exp_adv_max=50.0, beta_encoding_dim=4,
                    beta_encoding_base=100.0, balance_lr=1e-3, balance_temperature_lr=2e-3, actor_dropout=0.1,
                    actor_lr_schedule="cosine", reward_bias=-1.0, learning_rate=1e-4, learning_starts=5,
                    batch_size=16, tau=0.01, gamma=0.9, gradient_steps=2, verbose=1, seed=4)
    noise = NormalActionNoise(np.zeros(1), 0.1 * np.ones(1))
    model = FamO2O("MlpPolicy", ENV_ID, dataset=dataset, balance_temperature_init=0.25, balance_target_entropy=-0.2,
                   normalize_observations=True, normalize_reward=False, train_freq=(3, "episode"), action_noise=noise,
                   replay_buffer_class=OwnBuffer, replay_buffer_kwargs=dict(handle_timeout_termination=False),
                   stats_window_size=9, tensorboard_log="tb", **{**SMALL, **settings})
    for key, value in settings.items():
        assert getattr(model, key) == value, key
    assert (model.actor.beta_encoding_dim, model.actor.beta_encoding_base) == (4, 100.0)
    assert (model.balance_model.beta_min, model.balance_model.beta_max) == (0.5, 2.5)
    assert model.balance_model.optimizer.param_groups[0]["lr"] == 1e-3
    assert model.balance_temperature_optimizer.param_groups[0]["lr"] == 2e-3
    assert model.log_balance_temperature.item() == pytest.approx(math.log(0.25))
    assert model.balance_target_entropy == -0.2
    assert model.actor.dropout == 0.1 and model.normalize_observations and not model.normalize_reward
    assert model.reward_scale == 1.0 and model.actor.optimizer.param_groups[0]["lr"] == 1e-4
    assert (model.train_freq.frequency, model.train_freq.unit.value) == (3, "episode")
    assert model.action_noise is noise and model.replay_buffer.handle_timeout_termination is False
    assert type(model.replay_buffer) is OwnBuffer
    assert model.policy_kwargs["net_arch"] == [8] and model.actor.latent_pi[0].out_features == 8  # the user's layers
    assert model._stats_window_size == 9 and model.tensorboard_log == "tb" and model.buffer_size == 1_000
    assert model.replay_buffer.size() == len(dataset.observations)  # the dataset reached the buffer


def test_cql_settings_reach_the_algorithm_and_sb3(dataset):
    settings = dict(beta_min=0.2, beta_max=3.0, beta_encoding_dim=2, beta_encoding_base=50.0, balance_lr=2e-3,
                    cql_alpha=0.5, cql_n_actions=3, cql_temp=0.5, cql_importance_sample=False,
                    cql_target_action_gap=2.0, cql_max_target_backup=True, cql_clip_diff_min=-10.0,
                    cql_clip_diff_max=20.0, cql_alpha_online=0.1, backup_entropy=True, bc_steps=4,
                    reward_scale=2.0, reward_bias=-0.5, policy_lr=1e-4, learning_rate=2e-4, learning_starts=6,
                    batch_size=16, tau=0.02, gamma=0.95, gradient_steps=3, target_update_interval=2, verbose=1, seed=2)
    noise = NormalActionNoise(np.zeros(1), 0.1 * np.ones(1))
    model = FamO2OCQL("MlpPolicy", ENV_ID, dataset=dataset, cql_lagrange=True, normalize_observations=True,
                      train_freq=(2, "episode"), action_noise=noise, n_steps=3,
                      replay_buffer_kwargs=dict(handle_timeout_termination=False), ent_coef="auto_0.5",
                      target_entropy=-0.4, stats_window_size=8, tensorboard_log="tb", **{**SMALL, **settings})
    for key, value in settings.items():
        assert getattr(model, key) == value, key
    assert (model.actor.beta_encoding_dim, model.actor.beta_encoding_base) == (2, 50.0)
    assert (model.balance_model.beta_min, model.balance_model.beta_max) == (0.2, 3.0)
    assert model.balance_model.optimizer.param_groups[0]["lr"] == 2e-3
    assert model.cql_lagrange and model.cql_alpha_optimizer is not None and model.normalize_observations
    assert model.actor.optimizer.param_groups[0]["lr"] == 1e-4 and model.critic.optimizer.param_groups[0]["lr"] == 2e-4
    assert (model.train_freq.frequency, model.train_freq.unit.value) == (2, "episode")
    assert model.action_noise is noise and model.n_steps == 3 and model.replay_buffer.n_steps == 3
    assert model.replay_buffer.handle_timeout_termination is False
    assert model.policy_kwargs["net_arch"] == [8] and model.actor.latent_pi[0].out_features == 8  # the user's layers
    assert model.log_ent_coef.item() == pytest.approx(math.log(0.5)) and model.target_entropy == -0.4
    assert model._stats_window_size == 8 and model.tensorboard_log == "tb" and model.buffer_size == 1_000
    buffer = FamO2OCQL("MlpPolicy", ENV_ID, optimize_memory_usage=True, replay_buffer_class=OwnBuffer,
                       replay_buffer_kwargs=dict(handle_timeout_termination=False), **SMALL).replay_buffer
    assert type(buffer) is OwnBuffer and buffer.optimize_memory_usage


@pytest.mark.parametrize("algo_class", VARIANTS)
def test_the_device_reaches_sb3_and_the_family_is_built_on_it(algo_class, requested_devices):
    """"meta" (tensors with shapes but no data): a device other than the CPU that any machine has, and not "auto"'s
    choice; the balance model and (IQL) its temperature are made on it too."""
    model = algo_class("MlpPolicy", ENV_ID, **{**SMALL, "device": "meta"})
    assert requested_devices == ["meta"] and model.device.type == "meta"
    assert model.balance_model.mu.weight.device.type == "meta"
    model.in_offline_phase = True  # uniform betas, drawn on the batch's device
    on_meta = th.zeros((4, 1), device="meta")
    betas = model.universal_policy_betas(BalanceSample(beta=on_meta, log_prob=on_meta, mode=on_meta))
    assert betas.device.type == "meta" and betas.shape == (4, 1)
    if algo_class is FamO2O:
        assert model.log_balance_temperature.device.type == "meta"


@pytest.mark.parametrize("algo_class", VARIANTS)
def test_the_networks_are_built_once_and_not_at_all_for_load(algo_class, monkeypatch):
    built = []
    setup = algo_class._setup_model
    monkeypatch.setattr(algo_class, "_setup_model", lambda self: built.append(self) or setup(self))
    model = algo_class("MlpPolicy", ENV_ID, **SMALL)
    assert built == [model]
    assert not hasattr(algo_class("MlpPolicy", ENV_ID, _init_setup_model=False, **SMALL), "balance_model")
    assert built == [model]


@pytest.mark.parametrize("algo_class", VARIANTS)
def test_family_validation_boundaries(algo_class):
    """beta_min < beta_max, a positive even encoding size, balance_lr >= 0 (IQL: a positive initial temperature and a
    numeric target entropy)."""
    model = algo_class("MlpPolicy", ENV_ID, beta_min=1.0, beta_max=1.0 + 1e-6, beta_encoding_dim=2, balance_lr=0.0,
                       **SMALL)
    assert (model.beta_min, model.beta_encoding_dim, model.balance_lr) == (1.0, 2, 0.0)
    refused = [(dict(beta_min=1.0, beta_max=1.0), "beta_min must be below beta_max"),
               (dict(beta_encoding_dim=0), "positive even number"), (dict(beta_encoding_dim=5), "positive even"),
               (dict(balance_lr=-1e-9), "balance_lr must be >= 0")]
    if algo_class is FamO2O:
        assert algo_class("MlpPolicy", ENV_ID, balance_temperature_init=1e-9, balance_target_entropy=1, **SMALL)
        refused += [(dict(balance_temperature_init=0.0), "balance_temperature_init must be positive"),
                    (dict(balance_target_entropy="high"), "must be 'auto' or a number")]
    for kwargs, match in refused:
        with pytest.raises(ValueError, match=match):
            algo_class("MlpPolicy", ENV_ID, **{**SMALL, **kwargs})
