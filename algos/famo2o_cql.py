"""FamO2O on CQL(H)/SAC (Wang, Yang, Gao, Lin, Chen, Wu, Jia, Song & Huang, NeurIPS 2023).

"Train Once, Get a Family: State-Adaptive Balances for Offline-to-Online Reinforcement Learning",
https://arxiv.org/abs/2310.17966. :class:`FamO2OCQL` trains a universal squashed-Gaussian policy
pi_u(a | s, beta), where beta weights the Q term of the actor's loss, for every beta in a range, and a balance
model beta(s) that picks one per state (:mod:`algos.famo2o_family`); it changes CQL's update only through
CQL's hooks. Read beside the authors' JAX code, github.com/LeapLabTHU/FamO2O (jax_cql/); file and line
references below are to that repository.

    python -m algos.famo2o_cql --dataset hopper-medium-v2 --offline-steps 2000000 --online-steps 1000000
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch as th
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, Schedule

from algos.cql import CQL, PolicyConditions
from algos.famo2o_family import FamilyMixin
from algos.famo2o_policies import (
    BETA_ENCODING_BASE,
    BETA_ENCODING_DIM,
    BalanceSample,
    FamO2OCQLPolicy,
    UniversalSquashedActor,
)
from rl.datasets import OfflineDataset


@dataclass(frozen=True, kw_only=True)
class BalancedConditions(PolicyConditions):
    """The betas of one update: the universal policy's at the states and next states, and the balance model's
    sample at the states they came from.

    :param balance: beta(s), reparameterised (with gradient), for the balance model's loss
    """

    balance: BalanceSample


class FamO2OCQL(FamilyMixin, CQL):
    """FamO2O on CQL(H)/SAC: a universal squashed-Gaussian policy pi_u(a | s, beta) and a balance model beta(s).

    Each gradient step, on a minibatch (s, a, r, s', d), every loss from the parameters before the step (the
    authors compute all of them in one ``loss_fn`` and step every network once, jax_cql/JaxCQL/
    family_conservative_sac.py L120-364; the CQL base here does the same):

    - betas: ``beta(s)`` a reparameterised sample of the balance model (L161-162); the universal policy's
      beta is ``U[beta_min, beta_max]`` per sample offline and ``beta(s)`` online (L169-185,
      :meth:`universal_policy_betas`); next states take ``beta(s')``, sampled without gradient.
    - SAC's entropy temperature on ``log pi_u(a~ | s, beta)`` (L193-197).
    - Universal policy: ``E[alpha log pi_u(a~ | s, beta) - beta min_i Q_i(s, a~)]``, ``a~ ~ pi_u(. | s, beta)``
      (L209-217): beta weighs policy improvement against the entropy/CQL's conservatism; during the first
      ``bc_steps`` updates the Q term is the log-likelihood of the dataset action, as in CQL.
    - Balance model: ``-E[min_i Q_i(s, a~)]``, ``a~ ~ pi_u(. | s, beta(s))`` reparameterised through beta
      (L215, L218-222; no entropy term, no update during the BC warm-up, L207), in both phases.
    - Critics: CQL's TD loss with ``a' ~ pi_u(. | s', beta(s'))`` and CQL(H)'s penalty, whose policy actions
      are ``pi_u(. | s, beta)`` and ``pi_u(. | s', beta(s'))`` (L245-284); target networks by Polyak averaging.

    The update is CQL's; FamO2O comes in through its hooks (:meth:`_update_conditions`, :meth:`_actor_sample`,
    :meth:`_actor_q_weight`, :meth:`policy_distribution_params`, :meth:`_extra_updates`). The balance model
    steps before every other network, as soon as its loss is computed: that loss runs through the universal
    policy and the critics, and no other loss depends on the balance model's parameters.

    Acting: the balance model's deterministic ``beta(s) = map(tanh(mu(s)))``, then a sample of the universal
    policy online and its mean in evaluation (jax_cql/JaxCQL/family_sampler.py L34-42,
    cql_finetune/family_conservative_sac_finetune_main.py L133-161).

    Defaults are the authors' FamO2O-CQL locomotion config (cql_finetune/finetune_configs/family.py and
    base.py, JaxCQL/conservative_sac.py ``get_default_config``): beta in [0.5, 1.5], CQL weight 1.0 (Lagrange
    off, 10 actions, temperature 1, importance sampling), policy, critic and balance learning rates 3e-4,
    SAC's learned temperature from 1 with target ``-|A|``, no entropy in the backup, batch 256, two hidden layers
    of 256 for every network with LayerNorm in the critics (JaxCQL/family_model.py) and no orthogonal
    initialisation, log-std offset -1, rewards and states as they are, a 2M-transition buffer, and 2M
    offline gradient steps then 1M online env steps with one update each (base.py L18-21: 400 offline
    epochs and 200 online epochs of 5 x 1000). ``algos/hyperparams/famo2o_cql.yml`` cites each value.

    Deviations:

    - beta's range: the authors' CQL balance model maps its tanh output ``u`` in [-1, 1] by
      ``u (beta_max - beta_min) + beta_min`` (JaxCQL/hierarchical_policy.py L39), so it chooses from
      [-0.5, 1.5] while the offline family is trained on [0.5, 1.5]; here, as in their IQL version and the
      paper, ``beta_min + (u + 1) / 2 (beta_max - beta_min)`` keeps it in [beta_min, beta_max].
    - Next states: the authors feed the universal policy at s' with the beta of s (L232, L245); here the
      balance model's beta(s') (no gradient).
    - The balance model's action ``a~`` is its own sample in both phases (online the authors reuse the
      policy loss's sample); same distribution.
    - The CQL base's choices hold (SB3's squashed Gaussian, one Adam for both critics, see
      :class:`~algos.cql.CQL`); dataset actions are not clipped to +-0.999 (base.py L10), SB3's squash
      handles the bounds; PyTorch's default initialisation of hidden layers (flax's lecun-normal there),
      output layers Xavier-uniform with gain 1e-2 (theirs: variance scaling 1e-2).

    :param policy: policy alias or class (``MlpPolicy``: :class:`~algos.famo2o_policies.FamO2OCQLPolicy`)
    :param env: the env to evaluate and fine-tune in (None to load a model)
    :param dataset: offline data (an :class:`~rl.datasets.OfflineDataset` or a spec for ``load_dataset``)
    :param beta_min: lower end of the balance coefficient's range (0.5)
    :param beta_max: upper end of the range (1.5)
    :param beta_encoding_dim: number of sin/cos features of beta given to the universal policy (6)
    :param beta_encoding_base: base ``n`` of the encoding's frequencies (10000)
    :param balance_lr: Adam learning rate of the balance model (3e-4)
    :param cql_alpha: weight of the CQL penalty (the authors' FamO2O config: 1.0)
    :param cql_n_actions: actions sampled per state from each of the uniform, ``pi_u(.|s)`` and ``pi_u(.|s')`` (10)
    :param cql_temp: temperature of the logsumexp (1.0)
    :param cql_importance_sample: subtract the log density of each sampled action (True)
    :param cql_lagrange: tune the penalty's weight by dual gradient descent (False)
    :param cql_target_action_gap: threshold of the Lagrange version (1.0, unused when it is off)
    :param cql_max_target_backup: back up the max over ``cql_n_actions`` next actions (False)
    :param cql_clip_diff_min: lower clip of the per-state gap (-inf)
    :param cql_clip_diff_max: upper clip of the per-state gap (inf)
    :param cql_alpha_online: penalty weight in the online phase (None: ``cql_alpha``)
    :param backup_entropy: subtract ``alpha * log pi(a'|s')`` in the target (False)
    :param bc_steps: first updates whose actor loss is the log-likelihood of the dataset actions (0)
    :param normalize_observations: standardise observations with the dataset's statistics (False, as the authors)
    :param reward_scale: rewards are used as ``reward_scale * r + reward_bias`` (1.0)
    :param reward_bias: see ``reward_scale`` (0.0)
    :param policy_lr: Adam learning rate of the universal policy and of the entropy temperature (3e-4)
    :param learning_rate: Adam learning rate of the critics and of the Lagrange multiplier (3e-4)
    :param buffer_size: replay buffer capacity: the dataset plus the online steps
    :param learning_starts: env steps of random actions online before learning (0)
    :param batch_size: minibatch size (256)
    :param tau: target smoothing coefficient (0.005)
    :param gamma: discount factor (0.99)
    :param train_freq: online, update every ``train_freq`` env steps (1)
    :param gradient_steps: online, gradient steps per update (1)
    :param action_noise: extra exploration noise online (None)
    :param replay_buffer_class: replay buffer class (None: SB3's ReplayBuffer)
    :param replay_buffer_kwargs: its keyword arguments
    :param optimize_memory_usage: SB3's memory-efficient replay buffer variant
    :param n_steps: n-step returns (1)
    :param ent_coef: entropy temperature, ``"auto"`` to learn it from 1.0
    :param target_update_interval: update the targets every this many gradient steps (1)
    :param target_entropy: target entropy of the temperature tuning (``"auto"``: ``-|A|``)
    :param stats_window_size: episodes averaged in the rollout logs
    :param tensorboard_log: tensorboard log directory
    :param policy_kwargs: policy keyword arguments (``net_arch``, ``critic_layer_norm``, ``balance_net_arch``, ...)
    :param verbose: verbosity level
    :param seed: seed of every random generator
    :param device: torch device
    :param _init_setup_model: build the networks now (False when loading)
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": FamO2OCQLPolicy}
    policy: FamO2OCQLPolicy
    actor: UniversalSquashedActor

    def __init__(
        self,
        policy: str | type[FamO2OCQLPolicy],
        env: GymEnv | str | None,
        dataset: OfflineDataset | str | None = None,
        beta_min: float = 0.5,
        beta_max: float = 1.5,
        beta_encoding_dim: int = BETA_ENCODING_DIM,
        beta_encoding_base: float = BETA_ENCODING_BASE,
        balance_lr: float = 3e-4,
        cql_alpha: float = 1.0,
        cql_n_actions: int = 10,
        cql_temp: float = 1.0,
        cql_importance_sample: bool = True,
        cql_lagrange: bool = False,
        cql_target_action_gap: float = 1.0,
        cql_max_target_backup: bool = False,
        cql_clip_diff_min: float = -np.inf,
        cql_clip_diff_max: float = np.inf,
        cql_alpha_online: float | None = None,
        backup_entropy: bool = False,
        bc_steps: int = 0,
        normalize_observations: bool = False,
        reward_scale: float = 1.0,
        reward_bias: float = 0.0,
        policy_lr: float | Schedule = 3e-4,
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
        policy_kwargs = self._init_family(
            beta_min, beta_max, beta_encoding_dim, beta_encoding_base, balance_lr, policy_kwargs
        )
        super().__init__(
            policy, env, dataset=dataset, cql_alpha=cql_alpha, cql_n_actions=cql_n_actions, cql_temp=cql_temp,
            cql_importance_sample=cql_importance_sample, cql_lagrange=cql_lagrange,
            cql_target_action_gap=cql_target_action_gap, cql_max_target_backup=cql_max_target_backup,
            cql_clip_diff_min=cql_clip_diff_min, cql_clip_diff_max=cql_clip_diff_max,
            cql_alpha_online=cql_alpha_online, backup_entropy=backup_entropy, bc_steps=bc_steps,
            normalize_observations=normalize_observations, reward_scale=reward_scale, reward_bias=reward_bias,
            policy_lr=policy_lr, learning_rate=learning_rate, buffer_size=buffer_size, learning_starts=learning_starts,
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
        super()._setup_model()
        self._setup_family()

    def policy_distribution_params(
        self, observations: th.Tensor, conditions: th.Tensor | None = None
    ) -> tuple[th.Tensor, th.Tensor, dict[str, th.Tensor]]:
        """CQL's penalty and backup sample the universal policy at the rows' betas (``conditions``)."""
        assert conditions is not None, "FamO2O's universal policy needs a beta for every state"
        return self.actor.get_action_dist_params(observations, conditions)

    def _update_conditions(self, observations: th.Tensor, next_observations: th.Tensor) -> BalancedConditions:
        """The betas of the update: the balance model's reparameterised sample at s (with gradient, for its loss),
        the universal policy's betas at s (uniform offline, that sample online: :meth:`universal_policy_betas`)
        and beta(s') for the policy at the next states (no gradient)."""
        balance = self.balance_model.sample(observations)
        policy_betas = self.universal_policy_betas(balance)
        with th.no_grad():
            next_betas = self.balance_model(next_observations, deterministic=False)
        return BalancedConditions(states=policy_betas, next_states=next_betas, balance=balance)

    def _actor_sample(self, observations: th.Tensor, conditions: th.Tensor | None) -> tuple[th.Tensor, th.Tensor]:
        """A reparameterised action of the universal policy at each row's beta, and its log-probability."""
        return self.actor.action_log_prob(observations, conditions)

    def _actor_q_weight(self, conditions: th.Tensor | None) -> th.Tensor | float:
        """The universal policy's loss ``alpha log pi_u(a~ | s, beta) - beta min_i Q_i(s, a~)``: each row's beta."""
        assert conditions is not None, "FamO2O's universal policy needs a beta for every state"
        return conditions

    def _extra_updates(
        self, observations: th.Tensor, conditions: PolicyConditions, behaviour_cloning: bool
    ) -> dict[str, th.Tensor]:
        """The balance model's step, outside the BC warm-up: maximise ``min_i Q_i(s, a~)``, ``a~ ~ pi_u(. | s,
        beta(s))``, through beta; with the statistics of beta. It runs before the other networks' steps, since its
        loss goes through the universal policy and the critics."""
        assert isinstance(conditions, BalancedConditions)
        logs = self._beta_logs(conditions.balance, conditions.states)
        if not behaviour_cloning:
            balance_actions, _ = self._actor_sample(observations, conditions.balance.beta)
            balance_loss = -self._min_q(observations, balance_actions).mean()
            self.balance_model.optimizer.zero_grad()
            balance_loss.backward(inputs=list(self.balance_model.parameters()))
            self.balance_model.optimizer.step()
            logs["balance_loss"] = balance_loss
        return logs

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, variables = super()._get_torch_save_params()
        return [*state_dicts, "balance_model.optimizer"], variables


if __name__ == "__main__":
    from rl.cli import main

    sys.exit(main("famo2o_cql"))
