"""What a checkpoint holds besides the model, so that a killed run resumes to the same result, bit for bit.

SB3's ``save`` keeps the networks, optimizers and counters; its replay buffer file keeps the data. What a
continued run also depends on, and what this module captures at a checkpoint and puts back on resume:

- the random number generators: Python's ``random``, NumPy's global generator (SB3's replay sampling and
  minibatch permutations), torch's (action sampling, dropout);
- each training env mid-episode: the simulator state (:mod:`rl.env_state`: MuJoCo integration state or
  PyBullet's saved state, with the time-limit counter), the env's and its action space's generators,
  SB3 Monitor's running episode, and the state of wrappers that define ``get_resume_state`` /
  ``set_resume_state`` (e.g. SnapshotRL's resets, simulator variants);
- the algorithm's last observation and episode starts (SB3 resets the env on load and would start a new
  episode), VecNormalize's running discounted return (not in ``vecnormalize.pkl``);
- the evaluation env's generators, so later evaluations start from the same initial states;
- the callbacks' step counters (an EvalCallback counts calls, not env steps) and the state of callbacks that
  define ``get_resume_state`` / ``set_resume_state`` (SPO's opponents and credits), and the byte length of each
  Monitor CSV, so the episodes that finished after the checkpoint are cut before the resumed run writes
  them again.

Envs that neither MuJoCo nor PyBullet drive (classic control, the project's numpy tasks) keep their whole
state in plain Python attributes of the unwrapped env (numbers, arrays, lists of them): those are copied. An
env that also keeps state in other objects is not covered by that copy; the fault-injection tests show which
envs resume bit-identically (tests/test_resume_faults.py).

Limits (documented, not bit-identical): SubprocVecEnv sub-envs live in other processes and are not
captured; gSDE noise and Ornstein-Uhlenbeck action noise are re-drawn at the start of each ``learn``
call; tensorboard event files keep the steps logged after the checkpoint (the resumed run logs them
again); Monitor's wall-clock column ``t`` differs.
"""

from __future__ import annotations

import copy
import os
import pickle
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium.wrappers import TimeLimit
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecEnvWrapper, VecNormalize

from rl.checkpoint import CheckpointError, read_pickle
from rl.env_state import EnvState, StateNotRestorableError, capture_state, is_plain, restore_state

RESUME_STATE_FILE = "resume_state.pkl"
WRAPPER_HOOKS = ("get_resume_state", "set_resume_state")
"""A gym wrapper with these two methods has its state captured and restored with the env's."""
_MONITOR_FIELDS = ("rewards", "needs_reset", "total_steps", "episode_returns", "episode_lengths", "episode_times")
_MODEL_FIELDS = ("_last_obs", "_last_original_obs", "_last_episode_starts", "_episode_num", "ep_info_buffer",
                 "ep_success_buffer")


@dataclass
class SubEnvState:
    """One sub-env of a DummyVecEnv."""

    physics: EnvState | None
    """The simulator mid-episode (MuJoCo or PyBullet); None for other envs."""
    plain_attributes: dict[str, Any] | None
    """Other envs: the unwrapped env's plain attributes (numbers, arrays, lists of them), e.g. Pendulum's state."""
    np_random: dict[str, Any] | None
    """The unwrapped env's generator (reset noise), bit-generator state."""
    np_random_seed: int | None
    action_space_random: dict[str, Any] | None
    monitor: dict[str, Any] | None
    elapsed_steps: int | None = None
    """The TimeLimit counter (also inside ``physics`` for MuJoCo and PyBullet envs)."""
    wrappers: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """(class name, ``get_resume_state()``) of each wrapper that has it, outermost first."""


@dataclass
class VecEnvState:
    """A DummyVecEnv's sub-envs, its pending seeds and options, and VecNormalize's running return."""

    sub_envs: list[SubEnvState]
    seeds: list[int | None]
    options: list[dict[str, Any]]
    vec_normalize_returns: np.ndarray | None


