"""Submodular RL tasks: grid-world coverage whose reward is a set function of the visited states.

From "Submodular Reinforcement Learning" (Prajapat, Mutny, Zeilinger, Krause; ICLR 2024,
https://arxiv.org/abs/2307.13372; code github.com/manish-pra/non-additive-RL). The objective of an episode
is F(tau) for a monotone submodular F over the set of visited states; an agent sees the marginal gains
F(s_{h+1} | tau_{0:h}) = F(tau_{0:h} + s_{h+1}) - F(tau_{0:h}) as rewards, so the return is F(tau).

Parts:

- ``WeightedCoverage``: F(V) = sum of the weights of the cells within distance ``radius`` of some state in V.
- ``weight_map``: the constant, bimodal and GP-sampled weight maps of the paper's coverage tasks.
- ``CoverageGridEnv``: the Gymnasium env, with a Markovian or a history-augmented observation.
- ``greedy_trajectory``: the trajectory that greedily maximises the marginal gain over feasible moves,
  the reference value the benchmark reports.

Task facts follow the authors' code (``utils/environment.py``, ``main.py``, ``params/*/subrl_*.yaml``):
30x30 grid, five actions (stay, right, up, left, down; moves off the grid stay put), start cell 34 = (1, 4),
horizon 80 for constant weights and 40 for bimodal and GP weights, the horizon counting the states of a
trajectory (so an episode has ``horizon - 1`` steps). Deviations are stated on ``WeightedCoverage`` and
``CoverageGridEnv``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

GRID_SHAPE = (30, 30)
"""The paper's grid (rows, columns)."""
START_CELL = (1, 4)
"""The authors' start state, node 34 of the 30x30 grid."""
HORIZONS = {"constant": 80, "bimodal": 40, "gp": 40}
"""States per trajectory in the authors' configs (params/coverage, params/bimodal, params/GP)."""

ACTION_MOVES = np.array([(0, 0), (0, 1), (1, 0), (0, -1), (-1, 0)])
"""(row, column) change of each action: 0 stay, 1 right, 2 up (row + 1), 3 left, 4 down (row - 1)."""

# GP weight map of the authors (ScaleKernel(Matern 5/2) with lengthscale 1, noise 1e-3, conditioned on a
# zero observation at a random point of [0, 10)^2, evaluated on cell coordinates start 1, step 0.1).
GP_LENGTHSCALE = 1.0
GP_OUTPUTSCALE = float(np.log(2.0))  # gpytorch's ScaleKernel default, softplus(0)
GP_NOISE = 1e-3
GP_STEP = 0.1
GP_OFFSET = 1.0
GP_SHIFT = 3.0


def _check_shape(shape: Sequence[int]) -> tuple[int, int]:
    if len(shape) != 2 or min(int(shape[0]), int(shape[1])) < 1:
        raise ValueError(f"grid must be (rows, columns) with positive entries, got {tuple(shape)!r}")
    return int(shape[0]), int(shape[1])


def _matern52(dist: np.ndarray, lengthscale: float, outputscale: float) -> np.ndarray:
    scaled = np.sqrt(5.0) * dist / lengthscale
    return outputscale * (1.0 + scaled + scaled**2 / 3.0) * np.exp(-scaled)


