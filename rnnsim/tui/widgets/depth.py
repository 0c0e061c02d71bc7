"""The depth × time map of a stacked network: log10 ‖dL/dh_t^l‖, one row per layer (the last layer on top, as the
network is drawn), one column per time step with the heatmap's column mapping, so the gradient can be seen dying
back in time (to the left) and down in depth (to the bottom rows).

Colour: a sequential ramp of eight colours on the xterm 6×6×6 cube over the decades shown, in levels aligned on
whole decades (the title is the labelled decade scale); NO_COLOR: the eighth-block glyph ramp ▁..█ (height =
level), with the same scale.
Not reached by BPTT yet: ·; non-finite: !.
"""

from __future__ import annotations

import math

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

from .common import (
    BAR_BAD, CURSOR, DIM, EIGHTHS, GUTTER, LABEL, NULL, CachedLines, _runs, aggregate, column_ranges, rgb,
)

#: eight colours from small (dark blue) to large (bright yellow): each stays distinct in 256 colours
RAMP = [(0, 0, 135), (0, 0, 215), (0, 95, 215), (0, 175, 215), (0, 215, 135), (135, 215, 0), (255, 215, 0),
        (255, 255, 175)]
_STYLES = [Style(color=rgb(c)) for c in RAMP]
LEVELS = len(RAMP)


def scale(lo: int, hi: int) -> tuple[float, int]:
    """(step, n): n levels of ``step`` decades each from the decade lo up to hi, aligned on whole decades (two or
    more levels per decade when few decades are shown, one level per ⌈decades/8⌉ when many)."""
    span = max(hi - lo, 1)
    if span <= LEVELS:
        per = LEVELS // span
        return 1.0 / per, span * per
    step = math.ceil(span / LEVELS)
    return float(step), math.ceil(span / step)


def ramp_index(i: int, n: int) -> int:
    """The colour (and glyph) of level i of n: spread over the whole ramp."""
    return 0 if n <= 1 else round(i * (LEVELS - 1) / (n - 1))


def levels(values: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """The level 0..n−1 of ``scale(lo, hi)`` of each value by its log10; −1 NaN (not reached), −2 inf (blown
    up); 0 for an exact zero."""
    step, n = scale(lo, hi)
    v = np.asarray(values, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = (np.log10(np.where(v > 0, v, np.nan)) - lo) / step
    idx = np.clip(np.floor(np.nan_to_num(frac, nan=0.0, posinf=n - 1.0, neginf=0.0)), 0, n - 1).astype(int)
    idx = np.where(np.isnan(v), -1, idx)
    return np.where(np.isinf(v), -2, idx)


def decade_range(depth: np.ndarray) -> tuple[int, int]:
    """(lo, hi): the decades that hold every finite positive value (at least one decade apart)."""
    fin = depth[np.isfinite(depth) & (depth > 0)]
    if not fin.size:
        return -3, 0
    lo, hi = math.floor(math.log10(float(fin.min()))), math.ceil(math.log10(float(fin.max())))
    return lo, max(hi, lo + 1)


def legend(lo: int, hi: int, no_color: bool, room: int) -> list[Segment]:
    """The labelled decade scale: one swatch (NO_COLOR: glyph) per level, each whole decade's start labelled."""
    step, n = scale(lo, hi)
    segs: list[Segment] = []
    used = 0
    for i in range(n):
        start = lo + i * step
        text = f"1e{round(start)}" if abs(start - round(start)) < 1e-9 else ""
        k = ramp_index(i, n)
        piece = (EIGHTHS[k + 1] if no_color else "█") + text
        if used + len(piece) + 1 > room:
            break
        segs += [Segment(piece[0], NULL if no_color else _STYLES[k]), Segment(piece[1:], LABEL)]
        used += len(piece)
    if used + len(f"…1e{hi}") <= room:
        segs.append(Segment(f"…1e{hi}", LABEL))
    return segs


class DepthMap(CachedLines, Widget):
    DEFAULT_CSS = """
    DepthMap { height: 4; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.depth: np.ndarray | None = None   # (N, T), row 0 = layer 0
        self.shown = 0
        self.cursor = 0
        self._key = None
        self.decades: tuple[int, int] | None = None

    def set_data(self, depth, shown: int, cursor: int, key) -> bool:
        k = (key, shown, cursor, None if depth is None else depth.shape)
        if k == self._key:
            return False
        self._key = k
        self.depth, self.shown, self.cursor = depth, shown, cursor
        self._lines = None
        self.refresh()
        return True

    def _build(self) -> list[Strip]:
        width = self.size.width
        no_color = getattr(self.app, "no_color", False)
        depth = self.depth
        if depth is None or depth.ndim != 2 or depth.shape[1] == 0:
            return [Strip([Segment(" depth × time: one layer only", DIM)]).adjust_cell_length(width, NULL)]
        N, T = depth.shape
        cols, _ = column_ranges(T, width - GUTTER)
        data = np.stack([aggregate(depth[layer], cols, "max") for layer in range(N)])
        lo, hi = decade_range(data)
        self.decades = (lo, hi)
        title = " log10‖dL/dh_t^l‖ depth×time (max) "
        lines = [Strip([Segment(title, LABEL), *legend(lo, hi, no_color, width - len(title))]
                       ).adjust_cell_length(width, NULL)]
        idx = levels(data, lo, hi)
        n_levels = scale(lo, hi)[1]
        c_cur = next((c for c, (a, b) in enumerate(cols) if a <= self.cursor < b), None)
        for layer in reversed(range(N)):   # the last layer on top, as the network is drawn
            mark = "▸" if layer == self.shown else " "
            cells = []
            for c, i in enumerate(idx[layer].tolist()[: width - GUTTER]):
                if i == -1:
                    cells.append(("│" if c == c_cur else "·", CURSOR if c == c_cur else DIM))
                elif i == -2:
                    cells.append(("!", BAR_BAD))
                else:
                    k = ramp_index(i, n_levels)
                    cells.append((EIGHTHS[k + 1], None) if no_color else ("█", _STYLES[k]))
            label = f"L{layer + 1}{mark}"   # 1-based, as the status line's "layer 2/3"
            segs = [Segment(f"{label:>{GUTTER - 1}} "[:GUTTER], CURSOR if layer == self.shown else LABEL),
                    *_runs(cells)]
            lines.append(Strip(segs).adjust_cell_length(width, NULL))
        return lines[: max(self.size.height, 1)]
