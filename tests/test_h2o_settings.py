"""H2O's settings: the authors' defaults (``Sim2realSAC.get_default_config`` and the main script's flags, cited in the
class docstring and ``algos/hyperparams/h2o.yml``), every argument reaching the algorithm or SB3, and the validation
boundaries (accepted at the boundary, refused just past it)."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import pytest
import torch as th
from offline_data import random_dataset
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.torch_layers import FlattenExtractor
from stable_baselines3.common.vec_env import DummyVecEnv

from algos.h2o import H2O
from algos.h2o_policies import H2OPolicy
from rl.envs import make_env
from sim2real import RealSimReplayBuffer

ENV_ID = "Pendulum-v1"
SMALL = dict(policy_kwargs=dict(net_arch=[8]), discriminator_net_arch=[8], buffer_size=1_000, device="cpu")


@pytest.fixture(scope="module")
def dataset():
    return random_dataset(ENV_ID, n=50)


def test_defaults_are_the_authors():
    """Every default of the signature, as the docstring and the authors' config give it."""
    model = H2O("MlpPolicy", ENV_ID)
    assert (model.sim_ratio, model.dynamics_aware) == (0.5, True)
    assert (model.cql_alpha, model.cql_temp, model.cql_lagrange, model.cql_target_action_gap) == (0.01, 1.0, False, 1.0)
    assert (model.cql_clip_diff_min, model.cql_clip_diff_max) == (-1000.0, 1000.0)
    assert (model.dynamics_ratio_min, model.dynamics_ratio_max) == (1e-5, 1.0)
    assert (model.sim_weight_min, model.sim_weight_max) == (1e-45, 10.0)
    assert (model.n_next_state_samples, model.next_state_noise) == (10, 1.0)
    assert (model.discriminator_lr, model.discriminator_noise, model.discriminator_batch_size) == (3e-4, 0.1, 256)
    assert model.discriminator_net_arch == [256, 256]
    assert [layer.out_features for layer in model.discriminators.sas.net if isinstance(layer, th.nn.Linear)] == [
        256, 256, 2]
    assert model.discriminator_optimizer.param_groups[0]["lr"] == 3e-4
    assert (model.backup_entropy, model.normalize_observations, model.reward_scale, model.reward_bias) == (
        False, False, 1.0, 0.0)
    assert model.policy_lr == 3e-4 and model.actor.optimizer.param_groups[0]["lr"] == 3e-4
    assert model.ent_coef_optimizer.param_groups[0]["lr"] == 3e-4
    assert model.learning_rate == 3e-4 and model.critic.optimizer.param_groups[0]["lr"] == 3e-4
    assert (model.buffer_size, model.learning_starts, model.batch_size, model.tau, model.gamma) == (
        2_000_000, 0, 256, 0.005, 0.99)
    assert (model.train_freq.frequency, model.train_freq.unit.value, model.gradient_steps) == (1, "step", 1)
    assert model.action_noise is None and model.replay_buffer_kwargs == {}
    assert type(model.replay_buffer) is RealSimReplayBuffer
    assert model.ent_coef == "auto" and model.log_ent_coef.item() == 0.0  # learned, from 1
    assert model.target_entropy == -1.0 and model.target_update_interval == 1  # -|A|
    assert model.cql_alpha_optimizer is None and model.log_cql_alpha is None
    assert model._stats_window_size == 100 and model.tensorboard_log is None and model.verbose == 0
    assert model.device == th.device("cuda" if th.cuda.is_available() else "cpu")  # "auto"
    assert isinstance(model.policy, H2OPolicy) and model.policy.actor.latent_pi[0].out_features == 256