def gp_weights(shape: Sequence[int] = GRID_SHAPE, *, seed: int = 0) -> np.ndarray:
    """A GP sample on the grid, shifted non-negative as the authors do.

    The sample is drawn from the GP (Matern 5/2, lengthscale 1, output scale ln 2) conditioned on one zero
    observation (noise 1e-3) at a uniformly random point of [0, 10)^2; cell (i, j) sits at
    (1 + 0.1 i, 1 + 0.1 j). The authors add 3 when the minimum is above -3; otherwise (rare) this subtracts
    the minimum, so weights are always non-negative.

    Args:
        shape: (rows, columns).
        seed: seed of the sample; the same seed gives the same map.
    """
    rows, cols = _check_shape(shape)
    rng = np.random.default_rng(seed)
    ii, jj = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    coords = GP_OFFSET + GP_STEP * np.stack([ii.ravel(), jj.ravel()], axis=1).astype(np.float64)
    anchor = rng.uniform(0.0, 10.0, size=(1, 2))
    k_xx = _matern52(np.linalg.norm(coords[:, None] - coords[None], axis=-1), GP_LENGTHSCALE, GP_OUTPUTSCALE)
    k_xa = _matern52(np.linalg.norm(coords - anchor, axis=-1), GP_LENGTHSCALE, GP_OUTPUTSCALE)
    cov = k_xx - np.outer(k_xa, k_xa) / (GP_OUTPUTSCALE + GP_NOISE)
    chol = np.linalg.cholesky(cov + 1e-6 * np.eye(len(coords)))
    sample = chol @ rng.standard_normal(len(coords))
    sample = sample + GP_SHIFT if sample.min() > -GP_SHIFT else sample - sample.min()
    return sample.reshape(rows, cols)


def weight_map(kind: str, shape: Sequence[int] = GRID_SHAPE, *, seed: int = 0) -> np.ndarray:
    """The weight of each grid cell for the coverage tasks.

    Args:
        kind: "constant" (all ones), "bimodal" (the authors' sigmoid(x * y) on [-1, 1]^2, high in two
            opposite corners) or "gp" (``gp_weights``).
        shape: (rows, columns).
        seed: seed of the GP sample (unused by the other kinds).

    Returns:
        float64 array of shape ``shape``.
    """
    rows, cols = _check_shape(shape)
    if kind == "constant":
        return np.ones((rows, cols))
    if kind == "bimodal":
        x, y = np.meshgrid(np.linspace(-1.0, 1.0, rows), np.linspace(-1.0, 1.0, cols), indexing="ij")
        return 1.0 / (1.0 + np.exp(-x * y))
    if kind == "gp":
        return gp_weights((rows, cols), seed=seed)
    raise ValueError(f"weights must be 'constant', 'bimodal' or 'gp', got {kind!r}")


class WeightedCoverage:
    """Weighted coverage F(V) = sum of w(c) over cells c within Euclidean distance ``radius`` of V.

    F is monotone and submodular for non-negative weights. States are flat cell indices
    ``row * columns + column`` (``index`` converts). Deviation: the authors' "small disc" is the 2x2 block
    {s, s + right, s + up, s + up-right} ("large": 3x3); here the footprint is a true disc of cells.

    :param weights: non-negative weight of each cell, shape (rows, columns).
    :param radius: disc radius in cells (0: a state covers only itself).
    """

    def __init__(self, weights: np.ndarray, *, radius: float = 1.0) -> None:
        weights = np.asarray(weights, dtype=np.float64)
        if weights.ndim != 2:
            raise ValueError(f"weights must be a 2-d (rows, columns) array, got shape {weights.shape}")
        if np.any(weights < 0) or not np.all(np.isfinite(weights)):
            raise ValueError("weights must be finite and non-negative (F is then monotone submodular)")
        if radius < 0:
            raise ValueError(f"radius must be >= 0, got {radius}")
        self.weights = weights
        self.shape: tuple[int, int] = weights.shape
        self.radius = float(radius)
        self.n_states = weights.size
        ii, jj = np.meshgrid(np.arange(self.shape[0]), np.arange(self.shape[1]), indexing="ij")
        cells = np.stack([ii.ravel(), jj.ravel()], axis=1)
        sq_dist = ((cells[:, None] - cells[None]) ** 2).sum(-1)
        self.cover = sq_dist <= self.radius**2 + 1e-9
        """cover[s, c]: whether state s covers cell c, shape (n_states, n_states)."""
        self._w = weights.ravel()

    def index(self, row: int, col: int) -> int:
        """Flat index of cell (row, col)."""
        return int(row) * self.shape[1] + int(col)

    def covered(self, states: Sequence[int] | np.ndarray) -> np.ndarray:
        """Boolean mask (n_states,) of the cells covered by ``states``."""
        states = np.asarray(states, dtype=np.int64).reshape(-1)
        if states.size == 0:
            return np.zeros(self.n_states, dtype=bool)
        return self.cover[states].any(axis=0)

    def value(self, states: Sequence[int] | np.ndarray) -> float:
        """F(states); repeated states count once."""
        return float(self._w @ self.covered(states))

    def marginal_gain(self, state: int, history: Sequence[int] | np.ndarray) -> float:
        """F(state | history) = F(history + state) - F(history)."""
        return float(self._w @ (self.cover[int(state)] & ~self.covered(history)))

    def gains(self, covered: np.ndarray) -> np.ndarray:
        """Marginal gain of every state given the covered-cell mask ``covered``, shape (n_states,)."""
        return self.cover @ (self._w * ~np.asarray(covered, dtype=bool))


