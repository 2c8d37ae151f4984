"""The shared runner: train one algorithm on one env into an rl-zoo3-style run folder.

Everything the command line does is one call of :func:`train` with a :class:`RunConfig`, so scripts and
the benchmark harness use exactly what users type. A run folder (``logs/<algo>/<env>_<n>/``) holds:

- ``<env>.zip`` the final model and ``vecnormalize.pkl`` its normalisation statistics;
- ``0.monitor.csv`` ... training episodes, ``evaluations.npz`` periodic evaluations;
- ``checkpoints/step_<n>/`` atomic checkpoints (model, VecNormalize, replay buffer);
- ``config.yml`` the resolved hyperparameters, ``run.json`` the run record (command, hyperparameters,
  versions, seed, throughput, final evaluation, resumes), ``run_inputs.json`` what it was started with,
  ``learning_curve.png``;
- ``<env>/`` rl-zoo3's stats folder (``config.yml``, ``args.yml``, ``vecnormalize.pkl``: :mod:`rl.zoo_layout`), so
  zoo's ``enjoy.py`` and ``record_video.py`` load the run.

A run folder that holds a checkpoint but no final record is resumed in place by ``-i <run folder>``. The
resumed run ends bit-identical to an uninterrupted one (see :mod:`rl.resume_state` for what is restored and
its limits). ``run_inputs.json`` records what the run was started with; a resume whose inputs differ (seed,
hyperparameters, dataset contents, simulator variant, snapshot settings) is refused unless
``allow_changed_inputs`` is set, and run.json's ``resumes`` then lists the changes.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import torch as th
import yaml
from gymnasium import spaces
from stable_baselines3 import HerReplayBuffer
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, StopTrainingOnRewardThreshold
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from rl import checkpoint as ckpt
from rl import resume_state
from rl.datasets import MalformedDatasetError
from rl.envs import UnknownEnvError, ensure_registered, make_training_env
from rl.evaluation import EvaluationSummary, ResumableEvalCallback, evaluate
from rl.hyperparams import HyperparameterError, printable, resolve_hyperparams, split_runner_keys
from rl.offline import DatasetMismatchError, offline_then_online
from rl.plotting import plot_run
from rl.registry import ALGORITHMS, AlgoSpec, UnsupportedActionSpaceError, check_action_space, get_algo
from rl.run_record import command_line, git_commit, package_versions
from rl.zoo_layout import write_zoo_layout

if TYPE_CHECKING:
    from rl.datasets import OfflineDataset

RUN_RECORD_FILE = "run.json"
BEST_MODEL_FILE = "best_model.zip"
CONFIG_FILE = "config.yml"
RUN_INPUTS_FILE = "run_inputs.json"
"""What the run was started with (algorithm, env, seed, hyperparameters, dataset fingerprint, simulator
variant, snapshot settings) and each resume's command and changes: a resume in place is compared with it."""
CHECKPOINT_DIR = "checkpoints"
RESUME_HOOK = "resume_from_step"
"""Method a training-env wrapper may define to learn, on resume, how many of its env steps already ran."""
ARTIFACTS_HOOK = "write_run_artifacts"
"""Method an algorithm may define, ``(run_dir, eval_env) -> dict``, to add its own pictures and figures to a
finished run folder (e.g. FamO2O's balance coefficient over an episode); the dict goes into run.json."""


class RunConfigError(ValueError):
    """Raised for a run that cannot start as configured (no env, a dataset for an online algorithm, ...)."""


USER_ERROR_TYPES = (RunConfigError, HyperparameterError, UnknownEnvError, UnsupportedActionSpaceError,
                    ckpt.CheckpointError, DatasetMismatchError, MalformedDatasetError)
"""Errors that already name the problem: passed through unchanged where other ValueErrors are reworded."""


