"""The two main views, Dynamics and Training: plain containers of line-API widgets fed from a Frame."""

from __future__ import annotations

import math

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from ..widgets.gradient import GradientPanel, cursor_text
from ..widgets.heatmap import Heatmap
from ..widgets.series import SeriesPlot


class DynamicsView(Vertical):
    DEFAULT_CSS = """
    DynamicsView { height: 1fr; }
    DynamicsView #cursor-info { height: 1; color: $text; background: $boost; }
    DynamicsView #spectrum { height: 1; color: $text-muted; }
    """

    def compose(self) -> ComposeResult:
        yield Heatmap(id="heatmap")
        yield GradientPanel(id="gradient")
        yield Static("", id="cursor-info")
        yield Static("", id="spectrum")

    def show(self, frame, cursor: int) -> None:
        if frame is None or not frame.ready:
            return
        sc = frame.scenario
        bounded = not (sc.model.cell == "rnn" and sc.model.activation == "relu")
        self.query_one(Heatmap).set_data(
            frame.hidden, frame.hidden_filled, bounded, cursor, frame.stale, (frame.data_version, id(frame.hidden))
        )
        self.query_one(GradientPanel).set_data(
            frame.profile, frame.jacobian, frame.gates, sc.model.cell, frame.grad_filled, cursor,
            "", (frame.data_version, id(frame.profile)),
        )
        self.query_one("#cursor-info", Static).update(" cursor (, . < >) " + cursor_text(frame, cursor))
        parts = [p for p in (frame.decay_text, frame.spectrum_text) if p]
        self.query_one("#spectrum", Static).update(" " + " · ".join(parts))


class TrainingView(Vertical):
    DEFAULT_CSS = """
    TrainingView { height: 1fr; }
    """

    def compose(self) -> ComposeResult:
        yield SeriesPlot("loss per iteration (log)", id="loss-plot")
        yield SeriesPlot("‖grad‖ per iteration before clipping (log)", id="grad-plot")

    def show(self, frame) -> None:
        if frame is None or not frame.ready:
            return
        sc = frame.scenario
        key = (frame.history_version, len(frame.losses))
        self.query_one("#loss-plot", SeriesPlot).set_data(
            frame.losses, frame.clipped_flags, frame.finite_flags, frame.baseline, "chance", "", key
        )
        thr = sc.training.clip_threshold if sc.training.clip == "norm" else None
        n_clip = int(frame.clipped_flags.sum()) if frame.clipped_flags.size else 0
        note = f"c = clipped ({n_clip}×)" if sc.training.clip != "none" else "clipping off"
        last = frame.clipped_norms[-1] if frame.clipped_norms.size else math.nan
        if sc.training.clip != "none" and math.isfinite(last):
            note += f", last after clip {last:.3g}"
        self.query_one("#grad-plot", SeriesPlot).set_data(
            frame.grad_norms, frame.clipped_flags, frame.finite_flags, thr, "clip θ", note, key
        )
