"""CQL's losses by hand (Kumar, Zhou, Tucker & Levine, NeurIPS 2020; CORL's form of CQL(H) on SAC): two gradient steps
of one ``train`` call on fixed batches, with the policy's Gaussian noise from a queue the test fills and the uniform
actions replayed from the global generator; every loss rebuilt with plain torch from the networks' outputs, against
the gradients each optimizer is handed (entropy temperature, Lagrange multiplier, actor, critics), the values ``train``
logs, the learning rates it sets and the Polyak-averaged targets.

All losses of a step come from the parameters before it (CORL's order), so the hand update of each step is computed
when ``train`` samples its batch. Per step, with ``a~ = tanh(mu(s) + sigma(s) eps)`` and ``log pi`` the squashed
Gaussian's log-density (SB3's correction ``log(1 - a^2 + 1e-6)``):

- temperature: ``-mean(log alpha (log pi(a~|s) + target_entropy))``, ``target_entropy = -|A|``;
- actor: ``mean(alpha log pi(a~|s) - min_i Q_i(s, a~))``, or ``mean(alpha log pi(a~|s) - log pi(a|s))`` during the
  first ``bc_steps`` updates;
- critics: ``sum_i MSE(Q_i(s, a), y) + w sum_i gap_i``, ``y = scale r + bias + gamma (1 - d) min_i Q'_i(s', a')``
  (max over ``n`` samples of ``a'`` with the max backup, minus ``alpha log pi(a'|s')`` with the entropy backup),
  ``gap_i = mean_s clip(T logsumexp_j((Q_i(s, a_j) - log mu(a_j)) / T) - Q_i(s, a))`` over n uniform actions (log
  density ``-|A| log 2``), n of pi(.|s') and n of pi(.|s); without importance sampling the logsumexp is of the raw
  Q values and the dataset action's;
- Lagrange: ``w = cql_alpha * clip(exp(log alpha'), 0, 1e6)`` and ``-alpha' cql_alpha (mean_i gap_i - threshold)``;
- targets: ``Q' <- tau Q + (1 - tau) Q'`` every ``target_update_interval`` updates.

The rest of CQL's behaviour is in test_cql.py, the SB3 contract in test_offline_contract.py.

Mutation testing (mutmut 3.8.1 on algos/cql.py with test_cql.py, test_offline_contract.py and this file, then
test_famo2o.py's test of FamO2OCQL's BC warm-up and max backup, which kills 7 mutants that drop FamO2O's betas or
step its balance model during the warm-up; docs/development.md): 757 mutants, 121 survived before these tests, 19
after, all equivalent:

- ``_init_setup_model=None`` for False in SAC's ``__init__`` (falsy, as False).
- The reward-scale warning's ``stacklevel`` 4 for 3: only which outer frame the warning names. Under mutmut a
  trampoline frame changes the count, so test_cql.py asks only that algos/cql.py is not the one blamed.
- The policy's distribution keyword arguments dropped or repeated with another count or dim (8 mutants, in
  ``log_likelihood`` and ``policy_samples``): they hold only gSDE's latent, and they are always empty (CQL takes
  no ``use_sde``, SAC sets the policy's to False, FamO2O's universal actor returns none).
- ``n_samples >= 1`` for ``> 1`` in ``policy_samples``: ``repeat_interleave(1)`` is the identity.
- ``uniform_(-1.0)`` for ``uniform_(-1.0, 1.0)``: the upper bound's default is 1.
- The Lagrange multiplier's ``clamp(None, 1e6)`` for ``clamp(0, 1e6)`` (2 mutants): an ``exp`` is never negative.
- ``replay_buffer.sample`` without ``env`` (2 mutants): CQL and FamO2OCQL refuse VecNormalize, so that env is None.
- ``reshape(-1)`` for ``reshape(-1, 1)`` of the actor's ``log pi`` and of the BC log-likelihood (2 mutants): each
  only enters means, alone, times the (1,)-shaped temperature, or in the actor's loss as a (batch, batch)
  broadcast difference, whose mean is the difference of the means (equal up to rounding).
- ``or`` for ``and`` in the temperature's two tests (2 mutants): SAC sets ``log_ent_coef`` and its optimizer
  together (a learned temperature) or neither, and the temperature's loss exists exactly when both do.
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

from algos.cql import CQL

ENV_ID = "Reacher-v4"  # two action dimensions: log-densities are sums over them
OBS_DIM, ACTION_DIM = 11, 2
BATCH, N_ACTIONS, TEMP = 8, 3, 0.7
GAMMA, TAU = 0.9, 0.1
REWARD_SCALE, REWARD_BIAS = 3.0, -0.5
LOG_ENT_COEF = -0.7
PROGRESS_REMAINING = 0.25
LOG_2PI = math.log(2.0 * math.pi)


def learning_rate(progress_remaining: float) -> float:
    """The critics' schedule, so that a rate read at the wrong progress shows."""
    return 2e-3 * (0.5 + progress_remaining)


