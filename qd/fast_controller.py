"""The MLP controller and the action scaling of :func:`qd.evaluation.run_episode`, compiled for the fast kernels.

:class:`qd.genome.MLPController` computes ``x @ W + b`` (a BLAS ``gemv``) and ``2 / (1 + exp(-x)) - 1`` per
layer, and ``run_episode`` maps the output onto the action box and rounds it to float32 (the action space's
dtype). Only that float32 action reaches the env. So a compiled forward pass may sum in its own order *if* its
float64 output rounds to the same float32 action as numpy's would. ``_act`` runs a plain-loop forward pass
(its own summation order; layer by layer over a batch of genomes, so that numpy's SIMD ``exp`` runs once per
layer for the whole batch) and checks that every value within a bound on its distance to numpy's output
scales and rounds to the same float32. The bound (``_margin``, once per genome) is standard
error analysis: any summation order of a dot product is within ``gamma_n sum |x_i w_i|`` of the exact value,
errors propagate through the layers by the weights' column sums, and the activation's slope is at most 1/2.
Rounding and the scaling are monotonic, so the check is conclusive; where it fails (an output too close to a
float32 rounding boundary for the bound to decide: about one controller step in a thousand on HardMaze, a few
in a hundred on AntMaze, whose observations are large) the step's forward pass is redone with numpy's own
loops (:mod:`qd.fast_numpy`), which gives numpy's output bit for bit. The kernels' actions are therefore
exactly ``run_episode``'s.

The genome layout is ``MLPController``'s: per layer a row-major ``in x out`` weight matrix, then one bias.
Everything here is a numba function (private: the kernels of :mod:`qd.fast_maze`, :mod:`qd.fast_arm` and
:mod:`qd.fast_mujoco` are their only callers); :func:`layer_sizes` and :func:`scaler_arrays` prepare their
arguments.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import gymnasium as gym
import numpy as np
from numba import njit

from qd.fast_numpy import EXP, LIBM_EXP, _np_matvec, _np_unary_n
from qd.genome import MLPController

__all__ = ["ControllerKernel", "layer_sizes", "scaler_arrays"]

_EPS = 2.0**-52
"""float64 machine epsilon (twice the unit roundoff: the bounds below are generous on purpose)."""
_ACTIVATION_SLACK = 16.0 * _EPS
"""Bound on the difference of two activations ``2 / (1 + e) - 1`` whose ``e`` differ by a few ulps (values in
[-1, 1]: three roundings of at most 2^-52 each plus half the relative error of ``e``)."""
_SAFETY = 2.0
"""Factor on the propagated bound before the float32 check."""


def layer_sizes(obs_dim: int, act_dim: int, hidden: Sequence[int]) -> tuple[np.ndarray, int]:
    """``MLPController``'s layer sizes as an int64 array, and its genome length."""
    controller = MLPController(obs_dim, act_dim, hidden)
    return np.asarray(controller.sizes, dtype=np.int64), controller.num_params


def scaler_arrays(space: gym.spaces.Box) -> tuple[np.ndarray, np.ndarray, bool]:
    """``run_episode``'s action scaling for ``space``: float64 ``low`` and ``span`` (exact copies of the float32
    bounds, as numpy promotes them) and whether the box is bounded."""
    bounded = bool(np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high)))
    low = np.asarray(space.low).reshape(-1)
    span = np.asarray(space.high - space.low).reshape(-1)
    return low.astype(np.float64), span.astype(np.float64), bounded