@dataclass
class ResumeState:
    """Everything a checkpoint needs beyond ``model.zip``, ``vecnormalize.pkl`` and the replay buffer."""

    num_timesteps: int
    python_random: Any
    numpy_random: Any
    torch_random: th.Tensor
    cuda_random: list[th.Tensor] | None
    model_fields: dict[str, Any]
    model_action_space_random: dict[str, Any] | None
    """The algorithm's own action space's generator: SB3 samples warm-up actions (``learning_starts``) from it."""
    train_env: VecEnvState | None
    eval_env: VecEnvState | None
    callback_calls: dict[str, int]
    """``n_calls`` of each callback, by its position and class (see :func:`_callback_key`)."""
    monitor_sizes: dict[str, int]
    """Byte length of each ``*.monitor.csv`` in the run folder at the checkpoint."""
    not_captured: list[str] = field(default_factory=list)
    """What could not be captured (and so restarts on resume), in words."""
    callback_states: dict[str, Any] = field(default_factory=dict)
    """``get_resume_state()`` of each callback that has it (e.g. SPO's opponents and credits), by callback key."""


def innermost_vec_env(venv: VecEnv) -> VecEnv:
    """The VecEnv under every VecEnvWrapper (VecNormalize, ...)."""
    while isinstance(venv, VecEnvWrapper):
        venv = venv.venv
    return venv


def _vec_normalize(venv: VecEnv) -> VecNormalize | None:
    while isinstance(venv, VecEnvWrapper):
        if isinstance(venv, VecNormalize):
            return venv
        venv = venv.venv
    return None


def _wrapper_chain(env: gym.Env) -> list[gym.Env]:
    chain = [env]
    while isinstance(chain[-1], gym.Wrapper):
        chain.append(chain[-1].env)
    return chain


def _generator_state(generator: np.random.Generator | None) -> dict[str, Any] | None:
    return None if generator is None else copy.deepcopy(generator.bit_generator.state)


def _plain_attributes(obj: Any) -> dict[str, Any]:
    return {name: copy.deepcopy(value) for name, value in vars(obj).items()
            if is_plain(value) and not name.startswith("_np_random")}


def _capture_sub_env(env: gym.Env, not_captured: list[str], index: int) -> SubEnvState:
    unwrapped = env.unwrapped
    plain = None
    try:
        physics = capture_state(env)
    except StateNotRestorableError:
        physics = None
        plain = _plain_attributes(unwrapped)
        if not plain:
            not_captured.append(f"env {index}: episode in progress ({type(unwrapped).__name__} holds no plain "
                                "state to copy; it is reset on resume)")
    monitor = next((w for w in _wrapper_chain(env) if isinstance(w, Monitor)), None)
    return SubEnvState(
        physics=physics,
        plain_attributes=plain,
        np_random=_generator_state(getattr(unwrapped, "_np_random", None)),
        np_random_seed=getattr(unwrapped, "_np_random_seed", None),
        action_space_random=_generator_state(getattr(env.action_space, "_np_random", None)),
        monitor=None if monitor is None else {name: copy.deepcopy(getattr(monitor, name)) for name in _MONITOR_FIELDS},
        elapsed_steps=next((w._elapsed_steps for w in _wrapper_chain(env) if isinstance(w, TimeLimit)), None),
        wrappers=[(type(w).__qualname__, w.get_resume_state()) for w in _wrapper_chain(env)
                  if all(hasattr(w, h) for h in WRAPPER_HOOKS)],
    )


def _restore_time_limit(env: gym.Env, elapsed: int | None) -> None:
    for wrapper in _wrapper_chain(env):
        if isinstance(wrapper, TimeLimit):
            wrapper._elapsed_steps = elapsed


def capture_vec_env(venv: VecEnv | None, not_captured: list[str], name: str) -> VecEnvState | None:
    """The state of a DummyVecEnv (under its wrappers); None, with a note, for other VecEnvs."""
    if venv is None:
        return None
    inner = innermost_vec_env(venv)
    if not isinstance(inner, DummyVecEnv):
        not_captured.append(f"{name}: {type(inner).__name__} sub-envs run in other processes and are reset on resume")
        return None
    vec_normalize = _vec_normalize(venv)
    sub_notes: list[str] = []
    state = VecEnvState(
        sub_envs=[_capture_sub_env(env, sub_notes, i) for i, env in enumerate(inner.envs)],
        seeds=list(inner._seeds),
        options=copy.deepcopy(inner._options),
        vec_normalize_returns=None if vec_normalize is None else np.array(vec_normalize.returns, copy=True),
    )
    not_captured.extend(f"{name} {note}" for note in sub_notes)
    return state


