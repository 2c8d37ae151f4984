"""Checkpoints are atomic: a failure while saving never leaves a partial checkpoint or model."""

import pytest
from stable_baselines3 import PPO

from rl.checkpoint import latest_checkpoint, list_checkpoints, save_checkpoint, save_model_atomic


@pytest.fixture
def model():
    return PPO("MlpPolicy", "Pendulum-v1", n_steps=64, batch_size=64, policy_kwargs=dict(net_arch=[8]), seed=0)


def test_interrupted_checkpoint_leaves_previous_one_intact(tmp_path, model, monkeypatch):
    first = save_checkpoint(model, tmp_path)
    model.num_timesteps = 500
    original_save = model.save

    def crash_after_partial_write(path, *args, **kwargs):
        original_save(path, *args, **kwargs)
        raise KeyboardInterrupt  # killed after the model was written, before the checkpoint completed

    monkeypatch.setattr(model, "save", crash_after_partial_write)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(model, tmp_path)
    assert list_checkpoints(tmp_path) == [first]
    assert latest_checkpoint(tmp_path) == first
    assert (first / "model.zip").is_file()


def test_checkpoints_are_pruned_to_the_newest(tmp_path, model):
    for step in (100, 200, 300):
        model.num_timesteps = step
        save_checkpoint(model, tmp_path, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_000000000200", "step_000000000300"]


def test_failed_model_save_keeps_the_old_file(tmp_path, model, monkeypatch):
    target = tmp_path / "model.zip"
    save_model_atomic(model, target)
    before = target.read_bytes()

    def failing_save(path, *args, **kwargs):
        with open(path, "wb") as handle:
            handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(model, "save", failing_save)
    with pytest.raises(OSError):
        save_model_atomic(model, target)
    assert target.read_bytes() == before
