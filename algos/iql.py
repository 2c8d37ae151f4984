"""IQL: Implicit Q-Learning (Kostrikov, Nair & Levine, ICLR 2022).

"Offline Reinforcement Learning with Implicit Q-Learning", https://arxiv.org/abs/2110.06169.
Defaults follow the paper's locomotion setting as the authors' code runs it (ikostrikov/implicit_q_learning:
configs/mujoco_config.py, learner.py, train_offline.py); CORL's algorithms/offline/iql.py and
algorithms/finetune/iql.py were read for the PyTorch forms and for offline-to-online.

    python -m algos.iql --dataset halfcheetah-medium-v2 -n 100000
"""

from __future__ import annotations

import math
import sys
import warnings
from collections import defaultdict
from typing import Any, ClassVar

import numpy as np
import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.noise import ActionNoise, NormalActionNoise
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy, ContinuousCritic
from stable_baselines3.common.type_aliases import GymEnv, ReplayBufferSamples, Schedule
from stable_baselines3.common.utils import polyak_update, update_learning_rate

from algos.iql_policies import LOG_STD_MAX, LOG_STD_MIN, IQLActor, IQLPolicy, MlpPolicy, ValueNetwork
from rl.datasets import OfflineDataset
from rl.offline import OfflineAlgorithmMixin, episode_returns, return_range_scale

EXP_ADV_MAX = 100.0
"""Clip of the advantage weights ``exp(beta * A)`` (the authors' actor.py, CORL's ``EXP_ADV_MAX``)."""
RETURN_RANGE_SCALE = 1000.0
"""Locomotion rewards are multiplied by ``1000 / (max episode return - min episode return)``."""
ACTOR_LR_SCHEDULES = ("cosine", "constant")


def expectile_loss(diff: th.Tensor, expectile: float) -> th.Tensor:
    """Asymmetric squared loss ``|expectile - 1(diff < 0)| * diff^2``, elementwise (the paper's L_2^tau)."""
    weight = th.abs(expectile - (diff < 0).to(diff.dtype))
    return weight * diff.pow(2)


def advantage_weights(advantage: th.Tensor, beta: float, max_weight: float = EXP_ADV_MAX) -> th.Tensor:
    """AWR weights ``min(exp(beta * advantage), max_weight)``."""
    return th.exp(beta * advantage).clamp(max=max_weight)


def cosine_decay(progress: float) -> float:
    """``0.5 * (1 + cos(pi * progress))``: 1 at the start of the run, 0 at its end (optax's cosine_decay_schedule)."""
    return 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))


