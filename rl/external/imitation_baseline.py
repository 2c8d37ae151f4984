"""Run imitation's PreferenceComparisons (the SPO benchmark's outside reference) from the project's venv.

:func:`run_imitation_preference_baseline` checks its inputs here (one-line errors, before any venv is touched),
makes sure imitation's own venv exists (:func:`rl.external.imitation_venv.ensure_venv`), runs
``imitation_run.py`` there as a subprocess (one thread per library) and returns the JSON it writes: the
true-return learning curve against env steps and comparisons used, the final true return over
``eval_episodes`` episodes, the comparisons used, the env steps (agent and fragment sampling), the wall time and
speed, imitation's settings and the versions. See :mod:`rl.external.imitation_run` for the settings (imitation's
own, read from its config) and their sources, how the labels are made (the project's raters on imitation's
fragments) and how the env-step budget is held.

Files, in ``out_dir``: ``imitation_pc.json`` (the result, written atomically at the end),
``imitation_pc.progress.json`` (the curve so far, rewritten after each iteration) and ``imitation_pc.log`` (the
child's output). A result already there made with the same inputs is returned without running again, so a killed
benchmark restarts where it stopped (a run killed half way starts over).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rl.external import child_process, imitation_run
from rl.external.errors import ExternalBaselineError
from rl.external.imitation_venv import SUPPORTED_ENVS, ensure_venv

RUN_SCRIPT = Path(__file__).with_name("imitation_run.py")
"""The standalone script run by the imitation venv's python."""

PROJECT_ROOT = Path(__file__).resolve().parents[2]
"""The checkout whose ``rl/preferences`` the child loads its raters from."""

RESULT_NAME = "imitation_pc.json"
LOG_NAME = "imitation_pc.log"

_TAIL_LINES = 40

_CHILD_ENV = {"WANDB_MODE": "disabled", "WANDB_SILENT": "true", "TQDM_DISABLE": "1"}
"""Besides :func:`rl.external.child_process.child_env`'s cleaning and one thread per library: no wandb, no tqdm."""


def result_path(out_dir: str | os.PathLike) -> Path:
    return Path(out_dir) / RESULT_NAME


def log_path(out_dir: str | os.PathLike) -> Path:
    return Path(out_dir) / LOG_NAME


def progress_path(out_dir: str | os.PathLike) -> Path:
    return imitation_run.progress_path(result_path(out_dir))


def _plain(value: Any) -> Any:
    """``value`` as it comes back from JSON (tuples become lists), so inputs compare equal to the child's;
    unchanged when it is not JSON (:func:`check_inputs` then says so)."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError):
        return value


def run_inputs(
    env_id: str, rater: str, total_timesteps: int, total_comparisons: int, seed: int, *,
    rater_kwargs: Mapping[str, Any] | None = None, reward_terms: str | Sequence[str] | None = "auto",
    reward_terms_wrapper: bool = False, budget: str = "all", eval_episodes: int = 10, curve_episodes: int = 5,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``inputs`` record ``imitation_run.py`` writes (the same keys and values as its ``run_inputs``)."""
    return {
        "env": env_id,
        "total_timesteps": int(total_timesteps),
        "total_comparisons": int(total_comparisons),
        "seed": int(seed),
        "rater": str(rater).strip().lower(),
        "rater_kwargs": _plain(dict(rater_kwargs or {})),
        "reward_terms": _plain(list(reward_terms) if isinstance(reward_terms, (list, tuple)) else reward_terms),
        "reward_terms_wrapper": bool(reward_terms_wrapper),
        "budget": budget,
        "eval_episodes": int(eval_episodes),
        "curve_episodes": int(curve_episodes),
        "overrides": _plain(dict(overrides or {})),
    }


