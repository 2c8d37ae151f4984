"""Tests of SDDP's kept stage LP (envs.hydro.cut_lp.StageCutLP): the same optima as an LP built for one solve, the
cuts binding theta, no memory of earlier solves, and the cold retry after a failed warm start.

Mutation testing (mutmut 3.8.1) of envs/hydro/cut_lp.py: 184 mutants, 31 survived before the tests of the
dispatch, the networks, the solver settings and the messages, 11 after, all equivalent:

- ``dtype=float`` left out or None for the cuts (4): each coefficient goes through ``float()`` when the row is
  written; ``reshape(None)``/``reshape(-2)`` of the intercepts (2): a 1-d array is unchanged, and numpy reads any
  negative size as "infer".
- ``theta``'s upper bound without cuts: infinite or 1 instead of 0 (2): its cost is 1 and its lower bound 0, so the
  optimum has ``theta = 0`` either way.
- The balance rows' ``dtype=np.int32`` left out or None (2): highspy converts a list of ints itself.
- ``presolve`` set to ``"OFF"`` (1): HiGHS reads option values case-insensitively.
"""

import dataclasses

import highspy
import numpy as np
import pytest

from envs.hydro import HydroLPError, StageCutLP, load_system, toy_case_path
from envs.hydro.cut_lp import solve_stage_with_cuts
from envs.hydro.lp import run_highs, solve_stage

STAGE = 5
VOLUMES = [np.array([200.0]), np.array([35.0]), np.array([390.0])]
CUT_INTERCEPTS = np.array([4000.0, 9000.0, 1500.0])
CUT_SLOPES = np.array([[-3.0], [-40.0], [-0.5]])


@pytest.fixture(scope="module")
def toy():
    return load_system(toy_case_path())


def _fields(solution) -> tuple:
    return (solution.objective, solution.future_cost, solution.volumes, solution.water_value,
            solution.thermal_generation, solution.deficit)


def _same(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(_fields(a), _fields(b)))


def _lp(toy, volumes=None, cuts=True) -> StageCutLP:
    return StageCutLP(toy, STAGE, CUT_INTERCEPTS, CUT_SLOPES) if cuts else StageCutLP(toy, STAGE)


def test_objectives_equal_the_lp_built_for_one_solve(toy):
    lp = _lp(toy)
    assert lp.num_cuts == 3
    for volumes in VOLUMES:
        for inflow in toy.inflows[:6, STAGE]:
            kept = lp.solve(volumes, inflow)
            fresh = solve_stage_with_cuts(toy, STAGE, volumes_in=volumes, inflow=inflow,
                                          cut_intercepts=CUT_INTERCEPTS, cut_slopes=CUT_SLOPES)
            assert kept.objective == pytest.approx(fresh.objective, rel=1e-9)
            assert kept.future_cost >= max(0.0, *(CUT_INTERCEPTS + CUT_SLOPES[:, 0] * kept.volumes[0])) - 1e-6
            assert kept.objective == pytest.approx(kept.operating_cost + kept.future_cost, rel=1e-9)


def test_each_solution_is_a_dispatch_of_the_stage(toy):
    """Water balance (one plant, nothing upstream) and the operating cost, by hand, for every returned field."""
    lp = _lp(toy)
    costs = np.array([unit.cost for unit in toy.thermals])
    for volumes in VOLUMES:
        for solution, inflow in zip(lp.solve_batch(volumes, toy.inflows[:4, STAGE]), toy.inflows[:4, STAGE]):
            assert solution.volumes == pytest.approx(volumes + inflow - solution.turbined - solution.spilled)
            assert solution.operating_cost == pytest.approx(solution.thermal_generation @ costs
                                                            + toy.deficit_cost * solution.deficit.sum())


