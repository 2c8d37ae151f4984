"""Evaluating genomes: one episode per genome from the task's fixed start, serially or in worker processes.

Every evaluator implements the :class:`Evaluator` protocol (``evaluate(genomes, *, render) -> list``), so
an algorithm never knows where its episodes run; a Ray back end only has to implement the same method.

Fast path: for the tasks that have one (HardMaze-v0, RedundantArm-v0, Curling-v0, AntMaze-v0; see
:mod:`qd.fast_evaluation`) the evaluators run whole batches of episodes in compiled or batched kernels instead
of stepping the Gymnasium env, with the same results bit for bit (:func:`run_episode` stays the reference).
It is selected automatically; ``fast=False`` on :class:`SerialEvaluator`, :class:`ProcessPoolEvaluator` or
:func:`evaluate_genomes` switches it off, and so does the environment variable ``QD_FAST_EVALUATION=0`` for
the whole process (``fast=None``, the default, reads it).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np

from qd.genome import MLPController

OBSERVATION_SIZE = 64
"""Side of the grayscale image of the final state (TAXONS's 64x64 observation)."""
EVALUATION_SEED = 0
"""Every evaluation resets with this seed: the tasks start from one fixed state (spec, "Tasks")."""


class NotAQDTaskError(ValueError):
    """Raised for an env that does not expose the ``spec_qd`` attribute of a QD task."""


@dataclass
class EvaluationResult:
    """What one episode of one genome produced."""

    reward: float
    """Sum of the (sparse) rewards of the episode."""
    reward_area: int
    """Id of the reward area reached at the end of the episode, -1 for none."""
    outcome: np.ndarray
    """Final ground-truth outcome (position), shape (2,)."""
    trajectory: np.ndarray
    """Ground-truth outcome after every step, shape (T, 2)."""
    observation: np.ndarray | None
    """Final render as 64x64 grayscale float32 in [0, 1]; None unless asked for."""
    state: np.ndarray
    """Low-dimensional vector of the final state (``env.unwrapped.state_observation()``)."""


def _env_spec(env_id: str) -> gym.envs.registration.EnvSpec:
    """Gymnasium's spec of ``env_id``, registering the package that provides it first."""
    from rl.envs import ensure_registered

    return gym.spec(ensure_registered(env_id))


def task_spec(env_id: str) -> Any:
    """The env class's ``spec_qd`` (an ``envs.qd_task.QDTaskSpec``), read without building the env.

    Raises:
        rl.envs.UnknownEnvError: for an unregistered id (the message lists the closest ids).
        NotAQDTaskError: when the env class has no ``spec_qd`` attribute.
    """
    spec = _env_spec(env_id)
    entry_point = spec.entry_point
    env_class = gym.envs.registration.load_env_creator(entry_point) if isinstance(entry_point, str) else entry_point
    task = getattr(env_class, "spec_qd", None)
    if task is None:
        raise NotAQDTaskError(f"Environment {env_id!r} is not a QD task: its class has no 'spec_qd' attribute.")
    return task


def make_task_env(env_id: str | gym.envs.registration.EnvSpec, *, render: bool = False) -> gym.Env:
    """A fresh env of the task, with ``render_mode="rgb_array"`` when images are needed."""
    spec = env_id if isinstance(env_id, gym.envs.registration.EnvSpec) else _env_spec(env_id)
    return gym.make(spec, render_mode="rgb_array" if render else None)


def to_observation(frame: np.ndarray) -> np.ndarray:
    """An rgb_array frame as a 64x64 grayscale float32 image in [0, 1]."""
    from PIL import Image

    image = Image.fromarray(np.asarray(frame, dtype=np.uint8)).convert("L")
    image = image.resize((OBSERVATION_SIZE, OBSERVATION_SIZE), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.float32) / 255.0


class _ActionScaler:
    """Maps vectors in [-1, 1] onto a Box action space (identity when the Box is unbounded).

    Built once per episode: the bounds checks would otherwise run at every one of up to 2000 steps.
    """

    def __init__(self, space: gym.spaces.Box) -> None:
        self.shape, self.dtype = space.shape, space.dtype
        self.bounded = bool(np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high)))
        self.low, self.span = space.low, space.high - space.low

    def __call__(self, unit: np.ndarray) -> np.ndarray:
        unit = unit.reshape(self.shape)
        if self.bounded:
            unit = self.low + (unit + 1.0) * 0.5 * self.span
        return unit.astype(self.dtype)