def test_every_setting_reaches_the_algorithm_and_sb3(dataset, requested_devices):
    """Non-default values are kept, on H2O and on SB3's side (where a dropped argument would fall back to a
    default)."""
    settings = dict(
        sim_ratio=0.25, dynamics_aware=False, cql_alpha=0.3, cql_temp=2.0, cql_target_action_gap=0.7,
        cql_clip_diff_min=-5.0, cql_clip_diff_max=6.0, dynamics_ratio_min=1e-3, dynamics_ratio_max=2.0,
        sim_weight_min=1e-3, sim_weight_max=3.0, n_next_state_samples=3, next_state_noise=0.5,
        discriminator_lr=1e-3, discriminator_noise=0.2, discriminator_batch_size=16, backup_entropy=True,
        reward_scale=2.0, reward_bias=-0.5, policy_lr=1e-4, learning_rate=2e-4, learning_starts=3, batch_size=32,
        tau=0.01, gamma=0.9, gradient_steps=2, target_update_interval=2, stats_window_size=7, verbose=1, seed=3,
    )
    noise = NormalActionNoise(np.zeros(1), 0.1 * np.ones(1))

    class Buffer(RealSimReplayBuffer):
        pass

    model = H2O(
        "MlpPolicy", ENV_ID, dataset=dataset, cql_lagrange=True, normalize_observations=True, train_freq=(2, "episode"),
        ent_coef="auto_0.5", target_entropy=-0.3, action_noise=noise, replay_buffer_class=Buffer,
        replay_buffer_kwargs=dict(handle_timeout_termination=False), tensorboard_log="tb", **{**SMALL, **settings},
    )
    assert requested_devices[0] == "cpu"  # SMALL's device, as the constructor asked SB3 ("auto" if it were dropped)
    for key, value in settings.items():
        if key not in ("stats_window_size", "seed"):
            assert getattr(model, key) == value, key
    assert model._stats_window_size == 7 and model.seed == 3 and model.tensorboard_log == "tb"
    assert model.discriminator_net_arch == [8] and model.discriminator_optimizer.param_groups[0]["lr"] == 1e-3
    for discriminator in (model.discriminators.sa, model.discriminators.sas):  # the hidden layers reached the nets
        assert [m.out_features for m in discriminator.modules() if isinstance(m, th.nn.Linear)] == [8, 2]
    assert model.actor.optimizer.param_groups[0]["lr"] == 1e-4
    assert model.ent_coef_optimizer.param_groups[0]["lr"] == 1e-4
    assert model.critic.optimizer.param_groups[0]["lr"] == 2e-4
    assert model.cql_lagrange and model.cql_alpha_optimizer is not None and model.normalize_observations
    assert (model.train_freq.frequency, model.train_freq.unit.value) == (2, "episode")
    assert model.log_ent_coef.item() == pytest.approx(math.log(0.5)) and model.target_entropy == -0.3
    assert model.action_noise is noise and type(model.replay_buffer) is Buffer
    assert model.replay_buffer.handle_timeout_termination is False and model.buffer_size == 1_000
    assert model.policy.actor.latent_pi[0].out_features == 8
    assert model.replay_buffer.real_size == len(dataset)  # the dataset reached the buffer, as real data
    np.testing.assert_allclose(model.next_state_std, dataset.observations.std(axis=0) + 1e-3, rtol=1e-5)
    env = DummyVecEnv([lambda: make_env(ENV_ID)])
    assert H2O("MlpPolicy", env, **SMALL).get_env() is env


def construct(**kwargs) -> H2O:
    return H2O("MlpPolicy", ENV_ID, **{**SMALL, **kwargs})


@pytest.mark.parametrize("kwargs", [
    dict(sim_ratio=1e-6), dict(sim_ratio=1 - 1e-6), dict(dynamics_ratio_min=1e-9, dynamics_ratio_max=1e-9),
    dict(sim_weight_min=1e-9, sim_weight_max=1e-9), dict(n_next_state_samples=1), dict(discriminator_batch_size=1),
    dict(next_state_noise=0.0), dict(discriminator_noise=0.0), dict(batch_size=2),
    dict(replay_buffer_class=RealSimReplayBuffer),
])
def test_validation_accepts_the_boundary_values(kwargs):
    model = construct(**kwargs)
    for key, value in kwargs.items():
        assert getattr(model, key) == value


@pytest.mark.parametrize("kwargs, match", [
    (dict(sim_ratio=0.0), "sim_ratio must lie in"), (dict(sim_ratio=1.0), "sim_ratio must lie in"),
    (dict(dynamics_ratio_min=0.0), "dynamics_ratio_min <= dynamics_ratio_max"),
    (dict(dynamics_ratio_min=1.0 + 1e-6), "dynamics_ratio_min <= dynamics_ratio_max"),
    (dict(sim_weight_min=0.0), "sim_weight_min <= sim_weight_max"),
    (dict(sim_weight_min=10.0 + 1e-6), "sim_weight_min <= sim_weight_max"),
    (dict(n_next_state_samples=0), "must be >= 1"), (dict(discriminator_batch_size=0), "must be >= 1"),
    (dict(next_state_noise=-1e-6), "Noise stds must be >= 0"), (dict(discriminator_noise=-1e-6), "Noise stds"),
    (dict(batch_size=1), "batch_size must be >= 2"),
    (dict(replay_buffer_class=ReplayBuffer), "must be a RealSimReplayBuffer, got ReplayBuffer"),
])
def test_validation_refuses_values_just_past_the_boundary(kwargs, match):
    with pytest.raises(ValueError, match=match):
        construct(**kwargs)


