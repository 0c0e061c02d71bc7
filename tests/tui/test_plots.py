"""Issue 11, seeing the result: the plots' arithmetic (log-axis rows, decade labels, reference lines, binning, the
‖J_t‖ ramp, the axis lock, titles), the ghost profile and the one-pass key, tested as pure functions or through
the Runner."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rnnsim.tui.runner import Runner
from rnnsim.tui.screens.background import influence_lines, mc_bars, mc_total_lines
from rnnsim.tui.widgets import axes
from rnnsim.tui.widgets.common import EIGHTHS, GUTTER, HLINE, log_bars
from rnnsim.tui.widgets.gradient import gradient_lines
from rnnsim.tui.widgets.series import series_lines


def texts(strips) -> list[str]:
    return [s.text for s in strips]


def label_row(lines: list[str], label: str) -> int:
    rows = [i for i, ln in enumerate(lines) if ln[:GUTTER].strip().rstrip("┤").strip() == label]
    assert len(rows) == 1, (label, lines)
    return rows[0]


# ------------------------------------------------------------------------------------------- log axis rows
@pytest.mark.parametrize("lo,hi,rows", [(-3, 0, 6), (-2, 1, 5), (-10, 1, 5), (-30, 0, 5), (-1, 1, 7), (0, 2, 3)])
def test_a_decade_value_tops_out_on_its_label_row_and_a_larger_one_above_it(lo, hi, rows):
    for d, r in axes.decade_rows(lo, hi, rows).items():
        d_val = 10.0 ** r
        # the cell that holds the top of a bar of exactly 10^d is on the row labelled 1e{d}
        lines = texts(log_bars(np.array([d_val]), rows, GUTTER + 1, lo_hi=(lo, hi))[0])
        filled = [i for i, ln in enumerate(lines) if ln[GUTTER] != " "]
        assert min(filled) == d, (r, lines)
        assert axes.row_of(d_val, lo, hi, rows) == d
        # 6 % above a decade is drawn above that row when the decade sits on a row's top edge
        pos = (r - lo) / (hi - lo) * rows
        if abs(pos - round(pos)) < 1e-9 and d > 0:
            lines = texts(log_bars(np.array([1.06 * d_val]), rows, GUTTER + 1, lo_hi=(lo, hi))[0])
            assert min(i for i, ln in enumerate(lines) if ln[GUTTER] != " ") == d - 1


@pytest.mark.parametrize("lo,hi,rows", [(-3, 0, 6), (-2, 1, 5), (-10, 1, 5), (-30, 0, 5), (-9, 0, 4), (-5, 1, 12)])
def test_decade_labels_are_regular_and_every_tick_is_labelled(lo, hi, rows):
    labelled = axes.decade_rows(lo, hi, rows)
    decades = sorted(labelled.values(), reverse=True)
    assert decades[0] == hi and len(decades) >= 2 or hi - lo < 2
    steps = {a - b for a, b in zip(decades, decades[1:])}
    assert len(steps) <= 1                                            # every k-th decade, one k
    assert len(set(labelled)) == len(labelled)                        # each on its own row
    rows_top_down = sorted(labelled)
    assert [labelled[r] for r in rows_top_down] == decades             # higher decades higher up
    lines = texts(log_bars(np.array([10.0 ** lo]), rows, GUTTER + 3, lo_hi=(lo, hi))[0])
    for i, ln in enumerate(lines):
        tick = ln[GUTTER - 1]
        assert (tick == "┤") == (i in labelled), (i, lines)           # a tick only where there is a label
        assert tick in "┤│"


def test_chance_line_at_one_is_on_the_row_labelled_1e0_and_a_loss_of_1_06_is_above_it():
    """The clip-norm case of issue 11: chance = 1, losses 1.06 and 0.9."""
    lo, hi, rows = -2, 1, 6   # 1e0 sits on a row's top edge
    lines = texts(log_bars(np.array([1.06, 0.9, 1.0]), rows, GUTTER + 3, lo_hi=(lo, hi),
                           hlines=[(1.0, HLINE, "╌")])[0])
    r1 = label_row(lines, "1e0")
    assert lines[r1][GUTTER:] == "█╌╌"        # 1.06 passes through the line; 0.9 and 1.0 do not rise above it
    assert lines[r1 - 1][GUTTER] in EIGHTHS[1:] and lines[r1 - 1][GUTTER + 1:] == "  "
    assert "╌" not in "".join(lines[:r1] + lines[r1 + 1:])


def test_reference_line_stays_visible_above_bars_just_under_it():
    """The copy case of issue 11: chance 0.132, losses 0.1155 all along: the line is drawn, not hidden."""
    v = np.full(20, 0.1155)
    lines = texts(log_bars(v, 5, GUTTER + 20, hlines=[(0.132, HLINE, "╌")])[0])
    row = [ln for ln in lines if "╌" in ln]
    assert len(row) == 1 and row[0][GUTTER:] == "╌" * 20


def test_automatic_axis_keeps_a_margin_around_the_data_and_the_reference_line():
    lo, hi = axes.auto_decades([np.array([0.1155, 0.12])], [0.132])
    assert lo <= math.log10(0.1155) - axes.MARGIN and hi >= math.log10(0.132) + axes.MARGIN
    assert hi - lo >= axes.MIN_SPAN
    lo, hi = axes.auto_decades([np.array([1e-60, 1.0])])
    assert hi - lo == axes.MAX_SPAN and hi == 1


# ------------------------------------------------------------------------------------------- binning
def _reference_bins(values, clipped, finite, k, how):
    out, clip, bad = [], [], []
    for a in range(0, len(values), k):
        seg = np.asarray(values[a:a + k], float)
        fin = seg[np.isfinite(seg)]
        if fin.size < seg.size:
            out.append(np.inf)   # a non-finite value in the bin: a full red bar, whatever `how`
        else:
            out.append({"max": fin.max, "min": fin.min, "last": lambda: fin[-1]}[how]())
        clip.append(any(clipped[a:a + k]))
        bad.append(not all(finite[a:a + k]) or fin.size < seg.size)
    return np.array(out), np.array(clip), np.array(bad)


@pytest.mark.parametrize("n,width", [(1, 73), (73, 73), (74, 73), (1000, 73), (7001, 73), (5, 2)])
@pytest.mark.parametrize("how", ["max", "min", "last"])
def test_bin_series_matches_a_plain_loop(n, width, how):
    rng = np.random.default_rng(n)
    v = 10 ** rng.uniform(-3, 3, n)
    v[rng.random(n) < 0.01] = np.nan
    clipped = rng.random(n) < 0.05
    finite = np.isfinite(v)
    got, clip, bad, k = axes.bin_series(v, clipped, finite, width, how)
    assert k == max(1, math.ceil(n / width)) and len(got) <= width
    want, wclip, wbad = _reference_bins(v, clipped, finite, k, how)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(clip, wclip)
    np.testing.assert_array_equal(bad, wbad)


def test_a_gradient_spike_survives_binning_and_every_event_is_marked():
    """Issue 11: a 1.36e6 spike in 7000 iterations at 80 columns disappeared into "(last)" binning."""
    n = 7000
    g = np.full(n, 0.5)
    g[3333] = 1.36e6
    clipped = np.zeros(n, bool)
    clipped[[10, 5000, 6998]] = True
    finite = np.ones(n, bool)
    finite[4000] = False
    g[4000] = np.nan
    lines = texts(series_lines("‖grad‖", g, clipped, finite, 1.0, "clip θ", "", 80, 14, "max"))
    data_w = 80 - GUTTER
    k = math.ceil(n / data_w)
    plot = [ln[GUTTER:] for ln in lines if ln[GUTTER - 1] in "┤│"]
    heights = [sum(r[c] != " " for r in plot) for c in range(len(plot[0]))]
    spike = 3333 // k
    assert heights[4000 // k] == len(plot)                      # the non-finite bin: a full (red) bar
    others = [h for c, h in enumerate(heights) if c not in (spike, 4000 // k)]
    assert heights[spike] == len(plot) - 1 >= 8 and max(others) <= 3   # the spike's column towers
    assert plot[1][spike] != " " and plot[0][spike] == " "     # ... up to 1e6 (the axis keeps a margin above)
    events = lines[-1][GUTTER:]
    assert events[10 // k] == "c" and events[5000 // k] == "c" and events[6998 // k] == "c"
    assert events[4000 // k] == "✗"
    assert events.count("c") + events.count("✗") == 4
    assert "(max)" in lines[0] and "clip θ 1" in "".join(lines[:2])


# ------------------------------------------------------------------------------------------- ‖J_t‖ ramp
def test_jacobian_ramp_tells_0_9_from_1_0_without_colour():
    idx = axes.jacobian_ramp(np.array([0.3, 0.6, 0.9, 0.99, 1.0, 1.1, 1.5, 3.0, np.inf, np.nan]))
    assert list(idx) == [1, 2, 3, 4, 5, 6, 7, 8, 8, -1]
    below, above = axes.jacobian_ramp(np.array([0.9])), axes.jacobian_ramp(np.array([1.0]))
    assert EIGHTHS[below[0]] != EIGHTHS[above[0]]
    lines = texts(gradient_lines(np.ones(4), np.array([0.9, 1.0, 0.9, 1.0]), {}, "rnn", 0, "", 80, 10)[0])
    jrow = next(ln for ln in lines if ln.startswith(" ‖J_t‖"))
    assert jrow[GUTTER:GUTTER + 16] == (EIGHTHS[3] * 4 + EIGHTHS[5] * 4) * 2
    assert axes.jacobian_legend(80) in jrow and "1.05" in jrow   # the edges are written beside the row


# ------------------------------------------------------------------------------------------- ghost, lock
def test_ghost_profile_is_drawn_dimmed_where_the_new_bptt_has_not_reached():
    T = 40
    ghost = 10.0 ** np.linspace(-6, 0, T)
    now = np.full(T, np.nan)
    now[30:] = 1.0
    lines = texts(gradient_lines(now, None, {}, "rnn", 0, "", GUTTER + T, 12, ghost=ghost)[0])
    assert "░ previous pass" in "".join(lines[:2])
    plot = [ln[GUTTER:] for ln in lines if ln[GUTTER - 1:GUTTER] in ("┤", "│")]
    cols = ["".join(r[c] for r in plot) for c in range(T)]
    assert all(set(col.strip()) <= {"░"} and col.strip() for col in cols[:30])
    assert all("░" not in col and col.strip() for col in cols[30:])
    # no ghost once the profile is complete
    lines = texts(gradient_lines(np.ones(T), None, {}, "rnn", 0, "", GUTTER + T, 12, ghost=ghost)[0])
    assert "░" not in "".join(lines)


def test_axis_lock_keeps_the_first_range_until_unlocked():
    lock = axes.AxisLock()
    assert lock.decades("g", (-3, 1)) == (-3, 1) and lock.note("g") == ""
    assert lock.toggle() is True
    assert lock.decades("g", (-9, 1)) == (-9, 1)
    assert lock.decades("g", (-2, 0)) == (-9, 1)           # locked: the later data do not move it
    assert lock.note("g") == "axis locked 1e-9..1e1 (y)"
    assert lock.toggle() is False and lock.decades("g", (-2, 0)) == (-2, 0)


def test_locked_axis_makes_scale_0_9_and_1_0_look_different():
    """Autoscaled, two geometric decays fill the plot alike; on one locked axis the faster one ends lower."""
    T = 100
    fast, slow = 0.84 ** np.arange(T)[::-1], 0.9 ** np.arange(T)[::-1]
    auto = [texts(gradient_lines(p, None, {}, "attention", 0, "", GUTTER + T, 12)[0])[1:-2] for p in (fast, slow)]
    lock = axes.AxisLock()
    lock.toggle()
    locked = [texts(gradient_lines(p, None, {}, "attention", 0, "", GUTTER + T, 12, lock=lock)[0])
              for p in (fast, slow)]
    assert "axis locked" in locked[0][0] and "axis locked" in locked[1][0]

    def bottom_bar_height(lines):  # rows filled in the first column (t = 0)
        return sum(ln[GUTTER] != " " for ln in lines if ln[GUTTER - 1:GUTTER] in ("┤", "│"))

    assert bottom_bar_height(locked[0]) < bottom_bar_height(locked[1])
    assert abs(bottom_bar_height(auto[0]) - bottom_bar_height(auto[1])) <= 1


def test_runner_keeps_the_last_complete_profile_as_ghost_and_one_pass_stops_before_the_update(small):
    runner = Runner(small).start()
    try:
        runner.wait_idle(120)
        runner.send("speed", 10)  # max speed: the pass is short, and waiting is deterministic (wait_idle)
        runner.send("one_pass")
        f = runner.wait_idle(60)
        assert f.phase == "backward_done" and f.iteration == 0 and f.grad_filled == f.T
        assert f.ghost is None and np.isfinite(f.profile).all()
        first = f.profile.copy()
        runner.send("step", 1 + 5)  # the update, then 5 forward steps of the next pass
        f = runner.wait_idle(60)
        assert f.iteration == 1 and f.phase == "forward"
        np.testing.assert_array_equal(f.ghost, first)
        runner.send("one_pass")  # the rest of this pass
        f = runner.wait_idle(60)
        assert f.phase == "backward_done" and f.iteration == 1 and f.ghost is None
        runner.send("one_pass")  # from backward_done: the update, then a whole pass
        f = runner.wait_idle(60)
        assert f.phase == "backward_done" and f.iteration == 2
    finally:
        runner.stop()


# ------------------------------------------------------------------------------------------- influence, memory
def test_influence_overlaps_have_their_own_glyph_and_legend():
    """lstm and attention coincide everywhere (one glyph for the pair, named in the legend); rnn crosses them once
    (the glyph of all three there); nowhere is a curve silently hidden under another's glyph."""
    T = 8
    same = np.full(T, 1e-3)
    rnn = 10.0 ** -np.arange(T, 0, -1)          # 1e-8 .. 1e-1: equal to the others at t = 5 only
    results = [("rnn", rnn, 0.5), ("lstm", same, 0.1), ("attention", same, 0.1)]
    lines = texts(influence_lines(results, 80, 14))
    plot = [ln[GUTTER:] for ln in lines if ln[GUTTER - 1:GUTTER] in ("┤", "│")]
    cells = "".join(plot)
    assert "l" not in cells and "a" not in cells                 # never drawn alone: they always share a cell
    pair = [g for g in "+#%&" if g in cells]
    assert len(pair) == 1 and "*" in cells
    legend = lines[-1]
    assert f"{pair[0]} l∩a" in legend and "* r∩l∩a" in legend
    assert cells.count("r") == T * 4 - 4 * 1                        # rnn's own glyph wherever it is alone


