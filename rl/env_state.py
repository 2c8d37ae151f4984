"""Capture and restore the full state of a running environment, so an episode can restart mid-way.

Used by SnapshotRL (restart students from teacher states) and by anything else that needs to put a
simulator back into a recorded state. Restoring a captured state and taking the same action gives the
same next observation and reward, bit for bit:

- MuJoCo (Gymnasium's ``MujocoEnv``): MuJoCo's own integration state (``mj_getState`` with
  ``mjSTATE_INTEGRATION``: time, qpos, qvel, act, warm-start accelerations, controls, applied forces,
  mocap), then ``mj_forward`` to recompute derived quantities.
- PyBullet (``pybullet_envs_gymnasium``): the engine's ``saveBullet`` / ``restoreState`` file format,
  held in memory as bytes, plus the env's and robot's plain Python attributes (reward potential, initial
  height, foot contacts, ...) that the next reward and observation depend on.
- panda-gym (its ``PyBullet`` simulation): the same ``saveBullet`` bytes from ``sim.physics_client``, plus the
  task's and robot's plain attributes (the goal) and the task's generator. panda-gym reads link positions from
  Bullet's cached link states, which a step leaves as computed during the step but ``restoreState`` recomputes
  from the restored joints: an env that went on after a capture and one restored from it then steered the
  end effector from positions 0.005 to 0.05 apart. So a capture restores the bytes it just wrote into the
  running env too, and both continue from the same cache. A capture therefore changes a panda-gym trajectory
  at float precision, the same way in a run and in its resumed copy.
- gymnasium-robotics (its ``MujocoRobotEnv``, e.g. the Fetch tasks of ``envs.fetch_lift``): the same MuJoCo
  integration state, plus the episode's goal (``env.goal``, which the next reward and observation read). Their
  step leaves the derived quantities (body positions) as of the last substep's start, and the next action places
  the mocap from the gripper's body position, so as for panda-gym a capture also runs ``mj_forward`` on the
  running env, and the env and its restored copy continue from the same positions. ``envs.fetch_lift`` runs
  ``mj_forward`` after each step itself, so there a capture changes nothing.
- All: the ``TimeLimit`` wrapper's step counter.

Which simulator drives an env is told here once, by :func:`detect_engine` (None for any other env), for this module
and for :mod:`sim2real._engines`, which changes the dynamics of the same simulators.
"""

from __future__ import annotations

import copy
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import TimeLimit

MUJOCO = "mujoco"
PYBULLET = "pybullet"
PANDA_GYM = "panda_gym"
GYMNASIUM_ROBOTICS = "gymnasium_robotics"
MUJOCO_ENGINES = (MUJOCO, GYMNASIUM_ROBOTICS)
"""Engines whose physics is MuJoCo's integration state vector."""


class StateNotRestorableError(TypeError):
    """Raised for an env whose simulator state this module cannot capture and restore."""


@dataclass
class EnvState:
    """A restorable snapshot of one environment."""

    engine: str
    """``"mujoco"``, ``"gymnasium_robotics"``, ``"pybullet"`` or ``"panda_gym"``."""
    physics: np.ndarray | bytes
    """MuJoCo's integration state vector, or a PyBullet ``.bullet`` file's bytes."""
    elapsed_steps: int | None
    """The TimeLimit counter (None when the env has no time limit)."""
    python_attributes: dict[str, dict[str, Any]] = field(default_factory=dict)
    """PyBullet: plain attributes of the env ("env") and its robot ("robot"); gymnasium-robotics: the env's goal
    ("env")."""
    task_random: dict[str, Any] | None = None
    """panda-gym: the task's own generator (``task.np_random``, which draws each episode's goal), as
    ``bit_generator.state``. The env's generator is the resume state's; panda-gym keeps a second one."""


def env_name(env: gym.Env) -> str:
    """The env's registered id (from the wrapper's or the unwrapped env's spec), else its class name: for messages."""
    spec = getattr(env, "spec", None) or getattr(env.unwrapped, "spec", None)
    return spec.id if spec is not None else type(env.unwrapped).__name__


