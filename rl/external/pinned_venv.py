"""A virtual environment with pinned requirements, created on demand, marked complete only after a check passes.

External baselines (d3rlpy, morl-baselines) pin packages that clash with this project's, so each runs in a venv
of its own (see :mod:`rl.external`). :class:`PinnedVenv` describes one such venv (its pins, its install check,
its location) and makes it: the venv is created with an interpreter's ``-m venv``, then::

    <venv>/bin/python -m pip install torch==2.13.0                     # first, alone: the CPU build
    <venv>/bin/python -m pip install torch==2.13.0 <the other pins>     # torch pinned again

(torch first, and pinned again in the second command, so that pip never swaps in a multi-GB CUDA build to
satisfy a looser ``torch>=...`` of the baseline), then the check (``python -c <check_code>``) imports the
baseline and makes its envs, and prints the installed versions as a JSON object on its last line. Only then is
the marker ``.frontier-rl-complete.json`` written, last and atomically, with the requirements and versions: a
venv without it (an interrupted install, or one built by hand) or with other requirements in it (the pins
changed) is (re)installed with the same steps (pip skips what is already there). A lock file next to the venv
(``.<name>.lock``) serialises concurrent :meth:`PinnedVenv.ensure`. Errors are
:class:`~rl.external.errors.ExternalBaselineError` with a one-line message that names the fix.

The per-baseline modules (:mod:`rl.external.d3rlpy_venv`, :mod:`rl.external.morl_baselines_venv`) define one
``PinnedVenv`` each and keep their module-level functions (``ensure_venv``, ``is_complete``, ``main``, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from rl.external.errors import ExternalBaselineError

MARKER_NAME = ".frontier-rl-complete.json"
"""Written into the venv last, once every install step and the check have passed."""

RunStep = Callable[..., str]
"""``run(command, *, echo, what, path) -> output``: runs one set-up step (see :meth:`PinnedVenv.run`)."""


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


def write_marker(path: str | os.PathLike, content: dict) -> None:
    """Write the marker atomically (temporary file, then rename)."""
    target = marker_path(path)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(content, indent=2) + "\n")
    os.replace(tmp, target)


def python_runs(python: str | os.PathLike) -> bool:
    """Whether ``python`` exists and starts."""
    if not Path(python).is_file():
        return False
    try:
        return subprocess.run([str(python), "-c", "pass"], capture_output=True, timeout=120).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def venv_lock(path: str | os.PathLike) -> FileLock:
    """An exclusive lock on ``.<venv name>.lock`` next to the venv (filelock makes the folder)."""
    path = Path(path)
    return FileLock(path.with_name(f".{path.name}.lock"))


def _shown(command: Sequence[str]) -> str:
    """``command`` for an error message: one line, the check's ``-c`` code replaced by ``<install check>``."""
    command = list(command)
    if "-c" in command:
        command = [*command[: command.index("-c") + 1], "<install check>"]
    return shlex.join(command).replace("\n", "\\n")


