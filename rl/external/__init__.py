"""External baselines: other libraries' implementations of our algorithms, run on the same data.

The offline benchmark compares our IQL, CQL, AWAC and TD3+BC (``algos/``) with d3rlpy's implementations of the
same algorithms, on the very same D4RL-layout HDF5 files, in the same benchmark invocation. d3rlpy 2.8.1 pins
``gymnasium==1.0.0`` while this project uses a newer gymnasium, so the two cannot share one environment:
d3rlpy lives in its OWN virtual environment (created on demand by :mod:`rl.external.d3rlpy_venv`, by default
in ``~/.frontier-rl/venvs/d3rlpy-2.8.1``) and each run is a subprocess of that venv's python executing the
standalone script ``rl/external/d3rlpy_run.py`` (the project is not installed there: the script imports nothing
from it but ``child_io.py``, stdlib and numpy only, which it loads by file path). The script writes
``evaluations.npz`` and ``run.json`` in the same formats as our own runs, so the benchmark's tables and plots
treat ``d3rlpy_<algo>`` like any other label.

Modules:

- ``d3rlpy_venv``: the pinned requirements and :func:`ensure_venv` (``python -m rl.external.d3rlpy_venv``
  creates the venv);
- ``d3rlpy_baseline``: :func:`run_d3rlpy`, called from the project's venv by the benchmark harness;
- ``d3rlpy_run``: the script run inside the d3rlpy venv (not meant to be imported here);
- ``errors``: :class:`ExternalBaselineError`.

PGMORL (morl-baselines 1.3.0), the baseline of C-MORL's benchmark (``algos.cmorl_benchmark``), runs the same way
in its own venv: ``morl_baselines_venv`` (requirements, :func:`ensure_venv`), ``pgmorl_baseline``
(:func:`run_pgmorl`) and ``pgmorl_run`` (the script run inside that venv). imitation 1.0.1's
``PreferenceComparisons``, the outside reference of SPO's benchmark (``algos.spo_benchmark``), too:
``imitation_venv``, ``imitation_baseline`` (:func:`run_imitation_preference_baseline`) and ``imitation_run``
(which labels imitation's fragments with this project's raters, loaded by file path). ``child_io`` (JSON
results written atomically, error lines) is shared by the three scripts, ``child_process`` and ``pinned_venv``
by their parents.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "D3RLPY_ALGOS": "rl.external.d3rlpy_baseline",
    "D3RLPY_LABELS": "rl.external.d3rlpy_baseline",
    "run_d3rlpy": "rl.external.d3rlpy_baseline",
    "D3RLPY_VERSION": "rl.external.d3rlpy_venv",
    "REQUIREMENTS": "rl.external.d3rlpy_venv",
    "ensure_venv": "rl.external.d3rlpy_venv",
    "venv_path": "rl.external.d3rlpy_venv",
    "ExternalBaselineError": "rl.external.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import the exports lazily, so that ``python -m rl.external.d3rlpy_venv`` runs its module only once."""
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
