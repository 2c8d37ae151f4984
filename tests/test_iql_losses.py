"""IQL's losses by hand (Kostrikov, Nair & Levine, ICLR 2022): two gradient steps of one ``train`` call on fixed
batches, every loss rebuilt with plain torch from the networks' outputs, against the gradients each optimizer is
handed, the values ``train`` logs, the learning rates it sets and the Polyak-averaged target.

Each step, in the authors' order: V regresses on ``min_i Q'_i(s, a)`` with the expectile loss
``|tau - 1(u < 0)| u^2``; the actor on ``-mean(min(exp(beta (min_i Q'_i(s, a) - V(s))), max) log pi(a|s))`` with the
updated V (``||pi(s) - a||^2`` for the deterministic actor); the critics on ``sum_i MSE(Q_i(s, a), r + gamma (1 - d)
V(s'))`` with the updated V; then ``Q' <- tau Q + (1 - tau) Q'``. The actor's rate follows the cosine decay over the
offline run. The expected gradients are computed when each optimizer steps, from the networks as they are then, so
the second step also checks that no gradient of the first one is carried over.

The SB3 contract shared by the offline algorithms is in test_offline_contract.py; test_iql.py holds the rest of IQL's
behaviour.

Mutation testing (mutmut 3.8.1 on algos/iql.py with test_iql.py, test_offline_contract.py and this file;
docs/development.md): 410 mutants. 101 survived before this file and test_iql.py's settings tests, and 16 survive
after. None of the 16 changes a loss, a target or a saved value:

- The expectile weight's ``diff <= 0`` for ``diff < 0`` (at 0 the weight multiplies ``diff ** 2 = 0``).
- ``sde_support=None`` (falsy, as False).
- The deterministic actor's regression loss called with ``deterministic`` False, None or left out: that actor has no
  ``log_std`` and returns its mean whatever the flag. Also ``sum(dim=+1)`` for ``dim=-1`` on 2-d actions.
- The networks' names in ``_excluded_save_params`` misspelt (6 mutants): SB3 already leaves out every attribute
  whose optimizer is in the saved state dicts (``actor``, ``critic``, ``value_net``).
- ``return_range_scale(dataset)`` without its target: the default is the same 1000.
- The reward-scale warning's ``stacklevel`` 4 for 3: only which outer frame the warning names. Under mutmut a
  trampoline frame changes the count, so the test asks only that algos/iql.py is not the one blamed.
- The exploration noise's ``expl_noise * ones`` written as ``/ ones``.
- ``train``'s default ``batch_size`` 256 changed to 257: SB3 always passes the batch size.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch as th
from offline_data import random_dataset
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from algos.iql import IQL

ENV_ID = "Reacher-v4"  # two action dimensions: log-likelihoods and squared errors are sums over them
OBS_DIM, ACTION_DIM = 11, 2
BATCH = 12
EXPECTILE, BETA, EXP_ADV_MAX = 0.8, 2.0, 0.8
GAMMA, TAU = 0.9, 0.1
PROGRESS_REMAINING = 0.25
"""Three quarters of the offline run done: the actor's rate is lr(0.25) * 0.5 * (1 + cos(0.75 pi))."""


def learning_rate(progress_remaining: float) -> float:
    """A schedule, so that a rate read at the wrong progress shows."""
    return 2e-3 * (0.5 + progress_remaining)


@pytest.fixture(scope="module")
def dataset():
    """Four episodes of 25 steps (ended as terminals), so that the rewards' scale ``1000 / (max - min)`` is not 1."""
    data = random_dataset(ENV_ID, n=100)
    terminals = np.zeros(100, dtype=bool)
    terminals[24::25] = True
    return dataclasses.replace(data, terminals=terminals)


