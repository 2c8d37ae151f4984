"""TS-DDR's decision rules: networks mapping (inflow of the stage, previous volumes, stage) to target end volumes.

``TargetPolicy`` is the base (input normalisation, the stage one-hot); ``MLPPolicy`` and ``LSTMPolicy`` (the authors'
hydro policy) squash their output into the reservoirs' range, ``LinearPolicy`` is TS-LDR's affine rule.
:data:`POLICY_CLASSES` maps the names of :class:`algos.tsddr.TSDDR`'s ``policy`` setting to the classes. The
deviations from the authors' networks are listed in :mod:`algos.tsddr`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn


class TargetPolicy(nn.Module, ABC):
    """Base of the decision rules: one step maps (inflow_t, previous volumes, stage t) to target volumes.

    Inputs are normalised inside: inflows by their per-plant training mean, volumes to [0, 1] of their range.
    """

    recurrent = False

    def __init__(self, lower: np.ndarray, upper: np.ndarray, inflow_scale: np.ndarray, num_stages: int) -> None:
        super().__init__()
        self.register_buffer("lower", torch.as_tensor(lower, dtype=torch.float64))
        self.register_buffer("span", torch.as_tensor(np.maximum(upper - lower, 1e-9), dtype=torch.float64))
        self.register_buffer("inflow_scale", torch.as_tensor(inflow_scale, dtype=torch.float64))
        self.num_stages = num_stages
        self.num_hydros = len(lower)

    def features(self, inflow: torch.Tensor, volumes: torch.Tensor, stage: int) -> torch.Tensor:
        """``[inflow / scale, (volumes - lower) / span, one_hot(stage)]`` for a batch."""
        one_hot = torch.zeros(inflow.shape[0], self.num_stages, dtype=torch.float64)
        one_hot[:, stage] = 1.0
        return torch.cat([inflow / self.inflow_scale, (volumes - self.lower) / self.span, one_hot], dim=1)

    def initial_hidden(self, batch: int) -> Any:
        return None

    @abstractmethod
    def step(self, inflow: torch.Tensor, volumes: torch.Tensor, stage: int, hidden: Any) -> tuple[torch.Tensor, Any]:
        """Target volumes for stage ``stage`` and the next hidden state (each subclass's network)."""


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        layers += [nn.Linear(a, b), nn.Tanh()]
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return nn.Sequential(*layers).double()


class MLPPolicy(TargetPolicy):
    """An MLP over ``[inflow_t, volumes_{t-1}, one_hot(t)]``; targets = lower + span * sigmoid(output).

    Deviation: the sigmoid bound (the authors leave the output unbounded) and the stage one-hot.
    """

    def __init__(self, lower, upper, inflow_scale, num_stages: int, hidden_sizes: Sequence[int] = (64, 64)) -> None:
        super().__init__(lower, upper, inflow_scale, num_stages)
        self.net = _mlp([2 * self.num_hydros + num_stages, *hidden_sizes, self.num_hydros])

    def step(self, inflow, volumes, stage, hidden):
        return self.lower + self.span * torch.sigmoid(self.net(self.features(inflow, volumes, stage))), hidden


class LSTMPolicy(TargetPolicy):
    """The authors' state-conditioned policy: an LSTM encodes the inflow history; a dense combiner maps
    ``[encoding, volumes_{t-1}, one_hot(t)]`` to the targets (sigmoid-bounded; deviation as in MLPPolicy)."""

    recurrent = True

    def __init__(self, lower, upper, inflow_scale, num_stages: int, hidden_sizes: Sequence[int] = (64, 64)) -> None:
        super().__init__(lower, upper, inflow_scale, num_stages)
        self.encoder = nn.LSTMCell(self.num_hydros, hidden_sizes[0]).double()
        self.combiner = _mlp([hidden_sizes[0] + self.num_hydros + num_stages, *hidden_sizes[1:], self.num_hydros])

    def initial_hidden(self, batch: int):
        size = self.encoder.hidden_size
        return torch.zeros(batch, size, dtype=torch.float64), torch.zeros(batch, size, dtype=torch.float64)

    def step(self, inflow, volumes, stage, hidden):
        h, c = self.encoder(inflow / self.inflow_scale, hidden)
        rest = self.features(inflow, volumes, stage)[:, self.num_hydros:]
        z = self.combiner(torch.cat([h, rest], dim=1))
        return self.lower + self.span * torch.sigmoid(z), (h, c)


class LinearPolicy(TargetPolicy):
    """TS-LDR: targets affine in ``[inflow_t, volumes_{t-1}, one_hot(t)]`` (per-stage intercepts), unbounded
    (the slack absorbs infeasible targets, as in the authors' identity-activation LDR). Starts at mid-range."""

    def __init__(self, lower, upper, inflow_scale, num_stages: int, hidden_sizes: Sequence[int] = ()) -> None:
        super().__init__(lower, upper, inflow_scale, num_stages)
        self.linear = nn.Linear(2 * self.num_hydros + num_stages, self.num_hydros).double()
        nn.init.zeros_(self.linear.weight)
        nn.init.constant_(self.linear.bias, 0.5)

    def step(self, inflow, volumes, stage, hidden):
        return self.lower + self.span * self.linear(self.features(inflow, volumes, stage)), hidden


POLICY_CLASSES: dict[str, type[TargetPolicy]] = {"mlp": MLPPolicy, "lstm": LSTMPolicy, "linear": LinearPolicy}
"""The names of ``TSDDR(policy=...)`` and the classes they build."""
