"""A quality-diversity run (SERENE on the redundant arm) and its maps.

``RedundantArm-v0`` is a 20-joint planar arm whose genome is a small MLP controller; its outcome is where the end
effector ends (x, y in the unit square), and three small goal discs give a sparse reward. ``qd.serene.SERENE``
alternates chunks of novelty search (exploring the outcome space) and reward emitters (improving the rewarding
areas novelty search found). ``qd.QDRun`` runs it into a folder, checkpointing as it goes (``QDRun.resume`` continues a
killed run), and writes the metrics and the standard pictures; this script adds a map of the archives.

Run::

    python examples/qd_run_and_maps.py                      # 1,000 evaluations: under a minute
    python examples/qd_run_and_maps.py --budget 50000 --chunk-size 1000 --out /tmp/serene_arm

Output (under ``--out``, default ``/tmp/frontier-rl-examples/qd``): ``metrics.json`` (coverage of the 50x50 outcome
grid, reward areas found, best reward per area, evaluations to the first reward), ``checkpoint.pkl``,
``coverage_map.png``, ``reward_areas.png``, ``curves.png`` (QDRun's pictures) and ``archive_map.png`` (every evaluated
outcome, the novelty archive and the reward archive over the arm's walls and goals).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from envs.redundant_arm import GOAL_CENTERS, GOAL_RADII, WALLS
from qd import SERENE, QDRun

ENV_ID = "RedundantArm-v0"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=1_000, help="evaluations (papers: 500,000)")
    parser.add_argument("--pop-size", type=int, default=100, help="novelty-search population (authors: 100)")
    parser.add_argument("--chunk-size", type=int, default=400,
                        help="evaluations per chunk of novelty search / emitters (authors: 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("/tmp/frontier-rl-examples/qd"), help="run folder")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bar")
    return parser.parse_args(argv)


def plot_archive_map(algorithm: SERENE, path: Path) -> Path:
    """Every evaluated outcome (grey), the novelty archive (blue) and the reward archive (red) on the arm's arena."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle, Rectangle

    figure, axis = plt.subplots(figsize=(5.5, 5.5))
    for x, y, width, height in WALLS:
        axis.add_patch(Rectangle((x, y), width, height, color="black"))
    for (x, y), radius, name in zip(GOAL_CENTERS, GOAL_RADII, algorithm.task.reward_areas):
        axis.add_patch(Circle((x, y), radius, color="gold", alpha=0.5))
        axis.annotate(name, (x, y + radius), ha="center", va="bottom", fontsize="x-small")
    outcomes = algorithm.metrics.outcomes
    axis.scatter(outcomes[:, 0], outcomes[:, 1], s=3, c="lightgrey", label=f"evaluated ({len(outcomes)})")
    novelty = algorithm.archive.descriptors
    axis.scatter(novelty[:, 0], novelty[:, 1], s=12, c="tab:blue", label=f"novelty archive ({len(novelty)})")
    rewarding = algorithm.reward_archive.descriptors
    if len(rewarding):
        axis.scatter(rewarding[:, 0], rewarding[:, 1], s=60, c="tab:red", marker="*",
                     label=f"reward archive ({len(rewarding)})")
    (x_low, x_high), (y_low, y_high) = algorithm.task.outcome_bounds
    axis.set(xlim=(x_low, x_high), ylim=(y_low, y_high), aspect="equal", xlabel="end effector x",
             ylabel="end effector y", title=f"SERENE on {algorithm.env_id}: {algorithm.evaluations} evaluations")
    axis.legend(loc="lower right", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    hyperparams = {"pop_size": args.pop_size, "chunk_size": args.chunk_size}
    algorithm = SERENE(ENV_ID, seed=args.seed, **hyperparams)
    # The config is what QDRun.resume(folder) needs to rebuild the algorithm.
    config = {"algo": "serene", "env": ENV_ID, "seed": args.seed, "hyperparams": hyperparams}
    run = QDRun(algorithm, args.out, config=config, progress=args.progress)
    metrics = run.run(args.budget)
    archive_map = plot_archive_map(algorithm, args.out / "archive_map.png")
    algorithm.close()

    first = metrics["evaluations_to_first_reward"]
    print(f"SERENE on {ENV_ID}: {metrics['evaluations']} evaluations, coverage {metrics['coverage']:.3f}, "
          f"novelty archive {len(algorithm.archive)}, reward archive {len(algorithm.reward_archive)}, "
          f"emitters created {algorithm.emitters_created}")
    print(f"reward areas found: {metrics['reward_areas_found'] or 'none'}"
          + (f" (first reward after {first} evaluations)" if first else ""))
    print(f"run folder {args.out}: metrics.json, coverage_map.png, reward_areas.png, curves.png, {archive_map.name}")
    return {"run_dir": args.out, "metrics": metrics, "archive_map": archive_map,
            "novelty_archive": np.asarray(algorithm.archive.descriptors),
            "reward_archive": np.asarray(algorithm.reward_archive.descriptors)}


if __name__ == "__main__":
    main()
