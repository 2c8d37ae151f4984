"""Simulator-variant specs: ``"gravity=2.0,friction=0.5"`` <-> ``{"gravity": 2.0, "friction": 0.5}``, validated."""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass


class SimSpecError(ValueError):
    """Raised for a sim spec or randomisation range that names an unknown parameter or an invalid value."""


@dataclass(frozen=True)
class Parameter:
    """One dynamics parameter a simulator variant can change."""

    name: str
    meaning: str
    """What the value does, for error messages and ``--help``."""
    minimum: float
    """Smallest valid value."""
    minimum_inclusive: bool
    nominal: float
    """The value that leaves the simulator unchanged."""

    def check(self, value: float, context: str) -> float:
        value = float(value)
        too_small = value < self.minimum if self.minimum_inclusive else value <= self.minimum
        if not math.isfinite(value) or too_small:
            bound = f">= {self.minimum:g}" if self.minimum_inclusive else f"> {self.minimum:g}"
            raise SimSpecError(
                f"{context}: {self.name} must be a finite number {bound} ({self.meaning}), got {value!r}."
            )
        return value


PARAMETERS: dict[str, Parameter] = {
    p.name: p
    for p in (
        Parameter("gravity", "factor on the gravity vector", 0.0, True, 1.0),
        Parameter("friction", "factor on every contact friction coefficient", 0.0, True, 1.0),
        Parameter("mass", "factor on every body's mass and inertia (a uniform density change)", 0.0, False, 1.0),
        Parameter("damping", "factor on every joint's damping (MuJoCo only)", 0.0, True, 1.0),
        Parameter("action_noise", "std of Gaussian noise added to each action, in half action ranges", 0.0, True, 0.0),
    )
}
"""Everything a simulator variant can change, by name. Every value is a factor on the simulator's own value,
except ``action_noise``, an absolute std (relative to half the action range, i.e. in action units on
MuJoCo's [-1, 1] actuators)."""

ALIASES: dict[str, str] = {"density": "mass", "joint_damping": "damping", "noise": "action_noise"}
"""Other names accepted in specs (``density=0.5`` scales masses as a uniform density change would)."""


def describe_parameters() -> str:
    """One line listing every parameter and what it means, for messages and help texts."""
    items = [f"{p.name}=<{'std' if p.name == 'action_noise' else 'factor'}> ({p.meaning})" for p in PARAMETERS.values()]
    aliases = ", ".join(f"{alias} = {name}" for alias, name in ALIASES.items())
    return f"{'; '.join(items)}. Aliases: {aliases}. Example: gravity=2.0,friction=0.5"


def canonical_name(name: str, context: str) -> str:
    """The parameter ``name`` refers to (aliases resolved, case-insensitive); SimSpecError listing them all."""
    key = name.strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key not in PARAMETERS:
        close = difflib.get_close_matches(key, [*PARAMETERS, *ALIASES], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SimSpecError(
            f"{context}: unknown dynamics parameter {name.strip()!r}{hint}. "
            f"Parameters that can be changed: {describe_parameters()}."
        )
    return key


def parse_sim_spec(text: str) -> dict[str, float]:
    """Parse ``"name=value,name=value"`` into ``{name: value}`` (canonical names, validated values).

    Raises:
        SimSpecError: for an empty spec, an item without ``=``, an unknown name (the message lists every
            parameter that can be changed), a value that is not a number or out of range, a repeated name.
    """
    context = f"Invalid sim spec {text!r}"
    if not isinstance(text, str) or not text.strip():
        raise SimSpecError(f"{context}: it is empty. Parameters that can be changed: {describe_parameters()}.")
    result: dict[str, float] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        if "=" not in item:
            raise SimSpecError(
                f"{context}: {item.strip()!r} is not of the form name=value. "
                f"Parameters that can be changed: {describe_parameters()}."
            )
        name, value_text = item.split("=", 1)
        key = canonical_name(name, context)
        if key in result:
            raise SimSpecError(f"{context}: {key} is given twice.")
        try:
            value = float(value_text)
        except ValueError:
            raise SimSpecError(f"{context}: the value of {key}, {value_text.strip()!r}, is not a number.") from None
        result[key] = PARAMETERS[key].check(value, context)
    return result


def validate_parameters(values: Mapping[str, float], context: str = "Invalid sim parameters") -> dict[str, float]:
    """The same checks as :func:`parse_sim_spec` on a mapping (canonical names returned)."""
    result: dict[str, float] = {}
    for name, value in values.items():
        key = canonical_name(str(name), context)
        if key in result:
            raise SimSpecError(f"{context}: {key} is given twice.")
        result[key] = PARAMETERS[key].check(value, context)
    return result


def format_sim_spec(values: Mapping[str, float]) -> str:
    """The spec text of ``values`` (canonical order), e.g. ``"gravity=2,friction=0.5"``."""
    checked = validate_parameters(values)
    return ",".join(f"{name}={checked[name]:g}" for name in PARAMETERS if name in checked)
