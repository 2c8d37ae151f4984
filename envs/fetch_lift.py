"""Lift an object that cannot be grasped where it lies: the tasks of privileged-action curricula, on
gymnasium-robotics' Fetch arm (MuJoCo).

Mao et al. (2025, arXiv 2502.15442) train contact-rich, long-horizon manipulation with a parsimonious reward:
push-and-grasp (the object is too wide to grasp where it lies) and pivot-grasp (it is too flat). These are the
MuJoCo twins of :mod:`envs.panda_lift` (same goal, reward, episode length and object mass; sizes scaled to Fetch's
gripper), on Fetch's robot, table, controller (a mocap body welded to the gripper, moved 5 cm per unit action) and
camera. The scene is built at run time from the installed ``fetch/pick_and_place.xml`` with :class:`mujoco.MjSpec`
(object resized, wall added); no installed file is written.

- ``FetchLiftWide-v0``: a 15 x 15 x 5 cm box lying flat. Fetch's fingers open to :data:`GRIPPER_OPENING`
  (10.18 cm between their inner faces at the joint limit: two 5 cm slides, measured on the compiled model in
  tests/test_fetch_lift.py), so both horizontal sides are wider than the opening, 1.47 times (the Panda task's
  12 cm box is 1.5 times its 8 cm opening). It must be pushed over the table's edge (the table top spans y in
  [0.40, 1.10], 35 cm on each side of its centre as panda-gym's table) and grasped by the overhang.
- ``FetchLiftPlate-v0``: a 13 x 13 x 1 cm plate, 1.28 times the opening (the Panda plate is 1.25 times), so it
  fits between the fingers in no horizontal direction, and 1 cm is too flat for the fingers (2.7 cm wide, 7.7 cm
  long) to get under from above. It must be pushed against the wall (a fixed 50 x 2 x 10 cm block along the
  whole depth of the table, its near face 19 cm from the table's centre line, as in the Panda task) and pivoted
  up, then grasped across its thickness.

Both objects weigh 0.5 kg (Fetch's own block weighs 2 kg): the tasks' mass, so that
:class:`sim2real.PrivilegedManipulation`'s default 10 N force lifts them in both simulators. The object starts
flat, uniform in a 10 x 10 cm square around the table's centre (1.3, 0.75), as in the Panda task.

One reward for both, and the same as :mod:`envs.panda_lift` (goal-conditioned, so that HER applies): the goal is a
height, the achieved goal the object's lowest point above the table top (z = 0.4), success when it is at least the
goal (default 0.1 m), reward 0 on success and -1 otherwise (``"sparse"``), or minus the height still missing
(``"dense"``). Episodes last 100 steps (Fetch's tasks use 50; these need a push before the grasp); Fetch steps at
25 Hz (20 substeps of 2 ms), as panda-gym.

Two changes to Fetch's own stepping, both for reproducibility:

- After the substeps of a step, ``mj_forward`` recomputes the derived quantities (body and site positions) from
  the state. Fetch otherwise leaves them one substep stale, and the next action places the mocap from the stale
  gripper pose, so a simulation restored from its state (``mj_setState`` + ``mj_forward``, :mod:`rl.env_state`)
  or rendered in between would step differently. Observations are now of the current state, not 2 ms old.
- gymnasium-robotics 1.4.2's joint accessors (``mujoco_utils.get_joint_qpos`` and co.) test
  ``model.jnt_type[i] in (mjJNT_HINGE, mjJNT_SLIDE)``, which is False for every joint with MuJoCo >= 3.12
  (pybind11 3's enum equality is asymmetric with NumPy integers), so Fetch's own envs fail to construct with the
  MuJoCo installed here. These envs use accessors that read joints through MuJoCo's named views instead.

Rendering: ``rgb_array`` frames (480 x 360) through MuJoCo's offscreen renderer; on a machine without a display
(no ``DISPLAY`` or ``WAYLAND_DISPLAY``) and without ``MUJOCO_GL`` set, importing this module sets
``MUJOCO_GL=egl`` (GLFW cannot make a context there).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

if "MUJOCO_GL" not in os.environ and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
    os.environ["MUJOCO_GL"] = "egl"  # headless: GLFW makes no context (see the module docstring)

import mujoco
import numpy as np
from gymnasium.utils.ezpickle import EzPickle
from gymnasium_robotics.envs.fetch import MujocoFetchEnv
from gymnasium_robotics.utils import mujoco_utils

from envs.lift_goal import LIFT_HEIGHT, OBJECT_MASS, check_reward_type, lift_reward, lift_success

FETCH_XML = str(Path(mujoco_utils.__file__).resolve().parents[1] / "envs" / "assets" / "fetch" / "pick_and_place.xml")
"""The installed Fetch scene the tasks are built from (read, never written)."""
GRIPPER_OPENING = 0.1018
"""Fetch's widest opening: the gap between the fingers' inner faces with both finger slides at their 5 cm limit."""
SHAPES: dict[str, np.ndarray] = {"wide": np.array([0.15, 0.15, 0.05]), "plate": np.array([0.13, 0.13, 0.01])}
"""Object sizes (x, y, z) in metres."""
TABLE_CENTRE = np.array([1.3, 0.75])
"""Fetch's table: a 50 x 70 cm top centred here (x, y)."""
TABLE_TOP = 0.4
"""z of Fetch's table top."""
WALL_Y = 0.2
"""The plate task's wall: along the table at y = TABLE_CENTRE[1] + WALL_Y, its near face 1 cm closer."""
WALL_HALF_EXTENTS = np.array([0.25, 0.01, 0.05])
"""The wall spans the table's whole depth (x), 2 cm thick, 10 cm tall, as the Panda task's wall."""
CAMERA = {"distance": 1.5, "azimuth": 150.0, "elevation": -25.0, "lookat": np.array([1.3, 0.75, 0.45])}
"""The rendering camera: closer to the table than Fetch's own (2.5 m away), so the object fills more pixels."""


