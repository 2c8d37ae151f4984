"""Curling-v0 and AntMaze-v0 episodes of a batch of genomes stepped in lockstep, one controller pass per step.

:func:`qd.evaluation.run_episode` goes through Gymnasium's wrappers, the env's ``step`` and a per-genome MLP at
every step. :class:`MujocoBatchKernel` keeps one ``MjData`` per genome of the batch (all on the env's own
``MjModel``), starts each from a copy of the env's state after ``reset(seed=0)``, and at every step computes
the whole batch's observations with numpy, the whole batch's actions with one call of the compiled controller
of :mod:`qd.fast_controller` (the float32 actions of ``MLPController`` and ``run_episode``'s scaling, bit for
bit), clips them as the env does and calls ``mujoco.mj_step`` once per genome. Nothing else runs per step, so
an episode costs little more than MuJoCo's own stepping.

The results are exactly ``run_episode``'s: same float operations in the same order, and MuJoCo is
deterministic given the same ``MjData`` (``mj_copyData`` copies all of it, warm start included). The final
state vector and the optional render come from the env's own methods on a copy of the final ``MjData``, so
``render=True`` is exact too.

``mujoco.rollout`` (MuJoCo 3.2+) would step a batch without the Python loop, but it is open loop (the
controller needs each step's state) and its state vector leaves out the solver's warm start, so stepping from
it is not bit for bit ``mj_step``'s; it is not used. The speed-up is bounded by MuJoCo's own time: Curling's
Python overhead was most of its episode, AntMaze's RK4 physics with contacts is most of its (see
``qd/speed_benchmark.py``).
"""

from __future__ import annotations

import time

import mujoco
import numpy as np

from envs import ant_maze, curling
from envs.ant_maze import FRAME_SKIP, POSITION_OFFSET, POSITION_SCALE, AntMazeEnv
from envs.curling import BALL_START, MAX_JOINT_SPEED, SUBSTEPS, CurlingEnv
from envs.qd_task import QDTaskEnv, area_reward
from qd.evaluation import EVALUATION_SEED, EvaluationResult, final_state_result
from qd.fast_controller import ControllerKernel, _act, _margin

__all__ = ["MujocoBatchKernel", "CurlingTask", "AntMazeTask"]


