"""OPPO (algos.oppo): the loss terms and the z* update against hand computations, the data and labels, the SB3
contract (predict with history, save/load, parameters, seeding), the shared runner's resume, and bad input.

Networks are tiny (width 8, one layer, z of size 2) and datasets are a few hundred steps of Pendulum, so the whole
file runs in well under a minute on one core.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch as th
import torch.nn.functional as F
from offline_data import random_dataset, write_hdf5
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

import algos.oppo as oppo_module
from algos.oppo import OPPO, warmup_factor
from algos.oppo_data import DatasetTensors, OPPODataError, episode_index, scripted_comparisons
from algos.oppo_losses import encoder_policy_loss, hindsight_matching_loss, norm_loss, preference_triplet_loss
from rl.checkpoint import list_checkpoints
from rl.cli import main
from rl.datasets import OfflineDataset
from rl.offline import DatasetMismatchError, NoOfflineDataError, episode_returns

ENV_ID = "Pendulum-v1"
TINY_POLICY = dict(z_dim=2, hidden_size=8, n_layer=1, n_head=1, encoder_layers=1, encoder_heads=1)
TINY = dict(n_comparisons=40, segment_length=5, context_length=5, batch_size=8, warmup_steps=5,
            policy_kwargs=TINY_POLICY, device="cpu")
TINY_PARAMS = ["n_comparisons:40", "segment_length:5", "context_length:5", "batch_size:8", "warmup_steps:5",
               "policy_kwargs:dict(z_dim=2,hidden_size=8,n_layer=1,n_head=1,encoder_layers=1,encoder_heads=1)"]


@pytest.fixture(scope="module")
def dataset() -> OfflineDataset:
    return random_dataset(ENV_ID, n=400)  # four 100-step episodes (time limits, found by the broken next rows)


def make(dataset, seed: int = 0, env=None, **kwargs) -> OPPO:
    env = env if env is not None else make_vec_env(ENV_ID, n_envs=1, seed=seed)
    return OPPO("MlpPolicy", env, dataset=dataset, seed=seed, **{**TINY, **kwargs})


def parameters(model: OPPO) -> dict[str, np.ndarray]:
    return {key: value.detach().cpu().numpy().copy() for key, value in model.policy.state_dict().items()}


def rollout_actions(model: OPPO, observations: np.ndarray) -> np.ndarray:
    """Actions along a sequence of observations of one env, the history passed back as SB3's recurrent state."""
    state, actions = None, []
    for t, obs in enumerate(observations):
        action, state = model.predict(obs[None], state=state, episode_start=np.array([t == 0]))
        actions.append(action[0])
    return np.array(actions)


# ----- loss terms by hand --------------------------------------------------------------------------------------


def test_triplet_loss_by_hand():
    # Anchor z* at the origin; pair 1: preferred at distance 5, other at 1 -> 5 - 1 + 1 = 5.
    # Pair 2: preferred at distance 2, other at 1.5 -> 2 - 1.5 + 1 = 1.5. Mean 3.25.
    anchor = th.zeros(2)
    positive = th.tensor([[3.0, 4.0], [0.0, 2.0]])
    negative = th.tensor([[0.0, 1.0], [0.0, 1.5]])
    assert preference_triplet_loss(anchor, positive, negative).item() == pytest.approx(3.25, abs=1e-5)
    # Swapping preferred and other: pair 1 inactive (1 - 5 + 1 < 0), pair 2 gives 1.5 - 2 + 1 = 0.5. Mean 0.25.
    assert preference_triplet_loss(anchor, negative, positive).item() == pytest.approx(0.25, abs=1e-5)
    # Without the margin the pairs give 4 and 0.5: the margin is 1, not 0.
    assert preference_triplet_loss(anchor, positive, negative, margin=0.0).item() == pytest.approx(2.25, abs=1e-5)
    # The authors' call (torch's TripletMarginLoss, p=2, margin 1) gives the same number.
    expected = F.triplet_margin_loss(anchor.expand(2, 2), positive, negative, margin=1.0, p=2)
    assert preference_triplet_loss(anchor, positive, negative).item() == pytest.approx(expected.item(), abs=1e-6)


