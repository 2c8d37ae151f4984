"""morl-baselines' own virtual environment: its pinned requirements, and :func:`ensure_venv` that creates it.

The C-MORL benchmark compares against PGMORL as implemented by ``morl-baselines`` 1.3.0, which brings its own
stack (wandb, pymoo, cvxpy, pycddlib, ...), so it runs in a venv of its own, as d3rlpy does (see
:mod:`rl.external` and :mod:`rl.external.d3rlpy_venv`, whose design this module follows). The venv is made with
this interpreter's ``-m venv``, then::

    <venv>/bin/python -m pip install torch==2.13.0                     # first, alone: the CPU build
    <venv>/bin/python -m pip install torch==2.13.0 morl-baselines==1.3.0 mo-gymnasium==1.3.2 ...

(torch first, and pinned again in the second command, so that pip never swaps in a multi-GB CUDA build to
satisfy morl-baselines' ``torch>=1.12.0``), then a check imports PGMORL and makes and steps the MuJoCo envs
(:data:`CHECK_ENVS`). Only then is the marker ``.frontier-rl-complete.json`` written, last and atomically: a venv
without it (an interrupted install, or one built by hand) or with other pins in it is (re)installed with the same
steps (pip skips what is already there). A lock file next to the venv serialises concurrent ``ensure_venv``.

``python -m rl.external.morl_baselines_venv [--path P]`` creates (or completes) it. The location is ``--path``,
else ``$FRONTIER_RL_MORL_VENV``, else ``~/.frontier-rl/venvs/morl-baselines-1.3.0``. Errors are
:class:`~rl.external.errors.ExternalBaselineError` with a one-line message.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from rl.external.d3rlpy_venv import (
    MARKER_NAME,
    _lock,
    _python_runs,
    _write_marker,
    marker_path,
    read_marker,
    venv_python,
)
from rl.external.errors import ExternalBaselineError

__all__ = [
    "CHECK_ENVS", "DEFAULT_VENV", "MARKER_NAME", "MORL_BASELINES_VERSION", "REQUIREMENTS", "TORCH_REQUIREMENT",
    "VENV_ENV_VAR", "check_command", "ensure_venv", "install_commands", "is_complete", "marker_path", "read_marker",
    "venv_path", "venv_python",
]

MORL_BASELINES_VERSION = "1.3.0"
"""The morl-baselines release the benchmark compares against."""

TORCH_REQUIREMENT = "torch==2.13.0"
"""Installed first and alone (a CPU build on these machines), then kept by repeating it in the second step."""

REQUIREMENTS: tuple[str, ...] = (
    TORCH_REQUIREMENT,
    f"morl-baselines=={MORL_BASELINES_VERSION}",
    "mo-gymnasium==1.3.2",  # the MO envs (mo-hopper-2obj-v5, mo-halfcheetah-v5, ...) and MOSyncVectorEnv
    "gymnasium[mujoco]==1.4.0",  # the project venv's gymnasium; [mujoco] brings what the MuJoCo envs need
    "mujoco==4.0.1",  # the project venv's MuJoCo: the same physics as our own C-MORL runs
    "pymoo==0.6.2",  # morl-baselines' hypervolume (PGMORL's task selection)
)
"""Everything the morl-baselines venv gets, pinned; morl-baselines brings wandb, scipy, cvxpy, ... unpinned."""

VENV_ENV_VAR = "FRONTIER_RL_MORL_VENV"
"""Environment variable that overrides the venv's location (e.g. ``/work/venvs/morl``)."""

DEFAULT_VENV = Path("~/.frontier-rl/venvs") / f"morl-baselines-{MORL_BASELINES_VERSION}"
"""Where the venv goes when :data:`VENV_ENV_VAR` is not set (``~`` expanded at call time)."""

CHECK_ENVS: tuple[str, ...] = ("mo-hopper-2obj-v5", "mo-halfcheetah-v5")
"""MO-Gymnasium envs that the install check makes and steps (PGMORL needs continuous actions: MuJoCo)."""

_CHECK_CODE = """
import importlib.metadata as md, json, platform
import gymnasium, mo_gymnasium, mujoco, numpy, torch
from morl_baselines.multi_policy.pgmorl.pgmorl import PGMORL
assert md.version("morl-baselines") == {version!r}, md.version("morl-baselines")
for env_id in {envs!r}:
    env = mo_gymnasium.make(env_id, max_episode_steps=500)
    env.reset(seed=0)
    _, reward, *_ = env.step(env.action_space.sample())
    assert numpy.shape(reward) == env.unwrapped.reward_space.shape, (env_id, reward)
    env.close()
print(json.dumps({{"morl-baselines": md.version("morl-baselines"), "mo-gymnasium": md.version("mo-gymnasium"),
                  "torch": torch.__version__, "gymnasium": gymnasium.__version__, "mujoco": mujoco.__version__,
                  "pymoo": md.version("pymoo"), "numpy": numpy.__version__, "python": platform.python_version()}}))
"""

_TAIL_LINES = 40


def venv_path() -> Path:
    """The venv's folder: ``$FRONTIER_RL_MORL_VENV`` if set, else ``~/.frontier-rl/venvs/morl-baselines-1.3.0``."""
    override = os.environ.get(VENV_ENV_VAR)
    return Path(override).expanduser() if override else DEFAULT_VENV.expanduser()


