"""Soak: N minutes of play and training in the TUI (headless Pilot), RSS and frame time sampled (issue 15).

    python -m benchmarks.soak --minutes 30 --out soak.jsonl     # the long run (docs/reliability.md)
    python -m benchmarks.soak --minutes 1                        # the suite's version (tests/tui/test_soak.py)

The app runs the built-in `vanishing` scenario at 100x32. The script cycles through phases of equal length:
play at max speed, training at max speed (`T` again whenever the budget is reached, so it never idles), play at
the default speed, and training at the default speed; it switches the view (Dynamics, Training) every few
seconds. Every `--sample` seconds it records VmRSS and the median time of `app.poll_frame` (pulling the newest
frame and redrawing what changed) since the last sample.

Pass/fail: RSS at the end is less than 10% above RSS after the warm-up (the first minute, or the first third of
a shorter run), and the median frame time of the last quarter is at most 1.5x that of the first quarter after
the warm-up (+0.5 ms: sub-millisecond medians jitter). One JSON line per sample, then a summary line; exit
status 0 on pass, 1 on fail.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import asyncio
import json
import statistics
import sys
import time

PHASES = ("play max", "train max", "play default", "train default")
RSS_GROWTH = 0.10
FRAME_GROWTH, FRAME_SLACK = 1.5, 0.0005


def rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) * 1024
    return 0


def verdict(samples: list[dict], warmup: float) -> dict:
    """Pass/fail from the samples (see the module doc)."""
    after = [s for s in samples if s["t"] >= warmup] or samples[-1:]
    base = after[0]["rss"]
    end = samples[-1]["rss"]
    growth = end / base - 1
    q = max(1, len(after) // 4)
    first = [s["frame_ms"] for s in after[:q] if s["frame_ms"] is not None]
    last = [s["frame_ms"] for s in after[-q:] if s["frame_ms"] is not None]
    f0 = statistics.median(first) if first else 0.0
    f1 = statistics.median(last) if last else 0.0
    frame_ok = f1 <= FRAME_GROWTH * f0 + FRAME_SLACK * 1000
    return {"summary": True, "rss_after_warmup": base, "rss_end": end, "rss_growth": round(growth, 4),
            "rss_ok": growth < RSS_GROWTH, "frame_ms_first": round(f0, 3), "frame_ms_last": round(f1, 3),
            "frame_ok": frame_ok, "iterations": samples[-1]["iteration"], "steps": samples[-1]["steps"],
            "pass": growth < RSS_GROWTH and frame_ok}


async def soak(seconds: float, sample: float, out, size=(100, 32), scenario: str = "vanishing") -> dict:
    import rnnsim
    from rnnsim.tui.app import RnnsimApp
    from rnnsim.tui.frames import DEFAULT_SPEED_INDEX, SPEEDS

    app = RnnsimApp(rnnsim.load_scenario(scenario))
    times: list[float] = []
    poll = app.poll_frame

    def timed_poll(force: bool = False) -> bool:
        t0 = time.perf_counter()
        drawn = poll(force)
        if drawn:  # only polls that found a new frame and redrew (the others return at once)
            times.append(time.perf_counter() - t0)
        return drawn

    app.poll_frame = timed_poll
    samples: list[dict] = []
    warmup = min(60.0, seconds / 3)
    phase_len = seconds / (2 * len(PHASES)) if seconds >= 120 else seconds / len(PHASES)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        app.runner.wait_idle(300)
        start = time.monotonic()
        next_sample = start + sample
        next_view = start + 5
        view = 0
        phase = None
        runner = app.runner
        while (now := time.monotonic()) - start < seconds:
            name = PHASES[int((now - start) / phase_len) % len(PHASES)]
            if name != phase:
                phase = name
                runner.send("pause")
                runner.send("speed", -len(SPEEDS))
                runner.send("speed", len(SPEEDS) if name.endswith("max") else DEFAULT_SPEED_INDEX)
                runner.send("train" if name.startswith("train") else "play")
            f = runner.frame
            if phase.startswith("train") and not f.training and "budget reached" in f.message:
                runner.send("train_more")  # T: train on past the budget, as a user would
            if f.sentinel:  # a NaN/inf stops a simulation: start again from the seed
                runner.send("reset")
                runner.send("train" if phase.startswith("train") else "play")
            if now >= next_view:
                view ^= 1
                await pilot.press("2" if view else "1")
                next_view = now + 5
            if now >= next_sample:
                med = statistics.median(times) * 1000 if times else None
                times.clear()
                row = {"t": round(now - start, 1), "phase": phase, "rss": rss(), "frame_ms": med,
                       "iteration": f.iteration, "steps": f.steps_done, "history": len(runner.sim.history)}
                samples.append(row)
                print(json.dumps(row), file=out, flush=True)
                next_sample = now + sample
            await asyncio.sleep(0.05)
        runner.send("pause")
        await pilot.press("q")
    result = verdict(samples, warmup)
    print(json.dumps(result), file=out, flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--sample", type=float, default=5.0, help="seconds between samples")
    ap.add_argument("--out", default="-", help="JSON lines here (default: stdout)")
    args = ap.parse_args(argv)
    out = sys.stdout if args.out == "-" else open(args.out, "w")
    try:
        result = asyncio.run(soak(args.minutes * 60, args.sample, out))
    finally:
        if out is not sys.stdout:
            out.close()
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
