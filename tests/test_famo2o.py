"""FamO2O's own behaviour, on its IQL and CQL bases: the beta encoding, the balance model's range, a universal
policy whose actions depend on beta, uniform betas offline and the balance model's online, the balance model
moving towards higher Q, logged beta statistics, save/load with the balance model, and the command line's
offline score and beta plot (and, fast, the run artefacts behind them: the offline-phase score, beta over an episode
and its plot).

The SB3 contract shared by all offline algorithms is in test_offline_contract.py.
"""

from __future__ import annotations

import dataclasses
import json
import math
import zipfile

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from figure_checks import png_size, recorded_figures
from offline_data import random_dataset, write_hdf5
from scipy import stats
from stable_baselines3.common.callbacks import CallbackList
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

import rl.evaluation
from algos.famo2o import FamO2O
from algos.famo2o_cql import FamO2OCQL
from algos.famo2o_policies import BalanceModel, beta_encoding
from rl.cli import main

ENV_ID = "Pendulum-v1"
TINY = dict(policy_kwargs=dict(net_arch=[16, 16]), batch_size=32, buffer_size=2_000, device="cpu")
VARIANTS = [pytest.param(FamO2O, id="iql"), pytest.param(FamO2OCQL, id="cql")]


@pytest.fixture(scope="module")
def dataset():
    return random_dataset(ENV_ID, n=600)


def make(algo_class, dataset, seed: int = 0, **kwargs):
    env = make_vec_env(ENV_ID, n_envs=1, seed=seed)
    return algo_class("MlpPolicy", env, dataset=dataset, seed=seed, **{**TINY, **kwargs})


def pin_balance_model(model, squashed: float) -> float:
    """Make the balance model choose ``u = squashed`` in every state, with negligible noise; return that beta."""
    balance: BalanceModel = model.balance_model
    with th.no_grad():
        balance.mu.weight.zero_()
        balance.mu.bias.fill_(math.atanh(squashed))
        if isinstance(balance.log_std, th.nn.Linear):
            balance.log_std.weight.zero_()
            balance.log_std.bias.fill_(-20.0)
        else:
            balance.log_std.fill_(-10.0)
    return model.beta_min + (squashed + 1.0) / 2.0 * (model.beta_max - model.beta_min)


def test_beta_encoding_is_the_authors_sin_cos_features():
    beta = th.tensor([[1.0], [2.5], [5.0]])
    encoding = beta_encoding(beta, dim=6, base=10_000.0)
    assert encoding.shape == (3, 6)
    for row, value in zip(encoding.numpy(), beta.numpy().ravel()):
        angles = value / 10_000.0 ** (2 * np.arange(3) / 6)  # family_utils.py sin_cos_skill_func
        np.testing.assert_allclose(row[0::2], np.sin(angles), rtol=1e-6)
        np.testing.assert_allclose(row[1::2], np.cos(angles), rtol=1e-6)
    with pytest.raises(ValueError, match="even"):
        beta_encoding(beta, dim=5)


@pytest.mark.parametrize("algo_class", VARIANTS)
def test_balance_model_output_stays_within_beta_range(algo_class, dataset):
    model = make(algo_class, dataset)
    low, high = model.beta_min, model.beta_max
    balance: BalanceModel = model.balance_model
    np.testing.assert_allclose(balance.to_beta(th.tensor([-1.0, 0.0, 1.0])).numpy(), [low, (low + high) / 2, high])
    observations = th.as_tensor(np.random.default_rng(0).normal(scale=1e3, size=(256, 3)), dtype=th.float32)
    for squashed in (-1 + 1e-7, 0.3, 1 - 1e-7):  # the extremes saturate the tanh
        expected = pin_balance_model(model, squashed)
        with th.no_grad():  # wide noise (log-std 2): samples reach both ends
            if isinstance(balance.log_std, th.nn.Linear):
                balance.log_std.bias.fill_(2.0)
            else:
                balance.log_std.fill_(2.0)
            sample = balance.sample(observations)
            chosen = balance(observations)
        for values in (sample.beta, sample.mode, chosen):
            assert values.min() >= low and values.max() <= high
        assert sample.beta.min() < low + 0.05 * (high - low) and sample.beta.max() > high - 0.05 * (high - low)
        np.testing.assert_allclose(chosen.numpy(), expected, atol=1e-4)
        np.testing.assert_allclose(model.predict_beta(observations.numpy()), expected, atol=1e-4)
    with pytest.raises(ValueError, match="beta_min"):
        make(algo_class, dataset, beta_min=2.0, beta_max=1.0)


