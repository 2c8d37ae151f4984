"""H2O's own behaviour: the discriminators and the dynamics ratio, the clipped Bellman weights, the omega weights and
the penalty against hand computations, the real/sim batches, save/load with the discriminators, seeding, and the
command line with a simulator variant.

The SB3 contract shared by all offline algorithms is tested in test_offline_contract.py.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch as th
from figure_checks import png_size, recorded_figures
from offline_data import random_dataset, write_hdf5
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure
from stable_baselines3.common.save_util import load_from_pkl

from algos.h2o import H2O, main
from rl.envs import make_env
from sim2real import PARAMETERS, SimVariant

ENV_ID = "Pendulum-v1"
TINY = dict(policy_kwargs=dict(net_arch=[16, 16]), batch_size=32, buffer_size=2_000, device="cpu",
            discriminator_net_arch=[16, 16], discriminator_batch_size=32)


@pytest.fixture(scope="module")
def dataset():
    return random_dataset(ENV_ID, n=300)


def sim_env(seed: int = 0, spec: str = "gravity=2.0"):
    return make_vec_env(ENV_ID, n_envs=1, seed=seed, wrapper_class=SimVariant, wrapper_kwargs=dict(spec=spec))


def make(dataset, seed: int = 0, **kwargs) -> H2O:
    """H2O with tiny networks on Pendulum: the dataset from the real Pendulum, the sim one with doubled gravity."""
    model = H2O("MlpPolicy", sim_env(seed), dataset=dataset, seed=seed, **{**TINY, **kwargs})
    model.set_logger(configure(None, []))
    return model


def logged(model: H2O) -> dict[str, float]:
    return dict(model.logger.name_to_value)


def all_parameters(model: H2O) -> dict[str, np.ndarray]:
    return {
        f"{group}.{key}": value.detach().numpy().copy()
        for group, state in model.get_parameters().items() if not group.endswith("optimizer")
        for key, value in state.items()
    }


# The discriminators and the dynamics ratio.


def synthetic(rng: np.random.Generator, n: int, shift: float) -> tuple[th.Tensor, ...]:
    """(s, a, s') with s' = s + 0.1 a + shift: the same (s, a) distribution, dynamics that differ by ``shift``."""
    s = rng.normal(size=(n, 3))
    a = rng.uniform(-1, 1, size=(n, 1))
    return tuple(th.as_tensor(x, dtype=th.float32) for x in (s, a, s + 0.1 * a + shift))


def test_discriminator_inputs_get_gaussian_noise_of_the_set_std(monkeypatch):
    """The authors' input noise: x + noise * N(0, 1) on every (s, a, s') entry of both real and sim data."""
    model = H2O("MlpPolicy", ENV_ID, seed=0, device="cpu", discriminator_net_arch=[8], discriminator_noise=0.5)
    losses, seen = model.discriminators.losses, []
    monkeypatch.setattr(model.discriminators, "losses", lambda real, sim: seen.append((real, sim)) or losses(real, sim))
    clean = [th.full((4000, 3), 2.0), th.full((4000, 1), -1.0), th.full((4000, 3), 0.5)]
    model.discriminator_step(clean, clean)
    for noisy in seen[0]:
        for x, c in zip(noisy, clean):
            noise = (x - c).flatten()
            assert noise.mean().item() == pytest.approx(0.0, abs=0.03)
            assert noise.std().item() == pytest.approx(0.5, rel=0.05)
            assert noise.abs().max().item() < 0.5 * 6  # Gaussian tails, not a ratio of draws


@pytest.mark.parametrize("shift, separable", [(1.0, True), (0.0, False)])
def test_discriminators_separate_clearly_different_dynamics(shift, separable):
    model = H2O("MlpPolicy", ENV_ID, seed=0, device="cpu", discriminator_net_arch=[32, 32], discriminator_lr=3e-3)
    rng = np.random.default_rng(0)
    for _ in range(150):
        sa_loss, sas_loss = model.discriminator_step(synthetic(rng, 128, 0.0), synthetic(rng, 128, shift))
    real_log_ratio = model.dynamics_log_ratio(*synthetic(rng, 1000, 0.0)).numpy()
    sim_log_ratio = model.dynamics_log_ratio(*synthetic(rng, 1000, shift)).numpy()
    assert sa_loss > 1.2, "(s, a) has the same distribution in both: D_sa stays near chance (2 log 2 = 1.39)"
    if separable:
        assert sas_loss < 0.6
        assert real_log_ratio.mean() > 1.0 and sim_log_ratio.mean() < -1.0  # P_real/P_sim > e on real, < 1/e on sim
        assert (real_log_ratio > 0).mean() > 0.9 and (sim_log_ratio < 0).mean() > 0.9
    else:
        assert abs(real_log_ratio.mean()) < 0.3 and abs(sim_log_ratio.mean()) < 0.3


def test_dynamics_ratio_is_the_ratio_of_the_two_classifiers_odds():
    model = H2O("MlpPolicy", ENV_ID, seed=0, device="cpu", discriminator_net_arch=[8])
    s, a, s2 = synthetic(np.random.default_rng(1), 5, 0.5)
    with th.no_grad():
        p_sa = th.softmax(model.discriminators.sa(s, a), dim=1)
        p_sas = th.softmax(model.discriminators.sas(s, a, s2) + model.discriminators.sa(s, a), dim=1)
    expected = (p_sas[:, 0] / p_sas[:, 1]) / (p_sa[:, 0] / p_sa[:, 1])
    np.testing.assert_allclose(model.dynamics_log_ratio(s, a, s2).exp().numpy(), expected.numpy(), rtol=1e-5)


def test_bellman_weights_are_the_ratio_clipped_as_specified(monkeypatch):
    model = H2O("MlpPolicy", ENV_ID, seed=0, device="cpu", discriminator_net_arch=[8])
    log_ratio = th.tensor([-20.0, -5.0, -1.0, 0.0, 3.0])
    monkeypatch.setattr(model, "dynamics_log_ratio", lambda *_: log_ratio)
    weights = model.sim_bellman_weights(None, None, None).numpy()
    np.testing.assert_allclose(weights, [1e-5, math.exp(-5), math.exp(-1), 1.0, 1.0], rtol=1e-6)
    model.dynamics_ratio_min, model.dynamics_ratio_max = 0.1, 2.0
    np.testing.assert_allclose(model.sim_bellman_weights(None, None, None).numpy(), [0.1, 0.1, math.exp(-1), 1, 2],
                               rtol=1e-6)


def test_omega_weights_match_a_hand_computation(monkeypatch):
    model = H2O("MlpPolicy", ENV_ID, seed=0, device="cpu", next_state_noise=0.0, discriminator_net_arch=[8])
    calls = []

    def log_real_over_sim(observations, actions, next_observations):  # log(P_sim/P_real) = s'_0
        calls.append(len(next_observations))
        return -next_observations[:, 0]

    monkeypatch.setattr(model, "dynamics_log_ratio", log_real_over_sim)
    next_observations = th.tensor([[2.0, 0, 0], [-1.0, 0, 0], [0.5, 0, 0], [20.0, 0, 0]])
    u, log_omega = model.sim_state_weights(th.zeros(4, 3), th.zeros(4, 1), next_observations)
    assert calls == [40], "10 next states per sim transition"
    # u = clip(log P_sim/P_real, 1e-45, 10) = [2, 1e-45, 0.5, 10]; omega = u / 12.5.
    np.testing.assert_allclose(u.numpy(), [2.0, 1e-45, 0.5, 10.0])
    np.testing.assert_allclose(log_omega.exp().numpy(), [0.16, 1e-45 / 12.5, 0.04, 0.8], rtol=1e-12)
    assert log_omega.exp().sum().item() == pytest.approx(1.0)


def test_next_states_are_perturbed_by_the_datasets_std(monkeypatch, dataset):
    model = make(dataset, next_state_noise=0.5)
    np.testing.assert_allclose(model.next_state_std, dataset.observations.std(axis=0) + 1e-3, rtol=1e-5)
    model.next_state_std = np.array([0.5, 0.0, 0.0], dtype=np.float32)
    seen = []
    monkeypatch.setattr(model, "dynamics_log_ratio", lambda s, a, s2: seen.append(s2) or -s2[:, 0])
    next_observations = th.zeros(2000, 3)
    u, _ = model.sim_state_weights(th.zeros(2000, 3), th.zeros(2000, 1), next_observations)
    perturbed = seen[0].view(2000, 10, 3)
    assert perturbed[..., 0].std().item() == pytest.approx(0.5 * 0.5, rel=0.05), "noise scale x the dataset's std"
    assert perturbed[..., 1:].abs().max().item() == 0.0
    # u is the clipped mean over the 10 samples of each transition.
    np.testing.assert_allclose(u.numpy(), perturbed[..., 0].double().mean(dim=1).clamp(1e-45, 10).numpy(), rtol=1e-6)


def test_one_sim_transition_with_one_perturbation_is_weighted(monkeypatch, dataset):
    """The smallest case: one sim transition, ``n_next_state_samples=1``: a single perturbed s', omega = 1."""
    model = make(dataset, n_next_state_samples=1)
    monkeypatch.setattr(model, "dynamics_log_ratio", lambda s, a, s2: -th.ones(len(s2)))
    u, log_omega = model.sim_state_weights(th.zeros(1, 3), th.zeros(1, 1), th.zeros(1, 3))
    assert u.tolist() == [1.0] and log_omega.tolist() == [0.0]


