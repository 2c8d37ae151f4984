"""Evaluating genomes on Ray: batches of genomes as Ray tasks, on a local Ray instance or a cluster.

:class:`RayEvaluator` implements :class:`qd.evaluation.Evaluator`, so an algorithm's ask/tell loop (pyribs's
scheduler included) does not change: it hands a batch of genomes to ``evaluate`` and gets one
:class:`qd.evaluation.EvaluationResult` per genome back, in order. Each Ray task evaluates ``batch_size``
genomes with :func:`qd.evaluation.evaluate_genomes`, as a process-pool worker evaluates its chunk: on the
task's fast path when it has one, else with one env kept per worker process. Every episode starts from the
task's fixed seed, so the results are those of :class:`qd.evaluation.SerialEvaluator`.

Ray is optional: this module imports without it; the first :meth:`RayEvaluator.evaluate` (or
:meth:`RayEvaluator.start`) raises :class:`rl.ray_backend.RayUnavailableError` naming the install command.
"""

from __future__ import annotations

import math
import os
from typing import Any

import gymnasium as gym
import numpy as np

from qd.evaluation import EvaluationResult, evaluate_genomes


def evaluate_batch(spec: gym.envs.registration.EnvSpec, genomes: np.ndarray, render: bool,
                   fast: bool) -> list[EvaluationResult]:
    """What one Ray task runs: evaluate the rows of ``genomes`` in this worker, in order.

    The env's spec travels with the task and is registered here when the worker does not know its id (an env
    registered at run time by the driver, e.g. in a test); BLAS and torch use one thread, as the process pool's.
    """
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = "1"
    if spec.id not in gym.registry:
        gym.register(id=spec.id, entry_point=spec.entry_point, max_episode_steps=spec.max_episode_steps,
                     kwargs=spec.kwargs)
    return evaluate_genomes(spec, genomes, render=render, fast=fast)


class RayEvaluator:
    """Evaluates genomes as Ray tasks of ``batch_size`` genomes each.

    Ray starts on the first call: joining the cluster at ``address`` (then checking that every node imports
    the driver's version of the project), or a local instance with ``num_cpus`` CPUs; an instance already
    running in this process is used as it is. A task whose worker dies is resubmitted by Ray (``max_retries``):
    evaluations are pure functions of the genome, so a retry changes nothing.

    Args:
        env_id: The QD task.
        batch_size: Genomes per Ray task (more: less scheduling overhead; fewer: better balance).
        address: Ray cluster to join (``auto`` or ``HEAD:6379``); None starts a local Ray instance.
        num_cpus: CPUs of the local instance (None: all of this machine's).
        cpus_per_task: CPUs each task requests.
        max_retries: Times Ray resubmits a task whose worker died.
        fast: Tasks use the task's fast path when it has one (:mod:`qd.fast_evaluation`); None: unless the
            environment variable ``QD_FAST_EVALUATION`` is 0 (read here, on the driver).

    Raises:
        ValueError: when ``batch_size < 1``.
    """

    def __init__(self, env_id: str, batch_size: int = 16, *, address: str | None = None,
                 num_cpus: int | None = None, cpus_per_task: float = 1.0, max_retries: int = 3,
                 fast: bool | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        from qd.fast_evaluation import fast_path_enabled
        from rl.envs import ensure_registered

        self.env_id = env_id
        self.fast = fast_path_enabled(fast)
        self.batch_size = int(batch_size)
        self.address, self.num_cpus = address, num_cpus
        self.cpus_per_task, self.max_retries = cpus_per_task, max_retries
        self._spec = gym.spec(ensure_registered(env_id))
        self._task: Any = None
        self._spec_ref: Any = None
        self._started = False

    def start(self) -> None:
        """Connect to Ray (or start it) and check the cluster; :meth:`evaluate` calls it on first use.

        Raises:
            rl.ray_backend.RayBackendError: Ray is not installed, or the cluster cannot be reached or lacks the
                driver's version of the project.
        """
        if self._task is not None:
            return
        from rl.ray_backend import check_cluster_code, connect, require_ray

        ray = require_ray()
        self._started = connect(self.address, num_cpus=self.num_cpus)
        if not self._started:
            check_cluster_code()
        self._spec_ref = ray.put(self._spec)
        self._task = ray.remote(evaluate_batch).options(num_cpus=self.cpus_per_task, max_retries=self.max_retries)

    def evaluate(self, genomes: np.ndarray, *, render: bool = False) -> list[EvaluationResult]:
        """Evaluate every row of ``genomes`` in Ray tasks; results are in row order."""
        genomes = np.asarray(genomes, dtype=np.float64)
        if genomes.ndim != 2:
            raise ValueError(f"genomes must have shape (batch_size, genome_size), got {genomes.shape}.")
        if len(genomes) == 0:
            return []
        self.start()
        import ray

        chunks = np.array_split(genomes, math.ceil(len(genomes) / self.batch_size))
        batches = ray.get([self._task.remote(self._spec_ref, chunk, render, self.fast) for chunk in chunks])
        return [result for batch in batches for result in batch]

    def close(self) -> None:
        """Forget the tasks, and shut down the Ray instance this evaluator started (not one it joined)."""
        if self._started:
            import ray

            ray.shutdown()
        self._task = self._spec_ref = None
        self._started = False

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without its Ray handles (a checkpoint of the algorithm holding it); they are remade on use."""
        state = dict(self.__dict__)
        state.update(_task=None, _spec_ref=None, _started=False)
        return state
