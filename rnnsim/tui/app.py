"""RnnsimApp: the live TUI.  `run_app(scenario)` is what `rnnsim` and `rnnsim SCENARIO` call.

The app never touches the Simulation: it sends commands to the Runner (a worker thread) and
pulls the newest Frame on a 10 fps timer, redrawing only the widgets whose data changed.
"""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from rich.text import Text
from textual.widgets import ContentSwitcher, Footer, Static

from rnnsim import safe_text

from . import jobs
from .runner import COMPARE_KNOBS, Frame, Runner
from .screens.background import InfluenceView, MemoryView, ParallelView
from .screens.compare import CompareView
from .screens.modals import HelpScreen, ParamScreen, PickerScreen
from .screens.spectrum import SpectrumView
from .screens.views import DynamicsView, TrainingView
from .widgets.lesson import NARROW_LINES, LessonPanel
from .widgets.status import StatusBar

POLL_INTERVAL = 1 / 10  # the UI pulls frames at 10 fps (DESIGN §5: 10–15; each redraw holds the GIL)
MIN_WIDTH, MIN_HEIGHT = 60, 18

CLIP_CYCLE = ["none", "norm", "value"]
CELL_CYCLE = ["rnn", "lstm", "gru", "attention"]
VIEWS = ["dynamics", "training", "spectrum", "compare", "parallel", "memory", "influence"]
JOB_VIEWS = ("parallel", "memory", "influence")
SIDE_LESSON_WIDTH = 120  # from this many columns the lesson is a side panel; below, 4 lines above the status
# the knob each key changes: a lesson's scenario.locked refuses them
KEY_KNOBS = {
    "clip": "training.clip", "threshold": "training.clip_threshold", "cell": "model.cell",
    "activation": "model.activation", "layernorm": "model.layernorm", "scale": "model.recurrent_scale",
    "init": "model.init",
}
INIT_CYCLE = ["pytorch", "orthogonal", "identity", "normal"]
THRESHOLDS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]


def _set(widget: Static, text: str) -> None:
    """Update a Static only when its text changed (an update re-lays out the screen)."""
    if getattr(widget, "_rnnsim_text", None) != text:
        widget._rnnsim_text = text
        widget.update(text)


def _next(cycle: list[str], cur: str) -> str:
    return cycle[(cycle.index(cur) + 1) % len(cycle)] if cur in cycle else cycle[0]


def _scale_step(value: float, up: bool) -> float:
    """Recurrent scale in steps of 0.05 near 1 (where vanishing turns into exploding)."""
    step = 0.05 if value < 2 else 0.25
    new = round(value + (step if up else -step), 4)
    return min(max(new, 0.0), 100.0)


