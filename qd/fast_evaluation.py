"""Choosing the fast path of a QD task's evaluation: compiled or batched episodes with ``run_episode``'s results.

The evaluators of :mod:`qd.evaluation` run every genome's episode through the Gymnasium env, one Python call
per step. For the four tasks of TAXONS / SERENE / STAX there is a faster path that gives the same
:class:`~qd.evaluation.EvaluationResult` s, bit for bit:

- ``HardMaze-v0``: :class:`qd.fast_maze.HardMazeKernel` (numba: lasers, bumpers, collisions, controller, move);
- ``RedundantArm-v0``: :class:`qd.fast_arm.RedundantArmKernel` (numba: kinematics, legality, controller);
- ``Curling-v0`` and ``AntMaze-v0``: :class:`qd.fast_mujoco.MujocoBatchKernel` (a batch of ``MjData`` stepped in
  lockstep, one compiled controller call per step for the whole batch).

:func:`fast_kernel` returns the kernel of a registered task, or None when the task has none or its
registration changes the env the kernel reproduces (constructor arguments, a time limit shorter than
``spec_qd.max_steps``, extra wrappers: :func:`fast_class` decides), or when numpy's loops cannot be used here
(:class:`qd.fast_numpy.NumpyLoopsUnavailable`, with a warning); the evaluators then run the env.

The fast path is on by default. It is switched off per evaluator with ``fast=False`` (``SerialEvaluator``,
``ProcessPoolEvaluator``, ``evaluate_genomes``) or for the whole process with the environment variable
``QD_FAST_EVALUATION=0`` (also ``false``, ``no``, ``off``), which is how the command-line runs
(``python -m qd.stax ...``, ``qd.benchmark``) are switched. The first use of a numba kernel compiles it (tens
of seconds); the compiled code is cached next to the modules (``cache=True``), so later processes load it.
Kernels are kept per process (:func:`fast_kernel`) and hold envs and MuJoCo data: one thread at a time.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

from qd.evaluation import EvaluationResult

__all__ = ["FAST_EVALUATION_ENV", "FastKernel", "fast_class", "fast_kernel", "fast_path_enabled", "kernel_for_class"]

FAST_EVALUATION_ENV = "QD_FAST_EVALUATION"
"""Environment variable that switches the fast path off for the process when set to 0, false, no or off."""
_OFF = ("0", "false", "no", "off")


class FastKernel(Protocol):
    """A task's fast evaluation: the same results as ``run_episode`` for a batch of genomes."""

    genome_size: int
    """Genome length of the task's controller."""

    def evaluate(self, genomes: np.ndarray, *, render: bool = False) -> list[EvaluationResult]:
        """One result per row of ``genomes``, in order."""
        ...


def fast_path_enabled(fast: bool | None = None) -> bool:
    """``fast`` when given, else whether :data:`FAST_EVALUATION_ENV` leaves the fast path on (the default)."""
    if fast is not None:
        return bool(fast)
    return os.environ.get(FAST_EVALUATION_ENV, "1").strip().lower() not in _OFF


def _builders() -> dict[type, Callable[[np.ndarray, bool], FastKernel]]:
    """Kernel constructors by env class (imported here: numba and MuJoCo load only when a kernel is needed)."""
    from envs.ant_maze import AntMazeEnv
    from envs.curling import CurlingEnv
    from envs.hard_maze import HardMazeEnv
    from envs.redundant_arm import RedundantArmEnv

    def maze(table: np.ndarray, exact: bool) -> FastKernel:
        from qd.fast_maze import HardMazeKernel

        return HardMazeKernel(table, exact_controller=exact)

    def arm(table: np.ndarray, exact: bool) -> FastKernel:
        from qd.fast_arm import RedundantArmKernel

        return RedundantArmKernel(table, exact_controller=exact)

    def mujoco_task(env_class: type) -> Callable[[np.ndarray, bool], FastKernel]:
        def build(table: np.ndarray, exact: bool) -> FastKernel:
            from qd.fast_mujoco import MujocoBatchKernel

            return MujocoBatchKernel(env_class, table, exact_controller=exact)

        return build

    return {HardMazeEnv: maze, RedundantArmEnv: arm, CurlingEnv: mujoco_task(CurlingEnv),
            AntMazeEnv: mujoco_task(AntMazeEnv)}


def kernel_for_class(env_class: type, *, exact_controller: bool = False) -> FastKernel | None:
    """A new fast kernel for ``env_class`` (the class itself, not a subclass), or None.

    Args:
        env_class: The env class of the task.
        exact_controller: Compute every controller step with numpy's loops (slower; the tests use it to check
            the other path).
    """
    builder = _builders().get(env_class)
    if builder is None:
        return None
    from qd.fast_numpy import NumpyLoopsUnavailable, numpy_loops

    try:
        table = numpy_loops()
    except NumpyLoopsUnavailable as error:
        warnings.warn(f"QD fast evaluation is off: {error}", RuntimeWarning, stacklevel=2)
        return None
    return builder(table, exact_controller)


def _plain_registration(spec: gym.envs.registration.EnvSpec, max_steps: int) -> bool:
    """Whether ``gym.make(spec)`` builds the env class as it is: no kwargs, no shorter time limit, no wrappers."""
    additional: Any = getattr(spec, "additional_wrappers", ())
    return (not spec.kwargs and not additional
            and (spec.max_episode_steps is None or spec.max_episode_steps >= max_steps))


def fast_class(spec: gym.envs.registration.EnvSpec) -> type | None:
    """The env class of ``spec`` if it has a fast kernel and ``gym.make(spec)`` builds it as it is, else None
    (cheap: builds nothing)."""
    entry_point = spec.entry_point
    env_class = gym.envs.registration.load_env_creator(entry_point) if isinstance(entry_point, str) else entry_point
    task = getattr(env_class, "spec_qd", None)
    if (task is None or not isinstance(env_class, type) or env_class not in _builders()
            or not _plain_registration(spec, int(task.max_steps))):
        return None
    return env_class


_KERNELS: dict[tuple[str, Any], FastKernel | None] = {}
"""Kernels kept per process (they hold envs and MuJoCo data), by env id and entry point."""


def fast_kernel(spec: gym.envs.registration.EnvSpec) -> FastKernel | None:
    """The fast kernel of the task registered as ``spec`` (kept for the process), or None if it has none."""
    key = (spec.id, spec.entry_point)
    if key not in _KERNELS:
        env_class = fast_class(spec)
        _KERNELS[key] = None if env_class is None else kernel_for_class(env_class)
    return _KERNELS[key]
