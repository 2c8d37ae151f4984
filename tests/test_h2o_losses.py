"""H2O's critic loss composed by hand: on a fixed batch of real and sim transitions with a fixed dynamics ratio,
the real Bellman error, the sim Bellman error weighted by the clipped ratio and the dynamics-aware penalty (its sign,
its omega weights, the real Q it subtracts) are computed with plain torch from the networks, and one ``train`` step
must log the same losses and hand the critics' optimizer the same gradients.

The discriminators' output is fixed by patching :meth:`H2O.dynamics_log_ratio` (``log P_real/P_sim`` is read off the
first coordinate of ``s'``), and the actor's std is pinned to ~2e-9, so that ``a' ~ pi(.|s')`` is ``tanh(mu(s'))``.
The actor's and the temperature's losses and every other value ``train`` logs are checked the same way, with the
Gaussian's draws replaced by fixed ones.

Mutation testing (mutmut 3.8.1): 835 mutants; of the 307 run in the first pass, 129 survived before these tests, 12
after, all equivalent:

- ``load_replay_buffer``'s ``truncate_last_traj`` flipped, None or left out (3 mutants): SB3 reads it for a
  ``HerReplayBuffer`` only, and H2O refuses every buffer but a ``RealSimReplayBuffer``.
- ``dynamics_ratios`` (3): ``replace=None`` (falsy, drawn without replacement as with False), ``reshape(n, -2)``
  (NumPy infers any negative size like -1), ``astype(None)`` (NumPy's default dtype, float64).
- ``write_run_artifacts`` (4): the backend ``"agg"`` / ``"AGG"`` (matplotlib ignores the case of backend names),
  ``np.linspace`` without its 50 (its default number of points), ``plt.close(None)`` (closes the current figure,
  the one ``plt.subplots`` just made).
- ``train``'s default ``batch_size`` (SB3 always passes it).
- ``--sim`` without ``default=None`` (argparse's default is None).

Second pass (363 of the other 528 run: everything but the constructor's 165): 39 survived before the tests they led
to (here and in ``test_h2o.py``, ``test_h2o_settings.py``), 21 after, all equivalent:

- ``sim_state_weights``: the std's ``dtype=None`` (2; it is already float32), its ``device=None`` (2; the CPU, where
  these tests run: on a GPU the perturbation would fail loudly), ``s' - eps`` for ``s' + eps`` (eps is a centred
  Gaussian).
- ``discriminator_step``: ``x - noise * N(0, 1)`` (a centred Gaussian again).
- ``_setup_model``: ``discriminators.to(None)`` (a no-op; they are made on the CPU).
- ``_on_offline_data``: ``super()._on_offline_data(None)`` (CQL's hook reads the dataset only with
  ``normalize_reward``, which H2O leaves False).
- ``train``: ``log_prob.reshape(-1)`` and ``q_pi`` without ``keepdim`` (3: the (batch, 1) - (batch,) broadcast makes
  a (batch, batch) matrix whose mean, and its gradient, equal those of the column), ``ent_coef_loss = ""`` and
  ``and`` -> ``or`` twice between the temperature's loss, optimizer and log (3: all are set or none is), the naive
  mix's unit weights and ``u`` on ``device=None`` (4, the CPU) or in float32 (2: ones, and log omega is cast to the
  critics' dtype in the penalty), ``sim_fraction`` without its ``sim is None`` case (without sim data the real batch
  is the whole batch: ``1 - n_real / batch_size`` is 0 too).

The constructor's 165: 2 survived the H2O tests; the device handed to SB3 is now checked
(``test_h2o_settings.py``), and the other is equivalent: ``_init_setup_model=None`` for CQL's constructor (falsy, as
False).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from offline_data import random_dataset
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from algos.h2o import H2O
from sim2real import SimVariant

ENV_ID = "Pendulum-v1"
GAMMA = 0.99
CQL_ALPHA = 2.0  # the default 0.01 would also do; a larger weight makes the penalty a large share of the loss
LOG_RATIO = [-3.0, -0.5, 0.7, -14.0, -1.5]
"""``log P_real/P_sim`` of the five sim transitions: the ratio is clipped to [1e-5, 1] above 0 and below log(1e-5),
``u = -log ratio`` to [1e-45, 10] below 0 (the third: omega ~ 0) and above 10 (the fourth)."""


@pytest.fixture(scope="module")
def dataset():
    return random_dataset(ENV_ID, n=200)


def fixed_batch() -> tuple[ReplayBufferSamples, ReplayBufferSamples]:
    """Four real and five sim transitions (one terminal in each); the sim ``s'_0`` carries :data:`LOG_RATIO`."""
    rng = np.random.default_rng(0)

    def samples(n: int, next_first: list[float] | None) -> ReplayBufferSamples:
        observations = rng.uniform(-1, 1, size=(n, 3))
        next_observations = rng.uniform(-1, 1, size=(n, 3))
        if next_first is not None:
            next_observations[:, 0] = next_first
        dones = np.zeros((n, 1))
        dones[1] = 1.0
        tensors = [th.as_tensor(x, dtype=th.float32) for x in (
            observations, rng.uniform(-1, 1, size=(n, 1)), next_observations, dones, rng.uniform(-3, 1, size=(n, 1)),
        )]
        return ReplayBufferSamples(*tensors, discounts=None)

    return samples(4, None), samples(5, LOG_RATIO)


