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

Stopping (:meth:`SDDP.train`): after at most ``iterations`` iterations (the safety cap), or earlier by a stopping
rule. The default, :class:`StatisticalRule`, is SDDP's standard statistical test (Pereira & Pinto 1991; SDDP.jl's
``Statistical``, the rule the TS-DDR authors' SDDP baseline uses): every ``check_every`` iterations, simulate the
policy on ``replications`` scenarios of the model and stop once the lower bound reaches the lower end of the
simulated cost's confidence interval, ``lower_bound >= mean - z std / sqrt(K)``. :class:`StallRule` (the lower bound
improved by less than a tolerance over some iterations) stays available. The policy after any earlier iteration is
recovered exactly by :meth:`SDDP.snapshot` (cuts are only ever appended), so one run gives the policy at several
iteration counts. The policy: solve each scenario stage by stage with the cuts (realised volumes); it sets end
volumes, not targets, so its evaluation (:func:`algos.hydro_common.policy_statistics`, as TS-DDR's) reports
no violation share. A bad setting raises :class:`SDDPConfigError`; ``python -m algos.sddp`` prints it in one line and
exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

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
from envs.hydro import CutStageSolution, HydroSystem, StageCutLP, SystemDataError, case_path, load_system


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


@dataclass(frozen=True)
class UpperBoundEstimate:
    """The statistical test's numbers at one check: the simulated policy's cost against the lower bound."""

    lower_bound: float
    mean: float
    """Mean operating cost of the ``replications`` simulated scenarios (the statistical upper bound)."""
    half_width: float
    """``z * std / sqrt(replications)`` (sample standard deviation, ddof=1): the confidence interval's half-width."""
    replications: int

    @property
    def converged(self) -> bool:
        """Whether the lower bound reaches the interval: ``lower_bound >= mean - half_width``."""
        return self.lower_bound >= self.mean - self.half_width

    def record(self) -> dict[str, float]:
        """The fields a history row stores (``upper_bound_mean``, ``upper_bound_half_width``, ...)."""
        return {"upper_bound_mean": self.mean, "upper_bound_half_width": self.half_width,
                "upper_bound_replications": self.replications}


def statistical_test(lower_bound: float, costs: Sequence[float] | np.ndarray, z: float = 1.96) -> UpperBoundEstimate:
    """SDDP's statistical convergence test: does ``lower_bound`` reach ``mean - z std / sqrt(K)`` of ``costs``?

    ``costs`` are the operating costs of ``K`` scenarios simulated with the current policy from the model SDDP
    optimises, an unbiased estimate of the policy's expected cost (an upper bound on the optimum); the lower bound
    is deterministic. As SDDP.jl's ``Statistical`` (``sample_mean - sample_ci <= current_bound``, ``sample_ci =
    z_score * std / sqrt(num_replications)``); ``z = 1.96`` is a 95 % interval.

    Raises:
        SDDPConfigError: fewer than 2 costs (no standard deviation) or ``z`` not > 0.
    """
    costs = np.asarray(costs, dtype=float).reshape(-1)
    if costs.size < 2:
        raise SDDPConfigError(f"replications: the statistical test needs >= 2 simulated costs, got {costs.size}")
    if not z > 0:
        raise SDDPConfigError(f"z: must be > 0 (1.96 for a 95 % interval), got {z}")
    half_width = float(z * costs.std(ddof=1) / np.sqrt(costs.size))
    return UpperBoundEstimate(float(lower_bound), float(costs.mean()), half_width, int(costs.size))


@dataclass(frozen=True)
class StopCheck:
    """What a stopping rule decided after an iteration, and what it adds to that iteration's history row."""

    stop: bool
    record: dict[str, float] = field(default_factory=dict)


class StoppingRule(Protocol):
    """Decides after each SDDP iteration whether training stops (``name`` is recorded as ``stopped_by``)."""

    name: str

    def check(self, model: SDDP) -> StopCheck:
        """Look at ``model`` (its ``history`` ends with the iteration just run) and decide."""
        ...


@dataclass(frozen=True)
class StatisticalRule:
    """Stop when the lower bound enters the simulated upper bound's confidence interval (:func:`statistical_test`).

    Every ``check_every`` iterations the current policy is simulated on ``replications`` scenarios drawn from
    SDDP's own model (:meth:`SDDP.simulate`) with a generator seeded by ``(seed, iteration)``: the checks never
    consume the forward passes' random numbers, so the cuts after ``k`` iterations are the same whether or how
    often the test ran. Defaults: ``replications=300`` and ``z=1.96`` as the TS-DDR authors' SDDP baseline
    (``SDDP.Statistical(num_replications=300, iteration_period=50)`` in DecisionRules.jl's
    ``examples/HydroPowerModels/run_sddp.jl``); ``check_every=5`` instead of their 50 (deliberate: the toy case's
    bound settles within tens of iterations, and a finer period stops nearer to where the test first passes).
    """

    replications: int = 300
    z: float = 1.96
    check_every: int = 5
    name: str = "statistical"

    def __post_init__(self) -> None:
        _check_count("check_every", self.check_every, "iterations between two statistical tests")
        if isinstance(self.replications, bool) or not isinstance(self.replications, int) or self.replications < 2:
            raise SDDPConfigError(f"replications: must be an integer >= 2 (simulated scenarios per statistical test), "
                                  f"got {self.replications!r}")
        if not self.z > 0:
            raise SDDPConfigError(f"z: must be > 0 (1.96 for a 95 % interval), got {self.z}")

    def estimate(self, model: SDDP) -> UpperBoundEstimate:
        """Simulate the current policy and compare it with the last lower bound (whatever the period)."""
        iteration = len(model.history)
        costs = model.simulate(self.replications, seed=(model.seed, SIMULATION_STREAM, iteration))
        return statistical_test(model.history[-1]["lower_bound"], costs, self.z)

    def check(self, model: SDDP) -> StopCheck:
        if len(model.history) % self.check_every:
            return StopCheck(False)
        estimate = self.estimate(model)
        return StopCheck(estimate.converged, estimate.record())


@dataclass(frozen=True)
class StallRule:
    """Stop when the lower bound improved by at most ``tolerance`` (relative) over the last ``iterations``
    iterations (the rule this SDDP had before the statistical test; SDDP.jl's ``BoundStalling`` is absolute)."""

    iterations: int = 5
    tolerance: float = 1e-4
    name: str = "stall"

    def __post_init__(self) -> None:
        _check_count("stall_iterations", self.iterations, "iterations over which the lower bound must improve")

    def check(self, model: SDDP) -> StopCheck:
        if len(model.history) <= self.iterations:
            return StopCheck(False)
        bound, old = model.history[-1]["lower_bound"], model.history[-1 - self.iterations]["lower_bound"]
        return StopCheck(bound - old <= self.tolerance * max(abs(bound), 1.0))


SIMULATION_STREAM = 1
"""Middle entry of the seed ``(seed, SIMULATION_STREAM, iteration)`` of the statistical test's simulations, so that
they draw from a stream of their own (the forward passes use ``default_rng(seed)``)."""
STOPPING_RULES = ("statistical", "stall", "none")
"""What ``--stopping`` accepts (``none``: run all ``--iterations``)."""
ITERATION_LIMIT = "iteration limit"
"""``stopped_by`` of a run that used all its iterations without its rule firing."""


def make_stopping_rule(name: str, *, replications: int = 300, z: float = 1.96, check_every: int = 5,
                       stall_iterations: int = 5, stall_tolerance: float = 1e-4) -> StoppingRule | None:
    """The rule called ``name`` (one of :data:`STOPPING_RULES`; ``"none"`` gives None) with its settings."""
    if name == "statistical":
        return StatisticalRule(replications=replications, z=z, check_every=check_every)
    if name == "stall":
        return StallRule(iterations=stall_iterations, tolerance=stall_tolerance)
    if name == "none":
        return None
    raise SDDPConfigError(f"stopping: must be one of {list(STOPPING_RULES)}, got {name!r}")


def add_stopping_arguments(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """The stopping rule's flags (``--<prefix>stopping``, ``--<prefix>replications``, ``--<prefix>check-every``,
    ``--<prefix>z``) with :func:`make_stopping_rule`'s defaults; shared by ``algos.sddp`` and the TS-DDR benchmark."""
    parser.add_argument(f"--{prefix}stopping", choices=STOPPING_RULES, default="statistical",
                        help="statistical: lower bound within the simulated cost's confidence interval (default); "
                             "stall: the lower bound stops improving; none: run all iterations")
    parser.add_argument(f"--{prefix}replications", type=int, default=300,
                        help="statistical test: simulated scenarios")
    parser.add_argument(f"--{prefix}check-every", type=int, default=5,
                        help="statistical test: iterations between tests")
    parser.add_argument(f"--{prefix}z", type=float, default=1.96,
                        help="statistical test: z-score (1.96: 95 %% interval)")


DEFAULT_STOPPING: StoppingRule = StatisticalRule()
""":meth:`SDDP.train`'s rule unless told otherwise: the statistical test with 300 replications every 5 iterations."""


@dataclass
class SDDP:
    """SDDP with Benders cuts from water-balance duals; see the module docstring for the model and algorithm.

    :param system: the hydrothermal system.
    :param forward_passes: sampled scenarios per iteration.
    :param holdout_fraction: share of the case's scenarios held out (the last ones; not in the inflow model).
    :param seed: seeds the forward-pass sampler (and, through ``(seed, SIMULATION_STREAM, iteration)``, the
        statistical test's simulations).
    :param case: the case name or path (recorded in saved cuts).
    """

    system: HydroSystem
    forward_passes: int = 1
    holdout_fraction: float = 0.25
    seed: int = 0
    case: str | None = None
    cuts: CutPool = field(init=False)
    history: list[dict[str, float]] = field(init=False, default_factory=list)
    stopped_by: str | None = field(init=False, default=None)
    """Why the last :meth:`train` call ended: a rule's ``name`` or :data:`ITERATION_LIMIT` (None before training)."""
    _stage_lps: dict[int, StageCutLP] = field(init=False, default_factory=dict, repr=False, compare=False)
    """Each stage's LP, built on first use and kept in step with ``cuts`` (:meth:`_stage_lp`)."""
    _stage_lps_pool: CutPool | None = field(init=False, default=None, repr=False, compare=False)
    """The pool ``_stage_lps`` hold the cuts of (a pool assigned to ``cuts`` afterwards discards them)."""

    def __post_init__(self) -> None:
        _check_count("forward_passes", self.forward_passes, "sampled scenarios per SDDP iteration")
        if not self.system.hydros:
            raise SystemDataError("hydros: SDDP needs at least one hydro plant (the state is reservoir volumes)")
        self.train_indices, self.holdout_indices = split_scenarios(self.system.num_scenarios, self.holdout_fraction)
        self.support = self.system.inflows[self.train_indices]
        """Stage-``t`` realisations: ``support[:, t]`` (equiprobable)."""
        self.rng = np.random.default_rng(self.seed)
        self.cuts = CutPool.empty(self.system.num_stages)

    def _stage_lp(self, stage: int) -> StageCutLP:
        """Stage ``stage``'s LP with exactly the pool's cuts, rebuilt when the pool has changed (new cuts, or another
        pool assigned to ``cuts`` as :meth:`load` and :meth:`snapshot` do). Building it from the pool alone, never
        growing it, makes a solution a function of the cuts only: a resumed run gives the same cuts."""
        lp = self._stage_lps.get(stage)
        if self._stage_lps_pool is not self.cuts:
            self._stage_lps, self._stage_lps_pool, lp = {}, self.cuts, None
        if lp is None or lp.num_cuts != len(self.cuts.intercepts[stage]):
            lp = self._stage_lps[stage] = StageCutLP(self.system, stage,
                                                     *self.cuts.arrays(stage, len(self.system.hydros)))
        return lp

    def _solve(self, stage: int, volumes: np.ndarray, inflow: np.ndarray) -> CutStageSolution:
        return self._stage_lp(stage).solve(volumes, inflow)

    def _solve_batch(self, stage: int, volumes: np.ndarray, inflows: np.ndarray) -> list[CutStageSolution]:
        """Stage ``stage`` from ``volumes`` under each inflow (warm-started in turn, :meth:`StageCutLP.solve_batch`)."""
        return self._stage_lp(stage).solve_batch(volumes, inflows)

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
            solutions = self._solve_batch(t, point, self.support[:, t])
            value = np.mean([s.objective for s in solutions])
            slope = np.mean([s.water_value for s in solutions], axis=0)
            self.cuts.add(t - 1, value - slope @ point, slope)

    def lower_bound(self) -> float:
        """Expected stage-0 objective (operating cost + cut approximation of the rest) from the initial volumes."""
        solutions = self._solve_batch(0, self.system.initial_volumes, self.support[:, 0])
        return float(np.mean([s.objective for s in solutions]))

    def train(self, iterations: int, *, stopping: StoppingRule | None = DEFAULT_STOPPING,
              progress: bool = True, checkpoint: str | Path | None = None) -> list[dict[str, float]]:
        """Run forward/backward iterations until ``stopping`` fires or ``iterations`` more have run (the cap).

        Each iteration appends a history row (``iteration``, ``lower_bound``, ``forward_cost``: the forward passes'
        mean cost, ``seconds``; ``check_seconds``, the rule's time; plus what the rule recorded, e.g. the statistical
        test's upper bound); the rule's name, or :data:`ITERATION_LIMIT`, is kept in ``stopped_by``.
        ``stopping=None`` runs exactly ``iterations``. A later call continues the same run (cuts, sampler and
        history). ``checkpoint``: a path that :meth:`save` rewrites after every iteration, so that :meth:`load` and
        another call continue a killed run exactly where it was (the sampler's state is saved with the cuts).
        """
        from tqdm.auto import tqdm

        _check_count("iterations", iterations, "SDDP forward/backward iterations")
        self.stopped_by = ITERATION_LIMIT
        bar = tqdm(range(iterations), disable=not progress, desc="SDDP", unit="it")
        for _ in bar:
            start = time.perf_counter()
            costs = []
            for inflows in sample_stagewise(self.support, self.forward_passes, self.rng):
                trial, cost = self.forward_pass(inflows)
                costs.append(cost)
                self.backward_pass(trial)
            bound = self.lower_bound()
            row = {"iteration": len(self.history) + 1, "lower_bound": bound, "forward_cost": float(np.mean(costs)),
                   "seconds": time.perf_counter() - start, "check_seconds": 0.0}
            self.history.append(row)
            bar.set_postfix(bound=f"{bound:.5g}")
            stop = False
            if stopping is not None:
                start = time.perf_counter()
                decision = stopping.check(self)
                row.update(decision.record, check_seconds=time.perf_counter() - start)
                stop = decision.stop
                if stop:
                    self.stopped_by = stopping.name
            if checkpoint is not None:
                self.save(checkpoint)
            if stop:
                break
        return self.history

    def simulate(self, count: int, seed: int | Sequence[int] = 1) -> np.ndarray:
        """Operating costs of ``count`` scenarios sampled from the SDDP inflow model (upper-bound estimate), drawn
        with ``numpy.random.default_rng(seed)`` (an int or a sequence of ints), not the forward passes' sampler."""
        rng = np.random.default_rng(seed)
        return np.array([self.forward_pass(s)[1] for s in sample_stagewise(self.support, count, rng)])

    def snapshot(self, iterations: int) -> SDDP:
        """The policy as it was after its first ``iterations`` iterations, for evaluation.

        Every iteration appends ``forward_passes`` cuts to each stage but the last, so the first
        ``iterations * forward_passes`` cuts of each stage are exactly the cuts the run had then (and its history up
        to then). The copy's sampler starts afresh from ``seed``: train the original, not the snapshot, to go on.

        Raises:
            SDDPConfigError: ``iterations`` is not in ``1..len(history)``, or the cut counts do not match the
                history (cuts loaded from elsewhere).
        """
        if isinstance(iterations, bool) or not isinstance(iterations, int | np.integer) or \
                not 1 <= iterations <= len(self.history):
            raise SDDPConfigError(f"iterations: a snapshot needs 1..{len(self.history)} (the iterations run), "
                                  f"got {iterations!r}")
        keep = int(iterations) * self.forward_passes
        counts = {len(stage) for stage in self.cuts.intercepts[:-1]}
        if counts and counts != {len(self.history) * self.forward_passes}:
            raise SDDPConfigError(f"snapshot: the cut pool ({sorted(counts)} cuts per stage) does not match "
                                  f"{len(self.history)} iterations x {self.forward_passes} forward passes")
        copy = SDDP(self.system, forward_passes=self.forward_passes, holdout_fraction=self.holdout_fraction,
                    seed=self.seed, case=self.case)
        copy.cuts = CutPool([list(a[:keep]) for a in self.cuts.intercepts], [list(b[:keep]) for b in self.cuts.slopes])
        copy.history = [dict(row) for row in self.history[:iterations]]
        copy.stopped_by = None
        return copy

    def evaluate(self, scenarios: Sequence[int] | np.ndarray) -> dict[str, Any]:
        """Out-of-sample statistics (:func:`algos.hydro_common.policy_statistics`) of the cut policy over scenario
        indices (1-d) or inflow arrays ``(S, T, n)``; ``violation_share`` is None, as the policy sets no targets."""
        start = time.perf_counter()
        costs = [self.forward_pass(s)[1] for s in scenario_inflows(self.system, scenarios)]
        return policy_statistics(self.system, costs, time.perf_counter() - start)

    def save(self, path: str | Path) -> Path:
        """Write the cuts, settings, history and the forward-pass sampler's state as JSON (atomic)."""
        from rl.checkpoint import write_json_atomic

        path = Path(path)
        write_json_atomic(path, {"case": self.case, "forward_passes": self.forward_passes,
                                 "holdout_fraction": self.holdout_fraction, "seed": self.seed,
                                 "intercepts": self.cuts.intercepts, "slopes": self.cuts.slopes,
                                 "history": self.history, "stopped_by": self.stopped_by,
                                 "sampler_state": self.rng.bit_generator.state})
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
        model.stopped_by = data.get("stopped_by")
        if "sampler_state" in data:  # cuts saved before the sampler's state was: training would not continue exactly
            model.rng.bit_generator.state = data["sampler_state"]
        return model


def train_run(case: str, *, iterations: int, seed: int = 0, forward_passes: int = 1, log_folder: str | Path = "logs",
              progress: bool = True, simulations: int = 100, stopping: StoppingRule | None = DEFAULT_STOPPING) -> Path:
    """Train SDDP in ``<log_folder>/sddp/<case>_<n>``: ``cuts.json``, ``history.json``, ``results.json``.

    ``iterations`` is the cap; ``stopping`` (default the statistical test) may end the run earlier.
    """
    from rl.checkpoint import write_json_atomic
    from rl.run_record import command_line, package_versions

    _check_count("iterations", iterations, "SDDP forward/backward iterations")  # before a run folder exists
    system = load_system(case_path(case))
    model = SDDP(system, forward_passes=forward_passes, seed=seed, case=str(case))
    run_dir = next_run_dir(log_folder, "sddp", str(case))
    run_dir.mkdir(parents=True)
    write_json_atomic(run_dir / "config.json", {"case": case, "iterations": iterations, "seed": seed,
                                                "forward_passes": forward_passes,
                                                "stopping": None if stopping is None else asdict(stopping),
                                                "command": command_line(), "versions": package_versions()})
    start = time.perf_counter()
    model.train(iterations, stopping=stopping, progress=progress)
    seconds = time.perf_counter() - start
    model.save(run_dir / "cuts.json")
    write_json_atomic(run_dir / "history.json", model.history)
    simulated = model.simulate(simulations, seed=seed + 1)
    results = {"training_seconds": seconds, "iterations": len(model.history), "stopped_by": model.stopped_by,
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
    parser.add_argument("--iterations", type=int, default=200, help="the most iterations (the stopping rule's cap)")
    add_stopping_arguments(parser)
    parser.add_argument("--forward-passes", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-f", "--log-folder", default="logs")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        stopping = make_stopping_rule(args.stopping, replications=args.replications, z=args.z,
                                      check_every=args.check_every)
        run_dir = train_run(args.case, iterations=args.iterations, seed=args.seed, forward_passes=args.forward_passes,
                            log_folder=args.log_folder, progress=not args.no_progress, stopping=stopping)
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
