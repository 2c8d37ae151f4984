"""The comparison queue: labelled pairs of segments, the count of comparisons used, recent trajectories.

One object holds what a preference-based run has asked and kept, so that a resumed run continues with it:

- segments by ``segment_id`` and the labelled comparisons (id_a, id_b, label) that refer to them, optionally
  capped at ``capacity`` comparisons, oldest dropped first (PEBBLE's label buffer; ``imitation``'s
  ``PreferenceDataset`` with ``max_size``);
- ``comparisons_used``: every query put to a rater through :meth:`ComparisonQueue.compare` (or declared with
  :meth:`ComparisonQueue.count`), stored or not, dropped or not. Benchmarks report true return against it;
  SPO, which never stores its labels, counts here as well;
- a FIFO of recent trajectories (``recent_capacity``), the opponents of SPO-style win rates against a queue
  of the current policy's recent behaviour (Swamy et al., 2024).

:meth:`ComparisonQueue.save` writes one ``.npz`` (arrays concatenated per field, ids and labels as JSON inside
it, read back without pickle) atomically; :meth:`ComparisonQueue.load` restores it.
"""

from __future__ import annotations

import json
import os
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rl.preferences.errors import ComparisonQueueError, SegmentError
from rl.preferences.raters import Rater
from rl.preferences.segments import Segment, Trajectory

FORMAT = "frontier-rl-comparison-queue"
VERSION = 1


@dataclass(frozen=True)
class Comparison:
    """A labelled pair: P(segment_a preferred over segment_b), normally 0, 0.5 or 1."""

    segment_a: str
    segment_b: str
    label: float


