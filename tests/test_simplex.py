"""Preference grids and preference-vector checks for multi-objective RL."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rl.simplex import PreferenceVectorError, check_preference, preference_grid, weight_grid


def test_preference_grid_two_objectives():
    expected = [[0.0, 1.0], [0.2, 0.8], [0.4, 0.6], [0.6, 0.4], [0.8, 0.2], [1.0, 0.0]]
    grid = preference_grid(2)
    assert grid.dtype == np.float64
    np.testing.assert_allclose(grid, expected, atol=1e-12)


def test_preference_grid_three_objectives():
    grid = preference_grid(3)
    assert grid.shape == (21, 3)
    np.testing.assert_allclose(grid.sum(axis=1), 1.0, atol=1e-12)
    assert np.all(grid >= 0)
    # the authors' depth-first order is lexicographic: first weight ascending, then the second
    assert [tuple(r) for r in np.round(grid, 9)] == sorted(tuple(r) for r in np.round(grid, 9))
    np.testing.assert_allclose(grid[:2], [[0, 0, 1], [0, 0.2, 0.8]], atol=1e-12)
    np.testing.assert_allclose(grid[-1], [1, 0, 0], atol=1e-12)
    assert len({tuple(r) for r in np.round(grid, 9)}) == 21


def test_preference_grid_bounds():
    # every entry in [min, max]: [0.2..0.8] with delta 0.2 -> 4 vectors
    grid = preference_grid(2, delta=0.2, min_weight=0.2, max_weight=0.8)
    np.testing.assert_allclose(grid, [[0.2, 0.8], [0.4, 0.6], [0.6, 0.4], [0.8, 0.2]], atol=1e-12)
    assert preference_grid(4).shape == (math.comb(5 + 3, 3), 4)
    np.testing.assert_array_equal(preference_grid(1), [[1.0]])
    with pytest.raises(ValueError):
        preference_grid(2, delta=0)
    with pytest.raises(ValueError):
        preference_grid(0)


def _authors_style_grid(n, step):
    """The Cartesian-product construction, on steps where float sums are exact (1/2, 1/4)."""
    mesh = [np.arange(0, 1 + step, step)] * n
    w = np.array(list(itertools.product(*mesh)))
    return np.unique(w[w.sum(axis=1) == 1], axis=0)


def test_weight_grid():
    np.testing.assert_array_equal(weight_grid(2, 0.25), _authors_style_grid(2, 0.25))
    np.testing.assert_array_equal(weight_grid(3, 0.25), _authors_style_grid(3, 0.25))
    np.testing.assert_array_equal(weight_grid(3, 0.5), _authors_style_grid(3, 0.5))
    g = weight_grid(2)
    assert g.shape == (101, 2)
    g3 = weight_grid(3)
    assert g3.shape == (math.comb(102, 2), 3)
    np.testing.assert_allclose(g3.sum(axis=1), 1.0, atol=1e-12)
    assert np.all(g3 >= 0)
    with pytest.raises(ValueError):
        weight_grid(2, 0.3)  # 0.3 does not divide 1
    with pytest.raises(ValueError):
        weight_grid(2, 0.0)


def test_check_preference_accepts_and_returns_float64():
    w = check_preference([0.5, 0.5], 2)
    assert w.dtype == np.float64 and w.tolist() == [0.5, 0.5]
    assert check_preference("0.2,0.8", 2).tolist() == [0.2, 0.8]
    assert check_preference(np.array([1, 0, 0]), 3).tolist() == [1.0, 0.0, 0.0]
    assert check_preference([0.1, 0.2, 0.7 + 5e-7], 3).shape == (3,)


def test_check_preference_messages():
    with pytest.raises(PreferenceVectorError) as err:
        check_preference([0.2, 0.3, 0.5], 2, env_id="mo-hopper-2obj-v5")
    assert str(err.value) == (
        "preference vector has 3 values but mo-hopper-2obj-v5 has 2 objectives; "
        "pass 2 non-negative weights that sum to 1, e.g. 0.5,0.5"
    )
    with pytest.raises(PreferenceVectorError, match="negative"):
        check_preference([1.5, -0.5], 2)
    with pytest.raises(PreferenceVectorError, match="non-finite"):
        check_preference([float("nan"), 1.0], 2)
    with pytest.raises(PreferenceVectorError, match="sums to 0.9"):
        check_preference([0.4, 0.5], 2)
    with pytest.raises(PreferenceVectorError, match="e.g. 0.33,0.33,0.34"):
        check_preference([1.0], 3)
    with pytest.raises(PreferenceVectorError, match="not a list of numbers"):
        check_preference("a,b", 2)
    assert issubclass(PreferenceVectorError, ValueError)


_finite = st.floats(-10, 10, allow_nan=False, allow_infinity=False)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.integers(1, 5), st.lists(_finite, min_size=0, max_size=7))
def test_bad_preference_vectors_raise(n, values):
    arr = np.array(values, dtype=float)
    valid = len(values) == n and np.all(arr >= 0) and abs(arr.sum() - 1.0) <= 1e-6
    if valid:
        assert np.array_equal(check_preference(values, n), arr)
        return
    with pytest.raises(PreferenceVectorError) as err:
        check_preference(values, n, env_id="some-env-v0")
    assert "\n" not in str(err.value)
    assert f"pass {n} non-negative weight" in str(err.value)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    st.integers(2, 4).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.lists(st.floats(0.01, 1.0), min_size=n, max_size=n),
            st.integers(0, n - 1),
            st.sampled_from([float("nan"), float("inf"), -float("inf"), -0.25]),
        )
    )
)
def test_bad_entry_in_otherwise_valid_vector_raises(case):
    n, raw, pos, bad = case
    w = np.array(raw) / np.sum(raw)
    np.testing.assert_array_equal(check_preference(w, n), w)
    w[pos] = bad
    with pytest.raises(PreferenceVectorError):
        check_preference(w, n)
