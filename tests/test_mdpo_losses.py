"""Each MDPO loss rebuilt by hand: one ``train()`` call of each class against plain torch.

The hand computations below use only the snapshot of the networks' weights, the optimizers' Adam moments
and the training batch. They re-implement the tiny networks, the Gaussian densities, the closed-form
KL, the losses as the paper and the classes' docstrings write them, gradient clipping and Adam, and never
call the algorithm's own helpers. So a flipped sign, a swapped coefficient, a KL in the wrong direction,
an off-by-one step size or a max instead of a min in ``algos/mdpo.py`` / ``algos/mdpo_off.py`` makes
them disagree.

- On-policy (:class:`algos.mdpo.MDPO`): iteration k = 3 of K = 4 of a real ``learn`` run on Pendulum,
  so t_k = 1 - (k - 1) / K = 0.5 and the Adam moments carry over from iterations 1 and 2. The m policy
  steps minimise ``-mean(ratio * A) + KL(pi_theta || pi_k) / t_k - ent_coef * entropy`` on the whole
  batch (gradient norm clipped), then the value function takes its clipped-loss minibatch epochs.
- Off-policy (:class:`algos.mdpo_off.OffPolicyMDPO`): two gradient steps on fixed batches and fixed
  reparameterisation noise: SAC's soft Bellman critic step, then the actor step on
  ``mean(c log pi_theta + q' (lambda - c) log pi_k - min(Q1, Q2)) + reg``, then the Polyak update; with
  Shannon logs (q' = 1) and with Tsallis q-logs (q' = 1.5, 2-d actions, per-dimension q-log).

Mutation testing (mutmut 3.8.1, docs/development.md), with this file, test_mdpo_settings.py, test_mdpo_divergence.py
and (off-policy) test_mdpo_contract.py. None of the survivors changes a loss, a schedule or a saved value.

- ``algos/mdpo.py``: 401 mutants. 111 survived before test_mdpo_settings.py and this file's value-loss and
  policy-gradient tests; 7 survive after:
  - the KL's ``sum(dim=+1)`` for ``dim=-1`` (the KL is 2-d);
  - ``_init_setup_model=None`` (falsy, as False);
  - ``set_training_mode(False)`` (no dropout or batch norm);
  - ``zero_grad(set_to_none=None/False)`` before the actor's and the value function's steps (4 mutants). Each
    optimizer holds only the parameters its loss reaches, so zeroed and absent gradients step alike.
- ``algos/mdpo_off.py``: 381 mutants. 159 survived before (111, plus 48 that no selected test reached); 10 survive
  after:
  - the Tsallis log-density's ``sum(dim=+1)`` (2-d);
  - ``set_training_mode(False)``;
  - ``_setup_learn``'s defaults for ``reset_num_timesteps``, ``tb_log_name`` and ``progress_bar`` (4 mutants):
    ``learn`` always passes all three;
  - ``actor`` and ``critic`` misspelt in ``_excluded_save_params`` (4 mutants): SB3 already leaves out every
    attribute whose optimizer is in the saved state dicts.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from algos.mdpo import MDPO
from algos.mdpo_off import OffPolicyMDPO
from tests.recording_logger import recording_logger

BETAS = (0.9, 0.999)
LOG_2PI = math.log(2.0 * math.pi)


def adam_step(param: th.Tensor, grad: th.Tensor, state: dict[str, Any], lr: float, eps: float) -> th.Tensor:
    """One Adam step (Kingma & Ba, with bias correction) on a detached tensor; updates ``state`` in place."""
    beta1, beta2 = BETAS
    state["step"] += 1
    state["m"] = beta1 * state["m"] + (1.0 - beta1) * grad
    state["v"] = beta2 * state["v"] + (1.0 - beta2) * grad * grad
    m_hat = state["m"] / (1.0 - beta1 ** state["step"])
    v_hat = state["v"] / (1.0 - beta2 ** state["step"])
    return param - lr * m_hat / (v_hat.sqrt() + eps)


def adam_states(optimizer: th.optim.Optimizer, names: dict[int, str]) -> dict[str, dict[str, Any]]:
    """The optimizer's Adam moments per parameter name (zeros for a parameter it has not stepped yet)."""
    states = {}
    for param in optimizer.param_groups[0]["params"]:
        saved = optimizer.state.get(param, {})
        states[names[id(param)]] = {
            "step": int(saved["step"]) if saved else 0,
            "m": saved["exp_avg"].detach().clone() if saved else th.zeros_like(param),
            "v": saved["exp_avg_sq"].detach().clone() if saved else th.zeros_like(param),
        }
    return states


def leaves(params: dict[str, th.Tensor], keys: list[str]) -> list[th.Tensor]:
    return [params[k].detach().clone().requires_grad_(True) for k in keys]


def gaussian_log_density(x: th.Tensor, mean: th.Tensor, log_std: th.Tensor) -> th.Tensor:
    """Per-dimension log N(x; mean, exp(log_std)^2)."""
    return -0.5 * ((x - mean) / log_std.exp()) ** 2 - log_std - 0.5 * LOG_2PI