class RnnsimApp(App):
    TITLE = "rnnsim"
    ENABLE_COMMAND_PALETTE = False
    CSS = """
    Screen { layout: vertical; }
    #title { height: 1; background: $primary-background; color: $text; }
    #main { height: 1fr; }
    #views { height: 1fr; width: 1fr; }
    #too-small { display: none; height: 1fr; content-align: center middle; text-align: center; }
    #lesson-side, #lesson-bottom { display: none; }
    Screen.lesson-side #lesson-side { display: block; }
    Screen.lesson-bottom #lesson-bottom { display: block; }
    Screen.too-small #main, Screen.too-small #title, Screen.too-small #lesson-bottom { display: none; }
    Screen.too-small #too-small { display: block; }
    """

    BINDINGS = [
        Binding("space", "play_pause", "Play/Pause"),
        Binding("n,right", "step", "Step", key_display="n/→"),
        Binding("t", "train", "Train"),
        Binding("c", "clip", "Clip"),
        Binding("m", "cell", "Cell"),
        Binding("plus,equals_sign", "speed(1)", "Faster", key_display="+"),
        Binding("minus", "speed(-1)", "Slower", key_display="-"),
        Binding("left_square_bracket", "threshold(-1)", "Clip θ down", show=False, key_display="["),
        Binding("right_square_bracket", "threshold(1)", "Clip θ up", show=False, key_display="]"),
        Binding("a", "activation", "tanh↔relu", show=False),
        Binding("l", "layernorm", "LayerNorm", show=False),
        Binding("s", "scale(-1)", "Scale down", show=False),
        Binding("S", "scale(1)", "Scale up", show=False),
        Binding("i", "init", "Init cycle", show=False),
        Binding("r", "reset", "Reset", show=False),
        Binding("R", "new_seed", "New seed", show=False),
        Binding("o", "open", "Open", show=False),
        Binding("p", "params", "Params"),
        Binding("comma", "cursor(-1)", "Cursor ←", show=False, key_display=","),
        Binding("full_stop", "cursor(1)", "Cursor →", show=False, key_display="."),
        Binding("less_than_sign", "cursor(-10)", "Cursor ←10", show=False, key_display="<"),
        Binding("greater_than_sign", "cursor(10)", "Cursor →10", show=False, key_display=">"),
        Binding("1", "view('dynamics')", "Dynamics", show=False),
        Binding("2", "view('training')", "Training", show=False),
        Binding("3", "view('spectrum')", "Spectrum", show=False),
        Binding("4", "view('compare')", "Compare", show=False),
        Binding("5", "view('parallel')", "Parallel", show=False),
        Binding("6", "view('memory')", "Memory", show=False),
        Binding("7", "view('influence')", "Influence", show=False),
        Binding("x", "compare_knob", "Next knob"),
        Binding("j", "lesson(1)", "Lesson ▸"),
        Binding("k", "lesson(-1)", "Lesson ◂", show=False),
        Binding("L", "toggle_lesson", "Hide lesson", show=False),
        Binding("tab", "toggle_view", "View", priority=True),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),  # Ctrl+C quits (not "press ctrl+q")
    ]

    # rows of the help screen; README's key table says the same
    HELP_ROWS = [
        ("space", "play / pause: forward steps, then BPTT steps, then the update, repeating"),
        ("n  →", "one step (forward step, BPTT step, or the update that ends an iteration)"),
        ("+  -", "play speed up / down (steps per second, up to max)"),
        ("t", "train continuously (whole iterations; t again pauses)"),
        ("c", "clipping: none → norm → value"),
        ("[  ]", "clipping threshold θ down / up"),
        ("m", "cell: rnn → lstm → gru → attention (next iteration; same seed and data)"),
        ("a", "activation tanh ↔ relu (rnn)"),
        ("l", "LayerNorm on / off (rnn)"),
        ("s  S", "recurrent scale down / up (multiplies W_hh)"),
        ("i", "init: pytorch → orthogonal → identity → normal"),
        ("r", "reset: same seed, fresh weights and data"),
        ("R", "new seed (seed + 1)"),
        ("o", "open a scenario (built-ins and *.toml here)"),
        ("p", "parameter panel: every knob, edit and validate"),
        (",  .", "move the cursor one step (exact numbers below the plot)"),
        ("<  >", "move the cursor ten steps"),
        ("1  2  tab", "Dynamics view / Training view / switch between them"),
        ("3", "Spectrum: eigenvalues of W_hh (braille), σ_max against 1/γ, Pascanu et al. verdict"),
        ("4", "Compare: a second simulation, one knob changed, same seed and data (restarts both)"),
        ("x", "Compare view: next knob (cell, clip, init, LayerNorm, activation; restarts both)"),
        ("5", "Parallel: dependent steps and measured time, RNN vs attention, T = 16..2048"),
        ("6", "Memory: memory capacity MC(k) and total MC against H (Jaeger 2001)"),
        ("7", "Influence: ‖dL/dx_t‖ over positions for rnn, lstm, attention (256 samples)"),
        ("j  k", "lesson: next / previous step (or page)"),
        ("L", "lesson panel: hide / show"),
        ("?", "this help"),
        ("q  ctrl+q  ctrl+c", "quit"),
    ]

    def __init__(self, scenario, *, runner: Runner | None = None, poll_interval: float = POLL_INTERVAL) -> None:
        super().__init__()
        self.scenario = scenario
        self.runner = runner if runner is not None else Runner(scenario, wait_for_ui=True)
        self.poll_interval = poll_interval
        self.frame: Frame | None = None
        self.cursor = 0
        self.view = "dynamics"
        self.redraws = 0
        self._checked_size = None
        self._polls = 0  # frames applied to the widgets (tests and benchmarks read it)
        self.jobs: dict[str, jobs.Job] = {}
        self._job_versions: dict[str, tuple] = {}
        self.lesson_visible = True
        self.lesson_pos = 0  # page index in the flattened lesson pages
        self.lesson_pages = 0
        self._lesson_key = None

    def compose(self) -> ComposeResult:
        yield Static("", id="title")
        with Horizontal(id="main"):
            with ContentSwitcher(initial="dynamics", id="views"):
                yield DynamicsView(id="dynamics")
                yield TrainingView(id="training")
                yield SpectrumView(id="spectrum")
                yield CompareView(id="compare")
                yield ParallelView(id="parallel")
                yield MemoryView(id="memory")
                yield InfluenceView(id="influence")
            yield LessonPanel(id="lesson-side", classes="side")
        yield LessonPanel(id="lesson-bottom", classes="bottom")
        yield Static("", id="too-small")
        yield StatusBar(id="status")
        yield Footer()

    def on_mount(self) -> None:
        if not self.runner.alive:
            self.runner.start()
        self._check_size()
        self._show_lesson()
        self.poll_frame()
        self.set_interval(self.poll_interval, self.poll_frame)
        # until the first simulation frame is drawn, look for it every 10 ms (it comes ~0.1 s after mount)
        self._first_poll = self.set_interval(0.01, self._poll_first_frame)

    def _poll_first_frame(self) -> None:
        if self.frame is not None and self.frame.ready:
            self._first_poll.stop()
        else:
            self.poll_frame()

    def on_resize(self) -> None:
        self._check_size()
        self._show_lesson()

    def _check_size(self) -> None:
        w, h = self._checked_size = self.size
        small = w < MIN_WIDTH or h < MIN_HEIGHT
        self.screen.set_class(small, "too-small")
        if small:
            self.query_one("#too-small", Static).update(
                f"Terminal too small: {w}x{h}.\nrnnsim needs at least {MIN_WIDTH}x{MIN_HEIGHT} (80x24 recommended).\n"
                "Enlarge the window, or press q to quit."
            )

    async def action_quit(self) -> None:
        self._cancel_jobs()
        self.runner.stop(timeout=0.5)
        self.exit(0)

    def on_unmount(self) -> None:
        self._cancel_jobs()
        self.runner.stop(timeout=0.5)

    def _cancel_jobs(self) -> None:
        for job in self.jobs.values():
            job.cancel()

    # ------------------------------------------------------------------ lesson
    @property
    def lesson_steps(self) -> list[str]:
        return list(self.scenario.lesson.steps)

    def _show_lesson(self) -> None:
        steps = self.lesson_steps
        wide = self.size.width >= SIDE_LESSON_WIDTH
        on = bool(steps) and self.lesson_visible
        self.screen.set_class(on and wide, "lesson-side")
        self.screen.set_class(on and not wide, "lesson-bottom")
        if not on:
            return
        panel = self.query_one("#lesson-side" if wide else "#lesson-bottom", LessonPanel)
        width = (40 if wide else self.size.width) - 2 - (1 if wide else 0)  # padding, border
        key = (wide, width, self.lesson_pos, id(self.scenario))
        if key == self._lesson_key:
            return
        self._lesson_key = key
        self.lesson_pages = panel.show(steps, self.lesson_pos, width, None if wide else NARROW_LINES)
        self.lesson_pos = min(self.lesson_pos, max(self.lesson_pages - 1, 0))

    def lesson_step(self) -> int:
        """The lesson step (0-based) on screen."""
        from .widgets.lesson import lesson_pages

        wide = self.size.width >= SIDE_LESSON_WIDTH
        width = (40 if wide else self.size.width) - 2 - (1 if wide else 0)
        pages = lesson_pages(self.lesson_steps, width, None if wide else NARROW_LINES)
        return pages[min(self.lesson_pos, len(pages) - 1)][0] if pages else 0

    def action_lesson(self, delta: int) -> None:
        if not self.lesson_steps:
            return
        if not self.lesson_visible:
            self.lesson_visible = True
        else:
            self.lesson_pos = min(max(self.lesson_pos + delta, 0), max(self.lesson_pages - 1, 0))
        self._lesson_key = None
        self._show_lesson()

    def action_toggle_lesson(self) -> None:
        if not self.lesson_steps:
            return
        self.lesson_visible = not self.lesson_visible
        self._lesson_key = None
        self._show_lesson()

    def check_action(self, action: str, parameters) -> bool | None:
        if action in ("lesson", "toggle_lesson") and not self.lesson_steps:
            return None  # no lesson: hidden from the footer, the key does nothing
        if action == "compare_knob" and self.view != "compare":
            return None
        return True

    # ------------------------------------------------------------------ frames
    def poll_frame(self, force: bool = False) -> bool:
        """Pull the newest frame; redraw only what changed. Returns True if anything was redrawn."""
        if self.size != self._checked_size:
            self._check_size()
        frame = self.runner.frame
        if self.view in JOB_VIEWS and self.frame is not None:
            job = self.jobs.get(self.view)
            ver = (job.key, job.state.version) if job is not None else None
            if ver != self._job_versions.get(self.view):
                self._job_versions[self.view] = ver
                self._show_job_view()
        if not force and self.frame is not None and frame.seq == self.frame.seq:
            return False
        self.frame = frame
        self.redraws += 1
        if frame.T:
            self.cursor = min(self.cursor, frame.T - 1)
        self._redraw()
        if frame.ready and not self.runner.ui_drawn.is_set():
            self.call_after_refresh(self.runner.ui_drawn.set)  # the worker may now load the kernels
        return True

    def _redraw(self) -> None:
        frame = self.frame
        no_color = self.no_color
        sc = frame.display_scenario
        name = sc.scenario.name
        desc = sc.scenario.description
        title = safe_text.one_line(f"{name} — {desc}" if desc else name, 400)  # escaped; not markup: "[/]" is text
        _set(self.query_one("#title", Static), Text(" " + title))
        self.query_one(StatusBar).show(frame, no_color)
        flat_out = frame.training or (frame.playing and frame.speed == 0)
        self._polls += 1
        if flat_out and self._polls % 2:
            # at max speed or while training the plots are a blur anyway: redraw them at half the rate (5 fps)
            # and give the GIL back to the simulation; the status line still updates every poll
            return
        if self.view == "dynamics":
            self.query_one(DynamicsView).show(frame, self.cursor)
        elif self.view == "training":
            self.query_one(TrainingView).show(frame)
        elif self.view == "spectrum":
            self.query_one(SpectrumView).show(frame)
        elif self.view == "compare":
            self.query_one(CompareView).show(frame)
        else:
            self._show_job_view()

    def _show_job_view(self) -> None:
        job = self.jobs.get(self.view)
        state = job.state if job is not None else None
        if self.view == "parallel":
            self.query_one(ParallelView).show(state, jobs.PARALLEL_LENGTHS)
        elif self.view == "memory":
            self.query_one(MemoryView).show(state, jobs.MEMORY_SIZES, self._sc().model.hidden_size)
        elif self.view == "influence":
            self.query_one(InfluenceView).show(state, jobs.INFLUENCE_SAMPLES, self._sc().task.kind)

    def start_job(self, view: str):
        """Start (or keep) the background computation of a job view for the current scenario."""
        sc = self._sc()
        key = {"parallel": jobs.parallel_key, "memory": jobs.memory_key, "influence": jobs.influence_key}[view](sc)
        job = self.jobs.get(view)
        if job is not None and job.key == key and not job.state.cancelled:
            return job
        if job is not None:
            job.cancel()
        make = {"parallel": jobs.parallel_job, "memory": jobs.memory_job, "influence": jobs.influence_job}[view]
        job = self.jobs[view] = make(sc).start()
        return job

    # ----------------------------------------------------------------- actions
    def _sc(self):
        f = self.runner.frame
        return f.display_scenario if f.ready else self.scenario

    def apply_changes(self, changes: dict, notify: bool = True) -> str | None:
        """Validate on the UI side (same schema as files) and send to the runner; the error text or None."""
        from rnnsim.scenario import ScenarioError

        locked = [k for k in changes if k in self._sc().scenario.locked]
        if locked:
            msg = f"{locked[0]} is locked by this lesson (scenario.locked); open another scenario to change it"
            if notify:
                self.notify(msg, severity="warning", timeout=6)
            return msg
        try:
            self._sc().with_changes(changes)
        except ScenarioError as exc:
            if notify:
                self.notify(str(exc), severity="error", timeout=6)
            return str(exc)
        self.runner.send("change", changes)
        return None

    def action_play_pause(self) -> None:
        self.runner.send("toggle_play")

    def action_step(self) -> None:
        self.runner.send("step")

    def action_train(self) -> None:
        self.runner.send("toggle_train")

    def action_speed(self, delta: int) -> None:
        self.runner.send("speed", delta)

    def modify(self, fn) -> None:
        """Send a knob change computed by the worker from its own latest scenario (no lost key presses)."""
        self.runner.send("modify", fn)

    def action_clip(self) -> None:
        self.modify(lambda sc: {"training.clip": _next(CLIP_CYCLE, sc.training.clip)})

    def action_threshold(self, direction: int) -> None:
        def change(sc):
            cur = sc.training.clip_threshold
            if direction > 0:
                new = next((x for x in THRESHOLDS if x > cur * 1.0001), THRESHOLDS[-1])
            else:
                new = next((x for x in reversed(THRESHOLDS) if x < cur * 0.9999), THRESHOLDS[0])
            return {"training.clip_threshold": float(new)}

        self.modify(change)

    def action_cell(self) -> None:
        self.modify(lambda sc: {"model.cell": _next(CELL_CYCLE, sc.model.cell)})

    def action_activation(self) -> None:
        self.modify(lambda sc: {"model.activation": "relu" if sc.model.activation == "tanh" else "tanh"})

    def action_layernorm(self) -> None:
        self.modify(lambda sc: {"model.layernorm": not sc.model.layernorm})

    def action_scale(self, direction: int) -> None:
        self.modify(lambda sc: {"model.recurrent_scale": _scale_step(float(sc.model.recurrent_scale), direction > 0)})

    def action_init(self) -> None:
        self.modify(lambda sc: {"model.init": _next(INIT_CYCLE, sc.model.init)})

    def action_reset(self) -> None:
        self.runner.send("reset")

    def action_new_seed(self) -> None:
        self.runner.send("new_seed")

    def action_cursor(self, delta: int) -> None:
        T = self.frame.T if self.frame is not None and self.frame.T else 1
        self.cursor = min(max(self.cursor + delta, 0), T - 1)
        if self.frame is not None:
            self._redraw()

    def action_view(self, name: str) -> None:
        self.view = name
        self.query_one("#views", ContentSwitcher).current = name
        if name == "compare" and (self.runner.frame.compare is None):
            self.runner.send("compare", COMPARE_KNOBS[0])
        if name in JOB_VIEWS:
            self.start_job(name)
        self.refresh_bindings()
        if self.frame is not None:
            self._redraw()

    def action_compare_knob(self) -> None:
        if self.view == "compare":
            self.runner.send("compare_next")

    def action_toggle_view(self) -> None:
        if self.screen is not self.screen_stack[0]:
            self.screen.focus_next()  # in a dialog, tab moves between fields as usual
            return
        self.action_view("training" if self.view == "dynamics" else "dynamics")

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.HELP_ROWS))

    def action_open(self) -> None:
        def loaded(sc) -> None:
            if sc is not None:
                self.scenario = sc
                self.runner.send("load", sc)
                self.lesson_pos, self._lesson_key, self.lesson_visible = 0, None, True
                self._show_lesson()
                self.refresh_bindings()

        self.push_screen(PickerScreen(), loaded)

    def action_params(self) -> None:
        self.push_screen(ParamScreen(self._sc(), lambda changes: self.apply_changes(changes, notify=False)))


def run_app(scenario) -> int:
    """Run the TUI on a validated scenario; returns the process exit code."""
    app = RnnsimApp(scenario)
    try:
        app.run()
    finally:
        app.runner.stop(timeout=0.5)
    return 0 if app.return_code in (None, 0) else int(app.return_code)
