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


# ---- the generic env and the other set functions: experiment design and item collection ----

from envs.experiment_design import ExperimentDesignEnv, GPInformationGain, prior_covariance  # noqa: E402
from envs.item_collection import (  # noqa: E402
    ITEM_CAPS,
    ITEM_COUNTS,
    CappedItemCollection,
    ItemCollectionEnv,
    item_layout,
)
from envs.submodular import SetFunction, SubmodularGridEnv  # noqa: E402


def _small_information(seed: int = 2, lengthscale: float = 1.0) -> GPInformationGain:
    return GPInformationGain(prior_covariance((4, 5), seed=seed, lengthscale=lengthscale), (4, 5))


def _small_items(seed: int = 0) -> CappedItemCollection:
    return CappedItemCollection(item_layout((5, 6), (6, 5, 4), seed=seed), (2, 1, 3))


SET_FUNCTIONS = {
    "information": _small_information,
    "information-short": lambda: _small_information(seed=4, lengthscale=0.2),
    "items": _small_items,
    "coverage": lambda: WeightedCoverage(weight_map("gp", SMALL, seed=1), radius=1.5),
}


@pytest.mark.parametrize("name", sorted(SET_FUNCTIONS))
def test_set_functions_are_monotone_submodular_and_chain(name):
    F = SET_FUNCTIONS[name]()
    assert isinstance(F, SetFunction)
    rng = np.random.default_rng(0)
    n = F.n_states
    assert F.value([]) == 0.0
    for _ in range(150):
        big = rng.choice(n, size=rng.integers(1, min(n, 12)), replace=False)
        small = big[: rng.integers(0, len(big) + 1)]
        s = int(rng.integers(n))
        assert F.value(big) >= F.value(small) - 1e-9
        gain_small, gain_big = F.marginal_gain(s, small), F.marginal_gain(s, big)
        assert gain_small >= gain_big - 1e-9  # diminishing returns
        assert gain_small == pytest.approx(F.value(np.append(small, s)) - F.value(small), abs=1e-9)
        assert gain_big == pytest.approx(F.value(np.append(big, s)) - F.value(big), abs=1e-9)
    # a trajectory with revisits: its marginal gains sum to F(tau), repeated states count once
    tau = rng.integers(n, size=15).tolist() + [0, 0]
    gains = [F.marginal_gain(tau[h], tau[:h]) for h in range(len(tau))]
    assert sum(gains) == pytest.approx(F.value(tau))
    assert gains[-1] == 0.0 and F.value(tau) == pytest.approx(F.value(sorted(set(tau))))


def test_information_gain_hand_checked_rewards():
    # 1x3 grid, K with cells 0 and 1 correlated (0.5) and cell 2 independent, sigma^2 = 1
    cov = np.array([[1.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 1.0]])
    F = GPInformationGain(cov, (1, 3), noise=1.0)
    env = SubmodularGridEnv(F, horizon=4, start=(0, 0))
    _, info = env.reset()
    assert info["F"] == pytest.approx(0.5 * np.log(2.0))  # 1/2 log(1 + K_00 / sigma^2)
    rewards = [env.step(a)[1] for a in (1, 1, 3)]  # right, right, left (a revisit)
    # var(1 | 0) = 1 - 0.5^2 / (1 + 1) = 0.875; cell 2 is independent of the others
    expected = [0.5 * np.log(2.0) + 0.5 * np.log(1.875), 0.5 * np.log(2.0), 0.0]
    np.testing.assert_allclose(rewards, expected)
    assert sum(rewards) == pytest.approx(0.5 * np.log(np.linalg.det(np.eye(3) + cov)))
    assert F.posterior_variance(1, [0]) == pytest.approx(0.875)


def test_item_collection_hand_checked_rewards():
    items = np.array([[0, 0, 1, -1], [1, -1, -1, 0]])  # caps: one item of type 0, two of type 1
    F = CappedItemCollection(items, caps=(1, 2))
    assert F.value(range(8)) == 3.0  # min(1, 3) + min(2, 2)
    env = SubmodularGridEnv(F, horizon=6, start=(0, 0))
    _, info = env.reset()
    assert info["F"] == 1.0
    rewards = []
    for action in (1, 1, 2, 3, 3):  # right (type 0, capped), right (type 1), up (empty), left, left (type 1)
        _, reward, terminated, truncated, info = env.step(action)
        rewards.append(reward)
        assert not terminated
    assert rewards == [1.0, 1.0, 0.0, 0.0, 1.0]
    assert truncated and info["F"] == 3.0 and info["visited"] == 6


def _small_items_env(**kwargs) -> ItemCollectionEnv:
    return ItemCollectionEnv(counts=(8, 6, 5), caps=(2, 1, 3), **kwargs)


@pytest.mark.parametrize("make", [ExperimentDesignEnv, _small_items_env])
def test_new_envs_gains_sum_to_F_and_to_the_return(make):
    env = make(grid=(6, 7), horizon=15, seed=3)
    env.action_space.seed(1)
    obs, info = env.reset(seed=0)
    states, episode_return, truncated = [env.F.index(int(obs[0]), int(obs[1]))], 0.0, False
    while not truncated:
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert not terminated
        states.append(env.F.index(int(obs[0]), int(obs[1])))
        assert info["marginal_gain"] == pytest.approx(env.F.marginal_gain(states[-1], states[:-1]))
        episode_return += reward
    assert len(states) == 15
    assert episode_return == pytest.approx(env.F.value(states)) and info["F"] == pytest.approx(episode_return)


