"""CQL: Conservative Q-Learning, the continuous-action CQL(H) on SAC (Kumar, Zhou, Tucker & Levine, NeurIPS 2020).

"Conservative Q-Learning for Offline Reinforcement Learning", https://arxiv.org/abs/2006.04779.
Defaults follow CORL's implementation (tinkoff-ai/CORL algorithms/offline/cql.py and its D4RL locomotion
configs, whose scores are the project's reference) and, for offline-to-online, algorithms/finetune/cql.py;
where the authors' code (aviralkumar2907/CQL, d4rl/rlkit/torch/sac/cql.py and
d4rl/examples/cql_mujoco_new.py) differs, the docstring says how.

    python -m algos.cql --dataset halfcheetah-medium-v2 -n 100000
"""

from __future__ import annotations

import math
import sys
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch as th
import torch.nn.functional as F
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.type_aliases import GymEnv, Schedule
from stable_baselines3.common.utils import FloatSchedule, polyak_update, update_learning_rate

from algos.cql_policies import CQLPolicy
from rl.datasets import OfflineDataset
from rl.offline import OfflineAlgorithmMixin, return_range_scale

CQL_LOG_ALPHA_INIT = 1.0
"""Initial log of the Lagrange multiplier (CORL's ``log_alpha_prime = Scalar(1.0)``; the authors start at 0)."""

CQL_ALPHA_MAX = 1e6
"""Clamp of the Lagrange multiplier (CORL and the authors: ``clamp(exp(log_alpha_prime), 0, 1e6)``)."""


class CQLPenalty(NamedTuple):
    """The CQL(H) regulariser of each critic on a batch (``n_critics`` first in every shape).

    :param gap: ``mean_s clip(cql_temp * logsumexp_a(Q(s, a) / cql_temp) - Q(s, a_data))``, shape (n_critics,),
        differentiable with respect to the critics
    :param ood_q: the soft maximum (temperature-scaled logsumexp) over the sampled actions, shape (n_critics, batch)
    :param sampled_q: Q of the sampled actions (uniform, then pi(.|s'), then pi(.|s)), shape (n_critics, batch,
        3 * cql_n_actions)
    """

    gap: th.Tensor
    ood_q: th.Tensor
    sampled_q: th.Tensor


@dataclass(frozen=True)
class PolicyConditions:
    """Per-row inputs of a conditioned policy, drawn once per update (see :meth:`CQL.policy_samples`).

    CQL's policy takes none. A subclass with a conditioned policy may add what else its hooks need from the same
    draw (FamO2O: the balance model's sample).

    :param states: at the batch's states (the actor's loss and the penalty's ``pi(.|s)``), shape (batch, ...)
    :param next_states: at its next states (the backup and the penalty's ``pi(.|s')``), shape (batch, ...)
    """

    states: th.Tensor | None = None
    next_states: th.Tensor | None = None