def policy_lr(progress_remaining: float) -> float:
    return 1e-3 * (0.2 + progress_remaining)


VARIANTS = {
    "plain": dict(cql_alpha=2.0),
    # Lagrange multiplier below 1 (its clip at 0 must not bind), importance sampling off, per-state clips of the gap
    # that bind, the max backup with the entropy, one BC step, targets every other update.
    "options": dict(cql_alpha=2.0, cql_lagrange=True, cql_target_action_gap=0.3, cql_importance_sample=False,
                    cql_clip_diff_min=1.55, cql_clip_diff_max=1.75, cql_max_target_backup=True, backup_entropy=True,
                    bc_steps=1, target_update_interval=2, log_cql_alpha=-0.5),
    # Online, with the online weight; the Lagrange multiplier at its clip of 1e6 (the weight 1e-6 * 1e6).
    "online": dict(cql_alpha=2.0, cql_alpha_online=1e-6, cql_lagrange=True, cql_target_action_gap=-0.2,
                   log_cql_alpha=20.0, online=True),
    # A fixed entropy temperature (also in the backup), n-step discounts of the batch (gamma^k per row), and offline
    # an online weight that must not be used yet (Lagrange loss included).
    "fixed_temperature": dict(cql_alpha=2.0, cql_alpha_online=0.5, cql_lagrange=True, cql_target_action_gap=0.3,
                              log_cql_alpha=-0.5, ent_coef=0.3, backup_entropy=True, discounts=True),
}


@pytest.fixture(scope="module")
def dataset():
    return random_dataset(ENV_ID, n=100)


def fixed_batches(discounts: bool = False) -> list[ReplayBufferSamples]:
    """Two batches of eight transitions, a quarter of them terminal; with ``discounts`` n-step discounts gamma^k,
    k = 1, 2, 3, per row (as SB3's NStepReplayBuffer returns them)."""
    rng = np.random.default_rng(0)
    batches = []
    for _ in range(2):
        dones = np.zeros((BATCH, 1))
        dones[::4] = 1.0
        tensors = [th.as_tensor(x, dtype=th.float32) for x in (
            rng.uniform(-1, 1, size=(BATCH, OBS_DIM)), rng.uniform(-0.9, 0.9, size=(BATCH, ACTION_DIM)),
            rng.uniform(-1, 1, size=(BATCH, OBS_DIM)), dones, rng.uniform(-1, 0, size=(BATCH, 1)),
        )]
        row_discounts = (GAMMA ** (1 + th.arange(BATCH) % 3)).unsqueeze(1).float() if discounts else None
        batches.append(ReplayBufferSamples(*tensors, discounts=row_discounts))
    return batches


