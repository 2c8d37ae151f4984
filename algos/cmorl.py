"""C-MORL: the Pareto front by Pareto initialisation, then constrained Pareto extension.

Paper: Liu, Pan, Xu, Song, Bian, You, Chen. "C-MORL: Multi-Objective Reinforcement Learning through Efficient
Discovery of Pareto Front", ICLR 2025 (arXiv 2410.02236). Authors' code: github RuohLiuq/C-MORL (``morl/morl.py``,
``morl/mopg.py``, ``morl/ep.py``), built on PGMORL's.

- Stage 1, Pareto initialisation: one :class:`algos.moppo.MOPPO` per preference vector of the simplex grid
  (delta 0.2: six vectors for two objectives), each trained on ``init_fraction`` of the budget split evenly,
  in parallel processes; every ``eval_interval`` updates and at the end the policy is evaluated and enters
  the Pareto archive (:class:`rl.pareto.ParetoArchive`).
- Stage 2, Pareto extension, in rounds: select ``num_select`` archive policies by crowding distance (never
  the same objective vector twice); for each and each objective i, train from it for ``update_iter`` updates
  maximising objective i with the log-barrier of :mod:`algos.cmorl_barrier` on the others; every iterate is
  evaluated and offered to the archive. The rest of the budget is split over rounds, selections and
  objectives as the authors do.

Budgets count real env steps. The authors divide their budget by ``num_steps`` per update while each update
collects ``num_steps x num_processes`` steps (4 envs by default), so their stated 1.5M steps for
mo-hopper-2d are about 6M real steps; here ``-n`` is what the envs really step (evaluation episodes are not
counted, as in the authors' code).

Not here: the authors' code also has a CPO-style extension (``--update-method cmorl-cpo``, a trust-region step
with the constraint's dual); this module implements the interior-point (log-barrier, ``cmorl-ipo``) extension that
the default of the authors' ``--update-method`` and what the issue asks for.

Deliberate deviations, each where it is made: returns are evaluated undiscounted (``eval_gamma`` 1.0; the
authors' ``evaluation`` discounts with 0.99 although their scripts pass ``--raw``, "use undiscounted
evaluation"); float32 networks (the authors set float64); envs of one task are seeded ``seed + 1000 *
task`` instead of all tasks sharing ``seed``, so parallel tasks see different episodes.

Command line: ``python -m algos.cmorl --env mo-hopper-2obj-v5 -n 1000000`` writes a run folder with the
Pareto set (``pareto/<id>.zip``, loadable with ``MOPPO.load``), ``front.json``, ``metrics.json`` and
``front.png``; ``-i <run folder>`` resumes a killed run (finished tasks are kept, the others rerun from
their start, so the result is the one an uninterrupted run gives).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from rl.hyperparams import printable
from rl.mo_metrics import REFERENCE_POINTS, ReferencePointError, front_metrics
from rl.pareto import ParetoArchive
from rl.simplex import PreferenceVectorError, preference_grid

STAGES = ("init", "extension")
FRONT_FILE = "front.json"
METRICS_FILE = "metrics.json"
PICTURE_FILE = "front.png"
CONFIG_FILE = "config.json"
TASKS_DIR = "tasks"
POLICIES_DIR = "policies"
PARETO_DIR = "pareto"
OBJECTIVE_NAMES: dict[str, tuple[str, ...]] = {
    "mo-hopper-2obj-v5": ("forward speed", "jump height"),
    "mo-halfcheetah-v5": ("forward speed", "-control cost"),
    "mo-hopper-v5": ("forward speed", "jump height", "-control cost"),
    "deep-sea-treasure-v0": ("treasure", "-time"),
    "mo-halfcheetah-bullet-v0": ("forward speed", "-energy"),
    "mo-hopper-bullet-v0": ("forward speed", "jump height"),
}
"""Axis labels of the front pictures (mo-gymnasium's reward definitions; ``envs.mo_bullet``'s)."""


@dataclass(frozen=True)
class EvalSettings:
    """How a policy's objective vector is measured: mean undiscounted return over seeded episodes."""

    episodes: int = 5
    max_episode_steps: int | None = 500
    gamma: float = 1.0
    seed: int = 0


