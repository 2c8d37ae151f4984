"""FamO2O on IQL (Wang, Yang, Gao, Lin, Chen, Wu, Jia, Song & Huang, NeurIPS 2023).

"Train Once, Get a Family: State-Adaptive Balances for Offline-to-Online Reinforcement Learning",
https://arxiv.org/abs/2310.17966. :class:`FamO2O` trains a universal AWR policy pi_u(a | s, beta) for every
inverse temperature beta of IQL in a range, and a balance model beta(s) that picks one per state
(:mod:`algos.famo2o_family`); it changes IQL's update only through IQL's hooks. The CQL variant is
:class:`~algos.famo2o_cql.FamO2OCQL`. Read beside the authors' JAX code,
github.com/LeapLabTHU/FamO2O (jax_iql/); file and line references below are to that repository.

    python -m algos.famo2o --dataset hopper-medium-v2 --offline-steps 1000000 --online-steps 1000000
"""

from __future__ import annotations

import math
import sys
from typing import Any, ClassVar

import torch as th
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, Schedule

from algos.famo2o_family import FamilyMixin
from algos.famo2o_policies import BETA_ENCODING_BASE, BETA_ENCODING_DIM, FamO2OPolicy, UniversalGaussianActor
from algos.iql import EXP_ADV_MAX, IQL, advantage_weights
from rl.datasets import OfflineDataset


