"""OPPO's data: a flat offline dataset as episodes, the context windows the policy learns from, and the scripted
preference labels (Kang et al., ICML 2023).

- :func:`episode_index`: where each episode of an :class:`~rl.datasets.OfflineDataset` starts and ends (an episode
  ends at a terminal or timeout row, or where the next row does not start from this row's next observation: the
  offline core's rule, :func:`rl.offline.episode_stops`, which :func:`rl.offline.episode_returns` uses too), and
  each row's step within its episode (the timestep the networks embed).
- :func:`sample_windows`: the hindsight-information-matching batch, as the authors' ``get_batch``
  (oppo/scripted/gym/experiment.py): a row uniformly over the dataset (= an episode in proportion to its length,
  then a uniform start), the ``context_length`` steps from it, shorter at the end of an episode and then padded on
  the left.
- :func:`scripted_comparisons`: the labelled pairs, through the project's preference module
  (:mod:`rl.preferences`): segments of ``segment_length`` steps cut uniformly from the dataset's episodes
  (:func:`~rl.preferences.sample_segments`), paired, and labelled by ``BradleyTerryRater(temperature=0)`` (the
  larger true return wins; equal returns tie at 0.5); a :class:`~rl.preferences.ComparisonQueue` counts the
  comparisons used. The same function with the same seed gives the same labels, which is how the benchmark trains
  its Bradley-Terry reward on exactly OPPO's pairs.

The preference module works on :class:`~rl.preferences.Trajectory` objects (episodes collected in an env); it has no
constructor from a flat offline dataset, so :meth:`EpisodeIndex.trajectories` is written here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch as th

from rl.datasets import MalformedDatasetError, OfflineDataset
from rl.offline import episode_stops
from rl.preferences import BradleyTerryRater, ComparisonQueue, Trajectory, sample_segments


class OPPODataError(MalformedDatasetError):
    """A dataset OPPO cannot learn from as configured: no episode holds a segment, an episode longer than the
    timestep embedding, or labels that all tie. A :class:`MalformedDatasetError`, so the command line reports it in
    one line."""


@dataclass(frozen=True)
class EpisodeIndex:
    """The episodes of a flat dataset as row ranges."""

    starts: np.ndarray
    """(E,) the first row of each episode."""
    lengths: np.ndarray
    """(E,) its number of rows."""
    row_step: np.ndarray
    """(N,) each row's step within its episode (0 at the episode's first row)."""
    row_end: np.ndarray
    """(N,) one past the last row of each row's episode."""

    def __len__(self) -> int:
        return len(self.starts)

    def trajectories(self, dataset: OfflineDataset) -> list[Trajectory]:
        """The episodes as :class:`~rl.preferences.Trajectory` objects (``episode_id`` = episode index), the
        observation at which each action was taken and the true rewards."""
        return [
            Trajectory(
                observations=dataset.observations[start : start + length],
                actions=dataset.actions[start : start + length],
                rewards=dataset.rewards[start : start + length],
                env_id=dataset.env_id,
                episode_id=index,
                terminated=bool(dataset.terminals[start + length - 1]),
            )
            for index, (start, length) in enumerate(zip(self.starts.tolist(), self.lengths.tolist()))
        ]


def episode_index(dataset: OfflineDataset) -> EpisodeIndex:
    """Cut ``dataset`` into episodes (see the module docstring)."""
    n = len(dataset)
    stops = episode_stops(dataset)
    starts = np.concatenate([[0], stops[:-1]]).astype(np.int64)
    lengths = (stops - starts).astype(np.int64)
    row_end = np.repeat(stops, lengths).astype(np.int64)
    row_step = (np.arange(n) - np.repeat(starts, lengths)).astype(np.int64)
    return EpisodeIndex(starts=starts, lengths=lengths, row_step=row_step, row_end=row_end)


