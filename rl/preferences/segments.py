"""Trajectories and the fixed-length segments that raters compare.

Preference-based RL asks a rater which of two short *segments* (fragments, clips) of behaviour it prefers,
not which whole episode: Christiano et al. (2017) and PEBBLE (Lee et al., 2021) show 1-2 second clips,
``imitation``'s ``RandomFragmenter`` cuts fixed-length fragments from finished trajectories, OPPO (Kang et
al., 2023) uses segments of 20 steps. This module holds the two containers and the cutting:

- :class:`Trajectory`: one finished episode as arrays (observations, actions, true rewards, per-step infos).
- :class:`Segment`: ``length`` consecutive steps of a trajectory, with a stable string ``segment_id`` so
  that label files, the comparison queue and resumed runs refer to it by name.
- :func:`sample_segments`: uniform over every window of ``length`` steps in the trajectories (so a long
  trajectory gives proportionally more segments, as ``imitation``'s fragmenter weights by length).
- :func:`collect_trajectories`: roll out an SB3 model, a callable or a random policy on a Gymnasium env,
  recording the env's reward terms (MuJoCo's ``reward_forward``, ``reward_ctrl``, ...) and numeric infos
  (``x_position``) that the intransitive and non-Markovian raters read.

Rewards are the *true* rewards, kept for the synthetic raters and for reporting; nothing learns from them.
They are either a scalar per step, shape ``(T,)``, or a vector of reward terms, shape ``(T, k)`` with
``reward_names`` naming the columns; the true return is the sum over steps and terms either way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from rl.preferences.errors import SegmentError

RESIDUAL_TERM = "reward_other"
"""The reward column :func:`collect_trajectories` adds when the env's terms do not sum to its reward."""

_SKIPPED_INFO_KEYS = frozenset(
    {"episode", "terminal_observation", "final_observation", "final_info", "TimeLimit.truncated"}
)


def as_generator(rng: int | np.random.Generator | None) -> np.random.Generator:
    """A numpy Generator from a seed, a Generator (returned as is) or None (fresh entropy)."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _check_rewards(rewards: np.ndarray, steps: int, reward_names: tuple[str, ...], what: str) -> tuple[str, ...]:
    """Check the reward array's shape against ``steps`` and return the column names (default r0, r1, ...)."""
    if rewards.ndim not in (1, 2) or len(rewards) != steps:
        raise SegmentError(
            f"{what} rewards must have shape ({steps},) or ({steps}, k), got {rewards.shape}; pass one true reward "
            "(or one row of reward terms) per action"
        )
    if rewards.ndim == 1:
        if reward_names and len(reward_names) != 1:
            raise SegmentError(f"{what} has scalar rewards but {len(reward_names)} reward_names; pass at most one name")
        return reward_names
    if not reward_names:
        return tuple(f"r{i}" for i in range(rewards.shape[1]))
    if len(reward_names) != rewards.shape[1]:
        raise SegmentError(
            f"{what} has {rewards.shape[1]} reward columns but {len(reward_names)} reward_names; pass a name per column"
        )
    return reward_names


