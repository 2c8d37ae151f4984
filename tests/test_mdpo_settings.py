"""MDPO's settings: the authors' defaults, every setting reaching Stable-Baselines3, the validation boundaries,
``learn``'s own defaults (log interval, progress bar, tensorboard run name, resetting the step counter) and the
off-policy old policy's refresh clock.

Where MDPO's default equals SB3's (``stats_window_size=100``, ``verbose=0``, ``device="auto"``, no replay buffer
class, ...), a setting dropped on its way to SB3 would go unseen with the default, so each is also set to another
value here. The losses themselves are pinned in test_mdpo_losses.py; this file's tests were written from the
surviving mutants of ``algos/mdpo.py`` and ``algos/mdpo_off.py`` (counts in test_mdpo_losses.py's docstring).
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common import base_class
from stable_baselines3.common.buffers import ReplayBuffer, RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.distributions import StateDependentNoiseDistribution
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.type_aliases import TrainFreq, TrainFrequencyUnit
from stable_baselines3.common.utils import get_device
from stable_baselines3.common.vec_env import VecNormalize

from algos.mdpo import MDPO, OffPolicyMDPO

ENV_ID = "Pendulum-v1"


def tiny() -> dict[str, Any]:
    """A 4-unit network on the CPU (a fresh dict each time: SB3 writes into ``policy_kwargs``)."""
    return dict(policy_kwargs=dict(net_arch=[4]), device="cpu")


class TaggedRolloutBuffer(RolloutBuffer):
    """A rollout buffer class with an extra keyword argument, to see both reach SB3."""

    def __init__(self, *args: Any, tag: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tag = tag


class TaggedReplayBuffer(ReplayBuffer):
    """A replay buffer class with an extra keyword argument, to see both reach SB3."""

    def __init__(self, *args: Any, tag: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tag = tag


class _MultiBinaryActions(gym.Env):
    """Pendulum's observations with a MultiBinary action space, which neither MDPO class supports."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = gym.spaces.MultiBinary(2)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        return np.zeros(3, np.float32), {}

    def step(self, action):
        return np.zeros(3, np.float32), 0.0, False, False, {}


# --------------------------------------------------------------------------------------------------
# Defaults and settings reaching SB3


def test_on_policy_defaults_are_the_authors():
    """The paper's / authors' on-policy settings (mdpo_on/run_mujoco.py, algos/hyperparams/mdpo.yml)."""
    model = MDPO("MlpPolicy", ENV_ID)
    assert (model.learning_rate, model.n_steps, model.gamma, model.gae_lambda) == (3e-4, 2048, 0.99, 0.95)
    assert (model.sgd_steps, model.tsallis_q, model.annealing_timesteps) == (10, 1.0, None)
    assert (model.vf_learning_rate, model.vf_epochs, model.vf_batch_size, model.clip_range_vf) == (3e-4, 5, 128, 0.2)
    assert (model.normalize_advantage, model.ent_coef, model.max_grad_norm) == (True, 0.0, 0.5)
    assert (model.use_sde, model.sde_sample_freq, model._stats_window_size, model.verbose) == (False, -1, 100, 0)
    assert model.vf_coef == 0.0  # the value function has its own loss and optimizer, not a share of the policy's
    assert model.device == get_device("auto")
    assert model.policy.optimizer.param_groups[0]["lr"] == 3e-4


def test_off_policy_defaults_are_the_authors():
    """The authors' off-policy settings (mdpo_off/run_mujoco.py, algos/hyperparams/mdpo_off.yml) and SAC's rest."""
    model = OffPolicyMDPO("MlpPolicy", ENV_ID)
    assert (model.learning_rate, model.buffer_size, model.learning_starts, model.batch_size) == (
        3e-4,
        1_000_000,
        10_000,
        256,
    )
    assert (model.tau, model.gamma, model.gradient_steps) == (0.005, 0.99, 1)
    assert model.train_freq == TrainFreq(1, TrainFrequencyUnit.STEP)
    assert (model.ent_coef, model.kl_coef, model.tsallis_q) == (0.2, 1.0, 1.0)
    assert (model.old_policy_update_interval, model.policy_reg_coef, model.target_update_interval) == (1000, 1e-3, 1)
    assert (model._stats_window_size, model.verbose, model.action_noise) == (100, 0, None)
    assert model.device == get_device("auto")
    assert model.replay_buffer.buffer_size == 1_000_000 and not model.replay_buffer.optimize_memory_usage
    assert model.actor.optimizer.param_groups[0]["lr"] == 3e-4