def step_cell(row: int, col: int, action: int, shape: Sequence[int]) -> tuple[int, int]:
    """The cell reached by ``action`` from (row, col); a move off the grid stays put (as the authors)."""
    new_row, new_col = row + int(ACTION_MOVES[action][0]), col + int(ACTION_MOVES[action][1])
    if 0 <= new_row < shape[0] and 0 <= new_col < shape[1]:
        return new_row, new_col
    return row, col


def greedy_trajectory(
    coverage: WeightedCoverage, horizon: int, start: Sequence[int] = START_CELL
) -> tuple[float, list[int]]:
    """The greedy trajectory: each step takes the feasible move of largest marginal gain.

    Ties go to the lowest action number (stay first). This is the greedy reference the benchmark reports
    beside the learned policies' F(tau).

    Args:
        coverage: the set function.
        horizon: states in the trajectory (start included), so ``horizon - 1`` moves.
        start: (row, column) of the first state.

    Returns:
        (F of the trajectory, the list of its flat state indices).
    """
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    row, col = int(start[0]), int(start[1])
    trajectory = [coverage.index(row, col)]
    covered = coverage.covered(trajectory)
    for _ in range(horizon - 1):
        gains = coverage.gains(covered)
        options = [step_cell(row, col, a, coverage.shape) for a in range(len(ACTION_MOVES))]
        best = max(range(len(options)), key=lambda a: (gains[coverage.index(*options[a])], -a))
        row, col = options[best]
        trajectory.append(coverage.index(row, col))
        covered |= coverage.cover[trajectory[-1]]
    return coverage.value(trajectory), trajectory


def greedy_value(coverage: WeightedCoverage, horizon: int, start: Sequence[int] = START_CELL) -> float:
    """F of ``greedy_trajectory``."""
    return greedy_trajectory(coverage, horizon, start)[0]


