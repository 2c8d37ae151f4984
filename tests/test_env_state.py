"""Restoring a captured state reproduces the next observations and rewards exactly (MuJoCo, PyBullet)."""

import gymnasium as gym
import numpy as np
import pytest

from rl.env_state import (
    ENGINE_ATTRIBUTES,
    HANDLE_SUFFIXES,
    StateNotRestorableError,
    capture_state,
    detect_engine,
    restore_state,
)
from rl.envs import make_env


def _rollout(env, actions):
    return [env.step(action)[:3] for action in actions]


@pytest.mark.parametrize("env_id", ["HalfCheetah-v4", "Hopper-v4", "HopperBulletEnv-v0"])
def test_restore_reproduces_the_next_steps(env_id):
    env = make_env(env_id)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(23):
        env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
    state = capture_state(env)
    actions = [rng.uniform(-1, 1, env.action_space.shape).astype(np.float32) for _ in range(5)]
    original = _rollout(env, actions)

    env.reset(seed=123)  # somewhere else entirely
    for _ in range(7):
        env.step(env.action_space.sample())
    restore_state(env, state)
    replayed = _rollout(env, actions)
    for (obs_a, reward_a, term_a), (obs_b, reward_b, term_b) in zip(original, replayed):
        np.testing.assert_array_equal(obs_a, obs_b)
        assert reward_a == reward_b and term_a == term_b
    env.close()


def test_time_limit_counter_is_restored():
    env = make_env("HalfCheetah-v4", max_episode_steps=30)
    env.reset(seed=0)
    for _ in range(25):
        env.step(env.action_space.sample())
    state = capture_state(env)
    assert state.elapsed_steps == 25
    env.reset(seed=1)
    restore_state(env, state)
    truncations = [env.step(env.action_space.sample())[3] for _ in range(5)]
    assert truncations == [False, False, False, False, True]  # the 30-step limit counts from step 25


def test_unsupported_env_is_named():
    env = gym.make("CartPole-v1")
    assert detect_engine(env) is None  # no simulator state to restore: detection says so without raising
    with pytest.raises(StateNotRestorableError, match="CartPole-v1"):
        capture_state(env)


def test_state_of_another_model_is_refused():
    cheetah, hopper = make_env("HalfCheetah-v4"), make_env("Hopper-v4")
    cheetah.reset(seed=0)
    hopper.reset(seed=0)
    with pytest.raises(StateNotRestorableError, match="another model"):
        restore_state(hopper, capture_state(cheetah))


def _link_masses(env) -> list[float]:
    unwrapped = env.unwrapped
    client = unwrapped._p
    body = unwrapped.robot.objects[0] if isinstance(unwrapped.robot.objects, tuple) else unwrapped.robot.objects
    return [client.getDynamicsInfo(body, link)[0] for link in range(-1, client.getNumJoints(body))]


def test_pybullet_state_from_another_instance_carries_no_engine_handles():
    """Restoring into another instance (here a heavier simulator variant) takes the simulation state only: the
    receiving env keeps its own client, saved state and bodies, and its variant's masses stay as they were."""
    from sim2real import SimVariant

    source = make_env("HopperBulletEnv-v0")
    source.reset(seed=0)
    for _ in range(10):
        source.step(source.action_space.sample())
    state = capture_state(source)
    assert not {"physicsClientId", "stateId", "ownsPhysicsClient"} & set(state.python_attributes["env"])
    assert "objects" not in state.python_attributes["robot"]
    captured = set(state.python_attributes["env"]) | set(state.python_attributes["robot"])
    assert not captured & ENGINE_ATTRIBUTES and not [name for name in captured if name.endswith(HANDLE_SUFFIXES)]
    assert {"potential", "initial_z", "feet_contact"} <= captured  # what the next reward and observation read

    plain = make_env("HopperBulletEnv-v0")
    plain.reset(seed=1)
    heavy = SimVariant(make_env("HopperBulletEnv-v0"), spec={"mass": 2.0})
    heavy.reset(seed=1)
    nominal, doubled = _link_masses(plain), _link_masses(heavy)
    handles = (heavy.unwrapped.physicsClientId, heavy.unwrapped.stateId, heavy.unwrapped.robot.objects)
    restore_state(heavy, state)
    assert (heavy.unwrapped.physicsClientId, heavy.unwrapped.stateId, heavy.unwrapped.robot.objects) == handles
    np.testing.assert_allclose(_link_masses(heavy), doubled)  # restoring itself changes no dynamics
    heavy.reset(seed=2)
    heavy.step(heavy.action_space.sample())
    np.testing.assert_allclose(_link_masses(heavy), doubled)  # x2 of nominal, not x4
    np.testing.assert_allclose(np.array(doubled)[np.array(nominal) > 0], 2 * np.array(nominal)[np.array(nominal) > 0])

    # Into a plain second instance, the same actions continue exactly as in the source.
    restore_state(plain, state)
    actions = [source.action_space.sample() for _ in range(5)]
    for (obs_a, reward_a, _), (obs_b, reward_b, _) in zip(_rollout(source, actions), _rollout(plain, actions)):
        np.testing.assert_array_equal(obs_a, obs_b)
        assert reward_a == reward_b


