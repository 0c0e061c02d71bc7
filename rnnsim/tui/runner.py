"""The worker thread that owns a Simulation and publishes immutable frames.

DESIGN §5: the UI never waits on the simulation and the simulation never waits on the UI.
The app puts commands on a queue (`Runner.send`); the worker executes them, steps the
simulation while playing or training, and writes the newest `Frame` into `Runner.frame`
at most every `FRAME_INTERVAL` seconds.  The app reads `Runner.frame` on a timer (pull
model, as memray's live TUI does) and never uses `call_from_thread`, so quitting cannot
deadlock; the worker loop checks a stop event and exits within a fraction of a second.

Nothing here imports Textual: the runner is plain threading, testable on its own.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

FRAME_INTERVAL = 0.07  # seconds between published frames while running
SPEEDS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 0)  # steps per second; 0 = as fast as possible
DEFAULT_SPEED_INDEX = 5  # 50 steps/s
BURST = 0.01  # seconds of stepping at max speed between checks of the queue and the frame timer
#: at start the worker waits up to this long for the UI to draw the first frame before it loads the kernels:
#: importing numba holds the GIL for most of ~0.8 s and would otherwise delay that first paint
UI_WAIT = 1.0
JAC_BUDGET = 30  # Jacobian norms get at most ~1/30 of the worker's time while playing


def speed_label(speed: int) -> str:
    return "max" if speed == 0 else f"{speed}/s"


@dataclass(frozen=True)
class Frame:
    """Everything the views need, copied out of the Simulation (never a live array).

    `hidden` is h_t of batch element 0, shape (T, H): one real sequence, so the
    heatmap shows what one input does (a batch mean would blur tanh states towards 0).
    `profile` and `jacobian` are the core's batch means (diagnostics.gradient_profile,
    diagnostics.jacobian_norms).  `hidden_filled`/`grad_filled` say how many columns are
    valid (forward fills left to right, BPTT fills right to left); `stale` is True when
    the arrays are those of the previous pass (after an update, before the next step).
    """

    seq: int = 0
    compiling: bool = True
    ready: bool = False
    phase: str = "idle"
    t: int = 0
    bt: int = 0
    T: int = 0
    H: int = 0
    B: int = 0
    iteration: int = 0
    loss: float | None = None
    grad_norm: float | None = None
    clipped_norm: float | None = None
    clipped: bool = False
    baseline: float | None = None
    scenario: Any = None  # the scenario the simulation runs
    pending: Any = None  # a changed scenario waiting for the next iteration boundary
    hidden: np.ndarray | None = None
    hidden_filled: int = 0
    profile: np.ndarray | None = None
    grad_filled: int = 0
    jacobian: np.ndarray | None = None
    gates: dict = field(default_factory=dict)
    stale: bool = False
    losses: np.ndarray = field(default_factory=lambda: np.zeros(0))
    grad_norms: np.ndarray = field(default_factory=lambda: np.zeros(0))
    clipped_norms: np.ndarray = field(default_factory=lambda: np.zeros(0))
    clipped_flags: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    finite_flags: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    decay_text: str = ""
    spectrum_text: str = ""
    spectrum: Any = None  # diagnostics.Spectrum of the current weights (eigenvalues copied), or None
    spectrum_version: int = 0  # bumps only when the weights changed (an update, a rebuild)
    cosine: float | None = None  # cos(g before clipping, g after) of the last update
    compare: Any = None  # a CompareFrame while the compare view's second simulation exists
    sentinel: str | None = None
    error: str | None = None
    message: str = ""
    playing: bool = False
    training: bool = False
    speed: int = SPEEDS[DEFAULT_SPEED_INDEX]
    steps_done: int = 0
    # version counters: a widget redraws only when the data it shows changed
    data_version: int = 0
    history_version: int = 0

    @property
    def display_scenario(self):
        return self.pending if self.pending is not None else self.scenario


COMPARE_KNOBS = ("model.cell", "training.clip", "model.init", "model.layernorm", "model.activation")
_CYCLES = {
    "model.cell": ["rnn", "lstm", "gru", "attention"],
    "training.clip": ["none", "norm", "value"],
    "model.init": ["pytorch", "orthogonal", "identity", "normal"],
    "model.activation": ["tanh", "relu"],
}


def knob_value(sc, key: str):
    section, name = key.split(".")
    return getattr(getattr(sc, section), name)


def other_value(sc, key: str):
    """The value simulation B gets for the compared knob: the next one in its cycle (on/off for LayerNorm)."""
    cur = knob_value(sc, key)
    if key == "model.layernorm":
        return not cur
    cyc = _CYCLES[key]
    return cyc[(cyc.index(cur) + 1) % len(cyc)] if cur in cyc else cyc[0]


@dataclass(frozen=True)
class CompareFrame:
    """Simulation B of the compare view: A's scenario with one knob changed, same seed and data, stepped with A."""

    knob: str
    value_a: Any
    value_b: Any
    scenario: Any
    profile: np.ndarray
    grad_filled: int
    losses: np.ndarray
    finite_flags: np.ndarray
    loss: float | None
    iteration: int
    sentinel: str | None
    version: int


