"""TS-DDR: Two-Stage Deep Decision Rules for long-term hydrothermal dispatch (and TS-LDR, its linear baseline).

Paper: Rosemberg, Street, Valladao, Van Hentenryck (2024), "Two-Stage Deep Decision Rules", arXiv:2405.14973.
Authors' code (Julia): github.com/LearningToOptimize/DecisionRules.jl (read for facts, not copied).

A policy network maps (inflow of the stage, previous volumes, stage) to *target* end volumes. An LP (HiGHS, see
``envs.hydro.lp``) projects the targets onto the feasible dispatch with a slack-penalised constraint
``v_t + z+ - z- = target_t``; by the envelope theorem the dual of that row is d cost / d target, which is the
gradient handed to the network (a custom autograd function, no differentiation through the solver).

Two training modes, as in the authors' code:

* ``mode="stage"`` (single shooting, ``simulate_multistage(subproblems, ...)``): one LP per stage, rolled forward on
  the *realised* volumes. The gradient of stage ``t``'s cost flows to its target (target dual ``lambda_t``) and to
  its incoming volumes (water-balance dual ``mu_t``), and the realised volumes of stage ``t`` depend on the target
  and on the incoming volumes (the authors take that Jacobian from DiffOpt); so earlier targets are credited with
  the cost their water causes later.
* ``mode="horizon"`` (deterministic equivalent, ``deterministic_equivalent!``): the policy emits all ``T`` targets
  for the scenario feeding back its own previous *target* (the authors' ``policy_state=:target``), one LP chains
  the whole horizon, and the target duals of all stages are the gradient.

Both modes are evaluated the deployed way: stage by stage on realised volumes (the authors' ``:realized``), with
the case's ``target_penalty``; the reported cost is the operating cost (thermal + deficit), without the penalty.

Penalty schedule (authors' ``default_annealed_schedule``): the target penalty is ``multiplier * base`` with the
multiplier ``0.1 -> 1 -> 10 -> 30`` over phases of 2/24, 2/24, 4/24 and the remaining 16/24 of all training batches;
the base defaults to the largest cost coefficient of the LP (the authors' ``penalty=:auto``).
Optimiser: Adam, learning rate 1e-3 (Flux's ``Adam()`` default); one scenario per batch, 100 batches per epoch.

Deliberate deviations (each also noted where it is made):

* The MLP and LSTM policies squash their output into ``[min_volume, max_volume]`` with a sigmoid (the authors
  output unbounded targets and let the slack absorb them); the linear rule (TS-LDR) stays affine and unbounded.
* The policies also see the stage (a one-hot vector): a stationary MLP cannot otherwise follow the seasonal
  demand and inflow of a 12-stage year. The authors' MLP sees only ``[inflow_t, volumes_{t-1}]``.
* The realised-volume Jacobian of the stage mode is computed by one-sided finite differences of the stage LP
  (``2 * num_hydros`` extra solves per stage) instead of DiffOpt; the LP is piecewise linear, so this is exact
  unless a breakpoint lies within the step.
* The target-violation share is reported two ways: the share of (stage, plant) pairs with ``|slack| > tol``
  (this benchmark's definition) and the penalty's share of the objective (the authors' definition).

Data split: the last ``holdout_fraction`` (default 25%) of the case's scenarios are held out for evaluation; the
training scenarios are drawn from the others, stage by stage independently (``sampler="stagewise"``, as the
authors' ``DecisionRules.sample`` does) or as whole scenarios (``sampler="scenario"``).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import pickle
import sys
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from envs.hydro import (
    HydroSystem,
    SystemDataError,
    UnknownCaseError,
    case_path,
    load_system,
    solve_horizon_with_targets,
    solve_perfect_foresight,
    solve_stage,
)
from envs.hydro.lp import HydroLPError

ANNEALED_MULTIPLIERS = (0.1, 1.0, 10.0, 30.0)
"""The authors' default annealed schedule: warm-up, nominal, tighten, lock."""
ANNEALED_PHASE_FRACTIONS = (2 / 24, 2 / 24, 4 / 24)
"""Lengths of the first three phases as shares of all batches; the last phase takes the rest."""
MODES = ("stage", "horizon")
POLICIES = ("mlp", "lstm", "linear")
SAMPLERS = ("stagewise", "scenario")
CHECKPOINT_READ_ERRORS: tuple[type[BaseException], ...] = (
    EOFError, OSError, RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, KeyError, IndexError, TypeError,
    ValueError, AttributeError, ImportError,
)
"""What ``torch.load`` and applying its state raise for a truncated or foreign file (a cut zip archive: RuntimeError
or OSError; a cut pickle: EOFError or UnpicklingError; a pickle naming missing classes: AttributeError/ImportError)."""