def assert_params_close(actual: dict[str, th.Tensor], expected: dict[str, th.Tensor], keys: list[str]) -> None:
    for key in keys:
        th.testing.assert_close(actual[key], expected[key], rtol=1e-5, atol=1e-6, msg=lambda m, k=key: f"{k}: {m}")


# --------------------------------------------------------------------------------------------------
# On-policy MDPO

ON_N_STEPS = 16
ON_K = 4  # iterations of the run: learn(total_timesteps=ON_K * ON_N_STEPS)
ON_ITERATION = 3  # the train() call rebuilt by hand
ON_SETTINGS = dict(
    n_steps=ON_N_STEPS,
    sgd_steps=3,
    learning_rate=3e-3,
    vf_learning_rate=1e-2,
    vf_epochs=2,
    vf_batch_size=6,  # 16 // 6 = 2 full minibatches per epoch; the partial one (4 samples) is dropped
    clip_range_vf=0.01,  # small, so that the clipped branch of the value loss binds
    ent_coef=0.01,
    max_grad_norm=0.5,
    gamma=0.9,
    gae_lambda=0.8,
)
ACTOR_KEYS = ["log_std", "mlp_extractor.policy_net.0.weight", "mlp_extractor.policy_net.0.bias"]
ACTOR_KEYS += ["action_net.weight", "action_net.bias"]
VALUE_KEYS = ["mlp_extractor.value_net.0.weight", "mlp_extractor.value_net.0.bias", "value_net.weight"]
VALUE_KEYS += ["value_net.bias"]


def _on_policy_gaussian(p: dict[str, th.Tensor], obs: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
    """Mean and log-std of the [4]-tanh Gaussian policy."""
    hidden = th.tanh(obs @ p["mlp_extractor.policy_net.0.weight"].T + p["mlp_extractor.policy_net.0.bias"])
    mean = hidden @ p["action_net.weight"].T + p["action_net.bias"]
    return mean, p["log_std"].expand_as(mean)


def _on_policy_value(p: dict[str, th.Tensor], obs: th.Tensor) -> th.Tensor:
    hidden = th.tanh(obs @ p["mlp_extractor.value_net.0.weight"].T + p["mlp_extractor.value_net.0.bias"])
    return (hidden @ p["value_net.weight"].T + p["value_net.bias"]).flatten()


def _record_one_train_call(model: MDPO, iteration: int) -> dict[str, Any]:
    """Wrap ``model.train``: snapshot everything the ``iteration``-th call reads, and its result."""
    record: dict[str, Any] = {}
    original_train = model.train
    calls = [0]

    def train() -> None:
        calls[0] += 1
        if calls[0] != iteration:
            original_train()
            return
        policy, buffer = model.policy, model.rollout_buffer
        names = {id(p): n for n, p in policy.named_parameters()}
        record["before"] = {k: v.detach().clone() for k, v in policy.state_dict().items()}
        record["actor_adam"] = adam_states(policy.optimizer, names)
        record["value_adam"] = adam_states(policy.value_optimizer, names)
        record["buffer"] = {
            name: th.as_tensor(getattr(buffer, name).copy()).reshape(ON_N_STEPS, -1)
            for name in ("observations", "actions", "advantages", "returns", "values")
        }
        record["numpy_state"] = np.random.get_state()  # the buffer's minibatch shuffles
        record["num_timesteps"] = model.num_timesteps
        original_train()
        record["after"] = {k: v.detach().clone() for k, v in policy.state_dict().items()}

    model.train = train  # type: ignore[method-assign]
    return record


def _hand_on_policy_train(record: dict[str, Any]) -> dict[str, th.Tensor]:
    """The k-th MDPO iteration by hand: m full-batch policy steps, then the value function's epochs."""
    s = ON_SETTINGS
    before, data = record["before"], record["buffer"]
    obs, actions = data["observations"], data["actions"]
    returns, old_values = data["returns"].flatten(), data["values"].flatten()
    advantages = data["advantages"].flatten()
    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)

    # The paper's step size t_k = 1 - (k - 1) / K for iteration k of K.
    t_k = 1.0 - (ON_ITERATION - 1) / ON_K
    assert record["num_timesteps"] == ON_ITERATION * ON_N_STEPS

    old_mean, old_log_std = _on_policy_gaussian(before, obs)  # pi_k is the policy that collected the batch
    old_log_prob = gaussian_log_density(actions, old_mean, old_log_std).sum(dim=1)

    params = leaves(before, ACTOR_KEYS)
    adam = record["actor_adam"]
    for _ in range(s["sgd_steps"]):
        p = dict(zip(ACTOR_KEYS, params))
        mean, log_std = _on_policy_gaussian(p, obs)
        log_prob = gaussian_log_density(actions, mean, log_std).sum(dim=1)
        ratio = th.exp(log_prob - old_log_prob)
        surrogate = (ratio * advantages).mean()
        # KL(pi_theta || pi_k) of diagonal Gaussians, the new policy first (the paper's direction)
        std, old_std = log_std.exp(), old_log_std.exp()
        kl = old_log_std - log_std + (std**2 + (mean - old_mean) ** 2) / (2 * old_std**2) - 0.5
        kl = kl.sum(dim=1).mean()
        entropy = (log_std + 0.5 * (LOG_2PI + 1.0)).sum(dim=1).mean()
        loss = -surrogate + kl / t_k - s["ent_coef"] * entropy
        grads = th.autograd.grad(loss, params)
        total_norm = th.sqrt(sum((g**2).sum() for g in grads))
        clip = min(1.0, s["max_grad_norm"] / (float(total_norm) + 1e-6))
        params = [
            adam_step(w.detach(), g * clip, adam[k], s["learning_rate"], 1e-5).requires_grad_(True)
            for k, w, g in zip(ACTOR_KEYS, params, grads)
        ]
    result = {k: w.detach() for k, w in zip(ACTOR_KEYS, params)}

    # Value function: vf_epochs passes of shuffled minibatches, last partial one dropped, clipped loss.
    rng = np.random.RandomState()
    rng.set_state(record["numpy_state"])
    rng.permutation(ON_N_STEPS)  # the policy's full batch is drawn (shuffled) first
    params = leaves(before, VALUE_KEYS)
    adam = record["value_adam"]
    n_full = ON_N_STEPS // s["vf_batch_size"]
    for _ in range(s["vf_epochs"]):
        order = th.as_tensor(rng.permutation(ON_N_STEPS))
        for j in range(n_full):
            idx = order[j * s["vf_batch_size"] : (j + 1) * s["vf_batch_size"]]
            values = _on_policy_value(dict(zip(VALUE_KEYS, params)), obs[idx])
            unclipped = (values - returns[idx]) ** 2
            clipped = old_values[idx] + th.clamp(values - old_values[idx], -s["clip_range_vf"], s["clip_range_vf"])
            loss = th.max(unclipped, (clipped - returns[idx]) ** 2).mean()
            grads = th.autograd.grad(loss, params)
            params = [
                adam_step(w.detach(), g, adam[k], s["vf_learning_rate"], 1e-5).requires_grad_(True)
                for k, w, g in zip(VALUE_KEYS, params, grads)
            ]
    result.update({k: w.detach() for k, w in zip(VALUE_KEYS, params)})
    return result


