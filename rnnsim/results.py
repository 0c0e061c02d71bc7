"""What one run produced: the summary `rnnsim run` prints and exports, and the gradient regime.

`rnnsim run` and every `rnnsim sweep` row compute their numbers here, with the same code, so a sweep row equals
the `rnnsim run` with the same overrides. Nothing here imports Numba; the diagnostics are imported when a
profile is computed.
"""

from __future__ import annotations

import math
from typing import Any, Callable

__all__ = [
    "VANISHING_BELOW",
    "EXPLODING_ABOVE",
    "REGIMES",
    "run_passes",
    "collect",
    "regime",
    "grad_norm",
    "info_dict",
]

#: the regime rule (README, "The regime rule"): ‖dL/dh_0‖/‖dL/dh_{T-1}‖ below this is vanishing ...
VANISHING_BELOW = 1e-2
#: ... above this (or any non-finite value in the run) is exploding; in between is stable
EXPLODING_ABOVE = 1e2
REGIMES = ("vanishing", "stable", "exploding")


def run_passes(sim: Any, n: int, callback: Callable[[Any], Any] | None = None) -> tuple[list[Any], float | None]:
    """Run ``n`` training iterations (``n = 0``: one forward and one backward pass at the initial weights).

    Returns ``(history, single_loss)``: the UpdateInfo of each iteration (also given to ``callback``), and for
    ``n = 0`` the loss of the single pass (else None). A KeyboardInterrupt propagates; ``history`` is then lost,
    so callers that want what finished pass a callback that records it.
    """
    if n == 0:
        loss = float(sim.forward())
        sim.backward()
        return [], loss
    history: list[Any] = []

    def record(info: Any) -> Any:
        history.append(info)
        return None if callback is None else callback(info)

    sim.train(n, record)
    return history, None


def grad_norm(sim: Any) -> float | None:
    """The global gradient norm of the last backward pass (None before any)."""
    grads = getattr(sim, "grads", None)
    if not grads:
        return None
    import numpy as np

    return float(math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads.values())))


def collect(sim: Any, sc: Any, history: list[Any], n: int, single_loss: float | None, interrupted: bool) -> dict:
    """Everything a run produced, as the dict ``export.write_results`` takes.

    ``summary`` holds: scenario, source, iterations_requested, iterations_done, interrupted, final_loss,
    grad_norm (last), max_grad_norm (over the run, before clipping), baseline, clipping_events, nonfinite_events,
    sentinel, finite, gradient_ratio, decay_rate, decay and regime.
    """
    import numpy as np

    rows = [info_dict(info) for info in history]
    summary: dict[str, Any] = {
        "scenario": sc.scenario.name,
        "source": sc.source,
        "iterations_requested": n,
        "iterations_done": len(rows),
        "interrupted": interrupted,
    }
    if rows:
        summary["final_loss"] = rows[-1].get("loss")
        summary["grad_norm"] = rows[-1].get("grad_norm")
        summary["max_grad_norm"] = _max_norm(r.get("grad_norm") for r in rows)
    else:
        summary["final_loss"] = single_loss
        summary["grad_norm"] = grad_norm(sim) if single_loss is not None else None
        summary["max_grad_norm"] = summary["grad_norm"]
    summary["baseline"] = getattr(sim, "baseline", None)
    summary["clipping_events"] = sum(1 for r in rows if r.get("clipped"))
    summary["nonfinite_events"] = sum(1 for r in rows if r.get("finite") is False)
    sentinel = getattr(sim, "sentinel", None)
    summary["sentinel"] = None if sentinel is None else " ".join(str(sentinel).split())
    summary["finite"] = sentinel is None and summary["nonfinite_events"] == 0

    arrays: dict[str, Any] = {}
    summary["gradient_ratio"] = None
    summary["decay_rate"] = None
    summary["decay"] = None
    grad_hidden = getattr(sim, "grad_hidden", None)
    if grad_hidden is not None and (rows or single_loss is not None):
        with np.errstate(all="ignore"):  # an exploded run overflows in the norms: reported, not warned about
            _profile(sim, summary, arrays)
    summary["regime"] = regime(summary["gradient_ratio"], summary["finite"] and summary["decay"] != _NOT_FINITE)
    return {"scenario": sc.to_dict(), "history": rows, "summary": summary, "arrays": arrays}


def layers_text(layer_gradients) -> str:
    """``summary["layer_gradients"]`` in lines, the top layer first (as the TUI's depth × time map draws them)."""
    return "\n".join(f"layer {k + 1}: {a:.2e} … {b:.2e}" for k, (a, b) in reversed(list(enumerate(layer_gradients))))


