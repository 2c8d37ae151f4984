"""HardMaze-v0's episodes as one compiled loop: rangefinders, bumpers, collisions, controller and move in numba.

:func:`qd.evaluation.run_episode` spends ~50 us per HardMaze step in small numpy calls (three rays cast
against the ~50 wall edges, a disc-against-edges test, a 5-5-5-2 MLP, the arc move), i.e. in the interpreter.
:class:`HardMazeKernel` runs whole episodes of a batch of genomes in one compiled function, without returning to
Python per step, and builds the same :class:`qd.evaluation.EvaluationResult` s.

The kernel repeats :class:`envs.hard_maze.HardMazeEnv` operation for operation, in the same order, on the
env's own constants and wall arrays (:data:`envs.hard_maze.WALLS`): the float32 rounding of the observation,
the controller and action scaling of :mod:`qd.fast_controller`, the clip, the arc move, the collision test and
its bumpers. Trigonometry that numpy does not take from the C library (``arctan2`` on AVX-512 CPUs) goes
through numpy's own loops (:mod:`qd.fast_numpy`). The trajectories, final poses and hence outcomes, states and
rewards are bit for bit ``run_episode``'s (the tests check that on random genomes).

The final state vector, the reward and the optional render come from a ``HardMazeEnv`` put at the final pose
(:meth:`~envs.hard_maze.HardMazeEnv.set_pose`): the env's own code, so they are exact too, ``render=True``
included.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from envs import hard_maze
from envs.hard_maze import (
    LASER_ANGLES,
    LASER_RANGE,
    MAX_WHEEL_SPEED,
    ROBOT_RADIUS,
    START_POSE,
    WALLS,
    WHEEL_DISTANCE,
    HardMazeEnv,
)
from envs.qd_task import area_reward
from qd.evaluation import EvaluationResult, final_state_result
from qd.fast_controller import ControllerKernel, _act, _margin
from qd.fast_numpy import COS, LIBM_COS, LIBM_SIN, SIN, _np_arctan2, _np_arctan2_n, _np_cos, _np_sin, _np_unary_n

__all__ = ["HardMazeKernel"]

_HALF_PI = np.pi / 2
"""The bumpers' quadrant limit, as the env writes it (``np.pi / 2``)."""
_PARALLEL = 1e-12
"""A ray and an edge closer to parallel than this never hit (``WallGeometry.cast_rays``)."""
_STRAIGHT = 1e-10
"""Below this turn rate the move is a straight line (``HardMazeEnv._move``)."""
_QUADRANT_SLACK = 1e-9
"""A contact bearing computed with the C library's trigonometry is trusted this far from a quadrant edge
(numpy's differs by ~1e-15)."""
_NEAR_SLACK = 10.0
"""The list of edges near a robot is made for this much more than the reach, and remade once the robot has
moved this far (per axis) from where it was made: at most one step in ten."""
_MARGIN = 1e-6
"""Slack (map units) of the bounding-box tests that skip far edges: rounding errors are ~1e-13 at map scale,
so a skipped edge is one the env's arithmetic would not hit or touch either."""


@njit(cache=True)
def _near_edges(walls: np.ndarray, x: float, y: float, reach: float, near: np.ndarray, g: int) -> int:
    """Indices (into ``near[g]``) of the edges whose bounding box comes within ``reach`` of (x, y) per axis; count."""
    count = 0
    for e in range(walls.shape[1]):
        near[g, count] = e
        count += (walls[6, e] >= x - reach) & (walls[5, e] <= x + reach) & (walls[8, e] >= y - reach) \
            & (walls[7, e] <= y + reach)
    return count


