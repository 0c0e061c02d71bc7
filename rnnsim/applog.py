"""``RNNSIM_LOG=FILE``: the TUI's log for bug reports.

``RNNSIM_LOG=rnnsim.log rnnsim`` appends to FILE: Textual's own log (start-up, screens, errors; it is Textual's
``TEXTUAL_LOG``, which works too) and rnnsim's Python log (the ``rnnsim`` logger, at INFO: version, command line,
Python, NumPy and Numba versions). Set it before the TUI starts; textual reads TEXTUAL_LOG when it is imported.
Nothing here imports Textual.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from rnnsim.export import ExportError

ENV = "RNNSIM_LOG"
log = logging.getLogger("rnnsim")


def setup(environ: dict | None = None) -> str | None:
    """Route RNNSIM_LOG to Textual's TEXTUAL_LOG and a file handler on the ``rnnsim`` logger; returns the log path
    in use (RNNSIM_LOG or TEXTUAL_LOG) or None. A folder that does not exist is an ExportError (one line)."""
    env = os.environ if environ is None else environ
    path = env.get(ENV, "").strip() or None
    if path is None:
        return env.get("TEXTUAL_LOG") or None
    p = Path(path).expanduser()
    if p.is_dir():
        raise ExportError(f"{ENV}={path}: is a directory; give a file name, e.g. {ENV}=rnnsim.log")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise ExportError(f"{ENV}={path}: directory {os.fspath(parent)!r} does not exist")
    env["TEXTUAL_LOG"] = str(p)
    if not any(getattr(h, "baseFilename", None) == str(p.resolve()) for h in log.handlers):
        handler = logging.FileHandler(p, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    log.info("rnnsim %s, pid %d, argv %s", _version(), os.getpid(), sys.argv)
    log.info("python %s; %s", sys.version.split()[0], _versions("numpy", "numba", "textual", "textual-serve"))
    return str(p)


def _version() -> str:
    from rnnsim import __version__

    return __version__


def _versions(*names: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = []
    for name in names:
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            parts.append(f"{name} not installed")
    return ", ".join(parts)
