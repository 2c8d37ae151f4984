"""Whole episodes as numpy arrays: what the generator records, what Minari stores, what D4RL flattens.

An episode of T steps has T + 1 observations (the reset observation, then the one after each step), and
T actions, rewards and flags; per-step infos (MuJoCo ``qpos``/``qvel``) have T + 1 rows aligned with the
observations, as Minari's DataCollector records them (the reset info, then each step's). From episodes
the two flat layouts follow: D4RL's file rows (:func:`episodes_to_d4rl`) and learning transitions
(:func:`episodes_to_transitions`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from rl.datasets.d4rl import check_d4rl_arrays
from rl.datasets.errors import MalformedDatasetError


@dataclass(eq=False)
class Episode:
    """One whole episode. Arrays keep the env's dtypes (Gymnasium MuJoCo observations are float64)."""

    observations: np.ndarray
    """(T + 1, obs_dim): the reset observation, then the observation after each step."""
    actions: np.ndarray
    """(T, act_dim): the actions passed to ``env.step``."""
    rewards: np.ndarray
    """(T,)."""
    terminations: np.ndarray
    """(T,) bool: the step reached a terminal state (only the last can be set)."""
    truncations: np.ndarray
    """(T,) bool: the time limit (or the collector) cut the episode after this step."""
    infos: dict[str, np.ndarray] = field(default_factory=dict)
    """Per-observation extras, each (T + 1, ...): ``qpos``, ``qvel`` for MuJoCo envs."""
    seed: int | None = None
    """The seed of the episode's ``env.reset``."""

    def __post_init__(self) -> None:
        self.observations = np.asarray(self.observations)
        self.actions = np.asarray(self.actions)
        self.rewards = np.asarray(self.rewards)
        self.terminations = np.asarray(self.terminations, dtype=bool)
        self.truncations = np.asarray(self.truncations, dtype=bool)
        self.infos = {key: np.asarray(value) for key, value in self.infos.items()}
        steps = len(self.rewards)
        if steps < 1:
            raise MalformedDatasetError("An episode needs at least one step (rewards is empty).")
        expected = {"observations": steps + 1, "actions": steps, "terminations": steps, "truncations": steps}
        expected.update({f"infos[{key!r}]": steps + 1 for key in self.infos})
        actual = {"observations": len(self.observations), "actions": len(self.actions)}
        actual.update({"terminations": len(self.terminations), "truncations": len(self.truncations)})
        actual.update({f"infos[{key!r}]": len(value) for key, value in self.infos.items()})
        wrong = [f"{key} has {actual[key]} rows, expected {n}" for key, n in expected.items() if actual[key] != n]
        if wrong:
            raise MalformedDatasetError(
                f"Episode of {steps} steps (len(rewards)) is inconsistent: {'; '.join(wrong)}. Observations and infos "
                "have one row more than actions (the reset observation)."
            )

    def __len__(self) -> int:
        return len(self.rewards)

    @property
    def total_return(self) -> float:
        """The undiscounted return."""
        return float(np.sum(self.rewards))


def episodes_to_d4rl(episodes: Sequence[Episode]) -> dict[str, np.ndarray]:
    """Flatten episodes into D4RL's file layout (one row per step, see :mod:`rl.datasets.d4rl`).

    Row i holds ``observations[t]``, ``actions[t]``, ``rewards[t]``, ``next_observations`` = ``observations[t + 1]``,
    ``terminals`` = termination, ``timeouts`` = truncation, and ``infos/<key>`` = ``infos[key][t]`` (the state at
    ``observations[t]``, as in D4RL's files). The final observation of each episode appears only as a
    ``next_observations`` row, as in D4RL.
    """
    if not episodes:
        raise MalformedDatasetError("No episodes to flatten.")

    def join(get: Callable[[Episode], np.ndarray]) -> np.ndarray:
        return np.concatenate([get(episode) for episode in episodes])

    data = {
        "observations": join(lambda e: e.observations[:-1]),
        "actions": join(lambda e: e.actions),
        "rewards": join(lambda e: e.rewards),
        "terminals": join(lambda e: e.terminations),
        "timeouts": join(lambda e: e.truncations),
        "next_observations": join(lambda e: e.observations[1:]),
    }
    for key in episodes[0].infos:
        data[f"infos/{key}"] = join(lambda e, key=key: e.infos[key][:-1])
    return data


def episode_row_names(episodes: Sequence[Episode]) -> Callable[[int], str]:
    """How a message names row ``i`` of the episodes back to back: ``"episode 2, step 5 (row 17)"``."""
    starts = np.cumsum([0, *(len(episode) for episode in episodes)])

    def describe(row: int) -> str:
        episode = int(np.searchsorted(starts, row, side="right")) - 1
        return f"episode {episode}, step {row - int(starts[episode])} (row {row})"

    return describe


def episodes_to_transitions(
    episodes: Sequence[Episode], *, drop_timeouts: bool = True, source: str = "the episodes"
) -> dict[str, np.ndarray]:
    """Flat learning transitions (the dict :func:`rl.datasets.qlearning_dataset` returns) from whole episodes.

    Each step t gives (``observations[t]``, ``actions[t]``, ``rewards[t]``, ``observations[t + 1]``), with
    ``terminals`` = termination and ``timeouts`` = truncation. ``drop_timeouts=True`` (default) drops the
    steps whose truncation flag is set, D4RL's rule, so that results match work done on D4RL's
    ``qlearning_dataset``; with episodes the true next observation is known, so ``False`` keeps them (and an
    algorithm should bootstrap through them: timeout is not terminal). Unlike D4RL on a flat file, the very
    last step of the data is not dropped. Floats are float32, flags bool, as in D4RL.

    Raises:
        MalformedDatasetError: the episodes hold something other than finite numbers (NaN, inf, text) or
            arrays of the wrong dimensionality; the message names ``source``, the field, the episode and step.
    """
    if not episodes:
        raise MalformedDatasetError(f"No episodes to convert in {source}.")
    data = check_d4rl_arrays(episodes_to_d4rl(episodes), source, describe_row=episode_row_names(episodes))
    keep = ~data["timeouts"] if drop_timeouts else np.ones(len(data["timeouts"]), dtype=bool)
    return {
        "observations": data["observations"][keep].astype(np.float32),
        "actions": data["actions"][keep].astype(np.float32),
        "next_observations": data["next_observations"][keep].astype(np.float32),
        "rewards": data["rewards"][keep].astype(np.float32),
        "terminals": data["terminals"][keep],
        "timeouts": data["timeouts"][keep],
    }