class _MC:
    def __init__(self, H, total, per=None):
        self.hidden_size, self.total = H, total
        self.per_delay = np.zeros(2 * H + 1) if per is None else per


def test_total_mc_under_the_bound_is_visibly_below_the_line():
    sizes = (4, 8, 16)
    lines = texts(mc_total_lines([_MC(4, 3.3), _MC(8, 7.6), _MC(16, 16.0)], sizes, 8, 40, 10))
    line_row = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("MC=H"))
    assert set(lines[line_row][GUTTER:].strip()) == {"╌"}
    bars = [ln[GUTTER:] for ln in lines[line_row + 1:] if ln[GUTTER - 1:GUTTER] in ("┤", "│")]
    top = bars[0]
    # MC/H = 0.83 and 0.95: the top bar row is only partly filled; 1.0 fills it
    x = [i for i, ch in enumerate(top) if ch != " "]
    assert top[x[0]] in EIGHTHS[1:8] and top[x[-1]] == "█"
    assert "Jaeger: MC ≤ H" in "".join(lines[:2])


def test_mc_k_axis_reaches_the_task_delay():
    lines = texts(mc_bars(_MC(8, 6.0, np.linspace(1, 0, 17)), 80, 8, delay=16))
    assert lines[-1].rstrip().endswith("16")


