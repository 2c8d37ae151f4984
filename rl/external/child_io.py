"""What the external baselines' child scripts share: strict JSON written atomically, the command line, the one-line
error for the parent, torch on one thread.

The child scripts (``imitation_run.py``, ``pgmorl_run.py``, ``d3rlpy_run.py``) run in other venvs, where the project
is not installed and its ``rl/__init__.py`` (SB3 2.x code) must not run. So this module imports only the standard
library and numpy at module level (torch inside :func:`single_thread_torch`), and each script loads it by path from
beside itself, the same way whether it runs as a script in its venv, is loaded by path (the tests) or is imported
as ``rl.external.<script>`` in the project's venv::

    _spec = importlib.util.spec_from_file_location("frontier_rl_child_io", Path(__file__).with_name("child_io.py"))
    child_io = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(child_io)
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def jsonable(value: Any) -> Any:
    """``json.dumps``'s ``default``: numpy scalars and arrays as numbers and lists, a class as its dotted name,
    anything else (paths, devices) as ``str``."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    return str(value)


def strict(value: Any) -> Any:
    """``value`` for strict JSON: dict keys as strings, tuples and arrays as lists, NaN and infinities as None."""
    if isinstance(value, dict):
        return {str(k): strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    if isinstance(value, np.ndarray):
        return strict(value.tolist())
    if isinstance(value, (float, np.floating)) and not np.isfinite(value):
        return None
    return value


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, fsync'd, then renamed."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json_atomic(path: str | os.PathLike, record: dict) -> Path:
    """Write ``record`` as strict JSON (:func:`strict`, :func:`jsonable`; indented, a final newline) atomically
    (:func:`write_atomic`), its folder created; the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(strict(record), indent=2, default=jsonable, allow_nan=False) + "\n"
    write_atomic(path, text.encode())
    return path


def one_line(error: BaseException | str) -> str:
    """The error's text on one line (white space folded; "" for none)."""
    return " ".join(str(error).split())


def command_line(script: str, argv: Sequence[str] | None) -> str:
    """The command that ran the script (``argv`` None: this process's), as a shell line, for the output record."""
    return shlex.join([sys.executable, *(sys.argv if argv is None else [script, *argv])])


def report_failure(error: BaseException, message: str | None = None) -> int:
    """Print the traceback (for the log), then ``error: <type>: <message>`` as stderr's last line (what the parent
    shows); return the exit status 1. ``message`` defaults to :func:`one_line` of the error, or ``(no message)``."""
    traceback.print_exc()
    text = message if message is not None else one_line(error) or "(no message)"
    print(f"error: {type(error).__name__}: {text}", file=sys.stderr, flush=True)
    return 1


def single_thread_torch() -> None:
    """One torch thread, intra- and inter-op (inter-op can only be set before torch's first parallel work)."""
    import torch

    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass


__all__ = [
    "command_line", "jsonable", "one_line", "report_failure", "single_thread_torch", "strict", "write_atomic",
    "write_json_atomic",
]
