"""panda-gym's own envs reset reproducibly through the env factory (rl.panda_reset)."""

import numpy as np
import pytest

from rl.envs import make_env, make_training_env
from rl.panda_reset import ReproducibleTaskReset, has_unseeded_task_resets


def _goals(env, episodes: int) -> list[np.ndarray]:
    goals = [env.reset(seed=3)[0]["desired_goal"]]
    goals += [env.reset()[0]["desired_goal"] for _ in range(episodes - 1)]
    return goals


def test_unseeded_resets_draw_the_same_goals_for_the_same_seed():
    goals_a, goals_b = (_goals(make_env("PandaReach-v3", render_mode="rgb_array"), 4) for _ in range(2))
    for goal_a, goal_b in zip(goals_a, goals_b):
        np.testing.assert_array_equal(goal_a, goal_b)
    assert len({tuple(goal) for goal in goals_a}) == 4  # still a new goal each episode


def test_vectorised_training_envs_repeat_their_goals():
    def goals(venv) -> list[np.ndarray]:
        found = [venv.reset()["desired_goal"].copy()]
        for _ in range(120):  # PandaReach's episodes last 50 steps: two automatic resets
            obs, _, dones, _ = venv.step(np.zeros((1, *venv.action_space.shape), dtype=np.float32))
            if dones[0]:
                found.append(obs["desired_goal"].copy())
        return found

    first, second = (goals(make_training_env("PandaReach-v3", seed=4)) for _ in range(2))
    assert len(first) == 3
    for goal_a, goal_b in zip(first, second):
        np.testing.assert_array_equal(goal_a, goal_b)


@pytest.mark.parametrize(("env_id", "wrapped"), [("PandaReach-v3", True), ("PandaPush-v3", True),
                                                 ("PandaLiftWide-v0", False)])
def test_only_panda_gym_own_resets_are_wrapped(env_id, wrapped):
    env = make_env(env_id, render_mode="rgb_array")
    assert isinstance(env, ReproducibleTaskReset) is wrapped
    assert has_unseeded_task_resets(env.unwrapped) is wrapped  # the project's lift tasks seed their own resets
