"""Shared drawing helpers: colour maps that survive 256 colours, column mapping, log bars.

Colours are picked on the xterm 6x6x6 cube (channel values 0, 95, 135, 175, 215, 255) so a
256-colour terminal (SSH drops COLORTERM) shows exactly the intended colour.  Every view
also has a glyph form (eighth blocks, shade ramps, numbers) so NO_COLOR stays readable.
"""

from __future__ import annotations

import math

import numpy as np
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from . import axes

GUTTER = 7  # left label column shared by every time-aligned row, so columns line up

# diverging map for h in [-1, 1]: blues below 0, dark grey at 0, reds/oranges above
_NEG = [(95, 175, 255), (0, 135, 215), (0, 95, 175), (0, 0, 135), (0, 0, 95)]  # strong -> weak
_POS = [(95, 0, 0), (135, 0, 0), (175, 0, 0), (215, 95, 0), (255, 175, 0)]  # weak -> strong
ZERO = (48, 48, 48)
DIVERGING = [*_NEG, ZERO, *_POS]  # 11 colours, index 5 = 0
_EDGES = np.array([0.08, 0.25, 0.45, 0.65, 0.85])  # |h|/scale bin edges
SHADES = " ░▒▓█"
EIGHTHS = " ▁▂▃▄▅▆▇█"
BLANK = (28, 28, 28)

BAR = Style(color=Color.from_rgb(0, 175, 215))
BAR_BAD = Style(color=Color.from_rgb(255, 95, 95), bold=True)
BAR_CLIP = Style(color=Color.from_rgb(255, 175, 0))
JAC_LOW = Style(color=Color.from_rgb(95, 135, 255))
JAC_HIGH = Style(color=Color.from_rgb(255, 135, 0))
GATE = Style(color=Color.from_rgb(95, 215, 95))
LABEL = Style(color=Color.from_rgb(175, 175, 175))
DIM = Style(color=Color.from_rgb(98, 98, 98))
HLINE = Style(color=Color.from_rgb(255, 215, 0))
CURSOR = Style(color=Color.from_rgb(255, 255, 255), bold=True)
_rgb_cache: dict[tuple, Color] = {}


def rgb(c: tuple[int, int, int]) -> Color:
    col = _rgb_cache.get(c)
    if col is None:
        col = _rgb_cache[c] = Color.from_rgb(*c)
    return col


def diverging_index(values: np.ndarray, scale: float) -> np.ndarray:
    """Index into DIVERGING for each value (NaN -> -1)."""
    v = np.asarray(values, dtype=float) / (scale if scale > 0 else 1.0)
    mag = np.searchsorted(_EDGES, np.abs(np.nan_to_num(v)), side="right")  # 0..5
    idx = np.where(v >= 0, 5 + mag, 5 - mag)
    return np.where(np.isnan(v), -1, idx).astype(int)


def shade_index(values: np.ndarray, scale: float) -> np.ndarray:
    v = np.abs(np.asarray(values, dtype=float)) / (scale if scale > 0 else 1.0)
    idx = np.searchsorted(_EDGES[[0, 1, 2, 4]], np.nan_to_num(v), side="right")  # 0..4
    return np.where(np.isnan(v), -1, idx).astype(int)


