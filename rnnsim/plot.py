"""Figures for slides and notebooks (matplotlib, the optional ``plot`` extra).

``rnnsim run SCENARIO --plot FILE.svg|.png|.pdf`` writes one figure with three panels:

1. the gradient profile ‖dL/dh_t‖ against t on a log axis, for the first and the last iteration;
2. the loss per iteration, with the task's chance level (the bar to beat) as a dashed line;
3. the gradient norm per iteration (before clipping) on a log axis, with the clipping threshold θ (norm clipping),
   the iterations where clipping acted (orange dots) and the ones where a value became NaN/inf (red crosses).

``Simulation`` and its ``history`` have ``_repr_svg_``, so a notebook cell ending in ``sim`` or ``sim.history``
shows the same picture (the simulation: its last gradient profile and its history; the history: panels 2 and 3).

matplotlib is imported only when a figure is made, through its object API (no pyplot, no GUI backend).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from rnnsim.export import check_output_path
from rnnsim.history import History  # noqa: F401 - re-exported: draws itself in notebooks

__all__ = ["PLOT_SUFFIXES", "MISSING_EXTRA", "History", "SvgRepr", "check_path", "require", "figure",
           "save", "svg_text"]

PLOT_SUFFIXES = (".svg", ".png", ".pdf")
MISSING_EXTRA = "rnnsim run --plot needs the 'plot' extra (matplotlib): pip install 'rnnsim[plot]'"
FIRST, LAST, CLIP, BAD, CHANCE = "#0087af", "#d75f00", "#ff8700", "#d70000", "#5f5f5f"


class MissingExtra(RuntimeError):
    """matplotlib is not installed."""


def require() -> None:
    """Raise MissingExtra (one line naming the extra) when matplotlib cannot be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise MissingExtra(MISSING_EXTRA) from None


def check_path(path: str | os.PathLike[str]) -> Path:
    """A plot path: suffix .svg, .png or .pdf, in an existing folder, not a folder itself."""
    return check_output_path(path, PLOT_SUFFIXES, "figure", "--plot")


def _rows(history: Iterable[Any]) -> list[dict[str, Any]]:
    rows = []
    for info in history:
        if isinstance(info, dict):
            rows.append(info)
        else:
            rows.append({k: getattr(info, k, None) for k in ("iteration", "loss", "grad_norm", "clipped", "finite")})
    return rows


def _column(rows: Sequence[dict[str, Any]], key: str) -> np.ndarray:
    return np.array([np.nan if r.get(key) is None else float(r[key]) for r in rows], dtype=np.float64)


def _positive(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64).copy()
    a[~np.isfinite(a) | (a <= 0)] = np.nan  # a log axis cannot show 0, inf or NaN: gaps instead
    return a


