"""Train and evaluate d3rlpy's IQL, CQL, AWAC or TD3+BC on a D4RL-layout HDF5 file (standalone script).

Run by the d3rlpy venv's python (see :mod:`rl.external.d3rlpy_venv`), usually through
:func:`rl.external.d3rlpy_baseline.run_d3rlpy`::

    python d3rlpy_run.py --algo iql --dataset hopper-medium-v2.hdf5 --env Hopper-v4 --n-steps 1000000 \\
        --seed 0 --eval-freq 5000 --eval-episodes 10 --final-eval-episodes 10 --out runs/d3rlpy_iql \\
        [--ref-min X --ref-max Y]

It imports only the standard library, numpy, h5py, torch, gymnasium, mujoco and d3rlpy (never the project, which is
not installed in that venv); numpy alone at module level, so that the project's tests can import the pure
functions here by path without d3rlpy. The one project file it uses, ``child_io.py`` beside it (standard library
and numpy: strict JSON, atomic writes), it loads by path.

Data. The HDF5 rows become a d3rlpy ``MDPDataset`` whose transitions are exactly those of D4RL's
``qlearning_dataset`` (what our offline algorithms train on; see :func:`episode_flags`). d3rlpy 2.8 splits
episodes at ``terminals | timeouts``; within an episode the next observation is the next row; an episode
ending with a terminal keeps its last step as a terminal transition (next observation zeros, no
bootstrap); an episode ending with a timeout drops its last step (its next row is the next episode's start).

Settings. Each algorithm is configured as in d3rlpy's own D4RL reproduction scripts at the v2.8.1 tag,
``reproductions/offline/{iql,cql,awac,td3_plus_bc}.py`` (see :func:`make_config`).

Output in ``--out``: ``evaluations.npz`` (SB3's EvalCallback format: ``timesteps`` = gradient steps,
``results`` and ``ep_lengths`` of shape (n_evals, eval_episodes)), rewritten after every evaluation, and
``run.json`` at the end (the keys of the project's run records), both written atomically. Updates per second
count the training epochs only: scaler fitting, network building and evaluations are timed apart.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ALGOS: tuple[str, ...] = ("iql", "cql", "awac", "td3_bc")
EVALUATIONS_FILE = "evaluations.npz"
RUN_FILE = "run.json"
EVAL_SEED_OFFSET = 10_000
"""The eval env is seeded with ``seed + 10_000``, as the project's runner seeds its eval env."""

REPRODUCTION_SOURCE = "https://github.com/takuseno/d3rlpy/blob/v2.8.1/reproductions/offline/{script}.py"
SCRIPTS = {"iql": "iql", "cql": "cql", "awac": "awac", "td3_bc": "td3_plus_bc"}

# The child scripts' shared helpers (child_io.py beside this file), by path: no project in d3rlpy's venv
_spec = importlib.util.spec_from_file_location("frontier_rl_child_io", Path(__file__).with_name("child_io.py"))
child_io = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(child_io)


# ----------------------------------------------------------------------------------------------- data (numpy)


