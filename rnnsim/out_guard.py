"""``rnnsim run --out FILE`` without losing a run: check before, rescue after.

- :func:`prepare` runs before the simulation: a known suffix, an existing folder, not a directory, and a real
  write test: it creates (and removes) the temporary file the final write will use, so a read-only filesystem
  or a folder without write permission is refused in a second, not after a long run.
- :func:`write_or_rescue` runs after: it writes FILE; when that fails late (disk full, the folder removed or
  made read-only during the run) it writes the results beside FILE (``FILE.rescued-<pid>.<suffix>``), else into
  the temporary folder, else as JSON on standard output; and returns the one line to print about it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from rnnsim import export, safe_text, tempfiles

__all__ = ["prepare", "write_or_rescue", "Rescue"]


def _reason(exc: OSError) -> str:
    return safe_text.one_line(exc.strerror or exc, 120)


def prepare(path: str | os.PathLike[str]) -> Path:
    """Check an output path before a run, including that its folder accepts the temporary file.

    Raises export.ExportError (one line, exit 2 in the CLI)."""
    shown = safe_text.clip(os.fspath(path), 120)
    if os.path.isdir(path):
        raise export.ExportError(f"{shown}: is a directory; give a file name such as {shown.rstrip('/')}/results.json")
    p = export.check_path(path)
    try:
        fd, tmp = tempfiles.make_temp(p)
    except OSError as exc:
        raise export.ExportError(f"{shown}: cannot write there: {_reason(exc)} (checked before the run)") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(tmp)
    if p.exists() and not os.access(p, os.W_OK) and not os.access(p.parent if str(p.parent) else ".", os.W_OK):
        raise export.ExportError(f"{shown}: cannot replace the existing file (checked before the run)")
    return p


class Rescue:
    """What :func:`write_or_rescue` did: ``path`` written (None: printed on stdout), ``note`` (None when FILE
    itself was written) and ``failed`` (True when FILE could not be written)."""

    def __init__(self, path: Path | None, note: str | None, failed: bool) -> None:
        self.path, self.note, self.failed = path, note, failed


def write_or_rescue(path: str | os.PathLike[str], result: dict[str, Any], stdout: Any = None) -> Rescue:
    """Write ``result`` to ``path``; on an OSError write it somewhere else and say where (never raises OSError)."""
    p = Path(path)
    try:
        return Rescue(export.write_results(p, result), None, False)
    except OSError as exc:
        first = exc
    shown = safe_text.clip(os.fspath(path), 120)
    suffix = p.suffix.lower() if p.suffix.lower() in export.SUFFIXES else ".json"
    stem = p.name[: -len(p.suffix)] if p.suffix else p.name
    name = f"{stem}.rescued-{os.getpid()}{suffix}"
    for folder in (p.parent if str(p.parent) else Path("."), Path(tempfile.gettempdir())):
        target = folder / name
        try:
            export.write_results(target, result)
        except (OSError, export.ExportError):
            continue
        note = f"cannot write {shown}: {_reason(first)}; the results are in {safe_text.clip(target, 160)}"
        return Rescue(target, note, True)
    out = stdout if stdout is not None else sys.stdout
    try:
        text = json.dumps(export.to_jsonable(result), allow_nan=False, ensure_ascii=False)
        out.write(text + "\n")
        out.flush()
    except (OSError, ValueError):
        return Rescue(None, f"cannot write {shown}: {_reason(first)}; nowhere else was writable either", True)
    return Rescue(None, f"cannot write {shown}: {_reason(first)}; the results (JSON) were printed on standard output", True)
