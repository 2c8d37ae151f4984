"""rl.envs.make_training_env with SubprocVecEnv: workers start with Gymnasium's own registry (forkserver or
spawn), so ids of optional packages must be registered inside the worker."""

from __future__ import annotations

import numpy as np
import pytest

from rl.envs import make_training_env


@pytest.mark.parametrize("env_id", ["HopperBulletEnv-v0", "Coverage-Constant-v0"])
def test_subproc_workers_make_ids_of_optional_packages(env_id):
    venv = make_training_env(env_id, n_envs=2, seed=0, vec_env_class="subproc")
    try:
        obs = venv.reset()
        actions = np.stack([venv.action_space.sample() for _ in range(2)])
        next_obs, rewards, _, _ = venv.step(actions)
        assert obs.shape[0] == 2 and next_obs.shape == obs.shape and rewards.shape[0] == 2
    finally:
        venv.close()