@pytest.mark.parametrize("algo_class", VARIANTS)
def test_universal_policy_acts_differently_for_different_betas(algo_class, dataset):
    model = make(algo_class, dataset)
    model.learn_offline(20)
    observations = th.as_tensor(dataset.observations[:16])
    low = th.full((16, 1), model.beta_min)
    high = th.full((16, 1), model.beta_max)
    with th.no_grad():
        at_low, at_high = model.actor(observations, low, deterministic=True), model.actor(observations, high, True)
    # Clearly different, relative to the actions' size (CQL's actor starts with small outputs).
    assert (at_low - at_high).abs().max() > 0.05 * at_low.abs().max()
    # predict asks the balance model for beta, then acts with that member of the family.
    for squashed, betas in ((-1 + 1e-7, low), (1 - 1e-7, high)):
        pin_balance_model(model, squashed)
        actions, _ = model.predict(dataset.observations[:16], deterministic=True)
        with th.no_grad():
            expected = model.policy.unscale_action(model.actor(observations, betas, True).numpy())
        np.testing.assert_allclose(actions, expected, atol=1e-5)


@pytest.mark.parametrize("algo_class", VARIANTS)
def test_offline_phase_samples_beta_uniformly_and_online_takes_the_balance_models(algo_class, dataset, monkeypatch):
    model = make(algo_class, dataset, batch_size=256, balance_lr=0.0)
    pinned = pin_balance_model(model, 0.5)  # beta = beta_min + 0.75 (beta_max - beta_min)
    drawn: list[tuple[bool, np.ndarray]] = []
    original = model.universal_policy_betas

    def recording(balance):
        betas = original(balance)
        drawn.append((model.in_offline_phase, betas.numpy().ravel().copy()))
        return betas

    conditioned: list[np.ndarray] = []  # the betas the universal policy's update is conditioned on
    actor_method = "log_prob" if algo_class is FamO2O else "action_log_prob"
    actor_call = getattr(model.actor, actor_method)

    def recording_actor(observations, beta, *args):
        conditioned.append(beta.detach().numpy().ravel().copy())
        return actor_call(observations, beta, *args)

    monkeypatch.setattr(model, "universal_policy_betas", recording)
    monkeypatch.setattr(model.actor, actor_method, recording_actor)
    model.learn_offline(8)
    model.learn(8, reset_num_timesteps=False)
    offline = np.concatenate([betas for phase, betas in drawn if phase])
    online = np.concatenate([betas for phase, betas in drawn if not phase])
    assert len(offline) == len(online) == 8 * 256
    low, high = model.beta_min, model.beta_max
    assert offline.min() >= low and offline.max() <= high
    assert stats.kstest(offline, "uniform", args=(low, high - low)).pvalue > 0.01
    assert offline.min() < low + 0.01 * (high - low) and offline.max() > high - 0.01 * (high - low)
    np.testing.assert_allclose(online, pinned, atol=1e-3)
    for _, betas in drawn:
        assert any(np.array_equal(betas, seen) for seen in conditioned)


@pytest.mark.parametrize("algo_class", VARIANTS)
def test_balance_model_moves_beta_towards_higher_q(algo_class, dataset, monkeypatch):
    """With actions that grow with beta and a Q that grows with the action, beta(s) must rise."""
    model = make(algo_class, dataset, balance_lr=1e-2, learning_rate=0.0, policy_kwargs=dict(net_arch=[8]))
    middle = (model.beta_min + model.beta_max) / 2

    def action_of(beta, like):
        return th.tanh(beta - middle).expand_as(like)

    if algo_class is FamO2O:
        monkeypatch.setattr(model.actor, "rsample", lambda obs, beta: action_of(beta, th.zeros(len(obs), 1)))
        monkeypatch.setattr(model, "_target_q", lambda obs, actions: 100.0 * actions.sum(dim=1, keepdim=True))
    else:
        sample = model.actor.action_log_prob
        monkeypatch.setattr(
            model.actor, "action_log_prob",
            lambda obs, beta: (action_of(beta, sample(obs, beta)[0]), sample(obs, beta)[1]),
        )
        monkeypatch.setattr(model, "_min_q", lambda obs, actions: 100.0 * actions.sum(dim=1, keepdim=True))
    observations = dataset.observations[:64]
    before = model.predict_beta(observations).mean()
    model.learn_offline(30)
    after = model.predict_beta(observations).mean()
    assert after > before + 0.1 * (model.beta_max - model.beta_min)