@njit(cache=True)
def _cast_rays(table: np.ndarray, walls: np.ndarray, x: float, y: float, theta: float, laser_angles: np.ndarray,
               max_range: float, near: np.ndarray, g: int, count: int, out: np.ndarray, trig: np.ndarray,
               scratch: np.ndarray) -> None:
    """``WallGeometry.cast_rays`` from (x, y) at heading ``theta``: the laser ranges in ``out``.

    Only the ``count`` edges of ``near[g]`` (those within the range) can be hit; of those, edges whose bounding box
    misses the ray's (grown by :data:`_MARGIN`) are skipped, the others go through the env's arithmetic. The
    nearest hit is the smallest ``t``, so an edge is only finished when its ``t`` beats the best so far (the
    result is the same minimum, capped at the range). The angles' sines and cosines are left in ``trig``.
    """
    rays = laser_angles.size
    for r in range(rays):
        trig[r] = theta + laser_angles[r]
    if table[LIBM_COS] and table[LIBM_SIN]:
        for r in range(rays):
            trig[rays + r] = math.cos(trig[r])
            trig[2 * rays + r] = math.sin(trig[r])
    else:  # numpy evaluates cos and sin on the array of the rays' angles: one loop call each
        address = trig.ctypes.data
        _np_unary_n(table, COS, address, address + 8 * rays, rays, scratch)
        _np_unary_n(table, SIN, address, address + 16 * rays, rays, scratch)
    for r in range(rays):
        cos, sin = trig[rays + r], trig[2 * rays + r]
        end_x, end_y = x + max_range * cos, y + max_range * sin
        ray_low_x, ray_high_x = min(x, end_x) - _MARGIN, max(x, end_x) + _MARGIN
        ray_low_y, ray_high_y = min(y, end_y) - _MARGIN, max(y, end_y) + _MARGIN
        best = max_range  # min over hits, capped at the range
        for k in range(count):
            e = near[g, k]
            if walls[6, e] < ray_low_x or walls[5, e] > ray_high_x or walls[8, e] < ray_low_y \
                    or walls[7, e] > ray_high_y:
                continue
            edge_x, edge_y = walls[2, e], walls[3, e]
            denominator = cos * edge_y - sin * edge_x
            if abs(denominator) > _PARALLEL:
                offset_x, offset_y = walls[0, e] - x, walls[1, e] - y
                t = (offset_x * edge_y - offset_y * edge_x) / denominator
                if t >= 0.0 and t < best:
                    u = (offset_x * sin - offset_y * cos) / denominator
                    if u >= 0.0 and u <= 1.0:
                        best = t
        out[r] = best


@njit(cache=True)
def _arc(table: np.ndarray, x: float, y: float, theta: float, sin_theta: float, cos_theta: float, left: float,
         right: float, wheel_distance: float, scratch: np.ndarray,
         values: np.ndarray) -> tuple[float, float, float, float]:
    """First half of ``HardMazeEnv._move``: the arc's end point, and sin / cos of the turned heading.

    ``sin_theta`` and ``cos_theta`` are ``np.sin`` and ``np.cos`` of the heading ``theta``.
    """
    alpha = (right - left) / wheel_distance
    turned = theta + alpha
    sin_turned = _np_sin(table, turned, scratch, values)
    cos_turned = _np_cos(table, turned, scratch, values)
    if abs(alpha) < _STRAIGHT:
        new_x = x + left * cos_theta
        new_y = y + left * sin_theta
    else:
        radius = (left + right) / (2.0 * alpha)
        new_x = x + radius * (sin_turned - sin_theta)
        new_y = y - radius * (cos_turned - cos_theta)
    return new_x, new_y, sin_turned, cos_turned


@njit(cache=True)
def _contact_angle(table: np.ndarray, dx: float, dy: float, theta: float, scratch: np.ndarray,
                   values: np.ndarray) -> float:
    """The env's ``arctan2(sin(a), cos(a))`` of ``a = arctan2(dy, dx) - theta``: a contact's bearing.

    Only its quadrant matters (the bumpers), so the C library's functions (a few ulps from numpy's) decide
    unless the bearing is within :data:`_QUADRANT_SLACK` of a quadrant edge; then numpy's loops decide.
    """
    relative = math.atan2(dy, dx) - theta
    relative = math.atan2(math.sin(relative), math.cos(relative))
    if min(abs(relative + _HALF_PI), abs(relative), abs(relative - _HALF_PI)) > _QUADRANT_SLACK:
        return relative
    relative = _np_arctan2(table, dy, dx, scratch, values) - theta
    return _np_arctan2(table, _np_sin(table, relative, scratch, values), _np_cos(table, relative, scratch, values),
                       scratch, values)


