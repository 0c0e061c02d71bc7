"""Spectrum view (key 3): eigenvalues of the recurrent matrix on a braille canvas, with the unit circle (= the
circle of radius 1/γ, γ = max|φ'| = 1 for tanh and relu) and σ_max against 1/γ: Pascanu, Mikolov & Bengio 2013.
The eigenvalues come in the frame, computed by the worker only when the weights changed."""

from __future__ import annotations

import math

from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from rnnsim.cells import CELLS
from rnnsim.cells.base import candidate_label

from ..widgets.braille import complex_plane
from ..widgets.plot import StripView, text_strip
from .views import _set

EIG = Style(color=Color.from_rgb(255, 215, 0), bold=True)
UNIT = Style(color=Color.from_rgb(175, 175, 175))
SMAX = Style(color=Color.from_rgb(95, 135, 255))
AXIS = Style(color=Color.from_rgb(78, 78, 78))



def spectrum_lines(spec, no_color: bool, width: int, height: int):
    if spec is None or len(spec.eigenvalues) == 0:
        return [text_strip(" no recurrent matrix: nothing to plot", width)]
    eig = spec.eigenvalues
    finite = [abs(z) for z in eig if math.isfinite(z.real) and math.isfinite(z.imag)]
    biggest = max([1.0, spec.bound] + finite + ([spec.sigma_max] if math.isfinite(spec.sigma_max) else []))
    extent = min(biggest * 1.08, 1e6)
    rows = max(height, 3)
    cols = max(min(width, 2 * rows), 4)  # square in dots: 2 dots wide, 4 tall per cell
    radii = [(1.0, 1, 1)]
    if abs(spec.bound - 1.0) > 1e-9:
        radii.append((spec.bound, 1, 2))
    if math.isfinite(spec.sigma_max) and abs(spec.sigma_max - 1.0) > 0.02:
        radii.append((spec.sigma_max, 2, 3))
    marker = ("•", EIG) if no_color else None
    cv, _ = complex_plane(cols, rows, eig, radii, extent, 3, marker)
    cv.put_text(0, 0, f"±{extent:.3g}", None)
    strips = cv.strips([AXIS, UNIT, SMAX, EIG])
    return [s.adjust_cell_length(width) for s in strips]


def spectrum_text(frame, no_color: bool) -> Text:
    spec, sc = frame.spectrum, frame.scenario
    m = sc.model
    t = Text(no_wrap=False)
    if spec is None:
        t.append(" spectrum: waiting for the first frame…")
        return t
    if CELLS[m.cell].G == 0:
        t.append(" Spectrum: attention cell\n", style="bold")
        t.append(f" {spec.verdict}.\n")
        t.append(" Press m for a recurrent cell.", style="dim")
        return t
    t.append(f" Eigenvalues of {candidate_label(CELLS[m.cell])}", style="bold")
    layer = f" · layer {frame.layer + 1}/{frame.num_layers} (d/D)" if frame.num_layers > 1 else ""
    t.append(f"{layer} · H={frame.H} · it {frame.iteration}\n")
    t.append(f" ρ (largest |λ|)  {spec.radius:.4g}\n")
    t.append(f" σ_max            {spec.sigma_max:.4g}\n")
    act = CELLS[m.cell].candidate_activation(m)
    t.append(f" γ = max|φ′|      {spec.gamma:g} ({act}) → 1/γ = {spec.bound:g}\n")
    bad = "exploding" in spec.verdict
    t.append(f" {spec.verdict}\n", style=("bold" if no_color else ("bold #ff875f" if bad else "bold #87d75f")))
    t.append(" Pascanu et al. 2013: σ_max < 1/γ suffices for vanishing; σ_max > 1/γ is necessary for exploding.\n",
             style="dim")
    eig_glyph = "•" if no_color else "⣿"
    t.append(f" {eig_glyph} λ_i", style="bold" if no_color else EIG)
    t.append("  ⠒ |z| = 1 = 1/γ", style=UNIT if not no_color else "")
    if math.isfinite(spec.sigma_max) and abs(spec.sigma_max - 1.0) > 0.02:
        t.append("  ⠂ dotted: |z| = σ_max", style=SMAX if not no_color else "")
    t.append("\n updated live: recomputed in the worker after each update", style="dim")
    return t


class SpectrumView(Horizontal):
    DEFAULT_CSS = """
    SpectrumView { height: 1fr; }
    SpectrumView #spectrum-plot { width: 1fr; max-width: 66; height: 1fr; }
    SpectrumView #spectrum-info { width: 1fr; min-width: 30; height: 1fr; }
    """

    def compose(self) -> ComposeResult:
        yield StripView(id="spectrum-plot")
        yield Static("", id="spectrum-info")

    def show(self, frame) -> None:
        if frame is None or not frame.ready:
            return
        no_color = self.app.no_color
        spec = frame.spectrum
        self.query_one("#spectrum-plot", StripView).set_builder(
            (frame.spectrum_version, no_color, frame.scenario.model.cell),
            lambda w, h: spectrum_lines(spec, no_color, w, h),
        )
        info = spectrum_text(frame, no_color)
        _set(self.query_one("#spectrum-info", Static), info)
