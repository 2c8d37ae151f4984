"""Submodular RL tasks: grid worlds whose reward is a set function of the visited states.

From "Submodular Reinforcement Learning" (Prajapat, Mutny, Zeilinger, Krause; ICLR 2024,
https://arxiv.org/abs/2307.13372; code github.com/manish-pra/non-additive-RL). The objective of an episode
is F(tau) for a monotone submodular F over the set of visited states; an agent sees the marginal gains
F(s_{h+1} | tau_{0:h}) = F(tau_{0:h} + s_{h+1}) - F(tau_{0:h}) as rewards, so the return is F(tau).

Parts:

- ``SetFunction``: what a task's F provides (``value``, ``marginal_gain``, ``index``, ``shape``, ``n_states``).
- ``SubmodularGridEnv``: the Gymnasium grid env over any ``SetFunction``, with a Markovian or a
  history-augmented observation. The tasks subclass it: ``CoverageGridEnv`` here,
  ``envs.experiment_design.ExperimentDesignEnv`` and ``envs.item_collection.ItemCollectionEnv``.
- ``WeightedCoverage``: F(V) = sum of the weights of the cells within distance ``radius`` of some state in V.
- ``weight_map``: the constant, bimodal and GP-sampled weight maps of the paper's coverage tasks.
- ``greedy_trajectory``: the trajectory that greedily maximises the marginal gain over feasible moves,
  the reference value the benchmark reports (for any ``SetFunction``).

Task facts follow the authors' code (``utils/environment.py``, ``main.py``, ``params/*/subrl_*.yaml``):
30x30 grid, five actions (stay, right, up, left, down; moves off the grid stay put), start cell 34 = (1, 4),
horizon 80 for constant weights and 40 for bimodal and GP weights, the horizon counting the states of a
trajectory (so an episode has ``horizon - 1`` steps). Deviations are stated on ``WeightedCoverage`` and
``SubmodularGridEnv`` (the history observation).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

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


def matern52(dist: np.ndarray, lengthscale: float, outputscale: float) -> np.ndarray:
    """Matern 5/2 kernel of the distances ``dist`` (gpytorch's ``ScaleKernel(MaternKernel(nu=2.5))``)."""
    scaled = np.sqrt(5.0) * dist / lengthscale
    return outputscale * (1.0 + scaled + scaled**2 / 3.0) * np.exp(-scaled)


def grid_coordinates(shape: Sequence[int]) -> np.ndarray:
    """The authors' physical coordinates of the cells: cell (i, j) sits at (1 + 0.1 i, 1 + 0.1 j).

    Returns:
        float64 array (rows * columns, 2), row-major like the flat state index.
    """
    rows, cols = _check_shape(shape)
    ii, jj = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    return GP_OFFSET + GP_STEP * np.stack([ii.ravel(), jj.ravel()], axis=1).astype(np.float64)


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
    coords = grid_coordinates((rows, cols))
    anchor = rng.uniform(0.0, 10.0, size=(1, 2))
    k_xx = matern52(np.linalg.norm(coords[:, None] - coords[None], axis=-1), GP_LENGTHSCALE, GP_OUTPUTSCALE)
    k_xa = matern52(np.linalg.norm(coords - anchor, axis=-1), GP_LENGTHSCALE, GP_OUTPUTSCALE)
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


@runtime_checkable
class SetFunction(Protocol):
    """What a submodular task's F provides; ``SubmodularGridEnv`` and ``greedy_trajectory`` use only this.

    States are flat cell indices ``row * columns + column`` of a ``shape`` grid. F is a set function:
    repeated states count once, so F(s | history) = 0 for a state already in ``history``.
    """

    shape: tuple[int, int]
    """The grid (rows, columns)."""
    n_states: int
    """rows * columns."""

    def index(self, row: int, col: int) -> int:
        """Flat index of cell (row, col)."""
        ...

    def value(self, states: Sequence[int] | np.ndarray) -> float:
        """F(states), F of the empty set being 0."""
        ...

    def marginal_gain(self, state: int, history: Sequence[int] | np.ndarray) -> float:
        """F(state | history) = F(history + state) - F(history)."""
        ...


_SET_FUNCTION_MEMBERS = ("value", "marginal_gain", "index", "shape", "n_states")


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
    coverage: SetFunction, horizon: int, start: Sequence[int] = START_CELL
) -> tuple[float, list[int]]:
    """The greedy trajectory: each step takes the feasible move of largest marginal gain.

    Ties go to the lowest action number (stay first). This is the greedy reference the benchmark reports
    beside the learned policies' F(tau). Works for any ``SetFunction`` through ``marginal_gain``.

    Args:
        coverage: the set function (any ``SetFunction``; the name is kept from the coverage tasks).
        horizon: states in the trajectory (start included), so ``horizon - 1`` moves.
        start: (row, column) of the first state.

    Returns:
        (F of the trajectory, the list of its flat state indices).
    """
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    row, col = int(start[0]), int(start[1])
    trajectory = [coverage.index(row, col)]
    distinct = list(trajectory)
    for _ in range(horizon - 1):
        options = [step_cell(row, col, a, coverage.shape) for a in range(len(ACTION_MOVES))]
        gains = [
            0.0 if coverage.index(*cell) in distinct else coverage.marginal_gain(coverage.index(*cell), distinct)
            for cell in options
        ]
        best = max(range(len(options)), key=lambda a: (gains[a], -a))
        row, col = options[best]
        trajectory.append(coverage.index(row, col))
        if trajectory[-1] not in distinct:
            distinct.append(trajectory[-1])
    return coverage.value(trajectory), trajectory