def fixed_batches() -> list[ReplayBufferSamples]:
    """Two batches of twelve transitions, a third of them terminal; the second with per-row discounts (an n-step
    buffer's ``gamma^k``), which replace ``gamma`` in the critics' target."""
    rng = np.random.default_rng(0)
    batches = []
    for k in range(2):
        dones = np.zeros((BATCH, 1))
        dones[::3] = 1.0
        tensors = [th.as_tensor(x, dtype=th.float32) for x in (
            rng.uniform(-1, 1, size=(BATCH, OBS_DIM)), rng.uniform(-0.9, 0.9, size=(BATCH, ACTION_DIM)),
            rng.uniform(-1, 1, size=(BATCH, OBS_DIM)), dones, rng.uniform(-1, 0, size=(BATCH, 1)),
        )]
        discounts = th.as_tensor(rng.uniform(0.3, 0.8, size=(BATCH, 1)), dtype=th.float32) if k else None
        batches.append(ReplayBufferSamples(*tensors, discounts=discounts))
    return batches


def make_model(dataset, **kwargs) -> IQL:
    model = IQL("MlpPolicy", make_vec_env(ENV_ID, n_envs=1, seed=0), dataset=dataset, seed=0, device="cpu",
                batch_size=BATCH, buffer_size=1_000, normalize_observations=False,
                policy_kwargs=dict(net_arch=[16, 16]), expectile=EXPECTILE, beta=BETA, exp_adv_max=EXP_ADV_MAX,
                gamma=GAMMA, tau=TAU, learning_rate=learning_rate, **kwargs)
    model.set_logger(configure(None, []))
    generator = th.Generator().manual_seed(1)
    with th.no_grad():  # target critics apart from the critics and from each other, V apart from zero
        for parameter in model.critic_target.parameters():
            parameter.add_(0.4 * th.randn(parameter.shape, generator=generator))
        for parameter in model.value_net.parameters():
            parameter.add_(0.2 * th.randn(parameter.shape, generator=generator))
        if model.actor.log_std is not None:
            model.actor.log_std.copy_(th.tensor([0.3, -0.4]))
    return model


def hand_value_loss(model: IQL, batch: ReplayBufferSamples) -> dict[str, th.Tensor]:
    """``mean(|tau - 1(u < 0)| u^2)``, ``u = min(Q'_1, Q'_2)(s, a) - V(s)``."""
    with th.no_grad():
        q1, q2 = model.critic_target(batch.observations, batch.actions)
        target_q = th.where(q1 < q2, q1, q2)
    value = model.value_net(batch.observations)
    u = target_q - value
    weight = th.where(u < 0, th.full_like(u, 1.0 - EXPECTILE), th.full_like(u, EXPECTILE))
    return dict(value_loss=(weight * u * u).mean(), v=value.mean(), u=u.detach(), q1=q1, q2=q2)


def hand_actor_loss(model: IQL, batch: ReplayBufferSamples) -> dict[str, th.Tensor]:
    """``mean(min(exp(beta A), max) * r)``, ``A = min(Q'_1, Q'_2)(s, a) - V(s)`` (V updated), ``r`` the negative
    Gaussian log-likelihood summed over dimensions, or the squared error of the deterministic actor."""
    obs, actions = batch.observations, batch.actions
    with th.no_grad():
        q1, q2 = model.critic_target(obs, actions)
        advantage = th.where(q1 < q2, q1, q2) - model.value_net(obs)
        raw = th.exp(BETA * advantage)
        weights = th.where(raw > EXP_ADV_MAX, th.full_like(raw, EXP_ADV_MAX), raw)
    mean = model.actor.mean(obs)
    if model.actor.log_std is None:
        regression = ((mean - actions) ** 2).sum(dim=1, keepdim=True)
    else:
        log_std = model.actor.log_std.clamp(-5.0, 2.0)
        log_density = -0.5 * ((actions - mean) / log_std.exp()) ** 2 - log_std - 0.5 * math.log(2 * math.pi)
        regression = -log_density.sum(dim=1, keepdim=True)
    return dict(actor_loss=(weights * regression).mean(), advantage=advantage.mean(), weights=weights.mean(),
                raw=raw)


