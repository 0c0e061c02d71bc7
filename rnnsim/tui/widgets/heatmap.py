"""Hidden-state heatmap: rows = units, one column per time step, two units per character.

Drawn with the line API: every line is built once per data change and cached, so
`render_line` is a list lookup; the widget refreshes only when its data key changes.
"""

from __future__ import annotations

import math

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

from .common import (
    NULL,
    BLANK,
    DIM,
    DIVERGING,
    GUTTER,
    LABEL,
    SHADES,
    _runs,
    make_strip,
    aggregate,
    column_ranges,
    column_of_step,
    diverging_index,
    rgb,
    shade_index,
)


_STYLES: dict[tuple[int, int | None], Style] = {}


def _style(top: int, bottom: int | None) -> Style:
    """`▀` style for two colour indices (-1 = not reached yet); cached, so equal cells share one object."""
    key = (top, bottom)
    st = _STYLES.get(key)
    if st is None:
        fg = rgb(BLANK) if top < 0 else rgb(DIVERGING[top])
        bg = None if bottom is None else (rgb(BLANK) if bottom < 0 else rgb(DIVERGING[bottom]))
        st = _STYLES[key] = Style(color=fg, bgcolor=bg)
    return st


def rows_needed(H: int, available: int, no_color: bool) -> int:
    """Height (title included) that shows H units in at most `available` rows without blank rows."""
    per_char = 1 if no_color else 2
    rows = max(available - 1, 1)
    k = max(1, math.ceil(H / (rows * per_char)))
    return 1 + math.ceil(math.ceil(H / k) / per_char)


def heatmap_title(T: int, col_label: str, units: str, no_color: bool, stale: bool, scale_label: str,
                  width: int, layer_label: str = "") -> str:
    """The heatmap's title: the longest wording that fits in `width` (the colour legend and scale always in it)."""
    legend = "shade = |h| ' ░▒▓█'" if no_color else "blue − · + red"
    steps = "steps" in col_label
    short = col_label
    if col_label.startswith("1 col = "):
        short = col_label[len("1 col = "):] + "/col"
    elif " cols = 1 step" in col_label:
        short = col_label.split(" ")[0] + " cols/step"
    full = (f" {layer_label}h_t, batch elem 0{' (previous pass)' if stale else ''} · T={T}, {col_label}"
            f"{' (max |h|)' if steps else ''} · {units}/{'row' if no_color else 'half-row'} · {legend} {scale_label}")
    compact = (f" {layer_label}h_t elem 0{' (previous pass)' if stale else ''} · T={T}, {short}{' (max|h|)' if steps else ''}"
               f" · {units}/{'row' if no_color else '½row'} · {legend} {scale_label}")
    shortest = (f" {layer_label}h_t{' (prev.)' if stale else ''} · T={T}, {short} · {units}/{'row' if no_color else '½row'}"
                f" · {'|h| ░▒▓█' if no_color else 'blue−+red'} {scale_label}")
    for t in (full, compact):
        if len(t) <= width:
            return t
    return shortest