def column_ranges(T: int, width: int) -> tuple[list[tuple[int, int]], str]:
    """Map time steps to screen columns: stretch short sequences, compress long ones.

    Returns one (start, stop) step range per column and a label that says which.
    """
    width = max(width, 1)
    if T <= 0:
        return [], ""
    if T <= width:
        s = max(1, min(4, width // T))
        cols = [(c // s, c // s + 1) for c in range(T * s)]
        return cols, ("1 col = 1 step" if s == 1 else f"{s} cols = 1 step")
    k = math.ceil(T / width)
    cols = [(a, min(T, a + k)) for a in range(0, T, k)]
    return cols, f"1 col = {k} steps"


def column_of_step(cols: list[tuple[int, int]], t: int) -> int | None:
    for c, (a, b) in enumerate(cols):
        if a <= t < b:
            return c
    return None


def aggregate(values: np.ndarray, cols: list[tuple[int, int]], how: str = "max") -> np.ndarray:
    """One value per column: max (of non-NaN values), mean, or "absmax" (the signed value of largest |v|).

    Columns come from `column_ranges`: all one step wide, or consecutive groups of k steps.
    """
    values = np.asarray(values, dtype=float)
    n = len(cols)
    if n == 0:
        return np.zeros(0)
    starts = np.fromiter((a for a, _ in cols), dtype=np.intp, count=n)
    k = max(b - a for a, b in cols)
    if k == 1:
        return values[starts]
    T = cols[-1][1]
    padded = np.full(n * k, np.nan)
    padded[:T] = values[:T]
    block = padded.reshape(n, k)
    empty = np.isnan(block).all(axis=1)
    with np.errstate(all="ignore"):
        if how == "max":
            out = np.fmax.reduce(block, axis=1)
        elif how == "mean":
            cnt = (~np.isnan(block)).sum(axis=1)
            out = np.nansum(block, axis=1) / np.maximum(cnt, 1)
        else:
            mag = np.where(np.isnan(block), -1.0, np.abs(block))
            out = block[np.arange(n), np.argmax(mag, axis=1)]
    return np.where(empty, np.nan, out)


def fmt(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, float) and math.isnan(x):
        return "–"
    if isinstance(x, float) and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    ax = abs(x)
    if ax != 0 and (ax < 1e-3 or ax >= 1e4):
        return f"{x:.{max(digits - 1, 1)}e}"
    return f"{x:.{digits}g}" if ax >= 1 else f"{x:.{digits}f}"


def decade_label(d: int) -> str:
    return f"1e{d}"


def make_strip(segs: list[Segment], used: int, width: int) -> Strip:
    """A strip of exactly `width` cells from segments of single-width characters totalling `used` cells
    (skips measuring every segment again, which dominated the heatmap's build time)."""
    if used < width:
        segs.append(Segment(" " * (width - used), NULL))
        return Strip(segs, width)
    if used == width:
        return Strip(segs, width)
    return Strip(segs).crop(0, width)


def log_bars(
    cols_values: np.ndarray,
    rows: int,
    width: int,
    gutter: int = GUTTER,
    hlines: list[tuple[float, Style, str]] = (),
    styles: list[Style | None] | None = None,
    lo_hi: tuple[int, int] | None = None,
    ghost: np.ndarray | None = None,
) -> tuple[list[Strip], tuple[int, int]]:
    """Bars on a log10 axis with labelled decades, drawn with eighth blocks (the row rules: widgets/axes.py).

    `cols_values` has one value per data column (NaN = nothing drawn yet; inf = blown up, drawn as a full red
    bar). `hlines` = [(value, style, glyph)]: a reference line on the row of its value, drawn over every cell whose
    bar does not rise above the value (so it stays visible above lower bars); its value labels the row when no
    decade does. `ghost` (one value per column, optional) is drawn as ░ (DIM) where `cols_values` is NaN: the
    previous pass, until the new one replaces it. Returns `rows` strips of `width` cells and the decade range."""
    v = np.asarray(cols_values, dtype=float)
    gv = None if ghost is None else np.asarray(ghost, dtype=float)
    rows = max(rows, 1)
    if lo_hi is None:
        extra = [h for h, _, _ in hlines if h is not None and h > 0 and math.isfinite(h)]
        lo, hi = axes.auto_decades([v] + ([gv] if gv is not None else []), extra)
    else:
        lo, hi = lo_hi
    data_w = max(width - gutter, 0)
    labels = {r: decade_label(d) for r, d in axes.decade_rows(lo, hi, rows).items()}
    hline_rows: dict[int, tuple[Style, str, float, float]] = {}
    for h, style, glyph in hlines:
        if h is None or not (h > 0) or not math.isfinite(h):
            continue
        hline_rows[axes.row_of(h, lo, hi, rows)] = (style, glyph, axes.height(h, lo, hi, rows) * 8, h)
    n = min(data_w, len(v))
    # plain Python lists: per-cell numpy scalar access dominated this loop
    lev = axes.eighths(v[:n], lo, hi, rows).tolist()
    nan = np.isnan(v[:n]).tolist()
    vals = v[:n].tolist()
    glev = axes.eighths(gv[:n], lo, hi, rows).tolist() if gv is not None and len(gv) >= n else None
    full_style = [
        BAR_BAD if bad else (styles[c] if styles and styles[c] else BAR)
        for c, bad in enumerate(np.isinf(v[:n]).tolist())
    ]
    part_style = [styles[c] if styles and styles[c] else BAR for c in range(n)]
    strips = []
    for r in range(rows):
        level_floor = (rows - 1 - r) * 8
        line = hline_rows.get(r)
        label = labels.get(r)
        if label is not None:
            segs = [Segment(f"{label:>{gutter - 2}} ┤"[:gutter], LABEL)]
        elif line is not None:
            segs = [Segment(f"{fmt(line[3])[:gutter - 2]:>{gutter - 2}} ┤"[:gutter], line[0])]
        else:
            segs = [Segment(f"{'':>{gutter - 2}} │"[:gutter], DIM)]
        empty_cell = (" ", None) if line is None else (line[1], line[0])
        cells: list[tuple[str, Style | None]] = []
        for c in range(n):
            fill = lev[c] - level_floor
            if line is not None and (nan[c] or vals[c] <= line[3]):
                cells.append(empty_cell)
            elif nan[c] or fill <= 0:
                if glev is not None and nan[c] and glev[c] - level_floor > 0:
                    cells.append(("░", DIM))
                else:
                    cells.append(empty_cell)
            elif fill >= 8:
                cells.append(("█", full_style[c]))
            else:
                cells.append((EIGHTHS[fill], part_style[c]))
        segs.extend(_runs(cells))
        pad = data_w - n
        if pad > 0:
            segs.append(Segment(empty_cell[0] * pad, empty_cell[1] if empty_cell[1] is not None else NULL))
        strips.append(make_strip(segs, gutter + n + max(pad, 0), width))
    return strips, (lo, hi)


NULL = Style()  # an explicit empty style: Textual's NO_COLOR filter needs a style on every segment


def _runs(cells: list[tuple[str, Style | None]]) -> list[Segment]:
    """Merge neighbouring cells that share a style object into one segment (fewer bytes out)."""
    out: list[Segment] = []
    if not cells:
        return out
    buf: list[str] = []
    cur = cells[0][1]
    for ch, st in cells:
        if st is cur:
            buf.append(ch)
        else:
            out.append(Segment("".join(buf), NULL if cur is None else cur))
            buf, cur = [ch], st
    out.append(Segment("".join(buf), NULL if cur is None else cur))
    return out


def glyph_row(
    values: np.ndarray, ramp_index: np.ndarray, styles: list[Style | None], label: str, width: int
) -> Strip:
    cells = []
    for c in range(min(len(values), width - GUTTER)):
        i = ramp_index[c]
        cells.append((" ", None) if i < 0 else (EIGHTHS[i], styles[c]))
    segs = [Segment(f"{label:>{GUTTER - 1}} "[:GUTTER], LABEL), *_runs(cells)]
    return Strip(segs).adjust_cell_length(width, NULL)


class CachedLines:
    """Line-API mixin: the widget's lines, built by ``_build()`` once per widget size and kept until the data
    change (a widget drops them by setting ``self._lines = None``), with the widget's background applied."""

    _lines: list[Strip] | None = None
    _lines_size: tuple[int, int] | None = None

    def _build(self) -> list[Strip]:
        raise NotImplementedError

    def render_line(self, y: int) -> Strip:
        size = (self.size.width, self.size.height)
        if self._lines is None or self._lines_size != size:
            base = self.rich_style  # the widget's background under every cell (few segments: cheap)
            self._lines = [line.apply_style(base) for line in self._build()]
            self._lines_size = size
        if y < len(self._lines):
            return self._lines[y]
        return Strip.blank(self.size.width, self.rich_style)
