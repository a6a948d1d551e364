"""A trend report as a picture for a written report: `lapnode trends --plot FILE.png|FILE.svg`.

Rule 1: matplotlib is imported inside `render_chart` only (every other command starts without it), and
only its object-oriented `Figure`, never pyplot: no display, no GUI toolkit, no global figure state. A
PNG is drawn by the Agg renderer, an SVG by the SVG one.
Rule 2: one panel per unit, so no axis mixes units (lapnode.reports.trends Rule 2); in each, one line per
metric over every bucket from the first to the last, broken where nobody reported (no report is not a
zero).
Rule 3: values become floats here and only here, to place points on a picture; every number printed in
the table or the JSON stays exact.
Rule 4: the footnote names the contributing members and the date the chart was generated. Text from
records and the peer book is drawn as plain text, never as matplotlib math (`$...$`).
Rule 5: the same report gives the same SVG bytes (no creation date, a fixed id salt).
"""

from __future__ import annotations

import io
import math
import textwrap
import warnings
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from lapnode.errors import InputError
from lapnode.reports.trends import Series, TrendReport, timeline

FORMATS: Final = {".png": "png", ".svg": "svg"}
MAX_POINTS: Final = 520  # ten years of weeks; past that a chart shows only the buckets with reports
_PANEL_HEIGHT_IN: Final = 3.0
_WIDTH_IN: Final = 10.0
_FOOTNOTE_CHARS: Final = 150
_MAX_TICKS: Final = 24


def chart_format(path: Path) -> str:
    """ "png" or "svg" from the file name; any other extension is an operator error."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"--plot {path}: give a file name ending in .png or .svg")
    return fmt


def _plain(text: str) -> str:
    # A "$" would start matplotlib's math mode (Rule 4); escaped, it is drawn as itself.
    return text.replace("$", r"\$")


def footnote(contributors: Sequence[str], generated: str, report: TrendReport) -> str:
    members = ", ".join(contributors) if contributors else "none"
    text = (
        f"Contributing members: {members}. Generated {generated} by lapnode. "
        f"Each trend counts whole in the {report.period} that holds its period_start (UTC)."
    )
    return "\n".join(textwrap.wrap(text, _FOOTNOTE_CHARS))


def render_chart(report: TrendReport, *, fmt: str, contributors: Sequence[str], generated: str) -> bytes:
    """The chart of `report` as PNG or SVG bytes. `contributors` are the members' names as shown."""
    if fmt not in FORMATS.values():
        raise ValueError(f"unknown chart format {fmt!r}")
    if not report.series:
        raise InputError("--plot: no trend is counted, so there is nothing to plot")
    # Imported here, not at the top (Rule 1): it costs most of a second, and only --plot needs it.
    import matplotlib
    from matplotlib.figure import Figure

    by_unit: defaultdict[str, list[Series]] = defaultdict(list)
    for series in report.series:
        by_unit[series.unit].append(series)
    buckets = timeline(report, limit=MAX_POINTS)
    note = footnote(contributors, generated, report)
    bottom_in = 0.9 + 0.17 * (note.count("\n") + 1)
    height_in = _PANEL_HEIGHT_IN * len(by_unit) + bottom_in + 0.6
    figure = Figure(figsize=(_WIDTH_IN, height_in))
    panels = figure.subplots(nrows=len(by_unit), ncols=1, sharex=True, squeeze=False)[:, 0]
    positions = list(range(len(buckets)))
    index = {bucket: position for position, bucket in enumerate(buckets)}
    for panel, (unit, group) in zip(panels, sorted(by_unit.items()), strict=True):
        for series in group:
            heights = [math.nan] * len(buckets)
            for total in series.buckets:
                heights[index[total.bucket]] = float(total.total)  # Rule 3
            panel.plot(positions, heights, marker="o", label=_plain(series.name))
        if all(total.total >= 0 for series in group for total in series.buckets):
            panel.set_ylim(bottom=0)  # counts start at zero, so bar heights and gaps read true
        panel.set_ylabel(_plain(unit))
        panel.grid(visible=True, axis="y", alpha=0.3)
        panel.legend(loc="best", fontsize="small")
    step = max(1, math.ceil(len(buckets) / _MAX_TICKS))
    last = panels[-1]
    last.set_xticks(positions[::step], [bucket.label for bucket in buckets[::step]], rotation=45, ha="right")
    last.set_xlabel(f"{report.period} (UTC), by period_start")
    metrics = sorted({series.metric for series in report.series})
    figure.suptitle(_plain(f"Trends by {report.period}: {', '.join(metrics)}"))
    figure.text(0.01, 0.01, _plain(note), fontsize=7, va="bottom", ha="left")
    figure.subplots_adjust(bottom=bottom_in / height_in, top=1 - 0.5 / height_in, left=0.08, right=0.98)
    out = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "lapnode"}), warnings.catch_warnings():
        # A member's name may use a script the bundled font lacks: it is drawn as boxes, not an error.
        warnings.filterwarnings("ignore", message="Glyph .* missing from", category=UserWarning)
        figure.savefig(out, format=fmt, metadata={"Date": None} if fmt == "svg" else None)
    return out.getvalue()