def make_model(dataset, variant: dict[str, Any]) -> CQL:
    kwargs = {k: v for k, v in variant.items() if k not in ("log_cql_alpha", "online", "discounts")}
    model = CQL("MlpPolicy", make_vec_env(ENV_ID, n_envs=1, seed=0), dataset=dataset, seed=0, device="cpu",
                batch_size=BATCH, buffer_size=1_000, normalize_observations=False,
                policy_kwargs=dict(net_arch=[16, 16]), cql_n_actions=N_ACTIONS, cql_temp=TEMP, gamma=GAMMA, tau=TAU,
                reward_scale=REWARD_SCALE, reward_bias=REWARD_BIAS, learning_rate=learning_rate, policy_lr=policy_lr,
                **kwargs)
    model.set_logger(configure(None, []))
    generator = th.Generator().manual_seed(1)
    with th.no_grad():  # critics and targets apart (CORL's output layers are small); a state-dependent actor
        for parameter in model.critic_target.parameters():
            parameter.add_(0.4 * th.randn(parameter.shape, generator=generator))
        for parameter in model.critic.parameters():
            parameter.add_(0.2 * th.randn(parameter.shape, generator=generator))
        for module in (model.actor.mu, model.actor.log_std):
            module.weight.add_(0.5 * th.randn(module.weight.shape, generator=generator))
        if model.log_ent_coef is not None:
            model.log_ent_coef.fill_(LOG_ENT_COEF)
        if "log_cql_alpha" in variant:
            model.log_cql_alpha.fill_(variant["log_cql_alpha"])
    if variant.get("online"):
        model.offline_updates, model.num_timesteps = 3, 5
    return model


def squashed_samples(model: CQL, obs: th.Tensor, eps: th.Tensor, n: int = 1) -> tuple[th.Tensor, th.Tensor]:
    """``n`` actions per state (a state's samples together) of the squashed Gaussian and their log-densities."""
    mean, log_std, _ = model.actor.get_action_dist_params(obs)
    mean, log_std = mean.repeat_interleave(n, dim=0), log_std.repeat_interleave(n, dim=0)
    u = mean + eps * log_std.exp()
    a = th.tanh(u)
    log_density = -0.5 * ((u - mean) / log_std.exp()) ** 2 - log_std - 0.5 * LOG_2PI - th.log(1 - a**2 + 1e-6)
    return a, log_density.sum(dim=1)


def squashed_log_likelihood(model: CQL, obs: th.Tensor, actions: th.Tensor) -> th.Tensor:
    mean, log_std, _ = model.actor.get_action_dist_params(obs)
    u = th.atanh(actions)
    log_density = -0.5 * ((u - mean) / log_std.exp()) ** 2 - log_std - 0.5 * LOG_2PI - th.log(1 - actions**2 + 1e-6)
    return log_density.sum(dim=1)


def min_q(critic, obs: th.Tensor, actions: th.Tensor) -> th.Tensor:
    q1, q2 = critic(obs, actions)
    return th.where(q1 < q2, q1, q2)


