"""Modal screens: help (every key), scenario picker, parameter panel."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from rnnsim import safe_text

from .safe_modal import SafeModal
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from ..knobs import knob_value

# (dotted key, what it is) for every knob the parameter panel edits
KNOBS = [
    ("scenario.seed", "seed for weights and data"),
    ("model.cell", "rnn | lstm | gru | attention"),
    ("model.activation", "tanh | relu (rnn)"),
    ("model.hidden_size", "H units"),
    ("model.num_layers", "1..8 stacked (not attention)"),
    ("model.layernorm", "true | false (rnn)"),
    ("model.init", "pytorch | orthogonal | identity | normal"),
    ("model.recurrent_scale", "multiplies W_hh"),
    ("model.forget_bias", "lstm/gru; none = init's"),
    ("model.readout", "linear | attention"),
    ("model.dtype", "float64 | float32"),
    ("task.kind", "adding | copy | delayed_recall | random | sine"),
    ("task.length", "T steps"),
    ("task.batch_size", "B sequences"),
    ("training.optimizer", "sgd | momentum | adam"),
    ("training.learning_rate", "step size"),
    ("training.clip", "none | norm | value"),
    ("training.clip_threshold", "θ"),
    ("training.iterations", "for rnnsim run"),
]


def show_value(v) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


class HelpScreen(SafeModal):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90%; max-width: 96; height: 90%; border: round $accent; background: $surface; }
    """

    def __init__(self, rows: list[tuple[str, str]], notes: str = "", lesson: str = "") -> None:
        super().__init__()
        self.rows = rows
        self.notes = notes    # the lesson's measured notes (docs/lessons.md, shipped as rnnsim/lessons.md)
        self.lesson = lesson

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for keys, desc in self.rows:
            table.add_row(keys, desc)
        self.table = table
        intro = Text(
            "rnnsim — every key (esc closes)\n"
            "Dynamics: heatmap of h_t (forward fills →), ‖dL/dh_t‖ on a log axis (BPTT fills ←), "
            "░ = the previous pass's profile until the new BPTT replaces it. "
            "‖J_t‖ = spectral norm of ∂h_t/∂h_(t-1), mean of 8 samples, as glyph heights: ▁▂▃▄ below 1 (gradients "
            "shrink; edges .5 .8 .95), ▅▆▇█ from 1 (edges 1.05 1.25 2); blue below 1, orange from 1; a large state fills "
            "them a few steps per frame while paused (keys keep working). Gate means (LSTM "
            "forget, GRU update) as block heights 0..1.\n"
            "Log axes: decades labelled on their own row (┤), reference lines (╌ chance, θ) on the row of their value; "
            "y locks them. Training: long runs binned, ‖grad‖ the max per column, loss the last; c clipped, ✗ NaN/inf.\n"
            "Heatmap: h_t of batch element 0; blue negative, red positive (NO_COLOR: shade = |h|).\n"
            "Model changes keep the seed and data and take effect at the next iteration.\n"
            "⟳ loading (status line): the kernels are loading, compiled on a first run (~15 s, then cached); "
            "keys pressed meanwhile wait and run when they are ready.\n",
        )
        with VerticalScroll():
            if self.notes:
                yield Static(Text(f"Lesson notes below the keys: what `{self.lesson}` measures, with the numbers "
                                  "(docs/lessons.md).", style="bold"), id="help-notes-hint")
            yield Static(intro)
            yield Static(table, id="help-table")
            if self.notes:
                from textual.widgets import Markdown

                yield Static(Text(f"\nLesson notes: {self.lesson}", style="bold"))
                yield Markdown(self.notes, id="help-notes")

    def action_dismiss(self) -> None:
        self.dismiss(None)


