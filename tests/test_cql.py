"""CQL's own behaviour: the CQL(H) penalty, its effect on Q, its weight (fixed, Lagrange, online), the
target, the BC warm-up, the learning rates and initialisation, and save/load of every optimizer.

The SB3 contract shared by all offline algorithms is tested in test_offline_contract.py.
"""

from __future__ import annotations

import math
import os
import re

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from offline_data import random_dataset
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import NStepReplayBuffer, ReplayBuffer
from stable_baselines3.common.logger import KVWriter, Logger, configure, filter_excluded_keys
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.utils import get_device
from torch.distributions import Normal, TanhTransform, TransformedDistribution

from algos.cql import CQL, CQL_LOG_ALPHA_INIT
from rl.datasets import OfflineDataset
from rl.offline import fill_replay_buffer

ENV_ID = "Pendulum-v1"
TINY = dict(policy_kwargs=dict(net_arch=[16, 16]), batch_size=32, buffer_size=2_000, device="cpu")


@pytest.fixture(scope="module")
def dataset():
    return random_dataset(ENV_ID, n=600)


def make(dataset, seed: int = 0, **kwargs) -> CQL:
    model = CQL("MlpPolicy", ENV_ID, dataset=dataset, seed=seed, **{**TINY, **kwargs})
    model.set_logger(configure(None, []))  # train() records; no learn() has set up a logger
    return model


def batch(model: CQL, n: int) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
    """The first ``n`` transitions of the buffer: observations, actions (scaled), next observations."""
    buffer = model.replay_buffer
    fields = (buffer.observations, buffer.actions, buffer.next_observations)
    observations, actions, next_observations = (th.as_tensor(x[:n, 0], dtype=th.float32) for x in fields)
    return observations, actions, next_observations


def critic_parameters(model) -> list[np.ndarray]:
    return [p.detach().numpy().copy() for p in model.critic.parameters()]


def all_parameters(model) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in model.policy.state_dict().items()}


def test_policy_samples_draw_n_actions_per_state_from_one_actor_pass(dataset):
    """n samples per state equal the actor run on the states repeated n times, with one forward pass per state."""
    model = make(dataset)
    observations, _, _ = batch(model, 4)
    with th.no_grad():  # a state-dependent policy, so that a mix-up of rows would show
        model.actor.mu.weight.normal_(0.0, 1.0)
        model.actor.log_std.weight.normal_(0.0, 0.3)
    rows_seen = []
    hook = model.actor.latent_pi.register_forward_hook(lambda module, inputs, output: rows_seen.append(len(output)))
    th.manual_seed(5)
    actions, log_prob = model.policy_samples(observations, n_samples=3)
    hook.remove()
    th.manual_seed(5)
    expected_actions, expected_log_prob = model.actor.action_log_prob(observations.repeat_interleave(3, dim=0))

    assert rows_seen == [4]
    assert actions.shape == (12, 1) and log_prob.shape == (12,)
    np.testing.assert_allclose(actions.detach().numpy(), expected_actions.detach().numpy(), atol=1e-6)
    np.testing.assert_allclose(log_prob.detach().numpy(), expected_log_prob.detach().numpy(), atol=1e-5)
    assert len(np.unique(actions[:3].detach().numpy())) == 3  # independent draws, not one draw copied


