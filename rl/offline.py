"""Offline and offline-to-online training for SB3 off-policy algorithms.

An offline algorithm here is an SB3 :class:`OffPolicyAlgorithm` (its policy, replay buffer, logger,
callbacks, save/load) plus :class:`OfflineAlgorithmMixin`, which

- fills the replay buffer from an :class:`rl.datasets.OfflineDataset` (``dataset=`` in the constructor,
  or :meth:`~OfflineAlgorithmMixin.load_offline_data`), actions scaled the way SB3 stores them;
- optionally standardises observations with the dataset's mean and std *inside the policy*
  (:class:`StandardizedObservations`, a features extractor with fixed buffers), so ``predict`` and
  ``evaluate_policy`` take raw observations and the statistics travel with ``save``/``load``;
- trains from the buffer alone with :meth:`~OfflineAlgorithmMixin.learn_offline`, which drives SB3's
  callbacks (evaluation, checkpoints, progress bar) once per gradient step.

Offline-to-online follows CORL's finetuning scripts: the offline gradient steps are counted in
``num_timesteps`` (the x axis of logs and curves), then ``learn(n, reset_num_timesteps=False)`` goes on
in the env with one gradient step per env step, new transitions appended to the same buffer and sampled
uniformly with the dataset. ``offline_updates`` records where the online phase started.
"""

from __future__ import annotations

import warnings
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import MaybeCallback
from stable_baselines3.common.vec_env import VecEnv, unwrap_vec_normalize
from torch import nn

from rl.datasets import OfflineDataset, load_dataset

OBSERVATION_STD_EPS = 1e-3
"""Added to the dataset's observation std, as CORL does (``compute_mean_std(..., eps=1e-3)``)."""


class NoOfflineDataError(RuntimeError):
    """Raised when offline training starts with an empty replay buffer."""


class DatasetMismatchError(ValueError):
    """Raised when a dataset's observations or actions do not fit the env's spaces."""


class OfflineEnvError(DatasetMismatchError):
    """Raised when the env cannot be used with an offline algorithm's data: a VecNormalize wrapper (the dataset
    would be normalised with the env's running statistics), or several envs (the dataset fills a one-env buffer).
    A :class:`DatasetMismatchError`, so the command line reports it in one line."""


class StandardizedObservations(BaseFeaturesExtractor):
    """Flatten, then ``(obs - mean) / std`` with fixed statistics (buffers, so they are saved and loaded).

    Starts as the identity; :func:`set_observation_statistics` sets the dataset's statistics on every
    instance inside a module (actor, critics, their targets, value networks).
    """

    def __init__(self, observation_space: spaces.Box) -> None:
        dim = int(np.prod(observation_space.shape))
        super().__init__(observation_space, features_dim=dim)
        self.flatten = nn.Flatten()
        self.register_buffer("mean", th.zeros(dim))
        self.register_buffer("std", th.ones(dim))

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return (self.flatten(observations) - self.mean) / self.std


def observation_statistics(observations: np.ndarray, eps: float = OBSERVATION_STD_EPS) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and ``std + eps`` of a dataset's observations."""
    flat = observations.reshape(len(observations), -1).astype(np.float64)
    return flat.mean(axis=0).astype(np.float32), (flat.std(axis=0) + eps).astype(np.float32)


def set_observation_statistics(module: nn.Module, mean: np.ndarray, std: np.ndarray) -> int:
    """Set ``mean``/``std`` on every :class:`StandardizedObservations` in ``module``; return how many."""
    count = 0
    for child in module.modules():
        if isinstance(child, StandardizedObservations):
            child.mean.copy_(th.as_tensor(mean, dtype=child.mean.dtype))
            child.std.copy_(th.as_tensor(std, dtype=child.std.dtype))
            count += 1
    return count


def episode_stops(dataset: OfflineDataset) -> np.ndarray:
    """One past the last row of each of the dataset's (possibly truncated) episodes, in order (the last is
    ``len(dataset)``).

    An episode ends at a terminal or timeout step, or where the next row does not start from this row's
    next observation (the rows of a time-limit end are dropped by D4RL's rule, so this is how the end of a
    timed-out episode shows).
    """
    ends = dataset.terminals | dataset.timeouts
    if len(dataset) > 1:
        flat_next = dataset.next_observations[:-1].reshape(len(dataset) - 1, -1)
        flat_obs = dataset.observations[1:].reshape(len(dataset) - 1, -1)
        ends[:-1] |= np.any(flat_next != flat_obs, axis=1)
    ends[-1] = True
    return np.flatnonzero(ends) + 1