@pytest.mark.parametrize("env_id", ["PandaReach-v3", "PandaPush-v3", "PandaLiftWide-v0"])
def test_panda_gym_restore_into_another_instance_continues_the_captured_episode(env_id):
    """The captured env and a fresh instance restored from its capture step identically: panda-gym's cached
    link states are recomputed on both sides (restoreState alone left the end-effector control reading the
    previous state's link positions, 0.005 to 0.05 off at the next step)."""
    captured = make_env(env_id, render_mode="rgb_array")
    captured.reset(seed=1)
    rng = np.random.default_rng(0)
    actions = [rng.uniform(-1, 1, captured.action_space.shape).astype(np.float32) for _ in range(30)]
    for action in actions[:20]:
        captured.step(action)
    state = capture_state(captured)
    original = _rollout(captured, actions[20:])

    fresh = make_env(env_id, render_mode="rgb_array")
    fresh.reset(seed=7)
    restore_state(fresh, state)
    for (obs_a, reward_a, term_a), (obs_b, reward_b, term_b) in zip(original, _rollout(fresh, actions[20:])):
        for key in obs_a:
            np.testing.assert_array_equal(obs_a[key], obs_b[key])
        assert reward_a == reward_b and term_a == term_b


def test_panda_gym_task_generator_is_restored():
    captured = make_env("PandaReach-v3", render_mode="rgb_array")
    captured.reset(seed=1)
    state = capture_state(captured)
    expected = captured.unwrapped.task.np_random.random(3)
    fresh = make_env("PandaReach-v3", render_mode="rgb_array")
    fresh.reset(seed=2)
    restore_state(fresh, state)
    np.testing.assert_array_equal(fresh.unwrapped.task.np_random.random(3), expected)


@pytest.mark.parametrize("env_id", ["FetchLiftWide-v0", "FetchLiftPlate-v0"])
def test_gymnasium_robotics_restore_into_another_instance_continues_the_captured_episode(env_id):
    """gymnasium-robotics' Fetch (MujocoRobotEnv, not Gymnasium's MujocoEnv): MuJoCo's integration state and the
    goal restored into a fresh instance continue the episode bit for bit, rendering in between changes nothing,
    and the capture leaves the captured episode exactly as it would have gone on."""
    def rollout_from_step_20(capture: bool):
        env = make_env(env_id, render_mode="rgb_array")
        env.reset(seed=1)
        rng = np.random.default_rng(0)
        actions = [rng.uniform(-1, 1, env.action_space.shape).astype(np.float32) for _ in range(30)]
        for action in actions[:20]:
            env.step(action)
        state = capture_state(env) if capture else None
        return state, actions[20:], _rollout(env, actions[20:])

    state, actions, original = rollout_from_step_20(capture=True)
    assert state.engine == "gymnasium_robotics" and state.elapsed_steps == 20
    np.testing.assert_array_equal(state.python_attributes["env"]["goal"], [0.1])
    _, _, uncaptured = rollout_from_step_20(capture=False)

    fresh = make_env(env_id, render_mode="rgb_array")
    fresh.reset(seed=7)
    fresh.unwrapped.goal = np.array([0.3])  # restored from the state
    restore_state(fresh, state)
    fresh.render()
    for (obs_a, reward_a, term_a), (obs_b, reward_b, term_b), (obs_c, _, _) in zip(
            original, _rollout(fresh, actions), uncaptured):
        for key in obs_a:
            np.testing.assert_array_equal(obs_a[key], obs_b[key])
            np.testing.assert_array_equal(obs_a[key], obs_c[key])
        assert reward_a == reward_b and term_a == term_b


def test_gymnasium_robotics_state_is_refused_by_a_gymnasium_mujoco_env():
    fetch, cheetah = make_env("FetchLiftWide-v0"), make_env("HalfCheetah-v4")
    fetch.reset(seed=0)
    cheetah.reset(seed=0)
    with pytest.raises(StateNotRestorableError, match="gymnasium_robotics state cannot be restored"):
        restore_state(cheetah, capture_state(fetch))