def check_episodes(dataset: OfflineDataset, episodes: EpisodeIndex, *, segment_length: int, max_ep_len: int) -> None:
    """Refuse a dataset whose episodes cannot give ``segment_length``-step segments, or that holds an episode longer
    than the timestep embedding (``max_ep_len``): usually a file whose episode ends are not marked.

    Raises:
        OPPODataError: one line naming the fix.
    """
    longest = int(episodes.lengths.max())
    if longest < segment_length:
        raise OPPODataError(
            f"Dataset {dataset.name!r}: OPPO compares segments of {segment_length} steps, but its longest episode has "
            f"{longest} (episodes end at terminals, timeouts and breaks between next_observations and the next row). "
            f"Pass segment_length <= {longest} (-params segment_length:{longest}) or a dataset with longer episodes."
        )
    if longest > max_ep_len:
        raise OPPODataError(
            f"Dataset {dataset.name!r} has an episode of {longest} steps, more than max_ep_len={max_ep_len}, the "
            "timestep embedding's size: are its episode ends marked (terminals/timeouts)? Mark them, or pass "
            f"max_ep_len >= {longest} (-params max_ep_len:{longest})."
        )


@dataclass(frozen=True)
class Batch:
    """Sequences of dataset steps, as the networks take them (left-padded, ``mask`` 0 on padding)."""

    observations: th.Tensor
    """(B, T, obs_dim) standardised observations."""
    actions: th.Tensor
    """(B, T, act_dim) actions scaled to [-1, 1]."""
    timesteps: th.Tensor
    """(B, T) step within the episode (0 on padding)."""
    mask: th.Tensor
    """(B, T) 1 for a real step, 0 for padding."""

    def __len__(self) -> int:
        return len(self.mask)


class DatasetTensors:
    """The dataset's standardised observations, scaled actions and step indices as tensors, and batches of them.

    :param observations: (N, obs_dim) standardised observations.
    :param actions: (N, act_dim) actions scaled to [-1, 1].
    :param episodes: the dataset's episodes.
    :param device: where the tensors live.
    """

    def __init__(self, observations: np.ndarray, actions: np.ndarray, episodes: EpisodeIndex, device: th.device):
        self.observations = th.as_tensor(np.asarray(observations, dtype=np.float32), device=device)
        self.actions = th.as_tensor(np.asarray(actions, dtype=np.float32), device=device)
        self.row_step = th.as_tensor(episodes.row_step, device=device)
        self.episodes = episodes
        self.device = device

    def __len__(self) -> int:
        return len(self.observations)

    def gather(self, rows: np.ndarray, mask: np.ndarray) -> Batch:
        """The steps at ``rows`` (B, T) with ``mask`` (B, T); padding gets zeros."""
        index = th.as_tensor(rows, device=self.device)
        keep = th.as_tensor(mask, dtype=th.float32, device=self.device)
        return Batch(
            observations=self.observations[index] * keep[..., None],
            actions=self.actions[index] * keep[..., None],
            timesteps=self.row_step[index] * keep.long(),
            mask=keep,
        )

    def windows(self, starts: np.ndarray, context_length: int) -> Batch:
        """From each start row, the next ``context_length`` steps of its episode; a window that reaches the
        episode's end is shorter and padded on the left (the authors' ``get_batch``)."""
        starts = np.asarray(starts, dtype=np.int64)
        length = np.minimum(self.episodes.row_end[starts] - starts, context_length)
        offset = np.arange(context_length)[None, :] - (context_length - length)[:, None]
        mask = offset >= 0
        return self.gather(starts[:, None] + np.maximum(offset, 0), mask)

    def segments(self, starts: np.ndarray, segment_length: int) -> Batch:
        """Whole segments of ``segment_length`` steps from each start row (no padding)."""
        starts = np.asarray(starts, dtype=np.int64)
        rows = starts[:, None] + np.arange(segment_length)[None, :]
        return self.gather(rows, np.ones_like(rows, dtype=bool))


