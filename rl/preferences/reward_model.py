"""A Bradley-Terry reward model learned from comparisons, and the wrappers that give it to any SB3 algorithm.

The model of Christiano et al. (2017), PEBBLE (Lee et al., 2021) and ``imitation``'s ``BasicRewardNet`` with
``EnsembleTrainer``: an ensemble of small MLPs r(s, a); a segment's predicted return is the sum of r over its
steps, and P(a > b) = sigmoid(R(a) - R(b)). Each member minimises the cross-entropy of that probability
against the labels (0, 0.5 and 1, so "equally good" pulls the two returns together) on its own bootstrap
resample of the comparisons (``imitation``'s bagging), which makes the members disagree where data is thin.
The reward is the ensemble mean.

Choices, and why:

- Default 3 members of 2 x 64 ReLU units. PEBBLE uses 3 members of 3 x 256; ``imitation``'s ``BasicRewardNet``
  defaults to 2 x 32. Observations here are low-dimensional MuJoCo/PyBullet states and the comparisons number
  hundreds to a few thousand, trained on CPU between RL updates: 2 x 64 (SB3's own MLP default) learns a
  linear-plus-bumps reward easily and costs a fraction of 3 x 256.
- Segments of any length, mixed (whole SPO trajectories that end early included): per-step rewards are
  summed per segment with an index, no padding.
- ``normalize=True`` (default): after each training the per-step reward is standardised to mean 0, std 1 over
  the steps of the training segments. Bradley-Terry fixes the reward only up to an additive constant per
  segment length and a scale set by the labels; standardising gives RL a stable scale across retrainings.
  The constant is arbitrary: on envs that terminate (Hopper), a negative mean rewards ending episodes early,
  a positive one rewards surviving; the model cannot know which (``reward_offset`` adds one).

:class:`RewardModelWrapper` (a ``gym.Wrapper``) and :class:`RewardModelVecEnvWrapper` (a ``VecEnvWrapper``,
one batched forward pass per step) replace the env reward by the model's and keep the true one in
``info["true_reward"]`` (and the episode's true return in ``info["true_episode_return"]`` at its end).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn
from torch import nn
from torch.nn.utils import get_total_norm

from rl.preferences.errors import RewardModelError
from rl.preferences.queue import ComparisonQueue
from rl.preferences.segments import Segment, as_generator

TRUE_REWARD_KEY = "true_reward"
TRUE_EPISODE_RETURN_KEY = "true_episode_return"


def space_spec(space: spaces.Space, what: str) -> list[Any]:
    if isinstance(space, spaces.Box):
        return ["box", list(space.shape)]
    if isinstance(space, spaces.Discrete):
        return ["discrete", int(space.n)]
    raise RewardModelError(f"the reward model takes Box or Discrete {what} spaces, got {type(space).__name__}")


def _space_from_spec(spec: Sequence[Any]) -> spaces.Space:
    kind, value = spec
    return spaces.Box(-np.inf, np.inf, shape=tuple(value)) if kind == "box" else spaces.Discrete(int(value))


def _features(values: np.ndarray, spec: Sequence[Any], batch_shape: tuple[int, ...]) -> np.ndarray:
    """Flatten Box values, one-hot Discrete ones, to (prod(batch_shape), dim) float32."""
    kind, value = spec
    if kind == "discrete":
        codes = np.asarray(values, dtype=np.int64).reshape(-1)
        return np.eye(int(value), dtype=np.float32)[codes]
    return np.asarray(values, dtype=np.float32).reshape(int(np.prod(batch_shape, dtype=np.int64)), -1)


class BradleyTerryRewardModel:
    """An ensemble of MLP rewards r(s, a) trained on comparisons by the Bradley-Terry cross-entropy.

    :param observation_space: a Box or Discrete space.
    :param action_space: a Box or Discrete space.
    :param n_members: ensemble size (3, as PEBBLE and ``imitation``'s examples).
    :param net_arch: hidden layer sizes of each member (2 x 64: see the module docstring).
    :param use_actions: r(s, a) if True, r(s) if False.
    :param learning_rate: Adam's step size (3e-4, PEBBLE's).
    :param weight_decay: Adam's L2 weight decay.
    :param normalize: standardise the per-step reward after each training (see the module docstring).
    :param reward_offset: added to the (normalised) reward, e.g. to make survival worth something.
    :param seed: seeds the initial weights; training draws come from the ``rng`` passed to :meth:`train`.
    :param device: torch device.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        *,
        n_members: int = 3,
        net_arch: Sequence[int] = (64, 64),
        use_actions: bool = True,
        learning_rate: float = 3e-4,
        weight_decay: float = 0.0,
        normalize: bool = True,
        reward_offset: float = 0.0,
        seed: int | None = 0,
        device: str | th.device = "cpu",
    ) -> None:
        if n_members < 1:
            raise RewardModelError(f"n_members must be >= 1, got {n_members}")
        self.observation_spec = space_spec(observation_space, "observation")
        self.action_spec = space_spec(action_space, "action")
        self.observation_space, self.action_space = observation_space, action_space
        self.n_members = int(n_members)
        self.net_arch = [int(width) for width in net_arch]
        self.use_actions = bool(use_actions)
        self.learning_rate, self.weight_decay = float(learning_rate), float(weight_decay)
        self.normalize, self.reward_offset = bool(normalize), float(reward_offset)
        self.seed = seed
        self.device = th.device(device)
        input_dim = self._dim(self.observation_spec) + (self._dim(self.action_spec) if self.use_actions else 0)
        with th.random.fork_rng(devices=[]):
            if seed is not None:
                th.manual_seed(seed)
            self.members = nn.ModuleList(self._mlp(input_dim) for _ in range(self.n_members)).to(self.device)
        self.optimizer = th.optim.Adam(self.members.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
        self.reward_mean, self.reward_std = 0.0, 1.0
        self.comparisons_trained = 0

    @staticmethod
    def _dim(spec: Sequence[Any]) -> int:
        kind, value = spec
        return int(value) if kind == "discrete" else int(np.prod(value, dtype=np.int64))

    def _mlp(self, input_dim: int) -> nn.Sequential:
        layers: list[nn.Module] = []
        for width in self.net_arch:
            layers += [nn.Linear(input_dim, width), nn.ReLU()]
            input_dim = width
        layers.append(nn.Linear(input_dim, 1))
        return nn.Sequential(*layers)

    # ----- inputs -----------------------------------------------------------------------------------------

    def _inputs(self, observations: np.ndarray, actions: np.ndarray | None) -> tuple[th.Tensor, tuple[int, ...]]:
        """Features (n, dim) for a batch of (obs, act) of any batch shape, and that batch shape."""
        observations = np.asarray(observations)
        obs_kind, obs_value = self.observation_spec
        event = () if obs_kind == "discrete" else tuple(obs_value)
        if observations.shape[observations.ndim - len(event) :] != event:
            raise RewardModelError(
                f"observations of shape {observations.shape} do not end in the observation shape {event}"
            )
        batch_shape = observations.shape[: observations.ndim - len(event)]
        parts = [_features(observations, self.observation_spec, batch_shape)]
        if self.use_actions:
            if actions is None:
                raise RewardModelError("this reward model is r(s, a): pass the actions too")
            actions = np.asarray(actions)
            expected = int(np.prod(batch_shape, dtype=np.int64)) * (
                1 if self.action_spec[0] == "discrete" else self._dim(self.action_spec)
            )
            if actions.size != expected:
                raise RewardModelError(
                    f"{actions.size} action values for a batch of shape {batch_shape} and actions {self.action_spec}"
                )
            parts.append(_features(actions, self.action_spec, batch_shape))
        return th.as_tensor(np.concatenate(parts, axis=1), device=self.device), batch_shape

    def _member_rewards(self, features: th.Tensor) -> th.Tensor:
        """(n_members, n) raw per-step rewards."""
        return th.stack([member(features).squeeze(-1) for member in self.members])

    # ----- prediction -------------------------------------------------------------------------------------

    def predict(self, observations: np.ndarray, actions: np.ndarray | None = None) -> np.ndarray:
        """The reward of each (s, a): the ensemble mean, normalised if ``normalize``, plus ``reward_offset``.

        Shapes: observations ``(*batch, *obs_shape)``, actions ``(*batch, *act_shape)`` -> ``(*batch,)``.
        """
        features, batch_shape = self._inputs(observations, actions)
        with th.no_grad():
            mean = self._member_rewards(features).mean(dim=0).cpu().numpy().astype(np.float64)
        return ((mean - self.reward_mean) / self.reward_std + self.reward_offset).reshape(batch_shape)

    def member_rewards(self, observations: np.ndarray, actions: np.ndarray | None = None) -> np.ndarray:
        """Each member's raw reward, ``(n_members, *batch)``: their spread is the ensemble's uncertainty."""
        features, batch_shape = self._inputs(observations, actions)
        with th.no_grad():
            return self._member_rewards(features).cpu().numpy().reshape((self.n_members, *batch_shape))

    def segment_returns(self, segments: Sequence[Segment]) -> np.ndarray:
        """(n_members, n_segments) raw predicted returns (sums over steps), e.g. for disagreement-based queries."""
        features, owner, _ = self._stack(segments)
        with th.no_grad():
            rewards = self._member_rewards(features)
            totals = th.zeros(self.n_members, len(segments), device=self.device)
            return totals.index_add_(1, owner, rewards).cpu().numpy()

    # ----- training ---------------------------------------------------------------------------------------

    def _stack(self, segments: Sequence[Segment]) -> tuple[th.Tensor, th.Tensor, np.ndarray]:
        """All steps' features, the index of the segment each step belongs to, and the segments' offsets."""
        if not segments:
            raise RewardModelError("no segments to score")
        lengths = np.array([len(s) for s in segments])
        observations = np.concatenate([s.observations for s in segments])
        actions = np.concatenate([s.actions for s in segments]) if self.use_actions else None
        features, _ = self._inputs(observations, actions)
        owner = th.as_tensor(np.repeat(np.arange(len(segments)), lengths), device=self.device)
        return features, owner, np.concatenate([[0], np.cumsum(lengths)])

    def train(
        self,
        comparisons: ComparisonQueue | tuple[Sequence[tuple[Segment, Segment]], Sequence[float]],
        *,
        epochs: int = 10,
        batch_size: int = 64,
        rng: int | np.random.Generator | None = None,
        gradient_correction: Sequence[th.Tensor] | None = None,
    ) -> dict[str, float]:
        """Fit every member on its own bootstrap resample of the comparisons.

        Args:
            comparisons: a :class:`ComparisonQueue`, or (pairs of segments, labels P(a > b)).
            epochs: passes over each member's resample.
            batch_size: comparisons per Adam step.
            rng: draws the bootstrap resamples and the minibatch order.
            gradient_correction: one tensor per parameter of ``members`` (their order), added to the loss's
                gradient before every Adam step (PARL adds its implicit term this way; None: plain fitting).

        Returns:
            ``loss`` (the last epoch's mean cross-entropy over members) and ``accuracy`` (the ensemble mean's
            agreement with the labels that are not 0.5, on all comparisons); with a ``gradient_correction``, also
            ``loss_gradient_norm`` (the loss's gradient norm, mean over the Adam steps) and ``correction_norm``
            (the correction's norm), which say how much of each step the correction decides.
        """
        if isinstance(comparisons, ComparisonQueue):
            pairs, labels = comparisons.pairs(), comparisons.labels()
        else:
            pairs, labels = list(comparisons[0]), np.asarray(comparisons[1], dtype=np.float64)
        if len(pairs) == 0 or len(pairs) != len(labels):
            raise RewardModelError(
                f"{len(pairs)} pairs and {len(labels)} labels; collect at least one labelled comparison first"
            )
        if np.any((labels < 0) | (labels > 1)):
            raise RewardModelError("labels are P(a preferred) in [0, 1]")
        generator = as_generator(rng)
        unique: dict[str, int] = {}
        segments: list[Segment] = []
        for segment in (s for pair in pairs for s in pair):
            if segment.segment_id not in unique:
                unique[segment.segment_id] = len(segments)
                segments.append(segment)
        index_a = np.array([unique[a.segment_id] for a, _ in pairs])
        index_b = np.array([unique[b.segment_id] for _, b in pairs])
        features, owner, offsets = self._stack(segments)
        targets = th.as_tensor(labels, dtype=th.float32, device=self.device)
        n = len(pairs)
        resamples = [generator.integers(0, n, size=n) for _ in range(self.n_members)]
        loss_sum = th.zeros((), device=self.device)
        gradient_norms: list[float] = []
        for _ in range(int(epochs)):
            orders = [resample[generator.permutation(n)] for resample in resamples]
            loss_sum = th.zeros((), device=self.device)
            for start in range(0, n, batch_size):
                losses = []
                for member, order in zip(self.members, orders):
                    batch = order[start : start + batch_size]
                    logits = self._logits(member, features, offsets, index_a[batch], index_b[batch])
                    losses.append(nn.functional.binary_cross_entropy_with_logits(logits, targets[batch]))
                loss = th.stack(losses).sum()
                self.optimizer.zero_grad()
                loss.backward()
                if gradient_correction is not None:
                    gradient_norms.append(float(get_total_norm([p.grad for p in self.members.parameters()
                                                                 if p.grad is not None])))
                    for parameter, correction in zip(self.members.parameters(), gradient_correction, strict=True):
                        parameter.grad = correction.to(parameter.device) if parameter.grad is None \
                            else parameter.grad + correction.to(parameter.device)
                self.optimizer.step()
                loss_sum = loss_sum + loss.detach() * len(batch)
        self.comparisons_trained = n
        with th.no_grad():
            rewards = self._member_rewards(features)
            if self.normalize:
                step_mean = rewards.mean(dim=0)
                self.reward_mean = float(step_mean.mean())
                self.reward_std = max(float(step_mean.std()), 1e-8) if len(step_mean) > 1 else 1.0
            totals = th.zeros(self.n_members, len(segments), device=self.device).index_add_(1, owner, rewards)
            mean_totals = totals.mean(dim=0).cpu().numpy()
        margin = mean_totals[index_a] - mean_totals[index_b]
        decided = labels != 0.5
        agree = (margin[decided] > 0) == (labels[decided] > 0.5)
        stats = {
            "loss": float(loss_sum) / (n * self.n_members) if epochs else float("nan"),
            "accuracy": float(agree.mean()) if decided.any() else float("nan"),
        }
        if gradient_correction is not None:
            stats["loss_gradient_norm"] = float(np.mean(gradient_norms)) if gradient_norms else float("nan")
            stats["correction_norm"] = float(get_total_norm(list(gradient_correction)))
        return stats

    def _logits(
        self, member: nn.Module, features: th.Tensor, offsets: np.ndarray, index_a: np.ndarray, index_b: np.ndarray
    ) -> th.Tensor:
        """R(a) - R(b) under one member for a minibatch of comparisons (segment indices into ``offsets``)."""
        wanted = np.concatenate([index_a, index_b])
        steps = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in wanted])
        owner = np.repeat(np.arange(len(wanted)), offsets[wanted + 1] - offsets[wanted])
        rewards = member(features[th.as_tensor(steps, device=self.device)]).squeeze(-1)
        totals = th.zeros(len(wanted), device=self.device).index_add_(
            0, th.as_tensor(owner, device=self.device), rewards
        )
        return totals[: len(index_a)] - totals[len(index_a) :]

    # ----- save / load ------------------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write weights, optimizer state, normalisation and configuration to one torch file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        config = {
            "observation_spec": self.observation_spec,
            "action_spec": self.action_spec,
            "n_members": self.n_members,
            "net_arch": self.net_arch,
            "use_actions": self.use_actions,
            "learning_rate": self.learning_rate,
            "weight_decay": self.weight_decay,
            "normalize": self.normalize,
            "reward_offset": self.reward_offset,
            "seed": self.seed,
        }
        state = {
            "config": config,
            "members": self.members.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "reward_mean": self.reward_mean,
            "reward_std": self.reward_std,
            "comparisons_trained": self.comparisons_trained,
        }
        temporary = path.with_name(path.name + ".tmp")
        th.save(state, temporary)
        temporary.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path, device: str | th.device = "cpu") -> BradleyTerryRewardModel:
        """Read a model written by :meth:`save` (``weights_only``: no pickled code runs)."""
        try:
            state = th.load(Path(path), map_location=device, weights_only=True)
        except FileNotFoundError:
            raise RewardModelError(f"no reward model at {path}; save one with BradleyTerryRewardModel.save") from None
        config = dict(state["config"])
        observation_space = _space_from_spec(config.pop("observation_spec"))
        action_space = _space_from_spec(config.pop("action_spec"))
        model = cls(observation_space, action_space, device=device, **config)
        model.members.load_state_dict(state["members"])
        model.optimizer.load_state_dict(state["optimizer"])
        model.reward_mean, model.reward_std = float(state["reward_mean"]), float(state["reward_std"])
        model.comparisons_trained = int(state["comparisons_trained"])
        return model


