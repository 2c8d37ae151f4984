"""Ctrl-C at a command line: one line saying what was saved and how to go on, exit 130 (the shell's code for SIGINT),
no traceback. Every long-running command's ``__main__`` goes through :func:`run_main`."""

from __future__ import annotations

import sys
from collections.abc import Callable

INTERRUPTED_EXIT = 130


def interrupted_message(interrupt: KeyboardInterrupt, resume: str) -> str:
    """Where training's checkpoint is (when a run had started, :class:`rl.runner.TrainingInterrupted`), then
    ``resume``, how to go on."""
    from rl.runner import TrainingInterrupted

    saved = (f"Interrupted at step {interrupt.num_timesteps}: checkpoint {interrupt.checkpoint} saved. "
             if isinstance(interrupt, TrainingInterrupted) else "Interrupted. ")
    return saved + resume


def run_main(main: Callable[[], int], resume: str = "Rerun the same command to resume.") -> int:
    """``main()``'s exit code; on Ctrl-C, :func:`interrupted_message` on stderr and :data:`INTERRUPTED_EXIT`."""
    try:
        return main()
    except KeyboardInterrupt as interrupt:
        print(interrupted_message(interrupt, resume), file=sys.stderr)
        return INTERRUPTED_EXIT
