"""The hydrothermal system as data: dataclasses, the JSON loader with validation, and the shipped cases.

The file format is documented in the package docstring (``envs.hydro``). Every error raised while reading a file
is a :class:`SystemDataError` whose message starts with the path of the offending field, e.g.
``hydros[0].downstream: unknown plant 'H9'``.

The system also defines what the rest of the project measures on it, so that the Gymnasium env, TS-DDR, SDDP and
the benchmark agree: when a target end volume counts as missed (:data:`VIOLATION_TOLERANCE`,
:meth:`HydroSystem.target_violations`) and how inflows are scaled from a set of scenarios
(:meth:`HydroSystem.inflow_scale`). Shipped cases (``envs/hydro/cases/*.json``) are found by name with
:func:`case_path`, the one resolver of case names.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

NETWORK_MODELS = ("dc", "single_bus")
CASES_DIR = Path(__file__).parent / "cases"
"""Where the shipped cases live (``<name>.json``)."""
VIOLATION_TOLERANCE = 1e-3
"""A target end volume counts as violated when ``|end volume - target| > VIOLATION_TOLERANCE x (max - min volume)``.

Why 0.1 % of the reservoir's range: it is far above numerical noise and far below an operationally relevant miss.
The noise is the LP's (HiGHS' primal feasibility tolerance is 1e-7 in volume units, under 1e-8 of the smallest
shipped range, bolivia-like's 16.39 hm3) and the float32 actions of the Gymnasium env (about 1e-7 of the range);
TS-DDR's own finite-difference step is 1e-4 of the range (``fd_step``), so a tolerance ten times that does not
count as missed a move the method treats as infinitesimal. A miss of 0.1 % is 0.016 hm3 on bolivia-like's smallest
reservoir and 0.4 hm3 on the toy's. It is also the value with which TS-DDR's evaluation and the committed tables of
``results/tsddr/`` were computed, so those numbers stand (the env's ``info["violation"]`` used 1e-4 before; no
table read it).
"""


class SystemDataError(ValueError):
    """A system file (or dict) is malformed; the message names the field and the problem."""


@dataclass(frozen=True)
class Line:
    """A transmission line of the DC network.

    Flow from ``from_bus`` to ``to_bus`` is ``(theta_from - theta_to) / reactance`` and ``|flow| <= capacity``.
    """

    name: str
    from_bus: str
    to_bus: str
    reactance: float
    """Series reactance (per unit of the angle variable, so flow = angle difference / reactance)."""
    capacity: float
    """Thermal limit in MW, both directions."""


@dataclass(frozen=True)
class ThermalUnit:
    """A thermal generator with a linear cost."""

    name: str
    bus: str
    capacity: float
    """Maximum generation in MW (minimum is 0)."""
    cost: float
    """Cost per MW of generation sustained over one stage."""


@dataclass(frozen=True)
class HydroPlant:
    """A hydro plant with its reservoir.

    Volumes, inflows, turbined and spilled water are all volumes per stage (e.g. hm3); generation is
    ``production_factor * turbined`` MW.
    """

    name: str
    bus: str
    min_volume: float
    max_volume: float
    initial_volume: float
    max_turbine: float
    """Maximum water turbined in one stage."""
    production_factor: float
    """MW generated per unit of water turbined in a stage."""
    downstream: str | None = None
    """The plant that receives this plant's turbined and spilled water in the same stage (cascade), or None."""
    max_spill: float | None = None
    """Maximum water spilled in one stage; None means unbounded."""


