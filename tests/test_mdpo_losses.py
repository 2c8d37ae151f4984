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
) -> dict[str, dict[str, th.Tensor]]:
    """``len(batches)`` gradient steps of off-policy MDPO by hand: critic, actor, Polyak average."""
    s = OFF_SETTINGS
    lam, c, lr = s["ent_coef"], s["kl_coef"], s["learning_rate"]
    actor, old_actor = snapshot["actor"], snapshot["old_actor"]
    critic, target = snapshot["critic"], snapshot["critic_target"]
    actor_adam, critic_adam = snapshot["actor_adam"], snapshot["critic_adam"]
    for step, batch in enumerate(batches):
        next_noise, noise = noises[2 * step], noises[2 * step + 1]
        # Critic: SAC's soft Bellman backup with temperature lambda and the min of the target critics.
        with th.no_grad():
            next_mean, next_log_std = _actor_gaussian(actor, batch.next_observations)
            next_u = next_mean + next_noise * next_log_std.exp()
            next_log_prob = _squashed_log(next_mean, next_log_std, next_u, q_prime)
            next_q = _q_values(target, batch.next_observations, th.tanh(next_u)).min(dim=1).values
            y = batch.rewards.flatten() + (1 - batch.dones.flatten()) * s["gamma"] * (next_q - lam * next_log_prob)
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
    return {"actor": actor, "critic": critic, "critic_target": target}


def _fixed_batch(generator: th.Generator) -> ReplayBufferSamples:
    def uniform(*shape: int) -> th.Tensor:
        return th.rand(*shape, generator=generator) * 2 - 1

    dones = th.zeros(OFF_BATCH, 1)
    dones[::3] = 1.0
    return ReplayBufferSamples(
        observations=uniform(OFF_BATCH, OBS_DIM),
        actions=uniform(OFF_BATCH, ACT_DIM) * 0.9,
        next_observations=uniform(OFF_BATCH, OBS_DIM),
        dones=dones,
        rewards=uniform(OFF_BATCH, 1) * 2,
        discounts=None,
    )


@pytest.mark.parametrize("q_prime", [1.0, 1.5], ids=["shannon", "tsallis_1.5"])
def test_off_policy_train_matches_hand_computation(q_prime, monkeypatch):
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
        new_batches = [_fixed_batch(generator) for _ in range(n_steps)]
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
    model.train(gradient_steps=2, batch_size=OFF_BATCH)
    assert not batches and not noises  # exactly one batch and two noise draws per gradient step

    expected = _hand_off_policy_train(snapshot, new_batches, new_noises, q_prime)
    after = model.policy.state_dict()
    for part, keys in (("actor", ACTOR), ("critic", CRITIC), ("critic_target", CRITIC)):
        actual = _sub(after, f"{part}.")
        assert_params_close(actual, expected[part], keys)
        assert any((actual[k] - snapshot[part][k]).abs().max() > 1e-4 for k in keys), part
    assert all(th.equal(v, after[f"old_actor.{k}"]) for k, v in snapshot["old_actor"].items())
