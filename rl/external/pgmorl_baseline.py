"""Run morl-baselines' PGMORL (the C-MORL benchmark's baseline) from the project's venv.

:func:`run_pgmorl` makes sure morl-baselines' own venv exists (:func:`rl.external.morl_baselines_venv.ensure_venv`),
runs ``pgmorl_run.py`` there as a subprocess (one thread per library), and returns the JSON it writes: the
evaluated Pareto archive (``points``), PGMORL's own evaluations (``archive_reported``), ``env_steps``, ``wall_s``,
``steps_per_s``, the PGMORL ``settings`` used and the ``budget`` plan (see :mod:`rl.external.pgmorl_run` for how a
budget becomes PGMORL iterations, and for the evaluation protocol). The child's output (PGMORL prints a lot) goes
to ``<out>.log`` beside the JSON.

A JSON already at ``out_path`` made with the same inputs (env, budget, seed, reference point, episode cap,
evaluation episodes) is returned without running again, so that a killed benchmark resumes where it stopped.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rl.external.child_process import child_env, read_finished, run_for_result
from rl.external.morl_baselines_venv import ensure_venv

RUN_SCRIPT = Path(__file__).with_name("pgmorl_run.py")
"""The standalone script run by the morl-baselines venv's python."""

_TAIL_LINES = 40

_CHILD_ENV = {"WANDB_MODE": "disabled", "WANDB_SILENT": "true"}
"""Besides :func:`rl.external.child_process.child_env`'s cleaning and one thread per library: no wandb logging."""


def log_path(out_path: str | os.PathLike) -> Path:
    """Where the child's stdout and stderr go: ``<out without .json>.log`` beside the JSON."""
    out = Path(out_path)
    return out.with_name((out.stem if out.suffix == ".json" else out.name) + ".log")


def run_inputs(
    env_id: str, total_timesteps: int, seed: int, ref_point: Sequence[float], *, max_episode_steps: int,
    eval_episodes: int,
) -> dict[str, Any]:
    """The ``inputs`` record ``pgmorl_run.py`` writes (the same keys and types as its ``run_inputs``)."""
    return {
        "env": env_id,
        "total_timesteps": int(total_timesteps),
        "seed": int(seed),
        "ref_point": [float(x) for x in ref_point],
        "max_episode_steps": int(max_episode_steps),
        "eval_episodes": int(eval_episodes),
    }


def pgmorl_command(
    python: str | os.PathLike, env_id: str, total_timesteps: int, seed: int, ref_point: Sequence[float],
    out_path: str | os.PathLike, *, max_episode_steps: int = 500, eval_episodes: int = 5,
) -> list[str]:
    """The command line that runs ``pgmorl_run.py`` with ``python`` (the output path made absolute)."""
    return [
        str(python), str(RUN_SCRIPT), "--env", env_id, "--total-timesteps", str(int(total_timesteps)),
        "--seed", str(int(seed)), "--ref-point", *[repr(float(x)) for x in ref_point],
        "--max-episode-steps", str(int(max_episode_steps)), "--eval-episodes", str(int(eval_episodes)),
        "--out", str(Path(out_path).resolve()),
    ]


def read_result(out_path: str | os.PathLike, inputs: dict[str, Any]) -> dict | None:
    """The JSON at ``out_path`` if it is a finished PGMORL run with these ``inputs``, else None."""
    return read_finished(out_path, "PGMORL", inputs)


def run_pgmorl(
    env_id: str,
    total_timesteps: int,
    seed: int,
    ref_point: Sequence[float],
    out_path: str | os.PathLike,
    *,
    venv: str | os.PathLike | None = None,
    max_episode_steps: int = 500,
    eval_episodes: int = 5,
    timeout: float | None = None,
) -> dict:
    """Train morl-baselines' PGMORL on ``env_id`` and evaluate its Pareto archive, in morl-baselines' own venv.

    Args:
        env_id: an MO-Gymnasium id with continuous actions (``mo-hopper-2obj-v5``, ``mo-halfcheetah-v5``).
        total_timesteps: env steps in all, over PGMORL's envs and population; warm-up and evolution iterations are
            scaled down to fit it (``pgmorl_run.plan_iterations``); at least 3072.
        seed: seeds PGMORL, torch, numpy and the envs; our evaluation resets with ``seed + k``.
        ref_point: one float per objective: PGMORL's hypervolume reference point and performance-buffer origin.
        out_path: the JSON file to write (its folder is created); the child's output goes to :func:`log_path`.
        venv: the venv's folder; default ``$FRONTIER_RL_MORL_VENV`` or ``~/.frontier-rl/venvs/morl-baselines-1.3.0``
            (created or completed if needed).
        max_episode_steps: episode cap of the training and evaluation envs (C-MORL's 500).
        eval_episodes: episodes per archive policy in our evaluation.
        timeout: seconds before the run is killed (ExternalBaselineError); None waits.

    Returns:
        The parsed JSON (``points``, ``archive_reported``, ``env_steps``, ``wall_s``, ``steps_per_s``, ``settings``,
        ``budget``, ``policies``, ``versions``, ``inputs``, ...).

    Raises:
        ExternalBaselineError: the venv cannot be made, or the run fails, times out or leaves no readable JSON; one
            line, with the last line of the child's stderr and the log's path.
    """
    out = Path(out_path)
    inputs = run_inputs(env_id, total_timesteps, seed, ref_point, max_episode_steps=max_episode_steps,
                        eval_episodes=eval_episodes)
    done = read_result(out, inputs)
    if done is not None:
        return done
    python = ensure_venv(venv)
    command = pgmorl_command(python, env_id, total_timesteps, seed, ref_point, out,
                             max_episode_steps=max_episode_steps, eval_episodes=eval_episodes)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)  # another run's file: never returned after a failure
    return run_for_result(
        command, log_path(out), lambda: read_result(out, inputs),
        what=f"PGMORL ({env_id}, {int(total_timesteps)} steps, seed {int(seed)})",
        venv_module="rl.external.morl_baselines_venv", out=out, env=child_env(_CHILD_ENV), cwd=out.parent,
        timeout=timeout, tail_lines=_TAIL_LINES,
    )
