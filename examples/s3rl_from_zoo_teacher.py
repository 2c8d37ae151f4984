"""SnapshotRL (S3RL): an SB3 SAC student that starts its episodes from a zoo teacher's states.

The teacher is the Hopper-v4 SAC policy (return 2161) committed as a policy-zoo root under
``results/snapshot/teachers/`` (``rl.zoo.get_entry`` finds it); its snapshots (full MuJoCo states every 10 steps of
10 teacher episodes, with the teacher's value of each) are cached beside it, and
``algos.snapshot.get_or_collect_snapshots`` loads them (or runs the teacher once to collect them, for a teacher that
has no cache yet; ``SnapshotSet.load(path)`` reads a cache file directly). The student is plain SB3 SAC; only its
env changes: ``SnapshotReset`` restores a snapshot at each reset during the first ``--snapshot-steps`` env steps (a
cluster of teacher values uniformly, then a snapshot) and truncates a trajectory started from a snapshot after
``--max-student-steps`` steps.

Run::

    python examples/s3rl_from_zoo_teacher.py       # 3,000 student steps, snapshot resets for 1,500: under a minute
    python examples/s3rl_from_zoo_teacher.py --steps 40000 --snapshot-steps 20000 --net-arch 256 256 --batch-size 256

Output (under ``--out``, default ``/tmp/frontier-rl-examples/s3rl``): ``s3rl_sac_hopper.zip`` (the student); the script
prints the teacher's return, how many student trajectories started from snapshots, and the student's return in the
ordinary env.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import gymnasium as gym
from stable_baselines3 import SAC
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from algos.snapshot import DEFAULT_CLUSTERS, SnapshotReset, get_or_collect_snapshots
from rl.zoo import get_entry

ENV_ID = "Hopper-v4"
TEACHERS = Path(__file__).resolve().parents[1] / "results" / "snapshot" / "teachers"


class CountSnapshotEpisodes(BaseCallback):
    """Counts the student's episodes that started from a teacher snapshot, and those S3RL's truncation cut short."""

    def __init__(self) -> None:
        super().__init__()
        self.from_snapshot = 0
        self.truncated = 0

    def _on_training_start(self) -> None:  # the first reset, done by learn
        self.from_snapshot += sum("snapshot" in info for info in self.training_env.reset_infos)

    def _on_step(self) -> bool:
        for index, (done, info) in enumerate(zip(self.locals["dones"], self.locals["infos"])):
            if done:  # the VecEnv has reset this env already: its reset info names the snapshot, if any
                self.from_snapshot += "snapshot" in self.training_env.reset_infos[index]
                self.truncated += bool(info.get("snapshot_truncated"))
        return True


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3_000, help="student env steps")
    parser.add_argument("--snapshot-steps", type=int, default=None,
                        help="T: env steps with snapshot resets (default: half of --steps; paper: 100,000)")
    parser.add_argument("--max-student-steps", type=int, default=100, help="N: steps from a snapshot (paper: 100)")
    parser.add_argument("--learning-starts", type=int, default=500, help="random-action steps before SAC updates")
    parser.add_argument("--net-arch", type=int, nargs="+", default=[64, 64], help="hidden layers (SB3: 256 256)")
    parser.add_argument("--batch-size", type=int, default=64, help="minibatch size (SB3: 256)")
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--zoo", type=Path, default=TEACHERS, help="policy-zoo root holding Hopper-v4/expert/")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("/tmp/frontier-rl-examples/s3rl"), help="output folder")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bar")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    snapshot_steps = args.steps // 2 if args.snapshot_steps is None else args.snapshot_steps

    # The teacher and its snapshots (loaded from the cache beside the model, or collected once).
    teacher = get_entry(ENV_ID, "expert", root=args.zoo)
    snapshots, snapshot_file = get_or_collect_snapshots(ENV_ID, str(teacher.model_path), progress=args.progress)
    print(f"teacher: {teacher.algo} {ENV_ID} {teacher.level}, return {teacher.mean_return:.0f}; {len(snapshots)} "
          f"snapshots from {snapshot_file}")

    # The student's env: SnapshotReset right after gym.make (inside SB3's Monitor).
    def make_student_env() -> gym.Env:
        return SnapshotReset(gym.make(ENV_ID), snapshots, active_steps=snapshot_steps,
                             max_steps=args.max_student_steps, n_clusters=DEFAULT_CLUSTERS["sac"], seed=args.seed)

    env = make_vec_env(make_student_env, n_envs=1, seed=args.seed)
    model = SAC("MlpPolicy", env, learning_starts=args.learning_starts, batch_size=args.batch_size, seed=args.seed,
                policy_kwargs=dict(net_arch=args.net_arch), device="cpu")
    counter = CountSnapshotEpisodes()
    model.learn(args.steps, callback=counter, progress_bar=args.progress)
    path = args.out / "s3rl_sac_hopper.zip"
    model.save(path)

    # The student is evaluated in the ordinary env (normal resets).
    eval_env = make_vec_env(ENV_ID, n_envs=1, seed=args.seed + 1_000)
    mean_return, std_return = evaluate_policy(SAC.load(path, device="cpu"), eval_env,
                                              n_eval_episodes=args.eval_episodes, deterministic=True)
    print(f"student SAC after {args.steps} steps ({snapshot_steps} with snapshot resets: {counter.from_snapshot} "
          f"episodes started from a snapshot, {counter.truncated} of them truncated after {args.max_student_steps} "
          f"steps): return {mean_return:.0f} +- {std_return:.0f}; saved to {path}")
    env.close()
    eval_env.close()
    return {"model_path": path, "teacher_return": teacher.mean_return, "n_snapshots": len(snapshots),
            "episodes_from_snapshots": counter.from_snapshot, "snapshot_truncations": counter.truncated,
            "mean_return": float(mean_return), "std_return": float(std_return)}


if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)  # small networks: one thread is fastest, and runs are reproducible
    main()
