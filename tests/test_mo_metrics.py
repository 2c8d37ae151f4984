"""Front metrics (hypervolume, expected utility, sparsity, cardinality) on hand-made fronts."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymoo.indicators.hv import HV

from rl.mo_metrics import (
    REFERENCE_POINTS,
    ReferencePointError,
    cardinality,
    expected_utility,
    front_metrics,
    hypervolume,
    sparsity,
)
from rl.simplex import weight_grid


def test_hypervolume_2d_hand_value():
    # boxes [0,1]x[0,3], [1,2]x[0,2], [2,3]x[0,1]: 3 + 2 + 1
    assert hypervolume([(1, 3), (2, 2), (3, 1)], (0, 0)) == pytest.approx(6.0)
    # shifted reference: [-1,1]x[-1,3] ... = 2*4 + 1*3 + 1*2
    assert hypervolume([(1, 3), (2, 2), (3, 1)], (-1, -1)) == pytest.approx(13.0)


def test_hypervolume_3d_hand_value():
    # three 2x1x1 boxes from the origin: 3 * 2 - 3 pairwise overlaps of 1 + the common unit cube = 4
    assert hypervolume([(2, 1, 1), (1, 2, 1), (1, 1, 2)], (0, 0, 0)) == pytest.approx(4.0)


def test_hypervolume_equals_pymoo():
    rng = np.random.default_rng(0)
    front = rng.uniform(-50, 100, size=(30, 2))
    ref = np.array([-100.0, -100.0])
    assert hypervolume(front, ref) == pytest.approx(float(HV(ref_point=-ref).do(-front)))
    front3 = rng.uniform(0, 1, size=(20, 3))
    assert hypervolume(front3, (0, 0, 0)) == pytest.approx(float(HV(ref_point=np.zeros(3)).do(-front3)))


def test_hypervolume_points_not_better_than_reference_add_nothing():
    assert hypervolume([(1, 3), (2, 2), (3, 1), (5, 0), (-1, 10)], (0, 0)) == pytest.approx(6.0)
    assert hypervolume([(0, 5), (-1, -1)], (0, 0)) == 0.0
    assert hypervolume(np.zeros((0, 2)), (0, 0)) == 0.0
    assert hypervolume([(1, 1), (1, 1), (0.5, 0.5)], (0, 0)) == pytest.approx(1.0)


def test_reference_point_length_message():
    with pytest.raises(ReferencePointError) as err:
        hypervolume([(1, 3), (2, 2)], (-100, -100, -100))
    msg = str(err.value)
    assert "\n" not in msg
    assert msg == (
        "reference point has 3 values but the front has 2 objectives; pass one value per objective, "
        "e.g. --ref-point -100 -100"
    )
    assert isinstance(err.value, ValueError)
    with pytest.raises(ReferencePointError):
        hypervolume([(1, 3)], (0, float("nan")))
    with pytest.raises(ReferencePointError):
        front_metrics([(1, 3)], (0,))


@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    st.integers(1, 4),
    st.integers(0, 5),
    st.integers(1, 6),
    st.floats(-1e3, 1e3, allow_nan=False),
)
def test_reference_point_length_mismatch_always_raises(m, n_ref, n_points, value):
    if n_ref == m:
        n_ref = m + 1
    front = np.full((n_points, m), 1.0)
    with pytest.raises(ReferencePointError) as err:
        hypervolume(front, [value] * n_ref)
    assert "\n" not in str(err.value) and f"has {m} objective" in str(err.value)


def test_expected_utility_hand_values():
    front = [(1, 0), (0, 1)]
    # weights (0,1), (.5,.5), (1,0): best utilities 1, .5, 1
    assert expected_utility(front, weight_grid(2, 0.5)) == pytest.approx(2.5 / 3)
    # weights (0,1), (.25,.75), (.5,.5), (.75,.25), (1,0): 1, .75, .5, .75, 1
    assert expected_utility(front, weight_grid(2, 0.25)) == pytest.approx(0.8)
    assert expected_utility([(2, 2)], weight_grid(2, 0.01)) == pytest.approx(2.0)
    assert np.isnan(expected_utility(np.zeros((0, 2)), weight_grid(2, 0.5)))
    with pytest.raises(ValueError):
        expected_utility(front, weight_grid(3, 0.5))


def test_sparsity_hand_values():
    # objective 0 sorted 0,1,2,4: gaps 1,1,2 -> 6; objective 1 the same -> 6; (6 + 6) / (4 - 1)
    assert sparsity([(0, 4), (1, 2), (2, 1), (4, 0)]) == pytest.approx(4.0)
    # (1,3),(2,2),(3,1): each objective 1 + 1 -> 4 / 2
    assert sparsity([(1, 3), (2, 2), (3, 1)]) == pytest.approx(2.0)
    assert sparsity([(1, 3)]) == 0.0
    assert sparsity(np.zeros((0, 2))) == 0.0


def test_cardinality():
    assert cardinality([(1, 3), (2, 2), (3, 1), (1, 1), (2, 2)]) == 3
    assert cardinality(np.zeros((0, 3))) == 0


def test_front_metrics_on_non_dominated_subset():
    points = [(1, 3), (2, 2), (3, 1), (1, 1), (2, 2), (0, 0)]
    m = front_metrics(points, (0, 0), eu_step=0.5)
    assert set(m) == {"hypervolume", "expected_utility", "sparsity", "cardinality"}
    assert m["hypervolume"] == pytest.approx(6.0)
    assert m["cardinality"] == 3
    assert m["sparsity"] == pytest.approx(2.0)  # dominated and duplicate points left out
    # weights (0,1), (.5,.5), (1,0): 3, 2, 3
    assert m["expected_utility"] == pytest.approx(8 / 3)
    empty = front_metrics(np.zeros((0, 2)), (0, 0))
    assert empty["hypervolume"] == 0.0 and empty["cardinality"] == 0 and empty["sparsity"] == 0.0


def test_reference_points():
    assert REFERENCE_POINTS["mo-hopper-2obj-v5"] == (-100.0, -100.0)
    assert REFERENCE_POINTS["mo-halfcheetah-v5"] == (-100.0, -100.0)
    assert REFERENCE_POINTS["mo-ant-2obj-v5"] == (-100.0, -100.0)
    assert REFERENCE_POINTS["mo-hopper-v5"] == (-100.0, -100.0, -100.0)
    assert REFERENCE_POINTS["deep-sea-treasure-v0"] == (0.0, -25.0)
    assert REFERENCE_POINTS["minecart-v0"] == (-1.0, -1.0, -200.0)