class IQL(OfflineAlgorithmMixin, OffPolicyAlgorithm):
    """Implicit Q-Learning, offline and offline-to-online.

    Each gradient step, on a minibatch (s, a, r, s', done) of the replay buffer, in the authors' order
    (learner.py ``_update_jit``):

    1. V: expectile regression on the smaller target Q, ``L_V = E[L_2^tau(min_i Q'_i(s, a) - V(s))]``
       with ``L_2^tau(u) = |tau - 1(u < 0)| u^2``;
    2. actor: advantage-weighted regression with the updated V,
       ``L_pi = -E[min(exp(beta (min_i Q'_i(s, a) - V(s))), 100) log pi(a | s)]``;
    3. Q: ``L_Q = sum_i E[(Q_i(s, a) - r - gamma (1 - done) V(s'))^2]`` with the updated V;
    4. target Q: Polyak averaging with ``tau``.

    A variant changes this update only through hooks: :meth:`_pre_actor_updates` (an update between V's and
    the actor's, and per-sample conditions of the actor), :meth:`_advantage_weights` and
    :meth:`_actor_regression_loss` (:class:`~algos.famo2o.FamO2O` conditions its universal policy on a beta
    per sample and trains its balance model there).

    The actor is the authors' locomotion policy: a Gaussian with ``tanh`` on its mean and a
    state-independent log-std (not a tanh-squashed distribution); ``deterministic_actor=True`` gives
    CORL's deterministic variant (squared error instead of the log-likelihood). ``predict`` with
    ``deterministic=True`` returns the mean action, otherwise a Gaussian sample; both clipped to the action
    space. The actor's learning rate follows a cosine decay to 0 over the ``learn_offline`` run (optax's
    ``cosine_decay_schedule(-lr, max_steps)`` in learner.py, CORL's ``CosineAnnealingLR``): it reads SB3's
    progress through the run's ``total_timesteps``, so a run resumed with ``reset_num_timesteps=False``
    continues the same curve.

    Data: states are standardised with the dataset's mean and std (CORL's ``normalize=True``), and rewards
    are multiplied by ``1000 / (max - min)`` of the dataset's episode returns (the authors' ``normalize`` for
    hopper, walker2d and halfcheetah, train_offline.py); AntMaze used ``normalize_reward=False,
    reward_bias=-1``.

    Online (``learn`` after ``learn_offline``, as CORL's finetune/iql.py): the same losses over the buffer
    the env's transitions are appended to, sampled uniformly with the dataset; the stochastic actor
    explores by sampling, a deterministic one with Gaussian noise of std ``expl_noise`` (0.03); online
    rewards get the same scale; time-limit ends are not terminal. The finetune script changes nothing
    else (for AntMaze, expectile 0.9 and beta 10 from its config).

    Built on SB3's OffPolicyAlgorithm rather than SAC: SAC's actor is a tanh-squashed Gaussian with a
    state-dependent std, its update maximises an entropy-regularised Q and it has no V; IQL shares only the
    twin critic, which :class:`~algos.iql_policies.IQLPolicy` takes from SB3 (``ContinuousCritic``).

    Deviations:

    - One ``learning_rate`` for V, Q and the actor (the paper's 3e-4 for all three).
    - Online, the actor's learning rate is constant: the authors' finetuning config has no decay
      (configs/antmaze_finetune_config.py ``opt_decay_schedule = None``), while CORL's finetune keeps
      stepping ``CosineAnnealingLR`` past the offline steps, so its rate climbs back from 0.
    - Networks have PyTorch's default initialisation, as in CORL (the authors use orthogonal init).
    - CORL computes V(s') and the advantage before the V step and averages the two Q losses; this follows
      the authors (updated V in both, summed losses).
    - Dataset actions are clipped to the action space, not to ``1 - 1e-5`` (only a squashed Gaussian
      needs that).

    :param policy: policy alias or class (``MlpPolicy``)
    :param env: the env to evaluate and fine-tune in
    :param dataset: offline data (an :class:`~rl.datasets.OfflineDataset` or a spec for ``load_dataset``)
    :param expectile: tau of the expectile regression of V (locomotion 0.7, AntMaze 0.9)
    :param beta: inverse temperature of the advantage weights (locomotion 3.0, AntMaze 10.0)
    :param exp_adv_max: upper clip of the advantage weights ``exp(beta * A)`` (100)
    :param deterministic_actor: deterministic actor trained by weighted squared error (CORL's option)
    :param actor_dropout: dropout in the actor's hidden layers (None for locomotion; 0.1 for Kitchen/Adroit)
    :param actor_lr_schedule: ``"cosine"`` (decay to 0 over each ``learn_offline`` run) or ``"constant"``
    :param normalize_observations: standardise observations with the dataset's statistics
    :param normalize_reward: scale rewards by ``1000 / (max - min)`` of the dataset's episode returns
    :param reward_bias: added to the (scaled) rewards (-1 for AntMaze)
    :param expl_noise: std of the Gaussian exploration noise online for the deterministic actor (0.03)
    :param learning_rate: Adam learning rate of V, Q and the actor (3e-4)
    :param buffer_size: replay buffer capacity: the dataset plus the online steps
    :param learning_starts: env steps of random actions online before learning (0: start from the
        offline policy)
    :param batch_size: minibatch size (256)
    :param tau: target Q smoothing coefficient (0.005)
    :param gamma: discount factor (0.99)
    :param train_freq: online, update every ``train_freq`` env steps
    :param gradient_steps: online, gradient steps per update (1)
    :param action_noise: exploration noise added online (default: see ``expl_noise``)
    :param replay_buffer_class: SB3 replay buffer class
    :param replay_buffer_kwargs: its keyword arguments
    :param policy_kwargs: keyword arguments of the policy (``net_arch``, ``activation_fn``, ...)
    :param stats_window_size: episodes averaged in the rollout logs
    :param tensorboard_log: tensorboard log folder
    :param verbose: 0 silent, 1 info, 2 debug
    :param seed: random seed
    :param device: torch device
    :param _init_setup_model: build the networks at construction (False inside ``load``)
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": MlpPolicy}
    policy: IQLPolicy
    actor: IQLActor
    critic: ContinuousCritic
    critic_target: ContinuousCritic
    value_net: ValueNetwork

    def __init__(
        self,
        policy: str | type[IQLPolicy],
        env: GymEnv | str | None,
        dataset: OfflineDataset | str | None = None,
        expectile: float = 0.7,
        beta: float = 3.0,
        exp_adv_max: float = EXP_ADV_MAX,
        deterministic_actor: bool = False,
        actor_dropout: float | None = None,
        actor_lr_schedule: str = "cosine",
        normalize_observations: bool = True,
        normalize_reward: bool = True,
        reward_bias: float = 0.0,
        expl_noise: float = 0.03,
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
        policy_kwargs: dict[str, Any] | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        if not 0.0 < expectile < 1.0:
            raise ValueError(f"expectile must lie in (0, 1) (the paper uses 0.7 for locomotion), got {expectile}.")
        if beta < 0:
            raise ValueError(f"beta must be >= 0 (0 is behaviour cloning; the paper uses 3.0), got {beta}.")
        if exp_adv_max <= 0:
            raise ValueError(f"exp_adv_max must be positive (the authors clip at 100), got {exp_adv_max}.")
        if actor_lr_schedule not in ACTOR_LR_SCHEDULES:
            raise ValueError(f"actor_lr_schedule must be one of {ACTOR_LR_SCHEDULES}, got {actor_lr_schedule!r}.")
        if actor_dropout is not None and not 0.0 <= actor_dropout < 1.0:
            raise ValueError(f"actor_dropout must lie in [0, 1) or be None, got {actor_dropout}.")
        self.expectile = expectile
        self.beta = beta
        self.exp_adv_max = exp_adv_max
        self.deterministic_actor = deterministic_actor
        self.actor_dropout = actor_dropout
        self.actor_lr_schedule = actor_lr_schedule
        self.normalize_reward = normalize_reward
        self.expl_noise = expl_noise
        policy_kwargs = self._init_offline(dataset, normalize_observations, policy_kwargs)
        self.reward_bias = reward_bias
        policy_kwargs.setdefault("net_arch", [256, 256])
        policy_kwargs.update(deterministic_actor=deterministic_actor, actor_dropout=actor_dropout)
        super().__init__(
            policy, env, learning_rate=learning_rate, buffer_size=buffer_size, learning_starts=learning_starts,
            batch_size=batch_size, tau=tau, gamma=gamma, train_freq=train_freq, gradient_steps=gradient_steps,
            action_noise=action_noise, replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs, policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size, tensorboard_log=tensorboard_log, verbose=verbose, device=device,
            seed=seed, sde_support=False, supported_action_spaces=(spaces.Box,),
        )
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        super()._setup_model()
        self.actor = self.policy.actor
        self.critic = self.policy.critic
        self.critic_target = self.policy.critic_target
        self.value_net = self.policy.value_net
        if self.action_noise is None and self.deterministic_actor and self.expl_noise > 0:
            dim = int(np.prod(self.action_space.shape))
            self.action_noise = NormalActionNoise(np.zeros(dim), self.expl_noise * np.ones(dim))
        self._setup_offline()

    def _on_offline_data(self, dataset: OfflineDataset) -> None:
        """Reward scale ``1000 / (max - min)`` of the dataset's episode returns (train_offline.py ``normalize``)."""
        if not self.normalize_reward:
            return
        scale = return_range_scale(dataset, RETURN_RANGE_SCALE)
        if scale is None:
            returns = episode_returns(dataset)
            warnings.warn(
                f"normalize_reward=True scales rewards by 1000 / (max - min episode return), but the "
                f"{len(returns)} episode(s) of {dataset.name!r} all return {returns.max():.4g}; rewards are left "
                "unscaled. Pass normalize_reward=False to silence this.", stacklevel=3,
            )
            self.reward_scale = 1.0
            return
        self.reward_scale = scale

    def _actor_learning_rate(self) -> float:
        """The learning rate, times the cosine decay over the ``learn_offline`` run when that schedule is on."""
        learning_rate = self.lr_schedule(self._current_progress_remaining)
        if self.in_offline_phase and self.actor_lr_schedule == "cosine":
            learning_rate *= cosine_decay(1.0 - self._current_progress_remaining)
        return learning_rate

    def _value_step(self, observations: th.Tensor, actions: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """One expectile-regression step of V(s) on ``min_i Q'_i(s, a)``; returns (target Q, V before, loss)."""
        with th.no_grad():
            target_q = self._target_q(observations, actions)
        value = self.value_net(observations)
        value_loss = expectile_loss(target_q - value, self.expectile).mean()
        self.value_net.optimizer.zero_grad()
        value_loss.backward()
        self.value_net.optimizer.step()
        return target_q, value, value_loss

    def _critic_step(
        self, data: ReplayBufferSamples, rewards: th.Tensor, discounts: th.Tensor | float
    ) -> tuple[tuple[th.Tensor, ...], th.Tensor]:
        """One step of both Q towards ``r + gamma (1 - done) V(s')`` (the updated V), then the Polyak target."""
        with th.no_grad():
            q_target = rewards + (1 - data.dones) * discounts * self.value_net(data.next_observations)
        current_q = self.critic(data.observations, data.actions)
        critic_loss = sum(F.mse_loss(q, q_target) for q in current_q)
        assert isinstance(critic_loss, th.Tensor)
        self.critic.optimizer.zero_grad()
        critic_loss.backward()
        self.critic.optimizer.step()
        polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
        return current_q, critic_loss

    def _target_q(self, observations: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """``min_i Q'_i(s, a)`` of the target critics, shape (batch, 1)."""
        q_values = th.cat(self.critic_target(observations, actions), dim=1)
        return th.min(q_values, dim=1, keepdim=True).values

    def _pre_actor_updates(self, observations: th.Tensor) -> tuple[th.Tensor | None, dict[str, th.Tensor]]:
        """Hook between V's step and the actor's: any extra update there, then the actor's per-sample conditions.

        Returns the conditions the actor's loss is computed with (:meth:`_advantage_weights`,
        :meth:`_actor_regression_loss`) and the extra update's logs. IQL makes no update here and its actor takes
        no conditions. FamO2O steps its balance model and that model's temperature here (with V updated, the
        actor and critics not yet), and returns the universal policy's per-sample betas.
        """
        return None, {}

    def _advantage_weights(self, advantage: th.Tensor, conditions: th.Tensor | None) -> th.Tensor:
        """Hook: the actor's per-sample AWR weights ``min(exp(beta * A), exp_adv_max)``, shape (batch, 1).

        IQL: one inverse temperature ``beta`` for every sample. FamO2O: each sample's own beta (``conditions``).
        """
        return advantage_weights(advantage, self.beta, self.exp_adv_max)

    def _actor_regression_loss(
        self, observations: th.Tensor, actions: th.Tensor, conditions: th.Tensor | None
    ) -> th.Tensor:
        """Hook: the per-sample loss the advantage weights multiply, shape (batch, 1).

        IQL: ``-log pi(a | s)``, or ``||pi(s) - a||^2`` for the deterministic actor. FamO2O: ``-log pi_u(a | s, beta)``
        of the universal policy at each sample's beta (``conditions``).
        """
        if self.deterministic_actor:
            return (self.actor(observations, deterministic=True) - actions).pow(2).sum(dim=-1, keepdim=True)
        return -self.actor.log_prob(observations, actions)

    def train(self, gradient_steps: int, batch_size: int = 256) -> None:
        self.policy.set_training_mode(True)
        self._update_learning_rate([self.critic.optimizer, self.value_net.optimizer])
        actor_learning_rate = self._actor_learning_rate()
        update_learning_rate(self.actor.optimizer, actor_learning_rate)
        logs: dict[str, list[float]] = defaultdict(list)
        for _ in range(gradient_steps):
            self._n_updates += 1
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            discounts = data.discounts if data.discounts is not None else self.gamma
            rewards = self.scale_rewards(data.rewards)
            observations, actions = data.observations, data.actions

            # 1. V(s): expectile regression on min_i Q'_i(s, a).
            target_q, value, value_loss = self._value_step(observations, actions)
            # Any update between V's and the actor's (none in IQL), and the actor's conditions (none in IQL).
            conditions, extra_logs = self._pre_actor_updates(observations)

            # 2. Actor: advantage-weighted regression, A = min_i Q'_i(s, a) - V(s) with the updated V.
            with th.no_grad():
                advantage = target_q - self.value_net(observations)
                weights = self._advantage_weights(advantage, conditions)
            actor_loss = (weights * self._actor_regression_loss(observations, actions, conditions)).mean()
            self.actor.optimizer.zero_grad()
            actor_loss.backward()
            self.actor.optimizer.step()

            # 3. Q(s, a) -> r + gamma (1 - done) V(s'), with the updated V; 4. target Q.
            current_q, critic_loss = self._critic_step(data, rewards, discounts)

            step_logs = {
                "value_loss": value_loss, "actor_loss": actor_loss, "critic_loss": critic_loss, "v": value.mean(),
                "q": th.cat(current_q, dim=1).mean(), "advantage": advantage.mean(), "weights": weights.mean(),
                **extra_logs,
            }
            values = th.stack([item.detach().reshape(()).float() for item in step_logs.values()]).tolist()  # one sync
            for key, item in zip(step_logs, values):
                logs[key].append(item)

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/actor_learning_rate", actor_learning_rate)
        for key, items in logs.items():
            self.logger.record(f"train/{key}", float(np.mean(items)))
        if self.actor.log_std is not None:
            std = self.actor.log_std.detach().clamp(LOG_STD_MIN, LOG_STD_MAX).exp()
            self.logger.record("train/std", std.mean().item())

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "actor", "critic", "critic_target", "value_net"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        return ["policy", "actor.optimizer", "critic.optimizer", "value_net.optimizer"], []


if __name__ == "__main__":
    from rl.cli import main

    sys.exit(main("iql"))
