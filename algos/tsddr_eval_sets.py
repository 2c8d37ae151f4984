"""The TS-DDR benchmark's evaluation sets: which inflow scenarios every method is scored on, and why.

Two sets, every method scored on both (:mod:`algos.tsddr_benchmark`):

* ``sampled`` (the headline): ``count`` scenarios drawn out of sample from *the inflow model* of the case, with a fixed
  seed. What the inflow model is depends on the case, so the kind is chosen per case (``--eval-set``):

  - ``holdout-stagewise``: stage ``t``'s inflow is drawn from the held-out scenarios' stage-``t`` values
    (:func:`algos.hydro_common.holdout_stagewise_inflows`). For a case given only by its scenarios (the toy case's
    20) the only inflow model is the empirical stagewise distribution of its scenarios; drawn from the *training*
    scenarios it would be the very model SDDP optimises (and TS-DDR's stagewise training sampler), which favours
    them, so it is drawn from the held-out scenarios, whose values no method trained on. The price: stagewise
    draws drop the persistence within a scenario (the toy case's standardised inflows have a lag-1 correlation of
    about 0.74, wet and dry years), so this set has no wet or dry years and is closer to SDDP's
    stagewise-independent model than the case's own scenarios are; the ``holdout`` set keeps them.
  - ``make-case``: new scenarios of the generator the case was written by (:func:`envs.hydro.make_case.sample_inflows`:
    seasonal lognormal AR(1) inflows, correlated across plants), from a random stream of their own. For the
    bolivia-like case this *is* the inflow model: its 200 scenarios, training and held-out alike, are draws from it,
    so new draws are more held-out scenarios of the same process, month-to-month persistence included (which the
    stagewise-independent models of SDDP and of TS-DDR's training sampler ignore). Refused for a case whose
    scenarios the generator (seed 0) does not reproduce.

* ``holdout``: the case's own held-out scenarios (:func:`algos.hydro_common.split_scenarios`), the set of the
  earlier tables, kept for continuity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from algos.hydro_common import HydroConfigError, holdout_stagewise_inflows
from envs.hydro import HydroSystem

EVAL_SET_KINDS = ("holdout-stagewise", "make-case")
"""What ``--eval-set`` accepts: how the sampled evaluation set is drawn (see the module docstring)."""
MAKE_CASE_SEED = 0
"""The :func:`envs.hydro.make_case.generate_case` seed a ``make-case`` case must come from (the shipped file's)."""


@dataclass(frozen=True)
class EvaluationSet:
    """Inflow scenarios every method is deployed on, with what they are (for the report)."""

    key: str
    """``"sampled"`` or ``"holdout"``: the name results are stored under."""
    inflows: np.ndarray
    """Shape ``(S, T, n)``."""
    description: str
    """One sentence for the report: how the scenarios were made."""
    indices: tuple[int, ...] | None = None
    """The case's scenario indices, for the held-out set (None for sampled scenarios)."""

    @property
    def size(self) -> int:
        return int(self.inflows.shape[0])


def holdout_set(system: HydroSystem, holdout: Sequence[int] | np.ndarray) -> EvaluationSet:
    """The case's own held-out scenarios (the earlier tables' set)."""
    indices = tuple(int(k) for k in holdout)
    return EvaluationSet("holdout", system.inflows[list(indices)],
                         f"the case's {len(indices)} held-out scenarios {indices[0]}..{indices[-1]}", indices)


def sampled_set(system: HydroSystem, holdout: Sequence[int] | np.ndarray, kind: str, count: int,
                seed: int) -> EvaluationSet:
    """``count`` out-of-sample scenarios of ``kind`` (one of :data:`EVAL_SET_KINDS`), drawn with ``seed``.

    Raises:
        HydroConfigError: an unknown kind, a count below 1, no held-out scenario (``holdout-stagewise``), or a
            case the generator does not reproduce (``make-case``).
    """
    if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 1:
        raise HydroConfigError(f"eval_scenarios: must be an integer >= 1, got {count!r}")
    if kind == "holdout-stagewise":
        inflows = holdout_stagewise_inflows(system, holdout, count, seed)
        text = (f"{count} scenarios drawn stagewise from the {len(holdout)} held-out scenarios' stage distributions "
                f"(`algos.hydro_common.holdout_stagewise_inflows`, seed {seed}): out of sample for every method")
        return EvaluationSet("sampled", inflows, text)
    if kind == "make-case":
        _check_generated(system)
        from envs.hydro.make_case import sample_inflows

        inflows = sample_inflows(count, seed, case_seed=MAKE_CASE_SEED, num_stages=system.num_stages)
        text = (f"{count} new scenarios of the case's generator (`envs.hydro.make_case.sample_inflows`, seasonal "
                f"lognormal AR(1) inflows; seed {seed}): out of sample for every method")
        return EvaluationSet("sampled", inflows, text)
    raise HydroConfigError(f"eval_set: must be one of {list(EVAL_SET_KINDS)}, got {kind!r}")


def _check_generated(system: HydroSystem) -> None:
    """Refuse a case whose inflows are not what ``make_case`` writes for :data:`MAKE_CASE_SEED` at its size."""
    from envs.hydro.make_case import generate_case

    generated = generate_case(MAKE_CASE_SEED, num_stages=system.num_stages, num_scenarios=system.num_scenarios)
    names = [h.name for h in system.hydros]
    if sorted(generated["inflows"]) != sorted(names) or not np.array_equal(
            np.stack([np.asarray(generated["inflows"][name]) for name in names], axis=-1), system.inflows):
        raise HydroConfigError(
            f"eval_set: 'make-case' needs a case written by envs.hydro.make_case (seed {MAKE_CASE_SEED}); the "
            f"{system.name!r} case's inflows are not its, so use --eval-set holdout-stagewise")
