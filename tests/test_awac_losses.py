"""AWAC's losses by hand (Nair, Gupta, Dalal & Levine, 2020; CORL's form): two gradient steps of one ``train`` call on
fixed batches with fixed Gaussian noise, every loss rebuilt with plain torch from the networks' outputs, against the
gradients each optimizer is handed, the values ``train`` logs, the learning rates and the Polyak-averaged target.

Each step: the critics regress on ``r + gamma (1 - d) min_i Q'_i(s', a')``, ``a' = clip(mu(s') + sigma eps, -1, 1)``
a sample of the current actor, with ``sum_i MSE``; then, with the updated critics, the actor minimises
``-mean(w log pi(a|s))`` with ``w = min(exp(A / lambda), exp_adv_max)`` (or ``batch * softmax(A / lambda)``) and
``A = min_i Q_i(s, a) - min_i Q_i(s, a_pi)``, ``a_pi`` one clipped sample of pi(.|s); then ``Q' <- tau Q + (1 - tau)
Q'``. The Gaussian's samples are replaced by ``mean + std * eps`` with ``eps`` from a queue the test fills, so the
hand computation knows them. The expected gradients are computed when each optimizer steps, from the networks as they
are then, so the second step also checks that no gradient of the first one is carried over.

The rest of AWAC's behaviour is in test_awac.py, the SB3 contract in test_offline_contract.py.

Mutation testing (mutmut 3.8.1 on algos/awac.py with test_awac.py and this file, docs/development.md): 311
mutants. 26 survived the first version of this file; 18 survive after the n-step case, the logger's tensorboard
exclusion and test_offline_contract.py's device and saved-zip test. None of the 18 changes a loss, a target or a
saved value:

- ``support_multi_env`` False, None or left out (3 mutants): ``check_offline_env`` refuses several envs before SB3
  looks at the flag.
- ``sde_support=None`` (falsy, as False).
- The batch-norm statistics, found by the name ``running_`` and Polyak-copied at rate 1 (6 mutants): AWAC's critics
  have no batch norm, so both lists are empty.
- ``set_training_mode(False)``: no dropout or batch norm.
- ``replay_buffer.sample`` without ``env`` (2 mutants): offline algorithms refuse VecNormalize, so that env is None.
- ``train``'s default ``batch_size``: SB3 always passes it.
- ``actor`` and ``critic`` misspelt in ``_excluded_save_params`` (4 mutants): SB3 already leaves out every attribute
  whose optimizer is in the saved state dicts.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch as th
from offline_data import random_dataset
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from algos.awac import AWAC

ENV_ID = "Reacher-v4"  # two action dimensions: log-likelihoods are sums over them
OBS_DIM, ACTION_DIM = 11, 2
BATCH = 12
AWAC_LAMBDA, EXP_ADV_MAX = 0.05, 2.0
GAMMA, TAU = 0.9, 0.1
PROGRESS_REMAINING = 0.25


def learning_rate(progress_remaining: float) -> float:
    """A schedule, so that a rate read at the wrong progress shows."""
    return 2e-3 * (0.5 + progress_remaining)


@pytest.fixture(scope="module")
def dataset():
    return random_dataset(ENV_ID, n=100)


def fixed_batches(n_step: bool = False) -> list[ReplayBufferSamples]:
    """Two batches of twelve transitions, a third of them terminal; with ``n_step``, per-sample discounts
    gamma^n (n = 1..3) as SB3's n-step buffer gives, which replace gamma in the target."""
    rng = np.random.default_rng(0)
    batches = []
    for _ in range(2):
        dones = np.zeros((BATCH, 1))
        dones[::3] = 1.0
        tensors = [th.as_tensor(x, dtype=th.float32) for x in (
            rng.uniform(-1, 1, size=(BATCH, OBS_DIM)), rng.uniform(-0.9, 0.9, size=(BATCH, ACTION_DIM)),
            rng.uniform(-1, 1, size=(BATCH, OBS_DIM)), dones, rng.uniform(-1, 0, size=(BATCH, 1)),
        )]
        discounts = th.as_tensor(GAMMA ** rng.integers(1, 4, size=(BATCH, 1)), dtype=th.float32) if n_step else None
        batches.append(ReplayBufferSamples(*tensors, discounts=discounts))
    return batches


def noises() -> list[th.Tensor]:
    """Per step: the noise of a' at s', then of a_pi at s; large enough that some samples leave [-1, 1]."""
    generator = th.Generator().manual_seed(2)
    return [th.randn(BATCH, ACTION_DIM, generator=generator) for _ in range(4)]