def make_model(dataset, **kwargs) -> H2O:
    env = make_vec_env(ENV_ID, n_envs=1, seed=0, wrapper_class=SimVariant, wrapper_kwargs=dict(spec="gravity=2.0"))
    model = H2O("MlpPolicy", env, dataset=dataset, seed=0, device="cpu", batch_size=9, buffer_size=1_000,
                policy_kwargs=dict(net_arch=[16, 16]), discriminator_net_arch=[8], discriminator_batch_size=8,
                cql_alpha=CQL_ALPHA, next_state_noise=0.0, gamma=GAMMA, **kwargs)
    model.set_logger(configure(None, []))
    model.learn(8)  # sim transitions in the buffer, for the discriminators' batches
    generator = th.Generator().manual_seed(1)
    with th.no_grad():
        # Q values of a few units that differ across pairs and between the critics and their targets (the
        # authors' output layers start at gain 1e-2: Q ~ 0, the penalty ~ 0 and its sign unseen).
        for parameter in [*model.critic.parameters(), *model.critic_target.parameters()]:
            parameter.copy_(0.5 * th.randn(parameter.shape, generator=generator))
        model.actor.log_std.weight.zero_()
        model.actor.log_std.bias.fill_(-20.0)  # std e^-20: a' = tanh(mu(s')) up to ~1e-9
    return model


def hand_critic_loss(model: H2O, real: ReplayBufferSamples, sim: ReplayBufferSamples,
                     naive: bool = False) -> dict[str, th.Tensor]:
    """``sum_i [MSE_real(Q_i, y) + mean_sim(w (Q_i - y)^2) + alpha * gap_i]`` from the networks, plain torch (the
    naive mix: ``w = 1`` and a uniform omega)."""
    log_ratio = th.tensor(LOG_RATIO, dtype=th.float64)
    w = log_ratio.exp().clamp(1e-5, 1.0)  # the Bellman weights of the sim transitions
    u = (-log_ratio).clamp(1e-45, 10.0)
    assert w[2] == 1.0 and w[3] == 1e-5 and u[2] == 1e-45 and u[3] == 10.0  # every clip binds once
    if naive:
        w, u = th.ones(5, dtype=th.float64), th.ones(5, dtype=th.float64)
    omega = u / u.sum()

    def target(batch: ReplayBufferSamples) -> th.Tensor:
        with th.no_grad():
            mean, _, _ = model.actor.get_action_dist_params(batch.next_observations)
            next_q = th.cat(model.critic_target(batch.next_observations, th.tanh(mean)), dim=1)
            return (batch.rewards + GAMMA * (1 - batch.dones) * next_q.min(dim=1, keepdim=True).values).double()

    real_y, sim_y = target(real), target(sim)
    real_q = [q.double() for q in model.critic(real.observations, real.actions)]
    sim_q = [q.double() for q in model.critic(sim.observations, sim.actions)]
    real_td = sum(((q - real_y) ** 2).mean() for q in real_q)
    sim_td = sum((w.view(-1, 1) * (q - sim_y) ** 2).mean() for q in sim_q)
    gaps = [
        th.logsumexp(q_sim.view(-1) + omega.log(), dim=0) - q_real.mean()  # log sum_j omega_j e^Q_j - mean_real Q
        for q_sim, q_real in zip(sim_q, real_q)
    ]
    gap = th.stack(gaps).clamp(-1000.0, 1000.0)
    return dict(real_td_loss=real_td, sim_td_loss=sim_td, h2o_gap=gap.mean(),
                critic_loss=real_td + sim_td + CQL_ALPHA * gap.sum(), bellman_weight=w.mean(), u=u.mean(),
                omega_std=omega.std())


