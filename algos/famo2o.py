"""FamO2O: Family Offline-to-Online RL (Wang, Yang, Gao, Lin, Chen, Wu, Jia, Song & Huang, NeurIPS 2023).

"Train Once, Get a Family: State-Adaptive Balances for Offline-to-Online Reinforcement Learning",
https://arxiv.org/abs/2310.17966. A *universal policy* pi_u(a | s, beta) is trained for every balance
coefficient beta in a range at once (offline: beta drawn uniformly per sample), and a state-only *balance
model* beta(s) learns which member of that family to follow in each state (online: beta from the balance
model). :class:`FamO2O` builds it on IQL (beta is IQL's inverse temperature), :class:`FamO2OCQL` on CQL
(beta weights the Q term of the actor's loss). Read beside the authors' JAX code, github.com/LeapLabTHU/FamO2O
(jax_iql/ and jax_cql/); file and line references below are to that repository.

    python -m algos.famo2o --dataset hopper-medium-v2 --offline-steps 1000000 --online-steps 1000000
    python -m rl --algo famo2o_cql --dataset hopper-medium-v2 --offline-steps 2000000 -n 1000000
"""

from __future__ import annotations

import math
import os
import sys
from collections import defaultdict
from typing import Any, ClassVar

import numpy as np
import torch as th
import torch.nn.functional as F
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import polyak_update, update_learning_rate
from stable_baselines3.common.vec_env import VecEnv, sync_envs_normalization

from algos.cql import CQL
from algos.famo2o_policies import (
    BETA_ENCODING_BASE,
    BETA_ENCODING_DIM,
    BalanceModel,
    BalanceSample,
    FamO2OCQLPolicy,
    FamO2OPolicy,
    UniversalGaussianActor,
    UniversalSquashedActor,
)
from algos.iql import EXP_ADV_MAX, IQL, advantage_weights
from algos.iql_policies import LOG_STD_MAX, LOG_STD_MIN
from rl.datasets import OfflineDataset

OFFLINE_EVAL_EPISODES = 10
"""Episodes of the evaluation of the policy as the offline phase left it (the runner's final evaluation count)."""
BETA_PLOT_FILE = "beta_over_episode.png"
MAX_EPISODE_STEPS = 100_000
"""Guard on the length of the episode whose betas are plotted (the envs' own time limits end it first)."""