def test_on_policy_settings_reach_sb3(tmp_path):
    settings = dict(
        learning_rate=1e-3,
        n_steps=16,
        gamma=0.9,
        gae_lambda=0.8,
        sgd_steps=3,
        tsallis_q=1.5,
        annealing_timesteps=1_000,
        vf_learning_rate=2e-3,
        vf_epochs=2,
        vf_batch_size=4,
        clip_range_vf=None,
        normalize_advantage=False,
        ent_coef=0.01,
        max_grad_norm=0.7,
        use_sde=True,
        sde_sample_freq=4,
        tensorboard_log=str(tmp_path),
        verbose=1,
        seed=5,
    )
    model = MDPO(
        "MlpPolicy",
        ENV_ID,
        rollout_buffer_class=TaggedRolloutBuffer,
        rollout_buffer_kwargs=dict(tag="mine"),
        stats_window_size=7,
        **settings,
        **tiny(),
    )
    assert {key: getattr(model, key) for key in settings} == settings
    assert model.policy.use_sde and isinstance(model.policy.action_dist, StateDependentNoiseDistribution)
    assert isinstance(model.rollout_buffer, TaggedRolloutBuffer) and model.rollout_buffer.tag == "mine"
    assert model.rollout_buffer.buffer_size == 16
    assert model._stats_window_size == 7
    assert model.policy.optimizer.param_groups[0]["lr"] == 1e-3


def test_off_policy_settings_reach_sb3(tmp_path):
    noise = NormalActionNoise(np.zeros(1), 0.3 * np.ones(1))
    settings = dict(
        learning_rate=1e-3,
        buffer_size=500,
        learning_starts=7,
        batch_size=16,
        tau=0.02,
        gamma=0.9,
        gradient_steps=3,
        ent_coef=0.1,
        kl_coef=0.5,
        tsallis_q=1.5,
        old_policy_update_interval=20,
        policy_reg_coef=0.0,
        action_noise=noise,
        optimize_memory_usage=True,
        target_update_interval=2,
        tensorboard_log=str(tmp_path),
        verbose=1,
        seed=5,
    )
    model = OffPolicyMDPO(
        "MlpPolicy",
        ENV_ID,
        train_freq=(2, "episode"),
        replay_buffer_class=TaggedReplayBuffer,
        replay_buffer_kwargs=dict(tag="mine", handle_timeout_termination=False),
        stats_window_size=7,
        **settings,
        **tiny(),
    )
    assert {key: getattr(model, key) for key in settings} == settings
    assert model.train_freq == TrainFreq(2, TrainFrequencyUnit.EPISODE)
    buffer = model.replay_buffer
    assert isinstance(buffer, TaggedReplayBuffer) and buffer.tag == "mine" and buffer.buffer_size == 500
    assert buffer.optimize_memory_usage and not buffer.handle_timeout_termination
    assert model._stats_window_size == 7
    assert model.actor.optimizer.param_groups[0]["lr"] == 1e-3


@pytest.mark.parametrize("cls", [MDPO, OffPolicyMDPO], ids=["on_policy", "off_policy"])
def test_device_reaches_sb3(cls, requested_devices):
    """``device`` is handed to SB3 (on a CPU-only machine "auto" and "cpu" give the same device)."""
    cls("MlpPolicy", ENV_ID, policy_kwargs=dict(net_arch=[4]), device="cpu", _init_setup_model=False)
    assert requested_devices == ["cpu"]


@pytest.mark.parametrize("cls", [MDPO, OffPolicyMDPO], ids=["on_policy", "off_policy"])
def test_unsupported_action_space_is_refused(cls):
    with pytest.raises(AssertionError, match="only supports"):
        cls("MlpPolicy", _MultiBinaryActions(), **tiny())


