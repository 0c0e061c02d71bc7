"""The views fed by background jobs (rnnsim.tui.jobs): Parallel (key 5), Memory (key 6), Influence (key 7).

Each is computed once per scenario key on first open, in a daemon thread, with a progress line; the numbers are
the core's (rnnsim.diagnostics.parallel_timing, memory_capacity, influence_by_cell)."""

from __future__ import annotations

import math

import numpy as np
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.strip import Strip
from textual.widgets import Static

from ..widgets.common import EIGHTHS, GUTTER, LABEL, NULL, DIM, HLINE, aggregate, column_ranges, _runs
from ..widgets.axes import title_lines
from ..widgets.plot import StripView, axis_strip, log_range, marker_plot, text_strip
from .views import _set

RNN_STYLE = Style(color=Color.from_rgb(0, 175, 215), bold=True)
ATT_STYLE = Style(color=Color.from_rgb(255, 135, 0), bold=True)
LSTM_STYLE = Style(color=Color.from_rgb(95, 215, 95), bold=True)
BAR = Style(color=Color.from_rgb(0, 175, 215))
BAR_HI = Style(color=Color.from_rgb(255, 215, 0), bold=True)


def progress_text(state, what: str) -> Text:
    t = Text(no_wrap=True, overflow="ellipsis")
    if state is None:
        t.append(f" {what}: starting…", style="dim")
    elif state.error:
        t.append(f" ✗ {what} failed: {state.error}", style="bold red")
    elif state.cancelled:
        t.append(f" {what}: cancelled", style="dim")
    elif not state.finished:
        w = 20
        filled = int(w * state.done / max(state.total, 1))
        t.append(f" computing {what} in the background {state.done}/{state.total} ")
        t.append("█" * filled + "░" * (w - filled))
        t.append(f" {state.label}…", style="dim")
    return t


class JobView(Vertical):
    what = ""

    def progress(self, state) -> None:
        _set(self.query_one(".progress", Static), progress_text(state, self.what))


# ------------------------------------------------------------------------------------------------ parallel
PAR_SERIES = {  # (cell, which): glyph, style
    ("rnn", "forward_s"): ("r", RNN_STYLE),
    ("rnn", "backward_s"): ("R", RNN_STYLE),
    ("attention", "forward_s"): ("a", ATT_STYLE),
    ("attention", "backward_s"): ("A", ATT_STYLE),
}


def parallel_table(points, hide_times: bool) -> Text:
    by = {(p.cell, p.length): p for p in points}
    lengths = sorted({p.length for p in points})
    t = Text(no_wrap=True, overflow="ellipsis")
    t.append("      T  dependent   longest   fwd+bwd ms\n", style="bold")
    t.append("         steps r/a  path r/a   rnn   attn\n", style="bold")
    for T in lengths:
        r, a = by.get(("rnn", T)), by.get(("attention", T))
        dep = f"{r.dependent_steps if r else '–'}/{a.dependent_steps if a else '–'}"
        path = f"{r.max_path_length if r else '–'}/{a.max_path_length if a else '–'}"

        def ms(p):
            if p is None:
                return "–"
            if hide_times:
                return "#"
            v = 1e3 * (p.forward_s + p.backward_s)
            return f"{v:.0f}" if v >= 1000 else f"{v:.3g}"  # at most 6 characters: never wraps the table

        t.append(f" {T:>6} {dep:>10} {path:>9} {ms(r):>6} {ms(a):>6}\n")
    t.append(" r/a = rnn/attention (Vaswani 2017 t.1)", style="dim")
    if points and not hide_times:  # each time is a median; how much the runs of one point differed
        runs = sorted({p.repeats for p in points})
        spread = {c: max((p.spread for p in points if p.cell == c), default=0.0) for c in ("rnn", "attention")}
        n = f"{runs[0]}" if len(runs) == 1 else f"{runs[0]}-{runs[-1]}"
        t.append(f"\n median, {n} runs; spread ≤{spread['rnn']:.2g} r ≤{spread['attention']:.2g} a", style="dim")
    return t


def parallel_lines(points, lengths, hide_times: bool, width: int, height: int):
    lines = [text_strip(" measured time per pass, s (log-log)" + (" · times hidden" if hide_times else ""), width)]
    legend = title_lines(["r/R rnn fwd/bwd", "a/A attention fwd/bwd", "* both"], width, 2)
    rows = max(height - 2 - len(legend), 2)
    data_w = max(width - GUTTER, 8)
    n = len(lengths)
    xcol = {T: (round(i * (data_w - 1) / max(n - 1, 1))) for i, T in enumerate(lengths)}
    series = []
    vals = []
    for (cell, which), (glyph, style) in PAR_SERIES.items():
        pts = [p for p in points if p.cell == cell]
        xs = [xcol[p.length] for p in pts if p.length in xcol]
        v = [float("nan") if hide_times else getattr(p, which) for p in pts if p.length in xcol]
        series.append((np.array(xs, int), np.array(v, float), glyph, style))
        vals.append(v)
    lines += marker_plot(series, rows, width, log_range(vals) if not hide_times else (-4, 0))
    lines.append(axis_strip(width, [(xcol[T], str(T)) for T in lengths], "T"))
    lines += [text_strip(t, width, DIM) for t in legend]
    return lines[:height]