class Heatmap(Widget):
    """h_t of one sequence; `▀` carries two units (foreground = upper, background = lower)."""

    DEFAULT_CSS = """
    Heatmap {
        height: 9;
        min-height: 3;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.hidden: np.ndarray | None = None  # (T, H)
        self.filled = 0
        self.scale = 1.0
        self.scale_label = "tanh range ±1"
        self.cursor = 0
        self.stale = False
        self._key = None
        self._lines: list[Strip] | None = None
        self._lines_size = None
        self.title = ""
        self.layer_label = ""   # "layer 2/3 " for a stack (set by the Dynamics view)

    def set_data(self, hidden, filled: int, bounded: bool, cursor: int, stale: bool, key) -> bool:
        """Store new data; refresh only when `key` (data version, cursor, ...) changed."""
        k = (key, filled, bounded, cursor, stale)
        if k == self._key:
            return False
        self._key = k
        self.hidden = hidden
        self.filled = filled
        self.cursor = cursor
        self.stale = stale
        if bounded or hidden is None:
            self.scale, self.scale_label = 1.0, "±1"
        else:
            m = float(np.nanmax(np.abs(hidden[:filled]))) if filled else 1.0
            self.scale = max(1.0, m if math.isfinite(m) else 1.0)
            self.scale_label = f"±{self.scale:.3g} (max |h|)"
        self._lines = None
        self.refresh()
        return True

    def on_resize(self) -> None:
        self._lines = None

    def _build(self) -> list[Strip]:
        width, height = self.size.width, self.size.height
        no_color = getattr(self.app, "no_color", False)
        lines: list[Strip] = []
        hidden = self.hidden
        if hidden is None or hidden.ndim != 2 or hidden.shape[0] == 0:
            lines.append(Strip([Segment(" h_t: waiting for the first frame…", DIM)]))
            return lines
        T, H = hidden.shape
        cols, col_label = column_ranges(T, width - GUTTER)
        rows = max(height - 1, 1)
        per_char = 1 if no_color else 2
        k = max(1, math.ceil(H / (rows * per_char)))  # units per cell half
        groups = [(a, min(H, a + k)) for a in range(0, H, k)]
        # (groups, columns) of signed max-|h| values; NaN where the forward has not reached
        data = np.full((len(groups), len(cols)), np.nan)
        filled = self.filled
        for g, (a, b) in enumerate(groups):
            series = np.max(np.abs(hidden[:, a:b]), axis=1) * np.sign(
                hidden[np.arange(T), a + np.argmax(np.abs(hidden[:, a:b]), axis=1)]
            ) if b - a > 1 else hidden[:, a].astype(float)
            series = np.where(np.arange(T) < filled, series, np.nan)
            data[g] = aggregate(series, cols, "absmax")
        ccol = column_of_step(cols, self.cursor)
        units = "1 unit" if k == 1 else f"{k} units"
        title = heatmap_title(T, col_label, units, no_color, self.stale, self.scale_label, width,
                              self.layer_label)
        self.title = title
        lines.append(Strip([Segment(title[:width], LABEL)]).adjust_cell_length(width, NULL))
        if no_color:
            idx = shade_index(data, self.scale)
            for g in range(len(groups)):
                label = f"u{groups[g][0]}"
                cells = []
                for c in range(len(cols)):
                    i = idx[g, c]
                    ch = "·" if i < 0 else SHADES[i]
                    if c == ccol and i <= 0:
                        ch = "│"
                    cells.append((ch, None))
                segs = [Segment(f"{label:>{GUTTER - 1}} "[:GUTTER], LABEL), *_runs(cells)]
                lines.append(Strip(segs).adjust_cell_length(width, NULL))
            return lines
        idx = diverging_index(data, self.scale)
        for r in range(0, len(groups), 2):
            top = idx[r].tolist()
            if r + 1 < len(groups):
                cells = [("▀", _style(a, b)) for a, b in zip(top, idx[r + 1].tolist())]
            else:
                cells = [("▀", _style(a, None)) for a in top]
            label = f"u{groups[r][0]}"
            segs = [Segment(f"{label:>{GUTTER - 1}} "[:GUTTER], LABEL), *_runs(cells)]
            lines.append(make_strip(segs, GUTTER + len(cells), width))
        return lines

    def render_line(self, y: int) -> Strip:
        size = (self.size.width, self.size.height, getattr(self.app, "no_color", False))
        if self._lines is None or self._lines_size != size:
            self._lines = self._build()
            # the widget's background under the label, padding and unreached cells (the ▀ cells set both colours)
            base = self.rich_style
            self._lines = [
                Strip([Segment(seg.text, base + seg.style) if seg.style is NULL or seg.style is LABEL
                       or seg.style.bgcolor is None else seg for seg in line], line.cell_length)
                for line in self._lines
            ]
            self._lines_size = size
        if y < len(self._lines):
            return self._lines[y]
        return Strip.blank(self.size.width, self.rich_style)
