"""Raters: who says which of two segments is better, synthetic or human, behind one small interface.

Convention (``imitation``'s ``PreferenceGatherer`` and B-Pref's teachers): a label is P(a > b), the
probability that the *first* segment is preferred. Every rater has two methods:

- ``probability(a, b) -> float`` in [0, 1]: the rater's P(a > b).
- ``prefer(a, b, rng) -> float`` in {0, 0.5, 1}: one answer. A stochastic rater samples 0 or 1 from its
  probability; a deterministic one returns its probability itself, 0.5 meaning "equally good" (B-Pref's
  "equal" answer). This is what a comparison costs: one call = one comparison used.

The synthetic raters are those preference-RL research runs (Christiano et al., 2017; B-Pref, Lee et al.,
2021; SPO, Swamy et al., 2024): Bradley-Terry on the true return with a temperature
(:class:`BradleyTerryRater`; B-Pref's "stochastic" teacher, or its "myopic" one with :func:`myopic_return`),
label flips (:class:`NoisyRater`; B-Pref's "mistake"), the majority vote of raters weighing different reward
terms, which has preference cycles (:class:`IntransitiveRater`; SPO's intransitive setting), and an
order-of-events rule no per-step reward can express (:class:`NonMarkovianRater`; SPO's non-Markovian
setting). A person plugs in as a callable (:class:`HumanRater`) or a label file (:class:`LabelFileRater`).
:func:`make_rater` builds any of them by name.
"""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rl.preferences.errors import LabelFileError, UnknownRaterError
from rl.preferences.label_files import LabelRow, parse_label, read_label_file
from rl.preferences.segments import Segment

RewardFn = Callable[[Segment], float]


@runtime_checkable
class Rater(Protocol):
    """Anything that compares two segments; labels are P(first segment preferred)."""

    def probability(self, a: Segment, b: Segment) -> float:
        """P(a > b) under this rater, in [0, 1]."""
        ...

    def prefer(self, a: Segment, b: Segment, rng: np.random.Generator) -> float:
        """One label in {0, 0.5, 1}: 1 = a preferred, 0 = b preferred, 0.5 = equally good."""
        ...


def true_return(segment: Segment) -> float:
    """The segment's true return: the sum of its rewards over steps and terms."""
    return segment.true_return


def myopic_return(gamma: float) -> RewardFn:
    """B-Pref's myopic teacher: sum_t gamma^(L-1-t) r_t, so the end of a segment weighs most."""
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"gamma must be in (0, 1], got {gamma}")

    def weighted(segment: Segment) -> float:
        rewards = segment.reward_matrix().sum(axis=1)
        return float(np.dot(gamma ** np.arange(len(rewards) - 1, -1, -1), rewards))

    return weighted


def _sigmoid(x: float) -> float:
    return 0.5 * (1.0 + math.tanh(0.5 * x))


def _sample(probability: float, rng: np.random.Generator) -> float:
    return 1.0 if rng.random() < probability else 0.0


class BradleyTerryRater:
    """P(a > b) = sigmoid((R(a) - R(b)) / temperature), R = the true return by default.

    Christiano et al. (2017) and B-Pref's stochastic teacher (there with rationality beta = 1 / temperature).
    Temperature 0 is the deterministic, perfectly rational rater: 1 if R(a) > R(b), 0 if less, 0.5 on a tie.
    Temperature is in units of return: differences much smaller than it are close to coin flips.

    :param temperature: >= 0.
    :param reward_fn: segment -> return (default :func:`true_return`; :func:`myopic_return` for B-Pref's myopic
        teacher).
    """

    def __init__(self, temperature: float = 1.0, reward_fn: RewardFn | None = None) -> None:
        if not temperature >= 0.0 or not math.isfinite(temperature):
            raise ValueError(f"temperature must be a finite number >= 0, got {temperature}")
        self.temperature = float(temperature)
        self.reward_fn = reward_fn or true_return

    def probability(self, a: Segment, b: Segment) -> float:
        difference = self.reward_fn(a) - self.reward_fn(b)
        if self.temperature == 0.0:
            return 1.0 if difference > 0 else 0.0 if difference < 0 else 0.5
        return _sigmoid(difference / self.temperature)

    def prefer(self, a: Segment, b: Segment, rng: np.random.Generator) -> float:
        p = self.probability(a, b)
        return p if self.temperature == 0.0 else _sample(p, rng)


class NoisyRater:
    """Flips the base rater's label with probability ``flip_probability`` (B-Pref's "mistake" teacher).

    An "equally good" label (0.5) stays 0.5. One uniform draw per call decides the flip, after the base rater's
    own draws, so a seeded run gives the same labels.

    :param base: the rater whose labels are flipped.
    :param flip_probability: in [0, 1].
    """

    def __init__(self, base: Rater, flip_probability: float) -> None:
        if not 0.0 <= flip_probability <= 1.0:
            raise ValueError(f"flip_probability must be in [0, 1], got {flip_probability}")
        self.base = base
        self.flip_probability = float(flip_probability)

    def probability(self, a: Segment, b: Segment) -> float:
        p = self.base.probability(a, b)
        return (1.0 - self.flip_probability) * p + self.flip_probability * (1.0 - p)

    def prefer(self, a: Segment, b: Segment, rng: np.random.Generator) -> float:
        label = self.base.prefer(a, b, rng)
        return 1.0 - label if rng.random() < self.flip_probability else label


class IntransitiveRater:
    """The majority vote of deterministic voters, voter i scoring a segment by w_i . (returns of its reward terms).

    Each voter alone is transitive, their majority is not (Condorcet's paradox): with three voters that each
    care about one of three reward terms there are segments a, b, c with a > b > c > a. This is SPO's
    intransitive setting (Swamy et al., 2024, who aggregate several reward functions by majority vote).
    Deterministic: label 1 if more voters prefer a, 0 if more prefer b, 0.5 on a tied vote; combine with
    :class:`NoisyRater` for noise.

    :param terms_weights: one weight vector per voter, over the segments' reward columns: a sequence of k
        numbers (column order) or a mapping reward name -> weight (missing names weigh 0), e.g.
        ``[{"reward_forward": 1}, {"reward_ctrl": 1}, {"reward_survive": 1}]``. None: one voter per reward
        term, each weighing only its own.
    """

    def __init__(self, terms_weights: Sequence[Sequence[float] | Mapping[str, float]] | None = None) -> None:
        if terms_weights is not None and len(terms_weights) == 0:
            raise ValueError("terms_weights is empty; pass one weight vector per voter (or None: one per term)")
        self.terms_weights = None if terms_weights is None else list(terms_weights)

    def _weights(self, segment: Segment) -> np.ndarray:
        k = segment.reward_matrix().shape[1]
        if self.terms_weights is None:
            if k < 2:
                raise ValueError(
                    f"segment {segment.segment_id} has one reward term, so one voter cannot be intransitive; collect "
                    "reward terms (collect_trajectories(reward_terms=...)) or pass terms_weights"
                )
            return np.eye(k)
        names = segment.reward_names
        rows = []
        for voter, weights in enumerate(self.terms_weights):
            if isinstance(weights, Mapping):
                unknown = sorted(set(weights) - set(names))
                if unknown:
                    raise ValueError(
                        f"voter {voter} weighs reward terms {unknown} that segment {segment.segment_id} lacks; "
                        f"its terms are {list(names) or ['(scalar reward)']}"
                    )
                rows.append([float(weights.get(name, 0.0)) for name in names] if names else [0.0])
            else:
                if len(weights) != k:
                    raise ValueError(
                        f"voter {voter} has {len(weights)} weights but segment {segment.segment_id} has {k} reward "
                        f"terms {list(names)}; pass {k} weights or a mapping name -> weight"
                    )
                rows.append([float(w) for w in weights])
        return np.asarray(rows)

    def votes(self, a: Segment, b: Segment) -> np.ndarray:
        """Each voter's label in {0, 0.5, 1}."""
        difference = self._weights(a) @ a.term_returns() - self._weights(b) @ b.term_returns()
        return np.where(difference > 0, 1.0, np.where(difference < 0, 0.0, 0.5))

    def probability(self, a: Segment, b: Segment) -> float:
        votes = self.votes(a, b)
        for_a, for_b = int(np.sum(votes == 1.0)), int(np.sum(votes == 0.0))
        return 1.0 if for_a > for_b else 0.0 if for_a < for_b else 0.5

    def prefer(self, a: Segment, b: Segment, rng: np.random.Generator) -> float:
        return self.probability(a, b)


@dataclass(frozen=True)
class Region:
    """A region of the state space: ``low <= value <= high``, value = an info key's (``x_position``) or an
    observation index's value at a step."""

    key: str | int
    low: float = -math.inf
    high: float = math.inf

    def mask(self, segment: Segment) -> np.ndarray:
        """(L,) bool: whether each step ends inside the region (infos are recorded after each step)."""
        if isinstance(self.key, str):
            if self.key not in segment.infos:
                raise ValueError(
                    f"segment {segment.segment_id} has no info {self.key!r} (it has {sorted(segment.infos)}); record "
                    "it with collect_trajectories(info_keys=...) or use an observation index"
                )
            values = np.asarray(segment.infos[self.key], dtype=np.float64).reshape(len(segment), -1)[:, 0]
        else:
            values = segment.observations.reshape(len(segment), -1)[:, self.key].astype(np.float64)
        return (values >= self.low) & (values <= self.high)


def as_region(region: Region | Mapping[str, Any] | Sequence[Any]) -> Region:
    """A Region from a Region, a mapping of its fields, or a tuple (key, low, high) (None = unbounded)."""
    if isinstance(region, Region):
        return region
    if isinstance(region, Mapping):
        fields = dict(region)
    else:
        key, low, high = (list(region) + [None, None])[:3]
        fields = {"key": key, "low": low, "high": high}
    fields["low"] = -math.inf if fields.get("low") is None else float(fields["low"])
    fields["high"] = math.inf if fields.get("high") is None else float(fields["high"])
    return Region(**fields)


def first_visit(mask: np.ndarray) -> int:
    """The first step at which ``mask`` is True, or len(mask) if never."""
    hits = np.flatnonzero(mask)
    return int(hits[0]) if len(hits) else len(mask)


class NonMarkovianRater:
    """Prefers the segment that reaches region A before region B: an order of events, not a sum of rewards.

    Definition. For a segment let t_A and t_B be the first steps that end in A and in B (the segment's length
    if never). The segment *succeeds* when t_A < t_B: it reaches A, and reaches it strictly before it first
    reaches B (or never reaches B); a step inside both A and B first does not succeed. A succeeding segment is
    preferred to a failing one (label 1 or 0); two that both succeed or both fail tie: the ``tie_breaker``
    rater decides, or the label is 0.5 without one. No reward r(s, a) summed over steps gives this preference
    (it depends on the order of visits), which is SPO's point about non-Markovian preferences (Swamy et al.,
    2024). Example on MuJoCo locomotion: A = ``("x_position", None, -0.2)`` (step back first), B =
    ``("x_position", 0.5, None)``.

    :param region_first: region A (a :class:`Region`, a mapping of its fields, or (key, low, high)).
    :param region_second: region B.
    :param tie_breaker: the rater for ties (e.g. a :class:`BradleyTerryRater`), or None for 0.5.
    """

    def __init__(
        self,
        region_first: Region | Mapping[str, Any] | Sequence[Any],
        region_second: Region | Mapping[str, Any] | Sequence[Any],
        tie_breaker: Rater | None = None,
    ) -> None:
        self.region_first = as_region(region_first)
        self.region_second = as_region(region_second)
        self.tie_breaker = tie_breaker

    def succeeds(self, segment: Segment) -> bool:
        """Whether the segment reaches region A strictly before region B."""
        return first_visit(self.region_first.mask(segment)) < first_visit(self.region_second.mask(segment))

    def probability(self, a: Segment, b: Segment) -> float:
        success_a, success_b = self.succeeds(a), self.succeeds(b)
        if success_a != success_b:
            return 1.0 if success_a else 0.0
        return self.tie_breaker.probability(a, b) if self.tie_breaker is not None else 0.5

    def prefer(self, a: Segment, b: Segment, rng: np.random.Generator) -> float:
        success_a, success_b = self.succeeds(a), self.succeeds(b)
        if success_a != success_b:
            return 1.0 if success_a else 0.0
        return self.tie_breaker.prefer(a, b, rng) if self.tie_breaker is not None else 0.5


class HumanRater:
    """A person (or any outside judge) behind a function ``(a, b) -> label``.

    The function answers 1 or "a" (first better), 0 or "b" (second), 0.5 or "=" (equal), as in label files.
    It is asked once per comparison; ``probability`` asks it too (a person's answer is their probability).
    """

    def __init__(self, judge: Callable[[Segment, Segment], Any]) -> None:
        if not callable(judge):
            raise TypeError(f"HumanRater needs a callable (a, b) -> label, got {type(judge).__name__}")
        self.judge = judge

    def probability(self, a: Segment, b: Segment) -> float:
        label = parse_label(self.judge(a, b), f"HumanRater's answer for ({a.segment_id}, {b.segment_id})")
        if label is None:
            raise LabelFileError(
                f"HumanRater got no answer for ({a.segment_id}, {b.segment_id}); answer 1/a, 0/b or 0.5/="
            )
        return label

    def prefer(self, a: Segment, b: Segment, rng: np.random.Generator) -> float:
        return self.probability(a, b)