def test_off_policy_samples_through_vec_normalize():
    """``train`` samples its batch normalised by the VecNormalize wrapper, by default 64 transitions (SAC's)."""
    env = VecNormalize(make_vec_env(ENV_ID, n_envs=1, seed=0))
    model = OffPolicyMDPO("MlpPolicy", env, learning_starts=100, seed=0, **tiny())
    model.set_logger(Logger(folder=None, output_formats=[]))
    model.learn(total_timesteps=20)
    calls: list[tuple[Any, Any]] = []
    original = model.replay_buffer.sample

    def sample(batch_size: int, env: VecNormalize | None = None):
        calls.append((batch_size, env))
        return original(batch_size, env=env)

    model.replay_buffer.sample = sample  # type: ignore[method-assign]
    model.train(gradient_steps=1)
    assert calls == [(64, env)]


# --------------------------------------------------------------------------------------------------
# Validation boundaries: accepted at the boundary, refused just past it


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (dict(sgd_steps=1), None),
        (dict(sgd_steps=0), "sgd_steps must be >= 1"),
        (dict(tsallis_q=2.0), None),
        (dict(tsallis_q=0.01), None),
        (dict(tsallis_q=2.5), "tsallis_q must be in"),
        (dict(tsallis_q=0.0), "tsallis_q must be in"),
        (dict(vf_batch_size=1, vf_epochs=0), None),
        (dict(vf_batch_size=0), "vf_batch_size must be >= 1"),
        (dict(vf_epochs=-1), "vf_batch_size must be >= 1 and vf_epochs >= 0"),
    ],
)
def test_on_policy_validation(settings: dict[str, Any], message: str | None):
    make = lambda: MDPO("MlpPolicy", ENV_ID, _init_setup_model=False, **settings, **tiny())  # noqa: E731
    if message is None:
        model = make()
        assert {key: getattr(model, key) for key in settings} == settings
    else:
        with pytest.raises(ValueError, match=message):
            make()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (dict(ent_coef=0.0), None),
        (dict(ent_coef=-0.1), "ent_coef .* must be a non-negative number"),
        (dict(ent_coef="auto"), "ent_coef .* must be a non-negative number"),
        (dict(tsallis_q=1.0), None),
        (dict(tsallis_q=2.0), None),
        (dict(tsallis_q=0.99), "tsallis_q must be in"),
        (dict(tsallis_q=2.5), "tsallis_q must be in"),
        (dict(old_policy_update_interval=1), None),
        (dict(old_policy_update_interval=0), "old_policy_update_interval must be >= 1"),
    ],
)
def test_off_policy_validation(settings: dict[str, Any], message: str | None):
    make = lambda: OffPolicyMDPO("MlpPolicy", ENV_ID, _init_setup_model=False, **settings, **tiny())  # noqa: E731
    if message is None:
        model = make()
        assert {key: getattr(model, key) for key in settings} == settings
    else:
        with pytest.raises(ValueError, match=message):
            make()


# --------------------------------------------------------------------------------------------------
# learn's defaults


class _ProgressBarSpy(BaseCallback):
    """Stands in for SB3's progress bar: counts how many were made."""

    made = 0

    def __init__(self) -> None:
        super().__init__()
        type(self).made += 1

    def _on_step(self) -> bool:
        return True


def _short_episodes() -> gym.Env:
    return gym.make(ENV_ID, max_episode_steps=5)


@pytest.mark.parametrize("cls", [MDPO, OffPolicyMDPO], ids=["on_policy", "off_policy"])
def test_progress_bar_only_when_asked(cls, monkeypatch):
    monkeypatch.setattr(base_class, "ProgressBarCallback", _ProgressBarSpy)
    monkeypatch.setattr(_ProgressBarSpy, "made", 0)
    kwargs = dict(n_steps=8) if cls is MDPO else dict(learning_starts=100)
    model = cls("MlpPolicy", ENV_ID, **kwargs, **tiny())
    model.learn(total_timesteps=8)
    assert _ProgressBarSpy.made == 0
    model.learn(total_timesteps=8, progress_bar=True)
    assert _ProgressBarSpy.made == 1


