"""Privileged-action curricula (Mao et al., 2025, arXiv 2502.15442) for any SB3 algorithm: train with sim-only
privileges that a curriculum removes, evaluate without any.

    python -m algos.privileged --algo sac --env PandaLiftWide-v0 --curriculum success -n 1000000

The training envs are wrapped in :class:`sim2real.PrivilegedManipulation` (table penetration and a virtual force
on the object, scaled by a level) and :class:`sim2real.PrivilegeCurriculum` lowers the level (``success``,
``linear``, ``never``, ``none``: see :mod:`sim2real._curriculum`). The evaluation env carries the same wrapper at
level 0 (the force channels stay in the action space, ignored), so periodic and final evaluations, and their
success rates (``evaluations.npz``), are of the policy acting without privileges.

The run folder adds ``privileges.png`` (the level over training, with the success rate it was lowered on) and
``episode_frames.png`` (frames of one deterministic evaluation episode at level 0); ``run.json`` has
``privileged.level_curve``. Runner method ``priv_<algo>`` (``priv_`` hyperparameters) for the benchmark harness.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback

from sim2real import CURRICULA, PRIVILEGES, PrivilegeCurriculum, PrivilegedManipulation, PrivilegeError
from sim2real._privileges import check_privileges

FRAMES = 6
"""Frames in the run folder's strip of an evaluation episode."""


@dataclass
class PrivilegedOptions:
    """The privileges and the curriculum of a run (``priv_`` hyperparameters)."""

    curriculum: str = "success"
    privileges: tuple[str, ...] = field(default_factory=lambda: PRIVILEGES)
    max_force: float = 10.0
    window: int = 50
    threshold: float = 0.5
    step: float = 0.1
    fraction: float = 0.5

    def __post_init__(self) -> None:
        self.privileges = tuple(self.privileges)
        PrivilegeCurriculum(self.curriculum, window=self.window, threshold=self.threshold, step=self.step,
                            fraction=self.fraction)  # checks the curriculum's settings
        check_privileges(self.privileges, self.max_force)

    @classmethod
    def pop_from(cls, hyperparams: dict[str, Any]) -> PrivilegedOptions:
        names = {f.name for f in fields(cls)}
        return cls(**{key[5:]: hyperparams.pop(key) for key in list(hyperparams)
                      if key.startswith("priv_") and key[5:] in names})


class _CurriculumWithArtifacts(PrivilegeCurriculum):
    """The curriculum, plus the run folder's level plot and frame strip."""

    def __init__(self, env_id: str, options: PrivilegedOptions, **kwargs: Any) -> None:
        super().__init__(options.curriculum, window=options.window, threshold=options.threshold, step=options.step,
                         fraction=options.fraction, **kwargs)
        self.env_id, self.options = env_id, options
        self.record: dict[str, Any] = {}

    def _on_training_end(self) -> None:
        self.record["level_curve"] = [list(point) for point in self.level_curve]
        self.record["final_level"] = self.level

    def write_run_artifacts(self, run_dir: str) -> None:
        plot_levels(self.level_curve, f"{run_dir}/privileges.png")
        frame_strip(self.model, self.env_id, self.options, f"{run_dir}/episode_frames.png")


