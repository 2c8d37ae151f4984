"""A damaged pickle file (snapshot cache, QD checkpoint, resume state, VecNormalize statistics) ends in its
loader's own error (one line for the user), never in whatever unpickling raised: random bytes and valid files with a
few bytes overwritten make ``pickle.load`` raise UnicodeDecodeError, ValueError, OverflowError, MemoryError,
KeyError or TypeError besides the documented UnpicklingError family."""

import pickle
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from algos.snapshot import SNAPSHOT_FORMAT_VERSION, SnapshotFileError, SnapshotSet
from qd.run import CHECKPOINT_FILE, load_checkpoint
from rl import resume_state
from rl.checkpoint import VECNORMALIZE_FILE, CheckpointError, load_normalization_stats

_VALID_LOOKING = pickle.dumps({"format": "frontier-rl snapshots", "version": SNAPSHOT_FORMAT_VERSION,
                               "set": [1.5, "x", (2, 3)], "config": {"env": "HardMaze-v0"}})


@st.composite
def damaged_pickles(draw: st.DrawFn) -> bytes:
    """Random bytes, or a valid pickle cut short or with up to four bytes overwritten."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=80))
    data = bytearray(_VALID_LOOKING[:draw(st.integers(0, len(_VALID_LOOKING)))])
    for _ in range(draw(st.integers(0, 4)) if data else 0):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


@settings(max_examples=150, deadline=None, derandomize=True)  # the same examples on every run
@given(content=damaged_pickles())
def test_each_loader_raises_only_its_own_error(content: bytes):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / CHECKPOINT_FILE
        path.write_bytes(content)
        with pytest.raises(SnapshotFileError, match=r"^(Snapshot file )?'.*'"):
            SnapshotSet.load(path)
        with pytest.raises(CheckpointError, match=r"(QD checkpoint .* is corrupt|not a QD checkpoint)"):
            load_checkpoint(folder)
        with pytest.raises(CheckpointError, match=r"(Resume state .* is corrupt|not a resume state)"):
            resume_state.load(path)
        (Path(folder) / VECNORMALIZE_FILE).write_bytes(content)
        with pytest.raises(CheckpointError, match=r"(VecNormalize statistics .* is corrupt|not SB3 VecNormalize)"):
            load_normalization_stats(Path(folder) / "model.zip")


def test_a_pickle_of_the_wrong_kind_is_named():
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / CHECKPOINT_FILE
        path.write_bytes(pickle.dumps([1, 2]))
        with pytest.raises(CheckpointError, match=r"holds a list, not a QD checkpoint"):
            load_checkpoint(folder)
        path.write_bytes(pickle.dumps({"format": "frontier-rl snapshots", "version": SNAPSHOT_FORMAT_VERSION}))
        with pytest.raises(SnapshotFileError, match=r"holds a builtins.NoneType, not an algos.snapshot.SnapshotSet"):
            SnapshotSet.load(path)
        (Path(folder) / VECNORMALIZE_FILE).write_bytes(pickle.dumps({"obs_rms": None}))
        with pytest.raises(CheckpointError, match=r"holds a dict, not SB3 VecNormalize statistics"):
            load_normalization_stats(Path(folder) / "model.zip")


def test_a_whole_pickle_of_another_kind_is_refused_by_every_loader():
    """The undamaged snapshot-like pickle (a dict) is not a QD checkpoint nor a resume state (once found by the
    random search above: the QD loader then took any dict)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / CHECKPOINT_FILE
        path.write_bytes(_VALID_LOOKING)
        with pytest.raises(CheckpointError, match="without 'format' and 'state', not a QD checkpoint"):
            load_checkpoint(folder)
        with pytest.raises(CheckpointError, match="not a resume state"):
            resume_state.load(path)
