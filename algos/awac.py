"""AWAC: Advantage-Weighted Actor-Critic (Nair, Gupta, Dalal & Levine, 2020).

"AWAC: Accelerating Online Reinforcement Learning with Offline Datasets", https://arxiv.org/abs/2006.09359.
Defaults follow CORL's implementation (tinkoff-ai/CORL algorithms/offline/awac.py and
algorithms/finetune/awac.py, whose D4RL scores are the project's reference); where the authors' code
(rail-berkeley/rlkit, rlkit/torch/sac/awac_trainer.py and examples/awac/mujoco/awac1.py) differs, the
docstring says how.

    python -m algos.awac --dataset halfcheetah-medium-v2 -n 100000
"""

from __future__ import annotations

import sys
from collections import defaultdict
from typing import Any, ClassVar

import numpy as np
import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy, ContinuousCritic
from stable_baselines3.common.type_aliases import GymEnv, Schedule
from stable_baselines3.common.utils import get_parameters_by_name, polyak_update

from algos.awac_policies import AWACPolicy, GaussianActor
from rl.datasets import OfflineDataset
from rl.offline import OfflineAlgorithmMixin

EXP_ADV_MAX = 100.0
"""CORL's clip of the advantage weights (``exp_adv_max`` of ``AdvantageWeightedActorCritic``)."""


class AWAC(OfflineAlgorithmMixin, OffPolicyAlgorithm):
    """AWAC, offline and offline-to-online.

    Every gradient step, on a batch ``(s, a, r, s', d)`` of the buffer (dataset, then dataset plus online
    transitions, sampled uniformly):

    1. Critics: twin Q networks regress on ``r + gamma * (1 - d) * min_i Q'_i(s', a')``, ``a' ~ pi(.|s')``
       drawn from the current actor (there is no target actor), with no entropy term.
    2. Actor: weighted maximum likelihood of the buffer's actions,
       ``-mean(w * log pi(a|s))`` with ``w = min(exp(A / lambda), exp_adv_max)`` and
       ``A = min_i Q_i(s, a) - min_i Q_i(s, a_pi)``, ``a_pi ~ pi(.|s)`` one sample (the value baseline
       ``V(s) = E_pi Q(s, .)`` estimated from one action), all with the just-updated critics and no
       gradient through the weights.
    3. Targets: Polyak averaging of the critics with ``tau``.

    The actor is a Gaussian with a state-independent log-std clamped to [-20, 2] and a linear mean;
    sampled actions are clamped to the action bounds (CORL's ``Actor``, see
    :mod:`algos.awac_policies`). Online (``learn`` after ``learn_offline``) the same update goes on, one
    gradient step per env step, acting with a sample of the policy; ``predict(deterministic=True)`` is the
    mean clipped to the bounds. States are standardised with the dataset's mean and std (+1e-3), as CORL
    does in both scripts; rewards are used as they are (CORL's locomotion configs leave
    ``normalize_reward`` off; for AntMaze CORL subtracts 1 from every reward: set ``reward_bias = -1.0``
    on the model, which :meth:`~rl.offline.OfflineAlgorithmMixin.scale_rewards` applies to every batch).

    Why not SB3's SAC: its actor is a tanh-squashed Gaussian with a state-dependent std, whose
    log-likelihood of dataset actions on the bounds is infinite, and its entropy machinery is unused
    here; so this subclasses OffPolicyAlgorithm with a small policy (:class:`AWACPolicy`) that reuses SB3's
    ``ContinuousCritic`` for the twin critics and their target.

    Deviations and choices:

    - ``awac_lambda`` defaults to 1.0 (CORL's code default and the authors' ``beta`` default); CORL's
      D4RL locomotion configs use 0.3333 and AntMaze/Adroit 0.1 (``algos/hyperparams/awac.yml`` sets
      the locomotion value). The authors' MuJoCo example sweeps ``beta = 2``.
    - Weights: CORL clips ``exp(A / lambda)`` at 100; the authors' trainer instead normalises over the
      batch, ``w = batch_size * softmax(A / beta)`` (``normalize_over_batch=True``), available here as
      ``normalize_weights=True`` (then no clip).
    - Networks: CORL's three hidden layers of 256 for actor and critics (its ``Actor._mlp`` and
      ``Critic._mlp``); the authors use a 4x256 policy with a tanh mean and log-std in [-6, 0], 2x256
      critics, batch 1024, policy weight decay 1e-4, and take the advantage from the critics before
      their update. CORL's batch 256, learning rate 3e-4 and tau 0.005 are the defaults.
    - One Adam optimizer for both critics (CORL has one per critic; Adam being per-parameter, the two
      are the same on the summed loss).
    - SB3 stores actions scaled to [-1, 1] (the env's own actions on D4RL envs) and bootstraps through
      time-limit ends, where D4RL's ``qlearning_dataset`` (used by CORL) drops the timeout flag.

    :param policy: policy alias or class (``MlpPolicy``)
    :param env: the env to evaluate and fine-tune in (None to load a model or train offline only)
    :param dataset: offline data (an :class:`~rl.datasets.OfflineDataset` or a spec for ``load_dataset``)
    :param awac_lambda: temperature lambda of the advantage weights ``exp(A / lambda)`` (1.0)
    :param exp_adv_max: clip of the advantage weights (CORL: 100)
    :param normalize_weights: weights ``batch_size * softmax(A / lambda)`` over the batch instead of the
        clipped exponential (the authors' rlkit default; CORL: False)
    :param normalize_observations: standardise observations with the dataset's statistics (CORL: True)
    :param learning_rate: Adam learning rate of actor and critics (3e-4)
    :param buffer_size: replay buffer capacity: the dataset plus the online steps
    :param learning_starts: env steps of random actions online before learning (0: act with the offline
        policy from the first step, as CORL's finetuning does)
    :param batch_size: minibatch size (256)
    :param tau: target smoothing coefficient (0.005)
    :param gamma: discount factor (0.99)
    :param train_freq: online, update every ``train_freq`` env steps (1)
    :param gradient_steps: online, gradient steps per update (1)
    :param action_noise: extra exploration noise online (None: the policy's own sampling explores)
    :param replay_buffer_class: replay buffer class (None: SB3's ReplayBuffer)
    :param replay_buffer_kwargs: its keyword arguments
    :param optimize_memory_usage: SB3's memory-efficient replay buffer variant
    :param n_steps: n-step returns (1, as in AWAC)
    :param policy_kwargs: policy keyword arguments (``net_arch``, ``log_std_bounds``, ``tanh_mean``, ...)
    :param stats_window_size: episodes averaged in the rollout logs
    :param tensorboard_log: tensorboard log directory
    :param verbose: verbosity level
    :param seed: seed of every random generator
    :param device: torch device
    :param _init_setup_model: build the networks now (False when loading)
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": AWACPolicy}
    policy: AWACPolicy
    actor: GaussianActor
    critic: ContinuousCritic
    critic_target: ContinuousCritic

    def __init__(
        self,
        policy: str | type[AWACPolicy],
        env: GymEnv | str | None,
        dataset: OfflineDataset | str | None = None,
        awac_lambda: float = 1.0,
        exp_adv_max: float = EXP_ADV_MAX,
        normalize_weights: bool = False,
        normalize_observations: bool = True,
        learning_rate: float | Schedule = 3e-4,
        buffer_size: int = 2_000_000,
        learning_starts: int = 0,
        batch_size: int = 256,
        tau: float = 0.005,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 1,
        gradient_steps: int = 1,
        action_noise: ActionNoise | None = None,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        optimize_memory_usage: bool = False,
        n_steps: int = 1,
        policy_kwargs: dict[str, Any] | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        if awac_lambda <= 0:
            raise ValueError(f"awac_lambda must be positive (CORL: 1.0, 0.3333 on locomotion), got {awac_lambda}.")
        if exp_adv_max <= 0:
            raise ValueError(f"exp_adv_max must be positive (CORL: 100), got {exp_adv_max}.")
        self.awac_lambda = awac_lambda
        self.exp_adv_max = exp_adv_max
        self.normalize_weights = normalize_weights
        policy_kwargs = self._init_offline(dataset, normalize_observations, policy_kwargs)
        super().__init__(
            policy, env, learning_rate, buffer_size, learning_starts, batch_size, tau, gamma, train_freq,
            gradient_steps, action_noise, replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs, optimize_memory_usage=optimize_memory_usage, n_steps=n_steps,
            policy_kwargs=policy_kwargs, stats_window_size=stats_window_size, tensorboard_log=tensorboard_log,
            verbose=verbose, device=device, seed=seed, support_multi_env=True, sde_support=False,
            supported_action_spaces=(spaces.Box,),
        )
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        super()._setup_model()
        self._create_aliases()
        self.batch_norm_stats = get_parameters_by_name(self.critic, ["running_"])
        self.batch_norm_stats_target = get_parameters_by_name(self.critic_target, ["running_"])
        self._setup_offline()

    def _create_aliases(self) -> None:
        self.actor = self.policy.actor
        self.critic = self.policy.critic
        self.critic_target = self.policy.critic_target

    def critic_target_q(
        self, next_observations: th.Tensor, rewards: th.Tensor, dones: th.Tensor, discounts: th.Tensor | float
    ) -> th.Tensor:
        """``r + gamma * (1 - d) * min_i Q'_i(s', a')`` with ``a' ~ pi(.|s')``: no entropy term."""
        with th.no_grad():
            next_actions = self.actor(next_observations)
            next_q = th.cat(self.critic_target(next_observations, next_actions), dim=1)
            next_q, _ = th.min(next_q, dim=1, keepdim=True)
            return rewards + (1 - dones) * discounts * next_q

    def advantage_weights(self, observations: th.Tensor, actions: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """Weights of the actor loss and the advantages they come from, shape (batch, 1), no gradient.

        ``A = min_i Q_i(s, a) - min_i Q_i(s, a_pi)`` with one ``a_pi ~ pi(.|s)``; ``w = min(exp(A / lambda),
        exp_adv_max)``, or ``batch_size * softmax(A / lambda)`` with ``normalize_weights``.
        """
        with th.no_grad():
            policy_actions = self.actor(observations)
            v = th.min(th.cat(self.critic(observations, policy_actions), dim=1), dim=1, keepdim=True)[0]
            q = th.min(th.cat(self.critic(observations, actions), dim=1), dim=1, keepdim=True)[0]
            advantages = q - v
            if self.normalize_weights:
                weights = len(advantages) * F.softmax(advantages / self.awac_lambda, dim=0)
            else:
                weights = th.exp(advantages / self.awac_lambda).clamp(max=self.exp_adv_max)
        return weights, advantages

    def train(self, gradient_steps: int, batch_size: int = 256) -> None:
        self.policy.set_training_mode(True)
        self._update_learning_rate([self.actor.optimizer, self.critic.optimizer])
        stats: dict[str, list[float]] = defaultdict(list)
        for _ in range(gradient_steps):
            self._n_updates += 1
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            discounts = data.discounts if data.discounts is not None else self.gamma
            rewards = self.scale_rewards(data.rewards)

            # Critics: TD regression of both Q networks on the clipped double-Q target.
            target_q = self.critic_target_q(data.next_observations, rewards, data.dones, discounts)
            current_q = self.critic(data.observations, data.actions)
            critic_loss = sum(F.mse_loss(q, target_q) for q in current_q)
            assert isinstance(critic_loss, th.Tensor)
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()

            # Actor: advantage-weighted log-likelihood of the buffer's actions.
            weights, advantages = self.advantage_weights(data.observations, data.actions)
            log_prob = self.actor.log_prob(data.observations, data.actions)
            actor_loss = -(log_prob * weights).mean()
            self.actor.optimizer.zero_grad()
            actor_loss.backward()
            self.actor.optimizer.step()

            polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
            polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)

            stats["critic_loss"].append(critic_loss.item())
            stats["actor_loss"].append(actor_loss.item())
            stats["q_value"].append(current_q[0].mean().item())
            stats["advantage"].append(advantages.mean().item())
            stats["weight_mean"].append(weights.mean().item())
            stats["weight_max"].append(weights.max().item())
            if not self.normalize_weights:
                stats["weight_clip_fraction"].append((weights >= self.exp_adv_max).float().mean().item())

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        for key, values in stats.items():
            self.logger.record(f"train/{key}", np.max(values) if key == "weight_max" else np.mean(values))
        self.logger.record("train/std", self.actor.log_std.clamp(*self.actor.log_std_bounds).exp().mean().item())

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "actor", "critic", "critic_target"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        return ["policy", "actor.optimizer", "critic.optimizer"], []


if __name__ == "__main__":
    from rl.cli import main

    sys.exit(main("awac"))
