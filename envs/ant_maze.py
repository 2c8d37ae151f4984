"""AntMaze: the MuJoCo Ant walking through a large maze of walls towards two reward areas.

The fourth task of SERENE / STAX (Paolo et al.), run at a reduced budget. The authors' env is
``AntObstacles-v0`` (``environments/assets/ant_maze`` of github.com/GPaolo/SERENE: ``ant_maze.py`` on
``xmls/ant_obstaclesbig2.xml``, Uber's large ant maze from the NS-ES / MLSH line of work; STAX's
``environments/ant_maze.py`` installs that package). Its facts, reproduced here: the standard gym Ant body, MuJoCo
timestep 0.005 s (RK4) and frame skip 5 (0.025 s per env step); the Ant's torso starts at (-25, -25, 0.6); an
outer wall around [-30, 40]^2 and three inner walls (:data:`WALL_BOXES`, positions and sizes as in the XML);
two reward areas of radius 3 at (35, -25) and (-25, 35) paying ``(3 - d) / 3`` at the end of the episode
(``ant_maze.py`` ``step``); observation = qpos (15, with x and y mapped to ``(x - 5) / 70``) and qvel (14), 29
inputs; action = the 8 torques in [-1, 1] (gear 150); no termination (``done`` only at ``max_ts``); reset adds
U(-0.1, 0.1) to qpos and 0.1 N(0, 1) to qvel. STAX's entry (``environments/ant_maze.py``) gives the controller,
a feed-forward net 29 -> 8 with 3 hidden layers of 10 units, the evaluation length, 1000 steps, and the
coverage grid, 50 x 50 over the normalised coordinates [-0.5, 0.5]^2, i.e. [-30, 40]^2 in world units.

The maze: from the start (-25, -25) the upper-left area (-25, 35) lies straight ahead in +y (a 60-unit walk
left of the wall x = -15, which spans y in [3, 37]). The lower-right area (35, -25) lies behind the wall x = 10
(y in [-30, 0]): walking straight towards it leads into the dead end between that wall, the wall y = -15 (x in
[-16, 10]) and the bottom border (deceptive); the Ant has to walk up past y = 0 and come back down.

The MJCF is built at run time (:func:`build_ant_maze_mjcf`) from Gymnasium's installed ``ant.xml`` (parsed,
never edited): the walls are added as static boxes of the world body, the floor is the authors' (centred on
(5, 5), half side 35; MuJoCo planes collide everywhere anyway), the torso starts at the authors' position and
the timestep is the authors'. The env drives MuJoCo directly, as ``envs.curling`` does (no ``MujocoEnv``, so
no OpenGL context is ever created); ``render()`` is a top-down numpy image (:mod:`envs.qd_task` rasteriser).
A 1000-step episode with the MLP controller takes about 0.35 s on one core (5000 RK4 steps; measured with the
machine's two cores busy).

Deviations from the authors' XML: the authors' ``settotalmass="25755"`` is shared between the Ant and a
"monster" ellipsoid parked at z = 100 (it never touches anything), which leaves the Ant 45.5 times heavier
than Gymnasium's (41.45 kg, :data:`ANT_MASS`); here there is no monster and the Ant's masses and inertias are
scaled to that mass directly (``mujoco.mj_setTotalmass``), so the dynamics are the authors'. The authors' torso
also carries a light "head" sphere (density 0.01, 0.03 kg after scaling), left out with Gymnasium's body. The
two translucent goal markers of the XML (boxes at z = 3, out of the Ant's reach) are left out; the goals are
drawn in the render. The quaternion of the noisy reset is renormalised. The authors' env pays at its own
``max_ts = 3000`` while STAX evaluates 1000 steps; here the episode is 1000 steps and pays at its last step.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from typing import Any

import numpy as np
from gymnasium import spaces

from envs.qd_task import QDTaskEnv, QDTaskSpec, area_reward, blank_canvas, paint_discs, paint_polygons

__all__ = ["AntMazeEnv", "WALL_BOXES", "build_ant_maze_mjcf", "in_wall"]

TIMESTEP = 0.005
"""MuJoCo timestep in seconds (``ant_obstaclesbig2.xml``: ``<option integrator="RK4" timestep="0.005"/>``)."""
FRAME_SKIP = 5
"""MuJoCo steps per env step (``ant_maze.py``: ``MujocoEnv.__init__(self, ..., 5)``)."""
ANT_MASS = 41.44888
"""Total mass of the Ant in kg: what ``settotalmass="25755"`` leaves the Ant in the authors' XML (the rest goes
to the monster ellipsoid); Gymnasium's density-5 Ant weighs 0.911 kg."""
START_POSITION = (-25.0, -25.0, 0.6)
"""Initial torso position (``ant_obstaclesbig2.xml``: ``<body name="torso" pos="-25 -25 0.6">``)."""
WALL_HALF_HEIGHT = 2.0
"""Half height of every wall box (``ant_obstaclesbig2.xml``: ``size="... 2"``), centred on the floor."""
WALL_BOXES = np.array(
    [
        # (centre x, centre y, half size x, half size y), from github.com/GPaolo/SERENE
        # environments/assets/ant_maze/xmls/ant_obstaclesbig2.xml ("the big border", then the inner walls)
        [5.0, 40.0, 35.0, 0.3],
        [5.0, -30.0, 35.0, 0.3],
        [40.0, 5.0, 0.3, 35.0],
        [-30.0, 5.0, 0.3, 35.0],
        [-15.0, 20.0, 0.3, 17.0],
        [-3.0, -15.0, 13.0, 0.3],
        [10.0, -15.0, 0.3, 15.0],
    ]
)
"""Wall boxes ``(x, y, half x, half y)``: the outer border around [-30, 40]^2 and the three inner walls."""
FLOOR_CENTER = (5.0, 5.0)
"""Floor centre (``ant_obstaclesbig2.xml``: ``<geom ... name="floor" pos="5 5 0" size="35 35 40" type="plane"/>``)."""
FLOOR_HALF_SIDE = 35.0
"""Floor half side (same line)."""
GOAL_CENTERS = np.array([[35.0, -25.0], [-25.0, 35.0]])
"""Reward area centres (``ant_maze.py``: ``self.goal``)."""
GOAL_RADII = np.array([3.0, 3.0])
"""Reward area radii (``ant_maze.py``: ``self.goalRadius``)."""
POSITION_OFFSET = 5.0
"""The observation's x, y are ``(x - 5) / 70`` (``ant_maze.py`` ``_get_obs``)."""
POSITION_SCALE = 70.0
"""See :data:`POSITION_OFFSET`."""
RESET_QPOS_NOISE = 0.1
"""Reset noise on qpos: U(-0.1, 0.1) (``ant_maze.py`` ``reset_model``)."""
RESET_QVEL_NOISE = 0.1
"""Reset noise on qvel: 0.1 N(0, 1) (``ant_maze.py`` ``reset_model``)."""
MAX_STEPS = 1000
"""Evaluation length (STAX ``environments/ant_maze.py``: ``'max_steps': 1000``)."""
OUTCOME_BOUNDS = ((-30.0, 40.0), (-30.0, 40.0))
"""Coverage grid bounds: STAX's ``grid`` [-0.5, 0.5]^2 of the normalised coordinates, mapped back to world units."""
RENDER_SIZE = 200
"""Side of the rendered image in pixels (the other QD tasks' size)."""
ANT_RENDER_RADIUS = 1.5
"""Radius of the disc that stands for the Ant in the render (ours: about the reach of its legs, so that it stays
visible at TAXONS's 64 x 64)."""


