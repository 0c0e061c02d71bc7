"""`rnnsim sweep --show TABLE`: the regime map in the terminal (the numbers of --plot, as coloured tables).

One table per value of the third grid key: rows are the second key's values (largest on top), columns the first
key's, each cell the mean log10(grad_ratio) over seeds (and further keys) and the regime's letter: V vanishing,
S stable, E exploding (colour is a hint only, so NO_COLOR and 8-colour terminals show the same information).
"""

from __future__ import annotations

import math
from typing import Any

from rnnsim.results import EXPLODING_ABOVE, VANISHING_BELOW
from rnnsim.sweep.plot import cell_values
from rnnsim.sweep.spec import Sweep

__all__ = ["show_map", "map_tables", "header_text", "rule_text", "cell_text"]

_LOW, _HIGH = math.log10(VANISHING_BELOW), math.log10(EXPLODING_ABOVE)


def cell_text(v: float) -> tuple[str, str]:
    """(text, rich style) of one cell of the map."""
    if math.isnan(v):
        return "-", "dim"
    if v == math.inf:
        return "∞E", "bold red"
    if v == -math.inf:
        return "-∞V", "bold blue"
    if v > _HIGH:
        return f"{v:.1f}E", "red"
    if v < _LOW:
        return f"{v:.1f}V", "blue"
    return f"{v:.1f}S", ""


def _label(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def rule_text() -> str:
    """The regime rule in words (the docs' rule, rnnsim.results)."""
    return (f"V vanishing (< {_LOW:g}), S stable, E exploding (> {_HIGH:g} or ∞: not finite)")


def header_text(sweep: Sweep, rows: list[dict[str, Any]]) -> str:
    return (f"{sweep.name}: log10 ‖dL/dh_0‖/‖dL/dh_T-1‖, mean over seeds; {rule_text()}; "
            f"{len(rows)} of {sweep.n_runs} runs")


def map_tables(sweep: Sweep, rows: list[dict[str, Any]], mark: tuple | None = None) -> list[Any]:
    """The map as rich Tables, one per value of the third grid key (what --show prints and the TUI's view 8
    shows). ``mark``: a (facet, y, x) cell drawn as ``*value`` (a glyph, not only a colour: NO_COLOR)."""
    from rich import box
    from rich.table import Table

    keys, values = sweep.keys, sweep.values
    xs = list(values[0])
    ys = list(values[1])[::-1] if len(keys) > 1 else [None]
    facets = list(values[2]) if len(keys) > 2 else [None]
    cells = cell_values(sweep, rows)
    tables = []
    for facet in facets:
        title = f"columns: {keys[0]}" + (f"; rows: {keys[1]}" if len(keys) > 1 else "")
        if facet is not None:
            title = f"{keys[2]} = {_label(facet)} ({title})"
        table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1), highlight=False)
        table.add_column("", style="bold", justify="right", no_wrap=True)
        for x in xs:
            table.add_column(_label(x), justify="right", no_wrap=True)
        for y in ys:
            texts = []
            for x in xs:
                t, st = cell_text(cells.get((facet, y, x), math.nan))
                if mark is not None and (facet, y, x) == mark:
                    t, st = "*" + t, (st + " reverse").strip()
                texts.append((t, st))
            table.add_row(_label(y) if y is not None else "", *[f"[{st}]{t}[/]" if st else t for t, st in texts])
        tables.append(table)
    return tables


def show_map(sweep: Sweep, rows: list[dict[str, Any]], console: Any = None) -> None:
    from rich.console import Console

    console = console or Console()
    console.print(header_text(sweep, rows), highlight=False)
    for table in map_tables(sweep, rows):
        console.print(table)