class ParallelView(JobView):
    what = "the parallel benchmark (~35 s)"
    DEFAULT_CSS = """
    ParallelView { height: 1fr; }
    ParallelView .progress { height: 1; }
    ParallelView #parallel-body { height: 1fr; }
    ParallelView #parallel-table { width: 42; height: 1fr; }
    ParallelView #parallel-plot { width: 1fr; height: 1fr; }
    ParallelView #parallel-note { height: auto; max-height: 2; color: $text-muted; }
    """
    hide_times = False  # snapshots set it: measured times are not deterministic

    def compose(self) -> ComposeResult:
        yield Static("", classes="progress")
        with Horizontal(id="parallel-body"):
            yield Static("", id="parallel-table")
            yield StripView(id="parallel-plot")
        yield Static(
            " Attention's dependent steps stay 1 as T grows, but its measured time is O(T²) work on 2 cores: "
            "slower than the RNN at long T here.",
            id="parallel-note",
        )

    def show(self, state, lengths) -> None:
        self.progress(state)
        points = list(state.results) if state is not None else []
        hide = self.hide_times
        _set(self.query_one("#parallel-table", Static), parallel_table(points, hide))
        key = (state.key if state else None, state.version if state else 0, hide)
        self.query_one("#parallel-plot", StripView).set_builder(
            key, lambda w, h: parallel_lines(points, list(lengths), hide, w, h)
        )