@njit(cache=True)
def _settle(table: np.ndarray, walls: np.ndarray, near: np.ndarray, count: int, poses: np.ndarray,
            bumpers: np.ndarray, g: int, new_x: float, new_y: float, new_theta: float, robot_radius: float,
            scratch: np.ndarray, values: np.ndarray) -> None:
    """Second half of ``HardMazeEnv._move`` for genome ``g``: on a collision keep the position, take the heading,
    set the bumpers.

    Only the ``count`` edges of ``near[g]`` (those near the old position) whose bounding box, grown by the radius
    and :data:`_MARGIN`, holds the new position can touch the robot; they go through the env's arithmetic.
    """
    bumpers[g, 0], bumpers[g, 1] = 0.0, 0.0
    reach = robot_radius + _MARGIN
    collided = False
    for k in range(count):
        e = near[g, k]
        if new_x < walls[5, e] - reach or new_x > walls[6, e] + reach or new_y < walls[7, e] - reach \
                or new_y > walls[8, e] + reach:
            continue
        start_x, start_y, edge_x, edge_y = walls[0, e], walls[1, e], walls[2, e], walls[3, e]
        t = ((new_x - start_x) * edge_x + (new_y - start_y) * edge_y) / walls[4, e]
        t = min(max(t, 0.0), 1.0)
        closest_x, closest_y = start_x + t * edge_x, start_y + t * edge_y
        dx, dy = closest_x - new_x, closest_y - new_y
        if math.sqrt(dx * dx + dy * dy) < robot_radius:
            collided = True
            # bumpers: contacts ahead of the body, split by side (y points down: positive angles are the right)
            relative = _contact_angle(table, closest_x - new_x, closest_y - new_y, new_theta, scratch, values)
            if -_HALF_PI <= relative <= 0.0:
                bumpers[g, 0] = 1.0
            if 0.0 <= relative <= _HALF_PI:
                bumpers[g, 1] = 1.0
    if collided:
        poses[g, 2] = new_theta
    else:
        poses[g, 0], poses[g, 1], poses[g, 2] = new_x, new_y, new_theta


@njit(cache=True)
def _run_batch(table: np.ndarray, genomes: np.ndarray, sizes: np.ndarray, low: np.ndarray, span: np.ndarray,
               bounded: bool, walls: np.ndarray, laser_angles: np.ndarray, laser_range: float, robot_radius: float,
               wheel_distance: float, max_wheel_speed: float, start_pose: np.ndarray, exact: bool,
               trajectories: np.ndarray, poses: np.ndarray) -> int:
    """Every genome's episode, all in lockstep: the (x, y) after each step into ``trajectories``, the final pose
    into ``poses``. Returns how many controller calls needed numpy's loops (:mod:`qd.fast_controller`).

    Lockstep lets numpy's SIMD ``exp`` and ``arctan2`` run once per step for the whole batch. The edges near a
    robot are listed for the lasers and the collision test (within the laser range, and within the radius plus
    a step of at most ``2 * max_wheel_speed`` for the move), with :data:`_NEAR_SLACK` to spare.
    """
    n, steps, rays = genomes.shape[0], trajectories.shape[1], laser_angles.size
    edges = walls.shape[1]
    # the lasers need the edges within their range, the move those within the radius plus a step
    reach = max(laser_range, robot_radius + 2.0 * max_wheel_speed) + _MARGIN
    straight = -1  # a laser along the heading gives np.cos / np.sin of the heading itself
    for r in range(rays):
        if laser_angles[r] == 0.0:
            straight = r
    obs = np.zeros((n, sizes[0]))
    actions = np.zeros((n, sizes[sizes.size - 1]))
    work = np.zeros((4, n * np.max(sizes)))
    margins = np.zeros((n, 2))
    bumpers = np.zeros((n, 2))
    near = np.zeros((n, edges), dtype=np.int64)  # edges within reach + _NEAR_SLACK of `anchors`
    counts = np.zeros(n, dtype=np.int64)
    anchors = np.zeros((n, 2))
    heading = np.zeros((n, 2))  # sin, cos of the heading
    arcs = np.zeros((5, n))  # new x, new y, sin and cos of the turned heading, new heading
    trig = np.zeros(3 * rays)
    lasers = np.zeros(rays)
    scratch = np.zeros(16, dtype=np.intp)
    values = np.zeros(4)
    for g in range(n):
        margins[g, 0], margins[g, 1] = _margin(genomes[g], sizes)
        poses[g, :] = start_pose
        anchors[g, 0], anchors[g, 1] = np.inf, np.inf
    fallbacks = 0
    for step in range(steps):
        # observations: the lasers and bumpers, rounded to float32 as the env returns them
        for g in range(n):
            x, y, theta = poses[g, 0], poses[g, 1], poses[g, 2]
            if not (abs(x - anchors[g, 0]) <= _NEAR_SLACK and abs(y - anchors[g, 1]) <= _NEAR_SLACK):
                counts[g] = _near_edges(walls, x, y, reach + _NEAR_SLACK, near, g)
                anchors[g, 0], anchors[g, 1] = x, y
            _cast_rays(table, walls, x, y, theta, laser_angles, laser_range, near, g, counts[g], lasers, trig,
                       scratch)
            if straight >= 0 and theta != 0.0:  # theta + 0.0 is theta (but for -0.0)
                heading[g, 0], heading[g, 1] = trig[2 * rays + straight], trig[rays + straight]
            else:
                heading[g, 0] = _np_sin(table, theta, scratch, values)
                heading[g, 1] = _np_cos(table, theta, scratch, values)
            for r in range(rays):
                obs[g, r] = np.float64(np.float32(lasers[r]))
            for b in range(2):
                obs[g, rays + b] = np.float64(np.float32(bumpers[g, b]))
        fallbacks += _act(table, genomes, margins, sizes, obs, low, span, bounded, actions, work, scratch, exact)
        for g in range(n):  # the env clips the action, then moves
            left = min(max(actions[g, 0], -1.0), 1.0) * max_wheel_speed
            right = min(max(actions[g, 1], -1.0), 1.0) * max_wheel_speed
            arcs[0, g], arcs[1, g], arcs[2, g], arcs[3, g] = _arc(table, poses[g, 0], poses[g, 1], poses[g, 2],
                                                                  heading[g, 0], heading[g, 1], left, right,
                                                                  wheel_distance, scratch, values)
        _np_arctan2_n(table, arcs[2], arcs[3], arcs[4], n, scratch)
        for g in range(n):
            _settle(table, walls, near, counts[g], poses, bumpers, g, arcs[0, g], arcs[1, g], arcs[4, g],
                    robot_radius, scratch, values)
            trajectories[g, step, 0], trajectories[g, step, 1] = poses[g, 0], poses[g, 1]
    return fallbacks