@pytest.mark.parametrize("importance_sample", [True, False])
def test_penalty_matches_a_hand_computation(dataset, importance_sample):
    n_actions, temp = 3, 0.7
    model = make(dataset, cql_n_actions=n_actions, cql_temp=temp, cql_importance_sample=importance_sample)
    observations, actions, next_observations = batch(model, 4)
    data_q = model.critic(observations, actions)
    with th.no_grad():  # a policy that depends on the state, so that pi(.|s) and pi(.|s') differ
        model.actor.mu.weight.normal_(0.0, 1.0)
        model.actor.log_std.weight.normal_(0.0, 0.3)

    th.manual_seed(11)
    sampled, log_density = model.cql_sample_actions(observations, next_observations)
    th.manual_seed(11)
    penalty = model.cql_penalty(observations, next_observations, data_q)

    assert sampled.shape == (4, 3 * n_actions, 1) and log_density.shape == (4, 3 * n_actions)
    assert th.all(sampled.abs() <= 1.0)
    # Uniform actions on [-1, 1] have density 1/2; policy actions carry their log-probability at s' then at s.
    np.testing.assert_allclose(log_density[:, :n_actions].numpy(), math.log(0.5), rtol=1e-6)
    for k, states, other_states in ((1, next_observations, observations), (2, observations, next_observations)):
        for j in range(k * n_actions, (k + 1) * n_actions):
            expected = model.log_likelihood(states, sampled[:, j]).detach().numpy()
            np.testing.assert_allclose(log_density[:, j].numpy(), expected, atol=2e-3)
            elsewhere = model.log_likelihood(other_states, sampled[:, j]).detach().numpy()
            assert not np.allclose(expected, elsewhere, atol=2e-3)

    gaps = []
    for i in range(2):  # two critics
        per_state = []
        for b in range(4):
            q_data = data_q[i][b, 0].item()
            logits = []
            for j in range(3 * n_actions):
                q = model.critic(observations[b : b + 1], sampled[b, j : j + 1])[i].item()
                logits.append(q - log_density[b, j].item() if importance_sample else q)
            if not importance_sample:
                logits.append(q_data)
            soft_max = temp * math.log(sum(math.exp(x / temp) for x in logits))
            per_state.append(soft_max - q_data)
        gaps.append(np.mean(per_state))
    np.testing.assert_allclose(penalty.gap.detach().numpy(), gaps, rtol=1e-5, atol=1e-6)
    assert penalty.gap.requires_grad, "the penalty must train the critics"


def test_gap_is_clipped_per_state(dataset):
    model = make(dataset, cql_clip_diff_min=-0.01, cql_clip_diff_max=0.01)
    observations, actions, next_observations = batch(model, 8)
    penalty = model.cql_penalty(observations, next_observations, model.critic(observations, actions))
    assert th.all(penalty.gap.abs() <= 0.01 + 1e-7)


def dataset_advantage(model: CQL, dataset, n_uniform: int = 20) -> float:
    """Mean over the data of ``Q1(s, a_data) - mean_j Q1(s, a_j)``, ``a_j`` uniform: how much the data is preferred."""
    observations, actions, _ = batch(model, len(dataset))
    generator = th.Generator().manual_seed(0)
    uniform = th.rand((len(dataset), n_uniform, 1), generator=generator) * 2 - 1
    with th.no_grad():
        q_data = model.critic(observations, actions)[0].squeeze(1)
        q_uniform = model.critic_values(observations, uniform)[0].mean(dim=1)
    return (q_data - q_uniform).mean().item()


def narrow_dataset(n: int = 600, seed: int = 0) -> OfflineDataset:
    """Pendulum transitions of a narrow behaviour policy, torque 1.0 +- 0.1 (0.5 +- 0.05 once scaled)."""
    env = gym.make(ENV_ID, max_episode_steps=100)
    rng = np.random.default_rng(seed)
    keys = ("observations", "actions", "rewards", "next_observations", "terminals")
    rows: dict[str, list] = {key: [] for key in keys}
    observation, _ = env.reset(seed=seed)
    while len(rows["rewards"]) < n:
        action = np.clip(1.0 + 0.1 * rng.standard_normal(1), -2.0, 2.0).astype(np.float32)
        next_observation, reward, terminated, truncated, _ = env.step(action)
        for key, value in zip(rows, (observation, action, reward, next_observation, terminated)):
            rows[key].append(value)
        observation = env.reset()[0] if terminated or truncated else next_observation
    arrays = {key: np.asarray(value, dtype=np.float32) for key, value in rows.items()}
    return OfflineDataset(
        name="pendulum-v1-narrow", env_id=ENV_ID, observations=arrays["observations"], actions=arrays["actions"],
        next_observations=arrays["next_observations"], rewards=arrays["rewards"],
        terminals=arrays["terminals"].astype(bool), timeouts=np.zeros(n, dtype=bool), ref_min=-1500.0, ref_max=0.0,
        source="memory",
    )


def test_penalty_pushes_q_of_dataset_actions_above_other_actions():
    data = narrow_dataset()
    advantages = {}
    for cql_alpha in (0.0, 5.0):
        model = make(data, cql_alpha=cql_alpha, learning_rate=1e-3, batch_size=64,
                     policy_kwargs=dict(net_arch=[32, 32]))
        before = dataset_advantage(model, data)
        model.learn_offline(200)
        advantages[cql_alpha] = dataset_advantage(model, data) - before
    # The data holds one narrow action per state: CQL raises Q there and lowers it on the rest of the actions;
    # without the penalty, Q extrapolates freely off the data.
    assert advantages[5.0] > 0.5
    assert advantages[5.0] > advantages[0.0] + 1.0