def test_norm_loss_by_hand():
    # Norms 5 and 0.5: ((5 - 1)^2 + (0.5 - 1)^2) / 2 = (16 + 0.25) / 2.
    assert norm_loss(th.tensor([[3.0, 4.0], [0.0, 0.5]])).item() == pytest.approx(8.125)
    assert norm_loss(th.tensor([[0.6, 0.8]])).item() == pytest.approx(0.0, abs=1e-12)


def test_hindsight_matching_loss_skips_padding():
    predicted = th.tensor([[[100.0, -100.0], [1.0, 0.0]]])  # the first step is padding: its error is ignored
    target = th.tensor([[[0.0, 0.0], [0.0, 2.0]]])
    mask = th.tensor([[0.0, 1.0]])
    # The real step's errors are 1 and -2: (1 + 4) / 2 action dimensions.
    assert hindsight_matching_loss(predicted, target, mask).item() == pytest.approx(2.5)


def test_encoder_and_policy_minimise_recon_plus_weighted_triplet_and_norm():
    loss = encoder_policy_loss(th.tensor(1.0), th.tensor(2.0), th.tensor(3.0), preference_weight=0.1, norm_weight=0.1)
    assert loss.item() == pytest.approx(1.0 + 0.2 + 0.3)
    loss = encoder_policy_loss(th.tensor(1.0), th.tensor(2.0), th.tensor(3.0), preference_weight=0.5, norm_weight=0.0)
    assert loss.item() == pytest.approx(2.0)


def test_policy_learning_rate_warms_up_linearly_as_the_authors_lambda_lr():
    assert warmup_factor(0, 10_000) == pytest.approx(1e-4)
    assert warmup_factor(4_999, 10_000) == pytest.approx(0.5)
    assert warmup_factor(9_999, 10_000) == 1.0 and warmup_factor(50_000, 10_000) == 1.0
    assert warmup_factor(0, 0) == 1.0


def test_z_star_update_by_hand(dataset):
    model = make(dataset)
    with th.no_grad():
        model.policy.z_star.copy_(th.tensor([1.0, 0.0]))
    preferred = th.tensor([[3.0, 4.0], [0.0, 2.0]])
    other = th.tensor([[0.0, 1.0], [0.0, 1.5]])
    before = parameters(model)
    loss = model.update_z_star(preferred, other)
    # z* = (1, 0): pair 1: sqrt(4 + 16) - sqrt(1 + 1) + 1; pair 2: sqrt(1 + 4) - sqrt(1 + 2.25) + 1; both active.
    assert loss.item() == pytest.approx(((math.sqrt(20) - math.sqrt(2) + 1) + (math.sqrt(5) - math.sqrt(3.25) + 1)) / 2,
                                        abs=1e-5)
    # Gradient: mean of (z* - p) / |z* - p| - (z* - n) / |z* - n| over the pairs:
    # pair 1: (-2, -4) / sqrt(20) - (1, -1) / sqrt(2) = (-1.154, -0.187); pair 2: (1, -2) / sqrt(5) - (1, -1.5) /
    # sqrt(3.25) = (-0.107, -0.062). Both coordinates negative, so Adam's first step (m / sqrt(v) = sign of the
    # gradient) moves each by +lr = +1e-3, after AdamW's decay z* (1 - lr * weight_decay).
    z_star = model.policy.z_star.detach().numpy()
    np.testing.assert_allclose(z_star, [1.0 * (1 - 1e-3 * 1e-4) + 1e-3, 0.0 + 1e-3], atol=1e-7)
    # Only z* moved: the encoder and the policy are untouched by z*'s update.
    after = parameters(model)
    assert [k for k in before if not np.array_equal(before[k], after[k])] == ["z_star"]


