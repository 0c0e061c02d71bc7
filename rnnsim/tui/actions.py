"""Every key of the TUI in one table: it generates the app's BINDINGS, the footer, the help screen (`?`) and the
entries of a command palette; a test checks README's key table against it (both directions).

An `Action` is one binding. Rows of the help screen are runs of consecutive actions with the same help text
(`s` and `S` make one row "s  S"); the footer shows the actions with a `footer` position, in that order.
Knob cycles in the help text come from the scenario's `Literal` types (rnnsim/tui/knobs.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding

from .knobs import COMPARE_KNOBS, choices, cycle_text


@dataclass(frozen=True)
class Action:
    key: str                       #: Textual key names, comma-separated: "n,right"
    action: str                    #: Textual action: "step", "speed(1)", "view('dynamics')"
    description: str               #: short label: the footer's, a palette entry's title
    help: str                      #: the help screen's text (consecutive equal texts share one row)
    group: str                     #: play | knobs | cursor | views | lesson | app
    footer: int = 0                #: position in the footer; 0 = not shown there (at 80 columns about 68 columns
                                   #: fit before the palette key: ? and q come early so they always show)
    key_display: str | None = None  #: how the key is shown ("n/→", "?"); default: the key itself
    priority: bool = False         #: a Textual priority binding (works inside dialogs too)

    @property
    def keys(self) -> str:
        """The keys as the help screen shows them: "n  →", "space", "ctrl+q"."""
        return (self.key_display or self.key).replace("/", "  ")

    def binding(self) -> Binding:
        return Binding(self.key, self.action, self.description, show=self.footer > 0,
                       key_display=self.key_display, priority=self.priority)


_SPEED = "play speed up / down (steps per second, up to max)"
_THETA = "clipping threshold θ down / up"
_SCALE = "recurrent scale down / up (multiplies W_hh)"
_CURSOR1 = "move the cursor one step (exact numbers below the plot)"
_CURSOR10 = "move the cursor ten steps"
_VIEWS12 = "Dynamics view / Training view / switch between them"
_LESSON = "lesson: next / previous step (or page)"
_LAYER = ("stacked layers: show the layer below / above in the Dynamics view (heatmap, ‖dL/dh_t‖, J row, gates, "
          "spectrum; the depth × time map marks it ▸)")
_KNOB_NAMES = {"model.cell": "cell", "training.clip": "clip", "model.init": "init", "model.layernorm": "LayerNorm",
               "model.activation": "activation"}

#: every key, in the order of the help screen and README's key table
ACTIONS: list[Action] = [
    Action("space", "play_pause", "Play",
           "play / pause: forward steps, then BPTT steps, then the update, repeating", "play", 1),
    Action("n,right", "step", "Step",
           "one step (forward step, BPTT step, or the update that ends an iteration)", "play", 2, "n/→"),
    Action("f", "one_pass", "One pass",
           "play one pass: forward and BPTT at the play speed, then pause before the update (f again: pause)",
           "play"),
    Action("plus,equals_sign", "speed(1)", "Faster", _SPEED, "play", 10, "+"),
    Action("minus", "speed(-1)", "Slower", _SPEED, "play", 11, "-"),
    Action("t", "train", "Train", "train whole iterations at the speed setting (iterations per second) up to the "
           "budget training.iterations; t again pauses", "play", 3),
    Action("T", "train_more", "Train on", "train past the budget: one more budget of iterations (t pauses)", "play"),
    Action("c", "clip", "Clip", f"clipping: {cycle_text('training.clip')}", "knobs", 4),
    Action("left_square_bracket", "threshold(-1)", "Clip θ down", _THETA, "knobs", key_display="["),
    Action("right_square_bracket", "threshold(1)", "Clip θ up", _THETA, "knobs", key_display="]"),
    Action("m", "cell", "Cell", f"cell: {cycle_text('model.cell')} (next iteration; same seed and data)", "knobs", 5),
    Action("a", "activation", "tanh↔relu", f"activation {' ↔ '.join(choices('model.activation'))} (rnn)", "knobs"),
    Action("l", "layernorm", "LayerNorm", "LayerNorm on / off (rnn)", "knobs"),
    Action("s", "scale(-1)", "Scale down", _SCALE, "knobs"),
    Action("S", "scale(1)", "Scale up", _SCALE, "knobs"),
    Action("i", "init", "Init cycle", f"init: {cycle_text('model.init')}", "knobs"),
    Action("r", "reset", "Reset", "reset: same seed, fresh weights and data", "play"),
    Action("R", "new_seed", "New seed", "new seed (seed + 1)", "play"),
    Action("o", "open", "Open", "open a scenario (built-ins and *.toml here)", "app"),
    Action("p", "params", "Params", "parameter panel: every knob (up/down), edit and validate", "knobs", 8),
    Action("comma", "cursor(-1)", "Cursor ←", _CURSOR1, "cursor", key_display=","),
    Action("full_stop", "cursor(1)", "Cursor →", _CURSOR1, "cursor", key_display="."),
    Action("less_than_sign", "cursor(-10)", "Cursor ←10", _CURSOR10, "cursor", key_display="<"),
    Action("greater_than_sign", "cursor(10)", "Cursor →10", _CURSOR10, "cursor", key_display=">"),
    Action("e", "explain", "Explain",
           "explain the numbers at the cursor step: each formula with its values plugged in (e or esc closes)",
           "cursor"),
    Action("1", "view('dynamics')", "Dynamics", _VIEWS12, "views"),
    Action("2", "view('training')", "Training", _VIEWS12, "views"),
    Action("tab", "toggle_view", "View", _VIEWS12, "views", priority=True),
    Action("d", "layer(-1)", "Layer ↓", _LAYER, "views"),
    Action("D", "layer(1)", "Layer ↑", _LAYER, "views"),
    Action("y", "lock_axes", "Lock axes",
           "lock / unlock every log axis at the decades it shows (compare scales and runs by eye; Compare: A and B "
           "always share one axis)", "views"),
    Action("3", "view('spectrum')", "Spectrum",
           "Spectrum: eigenvalues of W_hh (braille), σ_max against 1/γ, Pascanu et al. verdict", "views"),
    Action("4", "view('compare')", "Compare",
           "Compare: a second simulation, one knob changed, same seed and data (restarts both)", "views"),
    Action("x", "compare_knob", "Next knob",
           f"Compare view: next knob ({', '.join(_KNOB_NAMES[k] for k in COMPARE_KNOBS)}; restarts both)", "views",
           12),
    Action("5", "view('parallel')", "Parallel",
           "Parallel: dependent steps and measured time, RNN vs attention, T = 16..2048", "views"),
    Action("6", "view('memory')", "Memory", "Memory: memory capacity MC(k) and total MC against H (Jaeger 2001)",
           "views"),
    Action("7", "view('influence')", "Influence",
           "Influence: ‖dL/dx_t‖ over positions for rnn, lstm, attention (256 samples)", "views"),
    Action("8", "view('regimes')", "Regimes",
           "Regimes: log10 gradient ratio over recurrent scale × T (7 × 5 runs, as `rnnsim sweep --show`), "
           "this scenario marked *", "views"),
    Action("j", "lesson(1)", "Lesson ▸", _LESSON, "lesson", 9),
    Action("k", "lesson(-1)", "Lesson ◂", _LESSON, "lesson"),
    Action("L", "toggle_lesson", "Hide lesson", "lesson panel: hide / show", "lesson"),
    Action("ctrl+s", "screenshot", "Screenshot",
           "screenshot: an SVG of the screen in the current folder (in a browser: it opens in a new tab)", "app"),
    Action("w", "write_scenario", "Write scenario",
           "write the scenario with every knob change (pending ones too) to rnnsim-<scenario>-<n>.toml in the "
           "current folder (in a browser: a download)", "app"),
    Action("ctrl+p", "command_palette", "palette",
           "command palette: every action by name, and Theme (rnnsim-print: light, for slides)", "app"),
    Action("question_mark", "help", "Help", "this help, then the lesson's measured notes", "app", 6, "?"),
    Action("q", "quit", "Quit", "quit", "app", 7),
    Action("ctrl+q", "quit", "Quit", "quit from any screen, dialogs too (ctrl+q, ctrl+c)", "app", key_display="^q",
           priority=True),
    Action("ctrl+c", "quit", "Quit", "quit from any screen, dialogs too (ctrl+q, ctrl+c)", "app", key_display="^c",
           priority=True),  # Ctrl+C quits (not Textual's "press ctrl+q")
]


def bindings(actions: list[Action] = ACTIONS) -> list[Binding]:
    """The app's BINDINGS: the footer's actions first, in footer order (Textual's footer keeps binding order)."""
    shown = sorted((a for a in actions if a.footer), key=lambda a: a.footer)
    return [a.binding() for a in shown + [a for a in actions if not a.footer]]


def help_rows(actions: list[Action] = ACTIONS) -> list[tuple[str, str]]:
    """(keys, text) rows of the help screen: consecutive actions with the same help text share a row."""
    rows: list[tuple[str, str]] = []
    for a in actions:
        if rows and rows[-1][1] == a.help:
            rows[-1] = (f"{rows[-1][0]}  {a.keys}", a.help)
        else:
            rows.append((a.keys, a.help))
    return rows


def palette(actions: list[Action] = ACTIONS) -> list[tuple[str, str, str, str]]:
    """(title, help text, action, keys) of every action, for a command palette provider (one per action; a key
    with two names, such as q and ctrl+q, is one entry)."""
    seen: dict[str, tuple[str, str, str, str]] = {}
    for a in actions:
        if a.action in seen:
            title, text, action, keys = seen[a.action]
            seen[a.action] = (title, text, action, f"{keys}  {a.keys}")
        else:
            seen[a.action] = (a.description, a.help, a.action, a.keys)
    return list(seen.values())
