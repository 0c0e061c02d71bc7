"""Line-API building blocks for the issue-5 views: a widget that draws strips from a pure builder, and a marker
plot on a log axis where each series has its own glyph (so NO_COLOR still tells the series apart) and colour."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

from .common import DIM, GUTTER, LABEL, NULL, CachedLines, _runs, decade_label

Builder = Callable[[int, int], list[Strip]]


def text_strip(text: str, width: int, style: Style = LABEL) -> Strip:
    return Strip([Segment(text[: max(width, 0)], style)]).adjust_cell_length(width, NULL)


class StripView(CachedLines, Widget):
    """Draws the strips of `builder(width, height)`, rebuilt only when its key or its size changed."""

    DEFAULT_CSS = """
    StripView { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._builder: Builder | None = None
        self._key = None
        self._lines: list[Strip] | None = None
        self._lines_size = None

    def set_builder(self, key, builder: Builder) -> bool:
        if key == self._key and self._builder is not None:
            return False
        self._key, self._builder = key, builder
        self._lines = None
        self.refresh()
        return True

    @property
    def text(self) -> str:
        """The plain text on screen (tests read it)."""
        return "\n".join(self.render_line(y).text for y in range(self.size.height))

    def _build(self) -> list[Strip]:
        w, h = self.size.width, self.size.height
        return self._builder(w, h) if self._builder is not None and w > 0 else []


def log_range(arrays, extra=()) -> tuple[int, int]:
    pool = [np.asarray(a, float).ravel() for a in arrays] + [np.asarray(extra, float).ravel()]
    v = np.concatenate(pool) if pool else np.zeros(0)
    v = v[np.isfinite(v) & (v > 0)]
    if not v.size:
        return -3, 0
    lo, hi = math.floor(math.log10(v.min())), math.ceil(math.log10(v.max()))
    if hi <= lo:
        hi = lo + 1
    return max(lo, hi - 30), hi


def marker_plot(
    series: list[tuple[np.ndarray, np.ndarray, str, Style]],
    rows: int,
    width: int,
    lo_hi: tuple[int, int],
    both: str = "*",
    reference: tuple[np.ndarray, np.ndarray, str, Style] | None = None,
    gutter: int = GUTTER,
) -> list[Strip]:
    """`series` = [(x columns, values, glyph, style)] on a log10 y axis with labelled decades; a value lands in the
    row that holds its decade fraction. Two series in one cell show `both`. `reference` is drawn underneath
    (e.g. a dotted line y = x). inf is drawn on the top row as '!'."""
    lo, hi = lo_hi
    rows = max(rows, 1)
    span = hi - lo
    data_w = max(width - gutter, 0)
    grid: dict[tuple[int, int], tuple[str, Style]] = {}

    def row_of(v: float) -> int | None:
        if v is None or not (v > 0):
            return None
        if math.isinf(v):
            return 0
        f = (math.log10(v) - lo) / span
        return rows - 1 - min(rows - 1, max(0, int(f * rows - 1e-9) if f < 1 else rows - 1))

    if reference is not None:
        for x, v in zip(*reference[:2]):
            r = row_of(float(v))
            if r is not None and 0 <= x < data_w:
                grid[(r, int(x))] = (reference[2], reference[3])
    seen: dict[tuple[int, int], int] = {}
    for si, (xs, vals, glyph, style) in enumerate(series):
        for x, v in zip(xs, vals):
            v = float(v)
            if math.isnan(v) or not (0 <= x < data_w):
                continue
            r = row_of(v)
            if r is None:
                continue
            key = (r, int(x))
            g = "!" if math.isinf(v) else glyph
            if key in seen and seen[key] != si:
                grid[key] = (both, LABEL)
            else:
                grid[key] = (g, style)
                seen[key] = si
    labels: dict[int, str] = {}
    step = max(1, math.ceil(span / rows))
    for d in range(hi, lo - 1, -step):
        pos = (d - lo) / span * rows
        r = rows - 1 - min(rows - 1, max(0, math.ceil(pos) - 1))
        labels.setdefault(r, decade_label(d))
    out = []
    for r in range(rows):
        cells = [grid.get((r, c), (" ", None)) for c in range(data_w)]
        segs = [Segment(f"{labels.get(r, ''):>{gutter - 2}} ┤"[:gutter], LABEL), *_runs(cells)]
        out.append(Strip(segs).adjust_cell_length(width, NULL))
    return out


def axis_strip(width: int, ticks: list[tuple[int, str]], label: str = "", gutter: int = GUTTER) -> Strip:
    """An x axis: `ticks` = [(column, text)] placed left to right where they fit."""
    data_w = max(width - gutter, 0)
    axis = [" "] * data_w
    last_end = -1
    for x, txt in ticks:
        x = min(max(x - len(txt) // 2, 0), max(data_w - len(txt), 0))
        if x <= last_end:
            continue
        axis[x : x + len(txt)] = list(txt)
        last_end = x + len(txt)
    segs = [Segment(f"{label:>{gutter - 2}} └"[:gutter], LABEL), Segment("".join(axis)[:data_w], DIM)]
    return Strip(segs).adjust_cell_length(width, NULL)