@dataclass(frozen=True)
class PinnedVenv:
    """One baseline's venv: what it pins, how it is checked, where it lives.

    Attributes:
        name: the baseline, as in messages ("d3rlpy", "morl-baselines").
        requirements: everything the venv gets, pinned, :attr:`torch_requirement` first.
        torch_requirement: installed first and alone (the CPU build), then kept by repeating it.
        check_code: python source run as ``<venv python> -c check_code`` once the install is done; it imports the
            baseline, makes its envs and prints the installed versions as a JSON object on its last line.
        default_path: the venv's folder when :attr:`env_var` is not set (``~`` expanded at call time).
        env_var: environment variable that overrides the venv's location.
        module: the module whose ``python -m`` creates the venv (:meth:`main`; named in the fix of error messages).
    """

    name: str
    requirements: tuple[str, ...]
    torch_requirement: str
    check_code: str
    default_path: Path
    env_var: str
    module: str

    def __post_init__(self) -> None:
        if not self.requirements or self.requirements[0] != self.torch_requirement:
            raise ValueError(f"{self.name}: the requirements must start with {self.torch_requirement!r}")

    def path(self) -> Path:
        """The venv's folder: ``$<env_var>`` if set, else :attr:`default_path`."""
        override = os.environ.get(self.env_var)
        return Path(override).expanduser() if override else Path(self.default_path).expanduser()

    def python(self, path: str | os.PathLike | None = None) -> Path:
        """The python executable of the venv at ``path`` (default :meth:`path`), whether or not it exists."""
        return venv_python(self.path() if path is None else Path(path).expanduser())

    def is_complete(self, path: str | os.PathLike) -> bool:
        """Whether the venv at ``path`` was fully installed (and checked) with today's :attr:`requirements`.

        False for a missing venv, one without the marker (an interrupted install, or a venv built by hand that
        :meth:`ensure` has not checked yet), one whose python is gone, and one installed with other pins (the
        marker lists what it was installed with).
        """
        marker = read_marker(path)
        return (
            isinstance(marker, dict)
            and marker.get("requirements") == list(self.requirements)
            and venv_python(path).is_file()
        )

    def install_commands(self, python: str | os.PathLike, *, quiet: bool = True) -> list[list[str]]:
        """The pip commands that install :attr:`requirements` with the venv's ``python``, torch alone first."""
        pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", *(["-q"] if quiet else [])]
        return [[*pip, self.torch_requirement], [*pip, *self.requirements]]

    def check_command(self, python: str | os.PathLike) -> list[str]:
        """The command that runs the install check (:attr:`check_code`) with the venv's ``python``."""
        return [str(python), "-c", self.check_code]

    def fix(self, path: str | os.PathLike) -> str:
        """What to do when setting up the venv at ``path`` fails (one line)."""
        return (
            "Fix: the install needs PyPI (or a mirror in pip's config, `pip config list`): check the network and "
            f"proxy settings, then rerun `python -m {self.module} --path {shlex.quote(str(path))}` (it completes a "
            f"half-installed venv), or build one by hand ({', '.join(self.requirements)}; torch first and alone) "
            f"and point {self.env_var} at it (ensure_venv then only checks it); delete {str(path)!r} to start from "
            "scratch."
        ).replace("\n", "\\n")

    def run(self, command: Sequence[str], *, echo: bool, what: str, path: str | os.PathLike) -> str:
        """Run one set-up step, its output kept (and streamed if ``echo``); return the output.

        Raises:
            ExternalBaselineError: the command did not start or failed; one line naming the command, its last
                output line and the fix.
        """
        where = f"for the {self.name} venv at {str(path)!r}"
        try:
            process = subprocess.Popen(
                list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
            )
        except OSError as error:
            raise ExternalBaselineError(
                f"Could not {what} {where}: `{_shown(command)}` could not start ({error}). {self.fix(path)}"
            ) from error
        assert process.stdout is not None
        lines: list[str] = []
        last = "(no output)"
        for line in process.stdout:
            lines.append(line)
            if line.strip():
                last = line.strip()
            if echo:
                print(line, end="", flush=True)
        code = process.wait()
        if code != 0:
            raise ExternalBaselineError(
                f"Could not {what} {where}: `{_shown(command)}` exited with status {code} ({last}). {self.fix(path)}"
            )
        return "".join(lines)

    def ensure(
        self,
        path: str | os.PathLike | None = None,
        *,
        quiet: bool = True,
        progress: Callable[[str], None] | None = None,
        base_python: str | os.PathLike | None = None,
        run: RunStep | None = None,
        python_runs: Callable[[Path], bool] = python_runs,
    ) -> Path:
        """Make sure the venv exists and is complete; return its python executable.

        Idempotent: a complete venv (:meth:`is_complete`) is returned at once. A missing one is created; one
        without the marker (interrupted, or built by hand) gets the install steps (pip skips what is there) after
        being recreated (``venv --clear``) if its python no longer starts. The marker is written last.

        Args:
            path: the venv's folder; default :meth:`path`.
            quiet: hide pip's output.
            progress: called with one short line per step (``print`` for the command line).
            base_python: the interpreter whose ``-m venv`` makes the venv; default this one.
            run: runs each set-up step, as :meth:`run` (the default) does; for tests.
            python_runs: whether the venv's python starts, as :func:`python_runs` (the default) says; for tests.

        Raises:
            ExternalBaselineError: a step failed (no network, ...); one line naming the command, its last output
                line and the fix.
        """
        path = Path(path).expanduser() if path is not None else self.path()
        python = venv_python(path)
        run = run or self.run
        say = progress or (lambda _message: None)
        if self.is_complete(path):
            return python
        with venv_lock(path):
            if self.is_complete(path):  # another process finished it while we waited for the lock
                return python
            started = time.perf_counter()
            marker_path(path).unlink(missing_ok=True)
            base = str(base_python or sys.executable)
            if not python_runs(python):
                say(f"creating venv {path}")
                run([base, "-m", "venv", "--clear", str(path)], echo=not quiet, what="create the venv", path=path)
            else:
                say(f"completing venv {path} (no completion marker: interrupted, or not installed by ensure_venv)")
            for command in self.install_commands(python, quiet=quiet):
                say("$ " + shlex.join(command))
                step = time.perf_counter()
                run(command, echo=not quiet, what="install the requirements", path=path)
                say(f"  done in {time.perf_counter() - step:.0f} s")
            say(f"checking the {self.name} venv (imports, envs)")
            output = run(self.check_command(python), echo=False, what="check the installed packages", path=path)
            try:
                versions = json.loads(output.strip().splitlines()[-1])
            except (IndexError, ValueError):
                raise ExternalBaselineError(
                    f"Could not check the installed packages for the {self.name} venv at {str(path)!r}: the install "
                    f"check printed no JSON versions on its last line ({output.strip()[-200:]!r}). {self.fix(path)}"
                ) from None
            write_marker(
                path,
                {
                    "requirements": list(self.requirements),
                    "versions": versions,
                    "base_python": base,
                    "seconds": round(time.perf_counter() - started, 1),
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                },
            )
            say(f"ready in {time.perf_counter() - started:.0f} s: {python} ({json.dumps(versions)})")
        return python

    def main(self, argv: Sequence[str] | None = None) -> int:
        """``python -m <module> [--path P] [--verbose]``: create (or complete) the venv; 0, or 1 with ``error: ...``."""
        parser = argparse.ArgumentParser(
            prog=f"python -m {self.module}",
            description=f"Create (or complete) the {self.name} venv: {', '.join(self.requirements)}.",
        )
        parser.add_argument(
            "--path", default=None, help=f"venv folder (default: ${self.env_var} or {self.default_path})"
        )
        parser.add_argument("--verbose", action="store_true", help="show pip's output")
        args = parser.parse_args(argv)
        path = Path(args.path).expanduser() if args.path else self.path()
        if self.is_complete(path):
            versions = json.dumps(read_marker(path).get("versions"))
            print(f"{self.name} venv already complete: {venv_python(path)} ({versions})")
            return 0
        try:
            self.ensure(path, quiet=not args.verbose, progress=lambda message: print(message, flush=True))
        except ExternalBaselineError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        return 0
