"""RedundantArm-v0's episodes as one compiled loop: kinematics, legality check and controller in numba.

:func:`qd.evaluation.run_episode` spends most of an arm step in small numpy calls (forward kinematics of 20
joints, the self-collision test of 171 link pairs, a 20-5-5-20 MLP) twice per step. :class:`RedundantArmKernel`
runs whole episodes of a batch of genomes in compiled code, without returning to Python per step, and builds
the same :class:`qd.evaluation.EvaluationResult` s.

The kernel repeats :class:`envs.redundant_arm.RedundantArmEnv` operation for operation, in the same order, on
the env's own constants: the observation's clip and float32 rounding, the controller and action scaling of
:mod:`qd.fast_controller`, the two integration sub-steps, and ``is_legal`` (end-effector speed, arena, walls,
self-collision by :func:`envs.redundant_arm.self_collides`'s orientation tests), with the sequential cumulative
sums of :func:`envs.redundant_arm.forward_kinematics`. The end-effector speed takes a norm, which numpy
computes with BLAS ``ddot``: the plain ``dx * dx + dy * dy`` decides unless the speed is within
:data:`_SPEED_SLACK` of the limit, where numpy's own loop decides. Trajectories, final joint angles and hence
outcomes, states and rewards are bit for bit ``run_episode``'s (the tests check that on random genomes).

The state vector and the optional render come from a ``RedundantArmEnv`` given the final joint angles (its
own code, so exact too, ``render=True`` included); an episode ended by an illegal move earns no reward, as in
the env.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from envs import redundant_arm
from envs.qd_task import area_reward
from envs.redundant_arm import (
    BASE_ANGLE,
    DT,
    LINK_LENGTH,
    MAX_ANGLE,
    MAX_SPEED,
    ROOT,
    START_ANGLES,
    SUBSTEPS,
    WALLS,
    RedundantArmEnv,
)
from qd.evaluation import EvaluationResult, final_state_result
from qd.fast_controller import ControllerKernel, _act, _margin
from qd.fast_numpy import COS, LIBM_COS, LIBM_SIN, SIN, _np_dot, _np_unary_n

__all__ = ["RedundantArmKernel"]

_SPEED_SLACK = 1e-12
"""An end-effector speed computed with a plain sum of squares is trusted this far from the limit (numpy's
``ddot`` may differ in the last bit)."""
_COLLINEAR = 1e-12
"""Orientation below which two links count as collinear (``self_collides``)."""


@njit(cache=True)
def _kinematics(table: np.ndarray, angles: np.ndarray, root_x: float, root_y: float, base_angle: float,
                link_length: float, joints: np.ndarray, trig: np.ndarray, scratch: np.ndarray) -> None:
    """``forward_kinematics(angles)`` into ``joints`` (dof + 1, 2): the same sequential cumulative sums."""
    dof = angles.size
    total = 0.0
    for k in range(dof):
        total = angles[k] if k == 0 else total + angles[k]
        trig[k] = base_angle + total
    if table[LIBM_COS] and table[LIBM_SIN]:
        for k in range(dof):
            trig[dof + k] = math.cos(trig[k])
            trig[2 * dof + k] = math.sin(trig[k])
    else:  # numpy evaluates cos and sin on the array of absolute angles: one loop call each
        address = trig.ctypes.data
        _np_unary_n(table, COS, address, address + 8 * dof, dof, scratch)
        _np_unary_n(table, SIN, address, address + 16 * dof, dof, scratch)
    joints[0, 0], joints[0, 1] = root_x, root_y
    sum_x, sum_y = 0.0, 0.0
    for k in range(dof):
        step_x, step_y = link_length * trig[dof + k], link_length * trig[2 * dof + k]
        sum_x = step_x if k == 0 else sum_x + step_x
        sum_y = step_y if k == 0 else sum_y + step_y
        joints[k + 1, 0], joints[k + 1, 1] = root_x + sum_x, root_y + sum_y


@njit(cache=True)
def _orientation(px: float, py: float, qx: float, qy: float, rx: float, ry: float) -> float:
    """``self_collides``'s orientation of (p, q, r)."""
    return (qx - px) * (ry - py) - (qy - py) * (rx - px)


