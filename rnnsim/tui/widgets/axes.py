"""The arithmetic of the plots, as pure functions (tests call them directly): log10 axes and their rows, decade
labels, the lock that keeps an axis fixed (key y), binning of per-iteration series that never hides an event,
the ‖J_t‖ glyph ramp, and titles that wrap instead of being cut.

One rule maps a value to a row everywhere (bars, markers, reference lines, decade labels): on a plot of `rows`
rows over decades lo..hi, a value v is at height pos = (log10 v − lo) / (hi − lo) · rows rows above the bottom,
and it is drawn in the row that holds that height: ceil(pos) − 1 counted from the bottom (a value exactly at a
row's top edge belongs to that row). A decade label sits on the row of its decade, so a line at chance = 1 is on
the row labelled 1e0 and a loss of 1.06 is drawn above it.
"""

from __future__ import annotations

import math

import numpy as np

MARGIN = 0.3  # decades kept free between the data (and reference lines) and the edges of an automatic axis
MIN_SPAN = 2  # at least two decades on an automatic axis: at least one labelled decade above the bottom
MAX_SPAN = 30  # an automatic axis shows at most 30 decades (from the top); smaller values sit on the bottom


def _snap(x: float) -> float:
    r = round(x)
    return float(r) if abs(x - r) < 1e-9 else x


def height(v: float, lo: int, hi: int, rows: int) -> float:
    """Height of value v above the plot's bottom, in rows (NaN for v ≤ 0 or NaN; +inf for +inf)."""
    if not (v > 0):
        return math.nan
    if math.isinf(v):
        return math.inf
    return _snap((math.log10(v) - lo) / (hi - lo) * rows)


def row_of_height(pos: float, rows: int) -> int:
    """The row (0 = top) that holds height `pos`: ceil(pos) − 1 from the bottom, clamped to the plot."""
    if math.isinf(pos):
        return 0
    from_bottom = math.ceil(pos) - 1
    return rows - 1 - min(rows - 1, max(0, from_bottom))


def row_of(v: float, lo: int, hi: int, rows: int) -> int | None:
    """The row (0 = top) where value v is drawn, None when v is not drawable (≤ 0, NaN)."""
    pos = height(v, lo, hi, rows)
    return None if math.isnan(pos) else row_of_height(pos, rows)


