"""OPPO's benchmark: OPPO against IQL on the true reward and IQL on a Bradley-Terry reward from the same labels.

``python -m algos.oppo_benchmark --out results/oppo --datasets hopper-medium-replay-v2 halfcheetah-medium-v2
--seeds 0 1 2 -n 100000`` runs, per dataset and seed, the same number of gradient steps of:

- ``oppo``: :class:`algos.oppo.OPPO` with ``n_comparisons`` scripted labelled pairs of ``segment_length``-step
  segments (drawn with the run's seed by :func:`algos.oppo_data.scripted_comparisons`);
- ``iql``: the project's IQL on the dataset's true reward (the upper reference: it sees every reward);
- ``iql@bt_reward``: the project's IQL on the dataset relabelled by a :class:`rl.preferences.BradleyTerryRewardModel`
  trained on exactly OPPO's pairs (the same function, dataset and seed; the report checks the two label digests).

Every run goes through the shared runner (:func:`rl.benchmark.execute`): fixed seed, periodic and final
deterministic evaluation, D4RL normalised scores, a run folder under ``--work`` that resumes from its last
checkpoint, and the finished run's record under ``<out>/runs/`` (a finished run is not redone). The relabelled
datasets are made once per (dataset, seed) under ``--work`` (``bt_reward/<dataset>_seed<k>/``: the HDF5 file,
the reward model and ``bt_reward.json``) and kept.

Output in ``--out``: ``README.md`` (the table of :func:`rl.benchmark.write_report`, then the labels, the reward
model's fit and the protocol), ``learning_curves.png``, ``scores.png`` (final normalised scores),
``command.txt`` (the exact command) and ``versions.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ALGOS = ("oppo", "iql", "iql@bt_reward")
"""The algorithm under test, the baseline its ratio is taken against (IQL on the true reward), and IQL on the
learned reward."""
BT_FILE = "bt_reward.json"


@dataclass(frozen=True)
class BenchmarkConfig:
    """One invocation (see the command line's help for each field)."""

    out: str
    work: str
    datasets: tuple[str, ...]
    seeds: tuple[int, ...]
    n_updates: int
    n_comparisons: int = 10_000
    segment_length: int = 20
    bt_epochs: int = 10
    bt_members: int = 3
    workers: int = 2
    eval_freq: int = 10_000
    eval_episodes: int = 5
    final_eval_episodes: int = 10
    save_freq: int = 10_000
    oppo_params: dict[str, Any] = field(default_factory=dict)
    iql_params: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return Path(self.out).name

    @property
    def results_root(self) -> str:
        return str(Path(self.out).parent)


def _folder(dataset: str) -> str:
    from rl.benchmark import folder_name

    return folder_name(dataset)


def bt_folder(config: BenchmarkConfig, dataset: str, seed: int) -> Path:
    return Path(config.work) / "bt_reward" / f"{_folder(dataset)}_seed{seed}"


def relabel_with_bradley_terry(config: BenchmarkConfig, dataset_name: str, seed: int) -> dict[str, Any]:
    """The dataset with its rewards replaced by a Bradley-Terry reward trained on OPPO's pairs, as a D4RL-layout
    HDF5 file (made once: a finished folder is read back). Returns what ``bt_reward.json`` records."""
    from gymnasium import spaces

    from algos.oppo_data import episode_index, scripted_comparisons
    from rl.checkpoint import write_json_atomic
    from rl.datasets import load_dataset, write_d4rl_hdf5
    from rl.preferences import BradleyTerryRewardModel

    folder = bt_folder(config, dataset_name, seed)
    record_path = folder / BT_FILE
    wanted = {"dataset": dataset_name, "seed": seed, "n_comparisons": config.n_comparisons,
              "segment_length": config.segment_length, "epochs": config.bt_epochs, "members": config.bt_members}
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        if {key: record.get(key) for key in wanted} == wanted and Path(record["hdf5"]).is_file():
            return record
    folder.mkdir(parents=True, exist_ok=True)
    data = load_dataset(dataset_name)
    episodes = episode_index(data)
    pairs = scripted_comparisons(data, episodes, n_pairs=config.n_comparisons, segment_length=config.segment_length,
                                 seed=seed)
    queue = pairs.queue(data, episodes)
    observation_space = spaces.Box(-np.inf, np.inf, shape=data.observations.shape[1:])
    action_space = spaces.Box(-np.inf, np.inf, shape=data.actions.shape[1:])
    model = BradleyTerryRewardModel(observation_space, action_space, n_members=config.bt_members, seed=seed)
    fit = model.train(queue, epochs=config.bt_epochs, rng=seed)
    rewards = np.concatenate([model.predict(data.observations[i:i + 65_536], data.actions[i:i + 65_536])
                              for i in range(0, len(data), 65_536)]).astype(np.float32)
    model.save(folder / "reward_model.pt")
    path = folder / f"{_folder(dataset_name)}-bt-seed{seed}.hdf5"
    temporary = path.with_name(f".{path.name}.tmp")
    arrays = {key: value for key, value in data.as_dict().items()}
    arrays["rewards"] = rewards
    write_d4rl_hdf5(temporary, arrays, attributes={
        "env_id": data.env_id, "name": f"{data.name}-bt-seed{seed}",
        "ref_min_score": data.ref_min, "ref_max_score": data.ref_max,
    })
    os.replace(temporary, path)
    record = {
        **wanted, "hdf5": str(path), "labels_digest": pairs.digest(), "comparisons_used": pairs.comparisons_used,
        "comparisons_tied": pairs.n_tied, "bt_train_loss": fit["loss"], "bt_train_accuracy": fit["accuracy"],
        "reward_correlation": float(np.corrcoef(rewards, data.rewards)[0, 1]),
        "dataset_fingerprint": data.fingerprint(), "transitions": len(data),
    }
    write_json_atomic(record_path, record)
    return record


def plan_runs(config: BenchmarkConfig, relabelled: dict[tuple[str, int], dict[str, Any]],
              command: str) -> list[Any]:
    """The runs, ordered seed, dataset, algorithm (paired runs are neighbours and share the machine)."""
    from rl.benchmark import RunSpec

    hyperparams = {
        "oppo": {"n_comparisons": config.n_comparisons, "segment_length": config.segment_length,
                 **config.oppo_params},
        "iql": dict(config.iql_params),
        "iql@bt_reward": dict(config.iql_params),
    }
    specs = []
    for seed in config.seeds:
        for dataset in config.datasets:
            for algo in ALGOS:
                source = relabelled[(dataset, seed)]["hdf5"] if algo == "iql@bt_reward" else dataset
                run = f"{_folder(dataset)}_seed{seed}"
                specs.append(RunSpec(
                    algo=algo, env=dataset, seed=seed, n_timesteps=config.n_updates,
                    work_dir=str(Path(config.work) / algo / run),
                    result_dir=str(Path(config.out) / "runs" / algo / run),
                    hyperparams=hyperparams[algo], eval_freq=config.eval_freq, eval_episodes=config.eval_episodes,
                    final_eval_episodes=config.final_eval_episodes, save_freq=config.save_freq, dataset=source,
                    online_steps=0, command=command,
                ))
    return specs


def _label_lines(config: BenchmarkConfig, specs: Sequence[Any],
                 relabelled: dict[tuple[str, int], dict[str, Any]]) -> list[str]:
    """The labels and the learned reward per (dataset, seed), and whether OPPO trained on the same labels."""
    from rl.benchmark import load_finished

    lines = [
        f"Labels: {config.n_comparisons:,} comparisons used per run (scripted: the {config.segment_length}-step "
        "segment with the larger true return is preferred, equal returns tie), drawn with the run's seed from the "
        "dataset's episodes; OPPO and the Bradley-Terry reward train on the same pairs. The reward model: "
        f"{config.bt_members} members of 2 x 64 units, {config.bt_epochs} epochs (rl.preferences defaults); its "
        "reward is standardised over the labelled segments' steps (mean 0, std 1).", "",
        "| dataset | seed | comparisons used | ties | same labels as OPPO | BT accuracy on its pairs "
        "| corr(BT reward, true reward) |", "|---|---|---|---|---|---|---|",
    ]
    for (dataset, seed), info in relabelled.items():
        oppo = next((s for s in specs if s.algo == "oppo" and s.env == dataset and s.seed == seed), None)
        record = load_finished(oppo) if oppo is not None else None
        same = "not run yet" if record is None else (
            "yes" if record.get("labels_digest") == info["labels_digest"] else "NO: digests differ")
        lines.append(f"| {dataset} | {seed} | {info['comparisons_used']:,} | {info['comparisons_tied']:,} | {same} "
                     f"| {info['bt_train_accuracy']:.3f} | {info['reward_correlation']:.3f} |")
    return lines


def plot_scores(config: BenchmarkConfig, specs: Sequence[Any]) -> Path:
    """Bar chart of the final normalised score (mean +- std over seeds) per dataset and algorithm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rl.benchmark import load_finished

    figure, axis = plt.subplots(figsize=(3 + 2.5 * len(config.datasets), 4))
    width = 0.8 / len(ALGOS)
    for index, algo in enumerate(ALGOS):
        means, stds = [], []
        for dataset in config.datasets:
            scores = [r["final_normalized_score"] for s in specs if s.algo == algo and s.env == dataset
                      if (r := load_finished(s)) is not None and r.get("final_normalized_score") is not None]
            means.append(np.mean(scores) if scores else np.nan)
            stds.append(np.std(scores) if scores else 0.0)
        positions = np.arange(len(config.datasets)) + (index - (len(ALGOS) - 1) / 2) * width
        axis.bar(positions, means, width, yerr=stds, capsize=3, label=algo)
    axis.set_xticks(np.arange(len(config.datasets)), config.datasets)
    axis.set_ylabel("D4RL normalised score (final, mean +- std over seeds)")
    axis.set_title(f"OPPO vs IQL (true reward) vs IQL (Bradley-Terry reward), {config.n_updates:,} gradient steps",
                   fontsize="small")
    axis.legend(fontsize="small")
    figure.tight_layout()
    path = Path(config.out) / "scores.png"
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def write_results(config: BenchmarkConfig, specs: Sequence[Any], relabelled: dict[tuple[str, int], dict[str, Any]],
                  failures: Sequence[dict[str, Any]] = ()) -> str:
    """The README table (rl.benchmark's, with the labels and protocol as notes), the curves and the score plot."""
    from rl.benchmark import write_report

    notes = "\n".join([
        *_label_lines(config, specs, relabelled), "",
        "Protocol: the three algorithms take the same number of gradient steps on the same data and seeds, through "
        "the shared runner; OPPO conditions on its learned z* at evaluation; the ratio column is OPPO over IQL on the "
        "true reward. Hyperparameters: algos/hyperparams/oppo.yml and iql.yml (the papers' settings) with these "
        f"overrides: oppo {config.oppo_params or 'none'}, iql {config.iql_params or 'none'}.",
        "The relabelled datasets are rewritten as D4RL files, whose loader drops the very last row of the data (D4RL's "
        "rule), so IQL on the learned reward sees one transition fewer.",
    ])
    table = write_report(config.name, specs, list(ALGOS), list(config.datasets), results_root=config.results_root,
                         notes=notes, failures=failures)
    plot_scores(config, specs)
    return table


def run(config: BenchmarkConfig, command: str, *, report_only: bool = False, progress: bool = True) -> str:
    """Prepare the relabelled datasets, run every unfinished run, write the results; returns the table's path."""
    from tqdm import tqdm

    from rl.benchmark import ProcessBackend, execute, record_invocation
    from rl.datasets import load_dataset

    for dataset in config.datasets:  # fail now, in one line, on a dataset that is not made
        load_dataset(dataset)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    relabelled = {(dataset, seed): relabel_with_bradley_terry(config, dataset, seed)
                  for seed in config.seeds for dataset in config.datasets}
    specs = plan_runs(config, relabelled, command)
    if report_only:
        return write_results(config, specs, relabelled)
    todo = [spec for spec in specs if not spec.done]
    record_invocation(out, command, todo)
    (out / "command.txt").write_text(command + "\n")
    (out / "config.json").write_text(json.dumps(asdict(config), indent=2, default=str) + "\n")
    failures: list[dict[str, Any]] = []
    with tqdm(total=len(specs), initial=len(specs) - len(todo), desc="oppo benchmark", unit="run",
              disable=not progress) as bar:
        for outcome in ProcessBackend(config.workers).run_all(todo, execute):
            if "error" in outcome:
                failures.append(outcome)
                tqdm.write(f"run failed: {outcome['spec']['algo']} {outcome['spec']['env']} "
                           f"seed {outcome['spec']['seed']}\n{outcome['error']}")
            bar.update(1)
            write_results(config, specs, relabelled, failures)
    return write_results(config, specs, relabelled, failures)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m algos.oppo_benchmark", description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="results/oppo", help="results folder (table, plots, command, run records)")
    parser.add_argument("--work", default=None,
                        help="run folders and relabelled datasets (default: logs/benchmarks/<name of --out>)")
    parser.add_argument("--datasets", nargs="+", default=["hopper-medium-replay-v2", "halfcheetah-medium-v2"],
                        help="D4RL-style names, Minari ids or .hdf5 files")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("-n", "--n-updates", type=int, default=100_000,
                        help="gradient steps of every run (the paper's OPPO budget: 100,000)")
    parser.add_argument("--n-comparisons", type=int, default=10_000, help="labelled pairs per run (comparisons used)")
    parser.add_argument("--segment-length", type=int, default=20, help="steps per labelled segment")
    parser.add_argument("--bt-epochs", type=int, default=10, help="epochs of the Bradley-Terry reward model")
    parser.add_argument("--bt-members", type=int, default=3, help="members of its ensemble")
    parser.add_argument("--workers", type=int, default=2, help="runs at once (one torch thread each)")
    parser.add_argument("--eval-freq", type=int, default=10_000, help="periodic evaluation every n gradient steps")
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--final-eval-episodes", type=int, default=10)
    parser.add_argument("--save-freq", type=int, default=10_000, help="checkpoint every n gradient steps")
    parser.add_argument("--oppo-params", nargs="+", default=None, metavar="KEY:VALUE",
                        help="OPPO overrides, e.g. policy_kwargs:\"dict(hidden_size=64,n_layer=1)\"")
    parser.add_argument("--iql-params", nargs="+", default=None, metavar="KEY:VALUE",
                        help="IQL overrides for both IQL runs, e.g. batch_size:64")
    parser.add_argument("--report-only", action="store_true", help="rewrite the results from finished runs")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from rl.cli import run_and_report
    from rl.hyperparams import parse_overrides
    from rl.preferences import RewardModelError

    args = build_parser().parse_args(argv)
    command = shlex.join(["python", "-m", "algos.oppo_benchmark", *(sys.argv[1:] if argv is None else argv)])
    name = Path(args.out).name
    config = BenchmarkConfig(
        out=args.out, work=args.work or os.path.join("logs", "benchmarks", name), datasets=tuple(args.datasets),
        seeds=tuple(args.seeds), n_updates=args.n_updates, n_comparisons=args.n_comparisons,
        segment_length=args.segment_length, bt_epochs=args.bt_epochs, bt_members=args.bt_members,
        workers=args.workers, eval_freq=args.eval_freq, eval_episodes=args.eval_episodes,
        final_eval_episodes=args.final_eval_episodes, save_freq=args.save_freq,
        oppo_params=parse_overrides(args.oppo_params), iql_params=parse_overrides(args.iql_params),
    )
    paths: list[str] = []
    code = run_and_report(lambda: paths.append(run(config, command, report_only=args.report_only,
                                                   progress=args.progress)),
                          extra_errors=(RewardModelError,))
    if code == 0:
        print(Path(paths[0]).read_text())
    return code


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
