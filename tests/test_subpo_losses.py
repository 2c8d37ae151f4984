"""SubPO's actor-critic form by hand (Prajapat et al., ICLR 2024; the authors' ``gym_env/gym_subrl.py``): one
update on a fixed batch, the collected rollout (rewards, bootstrapping, GAE, episode bookkeeping) and the modular
reward read from ``info["cell"]``, each rebuilt with plain torch / numpy from the networks' outputs.

The update minimises ``-mean(log pi(a|s) A) - ent_coef * H + vf_coef * mean((V(s) - R)^2)``, the Gaussian's log
density and entropy written out from the actor's tanh mean and its state-independent log-std; the test compares the
gradient the optimizer is handed and every logged value. The rollouts run on a tiny line env with Box actions whose
rewards are known numbers, so the stored rewards, the critic's bootstrap of a time-limit truncation (and none at a
termination), the GAE advantages and returns and the clipping of the actions can be recomputed.

Mutation testing (mutmut 3.8.1 on algos/subpo.py with test_subpo.py, docs/development.md): 917 mutants; of the 538
run in the first pass (stopped by its time cap; 379 not run), 158 survived before these tests and the new ones in
test_subpo.py, 51 after, all equivalent (none changes a loss, a reward, a logged or saved value or the picture):

- ``set_training_mode`` flipped in the update and the rollout (2): SubPO's networks have no dropout or batch norm.
- ``zero_grad(set_to_none=None / False)`` (2): every parameter gets a gradient, so zeroed and absent ones step alike.
- ``dtype`` dropped from ``np.zeros`` in ``_learner_rewards``, ``_cell_modular_rewards`` and ``returns_to_go``'s
  running sum (6): numpy's default is float64. ``returns_to_go``'s ``shape[2:]`` (1): a scalar zero broadcasts.
- ``reshape(-2)`` in ``time_step_baseline`` and ``reshape(-2, 1)`` / ``reshape(-1)`` of the discrete actions (4):
  numpy reads any negative size as the unknown one, and ``RolloutBuffer.add`` reshapes the actions itself.
- The learner rewards' ``np.array(..., dtype=np.float64)`` dropped (2): the VecEnv's float32 rewards then take the
  critic's bootstrap in float32, at most one float32 rounding apart, which the float32 buffer holds anyway.
- ``ModularCoverageReward``: the initial ``_start_reward`` / ``_t`` (4) are set by ``reset`` before any step; ``_t``
  set to 1, decremented or stepped by 2 (3): only ``_t == 0`` is read.
- ``write_run_artifacts``: the backend "agg" / "AGG" (2, names are case-insensitive); the unwrapping loop (12): an SB3
  ``VecEnvWrapper`` forwards attribute reads, so ``hasattr(wrapper, "envs")`` is already True and ``.envs`` is the
  base env's list; the default of ``info.get("F")`` at reset and in the steps (8): every SubPO env reports ``F`` in
  each info and the loop takes at least one step; ``deterministic=None`` or left out (2): predict's default is False;
  ``savefig``'s ``dpi`` None or left out (2): matplotlib's figure dpi is 100; ``plt.close(None)`` (1) closes the
  current figure, which is this one.

Second pass (the 379 not run in the first): 239 of ``train``, both rollouts, the rewards, the env check and
``_setup_model``, then the constructor's 140. Of the first 239, 41 of the first 118 survived before the tests they
led to (the REINFORCE update had no hand computation: dividing by the advantages, a flipped entropy sign and a
miscounted update all survived), 20 of the other 121 (run after that test was written); 17 after, all equivalent:

- ``set_training_mode`` flipped (2), ``zero_grad(set_to_none=None / False)`` (2): as in the first pass.
- ``returns.reshape(None / -2)`` and the steps' ``reshape(-2)`` in the logged F(tau) (3): ``RolloutBuffer.get``
  has already flattened the buffer to (n_steps * n_envs, 1), which a boolean mask of that length indexes by row.
- The REINFORCE rollout's zero values made with ``device=None`` or no device (2): torch's default device is the
  CPU, where the tests run.
- ``actions.reshape(-1, )`` and ``reshape(-2, 1)`` of the REINFORCE actions (2): ``RolloutBuffer.add`` reshapes
  the actions itself, and numpy reads any negative size as the unknown one.
- ``_episode_step`` and ``_rollout_steps`` without ``dtype=np.int64`` (4): they hold small whole numbers, exact in
  float64, and ``time_step_baseline`` casts them to int64.
- ``_reward_scales = ""`` in ``_setup_model`` (1): it is only read after ``_coverage is None`` has set it.
- ``has_attr("spec") or True`` (1): every Gymnasium env has a ``spec`` attribute (None when not registered).

The constructor's 140: 23 survived (all but the first 8 run after the defaults test in ``test_subpo.py`` was
written), 8 after the tests they led to (settings that reach SB3, refusal messages, mixed horizons), all equivalent:

- ``n_steps=None`` or ``2`` handed to SB3 (2): the constructor sets ``n_steps`` from the episodes before the networks
  and the buffer are built, and a loaded model restores it.
- ``use_sde=None`` and ``_init_setup_model=None`` (2): falsy, as False.
- ``sde_sample_freq`` None, +1 or -2 (3): read only with gSDE, which SubPO never turns on.
- ``float("INF")`` (1): Python parses it case-insensitively.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import KVWriter, Logger

import algos.subpo as subpo_module
from algos.subpo import SubPO

GAMMA, LAMBDA = 0.9, 0.8


class _Weights:
    """A weighted coverage of single cells: F(S) = sum of the weights of the distinct cells in S."""

    def __init__(self, weights):
        self.weights = np.asarray(weights, dtype=np.float64)

    def value(self, cells):
        return float(sum(self.weights[c] for c in set(int(c) for c in cells)))


class _LineEnv(gym.Env):
    """A point on a line: x += action (one Box dimension), horizon 4 (3 steps). Reward of step t (1-based) is
    ``t / 2 + episode``, so every stored reward is known; ``cell`` (the index of round(x) on 0..6) in the info."""

    observation_space = spaces.Box(-10.0, 10.0, (2,), dtype=np.float32)
    action_space = spaces.Box(-1.0, 1.0, (1,), dtype=np.float32)
    horizon = 4

    def __init__(self, terminate_at=None, reward_scale=None, success=False):
        self.F = _Weights([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0])
        if reward_scale is not None:
            self.reward_scale = reward_scale
        self.terminate_at = terminate_at
        self.success = success
        self.received = []
        self.episode = -1

    def _cell(self):
        return int(np.clip(np.round(self.x), -3, 3)) + 3

    def _obs(self):
        return np.array([self.x, self.t], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.t = 0.0, 0
        self.episode += 1
        return self._obs(), {"cell": self._cell()}

    def step(self, action):
        self.received.append(np.array(action, dtype=np.float64).copy())
        start = self._cell()
        self.x += float(np.asarray(action).reshape(-1)[0])
        self.t += 1
        terminated = self.terminate_at is not None and self.t >= self.terminate_at
        truncated = not terminated and self.t >= self.horizon - 1
        info = {"cell": self._cell()}
        if self.t == 1:
            info["start_cell"] = start
        if self.success and (terminated or truncated):
            info["is_success"] = self.episode % 2 == 0
        return self._obs(), self.t / 2 + self.episode, terminated, truncated, info


def _line_model(n_envs=1, env_kwargs=None, **kwargs):
    env = make_vec_env(_LineEnv, n_envs=n_envs, env_kwargs=env_kwargs or {})
    kwargs = {"episodes_per_update": 2 * n_envs, "gamma": GAMMA, "gae_lambda": LAMBDA, "seed": 0,
              "policy_kwargs": {"net_arch": {"pi": [8], "vf": [8]}}, **kwargs}
    return SubPO("MlpPolicy", env, **kwargs)


class _SuccessEveryOtherEpisode(gym.Wrapper):
    """Flags the last step of episodes 0, 2, ... a success and of 1, 3, ... a failure."""

    def __init__(self, env):
        super().__init__(env)
        self.episode = -1

    def reset(self, **kwargs):
        self.episode += 1
        return self.env.reset(**kwargs)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            info["is_success"] = self.episode % 2 == 0
        return obs, reward, terminated, truncated, info


def _grid_model(success=False, **kwargs):
    """The REINFORCE form on a 4x4 coverage grid: 2 episodes of 3 steps per update (a 6-step buffer)."""
    from envs.submodular import CoverageGridEnv

    env = CoverageGridEnv("bimodal", grid=(4, 4), horizon=4, observation="history")
    env = _SuccessEveryOtherEpisode(env) if success else env
    kwargs = {"episodes_per_update": 2, "seed": 0, "policy_kwargs": {"net_arch": [8]}, **kwargs}
    return SubPO("MlpPolicy", env, **kwargs)


def _fill_grid_batch(model, advantages, returns, steps):
    """Six observations of random walks on the grid, actions 0..4, the given advantages, returns and time steps."""
    env = model.env.envs[0]
    rng = np.random.default_rng(3)
    obs, _ = env.reset(seed=3)
    buffer = model.rollout_buffer
    buffer.reset()
    actions = np.array([0, 4, 2, 1, 3, 2])
    for t in range(buffer.buffer_size):
        buffer.add(obs[None], np.array([[actions[t]]]), np.zeros(1), np.array([steps[t] == 0]), th.zeros(1),
                   th.zeros(1))
        obs, _, terminated, truncated, _ = env.step(int(rng.integers(5)))
        if terminated or truncated:
            obs, _ = env.reset()
    buffer.advantages[:] = np.asarray(advantages, dtype=np.float32)[:, None]
    buffer.returns[:] = np.asarray(returns, dtype=np.float32)[:, None]
    model._rollout_steps[:] = np.asarray(steps)[:, None]
    return th.as_tensor(buffer.observations.reshape(buffer.buffer_size, -1)).clone(), th.as_tensor(actions)


def _actor_mean(policy, obs):
    return policy.action_net(policy.mlp_extractor.forward_actor(obs))  # action_net ends in the actor's tanh


def _value(policy, obs):
    return policy.value_net(policy.mlp_extractor.forward_critic(obs)).flatten()


class _Writer(KVWriter):
    def __init__(self):
        self.rows = []

    def write(self, key_values, key_excluded, step=0):
        self.rows.append((dict(key_values), dict(key_excluded)))

    def close(self):
        pass


def _gradients_handed_by_one_train(model):
    """Run ``train()`` once and return the gradients the optimizer held at its one step."""
    params = list(model.policy.parameters())
    handed = []
    step = model.policy.optimizer.step

    def recording_step(*args, **kwargs):
        handed.append([p.grad.detach().clone() for p in params])
        return step(*args, **kwargs)

    model.policy.optimizer.step = recording_step
    model.train()
    model.policy.optimizer.step = step
    assert len(handed) == 1
    return handed[0]


def test_actor_critic_update_is_the_hand_computed_loss_and_logs_its_terms():
    model = _line_model(ent_coef=0.3, vf_coef=0.7, learning_rate=1e-2)
    writer = _Writer()
    model.set_logger(Logger(folder=None, output_formats=[writer]))
    policy, buffer = model.policy, model.rollout_buffer
    n = buffer.buffer_size
    obs = np.stack([np.linspace(-1.0, 1.0, n), np.arange(n) % 3], axis=1).astype(np.float32)
    actions = np.linspace(-0.9, 1.3, n).astype(np.float32)[:, None]
    rewards = np.array([0.5, 1.0, 1.5, 1.5, 2.0, 2.5])
    values = np.array([0.2, -0.1, 0.4, 0.3, 0.0, 0.6])
    advantages = np.array([1.0, -2.0, 0.5, 3.0, -1.0, 0.25])
    returns = np.array([1.5, 0.2, -0.7, 2.0, 1.0, 0.1])
    buffer.reset()
    for t in range(n):
        buffer.add(obs[t:t + 1], actions[t:t + 1], rewards[t:t + 1], np.array([t % 3 == 0]),
                   th.tensor([values[t]]), th.zeros(1))
    buffer.advantages[:] = advantages[:, None]
    buffer.returns[:] = returns[:, None]

    params = list(policy.parameters())
    with th.no_grad():
        log_std_before = policy.log_std.detach().clone()
    obs_t, act_t = th.as_tensor(obs), th.as_tensor(actions)
    mean = _actor_mean(policy, obs_t)
    log_std = policy.log_std
    log_prob = (-0.5 * ((act_t - mean) / log_std.exp()) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(dim=1)
    entropy = (0.5 + 0.5 * math.log(2 * math.pi) + log_std).sum().expand(n)
    value = _value(policy, obs_t)
    adv_t, ret_t = th.as_tensor(advantages, dtype=th.float32), th.as_tensor(returns, dtype=th.float32)
    pg_loss = -(log_prob * adv_t).mean()
    value_loss = ((value - ret_t) ** 2).mean()
    loss = pg_loss - 0.3 * entropy.mean() + 0.7 * value_loss
    expected = th.autograd.grad(loss, params)

    for got, want in zip(_gradients_handed_by_one_train(model), expected):
        th.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
    model.logger.dump()
    logged, excluded = writer.rows[-1]
    grad_norm = th.sqrt(sum((g ** 2).sum() for g in expected)).item()
    explained = 1 - np.var(returns - values) / np.var(returns)
    assert logged["train/policy_gradient_loss"] == pytest.approx(pg_loss.item(), rel=1e-5)
    assert logged["train/value_loss"] == pytest.approx(value_loss.item(), rel=1e-5)
    assert logged["train/entropy"] == pytest.approx(entropy.mean().item(), rel=1e-5)
    assert logged["train/grad_norm"] == pytest.approx(grad_norm, rel=1e-4)
    assert logged["train/advantage_mean"] == pytest.approx(advantages.mean(), rel=1e-5)
    assert logged["train/explained_variance"] == pytest.approx(explained, rel=1e-5)
    assert logged["train/std"] == pytest.approx(th.exp(policy.log_std).mean().item(), rel=1e-6)
    assert logged["train/std"] != pytest.approx(th.exp(log_std_before).mean().item(), rel=1e-6)  # after the step
    assert logged["train/batch_reward_mean"] == pytest.approx(rewards.mean(), rel=1e-6)
    assert logged["train/n_updates"] == 1 and "tensorboard" in excluded["train/n_updates"]
    assert all("tensorboard" not in (excluded[key] or ()) for key in logged if key != "train/n_updates")


def test_critic_rollout_bootstraps_a_truncation_with_gamma_v_and_takes_gae_of_the_rewards():
    model = _line_model(learning_rate=0.0, policy_kwargs={"net_arch": {"pi": [8], "vf": [8]}, "log_std_init": 1.5})
    model.learn(model.n_steps)
    env = model.env.envs[0].unwrapped
    buffer, policy = model.rollout_buffer, model.policy
    rewards, values = buffer.rewards[:, 0], buffer.values[:, 0]
    # two episodes of 3 steps: rewards t / 2 + episode, the truncated last step + gamma * V(s_3)
    sampled = buffer.actions[:, 0]  # flattened env-major by the update: one env, in time order
    x = np.cumsum(np.clip(sampled, -1, 1).astype(np.float64).reshape(2, 3), axis=1)
    terminal = th.as_tensor(np.array([[x[0, 2], 3.0], [x[1, 2], 3.0]], dtype=np.float32))
    with th.no_grad():
        v_terminal = _value(policy, terminal).numpy()
    expected = np.array([0.5, 1.0, 1.5 + GAMMA * v_terminal[0], 1.5, 2.0, 2.5 + GAMMA * v_terminal[1]])
    np.testing.assert_allclose(rewards, expected, rtol=1e-5)
    np.testing.assert_array_equal(buffer.episode_starts[:, 0], [1, 0, 0, 1, 0, 0])
    np.testing.assert_array_equal(model._rollout_steps[:, 0], [0, 1, 2, 0, 1, 2])
    with th.no_grad():
        np.testing.assert_allclose(values, _value(policy, th.as_tensor(buffer.observations)).numpy(), rtol=1e-5)
    # GAE: the episode ends cut the recursion; the rollout's last step (a truncation) bootstraps nothing more
    advantages, running = np.zeros(6), 0.0
    for t in reversed(range(6)):
        ends = t in (2, 5)
        next_value = 0.0 if ends else values[t + 1]
        running = rewards[t] + GAMMA * next_value - values[t] + (0.0 if ends else GAMMA * LAMBDA * running)
        advantages[t] = running
    np.testing.assert_allclose(buffer.advantages[:, 0], advantages, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(buffer.returns[:, 0], advantages + values, rtol=1e-5, atol=1e-6)
    # the env is handed the sampled action clipped to the Box; the buffer keeps the sample
    assert sampled.min() < -1 and sampled.max() > 1
    np.testing.assert_allclose(np.concatenate(env.received), np.clip(sampled, -1, 1), rtol=1e-6)
    assert model.num_timesteps == 6 and model._n_updates == 1


def test_a_termination_is_not_bootstrapped_and_restarts_the_episode_count():
    model = _line_model(learning_rate=0.0, env_kwargs={"terminate_at": 2})
    model.learn(model.n_steps)
    buffer = model.rollout_buffer
    # three episodes of 2 steps each (terminated): rewards t / 2 + episode, nothing added at the ends
    np.testing.assert_allclose(buffer.rewards[:, 0], [0.5, 1.0, 1.5, 2.0, 2.5, 3.0], rtol=1e-6)
    np.testing.assert_array_equal(buffer.episode_starts[:, 0], [1, 0, 1, 0, 1, 0])
    np.testing.assert_array_equal(model._rollout_steps[:, 0], [0, 1, 0, 1, 0, 1])


def test_modular_reward_from_info_cells_is_unscaled_without_a_reward_scale():
    for scale, divisor in ((None, 1.0), (4.0, 4.0)):
        model = _line_model(n_envs=2, learning_rate=0.0, reward="modular", gamma=0.0,
                            env_kwargs={} if scale is None else {"reward_scale": scale})
        model.learn(model.n_steps * 2)
        weights = 2.0 ** np.arange(7)
        for i in range(2):
            sampled = model.rollout_buffer.actions[6 * i:6 * (i + 1), 0]  # flattened env-major by the update
            x = np.cumsum(np.clip(sampled, -1, 1).astype(np.float64).reshape(-1, 3), 1)
            cells = np.clip(np.round(x), -3, 3).astype(int) + 3
            expected = weights[cells]
            expected[:, 0] += weights[3]  # the first step pays F({s_0}) too: start cell 3
            np.testing.assert_allclose(model.rollout_buffer.rewards[:, i], expected.reshape(-1) / divisor, rtol=1e-6)


@pytest.mark.parametrize("form", ["critic", "time_step"])
def test_success_flags_reach_the_success_buffer(form):
    if form == "critic":
        model = _line_model(learning_rate=0.0, env_kwargs={"success": True})
    else:
        model = _grid_model(success=True, learning_rate=0.0)
    model.learn(model.n_steps)
    assert list(model.ep_success_buffer) == [True, False]


@pytest.mark.parametrize("form, extra_calls", [("critic", 1), ("time_step", 0)])
def test_observations_go_to_the_models_device(monkeypatch, form, extra_calls):
    """Every step's observation (and the critic form's last one, for its bootstrap value) goes to the device."""
    model = _line_model(learning_rate=0.0) if form == "critic" else _grid_model(learning_rate=0.0)
    devices = []

    def recording_obs_as_tensor(obs, device):
        devices.append(device)
        return th.as_tensor(obs, device=device)

    monkeypatch.setattr(subpo_module, "obs_as_tensor", recording_obs_as_tensor)
    model.learn(model.n_steps)
    assert len(devices) == model.n_steps + extra_calls and all(d == model.device for d in devices)


@pytest.mark.parametrize("form", ["critic", "time_step"])
def test_a_callback_that_stops_ends_the_rollout_before_any_update(form):
    class StopAtThree(BaseCallback):
        def _on_step(self):
            return self.n_calls < 3

    model = _line_model(learning_rate=0.0) if form == "critic" else _grid_model(learning_rate=0.0)
    model.learn(10 * model.n_steps, callback=StopAtThree())
    assert model.num_timesteps == 3 and model._n_updates == 0


@pytest.mark.parametrize("form", ["critic", "time_step"])
def test_collecting_without_an_observation_is_refused(form):
    model = _line_model() if form == "critic" else _grid_model()
    model._last_obs = None
    with pytest.raises(AssertionError, match="^No previous observation was provided$"):
        model.collect_rollouts(model.env, CallbackList([]), model.rollout_buffer, model.n_steps)


def test_critic_form_on_the_grid_pays_the_modular_reward_read_from_the_observations_of_two_envs():
    """Discrete actions, two envs, no ``info["cell"]``: the modular reward w(N(s_{h+1})) (plus w(N(s_0)) on each
    episode's first step) is read from the observations, as ModularCoverageReward pays it; the truncated last step of
    each episode adds gamma * V(s_H)."""
    from algos.subpo import ModularCoverageReward
    from envs.submodular import CoverageGridEnv

    def grid():
        return CoverageGridEnv("bimodal", grid=(6, 6), horizon=10, observation="history")

    model = SubPO("MlpPolicy", make_vec_env(grid, n_envs=2, seed=0), baseline="critic", reward="modular",
                  episodes_per_update=4, learning_rate=0.0, gamma=GAMMA, seed=0,
                  policy_kwargs={"net_arch": {"pi": [8], "vf": [8]}})
    model.learn(model.n_steps * 2)
    assert model.n_steps == 18
    actions = model.rollout_buffer.actions.reshape(2, 18)  # flattened env-major by the update
    for i in range(2):
        env = ModularCoverageReward(grid())
        env.reset()
        expected = []
        for t in range(18):
            obs, reward, _, truncated, _ = env.step(int(actions[i, t]))
            if truncated:
                with th.no_grad():
                    reward += GAMMA * _value(model.policy, th.as_tensor(obs[None])).item()
                env.reset()
            expected.append(reward)
        np.testing.assert_allclose(model.rollout_buffer.rewards[:, i], expected, rtol=1e-5)


def test_reinforce_update_is_the_hand_computed_loss_and_logs_its_terms():
    """``-mean(log pi(a|s) A) - ent_coef * H`` of the softmax policy, written out from its logits: the gradient the
    optimizer is handed, the logged loss, entropy, gradient norm, the batch's F(tau) (returns at the episodes'
    first steps) and the update count, kept out of tensorboard."""
    model = _grid_model(ent_coef=0.3, learning_rate=1e-2)
    writer = _Writer()
    model.set_logger(Logger(folder=None, output_formats=[writer]))
    advantages = [1.0, -2.0, 0.5, 3.0, -1.0, 0.25]
    returns = [7.0, 4.0, 1.5, 9.0, 5.0, 2.0]
    obs, actions = _fill_grid_batch(model, advantages, returns, steps=[0, 1, 2, 0, 1, 2])
    policy = model.policy
    params = list(policy.parameters())
    logits = policy.logits_net(obs.flatten(1))
    log_probs = logits - th.logsumexp(logits, dim=1, keepdim=True)
    log_prob = log_probs[th.arange(6), actions]
    entropy = -(log_probs.exp() * log_probs).sum(dim=1).mean()
    pg_loss = -(log_prob * th.tensor(advantages)).mean()
    expected = th.autograd.grad(pg_loss - 0.3 * entropy, params)

    for got, want in zip(_gradients_handed_by_one_train(model), expected):
        th.testing.assert_close(got, want, rtol=1e-4, atol=1e-7)
    model.logger.dump()
    logged, excluded = writer.rows[-1]
    assert logged["train/policy_gradient_loss"] == pytest.approx(pg_loss.item(), rel=1e-5)
    assert logged["train/entropy"] == pytest.approx(entropy.item(), rel=1e-5)
    grad_norm = th.sqrt(sum((g ** 2).sum() for g in expected)).item()
    assert logged["train/grad_norm"] == pytest.approx(grad_norm, rel=1e-4)
    assert logged["train/batch_return_mean"] == pytest.approx(8.0) and logged["train/batch_return_max"] == 9.0
    assert logged["train/n_updates"] == 1 and excluded["train/n_updates"] == ("tensorboard",)
    assert all("tensorboard" not in (excluded[key] or ()) for key in logged if key != "train/n_updates")
    _fill_grid_batch(model, advantages, returns, steps=[0, 1, 2, 0, 1, 2])
    model.train()
    model.logger.dump()
    assert writer.rows[-1][0]["train/n_updates"] == 2


@pytest.mark.parametrize("steps, logged_mean", [([0, 1, 2, 3, 4, 5], 7.0), ([1, 2, 3, 4, 5, 6], None)])
def test_batch_return_is_logged_for_one_episode_start_and_left_out_without_any(steps, logged_mean):
    model = _grid_model(learning_rate=0.0)
    writer = _Writer()
    model.set_logger(Logger(folder=None, output_formats=[writer]))
    _fill_grid_batch(model, [0.0] * 6, [7.0, 4.0, 1.5, 9.0, 5.0, 2.0], steps)
    model.train()
    model.logger.dump()
    logged = writer.rows[-1][0]
    assert logged.get("train/batch_return_mean") == logged_mean