@njit(cache=True)
def _margin(genome: np.ndarray, sizes: np.ndarray) -> tuple[float, float]:
    """Bound ``(a, b)`` on ``|plain output - numpy's output| <= a * M + b`` for inputs of magnitude at most ``M``.

    Per layer with ``A`` the largest column sum of ``|W|`` and ``B = |bias|``: both dot products are within
    ``(rows + 2) * eps * A * max|h|`` of the exact one whatever the summation order, adding the bias rounds once
    more (``eps * |z|``), an input error ``e`` adds ``A * e``; the activation halves the pre-activation's error
    and adds :data:`_ACTIVATION_SLACK` (the two ``exp`` may differ by a few ulps), and bounds the next input by 1.
    """
    magnitude_coef, magnitude_const = 1.0, 0.0  # |input| <= coef * M + const
    error_coef, error_const = 0.0, 0.0  # |input error| <= coef * M + const
    index = 0
    for layer in range(sizes.size - 1):
        rows, cols = sizes[layer], sizes[layer + 1]
        column_sum = 0.0
        for j in range(cols):
            total = 0.0
            for i in range(rows):
                total += abs(genome[index + i * cols + j])
            column_sum = max(column_sum, total)
        bias = abs(genome[index + rows * cols])
        rounding = (2.0 * (rows + 2) + 1.0) * _EPS
        z_coef = rounding * column_sum * magnitude_coef + column_sum * error_coef
        z_const = rounding * column_sum * magnitude_const + _EPS * bias + column_sum * error_const
        error_coef, error_const = 0.5 * z_coef, 0.5 * z_const + _ACTIVATION_SLACK
        magnitude_coef, magnitude_const = 0.0, 1.0
        index += rows * cols + 1
    return _SAFETY * error_coef, _SAFETY * error_const


@njit(cache=True)
def _exp(table: np.ndarray, values: np.ndarray, n: int, scratch: np.ndarray) -> None:
    """``values[:n] = exp(values[:n])`` with numpy's exp (one loop call, as numpy makes for an array)."""
    if table[LIBM_EXP]:
        for k in range(n):
            values[k] = math.exp(values[k])
    else:
        _np_unary_n(table, EXP, values.ctypes.data, values.ctypes.data, n, scratch)


@njit(cache=True)
def _forward_plain(table: np.ndarray, genomes: np.ndarray, sizes: np.ndarray, obs: np.ndarray, work: np.ndarray,
                   scratch: np.ndarray) -> None:
    """Every genome's forward pass in plain loops, layer by layer over the batch (one ``exp`` call per layer).

    Genome ``g``'s output is ``work[0, g * width:]`` with ``width`` the widest layer.
    """
    n, width = genomes.shape[0], np.max(sizes)
    h, e = work[0], work[1]
    for g in range(n):
        for i in range(sizes[0]):
            h[g * width + i] = obs[g, i]
    index = 0
    for layer in range(sizes.size - 1):
        rows, cols = sizes[layer], sizes[layer + 1]
        for g in range(n):  # row by row of W (contiguous), accumulating the layer's columns
            out = g * cols
            for j in range(cols):
                e[out + j] = 0.0
            for i in range(rows):
                hi, row = h[g * width + i], index + i * cols
                for j in range(cols):
                    e[out + j] += hi * genomes[g, row + j]
            bias = genomes[g, index + rows * cols]
            for j in range(cols):
                e[out + j] = -(e[out + j] + bias)
        _exp(table, e, n * cols, scratch)
        for g in range(n):
            for j in range(cols):
                h[g * width + j] = 2.0 / (1.0 + e[g * cols + j]) - 1.0
        index += rows * cols + 1


@njit(cache=True)
def _forward_numpy(table: np.ndarray, genome: np.ndarray, sizes: np.ndarray, obs: np.ndarray, h: np.ndarray,
                   z: np.ndarray, scratch: np.ndarray) -> None:
    """``MLPController.act`` with numpy's own loops (matmul, exp): its output, bit for bit, in ``h[:act_dim]``."""
    for i in range(sizes[0]):
        h[i] = obs[i]
    index = 0
    for layer in range(sizes.size - 1):
        rows, cols = sizes[layer], sizes[layer + 1]
        _np_matvec(table, h.ctypes.data, genome.ctypes.data + 8 * index, z.ctypes.data, rows, cols, scratch)
        bias = genome[index + rows * cols]
        for j in range(cols):
            h[j] = -(z[j] + bias)
        _exp(table, h, cols, scratch)
        for j in range(cols):
            h[j] = 2.0 / (1.0 + h[j]) - 1.0
        index += rows * cols + 1


