"""Tests of SDDP's kept stage LP (envs.hydro.cut_lp.StageCutLP): the same optima as an LP built for one solve, the
cuts binding theta, no memory of earlier solves, and the cold retry after a failed warm start."""

import highspy
import numpy as np
import pytest

from envs.hydro import HydroLPError, StageCutLP, load_system, toy_case_path
from envs.hydro.cut_lp import solve_stage_with_cuts
from envs.hydro.lp import run_highs

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
    with pytest.raises(ValueError, match="volumes_in"):
        lp.solve(np.zeros(2), toy.inflows[0, STAGE])
    with pytest.raises(ValueError, match="inflow"):
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