class FamO2O(FamilyMixin, IQL):
    """FamO2O on IQL: a universal AWR policy pi_u(a | s, beta) and a balance model beta(s), offline and online.

    Each gradient step, on a minibatch (s, a, r, s', done) of the buffer, in the authors' order
    (jax_iql/family_learner.py ``_family_update_jit``, L35-57):

    1. V: IQL's expectile regression on ``min_i Q'_i(s, a)`` (L35).
    2. Balance model: with ``u = tanh(z)``, ``z ~ N(mu(s), sigma)`` reparameterised, ``beta = beta_min +
       (u + 1) / 2 (beta_max - beta_min)`` and a reparameterised action ``a~ ~ pi_u(. | s, beta)`` of the
       universal policy before its update, minimise ``E[alpha log p(u | s) - min_i Q'_i(s, a~)]`` over the
       balance model only (family_actor.py L17-38): it moves beta towards the family member with the
       highest value, ``alpha`` keeping its entropy up. Target critics, as the authors (L39 passes
       ``critic=target_critic``).
    3. Its temperature: ``alpha = exp(log_alpha)`` minimises ``alpha (H - H_target)`` with ``H = -E[log p(u|s)]``
       and ``H_target = -1/2`` (family_temperature.py L20-25, family_learner.py L102-103), from alpha = 1.
    4. Universal policy: ``-E[min(exp(beta (min_i Q'_i(s, a) - V(s))), 100) log pi_u(a | s, beta)]`` with the
       updated V (family_actor.py L54-95): IQL's AWR with beta per sample in place of its fixed temperature.
       Offline (:meth:`learn_offline`) ``beta ~ U[beta_min, beta_max]`` per sample; online a sample of the
       balance model before step 2 (family_actor.py L64-76; family_train_finetune.py L160 switches with the
       phase). See :meth:`universal_policy_betas`.
    5. Q: ``L_Q = sum_i E[(Q_i(s, a) - r - gamma (1 - done) V(s'))^2]`` with the updated V (L55).
    6. Target Q: Polyak averaging with ``tau`` (L57).

    Steps 1, 5 and 6 and the order are IQL's update; steps 2-4 are FamO2O's share, in IQL's hooks
    (:meth:`_pre_actor_updates`, :meth:`_advantage_weights`, :meth:`_actor_regression_loss`).

    The balance model and its temperature are trained in both phases (every update, L160 only changes where
    the policy's betas come from). Acting, online and in evaluation, takes the balance model's deterministic
    ``beta = map(tanh(mu(s)))`` (family_learner.py L173-177); the universal policy then samples (online,
    ``predict(deterministic=False)``) or gives its mean (evaluation: evaluation.py ``temperature=0.0``).

    The universal policy is IQL's locomotion actor (Gaussian, ``tanh`` on the mean, state-independent
    log-std clipped to [-5, 2]) on the state's features concatenated with ``d = 6`` sin/cos features of beta
    (family_learner.py L111-117, L134-136; :func:`~algos.famo2o_policies.beta_encoding`). The balance model
    is a tanh-squashed Gaussian with a state-independent log-std (starting at 0, clipped to [-10, 2];
    L119-123), learned by Adam at 3e-4 without decay (L132). Rewards are multiplied by
    ``1000 / (max - min)`` of the dataset's episode returns (family_train_finetune.py L87-89, L153-159),
    online rewards too; offline and online transitions share the buffer and are sampled uniformly.

    Defaults: the FamO2O authors ship one IQL config, for AntMaze (configs/family_antmaze_finetune_config.py:
    range (8, 14), expectile 0.9, no learning-rate decay). The locomotion range [1, 5] is ``FamilyLearner``'s
    default (family_learner.py L86); the expectile is IQL's locomotion 0.7 (implicit_q_learning
    configs/mujoco_config.py; ``FamilyLearner``'s 0.8 is the default it copies from IQL's ``Learner``, which
    mujoco_config overrides); every learning rate 3e-4, batch 256, hidden layers (256, 256), 1M offline
    then 1M online steps with one update each (family_train_finetune.py L31-35); the actor's learning rate
    constant (the family config's ``opt_decay_schedule = None``, L22); states not standardised (the authors'
    code does not). ``algos/hyperparams/famo2o.yml`` cites each value.

    Deviations:

    - Online, the universal policy's betas are the balance model's sample drawn for step 2 (detached); the
      authors draw a second sample from the same (pre-update) balance model. Same distribution.
    - PyTorch's default initialisation (the authors' MLPs are orthogonal-initialised).
    - Dataset actions clipped to the action space (IQL's handling); the random streams differ from JAX's.
    - The AntMaze setting (range (8, 14), expectile 0.9, ``reward_bias=-1`` without reward scaling) is a
      matter of arguments; it is not a default here.

    :param policy: policy alias or class (``MlpPolicy``: :class:`~algos.famo2o_policies.FamO2OPolicy`)
    :param env: the env to evaluate and fine-tune in (None to load a model)
    :param dataset: offline data (an :class:`~rl.datasets.OfflineDataset` or a spec for ``load_dataset``)
    :param beta_min: lower end of the balance coefficient's range (locomotion 1; AntMaze 8)
    :param beta_max: upper end of the range (locomotion 5; AntMaze 14)
    :param expectile: tau of the expectile regression of V (locomotion 0.7, AntMaze 0.9)
    :param exp_adv_max: upper clip of the advantage weights ``exp(beta * A)`` (100)
    :param beta_encoding_dim: number of sin/cos features of beta given to the universal policy (6)
    :param beta_encoding_base: base ``n`` of the encoding's frequencies (10000)
    :param balance_lr: Adam learning rate of the balance model (3e-4)
    :param balance_temperature_init: initial entropy temperature of the balance model (1.0)
    :param balance_temperature_lr: Adam learning rate of its log (3e-4)
    :param balance_target_entropy: target entropy of the balance model's squashed output (``"auto"``: -1/2)
    :param actor_dropout: dropout in the universal policy's hidden layers (None)
    :param actor_lr_schedule: ``"constant"`` (the authors' FamO2O config) or ``"cosine"`` (IQL's offline decay)
    :param normalize_observations: standardise observations with the dataset's statistics (False, as the
        authors; IQL here defaults to CORL's True)
    :param normalize_reward: scale rewards by ``1000 / (max - min)`` of the dataset's episode returns
    :param reward_bias: added to the (scaled) rewards (-1 for AntMaze)
    :param learning_rate: Adam learning rate of V, Q and the universal policy (3e-4)
    :param buffer_size: replay buffer capacity: the dataset plus the online steps
    :param learning_starts: env steps of random actions online before learning (0: act with the offline policy)
    :param batch_size: minibatch size (256)
    :param tau: target Q smoothing coefficient (0.005)
    :param gamma: discount factor (0.99)
    :param train_freq: online, update every ``train_freq`` env steps (1)
    :param gradient_steps: online, gradient steps per update (1)
    :param action_noise: extra exploration noise online (None: the policy's own sampling explores)
    :param replay_buffer_class: SB3 replay buffer class
    :param replay_buffer_kwargs: its keyword arguments
    :param policy_kwargs: keyword arguments of the policy (``net_arch``, ``balance_net_arch``, ...)
    :param stats_window_size: episodes averaged in the rollout logs
    :param tensorboard_log: tensorboard log folder
    :param verbose: 0 silent, 1 info, 2 debug
    :param seed: random seed
    :param device: torch device
    :param _init_setup_model: build the networks at construction (False inside ``load``)
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": FamO2OPolicy}
    policy: FamO2OPolicy
    actor: UniversalGaussianActor
    log_balance_temperature: th.Tensor
    balance_temperature_optimizer: th.optim.Adam

    def __init__(
        self,
        policy: str | type[FamO2OPolicy],
        env: GymEnv | str | None,
        dataset: OfflineDataset | str | None = None,
        beta_min: float = 1.0,
        beta_max: float = 5.0,
        expectile: float = 0.7,
        exp_adv_max: float = EXP_ADV_MAX,
        beta_encoding_dim: int = BETA_ENCODING_DIM,
        beta_encoding_base: float = BETA_ENCODING_BASE,
        balance_lr: float = 3e-4,
        balance_temperature_init: float = 1.0,
        balance_temperature_lr: float = 3e-4,
        balance_target_entropy: str | float = "auto",
        actor_dropout: float | None = None,
        actor_lr_schedule: str = "constant",
        normalize_observations: bool = False,
        normalize_reward: bool = True,
        reward_bias: float = 0.0,
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
        if balance_temperature_init <= 0:
            raise ValueError(
                f"balance_temperature_init must be positive (the authors: 1.0), got {balance_temperature_init}."
            )
        if balance_target_entropy != "auto" and not isinstance(balance_target_entropy, (int, float)):
            raise ValueError(f"balance_target_entropy must be 'auto' or a number, got {balance_target_entropy!r}.")
        policy_kwargs = self._init_family(
            beta_min, beta_max, beta_encoding_dim, beta_encoding_base, balance_lr, policy_kwargs
        )
        self.balance_temperature_init = balance_temperature_init
        self.balance_temperature_lr = balance_temperature_lr
        self.balance_target_entropy = balance_target_entropy
        super().__init__(
            policy, env, dataset=dataset, expectile=expectile, beta=0.0, exp_adv_max=exp_adv_max,
            deterministic_actor=False, actor_dropout=actor_dropout, actor_lr_schedule=actor_lr_schedule,
            normalize_observations=normalize_observations, normalize_reward=normalize_reward, reward_bias=reward_bias,
            expl_noise=0.0, learning_rate=learning_rate, buffer_size=buffer_size, learning_starts=learning_starts,
            batch_size=batch_size, tau=tau, gamma=gamma, train_freq=train_freq, gradient_steps=gradient_steps,
            action_noise=action_noise, replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs, policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size, tensorboard_log=tensorboard_log, verbose=verbose, seed=seed,
            device=device, _init_setup_model=False,
        )
        del self.beta  # IQL's single temperature: FamO2O's beta is per sample
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        super()._setup_model()
        self._setup_family()
        if self.balance_target_entropy == "auto":
            self.balance_target_entropy = -0.5  # family_learner.py L102-103: -1 / 2 for the one-dimensional beta
        self.log_balance_temperature = th.full(
            (1,), math.log(self.balance_temperature_init), device=self.device
        ).requires_grad_(True)
        self.balance_temperature_optimizer = th.optim.Adam(
            [self.log_balance_temperature], lr=self.balance_temperature_lr
        )

    def _pre_actor_updates(self, observations: th.Tensor) -> tuple[th.Tensor, dict[str, th.Tensor]]:
        """Steps 2-3, between IQL's V and actor steps: the balance model and its temperature, from one sample of
        beta(s); returns the universal policy's betas (:meth:`universal_policy_betas`, from that sample, before
        the balance model's step) and the logs."""
        # 2. Balance model: beta(s) towards the family member of highest min_i Q'_i(s, pi_u(s, beta)), plus entropy.
        balance = self.balance_model.sample(observations)
        policy_betas = self.universal_policy_betas(balance)
        temperature = self.log_balance_temperature.exp()
        self.actor.set_training_mode(False)  # no dropout here (the authors' training=False)
        q_balance = self._target_q(observations, self.actor.rsample(observations, balance.beta))
        self.actor.set_training_mode(True)
        balance_loss = (temperature.detach() * balance.log_prob - q_balance).mean()
        self.balance_model.optimizer.zero_grad()
        balance_loss.backward(inputs=list(self.balance_model.parameters()))
        self.balance_model.optimizer.step()

        # 3. Its temperature: alpha (H - H_target).
        entropy = -balance.log_prob.detach().mean()
        temperature_loss = (temperature * (entropy - self.balance_target_entropy)).squeeze()
        self.balance_temperature_optimizer.zero_grad()
        temperature_loss.backward()
        self.balance_temperature_optimizer.step()
        return policy_betas, {
            **self._beta_logs(balance, policy_betas), "balance_loss": balance_loss, "q_balance": q_balance.mean(),
            "balance_entropy": entropy, "balance_temperature": temperature,
            "balance_temperature_loss": temperature_loss,
        }

    def _advantage_weights(self, advantage: th.Tensor, conditions: th.Tensor | None) -> th.Tensor:
        """Step 4's weights: ``min(exp(beta * A), 100)`` with each sample's own beta (``conditions``), where IQL
        has one inverse temperature."""
        return advantage_weights(advantage, conditions, self.exp_adv_max)

    def _actor_regression_loss(
        self, observations: th.Tensor, actions: th.Tensor, conditions: th.Tensor | None
    ) -> th.Tensor:
        """Step 4's per-sample loss: ``-log pi_u(a | s, beta)``, the universal policy at each sample's beta."""
        return -self.actor.log_prob(observations, conditions, actions)

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, variables = super()._get_torch_save_params()
        return (
            [*state_dicts, "balance_model.optimizer", "balance_temperature_optimizer"],
            [*variables, "log_balance_temperature"],
        )


__all__ = ["FamO2O"]

if __name__ == "__main__":
    from rl.cli import main

    sys.exit(main("famo2o"))
