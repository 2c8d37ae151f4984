"""imitation's own virtual environment: its pinned requirements, and :func:`ensure_venv` that creates it.

The SPO benchmark compares against ``imitation``'s ``PreferenceComparisons`` (see
:mod:`rl.external.imitation_baseline`). imitation 1.0.1 (the latest release pip resolves) requires
``stable-baselines3~=2.2.1`` and ``gymnasium~=0.29`` while this project runs SB3 2.x with gymnasium 1.x, so it runs
in a venv of its own, as d3rlpy and morl-baselines do (see :mod:`rl.external`), with :data:`REQUIREMENTS`:

- ``torch==2.13.0`` first and alone (the local CPU build; imitation's ``torch>=1.4.0`` accepts it), then pinned
  again, so that pip never swaps in a multi-GB CUDA build;
- ``imitation==1.0.1`` with what it pins: ``stable-baselines3==2.2.1``, ``seals==0.2.1``, ``sacred==0.8.7``;
- ``gymnasium[mujoco]==0.29.1`` on the project venv's ``mujoco==4.0.1``: gymnasium 0.29's v4 MuJoCo envs
  (Hopper-v4, HalfCheetah-v4, ...) run on it, and step for step they give the very same observations and
  rewards as the project venv's (gymnasium 1.4.0) v4 envs on the same seed and actions;
- ``numpy==2.4.6`` (the project venv's; gymnasium 0.29.1 predates numpy 2, but the paths used here run on it:
  the install check and the tests step the envs and run imitation);
- ``setuptools==80.10.2``: sacred 0.8.7 (imitation's config system, read for its defaults) imports
  ``pkg_resources``, which a fresh venv lacks and setuptools >= 81 drops;
- ``pybullet==3.2.7`` and ``pybullet-envs-gymnasium==0.6.0`` (requires ``gymnasium>=0.29.1,<2``): the PyBullet
  locomotion envs (``HalfCheetahBulletEnv-v0``, ...).

The install check imports PreferenceComparisons and imitation's sacred config, checks the versions, makes and steps
:data:`CHECK_ENVS`, and prints the versions. Creating, checking, marking complete (``.frontier-rl-complete.json``,
written last) and locking are :class:`rl.external.pinned_venv.PinnedVenv`'s.

``python -m rl.external.imitation_venv [--path P] [--verbose]`` creates (or completes) it. The location is
``--path``, else ``$FRONTIER_RL_IMITATION_VENV``, else ``~/.frontier-rl/venvs/imitation-1.0.1``. Errors are
:class:`~rl.external.errors.ExternalBaselineError` with a one-line message that names the fix.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rl.external.pinned_venv import MARKER_NAME, PinnedVenv, marker_path, read_marker, venv_python

__all__ = [
    "BULLET_ENVS", "CHECK_ENVS", "DEFAULT_VENV", "GYMNASIUM_VERSION", "IMITATION_VERSION", "MARKER_NAME",
    "MUJOCO_ENVS", "REQUIREMENTS", "SB3_VERSION", "SUPPORTED_ENVS", "TORCH_REQUIREMENT", "VENV", "VENV_ENV_VAR",
    "check_command", "ensure_venv", "install_commands", "is_complete", "main", "marker_path", "read_marker",
    "venv_path", "venv_python",
]

IMITATION_VERSION = "1.0.1"
"""The imitation release the benchmark compares against (the latest on PyPI)."""

SB3_VERSION = "2.2.1"
"""The stable-baselines3 that imitation 1.0.1 requires (``~=2.2.1``)."""

GYMNASIUM_VERSION = "0.29.1"
"""The gymnasium that imitation 1.0.1 requires (``~=0.29``)."""

TORCH_REQUIREMENT = "torch==2.13.0"
"""Installed first and alone (a CPU build on these machines), then kept by repeating it in the second step."""

REQUIREMENTS: tuple[str, ...] = (
    TORCH_REQUIREMENT,
    f"imitation=={IMITATION_VERSION}",
    f"stable-baselines3=={SB3_VERSION}",
    "seals==0.2.1",  # imitation's seals~=0.2.1
    "sacred==0.8.7",  # imitation's config system: its PreferenceComparisons defaults are read from it
    "setuptools==80.10.2",  # pkg_resources, which sacred 0.8.7 imports
    f"gymnasium[mujoco]=={GYMNASIUM_VERSION}",
    "mujoco==4.0.1",  # the project venv's MuJoCo: the v4 envs step exactly as the project's do
    "numpy==2.4.6",  # the project venv's numpy
    "pybullet==3.2.7",
    "pybullet-envs-gymnasium==0.6.0",  # HalfCheetahBulletEnv-v0, ...; requires gymnasium>=0.29.1,<2
)
"""Everything the imitation venv gets, pinned; imitation brings datasets, optuna, tensorboard, ... unpinned."""

VENV_ENV_VAR = "FRONTIER_RL_IMITATION_VENV"
"""Environment variable that overrides the venv's location (e.g. ``/work/venvs/imitation``)."""

