"""What the weights and data readers share: resolving a path against the scenario's folder, checking a file before
it is read, one-line errors, a small cache of what was read, and the message for a missing optional extra.

The readers are :mod:`rnnsim.weights` (``[model] weights``) and :mod:`rnnsim.datasets` (``[task] kind = "file" |
"series" | "digits"``). Their errors are :class:`DataFileError` (a ``ScenarioError``) with one line naming the file
and what is wrong; the scenario's validators turn them into ``ScenarioError`` lines prefixed with the scenario and
the key. Names that come from a file (tensor names, CSV headers) are shown with ``repr`` so no control character
reaches the terminal.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

from rnnsim.scenario import ScenarioError

__all__ = ["DataFileError", "resolve", "check_file", "cached", "need", "show"]


class DataFileError(ScenarioError):
    """A bad or missing weights/data file: a ScenarioError (so ``rnnsim`` exits 2 with the line) whose message is
    one line naming the key and the file."""


def show(text: Any) -> str:
    """A name or path from outside, quoted and with control characters escaped (``repr``), at most 80 chars."""
    text = str(text)
    if len(text) > 80:
        text = text[:77] + "..."
    return repr(text)


def resolve(value: str, base_dir: str | os.PathLike[str] | None) -> Path:
    """``value`` as a path: ``~`` expanded; a relative path is taken relative to ``base_dir`` (the scenario file's
    folder, or the package's scenarios for a built-in) or, without one, to the current folder."""
    p = Path(os.path.expanduser(value))
    if not p.is_absolute() and base_dir is not None:
        p = Path(base_dir) / p
    return p


def check_file(path: Path, key: str, value: str, suffixes: tuple[str, ...], limit: int) -> os.stat_result:
    """Refuse a missing file, a directory, an unknown suffix or a file over ``limit`` bytes. Returns its stat."""
    head = f"{key} = {show(value)}"
    if path.suffix.lower() not in suffixes:
        raise DataFileError(f"{head}: unknown file type {show(path.suffix or '(no suffix)')}; allowed: "
                            + ", ".join(suffixes))
    try:
        st = path.stat()
    except FileNotFoundError:
        raise DataFileError(f"{head}: no such file (looked for {show(os.fspath(path))}; a relative path is "
                            "relative to the scenario file's folder)") from None
    except OSError as exc:
        raise DataFileError(f"{head}: cannot read: {exc.strerror or exc}") from None
    if path.is_dir():
        raise DataFileError(f"{head}: is a directory, not a file")
    if st.st_size > limit:
        raise DataFileError(f"{head}: file too large ({st.st_size} bytes; the memory bound is {limit} bytes; "
                            "raise RNNSIM_MAX_BYTES to allow more)")
    return st


_CACHE: OrderedDict[tuple, Any] = OrderedDict()
_CACHE_SIZE = 6
_LOCK = threading.Lock()


def cached(key: tuple, make: Callable[[], Any]) -> Any:
    """``make()`` once per ``key`` (callers put the resolved path, its size and mtime in it, so an edited file is
    read again); the last few results are kept. Errors are not cached."""
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    value = make()
    with _LOCK:
        _CACHE[key] = value
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return value


def need(module: str, what: str, package: str | None = None):
    """Import an optional dependency of the ``data`` extra, or raise one line saying how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        name = package or module.split(".")[0]
        raise DataFileError(f"{what} needs the 'data' extra ({name} is not installed): "
                            "pip install 'rnnsim[data]'") from None
