"""Tests of the bolivia-like case generator (envs.hydro.make_case) and the Gymnasium env (envs.hydro.gym_env)."""

import dataclasses
import warnings

import gymnasium
import numpy as np
import pytest

import envs  # noqa: F401  (registers the HydroDispatch ids)
from envs.hydro import (
    CASES_DIR,
    VIOLATION_TOLERANCE,
    UnknownCaseError,
    case_path,
    load_system,
    solve_stage,
    system_from_dict,
)
from envs.hydro.gym_env import HydroDispatchEnv
from envs.hydro.make_case import generate_case, inflow_model, main, sample_inflows


@pytest.fixture(scope="module")
def bolivia():
    return load_system(CASES_DIR / "bolivia_like.json")


@pytest.fixture(scope="module")
def toy_env():
    return HydroDispatchEnv("toy", history=2)


# ------------------------------------------------------------------------------------------ the case data


def test_bolivia_like_case_has_the_papers_size(bolivia):
    assert len(bolivia.buses) == 28 and len(bolivia.hydros) == 11 and len(bolivia.thermals) == 23
    assert bolivia.num_stages == 96 and bolivia.inflows.shape == (200, 96, 11)
    assert bolivia.network == "dc" and len(bolivia.lines) > len(bolivia.buses) - 1  # meshed
    costs = sorted(u.cost for u in bolivia.thermals)
    assert 15 <= costs[0] <= 40 and 400 <= costs[-1] <= 600 and bolivia.deficit_cost > 2 * costs[-1]
    assert np.all(bolivia.inflows >= 0) and np.all(bolivia.demand >= 0)
    assert (CASES_DIR / "bolivia_like.json").stat().st_size < 3_000_000


def test_every_cascade_is_acyclic_and_there_are_three(bolivia):
    names = [h.name for h in bolivia.hydros]
    roots = set()
    for plant in bolivia.hydros:
        seen, current = {plant.name}, plant
        while current.downstream is not None:
            assert current.downstream not in seen, f"cycle through {current.downstream}"
            seen.add(current.downstream)
            current = bolivia.hydros[names.index(current.downstream)]
        roots.add(current.name)
    assert len(roots) == 3


def test_inflows_have_a_wet_season_and_lag1_correlation(bolivia):
    monthly = bolivia.inflows.sum(axis=2).reshape(200, 8, 12).mean(axis=(0, 1))
    assert monthly[[0, 1, 2]].mean() > 2 * monthly[[6, 7, 8]].mean()  # Jan-Mar wet, Jul-Sep dry
    logs = np.log(bolivia.inflows[:, :, 0] + 1e-9)
    anomaly = logs - logs.mean(axis=0, keepdims=True)
    lag1 = np.corrcoef(anomaly[:, 1:].ravel(), anomaly[:, :-1].ravel())[0, 1]
    assert 0.6 < lag1 < 0.95


def test_generator_is_deterministic_for_a_seed(tmp_path):
    first, second, other = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    for path, seed in ((first, 3), (second, 3), (other, 4)):
        main(["--out", str(path), "--seed", str(seed), "--stages", "24", "--scenarios", "5"])
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other.read_bytes()
    small = load_system(first)
    assert small.num_stages == 24 and small.inflows.shape == (5, 24, 11)


def test_generator_refuses_bad_sizes():
    with pytest.raises(ValueError, match="num_stages"):
        generate_case(0, num_stages=0)
    with pytest.raises(ValueError, match="num_scenarios"):
        generate_case(0, num_scenarios=0)


def test_shipped_file_is_what_the_generator_writes_for_seed_0(bolivia):
    regenerated = system_from_dict(generate_case(0))
    np.testing.assert_array_equal(regenerated.inflows, bolivia.inflows)
    np.testing.assert_array_equal(regenerated.demand, bolivia.demand)
    assert regenerated.hydros == bolivia.hydros and regenerated.lines == bolivia.lines


