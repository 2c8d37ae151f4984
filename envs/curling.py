"""Curling: a 2-link planar arm pushes a ball on a walled table towards two reward areas (MuJoCo).

The task of SERENE / STAX (Paolo et al.). The authors' env is 2D Box2D (``environments/assets/gym_billiard``
of github.com/GPaolo/SERENE: ``envs/curling.py`` on ``envs/billiard_env.py``, ``utils/physics.py``,
``utils/parameters.py``); here it is rebuilt in MuJoCo from an MJCF string, top-down (z up, no gravity), with
the authors' geometry: a 3 x 3 table centred at the origin with walls 0.1 thick on its edges, a ball of radius
0.15 starting at (-0.5, 0.2), an arm whose base sits at the middle of the bottom wall (0, -1.5), link 0 of
length 1 and link 1 of length 1 whose joint is 0.1 inside its end (so the tip reaches 1.9 above the base),
links 0.1 wide, joint limits +-0.4 pi and +-0.9 pi, velocity control with joint speeds capped at 1 rad/s and
motor torque 100, 1/60 s per step, 500 steps, and two reward areas: radius 0.4 at (0.8, 0.8) and radius 0.2 at
(0.8, -0.8). The controller is a feed-forward net, 6 inputs, 2 outputs, 3 hidden layers of 5 units
(``environments/environments.py`` entry ``Curling``; size 5 is ``FFNeuralController``'s default).

Deviations (MuJoCo is not Box2D): the motors are velocity servos (``kv`` below) limited to the authors'
torque 100; the ball only slides (two slide joints, no spin) and contacts are frictionless (``condim=1``),
since a ball that cannot turn would otherwise stick to the arm; Box2D's linear damping 1.1 of the ball is
joint damping 1.1 x mass on the slide joints (the same exponential decay of speed); restitution (Box2D 0.9 ball,
0.95 walls) is approximated by soft contacts with a low damping ratio (``CONTACT_SOLREF``); masses are Box2D's
densities times areas (link 0: 5 x 0.1, link 1: 1 x 0.1, ball: 1 x pi 0.15^2).

Containment (the ball can never leave the table): MuJoCo's ``solref = (timeconst, dampratio)`` gives a contact
spring of natural frequency ``1 / (timeconst * dampratio)``; the first version used ``(0.01, 0.2)`` at a 1/240 s
timestep, i.e. ``omega * dt = 2.1``, an unstable explicit spring: every wall or arm contact *added* energy
(a ball hitting a wall at 20 m/s came back at about 60 m/s, pinches between the arm and a wall at 25 m/s), the
ball reached > 100 m/s and passed through the 0.1-thick walls (random controllers ended at ``|x| ~ 100``). Now the
contact spring is resolved (``CONTACT_SOLREF`` = (0.04, 0.05) with ``SUBSTEPS`` = 8, 1/480 s: ``omega * dt``
~ 1, a contact lasts ~3 substeps, measured wall restitution ~0.8-0.9), and the walls' collision boxes are
``WALL_COLLISION_THICKNESS`` thick and lie *outside* the table: their inner faces stay where the authors'
0.1-thick walls centred on the edges put them (1.45 from the middle), so the playing area is unchanged, and even
a very fast ball cannot cross a wall (the render still draws the authors' 0.1-thick walls).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from envs.qd_task import QDTaskEnv, QDTaskSpec, area_reward, blank_canvas, paint_discs, paint_segments

__all__ = ["CurlingEnv", "CURLING_MJCF"]

TABLE_SIZE = 3.0
"""Side of the square table (``parameters.py``: ``TABLE_SIZE = [3., 3.]``); the table frame is centred on it."""
WALL_THICKNESS = 0.1
"""Wall thickness, walls centred on the table's edges (``parameters.py``: ``WALL_THICKNESS = .1``)."""
BALL_RADIUS = 0.15
"""Ball radius (``parameters.py``: ``BALL_RADIUS = .15``)."""
BALL_START = (-0.5, 0.2)
"""Ball start in the table frame (``billiard_env.py`` ``reset``: ``[-0.5, 0.2]``)."""
BALL_MASS = float(np.pi * BALL_RADIUS**2)
"""Box2D density 1 times the disc's area (``physics.py`` ``_create_balls``: ``density=1``)."""
BALL_LINEAR_DAMPING = 1.1
"""Box2D ``linearDamping`` of the ball (``physics.py`` ``_create_balls``), 1/s."""
LINK_LENGTHS = (1.0, 1.0)
"""Link lengths (``parameters.py``: ``LINK_0_LENGTH = LINK_1_LENGTH = 1.``)."""
LINK_HALF_WIDTH = 0.05
"""Half width of the links (``parameters.py``: ``LINK_THICKNESS = .05``, used as the box's half width)."""
LINK1_OVERLAP = 0.1
"""Link 1 starts this far below its joint (``physics.py``: "so that the two links can overlap")."""
LINK_MASSES = (5.0 * 2 * LINK_HALF_WIDTH * LINK_LENGTHS[0], 1.0 * 2 * LINK_HALF_WIDTH * LINK_LENGTHS[1])
"""Box2D densities 5 and 1 times the links' areas (``physics.py`` ``_create_robotarm``)."""
JOINT_LIMITS = (0.4 * np.pi, 0.9 * np.pi)
"""Joint ranges +-0.4 pi and +-0.9 pi (``physics.py``: ``lowerAngle``/``upperAngle`` of ``jointW0``, ``joint01``)."""
MAX_JOINT_SPEED = 1.0
"""Motor speeds are capped at 1 rad/s (``physics.py`` ``move_joint``: ``min(1, np.abs(speed))``)."""
MAX_MOTOR_TORQUE = 100.0
"""Motor torque limit (``physics.py``: ``maxMotorTorque=100.0``)."""
VELOCITY_GAIN = 20.0
"""``kv`` of the MuJoCo velocity servos (ours: stiff enough to track the speed within a few ms)."""
CONTROL_DT = 1.0 / 60.0
"""Seconds per env step (``parameters.py``: ``TIME_STEP = 1.0 / TARGET_FPS`` with ``TARGET_FPS = 60``)."""
SUBSTEPS = 8
"""MuJoCo steps per env step (ours; MuJoCo timestep 1/480 s, so that the contact spring is resolved)."""
CONTACT_SOLREF = (0.04, 0.05)
"""MuJoCo ``solref`` (time constant, damping ratio) of all contacts (ours): spring frequency
1 / (0.04 * 0.05) = 500 rad/s, i.e. ~1 per substep (stable), low damping ratio for a bouncy ball (restitution
~0.8-0.9 against the walls, the authors' 0.9 / 0.95)."""
WALL_COLLISION_THICKNESS = 1.0
"""Thickness of the walls' collision boxes (ours), which extend outwards from the authors' inner wall faces at
+-(1.5 - 0.05), so that no ball, however fast, can tunnel through a wall."""
GOAL_CENTERS = np.array([[0.8, 0.8], [0.8, -0.8]])
"""Reward area centres (``envs/curling.py``: ``self.goals``)."""
GOAL_RADII = np.array([0.4, 0.2])
"""Reward area radii (``envs/curling.py``: ``self.goalRadius``)."""
MAX_STEPS = 500
"""Evaluation length (``environments.py`` ``Curling`` ``max_steps``; ``Curling(max_steps=500)``)."""
OUTCOME_HALF_WIDTH = 1.35
"""Coverage grid half width (``environments.py`` ``Curling`` ``grid``: ``[-1.35, 1.35]``; the ball's centre
stays within 1.5 - 0.05 - 0.15 = 1.3 of the middle)."""

