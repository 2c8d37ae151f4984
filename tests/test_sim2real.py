"""sim2real: spec parsing, simulator variants (MuJoCo, PyBullet, classic control), domain randomisation, and the
real/sim replay buffer.

A variant must change the dynamics (same state, same action, a different next state) and leave every other
env alone (a fresh env of the same id steps exactly as before).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from rl.env_state import capture_state, detect_engine, restore_state
from rl.envs import make_env
from sim2real import (
    PARAMETERS,
    DomainRandomization,
    RealSimReplayBuffer,
    SimSpecError,
    SimVariant,
    dynamics_backend,
    format_sim_spec,
    make_sim_env,
    parse_sim_spec,
)

MUJOCO_ID = "Hopper-v4"
BULLET_ID = "HalfCheetahBulletEnv-v0"


def random_state(env_id: str, steps: int = 30, seed: int = 0):
    """A mid-episode state of ``env_id`` (after random actions, feet on the ground) and an action to take there."""
    env = make_env(env_id)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    space = env.action_space
    for _ in range(steps):
        env.step(rng.uniform(space.low, space.high).astype(space.dtype))
    state = capture_state(env)
    action = rng.uniform(space.low, space.high).astype(space.dtype)
    reference = env.step(action)[0]
    env.close()
    return state, action, reference


def step_from(env: gym.Env, state, action) -> np.ndarray:
    env.reset(seed=1)
    restore_state(env, state)
    return env.step(action)[0]


# Specs.


def test_parse_sim_spec_reads_names_aliases_and_values():
    assert parse_sim_spec("gravity=2.0") == {"gravity": 2.0}
    assert parse_sim_spec(" Gravity = 2 , friction=0.3,density=0.5,action_noise=0.1 ") == {
        "gravity": 2.0, "friction": 0.3, "mass": 0.5, "action_noise": 0.1,
    }
    assert parse_sim_spec("joint_damping=3") == {"damping": 3.0}
    assert format_sim_spec(parse_sim_spec("friction=0.5,gravity=2")) == "gravity=2,friction=0.5"
    assert parse_sim_spec("gravity=0") == {"gravity": 0.0}  # no gravity is a valid simulator


@pytest.mark.parametrize("text, message", [
    ("gravty=2", "unknown dynamics parameter 'gravty' (did you mean 'gravity'?)"),
    ("viscosity=2", "unknown dynamics parameter 'viscosity'"),
    ("gravity", "is not of the form name=value"),
    ("", "it is empty"),
    ("gravity=fast", "the value of gravity, 'fast', is not a number"),
    ("mass=0", "mass must be a finite number > 0"),
    ("friction=-0.5", "friction must be a finite number >= 0"),
    ("gravity=nan", "gravity must be a finite number"),
    ("gravity=2,gravity=3", "gravity is given twice"),
])
def test_invalid_specs_are_refused_with_a_clear_message(text, message):
    with pytest.raises(SimSpecError) as error:
        parse_sim_spec(text)
    assert message in str(error.value)
    assert f"Invalid sim spec {text!r}" in str(error.value)
    if "unknown" in message or "empty" in message or "name=value" in message:
        for name in PARAMETERS:  # the message lists everything that can be changed
            assert f"{name}=<" in str(error.value)


# MuJoCo.


@pytest.fixture(scope="module")
def mujoco_state():
    return random_state(MUJOCO_ID)


@pytest.mark.parametrize("spec", ["gravity=2.0", "friction=0.3", "mass=2.0", "density=0.5", "damping=5.0",
                                  "action_noise=0.5"])
def test_mujoco_variant_changes_the_next_state_and_leaves_the_real_env_alone(spec, mujoco_state):
    state, action, reference = mujoco_state
    variant = SimVariant(make_env(MUJOCO_ID), spec)
    assert variant.engine == "mujoco"
    changed = step_from(variant, state, action)
    assert np.abs(changed - reference).max() > 1e-3, f"{spec} did not change the dynamics"
    fresh = make_env(MUJOCO_ID)  # made after the variant: the installed model is untouched
    np.testing.assert_array_equal(step_from(fresh, state, action), reference)


def test_mujoco_variant_sets_the_model_values_and_keeps_them_through_resets():
    real = make_env(MUJOCO_ID).unwrapped.model
    variant = SimVariant(make_env(MUJOCO_ID), "gravity=2,friction=0.3,mass=1.5,damping=4")
    model = variant.unwrapped.model
    for _ in range(2):
        np.testing.assert_allclose(model.opt.gravity, 2 * real.opt.gravity)
        np.testing.assert_allclose(model.geom_friction, 0.3 * real.geom_friction)
        np.testing.assert_allclose(model.body_mass, 1.5 * real.body_mass)
        np.testing.assert_allclose(model.body_inertia, 1.5 * real.body_inertia)
        np.testing.assert_allclose(model.dof_damping, 4 * real.dof_damping)
        np.testing.assert_allclose(model.body_subtreemass, 1.5 * real.body_subtreemass)  # derived constants follow
        variant.reset(seed=3)
    assert variant.spec_text == "gravity=2,friction=0.3,mass=1.5,damping=4"


def test_factors_of_one_restore_the_original_mujoco_dynamics(mujoco_state):
    state, action, reference = mujoco_state
    env = make_env(MUJOCO_ID)
    backend = dynamics_backend(env)
    backend.apply({"mass": 3.0, "gravity": 0.5, "friction": 0.2, "damping": 3.0})
    assert np.abs(step_from(env, state, action) - reference).max() > 1e-3
    backend.apply({})  # every factor back to 1: mj_setConst leaves nothing of the heavier model behind
    np.testing.assert_array_equal(step_from(env, state, action), reference)


def test_action_noise_is_seeded_by_reset():
    def rollout() -> np.ndarray:
        env = SimVariant(make_env(MUJOCO_ID), "action_noise=0.3")
        env.reset(seed=7)
        return np.array([env.step(np.zeros(3, dtype=np.float32))[0] for _ in range(5)])

    np.testing.assert_array_equal(rollout(), rollout())


# PyBullet.


@pytest.fixture(scope="module")
def bullet_state():
    pytest.importorskip("pybullet_envs_gymnasium")
    return random_state(BULLET_ID)


@pytest.mark.parametrize("spec", ["gravity=2.0", "friction=0.3", "mass=2.0"])
def test_pybullet_variant_changes_the_next_state_and_leaves_the_real_env_alone(spec, bullet_state):
    state, action, reference = bullet_state
    variant = SimVariant(make_env(BULLET_ID), spec)
    assert variant.engine == "pybullet"
    changed = step_from(variant, state, action)
    assert np.abs(changed - reference).max() > 1e-3, f"{spec} did not change the dynamics"
    fresh = make_env(BULLET_ID)
    np.testing.assert_array_equal(step_from(fresh, state, action), reference)
    variant.close()
    fresh.close()


def test_pybullet_variant_survives_the_envs_own_reset_of_gravity():
    pytest.importorskip("pybullet_envs_gymnasium")
    variant = SimVariant(make_env(BULLET_ID), "gravity=2,mass=0.5")
    real = make_env(BULLET_ID)
    real.reset(seed=0)
    robot = real.unwrapped.robot.objects[0]
    for seed in (0, 1):  # the env's reset calls setGravity(0, 0, -9.8) again
        variant.reset(seed=seed)
        p = variant.unwrapped._p
        assert p.getPhysicsEngineParameters()["gravityAccelerationZ"] == pytest.approx(-19.6)
        torso_mass = real.unwrapped._p.getDynamicsInfo(robot, 0)[0]
        assert p.getDynamicsInfo(robot, 0)[0] == pytest.approx(0.5 * torso_mass)
    assert real.unwrapped._p.getPhysicsEngineParameters()["gravityAccelerationZ"] == pytest.approx(-9.8)
    variant.close()
    real.close()


def test_pybullet_refuses_what_its_engine_cannot_change():
    pytest.importorskip("pybullet_envs_gymnasium")
    with pytest.raises(SimSpecError) as error:
        SimVariant(make_env(BULLET_ID), "damping=2")
    assert "cannot change damping; it can change: gravity, friction, mass, action_noise" in str(error.value)


# Engine detection, shared with rl.env_state.


@pytest.mark.parametrize(("env_id", "engine", "backend"), [
    ("HalfCheetah-v4", "mujoco", "mujoco"),
    ("HopperBulletEnv-v0", "pybullet", "pybullet"),
    ("FetchLiftWide-v0", "gymnasium_robotics", "none"),
    ("PandaReach-v3", "panda_gym", "none"),
    ("Pendulum-v1", None, "classic"),
])
def test_dynamics_backend_follows_the_one_engine_detection(env_id, engine, backend):
    """rl.env_state.detect_engine tells the simulator for state capture and for dynamics alike; sim2real changes
    MuJoCo and PyBullet envs, and gymnasium-robotics and panda-gym envs get no backend (as before the merge)."""
    env = make_env(env_id, render_mode="rgb_array" if env_id.startswith("Panda") else None)
    env.reset(seed=0)
    assert detect_engine(env) == engine
    assert dynamics_backend(env).engine == backend
    env.close()


# Classic control and domain randomisation.


def test_pendulum_gravity_and_refusal_of_what_it_lacks():
    variant = SimVariant(make_env("Pendulum-v1"), {"gravity": 2.0})
    assert variant.engine == "classic" and variant.unwrapped.g == 20.0
    assert make_env("Pendulum-v1").unwrapped.g == 10.0
    assert make_sim_env("Pendulum-v1", "gravity=0.5").unwrapped.g == 5.0
    with pytest.raises(SimSpecError, match="cannot change friction; it can change: gravity, action_noise"):
        SimVariant(make_env("Pendulum-v1"), "friction=0.5")


def test_domain_randomization_draws_new_parameters_at_each_reset_within_the_ranges():
    ranges = {"gravity": (0.5, 2.0), "friction": (0.8, 1.2), "mass": 1.5}

    def draws(seed: int) -> list[dict[str, float]]:
        env = DomainRandomization(make_env(MUJOCO_ID), ranges=ranges, seed=seed)
        nominal = make_env(MUJOCO_ID).unwrapped.model.opt.gravity
        result = []
        for episode in range(4):
            _, info = env.reset(seed=episode)
            assert info["sim_parameters"] == env.parameters
            np.testing.assert_allclose(env.unwrapped.model.opt.gravity, nominal * env.parameters["gravity"])
            result.append(dict(env.parameters))
        return result

    first = draws(0)
    assert first == draws(0), "the same seed draws the same parameters"
    assert first != draws(1)
    assert len({d["gravity"] for d in first}) == 4, "a new draw at every reset"
    for d in first:
        assert 0.5 <= d["gravity"] <= 2.0 and 0.8 <= d["friction"] <= 1.2 and d["mass"] == 1.5


@pytest.mark.parametrize("ranges, message", [
    ({"gravity": (2.0, 0.5)}, "the range of gravity is empty"),
    ({"gravitation": (0.5, 2.0)}, "unknown dynamics parameter 'gravitation'"),
    ({"mass": (0.0, 2.0)}, "mass must be a finite number > 0"),
    ({}, "no parameter to randomise"),
])
def test_domain_randomization_refuses_invalid_ranges(ranges, message):
    with pytest.raises(SimSpecError, match=message):
        DomainRandomization(make_env(MUJOCO_ID), ranges=ranges, seed=0)


# The real/sim replay buffer.


def test_real_sim_buffer_samples_each_region_and_never_overwrites_the_real_rows():
    env = make_env("Pendulum-v1")
    buffer = RealSimReplayBuffer(10, env.observation_space, env.action_space, device="cpu")
    for i in range(4):  # real rows: observations 0..3
        buffer.add(np.full((1, 3), i), np.full((1, 3), i), np.zeros((1, 1)), np.zeros(1), np.zeros(1), [{}])
    buffer.set_real_size(4)
    with pytest.raises(ValueError, match="no sim transition"):
        buffer.sample_sim(2)
    for i in range(100, 109):  # 9 sim rows into a region of 6: wraps inside it
        buffer.add(np.full((1, 3), i), np.full((1, 3), i), np.zeros((1, 1)), np.zeros(1), np.zeros(1), [{}])
    np.testing.assert_array_equal(buffer.observations[:4, 0, 0], [0, 1, 2, 3])
    assert sorted(buffer.observations[4:, 0, 0]) == [103, 104, 105, 106, 107, 108]
    assert buffer.real_size == 4 and buffer.sim_size == 6 and buffer.size() == 10
    assert set(buffer.sample_real(200).observations[:, 0].tolist()) == {0, 1, 2, 3}
    assert set(buffer.sample_sim(200).observations[:, 0].tolist()) == {103, 104, 105, 106, 107, 108}
    with pytest.raises(ValueError, match="must be all of them"):
        buffer.set_real_size(3)


# Resume state (a checkpoint of a killed run: rl.resume_state calls these two methods on every wrapper).


def _continue(env: gym.Env, actions, resets: int = 1) -> list[np.ndarray]:
    """Observations of ``actions``, then of each later episode's reset and first action (no seed: the streams go on)."""
    out = [env.step(action)[0] for action in actions]
    for _ in range(resets):
        out.append(env.reset()[0])
        out.append(env.step(actions[0])[0])
    return out