def detect_engine(env: gym.Env) -> str | None:
    """Which simulator drives ``env``: ``MUJOCO`` (Gymnasium's ``MujocoEnv``), ``GYMNASIUM_ROBOTICS`` (its
    ``MujocoRobotEnv``), ``PYBULLET`` (``pybullet_envs_gymnasium``), ``PANDA_GYM`` (panda-gym's ``PyBullet``
    simulation), or None for any other env.

    A package that is not installed cannot have made ``env``, so its check is skipped.
    """
    unwrapped = env.unwrapped
    try:
        from gymnasium.envs.mujoco.mujoco_env import MujocoEnv

        if isinstance(unwrapped, MujocoEnv):
            return MUJOCO
    except ImportError:  # gymnasium without the mujoco extra
        pass
    if hasattr(unwrapped, "model") and hasattr(unwrapped, "data"):
        try:
            from gymnasium_robotics.envs.robot_env import MujocoRobotEnv

            if isinstance(unwrapped, MujocoRobotEnv):
                return GYMNASIUM_ROBOTICS
        except ImportError:  # gymnasium-robotics not installed
            pass
    try:
        from pybullet_envs_gymnasium.env_bases import MJCFBaseBulletEnv

        if isinstance(unwrapped, MJCFBaseBulletEnv):
            return PYBULLET
    except ImportError:  # PyBullet envs not installed
        pass
    if type(getattr(unwrapped, "sim", None)).__module__.startswith("panda_gym"):
        return PANDA_GYM
    return None


def engine_of(env: gym.Env) -> str:
    """:func:`detect_engine` for an env whose state this module restores; raises StateNotRestorableError naming the
    env otherwise."""
    engine = detect_engine(env)
    if engine is None:
        raise StateNotRestorableError(
            f"Cannot capture and restore the state of {env_name(env)!r} ({type(env.unwrapped).__name__}): only "
            "Gymnasium MuJoCo envs, gymnasium-robotics MuJoCo envs, pybullet_envs_gymnasium envs and panda-gym envs "
            "are supported."
        )
    return engine


def _time_limit(env: gym.Env) -> TimeLimit | None:
    current: gym.Env = env
    while isinstance(current, gym.Wrapper):
        if isinstance(current, TimeLimit):
            return current
        current = current.env
    return None


def is_plain(value: Any) -> bool:
    """Numbers, booleans, numeric arrays and (nested) lists or tuples of them."""
    if isinstance(value, (bool, int, float, np.integer, np.floating)):
        return True
    if isinstance(value, np.ndarray):
        return value.dtype != object
    if isinstance(value, (list, tuple)):
        return all(is_plain(item) for item in value)
    return False


ENGINE_ATTRIBUTES = frozenset({
    "physicsClientId", "ownsPhysicsClient", "stateId", "objects", "ground_ids", "doneLoading", "should_render",
    "isRender", "_np_random_seed", "self_collision", "power", "motor_power", "electricity_cost", "stall_torque_cost",
})
"""PyBullet attributes that are handles into one engine instance (client id, saved-state id, body ids) or
settings of the env (rendering, the robot's power, costs and collision flags, which a simulator variant may
change), not simulation state: copying them from another instance would point the env at foreign engine
objects, or make its next reset reload and re-scale the robot (a SimVariant with mass=2 then doubled the masses
twice)."""
HANDLE_SUFFIXES = ("Id", "Ids", "_id", "_ids", "Uid", "Index")
"""Names that end like this hold engine unique ids (bodies, joints, constraints, saved states): never copied."""


def _plain_attributes(obj: Any) -> dict[str, Any]:
    """The plain attributes that the next reward and observation depend on (potential, contacts, positions)."""
    return {
        name: copy.deepcopy(value) for name, value in vars(obj).items()
        if is_plain(value) and name not in ENGINE_ATTRIBUTES and not name.endswith(HANDLE_SUFFIXES)
        and not name.startswith(("_cam", "_render"))
    }