def hand_critic_loss(model: IQL, batch: ReplayBufferSamples) -> dict[str, th.Tensor]:
    """``sum_i mean((Q_i(s, a) - y)^2)``, ``y = reward_scale * r + gamma (1 - d) V(s')`` (V updated; the batch's
    discounts instead of gamma when it has them)."""
    discounts = GAMMA if batch.discounts is None else batch.discounts
    with th.no_grad():
        next_value = model.value_net(batch.next_observations)
        y = model.reward_scale * batch.rewards + discounts * (1.0 - batch.dones) * next_value
    q1, q2 = model.critic(batch.observations, batch.actions)
    return dict(critic_loss=((q1 - y) ** 2).mean() + ((q2 - y) ** 2).mean(), q=(q1.mean() + q2.mean()) / 2)


def expect_at_step(monkeypatch, module: th.nn.Module, loss_fn, batches, record: list[dict]) -> None:
    """At each ``module.optimizer.step``: the hand loss of the current batch from the networks as they are, its
    gradients, and the gradients the optimizer was handed."""
    optimizer, parameters = module.optimizer, list(module.parameters())
    step = optimizer.step

    def checking_step(*args, **kwargs):
        expected = loss_fn(batches[len(record)])
        loss = next(iter(expected.values()))
        grads = th.autograd.grad(loss, parameters, allow_unused=True)
        record.append(dict(
            expected={key: value.detach() for key, value in expected.items()},
            want=[th.zeros_like(p) if g is None else g for p, g in zip(parameters, grads)],
            got=[th.zeros_like(p) if p.grad is None else p.grad.detach().clone() for p in parameters],
        ))
        return step(*args, **kwargs)

    monkeypatch.setattr(optimizer, "step", checking_step)


def assert_grads(got: list[th.Tensor], want: list[th.Tensor]) -> None:
    assert any(w.abs().max() > 1e-4 for w in want), "no gradient to compare"
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("deterministic_actor", [False, True], ids=["gaussian", "deterministic"])
def test_two_updates_match_a_hand_computation(dataset, monkeypatch, deterministic_actor):
    model = make_model(dataset, deterministic_actor=deterministic_actor)
    assert model.reward_scale != 1.0
    batches = fixed_batches()
    sampled = list(batches)
    monkeypatch.setattr(model.replay_buffer, "sample", lambda *args, **kwargs: sampled.pop(0))
    records: dict[str, list[dict]] = {"value": [], "actor": [], "critic": []}
    targets_before: list[dict[str, th.Tensor]] = []

    def value_loss(batch):
        targets_before.append({k: v.clone() for k, v in model.critic_target.state_dict().items()})
        return hand_value_loss(model, batch)

    expect_at_step(monkeypatch, model.value_net, value_loss, batches, records["value"])
    expect_at_step(monkeypatch, model.actor, lambda b: hand_actor_loss(model, b), batches, records["actor"])
    expect_at_step(monkeypatch, model.critic, lambda b: hand_critic_loss(model, b), batches, records["critic"])
    critic_after: list[dict[str, th.Tensor]] = []
    critic_step = model.critic.optimizer.step

    def critic_step_then_record(*args, **kwargs):
        result = critic_step(*args, **kwargs)
        critic_after.append({k: v.clone() for k, v in model.critic.state_dict().items()})
        return result

    monkeypatch.setattr(model.critic.optimizer, "step", critic_step_then_record)
    model.in_offline_phase = True
    model._current_progress_remaining = PROGRESS_REMAINING
    model.train(gradient_steps=2, batch_size=BATCH)
    assert not sampled and all(len(record) == 2 for record in records.values())

    for record in records.values():
        for entry in record:
            assert_grads(entry["got"], entry["want"])
    logged = model.logger.name_to_value
    expected = {key: np.mean([entry["expected"][key].item() for entry in records[name]])
                for name, keys in (("value", ("value_loss", "v")), ("actor", ("actor_loss", "advantage", "weights")),
                                   ("critic", ("critic_loss", "q")))
                for key in keys}
    for key, value in expected.items():
        assert logged[f"train/{key}"] == pytest.approx(value, rel=1e-5, abs=1e-7), key
    assert logged["train/n_updates"] == 2 and model.logger.name_to_excluded["train/n_updates"] == ("tensorboard",)

    # The rates: V and Q at lr(progress), the actor's decayed by the cosine over the offline run.
    rate = learning_rate(PROGRESS_REMAINING)
    actor_rate = rate * 0.5 * (1.0 + math.cos(math.pi * (1.0 - PROGRESS_REMAINING)))
    assert model.value_net.optimizer.param_groups[0]["lr"] == pytest.approx(rate)
    assert model.critic.optimizer.param_groups[0]["lr"] == pytest.approx(rate)
    assert model.actor.optimizer.param_groups[0]["lr"] == pytest.approx(actor_rate)
    assert logged["train/actor_learning_rate"] == pytest.approx(actor_rate)
    if deterministic_actor:
        assert "train/std" not in logged
    else:
        std = model.actor.log_std.detach().clamp(-5.0, 2.0).exp().mean().item()
        assert logged["train/std"] == pytest.approx(std, rel=1e-6)

    # Targets: Polyak averaging after each critic step.
    finals = targets_before[1:] + [model.critic_target.state_dict()]
    for before, after, target in zip(targets_before, critic_after, finals, strict=True):
        for key, value in target.items():
            want = TAU * after[key] + (1 - TAU) * before[key]
            np.testing.assert_allclose(value.numpy(), want.numpy(), rtol=1e-6, atol=1e-7, err_msg=key)


