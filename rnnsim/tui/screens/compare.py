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
from ..widgets.axes import UNLOCKED, AxisLock, bin_series, title_lines
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


def profile_lines(pa, pb, width: int, height: int, lock: AxisLock = UNLOCKED) -> list:
    """A's and B's gradient profiles on one shared log axis (locked with y like every log axis)."""
    T = len(pa)
    cols, label = column_ranges(T, width - GUTTER)
    va, vb = aggregate(pa, cols, "max"), aggregate(pb, cols, "max")
    xs = np.arange(len(cols))
    lo_hi = lock.decades("compare-gradient", log_range([va, vb]))
    parts = ["‖dL/dh_t‖ batch mean, log", label] + ([lock.note("compare-gradient")] if lock.on else [])
    heads = title_lines(parts, width, 2 if height >= 8 else 1, extra=() if lock.on else ("A and B share the axis",))
    lines = [text_strip(t, width) for t in heads]
    rows = max(height - len(heads) - 1, 1)
    lines += marker_plot([(xs, va, A_GLYPH, A_STYLE), (xs, vb, B_GLYPH, B_STYLE)], rows, width, lo_hi)
    lines.append(axis_strip(width, [(0, "0"), (len(cols) - 1, str(T - 1))], "t"))
    return lines[:height]


def loss_lines(la, lb, baseline, width: int, height: int, lock: AxisLock = UNLOCKED) -> list:
    """A's and B's losses per iteration (the last of each binned column) on one shared log axis, with chance."""
    n = max(len(la), len(lb))
    data_w = max(width - GUTTER, 1)
    k = max(1, math.ceil(n / data_w))

    def cols(v):
        v = np.asarray(v, float)
        out = np.full(math.ceil(n / k) if n else 0, np.nan)
        got = bin_series(v, np.zeros(len(v), bool), np.isfinite(v), data_w, "last", k)[0]
        out[: len(got)] = got
        return out

    va, vb = cols(la), cols(lb)
    ncol = len(va)
    xs = np.arange(ncol)
    scale = "1 col = 1 iteration" if k == 1 else f"1 col = {k} iterations (last)"
    parts = ["loss per iteration, log", f"{n} iterations", scale]
    has_base = baseline is not None and math.isfinite(baseline) and baseline > 0
    if has_base:
        parts.append(f"╌ chance {baseline:.3g}")
    if n == 0:
        return [text_strip(" " + " · ".join(parts), width),
                text_strip(" " * GUTTER + "no updates yet: press t to train both (or step through an iteration)",
                           width)]
    lo_hi = lock.decades("compare-loss", log_range([va, vb], [baseline] if has_base else []))
    if lock.on:
        parts.append(lock.note("compare-loss"))
    heads = title_lines(parts, width, 2 if height >= 8 else 1, extra=() if lock.on else ("shared axis",))
    lines = [text_strip(t, width) for t in heads]
    rows = max(height - len(heads) - 1, 1)
    ref = (np.arange(data_w), np.full(data_w, baseline), "╌", HLINE) if has_base else None
    lines += marker_plot([(xs, va, A_GLYPH, A_STYLE), (xs, vb, B_GLYPH, B_STYLE)], rows, width, lo_hi,
                         reference=ref)
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
        lock = getattr(self.app, "axis_lock", UNLOCKED)
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
                ("g", frame.data_version, cmp.version, id(pa), id(pb), lock.version),
                lambda w, h: profile_lines(pa, pb, w, h, lock),
            )
        la, lb, base = frame.losses, cmp.losses, frame.baseline
        self.query_one("#compare-loss", StripView).set_builder(
            ("l", frame.history_version, len(la), len(lb), base, lock.version),
            lambda w, h: loss_lines(la, lb, base, w, h, lock),
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
