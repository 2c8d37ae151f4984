"""Policy zoo: policies trained to D4RL-style levels, cached on disk, reused by datasets and teachers.

    python -m rl.zoo train --env HalfCheetah-v4 --level medium     # SB3 SAC until the level's return
    python -m rl.zoo list

A level is a target evaluation return: D4RL's "medium" is a policy at about one third of the expert's
return and "expert" a fully trained one, so for the D4RL envs the targets are fractions of D4RL's
reference expert return (``--target`` sets any other). Training goes through the shared runner (so it
checkpoints and resumes) and stops when the deterministic evaluation reaches the target or the budget
ends; the entry records which. Each entry keeps the model, its VecNormalize statistics, the final replay
buffer (the data of D4RL's "medium-replay") and ``entry.json``.

The cache lives in ``$FRONTIER_RL_ZOO`` (default ``~/.frontier-rl/zoo``): ``<env>/<level>/``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rl.checkpoint import load_normalization_stats, write_json_atomic

if TYPE_CHECKING:
    from rl.evaluation import EvaluationSummary

ZOO_ENV_VAR = "FRONTIER_RL_ZOO"
LEVEL_FRACTIONS: dict[str, float] = {"medium": 1.0 / 3.0, "expert": 1.0}
"""Target return of a level, as a fraction of D4RL's reference expert return."""
ENTRY_FILE = "entry.json"
MODEL_FILE = "model.zip"
VECNORMALIZE_FILE = "vecnormalize.pkl"
REPLAY_BUFFER_FILE = "replay_buffer.pkl"
RUN_RECORD_FILE = "zoo_run.json"
"""Written in ``<env>/<level>/`` when training starts: the algo and seed that its ``run/`` checkpoints belong to."""


class ZooError(ValueError):
    """Raised for an unknown level, a missing target, or a policy that is not in the zoo."""


@dataclass
class ZooEntry:
    """A cached policy."""

    env: str
    level: str
    algo: str
    target_return: float
    mean_return: float
    std_return: float
    reached: bool
    """Whether the evaluation reached the target before the budget ended."""
    n_timesteps: int
    seed: int
    folder: str

    @property
    def model_path(self) -> Path:
        return Path(self.folder) / MODEL_FILE