def test_hand_losses_tell_the_mutations_apart(dataset):
    """The batch and networks keep each mutation visible: Q'_1 is the smaller target on some rows and Q'_2 on others,
    the residuals of V have both signs, the clip of the weights binds for some rows only, and V(s') matters."""
    model = make_model(dataset)
    batch = fixed_batches()[0]
    value = hand_value_loss(model, batch)
    assert (value["q1"] < value["q2"]).any() and (value["q2"] < value["q1"]).any()
    assert (value["u"] > 0).any() and (value["u"] < 0).any()
    raw = hand_actor_loss(model, batch)["raw"]
    assert (raw > EXP_ADV_MAX).any() and (raw < EXP_ADV_MAX).any()
    with th.no_grad():
        assert model.value_net(batch.next_observations).abs().min() > 1e-2


def test_logged_std_is_clamped_to_the_authors_range(dataset, monkeypatch):
    """The logged std is ``exp(clamp(log_std, -5, 2))``, as the policy uses it (the authors' log_std_min = -5)."""
    model = make_model(dataset)
    with th.no_grad():
        model.actor.log_std.copy_(th.tensor([-7.0, 3.0]))  # both outside the clamp: no gradient, they stay
    batch = fixed_batches()[0]
    monkeypatch.setattr(model.replay_buffer, "sample", lambda *args, **kwargs: batch)
    model.train(gradient_steps=1, batch_size=BATCH)
    assert model.logger.name_to_value["train/std"] == pytest.approx((math.exp(-5.0) + math.exp(2.0)) / 2, rel=1e-6)


def test_updates_run_in_training_mode(dataset, monkeypatch):
    """With dropout in the actor (the authors' Kitchen/Adroit setting), the actor's loss is computed in training mode,
    also after ``predict`` (which switches it to evaluation)."""
    model = make_model(dataset, actor_dropout=0.5)
    batch = fixed_batches()[0]
    monkeypatch.setattr(model.replay_buffer, "sample", lambda *args, **kwargs: batch)
    modes: list[bool] = []
    step = model.actor.optimizer.step
    monkeypatch.setattr(model.actor.optimizer, "step", lambda *a, **k: (modes.append(model.actor.training), step())[1])
    model.predict(batch.observations.numpy(), deterministic=True)
    assert not model.actor.training
    model.train(gradient_steps=1, batch_size=BATCH)
    assert modes == [True]
