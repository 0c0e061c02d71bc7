"""The live TUI: time to first frame, simulation speed while playing, render time, terminal output.

    python -m benchmarks.bench_tui            # writes the "## TUI" section of docs/benchmarks.md
    python -m benchmarks.bench_tui --quick    # shorter play windows (for a smoke run)

What it measures, in one run, on the built-in `vanishing` scenario (tanh RNN, H=32, T=100, B=16):
1. time to first frame: `rnnsim vanishing` in a pseudo-terminal (120x40, TERM=xterm-256color, no COLORTERM),
   from process start to the first screen (the title on screen), to the first simulation frame (the "READY"
   status: the Simulation drawn while its kernels load in the background) and to the first step drawn after
   pressing play at once; cold = an empty temporary NUMBA_CACHE_DIR, warm = the same directory again.
2. simulation steps per second: headless (a loop over step_forward/step_backward/apply_update, exactly the
   runner's play step), the Runner thread alone, and the Runner under the running app (Textual headless at
   120x40, pulling and drawing frames at 10 fps) -- all at "max" speed.
3. frame render time at 120x40: building every line of the heatmap and gradient panel from a frame, and a full
   compositor update of the whole screen rendered to a string.
4. bytes per second written to the terminal at 120x40 in 256 colours while playing (default 50 steps/s and max
   speed), and while paused, read from the pseudo-terminal's master side.
"""

from __future__ import annotations

import os

# One BLAS thread unless told otherwise (before NumPy loads): on a small shared machine a multi-threaded BLAS
# spin-waiting beside the UI thread made the same loop 2-6x slower and the numbers unrepeatable.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import asyncio
import fcntl
import pty
import select
import shutil
import signal
import statistics
import struct
import sys
import tempfile
import termios
import time

from benchmarks._machine import machine, write_section

COLS, ROWS = 120, 40
REPEATS = 5


