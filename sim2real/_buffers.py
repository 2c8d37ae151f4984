"""A replay buffer that holds real data and simulated transitions side by side, sampled separately."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize


class RealSimReplayBuffer(ReplayBuffer):
    """SB3's ReplayBuffer with two regions: rows ``[0, real_size)`` are real data, the rest simulated transitions.

    The real rows are written first (e.g. an offline dataset by :func:`rl.offline.fill_replay_buffer`) and
    marked with :meth:`set_real_size`; every later :meth:`add` (the env steps of ``learn``) goes to the sim
    region, which is circular on its own: when it is full the oldest sim transition is overwritten and the
    real rows never are (the authors' ``MixedReplayBuffer``). :meth:`sample_real` and :meth:`sample_sim` draw
    uniformly from one region each, with SB3's global NumPy generator like ``sample``; ``sample`` still draws
    from both. Being one SB3 buffer, it is saved and loaded whole by ``save_replay_buffer`` /
    ``load_replay_buffer`` (the region boundary included).

    The memory-saving variant (``optimize_memory_usage``) is not supported: it stores next observations in
    the following row, which would cross the regions' boundary.
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: Any = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
    ) -> None:
        if optimize_memory_usage:
            raise ValueError("RealSimReplayBuffer does not support optimize_memory_usage=True.")
        super().__init__(
            buffer_size, observation_space, action_space, device=device, n_envs=n_envs,
            optimize_memory_usage=False, handle_timeout_termination=handle_timeout_termination,
        )
        self.real_size = 0

    def set_real_size(self, n: int) -> None:
        """Mark the ``n`` rows written so far as the real data (nothing else may have been added yet)."""
        if self.full or self.pos != n:
            raise ValueError(f"The buffer holds {self.size()} rows; {n} real rows must be all of them.")
        if n >= self.buffer_size:
            raise ValueError(f"{n} real rows leave no room for sim transitions in a buffer of {self.buffer_size}.")
        self.real_size = n

    @property
    def sim_size(self) -> int:
        """Number of simulated transitions stored."""
        return self.size() - self.real_size

    def reset(self) -> None:
        super().reset()
        self.real_size = 0

    def add(self, *args: Any, **kwargs: Any) -> None:
        super().add(*args, **kwargs)
        if self.full and self.pos == 0:
            self.pos = self.real_size  # wrap around inside the sim region

    def sample_real(self, batch_size: int, env: VecNormalize | None = None) -> ReplayBufferSamples:
        """``batch_size`` real transitions, uniformly with replacement."""
        if self.real_size == 0:
            raise ValueError("The buffer holds no real data.")
        return self._get_samples(np.random.randint(0, self.real_size, size=batch_size), env=env)

    def sample_sim(self, batch_size: int, env: VecNormalize | None = None) -> ReplayBufferSamples:
        """``batch_size`` simulated transitions, uniformly with replacement."""
        if self.sim_size == 0:
            raise ValueError("The buffer holds no sim transition yet.")
        return self._get_samples(np.random.randint(self.real_size, self.size(), size=batch_size), env=env)
