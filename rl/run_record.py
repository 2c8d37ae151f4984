"""What a run records about itself: software versions and the exact command."""

from __future__ import annotations

import importlib.metadata
import platform
import shlex
import subprocess
import sys

_PACKAGES = (
    "frontier-rl",
    "stable-baselines3",
    "torch",
    "gymnasium",
    "mujoco",
    "numpy",
    "pybullet",
    "pybullet-envs-gymnasium",
    "panda-gym",
)


def package_versions() -> dict[str, str]:
    """Versions of Python, the platform and the packages a result depends on."""
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    commit = git_commit()
    if commit:
        versions["frontier-rl commit"] = commit
    return versions


def git_commit() -> str | None:
    """The checkout's commit (with ``-dirty`` when there are local changes), or None outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True, timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def command_line() -> str:
    """The command that started this process (``python -m ...`` as typed), shell-quoted."""
    return shlex.join(["python", *sys.orig_argv[1:]])