@dataclass(frozen=True)
class Task:
    """One unit of parallel work: train one MOPPO for ``n_updates`` updates and evaluate its iterates."""

    task_id: str
    stage: str
    env_id: str
    seed: int
    n_envs: int
    n_updates: int
    eval_interval: int
    weights: tuple[float, ...]
    target_objective: int | None
    parent: str | None
    moppo_kwargs: dict[str, Any]
    eval_settings: EvalSettings
    policies_dir: str


@dataclass
class Iterate:
    """An evaluated policy: an archive candidate."""

    policy_id: str
    objectives: list[float]
    stage: str
    weights: list[float]
    target_objective: int | None
    parent: str | None
    updates: int
    env_steps: int


def evaluate_policy_vector(model: Any, env_id: str, settings: EvalSettings) -> np.ndarray:
    """Mean (discounted by ``settings.gamma``) vector return of the deterministic policy over seeded episodes.

    Each episode resets a fresh env with seed ``settings.seed + k`` and caps it at ``max_episode_steps``;
    observations are normalised with the model's statistics (:meth:`MOPPO.predict_raw`).
    """
    from rl.envs import make_env

    kwargs: dict[str, Any] = {"disable_env_checker": True}
    if settings.max_episode_steps is not None:
        kwargs["max_episode_steps"] = settings.max_episode_steps
    env = make_env(env_id, **kwargs)
    total = None
    try:
        for episode in range(settings.episodes):
            obs, _ = env.reset(seed=settings.seed + episode)
            discount, done = 1.0, False
            episode_return = None
            while not done:
                action = model.predict_raw(obs, deterministic=True)
                obs, reward, terminated, truncated, _ = env.step(action)
                reward = np.asarray(reward, dtype=np.float64)
                episode_return = discount * reward if episode_return is None else episode_return + discount * reward
                discount *= settings.gamma
                done = terminated or truncated
            total = episode_return if total is None else total + episode_return
    finally:
        env.close()
    return total / settings.episodes