def episode_returns(dataset: OfflineDataset) -> np.ndarray:
    """Returns of the dataset's (possibly truncated) episodes, cut by :func:`episode_stops`."""
    boundaries = episode_stops(dataset)
    return np.array([chunk.sum() for chunk in np.split(dataset.rewards.astype(np.float64), boundaries[:-1])])


RETURN_RANGE = 1000.0
"""D4RL locomotion rewards are rescaled so that the dataset's episode returns span this range (IQL's
``train_offline.py`` ``normalize``, CORL's ``modify_reward``: rewards / (max - min return) * 1000)."""


def return_range_scale(dataset: OfflineDataset, target: float = RETURN_RANGE) -> float | None:
    """``target / (max - min)`` of the dataset's episode returns; None when they are all equal (nothing to scale)."""
    returns = episode_returns(dataset)
    spread = float(returns.max() - returns.min())
    return target / spread if spread > 0 else None


def fill_replay_buffer(buffer: ReplayBuffer, dataset: OfflineDataset, buffer_actions: np.ndarray) -> None:
    """Write ``dataset`` into an empty SB3 replay buffer (n_envs = 1), as ``buffer.add`` would store it.

    ``buffer_actions`` are the dataset's actions as SB3 stores them (Box actions scaled to [-1, 1] by
    ``policy.scale_action``). Kept time-limit steps are stored with ``done`` and ``timeout`` set, so SB3
    bootstraps through them.
    """
    n = len(dataset)
    if buffer.n_envs != 1:
        raise ValueError(f"Offline data goes into a single-env replay buffer; this one has n_envs={buffer.n_envs}.")
    if n >= buffer.buffer_size:
        raise ValueError(
            f"The dataset has {n:,} transitions but the replay buffer holds {buffer.buffer_size:,}: "
            f"pass buffer_size >= {n + 1:,} plus the online steps you plan."
        )
    obs_shape = buffer.observations.shape[2:]
    buffer.observations[:n, 0] = dataset.observations.reshape(n, *obs_shape)
    buffer.next_observations[:n, 0] = dataset.next_observations.reshape(n, *obs_shape)
    buffer.actions[:n, 0] = buffer_actions.reshape(n, -1)
    buffer.rewards[:n, 0] = dataset.rewards
    buffer.dones[:n, 0] = dataset.terminals | dataset.timeouts
    buffer.timeouts[:n, 0] = dataset.timeouts
    buffer.pos = n
    buffer.full = False


def dataset_spec(dataset: OfflineDataset) -> str:
    """What :func:`rl.datasets.load_dataset` reads ``dataset`` again from: its file, else its name or Minari id."""
    return dataset.source if Path(dataset.source).is_file() else dataset.name


def _on_disk(dataset: OfflineDataset) -> bool:
    """Whether ``dataset`` can be read again: from its HDF5 file or from the local Minari store."""
    from rl.datasets.minari_store import minari_dataset_exists

    return Path(dataset.source).is_file() or ("/" in dataset.source and minari_dataset_exists(dataset.source))


def check_dataset_fits(dataset: OfflineDataset, observation_space: spaces.Space, action_space: spaces.Space) -> None:
    """Refuse a dataset whose observation or action shapes differ from the env's, naming both."""
    if not isinstance(action_space, spaces.Box):
        raise DatasetMismatchError(f"Offline algorithms here act in Box action spaces; the env has {action_space}.")
    problems = []
    obs_shape = dataset.observations.shape[1:]
    if int(np.prod(obs_shape)) != int(np.prod(observation_space.shape)):
        problems.append(f"observations {obs_shape} vs the env's {observation_space.shape}")
    act_shape = dataset.actions.shape[1:]
    if int(np.prod(act_shape)) != int(np.prod(action_space.shape)):
        problems.append(f"actions {act_shape} vs the env's {action_space.shape}")
    if problems:
        recorded = dataset.recorded_env_id
        if recorded is not None:
            hint = f"It was collected on {recorded}: train on that env (--env {recorded})."
        else:
            hint = (
                f"It records no env of its own (it was given env_id {dataset.env_id}): train on the env it was "
                "collected on (--env <id>)."
            )
        raise DatasetMismatchError(f"Dataset {dataset.name!r} does not fit the env ({'; '.join(problems)}). {hint}")