def hand_update(model: CQL, variant: dict[str, Any], batch: ReplayBufferSamples, update: int,
                eps: list[th.Tensor], uniform: th.Tensor) -> dict[str, Any]:
    """The losses of one update from the networks as they are, their gradients per optimizer, and the logged values."""
    obs, actions, next_obs = batch.observations, batch.actions, batch.next_observations
    n = N_ACTIONS
    log_ent_coef = model.log_ent_coef
    alpha = th.tensor(variant["ent_coef"]) if log_ent_coef is None else log_ent_coef.detach().exp()

    actions_pi, log_pi = squashed_samples(model, obs, eps[0])
    ent_coef_loss = None if log_ent_coef is None else -(log_ent_coef * (log_pi.detach() - ACTION_DIM)).mean()
    if update <= variant.get("bc_steps", 0):
        actor_loss = (alpha * log_pi - squashed_log_likelihood(model, obs, actions)).mean()
    else:
        actor_loss = (alpha * log_pi - min_q(model.critic, obs, actions_pi).flatten()).mean()

    with th.no_grad():
        rewards = REWARD_SCALE * batch.rewards + REWARD_BIAS
        if variant.get("cql_max_target_backup"):
            next_actions, next_log_pi = squashed_samples(model, next_obs, eps[1], n)
            next_q = min_q(model.critic_target, next_obs.repeat_interleave(n, dim=0), next_actions).view(BATCH, n)
            best = next_q.argmax(dim=1, keepdim=True)
            next_q, next_log_pi = next_q.gather(1, best), next_log_pi.view(BATCH, n).gather(1, best)
        else:
            next_actions, next_log_pi = squashed_samples(model, next_obs, eps[1])
            next_q, next_log_pi = min_q(model.critic_target, next_obs, next_actions), next_log_pi.view(BATCH, 1)
        if variant.get("backup_entropy"):
            next_q = next_q - alpha * next_log_pi
        discounts = GAMMA if batch.discounts is None else batch.discounts
        y = rewards + discounts * (1.0 - batch.dones) * next_q

        policy_actions, policy_log_pi = squashed_samples(model, th.cat([next_obs, obs]), eps[2], n)
        sampled = th.cat([uniform, policy_actions[: BATCH * n].view(BATCH, n, ACTION_DIM),
                          policy_actions[BATCH * n :].view(BATCH, n, ACTION_DIM)], dim=1)
        log_mu = th.cat([th.full((BATCH, n), -ACTION_DIM * math.log(2.0)), policy_log_pi[: BATCH * n].view(BATCH, n),
                         policy_log_pi[BATCH * n :].view(BATCH, n)], dim=1)

    data_q = model.critic(obs, actions)
    td_loss = sum(((q - y) ** 2).mean() for q in data_q)
    sampled_q = model.critic(obs.repeat_interleave(3 * n, dim=0), sampled.reshape(BATCH * 3 * n, ACTION_DIM))
    gaps = []
    for q_sampled, q_data in zip(sampled_q, data_q):
        q_sampled = q_sampled.view(BATCH, 3 * n)
        if variant.get("cql_importance_sample", True):
            logits = q_sampled - log_mu
        else:
            logits = th.cat([q_sampled, q_data], dim=1)
        ood = TEMP * th.log(th.exp(logits / TEMP).sum(dim=1))
        diff = ood - q_data.flatten()
        low, high = variant.get("cql_clip_diff_min", -np.inf), variant.get("cql_clip_diff_max", np.inf)
        diff = th.where(diff < low, th.full_like(diff, low), th.where(diff > high, th.full_like(diff, high), diff))
        gaps.append(diff.mean())
    gap = th.stack(gaps)
    weight = variant["cql_alpha_online"] if variant.get("online") else variant["cql_alpha"]
    losses: dict[str, th.Tensor] = {"actor": actor_loss}
    if ent_coef_loss is not None:
        losses["ent_coef"] = ent_coef_loss
    logged = {"cql_weight": float(weight)}
    if variant.get("cql_lagrange"):
        alpha_prime = min(math.exp(model.log_cql_alpha.item()), 1e6)
        logged["cql_weight"] = weight * alpha_prime
        multiplier = model.log_cql_alpha.exp() if alpha_prime < 1e6 else th.full((1,), 1e6)
        losses["cql_alpha"] = -(multiplier * weight * (gap.detach().mean() - variant["cql_target_action_gap"])).sum()
        logged["cql_alpha_loss"] = losses["cql_alpha"]
    losses["critic"] = td_loss + logged["cql_weight"] * gap.sum()

    q1_sampled = sampled_q[0].detach().view(BATCH, 3, n)
    logged.update(
        ent_coef=alpha, actor_loss=actor_loss, log_pi=log_pi.mean(), critic_loss=losses["critic"], td_loss=td_loss,
        cql_gap=gap.mean(), q_data=data_q[0].mean(), q_target=y.mean(), q_random=q1_sampled[:, 0].mean(),
        q_next_actions=q1_sampled[:, 1].mean(), q_policy=q1_sampled[:, 2].mean(),
        behaviour_cloning=float(update <= variant.get("bc_steps", 0)),
    )
    if ent_coef_loss is not None:
        logged["ent_coef_loss"] = ent_coef_loss
    grads = {}
    for name, loss in losses.items():
        parameters = optimizer_of(model, name).param_groups[0]["params"]
        if not loss.requires_grad:  # the Lagrange multiplier at its clip: no gradient
            grads[name] = [th.zeros_like(p) for p in parameters]
            continue
        grads[name] = [th.zeros_like(p) if g is None else g.detach()
                       for p, g in zip(parameters, th.autograd.grad(loss, parameters, allow_unused=True))]
    return dict(grads=grads, logged={k: float(v) for k, v in logged.items()})


