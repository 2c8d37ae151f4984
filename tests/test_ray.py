"""Ray behind the project: the benchmark back end, the QD evaluator and sweeps, on one 2-CPU local Ray instance.

The runs are as tiny as the benchmark tests' (PPO on CartPole-v1, 256 steps). The benchmark runs with
``transfer="always"``: every task works in a scratch folder of its own, as on a node that does not share the
driver's disk, so checkpoints and results reach the driver's folders only through the transfer. Seed 1's
worker is killed halfway through its run; seed 0 runs undisturbed next to it and must give the process
pool's record.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason='the Ray back end, evaluator and sweeps need Ray: pip install -e ".[ray]"')

from rl.benchmark import ProcessBackend, execute, run_benchmark  # noqa: E402
from rl.ray_backend import ClusterError, RayBackend  # noqa: E402

TESTS = Path(__file__).resolve().parent
TINY = {"ppo": {"n_steps": 64, "batch_size": 32, "n_epochs": 2, "policy_kwargs": {"net_arch": [8]}}}
RUN = dict(eval_freq=64, eval_episodes=1, final_eval_episodes=1, save_freq=64)
COMMAND = "python -m rl.benchmark --name tiny --algos ppo --envs CartPole-v1 -n 256"
TIMING = ("train_seconds", "steps_per_second")
"""Record fields that differ between any two runs (wall-clock measurements)."""
RUN_FOLDER = "results/tiny/runs/ppo/CartPole-v1_seed{}"


@pytest.fixture(scope="module")
def cluster():
    """One local Ray instance for the module; its workers import this folder's modules (the test's functions)."""
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS), str(TESTS.parent), before) if p)
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning")
    yield
    ray.shutdown()
    if before is None:
        os.environ.pop("PYTHONPATH")
    else:
        os.environ["PYTHONPATH"] = before


def die_halfway_once(spec, *, victim_seed: int, attempts: str, driver: str):
    """Seed ``victim_seed``'s first attempt trains half the run, waits until its checkpoint reached the driver,
    and kills its worker process; every other call is a plain :func:`rl.benchmark.execute`."""
    if spec.seed != victim_seed:
        return execute(spec)
    with open(attempts, "a") as handle:
        handle.write(f"{os.getpid()}\n")
    if len(Path(attempts).read_text().splitlines()) > 1:
        return execute(spec)
    half = dataclasses.replace(spec, n_timesteps=spec.n_timesteps // 2)
    execute(half)
    sent = Path(driver) / spec.work_dir / "checkpoints" / f"step_{half.n_timesteps:012d}"
    deadline = time.time() + 60
    while not sent.is_dir() and time.time() < deadline:
        time.sleep(0.05)
    os._exit(1)


class KillingRayBackend(RayBackend):
    """The Ray back end, with seed 1's worker killed halfway on its first attempt."""

    def __init__(self, driver: Path) -> None:
        super().__init__(transfer="always", mirror_every=0.1, max_retries=2)
        self.fn = functools.partial(die_halfway_once, victim_seed=1, attempts=str(driver / "attempts.txt"),
                                    driver=str(driver))
        self.outcomes: list[dict] = []

    def run_all(self, specs, fn):
        for outcome in super().run_all(specs, self.fn):
            self.outcomes.append(outcome)
            yield outcome


@pytest.fixture(scope="module")
def benchmarks(cluster, tmp_path_factory):
    """The same tiny benchmark through the process pool (seed 0) and through Ray (seeds 0 and 1, at once)."""
    roots = {}
    for name, seeds in (("process", [0]), ("ray", [0, 1])):
        root = roots[name] = tmp_path_factory.mktemp(name)
        backend = ProcessBackend(workers=1) if name == "process" else KillingRayBackend(root)
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(root)  # relative folders, as from the command line: the records hold the same paths
            run_benchmark("tiny", ["ppo"], ["CartPole-v1"], seeds, 256, backend=backend, hyperparams=TINY,
                          progress=False, command=COMMAND, **RUN)
        if name == "ray":
            roots["outcomes"] = backend.outcomes
    return roots


