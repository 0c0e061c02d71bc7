"""The worker thread on its own (no Textual): frames are copies, publishing is throttled, stopping is prompt."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from rnnsim.tui.runner import FRAME_INTERVAL, SPEEDS, Runner


def test_frames_are_copies_and_immutable(small):
    r = Runner(small).start()
    try:
        r.wait_idle(60)
        r.send("step", 25)  # all 20 forward steps and 5 BPTT steps
        f = r.wait_idle()
        assert (f.phase, f.t, f.bt) == ("backward", 20, 5)
        np.testing.assert_array_equal(f.hidden, r.sim.hidden[0])
        assert not np.shares_memory(f.hidden, r.sim.hidden)
        assert np.isnan(f.profile[:15]).all() and np.isfinite(f.profile[15:]).all()  # BPTT fills right to left
        hidden = f.hidden.copy()
        r.send("reset")
        r.send("step", 3)
        r.wait_idle()
        np.testing.assert_array_equal(f.hidden, hidden)  # the old frame did not change
        try:
            f.t = 3
        except AttributeError:
            pass
        else:
            raise AssertionError("Frame must be frozen")
    finally:
        r.stop()


def test_play_publishes_at_most_every_interval(small):
    r = Runner(small).start()
    try:
        r.wait_idle(60)
        for _ in range(len(SPEEDS)):
            r.send("speed", 1)  # max speed
        r.send("play")
        seqs = []
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 1.0:
            seqs.append((time.perf_counter(), r.frame.seq))
            time.sleep(0.002)
        published = seqs[-1][1] - seqs[0][1]
        assert published <= 1.0 / FRAME_INTERVAL + 2
        assert r.frame.steps_done > 100  # it really ran
    finally:
        r.stop()


def test_stop_while_playing_is_prompt(small):
    r = Runner(small).start()
    r.wait_idle(60)
    r.send("speed", -10)  # 1 step per second: the worker mostly waits
    r.send("play")
    time.sleep(0.2)
    t0 = time.perf_counter()
    r.stop()
    assert not r.alive and time.perf_counter() - t0 < 1.0


def test_worker_is_daemon_and_named(small):
    r = Runner(small).start()
    try:
        r.wait_idle(60)
        t = [th for th in threading.enumerate() if th.name == "rnnsim-runner"]
        assert t and t[0].daemon
    finally:
        r.stop()


def test_bad_change_reports_error_without_crashing(small):
    r = Runner(small).start()
    try:
        r.wait_idle(60)
        r.send("change", {"model.hidden_size": -1})
        f = r.wait_idle()
        assert f.error and "hidden_size" in f.error
        r.send("step")
        f = r.wait_idle()
        assert f.t == 1  # still alive and stepping
    finally:
        r.stop()


def test_tui_never_uses_call_from_thread():
    """DESIGN §5 pitfall: call_from_thread from the worker deadlocks when the UI joins it."""
    root = Path(__file__).resolve().parents[2] / "rnnsim" / "tui"
    for path in root.rglob("*.py"):
        assert "call_from_thread(" not in path.read_text(), path


def run_fresh_python(code: str) -> None:
    """Run ``code`` in a new interpreter (numba not yet imported) and fail with its stderr if it fails."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr


def test_first_frame_is_drawn_before_the_kernels_load():
    # In a fresh process (numba not yet imported): the runner's first frame with a Simulation in it comes before
    # numba is imported. With wait_for_ui (the app's runner) the worker then waits until the UI says it drew that
    # frame (importing numba holds the GIL and would delay the paint), loads the kernels, and plays.
    run_fresh_python(
        "import sys, time\n"
        "import rnnsim\n"
        "from rnnsim import kernels as _common\n"
        "from rnnsim.tui import runner as rm\n"
        "rm.UI_WAIT = 60.0\n"
        "r = rm.Runner(rnnsim.load_scenario('vanishing'), wait_for_ui=True).start()\n"
        "end = time.time() + 120\n"
        "while not r.frame.ready and time.time() < end:\n"
        "    time.sleep(0.005)\n"
        "time.sleep(0.3)\n"
        "f = r.frame\n"
        "assert (f.ready, f.compiling, f.t, 'numba' in sys.modules) == (True, True, 0, False)\n"
        "r.ui_drawn.set()\n"
        "while r.frame.compiling and time.time() < end:\n"
        "    time.sleep(0.01)\n"
        "f = r.frame\n"
        "assert _common.kernels_loaded() and f.t == 0 and f.message.startswith('ready'), (f.t, f.message)\n"
        "r.send('toggle_play')\n"
        "while r.frame.t == 0 and time.time() < end:\n"
        "    time.sleep(0.01)\n"
        "assert r.frame.t > 0\n"
        "r.stop()\n"
    )


