"""The Stable-Baselines3 contract (shared/reference/SB3_CONTRACT.md) for both MDPO classes.

Modelled on sb3-contrib's own tests: short runs, tiny networks, CPU, fixed seeds. Each test asserts
behaviour a user of PPO / SAC relies on: learn with callbacks and the progress bar, save / load,
get / set_parameters, seeding, VecNormalize and several envs, logging, and MDPO's own extra parts
(the on-policy value optimizer, the off-policy frozen old actor, the step-size schedule).
"""

from __future__ import annotations

import csv
import multiprocessing as mp
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.callbacks import (
    BaseCallback,
    CheckpointCallback,
    EvalCallback,
    StopTrainingOnRewardThreshold,
)
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import SubprocVecEnv, VecNormalize

from algos.mdpo import MDPO, OffPolicyMDPO, mirror_descent_step_size
from algos.mdpo_policies import MDPOActorCriticPolicy, MDPOSACPolicy
from tests.recording_logger import recording_logger

ENV_ID = "Pendulum-v1"

# Tiny settings so that each run takes a fraction of a second.
KWARGS: dict[type, dict[str, Any]] = {
    MDPO: dict(
        n_steps=64,
        sgd_steps=2,
        vf_epochs=2,
        vf_batch_size=32,
        policy_kwargs=dict(net_arch=dict(pi=[16], vf=[16])),
        device="cpu",
    ),
    OffPolicyMDPO: dict(
        learning_starts=32,
        batch_size=32,
        buffer_size=1_000,
        old_policy_update_interval=50,
        policy_kwargs=dict(net_arch=[16, 16]),
        device="cpu",
    ),
}
ALGOS = [MDPO, OffPolicyMDPO]
ALGO_IDS = ["on_policy", "off_policy"]


def make_model(cls: type, env: Any = ENV_ID, **overrides: Any):
    return cls("MlpPolicy", env, **{**KWARGS[cls], **overrides})


def assert_same(a: Any, b: Any, where: str = "") -> None:
    """Recursive exact equality of (nested) state dicts, tensors, lists and scalars."""
    if isinstance(a, th.Tensor):
        assert isinstance(b, th.Tensor), where
        assert a.shape == b.shape and th.equal(a, b), where
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


def states_equal(a: dict[str, th.Tensor], b: dict[str, th.Tensor]) -> bool:
    return set(a) == set(b) and all(th.equal(a[k], b[k]) for k in a)


