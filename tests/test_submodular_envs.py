"""SubPO's grid-world coverage tasks: the set function, the env built on it, and its registration."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from envs.submodular import (
    CoverageGridEnv,
    WeightedCoverage,
    gp_weights,
    greedy_trajectory,
    greedy_value,
    weight_map,
)
from rl.envs import ensure_registered

SMALL = (6, 7)


@pytest.mark.parametrize("kind", ["constant", "bimodal", "gp"])
def test_coverage_is_monotone_and_submodular(kind):
    rng = np.random.default_rng(0)
    F = WeightedCoverage(weight_map(kind, SMALL, seed=1), radius=1.5)
    n = F.n_states
    for _ in range(200):
        big = rng.choice(n, size=rng.integers(1, n), replace=False)
        small = big[: rng.integers(0, len(big) + 1)]
        s = int(rng.integers(n))
        assert F.value(big) >= F.value(small) - 1e-12
        gain_small = F.value(np.append(small, s)) - F.value(small)
        gain_big = F.value(np.append(big, s)) - F.value(big)
        assert gain_small >= gain_big - 1e-12
        assert F.marginal_gain(s, small) == pytest.approx(gain_small)
        assert F.gains(F.covered(big))[s] == pytest.approx(gain_big)


def test_disc_footprint_and_hand_checked_rewards():
    # constant weights, radius 1: a state covers itself and its 4 grid neighbours (fewer at the border)
    env = CoverageGridEnv("constant", grid=(5, 5), radius=1.0, horizon=5, start=(0, 0))
    _, info = env.reset(seed=0)
    assert info["F"] == 3.0  # (0,0), (0,1), (1,0)
    rewards = []
    for action in (1, 1, 0, 2):  # right, right, stay, up (row + 1)
        _, reward, terminated, truncated, info = env.step(action)
        rewards.append(reward)
        assert not terminated
    # (0,1) adds (0,2),(1,1), and the first reward also pays F(s0) = 3; (0,2) adds (0,3),(1,2);
    # staying adds nothing; (1,2) adds (1,3),(2,2).
    assert rewards == [5.0, 2.0, 0.0, 2.0]
    assert truncated and info["F"] == 9.0 and info["visited"] == 4
    assert info["marginal_gain"] == 2.0


def test_off_grid_moves_stay_put():
    env = CoverageGridEnv("constant", grid=(3, 3), horizon=4, start=(0, 0))
    obs, _ = env.reset()
    for action in (3, 4):  # left, down (row - 1) from the corner
        obs, reward, *_ = env.step(action)
        np.testing.assert_array_equal(obs, [0, 0, env.unwrapped._t])
    assert reward == 0.0


@pytest.mark.parametrize("kind", ["constant", "bimodal", "gp"])
def test_gains_sum_to_F_and_to_the_return(kind):
    env = CoverageGridEnv(kind, grid=SMALL, radius=1.0, horizon=12, start=(2, 3), seed=3)
    env.action_space.seed(0)
    obs, info = env.reset(seed=0)
    states, gains, episode_return = [env.F.index(int(obs[0]), int(obs[1]))], [info["marginal_gain"]], 0.0
    truncated, steps = False, 0
    while not truncated:
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert not terminated
        states.append(env.F.index(int(obs[0]), int(obs[1])))
        gains.append(info["marginal_gain"])
        assert info["marginal_gain"] == pytest.approx(env.F.marginal_gain(states[-1], states[:-1]))
        episode_return += reward
        steps += 1
    assert steps == 11  # horizon counts states
    F_tau = env.F.value(states)
    assert sum(gains) == pytest.approx(F_tau)
    assert episode_return == pytest.approx(F_tau)
    assert info["F"] == pytest.approx(F_tau)
    assert info["visited"] == len(set(states))


def test_observation_spaces():
    markov = CoverageGridEnv("bimodal", grid=SMALL, horizon=6)
    history = CoverageGridEnv("bimodal", grid=SMALL, horizon=6, observation="history")
    assert markov.observation_space.shape == (3,)
    assert history.observation_space.shape == (3 + SMALL[0] * SMALL[1],)
    for env in (markov, history):
        obs, _ = env.reset(seed=1)
        assert env.observation_space.contains(obs)
        for action in (2, 1, 1, 0, 4):
            obs, *_ = env.step(action)
            assert env.observation_space.contains(obs)
    np.testing.assert_array_equal(obs[:3], [1, 6, 5])
    visited = obs[3:].reshape(SMALL)
    expected = np.zeros(SMALL)
    for cell in ((1, 4), (2, 4), (2, 5), (2, 6), (1, 6)):
        expected[cell] = 1
    np.testing.assert_array_equal(visited, expected)


@pytest.mark.parametrize("observation", ["markovian", "history"])
def test_check_env(observation):
    ensure_registered("Coverage-GP-v0")
    env = gym.make(
        "Coverage-GP-v0", grid=(8, 8), horizon=10, observation=observation, render_mode="rgb_array"
    ).unwrapped
    check_env(env, skip_render_check=False)
    env.reset()
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.shape == (64, 64, 3)


def test_gp_weights_seeded_and_non_negative():
    a, b, c = gp_weights((10, 10), seed=0), gp_weights((10, 10), seed=0), gp_weights((10, 10), seed=1)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert a.min() >= 0 and c.min() >= 0
    bimodal = weight_map("bimodal", (10, 10))
    # the authors' sigmoid(x * y): high in two opposite corners, low in the others
    assert bimodal[0, 0] == bimodal[-1, -1] > 0.7 > 0.3 > bimodal[0, -1] == bimodal[-1, 0]


def test_greedy_trajectory_is_feasible_and_greedy():
    F = WeightedCoverage(weight_map("gp", SMALL, seed=2), radius=1.0)
    value, traj = greedy_trajectory(F, horizon=8, start=(0, 0))
    assert len(traj) == 8 and value == pytest.approx(F.value(traj))
    for prev, nxt in zip(traj[:-1], traj[1:]):
        (r0, c0), (r1, c1) = divmod(prev, SMALL[1]), divmod(nxt, SMALL[1])
        assert abs(r0 - r1) + abs(c0 - c1) <= 1
    # in a 3-row corridor the best move is always right: 4 cells at the start, then 3 new ones per move
    unit = WeightedCoverage(np.ones((3, 12)), radius=1.0)
    assert greedy_value(unit, horizon=8, start=(1, 0)) == pytest.approx(4 + 3 * 7)


def test_registration_through_project_mechanism():
    for env_id in ("Coverage-Constant-v0", "Coverage-Bimodal-v0", "Coverage-GP-v0", "Coverage-GP-History-v0"):
        assert ensure_registered(env_id) == env_id
    env = gym.make("Coverage-GP-History-v0")
    assert env.unwrapped.horizon == 40 and env.unwrapped.shape == (30, 30)
    assert env.observation_space.shape == (3 + 900,)
    obs, _ = env.reset()
    np.testing.assert_array_equal(obs[:3], [1, 4, 0])
    assert gym.make("Coverage-Constant-v0").unwrapped.horizon == 80