@pytest.mark.parametrize("single_bus", [True, False])
def test_without_cuts_it_is_the_stage_lp_with_free_targets_on_either_network(toy, single_bus):
    """No cuts and a zero target penalty make the same LP (stage 0 included), on the system's network or one bus."""
    for stage in (0, STAGE):
        for volumes in VOLUMES:
            inflow = toy.inflows[1, stage]
            kept = StageCutLP(toy, stage, single_bus=single_bus).solve(volumes, inflow)
            once = solve_stage_with_cuts(toy, stage, volumes_in=volumes, inflow=inflow, single_bus=single_bus)
            free = solve_stage(toy, stage, volumes_in=volumes, inflow=inflow, target=volumes, target_penalty=0.0,
                               single_bus=single_bus)
            assert kept.objective == pytest.approx(free.objective, rel=1e-9) == once.objective
    # With 5 MW lines the thermal units (buses B1, B2) cannot reach the demand at B3: the network setting is seen.
    tight = dataclasses.replace(toy, lines=tuple(dataclasses.replace(line, capacity=5.0) for line in toy.lines))
    inflow = toy.inflows[1, STAGE]
    dc = StageCutLP(tight, STAGE).solve(VOLUMES[1], inflow).objective
    assert StageCutLP(tight, STAGE, single_bus=False).solve(VOLUMES[1], inflow).objective == dc
    one_bus = StageCutLP(tight, STAGE, single_bus=True).solve(VOLUMES[1], inflow).objective
    assert one_bus < dc - 1000.0
    assert solve_stage_with_cuts(tight, STAGE, volumes_in=VOLUMES[1], inflow=inflow, single_bus=True).objective == \
        one_bus


def test_the_kept_lp_solves_without_presolve_and_retries_a_failed_warm_start_cold(toy, monkeypatch):
    import envs.hydro.cut_lp as cut_lp

    lp = _lp(toy)
    assert lp._highs.getOptionValue("presolve")[1] == "off"
    seen = []

    def recording(highs, where, **kwargs):
        seen.append((where, kwargs))
        return run_highs(highs, where, **kwargs)

    monkeypatch.setattr(cut_lp, "run_highs", recording)
    lp.solve(VOLUMES[0], toy.inflows[0, STAGE])
    assert seen == [(f"stage {STAGE} (with 3 cuts)", {"cold_retry": True})]


def test_when_the_kept_lp_fails_a_fresh_copy_with_highs_defaults_solves_it(toy, monkeypatch):
    """HiGHS without presolve ended an LP of the bolivia-like case with status "Unknown" from a cleared basis too
    (stage 92, 10 cuts): the kept instance's failure falls back to a fresh copy with HiGHS's default settings."""
    import envs.hydro.cut_lp as cut_lp

    expected = _lp(toy).solve(VOLUMES[1], toy.inflows[0, STAGE])
    calls = []

    def kept_instance_fails(highs, where, cold_retry=False):
        calls.append((highs, cold_retry))
        if cold_retry:
            raise HydroLPError(f"{where}: no optimal solution (HiGHS status: Unknown)")
        return run_highs(highs, where)

    monkeypatch.setattr(cut_lp, "run_highs", kept_instance_fails)
    lp = _lp(toy)
    solved = lp.solve(VOLUMES[1], toy.inflows[0, STAGE])
    assert solved.objective == pytest.approx(expected.objective, rel=1e-9)
    assert solved.future_cost == pytest.approx(expected.future_cost, rel=1e-9)
    (kept, retried), (fresh, plainly) = calls
    assert kept is lp._highs and retried and fresh is not lp._highs and not plainly
    assert fresh.getOptionValue("presolve")[1] == "choose"  # HiGHS's default


def test_an_infeasible_stage_names_the_stage_and_its_cuts(toy):
    with pytest.raises(HydroLPError, match=rf"^stage {STAGE} \(with 3 cuts\): no optimal solution"):
        _lp(toy).solve(np.array([-1000.0]), np.zeros(1))


