"""SubPO: policy gradient on the marginal gains of a submodular reward.

Paper: Prajapat, Mutny, Zeilinger, Krause. "Submodular Reinforcement Learning", ICLR 2024.
https://arxiv.org/abs/2307.13372 . Authors' code: github.com/manish-pra/non-additive-RL (``main.py``).

Run it: ``python -m algos.subpo --env Coverage-GP-History-v0 -n 20000`` (the coverage tasks of
:mod:`envs.submodular`, whose rewards are the marginal gains; REINFORCE with a per-time-step baseline), or
``python -m algos.subpo --env AntCoverage-v0 -n 300000`` (MuJoCo Ant covering the plane,
:mod:`envs.ant_coverage`; the actor-critic form of the authors' ``gym_env/gym_subrl.py``).
``reward="modular"`` trains the same learner on the paper's modular baseline reward (the authors' "SRL");
:class:`ModularCoverageReward` is the same reward as a Gymnasium wrapper, for other learners.
"""

from __future__ import annotations

import sys
from typing import Any, ClassVar, TypeVar

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, Schedule
from stable_baselines3.common.utils import explained_variance, obs_as_tensor
from stable_baselines3.common.vec_env import VecEnv

from algos.subpo_policies import SubPOActorCriticPolicy, SubPOPolicy

SelfSubPO = TypeVar("SelfSubPO", bound="SubPO")

__all__ = ["ModularCoverageReward", "SubPO", "modular_reward", "returns_to_go", "time_step_baseline"]

REWARDS = ("submodular", "modular")
SUBMODULAR_TASKS = tuple(
    f"{task}{suffix}-v0" for task in ("Coverage-Constant", "Coverage-Bimodal", "Coverage-GP", "ExperimentDesign",
                                       "ItemCollection", "AntCoverage") for suffix in ("", "-History")
)
"""The registered envs with SubPO's interface (``envs/__init__.py``)."""
SUBMODULAR_INTERFACE = ("F", "horizon")
"""Attributes every SubPO env has (``envs.submodular.SubmodularGridEnv``, ``envs.ant_coverage.AntCoverageEnv``)."""
BASELINES = ("time_step", "critic")
COVERAGE_PICTURE = "coverage.png"
"""File name of :meth:`SubPO.write_run_artifacts`' picture in the run folder."""


def modular_reward(coverage: Any, row: int, col: int) -> float:
    """Weight-sum of the cells the state (row, col) covers, ignoring what was covered before.

    The authors' "SRL" reward (``utils/environment.py``, ``ret_cell_coverage`` with ``type="SRL"``): the
    return of a trajectory counts every visit's footprint again, so it is additive over states.

    :param coverage: an ``envs.submodular.WeightedCoverage``.
    """
    return coverage.value([coverage.index(row, col)])


