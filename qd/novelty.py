"""k-nearest-neighbour novelty over an archive of descriptors (pyribs's ProximityArchive as the store).

Novelty of a descriptor is the mean distance to its k nearest neighbours in the reference set archive +
population, the descriptor itself excluded (SERENE ``core/evolvers/utils.py:novelty`` sorts the distances and
skips position 0, the element itself). k = 15 (``novelty_neighs`` in SERENE's ``parameters.py``; TAXONS paper).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ribs.archives import ProximityArchive
from scipy.spatial.distance import cdist

K_NEIGHBORS = 15


def knn_novelty(descriptors: np.ndarray, reference: np.ndarray, *, k: int, exclude_self: bool) -> np.ndarray:
    """Mean Euclidean distance of each descriptor to its ``k`` nearest rows of ``reference``.

    Args:
        descriptors: (n, d) descriptors to score.
        reference: (m, d) reference set.
        k: Number of neighbours; fewer are used when the reference set is smaller.
        exclude_self: Whether ``descriptors[i]`` is ``reference[i]`` and must not count as its own neighbour.

    Returns:
        (n,) novelty; zeros when the reference set has no other element.
    """
    descriptors = np.asarray(descriptors, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if len(descriptors) == 0:
        return np.zeros(0)
    distances = cdist(descriptors, reference)
    if exclude_self:
        distances[np.arange(len(descriptors)), np.arange(len(descriptors))] = np.inf
    available = reference.shape[0] - (1 if exclude_self else 0)
    k = min(k, available)
    if k <= 0:
        return np.zeros(len(descriptors))
    nearest = np.partition(distances, k - 1, axis=1)[:, :k]
    return nearest.mean(axis=1)


class NoveltyArchive:
    """The novelty archive of NS / TAXONS / SERENE: genomes and descriptors that novelty is measured against.

    Entries are chosen by the algorithm (e.g. 5 per generation) and always inserted: the wrapped
    ``ProximityArchive`` has ``novelty_threshold=0``, so its own threshold rule never rejects one.

    Args:
        solution_dim: Genome length.
        descriptor_dim: Behaviour-descriptor length.
        k_neighbors: k of the k-NN novelty (15, from the authors' code).
        extra_fields: Extra per-entry fields for pyribs, e.g. ``{"reward": ((), np.float64)}``.
        seed: Seed of the pyribs archive.
    """

    def __init__(self, solution_dim: int, descriptor_dim: int, *, k_neighbors: int = K_NEIGHBORS,
                 extra_fields: dict[str, Any] | None = None, seed: int | None = None) -> None:
        if k_neighbors < 1:
            raise ValueError(f"k_neighbors must be >= 1, got {k_neighbors}.")
        self.k_neighbors = int(k_neighbors)
        self.archive = ProximityArchive(
            solution_dim=solution_dim, measure_dim=descriptor_dim, k_neighbors=self.k_neighbors,
            novelty_threshold=0.0, extra_fields=extra_fields, seed=seed, dtype=np.float64,
        )

    def __len__(self) -> int:
        return len(self.archive)

    @property
    def descriptors(self) -> np.ndarray:
        """(len, descriptor_dim) descriptors of the archived entries, in insertion order."""
        return np.asarray(self.archive.data("measures"), dtype=np.float64).reshape(-1, self.archive.measure_dim)

    @property
    def genomes(self) -> np.ndarray:
        """(len, solution_dim) genomes of the archived entries, in insertion order."""
        if len(self) == 0:
            return np.empty((0, self.archive.solution_dim), dtype=np.float64)
        return np.asarray(self.archive.data("solution"), dtype=np.float64).reshape(len(self), -1)

    def novelty(self, descriptors: np.ndarray, *, population: np.ndarray | None = None) -> np.ndarray:
        """Novelty of each descriptor against archive + the scored batch + ``population``, itself excluded.

        As in SERENE's NS, pass parents and offspring together as ``descriptors``: each is scored against
        the archive and all the others. ``population`` adds reference descriptors that are not scored
        themselves (e.g. the parents when only offspring are scored).

        Args:
            descriptors: (n, d) descriptors to score.
            population: (p, d) extra reference descriptors, or None.

        Returns:
            (n,) novelty values.

        Raises:
            ValueError: when the widths of ``descriptors``, ``population`` and the archive differ.
        """
        descriptors = np.asarray(descriptors, dtype=np.float64).reshape(len(descriptors), -1)
        parts = [descriptors]
        if population is not None:
            parts.append(np.asarray(population, dtype=np.float64).reshape(len(population), -1))
        parts.append(self.descriptors)
        widths = {part.shape[1] for part in parts if len(part)}
        if len(widths) > 1 or (widths and widths != {self.archive.measure_dim}):
            raise ValueError(f"descriptors and population must have width {self.archive.measure_dim}, got "
                             f"{descriptors.shape} and {None if population is None else np.shape(population)}.")
        return knn_novelty(descriptors, np.concatenate(parts), k=self.k_neighbors, exclude_self=True)

    def add(self, genomes: np.ndarray, descriptors: np.ndarray, **fields: np.ndarray) -> None:
        """Insert every given entry (genomes (n, solution_dim), descriptors (n, d), extra fields (n, ...))."""
        genomes = np.atleast_2d(np.asarray(genomes, dtype=np.float64))
        descriptors = np.atleast_2d(np.asarray(descriptors, dtype=np.float64))
        if len(genomes) != len(descriptors):
            raise ValueError(f"genomes and descriptors must have the same length, got {len(genomes)} and "
                             f"{len(descriptors)}.")
        if len(genomes):
            self.archive.add(genomes, None, descriptors, **fields)
