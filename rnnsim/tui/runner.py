"""The worker thread that plays a Simulation (through rnnsim.play.Play) and publishes immutable frames.

DESIGN §5: the UI never waits on the simulation and the simulation never waits on the UI. The app puts commands
on a queue (`Runner.send`); the worker runs them, plays while playing or training, and writes the newest `Frame`
(tui/frames.py) into `Runner.frame` at most every `FRAME_INTERVAL` s. The app reads it on a timer (pull model, as
memray's live TUI does) and never uses `call_from_thread`, so quitting cannot deadlock; the worker checks a stop
event and exits within a fraction of a second. The Runner only schedules: phases, units of play, warm-up, pending
changes and the diagnostics caches are rnnsim.play's; the compare view's simulation B is a second Play, stepped
by the same calls. Nothing here imports Textual: plain threading, testable on its own.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Callable

from rnnsim.explain import PassWeights
from rnnsim.play import Change, Phase, Play, Unit, changes_model

from .frames import (DEFAULT_SPEED_INDEX, SPEEDS, Frame, History, ProfileGhost, build_frame, compare_frame,
                     speed_label)
from .budget import TrainingBudget
from .knobs import COMPARE_KNOBS, describe, knob_value, next_value

FRAME_INTERVAL = 0.07  # seconds between published frames while running
BURST = 0.01  # seconds of stepping at max speed between checks of the queue and the frame timer
#: at start the worker waits up to this long for the UI to draw the first frame before it loads the kernels:
#: importing numba holds the GIL for most of ~0.8 s and would otherwise delay that first paint
UI_WAIT = 1.0
_STAGE = {Phase.IDLE: 0, Phase.FORWARD: 1, Phase.FORWARD_DONE: 2, Phase.BACKWARD: 3, Phase.BACKWARD_DONE: 4}


def _stage(sim) -> tuple:
    """How far a simulation is: (iteration, phase, time step within the phase), comparable between cells."""
    phase = sim.phase
    return sim.iteration, _STAGE[phase], sim.t if phase == Phase.FORWARD else sim.bt if phase == Phase.BACKWARD else 0


_UPDATE = Unit.UPDATE  # a module global: looking a member up on its Enum class costs ~0.15 µs per step
_BACKWARD_DONE = Phase.BACKWARD_DONE


class Runner(TrainingBudget):
    """Owns one Play (and the compare view's second one) in a worker thread; the only object that touches them.

    Commands (`send(name, *args)`): step [n], play, pause, toggle_play, one_pass, train [n], toggle_train, train_more,
    reset, new_seed, change (dict of dotted keys), modify (scenario -> dict), load (a Scenario),
    speed (+1/-1), compare (knob or None), compare_next, explain (a requests.ExplainRequest), noop,
    stop.

    Training runs whole iterations at the speed setting (iterations per second; max: as fast as it can) and
    stops at the budget: ``training.iterations`` of the running scenario (`train_target`). ``train_more``
    (the `T` key) moves the target one budget further and trains on; ``train n`` trains n more iterations.
    """

    def __init__(
        self,
        scenario,
        sim_factory: Callable | None = None,
        frame_interval: float = FRAME_INTERVAL,
        diagnostics_module=None,
        wait_for_ui: bool = False,
    ) -> None:
        self._scenario = scenario
        self._wait_for_ui = wait_for_ui
        #: set by the UI once it has drawn a frame with the simulation in it (see UI_WAIT)
        self.ui_drawn = threading.Event()
        self._sim_factory = sim_factory
        self._diag = diagnostics_module
        self.frame_interval = frame_interval
        self._queue: queue.Queue = queue.Queue()
        self.sent = 0  # commands sent (UI side); the worker counts those it ran in _handled, published in frames
        self._handled = 0
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._frame = Frame(scenario=scenario, message="loading kernels…")
        self._thread: threading.Thread | None = None
        # worker-only state
        self.play: Play | None = None
        self.play_b: Play | None = None  # the compare view's simulation B: A's scenario with one knob changed
        self._compare_knob: str | None = None
        self._warm: set[str] = set()  # cells whose kernels are loaded (A and B share it)
        self._playing = False
        self._training = False
        self._speed_index = DEFAULT_SPEED_INDEX
        self._layer: int | None = None  # the layer the Dynamics view shows (None: the last one)
        self._train_target: int | None = None  # None: the budget (training.iterations); set by T / train n
        self._seq = 0
        self._data_version = 0
        self._history_version = 0
        self._last_publish = 0.0
        self._dirty = True
        self._compiling = True
        self._error: str | None = None
        self._message = ""
        self._steps_done = 0
        self._next_step_at = 0.0
        self._history = History()
        self._history_b = History()
        self._pass_weights = PassWeights()  # the parameters of the last pass, kept for the explain panel
        self._ghost = ProfileGhost()  # the last complete gradient profile (drawn dimmed under the next BPTT)
        self._one_pass = False  # playing one pass: forward + BPTT, then pause before the update (key f)

    sim = property(lambda self: None if self.play is None else self.play.sim, doc="A's Simulation")
    sim_b = property(lambda self: None if self.play_b is None else self.play_b.sim, doc="B's (compare view)")

    # ----------------------------------------------------------------- UI side
    @property
    def frame(self) -> Frame:
        return self._frame

    def start(self) -> "Runner":
        self._thread = threading.Thread(target=self._run, name="rnnsim-runner", daemon=True)
        self._thread.start()
        return self

    def send(self, name: str, *args) -> int:
        """Queue a command; returns its number (1, 2, ...): ``frame.handled`` reaches it once the worker ran it."""
        # put before clear: the worker re-sets `idle` on its next empty-queue poll
        self.sent += 1
        self._queue.put((name, args))
        self._idle.clear()
        return self.sent

    def stop(self, timeout: float = 2.0) -> None:
        """Ask the worker to finish and wait up to `timeout` s. The worker checks the stop event between steps;
        a step under way (or a Numba compilation, which cannot be interrupted) is not waited for longer: the
        thread is a daemon, so it never keeps the process alive (Textual issue 3966)."""
        first = not self._stop.is_set()
        self._stop.set()
        if first:
            self._queue.put(("stop", ()))
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout if first else 0)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait_idle(self, timeout: float = 30.0) -> Frame:
        """Block until every queued command ran, nothing plays, and the frame is current.

        For tests and benchmarks only; the UI never calls it.
        """
        if not self._idle.wait(timeout):
            raise TimeoutError(f"runner not idle after {timeout} s: {self._frame.message}")
        return self._frame

    # ------------------------------------------------------------- worker side
    def _run(self) -> None:
        try:
            self._build(self._scenario, compile_first=True)
        except Exception as exc:  # noqa: BLE001 - shown in the UI, not raised in a thread
            self._error = f"{type(exc).__name__}: {exc}"
            self._compiling = False
        self._publish(force=True)
        q, stop = self._queue, self._stop
        while not stop.is_set():
            try:
                if self._playing or self._training:
                    cmd = q.get_nowait()
                else:
                    pending = False
                    if q.empty():
                        self._publish(force=True)
                        # a large state's Jacobian norms come a slice per frame (Play.jacobian_norms): go on
                        # at once, a command in between; idle (for wait_idle) once they are complete
                        pending = self.play is not None and self.play.jacobian_pending
                        if not pending:
                            self._idle.set()
                    cmd = q.get_nowait() if pending else q.get(timeout=0.1)
            except queue.Empty:
                cmd = None
            if cmd is not None:
                self._idle.clear()
                name, args = cmd
                if name == "stop":
                    break
                try:
                    self._handle(name, args)
                except Exception as exc:  # noqa: BLE001
                    self._error = f"{type(exc).__name__}: {exc}"
                    self._playing = self._training = False
                self._handled += 1
                self._dirty = True
                continue
            if self.play is None:
                continue
            try:
                if self._training:
                    now = time.perf_counter()
                    speed = SPEEDS[self._speed_index]
                    if speed and now < self._next_step_at:
                        stop.wait(min(self._next_step_at - now, 0.05))
                    else:
                        if speed:
                            self._next_step_at = max(now, self._next_step_at) + 1.0 / speed
                        self._train_one()
                        self._check_budget()
                elif self._playing:
                    now = time.perf_counter()
                    speed = SPEEDS[self._speed_index]
                    if speed and now < self._next_step_at:
                        stop.wait(min(self._next_step_at - now, 0.05))
                    elif speed:
                        self._step()
                        self._pass_done()
                        self._next_step_at = max(now, self._next_step_at) + 1.0 / speed
                    else:
                        # max speed: a burst of steps up to BURST seconds between looks at the queue and frames
                        end = now + BURST
                        step, clock = self._step, time.perf_counter
                        go = self._alive_sims()
                        done = self._pass_done
                        while go and q.empty() and not stop.is_set():
                            go = step() and not done() and clock() < end
            except Exception as exc:  # noqa: BLE001
                self._error = f"{type(exc).__name__}: {exc}"
                self._playing = self._training = False
            if not self._alive_sims():
                self._playing = self._training = False
            self._publish()

    def _handle(self, name: str, args: tuple) -> None:
        play = self.play
        ready = play is not None and self._alive_sims()
        if name in ("play", "pause", "toggle_play", "train", "toggle_train", "step"):
            self._one_pass = False
        if name == "one_pass":
            # forward + BPTT at the play speed, then pause before the update (f again while it runs: pause)
            self._one_pass = ready and not (self._one_pass and self._playing)
            self._playing, self._training = self._one_pass, False
            self._next_step_at = time.perf_counter()
            self._message = "one pass: forward + BPTT, then pause before the update" if self._playing else "paused"
        elif name in ("play", "pause", "toggle_play"):
            self._playing = ready and {"play": True, "pause": False}.get(name, not self._playing)
            self._training = False
            self._next_step_at = time.perf_counter()
            self._message = "playing" if self._playing else "paused"
        elif name in ("train", "toggle_train", "train_more"):
            start = name != "toggle_train" or not self._training
            self._playing = False
            if start and ready:
                if name == "train_more":
                    self._train_target = max(self._iteration(), self.train_target) + self.budget_chunk
                elif name == "train" and args:
                    self._train_target = self._iteration() + max(int(args[0]), 0)
                if self._iteration() >= self.train_target:
                    self._training = False
                    self._message = self._budget_text()
                    return
            self._training = start and ready
            self._next_step_at = time.perf_counter()
            self._message = (f"training to iteration {self.train_target}" if self._training else "paused")
        elif name == "step":
            self._playing = self._training = False
            if ready:
                for _ in range(int(args[0]) if args else 1):
                    self._step()
        elif name == "layer":   # d / D: the layer the Dynamics view shows, clamped to the stack
            n = getattr(play.sim, "num_layers", 1) if play is not None else 1
            now = n - 1 if self._layer is None else min(self._layer, n - 1)
            self._layer = min(max(now + int(args[0]), 0), n - 1)
            self._message = f"showing layer {self._layer + 1}/{n}" if n > 1 else "one layer (model.num_layers = 1)"
            self._dirty = True
            self._data_version += 1
        elif name == "speed":
            self._speed_index = min(max(self._speed_index + int(args[0]), 0), len(SPEEDS) - 1)
            self._message = f"speed {speed_label(SPEEDS[self._speed_index])}"
        elif name == "reset":
            self._playing = self._training = False
            play.apply_pending(force=True)
            play.reset()
            self._after_rebuild("reset: same seed, fresh weights and data")
        elif name == "new_seed":
            base = play.target
            if self._refuse_locked(base, {"scenario.seed": None}):
                return
            self._playing = self._training = False
            new = base.with_changes({"scenario.seed": int(base.scenario.seed) + 1})
            play.pending = None
            play.reconfigure(new)
            self._compiling = False
            self._after_rebuild(f"new seed {new.scenario.seed}")
        elif name in ("change", "modify"):
            # "modify" carries a pure function of the current scenario (e.g. the next clipping mode), evaluated
            # here, in order, so quick repeated key presses each see the previous one's result
            changes = dict(args[0](play.target) if name == "modify" else args[0])
            if self._refuse_locked(play.target, changes):
                return
            what = play.change(changes)  # ScenarioError propagates to the caller's message
            self._compiling, self._error = False, None
            listed = ", ".join(f"{k}={v}" for k, v in changes.items())
            if what is Change.CHANGED:  # training-only knobs (clipping, optimizer...) act at the next update
                self._message = "changed: " + listed
                if self.play_b is not None:
                    # B follows A (with its own value of the compared knob); changing that knob restarts both
                    self._sync_b(restart=self._compare_knob in changes)
            elif what is Change.PENDING:
                self._message = "pending until the next iteration: " + listed
        elif name == "load":
            self._playing = self._training = False
            self._build(args[0], compile_first=args[0].model.cell not in self._warm)
            self._message = f"loaded {args[0].scenario.name}"
        elif name == "compare":
            # args: (knob,) to start or switch the compare view's simulation B, (None,) to drop it
            knob = args[0] if args else COMPARE_KNOBS[0]
            if knob is None:
                self.play_b, self._compare_knob = None, None
                self._message = "compare off"
            elif knob != self._compare_knob or self.play_b is None:
                if knob not in COMPARE_KNOBS:
                    raise ValueError(f"cannot compare {knob!r}; one of {', '.join(COMPARE_KNOBS)}")
                self._compare_knob = knob
                self._sync_b(restart=True)
        elif name == "compare_next":
            i = COMPARE_KNOBS.index(self._compare_knob) if self._compare_knob in COMPARE_KNOBS else -1
            self._compare_knob = COMPARE_KNOBS[(i + 1) % len(COMPARE_KNOBS)]
            self._sync_b(restart=True)
        elif name == "explain":
            sim = self.play.sim if play is not None else None
            args[0].run(sim, self._pass_weights.get(sim) if sim is not None else None)
        elif name != "noop":
            raise ValueError(f"unknown runner command {name!r}")

    def _pass_done(self) -> bool:
        """While playing one pass (key f): pause once BPTT is complete (the update not applied). True if it paused."""
        if not self._one_pass or self.play.sim.phase != Phase.BACKWARD_DONE:
            return False
        self._one_pass = self._playing = False
        self._message = "one pass done: n applies the update, f plays the next pass"
        return True

    def _alive_sims(self) -> bool:
        """True while a simulation can still step: A without a NaN/inf, or the compare view's B without one."""
        a, b = self.play, self.play_b
        return (a is not None and a.sim.sentinel is None) or (b is not None and b.sim.sentinel is None)

    def _refuse_locked(self, base, changes: dict) -> bool:
        """A lesson's `scenario.locked` keys are not changed: say so in the alert line and change nothing."""
        locked = [k for k in changes if k in base.scenario.locked]
        if not locked:
            return False
        self._error = f"{locked[0]} is locked by this lesson (scenario.locked); open another scenario to change it"
        return True

    # ------------------------------------------------------------ building and changing
    def _build(self, scenario, compile_first: bool) -> None:
        if self.play is None:
            self.play = Play(scenario, self._sim_factory, diagnostics=self._diag, warm=self._warm,
                             on_warm_up=self._loading, on_applied=self._applied)
        else:
            self.play.load(scenario)
        if compile_first:
            # Building a Simulation needs no kernels (numba loads on the first kernel call): draw its first frame
            # now, then load the kernels (Play.warm_up). Commands sent meanwhile wait in the queue.
            self._compiling = True
            self._after_rebuild("loading kernels… (a first run compiles them, ~15 s; later runs load them from "
                                "the cache)")
            self._publish(force=True)
            if self._wait_for_ui:
                self.ui_drawn.wait(UI_WAIT)
            self.play.warm_up(force=True)
        self._warm.add(scenario.model.cell)
        self._compiling = False
        self._after_rebuild(f"ready: {scenario.scenario.name}")

    def _loading(self, cell: str) -> None:
        """A change loads a new cell's kernels (seconds on a first run): say so before it starts."""
        self._compiling, self._message = True, f"loading {cell} kernels…"
        self._publish(force=True)

    def _applied(self, scenario, restarted: bool) -> None:
        """A pending change took effect (Play.apply_pending)."""
        self._compiling = False
        self._after_rebuild("applied: " + describe(scenario) +
                            (" (restarted from the seed: same data)" if restarted else ""))

    def _after_rebuild(self, message: str) -> None:
        self._error = None
        self._message = message
        self._steps_done = 0
        self._ghost.clear()
        self._train_target = None  # a rebuilt simulation starts at iteration 0: the budget counts again
        self.play.invalidate()
        self._data_version += 1
        self._history_version += 1
        self._dirty = True
        if self.play_b is not None and self._compare_knob is not None:
            self._sync_b(restart=True)

    def _sync_b(self, restart: bool) -> None:
        """Keep B = A's scenario with the compared knob changed. A restart rebuilds B from the seed and resets A
        (same seed, so both see the same data from the same iteration)."""
        if self._compare_knob is None or self.play is None:
            return
        a, knob = self.play.sim, self._compare_knob
        # B's value of the compared knob: the next one in its cycle (on/off for LayerNorm)
        target = a.scenario.with_changes({knob: next_value(a.scenario, knob)})
        b = self.play_b
        if restart or b is None or changes_model(b.scenario, target):
            if restart and (a.iteration > 0 or a.phase != Phase.IDLE):
                self._playing = self._training = False
                self.play.reset()
                self._steps_done = 0
                self._train_target = None
                self._data_version += 1
                self._history_version += 1
            new_cell = target.model.cell not in self._warm
            if new_cell:
                self._loading(target.model.cell)
            b = Play(target, self.play.factory, diagnostics=self._diag, warm=self._warm)
            if new_cell:
                b.warm_up()
                self._compiling = False
            self.play_b = b
            self._history_b = History()
            self._message = (f"compare {knob}: A = {knob_value(a.scenario, knob)}, B = {knob_value(target, knob)}; "
                             f"both from seed {target.scenario.seed}, same data")
        else:
            b.sim.reconfigure(target)
        self._dirty = True

    # ------------------------------------------------------------------- playing
    def _step(self) -> bool:
        """One unit of play on A and on B (see Play.advance); A's pending change waits until B did its update.
        Returns whether a simulation can still step (as _alive_sims, without a second call per step)."""
        play = self.play
        if play.sim.phase is _BACKWARD_DONE:  # the next unit is the update: keep the pass's weights (explain)
            self._pass_weights.keep(play.sim)
        unit = play.advance(False)  # settle=False: a pending change waits for B's update (below)
        b = self.play_b
        if b is not None:
            if unit is None:  # A stopped at a NaN/inf: only B (compare view) still runs
                if b.advance() is _UPDATE:
                    self._history_version += 1
            else:
                # B catches up with A's stage: a unit is a time step of a recurrent cell but a whole pass of
                # attention, so with cells that differ B may need several units, or none, to stay level with A
                goal = _stage(play.sim)
                while _stage(b.sim) < goal and b.advance() is not None:
                    pass
        if unit is _UPDATE:
            self._history_version += 1
            self._ghost.keep(play.diagnostics.gradient_profile(play.sim))  # still the finished pass's
            play.settle()
            b = self.play_b  # settling may have restarted B
        self._steps_done += 1
        self._data_version += 1
        self._dirty = True
        return play.sim.sentinel is None or (b is not None and b.sim.sentinel is None)

    def _train_one(self) -> None:
        """One whole iteration on A and B (finishing a pass that is under way): forward, BPTT, update."""
        play = self.play
        dead = play.sim.sentinel is not None  # then only B (compare view) still runs
        self._pass_weights.keep(play.sim)  # the weights this iteration's pass runs with (explain, after the update)
        self._steps_done += play.iterate(settle=False)
        if self.play_b is not None:
            self.play_b.iterate()
        self._history_version += 1
        self._data_version += 1
        self._dirty = True
        if not dead:
            play.settle()

    def _publish(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and (not self._dirty or now - self._last_publish < self.frame_interval):
            return
        if not self._dirty and force and self._frame.seq > 0:
            return
        self._last_publish = now
        self._dirty = False
        self._seq += 1
        status = dict(seq=self._seq, compiling=self._compiling, error=self._error, message=self._message,
                      handled=self._handled)
        if self.play is None:
            self._frame = Frame(scenario=self._scenario, **status)
            return
        b = self.play_b
        compare = None if b is None else compare_frame(self.play, b, self._history_b, self._data_version,
                                                       self._compare_knob)
        self._frame = build_frame(
            self.play, self._history, busy=self._playing or self._training, compare=compare, ghost=self._ghost,
            playing=self._playing, training=self._training, speed=SPEEDS[self._speed_index],
            train_target=self.train_target,
            steps_done=self._steps_done, data_version=self._data_version, history_version=self._history_version,
            layer=self._layer,
            **status,
        )
        if not (self._playing or self._training) and self.play.jacobian_pending:
            self._dirty = True  # the next frame computes the next slice of the Jacobian norms
