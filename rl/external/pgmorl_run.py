"""Train morl-baselines' PGMORL on an MO-Gymnasium env and evaluate its Pareto archive (standalone script).

Run by the morl-baselines venv's python (see :mod:`rl.external.morl_baselines_venv`), usually through
:func:`rl.external.pgmorl_baseline.run_pgmorl`::

    python pgmorl_run.py --env mo-hopper-2obj-v5 --total-timesteps 300000 --seed 0 --ref-point -100 -100 \\
        [--max-episode-steps 500] [--eval-episodes 5] --out pgmorl.json

It imports only the standard library, numpy (at module level), and torch, gymnasium, mo_gymnasium and
morl_baselines (inside :func:`main`), never the project (not installed in that venv), so that the project's
tests can import the pure functions here by path without morl-baselines; the one project file it uses,
``child_io.py`` beside it (standard library and numpy), it loads by path.

How morl-baselines 1.3.0's PGMORL spends env steps. One *iteration* trains each of the ``pop_size`` (6) MOPPO
agents once, each collecting ``steps_per_iteration`` (2048) steps in every one of the ``num_envs`` (4) envs of
one shared ``MOSyncVectorEnv``: ``4 * 6 * 2048 = 49 152`` steps, counted in ``global_step``. ``train`` runs
``warmup_iterations`` (80) iterations, then generations of ``evolutionary_iterations`` (20) iterations while
fewer than ``max(total_timesteps // 49 152, warmup + evolutionary)`` have run: the library's minimum is 100
iterations, 4.9 M steps, whatever ``total_timesteps`` says. :func:`plan_iterations` fits that to a budget
(see there); ``total_timesteps`` is then given to ``train`` so that exactly the planned iterations run.

Episode cap. The training envs come from ``morl_baselines.single_policy.ser.mo_ppo.make_env(env_id, ...)``, which
calls ``mo_gym.make(env_id)`` with no way to pass ``max_episode_steps``; so the script registers a copy of the
env's spec with ``max_episode_steps`` = ``--max-episode-steps`` under the id ``cap<N>/<name>-v<version>`` and
gives PGMORL that id. ``make_env`` wraps each env in ClipAction, NormalizeObservation (running mean and variance,
per env), a clip of the normalised observation to [-10, 10], per-objective reward normalisation and clipping.

Evaluation inside PGMORL. ``PGMORL.train`` needs an ``eval_env``; its evaluations (5 episodes, actions *sampled*
from the policy, discounted vector return with gamma 0.995) decide the Pareto archive, the population and the
predictor. The script gives it the capped env with ClipAction and the training envs' observation normalisation
(the four envs' running statistics pooled, read-only, as when the agents act in training) and raw rewards, as
the original PGMORL evaluates with the ``ob_rms`` its policies were trained with; its evaluations are therefore
in the env's reward units, the units of ``--ref-point`` (PGMORL's hypervolume reference and the origin of its
performance buffer). They are reported as ``archive_reported``.

Our evaluation (``points``). Every policy of PGMORL's final Pareto archive is run for ``--eval-episodes`` episodes
in ``mo_gym.make(env, max_episode_steps=N)``, reset with seeds ``seed + 0, seed + 1, ...``, acting with the mean
action (clipped to the action bounds) on the observation normalised with the pooled statistics of the training
envs at the moment the policy entered the archive (snapshotted then; the original PGMORL stores ``ob_rms`` with
each policy likewise) and clipped to [-10, 10]; a point is the mean over episodes of the undiscounted sum of the
vector reward.

Output: one JSON file (``--out``), written atomically at the end.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import math
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ALGORITHM = "PGMORL"
LIBRARY = "morl-baselines"
LIBRARY_VERSION = "1.3.0"

PGMORL_DEFAULTS: dict[str, Any] = {
    "num_envs": 4, "pop_size": 6, "warmup_iterations": 80, "steps_per_iteration": 2048,
    "evolutionary_iterations": 20, "num_minibatches": 32,
}
"""The constructor defaults of morl-baselines 1.3.0's PGMORL that the budget depends on (checked at run time)."""

MIN_STEPS_PER_ITERATION = 64
"""The fewest steps per env per iteration a scaled-down run may use (PPO minibatches of 64 * 4 / 32 = 8)."""

OBS_CLIP = 10.0
"""``make_env`` clips the normalised observations to [-10, 10]."""

INTERNAL_EVAL_SEED_OFFSET = 10_000
"""PGMORL's own evaluation env is seeded once with ``seed + 10_000`` (ours resets with ``seed + k``)."""

