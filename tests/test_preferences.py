"""rl.preferences: segments, synthetic and human raters, label files and the comparison queue.

Raters are checked on hand-made segments whose returns (or positions) are chosen so that every label can be
worked out by hand; the noisy rater's flip rate is measured over 2000 seeded draws.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rl.preferences import (
    BradleyTerryRater,
    ComparisonQueue,
    ComparisonQueueError,
    HumanRater,
    IntransitiveRater,
    LabelFileError,
    LabelFileRater,
    NoisyRater,
    NonMarkovianRater,
    Region,
    Segment,
    SegmentError,
    Trajectory,
    UnknownRaterError,
    collect_trajectories,
    find_cycle,
    make_rater,
    myopic_return,
    preference_matrix,
    read_label_file,
    sample_segments,
    write_query_file,
)
from rl.preferences.label_files import parse_label


def segment(rewards, *, name: str, infos=None, reward_names=()) -> Segment:
    """A segment with the given per-step rewards (scalar or (L, k)) and zero observations/actions."""
    rewards = np.asarray(rewards, dtype=float)
    steps = len(rewards)
    return Segment(
        observations=np.zeros((steps, 2)),
        actions=np.zeros((steps, 1)),
        rewards=rewards,
        infos=infos or {},
        reward_names=reward_names,
        segment_id=name,
    )


def trajectory(steps: int, episode_id: int = 0, offset: float = 0.0) -> Trajectory:
    """Observations count the step (plus ``offset``), so a segment's start can be read from its observations."""
    return Trajectory(
        observations=offset + np.arange(steps + 1, dtype=float)[:, None],
        actions=np.zeros((steps, 1)),
        rewards=np.arange(steps, dtype=float),
        infos={"x_position": np.arange(steps, dtype=float)},
        env_id="Toy-v0",
        episode_id=episode_id,
    )


RNG = np.random.default_rng


# ----- segments -------------------------------------------------------------------------------------------


def test_a_segment_longer_than_every_episode_is_refused_naming_the_fix():
    with pytest.raises(SegmentError) as error:
        sample_segments([trajectory(20), trajectory(12, 1)], length=50, n=4, rng=0)
    assert str(error.value) == "segments of 50 steps but the longest episode has 20; pass a length <= 20"
    assert "\n" not in str(error.value)


def test_segments_are_windows_of_the_trajectories_with_stable_ids():
    trajectories = [trajectory(10, 0), trajectory(4, 1, offset=100.0), trajectory(2, 2)]  # the last is too short
    segments = sample_segments(trajectories, length=3, n=400, rng=0)
    assert len(segments) == 400
    counts = {0: 0, 1: 0}
    for s in segments:
        source = trajectories[s.episode_id]
        assert s.episode_id in (0, 1) and len(s) == 3 and 0 <= s.start <= len(source) - 3
        np.testing.assert_array_equal(s.observations, source.observations[s.start : s.start + 3])
        np.testing.assert_array_equal(s.infos["x_position"], [s.start, s.start + 1, s.start + 2])
        assert s.segment_id == f"Toy-v0/ep{s.episode_id}/t{s.start}-{s.start + 3}"
        assert s.true_return == pytest.approx(3 * s.start + 3)
        counts[s.episode_id] += 1
    # uniform over windows: 8 windows in the first trajectory, 2 in the second
    assert counts[0] / 400 == pytest.approx(0.8, abs=0.06)
    again = sample_segments(trajectories, length=3, n=400, rng=0)
    assert [s.segment_id for s in again] == [s.segment_id for s in segments]


def test_inconsistent_arrays_are_refused():
    with pytest.raises(SegmentError, match="observations"):
        Trajectory(observations=np.zeros((3, 1)), actions=np.zeros((5, 1)), rewards=np.zeros(5))
    with pytest.raises(SegmentError, match="reward_names"):
        Segment(observations=np.zeros((2, 1)), actions=np.zeros((2, 1)), rewards=np.zeros((2, 3)), reward_names=("a",))
    with pytest.raises(SegmentError, match="positive integer"):
        sample_segments([trajectory(5)], length=0, n=1)