_half = TABLE_SIZE / 2
_wall_half = WALL_COLLISION_THICKNESS / 2
_wall_centre = _half - WALL_THICKNESS / 2 + _wall_half
"""Centre of a wall's collision box: its inner face is the authors' (``_half - WALL_THICKNESS / 2``)."""
_wall_length = _half + WALL_THICKNESS / 2 + WALL_COLLISION_THICKNESS
"""Half length of a wall's collision box (overlapping the others at the corners)."""
CURLING_MJCF = f"""
<mujoco model="curling">
  <compiler angle="radian"/>
  <option timestep="{CONTROL_DT / SUBSTEPS}" gravity="0 0 0" integrator="implicitfast"/>
  <default>
    <geom condim="1" solref="{CONTACT_SOLREF[0]} {CONTACT_SOLREF[1]}" rgba="0.6 0.6 0.6 1"/>
  </default>
  <worldbody>
    <geom name="wall_left" type="box" pos="{-_wall_centre} 0 0" size="{_wall_half} {_wall_length} 0.1"/>
    <geom name="wall_right" type="box" pos="{_wall_centre} 0 0" size="{_wall_half} {_wall_length} 0.1"/>
    <geom name="wall_top" type="box" pos="0 {_wall_centre} 0" size="{_wall_length} {_wall_half} 0.1"/>
    <geom name="wall_bottom" type="box" pos="0 {-_wall_centre} 0" size="{_wall_length} {_wall_half} 0.1"/>
    <body name="ball" pos="{BALL_START[0]} {BALL_START[1]} 0">
      <joint name="ball_x" type="slide" axis="1 0 0" damping="{BALL_LINEAR_DAMPING * BALL_MASS}"/>
      <joint name="ball_y" type="slide" axis="0 1 0" damping="{BALL_LINEAR_DAMPING * BALL_MASS}"/>
      <geom name="ball" type="sphere" size="{BALL_RADIUS}" mass="{BALL_MASS}" rgba="0 0 1 1"/>
    </body>
    <body name="link0" pos="0 {-_half} 0">
      <joint name="joint0" type="hinge" axis="0 0 1" limited="true"
             range="{-JOINT_LIMITS[0]} {JOINT_LIMITS[0]}"/>
      <geom name="link0" type="box" pos="0 {LINK_LENGTHS[0] / 2} 0"
            size="{LINK_HALF_WIDTH} {LINK_LENGTHS[0] / 2} 0.05" mass="{LINK_MASSES[0]}"/>
      <body name="link1" pos="0 {LINK_LENGTHS[0]} 0">
        <joint name="joint1" type="hinge" axis="0 0 1" limited="true"
               range="{-JOINT_LIMITS[1]} {JOINT_LIMITS[1]}"/>
        <geom name="link1" type="box" pos="0 {LINK_LENGTHS[1] / 2 - LINK1_OVERLAP} 0"
              size="{LINK_HALF_WIDTH} {LINK_LENGTHS[1] / 2} 0.05" mass="{LINK_MASSES[1]}"/>
      </body>
    </body>
  </worldbody>
  <contact>
    <exclude body1="world" body2="link0"/>
  </contact>
  <actuator>
    <velocity name="motor0" joint="joint0" kv="{VELOCITY_GAIN}" ctrllimited="true"
              ctrlrange="{-MAX_JOINT_SPEED} {MAX_JOINT_SPEED}" forcelimited="true"
              forcerange="{-MAX_MOTOR_TORQUE} {MAX_MOTOR_TORQUE}"/>
    <velocity name="motor1" joint="joint1" kv="{VELOCITY_GAIN}" ctrllimited="true"
              ctrlrange="{-MAX_JOINT_SPEED} {MAX_JOINT_SPEED}" forcelimited="true"
              forcerange="{-MAX_MOTOR_TORQUE} {MAX_MOTOR_TORQUE}"/>
  </actuator>
</mujoco>
"""
"""The MJCF model of the table, walls, ball and arm (table frame, z up)."""