def _f(x) -> float | None:
    if x is None:
        return None
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def _changes_model(a, b) -> bool:
    """True when going from scenario a to b rebuilds the simulation (model, task or seed)."""
    return (
        a.model != b.model
        or a.task != b.task
        or a.scenario.seed != b.scenario.seed
    )


class _History:
    """Per-iteration arrays grown in place from sim.history (append-only): O(new entries) per frame, not O(all).

    Frames get read-only views of the filled part; entries never change once written and a restart makes new
    buffers, so a view handed out earlier stays valid."""

    FIELDS = ("loss", "grad_norm", "clipped_norm", "clipped", "finite")

    def __init__(self) -> None:
        self._new(64)

    def _new(self, cap: int) -> None:
        self.n = 0
        self.source = None
        self.bufs = [np.full(cap, np.nan) for _ in range(3)] + [np.zeros(cap, bool), np.zeros(cap, bool)]

    def update(self, history: list):
        if history is not self.source or len(history) < self.n:
            self._new(64)
            self.source = history
        m = len(history)
        if m > len(self.bufs[0]):
            cap = max(m, 2 * len(self.bufs[0]))
            grown = []
            for b in self.bufs:
                g = np.full(cap, np.nan) if b.dtype != bool else np.zeros(cap, bool)
                g[: self.n] = b[: self.n]
                grown.append(g)
            self.bufs = grown
        for i in range(self.n, m):
            h = history[i]
            self.bufs[0][i] = _nan(h.loss)
            self.bufs[1][i] = _nan(h.grad_norm)
            self.bufs[2][i] = _nan(getattr(h, "clipped_norm", None))
            self.bufs[3][i] = bool(h.clipped)
            self.bufs[4][i] = bool(h.finite)
        self.n = m
        views = []
        for b in self.bufs:
            v = b[:m]
            v.flags.writeable = False
            views.append(v)
        return views