def run_task(task: Task) -> list[Iterate]:
    """Train the task's policy (from scratch or from ``parent``'s file) and return its evaluated iterates.

    Deterministic for a task: the same inputs give the same iterates, so a killed run reruns unfinished
    tasks and gets what it would have got.
    """
    import torch as th
    from stable_baselines3.common.callbacks import BaseCallback

    from algos.moppo import MOPPO
    from rl.hyperparams import linear_schedule
    from rl.vector_reward import find_mo_normalizer, make_mo_vec_env

    th.set_num_threads(1)
    kwargs = dict(task.moppo_kwargs)
    gamma = kwargs.get("gamma", 0.995)
    env = make_mo_vec_env(task.env_id, n_envs=task.n_envs, seed=task.seed, gamma=gamma,
                          max_episode_steps=task.eval_settings.max_episode_steps)
    if task.stage == "init" and kwargs.pop("linear_lr_decay", True):
        kwargs["learning_rate"] = linear_schedule(float(kwargs.get("learning_rate", 3e-4)))
    else:
        kwargs.pop("linear_lr_decay", None)
    model = MOPPO("MlpPolicy", env, weights=list(task.weights), target_objective=task.target_objective,
                  seed=task.seed, **kwargs)
    if task.parent is not None:
        parent = MOPPO.load(Path(task.policies_dir) / f"{task.parent}.zip", device="cpu")
        model.set_parameters(parent.get_parameters(), exact_match=True)
        normalizer = find_mo_normalizer(env)
        if normalizer is not None and parent.normalization is not None:
            normalizer.set_statistics(parent.normalization)
    steps_per_update = model.n_steps * task.n_envs
    iterates: list[Iterate] = []

    def evaluate(updates: int) -> None:
        policy_id = f"{task.task_id}-u{updates:03d}"
        model.save(Path(task.policies_dir) / f"{policy_id}.zip")
        objectives = evaluate_policy_vector(model, task.env_id, task.eval_settings)
        iterates.append(Iterate(policy_id, [float(v) for v in objectives], task.stage, list(task.weights),
                                task.target_objective, task.parent, updates, updates * steps_per_update))

    class EvaluateIterates(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.updates = -1

        def _on_rollout_start(self) -> None:  # called after each update (and once before the first)
            self.updates += 1
            if self.updates > 0 and self.updates % task.eval_interval == 0:
                evaluate(self.updates)

        def _on_step(self) -> bool:
            return True

    model.learn(task.n_updates * steps_per_update, callback=EvaluateIterates())
    if not iterates or iterates[-1].updates != task.n_updates:
        evaluate(task.n_updates)
    env.close()
    return iterates


def _work(task: Task) -> tuple[str, list[dict[str, Any]]]:
    return task.task_id, [asdict(iterate) for iterate in run_task(task)]


class CMORL:
    """The C-MORL driver: stage 1 and stage 2 over a Pareto archive of MOPPO policies.

    :param env_id: a multi-objective env id (mo-gymnasium's or ``mo-halfcheetah-bullet-v0``).
    :param seed: seed of everything (task ``k`` uses ``seed + 1000 * k``).
    :param n_envs: envs per policy (the authors' ``--num-processes`` 4).
    :param ref_point: hypervolume reference point (default: :data:`rl.mo_metrics.REFERENCE_POINTS`).
    :param workers: parallel processes for tasks.
    :param delta_weight: stage-1 simplex grid step (0.2).
    :param init_fraction: share of the budget for stage 1 (the authors' mo-hopper-2d: 1.0M of 1.5M).
    :param num_select: policies selected per extension round (5 for mo-hopper-2d).
    :param update_iter: updates per extension of one policy along one objective per round (20).
    :param eval_interval: stage-1 evaluation period in updates (10); stage 2 evaluates every update.
    :param archive_capacity: most policies the archive keeps (200, the authors' ``--policy-buffer``).
    :param eval_episodes, max_episode_steps, eval_gamma: evaluation (5 episodes capped at 500 steps).
    :param moppo_kwargs: keyword arguments of every MOPPO (``n_steps``, ``learning_rate``, ``beta``,
        ``barrier_t``, ...); ``linear_lr_decay`` (default True) decays stage 1's learning rate to 0.
    :param run_dir: where policies and task results go (a temporary folder when None).
    """

    def __init__(self, env_id: str, *, seed: int = 0, n_envs: int = 4, ref_point: Sequence[float] | None = None,
                 workers: int = 1, delta_weight: float = 0.2, init_fraction: float = 2 / 3, num_select: int = 5,
                 update_iter: int = 20, eval_interval: int = 10, archive_capacity: int = 200, eval_episodes: int = 5,
                 max_episode_steps: int | None = 500, eval_gamma: float = 1.0,
                 moppo_kwargs: dict[str, Any] | None = None, run_dir: str | os.PathLike | None = None) -> None:
        from rl.envs import make_env
        from rl.vector_reward import reward_dimension

        probe = make_env(env_id, disable_env_checker=True)
        self.n_objectives = reward_dimension(probe)
        probe.close()
        self.env_id = env_id
        self.seed = int(seed)
        self.n_envs = _positive_int("n_envs", n_envs)
        self.workers = _positive_int("workers", workers)
        if ref_point is None and env_id not in REFERENCE_POINTS:
            raise ReferencePointError(
                f"{env_id} has no reference point from the literature; pass one value per objective that every "
                f"policy worth keeping beats, e.g. --ref-point {' '.join(['-100'] * self.n_objectives)}"
            )
        if ref_point is None:
            ref_point = REFERENCE_POINTS[env_id]
        self.ref_point = np.asarray(ref_point, dtype=np.float64)
        if self.ref_point.shape != (self.n_objectives,):
            raise ReferencePointError(
                f"reference point has {self.ref_point.size} values but {env_id} has {self.n_objectives} objectives; "
                f"pass one value per objective, e.g. --ref-point {' '.join(['-100'] * self.n_objectives)}"
            )
        if not 0 < delta_weight <= 1:
            raise ValueError(f"delta_weight must be in (0, 1], got {delta_weight}")
        if not 0 < init_fraction <= 1:
            raise ValueError(f"init_fraction must be in (0, 1] (1 trains the stage-1 grid only), got {init_fraction}")
        self.delta_weight = float(delta_weight)
        self.init_fraction = float(init_fraction)
        self.num_select = _positive_int("num_select", num_select)
        self.update_iter = _positive_int("update_iter", update_iter)
        self.eval_interval = _positive_int("eval_interval", eval_interval)
        self.archive_capacity = _positive_int("archive_capacity", archive_capacity)
        self.eval_settings = EvalSettings(_positive_int("eval_episodes", eval_episodes),
                                          None if max_episode_steps is None else _positive_int(
                                              "max_episode_steps", max_episode_steps), float(eval_gamma), self.seed)
        self.moppo_kwargs = dict(moppo_kwargs or {})
        self._check_moppo_kwargs()
        self.weights_grid = preference_grid(self.n_objectives, self.delta_weight)
        self._temporary = None
        if run_dir is None:
            self._temporary = tempfile.TemporaryDirectory(prefix="cmorl-")
            run_dir = self._temporary.name
        self.run_dir = Path(run_dir)
        self.archive = self._new_archive()
        self.iterates: dict[str, Iterate] = {}
        self.history: list[dict[str, Any]] = []
        self.env_steps = 0
        self.total_timesteps = 0

    # ---- checks ----------------------------------------------------------------------------------------
    def _check_moppo_kwargs(self) -> None:
        """Build one MOPPO with the keyword arguments, so a bad value fails here and not in a worker."""
        from algos.moppo import MOPPO
        from rl.vector_reward import make_mo_vec_env

        kwargs = {key: value for key, value in self.moppo_kwargs.items() if key != "linear_lr_decay"}
        env = make_mo_vec_env(self.env_id, n_envs=self.n_envs, seed=self.seed)
        try:
            MOPPO("MlpPolicy", env, **kwargs)
        finally:
            env.close()

    def _new_archive(self) -> ParetoArchive:
        """The authors' EP: non-dominated policies at or above the reference point, at most capacity."""
        return ParetoArchive(self.n_objectives, capacity=self.archive_capacity, reference_point=self.ref_point)

    @property
    def steps_per_update(self) -> int:
        return int(self.moppo_kwargs.get("n_steps", 2048)) * self.n_envs

    # ---- plan ------------------------------------------------------------------------------------------
    def plan(self, total_timesteps: int) -> dict[str, int]:
        """The authors' budget split: stage-1 updates per policy, stage-2 updates per (policy, objective)."""
        total = int(total_timesteps)
        init_steps = int(total * self.init_fraction)
        init_updates = init_steps // len(self.weights_grid) // self.steps_per_update
        if init_updates < 1:
            raise ValueError(
                f"-n {total} is too small: stage 1 trains {len(self.weights_grid)} policies and each needs at least "
                f"one update of {self.steps_per_update} steps; pass -n >= "
                f"{math.ceil(len(self.weights_grid) * self.steps_per_update / self.init_fraction)}"
            )
        extension_updates = (total - init_steps) // self.num_select // self.steps_per_update // self.n_objectives
        return {"init_updates": init_updates, "extension_updates": extension_updates}

    def _tasks_dir(self) -> Path:
        return self.run_dir / TASKS_DIR

    def _policies_dir(self) -> Path:
        return self.run_dir / POLICIES_DIR

    def _task(self, task_id: str, stage: str, index: int, n_updates: int, weights: Sequence[float],
              target_objective: int | None, parent: str | None) -> Task:
        return Task(task_id, stage, self.env_id, self.seed + 1000 * index, self.n_envs, n_updates,
                    self.eval_interval if stage == "init" else 1, tuple(float(w) for w in weights), target_objective,
                    parent, self.moppo_kwargs, self.eval_settings, str(self._policies_dir()))

    # ---- running ---------------------------------------------------------------------------------------
    def _run_tasks(self, tasks: list[Task], on_done: Callable[[Task, list[Iterate]], None]) -> list[list[Iterate]]:
        """Run tasks (in parallel when ``workers`` > 1), reusing results saved by an earlier, killed run."""
        from rl.checkpoint import write_json_atomic

        results: dict[str, list[Iterate]] = {}
        todo = []
        for task in tasks:
            path = self._tasks_dir() / f"{task.task_id}.json"
            if path.is_file():
                saved = json.loads(path.read_text())
                if saved["task"] == _task_record(task):
                    results[task.task_id] = [Iterate(**row) for row in saved["iterates"]]
                    on_done(task, results[task.task_id])
                    continue
            todo.append(task)

        def finish(task: Task, rows: list[dict[str, Any]]) -> None:
            record = {"task": _task_record(task), "iterates": rows}
            write_json_atomic(self._tasks_dir() / f"{task.task_id}.json", record)
            results[task.task_id] = [Iterate(**row) for row in rows]
            on_done(task, results[task.task_id])

        if self.workers == 1 or len(todo) <= 1:
            for task in todo:
                finish(task, _work(task)[1])
        elif todo:
            by_id = {task.task_id: task for task in todo}
            with ProcessPoolExecutor(max_workers=min(self.workers, len(todo)), mp_context=get_context("spawn")) as pool:
                futures = [pool.submit(_work, task) for task in todo]
                for future in futures:
                    task_id, rows = future.result()
                    finish(by_id[task_id], rows)
        return [results[task.task_id] for task in tasks]

    def _offer(self, iterates_per_task: list[list[Iterate]]) -> None:
        """Offer iterates to the archive in task order (so the archive never depends on finishing order)."""
        candidates = [iterate for iterates in iterates_per_task for iterate in iterates]
        for iterate in candidates:
            self.iterates[iterate.policy_id] = iterate
        if candidates:
            self.archive.add(np.array([c.objectives for c in candidates]), [c.policy_id for c in candidates])

    def _record(self, stage: str, round_index: int) -> None:
        metrics = front_metrics(self.archive.points, self.ref_point)
        self.history.append({"stage": stage, "round": round_index, "env_steps": self.env_steps, **metrics})

    def learn(self, total_timesteps: int, progress_bar: bool = False) -> CMORL:
        """Run both stages on ``total_timesteps`` env steps; policies and task results go to ``run_dir``."""
        from tqdm.auto import tqdm

        plan = self.plan(total_timesteps)
        self.total_timesteps = int(total_timesteps)
        self._tasks_dir().mkdir(parents=True, exist_ok=True)
        self._policies_dir().mkdir(parents=True, exist_ok=True)
        self.archive = self._new_archive()
        self.iterates, self.history, self.env_steps = {}, [], 0
        bar = tqdm(total=self.total_timesteps, unit="step", disable=not progress_bar, desc=f"C-MORL {self.env_id}")

        def on_done(task: Task, iterates: list[Iterate]) -> None:
            steps = task.n_updates * self.steps_per_update
            self.env_steps += steps
            bar.update(steps)
            bar.set_postfix(stage=task.stage, archive=len(self.archive))

        try:
            init_tasks = [self._task(f"init-{k}", "init", k, plan["init_updates"], weights, None, None)
                          for k, weights in enumerate(self.weights_grid)]
            self._offer(self._run_tasks(init_tasks, on_done))
            self._record("init", 0)
            remaining, round_index = plan["extension_updates"], 0
            while remaining > 0:
                n_updates = min(self.update_iter, remaining)
                selected = self.archive.select(self.num_select)
                if not selected:
                    break
                tasks = []
                for rank, index in enumerate(selected):
                    parent = self.archive.payloads[index]
                    for objective in range(self.n_objectives):
                        task_index = len(init_tasks) + 1000 * (round_index + 1) + rank * self.n_objectives + objective
                        tasks.append(self._task(f"ext-{round_index}-{rank}-{objective}", "extension", task_index,
                                                n_updates, self.iterates[parent].weights, objective, parent))
                self._offer(self._run_tasks(tasks, on_done))
                round_index += 1
                remaining -= n_updates
                self._record("extension", round_index)
        finally:
            bar.close()
        return self

    # ---- results ---------------------------------------------------------------------------------------
    def pareto_front(self) -> list[dict[str, Any]]:
        """The archive: one dict per policy with its objectives, stage, preference and policy file."""
        front = []
        for point, policy_id in zip(self.archive.points, self.archive.payloads, strict=True):
            iterate = self.iterates[policy_id]
            front.append({**asdict(iterate), "objectives": [float(v) for v in point],
                          "file": f"{PARETO_DIR}/{policy_id}.zip"})
        return front

    def metrics(self) -> dict[str, Any]:
        """Hypervolume, expected utility, sparsity and cardinality of the archive (rl.mo_metrics)."""
        return {**front_metrics(self.archive.points, self.ref_point), "reference_point": self.ref_point.tolist(),
                "env_steps": self.env_steps}

    def policy(self, policy_id: str) -> Any:
        """Load one archive policy as a MOPPO model."""
        from algos.moppo import MOPPO

        for folder in (self.run_dir / PARETO_DIR, self._policies_dir()):
            path = folder / f"{policy_id}.zip"
            if path.is_file():
                return MOPPO.load(path, device="cpu")
        raise FileNotFoundError(f"no policy file for {policy_id} in {self.run_dir}")

    def settings(self) -> dict[str, Any]:
        """What the run was built with (recorded in config.json and compared on resume)."""
        return {"env": self.env_id, "seed": self.seed, "n_envs": self.n_envs, "ref_point": self.ref_point.tolist(),
                "delta_weight": self.delta_weight, "init_fraction": self.init_fraction, "num_select": self.num_select,
                "update_iter": self.update_iter, "eval_interval": self.eval_interval,
                "archive_capacity": self.archive_capacity, "eval": asdict(self.eval_settings),
                "moppo_kwargs": {key: printable(value) for key, value in self.moppo_kwargs.items()}}

    def save(self, path: str | os.PathLike) -> Path:
        """Write the front to a folder: ``pareto/<id>.zip`` per policy, ``front.json``, ``metrics.json``,
        ``front.png``; :meth:`load` reads it back."""
        from rl.checkpoint import write_json_atomic

        folder = Path(path)
        (folder / PARETO_DIR).mkdir(parents=True, exist_ok=True)
        front = self.pareto_front()
        keep = {f"{row['policy_id']}.zip" for row in front}
        for name in keep:
            source = self._policies_dir() / name
            if source.is_file() and source.resolve() != (folder / PARETO_DIR / name).resolve():
                shutil.copyfile(source, folder / PARETO_DIR / name)
        for stale in (folder / PARETO_DIR).glob("*.zip"):
            if stale.name not in keep:
                stale.unlink()
        write_json_atomic(folder / FRONT_FILE, {"settings": self.settings(), "total_timesteps": self.total_timesteps,
                                                "front": front, "archive": _archive_json(self.archive.state_dict())})
        write_json_atomic(folder / METRICS_FILE, {**self.metrics(), "history": self.history})
        plot_front(front, folder / PICTURE_FILE, title=f"C-MORL on {self.env_id}", env_id=self.env_id)
        return folder

    def discard_iterates(self) -> None:
        """Delete ``policies/`` (every evaluated iterate) once the front is saved to ``pareto/``: a finished run
        needs only its front; a resume of a finished run replays the task results without the files."""
        shutil.rmtree(self._policies_dir(), ignore_errors=True)

    @classmethod
    def load(cls, path: str | os.PathLike) -> CMORL:
        """A driver holding a saved front (its policies load with :meth:`policy`)."""
        folder = Path(path)
        try:
            saved = json.loads((folder / FRONT_FILE).read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise FileNotFoundError(
                f"no readable {FRONT_FILE} in {folder} ({error}); pass a C-MORL run folder") from error
        settings = saved["settings"]
        driver = cls.__new__(cls)
        driver.env_id, driver.seed, driver.n_envs = settings["env"], settings["seed"], settings["n_envs"]
        driver.ref_point = np.asarray(settings["ref_point"], dtype=np.float64)
        driver.n_objectives = len(driver.ref_point)
        for key in ("delta_weight", "init_fraction", "num_select", "update_iter", "eval_interval", "archive_capacity"):
            setattr(driver, key, settings[key])
        driver.eval_settings = EvalSettings(**settings["eval"])
        driver.moppo_kwargs = settings["moppo_kwargs"]
        driver.workers, driver._temporary, driver.run_dir = 1, None, folder
        driver.weights_grid = preference_grid(driver.n_objectives, driver.delta_weight)
        driver.archive = driver._new_archive()
        driver.archive.load_state_dict(saved["archive"])
        driver.iterates = {row["policy_id"]: Iterate(**{k: row[k] for k in Iterate.__dataclass_fields__})
                           for row in saved["front"]}
        metrics = json.loads((folder / METRICS_FILE).read_text()) if (folder / METRICS_FILE).is_file() else {}
        driver.history, driver.env_steps = metrics.get("history", []), metrics.get("env_steps", 0)
        driver.total_timesteps = saved.get("total_timesteps", 0)
        return driver


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _task_record(task: Task) -> dict[str, Any]:
    record = asdict(task)
    record.pop("policies_dir")
    record["moppo_kwargs"] = {key: printable(value) for key, value in task.moppo_kwargs.items()}
    return json.loads(json.dumps(record))


def _archive_json(state: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(state, default=lambda v: v.tolist() if isinstance(v, np.ndarray) else list(v)))


def objective_label(env_id: str | None, index: int) -> str:
    """``objective i: <name>`` where the env's objectives are known."""
    names = OBJECTIVE_NAMES.get(env_id or "", ())
    return f"objective {index}: {names[index]}" if index < len(names) else f"objective {index}"


def plot_front(front: list[dict[str, Any]], path: str | os.PathLike, title: str,
               others: dict[str, np.ndarray] | None = None, env_id: str | None = None) -> Path:
    """Scatter of the front coloured by stage (pairwise projections for 3+ objectives); ``others`` adds
    fronts of other methods (e.g. baselines) in grey shades."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = np.array([row["objectives"] for row in front]) if front else np.zeros((0, 2))
    n_objectives = points.shape[1] if len(points) else (next(iter(others.values())).shape[1] if others else 2)
    pairs = [(i, j) for i in range(n_objectives) for j in range(i + 1, n_objectives)]
    figure, axes = plt.subplots(1, len(pairs), figsize=(5 * len(pairs), 4.5), squeeze=False)
    stages = np.array([row["stage"] for row in front])
    for axis, (i, j) in zip(axes[0], pairs, strict=True):
        for name, points_other in (others or {}).items():
            if len(points_other):
                axis.scatter(points_other[:, i], points_other[:, j], s=14, marker="x", label=name)
        for stage, colour in (("init", "tab:blue"), ("extension", "tab:red")):
            chosen = points[stages == stage] if len(points) else points
            if len(chosen):
                axis.scatter(chosen[:, i], chosen[:, j], s=18, c=colour, label=f"C-MORL {stage}")
        axis.set(xlabel=objective_label(env_id, i), ylabel=objective_label(env_id, j))
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize="small")
        else:
            axis.text(0.5, 0.5, "no policy above the reference point", ha="center", transform=axis.transAxes)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return Path(path)


# ---- command line ----------------------------------------------------------------------------------------
DRIVER_KEYS = ("delta_weight", "init_fraction", "num_select", "update_iter", "eval_interval", "archive_capacity",
               "eval_episodes", "max_episode_steps", "eval_gamma")
MOPPO_KEYS = ("learning_rate", "n_steps", "batch_size", "n_epochs", "gamma", "gae_lambda", "clip_range",
              "clip_range_vf", "normalize_advantage", "ent_coef", "vf_coef", "max_grad_norm", "beta", "barrier_t",
              "barrier_floor", "policy_kwargs", "linear_lr_decay")


def build_parser() -> argparse.ArgumentParser:
    """``python -m algos.cmorl``'s flags: the runner's names (rl-baselines3-zoo's) where they mean the same."""
    parser = argparse.ArgumentParser(prog="python -m algos.cmorl",
                                     description="Train C-MORL into a run folder (<log-folder>/cmorl/<env>_<n>/).")
    parser.add_argument("--env", default=None, help="multi-objective env id, e.g. mo-hopper-2obj-v5")
    parser.add_argument("-n", "--n-timesteps", type=int, default=None,
                        help="total env steps of both stages (default 1,000,000)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    parser.add_argument("-f", "--log-folder", default="logs", help="root of the run folders")
    parser.add_argument("--n-envs", type=int, default=None, help="envs per policy (default: the authors' 4)")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="parallel task processes")
    parser.add_argument("--ref-point", type=float, nargs="+", default=None,
                        help="hypervolume reference point, one value per objective (default: the literature's)")
    parser.add_argument("-params", "--hyperparams", nargs="+", default=None, metavar="KEY:VALUE",
                        help="C-MORL settings (num_select:5 update_iter:20 init_fraction:0.667 ...) and MOPPO "
                             "arguments (n_steps:512 learning_rate:0.0003 beta:0.9 barrier_t:20 ...)")
    parser.add_argument("-i", "--trained-agent", default=None, metavar="RUN_DIR",
                        help="resume the C-MORL run in RUN_DIR (its finished tasks are kept)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bar")
    return parser


def split_hyperparams(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Route ``-params`` to the driver or to MOPPO; an unknown key is a HyperparameterError naming close ones."""
    import difflib

    from rl.hyperparams import HyperparameterError

    driver, moppo = {}, {}
    for key, value in params.items():
        if key in DRIVER_KEYS:
            driver[key] = value
        elif key in MOPPO_KEYS:
            moppo[key] = value
        else:
            close = difflib.get_close_matches(key, DRIVER_KEYS + MOPPO_KEYS, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise HyperparameterError(f"Unknown C-MORL hyperparameter {key!r}.{hint} "
                                      f"Valid: {', '.join(DRIVER_KEYS + MOPPO_KEYS)}.")
    return driver, moppo


DEFAULT_INPUTS: dict[str, Any] = {"env": None, "n_timesteps": 1_000_000, "seed": 0, "n_envs": 4, "ref_point": None,
                                  "hyperparams": {}}
"""What a new run uses for the flags not passed (the parser's defaults are None, so that a resume can tell a
flag that was passed from one that was not)."""


class ResumeMismatchError(ValueError):
    """Raised when a resume is asked with other inputs than the run was started with."""


def run_from_args(args: argparse.Namespace, command: str) -> Path:
    """Build (or resume) the run the flags describe, train it, write its outputs; returns the run folder."""
    from rl.checkpoint import write_json_atomic
    from rl.hyperparams import parse_overrides
    from rl.runner import next_run_dir

    given = {key: getattr(args, key) for key in DEFAULT_INPUTS if getattr(args, key) is not None}
    if "hyperparams" in given:
        params = parse_overrides(given["hyperparams"])
        split_hyperparams(params)
        given["hyperparams"] = {key: printable(value) for key, value in params.items()}
    if args.trained_agent:
        run_dir = Path(args.trained_agent)
        if not (run_dir / CONFIG_FILE).is_file():
            raise FileNotFoundError(f"{run_dir} is not a C-MORL run folder (no {CONFIG_FILE}); pass the folder "
                                    "python -m algos.cmorl printed")
        inputs = json.loads((run_dir / CONFIG_FILE).read_text())["inputs"]
        changed = {key: (inputs.get(key), value) for key, value in given.items() if inputs.get(key) != value}
        if changed:
            described = "; ".join(f"{key}: {old!r} -> {new!r}" for key, (old, new) in changed.items())
            raise ResumeMismatchError(f"cannot resume {run_dir} with other inputs ({described}); drop those flags "
                                      "to continue it, or start a new run without -i")
    else:
        inputs = {**DEFAULT_INPUTS, **given}
    driver_params, moppo_params = split_hyperparams(inputs["hyperparams"])
    driver = CMORL(inputs["env"], seed=inputs["seed"], n_envs=inputs["n_envs"], ref_point=inputs["ref_point"],
                   workers=args.workers, moppo_kwargs=moppo_params, **driver_params)
    driver.plan(inputs["n_timesteps"])
    if not args.trained_agent:
        run_dir = Path(next_run_dir(args.log_folder, "cmorl", inputs["env"]))
        run_dir.mkdir(parents=True, exist_ok=True)
    driver.run_dir = run_dir
    write_json_atomic(run_dir / CONFIG_FILE, {"inputs": inputs, "settings": driver.settings(), "command": command})
    started = time.time()
    driver.learn(inputs["n_timesteps"], progress_bar=args.progress)
    driver.save(run_dir)
    driver.discard_iterates()
    write_json_atomic(run_dir / "run.json", {"command": command, "inputs": inputs, "settings": driver.settings(),
                                             "env_steps": driver.env_steps, "wall_s": time.time() - started,
                                             "metrics": driver.metrics(), **_versions()})
    return run_dir


def _versions() -> dict[str, Any]:
    from rl.run_record import package_versions

    return {"versions": package_versions()}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: user errors print one line and exit 2; no run folder is left behind by a failed start."""
    from gymnasium.error import DependencyNotInstalled

    from rl.cli import run_and_report
    from rl.vector_reward import NotMultiObjectiveError

    args = build_parser().parse_args(argv)
    # mo-gymnasium's discrete tasks declare float64 reward bounds; Gymnasium warns at every make
    warnings.filterwarnings("ignore", message=r".*precision lowered by casting to float32.*")
    if not args.env and not args.trained_agent:
        print("error: --env is required (a multi-objective env id such as mo-hopper-2obj-v5), or -i <run folder>",
              file=sys.stderr)
        return 2
    command = shlex.join(["python", "-m", "algos.cmorl", *(sys.argv[1:] if argv is None else argv)])
    result: dict[str, Path] = {}

    def start() -> None:
        result["run_dir"] = run_from_args(args, command)

    status = run_and_report(start, extra_errors=(NotMultiObjectiveError, ReferencePointError, PreferenceVectorError,
                                                 ResumeMismatchError, ValueError, DependencyNotInstalled))
    if status == 0:
        print(f"run folder: {result['run_dir']}")
    return status


if __name__ == "__main__":
    sys.exit(main())
