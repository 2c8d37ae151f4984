"""SubPO: returns-to-go, baseline, update direction, modular reward, save/load, seeding, learning, CLI, picture."""

import json
import re

import gymnasium as gym
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


def test_returns_to_go_are_summed_in_float64():
    rewards = np.array([[1e8], [1.0], [1.0]], dtype=np.float32)  # 1e8 + 2 is not a float32
    returns = returns_to_go(rewards, np.array([[True], [False], [False]]))
    assert returns.dtype == np.float64
    np.testing.assert_array_equal(returns[:, 0], [1e8 + 2, 2.0, 1.0])


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


def test_logged_batch_returns_are_the_batchs_F_of_tau():
    """train/batch_return_mean and _max are F(tau) of the rollout's episodes (Monitor's episode returns, which sum
    the marginal gains), not entries of the shuffled batch."""
    from stable_baselines3.common.env_util import make_vec_env

    from tests.recording_logger import recording_logger

    model = _model(env=make_vec_env(_small_env, n_envs=2, seed=0))
    logger, writer = recording_logger()
    model.set_logger(logger)
    model.learn(model.n_steps * model.n_envs)
    logger.dump()  # SB3 dumps before train(): the update's own records are still pending
    f_of_tau = [info["r"] for info in model.ep_info_buffer]
    assert len(f_of_tau) == 8
    logged = next(row for row in writer.rows if "train/batch_return_mean" in row)
    assert logged["train/batch_return_mean"] == pytest.approx(np.mean(f_of_tau), abs=1e-5)
    assert logged["train/batch_return_max"] == pytest.approx(max(f_of_tau), abs=1e-5)


def test_one_update_raises_the_log_prob_of_the_higher_advantage_action():
    model = _model(episodes_per_update=2, episode_length=1, learning_rate=1e-3)  # a 2-step buffer
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
    assert info["F"] == pytest.approx(5) and info["visited"] == 2  # the env's own info is kept
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


def test_the_zip_holds_no_set_function_start_observation_or_reward_scales(tmp_path):
    """The env's F (cached for the modular reward), the last start observation and the reward scales are rebuilt
    from the env after loading; none of them is saved."""
    import zipfile

    model = _model(reward="modular", episodes_per_update=2)
    model.learn(model.n_steps)
    assert model._coverage is not None and model._rollout_start_obs is not None
    model._reward_scales = [1.0]
    model.save(tmp_path / "subpo.zip")
    with zipfile.ZipFile(tmp_path / "subpo.zip") as archive:
        data = json.loads(archive.read("data"))
    assert "policy_class" in data
    assert not {"_coverage", "_rollout_start_obs", "_reward_scales"} & set(data)


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
    picture = record["coverage_picture"]  # the covered area of one sampled trajectory, with its F(tau)
    assert (tmp_path / "subpo" / "Coverage-GP-History-v0_1" / picture["file"]).is_file()
    assert 0.0 < picture["F"] <= CoverageGridEnv("gp", grid=(6, 6), horizon=10).F.value(range(36)) + 1e-9


class _Recorder(gym.Wrapper):
    """Records the seeds of the resets and every observation of the episode."""

    def __init__(self, env):
        super().__init__(env)
        self.seeds, self.observations = [], []

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self.seeds.append(kwargs.get("seed"))
        self.observations = [obs]
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.observations.append(obs)
        return obs, reward, terminated, truncated, info


