"""SDDP (stochastic dual dynamic programming) for ``envs.hydro`` systems: the benchmark's baseline for TS-DDR.

Pereira & Pinto (1991), "Multi-stage stochastic optimization applied to energy planning". The paper of TS-DDR
compares with SDDP.jl; no Python SDDP package installs here (``msppy`` is not on this machine's package index, and it
needs Gurobi), so this is a small, documented SDDP of its own on the HiGHS LPs of ``envs.hydro.lp``.

Uncertainty model (stated, as SDDP needs one): inflows are stagewise independent; the stage-``t`` inflow takes each
of its values in the *training* scenarios with equal probability (the same model as TS-DDR's ``stagewise`` sampler,
and the held-out scenarios of :func:`algos.hydro_common.split_scenarios` are not used).

Algorithm, per iteration:

1. forward pass: sample ``forward_passes`` scenarios from the model; solve the stages in order with the current
   cuts, keeping each stage's end volumes as trial points (and the sampled costs, an upper-bound estimate);
2. backward pass: for ``t = T-1 .. 1`` and each trial point ``v`` of stage ``t-1``, solve stage ``t`` from ``v`` for
   every realisation of its inflow; the average objective ``Q`` and average water-balance dual ``mu`` give the cut
   ``theta_{t-1} >= Q + mu . (v_out - v)`` on stage ``t-1``'s cost-to-go;
3. lower bound: the expected stage-0 objective over its realisations from the initial volumes.

Stops after ``iterations`` or when the lower bound has improved by less than ``stall_tolerance`` (relative) over
``stall_iterations`` iterations. The policy: solve each scenario stage by stage with the cuts (realised volumes); it
sets end volumes, not targets, so its evaluation (:func:`algos.hydro_common.policy_statistics`, as TS-DDR's) reports
no violation share. A bad setting raises :class:`SDDPConfigError`; ``python -m algos.sddp`` prints it in one line and
exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from algos.hydro_common import (
    USER_ERRORS,
    HydroConfigError,
    next_run_dir,
    perfect_foresight_costs,
    policy_statistics,
    sample_stagewise,
    scenario_inflows,
    split_scenarios,
)
from envs.hydro import CutStageSolution, HydroSystem, SystemDataError, case_path, load_system, solve_stage_with_cuts


class SDDPConfigError(HydroConfigError):
    """An SDDP setting or saved-cuts file is invalid; the message names it and what is accepted."""


def _check_count(name: str, value: int, meaning: str) -> None:
    """Refuse a count below 1 (``meaning`` says what it counts, for the message)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise SDDPConfigError(f"{name}: must be an integer >= 1 ({meaning}), got {value!r}")


@dataclass
class CutPool:
    """Benders cuts per stage: stage ``t``'s cost-to-go ``theta_t >= alpha + beta . v_t`` (the last stage has none)."""

    intercepts: list[list[float]]
    slopes: list[list[list[float]]]

    @classmethod
    def empty(cls, num_stages: int) -> CutPool:
        return cls([[] for _ in range(num_stages)], [[] for _ in range(num_stages)])

    def add(self, stage: int, intercept: float, slope: np.ndarray) -> None:
        self.intercepts[stage].append(float(intercept))
        self.slopes[stage].append([float(b) for b in slope])

    def arrays(self, stage: int, num_hydros: int) -> tuple[np.ndarray, np.ndarray]:
        return np.array(self.intercepts[stage]), np.array(self.slopes[stage]).reshape(-1, num_hydros)


