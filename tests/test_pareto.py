"""Pareto dominance, crowding distance and the C-MORL Pareto archive on hand-made fronts."""

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rl.pareto import ParetoArchive, crowding_distance, dominates, non_dominated_indices


def test_dominates():
    assert dominates((2, 2), (1, 2))
    assert dominates((2, 3), (1, 2))
    assert not dominates((1, 2), (1, 2))  # equal: not strictly better anywhere
    assert not dominates((3, 1), (1, 3))  # incomparable
    assert not dominates((1, 2), (2, 2))
    with pytest.raises(ValueError):
        dominates((1, 2), (1, 2, 3))


def test_non_dominated_hand_set_with_duplicates():
    points = np.array(
        [
            [3.0, 1.0],  # 0 kept
            [1.0, 3.0],  # 1 kept
            [2.0, 2.0],  # 2 kept
            [1.0, 1.0],  # 3 dominated by 2
            [2.0, 2.0],  # 4 duplicate of 2: dropped
            [2.0, 1.0],  # 5 dominated by 0 and 2 (weakly better in one, equal in the other)
            [0.0, 3.0],  # 6 dominated by 1
            [1.0, 3.0],  # 7 duplicate of 1: dropped
        ]
    )
    idx = non_dominated_indices(points)
    # ordered by the first objective ascending
    assert idx.tolist() == [1, 2, 0]
    assert idx.dtype.kind == "i"


def test_non_dominated_reference_filter():
    points = np.array([[-150.0, 50.0], [10.0, 10.0], [50.0, -100.0], [60.0, -101.0]])
    assert non_dominated_indices(points).tolist() == [0, 1, 2, 3]
    # (-150, 50) and (60, -101) are not >= (-100, -100) in every objective; (50, -100) is (equality counts)
    assert non_dominated_indices(points, reference_point=(-100, -100)).tolist() == [1, 2]


def test_non_dominated_empty_and_single():
    assert non_dominated_indices(np.zeros((0, 2))).tolist() == []
    assert non_dominated_indices([[1.0, 2.0]]).tolist() == [0]
    with pytest.raises(ValueError):
        non_dominated_indices([[np.nan, 1.0]])


def test_crowding_distance_hand_fronts():
    # objective 0 sorted: 0,1,2,4 (span 4); objective 1 sorted: 0,1,2,4 (span 4)
    # (1,2): (2-0)/4 + (4-1)/4 = 1.25 ; (2,1): (4-1)/4 + (2-0)/4 = 1.25 ; extremes inf
    cd = crowding_distance([(0, 4), (1, 2), (2, 1), (4, 0)])
    assert np.isinf(cd[0]) and np.isinf(cd[3])
    assert cd[1] == 1.25 and cd[2] == 1.25
    # objective 0: 0,1,3,5 (span 5) -> (1,3): 3/5, (3,2): 4/5 ; objective 1: 0,2,3,5 -> (3,2): 3/5, (1,3): 3/5
    cd = crowding_distance([(0, 5), (1, 3), (3, 2), (5, 0)])
    assert np.isinf(cd[0]) and np.isinf(cd[3])
    assert cd[1] == pytest.approx(1.2, abs=1e-12) and cd[2] == pytest.approx(1.4, abs=1e-12)


def test_crowding_distance_small_and_flat():
    assert crowding_distance(np.zeros((0, 2))).shape == (0,)
    assert np.all(np.isinf(crowding_distance([(1, 2)])))
    assert np.all(np.isinf(crowding_distance([(1, 2), (2, 1)])))
    # objective 1 constant: it adds 0 to interior points (the authors would produce 0/0 = NaN)
    cd = crowding_distance([(0, 1), (1, 1), (4, 1)])
    assert np.isinf(cd[0]) and np.isinf(cd[2])
    assert cd[1] == 1.0  # (4 - 0) / 4 from objective 0 only


def test_archive_add_keeps_non_dominated_with_payloads():
    archive = ParetoArchive(2)
    archive.add([(1, 1), (2, 3), (3, 2)], ["a", "b", "c"])
    assert archive.points.tolist() == [[2, 3], [3, 2]]
    assert archive.payloads == ["b", "c"]
    # a duplicate of an archived point keeps the archived payload; a dominating point evicts
    archive.add([(2, 3), (4, 2.5)], ["b2", "d"])
    assert archive.points.tolist() == [[2, 3], [4, 2.5]]
    assert archive.payloads == ["b", "d"]
    assert len(archive) == 2


def test_archive_reference_point_filter():
    archive = ParetoArchive(2, reference_point=(-100, -100))
    archive.add([(-150, 50), (10, 10), (50, -120)], [0, 1, 2])
    assert archive.points.tolist() == [[10, 10]]
    assert archive.payloads == [1]
    with pytest.raises(ValueError):
        ParetoArchive(2, reference_point=(0, 0, 0))


def test_archive_prunes_to_capacity_by_crowding():
    archive = ParetoArchive(2, capacity=3)
    archive.add([(0, 5), (1, 3), (3, 2), (5, 0)], ["p0", "p1", "p2", "p3"])
    # crowding: inf, 1.2, 1.4, inf -> (1, 3) goes
    assert archive.points.tolist() == [[0, 5], [3, 2], [5, 0]]
    assert archive.payloads == ["p0", "p2", "p3"]


