"""TS-DDR benchmark: TS-DDR, TS-LDR, SDDP, SB3 PPO and the perfect-foresight LP on the same out-of-sample scenarios.

One invocation trains every method for every seed and deploys each on two evaluation sets
(:mod:`algos.tsddr_eval_sets`): ``sampled``, out-of-sample scenarios of the case's inflow model (the headline table),
and ``holdout``, the case's own held-out scenarios (:func:`algos.hydro_common.split_scenarios`, the last 25 %; the
earlier tables' set, kept for continuity). No method trains on either::

    python -m algos.tsddr_benchmark --case toy --seeds 0 1 2 --epochs 20 --ppo-steps 100000 --eval-scenarios 256

SDDP is trained per seed until its stopping rule fires (default the statistical test of
:class:`algos.sddp.StatisticalRule`: the lower bound inside the simulated cost's 95 % confidence interval) or
``--sddp-max-iterations`` (the safety cap); training then goes on, if needed, to the largest of
``--sddp-report-iterations``, and the policy is also reported at each of those counts (:meth:`algos.sddp.SDDP.snapshot`
recovers the policy of any earlier iteration exactly, so one run per seed serves every count). The ratios to SDDP are
to the policy of the stopping rule.

Writes ``results/<name>/`` (default name ``tsddr/<case>``) through :mod:`algos.tsddr_report`: ``README.md`` (the
tables), ``results.json`` (all numbers), ``command.txt`` and the plots. Each finished (method, seed) result is saved
atomically to ``logs/tsddr_benchmark/<name>/<method>_seed<k>.json`` with the settings it was computed with, and
reused when the benchmark runs again with the same settings, so an interrupted benchmark resumes (TS-DDR/TS-LDR also
resume mid-training from their per-epoch checkpoint, SDDP from its per-iteration one, PPO from the runner's
checkpoints); a finished result computed with other settings is refused rather than mixed in.

Metrics: the *operating cost* (thermal + deficit, without the target penalty) of each scenario, the policy deployed
stage by stage on realised volumes; the *target-violation share*, the share of (stage, plant) pairs with
``|end volume - target| > VIOLATION_TOLERANCE x (max - min volume)`` (:data:`envs.hydro.system.VIOLATION_TOLERANCE`;
SDDP and perfect foresight set no targets: n/a); *training seconds* (wall time of training only) and *inference ms
per scenario* (wall time of deploying the policy on one scenario, LP solves included). PPO's observations are scaled
by the training scenarios' mean inflow only (``HydroDispatchEnv(scenarios=...)``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from algos.hydro_common import USER_ERRORS, policy_statistics, split_scenarios
from algos.sddp import (
    ITERATION_LIMIT,
    SDDP,
    STOPPING_RULES,
    StatisticalRule,
    add_stopping_arguments,
    make_stopping_rule,
)
from algos.tsddr import TSDDR, TSLDR
from algos.tsddr_eval_sets import EVAL_SET_KINDS, EvaluationSet, holdout_set, sampled_set
from envs.hydro import HydroSystem, case_path, load_system, solve_perfect_foresight

ENV_IDS = {"toy": "HydroDispatch-Toy-v0", "bolivia-like": "HydroDispatch-BoliviaLike-v0"}
"""Registered Gymnasium ids of the shipped cases (another case runs on the toy id with ``case=<path>``)."""
PLOT_SCENARIOS = 2
"""How many held-out scenarios (the first ones) the trajectory plot shows."""
SET_KEYS = ("sampled", "holdout")
"""The evaluation sets every method is scored on, headline first."""
SDDP_CHECKPOINT = "sddp_checkpoint.json"
"""SDDP's cuts, history and sampler state, rewritten after every iteration (:meth:`algos.sddp.SDDP.save`)."""
SDDP_SETTINGS = "sddp_settings.json"
"""The settings (:func:`method_settings`) SDDP's checkpoint was trained with: a resume with others is refused, except
a cap that the unfinished run has not passed."""
SDDP_STOP = "sddp_stop.json"
"""Written once SDDP's stopping rule (or cap) has ended its first phase: the iteration and why."""


class BenchmarkConfigError(ValueError):
    """A benchmark setting is invalid; the message names it."""