class _FamilyMixin:
    """What both variants share: the beta range, uniform betas offline, beta statistics, the balance model's
    optimizer, and the run artefacts (the score at the end of the offline phase, beta over an episode).

    Put it first in the bases, before the base algorithm.
    """

    beta_min: float
    beta_max: float
    balance_lr: float
    policy: FamO2OPolicy | FamO2OCQLPolicy
    balance_model: BalanceModel
    _offline_policy_state: dict[str, th.Tensor] | None

    def _init_family(
        self, beta_min: float, beta_max: float, beta_encoding_dim: int, beta_encoding_base: float, balance_lr: float,
        policy_kwargs: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """Check and remember the family's settings; return ``policy_kwargs`` with the policy's share of them."""
        if not beta_min < beta_max:
            raise ValueError(f"beta_min must be below beta_max (IQL locomotion: 1 and 5; CQL: 0.5 and 1.5), "
                             f"got {beta_min} and {beta_max}.")
        if beta_encoding_dim <= 0 or beta_encoding_dim % 2:
            raise ValueError(
                f"beta_encoding_dim must be a positive even number (the authors: 6), got {beta_encoding_dim}."
            )
        if balance_lr < 0:
            raise ValueError(f"balance_lr must be >= 0 (the authors: 3e-4), got {balance_lr}.")
        self.beta_min, self.beta_max = float(beta_min), float(beta_max)
        self.beta_encoding_dim, self.beta_encoding_base = beta_encoding_dim, beta_encoding_base
        self.balance_lr = balance_lr
        return {
            **(policy_kwargs or {}), "beta_min": self.beta_min, "beta_max": self.beta_max,
            "beta_encoding_dim": beta_encoding_dim, "beta_encoding_base": beta_encoding_base,
        }

    def _setup_family(self) -> None:
        self.balance_model = self.policy.balance_model
        update_learning_rate(self.balance_model.optimizer, self.balance_lr)
        self._offline_policy_state = None

    def universal_policy_betas(self, balance: BalanceSample) -> th.Tensor:
        """The betas the universal policy is trained with on a batch, (batch, 1), no gradient.

        Offline: ``U[beta_min, beta_max]`` per sample, so that every member of the family is trained; online:
        the balance model's sample for the batch's states.
        """
        if self.in_offline_phase:  # type: ignore[attr-defined]
            uniform = th.rand(balance.beta.shape, device=balance.beta.device)
            return self.beta_min + uniform * (self.beta_max - self.beta_min)
        return balance.beta.detach()

    @staticmethod
    def _log_betas(logs: dict[str, list[float]], balance: BalanceSample, policy_betas: th.Tensor) -> None:
        """Statistics of the balance model's choice (its deterministic beta) on the batch's states."""
        mode = balance.mode.detach()
        logs["beta_mean"].append(mode.mean().item())
        logs["beta_std"].append(mode.std().item() if len(mode) > 1 else 0.0)
        logs["beta_min"].append(mode.min().item())
        logs["beta_max"].append(mode.max().item())
        logs["beta_sampled_mean"].append(balance.beta.detach().mean().item())
        logs["actor_beta_mean"].append(policy_betas.mean().item())

    def predict_beta(self, observation: np.ndarray | dict[str, np.ndarray]) -> np.ndarray:
        """The balance coefficient the balance model chooses for raw observations (what ``predict`` acts with)."""
        return self.policy.predict_beta(observation)

    def learn_offline(
        self,
        n_updates: int,
        callback: MaybeCallback = None,
        log_interval: int = 1000,
        tb_log_name: str = "offline",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ):  # noqa: ANN201 - returns self, like learn
        """:meth:`rl.offline.OfflineAlgorithmMixin.learn_offline`, then keep the policy's parameters as they are
        at the end of the offline phase (in memory, not saved), for the offline score of
        :meth:`write_run_artifacts`."""
        super().learn_offline(  # type: ignore[misc]
            n_updates, callback=callback, log_interval=log_interval, tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps, progress_bar=progress_bar,
        )
        self._offline_policy_state = {key: value.detach().clone() for key, value in self.policy.state_dict().items()}
        return self

    def offline_evaluation(self, eval_env: VecEnv, run_dir: str | None = None) -> dict[str, Any] | None:
        """Deterministic evaluation of the policy as the offline phase left it.

        From the parameters kept by :meth:`learn_offline` in this process; otherwise (a run resumed after
        the offline phase) the periodic evaluation logged at the offline phase's last step in
        ``run_dir/evaluations.npz``, if there is one; else None.
        """
        from rl.evaluation import EVALUATIONS_FILE, evaluate

        if self._offline_policy_state is not None:
            current = {key: value.detach().clone() for key, value in self.policy.state_dict().items()}
            self.policy.load_state_dict(self._offline_policy_state)
            try:
                summary = evaluate(self, eval_env, n_episodes=OFFLINE_EVAL_EPISODES)  # type: ignore[arg-type]
            finally:
                self.policy.load_state_dict(current)
            return {"mean_reward": summary.mean_reward, "std_reward": summary.std_reward,
                    "n_episodes": summary.n_episodes, "timestep": self.offline_updates}  # type: ignore[attr-defined]
        path = os.path.join(run_dir, EVALUATIONS_FILE) if run_dir else None
        if path and os.path.isfile(path):
            data = np.load(path)
            rows = np.flatnonzero(data["timesteps"] == self.offline_updates)  # type: ignore[attr-defined]
            if len(rows):
                results = data["results"][rows[-1]]
                return {"mean_reward": float(np.mean(results)), "std_reward": float(np.std(results)),
                        "n_episodes": len(results), "timestep": self.offline_updates}  # type: ignore[attr-defined]
        return None

    def beta_over_episode(self, eval_env: VecEnv) -> tuple[np.ndarray, float]:
        """Run one deterministic episode in ``eval_env`` (its first env); the beta chosen at each step, and the
        episode's return."""
        train_env = self.get_env()  # type: ignore[attr-defined]
        if train_env is not None:
            sync_envs_normalization(train_env, eval_env)
        observations = eval_env.reset()
        betas, episode_return = [], 0.0
        for _ in range(MAX_EPISODE_STEPS):
            betas.append(float(np.atleast_1d(self.predict_beta(observations))[0]))
            actions, _ = self.predict(observations, deterministic=True)  # type: ignore[attr-defined]
            observations, rewards, dones, infos = eval_env.step(actions)
            episode_return += float(rewards[0])
            if dones[0]:
                episode_return = float(infos[0].get("episode", {}).get("r", episode_return))
                break
        return np.asarray(betas), episode_return

    def write_run_artifacts(self, run_dir: str, eval_env: VecEnv) -> dict[str, Any]:
        """The runner's hook: the offline-phase score, and ``beta_over_episode.png`` with its summary figures."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        offline = self.offline_evaluation(eval_env, run_dir)
        dataset: OfflineDataset | None = self.dataset  # type: ignore[attr-defined]
        offline_score = None
        if offline is not None and dataset is not None and dataset.ref_min is not None:
            offline_score = float(dataset.normalized_score(offline["mean_reward"]))
            print(f"D4RL normalised score at the end of the offline phase ({offline['timestep']} updates): "
                  f"{offline_score:.1f}")

        betas, episode_return = self.beta_over_episode(eval_env)
        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.plot(np.arange(len(betas)), betas, color="tab:purple", lw=1.2, label="beta(s) of the balance model")
        for bound in (self.beta_min, self.beta_max):
            ax.axhline(bound, color="gray", ls="--", lw=0.8)
        margin = 0.05 * (self.beta_max - self.beta_min)
        ax.set_ylim(self.beta_min - margin, self.beta_max + margin)
        ax.set_xlabel("step of a deterministic evaluation episode")
        ax.set_ylabel("balance coefficient beta")
        ax.set_title(f"{type(self).__name__}: beta over an episode (return {episode_return:.1f})")
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
        fig.tight_layout()
        fig.savefig(os.path.join(run_dir, BETA_PLOT_FILE), dpi=110)
        plt.close(fig)
        return {
            "offline_evaluation": offline,
            "offline_normalized_score": offline_score,
            "beta_over_episode": {
                "plot": BETA_PLOT_FILE, "steps": len(betas), "episode_return": episode_return,
                "mean": float(betas.mean()), "std": float(betas.std()), "min": float(betas.min()),
                "max": float(betas.max()), "beta_range": [self.beta_min, self.beta_max],
            },
        }

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "balance_model", "_offline_policy_state"]  # type: ignore[misc]


class FamO2O(_FamilyMixin, IQL):
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

            # 1. V(s): expectile regression on min_i Q'_i(s, a) (IQL's step).
            target_q, value, value_loss = self._value_step(observations, actions)

            # 2. Balance model: beta(s) towards the family member of highest min_i Q'_i(s, pi_u(s, beta)), plus entropy.
            balance = self.balance_model.sample(observations)
            policy_betas = self.universal_policy_betas(balance)  # drawn before the balance model's step
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

            # 4. Universal policy: AWR with beta per sample, A = min_i Q'_i(s, a) - V(s) with the updated V.
            with th.no_grad():
                advantage = target_q - self.value_net(observations)
                weights = advantage_weights(advantage, policy_betas, self.exp_adv_max)
            actor_loss = -(weights * self.actor.log_prob(observations, policy_betas, actions)).mean()
            self.actor.optimizer.zero_grad()
            actor_loss.backward()
            self.actor.optimizer.step()

            # 5. Q(s, a) -> r + gamma (1 - done) V(s'), with the updated V.
            current_q, critic_loss = self._critic_step(data, rewards, discounts)  # and 6. the target Q (IQL's)

            self._log_betas(logs, balance, policy_betas)
            step_logs = {
                "value_loss": value_loss, "actor_loss": actor_loss, "critic_loss": critic_loss, "v": value.mean(),
                "q": th.cat(current_q, dim=1).mean(), "advantage": advantage.mean(), "weights": weights.mean(),
                "balance_loss": balance_loss, "q_balance": q_balance.mean(), "balance_entropy": entropy,
                "balance_temperature": temperature, "balance_temperature_loss": temperature_loss,
            }
            values = th.stack([value.detach().reshape(()).float() for value in step_logs.values()]).tolist()
            for key, item in zip(step_logs, values):
                logs[key].append(item)

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/actor_learning_rate", actor_learning_rate)
        for key, items in logs.items():
            self.logger.record(f"train/{key}", float(np.mean(items)))
        std = self.actor.log_std.detach().clamp(LOG_STD_MIN, LOG_STD_MAX).exp()
        self.logger.record("train/std", std.mean().item())

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, variables = super()._get_torch_save_params()
        return (
            [*state_dicts, "balance_model.optimizer", "balance_temperature_optimizer"],
            [*variables, "log_balance_temperature"],
        )


class FamO2OCQL(_FamilyMixin, CQL):
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

    def _min_q(self, observations: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """``min_i Q_i(s, a)`` of the current critics, shape (batch, 1)."""
        return th.cat(self.critic(observations, actions), dim=1).min(dim=1, keepdim=True).values

    def policy_distribution_params(
        self, observations: th.Tensor, conditions: th.Tensor | None = None
    ) -> tuple[th.Tensor, th.Tensor, dict[str, th.Tensor]]:
        """CQL's penalty and backup sample the universal policy at the rows' betas (``conditions``)."""
        assert conditions is not None, "FamO2O's universal policy needs a beta for every state"
        return self.actor.get_action_dist_params(observations, conditions)

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

            # Betas: the balance model's sample at s (with gradient, for its loss), the policy's (uniform offline),
            # and beta(s') for the policy at the next states.
            balance = self.balance_model.sample(observations)
            policy_betas = self.universal_policy_betas(balance)
            with th.no_grad():
                next_betas = self.balance_model(next_observations, deterministic=False)

            # Entropy temperature (SAC): its value before this step weights every loss below.
            actions_pi, log_prob = self.actor.action_log_prob(observations, policy_betas)
            log_prob = log_prob.reshape(-1, 1)
            ent_coef_loss = None
            if self.ent_coef_optimizer is not None and self.log_ent_coef is not None:
                ent_coef = th.exp(self.log_ent_coef.detach())
                ent_coef_loss = -(self.log_ent_coef * (log_prob + self.target_entropy).detach()).mean()
            else:
                ent_coef = self.ent_coef_tensor

            # Universal policy: alpha log pi_u - beta Q (the log-likelihood of the data during the BC warm-up).
            behaviour_cloning = self._n_updates <= self.bc_steps
            balance_loss = None
            if behaviour_cloning:
                log_likelihood = self.actor.log_likelihood(observations, policy_betas, data.actions).reshape(-1, 1)
                actor_loss = (ent_coef * log_prob - log_likelihood).mean()
            else:
                actor_loss = (ent_coef * log_prob - policy_betas * self._min_q(observations, actions_pi)).mean()
                # Balance model: maximise min_i Q_i(s, a~), a~ ~ pi_u(. | s, beta(s)), through beta.
                balance_actions, _ = self.actor.action_log_prob(observations, balance.beta)
                q_balance = self._min_q(observations, balance_actions)
                balance_loss = -q_balance.mean()

            # Critics: TD regression plus the weighted CQL(H) gap.
            target_q = self.critic_target_q(
                next_observations, rewards, data.dones, discounts, ent_coef, next_conditions=next_betas
            )
            current_q = self.critic(observations, data.actions)
            td_loss = sum(F.mse_loss(q, target_q) for q in current_q)
            assert isinstance(td_loss, th.Tensor)
            penalty = self.cql_penalty(
                observations, next_observations, current_q, conditions=policy_betas, next_conditions=next_betas
            )
            cql_weight = self.cql_weight()
            critic_loss = td_loss + cql_weight * penalty.gap.sum()

            # Steps, the balance model's first: its loss runs through the policy and the critics before they move.
            if balance_loss is not None:
                self.balance_model.optimizer.zero_grad()
                balance_loss.backward(inputs=list(self.balance_model.parameters()))
                self.balance_model.optimizer.step()
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

            self._log_betas(logs, balance, policy_betas)
            q_sampled = penalty.sampled_q[0].unflatten(1, (3, self.cql_n_actions)).mean(dim=(0, 2))
            step_logs = {
                "ent_coef": ent_coef, "actor_loss": actor_loss, "log_pi": log_prob.mean(), "critic_loss": critic_loss,
                "td_loss": td_loss, "cql_gap": penalty.gap.mean(), "cql_weight": cql_weight,
                "q_data": current_q[0].mean(), "q_target": target_q.mean(), "q_random": q_sampled[0],
                "q_next_actions": q_sampled[1], "q_policy": q_sampled[2],
            }
            if balance_loss is not None:
                step_logs["balance_loss"] = balance_loss
            if ent_coef_loss is not None:
                step_logs["ent_coef_loss"] = ent_coef_loss
            if cql_alpha_loss is not None:
                step_logs["cql_alpha_loss"] = cql_alpha_loss
            values = th.stack([value.detach().reshape(()).float() for value in step_logs.values()]).tolist()
            for key, value in zip(step_logs, values):
                logs[key].append(value)
            logs["behaviour_cloning"].append(float(behaviour_cloning))

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        for key, items in logs.items():
            self.logger.record(f"train/{key}", float(np.mean(items)))

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, variables = super()._get_torch_save_params()
        return [*state_dicts, "balance_model.optimizer"], variables


__all__ = ["FamO2O", "FamO2OCQL"]

if __name__ == "__main__":
    from rl.cli import main

    sys.exit(main("famo2o"))
