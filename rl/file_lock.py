"""An exclusive lock between processes that write the same files (POSIX ``flock``; no lock where fcntl is missing).

Benchmark invocations started side by side append to one ``versions.json``, benchmark workers export one dataset,
and several runs may build one external baseline's venv: each holds this lock around its read-modify-write.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def exclusive_lock(lock_file: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_file`` (created with its folder) until the block ends.

    The lock belongs to the open file, so two processes (or two opens in one process) wait for each other.
    Without fcntl (Windows) nothing is locked: one writer at a time is then the caller's matter.
    """
    lock_file = Path(lock_file)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(lock_file, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
