"""Fault injection: a run killed (SIGKILL) or interrupted (Ctrl-C) at a training step and resumed with ``-i``
ends bit-identical to the same run uninterrupted: same final parameters, same evaluations, same monitored
episodes, each episode once. Plus the resumes that must be refused, and the fallback past a damaged
checkpoint.

Each case trains a tiny network on a MuJoCo env through the real command line. The killed run is a child
process (tests/resume_fault_child.py) that kills itself at its k-th training step; k is drawn from a seeded
generator, so the kill points are "random" and the same on every test run.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from stable_baselines3 import SAC

from rl.checkpoint import list_checkpoints
from rl.cli import main as rl_main
from rl.datasets import write_d4rl_hdf5
from rl.resume_check import differences
from tests.offline_data import random_dataset

REPO = Path(__file__).resolve().parents[1]
FLAGS = ["--seed", "5", "--eval-freq", "200", "--eval-episodes", "1", "--final-eval-episodes", "2",
         "--save-freq", "100", "--no-progress", "--verbose", "0", "--num-threads", "1"]
TINY = "policy_kwargs:dict(net_arch=[16])"
OFF_POLICY = ["learning_starts:60", "buffer_size:2000", "batch_size:32", TINY]

CASES: dict[str, tuple[str, list[str], tuple[int, int]]] = {
    # name: (CLI module, arguments, range of training steps to kill at)
    "ppo": ("rl.cli", ["--algo", "ppo", "--env", "Hopper-v4", "-n", "640", "-params", "n_steps:128",
                       "batch_size:64", "n_epochs:2", TINY], (140, 600)),
    "mdpo": ("rl.cli", ["--algo", "mdpo", "--env", "Hopper-v4", "-n", "640", "-params", "n_steps:128",
                        "sgd_steps:3", "vf_batch_size:64", TINY], (140, 600)),
    "sac": ("rl.cli", ["--algo", "sac", "--env", "Hopper-v4", "-n", "400", "-params", *OFF_POLICY], (110, 380)),
    # killed during SB3's warm-up, where actions come from the algorithm's action space's generator
    "sac_warmup": ("rl.cli", ["--algo", "sac", "--env", "Hopper-v4", "-n", "400", "-params", "learning_starts:300",
                              "buffer_size:2000", "batch_size:32", TINY], (110, 290)),
    "mdpo_off": ("rl.cli", ["--algo", "mdpo_off", "--env", "Hopper-v4", "-n", "400", "-params", *OFF_POLICY,
                            "old_policy_update_interval:50"], (110, 380)),
    # SPO's opponents, credits of unfinished trajectories and label draws live in its callback
    "spo_ppo": ("algos.spo", ["--algo", "ppo", "--env", "Hopper-v4", "--rater", "intransitive", "-n", "640",
                              "-params", "n_steps:128", "batch_size:64", "n_epochs:2", TINY], (140, 600)),
    "spo_sac": ("algos.spo", ["--algo", "sac", "--env", "Hopper-v4", "--rater", "bt", "--temperature", "1", "-n",
                              "400", "-params", *OFF_POLICY], (110, 380)),
    # PARL's queue, rounds and reward model live in its callback; rounds at 0, 200, 400 and 600 steps
    "parl_ppo": ("algos.parl", ["--algo", "ppo", "--env", "Hopper-v4", "--rater", "bt", "--total-comparisons", "40",
                                "--query-interval", "200", "--segment-length", "10", "--epochs", "2", "-n", "640",
                                "-params", "n_steps:128", "batch_size:64", "n_epochs:2", TINY], (140, 600)),
    # panda-gym's Bullet state, the privileges' episode draws and the curriculum's level
    "priv_sac": ("algos.privileged", ["--algo", "sac", "--env", "PandaLiftWide-v0", "--curriculum", "linear", "-n",
                                      "300", "-params", "learning_starts:60", "buffer_size:2000", "batch_size:32",
                                      "replay_buffer_class:DictReplayBuffer", "replay_buffer_kwargs:dict()", TINY],
                 (110, 280)),
    # HER: the episode in progress stays open in HerReplayBuffer, and panda-gym's goals and link states resume
    "her_sac": ("rl.cli", ["--algo", "sac", "--env", "PandaReach-v3", "-n", "300", "-params", "learning_starts:60",
                           "buffer_size:2000", "batch_size:32", "replay_buffer_class:HerReplayBuffer", TINY],
                (110, 280)),
}


def _file_cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, list[str], tuple[int, int]]]:
    """The cases that need files: IQL on a plain D4RL-layout HDF5 file, S3RL+SAC from a tiny teacher."""
    folder = tmp_path_factory.mktemp("inputs")
    data = random_dataset("Hopper-v4", n=400, max_episode_steps=50)
    fields = {name: getattr(data, name) for name in
              ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")}
    dataset = write_d4rl_hdf5(folder / "hopper_plain.hdf5", fields)  # no attributes: the env comes from --env
    teacher = SAC("MlpPolicy", "HalfCheetah-v4", policy_kwargs=dict(net_arch=[16]), seed=0, buffer_size=100)
    teacher.save(folder / "HalfCheetah-v4.zip")
    (folder / "run.json").write_text(json.dumps({"algo": "sac"}))
    return {
        # offline phase of 150 updates, then 250 env steps; killed in either phase
        "iql": ("rl.cli", ["--algo", "iql", "--dataset", str(dataset), "--env", "Hopper-v4", "--offline-steps",
                           "150", "-n", "250", "-params", "batch_size:32", TINY], (110, 380)),
        "s3rl_sac": ("algos.snapshot", [
            "--algo", "sac", "--env", "HalfCheetah-v4", "--teacher", str(folder / "HalfCheetah-v4.zip"),
            "--snapshots", str(folder / "snapshots.pkl"), "--teacher-episodes", "1", "--snapshot-steps", "250",
            "--max-student-steps", "40", "-n", "400", "-params", *OFF_POLICY,
        ], (110, 380)),
    }


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    found = {**CASES, **_file_cases(tmp_path_factory)}
    module, argv, _ = found["iql"]
    found["iql_offline_phase"] = (module, argv, (105, 145))  # killed among the 150 offline updates
    return found


def _run_in_process(module: str, argv: list[str]) -> int:
    if module == "rl.cli":
        return rl_main(None, argv)
    from importlib import import_module

    return import_module(module).main(argv)


def _run_folder(root: Path) -> Path:
    found = sorted(p.parent for p in root.glob("*/*/run_inputs.json"))
    assert len(found) == 1, found
    return found[0]


def _killed_child(module: str, argv: list[str], kill_at: int, signal_name: str = "KILL") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "tests" / "resume_fault_child.py"), str(kill_at), signal_name, module, *argv],
        cwd=REPO, capture_output=True, text=True, timeout=240,
    )


def assert_same_run(reference: Path, resumed: Path) -> None:
    """Final parameters and optimizer states, evaluations and monitored episodes are equal, bit for bit."""
    assert differences(reference, resumed) == []


@pytest.fixture(scope="module")
def references(cases, tmp_path_factory):
    """The uninterrupted run of each case (computed once, shared by the kill points)."""
    folders = {}
    for name, (module, argv, _) in cases.items():
        root = tmp_path_factory.mktemp(f"reference_{name}")
        assert _run_in_process(module, [*argv, *FLAGS, "-f", str(root)]) == 0
        folders[name] = _run_folder(root)
    return folders


KILLS = [(name, seed) for name in ("ppo", "mdpo", "sac", "mdpo_off", "iql", "s3rl_sac") for seed in (0,)] + [
    ("sac", 1), ("ppo", 1), ("iql", 1), ("sac_warmup", 0), ("iql_offline_phase", 0), ("spo_ppo", 0), ("spo_ppo", 1),
    ("spo_sac", 0), ("parl_ppo", 0), ("priv_sac", 0), ("her_sac", 0),
]


@pytest.mark.parametrize(("name", "kill_seed"), KILLS)
def test_sigkill_then_resume_is_bit_identical(name, kill_seed, cases, references, tmp_path):
    module, argv, (low, high) = cases[name]
    kill_at = random.Random(f"{name}-{kill_seed}").randint(low, high)
    root = tmp_path / "killed"
    child = _killed_child(module, [*argv, *FLAGS, "-f", str(root)], kill_at)
    assert child.returncode == -9, child.stderr[-2000:]
    run_dir = _run_folder(root)
    assert not (run_dir / "run.json").exists() and list_checkpoints(run_dir / "checkpoints")
    assert _run_in_process(module, [*argv, *FLAGS, "-f", str(root), "-i", str(run_dir)]) == 0
    assert_same_run(references[name], run_dir)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["restarted_on_resume"] == []  # nothing had to restart: the episode in progress was restored
    assert record["resumes"][0]["at_step"] <= kill_at


def test_a_run_killed_after_its_last_checkpoint_finishes_on_resume(cases, references, tmp_path):
    """Killed between the final checkpoint and run.json: the resume has no step left, only the records."""
    module, argv, _ = cases["ppo"]
    assert _run_in_process(module, [*argv, *FLAGS, "-f", str(tmp_path)]) == 0
    run_dir = _run_folder(tmp_path)
    (run_dir / "run.json").unlink()
    assert _run_in_process(module, [*argv, *FLAGS, "-f", str(tmp_path), "-i", str(run_dir)]) == 0
    assert_same_run(references["ppo"], run_dir)


def test_ctrl_c_saves_a_checkpoint_exits_130_and_resumes_identically(cases, references, tmp_path):
    module, argv, _ = cases["sac"]
    root = tmp_path / "interrupted"
    child = _killed_child(module, [*argv, *FLAGS, "-f", str(root)], 237, "INT")
    assert child.returncode == 130, child.stderr[-2000:]
    lines = child.stderr.strip().splitlines()
    assert "Traceback" not in child.stderr and "resume with -i" in lines[-1]
    run_dir = _run_folder(root)
    # The 237th step ran; the next rollout start (SAC: every step) is the first safe point after it.
    assert list_checkpoints(run_dir / "checkpoints")[-1].name == "step_000000000237"
    assert _run_in_process(module, [*argv, *FLAGS, "-f", str(root), "-i", str(run_dir)]) == 0
    assert_same_run(references["sac"], run_dir)


def test_a_damaged_latest_checkpoint_falls_back_to_the_previous_one(cases, references, tmp_path, capsys):
    module, argv, _ = cases["ppo"]
    root = tmp_path / "damaged"
    assert _killed_child(module, [*argv, *FLAGS, "-f", str(root)], 500).returncode == -9
    run_dir = _run_folder(root)
    latest = list_checkpoints(run_dir / "checkpoints")[-1]
    vecnormalize = latest / "vecnormalize.pkl"
    target = vecnormalize if vecnormalize.is_file() else latest / "model.zip"
    target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])  # cut short, as a full disk would
    assert _run_in_process(module, [*argv, *FLAGS, "-f", str(root), "-i", str(run_dir)]) == 0
    assert f"skipped checkpoint {latest.name}" in capsys.readouterr().err
    assert_same_run(references["ppo"], run_dir)


def _killed_sac_run(cases, tmp_path) -> tuple[str, list[str], Path]:
    module, argv, _ = cases["sac"]
    root = tmp_path / "run"
    assert _killed_child(module, [*argv, *FLAGS, "-f", str(root)], 250).returncode == -9
    return module, [*argv, *FLAGS, "-f", str(root)], _run_folder(root)


def test_resume_with_changed_hyperparameters_is_refused_unless_allowed(cases, tmp_path, capsys):
    module, argv, run_dir = _killed_sac_run(cases, tmp_path)
    changed = [*argv, "-i", str(run_dir), "-params", *OFF_POLICY, "learning_rate:0.001"]
    assert _run_in_process(module, changed) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "hyperparams.learning_rate 0.0003 -> 0.001" in error
    assert "--allow-changed-inputs" in error and not (run_dir / "run.json").exists()

    assert _run_in_process(module, [*changed, "--allow-changed-inputs"]) == 0
    record = json.loads((run_dir / "run.json").read_text())
    assert record["resumes"][0]["changed_inputs"]["hyperparams.learning_rate"] == {"run": 0.0003, "now": 0.001}
    assert record["hyperparams"]["learning_rate"] == 0.001
    assert SAC.load(run_dir / "Hopper-v4.zip").learning_rate == 0.001  # the change really trained


def test_resume_with_another_seed_or_an_architecture_change_is_refused(cases, tmp_path, capsys):
    module, argv, run_dir = _killed_sac_run(cases, tmp_path)
    assert _run_in_process(module, [*argv, "-i", str(run_dir), "--seed", "6"]) == 2
    assert "holds a run with seed 5, not 6" in capsys.readouterr().err
    wider = [*argv, "-i", str(run_dir), "-params", *OFF_POLICY[:-1], "policy_kwargs:dict(net_arch=[32])",
             "--allow-changed-inputs"]
    assert _run_in_process(module, wider) == 2
    assert "cannot change (hyperparams.policy_kwargs" in capsys.readouterr().err


def test_resume_with_other_dataset_contents_under_the_same_name_is_refused(cases, tmp_path, capsys):
    module, argv, _ = cases["iql"]
    dataset = Path(argv[argv.index("--dataset") + 1])
    own = tmp_path / "data.hdf5"
    own.write_bytes(dataset.read_bytes())
    argv = [*argv[: argv.index("--dataset") + 1], str(own), *argv[argv.index("--dataset") + 2:], *FLAGS,
            "-f", str(tmp_path / "run")]
    assert _killed_child(module, argv, 200).returncode == -9
    run_dir = _run_folder(tmp_path / "run")
    other = random_dataset("Hopper-v4", n=400, max_episode_steps=50, seed=1)
    write_d4rl_hdf5(own, {name: getattr(other, name) for name in
                          ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")})
    assert _run_in_process(module, [*argv, "-i", str(run_dir)]) == 2
    error = capsys.readouterr().err
    assert "dataset.fingerprint" in error and len(error.strip().splitlines()) == 1


def test_resume_with_other_snapshot_settings_is_refused(cases, references, tmp_path, capsys):
    module, argv, _ = cases["s3rl_sac"]
    argv = [*argv, *FLAGS, "-f", str(tmp_path / "run")]
    assert _killed_child(module, argv, 200).returncode == -9
    run_dir = _run_folder(tmp_path / "run")
    shorter = [*argv, "-i", str(run_dir)]
    shorter[shorter.index("--snapshot-steps") + 1] = "100"
    assert _run_in_process(module, shorter) == 2
    assert "snapshotrl.snapshot_steps 250 -> 100" in capsys.readouterr().err


def test_resume_in_another_simulator_variant_is_refused(tmp_path):
    from rl.runner import RunConfig, RunConfigError, train
    from sim2real import configure_sim

    def config(spec: str) -> RunConfig:
        return configure_sim(RunConfig(
            algo="sac", env="Hopper-v4", n_timesteps=200, seed=0, run_dir=str(tmp_path / "run"), eval_freq=-1,
            final_eval_episodes=1, save_freq=100, progress=False, verbose=0,
            hyperparams={"learning_starts": 50, "buffer_size": 500, "policy_kwargs": {"net_arch": [16]}},
        ), spec)

    train(config("gravity=2.0"))
    (tmp_path / "run" / "run.json").unlink()
    with pytest.raises(RunConfigError, match=r"sim\.spec gravity=2 -> gravity=3"):
        train(config("gravity=3.0"))