@dataclass(frozen=True)
class HydroSystem:
    """A long-term hydrothermal dispatch problem: network, plants, demand and inflow scenarios."""

    name: str
    num_stages: int
    buses: tuple[str, ...]
    lines: tuple[Line, ...]
    thermals: tuple[ThermalUnit, ...]
    hydros: tuple[HydroPlant, ...]
    demand: np.ndarray
    """Demand in MW, shape ``(num_stages, num_buses)`` in the order of ``buses``."""
    inflows: np.ndarray
    """Inflow scenarios, shape ``(num_scenarios, num_stages, num_hydros)`` in the order of ``hydros``."""
    deficit_cost: float
    """Cost per MW of unserved demand over one stage (at any bus)."""
    target_penalty: float
    """Cost per unit of volume by which a stage's end volume misses its target (TS-DDR's slack penalty)."""
    network: str = "dc"
    """``"dc"`` (DC power flow over ``lines``) or ``"single_bus"`` (lines ignored, one system-wide balance)."""

    @property
    def num_scenarios(self) -> int:
        return int(self.inflows.shape[0])

    @property
    def initial_volumes(self) -> np.ndarray:
        return np.array([h.initial_volume for h in self.hydros], dtype=float)

    @property
    def volume_ranges(self) -> np.ndarray:
        """Useful storage ``max_volume - min_volume`` per plant, in the order of ``hydros``."""
        return np.array([h.max_volume - h.min_volume for h in self.hydros], dtype=float)

    def target_violations(self, target_slack: np.ndarray) -> np.ndarray:
        """Which entries of ``target_slack`` (end volume - target; plants on the last axis) miss their target.

        A miss is ``|slack| > VIOLATION_TOLERANCE x`` the plant's range (a plant without range: any slack above
        ``1e-9 x VIOLATION_TOLERANCE``). Returns a bool array of the shape of ``target_slack``.
        """
        limit = VIOLATION_TOLERANCE * np.maximum(self.volume_ranges, 1e-9)
        return np.abs(np.asarray(target_slack, dtype=float)) > limit

    def inflow_scale(self, scenarios: Sequence[int] | np.ndarray) -> np.ndarray:
        """Mean inflow per plant over the given scenario indices (1 for a plant whose mean is 0).

        What policies divide inflows by so that they are O(1). Pass the *training* scenarios only: statistics
        that include held-out scenarios leak them into training (an env or policy scaled with them would change
        when the held-out data do).
        """
        indices = np.asarray(scenarios, dtype=int).reshape(-1)
        if indices.size == 0:
            raise ValueError("scenarios: expected at least one scenario index to compute the inflow scale from")
        mean = self.inflows[indices].mean(axis=(0, 1))
        return np.where(mean > 1e-9, mean, 1.0)

    def bus_index(self, bus: str) -> int:
        return self.buses.index(bus)

    def hydro_index(self, name: str) -> int:
        return [h.name for h in self.hydros].index(name)

    def upstream(self, index: int) -> list[int]:
        """Indices of the plants whose released water flows into plant ``index``."""
        name = self.hydros[index].name
        return [i for i, h in enumerate(self.hydros) if h.downstream == name]


# --------------------------------------------------------------------------------------------------- loading


class UnknownCaseError(ValueError):
    """A case name is neither a shipped case (``envs/hydro/cases/<name>.json``) nor an existing file."""


def case_names() -> list[str]:
    """Names of the shipped cases (the stems of ``envs/hydro/cases/*.json``)."""
    return sorted(p.stem for p in CASES_DIR.glob("*.json"))


def toy_case_path() -> Path:
    """The shipped 3-bus / 1-hydro / 2-thermal / 12-stage toy case (20 inflow scenarios)."""
    return CASES_DIR / "toy.json"