def test_the_coverage_picture_is_one_seeded_sampled_episode_with_its_F_of_tau(tmp_path, monkeypatch):
    """write_run_artifacts runs one whole episode on the eval env's first env, seeded with the run's seed, acting on
    observations normalised as in training and sampling its actions; it saves the env's last frame (row 0 at the
    bottom) 500 pixels wide, titled with F of the visited states, which it returns; the render mode is put back."""
    import matplotlib.figure
    import matplotlib.image
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor, VecNormalize

    def grid(render_mode=None):  # 4 x 6 cells: the frame is 32 x 48 pixels
        return CoverageGridEnv("bimodal", grid=(4, 6), horizon=10, observation="history", render_mode=render_mode)

    train_env = VecNormalize(make_vec_env(grid, n_envs=1, seed=0), norm_reward=False)
    model = _model(env=train_env, seed=7)
    train_env.obs_rms.mean[:], train_env.obs_rms.var[:] = 1.0, 4.0
    recorder = _Recorder(grid("rgb_array"))
    seen, saved = [], []
    predict, savefig = model.predict, matplotlib.figure.Figure.savefig

    def recording_predict(obs, **kwargs):
        seen.append((np.array(obs), kwargs))
        return predict(obs, **kwargs)

    def recording_savefig(figure, *args, **kwargs):
        axis = figure.axes[0]
        saved.append((axis.get_title(), axis.images[0].origin, np.array(axis.images[0].get_array())))
        return savefig(figure, *args, **kwargs)

    monkeypatch.setattr(model, "predict", recording_predict)
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", recording_savefig)
    result = model.write_run_artifacts(str(tmp_path), VecMonitor(DummyVecEnv([lambda: recorder])))
    base = recorder.unwrapped
    assert recorder.seeds == [7] and len(recorder.observations) == 10  # s_0 and the horizon's 9 steps
    value = base.F.value([base.F.index(int(obs[0]), int(obs[1])) for obs in recorder.observations])
    assert result == {"coverage_picture": {"file": "coverage.png", "F": pytest.approx(value)}}
    assert base.render_mode == "rgb_array"
    assert len(seen) == 9
    for (obs, kwargs), raw in zip(seen, recorder.observations):
        np.testing.assert_allclose(obs, (raw - 1.0) / np.sqrt(4.0 + 1e-8), rtol=1e-5, atol=1e-6)
        assert not kwargs.get("deterministic", False)
    [(title, origin, frame)] = saved
    assert title == f"one sampled trajectory: F(tau) = {value:.1f}" and origin == "lower"
    np.testing.assert_array_equal(frame, base.render())
    assert matplotlib.image.imread(tmp_path / "coverage.png").shape[:2] == (333, 500)  # 5 x 3.33 inches, 100 dpi


def test_the_modular_reward_refuses_normalised_observations():
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    model = _model(env=VecNormalize(make_vec_env(_small_env, n_envs=1, seed=0)), reward="modular")
    with pytest.raises(ValueError, match="^reward='modular' reads the cell from the observation: turn off obs norm"):
        model.learn(model.n_steps)


class _NoSetFunctionEnv(gym.Env):
    """Renders, but has no set function F: no coverage picture."""

    render_mode = "rgb_array"

    def __init__(self):
        self.observation_space, self.action_space = _small_env().observation_space, gym.spaces.Discrete(5)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(self.observation_space.shape, dtype=np.float32), {}

    def step(self, action):
        return np.zeros(self.observation_space.shape, dtype=np.float32), 0.0, False, True, {}

    def render(self):
        return np.zeros((8, 8, 3), dtype=np.uint8)


def test_no_coverage_picture_for_an_eval_env_without_a_set_function(tmp_path):
    from stable_baselines3.common.vec_env import DummyVecEnv

    assert _model().write_run_artifacts(str(tmp_path), DummyVecEnv([_NoSetFunctionEnv])) == {}
    assert not list(tmp_path.iterdir())


# --- the continuous (actor-critic) form on MuJoCo Ant coverage ---
def _ant_model(seed=0, n_envs=2, **kwargs):
    from stable_baselines3.common.env_util import make_vec_env

    from envs.ant_coverage import AntCoverageEnv

    env = make_vec_env(AntCoverageEnv, n_envs=n_envs, env_kwargs={"max_steps": 16})
    kwargs = {"episodes_per_update": n_envs, "learning_rate": 1e-2, "seed": seed, **kwargs}
    return SubPO("MlpPolicy", env, **kwargs)


def test_box_actions_default_to_the_actor_critic_form_and_learn():
    from algos.subpo_policies import SubPOActorCriticPolicy

    model = _ant_model()
    assert model.baseline == "critic" and isinstance(model.policy, SubPOActorCriticPolicy)
    assert (model.n_steps, model.gamma, model.gae_lambda) == (16, 0.99, 0.95)
    assert th.exp(model.policy.log_std).detach().numpy() == pytest.approx(np.exp(0.1))  # authors' init
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(2 * 2 * 16)
    assert model._n_updates == 2
    assert any(not th.equal(a, b) for a, b in zip(before, model.policy.parameters()))
    buffer = model.rollout_buffer  # GAE advantages on the marginal gains, returns = advantages + values
    np.testing.assert_allclose(buffer.returns, buffer.advantages + buffer.values, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"^baseline='time_step' needs a Discrete action space, got Box\(.+\); "
                                         r"use baseline='critic'$"):
        _ant_model(baseline="time_step")


def test_actor_critic_save_load_predict_and_evaluate(tmp_path):
    from envs.ant_coverage import AntCoverageEnv

    model = _ant_model()
    model.learn(2 * 16)
    model.save(tmp_path / "subpo_ant.zip")
    loaded = SubPO.load(tmp_path / "subpo_ant.zip")
    assert loaded.baseline == "critic" and loaded.gae_lambda == 0.95
    for a, b in zip(model.policy.state_dict().values(), loaded.policy.state_dict().values()):
        assert th.equal(a, b)
    obs = np.stack([AntCoverageEnv().reset(seed=s)[0] for s in range(3)])
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
    mean, _ = evaluate_policy(loaded, AntCoverageEnv(max_steps=8), n_eval_episodes=2, warn=False)
    assert mean >= 2.5  # at least F({s_0}) / 10
    loaded.set_env(model.get_env())
    loaded.learn(2 * 16, reset_num_timesteps=False)
    assert loaded.num_timesteps == 2 * 2 * 16


