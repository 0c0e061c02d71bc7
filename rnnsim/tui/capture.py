"""ctrl+s: an SVG screenshot of the current screen; w: the current scenario as a TOML file.

In a terminal it is written to the current folder as ``rnnsim-<scenario>-<view>-<date>-<time>.svg`` (a new name if
that exists; written to a temporary file and renamed, so no half file is left); in a browser session (``rnnsim
serve``) Textual's ``deliver_screenshot`` hands it to the browser, which opens it in a new tab to save. Either way the
status line names the file.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "screen"


def screenshot_name(app: Any, folder: Path | None = None, now: float | None = None) -> str:
    """A file name that says what is on it and does not exist yet in ``folder``."""
    sc = getattr(app, "scenario", None)
    name = getattr(getattr(sc, "scenario", None), "name", "") or "rnnsim"
    view = getattr(app, "view", "") or "screen"
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    base = f"rnnsim-{_slug(name)}-{_slug(view)}-{stamp}"
    folder = folder or Path.cwd()
    candidate, n = f"{base}.svg", 2
    while (folder / candidate).exists():
        candidate, n = f"{base}-{n}.svg", n + 1
    return candidate


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def take_screenshot(app: Any, folder: str | os.PathLike[str] | None = None) -> str:
    """Save (terminal) or deliver (browser) an SVG of the screen; returns the status-line message."""
    if getattr(app, "is_web", False):
        name = screenshot_name(app, Path(tempfile.gettempdir()))
        app.deliver_screenshot(filename=name)
        message = f"screenshot {name}: sent to the browser (it opens in a new tab; save it from there)"
    else:
        where = Path(folder) if folder is not None else Path.cwd()
        name = screenshot_name(app, where)
        path = where / name
        try:
            _write_atomic(path, app.export_screenshot())
        except OSError as exc:
            message = f"screenshot not saved: {path}: {exc.strerror or exc}"
            _show(app, message, error=True)
            return message
        here = where.resolve() == Path.cwd().resolve()
        message = f"screenshot saved: {name}" + (" (current folder)" if here else f" in {where}")
    _show(app, message)
    return message


def write_scenario(app: Any, folder: str | os.PathLike[str] | None = None) -> str:
    """w: the scenario as the next iteration will run it (the pending change applied, when there is one) to a new
    ``rnnsim-<scenario>-<n>.toml`` in the current folder (rnnsim.export.write_scenario), or, in a browser session,
    delivered as a download (weights and data paths then absolute). Returns the status-line message."""
    import io

    from rnnsim import safe_text
    from rnnsim.export import ExportError, scenario_file_stem
    from rnnsim.export import write_scenario as write
    from rnnsim.play import scenario_diff

    frame = app.runner.frame
    running = frame.scenario if frame.ready and frame.scenario is not None else app.scenario
    pending = frame.pending if frame.ready else None
    sc = pending if pending is not None else running
    note = ""
    if pending is not None:
        changed = ", ".join(f"{k}={v}" for k, v in scenario_diff(running, pending).items()) or "none"
        note = f", pending included: {changed}"
    if getattr(app, "is_web", False):
        name = f"{scenario_file_stem(sc)}.toml"
        app.deliver_text(io.StringIO(sc.to_toml(absolute=True)), save_filename=name, mime_type="application/toml")
        message = f"scenario {name} sent to the browser (a download){note}"
    else:
        try:
            path = write(sc, folder)
        except ExportError as exc:
            message = "scenario not written: " + safe_text.one_line(str(exc))
            _show(app, message, error=True)
            return message
        here = path.parent.resolve() == Path.cwd().resolve()
        message = "wrote " + (f"./{path.name}" if here else os.fspath(path)) + note
    _show(app, message)
    return message


def _show(app: Any, message: str, error: bool = False) -> None:
    from .widgets.status import StatusBar

    with contextlib.suppress(Exception):
        app.query_one(StatusBar).set_note(message, error=error)