def is_complete(path: str | os.PathLike) -> bool:
    """Whether the venv at ``path`` was fully installed (and checked) with today's :data:`REQUIREMENTS`.

    False for a missing venv, one without the marker (an interrupted install, or a venv built by hand that
    :func:`ensure_venv` has not checked yet), one whose python is gone, and one installed with other pins.
    """
    marker = read_marker(path)
    return (
        isinstance(marker, dict)
        and marker.get("requirements") == list(REQUIREMENTS)
        and venv_python(path).is_file()
    )


def install_commands(python: str | os.PathLike, *, quiet: bool = True) -> list[list[str]]:
    """The pip commands that install :data:`REQUIREMENTS` with the venv's ``python``, in order (torch alone first)."""
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", *(["-q"] if quiet else [])]
    return [[*pip, TORCH_REQUIREMENT], [*pip, *REQUIREMENTS]]


def check_command(python: str | os.PathLike) -> list[str]:
    """The command that imports PGMORL and its stack in the venv, makes :data:`CHECK_ENVS` and prints versions."""
    return [str(python), "-c", _CHECK_CODE.format(version=MORL_BASELINES_VERSION, envs=CHECK_ENVS)]


def _fix(path: Path) -> str:
    """What to do when setting up the venv fails (one line)."""
    return (
        "Fix: the install needs PyPI (or a mirror in pip's config): check the network, then rerun "
        f"`python -m rl.external.morl_baselines_venv --path {shlex.quote(str(path))}` (it completes a half-installed "
        f"venv), or build one by hand ({', '.join(REQUIREMENTS)}; torch first and alone) and point {VENV_ENV_VAR} "
        "at it."
    )


def _run(command: Sequence[str], *, echo: bool, what: str, path: Path) -> str:
    """Run ``command``, its output kept (and streamed if ``echo``); ExternalBaselineError (one line) if it fails."""
    tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
    lines: list[str] = []
    try:
        process = subprocess.Popen(
            list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        )
    except OSError as error:
        raise ExternalBaselineError(
            f"Could not {what} for the morl-baselines venv at {str(path)!r}: {shlex.join(command[:4])} ... could "
            f"not start ({error}). {_fix(path)}"
        ) from error
    assert process.stdout is not None
    for line in process.stdout:
        tail.append(line.rstrip("\n"))
        lines.append(line)
        if echo:
            print(line, end="", flush=True)
    code = process.wait()
    if code != 0:
        last = next((line.strip() for line in reversed(tail) if line.strip()), "(no output)")
        shown = shlex.join(command) if "-c" not in command else shlex.join([*command[:2], "<install check>"])
        raise ExternalBaselineError(
            f"Could not {what} for the morl-baselines venv at {str(path)!r}: `{shown}` exited with status {code} "
            f"({last}). {_fix(path)}"
        )
    return "".join(lines)


def ensure_venv(
    path: str | os.PathLike | None = None,
    *,
    quiet: bool = True,
    progress: Callable[[str], None] | None = None,
    base_python: str | os.PathLike | None = None,
) -> Path:
    """Make sure the morl-baselines venv exists and is complete; return its python executable.

    Idempotent: a complete venv (:func:`is_complete`) is returned at once. A missing one is created; one without
    the marker (interrupted, or built by hand) gets the install steps (pip skips what is there) after being
    recreated (``venv --clear``) if its python no longer starts. The marker is written last.

    Args:
        path: the venv's folder; default :func:`venv_path`.
        quiet: hide pip's output.
        progress: called with one short line per step (``print`` for the command line).
        base_python: the interpreter whose ``-m venv`` makes the venv; default this one.

    Raises:
        ExternalBaselineError: a step failed (no network, ...); one line naming the command, its last output line
            and the fix.
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
            say(f"completing venv {path} (no completion marker: interrupted, or not installed by ensure_venv)")
        for command in install_commands(python, quiet=quiet):
            say("$ " + shlex.join(command))
            step = time.perf_counter()
            _run(command, echo=not quiet, what="install the requirements", path=path)
            say(f"  done in {time.perf_counter() - step:.0f} s")
        say("checking PGMORL's imports and the MuJoCo envs")
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
    """``python -m rl.external.morl_baselines_venv [--path P] [--verbose]``: create (or complete) the venv."""
    parser = argparse.ArgumentParser(
        description=f"Create the morl-baselines {MORL_BASELINES_VERSION} venv used by the C-MORL benchmark (PGMORL)."
    )
    parser.add_argument("--path", default=None, help=f"venv folder (default: ${VENV_ENV_VAR} or {DEFAULT_VENV})")
    parser.add_argument("--verbose", action="store_true", help="show pip's output")
    args = parser.parse_args(argv)
    path = Path(args.path).expanduser() if args.path else venv_path()
    if is_complete(path):
        versions = json.dumps(read_marker(path)["versions"])
        print(f"morl-baselines venv already complete: {venv_python(path)} ({versions})")
        return 0
    try:
        ensure_venv(path, quiet=not args.verbose, progress=lambda message: print(message, flush=True))
    except ExternalBaselineError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