def test_archive_default_capacity_is_200():
    archive = ParetoArchive(2)
    assert archive.capacity == 200
    x = np.linspace(0, 1, 250)
    archive.add(np.stack([x, 1 - x], axis=1), list(range(250)))
    assert len(archive) == 200
    assert archive.points[0].tolist() == [0, 1] and archive.points[-1].tolist() == [1, 0]  # extremes kept


def test_archive_rejects_bad_input():
    archive = ParetoArchive(2)
    with pytest.raises(ValueError):
        archive.add([(1, 2)], ["a", "b"])
    with pytest.raises(ValueError):
        archive.add([(1, 2, 3)], ["a"])
    with pytest.raises(ValueError):
        ParetoArchive(0)
    with pytest.raises(ValueError):
        ParetoArchive(2, capacity=0)


def test_select_by_crowding_and_skips_selected_tuples():
    archive = ParetoArchive(2)
    archive.add([(0, 5), (1, 3), (3, 2), (5, 0)], ["p0", "p1", "p2", "p3"])
    # crowding inf, 1.2, 1.4, inf: the two extremes first (ties in row order), then (3, 2), then (1, 3)
    assert archive.select(2) == [0, 3]
    assert archive.select(1) == [2]
    assert archive.select(5) == [1]
    assert archive.select(3) == []
    assert archive.selected_tuples == {(0.0, 5.0), (1.0, 3.0), (3.0, 2.0), (5.0, 0.0)}
    # a new point is selectable; the old ones still are not
    archive.add([(4, 1)], ["p4"])
    assert archive.points.tolist() == [[0, 5], [1, 3], [3, 2], [4, 1], [5, 0]]
    assert archive.select(3) == [3]
    assert archive.select(0) == []


def test_select_history_survives_eviction_and_is_per_archive():
    archive = ParetoArchive(2)
    archive.add([(1, 1)], ["a"])
    assert archive.select(1) == [0]
    archive.add([(1, 1)], ["a again"])  # the same tuple again: still counts as selected
    assert archive.payloads == ["a"] and archive.select(1) == []
    archive.add([(2, 2)], ["b"])  # evicts (1, 1); the new point is selectable
    assert archive.select(1) == [0] and archive.payloads == ["b"]
    assert (1.0, 1.0) in archive.selected_tuples  # remembered after leaving the archive
    fresh = ParetoArchive(2)
    fresh.add([(1, 1)], ["a"])
    assert fresh.select(1) == [0]  # the history belongs to one archive


def test_state_dict_round_trip():
    archive = ParetoArchive(3, capacity=4, reference_point=(-1, -1, -1))
    archive.add([(0, 0, 1), (0, 1, 0), (1, 0, 0), (0.5, 0.5, 0.5), (-2, 5, 5)], [{"id": i} for i in range(5)])
    picked = archive.select(2)
    state = pickle.loads(pickle.dumps(archive.state_dict()))
    restored = ParetoArchive(3)
    restored.load_state_dict(state)
    assert np.array_equal(restored.points, archive.points)
    assert restored.payloads == archive.payloads
    assert restored.capacity == 4
    assert np.array_equal(restored.reference_point, [-1, -1, -1])
    assert restored.selected_tuples == archive.selected_tuples
    assert restored.select(10) == archive.select(10)
    assert len(picked) == 2
    with pytest.raises(ValueError):
        ParetoArchive(2).load_state_dict(state)


def test_points_property_is_a_copy():
    archive = ParetoArchive(2)
    archive.add([(1, 2)], ["a"])
    archive.points[0, 0] = 99
    assert archive.points.tolist() == [[1, 2]]


_small_fronts = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4), st.integers(0, 4)), min_size=0, max_size=25)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(_small_fronts)
def test_non_dominated_property(rows):
    points = np.array(rows, dtype=float).reshape(-1, 3)
    kept = non_dominated_indices(points)
    kept_set = set(kept.tolist())
    # no kept point dominates another, and no two are equal
    for i in kept:
        for j in kept:
            if i != j:
                assert not dominates(points[i], points[j])
                assert not np.array_equal(points[i], points[j])
    # every dropped point is dominated by (or an exact duplicate of) a kept point
    for d in range(len(points)):
        if d in kept_set:
            continue
        assert any(dominates(points[k], points[d]) or np.array_equal(points[k], points[d]) for k in kept)
    # sorted by the first objective
    assert np.all(np.diff(points[kept, 0]) >= 0) if len(kept) else True


@settings(max_examples=60, deadline=None, derandomize=True)
@given(_small_fronts, st.integers(1, 6))
def test_archive_never_exceeds_capacity_and_stays_non_dominated(rows, capacity):
    archive = ParetoArchive(3, capacity=capacity)
    points = np.array(rows, dtype=float).reshape(-1, 3)
    archive.add(points, list(range(len(points))))
    assert len(archive) <= capacity
    assert len(archive.payloads) == len(archive)
    for p, payload in zip(archive.points, archive.payloads):
        assert np.array_equal(points[payload], p)
    kept = archive.points
    for i in range(len(kept)):
        for j in range(len(kept)):
            if i != j:
                assert not dominates(kept[i], kept[j])
