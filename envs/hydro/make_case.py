"""Seeded generator of the synthetic "bolivia-like" hydrothermal case (``envs/hydro/cases/bolivia_like.json``).

TS-DDR's realistic case is Bolivia (28 buses, 34 generators of which 11 hydro plants, 96 monthly stages; data
from HydroPowerModels in LearningToOptimize/DecisionRules.jl). Its data are not redistributed here; this
module writes a synthetic system of the same size and shape in the file format of ``envs.hydro``::

    python -m envs.hydro.make_case --out envs/hydro/cases/bolivia_like.json --seed 0
    python -m envs.hydro.make_case --out small.json --seed 1 --stages 24 --scenarios 10   # a small variant

or from Python ``generate_case(seed=0)`` (a dict for ``system_from_dict``) and ``write_case(path, ...)``. More
scenarios of a case's inflow model, none of them the file's (out-of-sample evaluation): ``sample_inflows(count,
seed)`` (the model itself: ``inflow_model(case_seed)``).

Units (those of the file format): water in hm3 per monthly stage, power in MW averaged over the month, and
costs in $/MWh, so that a stage's cost in the file's units is its dollar cost divided by the 730 hours of
a month.

Deliberate choices of synthetic data (all random draws come from ``numpy.random.default_rng(seed)`` in a
fixed order, so a seed gives a byte-identical file):

- Stages: ``num_stages`` months (96 = 8 years), the first one a January.
- Buses: 28 buses at uniform random positions in a 1000 km x 800 km region; the first is the angle
  reference.
- Network: a connected meshed DC network: the Euclidean minimum spanning tree plus the shortest
  non-tree links until there are ``round(1.4 x (buses - 1))`` lines (38 for 28 buses: Bolivia's 31
  branches plus meshing). Reactance 0.05 per 100 km. Capacities come from a reference dispatch (hydro at
  its mean output, thermal units filling the rest in merit order) whose DC flows are computed with numpy:
  capacity = max(60 MW, u x the largest reference flow of the line over all stages), u ~ U(0.8, 1.5), so
  some lines bind and the others carry headroom; then each bus's lines are raised together until they can
  carry 1.5 x the bus's peak load (line limits alone never cut a load off, so deficits come from water and
  thermal capacity, not from the topology). Rounded up to 10 MW. In perfect-foresight dispatch of the
  shipped case 4-8 % of line-stages sit at their limit, on 4-10 of the 38 lines.
- Demand: 1300 MW system average in the first year (Bolivia's order of magnitude), growing 2.5 % a year,
  with a +-6 % seasonal cycle peaking in October (the hot season). It sits on the 10 buses nearest to
  three "city" points: the cities take 35 %, 25 % and 15 % of the total, split between their buses by
  random weights; the remaining 25 % is spread over the other load buses. Deterministic across scenarios.
- Thermal units: 23 (Bolivia has 34 generators less 11 hydro), a merit order of four technologies:
  8 combined-cycle gas (70-160 MW, 20-40 $/MWh), 7 open-cycle gas (40-110 MW, 55-110 $/MWh), 5 diesel /
  fuel-oil (20-60 MW, 150-320 $/MWh) and 3 rented emergency units (15-40 MW, 400-600 $/MWh). Capacities
  are rescaled so that the fleet totals 63 % of the last year's peak demand (about 1030 MW): the thermal
  fleet alone cannot serve the load, so hydro storage matters, and in perfect-foresight dispatch dry
  spells late in the horizon cause some deficit while most scenarios have none (the share was tuned for
  that: at 62 % every scenario has a structural peak deficit, at 64 % almost none has any). Gas units sit
  near the cities, the others at random buses.
- Deficit cost: 1500 $/MWh, at least 2.5 x the dearest thermal unit (the paper's data also price deficit far above
  thermal generation).
- Hydro plants: 11 in three cascades (downstream arrows): A1 -> A2 -> A3 -> A4 with A5 -> A3 (5 plants),
  B1 -> B2 -> B4 with B3 -> B4 (4 plants), C1 -> C2 (2 plants). Each cascade sits on the buses nearest to
  its own region point, away from the cities, so hydro energy crosses the network.
  Head plants (A1, A5, B1, B3, C1) have regulating reservoirs holding 5-10 months of their mean inflow,
  dead storage (min volume) 10-20 % of the maximum; downstream plants are run-of-river-like with 0.3-1.5
  months of storage and 30-50 % minimum. Initial volume = min + 55 % of the useful range.
  Production factors from a head of 80-700 m: 0.0029 MW per hm3/month per metre of head (0.38 m3/s per
  hm3/month, 9.81 kW per m3/s per m, 90 % efficiency). Turbine limits are 1.6-2.2 x the plant's mean total
  (own plus upstream) inflow so storage can be drawn in the dry season. Spill is unbounded, there is no
  minimum outflow, and every plant can keep its water: a stage LP is feasible from any volumes within
  [min, max] for any non-negative inflow (deficit variables absorb any shortage), so no scenario is
  infeasible; ``generate_case`` checks that initial volumes lie in [min, max].
  Mean natural inflows are scaled so that turbining all the mean water yields 45 % of the first year's
  average demand (Bolivia's hydro share is about a third; a larger share makes storage the problem).
- Inflows: ``mean[p] x season[cascade, month] x exp(sigma z - sigma^2 / 2)``: a wet season peaking in
  February (southern hemisphere), ``season = 1 + a cos(2 pi (month - 1.5) / 12)`` with amplitude a =
  0.75, 0.7 and 0.85 for cascades A, B and C (normalised to mean 1); lognormal noise with sigma
  (0.45 for the shipped case) around a mean-preserving log-mean; ``z`` is a stationary lag-1
  autoregression per plant, ``z_t = 0.85 z_(t-1) + sqrt(1 - 0.85^2) e_t`` (strong monthly persistence, as
  in large basins, so that dry spells last several months), with ``e_t`` correlated 0.8 across plants of one cascade and
  0.4 across cascades. 200 scenarios by default. The file's description names the first 160 for training
  and the last 40 held out, but TS-DDR, SDDP and their benchmark split with
  ``algos.hydro_common.split_scenarios`` (the last 25 %: 150 training, 50 held out); the description is kept
  as written so that the shipped file, and the runs made on it, stay the same.
- Target penalty: 2 x deficit cost x the largest sum of production factors down a cascade path, i.e. above
  the largest possible value of one hm3 of water, so a policy's target is honoured whenever it is feasible.
- Numbers are rounded to 2 decimals (the file stays under 3 MB with 200 scenarios).
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

STAGE_HOURS = 730.0
"""Hours in a monthly stage; costs in the file are $/MWh, i.e. $ per stage divided by this."""
NUM_BUSES = 28
BASE_DEMAND_MW = 1300.0
DEMAND_GROWTH = 0.025
DEMAND_SEASONAL_AMPLITUDE = 0.06
DEMAND_PEAK_MONTH = 9  # October, 0-based
CITY_SHARES = (0.35, 0.25, 0.15)
THERMAL_FLEET_SHARE = 0.63
"""Thermal capacity as a share of the last year's peak demand."""
HYDRO_ENERGY_SHARE = 0.45
"""Mean hydro energy as a share of the first year's average demand."""
DEFICIT_COST = 1500.0
INFLOW_SIGMA = 0.45
INFLOW_RHO = 0.85
INFLOW_CORRELATION_WITHIN = 0.8
INFLOW_CORRELATION_ACROSS = 0.4
INFLOW_PEAK_MONTH = 1.5  # mid February, 0-based
MW_PER_HM3_MONTH_PER_METRE = 0.0029
NUM_SCENARIOS = 200
NUM_STAGES = 96
HELD_OUT = 40

