"""Changing a running simulator's dynamics parameters in place, per physics engine.

Every backend remembers the simulator's own (nominal) values the first time it touches them and always
writes ``nominal * factor``, so applying the same factors twice, or after an env reset, changes nothing
more, and factors of 1 restore the original simulator. Only the env instance the backend holds is
changed: MuJoCo models and PyBullet physics clients belong to one env each, so a fresh env of the same id
keeps the installed model (no XML file is ever written).

- MuJoCo (Gymnasium's ``MujocoEnv``): ``model.opt.gravity``; ``model.geom_friction`` (all three columns:
  sliding, torsional, rolling; MuJoCo takes the larger of the two geoms' coefficients, so the contact
  friction scales by the factor) and ``model.pair_friction`` of explicit contact pairs; ``model.body_mass``
  and ``model.body_inertia`` (then ``mj_setConst`` recomputes the derived constants on a scratch
  ``MjData``, as recompiling the scaled model would); ``model.dof_damping``.
- PyBullet (``pybullet_envs_gymnasium``): ``setGravity``; ``changeDynamics`` of every link of the dynamic
  bodies (the robot; the static ground is left alone): lateral, spinning and rolling friction (Bullet
  multiplies the two bodies' coefficients, so robot-ground contacts scale by the factor), and mass with
  the local inertia diagonal of links that have mass. The env's reset sets gravity again and keeps link
  dynamics, so the backend re-applies after every reset. Joint damping is not offered: the robots load with
  zero joint damping (``getJointInfo``), so a factor on it would change nothing.
- Classic control envs with a gravity attribute (Pendulum's ``g``, CartPole's ``gravity``): gravity only.

Which simulator drives an env is :func:`rl.env_state.detect_engine`'s answer (one detection for state capture and for
dynamics). gymnasium-robotics and panda-gym envs have no backend here: they get the classic one if they carry a
gravity attribute, else none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from rl.env_state import MUJOCO, PYBULLET, detect_engine, env_name
from sim2real._spec import PARAMETERS, SimSpecError

ACTION_PARAMETERS = frozenset({"action_noise"})
"""Parameters the wrappers apply themselves, whatever the engine (Box action spaces)."""


class DynamicsBackend:
    """Writes dynamics factors into one env's simulator. Subclasses set ``engine`` and ``supported``."""

    engine: str = "none"
    supported: frozenset[str] = frozenset()
    applies_after_reset: bool = False
    """True when the simulator exists (or is reset to its defaults) only once the env is reset."""

    def __init__(self, unwrapped: gym.Env) -> None:
        self.unwrapped = unwrapped

    def apply(self, factors: Mapping[str, float]) -> None:
        """Set every supported parameter to ``nominal * factors.get(name, 1)``."""


class MujocoDynamics(DynamicsBackend):
    engine = "mujoco"
    supported = frozenset({"gravity", "friction", "mass", "damping"})

    def __init__(self, unwrapped: gym.Env) -> None:
        super().__init__(unwrapped)
        model = unwrapped.model
        self.nominal = {
            "gravity": model.opt.gravity.copy(),
            "geom_friction": model.geom_friction.copy(),
            "pair_friction": model.pair_friction.copy(),
            "body_mass": model.body_mass.copy(),
            "body_inertia": model.body_inertia.copy(),
            "dof_damping": model.dof_damping.copy(),
        }
        self._mass_factor = 1.0

    def apply(self, factors: Mapping[str, float]) -> None:
        import mujoco

        model, nominal = self.unwrapped.model, self.nominal
        model.opt.gravity[:] = nominal["gravity"] * factors.get("gravity", 1.0)
        friction = factors.get("friction", 1.0)
        model.geom_friction[:] = nominal["geom_friction"] * friction
        model.pair_friction[:] = nominal["pair_friction"] * friction
        model.dof_damping[:] = nominal["dof_damping"] * factors.get("damping", 1.0)
        mass = factors.get("mass", 1.0)
        if mass != self._mass_factor:
            model.body_mass[:] = nominal["body_mass"] * mass
            model.body_inertia[:] = nominal["body_inertia"] * mass
            mujoco.mj_setConst(model, mujoco.MjData(model))  # subtree masses, invweights, mean inertia
            self._mass_factor = mass


