"""The Stable-Baselines3 contract (shared/reference/SB3_CONTRACT.md) for MOPPO.

Modelled on sb3-contrib's tests and tests/test_mdpo_contract.py: tiny networks, CPU, fixed seeds, episodes cut
at 30 steps, on deep-sea-treasure-v0 (discrete actions) and mo-hopper-2obj-v5 (continuous), both 2 objectives.
Each test asserts behaviour an SB3 user relies on: learn with callbacks and the progress bar, save / load
(with and without an env), get / set_parameters, seeding, MOVecNormalize and several envs, subprocesses,
logging, and MOPPO's constrained (target objective + log-barrier) mode.

Note on evaluation: :func:`rl.vector_reward.make_mo_vec_env` wraps each env in ``VectorRewardInInfo`` without
weights, so the scalar reward SB3 sees (Monitor, ``evaluate_policy``, ``EvalCallback``) is w . r with w = 1,
the sum of the objectives, not ``w . r`` with the model's preference vector. The tests pin that.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.callbacks import (
    BaseCallback,
    CheckpointCallback,
    EvalCallback,
    StopTrainingOnRewardThreshold,
)
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from algos.moppo import MOPPO
from algos.moppo_policies import MOActorCriticPolicy
from rl.envs import make_env
from rl.vector_reward import MOVecNormalize, VectorRewardInInfo, make_mo_vec_env
from tests.recording_logger import recording_logger

DST = "deep-sea-treasure-v0"
HOPPER = "mo-hopper-2obj-v5"
STEPS = 30  # max_episode_steps

KWARGS: dict[str, Any] = dict(n_steps=16, batch_size=8, n_epochs=2, policy_kwargs=dict(net_arch=[8]), device="cpu")


def make_env_(env_id: str = HOPPER, n_envs: int = 1, seed: int = 0, **kwargs: Any):
    return make_mo_vec_env(env_id, n_envs=n_envs, seed=seed, max_episode_steps=kwargs.pop("steps", STEPS), **kwargs)


def make_model(env: Any = None, **overrides: Any) -> MOPPO:
    return MOPPO("MlpPolicy", make_env_() if env is None else env, **{**KWARGS, "seed": 0, **overrides})


def assert_same(a: Any, b: Any, where: str = "") -> None:
    """Recursive exact equality of (nested) state dicts, tensors, arrays, lists and scalars."""
    if isinstance(a, th.Tensor):
        assert isinstance(b, th.Tensor) and a.shape == b.shape and th.equal(a, b), where
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: keys {set(a) ^ set(b)}"
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for index, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{index}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def clone_state(module: th.nn.Module) -> dict[str, th.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def states_equal(a: dict[str, th.Tensor], b: dict[str, th.Tensor]) -> bool:
    return set(a) == set(b) and all(th.equal(a[k], b[k]) for k in a)


def hopper_observations(n: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 11)).astype(np.float32)


def vector_returns_of(env: Any, model: MOPPO, n_episodes: int) -> tuple[list[float], list[np.ndarray]]:
    """evaluate_policy's episode returns and the raw vector returns of the same episodes (from the infos)."""
    vectors: list[np.ndarray] = []

    def grab(local_vars: dict[str, Any], _globals: dict[str, Any]) -> None:
        if local_vars["done"]:
            vectors.append(np.asarray(local_vars["info"]["episode_vector_return"], dtype=np.float64))

    rewards, _ = evaluate_policy(model, env, n_eval_episodes=n_episodes, return_episode_rewards=True, callback=grab)
    return rewards, vectors


# --------------------------------------------------------------------------------------------------
# 1-2. Construction and learn on discrete and continuous actions