class Runner:
    """Owns one Simulation in a worker thread; the only object that touches it.

    Commands (`send(name, *args)`): step [n], play, pause, toggle_play, train, toggle_train,
    reset, new_seed, change (dict of dotted keys), modify (scenario -> dict), load (a Scenario),
    speed (+1/-1), stop.
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
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._lock = threading.Lock()
        self._frame = Frame(scenario=scenario, message="loading kernels…")
        self._thread: threading.Thread | None = None
        # worker-only state
        self.sim = None
        self._pending = None
        self._playing = False
        self._training = False
        self._speed_index = DEFAULT_SPEED_INDEX
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
        self._seen_cells: set[str] = set()
        self._diag_cache: dict = {}
        self._history = _History()
        self._jac_cost = 0.0
        self._jac_time = 0.0
        self._build_count = 0
        self.sim_b = None  # the compare view's second simulation (A's scenario with one knob changed)
        self._compare_knob: str | None = None
        self._history_b = _History()
        self._spec_version = 0

    # ----------------------------------------------------------------- UI side
    @property
    def frame(self) -> Frame:
        return self._frame

    def start(self) -> "Runner":
        self._thread = threading.Thread(target=self._run, name="rnnsim-runner", daemon=True)
        self._thread.start()
        return self

    def send(self, name: str, *args) -> None:
        # put before clear: the worker re-sets `idle` on its next empty-queue poll
        self._queue.put((name, args))
        self._idle.clear()

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
        while not self._stop.is_set():
            busy = self._playing or self._training
            try:
                if busy:
                    cmd = self._queue.get_nowait()
                else:
                    if self._queue.empty():
                        self._publish(force=True)
                        self._idle.set()
                    cmd = self._queue.get(timeout=0.1)
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
                self._dirty = True
                continue
            if self.sim is None:
                continue
            try:
                if self._training:
                    self._train_one()
                elif self._playing:
                    now = time.perf_counter()
                    speed = SPEEDS[self._speed_index]
                    if speed and now < self._next_step_at:
                        self._stop.wait(min(self._next_step_at - now, 0.05))
                    elif speed:
                        self._step()
                        self._next_step_at = max(now, self._next_step_at) + 1.0 / speed
                    else:
                        # max speed: a burst of steps up to BURST seconds between looks at the queue and frames
                        end = now + BURST
                        q = self._queue
                        while q.empty() and self._alive_sims() and not self._stop.is_set():
                            self._step()
                            if time.perf_counter() >= end:
                                break
            except Exception as exc:  # noqa: BLE001
                self._error = f"{type(exc).__name__}: {exc}"
                self._playing = self._training = False
            if self.sim is not None and not self._alive_sims():
                self._playing = self._training = False
            self._publish()

    def _handle(self, name: str, args: tuple) -> None:
        sim = self.sim
        if name in ("play", "pause", "toggle_play"):
            want = {"play": True, "pause": False}.get(name, not self._playing)
            self._playing = want and sim is not None and self._alive_sims()
            self._training = False
            self._next_step_at = time.perf_counter()
            self._message = "playing" if self._playing else "paused"
        elif name in ("train", "toggle_train"):
            want = True if name == "train" else not self._training
            self._training = want and sim is not None and self._alive_sims()
            self._playing = False
            self._message = "training" if self._training else "paused"
        elif name == "step":
            self._playing = self._training = False
            if sim is not None and self._alive_sims():
                for _ in range(int(args[0]) if args else 1):
                    self._step()
        elif name == "speed":
            self._speed_index = min(max(self._speed_index + int(args[0]), 0), len(SPEEDS) - 1)
            self._message = f"speed {speed_label(SPEEDS[self._speed_index])}"
        elif name == "reset":
            self._playing = self._training = False
            self._apply_pending(force=True)
            sim.reset()
            self._after_rebuild("reset: same seed, fresh weights and data")
        elif name == "new_seed":
            base = self._pending if self._pending is not None else sim.scenario
            if self._refuse_locked(base, {"scenario.seed": None}):
                return
            self._playing = self._training = False
            new = base.with_changes({"scenario.seed": int(base.scenario.seed) + 1})
            self._pending = None
            self._rebuild_with(new)
            self._after_rebuild(f"new seed {new.scenario.seed}")
        elif name in ("change", "modify"):
            base = self._pending if self._pending is not None else sim.scenario
            # "modify" carries a pure function of the current scenario (e.g. the next clipping mode), evaluated
            # here, in order, so quick repeated key presses each see the previous one's result
            changes = dict(args[0](base) if name == "modify" else args[0])
            if self._refuse_locked(base, changes):
                return
            new = base.with_changes(changes)  # ScenarioError propagates to the caller's message
            self._error = None
            if not _changes_model(sim.scenario, new):
                # training-only knobs (clipping, optimizer...) act at the next update: apply now
                sim.reconfigure(new)
                self._pending = None
                self._message = "changed: " + ", ".join(f"{k}={v}" for k, v in changes.items())
                if self.sim_b is not None:
                    # B follows A (with its own value of the compared knob); changing that knob restarts both
                    self._sync_b(restart=self._compare_knob in changes)
            else:
                self._pending = new
                self._apply_pending()
                if self._pending is not None:
                    self._message = "pending until the next iteration: " + ", ".join(
                        f"{k}={v}" for k, v in changes.items()
                    )
        elif name == "load":
            self._playing = self._training = False
            self._pending = None
            self._build(args[0], compile_first=args[0].model.cell not in self._seen_cells)
            self._message = f"loaded {args[0].scenario.name}"
        elif name == "compare":
            # args: (knob,) to start or switch the compare view's simulation B, (None,) to drop it
            knob = args[0] if args else COMPARE_KNOBS[0]
            if knob is None:
                self.sim_b, self._compare_knob = None, None
                self._message = "compare off"
            elif knob != self._compare_knob or self.sim_b is None:
                if knob not in COMPARE_KNOBS:
                    raise ValueError(f"cannot compare {knob!r}; one of {', '.join(COMPARE_KNOBS)}")
                self._compare_knob = knob
                self._sync_b(restart=True)
        elif name == "compare_next":
            i = COMPARE_KNOBS.index(self._compare_knob) if self._compare_knob in COMPARE_KNOBS else -1
            self._compare_knob = COMPARE_KNOBS[(i + 1) % len(COMPARE_KNOBS)]
            self._sync_b(restart=True)
        elif name == "noop":
            pass
        else:
            raise ValueError(f"unknown runner command {name!r}")

    def _alive_sims(self) -> bool:
        """True while a simulation can still step: A without a NaN/inf, or the compare view's B without one."""
        sim, b = self.sim, self.sim_b
        return (sim is not None and sim.sentinel is None) or (b is not None and b.sentinel is None)

    def _refuse_locked(self, base, changes: dict) -> bool:
        """A lesson's `scenario.locked` keys are not changed: say so in the alert line and change nothing."""
        locked = [k for k in changes if k in base.scenario.locked]
        if not locked:
            return False
        self._error = f"{locked[0]} is locked by this lesson (scenario.locked); open another scenario to change it"
        return True

    def _b_scenario(self):
        sc = self.sim.scenario
        return sc.with_changes({self._compare_knob: other_value(sc, self._compare_knob)})

    def _sync_b(self, restart: bool) -> None:
        """Keep B = A's scenario with the compared knob changed. A restart rebuilds B from the seed and resets A
        (same seed, so both see the same data from the same iteration)."""
        if self._compare_knob is None or self.sim is None:
            return
        target = self._b_scenario()
        b = self.sim_b
        if restart or b is None or _changes_model(b.scenario, target):
            if restart and (self.sim.iteration > 0 or self.sim.phase != "idle"):
                self._playing = self._training = False
                self.sim.reset()
                self._steps_done = 0
                self._build_count += 1
                self._data_version += 1
                self._history_version += 1
            new_cell = target.model.cell not in self._seen_cells
            if new_cell:
                self._compiling = True
                self._message = f"loading {target.model.cell} kernels…"
                self._publish(force=True)
            b = self._sim_factory(target)
            if new_cell:
                b.forward()
                b.backward()
                b.reset()
                self._seen_cells.add(target.model.cell)
                self._compiling = False
            self.sim_b = b
            self._history_b = _History()
            self._message = (f"compare {self._compare_knob}: A = {knob_value(self.sim.scenario, self._compare_knob)}, "
                             f"B = {knob_value(target, self._compare_knob)}; both from seed "
                             f"{target.scenario.seed}, same data")
        else:
            b.reconfigure(target)
        self._dirty = True

    def _step_b(self) -> None:
        """Mirror one unit of A's play on B (same phase machine, same T)."""
        b = self.sim_b
        if b is None or b.sentinel is not None:
            return
        phase = b.phase
        if phase in ("idle", "forward"):
            b.step_forward()
        elif phase in ("forward_done", "backward"):
            b.step_backward()
        elif phase == "backward_done":
            b.apply_update()
        else:
            b.step_forward()

    def _train_one_b(self) -> None:
        b = self.sim_b
        if b is None or b.sentinel is not None:
            return
        if b.phase == "idle":
            b.forward()
        while b.phase in ("idle", "forward") and b.sentinel is None:
            b.step_forward()
        if b.sentinel is None and b.phase in ("forward_done", "backward"):
            if b.phase == "forward_done" and b.bt == 0:
                b.backward()
            else:
                while b.phase in ("forward_done", "backward") and b.sentinel is None:
                    b.step_backward()
        if b.sentinel is None:
            b.apply_update()

    def _diagnostics(self):
        if self._diag is None:
            from rnnsim import diagnostics

            self._diag = diagnostics
        return self._diag

    def _build(self, scenario, compile_first: bool) -> None:
        if self._sim_factory is None:
            from rnnsim import Simulation

            self._sim_factory = Simulation
        sim = self._sim_factory(scenario)
        self.sim = sim
        if compile_first:
            # Building a Simulation needs no kernels (numba is imported on the first kernel call): draw its first
            # frame now, then load the kernels (from numba's cache, or compiled on a first run) by running one pass
            # and starting again from the seed. Commands sent meanwhile wait in the queue.
            self._compiling = True
            self._after_rebuild("loading kernels… (a first run compiles them, ~15 s; later runs load them from "
                                "the cache)")
            self._publish(force=True)
            if self._wait_for_ui:
                self.ui_drawn.wait(UI_WAIT)
            sim.forward()
            sim.backward()
            sim.reset()
        self._seen_cells.add(scenario.model.cell)
        self._compiling = False
        self._after_rebuild(f"ready: {scenario.scenario.name}")

    def _rebuild_with(self, new) -> None:
        cell_new = new.model.cell not in self._seen_cells
        if cell_new:
            self._compiling = True
            self._message = f"loading {new.model.cell} kernels…"
            self._publish(force=True)
        self.sim.reconfigure(new)
        if cell_new:
            self.sim.forward()
            self.sim.backward()
            self.sim.reset()
            self._seen_cells.add(new.model.cell)
        self._compiling = False

    def _after_rebuild(self, message: str) -> None:
        self._error = None
        self._message = message
        self._steps_done = 0
        self._diag_cache.clear()
        self._build_count += 1
        self._data_version += 1
        self._history_version += 1
        self._dirty = True
        if self.sim_b is not None and self._compare_knob is not None:
            self._sync_b(restart=True)

    def _at_boundary(self) -> bool:
        sim = self.sim
        return sim.phase == "idle"

    def _apply_pending(self, force: bool = False) -> None:
        if self._pending is None:
            return
        if not (force or self._at_boundary()):
            return
        new, self._pending = self._pending, None
        self._rebuild_with(new)
        rebuilt = _changes_model(self.sim.scenario, new) or self.sim.iteration == 0
        self._after_rebuild("applied: " + _describe(new) + (" (restarted from the seed: same data)" if rebuilt else ""))

    def _step(self) -> None:
        """One unit of play: a forward step, a BPTT step, or the update that ends an iteration."""
        sim = self.sim
        phase = sim.phase
        if sim.sentinel is not None:  # only B (compare view) still runs
            self._step_b()
            if self.sim_b is not None and self.sim_b.phase == "idle":
                self._history_version += 1
        elif phase in ("idle", "forward"):
            if phase == "idle":
                self._apply_pending()
                sim = self.sim
            sim.step_forward()
            self._step_b()
        elif phase in ("forward_done", "backward"):
            sim.step_backward()
            self._step_b()
        elif phase == "backward_done":
            sim.apply_update()
            self._step_b()
            self._history_version += 1
            self._apply_pending()
        else:  # unknown phase: be safe, start a new pass
            sim.step_forward()
            self._step_b()
        self._steps_done += 1
        self._data_version += 1
        self._dirty = True

    def _train_one(self) -> None:
        """One whole iteration (finishing a pass that is under way): forward, BPTT, update."""
        sim = self.sim
        if sim.sentinel is not None:  # only B (compare view) still runs
            self._train_one_b()
            self._history_version += 1
            self._data_version += 1
            self._dirty = True
            return
        if sim.phase == "idle":
            self._apply_pending()
            sim = self.sim
            sim.forward()
            self._steps_done += sim.T
        else:
            while sim.phase in ("idle", "forward") and sim.sentinel is None:
                sim.step_forward()
                self._steps_done += 1
        if sim.sentinel is None and sim.phase in ("forward_done", "backward"):
            if sim.phase == "forward_done" and sim.bt == 0:
                sim.backward()
                self._steps_done += sim.T
            else:
                while sim.phase in ("forward_done", "backward") and sim.sentinel is None:
                    sim.step_backward()
                    self._steps_done += 1
        if sim.sentinel is None:
            sim.apply_update()
            self._history_version += 1
        self._train_one_b()
        self._data_version += 1
        self._dirty = True
        self._apply_pending()

    def _jacobian(self, sim, force: bool = False) -> np.ndarray:
        """Per-step Jacobian norms (the core's diagnostics.jacobian_norms, ~1 ms per step).

        They only change with the forward pass, so they are cached per (sim, iteration, t).
        While playing or training they are recomputed at most once per JAC_BUDGET × their
        own cost (so they take at most ~1/JAC_BUDGET of the worker's time); when the user is
        stepping or paused (`force`) they are always current.
        """
        key = (id(sim), self._build_count, sim.iteration, sim.t, sim.phase == "idle")
        hit = self._diag_cache.get("jac")
        if hit is not None and hit[0] == key:
            return hit[1]
        now = time.perf_counter()
        if not force and hit is not None and now - self._jac_time < JAC_BUDGET * self._jac_cost:
            arr = hit[1]
            if hit[0][:2] == key[:2] and len(arr) == sim.T:
                return arr
            return np.full(sim.T, np.nan)
        arr = np.asarray(self._diagnostics().jacobian_norms(sim), dtype=float).copy()
        done = time.perf_counter()
        self._jac_cost, self._jac_time = done - now, done
        self._diag_cache["jac"] = (key, arr)
        return arr

    def _compare_frame(self, d) -> CompareFrame:
        b = self.sim_b
        losses, _, _, _, finite = self._history_b.update(b.history)
        last = b.history[-1] if b.history else None
        knob = self._compare_knob
        return CompareFrame(
            knob=knob,
            value_a=knob_value(self.sim.scenario, knob),
            value_b=knob_value(b.scenario, knob),
            scenario=b.scenario,
            profile=np.asarray(d.gradient_profile(b), dtype=float).copy(),
            grad_filled=int(b.bt),
            losses=losses,
            finite_flags=finite,
            loss=_f(b.loss) if b.loss is not None else (_f(last.loss) if last else None),
            iteration=int(b.iteration),
            sentinel=None if b.sentinel is None else str(b.sentinel),
            version=self._data_version,
        )

    def _publish(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and (not self._dirty or now - self._last_publish < self.frame_interval):
            return
        if not self._dirty and force and self._frame.seq > 0:
            return
        self._last_publish = now
        self._dirty = False
        self._seq += 1
        sim = self.sim
        pending = self._pending
        if sim is None:
            self._frame = Frame(
                seq=self._seq,
                compiling=self._compiling,
                scenario=self._scenario,
                error=self._error,
                message=self._message,
            )
            return
        d = self._diagnostics()
        T = int(sim.T)
        phase = str(sim.phase)
        t, bt = int(sim.t), int(sim.bt)
        # after an update (phase idle) the core's arrays and diagnostics still describe the latest pass until the
        # next forward begins: show them, marked as the previous pass
        stale = phase == "idle" and t > 0
        hidden = np.array(sim.hidden[0], dtype=float)
        profile = np.asarray(d.gradient_profile(sim), dtype=float).copy()
        jac = self._jacobian(sim, force=not (self._playing or self._training))
        gates = {k: np.asarray(v, dtype=float).copy() for k, v in d.gate_means(sim).items()}
        hidden_filled = T if phase in ("forward_done", "backward", "backward_done") else t
        grad_filled = bt
        losses, gnorms, cnorms, clipped, finite = self._history.update(sim.history)
        last = sim.history[-1] if sim.history else None
        decay = ""
        spectrum = ""
        try:
            if grad_filled >= T and T >= 2:
                decay = d.decay_summary(profile).text
        except Exception:  # noqa: BLE001 - a summary is optional decoration
            decay = ""
        spec = None
        try:
            # the weights change only at an update or a rebuild: eigenvalues are computed here, in the worker,
            # once per (simulation, build, iteration), and shared by every frame until then
            key = ("spec", id(sim), self._build_count, sim.iteration)
            cached = self._diag_cache.get("spec")
            if cached is not None and cached[0] == key:
                spectrum, spec = cached[1], cached[2]
            else:
                sp = d.spectrum(sim)
                eig = np.array(sp.eigenvalues, dtype=complex)
                eig.flags.writeable = False
                spec = type(sp)(eig, sp.radius, sp.sigma_max, sp.gamma, sp.bound, sp.verdict)
                spectrum = (f"σmax(W_hh)={sp.sigma_max:.3g} · {sp.verdict}" if sim.scenario.model.cell == "rnn"
                            else sp.verdict)
                self._spec_version += 1
                self._diag_cache["spec"] = (key, spectrum, spec)
        except Exception:  # noqa: BLE001
            spectrum = ""
        sentinel = sim.sentinel
        compare = self._compare_frame(d) if self.sim_b is not None else None
        self._frame = Frame(
            seq=self._seq,
            compiling=self._compiling,
            ready=True,
            phase=phase,
            t=t,
            bt=bt,
            T=T,
            H=int(sim.H),
            B=int(sim.B),
            iteration=int(sim.iteration),
            loss=_f(sim.loss) if sim.loss is not None else (_f(last.loss) if last else None),
            grad_norm=_f(last.grad_norm) if last else None,
            clipped_norm=_f(getattr(last, "clipped_norm", None)) if last else None,
            clipped=bool(last.clipped) if last else False,
            baseline=_f(sim.baseline),
            scenario=sim.scenario,
            pending=pending,
            hidden=hidden,
            hidden_filled=hidden_filled,
            profile=profile,
            grad_filled=grad_filled,
            jacobian=jac,
            gates=gates,
            stale=stale,
            losses=losses,
            grad_norms=gnorms,
            clipped_norms=cnorms,
            clipped_flags=clipped,
            finite_flags=finite,
            decay_text=decay,
            spectrum_text=spectrum,
            spectrum=spec,
            spectrum_version=self._spec_version,
            cosine=_f(getattr(last, "cosine", None)) if last else None,
            compare=compare,
            sentinel=None if sentinel is None else str(sentinel),
            error=self._error,
            message=self._message,
            playing=self._playing,
            training=self._training,
            speed=SPEEDS[self._speed_index],
            steps_done=self._steps_done,
            data_version=self._data_version,
            history_version=self._history_version,
        )


def _nan(x) -> float:
    v = _f(x)
    return math.nan if v is None else v


def _describe(sc) -> str:
    m = sc.model
    s = f"{m.cell}"
    if m.cell == "rnn":
        s += f" {m.activation}" + (" +LN" if m.layernorm else "")
    return s + f", init {m.init}, scale {m.recurrent_scale:g}, seed {sc.scenario.seed}"
