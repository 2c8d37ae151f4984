"""Multi-objective PPO: one value head per objective, GAE per objective, a scalar advantage for PPO's clip.

The policy optimiser of PGMORL (Xu et al., ICML 2020) and C-MORL (Liu et al., ICLR 2025; authors' code
github RuohLiuq/C-MORL, ``a2c_ppo_acktr/algo/ppo.py``), as an SB3 ``OnPolicyAlgorithm``:

- Preference mode (``weights``, C-MORL's stage 1): the advantage is w . (R - V) on the raw objective scale
  (the normalised returns times each objective's running return std, as the authors' ``update`` does).
- Constrained mode (``target_objective=i``, C-MORL's stage 2, "IPO"): the advantage is objective i's, and
  :func:`algos.cmorl_barrier.barrier_loss` keeps every other objective above ``beta`` times its return.

In both the scalar advantage is standardised over the whole rollout (the authors standardise before
minibatching; SB3's PPO does it per minibatch), PPO's clipped surrogate is minimised, and the value loss is
the authors' clipped one, 0.5 * max((V - R)^2, (V_clip - R)^2), over all objectives.

Vector rewards arrive through ``info["vector_reward"]`` (:mod:`rl.vector_reward`); a VecEnv made with
:func:`rl.vector_reward.make_mo_vec_env` normalises observations and each objective like the authors'
``--ob-rms --obj-rms``. The statistics are stored in the model's zip (``model.normalization``) so a loaded
model acts on raw observations through :meth:`MOPPO.predict_raw`.

In a script::

    from algos.moppo import MOPPO
    model = MOPPO("MlpPolicy", "mo-hopper-2obj-v5", weights=[0.5, 0.5]).learn(100_000)
"""

from __future__ import annotations

import io
import pathlib
from collections.abc import Iterable, Sequence
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

from algos.cmorl_barrier import BARRIER_FLOOR, BARRIER_T, BETA, barrier_loss
from algos.moppo_losses import clipped_surrogate, clipped_value_loss, scalar_advantages
from algos.moppo_policies import MOActorCriticPolicy
from rl.mo_buffer import VectorRolloutBuffer
from rl.simplex import check_preference
from rl.vector_reward import (
    EPISODE_VECTOR_RETURN_KEY,
    VectorRewardInInfo,
    find_mo_normalizer,
    make_mo_vec_env,
    normalize_observation,
    vector_rewards,
)

SelfMOPPO = TypeVar("SelfMOPPO", bound="MOPPO")

__all__ = ["MOPPO"]

MINIBATCHES = 32
"""Minibatches per epoch in the authors' PPO (``--num-mini-batch 32``); ``batch_size=None`` uses it."""


