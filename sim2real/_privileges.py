"""Sim-only privileges for manipulation, each scaled by a level in [0, 1]: privileged-action curricula.

Mao et al. (2025, arXiv 2502.15442) make contact-rich, long-horizon manipulation learnable with a parsimonious
reward by granting privileges only a simulator can (the gripper may penetrate the table; virtual forces move the
object) and removing them until the policy acts without any. The paper's simulator and exact privileges could not
be checked; these are designed here, on the loaded simulation of a panda-gym env (PyBullet) or of a
gymnasium-robotics Fetch env (MuJoCo; :mod:`sim2real._privileges_mujoco`), nothing installed being edited, and
:class:`PrivilegedManipulation` exposes them as a Gymnasium wrapper whose ``level`` a curriculum lowers. In
PyBullet:

- ``table_penetration``: at each reset, with probability ``level``, the robot's links stop colliding with the
  table for the episode (``setCollisionFilterPair``) and panda-gym's end-effector controller, which keeps its
  target above the table top, lets it go down to ``PENETRATION_DEPTH`` below, so the fingers can get under an
  object lying on the table. A collision is on or off, so the level scales how often the privilege is granted.
- ``object_force``: three extra action channels in [-1, 1]; before every physics substep, a force of
  ``level * max_force * channels`` newtons (world frame) is applied at the object's centre of mass
  (``applyExternalForce``). The default 10 N lifts the tasks' 0.5 kg objects (4.9 N of weight) at level 1.

In MuJoCo (Fetch), the same two with the same draws, channels and units: the table's ``contype``/``conaffinity``
move to a collision bit the robot lacks (the object keeps colliding with the table) and the grip site may go down
to ``PENETRATION_DEPTH`` below the table top; the force goes to the object body's ``data.xfrc_applied``. Details in
:mod:`sim2real._privileges_mujoco`.

At level 0 neither does anything (the extra channels remain in the action space, ignored), which is how an
evaluation env runs whatever the training level.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sim2real._privileges_mujoco import FetchPrivileges, is_fetch_manipulation

PRIVILEGES = ("table_penetration", "object_force")
"""The privileges :class:`PrivilegedManipulation` grants."""
FORCE_CHANNELS = 3
MAX_FORCE = 10.0
"""Newtons at level 1 and a full channel."""
PENETRATION_DEPTH = 0.03
"""How far below the table top the end effector may go while table penetration is granted (metres)."""
SUPPORTED_ENVS = (
    "panda-gym envs with a panda, a table and an object (PandaLiftWide-v0, PandaLiftPlate-v0, PandaPickAndPlace-v3, "
    "...) and gymnasium-robotics Fetch envs with a table0 and an object0 body (FetchLiftWide-v0, FetchLiftPlate-v0)"
)
"""The envs :class:`PrivilegedManipulation` grants privileges in, for its error message."""
LEVEL_KEY = "privilege_level"
PENETRATION_KEY = "table_penetration_granted"


class PrivilegeError(ValueError):
    """An unsupported privilege, a level outside [0, 1], or an env the wrapper cannot grant privileges in."""


def check_level(level: float) -> float:
    """``level`` as a float in [0, 1], or a :class:`PrivilegeError`."""
    if not 0.0 <= float(level) <= 1.0:
        raise PrivilegeError(f"privilege level must be in [0, 1] (1: full privileges, 0: none), got {level!r}")
    return float(level)


def check_privileges(privileges: Sequence[str], max_force: float) -> tuple[str, ...]:
    """The privileges (unique, in order) if each is supported and ``max_force`` is positive; else a
    :class:`PrivilegeError` listing what is supported."""
    unknown = sorted(set(privileges) - set(PRIVILEGES))
    if unknown:
        raise PrivilegeError(f"unknown privilege(s) {', '.join(unknown)}: supported are {', '.join(PRIVILEGES)}")
    if not max_force > 0:
        raise PrivilegeError(f"max_force must be > 0 newtons, got {max_force!r}")
    return tuple(dict.fromkeys(privileges))


class PrivilegedManipulation(gym.Wrapper):
    """Grants :data:`PRIVILEGES` scaled by ``level`` in a panda-gym or Fetch env (see the module docstring).

    Args:
        env: a panda-gym env (its ``unwrapped.sim`` holds bodies ``panda``, ``table`` and ``object``) or a
            gymnasium-robotics Fetch env (MuJoCo) with bodies ``table0`` and ``object0``.
        privileges: which of :data:`PRIVILEGES` to grant.
        level: the starting level in [0, 1].
        max_force: newtons of the object force at level 1 and a full channel.
    """

    def __init__(self, env: gym.Env, privileges: Sequence[str] = PRIVILEGES, *, level: float = 1.0,
                 max_force: float = MAX_FORCE) -> None:
        super().__init__(env)
        self.privileges = check_privileges(privileges, max_force)
        sim = getattr(env.unwrapped, "sim", None)
        bodies = getattr(sim, "_bodies_idx", {})
        self.mujoco: FetchPrivileges | None = None
        """The MuJoCo side (Fetch), or None in PyBullet (panda-gym)."""
        is_panda = sim is not None and {"panda", "table", "object"} <= set(bodies)
        if not is_panda and is_fetch_manipulation(env.unwrapped):
            self.mujoco = FetchPrivileges(env.unwrapped, PENETRATION_DEPTH)
        elif not is_panda:
            name = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
            raise PrivilegeError(f"{name} is not a manipulation env these privileges know: supported are "
                                 f"{SUPPORTED_ENVS}")
        self.level = check_level(level)
        self.max_force = float(max_force)
        if self.mujoco is None:
            self.sim = sim
            self.client = sim.physics_client
            self.robot_id, self.table_id, self.object_id = bodies["panda"], bodies["table"], bodies["object"]
        self.penetration_granted = False
        self._force = np.zeros(FORCE_CHANNELS)
        self._rng = np.random.default_rng()
        if "object_force" in self.privileges:
            base = env.action_space
            self.action_space = spaces.Box(
                low=np.concatenate([base.low, -np.ones(FORCE_CHANNELS)]).astype(base.dtype),
                high=np.concatenate([base.high, np.ones(FORCE_CHANNELS)]).astype(base.dtype), dtype=base.dtype,
            )
            if self.mujoco is None:
                sim.step = self._step_with_force  # panda-gym's sim.step is n_substeps of stepSimulation
        if "table_penetration" in self.privileges:
            if self.mujoco is not None:
                self.mujoco.install_floor()
            else:
                self.robot = env.unwrapped.robot
                self.robot.ee_displacement_to_target_arm_angles = self._target_arm_angles

    @property
    def object_force(self) -> np.ndarray:
        """The force (newtons, world frame) applied to the object during the last step; zeros at level 0."""
        return self._force.copy()

    def set_privilege_level(self, level: float) -> None:
        """Set the level (takes effect now for the force, at the next reset for table penetration)."""
        self.level = check_level(level)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        observation, info = self.env.reset(seed=seed, options=options)
        self._force[:] = 0.0
        self.penetration_granted = "table_penetration" in self.privileges and self._rng.random() < self.level
        self._set_table_collisions(not self.penetration_granted)
        return observation, {**info, LEVEL_KEY: self.level, PENETRATION_KEY: self.penetration_granted}

    def step(self, action: np.ndarray) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        action = np.asarray(action, dtype=np.float64)
        if "object_force" in self.privileges:
            channels = np.clip(action[-FORCE_CHANNELS:], -1.0, 1.0)
            self._force = self.level * self.max_force * channels
            action = action[:-FORCE_CHANNELS]
            if self.mujoco is not None:
                self.mujoco.set_force(self._force)
        observation, reward, terminated, truncated, info = self.env.step(action.astype(np.float32))
        return observation, reward, terminated, truncated, {**info, LEVEL_KEY: self.level,
                                                            PENETRATION_KEY: self.penetration_granted}

    def get_resume_state(self) -> dict[str, Any]:
        """The episode's privileges (checkpointed with the env by the runner)."""
        return {"level": self.level, "granted": self.penetration_granted, "force": self._force.tolist(),
                "rng": self._rng.bit_generator.state}

    def set_resume_state(self, state: dict[str, Any]) -> None:
        self.level = check_level(state["level"])
        self.penetration_granted = bool(state["granted"])
        self._force = np.asarray(state["force"], dtype=np.float64)
        self._rng.bit_generator.state = state["rng"]
        if "table_penetration" in self.privileges:  # collision filters are not part of the simulators' states
            self._set_table_collisions(not self.penetration_granted)

    def _set_table_collisions(self, enabled: bool) -> None:
        if self.mujoco is not None:
            self.mujoco.grant_penetration(not enabled)
            return
        for link in range(-1, self.client.getNumJoints(self.robot_id)):
            self.client.setCollisionFilterPair(self.robot_id, self.table_id, link, -1, int(enabled))

    def _target_arm_angles(self, ee_displacement: np.ndarray) -> np.ndarray:
        """panda-gym's ``Panda.ee_displacement_to_target_arm_angles`` (5 cm per unit action, fixed gripper
        orientation) with the height floor at ``-PENETRATION_DEPTH`` instead of 0 while penetration is granted."""
        robot = self.robot
        target = robot.get_ee_position() + np.asarray(ee_displacement[:3]) * 0.05
        target[2] = max(-PENETRATION_DEPTH if self.penetration_granted else 0.0, target[2])
        angles = robot.inverse_kinematics(link=robot.ee_link, position=target,
                                          orientation=np.array([1.0, 0.0, 0.0, 0.0]))
        return angles[:7]

    def _step_with_force(self) -> None:
        for _ in range(self.sim.n_substeps):
            if self._force.any():
                position, _ = self.client.getBasePositionAndOrientation(self.object_id)
                self.client.applyExternalForce(self.object_id, -1, self._force.tolist(), position,
                                               self.client.WORLD_FRAME)
            self.client.stepSimulation()