def final_state_result(env: gym.Env, trajectory: np.ndarray, reward: float, reward_area: int, *,
                       render: bool) -> EvaluationResult:
    """The :class:`EvaluationResult` of an episode whose final state ``env`` now holds: its state vector and,
    with ``render``, its image are read from the env (the compiled kernels set the env to their final state)."""
    return EvaluationResult(
        reward=0.0 + float(reward),
        reward_area=int(reward_area),
        outcome=trajectory[-1].copy(),
        trajectory=trajectory,
        observation=to_observation(env.render()) if render else None,
        state=np.asarray(env.unwrapped.state_observation(), dtype=np.float64),
    )


def run_episode(env: gym.Env, genome: np.ndarray, *, render: bool = False) -> EvaluationResult:
    """One episode of ``genome`` in ``env`` from the fixed start (seed 0), up to ``spec_qd.max_steps`` steps."""
    task = env.unwrapped.spec_qd
    genome = np.asarray(genome, dtype=np.float64)
    if task.controller == "open_loop":
        controller = None
    else:
        controller = MLPController(int(np.prod(env.observation_space.shape)), int(np.prod(env.action_space.shape)),
                                   task.controller_hidden)
        controller.set_params(genome)
    to_action = _ActionScaler(env.action_space)
    obs, info = env.reset(seed=EVALUATION_SEED)
    reward, outcomes = 0.0, []
    for _ in range(int(task.max_steps)):
        unit = genome if controller is None else controller.act(obs)
        obs, step_reward, terminated, truncated, info = env.step(to_action(unit))
        reward += float(step_reward)
        outcomes.append(np.asarray(info["outcome"], dtype=np.float64))
        if terminated or truncated:
            break
    observation = to_observation(env.render()) if render else None
    return EvaluationResult(
        reward=reward,
        reward_area=int(info.get("reward_area", -1)),
        outcome=outcomes[-1].copy(),
        trajectory=np.asarray(outcomes),
        observation=observation,
        state=np.asarray(env.unwrapped.state_observation(), dtype=np.float64),
    )


_ENVS: dict[tuple[str, bool], gym.Env] = {}
"""Envs kept per process: evaluation resets them, so building one per genome would be wasted work."""


def _cached_env(spec: gym.envs.registration.EnvSpec, render: bool) -> gym.Env:
    key = (spec.id, render)
    if key not in _ENVS:
        _ENVS[key] = make_task_env(spec, render=render)
    return _ENVS[key]


def evaluate_genomes(env_id: str | gym.envs.registration.EnvSpec, genomes: np.ndarray, *, render: bool = False,
                     fast: bool | None = None) -> list[EvaluationResult]:
    """Evaluate the rows of ``genomes`` in this process, in order: with the task's fast path when it has one
    (and ``fast`` or ``QD_FAST_EVALUATION`` allows it), else with an env built once per process and reused."""
    from qd.fast_evaluation import fast_kernel, fast_path_enabled

    spec = env_id if isinstance(env_id, gym.envs.registration.EnvSpec) else _env_spec(env_id)
    genomes = _check_genomes(genomes)
    kernel = fast_kernel(spec) if fast_path_enabled(fast) and len(genomes) else None
    if kernel is not None:
        return kernel.evaluate(genomes, render=render)
    return [run_episode(_cached_env(spec, render), genome, render=render) for genome in genomes]


def evaluate_genome(env_id: str, genome: np.ndarray, *, render: bool = False,
                    fast: bool | None = None) -> EvaluationResult:
    """Evaluate one genome in this process (see :func:`evaluate_genomes`)."""
    return evaluate_genomes(env_id, np.asarray(genome, dtype=np.float64)[None], render=render, fast=fast)[0]


@runtime_checkable
class Evaluator(Protocol):
    """Anything that turns a batch of genomes into one :class:`EvaluationResult` each, in order."""

    def evaluate(self, genomes: np.ndarray, *, render: bool = False) -> list[EvaluationResult]:
        """Evaluate every row of ``genomes``; results are in row order."""
        ...


def _check_genomes(genomes: np.ndarray) -> np.ndarray:
    genomes = np.asarray(genomes, dtype=np.float64)
    if genomes.ndim != 2:
        raise ValueError(f"genomes must have shape (batch_size, genome_size), got {genomes.shape}.")
    return genomes