@dataclass(eq=False)
class Segment:
    """``length`` consecutive steps of one trajectory: what a rater sees and the reward model scores.

    ``observations[t]`` is the observation at which ``actions[t]`` was taken and ``rewards[t]`` received,
    so a reward model r(s, a) sums over the rows (Christiano et al., 2017; PEBBLE). Infos hold per-step
    extras recorded *after* each step (MuJoCo's ``x_position``), one row per action.
    """

    observations: np.ndarray
    """``(L, *obs_shape)``."""
    actions: np.ndarray
    """``(L, *act_shape)``."""
    rewards: np.ndarray
    """(L,) true rewards, or (L, k) true reward terms (their sum over terms is the reward)."""
    infos: dict[str, np.ndarray] = field(default_factory=dict)
    """Per-step extras, each (L, ...)."""
    reward_names: tuple[str, ...] = ()
    """Names of the reward columns when ``rewards`` is (L, k)."""
    env_id: str | None = None
    episode_id: int = 0
    """The trajectory's id (unique within a run: :func:`collect_trajectories` numbers them)."""
    start: int = 0
    """The step of the trajectory at which the segment starts."""
    segment_id: str = ""
    """Stable name ``"<env>/ep<episode>/t<start>-<end>"`` unless given; label files and the queue use it."""

    def __post_init__(self) -> None:
        self.observations = np.asarray(self.observations)
        self.actions = np.asarray(self.actions)
        self.rewards = np.asarray(self.rewards, dtype=np.float64)
        self.infos = {key: np.asarray(value) for key, value in self.infos.items()}
        steps = len(self.actions)
        if steps < 1:
            raise SegmentError("a segment needs at least one step (actions is empty)")
        if len(self.observations) != steps:
            raise SegmentError(
                f"segment has {steps} actions but {len(self.observations)} observations; pass the observation at "
                "which each action was taken"
            )
        self.reward_names = _check_rewards(self.rewards, steps, tuple(self.reward_names), "segment")
        wrong = [key for key, value in self.infos.items() if len(value) != steps]
        if wrong:
            raise SegmentError(f"segment infos {wrong} do not have {steps} rows; pass one info row per action")
        if not self.segment_id:
            self.segment_id = f"{self.env_id or 'env'}/ep{self.episode_id}/t{self.start}-{self.start + steps}"

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def true_return(self) -> float:
        """The sum of the true rewards over steps (and terms)."""
        return float(np.sum(self.rewards))

    def reward_matrix(self) -> np.ndarray:
        """The rewards as (L, k); k = 1 for a scalar reward."""
        return self.rewards.reshape(len(self), -1)

    def term_returns(self) -> np.ndarray:
        """The return of each reward term, shape (k,)."""
        return self.reward_matrix().sum(axis=0)


@dataclass(eq=False)
class Trajectory:
    """One finished episode as arrays, the source of segments.

    Observations may include the final observation (T + 1 rows, as ``rl.datasets.Episode``) or not (T rows);
    segments only use the first T, the observations at which the actions were taken.
    """

    observations: np.ndarray
    """``(T + 1, *obs_shape)`` or ``(T, *obs_shape)``."""
    actions: np.ndarray
    """``(T, *act_shape)``."""
    rewards: np.ndarray
    """(T,) true rewards or (T, k) true reward terms."""
    infos: dict[str, np.ndarray] = field(default_factory=dict)
    """Per-step extras after each step, each (T, ...)."""
    reward_names: tuple[str, ...] = ()
    env_id: str | None = None
    episode_id: int = 0
    terminated: bool = False
    """The episode ended in a terminal state (False: time limit or collector cut it)."""

    def __post_init__(self) -> None:
        self.observations = np.asarray(self.observations)
        self.actions = np.asarray(self.actions)
        self.rewards = np.asarray(self.rewards, dtype=np.float64)
        self.infos = {key: np.asarray(value) for key, value in self.infos.items()}
        steps = len(self.actions)
        if steps < 1:
            raise SegmentError("a trajectory needs at least one step (actions is empty)")
        if len(self.observations) not in (steps, steps + 1):
            raise SegmentError(
                f"trajectory has {steps} actions but {len(self.observations)} observations; pass {steps} (one per "
                f"action) or {steps + 1} (with the final observation)"
            )
        self.reward_names = _check_rewards(self.rewards, steps, tuple(self.reward_names), "trajectory")
        wrong = [key for key, value in self.infos.items() if len(value) != steps]
        if wrong:
            raise SegmentError(f"trajectory infos {wrong} do not have {steps} rows; pass one info row per action")

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def true_return(self) -> float:
        """The undiscounted true return (over all terms)."""
        return float(np.sum(self.rewards))

    def segment(self, start: int, length: int) -> Segment:
        """The segment of ``length`` steps starting at step ``start``."""
        if start < 0 or length < 1 or start + length > len(self):
            raise SegmentError(
                f"segment [{start}, {start + length}) does not fit a trajectory of {len(self)} steps; pass "
                f"0 <= start and start + length <= {len(self)}"
            )
        window = slice(start, start + length)
        return Segment(
            observations=self.observations[window],
            actions=self.actions[window],
            rewards=self.rewards[window],
            infos={key: value[window] for key, value in self.infos.items()},
            reward_names=self.reward_names,
            env_id=self.env_id,
            episode_id=self.episode_id,
            start=start,
        )

    def as_segment(self) -> Segment:
        """The whole trajectory as one segment (SPO compares whole trajectories)."""
        return self.segment(0, len(self))

    @classmethod
    def from_episode(cls, episode: Any, *, env_id: str | None = None, episode_id: int = 0) -> Trajectory:
        """From an ``rl.datasets.Episode`` (infos there have T + 1 rows aligned with the observations;
        here the row after each step is kept)."""
        infos = {key: np.asarray(value)[1:] for key, value in getattr(episode, "infos", {}).items()}
        return cls(
            observations=episode.observations,
            actions=episode.actions,
            rewards=episode.rewards,
            infos=infos,
            env_id=env_id,
            episode_id=episode_id,
            terminated=bool(np.any(episode.terminations)),
        )


