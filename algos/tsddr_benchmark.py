"""TS-DDR benchmark: TS-DDR, TS-LDR, SDDP, SB3 PPO and the perfect-foresight LP on the same held-out scenarios.

One invocation trains every method for every seed and evaluates all of them on the held-out inflow scenarios of
:func:`algos.hydro_common.split_scenarios` (the last 25% of the case's scenarios; no method sees them in training)::

    python -m algos.tsddr_benchmark --case toy --seeds 0 1 2 --epochs 20 --sddp-iterations 30 --ppo-steps 100000

Writes ``results/<name>/`` (default name ``tsddr/<case>``): ``README.md`` (the table), ``results.json`` (all
numbers), ``command.txt``, ``reservoir_trajectories.png`` and ``learning_curves.png``. Each finished
(method, seed) result is saved atomically to ``logs/tsddr_benchmark/<name>/<method>_seed<k>.json`` and skipped
when the benchmark is run again, so an interrupted benchmark resumes (TS-DDR/TS-LDR also resume mid-training from
their per-epoch checkpoint, PPO from the runner's checkpoints).

Metrics: the *operating cost* (thermal + deficit, without the target penalty) of each held-out scenario, the
policy deployed stage by stage on realised volumes; the *target-violation share* is the share of (stage, plant)
pairs with ``|end volume - target| > VIOLATION_TOLERANCE x (max - min volume)``
(:data:`envs.hydro.system.VIOLATION_TOLERANCE`, 1e-3: one definition for the env, TS-DDR, PPO's targets and the report;
SDDP and perfect foresight set no targets: n/a); *training seconds* (wall time of training only) and *inference ms
per scenario* (wall time of deploying the policy on one scenario, LP solves included).

The committed tables (``results/tsddr/*/README.md``) were computed with the same tolerance, 1e-3 (then TS-DDR's
``violation_tolerance`` default and this module's own constant), so their violation shares stand as they are. Their
SB3 PPO rows, however, predate a fix of the env's inflow scaling: PPO's observations were then divided by the mean
inflow over all the case's scenarios, held-out ones included; the env now takes it from the training scenarios
only (``HydroDispatchEnv(scenarios=...)``). PPO trains behind VecNormalize, which standardises observations again
with running statistics of its own training rollouts, so a rerun should move those rows little; it was not rerun.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from algos.hydro_common import USER_ERRORS, policy_statistics, split_scenarios
from algos.sddp import SDDP
from algos.tsddr import TSDDR, TSLDR
from envs.hydro import VIOLATION_TOLERANCE, HydroSystem, case_path, load_system, solve_perfect_foresight

ENV_IDS = {"toy": "HydroDispatch-Toy-v0", "bolivia-like": "HydroDispatch-BoliviaLike-v0"}
"""Registered Gymnasium ids of the shipped cases (another case runs on the toy id with ``case=<path>``)."""
PLOT_SCENARIOS = 2
"""How many held-out scenarios (the first ones) the trajectory plot shows."""


class BenchmarkConfigError(ValueError):
    """A benchmark setting is invalid; the message names it."""


@dataclass
class BenchmarkConfig:
    """Budgets and locations of one benchmark invocation."""

    case: str = "toy"
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    epochs: int = 20
    batches_per_epoch: int = 100
    modes: list[str] = field(default_factory=lambda: ["horizon"])
    sddp_iterations: int = 30
    ppo_steps: int = 100_000
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
        """Raise :class:`BenchmarkConfigError` for an invalid budget."""
        for key in ("epochs", "batches_per_epoch", "sddp_iterations", "ppo_steps"):
            if int(getattr(self, key)) < 1:
                raise BenchmarkConfigError(f"{key}: must be an integer >= 1, got {getattr(self, key)}")
        if not self.seeds:
            raise BenchmarkConfigError("seeds: give at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise BenchmarkConfigError(f"seeds: duplicates in {self.seeds}")
        bad = [m for m in self.modes if m not in ("horizon", "stage")]
        if bad or not self.modes:
            raise BenchmarkConfigError(f"modes: expected some of ['horizon', 'stage'], got {self.modes}")


# ------------------------------------------------------------------------------------------------ methods


def _pf_record(system: HydroSystem, holdout: np.ndarray) -> dict[str, Any]:
    """Perfect-foresight LP per held-out scenario (seed-independent; the lower bound)."""
    start = time.perf_counter()
    solutions = [solve_perfect_foresight(system, scenario=int(k)) for k in holdout]
    seconds = (time.perf_counter() - start) / len(holdout)
    return {"costs": [float(s.objective) for s in solutions], "violation_share": None, "training_seconds": 0.0,
            "inference_seconds_per_scenario": seconds,
            "volumes": [np.asarray(s.volumes).tolist() for s in solutions[:PLOT_SCENARIOS]]}


def _rule_record(system: HydroSystem, cfg: BenchmarkConfig, policy: str, mode: str, seed: int,
                 run_dir: Path, holdout: np.ndarray) -> dict[str, Any]:
    """Train TS-DDR (MLP) or TS-LDR (linear) in ``run_dir`` (resuming its checkpoint) and evaluate it."""
    cls = TSLDR if policy == "linear" else TSDDR
    checkpoint = run_dir / "checkpoint.pt"
    if checkpoint.is_file():
        model = cls.load(checkpoint, system=system)
    else:
        model = cls(system, mode=mode, batches_per_epoch=cfg.batches_per_epoch,
                    holdout_fraction=cfg.holdout_fraction, seed=seed, case=str(cfg.case))
    model.learn(cfg.epochs, run_dir=run_dir, progress=False)
    evaluation = model.evaluate(holdout)
    volumes = [model.rollout(system.inflows[k]).volumes.tolist() for k in holdout[:PLOT_SCENARIOS]]
    return {"costs": evaluation["costs"], "violation_share": evaluation["violation_share"],
            "penalty_share": evaluation["penalty_share"],
            "training_seconds": float(sum(row["epoch_seconds"] for row in model.history)),
            "inference_seconds_per_scenario": evaluation["inference_seconds_per_scenario"],
            "history": model.history, "volumes": volumes,
            "budget": {"epochs": cfg.epochs, "batches_per_epoch": cfg.batches_per_epoch, "mode": mode}}


def _sddp_record(system: HydroSystem, cfg: BenchmarkConfig, seed: int, holdout: np.ndarray) -> dict[str, Any]:
    """Train SDDP (cuts from the training scenarios' stagewise model) and deploy its cut policy."""
    model = SDDP(system, holdout_fraction=cfg.holdout_fraction, seed=seed, case=str(cfg.case))
    start = time.perf_counter()
    model.train(cfg.sddp_iterations, progress=False)
    seconds = time.perf_counter() - start
    evaluation = model.evaluate(holdout)
    volumes = [np.array(model.forward_pass(system.inflows[k])[0]).tolist() for k in holdout[:PLOT_SCENARIOS]]
    return {"costs": evaluation["costs"], "violation_share": evaluation["violation_share"], "training_seconds": seconds,
            "inference_seconds_per_scenario": evaluation["inference_seconds_per_scenario"],
            "lower_bound": model.history[-1]["lower_bound"], "iterations": len(model.history),
            "history": model.history, "volumes": volumes,
            "budget": {"iterations": cfg.sddp_iterations, "forward_passes": 1}}


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
                train: np.ndarray, holdout: np.ndarray) -> dict[str, Any]:
    """Train SB3 PPO through the shared runner on the training scenarios; deploy it deterministically."""
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
    env = gym.make(env_id, **env_kwargs)
    costs, slack, volumes = [], [], []
    start = time.perf_counter()
    for k in holdout:
        obs, _ = env.reset(seed=seed, options={"scenario": int(k)})
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
        volumes.append(np.array(path).tolist())
    evaluation = policy_statistics(system, costs, time.perf_counter() - start, slack)
    env.close()
    return {"costs": evaluation["costs"], "violation_share": evaluation["violation_share"],
            "training_seconds": float(result.record["train_seconds"]),
            "inference_seconds_per_scenario": evaluation["inference_seconds_per_scenario"],
            "volumes": volumes[:PLOT_SCENARIOS],
            "steps_per_second": result.record.get("steps_per_second"), "run_dir": result.run_dir,
            "budget": {"timesteps": cfg.ppo_steps, "hyperparams": result.record.get("hyperparams")}}