def test_zero_cql_alpha_gives_sacs_critic_update(dataset):
    """With cql_alpha=0 and the entropy backed up, the critic loss is SAC's, twice (no factor 1/2, as in CORL)."""
    # Plain SGD with a large rate: a step proportional to the gradient, far above float32 rounding.
    networks = dict(net_arch=[16, 16], optimizer_class=th.optim.SGD)
    common = dict(normalize_observations=False, policy_kwargs=networks, learning_rate=0.1)
    cql = make(dataset, cql_alpha=0.0, backup_entropy=True, **common)
    sac = SAC("MlpPolicy", ENV_ID, policy_kwargs=networks, learning_rate=0.1, batch_size=32, buffer_size=2_000,
              device="cpu", seed=0)
    sac.set_logger(configure(None, []))
    fill_replay_buffer(sac.replay_buffer, dataset, sac.policy.scale_action(dataset.actions))
    sac.policy.load_state_dict(cql.policy.state_dict())
    penalised = make(dataset, cql_alpha=10.0, backup_entropy=True, **common)
    penalised.policy.load_state_dict(cql.policy.state_dict())
    before = critic_parameters(cql)

    for model in (cql, sac, penalised):
        th.manual_seed(1)
        np.random.seed(1)  # the same batch, the same sampled actions
        model.train(gradient_steps=1, batch_size=32)

    steps = {name: [after - start for start, after in zip(before, critic_parameters(model))]
             for name, model in (("cql", cql), ("sac", sac), ("penalised", penalised))}
    assert any(np.abs(step).max() > 0 for step in steps["cql"])
    for ours, theirs in zip(steps["cql"], steps["sac"]):
        np.testing.assert_allclose(ours, 2.0 * theirs, rtol=1e-3, atol=1e-6)
    assert any(not np.allclose(a, b) for a, b in zip(steps["cql"], steps["penalised"]))


@pytest.mark.parametrize("threshold, direction", [(1e3, -1), (-1e3, +1)])
def test_lagrange_multiplier_rises_while_the_gap_exceeds_the_threshold(dataset, threshold, direction):
    model = make(dataset, cql_lagrange=True, cql_target_action_gap=threshold, cql_alpha=2.0)
    assert model.log_cql_alpha.item() == pytest.approx(CQL_LOG_ALPHA_INIT)
    assert model.cql_weight().item() == pytest.approx(2.0 * math.e, rel=1e-6)
    model.learn_offline(5)
    moved = model.log_cql_alpha.item() - CQL_LOG_ALPHA_INIT
    assert direction * moved > 0.9 * 5 * model.learning_rate  # Adam: about lr per step, all the same sign
    assert model.cql_weight().item() == pytest.approx(2.0 * math.exp(model.log_cql_alpha.item()), rel=1e-6)


def test_online_phase_uses_the_online_weight(dataset):
    model = make(dataset, cql_alpha=7.0, cql_alpha_online=2.0)
    model.learn_offline(3)
    assert not model.is_online and model.cql_weight().item() == 7.0
    model.learn(4, reset_num_timesteps=False)
    assert model.is_online and model.cql_weight().item() == 2.0
    assert model.replay_buffer.size() == len(dataset) + 4


def test_max_target_backup_takes_the_best_of_the_sampled_next_actions(dataset):
    model = make(dataset, cql_max_target_backup=True, cql_n_actions=1)
    _, _, next_observations = batch(model, 64)
    rewards, dones = th.zeros(64, 1), th.zeros(64, 1)
    ent_coef = th.tensor(1.0)
    th.manual_seed(3)
    single = model.critic_target_q(next_observations, rewards, dones, 0.99, ent_coef)
    model.cql_max_target_backup = False
    th.manual_seed(3)
    plain = model.critic_target_q(next_observations, rewards, dones, 0.99, ent_coef)
    np.testing.assert_allclose(single.numpy(), plain.numpy(), rtol=1e-6)  # one sample: the ordinary backup

    model.cql_max_target_backup, model.cql_n_actions = True, 10
    th.manual_seed(3)
    best = model.critic_target_q(next_observations, rewards, dones, 0.99, ent_coef)
    assert best.mean() > plain.mean()
    # No entropy in the backup by default; with it, the backed-up value changes by -alpha * log pi(a'|s').
    model.backup_entropy = True
    th.manual_seed(3)
    soft = model.critic_target_q(next_observations, rewards, dones, 0.99, ent_coef)
    assert not th.allclose(soft, best)