def test_actor_critic_same_seed_same_parameters():
    runs = []
    for _ in range(2):
        model = _ant_model(seed=5)
        model.learn(2 * 2 * 16)
        runs.append([p.detach().clone() for p in model.policy.parameters()])
    assert all(th.equal(a, b) for a, b in zip(*runs))


def test_modular_reward_on_the_box_path_is_F_of_the_new_state_alone():
    from envs.ant_coverage import AntCoverageEnv

    model = _ant_model(n_envs=1, reward="modular", gamma=0.9, learning_rate=0.0)  # critic unchanged by learn
    model.learn(16)
    actions = model.rollout_buffer.actions.reshape(16, 8)  # one env: the flattened buffer is in time order
    rewards = model.rollout_buffer.rewards.reshape(16)
    env = AntCoverageEnv(max_steps=16)
    _, info = env.reset(seed=0)  # the model's seed 0 seeds env 0's first reset
    expected = [env.F.value([info["cell"]]) / 10]
    for t in range(16):
        obs, _, terminated, truncated, info = env.step(np.clip(actions[t], -1, 1))
        expected[t] += env.F.value([info["cell"]]) / 10
        expected.append(0.0)
        if terminated or truncated:
            break
    last = t  # a truncation adds gamma * V(s_H) to its reward; a termination adds nothing
    np.testing.assert_allclose(rewards[:last], expected[:last], rtol=1e-6)
    assert rewards[:last].max() <= 5.0 + 1e-6 and 2.5 - 1e-6 <= rewards[1:last].min()  # 25 cells / 10
    if truncated:
        with th.no_grad():
            value = model.policy.predict_values(model.policy.obs_to_tensor(obs)[0]).item()
        assert rewards[last] == pytest.approx(expected[last] + 0.9 * value, abs=1e-5)


def test_critic_option_on_discrete_actions():
    from algos.subpo_policies import SubPOActorCriticPolicy

    model = _model(baseline="critic")
    assert isinstance(model.policy, SubPOActorCriticPolicy)
    model.learn(2 * model.n_steps)
    assert model._n_updates == 2
    with pytest.raises(ValueError, match="baseline"):
        _model(baseline="value")


@pytest.mark.parametrize("policy, baseline", [("SubPOPolicy", "critic"), ("SubPOActorCriticPolicy", "time_step")])
def test_a_policy_class_that_does_not_fit_the_baseline_is_refused_naming_both(policy, baseline):
    import algos.subpo_policies

    message = (f"baseline={baseline!r} does not fit the policy {policy}: pass 'MlpPolicy', or SubPOActorCriticPolicy "
               "for 'critic', SubPOPolicy for 'time_step'")
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        SubPO(getattr(algos.subpo_policies, policy), _small_env(), baseline=baseline, episodes_per_update=2)


def test_defaults_are_the_authors_grid_settings_and_their_critic_form():
    """REINFORCE on the grid: Adam 1e-3, 500 undiscounted episodes of horizon - 1 steps per update, no entropy
    bonus, no clip, no critic; the critic form takes the authors' gamma 0.99, lambda 0.95 and vf_coef 1."""
    from algos.subpo_policies import SubPOActorCriticPolicy, SubPOPolicy

    model = SubPO("MlpPolicy", _small_env())
    assert isinstance(model.policy, SubPOPolicy) and model.baseline == "time_step" and model.reward == "submodular"
    assert (model.learning_rate, model.policy.optimizer.param_groups[0]["lr"]) == (1e-3, 1e-3)
    assert (model.episodes_per_update, model.episode_length, model.n_steps) == (500, 9, 4500)
    assert (model.ent_coef, model.max_grad_norm, model.gamma, model.gae_lambda, model.vf_coef) == (
        0.0, float("inf"), 1.0, 1.0, 0.0)
    assert (model._stats_window_size, model.verbose, model.seed, model.tensorboard_log) == (100, 0, None, None)
    critic = SubPO("MlpPolicy", _small_env(), baseline="critic")
    assert isinstance(critic.policy, SubPOActorCriticPolicy)
    assert (critic.gamma, critic.gae_lambda, critic.vf_coef, critic.ent_coef) == (0.99, 0.95, 1.0, 0.0)