class ModeRecordingExtractor(FlattenExtractor):
    """A features extractor that notes whether it runs in training mode (as dropout or batch norm would need)."""

    modes: ClassVar[list[tuple[FlattenExtractor, bool]]] = []

    def forward(self, observations: th.Tensor) -> th.Tensor:
        self.modes.append((self, self.training))
        return super().forward(observations)


def test_train_follows_both_learning_rate_schedules_and_counts_its_updates(dataset):
    """The actor and temperature follow ``policy_lr``, the critics and the Lagrange multiplier ``learning_rate``, both
    read at the current progress; ``train/policy_learning_rate`` and ``train/n_updates`` are logged; the networks
    train in training mode (a features extractor with dropout or batch norm)."""
    from stable_baselines3.common.logger import configure

    policy_kwargs = dict(net_arch=[8], features_extractor_class=ModeRecordingExtractor)
    model = H2O("MlpPolicy", ENV_ID, dataset=dataset, cql_lagrange=True, batch_size=8, seed=0,
                policy_lr=lambda progress: 1e-3 * progress, learning_rate=lambda progress: 2e-3 * progress,
                **{**SMALL, "policy_kwargs": policy_kwargs})
    model.set_logger(configure(None, []))
    model._current_progress_remaining, model._n_updates = 0.25, 5
    model.policy.set_training_mode(False)  # as predict leaves it
    ModeRecordingExtractor.modes.clear()
    model.train(3, 8)
    trained = {id(model.actor.features_extractor), id(model.critic.features_extractor)}
    modes = [training for extractor, training in ModeRecordingExtractor.modes if id(extractor) in trained]
    assert modes and all(modes)  # the target critic stays in evaluation mode, as in SB3
    logged = model.logger.name_to_value
    assert logged["train/policy_learning_rate"] == pytest.approx(2.5e-4)
    assert logged["train/learning_rate"] == pytest.approx(5e-4)
    for optimizer, lr in ((model.actor.optimizer, 2.5e-4), (model.ent_coef_optimizer, 2.5e-4),
                          (model.critic.optimizer, 5e-4), (model.cql_alpha_optimizer, 5e-4)):
        assert optimizer.param_groups[0]["lr"] == pytest.approx(lr)
    assert model._n_updates == 8 and logged["train/n_updates"] == 8


class BatchNormExtractor(FlattenExtractor):
    """Flattened observations through a batch norm, whose running statistics the target critic copies."""

    def __init__(self, observation_space) -> None:
        super().__init__(observation_space)
        self.norm = th.nn.BatchNorm1d(self.features_dim)

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return self.norm(super().forward(observations))


def test_a_fixed_temperature_and_the_critics_batch_norm_statistics_reach_the_update(dataset):
    """A fixed ``ent_coef`` (also in the entropy backup) and batch-norm statistics copied to the target critic."""
    from stable_baselines3.common.logger import configure

    model = H2O("MlpPolicy", ENV_ID, dataset=dataset, ent_coef=0.3, backup_entropy=True, batch_size=8, seed=0,
                **{**SMALL, "policy_kwargs": dict(net_arch=[8], features_extractor_class=BatchNormExtractor)})
    model.set_logger(configure(None, []))
    model.train(2, 8)
    assert model.ent_coef_optimizer is None and model.logger.name_to_value["train/ent_coef"] == pytest.approx(0.3)
    critic, target = model.critic.features_extractor.norm, model.critic_target.features_extractor.norm
    assert critic.running_mean.abs().max() > 0  # moved by the critics' batches
    for name in ("running_mean", "running_var"):  # copied to the target at rate 1
        np.testing.assert_array_equal(getattr(target, name).numpy(), getattr(critic, name).numpy())
