"""Per-iteration series on a log axis (loss, gradient norm) with reference lines and event marks."""

from __future__ import annotations

import math

import numpy as np
from rich.segment import Segment
from textual.strip import Strip
from textual.widget import Widget

from . import axes
from .common import NULL, BAR_BAD, BAR_CLIP, DIM, GUTTER, HLINE, LABEL, CachedLines, _runs, log_bars
from .plot import text_strip


class SeriesPlot(CachedLines, Widget):
    """Bars per iteration (log10 axis), an optional horizontal reference line, and a mark row:
    `c` = the update was clipped, `✗` = a non-finite value appeared. Long runs are binned (axes.bin_series): a
    column shows the maximum of its iterations (`how` = "max", norms: no spike is hidden) or the last ("last",
    loss), and every clipped or non-finite iteration marks its column in the event row."""

    DEFAULT_CSS = """
    SeriesPlot {
        height: 1fr;
        min-height: 5;
    }
    """

    def __init__(self, title: str, *, how: str = "max", id: str | None = None) -> None:
        super().__init__(id=id)
        self.title = title
        self.how = how
        self.values = np.zeros(0)
        self.clipped = np.zeros(0, bool)
        self.finite = np.zeros(0, bool)
        self.hline: float | None = None
        self.hline_label = ""
        self.note = ""
        self.positions = None
        self._key = None
        self._lines: list[Strip] | None = None
        self._lines_size = None

    @property
    def axis_lock(self) -> axes.AxisLock:
        return getattr(self.app, "axis_lock", axes.UNLOCKED)

    def set_data(self, values, clipped, finite, hline, hline_label, note, key, positions=None) -> bool:
        k = (key, hline, note, self.axis_lock.version)
        if k == self._key:
            return False
        self._key = k
        self.values = np.asarray(values, float)
        self.clipped = np.asarray(clipped, bool)
        self.finite = np.asarray(finite, bool)
        self.hline, self.hline_label, self.note = hline, hline_label, note
        self.positions = positions
        self._lines = None
        self.refresh()
        return True

    def _build(self) -> list[Strip]:
        return series_lines(self.title, self.values, self.clipped, self.finite, self.hline, self.hline_label,
                            self.note, self.size.width, self.size.height, self.how, self.axis_lock, self.id or "",
                            self.positions)


def series_lines(title, values, clipped, finite, hline, hline_label, note, width: int, height: int,
                 how: str = "max", lock: axes.AxisLock = axes.UNLOCKED, name: str = "", positions=None) -> list[Strip]:
    """The lines of a SeriesPlot (a pure function: tests call it). `positions`: the last iteration of each entry
    when an entry may stand for several (axes.bin_series)."""
    has_pos = positions is not None and len(positions) == len(values) and len(values) > 0
    n = int(positions[-1]) if has_pos else len(values)
    data_w = max(width - GUTTER, 1)
    vals, clip, bad, k = axes.bin_series(values, clipped, finite, data_w, how, positions=positions if has_pos else None)
    scale = "1 col = 1 iteration" if k == 1 else f"1 col = {k} iterations ({how})"
    parts = [title, f"{n} iteration{'' if n == 1 else 's'}", scale]
    has_line = hline is not None and math.isfinite(hline) and hline > 0
    if has_line:
        parts.append(f"╌ {hline_label} {hline:.3g}")
    if note:
        parts.append(note)
    if n == 0:
        return [text_strip(t, width) for t in axes.title_lines(parts, width, 1)] + [
            text_strip(" " * GUTTER + "no updates yet: press t to train, or step through an iteration", width, DIM)]
    hl = [(hline, HLINE, "╌")] if has_line else []
    auto = axes.auto_decades([vals], [hline] if has_line else [])
    lo_hi = lock.decades(name, auto)
    locked = lock.note(name)
    if locked:
        parts.append(locked)
    heads = axes.title_lines(parts, width, 2 if height >= 7 else 1)
    lines = [text_strip(t, width) for t in heads]
    rows = max(height - len(heads) - 1, 1)
    styles = [BAR_BAD if b else (BAR_CLIP if c else None) for c, b in zip(clip, bad)]
    bars, _ = log_bars(vals, rows, width, hlines=hl, styles=styles, lo_hi=lo_hi)
    lines.extend(bars)
    marks = [("✗", BAR_BAD) if b else (("c", BAR_CLIP) if c else (" ", None)) for c, b in zip(clip, bad)]
    segs = [Segment(f"{'events':>{GUTTER - 1}} "[:GUTTER], LABEL), *_runs(marks[:data_w])]
    lines.append(Strip(segs).adjust_cell_length(width, NULL))
    return lines[: max(height, 1)]