@pytest.mark.parametrize("env_id", [DST, HOPPER])
def test_learn_with_progress_bar(env_id):
    model = make_model(make_env_(env_id), weights=[0.25, 0.75])
    assert isinstance(model.policy, MOActorCriticPolicy) and model.policy.value_net.out_features == 2
    assert model.learn(total_timesteps=64, progress_bar=True) is model
    assert model.num_timesteps == 64 and model._n_updates == 4 * model.n_epochs  # 4 rollouts of 16 steps
    assert model.rollout_buffer.rewards.shape == (16, 1, 2)  # one reward column per objective
    obs = model.env.reset()
    action, _ = model.predict(obs, deterministic=True)
    assert model.action_space.contains(action[0].astype(model.action_space.dtype))
    assert model.policy.predict_values(th.as_tensor(obs)).shape == (1, 2)


# --------------------------------------------------------------------------------------------------
# 3. Callbacks and evaluation


def test_eval_and_checkpoint_callbacks_without_normalisation(tmp_path):
    """EvalCallback's results are Monitor's episode returns: the sum of the objectives (w = 1)."""
    eval_env = make_env_(DST, seed=1, normalize=False)
    evaluation = EvalCallback(eval_env, eval_freq=32, n_eval_episodes=2, log_path=str(tmp_path / "eval"),
                              best_model_save_path=str(tmp_path / "best"))
    checkpoint = CheckpointCallback(save_freq=32, save_path=str(tmp_path / "ckpt"), name_prefix="m")
    model = make_model(make_env_(DST, normalize=False), weights=[0.25, 0.75])
    model.learn(total_timesteps=64, callback=[evaluation, checkpoint])

    results = np.load(tmp_path / "eval" / "evaluations.npz")
    assert list(results["timesteps"]) == [32, 64] and results["results"].shape == (2, 2)
    assert (results["ep_lengths"] <= STEPS).all()
    assert (tmp_path / "best" / "best_model.zip").is_file()
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["m_32_steps.zip", "m_64_steps.zip"]
    restored = MOPPO.load(tmp_path / "ckpt" / "m_64_steps.zip")
    assert restored.num_timesteps == 64 and restored.normalization is None  # nothing to normalise
    np.testing.assert_array_equal(restored.weights, [0.25, 0.75])

    # The last evaluation, repeated: deterministic policy and env, so the same returns, each the sum of the
    # episode's raw vector return (not the preference-weighted 0.25 r0 + 0.75 r1).
    eval_env.seed(1)  # EvalCallback's env was seeded once at construction; reseed for the same start
    rewards, vectors = vector_returns_of(eval_env, model, 2)
    assert len(vectors) == 2
    np.testing.assert_allclose(rewards, [v.sum() for v in vectors], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(rewards, results["results"][-1], rtol=1e-5, atol=1e-5)


def test_eval_callback_with_the_same_normalisation_and_vecnormalize_checkpoints(tmp_path):
    train_env = make_env_(HOPPER)
    eval_env = make_env_(HOPPER, seed=1)
    eval_env.training = False  # as for SB3's VecNormalize: the eval env only uses the synced statistics
    evaluation = EvalCallback(eval_env, eval_freq=32, n_eval_episodes=1, log_path=str(tmp_path / "eval"))
    checkpoint = CheckpointCallback(save_freq=32, save_path=str(tmp_path / "ckpt"), name_prefix="m",
                                    save_vecnormalize=True)
    model = make_model(train_env)
    model.learn(total_timesteps=64, callback=[evaluation, checkpoint])

    assert list(np.load(tmp_path / "eval" / "evaluations.npz")["timesteps"]) == [32, 64]
    # EvalCallback synced the observation statistics at step 64, the last step of training
    np.testing.assert_array_equal(eval_env.obs_rms.mean, train_env.obs_rms.mean)
    np.testing.assert_array_equal(eval_env.obs_rms.var, train_env.obs_rms.var)
    # the normaliser pickled by CheckpointCallback keeps the per-objective statistics
    restored = MOVecNormalize.load(str(tmp_path / "ckpt" / "m_vecnormalize_64_steps.pkl"), make_env_(HOPPER).venv)
    np.testing.assert_array_equal(restored.obj_rms.var, train_env.obj_rms.var)
    assert restored.obj_returns.shape == (1, 2)
    checkpointed = MOPPO.load(tmp_path / "ckpt" / "m_64_steps.zip")
    np.testing.assert_array_equal(checkpointed.normalization["obj_var"], train_env.obj_rms.var)

    # an eval env without the normaliser cannot be synced with a normalised training env
    mismatched = EvalCallback(make_env_(HOPPER, normalize=False), eval_freq=16, n_eval_episodes=1)
    with pytest.raises(AssertionError, match="VecEnvWrapper"):
        make_model().learn(total_timesteps=16, callback=mismatched)


def test_stop_training_on_reward_threshold():
    stop = StopTrainingOnRewardThreshold(reward_threshold=-1e9)  # any return reaches it
    evaluation = EvalCallback(make_env_(DST, seed=1, normalize=False), eval_freq=16, n_eval_episodes=1,
                              callback_on_new_best=stop)
    model = make_model(make_env_(DST, normalize=False))
    model.learn(total_timesteps=1_000, callback=evaluation)
    assert model.num_timesteps == 16  # stopped at the first evaluation


class StopAfter(BaseCallback):
    """Returns False on the ``n``-th step and records what SB3 callbacks read from ``locals``."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self.started = self.ended = False
        self.seen_total_timesteps: list[int] = []
        self.seen_dones: list[np.ndarray] = []
        self.finished: list[dict[str, Any]] = []
        self.vector_rewards: list[np.ndarray] = []

    def _on_training_start(self) -> None:
        self.started = True

    def _on_step(self) -> bool:
        self.seen_total_timesteps.append(self.locals["total_timesteps"])
        dones = np.asarray(self.locals["dones"])
        self.seen_dones.append(dones)
        infos = self.locals["infos"]
        self.vector_rewards.extend(info["vector_reward"] for info in infos)
        self.finished.extend(info for info, done in zip(infos, dones) if done)
        return self.n_calls < self.n

    def _on_training_end(self) -> None:
        self.ended = True


def test_custom_callback_stops_training_and_sees_locals():
    callback = StopAfter(12)
    model = make_model(make_env_(DST, n_envs=2, normalize=False, steps=5))
    model.learn(total_timesteps=500, callback=callback)
    assert model.num_timesteps == 24 < 500  # 12 steps of 2 envs
    assert callback.n_calls == 12 and callback.started and callback.ended
    assert set(callback.seen_total_timesteps) == {500}
    assert all(d.shape == (2,) and d.dtype == bool for d in callback.seen_dones)
    assert all(r.shape == (2,) for r in callback.vector_rewards)
    # episodes end within 5 steps; each end carries Monitor's scalar return (the sum) and the vector return
    assert len(callback.finished) >= 4
    for info in callback.finished:
        assert info["episode"]["l"] <= 5
        assert info["episode"]["r"] == pytest.approx(float(np.sum(info["episode_vector_return"])), abs=1e-5)


def test_evaluate_policy_returns_the_sum_of_the_objectives_with_several_normalised_envs():
    model = make_model(make_env_(HOPPER, n_envs=2), weights=[0.9, 0.1])
    model.learn(total_timesteps=32)
    eval_env = make_env_(HOPPER, n_envs=2, seed=3)
    eval_env.training = False
    eval_env.obs_rms = model.get_vec_normalize_env().obs_rms
    rewards, vectors = vector_returns_of(eval_env, model, 4)
    assert len(rewards) == len(vectors) == 4
    np.testing.assert_allclose(rewards, [v.sum() for v in vectors], rtol=1e-5, atol=1e-5)
    weighted = [0.9 * v[0] + 0.1 * v[1] for v in vectors]
    assert not np.allclose(rewards, weighted)  # not the preference-weighted return
    mean, std = evaluate_policy(model, eval_env, n_eval_episodes=4)
    assert np.isfinite(mean) and std >= 0


# --------------------------------------------------------------------------------------------------
# 4. Save / load


def test_save_load_round_trip_with_and_without_env(tmp_path):
    env = make_env_(HOPPER)
    model = make_model(env, weights=[0.25, 0.75], target_objective=1, beta=0.8, barrier_t=10.0,
                       barrier_floor=1e-4)
    model.learn(total_timesteps=64)
    assert len(model.policy.optimizer.state_dict()["state"]) > 0  # Adam moments exist
    params = model.get_parameters()
    assert set(params) == {"policy", "policy.optimizer"}
    obs = hopper_observations(16)
    actions, _ = model.predict(obs, deterministic=True)
    values = model.policy.predict_values(th.as_tensor(obs))
    raw = env.get_original_obs()[0]
    raw_action = model.predict_raw(raw)
    model.save(tmp_path / "model.zip")

    loaded = MOPPO.load(tmp_path / "model.zip")  # no env
    assert loaded.env is None and loaded.get_vec_normalize_env() is None
    assert_same(loaded.get_parameters(), params)
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], actions)
    th.testing.assert_close(loaded.policy.predict_values(th.as_tensor(obs)), values, rtol=0, atol=0)
    np.testing.assert_array_equal(loaded.weights, [0.25, 0.75])
    for name, expected in (("target_objective", 1), ("beta", 0.8), ("barrier_t", 10.0), ("barrier_floor", 1e-4),
                           ("n_objectives", 2), ("n_steps", 16), ("batch_size", 8), ("n_epochs", 2)):
        assert getattr(loaded, name) == expected, name
    assert_same(loaded.normalization, env.get_statistics())
    np.testing.assert_array_equal(loaded.predict_raw(raw), raw_action)  # the stored statistics normalise

    # learning continues after set_env; a fresh normaliser takes the stored statistics
    fresh = make_env_(HOPPER, seed=2)
    loaded.set_env(fresh)
    assert loaded.get_vec_normalize_env() is fresh
    np.testing.assert_array_equal(fresh.obj_rms.var, env.obj_rms.var)
    before = clone_state(loaded.policy)
    loaded.learn(total_timesteps=32, reset_num_timesteps=False)
    assert loaded.num_timesteps == 96
    after = loaded.policy.state_dict()
    for prefix in ("action_net.", "value_net.", "mlp_extractor.policy_net.", "mlp_extractor.value_net."):
        assert any(not th.equal(before[k], after[k]) for k in after if k.startswith(prefix)), prefix

    # loading with an env: a normalised VecEnv, or a bare mo-gymnasium env as the constructor accepts
    with_env = MOPPO.load(tmp_path / "model.zip", env=make_env_(HOPPER, seed=3))
    assert with_env.target_objective == 1
    with_env.learn(total_timesteps=32, reset_num_timesteps=False)
    assert with_env.num_timesteps == 96
    bare = make_env(HOPPER, disable_env_checker=True, max_episode_steps=STEPS)
    with_bare = MOPPO.load(tmp_path / "model.zip", env=bare)
    assert isinstance(with_bare.env.envs[0].env, VectorRewardInInfo)  # Monitor(VectorRewardInInfo(env))
    with_bare.learn(total_timesteps=16, reset_num_timesteps=False)
    assert with_bare.num_timesteps == 80 and np.isfinite(with_bare.rollout_buffer.rewards).all()


def test_set_env_accepts_a_bare_multi_objective_env():
    model = make_model(make_env_(DST, normalize=False))
    model.set_env(make_env(DST, disable_env_checker=True, max_episode_steps=STEPS))
    model.learn(total_timesteps=16)
    assert model.num_timesteps == 16 and model.rollout_buffer.rewards.shape == (16, 1, 2)


def test_policy_save_load(tmp_path):
    model = make_model()
    model.learn(total_timesteps=16)
    obs = hopper_observations(8)
    model.policy.save(tmp_path / "policy.pth")
    policy = MOActorCriticPolicy.load(tmp_path / "policy.pth")
    assert policy.n_objectives == 2 and policy.value_net.out_features == 2
    assert_same(policy.state_dict(), model.policy.state_dict())
    np.testing.assert_array_equal(policy.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    th.testing.assert_close(policy.predict_values(th.as_tensor(obs)), model.policy.predict_values(th.as_tensor(obs)))


# --------------------------------------------------------------------------------------------------
# 5. get_parameters / set_parameters


def test_set_parameters(tmp_path):
    source = make_model()
    source.learn(total_timesteps=32)
    params = source.get_parameters()
    target = make_model(seed=1)
    assert not states_equal(target.policy.state_dict(), source.policy.state_dict())
    target.set_parameters(params, exact_match=True)
    assert_same(target.get_parameters(), params)

    bad = {**params, "not_a_module": params["policy"]}
    with pytest.raises(ValueError, match="not_a_module"):
        target.set_parameters(bad)
    partial = {"policy": make_model(seed=2).policy.state_dict()}
    with pytest.raises(ValueError, match="policy.optimizer"):
        target.set_parameters(partial, exact_match=True)
    target.set_parameters(partial, exact_match=False)
    assert_same(target.policy.state_dict(), partial["policy"])
    assert_same(target.get_parameters()["policy.optimizer"], params["policy.optimizer"])  # left as it was

    source.save(tmp_path / "source.zip")
    target.set_parameters(tmp_path / "source.zip")
    assert_same(target.get_parameters(), params)


# --------------------------------------------------------------------------------------------------
# 6. Seeding


class ActionRecorder(BaseCallback):
    def __init__(self) -> None:
        super().__init__()
        self.actions: list[np.ndarray] = []

    def _on_step(self) -> bool:
        self.actions.append(np.array(self.locals["actions"]))
        return True


def _seeded_run(seed: int) -> tuple[dict[str, th.Tensor], list[dict[str, Any]], np.ndarray, list[np.ndarray]]:
    model = make_model(make_env_(HOPPER, seed=seed, steps=10), seed=seed, target_objective=0)
    logger, writer = recording_logger()
    model.set_logger(logger)
    recorder = ActionRecorder()
    model.learn(total_timesteps=48, callback=recorder)
    returns = [np.array([info["r"], info["l"]]) for info in model.ep_info_buffer]
    rows = [{k: v for k, v in row.items() if k.startswith(("train/", "rollout/"))} for row in writer.rows]
    return clone_state(model.policy), rows, np.stack(recorder.actions), returns


def test_same_seed_same_actions_losses_and_returns():
    params_a, rows_a, actions_a, returns_a = _seeded_run(7)
    params_b, rows_b, actions_b, returns_b = _seeded_run(7)
    params_c, _, actions_c, _ = _seeded_run(8)
    assert len(rows_a) == 3 and all("train/barrier_loss" in row and "train/policy_loss" in row for row in rows_a[1:])
    assert len(returns_a) >= 4  # 10-step episodes
    np.testing.assert_array_equal(actions_a, actions_b)
    assert_same(rows_a, rows_b)
    assert_same(returns_a, returns_b)
    assert_same(params_a, params_b)
    assert not np.array_equal(actions_a, actions_c) and not states_equal(params_a, params_c)


# --------------------------------------------------------------------------------------------------
# 7. MOVecNormalize, several envs, subprocesses


def test_two_envs_and_mo_vec_normalize():
    env = make_env_(HOPPER, n_envs=2)
    model = make_model(env)
    assert model.n_envs == 2 and model.get_vec_normalize_env() is env
    model.learn(total_timesteps=64)
    assert model.num_timesteps == 64 and model.rollout_buffer.rewards.shape == (16, 2, 2)
    assert env.obs_rms.count == pytest.approx(64 + 2 + 1e-4)  # 32 steps and the reset, 2 envs each
    assert env.obj_rms.count == pytest.approx(64 + 1e-4)  # one discounted return per env and step
    np.testing.assert_allclose(model.objective_scale(), np.sqrt(env.obj_rms.var + env.epsilon))
    # the rollout holds the normalised vectors: each column is divided by its own return std
    assert np.abs(model.rollout_buffer.rewards).max() <= env.clip_reward
    assert make_model(make_env_(HOPPER, normalize=False)).get_vec_normalize_env() is None


def test_subproc_vec_env_gives_the_same_rollout_as_dummy():
    """SB3 starts the workers with forkserver: each registers mo-gymnasium's ids itself."""
    buffers = {}
    for kind in ("dummy", "subproc"):
        env = make_env_(DST, n_envs=2, vec_env_class=kind)
        try:
            assert isinstance(env.venv, SubprocVecEnv if kind == "subproc" else DummyVecEnv)
            model = make_model(env)
            model.learn(total_timesteps=64)
            assert model.num_timesteps == 64
            buffers[kind] = (model.rollout_buffer.rewards.copy(), model.rollout_buffer.actions.copy())
            if kind == "subproc":
                env.training = False
                mean, _ = evaluate_policy(model, env, n_eval_episodes=2)
                assert np.isfinite(mean)
        finally:
            env.close()
    assert_same(buffers["subproc"], buffers["dummy"])


# --------------------------------------------------------------------------------------------------
# 8. Logging and the constrained mode


def test_tensorboard_events_file(tmp_path):
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    model = make_model(tensorboard_log=str(tmp_path), target_objective=1)
    model.learn(total_timesteps=32, tb_log_name="run")
    events = list(tmp_path.glob("run_1/events.out.tfevents.*"))
    assert len(events) == 1 and events[0].stat().st_size > 0
    tags = {value.tag for event in EventFileLoader(str(events[0])).Load() for value in event.summary.value}
    assert {"train/policy_loss", "train/barrier_loss", "train/value_loss"} <= tags


def _train_rows(**overrides: Any) -> list[dict[str, Any]]:
    model = make_model(**overrides)
    logger, writer = recording_logger()
    model.set_logger(logger)
    model.learn(total_timesteps=48)
    return [row for row in writer.rows if "train/policy_loss" in row]


def test_constrained_mode_trains_with_a_non_zero_barrier_and_the_preference_mode_without():
    constrained = _train_rows(target_objective=0)
    assert len(constrained) == 2  # the updates after the 2nd and 3rd rollouts are dumped
    for row in constrained:
        assert np.isfinite(row["train/barrier_loss"]) and row["train/barrier_loss"] != 0.0
        assert all(np.isfinite(row[k]) for k in ("train/policy_loss", "train/value_loss", "train/approx_kl"))
    preference = _train_rows(weights=[0.5, 0.5])
    assert [row["train/barrier_loss"] for row in preference] == [0.0, 0.0]


def test_the_barrier_moves_the_actor_and_not_the_critic():
    """One update on the same rollout with the barrier (t = 20) and without it (t = 1e12: weight ~0).

    Without gradient clipping (which couples all parameters through the global norm) only the actor differs:
    the barrier is part of the policy loss and the critic's update is untouched by it.
    """

    def updated(barrier_t: float) -> dict[str, th.Tensor]:
        model = make_model(target_objective=0, barrier_t=barrier_t, max_grad_norm=1e9)
        return clone_state(model.learn(total_timesteps=16).policy)

    with_barrier, without = updated(20.0), updated(1e12)
    for key in with_barrier:
        same = th.equal(with_barrier[key], without[key])
        assert same == key.startswith(("value_net.", "mlp_extractor.value_net.")), key
