"""Train imitation's PreferenceComparisons (reward model from preferences + PPO) with the project's raters.

Run by the imitation venv's python (see :mod:`rl.external.imitation_venv`), usually through
:func:`rl.external.imitation_baseline.run_imitation_preference_baseline`::

    python imitation_run.py run --env Hopper-v4 --total-timesteps 1000000 --total-comparisons 5000 --seed 0 \\
        --rater bt --rater-kwargs '{"temperature": 1.0}' --project-root /path/to/repo --out imitation_pc.json
    python imitation_run.py label --project-root R --rater noisy --rater-kwargs '{}' --seed 0 \\
        --fragments fragments.json --out labels.json      # the labels the run would give (agreement test)

Imports. At module level only the standard library and numpy, so that the project imports the pure functions
here (validation, the budget plan, the fragment conversion, the labelling). Inside the functions: torch,
gymnasium, stable_baselines3, sacred, imitation, pybullet_envs_gymnasium (Bullet ids only), and the project's
``rl.preferences.raters`` and ``rl.preferences.segments`` (with ``--reward-terms-wrapper`` also
``rl.preferences.reward_terms``), loaded from ``--project-root`` by :func:`load_project` *without* running
``rl/__init__.py`` or ``rl/preferences/__init__.py`` (those import the project's SB3-2.x code): these modules
import only numpy, gymnasium and each other, and run unchanged in the venv's gymnasium 0.29 (the tests run them
there). The child scripts' shared output helpers, ``rl/external/child_io.py`` (standard library and numpy), are
loaded by path the same way.

Labels. imitation's ``SyntheticGatherer`` (Bradley-Terry, temperature 1, on the float32 rewards of the fragments)
is replaced by :class:`RaterGatherer` (made by :func:`rater_gatherer_class`), a ``PreferenceGatherer`` that asks
the project's own rater (``make_rater(name, **kwargs)``: ``bt``, ``noisy``, ``intransitive``), so the baseline's
labels follow exactly the rules the project's methods get. Each imitation fragment becomes a project ``Segment``
by :class:`FragmentConverter`, as ``rl.preferences.segments.collect_trajectories`` records one: the reward of
each step is the env's float64 reward (written into ``info`` by a wrapper, ``info["frontier_reward"]``; the
fragments' own ``rews`` went through SB3's float32 buffers), the reward terms are the ``info`` keys
``reward_terms`` names (``"auto"``: every numeric ``reward_*`` key of the first step's info, as
``collect_trajectories``; HalfCheetah-v4: ``reward_run``, ``reward_ctrl``; Hopper-v4: none, a scalar reward)
plus a ``reward_other`` remainder column when they do not sum to the reward (decided on the first fragment;
``collect_trajectories`` decides on the first episode), and the other numeric infos are kept. With
``--reward-terms-wrapper`` each env is wrapped in the project's ``RewardTermsInInfo``, which writes the three
terms the intransitive rater needs (Hopper: ``reward_forward``, ``reward_ctrl``, ``reward_survive``), and
``"auto"`` then means its ``reward_term_names(env)`` (not the env's own ``reward_*`` keys besides them). The
rater's ``prefer(a, b, rng)`` is called pair by pair in imitation's order with one numpy Generator seeded with
``seed + 20_000``; one call is one comparison used.

Settings: imitation 1.0.1's own, read at run time from its sacred config (``imitation.scripts.config.
train_preference_comparisons``: ``train_defaults``, the ingredients' configs and config hooks, and the env's
named config), i.e. what ``python -m imitation.scripts.train_preference_comparisons print_config with
seals_hopper`` shows, then built as ``imitation.scripts.train_preference_comparisons`` builds them:

=============================  =========================================================  ==========================
setting                        value                                                      source
=============================  =========================================================  ==========================
fragment_length                100                                                        train_defaults
num_iterations                 5 (HalfCheetah: 50)                                        train_defaults / named cfg
initial_comparison_frac        0.1                                                        train_defaults
comparison_queue_size          None (unbounded)                                           train_defaults
transition_oversampling        1                                                          train_defaults
exploration_frac               0.0                                                        train_defaults
query_schedule                 "hyperbolic"                                               train_defaults
fragmenter                     RandomFragmenter(warning_threshold=0)                      train_defaults
reward trainer                 BasicRewardTrainer: epochs 3, batch 32, lr 1e-3 (AdamW)    train_defaults; class dflt
initial_epoch_multiplier       200                                                        PreferenceComparisons dflt
preference model               PreferenceModel() (no noise, undiscounted)                 train_defaults ({})
reward net                     BasicRewardNet(s, a; 32-32) + RunningNorm on inputs,       reward ingredient + hook
                               wrapped in NormalizedRewardNet(RunningNorm)
vec env                        8 envs (num_vec)                                           environment ingredient
agent                          PPO, n_steps = rl.batch_size // 8                          rl ingredient + hook
Hopper (seals_hopper)          rollout 2048, minibatch 512, 20 epochs, lr 3.90e-4,        named config seals_hopper
                               clip 0.1, ent 1.02e-3, gae 0.98, gamma 0.995, vf 0.203,
                               max_grad_norm 0.9; MlpPolicy ReLU pi/vf [64, 64]
HalfCheetah                    rollout 512, minibatch 64, 5 epochs, lr 3.29e-4, clip      named config
(seals_half_cheetah)           0.1, ent 3.79e-6, gae 0.95, gamma 0.95, vf 0.115,          seals_half_cheetah
                               max_grad_norm 0.8; FeedForward32Policy; 50 iterations
others without a named config  rollout 2048, minibatch 64, 10 epochs, lr 3e-4, ent 0.0,   rl config hook (SB3 PPO's
(PyBullet, Reacher, ...)       other PPO defaults; FeedForward32Policy                    defaults); policy ingr.
=============================  =========================================================  ==========================

imitation's named configs are tuned on seals' fixed-horizon versions of the tasks (``seals/Hopper-v0``, ...);
the env family picks one (:data:`NAMED_CONFIGS`: Hopper, HalfCheetah, Walker2d, Ant, Swimmer, Humanoid), the
env itself is the benchmark's.

What the benchmark changes, for fairness, and why:

- the labels: the project's rater (above), not imitation's SyntheticGatherer;
- the task: the benchmark's env id (Hopper-v4 ends episodes when the hopper falls), not seals' fixed-horizon
  one, so ``allow_variable_horizon=True`` (imitation refuses episodes of different lengths otherwise);
- the budget (``--budget all``, the default): ``--total-timesteps`` counts *every* env step, the agent's PPO
  rollouts and the steps imitation takes only to cut fragments (before the first training, the initial
  comparisons' ``2 x pairs x fragment_length`` transitions come from extra rollouts, and so do later ones when
  an iteration trained on fewer transitions than its comparisons need). imitation's own ``total_timesteps``
  counts agent steps only, and it trains ``num_iterations + 1`` times (an initial round, then one per
  iteration) on ``total_timesteps // num_iterations`` each, each rounded up by SB3 to whole rollouts. So
  :func:`plan_budget` gives imitation ``(budget - initial fragment transitions) x n / (n + 1)`` and every
  agent training call is cut to whole rollouts that keep the counted env steps within the budget
  (:func:`capped_steps`); fragment sampling that imitation still does after that is not cut (it would starve
  the comparisons) and is reported as ``over_budget_env_steps``. ``--budget agent`` keeps imitation's own
  meaning (the counts are reported either way);
- ``total_timesteps`` and ``total_comparisons`` are the benchmark's (``num_iterations`` stays imitation's);
- a DummyVecEnv instead of imitation's SubprocVecEnv (2 cores; the same algorithm);
- seeds: one ``np.random.default_rng(seed)`` for imitation's parts (as sacred's ``_rnd``), PPO's ``seed``.

Known limits. imitation cuts fragments of exactly ``fragment_length`` steps and drops shorter episodes, and in
its first round (the untrained policy) Hopper-v4 falls early: over 200 episodes of Gaussian(0, 1) actions the
median length was 17 steps, 4 % lasted 50 steps and none 100. With the default 100 the first round finds no
long enough episode and imitation stops ("No trajectories are long enough"; the error names the fix); with 50
(the project's reward-model segment length) it stopped so on 3 of 3 seeds at 5k steps / 50 comparisons, with
25 it ran on 3 of 3, and 50 with ``transition_oversampling=4`` ran but sampled four times the transitions
(about 22k env steps for that 5k budget). So a Hopper-v4 run needs ``overrides={"fragment_length": ...}``
(and possibly ``transition_oversampling``); the choice is the benchmark's to make and is recorded. The initial
fragment sampling runs whole episodes in all 8 envs, so it takes more steps than ``2 x pairs x fragment_length``
(HalfCheetah: 8 x 1000 at least), which tiny budgets cannot absorb; the cap then leaves the agent untrained.

Evaluation (ours): the agent's deterministic action on ``gym.make(env)`` with its own time limit, episodes
reset with seeds ``seed + 10_000 + k``, the undiscounted true return; ``--curve-episodes`` episodes before
training and after each imitation iteration (the learning curve against env steps and comparisons used),
``--eval-episodes`` at the end. Evaluation steps are not counted in ``env_steps``.

Output: one JSON file (``--out``), written atomically at the end; after each iteration the curve so far goes to
``<out stem>.progress.json`` (atomically too).
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import json
import math
import os
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

ALGORITHM = "PreferenceComparisons"
LIBRARY = "imitation"
LIBRARY_VERSION = "1.0.1"

SUPPORTED_RATERS: tuple[str, ...] = ("bt", "noisy", "intransitive")
"""The project's raters this baseline labels with (``rl.preferences.make_rater`` names)."""

