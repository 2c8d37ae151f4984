"""Pareto dominance, crowding distance and the Pareto archive of C-MORL.

C-MORL (Liu et al., ICLR 2025, "C-MORL: Multi-Objective Reinforcement Learning through Efficient Discovery of
Pareto Front") trains a few policies on a preference grid, then repeatedly picks policies on the current
Pareto front and extends them by constrained policy optimisation. The ``ParetoArchive`` is the bookkeeping
for that loop (the authors' ``EP`` class): it holds every evaluated policy that is still non-dominated
(objective vector + whatever payload the caller attaches, e.g. a policy checkpoint), prunes itself to a
fixed capacity by crowding distance, and chooses which policies to extend next: the most isolated ones
(largest crowding distance) whose objective vector has not been extended before.

All objectives are maximised. Following the authors' ``get_ep_indices``, a point ``a`` dominates ``b`` when
``a >= b`` in every objective and ``a > b`` in at least one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

__all__ = ["ParetoArchive", "crowding_distance", "dominates", "non_dominated_indices"]


def _as_points(points: Any, n_objectives: int | None = None, name: str = "points") -> np.ndarray:
    """``points`` as a float64 (k, m) array; an empty input becomes (0, m) (or (0, 0) when m is unknown)."""
    arr = np.asarray(points, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, n_objectives if n_objectives is not None else (arr.shape[-1] if arr.ndim == 2 else 0)))
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n_points, n_objectives), got shape {arr.shape}")
    if n_objectives is not None and arr.shape[1] != n_objectives:
        raise ValueError(f"{name} have {arr.shape[1]} objectives, expected {n_objectives}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contain NaN or infinite objective values; evaluate the policies again")
    return arr


def dominates(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> bool:
    """True when ``a`` Pareto-dominates ``b`` (maximisation): ``a >= b`` everywhere and ``a > b`` somewhere."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"cannot compare points of shapes {a.shape} and {b.shape}")
    return bool(np.all(a >= b) and np.any(a > b))


def non_dominated_indices(points: Any, reference_point: Sequence[float] | np.ndarray | None = None) -> np.ndarray:
    """Indices of the non-dominated points, ordered by the first objective ascending (as the authors return).

    Points dominated by any other point are dropped; of exact duplicates only the first (lowest index) is
    kept, so the archive never holds two copies of one objective vector. With ``reference_point``, points
    that are not ``>=`` it in every objective are dropped too (the authors' optional reference filter).
    Ties in the first objective keep index order (stable sort).
    """
    pts = _as_points(points)
    k = pts.shape[0]
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    keep = np.ones(k, dtype=bool)
    if reference_point is not None:
        ref = np.asarray(reference_point, dtype=np.float64).reshape(-1)
        if ref.shape[0] != pts.shape[1]:
            raise ValueError(f"reference point has {ref.shape[0]} values but the points have {pts.shape[1]} objectives")
        keep &= np.all(pts >= ref, axis=1)
    candidates = np.flatnonzero(keep)
    if candidates.size:
        # pymoo's non-dominated sort minimises; on -points its dominance is ours (a point dominating a candidate is
        # itself >= the reference point, so filtering by the reference first changes nothing)
        front = NonDominatedSorting().do(-pts[candidates], only_non_dominated_front=True)
        keep[:] = False
        keep[candidates[front]] = True
    # of exact duplicates (neither dominates the other) the first in input order represents them
    _, first = np.unique(pts, axis=0, return_index=True)
    duplicate = np.ones(k, dtype=bool)
    duplicate[first] = False
    keep &= ~duplicate
    idx = np.flatnonzero(keep)
    return idx[np.argsort(pts[idx, 0], kind="stable")].astype(np.int64)


def crowding_distance(points: Any) -> np.ndarray:
    """NSGA-II crowding distance of each point, as in the authors' ``EP.calculate_crowding_distance``.

    Per objective, sort the points by it (stable); the two extremes get +inf and each interior point gets
    (next - previous) / (max - min); the per-objective values are summed. Large values mark isolated points,
    which C-MORL prefers both to keep when pruning and to extend. With 1 or 2 points every distance is inf.
    """
    pts = _as_points(points)
    k, m = pts.shape
    dist = np.zeros(k, dtype=np.float64)
    if k == 0:
        return dist
    for j in range(m):
        order = np.argsort(pts[:, j], kind="stable")
        values = pts[order, j]
        span = values[-1] - values[0]
        contrib = np.zeros(k, dtype=np.float64)
        if k > 2 and span > 0:
            contrib[1:-1] = (values[2:] - values[:-2]) / span
        # When max == min for this objective the authors divide 0 by 0 (NaN, which would poison the sum and the
        # sort that uses it); here the objective simply contributes 0 to interior points.
        contrib[0] = contrib[-1] = np.inf
        dist[order] += contrib
    return dist