def _set_generator(generator: np.random.Generator | None, state: dict[str, Any] | None) -> None:
    if generator is not None and state is not None:
        generator.bit_generator.state = copy.deepcopy(state)


def restore_vec_env(venv: VecEnv, state: VecEnvState | None) -> bool:
    """Put a freshly made VecEnv into ``state``; returns whether every sub-env's episode was restored.

    The sub-envs are reset once first (under VecNormalize, so its statistics stay as loaded), then every
    piece of state is written over what the reset left.
    """
    if state is None:
        return False
    inner = innermost_vec_env(venv)
    if not isinstance(inner, DummyVecEnv) or len(inner.envs) != len(state.sub_envs):
        raise ValueError(f"Cannot restore {len(state.sub_envs)} sub-envs into {type(inner).__name__} "
                         f"with {getattr(inner, 'num_envs', '?')}.")
    pending_seeds = [seed is not None for seed in state.seeds]
    inner.reset()  # consumes the fresh env's seeds, as the original run's first reset did
    complete = True
    for env, sub in zip(inner.envs, state.sub_envs):
        unwrapped = env.unwrapped
        _set_generator(getattr(unwrapped, "_np_random", None), sub.np_random)
        if sub.np_random_seed is not None:
            unwrapped._np_random_seed = sub.np_random_seed
        _set_generator(getattr(env.action_space, "_np_random", None), sub.action_space_random)
        if sub.physics is not None:
            restore_state(env, sub.physics)
        elif sub.plain_attributes:
            for name, value in sub.plain_attributes.items():
                setattr(unwrapped, name, copy.deepcopy(value))
            _restore_time_limit(env, sub.elapsed_steps)
        else:
            complete = False
        monitor = next((w for w in _wrapper_chain(env) if isinstance(w, Monitor)), None)
        if monitor is not None and sub.monitor is not None:
            for name, value in sub.monitor.items():
                setattr(monitor, name, copy.deepcopy(value))
        saved = list(sub.wrappers)
        for wrapper in (w for w in _wrapper_chain(env) if all(hasattr(w, h) for h in WRAPPER_HOOKS)):
            # by class, in order: a wrapper added or removed since the checkpoint does not get another's state
            match = next((i for i, (name, _) in enumerate(saved) if name == type(wrapper).__qualname__), None)
            if match is not None:
                wrapper.set_resume_state(copy.deepcopy(saved.pop(match)[1]))
    # A checkpoint taken before the env's first reset keeps its seeds pending (e.g. no evaluation yet).
    inner._seeds = [seed if pending else None for seed, pending in zip(state.seeds, pending_seeds)]
    inner._options = copy.deepcopy(state.options)
    vec_normalize = _vec_normalize(venv)
    if vec_normalize is not None and state.vec_normalize_returns is not None:
        vec_normalize.returns = np.array(state.vec_normalize_returns, copy=True)
    return complete


def _callback_key(index: int, callback: BaseCallback) -> str:
    return f"{index}:{type(callback).__name__}"


def flatten_callbacks(callbacks: list[BaseCallback]) -> list[BaseCallback]:
    """The callbacks in a fixed order, nested ones (CallbackList, callback_on_new_best) included."""
    out: list[BaseCallback] = []
    for callback in callbacks:
        out.append(callback)
        nested = list(getattr(callback, "callbacks", []) or [])
        for attribute in ("callback", "callback_on_new_best", "callback_after_eval"):
            child = getattr(callback, attribute, None)
            if isinstance(child, BaseCallback):
                nested.append(child)
        out.extend(flatten_callbacks(nested))
    return out


def monitor_sizes(run_dir: str | os.PathLike) -> dict[str, int]:
    """Byte length of each Monitor CSV in ``run_dir`` (Monitor flushes after every episode)."""
    return {path.name: path.stat().st_size for path in sorted(Path(run_dir).glob("*.monitor.csv"))}


def truncate_monitor_files(run_dir: str | os.PathLike, sizes: dict[str, int]) -> list[str]:
    """Cut each Monitor CSV back to its length at the checkpoint: the resumed run writes those episodes again.

    Returns the names of the files that were cut.
    """
    cut = []
    for name, size in sizes.items():
        path = Path(run_dir) / name
        if path.is_file() and path.stat().st_size > size:
            with open(path, "r+b") as handle:
                handle.truncate(size)
            cut.append(name)
    return cut