def optimizer_of(model: CQL, name: str) -> th.optim.Optimizer:
    return {"ent_coef": model.ent_coef_optimizer, "cql_alpha": model.cql_alpha_optimizer,
            "actor": model.actor.optimizer, "critic": model.critic.optimizer}[name]


def state(module: th.nn.Module) -> dict[str, th.Tensor]:
    return {key: value.detach().clone() for key, value in module.state_dict().items()}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_two_updates_match_a_hand_computation(dataset, monkeypatch, name):
    variant = VARIANTS[name]
    model = make_model(dataset, variant)
    batches = fixed_batches(discounts=variant.get("discounts", False))
    m = N_ACTIONS if variant.get("cql_max_target_backup") else 1
    generator = th.Generator().manual_seed(2)
    noise = [[th.randn(rows, ACTION_DIM, generator=generator) for rows in (BATCH, BATCH * m, 2 * BATCH * N_ACTIONS)]
             for _ in batches]
    queue = [eps for step in noise for eps in step]

    def rsample(distribution: th.distributions.Normal, sample_shape: Any = ()) -> th.Tensor:
        eps = queue.pop(0)
        assert eps.shape == distribution.loc.shape
        return distribution.loc + eps * distribution.scale

    expected: list[dict[str, Any]] = []
    targets: list[tuple[dict[str, th.Tensor], dict[str, th.Tensor]]] = []  # (before the update, critics after)

    def sample(*args, **kwargs) -> ReplayBufferSamples:
        k = len(expected)
        rng_state = th.get_rng_state()  # the uniform actions: replayed from the global generator
        uniform = th.empty((BATCH, N_ACTIONS, ACTION_DIM)).uniform_(-1.0, 1.0)
        th.set_rng_state(rng_state)
        targets.append((state(model.critic_target), {}))
        expected.append(hand_update(model, variant, batches[k], k + 1, noise[k], uniform))
        return batches[k]

    monkeypatch.setattr(model.replay_buffer, "sample", sample)
    monkeypatch.setattr(th.distributions.Normal, "rsample", rsample)
    got: dict[str, list[list[th.Tensor]]] = {}
    for opt_name in ("ent_coef", "cql_alpha", "actor", "critic"):
        if opt_name == "cql_alpha" and not variant.get("cql_lagrange"):
            assert model.cql_alpha_optimizer is None
            continue
        if opt_name == "ent_coef" and "ent_coef" in variant:  # a fixed temperature
            assert model.ent_coef_optimizer is None and model.log_ent_coef is None
            continue
        optimizer = optimizer_of(model, opt_name)
        record = got.setdefault(opt_name, [])

        def recording_step(*args, _step=optimizer.step, _record=record, _params=optimizer.param_groups[0]["params"],
                           _name=opt_name, **kwargs):
            _record.append([th.zeros_like(p) if p.grad is None else p.grad.detach().clone() for p in _params])
            result = _step(*args, **kwargs)
            if _name == "critic":
                targets[-1][1].update(state(model.critic))
            return result

        monkeypatch.setattr(optimizer, "step", recording_step)

    th.manual_seed(3)
    model._current_progress_remaining = PROGRESS_REMAINING
    model.train(gradient_steps=2, batch_size=BATCH)
    assert not queue and len(expected) == 2

    for opt_name, record in got.items():
        assert len(record) == 2, opt_name
        for step, grads in enumerate(record):
            want = expected[step]["grads"][opt_name]
            assert any(w.abs().max() > 1e-5 for w in want) or opt_name == "cql_alpha", (opt_name, step)
            for g, w in zip(grads, want, strict=True):
                np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=2e-4, atol=1e-6, err_msg=f"{opt_name} {step}")
    logged = model.logger.name_to_value
    for key in expected[0]["logged"]:
        want = np.mean([entry["logged"][key] for entry in expected])
        assert logged[f"train/{key}"] == pytest.approx(want, rel=1e-5, abs=1e-6), key
    if not variant.get("cql_lagrange") or variant.get("log_cql_alpha", 0.0) > math.log(1e6):  # a constant weight
        assert logged["train/cql_weight"] == pytest.approx(expected[0]["logged"]["cql_weight"], rel=1e-9)
    assert logged["train/n_updates"] == 2
    assert ("train/cql_alpha_loss" in logged) == bool(variant.get("cql_lagrange"))
    assert ("train/ent_coef_loss" in logged) == ("ent_coef" not in variant)

    # Learning rates: the actor and the temperature at policy_lr, the critics and the multiplier at learning_rate.
    assert logged["train/policy_learning_rate"] == pytest.approx(policy_lr(PROGRESS_REMAINING))
    for opt_name in ("actor",) if "ent_coef" in variant else ("ent_coef", "actor"):
        assert optimizer_of(model, opt_name).param_groups[0]["lr"] == pytest.approx(policy_lr(PROGRESS_REMAINING))
    for opt_name in ("critic", "cql_alpha") if variant.get("cql_lagrange") else ("critic",):
        assert optimizer_of(model, opt_name).param_groups[0]["lr"] == pytest.approx(learning_rate(PROGRESS_REMAINING))

    # Targets: Polyak averaging after the critics' step, every target_update_interval updates.
    interval = variant.get("target_update_interval", 1)
    finals = [before for before, _ in targets[1:]] + [state(model.critic_target)]
    for update, ((before, after), target) in enumerate(zip(targets, finals), start=1):
        for key, value in target.items():
            want = TAU * after[key] + (1 - TAU) * before[key] if update % interval == 0 else before[key]
            np.testing.assert_allclose(value.numpy(), want.numpy(), rtol=1e-6, atol=1e-7, err_msg=f"{update} {key}")