def figure(history: Iterable[Any] = (), profile_first: Any = None, profile_last: Any = None,
           baseline: float | None = None, clip: str = "none", threshold: float | None = None,
           title: str = "", labels: tuple[str, str] = ("first iteration", "last iteration")) -> Any:
    """The figure as a ``matplotlib.figure.Figure`` (see the module doc for its panels; a panel without data is
    left out)."""
    from matplotlib.figure import Figure

    rows = _rows(history)
    has_profile = profile_first is not None or profile_last is not None
    panels = (["profile"] if has_profile else []) + (["loss", "grad"] if rows else [])
    if not panels:
        panels = ["profile"]
    fig = Figure(figsize=(7.5, 2.5 * len(panels) + 0.6), layout="constrained")
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    if title:
        fig.suptitle(title, fontsize=11)
    ax_of = dict(zip(panels, axes))

    if "profile" in ax_of:
        ax = ax_of["profile"]
        drawn = False
        for label, prof, color, style in ((labels[0], profile_first, FIRST, "-"), (labels[1], profile_last, LAST, "--")):
            if prof is None:
                continue
            zeros = int(np.sum(np.asarray(prof, dtype=np.float64) == 0))
            if zeros:
                label += f" ({zeros} steps at exactly 0: not on a log axis)"
            prof = _positive(prof)
            if np.any(np.isfinite(prof)):
                ax.plot(np.arange(prof.size), prof, style, color=color, label=label, lw=1.6)
                drawn = True
        if drawn:
            ax.set_yscale("log")
            ax.legend(loc="best", fontsize=8)
        else:
            ax.text(0.5, 0.5, "no finite gradient to show", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel("time step t")
        ax.set_ylabel("‖dL/dh_t‖ (batch mean)")
        ax.set_title("gradient profile: how much of the loss reaches each step", fontsize=9, loc="left")
        ax.grid(True, which="major", alpha=0.3)

    if rows:
        it = _column(rows, "iteration")
        loss = _column(rows, "loss")
        grad = _column(rows, "grad_norm")
        clipped = np.array([bool(r.get("clipped")) for r in rows])
        bad = np.array([r.get("finite") is False for r in rows])

        ax = ax_of["loss"]
        ax.plot(it, loss, color=FIRST, lw=1.4, label="loss")
        if baseline is not None and math.isfinite(baseline):
            ax.axhline(baseline, color=CHANCE, ls=":", lw=1.2, label=f"chance level {baseline:.3g}")
        if bad.any():
            y = np.where(np.isfinite(loss[bad]), loss[bad], np.nanmax(np.where(np.isfinite(loss), loss, np.nan),
                                                                         initial=1.0))
            ax.plot(it[bad], y, "x", color=BAD, ms=8, mew=2, label="non-finite value")
        finite = loss[np.isfinite(loss) & (loss > 0)]
        log_loss = finite.size > 1 and finite.max() > 50 * finite.min()  # spikes would flatten the rest
        if log_loss:
            ax.set_yscale("log")
        ax.set_ylabel("loss (log axis)" if log_loss else "loss")
        ax.set_title("loss per iteration", fontsize=9, loc="left")
        ax.legend(loc="best", fontsize=8)
        ax.grid(True, alpha=0.3)

        ax = ax_of["grad"]
        pos = _positive(grad)
        ax.plot(it, pos, color=LAST, lw=1.2, label="‖g‖ before clipping")
        if clip == "norm" and threshold is not None:
            ax.axhline(threshold, color=CLIP, ls="--", lw=1.2, label=f"clipping threshold θ = {threshold:g}")
        if clipped.any():
            ax.plot(it[clipped], pos[clipped], "o", color=CLIP, ms=3.5, label=f"clipped ({int(clipped.sum())})")
        if bad.any():
            top = np.nanmax(pos) if np.any(np.isfinite(pos)) else 1.0
            ax.plot(it[bad], np.full(int(bad.sum()), top), "x", color=BAD, ms=8, mew=2,
                    label=f"non-finite ({int(bad.sum())})")
        if np.any(np.isfinite(pos)):
            ax.set_yscale("log")
        ax.set_xlabel("iteration")
        ax.set_ylabel("gradient norm")
        title = "gradient norm per iteration"
        if clip == "value" and threshold is not None:
            title += f" (clipping by value, |g_i| ≤ {threshold:g})"
        ax.set_title(title, fontsize=9, loc="left")
        ax.legend(loc="best", fontsize=8)
        ax.grid(True, which="major", alpha=0.3)
    return fig


def figure_for_run(result: dict[str, Any]) -> Any:
    """The figure of an ``rnnsim run`` result (the dict export.write_results takes)."""
    sc = result.get("scenario", {})
    model, task, training = sc.get("model", {}), sc.get("task", {}), sc.get("training", {})
    summary = result.get("summary", {})
    arrays = result.get("arrays", {})
    title = (f"{summary.get('scenario', '')}: {model.get('cell', '')}, H={model.get('hidden_size', '')}, "
             f"T={task.get('length', '')}, {training.get('optimizer', '')} lr={training.get('learning_rate', '')}, "
             f"clip {training.get('clip', 'none')}")
    first, last = arrays.get("gradient_profile_first"), arrays.get("gradient_profile")
    labels = ("first iteration", "last iteration")
    if not result.get("history"):  # --iterations 0: one pass at the initial weights
        first, last, labels = last, None, ("initial weights (one forward and backward pass)", "")
    return figure(result.get("history", []), first, last, summary.get("baseline"), training.get("clip", "none"),
                  training.get("clip_threshold"), title, labels)


def save(path: str | os.PathLike[str], fig: Any) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix) through a temporary file and a rename."""
    p = check_path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent if str(p.parent) else ".")
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format=p.suffix.lower().lstrip("."), dpi=150, metadata=_metadata(p.suffix.lower()))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return p


def _metadata(suffix: str) -> dict[str, Any]:
    # no creation date: the same run gives the same file
    return {".svg": {"Date": None}, ".pdf": {"CreationDate": None}, ".png": {}}.get(suffix, {})


def svg_text(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


class RunHistory(list):
    """The run's history; on the first append it also keeps ‖dL/dh_t‖ of that iteration (the arrays of the last
    pass stay readable until the next forward), for --plot and the CSV profile."""

    def __init__(self, sim: Any) -> None:
        super().__init__()
        self.sim, self.first = sim, None

    def append(self, info: Any) -> None:
        if not self and getattr(self.sim, "grad_hidden", None) is not None:
            import numpy as np

            from rnnsim import diagnostics

            with np.errstate(all="ignore"):
                self.first = np.array(diagnostics.gradient_profile(self.sim), dtype=np.float64)
        super().append(info)


# ------------------------------------------------------------------------------------------ notebook reprs
class SvgRepr:
    """``_repr_svg_`` for the Simulation: its last gradient profile and its history (None without matplotlib)."""

    def _repr_svg_(self) -> str | None:
        try:
            require()
        except MissingExtra:
            return None
        profile = None
        if getattr(self, "phase", None) == "backward_done" or getattr(self, "history", None):
            from rnnsim import diagnostics

            with np.errstate(all="ignore"):
                profile = diagnostics.gradient_profile(self)
        sc = self.scenario
        tr = sc.training
        fig = figure(getattr(self, "history", []), None, profile, getattr(self, "baseline", None), tr.clip,
                     tr.clip_threshold, f"{sc.scenario.name}: {sc.model.cell}, H={sc.model.hidden_size}, "
                                        f"T={sc.task.length}")
        return svg_text(fig)