def clone_state(module: th.nn.Module) -> dict[str, th.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def observations(n: int = 8, seed: int = 0) -> np.ndarray:
    space = gym.make(ENV_ID).observation_space
    space.seed(seed)
    return np.stack([space.sample() for _ in range(n)])


# --------------------------------------------------------------------------------------------------
# 1-2. Construction, learn, action spaces


@pytest.mark.parametrize("cls", ALGOS, ids=ALGO_IDS)
def test_learn_box_with_progress_bar(cls):
    model = make_model(cls, seed=0)
    assert isinstance(model.policy, MDPOActorCriticPolicy if cls is MDPO else MDPOSACPolicy)
    returned = model.learn(total_timesteps=192, progress_bar=True)
    assert returned is model
    assert model.num_timesteps == 192
    assert model._n_updates > 0
    action, _ = model.predict(observations(1)[0], deterministic=True)
    assert model.action_space.contains(action.astype(np.float32))


def test_on_policy_learns_discrete():
    model = make_model(MDPO, env="CartPole-v1", seed=0)
    assert isinstance(model.action_space, gym.spaces.Discrete)
    assert model.learn(total_timesteps=128, progress_bar=True) is model
    assert model.num_timesteps == 128 and model._n_updates == 2 * model.sgd_steps
    obs = np.zeros((5, 4), dtype=np.float32)
    actions, _ = model.predict(obs, deterministic=True)
    assert actions.shape == (5,) and all(model.action_space.contains(int(a)) for a in actions)


def test_off_policy_rejects_discrete_actions():
    with pytest.raises((AssertionError, ValueError)):
        OffPolicyMDPO("MlpPolicy", "CartPole-v1", **KWARGS[OffPolicyMDPO])


# --------------------------------------------------------------------------------------------------
# 3. Callbacks


@pytest.mark.parametrize("cls", ALGOS, ids=ALGO_IDS)
def test_eval_and_checkpoint_callbacks(cls, tmp_path):
    eval_env = make_vec_env(ENV_ID, n_envs=1, seed=1)
    eval_callback = EvalCallback(
        eval_env,
        eval_freq=64,
        n_eval_episodes=1,
        log_path=str(tmp_path / "eval"),
        best_model_save_path=str(tmp_path / "best"),
        verbose=0,
    )
    checkpoint = CheckpointCallback(
        save_freq=64,
        save_path=str(tmp_path / "ckpt"),
        name_prefix="m",
        save_replay_buffer=True,
    )
    model = make_model(cls, seed=0)
    model.learn(total_timesteps=128, callback=[eval_callback, checkpoint])

    evaluations = np.load(tmp_path / "eval" / "evaluations.npz")
    assert list(evaluations["timesteps"]) == [64, 128]
    assert evaluations["results"].shape == (2, 1)
    assert (tmp_path / "best" / "best_model.zip").is_file()
    saved = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    expected = ["m_128_steps.zip", "m_64_steps.zip"]
    if cls is OffPolicyMDPO:
        expected += ["m_replay_buffer_128_steps.pkl", "m_replay_buffer_64_steps.pkl"]
    assert saved == sorted(expected)
    restored = cls.load(tmp_path / "ckpt" / "m_128_steps.zip")
    assert restored.num_timesteps == 128  # saved mid-rollout, before that step's update
    assert restored.action_space.contains(restored.predict(observations(1)[0], deterministic=True)[0])


@pytest.mark.parametrize("cls", ALGOS, ids=ALGO_IDS)
def test_stop_training_on_reward_threshold(cls):
    stop = StopTrainingOnRewardThreshold(reward_threshold=-1e9)  # any reward reaches it
    eval_callback = EvalCallback(
        make_vec_env(ENV_ID, n_envs=1, seed=1),
        eval_freq=48,
        n_eval_episodes=1,
        callback_on_new_best=stop,
    )
    model = make_model(cls, seed=0)
    model.learn(total_timesteps=1_000, callback=eval_callback)
    assert model.num_timesteps == 48  # stopped at the first evaluation, far short of 1000


class StopAfter(BaseCallback):
    """Returns False on the ``n``-th step and records what SB3 callbacks read from ``locals``."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self.started = self.ended = False
        self.rollout_starts = 0
        self.seen_total_timesteps: list[int] = []
        self.seen_dones: list[np.ndarray] = []

    def _on_training_start(self) -> None:
        self.started = True

    def _on_rollout_start(self) -> None:
        self.rollout_starts += 1

    def _on_step(self) -> bool:
        self.seen_total_timesteps.append(self.locals["total_timesteps"])
        self.seen_dones.append(np.asarray(self.locals["dones"]))
        return self.n_calls < self.n

    def _on_training_end(self) -> None:
        self.ended = True


@pytest.mark.parametrize("cls", ALGOS, ids=ALGO_IDS)
def test_custom_callback_stops_training_and_sees_locals(cls):
    callback = StopAfter(40)
    model = make_model(cls, seed=0)
    model.learn(total_timesteps=500, callback=callback)
    assert model.num_timesteps == 40 < 500
    assert callback.n_calls == 40 and callback.started and callback.ended and callback.rollout_starts >= 1
    assert set(callback.seen_total_timesteps) == {500}
    assert all(d.shape == (1,) and d.dtype == bool for d in callback.seen_dones)


# --------------------------------------------------------------------------------------------------
# 4. Save / load


@pytest.mark.parametrize("cls", ALGOS, ids=ALGO_IDS)
def test_save_load_round_trip(cls, tmp_path):
    overrides = {"old_policy_update_interval": 10_000} if cls is OffPolicyMDPO else {}
    model = make_model(cls, seed=0, **overrides)
    model.learn(total_timesteps=128)
    if cls is MDPO:
        assert len(model.policy.value_optimizer.state_dict()["state"]) > 0  # Adam moments exist
    else:
        # No refresh since construction: the old actor now differs from the trained actor, so the
        # comparison below shows the old actor itself was saved (not rebuilt from the actor on load).
        assert not states_equal(model.policy.old_actor.state_dict(), model.policy.actor.state_dict())
        assert len(model.actor.optimizer.state_dict()["state"]) > 0
    obs = observations(16)
    actions, _ = model.predict(obs, deterministic=True)
    params = model.get_parameters()
    expected_keys = (
        {"policy", "policy.optimizer", "policy.value_optimizer"}
        if cls is MDPO
        else {"policy", "actor.optimizer", "critic.optimizer"}
    )
    assert set(params) == expected_keys
    if cls is OffPolicyMDPO:
        assert any(k.startswith("old_actor.") for k in params["policy"])

    model.save(tmp_path / "model.zip")
    loaded = cls.load(tmp_path / "model.zip")  # no env
    assert loaded.env is None
    assert_same(loaded.get_parameters(), params)
    assert_same(loaded.policy.state_dict(), model.policy.state_dict())
    if cls is MDPO:
        assert_same(loaded.policy.value_optimizer.state_dict(), model.policy.value_optimizer.state_dict())
        assert_same(loaded.policy.optimizer.state_dict(), model.policy.optimizer.state_dict())
        for name in ("sgd_steps", "vf_epochs", "vf_batch_size", "vf_learning_rate", "clip_range_vf"):
            assert getattr(loaded, name) == getattr(model, name)
        # the loaded optimizers hold the loaded policy's own tensors
        loaded_ids = {id(p) for p in loaded.policy.parameters()}
        assert {id(p) for p in loaded.policy.value_parameters()} <= loaded_ids
    else:
        assert_same(loaded.policy.old_actor.state_dict(), model.policy.old_actor.state_dict())
        assert_same(loaded.actor.optimizer.state_dict(), model.actor.optimizer.state_dict())
        assert_same(loaded.critic.optimizer.state_dict(), model.critic.optimizer.state_dict())
        assert loaded.old_actor is loaded.policy.old_actor and loaded.actor is loaded.policy.actor
        for name in ("old_policy_update_interval", "_last_old_policy_update", "kl_coef", "ent_coef", "tsallis_q"):
            assert getattr(loaded, name) == getattr(model, name)
    loaded_actions, _ = loaded.predict(obs, deterministic=True)
    np.testing.assert_array_equal(loaded_actions, actions)

    # Learning continues after load, and the restored optimizers update the loaded networks.
    before = clone_state(loaded.policy)
    loaded.set_env(make_vec_env(ENV_ID, n_envs=1, seed=2))
    loaded.learn(total_timesteps=128, reset_num_timesteps=False)
    assert loaded.num_timesteps == 256
    after = loaded.policy.state_dict()
    if cls is MDPO:
        value_keys = [k for k in after if k.startswith(("mlp_extractor.value_net.", "value_net."))]
        actor_keys = [k for k in after if k.startswith(("mlp_extractor.policy_net.", "action_net."))]
    else:
        value_keys = [k for k in after if k.startswith("critic.")]
        actor_keys = [k for k in after if k.startswith("actor.")]
    assert value_keys and actor_keys
    assert any(not th.equal(before[k], after[k]) for k in value_keys)
    assert any(not th.equal(before[k], after[k]) for k in actor_keys)

    # Loading with an env also works.
    with_env = cls.load(tmp_path / "model.zip", env=make_vec_env(ENV_ID, n_envs=1, seed=3))
    with_env.learn(total_timesteps=64, reset_num_timesteps=False)
    assert with_env.num_timesteps == 192


@pytest.mark.parametrize("cls", ALGOS, ids=ALGO_IDS)
def test_policy_save_load(cls, tmp_path):
    model = make_model(cls, seed=0)
    obs = observations(8)
    actions, _ = model.predict(obs, deterministic=True)
    model.policy.save(tmp_path / "policy.pth")
    policy = type(model.policy).load(tmp_path / "policy.pth")
    assert_same(policy.state_dict(), model.policy.state_dict())
    np.testing.assert_array_equal(policy.predict(obs, deterministic=True)[0], actions)


def test_replay_buffer_round_trip(tmp_path):
    model = make_model(OffPolicyMDPO, seed=0)
    model.learn(total_timesteps=100)
    assert model.replay_buffer.size() == 100
    model.save_replay_buffer(tmp_path / "buffer.pkl")
    other = make_model(OffPolicyMDPO, seed=1)
    assert other.replay_buffer.size() == 0
    other.load_replay_buffer(tmp_path / "buffer.pkl")
    assert other.replay_buffer.size() == 100
    np.testing.assert_array_equal(other.replay_buffer.observations, model.replay_buffer.observations)
    np.testing.assert_array_equal(other.replay_buffer.actions, model.replay_buffer.actions)
    np.testing.assert_array_equal(other.replay_buffer.rewards, model.replay_buffer.rewards)
    other.learn(total_timesteps=40)
    assert other.replay_buffer.size() == 140  # appended to the loaded transitions


# --------------------------------------------------------------------------------------------------
# 5. get_parameters / set_parameters


@pytest.mark.parametrize("cls", ALGOS, ids=ALGO_IDS)
def test_set_parameters(cls, tmp_path):
    source = make_model(cls, seed=0)
    source.learn(total_timesteps=96)
    params = source.get_parameters()
    target = make_model(cls, seed=1)
    assert not states_equal(target.policy.state_dict(), source.policy.state_dict())

    target.set_parameters(params, exact_match=True)
    assert_same(target.get_parameters(), params)

    bad = dict(params)
    bad["not_a_module"] = params["policy"]
    with pytest.raises(ValueError):
        target.set_parameters(bad)

    partial = {"policy": make_model(cls, seed=2).policy.state_dict()}
    with pytest.raises(ValueError):
        target.set_parameters(partial, exact_match=True)  # optimizers missing
    target.set_parameters(partial, exact_match=False)
    assert_same(target.policy.state_dict(), partial["policy"])
    # the optimizers were left as they were
    optimizer_key = "policy.optimizer" if cls is MDPO else "actor.optimizer"
    assert_same(target.get_parameters()[optimizer_key], params[optimizer_key])

    # from a saved zip
    source.save(tmp_path / "source.zip")
    target.set_parameters(tmp_path / "source.zip")
    assert_same(target.get_parameters(), params)


# --------------------------------------------------------------------------------------------------
# 6. Seeding


def _seeded_run(cls, seed: int) -> tuple[dict[str, th.Tensor], list[dict[str, Any]]]:
    model = make_model(cls, seed=seed)
    logger, writer = recording_logger()
    model.set_logger(logger)
    model.learn(total_timesteps=210, log_interval=1)  # on-policy: 4 iterations; off-policy: 1 episode
    model.logger.dump(model.num_timesteps)
    rows = [{k: v for k, v in row.items() if k.startswith(("train/", "rollout/"))} for row in writer.rows]
    return clone_state(model.policy), rows


@pytest.mark.parametrize("cls", ALGOS, ids=ALGO_IDS)
def test_same_seed_same_result(cls):
    params_a, rows_a = _seeded_run(cls, seed=7)
    params_b, rows_b = _seeded_run(cls, seed=7)
    params_c, _ = _seeded_run(cls, seed=8)
    assert any("train/kl" in row for row in rows_a)
    assert_same(params_a, params_b)
    assert_same(rows_a, rows_b)
    assert not states_equal(params_a, params_c)


# --------------------------------------------------------------------------------------------------
# 7. VecNormalize, several envs, subprocesses


@pytest.mark.parametrize("cls", ALGOS, ids=ALGO_IDS)
def test_vec_normalize_and_two_envs(cls):
    env = VecNormalize(make_vec_env(ENV_ID, n_envs=2, seed=0))
    model = make_model(cls, env=env, seed=0)
    assert model.n_envs == 2
    assert model.get_vec_normalize_env() is env
    model.learn(total_timesteps=256)
    assert model.num_timesteps == 256
    assert env.obs_rms.count > 256  # the statistics were updated by training
    if cls is MDPO:
        assert model.rollout_buffer.buffer_size == 64 and model.rollout_buffer.n_envs == 2
    else:
        assert model.replay_buffer.size() == 128 and model.replay_buffer.n_envs == 2  # 128 steps x 2 envs

    eval_env = VecNormalize(make_vec_env(ENV_ID, n_envs=2, seed=5), training=False, norm_reward=False)
    eval_env.obs_rms = env.obs_rms
    mean_reward, std_reward = evaluate_policy(model, eval_env, n_eval_episodes=2)
    assert np.isfinite(mean_reward) and np.isfinite(std_reward) and mean_reward < 0  # Pendulum rewards are <= 0

    model_without = make_model(cls, seed=0)
    assert model_without.get_vec_normalize_env() is None


@pytest.mark.parametrize("cls", ALGOS, ids=ALGO_IDS)
def test_subproc_vec_env(cls):
    start_method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    env = make_vec_env(
        ENV_ID, n_envs=2, seed=0, vec_env_cls=SubprocVecEnv, vec_env_kwargs=dict(start_method=start_method)
    )
    try:
        model = make_model(cls, env=env, seed=0)
        model.learn(total_timesteps=128)
        assert model.num_timesteps == 128 and model._n_updates > 0
        mean_reward, _ = evaluate_policy(model, env, n_eval_episodes=2)
        assert np.isfinite(mean_reward)
    finally:
        env.close()


# --------------------------------------------------------------------------------------------------
# 8. Logging


@pytest.mark.parametrize("cls", ALGOS, ids=ALGO_IDS)
def test_tensorboard_events_file(cls, tmp_path):
    model = make_model(cls, seed=0, tensorboard_log=str(tmp_path))
    model.learn(total_timesteps=210, log_interval=1, tb_log_name="run")
    events = list(tmp_path.glob("run_1/events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0


@pytest.mark.parametrize(
    ("cls", "keys"),
    [
        (MDPO, ["train/kl", "train/t_k", "train/policy_loss", "train/value_loss"]),
        (OffPolicyMDPO, ["train/kl", "train/actor_loss", "train/critic_loss"]),
    ],
    ids=ALGO_IDS,
)
def test_algorithm_quantities_in_csv_log(cls, keys, tmp_path):
    model = make_model(cls, seed=0)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(total_timesteps=210, log_interval=1)
    model.logger.close()
    with open(tmp_path / "progress.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows
    for key in keys:
        values = [row[key] for row in rows if row.get(key)]
        assert values, f"{key} never logged"
        assert all(np.isfinite(float(v)) for v in values), key


def test_on_policy_step_size_is_logged_per_iteration():
    model = make_model(MDPO, seed=0)
    logger, writer = recording_logger()
    model.set_logger(logger)
    model.learn(total_timesteps=4 * 64)  # K = 4 iterations
    model.logger.dump(model.num_timesteps)
    t_k = [row["train/t_k"] for row in writer.rows if "train/t_k" in row]
    np.testing.assert_allclose(t_k, [1.0, 0.75, 0.5, 0.25])
    kl = [row["train/kl"] for row in writer.rows if "train/kl" in row]
    assert len(kl) == 4 and all(v >= 0 for v in kl)


# --------------------------------------------------------------------------------------------------
# 9. Off-policy old policy


def _record_refreshes(model) -> list[tuple[int, bool]]:
    """Wrap ``policy.refresh_old_actor``: (num_timesteps, old actor == actor afterwards) per refresh."""
    calls: list[tuple[int, bool]] = []
    original = model.policy.refresh_old_actor

    def wrapped() -> None:
        original()
        calls.append(
            (model.num_timesteps, states_equal(model.policy.old_actor.state_dict(), model.policy.actor.state_dict()))
        )
        model._snapshot = clone_state(model.policy.actor)

    model.policy.refresh_old_actor = wrapped
    return calls


def test_off_policy_old_actor_refresh_schedule():
    model = make_model(OffPolicyMDPO, seed=0, old_policy_update_interval=50)
    policy = model.policy
    assert all(not p.requires_grad for p in policy.old_actor.parameters())
    optimized = {id(p) for group in model.actor.optimizer.param_groups for p in group["params"]}
    optimized |= {id(p) for group in model.critic.optimizer.param_groups for p in group["params"]}
    assert optimized.isdisjoint(id(p) for p in policy.old_actor.parameters())
    assert states_equal(policy.old_actor.state_dict(), policy.actor.state_dict())  # pi_0 == actor at start

    calls = _record_refreshes(model)
    model.learn(total_timesteps=300)
    assert [t for t, _ in calls] == [50, 100, 150, 200, 250, 300]
    assert all(equal for _, equal in calls)  # right after each refresh, old actor == actor
    assert model._last_old_policy_update == 300
    # The refresh at step 300 preceded that step's gradient update: the actor has moved on,
    # the old actor has not.
    assert states_equal(policy.old_actor.state_dict(), model._snapshot)
    assert not states_equal(policy.old_actor.state_dict(), policy.actor.state_dict())
    assert not policy.old_actor.training


def test_off_policy_old_actor_frozen_between_refreshes():
    model = make_model(OffPolicyMDPO, seed=0, old_policy_update_interval=10_000)
    old = clone_state(model.policy.old_actor)
    calls = _record_refreshes(model)
    model.learn(total_timesteps=150)
    assert calls == []
    assert states_equal(model.policy.old_actor.state_dict(), old)  # no gradient ever touched it
    assert not states_equal(model.policy.actor.state_dict(), old)


def test_off_policy_refresh_schedule_restarts_with_reset_num_timesteps():
    model = make_model(OffPolicyMDPO, seed=0, old_policy_update_interval=50)
    model.learn(total_timesteps=200)
    assert model._last_old_policy_update == 200
    calls = _record_refreshes(model)
    model.learn(total_timesteps=150)  # reset_num_timesteps=True: num_timesteps restarts at 0
    assert [t for t, _ in calls] == [50, 100, 150]
    calls.clear()
    model.learn(total_timesteps=100, reset_num_timesteps=False)  # continues: 150 -> 250
    assert [t for t, _ in calls] == [200, 250]


# --------------------------------------------------------------------------------------------------
# 10. On-policy separate value optimizer


def test_on_policy_optimizers_partition_trainable_parameters():
    model = make_model(MDPO, seed=0)
    policy = model.policy
    assert policy.share_features_extractor is False
    actor_ids = {id(p) for p in policy.actor_parameters()}
    value_ids = {id(p) for p in policy.value_parameters()}
    trainable = {id(p) for p in policy.parameters() if p.requires_grad}
    assert actor_ids and value_ids
    assert actor_ids.isdisjoint(value_ids)
    assert actor_ids | value_ids == trainable
    names = {id(p): n for n, p in policy.named_parameters()}
    assert id(policy.log_std) in actor_ids
    assert all(
        names[i].startswith(("mlp_extractor.value_net.", "value_net.", "vf_features_extractor.")) for i in value_ids
    )


def test_on_policy_policy_step_leaves_value_net_alone():
    model = make_model(MDPO, seed=0, vf_epochs=0)
    policy = model.policy
    value_before = [p.detach().clone() for p in policy.value_parameters()]
    actor_before = [p.detach().clone() for p in policy.actor_parameters()]
    model.learn(total_timesteps=128)
    assert all(th.equal(a, p) for a, p in zip(value_before, policy.value_parameters()))
    assert any(not th.equal(a, p) for a, p in zip(actor_before, policy.actor_parameters()))


def test_on_policy_value_step_leaves_actor_alone():
    model = make_model(MDPO, seed=0, vf_learning_rate=1e-3, learning_rate=3e-4)
    model.learn(total_timesteps=64)
    policy = model.policy
    assert policy.value_optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)
    assert policy.optimizer.param_groups[0]["lr"] == pytest.approx(3e-4)
    value_before = [p.detach().clone() for p in policy.value_parameters()]
    actor_before = [p.detach().clone() for p in policy.actor_parameters()]
    losses = model._train_value_function()
    assert len(losses) == model.vf_epochs * (64 // model.vf_batch_size)
    assert all(th.equal(a, p) for a, p in zip(actor_before, policy.actor_parameters()))
    assert any(not th.equal(a, p) for a, p in zip(value_before, policy.value_parameters()))


# --------------------------------------------------------------------------------------------------
# 11. Step-size schedule


@pytest.mark.parametrize("n_iterations", [1, 2, 5, 488])
def test_mirror_descent_step_size(n_iterations):
    schedule = [mirror_descent_step_size(k, n_iterations) for k in range(1, n_iterations + 1)]
    assert schedule[0] == pytest.approx(1.0)
    assert schedule[-1] == pytest.approx(1.0 / n_iterations)
    assert all(b < a for a, b in zip(schedule, schedule[1:]))  # strictly decreasing
    np.testing.assert_allclose(schedule, [1 - (k - 1) / n_iterations for k in range(1, n_iterations + 1)])
    for beyond in (n_iterations + 1, 2 * n_iterations + 3, 10**6):
        assert mirror_descent_step_size(beyond, n_iterations) == pytest.approx(1.0 / n_iterations)
    assert all(mirror_descent_step_size(k, n_iterations) > 0 for k in range(1, 3 * n_iterations))