@dataclass
class RunConfig:
    """One training run. Field names follow rl-baselines3-zoo's command-line flags."""

    algo: str
    env: str | None
    """Env id; for an offline algorithm None takes the dataset's env."""
    n_timesteps: int | None = None
    """Total env steps (online steps after the offline phase, for offline algorithms); None: the YAML default."""
    seed: int = 0
    log_folder: str = "logs"
    run_dir: str | None = None
    """Exact run folder (the harness sets it); None picks ``<log_folder>/<algo>/<env>_<n+1>``."""
    eval_freq: int = 10_000
    """Evaluate every this many env steps (-1: never)."""
    eval_episodes: int = 5
    final_eval_episodes: int = 10
    stochastic_eval: bool = False
    """Evaluate the sampled policy instead of its mode (rl-zoo3 enjoy's ``--stochastic``): for tasks scored by
    the distribution of episode returns, e.g. SubPO's F(tau) over sampled trajectories."""
    n_envs: int | None = None
    device: str = "auto"
    hyperparams: dict[str, Any] = field(default_factory=dict)
    conf_file: str | None = None
    trained_agent: str | None = None
    """A run folder to resume in place, or a model .zip to continue training from (new run folder)."""
    tensorboard_log: str | None = None
    progress: bool = True
    save_freq: int = 50_000
    """Checkpoint every this many env steps (-1: never)."""
    vec_env: str = "dummy"
    num_threads: int | None = None
    verbose: int = 1
    command: str | None = None
    """The command line to record (the CLI sets it); None records this process's own."""
    label: str | None = None
    """Name of the run-folder family and record (default: the algorithm's name), e.g. ``s3rl_sac``."""
    env_wrapper: Callable[[gym.Env], gym.Env] | None = None
    """Applied to each training env inside Monitor (not to evaluation envs), e.g. SnapshotRL's resets."""
    eval_env_wrapper: Callable[[gym.Env], gym.Env] | None = None
    """Applied to the evaluation env (e.g. the privileges wrapper at level 0, so that the action spaces match)."""
    initial_vec_normalize: str | None = None
    """Start VecNormalize from these statistics (e.g. a teacher's) instead of from scratch."""
    stop_reward: float | None = None
    """Stop once a periodic evaluation's mean return reaches this (SB3's StopTrainingOnRewardThreshold)."""
    save_best_model: bool = False
    """Keep the model of the best periodic evaluation as ``best_model.zip`` (written atomically)."""
    model_callbacks: Callable[[BaseAlgorithm], list[BaseCallback]] | None = None
    """Called once with the built (or loaded) model before training; returns callbacks to train with, which may
    also wrap the model's env (SPO's reward-hiding recorder). A callback with ``get_resume_state`` /
    ``set_resume_state`` has its state checkpointed and restored with the run; one with ``write_run_artifacts(run_dir)``
    writes its own files into the finished run folder."""
    extra_record: dict[str, Any] = field(default_factory=dict)
    """Added to run.json (e.g. the teacher and snapshot settings)."""
    dataset: str | None = None
    """Offline algorithms: a D4RL-style name, a local Minari id or a D4RL-layout HDF5 path."""
    offline_steps: int | None = None
    """Offline algorithms: gradient steps on the dataset before the env steps; None: the YAML default."""
    allow_changed_inputs: bool = False
    """Resume a run folder in place although this config's inputs differ from the run's (recorded in run.json);
    otherwise such a resume is refused."""


@dataclass
class RunResult:
    """What :func:`train` returns."""

    run_dir: str
    model: BaseAlgorithm
    evaluation: EvaluationSummary | None
    record: dict[str, Any]


class SaveModelCallback(BaseCallback):
    """Save the model atomically to ``path`` each time it is called (as EvalCallback's ``callback_on_new_best``)."""

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__()
        self.path = Path(path)

    def _on_step(self) -> bool:
        ckpt.save_model_atomic(self.model, self.path)
        return True


class _TrainingClock(BaseCallback):
    """Measures training wall time, to report env steps per second without evaluation and saving."""

    def __init__(self) -> None:
        super().__init__()
        self.start_time = 0.0
        self.start_steps = 0
        self.seconds = 0.0
        self.steps = 0

    def _on_training_start(self) -> None:
        self.start_time = time.perf_counter()
        self.start_steps = self.model.num_timesteps

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        self.seconds = time.perf_counter() - self.start_time
        self.steps = self.model.num_timesteps - self.start_steps


def default_policy(observation_space: spaces.Space) -> str:
    """The policy alias for an observation space: MultiInputPolicy for Dict (panda-gym), else MlpPolicy."""
    return "MultiInputPolicy" if isinstance(observation_space, spaces.Dict) else "MlpPolicy"


def next_run_dir(log_folder: str, algo: str, env_id: str) -> str:
    """``<log_folder>/<algo>/<env>_<n+1>`` where n is the highest existing id (rl-zoo3's convention)."""
    base = Path(log_folder) / algo
    pattern = re.compile(rf"^{re.escape(env_id)}_(\d+)$")
    ids = [int(m.group(1)) for p in base.glob(f"{env_id}_*") if (m := pattern.match(p.name))] if base.is_dir() else []
    return str(base / f"{env_id}_{max(ids, default=0) + 1}")