def greedy_value(coverage: SetFunction, horizon: int, start: Sequence[int] = START_CELL) -> float:
    """F of ``greedy_trajectory``."""
    return greedy_trajectory(coverage, horizon, start)[0]


class SubmodularGridEnv(gym.Env):
    """A grid world whose rewards are the marginal gains of a set function F of the visited states.

    The generic env of SubPO's tasks (Prajapat et al., ICLR 2024). The agent starts at ``start`` and moves
    with five actions (0 stay, 1 right, 2 up = row + 1, 3 left, 4 down = row - 1; off-grid moves stay put).
    Step h's reward is the marginal gain F(s_{h+1} | s_0..s_h), computed with ``F.marginal_gain`` on the
    distinct states visited so far (a revisit pays 0 without a call, F being a set function); the first
    step also pays F({s_0}), as in the authors' code, so an episode's return is F(tau) of its whole
    trajectory. Episodes are truncated (never terminated) after ``horizon - 1`` steps, i.e. ``horizon``
    states as the authors count.

    Observations (float32):

    - "markovian": (row, column, t), the authors' Markovian policy input (state, h).
    - "history": (row, column, t) followed by the flattened 0/1 map of visited cells. Deviation: the
      authors feed the list of visited state indices padded with -1; the map is the fixed-size,
      order-free equivalent that determines F (a set function of the visited states).

    ``info`` carries ``F`` (value of the visited set), ``visited`` (distinct states visited) and
    ``marginal_gain`` (F(s_{h+1} | history), without the first step's F({s_0})).

    Subclasses choose what ``render`` draws under the trajectory by overriding ``_background`` (default:
    the singleton values F({s})) and ``_highlight`` (default: nothing).

    :param F: the set function (see ``SetFunction``); its ``shape`` is the grid.
    :param horizon: states per trajectory (>= 2).
    :param observation: "markovian" or "history".
    :param start: (row, column) start cell; None: the authors' (1, 4) = node 34, clipped to the grid.
    :param render_mode: None or "rgb_array".
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(
        self,
        F: SetFunction,
        *,
        horizon: int,
        observation: str = "markovian",
        start: Sequence[int] | None = None,
        render_mode: str | None = None,
    ) -> None:
        missing = [name for name in _SET_FUNCTION_MEMBERS if not hasattr(F, name)]
        if missing:
            raise ValueError(
                f"F must provide {', '.join(_SET_FUNCTION_MEMBERS)} (see envs.submodular.SetFunction); "
                f"{type(F).__name__} lacks {', '.join(missing)}"
            )
        shape = _check_shape(F.shape)
        if int(F.n_states) != shape[0] * shape[1]:
            raise ValueError(f"F.n_states must be rows * columns = {shape[0] * shape[1]}, got {F.n_states}")
        if observation not in ("markovian", "history"):
            raise ValueError(f"observation must be 'markovian' or 'history', got {observation!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        horizon = int(horizon)
        if horizon < 2:
            raise ValueError(f"horizon must be >= 2 (states per trajectory), got {horizon}")
        if start is None:
            start = (min(START_CELL[0], shape[0] - 1), min(START_CELL[1], shape[1] - 1))
        if len(start) != 2 or not (0 <= start[0] < shape[0] and 0 <= start[1] < shape[1]):
            raise ValueError(f"start must be a (row, column) cell of the {shape} grid, got {tuple(start)!r}")
        self.F = F
        self.shape = shape
        self.horizon = horizon
        self.observation_mode = observation
        self.start = (int(start[0]), int(start[1]))
        self.render_mode = render_mode

        self.action_space = spaces.Discrete(len(ACTION_MOVES))
        high = np.array([shape[0] - 1, shape[1] - 1, horizon - 1], dtype=np.float32)
        if observation == "history":
            high = np.concatenate([high, np.ones(F.n_states, dtype=np.float32)])
        self.observation_space = spaces.Box(np.zeros_like(high), high, dtype=np.float32)

        self._pos = self.start
        self._t = 0
        self._visited = np.zeros(F.n_states, dtype=bool)
        self._history: list[int] = []
        """The distinct visited states, in visit order."""
        self._value = 0.0
        self._background_levels: np.ndarray | None = None

    def _state(self) -> int:
        return self.F.index(*self._pos)

    def _obs(self) -> np.ndarray:
        head = np.array([self._pos[0], self._pos[1], self._t], dtype=np.float32)
        if self.observation_mode == "markovian":
            return head
        return np.concatenate([head, self._visited.astype(np.float32)])

    def _info(self, gain: float) -> dict[str, Any]:
        return {"F": self._value, "visited": len(self._history), "marginal_gain": gain}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._pos = self.start
        self._t = 0
        state = self._state()
        self._visited[:] = False
        self._visited[state] = True
        self._history = [state]
        self._value = float(self.F.value([state]))
        return self._obs(), self._info(self._value)

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"action must be in {self.action_space}, got {action!r}")
        self._pos = step_cell(*self._pos, int(action), self.shape)
        self._t += 1
        state = self._state()
        gain = 0.0 if self._visited[state] else float(self.F.marginal_gain(state, self._history))
        reward = gain + (self._value if self._t == 1 else 0.0)
        if not self._visited[state]:
            self._visited[state] = True
            self._history.append(state)
        self._value += gain
        truncated = self._t >= self.horizon - 1
        return self._obs(), reward, False, truncated, self._info(gain)

    def _background(self) -> np.ndarray:
        """Per-cell levels drawn in grey under the trajectory, shape ``self.shape``: F({s}) by default."""
        if self._background_levels is None:
            singles = [self.F.value([s]) for s in range(self.F.n_states)]
            self._background_levels = np.asarray(singles, dtype=np.float64).reshape(self.shape)
        return self._background_levels

    def _highlight(self) -> np.ndarray | None:
        """Boolean cells tinted green (e.g. the covered cells), shape ``self.shape``, or None."""
        return None

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        w = self._background()
        span = w.max() - w.min()
        level = (w - w.min()) / span if span > 0 else np.full_like(w, 0.5)
        img = np.repeat((40 + 160 * level)[..., None], 3, axis=-1)
        highlight = self._highlight()
        if highlight is not None:
            img[highlight] = 0.5 * img[highlight] + 0.5 * np.array([60.0, 200.0, 60.0])
        img[self._visited.reshape(self.shape)] = (220.0, 60.0, 60.0)
        img[self._pos] = (40.0, 80.0, 240.0)
        scale = 8
        return np.kron(img.astype(np.uint8), np.ones((scale, scale, 1), dtype=np.uint8))


class CoverageGridEnv(SubmodularGridEnv):
    """Grid-world coverage with a submodular reward (SubPO, Prajapat et al., ICLR 2024).

    ``SubmodularGridEnv`` over ``WeightedCoverage``: rewards are the marginal gains of the weighted
    coverage, the first step also paying F({s_0}); see ``SubmodularGridEnv`` for the dynamics, the
    observations (and their deviation from the authors') and ``info``. ``render`` draws the weights with
    the covered cells tinted green.

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
        horizon = HORIZONS.get(weights, 40) if horizon is None else int(horizon)
        coverage = WeightedCoverage(weight_map(weights, shape, seed=seed), radius=radius)
        super().__init__(coverage, horizon=horizon, observation=observation, start=start, render_mode=render_mode)
        self.F: WeightedCoverage = coverage
        self.weights_kind = weights

    def _background(self) -> np.ndarray:
        return self.F.weights

    def _highlight(self) -> np.ndarray:
        return self.F.covered(self._history).reshape(self.shape)


def greedy_reference(env_id: str) -> float:
    """F of the greedy trajectory on a registered grid task (its F, horizon and start): the benchmark's reference."""
    import envs  # noqa: F401 - registers the ids

    env = gym.make(env_id).unwrapped
    if not all(hasattr(env, name) for name in ("F", "horizon", "start")) or not hasattr(env.F, "index"):
        raise ValueError(f"{env_id} is not a grid task (envs.submodular.SubmodularGridEnv); no greedy reference")
    return greedy_value(env.F, env.horizon, env.start)


if __name__ == "__main__":  # python -m envs.submodular <env id> ...: the greedy reference of each grid task
    import argparse

    parser = argparse.ArgumentParser(prog="python -m envs.submodular",
                                     description="The greedy reference F of submodular grid tasks.")
    parser.add_argument("env_ids", nargs="*", default=["Coverage-Constant-v0", "Coverage-Bimodal-v0", "Coverage-GP-v0"])
    for name in parser.parse_args().env_ids:
        print(f"{name}: greedy F = {greedy_reference(name):.2f}")
