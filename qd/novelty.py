"""k-nearest-neighbour novelty, the one novelty computation of every QD algorithm here, and the novelty archive.

Novelty follows the authors' ``novelty`` helper (GPaolo/SERENE and GPaolo/STAX ``core/evolvers/utils.py``): the
distances from a descriptor to every element of a reference set are sorted, the nearest is dropped and the
next k = 15 are averaged (``np.mean(distances[idx[1:neighs + 1]])``; k is ``novelty_neighs`` in ``parameters.py``
and the TAXONS paper's 15). Where the scored descriptor belongs to the reference set (the NS population and its
offspring) the dropped nearest is the descriptor itself; where it does not (a SERENE emitter's offspring) the
authors drop the nearest all the same, and so does :func:`knn_novelty`.

Why not pyribs: ribs 0.12's ``ProximityArchive.compute_novelty(measures)`` averages the k nearest *archived*
entries, with neither the population nor the offspring in the reference set and without dropping the nearest;
the authors' reference set is population + offspring + archive (+ SERENE's reward archive), so pyribs's k-NN
cannot give their novelty. Keeping a ``ProximityArchive`` only as a container would rebuild a k-d tree on every
insertion that nothing queries, so :class:`NoveltyArchive` is a plain array store.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist

K_NEIGHBORS = 15


def knn_novelty(descriptors: np.ndarray, reference: np.ndarray, *, k: int) -> np.ndarray:
    """The authors' novelty: mean Euclidean distance to the ``k`` nearest rows of ``reference`` after the nearest.

    Args:
        descriptors: (n, d) descriptors to score.
        reference: (m, d) reference set; when it holds the scored descriptor itself, the dropped nearest is that
            descriptor (distance 0).
        k: Number of neighbours averaged; fewer (the m - 1 available) when the reference set is smaller.

    Returns:
        (n,) novelty; zeros when the reference set has fewer than two elements (the authors' mean of an empty
        slice would be nan).

    Raises:
        ValueError: for ``k < 1`` or descriptors and reference of different widths.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}.")
    descriptors = np.asarray(descriptors, dtype=np.float64)
    descriptors = descriptors.reshape(len(descriptors), -1)
    reference = np.asarray(reference, dtype=np.float64)
    reference = reference.reshape(len(reference), -1)
    if len(descriptors) == 0 or len(reference) < 2:
        return np.zeros(len(descriptors))
    if descriptors.shape[1] != reference.shape[1]:
        raise ValueError(f"descriptors and reference must have the same width, got {descriptors.shape} and "
                         f"{reference.shape}.")
    distances = cdist(descriptors, reference)
    count = min(k, len(reference) - 1)
    nearest = np.partition(distances, count, axis=1)[:, :count + 1]  # the count + 1 smallest, unordered
    return (nearest.sum(axis=1) - nearest.min(axis=1)) / count


class NoveltyArchive:
    """The novelty archive of NS / TAXONS / SERENE / STAX: genomes and descriptors novelty is measured against.

    Entries are chosen by the algorithm (e.g. the 5 most novel offspring per generation) and always inserted,
    in order. The descriptors can be replaced (:meth:`relabel`) when the behaviour space changes, as after
    TAXONS and STAX retrain their autoencoder.

    Args:
        solution_dim: Genome length.
        descriptor_dim: Behaviour-descriptor length.
        k_neighbors: k of the k-NN novelty (15, from the authors' code).

    Raises:
        ValueError: for ``k_neighbors < 1`` or a non-positive dimension.
    """

    def __init__(self, solution_dim: int, descriptor_dim: int, *, k_neighbors: int = K_NEIGHBORS) -> None:
        if k_neighbors < 1:
            raise ValueError(f"k_neighbors must be >= 1, got {k_neighbors}.")
        if solution_dim < 1 or descriptor_dim < 1:
            raise ValueError(f"solution_dim and descriptor_dim must be >= 1, got {solution_dim} and {descriptor_dim}.")
        self.k_neighbors = int(k_neighbors)
        self._genomes = np.empty((0, int(solution_dim)))
        self._descriptors = np.empty((0, int(descriptor_dim)))

    def __len__(self) -> int:
        return len(self._genomes)

    @property
    def solution_dim(self) -> int:
        """Genome length."""
        return self._genomes.shape[1]

    @property
    def descriptor_dim(self) -> int:
        """Descriptor length."""
        return self._descriptors.shape[1]

    @property
    def descriptors(self) -> np.ndarray:
        """(len, descriptor_dim) descriptors of the archived entries, in insertion order (a copy)."""
        return self._descriptors.copy()

    @property
    def genomes(self) -> np.ndarray:
        """(len, solution_dim) genomes of the archived entries, in insertion order (a copy)."""
        return self._genomes.copy()

    def novelty(self, descriptors: np.ndarray, *, extra: np.ndarray | None = None) -> np.ndarray:
        """Novelty (:func:`knn_novelty`) of each descriptor against the scored batch + ``extra`` + the archive.

        As in the authors' ``evaluate_performances``, pass parents and offspring together as ``descriptors``:
        each is scored against all of them (itself being the dropped nearest) and the archive. ``extra`` adds
        reference descriptors that are not scored themselves (SERENE's reward archive).

        Args:
            descriptors: (n, d) descriptors to score.
            extra: (p, d) extra reference descriptors, or None.

        Returns:
            (n,) novelty values.

        Raises:
            ValueError: when the widths of ``descriptors``, ``extra`` and the archive differ.
        """
        descriptors = np.asarray(descriptors, dtype=np.float64).reshape(len(descriptors), -1)
        parts = [descriptors, self._descriptors]
        if extra is not None and len(extra):
            parts.insert(1, np.asarray(extra, dtype=np.float64).reshape(len(extra), -1))
        widths = {part.shape[1] for part in parts if len(part)}
        if widths - {self.descriptor_dim}:
            raise ValueError(f"descriptors and extra must have width {self.descriptor_dim}, got "
                             f"{descriptors.shape} and {None if extra is None else np.shape(extra)}.")
        return knn_novelty(descriptors, np.concatenate(parts), k=self.k_neighbors)

    def add(self, genomes: np.ndarray, descriptors: np.ndarray) -> None:
        """Insert every given entry: genomes (n, solution_dim), descriptors (n, descriptor_dim).

        Raises:
            ValueError: for mismatched lengths or widths.
        """
        genomes = np.atleast_2d(np.asarray(genomes, dtype=np.float64))
        descriptors = np.atleast_2d(np.asarray(descriptors, dtype=np.float64))
        if len(genomes) != len(descriptors):
            raise ValueError(f"genomes and descriptors must have the same length, got {len(genomes)} and "
                             f"{len(descriptors)}.")
        if genomes.shape[1] != self.solution_dim or descriptors.shape[1] != self.descriptor_dim:
            raise ValueError(f"need genomes of width {self.solution_dim} and descriptors of width "
                             f"{self.descriptor_dim}, got {genomes.shape} and {descriptors.shape}.")
        self._genomes = np.concatenate([self._genomes, genomes])
        self._descriptors = np.concatenate([self._descriptors, descriptors])

    def relabel(self, descriptors: np.ndarray) -> None:
        """Replace every entry's descriptor (same order), e.g. by the latents of a retrained autoencoder.

        Raises:
            ValueError: when ``descriptors`` does not have one row per archived entry.
        """
        descriptors = np.asarray(descriptors, dtype=np.float64)
        if descriptors.ndim != 2 or len(descriptors) != len(self):
            raise ValueError(f"need {len(self)} descriptors (one per entry), got shape {descriptors.shape}.")
        self._descriptors = descriptors.copy()
