"""d3rlpy's own virtual environment: its pinned requirements, and :func:`ensure_venv` that creates it on demand.

d3rlpy 2.8.1 pins ``gymnasium==1.0.0`` while this project uses a newer gymnasium, so d3rlpy runs in a venv of
its own (see :mod:`rl.external`). The venv is made with this interpreter's ``-m venv``, then::

    <venv>/bin/python -m pip install torch==2.13.0                     # first, alone: the CPU build
    <venv>/bin/python -m pip install torch==2.13.0 d3rlpy==2.8.1 gymnasium[mujoco]==1.0.0 mujoco==...

(torch first, and pinned again in the second command, so that pip never swaps in a multi-GB CUDA build to
satisfy d3rlpy's ``torch>=2.5.0``), then a check imports everything and makes ``Hopper-v4``. Only then is the
marker file ``.frontier-rl-complete.json`` written, last and atomically: a venv without it (an interrupted
install) or with other requirements in it (the pins changed) is repaired by running the same steps again
(pip skips what is already installed). A lock file next to the venv serialises concurrent ``ensure_venv``.

``python -m rl.external.d3rlpy_venv`` creates it, with a short progress print.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from rl.external.errors import ExternalBaselineError

D3RLPY_VERSION = "2.8.1"
"""The d3rlpy release the benchmark compares against."""

TORCH_REQUIREMENT = "torch==2.13.0"
"""Installed first and alone (a CPU build on these machines), then kept by repeating it in the second step."""

REQUIREMENTS: tuple[str, ...] = (
    TORCH_REQUIREMENT,
    f"d3rlpy=={D3RLPY_VERSION}",
    "gymnasium[mujoco]==1.0.0",  # d3rlpy 2.8.1 requires exactly this gymnasium
    "mujoco==4.0.0",  # the project venv's MuJoCo: same physics; gymnasium 1.0.0's v4 envs run on it (install check)
)
"""Everything the d3rlpy venv gets, pinned; d3rlpy brings h5py, gym 0.26, structlog, ... unpinned."""

VENV_ENV_VAR = "FRONTIER_RL_D3RLPY_VENV"
"""Environment variable that overrides the venv's location."""

DEFAULT_VENV = Path("~/.frontier-rl/venvs") / f"d3rlpy-{D3RLPY_VERSION}"
"""Where the venv goes when :data:`VENV_ENV_VAR` is not set (``~`` expanded at call time)."""

MARKER_NAME = ".frontier-rl-complete.json"
"""Written into the venv last, once every install step and the check have passed."""

CHECK_ENVS: tuple[str, ...] = ("Hopper-v4", "HalfCheetah-v4", "Walker2d-v4")
"""Envs that the install check makes and steps."""

_CHECK_CODE = """
import json, platform, sys
import d3rlpy, gymnasium, h5py, mujoco, numpy, torch
assert d3rlpy.__version__ == {d3rlpy!r}, d3rlpy.__version__
for env_id in {envs!r}:
    env = gymnasium.make(env_id)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    env.close()
print(json.dumps({{"d3rlpy": d3rlpy.__version__, "torch": torch.__version__, "gymnasium": gymnasium.__version__,
                  "mujoco": mujoco.__version__, "numpy": numpy.__version__, "h5py": h5py.__version__,
                  "python": platform.python_version()}}))
"""

_TAIL_LINES = 40


def venv_path() -> Path:
    """The d3rlpy venv's folder: ``$FRONTIER_RL_D3RLPY_VENV`` if set, else ``~/.frontier-rl/venvs/d3rlpy-2.8.1``."""
    override = os.environ.get(VENV_ENV_VAR)
    return Path(override).expanduser() if override else DEFAULT_VENV.expanduser()


def venv_python(path: str | os.PathLike) -> Path:
    """The python executable inside the venv at ``path`` (whether or not it exists)."""
    path = Path(path)
    return path / "Scripts" / "python.exe" if os.name == "nt" else path / "bin" / "python"


def marker_path(path: str | os.PathLike) -> Path:
    """The completion marker of the venv at ``path``."""
    return Path(path) / MARKER_NAME


def read_marker(path: str | os.PathLike) -> dict | None:
    """The marker's content, or None when it is missing or unreadable."""
    try:
        return json.loads(marker_path(path).read_text())
    except (OSError, ValueError):
        return None


def is_complete(path: str | os.PathLike) -> bool:
    """Whether the venv at ``path`` was fully installed with today's :data:`REQUIREMENTS`.

    False for a missing venv, a half-installed one (no marker: the install was interrupted or failed), one
    whose python is gone, and one installed with other pins (the marker lists what it was installed with).
    """
    marker = read_marker(path)
    return (
        isinstance(marker, dict)
        and marker.get("requirements") == list(REQUIREMENTS)
        and venv_python(path).is_file()
    )


def install_commands(python: str | os.PathLike, *, quiet: bool = True) -> list[list[str]]:
    """The pip commands that install :data:`REQUIREMENTS` with the venv's ``python``, in order."""
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", *(["-q"] if quiet else [])]
    return [[*pip, TORCH_REQUIREMENT], [*pip, *REQUIREMENTS]]


def check_command(python: str | os.PathLike) -> list[str]:
    """The command that imports d3rlpy and its stack in the venv, makes :data:`CHECK_ENVS` and prints versions."""
    return [str(python), "-c", _CHECK_CODE.format(d3rlpy=D3RLPY_VERSION, envs=CHECK_ENVS)]


