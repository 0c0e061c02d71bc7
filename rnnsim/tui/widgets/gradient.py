"""Gradient profile ‖dL/dh_t‖ on a log axis, per-step Jacobian norms, gate means, time axis.

Columns line up with the heatmap above (same `column_ranges`, same gutter), so a column is
one time step (or a fixed group of steps) in every row of the Dynamics view.
"""

from __future__ import annotations

import math

import numpy as np
from rich.segment import Segment
from textual.strip import Strip
from textual.widget import Widget

from rnnsim.cells import CELLS
from rnnsim.cells.base import forget_gate

from .common import (
    CachedLines,
    NULL,
    CURSOR,
    DIM,
    GATE,
    GUTTER,
    JAC_HIGH,
    JAC_LOW,
    LABEL,
    aggregate,
    column_of_step,
    column_ranges,
    glyph_row,
    log_bars,
)

class GradientPanel(CachedLines, Widget):
    DEFAULT_CSS = """
    GradientPanel {
        height: 1fr;
        min-height: 6;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.profile: np.ndarray | None = None
        self.jacobian: np.ndarray | None = None
        self.gates: dict = {}
        self.cell = "rnn"
        self.filled = 0
        self.cursor = 0
        self.decay_text = ""
        self._key = None
        self._lines: list[Strip] | None = None
        self._lines_size = None
        self.decades: tuple[int, int] | None = None

    def set_data(self, profile, jacobian, gates, cell, filled, cursor, decay_text, key) -> bool:
        k = (key, filled, cursor, cell)
        if k == self._key:
            return False
        self._key = k
        self.profile, self.jacobian, self.gates = profile, jacobian, gates or {}
        self.cell, self.filled, self.cursor, self.decay_text = cell, filled, cursor, decay_text
        self._lines = None
        self.refresh()
        return True

    def _build(self) -> list[Strip]:
        width, height = self.size.width, self.size.height
        prof = self.profile
        if prof is None or len(prof) == 0:
            return [Strip([Segment(" ‖dL/dh_t‖: waiting for the first frame…", DIM)])]
        T = len(prof)
        cols, col_label = column_ranges(T, width - GUTTER)
        gate_name = forget_gate(CELLS[self.cell]) if self.cell in CELLS else None   # the cell says which gate
        gate = self.gates.get(gate_name) if gate_name else None
        extra = 2 + (1 if gate is not None else 0)  # jacobian row, axis row, gate row
        rows = max(height - 1 - extra, 1)
        vals = aggregate(np.asarray(prof, float), cols, "max")
        how = "" if "steps" not in col_label else " (max)"
        title = f" ‖dL/dh_t‖ batch mean, log axis, BPTT fills ←{how}"
        if self.decay_text:
            title += f" · {self.decay_text}"
        lines = [Strip([Segment(title[:width], LABEL)]).adjust_cell_length(width, NULL)]
        bars, self.decades = log_bars(vals, rows, width)
        lines.extend(bars)
        # Jacobian norms: eighth-block height, linear from 0 to 2 (a full block = 2 or more;
        # a half block = 1, the edge between shrinking and growing); blue < 1 <= orange
        jac = np.full(T, np.nan) if self.jacobian is None else np.asarray(self.jacobian, float)
        jv = aggregate(jac, cols, "mean")
        ji = np.where(np.isnan(jv), -1, np.clip(np.ceil(np.nan_to_num(jv, posinf=2.0) * 4), 1, 8)).astype(int)
        jstyles = [JAC_HIGH if (x >= 1) else JAC_LOW for x in np.nan_to_num(jv)]
        if self.cell in CELLS and not CELLS[self.cell].STATE:
            # no ∂h_t/∂h_(t-1): say so instead of an empty row
            lines.append(Strip([Segment(f"{'‖J_t‖':>{GUTTER - 1}} ", LABEL),
                                Segment("no recurrence: attention's h_t depends on the inputs only", DIM)]
                               ).adjust_cell_length(width, NULL))
        else:
            lines.append(glyph_row(jv, ji, jstyles, "‖J_t‖", width))
        if gate is not None:
            gv = aggregate(np.asarray(gate, float), cols, "mean")
            gi = np.where(np.isnan(gv), -1, np.clip(np.nan_to_num(gv) * 8, 1, 8).round()).astype(int)
            lines.append(glyph_row(gv, gi, [GATE] * len(gv), gate_name[:6], width))
        # time axis with the cursor
        data_w = min(len(cols), width - GUTTER)
        axis = [" "] * data_w
        for x, txt in ((0, "0"),):
            axis[x : x + len(txt)] = list(txt)
        end = str(T - 1)
        if data_w > len(end) + 2:
            axis[data_w - len(end) : data_w] = list(end)
        label = f" t {col_label}"
        if data_w > len(label) + len(end) + 4:
            mid = (data_w - len(label)) // 2
            axis[mid : mid + len(label)] = list(label)
        c = column_of_step(cols, self.cursor)
        segs = [Segment(f"{'t':>{GUTTER - 2}} └"[:GUTTER], LABEL)]
        if c is not None and c < data_w:
            segs += [
                Segment("".join(axis[:c]), DIM),
                Segment("▲", CURSOR),
                Segment("".join(axis[c + 1 :]), DIM),
            ]
        else:
            segs.append(Segment("".join(axis), DIM))
        lines.append(Strip(segs).adjust_cell_length(width, NULL))
        return lines[: max(height, 1)]



def cursor_text(frame, cursor: int) -> str:
    """Exact numbers at the cursor step, straight from the frame (i.e. from the core)."""
    if frame is None or frame.hidden is None or frame.T == 0:
        return ""
    t = min(max(cursor, 0), frame.T - 1)
    parts = [f"t={t}"]
    g = frame.profile[t] if frame.profile is not None else math.nan
    last = frame.profile[-1] if frame.profile is not None else math.nan
    ratio = g / last if math.isfinite(g) and math.isfinite(last) and last > 0 and t < frame.T - 1 else math.nan
    # the ratio to the last step's gradient is the number the lessons quote (‖dL/dh_0‖/‖dL/dh_T−1‖ at t = 0)
    parts.append(f"‖dL/dh‖={_e(g)}" + (f" ={_e(ratio)}×last" if not math.isnan(ratio) else ""))
    j = frame.jacobian[t] if frame.jacobian is not None else math.nan
    parts.append(f"‖J‖={_g(j)}")
    for name, arr in sorted(frame.gates.items()):
        parts.append(f"{name}={_g(arr[t])}")
    if t < frame.hidden_filled:
        h = frame.hidden[t]
        n = min(4, len(h))
        parts.append("h[0:%d]=" % n + " ".join(f"{x:+.2f}" for x in h[:n]))
        parts.append(f"max|h|={float(np.max(np.abs(h))):.2f}")
    return "  ".join(parts)


def _e(x) -> str:
    x = float(x)
    if math.isnan(x):
        return "–"
    return f"{x:.2e}"


def _g(x) -> str:
    x = float(x)
    if math.isnan(x):
        return "–"
    return f"{x:.3g}"
