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
* The target-violation share is reported two ways: the share of (stage, plant) pairs with
  ``|slack| > VIOLATION_TOLERANCE x`` the plant's range (:data:`envs.hydro.system.VIOLATION_TOLERANCE`, the
  definition the env, SDDP's evaluation and the benchmark share) and the penalty's share of the objective (the
  authors' definition).

Data split: the last ``holdout_fraction`` (default 25%) of the case's scenarios are held out for evaluation; the
training scenarios are drawn from the others, stage by stage independently (``sampler="stagewise"``, as the
authors' ``DecisionRules.sample`` does) or as whole scenarios (``sampler="scenario"``).

Layout: this module is the algorithm (:class:`TSDDR`, :class:`TSLDR`, the penalty schedule, deployment, save and
load, and :class:`TSDDRConfigError` for its bad settings); the decision rules are in :mod:`algos.tsddr_policies`, the
differentiable stage LP in :mod:`algos.tsddr_lp`, the scenario split, stagewise sampler, evaluation statistics and
perfect-foresight bound it shares with SDDP in :mod:`algos.hydro_common`, and the run folders and CLI
(``python -m algos.tsddr``) in :mod:`algos.tsddr_cli`.
"""

from __future__ import annotations

import csv
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

from algos.hydro_common import (
    HydroConfigError,
    policy_statistics,
    sample_stagewise,
    scenario_inflows,
    split_scenarios,
)
from algos.tsddr_lp import StageLP
from algos.tsddr_policies import POLICY_CLASSES, TargetPolicy
from envs.hydro import (
    HydroSystem,
    SystemDataError,
    case_path,
    load_system,
    solve_horizon_with_targets,
    solve_stage,
)

ANNEALED_MULTIPLIERS = (0.1, 1.0, 10.0, 30.0)
"""The authors' default annealed schedule: warm-up, nominal, tighten, lock."""
ANNEALED_PHASE_FRACTIONS = (2 / 24, 2 / 24, 4 / 24)
"""Lengths of the first three phases as shares of all batches; the last phase takes the rest."""
MODES = ("stage", "horizon")
POLICIES = tuple(POLICY_CLASSES)
"""``("mlp", "lstm", "linear")``; ``"linear"`` is TS-LDR."""
SAMPLERS = ("stagewise", "scenario")
CHECKPOINT_READ_ERRORS: tuple[type[BaseException], ...] = (
    EOFError, OSError, RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, KeyError, IndexError, TypeError,
    ValueError, AttributeError, ImportError,
)
"""What ``torch.load`` and applying its state raise for a truncated or foreign file (a cut zip archive: RuntimeError
or OSError; a cut pickle: EOFError or UnpicklingError; a pickle naming missing classes: AttributeError/ImportError)."""


class TSDDRConfigError(HydroConfigError):
    """A TS-DDR / TS-LDR setting or checkpoint is invalid; the message names it and what is accepted."""


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
    :param seed: seeds torch and the scenario sampler.
    :param case: the case name or path (recorded for save/load).
    """

    policy_aliases = POLICY_CLASSES

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
            fd_step=fd_step, seed=int(seed),
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
        scale = self.system.inflow_scale(self.train_indices)
        cls = POLICY_CLASSES[self.config["policy"]]
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
            objective, volumes, stage_operating = StageLP.apply(
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

        Returns :func:`algos.hydro_common.policy_statistics` (mean/std operating cost, the share of missed targets,
        the inference time per scenario) and the penalty's share of the objective (the authors' violation measure).
        """
        start = time.perf_counter()
        rollouts = [self.rollout(s) for s in scenario_inflows(self.system, scenarios)]
        seconds = time.perf_counter() - start
        costs = np.array([r.cost for r in rollouts])
        penalty = sum(float(r.penalty_costs.sum()) for r in rollouts)
        stats = policy_statistics(self.system, costs, seconds, [r.target_slack for r in rollouts])
        stats["penalty_share"] = max(penalty / max(penalty + float(costs.sum()), 1e-12), 0.0)
        return stats

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
        config.pop("violation_tolerance", None)  # recorded before it became envs.hydro.VIOLATION_TOLERANCE (same 1e-3)
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


if __name__ == "__main__":
    # The CLI is algos.tsddr_cli's, and it uses the importable ``algos.tsddr``, not this ``__main__`` copy: anything
    # it pickles must name ``algos.tsddr``'s classes to load elsewhere, and isinstance checks must see one class.
    from algos.tsddr_cli import main

    sys.exit(main())
