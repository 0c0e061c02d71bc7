"""Training in the TUI worker keeps to the speed setting and stops at the budget (issue 11, issue 15 item 6)."""

from __future__ import annotations

import time

from rnnsim.tui.budget import DEFAULT_CHUNK
from rnnsim.tui.runner import SPEEDS, Runner
from rnnsim.tui.widgets.status import status_text


def _max_speed(r):
    for _ in range(len(SPEEDS)):
        r.send("speed", 1)


def test_training_stops_at_the_budget_and_T_trains_one_budget_more(small):
    r = Runner(small.with_changes({"training.iterations": 30})).start()
    try:
        r.wait_idle(60)
        _max_speed(r)
        r.send("train")
        f = r.wait_idle(60)  # idle again: training stopped by itself
        assert f.iteration == 30 and not f.training
        assert f.message == "budget reached: 30/30 iterations; T trains on (30 more)"
        r.send("toggle_train")  # t at the budget: nothing runs, the same line says why
        f = r.wait_idle(60)
        assert f.iteration == 30 and not f.training and f.message.startswith("budget reached: 30/30")
        r.send("train_more")  # T
        f = r.wait_idle(60)
        assert f.iteration == 60 and f.message.startswith("budget reached: 60/60")
        r.send("reset")  # a rebuilt simulation: the budget counts again from 0
        r.send("train")
        assert r.wait_idle(60).iteration == 30
    finally:
        r.stop()


def test_budget_zero_trains_nothing_until_T(small):
    r = Runner(small.with_changes({"training.iterations": 0})).start()
    try:
        r.wait_idle(60)
        _max_speed(r)
        r.send("toggle_train")
        f = r.wait_idle(60)
        assert f.iteration == 0 and "budget reached: 0/0" in f.message
        r.send("train_more")
        assert r.wait_idle(120).iteration == DEFAULT_CHUNK
    finally:
        r.stop()


def test_train_n_trains_exactly_n_more(small):
    r = Runner(small.with_changes({"training.iterations": 5})).start()
    try:
        r.wait_idle(60)
        _max_speed(r)
        r.send("train", 12)  # the screenshot tool's --train: exactly n, past the budget
        assert r.wait_idle(60).iteration == 12
    finally:
        r.stop()


def test_training_keeps_to_the_speed_setting(small):
    # 1 iteration per second: an iteration at once, the next a second later. Only an upper bound on the count is
    # asserted (a loaded machine makes the count smaller, never larger); the old worker ran hundreds a second.
    r = Runner(small.with_changes({"training.iterations": 1000})).start()
    try:
        r.wait_idle(60)
        r.send("speed", -len(SPEEDS))
        t0 = time.perf_counter()
        r.send("train")
        deadline = t0 + 30
        while r.frame.iteration < 1 and time.perf_counter() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)
        f = r.frame
        elapsed = time.perf_counter() - t0
        assert f.training and f.speed == 1 and f.iteration >= 1
        assert r.sim.iteration <= 1 + int(elapsed)
        text = status_text(f).plain
        assert "1 it/s" in text and f"it {f.iteration}/1000" in text
    finally:
        r.stop()


def test_frames_follow_the_bounded_history_and_keep_events():
    # the TUI's per-entry arrays (frames.History) read sim.history by index: after a compaction they start again,
    # and a spike or a NaN merged into an old bin is still there (largest ‖g‖ per entry, a flag per event)
    import math

    import numpy as np

    from rnnsim.history import History as Bounded
    from rnnsim.simulation import UpdateInfo
    from rnnsim.tui.frames import History

    h, reader = Bounded(cap=16), History()
    for i in range(1, 301):
        g = 1.36e6 if i == 7 else 1.0
        h.append(UpdateInfo(i, 2.0 - i / 300, g, min(g, 1.0), g > 1, i != 11))
        losses, gnorms, _, clipped, finite = reader.update(h)
    ex = reader.extra()
    assert len(losses) == len(h) <= 16 and h.compactions > 0
    assert ex["counts"].sum() == 300 and ex["iterations"][-1] == 300
    assert gnorms.max() == 1.36e6 and clipped.sum() == 1 and (~finite).sum() == 1
    assert np.all(ex["loss_min"] <= losses) and np.all(losses <= ex["loss_max"])
    assert not np.isnan(ex["grad_norm_min"]).any() and not math.isnan(float(gnorms[-1]))


def test_runner_frames_carry_bins(small):
    r = Runner(small.with_changes({"training.iterations": 300})).start()
    try:
        r.wait_idle(60)
        r.sim.history.cap = 32
        _max_speed(r)
        r.send("train")
        f = r.wait_idle(120)
        assert f.iteration == 300 and len(f.losses) <= 32 and f.counts.sum() == 300
        assert list(f.iterations) == [e.iteration for e in r.sim.history]
    finally:
        r.stop()
