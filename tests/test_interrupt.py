"""Ctrl-C at the command lines (rl.interrupt): one line, exit 130, no traceback, through every long command."""

import subprocess
import sys
from pathlib import Path

import pytest

from rl.interrupt import INTERRUPTED_EXIT, interrupted_message, run_main
from rl.runner import TrainingInterrupted

ROOT = Path(__file__).resolve().parents[1]


def test_the_line_says_where_the_checkpoint_is_when_training_had_started():
    during = TrainingInterrupted("logs/x", Path("logs/x/checkpoints/step_7"), 7)
    assert interrupted_message(during, "Rerun.") == "Interrupted at step 7: checkpoint logs/x/checkpoints/step_7 " \
                                                    "saved. Rerun."
    assert interrupted_message(KeyboardInterrupt(), "Rerun.") == "Interrupted. Rerun."


def test_run_main_returns_the_exit_code_or_130_with_one_line(capsys):
    assert run_main(lambda: 3) == 3
    assert capsys.readouterr().err == ""

    def interrupted() -> int:
        raise KeyboardInterrupt

    assert run_main(interrupted, "Go on with X.") == INTERRUPTED_EXIT == 130
    assert capsys.readouterr().err == "Interrupted. Go on with X.\n"


@pytest.mark.parametrize("module", ["rl.datasets", "algos.cmorl_benchmark", "algos.h2o_benchmark",
                                    "algos.parl_benchmark", "algos.spo_benchmark", "algos.tsddr_benchmark",
                                    "rl.scale_benchmark"])
def test_every_long_command_goes_through_run_main(module):
    """Each module's ``__main__`` block calls run_main (read from its source: running them takes minutes)."""
    path = ROOT / (module.replace(".", "/") + ("/__main__.py" if module == "rl.datasets" else ".py"))
    block = path.read_text().split('if __name__ == "__main__":')[1]
    assert "sys.exit(run_main(" in block


def test_a_real_ctrl_c_in_a_command_prints_one_line(tmp_path):
    """SIGINT-like: a KeyboardInterrupt raised inside main() of a real entry point (rl.datasets make, whose
    argument parsing is patched to raise) ends with one line and 130."""
    code = ("import sys, rl.datasets.make as make\n"
            "def interrupted(argv=None):\n    raise KeyboardInterrupt\n"
            "make.main = interrupted\n"
            "import runpy\nsys.argv = ['rl.datasets']\nrunpy.run_module('rl.datasets', run_name='__main__')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "Interrupted. Rerun the same command to resume the collection."
    assert "Traceback" not in done.stderr