@pytest.mark.parametrize("algo_class", VARIANTS)
def test_train_logs_the_balance_models_beta(algo_class, dataset):
    model = make(algo_class, dataset)
    model.set_logger(Logger(folder=None, output_formats=[]))
    model.learn_offline(5, log_interval=0)
    logged = model.logger.name_to_value
    for key in ("beta_mean", "beta_min", "beta_max"):
        assert model.beta_min <= logged[f"train/{key}"] <= model.beta_max
    assert logged["train/beta_std"] >= 0 and "train/balance_loss" in logged
    # Offline the policy's betas are uniform: their mean is near the middle of the range.
    assert abs(logged["train/actor_beta_mean"] - (model.beta_min + model.beta_max) / 2) < 0.2 * (
        model.beta_max - model.beta_min
    )


def test_cql_variant_conditions_the_bc_warm_up_and_the_max_backup_on_the_rows_betas(dataset, monkeypatch):
    """FamO2OCQL inherits CQL's update: every call of the universal policy in it, the BC warm-up's log-likelihood
    and the max-target backup's samples included, gets the update's betas; during the warm-up the balance model
    does not step (the authors' L207), after it it does."""
    model = make(FamO2OCQL, dataset, bc_steps=2, cql_max_target_backup=True, cql_n_actions=3, batch_size=16,
                 balance_lr=1e-2, policy_kwargs=dict(net_arch=[8]))
    model.set_logger(Logger(folder=None, output_formats=[]))
    drawn: list = []  # the conditions of each update
    draw = model._update_conditions

    def recording_draw(observations, next_observations):
        conditions = draw(observations, next_observations)
        drawn.append((observations, next_observations, conditions))
        return conditions

    calls: list[tuple[th.Tensor, th.Tensor | None]] = []
    params = model.policy_distribution_params

    def recording_params(observations, conditions=None):
        calls.append((observations, conditions))
        return params(observations, conditions)

    monkeypatch.setattr(model, "_update_conditions", recording_draw)
    monkeypatch.setattr(model, "policy_distribution_params", recording_params)
    balance_before = {key: value.clone() for key, value in model.balance_model.state_dict().items()}
    model.learn_offline(2, log_interval=0)
    logged = dict(model.logger.name_to_value)
    for key, value in model.balance_model.state_dict().items():  # no balance step during the warm-up
        assert th.equal(value, balance_before[key]), key
    assert "train/balance_loss" not in logged and logged["train/behaviour_cloning"] == 1.0
    assert np.isfinite(logged["train/actor_loss"])
    # Per update: the log-likelihood at (s, beta), the max backup at (s', beta(s')), the penalty at both.
    assert len(drawn) == 2 and len(calls) == 3 * 2
    for step, (observations, next_observations, conditions) in enumerate(drawn):
        expected = [
            (observations, conditions.states), (next_observations, conditions.next_states),
            (th.cat([next_observations, observations]), th.cat([conditions.next_states, conditions.states])),
        ]
        for (called_observations, called_betas), (observations_i, betas) in zip(calls[3 * step:], expected):
            assert called_betas is not None and called_betas.shape == (len(called_observations), 1)
            assert th.equal(called_observations, observations_i) and th.equal(called_betas, betas)
            assert model.beta_min <= called_betas.min() and called_betas.max() <= model.beta_max
    model.learn_offline(1, log_interval=0, reset_num_timesteps=False)  # after the warm-up the balance model learns
    assert model.logger.name_to_value["train/behaviour_cloning"] == 0.0
    assert "train/balance_loss" in model.logger.name_to_value
    assert not th.equal(model.balance_model.mu.weight, balance_before["mu.weight"])


