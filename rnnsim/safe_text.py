"""Safe echoes: every value a message repeats back (a key, a section, a file name, a string) goes through here.

A scenario file passed around a lab is untrusted text. Echoing it raw would let it rewrite the terminal
(``"\\u001b]0;pwned\\u0007"`` sets the window title, ``"\\u001b[2J"`` clears the screen) or fill the screen
(a 500 000-character key). So:

- :func:`escape` replaces every control character (C0, DEL, C1, and the invisible Unicode format characters
  that reorder or hide text: bidi overrides, zero-width, line/paragraph separators, BOM) by a visible escape
  such as ``\\x1b`` or ``\\u202e``. The result never contains a raw control character.
- :func:`clip` escapes and truncates a value to ``limit`` characters (``…`` marks the cut).
- :func:`one_line` collapses whitespace, escapes, and caps a whole message at :data:`MAX_LINE` characters,
  keeping its head (the file and key) and its tail (what is allowed).
- :func:`show` renders a value as the user would write it in TOML (strings quoted, ``true``/``false``,
  datetimes in ISO form), clipped.

Used by :class:`rnnsim.ScenarioError`, the CLI's error lines and the TUI (title, picker, messages). No imports
beyond the standard library.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any

__all__ = ["MAX_VALUE", "MAX_LINE", "escape", "clip", "one_line", "show", "has_control"]

MAX_VALUE = 60
"""Longest echo of one value (a key, a string, a file name) inside a message."""

MAX_LINE = 300
"""Longest one-line message."""

# C0 controls (tab and newline included: a message is one line), DEL, C1 controls, and format characters that
# hide or reorder text: soft hyphen, zero-width space/joiners and marks, LRE..RLO, line/paragraph separators,
# LRI..PDI, word joiner etc., BOM, interlinear annotation and the replacement-object characters.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}
_WS = re.compile(r"\s+")


def _replace(m: re.Match[str]) -> str:
    ch = m.group(0)
    named = _NAMED.get(ch)
    if named:
        return named
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def has_control(text: str, allow: str = "") -> bool:
    """Whether ``text`` holds a character :func:`escape` would replace (``allow``: characters to accept)."""
    return any(ch not in allow for ch in _CONTROL.findall(text))


def escape(text: Any) -> str:
    """``str(text)`` with every control or invisible format character replaced by a visible escape."""
    return _CONTROL.sub(_replace, str(text))


def _cut(text: str, limit: int) -> str:
    """Cut an escaped text to ``limit`` characters without splitting one of our escapes."""
    if len(text) <= limit:
        return text
    head = text[: max(limit - 1, 0)]
    back = head.rfind("\\", max(len(head) - 6, 0))  # a cut "\x1b" or "\u202e" would read as something else
    if back != -1:
        head = head[:back]
    return head + "…"


def clip(text: Any, limit: int = MAX_VALUE) -> str:
    """Escaped and truncated to ``limit`` characters (an ellipsis marks the cut)."""
    return _cut(escape(text), limit)


def one_line(text: Any, limit: int = MAX_LINE) -> str:
    """One safe line: whitespace runs collapsed to a space, controls escaped, at most ``limit`` characters.

    A message longer than ``limit`` keeps its first two thirds and its last third around `` … `` (the head
    names the file and key, the tail says what is allowed)."""
    flat = escape(_WS.sub(" ", str(text)).strip())
    if len(flat) <= limit:
        return flat
    tail_len = limit // 3
    head = _cut(flat[: limit - tail_len - 3], limit - tail_len - 3)
    tail = flat[-tail_len:]
    return f"{head.rstrip('…')} … {tail}"


def show(value: Any, limit: int = MAX_VALUE) -> str:
    """A value as the user would write it in TOML, safe and at most about ``limit`` characters."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = escape(value).replace("'", "\\'")
        return "'" + _cut(text, max(limit - 2, 4)) + "'"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if value is None:
        return "none"
    return clip(repr(value), limit)