@njit(cache=True)
def _self_collides(joints: np.ndarray) -> bool:
    """:func:`envs.redundant_arm.self_collides`: two non-adjacent links cross, or are collinear and overlap."""
    links = joints.shape[0] - 1
    for i in range(links):
        ax, ay, bx, by = joints[i, 0], joints[i, 1], joints[i + 1, 0], joints[i + 1, 1]
        for j in range(i + 2, links):
            cx, cy, dx, dy = joints[j, 0], joints[j, 1], joints[j + 1, 0], joints[j + 1, 1]
            o1 = _orientation(ax, ay, bx, by, cx, cy)
            o2 = _orientation(ax, ay, bx, by, dx, dy)
            if o1 * o2 < 0:
                o3 = _orientation(cx, cy, dx, dy, ax, ay)
                o4 = _orientation(cx, cy, dx, dy, bx, by)
                if o3 * o4 < 0:  # proper crossing
                    return True
            if abs(o1) < _COLLINEAR and abs(o2) < _COLLINEAR:  # collinear: overlap along link i?
                ex, ey = bx - ax, by - ay
                length2 = ex * ex + ey * ey
                t_a = ((cx - ax) * ex + (cy - ay) * ey) / length2
                t_b = ((dx - ax) * ex + (dy - ay) * ey) / length2
                if max(t_a, t_b) >= 0.0 and min(t_a, t_b) <= 1.0:
                    return True
    return False


@njit(cache=True)
def _legal(table: np.ndarray, joints: np.ndarray, previous_end_x: float, previous_end_y: float,
           end_speed: float, walls: np.ndarray, substeps: int, max_speed: float, scratch: np.ndarray,
           values: np.ndarray) -> bool:
    """``RedundantArmEnv.is_legal`` of the pose whose joints are ``joints`` (``end_speed``: the last joint's
    current speed; the previous end effector at (``previous_end_x``, ``previous_end_y``))."""
    last = joints.shape[0] - 1
    values[0], values[1] = joints[last, 0] - previous_end_x, joints[last, 1] - previous_end_y
    speed = math.sqrt(values[0] * values[0] + values[1] * values[1]) / substeps + end_speed
    if abs(speed - max_speed) <= _SPEED_SLACK:  # numpy's norm decides
        square = _np_dot(table, values.ctypes.data, values.ctypes.data, 2, scratch, values[2:])
        speed = math.sqrt(square) / substeps + end_speed
    if speed > max_speed:
        return False
    lowest, highest = joints[0, 0], joints[0, 0]
    for k in range(last + 1):
        for c in range(2):
            lowest, highest = min(lowest, joints[k, c]), max(highest, joints[k, c])
    if lowest < 0.0 or highest >= 1.0:
        return False
    for k in range(last + 1):  # the authors test the joints only, not the links between them
        x, y = joints[k, 0], joints[k, 1]
        for w in range(walls.shape[0]):
            if walls[w, 0] < x and x < walls[w, 1] and walls[w, 2] < y and y < walls[w, 3]:
                return False
    return not _self_collides(joints)


