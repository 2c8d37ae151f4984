"""Run an external baseline's script as a child process: its output streamed into a log file (and optionally
echoed here), the last lines of its stderr kept for a one-line error, a timeout that kills it.

Shared by :func:`rl.external.d3rlpy_baseline.run_d3rlpy`, :func:`rl.external.pgmorl_baseline.run_pgmorl` and
:func:`rl.external.imitation_baseline.run_imitation_preference_baseline`: :func:`child_env` is the environment
each child gets; :func:`run_for_result` turns the exit status and the stderr tail into the one-line errors of
the last two (d3rlpy's, over several lines with the command, are its own).
"""

from __future__ import annotations

import collections
import json
import os
import shlex
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from rl.external.errors import ExternalBaselineError

DROPPED_ENV: tuple[str, ...] = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONSAFEPATH")
"""Variables that would change what a baseline venv's python imports: this venv's packages, or (PYTHONSAFEPATH)
not its script's folder."""

THREAD_ENV: dict[str, str] = {
    "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
}
"""One thread per library, and output that reaches the log as it is written."""


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without :data:`DROPPED_ENV`, with :data:`THREAD_ENV` and then ``extra``."""
    env = {key: value for key, value in os.environ.items() if key not in DROPPED_ENV}
    env.update(THREAD_ENV)
    env.update(extra or {})
    return env


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


def read_finished(path: str | os.PathLike, algorithm: str, inputs: Mapping[str, Any], *,
                  blocks: Sequence[str] = ()) -> dict | None:
    """The JSON object at ``path`` if it is a finished run of ``algorithm`` (its ``"algorithm"``) with these
    ``inputs`` (its ``"inputs"``) and an object under each key of ``blocks``; else None (also when unreadable)."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if (isinstance(record, dict) and record.get("algorithm") == algorithm and record.get("inputs") == dict(inputs)
            and all(isinstance(record.get(key), dict) for key in blocks)):
        return record
    return None


def run_for_result(command: Sequence[str], log_path: str | os.PathLike, read: Callable[[], dict | None], *,
                   what: str, venv_module: str, out: str | os.PathLike, env: Mapping[str, str],
                   cwd: str | os.PathLike, timeout: float | None = None, echo: bool = False,
                   tail_lines: int = 40) -> dict:
    """Run ``command`` (:func:`run_logged`; ``command[0]`` is the venv's python) and return ``read()``, its result.

    Raises:
        ExternalBaselineError: one line starting with ``what``: the python could not start (`python -m
            <venv_module>` makes the venv), or the run timed out (killed), failed (with the last line of its
            stderr) or left no result (``read()`` gave None; ``out`` is where it was expected); the last three with
            the log's path.
    """
    log = Path(log_path)
    try:
        code, stderr_tail = run_logged(command, log, env=env, cwd=cwd, timeout=timeout, echo=echo,
                                       tail_lines=tail_lines)
    except OSError as error:
        raise ExternalBaselineError(
            f"{what} could not start {str(command[0])!r} ({error}); `python -m {venv_module}` makes the venv."
        ) from error
    last = last_line(stderr_tail)
    if code is None:
        raise ExternalBaselineError(f"{what} timed out after {timeout} s and was killed: {last} (full output: {log})")
    if code != 0:
        raise ExternalBaselineError(f"{what} failed with exit status {code}: {last} (full output: {log})")
    record = read()
    if record is None:
        raise ExternalBaselineError(
            f"{what} exited normally but left no readable result for these inputs in {out} (full output: {log})"
        )
    return record


__all__ = ["DROPPED_ENV", "THREAD_ENV", "child_env", "last_line", "read_finished", "run_for_result", "run_logged"]