def episode_flags(terminals: Any, timeouts: Any | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows to keep and the float32 ``terminals``/``timeouts`` to give d3rlpy's ``MDPDataset``.

    With them d3rlpy's transitions are exactly D4RL's ``qlearning_dataset`` rows ``i`` in ``0 .. N-2`` whose
    ``timeouts[i]`` is unset, terminal iff ``terminals[i]``:

    1. a row flagged both terminal and timeout becomes a timeout: D4RL skips it (the timeout test comes
       first) and d3rlpy 2.8.1 would reject it ("terminals and timeouts never become True at the same time");
    2. the last row always ends an episode, as a timeout: D4RL never uses it (no row after it), and d3rlpy
       would otherwise drop the unfinished rows after the last flagged end;
    3. a one-row episode ended by a timeout holds no transition and is removed (d3rlpy would keep it as an
       episode with return 0, which shifts the return range of IQL's ``ReturnBasedRewardScaler``).

    Args:
        terminals, timeouts: (N,) or (N, 1) flags, any dtype; ``timeouts=None`` means none.

    Returns:
        ``(keep, terminals, timeouts)``: a bool mask over the N rows, and the flags of the kept rows.

    Raises:
        ValueError: no rows, mismatched lengths, or no transition left.
    """
    term = np.asarray(terminals).reshape(-1).astype(bool)
    tout = np.zeros_like(term) if timeouts is None else np.asarray(timeouts).reshape(-1).astype(bool)
    if len(term) == 0:
        raise ValueError("The dataset has no rows.")
    if len(tout) != len(term):
        raise ValueError(f"terminals has {len(term)} rows but timeouts has {len(tout)}.")
    term = term & ~tout
    term[-1], tout[-1] = False, True
    ends = term | tout
    starts = np.concatenate([[True], ends[:-1]])
    keep = ~(starts & tout)
    term, tout = term[keep], tout[keep]
    if not np.any(~tout):
        raise ValueError("The dataset holds no transition (every episode is a single time-limit step).")
    return keep, term.astype(np.float32), tout.astype(np.float32)


def transition_rows(terminals: np.ndarray, timeouts: np.ndarray) -> np.ndarray:
    """Indices (into the kept rows) of d3rlpy's transitions for these flags: every row but timeout ends.

    d3rlpy 2.8's ``Episode.transition_count`` is the episode's size if it terminated, else size - 1, so an
    episode loses exactly its final row when that row is a timeout.
    """
    return np.flatnonzero(~np.asarray(timeouts).astype(bool))


def next_observation_mismatches(
    observations: np.ndarray, next_observations: np.ndarray, keep: np.ndarray, terminals: np.ndarray,
    timeouts: np.ndarray,
) -> int:
    """How many non-terminal transitions' stored ``next_observations`` differ from the next row.

    d3rlpy takes the next observation from the next row of the episode; D4RL files also store
    ``next_observations``. They agree in D4RL's and the project's files; a count above 0 means the file's
    ``next_observations`` carry information d3rlpy cannot use (reported in ``run.json``).
    """
    obs = observations[keep]
    nxt = next_observations[keep]
    rows = transition_rows(terminals, timeouts)
    rows = rows[~terminals.astype(bool)[rows]]
    rows = rows[rows + 1 < len(obs)]
    if len(rows) == 0:
        return 0
    close = np.isclose(nxt[rows], obs[rows + 1], rtol=1e-5, atol=1e-6).reshape(len(rows), -1).all(axis=1)
    return int(np.sum(~close))


def _attribute(value: Any) -> Any:
    """An HDF5 attribute as plain Python: bytes decoded, numpy scalars as numbers."""
    if isinstance(value, bytes):
        return value.decode()
    return value.item() if isinstance(value, np.generic) else value


def read_hdf5(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The D4RL arrays of ``path`` (observations, actions, rewards, terminals, timeouts, next_observations if
    present) and its root attributes."""
    import h5py

    with h5py.File(path, "r") as handle:
        missing = [key for key in ("observations", "actions", "rewards", "terminals") if key not in handle]
        if missing:
            raise ValueError(f"{str(path)!r} is not in D4RL's layout: missing {', '.join(missing)}.")
        data = {
            key: handle[key][()]
            for key in ("observations", "actions", "rewards", "terminals", "timeouts", "next_observations")
            if key in handle
        }
        attributes = {key: _attribute(value) for key, value in handle.attrs.items()}
    n = len(data["observations"])
    for key, value in data.items():
        if len(value) != n:
            raise ValueError(f"{str(path)!r}: {key!r} has {len(value)} rows but 'observations' has {n}.")
    return data, attributes


# ---------------------------------------------------------------------------------------------------- output


def write_evaluations(out: str | os.PathLike, timesteps: list[int], results: list, ep_lengths: list) -> Path:
    """Write ``evaluations.npz`` in SB3's EvalCallback format (``timesteps``, ``results``, ``ep_lengths``)."""
    import io

    buffer = io.BytesIO()
    np.savez(
        buffer,
        timesteps=np.asarray(timesteps, dtype=np.int64),
        results=np.asarray(results, dtype=np.float64),
        ep_lengths=np.asarray(ep_lengths, dtype=np.int64),
    )
    path = Path(out) / EVALUATIONS_FILE
    child_io.write_atomic(path, buffer.getvalue())
    return path


def write_run_json(out: str | os.PathLike, record: dict) -> Path:
    """Write ``run.json`` (strict JSON: NaN and infinities become null), atomically."""
    return child_io.write_json_atomic(Path(out) / RUN_FILE, record)


def summarize(returns: list[float], lengths: list[int]) -> dict[str, Any]:
    """The ``final_evaluation`` block of ``run.json`` (the project's EvaluationSummary fields)."""
    return {
        "mean_reward": float(np.mean(returns)),
        "std_reward": float(np.std(returns)),
        "n_episodes": len(returns),
        "episode_rewards": [float(r) for r in returns],
        "episode_lengths": [int(n) for n in lengths],
    }


def normalized_score(mean_return: float, ref_min: float | None, ref_max: float | None) -> float | None:
    """D4RL's score ``100 * (R - ref_min) / (ref_max - ref_min)``, or None without reference returns."""
    if ref_min is None or ref_max is None:
        return None
    return 100.0 * (float(mean_return) - float(ref_min)) / (float(ref_max) - float(ref_min))


# ---------------------------------------------------------------------------------------------------- d3rlpy


OBSERVATION_SCALERS: tuple[str, ...] = ("script", "standard", "none")
"""``--observation-scaler``: the reproduction script's choice, d3rlpy's StandardObservationScaler, or none."""


def make_config(
    algo: str, n_steps: int, dataset_name: str, action_low: np.ndarray, action_high: np.ndarray,
    observation_scaler: str = "script",
):
    """The d3rlpy config of ``algo``, as in d3rlpy v2.8.1's ``reproductions/offline/<algo>.py``, and notes.

    - IQL (``iql.py``): actor and critic lr 3e-4, actor Adam with cosine annealing (T_max = the number of
      steps: the script anneals over its 500 000 steps, so here over ``n_steps``), batch 256, weight_temp 3.0,
      max_weight 100.0, expectile 0.7, ``ReturnBasedRewardScaler(multiplier=1000.0)``; no observation scaler.
    - CQL (``cql.py``): actor lr 1e-4, critic lr 3e-4, temperature lr 1e-4, actor and critic encoders
      [256, 256, 256], batch 256, 10 action samples, alpha_learning_rate 0.0 (fixed alpha, initial 1.0),
      conservative_weight 10.0 for ``medium-v0`` datasets, 5.0 otherwise.
    - AWAC (``awac.py``): actor and critic lr 3e-4, encoders [256, 256, 256, 256], actor Adam with weight
      decay 1e-4, batch 1024, lam 1.0.
    - TD3+BC (``td3_plus_bc.py``): actor and critic lr 3e-4, batch 256, target smoothing sigma 0.2 and clip
      0.5, alpha 2.5, actor update every 2 steps, ``StandardObservationScaler``.

    ``observation_scaler`` other than ``"script"`` replaces the script's choice (``"standard"``: the dataset's
    mean and std, as the project's offline algorithms normalise by default; ``"none"``), a control that
    separates the implementations from this one preprocessing difference (noted).

    Everything else is d3rlpy's default. The scripts add no action scaler (MuJoCo's actions are in [-1, 1]);
    for an env whose action bounds are not [-1, 1] a ``MinMaxActionScaler`` with the env's bounds is added
    (noted), since d3rlpy's squashed policies act in [-1, 1].
    """
    import d3rlpy

    notes = [f"settings of {REPRODUCTION_SOURCE.format(script=SCRIPTS[algo])}"]
    extra: dict[str, Any] = {}
    if not (np.allclose(action_low, -1.0) and np.allclose(action_high, 1.0)):
        extra["action_scaler"] = d3rlpy.preprocessing.MinMaxActionScaler(
            minimum=np.asarray(action_low, dtype=np.float32), maximum=np.asarray(action_high, dtype=np.float32)
        )
        notes.append("MinMaxActionScaler with the env's action bounds (not in the script: bounds are not [-1, 1])")
    if observation_scaler not in OBSERVATION_SCALERS:
        valid = ", ".join(OBSERVATION_SCALERS)
        raise ValueError(f"observation_scaler must be one of {valid}, got {observation_scaler!r}.")
    config, notes = _script_config(algo, n_steps, dataset_name, extra, notes)
    if observation_scaler != "script":
        scaler = d3rlpy.preprocessing.StandardObservationScaler() if observation_scaler == "standard" else None
        config = dataclasses.replace(config, observation_scaler=scaler)
        notes.append(f"observation scaler: {observation_scaler} (replaces the script's)")
    return config, notes


def _script_config(algo: str, n_steps: int, dataset_name: str, extra: dict[str, Any], notes: list[str]):
    """The config of ``reproductions/offline/<algo>.py`` (see :func:`make_config`)."""
    import d3rlpy

    if algo == "iql":
        notes.append(f"cosine annealing T_max = n_steps = {n_steps} (the script: T_max = n_steps = 500000)")
        return d3rlpy.algos.IQLConfig(
            actor_learning_rate=3e-4,
            critic_learning_rate=3e-4,
            actor_optim_factory=d3rlpy.optimizers.AdamFactory(
                lr_scheduler_factory=d3rlpy.optimizers.CosineAnnealingLRFactory(T_max=int(n_steps)),
            ),
            batch_size=256,
            weight_temp=3.0,
            max_weight=100.0,
            expectile=0.7,
            reward_scaler=d3rlpy.preprocessing.ReturnBasedRewardScaler(multiplier=1000.0),
            **extra,
        ), notes
    if algo == "cql":
        conservative_weight = 10.0 if "medium-v0" in dataset_name else 5.0
        notes.append(f"conservative_weight {conservative_weight} (10.0 only for medium-v0 datasets)")
        encoder = d3rlpy.models.encoders.VectorEncoderFactory([256, 256, 256])
        return d3rlpy.algos.CQLConfig(
            actor_learning_rate=1e-4,
            critic_learning_rate=3e-4,
            temp_learning_rate=1e-4,
            actor_encoder_factory=encoder,
            critic_encoder_factory=encoder,
            batch_size=256,
            n_action_samples=10,
            alpha_learning_rate=0.0,
            conservative_weight=conservative_weight,
            **extra,
        ), notes
    if algo == "awac":
        encoder = d3rlpy.models.encoders.VectorEncoderFactory([256, 256, 256, 256])
        return d3rlpy.algos.AWACConfig(
            actor_learning_rate=3e-4,
            actor_encoder_factory=encoder,
            actor_optim_factory=d3rlpy.optimizers.AdamFactory(weight_decay=1e-4),
            critic_learning_rate=3e-4,
            critic_encoder_factory=encoder,
            batch_size=1024,
            lam=1.0,
            **extra,
        ), notes
    if algo == "td3_bc":
        return d3rlpy.algos.TD3PlusBCConfig(
            actor_learning_rate=3e-4,
            critic_learning_rate=3e-4,
            batch_size=256,
            target_smoothing_sigma=0.2,
            target_smoothing_clip=0.5,
            alpha=2.5,
            update_actor_interval=2,
            observation_scaler=d3rlpy.preprocessing.StandardObservationScaler(),
            **extra,
        ), notes
    raise ValueError(f"Unknown algorithm {algo!r}; expected one of {', '.join(ALGOS)}.")


class Evaluator:
    """Deterministic episodes of a d3rlpy algorithm in one env, seeded once (as SB3's eval VecEnv is)."""

    def __init__(self, env_id: str, seed: int) -> None:
        import gymnasium as gym

        self.env = gym.make(env_id)
        self.env.action_space.seed(seed)
        self.pending_seed: int | None = seed
        self.low = self.env.action_space.low
        self.high = self.env.action_space.high

    def __call__(self, algo: Any, n_episodes: int) -> tuple[list[float], list[int]]:
        returns, lengths = [], []
        for _ in range(n_episodes):
            obs, _ = self.env.reset(seed=self.pending_seed)
            self.pending_seed = None
            total, length, done = 0.0, 0, False
            while not done:
                action = algo.predict(np.asarray(obs, dtype=np.float32)[None])[0]
                obs, reward, terminated, truncated, _ = self.env.step(np.clip(action, self.low, self.high))
                total += float(reward)
                length += 1
                done = terminated or truncated
            returns.append(total)
            lengths.append(length)
        return returns, lengths


def versions() -> dict[str, str]:
    """Versions of the packages that make the result."""
    import d3rlpy
    import gymnasium
    import h5py
    import mujoco
    import torch

    return {
        "d3rlpy": d3rlpy.__version__, "torch": str(torch.__version__), "gymnasium": gymnasium.__version__,
        "mujoco": mujoco.__version__, "numpy": np.__version__, "h5py": h5py.__version__,
        "python": platform.python_version(),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train and evaluate a d3rlpy offline algorithm on a D4RL HDF5 file.")
    parser.add_argument("--algo", required=True, choices=ALGOS)
    parser.add_argument("--dataset", required=True, help="D4RL-layout .hdf5 file")
    parser.add_argument("--env", required=True, help="gymnasium id to evaluate in, e.g. Hopper-v4")
    parser.add_argument("--n-steps", type=int, required=True, help="gradient steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-freq", type=int, required=True, help="gradient steps between evaluations")
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--final-eval-episodes", type=int, default=10)
    parser.add_argument("--out", required=True, help="run folder")
    parser.add_argument("--ref-min", type=float, default=None, help="D4RL random return (default: file attribute)")
    parser.add_argument("--ref-max", type=float, default=None, help="D4RL expert return (default: file attribute)")
    parser.add_argument("--observation-scaler", choices=OBSERVATION_SCALERS, default="script",
                        help="script: the reproduction script's; standard: dataset mean/std (as ours); none")
    args = parser.parse_args(argv)
    if args.n_steps <= 0 or args.eval_freq <= 0 or args.n_steps % args.eval_freq:
        parser.error(f"--eval-freq ({args.eval_freq}) must be positive and divide --n-steps ({args.n_steps}).")
    if args.eval_episodes <= 0 or args.final_eval_episodes < 0:
        parser.error("--eval-episodes must be positive and --final-eval-episodes not negative.")
    if (args.ref_min is None) != (args.ref_max is None):
        parser.error("give both --ref-min and --ref-max, or neither")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = child_io.command_line(__file__, argv)
    import torch

    child_io.single_thread_torch()
    import d3rlpy
    from d3rlpy.algos.utility import build_scalers_with_transition_picker

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data, attributes = read_hdf5(args.dataset)
    keep, terminals, timeouts = episode_flags(data["terminals"], data.get("timeouts"))
    observations = np.asarray(data["observations"], dtype=np.float32)
    actions = np.asarray(data["actions"], dtype=np.float32)
    rewards = np.asarray(data["rewards"], dtype=np.float32).reshape(-1)
    mismatches = None
    if "next_observations" in data:
        mismatches = next_observation_mismatches(
            observations, np.asarray(data["next_observations"], dtype=np.float32), keep, terminals, timeouts
        )
        if mismatches:
            print(f"warning: {mismatches} transitions' next_observations differ from the next row; d3rlpy "
                  "uses the next row", file=sys.stderr)

    d3rlpy.seed(args.seed)
    evaluator = Evaluator(args.env, args.seed + EVAL_SEED_OFFSET)
    env_obs_shape = evaluator.env.observation_space.shape
    if env_obs_shape != observations.shape[1:] or evaluator.env.action_space.shape != actions.shape[1:]:
        raise ValueError(
            f"{args.dataset!r} has observations {observations.shape[1:]} and actions {actions.shape[1:]}, but "
            f"{args.env} has {env_obs_shape} and {evaluator.env.action_space.shape}."
        )
    dataset = d3rlpy.dataset.MDPDataset(
        observations=observations[keep], actions=actions[keep], rewards=rewards[keep],
        terminals=terminals, timeouts=timeouts,
    )
    expected = len(transition_rows(terminals, timeouts))
    if dataset.transition_count != expected:
        raise RuntimeError(f"d3rlpy built {dataset.transition_count} transitions, expected {expected}.")

    dataset_name = str(attributes.get("name") or Path(args.dataset).stem)
    config, notes = make_config(
        args.algo, args.n_steps, dataset_name, evaluator.env.action_space.low, evaluator.env.action_space.high,
        observation_scaler=args.observation_scaler,
    )
    algo = config.create(device="cpu:0")
    setup_start = time.perf_counter()
    build_scalers_with_transition_picker(algo, dataset)
    algo.build_with_dataset(dataset)
    setup_seconds = time.perf_counter() - setup_start

    ref_min = args.ref_min if args.ref_min is not None else attributes.get("ref_min_score")
    ref_max = args.ref_max if args.ref_max is not None else attributes.get("ref_max_score")
    timesteps: list[int] = []
    results: list[list[float]] = []
    ep_lengths: list[list[int]] = []
    train_seconds = eval_seconds = 0.0
    fitter = algo.fitter(
        dataset, n_steps=args.n_steps, n_steps_per_epoch=args.eval_freq, experiment_name=f"d3rlpy_{args.algo}",
        with_timestamp=False, logger_adapter=d3rlpy.logging.NoopAdapterFactory(), show_progress=False,
    )
    start = time.perf_counter()
    for _epoch, metrics in fitter:
        train_seconds += time.perf_counter() - start
        start = time.perf_counter()
        returns, lengths = evaluator(algo, args.eval_episodes)
        eval_seconds += time.perf_counter() - start
        step = len(timesteps) * args.eval_freq + args.eval_freq
        timesteps.append(step)
        results.append(returns)
        ep_lengths.append(lengths)
        write_evaluations(out, timesteps, results, ep_lengths)
        losses = " ".join(f"{k}={v:.3g}" for k, v in metrics.items() if isinstance(v, (int, float)))
        print(f"[d3rlpy_{args.algo}] step {step}/{args.n_steps}: return {np.mean(returns):.1f} +/- "
              f"{np.std(returns):.1f}, {step / train_seconds:.1f} updates/s, {losses}", flush=True)
        start = time.perf_counter()

    final = None
    if args.final_eval_episodes > 0:
        start = time.perf_counter()
        final = summarize(*evaluator(algo, args.final_eval_episodes))
        eval_seconds += time.perf_counter() - start
    evaluator.env.close()
    record = {
        "algo": f"d3rlpy_{args.algo}",
        "label": f"d3rlpy_{args.algo}",
        "env": args.env,
        "seed": args.seed,
        "n_timesteps": args.n_steps,
        "num_timesteps": args.n_steps,
        "offline_steps": args.n_steps,
        "online_steps": 0,
        "dataset": str(args.dataset),
        "dataset_size": expected,
        "dataset_info": {
            "rows": int(len(keep)), "rows_used": int(keep.sum()), "transitions": expected,
            "episodes": len(dataset.episodes), "terminal_transitions": int(terminals.sum()),
            "next_observation_mismatches": mismatches, "attributes": attributes,
        },
        "command": command,
        "train_seconds": train_seconds,
        "train_steps": args.n_steps,
        "steps_per_second": args.n_steps / train_seconds if train_seconds > 0 else None,
        "setup_seconds": setup_seconds,
        "eval_seconds": eval_seconds,
        "eval_seed": args.seed + EVAL_SEED_OFFSET,
        "final_evaluation": final,
        "ref_min": ref_min,
        "ref_max": ref_max,
        "final_normalized_score": normalized_score(final["mean_reward"], ref_min, ref_max) if final else None,
        "versions": versions(),
        "hyperparams": config.serialize_to_dict(),
        "d3rlpy_settings": {"source": REPRODUCTION_SOURCE.format(script=SCRIPTS[args.algo]), "notes": notes},
        "torch_threads": torch.get_num_threads(),
        "device": "cpu",
    }
    write_run_json(out, record)
    if final is not None:
        score = record["final_normalized_score"]
        print(f"[d3rlpy_{args.algo}] final evaluation: {final['mean_reward']:.1f} +/- {final['std_reward']:.1f} "
              f"over {final['n_episodes']} episodes" + (f", normalized score {score:.1f}" if score is not None else ""))
    print(f"[d3rlpy_{args.algo}] {record['steps_per_second']:.1f} updates/s; wrote {out / RUN_FILE}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