@njit(cache=True)
def _scale(unit: float, low: float, span: float, bounded: bool) -> float:
    """``_ActionScaler``: ``low + (unit + 1) * 0.5 * span`` on a bounded box, else the value itself."""
    if bounded:
        return low + (unit + 1.0) * 0.5 * span
    return unit


@njit(cache=True)
def _act(table: np.ndarray, genomes: np.ndarray, margins: np.ndarray, sizes: np.ndarray, obs: np.ndarray,
         low: np.ndarray, span: np.ndarray, bounded: bool, actions: np.ndarray, work: np.ndarray,
         scratch: np.ndarray, exact: bool) -> int:
    """``run_episode``'s float32 action (as float64 values) for each row of ``obs`` and ``genomes``, in ``actions``.

    ``margins`` holds each genome's ``_margin``; ``work`` is a (4, n * widest layer) float64 scratch; ``exact``
    forces numpy's loops (the tests check both paths). Returns how many genomes needed numpy's loops.
    """
    n, width, act_dim = genomes.shape[0], np.max(sizes), sizes[sizes.size - 1]
    if not exact:
        _forward_plain(table, genomes, sizes, obs, work, scratch)
    fallbacks = 0
    for g in range(n):
        safe = not exact
        if safe:
            largest = 0.0
            for i in range(sizes[0]):
                largest = max(largest, abs(obs[g, i]))
            bound = margins[g, 0] * largest + margins[g, 1]
            for j in range(act_dim):
                unit = work[0, g * width + j]
                lowest = np.float32(_scale(unit - bound, low[j], span[j], bounded))
                highest = np.float32(_scale(unit + bound, low[j], span[j], bounded))
                if not lowest == highest:  # also for NaN
                    safe = False
                    break
        if safe:
            for j in range(act_dim):
                actions[g, j] = np.float64(np.float32(_scale(work[0, g * width + j], low[j], span[j], bounded)))
        else:
            fallbacks += 1
            _forward_numpy(table, genomes[g], sizes, obs[g], work[2], work[3], scratch)
            for j in range(act_dim):
                actions[g, j] = np.float64(np.float32(_scale(work[2, j], low[j], span[j], bounded)))
    return fallbacks


class ControllerKernel:
    """What every compiled evaluation kernel sets up around the controller: one env per render mode (for the
    task's spec, the final state and renders), the controller's layer sizes, the action scaler's arrays and
    numpy's loops (``table``, :func:`qd.fast_numpy.numpy_loops`).

    Subclasses set ``env_class`` (or pass it) and add their task's arrays; ``fallbacks`` counts the controller
    steps that needed numpy's loops so far (see the module docstring).
    """

    env_class: type[gym.Env]

    def __init__(self, table: np.ndarray, *, exact_controller: bool = False,
                 env_class: type[gym.Env] | None = None) -> None:
        if env_class is not None:
            self.env_class = env_class
        self._table = table
        self._exact = bool(exact_controller)
        self._envs: dict[bool, gym.Env] = {}
        env = self._env(False)
        spec = env.spec_qd
        self.max_steps = int(spec.max_steps)
        self.sizes, self.genome_size = layer_sizes(int(np.prod(env.observation_space.shape)),
                                                   int(np.prod(env.action_space.shape)), spec.controller_hidden)
        self._low, self._span, self._bounded = scaler_arrays(env.action_space)
        self.fallbacks = 0

    def _env(self, render: bool) -> gym.Env:
        """The kernel's env for ``render`` (built once)."""
        if render not in self._envs:
            self._envs[render] = self.env_class(render_mode="rgb_array" if render else None)
        return self._envs[render]

    def _checked(self, genomes: np.ndarray) -> np.ndarray:
        """``genomes`` as a C-contiguous float64 (n, genome_size) array, or a ValueError."""
        genomes = np.ascontiguousarray(genomes, dtype=np.float64)
        if genomes.ndim != 2 or genomes.shape[1] != self.genome_size:
            raise ValueError(f"genomes must have shape (n, {self.genome_size}), got {genomes.shape}.")
        return genomes
