"""d3rlpy's own virtual environment: its pinned requirements, and :func:`ensure_venv` that creates it on demand.

d3rlpy 2.8.1 pins ``gymnasium==1.0.0`` while this project uses a newer gymnasium, so d3rlpy runs in a venv of
its own (see :mod:`rl.external`), with :data:`REQUIREMENTS`: ``torch==2.13.0`` (installed first and alone, then
pinned again, so that pip never swaps in a multi-GB CUDA build to satisfy d3rlpy's ``torch>=2.5.0``),
``d3rlpy==2.8.1``, ``gymnasium[mujoco]==1.0.0`` and the project venv's ``mujoco``. The install check imports
d3rlpy and its stack and makes and steps :data:`CHECK_ENVS`. Creating, checking, marking complete
(``.frontier-rl-complete.json``, written last) and locking are :class:`rl.external.pinned_venv.PinnedVenv`'s.

``python -m rl.external.d3rlpy_venv [--path P] [--verbose]`` creates (or completes) it. The location is
``--path``, else ``$FRONTIER_RL_D3RLPY_VENV``, else ``~/.frontier-rl/venvs/d3rlpy-2.8.1``. Errors are
:class:`~rl.external.errors.ExternalBaselineError` with a one-line message that names the fix.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rl.external.pinned_venv import MARKER_NAME, PinnedVenv, marker_path, read_marker, venv_python

__all__ = [
    "CHECK_ENVS", "D3RLPY_VERSION", "DEFAULT_VENV", "MARKER_NAME", "REQUIREMENTS", "TORCH_REQUIREMENT", "VENV",
    "VENV_ENV_VAR", "check_command", "ensure_venv", "install_commands", "is_complete", "main", "marker_path",
    "read_marker", "venv_path", "venv_python",
]

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

CHECK_ENVS: tuple[str, ...] = ("Hopper-v4", "HalfCheetah-v4", "Walker2d-v4")
"""Envs that the install check makes and steps."""

_CHECK_CODE = f"""
import json, platform, sys
import d3rlpy, gymnasium, h5py, mujoco, numpy, torch
assert d3rlpy.__version__ == {D3RLPY_VERSION!r}, d3rlpy.__version__
for env_id in {CHECK_ENVS!r}:
    env = gymnasium.make(env_id)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    env.close()
print(json.dumps({{"d3rlpy": d3rlpy.__version__, "torch": torch.__version__, "gymnasium": gymnasium.__version__,
                  "mujoco": mujoco.__version__, "numpy": numpy.__version__, "h5py": h5py.__version__,
                  "python": platform.python_version()}}))
"""

VENV = PinnedVenv(
    name="d3rlpy", module="rl.external.d3rlpy_venv", env_var=VENV_ENV_VAR, default_path=DEFAULT_VENV,
    requirements=REQUIREMENTS, torch_requirement=TORCH_REQUIREMENT, check_code=_CHECK_CODE,
)
"""The d3rlpy venv: the functions below are its methods (see :class:`~rl.external.pinned_venv.PinnedVenv`)."""

venv_path, is_complete, install_commands, check_command, ensure_venv, main = (
    VENV.path, VENV.is_complete, VENV.install_commands, VENV.check_command, VENV.ensure, VENV.main
)

if __name__ == "__main__":
    sys.exit(main())
