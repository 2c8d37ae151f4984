"""SubPO on a submodular coverage grid, against the modular-reward baseline and the greedy reference.

``Coverage-Constant-History-v0`` (``envs.submodular``): a 30x30 grid, 79 moves from a fixed start, and the objective
F(tau) = the weighted area covered by the trajectory (a disc of radius 1 around every visited cell). The env pays the
marginal gains F(s_{h+1} | tau_{0:h}) as rewards, so an episode's return is F(tau); the ``-History`` observation adds
the visited map, the non-Markovian input the policy needs. ``SubPO`` (an SB3 ``OnPolicyAlgorithm``, REINFORCE form on
Discrete actions) learns on those gains; ``SubPO(..., reward="modular")`` is the paper's baseline that learns from
F({s_{h+1}}) of each new state alone, blind to what was already covered.

Run::

    python examples/subpo_coverage.py                        # 6 updates of 40 episodes per method: under a minute
    python examples/subpo_coverage.py --updates 140 --episodes-per-update 500   # the authors' budget (hours)

Output (under ``--out``, default ``/tmp/frontier-rl-examples/subpo``): ``subpo_coverage.zip`` (the SubPO model) and
``coverage.png`` (one sampled trajectory of each policy over the weight map: covered cells green, visited red); the
script prints F(tau) of sampled trajectories for both methods and the greedy reference.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from torch import nn

import envs  # noqa: F401 - registers the Coverage-* tasks with Gymnasium
from algos.subpo import SubPO
from envs.submodular import greedy_reference

ENV_ID = "Coverage-Constant-History-v0"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=6, help="gradient steps per method (authors: 140)")
    parser.add_argument("--episodes-per-update", type=int, default=40, help="episodes per gradient step (authors: 500)")
    parser.add_argument("--eval-episodes", type=int, default=20, help="sampled trajectories to score each policy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("/tmp/frontier-rl-examples/subpo"), help="output folder")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bars")
    return parser.parse_args(argv)


def train(reward: str, args: argparse.Namespace) -> SubPO:
    """SubPO with the authors' grid network, learning from the marginal gains or the modular reward."""
    env = make_vec_env(ENV_ID, n_envs=1, seed=args.seed)
    model = SubPO("MlpPolicy", env, reward=reward, episodes_per_update=args.episodes_per_update, seed=args.seed,
                  policy_kwargs=dict(net_arch=[64, 32], activation_fn=nn.Tanh), device="cpu")
    return model.learn(args.updates * model.n_steps, progress_bar=args.progress)


def sampled_F(model: SubPO, episodes: int, seed: int) -> np.ndarray:
    """F(tau) of ``episodes`` trajectories sampled from the policy (the return in the marginal-gain env)."""
    env = Monitor(gym.make(ENV_ID))
    env.reset(seed=seed)
    values, _ = evaluate_policy(model, env, n_eval_episodes=episodes, deterministic=False, return_episode_rewards=True)
    env.close()
    return np.asarray(values, dtype=np.float64)


def trajectory_picture(model: SubPO, seed: int) -> tuple[np.ndarray, float]:
    """The env's render after one sampled trajectory, and its F(tau)."""
    env = gym.make(ENV_ID, render_mode="rgb_array")
    obs, info = env.reset(seed=seed)
    done = False
    while not done:
        action, _ = model.predict(obs, deterministic=False)
        obs, _, terminated, truncated, info = env.step(action)
        done = terminated or truncated
    picture = env.render()
    env.close()
    return picture, float(info["F"])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    models = {"SubPO": train("submodular", args), "modular baseline": train("modular", args)}
    models["SubPO"].save(args.out / "subpo_coverage.zip")

    greedy = greedy_reference(ENV_ID)
    scores = {name: sampled_F(model, args.eval_episodes, args.seed + 1_000) for name, model in models.items()}
    steps = models["SubPO"].num_timesteps
    for name, values in scores.items():
        print(f"{name:>16} after {steps} env steps: F(tau) = {values.mean():.1f} +- {values.std():.1f} "
              f"({len(values)} sampled trajectories)")
    print(f"{'greedy reference':>16}: F = {greedy:.1f}")

    figure, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 4.4))
    for axis, (name, model) in zip(axes, models.items()):
        picture, value = trajectory_picture(model, args.seed + 1_000)
        axis.imshow(picture, origin="lower")
        axis.set(title=f"{name}: F = {value:.0f} (greedy {greedy:.0f})", xticks=[], yticks=[])
    figure.suptitle(f"{ENV_ID}: one sampled trajectory after {steps} env steps")
    figure.tight_layout()
    picture_path = args.out / "coverage.png"
    figure.savefig(picture_path, dpi=100)
    plt.close(figure)
    print(f"saved {args.out / 'subpo_coverage.zip'} and {picture_path}")
    return {"model_path": args.out / "subpo_coverage.zip", "picture": picture_path, "greedy": greedy,
            "subpo_F": float(scores["SubPO"].mean()), "modular_F": float(scores["modular baseline"].mean()),
            "num_timesteps": steps, "model": models["SubPO"]}


if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)  # small networks: one thread is fastest, and runs are reproducible
    main()
