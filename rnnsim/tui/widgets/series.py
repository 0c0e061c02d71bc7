"""Per-iteration series on a log axis (loss, gradient norm) with reference lines and event marks."""

from __future__ import annotations

import math

import numpy as np
from rich.segment import Segment
from textual.strip import Strip
from textual.widget import Widget

from .common import NULL, BAR_BAD, BAR_CLIP, DIM, GUTTER, HLINE, LABEL, CachedLines, _runs, log_bars


class SeriesPlot(CachedLines, Widget):
    """Bars per iteration (log10 axis), an optional horizontal reference line, and a mark row:
    `c` = the update was clipped, `✗` = a non-finite value appeared."""

    DEFAULT_CSS = """
    SeriesPlot {
        height: 1fr;
        min-height: 5;
    }
    """

    def __init__(self, title: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.title = title
        self.values = np.zeros(0)
        self.clipped = np.zeros(0, bool)
        self.finite = np.zeros(0, bool)
        self.hline: float | None = None
        self.hline_label = ""
        self.note = ""
        self._key = None
        self._lines: list[Strip] | None = None
        self._lines_size = None

    def set_data(self, values, clipped, finite, hline, hline_label, note, key) -> bool:
        k = (key, hline, note)
        if k == self._key:
            return False
        self._key = k
        self.values = np.asarray(values, float)
        self.clipped = np.asarray(clipped, bool)
        self.finite = np.asarray(finite, bool)
        self.hline, self.hline_label, self.note = hline, hline_label, note
        self._lines = None
        self.refresh()
        return True

    def _build(self) -> list[Strip]:
        width, height = self.size.width, self.size.height
        n = len(self.values)
        data_w = max(width - GUTTER, 1)
        k = max(1, math.ceil(n / data_w))
        cols = [(a, min(n, a + k)) for a in range(0, n, k)]
        vals = np.full(len(cols), np.nan)
        clip = np.zeros(len(cols), bool)
        bad = np.zeros(len(cols), bool)
        for c, (a, b) in enumerate(cols):
            seg = self.values[a:b]
            fin = seg[np.isfinite(seg)]
            vals[c] = fin[-1] if fin.size else (np.inf if seg.size else np.nan)
            clip[c] = bool(self.clipped[a:b].any()) if self.clipped.size else False
            bad[c] = (not bool(self.finite[a:b].all())) if self.finite.size else False
        scale = "1 col = 1 iteration" if k == 1 else f"1 col = {k} iterations (last)"
        title = f" {self.title} · {n} iteration{'' if n == 1 else 's'} · {scale}"
        if self.hline is not None and math.isfinite(self.hline):
            title += f" · ╌ {self.hline_label} {self.hline:.3g}"
        if self.note:
            title += f" · {self.note}"
        lines = [Strip([Segment(title[:width], LABEL)]).adjust_cell_length(width, NULL)]
        rows = max(height - 2, 1)
        if n == 0:
            lines.append(Strip([Segment(" " * GUTTER + "no updates yet: press t to train, or step through an iteration", DIM)]).adjust_cell_length(width, NULL))
            return lines
        styles = [BAR_BAD if b else (BAR_CLIP if c else None) for c, b in zip(clip, bad)]
        hl = [(self.hline, HLINE, "╌")] if self.hline is not None else []
        bars, _ = log_bars(vals, rows, width, hlines=hl, styles=styles)
        lines.extend(bars)
        marks = [("✗", BAR_BAD) if b else (("c", BAR_CLIP) if c else (" ", None)) for c, b in zip(clip, bad)]
        segs = [Segment(f"{'events':>{GUTTER - 1}} "[:GUTTER], LABEL), *_runs(marks[:data_w])]
        lines.append(Strip(segs).adjust_cell_length(width, NULL))
        return lines[: max(height, 1)]