def test_trajectory_from_a_dataset_episode_keeps_the_info_after_each_step():
    class Episode:  # the fields of rl.datasets.Episode
        observations = np.arange(4.0)[:, None]
        actions = np.zeros((3, 1))
        rewards = np.ones(3)
        terminations = np.array([False, False, True])
        infos = {"qpos": np.arange(4.0)}

    trajectory_ = Trajectory.from_episode(Episode(), env_id="Hopper-v4", episode_id=7)
    assert trajectory_.terminated and len(trajectory_) == 3
    np.testing.assert_array_equal(trajectory_.infos["qpos"], [1.0, 2.0, 3.0])


def test_collected_mujoco_trajectories_record_reward_terms_that_sum_to_the_reward():
    import gymnasium as gym

    trajectories = collect_trajectories("HalfCheetah-v5", None, 2, seed=3, max_steps=4)
    assert [len(t) for t in trajectories] == [4, 4] and [t.episode_id for t in trajectories] == [0, 1]
    first = trajectories[0]
    assert first.reward_names == ("reward_forward", "reward_ctrl") and first.rewards.shape == (4, 2)
    assert set(first.infos) >= {"x_position", "x_velocity"} and first.observations.shape == (5, 17)
    env = gym.make("HalfCheetah-v5")
    env.reset(seed=3)
    env.action_space.seed(3)
    rewards = [env.step(env.action_space.sample())[1] for _ in range(4)]
    np.testing.assert_allclose(first.rewards.sum(axis=1), rewards, rtol=1e-6)
    again = collect_trajectories("HalfCheetah-v5", None, 1, seed=3, max_steps=4)[0]
    np.testing.assert_array_equal(again.rewards, first.rewards)

    class Model:  # an SB3-like model: predict(obs, deterministic) -> (action, state)
        def predict(self, obs, deterministic=False):
            return np.full(6, 0.5), None

    scalar = collect_trajectories(env, Model(), 1, seed=0, max_steps=3, reward_terms=["x_velocity"])[0]
    assert scalar.reward_names == ("x_velocity", "reward_other")  # the ctrl cost is the remainder
    np.testing.assert_allclose(scalar.rewards[:, 1], -0.1 * 6 * 0.25, atol=1e-6)
    np.testing.assert_array_equal(scalar.actions, np.full((3, 6), 0.5))


# ----- synthetic raters -----------------------------------------------------------------------------------


def test_bradley_terry_probabilities_match_a_hand_computation():
    a, b = segment([1.0, 2.0], name="a"), segment([0.5, 0.5], name="b")  # returns 3 and 1
    rater = BradleyTerryRater(temperature=2.0)
    assert rater.probability(a, b) == pytest.approx(1 / (1 + math.exp(-1.0)))  # sigmoid((3 - 1) / 2)
    assert rater.probability(b, a) == pytest.approx(1 / (1 + math.exp(1.0)))
    labels = [rater.prefer(a, b, rng) for rng in [RNG(0)] for _ in range(2000)]
    assert set(labels) <= {0.0, 1.0} and np.mean(labels) == pytest.approx(0.731, abs=0.03)
    exact = BradleyTerryRater(temperature=0.0)
    tie = segment([2.0, 1.0], name="tie")
    assert (exact.prefer(a, b, RNG(0)), exact.prefer(b, a, RNG(0)), exact.prefer(a, tie, RNG(0))) == (1.0, 0.0, 0.5)
    myopic = BradleyTerryRater(temperature=0.0, reward_fn=myopic_return(0.5))
    early, late = segment([4.0, 0.0, 0.0], name="early"), segment([0.0, 0.0, 1.5], name="late")
    assert myopic_return(0.5)(early) == pytest.approx(1.0) and myopic.prefer(late, early, RNG(0)) == 1.0
    with pytest.raises(ValueError, match="temperature"):
        BradleyTerryRater(temperature=-1.0)


