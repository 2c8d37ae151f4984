"""FamO2O's losses by hand, on both bases: on a fixed batch with the random draws of one ``train`` step replayed from
its seed (the balance model's ``z``, the offline uniform betas, the actions' noise), the balance coefficients, the
universal policy's per-sample weights, the balance model's loss and (IQL) its temperature loss are computed with plain
torch from the networks' layers; the step must log the same values and hand each optimizer the same gradients.

``train`` draws, in this order (``th.manual_seed`` before it): on IQL the balance model's Gaussian noise (batch, 1),
offline the uniform betas (batch, 1), the noise of the balance model's action (batch, |A|); on CQL the balance model's
noise, offline the uniform betas, the noise of beta(s'), then the noise of the policy's action and of the balance
model's action (batch, |A| each). A change of that order fails these tests as a mismatch, not silently.

Mutation testing (mutmut 3.8.1, docs/development.md) of famo2o.py, famo2o_cql.py and famo2o_family.py with
test_famo2o.py (its two command-line runs deselected), test_famo2o_settings.py and this file: 687 mutants; of the 348
run in the first pass, 77 survived before these tests, 9 after, all equivalent:

- The balance model's ``backward(inputs=None)``, on IQL and on CQL (2 mutants): its loss's gradients also land on the
  universal policy and the critics (IQL: the target critics), whose optimizers zero them before their own backward
  (no optimizer reads the target critics' gradients).
- FamO2OCQL's ``deterministic=None`` for beta(s') and ``_init_setup_model=None`` (2): falsy, as False.
- ``offline_evaluation`` calling ``evaluate`` without ``n_episodes``: its default is 10, ``OFFLINE_EVAL_EPISODES``.
- ``beta_over_episode``'s ``sync_envs_normalization`` skipped or handed None (4): it copies only VecNormalize
  statistics, and the offline algorithms refuse a VecNormalize env (``check_offline_env``, at construction and in
  ``set_env``).

The other 339 mutants, run by hand against these tests before the second pass: 12 survive, equivalent too:

- ``matplotlib.use("agg")`` and ``("AGG")`` (2): backend names are case-insensitive; ``ax.plot(betas)``: x defaults
  to 0, 1, ...; ``plt.close(None)``: closes the current figure, the one just drawn.
- FamO2O handing IQL ``beta=1.0`` or no beta (IQL's 3.0) (2): IQL's single temperature is deleted before the networks
  are built; no ``deterministic_actor``: IQL's default is False; ``_init_setup_model=None``: falsy.
- ``beta_min <= beta_max`` in ``_init_family``: the policy's own check refuses an empty range, with the same message,
  when the networks are built; ``beta_encoding_dim <= 1``: 1 is odd, refused by the parity test.
- ``balance_model`` misspelt in ``_excluded_save_params`` (2): SB3 already leaves out every attribute whose optimizer
  is in the saved state dicts.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch as th
from offline_data import random_dataset
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure
from stable_baselines3.common.type_aliases import ReplayBufferSamples

import algos.famo2o
from algos.famo2o import FamO2O
from algos.famo2o_cql import FamO2OCQL
from algos.famo2o_policies import BalanceSample
from algos.iql import advantage_weights

ENV_ID = "Reacher-v4"  # two action dimensions: log-probabilities are sums over them
OBS_DIM, ACTION_DIM = 11, 2
BATCH = 16
PHASES = [pytest.param(True, id="offline"), pytest.param(False, id="online")]


@pytest.fixture(scope="module")
def dataset():
    return random_dataset(ENV_ID, n=250)


def fixed_batch() -> ReplayBufferSamples:
    rng = np.random.default_rng(0)
    dones = np.zeros((BATCH, 1))
    dones[3] = 1.0
    tensors = [th.as_tensor(x, dtype=th.float32) for x in (
        rng.uniform(-1, 1, size=(BATCH, OBS_DIM)), rng.uniform(-0.9, 0.9, size=(BATCH, ACTION_DIM)),
        rng.uniform(-1, 1, size=(BATCH, OBS_DIM)), dones, rng.uniform(-2, 0, size=(BATCH, 1)),
    )]
    return ReplayBufferSamples(*tensors, discounts=None)


def make_model(algo_class, dataset, monkeypatch, **kwargs):
    model = algo_class("MlpPolicy", make_vec_env(ENV_ID, n_envs=1, seed=0), dataset=dataset, seed=0, device="cpu",
                       batch_size=BATCH, buffer_size=1_000, policy_kwargs=dict(net_arch=[16, 16]), **kwargs)
    model.set_logger(configure(None, []))
    batch = fixed_batch()
    monkeypatch.setattr(model.replay_buffer, "sample", lambda *args, **kw: batch)
    generator = th.Generator().manual_seed(1)
    with th.no_grad():
        balance = model.balance_model
        balance.mu.weight.copy_(0.5 * th.randn(balance.mu.weight.shape, generator=generator))  # betas spread out
        balance.mu.bias.fill_(0.2)
    return model, batch, generator


def recording(monkeypatch, optimizer, parameters, on_step=None) -> list[list[th.Tensor]]:
    """Record the gradients ``optimizer.step`` finds (calling ``on_step`` first) at each of its calls."""
    grads: list[list[th.Tensor]] = []
    step = optimizer.step

    def recording_step(*args, **kwargs):
        if on_step is not None:
            on_step()
        grads.append([p.grad.detach().clone() if p.grad is not None else th.zeros_like(p) for p in parameters])
        return step(*args, **kwargs)

    monkeypatch.setattr(optimizer, "step", recording_step)
    return grads


def assert_grads(got: list[th.Tensor], want: tuple[th.Tensor | None, ...]) -> None:
    for g, w in zip(got, want, strict=True):
        w = th.zeros_like(g) if w is None else w
        np.testing.assert_allclose(g.numpy(), w.float().numpy(), rtol=2e-4, atol=1e-6)


def gaussian_log_density(x: th.Tensor, mean: th.Tensor, log_std: th.Tensor) -> th.Tensor:
    return -0.5 * ((x - mean) / log_std.exp()) ** 2 - log_std - 0.5 * math.log(2 * math.pi)


def hand_balance_sample(model, observations: th.Tensor, eps: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
    """beta = beta_min + (tanh(z) + 1) / 2 (beta_max - beta_min), z = mu(s) + sigma(s) eps, and log p(tanh(z) | s)
    (the Gaussian's log density minus log(1 - tanh(z)^2)), from the balance model's layers."""
    balance = model.balance_model
    latent = balance.latent(observations)
    mean = balance.mu(latent)
    if isinstance(balance.log_std, th.nn.Linear):  # CQL: a second output, clipped to [-20, 2]
        log_std = balance.log_std(latent).clamp(-20.0, 2.0)
    else:  # IQL: a state-independent parameter, clipped to [-10, 2]
        log_std = balance.log_std.clamp(-10.0, 2.0).expand_as(mean)
    z = mean + log_std.exp() * eps
    u = th.tanh(z)
    beta = model.beta_min + (u + 1) / 2 * (model.beta_max - model.beta_min)
    log_p = gaussian_log_density(z, mean, log_std) - th.log1p(-u.double() ** 2)
    return beta, log_p


def target_min_q(model, observations, actions) -> th.Tensor:
    q1, q2 = model.critic_target(observations, actions)
    return th.minimum(q1, q2)


# FamO2O on IQL.


@pytest.mark.parametrize("offline", PHASES)
def test_iql_balance_temperature_and_weighted_policy_losses_match_a_hand_computation(offline, dataset, monkeypatch):
    model, batch, generator = make_model(FamO2O, dataset, monkeypatch, balance_temperature_init=0.7)
    s, a = batch.observations, batch.actions
    with th.no_grad():
        # Target Q of a spread of several units: advantages of both signs, some weights clipped at 100.
        for parameter in model.critic_target.parameters():
            parameter.add_(0.5 * th.randn(parameter.shape, generator=generator))
        shift = (target_min_q(model, s, a) - model.value_net(s)).median()
        for q_net in model.critic_target.q_networks:
            q_net[-1].bias.sub_(shift)  # advantages around 0
    model.in_offline_phase = offline
    seed = 5
    draws = th.Generator().manual_seed(seed)
    eps = th.randn(BATCH, 1, generator=draws)
    uniform = th.rand(BATCH, 1, generator=draws) if offline else None
    xi = th.randn(BATCH, ACTION_DIM, generator=draws)

    # Balance model and its temperature, from the parameters before the step.
    balance_params = list(model.balance_model.parameters())
    beta, log_p = hand_balance_sample(model, s, eps)
    assert beta.std() > 0.1 * (model.beta_max - model.beta_min)  # betas spread over the range
    balance_actions = model.actor.mean(s, beta) + model.actor.log_std.clamp(-5.0, 2.0).exp() * xi  # through beta
    q_balance = target_min_q(model, s, balance_actions)
    alpha = math.exp(model.log_balance_temperature.item())
    balance_loss = (alpha * log_p - q_balance).mean()
    expected_balance_grads = th.autograd.grad(balance_loss, balance_params)
    entropy = -log_p.detach().mean()
    temperature_loss = alpha * (entropy - (-0.5))  # d/d log alpha of alpha (H - H_target)
    policy_betas = (model.beta_min + uniform * (model.beta_max - model.beta_min)) if offline else beta.detach()

    # Universal policy, at its step: the advantage uses V after this update's value step.
    actor_params = list(model.actor.parameters())
    expected_actor = {}

    def actor_expectation():
        with th.no_grad():
            advantage = target_min_q(model, s, a) - model.value_net(s)
            weights = th.exp(policy_betas * advantage).clamp(max=100.0)
        log_std = model.actor.log_std.clamp(-5.0, 2.0)  # IQL's state-independent log-std, clipped to [-5, 2]
        log_pi = gaussian_log_density(a, model.actor.mean(s, policy_betas), log_std).sum(dim=1, keepdim=True)
        actor_loss = -(weights * log_pi).mean()
        expected_actor.update(advantage=advantage, weights=weights, actor_loss=actor_loss.detach(),
                              grads=th.autograd.grad(actor_loss, actor_params))

    weights_seen = []

    def recording_weights(*args):
        weights_seen.append(advantage_weights(*args))
        return weights_seen[-1]

    monkeypatch.setattr(algos.famo2o, "advantage_weights", recording_weights)
    balance_grads = recording(monkeypatch, model.balance_model.optimizer, balance_params)
    temperature_grads = recording(monkeypatch, model.balance_temperature_optimizer, [model.log_balance_temperature])
    actor_grads = recording(monkeypatch, model.actor.optimizer, actor_params, actor_expectation)
    th.manual_seed(seed)
    model.train(1, BATCH)

    logged = model.logger.name_to_value
    assert logged["train/balance_loss"] == pytest.approx(balance_loss.item(), rel=1e-5, abs=1e-6)
    assert logged["train/balance_entropy"] == pytest.approx(entropy.item(), rel=1e-5, abs=1e-6)
    assert logged["train/balance_temperature_loss"] == pytest.approx(temperature_loss.item(), rel=1e-5, abs=1e-6)
    assert logged["train/actor_beta_mean"] == pytest.approx(policy_betas.mean().item(), rel=1e-5)
    assert logged["train/q_balance"] == pytest.approx(q_balance.mean().item(), rel=1e-5)
    assert logged["train/balance_temperature"] == pytest.approx(0.7, rel=1e-6)  # alpha before its step
    assert_grads(balance_grads[0], expected_balance_grads)
    np.testing.assert_allclose(temperature_grads[0][0].item(), temperature_loss.item(), rtol=1e-5)
    # The per-sample weights min(exp(beta_i A_i), 100): some clipped, some below 1.
    weights = expected_actor["weights"]
    assert (weights == 100.0).any() and (weights < 1.0).any()
    assert len(weights_seen) == 1
    np.testing.assert_allclose(weights_seen[0].numpy(), weights.numpy(), rtol=1e-5)
    assert logged["train/weights"] == pytest.approx(weights.mean().item(), rel=1e-5)
    assert logged["train/actor_loss"] == pytest.approx(expected_actor["actor_loss"].item(), rel=1e-5)
    assert_grads(actor_grads[0], expected_actor["grads"])


@pytest.mark.parametrize("rows", [1, 2, 3])
def test_beta_statistics_are_those_of_the_balance_models_choice_its_sample_and_the_policys_betas(rows):
    mode = th.tensor([[1.5], [4.0], [2.0]])[:rows]
    sample = th.tensor([[1.0], [3.0], [5.0]])[:rows]
    policy_betas = th.tensor([[2.5], [1.0], [4.5]])[:rows]
    logs = FamO2O._beta_logs(BalanceSample(beta=sample, log_prob=th.zeros(rows, 1), mode=mode), policy_betas)
    std = {1: 0.0, 2: math.sqrt(2 * 1.25**2), 3: math.sqrt((0.5**2 + 1.5**2 + 1.0**2) / 2)}[rows]  # unbiased
    expected = {"beta_mean": mode.mean().item(), "beta_std": std, "beta_min": mode.min().item(),
                "beta_max": mode.max().item(), "beta_sampled_mean": sample.mean().item(),
                "actor_beta_mean": policy_betas.mean().item()}
    assert {key: value.item() for key, value in logs.items()} == pytest.approx(expected, rel=1e-6)


def test_iql_advantage_weights_are_exp_of_each_rows_beta_times_a_clipped_at_exp_adv_max(dataset, monkeypatch):
    model, _, _ = make_model(FamO2O, dataset, monkeypatch, exp_adv_max=5.0)
    advantage = th.tensor([[-1.0], [0.5], [2.0], [0.0]])
    betas = th.tensor([[2.0], [1.0], [3.0], [4.0]])
    expected = th.tensor([[math.exp(-2.0)], [math.exp(0.5)], [5.0], [1.0]])  # exp(6) clipped to 5
    np.testing.assert_allclose(model._advantage_weights(advantage, betas).numpy(), expected.numpy(), rtol=1e-6)


def test_iql_balance_step_runs_the_universal_policy_without_dropout_and_its_own_step_with_it(dataset, monkeypatch):
    """With dropout in the universal policy: the balance model's action ``a~`` is the policy's without dropout (the
    authors' ``training=False``), while the policy's own regression step keeps its dropout (the same masks as a
    training-mode pass drawn right after this step's noise)."""
    model, batch, _ = make_model(FamO2O, dataset, monkeypatch, actor_dropout=0.5)
    s, a = batch.observations, batch.actions
    model.in_offline_phase = True
    seed = 3
    th.manual_seed(seed)
    eps, uniform, xi = th.randn(BATCH, 1), th.rand(BATCH, 1), th.randn(BATCH, ACTION_DIM)
    policy_betas = model.beta_min + uniform * (model.beta_max - model.beta_min)
    log_std = model.actor.log_std.clamp(-5.0, 2.0)
    with th.no_grad():
        model.actor.set_training_mode(False)
        beta, _ = hand_balance_sample(model, s, eps)
        q_balance = target_min_q(model, s, model.actor.mean(s, beta) + log_std.exp() * xi)
        without_dropout = -gaussian_log_density(a, model.actor.mean(s, policy_betas), log_std).sum(1, keepdim=True)
        model.actor.set_training_mode(True)
        th.manual_seed(seed)  # the global stream right after the step's three draws: the dropout masks
        th.randn(BATCH, 1), th.rand(BATCH, 1), th.randn(BATCH, ACTION_DIM)
        with_dropout = -gaussian_log_density(a, model.actor.mean(s, policy_betas), log_std).sum(1, keepdim=True)
    assert (with_dropout - without_dropout).abs().max() > 0.1  # dropout changes the loss clearly
    regression_losses = []
    regression_loss = model._actor_regression_loss

    def recording(*args):
        loss = regression_loss(*args)
        regression_losses.append(loss.detach().clone())
        return loss

    monkeypatch.setattr(model, "_actor_regression_loss", recording)
    th.manual_seed(seed)
    model.train(1, BATCH)
    assert model.logger.name_to_value["train/q_balance"] == pytest.approx(q_balance.mean().item(), rel=1e-5)
    (got,) = regression_losses
    np.testing.assert_allclose(got.numpy(), with_dropout.numpy(), rtol=1e-5, atol=1e-6)


# FamO2O on CQL.


def test_cql_hooks_give_the_universal_policy_each_rows_beta_and_refuse_none(dataset, monkeypatch):
    model, batch, _ = make_model(FamO2OCQL, dataset, monkeypatch)
    s = batch.observations
    betas = th.linspace(model.beta_min, model.beta_max, BATCH).reshape(-1, 1)
    with th.no_grad():
        angles = betas / 10_000.0 ** (2 * th.arange(3) / 6)  # (batch, 3)
        encoding = th.stack([th.sin(angles), th.cos(angles)], dim=2).reshape(BATCH, 6)  # sin, cos per frequency
        latent = model.actor.latent_pi(th.cat([s, encoding], dim=1))  # the state, then beta's sin/cos features
        expected_mean, expected_log_std = model.actor.mu(latent), model.actor.log_std(latent).clamp(-20.0, 2.0)
        mean, log_std, _ = model.policy_distribution_params(s, betas)
    np.testing.assert_allclose(mean.numpy(), expected_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(log_std.numpy(), expected_log_std.numpy(), rtol=1e-5, atol=1e-6)
    assert model._actor_q_weight(betas) is betas
    message = r"^FamO2O's universal policy needs a beta for every state$"
    with pytest.raises(AssertionError, match=message):
        model.policy_distribution_params(s)
    with pytest.raises(AssertionError, match=message):
        model._actor_q_weight(None)


@pytest.mark.parametrize("offline", PHASES)
def test_cql_balance_and_beta_weighted_policy_losses_match_a_hand_computation(offline, dataset, monkeypatch):
    model, batch, generator = make_model(FamO2OCQL, dataset, monkeypatch)
    s = batch.observations
    with th.no_grad():
        # Q of a few units that moves with the action, different in the two critics.
        for parameter in model.critic.parameters():
            parameter.add_(0.5 * th.randn(parameter.shape, generator=generator))
        model.log_ent_coef.fill_(math.log(0.3))
    model.in_offline_phase = offline
    seed = 7
    draws = th.Generator().manual_seed(seed)
    eps = th.randn(BATCH, 1, generator=draws)
    uniform = th.rand(BATCH, 1, generator=draws) if offline else None
    th.randn(BATCH, 1, generator=draws)  # beta(s') for the next states (the critic's target, not tested here)
    xi_policy = th.randn(BATCH, ACTION_DIM, generator=draws)
    xi_balance = th.randn(BATCH, ACTION_DIM, generator=draws)

    def min_q(actions):
        q1, q2 = model.critic(s, actions)
        return th.minimum(q1, q2)

    def squashed_sample(betas, xi):
        mean, log_std, _ = model.actor.get_action_dist_params(s, betas)
        z = mean + log_std.exp() * xi
        actions = th.tanh(z)
        log_pi = (gaussian_log_density(z, mean, log_std) - th.log(1 - actions**2 + 1e-6)).sum(dim=1, keepdim=True)
        return actions, log_pi

    beta, _ = hand_balance_sample(model, s, eps)
    assert beta.std() > 0.1 * (model.beta_max - model.beta_min)
    policy_betas = (model.beta_min + uniform * (model.beta_max - model.beta_min)) if offline else beta.detach()
    # Universal policy: alpha log pi_u(a~ | s, beta) - beta min_i Q_i(s, a~), beta per sample.
    actor_params = list(model.actor.parameters())
    actions, log_pi = squashed_sample(policy_betas, xi_policy)
    actor_loss = (0.3 * log_pi - policy_betas * min_q(actions)).mean()
    expected_actor_grads = th.autograd.grad(actor_loss, actor_params)
    # Balance model: -min_i Q_i(s, a~), a~ ~ pi_u(. | s, beta(s)) reparameterised through beta.
    balance_params = list(model.balance_model.parameters())
    balance_actions, _ = squashed_sample(beta, xi_balance)
    balance_loss = -min_q(balance_actions).mean()
    expected_balance_grads = th.autograd.grad(balance_loss, balance_params)
    q1, q2 = model.critic(s, actions)
    assert (q1 - q2).abs().mean() > 0.1 and min_q(actions).std() > 0.1

    balance_grads = recording(monkeypatch, model.balance_model.optimizer, balance_params)
    actor_grads = recording(monkeypatch, model.actor.optimizer, actor_params)
    th.manual_seed(seed)
    model.train(1, BATCH)

    logged = model.logger.name_to_value
    assert logged["train/actor_beta_mean"] == pytest.approx(policy_betas.mean().item(), rel=1e-5)
    assert logged["train/actor_loss"] == pytest.approx(actor_loss.item(), rel=1e-5, abs=1e-6)
    assert logged["train/balance_loss"] == pytest.approx(balance_loss.item(), rel=1e-5, abs=1e-6)
    assert_grads(actor_grads[0], expected_actor_grads)
    assert_grads(balance_grads[0], expected_balance_grads)
    assert any(g.abs().max() > 0 for g in balance_grads[0])
