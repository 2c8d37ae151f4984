"""The policy zoo and the dataset maker: levels, caching, seeded policies, medium-replay from the buffer."""

from pathlib import Path

import numpy as np
import pytest

from rl import zoo
from rl.datasets import load_dataset
from rl.datasets.make import make

TINY = {"learning_starts": 100, "buffer_size": 2000, "policy_kwargs": {"net_arch": [16]}}


@pytest.fixture(scope="module")
def zoo_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("zoo")
    entry = zoo.train_policy("Hopper-v4", "medium", n_timesteps=1000, target=-1e9, eval_freq=300, eval_episodes=1,
                             hyperparams=TINY, progress=False, root=root)
    assert entry.reached and entry.n_timesteps == 300  # stopped at the first evaluation that reached the target
    return root


def test_level_targets():
    low, high = -20.272305, 3234.3  # D4RL's hopper references
    assert zoo.target_return("Hopper-v4", "medium") == pytest.approx(low + (high - low) / 3)
    assert zoo.target_return("Hopper-v4", "expert") == pytest.approx(high)
    assert zoo.target_return("HopperBulletEnv-v0", "medium", target=1500) == 1500
    with pytest.raises(zoo.ZooError, match="--target"):
        zoo.target_return("HopperBulletEnv-v0", "medium")
    with pytest.raises(zoo.ZooError, match="Unknown level"):
        zoo.target_return("Hopper-v4", "mediocre")


def test_entries_are_cached_and_listed(zoo_root):
    (entry,) = zoo.list_entries(zoo_root)
    assert (entry.env, entry.level, entry.algo) == ("Hopper-v4", "medium", "sac")
    assert entry.model_path.is_file() and (entry.model_path.parent / zoo.REPLAY_BUFFER_FILE).is_file()
    with pytest.raises(zoo.ZooError, match="python -m rl.zoo train --env Hopper-v4 --level expert"):
        zoo.get_entry("Hopper-v4", "expert", zoo_root)


def test_a_copied_entry_is_used_from_where_it_lies(zoo_root, tmp_path):
    """A teacher committed under results/ is a copy of its zoo folder: its entry must not point back home."""
    import shutil

    copied_root = tmp_path / "teachers"
    shutil.copytree(zoo_root / "Hopper-v4" / "medium", copied_root / "Hopper-v4" / "medium",
                    ignore=shutil.ignore_patterns("run", zoo.REPLAY_BUFFER_FILE))
    entry = zoo.get_entry("Hopper-v4", "medium", copied_root)
    assert entry.model_path == copied_root / "Hopper-v4" / "medium" / zoo.MODEL_FILE
    assert [e.folder for e in zoo.list_entries(copied_root)] == [entry.folder]
    policy = zoo.load_policy("Hopper-v4", "medium", deterministic=True, root=copied_root)
    assert policy(np.zeros(11)).shape == (3,)


def test_zoo_policy_is_reproducible_for_a_seed(zoo_root):
    obs = np.linspace(-1, 1, 11)
    first = [zoo.load_policy("Hopper-v4", "medium", seed=3, root=zoo_root)(obs) for _ in range(1)][0]
    again = zoo.load_policy("Hopper-v4", "medium", seed=3, root=zoo_root)(obs)
    np.testing.assert_array_equal(first, again)
    deterministic = zoo.load_policy("Hopper-v4", "medium", deterministic=True, root=zoo_root)
    np.testing.assert_array_equal(deterministic(obs), deterministic(obs))


def test_make_medium_and_medium_replay(zoo_root, tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    n = make("hopper-medium-v2", size=200, seed=1, progress=False, zoo_root=str(zoo_root))
    data = load_dataset("hopper-medium-v2")
    assert n >= 200 and data.env_id == "Hopper-v4" and data.ref_max == pytest.approx(3234.3)
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari2"))
    make("hopper-medium-v2", size=200, seed=1, progress=False, zoo_root=str(zoo_root))
    np.testing.assert_array_equal(load_dataset("hopper-medium-v2").actions, data.actions)  # same seed, same data

    n_replay = make("hopper-medium-replay-v2", progress=False, zoo_root=str(zoo_root))
    # Every stored transition of the zoo run up to medium, in order. SB3 stops training from the callback of
    # step 300, before that step's transition is stored, so the buffer holds 299.
    assert n_replay == 299
    replay = load_dataset("hopper-medium-replay-v2", drop_timeouts=False)
    assert np.abs(replay.actions).max() <= 1.0 and len(replay.rewards) == 299


def test_an_entry_that_misses_its_target_keeps_the_best_evaluated_model(tmp_path):
    """SAC's return swings between evaluations: the entry takes the best periodic model when it beats the final."""
    entry = zoo.train_policy("Hopper-v4", "expert", n_timesteps=600, target=1e9, eval_freq=200, eval_episodes=2,
                             hyperparams=TINY, progress=False, root=tmp_path)
    run = tmp_path / "Hopper-v4" / "expert" / "run"
    evaluations = np.load(run / "evaluations.npz")
    assert not entry.reached and entry.n_timesteps == 600
    assert (run / "best_model.zip").is_file()
    final = zoo._evaluate_file("sac", run / "Hopper-v4.zip", "Hopper-v4", 0).mean_reward
    best = zoo._evaluate_file("sac", run / "best_model.zip", "Hopper-v4", 0).mean_reward
    assert entry.mean_return == pytest.approx(max(final, best))
    kept = (run / "best_model.zip") if best > final else (run / "Hopper-v4.zip")
    assert entry.model_path.read_bytes() == kept.read_bytes()
    assert len(evaluations["timesteps"]) == 3


def test_a_rerun_with_another_seed_does_not_resume_the_first_run(zoo_root):
    """The zoo resumes a level's run folder in place, so a different seed must not silently continue it."""
    with pytest.raises(zoo.ZooError, match=r"seed 0 .*--algo sac --seed 0 to resume it.*rm -rf"):
        zoo.train_policy("Hopper-v4", "medium", n_timesteps=1000, seed=1, hyperparams=TINY, progress=False,
                         root=zoo_root)


def test_ctrl_c_during_zoo_training_is_one_line_and_exit_130(monkeypatch, capsys):
    import rl.zoo
    from rl.runner import TrainingInterrupted

    def interrupted(*args, **kwargs):
        raise TrainingInterrupted("zoo/Hopper-v4/medium/run", Path("zoo/Hopper-v4/medium/run/checkpoints/step_9"), 9)

    monkeypatch.setattr(rl.zoo, "train_policy", interrupted)
    assert rl.zoo.main(["train", "--env", "Hopper-v4", "--level", "medium"]) == 130
    err = capsys.readouterr().err.strip()
    assert err == ("Interrupted at step 9: checkpoint zoo/Hopper-v4/medium/run/checkpoints/step_9 saved. "
                   "Rerun the same command to resume the zoo's training.")

    def interrupted_early(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(rl.zoo, "train_policy", interrupted_early)
    assert rl.zoo.main(["train", "--env", "Hopper-v4", "--level", "medium"]) == 130
    assert capsys.readouterr().err.strip() == "Interrupted. Rerun the same command to resume the zoo's training."
