"""The TS-DDR benchmark's report: ``README.md`` tables, ``results.json``, ``command.txt`` and the plots.

:mod:`algos.tsddr_benchmark` runs the methods and summarises them (:func:`algos.tsddr_benchmark.summarise`); this
module only writes what the summary says, so a committed ``README.md`` is :func:`render_table` of its
``results.json`` (a test checks it). It imports the benchmark's names; the benchmark imports it only when writing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from algos.tsddr_benchmark import LABELS, PLOT_SCENARIOS, BenchmarkConfig, method_names
from envs.hydro import VIOLATION_TOLERANCE, HydroSystem

STD_NOTE = ("Both +- columns are population standard deviations (numpy's std, ddof=0): of the per-seed mean costs, "
            "and of all (seed, scenario) costs. The ratio's +- is a 95 % interval over scenarios, paired: 1.96 x "
            "the standard error of (method - SDDP) per scenario (seed-mean costs), divided by SDDP's mean cost.")
"""The sentence under the cost tables."""


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _cost_table(summary: dict[str, Any], set_key: str, *, full: bool) -> list[str]:
    """Markdown rows of one evaluation set: cost, spreads, gap, ratio (and, ``full``, violations and timings)."""
    head = "| method | cost mean | +- seeds | +- scenarios | gap to PF % | ratio to SDDP | ratio +- 95 % |"
    rule = "|---|---|---|---|---|---|---|"
    if full:
        head += " violation share | training s | inference ms/scenario |"
        rule += "---|---|---|"
    lines = [head, rule]
    for row in summary["methods"].values():
        s = row["sets"][set_key]
        line = (f"| {row['label']} | {s['cost_mean']:.1f} | {s['cost_std_seeds']:.1f} "
                f"| {s['cost_std_scenarios']:.1f} | {s['gap_to_pf_percent']:.2f} | {_fmt(s['ratio_to_sddp'], '.3f')} "
                f"| {_fmt(s['ratio_ci95'], '.3f')} |")
        if full:
            line += (f" {_fmt(row['violation_share'], '.3f')} | {row['training_seconds']:.1f} "
                     f"| {row['inference_ms']:.1f} |")
        lines.append(line)
    return lines


def _sddp_table(summary: dict[str, Any]) -> list[str]:
    """SDDP per seed and policy: iterations, lower bound, simulated upper bound's interval, costs."""
    sampled, held = summary["eval_sets"]["sampled"]["size"], summary["eval_sets"]["holdout"]["size"]
    lines = [f"| seed | policy | iterations | lower bound | simulated cost (K) | 95 % interval | bound in interval "
             f"| cost, sampled ({sampled}) | cost, held-out ({held}) | training s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for seed, run in summary["sddp"].items():
        for label, p in run["policies"].items():
            name = f"stopping rule ({run['stopped_by']})" if label == "stop" else f"{label} iterations"
            mean, half = p["upper_bound_mean"], p["upper_bound_half_width"]
            lines.append(f"| {seed} | {name} | {p['iterations']} | {p['lower_bound']:.1f} | {mean:.1f} "
                         f"({p['upper_bound_replications']}) | [{mean - half:.1f}, {mean + half:.1f}] "
                         f"| {'yes' if p['bound_in_interval'] else 'no'} | {p['sampled_cost_mean']:.1f} "
                         f"| {p['holdout_cost_mean']:.1f} | {p['training_seconds']:.1f} |")
    return lines


def _per_seed_table(summary: dict[str, Any]) -> list[str]:
    """Per (method, seed): mean cost on both sets, the ratio to SDDP's all-seed mean, violations, training time."""
    lines = ["| method | seed | cost, sampled | ratio to SDDP, sampled | cost, held-out | violation share "
             "| training s |", "|---|---|---|---|---|---|---|"]
    sddp_mean = summary["methods"]["sddp"]["sets"]["sampled"]["cost_mean"]
    for row in summary["methods"].values():
        for i, (seed, s) in enumerate(row["per_seed"].items()):
            cost = row["sets"]["sampled"]["per_seed_cost_mean"][i]
            lines.append(f"| {row['label']} | {seed} | {cost:.1f} | {cost / sddp_mean:.3f} | "
                         f"{row['sets']['holdout']['per_seed_cost_mean'][i]:.1f} | {_fmt(s['violation_share'], '.3f')} "
                         f"| {s['training_seconds']:.1f} |")
    return lines


def render_table(summary: dict[str, Any], cfg: BenchmarkConfig) -> str:
    """The README: settings, the sampled set's table, the held-out scenarios' table, SDDP's bounds, per seed."""
    sets = summary["eval_sets"]
    stopping = {
        "statistical": f"until the lower bound reaches the 95 % confidence interval of the policy's simulated cost "
                       f"(lower bound >= mean - {cfg.sddp_z} std / sqrt(K), K = {cfg.sddp_replications} scenarios of "
                       f"its own model, tested every {cfg.sddp_check_every} iterations; `algos.sddp.StatisticalRule`)",
        "stall": "until the lower bound improves by less than 1e-4 (relative) over 5 iterations",
        "none": "for all its iterations",
    }[cfg.sddp_stopping]
    ppo = (f"- SB3 PPO (`rl.runner`, `algos/hyperparams/ppo.yml` defaults, VecNormalize): {cfg.ppo_steps} env steps on "
           "the Gymnasium env restricted to the training scenarios (inflow scale from them only); deterministic "
           "actions." if cfg.ppo_steps > 0 else "- SB3 PPO: left out (`--ppo-steps 0`): it does not fit the time "
           "budget of this case.")
    lines = [
        f"# TS-DDR benchmark: {summary['case']}", "",
        "Out-of-sample operating cost (thermal + deficit, target penalty excluded), each policy deployed stage by "
        "stage on realised volumes, on two evaluation sets that no method trains on.", "",
        f"- Split (`algos.hydro_common.split_scenarios`, holdout fraction {cfg.holdout_fraction}): training scenarios "
        f"{summary['train_scenarios'][0]}..{summary['train_scenarios'][-1]} ({len(summary['train_scenarios'])}), "
        f"held out {summary['holdout_scenarios'][0]}..{summary['holdout_scenarios'][-1]} "
        f"({len(summary['holdout_scenarios'])}).",
        f"- Sampled set (the headline, `--eval-set {cfg.eval_set}`): {sets['sampled']['description']}.",
        f"- Held-out set (the earlier tables' set, for continuity): {sets['holdout']['description']}.",
        f"- Seeds: {cfg.seeds}.",
        f"- TS-DDR (MLP 64x64, sigmoid-bounded targets) and TS-LDR (affine): {cfg.epochs} epochs x "
        f"{cfg.batches_per_epoch} batches of 1 scenario (stagewise sampling of the training scenarios), Adam 1e-3, "
        f"annealed penalty; training mode(s): {', '.join(cfg.modes)}; evaluated in the deployed (stage, "
        "realised-volume) way.",
        f"- SDDP (stagewise-independent model of the training scenarios, 1 forward pass per iteration): trained "
        f"{stopping}, at most {cfg.sddp_max_iterations} iterations; its policy is also reported after "
        f"{', '.join(str(k) for k in sorted(set(cfg.sddp_report_iterations))) or 'no other'} iterations (the same "
        "run's cuts up to then). The ratios are to the stopping rule's policy.",
        ppo,
        "- Perfect-foresight LP: each scenario solved with its whole inflow sequence known (a lower bound).",
        "- Cost: mean over seeds and scenarios. Gap to PF = mean cost / PF mean cost - 1. Ratio to SDDP = mean cost / "
        "SDDP mean cost on the same set.",
        f"- Target-violation share (sampled set): share of (stage, plant) pairs with |end volume - target| > "
        f"{VIOLATION_TOLERANCE:g} of the reservoir range (`envs.hydro.VIOLATION_TOLERANCE`; n/a: the method sets no "
        "targets). Training seconds: wall time of training only, mean over seeds (SDDP's stopping-rule policy: the run "
        "until the rule stopped it, its tests' simulations included; SDDP at a fixed count: its iterations up to "
        "then); inference: wall time of one sampled scenario (LP solves included).",
        "- Machine: 2 CPU cores shared with another job, one thread per run: timings are indicative.", "",
        f"## Sampled out-of-sample set ({sets['sampled']['size']} scenarios)", "",
        *_cost_table(summary, "sampled", full=True), "", STD_NOTE, "",
        f"## The case's held-out scenarios ({sets['holdout']['size']})", "",
        *_cost_table(summary, "holdout", full=False), "",
        "## SDDP: bounds, stopping and iteration counts", "",
        "Lower bound: the expected cost of SDDP's own model (stagewise-independent, training scenarios) under the "
        "cuts. Simulated cost: the policy's mean cost on K scenarios of that model (an upper-bound estimate), with "
        "its 95 % confidence interval (mean +- z std / sqrt(K)); the statistical test stops once the lower bound is "
        "in it.", "",
        *_sddp_table(summary), "",
        "## Per seed", "", *_per_seed_table(summary),
    ]
    notes = summary.get("notes", {})
    if notes:
        lines += ["", "## Notes", ""] + [f"- {text}" for text in notes.values()]
    lines += ["", "Files: `results.json` (all numbers, per-scenario costs), `command.txt`, "
              "`reservoir_trajectories.png`, `learning_curves.png`, `sddp_bounds.png`.", ""]
    return "\n".join(lines)


def _plot_trajectories(records: dict[str, Any], cfg: BenchmarkConfig, system: HydroSystem, path: Path) -> str:
    """Reservoir volume over stages on the first held-out scenarios, seed ``cfg.seeds[0]``, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(system.hydros)
    what = "stored volume" if n == 1 else "total stored volume (sum over all plants)"
    holdout = records["perfect-foresight"]["holdout_scenarios"][:PLOT_SCENARIOS]
    keys = ["perfect-foresight"] + [f"{m}_seed{cfg.seeds[0]}" for m in method_names(cfg.modes, cfg.ppo_steps > 0)]
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
    fig.suptitle(f"{cfg.case}: reservoir trajectories (seed {cfg.seeds[0]}; SDDP: its stopping rule's policy)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return what


def _plot_learning_curves(records: dict[str, Any], summary: dict[str, Any], cfg: BenchmarkConfig, path: Path) -> None:
    """Held-out cost per epoch of TS-DDR / TS-LDR (each seed), with the PF and SDDP means on the same held-out
    scenarios as references."""
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
    held = summary["methods"]
    ax.axhline(held["perfect-foresight"]["sets"]["holdout"]["cost_mean"], color="black", linestyle="--",
               label="perfect foresight")
    ax.axhline(held["sddp"]["sets"]["holdout"]["cost_mean"], color="gray", linestyle=":", label=held["sddp"]["label"])
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"cost per scenario on the {summary['eval_sets']['holdout']['size']} held-out scenarios")
    ax.set_title(f"{cfg.case}: TS-DDR / TS-LDR learning curves (all seeds)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _plot_sddp_bounds(records: dict[str, Any], summary: dict[str, Any], cfg: BenchmarkConfig, path: Path) -> None:
    """SDDP's lower bound per iteration and the simulated cost's 95 % interval where it was computed, per seed,
    with the sampled set's SDDP and TS-DDR costs as references."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for colour, seed in zip(colours, cfg.seeds):
        record = records[f"sddp_seed{seed}"]
        history = record["history"]
        ax.plot([r["iteration"] for r in history], [r["lower_bound"] for r in history], color=colour,
                label=f"lower bound, seed {seed}")
        points = {p["iterations"]: p for p in record["policies"].values()}
        for k, p in sorted(points.items()):
            ax.errorbar([k], [p["upper_bound_mean"]], yerr=[p["upper_bound_half_width"]], color=colour, marker="o",
                        capsize=3, linestyle="none")
        ax.axvline(record["stop_iteration"], color=colour, alpha=0.3, linestyle=":")
    methods = summary["methods"]
    for key, style in (("sddp", {"color": "gray", "linestyle": "--"}),
                       (f"tsddr-{cfg.modes[0]}", {"color": "black", "linestyle": "-."})):
        ax.axhline(methods[key]["sets"]["sampled"]["cost_mean"], label=f"{methods[key]['label']}, sampled set",
                   **style)
    ax.set_xlabel("SDDP iteration (dotted: where the stopping rule stopped)")
    ax.set_ylabel("cost per scenario")
    ax.set_title(f"{cfg.case}: SDDP bounds (dots: simulated cost +- 95 % interval)")
    ax.legend(fontsize=7)
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
    _plot_sddp_bounds(records, summary, cfg, out / "sddp_bounds.png")
    summary["command"] = command
    summary["versions"] = package_versions()
    summary["per_scenario_costs"] = {
        key: {k: e["costs"] for k, e in r["evaluations"].items()} for key, r in records.items()}
    write_json_atomic(out / "results.json", summary)
    (out / "README.md").write_text(render_table(summary, cfg))
    return out