def eighths(values: np.ndarray, lo: int, hi: int, rows: int) -> np.ndarray:
    """Bar heights in eighths of a row (int, 0..8·rows): the eighth that holds the value's height (rounded up, so a
    value above a reference line is drawn above it); a value below the axis but > 0 gets one eighth; inf the top."""
    v = np.asarray(values, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        e = (np.log10(np.where(v > 0, v, np.nan)) - lo) / (hi - lo) * rows * 8
    with np.errstate(invalid="ignore"):
        snapped = np.where(np.abs(e - np.round(e)) < 1e-6, np.round(e), e)
        lev = np.ceil(np.nan_to_num(snapped, nan=0.0, posinf=rows * 8, neginf=0.0))
    lev = np.clip(lev, 0, rows * 8)
    lev = np.where((v > 0) & (lev < 1), 1, lev)  # tiny but present
    lev = np.where(np.isinf(v) & (v > 0), rows * 8, lev)
    return np.where(np.isnan(v), 0, lev).astype(int)


def decade_rows(lo: int, hi: int, rows: int) -> dict[int, int]:
    """{row: decade} of the labelled decades: every k-th decade down from hi (k = the smallest step that gives each
    its own row), each on the row of its own height. The bottom edge (lo) holds no row of its own: not labelled."""
    rows = max(rows, 1)
    span = hi - lo
    k = max(1, math.ceil(span / rows))
    out: dict[int, int] = {}
    for d in range(hi, lo, -k):
        out[row_of_height(_snap((d - lo) / span * rows), rows)] = d
    return out


def auto_decades(arrays, extra=(), margin: float = MARGIN) -> tuple[int, int]:
    """Decade range lo..hi of the finite positive values in `arrays` and `extra` (reference lines), with `margin`
    decades free at both ends, at least MIN_SPAN and at most MAX_SPAN decades (from the top)."""
    pool = [np.asarray(a, float).ravel() for a in arrays] + [np.asarray(list(extra), float).ravel()]
    v = np.concatenate(pool) if pool else np.zeros(0)
    v = v[np.isfinite(v) & (v > 0)]
    if not v.size:
        return -3, 0
    lo = math.floor(math.log10(float(v.min())) - margin)
    hi = math.ceil(math.log10(float(v.max())) + margin)
    if hi - lo < MIN_SPAN:
        lo = hi - MIN_SPAN
    return max(lo, hi - MAX_SPAN), hi


class AxisLock:
    """Key y: lock every log axis at the range it has when it is next drawn, until y again. Each plot asks
    `decades(name, auto)` with its automatic range; while locked it gets the range it had the first time."""

    def __init__(self) -> None:
        self.on = False
        self.version = 0
        self.ranges: dict[str, tuple[int, int]] = {}

    def toggle(self) -> bool:
        self.on = not self.on
        self.ranges.clear()
        self.version += 1
        return self.on

    def decades(self, name: str, auto: tuple[int, int]) -> tuple[int, int]:
        if not self.on:
            return auto
        return self.ranges.setdefault(name, auto)

    def note(self, name: str) -> str:
        """The title's words for a locked axis ("axis locked 1e-9..1e1 (y)"), or ""."""
        r = self.ranges.get(name) if self.on else None
        return f"axis locked 1e{r[0]}..1e{r[1]} (y)" if r else ""


UNLOCKED = AxisLock()  # the default of the plots' builders: never locked


# --------------------------------------------------------------------------------------- per-iteration series
def bin_series(values, clipped, finite, width: int, how: str = "max", k: int | None = None, positions=None):
    """One column per bin of k = ceil(n / width) consecutive iterations (bins start at iteration 0; `k` given: that).

    Returns (values, clipped, bad, k): per bin the maximum (`how` = "max", for norms: a spike is never hidden), the
    minimum ("min") or the last value ("last"); a bin holding a non-finite value shows inf (a full red bar).
    `clipped` / `bad` are True for a bin holding any clipped / any non-finite iteration.

    `positions` (optional, increasing): the last iteration (1-based) of each entry, when an entry may stand for
    several iterations (a bounded history merges old ones: its entry already holds their max ‖g‖, last loss and
    events). Entries are then binned by iteration, k = ceil(last iteration / width), and a bin no entry ends in
    is NaN (nothing drawn)."""
    v = np.asarray(values, float)
    n = len(v)
    if n == 0:
        return np.zeros(0), np.zeros(0, bool), np.zeros(0, bool), 1
    if positions is not None and len(positions) == n:
        pos = np.asarray(positions, np.int64)
        total = int(pos[-1])
        k = max(1, math.ceil(total / max(width, 1))) if k is None else max(1, int(k))
        ids = (pos - 1) // k
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        sub = _reduce(v, clipped, finite, starts, how)
        ncol = math.ceil(total / k)
        out = np.full(ncol, np.nan), np.zeros(ncol, bool), np.zeros(ncol, bool)
        at = ids[starts]
        for dst, src in zip(out, sub):
            dst[at] = src
        return out[0], out[1], out[2], k
    k = max(1, math.ceil(n / max(width, 1))) if k is None else max(1, int(k))
    out, clip, bad = _reduce(v, clipped, finite, np.arange(0, n, k), how)
    return out, clip, bad, k


def _reduce(v, clipped, finite, starts, how):
    """Per run of entries starting at `starts`: the value (max / min / last; inf if any is non-finite) and the
    any-clipped / any-non-finite flags."""
    n = len(v)
    fin = np.isfinite(v)
    if how == "max":
        out = np.maximum.reduceat(np.where(fin, v, np.inf), starts)
    elif how == "min":
        out = np.minimum.reduceat(np.where(fin, v, np.inf), starts)
    elif how == "last":
        idx = np.maximum.reduceat(np.where(fin, np.arange(n), -1), starts)
        out = np.where(idx >= 0, v[np.maximum(idx, 0)], np.inf)
    else:
        raise ValueError(f"how must be max, min or last, not {how!r}")
    out = np.where(np.logical_and.reduceat(fin, starts), out, np.inf)  # a non-finite value: the bin's bar is red
    c = np.asarray(clipped, bool)
    f = np.asarray(finite, bool)
    clip = np.logical_or.reduceat(c[:n], starts) if c.size >= n else np.zeros(len(starts), bool)
    bad = ~np.logical_and.reduceat(f[:n], starts) if f.size >= n else np.zeros(len(starts), bool)
    bad = bad | ~np.logical_and.reduceat(fin, starts)
    return out, clip, bad


# --------------------------------------------------------------------------------------- the ‖J_t‖ row
#: ‖J_t‖ glyph ramp: four heights below 1 (shrinking), four from 1 up (not shrinking); edges between the glyphs
JAC_EDGES = (0.5, 0.8, 0.95, 1.0, 1.05, 1.25, 2.0)
JAC_LEGENDS = (
    "▁ .5 ▂ .8 ▃ .95 ▄ 1 ▅ 1.05 ▆ 1.25 ▇ 2 █",
    "▁.5▂.8▃.95▄1▅1.05▆1.25▇2█",
    "▃.95▄ 1 ▅1.05▆",
    "▄ 1 ▅",
)


def jacobian_ramp(values) -> np.ndarray:
    """Index into EIGHTHS (1..8; −1 = NaN) of each ‖J_t‖: ▁▂▃▄ below 1, ▅▆▇█ from 1 (edges JAC_EDGES)."""
    v = np.asarray(values, float)
    idx = np.searchsorted(np.array(JAC_EDGES), np.nan_to_num(v, nan=0.0, posinf=1e300), side="right") + 1
    return np.where(np.isnan(v), -1, idx).astype(int)


def jacobian_legend(room: int) -> str:
    """The longest legend of the ramp that fits in `room` cells ("" if none does)."""
    for s in JAC_LEGENDS:
        if len(s) <= room:
            return s
    return ""


# --------------------------------------------------------------------------------------- titles
def title_lines(parts: list[str], width: int, max_lines: int = 2, extra: tuple[str, ...] = ()) -> list[str]:
    """Join `parts` with " · " into lines of at most `width` cells, breaking only between parts (a part longer
    than a line is broken at spaces); at most `max_lines` lines, the last one cut only if nothing else fits.
    `extra` parts follow `parts` when they fit in `max_lines` lines, and are left out (last first) when not."""
    extra = tuple(extra)
    while extra:
        lines = _pack(list(parts) + list(extra), max(width, 1))
        if len(lines) <= max_lines:
            return lines
        extra = extra[:-1]
    lines = _pack(list(parts), max(width, 1))
    if len(lines) > max_lines:
        lines = lines[: max_lines - 1] + [" " + " · ".join(s.strip() for s in lines[max_lines - 1:])]
    return [ln[:width] for ln in lines]


def _pack(parts: list[str], width: int) -> list[str]:
    words: list[tuple[str, str]] = []  # (text, what joins it to the text before: " · " or " ")
    for p in parts:
        p = p.strip()
        if not p:
            continue
        if len(p) + 1 <= width:
            words.append((p, " · "))
            continue
        cur, sep = "", " · "
        for w in p.split(" "):
            if cur and len(cur) + 1 + len(w) + 1 > width:
                words.append((cur, sep))
                cur, sep = w, " "
            else:
                cur = f"{cur} {w}" if cur else w
        if cur:
            words.append((cur, sep))
    lines: list[str] = []
    cur = ""
    for w, sep in words:
        cand = f"{cur}{sep}{w}" if cur else f" {w}"
        if len(cand) <= width or not cur:
            cur = cand
        else:
            lines.append(cur)
            cur = f" {w}"
    if cur:
        lines.append(cur)
    return lines
