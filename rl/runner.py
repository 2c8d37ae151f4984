"""The shared runner: train one algorithm on one env into an rl-zoo3-style run folder.

Everything the command line does is one call of :func:`train` with a :class:`RunConfig`, so scripts and
the benchmark harness use exactly what users type. A run folder (``logs/<algo>/<env>_<n>/``) holds:

- ``<env>.zip`` the final model and ``vecnormalize.pkl`` its normalisation statistics;
- ``0.monitor.csv`` ... training episodes, ``evaluations.npz`` periodic evaluations;
- ``checkpoints/step_<n>/`` atomic checkpoints (model, VecNormalize, replay buffer);
- ``config.yml`` the resolved hyperparameters, ``run.json`` the run record (command, hyperparameters,
  versions, seed, throughput, final evaluation), ``learning_curve.png``.

A run folder that holds a checkpoint but no final record is resumed in place by ``-i <run folder>``, with the
seed it was started with (another ``--seed`` is refused: the checkpoint's ``state.json`` records it).
"""

from __future__ import annotations

import json
import os
import re
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
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, StopTrainingOnRewardThreshold
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from rl import checkpoint as ckpt
from rl.envs import make_training_env
from rl.evaluation import EvaluationSummary, ResumableEvalCallback, evaluate
from rl.hyperparams import printable, resolve_hyperparams, split_runner_keys
from rl.offline import offline_then_online
from rl.plotting import plot_run
from rl.registry import ALGORITHMS, AlgoSpec, check_action_space, get_algo
from rl.run_record import command_line, package_versions

if TYPE_CHECKING:
    from rl.datasets import OfflineDataset

RUN_RECORD_FILE = "run.json"
BEST_MODEL_FILE = "best_model.zip"
CONFIG_FILE = "config.yml"
CHECKPOINT_DIR = "checkpoints"
RESUME_HOOK = "resume_from_step"
"""Method a training-env wrapper may define to learn, on resume, how many of its env steps already ran."""
ARTIFACTS_HOOK = "write_run_artifacts"
"""Method an algorithm may define, ``(run_dir, eval_env) -> dict``, to add its own pictures and figures to a
finished run folder (e.g. FamO2O's balance coefficient over an episode); the dict goes into run.json."""


class RunConfigError(ValueError):
    """Raised for a run that cannot start as configured (no env, a dataset for an online algorithm, ...)."""


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
    initial_vec_normalize: str | None = None
    """Start VecNormalize from these statistics (e.g. a teacher's) instead of from scratch."""
    stop_reward: float | None = None
    """Stop once a periodic evaluation's mean return reaches this (SB3's StopTrainingOnRewardThreshold)."""
    save_best_model: bool = False
    """Keep the model of the best periodic evaluation as ``best_model.zip`` (written atomically)."""
    extra_record: dict[str, Any] = field(default_factory=dict)
    """Added to run.json (e.g. the teacher and snapshot settings)."""
    dataset: str | None = None
    """Offline algorithms: a D4RL-style name, a local Minari id or a D4RL-layout HDF5 path."""
    offline_steps: int | None = None
    """Offline algorithms: gradient steps on the dataset before the env steps; None: the YAML default."""


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


def _resume_source(config: RunConfig) -> tuple[str | None, Path | None]:
    """Where to resume from: (run folder to continue in place, checkpoint or model to load)."""
    if config.trained_agent is not None:
        source = Path(config.trained_agent)
        if source.is_dir():
            latest = ckpt.latest_checkpoint(source / CHECKPOINT_DIR)
            if latest is None:
                if (source / ckpt.MODEL_FILE).is_file():  # a checkpoint folder itself
                    return None, source
                raise ckpt.CheckpointError(
                    f"Run folder {str(source)!r} has no checkpoint under {CHECKPOINT_DIR}/ to resume from."
                )
            return str(source), latest
        ckpt.check_model_file(source)
        return None, source
    if config.run_dir is not None:
        return config.run_dir, ckpt.latest_checkpoint(Path(config.run_dir) / CHECKPOINT_DIR)
    return None, None


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


