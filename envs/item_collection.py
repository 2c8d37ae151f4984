"""SubPO's item collection task: pick up items of several types, each type worth at most its cap.

From "Submodular Reinforcement Learning" (Prajapat, Mutny, Zeilinger, Krause; ICLR 2024; code
github.com/manish-pra/non-additive-RL, task "steiner_covering"). Items of T types lie on distinct cells of
the grid; visiting a cell collects its item, and a type's items are worth one each up to the type's cap:

    F(V) = sum over types k of min(cap_k, ``|items of type k at cells in V|``),

a sum of concave functions of modular counts, hence monotone and submodular. The marginal gain of a cell
is 1 when it holds an uncollected item of a type still under its cap, else 0.

Task facts follow the authors' code (``utils/environment.py``: ``generate_Gi_Di``,
``ret_stiener_covering``; ``params/steiner/subrl_*.yaml``): a 7x15 grid (7 rows, 15 columns), horizon 40
states, start node 34 = (2, 4), 6 item types ("apple", "oranges", "watermelon", "banana", "pineapple",
"strawberries") with 18, 14, 13, 16, 18, 14 items (the authors' Gmax) and caps 3, 2, 3, 4, 6, 3 (their
Dmin), the 93 items on distinct cells of a random permutation; items are collected at visited cells only
(no disc footprint). Deviations:

- The authors pair item names with counts and caps by iterating a Python set of names, whose order (and
  so which type gets which count and cap) changes with the interpreter's string hashing; here type k
  takes the k-th count and cap.
- Their 10 layouts are pickled (``environments/steiner_covering/env_*.pkl``); here a layout is drawn from
  ``seed`` with numpy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from envs.submodular import SubmodularGridEnv, _check_shape

ITEM_GRID = (7, 15)
"""The authors' grid (rows, columns) for this task."""
ITEM_START = (2, 4)
"""The authors' start node 34 on the 15-column grid."""
ITEM_HORIZON = 40
"""States per trajectory (params/steiner/subrl_*.yaml)."""
ITEM_TYPES = ("apple", "oranges", "watermelon", "banana", "pineapple", "strawberries")
"""The authors' item names, for labels only."""
ITEM_COUNTS = (18, 14, 13, 16, 18, 14)
"""Items of each type on the grid (the authors' Gmax)."""
ITEM_CAPS = (3, 2, 3, 4, 6, 3)
"""Most items of each type that count (the authors' Dmin); the best F is their sum, 21."""


def item_layout(shape: Sequence[int] = ITEM_GRID, counts: Sequence[int] = ITEM_COUNTS, *, seed: int = 0) -> np.ndarray:
    """Places ``counts[k]`` items of type k on distinct random cells, as the authors' ``generate_Gi_Di``.

    Args:
        shape: (rows, columns).
        counts: items of each type, non-negative, summing to at most rows * columns.
        seed: seed of the placement; the same seed gives the same layout.

    Returns:
        int64 array of shape ``shape``: the item type at each cell, -1 where there is none.
    """
    rows, cols = _check_shape(shape)
    counts = [int(c) for c in counts]
    if not counts or min(counts) < 0:
        raise ValueError(f"counts must be a non-empty list of non-negative item counts, got {counts}")
    if sum(counts) > rows * cols:
        raise ValueError(
            f"counts place {sum(counts)} items but the {(rows, cols)} grid has {rows * cols} cells "
            "(one item per cell): lower the counts or enlarge the grid"
        )
    cells = np.random.default_rng(seed).permutation(rows * cols)[: sum(counts)]
    layout = np.full(rows * cols, -1, dtype=np.int64)
    layout[cells] = np.repeat(np.arange(len(counts)), counts)
    return layout.reshape(rows, cols)