NAMED_CONFIGS: dict[str, str] = {
    "Ant": "seals_ant", "HalfCheetah": "seals_half_cheetah", "Hopper": "seals_hopper", "Humanoid": "seals_humanoid",
    "Swimmer": "seals_swimmer", "Walker2d": "seals_walker",
}
"""MuJoCo task family -> imitation's named config (tuned PPO for seals' version of the task)."""

TRAIN_DEFAULTS: dict[str, Any] = {
    "fragment_length": 100, "initial_comparison_frac": 0.1, "transition_oversampling": 1, "num_iterations": 5,
}
"""imitation 1.0.1's ``train_defaults`` that the parent's input check uses (checked against the library at run time)."""

OVERRIDES: dict[str, tuple[str, ...] | None] = {
    "fragment_length": ("fragment_length",),
    "num_iterations": ("num_iterations",),
    "comparison_queue_size": ("comparison_queue_size",),
    "transition_oversampling": ("transition_oversampling",),
    "initial_comparison_frac": ("initial_comparison_frac",),
    "exploration_frac": ("exploration_frac",),
    "query_schedule": ("query_schedule",),
    "reward_trainer_kwargs": ("reward_trainer_kwargs",),
    "num_vec": ("environment", "num_vec"),
    "rl_batch_size": ("rl", "batch_size"),
    "rl_kwargs": ("rl", "rl_kwargs"),
    "initial_epoch_multiplier": None,  # a PreferenceComparisons argument, not in imitation's config
}
"""Settings a run may change (``--overrides``), and where each goes in imitation's sacred config."""

BUDGETS = ("all", "agent")
REWARD_INFO_KEY = "frontier_reward"
"""The info key the env wrapper writes the env's float64 reward into (not ``reward_*``: not a reward term)."""

