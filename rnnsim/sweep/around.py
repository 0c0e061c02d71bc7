"""The regime map around one scenario (the TUI's view 8, "Regimes"): a small sweep recurrent_scale x task.length.

``around(sc)`` is a validated Sweep (rnnsim.sweep.spec.make_sweep) of the scenario itself over 7 recurrent scales
and 5 sequence lengths, ``iterations = 0`` (one forward and backward pass at the initial weights), the scenario's
own seed and cell. The scenario's own scale and length are always grid values (each replaces the nearest default),
so its point is on the map. Each run goes through the sweep's own code (rnnsim.sweep.backends.run_chunk), so a
row equals the same row of `rnnsim sweep` and of `rnnsim run --set ... --iterations 0`. No Textual here.
"""

from __future__ import annotations

import math
from typing import Any

from rnnsim.scenario import Scenario
from rnnsim.sweep.spec import Sweep, make_sweep

__all__ = ["SCALES", "LENGTHS", "KEYS", "grid_around", "around", "point_of", "run_point", "rows_of"]

SCALES = (0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5)
LENGTHS = (10, 25, 50, 100, 200)
KEYS = ("model.recurrent_scale", "task.length")


def _with(defaults: tuple, own: Any, log: bool) -> list:
    """``defaults`` with the value nearest to ``own`` replaced by ``own`` (sorted, no duplicate)."""
    values = list(defaults)
    if own in values:
        return values
    far = (lambda v: abs(math.log(v) - math.log(own))) if log and own > 0 else (lambda v: abs(v - own))
    values[min(range(len(values)), key=lambda i: far(values[i]))] = own
    return sorted(values)


def grid_around(sc: Scenario) -> dict[str, list]:
    return {KEYS[0]: _with(SCALES, sc.model.recurrent_scale, log=False),
            KEYS[1]: _with(LENGTHS, sc.task.length, log=True)}


def around(sc: Scenario) -> Sweep:
    """The sweep view 8 runs for ``sc`` (raises ScenarioError if a grid point is not a valid scenario)."""
    return make_sweep(sc, grid_around(sc), 0, (sc.scenario.seed,), source=f"{sc.scenario.name} (view 8)",
                      name=f"regimes around {sc.scenario.name} ({sc.model.cell})")


def point_of(sc: Scenario) -> tuple:
    """The map cell (facet, y, x) of the scenario itself (rnnsim.sweep.show.map_tables' ``mark``)."""
    return (None, sc.task.length, sc.model.recurrent_scale)


def run_point(sweep: Sweep, index: int) -> dict[str, Any]:
    """Run ``index`` of the sweep through the sweep's code path: the full table row."""
    from rnnsim.sweep.backends import run_chunk
    from rnnsim.sweep.table import full_row

    [(i, result)] = run_chunk(sweep, [index])
    return full_row(sweep, sweep.run_at(i), result)


def rows_of(sweep: Sweep) -> list[dict[str, Any]]:
    """Every row, in grid order, in this process (what `rnnsim sweep --workers 1` writes)."""
    return [run_point(sweep, i) for i in range(sweep.n_runs)]