class CQL(OfflineAlgorithmMixin, SAC):
    """CQL(H) on SAC, offline and offline-to-online.

    Every gradient step, on a batch ``(s, a, r, s', d)`` of the buffer (the dataset, then the dataset plus
    online transitions, sampled uniformly), all losses from the parameters before the step (CORL's order):

    1. Entropy temperature: SAC's automatic tuning towards ``target_entropy = -|A|``.
    2. Actor: SAC's ``mean(alpha * log pi(a~|s) - min_i Q_i(s, a~))``, ``a~ ~ pi(.|s)``; during the first
       ``bc_steps`` updates the Q term is replaced by the log-likelihood of the dataset action,
       ``mean(alpha * log pi(a~|s) - log pi(a|s))`` (the authors' ``policy_eval_start`` warm-up).
    3. Critics: ``sum_i MSE(Q_i(s, a), y) + w * gap_i`` with the target
       ``y = r + gamma * (1 - d) * min_i Q'_i(s', a')``, ``a' ~ pi(.|s')`` (no entropy term unless
       ``backup_entropy``; with ``cql_max_target_backup`` the max over ``cql_n_actions`` samples of ``a'``), and
       the CQL(H) gap (:meth:`cql_penalty`)

           gap_i = mean_s [ T * logsumexp_j((Q_i(s, a_j) - log mu(a_j)) / T) - Q_i(s, a) ],

       over ``3 * cql_n_actions`` actions per state: uniform actions on ``[-1, 1]^|A|`` with their log density
       ``-|A| log 2``, actions of ``pi(.|s')`` and of ``pi(.|s)`` with their log-probabilities (no gradient
       through the actions or their densities), ``T = cql_temp``. The weight is ``w = cql_alpha``, or with
       ``cql_lagrange`` ``w = alpha' * cql_alpha`` where ``log alpha'`` is trained to minimise
       ``-alpha' * cql_alpha * (mean_i gap_i - cql_target_action_gap)`` (dual gradient descent: ``alpha'``
       grows while the gap exceeds the threshold).
    4. Targets: Polyak averaging of the critics with ``tau``.

    A variant changes this update only through hooks: :meth:`_update_conditions` (per-row conditions of the
    policy), :meth:`_actor_sample`, :meth:`_actor_q_weight` and :meth:`_extra_updates` (an update after the
    actor's loss), besides :meth:`policy_distribution_params` for the penalty and the backup
    (:class:`~algos.famo2o_cql.FamO2OCQL` conditions its universal policy on a beta per sample and trains its
    balance model there).

    Online (``learn`` after ``learn_offline``) the same update goes on, one gradient step per env step, acting
    with a sample of the policy (CORL's finetune script); the only change is the weight ``cql_alpha_online``
    when given (CORL's ``cql_alpha_online``; its configs keep the offline value). Transitions that end by a
    time limit are not terminal (SB3's ``handle_timeout_termination``, CORL's ``real_done``).

    Defaults (CORL's D4RL locomotion configs, ``configs/offline/cql/{halfcheetah,hopper,walker2d}/*.yaml``):
    ``cql_alpha = 10`` with the Lagrange version off, 10 sampled actions of each kind, temperature 1,
    importance sampling on, no max-target backup, no entropy in the backup, no BC warm-up, policy Adam at
    3e-5 and critics at 3e-4, tau 0.005, batch 256, states standardised with the dataset's mean and std
    (+1e-3), rewards as they are, critics and actor with three hidden layers of 256, CORL's initialisation
    (:mod:`algos.cql_policies`). ``algos/hyperparams/cql.yml`` gives each value's source.

    Where the authors' code differs (d4rl/examples/cql_mujoco_new.py and README): policy learning rate 1e-4
    (the paper's value; README: 1e-4 or 3e-4; CORL's 3e-5 is kept because its locomotion scores, the
    project's reference, were obtained with it), ``min_q_weight`` (``cql_alpha``) 5 or 10 with
    ``lagrange_thresh=-1`` (Lagrange off) on MuJoCo, ``policy_eval_start = 40000`` BC steps, the Lagrange
    multiplier starting at ``alpha' = 1`` and weighting ``min_q_weight * gap - threshold`` (CORL: starts at
    ``e`` and weights ``cql_alpha * (gap - threshold)``), the max backup taking the max over actions per
    critic before the min (CORL, followed here: min over critics, then max), no state normalisation,
    rlkit's networks and initialisation (actor log-std clamped to [-5, 2]).

    Deviations and choices:

    - SB3's squashed Gaussian: the log-likelihood of a dataset action uses SB3's inverse tanh (actions
      clipped to +-(1 - float eps), squash correction with 1e-6), finite on the bounds where CORL's exact
      ``TanhTransform`` is infinite; the actor has separate mean and log-std layers (see
      :mod:`algos.cql_policies`).
    - One Adam optimizer for both critics (CORL and the authors have one per critic; Adam being
      per-parameter, the two are the same on the summed loss). The critic loss is the sum of the two MSEs
      without SB3 SAC's factor 1/2, as in CORL and the authors' code, so ``cql_alpha`` means what it means
      there.
    - The logsumexp is over the ``3 * cql_n_actions`` samples without the ``-log(3 * cql_n_actions)`` of a
      mean (as both reference codes do; a constant, it changes no gradient but shifts the logged gap). With
      the Lagrange version the critic loss leaves out CORL's constant ``-w * cql_target_action_gap``.
    - CORL's offline initialisation (:mod:`algos.cql_policies`) is used in both phases; its finetune script
      initialises every layer of actor and critics orthogonally (gain sqrt(2)) and defaults to two hidden
      critic layers (its AntMaze configs: five), which ``policy_kwargs`` can set (``net_arch``).
    - The penalty's actions are sampled with one actor pass per state (its distribution then sampled
      ``cql_n_actions`` times, as d3rlpy does; CORL runs the actor on the repeated states, which gives the
      same distribution n times over) and their Q values computed in one critic call per critic (the batch
      repeated ``3 * cql_n_actions`` times): the same computation as CORL's, batched.
    - SB3 stores actions scaled to [-1, 1] (the env's own actions on D4RL envs) and bootstraps through
      time-limit ends, where D4RL's ``qlearning_dataset`` (used by CORL) drops the timeout flag.
    - The entropy temperature is learned with ``policy_lr`` as in CORL and the authors' code; the Lagrange
      multiplier with ``learning_rate`` (the critics' rate), also as there.

    :param policy: policy alias or class (``MlpPolicy``: :class:`~algos.cql_policies.CQLPolicy`)
    :param env: the env to evaluate and fine-tune in (None to load a model)
    :param dataset: offline data (an :class:`~rl.datasets.OfflineDataset` or a spec for ``load_dataset``)
    :param cql_alpha: weight of the CQL penalty (CORL's locomotion configs: 10; the authors: 5 or 10)
    :param cql_n_actions: actions sampled per state from each of the uniform, ``pi(.|s)`` and ``pi(.|s')``
        (10), also the number of next actions of the max-target backup
    :param cql_temp: temperature of the logsumexp (1.0)
    :param cql_importance_sample: subtract the log density of each sampled action (CQL(H) with importance
        sampling, the authors' ``min_q_version=3``; True). False: logsumexp of the raw Q values of the sampled
        actions and the dataset action, as CORL does then
    :param cql_lagrange: tune the penalty's weight by dual gradient descent (locomotion: False)
    :param cql_target_action_gap: threshold tau of the Lagrange version (CORL: -1 when off; 0.8 on AntMaze)
    :param cql_max_target_backup: back up ``max_j min_i Q'_i(s', a'_j)`` over ``cql_n_actions`` samples (False)
    :param cql_clip_diff_min: lower clip of the per-state gap (CORL: -inf; -200 in its AntMaze finetuning)
    :param cql_clip_diff_max: upper clip of the per-state gap (inf)
    :param cql_alpha_online: penalty weight in the online phase (None: ``cql_alpha``)
    :param backup_entropy: subtract ``alpha * log pi(a'|s')`` in the target (False, the paper's equation 3)
    :param bc_steps: first updates whose actor loss is the log-likelihood of the dataset actions (CORL: 0;
        the authors: 40000)
    :param normalize_observations: standardise observations with the dataset's statistics (CORL: True)
    :param normalize_reward: set ``reward_scale`` to ``1000 / (max - min)`` of the dataset's episode returns
        (CORL's ``normalize_reward``, its ``modify_reward``; False, as in CORL's locomotion configs except
        hopper-medium-v2's, which turns it on); not with a ``reward_scale`` other than 1
    :param reward_scale: rewards are used as ``reward_scale * r + reward_bias`` (1.0; CORL's AntMaze: 10)
    :param reward_bias: see ``reward_scale`` (0.0; CORL's AntMaze: -5)
    :param policy_lr: Adam learning rate of the actor and of the entropy temperature (CORL: 3e-5)
    :param learning_rate: Adam learning rate of the critics and of the Lagrange multiplier (qf_lr: 3e-4)
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
    :param n_steps: n-step returns (1, as in CQL)
    :param ent_coef: entropy temperature, ``"auto"`` to learn it from 1.0 (CORL: learned, from 1.0)
    :param target_update_interval: update the targets every this many gradient steps (1)
    :param target_entropy: target entropy of the temperature tuning (``"auto"``: ``-|A|``)
    :param stats_window_size: episodes averaged in the rollout logs
    :param tensorboard_log: tensorboard log directory
    :param policy_kwargs: policy keyword arguments (``net_arch``, ``orthogonal_init``, ``log_std_offset``, ...)
    :param verbose: verbosity level
    :param seed: seed of every random generator
    :param device: torch device
    :param _init_setup_model: build the networks now (False when loading)
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": CQLPolicy}
    policy: CQLPolicy
    log_cql_alpha: th.Tensor | None
    cql_alpha_optimizer: th.optim.Adam | None

    def __init__(
        self,
        policy: str | type[CQLPolicy],
        env: GymEnv | str | None,
        dataset: OfflineDataset | str | None = None,
        cql_alpha: float = 10.0,
        cql_n_actions: int = 10,
        cql_temp: float = 1.0,
        cql_importance_sample: bool = True,
        cql_lagrange: bool = False,
        cql_target_action_gap: float = -1.0,
        cql_max_target_backup: bool = False,
        cql_clip_diff_min: float = -np.inf,
        cql_clip_diff_max: float = np.inf,
        cql_alpha_online: float | None = None,
        backup_entropy: bool = False,
        bc_steps: int = 0,
        normalize_observations: bool = True,
        normalize_reward: bool = False,
        reward_scale: float = 1.0,
        reward_bias: float = 0.0,
        policy_lr: float | Schedule = 3e-5,
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
        ent_coef: str | float = "auto",
        target_update_interval: int = 1,
        target_entropy: str | float = "auto",
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        if cql_alpha < 0 or (cql_alpha_online is not None and cql_alpha_online < 0):
            raise ValueError(f"cql_alpha must be >= 0 (CORL: 10 on locomotion), got {cql_alpha}, {cql_alpha_online}.")
        if cql_n_actions < 1:
            raise ValueError(f"cql_n_actions must be >= 1 (the paper: 10), got {cql_n_actions}.")
        if cql_temp <= 0:
            raise ValueError(f"cql_temp must be positive (1.0), got {cql_temp}.")
        if bc_steps < 0:
            raise ValueError(f"bc_steps must be >= 0, got {bc_steps}.")
        self.cql_alpha = cql_alpha
        self.cql_n_actions = cql_n_actions
        self.cql_temp = cql_temp
        self.cql_importance_sample = cql_importance_sample
        self.cql_lagrange = cql_lagrange
        self.cql_target_action_gap = cql_target_action_gap
        self.cql_max_target_backup = cql_max_target_backup
        self.cql_clip_diff_min = cql_clip_diff_min
        self.cql_clip_diff_max = cql_clip_diff_max
        self.cql_alpha_online = cql_alpha_online
        self.backup_entropy = backup_entropy
        self.bc_steps = bc_steps
        self.policy_lr = policy_lr
        policy_kwargs = self._init_offline(dataset, normalize_observations, policy_kwargs)
        if normalize_reward and reward_scale != 1.0:
            raise ValueError(
                f"normalize_reward sets the reward scale from the dataset's returns; got reward_scale={reward_scale} "
                "too: pass one of them"
            )
        self.normalize_reward = normalize_reward
        self.reward_scale = reward_scale
        self.reward_bias = reward_bias
        super().__init__(
            policy, env, learning_rate=learning_rate, buffer_size=buffer_size, learning_starts=learning_starts,
            batch_size=batch_size, tau=tau, gamma=gamma, train_freq=train_freq, gradient_steps=gradient_steps,
            action_noise=action_noise, replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs, optimize_memory_usage=optimize_memory_usage, n_steps=n_steps,
            ent_coef=ent_coef, target_update_interval=target_update_interval, target_entropy=target_entropy,
            stats_window_size=stats_window_size, tensorboard_log=tensorboard_log, policy_kwargs=policy_kwargs,
            verbose=verbose, seed=seed, device=device, _init_setup_model=False,
        )
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        if self.target_entropy == "auto":  # from the action space, so that no env is needed
            self.target_entropy = -float(np.prod(self.action_space.shape))
        super()._setup_model()
        # The actor and the entropy temperature learn at policy_lr (SAC builds them at learning_rate).
        self.policy_lr_schedule = FloatSchedule(self.policy_lr)
        for optimizer in self._policy_optimizers():
            update_learning_rate(optimizer, self.policy_lr_schedule(1))
        self.log_cql_alpha, self.cql_alpha_optimizer = None, None
        if self.cql_lagrange:
            self.log_cql_alpha = th.full((1,), CQL_LOG_ALPHA_INIT, device=self.device).requires_grad_(True)
            self.cql_alpha_optimizer = th.optim.Adam([self.log_cql_alpha], lr=self.lr_schedule(1))
        self._setup_offline()


    def _on_offline_data(self, dataset: OfflineDataset) -> None:
        """With ``normalize_reward``: the scale ``1000 / (max - min)`` of the dataset's episode returns."""
        if not self.normalize_reward:
            return
        scale = return_range_scale(dataset)
        if scale is None:
            warnings.warn(f"normalize_reward=True, but every episode of {dataset.name!r} has the same return: "
                          "rewards are left unscaled. Pass normalize_reward=False to silence this.", stacklevel=3)
        self.reward_scale = 1.0 if scale is None else scale
    def _policy_optimizers(self) -> list[th.optim.Optimizer]:
        return [self.actor.optimizer] + ([self.ent_coef_optimizer] if self.ent_coef_optimizer is not None else [])

    @property
    def is_online(self) -> bool:
        """True once env steps follow the offline updates (``num_timesteps`` counts both)."""
        return self.num_timesteps > self.offline_updates

    def log_likelihood(
        self, observations: th.Tensor, actions: th.Tensor, conditions: th.Tensor | None = None
    ) -> th.Tensor:
        """``log pi(a|s)`` of given actions (in SB3's scaled action space), shape (batch,); ``conditions``: per-row
        inputs of a conditioned policy (see :meth:`policy_distribution_params`)."""
        mean_actions, log_std, kwargs = self.policy_distribution_params(observations, conditions)
        return self.actor.action_dist.proba_distribution(mean_actions, log_std, **kwargs).log_prob(actions)

    def policy_distribution_params(
        self, observations: th.Tensor, conditions: th.Tensor | None = None
    ) -> tuple[th.Tensor, th.Tensor, dict[str, th.Tensor]]:
        """The actor's squashed-Gaussian parameters ``(mean, log_std, kwargs)`` at each state: the one place the
        penalty and the backup call the actor network, so that a subclass with a conditioned policy (FamO2O's
        ``pi(a | s, beta)``) passes its per-row ``conditions`` here and reuses the rest of CQL unchanged."""
        return self.actor.get_action_dist_params(observations)

    def policy_samples(
        self, observations: th.Tensor, conditions: th.Tensor | None = None, n_samples: int = 1
    ) -> tuple[th.Tensor, th.Tensor]:
        """``n_samples`` actions of the current policy per state and their log-probabilities, shapes
        (batch * n, ``|A|``) and (batch * n,), in ``repeat_interleave`` order (a state's samples together).

        The actor runs once per state and the n samples are drawn from that distribution: the same draws as
        running it on the states repeated n times (CORL's ``extend_and_repeat``), without n - 1 identical
        forward passes (d3rlpy's ``sample_n_with_log_prob`` does the same).
        """
        mean_actions, log_std, kwargs = self.policy_distribution_params(observations, conditions)
        if n_samples > 1:
            mean_actions, log_std = (t.repeat_interleave(n_samples, dim=0) for t in (mean_actions, log_std))
            kwargs = {key: t.repeat_interleave(n_samples, dim=0) for key, t in kwargs.items()}
        return self.actor.action_dist.log_prob_from_params(mean_actions, log_std, **kwargs)

    def critic_target_q(
        self,
        next_observations: th.Tensor,
        rewards: th.Tensor,
        dones: th.Tensor,
        discounts: th.Tensor | float,
        ent_coef: th.Tensor,
        next_conditions: th.Tensor | None = None,
    ) -> th.Tensor:
        """``r + gamma * (1 - d) * min_i Q'_i(s', a')``, ``a' ~ pi(.|s')``, shape (batch, 1), no gradient.

        With ``cql_max_target_backup`` the max of ``min_i Q'_i`` over ``cql_n_actions`` samples of ``a'``; with
        ``backup_entropy`` minus ``ent_coef * log pi(a'|s')`` of the action backed up. ``next_conditions``:
        per-row inputs of a conditioned policy (see :meth:`policy_samples`).
        """
        with th.no_grad():
            if self.cql_max_target_backup:
                batch, n = len(next_observations), self.cql_n_actions
                repeated = next_observations.repeat_interleave(n, dim=0)
                next_actions, next_log_prob = self.policy_samples(next_observations, next_conditions, n_samples=n)
                next_q = th.cat(self.critic_target(repeated, next_actions), dim=1).min(dim=1).values.view(batch, n)
                next_q, best = next_q.max(dim=1, keepdim=True)
                next_log_prob = next_log_prob.view(batch, n).gather(1, best)
            else:
                next_actions, next_log_prob = self.policy_samples(next_observations, next_conditions)
                next_q = th.cat(self.critic_target(next_observations, next_actions), dim=1)
                next_q = next_q.min(dim=1, keepdim=True).values
                next_log_prob = next_log_prob.reshape(-1, 1)
            if self.backup_entropy:
                next_q = next_q - ent_coef * next_log_prob
            return rewards + (1 - dones) * discounts * next_q

    def cql_sample_actions(
        self,
        observations: th.Tensor,
        next_observations: th.Tensor,
        conditions: th.Tensor | None = None,
        next_conditions: th.Tensor | None = None,
    ) -> tuple[th.Tensor, th.Tensor]:
        """The penalty's actions and their log densities, shapes (batch, 3n, ``|A|``) and (batch, 3n), no gradient.

        ``n = cql_n_actions`` uniform actions on ``[-1, 1]^|A|`` (log density ``-|A| log 2``), then ``n`` actions of
        ``pi(.|s')`` and ``n`` of ``pi(.|s)`` with their log-probabilities (a conditioned policy gets
        ``next_conditions`` and ``conditions``, see :meth:`policy_samples`).
        """
        batch, n, action_dim = len(observations), self.cql_n_actions, get_action_dim(self.action_space)
        # Float32 like the networks, whatever the observations' dtype (MuJoCo's are float64).
        uniform = th.empty((batch, n, action_dim), device=observations.device).uniform_(-1.0, 1.0)
        uniform_log_density = th.full((batch, n), -action_dim * math.log(2.0), device=observations.device)
        with th.no_grad():
            states = th.cat([next_observations, observations])
            state_conditions = None if conditions is None else th.cat([next_conditions, conditions])
            policy_actions, policy_log_prob = self.policy_samples(states, state_conditions, n_samples=n)
        policy_actions = policy_actions.view(2, batch, n, action_dim)
        policy_log_prob = policy_log_prob.view(2, batch, n)
        actions = th.cat([uniform, policy_actions[0], policy_actions[1]], dim=1)
        log_density = th.cat([uniform_log_density, policy_log_prob[0], policy_log_prob[1]], dim=1)
        return actions, log_density

    def critic_values(self, observations: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """``Q_i(s, a_j)`` of every critic for ``k`` actions per state, (batch, k, ``|A|``) -> (n_critics, batch, k)."""
        batch, k = actions.shape[:2]
        q_values = self.critic(observations.repeat_interleave(k, dim=0), actions.reshape(batch * k, -1))
        return th.stack([q.view(batch, k) for q in q_values])

    def cql_penalty(
        self,
        observations: th.Tensor,
        next_observations: th.Tensor,
        data_q: Sequence[th.Tensor],
        conditions: th.Tensor | None = None,
        next_conditions: th.Tensor | None = None,
    ) -> CQLPenalty:
        """The CQL(H) gap of each critic: soft maximum of Q over sampled actions minus Q of the dataset action.

        ``gap_i = mean_s clip(T * logsumexp_j((Q_i(s, a_j) - log mu(a_j)) / T) - Q_i(s, a))`` with the actions of
        :meth:`cql_sample_actions` (``T = cql_temp``, clip to ``[cql_clip_diff_min, cql_clip_diff_max]``).
        Without ``cql_importance_sample`` the logsumexp is of the raw Q values of the sampled actions and of
        the dataset action. ``data_q`` holds each critic's ``Q_i(s, a)``, shape (batch, 1).
        """
        actions, log_density = self.cql_sample_actions(observations, next_observations, conditions, next_conditions)
        sampled_q = self.critic_values(observations, actions)
        data_q = th.stack([q.reshape(-1) for q in data_q])
        if self.cql_importance_sample:
            logits = sampled_q - log_density
        else:
            logits = th.cat([sampled_q, data_q.unsqueeze(-1)], dim=-1)
        ood_q = th.logsumexp(logits / self.cql_temp, dim=-1) * self.cql_temp
        gap = (ood_q - data_q).clamp(self.cql_clip_diff_min, self.cql_clip_diff_max).mean(dim=1)
        return CQLPenalty(gap=gap, ood_q=ood_q, sampled_q=sampled_q)

    def cql_weight(self) -> th.Tensor:
        """The penalty's weight, no gradient: ``cql_alpha`` (online: ``cql_alpha_online``), times alpha' if Lagrange."""
        alpha = self.cql_alpha_online if self.is_online and self.cql_alpha_online is not None else self.cql_alpha
        weight = th.tensor(float(alpha), device=self.device)
        if self.log_cql_alpha is not None:
            weight = weight * self.log_cql_alpha.detach().exp().clamp(0.0, CQL_ALPHA_MAX).squeeze()
        return weight

    def cql_alpha_loss(self, gap: th.Tensor) -> th.Tensor:
        """Lagrange loss ``-alpha' * cql_alpha * (mean_i gap_i - cql_target_action_gap)``; trains log alpha' only."""
        assert self.log_cql_alpha is not None
        alpha = self.cql_alpha_online if self.is_online and self.cql_alpha_online is not None else self.cql_alpha
        alpha_prime = self.log_cql_alpha.exp().clamp(0.0, CQL_ALPHA_MAX)
        return -(alpha_prime * alpha * (gap.detach().mean() - self.cql_target_action_gap)).squeeze()

    def _min_q(self, observations: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """``min_i Q_i(s, a)`` of the current critics, shape (batch, 1)."""
        return th.cat(self.critic(observations, actions), dim=1).min(dim=1, keepdim=True).values

    def _update_conditions(self, observations: th.Tensor, next_observations: th.Tensor) -> PolicyConditions:
        """Hook, first in every update: the policy's per-row conditions at the batch's states and next states.

        CQL's policy takes none. FamO2O draws here the balance model's beta(s) (with gradient, for its loss), the
        universal policy's betas (uniform offline, beta(s) online) and beta(s') (no gradient).
        """
        return PolicyConditions()

    def _actor_sample(self, observations: th.Tensor, conditions: th.Tensor | None) -> tuple[th.Tensor, th.Tensor]:
        """Hook: a reparameterised action of the policy at each state and its log-probability, shapes (batch,
        ``|A|``) and (batch,), for the actor's and the entropy temperature's losses. CQL: SAC's actor; FamO2O: the
        universal policy at the rows' betas (``conditions``)."""
        return self.actor.action_log_prob(observations)

    def _actor_q_weight(self, conditions: th.Tensor | None) -> th.Tensor | float:
        """Hook: the weight ``w`` of Q in the actor's loss ``alpha log pi(a~|s) - w min_i Q_i(s, a~)``.

        CQL: SAC's 1. FamO2O: each sample's beta (``conditions``), which weighs policy improvement against the
        entropy and CQL's conservatism.
        """
        return 1.0

    def _extra_updates(
        self, observations: th.Tensor, conditions: PolicyConditions, behaviour_cloning: bool
    ) -> dict[str, th.Tensor]:
        """Hook after the actor's loss and before the critics': an update of networks outside CQL's losses, and
        its logs.

        It runs before any of CQL's steps, so that a loss through the actor or the critics sees their parameters
        before this update's step; it must not step them. CQL: none. FamO2O: the balance model's step (not
        during the BC warm-up) and the statistics of beta.
        """
        return {}

    def train(self, gradient_steps: int, batch_size: int = 256) -> None:
        self.policy.set_training_mode(True)
        q_optimizers = [self.critic.optimizer]
        if self.cql_alpha_optimizer is not None:
            q_optimizers.append(self.cql_alpha_optimizer)
        self._update_learning_rate(q_optimizers)
        policy_lr = self.policy_lr_schedule(self._current_progress_remaining)
        for optimizer in self._policy_optimizers():
            update_learning_rate(optimizer, policy_lr)
        self.logger.record("train/policy_learning_rate", policy_lr)

        logs: dict[str, list[float]] = defaultdict(list)
        for _ in range(gradient_steps):
            self._n_updates += 1
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            discounts = data.discounts if data.discounts is not None else self.gamma
            rewards = self.scale_rewards(data.rewards)
            observations, next_observations = data.observations, data.next_observations
            conditions = self._update_conditions(observations, next_observations)

            # Entropy temperature (SAC): its value before this step weights every loss below.
            actions_pi, log_prob = self._actor_sample(observations, conditions.states)
            log_prob = log_prob.reshape(-1, 1)
            ent_coef_loss = None
            if self.ent_coef_optimizer is not None and self.log_ent_coef is not None:
                ent_coef = th.exp(self.log_ent_coef.detach())
                ent_coef_loss = -(self.log_ent_coef * (log_prob + self.target_entropy).detach()).mean()
            else:
                ent_coef = self.ent_coef_tensor

            # Actor: SAC's loss, or the log-likelihood of the dataset actions during the BC warm-up.
            behaviour_cloning = self._n_updates <= self.bc_steps
            if behaviour_cloning:
                log_likelihood = self.log_likelihood(observations, data.actions, conditions.states).reshape(-1, 1)
                actor_loss = (ent_coef * log_prob - log_likelihood).mean()
            else:
                q_pi = self._min_q(observations, actions_pi)
                actor_loss = (ent_coef * log_prob - self._actor_q_weight(conditions.states) * q_pi).mean()
            extra_logs = self._extra_updates(observations, conditions, behaviour_cloning)

            # Critics: TD regression plus the weighted CQL(H) gap.
            target_q = self.critic_target_q(
                next_observations, rewards, data.dones, discounts, ent_coef, next_conditions=conditions.next_states
            )
            current_q = self.critic(observations, data.actions)
            td_loss = sum(F.mse_loss(q, target_q) for q in current_q)
            assert isinstance(td_loss, th.Tensor)
            penalty = self.cql_penalty(
                observations, next_observations, current_q, conditions=conditions.states,
                next_conditions=conditions.next_states,
            )
            cql_weight = self.cql_weight()
            critic_loss = td_loss + cql_weight * penalty.gap.sum()

            if ent_coef_loss is not None and self.ent_coef_optimizer is not None:
                self.ent_coef_optimizer.zero_grad()
                ent_coef_loss.backward()
                self.ent_coef_optimizer.step()
            cql_alpha_loss = None
            if self.cql_alpha_optimizer is not None:
                cql_alpha_loss = self.cql_alpha_loss(penalty.gap)
                self.cql_alpha_optimizer.zero_grad()
                cql_alpha_loss.backward()
                self.cql_alpha_optimizer.step()
            self.actor.optimizer.zero_grad()
            actor_loss.backward()
            self.actor.optimizer.step()
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()

            if self._n_updates % self.target_update_interval == 0:
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)

            # Mean Q1 of the uniform actions, of pi(.|s') and of pi(.|s) at s.
            q_sampled = penalty.sampled_q[0].unflatten(1, (3, self.cql_n_actions)).mean(dim=(0, 2))
            step_logs = {
                "ent_coef": ent_coef, "actor_loss": actor_loss, "log_pi": log_prob.mean(), "critic_loss": critic_loss,
                "td_loss": td_loss, "cql_gap": penalty.gap.mean(), "cql_weight": cql_weight,
                "q_data": current_q[0].mean(), "q_target": target_q.mean(), "q_random": q_sampled[0],
                "q_next_actions": q_sampled[1], "q_policy": q_sampled[2], **extra_logs,
            }
            if ent_coef_loss is not None:
                step_logs["ent_coef_loss"] = ent_coef_loss
            if cql_alpha_loss is not None:
                step_logs["cql_alpha_loss"] = cql_alpha_loss
            values = th.stack([value.detach().reshape(()).float() for value in step_logs.values()]).tolist()  # one sync
            for key, value in zip(step_logs, values):
                logs[key].append(value)
            logs["behaviour_cloning"].append(float(behaviour_cloning))

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        for key, values in logs.items():
            self.logger.record(f"train/{key}", float(np.mean(values)))

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, variables = super()._get_torch_save_params()
        if self.cql_alpha_optimizer is not None:
            state_dicts.append("cql_alpha_optimizer")
            variables.append("log_cql_alpha")
        return state_dicts, variables


if __name__ == "__main__":
    from rl.cli import main

    sys.exit(main("cql"))