def _run(command: Sequence[str], *, echo: bool, what: str, path: Path) -> str:
    """Run ``command``, its output streamed (``echo``) and kept; raise ExternalBaselineError if it fails."""
    tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
    lines: list[str] = []
    try:
        process = subprocess.Popen(
            list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        )
    except OSError as error:
        raise ExternalBaselineError(
            f"Could not {what} for the d3rlpy venv at {str(path)!r}: {shlex.join(command)} could not start "
            f"({error}). {_fix(path)}"
        ) from error
    assert process.stdout is not None
    for line in process.stdout:
        tail.append(line.rstrip("\n"))
        lines.append(line)
        if echo:
            print(line, end="", flush=True)
    code = process.wait()
    if code != 0:
        raise ExternalBaselineError(
            f"Could not {what} for the d3rlpy venv at {str(path)!r}: the command\n    {shlex.join(command)}\n"
            f"exited with status {code}. Its last output lines:\n"
            + "\n".join(f"    {line}" for line in tail)
            + f"\n{_fix(path)}"
        )
    return "".join(lines)


def _fix(path: Path) -> str:
    """What to do when setting up the venv fails."""
    return (
        "Fix: the install needs PyPI (or a mirror in pip's config, `pip config list`): check network and proxy "
        "settings, then rerun `python -m rl.external.d3rlpy_venv` (it repairs a half-installed venv). "
        f"Or build the venv by hand with those commands ({', '.join(REQUIREMENTS)}, torch first) and point "
        f"{VENV_ENV_VAR} at it; ensure_venv then only re-checks it. Delete {str(path)!r} to start from scratch."
    )


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<venv>.lock`` (POSIX; no lock where fcntl is missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path.with_name(f".{path.name}.lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_marker(path: Path, content: dict) -> None:
    """Write the marker atomically (temporary file, then rename)."""
    target = marker_path(path)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(content, indent=2) + "\n")
    os.replace(tmp, target)


def _python_runs(python: Path) -> bool:
    """Whether ``python`` exists and starts."""
    if not python.is_file():
        return False
    try:
        return subprocess.run([str(python), "-c", "pass"], capture_output=True, timeout=120).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def ensure_venv(
    path: str | os.PathLike | None = None,
    *,
    quiet: bool = True,
    progress: Callable[[str], None] | None = None,
    base_python: str | os.PathLike | None = None,
) -> Path:
    """Make sure the d3rlpy venv exists and is complete; return its python executable.

    Idempotent: a complete venv (:func:`is_complete`) is returned at once. A missing one is created; a
    half-installed one (no marker) is repaired by running the install steps again, after recreating it
    (``venv --clear``) if its python no longer starts. The marker is written last.

    Args:
        path: the venv's folder; default :func:`venv_path`.
        quiet: hide pip's output (it is still kept for the error message).
        progress: called with one short line per step (``print`` for the command line).
        base_python: the interpreter whose ``-m venv`` makes the venv; default this one.

    Raises:
        ExternalBaselineError: a step failed (no network, ...): the message names the command, the end of its
            output and the fix.
    """
    path = Path(path).expanduser() if path is not None else venv_path()
    python = venv_python(path)
    say = progress or (lambda _message: None)
    if is_complete(path):
        return python
    with _lock(path):
        if is_complete(path):  # another process finished it while we waited for the lock
            return python
        started = time.perf_counter()
        marker_path(path).unlink(missing_ok=True)
        if not _python_runs(python):
            say(f"creating venv {path}")
            base = str(base_python or sys.executable)
            _run([base, "-m", "venv", "--clear", str(path)], echo=not quiet, what="create the venv", path=path)
        else:
            say(f"repairing venv {path} (no completion marker: an earlier install did not finish)")
        for command in install_commands(python, quiet=quiet):
            say("$ " + shlex.join(command))
            step = time.perf_counter()
            _run(command, echo=not quiet, what="install the requirements", path=path)
            say(f"  done in {time.perf_counter() - step:.0f} s")
        say("checking imports and the MuJoCo envs")
        output = _run(check_command(python), echo=False, what="check the installed packages", path=path)
        versions = json.loads(output.strip().splitlines()[-1])
        _write_marker(
            path,
            {
                "requirements": list(REQUIREMENTS),
                "versions": versions,
                "base_python": str(base_python or sys.executable),
                "seconds": round(time.perf_counter() - started, 1),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            },
        )
        say(f"ready in {time.perf_counter() - started:.0f} s: {python} ({json.dumps(versions)})")
    return python


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rl.external.d3rlpy_venv [--path P] [--verbose]``: create (or repair) the d3rlpy venv."""
    parser = argparse.ArgumentParser(description=f"Create the d3rlpy {D3RLPY_VERSION} venv used by the benchmark.")
    parser.add_argument("--path", default=None, help=f"venv folder (default: ${VENV_ENV_VAR} or {DEFAULT_VENV})")
    parser.add_argument("--verbose", action="store_true", help="show pip's output")
    args = parser.parse_args(argv)
    path = Path(args.path).expanduser() if args.path else venv_path()
    if is_complete(path):
        print(f"d3rlpy venv already complete: {venv_python(path)} ({json.dumps(read_marker(path)['versions'])})")
        return 0
    try:
        ensure_venv(path, quiet=not args.verbose, progress=lambda message: print(message, flush=True))
    except ExternalBaselineError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
