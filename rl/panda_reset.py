"""Reproducible resets for panda-gym's own envs (PandaReach-v3, PandaPush-v3, ...).

panda-gym 3's ``RobotTaskEnv.reset`` gives the task a new generator on every reset,
``seeding.np_random(seed)``: with ``seed=None`` (every reset after the first, as SB3's VecEnvs call it) that
generator comes from fresh OS entropy, so the same seed gives other goals from the second episode on, and a
resumed run cannot replay them. :class:`ReproducibleTaskReset` passes a seed to every reset instead, drawn from
the env's own generator (seeded by the first reset and kept in the resume state), so the goals are a function of
the run's seed. The distribution of goals is panda-gym's; only where their randomness comes from changes. The
project's panda-gym tasks (``envs.panda_lift``) override ``reset`` themselves and are left alone.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

SEED_BOUND = 2**31 - 1
"""Seeds for the next reset are drawn from [0, SEED_BOUND)."""


def has_unseeded_task_resets(env: gym.Env) -> bool:
    """Whether ``env`` runs panda-gym's own ``RobotTaskEnv.reset`` (fresh entropy on each unseeded reset)."""
    try:
        from panda_gym.envs.core import RobotTaskEnv
    except ImportError:
        return False
    unwrapped = env.unwrapped
    return isinstance(unwrapped, RobotTaskEnv) and type(unwrapped).reset is RobotTaskEnv.reset


class ReproducibleTaskReset(gym.Wrapper):
    """Reset panda-gym envs with a seed from the env's own generator when the caller gives none.

    Also turns on Bullet's ``deterministicOverlappingPairs`` (as ``envs.panda_lift`` does): Bullet otherwise
    orders contact pairs by allocation, and PandaPush-v3 restored from a captured state stepped differently.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        env.unwrapped.sim.physics_client.setPhysicsEngineParameter(deterministicOverlappingPairs=1)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        if seed is None:
            seed = int(self.env.unwrapped.np_random.integers(SEED_BOUND))
        return self.env.reset(seed=seed, options=options)


def reproducible(env: gym.Env) -> gym.Env:
    """``env`` wrapped in :class:`ReproducibleTaskReset` if it needs it, else ``env`` itself."""
    return ReproducibleTaskReset(env) if has_unseeded_task_resets(env) else env