def case_path(name: str | Path) -> Path:
    """Resolve a case name (``"toy"``, any ``<name>.json`` under ``envs/hydro/cases/``; ``-`` and ``_`` are
    interchangeable) or a JSON file path.

    Raises:
        UnknownCaseError: nothing matches; the message lists the closest shipped names.
    """
    path = Path(name)
    if path.suffix == ".json" and path.is_file():
        return path
    for stem in dict.fromkeys((str(name), str(name).replace("-", "_"), str(name).replace("_", "-"))):
        shipped = CASES_DIR / f"{stem}.json"  # "bolivia-like" also finds bolivia_like.json
        if shipped.is_file():
            return shipped
    if path.is_file():
        return path
    names = case_names()
    close = difflib.get_close_matches(str(name), names, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    raise UnknownCaseError(
        f"unknown case {str(name)!r}: {hint}shipped cases are {names}; or give the path of a case JSON file"
    )


def load_system(path: str | Path) -> HydroSystem:
    """Read a system from a JSON file in the format documented in ``envs.hydro``.

    Args:
        path: the JSON file.

    Returns:
        The validated :class:`HydroSystem`.

    Raises:
        SystemDataError: the file is not valid JSON or a field is missing or wrong (the message names it).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise SystemDataError(f"{path}: not valid JSON ({error})") from error
    return system_from_dict(data)


def system_from_dict(data: dict[str, Any]) -> HydroSystem:
    """Build and validate a :class:`HydroSystem` from the dict form of the JSON file format."""
    if not isinstance(data, dict):
        raise SystemDataError("<root>: expected a JSON object")
    num_stages = _int(data, "num_stages", "num_stages", minimum=1)
    network = data.get("network", "dc")
    if network not in NETWORK_MODELS:
        raise SystemDataError(f"network: must be one of {NETWORK_MODELS}, got {network!r}")

    buses = data.get("buses")
    if not isinstance(buses, list) or not buses or not all(isinstance(b, str) for b in buses):
        raise SystemDataError("buses: expected a non-empty list of bus names")
    _unique(buses, "buses")
    bus_set = set(buses)

    lines = tuple(_line(entry, f"lines[{i}]", bus_set) for i, entry in enumerate(_list(data, "lines", default=[])))
    _unique([line.name for line in lines], "lines", key="name")
    thermals = tuple(_thermal(entry, f"thermals[{i}]", bus_set) for i, entry in enumerate(_list(data, "thermals")))
    _unique([unit.name for unit in thermals], "thermals", key="name")
    hydros = tuple(_hydro(entry, f"hydros[{i}]", bus_set) for i, entry in enumerate(_list(data, "hydros")))
    _unique([plant.name for plant in hydros], "hydros", key="name")
    _check_cascade(hydros)
    if network == "dc":
        _check_connected(buses, lines)

    deficit_cost = _number(data, "deficit_cost", "deficit_cost", minimum=0.0)
    max_factor = max([h.production_factor for h in hydros], default=1.0)
    default_penalty = 10.0 * deficit_cost * max(max_factor, 1.0)
    target_penalty = _number(data, "target_penalty", "target_penalty", minimum=0.0, default=default_penalty)

    demand = _demand(data.get("demand"), buses, num_stages)
    inflows = _inflows(data.get("inflows"), hydros, num_stages)
    return HydroSystem(
        name=str(data.get("name", "unnamed")),
        num_stages=num_stages,
        buses=tuple(buses),
        lines=lines,
        thermals=thermals,
        hydros=hydros,
        demand=demand,
        inflows=inflows,
        deficit_cost=deficit_cost,
        target_penalty=target_penalty,
        network=network,
    )


# ------------------------------------------------------------------------------------------ field helpers


def _list(data: dict, key: str, default: list | None = None) -> list:
    value = data.get(key, default)
    if not isinstance(value, list):
        raise SystemDataError(f"{key}: expected a list")
    return value


def _number(data: dict, key: str, where: str, *, minimum: float | None = None, default: float | None = None) -> float:
    if key not in data or data[key] is None:
        if default is not None:
            return float(default)
        raise SystemDataError(f"{where}: missing")
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SystemDataError(f"{where}: expected a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise SystemDataError(f"{where}: must be >= {minimum}, got {value}")
    return float(value)


def _int(data: dict, key: str, where: str, *, minimum: int) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SystemDataError(f"{where}: expected an integer >= {minimum}, got {value!r}")
    return value


def _name(entry: dict, where: str) -> str:
    value = entry.get("name")
    if not isinstance(value, str) or not value:
        raise SystemDataError(f"{where}.name: expected a non-empty string")
    return value


def _bus(entry: dict, key: str, where: str, buses: set[str]) -> str:
    value = entry.get(key)
    if value not in buses:
        raise SystemDataError(f"{where}.{key}: unknown bus {value!r}")
    return value


def _object(entry: Any, where: str) -> dict:
    if not isinstance(entry, dict):
        raise SystemDataError(f"{where}: expected an object")
    return entry


def _unique(names: list[str], where: str, key: str | None = None) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            field = f"{where}[{i}].{key}" if key else f"{where}[{i}]"
            raise SystemDataError(f"{field}: duplicate name {name!r}")
        seen.add(name)


def _line(entry: Any, where: str, buses: set[str]) -> Line:
    entry = _object(entry, where)
    line = Line(
        name=_name(entry, where),
        from_bus=_bus(entry, "from", where, buses),
        to_bus=_bus(entry, "to", where, buses),
        reactance=_number(entry, "reactance", f"{where}.reactance"),
        capacity=_number(entry, "capacity", f"{where}.capacity", minimum=0.0),
    )
    if line.reactance <= 0:
        raise SystemDataError(f"{where}.reactance: must be > 0, got {line.reactance}")
    if line.from_bus == line.to_bus:
        raise SystemDataError(f"{where}.to: same bus as 'from' ({line.to_bus!r})")
    return line


def _thermal(entry: Any, where: str, buses: set[str]) -> ThermalUnit:
    entry = _object(entry, where)
    return ThermalUnit(
        name=_name(entry, where),
        bus=_bus(entry, "bus", where, buses),
        capacity=_number(entry, "capacity", f"{where}.capacity", minimum=0.0),
        cost=_number(entry, "cost", f"{where}.cost", minimum=0.0),
    )


def _hydro(entry: Any, where: str, buses: set[str]) -> HydroPlant:
    entry = _object(entry, where)
    downstream = entry.get("downstream")
    if downstream is not None and not isinstance(downstream, str):
        raise SystemDataError(f"{where}.downstream: expected a plant name or null, got {downstream!r}")
    max_spill = entry.get("max_spill")
    plant = HydroPlant(
        name=_name(entry, where),
        bus=_bus(entry, "bus", where, buses),
        min_volume=_number(entry, "min_volume", f"{where}.min_volume", minimum=0.0),
        max_volume=_number(entry, "max_volume", f"{where}.max_volume", minimum=0.0),
        initial_volume=_number(entry, "initial_volume", f"{where}.initial_volume", minimum=0.0),
        max_turbine=_number(entry, "max_turbine", f"{where}.max_turbine", minimum=0.0),
        production_factor=_number(entry, "production_factor", f"{where}.production_factor", minimum=0.0),
        downstream=downstream,
        max_spill=None if max_spill is None else _number(entry, "max_spill", f"{where}.max_spill", minimum=0.0),
    )
    if plant.max_volume < plant.min_volume:
        raise SystemDataError(f"{where}.max_volume: {plant.max_volume} is below min_volume {plant.min_volume}")
    if not plant.min_volume <= plant.initial_volume <= plant.max_volume:
        raise SystemDataError(
            f"{where}.initial_volume: {plant.initial_volume} outside [{plant.min_volume}, {plant.max_volume}]"
        )
    if plant.downstream == plant.name:
        raise SystemDataError(f"{where}.downstream: a plant cannot flow into itself ({plant.name!r})")
    return plant


def _check_cascade(hydros: tuple[HydroPlant, ...]) -> None:
    names = {h.name: i for i, h in enumerate(hydros)}
    for i, plant in enumerate(hydros):
        if plant.downstream is not None and plant.downstream not in names:
            raise SystemDataError(f"hydros[{i}].downstream: unknown plant {plant.downstream!r}")
    for i, plant in enumerate(hydros):
        visited = [plant.name]
        current = plant
        while current.downstream is not None:
            if current.downstream in visited:
                chain = " -> ".join([*visited, current.downstream])
                raise SystemDataError(f"hydros[{i}].downstream: cascade cycle {chain}")
            visited.append(current.downstream)
            current = hydros[names[current.downstream]]


def _check_connected(buses: list[str], lines: tuple[Line, ...]) -> None:
    reached = {buses[0]}
    changed = True
    while changed:
        changed = False
        for line in lines:
            if (line.from_bus in reached) != (line.to_bus in reached):
                reached.update((line.from_bus, line.to_bus))
                changed = True
    missing = [b for b in buses if b not in reached]
    if missing:
        raise SystemDataError(
            f"lines: buses {missing} are not connected to {buses[0]!r} (add lines or set network 'single_bus')"
        )


def _series(values: Any, where: str, length: int) -> list[float]:
    if not isinstance(values, list):
        raise SystemDataError(f"{where}: expected a list of {length} numbers")
    if len(values) != length:
        raise SystemDataError(f"{where}: expected {length} values (one per stage), got {len(values)}")
    for k, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise SystemDataError(f"{where}[{k}]: expected a finite number >= 0, got {value!r}")
    return [float(v) for v in values]


def _demand(demand: Any, buses: list[str], num_stages: int) -> np.ndarray:
    if not isinstance(demand, dict):
        raise SystemDataError("demand: expected an object mapping bus name to a list of per-stage MW")
    out = np.zeros((num_stages, len(buses)))
    for bus, series in demand.items():
        if bus not in buses:
            raise SystemDataError(f"demand.{bus}: unknown bus {bus!r}")
        out[:, buses.index(bus)] = _series(series, f"demand.{bus}", num_stages)
    return out


def _inflows(inflows: Any, hydros: tuple[HydroPlant, ...], num_stages: int) -> np.ndarray:
    if not isinstance(inflows, dict):
        raise SystemDataError("inflows: expected an object mapping plant name to a list of scenarios")
    names = [h.name for h in hydros]
    for name in inflows:
        if name not in names:
            raise SystemDataError(f"inflows.{name}: unknown plant {name!r}")
    num_scenarios = None
    out = []
    for name in names:
        scenarios = inflows.get(name)
        if not isinstance(scenarios, list) or not scenarios:
            raise SystemDataError(f"inflows.{name}: expected a non-empty list of scenarios (lists of per-stage values)")
        if num_scenarios is None:
            num_scenarios = len(scenarios)
        elif len(scenarios) != num_scenarios:
            raise SystemDataError(f"inflows.{name}: {len(scenarios)} scenarios, but {names[0]!r} has {num_scenarios}")
        out.append([_series(s, f"inflows.{name}[{k}]", num_stages) for k, s in enumerate(scenarios)])
    if not names:
        return np.zeros((1, num_stages, 0))
    return np.transpose(np.asarray(out, dtype=float), (1, 2, 0))
