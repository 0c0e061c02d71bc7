"""RnnsimApp: the live TUI.  `run_app(scenario)` is what `rnnsim` and `rnnsim SCENARIO` call.

The app never touches the Simulation: it sends commands to the Runner (a worker thread) and
pulls the newest Frame on a 10 fps timer, redrawing only the widgets whose data changed.
"""

from __future__ import annotations

from textual.await_complete import AwaitComplete
from textual.app import App, ComposeResult
from textual.containers import Horizontal
from rich.text import Text
from textual.widgets import ContentSwitcher, Footer, Static

from rnnsim import safe_text

from . import actions, capture, exit_signals, jobs, palette, theme
from .knobs import COMPARE_KNOBS

from .knob_actions import KnobActions
from .runner import Frame, Runner
from .screens.background import InfluenceView, MemoryView, ParallelView, RegimesView
from .screens.compare import CompareView
from .screens.modals import HelpScreen, ParamScreen, PickerScreen
from .screens.spectrum import SpectrumView
from .screens.views import DynamicsView, TrainingView
from .widgets.axes import AxisLock
from .widgets.lesson import NARROW_LINES, LessonPanel
from .widgets.status import StatusBar

POLL_INTERVAL = 1 / 10  # the UI pulls frames at 10 fps (DESIGN §5: 10–15; each redraw holds the GIL)
MIN_WIDTH, MIN_HEIGHT = 80, 24  # README: 80x24 is the complete layout; below it a message, never a clipped layout

VIEWS = ["dynamics", "training", "spectrum", "compare", "parallel", "memory", "influence", "regimes"]
JOB_VIEWS = ("parallel", "memory", "influence", "regimes")
SIDE_LESSON_WIDTH = 120  # from this many columns the lesson is a side panel; below, 4 lines above the status


def _set(widget: Static, text: str) -> None:
    """Update a Static only when its text changed (an update re-lays out the screen)."""
    if getattr(widget, "_rnnsim_text", None) != text:
        widget._rnnsim_text = text
        widget.update(text)