def test_next_states_are_not_perturbed_without_noise_or_without_a_dataset(monkeypatch, dataset):
    """No noise draws nothing from torch's generator (the training's random stream is not shifted); no dataset
    (no std) means no perturbation at the default noise."""
    seen = []
    next_observations = th.arange(12.0).view(4, 3)
    for model in (make(dataset, next_state_noise=0.0),
                  H2O("MlpPolicy", ENV_ID, seed=0, device="cpu", discriminator_net_arch=[8])):
        assert model.next_state_noise == 0.0 or model.next_state_std is None
        monkeypatch.setattr(model, "dynamics_log_ratio", lambda s, a, s2: seen.append(s2) or -s2[:, 0])
        state = th.get_rng_state()
        model.sim_state_weights(th.zeros(4, 3), th.zeros(4, 1), next_observations)
        assert th.equal(th.get_rng_state(), state)
        assert th.equal(seen[-1], next_observations.repeat_interleave(model.n_next_state_samples, dim=0))


def test_penalty_matches_a_hand_computation():
    model = H2O("MlpPolicy", ENV_ID, seed=0, device="cpu", discriminator_net_arch=[8])
    omega = th.tensor([0.16, 1e-45 / 12.5, 0.04, 0.8], dtype=th.float64)
    sim_q = th.tensor([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0]])
    real_q = th.tensor([[0.5, 1.5], [1.0, 3.0]])
    gap = model.h2o_penalty(sim_q, real_q, omega.log()).numpy()
    # log sum_j omega_j exp(Q_j) - mean Q_real, per critic.
    first = math.log(0.16 * math.e + 0.04 * math.e**3 + 0.8 * math.e**4) - 1.0
    second = math.log(1.0) - 2.0
    np.testing.assert_allclose(gap, [first, second], rtol=1e-5)
    assert model.h2o_penalty(sim_q, real_q, omega.log()).dtype == th.float32, "float64 omega, the critics' dtype"
    # A temperature T: T log sum_j exp((Q_j + log omega_j) / T) = T log sum_j omega_j^(1/T) exp(Q_j / T).
    model.cql_temp = 2.0
    first_t2 = 2.0 * math.log(sum(w ** 0.5 * math.exp(q / 2.0) for w, q in zip([0.16, 8e-47, 0.04, 0.8], [1, 2, 3, 4])))
    second_t2 = 2.0 * math.log(sum(w ** 0.5 for w in [0.16, 8e-47, 0.04, 0.8]))
    np.testing.assert_allclose(model.h2o_penalty(sim_q, real_q, omega.log()).numpy(),
                               [first_t2 - 1.0, second_t2 - 2.0], rtol=1e-5)
    model.cql_temp = 1.0
    model.cql_clip_diff_max, model.cql_clip_diff_min = 1.0, -1.5
    np.testing.assert_allclose(model.h2o_penalty(sim_q, real_q, omega.log()).numpy(), [1.0, -1.5])