def check_offline_env(env: Any, algo_name: str, *, vec_normalize_supported: bool = False) -> None:
    """Refuse an env an offline algorithm cannot train with: several envs, or (unless supported) VecNormalize.

    Raises:
        OfflineEnvError: one line naming the problem and the fix.
    """
    if not isinstance(env, VecEnv):
        return  # None, an id or a gym.Env: SB3 wraps it in one DummyVecEnv
    if env.num_envs != 1:
        raise OfflineEnvError(
            f"n_envs must be 1 for {algo_name}: the offline dataset fills a one-env replay buffer and the online phase "
            f"steps one env; got {env.num_envs} envs. Drop --n-envs (or set n_envs: 1)."
        )
    vec_normalize = unwrap_vec_normalize(env)
    if vec_normalize is not None and not vec_normalize_supported:
        raise OfflineEnvError(
            f"{algo_name} trains on raw dataset observations: do not wrap the env in VecNormalize (set normalize: "
            "false); it standardises observations with the dataset's statistics itself (normalize_observations=True). "
            "VecNormalize would rescale the dataset by the env's running statistics (at first those of one reset "
            f"observation) and clip it to +-{vec_normalize.clip_obs:g}."
        )


def setup_offline_data(model: Any, *, needs: str, stacklevel: int) -> None:
    """Give ``model`` its dataset at the end of ``_setup_model``, through its ``load_offline_data``: the one passed
    to the constructor (``model._dataset``), else the one ``model.dataset_spec`` names (inside ``load``, which
    restores only the spec). A spec that cannot be read gives a warning, naming ``needs`` (what needs the data),
    and no data: the model still predicts.

    ``stacklevel`` is :func:`warnings.warn`'s as seen from the caller (1: the caller's line).
    """
    dataset = getattr(model, "_dataset", None)
    if dataset is None and model.dataset_spec is not None:
        try:
            dataset = load_dataset(model.dataset_spec, env_id=None)
        except (FileNotFoundError, ValueError) as error:
            warnings.warn(
                f"Offline dataset {model.dataset_spec!r} could not be read ({error}); the model predicts, but "
                f"{needs} needs data: call load_offline_data(dataset).", stacklevel=stacklevel + 1,
            )
            return
    if dataset is not None:
        # Inside ``load`` this runs before the saved parameters are restored; they hold the same statistics.
        model.load_offline_data(dataset)


def setup_offline_learn(
    model: BaseAlgorithm,
    n_updates: int,
    callback: MaybeCallback,
    reset_num_timesteps: bool,
    tb_log_name: str,
    progress_bar: bool,
) -> tuple[int, BaseCallback]:
    """SB3's ``_setup_learn`` before ``n_updates`` gradient steps that never step the env; returns the total
    timesteps and the callback.

    Loaded without an env, the model needs none for them, but SB3's setup would reset one: the off-policy setup
    (it only asserts the env) and the reset are skipped, a zero last observation stands in (``set_env`` replaces
    it), and ``reset_num_timesteps`` restarts the count here.
    """
    setup_learn = model._setup_learn
    if model.env is None:
        setup_learn = partial(BaseAlgorithm._setup_learn, model)
        model._last_obs = np.zeros((1, *model.observation_space.shape), dtype=model.observation_space.dtype)  # type: ignore[assignment]
        if reset_num_timesteps:
            model.num_timesteps, model._episode_num = 0, 0
            reset_num_timesteps = False
    return setup_learn(n_updates, callback, reset_num_timesteps, tb_log_name, progress_bar)