class RnnsimApp(KnobActions, App):
    TITLE = "rnnsim"
    ENABLE_COMMAND_PALETTE = True  # ctrl+p: every action by its help text, and themes (palette.py)
    COMMANDS = App.COMMANDS | {palette.ActionsProvider}
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

    BINDINGS = actions.bindings()  # the footer, too; README's key table says the same (tests/tui/test_actions.py)
    HELP_ROWS = actions.help_rows()  # rows of the help screen

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
        self._sent = None  # (command number, scenario) of the last change sent, until the worker ran it
        self._polls = 0  # frames applied to the widgets (tests and benchmarks read it)
        self.jobs: dict[str, jobs.Job] = {}
        self._job_versions: dict[str, tuple] = {}
        self.lesson_visible = True
        self.lesson_pos = 0  # page index in the flattened lesson pages
        self.lesson_pages = 0
        self._lesson_key = None
        self.axis_lock = AxisLock()  # key y: every log axis keeps the decades it has when next drawn
        self._restart_armed: tuple[str, int] | None = None  # (key, iteration) of a restart warned about
        self._restart_ok_at: int | None = None  # the iteration at which a restart was confirmed
        self._reset_seq = -1  # the frame seq when r/R was pressed: until a newer frame, a restart loses nothing

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
                yield RegimesView(id="regimes")
            yield LessonPanel(id="lesson-side", classes="side")
        yield LessonPanel(id="lesson-bottom", classes="bottom")
        yield Static("", id="too-small")
        yield StatusBar(id="status")
        yield Footer()

    def on_mount(self) -> None:
        theme.install(self)
        if not self.is_headless:  # (Pilot tests run headless: pytest keeps its own Ctrl-C)
            exit_signals.install(self)  # SIGINT/SIGTERM/SIGHUP: restore the terminal, exit 130/143/129
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
        # this handler runs before App._on_resize stores the new size: re-lay out once it has (call_later), so the
        # lesson panel moves (side <-> bottom) and the status line is re-cut to the new width at once
        self.call_later(self._relayout)

    def _relayout(self) -> None:
        self._check_size()
        self._show_lesson()
        if self.frame is not None:
            self._redraw()  # the views and the status line, cut to the new width

    def _check_size(self) -> None:
        w, h = self._checked_size = self.size
        small = w < MIN_WIDTH or h < MIN_HEIGHT
        self.screen.set_class(small, "too-small")
        if small:
            self.query_one("#too-small", Static).update(
                f"Terminal too small: {w}x{h}.\nrnnsim needs at least {MIN_WIDTH}x{MIN_HEIGHT}.\n"
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
            return False  # no lesson: hidden from the footer, the key does nothing
        if action == "compare_knob" and self.view != "compare":
            return False  # (False hides the key in the footer; None would only dim it and take its room)
        return True

    # ------------------------------------------------------------------ frames
    def poll_frame(self, force: bool = False) -> bool:
        """Pull the newest frame; redraw only what changed. Returns True if anything was redrawn."""
        if self._exit or self._closing or not self.query("#title"):
            return False  # the app is exiting (its widgets are being removed) or not composed yet: nothing to draw in
        if self.size != self._checked_size:  # a resize event can be overtaken by the next one in a storm
            self._relayout()
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
        if self._restart_ok_at is not None and frame.iteration != self._restart_ok_at:
            self._restart_ok_at = None  # a confirmed restart holds only for the training it was confirmed on
        if self._restart_armed is not None and frame.iteration != self._restart_armed[1]:
            self._restart_armed = None  # trained on since the warning: warn again with the new count
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
            sc = self._sc()
            self.query_one(MemoryView).show(state, jobs.MEMORY_SIZES, sc.model.hidden_size,
                                            getattr(sc.task, "delay", None) if sc.task.kind == "delayed_recall"
                                            else None)
        elif self.view == "influence":
            self.query_one(InfluenceView).show(state, jobs.INFLUENCE_SAMPLES, self._sc().task.kind)
        elif self.view == "regimes":
            sweep, sc = (job.info if job is not None else None), self._sc()
            stale = job is not None and job.key != jobs.regimes_key(sc)
            self.query_one(RegimesView).show(state, sweep, sweep.base if sweep is not None else sc, stale)

    def start_job(self, view: str):
        """Start (or keep) the background computation of a job view for the current scenario."""
        sc = self._sc()
        key = {"parallel": jobs.parallel_key, "memory": jobs.memory_key, "influence": jobs.influence_key,
               "regimes": jobs.regimes_key}[view](sc)
        job = self.jobs.get(view)
        if job is not None and job.key == key and not job.state.cancelled:
            return job
        if job is not None:
            job.cancel()
        make = {"parallel": jobs.parallel_job, "memory": jobs.memory_job, "influence": jobs.influence_job,
                "regimes": jobs.regimes_job}[view]
        job = self.jobs[view] = make(sc).start()
        return job

    # ----------------------------------------------------------------- actions
    def _sc(self):
        """The scenario the next change builds on: the worker's (pending changes included) or, while the worker
        has not yet run a change sent from here (a rebuild can take seconds), that changed scenario."""
        f = self.runner.frame
        if self._sent is not None and f.handled < self._sent[0]:
            return self._sent[1]
        self._sent = None
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
            new = self._sc().with_changes(changes)
        except ScenarioError as exc:
            if notify:
                self.notify(str(exc), severity="error", timeout=6)
            return str(exc)
        self._sent = (self.runner.send("change", changes), new)
        return None

    def action_play_pause(self) -> None:
        self.runner.send("toggle_play")

    def action_step(self) -> None:
        self.runner.send("step")

    def action_one_pass(self) -> None:
        self.runner.send("one_pass")

    def action_lock_axes(self) -> None:
        on = self.axis_lock.toggle()
        self.notify("log axes locked at their current decades (y unlocks)" if on else "log axes follow the data",
                    timeout=3)
        if self.frame is not None:
            self._redraw()

    def action_train(self) -> None:
        self.runner.send("toggle_train")

    def action_layer(self, delta: int) -> None:
        """d / D: the layer the Dynamics view shows (stacked layers)."""
        self.runner.send("layer", delta)

    def action_train_more(self) -> None:
        self.runner.send("train_more")

    def action_speed(self, delta: int) -> None:
        self.runner.send("speed", delta)

    def action_cursor(self, delta: int) -> None:
        T = self.frame.T if self.frame is not None and self.frame.T else 1
        self.cursor = min(max(self.cursor + delta, 0), T - 1)
        if self.frame is not None:
            self._redraw()

    def action_view(self, name: str) -> None:
        if name == "compare" and self.runner.frame.compare is None and \
                not self._restart_confirmed("4", "open Compare"):
            return  # opening Compare restarts A and B from the seed: warned first
        was_compare, self.view = self.view == "compare", name
        self.query_one("#views", ContentSwitcher).current = name
        if name == "compare" and (self.runner.frame.compare is None):
            self.runner.send("compare", COMPARE_KNOBS[0])
        if name in JOB_VIEWS:
            self.start_job(name)
        if was_compare != (name == "compare"):
            # only the compare knob depends on the view (check_action); each refresh recomposes Textual's Footer,
            # which keeps its old keys' data bindings alive (~13 widgets, ~200 KB a switch: the soak's leak)
            self.refresh_bindings()
        if self.frame is not None:
            self._redraw()

    def action_compare_knob(self) -> None:
        if self.view == "compare" and self._restart_confirmed("x", "compare next knob"):
            self.runner.send("compare_next")

    def action_toggle_view(self) -> None:
        if self.screen is not self.screen_stack[0]:
            self.screen.focus_next()  # in a dialog, tab moves between fields as usual
            return
        self.action_view("training" if self.view == "dynamics" else "dynamics")

    def action_screenshot(self) -> None:
        capture.take_screenshot(self)

    def action_write_scenario(self) -> None:
        capture.write_scenario(self)

    def action_explain(self) -> None:
        from .screens.explain import ExplainScreen

        T = self.frame.T if self.frame is not None and self.frame.T else 1
        self.push_screen(ExplainScreen(self.runner, min(self.cursor, T - 1)))

    def pop_screen(self):
        """Textual's pop_screen, except that a stale close (a dialog dismissed by a message still queued after it
        was closed, as in a key burst) cannot pop the main screen: with one screen left it does nothing."""
        if len(self.screen_stack) <= 1:
            return AwaitComplete.nothing()
        return super().pop_screen()

    def action_command_palette(self) -> None:
        palette.open_palette(self)

    def get_system_commands(self, screen):
        yield from palette.system_commands(self, screen, super().get_system_commands(screen))

    def action_help(self) -> None:
        from rnnsim import lessons

        name = self._lesson_name()
        self.push_screen(HelpScreen(self.HELP_ROWS, notes=lessons.notes(name) if name else "", lesson=name or ""))

    def _lesson_name(self) -> str | None:
        """The built-in lesson on screen (its name), or None for a scenario file."""
        from rnnsim.scenario import builtin_scenarios

        source = getattr(self.scenario, "source", None)
        return source if isinstance(source, str) and source in builtin_scenarios() else None

    def action_open(self) -> None:
        def loaded(sc) -> None:
            if sc is not None:
                self.scenario = sc
                self.runner.send("load", sc)
                self.lesson_pos, self._lesson_key, self.lesson_visible = 0, None, True
                self._show_lesson()
                self.action_view("dynamics")  # every lesson starts on the Dynamics view (its step 1 says which next)
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
