"""The documentation's examples (examples/*.py) at tiny budgets: each runs in-process through its ``main(argv)``, writes
its files under tmp_path, and returns what it printed as values the tests check (finite scores, models that load and
act in the action space, a non-empty QD archive, policies no cheaper than perfect foresight)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NAMES = ("mdpo_sb3_callbacks", "iql_offline_to_online", "s3rl_from_zoo_teacher", "h2o_sim_variant",
         "qd_run_and_maps", "subpo_coverage", "tsddr_toy")


def example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` (the folder is not a package: the docs include the files by name)."""
    spec = importlib.util.spec_from_file_location(f"examples_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(name: str, out: Path, *args: str) -> dict:
    return example(name).main([*args, "--out", str(out), "--no-progress"])


@pytest.mark.parametrize("name", NAMES)
def test_every_example_documents_how_to_run_it_and_has_a_main(name):
    module = example(name)
    assert f"python examples/{name}.py" in module.__doc__ and "Output" in module.__doc__
    assert callable(module.main)
    source = (EXAMPLES / f"{name}.py").read_text()
    assert 'if __name__ == "__main__":' in source and "--out" in source


def test_mdpo_with_sb3_callbacks_saves_loads_and_is_seeded(tmp_path):
    argv = ["--steps", "128", "--n-steps", "64", "--eval-freq", "64", "--eval-episodes", "1"]
    result = run("mdpo_sb3_callbacks", tmp_path / "a", *argv)
    assert result["num_timesteps"] == 128 and result["model_path"].is_file()
    for produced in ("best/best_model.zip", "eval/evaluations.npz", "checkpoints/mdpo_64_steps.zip",
                     "checkpoints/mdpo_128_steps.zip"):
        assert (tmp_path / "a" / produced).is_file(), produced
    assert math.isfinite(result["mean_return"]) and result["mean_return"] <= 0.0  # Pendulum's rewards are <= 0
    model = result["model"]
    action, _ = model.predict(model.observation_space.sample(), deterministic=True)
    assert model.action_space.contains(action.astype(np.float32))
    again = run("mdpo_sb3_callbacks", tmp_path / "b", *argv)
    assert again["mean_return"] == result["mean_return"]


def test_iql_offline_then_online_on_a_dataset_made_by_the_pipeline(tmp_path):
    pytest.importorskip("h5py")
    result = run("iql_offline_to_online", tmp_path, "--transitions", "700", "--offline-steps", "20",
                 "--online-steps", "20", "--net-arch", "16", "16", "--batch-size", "16", "--eval-episodes", "1")
    data, model = result["dataset"], result["model"]
    assert (tmp_path / "hopper-expert-v2.hdf5").is_file() and not (tmp_path / "hopper-expert-v2.work").exists()
    assert data.env_id == "Hopper-v4" and len(data) >= 700 and (data.ref_min, data.ref_max) == pytest.approx(
        (-20.272305, 3234.3))
    assert data.normalized_score(data.ref_max) == pytest.approx(100.0)
    assert result["data_score"] > 20.0  # the expert-level teacher's data, D4RL-normalised
    for key in ("offline_return", "offline_score", "online_return", "online_score"):
        assert math.isfinite(result[key]), key
    assert model.num_timesteps == 40 and model.offline_updates == 20
    assert (tmp_path / "iql_offline.zip").is_file() and (tmp_path / "iql_online.zip").is_file()
    action, _ = model.predict(data.observations[:3], deterministic=True)
    assert action.shape == (3, 3) and np.all(np.abs(action) <= 1.0)


def test_s3rl_student_starts_from_the_committed_teachers_snapshots(tmp_path):
    result = run("s3rl_from_zoo_teacher", tmp_path, "--steps", "60", "--learning-starts", "30",
                 "--snapshot-steps", "60", "--max-student-steps", "5", "--net-arch", "16", "16",
                 "--batch-size", "16", "--eval-episodes", "1")
    assert result["n_snapshots"] == 717 and result["teacher_return"] == pytest.approx(2161.15, abs=0.01)
    assert result["episodes_from_snapshots"] >= 2 and 1 <= result["snapshot_truncations"] <= 12
    assert math.isfinite(result["mean_return"]) and result["model_path"].is_file()
    from stable_baselines3 import SAC

    model = SAC.load(result["model_path"], device="cpu")
    action, _ = model.predict(model.observation_space.sample(), deterministic=True)
    assert model.action_space.contains(action)


def test_h2o_in_a_sim_variant_learns_a_dynamics_ratio_and_is_evaluated_in_both_worlds(tmp_path):
    pytest.importorskip("h5py")
    result = run("h2o_sim_variant", tmp_path, "--transitions", "100", "--steps", "40", "--net-arch", "16", "16",
                 "--batch-size", "16", "--eval-episodes", "1")
    assert result["model_path"].is_file() and result["plot"].is_file() and (tmp_path / "dynamics_ratio.npz").is_file()
    assert result["ratio_real"] > 0 and result["ratio_sim"] > 0
    for key in ("real_return", "sim_return", "real_score"):
        assert math.isfinite(result[key]), key
    from algos.h2o import H2O

    model = H2O.load(result["model_path"], device="cpu")
    action, _ = model.predict(model.observation_space.sample(), deterministic=True)
    assert model.action_space.contains(action)


def test_qd_run_writes_its_folder_and_a_non_empty_archive_map(tmp_path):
    result = run("qd_run_and_maps", tmp_path, "--budget", "30", "--pop-size", "10", "--chunk-size", "20")
    metrics = result["metrics"]
    assert metrics["evaluations"] >= 30 and 0.0 < metrics["coverage"] <= 1.0
    assert len(result["novelty_archive"]) > 0 and result["novelty_archive"].shape[1] == 2
    assert np.all((result["novelty_archive"] >= 0.0) & (result["novelty_archive"] <= 1.0))
    for produced in ("metrics.json", "checkpoint.pkl", "coverage_map.png", "reward_areas.png", "curves.png",
                     "archive_map.png"):
        assert (tmp_path / produced).stat().st_size > 0, produced
    from qd import QDRun

    resumed = QDRun.resume(tmp_path, progress=False)  # the config the example records rebuilds the run
    assert resumed.algorithm.evaluations == metrics["evaluations"]
    resumed.algorithm.close()


def test_subpo_coverage_scores_both_methods_and_the_greedy_reference(tmp_path):
    import gymnasium as gym

    result = run("subpo_coverage", tmp_path, "--updates", "1", "--episodes-per-update", "2", "--eval-episodes", "2")
    coverage = gym.make("Coverage-Constant-History-v0").unwrapped.F
    everything = coverage.value(range(coverage.n_states))  # F of the whole grid bounds every trajectory's F
    assert result["greedy"] == pytest.approx(212.0)
    for key in ("subpo_F", "modular_F"):
        assert 0.0 < result[key] <= everything, key
    assert result["num_timesteps"] == 2 * 79
    assert result["model_path"].is_file() and result["picture"].stat().st_size > 0
    from algos.subpo import SubPO

    model = SubPO.load(result["model_path"], device="cpu")
    action, _ = model.predict(model.observation_space.sample())
    assert model.action_space.contains(int(action))


def test_tsddr_and_sddp_are_no_cheaper_than_perfect_foresight(tmp_path):
    result = run("tsddr_toy", tmp_path, "--epochs", "1", "--batches-per-epoch", "2", "--sddp-iterations", "2")
    costs = result["costs"]
    assert set(costs) == {"TS-DDR", "TS-LDR", "SDDP", "perfect foresight"}
    assert all(math.isfinite(value) and value > 0 for value in costs.values())
    assert min(costs["TS-DDR"], costs["TS-LDR"], costs["SDDP"]) >= costs["perfect foresight"] - 1e-6
    assert result["curve"].is_file() and result["sddp_path"].is_file()
    from algos.tsddr import TSDDR

    loaded = TSDDR.load(result["model_path"])
    inflows = loaded.system.inflows[int(result["holdout"][0])]
    assert np.array_equal(loaded.predict(inflows), result["model"].predict(inflows))
