"""Offline to online with IQL: make a D4RL-style dataset with the project's pipeline, train offline, fine-tune online.

1. Data: the policy zoo's ``expert`` entry for Hopper-v4 (a SAC policy, return 2161, short of D4RL's expert 3234;
   the S3RL teacher committed under ``results/snapshot/teachers/``, used as a zoo root) collects episodes with
   ``rl.datasets.generate_dataset``, written as a D4RL-layout HDF5 file named like D4RL's ``hopper-expert-v2`` (so
   D4RL's reference returns normalise scores); nothing is downloaded and the local Minari store is left alone.
2. Offline: ``IQL(..., dataset=data).learn_offline(n)`` takes n gradient steps on the dataset.
3. Online: ``learn(n, reset_num_timesteps=False)`` fine-tunes in the env, appending to the same replay buffer.
   At the default budget the fine-tuned policy scores far *below* the offline one (seed 0: 997 -> 7): the first
   online updates, on transitions off the data's distribution, unlearn first (the offline-to-online
   dip). Fine-tuning gains need far longer runs than a one-minute example (CORL fine-tunes for 1M steps).

Run::

    python examples/iql_offline_to_online.py         # 5k transitions, 3k updates, 1.5k env steps: under a minute
    python examples/iql_offline_to_online.py --transitions 100000 --offline-steps 100000 --online-steps 50000 \
        --net-arch 256 256 --batch-size 256          # closer to the paper's settings

The HDF5 file needs h5py (``pip install -e ".[offline]"``).

Output (under ``--out``, default ``/tmp/frontier-rl-examples/iql``): ``hopper-expert-v2.hdf5`` (the dataset),
``iql_offline.zip`` and ``iql_online.zip`` (the models after each phase); the script prints the return and the
D4RL normalised score of the data, the offline policy and the fine-tuned policy.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from algos.iql import IQL
from rl.datasets import OfflineDataset, generate_dataset, load_dataset
from rl.zoo import load_policy

ENV_ID = "Hopper-v4"
TEACHERS = Path(__file__).resolve().parents[1] / "results" / "snapshot" / "teachers"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transitions", type=int, default=5_000, help="dataset size (whole episodes, at least this)")
    parser.add_argument("--offline-steps", type=int, default=3_000, help="gradient steps on the dataset")
    parser.add_argument("--online-steps", type=int, default=1_500, help="env steps of online fine-tuning")
    parser.add_argument("--net-arch", type=int, nargs="+", default=[64, 64], help="hidden layers (paper: 256 256)")
    parser.add_argument("--batch-size", type=int, default=64, help="minibatch size (paper: 256)")
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--zoo", type=Path, default=TEACHERS, help="policy-zoo root holding Hopper-v4/expert/")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("/tmp/frontier-rl-examples/iql"), help="output folder")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bars")
    return parser.parse_args(argv)


def make_dataset(path: Path, n_transitions: int, zoo: Path, seed: int, progress: bool) -> tuple[OfflineDataset, float]:
    """Collect ``n_transitions`` steps of the zoo's expert entry for Hopper (stochastic actions, as D4RL).

    Returns the dataset, read back from its file as an offline algorithm reads it, and its mean episode return.
    """
    policy = load_policy(ENV_ID, "expert", root=zoo, seed=seed)
    episodes = generate_dataset(
        "hopper-expert-v2", policy, n_transitions=n_transitions, seed=seed, to_minari=False, hdf5_path=path,
        work_dir=path.with_suffix(".work"), progress=progress,
    )
    return load_dataset(path), float(np.mean([episode.total_return for episode in episodes]))


def evaluate(model: IQL, data: OfflineDataset, episodes: int, seed: int) -> tuple[float, float]:
    """Mean return of the deterministic policy over ``episodes`` episodes, and its D4RL normalised score."""
    env = make_vec_env(ENV_ID, n_envs=1, seed=seed)
    mean_return, _ = evaluate_policy(model, env, n_eval_episodes=episodes, deterministic=True)
    env.close()
    return float(mean_return), float(data.normalized_score(mean_return))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    data, data_return = make_dataset(args.out / "hopper-expert-v2.hdf5", args.transitions, args.zoo, args.seed,
                                     args.progress)
    print(f"dataset {data.name}: {len(data)} transitions from {data.source}, fingerprint {data.fingerprint()}, "
          f"mean episode return {data_return:.0f} (normalised {data.normalized_score(data_return):.1f})")

    env = make_vec_env(ENV_ID, n_envs=1, seed=args.seed)
    model = IQL("MlpPolicy", env, dataset=data, batch_size=args.batch_size, seed=args.seed, device="cpu",
                policy_kwargs=dict(net_arch=args.net_arch))
    model.learn_offline(args.offline_steps, progress_bar=args.progress)
    model.save(args.out / "iql_offline.zip")
    offline = evaluate(model, data, args.eval_episodes, args.seed + 1_000)
    print(f"IQL after {args.offline_steps} offline updates: return {offline[0]:.0f}, normalised score {offline[1]:.1f}")

    model.learn(args.online_steps, reset_num_timesteps=False, progress_bar=args.progress)
    model.save(args.out / "iql_online.zip")
    online = evaluate(model, data, args.eval_episodes, args.seed + 1_000)
    print(f"IQL after {args.online_steps} more env steps: return {online[0]:.0f}, normalised score {online[1]:.1f}")
    env.close()
    return {"dataset": data, "model": model, "data_score": float(data.normalized_score(data_return)),
            "offline_return": offline[0], "offline_score": offline[1],
            "online_return": online[0], "online_score": online[1]}


if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)  # small networks: one thread is fastest, and runs are reproducible
    main()
