"""The book's figure helpers draw what they are given, on a transparent background."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from vampire_detector import plots


def test_latency_cdf_marks_the_percentiles_of_the_samples():
    samples = np.arange(1, 101, dtype=float)  # 1 .. 100 ms
    _, (ax,) = plots.figure()
    marked = plots.latency_cdf(ax, samples, "test")
    assert marked == {q: pytest.approx(np.percentile(samples, q)) for q in (50, 95, 99)}
    assert ax.get_xlabel() == "latency (ms)" and "%" in ax.get_ylabel()
    assert len(ax.lines) == 1 + 3  # the curve and one line per percentile


def test_png_is_an_image_with_a_transparent_background():
    fig, (ax,) = plots.figure(width=2, height=2)
    plots.bars(ax, ["a", "b"], [1.0, 2.0], highlight=1)
    data = plots.png(fig, dpi=50)
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG" and image.mode == "RGBA"
    assert image.getpixel((0, 0))[3] == 0  # the corner is see-through: no white box in dark mode


def test_figure_gives_one_axes_per_column_in_the_theme_colours():
    fig, axes = plots.figure(3)
    assert len(axes) == 3
    plots.series(axes[0], [1, 2], [3, 4], "first")
    assert axes[0].lines[0].get_color() == plots.COLOURS[0]
    assert fig.get_facecolor()[3] == 0


def test_grouped_bars_draw_one_bar_per_group_and_series():
    _, (ax,) = plots.figure()
    plots.grouped_bars(ax, ["batch 1", "batch 32"], {"a": [1.0, 2.0], "b": [3.0, 4.0],
                                                      "c": [5.0, 6.0]})
    heights = sorted(bar.get_height() for bar in ax.patches)
    assert heights == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert [label.get_text() for label in ax.get_xticklabels()] == ["batch 1", "batch 32"]


def test_an_outside_legend_belongs_to_the_figure():
    fig, (ax,) = plots.figure()
    plots.series(ax, [1, 2], [3, 4], "measured")
    plots.legend(ax, outside=True)
    assert ax.get_legend() is None and [t.get_text() for t in fig.legends[0].get_texts()] == [
        "measured"]


def test_figure_lists_a_grid_of_axes_row_by_row():
    _, axes = plots.figure(3, nrows=2)
    assert len(axes) == 6
    assert [ax.get_subplotspec().rowspan.start for ax in axes] == [0, 0, 0, 1, 1, 1]