# The child scripts' shared helpers (child_io.py beside this file), by path: no project in morl-baselines' venv
_spec = importlib.util.spec_from_file_location("frontier_rl_child_io", Path(__file__).with_name("child_io.py"))
child_io = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(child_io)


# -------------------------------------------------------------------------------------------- budget (pure)


def plan_iterations(
    total_timesteps: int,
    *,
    num_envs: int = PGMORL_DEFAULTS["num_envs"],
    pop_size: int = PGMORL_DEFAULTS["pop_size"],
    steps_per_iteration: int = PGMORL_DEFAULTS["steps_per_iteration"],
    warmup_iterations: int = PGMORL_DEFAULTS["warmup_iterations"],
    evolutionary_iterations: int = PGMORL_DEFAULTS["evolutionary_iterations"],
    num_minibatches: int = PGMORL_DEFAULTS["num_minibatches"],
    min_steps_per_iteration: int = MIN_STEPS_PER_ITERATION,
) -> dict[str, Any]:
    """PGMORL's iterations for a budget of ``total_timesteps`` env steps (all envs, all policies), never above it.

    With ``per_iteration = num_envs * pop_size * steps_per_iteration`` (49 152 by default) the budget buys
    ``n = total_timesteps // per_iteration`` iterations:

    - ``n >= warmup + evolutionary`` (100, 4.9 M steps): PGMORL's own settings, 80 warm-up iterations and as many
      whole generations of 20 as fit (``(n - 80) // 20``); a part of a generation is not run;
    - ``2 <= n < 100``: one generation, warm-up and evolution scaled down in PGMORL's ratio 80 : 20, i.e.
      ``warmup = round(0.8 n)`` (at least 1, leaving at least 1), ``evolutionary = n - warmup``; 300 000 steps:
      n = 6, 5 + 1;
    - ``n < 2``: one warm-up and one evolutionary iteration, with ``steps_per_iteration`` cut to
      ``total_timesteps // (2 * num_envs * pop_size)`` rounded down to a multiple that keeps the PPO batch
      (``num_envs * steps_per_iteration``) divisible into ``num_minibatches``; 20 000 steps: 416 per env.

    Returns:
        ``rule`` (``"defaults"``, ``"scaled"`` or ``"scaled_steps_per_iteration"``), ``steps_per_iteration``,
        ``warmup_iterations``, ``evolutionary_iterations``, ``generations``, ``iterations``, ``env_steps``
        (``global_step`` at the end: iterations * num_envs * pop_size * steps_per_iteration) and
        ``train_total_timesteps`` (what to give ``PGMORL.train`` so that exactly these iterations run).

    Raises:
        ValueError: a budget below two iterations of ``min_steps_per_iteration``.
    """
    total = int(total_timesteps)
    per_iteration = num_envs * pop_size * steps_per_iteration
    full = warmup_iterations + evolutionary_iterations
    n = total // per_iteration
    if n >= full:
        rule, spi, warmup, evolutionary = "defaults", steps_per_iteration, warmup_iterations, evolutionary_iterations
        generations = (n - warmup) // evolutionary
    elif n >= 2:
        rule, spi, generations = "scaled", steps_per_iteration, 1
        warmup = min(n - 1, max(1, (2 * n * warmup_iterations + full) // (2 * full)))  # round(n * 80 / 100)
        evolutionary = n - warmup
    else:
        rule, warmup, evolutionary, generations = "scaled_steps_per_iteration", 1, 1, 1
        multiple = num_minibatches // math.gcd(num_minibatches, num_envs)
        spi = total // (2 * num_envs * pop_size) // multiple * multiple
        minimum = -(-min_steps_per_iteration // multiple) * multiple
        if spi < minimum:
            raise ValueError(
                f"total_timesteps={total} is too small for PGMORL: it needs at least "
                f"{2 * num_envs * pop_size * minimum} (2 iterations of {pop_size} policies x {num_envs} envs x "
                f"{minimum} steps)."
            )
    iterations = warmup + generations * evolutionary
    env_steps = iterations * num_envs * pop_size * spi
    return {
        "rule": rule,
        "steps_per_iteration": spi,
        "warmup_iterations": warmup,
        "evolutionary_iterations": evolutionary,
        "generations": generations,
        "iterations": iterations,
        "env_steps": env_steps,
        "train_total_timesteps": env_steps,
        "unused_timesteps": total - env_steps,
    }


# ------------------------------------------------------------------------------------ normalisation (pure)


def pool_moments(means: list, variances: list, counts: list) -> tuple[np.ndarray, np.ndarray, float]:
    """Mean, variance and count of the union of samples summarised by per-env running moments (exact pooling)."""
    means = np.asarray(means, dtype=np.float64)
    variances = np.asarray(variances, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    total = float(counts.sum())
    weights = (counts / total).reshape((-1,) + (1,) * (means.ndim - 1))
    mean = (weights * means).sum(axis=0)
    variance = (weights * (variances + (means - mean) ** 2)).sum(axis=0)
    return mean, variance, total


def normalize(obs: Any, mean: np.ndarray, var: np.ndarray, epsilon: float, clip: float = OBS_CLIP) -> np.ndarray:
    """``make_env``'s observation transform: NormalizeObservation's float32 output, then the clip."""
    return np.clip(np.float32((np.asarray(obs) - mean) / np.sqrt(var + epsilon)), -clip, clip)


# ---------------------------------------------------------------------------------------------------- output


write_json_atomic = child_io.write_json_atomic
"""Write a record as strict JSON (NaN and infinities become null) through a temporary file, then rename."""


def run_inputs(args: argparse.Namespace) -> dict[str, Any]:
    """The inputs that determine a run (``run_pgmorl`` reuses an output file only when they are the same)."""
    return {
        "env": args.env,
        "total_timesteps": int(args.total_timesteps),
        "seed": int(args.seed),
        "ref_point": [float(x) for x in args.ref_point],
        "max_episode_steps": int(args.max_episode_steps),
        "eval_episodes": int(args.eval_episodes),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train morl-baselines' PGMORL and evaluate its Pareto archive.")
    parser.add_argument("--env", required=True, help="MO-Gymnasium id with continuous actions, e.g. mo-hopper-2obj-v5")
    parser.add_argument("--total-timesteps", type=int, required=True,
                        help="env steps in all, over all of PGMORL's envs and policies")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ref-point", type=float, nargs="+", required=True,
                        help="hypervolume reference point (PGMORL's ref_point and origin), one float per objective")
    parser.add_argument("--max-episode-steps", type=int, default=500,
                        help="episode cap of the training and evaluation envs (C-MORL: 500)")
    parser.add_argument("--eval-episodes", type=int, default=5, help="episodes per archive policy in our evaluation")
    parser.add_argument("--out", required=True, help="output JSON file")
    args = parser.parse_args(argv)
    if args.max_episode_steps <= 0 or args.eval_episodes <= 0 or args.total_timesteps <= 0:
        parser.error("--total-timesteps, --max-episode-steps and --eval-episodes must be positive.")
    try:
        plan_iterations(args.total_timesteps)
    except ValueError as error:
        parser.error(str(error))
    return args


# ----------------------------------------------------------------------------------------------- the run


def capped_env_id(env_id: str, max_episode_steps: int) -> str:
    """Register (once) a copy of ``env_id``'s spec with ``max_episode_steps`` and return its id."""
    import dataclasses

    import gymnasium as gym
    from gymnasium.envs.registration import get_env_id

    spec = gym.spec(env_id)
    namespace = f"{spec.namespace}-cap{max_episode_steps}" if spec.namespace else f"cap{max_episode_steps}"
    new_id = get_env_id(namespace, spec.name, spec.version)
    if new_id not in gym.registry:
        gym.registry[new_id] = dataclasses.replace(
            spec, id=new_id, max_episode_steps=int(max_episode_steps), kwargs=dict(spec.kwargs)
        )
    return new_id


def _counted(step, counter: dict, key: str):
    """``step`` that adds 1 to ``counter[key]`` per call."""

    def step_and_count(action):
        counter[key] += 1
        return step(action)

    return step_and_count


def _obs_normalizers(vector_env) -> list:
    """The NormalizeObservation wrapper of each env of PGMORL's vector env."""
    from gymnasium.wrappers import NormalizeObservation

    found = []
    for env in vector_env.envs:
        while not isinstance(env, NormalizeObservation):
            if not hasattr(env, "env"):
                raise RuntimeError("PGMORL's training env has no NormalizeObservation wrapper (library changed?)")
            env = env.env
        found.append(env)
    return found


def pooled_stats(normalizers: list) -> dict[str, Any]:
    """The training envs' observation statistics, pooled (a copy)."""
    mean, var, count = pool_moments(
        [n.obs_rms.mean for n in normalizers], [n.obs_rms.var for n in normalizers],
        [n.obs_rms.count for n in normalizers],
    )
    return {"mean": mean, "var": var, "count": count, "epsilon": float(normalizers[0].epsilon)}


def evaluate_policy(network, stats: dict, env_id: str, max_episode_steps: int, seed: int, episodes: int) -> dict:
    """Our protocol: deterministic (mean) actions, seeds seed + k, undiscounted vector returns averaged."""
    import mo_gymnasium as mo_gym
    import torch

    env = mo_gym.make(env_id, max_episode_steps=max_episode_steps)
    low, high = env.action_space.low, env.action_space.high
    device = next(network.parameters()).device
    returns, lengths = [], []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        total = np.zeros(env.unwrapped.reward_space.shape, dtype=np.float64)
        length, done = 0, False
        while not done:
            x = torch.as_tensor(normalize(obs, stats["mean"], stats["var"], stats["epsilon"]), device=device)[None]
            with torch.no_grad():
                action = network.actor_mean(x)[0].cpu().numpy()
            obs, reward, terminated, truncated, _ = env.step(np.clip(action, low, high))
            total += np.asarray(reward, dtype=np.float64)
            length += 1
            done = terminated or truncated
        returns.append(total)
        lengths.append(length)
    env.close()
    return {"point": np.mean(returns, axis=0), "episode_returns": returns, "episode_lengths": lengths}


def versions() -> dict[str, str]:
    """Versions of the packages that make the result."""
    import importlib.metadata as md

    import gymnasium
    import mujoco
    import torch

    return {
        "morl-baselines": md.version("morl-baselines"), "mo-gymnasium": md.version("mo-gymnasium"),
        "torch": str(torch.__version__), "gymnasium": gymnasium.__version__, "mujoco": mujoco.__version__,
        "pymoo": md.version("pymoo"), "numpy": np.__version__, "python": platform.python_version(),
    }


def run(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """Train PGMORL and evaluate its archive; the output record."""
    import torch

    child_io.single_thread_torch()
    import gymnasium as gym
    import mo_gymnasium as mo_gym
    from morl_baselines.common.pareto import ParetoArchive
    from morl_baselines.multi_policy.pgmorl.pgmorl import PGMORL

    signature = inspect.signature(PGMORL.__init__)
    defaults = {name: p.default for name, p in signature.parameters.items() if p.default is not inspect.Parameter.empty}
    changed = {k: (v, defaults.get(k)) for k, v in PGMORL_DEFAULTS.items() if defaults.get(k) != v}
    if changed:
        raise RuntimeError(f"PGMORL's defaults differ from those this script plans with: {changed}")

    probe = mo_gym.make(args.env)
    reward_dim = probe.unwrapped.reward_space.shape[0]
    action_space = probe.action_space
    probe.close()
    if not isinstance(action_space, gym.spaces.Box):
        raise ValueError(f"{args.env} has actions {action_space}: morl-baselines' PGMORL needs continuous actions.")
    if len(args.ref_point) != reward_dim:
        raise ValueError(f"--ref-point has {len(args.ref_point)} values but {args.env} has {reward_dim} objectives.")
    ref_point = np.asarray(args.ref_point, dtype=np.float64)
    plan = plan_iterations(args.total_timesteps)
    env_id = capped_env_id(args.env, args.max_episode_steps)

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    overrides = {
        "env_id": env_id,
        "origin": ref_point,
        "seed": args.seed,
        "log": False,
        "warmup_iterations": plan["warmup_iterations"],
        "evolutionary_iterations": plan["evolutionary_iterations"],
        "steps_per_iteration": plan["steps_per_iteration"],
    }
    settings = {**defaults, **overrides}
    setup_start = time.perf_counter()
    agent = PGMORL(**overrides)
    settings["device"] = str(agent.device)
    counts = {"train": 0, "internal_eval": 0}
    for env in agent.env.envs:  # MOSyncVectorEnv steps each env by env.step, except on autoreset (a reset)
        env.step = _counted(env.step, counts, "train")
    normalizers = _obs_normalizers(agent.env)

    class SnapshotArchive(ParetoArchive):
        """PGMORL's Pareto archive, recording the observation statistics when a policy enters it."""

        def add(self, candidate, evaluation):
            super().add(candidate, evaluation)
            for individual in self.individuals:
                if not hasattr(individual, "_frontier_obs_stats"):
                    individual._frontier_obs_stats = pooled_stats(normalizers)
                    individual._frontier_archived_at = int(agent.global_step)

    agent.archive = SnapshotArchive()

    internal_eval_env = mo_gym.make(env_id)
    internal_eval_env = gym.wrappers.ClipAction(internal_eval_env)
    epsilon = float(normalizers[0].epsilon)
    internal_eval_env = gym.wrappers.TransformObservation(
        internal_eval_env,
        lambda obs: normalize(obs, *_mean_var(pooled_stats(normalizers)), epsilon),
        gym.spaces.Box(-OBS_CLIP, OBS_CLIP, internal_eval_env.observation_space.shape, np.float32),
    )
    internal_eval_env.reset(seed=args.seed + INTERNAL_EVAL_SEED_OFFSET)
    internal_eval_env.action_space.seed(args.seed + INTERNAL_EVAL_SEED_OFFSET)
    internal_eval_env.step = _counted(internal_eval_env.step, counts, "internal_eval")
    setup_seconds = time.perf_counter() - setup_start

    print(f"[pgmorl] {args.env} (capped at {args.max_episode_steps} steps as {env_id}), seed {args.seed}, "
          f"budget {args.total_timesteps}: {json.dumps(plan)}", flush=True)
    print(f"[pgmorl] settings: {json.dumps(settings, default=child_io.jsonable)}", flush=True)
    start = time.perf_counter()
    agent.train(total_timesteps=plan["train_total_timesteps"], eval_env=internal_eval_env, ref_point=ref_point)
    wall = time.perf_counter() - start
    if agent.global_step != plan["env_steps"]:
        raise RuntimeError(f"PGMORL took {agent.global_step} steps (global_step), planned {plan['env_steps']}.")

    eval_start = time.perf_counter()
    policies, points = [], []
    for individual, reported in zip(agent.archive.individuals, agent.archive.evaluations):
        stats = individual._frontier_obs_stats
        result = evaluate_policy(
            individual.networks, stats, args.env, args.max_episode_steps, args.seed, args.eval_episodes
        )
        points.append(result["point"])
        policies.append({
            "weights": individual.weights.detach().cpu().numpy(),
            "archived_at_global_step": individual._frontier_archived_at,
            "obs_stats_count": stats["count"],
            "point": result["point"],
            "reported": np.asarray(reported),
            "episode_returns": result["episode_returns"],
            "episode_lengths": result["episode_lengths"],
        })
    eval_seconds = time.perf_counter() - eval_start
    return {
        "algorithm": ALGORITHM,
        "library": LIBRARY,
        "version": versions()["morl-baselines"],
        "env": args.env,
        "seed": args.seed,
        "total_timesteps_requested": int(args.total_timesteps),
        "env_steps": counts["train"],
        "global_step": int(agent.global_step),
        "wall_s": wall,
        "steps_per_s": counts["train"] / wall if wall > 0 else None,
        "settings": settings,
        "budget": plan,
        "points": points,
        "archive_reported": [np.asarray(e) for e in agent.archive.evaluations],
        "inputs": run_inputs(args),
        "ref_point": ref_point,
        "max_episode_steps": args.max_episode_steps,
        "eval_episodes": args.eval_episodes,
        "training_env_id": env_id,
        "policies": policies,
        "internal_eval_env_steps": counts["internal_eval"],
        "setup_seconds": setup_seconds,
        "eval_seconds": eval_seconds,
        "protocol": {
            "points": "mean over episodes (reset seeds seed+0, seed+1, ...) of the undiscounted vector return of the "
                      "mean action, observations normalised with the training envs' pooled statistics at archiving",
            "archive_reported": "PGMORL's own evaluations: 5 episodes, sampled actions, discounted (gamma) vector "
                                "return, in an env with the training envs' current observation normalisation and raw "
                                "rewards (seeded once with seed + 10000)",
            "env_steps": "env.step calls of the training envs (global_step also counts autoreset calls, which step "
                         "no physics); the evaluation steps are not included",
        },
        "versions": versions(),
        "command": command,
        "torch_threads": torch.get_num_threads(),
    }


def _mean_var(stats: dict) -> tuple[np.ndarray, np.ndarray]:
    return stats["mean"], stats["var"]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = child_io.command_line(__file__, argv)
    try:
        record = run(args, command)
    except Exception as error:  # the traceback for the log, then one line for the caller
        return child_io.report_failure(error)
    path = write_json_atomic(args.out, record)
    print(f"[pgmorl] {len(record['points'])} archive policies; {record['env_steps']} env steps in "
          f"{record['wall_s']:.1f} s ({record['steps_per_s']:.0f} steps/s); wrote {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
