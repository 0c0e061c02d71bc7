"""Temporary files beside a target, named so that a leftover can be recognised and removed.

An atomic write (rnnsim/export.py) writes ``.NAME.<pid>.<random>.tmp`` in the target's folder, then renames it
over the target. A process killed with SIGKILL between the two leaves that file behind. :func:`clean_stale`,
called before every write of NAME, removes the leftovers of NAME whose process is gone (same host), or that are
older than :data:`STALE_SECONDS` (a folder shared between hosts; a name without a pid: older than a minute). Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from pathlib import Path

__all__ = ["STALE_SECONDS", "prefix_for", "make_temp", "clean_stale"]

STALE_SECONDS = 24 * 3600


def _folder(p: Path) -> Path:
    return p.parent if str(p.parent) else Path(".")


def prefix_for(p: Path) -> str:
    """The temporary-file prefix of target ``p`` for this process."""
    return f".{p.name}.{os.getpid()}."


def make_temp(p: Path) -> tuple[int, str]:
    """``tempfile.mkstemp`` beside ``p`` (fd, path); raises OSError when the folder is not writable."""
    return tempfile.mkstemp(prefix=prefix_for(p), suffix=".tmp", dir=_folder(p))


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process: leave its file alone
    return True


def clean_stale(p: Path) -> list[Path]:
    """Remove leftover temporaries of target ``p`` (dead writer, or older than STALE_SECONDS). Returns them."""
    pattern = re.compile(r"\." + re.escape(p.name) + r"\.(?:(\d+)\.)?[^/]*\.tmp")
    removed: list[Path] = []
    try:
        entries = list(os.scandir(_folder(p)))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        m = pattern.fullmatch(entry.name)
        if not m:
            continue
        with contextlib.suppress(OSError):
            if not entry.is_file(follow_symlinks=False):
                continue
            pid = int(m.group(1)) if m.group(1) else None
            age = now - entry.stat(follow_symlinks=False).st_mtime
            # a name without a pid (an older rnnsim): only once it is clearly not being written any more
            if age > (STALE_SECONDS if pid is not None else 60) or (pid is not None and not _alive(pid)):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed
