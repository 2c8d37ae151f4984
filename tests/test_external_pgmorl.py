"""The PGMORL baseline (morl-baselines in its own venv), mostly without that venv or the network.

- ``morl_baselines_venv``: pins (torch first and alone), the location override, the completion marker (a
  half-installed or hand-made venv is completed and marked last), one-line install errors;
- ``pgmorl_run.py``'s pure functions (imported by path: the script runs in morl-baselines' venv): the budget plan
  (warm-up and evolution scaled in PGMORL's 80 : 20 ratio), the pooled observation statistics and the
  observation transform, its command line and its imports;
- ``run_pgmorl``'s subprocess handling with fake python executables: one-line errors from the child's stderr,
  the result returned, a finished result with the same inputs reused (resume), another one never returned;
- one tiny real run (mo-hopper-2obj-v5, 3072 steps) when the venv at the configured location is complete
  (``python -m rl.external.morl_baselines_venv``), skipped otherwise.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from external_helpers import (
    check_script_imports,
    check_venv_location,
    count_child_runs,
    fake_child,
    fake_python,
    load_script,
    make_venv_dir,
)
from external_helpers import fake_venv as marked_fake_venv

from rl.external import morl_baselines_venv, pgmorl_baseline
from rl.external.errors import ExternalBaselineError
from rl.external.pgmorl_baseline import RUN_SCRIPT, pgmorl_command, run_inputs, run_pgmorl


@pytest.fixture(scope="module")
def run_module():
    return load_script(RUN_SCRIPT, "pgmorl_run_under_test")


# -------------------------------------------------------------------------------------------------- the venv


def test_requirements_pin_torch_first_and_alone():
    requirements = morl_baselines_venv.REQUIREMENTS
    assert requirements[0] == morl_baselines_venv.TORCH_REQUIREMENT == "torch==2.13.0"
    assert "morl-baselines==1.3.0" in requirements
    assert all("==" in requirement for requirement in requirements)
    first, second = morl_baselines_venv.install_commands("/v/bin/python")
    assert first[-1] == "torch==2.13.0" and not any(arg in requirements for arg in first[:-1])
    assert second[-len(requirements):] == list(requirements)  # torch pinned again: no CUDA build swapped in


def test_venv_path_override(monkeypatch, tmp_path):
    check_venv_location(morl_baselines_venv, monkeypatch, tmp_path, "morl-baselines-1.3.0")


def complete_marker() -> dict:
    return {"requirements": list(morl_baselines_venv.REQUIREMENTS), "versions": {"morl-baselines": "1.3.0"}}


def test_marker_decides_completeness(tmp_path):
    assert not morl_baselines_venv.is_complete(tmp_path / "missing")
    make_venv_dir(tmp_path / "by-hand", None)
    assert not morl_baselines_venv.is_complete(tmp_path / "by-hand")
    make_venv_dir(tmp_path / "old", {"requirements": ["morl-baselines==1.2.0"]})
    assert not morl_baselines_venv.is_complete(tmp_path / "old")
    make_venv_dir(tmp_path / "ok", complete_marker())
    assert morl_baselines_venv.is_complete(tmp_path / "ok")


def test_unmarked_venv_is_completed_in_place_and_marked_last(tmp_path):
    path = tmp_path / "venv"
    make_venv_dir(path, None)
    calls = []

    def fake_run(command, *, echo, what, path):
        calls.append((list(command), morl_baselines_venv.marker_path(path).exists()))
        return 'pip chatter\n{"morl-baselines": "1.3.0"}\n' if "-c" in command else ""

    python = morl_baselines_venv.ensure_venv(path, run=fake_run, python_runs=lambda python: True)
    assert python == morl_baselines_venv.venv_python(path)
    commands = [command for command, _ in calls]
    assert "venv" not in commands[0]  # its python runs (e.g. a venv built by hand): completed, not recreated
    assert commands[0][-1] == "torch==2.13.0"
    assert commands[1][-len(morl_baselines_venv.REQUIREMENTS):] == list(morl_baselines_venv.REQUIREMENTS)
    assert commands[2][1] == "-c" and "PGMORL" in commands[2][2]  # the import check
    assert not any(marked for _, marked in calls)
    assert morl_baselines_venv.read_marker(path)["versions"] == {"morl-baselines": "1.3.0"}
    calls.clear()
    assert morl_baselines_venv.ensure_venv(path) == python and calls == []  # complete: nothing runs


def test_failed_install_is_one_line_with_the_last_output_and_the_fix(tmp_path):
    base = fake_python(tmp_path, "print('Collecting x')\nprint('ERROR: No matching distribution (network unreachable)')"
                                 "\nsys.exit(2)")
    path = tmp_path / "venv"
    with pytest.raises(ExternalBaselineError) as error:
        morl_baselines_venv.ensure_venv(path, base_python=base)
    message = str(error.value)
    assert "\n" not in message
    assert "-m venv" in message and "network unreachable" in message and "status 2" in message
    assert "Collecting" not in message and "Fix:" in message and morl_baselines_venv.VENV_ENV_VAR in message
    assert not morl_baselines_venv.is_complete(path)


# ------------------------------------------------------------------------------------------- the budget plan


def test_budget_plan_examples(run_module):
    plan = run_module.plan_iterations
    per_iteration = 4 * 6 * 2048
    assert per_iteration == 49_152
    small = plan(300_000)  # 6 iterations' worth: 80 : 20 of 6 -> 5 + 1, one generation
    assert (small["rule"], small["warmup_iterations"], small["evolutionary_iterations"]) == ("scaled", 5, 1)
    assert (small["steps_per_iteration"], small["generations"], small["iterations"]) == (2048, 1, 6)
    assert small["env_steps"] == small["train_total_timesteps"] == 6 * per_iteration == 294_912
    assert small["unused_timesteps"] == 300_000 - 294_912
    million = plan(1_000_000)  # 20 iterations -> 16 + 4
    assert (million["warmup_iterations"], million["evolutionary_iterations"], million["iterations"]) == (16, 4, 20)
    tiny = plan(20_000)  # not even one iteration: 1 + 1 with 416 steps per env (a multiple of 8: 32 minibatches)
    assert tiny["rule"] == "scaled_steps_per_iteration"
    assert (tiny["warmup_iterations"], tiny["evolutionary_iterations"], tiny["steps_per_iteration"]) == (1, 1, 416)
    assert tiny["env_steps"] == 2 * 4 * 6 * 416 == 19_968
    default = plan(100 * per_iteration)  # morl-baselines' minimum: PGMORL's own 80 + one generation of 20
    assert (default["rule"], default["warmup_iterations"], default["evolutionary_iterations"]) == ("defaults", 80, 20)
    assert default["generations"] == 1 and default["unused_timesteps"] == 0
    large = plan(10_000_000)  # 203 iterations: 80 + 6 whole generations of 20 (the 7th would overrun)
    assert (large["warmup_iterations"], large["evolutionary_iterations"], large["generations"]) == (80, 20, 6)
    assert large["iterations"] == 200 and large["env_steps"] == 200 * per_iteration
    assert plan(3072)["steps_per_iteration"] == 64
    with pytest.raises(ValueError, match="at least 3072"):
        plan(3071)


def test_budget_plan_keeps_pgmorls_ratio_and_never_exceeds_the_budget(run_module):
    for n in range(2, 100):
        plan = run_module.plan_iterations(n * 49_152 + 7)
        warmup, evolutionary = plan["warmup_iterations"], plan["evolutionary_iterations"]
        assert warmup >= 1 and evolutionary >= 1 and warmup + evolutionary == plan["iterations"] == n
        assert abs(warmup - 0.8 * n) <= 0.5 or n == 2, n
    rng = np.random.default_rng(0)
    for total in rng.integers(3072, 30_000_000, size=300):
        plan = run_module.plan_iterations(int(total))
        assert plan["env_steps"] <= total and plan["unused_timesteps"] == total - plan["env_steps"]
        per_iteration = 4 * 6 * plan["steps_per_iteration"]
        assert plan["env_steps"] == plan["iterations"] * per_iteration
        assert (4 * plan["steps_per_iteration"]) % 32 == 0  # PPO batch splits into 32 equal minibatches
        # PGMORL.train's own count of iterations from the total we give it is exactly the plan's
        assert plan["train_total_timesteps"] // plan["steps_per_iteration"] // 4 // 6 == plan["iterations"]
        assert plan["iterations"] == plan["warmup_iterations"] + plan["generations"] * plan["evolutionary_iterations"]


# ------------------------------------------------------------------------------ normalisation and the script


def test_pooled_moments_are_those_of_all_samples(run_module):
    rng = np.random.default_rng(1)
    chunks = [rng.normal(loc=i, scale=1 + i, size=(n, 3)) for i, n in enumerate((5, 40, 17, 9))]
    mean, var, count = run_module.pool_moments(
        [c.mean(axis=0) for c in chunks], [c.var(axis=0) for c in chunks], [len(c) for c in chunks]
    )
    everything = np.concatenate(chunks)
    np.testing.assert_allclose(mean, everything.mean(axis=0))
    np.testing.assert_allclose(var, everything.var(axis=0))
    assert count == len(everything)


def test_normalize_is_make_envs_transform(run_module):
    obs = np.array([1.0, -3.0, 1e6])
    out = run_module.normalize(obs, np.array([0.0, -1.0, 0.0]), np.array([4.0, 1.0, 1.0]), 1e-8)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [0.5, -2.0, 10.0], rtol=1e-6)


def test_command_line_round_trips_and_carries_the_inputs(run_module, tmp_path):
    command = pgmorl_command("py", "mo-halfcheetah-v5", 300_000, 3, (-100, -0.1), tmp_path / "o.json",
                             max_episode_steps=500, eval_episodes=4)
    assert command[:2] == ["py", str(RUN_SCRIPT)]
    args = run_module.parse_args(command[2:])
    assert args.ref_point == [-100.0, -0.1] and args.out == str((tmp_path / "o.json").resolve())
    assert run_module.run_inputs(args) == run_inputs("mo-halfcheetah-v5", 300_000, 3, [-100, -0.1],
                                                     max_episode_steps=500, eval_episodes=4)
    defaults = run_module.parse_args(["--env", "e", "--total-timesteps", "5000", "--ref-point", "0", "0", "--out", "o"])
    assert (defaults.max_episode_steps, defaults.eval_episodes, defaults.seed) == (500, 5, 0)
    with pytest.raises(SystemExit):  # below two minimal iterations
        run_module.parse_args(["--env", "e", "--total-timesteps", "1000", "--ref-point", "0", "0", "--out", "o"])


def test_run_script_imports_only_what_the_morl_venv_has():
    check_script_imports(RUN_SCRIPT, {"numpy", "torch", "gymnasium", "mo_gymnasium", "morl_baselines", "mujoco"})


# ------------------------------------------------------------------------------------------- run_pgmorl


def fake_venv(tmp_path: Path, body: str) -> Path:
    """A venv folder whose marker says complete and whose python is a fake script running ``body``."""
    return marked_fake_venv(tmp_path, body, complete_marker())


WRITE_RESULT = fake_child("{'algorithm': m.ALGORITHM, 'inputs': m.run_inputs(args), 'points': [[1.0, 2.0]]}",
                          "lots of PGMORL chatter")


def test_run_pgmorl_returns_the_result_and_resumes_from_a_finished_one(tmp_path, monkeypatch):
    calls = count_child_runs(monkeypatch, tmp_path)
    venv = fake_venv(tmp_path, WRITE_RESULT)
    out = tmp_path / "runs" / "pgmorl.json"
    record = run_pgmorl("mo-hopper-2obj-v5", 20_000, 1, (-100, -100), out, venv=venv, eval_episodes=3)
    argv = record["argv"]
    assert argv[0] == str(RUN_SCRIPT) and argv[argv.index("--max-episode-steps") + 1] == "500"
    assert record["omp"] == "1" and record["pythonpath"] is None
    assert "lots of PGMORL chatter" in pgmorl_baseline.log_path(out).read_text()
    assert pgmorl_baseline.log_path(out) == tmp_path / "runs" / "pgmorl.log"
    # The same inputs: the finished file is returned, nothing runs.
    assert run_pgmorl("mo-hopper-2obj-v5", 20_000, 1, [-100.0, -100.0], out, venv=venv, eval_episodes=3) == record
    assert calls.read_text().count("run") == 1
    # Other inputs: run again.
    other = run_pgmorl("mo-hopper-2obj-v5", 20_000, 2, (-100, -100), out, venv=venv, eval_episodes=3)
    assert other["inputs"]["seed"] == 2 and calls.read_text().count("run") == 2


def test_run_pgmorl_failure_is_one_line_with_the_last_stderr_line(tmp_path):
    venv = fake_venv(tmp_path, "print('progress')\nprint('Traceback (most recent call last): ...', file=sys.stderr)\n"
                               "print('error: ValueError: mo-foo-v0 exploded', file=sys.stderr)\nsys.exit(1)")
    out = tmp_path / "pgmorl.json"
    out.write_text(json.dumps({"algorithm": "PGMORL", "inputs": {"seed": 99}}))  # another run's result
    with pytest.raises(ExternalBaselineError) as error:
        run_pgmorl("mo-foo-v0", 5000, 0, (0, 0), out, venv=venv)
    message = str(error.value)
    assert "\n" not in message
    assert "error: ValueError: mo-foo-v0 exploded" in message and "exit status 1" in message
    assert "Traceback" not in message and "progress" not in message and str(pgmorl_baseline.log_path(out)) in message
    assert not out.exists()  # the stale file is gone, never returned


def test_run_pgmorl_without_a_result_or_in_time_raises(tmp_path):
    with pytest.raises(ExternalBaselineError, match="left no readable result"):
        run_pgmorl("mo-foo-v0", 5000, 0, (0, 0), tmp_path / "a.json", venv=fake_venv(tmp_path, "sys.exit(0)"))
    slow = tmp_path / "slow"
    slow.mkdir()
    venv = fake_venv(slow, "import time\nprint('warming up', file=sys.stderr)\ntime.sleep(30)")
    with pytest.raises(ExternalBaselineError, match="timed out after 1 s.*warming up"):
        run_pgmorl("mo-foo-v0", 5000, 0, (0, 0), tmp_path / "b.json", venv=venv, timeout=1)


# --------------------------------------------------------------------------------------------- a real run


def test_tiny_real_pgmorl_run_on_hopper(tmp_path):
    if not morl_baselines_venv.is_complete(morl_baselines_venv.venv_path()):
        pytest.skip(
            f"no complete morl-baselines venv at {morl_baselines_venv.venv_path()} (set "
            f"{morl_baselines_venv.VENV_ENV_VAR} or run `python -m rl.external.morl_baselines_venv`)"
        )
    out = tmp_path / "pgmorl.json"
    record = run_pgmorl("mo-hopper-2obj-v5", 3072, 0, (-100, -100), out, eval_episodes=2, timeout=300)
    assert (record["algorithm"], record["library"], record["version"]) == ("PGMORL", "morl-baselines", "1.3.0")
    settings, budget = record["settings"], record["budget"]
    assert settings["log"] is False and settings["pop_size"] == 6 and settings["num_envs"] == 4
    assert (settings["warmup_iterations"], settings["evolutionary_iterations"], settings["steps_per_iteration"]) == (
        1, 1, 64)
    assert settings["gamma"] == 0.995 and settings["delta_weight"] == 0.2 and settings["origin"] == [-100.0, -100.0]
    assert record["global_step"] == budget["env_steps"] == 3072
    assert 0 < record["env_steps"] <= 3072 and record["steps_per_s"] > 0 and record["wall_s"] > 0
    points = np.asarray(record["points"])
    assert points.ndim == 2 and points.shape[1] == 2 and len(points) == len(record["archive_reported"]) >= 1
    assert np.all(np.isfinite(points))
    for policy in record["policies"]:
        assert len(policy["episode_lengths"]) == 2 and max(policy["episode_lengths"]) <= 500
    assert out.exists() and os.path.getsize(out) > 0
    assert run_pgmorl("mo-hopper-2obj-v5", 3072, 0, (-100, -100), out, eval_episodes=2) == record  # resumed
