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

from . import axes
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
        self.ghost: np.ndarray | None = None
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
        self.layer_label = ""   # "layer 2/3 " for a stack (set by the Dynamics view)

    @property
    def axis_lock(self) -> axes.AxisLock:
        return getattr(self.app, "axis_lock", axes.UNLOCKED)

    def set_data(self, profile, jacobian, gates, cell, filled, cursor, decay_text, key, ghost=None) -> bool:
        k = (key, filled, cursor, cell, id(ghost), self.axis_lock.version)
        if k == self._key:
            return False
        self._key = k
        self.profile, self.jacobian, self.gates, self.ghost = profile, jacobian, gates or {}, ghost
        self.cell, self.filled, self.cursor, self.decay_text = cell, filled, cursor, decay_text
        self._lines = None
        self.refresh()
        return True

    def _build(self) -> list[Strip]:
        lines, self.decades = gradient_lines(self.profile, self.jacobian, self.gates, self.cell, self.cursor,
                                             self.decay_text, self.size.width, self.size.height, self.ghost,
                                             self.axis_lock, self.layer_label)
        return lines


def gradient_lines(prof, jacobian, gates, cell, cursor, decay_text, width: int, height: int, ghost=None,
                   lock: axes.AxisLock = axes.UNLOCKED, layer_label: str = ""):
    """The lines of the gradient panel (a pure function: tests call it) and the decade range of its axis.

    `ghost` is the last complete profile: drawn dimmed (░) in the columns the BPTT under way has not reached."""
    if prof is None or len(prof) == 0:
        return [Strip([Segment(" ‖dL/dh_t‖: waiting for the first frame…", DIM)])], None
    T = len(prof)
    cols, col_label = column_ranges(T, width - GUTTER)
    gate_name = forget_gate(CELLS[cell]) if cell in CELLS else None   # the cell says which gate
    gate = gates.get(gate_name) if gate_name else None
    vals = aggregate(np.asarray(prof, float), cols, "max")
    gvals = None
    if ghost is not None and len(ghost) == T and np.isnan(vals).any():
        gvals = aggregate(np.asarray(ghost, float), cols, "max")
        if not np.isfinite(gvals).any():
            gvals = None
    how = "" if "steps" not in col_label else " (max)"
    parts = [f"{layer_label}‖dL/dh_t‖ batch mean, log, BPTT ←{how}"]
    if gvals is not None:
        parts.append("░ previous pass")
    if decay_text:
        parts.append(decay_text)
    auto = axes.auto_decades([vals] + ([gvals] if gvals is not None else []))
    lo_hi = lock.decades("gradient", auto)
    if lock.note("gradient"):
        parts.append(lock.note("gradient"))
    recurrent = not (cell in CELLS and not CELLS[cell].STATE)
    data_w = min(len(cols), width - GUTTER)
    room = width - GUTTER - data_w - 1
    legend = axes.jacobian_legend(room) if recurrent else ""
    if recurrent and not legend:  # no room beside the row: the shortest legend goes into the title
        parts.append("‖J_t‖ " + axes.JAC_LEGENDS[-1])
    heads = axes.title_lines(parts, width, 2 if height >= 8 else 1)
    lines = [Strip([Segment(t, LABEL)]).adjust_cell_length(width, NULL) for t in heads]
    extra = 2 + (1 if gate is not None else 0)  # jacobian row, axis row, gate row
    rows = max(height - len(heads) - extra, 1)
    bars, decades = log_bars(vals, rows, width, lo_hi=lo_hi, ghost=gvals)
    lines.extend(bars)
    # Jacobian norms: a glyph height ramp around 1 (▁▂▃▄ below 1, ▅▆▇█ from 1; axes.JAC_EDGES), readable
    # without colour; blue < 1 <= orange
    jac = np.full(T, np.nan) if jacobian is None else np.asarray(jacobian, float)
    jv = aggregate(jac, cols, "mean")
    ji = axes.jacobian_ramp(jv)
    jstyles = [JAC_HIGH if (x >= 1) else JAC_LOW for x in np.nan_to_num(jv)]
    if not recurrent:
        # no ∂h_t/∂h_(t-1): say so instead of an empty row
        lines.append(Strip([Segment(f"{'‖J_t‖':>{GUTTER - 1}} ", LABEL),
                            Segment("no recurrence: attention's h_t depends on the inputs only", DIM)]
                           ).adjust_cell_length(width, NULL))
    else:
        row = glyph_row(jv, ji, jstyles, "‖J_t‖", GUTTER + data_w)
        if legend:
            row = Strip([*row, Segment(" " + legend, LABEL)])
        lines.append(row.adjust_cell_length(width, NULL))
    if gate is not None:
        gv = aggregate(np.asarray(gate, float), cols, "mean")
        gi = np.where(np.isnan(gv), -1, np.clip(np.nan_to_num(gv) * 8, 1, 8).round()).astype(int)
        lines.append(glyph_row(gv, gi, [GATE] * len(gv), gate_name[:6], width))
    # time axis with the cursor
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
    c = column_of_step(cols, cursor)
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
    return lines[: max(height, 1)], decades


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