# The update.


def test_update_mixes_real_and_sim_and_weights_sim_errors_by_the_clipped_ratio(monkeypatch, dataset):
    model = make(dataset)
    discriminators = all_parameters(model)
    model.learn_offline(5)  # no sim transition yet: SAC on the dataset, discriminators untouched
    assert logged(model)["train/sim_fraction"] == 0.0 and "train/h2o_gap" not in logged(model)
    after_offline = all_parameters(model)
    assert all(np.array_equal(after_offline[k], v) for k, v in discriminators.items() if k.startswith("discr"))
    model.learn(20, reset_num_timesteps=False)
    assert model.replay_buffer.real_size == len(dataset) and model.replay_buffer.sim_size == 20
    assert logged(model)["train/sim_fraction"] == 0.5
    after_online = all_parameters(model)
    assert any(not np.array_equal(after_online[k], v) for k, v in after_offline.items() if k.startswith("discr"))
    for log_ratio, weight in ((3.0, 1.0), (-20.0, 1e-5), (-1.0, math.exp(-1))):
        monkeypatch.setattr(model, "dynamics_log_ratio", lambda s, *_, v=log_ratio: th.full((len(s),), v))
        model.train(1, model.batch_size)
        assert logged(model)["train/bellman_weight"] == pytest.approx(weight, rel=1e-5)


def test_naive_mix_trains_no_discriminator_and_weights_every_sim_transition_one(dataset, tmp_path):
    model = make(dataset, dynamics_aware=False)
    discriminators = {k: v for k, v in all_parameters(model).items() if k.startswith("discr")}
    model.learn(20)
    logs = logged(model)
    assert logs["train/sim_fraction"] == 0.5 and "train/discriminator_sas_loss" not in logs
    assert logs["train/bellman_weight"] == 1.0 and logs["train/omega_std"] == pytest.approx(0.0, abs=1e-12)
    after = all_parameters(model)
    assert all(np.array_equal(after[k], v) for k, v in discriminators.items())
    assert model.write_run_artifacts(str(tmp_path)) == {} and not list(tmp_path.iterdir())  # no ratio to show
    model.save(tmp_path / "mix.zip")
    with pytest.warns(UserWarning, match="could not be read"):  # the in-memory dataset is not a file to re-read
        assert H2O.load(tmp_path / "mix.zip", device="cpu").dynamics_aware is False
    # The same seed with the ratio on trains other critics.
    aware = make(dataset)
    aware.learn(20)
    assert any(not np.array_equal(after[k], v) for k, v in all_parameters(aware).items() if ".critic." in k)