class ParetoArchive:
    """The non-dominated set of evaluated policies, pruned by crowding distance, with extension selection.

    ``points[i]`` is the objective vector of ``payloads[i]``. Rows are kept ordered by the first objective
    ascending (the order ``non_dominated_indices`` returns). ``select`` remembers the objective tuples it has
    handed out, so a policy is never chosen for extension twice, even after it left and re-entered.
    """

    def __init__(
        self, n_objectives: int, capacity: int = 200, reference_point: Sequence[float] | np.ndarray | None = None
    ) -> None:
        if isinstance(n_objectives, bool) or not isinstance(n_objectives, (int, np.integer)) or n_objectives < 1:
            raise ValueError(f"n_objectives must be a positive integer, got {n_objectives!r}")
        if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)) or capacity < 1:
            raise ValueError(f"capacity must be a positive integer, got {capacity!r}")
        self.n_objectives = int(n_objectives)
        self.capacity = int(capacity)
        self.reference_point: np.ndarray | None = None
        if reference_point is not None:
            ref = np.asarray(reference_point, dtype=np.float64).reshape(-1)
            if ref.shape[0] != self.n_objectives:
                raise ValueError(
                    f"reference point has {ref.shape[0]} values but the archive has {self.n_objectives} objectives"
                )
            self.reference_point = ref
        self._points = np.zeros((0, self.n_objectives), dtype=np.float64)
        self._payloads: list[Any] = []
        self._selected: set[tuple[float, ...]] = set()

    @property
    def points(self) -> np.ndarray:
        """Objective vectors of the archived policies, (n, n_objectives); a copy, so edits do not leak in."""
        return self._points.copy()

    @property
    def payloads(self) -> list[Any]:
        """Payloads of the archived policies, aligned with ``points`` (a new list holding the same objects)."""
        return list(self._payloads)

    def __len__(self) -> int:
        return self._points.shape[0]

    def add(self, points: Any, payloads: Sequence[Any]) -> None:
        """Add newly evaluated policies; keep the non-dominated set, then the ``capacity`` most isolated.

        Like the authors' ``EP.update``: merge, filter to the non-dominated (and, when a reference point is
        set, reference-dominating) points, and if more than ``capacity`` remain keep those with the largest
        crowding distance (computed once on the merged front; ties keep the earlier row). An incoming point
        equal to an archived one is dropped, keeping the archived payload.
        """
        new = _as_points(points, self.n_objectives, name="new points")
        payloads = list(payloads)
        if len(payloads) != new.shape[0]:
            raise ValueError(f"got {new.shape[0]} points but {len(payloads)} payloads; pass one payload per point")
        if new.shape[0] == 0:
            return
        merged = np.vstack([self._points, new])
        merged_payloads = self._payloads + payloads
        keep = non_dominated_indices(merged, self.reference_point)
        front = merged[keep]
        if front.shape[0] > self.capacity:
            cd = crowding_distance(front)
            top = np.sort(np.argsort(-cd, kind="stable")[: self.capacity])  # back to first-objective order
            keep = keep[top]
            front = merged[keep]
        self._points = front
        self._payloads = [merged_payloads[i] for i in keep]

    def select(self, n: int) -> list[int]:
        """Indices of up to ``n`` archived policies to extend next, and mark their objective tuples selected.

        The authors' ``filter_by_crowding_distance``: walk the archive by crowding distance descending (ties
        in row order) and take points whose objective tuple was never selected before.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n!r}")
        chosen: list[int] = []
        if n == 0 or len(self) == 0:
            return chosen
        cd = crowding_distance(self._points)
        for i in np.argsort(-cd, kind="stable"):
            key = tuple(float(v) for v in self._points[i])
            if key in self._selected:
                continue
            chosen.append(int(i))
            self._selected.add(key)
            if len(chosen) == n:
                break
        return chosen

    @property
    def selected_tuples(self) -> set[tuple[float, ...]]:
        """Objective tuples already handed out by ``select`` (a copy)."""
        return set(self._selected)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: plain python / numpy values, picklable; payloads stored as given."""
        return {
            "n_objectives": self.n_objectives,
            "capacity": self.capacity,
            "reference_point": None if self.reference_point is None else self.reference_point.copy(),
            "points": self._points.copy(),
            "payloads": list(self._payloads),
            "selected": sorted(self._selected),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from ``state_dict()``; refuses a state for a different number of objectives."""
        n_obj = int(state["n_objectives"])
        if n_obj != self.n_objectives:
            raise ValueError(f"state has {n_obj} objectives but this archive has {self.n_objectives}")
        points = _as_points(state["points"], self.n_objectives, name="state points")
        payloads = list(state["payloads"])
        if len(payloads) != points.shape[0]:
            raise ValueError(f"state has {points.shape[0]} points but {len(payloads)} payloads")
        ref = state.get("reference_point")
        self.capacity = int(state["capacity"])
        self.reference_point = None if ref is None else np.asarray(ref, dtype=np.float64).reshape(-1).copy()
        self._points = points.copy()
        self._payloads = payloads
        self._selected = {tuple(float(v) for v in t) for t in state["selected"]}