# (technology, number of units, capacity range MW, cost range $/MWh, sits near a city)
THERMAL_TECHNOLOGIES = (
    ("CC", 8, (70.0, 160.0), (20.0, 40.0), True),
    ("OCGT", 7, (40.0, 110.0), (55.0, 110.0), True),
    ("DSL", 5, (20.0, 60.0), (150.0, 320.0), False),
    ("EMG", 3, (15.0, 40.0), (400.0, 600.0), False),
)

# name, cascade, downstream, is a head (storage) plant
HYDRO_LAYOUT = (
    ("A1", 0, "A2", True),
    ("A2", 0, "A3", False),
    ("A3", 0, "A4", False),
    ("A4", 0, None, False),
    ("A5", 0, "A3", True),
    ("B1", 1, "B2", True),
    ("B2", 1, "B4", False),
    ("B3", 1, "B4", True),
    ("B4", 1, None, False),
    ("C1", 2, "C2", True),
    ("C2", 2, None, False),
)
CASCADE_SEASONAL_AMPLITUDE = (0.75, 0.7, 0.85)


@dataclass(frozen=True)
class InflowModel:
    """The inflow process of a generated case: ``mean[p] x season[month, p] x exp(sigma z - sigma^2 / 2)``.

    ``z`` is a stationary AR(1) per plant, ``z_t = rho z_(t-1) + sqrt(1 - rho^2) e_t`` with ``z_0 = e_0``, and the
    shocks ``e_t`` are standard normal vectors correlated across plants through ``cholesky`` (``e = cholesky @
    standard normal``). :func:`generate_case` draws its scenarios with :meth:`sample`; :func:`inflow_model` gives
    the model of a seed's case, so that more scenarios can be drawn from it (:func:`sample_inflows`).
    """

    mean: np.ndarray
    """Mean natural (incremental) inflow per plant, hm3 per month, shape ``(n,)``."""
    season: np.ndarray
    """Seasonal factor per calendar month (January first) and plant, shape ``(12, n)``, mean 1 per plant."""
    cholesky: np.ndarray
    """Lower Cholesky factor of the shocks' correlation across plants, shape ``(n, n)``."""
    num_stages: int
    """Monthly stages, the first a January."""
    sigma: float = INFLOW_SIGMA
    rho: float = INFLOW_RHO

    def sample(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """``count`` scenarios ``(count, num_stages, n)``, unrounded, from ``rng``'s next standard normals."""
        num_hydros = len(self.mean)
        shocks = rng.standard_normal((count, self.num_stages, num_hydros)) @ self.cholesky.T
        z = np.empty_like(shocks)
        z[:, 0] = shocks[:, 0]
        innovation = np.sqrt(1.0 - self.rho**2)
        for t in range(1, self.num_stages):
            z[:, t] = self.rho * z[:, t - 1] + innovation * shocks[:, t]
        noise = np.exp(self.sigma * z - self.sigma**2 / 2)
        months = np.arange(self.num_stages) % 12
        return self.mean[None, None, :] * self.season[months][None, :, :] * noise


def generate_case(seed: int = 0, *, num_stages: int = NUM_STAGES, num_scenarios: int = NUM_SCENARIOS) -> dict[str, Any]:
    """The bolivia-like system as a dict in the JSON file format (see the module docstring for every choice).

    Args:
        seed: seed of ``numpy.random.default_rng``; the same seed gives the same case.
        num_stages: monthly stages (96 for the shipped case).
        num_scenarios: inflow scenarios (200 for the shipped case).

    Raises:
        ValueError: ``num_stages`` or ``num_scenarios`` is below 1.
    """
    return _generate(seed, num_stages=num_stages, num_scenarios=num_scenarios)[0]


def inflow_model(seed: int = 0, *, num_stages: int = NUM_STAGES) -> InflowModel:
    """The inflow model of the case :func:`generate_case` makes with ``seed`` and ``num_stages``.

    Every random draw that sets the model's parameters comes before the scenarios' draws, so the model does not
    depend on the number of scenarios: it is the one the case's own scenarios were drawn from.
    """
    return _generate(seed, num_stages=num_stages, num_scenarios=1)[1]


def sample_inflows(count: int, seed: int, *, case_seed: int = 0, num_stages: int = NUM_STAGES) -> np.ndarray:
    """``count`` new scenarios ``(count, num_stages, n)`` of the ``case_seed`` case's inflow model, drawn with
    ``numpy.random.default_rng(seed)`` and rounded to 2 decimals as the case file's.

    Out-of-sample scenarios for a generated case: the same process as its own scenarios (seasonal, correlated,
    persistent), drawn from a stream of their own, so none of them is one of the file's.

    Raises:
        ValueError: ``count`` is below 1.
    """
    if count < 1:
        raise ValueError(f"count: expected >= 1, got {count}")
    return np.round(inflow_model(case_seed, num_stages=num_stages).sample(count, np.random.default_rng(seed)), 2)


def _generate(seed: int, *, num_stages: int, num_scenarios: int) -> tuple[dict[str, Any], InflowModel]:
    """:func:`generate_case`'s case and the inflow model its scenarios were drawn from."""
    if num_stages < 1:
        raise ValueError(f"num_stages: expected >= 1, got {num_stages}")
    if num_scenarios < 1:
        raise ValueError(f"num_scenarios: expected >= 1, got {num_scenarios}")
    rng = np.random.default_rng(seed)
    months = np.arange(num_stages) % 12
    years = np.arange(num_stages) // 12

    # ---- buses and the places that decide where load and generation sit
    positions = rng.uniform([0.0, 0.0], [1000.0, 800.0], size=(NUM_BUSES, 2))
    buses = [f"B{i + 1:02d}" for i in range(NUM_BUSES)]
    cities = np.array([[500.0, 400.0], [250.0, 250.0], [750.0, 200.0]]) + rng.normal(0.0, 40.0, size=(3, 2))
    regions = np.array([[250.0, 700.0], [150.0, 450.0], [800.0, 650.0]]) + rng.normal(0.0, 40.0, size=(3, 2))

    # ---- demand: MW per stage and bus
    level = BASE_DEMAND_MW * (1.0 + DEMAND_GROWTH) ** years
    level = level * (1.0 + DEMAND_SEASONAL_AMPLITUDE * np.cos(2 * np.pi * (months - DEMAND_PEAK_MONTH) / 12))
    shares = np.zeros(NUM_BUSES)
    taken: set[int] = set()
    for city, share in zip(cities, CITY_SHARES):
        nearest = [i for i in np.argsort(np.linalg.norm(positions - city, axis=1)) if i not in taken][:2]
        weights = rng.uniform(0.5, 1.5, size=len(nearest))
        shares[nearest] += share * weights / weights.sum()
        taken.update(nearest)
    others = [i for i in np.argsort(np.linalg.norm(positions - cities[0], axis=1)) if i not in taken][:4]
    weights = rng.uniform(0.5, 1.5, size=len(others))
    shares[others] += (1.0 - sum(CITY_SHARES)) * weights / weights.sum()
    demand = level[:, None] * shares[None, :]

    # ---- thermal units in merit order
    thermal_rows = []
    for tech, count, (cap_lo, cap_hi), (cost_lo, cost_hi), near_city in THERMAL_TECHNOLOGIES:
        for k in range(count):
            if near_city:
                city = cities[k % len(cities)]
                bus = int(np.argsort(np.linalg.norm(positions - city, axis=1))[rng.integers(0, 3)])
            else:
                bus = int(rng.integers(0, NUM_BUSES))
            thermal_rows.append((f"{tech}{k + 1}", bus, rng.uniform(cap_lo, cap_hi), rng.uniform(cost_lo, cost_hi)))
    last_year_peak = level[-12:].max() if num_stages >= 12 else level.max()
    scale = THERMAL_FLEET_SHARE * last_year_peak / sum(row[2] for row in thermal_rows)
    thermal_rows = [(name, bus, cap * scale, cost) for name, bus, cap, cost in thermal_rows]

    # ---- hydro plants
    num_hydros = len(HYDRO_LAYOUT)
    names = [row[0] for row in HYDRO_LAYOUT]
    cascade = np.array([row[1] for row in HYDRO_LAYOUT])
    head_plant = np.array([row[3] for row in HYDRO_LAYOUT])
    hydro_bus = []
    for p in range(num_hydros):
        nearest = np.argsort(np.linalg.norm(positions - regions[cascade[p]], axis=1))[:3]
        hydro_bus.append(int(nearest[rng.integers(0, 3)]))
    head_m = rng.uniform(80.0, 700.0, size=num_hydros)
    factor = MW_PER_HM3_MONTH_PER_METRE * head_m
    incremental = rng.uniform(20.0, 120.0, size=num_hydros) * np.where(head_plant, 2.0, 0.6)
    downstream = [names.index(row[2]) if row[2] else None for row in HYDRO_LAYOUT]
    total_inflow = incremental.copy()  # own plus everything upstream
    for p in range(num_hydros):
        q = downstream[p]
        while q is not None:
            total_inflow[q] += incremental[p]
            q = downstream[q]
    energy_scale = HYDRO_ENERGY_SHARE * BASE_DEMAND_MW / float(factor @ total_inflow)
    incremental *= energy_scale
    total_inflow *= energy_scale
    storage_months = np.where(head_plant, rng.uniform(5.0, 10.0, num_hydros), rng.uniform(0.3, 1.5, num_hydros))
    max_volume = storage_months * total_inflow
    min_volume = max_volume * np.where(
        head_plant, rng.uniform(0.10, 0.20, num_hydros), rng.uniform(0.30, 0.50, num_hydros)
    )
    max_volume, min_volume = np.round(max_volume, 2), np.round(min_volume, 2)
    initial_volume = np.round(min_volume + 0.55 * (max_volume - min_volume), 2)
    if np.any(initial_volume < min_volume) or np.any(initial_volume > max_volume):
        raise AssertionError("generated initial volumes outside [min_volume, max_volume]")
    max_turbine = rng.uniform(1.6, 2.2, size=num_hydros) * total_inflow

    # ---- inflow scenarios: seasonal mean x lognormal AR(1) noise, correlated within and across cascades
    amplitude = np.array(CASCADE_SEASONAL_AMPLITUDE)[cascade]
    season = 1.0 + amplitude[None, :] * np.cos(2 * np.pi * (np.arange(12)[:, None] - INFLOW_PEAK_MONTH) / 12)
    season /= season.mean(axis=0, keepdims=True)
    correlation = np.where(cascade[:, None] == cascade[None, :], INFLOW_CORRELATION_WITHIN, INFLOW_CORRELATION_ACROSS)
    np.fill_diagonal(correlation, 1.0)
    model = InflowModel(mean=incremental.copy(), season=season, cholesky=np.linalg.cholesky(correlation),
                        num_stages=num_stages)
    inflows = model.sample(num_scenarios, rng)

    # ---- network: minimum spanning tree + shortest extra links; capacities from a reference dispatch
    lines = _mesh(positions)
    reactance = np.maximum(
        np.round([0.05 * np.linalg.norm(positions[a] - positions[b]) / 100 for a, b in lines], 4), 0.005
    )
    reference = _reference_flows(
        demand=demand,
        hydro_bus=hydro_bus,
        hydro_mw=factor * total_inflow,
        thermal_rows=thermal_rows,
        lines=lines,
        reactance=reactance,
    )
    headroom = rng.uniform(0.8, 1.5, size=len(lines))
    capacity = np.maximum(60.0, headroom * reference)
    for i in range(NUM_BUSES):  # no bus is cut off by line limits: its lines can carry 1.5 x its peak load
        touching = [k for k, (a, b) in enumerate(lines) if i in (a, b)]
        shortfall = 1.5 * demand[:, i].max() - capacity[touching].sum()
        if shortfall > 0:
            capacity[touching] += shortfall / len(touching)
    capacity = np.ceil(capacity / 10.0) * 10.0

    cumulative_factor = factor.copy()
    for p in range(num_hydros):
        q = downstream[p]
        while q is not None:
            cumulative_factor[p] += factor[q]
            q = downstream[q]
    target_penalty = 2.0 * DEFICIT_COST * float(cumulative_factor.max())

    split = (
        f"by convention 0-{num_scenarios - HELD_OUT - 1} for training, the last {HELD_OUT} held out"
        if num_scenarios > HELD_OUT
        else "too few to hold any out"
    )
    case = {
        "name": "bolivia-like",
        "description": (
            f"Synthetic bolivia-like case from envs.hydro.make_case (seed {seed}): {NUM_BUSES} buses, "
            f"{len(lines)} lines, {len(thermal_rows)} thermal units, {num_hydros} hydro plants in 3 cascades, "
            f"{num_stages} monthly stages starting in January, {num_scenarios} inflow scenarios ({split}). "
            "Water in hm3 per month, power in MW averaged over the month, costs in $/MWh (= $ per stage / 730 h)."
        ),
        "num_stages": num_stages,
        "network": "dc",
        "deficit_cost": DEFICIT_COST,
        "target_penalty": round(target_penalty, 2),
        "buses": buses,
        "lines": [
            {
                "name": f"L{k + 1:02d}",
                "from": buses[a],
                "to": buses[b],
                "reactance": float(reactance[k]),
                "capacity": float(capacity[k]),
            }
            for k, (a, b) in enumerate(lines)
        ],
        "thermals": [
            {"name": name, "bus": buses[bus], "capacity": round(float(cap), 2), "cost": round(float(cost), 2)}
            for name, bus, cap, cost in thermal_rows
        ],
        "hydros": [
            {
                "name": names[p],
                "bus": buses[hydro_bus[p]],
                "min_volume": float(min_volume[p]),
                "max_volume": float(max_volume[p]),
                "initial_volume": float(initial_volume[p]),
                "max_turbine": round(float(max_turbine[p]), 2),
                "production_factor": round(float(factor[p]), 4),
                "downstream": HYDRO_LAYOUT[p][2],
                "max_spill": None,
            }
            for p in range(num_hydros)
        ],
        "demand": {buses[i]: np.round(demand[:, i], 2).tolist() for i in range(NUM_BUSES) if shares[i] > 0},
        "inflows": {names[p]: np.round(inflows[:, :, p], 2).tolist() for p in range(num_hydros)},
    }
    return case, model


def _mesh(positions: np.ndarray) -> list[tuple[int, int]]:
    """Euclidean minimum spanning tree (Prim) plus the shortest other links up to 1.4 x (n - 1) lines."""
    n = len(positions)
    dist = np.linalg.norm(positions[:, None] - positions[None, :], axis=2)
    in_tree = [0]
    edges: list[tuple[int, int]] = []
    while len(in_tree) < n:
        outside = [j for j in range(n) if j not in in_tree]
        sub = dist[np.ix_(in_tree, outside)]
        a, b = np.unravel_index(np.argmin(sub), sub.shape)
        edges.append((min(in_tree[a], outside[b]), max(in_tree[a], outside[b])))
        in_tree.append(outside[b])
    wanted = int(round(1.4 * (n - 1)))
    candidates = sorted((dist[a, b], a, b) for a in range(n) for b in range(a + 1, n))
    for _, a, b in candidates:
        if len(edges) >= wanted:
            break
        if (a, b) not in edges:
            edges.append((a, b))
    return edges


def _reference_flows(
    *,
    demand: np.ndarray,
    hydro_bus: list[int],
    hydro_mw: np.ndarray,
    thermal_rows: list[tuple[str, int, float, float]],
    lines: list[tuple[int, int]],
    reactance: np.ndarray,
) -> np.ndarray:
    """Largest |DC flow| per line over the given stages when hydro runs at its mean and thermal units fill
    the rest in merit order (each loaded unit at the same fraction), with bus 0 as the angle reference."""
    n = demand.shape[1]
    incidence = np.zeros((len(lines), n))
    for k, (a, b) in enumerate(lines):
        incidence[k, a], incidence[k, b] = 1.0, -1.0
    susceptance = incidence.T @ np.diag(1.0 / reactance) @ incidence
    ptdf = np.zeros((len(lines), n))
    ptdf[:, 1:] = np.diag(1.0 / reactance) @ incidence[:, 1:] @ np.linalg.inv(susceptance[1:, 1:])
    order = sorted(range(len(thermal_rows)), key=lambda u: thermal_rows[u][3])
    worst = np.zeros(len(lines))
    for load in demand:
        injection = -load.copy()
        np.add.at(injection, hydro_bus, hydro_mw)
        residual = load.sum() - hydro_mw.sum()
        for u in order:
            if residual <= 0:
                break
            output = min(thermal_rows[u][2], residual)
            injection[thermal_rows[u][1]] += output
            residual -= output
        injection[0] -= injection.sum()  # any imbalance (deficit or surplus) at the reference bus
        worst = np.maximum(worst, np.abs(ptdf @ injection))
    return worst


def to_json(case: dict[str, Any]) -> str:
    """The case as JSON text: indented objects, each list of numbers (a demand or inflow series) on one line."""
    text = json.dumps(case, indent=2)
    number_list = re.compile(r"\[\s*(-?[\d.eE+-]+(?:,\s*-?[\d.eE+-]+)*)\s*\]")
    return number_list.sub(lambda m: "[" + ", ".join(part.strip() for part in m.group(1).split(",")) + "]", text) + "\n"


def write_case(
    path: str | Path, seed: int = 0, *, num_stages: int = NUM_STAGES, num_scenarios: int = NUM_SCENARIOS
) -> Path:
    """Generate the case and write it to ``path`` (parent directories are created). Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_json(generate_case(seed, num_stages=num_stages, num_scenarios=num_scenarios)))
    return path


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m envs.hydro.make_case --out FILE [--seed S] [--stages T] [--scenarios K]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stages", type=int, default=NUM_STAGES, help="monthly stages (default 96)")
    parser.add_argument("--scenarios", type=int, default=NUM_SCENARIOS, help="inflow scenarios (default 200)")
    args = parser.parse_args(argv)
    path = write_case(args.out, args.seed, num_stages=args.stages, num_scenarios=args.scenarios)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