def _record(root: Path, seed: int) -> dict:
    return json.loads((root / RUN_FOLDER.format(seed) / "run.json").read_text())


def test_ray_runs_give_the_process_pool_records(benchmarks):
    process, remote = _record(benchmarks["process"], 0), _record(benchmarks["ray"], 0)
    assert {k: v for k, v in remote.items() if k not in TIMING} == {k: v for k, v in process.items() if k not in TIMING}
    assert remote["num_timesteps"] == 256 and remote["resumes"] == []
    curves = [np.load(benchmarks[name] / RUN_FOLDER.format(0) / "evaluations.npz") for name in ("process", "ray")]
    for key in ("timesteps", "results"):
        np.testing.assert_array_equal(curves[0][key], curves[1][key])
    # The worker trained in a scratch folder: its run folder, newest checkpoint included, reached the driver's.
    run_dirs = [benchmarks[name] / "logs" / "benchmarks" / "tiny" / "ppo" / "CartPole-v1_seed0"
                for name in ("process", "ray")]
    assert sorted(p.name for p in (run_dirs[1] / "checkpoints").iterdir())[-1] == f"step_{256:012d}"
    # The mirror polls, so which older checkpoint the driver also holds depends on timing; everything else,
    # the newest checkpoint's files included, is the process pool's.
    process_files, ray_files = ({str(p.relative_to(d)) for p in d.rglob("*")
                                 if not p.relative_to(d).parts[0] == "checkpoints"
                                 or p.relative_to(d).parts[1:2] in ((), (f"step_{256:012d}",))}
                                for d in run_dirs)
    assert ray_files == process_files
    assert len(list((run_dirs[1] / "checkpoints").iterdir())) <= 2  # the runner's keep-two rule holds
    assert "| CartPole-v1 |" in (benchmarks["ray"] / "results" / "tiny" / "README.md").read_text()


def test_a_killed_worker_is_retried_from_its_checkpoint_and_counted_once(benchmarks):
    outcomes = benchmarks["outcomes"]
    assert sorted(o["spec"]["seed"] for o in outcomes) == [0, 1] and not any("error" in o for o in outcomes)
    assert len((benchmarks["ray"] / "attempts.txt").read_text().splitlines()) == 2  # killed once, retried once
    record = _record(benchmarks["ray"], 1)
    assert record["num_timesteps"] == 256
    # The retry resumed from the checkpoint the killed attempt had sent to the driver, not from scratch.
    assert [resume["at_step"] for resume in record["resumes"]] == [128]


def test_a_request_no_node_can_grant_is_refused_before_any_run(cluster):
    with pytest.raises(ClusterError, match="No node has 1 CPUs and 1 GPUs for one run"):
        RayBackend(gpus_per_run=1).start()