# Settings and envs SubPO cannot learn from: refused in the constructor (the runner makes a ValueError one line).


def test_one_episode_per_update_with_the_batch_mean_baseline_is_refused():
    """b_t is the mean of G_t over the update's episodes: with one episode b_t = G_t and every advantage is zero."""
    returns = np.array([[3.0], [2.0], [0.5]])
    assert not (returns - time_step_baseline(returns, np.array([[0], [1], [2]]))).any()
    message = ("episodes_per_update must be >= 2 with baseline='time_step': the baseline is the mean return-to-go "
               "over the update's episodes, so with one episode every advantage is zero and nothing is learned")
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        _model(episodes_per_update=1)


def test_envs_of_different_horizons_are_refused_without_an_episode_length():
    from stable_baselines3.common.vec_env import DummyVecEnv

    def grid(horizon):
        return lambda: CoverageGridEnv("bimodal", grid=(6, 6), horizon=horizon)

    with pytest.raises(ValueError, match=re.escape("envs have different horizons [10, 12]; pass episode_length")):
        _model(DummyVecEnv([grid(10), grid(12)]))
    assert _model(DummyVecEnv([grid(10), grid(12)]), episode_length=9).n_steps == 4 * 9


def test_one_episode_per_update_is_accepted_where_the_batch_has_two_or_a_critic_baselines_it():
    from stable_baselines3.common.env_util import make_vec_env

    two_envs = make_vec_env(_small_env, n_envs=2, seed=0)
    assert _model(two_envs, episodes_per_update=1).n_steps == 9  # one episode in each of the two envs
    assert _model(episodes_per_update=1, baseline="critic").baseline == "critic"


@pytest.mark.parametrize("kwargs, message", [
    ({"reward": "additive"}, "reward must be 'submodular' or 'modular', got 'additive'"),
    ({"episodes_per_update": 0}, "episodes_per_update must be >= 1, got 0"),
    ({"episode_length": 0}, "episode_length must be >= 1 or None, got 0"),
    ({"baseline": "value"}, "baseline must be 'time_step', 'critic' or None (by action space), got 'value'"),
])
def test_a_bad_setting_is_refused_naming_it(kwargs, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        SubPO("MlpPolicy", _small_env(), **kwargs)


def test_the_smallest_episode_length_is_accepted_and_sets_the_rollout():
    assert _model(episodes_per_update=2, episode_length=1).n_steps == 2


def test_every_setting_reaches_sb3(tmp_path, requested_devices):
    model = _model(tensorboard_log=str(tmp_path), stats_window_size=7, verbose=2, max_grad_norm=0.5, device="cpu")
    assert (model.tensorboard_log, model._stats_window_size, model.verbose) == (str(tmp_path), 7, 2)
    assert model.max_grad_norm == 0.5 and requested_devices == ["cpu"]


def test_an_action_space_other_than_discrete_or_box_is_refused_by_sb3():
    class MultiDiscreteCoverage(gym.Wrapper):
        action_space = gym.spaces.MultiDiscrete([5, 5])

    with pytest.raises(AssertionError, match="only supports"):
        SubPO("MlpPolicy", MultiDiscreteCoverage(_small_env()))


class _HorizonOnlyEnv(gym.Env):
    """An episodic env with a horizon but no set function: not SubPO's interface."""

    observation_space = gym.spaces.Box(0.0, 1.0, (2,), dtype=np.float32)
    action_space = gym.spaces.Discrete(5)
    horizon = 10

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, dtype=np.float32), {}

    def step(self, action):
        return np.zeros(2, dtype=np.float32), 0.0, False, False, {}


@pytest.mark.parametrize("env, named, missing", [
    ("CartPole-v1", "CartPole-v1", "F or horizon"),
    ("Pendulum-v1", "Pendulum-v1", "F or horizon"),
], ids=["discrete", "box"])
def test_an_env_without_the_submodular_interface_is_refused_naming_the_tasks_that_have_it(env, named, missing):
    with pytest.raises(ValueError) as error:
        SubPO("MlpPolicy", env)
    message = str(error.value)
    assert "\n" not in message and f"{named} has no {missing}" in message
    assert "Tasks that do: Coverage-Constant-v0, Coverage-Constant-History-v0, Coverage-Bimodal-v0, " in message
    for task in ("Coverage-Constant-v0", "Coverage-GP-History-v0", "ExperimentDesign-v0", "ItemCollection-History-v0",
                 "AntCoverage-v0"):
        assert task in message


def test_an_env_with_a_horizon_but_no_set_function_is_refused():
    with pytest.raises(ValueError, match="; this env has no F. Tasks that do: Coverage-Constant-v0"):  # no spec
        SubPO("MlpPolicy", _HorizonOnlyEnv())
