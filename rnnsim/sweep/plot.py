"""The regime map of a sweep: log10(grad_ratio) over the first two grid keys, with the regime boundaries.

A third grid key gives one panel per value; further keys and the seeds are averaged (the mean of log10). A run
whose values became non-finite counts as exploding and is drawn in the colour above the scale with ``∞``.
Uses matplotlib's object API (no pyplot, no global state), written atomically; needs the 'plot' extra.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from rnnsim.export import ExportError, _atomic_write
from rnnsim.results import EXPLODING_ABOVE, VANISHING_BELOW
from rnnsim.sweep.spec import Sweep

__all__ = ["check_plot_path", "regime_map", "cell_values"]

PLOT_SUFFIXES = (".svg", ".png", ".pdf")


def check_plot_path(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if p.suffix.lower() not in PLOT_SUFFIXES:
        raise ExportError(f"--plot {os.fspath(path)}: unknown picture format {p.suffix or '(no suffix)'!r}; allowed: {', '.join(PLOT_SUFFIXES)}")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise ExportError(f"--plot {os.fspath(path)}: directory {os.fspath(parent)!r} does not exist")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ExportError("rnnsim sweep --plot needs the 'plot' extra: pip install 'rnnsim[plot]'") from None
    return p


def _log_ratio(row: dict[str, Any]) -> float:
    if not row["finite"]:
        return math.inf
    r = row["grad_ratio"]
    if r is None or math.isnan(r):
        return math.nan
    return -math.inf if r == 0 else math.log10(r)


def cell_values(sweep: Sweep, rows: list[dict[str, Any]]) -> dict[tuple, float]:
    """{(facet value, y value, x value): mean log10(grad_ratio)} (+inf if any run there was not finite)."""
    keys = sweep.keys
    x, y, f = keys[0], keys[1] if len(keys) > 1 else None, keys[2] if len(keys) > 2 else None
    groups: dict[tuple, list[float]] = {}
    for row in rows:
        cell = (row[f] if f else None, row[y] if y else None, row[x])
        groups.setdefault(cell, []).append(_log_ratio(row))
    out = {}
    for cell, values in groups.items():
        finite = [v for v in values if not math.isnan(v)]
        if any(v == math.inf for v in finite):
            out[cell] = math.inf
        elif any(v == -math.inf for v in finite):
            out[cell] = -math.inf
        else:
            out[cell] = sum(finite) / len(finite) if finite else math.nan
    return out


def regime_map(sweep: Sweep, rows: list[dict[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Draw the map of ``rows`` (the table's rows) to ``path`` (.svg, .png or .pdf)."""
    import numpy as np
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.figure import Figure

    p = check_plot_path(path)
    keys, values = sweep.keys, sweep.values
    xs = list(values[0])
    ys = list(values[1]) if len(keys) > 1 else [None]
    facets = list(values[2]) if len(keys) > 2 else [None]
    cells = cell_values(sweep, rows)
    finite = [v for v in cells.values() if math.isfinite(v)]
    span = min(max([3.0] + [abs(v) for v in finite]), 8.0)  # beyond 8 decades: the colours above/below the bar
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-span, vmax=span)
    import matplotlib

    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(over="#5a0013", under="#08183a", bad="#cccccc")

    width = min(4.2 * len(facets) + 1.2, 30)
    fig = Figure(figsize=(width, 3.8), layout="constrained")
    axes = fig.subplots(1, len(facets), squeeze=False)[0]
    image = None
    for ax, facet in zip(axes, facets):
        grid = np.full((len(ys), len(xs)), np.nan)
        for i, yv in enumerate(ys):
            for j, xv in enumerate(xs):
                grid[i, j] = cells.get((facet, yv, xv), math.nan)
        shown = np.where(np.isposinf(grid), span * 10, np.where(np.isneginf(grid), -span * 10, grid))
        image = ax.imshow(np.ma.masked_invalid(shown), cmap=cmap, norm=norm, origin="lower", aspect="auto")
        for i in range(len(ys)):
            for j in range(len(xs)):
                v = grid[i, j]
                text = "∞" if v == math.inf else ("-∞" if v == -math.inf else ("" if math.isnan(v) else f"{v:.1f}"))
                ax.text(j, i, text, ha="center", va="center", fontsize=8,
                        color="white" if not math.isfinite(v) or abs(v) > span * 0.6 else "black")
        if len(xs) > 1 and len(ys) > 1:
            clipped = np.nan_to_num(grid, nan=0.0, posinf=span * 10, neginf=-span * 10)
            levels = [math.log10(VANISHING_BELOW), math.log10(EXPLODING_ABOVE)]
            ax.contour(np.arange(len(xs)), np.arange(len(ys)), clipped, levels=levels, colors="k", linewidths=1.5,
                       linestyles=["--", "-"])
        ax.set_xticks(range(len(xs)), [_label(v) for v in xs])
        ax.set_xlabel(keys[0])
        if ys != [None]:
            ax.set_yticks(range(len(ys)), [_label(v) for v in ys])
            ax.set_ylabel(keys[1])
        else:
            ax.set_yticks([])
        if facet is not None:
            ax.set_title(f"{keys[2]} = {_label(facet)}")
    bar = fig.colorbar(image, ax=list(axes), extend="both")
    bar.set_label("log10 ‖dL/dh_0‖/‖dL/dh_T-1‖")
    bar.ax.axhline(math.log10(VANISHING_BELOW), color="k")
    bar.ax.axhline(math.log10(EXPLODING_ABOVE), color="k")
    fig.suptitle(f"{sweep.name}: vanishing below 10^{math.log10(VANISHING_BELOW):g}, exploding above "
                 f"10^{math.log10(EXPLODING_ABOVE):g} or ∞ (not finite); dashed: the vanishing boundary, solid: the exploding one; "
                 "numbers: mean log10 over seeds", fontsize=9)
    suffix = p.suffix.lower().lstrip(".")
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # text stays text: smaller, searchable SVG
        _atomic_write(p, lambda fh: fig.savefig(fh, format=suffix))
    return p


def _label(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)