# ------------------------------------------------------------------------------------------- pty helpers
class PtyApp:
    """`python -m rnnsim ARGS` in a pseudo-terminal of COLS x ROWS; counts every byte it writes."""

    def __init__(self, args: list[str], env: dict[str, str]):
        self.t0 = time.perf_counter()
        pid, fd = pty.fork()
        if pid == 0:  # child
            os.execvpe(sys.executable, [sys.executable, "-m", "rnnsim", *args], env)
        self.pid, self.fd = pid, fd
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        os.kill(pid, signal.SIGWINCH)
        self.buf = bytearray()
        self.total = 0

    def read_for(self, seconds: float) -> int:
        """Read for `seconds`; returns the bytes read in that window."""
        n = 0
        end = time.perf_counter() + seconds
        while (left := end - time.perf_counter()) > 0:
            r, _, _ = select.select([self.fd], [], [], min(left, 0.05))
            if r:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:
                    break
                n += len(chunk)
                self.buf += chunk
                del self.buf[:-200_000]
        self.total += n
        return n

    def wait_for(self, text: str, timeout: float = 120.0) -> float:
        """Seconds since start when `text` first appeared in the output."""
        needle = text.encode()
        end = time.perf_counter() + timeout
        while time.perf_counter() < end:
            if needle in self.buf:
                return time.perf_counter() - self.t0
            self.read_for(0.01)
        raise TimeoutError(f"{text!r} did not appear in {timeout} s")

    def send(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def close(self) -> None:
        try:
            self.send("q")
            end = time.perf_counter() + 5
            while time.perf_counter() < end:
                self.read_for(0.05)
                done, _ = os.waitpid(self.pid, os.WNOHANG)
                if done:
                    return
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        finally:
            os.close(self.fd)


def term_env(cache_dir: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLORTERM", "NO_COLOR")}
    env.update(TERM="xterm-256color", NUMBA_CACHE_DIR=cache_dir, COLUMNS=str(COLS), LINES=str(ROWS))
    return env


def first_frame(cache_dir: str) -> tuple[float, float, float]:
    """Seconds from process start to the title on screen, to the first simulation frame (the status line's
    "READY": the Simulation built and drawn, its kernels still loading in the background), and to the first step
    drawn after pressing play at once (space sent as soon as the frame appeared: kernels loaded, one step run)."""
    app = PtyApp(["vanishing"], term_env(cache_dir))
    try:
        paint = app.wait_for("Vanishing gradients")
        frame = app.wait_for("READY")
        app.send(" ")
        step = app.wait_for("FORWARD")
    finally:
        app.close()
    return paint, frame, step


def output_rate(cache_dir: str, window: float) -> dict[str, float]:
    app = PtyApp(["vanishing"], term_env(cache_dir))
    out = {}
    try:
        app.wait_for("READY")
        app.read_for(1.0)
        out["paused"] = app.read_for(window / 2) / (window / 2)
        app.send(" ")  # play at the default 50 steps/s
        app.read_for(0.5)
        out["play 50/s"] = app.read_for(window) / window
        app.send("++++++")  # max speed
        app.read_for(0.5)
        out["play max"] = app.read_for(window) / window
        app.send(" ")
    finally:
        app.close()
    return out


# ---------------------------------------------------------------------------------------- in-process parts
def headless_steps(sc, seconds: float) -> float:
    from rnnsim import Simulation

    sim = Simulation(sc)
    sim.forward()
    sim.backward()
    sim.apply_update()
    n = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        ph = sim.phase
        if ph in ("idle", "forward"):
            sim.step_forward()
        elif ph in ("forward_done", "backward"):
            sim.step_backward()
        else:
            sim.apply_update()
        n += 1
    return n / (time.perf_counter() - t0)


def runner_steps(sc, seconds: float) -> float:
    from rnnsim.tui.runner import SPEEDS, Runner

    r = Runner(sc).start()
    try:
        r.wait_idle(120)
        for _ in range(len(SPEEDS)):
            r.send("speed", 1)
        r.send("play")
        time.sleep(0.5)
        s0, t0 = r.frame.steps_done, time.perf_counter()
        time.sleep(seconds)
        return (r.frame.steps_done - s0) / (time.perf_counter() - t0)
    finally:
        r.stop()


def app_steps_and_render(sc, seconds: float) -> tuple[float, dict[str, float], int]:
    from rnnsim.tui.app import RnnsimApp
    from rnnsim.tui.runner import SPEEDS
    from rnnsim.tui.widgets.gradient import GradientPanel
    from rnnsim.tui.widgets.heatmap import Heatmap

    result: dict = {}

    async def main():
        app = RnnsimApp(sc)
        async with app.run_test(size=(COLS, ROWS)) as pilot:
            await pilot.pause()
            app.runner.wait_idle(120)
            for _ in range(len(SPEEDS)):
                app.runner.send("speed", 1)
            app.runner.send("play")
            await asyncio.sleep(0.5)
            s0, r0, t0 = app.runner.frame.steps_done, app.redraws, time.perf_counter()
            await asyncio.sleep(seconds)
            dt = time.perf_counter() - t0
            result["steps"] = (app.runner.frame.steps_done - s0) / dt
            result["fps"] = (app.redraws - r0) / dt
            app.runner.send("pause")
            app.runner.wait_idle()
            app.poll_frame()
            await pilot.pause()
            times: dict[str, list[float]] = {"heatmap": [], "gradient": [], "screen": []}
            hm, gp = app.query_one(Heatmap), app.query_one(GradientPanel)
            for _ in range(50):
                for name, w in (("heatmap", hm), ("gradient", gp)):
                    t = time.perf_counter()
                    w._lines = None
                    for y in range(w.size.height):
                        w.render_line(y)
                    times[name].append(time.perf_counter() - t)
                t = time.perf_counter()
                hm._lines = gp._lines = None
                hm.refresh()
                gp.refresh()
                app.screen._compositor._dirty_regions.clear()
                update = app.screen._compositor.render_full_update()
                with app.console.capture() as cap:
                    app.console.print(update, end="")
                cap.get()
                times["screen"].append(time.perf_counter() - t)
            result["render"] = {k: statistics.median(v) * 1000 for k, v in times.items()}

    asyncio.run(main())
    return result["steps"], result["render"], result["fps"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter windows")
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = ap.parse_args()
    window = 2.0 if args.quick else 5.0
    import rnnsim

    sc = rnnsim.load_scenario("vanishing")
    cache = tempfile.mkdtemp(prefix="rnnsim-bench-numba-")
    try:
        cold = first_frame(cache)
        warm = first_frame(cache)
        print(f"first frame: cold paint {cold[0]:.2f} s frame {cold[1]:.2f} s step {cold[2]:.2f} s; "
              f"warm paint {warm[0]:.2f} s frame {warm[1]:.2f} s step {warm[2]:.2f} s")
        rates = output_rate(cache, window)
        print("bytes/s:", {k: round(v) for k, v in rates.items()})
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    # the machine may be shared: interleave the measurements in rounds and compare within each round
    # (headless, runner, app, headless again); report medians and the median of the per-round ratios
    heads, alones, apps, r_alone, r_app = [], [], [], [], []
    for _ in range(REPEATS):
        h1 = headless_steps(sc, window)
        alone = runner_steps(sc, window)
        steps, render, fps = app_steps_and_render(sc, window)
        h2 = headless_steps(sc, window)
        h = (h1 + h2) / 2
        heads.append(h)
        alones.append(alone)
        apps.append(steps)
        r_alone.append(alone / h)
        r_app.append(steps / h)
    med = statistics.median
    head, alone, in_app = med(heads), med(alones), med(apps)
    ratio_alone, ratio_app = med(r_alone), med(r_app)
    print("rounds:", [round(x) for x in heads], [round(x) for x in alones], [round(x) for x in apps])
    print(f"steps/s: headless {head:.0f}, runner {alone:.0f} ({ratio_alone:.0%}), runner under the app {in_app:.0f} "
          f"({ratio_app:.0%}); app redraws {fps:.1f}/s; render ms {render}")
    cmd = "python -m benchmarks.bench_tui" + (" --quick" if args.quick else "")
    kib = lambda b: f"{b / 1024:.0f} KiB/s"  # noqa: E731
    body = f"""Command: `{cmd}` (from the repository root; the scenario is the built-in `vanishing`: tanh RNN,
H=32, T=100, B=16, float64), with OPENBLAS_NUM_THREADS={os.environ.get("OPENBLAS_NUM_THREADS")} (the script's
default; a multi-threaded BLAS on a loaded 2-core machine made every row 2-6x noisier). Machine: {machine()}.
Load average when it ran: {os.getloadavg()[0]:.1f} (other jobs shared the machine). Steps/s: {REPEATS} rounds of
headless, Runner, app, headless again ({window:g} s each); medians, and ratios taken within each round.

| measurement | result | target |
|---|---|---|
| first screen, cold numba cache (empty `NUMBA_CACHE_DIR`), process start → title drawn | {cold[0]:.2f} s | at once |
| first simulation frame ("READY" drawn, kernels compiling in the background), cold cache | {cold[1]:.2f} s | < 2 s |
| first step drawn after play was pressed at the first frame, cold cache (kernels compiled) | {cold[2]:.2f} s | |
| first screen, warm cache | {warm[0]:.2f} s | at once |
| first simulation frame, warm cache | {warm[1]:.2f} s | < 1 s |
| first step drawn after play was pressed at the first frame, warm cache (kernels loaded from the cache) | {warm[2]:.2f} s | |
| steps/s headless (step_forward / step_backward / apply_update loop) | {head:.0f} | |
| steps/s, Runner thread alone, max speed (median of per-round ratios to headless) | {alone:.0f} ({ratio_alone:.0%}) | |
| steps/s, Runner while the app plays at max speed (120x40, redrawing {fps:.1f} frames/s) | {in_app:.0f} ({ratio_app:.0%}) | ≥ 80% of headless |
| per-round ratios, app / headless | {", ".join(f"{x:.0%}" for x in r_app)} | |
| heatmap: build all lines from a frame (120x40) | {render['heatmap']:.2f} ms | |
| gradient panel: build all lines | {render['gradient']:.2f} ms | |
| whole screen: full compositor update rendered to a string | {render['screen']:.2f} ms | |
| terminal output while paused (120x40, 256 colours) | {kib(rates['paused'])} | |
| terminal output while playing at 50 steps/s | {kib(rates['play 50/s'])} | < 1 MiB/s |
| terminal output while playing at max speed | {kib(rates['play max'])} | < 1 MiB/s |

Steps are time steps of the play loop (a forward step, a BPTT step, or an update). The first-frame and output rows
run `python -m rnnsim vanishing` in a pseudo-terminal with TERM=xterm-256color and no COLORTERM (as over SSH);
the steps/s and render rows run in-process (Textual headless). Frames are pulled at 10 fps; the worker publishes
at most every 70 ms; per-step Jacobian norms (the costliest diagnostic, ~2 ms per step for this scenario) are
recomputed at most once per 30× their own cost while playing; at max speed and while training the plots are redrawn at 5 fps (the status line at 10).
"""
    if not args.no_write:
        write_section("TUI", body)
        print("wrote the TUI section of docs/benchmarks.md")


if __name__ == "__main__":
    main()