class LabelFileRater:
    """Reads the labels a person wrote into a label file (see :mod:`rl.preferences.label_files`).

    A pair labelled in either order answers both orders (the label of (b, a) is 1 - that of (a, b)); when a
    pair is labelled twice the later row counts. ``reload()`` re-reads the file as the person fills it in.

    :param path: the ``.csv`` or ``.json`` file.
    :param segments: the segments (or their ids) the file may name; ids outside them raise
        :class:`LabelFileError` naming them. None: any id is accepted.
    """

    def __init__(self, path: str | Path, segments: Collection[Segment | str] | None = None) -> None:
        self.path = Path(path)
        self.known_ids = None if segments is None else {s.segment_id if isinstance(s, Segment) else s for s in segments}
        self.rows: list[LabelRow] = []
        self._labels: dict[tuple[str, str], float] = {}
        self.reload()

    def reload(self) -> None:
        """Read the file again."""
        self.rows = read_label_file(self.path, self.known_ids)
        self._labels = {(r.segment_a, r.segment_b): r.label for r in self.rows if r.label is not None}

    def labelled(self) -> list[LabelRow]:
        """The rows that carry a label."""
        return [row for row in self.rows if row.label is not None]

    def unlabelled(self) -> list[LabelRow]:
        """The rows still waiting for a label."""
        return [row for row in self.rows if row.label is None]

    def probability(self, a: Segment, b: Segment) -> float:
        key = (a.segment_id, b.segment_id)
        if key in self._labels:
            return self._labels[key]
        if key[::-1] in self._labels:
            return 1.0 - self._labels[key[::-1]]
        raise LabelFileError(
            f"{self.path.name} has no label for ({a.segment_id}, {b.segment_id}); fill in that row (or add it with "
            "write_query_file) and call reload()"
        )

    def prefer(self, a: Segment, b: Segment, rng: np.random.Generator) -> float:
        return self.probability(a, b)


def _make_noisy(base: Rater | str | None = None, flip_probability: float = 0.1, **base_kwargs: Any) -> NoisyRater:
    """``noisy``: flips a base rater (default deterministic Bradley-Terry) with probability 0.1 (B-Pref's
    mistake teacher uses 0.1)."""
    if base is None:
        base = BradleyTerryRater(temperature=0.0, **base_kwargs)
    elif isinstance(base, str):
        base = make_rater(base, **base_kwargs)
    return NoisyRater(base, flip_probability)


RATERS: dict[str, Callable[..., Rater]] = {
    "bt": BradleyTerryRater,
    "noisy": _make_noisy,
    "intransitive": IntransitiveRater,
    "nonmarkovian": NonMarkovianRater,
    "file": LabelFileRater,
    "human": HumanRater,
}
"""Rater names for :func:`make_rater` and the command line."""


def make_rater(name: str, **kwargs: Any) -> Rater:
    """Build a registered rater by name with its keyword arguments, e.g. ``make_rater("noisy", flip_probability=0.2)``.

    Raises:
        UnknownRaterError: for a name that is not registered, with the close matches.
        ValueError: for arguments the rater does not take, with its signature.
    """
    key = name.strip().lower()
    if key not in RATERS:
        close = difflib.get_close_matches(key, list(RATERS), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownRaterError(f"Unknown rater {name!r}.{hint} Registered: {', '.join(sorted(RATERS))}.")
    factory = RATERS[key]
    try:
        inspect.signature(factory).bind(**kwargs)
    except TypeError as error:
        raise ValueError(f"make_rater({key!r}): {error}; it takes {inspect.signature(factory)}") from None
    return factory(**kwargs)


def preference_matrix(rater: Rater, segments: Sequence[Segment]) -> np.ndarray:
    """(n, n) matrix of P(segments[i] > segments[j]) under the rater (0.5 on the diagonal)."""
    n = len(segments)
    matrix = np.full((n, n), 0.5)
    for i in range(n):
        for j in range(n):
            if i != j:
                matrix[i, j] = rater.probability(segments[i], segments[j])
    return matrix


def find_cycle(matrix: np.ndarray) -> tuple[int, int, int] | None:
    """Indices (i, j, k) with i > j > k > i (each P > 0.5) in a preference matrix, or None if there is no
    3-cycle (for a complete comparison without ties, no 3-cycle means transitive)."""
    wins = np.asarray(matrix) > 0.5
    for i, j in zip(*np.nonzero(wins)):
        closing = np.flatnonzero(wins[j] & wins[:, i])
        if len(closing):
            return int(i), int(j), int(closing[0])
    return None