def test_z_star_moves_towards_the_preferred_side_only(dataset):
    """With preferred and other swapped only pair 2 is active, and its gradient has the opposite sign."""
    model = make(dataset)
    with th.no_grad():
        model.policy.z_star.copy_(th.tensor([1.0, 0.0]))
    model.update_z_star(th.tensor([[0.0, 1.0], [0.0, 1.5]]), th.tensor([[3.0, 4.0], [0.0, 2.0]]))
    np.testing.assert_allclose(model.policy.z_star.detach().numpy(), [1.0 * (1 - 1e-7) - 1e-3, -1e-3], atol=1e-7)


def test_one_update_moves_z_star_only_through_its_own_step(dataset, monkeypatch):
    """The encoder's triplet loss uses z* detached: with z*'s own step disabled, an update leaves z* as it was,
    and the encoder and the policy minimise recon + 0.1 triplet + 0.1 norm."""
    model = make(dataset)
    seen = {}

    def spy(recon, triplet, norm, *, preference_weight, norm_weight):
        seen.update(preference_weight=preference_weight, norm_weight=norm_weight, triplet=triplet.item())
        return encoder_policy_loss(recon, triplet, norm, preference_weight=preference_weight, norm_weight=norm_weight)

    monkeypatch.setattr(oppo_module, "encoder_policy_loss", spy)
    monkeypatch.setattr(OPPO, "update_z_star", lambda self, a, b: th.zeros(()))
    z_star = model.policy.z_star.detach().clone()
    before = parameters(model)
    model.learn(1)
    assert th.equal(model.policy.z_star.detach(), z_star)
    after = parameters(model)
    assert any(not np.array_equal(before[k], after[k]) for k in before if k.startswith("encoder."))
    assert any(not np.array_equal(before[k], after[k]) for k in before if k.startswith("actor."))
    assert seen["preference_weight"] == 0.1 and seen["norm_weight"] == 0.1 and seen["triplet"] > 0


# ----- data and labels -----------------------------------------------------------------------------------------


def _hand_dataset() -> OfflineDataset:
    """Ten rows: an episode of 4 steps ending in a terminal, one of 3 whose end shows only as a break between
    next_observations and the next row (a dropped time-limit row), and one of 3."""
    observations = np.arange(10, dtype=np.float32)[:, None]
    next_observations = observations + 1
    next_observations[6] = 99.0  # row 7 does not continue row 6
    terminals = np.zeros(10, dtype=bool)
    terminals[3] = True
    rewards = np.array([0, 1, 2, 3, 10, 10, 10, 5, 5, 5], dtype=np.float32)
    return OfflineDataset(name="hand", env_id=ENV_ID, observations=observations, actions=observations * 0.1,
                          next_observations=next_observations, rewards=rewards, terminals=terminals,
                          timeouts=np.zeros(10, dtype=bool))


def test_episodes_end_at_terminals_and_breaks():
    episodes = episode_index(_hand_dataset())
    assert episodes.starts.tolist() == [0, 4, 7] and episodes.lengths.tolist() == [4, 3, 3]
    assert episodes.row_step.tolist() == [0, 1, 2, 3, 0, 1, 2, 0, 1, 2]
    assert episodes.row_end.tolist() == [4, 4, 4, 4, 7, 7, 7, 10, 10, 10]
    # One rule with the offline core: its episode returns are the sums over these episodes.
    data = _hand_dataset()
    assert episode_returns(data).tolist() == [float(data.rewards[s:s + n].sum())
                                              for s, n in zip(episodes.starts, episodes.lengths)] == [6, 30, 15]


def test_windows_are_left_padded_at_an_episodes_end():
    data = _hand_dataset()
    tensors = DatasetTensors(data.observations, data.actions, episode_index(data), th.device("cpu"))
    batch = tensors.windows(np.array([8, 4]), context_length=3)
    assert batch.mask.tolist() == [[0, 1, 1], [1, 1, 1]]
    assert batch.observations[..., 0].tolist() == [[0, 8, 9], [4, 5, 6]]
    assert batch.timesteps.tolist() == [[0, 1, 2], [0, 1, 2]]


