"""Lift an object that cannot be grasped where it lies: the tasks of privileged-action curricula, on panda-gym's
Panda (PyBullet).

Mao et al. (2025, arXiv 2502.15442) train contact-rich, long-horizon manipulation with a parsimonious reward:
push-and-grasp (the object is too wide to grasp where it lies) and pivot-grasp (it is too flat). The paper's
scenes could not be checked; these are designed here, on panda-gym's robot, table and conventions:

- ``PandaLiftWide-v0``: a 12 x 12 x 5 cm box lying flat. Both horizontal sides are wider than the gripper's
  8 cm opening, so it must be pushed over the table's edge (the table top spans y in [-0.35, 0.35]) and
  grasped by the overhang.
- ``PandaLiftPlate-v0``: a 10 x 10 x 1 cm plate. The fingers cannot get under 1 cm from above, so it must be
  pushed against the wall (a fixed block along the table at y = 0.2) and pivoted up, then grasped.

One reward for both (goal-conditioned, so that HER applies): the goal is a height, the achieved goal the
object's lowest point above the table top, success when it is at least the goal (default 0.1 m), reward 0 on
success and -1 otherwise ("sparse"), or minus the height still missing ("dense"). Episodes last 100 steps
(panda-gym's tasks use 50; these need a push before the grasp).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from panda_gym.envs.core import RobotTaskEnv, Task
from panda_gym.envs.robots.panda import Panda
from panda_gym.pybullet import PyBullet

from envs.lift_goal import LIFT_HEIGHT, OBJECT_MASS, check_reward_type, lift_reward, lift_success

GRIPPER_OPENING = 0.08
"""The Panda gripper's widest opening (two fingers of 4 cm travel)."""
SHAPES: dict[str, np.ndarray] = {"wide": np.array([0.12, 0.12, 0.05]), "plate": np.array([0.10, 0.10, 0.01])}
"""Object sizes (x, y, z) in metres."""
WALL_Y = 0.2
"""The plate task's wall: a fixed block along the table, its near face at y = WALL_Y - 0.01."""


class LiftNonGraspable(Task):
    """Lift a ``"wide"`` box or a ``"plate"`` (see the module docstring) to ``lift_height`` above the table.

    Args:
        sim: panda-gym's simulation.
        shape: ``"wide"`` or ``"plate"``.
        lift_height: the goal: the object's lowest point this far above the table top.
        reward_type: ``"sparse"`` (-1 until success) or ``"dense"`` (minus the height still missing).
        obj_xy_range: the object's start is uniform in a square of this side around the table's centre.
    """

    def __init__(self, sim: PyBullet, *, shape: str = "wide", lift_height: float = LIFT_HEIGHT,
                 reward_type: str = "sparse", obj_xy_range: float = 0.1) -> None:
        if shape not in SHAPES:
            raise ValueError(f"Unknown shape {shape!r}: choose one of {', '.join(SHAPES)}.")
        check_reward_type(reward_type)
        super().__init__(sim)
        self.shape, self.size = shape, SHAPES[shape]
        self.lift_height, self.reward_type = float(lift_height), reward_type
        self.obj_range = np.array([obj_xy_range / 2, obj_xy_range / 2, 0.0])
        self.goal = np.array([self.lift_height])
        with self.sim.no_rendering():
            self._create_scene()

    def _create_scene(self) -> None:
        self.sim.create_plane(z_offset=-0.4)
        self.sim.create_table(length=1.1, width=0.7, height=0.4, x_offset=-0.3)
        self.sim.create_box(body_name="object", half_extents=self.size / 2, mass=OBJECT_MASS,
                            position=np.array([0.0, 0.0, self.size[2] / 2]), rgba_color=np.array([0.1, 0.9, 0.1, 1.0]))
        if self.shape == "plate":
            self.sim.create_box(body_name="wall", half_extents=np.array([0.3, 0.01, 0.05]), mass=0.0,
                                position=np.array([-0.1, WALL_Y, 0.05]), rgba_color=np.array([0.5, 0.5, 0.5, 1.0]))

    def get_obs(self) -> np.ndarray:
        """Object position, rotation (Euler), velocity and angular velocity."""
        return np.concatenate([
            self.sim.get_base_position("object"), self.sim.get_base_rotation("object"),
            self.sim.get_base_velocity("object"), self.sim.get_base_angular_velocity("object"),
        ]).astype(np.float32)

    def get_achieved_goal(self) -> np.ndarray:
        """The object's lowest point above the table top (the table top is at z = 0)."""
        return np.array([self.lowest_point()], dtype=np.float32)

    def lowest_point(self) -> float:
        """z of the object's lowest corner, from its pose."""
        position = np.asarray(self.sim.get_base_position("object"))
        quaternion = self.sim.physics_client.getQuaternionFromEuler(self.sim.get_base_rotation("object"))
        rotation = np.asarray(self.sim.physics_client.getMatrixFromQuaternion(quaternion)).reshape(3, 3)
        corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]) * self.size / 2
        return float(np.min(position[2] + corners @ rotation[2]))

    def reset(self) -> None:
        start = np.array([0.0, 0.0, self.size[2] / 2]) + self.np_random.uniform(-self.obj_range, self.obj_range)
        self.sim.set_base_pose("object", start, np.array([0.0, 0.0, 0.0, 1.0]))

    def is_success(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: dict[str, Any] | None = None
                   ) -> np.ndarray:
        return lift_success(achieved_goal, desired_goal)

    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray,
                       info: dict[str, Any] | None = None) -> np.ndarray:
        return lift_reward(achieved_goal, desired_goal, self.reward_type)


class PandaLiftEnv(RobotTaskEnv):
    """panda-gym's Panda (end-effector control, gripper free) with :class:`LiftNonGraspable`.

    Args:
        shape: ``"wide"`` or ``"plate"``.
        reward_type: ``"sparse"`` or ``"dense"``.
        render_mode: ``"rgb_array"`` (default, off-screen) or ``"human"``.
        kwargs: :class:`LiftNonGraspable`'s ``lift_height`` and ``obj_xy_range``.
    """

    def __init__(self, shape: str = "wide", reward_type: str = "sparse", render_mode: str = "rgb_array",
                 **kwargs: Any) -> None:
        sim = PyBullet(render_mode=render_mode, renderer="Tiny")
        # Bullet's broadphase otherwise orders contact pairs by allocation, so the same state can step differently.
        sim.physics_client.setPhysicsEngineParameter(deterministicOverlappingPairs=1)
        robot = Panda(sim, block_gripper=False, base_position=np.array([-0.6, 0.0, 0.0]), control_type="ee")
        task = LiftNonGraspable(sim, shape=shape, reward_type=reward_type, **kwargs)
        self._initial_state: int | None = None
        super().__init__(robot, task, render_width=480, render_height=360)

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """panda-gym's reset, made reproducible (Gymnasium's checker refuses panda-gym's own): the task draws from
        the env's generator (panda-gym reseeds it from fresh entropy on every reset without a seed), and the
        simulation first goes back to its state at construction (velocities and contacts of the last episode
        otherwise carry over into the next)."""
        gym.Env.reset(self, seed=seed, options=options)
        self.task.np_random = self.np_random
        if self._initial_state is None:  # the first reset, from panda-gym's constructor
            self._initial_state = self.sim.save_state()
        self.sim.restore_state(self._initial_state)
        with self.sim.no_rendering():
            self.robot.reset()
            self.task.reset()
        observation = self._get_obs()
        return observation, {"is_success": self.task.is_success(observation["achieved_goal"], self.task.get_goal())}