class CappedItemCollection:
    """F(V) = sum over types k of min(cap_k, number of items of type k at the cells of V).

    Monotone and submodular (each term is a concave function of a count). States are flat cell indices
    ``row * columns + column``; repeated states count once (an item is collected once).

    :param items: the item type at each cell, shape (rows, columns), -1 for none (see ``item_layout``).
    :param caps: cap of each type, non-negative, one per type (``len(caps)`` > every type in ``items``).
    """

    def __init__(self, items: np.ndarray, caps: Sequence[int]) -> None:
        items = np.asarray(items)
        if items.ndim != 2 or not np.issubdtype(items.dtype, np.integer):
            raise ValueError(
                f"items must be a 2-d integer (rows, columns) array of types, got {items.dtype} "
                f"array of shape {items.shape}"
            )
        shape = _check_shape(items.shape)
        caps = np.asarray(caps, dtype=np.int64).reshape(-1)
        if caps.size == 0 or np.any(caps < 0):
            raise ValueError(f"caps must be a non-empty list of non-negative integers, got {caps.tolist()}")
        if items.min() < -1 or items.max() >= caps.size:
            raise ValueError(
                f"items must hold -1 (no item) or a type in [0, {caps.size}) (one cap per type), got values "
                f"in [{items.min()}, {items.max()}]"
            )
        self.items = items.astype(np.int64)
        self.caps = caps
        self.shape: tuple[int, int] = shape
        self.n_states = items.size
        self._flat = self.items.ravel()

    def index(self, row: int, col: int) -> int:
        """Flat index of cell (row, col)."""
        return int(row) * self.shape[1] + int(col)

    def counts(self, states: Sequence[int] | np.ndarray) -> np.ndarray:
        """Items of each type at the distinct cells of ``states``, shape (n_types,)."""
        states = np.unique(np.asarray(states, dtype=np.int64).reshape(-1))
        if states.size and (states[0] < 0 or states[-1] >= self.n_states):
            raise ValueError(f"states must be flat cell indices in [0, {self.n_states}), got {states}")
        types = self._flat[states]
        return np.bincount(types[types >= 0], minlength=self.caps.size)

    def value(self, states: Sequence[int] | np.ndarray) -> float:
        """F(states); repeated states count once."""
        return float(np.minimum(self.caps, self.counts(states)).sum())

    def marginal_gain(self, state: int, history: Sequence[int] | np.ndarray) -> float:
        """F(state | history): 1 for a new item of a type under its cap, else 0."""
        state = int(state)
        if not 0 <= state < self.n_states:
            raise ValueError(f"state must be a flat cell index in [0, {self.n_states}), got {state}")
        kind = self._flat[state]
        if kind < 0 or np.any(np.asarray(history, dtype=np.int64) == state):
            return 0.0
        return float(self.counts(history)[kind] < self.caps[kind])


class ItemCollectionEnv(SubmodularGridEnv):
    """SubPO's item collection task: walk the grid and collect items, each type up to its cap.

    ``SubmodularGridEnv`` over ``CappedItemCollection`` on ``item_layout``: each step's reward is 1 when
    the new cell holds an item of a type still under its cap, else 0; the first step also pays F({s_0}),
    so the return is F(tau). ``render`` draws the item cells light and the empty cells dark.

    :param grid: (rows, columns).
    :param counts: items of each type.
    :param caps: cap of each type (same length as ``counts``).
    :param horizon: states per trajectory (the authors' 40).
    :param observation: "markovian" or "history" (see ``SubmodularGridEnv``).
    :param start: (row, column) start cell; None: the authors' node 34 = (2, 4), clipped to the grid.
    :param seed: seed of the item layout (fixed for the env's lifetime).
    :param render_mode: None or "rgb_array".
    """

    def __init__(
        self,
        *,
        grid: Sequence[int] = ITEM_GRID,
        counts: Sequence[int] = ITEM_COUNTS,
        caps: Sequence[int] = ITEM_CAPS,
        horizon: int = ITEM_HORIZON,
        observation: str = "markovian",
        start: Sequence[int] | None = None,
        seed: int = 0,
        render_mode: str | None = None,
    ) -> None:
        shape = _check_shape(grid)
        if len(counts) != len(caps):
            raise ValueError(
                f"counts and caps need one entry per item type, got {len(counts)} counts and {len(caps)} caps"
            )
        collection = CappedItemCollection(item_layout(shape, counts, seed=seed), caps)
        if start is None:
            start = (min(ITEM_START[0], shape[0] - 1), min(ITEM_START[1], shape[1] - 1))
        super().__init__(collection, horizon=horizon, observation=observation, start=start, render_mode=render_mode)
        self.F: CappedItemCollection = collection

    def _background(self) -> np.ndarray:
        return (self.F.items >= 0).astype(np.float64)