class ComparisonQueue:
    """Segments, labelled comparisons, the count of comparisons used, and a FIFO of recent trajectories.

    :param capacity: keep at most this many comparisons, dropping the oldest (and segments no comparison
        refers to any more); None keeps all.
    :param recent_capacity: how many recent trajectories the FIFO keeps.
    """

    def __init__(self, *, capacity: int | None = None, recent_capacity: int = 64) -> None:
        if capacity is not None and capacity < 1:
            raise ValueError(f"capacity must be >= 1 or None, got {capacity}")
        if recent_capacity < 0:
            raise ValueError(f"recent_capacity must be >= 0, got {recent_capacity}")
        self.capacity = capacity
        self.segments: dict[str, Segment] = {}
        self.comparisons: deque[Comparison] = deque()
        self.comparisons_used = 0
        self.recent: deque[Trajectory] = deque(maxlen=recent_capacity)
        self._references: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self.comparisons)

    # ----- segments and comparisons -----------------------------------------------------------------------

    def add_segment(self, segment: Segment) -> str:
        """Keep a segment (a second, different segment with the same id is refused); returns its id."""
        known = self.segments.setdefault(segment.segment_id, segment)
        if known is not segment and not (
            np.array_equal(known.actions, segment.actions) and np.array_equal(known.observations, segment.observations)
        ):
            raise SegmentError(
                f"the queue already holds a different segment with id {segment.segment_id!r}; give each collection its "
                "own first_episode_id (or pass segment_id)"
            )
        return segment.segment_id

    def add_segments(self, segments: Iterable[Segment]) -> list[str]:
        """Keep several segments; returns their ids."""
        return [self.add_segment(s) for s in segments]

    def _id(self, item: Segment | str) -> str:
        if isinstance(item, Segment):
            return self.add_segment(item)
        if item not in self.segments:
            raise ComparisonQueueError(f"the queue holds no segment {item!r}; add the segment (add_segment) first")
        return item

    def add(self, a: Segment | str, b: Segment | str, label: float) -> Comparison:
        """Store a labelled comparison made elsewhere (a label file, a person). Does not change ``comparisons_used``
        (use :meth:`count` for comparisons that cost a query)."""
        label = float(label)
        if not 0.0 <= label <= 1.0:
            raise ComparisonQueueError(f"a label is P(a preferred) in [0, 1], got {label}")
        comparison = Comparison(self._id(a), self._id(b), label)
        self.comparisons.append(comparison)
        self._references.update((comparison.segment_a, comparison.segment_b))
        while self.capacity is not None and len(self.comparisons) > self.capacity:
            self._forget(self.comparisons.popleft())
        return comparison

    def _forget(self, comparison: Comparison) -> None:
        for segment_id in (comparison.segment_a, comparison.segment_b):
            self._references[segment_id] -= 1
            if self._references[segment_id] <= 0:
                del self._references[segment_id]
                self.segments.pop(segment_id, None)

    def count(self, n: int = 1) -> None:
        """Declare ``n`` comparisons used that did not go through :meth:`compare`."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        self.comparisons_used += int(n)

    def compare(self, rater: Rater, a: Segment, b: Segment, rng: np.random.Generator, *, store: bool = True) -> float:
        """Ask the rater once (one comparison used); store the labelled pair unless ``store`` is False."""
        label = float(rater.prefer(a, b, rng))
        self.comparisons_used += 1
        if store:
            self.add(a, b, label)
        return label

    def compare_pairs(
        self, rater: Rater, pairs: Sequence[tuple[Segment, Segment]], rng: np.random.Generator, *, store: bool = True
    ) -> np.ndarray:
        """:meth:`compare` on each pair; the labels as an array."""
        return np.array([self.compare(rater, a, b, rng, store=store) for a, b in pairs], dtype=np.float64)

    def labels(self) -> np.ndarray:
        """(N,) the stored labels, oldest first."""
        return np.array([c.label for c in self.comparisons], dtype=np.float64)

    def pairs(self) -> list[tuple[Segment, Segment]]:
        """The stored comparisons' segments, oldest first."""
        return [(self.segments[c.segment_a], self.segments[c.segment_b]) for c in self.comparisons]

    # ----- recent trajectories (SPO's opponents) ----------------------------------------------------------

    def push_trajectory(self, trajectory: Trajectory) -> None:
        """Append a finished trajectory to the FIFO (the oldest leaves when it is full)."""
        self.recent.append(trajectory)

    def recent_trajectories(self) -> list[Trajectory]:
        """The FIFO's trajectories, oldest first."""
        return list(self.recent)

    # ----- save / load -------------------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the queue to one ``.npz`` file (atomically: a temporary file, then a rename)."""
        path = Path(path)
        arrays: dict[str, np.ndarray] = {}
        segment_meta = _pack("segments", list(self.segments.values()), arrays)
        trajectory_meta = _pack("trajectories", list(self.recent), arrays)
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "capacity": self.capacity,
            "recent_capacity": self.recent.maxlen,
            "comparisons_used": self.comparisons_used,
            "comparisons": [[c.segment_a, c.segment_b, c.label] for c in self.comparisons],
            "segments": segment_meta,
            "trajectories": trajectory_meta,
        }
        arrays["meta"] = np.array(json.dumps(meta))
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        with open(temporary, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(temporary, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> ComparisonQueue:
        """Read a queue written by :meth:`save`."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except FileNotFoundError:
            raise ComparisonQueueError(f"no comparison queue at {path}; save one with ComparisonQueue.save") from None
        except (OSError, ValueError) as error:
            raise ComparisonQueueError(f"{path} is not a comparison queue file ({error})") from None
        meta = json.loads(str(arrays.pop("meta", "{}")))
        if meta.get("format") != FORMAT or meta.get("version") != VERSION:
            raise ComparisonQueueError(
                f"{path} is not a {FORMAT} file of version {VERSION}; save it with ComparisonQueue.save"
            )
        queue = cls(capacity=meta["capacity"], recent_capacity=meta["recent_capacity"])
        queue.add_segments(_unpack("segments", meta["segments"], arrays, Segment))
        for trajectory in _unpack("trajectories", meta["trajectories"], arrays, Trajectory):
            queue.push_trajectory(trajectory)
        for a, b, label in meta["comparisons"]:
            queue.add(a, b, label)
        queue.comparisons_used = int(meta["comparisons_used"])
        return queue


_SCALARS = {
    Segment: ("reward_names", "env_id", "episode_id", "start", "segment_id"),
    Trajectory: ("reward_names", "env_id", "episode_id", "terminated"),
}


def _fields(item: Segment | Trajectory) -> dict[str, np.ndarray]:
    fields = {"observations": item.observations, "actions": item.actions, "rewards": item.rewards}
    fields.update({f"infos/{key}": value for key, value in item.infos.items()})
    return fields


def _pack(group: str, items: Sequence[Segment | Trajectory], arrays: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Concatenate the items' arrays per field into ``arrays``; return per-item metadata (rows per field)."""
    columns: dict[str, list[np.ndarray]] = {}
    meta = []
    for item in items:
        fields = _fields(item)
        for name, value in fields.items():
            if value.dtype.kind not in "biuf":
                raise ComparisonQueueError(
                    f"{group} field {name} has dtype {value.dtype}; the queue saves numeric arrays only"
                )
            columns.setdefault(name, []).append(value)
        record = {key: getattr(item, key) for key in _SCALARS[type(item)]}
        record["reward_names"] = list(item.reward_names)
        record["rows"] = {name: len(value) for name, value in fields.items()}
        meta.append(record)
    for name, values in columns.items():
        try:
            arrays[f"{group}/{name}"] = np.concatenate(values)
        except ValueError as error:
            raise ComparisonQueueError(
                f"{group} disagree on the shape of {name} ({error}); keep one env's segments per queue"
            ) from None
    return meta


def _unpack(group: str, meta: list[dict[str, Any]], arrays: dict[str, np.ndarray], kind: type) -> list[Any]:
    """Rebuild the items :func:`_pack` wrote."""
    offsets: Counter[str] = Counter()
    items = []
    for record in meta:
        record = dict(record)
        rows = record.pop("rows")
        fields = {}
        for name, n in rows.items():
            start = offsets[name]
            fields[name] = arrays[f"{group}/{name}"][start : start + n]
            offsets[name] += n
        infos = {name.removeprefix("infos/"): value for name, value in fields.items() if name.startswith("infos/")}
        record["reward_names"] = tuple(record["reward_names"])
        items.append(
            kind(
                observations=fields["observations"],
                actions=fields["actions"],
                rewards=fields["rewards"],
                infos=infos,
                **record,
            )
        )
    return items
