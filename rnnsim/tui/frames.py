"""The frames the Runner publishes: immutable copies of what the views show, built from a Play.

A Frame holds no live array: everything is copied (or a read-only view of an append-only buffer) in the
worker thread, so the UI thread reads it without locks. Nothing here imports Textual.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnnsim.play import FORWARD_COMPLETE, Phase

from .knobs import knob_value

SPEEDS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 0)  # play speeds in steps per second; 0 = as fast as possible
DEFAULT_SPEED_INDEX = 5  # 50 steps/s


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
    handled: int = 0  # commands the worker has run (Runner.send numbers them): the UI knows what is stale
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
    ghost: np.ndarray | None = None  # the last complete gradient profile while BPTT has not yet replaced it
    losses: np.ndarray = field(default_factory=lambda: np.zeros(0))  #: per entry of sim.history: its last loss
    grad_norms: np.ndarray = field(default_factory=lambda: np.zeros(0))  #: per entry: the largest ‖g‖ in it
    clipped_norms: np.ndarray = field(default_factory=lambda: np.zeros(0))
    clipped_flags: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    finite_flags: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    # one value per entry of sim.history, like the arrays above; an entry is one iteration or, for old
    # iterations of a long session, a Bin of `counts` of them (rnnsim/history.py, frames.History)
    iterations: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  #: last iteration of each entry
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  #: iterations per entry (1: exact)
    loss_min: np.ndarray = field(default_factory=lambda: np.zeros(0))  #: smallest loss in each entry
    loss_max: np.ndarray = field(default_factory=lambda: np.zeros(0))  #: largest loss in each entry
    grad_norm_min: np.ndarray = field(default_factory=lambda: np.zeros(0))  #: smallest ‖g‖ (grad_norms: largest)
    decay_text: str = ""
    spectrum_text: str = ""
    spectrum: Any = None  # diagnostics.Spectrum of the current weights (eigenvalues copied), or None
    spectrum_version: int = 0  # bumps only when the weights changed (an update, a rebuild)
    cosine: float | None = None  # cos(g before clipping, g after) of the last update
    compare: Any = None  # a CompareFrame while the compare view's second simulation exists
    sentinel: str | None = None
    num_layers: int = 1   # model.num_layers of the simulation
    layer: int = 0        # the layer hidden/profile/jacobian/gates/spectrum show (d / D)
    layer_now: int = 0    # the layer being stepped (forward: 0 first; BPTT: the last first)
    depth: np.ndarray | None = None  # (N, T) ‖dL/dh_t^l‖ of every layer (diagnostics.depth_profile), N > 1 only
    error: str | None = None
    message: str = ""
    playing: bool = False
    training: bool = False
    speed: int = SPEEDS[DEFAULT_SPEED_INDEX]
    steps_done: int = 0
    train_target: int = 0  # the iteration at which training stops (training.iterations, or further after T)
    # version counters: a widget redraws only when the data it shows changed
    data_version: int = 0
    history_version: int = 0

    @property
    def display_scenario(self):
        return self.pending if self.pending is not None else self.scenario



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



class ProfileGhost:
    """The last complete gradient profile ‖dL/dh_t‖ (a copy), kept from the end of a BPTT until the next one
    finishes: the Dynamics view draws it dimmed under the profile being filled. Cleared when the simulation is
    rebuilt (reset, new seed, a model change)."""

    def __init__(self) -> None:
        self.profile: np.ndarray | None = None

    def keep(self, profile) -> None:
        p = np.array(profile, dtype=float)
        if p.size and not np.isnan(p).all():
            p.flags.writeable = False
            self.profile = p

    def clear(self) -> None:
        self.profile = None


class History:
    """Per-entry arrays grown in place from sim.history: O(new entries) per frame, not O(all).

    sim.history is bounded (rnnsim/history.py): once full, its older half is merged into Bins; its
    ``compactions`` counter tells this reader to start again (O(cap), once per cap/4 iterations). Frames get
    read-only views of the filled part; entries never change once written and a restart or a compaction makes
    new buffers, so a view handed out earlier stays valid.

    One value per entry of sim.history (an iteration, or a Bin of several), for the plot widgets:

    =============  ==========================================================================================
    loss           the last loss of the entry                 (Frame.losses)
    grad_norm      the largest ‖g‖ before clipping             (Frame.grad_norms: a spike is never averaged away)
    clipped_norm   the largest ‖g‖ after clipping              (Frame.clipped_norms)
    clipped        clipping acted in at least one iteration    (Frame.clipped_flags: an event to mark)
    finite         every iteration finite (False: a NaN/inf)   (Frame.finite_flags: an event to mark)
    iteration      the entry's last iteration (1-based)        (Frame.iterations: the x position)
    count          iterations in the entry (1 = exact)         (Frame.counts)
    loss_min/max   smallest / largest loss in the entry        (Frame.loss_min, Frame.loss_max)
    grad_norm_min  smallest ‖g‖ in the entry                   (Frame.grad_norm_min)
    =============  ==========================================================================================
    """

    FIELDS = ("loss", "grad_norm", "clipped_norm", "clipped", "finite", "iteration", "count", "loss_min",
              "loss_max", "grad_norm_min")
    _KINDS = (float, float, float, bool, bool, int, int, float, float, float)

    def __init__(self) -> None:
        self._new(64)

    def _new(self, cap: int) -> None:
        self.n = 0
        self.source = None
        self.compactions = 0
        self.bufs = [self._buf(k, cap) for k in self._KINDS]

    @staticmethod
    def _buf(kind, cap: int) -> np.ndarray:
        if kind is float:
            return np.full(cap, np.nan)
        return np.zeros(cap, bool if kind is bool else np.int64)

    def update(self, history: list):
        """The first five arrays (loss, grad_norm, clipped_norm, clipped, finite), as before; `extra` the rest."""
        compactions = getattr(history, "compactions", 0)
        if history is not self.source or len(history) < self.n or compactions != self.compactions:
            self._new(max(64, len(history)))
            self.source = history
            self.compactions = compactions
        m = len(history)
        if m > len(self.bufs[0]):
            cap = max(m, 2 * len(self.bufs[0]))
            grown = []
            for kind, b in zip(self._KINDS, self.bufs):
                g = self._buf(kind, cap)
                g[: self.n] = b[: self.n]
                grown.append(g)
            self.bufs = grown
        b = self.bufs
        for i in range(self.n, m):
            h = history[i]
            b[0][i] = _nan(h.loss)
            b[1][i] = _nan(h.grad_norm)
            b[2][i] = _nan(getattr(h, "clipped_norm", None))
            b[3][i] = bool(h.clipped)
            b[4][i] = bool(h.finite)
            b[5][i] = int(getattr(h, "iteration", i + 1))
            b[6][i] = int(getattr(h, "count", 1))
            b[7][i] = _nan(getattr(h, "loss_min", h.loss))
            b[8][i] = _nan(getattr(h, "loss_max", h.loss))
            b[9][i] = _nan(getattr(h, "grad_norm_min", h.grad_norm))
        self.n = m
        views = []
        for buf in b:
            v = buf[:m]
            v.flags.writeable = False
            views.append(v)
        self.views = views
        return views[:5]

    def extra(self) -> dict:
        """The last update's iteration, count, loss_min, loss_max and grad_norm_min arrays, by Frame field name."""
        v = self.views
        return dict(iterations=v[5], counts=v[6], loss_min=v[7], loss_max=v[8], grad_norm_min=v[9])