DEFAULT_VENV = Path("~/.frontier-rl/venvs") / f"imitation-{IMITATION_VERSION}"
"""Where the venv goes when :data:`VENV_ENV_VAR` is not set (``~`` expanded at call time)."""

MUJOCO_ENVS: tuple[str, ...] = (
    "Ant-v4", "HalfCheetah-v4", "Hopper-v4", "Humanoid-v4", "HumanoidStandup-v4", "InvertedDoublePendulum-v4",
    "InvertedPendulum-v4", "Pusher-v4", "Reacher-v4", "Swimmer-v4", "Walker2d-v4",
)
"""gymnasium 0.29.1's MuJoCo envs that run on the ``mujoco`` bindings (v2/v3 need mujoco-py; v5 is gymnasium 1.0's)."""

BULLET_ENVS: tuple[str, ...] = (
    "AntBulletEnv-v0", "HalfCheetahBulletEnv-v0", "HopperBulletEnv-v0", "HumanoidBulletEnv-v0",
    "HumanoidFlagrunBulletEnv-v0", "HumanoidFlagrunHarderBulletEnv-v0", "InvertedDoublePendulumBulletEnv-v0",
    "InvertedPendulumBulletEnv-v0", "InvertedPendulumSwingupBulletEnv-v0", "PusherBulletEnv-v0",
    "ReacherBulletEnv-v0", "ThrowerBulletEnv-v0", "Walker2DBulletEnv-v0",
)
"""The ids pybullet-envs-gymnasium 0.6.0 registers."""

SUPPORTED_ENVS: tuple[str, ...] = MUJOCO_ENVS + BULLET_ENVS
"""The env ids the imitation baseline accepts (continuous actions, in the venv's gymnasium 0.29.1)."""

CHECK_ENVS: tuple[str, ...] = ("Hopper-v4", "HalfCheetah-v4", "HalfCheetahBulletEnv-v0")
"""Envs that the install check makes and steps."""

_CHECK_CODE = f"""
import importlib.metadata as md, json, platform, warnings
warnings.filterwarnings("ignore")
import gymnasium, mujoco, numpy, stable_baselines3, torch
import pybullet_envs_gymnasium  # registers the Bullet envs
from imitation.algorithms.preference_comparisons import PreferenceComparisons, PreferenceGatherer
from imitation.scripts.config.train_preference_comparisons import train_preference_comparisons_ex
assert md.version("imitation") == {IMITATION_VERSION!r}, md.version("imitation")
assert stable_baselines3.__version__ == {SB3_VERSION!r}, stable_baselines3.__version__
assert gymnasium.__version__ == {GYMNASIUM_VERSION!r}, gymnasium.__version__
assert "seals_hopper" in train_preference_comparisons_ex.named_configs
for env_id in {CHECK_ENVS!r}:
    env = gymnasium.make(env_id)
    env.reset(seed=0)
    for _ in range(3):
        env.step(env.action_space.sample())
    env.close()
print(json.dumps({{"imitation": md.version("imitation"), "stable-baselines3": stable_baselines3.__version__,
                  "gymnasium": gymnasium.__version__, "mujoco": mujoco.__version__, "torch": torch.__version__,
                  "numpy": numpy.__version__, "seals": md.version("seals"), "sacred": md.version("sacred"),
                  "pybullet": md.version("pybullet"), "pybullet-envs-gymnasium": md.version("pybullet-envs-gymnasium"),
                  "python": platform.python_version()}}))
"""

VENV = PinnedVenv(
    name="imitation", module="rl.external.imitation_venv", env_var=VENV_ENV_VAR, default_path=DEFAULT_VENV,
    requirements=REQUIREMENTS, torch_requirement=TORCH_REQUIREMENT, check_code=_CHECK_CODE,
)
"""The imitation venv: the functions below are its methods (see :class:`~rl.external.pinned_venv.PinnedVenv`)."""

venv_path, is_complete, install_commands, check_command, ensure_venv, main = (
    VENV.path, VENV.is_complete, VENV.install_commands, VENV.check_command, VENV.ensure, VENV.main
)

if __name__ == "__main__":
    sys.exit(main())
