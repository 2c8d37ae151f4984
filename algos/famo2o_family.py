"""FamO2O's family (Wang, Yang, Gao, Lin, Chen, Wu, Jia, Song & Huang, NeurIPS 2023), whatever the base algorithm.

"Train Once, Get a Family: State-Adaptive Balances for Offline-to-Online Reinforcement Learning",
https://arxiv.org/abs/2310.17966. A *universal policy* pi_u(a | s, beta) is trained for every balance
coefficient beta in a range at once (offline: beta drawn uniformly per sample), and a state-only *balance
model* beta(s) learns which member of that family to follow in each state (online: beta from the balance
model). :class:`FamilyMixin` holds what that idea adds to any base algorithm; :class:`~algos.famo2o.FamO2O`
puts it on IQL (beta is IQL's inverse temperature), :class:`~algos.famo2o_cql.FamO2OCQL` on CQL (beta weights
the Q term of the actor's loss). The networks are in :mod:`algos.famo2o_policies`.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.type_aliases import MaybeCallback
from stable_baselines3.common.utils import update_learning_rate
from stable_baselines3.common.vec_env import VecEnv, sync_envs_normalization

from algos.famo2o_policies import BalanceModel, BalanceSample, FamO2OCQLPolicy, FamO2OPolicy
from rl.datasets import OfflineDataset

OFFLINE_EVAL_EPISODES = 10
"""Episodes of the evaluation of the policy as the offline phase left it (the runner's final evaluation count)."""
BETA_PLOT_FILE = "beta_over_episode.png"
MAX_EPISODE_STEPS = 100_000
"""Guard on the length of the episode whose betas are plotted (the envs' own time limits end it first)."""


class FamilyMixin:
    """What the family adds to a base algorithm, in both variants: the beta range, uniform betas offline, beta
    statistics, the balance model's optimizer, and the run artefacts (the score at the end of the offline phase,
    beta over an episode). Each variant trains the balance model in its base's update hooks.

    Put it first in the bases, before the base algorithm.
    """

    beta_min: float
    beta_max: float
    balance_lr: float
    policy: FamO2OPolicy | FamO2OCQLPolicy
    balance_model: BalanceModel
    _offline_policy_state: dict[str, th.Tensor] | None

    def _init_family(
        self, beta_min: float, beta_max: float, beta_encoding_dim: int, beta_encoding_base: float, balance_lr: float,
        policy_kwargs: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """Check and remember the family's settings; return ``policy_kwargs`` with the policy's share of them."""
        if not beta_min < beta_max:
            raise ValueError(f"beta_min must be below beta_max (IQL locomotion: 1 and 5; CQL: 0.5 and 1.5), "
                             f"got {beta_min} and {beta_max}.")
        if beta_encoding_dim <= 0 or beta_encoding_dim % 2:
            raise ValueError(
                f"beta_encoding_dim must be a positive even number (the authors: 6), got {beta_encoding_dim}."
            )
        if balance_lr < 0:
            raise ValueError(f"balance_lr must be >= 0 (the authors: 3e-4), got {balance_lr}.")
        self.beta_min, self.beta_max = float(beta_min), float(beta_max)
        self.beta_encoding_dim, self.beta_encoding_base = beta_encoding_dim, beta_encoding_base
        self.balance_lr = balance_lr
        return {
            **(policy_kwargs or {}), "beta_min": self.beta_min, "beta_max": self.beta_max,
            "beta_encoding_dim": beta_encoding_dim, "beta_encoding_base": beta_encoding_base,
        }

    def _setup_family(self) -> None:
        self.balance_model = self.policy.balance_model
        update_learning_rate(self.balance_model.optimizer, self.balance_lr)
        self._offline_policy_state = None

    def universal_policy_betas(self, balance: BalanceSample) -> th.Tensor:
        """The betas the universal policy is trained with on a batch, (batch, 1), no gradient.

        Offline: ``U[beta_min, beta_max]`` per sample, so that every member of the family is trained; online:
        the balance model's sample for the batch's states.
        """
        if self.in_offline_phase:  # type: ignore[attr-defined]
            uniform = th.rand(balance.beta.shape, device=balance.beta.device)
            return self.beta_min + uniform * (self.beta_max - self.beta_min)
        return balance.beta.detach()

    @staticmethod
    def _beta_logs(balance: BalanceSample, policy_betas: th.Tensor) -> dict[str, th.Tensor]:
        """Statistics of the balance model's choice (its deterministic beta) on the batch's states, of its sample,
        and of the betas the universal policy is trained with."""
        mode = balance.mode.detach()
        return {
            "beta_mean": mode.mean(), "beta_std": mode.std() if len(mode) > 1 else th.zeros(()),
            "beta_min": mode.min(), "beta_max": mode.max(), "beta_sampled_mean": balance.beta.detach().mean(),
            "actor_beta_mean": policy_betas.mean(),
        }

    def predict_beta(self, observation: np.ndarray | dict[str, np.ndarray]) -> np.ndarray:
        """The balance coefficient the balance model chooses for raw observations (what ``predict`` acts with)."""
        return self.policy.predict_beta(observation)

    def learn_offline(
        self,
        n_updates: int,
        callback: MaybeCallback = None,
        log_interval: int = 1000,
        tb_log_name: str = "offline",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ):  # noqa: ANN201 - returns self, like learn
        """:meth:`rl.offline.OfflineAlgorithmMixin.learn_offline`, then keep the policy's parameters as they are
        at the end of the offline phase (in memory, not saved), for the offline score of
        :meth:`write_run_artifacts`."""
        super().learn_offline(  # type: ignore[misc]
            n_updates, callback=callback, log_interval=log_interval, tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps, progress_bar=progress_bar,
        )
        self._offline_policy_state = {key: value.detach().clone() for key, value in self.policy.state_dict().items()}
        return self

    def offline_evaluation(self, eval_env: VecEnv, run_dir: str | None = None) -> dict[str, Any] | None:
        """Deterministic evaluation of the policy as the offline phase left it.

        From the parameters kept by :meth:`learn_offline` in this process; otherwise (a run resumed after
        the offline phase) the periodic evaluation logged at the offline phase's last step in
        ``run_dir/evaluations.npz``, if there is one; else None.
        """
        from rl.evaluation import EVALUATIONS_FILE, evaluate

        if self._offline_policy_state is not None:
            current = {key: value.detach().clone() for key, value in self.policy.state_dict().items()}
            self.policy.load_state_dict(self._offline_policy_state)
            try:
                summary = evaluate(self, eval_env, n_episodes=OFFLINE_EVAL_EPISODES)  # type: ignore[arg-type]
            finally:
                self.policy.load_state_dict(current)
            return {"mean_reward": summary.mean_reward, "std_reward": summary.std_reward,
                    "n_episodes": summary.n_episodes, "timestep": self.offline_updates}  # type: ignore[attr-defined]
        path = os.path.join(run_dir, EVALUATIONS_FILE) if run_dir else None
        if path and os.path.isfile(path):
            data = np.load(path)
            rows = np.flatnonzero(data["timesteps"] == self.offline_updates)  # type: ignore[attr-defined]
            if len(rows):
                results = data["results"][rows[-1]]
                return {"mean_reward": float(np.mean(results)), "std_reward": float(np.std(results)),
                        "n_episodes": len(results), "timestep": self.offline_updates}  # type: ignore[attr-defined]
        return None

    def beta_over_episode(self, eval_env: VecEnv) -> tuple[np.ndarray, float]:
        """Run one deterministic episode in ``eval_env`` (its first env); the beta chosen at each step, and the
        episode's return."""
        train_env = self.get_env()  # type: ignore[attr-defined]
        if train_env is not None:
            sync_envs_normalization(train_env, eval_env)
        observations = eval_env.reset()
        betas, episode_return = [], 0.0
        for _ in range(MAX_EPISODE_STEPS):
            betas.append(float(np.atleast_1d(self.predict_beta(observations))[0]))
            actions, _ = self.predict(observations, deterministic=True)  # type: ignore[attr-defined]
            observations, rewards, dones, infos = eval_env.step(actions)
            episode_return += float(rewards[0])
            if dones[0]:
                episode_return = float(infos[0].get("episode", {}).get("r", episode_return))
                break
        return np.asarray(betas), episode_return

    def write_run_artifacts(self, run_dir: str, eval_env: VecEnv) -> dict[str, Any]:
        """The runner's hook: the offline-phase score, and ``beta_over_episode.png`` with its summary figures."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        offline = self.offline_evaluation(eval_env, run_dir)
        dataset: OfflineDataset | None = self.dataset  # type: ignore[attr-defined]
        offline_score = None
        if offline is not None and dataset is not None and dataset.ref_min is not None:
            offline_score = float(dataset.normalized_score(offline["mean_reward"]))
            print(f"D4RL normalised score at the end of the offline phase ({offline['timestep']} updates): "
                  f"{offline_score:.1f}")

        betas, episode_return = self.beta_over_episode(eval_env)
        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.plot(np.arange(len(betas)), betas, color="tab:purple", lw=1.2, label="beta(s) of the balance model")
        for bound in (self.beta_min, self.beta_max):
            ax.axhline(bound, color="gray", ls="--", lw=0.8)
        margin = 0.05 * (self.beta_max - self.beta_min)
        ax.set_ylim(self.beta_min - margin, self.beta_max + margin)
        ax.set_xlabel("step of a deterministic evaluation episode")
        ax.set_ylabel("balance coefficient beta")
        ax.set_title(f"{type(self).__name__}: beta over an episode (return {episode_return:.1f})")
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
        fig.tight_layout()
        fig.savefig(os.path.join(run_dir, BETA_PLOT_FILE), dpi=110)
        plt.close(fig)
        return {
            "offline_evaluation": offline,
            "offline_normalized_score": offline_score,
            "beta_over_episode": {
                "plot": BETA_PLOT_FILE, "steps": len(betas), "episode_return": episode_return,
                "mean": float(betas.mean()), "std": float(betas.std()), "min": float(betas.min()),
                "max": float(betas.max()), "beta_range": [self.beta_min, self.beta_max],
            },
        }

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "balance_model", "_offline_policy_state"]  # type: ignore[misc]