@dataclass
class SDDP:
    """SDDP with Benders cuts from water-balance duals; see the module docstring for the model and algorithm.

    :param system: the hydrothermal system.
    :param forward_passes: sampled scenarios per iteration.
    :param holdout_fraction: share of the case's scenarios held out (the last ones; not in the inflow model).
    :param seed: seeds the forward-pass sampler.
    :param case: the case name or path (recorded in saved cuts).
    """

    system: HydroSystem
    forward_passes: int = 1
    holdout_fraction: float = 0.25
    seed: int = 0
    case: str | None = None
    cuts: CutPool = field(init=False)
    history: list[dict[str, float]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        _check_count("forward_passes", self.forward_passes, "sampled scenarios per SDDP iteration")
        if not self.system.hydros:
            raise SystemDataError("hydros: SDDP needs at least one hydro plant (the state is reservoir volumes)")
        self.train_indices, self.holdout_indices = split_scenarios(self.system.num_scenarios, self.holdout_fraction)
        self.support = self.system.inflows[self.train_indices]
        """Stage-``t`` realisations: ``support[:, t]`` (equiprobable)."""
        self.rng = np.random.default_rng(self.seed)
        self.cuts = CutPool.empty(self.system.num_stages)

    def _solve(self, stage: int, volumes: np.ndarray, inflow: np.ndarray) -> CutStageSolution:
        alphas, betas = self.cuts.arrays(stage, len(self.system.hydros))
        return solve_stage_with_cuts(self.system, stage, volumes_in=volumes, inflow=inflow,
                                     cut_intercepts=alphas, cut_slopes=betas)

    def forward_pass(self, inflows: np.ndarray) -> tuple[list[np.ndarray], float]:
        """Solve one scenario stage by stage with the cuts: (end volumes per stage, operating cost)."""
        volumes, trial, cost = self.system.initial_volumes, [], 0.0
        for t in range(self.system.num_stages):
            sol = self._solve(t, volumes, inflows[t])
            volumes = sol.volumes
            trial.append(volumes)
            cost += sol.operating_cost
        return trial, cost

    def backward_pass(self, trial: list[np.ndarray]) -> None:
        """Add one cut per stage ``t-1`` at its trial point, averaging stage ``t`` over its realisations."""
        for t in reversed(range(1, self.system.num_stages)):
            point = trial[t - 1]
            solutions = [self._solve(t, point, inflow) for inflow in self.support[:, t]]
            value = np.mean([s.objective for s in solutions])
            slope = np.mean([s.water_value for s in solutions], axis=0)
            self.cuts.add(t - 1, value - slope @ point, slope)

    def lower_bound(self) -> float:
        """Expected stage-0 objective (operating cost + cut approximation of the rest) from the initial volumes."""
        return float(np.mean([self._solve(0, self.system.initial_volumes, a).objective for a in self.support[:, 0]]))

    def train(self, iterations: int, *, stall_iterations: int = 5, stall_tolerance: float = 1e-4,
              progress: bool = True) -> list[dict[str, float]]:
        """Run forward/backward iterations; record lower bound and the forward passes' mean cost per iteration."""
        from tqdm.auto import tqdm

        _check_count("iterations", iterations, "SDDP forward/backward iterations")
        bar = tqdm(range(iterations), disable=not progress, desc="SDDP", unit="it")
        for _ in bar:
            start = time.perf_counter()
            costs = []
            for inflows in sample_stagewise(self.support, self.forward_passes, self.rng):
                trial, cost = self.forward_pass(inflows)
                costs.append(cost)
                self.backward_pass(trial)
            bound = self.lower_bound()
            self.history.append({"iteration": len(self.history) + 1, "lower_bound": bound,
                                 "forward_cost": float(np.mean(costs)), "seconds": time.perf_counter() - start})
            bar.set_postfix(bound=f"{bound:.5g}")
            if len(self.history) > stall_iterations:
                old = self.history[-1 - stall_iterations]["lower_bound"]
                if bound - old <= stall_tolerance * max(abs(bound), 1.0):
                    break
        return self.history

    def simulate(self, count: int, seed: int = 1) -> np.ndarray:
        """Operating costs of ``count`` scenarios sampled from the SDDP inflow model (upper-bound estimate)."""
        rng = np.random.default_rng(seed)
        return np.array([self.forward_pass(s)[1] for s in sample_stagewise(self.support, count, rng)])

    def evaluate(self, scenarios: Sequence[int] | np.ndarray) -> dict[str, Any]:
        """Out-of-sample statistics (:func:`algos.hydro_common.policy_statistics`) of the cut policy over scenario
        indices (1-d) or inflow arrays ``(S, T, n)``; ``violation_share`` is None, as the policy sets no targets."""
        start = time.perf_counter()
        costs = [self.forward_pass(s)[1] for s in scenario_inflows(self.system, scenarios)]
        return policy_statistics(self.system, costs, time.perf_counter() - start)

    def save(self, path: str | Path) -> Path:
        """Write the cuts and settings as JSON (atomic)."""
        from rl.checkpoint import write_json_atomic

        path = Path(path)
        write_json_atomic(path, {"case": self.case, "forward_passes": self.forward_passes,
                                 "holdout_fraction": self.holdout_fraction, "seed": self.seed,
                                 "intercepts": self.cuts.intercepts, "slopes": self.cuts.slopes,
                                 "history": self.history})
        return path

    @classmethod
    def load(cls, path: str | Path, system: HydroSystem | None = None) -> SDDP:
        """Read cuts written by :meth:`save`; the system is re-read from the recorded case unless given."""
        data = json.loads(Path(path).read_text())
        if system is None:
            if not data.get("case"):
                raise SDDPConfigError(f"{path}: the SDDP cuts record no case; pass system= to load()")
            system = load_system(case_path(data["case"]))
        model = cls(system, forward_passes=data["forward_passes"], holdout_fraction=data["holdout_fraction"],
                    seed=data["seed"], case=data.get("case"))
        if len(data["intercepts"]) != system.num_stages:
            raise SDDPConfigError(f"{path}: SDDP cuts for {len(data['intercepts'])} stages, the system has "
                                  f"{system.num_stages}; pass the system the cuts were trained on")
        model.cuts = CutPool(data["intercepts"], data["slopes"])
        model.history = data.get("history", [])
        return model


def train_run(case: str, *, iterations: int, seed: int = 0, forward_passes: int = 1, log_folder: str | Path = "logs",
              progress: bool = True, simulations: int = 100) -> Path:
    """Train SDDP in ``<log_folder>/sddp/<case>_<n>``: ``cuts.json``, ``history.json``, ``results.json``."""
    from rl.checkpoint import write_json_atomic
    from rl.run_record import command_line, package_versions

    _check_count("iterations", iterations, "SDDP forward/backward iterations")  # before a run folder exists
    system = load_system(case_path(case))
    model = SDDP(system, forward_passes=forward_passes, seed=seed, case=str(case))
    run_dir = next_run_dir(log_folder, "sddp", str(case))
    run_dir.mkdir(parents=True)
    write_json_atomic(run_dir / "config.json", {"case": case, "iterations": iterations, "seed": seed,
                                                "forward_passes": forward_passes, "command": command_line(),
                                                "versions": package_versions()})
    start = time.perf_counter()
    model.train(iterations, progress=progress)
    seconds = time.perf_counter() - start
    model.save(run_dir / "cuts.json")
    write_json_atomic(run_dir / "history.json", model.history)
    simulated = model.simulate(simulations, seed=seed + 1)
    results = {"training_seconds": seconds, "iterations": len(model.history),
               "lower_bound": model.history[-1]["lower_bound"], "simulated_cost_mean": float(simulated.mean()),
               "simulated_cost_ci95": float(1.96 * simulated.std(ddof=1) / np.sqrt(len(simulated)))}
    if len(model.holdout_indices):
        results["holdout"] = model.evaluate(model.holdout_indices)
        results["perfect_foresight_holdout_mean"] = float(perfect_foresight_costs(system, model.holdout_indices).mean())
    write_json_atomic(run_dir / "results.json", results)
    return run_dir


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m algos.sddp``; user errors print one line and exit 2."""
    parser = argparse.ArgumentParser(prog="python -m algos.sddp", description="Train an SDDP policy on a hydro case.")
    parser.add_argument("--case", default="toy", help="case name (envs/hydro/cases/<name>.json) or JSON path")
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--forward-passes", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-f", "--log-folder", default="logs")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        run_dir = train_run(args.case, iterations=args.iterations, seed=args.seed, forward_passes=args.forward_passes,
                            log_folder=args.log_folder, progress=not args.no_progress)
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"run folder: {run_dir}")
    return 0


if __name__ == "__main__":
    # Run the importable module, not this ``__main__`` copy: what it pickles must name
    # ``algos.sddp``'s classes to load elsewhere, and its isinstance checks must see one class.
    from algos.sddp import main as module_main

    sys.exit(module_main())