@pytest.mark.parametrize(("cls", "name"), [(MDPO, "MDPO"), (OffPolicyMDPO, "OffPolicyMDPO")], ids=["on", "off"])
def test_tensorboard_run_named_after_the_class(cls, name, tmp_path):
    kwargs = dict(n_steps=8) if cls is MDPO else dict(learning_starts=100)
    model = cls("MlpPolicy", ENV_ID, tensorboard_log=str(tmp_path), **kwargs, **tiny())
    model.learn(total_timesteps=8)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{name}_1"]


def _record_dumps(model: Any) -> list[int]:
    """Wrap ``model.dump_logs``: the iteration (on-policy) or episode count (off-policy) of each dump."""
    dumps: list[int] = []
    original = model.dump_logs

    def dump_logs(*args: Any) -> None:
        dumps.append(args[0] if args else model._episode_num)
        original(*args)

    model.dump_logs = dump_logs
    return dumps


def test_on_policy_log_interval_reaches_sb3():
    model = MDPO("MlpPolicy", ENV_ID, n_steps=4, sgd_steps=1, vf_epochs=0, **tiny())
    model.set_logger(Logger(folder=None, output_formats=[]))
    dumps = _record_dumps(model)
    model.learn(total_timesteps=16)  # default: every iteration
    assert dumps == [1, 2, 3, 4]
    dumps.clear()
    model.learn(total_timesteps=16, log_interval=2)
    assert dumps == [2, 4]


def test_off_policy_log_interval_and_step_counter_reach_sb3():
    """Logs every 4 episodes by default (SAC's), or every ``log_interval``; ``learn`` restarts the step counter
    unless told otherwise."""
    model = OffPolicyMDPO("MlpPolicy", _short_episodes(), learning_starts=1_000, **tiny())
    model.set_logger(Logger(folder=None, output_formats=[]))
    dumps = _record_dumps(model)
    model.learn(total_timesteps=40)  # 8 episodes of 5 steps
    assert dumps == [4, 8]
    dumps.clear()
    model.learn(total_timesteps=30, log_interval=3)  # the episode count restarts too
    assert dumps == [3, 6] and model.num_timesteps == 30
    model.learn(total_timesteps=10, reset_num_timesteps=False)
    assert model.num_timesteps == 40


# --------------------------------------------------------------------------------------------------
# Off-policy: the old policy's refresh clock, and what a saved model holds


def test_off_policy_refresh_clock_starts_at_zero():
    """pi_k <- pi_theta exactly when ``old_policy_update_interval`` env steps have passed since the last refresh
    (construction counts as a refresh at step 0), and ``maybe_refresh_old_policy`` says whether it refreshed."""
    model = OffPolicyMDPO("MlpPolicy", ENV_ID, old_policy_update_interval=5, **tiny())
    policy = model.policy

    def moved_on() -> None:
        with th.no_grad():
            for param in policy.actor.parameters():
                param.add_(0.1)

    def old_equals_actor() -> bool:
        old, new = policy.old_actor.state_dict(), policy.actor.state_dict()
        return all(th.equal(old[k], new[k]) for k in new)

    for steps, refreshed in [(4, False), (5, True), (9, False), (10, True), (12, False)]:
        moved_on()
        model.num_timesteps = steps
        assert model.maybe_refresh_old_policy() is refreshed, steps
        assert old_equals_actor() is refreshed, steps
    assert model._last_old_policy_update == 10


def test_off_policy_saved_file_has_no_network_aliases(tmp_path):
    """The aliases of the policy's networks are not pickled into the saved data (their weights are in the
    policy's state dict)."""
    model = OffPolicyMDPO("MlpPolicy", ENV_ID, buffer_size=100, **tiny())
    model.save(tmp_path / "model.zip")
    with zipfile.ZipFile(tmp_path / "model.zip") as archive:
        data = json.load(io.TextIOWrapper(archive.open("data"), encoding="utf-8"))
    assert {"actor", "old_actor", "critic", "critic_target", "policy"}.isdisjoint(data)
    assert data["kl_coef"] == 1.0