# ------------------------------------------------------------------------------------------------ memory
def mc_bars(mc, width: int, height: int, delay: int | None = None):
    """MC(k) per delay k as bars (linear, 0..1; eighth blocks), one column per delay; `delay` (the task's) ticked."""
    K = len(mc.per_delay)
    heads = title_lines([f"MC(k) per delay k (r² of a linear readout of h_t)", f"H = {mc.hidden_size}",
                         f"MC = {mc.total:.2f}"], width, 2 if height >= 6 else 1)
    lines = [text_strip(t, width) for t in heads]
    rows = max(height - len(heads) - 1, 1)
    cols, label = column_ranges(K, width - GUTTER)
    v = aggregate(np.asarray(mc.per_delay, float), cols, "mean")
    lev = np.clip(np.nan_to_num(v) * rows * 8, 0, rows * 8).round().astype(int).tolist()
    for r in range(rows):
        floor = (rows - 1 - r) * 8
        lab = "1" if r == 0 else ("0.5" if r == rows // 2 and rows > 2 and rows % 2 == 0 else "")
        cells = []
        for c in range(len(cols)):
            f = lev[c] - floor
            cells.append((" ", None) if f <= 0 else (("█" if f >= 8 else EIGHTHS[f]), BAR))
        tick = f"{lab:>{GUTTER - 2}} ┤" if lab else f"{'':>{GUTTER - 2}} │"
        segs = [Segment(tick[:GUTTER], LABEL), *_runs(cells)]
        lines.append(Strip(segs).adjust_cell_length(width, NULL))
    ticks = [(0, "0")]
    if delay is not None and 0 < delay < K - 1:
        c = next((i for i, (a, b) in enumerate(cols) if a <= delay < b), None)
        if c is not None:
            ticks.append((c, f"{delay}"))
    ticks.append((len(cols) - 1, str(K - 1)))
    lines.append(axis_strip(width, ticks, "k"))
    return lines[:height]


def mc_total_lines(results, sizes, current_h: int, width: int, height: int):
    """Total MC against H as MC/H (linear, 0..1; Jaeger 2001: MC ≤ H, so ≤ 1), the bound MC = H a dashed line on a
    row of its own above the bars: a bar that stays under it is visibly below the bound."""
    heads = title_lines(["total MC / H against H", "╌ MC = H (Jaeger: MC ≤ H)"], width, 2 if height >= 7 else 1)
    lines = [text_strip(t, width) for t in heads]
    rows = max(height - len(heads) - 2, 1)
    data_w = max(width - GUTTER, 8)
    n = len(sizes)
    bar_w = max(1, min(3, (data_w // max(n, 1)) - 1))
    xcol = [round(i * (data_w - bar_w) / max(n - 1, 1)) for i in range(n)]
    got = {m.hidden_size: m.total for m in results}
    lines.append(Strip([Segment(f"{'MC=H':>{GUTTER - 2}} ┤"[:GUTTER], HLINE),
                        Segment("╌" * data_w, HLINE)]).adjust_cell_length(width, NULL))
    lev = {}
    for i, H in enumerate(sizes):
        if H in got and math.isfinite(got[H]):
            lev[i] = int(np.clip(math.ceil(got[H] / H * rows * 8 - 1e-9), 0, rows * 8))
    for r in range(rows):
        floor = (rows - 1 - r) * 8
        cells: list = [(" ", None)] * data_w
        for i, lv in lev.items():
            f = lv - floor
            if f > 0:
                for x in range(xcol[i], min(xcol[i] + bar_w, data_w)):
                    cells[x] = ("█" if f >= 8 else EIGHTHS[f], BAR_HI if sizes[i] == current_h else BAR)
        lab = "0.5" if rows >= 2 and r == rows - 1 - (rows // 2) and rows % 2 == 0 else ""
        tick = f"{lab:>{GUTTER - 2}} ┤" if lab else f"{'':>{GUTTER - 2}} │"
        lines.append(Strip([Segment(tick[:GUTTER], LABEL), *_runs(cells)]).adjust_cell_length(width, NULL))
    lines.append(axis_strip(width, [(xcol[i] + bar_w // 2, f"{H}{'*' if H == current_h else ''}")
                                    for i, H in enumerate(sizes)], "H"))
    return lines[:height]


class MemoryView(JobView):
    what = "memory capacity"
    DEFAULT_CSS = """
    MemoryView { height: 1fr; }
    MemoryView .progress { height: 1; }
    MemoryView #memory-bars { height: 1fr; min-height: 4; }
    MemoryView #memory-body { height: 1fr; min-height: 5; }
    MemoryView #memory-total { width: 1fr; }
    MemoryView #memory-table { width: 30; }
    MemoryView #memory-note { height: auto; max-height: 2; color: $text-muted; }
    """

    def compose(self) -> ComposeResult:
        yield Static("", classes="progress")
        yield StripView(id="memory-bars")
        with Horizontal(id="memory-body"):
            yield StripView(id="memory-total")
            yield Static("", id="memory-table")
        yield Static(
            " Initial weights, u ~ U(−0.5, 0.5). Attention's measured recall (bottleneck lesson): docs/lessons.md",
            id="memory-note",
        )

    def show(self, state, sizes, current_h: int, delay: int | None = None) -> None:
        self.progress(state)
        results = list(state.results) if state is not None else []
        key = (state.key if state else None, state.version if state else 0)
        if results:
            own = results[0]
            self.query_one("#memory-bars", StripView).set_builder(key, lambda w, h: mc_bars(own, w, h, delay))
        else:
            self.query_one("#memory-bars", StripView).set_builder(key, lambda w, h: [text_strip(" MC(k): …", w)])
        totals = results[1:]
        self.query_one("#memory-total", StripView).set_builder(
            key, lambda w, h: mc_total_lines(totals, list(sizes), current_h, w, h)
        )
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append("    H  total MC  MC/H\n", style="bold")
        for m in totals:
            mark = " ← this" if m.hidden_size == current_h else ""
            t.append(f" {m.hidden_size:>4}  {m.total:>8.2f}  {m.total / m.hidden_size:.2f}{mark}\n")
        _set(self.query_one("#memory-table", Static), t)


# ------------------------------------------------------------------------------------------------ influence
INF_SERIES = {"rnn": ("r", RNN_STYLE), "lstm": ("l", LSTM_STYLE), "gru": ("g", LSTM_STYLE),
              "attention": ("a", ATT_STYLE)}


OVERLAP_GLYPHS = ("+", "#", "%", "&", "=", "~")  # one per pair of curves; "*" where three or more meet


def overlap_glyphs(n: int) -> dict[frozenset, str]:
    """A glyph for each pair of `n` series (in order), "*" for every larger set."""
    pairs = [frozenset((i, j)) for i in range(n) for j in range(i + 1, n)]
    out = {p: OVERLAP_GLYPHS[k % len(OVERLAP_GLYPHS)] for k, p in enumerate(pairs)}
    for size in range(3, n + 1):
        from itertools import combinations
        out.update({frozenset(c): "*" for c in combinations(range(n), size)})
    return out


def influence_lines(results, width: int, height: int):
    if not results:
        return [text_strip(" ‖dL/dx_t‖: …", width)]
    T = len(results[0][1])
    cols, label = column_ranges(T, width - GUTTER)
    xs = np.arange(len(cols))
    series, vals, names = [], [], []
    for cell, infl, _share in results:
        glyph, style = INF_SERIES.get(cell, ("?", LABEL))
        v = aggregate(np.asarray(infl, float), cols, "mean")
        series.append((xs, v, glyph, style))
        vals.append(v)
        names.append(cell)
    heads = title_lines(["‖dL/dx_t‖ over input positions t, mean over the samples, log axis", label], width,
                        2 if height >= 8 else 1)
    lines = [text_strip(t, width) for t in heads]
    rows = max(height - len(heads) - 2, 2)
    overlaps, used = overlap_glyphs(len(series)), set()
    lines += marker_plot(series, rows, width, log_range(vals), overlaps=overlaps, used=used)
    k = max(1, math.ceil(0.1 * T))
    first_last = len(cols) - (len(cols) * k) // T  # first column of the last 10% of positions
    tick = "▕last 10%"
    lines.append(axis_strip(width, [(0, "0"), (first_last + len(tick) // 2, tick),
                                    (len(cols) - 1, str(T - 1))], "t"))
    legend = [f"{overlaps[ids]} {'∩'.join(series[i][2] for i in sorted(ids))}"
              for ids in sorted(used, key=lambda s: (len(s), sorted(s)))]
    lines.append(text_strip(" in one cell: " + "  ".join(legend) + " (each curve is still there)" if legend else
                            " no two curves share a cell", width, DIM))
    return lines[:height]


class InfluenceView(JobView):
    what = "input influence"
    DEFAULT_CSS = """
    InfluenceView { height: 1fr; }
    InfluenceView .progress { height: 1; }
    InfluenceView #influence-plot { height: 1fr; min-height: 5; }
    InfluenceView #influence-shares { height: auto; max-height: 4; }
    """

    def compose(self) -> ComposeResult:
        yield Static("", classes="progress")
        yield StripView(id="influence-plot")
        yield Static("", id="influence-shares")

    def show(self, state, samples: int, task: str) -> None:
        self.progress(state)
        results = list(state.results) if state is not None else []
        key = (state.key if state else None, state.version if state else 0)
        self.query_one("#influence-plot", StripView).set_builder(key, lambda w, h: influence_lines(results, w, h))
        no_color = self.app.no_color
        t = Text(no_wrap=False)
        t.append(f" share in the last 10% of positions ({samples} × {task}, initial weights):\n")
        for cell, _infl, share in results:
            glyph, style = INF_SERIES.get(cell, ("?", LABEL))
            t.append(f"  {glyph} {cell} ", style=("bold" if no_color else style))
            t.append(f"{share:.2f}  ")
        if results:
            t.append("\n  (1.0: only the last tenth matters, recency bias; 0.1: spread evenly)", style="dim")
        _set(self.query_one("#influence-shares", Static), t)


# ------------------------------------------------------------------------------------------------ regimes
def regimes_note(sc, stale: bool = False) -> Text:
    """The regime rule in words, under the map (the map itself is rnnsim.sweep.show's, as `rnnsim sweep --show`)."""
    from rnnsim.sweep.show import rule_text

    t = Text(no_wrap=False)
    if stale:
        t.append(" The scenario changed: press 8 again for its map. ", style="bold")
    t.append(f" * this scenario (scale {sc.model.recurrent_scale:g}, T = {sc.task.length}). ", style="bold")
    t.append(f"Cell: log10 ‖dL/dh_0‖/‖dL/dh_T-1‖, one pass at the initial weights; {rule_text()}. ")
    t.append("Pascanu 2013: σ_max(W_hh) < 1/γ (γ = 1 for tanh) is sufficient for vanishing.", style="dim")
    return t


class RegimesView(JobView):
    what = "the regime map"
    DEFAULT_CSS = """
    RegimesView { height: 1fr; }
    RegimesView .progress { height: 1; }
    RegimesView #regimes-map { height: 1fr; min-height: 5; overflow: hidden; }
    RegimesView #regimes-note { height: auto; max-height: 4; }
    """

    def compose(self) -> ComposeResult:
        yield Static("", classes="progress")
        yield Static("", id="regimes-map")
        yield Static("", id="regimes-note")

    def show(self, state, sweep, sc, stale: bool = False) -> None:
        """``sc``: the scenario the map is of (the sweep's base once it exists); ``stale``: the app's scenario has
        changed since (its map needs another 8)."""
        from rich.console import Group

        from rnnsim.sweep.around import point_of
        from rnnsim.sweep.show import map_tables

        self.progress(state)
        rows = list(state.results) if state is not None else []
        key = (state.key if state else None, state.version if state else 0)
        view = self.query_one("#regimes-map", Static)
        if getattr(view, "_rnnsim_key", None) != key:
            view._rnnsim_key = key
            if sweep is None:
                view.update("")
            else:
                view.update(Group(*map_tables(sweep, rows, mark=point_of(sc))))
        _set(self.query_one("#regimes-note", Static), regimes_note(sc, stale))