def sample_windows(data: DatasetTensors, batch_size: int, context_length: int) -> Batch:
    """``batch_size`` windows from rows drawn uniformly over the dataset with NumPy's global generator (SB3's
    replay buffers sample the same way, so a checkpoint's saved generator state resumes the same batches)."""
    return data.windows(np.random.randint(0, len(data), size=batch_size), context_length)


@dataclass(frozen=True)
class LabelledPairs:
    """Labelled pairs of dataset segments, by their first rows."""

    rows: np.ndarray
    """(n, 2) int64: the first dataset row of each pair's two segments."""
    labels: np.ndarray
    """(n,) P(first segment preferred): 1, 0, or 0.5 for equal true returns."""
    segment_length: int
    comparisons_used: int
    """Queries put to the rater (every pair, ties included)."""

    @property
    def decided(self) -> np.ndarray:
        """(m, 2) rows of (preferred, other) for the pairs that do not tie: the triplet loss's pairs."""
        decided = self.labels != 0.5
        rows, first_wins = self.rows[decided], self.labels[decided] > 0.5
        return np.where(first_wins[:, None], rows, rows[:, ::-1])

    @property
    def n_tied(self) -> int:
        return int(np.sum(self.labels == 0.5))

    def digest(self) -> str:
        """A short SHA-256 of the rows and labels: two runs with one digest trained on the same labels."""
        hasher = hashlib.sha256()
        hasher.update(np.ascontiguousarray(self.rows, dtype=np.int64).tobytes())
        hasher.update(np.ascontiguousarray(self.labels, dtype=np.float64).tobytes())
        hasher.update(str(self.segment_length).encode())
        return hasher.hexdigest()[:16]

    def queue(self, dataset: OfflineDataset, episodes: EpisodeIndex) -> ComparisonQueue:
        """The pairs as a :class:`~rl.preferences.ComparisonQueue` of the dataset's segments (for a reward model, or
        to save with ``queue.save``), ``comparisons_used`` included."""
        trajectories = episodes.trajectories(dataset)
        episode_of_row = np.searchsorted(episodes.starts, self.rows, side="right") - 1
        queue = ComparisonQueue()
        for (row_a, row_b), (ep_a, ep_b), label in zip(self.rows.tolist(), episode_of_row.tolist(), self.labels):
            a = trajectories[ep_a].segment(row_a - int(episodes.starts[ep_a]), self.segment_length)
            b = trajectories[ep_b].segment(row_b - int(episodes.starts[ep_b]), self.segment_length)
            queue.add(a, b, float(label))
        queue.count(self.comparisons_used)
        return queue


def scripted_comparisons(
    dataset: OfflineDataset, episodes: EpisodeIndex, *, n_pairs: int, segment_length: int, seed: int | None
) -> LabelledPairs:
    """``n_pairs`` pairs of ``segment_length``-step segments, labelled by the larger true return (ties 0.5).

    Segments are drawn uniformly over every window of that length in the dataset's episodes, with replacement, by
    ``np.random.default_rng(seed)``; pairs are consecutive draws. The rater is the preference module's
    deterministic Bradley-Terry rater, and the comparisons go through a :class:`~rl.preferences.ComparisonQueue`,
    whose ``comparisons_used`` is what the run reports.
    """
    rng = np.random.default_rng(seed)
    trajectories = episodes.trajectories(dataset)
    segments = sample_segments(trajectories, segment_length, 2 * n_pairs, rng)
    queue = ComparisonQueue()
    labels = queue.compare_pairs(
        BradleyTerryRater(temperature=0.0), list(zip(segments[0::2], segments[1::2])), rng, store=False
    )
    rows = np.array([int(episodes.starts[s.episode_id]) + s.start for s in segments], dtype=np.int64)
    return LabelledPairs(
        rows=rows.reshape(-1, 2), labels=labels, segment_length=segment_length,
        comparisons_used=queue.comparisons_used,
    )
