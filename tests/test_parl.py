"""PARL for SB3 (algos.parl, algos.parl_estimators): the policy's log-probabilities against SB3's own, the
implicit term against finite differences on a tiny linear policy and linear reward, the callback against the
plain reward-learning baseline, and bad input through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import PPO, SAC, TD3

from algos.parl import ParlOptions, ParlRewardCallback, main
from algos.parl_estimators import (
    PolicyNotStochasticError,
    ensemble_reward,
    implicit_term,
    pair_log_likelihoods,
    policy_log_prob,
    reward_to_go,
)
from algos.spo import SPOError
from rl.preferences.raters import make_rater
from rl.preferences.reward_learning import PreferenceRewardCallback
from rl.preferences.reward_model import BradleyTerryRewardModel
from rl.preferences.segments import collect_trajectories
from tests.recording_logger import recording_logger

ENV = "Pendulum-v1"


def _trajectories(model, n: int = 2, steps: int = 40):
    return collect_trajectories(gym.make(ENV), model, n_episodes=n, seed=0, max_steps=steps)


def test_log_prob_of_recorded_actions_matches_sb3():
    ppo = PPO("MlpPolicy", ENV, seed=0, policy_kwargs=dict(net_arch=[8]))
    trajectory = _trajectories(ppo, n=1)[0]
    observations = trajectory.observations[: len(trajectory)]
    _, expected, _ = ppo.policy.evaluate_actions(th.as_tensor(observations), th.as_tensor(trajectory.actions))
    assert th.allclose(policy_log_prob(ppo, observations, trajectory.actions), expected, atol=1e-5)

    sac = SAC("MlpPolicy", ENV, seed=0, policy_kwargs=dict(net_arch=[8]))
    squashed, expected = sac.actor.action_log_prob(th.as_tensor(observations))
    env_actions = sac.policy.unscale_action(squashed.detach().numpy())  # Pendulum's actions are in [-2, 2]
    assert th.allclose(policy_log_prob(sac, observations, env_actions), expected, atol=1e-3)


def test_log_prob_goes_through_vecnormalize_discrete_actions_and_action_bounds():
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    env = VecNormalize(make_vec_env(ENV, n_envs=1, seed=0))
    ppo = PPO("MlpPolicy", env, seed=0, n_steps=64, batch_size=64, policy_kwargs=dict(net_arch=[8]))
    ppo.learn(64)  # moves VecNormalize's statistics away from zero mean, unit variance
    raw = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    actions = np.random.default_rng(1).uniform(-2, 2, size=(5, 1)).astype(np.float32)
    _, expected, _ = ppo.policy.evaluate_actions(th.as_tensor(env.normalize_obs(raw)), th.as_tensor(actions))
    assert th.allclose(policy_log_prob(ppo, raw, actions), expected, atol=1e-5)

    discrete = PPO("MlpPolicy", "CartPole-v1", seed=0, policy_kwargs=dict(net_arch=[8]))
    observations = np.random.default_rng(2).normal(size=(4, 4)).astype(np.float32)
    choices = np.array([0, 1, 1, 0])
    _, expected, _ = discrete.policy.evaluate_actions(th.as_tensor(observations), th.as_tensor(choices))
    assert th.allclose(policy_log_prob(discrete, observations, choices), expected, atol=1e-6)

    sac = SAC("MlpPolicy", ENV, seed=0, policy_kwargs=dict(net_arch=[8]))
    at_bounds = policy_log_prob(sac, observations[:2, :3], np.array([[2.0], [-2.0]], dtype=np.float32))
    assert th.isfinite(at_bounds).all()  # Pendulum's +-2 map to +-1, where the tanh's inverse is infinite


def test_the_implicit_term_needs_pairs():
    model, reward_model, trajectories, _, _ = _tiny_problem()
    with pytest.raises(ValueError, match="at least one labelled pair"):
        implicit_term(model, reward_model, trajectories, [], np.array([]), gamma=0.9)


def test_a_deterministic_policy_is_refused():
    td3 = TD3("MlpPolicy", ENV, seed=0, policy_kwargs=dict(net_arch=[8]))
    with pytest.raises(PolicyNotStochasticError, match="PARL needs a stochastic policy"):
        policy_log_prob(td3, np.zeros((1, 3), dtype=np.float32), np.zeros((1, 1), dtype=np.float32))


def test_reward_to_go_by_hand():
    rewards = th.tensor([1.0, 2.0, 3.0])
    assert th.allclose(reward_to_go(rewards, 0.5), th.tensor([1 + 0.5 * 2 + 0.25 * 3, 2 + 0.5 * 3, 3.0]))


def _tiny_problem():
    """A linear-Gaussian policy (5 parameters) and a linear one-member reward model (5 parameters)."""
    model = PPO("MlpPolicy", ENV, seed=0, policy_kwargs=dict(net_arch=dict(pi=[], vf=[8])))
    trajectories = _trajectories(model, n=3, steps=30)  # three: each trajectory's steps start after the others'
    reward_model = BradleyTerryRewardModel(model.observation_space, model.action_space, n_members=1, net_arch=(),
                                           seed=0)
    pairs = [(trajectories[0].segment(0, 10), trajectories[1].segment(5, 10)),
             (trajectories[0].segment(12, 10), trajectories[1].segment(15, 10)),
             (trajectories[1].segment(0, 10), trajectories[0].segment(20, 10))]
    return model, reward_model, trajectories, pairs, np.array([1.0, 0.0, 0.5])


def _flat(parameters) -> th.Tensor:
    return th.cat([p.detach().reshape(-1) for p in parameters]).double()


def _nudge(parameters, index: int, amount: float) -> None:
    with th.no_grad():
        for p in parameters:
            if index < p.numel():
                p.view(-1)[index] += amount
                return
            index -= p.numel()


def _surrogate_gradient(model, reward_model, trajectories, parameters, gamma, old_log_probs) -> th.Tensor:
    """grad_theta of mean_t [pi_theta(a_t|s_t) / pi_old(a_t|s_t) (G_t - mean G)], written out again for the
    finite differences (``old_log_probs``: the unperturbed policy's)."""
    observations = np.concatenate([t.observations[: len(t)] for t in trajectories])
    actions = np.concatenate([t.actions for t in trajectories])
    rewards = ensemble_reward(reward_model, observations, actions).detach().double()
    returns, start = [], 0
    for t in trajectories:
        chunk = rewards[start:start + len(t)]
        returns.append(th.stack([sum(gamma ** (k - j) * chunk[k] for k in range(j, len(t))) for j in range(len(t))]))
        start += len(t)
    advantages = th.cat(returns)
    advantages = advantages - advantages.mean()
    ratios = th.exp(policy_log_prob(model, observations, actions) - old_log_probs)
    gradients = th.autograd.grad((ratios * advantages.float()).mean(), parameters)
    return _flat(gradients)


def test_implicit_term_matches_finite_differences_on_a_tiny_problem():
    model, reward_model, trajectories, pairs, labels = _tiny_problem()
    gamma, damping, step = 0.9, 0.1, 1e-2
    policy = [model.policy.action_net.weight, model.policy.action_net.bias, model.policy.log_std]
    reward = list(reward_model.members.parameters())

    # d_theta G: the likelihood-weighted score, by central differences of the segments' log-probabilities.
    with th.no_grad():
        weights = pair_log_likelihoods(reward_model, pairs, labels).double()
    weights = weights - weights.mean()

    def weighted_log_prob() -> float:
        with th.no_grad():
            return float(sum(w * (policy_log_prob(model, a.observations, a.actions).double().sum()
                                  + policy_log_prob(model, b.observations, b.actions).double().sum())
                             for w, (a, b) in zip(weights, pairs)) / len(pairs))

    def central(function, parameters, index: int):
        _nudge(parameters, index, step)
        plus = function()
        _nudge(parameters, index, -2 * step)
        minus = function()
        _nudge(parameters, index, step)
        return (plus - minus) / (2 * step)

    n_policy, n_reward = sum(p.numel() for p in policy), sum(p.numel() for p in reward)
    score = th.tensor([central(weighted_log_prob, policy, i) for i in range(n_policy)], dtype=th.float64)

    with th.no_grad():
        old_log_probs = policy_log_prob(model, np.concatenate([t.observations[: len(t)] for t in trajectories]),
                                        np.concatenate([t.actions for t in trajectories]))

    def surrogate_gradient() -> th.Tensor:
        return _surrogate_gradient(model, reward_model, trajectories, policy, gamma, old_log_probs)

    hessian = th.stack([central(surrogate_gradient, policy, i) for i in range(n_policy)], dim=1)
    mixed = th.stack([central(surrogate_gradient, reward, i) for i in range(n_reward)], dim=1)
    system = -0.5 * (hessian + hessian.T) + damping * th.eye(n_policy, dtype=th.float64)
    expected = mixed.T @ th.linalg.solve(system, score)

    # CG on float32 products of an ill-conditioned Hessian: more iterations than the 5 dimensions to converge.
    term = implicit_term(model, reward_model, trajectories, pairs, labels, gamma=gamma, iterations=4 * n_policy,
                         damping=damping)
    found = _flat(term.gradients)
    assert th.allclose(found, expected, rtol=1e-2, atol=1e-3 * float(expected.abs().max())), (found, expected)
    assert float(expected.abs().max()) > 1e-3


def _callbacks(weight: float):
    model = PPO("MlpPolicy", ENV, seed=3, n_steps=256, batch_size=64, n_epochs=1, policy_kwargs=dict(net_arch=[8]))
    reward_model = BradleyTerryRewardModel(model.observation_space, model.action_space, seed=3, net_arch=(16,))
    settings = dict(total_comparisons=30, query_interval=256, segment_length=20, epochs=2, seed=3)
    if weight is None:
        callback = PreferenceRewardCallback(make_rater("bt", temperature=0.0), reward_model, **settings)
    else:
        callback = ParlRewardCallback(make_rater("bt", temperature=0.0), reward_model, implicit_weight=weight,
                                      **settings)
    model.learn(768, callback=callback)
    return callback, reward_model


def test_without_the_implicit_term_parl_is_the_reward_learning_baseline_and_with_it_differs():
    _, baseline = _callbacks(None)
    parl_zero, zero = _callbacks(0.0)
    _, corrected = _callbacks(1.0)
    baseline_state, zero_state = baseline.members.state_dict(), zero.members.state_dict()
    assert all(th.equal(baseline_state[key], zero_state[key]) for key in baseline_state)
    assert any(not th.equal(baseline_state[key], value) for key, value in corrected.members.state_dict().items())
    assert parl_zero.comparisons_used == 30


def test_options_from_hyperparameters_and_their_errors():
    hyperparams = {"parl_total_comparisons": 50, "parl_rater": "noisy", "parl_damping": 0.5, "learning_rate": 1e-3}
    options = ParlOptions.pop_from(hyperparams)
    assert (options.reward.total_comparisons, options.reward.rater, options.parl.damping) == (50, "noisy", 0.5)
    assert hyperparams == {"learning_rate": 1e-3}
    with pytest.raises(SPOError, match="parl_total_comparisons"):
        ParlOptions.pop_from({"parl_rater": "bt"})
    with pytest.raises(SPOError, match="inverse_method must be one of cg, neumann"):
        ParlOptions.pop_from({"parl_total_comparisons": 5, "parl_inverse_method": "lu"})


def test_cli_run_records_the_comparisons_and_settings(tmp_path):
    argv = ["--algo", "ppo", "--env", ENV, "-n", "512", "--total-comparisons", "20", "--query-interval", "256",
            "--segment-length", "20", "--epochs", "1", "-params", "n_steps:256", "batch_size:64", "n_epochs:1",
            "policy_kwargs:dict(net_arch=[8])", "--eval-freq", "512", "--eval-episodes", "1",
            "--final-eval-episodes", "1", "--no-progress", "--verbose", "0", "-f", str(tmp_path)]
    assert main(argv) == 0
    (run,) = tmp_path.glob("parl_ppo/*/run.json")
    record = json.loads(run.read_text())
    assert record["parl"]["comparisons_used"] == 20 and record["parl"]["implicit_weight"] == 1.0
    assert record["parl"]["query_rounds"] == 2
    curve = record["parl"]["alignment_curve"]
    assert [point["comparisons"] for point in curve] == [2, 20]  # 10% in round 0, the rest in round 1
    assert all(-1 <= point["reward_correlation"] <= 1 for point in curve)
    assert (run.parent / "alignment.png").is_file()
    # The learned reward is kept and loads back to the same function.
    from rl.preferences.reward_model import BradleyTerryRewardModel as Model

    loaded = Model.load(run.parent / "reward_model.pt")
    observations = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    actions = np.random.default_rng(1).uniform(-2, 2, size=(5, 1)).astype(np.float32)
    assert np.isfinite(loaded.predict(observations, actions)).all() and loaded.comparisons_trained == 20


def test_a_reward_model_for_other_spaces_is_refused_before_training():
    from gymnasium import spaces

    from rl.preferences.reward_learning import RewardLearningError

    model = PPO("MlpPolicy", ENV, seed=0, n_steps=64, batch_size=64, policy_kwargs=dict(net_arch=[8]))
    wrong = BradleyTerryRewardModel(spaces.Box(-1, 1, shape=(4,)), model.action_space, seed=0)
    callback = ParlRewardCallback(make_rater("bt"), wrong, total_comparisons=10)
    with pytest.raises(RewardLearningError, match=r"takes observations \['box', \[4\]\].*build it with"):
        model.learn(64, callback=callback)
    assert model.num_timesteps == 0


class _AffineReward:
    """A stand-in reward model: ``scale`` x the first observation entry + 1."""

    def __init__(self, scale: float) -> None:
        self.scale = scale

    def predict(self, observations, actions):
        return self.scale * observations[:, 0] + 1.0


def test_alignment_is_the_recent_true_return_and_the_reward_correlation():
    from rl.preferences.reward_learning import alignment_of
    from rl.preferences.segments import Trajectory

    first = Trajectory(observations=np.array([[0.0], [1.0], [2.0]]), actions=np.zeros((3, 1)),
                       rewards=np.array([0.0, 1.0, 2.0]))
    second = Trajectory(observations=np.array([[3.0], [5.0]]), actions=np.zeros((2, 1)),
                        rewards=np.array([[1.0, 2.0], [4.0, 1.0]]))  # terms: true rewards 3 and 5
    assert alignment_of(_AffineReward(2.0), [first, second]) == {"recent_true_return": (3.0 + 8.0) / 2,
                                                                 "reward_correlation": pytest.approx(1.0)}
    assert alignment_of(_AffineReward(-1.0), [first, second])["reward_correlation"] == pytest.approx(-1.0)
    assert np.isnan(alignment_of(_AffineReward(0.0), [first])["reward_correlation"])  # constant prediction


@pytest.mark.parametrize("extra, message", [
    (["--algo", "td3"], "td3 has a deterministic policy"),
    (["--rater", "oracle"], "oracle"),
    (["--total-comparisons", "-3"], "total_comparisons must be an integer >= 1"),
    (["--implicit-trajectories", "0"], "implicit_trajectories must be an integer >= 1"),
    (["--damping", "-1"], "damping must be >= 0"),
])
def test_bad_input_is_one_line_exit_2_and_no_run_folder(extra, message, tmp_path, capsys):
    argv = ["--env", ENV, "-n", "64", "--no-progress", "-f", str(tmp_path / "logs"), *extra]
    if "--algo" not in extra:
        argv = ["--algo", "ppo", *argv]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error, error
    assert not any(Path(tmp_path / "logs").glob("*/*/run_inputs.json"))


def test_benchmark_runs_both_methods_at_the_same_budget_and_reports(tmp_path):
    from algos.parl_benchmark import first_reach, run

    table = run("tiny", "ppo", ["Pendulum-v1"], ["bt"], [0], 512, comparisons=20, query_interval=256,
                segment_length=20, workers=1, results_root=str(tmp_path / "results"),
                logs_root=str(tmp_path / "logs"), eval_freq=256, levels={"Pendulum-v1": -1e9},
                extra_hyperparams={"n_steps": 256, "batch_size": 64, "n_epochs": 1,
                                   "policy_kwargs": {"net_arch": [8]}})
    text = table.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| Pendulum-v1"))
    cells = [cell.strip() for cell in row.split("|")[1:-1]]
    assert cells[5] == "20" and cells[6] == "1"  # the queries both used, one seed
    # the level -1e9 is reached at the first evaluation (step 256), after both query rounds (steps 200 and 256)
    assert cells[8] == cells[9] == "20 queries, 256 steps (1/1)"
    runs = tmp_path / "results" / "tiny" / "runs"
    records = {label: json.loads((runs / label / "Pendulum-v1_seed0" / "run.json").read_text())
               for label in ("parl_ppo@bt", "rm_ppo@bt")}
    assert records["parl_ppo@bt"]["parl"]["total_comparisons"] == records["rm_ppo@bt"]["rm"]["total_comparisons"] == 20
    assert (tmp_path / "results" / "tiny" / "learning_curves.png").is_file()
    from rl.preferences.benchmark_runs import run_spec

    spec = run_spec("tiny", "rm_ppo@bt", "Pendulum-v1", 0, 512, {}, results_root=str(tmp_path / "results"),
                    logs_root=str(tmp_path / "logs"), command="", eval_freq=256)
    assert first_reach(spec, 1e9) is None


def test_the_correction_is_minus_the_weighted_implicit_term_per_member(monkeypatch):
    import algos.parl as parl_module
    from algos.parl_estimators import ImplicitTerm

    model = PPO("MlpPolicy", ENV, seed=0, n_steps=64, batch_size=64, policy_kwargs=dict(net_arch=[8]))
    reward_model = BradleyTerryRewardModel(model.observation_space, model.action_space, n_members=3, seed=0)
    callback = ParlRewardCallback(make_rater("bt"), reward_model, total_comparisons=4, implicit_weight=0.5)
    callback.init_callback(model)
    trajectories = _trajectories(model, n=2, steps=30)
    for trajectory in trajectories:
        callback.queue.push_trajectory(trajectory)
    callback.queue.compare_pairs(make_rater("bt"), [(trajectories[0].segment(0, 10), trajectories[1].segment(0, 10))],
                                 np.random.default_rng(0))
    term = [th.full_like(p, 2.0) for p in reward_model.members.parameters()]
    fixed = ImplicitTerm(gradients=term, score_norm=1.0, solution_norm=4.0, steps=60)
    calls: list[dict] = []

    def stub(*args, **kwargs):
        calls.append(kwargs)
        return fixed

    monkeypatch.setattr(parl_module, "implicit_term", stub)
    logger, writer = recording_logger()
    model.set_logger(logger)
    correction = callback._gradient_correction(1)
    assert all(th.equal(c, th.full_like(c, -0.5 * 3 * 2.0)) for c in correction)
    assert calls == [dict(gamma=model.gamma, method="cg", iterations=10, damping=0.1, scale=0.1)]
    assert callback._gradient_correction(0) is None  # no new pairs this round
    callback.implicit_weight = 0.0
    assert callback._gradient_correction(1) is None and len(calls) == 1
    logger.dump(0)
    assert writer.rows[-1]["parl/solution_norm"] == 4.0 and writer.rows[-1]["parl/implicit_norm"] == fixed.norm


def test_a_gradient_correction_moves_the_fit_against_its_sign():
    # One Adam step (lr 3e-4) on one comparison: a huge correction on one bias dominates that bias's gradient, so
    # the bias moves by -lr times the correction's sign.
    model = PPO("MlpPolicy", ENV, seed=0, policy_kwargs=dict(net_arch=[8]))
    segments = [t.segment(0, 10) for t in _trajectories(model, n=2, steps=20)]
    moved = {}
    for sign in (1.0, -1.0):
        reward_model = BradleyTerryRewardModel(model.observation_space, model.action_space, n_members=1, seed=0)
        before = reward_model.members[0][-1].bias.detach().clone()
        correction = [th.zeros_like(p) for p in reward_model.members.parameters()]
        correction[-1] += sign * 1e6
        reward_model.train(([tuple(segments)], [1.0]), epochs=1, rng=0, gradient_correction=correction)
        moved[sign] = float(reward_model.members[0][-1].bias.detach() - before)
    assert moved[1.0] == pytest.approx(-3e-4, rel=1e-3) and moved[-1.0] == pytest.approx(3e-4, rel=1e-3)


def test_a_corrected_fit_reports_the_loss_gradient_and_the_correction_norms():
    """One Adam step on one comparison: loss_gradient_norm is the norm of the loss's own gradient (the same with
    any correction), correction_norm the correction's; a plain fit reports neither."""
    model = PPO("MlpPolicy", ENV, seed=0, policy_kwargs=dict(net_arch=[8]))
    segments = [t.segment(0, 10) for t in _trajectories(model, n=2, steps=20)]
    data = ([tuple(segments)], [1.0])

    def fit(correction_value: float | None) -> dict[str, float]:
        reward_model = BradleyTerryRewardModel(model.observation_space, model.action_space, n_members=2, seed=0)
        correction = None if correction_value is None else [
            th.full_like(p, correction_value) for p in reward_model.members.parameters()]
        return reward_model.train(data, epochs=1, rng=0, gradient_correction=correction)

    plain, zero, two = fit(None), fit(0.0), fit(2.0)
    assert "loss_gradient_norm" not in plain and "correction_norm" not in plain
    reward_model = BradleyTerryRewardModel(model.observation_space, model.action_space, n_members=2, seed=0)
    n_parameters = sum(p.numel() for p in reward_model.members.parameters())
    assert zero["correction_norm"] == 0.0 and two["correction_norm"] == pytest.approx(2.0 * n_parameters ** 0.5)
    assert zero["loss_gradient_norm"] > 0 and two["loss_gradient_norm"] == zero["loss_gradient_norm"]

    # by hand: the summed members' cross-entropy on the one pair, its gradient's norm at the initial parameters
    features = [th.as_tensor(np.concatenate([s.observations.reshape(len(s.actions), -1),
                                             s.actions.reshape(len(s.actions), -1)], axis=1), dtype=th.float32)
                for s in segments]
    loss = sum(th.nn.functional.binary_cross_entropy_with_logits(
        member(features[0]).sum() - member(features[1]).sum(), th.tensor(1.0)) for member in reward_model.members)
    gradients = th.autograd.grad(loss, list(reward_model.members.parameters()))
    assert zero["loss_gradient_norm"] == pytest.approx(float(th.sqrt(sum((g ** 2).sum() for g in gradients))),
                                                       rel=1e-5)
