"""MDPO in an ordinary Stable-Baselines3 script: callbacks, progress bar, save/load, evaluate_policy.

``algos.mdpo.MDPO`` is an SB3 ``OnPolicyAlgorithm``, so everything an SB3 user already writes works unchanged:
an ``EvalCallback`` that stops training once the evaluation return passes a threshold
(``StopTrainingOnRewardThreshold``) and keeps the best model, a ``CheckpointCallback``, the progress bar,
``save`` / ``load`` and ``evaluate_policy``.

Run::

    python examples/mdpo_sb3_callbacks.py                      # 8,192 steps on Pendulum-v1, under a minute
    python examples/mdpo_sb3_callbacks.py --steps 200000 --out /tmp/mdpo_pendulum

Output (under ``--out``, default ``/tmp/frontier-rl-examples/mdpo``): ``mdpo_pendulum.zip`` (the final model),
``best/best_model.zip`` and ``eval/evaluations.npz`` (EvalCallback), ``checkpoints/mdpo_<steps>_steps.zip``
(CheckpointCallback); the script prints the loaded model's evaluation return.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import CheckpointCallback, EvalCallback, StopTrainingOnRewardThreshold
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from algos.mdpo import MDPO

ENV_ID = "Pendulum-v1"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8_192, help="env steps of training (default 8192)")
    parser.add_argument("--n-steps", type=int, default=1_024, help="MDPO rollout length per update (default 1024)")
    parser.add_argument("--eval-freq", type=int, default=2_048, help="evaluate every this many steps")
    parser.add_argument("--eval-episodes", type=int, default=5, help="episodes per evaluation")
    parser.add_argument("--reward-threshold", type=float, default=-200.0,
                        help="stop training once the evaluation return reaches this (Pendulum: -200 is solved)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("/tmp/frontier-rl-examples/mdpo"), help="output folder")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bar")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    env = make_vec_env(ENV_ID, n_envs=1, seed=args.seed)
    eval_env = make_vec_env(ENV_ID, n_envs=1, seed=args.seed + 1_000)

    # Evaluate every --eval-freq steps, keep the best model, stop early once the task is solved.
    stop = StopTrainingOnRewardThreshold(reward_threshold=args.reward_threshold, verbose=1)
    evaluation = EvalCallback(
        eval_env, callback_on_new_best=stop, eval_freq=args.eval_freq, n_eval_episodes=args.eval_episodes,
        best_model_save_path=str(args.out / "best"), log_path=str(args.out / "eval"), deterministic=True,
    )
    checkpoints = CheckpointCallback(save_freq=args.eval_freq, save_path=str(args.out / "checkpoints"),
                                     name_prefix="mdpo")

    model = MDPO("MlpPolicy", env, n_steps=args.n_steps, seed=args.seed, device="cpu")
    model.learn(args.steps, callback=[evaluation, checkpoints], progress_bar=args.progress)
    path = args.out / "mdpo_pendulum.zip"
    model.save(path)

    # Load without an env (as on another machine) and evaluate on the evaluation env.
    loaded = MDPO.load(path, device="cpu")
    mean_return, std_return = evaluate_policy(loaded, eval_env, n_eval_episodes=args.eval_episodes, deterministic=True)
    print(f"MDPO on {ENV_ID} after {model.num_timesteps} steps: return {mean_return:.1f} +- {std_return:.1f} "
          f"(best evaluation {evaluation.best_mean_reward:.1f}); model saved to {path}")
    env.close()
    eval_env.close()
    return {"model_path": path, "num_timesteps": model.num_timesteps, "mean_return": float(mean_return),
            "std_return": float(std_return), "best_mean_reward": float(evaluation.best_mean_reward),
            "model": loaded}


if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)  # small networks: one thread is fastest, and runs are reproducible
    main()