_OBS_LOW = np.array([-_half, -_half, -np.pi / 2, -np.pi, -50.0, -50.0], dtype=np.float32)
_OBS_HIGH = -_OBS_LOW
"""Observation bounds (``billiard_env.py`` ``observation_space``)."""


class CurlingEnv(QDTaskEnv):
    """2-link arm pushing a ball to reward areas on a walled table (SERENE's Curling, in MuJoCo).

    Observation: (ball x, ball y, joint 0 angle, joint 1 angle, joint 0 speed, joint 1 speed), as the
    authors'. Action: the two joints' target speeds in [-1, 1] rad/s. Reward: at the last step only,
    ``(r - d) / r`` when the ball's centre lies within a reward area of radius ``r``, else 0. Episodes are
    truncated after 500 steps of 1/60 s. ``info["outcome"]`` is the ball's (x, y). The deviations from the
    authors' Box2D model are listed in the module docstring.

    :param render_mode: ``"rgb_array"`` (300 x 300 top-down image, the authors' display size) or None.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 60}
    spec_qd = QDTaskSpec(
        outcome_bounds=((-OUTCOME_HALF_WIDTH, OUTCOME_HALF_WIDTH), (-OUTCOME_HALF_WIDTH, OUTCOME_HALF_WIDTH)),
        reward_areas=("large_upper_right", "small_lower_right"),
        controller="mlp",
        controller_hidden=(5, 5, 5),
        max_steps=MAX_STEPS,
        description="2-link planar arm (joint speeds) pushing a ball on a walled table to 2 reward areas.",
    )

    def __init__(self, render_mode: str | None = None):
        import mujoco  # heavy optional dependency, imported where used

        super().__init__(render_mode)
        self._mujoco = mujoco
        self.model = mujoco.MjModel.from_xml_string(CURLING_MJCF)
        self.data = mujoco.MjData(self.model)
        self._ball_qpos = [int(self.model.joint(name).qposadr[0]) for name in ("ball_x", "ball_y")]
        self._ball_qvel = [int(self.model.joint(name).dofadr[0]) for name in ("ball_x", "ball_y")]
        self._arm_qpos = [int(self.model.joint(name).qposadr[0]) for name in ("joint0", "joint1")]
        self._arm_qvel = [int(self.model.joint(name).dofadr[0]) for name in ("joint0", "joint1")]
        self.observation_space = spaces.Box(low=_OBS_LOW, high=_OBS_HIGH, dtype=np.float32)
        self.action_space = spaces.Box(low=-1.0, high=1.0, shape=(2,), dtype=np.float32)
        self._steps = 0

    def ball_position(self) -> np.ndarray:
        """The ball's (x, y) in the table frame (ball body origin + slide joint displacements)."""
        return np.asarray(BALL_START) + self.data.qpos[self._ball_qpos]

    def set_ball(self, position: tuple[float, float], velocity: tuple[float, float] = (0.0, 0.0)) -> None:
        """Place the ball (tests, analysis): table-frame position and velocity."""
        if np.any(np.abs(np.asarray(position)) > _half - WALL_THICKNESS / 2 - BALL_RADIUS):
            raise ValueError(f"ball position {position} is not inside the walls")
        self.data.qpos[self._ball_qpos] = np.asarray(position) - np.asarray(BALL_START)
        self.data.qvel[self._ball_qvel] = velocity
        self._mujoco.mj_forward(self.model, self.data)

    def _observation(self) -> np.ndarray:
        observation = np.concatenate(
            [self.ball_position(), self.data.qpos[self._arm_qpos], self.data.qvel[self._arm_qvel]]
        ).astype(np.float32)
        return np.clip(observation, _OBS_LOW, _OBS_HIGH)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Arm straight up, ball at (-0.5, 0.2), at rest (no randomness; ``seed`` only seeds ``np_random``)."""
        super().reset(seed=seed)
        self._mujoco.mj_resetData(self.model, self.data)
        self._mujoco.mj_forward(self.model, self.data)
        self._steps = 0
        return self._observation(), {"outcome": self.outcome(), "reward_area": -1}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (2,):
            raise ValueError(f"action must have shape (2,), got {action.shape}")
        self.data.ctrl[:] = np.clip(action, -MAX_JOINT_SPEED, MAX_JOINT_SPEED)
        self._mujoco.mj_step(self.model, self.data, nstep=SUBSTEPS)
        self._steps += 1
        truncated = self._steps >= MAX_STEPS
        reward, area = area_reward(self.outcome(), GOAL_CENTERS, GOAL_RADII) if truncated else (0.0, -1)
        return self._observation(), reward, False, truncated, {"outcome": self.outcome(), "reward_area": area}

    def outcome(self) -> np.ndarray:
        """Ground-truth outcome: the ball's final (x, y)."""
        return self.ball_position().copy()

    def state_observation(self) -> np.ndarray:
        """Low-dimensional state: the 6-d observation."""
        return self._observation()

    def render(self) -> np.ndarray | None:
        """Top-down 300 x 300 image (100 px per unit, y up): red areas, grey walls and arm, blue ball."""
        if self.render_mode != "rgb_array":
            return None
        size, scale = 300, 300 / TABLE_SIZE

        def to_pixels(points: np.ndarray) -> np.ndarray:
            points = np.asarray(points, dtype=np.float64)
            return np.stack([(points[..., 0] + _half) * scale, (_half - points[..., 1]) * scale], axis=-1)

        image = blank_canvas(size, size)
        paint_discs(image, to_pixels(GOAL_CENTERS), GOAL_RADII * scale, (255, 0, 0))
        corners = to_pixels(np.array([[-_half, -_half], [_half, -_half], [_half, _half], [-_half, _half]]))
        frame = np.concatenate([corners, np.roll(corners, -1, axis=0)], axis=1)
        paint_segments(image, frame, WALL_THICKNESS * scale, (150, 150, 150))
        links = []
        for name, length, start in (("link0", LINK_LENGTHS[0], 0.0), ("link1", LINK_LENGTHS[1], -LINK1_OVERLAP)):
            body = self.data.body(name)
            axis = body.xmat.reshape(3, 3)[:2, 1]  # the link's local y axis in the table frame
            origin = body.xpos[:2]
            links.append(np.concatenate([origin + start * axis, origin + (start + length) * axis]))
        paint_segments(
            image, to_pixels(np.reshape(links, (-1, 2, 2))).reshape(-1, 4), 2 * LINK_HALF_WIDTH * scale, (100, 100, 100)
        )
        paint_discs(image, to_pixels(self.ball_position()[None]), np.array([BALL_RADIUS * scale]), (0, 0, 255))
        return image