def test_new_scenarios_of_the_generators_inflow_model_are_deterministic_and_like_the_cases(bolivia):
    """sample_inflows draws more scenarios of the process the case's own were drawn from: same seasonal means and
    month-to-month persistence, rounded as the file, from a stream of their own (none is one of the file's)."""
    sample = sample_inflows(400, seed=11)
    assert sample.shape == (400, 96, 11)
    np.testing.assert_array_equal(sample, sample_inflows(400, seed=11))
    assert not np.array_equal(sample, sample_inflows(400, seed=12))
    np.testing.assert_array_equal(sample, np.round(sample, 2))
    assert not any(np.array_equal(new, old) for new in sample for old in bolivia.inflows)
    case_mean, new_mean = bolivia.inflows.mean(axis=(0, 1)), sample.mean(axis=(0, 1))
    np.testing.assert_allclose(new_mean, case_mean, rtol=0.1)
    model = inflow_model(0)
    assert model.num_stages == 96 and model.mean.shape == (11,) and model.season.shape == (12, 11)

    def lag1(inflows):
        anomaly = np.log(inflows[:, :, 0] + 1e-9)
        anomaly = anomaly - anomaly.mean(axis=0, keepdims=True)
        return np.corrcoef(anomaly[:, 1:].ravel(), anomaly[:, :-1].ravel())[0, 1]

    assert lag1(sample) == pytest.approx(lag1(bolivia.inflows), abs=0.05)
    with pytest.raises(ValueError, match="count"):
        sample_inflows(0, seed=1)


# ----------------------------------------------------------------------------------------------- the env


def test_reset_and_step_shapes(toy_env):
    n = 1
    observation, info = toy_env.reset(seed=0)
    assert observation.shape == (n + 3 * n + 3,) and observation.dtype == np.float32
    assert toy_env.observation_space.contains(observation)
    assert toy_env.action_space.shape == (n,)
    assert 0 <= info["scenario"] < 20
    observation, reward, terminated, truncated, info = toy_env.step(np.zeros(n, dtype=np.float32))
    assert observation.shape == (7,) and isinstance(reward, float)
    assert not terminated and not truncated
    assert set(info) >= {"operating_cost", "penalty_cost", "volumes", "target_slack", "violation"}


def test_observation_layout(toy_env):
    system = toy_env.system
    observation, _ = toy_env.reset(options={"scenario": 4})
    mean = system.inflows[:, :, 0].mean()
    np.testing.assert_allclose(observation[0], (150.0 - 0.0) / 400.0, rtol=1e-6)
    np.testing.assert_allclose(observation[1], system.inflows[4, 0, 0] / mean, rtol=1e-5)
    np.testing.assert_allclose(observation[2:4], [1.0, 1.0])  # padded history
    np.testing.assert_allclose(observation[4:], [0.0, 1.0, 0.0], atol=1e-7)
    observation, *_ = toy_env.step(np.zeros(1))
    np.testing.assert_allclose(observation[1:3], system.inflows[4, [1, 0], 0] / mean, rtol=1e-5)


def test_reward_is_minus_scaled_cost_of_solve_stage(bolivia):
    env = HydroDispatchEnv(bolivia, scenarios=[7])
    _, info = env.reset(seed=1)
    assert info["scenario"] == 7
    action = np.linspace(-0.5, 0.8, 11).astype(np.float32)
    _, reward, _, _, info = env.step(action)
    expected = solve_stage(
        bolivia,
        0,
        volumes_in=bolivia.initial_volumes,
        inflow=bolivia.inflows[7, 0],
        target=env.action_to_target(action),
    )
    assert reward == pytest.approx(-(expected.operating_cost + expected.penalty_cost) / env.reward_scale, rel=1e-9)
    assert info["operating_cost"] == pytest.approx(expected.operating_cost)
    np.testing.assert_allclose(info["volumes"], expected.volumes)
    np.testing.assert_allclose(env.action_to_target(-np.ones(11)), [h.min_volume for h in bolivia.hydros])
    np.testing.assert_allclose(env.action_to_target(np.ones(11)), [h.max_volume for h in bolivia.hydros])


def test_terminated_at_stage_T_and_realised_volumes_as_targets_cost_no_penalty():
    leader, follower = HydroDispatchEnv("toy"), HydroDispatchEnv("toy")
    leader.reset(options={"scenario": 3})
    follower.reset(options={"scenario": 3})
    steps, terminated = 0, False
    while not terminated:
        _, _, terminated, truncated, info = leader.step(np.array([0.6 if steps % 2 else -0.9]))
        # the follower, in the same state, asks for exactly the end volume the leader reached
        _, _, follower_done, _, replay = follower.step(follower.target_to_action(info["volumes"]))
        assert replay["penalty_cost"] == pytest.approx(0.0, abs=1e-6) and not replay["violation"]
        np.testing.assert_allclose(replay["volumes"], info["volumes"], atol=1e-6)
        assert not truncated and follower_done == terminated and info["stage"] == steps
        steps += 1
    assert steps == leader.system.num_stages == 12
    with pytest.raises(RuntimeError, match="reset"):
        leader.step(np.zeros(1))