def test_log_likelihood_is_the_squashed_gaussians(dataset):
    model = make(dataset)
    observations, _, _ = batch(model, 16)
    actions = th.linspace(-0.9, 0.9, 16).unsqueeze(1)
    mean, log_std, _ = model.actor.get_action_dist_params(observations)
    expected = TransformedDistribution(Normal(mean, log_std.exp()), TanhTransform()).log_prob(actions).sum(dim=1)
    np.testing.assert_allclose(
        model.log_likelihood(observations, actions).detach().numpy(), expected.detach().numpy(), atol=1e-4
    )


def test_bc_warm_up_fits_dataset_actions_without_the_critics(dataset):
    def one_step(model: CQL) -> dict[str, np.ndarray]:
        th.manual_seed(2)
        np.random.seed(2)
        model.train(gradient_steps=1, batch_size=32)
        return {k: v for k, v in all_parameters(model).items() if k.startswith("actor.")}

    def actor_steps(bc_steps: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """One step of two models that differ only in their critics."""
        reference, other_critics = make(dataset, bc_steps=bc_steps), make(dataset, bc_steps=bc_steps)
        with th.no_grad():
            for parameter in other_critics.critic.parameters():
                parameter.mul_(-3.0)
        return one_step(reference), one_step(other_critics)

    reference, other = actor_steps(bc_steps=5)
    for name in reference:
        np.testing.assert_array_equal(reference[name], other[name], err_msg=name)
    reference, other = actor_steps(bc_steps=0)  # after the warm-up the critics drive the actor
    assert any(not np.array_equal(reference[k], other[k]) for k in reference)

    model = make(dataset, bc_steps=60, policy_lr=1e-3)
    observations, actions, _ = batch(model, len(dataset))
    before = model.log_likelihood(observations, actions).mean().item()
    model.learn_offline(60)
    assert model.log_likelihood(observations, actions).mean().item() > before + 0.1
    assert model.logger.name_to_value["train/behaviour_cloning"] == 1.0
    model.train(gradient_steps=1, batch_size=32)
    assert model.logger.name_to_value["train/behaviour_cloning"] == 0.0


def test_networks_learning_rates_and_initialisation_follow_corl(dataset):
    model = make(dataset, policy_kwargs=None, batch_size=256)
    sizes = [layer.out_features for layer in model.critic.q_networks[0] if isinstance(layer, th.nn.Linear)]
    assert sizes == [256, 256, 256, 1]
    assert [layer.out_features for layer in model.actor.latent_pi if isinstance(layer, th.nn.Linear)] == [256] * 3
    observations, actions, _ = batch(model, 64)
    with th.no_grad():
        assert max(q.abs().max().item() for q in model.critic(observations, actions)) < 0.5  # small output layer
        _, log_std, _ = model.actor.get_action_dist_params(observations)
    np.testing.assert_allclose(log_std.numpy(), -1.0, atol=0.05)  # CORL's log_std_offset
    hidden = model.critic.q_networks[0][2].weight.detach()
    np.testing.assert_allclose((hidden @ hidden.T).numpy(), 2.0 * np.eye(256), atol=1e-4)  # orthogonal, gain sqrt(2)
    assert_same_state(model.critic.state_dict(), model.critic_target.state_dict())
    assert model.actor.optimizer.param_groups[0]["lr"] == 3e-5
    assert model.ent_coef_optimizer.param_groups[0]["lr"] == 3e-5
    assert model.critic.optimizer.param_groups[0]["lr"] == 3e-4
    assert model.target_entropy == -1.0
    assert model.cql_alpha == 10.0 and not model.cql_lagrange and model.normalize_observations


def assert_same_state(a: dict[str, th.Tensor], b: dict[str, th.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key].numpy(), b[key].numpy(), err_msg=key)


def test_save_load_keeps_every_optimizer_and_training_continues_identically(dataset, tmp_path):
    options = dict(cql_lagrange=True, cql_target_action_gap=0.5, cql_max_target_backup=True, bc_steps=12)
    model = make(dataset, **options)
    model.learn_offline(10)
    model.save(tmp_path / "cql.zip")
    with pytest.warns(UserWarning, match="could not be read"):
        loaded = CQL.load(tmp_path / "cql.zip", device="cpu")  # no env; the in-memory dataset is not on disk
    loaded.load_offline_data(dataset)
    assert loaded.log_cql_alpha.item() == model.log_cql_alpha.item()
    assert loaded.log_cql_alpha.requires_grad and loaded.cql_alpha_optimizer.param_groups[0]["params"][0] is (
        loaded.log_cql_alpha
    )
    for name in ("actor.optimizer", "critic.optimizer", "ent_coef_optimizer", "cql_alpha_optimizer"):
        saved, restored = model.get_parameters()[name], loaded.get_parameters()[name]
        assert restored["state"], f"{name} lost its Adam moments"
        assert saved["param_groups"][0]["lr"] == restored["param_groups"][0]["lr"]

    for m in (model, loaded):
        th.manual_seed(4)
        np.random.seed(4)
        m.learn_offline(5, reset_num_timesteps=False)  # crosses the end of the BC warm-up
    assert_same_state(model.policy.state_dict(), loaded.policy.state_dict())
    assert loaded.log_cql_alpha.item() == model.log_cql_alpha.item()
    assert loaded._n_updates == model._n_updates == 15


def test_same_seed_same_training_with_every_option(dataset):
    options = dict(cql_lagrange=True, cql_max_target_backup=True, backup_entropy=True, bc_steps=3)
    runs = []
    for _ in range(2):
        model = make(dataset, seed=7, **options)
        model.learn_offline(8)
        runs.append(all_parameters(model))
    for key in runs[0]:
        np.testing.assert_array_equal(runs[0][key], runs[1][key], err_msg=key)


@pytest.mark.parametrize("kwargs", [dict(cql_n_actions=0), dict(cql_temp=0.0), dict(cql_alpha=-1.0), dict(bc_steps=-1)])
def test_invalid_settings_are_refused(dataset, kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        make(dataset, **kwargs)


@pytest.mark.parametrize("kwargs", [
    dict(cql_alpha=0.0), dict(cql_alpha_online=0.0), dict(cql_n_actions=1), dict(cql_temp=1e-3), dict(bc_steps=0),
])
def test_settings_at_the_boundaries_are_accepted(dataset, kwargs):
    model = make(dataset, **kwargs)
    assert {key: getattr(model, key) for key in kwargs} == kwargs


def test_defaults_are_corls_and_every_setting_reaches_sb3(dataset, tmp_path):
    """CORL's locomotion defaults and SAC's rest, and non-default values not dropped on the way to SB3 (where they
    equal SB3's defaults, a dropped argument would go unseen)."""
    model = CQL("MlpPolicy", ENV_ID, dataset=dataset)
    assert (model.cql_alpha, model.cql_n_actions, model.cql_temp, model.cql_target_action_gap) == (10.0, 10, 1.0, -1.0)
    assert model.cql_importance_sample and not (model.cql_lagrange or model.cql_max_target_backup)
    assert (model.cql_clip_diff_min, model.cql_clip_diff_max) == (-np.inf, np.inf)
    assert (model.cql_alpha_online, model.backup_entropy, model.bc_steps) == (None, False, 0)
    assert (model.normalize_reward, model.reward_scale, model.reward_bias) == (False, 1.0, 0.0)
    assert (model.policy_lr, model.learning_rate, model.buffer_size) == (3e-5, 3e-4, 2_000_000)
    assert model.learning_starts == 0
    assert (model.batch_size, model.tau, model.gamma, model.gradient_steps, model.n_steps) == (256, 0.005, 0.99, 1, 1)
    assert model.train_freq.frequency == 1 and model.target_update_interval == 1 and model.ent_coef == "auto"
    assert model._stats_window_size == 100 and model.verbose == 0 and model.device == get_device("auto")
    assert model.action_noise is None and model.tensorboard_log is None and not model.optimize_memory_usage
    assert type(model.replay_buffer) is ReplayBuffer and model.replay_buffer.buffer_size == 2_000_000

    class OwnBuffer(ReplayBuffer):
        pass

    noise = NormalActionNoise(np.zeros(1), 0.2 * np.ones(1))
    settings = dict(buffer_size=5_000, learning_starts=7, batch_size=32, tau=0.01, gamma=0.9, gradient_steps=3,
                    action_noise=noise, target_entropy=-3.0, tensorboard_log=str(tmp_path), verbose=1)
    model = CQL("MlpPolicy", ENV_ID, dataset=dataset, device="cpu", train_freq=4, stats_window_size=7, ent_coef=0.2,
                replay_buffer_class=OwnBuffer, replay_buffer_kwargs=dict(handle_timeout_termination=False),
                policy_kwargs=dict(net_arch=[8]), **settings)
    assert {key: getattr(model, key) for key in settings} == settings
    assert model.train_freq.frequency == 4 and model._stats_window_size == 7
    assert type(model.replay_buffer) is OwnBuffer and not model.replay_buffer.handle_timeout_termination
    assert model.replay_buffer.buffer_size == 5_000 and model.replay_buffer.size() == len(dataset)
    assert model.ent_coef_optimizer is None and model.ent_coef_tensor.item() == pytest.approx(0.2)
    assert model.actor.optimizer.param_groups[0]["lr"] == 3e-5  # the policy rate without a temperature optimizer

    n_step = make(dataset, n_steps=3)
    assert n_step.n_steps == 3 and type(n_step.replay_buffer) is NStepReplayBuffer and n_step.replay_buffer.n_steps == 3
    # SB3's compact buffer has no next observations of its own, so no dataset here.
    compact = CQL("MlpPolicy", ENV_ID, optimize_memory_usage=True,
                  replay_buffer_kwargs=dict(handle_timeout_termination=False), **TINY)
    assert compact.optimize_memory_usage and compact.replay_buffer.optimize_memory_usage


def test_every_optimizer_starts_at_its_schedules_initial_rate(dataset):
    """At setup: the actor and the temperature at policy_lr(1), the critics and the Lagrange multiplier at
    learning_rate(1) (the rates after the schedule are in test_cql_losses.py)."""
    model = make(dataset, cql_lagrange=True, learning_rate=lambda p: 1e-3 * (1.0 + p),
                 policy_lr=lambda p: 1e-4 * (1.0 + p))
    assert model.actor.optimizer.param_groups[0]["lr"] == pytest.approx(2e-4)
    assert model.ent_coef_optimizer.param_groups[0]["lr"] == pytest.approx(2e-4)
    assert model.critic.optimizer.param_groups[0]["lr"] == pytest.approx(2e-3)
    assert model.cql_alpha_optimizer.param_groups[0]["lr"] == pytest.approx(2e-3)


def test_auto_target_entropy_needs_no_env(dataset, tmp_path):
    """``"auto"`` is -|A| from the action space, not from an env: a model loaded without one (``custom_objects``
    asking for ``"auto"`` again) gets it too."""
    make(dataset).save(tmp_path / "cql.zip")
    with pytest.warns(UserWarning, match="could not be read"):  # a dataset made in memory has no name to reload
        loaded = CQL.load(tmp_path / "cql.zip", device="cpu", custom_objects={"target_entropy": "auto"})
    assert loaded.env is None and loaded.target_entropy == -1.0


def test_every_tensor_cql_makes_is_on_the_models_device(dataset, monkeypatch, requested_devices):
    """The device reaches SB3, and every tensor CQL makes itself (the Lagrange multiplier, the penalty's weight, the
    uniform actions and their log density) is on it: "meta" (tensors with shapes but no data), a device other than
    the CPU that any machine has."""
    monkeypatch.setattr(th.distributions.Distribution, "_validate_args", False)  # validation reads the values
    model = make(dataset, device="meta", cql_lagrange=True, cql_n_actions=2)
    assert requested_devices == ["meta"]
    assert model.log_cql_alpha.device.type == "meta" and model.cql_weight().device.type == "meta"
    model.log_cql_alpha = None  # the fixed weight
    assert model.cql_weight().device.type == "meta"
    observations = th.zeros((4, 3), device="meta")
    actions, log_density = model.cql_sample_actions(observations, observations)
    assert actions.shape == (4, 6, 1) and log_density.shape == (4, 6)
    assert actions.device.type == "meta" and log_density.device.type == "meta"


class BatchNormExtractor(BaseFeaturesExtractor):
    """Batch normalisation of the observations: running statistics that training must update."""

    def __init__(self, observation_space: gym.spaces.Box) -> None:
        super().__init__(observation_space, features_dim=observation_space.shape[0])
        self.norm = th.nn.BatchNorm1d(observation_space.shape[0])

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return self.norm(observations)


def test_training_updates_batch_norm_statistics_and_copies_them_to_the_targets(dataset):
    """``train`` puts the networks in training mode (predict leaves them in evaluation mode), so that batch norm
    statistics move, and copies the critics' statistics into the targets (SAC's Polyak update with 1)."""
    model = make(dataset, normalize_observations=False,
                 policy_kwargs=dict(net_arch=[8], features_extractor_class=BatchNormExtractor))
    model.predict(dataset.observations[:2])
    assert not model.actor.training and model.batch_norm_stats
    model.train(gradient_steps=1, batch_size=32)
    assert model.actor.features_extractor.norm.running_mean.abs().max() > 1e-3
    assert model.critic.features_extractor.norm.running_mean.abs().max() > 1e-3
    for stats, target in zip(model.batch_norm_stats, model.batch_norm_stats_target, strict=True):
        np.testing.assert_array_equal(target.numpy(), stats.numpy())


def test_train_without_a_batch_size_samples_sacs_256(dataset, monkeypatch):
    model = make(dataset)
    sizes = []
    original = model.replay_buffer.sample
    monkeypatch.setattr(model.replay_buffer, "sample", lambda batch_size, env=None: sizes.append(batch_size) or (
        original(batch_size, env=env)))
    model.train(gradient_steps=1)
    assert sizes == [256]


class FormatWriter(KVWriter):
    """A logger output that keeps what an output of format ``name`` would write (SB3's exclusions per format)."""

    def __init__(self, name: str) -> None:
        self.name, self.rows = name, []

    def write(self, key_values, key_excluded, step: int = 0) -> None:
        self.rows.append(filter_excluded_keys(key_values, key_excluded, self.name))

    def close(self) -> None:
        pass


def test_the_update_count_is_logged_everywhere_but_to_tensorboard(dataset):
    model = make(dataset)
    writers = [FormatWriter("tensorboard"), FormatWriter("csv")]
    model.set_logger(Logger(folder=None, output_formats=writers))
    model.train(gradient_steps=2, batch_size=32)
    model.logger.dump()
    tensorboard, csv = writers[0].rows[0], writers[1].rows[0]
    assert "train/n_updates" not in tensorboard and "train/critic_loss" in tensorboard
    assert csv["train/n_updates"] == 2


def test_normalize_reward_scales_rewards_to_a_1000_wide_return_range(tmp_path):
    """CORL's normalize_reward (its hopper-medium-v2 config): rewards * 1000 / (max - min episode return); off by
    default; not together with a reward_scale; the same scale after save/load (set, not multiplied again)."""
    from test_iql import hand_made_dataset

    data = hand_made_dataset((1.0, 2.0, -1.0))  # returns 10, 20, -10
    assert make(data).reward_scale == 1.0
    model = make(data, normalize_reward=True)
    assert model.reward_scale == pytest.approx(1000.0 / 30.0)
    assert float(model.scale_rewards(th.tensor([3.0]))) == pytest.approx(100.0)
    model.save(tmp_path / "cql.zip")
    with pytest.warns(UserWarning, match="could not be read"):  # a dataset made in memory has no name to reload
        loaded = CQL.load(tmp_path / "cql.zip")
    loaded.load_offline_data(data)
    assert loaded.reward_scale == pytest.approx(1000.0 / 30.0)
    message = ("normalize_reward sets the reward scale from the dataset's returns; got reward_scale=10.0 too: pass one "
               "of them")
    with pytest.raises(ValueError, match=re.escape(message)):
        make(data, normalize_reward=True, reward_scale=10.0)
    with pytest.warns(UserWarning, match="normalize_reward"):
        assert make(hand_made_dataset((1.0, 1.0)), normalize_reward=True).reward_scale == 1.0
    message = ("normalize_reward=True, but every episode of 'hand-made' has the same return: rewards are left "
               "unscaled. Pass normalize_reward=False to silence this.")
    with pytest.warns(UserWarning, match=re.escape(message)) as record:
        model.load_offline_data(hand_made_dataset((1.0, 1.0)))
    assert model.reward_scale == 1.0 and len(record) == 1
    # The warning points past CQL's own code, at its caller (a frame count: under mutmut a trampoline frame sits
    # between, so the test asks only that algos/cql.py is not blamed).
    assert not record[0].filename.endswith(os.path.join("algos", "cql.py"))
