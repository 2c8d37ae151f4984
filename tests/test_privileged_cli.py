"""algos.privileged: a tiny run trains with privileges, evaluates at level 0 and writes its level curve and frame
strip; bad input is one line, exit 2, no run folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from algos.privileged import main

TINY = ["--eval-freq", "60", "--eval-episodes", "1", "--final-eval-episodes", "1", "--no-progress", "--verbose",
        "0", "--num-threads", "1", "-params", "learning_starts:50", "buffer_size:1000", "batch_size:16",
        # a warm-up shorter than an episode, so no HER (sac.yml's default for the lift tasks)
        "replay_buffer_class:DictReplayBuffer", "replay_buffer_kwargs:dict()",
        "policy_kwargs:dict(net_arch=[8])"]


def test_tiny_run_lowers_the_level_and_evaluates_without_privileges(tmp_path):
    argv = ["--algo", "sac", "--env", "PandaLiftWide-v0", "-n", "120", "--curriculum", "linear", "--fraction",
            "0.5", "-f", str(tmp_path), *TINY]
    assert main(argv) == 0
    (run,) = tmp_path.glob("priv_sac/*/run.json")
    record = json.loads(run.read_text())
    curve = record["privileged"]["level_curve"]
    assert curve[0] == [0, 1.0, None] and record["privileged"]["final_level"] == 0.0
    assert [point[1] for point in curve] == sorted((point[1] for point in curve), reverse=True)
    assert len(curve) <= 101  # linear moves in hundredths
    assert record["config"]["eval_env_wrapper"] == "sim2real._privileges.PrivilegedManipulation"
    for name in ("privileges.png", "episode_frames.png", "learning_curve.png"):
        assert (run.parent / name).is_file()
    with np.load(run.parent / "evaluations.npz") as evaluations:
        assert "successes" in evaluations.files  # the success rate at level 0, from info["is_success"]


def test_the_evaluation_env_runs_at_level_zero(monkeypatch, tmp_path):
    import sim2real._privileges as module

    levels: list[float] = []
    original = module.PrivilegedManipulation.__init__

    def spy(self, env, privileges=module.PRIVILEGES, *, level=1.0, max_force=10.0):
        levels.append(level)
        original(self, env, privileges, level=level, max_force=max_force)

    monkeypatch.setattr(module.PrivilegedManipulation, "__init__", spy)
    argv = ["--algo", "sac", "--env", "PandaLiftWide-v0", "-n", "60", "--curriculum", "never", "-f", str(tmp_path),
            *TINY]
    assert main(argv) == 0
    assert levels[:2] == [1.0, 0.0]  # the training env at full privileges, the evaluation env at none


@pytest.mark.parametrize("extra, message", [
    (["--env", "PandaLiftWide-v0", "--privileges", "gravity_off"], "unknown privilege(s) gravity_off"),
    (["--env", "PandaLiftWide-v0", "--curriculum", "cosine"], "unknown curriculum 'cosine'"),
    (["--env", "PandaLiftWide-v0", "--threshold", "2"], "threshold, step and fraction must be in (0, 1]"),
    (["--env", "Pendulum-v1"], "Pendulum-v1 is not a manipulation env"),
])
def test_bad_input_is_one_line_exit_2_and_no_run_folder(extra, message, tmp_path, capsys):
    assert main(["--algo", "sac", "-n", "50", "--no-progress", "-f", str(tmp_path / "logs"), *extra]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error, error
    assert not any(Path(tmp_path / "logs").glob("*/*/run_inputs.json"))