def test_errors_are_clear(toy_env):
    with pytest.raises(UnknownCaseError, match="shipped cases are .*'toy'"):
        HydroDispatchEnv("no-such-case")
    with pytest.raises(UnknownCaseError, match="did you mean 'toy'"):
        HydroDispatchEnv("tyo")
    with pytest.raises(TypeError, match="case: expected a case name"):
        HydroDispatchEnv(3)
    with pytest.raises(ValueError, match="scenarios"):
        HydroDispatchEnv("toy", scenarios=[0, 20])
    with pytest.raises(ValueError, match="history"):
        HydroDispatchEnv("toy", history=-1)
    with pytest.raises(ValueError, match="scenario"):
        toy_env.reset(options={"scenario": 99})
    toy_env.reset(seed=0)
    with pytest.raises(ValueError, match="action: expected shape"):
        toy_env.step(np.zeros(3))


def test_single_bus_and_case_names(bolivia):
    """The env finds cases with envs.hydro.case_path, the package's one resolver: names with '-' or '_', or paths."""
    assert case_path("bolivia-like") == case_path("bolivia_like") == CASES_DIR / "bolivia_like.json"
    from_path, by_name = HydroDispatchEnv(str(CASES_DIR / "toy.json")).system, HydroDispatchEnv("toy").system
    assert from_path.name == by_name.name and np.array_equal(from_path.inflows, by_name.inflows)
    assert HydroDispatchEnv(bolivia).system is bolivia
    env = HydroDispatchEnv("toy", single_bus=True)
    env.reset(seed=0)
    *_, info = env.step(np.zeros(1))
    assert info["operating_cost"] >= 0


def _with_held_out_inflows(system, factor):
    """A copy of ``system`` whose held-out scenarios (the last 5 of the toy's 20) have ``factor`` x the inflows."""
    inflows = system.inflows.copy()
    inflows[15:] *= factor
    return dataclasses.replace(system, inflows=inflows)


def test_inflow_normalisation_comes_from_the_training_scenarios_only():
    toy = load_system(case_path("toy"))
    train = range(15)
    envs_ = [HydroDispatchEnv(_with_held_out_inflows(toy, f), scenarios=train, history=2) for f in (1.0, 3.0, 0.2)]
    trajectories = []
    for env in envs_:
        observations = [env.reset(options={"scenario": 2})[0]]
        for action in (-0.5, 0.3, 0.9):
            observations.append(env.step(np.array([action]))[0])
        trajectories.append(np.array(observations))
    # what an agent sees on a training scenario does not depend on the held-out scenarios
    for other in trajectories[1:]:
        np.testing.assert_array_equal(other, trajectories[0])
    # the scale is the training mean: a training scenario's first inflow reads inflow / mean over scenarios 0..14
    np.testing.assert_allclose(trajectories[0][0, 1], toy.inflows[2, 0, 0] / toy.inflows[:15].mean(), rtol=1e-6)
    # the held-out scenarios, however large, still lie in the observation space (reset may start them)
    big = envs_[1]
    observation, _ = big.reset(options={"scenario": 19})
    assert big.observation_space.contains(observation)


def test_violation_flag_is_the_systems_definition():
    """info["violation"] is HydroSystem.target_violations (envs.hydro.VIOLATION_TOLERANCE of the plant's range),
    the definition TS-DDR and the benchmark report."""
    env = HydroDispatchEnv("toy")
    env.reset(options={"scenario": 0})
    *_, info = env.step(np.ones(1))  # fill 150 -> 400 hm3 in one stage: out of reach
    assert info["violation"] and abs(info["target_slack"][0]) > VIOLATION_TOLERANCE * env.system.volume_ranges[0]
    flags = env.system.target_violations(np.array([[0.5], [2.0]]) * VIOLATION_TOLERANCE * 400.0)
    assert flags.tolist() == [[False], [True]]


def test_check_env_passes():
    from gymnasium.utils.env_checker import check_env

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no checker warnings either (e.g. unbounded observations)
        check_env(HydroDispatchEnv("toy"), skip_render_check=True)
        check_env(gymnasium.make("HydroDispatch-BoliviaLike-v0").unwrapped, skip_render_check=True)


def test_sb3_ppo_runs_on_the_registered_toy_env():
    from stable_baselines3 import PPO

    env = gymnasium.make("HydroDispatch-Toy-v0")
    model = PPO("MlpPolicy", env, n_steps=64, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=64)
    assert model.num_timesteps == 64
