"""The knobs the keys change, and their cycles, read from the scenario schema (no Textual here).

A cycle is the `Literal` of the field (`typing.get_args` on the pydantic annotation), so a new cell, clipping
mode or init added to rnnsim/scenario.py joins the key's cycle, the compare view and the help text by itself.
"""

from __future__ import annotations

from typing import Any, Literal, get_args, get_origin

from rnnsim.scenario import Scenario

#: the knobs the compare view compares, in the order `x` steps through them
COMPARE_KNOBS = ("model.cell", "training.clip", "model.init", "model.layernorm", "model.activation")
#: clipping thresholds θ that `[` and `]` step through
THRESHOLDS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)


def _annotation(key: str):
    section, name = key.split(".")
    return Scenario.model_fields[section].annotation.model_fields[name].annotation


def choices(key: str) -> tuple:
    """The values a dotted key cycles through: its Literal's values, (False, True) for a bool."""
    ann = _annotation(key)
    if ann is bool:
        return (False, True)
    if get_origin(ann) is not Literal:
        raise ValueError(f"{key} is not a choice (annotation {ann!r})")
    return get_args(ann)


def cycle_text(key: str) -> str:
    """'none → norm → value' for the help screen."""
    return " → ".join(str(c) for c in choices(key))


def knob_value(sc, key: str) -> Any:
    section, name = key.split(".")
    return getattr(getattr(sc, section), name)


def next_value(sc, key: str) -> Any:
    """The value after sc's in the key's cycle (the first one if sc's is not in it); a bool flips."""
    cur = knob_value(sc, key)
    cyc = choices(key)
    if key == "model.cell" and sc.model.num_layers > 1:   # a stack of attention layers is refused: skip it
        cyc = [c for c in cyc if c != "attention"]
    if isinstance(cur, bool):
        return not cur
    return cyc[(cyc.index(cur) + 1) % len(cyc)] if cur in cyc else cyc[0]


def threshold_step(cur: float, direction: int) -> float:
    """The next clipping threshold above (direction > 0) or below cur in THRESHOLDS."""
    if direction > 0:
        return float(next((x for x in THRESHOLDS if x > cur * 1.0001), THRESHOLDS[-1]))
    return float(next((x for x in reversed(THRESHOLDS) if x < cur * 0.9999), THRESHOLDS[0]))


def scale_step(value: float, up: bool) -> float:
    """Recurrent scale in steps of 0.05 near 1 (where vanishing turns into exploding)."""
    step = 0.05 if value < 2 else 0.25
    new = round(value + (step if up else -step), 4)
    return min(max(new, 0.0), 100.0)


def describe(sc) -> str:
    """'rnn tanh +LN, init pytorch, scale 1, seed 0' for messages."""
    m = sc.model
    s = f"{m.cell}"
    if m.cell == "rnn":
        s += f" {m.activation}" + (" +LN" if m.layernorm else "")
    return s + f", init {m.init}, scale {m.recurrent_scale:g}, seed {sc.scenario.seed}"
