"""Run a training command line and kill this process at its k-th training step (test instrumentation).

``python tests/resume_fault_child.py <kill_at> <signal> <module> <args...>`` runs ``<module>``'s ``main(args)``
(e.g. ``rl.cli``, ``algos.snapshot``) and, at the ``kill_at``-th call of the runner's top-level callbacks'
``on_step`` (one env step, or one offline gradient update), sends itself ``<signal>`` (KILL or INT). The count
is of training steps only, so the kill point is the same in every run of the same command.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys

import torch as th
from stable_baselines3.common.callbacks import CallbackList


def main() -> int:
    kill_at, signal_name, module_name, *argv = sys.argv[1:]
    th.set_num_threads(1)
    sent = signal.Signals[f"SIG{signal_name}"]
    ticks = 0
    original_on_step = CallbackList.on_step

    def on_step(self: CallbackList) -> bool:
        nonlocal ticks
        if self.parent is None:  # the runner's own list, not one nested in EvalCallback
            ticks += 1
            if ticks == int(kill_at):
                os.kill(os.getpid(), sent)
        return original_on_step(self)

    CallbackList.on_step = on_step  # type: ignore[method-assign]
    module = importlib.import_module(module_name)
    if module_name == "rl.cli":
        return module.main(None, argv)
    return module.main(argv)


if __name__ == "__main__":
    sys.exit(main())