def plot_levels(curve: Sequence[tuple[int, float, float | None]], path: str) -> None:
    """The privilege level against env steps (a step plot), annotated with the success rates that lowered it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 3.5))
    steps = [point[0] for point in curve]
    levels = [point[1] for point in curve]
    axis.step(steps, levels, where="post", color="tab:purple", label="privilege level")
    rates = [(point[0], point[2]) for point in curve if point[2] is not None]
    if rates:
        axis.plot(*zip(*rates), "o", color="tab:green", label="success rate that lowered it")
    axis.set(xlabel="env steps", ylabel="level / success rate", ylim=(-0.05, 1.05))
    axis.grid(alpha=0.3)
    axis.legend(loc="best", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def frame_strip(model: BaseAlgorithm, env_id: str, options: PrivilegedOptions, path: str,
                frames: int = FRAMES) -> None:
    """``frames`` evenly spaced rgb frames of one deterministic episode at level 0, side by side."""
    import gymnasium as gym
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    env = PrivilegedManipulation(gym.make(env_id, render_mode="rgb_array"), options.privileges, level=0.0,
                                 max_force=options.max_force)
    normalizer = model.get_vec_normalize_env()
    limit = env.spec.max_episode_steps if env.spec is not None and env.spec.max_episode_steps else 100
    stride = max(1, -(-limit // (frames - 1)))  # render only the frames the strip shows (and the last one)
    observation, _ = env.reset(seed=0)
    images, step, done = [(0, env.render())], 0, False
    while not done:
        policy_input = normalizer.normalize_obs(observation) if normalizer is not None else observation
        action, _ = model.predict(policy_input, deterministic=True)
        observation, _, terminated, truncated, _ = env.step(action)
        step, done = step + 1, terminated or truncated
        if step % stride == 0 or done:
            images.append((step, env.render()))
    env.close()
    images = list(dict(images).items())[-frames:] if len(images) > frames else images
    figure, axes = plt.subplots(1, len(images), figsize=(2.4 * len(images), 2.0))
    for axis, (index, image) in zip(np.atleast_1d(axes), images):
        axis.imshow(image)
        axis.set_title(f"step {index}", fontsize=8)
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def configure(config: Any, options: PrivilegedOptions | None = None, *, progress: bool = True) -> Any:
    """Turn a runner RunConfig into a privileged-curriculum run of ``config.algo`` (the ``priv`` method)."""
    options = options or PrivilegedOptions.pop_from(config.hyperparams)
    if config.label is None:
        config.label = f"priv_{config.algo}"
    start = 0.0 if options.curriculum == "none" else 1.0
    config.env_wrapper = partial(PrivilegedManipulation, privileges=options.privileges, level=start,
                                 max_force=options.max_force)
    config.eval_env_wrapper = partial(PrivilegedManipulation, privileges=options.privileges, level=0.0,
                                      max_force=options.max_force)
    record: dict[str, Any] = {**asdict(options), "privileges": list(options.privileges)}

    def callbacks(model: BaseAlgorithm) -> list[BaseCallback]:
        callback = _CurriculumWithArtifacts(config.env, options)
        callback.record = record
        return [callback]

    config.model_callbacks = callbacks
    config.extra_record = {"privileged": record}
    return config


def build_parser() -> argparse.ArgumentParser:
    from rl.cli import build_parser as runner_parser

    parser = runner_parser("privileged")
    parser.prog = "python -m algos.privileged"
    parser.description = ("Privileged-action curricula: train --algo with sim-only privileges that a curriculum "
                          "removes; evaluate without privileges.")
    parser.add_argument("--algo", default="sac", help="any SB3 algorithm of the registry (default sac)")
    parser.add_argument("--curriculum", default="success", help=f"one of {', '.join(CURRICULA)}")
    parser.add_argument("--privileges", nargs="+", default=list(PRIVILEGES), help=f"of {', '.join(PRIVILEGES)}")
    parser.add_argument("--max-force", type=float, default=10.0, help="newtons of the object force at level 1")
    parser.add_argument("--window", type=int, default=50, help="success: episodes the success rate is taken over")
    parser.add_argument("--threshold", type=float, default=0.5, help="success: the rate that lowers the level")
    parser.add_argument("--step", type=float, default=0.1, help="success: how much the level drops")
    parser.add_argument("--fraction", type=float, default=0.5, help="linear: the part of the run it takes")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m algos.privileged --algo sac --env PandaLiftWide-v0 --curriculum success -n 1000000``."""
    import shlex

    from rl.cli import config_from_args, run_and_report
    from rl.runner import train

    args = build_parser().parse_args(argv)

    def start() -> object:
        options = PrivilegedOptions(curriculum=args.curriculum, privileges=tuple(args.privileges),
                                    max_force=args.max_force, window=args.window, threshold=args.threshold,
                                    step=args.step, fraction=args.fraction)
        config = configure(config_from_args(args, args.algo), options)
        config.command = shlex.join(["python", "-m", "algos.privileged", *(sys.argv[1:] if argv is None else argv)])
        return train(config)

    return run_and_report(start, (PrivilegeError,))


if __name__ == "__main__":
    # Run the importable module, not this ``__main__`` copy (pickled state must name algos.privileged's classes).
    from algos.privileged import main as module_main

    sys.exit(module_main())
