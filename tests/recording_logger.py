"""An SB3 logger that keeps every dumped row in memory, for tests that check what an algorithm logs."""

from __future__ import annotations

from typing import Any

from stable_baselines3.common.logger import KVWriter, Logger


class RecordingWriter(KVWriter):
    """A logger output that keeps every dumped row in memory."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
        self.rows.append(dict(key_values))

    def close(self) -> None:
        pass


def recording_logger() -> tuple[Logger, RecordingWriter]:
    writer = RecordingWriter()
    return Logger(folder=None, output_formats=[writer]), writer
