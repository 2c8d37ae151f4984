"""Helpers for tests of the pictures a run writes: the figures a function draws, and a PNG's size in pixels."""

from __future__ import annotations

from pathlib import Path

import pytest


def recorded_figures(monkeypatch: pytest.MonkeyPatch) -> list:
    """Record every ``(figure, axes)`` that ``plt.subplots`` returns from now on, so a test can read what was drawn."""
    import matplotlib.pyplot as plt

    figures, subplots = [], plt.subplots
    monkeypatch.setattr(plt, "subplots", lambda *a, **k: figures.append(subplots(*a, **k)) or figures[-1])
    return figures


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) in pixels, as Pillow (matplotlib's image library) reads the file."""
    from PIL import Image

    with Image.open(path) as image:
        return image.size