def capture(
    model: BaseAlgorithm,
    *,
    eval_env: VecEnv | None = None,
    callbacks: list[BaseCallback] | None = None,
    run_dir: str | os.PathLike | None = None,
) -> ResumeState:
    """Capture the resume state at a point where training may stop (a rollout start)."""
    not_captured: list[str] = []
    return ResumeState(
        num_timesteps=int(model.num_timesteps),
        python_random=random.getstate(),
        numpy_random=np.random.get_state(),
        torch_random=th.get_rng_state(),
        cuda_random=th.cuda.get_rng_state_all() if th.cuda.is_available() else None,
        model_fields={name: copy.deepcopy(getattr(model, name)) for name in _MODEL_FIELDS if hasattr(model, name)},
        model_action_space_random=_generator_state(getattr(model.action_space, "_np_random", None)),
        train_env=capture_vec_env(model.get_env(), not_captured, "training env"),
        eval_env=capture_vec_env(eval_env, not_captured, "evaluation env"),
        callback_calls={
            _callback_key(i, c): int(c.n_calls) for i, c in enumerate(flatten_callbacks(list(callbacks or [])))
        },
        monitor_sizes=monitor_sizes(run_dir) if run_dir is not None else {},
        not_captured=not_captured,
        callback_states={
            _callback_key(i, c): c.get_resume_state()
            for i, c in enumerate(flatten_callbacks(list(callbacks or [])))
            if all(hasattr(c, hook) for hook in WRAPPER_HOOKS)
        },
    )


def restore(
    state: ResumeState,
    model: BaseAlgorithm,
    *,
    eval_env: VecEnv | None = None,
    callbacks: list[BaseCallback] | None = None,
) -> list[str]:
    """Put a freshly loaded model, its envs and callbacks into ``state``; returns what restarts instead.

    Call after the model is loaded onto its env and the callbacks are built, right before ``learn`` (with
    ``reset_num_timesteps=False``, which keeps the restored last observation instead of resetting).
    """
    if state.num_timesteps != model.num_timesteps:
        raise ValueError(f"The resume state is of step {state.num_timesteps}, the model of {model.num_timesteps}.")
    notes = list(state.not_captured)
    train_env = model.get_env()
    restored_episode = train_env is not None and restore_vec_env(train_env, state.train_env)
    if state.eval_env is not None and eval_env is not None:
        restore_vec_env(eval_env, state.eval_env)
    if restored_episode:
        for name, value in state.model_fields.items():
            setattr(model, name, copy.deepcopy(value))
    else:
        model._last_obs = None  # type: ignore[assignment]  # learn() resets the env: the episode restarts
    if state.model_action_space_random is not None:
        model.action_space.seed(0)  # creates the generator if the loaded space has none yet
        _set_generator(model.action_space.np_random, state.model_action_space_random)
    for i, callback in enumerate(flatten_callbacks(list(callbacks or []))):
        calls = state.callback_calls.get(_callback_key(i, callback))
        if calls is not None:
            callback.n_calls = calls
        callback_state = getattr(state, "callback_states", {}).get(_callback_key(i, callback))
        if callback_state is not None and hasattr(callback, "set_resume_state"):
            callback.set_resume_state(callback_state)
    random.setstate(state.python_random)
    np.random.set_state(state.numpy_random)
    th.set_rng_state(state.torch_random)
    if state.cuda_random is not None and th.cuda.is_available():
        th.cuda.set_rng_state_all(state.cuda_random)
    return notes


def save(state: ResumeState, path: str | os.PathLike) -> None:
    with open(path, "wb") as handle:
        pickle.dump(state, handle, protocol=pickle.HIGHEST_PROTOCOL)


def load(path: str | os.PathLike) -> ResumeState:
    """Read a resume state; raises CheckpointError for a file that is not one (truncated, another format)."""
    state = read_pickle(path, "Resume state")
    if not isinstance(state, ResumeState):
        raise CheckpointError(f"{str(path)!r} holds a {type(state).__name__}, not a resume state.")
    return state