def test_scripted_labels_prefer_the_larger_true_return_and_count_every_comparison():
    data = _hand_dataset()
    pairs = scripted_comparisons(data, episode_index(data), n_pairs=30, segment_length=2, seed=0)
    assert pairs.comparisons_used == 30 and pairs.rows.shape == (30, 2)
    for (a, b), label in zip(pairs.rows, pairs.labels):
        ra, rb = data.rewards[a:a + 2].sum(), data.rewards[b:b + 2].sum()
        assert label == (1.0 if ra > rb else 0.0 if ra < rb else 0.5)
        assert episode_index(data).row_end[a] >= a + 2  # a segment never crosses an episode's end
    decided = pairs.decided  # (preferred, other): the preferred segment has the larger return
    assert all(data.rewards[p:p + 2].sum() > data.rewards[o:o + 2].sum() for p, o in decided)
    assert len(decided) + pairs.n_tied == 30
    again = scripted_comparisons(data, episode_index(data), n_pairs=30, segment_length=2, seed=0)
    other = scripted_comparisons(data, episode_index(data), n_pairs=30, segment_length=2, seed=1)
    assert again.digest() == pairs.digest() != other.digest()
    queue = pairs.queue(data, episode_index(data))
    assert queue.comparisons_used == 30 and len(queue) == 30
    np.testing.assert_array_equal(queue.labels(), pairs.labels)


# ----- the SB3 contract ----------------------------------------------------------------------------------------


def test_predict_keeps_each_envs_history_and_conditions_on_z_star(dataset):
    model = make(dataset)
    model.learn(5)
    observations = dataset.observations[:6]
    two_envs = np.stack([observations, observations[::-1]], axis=1)  # (T, 2, obs)
    state = None
    for t in range(6):
        actions, state = model.predict(two_envs[t], state=state, episode_start=np.array([t == 0, t == 0]))
    obs_history, _, steps, mask = state
    np.testing.assert_array_equal(obs_history[0], observations[1:6])  # the last K = 5 steps, newest last
    assert steps[0].tolist() == [1, 2, 3, 4, 5] and mask.min() == 1
    np.testing.assert_allclose(actions[0], rollout_actions(model, observations)[-1], atol=1e-6)
    # An env that starts an episode forgets its history; the other keeps it.
    restarted, new_state = model.predict(two_envs[0], state=state, episode_start=np.array([True, False]))
    assert new_state[3][0].tolist() == [0, 0, 0, 0, 1] and new_state[2][1, -1] == 6
    np.testing.assert_allclose(restarted[0], rollout_actions(model, observations[:1])[0], atol=1e-6)
    # Without a state the history starts at the given observation.
    first = rollout_actions(model, observations[:1])[0]
    np.testing.assert_allclose(model.predict(observations[0])[0], first, atol=1e-6)
    # The policy is conditioned on z*.
    with th.no_grad():
        model.policy.z_star.add_(3.0)
    assert not np.allclose(rollout_actions(model, observations), model.predict(observations[:1])[0])
    low, high = model.action_space.low, model.action_space.high
    assert np.all(actions >= low) and np.all(actions <= high)


def test_evaluate_policy_on_several_envs(dataset):
    model = make(dataset)
    model.learn(3)
    env = make_vec_env(ENV_ID, n_envs=2, seed=1)
    rewards, lengths = evaluate_policy(model, env, n_eval_episodes=2, return_episode_rewards=True)
    assert len(rewards) == 2 and lengths == [200, 200]