class CurlingTask:
    """What the batch kernel needs of ``CurlingEnv``: its observation, control, outcome and reward areas.

    Args:
        env: A ``CurlingEnv`` (its model and spaces).
    """

    env_class = CurlingEnv
    substeps = SUBSTEPS
    """MuJoCo steps per env step."""

    def __init__(self, env: CurlingEnv) -> None:
        joint = env.model.joint
        self._ball_qpos = [int(joint(name).qposadr[0]) for name in ("ball_x", "ball_y")]
        self._arm_qpos = [int(joint(name).qposadr[0]) for name in ("joint0", "joint1")]
        self._arm_qvel = [int(joint(name).dofadr[0]) for name in ("joint0", "joint1")]
        self._ball_start = np.asarray(BALL_START)
        self._obs_low, self._obs_high = env.observation_space.low, env.observation_space.high

    def observations(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        """``CurlingEnv._observation`` of every row: ball (x, y), arm angles and speeds, float32, clipped."""
        observation = np.concatenate([self.outcomes(qpos), qpos[:, self._arm_qpos], qvel[:, self._arm_qvel]],
                                     axis=1).astype(np.float32)
        return np.clip(observation, self._obs_low, self._obs_high)

    def controls(self, actions: np.ndarray) -> np.ndarray:
        """``CurlingEnv.step``'s ``ctrl`` for the actions (float32 values): joint speeds clipped to the motor limit."""
        return np.clip(actions, -MAX_JOINT_SPEED, MAX_JOINT_SPEED)

    def outcomes(self, qpos: np.ndarray) -> np.ndarray:
        """``CurlingEnv.outcome`` of every row: the ball's (x, y)."""
        return self._ball_start + qpos[:, self._ball_qpos]

    @staticmethod
    def reward(outcome: np.ndarray) -> tuple[float, int]:
        """The env's reward and area id at the last step for the final ``outcome``."""
        return area_reward(outcome, curling.GOAL_CENTERS, curling.GOAL_RADII)


class AntMazeTask:
    """What the batch kernel needs of ``AntMazeEnv``: its observation, control, outcome and reward areas.

    Args:
        env: An ``AntMazeEnv`` (its model and spaces).
    """

    env_class = AntMazeEnv
    substeps = FRAME_SKIP
    """MuJoCo steps per env step."""

    def __init__(self, env: AntMazeEnv) -> None:
        self._low, self._high = env.action_space.low, env.action_space.high

    def observations(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        """``AntMazeEnv._observation`` of every row: qpos with x, y normalised, then qvel."""
        qpos = qpos.copy()
        qpos[:, :2] = (qpos[:, :2] - POSITION_OFFSET) / POSITION_SCALE
        return np.concatenate([qpos, qvel], axis=1)

    def controls(self, actions: np.ndarray) -> np.ndarray:
        """``AntMazeEnv.step``'s ``ctrl`` for the actions (float32 values): clipped to the action box."""
        return np.clip(actions, self._low, self._high)

    def outcomes(self, qpos: np.ndarray) -> np.ndarray:
        """``AntMazeEnv.outcome`` of every row: the torso's (x, y)."""
        return qpos[:, :2].copy()

    @staticmethod
    def reward(outcome: np.ndarray) -> tuple[float, int]:
        """The env's reward and area id at the last step for the final ``outcome``."""
        return area_reward(outcome, ant_maze.GOAL_CENTERS, ant_maze.GOAL_RADII)


TASKS: dict[type[QDTaskEnv], type] = {CurlingEnv: CurlingTask, AntMazeEnv: AntMazeTask}
"""The MuJoCo tasks with a batch kernel, by env class."""


class MujocoBatchKernel(ControllerKernel):
    """Evaluates genomes of a MuJoCo QD task in lockstep; results equal :func:`qd.evaluation.run_episode`'s.

    Args:
        env_class: ``CurlingEnv`` or ``AntMazeEnv`` (a key of :data:`TASKS`).
        table: numpy's loops (:func:`qd.fast_numpy.numpy_loops`).
        exact_controller: Always compute the controller with numpy's loops (slower; for tests).

    Raises:
        KeyError: for another env class.
    """

    def __init__(self, env_class: type[QDTaskEnv], table: np.ndarray, *, exact_controller: bool = False) -> None:
        task_class = TASKS[env_class]  # KeyError for another env class, before any env is built
        super().__init__(table, exact_controller=exact_controller, env_class=env_class)
        env = self._env(False)
        self.task = task_class(env)
        self.stepping_seconds = 0.0
        """CPU seconds spent so far in the loop that sets the controls and calls ``mj_step`` (MuJoCo's share)."""
        self._model = env.model
        env.reset(seed=EVALUATION_SEED)
        self._start = mujoco.MjData(self._model)
        mujoco.mj_copyData(self._start, self._model, env.data)
        self._slots: list[mujoco.MjData] = []

    def _datas(self, n: int) -> list[mujoco.MjData]:
        """``n`` MjData, each a copy of the state after ``reset(seed=0)``."""
        while len(self._slots) < n:
            self._slots.append(mujoco.MjData(self._model))
        for data in self._slots[:n]:
            mujoco.mj_copyData(data, self._model, self._start)
        return self._slots[:n]

    def run(self, genomes: np.ndarray) -> tuple[np.ndarray, list[mujoco.MjData]]:
        """The trajectories (n, T, 2) of ``genomes`` (n, genome_size) and their final ``MjData``."""
        genomes = self._checked(genomes)
        n, model, task = len(genomes), self._model, self.task
        margins = np.array([_margin(genome, self.sizes) for genome in genomes]).reshape(n, 2)
        actions, work = np.empty((n, self.sizes[-1])), np.empty((4, n * int(np.max(self.sizes))))
        scratch = np.zeros(16, dtype=np.intp)
        datas = self._datas(n)
        qpos_views, qvel_views, ctrl_views = [d.qpos for d in datas], [d.qvel for d in datas], [d.ctrl for d in datas]
        qpos, qvel = np.empty((n, model.nq)), np.empty((n, model.nv))
        trajectories = np.empty((n, self.max_steps, 2))
        step = mujoco.mj_step
        for i in range(n):
            qpos[i], qvel[i] = qpos_views[i], qvel_views[i]
        for t in range(self.max_steps):
            obs = np.ascontiguousarray(task.observations(qpos, qvel), dtype=np.float64)
            self.fallbacks += _act(self._table, genomes, margins, self.sizes, obs, self._low, self._span,
                                   self._bounded, actions, work, scratch, self._exact)
            controls = task.controls(actions)
            start = time.process_time()
            for i in range(n):
                ctrl_views[i][:] = controls[i]
                step(model, datas[i], nstep=task.substeps)
                qpos[i], qvel[i] = qpos_views[i], qvel_views[i]
            self.stepping_seconds += time.process_time() - start
            trajectories[:, t] = task.outcomes(qpos)
        return trajectories, datas

    def evaluate(self, genomes: np.ndarray, *, render: bool = False) -> list[EvaluationResult]:
        """One :class:`~qd.evaluation.EvaluationResult` per row of ``genomes``, in order."""
        trajectories, datas = self.run(genomes)
        env = self._env(render)
        results = []
        for trajectory, data in zip(trajectories, datas):
            mujoco.mj_copyData(env.data, self._model, data)
            reward, area = self.task.reward(trajectory[-1])
            results.append(final_state_result(env, trajectory, reward, area, render=render))
        return results