class SerialEvaluator:
    """Evaluates genomes one after the other in this process (or as one batch, on the fast path).

    Args:
        env_id: The QD task.
        fast: Use the task's fast path when it has one (:mod:`qd.fast_evaluation`); None: unless the environment
            variable ``QD_FAST_EVALUATION`` is 0.
    """

    def __init__(self, env_id: str, *, fast: bool | None = None) -> None:
        from qd.fast_evaluation import fast_path_enabled

        self.env_id = env_id
        self._spec = _env_spec(env_id)
        self._envs: dict[bool, gym.Env] = {}
        self.fast = fast_path_enabled(fast)

    def evaluate(self, genomes: np.ndarray, *, render: bool = False) -> list[EvaluationResult]:
        """Evaluate every row of ``genomes``; results are in row order."""
        genomes = _check_genomes(genomes)
        if self.fast and len(genomes):
            from qd.fast_evaluation import fast_kernel

            kernel = fast_kernel(self._spec)
            if kernel is not None:
                return kernel.evaluate(genomes, render=render)
        if render not in self._envs:
            self._envs[render] = make_task_env(self._spec, render=render)
        return [run_episode(self._envs[render], genome, render=render) for genome in genomes]

    def close(self) -> None:
        """Close the envs."""
        for env in self._envs.values():
            env.close()
        self._envs.clear()


_WORKER_SPEC: gym.envs.registration.EnvSpec | None = None
"""The task of this worker process (set by the pool's initializer)."""


def _init_worker(spec: gym.envs.registration.EnvSpec) -> None:
    """Worker start-up: one BLAS/torch thread (the workers already fill the cores), and the env's spec."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = "1"
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    global _WORKER_SPEC
    _WORKER_SPEC = spec
    if spec.id not in gym.registry:
        # Under "spawn" the worker did not inherit a registration made at run time (e.g. by a test).
        gym.register(id=spec.id, entry_point=spec.entry_point, max_episode_steps=spec.max_episode_steps,
                     kwargs=spec.kwargs)


def _evaluate_in_worker(args: tuple[np.ndarray, bool, bool]) -> list[EvaluationResult]:
    genomes, render, fast = args
    return evaluate_genomes(_WORKER_SPEC, genomes, render=render, fast=fast)


class ProcessPoolEvaluator:
    """Evaluates genomes in a pool of worker processes, each with one torch/BLAS thread.

    The pool starts on the first call and is kept until :meth:`close`. Results are identical to
    :class:`SerialEvaluator`'s because every episode starts from the same seed.

    Args:
        env_id: The QD task.
        workers: Number of worker processes.
        mp_context: Multiprocessing start method; default ``"fork"`` where available (fast start, inherits
            registrations), else ``"spawn"``.
        fast: Workers use the task's fast path when it has one (:mod:`qd.fast_evaluation`), on chunks of
            genomes; None: unless the environment variable ``QD_FAST_EVALUATION`` is 0 (read here, in the parent).

    Raises:
        ValueError: when ``workers < 1``.
    """

    def __init__(self, env_id: str, workers: int, *, mp_context: str | None = None,
                 fast: bool | None = None) -> None:
        from qd.fast_evaluation import fast_class, fast_path_enabled

        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}.")
        self.env_id = env_id
        self.workers = int(workers)
        self.fast = fast_path_enabled(fast)
        self._spec = _env_spec(env_id)
        self._batched = self.fast and fast_class(self._spec) is not None
        methods = multiprocessing.get_all_start_methods()
        self._context = mp_context or ("fork" if "fork" in methods else "spawn")
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context(self._context),
                initializer=_init_worker, initargs=(self._spec,),
            )
        return self._pool

    def evaluate(self, genomes: np.ndarray, *, render: bool = False) -> list[EvaluationResult]:
        """Evaluate every row of ``genomes`` in the workers; results are in row order."""
        genomes = _check_genomes(genomes)
        if len(genomes) == 0:
            return []
        # chunks of genomes: one batch per worker on the fast path, smaller chunks (better balance) otherwise
        chunks = self.workers if self._batched else 4 * self.workers
        size = max(1, math.ceil(len(genomes) / chunks))
        tasks: Sequence[tuple] = [(genomes[i:i + size], render, self.fast) for i in range(0, len(genomes), size)]
        return [result for chunk in self._executor().map(_evaluate_in_worker, tasks) for result in chunk]

    def close(self) -> None:
        """Shut the workers down."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_pool"] = None
        return state
