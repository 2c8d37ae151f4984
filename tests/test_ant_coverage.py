"""AntCoverageEnv: the coverage set function, rewards as marginal gains, termination, truncation, views."""

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401  (registers the ids)
from envs.ant_coverage import AntCoverageEnv, XYCoverage


def test_coverage_is_monotone_submodular_on_random_sets():
    F = XYCoverage(grid_size=20, footprint=5, half_width=4.0)
    rng = np.random.default_rng(0)
    for _ in range(200):
        big = list(rng.choice(F.n_cells, size=int(rng.integers(1, 12)), replace=False))
        small = [s for s in big if rng.random() < 0.5]
        state = int(rng.integers(F.n_cells))
        assert F.value(small) <= F.value(big)
        assert F.marginal_gain(state, small) >= F.marginal_gain(state, big) >= 0
        assert F.marginal_gain(state, big) == F.value([*big, state]) - F.value(big)
    assert F.value([]) == 0 and F.value([0]) == 25 and F.value([F.n_cells - 1]) == 1  # cut at the edge


def test_cells_follow_the_authors_grid():
    F = XYCoverage()
    assert F.cell(0.0, 0.0) == 50 * 100 + 50  # int((0 + 20) / 0.4) = 50
    assert F.cell(-19.9, 19.9) == 0 * 100 + 99
    assert F.cell(-25.0, 25.0) == 99  # outside: clipped onto the grid
    with pytest.raises(ValueError, match="flat index"):
        F.value([F.n_cells])


def test_rewards_sum_to_F_of_the_trajectory_and_match_info():
    env = AntCoverageEnv(max_steps=30)
    rng = np.random.default_rng(1)
    _, info = env.reset(seed=1)
    cells, total = [info["cell"]], 0.0
    assert info["F"] == env.F.value(cells) == 25
    for _ in range(30):
        _, reward, terminated, truncated, info = env.step(rng.uniform(-1, 1, 8).astype(np.float32))
        assert info["marginal_gain"] == env.F.marginal_gain(info["cell"], cells)
        cells.append(info["cell"])
        total += reward
        assert info["F"] == env.F.value(cells) and info["coverage"] == pytest.approx(info["F"] / 100**2)
        if terminated or truncated:
            break
    assert total == pytest.approx(env.F.value(cells) / env.reward_scale)


def test_leaving_the_square_terminates():
    env = AntCoverageEnv(terminate_when_unhealthy=False)
    env.reset(seed=0)
    ant = env.ant
    qpos = ant.data.qpos.copy()
    qpos[0] = 20.5
    ant.set_state(qpos, ant.data.qvel.copy())
    _, _, terminated, truncated, info = env.step(np.zeros(8, dtype=np.float32))
    assert terminated and not truncated and info["x_position"] > 20


def test_truncation_after_max_steps():
    env = AntCoverageEnv(max_steps=5)
    env.reset(seed=0)
    for t in range(5):
        _, _, terminated, truncated, _ = env.step(np.zeros(8, dtype=np.float32))
        assert not terminated and truncated == (t == 4)
    assert env.horizon == 6


def test_history_observation_holds_the_coarse_covered_map():
    env = gym.make("AntCoverage-History-v0")
    assert env.observation_space.shape == (29 + 100,)
    obs, info = env.reset(seed=0)
    assert np.all((obs[29:] >= 0) & (obs[29:] <= 1))
    assert obs[29:].sum() * 100 == pytest.approx(info["F"])  # each entry: the covered fraction of 10 x 10 cells
    obs, _, _, _, info = env.step(env.action_space.sample())
    assert obs[29:].sum() * 100 == pytest.approx(info["F"])
    assert gym.make("AntCoverage-v0").observation_space.shape == (29,)


def test_render_draws_the_covered_cells():
    env = AntCoverageEnv(render_mode="rgb_array", max_steps=10)
    env.reset(seed=0)
    env.step(np.zeros(8, dtype=np.float32))
    img = env.render()
    assert img.shape == (400, 400, 3) and img.dtype == np.uint8
    assert (img == np.array([90, 190, 90], dtype=np.uint8)).all(axis=-1).sum() > 0
    assert AntCoverageEnv().render() is None


def test_bad_arguments_say_what_to_fix():
    with pytest.raises(ValueError, match="observation"):
        AntCoverageEnv(observation="full")
    with pytest.raises(ValueError, match="history_grid"):
        AntCoverageEnv(history_grid=7)
    with pytest.raises(ValueError, match="exclude_current_positions"):
        AntCoverageEnv(exclude_current_positions_from_observation=True)