class TSDDRConfigError(ValueError):
    """A TS-DDR / SDDP setting is invalid; the message names the setting and the accepted values."""


# --------------------------------------------------------------------------------------------- schedule


def annealed_penalty_schedule(num_batches: int) -> list[tuple[int, int, float]]:
    """``(first_batch, last_batch, multiplier)`` phases (0-based, inclusive) of the authors' annealed schedule.

    With fewer than 4 batches, the last ``num_batches`` multipliers are used one batch each, so a run always
    ends in the strongest phase (as in the authors' code).
    """
    if num_batches < 1:
        raise TSDDRConfigError(f"num_batches: must be >= 1, got {num_batches}")
    n = len(ANNEALED_MULTIPLIERS)
    if num_batches < n:
        return [(i, i, m) for i, m in enumerate(ANNEALED_MULTIPLIERS[n - num_batches:])]
    lengths = [max(1, round(num_batches * f)) for f in ANNEALED_PHASE_FRACTIONS]
    excess = sum(lengths) + 1 - num_batches
    for i in reversed(range(len(lengths))):
        take = min(lengths[i] - 1, max(excess, 0))
        lengths[i] -= take
        excess -= take
    lengths.append(num_batches - sum(lengths))
    phases, first = [], 0
    for length, multiplier in zip(lengths, ANNEALED_MULTIPLIERS):
        phases.append((first, first + length - 1, multiplier))
        first += length
    return phases


def penalty_multiplier(schedule: list[tuple[int, int, float]] | None, batch: int) -> float:
    """The multiplier of the phase holding ``batch`` (1.0 without a schedule; the last phase past its end)."""
    if not schedule:
        return 1.0
    for first, last, multiplier in schedule:
        if first <= batch <= last:
            return multiplier
    return schedule[-1][2]


def auto_penalty_base(system: HydroSystem) -> float:
    """The largest cost coefficient of the stage LP (the authors' ``penalty=:auto``)."""
    return max([system.deficit_cost, *[u.cost for u in system.thermals], 1.0])


# ------------------------------------------------------------------------------------------- scenarios


