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
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

import torch as th
import yaml
from stable_baselines3 import HerReplayBuffer
from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer
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

STRING_RUNNER_KEYS = ("policy", "vec_env_class")
"""Runner keys whose values are strings (a policy name, 'dummy'/'subproc'); the others take numbers or dicts."""

_CONSTRUCTOR_EXCLUDED = {"self", "policy", "env", "_init_setup_model", "args", "kwargs"}
_EVAL_NAMESPACE = {
    "dict": dict, "nn": th.nn, "th": th, "torch": th, "True": True, "False": False, "None": None,
    # rl-zoo3's names for replay buffers (``replay_buffer_class: HerReplayBuffer`` for goal-conditioned envs)
    "HerReplayBuffer": HerReplayBuffer, "ReplayBuffer": ReplayBuffer, "DictReplayBuffer": DictReplayBuffer,
}


class HyperparameterError(ValueError):
    """Raised for an unknown key or a value that cannot be parsed."""


def parse_value(text: str, key: str | None = None) -> Any:
    """Parse a command-line value the way rl-zoo3 does: Python literals, ``dict(...)``, ``nn.ReLU``.

    ``lin_<x>`` becomes a linear schedule from ``x`` to 0; anything else that is not an expression
    stays a string (:func:`validate_keys` then keeps it only where the key takes a string).

    Raises:
        HyperparameterError: ``lin_`` followed by something other than a number (``key`` names the key).
    """
    text = text.strip()
    if text.startswith("lin_"):
        try:
            return linear_schedule(float(text[4:]))
        except ValueError:
            what = f"Hyperparameter {key!r} got {text!r}" if key is not None else f"{text!r}"
            raise HyperparameterError(
                f"{what}: lin_<x> is a linear schedule from x to 0 and needs a number, e.g. lin_0.0003."
            ) from None
    try:
        return ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
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
        result[key.strip()] = parse_value(value, key.strip())
    return result


def _normalise_yaml_values(params: Mapping[str, Any]) -> dict[str, Any]:
    """YAML gives strings for Python expressions such as ``dict(net_arch=[64, 64])``: evaluate them."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, str) and key not in STRING_RUNNER_KEYS:
            value = parse_value(value, key)
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


def _split_top_level(text: str, separator: str) -> list[str]:
    """``text`` split at ``separator`` outside brackets: ``"int | tuple[int, str]"`` -> ``["int", "tuple[...]"]``."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
        elif char == separator and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return [part.strip() for part in parts]


def _text_admits_str(annotation: str) -> bool:
    """Whether a string annotation (``from __future__ import annotations``) lets the value be a str."""
    annotation = annotation.strip()
    for wrapper in ("Optional[", "typing.Optional[", "Union[", "typing.Union["):
        if annotation.startswith(wrapper) and annotation.endswith("]"):
            return any(_text_admits_str(member) for member in _split_top_level(annotation[len(wrapper):-1], ","))
    members = _split_top_level(annotation, "|")
    if len(members) > 1:
        return any(_text_admits_str(member) for member in members)
    if annotation.startswith(("Literal[", "typing.Literal[")):
        return "'" in annotation or '"' in annotation
    return annotation in ("str", "builtins.str", "Any", "typing.Any", "object")


def _type_admits_str(annotation: Any) -> bool:
    """Whether a runtime annotation (``str | float``, ``Optional[str]``, ``Literal["a"]``) lets the value be a str."""
    if isinstance(annotation, str):
        return _text_admits_str(annotation)
    if annotation in (str, Any, object):
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_type_admits_str(member) for member in typing.get_args(annotation))
    if origin is typing.Literal:
        return any(isinstance(member, str) for member in typing.get_args(annotation))
    return False


def takes_string(algo_class: type, key: str) -> bool:
    """Whether a str is a meaningful value of ``key``: a string runner key (policy, vec_env_class), or a
    constructor argument whose default is a str (SAC's ``ent_coef="auto"``) or whose annotation admits str.
    An argument with neither annotation nor default (or default None and no annotation) cannot be told: True."""
    if key in RUNNER_KEYS:
        return key in STRING_RUNNER_KEYS
    parameter = inspect.signature(algo_class.__init__).parameters.get(key)
    if parameter is None:
        return True  # unknown keys are refused on their own
    if isinstance(parameter.default, str):
        return True
    if parameter.annotation is inspect.Parameter.empty:
        return parameter.default in (None, inspect.Parameter.empty)
    return _type_admits_str(parameter.annotation)


def _not_a_value_message(algo_class: type, algo_name: str, key: str, value: str) -> str:
    if key in RUNNER_KEYS:
        takes = f"the runner's {key} ({RUNNER_KEYS[key]}) takes no text"
        schedule = False
    else:
        parameter = inspect.signature(algo_class.__init__).parameters[key]
        annotation = parameter.annotation
        if annotation is inspect.Parameter.empty:
            described = "a non-string value"
        elif isinstance(annotation, str):
            described = annotation
        else:
            described = re.sub(r"\b(?:typing|collections\.abc|builtins)\.", "", inspect.formatannotation(annotation))
        default = "" if parameter.default is inspect.Parameter.empty else f" (default {parameter.default!r})"
        takes = f"{algo_name}'s {key} takes {described}{default}"
        schedule = any(word in described for word in ("Schedule", "Callable"))
    hint = " or lin_<x> for a linear schedule from x to 0" if schedule else ""
    return (
        f"Hyperparameter {key!r} got {value!r}, which is not a number/Python value: {takes}. Write a number or a "
        f"Python literal (0.001, True, [64, 64], dict(...)){hint}."
    )


def validate_keys(params: Mapping[str, Any], algo_class: type, algo_name: str) -> None:
    """Refuse keys that neither the runner nor the algorithm's constructor knows, and text where a key takes none.

    A value that is a plain string (``-params learning_rate:abc`` parses to ``"abc"``) is kept only where a
    string is meaningful (:func:`takes_string`); elsewhere it is a typo or an expression that did not parse.
    """
    valid = set(constructor_keys(algo_class)) | set(RUNNER_KEYS)
    for key in params:
        if key not in valid:
            close = difflib.get_close_matches(key, sorted(valid), n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise HyperparameterError(
                f"Unknown hyperparameter {key!r} for {algo_name}.{hint} "
                f"Valid keys: {', '.join(sorted(valid))}."
            )
    for key, value in params.items():
        if isinstance(value, str) and not takes_string(algo_class, key):
            raise HyperparameterError(_not_a_value_message(algo_class, algo_name, key, value))


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
