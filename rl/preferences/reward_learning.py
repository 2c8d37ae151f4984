"""Online reward learning from preferences for any SB3 algorithm: the reward-model baseline of SPO's benchmark.

The usual pipeline (Christiano et al., 2017; PEBBLE; ``imitation``'s ``PreferenceComparisons``): while the
policy trains on a learned reward r_hat, cut segments from its recent trajectories, ask the rater about
pairs of them, refit the Bradley-Terry ensemble on all labels so far, and continue on the new r_hat.

:class:`PreferenceRewardCallback` does that for any SB3 model, on the same recording SPO uses
(:mod:`rl.preferences.recorder`: the policy's raw trajectories), and makes the learner store r_hat(s, a) of
each step instead of the env's reward:

- budget: ``total_comparisons`` queries over ``total_timesteps`` env steps (the benchmark gives it SPO's count
  for the same run length, so both see as many labels);
- schedule: query round k at the first step past ``k * query_interval`` env steps (k = 0, 1, ...; round 0 as
  soon as a trajectory has finished, on the initial policy's behaviour); round 0 asks ``initial_fraction`` of
  the budget (``imitation``'s ``initial_comparison_frac`` default 0.1), the rest is split evenly over the
  other rounds;
- segments: pairs of ``segment_length``-step segments (PEBBLE's 50) drawn uniformly from the
  ``recent_trajectories`` most recent finished trajectories (shorter ones give none; if none is long enough,
  whole trajectories are compared);
- training: ``epochs`` passes over all labels so far after each round (PEBBLE retrains on its whole label
  buffer); off-policy learners get their replay buffer relabelled with the new r_hat (PEBBLE's relabelling).

After each round the callback notes how aligned the learner is (``alignment_curve`` in the run record, and
``alignment.png`` in the run folder): the mean true return of the recent trajectories and the Pearson correlation
between r_hat and the true reward on their steps, against the rater queries used so far.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from rl.preferences.queue import ComparisonQueue
from rl.preferences.raters import Rater
from rl.preferences.recorder import RecordingCallback
from rl.preferences.reward_model import BradleyTerryRewardModel, space_spec
from rl.preferences.segments import Segment, Trajectory, sample_segments

REWARD_MODEL_FILE = "reward_model.pt"
"""The learned reward in a finished run folder."""


class RewardLearningError(ValueError):
    """A bad setting of the reward-learning baseline."""


def query_schedule(total_comparisons: int, n_rounds: int, initial_fraction: float) -> np.ndarray:
    """Comparisons asked in each of ``n_rounds`` rounds: ``initial_fraction`` first, the rest evenly; sums to
    ``total_comparisons`` exactly (remainders go to the earliest rounds)."""
    if n_rounds < 1:
        raise RewardLearningError(f"need at least one query round, got {n_rounds}")
    first = int(round(total_comparisons * initial_fraction)) if n_rounds > 1 else total_comparisons
    rest, rounds = total_comparisons - first, n_rounds - 1
    later = [rest // rounds + (1 if i < rest % rounds else 0) for i in range(rounds)]
    counts = np.array([first, *later], dtype=np.int64)
    return counts


class PreferenceRewardCallback(RecordingCallback):
    """Learns r_hat from rater queries while the model trains on it (see the module docstring)."""

    def __init__(
        self,
        rater: Rater,
        reward_model: BradleyTerryRewardModel,
        *,
        total_comparisons: int,
        total_timesteps: int | None = None,
        query_interval: int = 10_000,
        initial_fraction: float = 0.1,
        segment_length: int = 50,
        recent_trajectories: int = 100,
        epochs: int = 10,
        reward_terms: Sequence[str] | None = None,
        env_id: str | None = None,
        seed: int | None = 0,
        verbose: int = 0,
    ) -> None:
        super().__init__(reward_terms=reward_terms, env_id=env_id, verbose=verbose)
        if total_comparisons < 1 or (total_timesteps is not None and total_timesteps < 1) or query_interval < 1 \
                or segment_length < 1:
            raise RewardLearningError(
                "total_comparisons, total_timesteps, query_interval and segment_length must be positive integers"
            )
        if not 0 <= initial_fraction <= 1:
            raise RewardLearningError(f"initial_fraction must be in [0, 1], got {initial_fraction}")
        self.rater, self.reward_model = rater, reward_model
        self.query_interval, self.segment_length = int(query_interval), int(segment_length)
        self.epochs = int(epochs)
        self.total_comparisons, self.total_timesteps = int(total_comparisons), total_timesteps
        self.initial_fraction = float(initial_fraction)
        self.schedule = np.zeros(0, dtype=np.int64)
        """Comparisons per query round, fixed at the start of training (see :func:`query_schedule`)."""
        self.rounds_done = 0
        self.record: dict[str, Any] = {}
        """Filled at the end of training: comparisons used and their curve (the runner's run.json gets it)."""
        self.comparison_curve: list[tuple[int, int]] = []
        self.alignment_curve: list[dict[str, float]] = []
        """Per query round: env steps, comparisons used, recent true return, corr(r_hat, true reward)."""
        self.rng = np.random.default_rng(seed)
        self.queue = ComparisonQueue(recent_capacity=int(recent_trajectories))

    @property
    def comparisons_used(self) -> int:
        return self.queue.comparisons_used

    def _on_training_start(self) -> None:
        super()._on_training_start()
        self._check_reward_model_fits(self.model.observation_space, self.model.action_space)
        if len(self.schedule) == 0:
            total = self.total_timesteps or int(self.model._total_timesteps)
            n_rounds = max(1, -(-total // self.query_interval))
            self.schedule = query_schedule(self.total_comparisons, n_rounds, self.initial_fraction)

    def _on_training_end(self) -> None:
        super()._on_training_end()
        self.comparison_curve.append((int(self.num_timesteps), self.comparisons_used))
        self.record.update(
            comparisons_used=self.comparisons_used, query_rounds=self.rounds_done,
            comparison_curve=[list(point) for point in self.comparison_curve],
            alignment_curve=list(self.alignment_curve),
        )

    def _on_step(self) -> bool:
        super()._on_step()
        assert self.recorder is not None
        observations = self.recorder.last_step_observations()
        self.replace_rewards(self.reward_model.predict(observations, self.recorder.last_step_actions()))
        for _, trajectory in self.recorder.pop_finished():
            self.queue.push_trajectory(trajectory)
        due = self.rounds_done < len(self.schedule) and self.num_timesteps >= self.rounds_done * self.query_interval
        if due and self.queue.recent_trajectories():  # round k: the first step past k * query_interval
            self._query_and_train(int(self.schedule[self.rounds_done]))
            self.rounds_done += 1
        return True

    def _segments(self, n: int) -> list[Segment]:
        trajectories = self.queue.recent_trajectories()
        if max(len(t) for t in trajectories) >= self.segment_length:
            return sample_segments(trajectories, self.segment_length, n, self.rng)
        picks = self.rng.integers(0, len(trajectories), size=n)
        return [trajectories[i].as_segment() for i in picks]

    def _query_and_train(self, n_pairs: int) -> None:
        if n_pairs > 0:
            segments = self._segments(2 * n_pairs)
            self.queue.compare_pairs(self.rater, list(zip(segments[::2], segments[1::2])), self.rng)
        if len(self.queue) == 0:
            return
        correction = self._gradient_correction(n_pairs)
        stats = self.reward_model.train(self.queue, epochs=self.epochs, rng=self.rng, gradient_correction=correction)
        if isinstance(self.model, OffPolicyAlgorithm):
            self._relabel_replay_buffer()
        for key, value in stats.items():
            self.logger.record(f"reward_model/{key}", value)
        self.logger.record("reward_model/comparisons_used", self.comparisons_used)
        self.comparison_curve.append((int(self.num_timesteps), self.comparisons_used))
        alignment = {"steps": int(self.num_timesteps), "comparisons": self.comparisons_used,
                     **alignment_of(self.reward_model, self.queue.recent_trajectories()),
                     "fit_accuracy": stats["accuracy"],
                     **{key: stats[key] for key in ("loss_gradient_norm", "correction_norm") if key in stats}}
        self.alignment_curve.append(alignment)
        self.logger.record("reward_model/true_reward_correlation", alignment["reward_correlation"])

    def write_run_artifacts(self, run_dir: str) -> None:
        """``alignment.png`` and the learned reward (``reward_model.pt``, :meth:`BradleyTerryRewardModel.load`)
        in the finished run's folder (the runner calls this after writing run.json)."""
        plot_alignment(self.alignment_curve, f"{run_dir}/alignment.png")
        self.reward_model.save(f"{run_dir}/{REWARD_MODEL_FILE}")

    def _check_reward_model_fits(self, observation_space: Any, action_space: Any) -> None:
        """The reward model must take the env's observations (and actions): say so before any step is taken."""
        wanted = (space_spec(observation_space, "observation"),
                  space_spec(action_space, "action") if self.reward_model.use_actions else None)
        found = (self.reward_model.observation_spec,
                 self.reward_model.action_spec if self.reward_model.use_actions else None)
        if wanted != found:
            raise RewardLearningError(
                f"the reward model takes observations {found[0]} and actions {found[1]} but the env gives "
                f"{wanted[0]} and {wanted[1]}: build it with BradleyTerryRewardModel(model.observation_space, "
                "model.action_space)"
            )

    def _gradient_correction(self, n_new: int) -> list[Any] | None:
        """A term added to the reward model's loss gradient in this round's fitting, given the round's ``n_new``
        comparisons (the newest in the queue). None here: plain reward learning; PARL adds its implicit term."""
        return None

    def _relabel_replay_buffer(self) -> None:
        """PEBBLE's relabelling: every stored transition gets the new r_hat (on env-scale actions, as r_hat
        was trained on; the buffer keeps SB3's [-1, 1] actions for squashed policies)."""
        model: Any = self.model
        buffer = model.replay_buffer
        size = buffer.buffer_size if buffer.full else buffer.pos
        if size == 0:
            return
        actions = buffer.actions[:size]
        if model.policy.squash_output:
            actions = model.policy.unscale_action(actions)
        rewards = self.reward_model.predict(buffer.observations[:size], actions)
        buffer.rewards[:size] = rewards.astype(buffer.rewards.dtype)

    def get_resume_state(self) -> dict[str, Any]:
        return {
            **super().get_resume_state(),
            "rng": self.rng.bit_generator.state,
            "queue": self.queue,
            "rounds_done": self.rounds_done,
            "schedule": self.schedule.tolist(),
            "comparison_curve": list(self.comparison_curve),
            "alignment_curve": list(self.alignment_curve),
            "reward_model": {
                "members": self.reward_model.members.state_dict(),
                "optimizer": self.reward_model.optimizer.state_dict(),
                "mean_std": (self.reward_model.reward_mean, self.reward_model.reward_std),
                "comparisons_trained": self.reward_model.comparisons_trained,
            },
        }

    def _apply_resume_state(self, state: dict[str, Any]) -> None:
        super()._apply_resume_state(state)
        self.rng.bit_generator.state = state["rng"]
        self.queue = state["queue"]
        self.rounds_done = int(state["rounds_done"])
        self.schedule = np.asarray(state["schedule"], dtype=np.int64)
        self.comparison_curve = [tuple(point) for point in state["comparison_curve"]]
        self.alignment_curve = list(state.get("alignment_curve", []))
        model_state = state["reward_model"]
        self.reward_model.members.load_state_dict(model_state["members"])
        self.reward_model.optimizer.load_state_dict(model_state["optimizer"])
        self.reward_model.reward_mean, self.reward_model.reward_std = model_state["mean_std"]
        self.reward_model.comparisons_trained = int(model_state["comparisons_trained"])


def alignment_of(reward_model: BradleyTerryRewardModel, trajectories: Sequence[Trajectory]) -> dict[str, float]:
    """The mean true return of ``trajectories`` and the Pearson correlation between the model's reward and the
    true reward (the sum of the terms, if the trajectories keep terms) over their steps (nan if either is
    constant or there are no steps)."""
    if not trajectories:
        return {"recent_true_return": float("nan"), "reward_correlation": float("nan")}
    true = np.concatenate([t.rewards if t.rewards.ndim == 1 else t.rewards.sum(axis=1) for t in trajectories])
    predicted = np.concatenate([reward_model.predict(t.observations[: len(t)], t.actions) for t in trajectories])
    varied = len(true) > 1 and np.std(true) > 0 and np.std(predicted) > 0
    return {
        "recent_true_return": float(np.mean([t.true_return for t in trajectories])),
        "reward_correlation": float(np.corrcoef(predicted, true)[0, 1]) if varied else float("nan"),
    }


def plot_alignment(curve: Sequence[dict[str, float]], path: str) -> None:
    """The recent true return and corr(r_hat, true reward) against the rater queries used."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (returns, correlation) = plt.subplots(1, 2, figsize=(10, 3.8))
    queries = [point["comparisons"] for point in curve]
    returns.plot(queries, [point["recent_true_return"] for point in curve], "o-", color="tab:blue")
    returns.set(xlabel="rater queries used", ylabel="true return (recent trajectories)")
    correlation.plot(queries, [point["reward_correlation"] for point in curve], "o-", color="tab:green")
    correlation.set(xlabel="rater queries used", ylabel="corr(learned reward, true reward)", ylim=(-1.05, 1.05))
    for axis in (returns, correlation):
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
