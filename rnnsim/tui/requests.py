"""Questions the UI asks the worker thread (the only thread that touches the Simulation): each is answered in
the worker and polled by the UI on a timer (the pull model of DESIGN §5)."""

from __future__ import annotations

import threading


class ExplainRequest:
    """The explain panel's question to the worker: rnnsim.explain at step ``t`` of A's simulation, answered in the
    worker (the only thread that touches the Simulation); the panel polls ``done`` on a timer (pull model)."""

    def __init__(self, t: int, sample: int = 0) -> None:
        self.t, self.sample = t, sample
        self.done = threading.Event()
        self.result = None    #: an rnnsim.explain.Explanation
        self.error: str | None = None

    def run(self, sim, pass_params=None) -> None:
        from rnnsim.explain import explain

        try:
            if sim is None:
                self.error = "the simulation is not built yet"
            else:
                self.result = explain(sim, self.t, self.sample, pass_params)
        except Exception as exc:  # noqa: BLE001 - shown in the panel, not raised in the worker
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.done.set()