# ------------------------------------------------------------------------------------------------- runner


def method_names(modes: Sequence[str]) -> list[str]:
    """The benchmarked methods (keys of the per-run files), perfect foresight excluded."""
    return [f"tsddr-{m}" for m in modes] + [f"tsldr-{m}" for m in modes] + ["sddp", "ppo"]


LABELS = {"tsddr-horizon": "TS-DDR (MLP, horizon)", "tsddr-stage": "TS-DDR (MLP, stage)",
          "tsldr-horizon": "TS-LDR (horizon)", "tsldr-stage": "TS-LDR (stage)", "sddp": "SDDP",
          "ppo": "SB3 PPO", "perfect-foresight": "Perfect-foresight LP"}


def run_benchmark(cfg: BenchmarkConfig) -> dict[str, Any]:
    """Train and evaluate every (method, seed), resuming finished ones from the logs; write ``results/<name>/``."""
    from tqdm.auto import tqdm

    from rl.checkpoint import write_json_atomic

    cfg.check()
    system = load_system(case_path(cfg.case))
    train, holdout = split_scenarios(system.num_scenarios, cfg.holdout_fraction)
    if not len(holdout):
        raise BenchmarkConfigError("holdout_fraction: leaves no held-out scenario to evaluate on")
    logs = Path(cfg.logs_root) / "tsddr_benchmark" / cfg.run_name
    logs.mkdir(parents=True, exist_ok=True)
    jobs = [("perfect-foresight", None)] + [(m, s) for s in cfg.seeds for m in method_names(cfg.modes)]
    records: dict[str, dict[str, Any]] = {}
    skipped = 0
    bar = tqdm(jobs, disable=not cfg.progress, desc="TS-DDR benchmark", unit="run")
    for method, seed in bar:
        key = method if seed is None else f"{method}_seed{seed}"
        bar.set_postfix_str(key)
        path = logs / f"{key}.json"
        if path.is_file():
            records[key] = json.loads(path.read_text())
            skipped += 1
            continue
        run_dir = logs / "runs" / key
        if method == "perfect-foresight":
            record = _pf_record(system, holdout)
        elif method.startswith(("tsddr-", "tsldr-")):
            policy, mode = method.split("-")
            record = _rule_record(system, cfg, "linear" if policy == "tsldr" else "mlp", mode, seed, run_dir, holdout)
        elif method == "sddp":
            record = _sddp_record(system, cfg, seed, holdout)
        else:
            record = _ppo_record(system, cfg, seed, run_dir, train, holdout)
        record.update(method=method, seed=seed, holdout_scenarios=holdout.tolist())
        write_json_atomic(path, record)
        records[key] = record
    bar.close()
    summary = summarise(records, cfg, train, holdout)
    summary["skipped_runs"] = skipped
    summary["notes"] = run_notes(records, cfg)
    write_outputs(summary, records, cfg, system)
    return summary