def check_inputs(inputs: Mapping[str, Any]) -> None:
    """Refuse what the child would refuse, without the venv: one-line :class:`ExternalBaselineError` with the fix.

    Checks the env id (:data:`~rl.external.imitation_venv.SUPPORTED_ENVS`), the rater and its arguments (built with
    the project's ``make_rater``), the reward terms, the overrides, the budget and counts, and that the budget
    leaves the agent at least one step after imitation's initial fragment sampling (the child checks the rest
    against imitation's resolved config: a whole PPO rollout).
    """
    from rl.preferences import raters

    try:
        imitation_run.check_env_id(inputs["env"], SUPPORTED_ENVS)
        imitation_run.make_baseline_rater(raters, inputs["rater"], inputs["rater_kwargs"])
        terms = inputs["reward_terms"]
        names = isinstance(terms, list) and all(isinstance(term, str) for term in terms)
        if not (terms is None or terms == "auto" or names):
            raise ValueError(f"reward_terms must be 'auto', None or a list of info keys, got {terms!r}.")
        overrides = imitation_run.check_overrides(inputs["overrides"])
        for name in ("total_timesteps", "total_comparisons", "eval_episodes"):
            if inputs[name] <= 0:
                raise ValueError(f"{name} must be positive, got {inputs[name]}.")
        if inputs["curve_episodes"] < 0:
            raise ValueError(f"curve_episodes must be >= 0, got {inputs['curve_episodes']}.")
        settings = {**imitation_run.TRAIN_DEFAULTS, **overrides}
        imitation_run.plan_budget(
            inputs["total_timesteps"], inputs["total_comparisons"], num_iterations=int(settings["num_iterations"]),
            fragment_length=int(settings["fragment_length"]),
            initial_comparison_frac=float(settings["initial_comparison_frac"]),
            transition_oversampling=float(settings["transition_oversampling"]), rollout=1, budget=inputs["budget"],
        )
    except ValueError as error:
        raise ExternalBaselineError(" ".join(str(error).split())) from None


def imitation_command(python: str | os.PathLike, out_path: str | os.PathLike, inputs: Mapping[str, Any],
                      project_root: str | os.PathLike = PROJECT_ROOT) -> list[str]:
    """The command line that runs ``imitation_run.py run`` with ``python`` for ``inputs``."""
    return [
        str(python), str(RUN_SCRIPT), "run", "--project-root", str(Path(project_root).resolve()),
        "--env", inputs["env"], "--total-timesteps", str(inputs["total_timesteps"]),
        "--total-comparisons", str(inputs["total_comparisons"]), "--seed", str(inputs["seed"]),
        "--rater", inputs["rater"], "--rater-kwargs", json.dumps(inputs["rater_kwargs"]),
        "--reward-terms", json.dumps(inputs["reward_terms"]),
        *(["--reward-terms-wrapper"] if inputs["reward_terms_wrapper"] else []),
        "--budget", inputs["budget"], "--eval-episodes", str(inputs["eval_episodes"]),
        "--curve-episodes", str(inputs["curve_episodes"]), "--overrides", json.dumps(inputs["overrides"]),
        "--out", str(Path(out_path).resolve()),
    ]


def read_result(path: str | os.PathLike, inputs: Mapping[str, Any]) -> dict | None:
    """The JSON at ``path`` if it is a finished PreferenceComparisons run with these ``inputs``, else None."""
    return child_process.read_finished(path, imitation_run.ALGORITHM, inputs, blocks=("final",))


def child_env() -> dict[str, str]:
    """This process's environment without what would leak into the venv's python, with one thread per library."""
    return child_process.child_env(_CHILD_ENV)