def capture_state(env: gym.Env) -> EnvState:
    """Capture everything needed to continue ``env`` from where it is now."""
    engine = engine_of(env)
    time_limit = _time_limit(env)
    elapsed = None
    if time_limit is not None and time_limit._elapsed_steps is not None:
        elapsed = int(time_limit._elapsed_steps)
    unwrapped = env.unwrapped
    if engine in MUJOCO_ENGINES:
        import mujoco

        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        physics = np.empty(mujoco.mj_stateSize(unwrapped.model, spec))
        mujoco.mj_getState(unwrapped.model, unwrapped.data, physics, spec)
        if engine == MUJOCO:
            return EnvState(engine=engine, physics=physics, elapsed_steps=elapsed)
        mujoco.mj_forward(unwrapped.model, unwrapped.data)  # positions as a restore leaves them (module docstring)
        return EnvState(engine=engine, physics=physics, elapsed_steps=elapsed,
                        python_attributes={"env": {"goal": copy.deepcopy(unwrapped.goal)}})
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "state.bullet")
        _bullet_client(unwrapped, engine).saveBullet(path)
        with open(path, "rb") as handle:
            physics_bytes = handle.read()
        if engine == PANDA_GYM:  # the cached link states, as a restore leaves them (module docstring)
            _bullet_client(unwrapped, engine).restoreState(fileName=path)
    attributes = {"robot": _plain_attributes(unwrapped.robot)}
    attributes["task" if engine == PANDA_GYM else "env"] = _plain_attributes(_python_owner(unwrapped, engine))
    task_random = None
    if engine == PANDA_GYM and isinstance(getattr(unwrapped.task, "np_random", None), np.random.Generator):
        task_random = copy.deepcopy(unwrapped.task.np_random.bit_generator.state)
    return EnvState(engine=engine, physics=physics_bytes, elapsed_steps=elapsed, python_attributes=attributes,
                    task_random=task_random)


def _bullet_client(unwrapped: gym.Env, engine: str) -> Any:
    return unwrapped.sim.physics_client if engine == PANDA_GYM else unwrapped._p


def _python_owner(unwrapped: gym.Env, engine: str) -> Any:
    """Where a Bullet env keeps the Python state its next step reads: panda-gym's task, or the env itself."""
    return unwrapped.task if engine == PANDA_GYM else unwrapped


def restore_state(env: gym.Env, state: EnvState) -> None:
    """Put ``env`` (already reset at least once) into ``state``."""
    engine = engine_of(env)
    if engine != state.engine:
        raise StateNotRestorableError(f"A {state.engine} state cannot be restored into {env_name(env)!r} ({engine}).")
    unwrapped = env.unwrapped
    if engine in MUJOCO_ENGINES:
        import mujoco

        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        if len(state.physics) != mujoco.mj_stateSize(unwrapped.model, spec):
            raise StateNotRestorableError(
                f"The MuJoCo state has {len(state.physics)} values but {env_name(env)!r} needs "
                f"{mujoco.mj_stateSize(unwrapped.model, spec)}: it was captured from another model."
            )
        mujoco.mj_setState(unwrapped.model, unwrapped.data, np.asarray(state.physics, dtype=np.float64), spec)
        mujoco.mj_forward(unwrapped.model, unwrapped.data)
        for name, value in state.python_attributes.get("env", {}).items():
            setattr(unwrapped, name, copy.deepcopy(value))
    else:
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "state.bullet")
            with open(path, "wb") as handle:
                handle.write(state.physics)  # type: ignore[arg-type]
            _bullet_client(unwrapped, engine).restoreState(fileName=path)
        owners = {"env": unwrapped, "task": getattr(unwrapped, "task", None), "robot": unwrapped.robot}
        for key, attributes in state.python_attributes.items():
            for name, value in attributes.items():
                setattr(owners[key], name, copy.deepcopy(value))
        task_random = getattr(state, "task_random", None)  # absent from checkpoints written before it was kept
        if task_random is not None:
            unwrapped.task.np_random.bit_generator.state = copy.deepcopy(task_random)
    time_limit = _time_limit(env)
    if time_limit is not None and state.elapsed_steps is not None:
        time_limit._elapsed_steps = state.elapsed_steps
