"""The benchmark harness: paired runs, a report with both algorithms, and no rerun of finished runs."""

import json
from pathlib import Path

import numpy as np
from filelock import FileLock

from rl.benchmark import (
    STD_NOTE,
    ProcessBackend,
    dataset_normalized_score,
    execute,
    plan,
    read_invocations,
    record_invocation,
    run_benchmark,
)
from rl.datasets import load_dataset
from rl.run_record import command_line, git_commit


class RecordingBackend(ProcessBackend):
    """Runs in this process and remembers which runs it was given."""

    def __init__(self):
        super().__init__(workers=1)
        self.given = []

    def run_all(self, specs, fn):
        self.given.extend(specs)
        yield from super().run_all(specs, fn)


def test_plan_pairs_algorithm_and_baseline():
    specs = plan("x", ["mdpo", "ppo"], ["A-v0", "B-v0"], [0, 1], 100)
    assert [(s.algo, s.env, s.seed) for s in specs[:4]] == [
        ("mdpo", "A-v0", 0), ("ppo", "A-v0", 0), ("mdpo", "B-v0", 0), ("ppo", "B-v0", 0)]


def test_benchmark_report_and_resume(tmp_path):
    tiny = {"n_steps": 64, "policy_kwargs": {"net_arch": [8]}}
    options = dict(results_root=str(tmp_path / "results"), logs_root=str(tmp_path / "logs"), eval_freq=64,
                   eval_episodes=1, final_eval_episodes=1, save_freq=-1, progress=False)
    hyperparams = {"mdpo": dict(tiny, vf_batch_size=32), "ppo": dict(tiny, batch_size=32)}
    backend = RecordingBackend()
    first = "python -m rl.benchmark --name tiny --algos mdpo ppo --envs Pendulum-v1 --seeds 0 -n 128"
    table = run_benchmark("tiny", ["mdpo", "ppo"], ["Pendulum-v1"], [0], 128, backend=backend,
                          hyperparams=hyperparams, command=first, **options)
    assert len(backend.given) == 2
    text = open(table).read()
    assert "| Pendulum-v1 |" in text and "mdpo return" in text and "ppo return" in text
    assert "ratio mdpo/ppo" in text and "steps/s" in text
    assert STD_NOTE in text  # says which standard deviation +- is
    out = tmp_path / "results" / "tiny"
    assert (out / "learning_curves.png").is_file() and (out / "command.txt").is_file()
    record = json.loads((out / "runs" / "mdpo" / "Pendulum-v1_seed0" / "run.json").read_text())
    assert record["num_timesteps"] == 128
    # The run records the benchmark invocation that made it (not the worker's or the test runner's command line)
    # and its own commit.
    assert record["command"] == first
    assert record["versions"]["stable-baselines3"] and "frontier-rl commit" in record["versions"]
    (invocation,) = read_invocations(out)
    assert invocation["command"] == first and invocation["runs_started"] == ["mdpo/Pendulum-v1_seed0",
                                                                              "ppo/Pendulum-v1_seed0"]
    assert invocation["commit"] == invocation["versions"]["frontier-rl commit"]
    assert invocation["versions"]["stable-baselines3"] and invocation["invoked_at"]

    again = RecordingBackend()
    second = first + " --workers 2"
    run_benchmark("tiny", ["mdpo", "ppo"], ["Pendulum-v1"], [0], 128, backend=again, hyperparams=hyperparams,
                  command=second, **options)
    assert again.given == []  # finished runs are not redone
    # The second invocation is added, the first kept: versions.json claims no commit for runs it did not start.
    kept, added = read_invocations(out)
    assert kept == invocation and added["command"] == second and added["runs_started"] == []
    assert (out / "command.txt").read_text() == second + "\n"
    assert json.loads((out / "runs" / "mdpo" / "Pendulum-v1_seed0" / "run.json").read_text())["command"] == first


