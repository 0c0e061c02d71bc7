"""Compare view (key 4): simulation A (the one you drive) and B (A's scenario with one knob changed, same seed and
data, stepped together with A by the worker). Their gradient profiles ‖dL/dh_t‖ and loss curves overlaid:
A is `o` (cyan), B is `x` (orange), `*` where both land in one cell, so NO_COLOR still tells them apart."""

from __future__ import annotations

import math

import numpy as np
from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from ..widgets.common import HLINE, aggregate, column_ranges, fmt, GUTTER
from ..widgets.plot import StripView, axis_strip, log_range, marker_plot, text_strip
from ..widgets.status import cell_text
from .views import _set

A_STYLE = Style(color=Color.from_rgb(0, 175, 215), bold=True)
B_STYLE = Style(color=Color.from_rgb(255, 135, 0), bold=True)
A_GLYPH, B_GLYPH = "o", "x"


def ratio(profile) -> float:
    """‖dL/dh_0‖ / ‖dL/dh_{T-1}‖ of a complete profile (NaN until BPTT reached t = 0)."""
    p = np.asarray(profile, float)
    if len(p) < 2 or not np.isfinite(p[[0, -1]]).all() or p[-1] == 0:
        return math.nan
    return float(p[0] / p[-1])


def profile_lines(pa, pb, width: int, height: int) -> list:
    T = len(pa)
    cols, label = column_ranges(T, width - GUTTER)
    va, vb = aggregate(pa, cols, "max"), aggregate(pb, cols, "max")
    xs = np.arange(len(cols))
    lines = [text_strip(f" ‖dL/dh_t‖ batch mean, log axis · {label}", width)]
    rows = max(height - 2, 1)
    lines += marker_plot([(xs, va, A_GLYPH, A_STYLE), (xs, vb, B_GLYPH, B_STYLE)], rows, width,
                         log_range([va, vb]))
    lines.append(axis_strip(width, [(0, "0"), (len(cols) - 1, str(T - 1))], "t"))
    return lines[:height]


def loss_lines(la, lb, baseline, width: int, height: int) -> list:
    n = max(len(la), len(lb))
    data_w = max(width - GUTTER, 1)
    k = max(1, math.ceil(n / data_w))
    ncol = math.ceil(n / k) if n else 0

    def cols(v):
        v = np.asarray(v, float)
        out = np.full(ncol, np.nan)
        for c in range(ncol):
            seg = v[c * k : (c + 1) * k]
            if seg.size:
                fin = seg[np.isfinite(seg)]
                out[c] = fin[-1] if fin.size else np.inf
        return out

    va, vb = cols(la), cols(lb)
    xs = np.arange(ncol)
    scale = "1 col = 1 iteration" if k == 1 else f"1 col = {k} iterations (last)"
    title = f" loss per iteration, log axis · {n} iterations · {scale}"
    if baseline is not None and math.isfinite(baseline):
        title += f" · ╌ chance {baseline:.3g}"
    lines = [text_strip(title, width)]
    rows = max(height - 2, 1)
    if n == 0:
        lines.append(text_strip(" " * GUTTER + "no updates yet: press t to train both (or step through an iteration)",
                                width))
        return lines
    ref = None
    if baseline is not None and math.isfinite(baseline) and baseline > 0:
        ref = (np.arange(data_w), np.full(data_w, baseline), "╌", HLINE)
    lines += marker_plot([(xs, va, A_GLYPH, A_STYLE), (xs, vb, B_GLYPH, B_STYLE)], rows, width,
                         log_range([va, vb], [baseline] if baseline else []), reference=ref)
    lines.append(axis_strip(width, [(0, "1"), (ncol - 1, str(n))], "it"))
    return lines[:height]


def _value(v) -> str:
    if isinstance(v, bool):
        return "on" if v else "off"
    return str(v)


class CompareView(Vertical):
    DEFAULT_CSS = """
    CompareView { height: 1fr; }
    CompareView #compare-head { height: 1; background: $boost; }
    CompareView #compare-grad { height: 1fr; min-height: 4; }
    CompareView #compare-loss { height: 1fr; min-height: 4; }
    CompareView #compare-numbers { height: 2; }
    """

    def compose(self) -> ComposeResult:
        yield Static("", id="compare-head")
        yield StripView(id="compare-grad")
        yield StripView(id="compare-loss")
        yield Static("", id="compare-numbers")

    def show(self, frame) -> None:
        if frame is None or not frame.ready:
            return
        cmp = frame.compare
        head = self.query_one("#compare-head", Static)
        if cmp is None:
            _set(head, " compare: starting simulation B…")
            return
        no_color = self.app.no_color
        a_st = None if no_color else A_STYLE
        b_st = None if no_color else B_STYLE
        h = Text(no_wrap=True, overflow="ellipsis")
        h.append(f" {cmp.knob}: ")
        h.append(f"{A_GLYPH} A = {_value(cmp.value_a)}", style=a_st or "bold")
        h.append("  vs  ")
        h.append(f"{B_GLYPH} B = {_value(cmp.value_b)}", style=b_st or "bold")
        h.append(f" · seed {frame.scenario.scenario.seed}, same data · x: next knob")
        _set(head, h)
        pa = frame.profile if frame.profile is not None else np.zeros(0)
        pb = cmp.profile
        if len(pa) and len(pb) == len(pa):
            self.query_one("#compare-grad", StripView).set_builder(
                ("g", frame.data_version, cmp.version, id(pa), id(pb)),
                lambda w, h: profile_lines(pa, pb, w, h),
            )
        la, lb, base = frame.losses, cmp.losses, frame.baseline
        self.query_one("#compare-loss", StripView).set_builder(
            ("l", frame.history_version, len(la), len(lb), base),
            lambda w, h: loss_lines(la, lb, base, w, h),
        )
        n = Text(no_wrap=True, overflow="ellipsis")
        for tag, glyph, st, sc, prof, losses, sent in (
            ("A", A_GLYPH, a_st, frame.scenario, pa, la, frame.sentinel),
            ("B", B_GLYPH, b_st, cmp.scenario, pb, lb, cmp.sentinel),
        ):
            n.append(f" {glyph} {tag} {cell_text(sc)}", style=st or "bold")
            T = len(prof)
            n.append(f": ‖dL/dh_0‖/‖dL/dh_{T - 1}‖ = {fmt(ratio(prof))}")
            last = float(losses[-1]) if len(losses) else None
            n.append(f" · last loss {fmt(last, 4)}")
            if sent:
                n.append(" · ⚠ non-finite", style="bold red" if not no_color else "bold")
            n.append("\n" if tag == "A" else "")
        _set(self.query_one("#compare-numbers", Static), n)