@dataclass
class _ResumePlan:
    """Where a run resumes from: the run folder continued in place (None: a new folder), the checkpoint or
    model file to load, and notes on checkpoints skipped because their files were damaged."""

    run_dir: str | None
    source: Path | None
    notes: list[str] = field(default_factory=list)


def _resume_source(config: RunConfig) -> _ResumePlan:
    """Where to resume from; a damaged newest checkpoint falls back to the previous complete one."""
    if config.trained_agent is not None:
        source = Path(config.trained_agent)
        if source.is_dir():
            if not (source / CHECKPOINT_DIR).is_dir() and (source / ckpt.MODEL_FILE).is_file():
                return _ResumePlan(None, ckpt.check_checkpoint(source))  # a checkpoint folder itself
            latest, notes = ckpt.usable_checkpoint(source / CHECKPOINT_DIR)
            if latest is None:
                found = "; ".join(notes) if notes else f"no checkpoint under {CHECKPOINT_DIR}/"
                raise ckpt.CheckpointError(f"Run folder {str(source)!r} has nothing to resume from ({found}).")
            return _ResumePlan(str(source), latest, notes)
        ckpt.check_model_file(source)
        return _ResumePlan(None, source)
    if config.run_dir is not None:
        latest, notes = ckpt.usable_checkpoint(Path(config.run_dir) / CHECKPOINT_DIR)
        return _ResumePlan(config.run_dir if latest is not None else None, latest, notes)
    return _ResumePlan(None, None)


def _check_resumed_seed(run_dir: str, checkpoint: Path, seed: int) -> None:
    """Refuse to continue a run folder in place under another seed than the one its checkpoint was trained with.

    Otherwise a rerun with ``--seed 1`` would silently extend seed 0's run and record it as seed 1. Checkpoints
    written before the seed was recorded in ``state.json`` are not checked.
    """
    recorded = ckpt.checkpoint_state(checkpoint).get("seed")
    if recorded is not None and recorded != seed:
        raise RunConfigError(
            f"Run folder {run_dir!r} holds a run with seed {recorded}, not {seed}: resume it with --seed {recorded}, "
            f"or start seed {seed} in a new run folder (delete {run_dir!r} to start over there)."
        )


def _sibling(model_source: Path, name: str) -> str | None:
    folder = model_source if model_source.is_dir() else model_source.parent
    path = folder / name
    return str(path) if path.is_file() else None


def _run_inputs(
    config: RunConfig, spec: AlgoSpec, label: str, params: dict[str, Any], n_envs: int, dataset_fingerprint: str | None,
) -> dict[str, Any]:
    """What determines a run's result besides its length (-n, offline steps: a resume may extend them):
    compared when the run is resumed in place."""
    inputs: dict[str, Any] = {
        "algo": spec.name, "label": label, "env": config.env, "seed": config.seed, "n_envs": n_envs,
        "hyperparams": {k: v for k, v in printable(params).items() if k not in ("n_timesteps", "offline_steps")},
    }
    if config.dataset is not None:
        inputs["dataset"] = {"name": config.dataset, "fingerprint": dataset_fingerprint}
    for key in ("sim", "snapshotrl", "spo", "rm", "parl", "privileged"):
        if key in config.extra_record:
            inputs[key] = printable(config.extra_record[key])
    record = _config_record(config)
    for key in ("env_wrapper", "eval_env_wrapper", "initial_vec_normalize"):
        if record.get(key):
            inputs[key] = record[key]
    return json.loads(json.dumps(inputs, default=str))


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: value}