def _resumed(wrapper_class, source: gym.Env, *args, **kwargs) -> gym.Env:
    """A fresh wrapper, reset elsewhere, given ``source``'s simulator state, reset generator and resume state (what
    rl.resume_state restores)."""
    fresh = wrapper_class(make_env(MUJOCO_ID), *args, **kwargs)
    fresh.reset(seed=99)
    restore_state(fresh, capture_state(source))
    fresh.unwrapped.np_random.bit_generator.state = source.unwrapped.np_random.bit_generator.state
    fresh.set_resume_state(source.get_resume_state())
    return fresh


def test_sim_variant_resume_state_continues_the_same_action_noise():
    source = SimVariant(make_env(MUJOCO_ID), "action_noise=0.3,gravity=1.5")
    source.reset(seed=3)
    for _ in range(4):
        source.step(np.zeros(3, dtype=np.float32))
    assert set(source.get_resume_state()) == {"noise_rng"}  # the spec is the wrapper's own, not state
    copy_ = _resumed(SimVariant, source, "action_noise=0.3,gravity=1.5")
    unresumed = SimVariant(make_env(MUJOCO_ID), "action_noise=0.3,gravity=1.5")
    unresumed.reset(seed=99)
    restore_state(unresumed, capture_state(source))  # the simulator only: other noise follows
    actions = [np.full(3, 0.2, dtype=np.float32)] * 5
    expected = [source.step(action)[0] for action in actions]
    np.testing.assert_array_equal(np.array([copy_.step(action)[0] for action in actions]), np.array(expected))
    assert not np.array_equal(np.array([unresumed.step(action)[0] for action in actions]), np.array(expected))