def test_ray_evaluator_matches_serial_and_leaves_the_qd_loop_unchanged(cluster):
    from qd_point_task import register_point_task

    from qd.evaluation import SerialEvaluator
    from qd.genome import genome_size
    from qd.map_elites import MapElites
    from qd.ray_evaluator import RayEvaluator

    env_id = "QDPointRay-v0"  # registered here only: the tasks register it in their workers from its spec
    register_point_task(env_id, max_steps=5, graded=True)
    genomes = np.random.default_rng(0).uniform(-1, 1, size=(11, genome_size(env_id)))
    evaluator = RayEvaluator(env_id, batch_size=4)
    serial = SerialEvaluator(env_id).evaluate(genomes, render=True)
    remote = evaluator.evaluate(genomes, render=True)
    assert len(remote) == len(serial)
    for a, b in zip(serial, remote):
        assert (a.reward, a.reward_area) == (b.reward, b.reward_area)
        for field in ("outcome", "trajectory", "observation", "state"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    # pyribs's ask/tell loop, unchanged, fills the same archive with either evaluator.
    runs = [MapElites(env_id, seed=3, batch_size=10, sigma=0.2, evaluator=e) for e in (None, evaluator)]
    for algorithm in runs:
        algorithm.run(30)
    np.testing.assert_array_equal(runs[0].metrics.outcomes, runs[1].metrics.outcomes)


def test_the_qd_command_line_runs_on_ray_as_on_the_process_pool(cluster, tmp_path):
    from qd_point_task import register_point_task

    from qd.map_elites import MapElites
    from qd.run import main as qd_main

    env_id = "QDPointRayCLI-v0"
    register_point_task(env_id, max_steps=5, graded=True)
    common = ["--env", env_id, "--budget", "30", "--seed", "3", "--no-progress", "--save-freq", "-1",
              "-params", "batch_size:10", "sigma:0.2"]
    assert qd_main(MapElites, [*common, "-f", str(tmp_path / "process")]) == 0
    assert qd_main(MapElites, [*common, "-f", str(tmp_path / "ray"), "--backend", "ray", "--batch-size", "4"]) == 0
    (local,) = (tmp_path / "process").glob("*/*/metrics.json")
    (remote,) = (tmp_path / "ray").glob("*/*/metrics.json")
    same = ("evaluations", "coverage", "reward_areas_found", "best_reward_per_area", "evaluations_to_first_reward")
    local_metrics, remote_metrics = json.loads(local.read_text()), json.loads(remote.read_text())
    assert {key: local_metrics[key] for key in same} == {key: remote_metrics[key] for key in same}
    config = json.loads((remote.parent / "config.json").read_text())
    assert config["backend"] == "ray"


def test_a_three_trial_sweep_writes_the_best_entry_and_the_trial_table(cluster, tmp_path, capsys):
    pytest.importorskip("optuna", reason='sweeps need Optuna: pip install -e ".[ray]"')
    from stable_baselines3 import PPO

    from rl.hyperparams import conf_file_hyperparams, resolve_hyperparams
    from rl.sweep import main

    space = tmp_path / "space.yml"
    space.write_text("learning_rate: {loguniform: [1e-4, 1e-2]}\n"
                     "n_epochs: {categorical: [1, 2]}\n"
                     "policy_kwargs: {categorical: [{net_arch: [8]}, {net_arch: [16]}]}\n"  # as Python text
                     "n_steps: 64\n")
    argv = ["--algo", "ppo", "--env", "CartPole-v1", "--space", str(space), "--trials", "3", "-n", "128",
            "--eval-freq", "64", "--eval-episodes", "1", "--final-eval-episodes", "2", "--grace-period", "64",
            "--n-startup-trials", "2", "-params", "batch_size:32", "normalize:False", "-f", str(tmp_path),
            "--verbose", "0"]
    assert main(argv) == 0
    out = tmp_path / "sweeps" / "ppo" / "CartPole-v1_1"
    with open(out / "trials.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 and all(row["final_metric"] and row["reports"] for row in rows)
    assert {row["stopped_early"] for row in rows} <= {"yes", "no"} and rows[0]["stopped_early"] == "no"
    assert "| trial | learning_rate |" in (out / "trials.md").read_text()
    assert "Best hyperparameters" in capsys.readouterr().out
    # An algos/hyperparams-style entry: -conf best.yml trains with the best trial's values, the fixed ones included.
    best = conf_file_hyperparams(str(out / "best.yml"), "CartPole-v1")
    assert best["learning_rate"] == pytest.approx(float(rows[0]["learning_rate"]))
    assert best["n_steps"] == 64 and best["batch_size"] == 32
    assert best["policy_kwargs"] in ({"net_arch": [8]}, {"net_arch": [16]})
    resolved = resolve_hyperparams("ppo", PPO, "CartPole-v1", conf_file=str(out / "best.yml"))
    assert resolved["n_epochs"] == best["n_epochs"] and resolved["normalize"] is False