def zoo_root(root: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``root``, else ``$FRONTIER_RL_ZOO``, else ``~/.frontier-rl/zoo``."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get(ZOO_ENV_VAR) or Path.home() / ".frontier-rl" / "zoo")


def target_return(env_id: str, level: str, target: float | None = None) -> float:
    """The return that defines ``level`` on ``env_id`` (``target`` overrides it)."""
    from rl.datasets.scores import d4rl_reference_returns

    if level not in LEVEL_FRACTIONS:
        raise ZooError(f"Unknown level {level!r}: choose one of {', '.join(LEVEL_FRACTIONS)}.")
    if target is not None:
        return float(target)
    reference = d4rl_reference_returns(env_id)
    if reference is None:
        raise ZooError(
            f"{env_id} has no D4RL reference return to derive the {level} target from: pass --target <return>."
        )
    low, high = reference
    return low + LEVEL_FRACTIONS[level] * (high - low)


def train_policy(
    env_id: str,
    level: str,
    *,
    algo: str = "sac",
    n_timesteps: int = 300_000,
    target: float | None = None,
    seed: int = 0,
    eval_freq: int = 10_000,
    eval_episodes: int = 5,
    hyperparams: dict | None = None,
    progress: bool = True,
    root: str | os.PathLike | None = None,
) -> ZooEntry:
    """Train ``algo`` on ``env_id`` until its evaluation reaches the level's return or ``n_timesteps`` end.

    Rerunning after an interruption resumes from the run's last checkpoint.
    """
    from rl.runner import BEST_MODEL_FILE, RunConfig, train

    goal = target_return(env_id, level, target)
    folder = zoo_root(root) / env_id / level
    _claim_run_folder(folder, env_id, level, algo=algo, seed=seed)
    result = train(RunConfig(
        algo=algo, env=env_id, n_timesteps=n_timesteps, seed=seed, run_dir=str(folder / "run"),
        eval_freq=eval_freq, eval_episodes=eval_episodes, final_eval_episodes=10, save_freq=25_000,
        hyperparams=dict(hyperparams or {}), progress=progress, verbose=1, stop_reward=goal,
        label=f"zoo_{algo}", save_best_model=True,
    ))
    run = Path(result.run_dir)
    evaluation = result.evaluation
    assert evaluation is not None
    model_path = run / f"{env_id}.zip"
    # SAC's return swings between evaluations (Hopper: 2527 then 854 ten thousand steps later): an entry that
    # missed its target keeps the better of the final model and the best periodically evaluated one, both
    # evaluated on the same 10 fresh episodes.
    if (run / BEST_MODEL_FILE).is_file() and not evaluation.mean_reward >= goal:
        final = _evaluate_file(algo, model_path, env_id, seed)
        best = _evaluate_file(algo, run / BEST_MODEL_FILE, env_id, seed)
        model_path, evaluation = (run / BEST_MODEL_FILE, best) if best.mean_reward > final.mean_reward else (
            model_path, final)
    shutil.copy2(model_path, folder / MODEL_FILE)
    if (run / VECNORMALIZE_FILE).is_file():
        shutil.copy2(run / VECNORMALIZE_FILE, folder / VECNORMALIZE_FILE)
    if getattr(result.model, "replay_buffer", None) is not None:
        result.model.save_replay_buffer(folder / REPLAY_BUFFER_FILE)
    entry = ZooEntry(
        env=env_id, level=level, algo=algo, target_return=goal, mean_return=evaluation.mean_reward,
        std_return=evaluation.std_reward, reached=evaluation.mean_reward >= goal,
        n_timesteps=result.model.num_timesteps, seed=seed, folder=str(folder),
    )
    write_json_atomic(folder / ENTRY_FILE, asdict(entry))
    return entry


def _claim_run_folder(folder: Path, env_id: str, level: str, *, algo: str, seed: int) -> None:
    """Record which algo and seed ``folder/run`` trains, refusing to resume another one's checkpoints.

    The runner refuses to resume a checkpoint under another seed, but only once a checkpoint exists and with a
    generic message; this record also covers the algo and says how to start the level over with the new seed.
    """
    record_path = folder / RUN_RECORD_FILE
    if record_path.is_file():
        recorded = json.loads(record_path.read_text())
        if (recorded.get("algo"), recorded.get("seed")) != (algo, seed):
            raise ZooError(
                f"{env_id} {level} already has a {recorded.get('algo')} run with seed {recorded.get('seed')} in "
                f"{folder}; rerun with --algo {recorded.get('algo')} --seed {recorded.get('seed')} to resume it, "
                f"or delete that folder (rm -rf {folder}) to start over with {algo} and seed {seed}."
            )
        return
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(record_path, {"algo": algo, "seed": seed})


def _evaluate_file(algo: str, path: Path, env_id: str, seed: int) -> EvaluationSummary:
    """10 deterministic episodes of the model in ``path`` on the run's evaluation env (with its statistics)."""
    from rl.checkpoint import load_model
    from rl.envs import make_training_env
    from rl.evaluation import evaluate
    from rl.registry import get_algo

    vecnormalize = path.parent / VECNORMALIZE_FILE
    eval_env = make_training_env(
        env_id, n_envs=1, seed=seed + 10_000, normalize=vecnormalize.is_file(), training=False,
        vec_normalize_path=str(vecnormalize) if vecnormalize.is_file() else None,
    )
    try:
        return evaluate(load_model(get_algo(algo).load_class(), path, env=eval_env), eval_env, n_episodes=10)
    finally:
        eval_env.close()


def list_entries(root: str | os.PathLike | None = None) -> list[ZooEntry]:
    """Every cached policy, sorted by env and level."""
    base = zoo_root(root)
    entries = [_read_entry(path) for path in sorted(base.glob(f"*/*/{ENTRY_FILE}"))]
    return sorted(entries, key=lambda e: (e.env, e.level))


def _read_entry(path: Path) -> ZooEntry:
    """The entry stored at ``path``, located where it lies now.

    The recorded ``folder`` is where the policy was trained; an entry folder copied elsewhere (a teacher
    committed under ``results/``, a zoo moved to another disk) is used from its new place.
    """
    return replace(ZooEntry(**json.loads(path.read_text())), folder=str(path.parent))


def get_entry(env_id: str, level: str, root: str | os.PathLike | None = None) -> ZooEntry:
    """The cached policy for (env, level), or an error that gives the command to train it."""
    path = zoo_root(root) / env_id / level / ENTRY_FILE
    if not path.is_file():
        raise ZooError(
            f"No {level} policy for {env_id} in the zoo ({path.parent}). Train one with "
            f"`python -m rl.zoo train --env {env_id} --level {level}`."
        )
    return _read_entry(path)


def load_policy(
    env_id: str, level: str, *, deterministic: bool = False, seed: int = 0, root: str | os.PathLike | None = None
) -> Callable[[np.ndarray], np.ndarray]:
    """The zoo policy as ``observation -> action`` (raw observations; its normalisation applied inside).

    D4RL's datasets were collected with the policies' stochastic actions, hence ``deterministic=False``
    by default; the policy's sampling is seeded with ``seed`` so that collection is reproducible.
    """
    import torch as th

    from rl.registry import get_algo

    entry = get_entry(env_id, level, root)
    model = get_algo(entry.algo).load_class().load(entry.model_path, device="cpu")
    vec_normalize = load_normalization_stats(entry.model_path)
    th.manual_seed(seed)  # the policy's action sampling draws from torch's global generator

    def policy(observation: np.ndarray) -> np.ndarray:
        seen = vec_normalize.normalize_obs(observation) if vec_normalize is not None else observation
        return model.predict(seen, deterministic=deterministic)[0]

    policy.__name__ = f"{entry.algo}-{env_id}-{level}"
    return policy


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rl.zoo", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    train_cmd = commands.add_parser("train", help="train (or resume) a policy to a level and cache it")
    train_cmd.add_argument("--env", required=True)
    train_cmd.add_argument("--level", required=True, choices=sorted(LEVEL_FRACTIONS))
    train_cmd.add_argument("--algo", default="sac", help="any registered algorithm (default sac)")
    train_cmd.add_argument("-n", "--n-timesteps", type=int, default=300_000, help="budget in env steps")
    train_cmd.add_argument("--target", type=float, default=None, help="target return (default: from D4RL's)")
    train_cmd.add_argument("--seed", type=int, default=0)
    train_cmd.add_argument("--eval-freq", type=int, default=10_000)
    train_cmd.add_argument("-params", "--hyperparams", nargs="+", default=None, metavar="KEY:VALUE")
    train_cmd.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    commands.add_parser("list", help="show the cached policies")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from rl.cli import USER_ERRORS
    from rl.hyperparams import parse_overrides

    args = build_parser().parse_args(argv)
    try:
        if args.command == "list":
            entries = list_entries()
            if not entries:
                print(f"The zoo ({zoo_root()}) is empty: `python -m rl.zoo train --env <id> --level medium`.")
            for e in entries:
                status = "reached" if e.reached else "budget ended"
                print(f"{e.env:<24} {e.level:<8} {e.algo:<6} return {e.mean_return:9.1f} +- {e.std_return:7.1f} "
                      f"(target {e.target_return:.1f}, {status} at {e.n_timesteps:,} steps)  {e.folder}")
            return 0
        entry = train_policy(
            args.env, args.level, algo=args.algo, n_timesteps=args.n_timesteps, target=args.target, seed=args.seed,
            eval_freq=args.eval_freq, hyperparams=parse_overrides(args.hyperparams), progress=args.progress,
        )
    except (*USER_ERRORS, ZooError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        from rl.interrupt import interrupted_message

        print(interrupted_message(interrupt, "Rerun the same command to resume the zoo's training."), file=sys.stderr)
        return 130
    print(f"{entry.level} policy for {entry.env}: return {entry.mean_return:.1f} (target {entry.target_return:.1f}, "
          f"{'reached' if entry.reached else 'not reached: budget ended'}) in {entry.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
