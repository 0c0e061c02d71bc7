"""SIGINT, SIGTERM and SIGHUP sent to the TUI process (kill, a closed terminal, a lab's session manager) end the
app the normal way: the worker stops, Textual restores the terminal (alternate screen, mouse, cursor), and the
process exits 128 + the signal number (130, 143, 129), as a shell expects. Without this SIGTERM and SIGHUP killed
the process with the terminal left in application mode, and SIGINT exited 0 (issue 15 item 8).

The handlers are asyncio loop handlers (`loop.add_signal_handler`), so they run as ordinary callbacks of the
app's event loop, never in the middle of it.
"""

from __future__ import annotations

import asyncio
import signal

NAMES = ("SIGINT", "SIGTERM", "SIGHUP")


def install(app) -> list[int]:
    """Make each of NAMES call ``app.exit(return_code=128 + signum)`` (a second one is ignored: the first is exiting).
    Returns the signal numbers installed (none where the platform or the thread does not allow it)."""
    loop = asyncio.get_running_loop()
    done: list[int] = []

    def on_signal(signum: int) -> None:
        if getattr(app, "_exit_signal", None) is None:
            app._exit_signal = signum
            app.exit(return_code=128 + signum)

    for name in NAMES:
        sig = getattr(signal, name, None)
        if sig is None:
            continue
        try:
            loop.add_signal_handler(sig, on_signal, int(sig))
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no such support
            continue
        done.append(int(sig))
    return done
