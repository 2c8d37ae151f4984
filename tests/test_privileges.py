"""sim2real.PrivilegedManipulation: each privilege really changes the physics at level 1 and does nothing at level 0."""

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
