"""Tiny offline datasets from real envs, for the offline algorithms' tests.

``random_dataset`` steps a real env with uniform random actions (time limits shortened so that the
data has terminals, timeouts and several episodes); ``write_hdf5`` stores it in D4RL's layout so that
the command line can be tested on a file path.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np

from rl.datasets import OfflineDataset, write_d4rl_hdf5

FIELDS = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")


def random_dataset(
    env_id: str = "Pendulum-v1", n: int = 600, *, max_episode_steps: int = 100, seed: int = 0
) -> OfflineDataset:
    """``n`` transitions of uniform random actions in ``env_id``, with D4RL's flat fields."""
    env = gym.make(env_id, max_episode_steps=max_episode_steps)
    env.action_space.seed(seed)
    rows: dict[str, list] = {k: [] for k in FIELDS}
    obs, _ = env.reset(seed=seed)
    while len(rows["rewards"]) < n:
        action = env.action_space.sample()
        next_obs, reward, terminated, truncated, _ = env.step(action)
        for key, value in zip(rows, (obs, action, reward, next_obs, terminated, truncated and not terminated)):
            rows[key].append(value)
        obs = next_obs
        if terminated or truncated:
            obs, _ = env.reset()
    env.close()
    arrays = {k: np.asarray(v, dtype=np.float32) for k, v in rows.items()}
    return OfflineDataset(
        name=f"{env_id.lower()}-tiny-random", env_id=env_id, observations=arrays["observations"],
        actions=arrays["actions"], next_observations=arrays["next_observations"], rewards=arrays["rewards"],
        terminals=arrays["terminals"].astype(bool), timeouts=np.zeros(n, dtype=bool),
        ref_min=-1500.0, ref_max=0.0, source="memory", recorded_env_id=env_id,
    )


def write_hdf5(dataset: OfflineDataset, path: str | Path) -> Path:
    """Store ``dataset`` as a D4RL-layout HDF5 file that records its env and reference returns."""
    data = {
        "observations": dataset.observations, "actions": dataset.actions, "rewards": dataset.rewards,
        "terminals": dataset.terminals, "timeouts": dataset.timeouts, "next_observations": dataset.next_observations,
    }
    attributes = {"env_id": dataset.env_id, "ref_min_score": dataset.ref_min, "ref_max_score": dataset.ref_max}
    return write_d4rl_hdf5(path, data, attributes=attributes)
