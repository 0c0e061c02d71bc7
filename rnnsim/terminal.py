"""Whether the TUI can run here: it needs a terminal on stdin, stdout and stderr.

Textual draws on stderr and reads keys from stdin. ``rnnsim vanishing </dev/null >f 2>g`` used to never exit
and write escape codes into the files; with only stderr redirected the whole TUI was drawn into the file. The
CLI now prints one line suggesting ``rnnsim run`` and exits 2 instead.
"""

from __future__ import annotations

import errno
import os
import sys

__all__ = ["stdout_error", "tui_problem"]


def _isatty(stream) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def tui_problem(scenario: str) -> str | None:
    """One line saying why the TUI cannot start (no terminal), or None. A session of ``rnnsim serve``
    (textual-serve sets TEXTUAL_DRIVER to Textual's web driver, which talks over pipes) needs no terminal."""
    if "web_driver" in os.environ.get("TEXTUAL_DRIVER", ""):
        return None
    missing = [name for name, stream in (("stdin", sys.stdin), ("stdout", sys.stdout), ("stderr", sys.stderr))
               if not _isatty(stream)]
    if not missing:
        return None
    return (f"the TUI needs a terminal, but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not one; "
            f"for a run without the TUI: rnnsim run {scenario}")


#: errors that writing to standard output gives when it cannot take the text (a full disk, /dev/full, a dead device)
_FULL = {getattr(errno, n) for n in ("ENOSPC", "EIO", "EDQUOT", "EFBIG") if hasattr(errno, n)}


def stdout_error(exc: BaseException) -> str | None:
    """The one line for an OSError raised outside any command (click writing --help or --version itself, e.g.
    ``rnnsim --version >/dev/full``), or None when it is not such a write error."""
    if isinstance(exc, OSError) and exc.errno in _FULL and exc.filename is None:
        return f"rnnsim: cannot write to standard output: {exc.strerror or exc}"
    return None