def run_notes(records: dict[str, dict[str, Any]], cfg: BenchmarkConfig) -> dict[str, str]:
    """What the budgets actually bought: SDDP iterations and lower bounds, PPO throughput."""
    sddp = [records[f"sddp_seed{s}"] for s in cfg.seeds]
    ppo = [records[f"ppo_seed{s}"] for s in cfg.seeds]
    rates = [r.get("steps_per_second") for r in ppo if r.get("steps_per_second")]
    return {
        "sddp": "SDDP iterations run per seed: " + ", ".join(str(r["iterations"]) for r in sddp)
                + "; final lower bounds (expected cost under the training model): "
                + ", ".join(f"{r['lower_bound']:.1f}" for r in sddp),
        "ppo": f"PPO throughput: {np.mean(rates):.0f} env steps/s (mean over seeds)" if rates
               else "PPO throughput: n/a",
    }


def summarise(records: dict[str, dict[str, Any]], cfg: BenchmarkConfig, train: np.ndarray,
              holdout: np.ndarray) -> dict[str, Any]:
    """Per-method statistics over seeds and scenarios, gaps to perfect foresight and ratios to SDDP."""
    pf = np.array(records["perfect-foresight"]["costs"])
    methods: dict[str, Any] = {"perfect-foresight": {
        "label": LABELS["perfect-foresight"], "cost_mean": float(pf.mean()), "cost_std_seeds": 0.0,
        "cost_std_scenarios": float(pf.std()), "gap_to_pf_percent": 0.0, "violation_share": None,
        "training_seconds": 0.0, "inference_ms": 1e3 * records["perfect-foresight"]["inference_seconds_per_scenario"],
        "per_seed": {}}}
    for method in method_names(cfg.modes):
        runs = [records[f"{method}_seed{s}"] for s in cfg.seeds]
        costs = np.array([r["costs"] for r in runs])  # (seeds, scenarios)
        per_seed_means = costs.mean(axis=1)
        violations = [r["violation_share"] for r in runs]
        methods[method] = {
            "label": LABELS[method], "cost_mean": float(costs.mean()), "cost_std_seeds": float(per_seed_means.std()),
            "cost_std_scenarios": float(costs.std()), "gap_to_pf_percent": float(100 * (costs.mean() / pf.mean() - 1)),
            "violation_share": None if violations[0] is None else float(np.mean(violations)),
            "training_seconds": float(np.mean([r["training_seconds"] for r in runs])),
            "inference_ms": float(1e3 * np.mean([r["inference_seconds_per_scenario"] for r in runs])),
            "min_gap_per_scenario": float(np.min(costs - pf[None, :])),
            "per_seed": {str(s): {"cost_mean": float(m), "gap_to_pf_percent": float(100 * (m / pf.mean() - 1)),
                                  "violation_share": r["violation_share"], "training_seconds": r["training_seconds"],
                                  "inference_ms": 1e3 * r["inference_seconds_per_scenario"]}
                         for s, m, r in zip(cfg.seeds, per_seed_means, runs)},
        }
    sddp = methods["sddp"]["cost_mean"]
    for row in methods.values():
        row["ratio_to_sddp"] = row["cost_mean"] / sddp if sddp else None
        for seed_row in row["per_seed"].values():
            seed_row["ratio_to_sddp"] = seed_row["cost_mean"] / sddp if sddp else None
    return {"case": cfg.case, "config": asdict(cfg), "train_scenarios": train.tolist(),
            "holdout_scenarios": holdout.tolist(), "perfect_foresight_costs": pf.tolist(), "methods": methods}