def test_hand_losses_tell_the_mutations_apart(dataset):
    """The networks keep each mutation visible: the two critics and the two target critics each the smaller on some
    rows, the targets apart from the critics, the clips of the gap binding for some states only."""
    model = make_model(dataset, VARIANTS["options"])
    batch = fixed_batches()[0]
    with th.no_grad():
        q1, q2 = model.critic(batch.observations, batch.actions)
        t1, t2 = model.critic_target(batch.next_observations, batch.actions)
    assert (q1 < q2).any() and (q2 < q1).any() and (t1 < t2).any() and (t2 < t1).any()
    th.manual_seed(0)
    penalty = model.cql_penalty(batch.observations, batch.next_observations, (q1, q2))
    diff = penalty.ood_q - th.cat([q1, q2], dim=1).T
    low, high = VARIANTS["options"]["cql_clip_diff_min"], VARIANTS["options"]["cql_clip_diff_max"]
    assert (diff < low).any() and (diff > high).any() and ((diff > low) & (diff < high)).any()


@pytest.mark.parametrize("n", [1, 2])
def test_policy_samples_are_n_squashed_gaussian_draws_per_state(dataset, monkeypatch, n):
    """One and two samples per state (the repeat happens only for n > 1): a state's draws together, their
    log-densities the squashed Gaussian's."""
    model = make_model(dataset, VARIANTS["plain"])
    obs = fixed_batches()[0].observations
    eps = th.randn(BATCH * n, ACTION_DIM, generator=th.Generator().manual_seed(4))

    def rsample(distribution: th.distributions.Normal, sample_shape: Any = ()) -> th.Tensor:
        assert distribution.loc.shape == eps.shape
        return distribution.loc + eps * distribution.scale

    monkeypatch.setattr(th.distributions.Normal, "rsample", rsample)
    actions, log_prob = model.policy_samples(obs, n_samples=n)
    with th.no_grad():
        want_actions, want_log_prob = squashed_samples(model, obs, eps, n)
    assert actions.shape == (BATCH * n, ACTION_DIM) and log_prob.shape == (BATCH * n,)
    np.testing.assert_allclose(actions.detach().numpy(), want_actions.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(log_prob.detach().numpy(), want_log_prob.numpy(), rtol=1e-4, atol=1e-5)


def test_min_q_is_the_smaller_critic_per_row_in_a_column(dataset):
    model = make_model(dataset, VARIANTS["plain"])
    batch = fixed_batches()[0]
    with th.no_grad():
        got = model._min_q(batch.observations, batch.actions)
        want = min_q(model.critic, batch.observations, batch.actions)
    assert got.shape == (BATCH, 1)
    np.testing.assert_array_equal(got.numpy(), want.numpy())
