"""Make D4RL-protocol datasets locally: ``python -m rl.datasets make halfcheetah-medium-v2 --size 200000``.

Levels, as D4RL defines them:

- ``random``: uniform random actions;
- ``medium`` / ``expert``: the policy zoo's medium / expert policy (``python -m rl.zoo train``), acting
  stochastically as D4RL's data-collecting policies did;
- ``medium-replay``: the replay buffer of the zoo's training run up to the medium level;
- ``medium-expert``: the medium dataset followed by the expert dataset.

Collection is deterministic for a seed and resumes after an interruption (rerun the same command).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rl.datasets.episodes import Episode
from rl.datasets.generate import generate_dataset, make_medium_expert, save_episodes
from rl.datasets.names import parse_d4rl_name


def replay_buffer_episodes(buffer_path: str | Path, env_id: str) -> list[Episode]:
    """Episodes from an SB3 replay buffer filled by one env, in the order they were collected.

    SB3 stores actions rescaled to [-1, 1]; they are mapped back to the env's action bounds. The buffer's
    last, unfinished episode ends as a truncation. No qpos/qvel: the buffer did not record them.
    """
    from stable_baselines3.common.save_util import load_from_pkl

    from rl.envs import make_env

    buffer = load_from_pkl(buffer_path)
    if buffer.n_envs != 1:
        raise ValueError(f"{buffer_path} was filled by {buffer.n_envs} envs; medium-replay needs one.")
    size = buffer.buffer_size if buffer.full else buffer.pos
    order = np.arange(size)
    if buffer.full:  # oldest first
        order = np.roll(order, -buffer.pos)
    observations = buffer.observations[order, 0]
    next_observations = buffer.next_observations[order, 0]
    actions = buffer.actions[order, 0]
    rewards = buffer.rewards[order, 0]
    dones = buffer.dones[order, 0].astype(bool)
    timeouts = buffer.timeouts[order, 0].astype(bool)
    space = make_env(env_id).action_space
    actions = space.low + 0.5 * (actions + 1.0) * (space.high - space.low)

    episodes, start = [], 0
    ends = list(np.flatnonzero(dones)) + ([size - 1] if size and not dones[size - 1] else [])
    for end in ends:
        steps = slice(start, end + 1)
        terminated = bool(dones[end] and not timeouts[end])
        last = np.zeros(end + 1 - start, dtype=bool)
        last[-1] = True  # only an episode's last step ends it
        episodes.append(Episode(
            observations=np.concatenate([observations[steps], next_observations[end][None]]),
            actions=actions[steps], rewards=rewards[steps],
            terminations=last & terminated, truncations=last & (not terminated),
        ))
        start = end + 1
    return episodes


def make(
    name: str, *, size: int = 1_000_000, seed: int = 0, hdf5_path: str | None = None, overwrite: bool = False,
    progress: bool = True, zoo_root: str | None = None,
) -> int:
    """Make the dataset ``name``; returns its number of transitions."""
    from rl import zoo

    parsed = parse_d4rl_name(name)
    if parsed.level == "random":
        episodes = generate_dataset(name, None, n_transitions=size, seed=seed, hdf5_path=hdf5_path,
                                    overwrite=overwrite, progress=progress)
    elif parsed.level in ("medium", "expert"):
        policy = zoo.load_policy(parsed.env_id, parsed.level, seed=seed, root=zoo_root)
        episodes = generate_dataset(name, policy, n_transitions=size, seed=seed, hdf5_path=hdf5_path,
                                    policy_name=policy.__name__, overwrite=overwrite, progress=progress)
    elif parsed.level == "medium-replay":
        entry = zoo.get_entry(parsed.env_id, "medium", zoo_root)
        episodes = replay_buffer_episodes(Path(entry.folder) / zoo.REPLAY_BUFFER_FILE, parsed.env_id)
        save_episodes(episodes, name, hdf5_path=hdf5_path, algorithm_name=f"{entry.algo} replay buffer up to medium",
                      metadata={"zoo_return": entry.mean_return, "zoo_steps": entry.n_timesteps}, overwrite=overwrite)
    else:  # medium-expert
        episodes = make_medium_expert(name.split("-")[0], hdf5_path=hdf5_path, overwrite=overwrite)
    return int(sum(len(e.rewards) for e in episodes))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rl.datasets", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make_cmd = commands.add_parser("make", help="make a D4RL-style dataset into the local Minari store")
    make_cmd.add_argument("name", help="e.g. halfcheetah-medium-v2, hopper-random-v2, walker2d-medium-replay-v2")
    make_cmd.add_argument("--size", type=int, default=1_000_000, help="transitions (random, medium, expert)")
    make_cmd.add_argument("--seed", type=int, default=0)
    make_cmd.add_argument("--hdf5", default=None, help="also write a D4RL-layout HDF5 file here")
    make_cmd.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    make_cmd.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from rl.cli import USER_ERRORS
    from rl.datasets.errors import DatasetNotFoundError, MalformedDatasetError, UnknownDatasetNameError
    from rl.zoo import ZooError

    args = build_parser().parse_args(argv)
    try:
        n = make(args.name, size=args.size, seed=args.seed, hdf5_path=args.hdf5, overwrite=args.overwrite,
                 progress=args.progress)
    except (*USER_ERRORS, ZooError, DatasetNotFoundError, MalformedDatasetError, UnknownDatasetNameError,
            ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{args.name}: {n:,} transitions in the local Minari store")
    return 0