@dataclass
class BenchmarkConfig:
    """Budgets, evaluation sets and locations of one benchmark invocation."""

    case: str = "toy"
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    epochs: int = 20
    batches_per_epoch: int = 100
    modes: list[str] = field(default_factory=lambda: ["horizon"])
    curve_every: int = 1
    """TS-DDR / TS-LDR: held-out cost for the learning curve every this many epochs (and after the last)."""
    sddp_max_iterations: int = 500
    """The safety cap of SDDP's stopping rule."""
    sddp_report_iterations: list[int] = field(default_factory=lambda: [30, 60, 120])
    """Fixed iteration counts at which SDDP's policy is also reported."""
    sddp_stopping: str = "statistical"
    sddp_replications: int = 300
    sddp_check_every: int = 5
    sddp_z: float = 1.96
    ppo_steps: int = 100_000
    """SB3 PPO env steps; 0 leaves PPO out (a budget it does not fit)."""
    eval_set: str = "holdout-stagewise"
    """How the sampled evaluation set is drawn (:data:`algos.tsddr_eval_sets.EVAL_SET_KINDS`)."""
    eval_scenarios: int = 128
    eval_seed: int = 2024
    holdout_fraction: float = 0.25
    name: str | None = None
    results_root: str = "results"
    logs_root: str = "logs"
    progress: bool = True
    command: str | None = None

    @property
    def run_name(self) -> str:
        return self.name or f"tsddr/{Path(str(self.case)).stem.replace('_', '-')}"

    def check(self) -> None:
        """Raise :class:`BenchmarkConfigError` for an invalid budget or choice."""
        for key in ("epochs", "batches_per_epoch", "curve_every", "sddp_max_iterations", "sddp_replications",
                    "sddp_check_every", "eval_scenarios"):
            if int(getattr(self, key)) < 1:
                raise BenchmarkConfigError(f"{key}: must be an integer >= 1, got {getattr(self, key)}")
        if int(self.ppo_steps) < 0:
            raise BenchmarkConfigError(f"ppo_steps: must be >= 0 (0 leaves PPO out), got {self.ppo_steps}")
        if any(int(k) < 1 for k in self.sddp_report_iterations):
            raise BenchmarkConfigError(
                f"sddp_report_iterations: must be integers >= 1, got {self.sddp_report_iterations}")
        if self.sddp_replications < 2:
            raise BenchmarkConfigError(f"sddp_replications: must be >= 2, got {self.sddp_replications}")
        if self.sddp_stopping not in STOPPING_RULES:
            raise BenchmarkConfigError(f"sddp_stopping: expected one of {list(STOPPING_RULES)}, got "
                                       f"{self.sddp_stopping!r}")
        if self.eval_set not in EVAL_SET_KINDS:
            raise BenchmarkConfigError(f"eval_set: expected one of {list(EVAL_SET_KINDS)}, got {self.eval_set!r}")
        if not self.seeds:
            raise BenchmarkConfigError("seeds: give at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise BenchmarkConfigError(f"seeds: duplicates in {self.seeds}")
        bad = [m for m in self.modes if m not in ("horizon", "stage")]
        if bad or not self.modes:
            raise BenchmarkConfigError(f"modes: expected some of ['horizon', 'stage'], got {self.modes}")


def method_settings(cfg: BenchmarkConfig, method: str) -> dict[str, Any]:
    """The settings a (method, seed) result depends on: a stored result is reused only if they are the same."""
    common = {"case": str(cfg.case), "holdout_fraction": cfg.holdout_fraction, "eval_set": cfg.eval_set,
              "eval_scenarios": cfg.eval_scenarios, "eval_seed": cfg.eval_seed}
    if method.startswith(("tsddr-", "tsldr-")):
        return {**common, "epochs": cfg.epochs, "batches_per_epoch": cfg.batches_per_epoch,
                "curve_every": cfg.curve_every}
    if method == "sddp":
        return {**common, "max_iterations": cfg.sddp_max_iterations,
                "report_iterations": sorted(set(cfg.sddp_report_iterations)), "stopping": cfg.sddp_stopping,
                "replications": cfg.sddp_replications, "check_every": cfg.sddp_check_every, "z": cfg.sddp_z}
    if method == "ppo":
        return {**common, "ppo_steps": cfg.ppo_steps}
    return common


# ------------------------------------------------------------------------------------------------ methods


def _evaluate(sets: Sequence[EvaluationSet], evaluate: Callable[[np.ndarray], dict[str, Any]]) -> dict[str, Any]:
    """``evaluate(inflows)``'s statistics on every evaluation set, by set key."""
    return {s.key: evaluate(s.inflows) for s in sets}


def _pf_record(system: HydroSystem, sets: Sequence[EvaluationSet]) -> dict[str, Any]:
    """Perfect-foresight LP per scenario (seed-independent; the lower bound)."""
    def evaluate(inflows: np.ndarray) -> dict[str, Any]:
        start = time.perf_counter()
        costs = [solve_perfect_foresight(system, inflows=x).objective for x in inflows]
        return policy_statistics(system, costs, time.perf_counter() - start)

    held = next(s for s in sets if s.key == "holdout")
    volumes = [np.asarray(solve_perfect_foresight(system, inflows=x).volumes).tolist()
               for x in held.inflows[:PLOT_SCENARIOS]]
    return {"evaluations": _evaluate(sets, evaluate), "training_seconds": 0.0, "volumes": volumes}


def _rule_record(system: HydroSystem, cfg: BenchmarkConfig, policy: str, mode: str, seed: int,
                 run_dir: Path, sets: Sequence[EvaluationSet]) -> dict[str, Any]:
    """Train TS-DDR (MLP) or TS-LDR (linear) in ``run_dir`` (resuming its checkpoint) and evaluate it."""
    cls = TSLDR if policy == "linear" else TSDDR
    checkpoint = run_dir / "checkpoint.pt"
    if checkpoint.is_file():
        model = cls.load(checkpoint, system=system)
    else:
        model = cls(system, mode=mode, batches_per_epoch=cfg.batches_per_epoch,
                    holdout_fraction=cfg.holdout_fraction, seed=seed, case=str(cfg.case))
    model.learn(cfg.epochs, run_dir=run_dir, progress=False, evaluate_every=cfg.curve_every)
    held = next(s for s in sets if s.key == "holdout")
    volumes = [model.rollout(x).volumes.tolist() for x in held.inflows[:PLOT_SCENARIOS]]
    return {"evaluations": _evaluate(sets, model.evaluate),
            "training_seconds": float(sum(row["epoch_seconds"] for row in model.history)),
            "history": model.history, "volumes": volumes}


def _upper_bound(model: SDDP, cfg: BenchmarkConfig, iterations: int) -> dict[str, float]:
    """The statistical test's upper bound at ``iterations``: the one recorded then, else simulated now on the
    snapshot with the test's own seed for that iteration (so it is the number the test would have seen)."""
    row = model.history[iterations - 1]
    if "upper_bound_mean" in row:
        return {k: row[k] for k in ("upper_bound_mean", "upper_bound_half_width", "upper_bound_replications")}
    rule = StatisticalRule(replications=cfg.sddp_replications, z=cfg.sddp_z, check_every=cfg.sddp_check_every)
    return rule.estimate(model.snapshot(iterations)).record()


def _sddp_record(system: HydroSystem, cfg: BenchmarkConfig, seed: int, run_dir: Path,
                 sets: Sequence[EvaluationSet]) -> dict[str, Any]:
    """Train SDDP until its stopping rule fires (or the cap), then on to the largest report count; evaluate the
    stopping rule's policy and the policy at each report count.

    Training checkpoints every iteration in ``run_dir`` (:data:`SDDP_CHECKPOINT`, and :data:`SDDP_STOP` once the
    rule has stopped it), so a killed benchmark continues the run where it was, to the same cuts.
    """
    from rl.checkpoint import write_json_atomic

    checkpoint, stop_file, settings_file = run_dir / SDDP_CHECKPOINT, run_dir / SDDP_STOP, run_dir / SDDP_SETTINGS
    settings = method_settings(cfg, "sddp")
    stored = json.loads(settings_file.read_text()) if checkpoint.is_file() and settings_file.is_file() else settings
    if {**stored, "max_iterations": settings["max_iterations"]} != settings:
        raise BenchmarkConfigError(
            f"{checkpoint} was trained with other settings ({stored} instead of {settings}): pass --name to write "
            f"this benchmark elsewhere, or delete {run_dir} to start afresh")
    if checkpoint.is_file():
        model = SDDP.load(checkpoint, system=system)
        if (model.seed, model.holdout_fraction, model.case) != (seed, cfg.holdout_fraction, str(cfg.case)):
            raise BenchmarkConfigError(
                f"{checkpoint} belongs to another SDDP run (seed {model.seed}, holdout {model.holdout_fraction}, "
                f"case {model.case}): delete {run_dir} to start this one afresh")
        # The cap only decides where training ends: the iterations before it are the same whatever the cap, so an
        # unfinished run may go on under another cap, as long as it has not passed it.
        if stored["max_iterations"] != settings["max_iterations"] and (
                stop_file.is_file() or len(model.history) > cfg.sddp_max_iterations):
            raise BenchmarkConfigError(
                f"{checkpoint} has {len(model.history)} iterations"
                f"{' and has stopped' if stop_file.is_file() else ''} under a cap of {stored['max_iterations']}: "
                f"--sddp-max-iterations {cfg.sddp_max_iterations} cannot apply to it; pass the old cap, or delete "
                f"{run_dir} to start afresh")
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        model = SDDP(system, holdout_fraction=cfg.holdout_fraction, seed=seed, case=str(cfg.case))
    write_json_atomic(settings_file, settings)
    rule = make_stopping_rule(cfg.sddp_stopping, replications=cfg.sddp_replications, z=cfg.sddp_z,
                              check_every=cfg.sddp_check_every)
    if stop_file.is_file():
        stop_at, stopped_by = (json.loads(stop_file.read_text())[k] for k in ("stop_at", "stopped_by"))
    else:
        left = cfg.sddp_max_iterations - len(model.history)
        rule_fired = rule is not None and model.stopped_by == rule.name
        if left > 0 and not rule_fired:
            model.train(left, stopping=rule, progress=False, checkpoint=checkpoint)
        stop_at, stopped_by = len(model.history), model.stopped_by or ITERATION_LIMIT
        write_json_atomic(stop_file, {"stop_at": stop_at, "stopped_by": stopped_by})
    seconds = float(sum(row["seconds"] + row.get("check_seconds", 0.0) for row in model.history[:stop_at]))
    more = max(cfg.sddp_report_iterations, default=0) - len(model.history)
    if more > 0:
        model.train(more, stopping=None, progress=False, checkpoint=checkpoint)
    policies: dict[str, Any] = {}
    for label, iterations in [("stop", stop_at)] + [(str(k), int(k)) for k in sorted(set(cfg.sddp_report_iterations))]:
        snapshot = model.snapshot(iterations)
        bound = _upper_bound(model, cfg, iterations)
        lower = model.history[iterations - 1]["lower_bound"]
        policies[label] = {
            "iterations": iterations, "lower_bound": lower, **bound,
            "bound_in_interval": bool(lower >= bound["upper_bound_mean"] - bound["upper_bound_half_width"]),
            "training_seconds": seconds if label == "stop" else
            float(sum(row["seconds"] for row in model.history[:iterations])),
            "evaluations": _evaluate(sets, snapshot.evaluate)}
    held = next(s for s in sets if s.key == "holdout")
    stopped = model.snapshot(stop_at)
    volumes = [np.array(stopped.forward_pass(x)[0]).tolist() for x in held.inflows[:PLOT_SCENARIOS]]
    return {"evaluations": policies["stop"]["evaluations"], "training_seconds": seconds,
            "stop_iteration": stop_at, "stopped_by": stopped_by, "policies": policies,
            "history": model.history, "volumes": volumes}


def _env_id_and_kwargs(case: str, train: np.ndarray) -> tuple[str, dict[str, Any]]:
    """The Gymnasium id for a case and the env kwargs restricting resets to the training scenarios."""
    key = Path(str(case)).stem.replace("_", "-")
    kwargs: dict[str, Any] = {"scenarios": [int(k) for k in train]}
    if key in ENV_IDS and not str(case).endswith(".json"):
        return ENV_IDS[key], kwargs
    return ENV_IDS["toy"], {**kwargs, "case": str(case_path(case))}


def ppo_hyperparams(ppo_steps: int, env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The YAML PPO defaults, with a rollout no longer than the budget (tiny test budgets) and the env kwargs."""
    params: dict[str, Any] = {"env_kwargs": env_kwargs}
    if ppo_steps < 2048:
        params.update(n_steps=ppo_steps, batch_size=min(64, ppo_steps))
    return params


def _ppo_record(system: HydroSystem, cfg: BenchmarkConfig, seed: int, run_dir: Path,
                train: np.ndarray, sets: Sequence[EvaluationSet]) -> dict[str, Any]:
    """Train SB3 PPO through the shared runner on the training scenarios; deploy it deterministically.

    The evaluation scenarios are appended to a copy of the system and reset by index: the training scenarios keep
    their indices, so the env's inflow scale (from the training scenarios) is the one PPO trained with.
    """
    import gymnasium as gym

    import envs  # noqa: F401  (registers the HydroDispatch ids)
    from rl.runner import RunConfig
    from rl.runner import train as run_train

    env_id, env_kwargs = _env_id_and_kwargs(cfg.case, train)
    result = run_train(RunConfig(
        algo="ppo", env=env_id, n_timesteps=cfg.ppo_steps, seed=seed, run_dir=str(run_dir),
        hyperparams=ppo_hyperparams(cfg.ppo_steps, env_kwargs), progress=False, verbose=0, num_threads=1,
        eval_freq=-1, final_eval_episodes=0, save_freq=max(cfg.ppo_steps // 4, 1), command=cfg.command))
    model, vec_normalize = result.model, result.model.get_vec_normalize_env()
    held = next(s for s in sets if s.key == "holdout")
    volumes: list[list[list[float]]] = []

    def evaluate(inflows: np.ndarray) -> dict[str, Any]:
        extended = dataclasses.replace(system, inflows=np.concatenate([system.inflows, inflows]))
        env = gym.make(env_id, **{**env_kwargs, "case": extended})
        costs, slack, paths = [], [], []
        start = time.perf_counter()
        for k in range(system.num_scenarios, extended.num_scenarios):
            obs, _ = env.reset(seed=seed, options={"scenario": k})
            total, path, misses, done = 0.0, [], [], False
            while not done:
                if vec_normalize is not None:
                    obs = vec_normalize.normalize_obs(obs[None])[0]
                action, _ = model.predict(obs, deterministic=True)
                obs, _, terminated, truncated, info = env.step(action)
                total += info["operating_cost"]
                misses.append(info["target_slack"])
                path.append(info["volumes"])
                done = terminated or truncated
            costs.append(total)
            slack.append(misses)
            paths.append(np.array(path).tolist())
        seconds = time.perf_counter() - start
        env.close()
        if inflows is held.inflows:
            volumes.extend(paths[:PLOT_SCENARIOS])
        return policy_statistics(system, costs, seconds, slack)

    evaluations = _evaluate(sets, evaluate)
    return {"evaluations": evaluations, "training_seconds": float(result.record["train_seconds"]),
            "volumes": volumes, "steps_per_second": result.record.get("steps_per_second"),
            "run_dir": result.run_dir}


# ------------------------------------------------------------------------------------------------- runner


def method_names(modes: Sequence[str], ppo: bool = True) -> list[str]:
    """The benchmarked methods (keys of the per-run files), perfect foresight excluded; PPO unless left out."""
    return [f"tsddr-{m}" for m in modes] + [f"tsldr-{m}" for m in modes] + ["sddp"] + (["ppo"] if ppo else [])


LABELS = {"tsddr-horizon": "TS-DDR (MLP, horizon)", "tsddr-stage": "TS-DDR (MLP, stage)",
          "tsldr-horizon": "TS-LDR (horizon)", "tsldr-stage": "TS-LDR (stage)", "sddp": "SDDP",
          "ppo": "SB3 PPO", "perfect-foresight": "Perfect-foresight LP"}


def evaluation_sets(system: HydroSystem, cfg: BenchmarkConfig, holdout: np.ndarray) -> list[EvaluationSet]:
    """The sampled out-of-sample set and the case's held-out scenarios, in :data:`SET_KEYS` order."""
    return [sampled_set(system, holdout, cfg.eval_set, cfg.eval_scenarios, cfg.eval_seed), holdout_set(system, holdout)]


def run_benchmark(cfg: BenchmarkConfig) -> dict[str, Any]:
    """Train and evaluate every (method, seed), resuming finished ones from the logs; write ``results/<name>/``."""
    from tqdm.auto import tqdm

    from algos.tsddr_report import write_outputs
    from rl.checkpoint import write_json_atomic

    cfg.check()
    system = load_system(case_path(cfg.case))
    train, holdout = split_scenarios(system.num_scenarios, cfg.holdout_fraction)
    if not len(holdout):
        raise BenchmarkConfigError("holdout_fraction: leaves no held-out scenario to evaluate on")
    try:
        sets = evaluation_sets(system, cfg, holdout)
    except USER_ERRORS as error:
        raise BenchmarkConfigError(str(error)) from error
    logs = Path(cfg.logs_root) / "tsddr_benchmark" / cfg.run_name
    logs.mkdir(parents=True, exist_ok=True)
    methods = method_names(cfg.modes, ppo=cfg.ppo_steps > 0)
    jobs = [("perfect-foresight", None)] + [(m, s) for s in cfg.seeds for m in methods]
    records: dict[str, dict[str, Any]] = {}
    skipped = 0
    bar = tqdm(jobs, disable=not cfg.progress, desc="TS-DDR benchmark", unit="run")
    for method, seed in bar:
        key = method if seed is None else f"{method}_seed{seed}"
        bar.set_postfix_str(key)
        path = logs / f"{key}.json"
        settings = method_settings(cfg, method)
        if path.is_file():
            record = json.loads(path.read_text())
            if record.get("settings") != settings:
                raise BenchmarkConfigError(
                    f"{path} was computed with other settings ({record.get('settings')} instead of {settings}): "
                    "pass --name to write this benchmark elsewhere, or delete that folder to recompute")
            records[key] = record
            skipped += 1
            continue
        run_dir = logs / "runs" / key
        if method == "perfect-foresight":
            record = _pf_record(system, sets)
        elif method.startswith(("tsddr-", "tsldr-")):
            policy, mode = method.split("-")
            record = _rule_record(system, cfg, "linear" if policy == "tsldr" else "mlp", mode, seed, run_dir, sets)
        elif method == "sddp":
            record = _sddp_record(system, cfg, seed, run_dir, sets)
        else:
            record = _ppo_record(system, cfg, seed, run_dir, train, sets)
        record.update(method=method, seed=seed, settings=settings, holdout_scenarios=holdout.tolist())
        write_json_atomic(path, record)
        records[key] = record
    bar.close()
    summary = summarise(records, cfg, train, holdout, sets)
    summary["skipped_runs"] = skipped
    summary["notes"] = run_notes(records, cfg)
    write_outputs(summary, records, cfg, system)
    return summary


def run_notes(records: dict[str, dict[str, Any]], cfg: BenchmarkConfig) -> dict[str, str]:
    """What the budgets bought: SDDP's stopping per seed (and whether its seeds differ), PPO's throughput."""
    sddp = [records[f"sddp_seed{s}"] for s in cfg.seeds]
    notes = {"sddp": "SDDP per seed (iterations when its rule stopped, stopped by): " + "; ".join(
        f"seed {s}: {r['stop_iteration']} ({r['stopped_by']})" for s, r in zip(cfg.seeds, sddp))}
    if len(sddp) > 1:
        bounds = {round(r["history"][-1]["lower_bound"], 6) for r in sddp}
        sampled = {tuple(np.round(r["evaluations"]["sampled"]["costs"], 6)) for r in sddp}
        held = {tuple(np.round(r["evaluations"]["holdout"]["costs"], 6)) for r in sddp}
        notes["sddp_seeds"] = (
            f"SDDP's seeds reach its forward-pass sampler: {len(bounds)} distinct final lower bounds over "
            f"{len(sddp)} seeds; its stopping-rule policies give {len(sampled)} distinct per-scenario cost vectors "
            f"on the sampled set and {len(held)} on the held-out scenarios")
    if cfg.ppo_steps > 0:
        rates = [records[f"ppo_seed{s}"].get("steps_per_second") for s in cfg.seeds]
        rates = [r for r in rates if r]
        notes["ppo"] = (f"PPO throughput: {np.mean(rates):.0f} env steps/s (mean over seeds)" if rates
                        else "PPO throughput: n/a")
    else:
        notes["ppo"] = "SB3 PPO left out (--ppo-steps 0): it did not fit this benchmark's time budget"
    return notes


def _set_statistics(costs: np.ndarray, pf: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    """Cost statistics of one method on one set: ``costs`` ``(seeds, scenarios)``, PF ``(scenarios,)``, SDDP's
    ``(seeds, scenarios)``. The ratio's interval is paired over scenarios (seed-mean costs, same scenarios)."""
    per_seed = costs.mean(axis=1)
    ref_mean = float(reference.mean())
    difference = costs.mean(axis=0) - reference.mean(axis=0)
    half = (1.96 * difference.std(ddof=1) / np.sqrt(difference.size) / ref_mean
            if difference.size > 1 and ref_mean else None)
    return {"cost_mean": float(costs.mean()), "cost_std_seeds": float(per_seed.std()),
            "cost_std_scenarios": float(costs.std()), "gap_to_pf_percent": float(100 * (costs.mean() / pf.mean() - 1)),
            "ratio_to_sddp": float(costs.mean()) / ref_mean if ref_mean else None, "ratio_ci95": half,
            "per_seed_cost_mean": per_seed.tolist(), "min_gap_per_scenario": float(np.min(costs - pf[None, :]))}


def summarise(records: dict[str, dict[str, Any]], cfg: BenchmarkConfig, train: np.ndarray, holdout: np.ndarray,
              sets: Sequence[EvaluationSet]) -> dict[str, Any]:
    """Per-method statistics on each evaluation set: means over seeds and scenarios, gaps to perfect foresight,
    ratios to SDDP (its stopping rule's policy); SDDP also at each report count; SDDP's bounds per seed."""
    methods = method_names(cfg.modes, ppo=cfg.ppo_steps > 0)
    pf = {k: np.array(records["perfect-foresight"]["evaluations"][k]["costs"]) for k in SET_KEYS}

    def costs_of(method: str, set_key: str, policy: str | None = None) -> np.ndarray:
        if method == "perfect-foresight":
            return pf[set_key][None, :]
        runs = [records[f"{method}_seed{s}"] for s in cfg.seeds]
        return np.array([(r if policy is None else r["policies"][policy])["evaluations"][set_key]["costs"]
                         for r in runs])

    sddp = {k: costs_of("sddp", k) for k in SET_KEYS}
    sddp_runs = [records[f"sddp_seed{s}"] for s in cfg.seeds]
    stop_label = _sddp_label(cfg, sddp_runs)
    rows: list[tuple[str, str, str | None]] = [("perfect-foresight", LABELS["perfect-foresight"], None)]
    for method in methods:
        rows.append((method, stop_label if method == "sddp" else LABELS[method], None))
        if method == "sddp":
            rows += [(f"sddp@{k}", f"SDDP, {k} iterations", str(k)) for k in sorted(set(cfg.sddp_report_iterations))]
    table: dict[str, Any] = {}
    for key, label, policy in rows:
        method = key.split("@")[0]
        runs = [] if method == "perfect-foresight" else [records[f"{method}_seed{s}"] for s in cfg.seeds]
        sampled = [(r if policy is None else r["policies"][policy])["evaluations"]["sampled"] for r in runs]
        violations = [e["violation_share"] for e in sampled]
        if policy is not None:
            seconds = [r["policies"][policy]["training_seconds"] for r in runs]
        else:
            seconds = [r["training_seconds"] for r in runs] or [0.0]
        inference = [e["inference_seconds_per_scenario"] for e in sampled] or \
            [records["perfect-foresight"]["evaluations"]["sampled"]["inference_seconds_per_scenario"]]
        table[key] = {
            "label": label, "sets": {k: _set_statistics(costs_of(method, k, policy), pf[k], sddp[k]) for k in SET_KEYS},
            "violation_share": None if not violations or violations[0] is None else float(np.mean(violations)),
            "training_seconds": float(np.mean(seconds)), "inference_ms": float(1e3 * np.mean(inference)),
            "per_seed": {} if method == "perfect-foresight" else {
                str(s): {"violation_share": v, "training_seconds": t}
                for s, v, t in zip(cfg.seeds, violations, seconds)},
        }
    bounds = {str(s): {"stopped_by": r["stopped_by"], "stop_iteration": r["stop_iteration"],
                       "policies": {label: {k: v for k, v in p.items() if k != "evaluations"}
                                    | {f"{k}_cost_mean": float(np.mean(p["evaluations"][k]["costs"])) for k in SET_KEYS}
                                    for label, p in r["policies"].items()}}
              for s, r in zip(cfg.seeds, sddp_runs)}
    return {"case": cfg.case, "config": asdict(cfg), "train_scenarios": train.tolist(),
            "holdout_scenarios": holdout.tolist(),
            "eval_sets": {s.key: {"description": s.description, "size": s.size} for s in sets},
            "perfect_foresight_costs": {k: v.tolist() for k, v in pf.items()}, "methods": table, "sddp": bounds}


def _sddp_label(cfg: BenchmarkConfig, runs: Sequence[dict[str, Any]]) -> str:
    """The SDDP reference row's label: how its policy was chosen, and whether every seed's rule fired."""
    if cfg.sddp_stopping == "none":
        return f"SDDP ({cfg.sddp_max_iterations} iterations)"
    fired = [r["stopped_by"] == cfg.sddp_stopping for r in runs]
    what = "statistical test" if cfg.sddp_stopping == "statistical" else "bound stalled"
    if all(fired):
        return f"SDDP ({what})"
    if not any(fired):
        return f"SDDP (cap {cfg.sddp_max_iterations}, {what} not passed)"
    return f"SDDP ({what}, or cap {cfg.sddp_max_iterations} where not passed)"


# ---------------------------------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m algos.tsddr_benchmark",
                                     description="TS-DDR vs TS-LDR, SDDP, SB3 PPO and perfect foresight.")
    parser.add_argument("--case", default="toy", help="toy, bolivia-like, or a case JSON path")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batches-per-epoch", type=int, default=100)
    parser.add_argument("--modes", nargs="+", choices=("horizon", "stage"), default=["horizon"],
                        help="TS-DDR / TS-LDR training modes (default: horizon)")
    parser.add_argument("--curve-every", type=int, default=1,
                        help="TS-DDR / TS-LDR: held-out cost for the learning curve every N epochs (default 1)")
    parser.add_argument("--sddp-max-iterations", type=int, default=500, help="SDDP: the stopping rule's cap")
    parser.add_argument("--sddp-report-iterations", type=int, nargs="*", default=[30, 60, 120],
                        help="SDDP: also report its policy at these iteration counts (default 30 60 120)")
    add_stopping_arguments(parser, prefix="sddp-")
    parser.add_argument("--ppo-steps", type=int, default=100_000, help="SB3 PPO env steps (0: leave PPO out)")
    parser.add_argument("--eval-set", choices=EVAL_SET_KINDS, default="holdout-stagewise",
                        help="how the sampled evaluation set is drawn: stagewise from the held-out scenarios "
                             "(default) or new scenarios of the case's generator (make-case: bolivia-like)")
    parser.add_argument("--eval-scenarios", type=int, default=128, help="size of the sampled evaluation set")
    parser.add_argument("--eval-seed", type=int, default=2024, help="seed of the sampled evaluation set")
    parser.add_argument("--holdout-fraction", type=float, default=0.25)
    parser.add_argument("--name", default=None, help="results/<name> and logs/tsddr_benchmark/<name> "
                        "(default tsddr/<case>)")
    parser.add_argument("--results-root", default="results")
    parser.add_argument("--logs-root", default="logs")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; user errors print one line and exit 2."""
    args = build_parser().parse_args(argv)
    cfg = BenchmarkConfig(case=args.case, seeds=args.seeds, epochs=args.epochs,
                          batches_per_epoch=args.batches_per_epoch, modes=list(dict.fromkeys(args.modes)),
                          curve_every=args.curve_every, sddp_max_iterations=args.sddp_max_iterations,
                          sddp_report_iterations=list(args.sddp_report_iterations), sddp_stopping=args.sddp_stopping,
                          sddp_replications=args.sddp_replications, sddp_check_every=args.sddp_check_every,
                          sddp_z=args.sddp_z, ppo_steps=args.ppo_steps, eval_set=args.eval_set,
                          eval_scenarios=args.eval_scenarios, eval_seed=args.eval_seed,
                          holdout_fraction=args.holdout_fraction, name=args.name, results_root=args.results_root,
                          logs_root=args.logs_root, progress=not args.no_progress)
    try:
        summary = run_benchmark(cfg)
    except (*USER_ERRORS, BenchmarkConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out = Path(cfg.results_root) / cfg.run_name
    print((out / "README.md").read_text())
    print(f"results: {out} ({summary['skipped_runs']} finished runs reused)")
    return 0


if __name__ == "__main__":
    # Run the importable module, not this ``__main__`` copy: the report (algos.tsddr_report) imports
    # ``algos.tsddr_benchmark``'s names, which must be the ones this run uses.
    from algos.tsddr_benchmark import main as module_main
    from rl.interrupt import run_main

    sys.exit(run_main(module_main, "Rerun the same command to resume the benchmark (finished runs are not redone)."))