def test_save_load_round_trip_keeps_networks_z_star_labels_and_every_optimizer(dataset, tmp_path):
    model = make(dataset)
    model.learn(10)
    model.save(tmp_path / "model.zip")
    loaded = OPPO.load(tmp_path / "model.zip", device="cpu", _dataset=dataset)
    saved, restored = parameters(model), parameters(loaded)
    assert saved.keys() == restored.keys() and "z_star" in saved and "obs_mean" in saved
    for key in saved:
        np.testing.assert_array_equal(saved[key], restored[key], err_msg=key)
    for name in ("policy.actor.optimizer", "policy.encoder.optimizer", "policy.z_star_optimizer"):
        ours, theirs = model.get_parameters()[name], loaded.get_parameters()[name]
        assert ours["state"], f"{name} has no Adam moments"
        for index, state in ours["state"].items():
            for field, value in state.items():
                restored = np.asarray(theirs["state"][index][field])
                np.testing.assert_array_equal(np.asarray(value), restored, err_msg=name)
        assert ours["param_groups"][0]["lr"] == theirs["param_groups"][0]["lr"]
    np.testing.assert_array_equal(loaded.labelled_pairs.rows, model.labelled_pairs.rows)
    np.testing.assert_array_equal(loaded.labelled_pairs.labels, model.labelled_pairs.labels)
    assert loaded.offline_updates == 10 and loaded._n_updates == 10
    observations = dataset.observations[:12]
    np.testing.assert_array_equal(rollout_actions(model, observations), rollout_actions(loaded, observations))
    # Learning continues identically: the same random numbers give the same next updates.
    for continuing in (model, loaded):
        np.random.seed(5)
        th.manual_seed(5)
        continuing.learn(5, reset_num_timesteps=False)
    for key, value in parameters(model).items():
        np.testing.assert_array_equal(value, parameters(loaded)[key], err_msg=key)


def test_set_parameters_and_loading_without_env_or_data(dataset, tmp_path):
    model = make(dataset)
    model.learn(4)
    other = make(dataset, seed=1)
    other.set_parameters(model.get_parameters())
    observations = dataset.observations[:5]
    np.testing.assert_array_equal(rollout_actions(other, observations), rollout_actions(model, observations))
    with pytest.raises(ValueError, match="do not match"):  # SB3's check: every network and optimizer, or none
        other.set_parameters({"policy": model.get_parameters()["policy"]}, exact_match=True)
    model.save(tmp_path / "model.zip")
    with pytest.warns(UserWarning, match="could not be read"):
        bare = OPPO.load(tmp_path / "model.zip", device="cpu")  # the in-memory dataset's spec is not a file
    np.testing.assert_array_equal(rollout_actions(bare, observations), rollout_actions(model, observations))
    with pytest.raises(NoOfflineDataError, match="load_offline_data"):
        bare.learn(1)
    bare.load_offline_data(dataset)  # the same data: its saved labels are kept
    np.testing.assert_array_equal(bare.labelled_pairs.rows, model.labelled_pairs.rows)
    bare.learn(2, reset_num_timesteps=False)
    assert bare.num_timesteps == 6
    bare.n_comparisons = 20  # e.g. changed on resume (--allow-changed-inputs): the pairs are drawn again
    bare.load_offline_data(dataset)
    assert bare.labelled_pairs.comparisons_used == 20


def test_same_seed_same_training_other_seed_other_labels(dataset):
    runs = [make(dataset, seed=seed).learn(15) for seed in (3, 3, 4)]
    first, same, other = (parameters(run) for run in runs)
    for key in first:
        np.testing.assert_array_equal(first[key], same[key], err_msg=key)
    assert runs[0].labelled_pairs.digest() == runs[1].labelled_pairs.digest() != runs[2].labelled_pairs.digest()
    assert any(not np.array_equal(first[k], other[k]) for k in first)


def test_dataset_of_another_env_is_refused():
    hopper = random_dataset("Hopper-v4", n=200, max_episode_steps=50)
    with pytest.raises(DatasetMismatchError, match="Hopper-v4"):
        make(hopper)


# ----- the runner: run folder, record, resume ------------------------------------------------------------------


def _cli(path, log_folder, *extra):
    return main("oppo", ["--dataset", str(path), "-f", str(log_folder), "--seed", "2", "--eval-freq", "10",
                         "--eval-episodes", "1", "--final-eval-episodes", "1", "--save-freq", "10", "--no-progress",
                         "--verbose", "0", "-params", *TINY_PARAMS, *extra])