def test_kernels_load_without_the_ui_after_ui_wait():
    # A UI that never says it drew (or a headless runner with wait_for_ui) does not hold the kernels back for long.
    run_fresh_python(
        "import time\n"
        "import rnnsim\n"
        "from rnnsim.tui import runner as rm\n"
        "rm.UI_WAIT = 0.2\n"
        "r = rm.Runner(rnnsim.load_scenario('vanishing'), wait_for_ui=True).start()\n"
        "end = time.time() + 120\n"
        "while (not r.frame.ready or r.frame.compiling) and time.time() < end:\n"
        "    time.sleep(0.01)\n"
        "assert r.frame.ready and not r.frame.compiling and not r.ui_drawn.is_set()\n"
        "r.stop()\n"
    )


def test_compare_b_stays_level_when_a_unit_differs_between_the_cells(small):
    """A gru (a step is one time step) against B attention (a step is a whole pass): B keeps level with A."""
    r = Runner(small.with_changes({"model.cell": "gru"})).start()
    try:
        r.wait_idle(120)
        r.send("compare", "model.cell")
        f = r.wait_idle(120)
        assert f.compare.value_b == "attention"
        T = f.T
        r.send("step", T // 2)  # half of A's forward pass: B's whole forward pass is done, no more
        r.wait_idle(120)
        assert (r.sim.phase, r.sim.t) == ("forward", T // 2)
        assert (r.sim_b.phase, r.sim_b.iteration) == ("forward_done", 0)
        r.send("step", T - T // 2 + T + 1)  # the rest of the iteration
        f = r.wait_idle(120)
        assert f.iteration == f.compare.iteration == 1 and r.sim_b.phase == "idle"
        r.send("compare", None)
        r.send("change", {"model.cell": "attention"})  # A attention, then B (its next cell) is rnn
        r.send("compare", "model.cell")
        f = r.wait_idle(120)
        assert (f.scenario.model.cell, f.compare.value_b) == ("attention", "rnn")
        r.send("step", 1)  # A's whole forward pass: B runs every forward step to the same point
        r.wait_idle(120)
        assert r.sim.phase == r.sim_b.phase == "forward_done" and r.sim_b.t == T
    finally:
        r.stop()


def test_a_long_jacobian_computation_runs_in_slices_between_commands(small, monkeypatch):
    """Paused, a large state's Jacobian norms fill a slice per frame: a command sent meanwhile is handled before
    they finish (the worker is not stuck for the whole computation), and wait_idle returns them complete."""
    import rnnsim.play as play_module
    from rnnsim import diagnostics

    real = diagnostics.jacobian_norms
    calls = []

    def slow(sim, *args, **kwargs):  # a large state: ~20 ms per step
        calls.append(kwargs.get("t0"))
        time.sleep(0.02)
        return real(sim, *args, **kwargs)

    monkeypatch.setattr(diagnostics, "jacobian_norms", slow)
    monkeypatch.setattr(play_module, "JAC_SLICE", 0.05)
    r = Runner(small).start()
    try:
        r.wait_idle(60)
        r.send("step", 20)  # the whole forward pass: 20 steps of norms, ~0.4 s
        time.sleep(0.15)
        r.send("speed", 1)  # handled while the norms are still being computed
        deadline = time.perf_counter() + 5
        while r.frame.handled < 2 and time.perf_counter() < deadline:
            time.sleep(0.005)
        partial = r.frame
        assert partial.handled == 2 and np.isnan(partial.jacobian).any()
        f = r.wait_idle(30)
        assert np.isfinite(f.jacobian).all()
        np.testing.assert_array_equal(f.jacobian, real(r.sim))
    finally:
        r.stop()
