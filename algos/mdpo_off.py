"""Off-policy Mirror Descent Policy Optimization (MDPO), SAC-like.

Paper: Tomar, Shani, Efroni, Ghavamzadeh. "Mirror Descent Policy Optimization", ICLR 2022.
https://arxiv.org/abs/2005.09814 . Authors' code (TF1, stable-baselines 2):
github.com/manantomar/Mirror-Descent-Policy-Optimization, ``mdpo_off/``.

Run it: ``python -m algos.mdpo_off --env HalfCheetah-v4 -n 1000000``.
"""

from __future__ import annotations

import sys
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, Schedule
from stable_baselines3.common.utils import polyak_update
from stable_baselines3.sac.policies import Actor
from torch.nn import functional as F

from algos.mdpo_policies import MDPOSACCnnPolicy, MDPOSACMultiInputPolicy, MDPOSACPolicy
from rl.tsallis import log_q

SelfOffPolicyMDPO = TypeVar("SelfOffPolicyMDPO", bound="OffPolicyMDPO")

_TANH_EPS = 1e-6  # SB3's epsilon in the tanh change-of-variables term


class OffPolicyMDPO(OffPolicyAlgorithm):
    """Off-policy MDPO: SAC whose actor takes mirror-descent steps towards a frozen old policy.

    The actor minimises, with a ~ pi_theta(.|s) reparameterised and tanh-squashed,

        L(theta) = mean( c * log pi_theta(a|s) + q' * (lambda - c) * log pi_k(a|s) - Q(s, a) )

    where pi_k is a frozen copy of the actor refreshed every ``old_policy_update_interval`` env steps
    (m = 1000). With q' = 1 this is ``c * KL(pi_theta || pi_k) + lambda * log pi_k - Q``; ``c = lambda``
    recovers SAC with a fixed temperature. c plays the role of 1/t_k and is fixed (the paper's
    off-policy step size is constant). The critics are SAC's soft Bellman backup with temperature
    lambda. ``tsallis_q`` (q') != 1 replaces log by the Tsallis q-log with q = 2 - q', per action
    dimension, as in the authors' code.

    The weight of log pi_k with Tsallis entropy is q' (lambda - c), not lambda - c q' (the two agree only
    at q' = 1). It is the mirror-descent step whose regulariser and Bregman divergence both come from the
    Tsallis negative entropy w(pi) = E_pi[ln_q pi] (ln_q the q-log above, q = 2 - q'): the gradient of w
    is q' ln_q pi + 1, so the linearised regulariser gives lambda q' ln_q pi_k and the proximity term
    (1/t_k) B_w(pi, pi_k) gives c (ln_q pi - q' ln_q pi_k). With c = lambda it is Tsallis SAC's actor
    loss (lambda ln_q pi - Q), as q' = 1 gives SAC's. It is also the authors' final code
    (``mdpo_off/mdpo.py`` at c9bd3ba, the ``policy_kl_loss`` line); their first commit (5cdb713) had
    lambda - c q', which they replaced in c3544ca. The arXiv text's Tsallis parameterisation predates
    the code's: the authors say the code's q' in [1, 2] is "ahead of the current arxiv version" (their
    repository's issue #1).

    Deliberate deviations from the authors' code (``mdpo_off/mdpo.py``):

    - Twin Q-functions with Polyak-averaged target Q-networks (SAC-v2, SB3's SACPolicy) instead of
      SAC-v1's V and target-V networks; the actor uses min(Q1, Q2) instead of Q1 only, as SB3's SAC
      does. With SAC at the same fixed temperature (``ent_coef=0.2``, the ``sac@ent02`` column of
      results/mdpo_off) the two differ only in the actor loss; SB3's default ``ent_coef="auto"`` also tunes
      the temperature, which MDPO keeps fixed as the paper does.
    - Exploration samples from pi_theta after warm-up, as SAC does; the authors' code acts with the
      deterministic mean (tanh(mu)) after warm-up, which looks like an oversight.
    - Time-limit truncations bootstrap (SB3's replay buffer records timeouts); the authors' code
      treats them as terminal.
    - With q' = 1 the log-probabilities are exact; the authors' code floors each dimension's density at
      1e-6 even then (a clamp that rarely binds). The floor is kept for q' != 1.

    :param policy: the policy model ("MlpPolicy", "CnnPolicy", "MultiInputPolicy" or a class).
    :param env: the environment (or its Gymnasium id).
    :param learning_rate: Adam learning rate of actor and critics (constant or schedule). Paper: 3e-4.
    :param buffer_size: replay buffer size. Paper: 1e6.
    :param learning_starts: uniformly random steps before learning. Paper: 10000.
    :param batch_size: minibatch size. Paper: 256.
    :param tau: Polyak coefficient of the target critics.
    :param gamma: discount factor.
    :param train_freq: update every n steps (or ``(n, "episode")``). Paper: 1.
    :param gradient_steps: gradient steps per update (-1: as many as env steps). Paper: 1.
    :param ent_coef: lambda, the fixed entropy temperature. Paper: 0.2.
    :param kl_coef: c, the weight of log pi_theta (1/t_k in the paper's notation). Paper: 1.0.
    :param tsallis_q: q'; 1.0 is Shannon entropy / KL, other values in [1, 2] Tsallis. Paper: 1.0.
    :param old_policy_update_interval: m, env steps between refreshes of pi_k. Paper: 1000.
    :param policy_reg_coef: weight of the mean^2 + log_std^2 regulariser of the actor (authors' code:
        1e-3, inherited from SAC-v1; 0 disables it).
    :param action_noise: extra exploration noise (usually None for this stochastic policy).
    :param replay_buffer_class: replay buffer class (None: SB3 picks one).
    :param replay_buffer_kwargs: keyword arguments for the replay buffer.
    :param optimize_memory_usage: SB3's memory-efficient replay buffer.
    :param target_update_interval: gradient steps between target-critic updates.
    :param stats_window_size: episodes averaged in the rollout logs.
    :param tensorboard_log: tensorboard log folder (None: no logging).
    :param policy_kwargs: keyword arguments for the policy ([256, 256] ReLU by default).
    :param verbose: 0 none, 1 training information, 2 debug.
    :param seed: random seed.
    :param device: torch device.
    :param _init_setup_model: build the networks on construction.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MDPOSACPolicy,
        "CnnPolicy": MDPOSACCnnPolicy,
        "MultiInputPolicy": MDPOSACMultiInputPolicy,
    }
    policy: MDPOSACPolicy
    actor: Actor
    old_actor: Actor

    def __init__(
        self,
        policy: str | type[MDPOSACPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 3e-4,
        buffer_size: int = 1_000_000,
        learning_starts: int = 10_000,
        batch_size: int = 256,
        tau: float = 0.005,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 1,
        gradient_steps: int = 1,
        ent_coef: float = 0.2,
        kl_coef: float = 1.0,
        tsallis_q: float = 1.0,
        old_policy_update_interval: int = 1000,
        policy_reg_coef: float = 1e-3,
        action_noise: ActionNoise | None = None,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        optimize_memory_usage: bool = False,
        target_update_interval: int = 1,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ):
        super().__init__(
            policy,
            env,
            learning_rate,
            buffer_size,
            learning_starts,
            batch_size,
            tau,
            gamma,
            train_freq,
            gradient_steps,
            action_noise,
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            optimize_memory_usage=optimize_memory_usage,
            policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            device=device,
            seed=seed,
            supported_action_spaces=(spaces.Box,),
            support_multi_env=True,
        )
        if not isinstance(ent_coef, (int, float)) or ent_coef < 0:
            raise ValueError(f"ent_coef (lambda) must be a non-negative number, got {ent_coef!r}")
        if not 1.0 <= tsallis_q <= 2.0:
            raise ValueError(f"tsallis_q must be in [1, 2] (1 = Shannon entropy), got {tsallis_q}")
        if old_policy_update_interval < 1:
            raise ValueError(f"old_policy_update_interval must be >= 1, got {old_policy_update_interval}")
        self.ent_coef = float(ent_coef)
        self.kl_coef = float(kl_coef)
        self.tsallis_q = float(tsallis_q)
        self.old_policy_update_interval = int(old_policy_update_interval)
        self.policy_reg_coef = float(policy_reg_coef)
        self.target_update_interval = target_update_interval
        self._last_old_policy_update = 0
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        super()._setup_model()
        self._create_aliases()

    def _create_aliases(self) -> None:
        self.actor = self.policy.actor
        self.old_actor = self.policy.old_actor
        self.critic = self.policy.critic
        self.critic_target = self.policy.critic_target

    def _log_prob(self, distribution: Any, actions: th.Tensor, gaussian_actions: th.Tensor) -> th.Tensor:
        """log pi(a|s) of tanh-squashed actions under a parameterised SB3 squashed Gaussian (the q-log when
        tsallis_q != 1), shape (B,)."""
        if self.tsallis_q == 1.0:
            return distribution.log_prob(actions, gaussian_actions)
        per_dim = distribution.distribution.log_prob(gaussian_actions) - th.log(1.0 - actions.pow(2) + _TANH_EPS)
        return log_q(per_dim.exp(), 2.0 - self.tsallis_q).sum(dim=-1)

    def _sample_with_log_prob(self, observations: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor, th.Tensor]:
        """a ~ pi_theta (reparameterised), its pre-tanh value, log pi_theta(a|s), and the regulariser."""
        mean, log_std, _ = self.actor.get_action_dist_params(observations)
        # actions_from_params parameterises actor.action_dist once; the log-prob reuses it.
        actions = self.actor.action_dist.actions_from_params(mean, log_std)
        gaussian_actions = self.actor.action_dist.gaussian_actions
        assert gaussian_actions is not None
        log_prob = self._log_prob(self.actor.action_dist, actions, gaussian_actions)
        regulariser = mean.pow(2).mean() + log_std.pow(2).mean()
        return actions, gaussian_actions, log_prob, regulariser

    def _old_log_prob(self, observations: th.Tensor, actions: th.Tensor, gaussian_actions: th.Tensor) -> th.Tensor:
        """log pi_k(a|s) at the current policy's sampled actions; gradient flows through the actions only."""
        mean, log_std, _ = self.old_actor.get_action_dist_params(observations)
        distribution = self.old_actor.action_dist.proba_distribution(mean, log_std)
        return self._log_prob(distribution, actions, gaussian_actions)

    def maybe_refresh_old_policy(self) -> bool:
        """pi_k <- pi_theta once ``old_policy_update_interval`` env steps have passed since the last refresh."""
        if self.num_timesteps - self._last_old_policy_update >= self.old_policy_update_interval:
            self.policy.refresh_old_actor()
            self._last_old_policy_update = self.num_timesteps
            return True
        return False

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        """``gradient_steps`` updates of the critics (soft Bellman) and the actor (mirror-descent step)."""
        self.policy.set_training_mode(True)
        self._update_learning_rate([self.actor.optimizer, self.critic.optimizer])
        self.maybe_refresh_old_policy()
        ent_coef, kl_coef, q_prime = self.ent_coef, self.kl_coef, self.tsallis_q

        actor_losses, critic_losses, kls, log_probs = [], [], [], []
        for gradient_step in range(gradient_steps):
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma

            with th.no_grad():
                next_actions, _, next_log_prob, _ = self._sample_with_log_prob(replay_data.next_observations)
                next_q = th.cat(self.critic_target(replay_data.next_observations, next_actions), dim=1)
                next_q = th.min(next_q, dim=1, keepdim=True).values - ent_coef * next_log_prob.reshape(-1, 1)
                target_q = replay_data.rewards + (1 - replay_data.dones) * discounts * next_q

            current_q = self.critic(replay_data.observations, replay_data.actions)
            critic_loss = 0.5 * sum(F.mse_loss(q, target_q) for q in current_q)
            assert isinstance(critic_loss, th.Tensor)
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()

            actions, gaussian_actions, log_prob, regulariser = self._sample_with_log_prob(replay_data.observations)
            old_log_prob = self._old_log_prob(replay_data.observations, actions, gaussian_actions)
            q_pi = th.min(th.cat(self.critic(replay_data.observations, actions), dim=1), dim=1).values
            actor_loss = (kl_coef * log_prob + q_prime * (ent_coef - kl_coef) * old_log_prob - q_pi).mean()
            actor_loss = actor_loss + self.policy_reg_coef * regulariser
            self.actor.optimizer.zero_grad()
            actor_loss.backward()
            self.actor.optimizer.step()

            if gradient_step % self.target_update_interval == 0:
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)

            actor_losses.append(actor_loss.item())
            critic_losses.append(critic_loss.item())
            kls.append((log_prob - old_log_prob).mean().item())
            log_probs.append(log_prob.mean().item())

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/actor_loss", np.mean(actor_losses))
        self.logger.record("train/critic_loss", np.mean(critic_losses))
        self.logger.record("train/kl", np.mean(kls))
        self.logger.record("train/entropy", -np.mean(log_probs))
        self.logger.record("train/ent_coef", ent_coef)
        self.logger.record("train/kl_coef", kl_coef)
        self.logger.record("train/old_policy_age", self.num_timesteps - self._last_old_policy_update)

    def _setup_learn(
        self,
        total_timesteps: int,
        callback: Any = None,
        reset_num_timesteps: bool = True,
        tb_log_name: str = "run",
        progress_bar: bool = False,
    ) -> tuple[int, Any]:
        if reset_num_timesteps:
            # num_timesteps restarts at 0: restart the refresh clock too, or pi_k would stay frozen
            # until num_timesteps caught up with the previous run's last refresh.
            self._last_old_policy_update = 0
        return super()._setup_learn(total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar)

    def learn(
        self: SelfOffPolicyMDPO,
        total_timesteps: int,
        callback: Any = None,
        log_interval: int = 4,
        tb_log_name: str = "OffPolicyMDPO",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfOffPolicyMDPO:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "actor", "old_actor", "critic", "critic_target"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        return ["policy", "actor.optimizer", "critic.optimizer"], []


if __name__ == "__main__":
    from rl.cli import main

    sys.exit(main("mdpo_off"))