class RewardModelWrapper(gym.Wrapper):
    """Replaces the env's reward by the reward model's r(s, a), s the observation the action was taken at.

    The true reward goes to ``info["true_reward"]`` and, at the end of an episode, the true return to
    ``info["true_episode_return"]``. Applied inside SB3's Monitor (``make_training_env(wrapper=...)``), Monitor
    and ``ep_rew_mean`` report the *model's* return; outside it, the true one. The model is held by reference,
    so retraining it changes the reward at once (PEBBLE-style online learning).
    """

    def __init__(self, env: gym.Env, model: BradleyTerryRewardModel) -> None:
        super().__init__(env)
        self.model = model
        self._observation: Any = None
        self._true_return = 0.0

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        observation, info = self.env.reset(**kwargs)
        self._observation, self._true_return = observation, 0.0
        return observation, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        observation, true_reward, terminated, truncated, info = self.env.step(action)
        reward = float(self.model.predict(np.asarray(self._observation)[None], np.asarray(action)[None])[0])
        info = dict(info)
        info[TRUE_REWARD_KEY] = float(true_reward)
        self._true_return += float(true_reward)
        if terminated or truncated:
            info[TRUE_EPISODE_RETURN_KEY] = self._true_return
        self._observation = observation
        return observation, reward, terminated, truncated, info


