"""Gymnasium wrappers that give an env a dynamics gap: a fixed variant, or one drawn at every reset."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

from sim2real._engines import check_supported, dynamics_backend
from sim2real._spec import (
    PARAMETERS,
    SimSpecError,
    canonical_name,
    format_sim_spec,
    parse_sim_spec,
    validate_parameters,
)

_NOISE_SALT = 0x51_4D_2A
"""Mixed into the reset seed so the action noise's stream differs from the env's own."""


class _DynamicsWrapper(gym.Wrapper):
    """Applies ``self.parameters`` to the wrapped simulator at construction and around every reset, and adds
    ``action_noise`` to the actions. Subclasses choose the parameters."""

    def __init__(self, env: gym.Env, names: set[str]) -> None:
        super().__init__(env)
        self.backend = dynamics_backend(env)
        check_supported(env, self.backend, names)
        self.parameters: dict[str, float] = {}
        self._noise_rng = np.random.default_rng()
        if isinstance(env.action_space, gym.spaces.Box):
            self._half_range = (env.action_space.high - env.action_space.low) / 2.0

    @property
    def engine(self) -> str:
        """``"mujoco"``, ``"pybullet"``, ``"classic"`` or ``"none"`` (action noise only)."""
        return self.backend.engine

    def _apply(self) -> None:
        self.backend.apply(self.parameters)

    def _next_parameters(self) -> None:
        """Hook: choose the parameters of the coming episode (default: keep them)."""

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        if seed is not None:
            self._noise_rng = np.random.default_rng([seed, _NOISE_SALT])
        self._seed_hook(seed)
        self._next_parameters()
        if not self.backend.applies_after_reset:
            self._apply()
        observation, info = self.env.reset(seed=seed, options=options)
        if self.backend.applies_after_reset:
            self._apply()
        return observation, {**info, "sim_parameters": dict(self.parameters)}

    def _seed_hook(self, seed: int | None) -> None:
        """Hook: a subclass's own generators from the reset seed (default: none)."""

    def get_resume_state(self) -> dict[str, Any]:
        """What changes during training and decides what this wrapper does next: the action noise's generator.

        For a checkpoint (:mod:`rl.resume_state` calls it on every wrapper that has it); the parameters are
        the wrapper's own settings and are not part of it (a resumed run keeps the variant it was made with).
        """
        return {"noise_rng": copy.deepcopy(self._noise_rng.bit_generator.state)}

    def set_resume_state(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`get_resume_state`'s capture: the same action noise follows."""
        self._noise_rng.bit_generator.state = copy.deepcopy(state["noise_rng"])

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        std = self.parameters.get("action_noise", 0.0)
        if std > 0:
            space = self.env.action_space
            noise = self._noise_rng.normal(0.0, 1.0, size=space.shape) * std * self._half_range
            action = np.clip(np.asarray(action) + noise, space.low, space.high).astype(space.dtype)
        return self.env.step(action)


class SimVariant(_DynamicsWrapper):
    """The env with a fixed dynamics gap: ``SimVariant(gym.make("HalfCheetah-v4"), "gravity=2.0")``.

    Gravity, friction, mass (and inertia) and joint damping are scaled by the given factors in the env's
    own simulator, at construction (MuJoCo) and again at every reset (PyBullet resets its gravity); see
    :mod:`sim2real._engines` for what each engine changes. ``action_noise=std`` adds Gaussian noise of that
    std (in half action ranges) to every action before the simulator sees it, clipped to the action
    bounds: the agent's own action is what it records (the authors' ``joint_noise_std``). The noise is
    seeded by ``reset(seed=...)``.

    Args:
        env: a MuJoCo, PyBullet or classic-control env (others accept only ``action_noise``).
        spec: ``"name=value,..."`` (:func:`~sim2real.parse_sim_spec`) or a mapping of parameter values.

    Raises:
        SimSpecError: an invalid spec (the message lists what can be changed), or a parameter this env's
            engine cannot change.
    """

    def __init__(self, env: gym.Env, spec: str | Mapping[str, float]) -> None:
        values = parse_sim_spec(spec) if isinstance(spec, str) else validate_parameters(spec, "Invalid sim variant")
        super().__init__(env, set(values))
        self.parameters = values
        if not self.backend.applies_after_reset:
            self._apply()

    @property
    def spec_text(self) -> str:
        """The variant as a spec, e.g. ``"gravity=2"``."""
        return format_sim_spec(self.parameters)


class DomainRandomization(_DynamicsWrapper):
    """Draws new dynamics parameters, uniformly in ``ranges``, at every reset.

    ``DomainRandomization(env, ranges={"gravity": (0.5, 2.0), "friction": (0.5, 1.5)}, seed=0)``. A range may
    also be a single number (a fixed value). The draws come from their own generator, seeded by ``seed``, or,
    when ``seed`` is None, by the first ``reset(seed=...)`` (so the copies of a vectorised env, seeded
    ``seed + i``, draw different parameters). The current values are ``parameters`` and the reset info's
    ``"sim_parameters"``.

    Raises:
        SimSpecError: an unknown parameter (the message lists them), a bound out of range, ``low > high``,
            or a parameter this env's engine cannot change.
    """

    def __init__(
        self, env: gym.Env, ranges: Mapping[str, tuple[float, float] | float], seed: int | None = None
    ) -> None:
        context = "Invalid domain randomisation ranges"
        if not ranges:
            raise SimSpecError(f"{context}: no parameter to randomise.")
        self.ranges: dict[str, tuple[float, float]] = {}
        for name, bounds in ranges.items():
            key = canonical_name(str(name), context)
            low, high = (bounds, bounds) if isinstance(bounds, (int, float)) else tuple(bounds)
            low, high = PARAMETERS[key].check(low, context), PARAMETERS[key].check(high, context)
            if low > high:
                raise SimSpecError(f"{context}: the range of {key} is empty ({low} > {high}).")
            self.ranges[key] = (low, high)
        super().__init__(env, set(self.ranges))
        self._sampler_seeded = seed is not None
        self._sampler = np.random.default_rng(seed)
        self._next_parameters()
        if not self.backend.applies_after_reset:
            self._apply()

    def _seed_hook(self, seed: int | None) -> None:
        if seed is not None and not self._sampler_seeded:
            self._sampler = np.random.default_rng(seed)
            self._sampler_seeded = True

    def _next_parameters(self) -> None:
        self.parameters = {name: float(self._sampler.uniform(low, high)) for name, (low, high) in self.ranges.items()}

    def get_resume_state(self) -> dict[str, Any]:
        """The action noise's generator, the draws' generator (and whether a reset seed has seeded it yet) and
        the parameters of the episode in progress: all that decides this episode's dynamics and later draws."""
        return {**super().get_resume_state(), "sampler": copy.deepcopy(self._sampler.bit_generator.state),
                "sampler_seeded": self._sampler_seeded, "parameters": dict(self.parameters)}

    def set_resume_state(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`get_resume_state`'s capture: the episode in progress gets its parameters back (in
        the simulator too) and the next resets draw what the captured wrapper would have drawn."""
        super().set_resume_state(state)
        self._sampler.bit_generator.state = copy.deepcopy(state["sampler"])
        self._sampler_seeded = bool(state["sampler_seeded"])
        self.parameters = {name: float(value) for name, value in state["parameters"].items()}
        self._apply()


def make_sim_env(env_id: str, spec: str | Mapping[str, float], **env_kwargs: Any) -> SimVariant:
    """``SimVariant(rl.envs.make_env(env_id, **env_kwargs), spec)``: a simulator variant of a registered env."""
    from rl.envs import make_env

    return SimVariant(make_env(env_id, **env_kwargs), spec)
