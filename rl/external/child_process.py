"""Run an external baseline's script as a child process: its output streamed into a log file (and optionally
echoed here), the last lines of its stderr kept for a one-line error, a timeout that kills it.

Shared by :func:`rl.external.d3rlpy_baseline.run_d3rlpy` and :func:`rl.external.pgmorl_baseline.run_pgmorl`:
each turns the exit status and the stderr tail into its own message.
"""

from __future__ import annotations

import collections
import os
import shlex
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import IO, Any


def _pump(stream: IO[str], sinks: Sequence[Any], tail: collections.deque | None, lock: threading.Lock) -> None:
    """Copy ``stream`` line by line to ``sinks`` (files), keeping the last lines in ``tail``."""
    for line in stream:
        with lock:
            for sink in sinks:
                sink.write(line)
                sink.flush()
        if tail is not None:
            tail.append(line.rstrip("\n"))


def run_logged(command: Sequence[str], log_path: str | os.PathLike, *, env: Mapping[str, str],
               cwd: str | os.PathLike, timeout: float | None = None, echo: bool = False,
               tail_lines: int = 40) -> tuple[int | None, collections.deque[str]]:
    """Run ``command``, writing ``$ <command>`` then its stdout and stderr to ``log_path``.

    Returns the exit status (None when it ran past ``timeout`` and was killed) and the last ``tail_lines``
    lines of its stderr. ``echo`` also copies stdout and stderr to this process's.

    Raises:
        OSError: the command could not be started (the caller names the venv to make).
    """
    stderr_tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
    lock = threading.Lock()
    with open(log_path, "w") as log:
        log.write("$ " + shlex.join(command) + "\n")
        log.flush()
        process = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   errors="replace", env=dict(env), cwd=cwd)
        threads = [
            threading.Thread(target=_pump, args=(process.stdout, [log, *([sys.stdout] if echo else [])], None, lock),
                             daemon=True),
            threading.Thread(target=_pump, args=(process.stderr, [log, *([sys.stderr] if echo else [])], stderr_tail,
                                                 lock), daemon=True),
        ]
        for thread in threads:
            thread.start()
        try:
            code: int | None = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            code = None
        for thread in threads:
            thread.join()
    return code, stderr_tail


def last_line(tail: Sequence[str]) -> str:
    """The last non-blank stderr line, for a one-line error."""
    return next((line.strip() for line in reversed(tail) if line.strip()), "(nothing on stderr)")


__all__ = ["last_line", "run_logged"]