def test_domain_randomization_resume_state_continues_the_episode_and_the_draws():
    ranges = {"gravity": (0.5, 2.0), "mass": (0.5, 1.5), "action_noise": (0.1, 0.3)}
    source = DomainRandomization(make_env(MUJOCO_ID), ranges)  # seeded by the first reset seed
    source.reset(seed=0)
    source.reset()  # a second draw, so the sampler has moved on from its seed
    for _ in range(3):
        source.step(np.zeros(3, dtype=np.float32))
    copy_ = _resumed(DomainRandomization, source, ranges)
    assert copy_.parameters == source.parameters
    np.testing.assert_array_equal(copy_.unwrapped.model.opt.gravity, source.unwrapped.model.opt.gravity)
    np.testing.assert_array_equal(copy_.unwrapped.model.body_mass, source.unwrapped.model.body_mass)
    actions = [np.full(3, -0.4, dtype=np.float32)] * 4
    expected = _continue(source, actions, resets=2)
    for got, want in zip(_continue(copy_, actions, resets=2), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    assert copy_.parameters == source.parameters  # the later draws are the same too
    unresumed = DomainRandomization(make_env(MUJOCO_ID), ranges)
    unresumed.reset(seed=99)
    restore_state(unresumed, capture_state(source))
    assert unresumed.parameters != source.parameters
