"""TD3+BC: TD3 with a behaviour-cloning term in the actor loss (Fujimoto & Gu, NeurIPS 2021).

"A Minimalist Approach to Offline Reinforcement Learning", https://arxiv.org/abs/2106.06860.
Defaults follow the paper and the authors' code (sfujim/TD3_BC), as CORL's td3_bc.py also does.

    python -m algos.td3_bc --dataset halfcheetah-medium-v2 -n 100000
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import torch as th
import torch.nn.functional as F
from stable_baselines3 import TD3
from stable_baselines3.common.noise import ActionNoise, NormalActionNoise
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.common.utils import polyak_update

from rl.datasets import OfflineDataset
from rl.offline import OfflineAlgorithmMixin


class TD3BC(OfflineAlgorithmMixin, TD3):
    """TD3+BC, offline and offline-to-online.

    Actor loss: ``-lambda * Q1(s, pi(s)) + (pi(s) - a)^2`` with ``lambda = alpha / mean|Q1(s, pi(s))|``
    (the mean over the batch, not differentiated); the critic update is TD3's. States are standardised
    with the dataset's mean and std (the paper's default).

    Online (``learn`` after ``learn_offline``) the same losses go on over the growing buffer, with Gaussian
    exploration noise of std ``expl_noise`` (the authors' online TD3 setting).

    Deviation: the paper's networks and optimisers are used as SB3's TD3Policy builds them (256-256 MLPs,
    Adam at 3e-4); SB3 stores actions scaled to [-1, 1], which equals the env's actions on D4RL envs.

    :param policy: policy alias or class (``MlpPolicy``)
    :param env: the env to evaluate and fine-tune in
    :param dataset: offline data (an :class:`~rl.datasets.OfflineDataset` or a spec for ``load_dataset``)
    :param alpha: weight of the Q term relative to behaviour cloning (paper: 2.5)
    :param normalize_observations: standardise observations with the dataset's statistics (paper: True)
    :param expl_noise: std of the Gaussian exploration noise online, relative to the action range (0.1)
    :param learning_rate: Adam learning rate of actor and critic (3e-4)
    :param buffer_size: replay buffer capacity: the dataset plus the online steps
    :param learning_starts: env steps of random actions online before learning (0: start from the
        offline policy)
    :param batch_size: minibatch size (256)
    :param tau: target smoothing coefficient (0.005)
    :param gamma: discount factor (0.99)
    :param policy_delay: critic updates per actor and target update (2)
    :param target_policy_noise: std of the target policy smoothing noise (0.2)
    :param target_noise_clip: clip of the target smoothing noise (0.5)
    :param kwargs: the rest of SB3's TD3 arguments (train_freq, gradient_steps, policy_kwargs, seed, ...)
    """

    def __init__(
        self,
        policy: str | type,
        env: Any,
        dataset: OfflineDataset | str | None = None,
        alpha: float = 2.5,
        normalize_observations: bool = True,
        expl_noise: float = 0.1,
        learning_rate: float | Schedule = 3e-4,
        buffer_size: int = 2_000_000,
        learning_starts: int = 0,
        batch_size: int = 256,
        tau: float = 0.005,
        gamma: float = 0.99,
        policy_delay: int = 2,
        target_policy_noise: float = 0.2,
        target_noise_clip: float = 0.5,
        action_noise: ActionNoise | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        _init_setup_model: bool = True,
        **kwargs: Any,
    ) -> None:
        if alpha <= 0:
            raise ValueError(f"alpha must be positive (the paper uses 2.5), got {alpha}.")
        self.alpha = alpha
        self.expl_noise = expl_noise
        policy_kwargs = self._init_offline(dataset, normalize_observations, policy_kwargs)
        policy_kwargs.setdefault("net_arch", [256, 256])
        super().__init__(
            policy, env, learning_rate=learning_rate, buffer_size=buffer_size, learning_starts=learning_starts,
            batch_size=batch_size, tau=tau, gamma=gamma, policy_delay=policy_delay,
            target_policy_noise=target_policy_noise, target_noise_clip=target_noise_clip, action_noise=action_noise,
            policy_kwargs=policy_kwargs, _init_setup_model=False, **kwargs,
        )
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        super()._setup_model()
        if self.action_noise is None and self.expl_noise > 0:
            dim = int(np.prod(self.action_space.shape))
            self.action_noise = NormalActionNoise(np.zeros(dim), self.expl_noise * np.ones(dim))
        self._setup_offline()

    def train(self, gradient_steps: int, batch_size: int = 256) -> None:
        self.policy.set_training_mode(True)
        self._update_learning_rate([self.actor.optimizer, self.critic.optimizer])
        actor_losses, critic_losses, bc_losses, q_scales = [], [], [], []
        for _ in range(gradient_steps):
            self._n_updates += 1
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            discounts = data.discounts if data.discounts is not None else self.gamma
            rewards = self.scale_rewards(data.rewards)

            with th.no_grad():
                noise = data.actions.clone().normal_(0, self.target_policy_noise)
                noise = noise.clamp(-self.target_noise_clip, self.target_noise_clip)
                next_actions = (self.actor_target(data.next_observations) + noise).clamp(-1, 1)
                next_q = th.cat(self.critic_target(data.next_observations, next_actions), dim=1)
                next_q, _ = th.min(next_q, dim=1, keepdim=True)
                target_q = rewards + (1 - data.dones) * discounts * next_q

            current_q = self.critic(data.observations, data.actions)
            critic_loss = sum(F.mse_loss(q, target_q) for q in current_q)
            assert isinstance(critic_loss, th.Tensor)
            critic_losses.append(critic_loss.item())
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()

            if self._n_updates % self.policy_delay == 0:
                pi = self.actor(data.observations)
                q = self.critic.q1_forward(data.observations, pi)
                lmbda = self.alpha / q.abs().mean().detach()
                bc_loss = F.mse_loss(pi, data.actions)
                actor_loss = -lmbda * q.mean() + bc_loss
                actor_losses.append(actor_loss.item())
                bc_losses.append(bc_loss.item())
                q_scales.append(lmbda.item())
                self.actor.optimizer.zero_grad()
                actor_loss.backward()
                self.actor.optimizer.step()

                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                polyak_update(self.actor.parameters(), self.actor_target.parameters(), self.tau)
                polyak_update(self.critic_batch_norm_stats, self.critic_batch_norm_stats_target, 1.0)
                polyak_update(self.actor_batch_norm_stats, self.actor_batch_norm_stats_target, 1.0)

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/critic_loss", np.mean(critic_losses))
        if actor_losses:
            self.logger.record("train/actor_loss", np.mean(actor_losses))
            self.logger.record("train/bc_loss", np.mean(bc_losses))
            self.logger.record("train/lambda", np.mean(q_scales))


if __name__ == "__main__":
    from rl.cli import main

    sys.exit(main("td3_bc"))
