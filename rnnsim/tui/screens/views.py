"""The two main views, Dynamics and Training: plain containers of line-API widgets fed from a Frame."""

from __future__ import annotations

import math

import numpy as np

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from rnnsim.cells import CELLS

from ..widgets.depth import DepthMap
from ..widgets.gradient import GradientPanel, cursor_text
from ..widgets.axes import title_lines
from ..widgets.heatmap import Heatmap, rows_needed

def _set(widget: Static, text: str) -> None:
    """Update a Static only when its text changed (an update re-lays out the screen)."""
    if getattr(widget, "_rnnsim_text", None) != text:
        widget._rnnsim_text = text
        widget.update(text)


PANEL_MIN = 8  # the gradient panel's minimum: title, 4 plot rows, Jacobian row, gate row, time axis
from ..widgets.series import SeriesPlot


class DynamicsView(Vertical):
    DEFAULT_CSS = """
    DynamicsView { height: 1fr; }
    DynamicsView #cursor-info { height: 1; color: $text; background: $boost; }
    DynamicsView #dyn-summary { height: auto; max-height: 2; color: $text-muted; }
    """

    def compose(self) -> ComposeResult:
        yield Heatmap(id="heatmap")
        yield GradientPanel(id="gradient")
        yield DepthMap(id="depth")
        yield Static("", id="cursor-info")
        yield Static("", id="dyn-summary")

    def _fit_heatmap(self, H: int, depth_rows: int = 0) -> None:
        """Give the heatmap the rows its units need (up to 17) and the gradient panel the rest (after the depth
        map's rows, when the network has stacked layers)."""
        if not H or not self.size.height:
            return
        available = self.size.height - 2 - PANEL_MIN - depth_rows  # minus the cursor and summary lines
        want = min(rows_needed(H, max(available, 3), self.app.no_color), 17)
        heat = self.query_one(Heatmap)
        if heat.styles.height is None or heat.styles.height.value != want:
            heat.styles.height = max(want, 3)

    def on_resize(self) -> None:
        frame = getattr(self.app, "frame", None)
        if frame is not None and frame.ready:
            self._fit_heatmap(frame.H, self._depth_rows(frame))

    def _depth_rows(self, frame) -> int:
        """The depth map's height: a title and one row per layer; 0 (hidden) for one layer."""
        return frame.num_layers + 1 if frame.num_layers > 1 and frame.depth is not None else 0

    def show(self, frame, cursor: int) -> None:
        if frame is None or not frame.ready:
            return
        sc = frame.scenario
        rows = self._depth_rows(frame)
        depth = self.query_one(DepthMap)
        if depth.display != bool(rows) or (rows and depth.styles.height.value != rows):
            depth.display = bool(rows)
            if rows:
                depth.styles.height = rows
        self._fit_heatmap(frame.H, rows)
        bounded = CELLS[sc.model.cell].bounded_state(sc.model)
        heat, grad = self.query_one(Heatmap), self.query_one(GradientPanel)
        # which layer of a stack the heatmap, the gradient panel and its J and gate rows show (d / D)
        heat.layer_label = grad.layer_label = f"layer {frame.layer + 1}/{frame.num_layers} " \
            if frame.num_layers > 1 else ""
        heat.set_data(
            frame.hidden, frame.hidden_filled, bounded, cursor, frame.stale,
            (frame.data_version, id(frame.hidden), heat.layer_label)
        )
        sentence, ratio = split_decay(frame.decay_text)
        grad.set_data(
            frame.profile, frame.jacobian, frame.gates, sc.model.cell, frame.grad_filled, cursor,
            ratio, (frame.data_version, id(frame.profile), grad.layer_label), ghost=frame.ghost,
        )
        if rows:
            depth.set_data(frame.depth, frame.layer, cursor, (frame.data_version, id(frame.depth)))
        _set(self.query_one("#cursor-info", Static), " cursor (, . < >) " + cursor_text(frame, cursor))
        verdict = frame.spectrum.verdict if frame.spectrum is not None else frame.spectrum_text
        width = max(self.size.width, 20)
        _set(self.query_one("#dyn-summary", Static), "\n".join(title_lines([sentence, verdict], width, 2)))


def split_decay(text: str) -> tuple[str, str]:
    """The decay sentence (the summary line's) and its "(ratio … ≈ 10⁻ⁿ)" clause (the gradient panel's title), so
    both are complete at 80 columns."""
    i = text.find(" (ratio")
    return (text, "") if i < 0 else (text[:i], text[i + 1:])


class TrainingView(Vertical):
    DEFAULT_CSS = """
    TrainingView { height: 1fr; }
    """

    def compose(self) -> ComposeResult:
        yield SeriesPlot("loss per iteration (log)", how="last", id="loss-plot")
        yield SeriesPlot("‖grad‖ before clipping (log)", how="max", id="grad-plot")

    def show(self, frame) -> None:
        if frame is None or not frame.ready:
            return
        sc = frame.scenario
        losses, gnorms, clipped, finite = frame.losses, frame.grad_norms, frame.clipped_flags, frame.finite_flags
        # a bounded history (per-entry arrays, an entry may hold several iterations) says where each entry ends
        positions = getattr(frame, "iterations", None)
        if positions is not None and len(positions) != len(losses):
            positions = None
        if frame.sentinel and (finite.size == 0 or finite.all()):
            # the NaN/inf stopped the iteration before its update: mark it as the next, non-finite, column
            loss = frame.loss if frame.loss is not None and not math.isnan(frame.loss) else math.inf
            losses = np.append(losses, loss)
            gnorms = np.append(gnorms, math.inf)
            clipped = np.append(clipped, False)
            finite = np.append(finite, False)
            if positions is not None:
                positions = np.append(positions, positions[-1] + 1 if len(positions) else 1)
        key = (frame.history_version, len(losses), frame.sentinel)
        self.query_one("#loss-plot", SeriesPlot).set_data(
            losses, clipped, finite, frame.baseline, "chance", "", key, positions
        )
        thr = sc.training.clip_threshold if sc.training.clip == "norm" else None
        n_clip = int(frame.clipped_flags.sum()) if frame.clipped_flags.size else 0
        note = f"c = clipped ({n_clip}×)" if sc.training.clip != "none" else "clipping off"
        last = frame.clipped_norms[-1] if frame.clipped_norms.size else math.nan
        if sc.training.clip != "none" and math.isfinite(last):
            note += f", last after clip {last:.3g}"
        self.query_one("#grad-plot", SeriesPlot).set_data(gnorms, clipped, finite, thr, "clip θ", note, key,
                                                          positions)