def test_online_training_without_real_data_says_how_to_add_it():
    from rl.offline import NoOfflineDataError

    model = make(None, learning_starts=0)
    with pytest.raises(NoOfflineDataError, match="load_offline_data"):
        model.learn(5)


# Save, load, seeding.


def test_save_load_keeps_discriminators_their_optimizer_and_both_buffer_regions(dataset, tmp_path):
    model = make(str(write_hdf5(dataset, tmp_path / "tiny.hdf5")))  # a file: load reads the real data again
    model.learn(30)
    model.save(tmp_path / "h2o.zip")
    model.save_replay_buffer(tmp_path / "buffer.pkl")
    loaded = H2O.load(tmp_path / "h2o.zip", device="cpu")  # no env
    saved, restored = model.get_parameters(), loaded.get_parameters()
    assert {"discriminators", "discriminator_optimizer"} <= saved.keys() == restored.keys()
    for key, value in saved["discriminators"].items():
        np.testing.assert_array_equal(value.numpy(), restored["discriminators"][key].numpy())
    moments = restored["discriminator_optimizer"]["state"]
    assert moments and all(float(state["step"]) == 30 for state in moments.values())
    for key, state in saved["discriminator_optimizer"]["state"].items():
        np.testing.assert_array_equal(state["exp_avg_sq"].numpy(), moments[key]["exp_avg_sq"].numpy())
    s, a, s2 = synthetic(np.random.default_rng(0), 16, 0.0)
    np.testing.assert_array_equal(model.dynamics_log_ratio(s, a, s2), loaded.dynamics_log_ratio(s, a, s2))
    np.testing.assert_array_equal(loaded.next_state_std, model.next_state_std)
    n_real = model.replay_buffer.real_size
    assert loaded.replay_buffer.real_size == n_real and loaded.replay_buffer.sim_size == 0  # dataset re-read
    loaded.load_replay_buffer(tmp_path / "buffer.pkl")
    assert (loaded.replay_buffer.real_size, loaded.replay_buffer.sim_size) == (n_real, 30)
    np.testing.assert_array_equal(loaded.replay_buffer.observations, model.replay_buffer.observations)
    loaded.set_env(sim_env(1))
    loaded.set_logger(configure(None, []))
    loaded.learn(10, reset_num_timesteps=False)
    assert loaded.replay_buffer.sim_size == 40 and loaded.num_timesteps == 40


def test_same_seed_same_hybrid_run(dataset):
    runs = []
    for seed in (3, 3, 4):
        model = make(dataset, seed=seed)
        model.learn(25)
        runs.append(all_parameters(model))
    assert runs[0].keys() == runs[1].keys()
    for key in runs[0]:
        np.testing.assert_array_equal(runs[0][key], runs[1][key], err_msg=key)
    assert any(not np.array_equal(runs[0][k], runs[2][k]) for k in runs[0])


# The command line.


def hopper_next_observation(env, observation: np.ndarray, action: np.ndarray) -> np.ndarray:
    """Hopper's next observation from an observation (qpos without x, then qvel) and an action."""
    env.reset(seed=0)
    unwrapped = env.unwrapped
    unwrapped.set_state(np.concatenate([[0.0], observation[:5]]), observation[5:])
    return env.step(action)[0]


def test_cli_trains_in_the_sim_variant_and_records_the_dynamics_ratio(tmp_path, capsys):
    path = write_hdf5(random_dataset("Hopper-v4", n=300), tmp_path / "hopper.hdf5")
    argv = ["--env", "Hopper-v4", "--sim", "gravity=2.0", "--dataset", str(path), "-n", "0", "--online-steps", "50",
            "--eval-freq", "-1", "--final-eval-episodes", "1", "--save-freq", "50", "-f", str(tmp_path / "logs"),
            "--no-progress", "--verbose", "0", "-params", "policy_kwargs:dict(net_arch=[16,16])", "batch_size:32",
            "buffer_size:2000", "discriminator_net_arch:[16,16]", "discriminator_batch_size:32"]
    assert main(argv) == 0
    run_dir = tmp_path / "logs" / "h2o" / "Hopper-v4_1"
    record = json.loads((run_dir / "run.json").read_text())
    assert record["sim"] == {"spec": "gravity=2", "parameters": {"gravity": 2.0}}
    assert record["offline_steps"] == 0 and record["num_timesteps"] == 50
    ratio = record["dynamics_ratio"]
    assert ratio["n_real"] == 299 and ratio["n_sim"] == 50  # D4RL's loader drops the file's last row
    assert ratio["real_mean"] > 0 and ratio["sim_mean"] > 0 and 1e-5 <= ratio["sim_clipped_mean"] <= 1
    assert (run_dir / "dynamics_ratio.png").stat().st_size > 0
    with np.load(run_dir / "dynamics_ratio.npz") as samples:  # the log ratios behind the plot
        assert len(samples["real"]) == 299 and len(samples["sim"]) == 50
        assert np.exp(samples["sim"]).mean() == pytest.approx(ratio["sim_mean"])
    # The sim transitions come from Hopper with doubled gravity, not from the real Hopper.
    checkpoint = sorted((run_dir / "checkpoints").iterdir())[-1]
    buffer = load_from_pkl(checkpoint / "replay_buffer.pkl")
    assert buffer.real_size == 299 and buffer.sim_size == 50
    real, variant = make_env("Hopper-v4"), SimVariant(make_env("Hopper-v4"), "gravity=2.0")
    row = buffer.real_size + 1
    observation, action, stored = (x[row, 0] for x in (buffer.observations, buffer.actions, buffer.next_observations))
    np.testing.assert_allclose(hopper_next_observation(variant, observation, action), stored, atol=1e-6)
    assert np.abs(hopper_next_observation(real, observation, action) - stored).max() > 1e-3