def split_scenarios(num_scenarios: int, holdout_fraction: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """(training, held-out) scenario indices: the last ``ceil(fraction * S)`` scenarios are held out.

    Raises:
        TSDDRConfigError: the fraction is outside [0, 1) or leaves no training scenario.
    """
    if not 0.0 <= holdout_fraction < 1.0:
        raise TSDDRConfigError(f"holdout_fraction: must be in [0, 1), got {holdout_fraction}")
    held = math.ceil(holdout_fraction * num_scenarios)
    if held >= num_scenarios:
        raise TSDDRConfigError(
            f"holdout_fraction: {holdout_fraction} of {num_scenarios} scenarios leaves none for training"
        )
    indices = np.arange(num_scenarios)
    return indices[: num_scenarios - held], indices[num_scenarios - held:]


def sample_stagewise(inflows: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` scenarios whose stage-``t`` inflow is drawn independently from the stage-``t`` values of
    ``inflows`` (shape ``(S, T, n)``): the stagewise-independent model of the authors' sampler and of SDDP."""
    num_scenarios, num_stages, _ = inflows.shape
    picks = rng.integers(num_scenarios, size=(count, num_stages))
    return inflows[picks, np.arange(num_stages)[None, :]]


# -------------------------------------------------------------------------------------------- policies


class TargetPolicy(nn.Module):
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

    def step(self, inflow: torch.Tensor, volumes: torch.Tensor, stage: int, hidden: Any) -> tuple[torch.Tensor, Any]:
        raise NotImplementedError


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


_POLICY_CLASSES = {"mlp": MLPPolicy, "lstm": LSTMPolicy, "linear": LinearPolicy}


# ------------------------------------------------------------------------------------------- LP layers


def _volume_jacobians(
    system: HydroSystem, stage: int, v_in: np.ndarray, inflow: np.ndarray, target: np.ndarray,
    penalty: float, volumes: np.ndarray, step: float,
) -> tuple[np.ndarray, np.ndarray]:
    """d realised volumes / d (v_in, target) by one-sided finite differences of the stage LP.

    Deviation: the authors use DiffOpt; the LP is piecewise linear, so a small forward step is exact unless a
    breakpoint lies within it.
    """
    n = len(v_in)
    steps = step * np.array([max(h.max_volume - h.min_volume, 1.0) for h in system.hydros])
    jac_in, jac_target = np.zeros((n, n)), np.zeros((n, n))
    for j in range(n):
        e = np.zeros(n)
        e[j] = steps[j]
        moved = solve_stage(system, stage, volumes_in=v_in + e, inflow=inflow, target=target, target_penalty=penalty)
        jac_in[:, j] = (moved.volumes - volumes) / steps[j]
        moved = solve_stage(system, stage, volumes_in=v_in, inflow=inflow, target=target + e, target_penalty=penalty)
        jac_target[:, j] = (moved.volumes - volumes) / steps[j]
    return jac_in, jac_target


class _StageLP(torch.autograd.Function):
    """Batched stage LP: ``(v_in, target) -> (objective, realised volumes, operating cost)``; the backward pass
    uses the duals.

    d objective / d target = target-row dual, d objective / d v_in = water-balance dual (envelope theorem); the
    realised volumes' Jacobians carry the gradient of later stages back (see :func:`_volume_jacobians`).
    """

    @staticmethod
    def forward(ctx, v_in, target, system, stage, inflow, penalty, fd_step, transition):  # noqa: D102
        b, n = target.shape
        objective, operating, volumes = np.zeros(b), np.zeros(b), np.zeros((b, n))
        lam, mu = np.zeros((b, n)), np.zeros((b, n))
        jac_in, jac_target = np.zeros((b, n, n)), np.zeros((b, n, n))
        v_np, t_np = v_in.detach().numpy(), target.detach().numpy()
        for k in range(b):
            sol = solve_stage(system, stage, volumes_in=v_np[k], inflow=inflow[k], target=t_np[k],
                              target_penalty=penalty)
            objective[k], operating[k], volumes[k] = sol.objective, sol.operating_cost, sol.volumes
            lam[k], mu[k] = sol.target_duals, sol.water_value
            if transition:
                jac_in[k], jac_target[k] = _volume_jacobians(
                    system, stage, v_np[k], inflow[k], t_np[k], penalty, sol.volumes, fd_step)
        ctx.save_for_backward(*(torch.as_tensor(a) for a in (lam, mu, jac_in, jac_target)))
        operating = torch.as_tensor(operating)
        ctx.mark_non_differentiable(operating)
        return torch.as_tensor(objective), torch.as_tensor(volumes), operating

    @staticmethod
    def backward(ctx, grad_objective, grad_volumes, _grad_operating):  # noqa: D102
        lam, mu, jac_in, jac_target = ctx.saved_tensors
        grad_v_in = grad_objective[:, None] * mu + torch.einsum("bi,bij->bj", grad_volumes, jac_in)
        grad_target = grad_objective[:, None] * lam + torch.einsum("bi,bij->bj", grad_volumes, jac_target)
        return grad_v_in, grad_target, None, None, None, None, None, None


@dataclass(frozen=True)
class Rollout:
    """A policy deployed on one scenario, stage by stage on realised volumes."""

    targets: np.ndarray
    volumes: np.ndarray
    stage_costs: np.ndarray
    """Operating cost (thermal + deficit) per stage."""
    penalty_costs: np.ndarray
    target_slack: np.ndarray

    @property
    def cost(self) -> float:
        return float(self.stage_costs.sum())


# ------------------------------------------------------------------------------------------- algorithm


class TSDDR:
    """Two-Stage Deep Decision Rules (Rosemberg et al., 2024, arXiv:2405.14973) for ``envs.hydro`` systems.

    Not an SB3 algorithm: there is no environment interaction; training solves LPs and follows their duals.

    :param system: the hydrothermal system.
    :param mode: ``"stage"`` (one LP per stage, realised-state feedback) or ``"horizon"`` (one LP per scenario,
        the policy feeds back its own targets).
    :param policy: ``"mlp"`` (default), ``"lstm"`` (the authors' hydro policy) or ``"linear"`` (TS-LDR).
    :param hidden_sizes: hidden layer widths (the LSTM uses the first as its cell size).
    :param learning_rate: Adam step size (authors: 1e-3).
    :param batch_size: scenarios per gradient step (authors: 1).
    :param batches_per_epoch: gradient steps per epoch (authors: 100).
    :param penalty_schedule: ``"annealed"`` (authors' default) or ``"constant"``.
    :param penalty_base: the penalty the schedule multiplies; default :func:`auto_penalty_base`.
    :param eval_penalty: target penalty for evaluation/deployment; default the case's ``target_penalty``.
    :param sampler: ``"stagewise"`` (authors) or ``"scenario"``: how training scenarios are drawn.
    :param holdout_fraction: share of the case's scenarios held out for evaluation (the last ones).
    :param transition_gradient: stage mode only: back-propagate through the realised volumes (authors: yes).
    :param fd_step: finite-difference step for the volume Jacobians, as a share of each reservoir's range.
    :param violation_tolerance: ``|slack|`` above this share of the reservoir range counts as a violated target.
    :param seed: seeds torch and the scenario sampler.
    :param case: the case name or path (recorded for save/load).
    """

    policy_aliases = _POLICY_CLASSES

    def __init__(
        self,
        system: HydroSystem,
        *,
        mode: str = "stage",
        policy: str = "mlp",
        hidden_sizes: Sequence[int] = (64, 64),
        learning_rate: float = 1e-3,
        batch_size: int = 1,
        batches_per_epoch: int = 100,
        penalty_schedule: str = "annealed",
        penalty_base: float | None = None,
        eval_penalty: float | None = None,
        sampler: str = "stagewise",
        holdout_fraction: float = 0.25,
        transition_gradient: bool = True,
        fd_step: float = 1e-4,
        violation_tolerance: float = 1e-3,
        seed: int = 0,
        case: str | None = None,
    ) -> None:
        _choice("mode", mode, MODES)
        _choice("policy", policy, POLICIES)
        _choice("penalty_schedule", penalty_schedule, ("annealed", "constant"))
        _choice("sampler", sampler, SAMPLERS)
        for name, value in (("learning_rate", learning_rate), ("fd_step", fd_step)):
            if not value > 0:
                raise TSDDRConfigError(f"{name}: must be > 0, got {value}")
        for name, value in (("batch_size", batch_size), ("batches_per_epoch", batches_per_epoch)):
            if int(value) < 1:
                raise TSDDRConfigError(f"{name}: must be an integer >= 1, got {value}")
        if policy != "linear" and (not list(hidden_sizes) or any(int(h) < 1 for h in hidden_sizes)):
            raise TSDDRConfigError(
                f"hidden_sizes: the {policy} policy needs at least one hidden size >= 1 (e.g. --hidden 64 64), got "
                f"{list(hidden_sizes)}; for a policy without hidden layers use --policy linear (TS-LDR)"
            )
        if not system.hydros:
            raise SystemDataError("hydros: TS-DDR needs at least one hydro plant (the targets are reservoir volumes)")
        self.system = system
        self.config: dict[str, Any] = dict(
            mode=mode, policy=policy, hidden_sizes=list(hidden_sizes), learning_rate=learning_rate,
            batch_size=int(batch_size), batches_per_epoch=int(batches_per_epoch), penalty_schedule=penalty_schedule,
            penalty_base=auto_penalty_base(system) if penalty_base is None else float(penalty_base),
            eval_penalty=system.target_penalty if eval_penalty is None else float(eval_penalty),
            sampler=sampler, holdout_fraction=holdout_fraction, transition_gradient=transition_gradient,
            fd_step=fd_step, violation_tolerance=violation_tolerance, seed=int(seed),
            case=None if case is None else str(case),
        )
        self.train_indices, self.holdout_indices = split_scenarios(system.num_scenarios, holdout_fraction)
        self._setup_model()

    def _setup_model(self) -> None:
        """Seed, build the policy (normalised by the training inflows) and Adam."""
        torch.manual_seed(self.config["seed"])
        self.rng = np.random.default_rng(self.config["seed"])
        lower = np.array([h.min_volume for h in self.system.hydros])
        upper = np.array([h.max_volume for h in self.system.hydros])
        scale = self.system.inflows[self.train_indices].mean(axis=(0, 1))
        scale = np.where(scale > 1e-9, scale, 1.0)
        cls = _POLICY_CLASSES[self.config["policy"]]
        self.policy: TargetPolicy = cls(lower, upper, scale, self.system.num_stages, self.config["hidden_sizes"])
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=self.config["learning_rate"])
        self.epoch = 0
        self.history: list[dict[str, float]] = []

    # ------------------------------------------------------------------ training

    def sample_training_inflows(self, count: int) -> np.ndarray:
        """``count`` training scenarios, shape ``(count, T, n)``, drawn from the training split."""
        train = self.system.inflows[self.train_indices]
        if self.config["sampler"] == "stagewise":
            return sample_stagewise(train, count, self.rng)
        return train[self.rng.integers(len(train), size=count)]

    def _penalty(self, batch: int, total_batches: int) -> float:
        schedule = annealed_penalty_schedule(total_batches) if self.config["penalty_schedule"] == "annealed" else None
        return self.config["penalty_base"] * penalty_multiplier(schedule, batch)

    def _stage_loss(self, inflows: np.ndarray, penalty: float) -> tuple[torch.Tensor, float]:
        """Single shooting: roll the policy and the stage LPs forward on realised volumes; sum the objectives."""
        b = inflows.shape[0]
        volumes = torch.as_tensor(np.tile(self.system.initial_volumes, (b, 1)))
        hidden = self.policy.initial_hidden(b)
        total = torch.zeros(b, dtype=torch.float64)
        operating = 0.0
        for t in range(self.system.num_stages):
            inflow = torch.as_tensor(inflows[:, t])
            target, hidden = self.policy.step(inflow, volumes, t, hidden)
            objective, volumes, stage_operating = _StageLP.apply(
                volumes, target, self.system, t, inflows[:, t], penalty, self.config["fd_step"],
                self.config["transition_gradient"])
            total = total + objective
            operating += float(stage_operating.sum())
        return total.mean(), operating / b

    def _horizon_targets(self, inflows: np.ndarray) -> torch.Tensor:
        """All ``T`` targets, the policy feeding back its previous target (authors' deterministic equivalent)."""
        b = inflows.shape[0]
        previous = torch.as_tensor(np.tile(self.system.initial_volumes, (b, 1)))
        hidden = self.policy.initial_hidden(b)
        targets = []
        for t in range(self.system.num_stages):
            previous, hidden = self.policy.step(torch.as_tensor(inflows[:, t]), previous, t, hidden)
            targets.append(previous)
        return torch.stack(targets, dim=1)

    def _horizon_loss(self, inflows: np.ndarray, penalty: float) -> tuple[torch.Tensor, float]:
        """Deterministic equivalent: one LP per scenario; surrogate ``sum_t lambda_t . target_t`` carries the
        duals as the gradient and the objective as its value."""
        targets = self._horizon_targets(inflows)
        fixed = targets.detach().numpy()
        objectives, duals, operating = [], [], 0.0
        for k in range(inflows.shape[0]):
            sol = solve_horizon_with_targets(self.system, inflows=inflows[k], targets=fixed[k], target_penalty=penalty)
            objectives.append(sol.objective)
            duals.append(sol.target_duals)
            operating += sol.operating_cost
        lam = torch.as_tensor(np.array(duals))
        surrogate = (lam * (targets - targets.detach())).sum(dim=(1, 2)) + torch.as_tensor(objectives)
        return surrogate.mean(), operating / inflows.shape[0]

    def train_step(self, inflows: np.ndarray, penalty: float) -> tuple[float, float]:
        """One Adam step on a batch of scenarios; returns (objective with penalty, operating cost), batch means."""
        self.optimizer.zero_grad()
        loss_fn = self._stage_loss if self.config["mode"] == "stage" else self._horizon_loss
        loss, operating = loss_fn(inflows, penalty)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach()), operating

    def learn(
        self,
        epochs: int,
        *,
        run_dir: str | Path | None = None,
        progress: bool = True,
        evaluate_every: int = 1,
        stop_after: int | None = None,
    ) -> list[dict[str, float]]:
        """Train until ``epochs`` epochs are done (continuing from ``self.epoch`` after a resume).

        The penalty schedule spans all ``epochs``; ``stop_after`` ends this call after that many more epochs
        (a time-boxed job), and a later ``learn(epochs)`` on the loaded checkpoint continues the same schedule.

        Each epoch records the mean training objective and operating cost, and (every ``evaluate_every``
        epochs) the held-out operating cost; with ``run_dir`` it writes ``progress.csv``, ``history.json`` and
        an atomic ``checkpoint.pt`` after every epoch.
        """
        from tqdm.auto import tqdm

        if int(epochs) < 1:
            raise TSDDRConfigError(f"epochs: must be an integer >= 1, got {epochs}")
        self.config["epochs"] = int(epochs)
        per_epoch, total = self.config["batches_per_epoch"], int(epochs) * self.config["batches_per_epoch"]
        bar = tqdm(total=total, initial=self.epoch * per_epoch, disable=not progress, desc="TS-DDR", unit="batch")
        last = epochs if stop_after is None else min(epochs, self.epoch + int(stop_after))
        while self.epoch < last:
            start = time.perf_counter()
            objectives, operating = [], []
            for k in range(per_epoch):
                penalty = self._penalty(self.epoch * per_epoch + k, total)
                obj, op = self.train_step(self.sample_training_inflows(self.config["batch_size"]), penalty)
                objectives.append(obj)
                operating.append(op)
                bar.update(1)
            self.epoch += 1
            row = {"epoch": self.epoch, "train_objective": float(np.mean(objectives)),
                   "train_cost": float(np.mean(operating)), "penalty": penalty,
                   "epoch_seconds": time.perf_counter() - start}
            if len(self.holdout_indices) and (self.epoch % evaluate_every == 0 or self.epoch == epochs):
                row["holdout_cost"] = self.evaluate(self.holdout_indices)["cost_mean"]
            self.history.append(row)
            bar.set_postfix(train=f"{row['train_cost']:.4g}", holdout=f"{row.get('holdout_cost', float('nan')):.4g}")
            if run_dir is not None:
                self._write_progress(Path(run_dir))
        bar.close()
        return self.history

    # ---------------------------------------------------------------- deployment

    @torch.no_grad()
    def rollout(self, inflows: np.ndarray, *, target_penalty: float | None = None) -> Rollout:
        """Deploy the policy on one scenario ``(T, n)``: stage by stage, realised volumes fed back."""
        inflows = np.asarray(inflows, dtype=float)
        penalty = self.config["eval_penalty"] if target_penalty is None else float(target_penalty)
        volumes = self.system.initial_volumes
        hidden = self.policy.initial_hidden(1)
        targets, realised, costs, penalties, slack = [], [], [], [], []
        for t in range(self.system.num_stages):
            target, hidden = self.policy.step(torch.as_tensor(inflows[None, t]), torch.as_tensor(volumes[None]), t,
                                              hidden)
            target = target[0].numpy()
            sol = solve_stage(self.system, t, volumes_in=volumes, inflow=inflows[t], target=target,
                              target_penalty=penalty)
            volumes = sol.volumes
            targets.append(target)
            realised.append(volumes)
            costs.append(sol.operating_cost)
            penalties.append(sol.penalty_cost)
            slack.append(sol.target_slack)
        return Rollout(np.array(targets), np.array(realised), np.array(costs), np.array(penalties), np.array(slack))

    def predict(self, inflows: np.ndarray) -> np.ndarray:
        """Target volumes ``(T, n)`` the deployed policy sets on scenario ``inflows`` ``(T, n)``."""
        return self.rollout(inflows).targets

    def evaluate(self, scenarios: Sequence[int] | np.ndarray) -> dict[str, float]:
        """Out-of-sample statistics over scenario indices (1-d) or inflow arrays ``(S, T, n)``.

        Returns the mean/std operating cost, both target-violation shares and the inference time per scenario.
        """
        scenarios = np.asarray(scenarios)
        inflows = self.system.inflows[scenarios] if scenarios.ndim == 1 else scenarios.astype(float)
        spans = np.array([max(h.max_volume - h.min_volume, 1e-9) for h in self.system.hydros])
        start = time.perf_counter()
        rollouts = [self.rollout(s) for s in inflows]
        seconds = (time.perf_counter() - start) / max(len(rollouts), 1)
        costs = np.array([r.cost for r in rollouts])
        slack = np.array([np.abs(r.target_slack) / spans for r in rollouts])
        penalty = np.array([r.penalty_costs.sum() for r in rollouts])
        return {
            "cost_mean": float(costs.mean()),
            "cost_std": float(costs.std()),
            "costs": costs.tolist(),
            "violation_share": float((slack > self.config["violation_tolerance"]).mean()),
            "penalty_share": max(float(penalty.sum() / max(penalty.sum() + costs.sum(), 1e-12)), 0.0),
            "inference_seconds_per_scenario": seconds,
        }

    # ------------------------------------------------------------ save and load

    def _state(self, with_optimizer: bool) -> dict[str, Any]:
        state = {"config": self.config, "policy": self.policy.state_dict(), "epoch": self.epoch,
                 "history": self.history}
        if with_optimizer:
            state.update(optimizer=self.optimizer.state_dict(), rng=self.rng.bit_generator.state,
                         torch_rng=torch.get_rng_state())
        return state

    def save(self, path: str | Path) -> Path:
        """Write the policy and its configuration to ``path`` (atomic: temporary file, then rename)."""
        return _torch_save_atomic(self._state(with_optimizer=False), Path(path))

    @classmethod
    def load(cls, path: str | Path, system: HydroSystem | None = None) -> TSDDR:
        """Load a saved model (or checkpoint); the system is re-read from the recorded case unless given."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no TS-DDR model at {str(path)!r}")
        def damaged(error: BaseException) -> TSDDRConfigError:
            return TSDDRConfigError(
                f"{str(path)!r} is truncated or not a TS-DDR checkpoint ({type(error).__name__}): delete it to start "
                "the run over, or resume from a copy made before it was damaged"
            )

        try:
            state = torch.load(path, weights_only=False)
            config = dict(state["config"])
        except CHECKPOINT_READ_ERRORS as error:
            raise damaged(error) from error
        if system is None:
            if not config.get("case"):
                raise TSDDRConfigError(f"{path}: no case recorded; pass system= to load()")
            system = load_system(case_path(config["case"]))
        epochs = config.pop("epochs", None)
        try:
            model = cls(system, **config)
        except TypeError as error:  # settings this TSDDR does not take
            raise damaged(error) from error
        if epochs is not None:
            model.config["epochs"] = epochs
        try:  # a file that unpickles but whose tensors or generator states are cut short or of another model
            model.policy.load_state_dict(state["policy"])
            model.epoch, model.history = int(state.get("epoch", 0)), list(state.get("history", []))
            if "optimizer" in state:
                model.optimizer.load_state_dict(state["optimizer"])
                model.rng.bit_generator.state = state["rng"]
                torch.set_rng_state(state["torch_rng"])
        except CHECKPOINT_READ_ERRORS as error:
            raise damaged(error) from error
        return model

    def _write_progress(self, run_dir: Path) -> None:
        """Per-epoch records (csv + json) and the atomic resumable checkpoint."""
        from rl.checkpoint import write_json_atomic

        run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(run_dir / "history.json", self.history)
        keys = sorted({k for row in self.history for k in row}, key=lambda k: (k != "epoch", k))
        tmp = run_dir / f".progress.csv.{os.getpid()}.tmp"
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.history)
        os.replace(tmp, run_dir / "progress.csv")
        _torch_save_atomic(self._state(with_optimizer=True), run_dir / "checkpoint.pt")


class TSLDR(TSDDR):
    """TS-LDR: the same training with an affine decision rule (``policy="linear"``), the paper's baseline."""

    def __init__(self, system: HydroSystem, **kwargs: Any) -> None:
        kwargs["policy"] = "linear"
        kwargs.setdefault("hidden_sizes", ())
        super().__init__(system, **kwargs)


# ---------------------------------------------------------------------------------------------- helpers


def _choice(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise TSDDRConfigError(f"{name}: must be one of {list(allowed)}, got {value!r}")


def _torch_save_atomic(data: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(data, tmp)
    os.replace(tmp, path)
    return path


def perfect_foresight_costs(system: HydroSystem, scenarios: Sequence[int]) -> np.ndarray:
    """Perfect-foresight (clairvoyant) operating cost per scenario index: a lower bound for any policy."""
    return np.array([solve_perfect_foresight(system, scenario=int(k)).objective for k in scenarios])


def next_run_dir(log_folder: str | Path, algo: str, case: str) -> Path:
    """``<log_folder>/<algo>/<case>_<n+1>`` (the runner's convention, without importing SB3)."""
    base = Path(log_folder) / algo
    stem = Path(case).stem
    ids = [int(p.name.rsplit("_", 1)[1]) for p in base.glob(f"{stem}_*") if p.name.rsplit("_", 1)[1].isdigit()]
    return base / f"{stem}_{max(ids, default=0) + 1}"


def plot_learning_curve(history: list[dict[str, float]], path: Path, *, reference: float | None = None,
                        title: str = "TS-DDR") -> Path:
    """Training and held-out operating cost per epoch (and the held-out perfect-foresight mean, if given)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = [row["epoch"] for row in history]
    ax.plot(epochs, [row["train_cost"] for row in history], label="train (operating cost)")
    held = [(row["epoch"], row["holdout_cost"]) for row in history if "holdout_cost" in row]
    if held:
        ax.plot(*zip(*held), marker="o", label="held-out (deployed)")
    if reference is not None:
        ax.axhline(reference, color="gray", linestyle="--", label="perfect foresight (held-out)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cost per scenario")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def train_run(
    case: str,
    *,
    epochs: int,
    seed: int = 0,
    log_folder: str | Path = "logs",
    resume: str | Path | None = None,
    progress: bool = True,
    **kwargs: Any,
) -> Path:
    """Train TS-DDR on a case in a run folder ``<log_folder>/tsddr/<case>_<n>`` (or continue ``resume``).

    Writes ``config.json``, ``progress.csv``, ``history.json``, ``checkpoint.pt`` (per epoch), ``model.pt``,
    ``learning_curve.png`` and ``results.json`` (held-out cost, violation shares, timings, perfect foresight).
    """
    from rl.checkpoint import write_json_atomic
    from rl.run_record import command_line, package_versions

    if not isinstance(epochs, int) or epochs < 1:  # before a run folder exists: a failed start leaves none
        raise TSDDRConfigError(f"epochs: must be an integer >= 1, got {epochs}")
    if resume is not None:
        run_dir = Path(resume)
        if not (run_dir / "checkpoint.pt").is_file():
            raise FileNotFoundError(f"{str(run_dir)!r} has no checkpoint.pt to resume from")
        model = TSDDR.load(run_dir / "checkpoint.pt")
    else:
        system = load_system(case_path(case))
        model = TSDDR(system, seed=seed, case=str(case), **kwargs)
        run_dir = next_run_dir(log_folder, "tsddr", str(case))
        run_dir.mkdir(parents=True)
        write_json_atomic(run_dir / "config.json", {**model.config, "epochs": epochs, "command": command_line(),
                                                    "versions": package_versions(),
                                                    "train_scenarios": model.train_indices.tolist(),
                                                    "holdout_scenarios": model.holdout_indices.tolist()})
    start = time.perf_counter()
    model.learn(epochs, run_dir=run_dir, progress=progress)
    training_seconds = time.perf_counter() - start
    model.save(run_dir / "model.pt")
    results = {"training_seconds": training_seconds, "epochs": model.epoch}
    if len(model.holdout_indices):
        pf = perfect_foresight_costs(model.system, model.holdout_indices)
        evaluation = model.evaluate(model.holdout_indices)
        results.update(holdout=evaluation, perfect_foresight_holdout_mean=float(pf.mean()),
                       perfect_foresight_holdout=pf.tolist())
        plot_learning_curve(model.history, run_dir / "learning_curve.png", reference=float(pf.mean()),
                            title=f"TS-DDR ({model.config['policy']}, {model.config['mode']}) on {case}")
    write_json_atomic(run_dir / "results.json", results)
    return run_dir


# -------------------------------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m algos.tsddr", description="Train TS-DDR / TS-LDR on a hydro case.")
    parser.add_argument("--case", default="toy", help="case name (envs/hydro/cases/<name>.json) or JSON path")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mode", choices=MODES, default="stage")
    parser.add_argument("--policy", choices=POLICIES, default="mlp", help="linear = TS-LDR")
    parser.add_argument("--hidden", type=int, nargs="*", default=None, help="hidden sizes (default 64 64)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--batches-per-epoch", type=int, default=100)
    parser.add_argument("--penalty-schedule", choices=("annealed", "constant"), default="annealed")
    parser.add_argument("--sampler", choices=SAMPLERS, default="stagewise")
    parser.add_argument("--holdout-fraction", type=float, default=0.25)
    parser.add_argument("--no-transition-gradient", action="store_true",
                        help="stage mode: do not back-propagate through the realised volumes")
    parser.add_argument("-f", "--log-folder", default="logs")
    parser.add_argument("--resume", default=None, help="run folder to continue (its checkpoint.pt)")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m algos.tsddr``; user errors print one line and exit 2."""
    args = build_parser().parse_args(argv)
    kwargs: dict[str, Any] = dict(
        mode=args.mode, policy=args.policy, learning_rate=args.lr, batch_size=args.batch_size,
        batches_per_epoch=args.batches_per_epoch, penalty_schedule=args.penalty_schedule, sampler=args.sampler,
        holdout_fraction=args.holdout_fraction, transition_gradient=not args.no_transition_gradient)
    if args.hidden is not None:
        kwargs["hidden_sizes"] = args.hidden
    elif args.policy == "linear":
        kwargs["hidden_sizes"] = ()
    try:
        run_dir = train_run(args.case, epochs=args.epochs, seed=args.seed, log_folder=args.log_folder,
                            resume=args.resume, progress=not args.no_progress, **kwargs)
    except (UnknownCaseError, SystemDataError, TSDDRConfigError, HydroLPError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"run folder: {run_dir}")
    return 0


if __name__ == "__main__":
    # Run the importable module, not this ``__main__`` copy: what it pickles must name
    # ``algos.tsddr``'s classes to load elsewhere, and its isinstance checks must see one class.
    from algos.tsddr import main as module_main

    sys.exit(module_main())