def train(config: RunConfig) -> RunResult:
    """Train ``config.algo`` on ``config.env``; write and return the run folder and final evaluation."""
    if config.num_threads is not None:
        th.set_num_threads(config.num_threads)
    spec = get_algo(config.algo)
    dataset = _offline_dataset(spec, config)
    if dataset is not None and not config.env:
        config = replace(config, env=dataset.env_id)
    if not config.env:
        raise RunConfigError(f"{spec.name} needs an env: pass --env <id>.")
    algo_class = spec.load_class()
    params = resolve_hyperparams(
        spec.name, algo_class, config.env, conf_file=config.conf_file, overrides=config.hyperparams
    )
    runner, algo_kwargs = split_runner_keys(params)
    n_timesteps = int(_first_set(config.n_timesteps, runner.get("n_timesteps"), 1_000_000))
    offline_steps = int(_first_set(config.offline_steps, runner.get("offline_steps"), 1_000_000)) if dataset else 0
    n_envs = int(config.n_envs or runner.get("n_envs") or 1)
    normalize = runner.get("normalize", False)
    vec_env_class = runner.get("vec_env_class", config.vec_env)

    resume_dir, resume_from = _resume_source(config)
    if resume_dir is not None and resume_from is not None:
        _check_resumed_seed(resume_dir, resume_from, config.seed)
    label = config.label or spec.name
    run_dir = resume_dir or config.run_dir or next_run_dir(config.log_folder, label, config.env)
    os.makedirs(run_dir, exist_ok=True)
    resuming = resume_from is not None

    vecnorm_path = _sibling(resume_from, ckpt.VECNORMALIZE_FILE) if resume_from else config.initial_vec_normalize
    if vecnorm_path is not None and not os.path.isfile(vecnorm_path):
        raise FileNotFoundError(f"VecNormalize statistics {vecnorm_path!r} do not exist.")
    # A run resumed in place keeps its earlier episodes; a fresh run starts its monitor files (with header).
    continue_monitor = resuming and resume_dir is not None and any(Path(run_dir).glob("*.monitor.csv"))
    env_options = dict(env_kwargs=runner.get("env_kwargs"), vec_env_class=vec_env_class)
    env = make_training_env(
        config.env, n_envs=n_envs, seed=config.seed, monitor_dir=run_dir, normalize=normalize,
        vec_normalize_path=vecnorm_path, append_monitor=continue_monitor, wrapper=config.env_wrapper,
        **env_options,
    )
    check_action_space(spec, env.action_space, config.env)
    eval_env = make_training_env(
        config.env, n_envs=1, seed=config.seed + 10_000, normalize=normalize, training=False,
        vec_normalize_path=vecnorm_path, **env_options,
    )

    if resuming:
        assert resume_from is not None
        model_path = resume_from / ckpt.MODEL_FILE if resume_from.is_dir() else resume_from
        model = ckpt.load_model(algo_class, model_path, env=env, device=config.device)
        if config.tensorboard_log:
            model.tensorboard_log = config.tensorboard_log
        buffer_path = _sibling(resume_from, ckpt.REPLAY_BUFFER_FILE)
        if isinstance(model, OffPolicyAlgorithm) and buffer_path:
            model.load_replay_buffer(buffer_path)
        # In place: -n is the run's total. From a model file: -n more steps (rl-zoo3's -i).
        remaining = n_timesteps - model.num_timesteps if resume_dir else n_timesteps
        if env.has_attr(RESUME_HOOK):  # wrappers that follow training progress (e.g. SnapshotRL's phase)
            env.env_method(RESUME_HOOK, model.num_timesteps // n_envs)
    else:
        if dataset is not None:
            algo_kwargs["dataset"] = dataset
            # The dataset and every online step must fit, or SB3's circular buffer overwrites the dataset.
            needed = len(dataset) + n_timesteps + 1
            algo_kwargs["buffer_size"] = max(int(algo_kwargs.get("buffer_size", needed)), needed)
        model = algo_class(
            runner.get("policy") or default_policy(env.observation_space), env, seed=config.seed, device=config.device,
            tensorboard_log=config.tensorboard_log, verbose=max(config.verbose - 1, 0), **algo_kwargs,
        )
        remaining = n_timesteps

    config_path = os.path.join(run_dir, CONFIG_FILE)
    if resume_dir and os.path.isfile(config_path):
        # Resumed in place: the model carries the run's original hyperparameters; keep its record.
        with open(config_path) as handle:
            recorded_params = yaml.safe_load(handle) or {}
    else:
        recorded_params = printable(params)
        with open(config_path, "w") as handle:
            yaml.safe_dump(recorded_params, handle, sort_keys=True)

    clock = _TrainingClock()
    callbacks: list[BaseCallback] = [clock]
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
    checkpoint_callback = None
    if config.save_freq > 0:
        checkpoint_callback = ckpt.AtomicCheckpointCallback(config.save_freq, Path(run_dir) / CHECKPOINT_DIR)
        callbacks.append(checkpoint_callback)

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
    env_name = config.env
    ckpt.save_model_atomic(model, Path(run_dir) / f"{env_name}.zip")
    vec_normalize = model.get_vec_normalize_env()
    if vec_normalize is not None:
        ckpt.save_vecnormalize_atomic(vec_normalize, Path(run_dir) / ckpt.VECNORMALIZE_FILE)
    if config.save_freq > 0:
        ckpt.save_checkpoint(model, Path(run_dir) / CHECKPOINT_DIR)

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
            "dataset": config.dataset, "dataset_size": len(dataset), "dataset_fingerprint": dataset.fingerprint(),
            "offline_steps": offline_steps,
            "online_steps": n_timesteps,
            "final_normalized_score": (
                float(dataset.normalized_score(evaluation.mean_reward))
                if evaluation is not None and dataset.ref_min is not None else None
            ),
        }
    overhead = (eval_callback.seconds if eval_callback else 0.0) + (
        checkpoint_callback.seconds if checkpoint_callback else 0.0
    )
    train_seconds = max(clock.seconds - overhead, 1e-9)
    record = {
        "command": config.command or command_line(),
        "algo": spec.name,
        "label": label,
        "env": config.env,
        "seed": config.seed,
        "n_timesteps": n_timesteps,
        "num_timesteps": model.num_timesteps,
        "resumed_from": str(resume_from) if resume_from else None,
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
    plot_run(run_dir, f"{label} on {config.env} (seed {config.seed})", offline_steps=offline_steps,
             stochastic_eval=config.stochastic_eval)
    env.close()
    eval_env.close()
    if config.verbose and evaluation is not None:
        print(f"[{label} {config.env} seed {config.seed}] final evaluation: {evaluation}")
        if offline_record.get("final_normalized_score") is not None:
            print(f"D4RL normalised score on {config.dataset}: {offline_record['final_normalized_score']:.1f}")
        print(f"Run folder: {run_dir}")
    return RunResult(run_dir=run_dir, model=model, evaluation=evaluation, record=record)


def _config_record(config: RunConfig) -> dict[str, Any]:
    """The run settings for run.json: the hyperparameters and extra records are stored apart, and the env
    wrapper by its name only (its arguments, e.g. S3RL's snapshots, are big; their summary is in extra_record)."""
    record = {f.name: getattr(config, f.name) for f in fields(config) if f.name not in ("hyperparams", "extra_record")}
    wrapper = record["env_wrapper"]
    if wrapper is not None:
        target = wrapper.func if isinstance(wrapper, partial) else wrapper
        record["env_wrapper"] = f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(target))}"
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
