"""SPO: win rates and their spread against hand computations, the rewards the learner really stores (on- and
off-policy), the reward-model baseline's schedule and rewards, the SB3 contract, and one-line bad input."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from hypothesis import given, settings
from hypothesis import strategies as st
from stable_baselines3 import PPO, TD3
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from algos.spo import SPO, SelfPlayRewardCallback, SPOError, SPOOptions, build_rater
from algos.spo import main as spo_main
from rl.preferences import (
    BradleyTerryRewardModel,
    ComparisonQueue,
    HumanRater,
    PreferenceRewardCallback,
    RewardTermsInInfo,
    Trajectory,
    make_rater,
)
from rl.preferences.recorder import env_term_names
from rl.preferences.reward_learning import query_schedule
from rl.preferences.win_rate import SPREADS, credit_steps, head, prefix_win_rate, win_rate

RNG = np.random.default_rng


def trajectory(rewards: list[float], episode_id: int = 0) -> Trajectory:
    steps = len(rewards)
    return Trajectory(np.zeros((steps, 1)), np.zeros((steps, 1)), np.asarray(rewards, float), episode_id=episode_id)


# ----- win rates and credits, by hand -----------------------------------------------------------------------


def test_win_rates_match_a_hand_computation_and_count_every_query():
    # returns: a = 6, b = 3, c = 6, d = 10; deterministic Bradley-Terry: win 1, tie 0.5, loss 0
    a, b, c, d = (trajectory(r, i) for i, r in enumerate([[1, 2, 3], [3], [2, 2, 2], [5, 5]]))
    rater, queue = make_rater("bt", temperature=0.0), ComparisonQueue()
    opponents = [b.as_segment(), c.as_segment(), d.as_segment()]
    assert win_rate(rater, a.as_segment(), opponents, RNG(0), queue) == pytest.approx((1 + 0.5 + 0) / 3)
    assert queue.comparisons_used == 3 and len(queue) == 0  # counted, not stored
    # a's first step (return 1) against the opponents' first steps: b 3, c 2, d 5 -> three losses
    assert prefix_win_rate(rater, trajectory([1], 7), [b, c, d], RNG(0), queue) == 0.0
    # a's first two steps (3) against b whole (3: it ended there), c's first two (4), d's first two (10)
    assert prefix_win_rate(rater, trajectory([1, 2], 8), [b, c, d], RNG(0), queue) == pytest.approx(0.5 / 3)
    assert queue.comparisons_used == 9
    assert win_rate(rater, a.as_segment(), [], RNG(0), queue) == 0.5 and queue.comparisons_used == 9
    assert len(head(d, 5)) == 2 and head(d, 1).true_return == 5


def test_credits_telescope_to_scale_times_the_win_rate():
    # uniform: 8 steps of a trajectory, scale 5; a prefix of 3 steps won 1/3, the whole trajectory 3/4
    first = credit_steps(5 * (1 / 3), 0.0, 3, last_is_end=False, spread="uniform")
    np.testing.assert_allclose(first, [5 / 9] * 3)
    rest = credit_steps(5 * 0.75, 5 / 3, 5, last_is_end=True, spread="uniform")
    np.testing.assert_allclose(rest, [(3.75 - 5 / 3) / 5] * 5)
    assert first.sum() + rest.sum() == pytest.approx(3.75)
    # terminal: nothing before the end, the whole target on the last step
    np.testing.assert_array_equal(credit_steps(2.0, 0.0, 3, last_is_end=False, spread="terminal"), [0, 0, 0])
    np.testing.assert_array_equal(credit_steps(2.0, 0.0, 3, last_is_end=True, spread="terminal"), [0, 0, 2.0])
    # discounted: equal parts whose discounted sum from the trajectory's start is the increment
    np.testing.assert_allclose(credit_steps(2.0, 0.0, 3, last_is_end=False, spread="discounted", gamma=0.5),
                               [2 / 1.75] * 3)
    later = credit_steps(3.0, 2.0, 2, last_is_end=True, spread="discounted", gamma=0.5, first_step=3)
    np.testing.assert_allclose(later, [1 / (0.125 + 0.0625)] * 2)
    assert later @ [0.5**3, 0.5**4] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="uniform, terminal, discounted"):
        credit_steps(1.0, 0.0, 1, last_is_end=True, spread="linear")


# ----- the rewards the learner stores ---------------------------------------------------------------------


class CountingEnv(gym.Env):
    """Episodes of ``length`` steps ending in a terminal state (or a time-limit truncation with ``truncate``);
    episode k (from 1) pays k per step whatever the action."""

    observation_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self, length: int = 5, truncate: bool = False) -> None:
        self.episode, self.t, self.length, self.truncate = 0, 0, length, truncate

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.episode, self.t = self.episode + 1, 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.t += 1
        end = self.t == self.length
        return np.zeros(1, np.float32), float(self.episode), end and not self.truncate, end and self.truncate, {}


def test_on_policy_buffer_holds_win_rate_credits_not_env_rewards():
    model = PPO("MlpPolicy", DummyVecEnv([CountingEnv]), n_steps=8, batch_size=8, n_epochs=1, seed=0)
    callback = SelfPlayRewardCallback(make_rater("bt", temperature=0.0), reward_scale=5.0, seed=0)
    model.learn(8, callback=callback)
    # episode 1 (steps 0-4): no opponent, win rate 0.5 -> 5 * 0.5 / 5 each. Episode 2 is 3 steps in when the
    # rollout ends: its prefix (return 6) beats episode 1's first 3 steps (3) -> 5 * 1 / 3 each.
    np.testing.assert_allclose(model.rollout_buffer.rewards[:, 0], [0.5] * 5 + [5 / 3] * 3, rtol=1e-6)
    assert callback.win_rates == [0.5] and callback.comparisons_used == 1
    # GAE was recomputed on the written rewards: the last step's return bootstraps on the value of step 8
    buffer = model.rollout_buffer
    np.testing.assert_allclose(buffer.returns, buffer.advantages + buffer.values, rtol=1e-5)


def test_on_policy_credits_continue_across_rollouts():
    model = PPO("MlpPolicy", DummyVecEnv([CountingEnv]), n_steps=8, batch_size=8, n_epochs=1, seed=0)
    callback = SelfPlayRewardCallback(make_rater("bt", temperature=0.0), reward_scale=5.0, seed=0)
    model.learn(16, callback=callback)
    # second rollout, steps 8-15: episode 2's last 2 steps (whole win rate 1, already credited 5 -> 0 each),
    # episode 3 (pays 3; beats episodes 1 and 2 -> 5 / 5 each), episode 4 one step in (its first step, 4,
    # beats 1, 2, 3 -> prefix win rate 1: 5 / 1)
    np.testing.assert_allclose(model.rollout_buffer.rewards[:, 0], [0, 0, 1, 1, 1, 1, 1, 5], rtol=1e-6, atol=1e-6)
    assert callback.win_rates == [0.5, 1.0, 1.0]


def test_unfinished_trajectories_of_every_env_are_credited_at_the_rollout_end():
    # env 0: episodes of 4 steps, the second ends exactly at the rollout's end; env 1: 5 steps, 3 into its second
    venv = DummyVecEnv([lambda: CountingEnv(4), lambda: CountingEnv(5)])
    model = PPO("MlpPolicy", venv, n_steps=8, batch_size=16, n_epochs=1, seed=0)
    callback = SelfPlayRewardCallback(make_rater("bt", temperature=0.0), reward_scale=4.0, seed=0)
    model.learn(16, callback=callback)
    rewards = model.rollout_buffer.rewards
    # finishing order: env 0 ep 1 (step 3, no opponent: 0.5), env 1 ep 1 (step 4; return 5 vs 4: wins), env 0 ep 2
    # (step 7; 8 vs 4 and vs env 1's first 4 steps, 4: wins both) -> env 0: [4*0.5/4]*4 + [4*1/4]*4
    np.testing.assert_allclose(rewards[:, 0], [0.5] * 4 + [1.0] * 4, rtol=1e-6)
    # env 1: its episode 1 (return 5) beat env 0's episode 1 (4) -> 4 * 1 / 5 each; its episode 2 (each env counts
    # its own episodes: pays 2), 3 steps in (return 6), against the first 3 steps of the three finished episodes:
    # 3 (win), 3 (win), 6 (tie) -> win rate 2.5 / 3 -> 4 * (2.5 / 3) / 3 each
    np.testing.assert_allclose(rewards[:, 1], [4 * 1.0 / 5] * 5 + [4 * (2.5 / 3) / 3] * 3, rtol=1e-6)
    assert callback.comparisons_used == 0 + 1 + 2 + 3


def test_discounted_spread_makes_each_trajectory_worth_its_win_rate_at_its_start():
    model = PPO("MlpPolicy", DummyVecEnv([CountingEnv]), n_steps=8, batch_size=8, n_epochs=1, gamma=0.5, seed=0)
    callback = SelfPlayRewardCallback(make_rater("bt", temperature=0.0), reward_scale=5.0, spread="discounted", seed=0)
    model.learn(8, callback=callback)
    # episode 1: 5 * 0.5 over 5 steps discounted by 0.5^t; episode 2's 3-step prefix wins: 5 * 1 over 3 steps
    expected = [2.5 / sum(0.5**k for k in range(5))] * 5 + [5.0 / sum(0.5**k for k in range(3))] * 3
    np.testing.assert_allclose(model.rollout_buffer.rewards[:, 0], expected, rtol=1e-6)


def test_discounted_credit_after_a_prefix_is_discounted_from_the_trajectory_start():
    # a judge who prefers whole 5-step episodes and dislikes prefixes: episode 2's 3-step prefix (rollout 1) wins
    # nothing, the whole of it (rollout 2, steps 3 and 4 of the episode) wins: its credit 5 is discounted from step 3
    judge = HumanRater(lambda a, b: 1 if len(a) == 5 else 0)
    model = PPO("MlpPolicy", DummyVecEnv([CountingEnv]), n_steps=8, batch_size=8, n_epochs=1, gamma=0.5, seed=0)
    callback = SelfPlayRewardCallback(judge, reward_scale=5.0, spread="discounted", seed=0)
    model.learn(16, callback=callback)
    np.testing.assert_allclose(model.rollout_buffer.rewards[:2, 0], [5.0 / (0.5**3 + 0.5**4)] * 2, rtol=1e-6)


def test_terminal_spread_on_policy_puts_each_win_rate_on_its_last_step():
    model = PPO("MlpPolicy", DummyVecEnv([CountingEnv]), n_steps=8, batch_size=8, n_epochs=1, seed=0)
    callback = SelfPlayRewardCallback(make_rater("bt", temperature=0.0), reward_scale=5.0, spread="terminal", seed=0)
    model.learn(16, callback=callback)
    # second rollout (steps 8-15): episode 2 ends at step 9 (beats 1), episode 3 at 14 (beats 1 and 2)
    np.testing.assert_allclose(model.rollout_buffer.rewards[:, 0], [0, 5.0, 0, 0, 0, 0, 5.0, 0])
    assert callback.comparisons_used == 3  # no prefix queries under the terminal spread


def test_a_time_limit_keeps_sb3_s_bootstrap_beside_the_spo_reward():
    class Check(BaseCallback):
        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            terminal_value = self.model.policy.predict_values(th.zeros((1, 1)))[0, 0].item()
            self.expected = [0.5] * 4 + [0.5 + self.model.gamma * terminal_value] + [5 / 3] * 3
            self.seen = self.model.rollout_buffer.rewards[:, 0].copy()

    model = PPO("MlpPolicy", DummyVecEnv([lambda: CountingEnv(truncate=True)]), n_steps=8, batch_size=8, n_epochs=1,
                seed=0)
    check = Check()
    spo = SelfPlayRewardCallback(make_rater("bt", temperature=0.0), reward_scale=5.0, seed=0)
    model.learn(8, callback=[spo, check])
    np.testing.assert_allclose(check.seen, check.expected, rtol=1e-5)


def test_a_new_learn_call_that_resets_the_env_starts_credits_afresh():
    model = PPO("MlpPolicy", DummyVecEnv([CountingEnv]), n_steps=8, batch_size=8, n_epochs=1, seed=0)
    callback = SelfPlayRewardCallback(make_rater("bt", temperature=0.0), reward_scale=5.0, seed=0)
    model.learn(8, callback=callback)  # ends 3 steps into episode 2, credited 5 (its prefix won)
    model.learn(8, callback=callback, reset_num_timesteps=True)  # resets: episode 2 is gone, episode 3 starts
    # episode 3 (pays 3) beats episode 1 -> 5 / 5 each; episode 4 three steps in beats 1 and 3 -> 5 / 3 each
    np.testing.assert_allclose(model.rollout_buffer.rewards[:, 0], [1.0] * 5 + [5 / 3] * 3, rtol=1e-6)


def test_the_reward_scale_defaults_to_the_time_limit_and_the_curve_to_every_few_steps(monkeypatch):
    import algos.spo

    monkeypatch.setattr(algos.spo, "CURVE_EVERY", 16)
    model = PPO("MlpPolicy", make_vec_env("Pendulum-v1", n_envs=1, seed=0), n_steps=8, batch_size=8, n_epochs=1, seed=0)
    callback = SelfPlayRewardCallback(make_rater("bt", temperature=0.0), seed=0)
    model.learn(40, callback=callback)
    assert callback.reward_scale == 200.0  # Pendulum-v1's time limit
    assert [steps for steps, _ in callback.comparison_curve] == [8, 16, 32, 40]


def test_circular_replay_buffer_slots_already_overwritten_are_left_alone():
    model = TD3("MlpPolicy", DummyVecEnv([CountingEnv]), learning_starts=1000, buffer_size=4, seed=0)
    model.learn(5, callback=SelfPlayRewardCallback(make_rater("bt", temperature=0.0), reward_scale=5.0, seed=0))
    # steps 0-4 went to slots 0, 1, 2, 3, 0: step 0's slot holds step 4 now and gets step 4's reward only
    np.testing.assert_allclose(model.replay_buffer.rewards[:, 0], [0.5, 0.5, 0.5, 0.5])


def test_off_policy_replay_buffer_gets_each_trajectory_s_rewards_where_it_was_stored():
    model = TD3("MlpPolicy", DummyVecEnv([CountingEnv]), learning_starts=1000, buffer_size=100, seed=0)
    callback = SelfPlayRewardCallback(make_rater("bt", temperature=0.0), reward_scale=5.0, spread="terminal", seed=0)
    model.learn(13, callback=callback)
    rewards = model.replay_buffer.rewards[:13, 0]
    # terminal spread: episode 1 ends with 5 * 0.5, episode 2 with 5 * 1 (beats 1); episode 3 unfinished: 0 so far
    np.testing.assert_allclose(rewards, [0, 0, 0, 0, 2.5, 0, 0, 0, 0, 5, 0, 0, 0])


def test_vec_normalize_off_policy_stores_the_replaced_reward():
    venv = VecNormalize(DummyVecEnv([CountingEnv]), norm_obs=False)
    model = TD3("MlpPolicy", venv, learning_starts=1000, buffer_size=100, seed=0)
    model.learn(10, callback=SelfPlayRewardCallback(make_rater("bt", temperature=0.0), reward_scale=5.0, seed=0))
    np.testing.assert_allclose(model.replay_buffer.rewards[:10, 0], [0.5] * 5 + [1.0] * 5)


# ----- SB3 contract: EvalCallback with VecNormalize, evaluate_policy, seeding ------------------------------


def _hopper_model(seed: int) -> PPO:
    env = VecNormalize(make_vec_env("Hopper-v4", n_envs=2, seed=seed, wrapper_class=RewardTermsInInfo))
    return PPO("MlpPolicy", env, n_steps=64, batch_size=64, n_epochs=1, seed=seed, policy_kwargs=dict(net_arch=[16]))


def test_spo_runs_with_vec_normalize_eval_callback_and_is_reproducible():
    results = []
    for _ in range(2):
        model = _hopper_model(3)
        eval_env = VecNormalize(make_vec_env("Hopper-v4", n_envs=1, seed=100), training=False)
        spo = SPO(model, rater="intransitive", seed=3)
        spo.learn(256, callback=EvalCallback(eval_env, eval_freq=64, n_eval_episodes=1, verbose=0))
        mean, _ = evaluate_policy(model, eval_env, n_eval_episodes=1)
        results.append((spo.comparisons_used, list(spo.callback.win_rates), model.policy.parameters_to_vector(), mean))
    assert results[0][0] == results[1][0] > 0 and results[0][1] == results[1][1]
    np.testing.assert_array_equal(results[0][2], results[1][2])
    # Monitor inside the envs still logs true (env) returns, not the zeros the learner stored
    assert any(info["r"] != 0 for info in model.ep_info_buffer)


def test_reward_terms_sum_to_the_reward_on_mujoco_and_pybullet():
    import pybullet_envs_gymnasium  # noqa: F401  registers the PyBullet envs

    for env_id, names in [("Hopper-v4", 3), ("HalfCheetah-v4", 3), ("HopperBulletEnv-v0", 5)]:
        env = RewardTermsInInfo(gym.make(env_id))
        env.reset(seed=0)
        env.action_space.seed(0)
        for _ in range(5):
            _, reward, *_, info = env.step(env.action_space.sample())
            terms = [info[name] for name in env.term_names]
            assert len(terms) == names and sum(terms) == pytest.approx(reward, rel=1e-4, abs=1e-5)
        env.close()


# ----- the reward-model baseline ---------------------------------------------------------------------------


def test_query_schedule_by_hand():
    np.testing.assert_array_equal(query_schedule(100, 4, 0.1), [10, 30, 30, 30])
    np.testing.assert_array_equal(query_schedule(11, 3, 0.1), [1, 5, 5])
    np.testing.assert_array_equal(query_schedule(7, 1, 0.1), [7])
    assert query_schedule(1234, 12, 0.1).sum() == 1234


def test_reward_model_baseline_stores_the_model_reward_and_spends_its_budget():
    env = DummyVecEnv([CountingEnv])
    model = PPO("MlpPolicy", env, n_steps=8, batch_size=8, n_epochs=1, seed=0)
    reward_model = BradleyTerryRewardModel(env.observation_space, env.action_space, seed=0)
    callback = PreferenceRewardCallback(
        make_rater("bt", temperature=0.0), reward_model, total_comparisons=20, query_interval=8, segment_length=2,
        seed=0,
    )
    model.learn(24, callback=callback)
    assert callback.comparisons_used == 20 and callback.rounds_done == 3
    np.testing.assert_array_equal(callback.schedule, [2, 9, 9])
    # the last rollout's stored rewards are r_hat(s, a) of its steps, not the env's 3s, 4s and 5s
    buffer = model.rollout_buffer
    # (after the update SB3 keeps observations and actions flattened to (n_steps * n_envs, ...))
    expected = reward_model.predict(buffer.observations, buffer.actions.clip(-1, 1))
    np.testing.assert_allclose(buffer.rewards[:, 0], expected, rtol=1e-5, atol=1e-6)


# ----- bad input --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--rater", "transitive"], "Unknown rater 'transitive'"),
        (["--rater", "intransitive", "--env", "Pendulum-v1"], "not a MuJoCo or PyBullet locomotion task"),
        (["--n-opponents", "0"], "--n-opponents must be an integer >= 1"),
        (["--flip-probability", "1.5", "--rater", "noisy"], "--flip-probability must be in [0, 1]"),
        (["--rater", "file"], "needs a person in the loop"),
        (["--rater", "nonmarkovian"], "needs --region-first KEY:LOW:HIGH"),
        (["--rater", "nonmarkovian", "--region-first", "x_position:a:inf", "--region-second", "x_position:0:1"],
         "--region-first takes KEY:LOW:HIGH"),
        (["--rater", "nonmarkovian", "--region-first", "x_position:2:1", "--region-second", "x_position:0:1"],
         "LOW <= HIGH"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_run_folder(tmp_path: Path, capsys, flags: list[str], message: str):
    argv = ["--algo", "ppo", "--env", "Hopper-v4", "-n", "64", "-f", str(tmp_path), "--no-progress"]
    env_given = "--env" in flags
    if env_given:
        argv = [a for i, a in enumerate(argv) if a != "--env" and (i == 0 or argv[i - 1] != "--env")]
    code = spo_main([*argv, *flags])
    error = capsys.readouterr().err.strip()
    assert code == 2 and message in error and "\n" not in error and "Traceback" not in error
    assert not any(tmp_path.rglob("run_inputs.json"))


def test_the_intransitive_rater_needs_three_terms():
    with pytest.raises(SPOError, match="at least 3 reward terms"):
        build_rater("intransitive", ("reward_forward", "reward_ctrl"))
    assert build_rater("intransitive", ("a", "b", "c")).terms_weights is None


def test_a_non_markovian_rater_reads_the_recorded_info_keys(tmp_path: Path):
    code = spo_main(["--algo", "ppo", "--env", "Hopper-v4", "-n", "128", "-f", str(tmp_path), "--no-progress",
                     "--eval-freq", "-1", "--final-eval-episodes", "1", "-params", "n_steps:64", "batch_size:64",
                     "n_epochs:1", "policy_kwargs:dict(net_arch=[16])", "--rater", "nonmarkovian",
                     "--region-first", "x_position:0.01:inf", "--region-second", "x_position:-inf:-0.01"])
    assert code == 0
    record = json.loads(next(tmp_path.rglob("run.json")).read_text())
    assert record["spo"]["region_first"][:2] == ["x_position", 0.01] and record["spo"]["comparisons_used"] > 0


def test_cli_run_records_comparisons(tmp_path: Path):
    code = spo_main(["--algo", "ppo", "--env", "Hopper-v4", "-n", "128", "-f", str(tmp_path), "--no-progress",
                     "--eval-freq", "-1", "--final-eval-episodes", "1", "-params", "n_steps:64", "batch_size:64",
                     "n_epochs:1", "policy_kwargs:dict(net_arch=[16])", "--rater", "noisy"])
    assert code == 0
    record = json.loads(next(tmp_path.rglob("run.json")).read_text())
    assert record["spo"]["rater"] == "noisy" and record["spo"]["comparisons_used"] > 0
    assert record["spo"]["comparison_curve"][-1] == [128, record["spo"]["comparisons_used"]]


@settings(max_examples=60, deadline=None)
@given(
    temperature=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5)),
    flip=st.floats(allow_nan=True, allow_infinity=True),
    n_opponents=st.one_of(st.integers(-3, 30), st.floats(allow_nan=True)),
    spread=st.sampled_from(["uniform", "terminal", "linear", ""]),
    scale=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
)
def test_any_option_values_are_accepted_or_refused_with_an_spo_error(temperature, flip, n_opponents, spread, scale):
    try:
        options = SPOOptions(rater="noisy", temperature=temperature, flip_probability=flip, n_opponents=n_opponents,
                             spread=spread, reward_scale=scale)
    except SPOError as error:
        assert str(error).startswith("--") and "\n" not in str(error)
        return
    assert options.n_opponents >= 1 and 0 <= options.flip_probability <= 1 and options.spread in SPREADS
    assert options.temperature >= 0 and (scale is None or scale > 0)


# ----- what the recorder and the reward terms hold ----------------------------------------------------------


def test_reward_terms_are_the_env_s_own_parts():
    import pybullet_envs_gymnasium  # noqa: F401  registers the PyBullet envs

    action = np.array([0.5, -1.0, 0.25])
    env = RewardTermsInInfo(gym.make("Hopper-v4"))
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step(action)
    assert info["reward_forward"] == pytest.approx(info["x_velocity"])  # forward weight 1
    assert info["reward_ctrl"] == pytest.approx(-1e-3 * np.sum(action**2))
    assert info["reward_survive"] == pytest.approx(1.0) and not terminated  # the healthy reward
    cheetah = RewardTermsInInfo(gym.make("HalfCheetah-v4"))
    cheetah.reset(seed=0)
    action = np.array([0.1, 0.2, 0.3, -0.4, 0.5, -0.6])
    _, reward, *_, info = cheetah.step(action)
    assert info["reward_forward"] == pytest.approx(info["reward_run"])
    assert info["reward_ctrl_back"] == pytest.approx(-0.1 * (0.01 + 0.04 + 0.09))
    assert info["reward_ctrl_front"] == pytest.approx(-0.1 * (0.16 + 0.25 + 0.36))
    bullet = RewardTermsInInfo(gym.make("HopperBulletEnv-v0"))
    bullet.reset(seed=0)
    _, reward, *_, info = bullet.step(bullet.action_space.sample())
    assert [info[name] for name in bullet.term_names] == [float(term) for term in bullet.unwrapped.rewards]
    with pytest.raises(ValueError, match="not a MuJoCo or PyBullet locomotion task"):
        RewardTermsInInfo(gym.make("Pendulum-v1"))


def test_the_recorder_keeps_raw_observations_env_actions_true_rewards_and_terms():
    venv = VecNormalize(make_vec_env("Hopper-v4", n_envs=1, seed=0, wrapper_class=RewardTermsInInfo))
    model = PPO("MlpPolicy", venv, n_steps=64, batch_size=64, n_epochs=1, seed=0, policy_kwargs=dict(net_arch=[8]))
    callback = SelfPlayRewardCallback(make_rater("bt", temperature=0.0), reward_terms=env_term_names(venv), seed=0)
    callback.queue = ComparisonQueue(recent_capacity=100)  # keep every finished trajectory to look at
    model.learn(256, callback=callback)
    trajectories = callback.queue.recent_trajectories()
    assert len(trajectories) >= 2 and all(t.terminated for t in trajectories)
    replay = gym.make("Hopper-v4")  # the same episodes again, from the recorded actions
    replay = RewardTermsInInfo(replay)
    first = trajectories[0]
    observation, _ = replay.reset(seed=0)
    for step in range(len(first)):
        np.testing.assert_allclose(first.observations[step], observation, rtol=1e-5, atol=1e-6)  # raw, not normalised
        observation, reward, terminated, _, info = replay.step(first.actions[step])
        np.testing.assert_allclose(first.rewards[step], [info[name] for name in replay.term_names], rtol=1e-5)
        assert first.rewards[step].sum() == pytest.approx(reward, rel=1e-5)
    assert terminated and first.reward_names == ("reward_forward", "reward_ctrl", "reward_survive")
    assert first.true_return == pytest.approx(sum(e["r"] for e in [model.ep_info_buffer[0]]), rel=1e-4)
    assert [t.episode_id for t in trajectories] == list(range(len(trajectories)))


def test_missing_or_inconsistent_reward_terms_are_named():
    from rl.preferences import SegmentError, TrajectoryRecorder

    recorder = TrajectoryRecorder(1, reward_terms=("reward_a", "reward_b"))
    recorder.start(np.zeros((1, 1)))
    with pytest.raises(SegmentError, match=r"no reward terms \['reward_b'\]"):
        recorder.record(np.zeros((1, 1)), np.array([1.0]), np.array([False]), [{"reward_a": 1.0}], np.zeros((1, 1)))
    with pytest.raises(SegmentError, match="do not sum to the reward 1.0"):
        recorder.record(np.zeros((1, 1)), np.array([1.0]), np.array([False]), [{"reward_a": 1.0, "reward_b": 0.5}],
                        np.zeros((1, 1)))


# ----- the reward-model baseline, more ----------------------------------------------------------------------


def _reward_learning_run(seed: int, algo: type = PPO, **kwargs):
    env = DummyVecEnv([CountingEnv])
    model = (algo("MlpPolicy", env, n_steps=8, batch_size=8, n_epochs=1, seed=seed) if algo is PPO
             else algo("MlpPolicy", env, learning_starts=1000, buffer_size=100, seed=seed))
    reward_model = BradleyTerryRewardModel(env.observation_space, env.action_space, seed=seed)
    callback = PreferenceRewardCallback(make_rater("bt", temperature=1.0), reward_model, total_comparisons=20,
                                        query_interval=8, segment_length=2, seed=seed, epochs=2, **kwargs)
    model.learn(24, callback=callback)
    return model, reward_model, callback


def test_reward_model_rounds_come_at_their_steps_and_runs_are_reproducible():
    model, reward_model, callback = _reward_learning_run(0)
    # round 0 when the first trajectory finishes (step 5), then at steps 8 and 16
    assert callback.comparison_curve[:3] == [(5, 2), (8, 11), (16, 20)]
    _, again, _ = _reward_learning_run(0)
    for a, b in zip(reward_model.members.parameters(), again.members.parameters()):
        assert th.equal(a, b)
    _, other, _ = _reward_learning_run(1)
    assert not all(th.equal(a, b) for a, b in zip(reward_model.members.parameters(), other.members.parameters()))


def test_off_policy_replay_buffer_is_relabelled_with_the_new_reward_model():
    model, reward_model, _ = _reward_learning_run(0, algo=TD3)
    buffer = model.replay_buffer
    actions = model.policy.unscale_action(buffer.actions[:24])
    expected = reward_model.predict(buffer.observations[:24], actions)
    # the last round (at the 16th step, before that step is stored) relabelled steps 0-14, which earlier models
    # had labelled; step 15 keeps the reward the model before that round gave; steps 16-23 came after the round
    np.testing.assert_allclose(buffer.rewards[:15], expected[:15], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(buffer.rewards[16:24], expected[16:24], rtol=1e-5, atol=1e-6)


def test_query_schedule_spreads_the_remainder_over_the_first_rounds():
    np.testing.assert_array_equal(query_schedule(12, 4, 0.1), [1, 4, 4, 3])
    np.testing.assert_array_equal(query_schedule(10, 2, 0.25), [2, 8])  # round(2.5) = 2
    assert query_schedule(12, 4, 0.1).dtype == np.int64


@pytest.mark.parametrize("bad", [{"total_comparisons": 0}, {"query_interval": 0}, {"segment_length": 0},
                                 {"initial_fraction": 1.5}, {"total_timesteps": 0}])
def test_reward_learning_refuses_bad_settings(bad):
    from rl.preferences.reward_learning import RewardLearningError

    settings_ = {"total_comparisons": 10, **bad}
    env = DummyVecEnv([CountingEnv])
    with pytest.raises(RewardLearningError):
        PreferenceRewardCallback(make_rater("bt"), BradleyTerryRewardModel(env.observation_space, env.action_space),
                                 **settings_)


def test_benchmark_gives_the_reward_model_spos_comparison_count_and_reports_the_pair(tmp_path):
    from algos.spo_benchmark import run

    table = run("tiny", "ppo", ["Pendulum-v1"], ["bt"], [0], 512, workers=1, results_root=str(tmp_path / "results"),
                logs_root=str(tmp_path / "logs"), eval_freq=256, phases=("spo", "rm"),
                extra_hyperparams={"n_steps": 256, "batch_size": 64, "n_epochs": 1,
                                   "policy_kwargs": {"net_arch": [8]}})
    runs = tmp_path / "results" / "tiny" / "runs"
    spo = json.loads((runs / "spo_ppo@bt" / "Pendulum-v1_seed0" / "run.json").read_text())
    rm = json.loads((runs / "rm_ppo@bt" / "Pendulum-v1_seed0" / "run.json").read_text())
    used = spo["spo"]["comparisons_used"]
    assert used > 0 and rm["rm"]["total_comparisons"] == rm["rm"]["comparisons_used"] == used
    row = next(line for line in table.read_text().splitlines() if line.startswith("| Pendulum-v1"))
    cells = [cell.strip() for cell in row.split("|")[1:-1]]
    difference = spo["final_evaluation"]["mean_reward"] - rm["final_evaluation"]["mean_reward"]
    assert cells[4] == f"{difference:+.1f}" and cells[5] == f"{used:,}" and cells[6] == "1"
    assert (tmp_path / "results" / "tiny" / "learning_curves.png").is_file()
