"""Where a QD run's time goes: evaluation, novelty queries, autoencoder work and the rest of each generation.

Once evaluations are compiled (``qd.fast_evaluation``) they stop dominating a run, and what is left (k-NN novelty
over a growing archive, autoencoder training and encoding) decides how large a budget fits. Each
:class:`~qd.base.QDAlgorithm` owns a :class:`PhaseClock`; its totals are checkpointed, so a resumed run keeps
counting, and ``metrics.json`` records them under ``"seconds"``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

PHASES = ("evaluation", "novelty", "autoencoder")
"""The measured phases; they never overlap. Generation time outside them is ``"other"`` (selection, mutation,
emitters, archives, metrics)."""
GENERATION = "generation"
"""Whole :meth:`~qd.base.QDAlgorithm.step` calls, the phases included."""


class PhaseClock:
    """Wall-clock seconds per phase, summed over the run (and over its resumed segments)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = dict.fromkeys((*PHASES, GENERATION), 0.0)
        self._open: set[str] = set()

    @contextmanager
    def measure(self, phase: str) -> Iterator[None]:
        """Add the wall time of the ``with`` block to ``phase``.

        A phase measured inside another phase (novelty scored while encoding, say) counts for the outer one
        only, so the phases never add up to more than the generations.

        Raises:
            KeyError: for a phase that is not :data:`PHASES` or :data:`GENERATION`.
        """
        if phase not in self.seconds:
            raise KeyError(f"unknown phase {phase!r}; the phases are {', '.join(self.seconds)}.")
        if phase != GENERATION and self._open - {GENERATION}:
            yield  # already inside a phase
            return
        self._open.add(phase)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] += time.perf_counter() - start
            self._open.discard(phase)

    def breakdown(self) -> dict[str, float]:
        """Seconds per phase, ``"other"`` (generation time outside the phases, never negative) and ``"total"``."""
        measured = {phase: self.seconds[phase] for phase in PHASES}
        total = max(self.seconds[GENERATION], sum(measured.values()))
        return {**measured, "other": total - sum(measured.values()), "total": total}

    def state_dict(self) -> dict[str, float]:
        """The totals, for a checkpoint."""
        return dict(self.seconds)

    def load_state_dict(self, state: dict[str, float] | None) -> None:
        """Restore :meth:`state_dict`; None (a checkpoint written before the clock existed) starts at zero."""
        self.seconds = dict.fromkeys(self.seconds, 0.0)
        for phase, seconds in (state or {}).items():
            if phase in self.seconds:
                self.seconds[phase] = float(seconds)