def test_cli_refuses_an_invalid_sim_spec_listing_the_parameters(tmp_path, capsys):
    path = write_hdf5(random_dataset(ENV_ID, n=50), tmp_path / "tiny.hdf5")
    assert main(["--dataset", str(path), "--sim", "gravity=2,wind=3", "-n", "0", "--online-steps", "5"]) == 2
    error = capsys.readouterr().err
    assert "unknown dynamics parameter 'wind'" in error
    assert all(name in error for name in PARAMETERS)
    assert main(["--dataset", str(path), "--sim", "friction=0.5", "-n", "0", "--online-steps", "5",
                 "-f", str(tmp_path / "logs")]) == 2
    assert "Pendulum-v1 (classic engine) cannot change friction" in capsys.readouterr().err


# Batches, the dynamics-ratio samples and the run artefacts, on buffers whose every row is known.


def filled(real_first: list[float], sim_first: list[float], env=None, **kwargs) -> H2O:
    """H2O whose buffer holds one real row per value of ``real_first``, then one sim row per value of ``sim_first``:
    a row of value v has ``s = (v, v + 1, v + 2)``, ``a = v / 100`` and ``s' = s + 0.5``."""
    model = H2O("MlpPolicy", env if env is not None else sim_env(), seed=0, **{**TINY, **kwargs})
    model.set_logger(configure(None, []))
    buffer = model.replay_buffer
    for i, values in enumerate((real_first, sim_first)):
        for v in values:
            s = np.array([[v, v + 1, v + 2]], dtype=np.float32)
            buffer.add(s, s + 0.5, np.array([[v / 100]], dtype=np.float32), np.zeros(1), np.zeros(1), [{}])
        if i == 0 and real_first:
            buffer.set_real_size(len(real_first))
    return model


def row_values(observations) -> np.ndarray:
    """The value v of each row of raw observations ``(v, v + 1, v + 2)``, checking the row's form."""
    observations = np.asarray(observations, dtype=np.float64)
    np.testing.assert_allclose(observations[:, 1:], observations[:, :1] + [1.0, 2.0], atol=1e-5)
    return observations[:, 0]


def assert_rows_in(values: np.ndarray, allowed: list[float]) -> None:
    assert all(np.isclose(v, allowed, atol=1e-5).any() for v in values), (values, allowed)


def test_each_batch_takes_its_sim_share_from_the_sim_rows_and_the_rest_from_the_real_rows():
    real_rows, sim_rows = [0.0, 1.0, 2.0, 3.0], [10.0, 11.0, 12.0]
    model = filled(real_rows, [], batch_size=4)
    real, sim = model._sample(4)  # no sim transition yet: the whole batch is real
    assert sim is None and len(real.observations) == 4
    assert_rows_in(row_values(real.observations), real_rows)
    model = filled(real_rows, sim_rows, batch_size=4)
    # n_sim = round(4 * sim_ratio), kept in [1, 3]: every batch holds a real and a sim transition.
    for sim_ratio, n_sim in ((0.1, 1), (0.3, 1), (0.5, 2), (0.7, 3), (0.9, 3)):
        model.sim_ratio = sim_ratio
        real, sim = model._sample(4)
        assert (len(real.observations), len(sim.observations)) == (4 - n_sim, n_sim), sim_ratio
        assert_rows_in(row_values(real.observations), real_rows)
        assert_rows_in(row_values(sim.observations), sim_rows)
        np.testing.assert_allclose(sim.actions.numpy().ravel(), row_values(sim.observations) / 100, rtol=1e-5)


def test_training_without_real_rows_says_exactly_what_to_do():
    import re

    model = filled([], [5.0, 6.0])
    message = ("H2O's real data is an offline dataset: pass dataset=... to the constructor or call "
               "load_offline_data(...) first.")
    with pytest.raises(Exception, match=f"^{re.escape(message)}$"):
        model._sample(4)


