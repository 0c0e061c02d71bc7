"""A modal screen that closes once: a key burst cannot pop the main screen.

`o` then Enter Enter in one burst (pasted, or a key repeating) queued two OptionSelected messages in the
picker: the first dismissed it, the second dismissed again and popped the last screen
(``ScreenStackError: Can't pop screen``, a traceback, exit 1). :meth:`SafeModal.dismiss` acts only the first
time, and only while the screen is the active one; later calls return at once.
"""

from __future__ import annotations

from typing import Any

from textual.await_complete import AwaitComplete
from textual.screen import ModalScreen

__all__ = ["SafeModal"]


class SafeModal(ModalScreen):
    _rnnsim_dismissed: bool = False

    @property
    def closing(self) -> bool:
        """True once dismissed: handlers of messages still queued should do nothing."""
        return self._rnnsim_dismissed

    def dismiss(self, result: Any = None) -> AwaitComplete:
        if self._rnnsim_dismissed or not self.is_active:
            return AwaitComplete.nothing()
        self._rnnsim_dismissed = True
        return super().dismiss(result)