def run_offline_updates(model: Any, total_timesteps: int, callback: BaseCallback, log_interval: int) -> None:
    """One ``model.train(gradient_steps=1)`` per timestep until ``model.num_timesteps`` reaches ``total_timesteps``,
    counted in ``offline_updates`` too, with SB3's callbacks around each (``on_rollout_start`` before it, where
    checkpoints are taken; ``on_step`` after, which may stop the loop) and ``model.dump_logs()`` every
    ``log_interval`` updates. Callbacks read the locals ``total_timesteps`` and ``dones`` (no episode ends here)."""
    dones = np.zeros(1, dtype=bool)
    while model.num_timesteps < total_timesteps:
        callback.on_rollout_start()
        model._update_current_progress_remaining(model.num_timesteps, total_timesteps)
        model.train(gradient_steps=1, batch_size=model.batch_size)
        model.num_timesteps += 1
        model.offline_updates += 1
        callback.update_locals({"total_timesteps": total_timesteps, "dones": dones})
        if not callback.on_step():
            break
        callback.on_rollout_end()
        if log_interval > 0 and model.num_timesteps % log_interval == 0:
            model.dump_logs()


class OfflineAlgorithmMixin:
    """Offline data and offline training for an SB3 OffPolicyAlgorithm (put it first in the bases).

    The algorithm's ``__init__`` takes ``dataset`` and ``normalize_observations``, calls
    :meth:`_init_offline` before ``super().__init__`` and :meth:`_setup_offline` at the end of
    ``_setup_model``. Only the dataset's spec (name or path) is saved with the model; ``load`` reads the
    data again when it can be found, and warns (the policy still predicts) when it cannot.
    """

    dataset_spec: str | None
    normalize_observations: bool
    vec_normalize_supported: bool = False
    """Whether a VecNormalize env is allowed: not for algorithms that learn from the dataset first (the dataset would
    be normalised by the env's running statistics); an algorithm trained on env steps from the start may allow it."""
    offline_updates: int
    in_offline_phase: bool = False
    """True while :meth:`learn_offline` runs (``train`` may differ between the phases, e.g. IQL's schedule)."""
    reward_scale: float
    reward_bias: float

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Check the env (see :func:`check_offline_env`) before SB3 builds anything, then SB3's ``__init__``."""
        env = kwargs["env"] if "env" in kwargs else args[1] if len(args) > 1 else None
        check_offline_env(env, type(self).__name__, vec_normalize_supported=self.vec_normalize_supported)
        super().__init__(*args, **kwargs)

    def set_env(self, env: Any, force_reset: bool = True) -> None:
        """SB3's ``set_env``, refusing the envs :func:`check_offline_env` refuses."""
        check_offline_env(env, type(self).__name__, vec_normalize_supported=self.vec_normalize_supported)
        super().set_env(env, force_reset=force_reset)  # type: ignore[misc]

    def _init_offline(
        self, dataset: OfflineDataset | str | None, normalize_observations: bool, policy_kwargs: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Remember the dataset; return ``policy_kwargs`` with the standardising extractor when asked for."""
        self._dataset = dataset if isinstance(dataset, OfflineDataset) else None
        self.dataset_spec = dataset_spec(dataset) if isinstance(dataset, OfflineDataset) else dataset
        self.normalize_observations = normalize_observations
        self.offline_updates = 0
        self.reward_scale = 1.0
        self.reward_bias = 0.0
        policy_kwargs = dict(policy_kwargs or {})
        if normalize_observations:
            policy_kwargs.setdefault("features_extractor_class", StandardizedObservations)
        return policy_kwargs

    def _setup_offline(self) -> None:
        """Load the dataset (if any) into the fresh replay buffer and the policy's statistics
        (:func:`setup_offline_data`; the warning points at the caller of ``_setup_model``)."""
        setup_offline_data(self, needs="learn_offline", stacklevel=3)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_dataset", "in_offline_phase"]  # type: ignore[misc]

    @property
    def replay_buffer_is_dataset(self) -> bool:
        """True while the buffer holds the dataset and nothing else (no online step yet): ``load`` rebuilds it."""
        dataset = self.dataset
        return dataset is not None and _on_disk(dataset) and self.num_timesteps == self.offline_updates  # type: ignore[attr-defined]

    @property
    def dataset(self) -> OfflineDataset | None:
        """The offline dataset in the replay buffer, if it was loaded in this process."""
        return getattr(self, "_dataset", None)

    def load_offline_data(self, dataset: OfflineDataset | str) -> OfflineDataset:
        """Put ``dataset`` (an OfflineDataset or a spec for :func:`rl.datasets.load_dataset`) into the buffer.

        The buffer is emptied first. Observation statistics are set from this dataset when
        ``normalize_observations`` is on, and :meth:`_on_offline_data` lets the algorithm derive more
        (e.g. a reward scale).
        """
        if not isinstance(dataset, OfflineDataset):
            dataset = load_dataset(dataset)
        check_dataset_fits(dataset, self.observation_space, self.action_space)  # type: ignore[attr-defined]
        self.replay_buffer.reset()  # type: ignore[attr-defined]
        low, high = self.action_space.low, self.action_space.high  # type: ignore[attr-defined]
        buffer_actions = self.policy.scale_action(np.clip(dataset.actions, low, high))  # type: ignore[attr-defined]
        fill_replay_buffer(self.replay_buffer, dataset, buffer_actions)  # type: ignore[attr-defined]
        if self.normalize_observations:
            mean, std = observation_statistics(dataset.observations)
            if set_observation_statistics(self.policy, mean, std) == 0:  # type: ignore[attr-defined]
                raise ValueError(
                    "normalize_observations=True needs StandardizedObservations as the policy's features extractor; "
                    "policy_kwargs sets another one."
                )
        self._dataset = dataset
        self.dataset_spec = dataset_spec(dataset)
        self._on_offline_data(dataset)
        return dataset

    def _on_offline_data(self, dataset: OfflineDataset) -> None:
        """Hook for algorithm-specific preparation from the dataset (default: none)."""

    def scale_rewards(self, rewards: th.Tensor) -> th.Tensor:
        """``reward_scale * r + reward_bias``: the reward transformation some papers apply to all data."""
        if self.reward_scale == 1.0 and self.reward_bias == 0.0:
            return rewards
        return rewards * self.reward_scale + self.reward_bias

    def learn_offline(
        self,
        n_updates: int,
        callback: MaybeCallback = None,
        log_interval: int = 1000,
        tb_log_name: str = "offline",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ):  # noqa: ANN201 - returns self, like learn
        """Take ``n_updates`` gradient steps on the replay buffer without touching the env.

        Each gradient step counts as one timestep for callbacks, logs and the progress bar (``on_step`` is
        called after every update; ``on_rollout_start`` before it, where checkpoints are taken). Logs are
        dumped every ``log_interval`` updates; ``time/fps`` is then updates per second.
        """
        vec_normalize = self.get_vec_normalize_env()  # type: ignore[attr-defined]
        if vec_normalize is not None:
            raise OfflineEnvError(
                f"{type(self).__name__} cannot take offline updates with a VecNormalize env: its statistics come from "
                "env steps, not from the dataset (set normalize: false, or offline_steps: 0)."
            )
        if self.replay_buffer is None or self.replay_buffer.size() == 0:  # type: ignore[attr-defined]
            raise NoOfflineDataError(
                "The replay buffer is empty: pass dataset=... to the constructor or call load_offline_data(...) first."
            )
        total_timesteps, callback = setup_offline_learn(
            self, n_updates, callback, reset_num_timesteps, tb_log_name, progress_bar  # type: ignore[arg-type]
        )
        callback.on_training_start(locals(), globals())
        self.in_offline_phase = True
        try:
            run_offline_updates(self, total_timesteps, callback, log_interval)
        finally:
            self.in_offline_phase = False
        callback.on_training_end()
        return self


def offline_then_online(
    model: OfflineAlgorithmMixin,
    *,
    offline_steps: int,
    online_steps: int,
    callback: BaseCallback | None = None,
    progress_bar: bool = False,
    tb_log_name: str = "run",
    resuming: bool = False,
) -> None:
    """Run what remains of ``offline_steps`` gradient steps, then of ``online_steps`` env steps.

    ``model.num_timesteps`` counts both phases, so a run resumed from any checkpoint continues where it
    stopped.
    """
    done = model.num_timesteps  # type: ignore[attr-defined]
    if done < offline_steps:
        model.learn_offline(
            offline_steps - done, callback=callback, progress_bar=progress_bar, tb_log_name=f"{tb_log_name}_offline",
            reset_num_timesteps=not resuming,
        )
        resuming = True
    remaining = offline_steps + online_steps - model.num_timesteps  # type: ignore[attr-defined]
    if remaining > 0:
        model.learn(  # type: ignore[attr-defined]
            total_timesteps=remaining, callback=callback, progress_bar=progress_bar,
            reset_num_timesteps=not resuming and model.offline_updates == 0, tb_log_name=f"{tb_log_name}_online",
        )
