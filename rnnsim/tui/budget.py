"""The training budget the Runner keeps to (issue 11, issue 15 item 6): `t` trains up to
``training.iterations`` and stops with a status line that says so; `T` (``train_more``) moves the target one
budget further. A mixin of :class:`rnnsim.tui.runner.Runner` (its ``play``, ``play_b``, ``_train_target``,
``_training`` and ``_message``)."""

from __future__ import annotations

DEFAULT_CHUNK = 200  #: iterations `T` adds when training.iterations is 0


class TrainingBudget:
    @property
    def budget(self) -> int:
        """training.iterations of the running scenario (0 before the simulation exists)."""
        return 0 if self.play is None else int(self.play.sim.scenario.training.iterations)

    @property
    def budget_chunk(self) -> int:
        """How far `T` moves the target: one budget (200 iterations when the budget is 0)."""
        return self.budget or DEFAULT_CHUNK

    @property
    def train_target(self) -> int:
        """The iteration at which training stops: the budget, unless T (or train n) moved it."""
        return self.budget if self._train_target is None else self._train_target

    def _iteration(self) -> int:
        """Iterations trained: A's (or B's in the compare view, once a NaN/inf stopped A)."""
        its = [p.sim.iteration for p in (self.play, self.play_b) if p is not None]
        return max(its, default=0)

    def _budget_text(self) -> str:
        it = self._iteration()
        return f"budget reached: {it}/{self.train_target} iterations; T trains on ({self.budget_chunk} more)"

    def _check_budget(self) -> None:
        """Stop training at the target iteration, with a status line that says so and how to go on."""
        if self.play is not None and self._iteration() >= self.train_target:
            self._training = False
            self._message = self._budget_text()