# ------------------------------------------------------------------------------------------------ outputs


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


STD_NOTE = ("Both +- columns are population standard deviations (numpy's std, ddof=0): of the per-seed mean costs, "
            "and of all (seed, scenario) costs.")
"""The sentence under the cost table."""


def render_table(summary: dict[str, Any], cfg: BenchmarkConfig) -> str:
    """The README: settings, the summary table and the per-seed rows."""
    m = summary["methods"]
    lines = [
        f"# TS-DDR benchmark: {summary['case']}", "",
        "Out-of-sample operating cost (thermal + deficit, target penalty excluded) on the held-out inflow "
        "scenarios, each policy deployed stage by stage on realised volumes.", "",
        f"- Split (`algos.hydro_common.split_scenarios`, holdout fraction {cfg.holdout_fraction}): training scenarios "
        f"{summary['train_scenarios'][0]}..{summary['train_scenarios'][-1]} ({len(summary['train_scenarios'])}), "
        f"held out {summary['holdout_scenarios'][0]}..{summary['holdout_scenarios'][-1]} "
        f"({len(summary['holdout_scenarios'])}); no method trains on the held-out scenarios.",
        f"- Seeds: {cfg.seeds}.",
        f"- TS-DDR (MLP 64x64, sigmoid-bounded targets) and TS-LDR (affine): {cfg.epochs} epochs x "
        f"{cfg.batches_per_epoch} batches of 1 scenario (stagewise sampling), Adam 1e-3, annealed penalty; "
        f"training mode(s): {', '.join(cfg.modes)}; evaluated in the deployed (stage, realised-volume) way.",
        f"- SDDP: up to {cfg.sddp_iterations} iterations, 1 forward pass each (stops earlier when the lower bound "
        "stalls), stagewise-independent model of the training scenarios.",
        f"- SB3 PPO (`rl.runner`, `algos/hyperparams/ppo.yml` defaults, VecNormalize): {cfg.ppo_steps} env steps on "
        "the Gymnasium env restricted to the training scenarios; deterministic actions on held-out scenarios.",
        "- Perfect-foresight LP: each held-out scenario solved with its whole inflow sequence known (lower bound).",
        "- Cost: mean over seeds and scenarios; +- std of the per-seed means (seeds) / std over all (seed, "
        "scenario) costs (scenarios). Gap to PF = mean cost / PF mean cost - 1. Ratio to SDDP = mean cost / SDDP "
        "mean cost.",
        f"- Target-violation share: share of (stage, plant) pairs with |end volume - target| > "
        f"{VIOLATION_TOLERANCE:g} of the reservoir range (`envs.hydro.VIOLATION_TOLERANCE`; n/a: the method sets no "
        "targets). Training seconds: wall time of training only, mean "
        "over seeds; inference: wall time of one held-out scenario (LP solves included).",
        "- Machine: 2 CPU cores shared with another job, one thread per run: timings are indicative.", "",
        "| method | cost mean | +- seeds | +- scenarios | gap to PF % | ratio to SDDP | violation share "
        "| training s | inference ms/scenario |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in m.values():
        lines.append(
            f"| {row['label']} | {row['cost_mean']:.1f} | {row['cost_std_seeds']:.1f} | "
            f"{row['cost_std_scenarios']:.1f} | {row['gap_to_pf_percent']:.2f} | {_fmt(row['ratio_to_sddp'], '.3f')} "
            f"| {_fmt(row['violation_share'], '.3f')} | {row['training_seconds']:.1f} | {row['inference_ms']:.1f} |")
    lines += ["", STD_NOTE]
    lines += ["", "## Per seed", "", "| method | seed | cost mean | gap to PF % | ratio to SDDP | violation share "
              "| training s | inference ms/scenario |", "|---|---|---|---|---|---|---|---|"]
    for row in m.values():
        for seed, s in row["per_seed"].items():
            lines.append(f"| {row['label']} | {seed} | {s['cost_mean']:.1f} | {s['gap_to_pf_percent']:.2f} | "
                         f"{_fmt(s['ratio_to_sddp'], '.3f')} | {_fmt(s['violation_share'], '.3f')} | "
                         f"{s['training_seconds']:.1f} | {s['inference_ms']:.1f} |")
    notes = summary.get("notes", {})
    if notes:
        lines += ["", "## Notes", ""] + [f"- {text}" for text in notes.values()]
    lines += ["", "Files: `results.json` (all numbers, per-scenario costs), `command.txt`, "
              "`reservoir_trajectories.png`, `learning_curves.png`.", ""]
    return "\n".join(lines)


def _plot_trajectories(records: dict[str, Any], cfg: BenchmarkConfig, system: HydroSystem, path: Path) -> str:
    """Reservoir volume over stages on the first held-out scenarios, seed ``cfg.seeds[0]``, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(system.hydros)
    what = "stored volume" if n == 1 else "total stored volume (sum over all plants)"
    holdout = records["perfect-foresight"]["holdout_scenarios"][:PLOT_SCENARIOS]
    keys = ["perfect-foresight"] + [f"{m}_seed{cfg.seeds[0]}" for m in method_names(cfg.modes)]
    fig, axes = plt.subplots(1, len(holdout), figsize=(6 * len(holdout), 4), squeeze=False)
    for i, (ax, scenario) in enumerate(zip(axes[0], holdout)):
        for key in keys:
            volumes = np.asarray(records[key]["volumes"][i]).reshape(system.num_stages, n).sum(axis=1)
            series = np.concatenate([[system.initial_volumes.sum()], volumes])
            style = {"color": "black", "linestyle": "--", "linewidth": 2} if key == "perfect-foresight" else {}
            ax.plot(range(len(series)), series, label=LABELS[key.rsplit("_seed", 1)[0]], **style)
        ax.set_title(f"held-out scenario {scenario}")
        ax.set_xlabel("stage (0 = initial volume)")
        ax.set_ylabel(what)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"{cfg.case}: reservoir trajectories (seed {cfg.seeds[0]})")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return what


def _plot_learning_curves(records: dict[str, Any], summary: dict[str, Any], cfg: BenchmarkConfig, path: Path) -> None:
    """Held-out cost per epoch of TS-DDR / TS-LDR (each seed), with the PF and SDDP means as references."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    rules = [m for m in method_names(cfg.modes) if m.startswith(("tsddr", "tsldr"))]
    for colour, method in zip(colours, rules):
        for j, seed in enumerate(cfg.seeds):
            history = [row for row in records[f"{method}_seed{seed}"]["history"] if "holdout_cost" in row]
            ax.plot([row["epoch"] for row in history], [row["holdout_cost"] for row in history], color=colour,
                    alpha=0.8, marker=".", label=LABELS[method] if j == 0 else None)
    ax.axhline(summary["methods"]["perfect-foresight"]["cost_mean"], color="black", linestyle="--",
               label="perfect foresight")
    ax.axhline(summary["methods"]["sddp"]["cost_mean"], color="gray", linestyle=":", label="SDDP")
    ax.set_xlabel("epoch")
    ax.set_ylabel("held-out operating cost per scenario")
    ax.set_title(f"{cfg.case}: TS-DDR / TS-LDR learning curves (all seeds)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_outputs(summary: dict[str, Any], records: dict[str, Any], cfg: BenchmarkConfig,
                  system: HydroSystem) -> Path:
    """``README.md``, ``results.json``, ``command.txt`` and the plots under ``<results_root>/<name>/``."""
    from rl.checkpoint import write_json_atomic
    from rl.run_record import command_line, package_versions

    out = Path(cfg.results_root) / cfg.run_name
    out.mkdir(parents=True, exist_ok=True)
    command = cfg.command or command_line()
    (out / "command.txt").write_text(command + "\n")
    summary["trajectory_quantity"] = _plot_trajectories(records, cfg, system, out / "reservoir_trajectories.png")
    _plot_learning_curves(records, summary, cfg, out / "learning_curves.png")
    summary["command"] = command
    summary["versions"] = package_versions()
    summary["per_scenario_costs"] = {k: r["costs"] for k, r in records.items()}
    write_json_atomic(out / "results.json", summary)
    (out / "README.md").write_text(render_table(summary, cfg))
    return out


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
    parser.add_argument("--sddp-iterations", type=int, default=30)
    parser.add_argument("--ppo-steps", type=int, default=100_000)
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
                          sddp_iterations=args.sddp_iterations, ppo_steps=args.ppo_steps,
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
    sys.exit(main())
