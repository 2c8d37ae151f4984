"""Vector rewards through SB3's VecEnvs without forking SB3.

SB3's VecEnvs, Monitor and rollout buffers hold one scalar reward per step, while multi-objective envs
(mo-gymnasium's ``mo-hopper-2obj-v5``, ...) return a reward vector. :class:`VectorRewardInInfo` moves the
vector into ``info["vector_reward"]`` and gives SB3 a scalar (the weighted sum, so Monitor's episode
return is the scalarised return), so every VecEnv, Monitor and callback works unchanged.
:class:`MOVecNormalize` is SB3's VecNormalize with one reward normaliser per objective: each column is
divided by the running standard deviation of its own discounted return (PGMORL's and C-MORL's ``obj_rms``),
and the raw vector stays in ``info["raw_vector_reward"]``. Algorithms read the vectors back from the infos
with :func:`vector_rewards`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.vec_env import VecEnv, VecNormalize, unwrap_vec_wrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

VECTOR_REWARD_KEY = "vector_reward"
RAW_VECTOR_REWARD_KEY = "raw_vector_reward"
EPISODE_VECTOR_RETURN_KEY = "episode_vector_return"


class NotMultiObjectiveError(ValueError):
    """Raised for an env whose reward is a scalar where a reward vector is needed."""


def reward_dimension(env: gym.Env) -> int:
    """The number of objectives of a mo-gymnasium-style env (its ``reward_space``), checked to be >= 2.

    Raises:
        NotMultiObjectiveError: for an env without a vector ``reward_space`` (a single-objective env).
    """
    space = getattr(env.unwrapped, "reward_space", None)
    env_id = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
    if space is None or len(getattr(space, "shape", ())) != 1 or space.shape[0] < 2:
        raise NotMultiObjectiveError(
            f"{env_id} has a scalar reward, not a reward vector; pass a multi-objective env such as "
            "mo-hopper-2obj-v5, mo-halfcheetah-v5, mo-hopper-v5, deep-sea-treasure-v0 or mo-halfcheetah-bullet-v0."
        )
    return int(space.shape[0])


class VectorRewardInInfo(gym.Wrapper):
    """Returns the scalar ``weights . r`` as the reward and the vector r in ``info["vector_reward"]``.

    At the end of an episode ``info["episode_vector_return"]`` holds the undiscounted vector return, for
    logging. Without weights the scalar is the sum of the objectives.

    :param env: a mo-gymnasium-style env (its ``reward_space`` is a vector Box).
    :param weights: the scalarisation used for the scalar reward SB3 and Monitor see.
    """

    def __init__(self, env: gym.Env, weights: Sequence[float] | None = None) -> None:
        super().__init__(env)
        self.n_objectives = reward_dimension(env)
        self.weights = np.ones(self.n_objectives) if weights is None else np.asarray(weights, dtype=np.float64)
        self._episode_return = np.zeros(self.n_objectives)

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self._episode_return = np.zeros(self.n_objectives)
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        vector = np.asarray(reward, dtype=np.float32).reshape(self.n_objectives)
        self._episode_return += vector
        info = dict(info)
        info[VECTOR_REWARD_KEY] = vector
        if terminated or truncated:
            info[EPISODE_VECTOR_RETURN_KEY] = self._episode_return.copy()
        return obs, float(self.weights @ vector), terminated, truncated, info

    def get_resume_state(self) -> dict[str, Any]:
        """The running episode's vector return (rl.resume_state saves it with a checkpoint)."""
        return {"episode_return": self._episode_return.copy()}

    def set_resume_state(self, state: dict[str, Any]) -> None:
        self._episode_return = np.asarray(state["episode_return"], dtype=np.float64).copy()


def vector_rewards(infos: Sequence[dict[str, Any]], n_objectives: int) -> np.ndarray:
    """The (n_envs, n_objectives) reward vectors of one VecEnv step, read from the infos."""
    try:
        return np.stack([np.asarray(info[VECTOR_REWARD_KEY], dtype=np.float32) for info in infos]).reshape(
            len(infos), n_objectives
        )
    except KeyError as error:
        raise NotMultiObjectiveError(
            "the env's infos carry no 'vector_reward'; wrap each env in rl.vector_reward.VectorRewardInInfo "
            "(rl.vector_reward.make_mo_vec_env does it)"
        ) from error