class _JointAccessors:
    """gymnasium-robotics' ``mujoco_utils`` with joint reads and writes through MuJoCo's named views (its own
    compare joint types in a way MuJoCo >= 3.12 answers False; see the module docstring)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(mujoco_utils, name)

    @staticmethod
    def get_joint_qpos(model: mujoco.MjModel, data: mujoco.MjData, name: str) -> np.ndarray:
        return data.joint(name).qpos.copy()

    @staticmethod
    def set_joint_qpos(model: mujoco.MjModel, data: mujoco.MjData, name: str, value: Any) -> None:
        data.joint(name).qpos[:] = value

    @staticmethod
    def get_joint_qvel(model: mujoco.MjModel, data: mujoco.MjData, name: str) -> np.ndarray:
        return data.joint(name).qvel.copy()

    @staticmethod
    def set_joint_qvel(model: mujoco.MjModel, data: mujoco.MjData, name: str, value: Any) -> None:
        data.joint(name).qvel[:] = value

    @staticmethod
    def robot_get_obs(model: mujoco.MjModel, data: mujoco.MjData, joint_names: Any) -> tuple[np.ndarray, np.ndarray]:
        names = [name for name in joint_names if name.startswith("robot")]
        return (np.array([data.joint(name).qpos[0] for name in names]),
                np.array([data.joint(name).qvel[0] for name in names]))


def build_scene(shape: str) -> mujoco.MjModel:
    """Fetch's pick-and-place scene with the task's object (resized, 0.5 kg), a named table geom, and for
    ``"plate"`` the wall; compiled from an :class:`mujoco.MjSpec` of the installed XML."""
    spec = mujoco.MjSpec.from_file(FETCH_XML)
    size = SHAPES[shape]
    block = spec.geom("object0")
    block.size = size / 2
    block.mass = OBJECT_MASS
    table = spec.body("table0").first_geom()
    table.name = "table0"
    if shape == "plate":
        wall = spec.worldbody.add_body(name="wall", pos=[TABLE_CENTRE[0], TABLE_CENTRE[1] + WALL_Y,
                                                         TABLE_TOP + WALL_HALF_EXTENTS[2]])
        wall.add_geom(name="wall", type=mujoco.mjtGeom.mjGEOM_BOX, size=WALL_HALF_EXTENTS,
                      rgba=[0.5, 0.5, 0.5, 1.0])
    return spec.compile()


class FetchLiftEnv(MujocoFetchEnv, EzPickle):
    """Fetch (end-effector control, gripper free) lifting a ``"wide"`` box or a ``"plate"`` (see the module
    docstring) until its lowest point is ``lift_height`` above the table.

    Observation: Fetch's 25 values (gripper position, object position, rotation and velocities, finger state);
    achieved goal: the object's lowest point above the table top; desired goal: ``[lift_height]``.

    Args:
        shape: ``"wide"`` or ``"plate"``.
        reward_type: ``"sparse"`` (-1 until success) or ``"dense"`` (minus the height still missing).
        lift_height: the goal: the object's lowest point this far above the table top.
        obj_xy_range: the object's start is uniform in a square of this side around the table's centre.
        render_mode: ``"rgb_array"`` (default, off-screen) or ``"human"``.
        width, height: the rendered frame's size in pixels.
    """

    def __init__(self, shape: str = "wide", reward_type: str = "sparse", lift_height: float = LIFT_HEIGHT,
                 obj_xy_range: float = 0.1, render_mode: str | None = "rgb_array", width: int = 480,
                 height: int = 360, **kwargs: Any) -> None:
        if shape not in SHAPES:
            raise ValueError(f"Unknown shape {shape!r}: choose one of {', '.join(SHAPES)}.")
        check_reward_type(reward_type)
        self.shape, self.size = shape, SHAPES[shape]
        self.lift_height = float(lift_height)
        start = [*TABLE_CENTRE, TABLE_TOP + self.size[2] / 2, 1.0, 0.0, 0.0, 0.0]
        initial_qpos = {"robot0:slide0": 0.405, "robot0:slide1": 0.48, "robot0:slide2": 0.0, "object0:joint": start}
        MujocoFetchEnv.__init__(
            self, model_path=FETCH_XML, has_object=True, block_gripper=False, n_substeps=20,
            gripper_extra_height=0.2, target_in_the_air=False, target_offset=0.0, obj_range=obj_xy_range / 2,
            target_range=0.0, distance_threshold=0.0, initial_qpos=initial_qpos, reward_type=reward_type,
            render_mode=render_mode, width=width, height=height, **{"default_camera_config": CAMERA, **kwargs},
        )
        EzPickle.__init__(self, shape=shape, reward_type=reward_type, lift_height=lift_height,
                          obj_xy_range=obj_xy_range, render_mode=render_mode, width=width, height=height, **kwargs)
        self.goal = np.array([self.lift_height])

    # Building and resetting the simulation
    # -------------------------------------

    def _initialize_simulation(self) -> None:
        """gymnasium-robotics' ``MujocoRobotEnv._initialize_simulation`` with the model from :func:`build_scene`."""
        self._utils = _JointAccessors()
        self.model = build_scene(self.shape)
        self.data = mujoco.MjData(self.model)
        self._model_names = self._utils.MujocoModelNames(self.model)
        self.model.vis.global_.offwidth = self.width
        self.model.vis.global_.offheight = self.height
        self._object_geom = self.model.geom("object0").id
        self._target_site = self.model.site("target0").id
        self._env_setup(initial_qpos=self.initial_qpos)
        self.initial_time = self.data.time
        self.initial_qpos = np.copy(self.data.qpos)
        self.initial_qvel = np.copy(self.data.qvel)

    def _reset_sim(self) -> bool:
        """Back to the state after construction (``mj_resetData`` clears controls, applied forces and warm starts),
        the object flat at a start drawn from the env's generator."""
        mujoco.mj_resetData(self.model, self.data)
        self.data.time = self.initial_time
        self.data.qpos[:] = self.initial_qpos
        self.data.qvel[:] = self.initial_qvel
        xy = TABLE_CENTRE + self.np_random.uniform(-self.obj_range, self.obj_range, size=2)
        self.data.joint("object0:joint").qpos[:] = [*xy, TABLE_TOP + self.size[2] / 2, 1.0, 0.0, 0.0, 0.0]
        mujoco.mj_forward(self.model, self.data)
        self._utils.reset_mocap2body_xpos(self.model, self.data)  # the mocap at the gripper, where a step puts it
        return True

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        observation, info = super().reset(seed=seed, options=options)
        return observation, {**info, "is_success": self._is_success(observation["achieved_goal"], self.goal)}

    def _step_callback(self) -> None:
        """Derived quantities of the current state, not of the last substep's start (module docstring)."""
        mujoco.mj_forward(self.model, self.data)

    def _sample_goal(self) -> np.ndarray:
        return np.array([self.lift_height])

    # Goal and reward, as envs.panda_lift
    # -----------------------------------

    def lowest_point(self) -> float:
        """z of the object's lowest corner above the table top, from its pose."""
        rotation = self.data.geom_xmat[self._object_geom].reshape(3, 3)
        depth = float(np.abs(rotation[2]) @ (self.size / 2))  # the lowest corner's depth below the centre
        return float(self.data.geom_xpos[self._object_geom][2]) - depth - TABLE_TOP

    def _get_obs(self) -> dict[str, np.ndarray]:
        observation = super()._get_obs()
        return {**observation, "achieved_goal": np.array([self.lowest_point()]), "desired_goal": self.goal.copy()}

    def _is_success(self, achieved_goal: np.ndarray, desired_goal: np.ndarray) -> np.ndarray:
        return lift_success(achieved_goal, desired_goal)

    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray,
                       info: dict[str, Any] | None = None) -> np.ndarray:
        return lift_reward(achieved_goal, desired_goal, self.reward_type)

    def _render_callback(self) -> None:
        """Fetch's red target marker, at the goal height above the object."""
        body = self.model.site_bodyid[self._target_site]
        x, y = self.data.geom_xpos[self._object_geom][:2]
        self.model.site_pos[self._target_site] = np.array([x, y, TABLE_TOP + self.goal[0]]) - self.data.xpos[body]
        mujoco.mj_kinematics(self.model, self.data)