def make_model(dataset, **kwargs) -> AWAC:
    model = AWAC("MlpPolicy", make_vec_env(ENV_ID, n_envs=1, seed=0), dataset=dataset, seed=0, device="cpu",
                 batch_size=BATCH, buffer_size=1_000, normalize_observations=False,
                 policy_kwargs=dict(net_arch=[16, 16]), awac_lambda=AWAC_LAMBDA, exp_adv_max=EXP_ADV_MAX, gamma=GAMMA,
                 tau=TAU, learning_rate=learning_rate, **kwargs)
    model.set_logger(configure(None, []))
    generator = th.Generator().manual_seed(1)
    with th.no_grad():  # target critics apart from the critics and from each other; a state-dependent actor
        for parameter in model.critic_target.parameters():
            parameter.add_(0.4 * th.randn(parameter.shape, generator=generator))
        for parameter in model.critic.parameters():
            parameter.add_(0.2 * th.randn(parameter.shape, generator=generator))
        model.actor.log_std.copy_(th.tensor([0.3, -0.4]))
    return model


def gaussian(model: AWAC, obs: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
    """The actor's mean and std (the log-std clamped to CORL's [-20, 2])."""
    mean = model.actor.distribution(obs).loc
    return mean, model.actor.log_std.clamp(-20.0, 2.0).exp().expand_as(mean)


def min_q(critic, obs: th.Tensor, actions: th.Tensor) -> th.Tensor:
    q1, q2 = critic(obs, actions)
    return th.where(q1 < q2, q1, q2)


def hand_critic_loss(model: AWAC, batch: ReplayBufferSamples, eps: th.Tensor) -> dict[str, th.Tensor]:
    with th.no_grad():
        mean, std = gaussian(model, batch.next_observations)
        next_actions = (mean + std * eps).clamp(-1.0, 1.0)
        discounts = batch.discounts if batch.discounts is not None else GAMMA
        y = batch.rewards + discounts * (1.0 - batch.dones) * min_q(model.critic_target, batch.next_observations,
                                                                     next_actions)
    q1, q2 = model.critic(batch.observations, batch.actions)
    return dict(critic_loss=((q1 - y) ** 2).mean() + ((q2 - y) ** 2).mean(), q_value=q1.mean())


def hand_actor_loss(model: AWAC, batch: ReplayBufferSamples, eps: th.Tensor) -> dict[str, th.Tensor]:
    obs = batch.observations
    with th.no_grad():
        mean, std = gaussian(model, obs)
        policy_actions = (mean + std * eps).clamp(-1.0, 1.0)
        advantage = min_q(model.critic, obs, batch.actions) - min_q(model.critic, obs, policy_actions)
        scores = advantage / AWAC_LAMBDA
        if model.normalize_weights:
            weights = BATCH * scores.exp() / scores.exp().sum()
        else:
            weights = th.where(scores.exp() > EXP_ADV_MAX, th.full_like(scores, EXP_ADV_MAX), scores.exp())
    mean, std = gaussian(model, obs)
    log_density = -0.5 * ((batch.actions - mean) / std) ** 2 - std.log() - 0.5 * math.log(2 * math.pi)
    log_prob = log_density.sum(dim=1, keepdim=True)
    return dict(actor_loss=-(weights * log_prob).mean(), advantage=advantage.mean(), weight_mean=weights.mean(),
                weight_max=weights.max(), weight_clip_fraction=(weights == EXP_ADV_MAX).float().mean(),
                scores=scores, policy_actions=policy_actions)


def expect_at_step(monkeypatch, module: th.nn.Module, loss_fn, record: list[dict]) -> None:
    """At each ``module.optimizer.step``: the hand loss from the networks as they are, its gradients, and the
    gradients the optimizer was handed."""
    optimizer, parameters = module.optimizer, list(module.parameters())
    step = optimizer.step

    def checking_step(*args, **kwargs):
        expected = loss_fn(len(record))
        grads = th.autograd.grad(next(iter(expected.values())), parameters)
        record.append(dict(expected={key: value.detach() for key, value in expected.items()}, want=list(grads),
                           got=[th.zeros_like(p) if p.grad is None else p.grad.detach().clone() for p in parameters]))
        return step(*args, **kwargs)

    monkeypatch.setattr(optimizer, "step", checking_step)


def replay_noise(monkeypatch, queue: list[th.Tensor]) -> None:
    """``Normal.sample`` returns ``loc + scale * eps`` with the next ``eps`` of ``queue``."""

    def sample(distribution: th.distributions.Normal, sample_shape: Any = ()) -> th.Tensor:
        eps = queue.pop(0)
        assert eps.shape == distribution.loc.shape
        with th.no_grad():
            return distribution.loc + eps * distribution.scale

    monkeypatch.setattr(th.distributions.Normal, "sample", sample)


@pytest.mark.parametrize("normalize_weights, n_step", [(False, False), (True, False), (False, True)],
                         ids=["clipped", "softmax", "n_step"])
def test_two_updates_match_a_hand_computation(dataset, monkeypatch, normalize_weights, n_step):
    model = make_model(dataset, normalize_weights=normalize_weights)
    model.reward_scale = 3.0  # the critic's rewards go through scale_rewards
    batches, queue = fixed_batches(n_step), noises()
    eps = list(queue)
    sampled = list(batches)
    monkeypatch.setattr(model.replay_buffer, "sample", lambda *args, **kwargs: sampled.pop(0))
    replay_noise(monkeypatch, queue)
    scaled = [b._replace(rewards=3.0 * b.rewards) for b in batches]
    critic_record: list[dict] = []
    actor_record: list[dict] = []
    targets_before: list[dict[str, th.Tensor]] = []

    def critic_loss(k: int) -> dict[str, th.Tensor]:
        targets_before.append({key: v.clone() for key, v in model.critic_target.state_dict().items()})
        return hand_critic_loss(model, scaled[k], eps[2 * k])

    expect_at_step(monkeypatch, model.critic, critic_loss, critic_record)
    critics_updated: list[dict[str, th.Tensor]] = []

    def actor_loss(k: int) -> dict[str, th.Tensor]:
        critics_updated.append({key: v.clone() for key, v in model.critic.state_dict().items()})
        return hand_actor_loss(model, batches[k], eps[2 * k + 1])

    expect_at_step(monkeypatch, model.actor, actor_loss, actor_record)
    model._current_progress_remaining = PROGRESS_REMAINING
    model.train(gradient_steps=2, batch_size=BATCH)
    assert not sampled and not queue and len(critic_record) == len(actor_record) == 2

    for entry in critic_record + actor_record:
        assert any(w.abs().max() > 1e-4 for w in entry["want"])
        for got, want in zip(entry["got"], entry["want"], strict=True):
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-6)
    logged = model.logger.name_to_value
    keys = ["critic_loss", "q_value"], ["actor_loss", "advantage", "weight_mean"]
    for record, names in zip((critic_record, actor_record), keys):
        for key in names:
            want = np.mean([entry["expected"][key].item() for entry in record])
            assert logged[f"train/{key}"] == pytest.approx(want, rel=1e-5, abs=1e-7), key
    weight_max = max(entry["expected"]["weight_max"].item() for entry in actor_record)
    assert logged["train/weight_max"] == pytest.approx(weight_max, rel=1e-6)
    if normalize_weights:
        assert "train/weight_clip_fraction" not in logged
    else:
        fraction = np.mean([entry["expected"]["weight_clip_fraction"].item() for entry in actor_record])
        assert 0 < fraction < 1 and logged["train/weight_clip_fraction"] == pytest.approx(fraction)
    std = model.actor.log_std.detach().clamp(-20.0, 2.0).exp().mean().item()
    assert logged["train/std"] == pytest.approx(std, rel=1e-6) and logged["train/n_updates"] == 2
    assert model.logger.name_to_excluded["train/n_updates"] == ("tensorboard",)  # a counter, not a curve
    rate = learning_rate(PROGRESS_REMAINING)
    assert model.actor.optimizer.param_groups[0]["lr"] == pytest.approx(rate)
    assert model.critic.optimizer.param_groups[0]["lr"] == pytest.approx(rate)

    # Targets: Polyak averaging of the updated critics after each actor step.
    finals = targets_before[1:] + [{k: v.clone() for k, v in model.critic_target.state_dict().items()}]
    for before, online, target in zip(targets_before, critics_updated, finals, strict=True):
        for key, value in target.items():
            want = TAU * online[key] + (1 - TAU) * before[key]
            np.testing.assert_allclose(value.numpy(), want.numpy(), rtol=1e-6, atol=1e-7, err_msg=key)


def test_hand_losses_tell_the_mutations_apart(dataset):
    """The networks and noise keep each mutation visible: Q_1 and Q_2 each the smaller on some rows, the target critics
    not the critics, sampled actions clipped for some rows, the weights' clip binding for some rows only."""
    model = make_model(dataset)
    batch, eps = fixed_batches()[0], noises()
    with th.no_grad():
        q1, q2 = model.critic(batch.observations, batch.actions)
        t1, t2 = model.critic_target(batch.observations, batch.actions)
        mean, std = gaussian(model, batch.next_observations)
    assert (q1 < q2).any() and (q2 < q1).any() and (t1 < t2).any() and (t2 < t1).any()
    assert (th.minimum(q1, q2) - th.minimum(t1, t2)).abs().min() > 1e-2
    raw = mean + std * eps[0]
    assert (raw.abs() > 1).any() and (raw.abs() < 1).any()
    actor = hand_actor_loss(model, batch, eps[1])
    weights = actor["scores"].exp()
    assert (weights > EXP_ADV_MAX).any() and (weights < EXP_ADV_MAX).any()