def changed_inputs(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{dotted key: {"run": old, "now": new}}`` for every input that differs between two ``_run_inputs``."""
    old, new = _flatten(before), _flatten(after)
    return {key: {"run": old.get(key), "now": new.get(key)} for key in sorted(set(old) | set(new))
            if old.get(key) != new.get(key)}


def _describe_changes(changes: dict[str, dict[str, Any]], limit: int = 4) -> str:
    def short(value: Any) -> str:
        text = json.dumps(value) if not isinstance(value, str) else value
        return text if len(text) <= 40 else text[:37] + "..."

    parts = [f"{key} {short(c['run'])} -> {short(c['now'])}" for key, c in list(changes.items())[:limit]]
    more = len(changes) - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


_UNCHANGEABLE = ("algo", "label", "env", "seed", "n_envs", "hyperparams.policy", "hyperparams.normalize",
                 "hyperparams.env_kwargs", "hyperparams.vec_env_class", "hyperparams.policy_kwargs")
"""Inputs a resumed run cannot take from the new command even when told to: the saved model is built on them."""


def _check_resume_inputs(run_dir: str, recorded: dict[str, Any] | None, current: dict[str, Any],
                         allow_changes: bool) -> dict[str, dict[str, Any]]:
    """Refuse a resume in place whose inputs differ from the run's; with ``allow_changes`` return the changes."""
    if recorded is None:
        return {}
    changes = changed_inputs(recorded, current)
    if not changes:
        return {}
    fixed = {k: c for k, c in changes.items() if any(k == u or k.startswith(u + ".") for u in _UNCHANGEABLE)}
    if fixed:
        raise RunConfigError(
            f"Run folder {run_dir!r} was started with other inputs that a resume cannot change "
            f"({_describe_changes(fixed)}): resume with the run's own flags, or start a new run."
        )
    if not allow_changes:
        raise RunConfigError(
            f"Run folder {run_dir!r} was started with other inputs ({_describe_changes(changes)}): resume with the "
            "run's own flags, or pass --allow-changed-inputs to continue with the new ones (run.json records it)."
        )
    return changes


def _read_inputs_file(run_dir: str) -> dict[str, Any] | None:
    path = Path(run_dir) / RUN_INPUTS_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as error:
        raise RunConfigError(f"{str(path)!r} is not valid JSON ({error}): restore it or start a new run.") from error


def _load_resume_state(source: Path | None) -> resume_state.ResumeState | None:
    if source is None or not source.is_dir() or not (source / ckpt.RESUME_STATE_FILE).is_file():
        return None
    return resume_state.load(source / ckpt.RESUME_STATE_FILE)


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C ended training after a checkpoint was saved; ``-i <run_dir>`` resumes it."""

    def __init__(self, run_dir: str, checkpoint: Path, num_timesteps: int) -> None:
        super().__init__(
            f"Interrupted at step {num_timesteps}: checkpoint {checkpoint} saved; resume with -i {run_dir}"
        )
        self.run_dir, self.checkpoint, self.num_timesteps = run_dir, checkpoint, num_timesteps


def train(config: RunConfig) -> RunResult:
    """Train ``config.algo`` on ``config.env``; write and return the run folder and final evaluation.

    A start that fails (a bad value, an unknown env, a model that does not fit) raises before training and
    leaves no new run folder behind; Ctrl-C during training saves a checkpoint and raises
    :class:`TrainingInterrupted`.
    """
    if config.num_threads is not None:
        th.set_num_threads(config.num_threads)
    spec = get_algo(config.algo)
    dataset = _offline_dataset(spec, config)
    if dataset is not None and not config.env:
        config = replace(config, env=dataset.env_id)
    if not config.env:
        raise RunConfigError(f"{spec.name} needs an env: pass --env <id>.")
    ensure_registered(config.env)
    algo_class = spec.load_class()
    # Copies: constructors may change what they are given (policy_kwargs), and a config may be trained twice.
    params = resolve_hyperparams(
        spec.name, algo_class, config.env, conf_file=config.conf_file, overrides=copy.deepcopy(config.hyperparams)
    )
    runner, algo_kwargs = split_runner_keys(copy.deepcopy(params))
    n_timesteps = int(_first_set(config.n_timesteps, runner.get("n_timesteps"), 1_000_000))
    offline_steps = int(_first_set(config.offline_steps, runner.get("offline_steps"), 1_000_000)) if dataset else 0
    n_envs = int(config.n_envs or runner.get("n_envs") or 1)
    if n_timesteps < 0 or offline_steps < 0 or n_envs < 1:
        raise RunConfigError(
            f"Steps must be >= 0 and n_envs >= 1 (got -n {n_timesteps}, offline steps {offline_steps}, "
            f"n_envs {n_envs})."
        )
    normalize = runner.get("normalize", False)
    vec_env_class = runner.get("vec_env_class", config.vec_env)

    plan = _resume_source(config)
    resume_dir, resume_from = plan.run_dir, plan.source
    for note in plan.notes:
        print(f"warning: {note}; resuming from {resume_from}", file=sys.stderr)
    if resume_dir is not None and resume_from is not None:
        _check_resumed_seed(resume_dir, resume_from, config.seed)
    label = config.label or spec.name
    fingerprint = dataset.fingerprint() if dataset is not None else None
    inputs = _run_inputs(config, spec, label, params, n_envs, fingerprint)
    inputs_file = _read_inputs_file(resume_dir) if resume_dir else None
    changes = _check_resume_inputs(
        resume_dir, (inputs_file or {}).get("inputs"), inputs, config.allow_changed_inputs
    ) if resume_dir else {}
    run_dir = resume_dir or config.run_dir or next_run_dir(config.log_folder, label, config.env)
    new_folder = not os.path.exists(run_dir)
    os.makedirs(run_dir, exist_ok=True)
    try:
        setup = _set_up(
            config, spec, algo_class, dataset, params, algo_kwargs, runner, run_dir=run_dir, resume_dir=resume_dir,
            resume_from=resume_from, n_timesteps=n_timesteps, n_envs=n_envs, normalize=normalize,
            vec_env_class=vec_env_class, changes=changes,
        )
    except BaseException:
        if new_folder:  # a failed start leaves no run folder behind (one that existed before is kept)
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return _train_in_folder(
        config, spec, dataset, setup, run_dir=run_dir, label=label, resume_dir=resume_dir, resume_from=resume_from,
        n_timesteps=n_timesteps, offline_steps=offline_steps, n_envs=n_envs, inputs=inputs, inputs_file=inputs_file,
        changes=changes, fingerprint=fingerprint, skipped_checkpoints=plan.notes,
    )


def _train_in_folder(
    config: RunConfig, spec: AlgoSpec, dataset: OfflineDataset | None,
    setup: tuple[BaseAlgorithm, VecEnv, VecEnv, resume_state.ResumeState | None, int, dict[str, Any]], *,
    run_dir: str, label: str, resume_dir: str | None, resume_from: Path | None, n_timesteps: int, offline_steps: int,
    n_envs: int, inputs: dict[str, Any], inputs_file: dict[str, Any] | None, changes: dict[str, dict[str, Any]],
    fingerprint: str | None, skipped_checkpoints: list[str],
) -> RunResult:
    """Train the set-up model in its run folder, then write the final model, evaluation and records."""
    model, env, eval_env, state, remaining, recorded_params = setup
    resuming = resume_from is not None

    if inputs_file is None or not resume_dir:
        inputs_file = {"inputs": inputs, "command": config.command or command_line(), "resumes": []}
    if resuming:
        inputs_file["resumes"].append({
            "from": str(resume_from), "at_step": int(model.num_timesteps), "command": config.command or command_line(),
            "commit": git_commit(), "changed_inputs": changes, "skipped_checkpoints": skipped_checkpoints,
        })
        if changes:
            inputs_file["inputs"] = inputs
    ckpt.write_json_atomic(Path(run_dir) / RUN_INPUTS_FILE, inputs_file)
    config_path = os.path.join(run_dir, CONFIG_FILE)
    with open(config_path, "w") as handle:
        yaml.safe_dump(recorded_params, handle, sort_keys=True)

    clock = _TrainingClock()
    callbacks: list[BaseCallback] = [clock]
    if config.model_callbacks is not None:
        callbacks.extend(config.model_callbacks(model))
    eval_callback = None
    if config.eval_freq > 0:
        on_new_best: list[BaseCallback] = []
        if config.save_best_model:
            on_new_best.append(SaveModelCallback(Path(run_dir) / BEST_MODEL_FILE))
        if config.stop_reward is not None:
            on_new_best.append(StopTrainingOnRewardThreshold(config.stop_reward))
        eval_callback = ResumableEvalCallback(
            eval_env, log_path=run_dir, best_model_save_path=None, n_eval_episodes=config.eval_episodes,
            eval_freq=max(config.eval_freq // n_envs, 1), deterministic=not config.stochastic_eval, verbose=0,
            callback_on_new_best=CallbackList(on_new_best) if on_new_best else None,
        )
        for callback in on_new_best:  # StopTrainingOnRewardThreshold reads best_mean_reward from its parent
            callback.parent = eval_callback
        callbacks.append(eval_callback)
    with ckpt.checkpoint_on_interrupt() as interrupt:
        checkpoint_callback = ckpt.AtomicCheckpointCallback(
            config.save_freq, Path(run_dir) / CHECKPOINT_DIR, interrupt=interrupt,
            capture_resume_state=lambda: resume_state.capture(
                model, eval_env=eval_env, callbacks=callbacks, run_dir=run_dir
            ),
        )
        callbacks.append(checkpoint_callback)
        restart_notes: list[str] = []
        if resuming and env.has_attr(RESUME_HOOK):  # wrappers that follow training progress (SnapshotRL's phase)
            env.env_method(RESUME_HOOK, model.num_timesteps // n_envs)
        if state is not None:  # then everything else the checkpoint captured, wrappers' own state included
            restart_notes = resume_state.restore(state, model, eval_env=eval_env, callbacks=callbacks)
        if resuming and isinstance(getattr(model, "replay_buffer", None), HerReplayBuffer) and model._last_obs is None:
            model.replay_buffer.truncate_last_trajectory()  # the episode restarts: HER must not join the two

        if dataset is not None:
            offline_then_online(
                model, offline_steps=offline_steps, online_steps=n_timesteps, callback=CallbackList(callbacks),
                progress_bar=config.progress, tb_log_name=f"{label}_{config.env}", resuming=resuming,
            )
        elif remaining > 0:
            model.learn(
                total_timesteps=remaining, callback=CallbackList(callbacks), progress_bar=config.progress,
                reset_num_timesteps=not resuming, tb_log_name=f"{label}_{config.env}",
            )
    if checkpoint_callback.interrupted is not None:
        env.close()
        eval_env.close()
        raise TrainingInterrupted(run_dir, checkpoint_callback.interrupted, int(model.num_timesteps))
    env_name = config.env
    ckpt.save_model_atomic(model, Path(run_dir) / f"{env_name}.zip")
    vec_normalize = model.get_vec_normalize_env()
    if vec_normalize is not None:
        ckpt.save_vecnormalize_atomic(vec_normalize, Path(run_dir) / ckpt.VECNORMALIZE_FILE)
    if config.save_freq > 0:
        if getattr(checkpoint_callback, "model", None) is None:  # no step was left to train (resumed at the end)
            checkpoint_callback.init_callback(model)
        checkpoint_callback.save()

    evaluation = None
    if config.final_eval_episodes > 0:
        evaluation = evaluate(
            model, eval_env, n_episodes=config.final_eval_episodes, deterministic=not config.stochastic_eval
        )
    artifacts = {}
    if hasattr(model, ARTIFACTS_HOOK):
        artifacts = getattr(model, ARTIFACTS_HOOK)(run_dir, eval_env) or {}
    offline_record = {}
    if dataset is not None:
        offline_record = {
            "dataset": config.dataset, "dataset_size": len(dataset), "dataset_fingerprint": fingerprint,
            "offline_steps": offline_steps,
            "online_steps": n_timesteps,
            "final_normalized_score": (
                float(dataset.normalized_score(evaluation.mean_reward))
                if evaluation is not None and dataset.ref_min is not None else None
            ),
        }
    overhead = (eval_callback.seconds if eval_callback else 0.0) + checkpoint_callback.seconds
    train_seconds = max(clock.seconds - overhead, 1e-9)
    record = {
        "command": inputs_file.get("command") or config.command or command_line(),
        "algo": spec.name,
        "label": label,
        "env": config.env,
        "seed": config.seed,
        "n_timesteps": n_timesteps,
        "num_timesteps": model.num_timesteps,
        "resumed_from": str(resume_from) if resume_from else None,
        "resumes": inputs_file["resumes"],
        "restarted_on_resume": restart_notes,
        "hyperparams": recorded_params,
        "config": _config_record(config),
        **config.extra_record,
        **offline_record,
        **artifacts,
        "versions": package_versions(),
        "train_seconds": train_seconds,
        "train_steps": clock.steps,
        # Over the last training segment only (a resumed run does not know its earlier segments' time).
        "steps_per_second": clock.steps / train_seconds if clock.steps else None,
        "final_evaluation": evaluation.as_dict() if evaluation else None,
    }
    ckpt.write_json_atomic(Path(run_dir) / RUN_RECORD_FILE, record)
    write_zoo_layout(  # rl-zoo3's enjoy.py / record_video.py load the run folder with its statistics
        run_dir, config.env, recorded_params, {**record["config"], "command": record["command"]},
        str(Path(run_dir) / ckpt.VECNORMALIZE_FILE) if vec_normalize is not None else None,
    )
    plot_run(run_dir, f"{label} on {config.env} (seed {config.seed})", offline_steps=offline_steps,
             stochastic_eval=config.stochastic_eval)
    for callback in callbacks:  # a method's own plots (the preference learners' alignment.png)
        write_artifacts = getattr(callback, "write_run_artifacts", None)
        if callable(write_artifacts):
            write_artifacts(run_dir)
    env.close()
    eval_env.close()
    if config.verbose and evaluation is not None:
        print(f"[{label} {config.env} seed {config.seed}] final evaluation: {evaluation}")
        if offline_record.get("final_normalized_score") is not None:
            print(f"D4RL normalised score on {config.dataset}: {offline_record['final_normalized_score']:.1f}")
        print(f"Run folder: {run_dir}")
    return RunResult(run_dir=run_dir, model=model, evaluation=evaluation, record=record)


def _set_up(
    config: RunConfig, spec: AlgoSpec, algo_class: type, dataset: OfflineDataset | None, params: dict[str, Any],
    algo_kwargs: dict[str, Any], runner: dict[str, Any], *, run_dir: str, resume_dir: str | None,
    resume_from: Path | None, n_timesteps: int, n_envs: int, normalize: Any, vec_env_class: str,
    changes: dict[str, dict[str, Any]],
) -> tuple[BaseAlgorithm, VecEnv, VecEnv, resume_state.ResumeState | None, int, dict[str, Any]]:
    """Envs and model of a run (fresh, resumed in place, or continued from a model file), before any training.

    Returns (model, env, eval_env, resume state or None, env steps left, hyperparameters to record).
    """
    resuming = resume_from is not None
    state = _load_resume_state(resume_from) if resume_dir else None
    if state is not None:
        # The episodes that finished after the checkpoint are run again: cut them from the monitor files.
        resume_state.truncate_monitor_files(run_dir, state.monitor_sizes)
    vecnorm_path = _sibling(resume_from, ckpt.VECNORMALIZE_FILE) if resume_from else config.initial_vec_normalize
    if vecnorm_path is not None and not os.path.isfile(vecnorm_path):
        raise FileNotFoundError(f"VecNormalize statistics {vecnorm_path!r} do not exist.")
    # A run resumed in place keeps its earlier episodes; a fresh run starts its monitor files (with header).
    continue_monitor = resuming and resume_dir is not None and any(Path(run_dir).glob("*.monitor.csv"))
    env_options = dict(env_kwargs=runner.get("env_kwargs"), vec_env_class=vec_env_class)
    try:
        env = make_training_env(
            config.env, n_envs=n_envs, seed=config.seed, monitor_dir=run_dir, normalize=normalize,
            vec_normalize_path=vecnorm_path, append_monitor=continue_monitor, wrapper=config.env_wrapper,
            **env_options,
        )
        eval_env = make_training_env(
            config.env, n_envs=1, seed=config.seed + 10_000, normalize=normalize, training=False,
            vec_normalize_path=vecnorm_path, wrapper=config.eval_env_wrapper, **env_options,
        )
    except USER_ERROR_TYPES:
        raise
    except (ValueError, TypeError) as error:
        raise RunConfigError(f"{config.env} could not be made with these settings: {error}") from error
    check_action_space(spec, env.action_space, config.env)

    if resuming:
        assert resume_from is not None
        model_path = resume_from / ckpt.MODEL_FILE if resume_from.is_dir() else resume_from
        if resume_dir:  # in place: apply only changes the user allowed (--allow-changed-inputs)
            overrides = {key.split(".", 1)[1]: algo_kwargs[key.split(".", 1)[1]] for key in changes
                         if key.startswith("hyperparams.") and key.split(".", 1)[1] in algo_kwargs}
        else:  # from a model file: the -params the user gave, as rl-zoo3's -i does
            overrides = {key: algo_kwargs[key] for key in config.hyperparams if key in algo_kwargs}
        extra = {"_dataset": dataset} if dataset is not None else {}
        try:
            model = ckpt.load_model(
                algo_class, model_path, env=env, device=config.device, overrides=overrides, **extra
            )
        except ValueError as error:  # the algorithm's own check of an overridden value
            raise RunConfigError(f"{spec.name}: {error}") from error
        if config.tensorboard_log:
            model.tensorboard_log = config.tensorboard_log
        buffer_path = _sibling(resume_from, ckpt.REPLAY_BUFFER_FILE)
        if isinstance(model, OffPolicyAlgorithm) and buffer_path:
            # A resume continues the episode in progress (HER's buffer keeps it open; it is closed below if the
            # episode restarts instead); training on from a model file starts new episodes.
            model.load_replay_buffer(buffer_path, truncate_last_traj=not resume_dir)
        # In place: -n is the run's total. From a model file: -n more steps (rl-zoo3's -i).
        remaining = n_timesteps - model.num_timesteps if resume_dir else n_timesteps
        recorded = _recorded_hyperparams(params, algo_kwargs, model, resume_dir, run_dir, overrides)
    else:
        if dataset is not None:
            algo_kwargs["dataset"] = dataset
            # The dataset and every online step must fit, or SB3's circular buffer overwrites the dataset.
            needed = len(dataset) + n_timesteps + 1
            algo_kwargs["buffer_size"] = max(int(algo_kwargs.get("buffer_size", needed)), needed)
        try:
            model = algo_class(
                runner.get("policy") or default_policy(env.observation_space), env, seed=config.seed,
                device=config.device, tensorboard_log=config.tensorboard_log, verbose=max(config.verbose - 1, 0),
                **algo_kwargs,
            )
        except USER_ERROR_TYPES:
            raise
        except (ValueError, AssertionError) as error:  # the constructor's own checks of its arguments
            raise RunConfigError(f"{spec.name}: {error}") from error
        _check_her_warm_up(model, config.env, n_timesteps)
        algo_kwargs.pop("dataset", None)
        remaining = n_timesteps
        recorded = printable(params)
    recorded["n_timesteps"] = n_timesteps
    if dataset is not None:
        recorded["offline_steps"] = _first_set(config.offline_steps, runner.get("offline_steps"), 1_000_000)
    return model, env, eval_env, state, remaining, recorded


def _check_her_warm_up(model: BaseAlgorithm, env_id: str, n_timesteps: int) -> None:
    """HER samples only from finished episodes: refuse, before any step, a warm-up shorter than one episode
    (SB3 would stop with a RuntimeError at the first gradient step)."""
    if not isinstance(getattr(model, "replay_buffer", None), HerReplayBuffer):
        return
    spec = model.get_env().get_attr("spec")[0]
    limit = spec.max_episode_steps if spec is not None else None
    if limit is not None and model.learning_starts < min(limit, n_timesteps):  # trains before an episode ends
        raise RunConfigError(
            f"HerReplayBuffer samples only finished episodes, and {env_id}'s episodes last up to {limit} steps: "
            f"set learning_starts:{limit} or more (got {model.learning_starts})."
        )


def _recorded_hyperparams(
    params: dict[str, Any], algo_kwargs: dict[str, Any], model: BaseAlgorithm, resume_dir: str | None, run_dir: str,
    overrides: dict[str, Any],
) -> dict[str, Any]:
    """The hyperparameters a resumed or continued run really trains with, for config.yml and run.json.

    In place: the run's own record, with the changes the user allowed. From a model file: the model's saved
    value of every algorithm key it stores (the YAML defaults did not train it), the overrides applied.
    """
    config_path = Path(run_dir) / CONFIG_FILE
    if resume_dir and config_path.is_file():
        recorded = yaml.safe_load(config_path.read_text()) or {}
        recorded.update(printable(overrides))
        return recorded
    recorded = printable(params)
    for key in algo_kwargs:
        if key in model.__dict__:
            recorded[key] = printable(model.__dict__[key])
    return recorded


def _config_record(config: RunConfig) -> dict[str, Any]:
    """The run settings for run.json: the hyperparameters and extra records are stored apart, and the env
    wrapper by its name only (its arguments, e.g. S3RL's snapshots, are big; their summary is in extra_record)."""
    record = {
        f.name: getattr(config, f.name) for f in fields(config)
        if f.name not in ("hyperparams", "extra_record", "model_callbacks")
    }
    for key in ("env_wrapper", "eval_env_wrapper"):
        wrapper = record[key]
        if wrapper is not None:
            target = wrapper.func if isinstance(wrapper, partial) else wrapper
            record[key] = f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(target))}"
    return printable(record)


def _first_set(*values: Any) -> Any:
    """The first value that is not None (0 is a valid number of steps)."""
    return next(v for v in values if v is not None)


def _offline_dataset(spec: AlgoSpec, config: RunConfig) -> OfflineDataset | None:
    """The dataset of an offline algorithm's run (None for online algorithms), with clear errors for misuse."""
    if not spec.offline:
        if config.dataset:
            offline = ", ".join(name for name, other in ALGORITHMS.items() if other.offline)
            raise RunConfigError(f"{spec.name} does not train from a dataset; offline algorithms: {offline}.")
        return None
    if not config.dataset:
        raise RunConfigError(
            f"{spec.name} trains from an offline dataset: pass --dataset <name|Minari id|file.hdf5>, "
            "e.g. --dataset halfcheetah-medium-v2 (make one with `python -m rl.datasets make halfcheetah-medium-v2`)."
        )
    from rl.datasets import load_dataset

    return load_dataset(config.dataset, env_id=config.env or None)


def load_run_record(run_dir: str) -> dict[str, Any] | None:
    """The run record of a finished run, or None."""
    path = Path(run_dir) / RUN_RECORD_FILE
    return json.loads(path.read_text()) if path.is_file() else None