class RewardModelVecEnvWrapper(VecEnvWrapper):
    """:class:`RewardModelWrapper` for a whole VecEnv, one batched forward pass per step.

    Put it inside VecNormalize (the model sees raw observations) and outside Monitor (Monitor then logs true
    returns). At an auto-reset SB3 returns the next episode's first observation; the finished step's reward
    uses the observation the action was taken at, kept from the previous step.

    SB3's EvalCallback refuses a training env whose wrapper chain is deeper than the evaluation env's (its
    ``sync_envs_normalization``): wrap the evaluation env the same way, or use
    :class:`~rl.preferences.reward_learning.PreferenceRewardCallback`, which replaces the reward without a wrapper.
    """

    def __init__(self, venv: VecEnv, model: BradleyTerryRewardModel) -> None:
        super().__init__(venv)
        self.model = model
        self._observations: np.ndarray | None = None
        self._actions: np.ndarray | None = None
        self._true_returns = np.zeros(self.num_envs)

    def reset(self) -> Any:
        observations = self.venv.reset()
        self._observations = np.asarray(observations)
        self._true_returns[:] = 0.0
        return observations

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)
        self.venv.step_async(actions)

    def step_wait(self) -> VecEnvStepReturn:
        observations, true_rewards, dones, infos = self.venv.step_wait()
        rewards = self.model.predict(self._observations, self._actions).astype(np.float32)
        self._true_returns += true_rewards
        for i, info in enumerate(infos):
            info[TRUE_REWARD_KEY] = float(true_rewards[i])
            if dones[i]:
                info[TRUE_EPISODE_RETURN_KEY] = float(self._true_returns[i])
                self._true_returns[i] = 0.0
        self._observations = np.asarray(observations)
        return observations, rewards, dones, infos

