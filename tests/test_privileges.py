"""sim2real.PrivilegedManipulation: each privilege really changes the physics at level 1 and does nothing at level 0,
in PyBullet (panda-gym's Panda) and in MuJoCo (gymnasium-robotics' Fetch)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401 - registers the tasks
from sim2real import PrivilegedManipulation, PrivilegeError


def _lower_beside_the_object(level: float) -> tuple[float, bool]:
    """Move the end effector beside the box, then push it down for 40 steps: its final height and whether the
    table was penetrable."""
    env = PrivilegedManipulation(gym.make("PandaLiftWide-v0"), privileges=["table_penetration"], level=level)
    env.reset(seed=0)
    for _ in range(6):
        env.step(np.array([0, 1, 0, 0], dtype=np.float32))
    for _ in range(40):
        observation, _, _, _, info = env.step(np.array([0, 0, -1, 0], dtype=np.float32))
    return float(observation["observation"][2]), info["table_penetration_granted"]


def test_with_table_penetration_the_gripper_goes_below_the_table_top_and_without_it_stops():
    height, granted = _lower_beside_the_object(1.0)
    assert granted and height < -0.02
    height, granted = _lower_beside_the_object(0.0)
    assert not granted and height > -0.005


def _push_object_up(level: float) -> tuple[np.ndarray, np.ndarray]:
    env = PrivilegedManipulation(gym.make("PandaLiftWide-v0"), privileges=["object_force"], level=level)
    assert env.action_space.shape == (4 + 3,)
    observation, _ = env.reset(seed=0)
    start = observation["observation"].copy()
    for _ in range(10):
        observation, *_ = env.step(np.array([0, 0, 0, 0, 0, 0, 1], dtype=np.float32))
    return observation["observation"][:3] - start[:3], observation["observation"][7:10] - start[7:10]


def test_the_force_moves_the_object_while_the_arm_stays_and_at_level_zero_nothing_moves():
    arm, box = _push_object_up(1.0)
    assert box[2] > 0.1 and np.abs(arm).max() < 0.005
    arm, box = _push_object_up(0.0)
    assert np.abs(box).max() < 1e-3 and np.abs(arm).max() < 0.005


def test_penetration_is_granted_with_probability_level_reproducibly():
    def granted(seed: int) -> list[bool]:
        env = PrivilegedManipulation(gym.make("PandaLiftWide-v0"), privileges=["table_penetration"], level=0.5)
        env.reset(seed=seed)
        return [env.reset()[1]["table_penetration_granted"] for _ in range(40)]

    draws = granted(7)
    assert draws == granted(7) and 0.3 < np.mean(draws) < 0.7


@pytest.mark.parametrize("build, message", [
    (lambda: PrivilegedManipulation(gym.make("PandaLiftWide-v0"), privileges=["gravity_off"]),
     "unknown privilege.*gravity_off: supported are table_penetration, object_force"),
    (lambda: PrivilegedManipulation(gym.make("PandaLiftWide-v0"), level=1.5), r"level must be in \[0, 1\]"),
    (lambda: PrivilegedManipulation(gym.make("Pendulum-v1")), "Pendulum-v1 is not a manipulation env"),
])
def test_bad_input_names_what_is_supported(build, message):
    with pytest.raises(PrivilegeError, match=message):
        build()
    env = PrivilegedManipulation(gym.make("PandaLiftWide-v0"))
    with pytest.raises(PrivilegeError, match=r"level must be in \[0, 1\]"):
        env.set_privilege_level(-0.1)


def test_the_controller_keeps_its_target_above_the_table_unless_penetration_is_granted(monkeypatch):
    env = PrivilegedManipulation(gym.make("PandaLiftWide-v0"), privileges=["table_penetration"], level=0.0)
    env.reset(seed=0)
    targets = []
    original = env.robot.inverse_kinematics

    def spy(link, position, orientation):
        targets.append(float(position[2]))
        return original(link=link, position=position, orientation=orientation)

    monkeypatch.setattr(env.robot, "inverse_kinematics", spy)
    env.penetration_granted = False
    env._target_arm_angles(np.array([0.0, 0.0, -100.0]))  # a huge step down
    env.penetration_granted = True
    env._target_arm_angles(np.array([0.0, 0.0, -100.0]))
    assert targets == [0.0, -0.03]


# MuJoCo: gymnasium-robotics' Fetch (envs.fetch_lift)

FETCH_TABLE_TOP = 0.4


def _lower_fetch_beside_the_object(level: float) -> tuple[np.ndarray, bool, float]:
    """Move Fetch's gripper beside the box, then push it down for 25 steps: the grip site's heights above the table
    top, whether the table was penetrable, and the object's lowest point above the table at the end."""
    env = PrivilegedManipulation(gym.make("FetchLiftWide-v0"), privileges=["table_penetration"], level=level)
    env.reset(seed=0)
    for _ in range(4):
        env.step(np.array([0, -1, 0, 0], dtype=np.float32))
    heights = []
    for _ in range(25):
        observation, _, _, _, info = env.step(np.array([0, 0, -1, 0], dtype=np.float32))
        heights.append(observation["observation"][2] - FETCH_TABLE_TOP)
    return np.array(heights), info["table_penetration_granted"], float(observation["achieved_goal"][0])