@pytest.mark.parametrize("algo_class", VARIANTS)
def test_save_load_round_trip_keeps_the_balance_model(algo_class, dataset, tmp_path):
    path = write_hdf5(dataset, tmp_path / "tiny.hdf5")
    model = make(algo_class, str(path), beta_min=0.7, beta_max=2.5)
    model.learn_offline(10)
    model.save(tmp_path / "model.zip")
    loaded = algo_class.load(tmp_path / "model.zip", device="cpu")  # no env
    with zipfile.ZipFile(tmp_path / "model.zip") as archive:  # the offline phase's parameters: in memory only
        assert "_offline_policy_state" not in json.loads(archive.read("data"))
    assert model._offline_policy_state is not None and loaded._offline_policy_state is None
    assert (loaded.beta_min, loaded.beta_max) == (0.7, 2.5)
    assert (loaded.balance_model.beta_min, loaded.balance_model.beta_max) == (0.7, 2.5)
    for key, value in model.balance_model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), loaded.balance_model.state_dict()[key].numpy(), err_msg=key)
    saved_moments = model.balance_model.optimizer.state_dict()["state"]
    loaded_moments = loaded.balance_model.optimizer.state_dict()["state"]
    assert saved_moments and saved_moments.keys() == loaded_moments.keys()
    for index, state in saved_moments.items():
        np.testing.assert_array_equal(state["exp_avg"].numpy(), loaded_moments[index]["exp_avg"].numpy())
    if algo_class is FamO2O:
        np.testing.assert_array_equal(
            model.log_balance_temperature.detach().numpy(), loaded.log_balance_temperature.detach().numpy()
        )
        assert loaded.balance_temperature_optimizer.state_dict()["state"]
    observations = dataset.observations[:8]
    np.testing.assert_array_equal(model.predict_beta(observations), loaded.predict_beta(observations))
    np.testing.assert_array_equal(
        model.predict(observations, deterministic=True)[0], loaded.predict(observations, deterministic=True)[0]
    )
    loaded.learn_offline(5, reset_num_timesteps=False)  # training goes on, the balance model with it
    assert not th.equal(loaded.balance_model.mu.weight, model.balance_model.mu.weight)


@pytest.mark.parametrize("name", ["famo2o", "famo2o_cql"])
def test_cli_reports_the_offline_score_and_plots_beta_over_an_episode(name, dataset, tmp_path, capsys):
    path = write_hdf5(dataset, tmp_path / "tiny.hdf5")
    argv = ["--dataset", str(path), "--offline-steps", "30", "--online-steps", "20", "--eval-freq", "30",
            "--eval-episodes", "1", "--final-eval-episodes", "1", "--save-freq", "-1", "-f", str(tmp_path / "logs"),
            "--no-progress", "-params", "policy_kwargs:dict(net_arch=[16,16])", "batch_size:32", "buffer_size:2000"]
    assert main(name, argv) == 0
    run_dir = tmp_path / "logs" / name / f"{ENV_ID}_1"
    record = json.loads((run_dir / "run.json").read_text())
    assert record["offline_steps"] == 30 and record["num_timesteps"] == 50
    offline = record["offline_evaluation"]
    assert offline["timestep"] == 30 and offline["n_episodes"] == 10
    assert record["offline_normalized_score"] == pytest.approx(100 * (offline["mean_reward"] + 1500) / 1500)
    assert record["final_normalized_score"] is not None
    assert "end of the offline phase" in capsys.readouterr().out
    summary = record["beta_over_episode"]
    low, high = summary["beta_range"]
    assert summary["steps"] == 200  # one Pendulum episode
    assert low <= summary["min"] <= summary["mean"] <= summary["max"] <= high
    assert (run_dir / "beta_over_episode.png").stat().st_size > 0
    assert (run_dir / "learning_curve.png").is_file()


# The run artefacts: the score of the offline phase's policy, and beta over one episode.


