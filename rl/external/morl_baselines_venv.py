"""morl-baselines' own virtual environment: its pinned requirements, and :func:`ensure_venv` that creates it.

The C-MORL benchmark compares against PGMORL as implemented by ``morl-baselines`` 1.3.0, which brings its own
stack (wandb, pymoo, cvxpy, pycddlib, ...), so it runs in a venv of its own, as d3rlpy does (see
:mod:`rl.external`), with :data:`REQUIREMENTS`: ``torch==2.13.0`` (installed first and alone, then pinned again,
so that pip never swaps in a multi-GB CUDA build to satisfy morl-baselines' ``torch>=1.12.0``),
``morl-baselines==1.3.0``, ``mo-gymnasium==1.3.2``, and the project venv's gymnasium, MuJoCo and pymoo. The install
check imports PGMORL and makes and steps the MuJoCo envs (:data:`CHECK_ENVS`). Creating, checking, marking
complete (``.frontier-rl-complete.json``, written last) and locking are
:class:`rl.external.pinned_venv.PinnedVenv`'s.

``python -m rl.external.morl_baselines_venv [--path P] [--verbose]`` creates (or completes) it. The location is
``--path``, else ``$FRONTIER_RL_MORL_VENV``, else ``~/.frontier-rl/venvs/morl-baselines-1.3.0``. Errors are
:class:`~rl.external.errors.ExternalBaselineError` with a one-line message that names the fix.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rl.external.pinned_venv import MARKER_NAME, PinnedVenv, marker_path, read_marker, venv_python

__all__ = [
    "CHECK_ENVS", "DEFAULT_VENV", "MARKER_NAME", "MORL_BASELINES_VERSION", "REQUIREMENTS", "TORCH_REQUIREMENT",
    "VENV", "VENV_ENV_VAR", "check_command", "ensure_venv", "install_commands", "is_complete", "main", "marker_path",
    "read_marker", "venv_path", "venv_python",
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

_CHECK_CODE = f"""
import importlib.metadata as md, json, platform
import gymnasium, mo_gymnasium, mujoco, numpy, torch
from morl_baselines.multi_policy.pgmorl.pgmorl import PGMORL
assert md.version("morl-baselines") == {MORL_BASELINES_VERSION!r}, md.version("morl-baselines")
for env_id in {CHECK_ENVS!r}:
    env = mo_gymnasium.make(env_id, max_episode_steps=500)
    env.reset(seed=0)
    _, reward, *_ = env.step(env.action_space.sample())
    assert numpy.shape(reward) == env.unwrapped.reward_space.shape, (env_id, reward)
    env.close()
print(json.dumps({{"morl-baselines": md.version("morl-baselines"), "mo-gymnasium": md.version("mo-gymnasium"),
                  "torch": torch.__version__, "gymnasium": gymnasium.__version__, "mujoco": mujoco.__version__,
                  "pymoo": md.version("pymoo"), "numpy": numpy.__version__, "python": platform.python_version()}}))
"""

VENV = PinnedVenv(
    name="morl-baselines", module="rl.external.morl_baselines_venv", env_var=VENV_ENV_VAR, default_path=DEFAULT_VENV,
    requirements=REQUIREMENTS, torch_requirement=TORCH_REQUIREMENT, check_code=_CHECK_CODE,
)
"""The morl-baselines venv: the functions below are its methods (see :class:`~rl.external.pinned_venv.PinnedVenv`)."""

venv_path, is_complete, install_commands, check_command, ensure_venv, main = (
    VENV.path, VENV.is_complete, VENV.install_commands, VENV.check_command, VENV.ensure, VENV.main
)

if __name__ == "__main__":
    sys.exit(main())