class PybulletDynamics(DynamicsBackend):
    engine = "pybullet"
    supported = frozenset({"gravity", "friction", "mass"})
    applies_after_reset = True

    def __init__(self, unwrapped: gym.Env) -> None:
        super().__init__(unwrapped)
        self._client: int | None = None
        self.nominal_gravity = np.zeros(3)
        self.nominal_links: list[tuple[int, int, float, tuple[float, ...], float, float, float]] = []
        """(body, link, mass, local inertia diagonal, lateral, spinning, rolling friction) of dynamic bodies."""

    def _capture(self) -> None:
        p = self.unwrapped._p
        engine = p.getPhysicsEngineParameters()
        self.nominal_gravity = np.array(
            [engine["gravityAccelerationX"], engine["gravityAccelerationY"], engine["gravityAccelerationZ"]]
        )
        self.nominal_links = []
        for index in range(p.getNumBodies()):
            body = p.getBodyUniqueId(index)
            links = [(link, p.getDynamicsInfo(body, link)) for link in range(-1, p.getNumJoints(body))]
            if not any(info[0] > 0 for _, info in links):
                continue  # static (the ground): its friction is the other factor of every contact
            for link, info in links:
                self.nominal_links.append((body, link, info[0], tuple(info[2]), info[1], info[7], info[6]))
        self._client = self.unwrapped.physicsClientId

    def apply(self, factors: Mapping[str, float]) -> None:
        if getattr(self.unwrapped, "physicsClientId", -1) < 0:
            return  # not reset yet: no physics client; the wrapper applies again after the reset
        if self._client != self.unwrapped.physicsClientId:
            self._capture()
        p = self.unwrapped._p
        p.setGravity(*(self.nominal_gravity * factors.get("gravity", 1.0)))
        friction, mass = factors.get("friction", 1.0), factors.get("mass", 1.0)
        for body, link, link_mass, inertia, lateral, spinning, rolling in self.nominal_links:
            changes: dict[str, Any] = dict(
                lateralFriction=lateral * friction, spinningFriction=spinning * friction,
                rollingFriction=rolling * friction,
            )
            if link_mass > 0:
                changes.update(mass=link_mass * mass, localInertiaDiagonal=[value * mass for value in inertia])
            p.changeDynamics(body, link, **changes)


class ClassicDynamics(DynamicsBackend):
    engine = "classic"
    supported = frozenset({"gravity"})

    def __init__(self, unwrapped: gym.Env, attribute: str) -> None:
        super().__init__(unwrapped)
        self.attribute = attribute
        self.nominal_gravity = float(getattr(unwrapped, attribute))

    def apply(self, factors: Mapping[str, float]) -> None:
        setattr(self.unwrapped, self.attribute, self.nominal_gravity * factors.get("gravity", 1.0))


def dynamics_backend(env: gym.Env) -> DynamicsBackend:
    """The backend that can change ``env``'s dynamics (one that changes nothing for other envs)."""
    unwrapped = env.unwrapped
    engine = detect_engine(env)
    if engine == MUJOCO:
        return MujocoDynamics(unwrapped)
    if engine == PYBULLET:
        return PybulletDynamics(unwrapped)
    for attribute in ("g", "gravity"):
        if isinstance(getattr(unwrapped, attribute, None), (int, float)):
            return ClassicDynamics(unwrapped, attribute)
    return DynamicsBackend(unwrapped)


def check_supported(env: gym.Env, backend: DynamicsBackend, names: set[str] | frozenset[str]) -> None:
    """Refuse parameters that ``env``'s engine (or action space) cannot change, listing those it can."""
    available = set(backend.supported)
    if isinstance(env.action_space, gym.spaces.Box):
        available |= ACTION_PARAMETERS
    refused = sorted(set(names) - available)
    if refused:
        can = ", ".join(name for name in PARAMETERS if name in available) or "nothing"
        raise SimSpecError(
            f"{env_name(env)} ({backend.engine} engine) cannot change {', '.join(refused)}; it can change: {can}."
        )
    if "action_noise" in names:
        space = env.action_space
        if not np.all(np.isfinite(space.low)) or not np.all(np.isfinite(space.high)):
            raise SimSpecError(f"action_noise needs a bounded action space; {env_name(env)} has {space}.")