def vec_normalized_model() -> tuple[H2O, np.ndarray, np.ndarray]:
    from stable_baselines3.common.vec_env import VecNormalize

    env = VecNormalize(sim_env(), training=False)
    mean, var = np.array([1.0, 2.0, 3.0]), np.array([4.0, 9.0, 16.0])
    env.obs_rms.mean, env.obs_rms.var = mean.copy(), var.copy()
    return filled([0.0, 1.0, 2.0], [5.0, 6.0], env=env, discriminator_batch_size=3, batch_size=4), mean, var


def normalized_rows(values: list[float], mean: np.ndarray, var: np.ndarray, offset: float = 0.0) -> np.ndarray:
    """VecNormalize's ``(x - mean) / sqrt(var + 1e-8)`` of the rows of these values (all inside the clip)."""
    raw = np.array([[v, v + 1, v + 2] for v in values]) + offset
    return (raw - mean) / np.sqrt(var + 1e-8)


def assert_normalized(batch: th.Tensor, rows: np.ndarray) -> None:
    """Every row of ``batch`` is one of ``rows``."""
    for row in batch.numpy():
        assert np.abs(rows - row).max(axis=1).min() < 1e-5, (row, rows)


def test_with_vec_normalize_every_batch_is_normalized_as_the_policy_sees_observations(monkeypatch):
    model, mean, var = vec_normalized_model()
    real, sim = model._sample(4)
    for batch, values in ((real, [0.0, 1.0, 2.0]), (sim, [5.0, 6.0])):
        assert_normalized(batch.observations, normalized_rows(values, mean, var))
        assert_normalized(batch.next_observations, normalized_rows(values, mean, var, 0.5))
    seen = []
    monkeypatch.setattr(model, "discriminator_step", lambda real, sim: seen.append((real, sim)) or (th.zeros(()),) * 2)
    model.train_discriminators()
    (real, sim), = seen
    for (s, a, s2), values in ((real, [0.0, 1.0, 2.0]), (sim, [5.0, 6.0])):
        assert len(s) == 3
        assert_normalized(s, normalized_rows(values, mean, var))
        assert_normalized(s2, normalized_rows(values, mean, var, 0.5))
        assert_rows_in(a.numpy().ravel(), [v / 100 for v in values])  # actions are stored as they are
    # While only real rows are stored, too.
    model.replay_buffer.pos = model.replay_buffer.real_size
    real, sim = model._sample(4)
    assert sim is None
    assert_normalized(real.observations, normalized_rows([0.0, 1.0, 2.0], mean, var))
    assert_normalized(real.next_observations, normalized_rows([0.0, 1.0, 2.0], mean, var, 0.5))


def test_dynamics_ratio_samples_normalize_like_the_discriminators_inputs(monkeypatch):
    model, mean, var = vec_normalized_model()
    seen = []
    monkeypatch.setattr(model, "dynamics_log_ratio", lambda s, a, s2: seen.append((s, a, s2)) or th.zeros(len(s)))
    model.dynamics_ratios()
    for (s, a, s2), values in zip(seen, ([0.0, 1.0, 2.0], [5.0, 6.0]), strict=True):
        np.testing.assert_allclose(s.numpy(), normalized_rows(values, mean, var), rtol=1e-5)
        np.testing.assert_allclose(s2.numpy(), normalized_rows(values, mean, var, 0.5), rtol=1e-5)
        np.testing.assert_allclose(a.numpy().ravel(), np.array(values) / 100, rtol=1e-5)


def log_ratio_of_rows(seen: list | None = None):
    """A stand-in for the discriminators: ``log P_real/P_sim`` of a row of value v is v."""
    def log_ratio(s, a, s2):
        if seen is not None:
            seen.append((s, a, s2))
        return s[:, 0].clone()

    return log_ratio


REAL_ROWS = [-14.0, -2.0, 0.5, 1.0, 3.0, -0.25, -6.0, 0.125, -1.0, 2.5]  # exact in float32
SIM_ROWS = [-20.0, -1.0, 0.375, 2.0, -4.0]


def test_dynamics_ratios_evaluate_every_row_of_each_region_once_or_a_seeded_subset(monkeypatch):
    model = filled(REAL_ROWS, SIM_ROWS)
    seen = []
    monkeypatch.setattr(model, "dynamics_log_ratio", log_ratio_of_rows(seen))
    ratios = model.dynamics_ratios()
    assert list(ratios) == ["real", "sim"]
    np.testing.assert_array_equal(ratios["real"], REAL_ROWS)  # in row order, no row twice, no sim row
    np.testing.assert_array_equal(ratios["sim"], SIM_ROWS)
    assert ratios["real"].dtype == np.float64 and ratios["sim"].dtype == np.float64
    for s, a, s2 in seen:  # observations, actions and next observations of the same rows
        np.testing.assert_allclose(a.numpy().ravel(), s[:, 0].numpy() / 100, rtol=1e-5)
        np.testing.assert_allclose(s2.numpy(), s.numpy() + 0.5)
    # At most n rows per region, drawn without replacement by a generator of their own seeded with 0.
    subset = model.dynamics_ratios(n=4)
    state = np.random.get_state()[1].copy()
    for name, rows in (("real", REAL_ROWS), ("sim", SIM_ROWS)):
        assert len(subset[name]) == 4 and len(set(subset[name])) == 4 and set(subset[name]) <= set(rows)
        assert [rows.index(v) for v in subset[name]] == sorted(rows.index(v) for v in subset[name])
        np.testing.assert_array_equal(model.dynamics_ratios(n=4)[name], subset[name])
        np.testing.assert_array_equal(model.dynamics_ratios(n=4, seed=0)[name], subset[name])
    assert any(not np.array_equal(model.dynamics_ratios(n=4, seed=1)[k], subset[k]) for k in subset)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # training's random stream untouched