def sample_segments(
    trajectories: Sequence[Trajectory], length: int, n: int, rng: int | np.random.Generator | None = None
) -> list[Segment]:
    """Cut ``n`` segments of ``length`` steps, uniformly over every window of that length, with replacement.

    Trajectories shorter than ``length`` give none (``imitation``'s ``RandomFragmenter`` does the same, and
    also weights trajectories by how many windows they hold).

    Raises:
        SegmentError: when ``length`` is longer than every trajectory, or there are no trajectories.
    """
    if int(length) != length or length < 1:
        raise SegmentError(f"segment length must be a positive integer, got {length!r}")
    if int(n) != n or n < 0:
        raise SegmentError(f"the number of segments must be a non-negative integer, got {n!r}")
    if len(trajectories) == 0:
        raise SegmentError("no trajectories to cut segments from; collect some first (collect_trajectories)")
    windows = np.array([max(len(t) - length + 1, 0) for t in trajectories], dtype=np.int64)
    total = int(windows.sum())
    if total == 0:
        longest = max(len(t) for t in trajectories)
        raise SegmentError(
            f"segments of {length} steps but the longest episode has {longest}; pass a length <= {longest}"
        )
    generator = as_generator(rng)
    picks = generator.integers(0, total, size=int(n))
    ends = np.cumsum(windows)
    which = np.searchsorted(ends, picks, side="right")
    starts = picks - (ends[which] - windows[which])
    return [trajectories[i].segment(int(s), int(length)) for i, s in zip(which, starts)]


def _numeric(value: Any) -> bool:
    array = np.asarray(value)
    return array.dtype.kind in "biuf" and array.size > 0


def _policy_function(policy: Any, action_space: gym.Space, deterministic: bool) -> Callable[[np.ndarray], np.ndarray]:
    """A function obs -> action from an SB3 model (``predict``), a callable, or None (uniform random)."""
    if policy is None:
        return lambda _obs: action_space.sample()
    if hasattr(policy, "predict"):
        return lambda obs: policy.predict(obs, deterministic=deterministic)[0]
    if callable(policy):
        return policy
    raise SegmentError(
        f"policy must be an SB3 model, a callable obs -> action or None (random), got {type(policy).__name__}"
    )