class MOPPO(OnPolicyAlgorithm):
    """PPO on vector rewards with a preference vector or one objective under log-barrier constraints.

    :param policy: "MlpPolicy" (:class:`algos.moppo_policies.MOActorCriticPolicy`) or a subclass of it.
    :param env: a VecEnv from :func:`rl.vector_reward.make_mo_vec_env`, a mo-gymnasium env, or its id.
    :param weights: preference vector on the simplex, one weight per objective (default: uniform).
    :param target_objective: None for the preference mode; i to maximise objective i under constraints.
    :param beta: constraint level of the other objectives (fraction of their current return).
    :param barrier_t: log-barrier coefficient t (the barrier is weighted 1/t).
    :param barrier_floor: smallest argument of the barrier's logarithm.
    :param batch_size: minibatch size; None splits each rollout into 32 minibatches as the authors do.
    :param clip_range_vf: clip of the value update around the old values (the authors use clip_range).

    Other parameters as SB3's PPO; defaults are the authors' (lr 3e-4, 2048 steps, 10 epochs, gamma
    0.995, GAE 0.95, clip 0.2, no entropy bonus, vf_coef 0.5, max grad norm 0.5).
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": MOActorCriticPolicy}
    rollout_buffer: VectorRolloutBuffer
    policy: MOActorCriticPolicy

    def __init__(
        self,
        policy: str | type[MOActorCriticPolicy],
        env: GymEnv | str,
        weights: Sequence[float] | None = None,
        target_objective: int | None = None,
        learning_rate: float | Schedule = 3e-4,
        n_steps: int = 2048,
        batch_size: int | None = None,
        n_epochs: int = 10,
        gamma: float = 0.995,
        gae_lambda: float = 0.95,
        clip_range: float = 0.2,
        clip_range_vf: float | None = 0.2,
        normalize_advantage: bool = True,
        ent_coef: float = 0.0,
        vf_coef: float = 0.5,
        max_grad_norm: float = 0.5,
        beta: float = BETA,
        barrier_t: float = BARRIER_T,
        barrier_floor: float = BARRIER_FLOOR,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        env = _as_vector_reward_env(env, gamma, seed)
        if env is None:  # SB3's load builds the object without an env, then restores the saved attributes
            n_objectives = len(weights) if weights is not None else 0
        else:
            n_objectives = int(env.get_attr("n_objectives")[0]) if isinstance(env, VecEnv) else env.n_objectives
        env_id = _env_id(env)
        self.n_objectives = n_objectives
        self.weights = None if n_objectives == 0 else check_preference(
            np.full(n_objectives, 1.0 / n_objectives) if weights is None else weights, n_objectives, env_id
        )
        if target_objective is not None and not 0 <= int(target_objective) < n_objectives:
            raise ValueError(f"target_objective must be an objective index 0..{n_objectives - 1} of {env_id}, "
                             f"got {target_objective}")
        self.target_objective = None if target_objective is None else int(target_objective)
        for name, value in (("beta", beta), ("barrier_t", barrier_t), ("barrier_floor", barrier_floor),
                            ("clip_range", clip_range)):
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number, got {value}")
        self.beta, self.barrier_t, self.barrier_floor = float(beta), float(barrier_t), float(barrier_floor)
        self.clip_range_value = float(clip_range)
        self.clip_range_vf_value = None if clip_range_vf is None else float(clip_range_vf)
        self.batch_size = batch_size
        self.n_epochs = n_epochs
        self.normalize_advantage = normalize_advantage
        self.normalization: dict[str, Any] | None = None
        policy_kwargs = {**(policy_kwargs or {}), "n_objectives": n_objectives}
        super().__init__(
            policy, env, learning_rate=learning_rate, n_steps=n_steps, gamma=gamma, gae_lambda=gae_lambda,
            ent_coef=ent_coef, vf_coef=vf_coef, max_grad_norm=max_grad_norm, use_sde=False, sde_sample_freq=-1,
            rollout_buffer_class=VectorRolloutBuffer, rollout_buffer_kwargs={"n_objectives": n_objectives},
            stats_window_size=stats_window_size, tensorboard_log=tensorboard_log, policy_kwargs=policy_kwargs,
            verbose=verbose, seed=seed, device=device, _init_setup_model=False,
            supported_action_spaces=(spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary),
        )
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        super()._setup_model()
        if self.batch_size is None:
            self.batch_size = max(1, self.n_steps * self.n_envs // MINIBATCHES)
        if self.n_steps * self.n_envs < 2 and self.normalize_advantage:
            raise ValueError("n_steps * n_envs must be > 1 to standardise advantages over the rollout")
        self._episode_vector_returns: list[np.ndarray] = []

    # ---- rollouts -------------------------------------------------------------------------------------
    def collect_rollouts(self, env: VecEnv, callback: BaseCallback, rollout_buffer: RolloutBuffer,
                         n_rollout_steps: int) -> bool:
        """SB3's on-policy collection with the reward vectors of the infos and a vector value bootstrap at
        time limits."""
        assert self._last_obs is not None, "No previous observation was provided"
        self.policy.set_training_mode(False)
        n_steps = 0
        rollout_buffer.reset()
        callback.on_rollout_start()
        while n_steps < n_rollout_steps:
            with th.no_grad():
                actions, values, log_probs = self.policy(obs_as_tensor(self._last_obs, self.device))
            actions = actions.cpu().numpy()
            clipped_actions = actions
            if isinstance(self.action_space, spaces.Box):
                clipped_actions = np.clip(actions, self.action_space.low, self.action_space.high)
            new_obs, _, dones, infos = env.step(clipped_actions)
            self.num_timesteps += env.num_envs
            callback.update_locals(locals())
            if not callback.on_step():
                return False
            self._update_info_buffer(infos, dones)
            for info in infos:
                if EPISODE_VECTOR_RETURN_KEY in info:
                    self._episode_vector_returns.append(np.asarray(info[EPISODE_VECTOR_RETURN_KEY]))
            n_steps += 1
            if isinstance(self.action_space, spaces.Discrete):
                actions = actions.reshape(-1, 1)
            rewards = vector_rewards(infos, self.n_objectives)
            for index, done in enumerate(dones):
                if done and infos[index].get("terminal_observation") is not None and infos[index].get(
                        "TimeLimit.truncated", False):
                    terminal_obs = self.policy.obs_to_tensor(infos[index]["terminal_observation"])[0]
                    with th.no_grad():
                        terminal_value = self.policy.predict_values(terminal_obs)[0]
                    rewards[index] += self.gamma * terminal_value.cpu().numpy()
            rollout_buffer.add(self._last_obs, actions, rewards, self._last_episode_starts, values, log_probs)
            self._last_obs = new_obs
            self._last_episode_starts = dones
        with th.no_grad():
            values = self.policy.predict_values(obs_as_tensor(new_obs, self.device))
        rollout_buffer.compute_returns_and_advantage(last_values=values, dones=dones)
        callback.update_locals(locals())
        callback.on_rollout_end()
        return True

    # ---- update ---------------------------------------------------------------------------------------
    def objective_scale(self) -> np.ndarray:
        """Each objective's running return std (1 without objective normalisation): raw = normalised * it."""
        normalizer = find_mo_normalizer(self.env)
        return np.ones(self.n_objectives) if normalizer is None else normalizer.objective_scale()

    def scalar_advantages(self, advantages: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """The advantage PPO's clip sees (:func:`algos.moppo_losses.scalar_advantages` with this model's mode)."""
        return scalar_advantages(advantages, scale, self.weights, self.target_objective, self.normalize_advantage)

    def policy_loss(self, ratio: th.Tensor, advantages: th.Tensor, returns: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """PPO's clipped surrogate (to minimise) plus, in the constrained mode, the barrier; returns both
        the total and the barrier (0 in the preference mode)."""
        surrogate = clipped_surrogate(ratio, advantages, self.clip_range_value)
        if self.target_objective is None:
            return surrogate, th.zeros(())
        barrier = barrier_loss(ratio, returns, self.target_objective, clip_range=self.clip_range_value,
                               beta=self.beta, t=self.barrier_t, floor=self.barrier_floor)
        return surrogate + barrier, barrier

    def value_loss(self, values: th.Tensor, old_values: th.Tensor, returns: th.Tensor) -> th.Tensor:
        """The authors' clipped value loss over all objectives (:func:`algos.moppo_losses.clipped_value_loss`)."""
        return clipped_value_loss(values, old_values, returns, self.clip_range_vf_value)

    def train(self) -> None:
        """``n_epochs`` passes of minibatch updates on the rollout."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        buffer = self.rollout_buffer
        buffer.policy_advantages = self.scalar_advantages(buffer.advantages, self.objective_scale())
        logs: dict[str, list[float]] = {"policy": [], "barrier": [], "value": [], "entropy": [], "clip": [],
                                        "kl": []}
        for _ in range(self.n_epochs):
            for batch in buffer.get(self.batch_size):
                actions = batch.actions
                if isinstance(self.action_space, spaces.Discrete):
                    actions = actions.long().flatten()
                values, log_prob, entropy = self.policy.evaluate_actions(batch.observations, actions)
                ratio = th.exp(log_prob - batch.old_log_prob)
                policy_loss, barrier = self.policy_loss(ratio, batch.policy_advantages, batch.returns)
                value_loss = self.value_loss(values, batch.old_values, batch.returns)
                entropy_loss = -th.mean(entropy) if entropy is not None else -th.mean(-log_prob)
                loss = policy_loss + self.ent_coef * entropy_loss + self.vf_coef * value_loss
                self.policy.optimizer.zero_grad()
                loss.backward()
                th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
                self.policy.optimizer.step()
                with th.no_grad():
                    log_ratio = log_prob - batch.old_log_prob
                    logs["kl"].append(th.mean((th.exp(log_ratio) - 1) - log_ratio).item())
                logs["policy"].append(policy_loss.item())
                logs["barrier"].append(barrier.item())
                logs["value"].append(value_loss.item())
                logs["entropy"].append(entropy_loss.item())
                logs["clip"].append(th.mean((th.abs(ratio - 1) > self.clip_range_value).float()).item())
        self._n_updates += self.n_epochs
        self.logger.record("train/policy_loss", float(np.mean(logs["policy"])))
        self.logger.record("train/barrier_loss", float(np.mean(logs["barrier"])))
        self.logger.record("train/value_loss", float(np.mean(logs["value"])))
        self.logger.record("train/entropy_loss", float(np.mean(logs["entropy"])))
        self.logger.record("train/clip_fraction", float(np.mean(logs["clip"])))
        self.logger.record("train/approx_kl", float(np.mean(logs["kl"])))
        self.logger.record("train/explained_variance",
                           explained_variance(buffer.values.flatten(), buffer.returns.flatten()))
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        if self._episode_vector_returns:
            recent = np.stack(self._episode_vector_returns[-100:])
            for objective, value in enumerate(recent.mean(axis=0)):
                self.logger.record(f"rollout/ep_objective_{objective}_mean", float(value))
            self._episode_vector_returns = self._episode_vector_returns[-100:]

    def learn(self: SelfMOPPO, total_timesteps: int, callback: Any = None, log_interval: int = 1,
              tb_log_name: str = "MOPPO", reset_num_timesteps: bool = True, progress_bar: bool = False) -> SelfMOPPO:
        return super().learn(total_timesteps=total_timesteps, callback=callback, log_interval=log_interval,
                             tb_log_name=tb_log_name, reset_num_timesteps=reset_num_timesteps,
                             progress_bar=progress_bar)

    # ---- saving and acting on raw observations --------------------------------------------------------
    def save(self, path: str | pathlib.Path | io.BufferedIOBase, exclude: Iterable[str] | None = None,
             include: Iterable[str] | None = None) -> None:
        """SB3's save, with the env's observation and objective statistics in ``normalization``."""
        normalizer = find_mo_normalizer(self.env)
        if normalizer is not None:
            self.normalization = normalizer.get_statistics()
        super().save(path, exclude=exclude, include=include)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_episode_vector_returns"]

    def _setup_loaded(self) -> None:
        """After load: give a fresh MOVecNormalize the stored statistics."""
        normalizer = find_mo_normalizer(self.env)
        if normalizer is not None and self.normalization is not None and normalizer.obj_rms.count <= 1e-4:
            normalizer.set_statistics(self.normalization)

    @classmethod
    def load(cls, path: Any, env: GymEnv | None = None, device: th.device | str = "auto",
             custom_objects: dict[str, Any] | None = None, print_system_info: bool = False,
             force_reset: bool = True, **kwargs: Any) -> MOPPO:
        model = super().load(path, env=env, device=device, custom_objects=custom_objects,
                             print_system_info=print_system_info, force_reset=force_reset, **kwargs)
        if not hasattr(model, "_episode_vector_returns"):
            model._episode_vector_returns = []
        model._setup_loaded()
        return model

    @staticmethod
    def _wrap_env(env: GymEnv, verbose: int = 0, monitor_wrapper: bool = True) -> VecEnv:
        """SB3's wrapping, after :class:`VectorRewardInInfo` on a bare mo-gymnasium env, so that ``load(env=...)``
        and ``set_env`` accept the envs the constructor accepts (SB3 wraps them before ``__init__`` runs)."""
        if isinstance(env, gym.Env):
            env = _as_vector_reward_env(env, gamma=0.0, seed=None)  # gamma and seed are only used for an id
        return OnPolicyAlgorithm._wrap_env(env, verbose, monitor_wrapper)

    def set_env(self, env: GymEnv, force_reset: bool = True) -> None:
        super().set_env(env, force_reset=force_reset)
        self._setup_loaded()

    def current_statistics(self) -> dict[str, Any] | None:
        """The live env's statistics if it normalises, else those stored with the model."""
        normalizer = find_mo_normalizer(self.env)
        return normalizer.get_statistics() if normalizer is not None else self.normalization

    def predict_raw(self, observation: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """The action for a raw (unnormalised) observation, normalised with the model's statistics."""
        action, _ = self.predict(normalize_observation(observation, self.current_statistics()),
                                 deterministic=deterministic)
        return action


def _env_id(env: Any) -> str:
    try:
        spec = env.get_attr("spec")[0] if isinstance(env, VecEnv) else env.spec
    except (AttributeError, IndexError):
        spec = None
    return spec.id if spec is not None else "the env"


def _as_vector_reward_env(env: GymEnv | str | None, gamma: float, seed: int | None) -> GymEnv | None:
    """An env id becomes a normalised MO VecEnv; a bare mo-gymnasium env gets :class:`VectorRewardInInfo`."""
    if env is None:
        return None
    if isinstance(env, str):
        return make_mo_vec_env(env, n_envs=1, seed=seed, gamma=gamma, max_episode_steps=None)
    if isinstance(env, gym.Env):
        wrapper = env
        while isinstance(wrapper, gym.Wrapper):
            if isinstance(wrapper, VectorRewardInInfo):
                return env
            wrapper = wrapper.env
        return VectorRewardInInfo(env)
    return env


