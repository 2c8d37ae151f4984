"""The benchmark figure: a long title stays inside a one-panel figure instead of being cut at both edges."""

from pathlib import Path

import numpy as np
import pytest
from figure_checks import recorded_figures
from matplotlib.backends.backend_agg import FigureCanvasAgg

from rl.plotting import plot_benchmark


def test_a_long_title_is_wrapped_inside_a_one_panel_figure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    figures = recorded_figures(monkeypatch)
    curves = {"Ant-v4": {"mdpo": [(np.array([0, 10]), np.array([1.0, 2.0]))]}}
    title = "mdpo_on_ant_1m: mdpo@authors_schedule vs ppo (1,000,000 steps)"
    plot_benchmark(curves, str(tmp_path / "curves.png"), title)
    fig, _ = figures[0]
    canvas = FigureCanvasAgg(fig)  # the figure was closed after saving
    canvas.draw()
    box = fig._suptitle.get_window_extent(canvas.get_renderer())
    assert 0 <= box.x0 and box.x1 <= fig.bbox.width and box.y1 <= fig.bbox.height
    assert "".join(fig._suptitle._get_wrapped_text().split()) == "".join(title.split())  # the words, all of them