def test_dynamics_ratios_of_an_empty_region_are_empty_and_go_to_the_models_device(monkeypatch):
    for real_rows, sim_rows in (([], SIM_ROWS), (REAL_ROWS, [])):
        model = filled(real_rows, sim_rows)
        monkeypatch.setattr(model, "dynamics_log_ratio", log_ratio_of_rows())
        ratios = model.dynamics_ratios()
        assert list(ratios) == ["real", "sim"]
        for name, rows in (("real", real_rows), ("sim", sim_rows)):
            assert isinstance(ratios[name], np.ndarray) and ratios[name].dtype == np.float64
            np.testing.assert_array_equal(ratios[name], rows)
    devices = []
    model.device = th.device("meta")  # where the discriminators live; nothing is computed there
    monkeypatch.setattr(model, "dynamics_log_ratio",
                        lambda *x: devices.extend(t.device for t in x) or th.zeros(len(x[0])))
    model.dynamics_ratios()
    assert devices == [th.device("meta")] * 3


def test_dynamics_ratios_take_at_most_5000_rows_per_region_by_default(monkeypatch):
    model = H2O("MlpPolicy", sim_env(), seed=0, **{**TINY, "buffer_size": 5_010})
    model.replay_buffer.pos = 5_002  # zero rows, enough of them
    model.replay_buffer.set_real_size(5_002)
    monkeypatch.setattr(model, "dynamics_log_ratio", lambda s, a, s2: th.zeros(len(s)))
    ratios = model.dynamics_ratios()
    assert (len(ratios["real"]), len(ratios["sim"])) == (5_000, 0)


def test_run_artifacts_summarise_save_and_plot_the_learned_ratio(monkeypatch, tmp_path):
    import matplotlib

    model = filled(REAL_ROWS, SIM_ROWS)
    monkeypatch.setattr(model, "dynamics_log_ratio", log_ratio_of_rows())
    figures = recorded_figures(monkeypatch)
    monkeypatch.setitem(matplotlib.rcParams, "figure.dpi", 72.0)  # a user's matplotlibrc leaves the PNG as it is
    monkeypatch.setitem(matplotlib.rcParams, "savefig.dpi", "figure")
    summary = model.write_run_artifacts(str(tmp_path))
    real, sim = np.array(REAL_ROWS), np.array(SIM_ROWS)
    assert summary == {"dynamics_ratio": {
        "plot": "dynamics_ratio.png",
        "n_real": 10, "real_mean": pytest.approx(np.exp(real).mean(), rel=1e-12),
        "real_clipped_mean": pytest.approx(np.clip(np.exp(real), 1e-5, 1).mean(), rel=1e-12),
        "n_sim": 5, "sim_mean": pytest.approx(np.exp(sim).mean(), rel=1e-12),
        "sim_clipped_mean": pytest.approx(np.clip(np.exp(sim), 1e-5, 1).mean(), rel=1e-12),  # e^-20 clipped up
    }}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dynamics_ratio.npz", "dynamics_ratio.png"]
    with np.load(tmp_path / "dynamics_ratio.npz") as samples:
        assert sorted(samples) == ["real", "sim"]
        np.testing.assert_array_equal(samples["real"], real)
        np.testing.assert_array_equal(samples["sim"], sim)
    assert png_size(tmp_path / "dynamics_ratio.png") == (640, 400)  # 6.4 x 4 inches at 100 dpi

    (figure, axis), = figures
    assert tuple(figure.get_size_inches()) == (6.4, 4.0)
    assert axis.get_title() == "H2O's learned dynamics ratio"
    assert axis.get_xlabel() == "log10 P_real(s'|s,a) / P_sim(s'|s,a)  (dashed: Bellman-weight clip)"
    assert axis.get_ylabel() == "density"
    # Two histograms of log10 ratios over 49 common bins from the smallest to the largest value, normalised.
    edges = np.linspace(-20.0 - 1e-6, 3.0 + 1e-6, 50) / math.log(10)
    assert len(axis.containers) == 2
    for container, values in zip(axis.containers, (real, sim), strict=True):
        bars = container.patches
        np.testing.assert_allclose([bar.get_x() for bar in bars], edges[:-1], rtol=0, atol=1e-12)
        np.testing.assert_allclose(bars[-1].get_x() + bars[-1].get_width(), edges[-1], rtol=0, atol=1e-12)
        heights = np.histogram(values / math.log(10), bins=edges, density=True)[0]
        np.testing.assert_allclose([bar.get_height() for bar in bars], heights, rtol=1e-9)
        assert all(0 < bar.get_alpha() < 1 for bar in bars)  # overlapping histograms stay visible
    assert [text.get_text() for text in axis.get_legend().get_texts()] == [
        f"real (10), mean ratio {np.exp(real).mean():.3g}", f"sim (5), mean ratio {np.exp(sim).mean():.3g}"]
    # The Bellman-weight clip, as thin dashed black lines at log10 1e-5 and log10 1.
    lines = axis.get_lines()
    assert [line.get_xdata()[0] for line in lines] == [-5.0, 0.0]
    assert all(line.get_linestyle() == "--" and line.get_color() == "black" and line.get_linewidth() < 1
               for line in lines)


