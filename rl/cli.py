"""The command line shared by every algorithm: ``python -m algos.<name> --env <id> -n <steps>``.

Flag names follow rl-baselines3-zoo (``train.py``) where the idea is the same. The parser only builds a
:class:`rl.runner.RunConfig`; :func:`rl.runner.train` does the work.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import fields

from rl.hyperparams import HyperparameterError, parse_overrides
from rl.registry import ALGORITHMS
from rl.runner import RunConfig, train

DOWNLOAD_HELP = ("download a public Minari dataset (--dataset mujoco/hopper/medium-v0) into the local store if it "
                 "is not there (same as FRONTIER_RL_DOWNLOAD=1)")


def build_parser(algo: str | None = None) -> argparse.ArgumentParser:
    """The parser; ``algo`` fixes the algorithm (``python -m algos.mdpo``) or adds ``--algo``."""
    parser = argparse.ArgumentParser(
        prog=f"python -m algos.{algo}" if algo else "python -m rl",
        description="Train an algorithm into an rl-zoo3-style run folder (logs/<algo>/<env>_<n>/).",
    )
    if algo is None:
        parser.add_argument("--algo", required=True, help="algorithm name (mdpo, mdpo_off, ppo, sac, iql, ...)")
    if algo in ALGORITHMS and ALGORITHMS[algo].offline:
        parser.add_argument(
            "--dataset", required=True,
            help="offline data: a D4RL-style name (halfcheetah-medium-v2), a Minari id, or a D4RL-layout .hdf5 file",
        )
        parser.add_argument("--env", default=None, help="env to evaluate and fine-tune in (default: the dataset's)")
        parser.add_argument("--download", action="store_true", help=DOWNLOAD_HELP)
        parser.add_argument(
            "-n", "--n-timesteps", "--offline-steps", dest="offline_steps", type=int, default=None,
            help="offline gradient steps (default: YAML)",
        )
        parser.add_argument(
            "--online-steps", dest="n_timesteps", type=int, default=None,
            help="env steps of online fine-tuning after the offline phase (default: YAML, 0)",
        )
    else:
        parser.add_argument("--env", required=algo is not None, default=None,
                            help="env id: Gymnasium MuJoCo, PyBullet, panda-gym or project env")
        parser.add_argument("-n", "--n-timesteps", type=int, default=None, help="total env steps (default: YAML)")
        if algo is None:
            parser.add_argument("--dataset", default=None, help="offline algorithms: the dataset to train from")
            parser.add_argument("--offline-steps", type=int, default=None, help="offline algorithms: gradient steps")
            parser.add_argument("--download", action="store_true", help=DOWNLOAD_HELP)
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("-f", "--log-folder", default="logs", help="root of the run folders")
    parser.add_argument("--eval-freq", type=int, default=10_000, help="evaluate every n env steps (-1: never)")
    parser.add_argument("--eval-episodes", type=int, default=5, help="episodes per periodic evaluation")
    parser.add_argument("--final-eval-episodes", type=int, default=10, help="episodes of the final evaluation")
    parser.add_argument("--stochastic-eval", action="store_true",
                        help="evaluate the sampled policy, not its mode (e.g. SubPO's F(tau) of sampled trajectories)")
    parser.add_argument("--n-envs", type=int, default=None, help="parallel envs (default: YAML, else 1)")
    parser.add_argument("--vec-env", choices=["dummy", "subproc"], default="dummy", help="VecEnv type")
    parser.add_argument("--device", default="auto", help="torch device: auto, cpu, cuda")
    parser.add_argument(
        "-params", "--hyperparams", nargs="+", default=None, metavar="KEY:VALUE",
        help="override hyperparameters, e.g. learning_rate:0.001 policy_kwargs:\"dict(net_arch=[64,64])\"",
    )
    parser.add_argument("-conf", "--conf-file", default=None, help="YAML file of hyperparameters")
    parser.add_argument(
        "-i", "--trained-agent", default=None,
        help="resume: a run folder (continues from its last checkpoint up to -n in total) "
        "or a model .zip (trains -n more steps into a new run folder)",
    )
    parser.add_argument(
        "--allow-changed-inputs", action="store_true",
        help="with -i <run folder>: continue although the seed-independent inputs (hyperparameters, dataset, "
        "simulator variant, snapshot settings) differ from the run's; run.json records the changes",
    )
    parser.add_argument("-tb", "--tensorboard-log", default=None, help="tensorboard log folder")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bar")
    parser.add_argument("--save-freq", type=int, default=50_000, help="checkpoint every n env steps (-1: never)")
    parser.add_argument("--num-threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--verbose", type=int, default=1, help="0: quiet, 1: summary, 2: SB3 logs")
    return parser


def config_from_args(args: argparse.Namespace, algo: str | None = None) -> RunConfig:
    """Turn parsed flags into a RunConfig (flag destinations carry the RunConfig field names)."""
    values = {f.name: getattr(args, f.name) for f in fields(RunConfig) if hasattr(args, f.name)}
    values["algo"] = algo or args.algo
    values["hyperparams"] = parse_overrides(args.hyperparams)
    if getattr(args, "download", False):  # the environment carries it to every load, benchmark workers included
        from rl.datasets.minari_store import DOWNLOAD_VARIABLE

        os.environ[DOWNLOAD_VARIABLE] = "1"
    return RunConfig(**values)


def _user_errors() -> tuple[type[Exception], ...]:
    """Errors caused by the user's input: printed as one line, exit status 2, no traceback."""
    from rl.checkpoint import CheckpointError
    from rl.datasets import MalformedDatasetError, UnknownDatasetNameError
    from rl.env_state import StateNotRestorableError
    from rl.envs import UnknownEnvError
    from rl.offline import DatasetMismatchError, NoOfflineDataError
    from rl.registry import UnknownAlgorithmError, UnsupportedActionSpaceError
    from rl.runner import RunConfigError

    return (
        HyperparameterError,
        UnknownEnvError,
        UnknownAlgorithmError,
        UnsupportedActionSpaceError,
        CheckpointError,
        StateNotRestorableError,
        FileNotFoundError,
        MalformedDatasetError,
        UnknownDatasetNameError,
        DatasetMismatchError,
        NoOfflineDataError,
        RunConfigError,
    )


USER_ERRORS = _user_errors()


def main(algo: str | None = None, argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m algos.<algo>``. User errors print one clear line and exit 2."""
    parser = build_parser(algo)
    args = parser.parse_args(argv)
    module = f"algos.{algo}" if algo else "rl"
    command = shlex.join(["python", "-m", module, *(sys.argv[1:] if argv is None else argv)])
    return run_and_report(lambda: train(_with_command(config_from_args(args, algo), command)))


def _with_command(config: RunConfig, command: str) -> RunConfig:
    config.command = command
    return config


def run_and_report(start: Callable[[], object], extra_errors: tuple[type[Exception], ...] = ()) -> int:
    """Run ``start`` (a training run) the way every command line does: a user error prints one line and
    returns 2; Ctrl-C prints where the checkpoint is and returns 130 (the shell's code for SIGINT).

    Gymnasium's "environment ... is out of date" notice is silenced: the benchmarks use the -v4 MuJoCo envs on
    purpose (D4RL's and the papers' versions), and the notice would bury the one line a user must read."""
    warnings.filterwarnings("ignore", message=r".*The environment .* is out of date.*")
    try:
        start()
    except (*USER_ERRORS, *extra_errors) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        message = str(interrupt) or "Interrupted before training started; nothing was saved."
        print(message, file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
