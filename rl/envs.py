"""Env factory: one place that turns an env id into a (vectorised, normalised) environment.

Gymnasium's registry is the source of truth. Ids that live in optional packages (PyBullet's
``pybullet_envs_gymnasium``, ``panda_gym``) and the project's own ``envs`` package are registered on
demand, the first time an id that needs them is asked for, so importing this module stays cheap.
"""

from __future__ import annotations

import difflib
import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import gymnasium as gym
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecNormalize

from rl.panda_reset import reproducible

MO_GYMNASIUM_PLAIN_IDS = frozenset({
    "deep-sea-treasure", "deep-sea-treasure-concave", "deep-sea-treasure-mirrored", "minecart",
    "minecart-deterministic", "minecart-rgb", "resource-gathering", "fishwood", "breakable-bottles",
    "fruit-tree", "four-room", "water-reservoir",
})
"""mo-gymnasium ids without the ``mo-`` prefix (its discrete tasks)."""


@dataclass(frozen=True)
class EnvProvider:
    """A package that registers Gymnasium ids when imported."""

    module: str
    """Import name of the package that registers the ids."""
    install_hint: str
    """What to install when the package is missing."""
    matches: Callable[[str], bool]
    """Whether an env id (probably) belongs to this package."""


ENV_PROVIDERS: tuple[EnvProvider, ...] = (
    EnvProvider("envs", "pip install -e .", lambda env_id: True),
    EnvProvider(
        "pybullet_envs_gymnasium",
        "pip install pybullet pybullet-envs-gymnasium",
        lambda env_id: "Bullet" in env_id,
    ),
    EnvProvider("panda_gym", "pip install panda-gym", lambda env_id: env_id.startswith("Panda")),
    EnvProvider(
        "mo_gymnasium",
        "pip install mo-gymnasium",
        lambda env_id: env_id.startswith("mo-") or env_id.split("-v")[0] in MO_GYMNASIUM_PLAIN_IDS,
    ),
)


class UnknownEnvError(ValueError):
    """Raised for an env id that no installed package registers."""


def _import_provider(provider: EnvProvider) -> bool:
    """Import a provider package; return False when it is not installed."""
    try:
        importlib.import_module(provider.module)
    except ImportError:
        return False
    return True


def ensure_registered(env_id: str) -> str:
    """Make sure ``env_id`` is in Gymnasium's registry, importing the package that provides it.

    Raises:
        UnknownEnvError: when no installed package registers the id; the message lists the closest
            registered ids and the packages to install for the families that are missing.
    """
    if env_id in gym.registry:
        return env_id
    for provider in ENV_PROVIDERS:
        if provider.matches(env_id):
            _import_provider(provider)
            if env_id in gym.registry:
                return env_id
    missing = [p for p in ENV_PROVIDERS if not _import_provider(p)]
    if env_id in gym.registry:
        return env_id
    close = difflib.get_close_matches(env_id, list(gym.registry.keys()), n=5, cutoff=0.5)
    message = f"Unknown environment id {env_id!r}."
    if close:
        message += f" Closest registered ids: {', '.join(close)}."
    for provider in missing:
        if provider.matches(env_id) or not close:
            message += f" For {provider.module} environments run: {provider.install_hint}."
    raise UnknownEnvError(message)


def make_env(env_id: str, *, render_mode: str | None = None, **env_kwargs: Any) -> gym.Env:
    """Create one (unwrapped by SB3) Gymnasium env, registering its package first."""
    ensure_registered(env_id)
    return reproducible(gym.make(env_id, render_mode=render_mode, **env_kwargs))


def _make_wrapped(env_id: str, wrapper: Callable[[gym.Env], gym.Env], **env_kwargs: Any) -> gym.Env:
    ensure_registered(env_id)  # a SubprocVecEnv worker starts with Gymnasium's own registry only
    return wrapper(reproducible(gym.make(env_id, **env_kwargs)))


def _make_registered(env_id: str, **env_kwargs: Any) -> gym.Env:
    """``gym.make`` in a SubprocVecEnv worker (forkserver/spawn: a fresh registry), after registering the id's
    package; ``render_mode="rgb_array"`` by default, as SB3's ``make_vec_env`` does for an id."""
    ensure_registered(env_id)
    try:
        return reproducible(gym.make(env_id, **{"render_mode": "rgb_array", **env_kwargs}))
    except TypeError:
        return reproducible(gym.make(env_id, **env_kwargs))


def _env_factory(env_id: str, wrapper: Callable[[gym.Env], gym.Env] | None) -> Callable[..., gym.Env]:
    """What ``make_vec_env`` makes each copy from: a picklable factory that registers the id's package first (a
    SubprocVecEnv worker starts with Gymnasium's own registry), makes the env as ``make_vec_env`` would, and
    makes panda-gym's resets reproducible (:mod:`rl.panda_reset`); or the wrapped env."""
    if wrapper is not None:
        return partial(_make_wrapped, env_id, wrapper)
    return partial(_make_registered, env_id)


def make_training_env(
    env_id: str,
    *,
    n_envs: int = 1,
    seed: int | None = None,
    monitor_dir: str | None = None,
    normalize: bool | dict[str, Any] = False,
    vec_env_class: str = "dummy",
    env_kwargs: dict[str, Any] | None = None,
    training: bool = True,
    vec_normalize_path: str | None = None,
    append_monitor: bool = False,
    wrapper: Callable[[gym.Env], gym.Env] | None = None,
) -> VecEnv:
    """Create the vectorised env SB3 trains on: Monitor per sub-env, optional VecNormalize.

    Args:
        env_id: a Gymnasium, PyBullet, panda-gym or project env id.
        n_envs: number of parallel copies.
        seed: base seed; copy ``i`` gets ``seed + i``.
        monitor_dir: where Monitor writes ``<i>.monitor.csv`` (None: no files).
        normalize: False, True, or VecNormalize keyword arguments.
        vec_env_class: "dummy" (same process) or "subproc" (one process per copy).
        env_kwargs: keyword arguments for ``gym.make``.
        training: whether VecNormalize updates its statistics (False for evaluation envs).
        vec_normalize_path: load VecNormalize statistics from this file instead of starting fresh.
        append_monitor: append to existing monitor CSVs (a resumed run) instead of overwriting them.
        wrapper: applied to each env right after ``gym.make``, inside Monitor (so Monitor records the
            episodes the wrapper shapes, e.g. SnapshotRL's truncated restarts). Must be picklable for
            "subproc".
    """
    ensure_registered(env_id)
    if vec_env_class not in ("dummy", "subproc"):
        raise ValueError(f"vec_env_class must be 'dummy' or 'subproc', got {vec_env_class!r}")
    if monitor_dir is not None:
        os.makedirs(monitor_dir, exist_ok=True)
    venv = make_vec_env(
        _env_factory(env_id, wrapper),
        n_envs=n_envs,
        seed=seed,
        monitor_dir=monitor_dir,
        env_kwargs=env_kwargs,
        vec_env_cls=SubprocVecEnv if vec_env_class == "subproc" else DummyVecEnv,
        monitor_kwargs={"override_existing": not append_monitor},
    )
    if vec_normalize_path is not None:
        venv = VecNormalize.load(vec_normalize_path, venv)
        venv.training = training
        if not training:
            venv.norm_reward = False
    elif normalize:
        kwargs = dict(normalize) if isinstance(normalize, dict) else {}
        if not training:
            kwargs["norm_reward"] = False
        venv = VecNormalize(venv, training=training, **kwargs)
    return venv