@njit(cache=True)
def _run_batch(table: np.ndarray, genomes: np.ndarray, sizes: np.ndarray, low: np.ndarray, span: np.ndarray,
               bounded: bool, start_angles: np.ndarray, root: np.ndarray, base_angle: float, link_length: float,
               max_angle: float, dt: float, dt2: float, substeps: int, max_speed: float, walls: np.ndarray,
               exact: bool, trajectories: np.ndarray, lengths: np.ndarray, stopped: np.ndarray,
               final_angles: np.ndarray) -> int:
    """Every genome's episode: end-effector (x, y) after each step into ``trajectories`` (``lengths`` steps),
    whether an illegal move ended it into ``stopped``, the joint angles at the end into ``final_angles``.

    Returns how many controller calls needed numpy's loops (:mod:`qd.fast_controller`).
    """
    n, steps, dof = genomes.shape[0], trajectories.shape[1], start_angles.size
    obs = np.zeros((1, sizes[0]))
    actions = np.zeros((1, sizes[sizes.size - 1]))
    work = np.zeros((4, np.max(sizes)))
    margins = np.zeros((1, 2))
    angles, speeds, proposal = np.zeros(dof), np.zeros(dof), np.zeros(dof)
    joints, candidate = np.zeros((dof + 1, 2)), np.zeros((dof + 1, 2))
    trig = np.zeros(3 * dof)
    scratch = np.zeros(16, dtype=np.intp)
    values = np.zeros(5)
    fallbacks = 0
    for g in range(n):
        genome = genomes[g:g + 1]
        margins[0, 0], margins[0, 1] = _margin(genomes[g], sizes)
        angles[:] = start_angles
        speeds[:] = 0.0
        _kinematics(table, angles, root[0], root[1], base_angle, link_length, joints, trig, scratch)
        halted = False
        length = 0
        for step in range(steps):
            for k in range(dof):  # the observation: angles / pi, clipped, as float32
                obs[0, k] = np.float64(np.float32(min(max(angles[k] / max_angle, -1.0), 1.0)))
            fallbacks += _act(table, genome, margins, sizes, obs, low, span, bounded, actions, work, scratch, exact)
            for _ in range(substeps):
                for k in range(dof):
                    acceleration = min(max(actions[0, k], -1.0), 1.0)
                    proposal[k] = acceleration / 2 * dt2 + speeds[k] * dt + angles[k]
                _kinematics(table, proposal, root[0], root[1], base_angle, link_length, candidate, trig, scratch)
                if not _legal(table, candidate, joints[dof, 0], joints[dof, 1], speeds[dof - 1], walls, substeps,
                              max_speed, scratch, values):
                    halted = True
                    break
                for k in range(dof):
                    speeds[k] = (proposal[k] - angles[k]) / dt
                    angles[k] = proposal[k]
                joints[:, :] = candidate
            trajectories[g, step, 0], trajectories[g, step, 1] = joints[dof, 0], joints[dof, 1]
            length += 1
            if halted:
                break
        lengths[g], stopped[g] = length, halted
        final_angles[g, :] = angles
    return fallbacks


class RedundantArmKernel(ControllerKernel):
    """Evaluates RedundantArm-v0 genomes with compiled episodes; results equal :func:`qd.evaluation.run_episode`'s.

    Args:
        table: numpy's loops (:func:`qd.fast_numpy.numpy_loops`).
        exact_controller: Always compute the controller with numpy's loops (slower; for tests).
    """

    env_class = RedundantArmEnv

    def __init__(self, table: np.ndarray, *, exact_controller: bool = False) -> None:
        super().__init__(table, exact_controller=exact_controller)
        # (low x, high x, low y, high y) per wall, the sums computed as the env does (low + size)
        self._walls = np.ascontiguousarray(np.stack([WALLS[:, 0], WALLS[:, 0] + WALLS[:, 2], WALLS[:, 1],
                                                     WALLS[:, 1] + WALLS[:, 3]], axis=1))

    def run(self, genomes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """For ``genomes`` (n, genome_size): the trajectories (n, T, 2, valid up to each length), the episode
        lengths (n,), whether an illegal move stopped each episode (n,) and the final joint angles (n, dof)."""
        genomes = self._checked(genomes)
        n = len(genomes)
        trajectories = np.zeros((n, self.max_steps, 2))
        lengths = np.zeros(n, dtype=np.int64)
        stopped = np.zeros(n, dtype=np.bool_)
        final_angles = np.zeros((n, START_ANGLES.size))
        self.fallbacks += _run_batch(self._table, genomes, self.sizes, self._low, self._span, self._bounded,
                                     np.asarray(START_ANGLES, dtype=np.float64), np.asarray(ROOT, dtype=np.float64),
                                     float(BASE_ANGLE), float(LINK_LENGTH), float(MAX_ANGLE), float(DT),
                                     float(DT**2), int(SUBSTEPS), float(MAX_SPEED), self._walls, self._exact,
                                     trajectories, lengths, stopped, final_angles)
        return trajectories, lengths, stopped, final_angles

    def evaluate(self, genomes: np.ndarray, *, render: bool = False) -> list[EvaluationResult]:
        """One :class:`~qd.evaluation.EvaluationResult` per row of ``genomes``, in order."""
        trajectories, lengths, stopped, final_angles = self.run(genomes)
        env = self._env(render)
        results = []
        for trajectory, length, halted, angles in zip(trajectories, lengths, stopped, final_angles):
            env.angles = angles.copy()
            trajectory = trajectory[:length].copy()
            # the env pays at the last step of an episode that ran to the end, nothing after an illegal move
            reward, area = ((0.0, -1) if halted
                            else area_reward(trajectory[-1], redundant_arm.GOAL_CENTERS, redundant_arm.GOAL_RADII))
            results.append(final_state_result(env, trajectory, reward, area, render=render))
        return results