class CoverageGridEnv(gym.Env):
    """Grid-world coverage with a submodular reward (SubPO, Prajapat et al., ICLR 2024).

    The agent starts at ``start`` and moves with five actions (0 stay, 1 right, 2 up = row + 1, 3 left,
    4 down = row - 1; off-grid moves stay put). Step h's reward is the marginal gain
    F(s_{h+1} | s_0..s_h) of ``WeightedCoverage``; the first step also pays F({s_0}), as in the authors'
    code, so an episode's return is F(tau) of its whole trajectory. Episodes are truncated (never
    terminated) after ``horizon - 1`` steps, i.e. ``horizon`` states as the authors count.

    Observations (float32):

    - "markovian": (row, column, t), the authors' Markovian policy input (state, h).
    - "history": (row, column, t) followed by the flattened 0/1 map of visited cells. Deviation: the
      authors feed the list of visited state indices padded with -1; the map is the fixed-size,
      order-free equivalent that determines F.

    ``info`` carries ``F`` (value of the visited set), ``visited`` (distinct states visited) and
    ``marginal_gain`` (F(s_{h+1} | history), without the first step's F({s_0})).

    :param weights: "constant", "bimodal" or "gp" (see ``weight_map``).
    :param grid: (rows, columns).
    :param radius: disc radius in cells of the coverage footprint.
    :param horizon: states per trajectory; None: the paper's (80 constant, 40 bimodal and GP).
    :param observation: "markovian" or "history".
    :param start: (row, column) start cell; None: the authors' (1, 4), clipped to the grid.
    :param seed: seed of the GP weight map (fixed for the env's lifetime; ``reset(seed=)`` does not
        change it, the dynamics being deterministic).
    :param render_mode: None or "rgb_array".
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(
        self,
        weights: str = "constant",
        *,
        grid: Sequence[int] = GRID_SHAPE,
        radius: float = 1.0,
        horizon: int | None = None,
        observation: str = "markovian",
        start: Sequence[int] | None = None,
        seed: int = 0,
        render_mode: str | None = None,
    ) -> None:
        shape = _check_shape(grid)
        if observation not in ("markovian", "history"):
            raise ValueError(f"observation must be 'markovian' or 'history', got {observation!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        horizon = HORIZONS.get(weights, 40) if horizon is None else int(horizon)
        if horizon < 2:
            raise ValueError(f"horizon must be >= 2 (states per trajectory), got {horizon}")
        if start is None:
            start = (min(START_CELL[0], shape[0] - 1), min(START_CELL[1], shape[1] - 1))
        if not (0 <= start[0] < shape[0] and 0 <= start[1] < shape[1]):
            raise ValueError(f"start must be a cell of the {shape} grid, got {tuple(start)!r}")
        self.F = WeightedCoverage(weight_map(weights, shape, seed=seed), radius=radius)
        self.weights_kind = weights
        self.shape = shape
        self.horizon = horizon
        self.observation_mode = observation
        self.start = (int(start[0]), int(start[1]))
        self.render_mode = render_mode

        self.action_space = spaces.Discrete(len(ACTION_MOVES))
        high = np.array([shape[0] - 1, shape[1] - 1, horizon - 1], dtype=np.float32)
        if observation == "history":
            high = np.concatenate([high, np.ones(self.F.n_states, dtype=np.float32)])
        self.observation_space = spaces.Box(np.zeros_like(high), high, dtype=np.float32)

        self._pos = self.start
        self._t = 0
        self._visited = np.zeros(self.F.n_states, dtype=bool)
        self._covered = np.zeros(self.F.n_states, dtype=bool)
        self._value = 0.0

    def _state(self) -> int:
        return self.F.index(*self._pos)

    def _obs(self) -> np.ndarray:
        head = np.array([self._pos[0], self._pos[1], self._t], dtype=np.float32)
        if self.observation_mode == "markovian":
            return head
        return np.concatenate([head, self._visited.astype(np.float32)])

    def _info(self, gain: float) -> dict[str, Any]:
        return {"F": self._value, "visited": int(self._visited.sum()), "marginal_gain": gain}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._pos = self.start
        self._t = 0
        state = self._state()
        self._visited[:] = False
        self._visited[state] = True
        self._covered = self.F.cover[state].copy()
        self._value = self.F.value([state])
        return self._obs(), self._info(self._value)

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"action must be in {self.action_space}, got {action!r}")
        self._pos = step_cell(*self._pos, int(action), self.shape)
        self._t += 1
        state = self._state()
        gain = float(self.F.weights.ravel() @ (self.F.cover[state] & ~self._covered))
        reward = gain + (self._value if self._t == 1 else 0.0)
        self._visited[state] = True
        self._covered |= self.F.cover[state]
        self._value += gain
        truncated = self._t >= self.horizon - 1
        return self._obs(), reward, False, truncated, self._info(gain)

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        w = self.F.weights
        span = w.max() - w.min()
        level = (w - w.min()) / span if span > 0 else np.full_like(w, 0.5)
        img = np.repeat((40 + 160 * level)[..., None], 3, axis=-1)
        visited = self._visited.reshape(self.shape)
        covered = self._covered.reshape(self.shape)
        img[covered] = 0.5 * img[covered] + 0.5 * np.array([60.0, 200.0, 60.0])
        img[visited] = (220.0, 60.0, 60.0)
        img[self._pos] = (40.0, 80.0, 240.0)
        scale = 8
        return np.kron(img.astype(np.uint8), np.ones((scale, scale, 1), dtype=np.uint8))
