"""Record an SB3 training run's steps as :class:`Trajectory` objects, and replace the reward its learner stores.

Preference-based training (SPO's self-play win rates, a reward model's queries) needs the behaviour of the
policy being trained as trajectories: the raw observation each action was taken at, the action the env
received, the true reward (or its terms), numeric infos. :class:`RecordingCallback` reads them from what SB3
hands every callback after each env step (``self.locals``: ``new_obs``, ``rewards``, ``dones``, ``infos`` and
the env actions) and from VecNormalize's original observations and rewards, into a
:class:`TrajectoryRecorder` (one episode in progress per sub-env, finished episodes popped by the trainer).

Why a callback and not a VecEnv wrapper: SB3's EvalCallback (``sync_envs_normalization``) walks the training
and evaluation envs' wrapper chains in step and refuses chains of different depth, so an extra wrapper on
the training env breaks every evaluation; a callback works with any VecEnv, VecNormalize and SubprocVecEnv.

Replacing the reward: SB3 calls ``callback.on_step()`` after ``env.step`` and *before* the step goes into
the buffer, and ``self.locals["rewards"]`` is the very array it then stores, so writing into it in place
changes what the learner sees (the on-policy timeout bootstrap is added afterwards, as usual). Off-policy
learners with VecNormalize store VecNormalize's original reward instead: that array is written too. SB3's
Monitor, inside each env, still logs the true return (``rollout/ep_rew_mean`` stays the true return).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

from rl.preferences.errors import SegmentError
from rl.preferences.segments import Trajectory

_SUM_TOLERANCE = 1e-4


class RecorderError(ValueError):
    """The recorder cannot follow this model (not an SB3 on- or off-policy algorithm, no env)."""


class TrajectoryRecorder:
    """Each sub-env's episode in progress and the episodes finished since the last :meth:`pop_finished`.

    :param n_envs: number of sub-envs.
    :param reward_terms: info keys whose values sum to the reward (e.g. :class:`RewardTermsInInfo`'s), recorded
        as the trajectory's reward columns; None records the scalar reward.
    :param info_keys: numeric info keys to record per step (e.g. ``x_position`` for a non-Markovian rater).
    :param env_id: recorded in the trajectories.
    """

    def __init__(
        self,
        n_envs: int,
        *,
        reward_terms: Sequence[str] | None = None,
        info_keys: Sequence[str] = (),
        env_id: str | None = None,
    ) -> None:
        self.n_envs = int(n_envs)
        self.reward_terms = tuple(reward_terms) if reward_terms else None
        self.info_keys = tuple(info_keys)
        self.env_id = env_id
        self.finished: list[tuple[int, Trajectory]] = []
        self.episodes_finished = 0
        self._steps: list[dict[str, list[Any]]] = [self._empty() for _ in range(self.n_envs)]
        self._observations: np.ndarray | None = None

    @staticmethod
    def _empty() -> dict[str, list[Any]]:
        return {"observations": [], "actions": [], "rewards": [], "infos": []}

    def start(self, observations: np.ndarray) -> None:
        """The raw observations the next actions are taken at; episodes in progress are dropped."""
        self._observations = np.array(observations, copy=True)
        self._steps = [self._empty() for _ in range(self.n_envs)]

    @property
    def started(self) -> bool:
        return self._observations is not None

    def record(
        self, actions: np.ndarray, rewards: np.ndarray, dones: np.ndarray, infos: Sequence[dict[str, Any]],
        next_observations: np.ndarray,
    ) -> None:
        """One VecEnv step: raw actions, true rewards, dones, infos and the raw observations returned."""
        if self._observations is None:
            raise RuntimeError("TrajectoryRecorder.record before start")
        for i, info in enumerate(infos):
            steps = self._steps[i]
            steps["observations"].append(self._observations[i])
            steps["actions"].append(np.array(actions[i], copy=True))
            steps["rewards"].append(self._reward_row(float(rewards[i]), info))
            steps["infos"].append([float(info.get(key, np.nan)) for key in self.info_keys])
            if dones[i]:
                terminated = not info.get("TimeLimit.truncated", False)
                self.finished.append((i, self._trajectory(steps, terminated=terminated)))
                self.episodes_finished += 1
                self._steps[i] = self._empty()
        self._last_step = (self._observations, np.asarray(actions))
        self._observations = np.array(next_observations, copy=True)

    def last_step_observations(self) -> np.ndarray:
        """The raw observations the last recorded step's actions were taken at, one row per sub-env."""
        return self._last_step[0]

    def last_step_actions(self) -> np.ndarray:
        """The last recorded step's env actions, one row per sub-env."""
        return self._last_step[1]

    def _reward_row(self, reward: float, info: dict[str, Any]) -> Any:
        if self.reward_terms is None:
            return reward
        missing = [key for key in self.reward_terms if key not in info]
        if missing:
            raise SegmentError(
                f"the env's info has no reward terms {missing}; wrap the env in rl.preferences.RewardTermsInInfo "
                "or pass reward_terms=None"
            )
        row = [float(info[key]) for key in self.reward_terms]
        if abs(sum(row) - reward) > _SUM_TOLERANCE * max(1.0, abs(reward)):
            raise SegmentError(
                f"reward terms {dict(zip(self.reward_terms, row))} do not sum to the reward {reward}; pass terms "
                "that add up to the reward (the true return is their sum)"
            )
        return row

    def _trajectory(self, steps: dict[str, list[Any]], *, terminated: bool) -> Trajectory:
        n = len(steps["actions"])
        infos = np.asarray(steps["infos"], dtype=np.float64).reshape(n, len(self.info_keys))
        return Trajectory(
            observations=np.asarray(steps["observations"]),
            actions=np.asarray(steps["actions"]),
            rewards=np.asarray(steps["rewards"], dtype=np.float64),
            infos={key: infos[:, k] for k, key in enumerate(self.info_keys)},
            reward_names=self.reward_terms or (),
            env_id=self.env_id,
            episode_id=self.episodes_finished,
            terminated=terminated,
        )

    def pop_finished(self) -> list[tuple[int, Trajectory]]:
        """The (sub-env index, trajectory) of each episode finished since the last call, in finishing order."""
        finished, self.finished = self.finished, []
        return finished

    def in_progress(self, index: int) -> Trajectory | None:
        """Sub-env ``index``'s episode so far as a trajectory (None before its first step)."""
        steps = self._steps[index]
        return self._trajectory(steps, terminated=False) if steps["actions"] else None

    def steps_in_progress(self, index: int) -> int:
        """How many steps sub-env ``index``'s current episode has taken."""
        return len(self._steps[index]["actions"])

    def get_state(self) -> dict[str, Any]:
        """Episodes in progress, last observations and counters (for a resumed run)."""
        return {
            "steps": [{key: list(value) for key, value in steps.items()} for steps in self._steps],
            "observations": None if self._observations is None else self._observations.copy(),
            "finished": list(self.finished),
            "episodes_finished": self.episodes_finished,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self._steps = [{key: list(value) for key, value in steps.items()} for steps in state["steps"]]
        self._observations = None if state["observations"] is None else np.array(state["observations"], copy=True)
        self.finished = list(state["finished"])
        self.episodes_finished = int(state["episodes_finished"])


def env_term_names(venv: Any) -> tuple[str, ...] | None:
    """The reward terms :class:`~rl.preferences.reward_terms.RewardTermsInInfo` writes in this VecEnv's envs."""
    try:
        return tuple(venv.get_attr("term_names", [0])[0])
    except AttributeError:
        return None


class RecordingCallback(BaseCallback):
    """Base of callbacks that follow the run as trajectories and may replace the reward the learner stores.

    Subclasses call :meth:`replace_rewards` from their ``_on_step`` (after ``super()._on_step()``), read
    ``self.recorder``, and get the buffer position of the current step from :meth:`buffer_position`.
    """

    def __init__(
        self, *, reward_terms: Sequence[str] | None = None, info_keys: Sequence[str] = (), env_id: str | None = None,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        self.reward_terms, self.info_keys, self.env_id = reward_terms, tuple(info_keys), env_id
        self.recorder: TrajectoryRecorder | None = None
        self._resumed: dict[str, Any] | None = None
        self._restored = False
        self._last_obs_at_end: Any = None

    def _init_callback(self) -> None:
        if not isinstance(self.model, (OnPolicyAlgorithm, OffPolicyAlgorithm)) or self.model.env is None:
            raise RecorderError(
                f"{type(self).__name__} writes rewards into an SB3 on- or off-policy buffer; "
                f"{type(self.model).__name__} has none (or no env)"
            )
        if self.recorder is None:
            self.recorder = TrajectoryRecorder(
                self.model.env.num_envs, reward_terms=self.reward_terms, info_keys=self.info_keys, env_id=self.env_id
            )
        if self._resumed is not None:
            self._apply_resume_state(self._resumed)
            self._resumed, self._restored = None, True

    def _on_training_start(self) -> None:
        # learn() continues the episodes in progress only if it kept the model's last observation (SB3 resets the
        # env, and makes a new one, on reset_num_timesteps=True); a resumed run continues its restored episodes
        assert self.recorder is not None
        continuing = self._restored or (
            self.recorder.started and self.model._last_obs is self._last_obs_at_end  # type: ignore[attr-defined]
        )
        if not continuing:  # a fresh run, or learn() reset the env: the episodes in progress are gone
            self.recorder.start(self._raw_last_observations())
        self._restored = False

    def _on_training_end(self) -> None:
        self._last_obs_at_end = self.model._last_obs  # type: ignore[attr-defined]

    def _vec_normalize(self) -> Any:
        return self.model.get_vec_normalize_env()

    def _raw_last_observations(self) -> np.ndarray:
        vec_normalize = self._vec_normalize()
        last = self.model._last_obs  # type: ignore[attr-defined]
        if vec_normalize is None:
            return np.asarray(last)
        if isinstance(self.model, OffPolicyAlgorithm) and self.model._last_original_obs is not None:
            return np.asarray(self.model._last_original_obs)
        return np.asarray(vec_normalize.unnormalize_obs(last))

    def _on_step(self) -> bool:
        assert self.recorder is not None
        vec_normalize = self._vec_normalize()
        if vec_normalize is not None:
            next_observations, rewards = vec_normalize.get_original_obs(), vec_normalize.get_original_reward()
        else:
            next_observations, rewards = self.locals["new_obs"], np.array(self.locals["rewards"], copy=True)
        if isinstance(self.model, OnPolicyAlgorithm):
            actions = self.locals["clipped_actions"]
        else:
            actions = self.locals["actions"]
        self.recorder.record(actions, rewards, self.locals["dones"], self.locals["infos"], next_observations)
        return True

    def replace_rewards(self, rewards: np.ndarray) -> None:
        """Make the learner store ``rewards`` (one per sub-env) for the current step instead of the env's."""
        self.locals["rewards"][:] = rewards
        vec_normalize = self._vec_normalize()
        if isinstance(self.model, OffPolicyAlgorithm) and vec_normalize is not None:
            vec_normalize.old_reward[:] = rewards  # what _store_transition stores under VecNormalize

    def buffer_position(self) -> int:
        """Where the current step will be stored: the rollout buffer's or the replay buffer's next slot."""
        if isinstance(self.model, OnPolicyAlgorithm):
            return int(self.model.rollout_buffer.pos)
        return int(self.model.replay_buffer.pos)  # type: ignore[union-attr]

    def get_resume_state(self) -> dict[str, Any]:
        assert self.recorder is not None
        return {"recorder": self.recorder.get_state()}

    def set_resume_state(self, state: dict[str, Any]) -> None:
        """Called before ``learn`` (the model is not known yet): applied when the callback is initialised."""
        self._resumed = state

    def _apply_resume_state(self, state: dict[str, Any]) -> None:
        assert self.recorder is not None
        self.recorder.set_state(state["recorder"])