def test_greedy_reference_on_new_tasks():
    # a 1x8 corridor full of type-0 items with cap 3: greedy walks right and stops paying after 3 items
    corridor = CappedItemCollection(np.zeros((1, 8), dtype=np.int64), caps=(3,))
    value, traj = greedy_trajectory(corridor, horizon=6, start=(0, 0))
    assert value == 3.0 and traj[:3] == [0, 1, 2]
    for F, start in ((_small_information(), (1, 1)), (_small_items(), (2, 2))):
        value, traj = greedy_trajectory(F, horizon=10, start=start)
        assert len(traj) == 10 and value == pytest.approx(F.value(traj))
        for prev, nxt in zip(traj[:-1], traj[1:]):
            (r0, c0), (r1, c1) = divmod(prev, F.shape[1]), divmod(nxt, F.shape[1])
            assert abs(r0 - r1) + abs(c0 - c1) <= 1
        # no worse than staying put
        assert value >= F.value([traj[0]])
    _, info_traj = greedy_trajectory(_small_information(), horizon=10, start=(1, 1))
    assert len(set(info_traj)) == 10  # every new cell adds information, so greedy never revisits


@pytest.mark.parametrize(
    "env_id, markov_id, grid, start, horizon",
    [
        ("ExperimentDesign-History-v0", "ExperimentDesign-v0", (30, 30), (1, 4), 40),
        ("ItemCollection-History-v0", "ItemCollection-v0", (7, 15), (2, 4), 40),
    ],
)
def test_new_registrations_and_observations(env_id, markov_id, grid, start, horizon):
    assert ensure_registered(env_id) == env_id and ensure_registered(markov_id) == markov_id
    history, markov = gym.make(env_id).unwrapped, gym.make(markov_id).unwrapped
    assert markov.observation_space.shape == (3,)
    assert history.observation_space.shape == (3 + grid[0] * grid[1],)
    assert history.horizon == markov.horizon == horizon and history.shape == grid
    obs_h, _ = history.reset()
    obs_m, _ = markov.reset()
    np.testing.assert_array_equal(obs_m, [*start, 0])
    np.testing.assert_array_equal(obs_h[:3], obs_m)
    assert obs_h[3:].sum() == 1 and obs_h[3 + history.F.index(*start)] == 1
    for action in (1, 2, 3):
        obs_h, *_ = history.step(action)
        assert history.observation_space.contains(obs_h)
    assert obs_h[3:].sum() == 4


@pytest.mark.parametrize("make", [ExperimentDesignEnv, _small_items_env])
@pytest.mark.parametrize("observation", ["markovian", "history"])
def test_new_envs_check_env_and_render(make, observation):
    env = make(grid=(6, 8), horizon=8, observation=observation, render_mode="rgb_array")
    check_env(env, skip_render_check=False)
    env.reset()
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.shape == (48, 64, 3)


def test_layouts_are_seeded():
    a, b, c = item_layout(seed=0), item_layout(seed=0), item_layout(seed=1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == (7, 15) and np.bincount(a[a >= 0]).tolist() == list(ITEM_COUNTS)
    assert CappedItemCollection(a, ITEM_CAPS).value(range(105)) == sum(ITEM_CAPS)
    k0, k1 = prior_covariance((5, 5), seed=0), prior_covariance((5, 5), seed=1)
    np.testing.assert_array_equal(k0, prior_covariance((5, 5), seed=0))
    assert not np.allclose(k0, k1)
    # the anchors only lower the variance below the prior's ln 2
    assert np.all(np.diag(k0) <= np.log(2.0) + 1e-12) and np.all(np.linalg.eigvalsh(k0) > -1e-9)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: GPInformationGain(np.eye(5), (2, 3)), "covariance must be"),
        (lambda: GPInformationGain(np.triu(np.ones((6, 6))), (2, 3)), "symmetric"),
        (lambda: GPInformationGain(np.eye(6), (2, 3), noise=0.0), "noise"),
        (lambda: prior_covariance((3, 3), n_anchors=-1), "n_anchors"),
        (lambda: CappedItemCollection(np.array([[0, 2]]), caps=(1, 1)), "one cap per type"),
        (lambda: CappedItemCollection(np.array([[0.5, 1.0]]), caps=(1, 1)), "integer"),
        (lambda: CappedItemCollection(np.array([[0, 1]]), caps=(1, -1)), "caps"),
        (lambda: item_layout((2, 2), (3, 2)), "one item per cell"),
        (lambda: ItemCollectionEnv(counts=(3, 2), caps=(1,)), "one entry per item type"),
        (lambda: ExperimentDesignEnv(grid=(4, 4), horizon=1), "horizon"),
        (lambda: ItemCollectionEnv(start=(7, 0)), "start"),
        (lambda: ExperimentDesignEnv(grid=(4, 4), observation="full"), "observation"),
        (lambda: SubmodularGridEnv(np.ones((3, 3)), horizon=5), "lacks"),
        (lambda: _small_items().marginal_gain(30, []), "state"),
    ],
)
def test_bad_arguments_raise_clear_errors(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_greedy_reference_of_a_registered_grid_task():
    from envs.submodular import CoverageGridEnv, greedy_reference, greedy_value

    env = CoverageGridEnv("bimodal")
    assert greedy_reference("Coverage-Bimodal-History-v0") == greedy_value(env.F, env.horizon, env.start)
    with pytest.raises(ValueError, match="not a grid task"):
        greedy_reference("Pendulum-v1")