def run_imitation_preference_baseline(
    env_id: str,
    rater: str,
    total_timesteps: int,
    total_comparisons: int,
    seed: int,
    out_dir: str | os.PathLike,
    *,
    rater_kwargs: Mapping[str, Any] | None = None,
    reward_terms: str | Sequence[str] | None = "auto",
    reward_terms_wrapper: bool = False,
    budget: str = "all",
    eval_episodes: int = 10,
    curve_episodes: int = 5,
    overrides: Mapping[str, Any] | None = None,
    venv: str | os.PathLike | None = None,
    timeout: float | None = None,
    echo: bool = False,
) -> dict:
    """Train imitation's PreferenceComparisons on ``env_id`` with the project's ``rater``, in imitation's own venv.

    Args:
        env_id: a gymnasium 0.29 id with continuous actions: MuJoCo v4 (``Hopper-v4``, ``HalfCheetah-v4``, ...) or
            PyBullet (``HalfCheetahBulletEnv-v0``, ...); see ``imitation_venv.SUPPORTED_ENVS``.
        rater: ``bt``, ``noisy`` or ``intransitive`` (``rl.preferences.make_rater`` names), with ``rater_kwargs``
            (JSON values: ``{"temperature": 0.5}``, ``{"flip_probability": 0.2}``, ``{"terms_weights": [...]}``).
            ``make_rater``'s defaults apply: ``bt`` is temperature 1 unless given, while ``algos.spo_benchmark``'s
            ``bt`` is temperature 0 (pass ``{"temperature": 0.0}`` to match it; its ``noisy`` is the default
            deterministic base with flips 0.1, its ``intransitive`` one voter per ``RewardTermsInInfo`` term:
            ``reward_terms_wrapper=True``).
        total_timesteps: the env-step budget (``budget="all"``: every env step, agent and fragment sampling;
            ``"agent"``: imitation's own meaning, agent steps).
        total_comparisons: comparisons to ask the rater for (all of them are used).
        seed: seeds imitation's parts, PPO and the labels; evaluation episodes reset with ``seed + 10_000 + k``.
        out_dir: folder for the result, progress and log files (created).
        reward_terms: the info keys holding reward terms for the rater (``"auto"``: as ``collect_trajectories``;
            with ``reward_terms_wrapper`` the wrapper's terms), None for the scalar reward.
        reward_terms_wrapper: wrap each env in the project's ``rl.preferences.reward_terms.RewardTermsInInfo``
            (needed by the intransitive rater on Hopper-v4, whose info has no reward terms).
        eval_episodes: episodes of the final evaluation; ``curve_episodes`` those of each curve point.
        overrides: imitation settings to change (``imitation_run.OVERRIDES``: ``fragment_length``,
            ``num_iterations``, ``rl_kwargs``, ...); default none, imitation's own. Hopper-v4 needs a
            ``fragment_length`` below imitation's 100 (its early episodes are shorter; see imitation_run's
            "Known limits").
        venv: the venv's folder; default ``$FRONTIER_RL_IMITATION_VENV`` or ``~/.frontier-rl/venvs/imitation-1.0.1``
            (created or completed if needed).
        timeout: seconds before the run is killed (ExternalBaselineError); None waits.
        echo: also stream the child's output here.

    Returns:
        The parsed JSON: ``curve`` (per point: ``iteration``, ``env_steps``, ``agent_timesteps``, ``comparisons``,
        ``true_return_mean``, ``episode_returns``, reward-model ``loss``/``accuracy``), ``final``
        (``true_return_mean``, ``true_return_std``, ``episode_returns``), ``comparisons_used``, ``env_steps``,
        ``agent_timesteps``, ``fragment_sampling_env_steps``, ``over_budget_env_steps``, ``wall_s``,
        ``train_wall_s``, ``steps_per_s``, ``settings``, ``plan``, ``rater``, ``versions``, ``inputs``.

    Raises:
        ExternalBaselineError: bad inputs (before anything runs), the venv cannot be made, or the run fails, times
            out or leaves no readable result; one line, with the last line of the child's stderr and the log's path.
    """
    inputs = run_inputs(
        env_id, rater, total_timesteps, total_comparisons, seed, rater_kwargs=rater_kwargs,
        reward_terms=reward_terms, reward_terms_wrapper=reward_terms_wrapper, budget=budget,
        eval_episodes=eval_episodes, curve_episodes=curve_episodes, overrides=overrides,
    )
    check_inputs(inputs)
    out_dir = Path(out_dir)
    out = result_path(out_dir)
    done = read_result(out, inputs)
    if done is not None:
        return done
    if reward_terms_wrapper and not (PROJECT_ROOT / "rl" / "preferences" / "reward_terms.py").is_file():
        raise ExternalBaselineError(
            f"reward_terms_wrapper=True needs rl/preferences/reward_terms.py in {PROJECT_ROOT}, which is missing. "
            "Fix: pass reward_terms naming info keys the env reports, or a rater on true returns (bt, noisy)."
        )
    python = ensure_venv(venv)
    out_dir.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)  # another run's file: never returned after a failure
    command = imitation_command(python, out, inputs)
    what = (f"imitation PreferenceComparisons ({env_id}, {int(total_timesteps)} steps, {int(total_comparisons)} "
            f"comparisons, rater {inputs['rater']}, seed {int(seed)})")
    return child_process.run_for_result(
        command, log_path(out_dir), lambda: read_result(out, inputs), what=what,
        venv_module="rl.external.imitation_venv", out=out, env=child_env(), cwd=out_dir, timeout=timeout,
        echo=echo, tail_lines=_TAIL_LINES,
    )


__all__ = [
    "LOG_NAME", "PROJECT_ROOT", "RESULT_NAME", "RUN_SCRIPT", "check_inputs", "child_env", "imitation_command",
    "log_path", "progress_path", "read_result", "result_path", "run_imitation_preference_baseline", "run_inputs",
]
