"""Status line: phase, step, iteration, loss, gradient norm, clipping, cell; red on NaN/inf."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from rnnsim.cells import CELLS
from rnnsim.play import scenario_diff

from ..frames import speed_label
from .common import fmt

#: pending keys the status line shows in place (clipping, cell); the alert row lists every pending key
_SHOWN_IN_PLACE = ("training.clip", "training.clip_threshold", "model.cell", "model.activation", "model.layernorm")


def clip_text(sc) -> str:
    tr = sc.training
    if tr.clip == "none":
        return "clip off"
    sym = "‖g‖≤" if tr.clip == "norm" else "|g_i|≤"
    return f"clip {tr.clip} {sym}{tr.clip_threshold:g}"


def cell_text(sc) -> str:
    return CELLS[sc.model.cell].describe(sc.model)   # the cell says what it is


PHASES = {
    "idle": "READY",
    "forward": "FORWARD",
    "forward_done": "FWD DONE",
    "backward": "BPTT",
    "backward_done": "BPTT DONE",
}


def status_text(frame, no_color: bool = False) -> Text:
    t = Text(no_wrap=True, overflow="ellipsis")
    if frame is None:
        return t
    if frame.error and not frame.ready:
        t.append(f" error: {frame.error}", style="bold red")
        return t
    if frame.compiling:
        style = "bold black on yellow" if not no_color else "reverse"
        if not frame.ready:
            t.append(" ⟳ loading kernels… ", style=style)
            t.append(" (the first run compiles them, ~15 s; numba caches them) ")
            return t
        t.append(" ⟳ loading ", style=style)  # the message line below says which and why
        t.append(" ")
    sc = frame.scenario
    phase = PHASES.get(frame.phase, frame.phase.upper())
    if frame.phase == "idle" and frame.iteration > 0:
        phase = "UPDATED"  # the update that ended the iteration is done; the next step starts a forward pass
    if frame.training:
        mode, style = "■ TRAINING", "bold black on green"
    elif frame.playing:
        mode, style = "▶ " + phase, "bold black on cyan"
    else:
        mode, style = "❚❚ " + phase, "bold white on grey35"
    # the play speed inside the badge ("▶ FORWARD 50/s"): early in the line, so it is never cut at 80 columns
    # training runs whole iterations at the speed setting: iterations per second there, steps per second in play
    speed = f"{frame.speed} it/s" if frame.training and frame.speed else speed_label(frame.speed)
    t.append(f" {mode} {speed} ", style=style if not no_color else "reverse")
    if frame.phase in ("backward", "backward_done"):
        step = f" bptt {frame.bt}/{frame.T}"
    else:
        step = f" t {frame.t}/{frame.T}"
    if frame.num_layers > 1 and frame.phase != "idle":   # the (layer, t) step of a stack: which layer the step counter is in
        step += f" layer {frame.layer_now + 1}/{frame.num_layers}"
    t.append(step)
    t.append(f" · it {frame.iteration}" + (f"/{frame.train_target}" if frame.training else ""))
    t.append(f" · loss {fmt(frame.loss, 4)}")
    t.append(f" · ‖g‖ {fmt(frame.grad_norm)}")
    if frame.clipped:
        t.append(f"→{fmt(frame.clipped_norm)}", style="bold yellow" if not no_color else "bold")
    if sc.training.clip != "none" and frame.cosine is not None and frame.iteration > 0:
        # cos(g before clipping, g after): 1 for norm clipping, below 1 when value clipping turned the step
        t.append(f" cos {frame.cosine:.2f}", style="bold yellow" if frame.cosine < 0.9999 and not no_color else "")
    pending = frame.pending
    t.append(" · ")
    t.append(clip_text(sc), style="yellow" if sc.training.clip != "none" and not no_color else "")
    if pending is not None and clip_text(pending) != clip_text(sc):
        t.append(f"→{clip_text(pending).removeprefix('clip ')}*", style="italic")
    t.append(f" · {cell_text(sc)}", style="bold")
    if pending is not None:
        if cell_text(pending) != cell_text(sc):
            t.append(f"→{cell_text(pending)}*", style="italic")
        more = [k for k in scenario_diff(sc, pending) if k not in _SHOWN_IN_PLACE]
        if more:
            t.append(f" +{len(more)}*", style="italic")  # other pending keys: listed in the alert row
    return t


def pending_text(frame) -> str:
    """'model.cell=lstm, training.clip=norm': every change waiting for the next iteration."""
    if frame.pending is None:
        return ""
    return ", ".join(f"{k}={v}" for k, v in scenario_diff(frame.scenario, frame.pending).items())


def alert_text(frame, note: tuple[str, bool] | None = None) -> Text:
    """The second status row: the sentinel warning (red), or the app's note (e.g. the screenshot's file name), or the
    last message/error."""
    t = Text(no_wrap=True, overflow="ellipsis")
    if frame is None:
        return t
    if note is not None and not frame.sentinel:
        t.append(f" {note[0]}", style="bold red" if note[1] else "bold")
    elif frame.sentinel:
        text = frame.sentinel if "non-finite" in frame.sentinel else f"non-finite value: {frame.sentinel}"
        t.append(f" ⚠ {text} — press r to reset (R: new seed) ",
                 style="bold white on red")
    elif frame.error:
        t.append(f" ✗ {frame.error}", style="bold red")
    elif frame.pending is not None:
        t.append(f" * pending until the next iteration: {pending_text(frame)} (same seed, same data)",
                 style="italic")
    elif frame.message:
        t.append(f" {frame.message}", style="dim")
    return t


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar {
        height: 2;
        background: $panel;
    }
    """

    NOTE_SECONDS = 10.0  # how long a note (set_note) stays on the second row

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self._key = None
        self._frame = None
        self._no_color = False
        self.note: tuple[str, bool] | None = None
        self._note_timer = None

    def set_note(self, text: str, error: bool = False) -> None:
        """Show ``text`` on the second row for NOTE_SECONDS (the sentinel warning still wins)."""
        self.note = (text, error)
        if self._note_timer is not None:
            self._note_timer.stop()
        self._note_timer = self.set_timer(self.NOTE_SECONDS, self._clear_note)
        self.show(self._frame, self._no_color)

    def _clear_note(self) -> None:
        self.note = None
        self.show(self._frame, self._no_color)

    def show(self, frame, no_color: bool = False) -> bool:
        self._frame, self._no_color = frame, no_color
        key = (frame.seq if frame else None, no_color, self.app.size.width, self.note)
        if key == self._key:
            return False
        self._key = key
        width = max(self.app.size.width, 10)
        text = status_text(frame, no_color)
        text.truncate(width, overflow="ellipsis")
        alert = alert_text(frame, self.note)
        alert.truncate(width, overflow="ellipsis")
        text.append("\n")
        text.append_text(alert)
        self.update(text)
        return True