class Corridor(gym.Env):
    """``length`` steps whatever the actions, reward ``t`` at step ``t``, states that move with ``t``; logs each
    (state, action) it is stepped with."""

    observation_space = gym.spaces.Box(-5.0, 5.0, (3,), np.float32)
    action_space = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)

    def __init__(self, length: int = 4, offset: float = 0.0, log: list | None = None):
        self.length, self.offset, self.log = length, offset, [] if log is None else log

    def state(self) -> np.ndarray:
        return np.array([0.5 * self.t + self.offset, 1.0 - 0.7 * self.t, 0.3], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.state(), {}

    def step(self, action):
        self.log.append((self.state(), np.array(action, dtype=np.float32)))
        self.t += 1
        return self.state(), float(self.t), self.t >= self.length, False, {}


class DoubledReward(gym.RewardWrapper):
    def reward(self, reward):
        return 2.0 * reward


def corridor_model(env, **kwargs):
    model = FamO2O("MlpPolicy", env, seed=0, device="cpu", buffer_size=100, batch_size=8,
                   policy_kwargs=dict(net_arch=[8]), **kwargs)
    with th.no_grad():  # betas that clearly differ from state to state
        model.balance_model.mu.weight.copy_(th.linspace(-1.0, 1.0, model.balance_model.mu.weight.numel()).reshape(
            model.balance_model.mu.weight.shape))
    return model


def test_beta_over_episode_runs_one_deterministic_episode_of_the_first_env():
    """The betas of the balance model at the first env's states, one per step until that env's episode ends, with the
    policy's deterministic actions; the return is the Monitor's (the raw rewards'), not the sum of the rewards the
    vec env hands out (here doubled)."""
    first, second = [], []
    envs = [lambda: DoubledReward(Monitor(Corridor(4, log=first))),
            lambda: DoubledReward(Monitor(Corridor(6, offset=1.0, log=second)))]
    model = corridor_model(DummyVecEnv([lambda: Corridor()]))
    betas, episode_return = model.beta_over_episode(DummyVecEnv(envs))
    assert episode_return == 1.0 + 2.0 + 3.0 + 4.0 and isinstance(episode_return, float)
    states = np.stack([state for state, _ in first])
    np.testing.assert_allclose(states, [[0.5 * t, 1.0 - 0.7 * t, 0.3] for t in range(4)], rtol=1e-6)
    assert isinstance(betas, np.ndarray) and betas.shape == (4,) and len(second) == 4
    np.testing.assert_allclose(betas, model.predict_beta(states).ravel(), rtol=1e-6)
    assert np.ptp(betas) > 1e-3 * (model.beta_max - model.beta_min)  # the states' betas differ
    actions = np.stack([action for _, action in first])
    np.testing.assert_allclose(actions, model.predict(states, deterministic=True)[0], rtol=1e-6)
    assert not np.allclose(actions, model.predict(states, deterministic=False)[0])  # a sample would differ


def test_beta_over_episode_sums_the_step_rewards_without_a_monitor():
    log = []
    model = corridor_model(DummyVecEnv([lambda: Corridor()]))
    betas, episode_return = model.beta_over_episode(DummyVecEnv([lambda: Corridor(3, log=log)]))
    assert episode_return == 1.0 + 2.0 + 3.0 and isinstance(episode_return, float)
    assert len(log) == 3 and betas.shape == (3,)


def test_offline_evaluation_scores_the_parameters_the_offline_phase_left(dataset, monkeypatch):
    """Ten deterministic episodes with the policy as ``learn_offline`` left it (a copy, kept from later changes),
    then the current parameters back."""
    model = make(FamO2O, dataset)
    model.learn_offline(3)
    offline_state = {key: value.clone() for key, value in model.policy.state_dict().items()}
    with th.no_grad():
        for parameter in model.policy.parameters():
            parameter.add_(0.5)  # the policy has moved on since (online)
    current_state = {key: value.clone() for key, value in model.policy.state_dict().items()}
    seen = []
    evaluate = rl.evaluation.evaluate

    def recording(*args, **kwargs):
        state = {key: value.clone() for key, value in model.policy.state_dict().items()}
        seen.append((state, evaluate(*args, **kwargs)))
        return seen[-1][1]

    monkeypatch.setattr(rl.evaluation, "evaluate", recording)
    eval_env = make_vec_env(ENV_ID, n_envs=1, seed=3, env_kwargs=dict(max_episode_steps=5))
    result = model.offline_evaluation(eval_env, run_dir=None)
    (state, summary), = seen
    for key, value in model.policy.state_dict().items():
        assert th.equal(state[key], offline_state[key]) and th.equal(value, current_state[key]), key
    assert summary.n_episodes == 10 and summary.episode_lengths == [5] * 10 and summary.std_reward > 0
    assert result == {"mean_reward": summary.mean_reward, "std_reward": summary.std_reward, "n_episodes": 10,
                      "timestep": 3}


def test_learn_offline_hands_its_arguments_to_the_offline_mixin(dataset, monkeypatch):
    """Every argument, and the mixin's own defaults when left out; then the policy as the offline phase left it."""
    import inspect

    from rl.offline import OfflineAlgorithmMixin

    base = OfflineAlgorithmMixin.learn_offline
    calls = []

    def recording(self, *args, **kwargs):
        bound = inspect.signature(base).bind(self, *args, **kwargs)
        bound.apply_defaults()
        calls.append({key: value for key, value in bound.arguments.items() if key != "self"})
        return self

    monkeypatch.setattr(OfflineAlgorithmMixin, "learn_offline", recording)
    model = make(FamO2O, dataset)
    assert model.learn_offline(2) is model
    own_defaults = inspect.signature(base).bind(model, 2)
    own_defaults.apply_defaults()
    callback = CallbackList([])
    model.learn_offline(3, callback=callback, log_interval=7, tb_log_name="mine", reset_num_timesteps=False,
                        progress_bar=True)
    assert calls == [
        {key: value for key, value in own_defaults.arguments.items() if key != "self"},
        {"n_updates": 3, "callback": callback, "log_interval": 7, "tb_log_name": "mine", "reset_num_timesteps": False,
         "progress_bar": True},
    ]
    assert calls[0] == {"n_updates": 2, "callback": None, "log_interval": 1000, "tb_log_name": "offline",
                        "reset_num_timesteps": True, "progress_bar": False}
    kept = model._offline_policy_state
    assert kept.keys() == model.policy.state_dict().keys()
    for key, value in model.policy.state_dict().items():
        assert th.equal(kept[key], value) and kept[key].data_ptr() != value.data_ptr(), key


def test_offline_evaluation_of_a_resumed_run_reads_the_offline_phases_last_evaluation(tmp_path, monkeypatch):
    """Without the parameters in memory: the last row of ``run_dir/evaluations.npz`` logged at the offline phase's
    last update; None without a run folder, without the file, or without such a row."""
    model = corridor_model(DummyVecEnv([lambda: Corridor()]))
    model.offline_updates = 30
    eval_env = DummyVecEnv([lambda: Corridor()])
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    monkeypatch.chdir(tmp_path)  # no evaluations.npz in the working folder either
    assert model.offline_evaluation(eval_env, None) is None
    assert model.offline_evaluation(eval_env, str(run_dir)) is None
    results = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0], [-1.0, 0.0, 4.0], [10.0, 11.0, 12.0]])
    np.savez(run_dir / "evaluations.npz", timesteps=np.array([10, 30, 30, 30, 50]), results=results,
             ep_lengths=np.full((5, 3), 4))
    result = model.offline_evaluation(eval_env, str(run_dir))
    assert result == {"mean_reward": 1.0, "std_reward": pytest.approx(math.sqrt(14 / 3), rel=1e-12),
                      "n_episodes": 3, "timestep": 30}
    assert all(type(result[key]) is float for key in ("mean_reward", "std_reward"))
    model.offline_updates = 20
    assert model.offline_evaluation(eval_env, str(run_dir)) is None