def test_run_artifacts_without_sim_rows_and_without_real_data(monkeypatch, tmp_path):
    model = filled(REAL_ROWS, [])
    monkeypatch.setattr(model, "dynamics_log_ratio", log_ratio_of_rows())
    figures = recorded_figures(monkeypatch)
    summary = model.write_run_artifacts(str(tmp_path))["dynamics_ratio"]
    assert summary["n_sim"] == 0 and summary["sim_mean"] is None and summary["sim_clipped_mean"] is None
    assert summary["n_real"] == 10 and summary["real_mean"] == pytest.approx(np.exp(REAL_ROWS).mean())
    (_, axis), = figures
    assert len(axis.containers) == 1 and axis.get_legend().get_texts()[0].get_text().startswith("real (10)")
    for model in (filled([], SIM_ROWS), filled(REAL_ROWS, SIM_ROWS)):
        if model.replay_buffer.real_size:
            model.replay_buffer = None  # e.g. a model built without its networks
        monkeypatch.setattr(model, "dynamics_log_ratio", log_ratio_of_rows())
        empty = tmp_path / f"empty{len(list(tmp_path.iterdir()))}"
        empty.mkdir()
        assert model.write_run_artifacts(str(empty)) == {} and not list(empty.iterdir())


def test_loading_a_buffer_without_regions_is_refused_naming_it(tmp_path):
    import re

    from stable_baselines3.common.buffers import ReplayBuffer
    from stable_baselines3.common.save_util import save_to_pkl

    model = filled([0.0], [])
    plain = ReplayBuffer(10, model.observation_space, model.action_space, device="cpu")
    path = tmp_path / "plain.pkl"
    save_to_pkl(path, plain)
    message = f"H2O needs a RealSimReplayBuffer (real and sim regions); {path} holds a ReplayBuffer."
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        model.load_replay_buffer(path)


# The command line's flags reaching the runner.


def test_cli_hands_the_runner_its_flags_the_sim_variant_and_the_command(monkeypatch, tmp_path):
    import rl.runner

    configs = []
    monkeypatch.setattr(rl.runner, "train", lambda config: configs.append(config))
    argv = ["--env", "Hopper-v4", "--sim", "gravity=2.0", "--dataset", "hopper.hdf5", "-n", "0", "--online-steps",
            "7", "-f", str(tmp_path), "-params", "batch_size:32"]
    monkeypatch.setattr("sys.argv", ["algos/h2o.py", "--dataset", "w.hdf5", "--env", "Walker2d-v4", "--seed", "3"])
    assert main(argv) == 0
    assert main(None) == 0  # the flags of the process
    config, from_process = configs
    assert config.algo == "h2o" and config.env == "Hopper-v4" and config.dataset == "hopper.hdf5"
    assert config.offline_steps == 0 and config.n_timesteps == 7 and config.hyperparams == {"batch_size": 32}
    assert config.extra_record["sim"] == {"spec": "gravity=2", "parameters": {"gravity": 2.0}}
    assert config.env_wrapper.keywords == {"spec": {"gravity": 2.0}} and config.env_wrapper.func is SimVariant
    assert config.command == ("python -m algos.h2o --env Hopper-v4 --sim gravity=2.0 --dataset hopper.hdf5 -n 0 "
                              f"--online-steps 7 -f {tmp_path} -params batch_size:32")
    assert from_process.env == "Walker2d-v4" and from_process.env_wrapper is None
    assert from_process.extra_record["sim"] == {"spec": None, "parameters": {}}
    assert from_process.command == "python -m algos.h2o --dataset w.hdf5 --env Walker2d-v4 --seed 3"


def test_cli_help_describes_the_sim_flag(capsys):
    from sim2real import describe_parameters

    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--sim SPEC" in text
    assert "the simulator: the env with these dynamics changes (default: the env as it is)." in text
    assert " ".join(describe_parameters().split()) in text
