"""The MuJoCo side of :class:`sim2real.PrivilegedManipulation`: its two privileges on gymnasium-robotics' Fetch arm
(``envs.fetch_lift``'s tasks, or any Fetch env with a ``table0`` and an ``object0`` body), set at run time on the
loaded ``MjModel`` / ``MjData`` (no installed file is edited), with the PyBullet side's semantics:

- ``table_penetration`` (granted for an episode with probability ``level``, drawn by the wrapper): the table's
  geoms leave MuJoCo's default collision bit for a free one (:func:`free_collision_bit`), which the object's geoms
  take on as well. MuJoCo makes a contact between two geoms when ``contype`` of one shares a bit with
  ``conaffinity`` of the other, so the table still holds the object up but no longer stops the robot (nor
  anything else: the floor, the plate task's wall and the table are all fixed, so they never collide with
  each other anyway). The table's and the object's original ``contype``/``conaffinity`` are put back when the
  privilege is withdrawn.

  Height floor: panda-gym's controller keeps its end-effector target above the table top, and the PyBullet side
  lowers that floor to ``PENETRATION_DEPTH`` below it while the privilege is granted. Fetch's controller has no
  floor (its mocap target is the gripper's pose plus 5 cm per unit action, anywhere; the table alone stops the
  gripper), so nothing is lowered; instead, while the privilege is granted, the mocap target is kept where the
  grip site (Fetch's end effector, ``robot0:grip``) is at most ``PENETRATION_DEPTH`` below the table top. That
  bounds the privilege as in PyBullet (the fingers get under an object lying on the table; the arm does not
  sink through the table). At level 0 Fetch's controller is untouched.
- ``object_force``: ``data.xfrc_applied`` of the object's body, a world-frame force at its centre of mass, set to
  the wrapper's ``level * max_force * channels`` before every step. MuJoCo keeps ``xfrc_applied`` across substeps
  (Bullet clears its external forces after each one, so the PyBullet side re-applies the force every substep),
  and ``mj_resetData`` clears it at reset. It is part of MuJoCo's integration state, so a captured state
  (:mod:`rl.env_state`) carries the force of the step in progress.
"""

from __future__ import annotations

from typing import Any

import numpy as np

TABLE_BODY, OBJECT_BODY = "table0", "object0"
"""The bodies a Fetch env must have for the privileges."""
MOCAP_BODY, GRIPPER_BODY, GRIP_SITE = "robot0:mocap", "robot0:gripper_link", "robot0:grip"
"""Fetch's controller: the mocap body welded to the gripper, and the end-effector site."""


def _body_id(model: Any, name: str) -> int:
    import mujoco

    return int(mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name))


def is_fetch_manipulation(unwrapped: Any) -> bool:
    """Whether ``unwrapped`` is a gymnasium-robotics Fetch env (MuJoCo bindings) with a table and an object."""
    if not hasattr(unwrapped, "model") or not hasattr(unwrapped, "data"):
        return False  # no MuJoCo simulation: not worth importing gymnasium-robotics for
    try:
        from gymnasium_robotics.envs.fetch.fetch_env import MujocoFetchEnv
    except ImportError:  # gymnasium-robotics not installed
        return False
    if not isinstance(unwrapped, MujocoFetchEnv):
        return False
    return all(_body_id(unwrapped.model, name) >= 0 for name in (TABLE_BODY, OBJECT_BODY, MOCAP_BODY, GRIPPER_BODY))


def free_collision_bit(model: Any) -> int:
    """The lowest ``contype``/``conaffinity`` bit that no geom of ``model`` uses."""
    used = int(np.bitwise_or.reduce(np.concatenate([model.geom_contype, model.geom_conaffinity]).astype(np.int64)))
    bit = 1
    while used & bit:
        bit <<= 1
    return bit


def _body_geoms(model: Any, body: int) -> np.ndarray:
    start = int(model.body_geomadr[body])
    return np.arange(start, start + int(model.body_geomnum[body]))


class FetchPrivileges:
    """The privileges' physics in one Fetch env (see the module docstring); the wrapper decides when.

    Args:
        env: the unwrapped Fetch env.
        penetration_depth: how far below the table top the grip site may go while penetration is granted.
    """

    def __init__(self, env: Any, penetration_depth: float) -> None:
        model = env.model
        self.env, self.depth = env, float(penetration_depth)
        self.object_body = _body_id(model, OBJECT_BODY)
        self.gripper_body = _body_id(model, GRIPPER_BODY)
        self.mocap = int(model.body_mocapid[_body_id(model, MOCAP_BODY)])
        self.grip_site = int(model.site(GRIP_SITE).id)
        self.table_geoms = _body_geoms(model, _body_id(model, TABLE_BODY))
        self.object_geoms = _body_geoms(model, self.object_body)
        self.bit = free_collision_bit(model)
        self._loaded = [(geoms, model.geom_contype[geoms].copy(), model.geom_conaffinity[geoms].copy())
                        for geoms in (self.table_geoms, self.object_geoms)]
        """The table's and the object's collision bits as loaded."""
        self.floor_on = False
        self._set_action = env._set_action

    def table_top(self) -> float:
        """z of the table's top (its geoms are boxes)."""
        data, model = self.env.data, self.env.model
        return float(max(data.geom_xpos[g][2] + model.geom_size[g][2] for g in self.table_geoms))

    def grant_penetration(self, granted: bool) -> None:
        """Table collisions with the robot off (``granted``) or as loaded, and the grip site's floor with them."""
        model = self.env.model
        for geoms, contype, conaffinity in self._loaded:
            model.geom_contype[geoms] = contype
            model.geom_conaffinity[geoms] = conaffinity
        if granted:
            model.geom_contype[self.table_geoms] = self.bit
            model.geom_conaffinity[self.table_geoms] = self.bit
            model.geom_contype[self.object_geoms] |= self.bit
            model.geom_conaffinity[self.object_geoms] |= self.bit
        self.floor_on = bool(granted)

    def install_floor(self) -> None:
        """Route the env's ``_set_action`` through :meth:`_set_action_with_floor`."""
        self.env._set_action = self._set_action_with_floor

    def _set_action_with_floor(self, action: np.ndarray) -> None:
        """Fetch's ``_set_action`` (mocap = gripper pose + 5 cm per unit action), then, while penetration is granted,
        the mocap raised to where the grip site is ``depth`` below the table top if it would go lower."""
        self._set_action(action)
        if self.floor_on:
            data = self.env.data
            grip_below_mocap = data.xpos[self.gripper_body][2] - data.site_xpos[self.grip_site][2]
            floor = self.table_top() - self.depth + grip_below_mocap
            data.mocap_pos[self.mocap, 2] = max(float(data.mocap_pos[self.mocap, 2]), floor)

    def set_force(self, force: np.ndarray) -> None:
        """The object's applied force (world frame, at its centre of mass; no torque) until changed or reset."""
        self.env.data.xfrc_applied[self.object_body] = np.concatenate([force, np.zeros(3)])
