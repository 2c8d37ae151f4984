"""HardMaze: a differential-drive robot with three rangefinders in fastsim's deceptive hard maze (numpy).

The task of TAXONS / SERENE / STAX (Paolo et al.). The authors run libfastsim through pyfastsim
(``environments/assets/gym_fastsim`` of github.com/GPaolo/SERENE): a 600 x 600 map given as a 200 x 200
bitmap (``assets/maze_hard.pbm``), a robot of radius 10 starting at (60, 450) heading 45 degrees, three lasers
of range 100 at +45, 0 and -45 degrees, two bumpers, and two goal areas of radius 50 at (60, 60) and
(100, 200) (``assets/LS_maze_hard.xml``). Their controller is a feed-forward net with 5 inputs (3 lasers +
2 bumpers), 2 outputs (wheel speeds), 2 hidden layers of 5 units, for 2000 steps (``environments/environments.py``
entry ``HardMaze``; hidden size 5 is ``FFNeuralController``'s default in ``core/controllers/neural_controller.py``).

Here the maze is numpy geometry: each wall of the bitmap is a polygon (traced from ``maze_hard.pbm``, one
bitmap pixel = 3 map units), the walls are the polygons' edges, collision is a disc-against-segments test and
the lasers are rays cast against all edges at once (vectorised over rays x edges, with the edges' constants
computed once in :class:`WallGeometry`; an episode of 2000 steps takes about 0.15 s). Coordinates are the
map's: x to the right, y *down* (image rows), as in fastsim.

Deviations (stated on :class:`HardMazeEnv` too): the wall polygons follow the bitmap to within about one
bitmap pixel (3 map units), not pixel for pixel; on a collision the robot keeps its old position but takes
its new heading (fastsim's non-sticky walls, ``sticky_walls = False`` in ``nav_env.py``, also undo the move;
its exact sliding rules are not reproduced); bumpers fire for contacts in the front-left / front-right
quadrants of the body.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from envs.qd_task import QDTaskEnv, QDTaskSpec, area_reward, blank_canvas, paint_discs, paint_polygons

__all__ = ["HardMazeEnv", "MAZE_POLYGONS", "WALL_SEGMENTS", "WallGeometry"]

MAP_SIZE = 600.0
"""Side of the square map in map units (``LS_maze_hard.xml``: ``<map ... size="600"/>``)."""
BITMAP_SCALE = 3.0
"""Map units per pixel of ``maze_hard.pbm`` (200 x 200 bitmap on a 600 map)."""
ROBOT_RADIUS = 10.0
"""Robot radius (``LS_maze_hard.xml``: ``diameter="10"``, which fastsim uses as the radius, as its comment says)."""
WHEEL_DISTANCE = 2.0 * ROBOT_RADIUS
"""Distance between the wheels (libfastsim's ``Robot::move`` passes ``_radius * 2``)."""
START_POSE = (60.0, 450.0, np.deg2rad(45.0))
"""Start (x, y, heading) (``LS_maze_hard.xml``: ``<robot x="60" y="450" theta="45" .../>``)."""
LASER_ANGLES = np.deg2rad([45.0, 0.0, -45.0])
"""Laser directions relative to the heading (``LS_maze_hard.xml`` ``<laser ... angle=.../>``)."""
LASER_RANGE = 100.0
"""Laser range; a ray that hits nothing reads the range (``nav_env.py`` ``get_laserranges``)."""
MAX_WHEEL_SPEED = 1.0
"""Wheel displacement per step for an action of 1. The authors' controller ends in a sigmoid rescaled to
[-1, 1] (``neural_controller.py``) and its output goes straight to the wheels (``io_formatters.output_formatter``),
so fastsim's clip at ``maxVel = 4`` never binds: the effective top speed is 1."""
GOAL_CENTERS = np.array([[60.0, 60.0], [100.0, 200.0]])
"""Reward area centres (``LS_maze_hard.xml`` ``<goal x=... y=...>``)."""
GOAL_RADII = np.array([50.0, 50.0])
"""Reward area radii: half the goals' ``diameter="100"`` (``nav_env.py``: ``goal.get_diam()/2.``)."""
MAX_STEPS = 2000
"""Evaluation length (``environments.py`` ``HardMaze`` ``max_steps``; also ``nav_env.py``)."""

# Wall polygons in bitmap pixels (x = column, y = row), traced from maze_hard.pbm's rows of black pixels.
_BITMAP_POLYGONS: tuple[tuple[tuple[float, float], ...], ...] = (
    # outer border, 3 pixels thick: the inner square [3, 197]^2 (drawn as a frame)
    ((0.0, 0.0), (200.0, 0.0), (200.0, 3.0), (0.0, 3.0)),
    ((0.0, 197.0), (200.0, 197.0), (200.0, 200.0), (0.0, 200.0)),
    ((0.0, 3.0), (3.0, 3.0), (3.0, 197.0), (0.0, 197.0)),
    ((197.0, 3.0), (200.0, 3.0), (200.0, 197.0), (197.0, 197.0)),
    # upper diagonal, from (133, 25) down-left to the horizontal wall
    ((126.0, 25.0), (133.0, 25.0), (133.0, 30.0), (75.0, 46.5), (56.0, 46.5)),
    # the slightly sloping horizontal wall from the left border to the vertical wall
    ((3.0, 41.5), (61.0, 46.0), (61.0, 52.0), (3.0, 48.0)),
    # the long vertical wall
    ((56.0, 46.0), (61.0, 46.0), (61.0, 153.0), (56.0, 153.0)),
    # small diagonal off the left border
    ((3.0, 72.0), (6.0, 72.0), (36.5, 112.0), (36.5, 116.0), (34.0, 117.0), (3.0, 79.0)),
    # right diagonal, from (86, 85) to the right border
    ((86.0, 85.0), (90.0, 85.0), (197.0, 140.6), (197.0, 145.7), (86.0, 88.0)),
    # middle diagonal, from the vertical wall down-right
    ((61.0, 100.5), (155.0, 152.7), (155.0, 154.5), (153.0, 157.0), (152.0, 156.1), (61.0, 105.5)),
    # bottom diagonal, from (105, 157) to the bottom border
    ((104.5, 157.0), (108.0, 157.0), (109.0, 159.0), (77.2, 197.0), (71.2, 197.0), (102.0, 160.0)),
)

MAZE_POLYGONS: tuple[np.ndarray, ...] = tuple(np.array(p) * BITMAP_SCALE for p in _BITMAP_POLYGONS)
"""Wall polygons in map units."""
WALL_SEGMENTS: np.ndarray = np.concatenate([np.concatenate([p, np.roll(p, -1, axis=0)], axis=1) for p in MAZE_POLYGONS])
"""(n, 4) wall edges ``x0, y0, x1, y1`` in map units: what the robot and the lasers collide with."""


class WallGeometry:
    """Wall segments with their per-edge constants computed once (start points, edge vectors, squared lengths).

    The robot queries the walls four times per step (three lasers and one collision test); with about fifty
    edges numpy's per-call overhead dominates, so everything that does not depend on the robot is kept here.
    """

    def __init__(self, segments: np.ndarray) -> None:
        segments = np.asarray(segments, dtype=np.float64)
        self.start_x, self.start_y = segments[:, 0].copy(), segments[:, 1].copy()
        self.edge_x, self.edge_y = segments[:, 2] - self.start_x, segments[:, 3] - self.start_y
        self.length2 = np.maximum(self.edge_x * self.edge_x + self.edge_y * self.edge_y, 1e-12)

    def cast_rays(self, origin: np.ndarray, angles: np.ndarray, max_range: float) -> np.ndarray:
        """Distance from ``origin`` along each direction in ``angles`` to the nearest edge, capped at ``max_range``.

        Vectorised over rays x edges: solves ``origin + t d = a + u (b - a)`` for all pairs at once.
        """
        cos, sin = np.cos(angles)[:, None], np.sin(angles)[:, None]  # (R, 1)
        offset_x, offset_y = self.start_x - origin[0], self.start_y - origin[1]  # (S,)
        denominator = cos * self.edge_y - sin * self.edge_x  # (R, S)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (offset_x * self.edge_y - offset_y * self.edge_x) / denominator
            u = (offset_x * sin - offset_y * cos) / denominator
        hit = (np.abs(denominator) > 1e-12) & (t >= 0.0) & (u >= 0.0) & (u <= 1.0)
        return np.minimum(np.where(hit, t, np.inf).min(axis=1), max_range)

    def distances(self, point: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Closest point on each edge to ``point`` (x and y, each (S,)) and its distance (S,)."""
        t = ((point[0] - self.start_x) * self.edge_x + (point[1] - self.start_y) * self.edge_y) / self.length2
        t = np.minimum(np.maximum(t, 0.0), 1.0)
        closest_x, closest_y = self.start_x + t * self.edge_x, self.start_y + t * self.edge_y
        dx, dy = closest_x - point[0], closest_y - point[1]
        return closest_x, closest_y, np.sqrt(dx * dx + dy * dy)


WALLS = WallGeometry(WALL_SEGMENTS)
"""The maze's walls, ready for the robot's per-step queries."""


class HardMazeEnv(QDTaskEnv):
    """Deceptive hard maze with a differential-drive robot (TAXONS / SERENE / STAX's HardMaze).

    Observation: the three laser ranges in [0, 100] (raw, as the authors feed them to the controller) and
    the left / right bumpers in {0, 1}. Action: left and right wheel speeds in [-1, 1] (map units per step).
    Reward: at the last step only, ``(50 - d) / 50`` inside a goal area (distance ``d`` to its centre), else 0
    (authors' ``reward_distance_multigoal``). Episodes are truncated after 2000 steps; the robot starts at the
    same pose every episode, so the env is deterministic. ``info["outcome"]`` is the robot's (x, y).

    Deviations from fastsim: walls are polygons traced from the bitmap (about one bitmap pixel = 3 map units
    of error), a colliding move keeps the old position with the new heading, bumpers are front-left /
    front-right contacts. Motion is fastsim's arc model of a differential drive with wheel distance 20.

    :param render_mode: ``"rgb_array"`` (200 x 200 top-down image, the authors' render size) or None.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}
    spec_qd = QDTaskSpec(
        outcome_bounds=((0.0, MAP_SIZE), (0.0, MAP_SIZE)),
        reward_areas=("goal", "inner_goal"),
        controller="mlp",
        controller_hidden=(5, 5),
        max_steps=MAX_STEPS,
        description="Differential-drive robot with 3 rangefinders and 2 bumpers in fastsim's deceptive hard maze.",
    )

    def __init__(self, render_mode: str | None = None):
        super().__init__(render_mode)
        low = np.zeros(5, dtype=np.float32)
        high = np.array([LASER_RANGE] * 3 + [1.0, 1.0], dtype=np.float32)
        self.observation_space = spaces.Box(low=low, high=high, dtype=np.float32)
        self.action_space = spaces.Box(low=-1.0, high=1.0, shape=(2,), dtype=np.float32)
        self.walls = WALLS
        self._pose = np.array(START_POSE, dtype=np.float64)
        self._bumpers = np.zeros(2)
        self._steps = 0
        self._background: np.ndarray | None = None

    # ------------------------------------------------------------------ dynamics
    def _collides(self, position: np.ndarray) -> bool:
        return bool(self.walls.distances(position)[2].min() < ROBOT_RADIUS)

    def _move(self, left: float, right: float) -> None:
        """fastsim's ``Posture::move``: arc of a differential drive; undo the translation on collision."""
        x, y, theta = self._pose
        alpha = (right - left) / WHEEL_DISTANCE
        if abs(alpha) < 1e-10:
            new_x, new_y = x + left * np.cos(theta), y + left * np.sin(theta)
        else:
            radius = (left + right) / (2.0 * alpha)
            new_x = x + radius * (np.sin(theta + alpha) - np.sin(theta))
            new_y = y - radius * (np.cos(theta + alpha) - np.cos(theta))
        new_theta = float(np.arctan2(np.sin(theta + alpha), np.cos(theta + alpha)))
        new_position = np.array([new_x, new_y])
        self._bumpers[:] = 0.0
        closest_x, closest_y, distances = self.walls.distances(new_position)
        if distances.min() < ROBOT_RADIUS:
            self._pose[2] = new_theta
            # bumpers: contacts ahead of the body, split by side (y points down: positive angles are the right)
            touching = distances < ROBOT_RADIUS
            for point_x, point_y in zip(closest_x[touching], closest_y[touching]):
                relative = np.arctan2(point_y - new_y, point_x - new_x) - new_theta
                relative = np.arctan2(np.sin(relative), np.cos(relative))
                if -np.pi / 2 <= relative <= 0.0:
                    self._bumpers[0] = 1.0
                if 0.0 <= relative <= np.pi / 2:
                    self._bumpers[1] = 1.0
        else:
            self._pose[:] = (new_x, new_y, new_theta)

    def lasers(self) -> np.ndarray:
        """The three laser ranges from the robot's centre (libfastsim measures from the centre too)."""
        return self.walls.cast_rays(self._pose[:2], self._pose[2] + LASER_ANGLES, LASER_RANGE)

    def _observation(self) -> np.ndarray:
        return np.concatenate([self.lasers(), self._bumpers]).astype(np.float32)

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Put the robot at the start pose (the task has no randomness; ``seed`` only seeds ``np_random``)."""
        super().reset(seed=seed)
        self._pose = np.array(START_POSE, dtype=np.float64)
        self._bumpers = np.zeros(2)
        self._steps = 0
        return self._observation(), {"outcome": self.outcome(), "reward_area": -1}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (2,):
            raise ValueError(f"action must have shape (2,), got {action.shape}")
        left, right = np.clip(action, -1.0, 1.0) * MAX_WHEEL_SPEED
        self._move(float(left), float(right))
        self._steps += 1
        truncated = self._steps >= MAX_STEPS
        reward, area = area_reward(self._pose[:2], GOAL_CENTERS, GOAL_RADII) if truncated else (0.0, -1)
        return self._observation(), reward, False, truncated, {"outcome": self.outcome(), "reward_area": area}

    def outcome(self) -> np.ndarray:
        """Ground-truth outcome: the robot's (x, y) in map units."""
        return self._pose[:2].copy()

    def state_observation(self) -> np.ndarray:
        """Low-dimensional state: (x / 600, y / 600, cos heading, sin heading)."""
        x, y, theta = self._pose
        return np.array([x / MAP_SIZE, y / MAP_SIZE, np.cos(theta), np.sin(theta)], dtype=np.float32)

    def set_pose(self, x: float, y: float, theta: float) -> None:
        """Place the robot (tests, analysis); raises if the pose overlaps a wall."""
        if self._collides(np.array([x, y], dtype=np.float64)):
            raise ValueError(f"pose ({x}, {y}) overlaps a wall")
        self._pose = np.array([x, y, theta], dtype=np.float64)

    def render(self) -> np.ndarray | None:
        """Top-down 200 x 200 image: white floor, black walls, red goal areas, blue robot."""
        if self.render_mode != "rgb_array":
            return None
        scale = 1.0 / BITMAP_SCALE
        if self._background is None:
            background = blank_canvas(200, 200)
            paint_discs(background, GOAL_CENTERS * scale, GOAL_RADII * scale, (255, 0, 0))
            paint_polygons(background, [p * scale for p in MAZE_POLYGONS], (0, 0, 0))
            self._background = background
        image = self._background.copy()
        paint_discs(image, self._pose[None, :2] * scale, np.array([ROBOT_RADIUS * scale]), (0, 0, 255))
        return image
