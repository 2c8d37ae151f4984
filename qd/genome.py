"""Genomes and the controllers they parameterise.

A genome is a float64 vector in ``[GENOME_LOW, GENOME_HIGH]^d`` (clipped after every mutation, as in the
authors' ``BaseEvolver.mutate_genome``). For a closed-loop task (``spec_qd.controller == "mlp"``) it holds the
weights of :class:`MLPController`; for an open-loop task it *is* the action.

Deviation: SERENE's ``parameters.py`` clips genomes to [-5, 5]; the project spec fixes [-1, 1] for every
algorithm, so the bounds are the same for NS, MAP-Elites, TAXONS, SERENE and STAX here.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np

GENOME_LOW = -1.0
GENOME_HIGH = 1.0
ACTIVATIONS = ("sigmoid", "tanh")


def clip_genomes(genomes: np.ndarray) -> np.ndarray:
    """Clip genomes to the genome bounds and return them as float64."""
    return np.clip(np.asarray(genomes, dtype=np.float64), GENOME_LOW, GENOME_HIGH)


class MLPController:
    """Feed-forward controller whose weights come from a flat genome.

    Layout follows SERENE's ``FFNeuralController``: per layer a weight matrix (row-major, ``in x out``)
    followed by *one* scalar bias shared by the layer's units, and the activation after every layer
    including the output. The default ``"sigmoid"`` activation is the authors' ``2 * expit(x) - 1``, which
    keeps actions in [-1, 1]. Numpy only: the networks are tiny, and torch's per-call overhead would cost
    more than the arithmetic.

    Args:
        obs_dim: Size of the (flattened) observation.
        act_dim: Size of the (flattened) action.
        hidden: Hidden layer sizes, e.g. ``(5, 5)`` (SERENE: two hidden layers of 5).
        activation: ``"sigmoid"`` (authors') or ``"tanh"``.

    Raises:
        ValueError: for non-positive sizes or an unknown activation.
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (5, 5), *,
                 activation: str = "sigmoid") -> None:
        sizes = (int(obs_dim), *(int(h) for h in hidden), int(act_dim))
        if any(size <= 0 for size in sizes):
            raise ValueError(f"MLPController sizes must be positive, got obs_dim={obs_dim}, hidden={tuple(hidden)}, "
                             f"act_dim={act_dim}.")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}.")
        self.sizes = sizes
        self.activation = activation
        self._weights: list[np.ndarray] = [np.zeros((a, b)) for a, b in zip(sizes[:-1], sizes[1:])]
        self._biases = np.zeros(len(self._weights))

    @property
    def num_params(self) -> int:
        """Genome length: every weight plus one bias per layer."""
        return sum(a * b + 1 for a, b in zip(self.sizes[:-1], self.sizes[1:]))

    def set_params(self, flat: np.ndarray) -> None:
        """Load the weights from a flat genome of length :attr:`num_params`.

        Raises:
            ValueError: when ``flat`` does not have shape ``(num_params,)``.
        """
        flat = np.asarray(flat, dtype=np.float64)
        if flat.shape != (self.num_params,):
            raise ValueError(f"flat must have shape ({self.num_params},), got {flat.shape}.")
        index = 0
        for layer, (a, b) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            self._weights[layer] = flat[index:index + a * b].reshape(a, b)
            index += a * b
            self._biases[layer] = flat[index]
            index += 1

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Action in [-1, 1]^act_dim for one observation."""
        x = np.asarray(obs, dtype=np.float64).reshape(-1)
        for weight, bias in zip(self._weights, self._biases):
            x = x @ weight + bias
            x = 2.0 / (1.0 + np.exp(-x)) - 1.0 if self.activation == "sigmoid" else np.tanh(x)
        return x


def _flat_dim(space) -> int:  # noqa: ANN001 - a gymnasium Box
    return int(np.prod(space.shape))


@cache
def genome_size(env_id: str) -> int:
    """Genome length for a QD task: the MLP's parameter count, or the action size for open-loop tasks.

    Raises:
        rl.envs.UnknownEnvError: for an unregistered id (with the closest registered ids).
        qd.evaluation.NotAQDTaskError: for an env without a ``spec_qd`` attribute.
    """
    from qd.evaluation import make_task_env, task_spec

    spec = task_spec(env_id)
    env = make_task_env(env_id)
    try:
        if spec.controller == "open_loop":
            return _flat_dim(env.action_space)
        return MLPController(_flat_dim(env.observation_space), _flat_dim(env.action_space),
                             spec.controller_hidden).num_params
    finally:
        env.close()
