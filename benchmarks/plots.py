"""SVG plots of the cell-kernel scaling curves (time per step against H and against T) for docs/benchmarks.md.

matplotlib is optional (`pip install -e '.[bench]'`); without it `scaling_svgs` prints a one-line note and returns
no paths, and the benchmark writes its tables only. The SVGs are deterministic for the same numbers and the same
matplotlib version: no date in the metadata, a fixed `svg.hashsalt` for the ids, text kept as text.
"""

from __future__ import annotations

import sys
from pathlib import Path

#: file names under docs/images/
H_SVG = "bench-scaling-h.svg"
T_SVG = "bench-scaling-t.svg"
FOOTER = "machine, command and the table: docs/benchmarks.md, section Cell kernels: scaling"
NOTE = "note: matplotlib not installed, scaling plots not written (tables only); pip install -e '.[bench]' for them"

_RC = {"svg.hashsalt": "rnnsim-bench", "svg.fonttype": "none", "font.size": 10, "axes.grid": True,
       "grid.alpha": 0.3, "figure.figsize": (6.4, 4.2)}


def _figure():
    from matplotlib.figure import Figure

    fig = Figure(layout="constrained")
    return fig, fig.add_subplot()


def _plot(xs, series):
    """A figure with one line (in µs, with markers) per named series of seconds."""
    fig, ax = _figure()
    for (name, ys), marker in zip(series.items(), "os^D"):
        ax.plot(xs, [t * 1e6 for t in ys], marker=marker, label=name)
    return fig, ax


def _finish(fig, ax, path: Path, xticks, xlabel, ylabel, title) -> Path:
    ax.set_xticks(*xticks)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.supxlabel(FOOTER, x=0.99, ha="right", fontsize=7, color="0.4")  # constrained layout makes room for it
    fig.savefig(path, format="svg", metadata={"Date": None, "Creator": "rnnsim benchmarks (matplotlib)"})
    return path


def scaling_h_svg(path: Path, data: dict) -> Path:
    """Log-log time per step against H: rnnsim, PyTorch's fused layer when measured, and a slope-2 line."""
    Hs = data["H"]
    fig, ax = _plot(Hs, {k: v for k, v in data["series"].items() if v})
    # the H² of the recurrent GEMM, through rnnsim's largest-H point (where the GEMM dominates)
    ref = data["series"]["rnnsim"][-1] * 1e6
    ax.plot(Hs, [ref * (h / Hs[-1]) ** 2 for h in Hs], "k--", lw=1, label="∝ H² (slope 2)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    return _finish(fig, ax, path, (Hs, [str(h) for h in Hs]), "hidden size H (log scale)",
                   "time per step (µs, log scale)", f"{data['cell'].upper()} forward + backward per step against H\n"
                   f"B = {data['B']}, {data['dtype']}, T = {data['T']}")


def scaling_t_svg(path: Path, data: dict) -> Path:
    """Time per step against T (log x, linear y from 0): flat when every step costs the same."""
    Ts = data["T"]
    fig, ax = _plot(Ts, data["series"])
    ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    return _finish(fig, ax, path, (Ts, [f"{t:,}" for t in Ts]), "sequence length T (log scale)",
                   "time per step (µs)", f"{data['cell'].upper()} forward + backward per step against T (flat = the "
                   f"same work per step)\nH = {data['H']}, B = {data['B']}, {data['dtype']}")


def scaling_svgs(outdir: Path, h_data: dict, t_data: dict) -> list[Path]:
    """Write both plots under ``outdir``; without matplotlib print NOTE to stderr and return []."""
    try:
        import matplotlib
    except ImportError:
        print(NOTE, file=sys.stderr, flush=True)
        return []
    with matplotlib.rc_context(_RC):
        return [scaling_h_svg(outdir / H_SVG, h_data), scaling_t_svg(outdir / T_SVG, t_data)]