def test_cli_run_records_comparisons_and_resumes_bit_identically(dataset, tmp_path):
    path = write_hdf5(dataset, tmp_path / "tiny.hdf5")
    assert _cli(path, tmp_path / "logs", "-n", "30") == 0
    run_dir = tmp_path / "logs" / "oppo" / f"{ENV_ID}_1"
    record = json.loads((run_dir / "run.json").read_text())
    assert record["offline_steps"] == 30 and record["num_timesteps"] == 30 and record["online_steps"] == 0
    assert record["comparisons_used"] == 40 and record["segment_length"] == 5 and record["labels_digest"]
    assert record["final_normalized_score"] is not None
    assert np.load(run_dir / "evaluations.npz")["timesteps"].tolist() == [10, 20, 30]
    # Kill the run after its checkpoint at step 10: drop the later checkpoint and the final record, then resume.
    checkpoints = list_checkpoints(run_dir / "checkpoints")
    assert [c.name for c in checkpoints] == ["step_000000000020", "step_000000000030"]
    reference = json.loads((run_dir / "run.json").read_text())
    shutil.rmtree(checkpoints[-1])
    (run_dir / "run.json").unlink()
    assert _cli(path, tmp_path / "logs", "-n", "30", "-i", str(run_dir)) == 0
    resumed = json.loads((run_dir / "run.json").read_text())
    assert resumed["resumed_from"].endswith("step_000000000020") and resumed["num_timesteps"] == 30
    assert resumed["final_evaluation"] == reference["final_evaluation"]
    assert resumed["z_star"] == reference["z_star"] and resumed["labels_digest"] == reference["labels_digest"]
    assert not (tmp_path / "logs" / "oppo" / f"{ENV_ID}_2").exists()


# ----- bad input: one line, exit 2, no run folder --------------------------------------------------------------


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, dataset) -> dict[str, str]:
    import h5py

    folder = tmp_path_factory.mktemp("oppo_inputs")
    short = random_dataset("Hopper-v4", n=200, max_episode_steps=10)  # episodes of at most 10 steps
    endless = random_dataset(ENV_ID, n=1200, max_episode_steps=5000)  # one 1200-step run, no episode end marked
    flat = dataclasses.replace(dataset, rewards=np.zeros(len(dataset), dtype=np.float32))  # every pair ties
    no_timeouts = folder / "no_timeouts.hdf5"
    with h5py.File(no_timeouts, "w") as handle:
        for key in ("observations", "actions", "rewards", "terminals"):
            handle[key] = getattr(dataset, key)
        handle.attrs["env_id"] = ENV_ID
    return {
        "good": str(write_hdf5(dataset, folder / "good.hdf5")),
        "short": str(write_hdf5(short, folder / "short.hdf5")),
        "endless": str(write_hdf5(endless, folder / "endless.hdf5")),
        "flat": str(write_hdf5(flat, folder / "flat.hdf5")),
        "hopper": str(write_hdf5(random_dataset("Hopper-v4", n=200, max_episode_steps=50), folder / "hopper.hdf5")),
        "no_timeouts": str(no_timeouts),
    }