class ModularCoverageReward(gym.Wrapper):
    """Replaces a coverage env's marginal-gain reward by the modular reward of the new state.

    Step h pays ``modular_reward`` of s_{h+1}; the first step also pays that of s_0, as the env pays
    F({s_0}) on its first step, so the episode return is sum_h w(N(s_h)) over all states of the trajectory.
    The env's own (submodular) reward is kept in ``info["submodular_reward"]``.

    :param env: a ``envs.submodular.CoverageGridEnv`` (possibly wrapped); its ``F`` is the coverage.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.coverage = env.get_wrapper_attr("F")
        self._start_reward = 0.0
        self._t = 0

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        self._start_reward = modular_reward(self.coverage, int(obs[0]), int(obs[1]))
        self._t = 0
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        info = dict(info, submodular_reward=reward)
        modular = modular_reward(self.coverage, int(obs[0]), int(obs[1]))
        if self._t == 0:
            modular += self._start_reward
        self._t += 1
        return obs, modular, terminated, truncated, info


def returns_to_go(rewards: np.ndarray, episode_starts: np.ndarray) -> np.ndarray:
    """G_t = r_t + r_{t+1} + ... up to the end of t's episode (undiscounted, as the paper: gamma = 1).

    :param rewards: shape (n_steps, n_envs), in collection order.
    :param episode_starts: same shape; True where the step is the first of an episode.
    :return: array of the rewards' shape. An episode cut by the end of the rollout sums what was collected.
    """
    returns = np.zeros_like(rewards, dtype=np.float64)
    running = np.zeros(rewards.shape[1:], dtype=np.float64)
    for t in reversed(range(len(rewards))):
        running = rewards[t] + running
        returns[t] = running
        running = np.where(episode_starts[t], 0.0, running)
    return returns


def time_step_baseline(returns: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """b_t: the batch mean of the returns-to-go at each time step t of an episode.

    :param returns: returns-to-go, any shape.
    :param steps: time step within its episode of each entry, same shape.
    :return: the baseline of each entry, same shape.
    """
    flat_steps = steps.reshape(-1).astype(np.int64)
    sums = np.bincount(flat_steps, weights=returns.reshape(-1))
    counts = np.bincount(flat_steps)
    means = sums / np.maximum(counts, 1)
    return means[flat_steps].reshape(returns.shape)


class SubPO(OnPolicyAlgorithm):
    """SubPO: policy gradient on the marginal gains of a submodular objective.

    Two forms, chosen by ``baseline`` (default by action space): "time_step" for Discrete actions (the
    grid tasks), REINFORCE with a per-time-step batch-mean baseline; "critic" for Box actions (the
    continuous tasks), the authors' actor-critic.

    ``baseline="time_step"`` (REINFORCE). Each update collects whole episodes (``episodes_per_update`` of
    them across the envs), computes each step's return-to-go of the marginal-gain rewards,
    G_t = sum_{h >= t} F(s_{h+1} | tau_{0:h}) (so G_0 = F(tau)), subtracts the baseline b_t = mean of G_t
    over the batch's episodes at the same time step t, and takes one gradient step on

        L(theta) = -mean over the batch of [log pi_theta(a_t | obs_t) * (G_t - b_t)] - ent_coef * entropy.

    The policy sees what the env observes: use the ``-History`` coverage envs for the non-Markovian policy
    (position, t and the visited map), the plain ids for the Markovian one (position, t).

    Deviations from the authors' code (``main.py``), each stated:

    - The authors weight log pi(a_h | .) by F(tau_{0:h+1}) / MAX_Ret (the value so far, the line computing
      the marginal gain is commented out) with no baseline; here the weight is the paper's return-to-go of
      marginal gains minus the per-time-step batch mean, the unbiased REINFORCE estimator with a baseline.
    - No division by the authors' MAX_Ret = 2 (H + 1) (Adam is nearly invariant to the scale); the entropy
      bonus is constant (the authors divide it by the epoch number; their configs set it to 0).
    - The history enters as the visited map of the env (the authors pad the list of visited states with -1).

    ``baseline="critic"`` (actor-critic, the authors' ``gym_env/gym_subrl.py``). The policy is
    :class:`~algos.subpo_policies.SubPOActorCriticPolicy`: a Gaussian actor (tanh mean, state-independent
    log-std) and a separate value critic. Each update collects ``n_steps`` steps per env (the authors: 15
    envs x 400 steps), computes the advantages A_t by GAE(``gamma``, ``gae_lambda``) on the marginal-gain
    rewards with the critic's values (SB3's ``RolloutBuffer.compute_returns_and_advantage``), and takes one
    gradient step on

        L = -mean[log pi(a_t | obs_t) * A_t] - ent_coef * entropy + vf_coef * mean[(V(obs_t) - R_t)^2],

    R_t = A_t + V(obs_t) the GAE return. Deviations from the authors' code, each stated:

    - The paper names a natural-policy-gradient variant for large spaces; this is a plain (Adam) gradient
      step, as the authors' Ant code takes.
    - One Adam optimizer for both nets instead of two: the same step when there is no gradient-norm clip
      (see ``SubPOActorCriticPolicy``).
    - SB3's Gaussian entropy sums over action dimensions, the authors' averages them: their 0.01 is
      ``ent_coef = 0.01 / action_dim`` here (0.00125 for Ant, in ``hyperparams/subpo.yml``).
    - Rollouts continue across updates (SB3's on-policy loop) rather than resetting every env at each
      update, and truncated episodes (the env's 400-step limit, or the rollout's end) are bootstrapped with
      the critic; the authors reset every 400 steps and treat the last step as terminal (value 0).
    - Actions are clipped to the Box before the env step (MuJoCo clamps Ant's controls to the same range).

    :param policy: the policy model ("MlpPolicy" or a class).
    :param env: the environment (or its Gymnasium id); Discrete or Box actions, fixed-length or
        terminating episodes.
    :param learning_rate: Adam learning rate (constant or schedule). Authors: 1e-3 (grid), 1e-2 (Ant).
    :param episodes_per_update: episodes per gradient step, over all envs (rounded up to a multiple of
        ``n_envs``). Authors: 500 (grid), 15 (Ant).
    :param episode_length: env steps per episode; None reads ``horizon - 1`` from the env (the coverage
        envs; 400 for Ant). Rollouts are ``episodes_per_update / n_envs * episode_length`` steps per env.
    :param reward: "submodular" learns from the env's rewards (the marginal gains); "modular" from the
        modular reward F({s_{h+1}}) of each new state (the paper's modular baseline). Envs that report the
        new state's cell in ``info["cell"]`` (and, on an episode's first step, ``info["start_cell"]`` when
        that step's reward pays F({s_0}) too) get it from their ``F`` divided by their ``reward_scale``
        attribute (1 if none), e.g. :class:`envs.ant_coverage.AntCoverageEnv`; the grid envs get
        ``modular_reward`` of the (row, column) read from their raw observations, so no observation
        normalisation there.
    :param ent_coef: entropy bonus (authors: 0 on the grid, 0.01 per action dimension on Ant).
    :param max_grad_norm: global gradient-norm clip (None or inf: none, as the authors).
    :param baseline: "time_step" (REINFORCE, Discrete actions only) or "critic" (actor-critic with GAE);
        None: "time_step" for Discrete, "critic" for Box action spaces.
    :param gamma: discount of the critic form's GAE (authors: 0.99); the REINFORCE form is undiscounted.
    :param gae_lambda: GAE lambda of the critic form (authors: 0.95).
    :param vf_coef: weight of the critic's squared error in the critic form's loss (authors: 1).
    :param stats_window_size: episodes averaged in the rollout logs.
    :param tensorboard_log: tensorboard log folder (None: no logging).
    :param policy_kwargs: keyword arguments for the policy (e.g. ``net_arch``).
    :param verbose: 0 none, 1 training information, 2 debug.
    :param seed: random seed.
    :param device: torch device.
    :param _init_setup_model: build the networks on construction.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": SubPOPolicy}
    """"MlpPolicy" is ``SubPOPolicy`` for ``baseline="time_step"``, ``SubPOActorCriticPolicy`` for "critic"."""
    policy: SubPOPolicy | SubPOActorCriticPolicy

    def __init__(
        self,
        policy: str | type[SubPOPolicy] | type[SubPOActorCriticPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 1e-3,
        episodes_per_update: int = 500,
        episode_length: int | None = None,
        reward: str = "submodular",
        ent_coef: float = 0.0,
        max_grad_norm: float | None = None,
        baseline: str | None = None,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        vf_coef: float = 1.0,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ):
        if reward not in REWARDS:
            raise ValueError(f"reward must be 'submodular' or 'modular', got {reward!r}")
        if episodes_per_update < 1:
            raise ValueError(f"episodes_per_update must be >= 1, got {episodes_per_update}")
        if episode_length is not None and episode_length < 1:
            raise ValueError(f"episode_length must be >= 1 or None, got {episode_length}")
        if baseline is not None and baseline not in BASELINES:
            raise ValueError(f"baseline must be 'time_step', 'critic' or None (by action space), got {baseline!r}")
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            n_steps=1,  # set from the episodes below
            gamma=1.0,
            gae_lambda=1.0,
            ent_coef=ent_coef,
            vf_coef=0.0,
            max_grad_norm=float("inf") if max_grad_norm is None else max_grad_norm,
            use_sde=False,
            sde_sample_freq=-1,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            device=device,
            seed=seed,
            _init_setup_model=False,
            supported_action_spaces=(spaces.Discrete, spaces.Box),
        )
        if baseline is None and getattr(self, "action_space", None) is not None:
            baseline = "time_step" if isinstance(self.action_space, spaces.Discrete) else "critic"
        self.baseline = baseline
        if baseline == "critic":
            self.gamma, self.gae_lambda, self.vf_coef = gamma, gae_lambda, vf_coef
            if isinstance(policy, str):
                self.policy_class = SubPOActorCriticPolicy
        self.episodes_per_update = episodes_per_update
        self.reward = reward
        if self.env is not None:
            self._check_submodular_env(self.env)
            if self.baseline == "time_step" and -(-episodes_per_update // self.n_envs) * self.n_envs < 2:
                raise ValueError(
                    "episodes_per_update must be >= 2 with baseline='time_step': the baseline is the mean return-to-go "
                    "over the update's episodes, so with one episode every advantage is zero and nothing is learned"
                )
            if episode_length is None:
                horizons = self.env.get_attr("horizon")
                if len(set(horizons)) != 1:
                    raise ValueError(f"envs have different horizons {horizons}; pass episode_length")
                episode_length = int(horizons[0]) - 1
            self.n_steps = -(-episodes_per_update // self.n_envs) * episode_length
        self.episode_length = episode_length
        if _init_setup_model:
            self._setup_model()

    @staticmethod
    def _check_submodular_env(env: VecEnv) -> None:
        """Refuse, in one line naming the tasks that have it, an env without SubPO's interface: its set function
        ``F`` (the modular reward and the coverage picture read it) and ``horizon`` (states per episode: the
        update collects whole episodes), with marginal-gain rewards."""
        missing = [name for name in SUBMODULAR_INTERFACE if not env.has_attr(name)]
        if missing:
            spec = env.get_attr("spec")[0] if env.has_attr("spec") else None
            raise ValueError(
                f"SubPO trains on submodular tasks, whose envs expose their set function F and horizon and pay "
                f"marginal gains; {spec.id if spec is not None else 'this env'} has no {' or '.join(missing)}. "
                f"Tasks that do: {', '.join(SUBMODULAR_TASKS)}"
            )

    def _setup_model(self) -> None:
        if self.baseline == "time_step" and not isinstance(self.action_space, spaces.Discrete):
            raise ValueError(
                f"baseline='time_step' needs a Discrete action space, got {self.action_space}; use baseline='critic'"
            )
        critic_policy = issubclass(self.policy_class, SubPOActorCriticPolicy)
        if (self.baseline == "critic") != critic_policy:
            raise ValueError(
                f"baseline={self.baseline!r} does not fit the policy {self.policy_class.__name__}: "
                "pass 'MlpPolicy', or SubPOActorCriticPolicy for 'critic', SubPOPolicy for 'time_step'"
            )
        super()._setup_model()
        self._episode_step = np.zeros(self.n_envs, dtype=np.int64)
        self._rollout_steps = np.zeros((self.n_steps, self.n_envs), dtype=np.int64)
        self._coverage = None
        self._reward_scales = None

    def _learner_rewards(self, env: VecEnv, rewards: np.ndarray, new_obs: np.ndarray, dones, infos) -> np.ndarray:
        """The env's rewards, or with ``reward="modular"`` the modular reward of each new state."""
        if self.reward == "submodular":
            return rewards
        if all("cell" in info for info in infos):
            return self._cell_modular_rewards(env, infos)
        if self.get_vec_normalize_env() is not None and self.get_vec_normalize_env().norm_obs:
            raise ValueError("reward='modular' reads the cell from the observation: turn off obs normalisation")
        if self._coverage is None:
            self._coverage = env.get_attr("F")
        modular = np.zeros(len(rewards), dtype=np.float64)
        for i in range(len(rewards)):
            obs = infos[i]["terminal_observation"] if dones[i] else new_obs[i]
            modular[i] = modular_reward(self._coverage[i], int(obs[0]), int(obs[1]))
            if self._episode_step[i] == 0:  # the env pays F({s_0}) on its first step: pay w(N(s_0))
                start = self._rollout_start_obs[i]
                modular[i] += modular_reward(self._coverage[i], int(start[0]), int(start[1]))
        return modular

    def _cell_modular_rewards(self, env: VecEnv, infos: list[dict[str, Any]]) -> np.ndarray:
        """F({s_{h+1}}) (plus F({s_0}) where ``info["start_cell"]`` is given) / the env's ``reward_scale``."""
        if self._coverage is None:
            self._coverage = env.get_attr("F")
            scaled = env.has_attr("reward_scale")
            self._reward_scales = env.get_attr("reward_scale") if scaled else [1.0] * env.num_envs
        modular = np.zeros(len(infos), dtype=np.float64)
        for i, info in enumerate(infos):
            cells = [info["cell"]] + ([info["start_cell"]] if "start_cell" in info else [])
            modular[i] = sum(self._coverage[i].value([cell]) for cell in cells) / self._reward_scales[i]
        return modular

    def collect_rollouts(
        self, env: VecEnv, callback: BaseCallback, rollout_buffer: RolloutBuffer, n_rollout_steps: int
    ) -> bool:
        """Collect ``n_rollout_steps`` steps per env with the current policy (no values, no bootstrapping)."""
        if self.baseline == "critic":
            return self._collect_critic_rollouts(env, callback, rollout_buffer, n_rollout_steps)
        assert self._last_obs is not None, "No previous observation was provided"
        self.policy.set_training_mode(False)
        rollout_buffer.reset()
        callback.on_rollout_start()
        zeros = th.zeros(self.n_envs, device=self.device)
        for n_steps in range(n_rollout_steps):
            with th.no_grad():
                actions, log_probs = self.policy(obs_as_tensor(self._last_obs, self.device))
            actions = actions.cpu().numpy()
            self._rollout_start_obs = self._last_obs
            new_obs, rewards, dones, infos = env.step(actions)
            self.num_timesteps += env.num_envs
            callback.update_locals(locals())
            if not callback.on_step():
                return False
            self._update_info_buffer(infos, dones)
            learner_rewards = self._learner_rewards(env, rewards, new_obs, dones, infos)
            self._rollout_steps[n_steps] = self._episode_step
            rollout_buffer.add(
                self._last_obs, actions.reshape(-1, 1), learner_rewards, self._last_episode_starts, zeros, log_probs
            )
            self._episode_step = np.where(dones, 0, self._episode_step + 1)
            self._last_obs = new_obs
            self._last_episode_starts = dones

        returns = returns_to_go(rollout_buffer.rewards, rollout_buffer.episode_starts)
        rollout_buffer.returns[:] = returns
        rollout_buffer.advantages[:] = returns - time_step_baseline(returns, self._rollout_steps)
        callback.update_locals(locals())
        callback.on_rollout_end()
        return True

    def _collect_critic_rollouts(
        self, env: VecEnv, callback: BaseCallback, rollout_buffer: RolloutBuffer, n_rollout_steps: int
    ) -> bool:
        """Collect ``n_rollout_steps`` steps per env with values, then GAE on the learner's rewards."""
        assert self._last_obs is not None, "No previous observation was provided"
        self.policy.set_training_mode(False)
        rollout_buffer.reset()
        callback.on_rollout_start()
        for n_steps in range(n_rollout_steps):
            with th.no_grad():
                actions, values, log_probs = self.policy(obs_as_tensor(self._last_obs, self.device))
            actions = actions.cpu().numpy()
            env_actions = actions
            if isinstance(self.action_space, spaces.Box):
                env_actions = np.clip(actions, self.action_space.low, self.action_space.high)
            self._rollout_start_obs = self._last_obs
            new_obs, rewards, dones, infos = env.step(env_actions)
            self.num_timesteps += env.num_envs
            callback.update_locals(locals())
            if not callback.on_step():
                return False
            self._update_info_buffer(infos, dones)
            learner_rewards = np.array(self._learner_rewards(env, rewards, new_obs, dones, infos), dtype=np.float64)
            for i, done in enumerate(dones):  # bootstrap a time-limit truncation with the critic's V(s_H)
                if done and infos[i].get("terminal_observation") is not None and infos[i].get("TimeLimit.truncated"):
                    terminal_obs = self.policy.obs_to_tensor(infos[i]["terminal_observation"])[0]
                    with th.no_grad():
                        learner_rewards[i] += self.gamma * self.policy.predict_values(terminal_obs)[0].item()
            self._rollout_steps[n_steps] = self._episode_step
            if isinstance(self.action_space, spaces.Discrete):
                actions = actions.reshape(-1, 1)
            rollout_buffer.add(self._last_obs, actions, learner_rewards, self._last_episode_starts, values, log_probs)
            self._episode_step = np.where(dones, 0, self._episode_step + 1)
            self._last_obs = new_obs
            self._last_episode_starts = dones

        with th.no_grad():
            values = self.policy.predict_values(obs_as_tensor(new_obs, self.device))
        rollout_buffer.compute_returns_and_advantage(last_values=values, dones=dones)
        callback.update_locals(locals())
        callback.on_rollout_end()
        return True

    def train(self) -> None:
        """One policy-gradient step on the collected batch (REINFORCE or actor-critic, by ``baseline``)."""
        if self.baseline == "critic":
            self._train_actor_critic()
            return
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        batch = next(self.rollout_buffer.get(batch_size=None))
        dist = self.policy.get_distribution(batch.observations)
        log_prob = dist.log_prob(batch.actions.long().flatten())
        entropy = dist.entropy().mean()
        pg_loss = -(log_prob * batch.advantages).mean()
        loss = pg_loss - self.ent_coef * entropy
        self.policy.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
        self.policy.optimizer.step()
        self._n_updates += 1

        # G_0 of each episode is its F(tau) (modular value with reward="modular"). The buffer's arrays are flattened
        # env-major by get(), in rollout order; the batch itself is a shuffled copy, so it cannot be indexed here.
        episode_values = self.rollout_buffer.returns.reshape(-1)[self._rollout_steps.T.reshape(-1) == 0]
        self.logger.record("train/policy_gradient_loss", pg_loss.item())
        self.logger.record("train/entropy", entropy.item())
        self.logger.record("train/grad_norm", float(grad_norm))
        if len(episode_values) > 0:
            self.logger.record("train/batch_return_mean", float(episode_values.mean()))
            self.logger.record("train/batch_return_max", float(episode_values.max()))
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")

    def _train_actor_critic(self) -> None:
        """One step on -mean(log pi(a_t | obs_t) A_t) - ent_coef * entropy + vf_coef * mean((V - R_t)^2)."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        batch = next(self.rollout_buffer.get(batch_size=None))
        actions = batch.actions
        if isinstance(self.action_space, spaces.Discrete):
            actions = actions.long().flatten()
        values, log_prob, entropy = self.policy.evaluate_actions(batch.observations, actions)
        pg_loss = -(log_prob * batch.advantages).mean()
        entropy = entropy.mean()
        value_loss = th.nn.functional.mse_loss(batch.returns, values.flatten())
        loss = pg_loss - self.ent_coef * entropy + self.vf_coef * value_loss
        self.policy.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
        self.policy.optimizer.step()
        self._n_updates += 1

        self.logger.record("train/policy_gradient_loss", pg_loss.item())
        self.logger.record("train/value_loss", value_loss.item())
        self.logger.record("train/entropy", entropy.item())
        self.logger.record("train/grad_norm", float(grad_norm))
        self.logger.record("train/advantage_mean", batch.advantages.mean().item())
        self.logger.record(
            "train/explained_variance",
            explained_variance(self.rollout_buffer.values.flatten(), self.rollout_buffer.returns.flatten()),
        )
        if hasattr(self.policy, "log_std"):
            self.logger.record("train/std", th.exp(self.policy.log_std).mean().item())
        self.logger.record("train/batch_reward_mean", float(self.rollout_buffer.rewards.mean()))
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_coverage", "_rollout_start_obs", "_reward_scales"]

    def write_run_artifacts(self, run_dir: str, eval_env: VecEnv) -> dict[str, Any]:
        """``coverage.png``: the area one sampled trajectory of the final policy covers, with its F(tau).

        The runner calls this after the final evaluation. The episode runs on the evaluation env's first
        env without auto-reset, so the picture is the env's own ``rgb_array`` render of the last state (the
        visited and covered cells on the task's weights); the policy samples its actions, as SubPO's
        objective is F of sampled trajectories.
        """
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        vec_env = eval_env.unwrapped  # SB3's innermost VecEnv, below VecNormalize and the other wrappers
        if not hasattr(vec_env, "envs"):
            return {}
        env = vec_env.envs[0]
        base = env.unwrapped
        if not hasattr(base, "F") or not hasattr(base, "render_mode"):
            return {}
        normalizer = self.get_vec_normalize_env()
        previous_mode = base.render_mode
        base.render_mode = "rgb_array"
        try:
            obs, info = env.reset(seed=self.seed)
            value, done = float(info.get("F", 0.0)), False
            while not done:
                policy_obs = normalizer.normalize_obs(obs) if normalizer is not None else obs
                action, _ = self.predict(policy_obs, deterministic=False)
                obs, _, terminated, truncated, info = env.step(action)
                value, done = float(info.get("F", value)), terminated or truncated
            frame = base.render()
        finally:
            base.render_mode = previous_mode
        if frame is None:
            return {}
        figure, axis = plt.subplots(figsize=(5.0, 5.0 * frame.shape[0] / frame.shape[1]))
        axis.imshow(frame, origin="lower")
        axis.set_axis_off()
        axis.set_title(f"one sampled trajectory: F(tau) = {value:.1f}")
        figure.tight_layout()
        figure.savefig(f"{run_dir}/{COVERAGE_PICTURE}", dpi=100)
        plt.close(figure)
        return {"coverage_picture": {"file": COVERAGE_PICTURE, "F": value}}


if __name__ == "__main__":
    from rl.cli import main

    sys.exit(main("subpo"))
