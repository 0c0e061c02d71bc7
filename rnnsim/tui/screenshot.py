"""Write an SVG screenshot of the TUI (for the README), deterministically: a fixed number of steps, no timing.

    python -m rnnsim.tui.screenshot docs/images/tui-dynamics.svg --scenario vanishing --steps 750 --size 100x32
    python -m rnnsim.tui.screenshot docs/images/lesson-adding.svg --scenario adding-lstm --train 2500 --keys 2
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path


async def _shoot(scenario, steps: int, size: tuple[int, int], keys: list[str], out: Path, train: int = 0) -> None:
    from .app import RnnsimApp
    from .frames import DEFAULT_SPEED_INDEX

    app = RnnsimApp(scenario)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        app.runner.wait_idle(120)
        if steps:
            app.runner.send("step", steps)
            app.runner.wait_idle(120)
        if train:
            _train_exactly(app.runner, train)
        app.poll_frame()
        for key in keys:
            await pilot.press(key)
        app.runner.wait_idle(120)
        for job in app.jobs.values():  # views 5-7 compute in the background: wait for them
            job.join(600)
        app.poll_frame()
        await pilot.pause()
        await pilot.pause()
        out.parent.mkdir(parents=True, exist_ok=True)
        app.save_screenshot(filename=out.name, path=str(out.parent))
    app.runner.stop()


def units_per_iteration(scenario) -> int:
    """Play units (forward steps, BPTT steps, the update) of one whole iteration from a pass boundary: the same for
    every iteration of a scenario (counted on a throw-away copy)."""
    from rnnsim.play import Play

    play = Play(scenario)
    units = 0
    while play.sim.iteration == 0 and play.sim.sentinel is None:
        play.advance()
        units += 1
    return units


def _train_exactly(runner, iterations: int) -> int:
    """Exactly ``iterations`` more whole iterations (fewer only if a NaN/inf stops the run), by play steps: single
    steps to the end of a pass under way, then the rest in one command of units_per_iteration × iterations, then
    single steps if any is missing. (Free-running training, t, is stopped by a timer: it overshoots.)"""
    def now():
        return runner.wait_idle(600)

    f = now()
    goal = f.iteration + iterations
    while f.phase != "idle" and f.iteration < goal and not f.sentinel:  # the pass under way, if any
        runner.send("step")
        f = now()
    if f.iteration < goal and not f.sentinel:
        runner.send("step", units_per_iteration(f.scenario) * (goal - f.iteration))
    while (f := now()).iteration < goal and not f.sentinel:
        runner.send("step")
    return f.iteration - (goal - iterations)


def main(argv: list[str] | None = None) -> int:
    import rnnsim

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--scenario", default="vanishing")
    ap.add_argument("--steps", type=int, default=0, help="play steps to run first")
    ap.add_argument("--size", default="100x32")
    ap.add_argument("--keys", default="", help="space-separated Textual key names pressed before the shot")
    ap.add_argument("--train", type=int, default=0, help="train this many iterations first (after --steps)")
    args = ap.parse_args(argv)
    w, h = (int(x) for x in args.size.lower().split("x"))
    sc = rnnsim.load_scenario(args.scenario)
    asyncio.run(_shoot(sc, args.steps, (w, h), args.keys.split(), args.out, args.train))
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
