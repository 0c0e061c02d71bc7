"""A bounded record of training iterations: `Simulation.history` (issue 15 item 6).

A long interactive session runs millions of iterations; keeping every UpdateInfo grew by ~228 B each (1.3 GB an
hour). `History(cap=N)` keeps at most N entries: when it would hold more, the newest N/2 stay exact and all older ones
are regrouped into `Bin`s of one width (2, 4, 8... iterations, aligned on multiples of it, doubled until they fit
in N/4 entries), so the old part of a plot has one resolution. A merge never loses an extreme or an event:

    Bin field        meaning over the iterations it covers       UpdateInfo equivalent (count = 1)
    first            first iteration (1-based)                     iteration
    iteration        last iteration                                iteration
    count            number of iterations                          1
    loss             the last loss (what a "last value" plot shows) loss
    loss_min/_max    smallest / largest loss (NaN ignored)         loss
    grad_norm        the largest ‖g‖ before clipping (spikes kept) grad_norm
    grad_norm_min    the smallest ‖g‖                              grad_norm
    grad_norm_last   the ‖g‖ of the last iteration                 grad_norm
    clipped_norm     the largest ‖g‖ after clipping                clipped_norm
    clipped          True if clipping acted in any iteration       clipped
    n_clipped        iterations where clipping acted               int(clipped)
    finite           False if any iteration was not finite         finite
    n_nonfinite      iterations with a NaN/inf                     int(not finite)
    cosine           the smallest cos(g before, g after)           cosine

The TUI copies these into per-entry arrays (rnnsim/tui/frames.py `History`); the plot widgets decide how to draw
bins (max per bin for norms, a mark for every clip and non-finite entry). `compactions` counts merges, so a
reader that follows the list by index knows when to start again. `Simulation.train`'s return value is unbounded
(it holds what the caller asked for).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

#: entries Simulation.history keeps at most (~4096 × 300 B ≈ 1.2 MB however long it trains)
HISTORY_CAP = 4096


def _max(a: float, b: float) -> float:
    """max ignoring NaN (NaN only if both are)."""
    if a != a:
        return b
    if b != b:
        return a
    return a if a >= b else b


def _min(a: float, b: float) -> float:
    if a != a:
        return b
    if b != b:
        return a
    return a if a <= b else b


def _f(x: Any) -> float:
    try:
        return math.nan if x is None else float(x)
    except (TypeError, ValueError):
        return math.nan


@dataclass(frozen=True)
class Bin:
    """Consecutive iterations merged into one entry (see the module doc for each field)."""

    first: int
    iteration: int
    count: int
    loss: float
    loss_min: float
    loss_max: float
    grad_norm: float
    grad_norm_min: float
    grad_norm_last: float
    clipped_norm: float
    clipped: bool
    n_clipped: int
    finite: bool
    n_nonfinite: int
    cosine: float = 1.0

    @classmethod
    def of(cls, e: Any) -> "Bin":
        """An UpdateInfo (or a Bin) as a Bin."""
        if isinstance(e, Bin):
            return e
        loss, g = _f(e.loss), _f(e.grad_norm)
        clipped, finite = bool(e.clipped), bool(e.finite)
        return cls(int(e.iteration), int(e.iteration), 1, loss, loss, loss, g, g, g,
                   _f(getattr(e, "clipped_norm", None)), clipped, int(clipped), finite, int(not finite),
                   _f(getattr(e, "cosine", 1.0)))

    def merge(self, later: Any) -> "Bin":
        """This bin followed by ``later`` (an UpdateInfo or Bin) as one bin."""
        b = Bin.of(later)
        return Bin(
            first=self.first, iteration=b.iteration, count=self.count + b.count,
            loss=b.loss, loss_min=_min(self.loss_min, b.loss_min), loss_max=_max(self.loss_max, b.loss_max),
            grad_norm=_max(self.grad_norm, b.grad_norm), grad_norm_min=_min(self.grad_norm_min, b.grad_norm_min),
            grad_norm_last=b.grad_norm_last, clipped_norm=_max(self.clipped_norm, b.clipped_norm),
            clipped=self.clipped or b.clipped, n_clipped=self.n_clipped + b.n_clipped,
            finite=self.finite and b.finite, n_nonfinite=self.n_nonfinite + b.n_nonfinite,
            cosine=_min(self.cosine, b.cosine),
        )

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class History(list):
    """A list of UpdateInfo (and, once ``cap`` was reached, `Bin`s of the older iterations) that draws itself in a
    notebook (loss and gradient norm per iteration). ``cap=None``: unbounded."""

    def __init__(self, items: Iterable[Any] = (), cap: int | None = None) -> None:
        super().__init__()
        if cap is not None and cap < 4:
            raise ValueError("History cap must be at least 4")
        self.cap = cap
        self.compactions = 0
        self.width = 1  # iterations per bin in the old part (a power of two; 1 until the first compaction)
        for x in items:
            self.append(x)

    def append(self, item: Any) -> None:
        if self.cap is not None and len(self) >= self.cap:
            self._compact()  # room first: another thread reading len() never sees more than cap entries
        super().append(item)

    def extend(self, items: Iterable[Any]) -> None:
        for x in items:
            self.append(x)

    def _compact(self) -> None:
        """Keep the newest cap/2 entries exact; regroup all older ones into bins of `width` iterations, aligned
        on multiples of it (iterations 1..w, w+1..2w, ...), doubling the width until they fit in cap/4 entries.
        The old part of the x axis thus has one resolution, and the next compaction comes cap/4 appends later."""
        keep = self.cap // 2
        old = self[: len(self) - keep]
        while True:
            bins = self._regroup(old, self.width)
            if len(bins) <= self.cap // 4:
                break
            self.width *= 2
        self[: len(old)] = bins
        self.compactions += 1

    @staticmethod
    def _regroup(entries: list, width: int) -> list:
        out: list = []
        key = None
        for e in entries:
            k = (getattr(e, "first", e.iteration) - 1) // width
            if out and k == key:
                out[-1] = Bin.of(out[-1]).merge(e)
            else:
                out.append(e)
                key = k
        return out

    @property
    def iterations(self) -> int:
        """Iterations recorded (the entries' counts added up)."""
        return sum(getattr(e, "count", 1) for e in self)

    def _repr_svg_(self) -> str | None:
        if not self:
            return None
        from rnnsim import plot

        try:
            plot.require()
        except plot.MissingExtra:
            return None
        return plot.svg_text(plot.figure(self))
