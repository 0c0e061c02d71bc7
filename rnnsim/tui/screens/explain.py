"""The explain panel (`e`): the formula of each number at the cursor step with the values plugged in.

The numbers come from rnnsim.explain, computed in the worker thread (the Runner's "explain" command) from the
arrays the kernels wrote; this screen only asks and shows. It is a snapshot of the moment `e` was pressed.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from rnnsim import safe_text

from ..requests import ExplainRequest
from .safe_modal import SafeModal

POLL = 0.05  # seconds between looks at the worker's answer


class ExplainScreen(SafeModal):
    BINDINGS = [Binding("escape,e,q", "dismiss", "Close")]
    DEFAULT_CSS = """
    ExplainScreen { align: center middle; }
    ExplainScreen > Vertical { width: 96%; max-width: 110; height: 92%; border: round $accent;
                               background: $surface; }
    ExplainScreen #explain-title { height: 1; text-style: bold; }
    ExplainScreen VerticalScroll { height: 1fr; }
    """

    def __init__(self, runner, t: int, sample: int = 0) -> None:
        super().__init__()
        self.request = ExplainRequest(t, sample)
        self.t = t
        runner.send("explain", self.request)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"explain t = {self.t}  (↑↓ PgUp PgDn scroll; e or esc closes)", id="explain-title")
            with VerticalScroll(id="explain-scroll"):
                yield Static("computing… (the worker answers after the keys pressed before e; loading kernels takes "
                             "seconds on a first run)", id="explain-body")

    def on_mount(self) -> None:
        self.query_one("#explain-scroll").focus()
        self._timer = self.set_interval(POLL, self._poll)
        self._poll()

    def _poll(self) -> None:
        req = self.request
        if not req.done.is_set():
            return
        self._timer.stop()
        body = self.query_one("#explain-body", Static)
        if req.error is not None:
            body.update(Text("could not explain: " + safe_text.one_line(req.error), style="bold red"))
            return
        body.update(render(req.result))

    def action_dismiss(self) -> None:
        self.dismiss(None)


def render(explanation) -> Text:
    """Rich Text of an Explanation: headings and labels bold, missing numbers in the warning colour."""
    from rnnsim.explain import format_line

    out = Text()
    for ln in explanation.lines:
        rows = format_line(ln)
        for i, row in enumerate(rows):
            style = ""
            if ln.kind == "heading" and row:
                style = "bold"
            elif ln.kind == "missing":
                style = "yellow"
            elif ln.kind == "formula" and i == 0:
                style = "bold"
            elif ln.key == "sentinel":
                style = "bold red"
            if len(out):
                out.append("\n")
            out.append(row, style=style)
    return out