@pytest.mark.parametrize("naive", [False, True])
def test_critic_loss_is_the_real_error_plus_the_ratio_weighted_sim_error_plus_the_penalty(dataset, monkeypatch, naive):
    """H2O, and the naive mix (``dynamics_aware=False``: every sim error of weight 1, omega uniform)."""
    model = make_model(dataset)
    model.dynamics_aware = not naive
    real, sim = fixed_batch()
    monkeypatch.setattr(model, "_sample", lambda batch_size: (real, sim))
    monkeypatch.setattr(model, "dynamics_log_ratio", lambda s, a, s2: s2[:, 0].clone())
    expected = hand_critic_loss(model, real, sim, naive)
    params = list(model.critic.parameters())
    expected_grads = th.autograd.grad(expected["critic_loss"], params)

    grads = []
    step = model.critic.optimizer.step

    def recording_step(*args, **kwargs):
        grads.append([p.grad.detach().clone() for p in params])
        return step(*args, **kwargs)

    monkeypatch.setattr(model.critic.optimizer, "step", recording_step)
    model.train(1, 9)
    logged = model.logger.name_to_value
    for key, value in expected.items():
        assert logged[f"train/{key}"] == pytest.approx(value.item(), rel=2e-5, abs=1e-6), key
    assert logged["train/sim_fraction"] == pytest.approx(5 / 9)
    assert model.logger.name_to_excluded["train/n_updates"] == ("tensorboard",)  # SB3's convention
    assert len(grads) == 1
    for got, want in zip(grads[0], expected_grads, strict=True):
        np.testing.assert_allclose(got.numpy(), want.float().numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("target_gap", [0.1, 50.0])
def test_the_lagrange_multiplier_follows_the_penalty_gap(dataset, monkeypatch, target_gap):
    """With ``cql_lagrange``: one step logs ``-alpha' alpha (mean gap - target gap)`` of the hand gap and moves
    log alpha' up when the gap exceeds the target, down below it."""
    model = make_model(dataset, cql_lagrange=True, cql_target_action_gap=target_gap)
    real, sim = fixed_batch()
    monkeypatch.setattr(model, "_sample", lambda batch_size: (real, sim))
    monkeypatch.setattr(model, "dynamics_log_ratio", lambda s, a, s2: s2[:, 0].clone())
    gap = hand_critic_loss(model, real, sim)["h2o_gap"].item()
    before = model.log_cql_alpha.item()
    model.train(1, 9)
    logged = model.logger.name_to_value
    assert logged["train/cql_alpha_loss"] == pytest.approx(-np.exp(before) * CQL_ALPHA * (gap - target_gap), rel=1e-4)
    assert np.sign(model.log_cql_alpha.item() - before) == np.sign(gap - target_gap) != 0


def test_each_term_of_the_hand_loss_is_needed(dataset):
    """The batch and networks keep the issue's mutations visible: without the ratio weights the sim error, and with the
    penalty's sign flipped (a change of 2 alpha sum_i gap_i) the loss, move by more than 5% of the loss."""
    model = make_model(dataset)
    real, sim = fixed_batch()
    expected = hand_critic_loss(model, real, sim)
    sim_q = [q.double() for q in model.critic(sim.observations, sim.actions)]
    with th.no_grad():
        mean, _, _ = model.actor.get_action_dist_params(sim.next_observations)
        next_q = th.cat(model.critic_target(sim.next_observations, th.tanh(mean)), dim=1).min(dim=1).values
    y = (sim.rewards.view(-1) + GAMMA * (1 - sim.dones.view(-1)) * next_q).double()
    unweighted = sum(((q.view(-1) - y) ** 2).mean() for q in sim_q)
    assert abs(unweighted - expected["sim_td_loss"]) > 0.05 * abs(expected["critic_loss"])
    assert abs(2 * CQL_ALPHA * 2 * expected["h2o_gap"]) > 0.05 * abs(expected["critic_loss"])


def fixed_noise(shape: th.Size) -> th.Tensor:
    """The standard-normal draws of the actor's Gaussian, a fixed function of their shape."""
    return th.linspace(-1.5, 1.2, shape.numel()).view(shape)


def hand_actor_and_logs(model: H2O, real: ReplayBufferSamples, sim: ReplayBufferSamples) -> dict[str, th.Tensor]:
    """SAC's actor and temperature losses over the real and sim states, and the values ``train`` logs besides the
    critic loss, from the networks with plain torch; ``a = tanh(mu + sigma eps)``, ``eps`` of :func:`fixed_noise`."""
    observations = th.cat([real.observations, sim.observations])
    next_observations = th.cat([real.next_observations, sim.next_observations])

    def sample(s: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        mean, log_std, _ = model.actor.get_action_dist_params(s)
        eps = fixed_noise(mean.shape)
        action = th.tanh(mean + log_std.exp() * eps)
        gaussian = -0.5 * eps**2 - log_std - 0.5 * np.log(2 * np.pi)
        return action, gaussian.sum(dim=1) - th.log(1 - action**2 + 1e-6).sum(dim=1)

    action, log_prob = sample(observations)
    ent_coef = model.log_ent_coef.detach().exp()
    q_pi = th.min(*model.critic(observations, action)).view(-1)
    with th.no_grad():
        next_action, _ = sample(next_observations)
        next_q = th.min(*model.critic_target(next_observations, next_action))
        rewards = th.cat([real.rewards, sim.rewards])
        dones = th.cat([real.dones, sim.dones])
        y = rewards + th.cat([real.discounts, sim.discounts]) * (1 - dones) * next_q  # the buffer's discounts
        q1_real = model.critic(real.observations, real.actions)[0]
        q1_sim = model.critic(sim.observations, sim.actions)[0]
    u = (-th.tensor(LOG_RATIO, dtype=th.float64)).clamp(1e-45, 10.0)
    return dict(
        actor_loss=(ent_coef * log_prob - q_pi).mean(), log_pi=log_prob.mean(), ent_coef=ent_coef,
        ent_coef_loss=-(model.log_ent_coef * (log_prob.detach() - 1.0)).mean(),  # target entropy -|A| = -1
        q_real=q1_real.mean(), q_sim=q1_sim.mean(), q_target=y.mean(), u=u.mean(), omega_std=(u / u.sum()).std(),
        cql_weight=th.tensor(CQL_ALPHA),
    )


def test_actor_temperature_and_every_logged_value_match_a_hand_computation(dataset, monkeypatch):
    model = make_model(dataset)
    with th.no_grad():
        model.actor.log_std.bias.fill_(-1.0)  # a real spread: eps shows in the actions and in log pi
        model.log_ent_coef.fill_(np.log(0.5))
    real, sim = fixed_batch()
    # Per-transition discounts, as an n-step buffer gives them, replace gamma in the target.
    real, sim = real._replace(discounts=th.full((4, 1), 0.5)), sim._replace(discounts=th.full((5, 1), 0.8))
    monkeypatch.setattr(model, "_sample", lambda batch_size: (real, sim))
    monkeypatch.setattr(model, "dynamics_log_ratio", lambda s, a, s2: s2[:, 0].clone())
    monkeypatch.setattr(model, "train_discriminators", lambda: (th.tensor(0.625), th.tensor(1.25)))
    monkeypatch.setattr(th.distributions.Normal, "rsample",
                        lambda self, sample_shape=(): self.loc + self.scale * fixed_noise(self.loc.shape))
    expected = hand_actor_and_logs(model, real, sim)
    actor_params = list(model.actor.parameters())
    expected_actor_grads = th.autograd.grad(expected["actor_loss"], actor_params, retain_graph=True)
    (expected_ent_grad,) = th.autograd.grad(expected["ent_coef_loss"], [model.log_ent_coef])

    recorded = {}

    def recording(optimizer, name, params):
        step = optimizer.step

        def recording_step(*args, **kwargs):
            recorded[name] = [p.grad.detach().clone() for p in params]
            return step(*args, **kwargs)

        monkeypatch.setattr(optimizer, "step", recording_step)

    recording(model.actor.optimizer, "actor", actor_params)
    recording(model.ent_coef_optimizer, "ent_coef", [model.log_ent_coef])
    targets_before = [p.detach().clone() for p in model.critic_target.parameters()]
    model.train(1, 9)
    # Polyak averaging after the critics' step: Q' <- tau Q + (1 - tau) Q', every gradient step (interval 1).
    for target, critic, before in zip(model.critic_target.parameters(), model.critic.parameters(), targets_before,
                                      strict=True):
        np.testing.assert_allclose(target.detach().numpy(), (0.005 * critic + 0.995 * before).detach().numpy(),
                                   rtol=1e-6, atol=1e-7)
    logged = model.logger.name_to_value
    for key, value in expected.items():
        assert logged[f"train/{key}"] == pytest.approx(value.item(), rel=1e-5, abs=1e-6), key
    assert (logged["train/discriminator_sa_loss"], logged["train/discriminator_sas_loss"]) == (0.625, 1.25)
    for got, want in zip(recorded["actor"], expected_actor_grads, strict=True):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(recorded["ent_coef"][0].numpy(), expected_ent_grad.numpy(), rtol=1e-5)
