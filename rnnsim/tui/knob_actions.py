"""The knob keys of the TUI (c [ ] m a l s S i r R): each sends a change the worker computes from its own latest
scenario; a change that rebuilds from the seed after training warns first (the same key again goes ahead). A mixin
of :class:`rnnsim.tui.app.RnnsimApp` (its ``runner``, ``view``, ``_restart_armed``, ``_restart_ok_at`` and
``_reset_seq``)."""

from __future__ import annotations

from rnnsim.play import changes_model

from . import knobs
from .widgets.status import StatusBar


class KnobActions:
    def modify(self, fn) -> None:
        """Send a knob change computed by the worker from its own latest scenario (no lost key presses)."""
        self.runner.send("modify", fn)

    def cycle(self, key: str) -> None:
        """The next value of a knob in its cycle (its Literal's values; a bool flips)."""
        self.modify(lambda sc: {key: knobs.next_value(sc, key)})

    # ------------------------------------------------------- changes that restart from the seed: warn first
    def _restart_confirmed(self, key: str, what: str) -> bool:
        """A change that rebuilds from the seed throws away the training since the seed: when there is any
        (iteration > 0), the first press only warns on the status line and the same key pressed again (at the same
        iteration) goes ahead; after that, other restarting keys go ahead too until the iteration count changes
        (s s s steps the scale with one warning), and so does any key while a rebuild is already pending."""
        frame = self.runner.frame
        iterations = frame.iteration if frame is not None and frame.ready else 0
        pending = frame is not None and frame.pending is not None and changes_model(frame.scenario, frame.pending)
        if iterations <= 0 or pending or self._restart_ok_at == iterations or (
                frame is not None and frame.seq <= self._reset_seq):
            return True  # nothing to lose (or a reset, r, is on its way and will lose it anyway)
        if self._restart_armed == (key, iterations):
            self._restart_armed, self._restart_ok_at = None, iterations
            return True
        self._restart_armed = (key, iterations)
        s = "" if iterations == 1 else "s"
        self.query_one(StatusBar).set_note(  # fits 80 columns
            f"press {key} again to {what}: restart from the seed, {iterations} iteration{s} lost", error=True)
        return False

    def _restarts(self, key: str) -> bool:
        """Whether a change of ``key`` rebuilds from the seed: a model knob always; a training knob only when the
        Compare view compares it (then both restart)."""
        if key.startswith("model."):
            return True
        frame = self.runner.frame
        return self.view == "compare" and frame is not None and frame.compare is not None and \
            frame.compare.knob == key

    def cycle_confirmed(self, key: str, press: str) -> None:
        if not self._restarts(key) or self._restart_confirmed(press, f"change {key.split('.')[1].replace('_', ' ')}"):
            self.cycle(key)

    def action_clip(self) -> None:
        self.cycle_confirmed("training.clip", "c")

    def action_threshold(self, direction: int) -> None:
        self.modify(lambda sc: {"training.clip_threshold": knobs.threshold_step(sc.training.clip_threshold,
                                                                                direction)})

    def action_cell(self) -> None:
        self.cycle_confirmed("model.cell", "m")

    def action_activation(self) -> None:
        self.cycle_confirmed("model.activation", "a")

    def action_layernorm(self) -> None:
        self.cycle_confirmed("model.layernorm", "l")

    def action_scale(self, direction: int) -> None:
        if not self._restart_confirmed("S" if direction > 0 else "s", "change recurrent scale"):
            return
        self.modify(lambda sc: {"model.recurrent_scale": knobs.scale_step(float(sc.model.recurrent_scale),
                                                                          direction > 0)})

    def action_init(self) -> None:
        self.cycle_confirmed("model.init", "i")

    def action_reset(self) -> None:
        self._reset_seq = self.runner.frame.seq  # keys typed right after r do not warn about the training it drops
        self.runner.send("reset")

    def action_new_seed(self) -> None:
        self._reset_seq = self.runner.frame.seq
        self.runner.send("new_seed")