def test_run_artifacts_record_the_offline_score_and_plot_beta_over_the_episode(dataset, monkeypatch, tmp_path,
                                                                                capsys):
    import matplotlib
    import matplotlib.pyplot as plt

    model = make(FamO2O, dataset, beta_min=0.5, beta_max=2.5)
    eval_env = DummyVecEnv([lambda: Corridor()])
    offline = {"mean_reward": -300.0, "std_reward": 5.0, "n_episodes": 10, "timestep": 40}
    betas = np.array([0.8, 1.2, 2.0, 1.0])
    calls = []
    monkeypatch.setattr(model, "offline_evaluation", lambda *args: calls.append(("offline", *args)) or offline)
    monkeypatch.setattr(model, "beta_over_episode", lambda *args: calls.append(("betas", *args)) or (betas, -123.46))
    figures = recorded_figures(monkeypatch)
    monkeypatch.setitem(matplotlib.rcParams, "figure.dpi", 72.0)  # a user's matplotlibrc leaves the PNG as it is
    monkeypatch.setitem(matplotlib.rcParams, "savefig.dpi", "figure")
    monkeypatch.setitem(matplotlib.rcParams, "axes.ymargin", 0.0)  # nor the y-limits
    monkeypatch.setitem(matplotlib.rcParams, "legend.loc", "upper right")  # nor the legend's place
    record = model.write_run_artifacts(str(tmp_path), eval_env)
    assert calls == [("offline", eval_env, str(tmp_path)), ("betas", eval_env)]
    assert record == {
        "offline_evaluation": offline,
        "offline_normalized_score": pytest.approx(100 * (-300.0 + 1500.0) / 1500.0, rel=1e-12),
        "beta_over_episode": {
            "plot": "beta_over_episode.png", "steps": 4, "episode_return": -123.46,
            "mean": pytest.approx(1.25, rel=1e-12), "std": pytest.approx(betas.std(), rel=1e-12), "min": 0.8,
            "max": 2.0, "beta_range": [0.5, 2.5],
        },
    }
    assert capsys.readouterr().out == "D4RL normalised score at the end of the offline phase (40 updates): 80.0\n"
    assert [path.name for path in tmp_path.iterdir()] == ["beta_over_episode.png"]
    assert png_size(tmp_path / "beta_over_episode.png") == (770, 385)  # 7 x 3.5 inches at 110 dpi

    (figure, axis), = figures
    assert tuple(figure.get_size_inches()) == (7.0, 3.5) and not plt.fignum_exists(figure.number)  # closed
    curve, *bounds = axis.get_lines()
    np.testing.assert_array_equal(curve.get_xdata(), np.arange(4))
    np.testing.assert_array_equal(curve.get_ydata(), betas)
    assert (curve.get_color(), curve.get_linewidth(), curve.get_label()) == (
        "tab:purple", 1.2, "beta(s) of the balance model")
    assert [tuple(line.get_ydata()) for line in bounds] == [(0.5, 0.5), (2.5, 2.5)]
    assert all((line.get_color(), line.get_linestyle(), line.get_linewidth()) == ("gray", "--", 0.8)
               for line in bounds)
    np.testing.assert_allclose(axis.get_ylim(), (0.4, 2.6), rtol=1e-12)  # 5% of the range either side
    assert axis.get_xlabel() == "step of a deterministic evaluation episode"
    assert axis.get_ylabel() == "balance coefficient beta"
    assert axis.get_title() == "FamO2O: beta over an episode (return -123.5)"
    gridlines = axis.yaxis.get_gridlines()
    assert gridlines[0].get_visible() and gridlines[0].get_alpha() == 0.3
    legend = axis.get_legend()
    assert [text.get_text() for text in legend.get_texts()] == ["beta(s) of the balance model"]
    assert legend._loc == 0  # "best"


def test_run_artifacts_leave_out_the_score_without_an_evaluation_or_a_score_scale(dataset, monkeypatch, tmp_path,
                                                                                   capsys):
    offline = {"mean_reward": -300.0, "std_reward": 5.0, "n_episodes": 10, "timestep": 40}
    unscaled = dataclasses.replace(dataset, ref_min=None, ref_max=None)
    for evaluation, dataset_of_model in ((None, dataset), (offline, None), (offline, unscaled)):
        model = make(FamO2OCQL, dataset_of_model)
        monkeypatch.setattr(model, "offline_evaluation", lambda *args, result=evaluation: result)
        monkeypatch.setattr(model, "beta_over_episode", lambda *args: (np.array([0.7, 0.9]), 3.0))
        record = model.write_run_artifacts(str(tmp_path), DummyVecEnv([lambda: Corridor()]))
        assert record["offline_evaluation"] == evaluation and record["offline_normalized_score"] is None
        assert record["beta_over_episode"]["steps"] == 2 and capsys.readouterr().out == ""
