"""The book's figures: one look for every chart, readable on light and dark pages.

Introduced in Chapter 1 (the latency distribution) and used by every chapter that measures.
Each chart is drawn from numbers measured in the same notebook run, never from stored ones.
The book has a light and a dark theme, so a figure cannot assume either: its background is
transparent, and text, axes and grid are a mid grey that reads on white and on near-black.
The colours are mid-tone as well, for the same reason.

Figures are built with ``matplotlib.figure.Figure`` rather than ``pyplot``: no global state, no
GUI backend, nothing shown twice. ``show`` renders one as a PNG image for the notebook.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

GREY = "#8a8a8a"  # text, axes and grid: readable on white and on the dark theme's background
COLOURS = ("#3d8fd9", "#e0703c", "#3aa860", "#b462d6", "#c9a227", "#d1496b")
THEME = {
    "text.color": GREY, "axes.labelcolor": GREY, "axes.edgecolor": GREY,
    "xtick.color": GREY, "ytick.color": GREY, "grid.color": GREY, "grid.alpha": 0.3,
    "axes.grid": True, "axes.facecolor": "none", "figure.facecolor": "none",
    "legend.frameon": False, "axes.spines.top": False, "axes.spines.right": False,
    "font.size": 10, "axes.prop_cycle": None,  # set below, from COLOURS
}


def figure(ncols: int = 1, *, nrows: int = 1, width: float = 6.4,
           height: float = 3.4) -> tuple[Figure, list[Axes]]:
    """A themed figure with ``nrows`` x ``ncols`` axes, listed row by row."""
    from matplotlib import cycler, rc_context

    theme = {**THEME, "axes.prop_cycle": cycler(color=COLOURS)}
    with rc_context(theme):
        fig = Figure(figsize=(width, height), layout="constrained")
        axes = [fig.add_subplot(nrows, ncols, i + 1) for i in range(nrows * ncols)]
    return fig, axes


def png(fig: Figure, dpi: int = 120) -> bytes:
    """The figure as PNG bytes, with its transparent background."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, transparent=True)
    return buffer.getvalue()


def show(fig: Figure) -> None:
    """Display the figure in a notebook, once, as a PNG image."""
    from IPython.display import Image, display

    display(Image(png(fig)))


def latency_cdf(ax: Axes, samples_ms: Sequence[float], label: str | None = None,
                marks: Sequence[int] = (50, 95, 99)) -> dict[int, float]:
    """Cumulative distribution of latencies, with the chosen percentiles marked and labelled."""
    values = np.sort(np.asarray(samples_ms, dtype=float))
    share = np.arange(1, len(values) + 1) / len(values)
    (line,) = ax.step(values, share * 100, where="post", label=label)
    found = {q: float(np.percentile(values, q)) for q in marks}
    for i, (q, value) in enumerate(found.items()):  # labels on steps, so that none overlap
        ax.axvline(value, color=line.get_color(), linestyle=":", linewidth=1)
        ax.annotate(f"p{q} {value:.2f} ms", (value, 8 + 14 * i), xytext=(3, 0),
                    textcoords="offset points", color=GREY, fontsize=8)
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("calls at most this slow (%)")
    ax.set_ylim(0, 101)
    return found


def series(ax: Axes, x: Sequence[float], y: Sequence[float], label: str | None = None, *,
           marker: str = "o", **style) -> None:
    """One measured series as a line with markers."""
    ax.plot(list(x), list(y), marker=marker, label=label, **style)


def bars(ax: Axes, names: Sequence[str], values: Sequence[float], *,
         highlight: int | None = None, fmt: str = "{:.1f}") -> None:
    """Horizontal bars, first name on top, each labelled with its value."""
    positions = np.arange(len(names))[::-1]
    colours = [COLOURS[1] if i == highlight else COLOURS[0] for i in range(len(names))]
    ax.barh(positions, list(values), color=colours)
    ax.set_yticks(positions, list(names))
    for position, value in zip(positions, values, strict=True):
        ax.annotate(fmt.format(value), (value, position), xytext=(3, 0), va="center",
                    textcoords="offset points", color=GREY, fontsize=8)
    ax.grid(axis="y", visible=False)


def grouped_bars(ax: Axes, groups: Sequence[str], values: dict[str, Sequence[float]], *,
                 fmt: str = "{:.2f}") -> None:
    """Vertical bars: one group per entry of ``groups``, one bar per series of ``values``."""
    width = 0.8 / max(len(values), 1)
    positions = np.arange(len(groups))
    for i, (label, heights) in enumerate(values.items()):
        offsets = positions - 0.4 + width * (i + 0.5)
        ax.bar(offsets, list(heights), width, label=label, color=COLOURS[i % len(COLOURS)])
        for x, height in zip(offsets, heights, strict=True):
            ax.annotate(fmt.format(height), (x, height), xytext=(0, 2), ha="center",
                        textcoords="offset points", color=GREY, fontsize=7)
    ax.set_xticks(positions, list(groups))
    ax.grid(axis="x", visible=False)


def threshold(ax: Axes, value: float, label: str, *, colour: str = COLOURS[5]) -> None:
    """A horizontal line marking a limit (an alert threshold, an objective)."""
    ax.axhline(value, color=colour, linestyle="--", linewidth=1.2, label=label)


def legend(ax: Axes, *, outside: bool = False, **options) -> None:
    """The legend, in the theme's grey; ``outside``: right of the plot, where it hides nothing."""
    style = {"labelcolor": GREY, "fontsize": 8, "frameon": False, **options}
    if outside:
        ax.figure.legend(*ax.get_legend_handles_labels(), loc="outside right upper", **style)
    else:
        ax.legend(**style)