def _f(x) -> float | None:
    if x is None:
        return None
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def _nan(x) -> float:
    v = _f(x)
    return math.nan if v is None else v


def compare_frame(play_a, play_b, history: History, version: int, knob: str) -> CompareFrame:
    """Simulation B of the compare view, copied out."""
    a, b = play_a.sim, play_b.sim
    d = play_b.diagnostics
    losses, _, _, _, finite = history.update(b.history)
    last = b.history[-1] if b.history else None
    return CompareFrame(
        knob=knob,
        value_a=knob_value(a.scenario, knob),
        value_b=knob_value(b.scenario, knob),
        scenario=b.scenario,
        profile=np.asarray(d.gradient_profile(b), dtype=float).copy(),
        grad_filled=int(b.layer_steps(b.num_layers - 1)[1] if getattr(b, "num_layers", 1) > 1 else b.bt),
        losses=losses,
        finite_flags=finite,
        loss=_f(b.loss) if b.loss is not None else (_f(last.loss) if last else None),
        iteration=int(b.iteration),
        sentinel=None if b.sentinel is None else str(b.sentinel),
        version=version,
    )


def build_frame(play, history: History, *, busy: bool, compare: CompareFrame | None, layer: int | None = None,
                ghost: ProfileGhost | None = None, **status) -> Frame:
    """A Frame of ``play``'s simulation; ``status`` fills the runner's fields (seq, message, speed...).

    ``busy`` (playing or training): the Jacobian norms keep to their time budget (Play.jacobian_norms).
    ``layer``: which layer of a stack the per-layer fields show (default and one layer: the last)."""
    sim = play.sim
    d = play.diagnostics
    T = int(sim.T)
    phase = str(sim.phase)
    t, bt = int(sim.t), int(sim.bt)
    # after an update (phase idle) the core's arrays and diagnostics still describe the latest pass until the
    # next forward begins: show them, marked as the previous pass
    stale = phase == Phase.IDLE and t > 0
    n = int(getattr(sim, "num_layers", 1))
    if n > 1:
        shown = n - 1 if layer is None else min(max(int(layer), 0), n - 1)
        fw, bw = sim.layer_steps(shown)
        hidden = np.array(sim.layer_workspace(shown).h[:, 0], dtype=float)
        profile = np.asarray(d.gradient_profile(sim, shown), dtype=float).copy()
        jac = play.jacobian_norms(force=not busy, layer=shown)
        gates = {k: np.asarray(v, dtype=float).copy() for k, v in d.gate_means(sim, shown).items()}
        depth = np.asarray(d.depth_profile(sim), dtype=float).copy()
        hidden_filled, spec_layer = int(fw), shown
    else:
        shown, bw, depth, spec_layer = 0, bt, None, None
        hidden = np.array(sim.hidden[0], dtype=float)
        profile = np.asarray(d.gradient_profile(sim), dtype=float).copy()
        jac = play.jacobian_norms(force=not busy)
        gates = {k: np.asarray(v, dtype=float).copy() for k, v in d.gate_means(sim).items()}
        hidden_filled = T if phase in FORWARD_COMPLETE else t
    complete = bw >= T > 0 and not np.isnan(profile).all()
    if ghost is not None and complete:
        ghost.keep(profile)
    shown_ghost = None if ghost is None or complete or ghost.profile is None or len(ghost.profile) != T \
        else ghost.profile
    losses, gnorms, cnorms, clipped, finite = history.update(sim.history)
    last = sim.history[-1] if sim.history else None
    decay = ""
    try:
        if bw >= T and T >= 2:
            decay = d.decay_summary(profile).text
    except Exception:  # noqa: BLE001 - a summary is optional decoration
        decay = ""
    spectrum, spec = play.spectrum(spec_layer) if spec_layer is not None else play.spectrum()
    sentinel = sim.sentinel
    return Frame(
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
        pending=play.pending,
        hidden=hidden,
        hidden_filled=hidden_filled,
        profile=profile,
        grad_filled=int(bw),
        jacobian=jac,
        gates=gates,
        stale=stale,
        ghost=shown_ghost,
        losses=losses,
        grad_norms=gnorms,
        clipped_norms=cnorms,
        clipped_flags=clipped,
        finite_flags=finite,
        **history.extra(),
        decay_text=decay,
        spectrum_text=spectrum,
        spectrum=spec,
        spectrum_version=play.spectrum_version,
        cosine=_f(getattr(last, "cosine", None)) if last else None,
        compare=compare,
        sentinel=None if sentinel is None else str(sentinel),
        num_layers=n,
        layer=shown,
        layer_now=int(getattr(sim, "layer", 0)),
        depth=depth,
        **status,
    )
