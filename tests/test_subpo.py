"""SubPO: returns-to-go, baseline, update direction, modular reward, save/load, seeding, learning, CLI."""

import json

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import Logger

from algos.subpo import ModularCoverageReward, SubPO, modular_reward, returns_to_go, time_step_baseline
from envs.submodular import CoverageGridEnv
from rl.cli import main


def _small_env(observation="history", weights="bimodal"):
    return CoverageGridEnv(weights, grid=(6, 6), horizon=10, observation=observation)


def _model(env=None, seed=0, **kwargs):
    kwargs = {"episodes_per_update": 8, "learning_rate": 1e-2, "seed": seed, **kwargs}
    return SubPO("MlpPolicy", env or _small_env(), **kwargs)


def test_returns_to_go_at_t0_is_F_of_the_trajectory():
    env = _small_env()
    rng = np.random.default_rng(0)
    rewards, starts, values = [], [], []
    for _ in range(2):
        obs, _ = env.reset()
        states = [env.F.index(int(obs[0]), int(obs[1]))]
        for t in range(env.horizon - 1):
            obs, reward, _, truncated, _ = env.step(int(rng.integers(5)))
            states.append(env.F.index(int(obs[0]), int(obs[1])))
            rewards.append(reward)
            starts.append(t == 0)
        assert truncated
        values.append(env.F.value(states))
    returns = returns_to_go(np.array(rewards)[:, None], np.array(starts)[:, None])[:, 0]
    steps = env.horizon - 1
    assert returns[0] == pytest.approx(values[0]) and returns[steps] == pytest.approx(values[1])
    assert returns[steps - 1] == pytest.approx(rewards[steps - 1])  # the episode's last step: its own gain


def test_baseline_is_the_batch_mean_return_at_each_time_step():
    returns = np.array([[1.0, 3.0], [4.0, 8.0], [2.0, 0.0]])
    steps = np.array([[0, 0], [1, 1], [0, 0]])
    expected = np.array([[1.5, 1.5], [6.0, 6.0], [1.5, 1.5]])
    np.testing.assert_allclose(time_step_baseline(returns, steps), expected)
    # In a collected batch, the advantages at each time step average to zero.
    model = _model()
    model.learn(model.n_steps)
    advantages = model.rollout_buffer.advantages.reshape(-1)  # flattened env-major by the update
    steps = model._rollout_steps.T.reshape(-1)
    for t in range(9):
        assert advantages[steps == t].mean() == pytest.approx(0.0, abs=1e-5)


def test_one_update_raises_the_log_prob_of_the_higher_advantage_action():
    model = _model(episodes_per_update=1, episode_length=2, learning_rate=1e-3)
    model.set_logger(Logger(folder=None, output_formats=[]))
    obs, _ = model.env.envs[0].reset()
    buffer = model.rollout_buffer
    buffer.reset()
    for action in (0, 1):
        buffer.add(obs[None], np.array([[action]]), np.zeros(1), np.array([action == 0]), th.zeros(1), th.zeros(1))
    buffer.advantages[:] = np.array([[1.0], [-1.0]])
    model._rollout_steps[:] = np.array([[0], [1]])
    obs_tensor = th.as_tensor(obs[None])

    def gap():
        with th.no_grad():
            log_prob = model.policy.get_distribution(obs_tensor).distribution.logits[0]
        return float(log_prob[0] - log_prob[1])

    before = gap()
    model.train()
    assert gap() > before + 1e-4


def test_modular_wrapper_pays_the_neighbourhood_weight_ignoring_history():
    env = ModularCoverageReward(CoverageGridEnv("constant", grid=(3, 3), horizon=5, start=(0, 0)))
    env.reset()
    # disc of radius 1 at (0, 0): (0, 0), (0, 1), (1, 0) -> 3; at (0, 1): (0, 0), (0, 1), (0, 2), (1, 1) -> 4
    _, reward, _, _, info = env.step(1)  # right, first step also pays s_0
    assert reward == pytest.approx(3 + 4)
    assert info["submodular_reward"] == pytest.approx(3 + 2)  # F({s_0}) + the newly covered (0, 2), (1, 1)
    _, reward, _, _, info = env.step(0)  # stay: nothing new covered, the modular reward pays again
    assert reward == pytest.approx(4) and info["submodular_reward"] == 0
    _, reward, _, _, info = env.step(3)  # back left
    assert reward == pytest.approx(3) and info["submodular_reward"] == 0
    assert modular_reward(env.unwrapped.F, 0, 1) == pytest.approx(4)


def test_modular_option_learns_from_the_wrappers_reward():
    model = _model(reward="modular", episodes_per_update=2)
    model.learn(model.n_steps)
    actions, rewards = model.rollout_buffer.actions.reshape(-1), model.rollout_buffer.rewards.reshape(-1)  # one env
    env = ModularCoverageReward(_small_env())
    env.reset()
    for t in range(model.n_steps):
        _, reward, _, truncated, _ = env.step(int(actions[t]))
        assert rewards[t] == pytest.approx(reward)
        if truncated:
            env.reset()


def test_save_load_round_trip_and_predict(tmp_path):
    model = _model()
    model.learn(model.n_steps)
    model.save(tmp_path / "subpo.zip")
    loaded = SubPO.load(tmp_path / "subpo.zip")
    for a, b in zip(model.policy.state_dict().values(), loaded.policy.state_dict().values()):
        assert th.equal(a, b)
    assert loaded.n_steps == model.n_steps and loaded.reward == "submodular"
    obs = np.stack([_small_env().reset()[0]] * 3)
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
    mean, _ = evaluate_policy(loaded, _small_env(), n_eval_episodes=2, warn=False)
    assert mean > 0
    loaded.set_env(model.get_env())
    loaded.learn(model.n_steps, reset_num_timesteps=False)  # learning continues after load
    assert loaded.num_timesteps == 2 * model.n_steps


def test_same_seed_same_result():
    runs = []
    for _ in range(2):
        model = _model(seed=3)
        model.learn(2 * model.n_steps)
        runs.append((model.rollout_buffer.actions.copy(), [p.detach().clone() for p in model.policy.parameters()]))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert all(th.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))


def test_a_short_run_raises_the_mean_coverage():
    model = _model(episodes_per_update=32)
    eval_env = _small_env()
    eval_env.reset(seed=0)
    before, _ = evaluate_policy(model, eval_env, n_eval_episodes=50, deterministic=False, warn=False)
    model.learn(10 * model.n_steps)
    after, _ = evaluate_policy(model, eval_env, n_eval_episodes=50, deterministic=False, warn=False)
    assert after > before + 1.0


def test_cli_trains_through_the_shared_runner(tmp_path):
    argv = ["--env", "Coverage-GP-History-v0", "-n", "36", "-f", str(tmp_path), "--eval-freq", "-1",
            "--final-eval-episodes", "2", "--save-freq", "-1", "--no-progress", "--verbose", "0",
            "-params", "episodes_per_update:4", "env_kwargs:dict(grid=(6, 6), horizon=10)"]
    assert main("subpo", argv) == 0
    record = json.loads((tmp_path / "subpo" / "Coverage-GP-History-v0_1" / "run.json").read_text())
    assert record["num_timesteps"] == 36 and len(record["final_evaluation"]["episode_rewards"]) == 2
