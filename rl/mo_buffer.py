"""A rollout buffer with one reward, value, return and advantage column per objective.

SB3's RolloutBuffer stores scalars; multi-objective PPO (PGMORL, C-MORL) needs GAE per objective and then
one scalar advantage for the policy loss, chosen by the algorithm (a weighted sum, or one objective). The
buffer computes per-objective GAE with SB3's recursion run on all columns at once and carries the
algorithm's scalar ``policy_advantages`` beside the vectors in its samples.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.vec_env import VecNormalize


class VectorRolloutBufferSamples(NamedTuple):
    """A minibatch: the vectors are (batch, n_objectives), ``policy_advantages`` is (batch,)."""

    observations: th.Tensor
    actions: th.Tensor
    old_values: th.Tensor
    old_log_prob: th.Tensor
    advantages: th.Tensor
    returns: th.Tensor
    policy_advantages: th.Tensor


class VectorRolloutBuffer(RolloutBuffer):
    """RolloutBuffer whose rewards, values, returns and advantages have a trailing objective axis.

    :param n_objectives: number of objectives (columns).

    Other parameters as SB3's RolloutBuffer.
    """

    def __init__(self, buffer_size: int, observation_space: spaces.Space, action_space: spaces.Space,
                 device: th.device | str = "auto", gae_lambda: float = 1, gamma: float = 0.99, n_envs: int = 1,
                 n_objectives: int = 2) -> None:
        self.n_objectives = int(n_objectives)
        super().__init__(buffer_size, observation_space, action_space, device=device, gae_lambda=gae_lambda,
                         gamma=gamma, n_envs=n_envs)

    def reset(self) -> None:
        super().reset()
        shape = (self.buffer_size, self.n_envs, self.n_objectives)
        self.rewards = np.zeros(shape, dtype=np.float32)
        self.returns = np.zeros(shape, dtype=np.float32)
        self.values = np.zeros(shape, dtype=np.float32)
        self.advantages = np.zeros(shape, dtype=np.float32)
        self.policy_advantages = np.zeros((self.buffer_size, self.n_envs), dtype=np.float32)

    def add(self, obs: np.ndarray, action: np.ndarray, reward: np.ndarray, episode_start: np.ndarray,
            value: th.Tensor, log_prob: th.Tensor) -> None:
        """As SB3's ``add``; ``reward`` is (n_envs, n_objectives), ``value`` is (n_envs, n_objectives)."""
        if len(log_prob.shape) == 0:
            log_prob = log_prob.reshape(-1, 1)
        if isinstance(self.observation_space, spaces.Discrete):
            obs = obs.reshape((self.n_envs, *self.obs_shape))
        self.observations[self.pos] = np.array(obs)
        self.actions[self.pos] = np.array(action).reshape((self.n_envs, self.action_dim))
        self.rewards[self.pos] = np.asarray(reward, dtype=np.float32).reshape(self.n_envs, self.n_objectives)
        self.episode_starts[self.pos] = np.array(episode_start)
        self.values[self.pos] = value.detach().cpu().numpy().reshape(self.n_envs, self.n_objectives)
        self.log_probs[self.pos] = log_prob.detach().cpu().numpy()
        self.pos += 1
        if self.pos == self.buffer_size:
            self.full = True

    def compute_returns_and_advantage(self, last_values: th.Tensor, dones: np.ndarray) -> None:
        """GAE(lambda) per objective: SB3's recursion with a trailing objective axis."""
        last = last_values.detach().cpu().numpy().reshape(self.n_envs, self.n_objectives)
        last_gae_lam = np.zeros((self.n_envs, self.n_objectives), dtype=np.float32)
        for step in reversed(range(self.buffer_size)):
            if step == self.buffer_size - 1:
                next_non_terminal = 1.0 - dones.astype(np.float32)
                next_values = last
            else:
                next_non_terminal = 1.0 - self.episode_starts[step + 1]
                next_values = self.values[step + 1]
            mask = next_non_terminal[:, None]
            delta = self.rewards[step] + self.gamma * next_values * mask - self.values[step]
            last_gae_lam = delta + self.gamma * self.gae_lambda * mask * last_gae_lam
            self.advantages[step] = last_gae_lam
        self.returns = self.advantages + self.values

    def get(self, batch_size: int | None = None) -> Generator[VectorRolloutBufferSamples, None, None]:
        assert self.full, "the buffer is not full"
        indices = np.random.permutation(self.buffer_size * self.n_envs)
        if not self.generator_ready:
            for name in ("observations", "actions", "values", "log_probs", "advantages", "returns",
                         "policy_advantages"):
                self.__dict__[name] = self.swap_and_flatten(self.__dict__[name])
            self.generator_ready = True
        if batch_size is None:
            batch_size = self.buffer_size * self.n_envs
        start = 0
        while start < self.buffer_size * self.n_envs:
            yield self._get_samples(indices[start:start + batch_size])
            start += batch_size

    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None) -> VectorRolloutBufferSamples:
        data = (
            self.observations[batch_inds],
            self.actions[batch_inds].astype(np.float32, copy=False),
            self.values[batch_inds].reshape(len(batch_inds), self.n_objectives),
            self.log_probs[batch_inds].flatten(),
            self.advantages[batch_inds].reshape(len(batch_inds), self.n_objectives),
            self.returns[batch_inds].reshape(len(batch_inds), self.n_objectives),
            self.policy_advantages[batch_inds].flatten(),
        )
        return VectorRolloutBufferSamples(*tuple(map(self.to_torch, data)))
