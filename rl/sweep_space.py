"""Hyperparameter search spaces in YAML, in rl-zoo3's vocabulary, turned into Ray Tune's (and so Optuna's).

A space file maps hyperparameter names (the keys of ``algos/hyperparams/<algo>.yml``) to one distribution
each, named as rl-zoo3's ``hyperparams_opt.py`` samples them with Optuna::

    learning_rate: {loguniform: [1.0e-5, 2.0e-3]}   # trial.suggest_float(..., log=True)
    gamma: {uniform: [0.95, 0.999]}                 # trial.suggest_float
    n_epochs: {int: [3, 20]}                        # trial.suggest_int, both ends included
    n_steps: {logint: [64, 2048]}                   # trial.suggest_int(..., log=True)
    batch_size: {categorical: [64, 128, 256]}       # trial.suggest_categorical
    policy_kwargs: {categorical: ["dict(net_arch=[64, 64])", "dict(net_arch=[256, 256])"]}
    normalize: true                                 # a plain value: fixed, not searched

Strings are read as the hyperparameter files read them (:func:`rl.hyperparams.parse_value`: ``dict(...)``,
``nn.ReLU``, ``lin_3e-4``), so any value those files hold can be searched over; a list or mapping among the
categorical choices becomes its Python text the same way. Keys the space does not name keep the algorithm's
file defaults. Bounds may be written ``1e-5`` (PyYAML reads that as text; it is converted).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rl.hyperparams import STRING_RUNNER_KEYS, load_yaml, parse_value

DISTRIBUTIONS = ("categorical", "int", "logint", "loguniform", "uniform")
"""The distribution names a space file may use."""


class SearchSpaceError(ValueError):
    """A search-space file that cannot be read as one (printed as one line by the command line, exit status 2)."""


@dataclass(frozen=True)
class Dimension:
    """One searched hyperparameter: its distribution and that distribution's arguments."""

    name: str
    distribution: str
    """One of :data:`DISTRIBUTIONS`."""
    values: tuple[Any, ...]
    """``(low, high)`` for the ranges (both included), the choices for ``categorical``."""

    def to_tune(self) -> Any:
        """This dimension as a Ray Tune search-space object (which OptunaSearch turns into Optuna's)."""
        from ray import tune

        if self.distribution == "categorical":
            return tune.choice(list(self.values))
        low, high = self.values
        return {
            "uniform": lambda: tune.uniform(low, high),
            "loguniform": lambda: tune.loguniform(low, high),
            "int": lambda: tune.randint(low, high + 1),  # Tune's upper bound is exclusive
            "logint": lambda: tune.lograndint(low, high + 1),
        }[self.distribution]()

    def example(self) -> Any:
        """A value this dimension can take (its low end, or its first choice), to check the key before searching."""
        return self.values[0]


@dataclass(frozen=True)
class SearchSpace:
    """A parsed space file: the searched dimensions and the fixed values."""

    dimensions: dict[str, Dimension]
    fixed: dict[str, Any]

    def to_tune(self) -> dict[str, Any]:
        """Ray Tune's ``param_space`` of the searched dimensions (the fixed values are added per trial)."""
        return {name: dimension.to_tune() for name, dimension in self.dimensions.items()}

    def example(self) -> dict[str, Any]:
        """One point of the space, fixed values included, as raw values (see :func:`to_hyperparams`)."""
        return {**self.fixed, **{name: d.example() for name, d in self.dimensions.items()}}


def _number(path: str, key: str, value: Any, integer: bool) -> int | float:
    """A bound as a number: PyYAML reads ``1e-5`` (no dot) as a string, which is converted here."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SearchSpaceError(f"{path}: {key}: bound {value!r} is not a number.") from None
    if integer:
        if not number.is_integer():
            raise SearchSpaceError(f"{path}: {key}: bound {value!r} of an integer range is not an integer.")
        return int(number)
    return number


def _choice(value: Any) -> Any:
    """A categorical choice as Optuna can store it (None, bool, int, float, str): a list or mapping becomes its
    Python text, which :func:`rl.hyperparams.parse_value` reads back."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def parse_dimension(path: str, key: str, spec: Any) -> Dimension | None:
    """The :class:`Dimension` of one entry of a space file; None for a plain (fixed) value.

    Raises:
        SearchSpaceError: an unknown distribution, or arguments that do not fit it.
    """
    if not isinstance(spec, Mapping):
        return None
    example = f"e.g. {key}: {{loguniform: [1.0e-5, 1.0e-3]}} or {key}: {{categorical: [64, 128]}}"
    if len(spec) != 1:
        raise SearchSpaceError(
            f"{path}: {key}: give exactly one distribution ({', '.join(DISTRIBUTIONS)}), got {sorted(spec)}; {example}."
        )
    (distribution, values), = spec.items()
    if distribution not in DISTRIBUTIONS:
        raise SearchSpaceError(
            f"{path}: {key}: unknown distribution {distribution!r}; use one of {', '.join(DISTRIBUTIONS)} ({example})."
        )
    if not isinstance(values, (list, tuple)) or not values:
        raise SearchSpaceError(f"{path}: {key}: {distribution} takes a list, got {values!r}; {example}.")
    if distribution == "categorical":
        return Dimension(key, distribution, tuple(_choice(v) for v in values))
    if len(values) != 2:
        raise SearchSpaceError(f"{path}: {key}: {distribution} takes [low, high], got {values!r}.")
    integer = distribution in ("int", "logint")
    low, high = (_number(path, key, v, integer) for v in values)
    if not low < high or not (math.isfinite(low) and math.isfinite(high)):
        raise SearchSpaceError(f"{path}: {key}: {distribution} needs finite low < high, got [{low}, {high}].")
    if distribution.startswith("log") and low <= 0:
        raise SearchSpaceError(f"{path}: {key}: {distribution} needs low > 0, got {low}.")
    return Dimension(key, distribution, (low, high))


def load_search_space(path: str) -> SearchSpace:
    """Read a space file (see the module's docstring).

    Raises:
        FileNotFoundError: the file does not exist.
        rl.hyperparams.HyperparameterError: it is not a YAML mapping.
        SearchSpaceError: an entry is not a distribution this module knows, or nothing is searched.
    """
    table = load_yaml(path)
    dimensions: dict[str, Dimension] = {}
    fixed: dict[str, Any] = {}
    for key, spec in table.items():
        dimension = parse_dimension(path, str(key), spec)
        if dimension is None:
            fixed[str(key)] = spec
        else:
            dimensions[str(key)] = dimension
    if not dimensions:
        raise SearchSpaceError(
            f"{path}: nothing to search: give at least one hyperparameter a distribution "
            f"({', '.join(DISTRIBUTIONS)}), e.g. learning_rate: {{loguniform: [1.0e-5, 1.0e-3]}}."
        )
    return SearchSpace(dimensions, fixed)


def to_hyperparams(values: Mapping[str, Any]) -> dict[str, Any]:
    """Sampled (or fixed) raw values as the runner's hyperparameters: text is parsed as the YAML files' is."""
    return {
        key: parse_value(value, key) if isinstance(value, str) and key not in STRING_RUNNER_KEYS else value
        for key, value in values.items()
    }


def plain(value: Any) -> Any:
    """A sampled value as a plain YAML/CSV value (NumPy scalars become Python numbers)."""
    item = getattr(value, "item", None)
    return item() if callable(item) and not isinstance(value, (str, bytes)) else value
