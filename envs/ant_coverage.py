"""MuJoCo Ant covering an area of the plane: SubPO's continuous task (Prajapat et al., ICLR 2024).

The reward is the marginal gain of an xy-coverage set function: the plane square [-20, 20]^2 is a
100 x 100 grid of cells, the state's cell is the cell of the Ant's torso (x, y), and a state covers the
5 x 5 block of cells starting at its cell. Constants follow the authors' ``gym_env/inheritance_test.py``
(``MyAntEnv``); the deviations are stated on :class:`AntCoverageEnv` and :class:`XYCoverage`.

Registered (``import envs``): ``AntCoverage-v0`` (Markovian observation) and ``AntCoverage-History-v0``
(plus a coarse map of the covered cells).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

__all__ = ["AntCoverageEnv", "XYCoverage"]

GRID_SIZE = 100
"""Cells per side of the coverage grid (authors: ``torch.zeros(100, 100)``)."""
HALF_WIDTH = 20.0
"""The grid spans [-HALF_WIDTH, HALF_WIDTH]^2; leaving it ends the episode (authors: ``b_lim`` 20)."""
FOOTPRINT = 5
"""A state covers the FOOTPRINT x FOOTPRINT block of cells starting at its own cell (authors: 5)."""
REWARD_SCALE = 10.0
"""Rewards are covered-cell counts divided by this (authors: ``/ 10.0``)."""
MAX_STEPS = 400
"""Steps per trajectory (authors' ``traj_len``)."""
HISTORY_GRID = 10
"""Side of the coarse covered-cell map in the history observation."""


class XYCoverage:
    """F(S) = number of grid cells covered by the footprints of the cells in S: monotone submodular.

    Cells are flat indices ``row * grid_size + col``, the row indexing x and the column y (the authors'
    ``mask[x_arg, y_arg]``). A footprint is the ``footprint`` x ``footprint`` block starting at the cell,
    cut at the grid's edge (as the authors' slicing does).

    Deviation: the authors take ``int((x + 20) / 0.4)``, which truncates towards zero, so a torso just
    past -20 still covers the border block while one past +20 covers nothing; here positions are clipped
    onto the grid, so a terminal state outside the square covers the nearest border block on both sides
    (inside the square both agree).

    :param grid_size: cells per side.
    :param footprint: side of the covered block, in cells.
    :param half_width: the grid spans [-half_width, half_width]^2.
    """

    def __init__(self, grid_size: int = GRID_SIZE, footprint: int = FOOTPRINT, half_width: float = HALF_WIDTH):
        if grid_size < 1 or footprint < 1:
            raise ValueError(f"grid_size and footprint must be >= 1, got {grid_size} and {footprint}")
        if half_width <= 0:
            raise ValueError(f"half_width must be > 0, got {half_width}")
        self.grid_size = int(grid_size)
        self.footprint = int(footprint)
        self.half_width = float(half_width)
        self.cell_width = 2 * self.half_width / self.grid_size

    @property
    def n_cells(self) -> int:
        """Number of cells (the ground set)."""
        return self.grid_size**2

    def cell(self, x: float, y: float) -> int:
        """Flat index of the cell holding the position (x, y), clipped onto the grid."""
        row = int(np.clip(np.floor((x + self.half_width) / self.cell_width), 0, self.grid_size - 1))
        col = int(np.clip(np.floor((y + self.half_width) / self.cell_width), 0, self.grid_size - 1))
        return row * self.grid_size + col

    def _check(self, cell: int) -> tuple[int, int]:
        if not 0 <= int(cell) < self.n_cells:
            raise ValueError(f"cell must be a flat index in [0, {self.n_cells}), got {cell!r}")
        return divmod(int(cell), self.grid_size)

    def cover(self, mask: np.ndarray, cell: int) -> int:
        """Mark the footprint of ``cell`` in the boolean (grid_size, grid_size) ``mask``; return the cells it adds."""
        row, col = self._check(cell)
        block = mask[row : row + self.footprint, col : col + self.footprint]
        added = int(block.size - np.count_nonzero(block))
        block[...] = True
        return added

    def covered(self, states: Iterable[int]) -> np.ndarray:
        """Boolean (grid_size, grid_size) map of the cells covered by ``states``."""
        mask = np.zeros((self.grid_size, self.grid_size), dtype=bool)
        for state in states:
            self.cover(mask, state)
        return mask

    def value(self, states: Iterable[int]) -> float:
        """F(S): the number of cells covered by the states' footprints (F of the empty set is 0)."""
        return float(np.count_nonzero(self.covered(states)))

    def marginal_gain(self, state: int, history: Iterable[int]) -> float:
        """F(state | history) = F(history + {state}) - F(history)."""
        mask = self.covered(history)
        return float(self.cover(mask, state))


class AntCoverageEnv(gym.Env):
    """Gymnasium Ant-v4 whose reward is the marginal gain of :class:`XYCoverage` over the visited cells.

    Step h pays F(s_{h+1} | tau_{0:h}) / ``reward_scale``, the newly covered cells over 10 as the authors;
    Ant's own reward is dropped. Episodes are truncated after ``max_steps`` steps (the authors' 400-step
    trajectories) and terminated when the torso leaves the square (``|x| or |y| > 20``, as the authors) or when
    Ant-v4's own health check fails (torso height outside [0.2, 1.0]): the authors keep Ant-v4's defaults,
    and so does this env (pass ``terminate_when_unhealthy=False`` to drop it).

    Deviations from the authors' ``MyAntEnv``, each stated:

    - The first step also pays F({s_0}) / reward_scale (the start's 5 x 5 block, 2.5), as the grid
      coverage envs of :mod:`envs.submodular` do, so an episode's return is F(tau) / reward_scale of its
      whole trajectory, the paper's objective. The authors' Ant env leaves it out (an action-independent
      constant on the first reward).
    - The authors run no time limit in the env (their learner resets every 400 steps and treats the last
      step as terminal); here the 400 steps are a truncation, so learners bootstrap there.
    - Positions outside the square are clipped onto the grid (see :class:`XYCoverage`).

    Observations (float64):

    - "markovian": Ant-v4's observation with the torso's (x, y) included
      (``exclude_current_positions_from_observation=False``, the authors' policy input): 29 numbers.
    - "history": the same followed by a ``history_grid`` x ``history_grid`` (10 x 10) downsample of the
      covered-cell map, each entry the fraction of its 10 x 10 block of cells covered (so the policy can
      see where it has been; the authors' history variant feeds the states to a GRU instead): 129 numbers.

    ``info`` carries Ant-v4's info plus ``F`` (covered cells so far, F(tau_{0:h+1})), ``marginal_gain``
    (F(s_{h+1} | tau_{0:h}), unscaled, without the first step's F({s_0})), ``coverage`` (fraction of the
    grid covered) and ``cell`` (flat cell index of the returned state; also in the reset info);
    the first step's info also has ``start_cell`` (the cell of s_0), for learners that rebuild the reward
    from ``F`` (SubPO's ``reward="modular"``).

    The paper's modular baseline (SubPO's ``reward="modular"``) pays F({s_{h+1}}) / reward_scale, the
    state's own footprint: 2.5 everywhere in the square except near the +x and +y edges where the block is
    cut, so on this task it mostly rewards staying alive. The authors' Ant code names "modular" something
    else, the coverage so far F(tau_{0:h+1}) / 10 at every step; that reward is not offered here.

    :param observation: "markovian" or "history".
    :param max_steps: steps before truncation (authors: 400).
    :param reward_scale: rewards are cell counts divided by this (authors: 10).
    :param grid_size: cells per side of the coverage grid (authors: 100).
    :param footprint: side of a state's covered block, in cells (authors: 5).
    :param half_width: the grid spans [-half_width, half_width]^2; leaving it terminates (authors: 20).
    :param history_grid: side of the coarse map of the history observation; must divide ``grid_size``.
    :param render_mode: None or "rgb_array" (a top view of the covered cells and the torso's path).
    :param ant_kwargs: keyword arguments of Gymnasium's Ant-v4 (e.g. ``terminate_when_unhealthy``).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        observation: str = "markovian",
        *,
        max_steps: int = MAX_STEPS,
        reward_scale: float = REWARD_SCALE,
        grid_size: int = GRID_SIZE,
        footprint: int = FOOTPRINT,
        half_width: float = HALF_WIDTH,
        history_grid: int = HISTORY_GRID,
        render_mode: str | None = None,
        **ant_kwargs: Any,
    ) -> None:
        from gymnasium.envs.mujoco.ant_v4 import AntEnv  # needs gymnasium[mujoco]

        if observation not in ("markovian", "history"):
            raise ValueError(f"observation must be 'markovian' or 'history', got {observation!r}")
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        if reward_scale <= 0:
            raise ValueError(f"reward_scale must be > 0, got {reward_scale}")
        if history_grid < 1 or grid_size % history_grid:
            raise ValueError(f"history_grid must be >= 1 and divide grid_size {grid_size}, got {history_grid}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        if "exclude_current_positions_from_observation" in ant_kwargs:
            raise ValueError("exclude_current_positions_from_observation is fixed to False: the reward needs x, y")
        self.ant = AntEnv(exclude_current_positions_from_observation=False, **ant_kwargs)
        self.F = XYCoverage(grid_size, footprint, half_width)
        self.observation_mode = observation
        self.max_steps = int(max_steps)
        self.horizon = self.max_steps + 1  # states per full trajectory, as CoverageGridEnv counts
        self.reward_scale = float(reward_scale)
        self.history_grid = int(history_grid)
        self.render_mode = render_mode

        self.action_space = self.ant.action_space
        n_obs = self.ant.observation_space.shape[0] + (self.history_grid**2 if observation == "history" else 0)
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(n_obs,), dtype=np.float64)

        self._mask = np.zeros((grid_size, grid_size), dtype=bool)
        self._path: list[tuple[float, float]] = []
        self._value = 0.0
        self._start_cell = 0
        self._t = 0

    def _obs(self, ant_obs: np.ndarray) -> np.ndarray:
        if self.observation_mode == "markovian":
            return ant_obs
        k = self.F.grid_size // self.history_grid
        coarse = self._mask.reshape(self.history_grid, k, self.history_grid, k).mean(axis=(1, 3))
        return np.concatenate([ant_obs, coarse.ravel()])

    def _info(self, info: dict[str, Any], cell: int, gain: float) -> dict[str, Any]:
        return dict(info, F=self._value, marginal_gain=gain, coverage=self._value / self.F.n_cells, cell=cell)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        ant_obs, info = self.ant.reset(seed=seed, options=options)
        x, y = float(ant_obs[0]), float(ant_obs[1])
        cell = self.F.cell(x, y)
        self._mask[:] = False
        self._value = float(self.F.cover(self._mask, cell))
        self._start_cell = cell
        self._path = [(x, y)]
        self._t = 0
        return self._obs(ant_obs), self._info(info, cell, self._value)

    def step(self, action):
        ant_obs, _, unhealthy, _, info = self.ant.step(action)
        x, y = float(ant_obs[0]), float(ant_obs[1])
        cell = self.F.cell(x, y)
        gain = float(self.F.cover(self._mask, cell))
        reward = (gain + (self._value if self._t == 0 else 0.0)) / self.reward_scale
        self._value += gain
        self._t += 1
        self._path.append((x, y))
        terminated = bool(unhealthy) or abs(x) > self.F.half_width or abs(y) > self.F.half_width
        truncated = self._t >= self.max_steps and not terminated
        info = self._info(info, cell, gain)
        if self._t == 1:
            info["start_cell"] = self._start_cell
        return self._obs(ant_obs), reward, terminated, truncated, info

    def render(self) -> np.ndarray | None:
        """Top view, x down the rows and y along the columns: covered cells green, the path red, the torso blue."""
        if self.render_mode != "rgb_array":
            return None
        scale = 4
        n = self.F.grid_size
        img = np.full((n, n, 3), 235, dtype=np.uint8)
        img[self._mask] = (90, 190, 90)
        img = np.kron(img, np.ones((scale, scale, 1), dtype=np.uint8))
        pixel = scale / self.F.cell_width
        for i, (x, y) in enumerate(self._path):
            r = int(np.clip((x + self.F.half_width) * pixel, 0, n * scale - 1))
            c = int(np.clip((y + self.F.half_width) * pixel, 0, n * scale - 1))
            last = i == len(self._path) - 1
            img[max(r - 2 * last, 0) : r + 1 + 2 * last, max(c - 2 * last, 0) : c + 1 + 2 * last] = (
                (40, 80, 240) if last else (210, 50, 50)
            )
        return img

    def close(self) -> None:
        self.ant.close()
        super().close()
