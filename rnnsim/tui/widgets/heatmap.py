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
    BLANK,
    DIM,
    DIVERGING,
    GUTTER,
    LABEL,
    SHADES,
    _runs,
    aggregate,
    column_ranges,
    column_of_step,
    diverging_index,
    rgb,
    shade_index,
)


class Heatmap(Widget):
    """h_t of one sequence; `▀` carries two units (foreground = upper, background = lower)."""

    DEFAULT_CSS = """
    Heatmap {
        height: 1fr;
        min-height: 3;
        max-height: 18;
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
        how = f"{units}/{'row' if no_color else 'half-row'}"
        legend = "shade = |h| ' ░▒▓█'" if no_color else "blue − · + red"
        state = " (previous pass)" if self.stale else ""
        title = f" h_t, batch elem 0{state} · T={T}, {col_label}"
        if "steps" in col_label:
            title += " (max |h|)"
        title += f" · {how} · {legend} {self.scale_label}"
        self.title = title
        lines.append(Strip([Segment(title[:width], LABEL)]).adjust_cell_length(width))
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
                lines.append(Strip(segs).adjust_cell_length(width))
            return lines
        idx = diverging_index(data, self.scale)
        blank = rgb(BLANK)
        for r in range(0, len(groups), 2):
            top = idx[r]
            bot = idx[r + 1] if r + 1 < len(groups) else None
            cells = []
            for c in range(len(cols)):
                fg = blank if top[c] < 0 else rgb(DIVERGING[top[c]])
                if bot is None:
                    bg = None
                else:
                    bg = blank if bot[c] < 0 else rgb(DIVERGING[bot[c]])
                cells.append(("▀", Style(color=fg, bgcolor=bg)))
            label = f"u{groups[r][0]}"
            segs = [Segment(f"{label:>{GUTTER - 1}} "[:GUTTER], LABEL), *_runs(cells)]
            lines.append(Strip(segs).adjust_cell_length(width))
        return lines

    def render_line(self, y: int) -> Strip:
        size = (self.size.width, self.size.height, getattr(self.app, "no_color", False))
        if self._lines is None or self._lines_size != size:
            base = self.rich_style  # the widget's CSS colours under every segment (and no None styles)
            self._lines = [line.apply_style(base) for line in self._build()]
            self._lines_size = size
        if y < len(self._lines):
            return self._lines[y]
        return Strip.blank(self.size.width, self.rich_style)