class PickerScreen(SafeModal):
    """Built-in scenarios and *.toml files in the current folder; Enter loads, esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    PickerScreen { align: center middle; }
    PickerScreen > Vertical { width: 80%; max-width: 90; height: 80%; border: round $accent; background: $surface; }
    PickerScreen OptionList { height: 1fr; }
    PickerScreen #picker-error { color: $error; height: auto; }
    """

    def __init__(self, cwd: Path | None = None) -> None:
        super().__init__()
        self.cwd = Path.cwd() if cwd is None else cwd
        self.targets: list[str] = []

    def compose(self) -> ComposeResult:
        from rnnsim.lessons import course
        from rnnsim.scenario import builtin_scenarios, load_scenario, ScenarioError

        options = []
        paths = builtin_scenarios()
        for entry in course(paths):  # problem 1 to 6, each followed by its fixes (README's lesson table)
            name, path = entry.name, paths[entry.name]
            desc = ""
            try:
                sc = load_scenario(str(path))
                desc = sc.scenario.name
            except ScenarioError as exc:
                desc = f"(invalid: {exc})"
            # Text, not markup: a name such as "[/]" must not crash the picker; escaped: no raw ESC
            label = f"{entry.label:<6}{safe_text.clip(name, 40):<16} {safe_text.clip(desc, 120)}"
            options.append(Option(Text(label), id=f"opt{len(self.targets)}"))
            self.targets.append(name)
        try:
            files = sorted(self.cwd.glob("*.toml"))
        except OSError:
            files = []
        for path in files:
            shown = safe_text.clip(path.name, 60)  # a file name is untrusted too
            options.append(Option(Text(f"{'file':<6}{shown:<16} ./{shown}"), id=f"opt{len(self.targets)}"))
            self.targets.append(str(path))
        with Vertical():
            yield Label(" Open: lessons by problem 1-6, each with its fixes (enter, esc)")
            yield OptionList(*options, id="picker-list")
            yield Static("", id="picker-error")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        from rnnsim.scenario import load_scenario, ScenarioError

        if self.closing:  # a second Enter of the same burst
            return
        target = self.targets[event.option_index]
        try:
            sc = load_scenario(target)
        except ScenarioError as exc:
            self.query_one("#picker-error", Static).update(Text(f"✗ {safe_text.one_line(exc)}"))
            return
        self.dismiss(sc)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ParamScreen(SafeModal):
    """Every knob with its value; edit a value and press enter: validated by the scenario schema."""

    BINDINGS = [Binding("escape", "close", "Close"),
                # priority: before the scroll container's own up/down (which would scroll instead of moving)
                Binding("down", "move(1)", "Next knob", show=False, priority=True),
                Binding("up", "move(-1)", "Previous knob", show=False, priority=True)]
    DEFAULT_CSS = """
    ParamScreen { align: center middle; }
    ParamScreen .knob:focus-within { background: $accent 40%; }
    ParamScreen .knob:focus-within Label { text-style: bold; }
    ParamScreen .knob Input:focus { background: $accent; color: $text; text-style: bold; }
    ParamScreen > Vertical { width: 90%; max-width: 100; height: 95%; border: round $accent; background: $surface; }
    ParamScreen VerticalScroll { height: 1fr; }
    ParamScreen .knob { height: 1; layout: horizontal; }
    ParamScreen .knob Label { width: 25; }
    ParamScreen .knob Input { width: 16; height: 1; border: none; padding: 0 1; }
    ParamScreen .knob .hint { width: 1fr; color: $text-muted; padding-left: 1; }
    ParamScreen #param-msg { height: auto; min-height: 1; }
    """

    def __init__(self, scenario, apply) -> None:
        super().__init__()
        self.scenario = scenario
        self.apply = apply  # callable(dict) -> str | None (an error message)

    def compose(self) -> ComposeResult:
        from textual.containers import Horizontal

        locked = set(self.scenario.scenario.locked)
        with Vertical():
            yield Label(" Parameters: edit a value, enter applies (validated), esc closes")
            with VerticalScroll():
                for key, hint in KNOBS:
                    with Horizontal(classes="knob"):
                        yield Label(f" {key}")
                        yield Input(
                            show_value(knob_value(self.scenario, key)),
                            id="knob-" + key.replace(".", "-"),
                            select_on_focus=False,
                            disabled=key in locked,
                        )
                        yield Label("locked by this lesson" if key in locked else hint, classes="hint")
            yield Static("", id="param-msg")

    def on_mount(self) -> None:
        for inp in self.query(Input):
            inp.cursor_blink = False
        self._focus_knob(0, 1)  # the first knob that can change has the focus at once: up/down move from there

    def _focus_knob(self, start: int, step: int) -> None:
        inputs = list(self.query(Input))
        for k in range(len(inputs)):
            i = (start + step * k) % len(inputs)
            if not inputs[i].disabled:
                self._at = i  # now: focus() takes effect later, and a quick second key must see the new knob
                inputs[i].focus()
                inputs[i].scroll_visible()
                return

    def on_descendant_focus(self, event) -> None:
        inputs = list(self.query(Input))
        if event.widget in inputs:  # focus moved by tab or the mouse: up/down continue from there
            self._at = inputs.index(event.widget)

    def action_move(self, step: int) -> None:
        """down / up: the next / previous knob (locked ones are skipped), wrapping around."""
        here = getattr(self, "_at", None)
        self._focus_knob((-step if here is None else here) + step, step)

    def action_close(self) -> None:
        self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        from rnnsim.scenario import parse_override, ScenarioError

        key = (event.input.id or "").removeprefix("knob-").replace("-", ".", 1)
        raw = event.value.strip()
        msg = self.query_one("#param-msg", Static)
        try:
            if raw.lower() in ("none", "") and key == "model.forget_bias":
                value = None
            else:
                _, value = parse_override(f"{key}={raw}")
            error = self.apply({key: value})
        except ScenarioError as exc:
            error = str(exc)
        if error:
            msg.update(Text(f"✗ {safe_text.one_line(error)}", style="bold red"))
        else:
            msg.update(Text(f"✓ {key} = {safe_text.clip(show_value(value))}", style="green"))