class MOVecNormalize(VecNormalize):
    """VecNormalize that also normalises each objective of ``info["vector_reward"]`` on its own.

    Each objective's reward is divided by the running standard deviation of that objective's discounted
    return and clipped to ``clip_reward`` (no mean subtraction), as PGMORL's and C-MORL's ``obj_rms`` do.
    The scalar reward SB3 sees is left as it is (``norm_reward`` of the parent is forced off): the
    algorithm trains on the vectors. The statistics pickle with the wrapper (``save``/``load``) and
    :meth:`get_statistics` gives them to a model to save in its zip.
    """

    def __init__(self, venv: VecEnv, n_objectives: int, *, norm_obs: bool = True, norm_objectives: bool = True,
                 clip_obs: float = 10.0, clip_reward: float = 10.0, gamma: float = 0.99,
                 epsilon: float = 1e-8) -> None:
        super().__init__(venv, training=True, norm_obs=norm_obs, norm_reward=False, clip_obs=clip_obs,
                         clip_reward=clip_reward, gamma=gamma, epsilon=epsilon)
        self.n_objectives = int(n_objectives)
        self.norm_objectives = norm_objectives
        self.obj_rms = RunningMeanStd(shape=(self.n_objectives,))
        self.obj_returns = np.zeros((self.num_envs, self.n_objectives))

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = super().step_wait()
        vectors = vector_rewards(infos, self.n_objectives).astype(np.float64)
        if self.training and self.norm_objectives:
            self.obj_returns = self.obj_returns * self.gamma + vectors
            self.obj_rms.update(self.obj_returns)
        normalized = self.normalize_objectives(vectors)
        for index, info in enumerate(infos):
            info[RAW_VECTOR_REWARD_KEY] = vectors[index].astype(np.float32)
            info[VECTOR_REWARD_KEY] = normalized[index].astype(np.float32)
        self.obj_returns[dones] = 0.0
        return obs, rewards, dones, infos

    def reset(self):  # noqa: ANN201 - VecEnvObs
        self.obj_returns = np.zeros((self.num_envs, self.n_objectives))
        return super().reset()

    def normalize_objectives(self, vectors: np.ndarray) -> np.ndarray:
        """Divide each objective by its running return standard deviation and clip; identity when off."""
        if not self.norm_objectives:
            return vectors
        return np.clip(vectors / np.sqrt(self.obj_rms.var + self.epsilon), -self.clip_reward, self.clip_reward)

    def objective_scale(self) -> np.ndarray:
        """sqrt(var + eps) per objective: multiplying a normalised return by it recovers the raw scale."""
        if not self.norm_objectives:
            return np.ones(self.n_objectives)
        return np.sqrt(self.obj_rms.var + self.epsilon)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("obj_returns", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.obj_returns = None  # set again by set_venv

    def set_venv(self, venv: VecEnv) -> None:
        super().set_venv(venv)
        self.obj_returns = np.zeros((self.num_envs, self.n_objectives))

    def get_statistics(self) -> dict[str, Any]:
        """Observation and objective statistics (copies), for a model to store with its weights."""
        return {
            "obs_mean": None if not self.norm_obs else self.obs_rms.mean.copy(),
            "obs_var": None if not self.norm_obs else self.obs_rms.var.copy(),
            "obs_count": None if not self.norm_obs else float(self.obs_rms.count),
            "obj_mean": self.obj_rms.mean.copy(),
            "obj_var": self.obj_rms.var.copy(),
            "obj_count": float(self.obj_rms.count),
            "clip_obs": self.clip_obs,
            "clip_reward": self.clip_reward,
            "epsilon": self.epsilon,
            "gamma": self.gamma,
            "norm_obs": self.norm_obs,
            "norm_objectives": self.norm_objectives,
        }

    def set_statistics(self, statistics: dict[str, Any]) -> None:
        """Load statistics saved by :meth:`get_statistics` (e.g. from a model's zip)."""
        if statistics.get("obs_mean") is not None and self.norm_obs:
            self.obs_rms.mean = np.array(statistics["obs_mean"], dtype=np.float64)
            self.obs_rms.var = np.array(statistics["obs_var"], dtype=np.float64)
            self.obs_rms.count = statistics["obs_count"]
        self.obj_rms.mean = np.array(statistics["obj_mean"], dtype=np.float64)
        self.obj_rms.var = np.array(statistics["obj_var"], dtype=np.float64)
        self.obj_rms.count = statistics["obj_count"]


def normalize_observation(obs: np.ndarray, statistics: dict[str, Any] | None) -> np.ndarray:
    """Normalise an observation with saved :meth:`MOVecNormalize.get_statistics` (identity without)."""
    if statistics is None or statistics.get("obs_mean") is None:
        return obs
    scaled = (obs - statistics["obs_mean"]) / np.sqrt(statistics["obs_var"] + statistics["epsilon"])
    return np.clip(scaled, -statistics["clip_obs"], statistics["clip_obs"])


def find_mo_normalizer(venv: VecEnv | None) -> MOVecNormalize | None:
    """The MOVecNormalize in a VecEnv wrapper chain, or None (SB3's ``unwrap_vec_wrapper``)."""
    return None if venv is None else unwrap_vec_wrapper(venv, MOVecNormalize)


def make_mo_vec_env(env_id: str, *, n_envs: int = 1, seed: int | None = None, max_episode_steps: int | None = 500,
                    normalize: bool = True, gamma: float = 0.99, vec_env_class: str = "dummy",
                    monitor_dir: str | None = None) -> VecEnv:
    """The vectorised multi-objective env MOPPO trains on: Monitor and :class:`VectorRewardInInfo` per copy,
    then :class:`MOVecNormalize` (observations and each objective) unless ``normalize`` is False.

    ``max_episode_steps`` caps episodes (C-MORL's paper caps them at 500 steps); None keeps the env's own.
    """
    from rl.envs import make_env, make_training_env

    env_kwargs: dict[str, Any] = {"disable_env_checker": True}  # the checker warns at every vector reward
    if max_episode_steps is not None:
        env_kwargs["max_episode_steps"] = int(max_episode_steps)
    probe = make_env(env_id, **env_kwargs)  # refuses a single-objective env here, not inside a SubprocVecEnv worker
    n_objectives = reward_dimension(probe)
    probe.close()
    venv = make_training_env(env_id, n_envs=n_envs, seed=seed, env_kwargs=env_kwargs,
                             wrapper=VectorRewardInInfo, vec_env_class=vec_env_class,
                             monitor_dir=monitor_dir)
    if normalize:
        venv = MOVecNormalize(venv, n_objectives, gamma=gamma)
    return venv