def test_the_noisy_rater_flips_at_the_rate_asked():
    a, b = segment([1.0], name="a"), segment([0.0], name="b")
    rater = NoisyRater(BradleyTerryRater(temperature=0.0), flip_probability=0.2)
    rng = RNG(0)
    labels = np.array([rater.prefer(a, b, rng) for _ in range(2000)])
    assert abs(np.mean(labels == 0.0) - 0.2) < 0.03 and set(labels) == {0.0, 1.0}
    assert rater.probability(a, b) == pytest.approx(0.8)
    tie = segment([1.0], name="tie")
    assert {rater.prefer(a, tie, rng) for _ in range(50)} == {0.5}  # "equally good" survives a flip
    labels_again = np.array([rater.prefer(a, b, r) for r in [RNG(0)] for _ in range(2000)])
    np.testing.assert_array_equal(labels, labels_again)


CONDORCET = [(3.0, 1.0, 2.0), (2.0, 3.0, 1.0), (1.0, 2.0, 3.0)]
"""Term returns of a, b, c: voter i ranks by term i, giving a > b > c, b > c > a and c > a > b."""


def condorcet_segments(names=("forward", "ctrl", "survive")) -> list[Segment]:
    return [segment(np.array([terms]), name=n, reward_names=names) for terms, n in zip(CONDORCET, "abc")]


