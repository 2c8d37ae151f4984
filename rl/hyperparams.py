"""Hyperparameters: rl-zoo3-style YAML defaults per algorithm and env, plus command-line overrides.

A file ``algos/hyperparams/<algo>.yml`` maps env ids to keyword arguments; the ``default`` entry applies
to every env and an env's own entry is merged over it. ``--conf-file`` and ``-params key:value`` are
merged on top, in that order. Keys are checked against the algorithm's constructor so that a typo is
refused with the list of valid keys instead of being silently ignored.
"""

from __future__ import annotations

import ast
import difflib
import inspect
import os
from collections.abc import Callable, Mapping
from typing import Any

import torch as th
import yaml
from stable_baselines3.common.utils import LinearSchedule

HYPERPARAMS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "algos", "hyperparams")

RUNNER_KEYS: dict[str, str] = {
    "n_timesteps": "total env steps of the run (online steps, for offline algorithms)",
    "offline_steps": "gradient steps on the dataset before any env step (offline algorithms)",
    "policy": "policy name or class (default: MultiInputPolicy for Dict observations, else MlpPolicy)",
    "n_envs": "number of parallel envs",
    "normalize": "VecNormalize: true/false or a dict of VecNormalize keyword arguments",
    "env_kwargs": "keyword arguments for gym.make",
    "vec_env_class": "'dummy' or 'subproc'",
}
"""Keys the runner consumes itself; every other key goes to the algorithm's constructor."""

_CONSTRUCTOR_EXCLUDED = {"self", "policy", "env", "_init_setup_model", "args", "kwargs"}
_EVAL_NAMESPACE = {"dict": dict, "nn": th.nn, "th": th, "torch": th, "True": True, "False": False, "None": None}


class HyperparameterError(ValueError):
    """Raised for an unknown key or a value that cannot be parsed."""


def parse_value(text: str) -> Any:
    """Parse a command-line value the way rl-zoo3 does: Python literals, ``dict(...)``, ``nn.ReLU``.

    ``lin_<x>`` becomes a linear schedule from ``x`` to 0; anything else that is not an expression
    stays a string.
    """
    text = text.strip()
    if text.startswith("lin_"):
        return linear_schedule(float(text[4:]))
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        pass
    try:
        return eval(text, {"__builtins__": {}}, dict(_EVAL_NAMESPACE))  # noqa: S307 - restricted namespace
    except Exception:
        return text


def linear_schedule(initial_value: float) -> Callable[[float], float]:
    """Linear decay from ``initial_value`` to 0 over training (SB3's progress_remaining convention)."""
    return LinearSchedule(initial_value, 0.0, 1.0)


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """Turn ``["key:value", ...]`` (``-params``) into a dict, with a clear error for a malformed item."""
    result: dict[str, Any] = {}
    for item in items or []:
        if ":" not in item:
            raise HyperparameterError(
                f"Hyperparameter {item!r} is not of the form key:value (e.g. learning_rate:0.0003)."
            )
        key, value = item.split(":", 1)
        result[key.strip()] = parse_value(value)
    return result


def _normalise_yaml_values(params: Mapping[str, Any]) -> dict[str, Any]:
    """YAML gives strings for Python expressions such as ``dict(net_arch=[64, 64])``: evaluate them."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, str) and key not in ("policy", "vec_env_class"):
            value = parse_value(value)
        out[key] = value
    return out


def load_yaml(path: str) -> dict[str, Any]:
    """Read a YAML mapping, naming the file in the error when it is missing or malformed."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Hyperparameter file {path!r} does not exist.")
    with open(path) as handle:
        try:
            data = yaml.safe_load(handle) or {}
        except yaml.YAMLError as error:
            raise HyperparameterError(f"Hyperparameter file {path!r} is not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise HyperparameterError(f"Hyperparameter file {path!r} must hold a mapping, got {type(data).__name__}.")
    return data


def default_hyperparams(algo: str, env_id: str, directory: str = HYPERPARAMS_DIR) -> dict[str, Any]:
    """The repo's defaults for ``algo`` on ``env_id``: the ``default`` entry with the env's entry over it."""
    path = os.path.join(directory, f"{algo}.yml")
    if not os.path.isfile(path):
        return {}
    table = load_yaml(path)
    merged = dict(table.get("default") or {})
    merged.update(table.get(env_id) or {})
    return _normalise_yaml_values(merged)


def conf_file_hyperparams(path: str, env_id: str) -> dict[str, Any]:
    """A ``--conf-file``: either a flat mapping of keys, or rl-zoo3's env-keyed layout."""
    table = load_yaml(path)
    if env_id in table or "default" in table:
        merged = dict(table.get("default") or {})
        merged.update(table.get(env_id) or {})
        return _normalise_yaml_values(merged)
    return _normalise_yaml_values(table)


def constructor_keys(algo_class: type) -> list[str]:
    """Keyword arguments ``algo_class.__init__`` accepts (besides policy and env)."""
    signature = inspect.signature(algo_class.__init__)
    return [name for name in signature.parameters if name not in _CONSTRUCTOR_EXCLUDED]


def validate_keys(params: Mapping[str, Any], algo_class: type, algo_name: str) -> None:
    """Refuse keys that neither the runner nor the algorithm's constructor knows."""
    valid = set(constructor_keys(algo_class)) | set(RUNNER_KEYS)
    for key in params:
        if key not in valid:
            close = difflib.get_close_matches(key, sorted(valid), n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise HyperparameterError(
                f"Unknown hyperparameter {key!r} for {algo_name}.{hint} "
                f"Valid keys: {', '.join(sorted(valid))}."
            )


def resolve_hyperparams(
    algo: str,
    algo_class: type,
    env_id: str,
    *,
    conf_file: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Defaults from the repo, then the conf file, then the overrides; validated."""
    params = default_hyperparams(algo, env_id)
    if conf_file:
        params.update(conf_file_hyperparams(conf_file, env_id))
    params.update(overrides or {})
    validate_keys(params, algo_class, algo)
    return params


def split_runner_keys(params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split merged hyperparameters into (runner settings, algorithm constructor kwargs)."""
    runner = {k: v for k, v in params.items() if k in RUNNER_KEYS}
    algo_kwargs = {k: v for k, v in params.items() if k not in RUNNER_KEYS}
    return runner, algo_kwargs


def printable(value: Any) -> Any:
    """A YAML/JSON-safe copy of hyperparameters: classes by dotted name, schedules by repr."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): printable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [printable(v) for v in value]
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    return repr(value)