def test_the_cuts_bound_theta_from_below(toy):
    """Stage 5 from 35 under the first inflow keeps 5.7 (by the LP), where the second cut is the binding one:
    theta = 9000 - 40 * 5.7 = 8772."""
    solution = _lp(toy).solve(VOLUMES[1], toy.inflows[0, STAGE])
    assert solution.volumes[0] == pytest.approx(5.7)
    assert solution.future_cost == pytest.approx(9000.0 - 40.0 * 5.7)
    assert solution.water_value[0] == pytest.approx(-40.0)


def test_without_cuts_theta_is_zero(toy):
    solution = _lp(toy, cuts=False).solve(VOLUMES[0], toy.inflows[0, STAGE])
    assert solution.future_cost == 0.0 and solution.objective == pytest.approx(solution.operating_cost)


def test_a_solve_and_a_batch_do_not_depend_on_what_was_solved_before(toy):
    inflows = toy.inflows[:8, STAGE]
    first = _lp(toy)
    batch = first.solve_batch(VOLUMES[0], inflows)
    single = first.solve(VOLUMES[1], inflows[3])
    again = first.solve_batch(VOLUMES[0], inflows)  # after other solves: from a cleared basis again
    assert all(_same(a, b) for a, b in zip(batch, again))
    other = _lp(toy)
    assert _same(other.solve(VOLUMES[1], inflows[3]), single)
    for solution, inflow in zip(batch, inflows):  # warm-started in turn, the same optima as separate solves
        assert solution.objective == pytest.approx(other.solve(VOLUMES[0], inflow).objective, rel=1e-9)


def test_shapes_and_stage_are_checked(toy):
    with pytest.raises(ValueError, match="stage"):
        StageCutLP(toy, toy.num_stages)
    with pytest.raises(ValueError, match="cut_slopes: expected shape"):
        StageCutLP(toy, STAGE, CUT_INTERCEPTS, CUT_SLOPES[:2])
    lp = _lp(toy)
    with pytest.raises(ValueError, match="^volumes_in: expected shape"):
        lp.solve(np.zeros(2), toy.inflows[0, STAGE])
    with pytest.raises(ValueError, match="^inflow: expected shape"):
        lp.solve_batch(VOLUMES[0], [np.zeros(3)])


class _ScriptedHighs:
    """Stands in for highspy.Highs: each run() takes the next status; records clearSolver calls."""

    def __init__(self, statuses):
        self.statuses, self.calls, self.status = list(statuses), [], None

    def run(self):
        self.calls.append("run")
        self.status = self.statuses.pop(0)

    def clearSolver(self):  # noqa: N802 (HiGHS's name)
        self.calls.append("clear")

    def getModelStatus(self):  # noqa: N802
        return self.status

    def modelStatusToString(self, status):  # noqa: N802
        return "Unknown"

    def getSolution(self):  # noqa: N802
        return type("Solution", (), {"col_value": [1.0, 2.0], "row_dual": [3.0]})()

    def getInfo(self):  # noqa: N802
        return type("Info", (), {"objective_function_value": 7.0})()


def test_a_failed_warm_start_is_solved_again_from_scratch_once():
    optimal, unknown = highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kUnknown
    retried = _ScriptedHighs([unknown, optimal])
    objective, x, duals = run_highs(retried, "stage 3", cold_retry=True)
    assert retried.calls == ["run", "clear", "run"] and objective == 7.0 and list(x) == [1.0, 2.0]
    plain = _ScriptedHighs([unknown, optimal])
    with pytest.raises(HydroLPError, match="stage 3: no optimal solution"):
        run_highs(plain, "stage 3")
    assert plain.calls == ["run"]
    twice = _ScriptedHighs([unknown, unknown])
    with pytest.raises(HydroLPError, match="stage 3"):
        run_highs(twice, "stage 3", cold_retry=True)
    first_time = _ScriptedHighs([optimal])
    run_highs(first_time, "stage 3", cold_retry=True)
    assert first_time.calls == ["run"]