def collect_trajectories(
    env: gym.Env | str,
    policy: Any = None,
    n_episodes: int = 1,
    *,
    seed: int = 0,
    max_steps: int | None = None,
    reward_terms: Sequence[str] | str | None = "auto",
    info_keys: Sequence[str] | str | None = "auto",
    deterministic: bool = False,
    first_episode_id: int = 0,
) -> list[Trajectory]:
    """Roll out ``policy`` for ``n_episodes`` episodes and return them as trajectories.

    Episode ``i`` resets with seed ``seed + i`` and the random policy's action space is seeded with
    ``seed``, so a collection is reproducible. The policy sees the env's raw observations (an SB3 model
    trained under VecNormalize needs a callable that normalises them).

    Args:
        env: a Gymnasium env, or an env id made with ``rl.envs.make_env`` (and closed afterwards).
        policy: an SB3 model (its ``predict``), a callable obs -> action, or None for uniform random actions.
        n_episodes: how many episodes.
        seed: the first episode's reset seed.
        max_steps: cut episodes after this many steps (None: the env's own time limit).
        reward_terms: info keys holding reward terms: ``"auto"`` takes every ``reward_*`` key of the first
            step's info (MuJoCo v5: ``reward_forward``, ``reward_ctrl``, ``reward_survive``), None keeps the
            scalar reward. With terms the rewards are (T, k); when the terms do not sum to the env's reward a
            column ``reward_other`` (the remainder, decided on the first episode) is added, so the sum over
            terms is always the env's reward.
        info_keys: numeric info keys to record per step (``"auto"``: all numeric keys of the first step's info
            except reward terms, e.g. ``x_position``, ``x_velocity``), or None.
        deterministic: passed to an SB3 model's ``predict``.
        first_episode_id: the first trajectory's ``episode_id`` (ids count up, so segment ids stay unique
            across collections when each starts where the last stopped).
    """
    own_env = isinstance(env, str)
    if own_env:
        from rl.envs import make_env

        env = make_env(env)
    env_id = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
    env.action_space.seed(seed)
    act = _policy_function(policy, env.action_space, deterministic)
    terms: list[str] | None = None if reward_terms is None or reward_terms == "auto" else list(reward_terms)
    keys: list[str] | None = None if info_keys is None or info_keys == "auto" else list(info_keys)
    add_residual: bool | None = None
    trajectories = []
    try:
        for episode in range(int(n_episodes)):
            obs, _ = env.reset(seed=seed + episode)
            observations, actions, rewards, step_infos = [obs], [], [], []
            terminated = False
            while True:
                action = act(obs)
                obs, reward, terminated, truncated, info = env.step(action)
                observations.append(obs)
                actions.append(action)
                rewards.append(float(reward))
                step_infos.append(info)
                if terms is None and reward_terms == "auto":
                    terms = [k for k, v in info.items() if k.startswith("reward_") and _numeric(v)]
                if keys is None and info_keys == "auto":
                    keys = [
                        k
                        for k, v in info.items()
                        if k not in _SKIPPED_INFO_KEYS and not k.startswith("reward_") and _numeric(v)
                    ]
                if terminated or truncated or (max_steps is not None and len(actions) >= max_steps):
                    break
            scalar = np.asarray(rewards)
            reward_array, names = scalar, ()
            if terms:
                columns = np.array([[float(info.get(k, 0.0)) for k in terms] for info in step_infos])
                residual = scalar - columns.sum(axis=1)
                if add_residual is None:
                    add_residual = bool(np.max(np.abs(residual)) > 1e-6)
                if add_residual:
                    columns = np.column_stack([columns, residual])
                reward_array, names = columns, tuple(terms) + ((RESIDUAL_TERM,) if add_residual else ())
            infos = {
                k: np.array([np.asarray(info.get(k, np.nan), dtype=np.float64) for info in step_infos])
                for k in keys or []
            }
            trajectories.append(
                Trajectory(
                    observations=np.asarray(observations),
                    actions=np.asarray(actions),
                    rewards=reward_array,
                    infos=infos,
                    reward_names=names,
                    env_id=env_id,
                    episode_id=first_episode_id + episode,
                    terminated=bool(terminated),
                )
            )
    finally:
        if own_env:
            env.close()
    return trajectories


def segments_by_id(segments: Sequence[Segment] | Mapping[str, Segment]) -> dict[str, Segment]:
    """A dict id -> segment, refusing two different segments with the same id."""
    items = segments.values() if isinstance(segments, Mapping) else segments
    found: dict[str, Segment] = {}
    for segment in items:
        other = found.setdefault(segment.segment_id, segment)
        if other is not segment and not np.array_equal(other.actions, segment.actions):
            raise SegmentError(
                f"two different segments share the id {segment.segment_id!r}; give each collection its own "
                "first_episode_id (or pass segment_id)"
            )
    return found