def test_on_policy_train_matches_hand_computation():
    model = MDPO("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(net_arch=[4]), seed=3, device="cpu", **ON_SETTINGS)
    record = _record_one_train_call(model, ON_ITERATION)
    model.learn(total_timesteps=ON_K * ON_N_STEPS)
    assert "after" in record
    assert all(state["step"] == 2 * ON_SETTINGS["sgd_steps"] for state in record["actor_adam"].values())

    expected = _hand_on_policy_train(record)
    assert_params_close(record["after"], expected, ACTOR_KEYS + VALUE_KEYS)
    # The step was not a no-op: each parameter moved by far more than the tolerance.
    for key in ACTOR_KEYS + VALUE_KEYS:
        assert (record["after"][key] - record["before"][key]).abs().max() > 1e-4, key


# The value function alone: a rollout buffer filled by hand, learning rate 0 so that every minibatch's loss is
# taken at the same weights (the losses and the last minibatch's gradient are compared, not Adam's sign-like steps).
VF_N = 8
VF_OFFSETS = th.tensor([0.5, 0.5, -0.5, -0.5, 0.1, -0.1, 0.3, -0.3])  # prediction - rollout value
VF_ERRORS = th.tensor([1.0, -1.0, -1.0, 0.5, 0.3, -0.4, 1.5, -0.2])  # return - prediction, all |.| < 2


@pytest.mark.parametrize(
    ("vf_batch_size", "clip_range_vf", "steps_per_epoch"),
    [(3, 0.2, 2), (5, 0.2, 1), (9, 0.2, 1), (3, None, 2)],
    ids=["two_full_minibatches", "one_full_minibatch", "batch_larger_than_buffer", "no_clip"],
)
def test_on_policy_value_loss_and_minibatches(vf_batch_size: int, clip_range_vf: float | None, steps_per_epoch: int):
    """``vf_epochs`` passes of ``batch // vf_batch_size`` minibatches (the partial one dropped; one minibatch of the
    whole batch when vf_batch_size exceeds it), each minimising
    ``mean(max((v - R)^2, (v_old + clip(v - v_old, -eps, eps) - R)^2))``. The samples take the clipped branch above
    and below the clip range, the unclipped one, and lie inside the range."""
    model = MDPO(
        "MlpPolicy",
        "Pendulum-v1",
        n_steps=VF_N,
        vf_epochs=2,
        vf_batch_size=vf_batch_size,
        clip_range_vf=clip_range_vf,
        policy_kwargs=dict(net_arch=[4]),
        seed=0,
        device="cpu",
    )
    policy, buffer = model.policy, model.rollout_buffer
    for group in policy.value_optimizer.param_groups:
        group["lr"] = 0.0  # train() sets vf_learning_rate; here every minibatch sees the same weights
    obs = th.rand(VF_N, 3, generator=th.Generator().manual_seed(0)) * 2 - 1
    with th.no_grad():
        predicted = policy.predict_values(obs).flatten()
    old_values, returns = predicted - VF_OFFSETS, predicted + VF_ERRORS
    buffer.reset()
    buffer.observations[:] = obs.numpy().reshape(VF_N, 1, 3)
    buffer.values[:] = old_values.numpy().reshape(VF_N, 1)
    buffer.returns[:] = returns.numpy().reshape(VF_N, 1)
    buffer.full = True
    np.random.seed(5)  # the buffer's minibatch shuffles
    losses = model._train_value_function()

    rng = np.random.RandomState(5)
    params = policy.value_parameters()
    values = policy.predict_values(obs).flatten()  # learning rate 0: the weights did not move
    assert th.equal(values.detach(), predicted)
    unclipped = (values - returns) ** 2
    if clip_range_vf is None:
        per_sample = unclipped
    else:
        clipped = old_values + th.clamp(values - old_values, -clip_range_vf, clip_range_vf)
        per_sample = th.max(unclipped, (clipped - returns) ** 2)
        # samples 0, 2, 6, 7 take the clipped branch, 1 and 3 the unclipped one, 4 and 5 are inside the range
        assert (unclipped < (clipped - returns) ** 2).sum() == 4 and (unclipped > (clipped - returns) ** 2).sum() == 2
    expected, last_grads = [], None
    for _ in range(2):
        order = rng.permutation(VF_N)
        for j in range(steps_per_epoch):
            idx = th.as_tensor(order[j * vf_batch_size : (j + 1) * vf_batch_size])
            loss = per_sample[idx].mean()
            expected.append(loss.item())
            last_grads = th.autograd.grad(loss, params, retain_graph=True)
    np.testing.assert_allclose(losses, expected, rtol=1e-5)
    assert last_grads is not None
    for param, grad in zip(params, last_grads):
        th.testing.assert_close(param.grad, grad, rtol=1e-5, atol=1e-7)


# One train() call at ratio 1 (the policy that collected the batch is pi_k): the policy gradient, and the logged
# values. sgd_steps = 1, so the gradient handed to Adam is the hand loss's gradient at pi_k.
GRAD_N = 8
GRAD_CASES: dict[str, dict[str, Any]] = {
    "pendulum": dict(),
    "tiny_advantage_std": dict(advantages=1e-7 * np.array([1.0, -2.0, 3.0, 0.0, 2.0, -1.0, 1.0, -3.0])),
    "one_sample": dict(n_steps=1),  # a single advantage is not standardised
    "two_samples": dict(n_steps=2, advantages=np.array([3.0, 1.0])),
    "not_normalised": dict(normalize_advantage=False),
    "tsallis": dict(tsallis_q=1.5),
    "discrete": dict(env="CartPole-v1"),
    "squashed_sde": dict(use_sde=True, policy_kwargs=dict(net_arch=[4], squash_output=True)),  # no entropy formula
}
GRAD_ENT_COEF = 0.1


def _gradient_case_model(case: dict[str, Any]) -> MDPO:
    settings = dict(
        n_steps=case.get("n_steps", GRAD_N),
        sgd_steps=1,
        ent_coef=GRAD_ENT_COEF,
        max_grad_norm=1e6,  # no clipping: the gradient itself reaches Adam
        vf_epochs=1,
        vf_batch_size=4,
        vf_learning_rate=lambda progress_remaining: 1e-3 * progress_remaining,
        normalize_advantage=case.get("normalize_advantage", True),
        tsallis_q=case.get("tsallis_q", 1.0),
        use_sde=case.get("use_sde", False),
        policy_kwargs=case.get("policy_kwargs", dict(net_arch=[4])),
    )
    return MDPO("MlpPolicy", case.get("env", "Pendulum-v1"), seed=1, device="cpu", **settings)


def _distribution_terms(model: MDPO, obs: th.Tensor, actions: th.Tensor) -> dict[str, th.Tensor]:
    """log pi(a|s) (from SB3's distribution) and the parameters the hand formulas need."""
    dist = model.policy.get_distribution(obs)
    terms = {"log_prob": dist.log_prob(actions)}
    if isinstance(model.action_space, gym.spaces.Discrete):
        terms["probs"] = dist.distribution.probs
    else:
        terms["mean"], terms["std"] = dist.distribution.loc, dist.distribution.scale
    return terms


def _hand_kl(new: dict[str, th.Tensor], old: dict[str, th.Tensor]) -> th.Tensor:
    """Per-state KL(new || old): Categorical, or diagonal Gaussian summed over dimensions."""
    if "probs" in new:
        return (new["probs"] * (new["probs"].log() - old["probs"].log())).sum(dim=1)
    var, old_var = new["std"] ** 2, old["std"] ** 2
    return (old["std"].log() - new["std"].log() + (var + (new["mean"] - old["mean"]) ** 2) / (2 * old_var) - 0.5).sum(1)


def _hand_log_q(log_prob: th.Tensor, q: float) -> th.Tensor:
    """Tsallis q-log of the density, floored at 1e-6."""
    density = th.clamp(log_prob.exp(), min=1e-6)
    return (density ** (1.0 - q) - 1.0) / (1.0 - q)


@pytest.mark.parametrize("case_id", list(GRAD_CASES))
def test_on_policy_policy_gradient_and_logged_values(case_id: str):
    """Iteration 2 of K = 3 (t_k = 2/3): the actor's gradient is that of
    ``-mean(ratio * A_n) + D(pi_theta || pi_k) / t_k - ent_coef * H`` with A standardised (std + 1e-8) when
    normalize_advantage and more than one sample, D the closed-form KL (Tsallis: the q-log difference at the
    sampled actions), H the entropy (-mean log pi when the squashed distribution has no formula); and the logged
    values are these quantities."""
    case = GRAD_CASES[case_id]
    model = _gradient_case_model(case)
    model.set_logger(Logger(folder=None, output_formats=[]))
    n = model.n_steps
    discrete = isinstance(model.action_space, gym.spaces.Discrete)
    actor_names = {id(p): name for name, p in model.policy.named_parameters()}
    record: dict[str, Any] = {}
    original_train, original_value_train = model.train, model._train_value_function
    calls = [0]

    def step() -> None:
        if calls[0] == 2:
            record["grads"] = [p.grad.clone() for p in model.policy.actor_parameters()]
        original_step()

    original_step = model.policy.optimizer.step
    model.policy.optimizer.step = step  # type: ignore[method-assign]

    def value_train() -> list[float]:
        losses = original_value_train()
        if calls[0] == 2:
            record["value_losses"] = losses
        return losses

    model._train_value_function = value_train  # type: ignore[method-assign]

    def train() -> None:
        calls[0] += 1
        if calls[0] != 2:
            original_train()
            return
        buffer = model.rollout_buffer
        if "advantages" in case:
            buffer.advantages[:] = case["advantages"].reshape(n, 1)
        obs = th.as_tensor(buffer.observations.copy()).reshape(n, -1)
        actions = th.as_tensor(buffer.actions.copy()).reshape(n, -1)
        actions = actions.long().flatten() if discrete else actions
        advantages = th.as_tensor(buffer.advantages.copy()).flatten()
        old_log_prob = th.as_tensor(buffer.log_probs.copy()).flatten()
        record["values"], record["returns"] = buffer.values.flatten().copy(), buffer.returns.flatten().copy()

        # The hand loss at pi_k, differentiated with respect to the actor's parameters.
        if model.normalize_advantage and n > 1:
            advantages = (advantages - advantages.mean()) / (th.std(advantages) + 1e-8)
        with th.no_grad():
            old = _distribution_terms(model, obs, actions)
        new = _distribution_terms(model, obs, actions)
        ratio = th.exp(new["log_prob"] - old_log_prob)
        surrogate = (ratio * advantages).mean()
        if model.tsallis_q == 1.0:
            divergence = _hand_kl(new, old).mean()
        else:
            q = 2.0 - model.tsallis_q
            divergence = (_hand_log_q(new["log_prob"], q) - _hand_log_q(old_log_prob, q)).mean()
        if discrete:
            entropy = -(new["probs"] * new["probs"].log()).sum(dim=1).mean()
        elif "squash_output" in case.get("policy_kwargs", {}):
            entropy = -new["log_prob"].mean()
        else:
            entropy = (new["std"].log() + 0.5 * (LOG_2PI + 1.0)).sum(dim=1).mean()
        t_k = 1.0 - (2 - 1) / 3
        loss = -surrogate + divergence / t_k - GRAD_ENT_COEF * entropy
        record["hand_grads"] = th.autograd.grad(loss, model.policy.actor_parameters())
        terms = dict(surrogate=surrogate, divergence=divergence, policy_loss=loss, entropy=entropy)
        record["hand"] = {key: value.item() for key, value in terms.items()} | {"t_k": t_k}

        original_train()
        record["logged"] = dict(model.logger.name_to_value)
        record["excluded"] = dict(model.logger.name_to_excluded)
        with th.no_grad():
            after = _distribution_terms(model, obs, actions)
        record["kl"] = _hand_kl(after, old).mean().item()
        record["ratio_deviation"] = (th.exp(after["log_prob"] - old_log_prob) - 1.0).abs().mean().item()
        record["vf_lr"] = model.policy.value_optimizer.param_groups[0]["lr"]
        if not discrete:
            record["std"] = model.policy.log_std.exp().mean().item()

    model.train = train  # type: ignore[method-assign]
    model.learn(total_timesteps=3 * n)
    assert calls[0] == 3 and "logged" in record

    names = [actor_names[id(p)] for p in model.policy.actor_parameters()]
    for name, grad, hand in zip(names, record["grads"], record["hand_grads"]):
        th.testing.assert_close(grad, hand, rtol=1e-4, atol=1e-6, msg=lambda m, k=name: f"{case_id} {k}: {m}")
    assert any(g.abs().max() > 1e-3 for g in record["hand_grads"])

    logged, hand = record["logged"], record["hand"]
    for key in ("surrogate", "divergence", "policy_loss", "entropy", "t_k"):
        assert logged[f"train/{key}"] == pytest.approx(hand[key], rel=1e-5, abs=1e-6), key
    assert logged["train/kl_coef"] == pytest.approx(1.0 / hand["t_k"])
    assert logged["train/kl"] == pytest.approx(record["kl"], rel=1e-4, abs=1e-7)
    assert logged["train/ratio_deviation"] == pytest.approx(record["ratio_deviation"], rel=1e-4, abs=1e-7)
    assert record["value_losses"] and logged["train/value_loss"] == pytest.approx(np.mean(record["value_losses"]))
    progress_remaining = 1.0 / 3.0  # after the second of three rollouts
    assert logged["train/vf_learning_rate"] == pytest.approx(1e-3 * progress_remaining)
    assert record["vf_lr"] == pytest.approx(1e-3 * progress_remaining)
    values, returns = record["values"], record["returns"]
    var_returns = np.var(returns)
    expected_ev = np.nan if var_returns == 0 else 1.0 - np.var(returns - values) / var_returns
    np.testing.assert_allclose(logged["train/explained_variance"], expected_ev, rtol=1e-5)
    if discrete:
        assert "train/std" not in logged
    else:
        assert logged["train/std"] == pytest.approx(record["std"])
    assert logged["train/n_updates"] == 2 and record["excluded"]["train/n_updates"] == ("tensorboard",)


def test_on_policy_annealing_timesteps_sets_the_horizon():
    """With ``annealing_timesteps``, K counts its iterations, not the ``learn`` call's: t_k = 1 - (k - 1) / K.
    (And with ``vf_epochs=0`` the logged value loss is 0.)"""
    model = MDPO("MlpPolicy", "Pendulum-v1", n_steps=4, sgd_steps=1, vf_epochs=0, annealing_timesteps=40,
                 policy_kwargs=dict(net_arch=[4]), device="cpu", seed=0)  # fmt: skip
    logger, writer = recording_logger()
    model.set_logger(logger)
    model.learn(total_timesteps=12)
    model.logger.dump(model.num_timesteps)
    t_k = [row["train/t_k"] for row in writer.rows if "train/t_k" in row]
    np.testing.assert_allclose(t_k, [1.0, 0.9, 0.8])  # K = 40 / 4 = 10 (the run's own K would be 3)
    value_loss = [row["train/value_loss"] for row in writer.rows if "train/value_loss" in row]
    assert value_loss == [0.0, 0.0, 0.0]  # vf_epochs = 0: no value step, logged as 0


# --------------------------------------------------------------------------------------------------
# Off-policy MDPO

OFF_BATCH = 8
OBS_DIM, ACT_DIM = 3, 2
OFF_SETTINGS = dict(
    device="cpu",
    learning_rate=2e-3,
    batch_size=OFF_BATCH,
    gamma=0.9,
    tau=0.1,
    ent_coef=0.2,  # lambda
    kl_coef=1.5,  # c = 1 / t_k
    policy_reg_coef=1e-2,
    old_policy_update_interval=10_000,  # pi_k stays as set by the test
)
ACTOR = ["latent_pi.0.weight", "latent_pi.0.bias", "mu.weight", "mu.bias", "log_std.weight", "log_std.bias"]
CRITIC = [f"qf{i}.{j}.{kind}" for i in (0, 1) for j in (0, 2) for kind in ("weight", "bias")]
LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0  # SB3's clamp of the SAC actor's log-std


class _SpacesOnly(gym.Env):
    """Observation and action spaces only: the test feeds the replay batches itself."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (OBS_DIM,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (ACT_DIM,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        return np.zeros(OBS_DIM, np.float32), {}

    def step(self, action):
        return np.zeros(OBS_DIM, np.float32), 0.0, False, False, {}


def _actor_gaussian(p: dict[str, th.Tensor], obs: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
    hidden = th.relu(obs @ p["latent_pi.0.weight"].T + p["latent_pi.0.bias"])
    mean = hidden @ p["mu.weight"].T + p["mu.bias"]
    log_std = th.clamp(hidden @ p["log_std.weight"].T + p["log_std.bias"], LOG_STD_MIN, LOG_STD_MAX)
    return mean, log_std


def _q_values(p: dict[str, th.Tensor], obs: th.Tensor, actions: th.Tensor) -> th.Tensor:
    """(B, 2): Q1 and Q2 of the [4]-ReLU twin critics."""
    x = th.cat([obs, actions], dim=1)
    columns = [
        th.relu(x @ p[f"qf{i}.0.weight"].T + p[f"qf{i}.0.bias"]) @ p[f"qf{i}.2.weight"].T + p[f"qf{i}.2.bias"]
        for i in (0, 1)
    ]
    return th.cat(columns, dim=1)


def _squashed_log(mean: th.Tensor, log_std: th.Tensor, u: th.Tensor, q_prime: float) -> th.Tensor:
    """log pi(a|s) (q' = 1) or the sum over dimensions of the Tsallis q-log of each dimension's density
    (q = 2 - q', density floored at 1e-6), for a = tanh(u), u ~ N(mean, std)."""
    a = th.tanh(u)
    per_dim = gaussian_log_density(u, mean, log_std) - th.log(1.0 - a**2 + 1e-6)
    if q_prime == 1.0:
        return per_dim.sum(dim=1)
    q = 2.0 - q_prime
    density = th.clamp(per_dim.exp(), min=1e-6)
    return ((density ** (1.0 - q) - 1.0) / (1.0 - q)).sum(dim=1)


def _sub(state: dict[str, th.Tensor], prefix: str) -> dict[str, th.Tensor]:
    return {k[len(prefix) :]: v.detach().clone() for k, v in state.items() if k.startswith(prefix)}


def _hand_off_policy_train(
    snapshot: dict[str, Any], batches: list[ReplayBufferSamples], noises: list[th.Tensor], q_prime: float
) -> tuple[dict[str, dict[str, th.Tensor]], dict[str, list[float]]]:
    """``len(batches)`` gradient steps of off-policy MDPO by hand: critic, actor, Polyak average. Also returns each
    step's critic and actor losses, mean(log pi_theta - log pi_k) and mean(log pi_theta)."""
    s = OFF_SETTINGS
    lam, c, lr = s["ent_coef"], s["kl_coef"], s["learning_rate"]
    actor, old_actor = snapshot["actor"], snapshot["old_actor"]
    critic, target = snapshot["critic"], snapshot["critic_target"]
    actor_adam, critic_adam = snapshot["actor_adam"], snapshot["critic_adam"]
    logs: dict[str, list[float]] = {"critic_loss": [], "actor_loss": [], "kl": [], "log_prob": []}
    for step, batch in enumerate(batches):
        next_noise, noise = noises[2 * step], noises[2 * step + 1]
        # Critic: SAC's soft Bellman backup with temperature lambda and the min of the target critics.
        with th.no_grad():
            next_mean, next_log_std = _actor_gaussian(actor, batch.next_observations)
            next_u = next_mean + next_noise * next_log_std.exp()
            next_log_prob = _squashed_log(next_mean, next_log_std, next_u, q_prime)
            next_q = _q_values(target, batch.next_observations, th.tanh(next_u)).min(dim=1).values
            # n-step batches carry each sample's discount gamma^n; one-step batches use gamma
            discount = s["gamma"] if batch.discounts is None else batch.discounts.flatten()
            y = batch.rewards.flatten() + (1 - batch.dones.flatten()) * discount * (next_q - lam * next_log_prob)
        params = leaves(critic, CRITIC)
        q = _q_values(dict(zip(CRITIC, params)), batch.observations, batch.actions)
        critic_loss = 0.5 * (((q[:, 0] - y) ** 2).mean() + ((q[:, 1] - y) ** 2).mean())
        grads = th.autograd.grad(critic_loss, params)
        critic = {k: adam_step(w.detach(), g, critic_adam[k], lr, 1e-8) for k, w, g in zip(CRITIC, params, grads)}

        # Actor: c log pi_theta + q' (lambda - c) log pi_k - min(Q1, Q2), a = tanh(mean + std * noise).
        params = leaves(actor, ACTOR)
        p = dict(zip(ACTOR, params))
        mean, log_std = _actor_gaussian(p, batch.observations)
        u = mean + noise * log_std.exp()
        log_prob = _squashed_log(mean, log_std, u, q_prime)
        old_mean, old_log_std = _actor_gaussian(old_actor, batch.observations)
        old_log_prob = _squashed_log(old_mean, old_log_std, u, q_prime)  # pi_k at the same (pre-tanh) action
        q_pi = _q_values(critic, batch.observations, th.tanh(u)).min(dim=1).values
        actor_loss = (c * log_prob + q_prime * (lam - c) * old_log_prob - q_pi).mean()
        actor_loss = actor_loss + s["policy_reg_coef"] * ((mean**2).mean() + (log_std**2).mean())
        grads = th.autograd.grad(actor_loss, params)
        actor = {k: adam_step(w.detach(), g, actor_adam[k], lr, 1e-8) for k, w, g in zip(ACTOR, params, grads)}

        target = {k: (1 - s["tau"]) * target[k] + s["tau"] * critic[k] for k in CRITIC}
        logs["critic_loss"].append(critic_loss.item())
        logs["actor_loss"].append(actor_loss.item())
        logs["kl"].append((log_prob - old_log_prob).mean().item())
        logs["log_prob"].append(log_prob.mean().item())
    return {"actor": actor, "critic": critic, "critic_target": target}, logs


def _fixed_batch(generator: th.Generator, n_step: bool = False) -> ReplayBufferSamples:
    """A random batch; with ``n_step``, per-sample discounts gamma^n (n = 1..3) as SB3's n-step buffer gives."""

    def uniform(*shape: int) -> th.Tensor:
        return th.rand(*shape, generator=generator) * 2 - 1

    dones = th.zeros(OFF_BATCH, 1)
    dones[::3] = 1.0
    n = th.randint(1, 4, (OFF_BATCH, 1), generator=generator).float() if n_step else None
    return ReplayBufferSamples(
        observations=uniform(OFF_BATCH, OBS_DIM),
        actions=uniform(OFF_BATCH, ACT_DIM) * 0.9,
        next_observations=uniform(OFF_BATCH, OBS_DIM),
        dones=dones,
        rewards=uniform(OFF_BATCH, 1) * 2,
        discounts=None if n is None else OFF_SETTINGS["gamma"] ** n,
    )


@pytest.mark.parametrize(
    ("q_prime", "n_step"), [(1.0, False), (1.5, False), (1.0, True)], ids=["shannon", "tsallis_1.5", "n_step"]
)
def test_off_policy_train_matches_hand_computation(q_prime, n_step, monkeypatch):
    env = _SpacesOnly()
    model = OffPolicyMDPO("MlpPolicy", env, policy_kwargs=dict(net_arch=[4]), tsallis_q=q_prime, seed=0, **OFF_SETTINGS)
    model.set_logger(Logger(folder=None, output_formats=[]))
    generator = th.Generator().manual_seed(11)
    with th.no_grad():  # pi_k != pi_theta, so the log pi_k term differs from the log pi_theta term
        for param in model.policy.old_actor.parameters():
            param.add_(0.3 * th.randn(param.shape, generator=generator))

    # Fixed batches and fixed reparameterisation noise: replay sampling and Normal.rsample are patched.
    batches: list[ReplayBufferSamples] = []
    noises: list[th.Tensor] = []
    monkeypatch.setattr(model.replay_buffer, "sample", lambda batch_size, env=None: batches.pop(0))

    def rsample(distribution: th.distributions.Normal, sample_shape: Any = ()) -> th.Tensor:
        eps = noises.pop(0)
        assert eps.shape == distribution.loc.shape
        return distribution.loc + eps * distribution.scale

    monkeypatch.setattr(th.distributions.Normal, "rsample", rsample)

    def queue(n_steps: int) -> tuple[list[ReplayBufferSamples], list[th.Tensor]]:
        new_batches = [_fixed_batch(generator, n_step) for _ in range(n_steps)]
        new_noises = [th.randn(OFF_BATCH, ACT_DIM, generator=generator) for _ in range(2 * n_steps)]
        batches.extend(new_batches)
        noises.extend(new_noises)
        return new_batches, new_noises

    queue(1)
    model.train(gradient_steps=1, batch_size=OFF_BATCH)  # warm-up: the Adam moments are not zero below
    assert not batches and not noises

    state = model.policy.state_dict()
    names = {id(p): n for n, p in model.policy.named_parameters()}
    snapshot = {
        "actor": _sub(state, "actor."),
        "old_actor": _sub(state, "old_actor."),
        "critic": _sub(state, "critic."),
        "critic_target": _sub(state, "critic_target."),
        "actor_adam": {k[len("actor.") :]: v for k, v in adam_states(model.actor.optimizer, names).items()},
        "critic_adam": {k[len("critic.") :]: v for k, v in adam_states(model.critic.optimizer, names).items()},
    }
    assert all(v["step"] == 1 for v in snapshot["actor_adam"].values())
    new_batches, new_noises = queue(2)
    model.num_timesteps, model._last_old_policy_update = 7, 3  # pi_k is 4 env steps old (no refresh: m = 10000)
    model.train(gradient_steps=2, batch_size=OFF_BATCH)
    assert not batches and not noises  # exactly one batch and two noise draws per gradient step

    expected, logs = _hand_off_policy_train(snapshot, new_batches, new_noises, q_prime)
    logged = model.logger.name_to_value
    for key in ("critic_loss", "actor_loss", "kl"):
        assert logged[f"train/{key}"] == pytest.approx(np.mean(logs[key]), rel=1e-5, abs=1e-6), key
    assert logged["train/entropy"] == pytest.approx(-np.mean(logs["log_prob"]), rel=1e-5, abs=1e-6)
    assert (logged["train/ent_coef"], logged["train/kl_coef"]) == (OFF_SETTINGS["ent_coef"], OFF_SETTINGS["kl_coef"])
    assert logged["train/old_policy_age"] == 4
    assert logged["train/n_updates"] == 3 and model.logger.name_to_excluded["train/n_updates"] == ("tensorboard",)
    after = model.policy.state_dict()
    for part, keys in (("actor", ACTOR), ("critic", CRITIC), ("critic_target", CRITIC)):
        actual = _sub(after, f"{part}.")
        assert_params_close(actual, expected[part], keys)
        assert any((actual[k] - snapshot[part][k]).abs().max() > 1e-4 for k in keys), part
    assert all(th.equal(v, after[f"old_actor.{k}"]) for k, v in snapshot["old_actor"].items())


@pytest.mark.parametrize("q_prime", [1.0, 1.5, 2.0])
def test_off_policy_log_prob_of_squashed_actions(q_prime: float):
    """log pi(a|s) of a = tanh(u) is taken at the pre-tanh u the actor sampled (recovering u from a by atanh fails
    where tanh saturates): the Gaussian log density of u minus log(1 - a^2 + 1e-6) per dimension, summed, exact
    for q' = 1; for q' != 1 the per-dimension density, floored at 1e-6, under the q-log with q = 2 - q', summed."""
    model = OffPolicyMDPO("MlpPolicy", _SpacesOnly(), policy_kwargs=dict(net_arch=[4]), tsallis_q=q_prime, device="cpu")
    mean = th.tensor([[0.2, -0.5], [1.0, 0.0], [-2.0, 0.3], [0.0, 0.0]])
    log_std = th.tensor([[-0.5, 0.1], [0.3, -1.0], [0.5, 0.0], [-3.0, 0.2]])
    # tanh(9) and tanh(-9.5) are +-1 in float32; u = 0.5 lies 10 standard deviations out (density below 1e-6)
    u = th.tensor([[0.1, -0.9], [9.0, 0.4], [-9.5, 2.5], [0.5, -1.2]])
    distribution = model.actor.action_dist.proba_distribution(mean, log_std)
    log_prob = model._log_prob(distribution, th.tanh(u), u)
    th.testing.assert_close(log_prob, _squashed_log(mean, log_std, u, q_prime), rtol=1e-5, atol=1e-5)
    assert th.isfinite(log_prob).all()
