"""What TS-DDR (:mod:`algos.tsddr`) and SDDP (:mod:`algos.sddp`) share on ``envs.hydro`` systems: the settings error
they both derive theirs from, the errors their CLIs report in one line, the held-out split, the stagewise inflow
sampler (and the out-of-sample scenarios it draws from the held-out ones), the out-of-sample statistics, the
perfect-foresight bound and the run-folder naming.

Why here and not in ``envs.hydro``: ``envs.hydro`` is the problem (the system data, its LPs and what counts as a missed
target) and imports nothing from ``algos``; these helpers are the algorithms' shared protocol (which scenarios are held
out, how training inflows are drawn, what an evaluation reports, what a bad setting raises, where a run writes).
Keeping them in ``algos`` lets SDDP use them without importing TS-DDR (or torch).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from envs.hydro import HydroLPError, HydroSystem, SystemDataError, UnknownCaseError, solve_perfect_foresight


class HydroConfigError(ValueError):
    """A setting of a hydro algorithm is invalid; the message names the setting and the accepted values.

    The shared settings (the held-out split) raise it directly; each algorithm raises its own subclass
    (:class:`algos.tsddr.TSDDRConfigError`, :class:`algos.sddp.SDDPConfigError`), so an error names the algorithm
    whose setting is wrong, and catching this class catches them all.
    """


USER_ERRORS: tuple[type[Exception], ...] = (
    UnknownCaseError, SystemDataError, HydroConfigError, HydroLPError, FileNotFoundError,
)
"""What the hydro CLIs (TS-DDR, SDDP, the benchmark) print as one line before exiting with status 2: an unknown or
malformed case, a bad setting, an LP without optimal solution, a missing file."""


def split_scenarios(num_scenarios: int, holdout_fraction: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """(training, held-out) scenario indices: the last ``ceil(fraction * S)`` scenarios are held out.

    Raises:
        HydroConfigError: the fraction is outside [0, 1) or leaves no training scenario.
    """
    if not 0.0 <= holdout_fraction < 1.0:
        raise HydroConfigError(f"holdout_fraction: must be in [0, 1) (e.g. 0.25), got {holdout_fraction}")
    held = math.ceil(holdout_fraction * num_scenarios)
    if held >= num_scenarios:
        raise HydroConfigError(
            f"holdout_fraction: {holdout_fraction} of {num_scenarios} scenarios leaves none for training; "
            "give a smaller fraction"
        )
    indices = np.arange(num_scenarios)
    return indices[: num_scenarios - held], indices[num_scenarios - held:]


def sample_stagewise(inflows: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` scenarios whose stage-``t`` inflow is drawn independently from the stage-``t`` values of
    ``inflows`` (shape ``(S, T, n)``): the stagewise-independent model of the authors' sampler and of SDDP."""
    num_scenarios, num_stages, _ = inflows.shape
    picks = rng.integers(num_scenarios, size=(count, num_stages))
    return inflows[picks, np.arange(num_stages)[None, :]]


def holdout_stagewise_inflows(system: HydroSystem, holdout: Sequence[int] | np.ndarray, count: int,
                              seed: int) -> np.ndarray:
    """``count`` out-of-sample scenarios ``(count, T, n)``: stage ``t``'s inflow vector is drawn from the held-out
    scenarios' stage-``t`` vectors (:func:`sample_stagewise` on ``system.inflows[holdout]``, ``default_rng(seed)``).

    Why these: a case without a generator (the toy case's 20 scenarios) has no inflow model but the empirical
    stagewise distribution of its scenarios. Drawn from the *training* scenarios, that is exactly the model SDDP
    optimises (and TS-DDR's stagewise training sampler), which would favour them; drawn from the held-out
    scenarios, every stage's value is one no method trained on, while the set is far larger than the held-out
    scenarios themselves. Like SDDP's model it is stagewise independent: a correlation between the stages of a
    scenario is not kept.

    Raises:
        HydroConfigError: no held-out scenario, an index outside the case, or ``count`` below 1.
    """
    holdout = np.asarray(holdout, dtype=int).reshape(-1)
    if holdout.size == 0:
        raise HydroConfigError("holdout: the out-of-sample sampler needs at least one held-out scenario")
    if np.any((holdout < 0) | (holdout >= system.num_scenarios)):
        raise HydroConfigError(f"holdout: indices must be in 0..{system.num_scenarios - 1}, got {holdout.tolist()}")
    if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 1:
        raise HydroConfigError(f"count: must be an integer >= 1 (out-of-sample scenarios), got {count!r}")
    return sample_stagewise(system.inflows[holdout], int(count), np.random.default_rng(seed))


def scenario_inflows(system: HydroSystem, scenarios: Sequence[int] | np.ndarray) -> np.ndarray:
    """Inflows ``(S, T, n)`` of scenario indices (1-d) of ``system``, or the given inflow arrays ``(S, T, n)``."""
    scenarios = np.asarray(scenarios)
    return system.inflows[scenarios] if scenarios.ndim == 1 else scenarios.astype(float)


def policy_statistics(system: HydroSystem, costs: Sequence[float], seconds: float,
                      target_slack: Sequence[np.ndarray] | None = None) -> dict[str, Any]:
    """Out-of-sample statistics of a policy deployed on some scenarios, the same for every method.

    Args:
        system: the system the policy ran on (it defines a missed target).
        costs: operating cost per scenario.
        seconds: wall time of deploying the policy on all of them.
        target_slack: end volume - target per scenario, ``(T, n)`` each; None for a policy that sets no targets
            (SDDP, perfect foresight), whose violation share is then None (n/a).

    Returns:
        ``cost_mean``, ``cost_std`` (population), ``costs``, ``violation_share`` (the share of (stage, plant) pairs
        that miss their target by more than :data:`envs.hydro.system.VIOLATION_TOLERANCE` of the plant's range) and
        ``inference_seconds_per_scenario``.
    """
    costs = np.asarray(costs, dtype=float)
    share = None if target_slack is None else float(system.target_violations(np.asarray(target_slack)).mean())
    return {"cost_mean": float(costs.mean()), "cost_std": float(costs.std()), "costs": costs.tolist(),
            "violation_share": share, "inference_seconds_per_scenario": seconds / max(len(costs), 1)}


def perfect_foresight_costs(system: HydroSystem, scenarios: Sequence[int]) -> np.ndarray:
    """Perfect-foresight (clairvoyant) operating cost per scenario index: a lower bound for any policy."""
    return np.array([solve_perfect_foresight(system, scenario=int(k)).objective for k in scenarios])


def next_run_dir(log_folder: str | Path, algo: str, case: str) -> Path:
    """``<log_folder>/<algo>/<case>_<n+1>`` (the runner's convention, without importing SB3)."""
    base = Path(log_folder) / algo
    stem = Path(case).stem
    ids = [int(p.name.rsplit("_", 1)[1]) for p in base.glob(f"{stem}_*") if p.name.rsplit("_", 1)[1].isdigit()]
    return base / f"{stem}_{max(ids, default=0) + 1}"
