"""Stop a run on SIGTERM and SIGHUP as on SIGINT (Ctrl-C): the results so far are still written.

``with StopSignals() as stop:`` makes SIGTERM and SIGHUP raise KeyboardInterrupt in the main thread, like
SIGINT; ``stop.signum`` records which signal came. Inside ``with stop.shield():`` (writing the results) a signal
is only recorded, so a second one cannot interrupt the write. ``stop.exit_code`` is 128 + the signal number
(130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP). Outside the main thread it does nothing.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator

__all__ = ["StopSignals"]

_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class StopSignals:
    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}
        self._shielded = False

    def _handler(self, signum: int, frame: Any) -> None:
        first = self.signum is None
        if first:
            self.signum = signum
        if not self._shielded and first:
            raise KeyboardInterrupt

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in _SIGNALS:
                try:
                    self._old[sig] = signal.signal(sig, self._handler)
                except (OSError, ValueError):
                    pass
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            with contextlib.suppress(OSError, ValueError, TypeError):
                signal.signal(sig, old)
        self._old.clear()

    @contextlib.contextmanager
    def shield(self) -> Iterator[None]:
        """Record, but do not act on, signals while the block runs."""
        self._shielded = True
        try:
            yield
        finally:
            self._shielded = False

    @property
    def exit_code(self) -> int:
        return 128 + int(self.signum) if self.signum is not None else 130

    @property
    def name(self) -> str | None:
        if self.signum is None:
            return None
        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return str(self.signum)