EVAL_SEED_OFFSET = 10_000
LABEL_SEED_OFFSET = 20_000

# The child scripts' shared helpers (child_io.py beside this file), by path: no project in imitation's venv
_spec = importlib.util.spec_from_file_location("frontier_rl_child_io", Path(__file__).with_name("child_io.py"))
child_io = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(child_io)


def _one_line(error: BaseException | str) -> str:
    return child_io.one_line(error) or (type(error).__name__ if isinstance(error, BaseException) else "")


# ------------------------------------------------------------------------------------------ input checks (pure)


def named_config_for(env_id: str) -> str | None:
    """imitation's named config for ``env_id``'s MuJoCo family, or None (PyBullet and the rest: the defaults)."""
    return NAMED_CONFIGS.get(env_id.split("/")[-1].rsplit("-v", 1)[0])


def check_env_id(env_id: str, supported: Sequence[str]) -> None:
    """Raise ValueError (one line, with the fix) unless ``env_id`` is one of ``supported``."""
    if env_id in supported:
        return
    close = difflib.get_close_matches(env_id, list(supported), n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    why = ""
    if env_id.rsplit("-v", 1)[-1] == "5":
        why = " The v5 MuJoCo envs are gymnasium >= 1.0's; imitation 1.0.1's venv has gymnasium 0.29.1 (use v4)."
    raise ValueError(
        f"Unknown env {env_id!r} for the imitation baseline.{hint}{why} Fix: pass one of {', '.join(supported)}."
    )


def make_baseline_rater(raters: Any, name: str, kwargs: Mapping[str, Any] | None) -> Any:
    """The project's rater ``name`` built with ``kwargs`` (``raters`` is ``rl.preferences.raters``).

    Raises:
        ValueError: one line naming the fix: a rater this baseline does not support (unknown, or one needing a
            person or a file), keyword arguments that are not JSON (they cross to the child process), or ones the
            rater refuses.
    """
    key = str(name).strip().lower()
    supported = ", ".join(SUPPORTED_RATERS)
    if key not in SUPPORTED_RATERS:
        if key in getattr(raters, "RATERS", {}):
            raise ValueError(
                f"Rater {name!r} is not supported by the imitation baseline (it labels synthetic fragments during "
                f"training, with no person or label file). Fix: pass one of {supported}."
            )
        close = difflib.get_close_matches(key, list(SUPPORTED_RATERS), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"Unknown rater {name!r}.{hint} Fix: pass one of {supported}.")
    kwargs = dict(kwargs or {})
    try:
        json.dumps(kwargs, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"rater {key!r}: its keyword arguments must be JSON (numbers, strings, lists, dicts), got {kwargs!r} "
            f"({_one_line(error)}). Fix: pass a base rater by name (base='bt') rather than as an object."
        ) from None
    base = kwargs.get("base")
    if key == "noisy" and base is not None and str(base).strip().lower() not in SUPPORTED_RATERS:
        raise ValueError(f"noisy rater's base {base!r} is not one of {supported}. Fix: pass base='bt' or another.")
    try:
        return raters.make_rater(key, **kwargs)
    except (TypeError, ValueError) as error:
        raise ValueError(f"rater {key!r} with {kwargs}: {_one_line(error)}") from None


def check_overrides(overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """``overrides`` as a plain dict, or ValueError (one line) for unknown keys or values that are not JSON."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(OVERRIDES))
    if unknown:
        raise ValueError(f"Unknown imitation settings {unknown}. Fix: override only {', '.join(sorted(OVERRIDES))}.")
    try:
        json.dumps(overrides, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"imitation settings must be JSON, got {overrides!r} ({_one_line(error)}).") from None
    return overrides


def config_updates(overrides: Mapping[str, Any]) -> tuple[dict[str, Any], float | None]:
    """The sacred config updates for ``overrides``, and the initial epoch multiplier if overridden."""
    updates: dict[str, Any] = {}
    for key, value in overrides.items():
        path = OVERRIDES[key]
        if path is None:
            continue
        node = updates
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    multiplier = overrides.get("initial_epoch_multiplier")
    return updates, None if multiplier is None else float(multiplier)


def initial_transitions(total_comparisons: int, *, initial_comparison_frac: float, fragment_length: int,
                        transition_oversampling: float) -> tuple[int, int]:
    """imitation's initial comparisons and the transitions it samples for them before any training."""
    pairs = int(total_comparisons * initial_comparison_frac)
    return pairs, math.ceil(transition_oversampling * 2 * pairs * fragment_length)


def plan_budget(total_timesteps: int, total_comparisons: int, *, num_iterations: int, fragment_length: int,
                initial_comparison_frac: float, transition_oversampling: float, rollout: int,
                budget: str = "all") -> dict[str, Any]:
    """What ``total_timesteps`` imitation gets and where the env steps are capped (see the module docstring).

    ``budget="all"``: imitation gets ``(total_timesteps - initial transitions) * n // (n + 1)`` (its ``n + 1``
    training calls then add up to about the rest of the budget) and the counted env steps are capped at
    ``total_timesteps``; ``budget="agent"``: imitation gets ``total_timesteps`` and nothing is capped.

    Raises:
        ValueError: an unknown budget, no initial comparison (imitation cannot start), or (``all``) a budget that
            leaves less than one PPO rollout for the agent.
    """
    if budget not in BUDGETS:
        raise ValueError(f"Unknown budget {budget!r}. Fix: pass one of {', '.join(BUDGETS)}.")
    pairs, transitions = initial_transitions(
        total_comparisons, initial_comparison_frac=initial_comparison_frac, fragment_length=fragment_length,
        transition_oversampling=transition_oversampling,
    )
    if pairs < 1:
        need = math.ceil(1 / initial_comparison_frac) if initial_comparison_frac > 0 else None
        raise ValueError(
            f"total_comparisons={int(total_comparisons)} x initial_comparison_frac={initial_comparison_frac} gives "
            "no initial comparison, and imitation then fails to cut fragments for its first round. Fix: pass "
            + (f"total_comparisons >= {need}" if need else "initial_comparison_frac > 0") + "."
        )
    if budget == "agent":
        given, cap = int(total_timesteps), None
    else:
        agent_budget = int(total_timesteps) - transitions
        if agent_budget < rollout:
            raise ValueError(
                f"total_timesteps={int(total_timesteps)} leaves {agent_budget} env steps for the agent after the "
                f"{transitions} that imitation samples for its {pairs} initial comparisons (fragments of "
                f"{fragment_length} steps), less than one PPO rollout ({rollout}). Fix: pass total_timesteps >= "
                f"{transitions + rollout}, fewer comparisons or a shorter fragment_length."
            )
        given, cap = agent_budget * num_iterations // (num_iterations + 1), int(total_timesteps)
    return {
        "budget": budget, "initial_pairs": pairs, "initial_transitions": transitions,
        "imitation_total_timesteps": given, "timesteps_per_iteration": given // num_iterations,
        "training_calls": num_iterations + 1, "rollout": int(rollout), "env_step_cap": cap,
    }


def capped_steps(requested: int, rollout: int, env_steps: int, cap: int | None) -> int:
    """The steps one agent training call gets: imitation's request (SB3 runs it in whole rollouts), or, under a
    cap, the whole rollouts that keep ``env_steps`` within it (0 when none fits)."""
    if cap is None:
        return int(requested)
    planned = -(-int(requested) // rollout) * rollout
    return max(0, min(planned, (cap - env_steps) // rollout * rollout))


# --------------------------------------------------------------------------------- the project's raters (pure)


def load_project(project_root: str | os.PathLike, *names: str) -> list[Any]:
    """Import ``rl.preferences.<name>`` for each name from the project at ``project_root``.

    ``rl`` and ``rl.preferences`` are set up as bare packages (their ``__init__`` files, which import the
    project's SB3-2.x code, are not run) unless they are already imported (as in the project's own venv).
    """
    import importlib
    import types

    root = Path(project_root).resolve()
    for package, folder in (("rl", root / "rl"), ("rl.preferences", root / "rl" / "preferences")):
        if package not in sys.modules:
            if not folder.is_dir():
                raise FileNotFoundError(f"no {folder} (--project-root must be the frontier-rl checkout)")
            module = types.ModuleType(package)
            module.__path__ = [str(folder)]
            sys.modules[package] = module
    return [importlib.import_module(f"rl.preferences.{name}") for name in names]


class FragmentConverter:
    """An imitation fragment (``TrajectoryWithRew``: ``obs``, ``acts``, ``rews``, ``infos``) as a project ``Segment``,
    with the reward columns and infos that ``collect_trajectories`` records (see the module docstring).

    :param segments: the project's ``rl.preferences.segments`` module.
    :param reward_terms: ``"auto"``, None (scalar reward) or the info keys of the reward terms.
    :param info_keys: ``"auto"`` (numeric, non-reward infos of the first step), None, or keys.
    """

    def __init__(self, segments: Any, reward_terms: str | Sequence[str] | None = "auto",
                 info_keys: str | Sequence[str] | None = "auto", env_id: str | None = None) -> None:
        self.segments = segments
        self.reward_terms = reward_terms
        self.info_keys = info_keys
        self.terms: list[str] | None = None if reward_terms is None or reward_terms == "auto" else list(reward_terms)
        self.keys: list[str] | None = None if info_keys is None or info_keys == "auto" else list(info_keys)
        self.add_residual: bool | None = None
        self.env_id = env_id
        self.converted = 0

    @property
    def reward_names(self) -> list[str]:
        """The reward columns of the segments so far ([] for a scalar reward)."""
        names = list(self.terms or [])
        return names + ([self.segments.RESIDUAL_TERM] if names and self.add_residual else [])

    def __call__(self, fragment: Any) -> Any:
        segments = self.segments
        actions = np.asarray(fragment.acts)
        steps = len(actions)
        infos = [{} for _ in range(steps)] if fragment.infos is None else [dict(info) for info in fragment.infos]
        if len(infos) != steps:
            raise ValueError(f"a fragment has {steps} actions but {len(infos)} infos")
        rews = np.asarray(fragment.rews, dtype=np.float64)
        scalar = np.array([float(info[REWARD_INFO_KEY]) if REWARD_INFO_KEY in info else float(r)
                           for info, r in zip(infos, rews)])
        first = infos[0]
        if self.terms is None and self.reward_terms == "auto":
            self.terms = [k for k, v in first.items() if k.startswith("reward_") and segments._numeric(v)]
        if self.keys is None and self.info_keys == "auto":
            self.keys = [
                k for k, v in first.items()
                if k not in segments._SKIPPED_INFO_KEYS and k != REWARD_INFO_KEY and not k.startswith("reward_")
                and segments._numeric(v)
            ]
        rewards, names = scalar, ()
        if self.terms:
            columns = np.array([[float(info.get(k, 0.0)) for k in self.terms] for info in infos])
            residual = scalar - columns.sum(axis=1)
            if self.add_residual is None:
                self.add_residual = bool(np.max(np.abs(residual)) > 1e-6)
            if self.add_residual:
                columns = np.column_stack([columns, residual])
            rewards, names = columns, tuple(self.terms) + ((segments.RESIDUAL_TERM,) if self.add_residual else ())
        step_infos = {
            k: np.array([np.asarray(info.get(k, np.nan), dtype=np.float64) for info in infos]) for k in self.keys or []
        }
        self.converted += 1
        return segments.Segment(
            observations=np.asarray(fragment.obs)[:steps], actions=actions, rewards=rewards, infos=step_infos,
            reward_names=names, env_id=self.env_id, episode_id=self.converted, start=0,
        )


def label_pairs(rater: Any, converter: FragmentConverter, pairs: Sequence[tuple[Any, Any]],
                rng: np.random.Generator) -> np.ndarray:
    """The rater's label (P(first fragment preferred): 0, 0.5 or 1) for each pair, in order, as float32."""
    labels = []
    for first, second in pairs:
        a, b = converter(first), converter(second)
        labels.append(rater.prefer(a, b, rng))
    return np.asarray(labels, dtype=np.float32)


def rater_gatherer_class() -> type:
    """:class:`RaterGatherer`: an imitation ``PreferenceGatherer`` that labels with a project rater."""
    from imitation.algorithms.preference_comparisons import PreferenceGatherer

    class RaterGatherer(PreferenceGatherer):
        """Labels fragment pairs with the project's rater (see :func:`label_pairs`); counts the comparisons."""

        def __init__(self, rater: Any, converter: FragmentConverter, rng: np.random.Generator,
                     custom_logger: Any = None) -> None:
            super().__init__(rng=None, custom_logger=custom_logger)
            self.rater, self.converter, self.rng = rater, converter, rng
            self.comparisons = 0
            self.batches: list[int] = []

        def __call__(self, fragment_pairs):
            try:
                labels = label_pairs(self.rater, self.converter, fragment_pairs, self.rng)
            except ValueError as error:
                raise ValueError(
                    f"{_one_line(error)} (imitation baseline: pass reward_terms_wrapper=True to add the env's "
                    "reward terms to info, or reward_terms=[...] naming info keys)"
                ) from error
            self.comparisons += len(labels)
            self.batches.append(len(labels))
            self.logger.record("label_mean", float(np.mean(labels)) if len(labels) else float("nan"))
            return labels

    return RaterGatherer


# ---------------------------------------------------------------------------------------------------- output


write_json_atomic = child_io.write_json_atomic
"""Write a record as strict JSON (NaN and infinities become null) through a temporary file, then rename."""


def progress_path(out: str | os.PathLike) -> Path:
    """``<out stem>.progress.json`` beside ``out``: the curve so far."""
    out = Path(out)
    return out.with_name((out.stem if out.suffix == ".json" else out.name) + ".progress.json")


# ------------------------------------------------------------------------------------------------ command line


def run_inputs(args: argparse.Namespace) -> dict[str, Any]:
    """The inputs that determine a run (a finished result is reused only for the same inputs)."""
    return {
        "env": args.env,
        "total_timesteps": int(args.total_timesteps),
        "total_comparisons": int(args.total_comparisons),
        "seed": int(args.seed),
        "rater": str(args.rater).strip().lower(),
        "rater_kwargs": json.loads(args.rater_kwargs),
        "reward_terms": json.loads(args.reward_terms),
        "reward_terms_wrapper": bool(args.reward_terms_wrapper),
        "budget": args.budget,
        "eval_episodes": int(args.eval_episodes),
        "curve_episodes": int(args.curve_episodes),
        "overrides": json.loads(args.overrides),
    }


def _json_arg(text: str) -> str:
    json.loads(text)
    return text


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="imitation's PreferenceComparisons with the project's raters.")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--project-root", required=True, help="the frontier-rl checkout (its rl/preferences)")
        p.add_argument("--rater", required=True, help=f"one of {', '.join(SUPPORTED_RATERS)}")
        p.add_argument("--rater-kwargs", type=_json_arg, default="{}", help="JSON object of the rater's arguments")
        p.add_argument("--reward-terms", type=_json_arg, default='"auto"',
                       help='JSON: "auto", null, or a list of info keys holding reward terms')
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--out", required=True, help="output JSON file")

    run = sub.add_parser("run", help="train and evaluate")
    common(run)
    run.add_argument("--env", required=True)
    run.add_argument("--total-timesteps", type=int, required=True, help="env-step budget (see --budget)")
    run.add_argument("--total-comparisons", type=int, required=True)
    run.add_argument("--reward-terms-wrapper", action="store_true",
                     help="wrap each env in the project's rl.preferences.reward_terms.RewardTermsInInfo")
    run.add_argument("--budget", choices=BUDGETS, default="all")
    run.add_argument("--eval-episodes", type=int, default=10)
    run.add_argument("--curve-episodes", type=int, default=5)
    run.add_argument("--overrides", type=_json_arg, default="{}", help="JSON object of imitation settings to change")
    label = sub.add_parser("label", help="label the fragment pairs of a JSON file (agreement checks)")
    common(label)
    label.add_argument("--fragments", required=True, help='JSON: {"fragments": [...], "pairs": [[i, j], ...]}')
    args = parser.parse_args(argv)
    if args.command == "run":
        if min(args.total_timesteps, args.total_comparisons, args.eval_episodes) <= 0 or args.curve_episodes < 0:
            parser.error("--total-timesteps, --total-comparisons and --eval-episodes must be positive.")
        try:
            check_overrides(json.loads(args.overrides))
        except ValueError as error:
            parser.error(str(error))
    return args


# ----------------------------------------------------------------------------------------------- the run


def resolve_config(named: str | None, updates: Mapping[str, Any]) -> dict[str, Any]:
    """imitation's effective train_preference_comparisons config (sacred's resolution: defaults, ingredients,
    config hooks, the named config, ``updates``), as ``print_config`` shows it."""
    import logging

    from imitation.scripts.config.train_preference_comparisons import train_preference_comparisons_ex as ex
    from sacred.initialize import create_run

    defaults = dict(ex.configurations[0]())
    changed = {k: (v, defaults.get(k)) for k, v in TRAIN_DEFAULTS.items() if defaults.get(k) != v}
    if changed:
        raise RuntimeError(f"imitation's train_defaults differ from those the parent checks with: {changed}")
    quiet = logging.getLogger("frontier_rl.imitation_config")
    quiet.setLevel(logging.ERROR)
    ex.logger = quiet
    run = create_run(ex, "print_config", config_updates=dict(updates), named_configs=[named] if named else [])
    return dict(run.config)


def _env_wrappers(reward_terms_wrapper: Any):
    """imitation's ``post_wrappers``: optionally the project's RewardTermsInInfo, then the float64 reward in info."""
    import gymnasium as gym

    class RecordReward(gym.Wrapper):
        def step(self, action):
            obs, reward, terminated, truncated, info = self.env.step(action)
            info = dict(info)
            info[REWARD_INFO_KEY] = float(reward)
            return obs, reward, terminated, truncated, info

    def wrap(env, _index):
        if reward_terms_wrapper is not None:
            env = reward_terms_wrapper(env)
        return RecordReward(env)

    return wrap


def _counting(venv):
    """``venv`` with a count of env steps (every step of every env: training and fragment sampling)."""
    from stable_baselines3.common.vec_env import VecEnvWrapper

    class CountingVecEnv(VecEnvWrapper):
        def __init__(self, inner):
            super().__init__(inner)
            self.env_steps = 0

        def reset(self):
            return self.venv.reset()

        def step_wait(self):
            result = self.venv.step_wait()
            self.env_steps += self.num_envs
            return result

    return CountingVecEnv(venv)


def _budgeted_trainer_class():
    from imitation.algorithms.preference_comparisons import AgentTrainer

    class BudgetedAgentTrainer(AgentTrainer):
        """imitation's AgentTrainer whose training calls are cut to the env-step cap (:func:`capped_steps`)."""

        def __init__(self, *args, counter, rollout: int, cap: int | None, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.counter, self.rollout, self.cap = counter, int(rollout), cap
            self.calls: list[dict[str, int]] = []

        def train(self, steps: int, **kwargs) -> None:
            before, env_before = int(self.algorithm.num_timesteps), int(self.counter.env_steps)
            allowed = capped_steps(steps, self.rollout, env_before, self.cap)
            if allowed > 0:
                super().train(allowed, **kwargs)
            self.calls.append({"requested": int(steps), "trained": int(self.algorithm.num_timesteps) - before,
                               "env_steps_before": env_before})

    return BudgetedAgentTrainer


def evaluate(agent: Any, env_id: str, seed: int, episodes: int) -> dict[str, Any]:
    """Our protocol: deterministic actions, reset seeds seed + 10_000 + k, undiscounted true returns."""
    import gymnasium as gym

    env = gym.make(env_id)
    returns, lengths = [], []
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + EVAL_SEED_OFFSET + k)
        total, length, done = 0.0, 0, False
        while not done:
            action, _ = agent.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            length += 1
            done = terminated or truncated
        returns.append(total)
        lengths.append(length)
    env.close()
    return {
        "true_return_mean": float(np.mean(returns)) if returns else None,
        "true_return_std": float(np.std(returns)) if returns else None,
        "episode_returns": returns, "episode_lengths": lengths,
    }


def versions() -> dict[str, str]:
    import importlib.metadata as md

    import gymnasium
    import mujoco
    import stable_baselines3
    import torch

    found = {
        "imitation": md.version("imitation"), "stable-baselines3": stable_baselines3.__version__,
        "gymnasium": gymnasium.__version__, "mujoco": mujoco.__version__, "torch": str(torch.__version__),
        "numpy": np.__version__, "sacred": md.version("sacred"), "python": platform.python_version(),
    }
    for name in ("pybullet", "pybullet-envs-gymnasium"):
        try:
            found[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return found


def run(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """Train PreferenceComparisons with the project's rater and evaluate it; the output record."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="frontier-imitation-logger-") as scratch:  # imitation's logger folders
        return _run(args, command, Path(scratch))


def _run(args: argparse.Namespace, command: str, scratch: Path) -> dict[str, Any]:
    import warnings

    import torch

    child_io.single_thread_torch()
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    import gymnasium as gym
    from imitation.algorithms import preference_comparisons as pc
    from imitation.scripts.ingredients.reward import _make_reward_net
    from imitation.util import logger as imit_logger
    from imitation.util import util as imit_util

    started = time.perf_counter()
    inputs = run_inputs(args)
    raters, segments = load_project(args.project_root, "raters", "segments")
    rater = make_baseline_rater(raters, args.rater, inputs["rater_kwargs"])
    if "Bullet" in args.env:
        import pybullet_envs_gymnasium  # noqa: F401  (registers the Bullet ids)
    if args.env not in gym.registry:
        raise ValueError(f"gymnasium {gym.__version__} has no env {args.env!r} (imitation's venv)")
    probe = gym.make(args.env)
    continuous = isinstance(probe.action_space, gym.spaces.Box)
    terms_wrapper, term_names = None, inputs["reward_terms"]
    if args.reward_terms_wrapper:
        (reward_terms,) = load_project(args.project_root, "reward_terms")
        terms_wrapper = reward_terms.RewardTermsInInfo
        if term_names == "auto":  # the wrapper's terms (auto would add the env's own reward_* keys to them)
            term_names = list(reward_terms.reward_term_names(probe))
    probe.close()
    if not continuous:
        raise ValueError(f"{args.env} has discrete actions; the benchmark's tasks are continuous")

    overrides = check_overrides(inputs["overrides"])
    updates, multiplier = config_updates(overrides)
    named = named_config_for(args.env)
    config = resolve_config(named, updates)
    if multiplier is None:
        import inspect

        multiplier = inspect.signature(pc.PreferenceComparisons.__init__).parameters["initial_epoch_multiplier"].default
    env_cfg, rl_cfg, policy_cfg, reward_cfg = config["environment"], config["rl"], config["policy"], config["reward"]
    num_vec = int(env_cfg["num_vec"])
    if int(rl_cfg["batch_size"]) % num_vec:
        raise ValueError(f"num_envs={num_vec} must evenly divide the rollout rl.batch_size={rl_cfg['batch_size']}")
    rollout = int(rl_cfg["batch_size"]) // num_vec * num_vec
    plan = plan_budget(
        args.total_timesteps, args.total_comparisons, num_iterations=int(config["num_iterations"]),
        fragment_length=int(config["fragment_length"]),
        initial_comparison_frac=float(config["initial_comparison_frac"]),
        transition_oversampling=float(config["transition_oversampling"]), rollout=rollout, budget=args.budget,
    )

    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    venv = imit_util.make_vec_env(
        args.env, rng=rng, n_envs=num_vec, parallel=False, max_episode_steps=env_cfg["max_episode_steps"],
        post_wrappers=[_env_wrappers(terms_wrapper)], env_make_kwargs=env_cfg["env_make_kwargs"],
    )
    counter = _counting(venv)
    logger = imit_logger.configure(folder=scratch, format_strs=["stdout"])
    reward_net = _make_reward_net(counter, reward_cfg["net_cls"], reward_cfg["net_kwargs"],
                                  reward_cfg["normalize_output_layer"])
    rl_kwargs = dict(rl_cfg["rl_kwargs"])
    agent = rl_cfg["rl_cls"](
        policy=policy_cfg["policy_cls"], policy_kwargs=dict(policy_cfg["policy_kwargs"]), env=counter,
        seed=args.seed, n_steps=int(rl_cfg["batch_size"]) // num_vec, **rl_kwargs,
    )
    trainer = _budgeted_trainer_class()(
        algorithm=agent, reward_fn=reward_net, venv=counter, exploration_frac=float(config["exploration_frac"]),
        rng=rng, custom_logger=logger, counter=counter, rollout=rollout, cap=plan["env_step_cap"],
    )
    reward_net = reward_net.to(agent.device)
    fragmenter = pc.RandomFragmenter(**config["fragmenter_kwargs"], rng=rng, custom_logger=logger)
    preference_model = pc.PreferenceModel(**config["preference_model_kwargs"], model=reward_net)
    converter = FragmentConverter(segments, term_names, "auto", env_id=args.env)
    gatherer = rater_gatherer_class()(rater, converter, np.random.default_rng(args.seed + LABEL_SEED_OFFSET),
                                      custom_logger=logger)
    reward_trainer = pc._make_reward_trainer(preference_model, pc.CrossEntropyRewardLoss(), rng,
                                             config["reward_trainer_kwargs"])
    main = pc.PreferenceComparisons(
        trainer, reward_net, num_iterations=int(config["num_iterations"]), fragmenter=fragmenter,
        preference_gatherer=gatherer, reward_trainer=reward_trainer,
        comparison_queue_size=config["comparison_queue_size"], fragment_length=int(config["fragment_length"]),
        transition_oversampling=float(config["transition_oversampling"]),
        initial_comparison_frac=float(config["initial_comparison_frac"]), initial_epoch_multiplier=multiplier,
        custom_logger=logger, allow_variable_horizon=True, query_schedule=config["query_schedule"],
    )
    reward_metrics: list[dict[str, Any]] = []
    train_reward = main.reward_trainer.train

    def train_reward_and_record(dataset, epoch_multiplier=1.0):
        train_reward(dataset, epoch_multiplier=epoch_multiplier)
        values = main.logger.name_to_value
        reward_metrics.append({"loss": values.get("reward/final/train/loss"),
                               "accuracy": values.get("reward/final/train/accuracy")})

    main.reward_trainer.train = train_reward_and_record

    settings = {
        "named_config": named, "num_vec": num_vec, "parallel": False, "rollout": rollout,
        "n_steps": int(rl_cfg["batch_size"]) // num_vec, "rl_cls": rl_cfg["rl_cls"], "rl_kwargs": rl_kwargs,
        "policy_cls": policy_cfg["policy_cls"], "policy_kwargs": policy_cfg["policy_kwargs"],
        "reward_net": reward_cfg, "initial_epoch_multiplier": multiplier, "allow_variable_horizon": True,
        "reward_trainer": {"class": type(reward_trainer), "epochs": reward_trainer.epochs,
                           "batch_size": reward_trainer.batch_size, "lr": reward_trainer.optim.defaults["lr"]},
        "gatherer": "RaterGatherer (project rater)", "overrides": overrides, "max_episode_steps":
        env_cfg["max_episode_steps"] or gym.spec(args.env).max_episode_steps,
        **{key: config[key] for key in (
            "fragment_length", "num_iterations", "comparison_queue_size", "transition_oversampling",
            "initial_comparison_frac", "exploration_frac", "query_schedule", "reward_trainer_kwargs",
            "preference_model_kwargs", "fragmenter_kwargs", "active_selection")},
    }
    print(f"[imitation] {args.env}, seed {args.seed}, {args.total_timesteps} env steps ({args.budget}), "
          f"{args.total_comparisons} comparisons, rater {inputs['rater']} {json.dumps(inputs['rater_kwargs'])}; "
          f"plan {json.dumps(plan)}", flush=True)
    print(f"[imitation] settings: {json.dumps(settings, default=child_io.jsonable)}", flush=True)

    curve: list[dict[str, Any]] = []
    eval_seconds = [0.0]

    def point(iteration: int) -> None:
        eval_start = time.perf_counter()
        result = evaluate(agent, args.env, args.seed, args.curve_episodes) if args.curve_episodes else {}
        eval_seconds[0] += time.perf_counter() - eval_start
        curve.append({
            "iteration": iteration, "env_steps": int(counter.env_steps), "agent_timesteps": int(agent.num_timesteps),
            "comparisons": int(gatherer.comparisons), "dataset_size": len(main.dataset),
            **({"reward": reward_metrics[-1]} if reward_metrics and iteration >= 0 else {}), **result,
        })
        write_json_atomic(progress_path(args.out), {"finished": False, "inputs": inputs, "plan": plan,
                                                    "curve": curve})
        last = curve[-1]
        print(f"[imitation] iteration {iteration}: {last['env_steps']} env steps, {last['comparisons']} comparisons, "
              f"true return {last.get('true_return_mean')}", flush=True)

    point(-1)
    train_start, eval_before = time.perf_counter(), eval_seconds[0]
    try:
        main.train(plan["imitation_total_timesteps"], args.total_comparisons, callback=point)
    except ValueError as error:
        if "No trajectories are long enough" not in str(error):
            raise
        raise ValueError(
            f"{_one_line(error)} imitation cuts fragments of exactly fragment_length={config['fragment_length']} "
            f"steps and drops shorter episodes, and none of those it sampled on {args.env} was that long (episodes "
            "that end early, e.g. Hopper's falls, while the policy is still poor). Fix: pass overrides="
            "{'fragment_length': N} with N below the early episodes' length (e.g. the benchmark's segment length), "
            "or a larger 'transition_oversampling'."
        ) from error
    train_wall = time.perf_counter() - train_start - (eval_seconds[0] - eval_before)
    final_start = time.perf_counter()
    final = evaluate(agent, args.env, args.seed, args.eval_episodes)
    final_seconds = time.perf_counter() - final_start
    env_steps = int(counter.env_steps)
    venv.close()
    return {
        "algorithm": ALGORITHM,
        "library": LIBRARY,
        "version": versions()["imitation"],
        "env": args.env,
        "seed": args.seed,
        "inputs": inputs,
        "rater": {"name": inputs["rater"], "kwargs": inputs["rater_kwargs"], "class": type(rater).__name__,
                  "reward_names": converter.reward_names, "label_seed": args.seed + LABEL_SEED_OFFSET},
        "total_timesteps": int(args.total_timesteps),
        "total_comparisons": int(args.total_comparisons),
        "env_steps": env_steps,
        "agent_timesteps": int(agent.num_timesteps),
        "fragment_sampling_env_steps": env_steps - int(agent.num_timesteps),
        "over_budget_env_steps": max(0, env_steps - int(args.total_timesteps)),
        "comparisons_used": int(gatherer.comparisons),
        "comparisons_per_iteration": gatherer.batches,
        "training_calls": trainer.calls,
        "plan": plan,
        "curve": curve,
        "final": {"episodes": int(args.eval_episodes), **final},
        "wall_s": time.perf_counter() - started,
        "train_wall_s": train_wall,
        "curve_eval_s": eval_seconds[0],
        "final_eval_s": final_seconds,
        "steps_per_s": env_steps / train_wall if train_wall > 0 else None,
        "settings": settings,
        "protocol": {
            "curve": "after each imitation iteration (and before training): mean undiscounted true return of "
                     "curve_episodes episodes, deterministic actions, reset seeds seed+10000+k",
            "final": "the same with eval_episodes episodes after training",
            "env_steps": "every env step of the training vec env: PPO rollouts and imitation's fragment sampling; "
                         "evaluation steps not included",
            "steps_per_s": "env_steps / train_wall_s (training wall time without the curve's evaluations)",
        },
        "versions": versions(),
        "command": command,
        "torch_threads": torch.get_num_threads(),
    }


def label_file(args: argparse.Namespace) -> dict[str, Any]:
    """``label``: the labels the run's gatherer gives the pairs of ``--fragments`` (seeded with ``--seed``)."""
    raters, segments = load_project(args.project_root, "raters", "segments")
    rater = make_baseline_rater(raters, args.rater, json.loads(args.rater_kwargs))
    data = json.loads(Path(args.fragments).read_text())
    fragments = [SimpleNamespace(obs=np.asarray(f["obs"]), acts=np.asarray(f["acts"]),
                                 rews=np.asarray(f["rews"], dtype=np.float32), infos=f["infos"])
                 for f in data["fragments"]]
    converter = FragmentConverter(segments, json.loads(args.reward_terms), "auto")
    pairs = [(fragments[i], fragments[j]) for i, j in data["pairs"]]
    labels = label_pairs(rater, converter, pairs, np.random.default_rng(args.seed))
    import gymnasium

    return {"labels": labels.tolist(), "reward_names": converter.reward_names,
            "versions": {"gymnasium": gymnasium.__version__, "numpy": np.__version__,
                         "python": platform.python_version()}}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = child_io.command_line(__file__, argv)
    try:
        record = run(args, command) if args.command == "run" else label_file(args)
    except Exception as error:  # the traceback for the log, then one line for the caller (naming the type if empty)
        return child_io.report_failure(error, _one_line(error))
    path = write_json_atomic(args.out, record)
    if args.command == "run":
        print(f"[imitation] final true return {record['final']['true_return_mean']:.1f} over "
              f"{args.eval_episodes} episodes; {record['env_steps']} env steps ({record['agent_timesteps']} agent), "
              f"{record['comparisons_used']} comparisons in {record['train_wall_s']:.1f} s "
              f"({record['steps_per_s']:.0f} steps/s); wrote {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