class HardMazeKernel(ControllerKernel):
    """Evaluates HardMaze-v0 genomes with compiled episodes; results equal :func:`qd.evaluation.run_episode`'s.

    Args:
        table: numpy's loops (:func:`qd.fast_numpy.numpy_loops`).
        exact_controller: Always compute the controller with numpy's loops (slower; for tests).
    """

    env_class = HardMazeEnv

    def __init__(self, table: np.ndarray, *, exact_controller: bool = False) -> None:
        super().__init__(table, exact_controller=exact_controller)
        end_x, end_y = WALLS.start_x + WALLS.edge_x, WALLS.start_y + WALLS.edge_y
        self._walls = np.ascontiguousarray(np.stack([
            WALLS.start_x, WALLS.start_y, WALLS.edge_x, WALLS.edge_y, WALLS.length2,  # the env's arrays
            np.minimum(WALLS.start_x, end_x), np.maximum(WALLS.start_x, end_x),  # bounding boxes
            np.minimum(WALLS.start_y, end_y), np.maximum(WALLS.start_y, end_y),
        ]))
        self._laser_angles = np.ascontiguousarray(LASER_ANGLES, dtype=np.float64)
        self._start_pose = np.asarray(START_POSE, dtype=np.float64)

    def run(self, genomes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The trajectories (n, T, 2) and final poses (n, 3) of ``genomes`` (n, genome_size)."""
        genomes = self._checked(genomes)
        trajectories = np.empty((len(genomes), self.max_steps, 2))
        poses = np.empty((len(genomes), 3))
        self.fallbacks += _run_batch(self._table, genomes, self.sizes, self._low, self._span, self._bounded,
                                     self._walls, self._laser_angles, float(LASER_RANGE), float(ROBOT_RADIUS),
                                     float(WHEEL_DISTANCE), float(MAX_WHEEL_SPEED), self._start_pose, self._exact,
                                     trajectories, poses)
        return trajectories, poses

    def evaluate(self, genomes: np.ndarray, *, render: bool = False) -> list[EvaluationResult]:
        """One :class:`~qd.evaluation.EvaluationResult` per row of ``genomes``, in order."""
        trajectories, poses = self.run(genomes)
        env = self._env(render)
        results = []
        for trajectory, pose in zip(trajectories, poses):
            env.set_pose(*pose)
            reward, area = area_reward(pose[:2], hard_maze.GOAL_CENTERS, hard_maze.GOAL_RADII)
            results.append(final_state_result(env, trajectory, reward, area, render=render))
        return results