def test_an_old_flat_versions_file_becomes_the_first_invocation(tmp_path):
    old = {"python": "3.11.7", "stable-baselines3": "2.3.0", "frontier-rl commit": "abc1234"}
    (tmp_path / "versions.json").write_text(json.dumps(old))
    (tmp_path / "command.txt").write_text("python -m rl.benchmark --name x --algos sac --envs A-v0 -n 10\n")
    (legacy,) = read_invocations(tmp_path)
    assert legacy["versions"] == old and legacy["commit"] == "abc1234" and legacy["runs_started"] is None
    assert legacy["command"] == "python -m rl.benchmark --name x --algos sac --envs A-v0 -n 10"
    spec = plan("x", ["sac"], ["A-v0"], [1], 10, results_root=str(tmp_path / "r"), logs_root=str(tmp_path / "l"))[0]
    entry = record_invocation(tmp_path, "python -m rl.benchmark --name x --algos sac --envs A-v0 --seeds 1 -n 10",
                              [spec])
    assert read_invocations(tmp_path) == [legacy, entry] and entry["runs_started"] == ["sac/A-v0_seed1"]
    assert "invocations" in json.loads((tmp_path / "versions.json").read_text())


def _locked_by_another(lock_file: Path) -> bool:
    """Whether a fresh open of ``lock_file`` cannot take the lock now (another open holds it)."""
    import fcntl

    with open(lock_file, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def test_an_invocation_appends_itself_under_the_folders_lock(tmp_path, monkeypatch):
    """Two invocations started side by side each read, then rewrite, versions.json: unlocked, one entry was lost."""
    import rl.benchmark as benchmark

    lock_file = tmp_path / benchmark.VERSIONS_LOCK_FILE
    seen = []
    write = benchmark.write_invocations
    monkeypatch.setattr(benchmark, "write_invocations",
                        lambda out, invocations: (seen.append(_locked_by_another(lock_file)), write(out, invocations)))
    record_invocation(tmp_path, "first", [])
    record_invocation(tmp_path, "second", [])
    assert seen == [True, True] and not _locked_by_another(lock_file)
    assert [entry["command"] for entry in read_invocations(tmp_path)] == ["first", "second"]
    with FileLock(tmp_path / "deeper" / "x.lock"):  # makes its folder, and holds the lock inside the block
        assert _locked_by_another(tmp_path / "deeper" / "x.lock")
    assert not _locked_by_another(tmp_path / "deeper" / "x.lock")


def test_failed_run_is_reported_not_raised(tmp_path):
    spec = plan("bad", ["mdpo"], ["Pendulum-v1"], [0], 64, hyperparams={"mdpo": {"sgd_steps": 0}},
                results_root=str(tmp_path / "r"), logs_root=str(tmp_path / "l"))[0]
    outcome = execute(spec)
    assert "sgd_steps must be >= 1" in outcome["error"]


def test_run_labels():
    from rl.registry import parse_run_label

    assert parse_run_label("mdpo_off") == (None, "mdpo_off")
    assert parse_run_label("mdpo@authors_schedule") == (None, "mdpo")
    assert parse_run_label("s3rl_mdpo_off_nosc") == ("s3rl", "mdpo_off")
    assert parse_run_label("s3rl_sac@long") == ("s3rl", "sac")


def test_offline_benchmark_runs_on_datasets_and_reports_scores(tmp_path):
    from offline_data import random_dataset, write_hdf5

    path = str(write_hdf5(random_dataset("Pendulum-v1", n=400), tmp_path / "tiny.hdf5"))
    tiny = {"policy_kwargs": {"net_arch": [8]}, "batch_size": 16}
    options = dict(results_root=str(tmp_path / "results"), logs_root=str(tmp_path / "logs"), eval_freq=10,
                   eval_episodes=1, final_eval_episodes=1, save_freq=-1, progress=False, datasets=True,
                   online_steps=10)
    table = run_benchmark("offline", ["td3_bc", "iql"], [path], [0], 30, backend=RecordingBackend(),
                          hyperparams={"td3_bc": tiny, "iql": tiny}, **options)
    text = open(table).read()
    assert "30 gradient steps on the dataset then 10 env steps online" in text
    assert "| dataset |" in text and ", score " in text
    record = json.loads((tmp_path / "results" / "offline" / "runs" / "iql" / "tiny_seed0" / "run.json").read_text())
    assert record["offline_steps"] == 30 and record["num_timesteps"] == 40 and record["dataset"] == path
    assert record["dataset_fingerprint"] == load_dataset(path).fingerprint()
    # Offline-to-online: the score where the offline phase ended (the evaluation at gradient step 30), per algo.
    evaluations = np.load(tmp_path / "results" / "offline" / "runs" / "iql" / "tiny_seed0" / "evaluations.npz")
    assert list(evaluations["timesteps"]) == [10, 20, 30, 40]
    at_boundary_return = float(evaluations["results"][2].mean())
    at_boundary = dataset_normalized_score(path, at_boundary_return)
    at_boundary = at_boundary_return if at_boundary is None else at_boundary
    offline_row = text.split("At the end of the offline phase (the periodic evaluation at gradient step 30")[1]
    row = next(line for line in offline_row.splitlines() if line.startswith(f"| {path} |"))
    assert row.split(" | ")[2].startswith(f"{at_boundary:.1f} +- 0.0 (n=1)")


def test_d3rlpy_labels_run_the_external_baseline_on_the_same_file(tmp_path, monkeypatch):
    from offline_data import random_dataset, write_hdf5

    from rl.external import d3rlpy_baseline

    path = str(write_hdf5(random_dataset("Pendulum-v1", n=200), tmp_path / "tiny.hdf5"))
    calls = []

    def fake_run(algo, dataset_path, env_id, **kwargs):
        calls.append((algo, str(dataset_path), env_id, kwargs))
        out = Path(kwargs["out_dir"])
        record = {"algo": algo, "num_timesteps": kwargs["n_steps"], "final_evaluation": {"mean_reward": -750.0},
                  "final_normalized_score": 50.0, "steps_per_second": 10.0}
        (out / "run.json").write_text(json.dumps(record))
        return record

    monkeypatch.setattr(d3rlpy_baseline, "run_d3rlpy", fake_run)
    options = dict(results_root=str(tmp_path / "results"), logs_root=str(tmp_path / "logs"), eval_freq=10,
                   eval_episodes=1, final_eval_episodes=1, save_freq=-1, progress=False, datasets=True)
    table = run_benchmark("ext", ["d3rlpy_iql"], [path], [3], 20, backend=RecordingBackend(), **options)
    assert calls[0][:3] == ("d3rlpy_iql", path, "Pendulum-v1")
    assert calls[0][3]["n_steps"] == 20 and calls[0][3]["seed"] == 3 and calls[0][3]["ref_min"] == -1500.0
    assert "-750.0 +- 0.0, score 50.0 +- 0.0" in open(table).read()
    kept = json.loads((tmp_path / "results" / "ext" / "runs" / "d3rlpy_iql" / "tiny_seed3" / "run.json").read_text())
    # An HDF5 file is read by d3rlpy as it is: its fingerprint is the file's, which is also our side's.
    assert kept["dataset_fingerprint"] == kept["source_dataset_fingerprint"] == load_dataset(path).fingerprint()
    assert kept["benchmark_command"] == command_line()  # the invocation; "command" stays the d3rlpy script's
    assert kept.get("versions", {}).get("frontier-rl commit") == git_commit()  # the checkout whose script ran
    # A variant label with d3rlpy's observation scaler replaced; any other option is refused.
    run_benchmark("ext2", ["d3rlpy_iql@obsnorm"], [path], [3], 20, backend=RecordingBackend(),
                  hyperparams={"d3rlpy_iql@obsnorm": {"observation_scaler": "standard"}}, **options)
    assert calls[1][0] == "d3rlpy_iql" and calls[1][3]["observation_scaler"] == "standard"
    assert calls[0][3]["observation_scaler"] == "script"
    outcome = execute(plan("ext3", ["d3rlpy_iql@x"], [path], [0], 20, hyperparams={"d3rlpy_iql@x": {"lr": 1.0}},
                           results_root=str(tmp_path / "r3"), logs_root=str(tmp_path / "l3"), datasets=True)[0])
    assert "take only observation_scaler as an option, got lr" in outcome["error"]


def test_a_d3rlpy_run_whose_file_changed_meanwhile_fails(tmp_path, monkeypatch):
    from offline_data import random_dataset, write_hdf5

    from rl.external import d3rlpy_baseline

    path = write_hdf5(random_dataset("Pendulum-v1", n=60), tmp_path / "tiny.hdf5")

    def run_while_remade(algo, dataset_path, env_id, **kwargs):
        write_hdf5(random_dataset("Pendulum-v1", n=60, seed=1), dataset_path)
        return {"algo": algo, "num_timesteps": kwargs["n_steps"]}

    monkeypatch.setattr(d3rlpy_baseline, "run_d3rlpy", run_while_remade)
    spec = plan("ext", ["d3rlpy_iql"], [str(path)], [0], 10, results_root=str(tmp_path / "r"),
                logs_root=str(tmp_path / "l"), datasets=True)[0]
    outcome = execute(spec)
    assert "changed during the d3rlpy run" in outcome["error"]
    assert not (Path(spec.result_dir) / "run.json").exists()


def test_unknown_external_label_lists_the_valid_ones():
    import pytest

    from rl.benchmark import check_label

    with pytest.raises(SystemExit, match="d3rlpy_cql"):
        check_label("d3rlpy_sac")


def test_stochastic_evaluation_samples_the_policy_and_reports_the_best_episode(tmp_path):
    options = dict(results_root=str(tmp_path / "results"), logs_root=str(tmp_path / "logs"), eval_freq=-1,
                   final_eval_episodes=6, save_freq=-1, progress=False, stochastic_eval=True)
    hyperparams = {"ppo": {"n_steps": 64, "batch_size": 32, "policy_kwargs": {"net_arch": [8]}}}
    table = run_benchmark("sampled", ["ppo"], ["Coverage-Bimodal-v0"], [0], 64, backend=RecordingBackend(),
                          hyperparams=hyperparams, **options)
    text = open(table).read()
    assert "sampled (stochastic) policy" in text and ", best " in text
    record = json.loads((tmp_path / "results" / "sampled" / "runs" / "ppo" / "Coverage-Bimodal-v0_seed0" /
                         "run.json").read_text())
    returns = record["final_evaluation"]["episode_rewards"]
    assert len(set(returns)) > 1  # an untrained sampled policy on a deterministic env: different trajectories
    assert f"best {max(returns):.1f}" in text


def test_return_ratio_is_not_given_against_a_baseline_at_or_below_zero():
    from rl.benchmark import _ratio

    assert _ratio([300.0, 500.0], [200.0]) == "2.00"
    assert _ratio([-50.0], [-100.0]) == "n/a (baseline <= 0)"
    assert _ratio([10.0], [0.0]) == "n/a (baseline <= 0)"
    assert _ratio([], [1.0]) == "n/a"


def test_ctrl_c_prints_where_the_checkpoint_is_and_exits_130_without_a_traceback(monkeypatch, capsys):
    import rl.benchmark
    from rl.runner import TrainingInterrupted

    def interrupted(*args, **kwargs):
        raise TrainingInterrupted("logs/b/ppo/CartPole-v1_seed0", Path("logs/b/ppo/CartPole-v1_seed0/ckpt"), 512)

    monkeypatch.setattr(rl.benchmark, "run_benchmark", interrupted)
    code = rl.benchmark.main(["--name", "b", "--algos", "ppo", "--envs", "CartPole-v1", "--seeds", "0", "-n", "64"])
    err = capsys.readouterr().err
    assert code == 130
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "Interrupted at step 512: checkpoint logs/b/ppo/CartPole-v1_seed0/ckpt saved" in err
    assert "Rerun the same command to resume the benchmark" in err


def test_ctrl_c_before_any_run_started_says_so_in_one_line(monkeypatch, capsys):
    import rl.benchmark

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(rl.benchmark, "run_benchmark", interrupted)
    code = rl.benchmark.main(["--name", "b", "--algos", "ppo", "--envs", "CartPole-v1", "--seeds", "0", "-n", "64"])
    err = capsys.readouterr().err.strip()
    assert code == 130
    assert err == "Interrupted. Rerun the same command to resume the benchmark (finished runs are not redone)."