def test_the_intransitive_rater_has_a_preference_cycle():
    a, b, c = condorcet_segments()
    rater = IntransitiveRater([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    rng = RNG(0)
    assert (rater.prefer(a, b, rng), rater.prefer(b, c, rng), rater.prefer(c, a, rng)) == (1.0, 1.0, 1.0)
    assert (rater.prefer(b, a, rng), rater.prefer(c, b, rng), rater.prefer(a, c, rng)) == (0.0, 0.0, 0.0)
    cycle = find_cycle(preference_matrix(rater, [a, b, c]))
    assert cycle is not None and sorted(cycle) == [0, 1, 2]
    i, j, k = cycle
    segments = [a, b, c]
    assert rater.probability(segments[i], segments[j]) == rater.probability(segments[j], segments[k]) == 1.0
    assert rater.probability(segments[k], segments[i]) == 1.0
    # the same voters by reward name, and the default (one voter per term), agree
    named = IntransitiveRater([{"forward": 1.0}, {"ctrl": 1.0}, {"survive": 1.0}])
    np.testing.assert_array_equal(preference_matrix(named, segments), preference_matrix(rater, segments))
    np.testing.assert_array_equal(preference_matrix(IntransitiveRater(), segments), preference_matrix(rater, segments))
    # each voter alone (Bradley-Terry on its own term) is transitive
    for term in range(3):
        alone = BradleyTerryRater(0.0, reward_fn=lambda s, t=term: float(s.term_returns()[t]))
        assert find_cycle(preference_matrix(alone, segments)) is None


def test_the_intransitive_rater_names_missing_terms():
    a, b, _ = condorcet_segments()
    with pytest.raises(ValueError, match=r"\['speed'\].*forward"):
        IntransitiveRater([{"speed": 1.0}]).prefer(a, b, RNG(0))
    with pytest.raises(ValueError, match="2 weights.*3 reward terms"):
        IntransitiveRater([[1, 0]]).prefer(a, b, RNG(0))
    with pytest.raises(ValueError, match="one reward term"):
        IntransitiveRater().prefer(segment([1.0], name="x"), segment([0.0], name="y"), RNG(0))


def test_the_non_markovian_rater_prefers_reaching_a_before_b():
    a_region, b_region = ("x_position", None, -0.2), ("x_position", 0.5, None)  # step back first, then forward

    def moving(xs, name, reward=0.0):
        return segment([reward] * len(xs), name=name, infos={"x_position": np.array(xs)})

    back_then_forward = moving([0.0, -0.3, 0.2, 0.6], "ok")  # t_A = 1 < t_B = 3: succeeds
    forward_then_back = moving([0.6, 0.0, -0.3, 0.0], "late")  # t_B = 0 < t_A = 2: fails
    only_back = moving([0.0, -0.5, -0.5, -0.5], "back")  # t_A = 1, never B: succeeds
    neither = moving([0.0, 0.1, 0.2, 0.3], "none", reward=1.0)  # never A: fails
    rater = NonMarkovianRater(a_region, b_region)
    assert [rater.succeeds(s) for s in (back_then_forward, forward_then_back, only_back, neither)] == [
        True, False, True, False,
    ]  # fmt: skip
    rng = RNG(0)
    assert rater.prefer(back_then_forward, forward_then_back, rng) == 1.0
    assert rater.prefer(neither, only_back, rng) == 0.0
    assert rater.prefer(back_then_forward, only_back, rng) == 0.5  # both succeed: a tie
    assert rater.prefer(forward_then_back, neither, rng) == 0.5  # both fail: a tie
    # a tie breaker decides ties; the same return does not make forward_then_back preferred
    broken = NonMarkovianRater(Region("x_position", high=-0.2), Region("x_position", low=0.5), BradleyTerryRater(0.0))
    assert broken.prefer(neither, forward_then_back, rng) == 1.0 and broken.prefer(neither, only_back, rng) == 0.0
    # on an observation column instead of an info
    by_obs = NonMarkovianRater((0, None, -0.2), (0, 0.5, None))
    s = Segment(observations=np.array([[0.0], [-0.3], [0.6]]), actions=np.zeros((3, 1)), rewards=np.zeros(3))
    assert by_obs.succeeds(s)
    with pytest.raises(ValueError, match="no info 'y'"):
        NonMarkovianRater(("y", 0, 1), ("x_position", 0, 1)).succeeds(back_then_forward)


# ----- human raters and label files -----------------------------------------------------------------------


def test_a_human_rater_is_a_callable_answering_like_a_label_file():
    a, b = segment([0.0], name="a"), segment([1.0], name="b")
    answers = iter(["a", "B", "=", 1, 0.5])
    rater = HumanRater(lambda _a, _b: next(answers))
    assert [rater.prefer(a, b, RNG(0)) for _ in range(5)] == [1.0, 0.0, 0.5, 1.0, 0.5]
    with pytest.raises(LabelFileError, match="not a label"):
        HumanRater(lambda _a, _b: "maybe").prefer(a, b, RNG(0))


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_label_file_round_trip(tmp_path: Path, suffix: str):
    a, b, c = (segment([float(i)], name=f"Hopper-v4/ep{i}/t0-1") for i in range(3))
    path = write_query_file([(a, b), (b, c), (a, c)], tmp_path / f"queries{suffix}")
    rows = read_label_file(path)
    assert [(r.segment_a, r.segment_b, r.label) for r in rows] == [
        (a.segment_id, b.segment_id, None),
        (b.segment_id, c.segment_id, None),
        (a.segment_id, c.segment_id, None),
    ]
    with pytest.raises(LabelFileError, match="exists and may hold labels"):
        write_query_file([(a, b)], path)
    # a person fills in two of the three labels
    if suffix == ".json":
        content = json.loads(path.read_text())
        content["pairs"][0]["label"], content["pairs"][1]["label"] = "b", 0.5
        path.write_text(json.dumps(content))
    else:
        lines = path.read_text().splitlines()
        assert lines[0].startswith("#") and lines[1] == "segment_a,segment_b,label"
        lines[2], lines[3] = lines[2] + "b", lines[3] + "0.5"
        path.write_text("\n".join(lines) + "\n")
    rater = LabelFileRater(path, segments=[a, b, c])
    assert [r.label for r in rater.labelled()] == [0.0, 0.5] and len(rater.unlabelled()) == 1
    assert rater.prefer(a, b, RNG(0)) == 0.0 and rater.prefer(b, a, RNG(0)) == 1.0  # either order
    assert rater.prefer(c, b, RNG(0)) == 0.5
    with pytest.raises(LabelFileError, match=r"no label for \(.*ep0.*ep2.*\); fill in"):
        rater.prefer(a, c, RNG(0))


def test_unknown_segment_ids_in_a_label_file_are_named_with_the_fix(tmp_path: Path):
    a, b = segment([0.0], name="seg-a"), segment([1.0], name="seg-b")
    path = tmp_path / "labels.csv"
    path.write_text("segment_a,segment_b,label\nseg-a,seg-b,1\nseg-a,ghost-1,0\nghost-2,seg-b,a\n")
    with pytest.raises(LabelFileError) as error:
        LabelFileRater(path, segments=[a, b])
    message = str(error.value)
    assert "\n" not in message and "2 unknown segment id(s): 'ghost-1', 'ghost-2'" in message
    assert "write_query_file" in message and "pass the segments" in message
    assert LabelFileRater(path).prefer(a, b, RNG(0)) == 1.0  # without known segments, any id is accepted


def test_bad_label_files_name_the_row(tmp_path: Path):
    cases = {
        "bad.csv": ("segment_a,segment_b,label\nx,y,maybe\n", "bad.csv row 2: label 'maybe'"),
        "cols.csv": ("a,b,label\nx,y,1\n", "lacks the column"),
        "self.csv": ("segment_a,segment_b,label\nx,x,1\n", "with itself"),
        "bad.json": ("{not json", "not valid JSON"),
        "num.json": ('[{"segment_a": "x", "segment_b": "y", "label": 2}]', "pair 1: label 2 is not 0, 0.5 or 1"),
        "labels.txt": ("", "must end in .csv or .json"),
    }
    for name, (text, expected) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(LabelFileError, match=re_escape(expected)):
            read_label_file(tmp_path / name)
    with pytest.raises(LabelFileError, match="no label file"):
        read_label_file(tmp_path / "missing.csv")


def re_escape(text: str) -> str:
    import re

    return re.escape(text)


CELLS = st.one_of(st.text(max_size=8), st.sampled_from(["1", "0", "0.5", "a", "b", "=", " A ", "", "nan", "1e0"]))


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(text=st.text(max_size=200), suffix=st.sampled_from([".csv", ".json"]))
def test_any_malformed_label_file_gives_a_label_file_error(text: str, suffix: str):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / f"labels{suffix}"
        path.write_text(text, encoding="utf-8")
        try:
            rows = read_label_file(path)
        except LabelFileError as error:
            assert "\n" not in str(error)
        else:
            assert all(r.label in (None, 0.0, 0.5, 1.0) and r.segment_a != r.segment_b for r in rows)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(cells=st.lists(st.tuples(st.text(max_size=6), st.text(max_size=6), CELLS), max_size=5))
def test_label_cells_parse_or_fail_with_a_label_file_error(cells):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "labels.json"
        path.write_text(json.dumps([{"segment_a": a, "segment_b": b, "label": c} for a, b, c in cells]))
        try:
            rows = read_label_file(path, known_ids={"x", "y"})
        except LabelFileError as error:
            assert "\n" not in str(error)
        else:
            assert len(rows) == len(cells)
            for row, (_, _, cell) in zip(rows, cells):
                assert row.label == parse_label(cell, "cell") and {row.segment_a, row.segment_b} <= {"x", "y"}


# ----- make_rater -----------------------------------------------------------------------------------------


def test_make_rater_builds_every_registered_rater_and_suggests_close_names(tmp_path: Path):
    assert isinstance(make_rater("bt", temperature=0.5), BradleyTerryRater)
    noisy = make_rater("noisy", flip_probability=0.3)
    assert isinstance(noisy, NoisyRater) and noisy.base.temperature == 0.0 and noisy.flip_probability == 0.3
    assert isinstance(make_rater("noisy", base="bt", temperature=2.0).base, BradleyTerryRater)
    assert isinstance(make_rater("intransitive"), IntransitiveRater)
    nonmarkovian = make_rater("nonmarkovian", region_first=("x_position", None, 0), region_second={"key": 0, "low": 1})
    assert nonmarkovian.region_second == Region(0, 1.0, math.inf)
    write_query_file([("x", "y")], tmp_path / "q.csv")
    assert isinstance(make_rater("file", path=tmp_path / "q.csv"), LabelFileRater)
    with pytest.raises(UnknownRaterError) as error:
        make_rater("intransitve")
    assert "Did you mean intransitive?" in str(error.value) and "Registered: bt, file" in str(error.value)
    with pytest.raises(ValueError, match="make_rater\\('bt'\\).*temprature.*temperature"):
        make_rater("bt", temprature=1.0)


# ----- the comparison queue -------------------------------------------------------------------------------


def test_the_queue_counts_comparisons_and_round_trips_through_a_file(tmp_path: Path):
    trajectories = [trajectory(8, 0), trajectory(6, 1, offset=50.0)]
    segments = sample_segments(trajectories, length=3, n=6, rng=1)
    queue = ComparisonQueue(recent_capacity=1)
    rater = BradleyTerryRater(temperature=0.0)
    rng = RNG(0)
    labels = queue.compare_pairs(rater, list(zip(segments[::2], segments[1::2])), rng)
    assert queue.comparisons_used == 3 and len(queue) == 3
    np.testing.assert_array_equal(labels, queue.labels())
    queue.compare(rater, segments[0], segments[1], rng, store=False)  # an SPO-style query: counted, not kept
    queue.count(5)
    assert queue.comparisons_used == 9 and len(queue) == 3
    for t in trajectories:
        queue.push_trajectory(t)
    assert [t.episode_id for t in queue.recent_trajectories()] == [1]  # FIFO of one

    path = queue.save(tmp_path / "run" / "comparisons.npz")
    loaded = ComparisonQueue.load(path)
    assert loaded.comparisons_used == 9 and list(loaded.comparisons) == list(queue.comparisons)
    assert loaded.recent.maxlen == 1 and loaded.recent_trajectories()[0].episode_id == 1
    np.testing.assert_array_equal(loaded.recent_trajectories()[0].observations, trajectories[1].observations)
    assert set(loaded.segments) == set(queue.segments)
    for segment_id, original in queue.segments.items():
        copy = loaded.segments[segment_id]
        for field in ("observations", "actions", "rewards"):
            np.testing.assert_array_equal(getattr(copy, field), getattr(original, field))
        np.testing.assert_array_equal(copy.infos["x_position"], original.infos["x_position"])
        assert (copy.env_id, copy.episode_id, copy.start) == (original.env_id, original.episode_id, original.start)
    assert not list(tmp_path.glob("run/*.tmp"))


def test_a_full_queue_drops_its_oldest_comparisons_and_their_segments():
    a, b, c = (segment([float(i)], name=n) for i, n in enumerate("abc"))
    queue = ComparisonQueue(capacity=2)
    queue.add(a, b, 0.0)
    queue.add(b, c, 0.0)
    queue.add(c, b, 1.0)
    assert [(x.segment_a, x.segment_b) for x in queue.comparisons] == [("b", "c"), ("c", "b")]
    assert set(queue.segments) == {"b", "c"}
    with pytest.raises(ComparisonQueueError, match="no segment 'a'"):
        queue.add("a", "b", 1.0)
    with pytest.raises(SegmentError, match="different segment with id 'b'"):
        queue.add_segment(segment([5.0, 5.0], name="b"))


def test_loading_something_else_is_refused(tmp_path: Path):
    np.savez(tmp_path / "other.npz", x=np.zeros(2))
    with pytest.raises(ComparisonQueueError, match="not a frontier-rl-comparison-queue file"):
        ComparisonQueue.load(tmp_path / "other.npz")
    with pytest.raises(ComparisonQueueError, match="no comparison queue"):
        ComparisonQueue.load(tmp_path / "missing.npz")
