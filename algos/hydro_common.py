"""What TS-DDR (:mod:`algos.tsddr`) and SDDP (:mod:`algos.sddp`) share on ``envs.hydro`` systems: their settings
error, the held-out split, the stagewise inflow sampler, the perfect-foresight bound and the run-folder naming.

Why here and not in ``envs.hydro``: ``envs.hydro`` is the problem (the system data and its LPs) and imports nothing
from ``algos``; these helpers are the algorithms' shared protocol (which scenarios are held out, how training inflows
are drawn, what a bad setting raises, where a run writes), and :func:`split_scenarios` raises the algorithms'
:class:`TSDDRConfigError`, which the CLIs of both turn into a one-line error. Keeping them in ``algos`` lets SDDP
use them without importing TS-DDR (or torch).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from envs.hydro import HydroSystem, solve_perfect_foresight


class TSDDRConfigError(ValueError):
    """A TS-DDR / SDDP setting is invalid; the message names the setting and the accepted values."""


def split_scenarios(num_scenarios: int, holdout_fraction: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """(training, held-out) scenario indices: the last ``ceil(fraction * S)`` scenarios are held out.

    Raises:
        TSDDRConfigError: the fraction is outside [0, 1) or leaves no training scenario.
    """
    if not 0.0 <= holdout_fraction < 1.0:
        raise TSDDRConfigError(f"holdout_fraction: must be in [0, 1), got {holdout_fraction}")
    held = math.ceil(holdout_fraction * num_scenarios)
    if held >= num_scenarios:
        raise TSDDRConfigError(
            f"holdout_fraction: {holdout_fraction} of {num_scenarios} scenarios leaves none for training"
        )
    indices = np.arange(num_scenarios)
    return indices[: num_scenarios - held], indices[num_scenarios - held:]


def sample_stagewise(inflows: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` scenarios whose stage-``t`` inflow is drawn independently from the stage-``t`` values of
    ``inflows`` (shape ``(S, T, n)``): the stagewise-independent model of the authors' sampler and of SDDP."""
    num_scenarios, num_stages, _ = inflows.shape
    picks = rng.integers(num_scenarios, size=(count, num_stages))
    return inflows[picks, np.arange(num_stages)[None, :]]


def perfect_foresight_costs(system: HydroSystem, scenarios: Sequence[int]) -> np.ndarray:
    """Perfect-foresight (clairvoyant) operating cost per scenario index: a lower bound for any policy."""
    return np.array([solve_perfect_foresight(system, scenario=int(k)).objective for k in scenarios])


def next_run_dir(log_folder: str | Path, algo: str, case: str) -> Path:
    """``<log_folder>/<algo>/<case>_<n+1>`` (the runner's convention, without importing SB3)."""
    base = Path(log_folder) / algo
    stem = Path(case).stem
    ids = [int(p.name.rsplit("_", 1)[1]) for p in base.glob(f"{stem}_*") if p.name.rsplit("_", 1)[1].isdigit()]
    return base / f"{stem}_{max(ids, default=0) + 1}"