def test_fetch_with_table_penetration_the_gripper_goes_below_the_table_top_and_without_it_stops():
    heights, granted, box = _lower_fetch_beside_the_object(1.0)
    assert granted and heights[-1] < -0.02
    assert heights.min() > -0.03 - 0.002  # no deeper than PENETRATION_DEPTH, as the PyBullet privilege
    assert abs(box) < 1e-3  # the table still holds the object up
    heights, granted, box = _lower_fetch_beside_the_object(0.0)
    assert not granted and heights.min() > 0.01  # the fingertips (1.85 cm below the grip site) on the table
    assert abs(box) < 1e-3


def test_fetch_table_penetration_changes_only_the_table_and_object_collision_bits():
    env = PrivilegedManipulation(gym.make("FetchLiftWide-v0"), privileges=["table_penetration"], level=1.0)
    model = env.unwrapped.model
    loaded = (model.geom_contype.copy(), model.geom_conaffinity.copy())
    env.reset(seed=0)
    table, box = model.geom("table0").id, model.geom("object0").id
    changed = np.flatnonzero((model.geom_contype != loaded[0]) | (model.geom_conaffinity != loaded[1]))
    assert set(changed) == {table, box}
    robot = [g for g in range(model.ngeom) if model.body(model.geom_bodyid[g]).name.startswith("robot0:")
             and model.geom_contype[g]]
    assert robot and not any(model.geom_contype[g] & model.geom_conaffinity[table] for g in robot)
    assert model.geom_contype[box] & model.geom_conaffinity[table]  # the object still rests on the table
    env.set_privilege_level(0.0)
    env.reset()
    np.testing.assert_array_equal(model.geom_contype, loaded[0])  # withdrawn: as loaded
    np.testing.assert_array_equal(model.geom_conaffinity, loaded[1])


def _push_fetch_object_up(level: float) -> tuple[np.ndarray, np.ndarray]:
    """Move the gripper up and aside, then push the object up for 6 steps: how far the arm and the object moved
    during the push."""
    env = PrivilegedManipulation(gym.make("FetchLiftWide-v0"), privileges=["object_force"], level=level)
    assert env.action_space.shape == (4 + 3,)
    env.reset(seed=0)
    for action in [[0, -1, 1, 0]] * 4 + [[0, 0, 0, 0]] * 6:  # out of the object's way, then settle
        observation, *_ = env.step(np.array([*action, 0, 0, 0], dtype=np.float32))
    start = observation["observation"].copy()
    for _ in range(6):
        observation, *_ = env.step(np.array([0, 0, 0, 0, 0, 0, 1], dtype=np.float32))
    force = env.unwrapped.data.xfrc_applied[env.unwrapped.model.body("object0").id]
    np.testing.assert_array_equal(force, [0, 0, 10 * level, 0, 0, 0])
    return observation["observation"][:3] - start[:3], observation["observation"][3:6] - start[3:6]


def test_fetch_the_force_moves_the_object_while_the_arm_stays_and_at_level_zero_nothing_moves():
    arm, box = _push_fetch_object_up(1.0)
    assert box[2] > 0.1 and np.abs(box[:2]).max() < 0.01 and np.abs(arm).max() < 0.005  # straight up
    arm, box = _push_fetch_object_up(0.0)
    assert np.abs(box).max() < 1e-3 and np.abs(arm).max() < 0.005


def test_fetch_penetration_is_granted_with_probability_level_reproducibly():
    def granted(seed: int) -> list[bool]:
        env = PrivilegedManipulation(gym.make("FetchLiftPlate-v0"), privileges=["table_penetration"], level=0.5)
        env.reset(seed=seed)
        return [env.reset()[1]["table_penetration_granted"] for _ in range(40)]

    draws = granted(7)
    assert draws == granted(7) and 0.3 < np.mean(draws) < 0.7


def test_a_mujoco_env_that_is_not_fetch_is_refused_with_what_is_supported():
    with pytest.raises(PrivilegeError, match="HalfCheetah-v4 is not a manipulation env.*FetchLiftWide-v0"):
        PrivilegedManipulation(gym.make("HalfCheetah-v4"))
    with pytest.raises(PrivilegeError, match="Pendulum-v1 is not a manipulation env.*panda-gym.*Fetch"):
        PrivilegedManipulation(gym.make("Pendulum-v1"))


def test_fetch_resume_mid_episode_continues_with_the_same_privileges_and_draws():
    """The env's MuJoCo state (rl.env_state) and the wrapper's resume state restored into a fresh instance: the
    episode goes on bit for bit (table penetration granted, the force acting), and the next episodes' draws agree."""
    from rl.env_state import capture_state, restore_state

    def make() -> PrivilegedManipulation:
        return PrivilegedManipulation(gym.make("FetchLiftWide-v0"), level=0.5)

    source = make()
    source.reset(seed=0)
    while not source.penetration_granted:
        source.reset()
    rng = np.random.default_rng(0)
    actions = [rng.uniform(-1, 1, 7).astype(np.float32) for _ in range(20)]
    for action in actions[:10]:
        source.step(action)
    physics, privileges = capture_state(source), source.get_resume_state()
    assert privileges["granted"]

    resumed = make()
    resumed.reset(seed=1)
    restore_state(resumed, physics)
    resumed.set_resume_state(privileges)
    model = resumed.unwrapped.model
    np.testing.assert_array_equal(model.geom_contype, source.unwrapped.model.geom_contype)
    for action in actions[10:]:
        expected, got = source.step(action), resumed.step(action)
        for key in expected[0]:
            np.testing.assert_array_equal(expected[0][key], got[0][key])
        assert expected[1:] == got[1:]
    assert [source.reset()[1]["table_penetration_granted"] for _ in range(10)] == \
        [resumed.reset()[1]["table_penetration_granted"] for _ in range(10)]
