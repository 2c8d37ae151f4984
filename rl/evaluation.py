"""Evaluation during and after training.

``ResumableEvalCallback`` is SB3's EvalCallback that keeps its history across an interrupted and
resumed run (SB3's starts empty and would overwrite ``evaluations.npz``) and times itself, so that
training throughput can be reported without evaluation time.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv, sync_envs_normalization

EVALUATIONS_FILE = "evaluations.npz"


class ResumableEvalCallback(EvalCallback):
    """EvalCallback that reloads ``evaluations.npz`` on start and counts the seconds it spends."""

    def __init__(self, eval_env: VecEnv, *, log_path: str, **kwargs: Any) -> None:
        super().__init__(eval_env, log_path=log_path, **kwargs)
        self.seconds = 0.0
        """Wall time spent evaluating."""

    def _init_callback(self) -> None:
        super()._init_callback()
        path = None if self.log_path is None else self.log_path + ("" if self.log_path.endswith(".npz") else ".npz")
        if path is not None and os.path.isfile(path):
            previous = np.load(path)
            keep = previous["timesteps"] <= self.model.num_timesteps
            self.evaluations_timesteps = list(previous["timesteps"][keep])
            self.evaluations_results = [list(r) for r in previous["results"][keep]]
            self.evaluations_length = [list(r) for r in previous["ep_lengths"][keep]]
            if self.evaluations_results:
                self.best_mean_reward = float(np.max(np.mean(previous["results"][keep], axis=1)))

    def _on_step(self) -> bool:
        start = time.perf_counter()
        result = super()._on_step()
        if self.eval_freq > 0 and self.n_calls % self.eval_freq == 0:
            self.seconds += time.perf_counter() - start
        return result


@dataclass
class EvaluationSummary:
    """Deterministic evaluation of a trained policy."""

    mean_reward: float
    std_reward: float
    n_episodes: int
    episode_rewards: list[float]
    episode_lengths: list[int]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"{self.mean_reward:.2f} +/- {self.std_reward:.2f} over {self.n_episodes} episodes "
            f"(mean length {np.mean(self.episode_lengths):.0f})"
        )


def evaluate(
    model: BaseAlgorithm, eval_env: VecEnv, *, n_episodes: int = 10, deterministic: bool = True
) -> EvaluationSummary:
    """Evaluate ``model`` on ``eval_env`` with the training env's normalisation statistics."""
    train_env = model.get_env()
    if train_env is not None:
        sync_envs_normalization(train_env, eval_env)
    rewards, lengths = evaluate_policy(
        model, eval_env, n_eval_episodes=n_episodes, deterministic=deterministic, return_episode_rewards=True
    )
    rewards = [float(r) for r in rewards]  # type: ignore[union-attr]
    return EvaluationSummary(
        mean_reward=float(np.mean(rewards)),
        std_reward=float(np.std(rewards)),
        n_episodes=n_episodes,
        episode_rewards=rewards,
        episode_lengths=[int(x) for x in lengths],  # type: ignore[union-attr]
    )