def regime(ratio: float | None, finite: bool) -> str:
    """vanishing / stable / exploding from the gradient ratio ‖dL/dh_0‖/‖dL/dh_{T-1}‖ of the last pass.

    exploding: a value of the run was not finite, or ratio > EXPLODING_ABOVE (100); vanishing: ratio <
    VANISHING_BELOW (0.01), including exactly 0; stable otherwise, including T = 1 (no ratio).
    """
    if not finite:
        return "exploding"
    if ratio is None or math.isnan(ratio):
        return "stable"
    if ratio < VANISHING_BELOW:
        return "vanishing"
    if ratio > EXPLODING_ABOVE:
        return "exploding"
    return "stable"


_NOT_FINITE = "not finite (the values overflowed or became NaN)"


def _profile(sim: Any, summary: dict, arrays: dict) -> None:
    """Gradient profile ‖dL/dh_t‖ and its decay summary, from diagnostics."""
    import numpy as np

    from rnnsim import diagnostics

    # the profile of the last pass (its arrays stay readable after its update)
    profile = np.asarray(diagnostics.gradient_profile(sim), dtype=np.float64)
    arrays["gradient_profile"] = profile
    if profile.size and np.all(np.isfinite(profile)):
        decay = diagnostics.decay_summary(profile)
        summary["gradient_ratio"] = _float_or_none(getattr(decay, "ratio", None))
        summary["decay_rate"] = _float_or_none(getattr(decay, "rate", None))
        summary["decay"] = getattr(decay, "text", None)
    else:
        summary["decay"] = _NOT_FINITE
    if getattr(sim, "num_layers", 1) > 1:   # stacked layers: [‖dL/dh_0^l‖, ‖dL/dh_{T-1}^l‖] per layer, bottom first
        depth = np.asarray(diagnostics.depth_profile(sim), dtype=np.float64)
        arrays["depth_profile"] = depth
        summary["layer_gradients"] = [[float(row[0]), float(row[-1])] for row in depth]


def _max_norm(values: Any) -> float | None:
    finite_or_inf = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return max(finite_or_inf) if finite_or_inf else None


def _float_or_none(x: Any) -> float | None:
    try:
        return None if x is None else float(x)
    except (TypeError, ValueError):
        return None


def info_dict(info: Any) -> dict[str, Any]:
    """One UpdateInfo (a dataclass or a dict) as a plain dict."""
    if isinstance(info, dict):
        return dict(info)
    fields = getattr(info, "__dataclass_fields__", None)
    if fields:
        return {k: getattr(info, k) for k in fields}
    return {k: getattr(info, k) for k in ("iteration", "loss", "grad_norm", "clipped_norm", "clipped", "finite") if hasattr(info, k)}


def _fmt(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.6g}"
    return str(x)


def print_summary(sc, s: dict[str, Any], out: str | None) -> None:
    """`rnnsim run`'s summary table on stdout (rich), from the summary ``collect`` made."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{sc.scenario.name} ({sc.source})", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    done = s["iterations_done"]
    layers = f", {sc.model.num_layers} layers" if sc.model.num_layers > 1 else ""
    table.add_row("cell", f"{sc.model.cell}{layers}, H={sc.model.hidden_size}, T={sc.task.length}, B={sc.task.batch_size}")
    table.add_row("iterations", f"{done}" if s["iterations_requested"] else "0 (one forward and backward pass)")
    table.add_row("final loss", _fmt(s["final_loss"]))
    table.add_row("task baseline", _fmt(s["baseline"]))
    table.add_row("gradient norm (last)", _fmt(s["grad_norm"]))
    table.add_row("gradient norm (max)", _fmt(s.get("max_grad_norm")))
    table.add_row("‖dL/dh_0‖ / ‖dL/dh_T-1‖", _fmt(s["gradient_ratio"]))
    table.add_row("regime", str(s.get("regime", "-")))
    if s["decay"]:
        table.add_row("gradient profile", str(s["decay"]))
    if s.get("layer_gradients"):
        table.add_row("‖dL/dh_0‖ … ‖dL/dh_T-1‖ per layer", layers_text(s["layer_gradients"]))
    table.add_row("clipping events", str(s["clipping_events"]))
    table.add_row("non-finite events", str(s["nonfinite_events"]))
    if s["sentinel"]:
        table.add_row("first non-finite value", s["sentinel"])
    if s.get("heldout_sequences"):
        table.add_row("held-out loss", f"{_fmt(s['heldout_loss'])} ({s['heldout_sequences']} sequences)")
        if s.get("heldout_accuracy") is not None:
            table.add_row("held-out accuracy", f"{s['heldout_accuracy']:.1%}")
    if out:
        table.add_row("results", out)
    if s.get("weights"):
        table.add_row("weights", s["weights"])
    if s.get("plot"):
        table.add_row("figure", s["plot"])
    Console().print(table)