BAD = [
    ("episodes shorter than a segment", "short", ["--env", "Hopper-v4"], "segment_length <= 10"),
    ("no episode ends marked", "endless", [], "max_ep_len >= 1199"),  # D4RL's rule drops the last row
    ("no timeouts field", "no_timeouts", [], "timeouts"),
    ("every pair ties", "flat", ["-params", "n_comparisons:5"], "all 5 labelled pairs tie"),
    ("dataset of another env", "hopper", ["--env", ENV_ID], "Hopper-v4"),
    ("no comparisons", "good", ["-params", "n_comparisons:0"], "n_comparisons must be an integer >= 1"),
    ("negative preference weight", "good", ["-params", "preference_weight:-0.1"], "preference_weight must be >= 0"),
    ("zero margin", "good", ["-params", "triplet_margin:0"], "triplet_margin must be > 0"),
    ("fractional batch", "good", ["-params", "batch_size:0.5"], "batch_size must be an integer >= 1"),
    ("segment longer than the embedding", "good", ["-params", "segment_length:30", "max_ep_len:20"],
     "must not exceed max_ep_len"),
    ("text for a number", "good", ["-params", "z_star_learning_rate:fast"], "z_star_learning_rate"),
    ("online steps", "good", ["--online-steps", "5"], "OPPO learns offline only"),
    ("several envs", "good", ["--n-envs", "2"], "n_envs must be 1 for OPPO"),
    ("vecnormalize", "good", ["-params", "normalize:True"], "do not wrap the env in VecNormalize"),
]


@pytest.mark.parametrize(("data", "argv", "expected"), [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_bad_input_is_one_line_exit_2_and_no_run_folder(data, argv, expected, bad_files, tmp_path, capsys):
    logs = tmp_path / "logs"
    code = main("oppo", ["--dataset", bad_files[data], "-n", "5", "-f", str(logs), "--no-progress", "--verbose", "0",
                         "--eval-freq", "-1", "--final-eval-episodes", "1", *argv])
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert expected in lines[0], lines[0]
    assert "Traceback" not in captured.err
    assert not [p for p in logs.rglob("*") if p.is_file()] if logs.exists() else True


def test_bad_data_raises_named_errors_from_python(dataset):
    with pytest.raises(OPPODataError, match="segment_length <= 10"):
        make(random_dataset("Hopper-v4", n=200, max_episode_steps=10), env=make_vec_env("Hopper-v4", n_envs=1),
             segment_length=20)
    with pytest.raises(ValueError, match="context_length must be an integer"):
        make(dataset, context_length=0)


# ----- the benchmark's learned-reward baseline -----------------------------------------------------------------


def test_benchmark_relabels_the_data_with_a_reward_learned_from_oppos_own_pairs(dataset, tmp_path):
    from algos.oppo_benchmark import BenchmarkConfig, plan_runs, relabel_with_bradley_terry
    from rl.datasets import load_dataset
    from rl.preferences import BradleyTerryRewardModel

    path = write_hdf5(dataset, tmp_path / "tiny.hdf5")
    config = BenchmarkConfig(out=str(tmp_path / "out"), work=str(tmp_path / "work"), datasets=(str(path),),
                             seeds=(3,), n_updates=10, n_comparisons=40, segment_length=5, bt_epochs=1)
    info = relabel_with_bradley_terry(config, str(path), 3)
    oppo = make(str(path), seed=3)  # the OPPO run of the same dataset and seed draws the same pairs
    assert info["labels_digest"] == oppo.labelled_pairs.digest() and info["comparisons_used"] == 40
    relabelled = load_dataset(info["hdf5"])
    reward_model = BradleyTerryRewardModel.load(tmp_path / "work" / "bt_reward" / "tiny_seed3" / "reward_model.pt")
    np.testing.assert_allclose(relabelled.rewards, reward_model.predict(relabelled.observations, relabelled.actions),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(relabelled.observations, dataset.observations[: len(relabelled)])
    assert relabelled.env_id == ENV_ID
    assert (relabelled.ref_min, relabelled.ref_max) == (dataset.ref_min, dataset.ref_max)
    made = Path(info["hdf5"]).stat().st_mtime_ns
    assert relabel_with_bradley_terry(config, str(path), 3) == info  # made once, then read back
    assert Path(info["hdf5"]).stat().st_mtime_ns == made
    specs = plan_runs(config, {(str(path), 3): info}, "python -m algos.oppo_benchmark ...")
    assert [(s.algo, s.dataset) for s in specs] == [("oppo", str(path)), ("iql", str(path)),
                                                    ("iql@bt_reward", info["hdf5"])]
    assert specs[0].hyperparams == {"n_comparisons": 40, "segment_length": 5}
