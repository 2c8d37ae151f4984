"""algos.privileged_report: the object heights and forces it reports are the physics', and a finished benchmark
run is summarised from its committed record and its final model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from algos.privileged import PrivilegedOptions
from algos.privileged_report import OBJECT_WEIGHT, OFF_TABLE, analyse, lift_statistics, main
from envs.lift_goal import LIFT_HEIGHT


class PushObjectUp:
    """A scripted policy: the arm holds still, the object force channels push straight up at full strength."""

    def predict(self, observation, deterministic=True):
        return np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0], dtype=np.float32), None


def test_force_above_the_weight_lifts_and_is_reported_at_its_newtons():
    options = PrivilegedOptions(curriculum="never")
    stats = lift_statistics(PushObjectUp(), "PandaLiftWide-v0", options, 1.0, episodes=1)
    assert stats.max_height > LIFT_HEIGHT
    assert stats.lifted_force == pytest.approx(10.0)  # level 1 x 10 N x a full channel


def test_force_below_the_weight_does_not_lift():
    options = PrivilegedOptions(curriculum="never")
    level = 0.4  # 4 N, below the 0.5 kg object's 4.9 N
    assert level * options.max_force < OBJECT_WEIGHT
    stats = lift_statistics(PushObjectUp(), "PandaLiftWide-v0", options, level, episodes=1)
    assert stats.max_height < OFF_TABLE and stats.success_rate == 0.0 and stats.lifted_force is None


def test_level_zero_ignores_the_force_channels():
    stats = lift_statistics(PushObjectUp(), "PandaLiftWide-v0", PrivilegedOptions(curriculum="none"), 0.0,
                            episodes=1)
    assert stats.max_height < OFF_TABLE and stats.final_height < OFF_TABLE and stats.lifted_force is None


def test_a_finished_benchmark_run_is_summarised(tmp_path):
    from rl.benchmark import execute, per_algo_overrides, plan

    hyperparams = per_algo_overrides([
        "priv_sac@never.learning_starts:50", "priv_sac@never.buffer_size:1000", "priv_sac@never.batch_size:16",
        "priv_sac@never.policy_kwargs:dict(net_arch=[8])", "priv_sac@never.replay_buffer_class:DictReplayBuffer",
        "priv_sac@never.replay_buffer_kwargs:dict()", "priv_sac@never.priv_curriculum:never"], ["priv_sac@never"])
    (spec,) = plan("tiny", ["priv_sac@never"], ["PandaLiftWide-v0"], [0], 60, hyperparams=hyperparams,
                   results_root=str(tmp_path / "results"), logs_root=str(tmp_path / "logs"), eval_freq=60,
                   eval_episodes=1, final_eval_episodes=1, save_freq=1000)
    assert "error" not in execute(spec)
    path = analyse("tiny", episodes=1, results_root=str(tmp_path / "results"), logs_root=str(tmp_path / "logs"))
    text = path.read_text()
    assert "| PandaLiftWide-v0 | priv_sac@never | 1 | 1.00 +- 0.00 |" in text  # never removed: it ends at level 1
    (summary,) = json.loads((path.parent / "analysis.json").read_text())
    assert summary["at_level_0"]["level"] == 0.0 and summary["at_final_level"]["level"] == 1.0
    assert (path.parent / "levels.png").is_file()


def test_no_finished_runs_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main(["--name", "nothing"])
    assert stop.value.code == 2
    assert "has no finished runs: run the benchmark first" in capsys.readouterr().err