def test_title_lines_wrap_between_parts_and_drop_only_extras():
    parts = ["loss per iteration (log)", "7000 iterations", "1 col = 96 iterations (last)", "╌ chance 0.116"]
    one = axes.title_lines(parts, 200, 1)
    assert one == [" " + " · ".join(parts)]
    two = axes.title_lines(parts, 80, 2)
    assert len(two) == 2 and all(len(t) <= 80 for t in two)
    assert " · ".join(t.strip() for t in two) == " · ".join(parts)      # nothing cut, broken between parts
    got = axes.title_lines(parts, 80, 2, extra=("shared axis",))
    assert "shared axis" in "".join(got) and len(got) == 2
    got = axes.title_lines(parts[:3], 72, 1, extra=("shared axis",))   # no room: the extra is left out
    assert got == axes.title_lines(parts[:3], 72, 1) and "shared" not in got[0]
    assert all(len(t) <= 30 for t in axes.title_lines(parts, 30, 9))


def test_bin_series_by_iteration_when_entries_hold_several_iterations():
    """A bounded history merges old iterations into entries (their max ‖g‖, last loss, events): binned by the
    iteration each entry ends at, the result equals binning the full per-iteration series."""
    rng = np.random.default_rng(3)
    n = 5000
    g = 10 ** rng.uniform(-2, 2, n)
    g[1234] = 1e9
    clipped = rng.random(n) < 0.01
    finite = np.ones(n, bool)
    finite[4321] = False
    g[4321] = np.inf
    # merge the first 4096 iterations into entries of 64 (aligned), keep the rest exact
    ends = np.r_[np.arange(64, 4097, 64), np.arange(4097, n + 1)]
    starts = np.r_[0, ends[:-1]]
    merged = np.array([g[a:b].max() for a, b in zip(starts, ends)])
    mclip = np.array([clipped[a:b].any() for a, b in zip(starts, ends)])
    mfin = np.array([finite[a:b].all() for a, b in zip(starts, ends)])
    # bins of 128 iterations: aligned with the merged entries, so the result is exactly the full series' binning
    got = axes.bin_series(merged, mclip, mfin, 40, "max", positions=ends)
    assert got[3] == 125 and len(got[0]) == 40                     # k from the iterations (5000), not the entries
    got = axes.bin_series(merged, mclip, mfin, 0, "max", k=128, positions=ends)
    ref = axes.bin_series(g, clipped, finite, 0, "max", k=128)
    for a, b in zip(got[:3], ref[:3]):
        np.testing.assert_array_equal(a, b)
    assert got[0][1234 // 128] == 1e9 and got[2][4321 // 128]
