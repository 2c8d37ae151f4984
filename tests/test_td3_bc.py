"""TD3+BC's losses by hand (Fujimoto & Gu, NeurIPS 2021): on a fixed batch with fixed target-smoothing noise, the critic
target ``r + gamma (1 - d) min_i Q'_i(s', clip(pi'(s') + clip(eps, -c, c), -1, 1))``, the critic loss
``sum_i MSE(Q_i(s, a), y)`` and the actor loss ``-lambda mean Q_1(s, pi(s)) + mean (pi(s) - a)^2`` with
``lambda = alpha / mean|Q_1(s, pi(s))|`` not differentiated, computed with plain torch from the networks; one ``train``
step must log the same values and hand each optimizer the same gradients. The actor and the targets move every
``policy_delay`` critic updates only.

The SB3 contract shared by the offline algorithms is in test_offline_contract.py.

Mutation testing (mutmut 3.8.1 on algos/td3_bc.py with this file, docs/development.md): 245 mutants, 64 survived
before the defaults test below, 25 after, none of which changes a loss or a target. The survivors are equivalent
or outside the losses: the logged names and the update counter; ``set_training_mode`` (the networks have no
dropout or batch norm, so the batch-norm Polyak copies are empty too); the n-step ``discounts`` branch (SB3's
plain replay buffer has no discounts); the arguments of ``replay_buffer.sample`` (these tests fix the batch);
``_init_setup_model`` passed to TD3 as None, True or left out (the model is set up once either way); and the
exploration noise's ``sigma * ones`` written as ``sigma / ones``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from offline_data import random_dataset
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from algos.td3_bc import TD3BC

ENV_ID = "Reacher-v4"  # two action dimensions: the BC term is a mean over them too (the authors' F.mse_loss)
OBS_DIM, ACTION_DIM = 11, 2
BATCH = 12
ALPHA, GAMMA, TAU = 2.5, 0.99, 0.005
NOISE, NOISE_CLIP = 0.6, 0.3
"""Target smoothing noise with a clip that binds for most draws (the defaults, 0.2 and 0.5, clip 1 draw in 80)."""


@pytest.fixture(scope="module")
def dataset():
    return random_dataset(ENV_ID, n=100)


def fixed_batch() -> ReplayBufferSamples:
    """Twelve transitions, two of them terminal."""
    rng = np.random.default_rng(0)
    dones = np.zeros((BATCH, 1))
    dones[[2, 7]] = 1.0
    tensors = [th.as_tensor(x, dtype=th.float32) for x in (
        rng.uniform(-1, 1, size=(BATCH, OBS_DIM)), rng.uniform(-1, 1, size=(BATCH, ACTION_DIM)),
        rng.uniform(-1, 1, size=(BATCH, OBS_DIM)), dones, rng.uniform(-2, 0, size=(BATCH, 1)),
    )]
    return ReplayBufferSamples(*tensors, discounts=None)


def make_model(dataset) -> TD3BC:
    model = TD3BC("MlpPolicy", make_vec_env(ENV_ID, n_envs=1, seed=0), dataset=dataset, seed=0, device="cpu",
                  batch_size=BATCH, buffer_size=1_000, policy_kwargs=dict(net_arch=[16, 16]), alpha=ALPHA, gamma=GAMMA,
                  tau=TAU, target_policy_noise=NOISE, target_noise_clip=NOISE_CLIP)
    model.set_logger(configure(None, []))
    generator = th.Generator().manual_seed(1)
    with th.no_grad():  # targets other than the networks, so that a mix-up of the two shows
        for module in (model.critic_target, model.actor_target):
            for parameter in module.parameters():
                parameter.add_(0.3 * th.randn(parameter.shape, generator=generator))
    return model


def hand_critic_loss(model: TD3BC, batch: ReplayBufferSamples, seed: int) -> th.Tensor:
    """``sum_i MSE(Q_i(s, a), y)`` with the target smoothing noise that ``th.manual_seed(seed)`` gives ``train``."""
    noise = th.randn(batch.actions.shape, generator=th.Generator().manual_seed(seed)) * NOISE
    with th.no_grad():
        next_actions = (model.actor_target(batch.next_observations) + noise.clamp(-NOISE_CLIP, NOISE_CLIP)).clamp(-1, 1)
        q1, q2 = model.critic_target(batch.next_observations, next_actions)
        y = batch.rewards + GAMMA * (1 - batch.dones) * th.minimum(q1, q2)
    return sum(((q - y) ** 2).mean() for q in model.critic(batch.observations, batch.actions))


def hand_actor_loss(model: TD3BC, batch: ReplayBufferSamples) -> dict[str, th.Tensor]:
    """``-lambda mean Q_1(s, pi(s)) + mean (pi(s) - a)^2``, ``lambda = alpha / mean|Q_1(s, pi(s))|`` (a constant)."""
    pi = model.actor(batch.observations)
    q = model.critic(batch.observations, pi)[0]
    lmbda = ALPHA / q.detach().abs().mean()
    bc = ((pi - batch.actions) ** 2).mean()
    return dict(actor_loss=-lmbda * q.mean() + bc, bc_loss=bc, **{"lambda": lmbda})


def recording(monkeypatch, optimizer, parameters, on_step=None) -> list[list[th.Tensor]]:
    """Record the gradients ``optimizer.step`` finds (and call ``on_step`` first) at each of its calls."""
    grads: list[list[th.Tensor]] = []
    step = optimizer.step

    def recording_step(*args, **kwargs):
        if on_step is not None:
            on_step()
        grads.append([p.grad.detach().clone() for p in parameters])
        return step(*args, **kwargs)

    monkeypatch.setattr(optimizer, "step", recording_step)
    return grads


def state(module: th.nn.Module) -> dict[str, th.Tensor]:
    return {key: value.detach().clone() for key, value in module.state_dict().items()}


def assert_grads(got: list[th.Tensor], want: tuple[th.Tensor, ...]) -> None:
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-4, atol=1e-7)


def test_critic_and_delayed_actor_updates_match_a_hand_computation(dataset, monkeypatch):
    model = make_model(dataset)
    batch = fixed_batch()
    monkeypatch.setattr(model.replay_buffer, "sample", lambda *args, **kwargs: batch)
    critic_params, actor_params = list(model.critic.parameters()), list(model.actor.parameters())
    critic_grads = recording(monkeypatch, model.critic.optimizer, critic_params)
    expected_actor: list[dict[str, th.Tensor]] = []
    expected_actor_grads: list[tuple[th.Tensor, ...]] = []

    def actor_expectation():  # at the actor's step: the critic has taken this update's step
        losses = hand_actor_loss(model, batch)
        expected_actor.append({key: value.detach() for key, value in losses.items()})
        expected_actor_grads.append(th.autograd.grad(losses["actor_loss"], actor_params))

    actor_grads = recording(monkeypatch, model.actor.optimizer, actor_params, actor_expectation)

    for update, seed in ((1, 11), (2, 12)):
        before = {name: state(getattr(model, name)) for name in ("actor", "critic", "actor_target", "critic_target")}
        critic_loss = hand_critic_loss(model, batch, seed)
        draws = th.randn(BATCH, ACTION_DIM, generator=th.Generator().manual_seed(seed)) * NOISE
        assert (draws.abs() > NOISE_CLIP).sum() >= 6  # the clip of the noise binds for many draws
        expected_critic_grads = th.autograd.grad(critic_loss, critic_params)
        th.manual_seed(seed)
        model.train(1, BATCH)
        logged = model.logger.name_to_value
        assert logged["train/critic_loss"] == pytest.approx(critic_loss.item(), rel=1e-5)
        assert len(critic_grads) == update
        assert_grads(critic_grads[-1], expected_critic_grads)
        if update == 1:  # policy_delay = 2: no actor step, no target update
            assert not actor_grads and "train/actor_loss" not in logged
            for name in ("actor", "actor_target", "critic_target"):
                for key, value in state(getattr(model, name)).items():
                    assert th.equal(value, before[name][key]), (name, key)
        else:
            assert len(actor_grads) == 1
            expected = expected_actor[0]
            for key, value in expected.items():
                assert logged[f"train/{key}"] == pytest.approx(value.item(), rel=1e-5), key
            assert_grads(actor_grads[0], expected_actor_grads[0])
            # Targets: Polyak averaging of the networks after their steps.
            for name in ("actor", "critic"):
                online, target = state(getattr(model, name)), state(getattr(model, f"{name}_target"))
                for key, value in target.items():
                    want = TAU * online[key] + (1 - TAU) * before[f"{name}_target"][key]
                    np.testing.assert_allclose(value.numpy(), want.numpy(), rtol=1e-6, atol=1e-7, err_msg=key)


def test_hand_losses_tell_the_mutations_apart(dataset):
    """The batch and networks keep each mutation visible: the two target critics differ, the noise's clip changes the
    next actions, max|Q| is not mean|Q|, and the BC term is no small share of the actor loss."""
    model = make_model(dataset)
    batch = fixed_batch()
    noise = th.randn(BATCH, ACTION_DIM, generator=th.Generator().manual_seed(11)) * NOISE
    with th.no_grad():
        next_actions = (model.actor_target(batch.next_observations) + noise.clamp(-NOISE_CLIP, NOISE_CLIP)).clamp(-1, 1)
        q1, q2 = model.critic_target(batch.next_observations, next_actions)
        unclipped = (model.actor_target(batch.next_observations) + noise).clamp(-1, 1)
    assert (q1 - q2).abs().min() > 1e-3
    assert (next_actions - unclipped).abs().max() > 0.1
    losses = hand_actor_loss(model, batch)
    q = model.critic(batch.observations, model.actor(batch.observations))[0].detach()
    assert q.abs().max() > 1.2 * q.abs().mean()  # max|Q| is no stand-in for mean|Q|
    assert losses["bc_loss"] > 0.1 * abs(losses["actor_loss"])


def test_defaults_are_the_papers_and_every_setting_reaches_the_algorithm(dataset):
    """The paper's and the authors' defaults (alpha 2.5, TD3's noise 0.2 clipped at 0.5, delay 2, tau 0.005, batch
    256, lr 3e-4, 256-256 networks, exploration noise 0.1 online, standardised states), and non-default values are
    not dropped on the way to SB3's TD3 (where they equal TD3's defaults, a dropped argument would go unseen)."""
    model = TD3BC("MlpPolicy", ENV_ID, dataset=dataset, seed=0)
    assert (model.alpha, model.target_policy_noise, model.target_noise_clip, model.policy_delay) == (2.5, 0.2, 0.5, 2)
    assert (model.tau, model.gamma, model.batch_size, model.learning_starts) == (0.005, 0.99, 256, 0)
    assert model.learning_rate == 3e-4 and model.buffer_size == 2_000_000 and model.expl_noise == 0.1
    assert model.policy_kwargs["net_arch"] == [256, 256] and model.normalize_observations
    np.testing.assert_array_equal(model.action_noise._sigma, 0.1 * np.ones(2))
    np.testing.assert_array_equal(model.action_noise._mu, np.zeros(2))

    settings = dict(alpha=0.5, tau=0.01, gamma=0.9, batch_size=32, learning_rate=1e-3, learning_starts=7,
                    buffer_size=5_000, policy_delay=3, target_policy_noise=0.3, target_noise_clip=0.4, expl_noise=0.3)
    model = TD3BC("MlpPolicy", ENV_ID, dataset=dataset, seed=0, normalize_observations=False,
                  policy_kwargs=dict(net_arch=[8]), **settings)
    assert {key: getattr(model, key) for key in settings} == settings
    assert model.policy_kwargs["net_arch"] == [8] and not model.normalize_observations
    np.testing.assert_array_equal(model.action_noise._sigma, 0.3 * np.ones(2))
    assert model.replay_buffer.size() == len(dataset.observations)  # the dataset reached the buffer
    assert TD3BC("MlpPolicy", ENV_ID, dataset=dataset, expl_noise=0.0).action_noise is None
    own_noise = NormalActionNoise(np.zeros(2), 0.05 * np.ones(2))
    assert TD3BC("MlpPolicy", ENV_ID, dataset=dataset, action_noise=own_noise).action_noise is own_noise
    with pytest.raises(ValueError, match="alpha must be positive"):
        TD3BC("MlpPolicy", ENV_ID, dataset=dataset, alpha=0.0)
    assert TD3BC("MlpPolicy", ENV_ID, dataset=dataset, alpha=1e-3).alpha == 1e-3
