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

from . import axes
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
    """The automatic decade range of a marker plot (axes.auto_decades)."""
    return axes.auto_decades(arrays, extra)


def marker_plot(
    series: list[tuple[np.ndarray, np.ndarray, str, Style]],
    rows: int,
    width: int,
    lo_hi: tuple[int, int],
    both: str = "*",
    reference: tuple[np.ndarray, np.ndarray, str, Style] | None = None,
    gutter: int = GUTTER,
    overlaps: dict[frozenset, str] | None = None,
    used: set | None = None,
) -> list[Strip]:
    """`series` = [(x columns, values, glyph, style)] on a log10 y axis with labelled decades; a value lands in the
    row that holds its height (axes.row_of, the same rule as the decade labels). Where several series land in one
    cell, the glyph of that set of series in `overlaps` (frozenset of series indices) is drawn, else `both`; the sets
    that occurred are added to `used` (for the legend). `reference` is drawn underneath (e.g. a dotted line
    y = x). inf is drawn on the top row as '!'."""
    lo, hi = lo_hi
    rows = max(rows, 1)
    data_w = max(width - gutter, 0)
    grid: dict[tuple[int, int], tuple[str, Style]] = {}
    if reference is not None:
        for x, v in zip(*reference[:2]):
            r = axes.row_of(float(v), lo, hi, rows)
            if r is not None and 0 <= x < data_w:
                grid[(r, int(x))] = (reference[2], reference[3])
    seen: dict[tuple[int, int], set] = {}
    for si, (xs, vals, glyph, style) in enumerate(series):
        for x, v in zip(xs, vals):
            v = float(v)
            if math.isnan(v) or not (0 <= x < data_w):
                continue
            r = axes.row_of(v, lo, hi, rows)
            if r is None:
                continue
            key = (r, int(x))
            g = "!" if math.isinf(v) else glyph
            members = seen.setdefault(key, set())
            members.add(si)
            if len(members) > 1:
                ids = frozenset(members)
                grid[key] = ((overlaps or {}).get(ids, both), LABEL)
                if used is not None:
                    used.add(ids)
            else:
                grid[key] = (g, style)
    labels = {r: decade_label(d) for r, d in axes.decade_rows(lo, hi, rows).items()}
    out = []
    for r in range(rows):
        cells = [grid.get((r, c), (" ", None)) for c in range(data_w)]
        lab = labels.get(r)
        tick = f"{lab:>{gutter - 2}} ┤" if lab is not None else f"{'':>{gutter - 2}} │"
        segs = [Segment(tick[:gutter], LABEL), *_runs(cells)]
        out.append(Strip(segs).adjust_cell_length(width, NULL))
    return out


def axis_strip(width: int, ticks: list[tuple[int, str]], label: str = "", gutter: int = GUTTER) -> Strip:
    """An x axis: `ticks` = [(column, text)], the first and the last always placed, the others where they fit."""
    data_w = max(width - gutter, 0)
    axis = [" "] * data_w
    taken: list[tuple[int, int]] = []
    order = list(range(len(ticks)))
    order = order[:1] + order[-1:] + order[1:-1] if len(order) > 1 else order
    for i in order:
        x, txt = ticks[i]
        x = min(max(x - len(txt) // 2, 0), max(data_w - len(txt), 0))
        if any(x <= b and a <= x + len(txt) for a, b in taken):  # keep one blank between ticks
            continue
        axis[x : x + len(txt)] = list(txt)
        taken.append((x, x + len(txt)))
    segs = [Segment(f"{label:>{gutter - 2}} └"[:gutter], LABEL), Segment("".join(axis)[:data_w], DIM)]
    return Strip(segs).adjust_cell_length(width, NULL)
