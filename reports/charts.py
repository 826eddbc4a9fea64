"""The report's two charts, drawn by matplotlib as inline SVG (no files, no network).

`Figure` is used directly, never pyplot: no GUI backend, no global state, safe in threads
(matplotlib's own advice for web servers). Text stays text (`svg.fonttype: none`), so the
page's font is used and the SVG stays small; a per-chart hash salt keeps element ids of the
two charts apart when both sit in one HTML document.
"""

from __future__ import annotations

import io

import matplotlib
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from reports.model import WeekTally

matplotlib.use("Agg")

INK = "#1f2933"
ACCENT = "#b42318"
MUTED = "#9aa5b1"
# no date (the same figures draw the same SVG) and no RDF block naming external vocabularies
_NO_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def heatmap_svg(
    matrix: list[list[int]], school_hours: tuple[float, float], school_weekdays: set[int]
) -> str:
    """Attempts by weekday (rows) and hour (columns); a box marks the school day."""
    figure = Figure(figsize=(8.0, 2.9))
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Reds", aspect="auto", vmin=0, vmax=max(1, _max(matrix)))
    axes.set_yticks(range(7), DAYS, fontsize=8)
    axes.set_xticks(range(0, 24, 2), [f"{h:02d}:00" for h in range(0, 24, 2)], fontsize=7)
    axes.tick_params(length=0)
    axes.spines[:].set_visible(False)
    high = _max(matrix) / 2
    for day, row in enumerate(matrix):
        for hour, value in enumerate(row):
            if value:
                colour = "white" if value > high else INK
                axes.text(hour, day, f"{value}", ha="center", va="center", fontsize=6, color=colour)
    start, end = school_hours
    for day in sorted(school_weekdays):
        axes.add_patch(
            Rectangle((start - 0.5, day - 0.5), end - start, 1, fill=False, lw=1.2, ls="--", ec=INK)
        )
    colourbar = figure.colorbar(image, ax=axes, fraction=0.025, pad=0.01)
    colourbar.locator = MaxNLocator(nbins=5, integer=True)  # attempts are whole numbers
    colourbar.update_ticks()
    colourbar.ax.tick_params(labelsize=7)
    colourbar.outline.set_visible(False)
    axes.set_title("Attempts by day and hour (dashed: the school day)", fontsize=9, loc="left")
    return _svg(figure, "heatmap")


def trend_svg(weeks: list[WeekTally]) -> str:
    """Attempts per week; the report's own week in the accent colour, the average dashed."""
    figure = Figure(figsize=(8.0, 2.6))
    axes = figure.add_subplot()
    labels = [week.week.split("-")[-1] for week in weeks]
    values = [week.attempts for week in weeks]
    colours = [ACCENT if week.current else MUTED for week in weeks]
    bars = axes.bar(labels, values, color=colours, width=0.7)
    axes.bar_label(bars, fontsize=7, padding=1)
    if weeks:
        average = sum(values) / len(values)
        axes.axhline(average, color=INK, lw=1, ls="--")
        axes.annotate(
            f"average {average:,.1f}",
            (len(weeks) - 0.5, average),
            xytext=(0, 3),
            textcoords="offset points",
            ha="right",
            fontsize=7,
        )
    axes.spines[["top", "right"]].set_visible(False)
    axes.tick_params(labelsize=7)
    axes.set_ylim(0, max([1, *values]) * 1.15)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title("Attempts per week", fontsize=9, loc="left")
    return _svg(figure, "trend")


def _max(matrix: list[list[int]]) -> int:
    return max((max(row) for row in matrix), default=0)


def _svg(figure: Figure, name: str) -> str:
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": name}):
        figure.savefig(buffer, format="svg", bbox_inches="tight", metadata=_NO_METADATA)
    text = buffer.getvalue()
    return text[text.index("<svg") :]