def _ant_xml_path() -> str:
    import gymnasium.envs.mujoco

    return os.path.join(os.path.dirname(gymnasium.envs.mujoco.__file__), "assets", "ant.xml")


def build_ant_maze_mjcf() -> str:
    """The task's MJCF: Gymnasium's ``ant.xml`` with the authors' timestep, floor, start and walls."""
    root = ET.parse(_ant_xml_path()).getroot()
    option = root.find("option")
    if option is None:
        option = ET.SubElement(root, "option")
    option.set("timestep", repr(TIMESTEP))
    option.set("integrator", "RK4")
    worldbody = root.find("worldbody")
    floor = worldbody.find("geom[@name='floor']")
    floor.set("pos", f"{FLOOR_CENTER[0]} {FLOOR_CENTER[1]} 0")
    floor.set("size", f"{FLOOR_HALF_SIDE} {FLOOR_HALF_SIDE} 40")
    worldbody.find("body[@name='torso']").set("pos", " ".join(str(value) for value in START_POSITION))
    for index, (x, y, half_x, half_y) in enumerate(WALL_BOXES):
        ET.SubElement(
            worldbody,
            "geom",
            name=f"wall_{index}",
            type="box",
            pos=f"{x} {y} 0",
            size=f"{half_x} {half_y} {WALL_HALF_HEIGHT}",
            conaffinity="1",
            rgba="0.9 0.9 0.9 1",
        )
    return ET.tostring(root, encoding="unicode")


