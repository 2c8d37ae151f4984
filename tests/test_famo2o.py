"""FamO2O's own behaviour, on its IQL and CQL bases: the beta encoding, the balance model's range, a universal
policy whose actions depend on beta, uniform betas offline and the balance model's online, the balance model
moving towards higher Q, logged beta statistics, save/load with the balance model, and the command line's
offline score and beta plot.

The SB3 contract shared by all offline algorithms is in test_offline_contract.py.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch as th
from offline_data import random_dataset, write_hdf5
from scipy import stats
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import Logger

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
