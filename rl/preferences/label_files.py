"""Label files: the pairs of segments a person is asked to compare, and the labels they write back.

The workflow of human-in-the-loop preference RL (Christiano et al., 2017; ``imitation``'s
``PreferenceGatherer`` with a person behind it): the run writes a *query file* naming pairs of segments by
``segment_id`` (:func:`write_query_file`), a person fills in one label per pair, and
:class:`rl.preferences.raters.LabelFileRater` reads the labels back (:func:`read_label_file`).

Formats, chosen by the file's suffix:

- ``.csv``: a header ``segment_a,segment_b,label``, one row per pair; lines starting with ``#`` are comments
  (the query file starts with one explaining the labels); extra columns are ignored.
- ``.json``: ``{"instructions": "...", "pairs": [{"segment_a": id, "segment_b": id, "label": null}, ...]}``
  (a bare list of pairs is accepted too).

Labels are P(first segment preferred), the convention of ``imitation`` and of every rater here:
``1`` or ``a`` = the first segment is better, ``0`` or ``b`` = the second, ``0.5`` or ``=`` = equally good; an
empty label (``null`` in JSON) = not labelled yet.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rl.preferences.errors import LabelFileError
from rl.preferences.segments import Segment

INSTRUCTIONS = (
    "label = 1 or a if the first segment is better, 0 or b if the second is, 0.5 or = if they are equally good; "
    "leave it empty to skip the pair"
)
_WORDS = {"a": 1.0, "1": 1.0, "b": 0.0, "0": 0.0, "=": 0.5, "equal": 0.5, "0.5": 0.5}
_FIELDS = ("segment_a", "segment_b", "label")


@dataclass(frozen=True)
class LabelRow:
    """One pair of a label file: the two segment ids and the label (None: not labelled yet)."""

    segment_a: str
    segment_b: str
    label: float | None


def parse_label(value: Any, where: str) -> float | None:
    """A label from a file cell: 1/a, 0/b, 0.5/=/equal, or empty/None (not labelled)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise LabelFileError(f"{where}: label {value!r} is not a label; write {INSTRUCTIONS}")
    if isinstance(value, int | float):
        if not math.isfinite(value) or float(value) not in (0.0, 0.5, 1.0):
            raise LabelFileError(f"{where}: label {value!r} is not 0, 0.5 or 1; write {INSTRUCTIONS}")
        return float(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if not word:
            return None
        if word in _WORDS:
            return _WORDS[word]
        try:
            number = float(word)
        except ValueError:
            number = math.nan
        if number in (0.0, 0.5, 1.0):
            return number
    raise LabelFileError(f"{where}: label {str(value)[:40]!r} is not a label; write {INSTRUCTIONS}")


def _segment_id(item: Segment | str) -> str:
    return item.segment_id if isinstance(item, Segment) else str(item)


def write_query_file(
    pairs: Sequence[tuple[Segment | str, Segment | str]], path: str | Path, *, overwrite: bool = False
) -> Path:
    """Write the pairs (segments or their ids) as a label file with empty labels, for a person to fill in.

    Refuses to replace an existing file unless ``overwrite`` (it may hold a person's labels).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise LabelFileError(f"query file {path} must end in .csv or .json")
    if path.exists() and not overwrite:
        raise LabelFileError(f"{path} exists and may hold labels; pass overwrite=True or choose another path")
    rows = [(_segment_id(a), _segment_id(b)) for a, b in pairs]
    bad = [
        s
        for pair in rows
        for s in pair
        if not s.strip() or "\n" in s or "\r" in s or s != s.strip() or s.startswith("#")
    ]
    if bad:
        raise LabelFileError(
            f"segment ids must be non-empty single-line strings, not starting with # or a space, got {bad[0]!r}"
        )
    if suffix == ".json":
        content = {
            "instructions": INSTRUCTIONS,
            "pairs": [{"segment_a": a, "segment_b": b, "label": None} for a, b in rows],
        }
        text = json.dumps(content, indent=1) + "\n"
    else:
        buffer = io.StringIO()
        buffer.write(f"# {INSTRUCTIONS}\n")
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(_FIELDS)
        writer.writerows((a, b, "") for a, b in rows)
        text = buffer.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _rows_from_csv(text: str, name: str) -> list[LabelRow]:
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    try:
        records = list(csv.reader(lines))
    except csv.Error as error:
        raise LabelFileError(
            f"{name} is not a readable CSV ({error}); keep the header segment_a,segment_b,label"
        ) from None
    records = [r for r in records if any(cell.strip() for cell in r)]
    if not records:
        raise LabelFileError(f"{name} has no header; its first line must be segment_a,segment_b,label")
    header = [cell.strip().lower() for cell in records[0]]
    missing = [f for f in _FIELDS if f not in header]
    if missing:
        raise LabelFileError(
            f"{name} lacks the column(s) {', '.join(missing)}; its header must be segment_a,segment_b,label"
        )
    column = {f: header.index(f) for f in _FIELDS}
    rows = []
    for number, record in enumerate(records[1:], start=2):
        cells = {f: record[i].strip() if i < len(record) else "" for f, i in column.items()}
        rows.append(_row(cells, f"{name} row {number}"))
    return rows


def _rows_from_json(text: str, name: str) -> list[LabelRow]:
    try:
        content = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        raise LabelFileError(f"{name} is not valid JSON ({str(error)[:80]}); write it with write_query_file") from None
    pairs = content.get("pairs") if isinstance(content, dict) else content
    if not isinstance(pairs, list):
        raise LabelFileError(f'{name} must hold a list of pairs or {{"pairs": [...]}}; write it with write_query_file')
    rows = []
    for number, pair in enumerate(pairs, start=1):
        if not isinstance(pair, dict):
            raise LabelFileError(f'{name} pair {number} is not an object {{"segment_a", "segment_b", "label"}}')
        rows.append(_row(pair, f"{name} pair {number}"))
    return rows


def _row(cells: dict[str, Any], where: str) -> LabelRow:
    ids = [cells.get("segment_a"), cells.get("segment_b")]
    if not all(isinstance(s, str) and s.strip() for s in ids):
        raise LabelFileError(f"{where}: segment_a and segment_b must be segment ids, got {ids[0]!r}, {ids[1]!r}")
    if ids[0].strip() == ids[1].strip():
        raise LabelFileError(f"{where} compares segment {ids[0].strip()!r} with itself; pair two different segments")
    return LabelRow(ids[0].strip(), ids[1].strip(), parse_label(cells.get("label"), where))


def read_label_file(path: str | Path, known_ids: Collection[str] | None = None) -> list[LabelRow]:
    """Read a label file (labelled or not); with ``known_ids``, refuse ids that are not among them.

    Raises:
        LabelFileError: for a missing or unreadable file, a bad row or label, or unknown segment ids.
    """
    path = Path(path)
    if path.suffix.lower() not in (".csv", ".json"):
        raise LabelFileError(f"label file {path} must end in .csv or .json")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LabelFileError(
            f"no label file at {path}; write one with write_query_file and fill in the labels"
        ) from None
    except UnicodeDecodeError:
        raise LabelFileError(f"{path} is not UTF-8 text; save it as UTF-8 CSV or JSON") from None
    rows = _rows_from_json(text, path.name) if path.suffix.lower() == ".json" else _rows_from_csv(text, path.name)
    if known_ids is not None:
        known = set(known_ids)
        unknown = sorted({s for row in rows for s in (row.segment_a, row.segment_b) if s not in known})
        if unknown:
            shown = ", ".join(repr(s) for s in unknown[:5])
            shown += f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            raise LabelFileError(
                f"{path.name} names {len(unknown)} unknown segment id(s): {shown}; label only pairs written by "
                "write_query_file for these segments, or pass the segments those ids came from"
            )
    return rows