def in_wall(points: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """Whether each (x, y) of ``points`` (..., 2) lies inside a wall box grown by ``margin`` on every side."""
    points = np.asarray(points, dtype=np.float64)[..., None, :]
    return np.any(np.all(np.abs(points - WALL_BOXES[:, :2]) <= WALL_BOXES[:, 2:] + margin, axis=-1), axis=-1)


class AntMazeEnv(QDTaskEnv):
    """MuJoCo Ant in the authors' large maze with two reward areas (SERENE / STAX's ``AntObstacles-v0``).

    Observation (29, float64, unbounded as Gymnasium's Ant): qpos with the torso's x, y mapped to
    ``(x - 5) / 70``, then qvel. Action: the 8 joint torques in [-1, 1] (the actuators' ``ctrlrange``, gear
    150). Reward: at the last step only, ``(3 - d) / 3`` when the torso is within 3 of a goal centre, else 0.
    Episodes are truncated after 1000 steps of 0.025 s and never terminate (the Ant may fall over).
    ``info["outcome"]`` is the torso's (x, y) after every step; the final step's ``info["reward_area"]`` is the
    area id or -1. ``reset`` adds the authors' noise from ``np_random``, so the start is fixed for a given seed
    (evaluations always reset with seed 0). The deviations from the authors' XML are in the module docstring.

    :param render_mode: ``"rgb_array"`` (200 x 200 top-down image) or None.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": int(round(1.0 / (TIMESTEP * FRAME_SKIP)))}
    spec_qd = QDTaskSpec(
        outcome_bounds=OUTCOME_BOUNDS,
        reward_areas=("lower_right", "upper_left"),
        controller="mlp",
        controller_hidden=(10, 10, 10),
        max_steps=MAX_STEPS,
        description="MuJoCo Ant (8 torques) walking through a large maze of walls to 2 reward areas.",
    )

    def __init__(self, render_mode: str | None = None):
        import mujoco  # heavy optional dependency, imported where used

        super().__init__(render_mode)
        self._mujoco = mujoco
        self.model = mujoco.MjModel.from_xml_string(build_ant_maze_mjcf())
        self.data = mujoco.MjData(self.model)
        mujoco.mj_setTotalmass(self.model, ANT_MASS)
        mujoco.mj_setConst(self.model, self.data)
        self.init_qpos = self.model.qpos0.copy()
        self.init_qvel = np.zeros(self.model.nv)
        size = self.model.nq + self.model.nv
        self.observation_space = spaces.Box(low=-np.inf, high=np.inf, shape=(size,), dtype=np.float64)
        ctrlrange = self.model.actuator_ctrlrange.astype(np.float32)
        self.action_space = spaces.Box(low=ctrlrange[:, 0], high=ctrlrange[:, 1], dtype=np.float32)
        self._steps = 0
        self._background: np.ndarray | None = None

    # ------------------------------------------------------------------ state
    def torso_position(self) -> np.ndarray:
        """The torso's (x, y) in world units (the free joint's first two coordinates)."""
        return self.data.qpos[:2].copy()

    def set_state(self, qpos: np.ndarray, qvel: np.ndarray) -> None:
        """Set the simulator's state (tests, analysis), as ``MujocoEnv.set_state`` does."""
        qpos, qvel = np.asarray(qpos, dtype=np.float64), np.asarray(qvel, dtype=np.float64)
        if qpos.shape != (self.model.nq,) or qvel.shape != (self.model.nv,):
            raise ValueError(f"qpos / qvel must have shapes ({self.model.nq},) / ({self.model.nv},), got "
                             f"{qpos.shape} / {qvel.shape}")
        self.data.qpos[:] = qpos
        self.data.qvel[:] = qvel
        self._mujoco.mj_forward(self.model, self.data)

    def _observation(self) -> np.ndarray:
        qpos = self.data.qpos.copy()
        qpos[:2] = (qpos[:2] - POSITION_OFFSET) / POSITION_SCALE
        return np.concatenate([qpos, self.data.qvel])

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Start pose plus the authors' reset noise drawn from ``np_random`` (deterministic for a given seed)."""
        super().reset(seed=seed)
        self._mujoco.mj_resetData(self.model, self.data)
        qpos = self.init_qpos + self.np_random.uniform(-RESET_QPOS_NOISE, RESET_QPOS_NOISE, size=self.model.nq)
        qpos[3:7] /= np.linalg.norm(qpos[3:7])
        qvel = self.init_qvel + RESET_QVEL_NOISE * self.np_random.standard_normal(self.model.nv)
        self.set_state(qpos, qvel)
        self._steps = 0
        return self._observation(), {"outcome": self.outcome(), "reward_area": -1}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action must have shape {self.action_space.shape}, got {action.shape}")
        self.data.ctrl[:] = np.clip(action, self.action_space.low, self.action_space.high)
        self._mujoco.mj_step(self.model, self.data, nstep=FRAME_SKIP)
        self._steps += 1
        truncated = self._steps >= MAX_STEPS
        reward, area = area_reward(self.outcome(), GOAL_CENTERS, GOAL_RADII) if truncated else (0.0, -1)
        return self._observation(), reward, False, truncated, {"outcome": self.outcome(), "reward_area": area}

    def outcome(self) -> np.ndarray:
        """Ground-truth outcome: the torso's (x, y) (the authors' ``bc``)."""
        return self.torso_position()

    def state_observation(self) -> np.ndarray:
        """Low-dimensional state: (normalised x, normalised y, torso height, cos yaw, sin yaw, torso up-axis z)."""
        x, y = (self.data.qpos[:2] - POSITION_OFFSET) / POSITION_SCALE
        rotation = self.data.body("torso").xmat.reshape(3, 3)
        yaw = np.arctan2(rotation[1, 0], rotation[0, 0])
        return np.array([x, y, self.data.qpos[2], np.cos(yaw), np.sin(yaw), rotation[2, 2]], dtype=np.float32)

    def render(self) -> np.ndarray | None:
        """Top-down 200 x 200 image of [-30, 40]^2 (y up): white floor, grey walls, red goals, blue Ant."""
        if self.render_mode != "rgb_array":
            return None
        (low_x, high_x), (low_y, high_y) = OUTCOME_BOUNDS
        scale = RENDER_SIZE / (high_x - low_x)

        def to_pixels(points: np.ndarray) -> np.ndarray:
            points = np.asarray(points, dtype=np.float64)
            return np.stack([(points[..., 0] - low_x) * scale, (high_y - points[..., 1]) * scale], axis=-1)

        if self._background is None:
            background = blank_canvas(RENDER_SIZE, RENDER_SIZE)
            paint_discs(background, to_pixels(GOAL_CENTERS), GOAL_RADII * scale, (255, 0, 0))
            corners = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
            boxes = [to_pixels(box[:2] + corners * box[2:]) for box in WALL_BOXES]
            paint_polygons(background, boxes, (100, 100, 100))
            self._background = background
        image = self._background.copy()
        paint_discs(image, to_pixels(self.torso_position()[None]), np.array([ANT_RENDER_RADIUS * scale]), (0, 0, 255))
        return image
