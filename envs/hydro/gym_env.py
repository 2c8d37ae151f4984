"""Long-term hydrothermal dispatch as a Gymnasium env: the action is the target end volumes of a stage.

The MDP of TS-DDR (Rosemberg et al., 2024) seen step by step: one episode is one inflow scenario of the case
over its ``num_stages`` stages. At stage ``t`` the agent sees the reservoir volumes, the stage's inflow
(revealed before the decision, as in the paper) and the previous inflows, and picks target end volumes; the
stage LP (``envs.hydro.lp.solve_stage``) dispatches hydro, thermal units and deficit to meet demand while the
end volumes try to meet the target through a slack-penalised constraint. The reward is minus the stage's
operating cost plus target penalty, so the constraint "end volume = target" is soft (a constrained MDP
whose violations are priced by ``target_penalty`` and reported in ``info``).

Registered ids (``import envs``): ``HydroDispatch-Toy-v0`` (the 3-bus toy case) and
``HydroDispatch-BoliviaLike-v0`` (the synthetic 28-bus / 11-hydro / 96-stage case of
``envs.hydro.make_case``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.hydro.lp import StageSolution, solve_stage
from envs.hydro.system import HydroSystem, case_path, load_system


class HydroDispatchEnv(gym.Env):
    """Stage-by-stage hydrothermal dispatch where the action sets target end volumes.

    Observation (float32 ``Box``), in this order:

    - volumes at the start of the stage, normalised ``(v - min_volume) / (max_volume - min_volume)`` to [0, 1]
      (a plant with ``max_volume == min_volume`` shows 0);
    - the current stage's inflow, then the ``history`` previous stages' inflows (most recent first), each
      divided by the plant's mean inflow over the *training* scenarios ``scenarios``
      (:meth:`~envs.hydro.system.HydroSystem.inflow_scale`), so they are O(1) and held-out scenarios change
      nothing an agent sees while it trains; stages before the first (and the "current" inflow of the terminal
      observation, after stage T) are padded with 1.0 (the mean: no information); their upper bound is the
      largest scaled inflow over all the case's scenarios, as ``reset`` may start any of them (the bound only
      delimits the space: nothing is scaled or clipped by it);
    - ``sin`` and ``cos`` of ``2 pi month / 12`` with ``month = t mod 12``, and ``t / T``.

    Action: ``Box(-1, 1, (n_hydro,))``; ``a`` maps linearly to the target end volumes
    ``min_volume + (a + 1) / 2 x (max_volume - min_volume)`` (actions outside [-1, 1] are clipped first).

    Reward: ``-(operating_cost + penalty_cost) / reward_scale`` of the stage LP. ``reward_scale`` defaults to
    the mean total demand times the dearest thermal unit's cost (the cost of a stage served entirely by that
    unit), so a stage costs O(1) unless it sheds load or misses its target by much.

    Termination: ``terminated=True`` after the last stage, never ``truncated``. The problem is a finite-horizon
    MDP whose stage index is part of the observation: the episode ends because the horizon does, and nothing
    is owed after stage T (no terminal water value, like the paper's horizon), so value-based and actor-critic
    learners must not bootstrap past it, which is what ``terminated`` tells them; truncation would mean "cut
    short, the future still counts".

    ``info`` of ``step``: ``operating_cost`` and ``penalty_cost`` (unscaled, in the case's cost units),
    ``volumes`` (end volumes), ``target``, ``target_slack`` (end volume - target), ``violation`` (bool: some
    plant missed its target, :meth:`~envs.hydro.system.HydroSystem.target_violations`, the definition TS-DDR
    and the benchmark use), ``deficit`` (total MW shed), ``stage`` and ``scenario``. ``reset``'s ``info`` has
    ``scenario``.

    :param case: a :class:`HydroSystem`, a shipped case name (``"toy"``, ``"bolivia-like"``) or a JSON path.
    :param single_bus: override the case's network model (True: one bus, lines ignored; None: the case's).
    :param scenarios: the training scenarios: the indices ``reset`` samples from (uniformly, with the env's
        RNG) and the inflow scale is computed from; default all. ``reset(options={"scenario": k})`` picks any
        valid index, in the subset or not (for held-out evaluation).
    :param history: how many previous stages' inflows the observation carries (>= 0).
    :param reward_scale: divide costs by this to get rewards; None for the default above.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        case: str | Path | HydroSystem = "toy",
        *,
        single_bus: bool | None = None,
        scenarios: Sequence[int] | None = None,
        history: int = 1,
        reward_scale: float | None = None,
    ) -> None:
        if isinstance(case, HydroSystem):
            self.system = case
        elif isinstance(case, str | Path):
            self.system = load_system(case_path(case))
        else:
            raise TypeError(f"case: expected a case name, a path or a HydroSystem, got {type(case).__name__}")
        system = self.system
        if not system.hydros:
            raise ValueError("case: the system has no hydro plants, so there is no target volume to act on")
        if isinstance(history, bool) or not isinstance(history, int | np.integer) or history < 0:
            raise ValueError(f"history: expected an integer >= 0, got {history!r}")
        self.history = int(history)
        self.single_bus = single_bus
        if scenarios is None:
            self.scenarios = np.arange(system.num_scenarios)
        else:
            self.scenarios = np.asarray(list(scenarios), dtype=int)
            if self.scenarios.size == 0:
                raise ValueError("scenarios: expected at least one scenario index")
            bad = self.scenarios[(self.scenarios < 0) | (self.scenarios >= system.num_scenarios)]
            if bad.size:
                raise ValueError(
                    f"scenarios: indices {bad.tolist()} outside 0..{system.num_scenarios - 1} "
                    f"(the case has {system.num_scenarios} scenarios)"
                )
        if reward_scale is None:
            max_cost = max([u.cost for u in system.thermals], default=system.deficit_cost)
            reward_scale = float(system.demand.sum(axis=1).mean()) * max_cost
        if not np.isfinite(reward_scale) or reward_scale <= 0:
            raise ValueError(f"reward_scale: expected a finite number > 0, got {reward_scale!r}")
        self.reward_scale = float(reward_scale)

        self._min = np.array([h.min_volume for h in system.hydros])
        self._max = np.array([h.max_volume for h in system.hydros])
        self._range = system.volume_ranges
        self._inflow_scale = system.inflow_scale(self.scenarios)

        n, k = len(system.hydros), 1 + self.history
        # inflow bounds: the largest scaled inflow of any scenario reset can start (or the 1.0 padding)
        inflow_high = np.maximum(1.0, (system.inflows / self._inflow_scale).max(axis=(0, 1)))
        low = np.concatenate([np.zeros(n), np.zeros(n * k), [-1.0, -1.0, 0.0]]).astype(np.float32)
        high = np.concatenate([np.ones(n), np.tile(inflow_high, k), [1.0, 1.0, 1.0]]).astype(np.float32)
        self.observation_space = spaces.Box(low, high, dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(n,), dtype=np.float32)

        self._stage = 0
        self._scenario = int(self.scenarios[0])
        self._volumes = system.initial_volumes

    # ------------------------------------------------------------------------------------------ helpers

    def action_to_target(self, action: np.ndarray) -> np.ndarray:
        """Target end volumes for an action in [-1, 1]^n (clipped), ``min + (a + 1) / 2 x (max - min)``."""
        action = np.asarray(action, dtype=float).reshape(-1)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action: expected shape {self.action_space.shape}, got {action.shape}")
        if not np.all(np.isfinite(action)):
            raise ValueError(f"action: expected finite values, got {action.tolist()}")
        return self._min + (np.clip(action, -1.0, 1.0) + 1.0) / 2.0 * self._range

    def target_to_action(self, target: np.ndarray) -> np.ndarray:
        """The action whose target is ``target`` (inverse of :meth:`action_to_target`; 0 for a zero range).

        Float64, so that the round trip is exact up to rounding (float32 would move the target by ~1e-7 of
        the range).
        """
        target = np.asarray(target, dtype=float)
        scaled = np.divide(target - self._min, self._range, out=np.full_like(target, 0.5), where=self._range > 0)
        return 2.0 * scaled - 1.0

    def _observation(self) -> np.ndarray:
        system, t = self.system, self._stage
        volumes = np.divide(
            self._volumes - self._min, self._range, out=np.zeros_like(self._volumes), where=self._range > 0
        )
        inflows = system.inflows[self._scenario]
        past = []
        for lag in range(1 + self.history):
            stage = t - lag
            past.append(
                inflows[stage] / self._inflow_scale if 0 <= stage < system.num_stages else np.ones(len(system.hydros))
            )
        month = 2.0 * np.pi * (t % 12) / 12.0
        clock = [np.sin(month), np.cos(month), t / system.num_stages]
        return np.concatenate([np.clip(volumes, 0.0, 1.0), *past, clock]).astype(np.float32)

    # ---------------------------------------------------------------------------------------------- API

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Start a scenario at stage 0 from the case's initial volumes.

        ``options={"scenario": k}`` fixes the scenario (any index of the case); otherwise one of ``scenarios``
        is drawn with the env's RNG.
        """
        super().reset(seed=seed)
        options = options or {}
        unknown = set(options) - {"scenario"}
        if unknown:
            raise ValueError(f"options: unknown keys {sorted(unknown)} (only 'scenario' is accepted)")
        if options.get("scenario") is not None:
            scenario = options["scenario"]
            if isinstance(scenario, bool) or not isinstance(scenario, int | np.integer):
                raise ValueError(f"options['scenario']: expected an integer, got {scenario!r}")
            if not 0 <= scenario < self.system.num_scenarios:
                raise ValueError(
                    f"options['scenario']: expected 0 <= scenario < {self.system.num_scenarios}, got {scenario}"
                )
            self._scenario = int(scenario)
        else:
            self._scenario = int(self.np_random.choice(self.scenarios))
        self._stage = 0
        self._volumes = self.system.initial_volumes
        return self._observation(), {"scenario": self._scenario}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Solve the current stage's LP with the action's targets and move to the next stage."""
        if self._stage >= self.system.num_stages:
            raise RuntimeError("step called after the episode terminated; call reset first")
        target = self.action_to_target(action)
        solution: StageSolution = solve_stage(
            self.system,
            self._stage,
            volumes_in=self._volumes,
            inflow=self.system.inflows[self._scenario, self._stage],
            target=target,
            single_bus=self.single_bus,
        )
        cost = solution.operating_cost + solution.penalty_cost
        info = {
            "operating_cost": solution.operating_cost,
            "penalty_cost": solution.penalty_cost,
            "volumes": solution.volumes.copy(),
            "target": target,
            "target_slack": solution.target_slack.copy(),
            "violation": bool(np.any(self.system.target_violations(solution.target_slack))),
            "deficit": float(solution.deficit.sum()),
            "stage": self._stage,
            "scenario": self._scenario,
        }
        self._volumes = np.clip(solution.volumes, self._min, self._max)
        self._stage += 1
        terminated = self._stage == self.system.num_stages
        return self._observation(), -cost / self.reward_scale, terminated, False, info
