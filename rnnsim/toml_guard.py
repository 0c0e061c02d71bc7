"""Bound the work of parsing a TOML file before :mod:`tomllib` sees it.

tomllib is fine on ordinary files but not on hostile small ones: a ``[a.a.….a]`` header filling 1 MiB ran for
more than 400 s, a 100 KB dotted key for 20 s (the cost grows with the square of the number of parts), and 500
nested ``[`` or ``{b = `` raise RecursionError. :func:`precheck` scans the text once, in linear time, and
refuses before parsing:

- a line longer than :data:`MAX_LINE_CHARS` characters;
- a key or table header longer than :data:`MAX_KEY_CHARS` characters;
- a dotted key or header of more than :data:`MAX_KEY_PARTS` parts;
- arrays and inline tables nested more than :data:`MAX_NESTING` deep.

Strings (basic, literal, multi-line) and comments are skipped, so brackets, dots and ``=`` inside them do not
count. The limits are far above anything a scenario, sweep or data file needs (their keys have 2 or 3 parts).
:func:`loads` is ``precheck`` then ``tomllib.loads``, with a RecursionError (should one still happen) turned
into the same one-line :class:`TomlLimitError`. Standard library only.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

__all__ = ["MAX_LINE_CHARS", "MAX_KEY_CHARS", "MAX_KEY_PARTS", "MAX_NESTING", "TomlLimitError", "precheck", "loads"]

MAX_LINE_CHARS = 20_000
MAX_KEY_CHARS = 256
MAX_KEY_PARTS = 16
MAX_NESTING = 32


class TomlLimitError(ValueError):
    """The text is beyond a parser limit; ``str(err)`` is one line such as ``line 3: a key of 40001 parts ...``."""


_SPECIAL = re.compile(r"[\"'#\[\]{}=,.\n]")
_BASIC = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_LITERAL = re.compile(r"'[^'\n]*'")
_ML_BASIC = re.compile(r'"""(?:[^"\\]|\\[\s\S]|"(?!""))*"""(?:"{0,2})')
_ML_LITERAL = re.compile(r"'''(?:[^']|'(?!''))*'''(?:'{0,2})")


def _string_end(text: str, j: int) -> int:
    """Index just past the string starting at ``text[j]`` (a quote), or -1 if it does not end (tomllib will
    then report it)."""
    quote = text[j]
    if text.startswith(quote * 3, j):
        m = (_ML_BASIC if quote == '"' else _ML_LITERAL).match(text, j)
    else:
        m = (_BASIC if quote == '"' else _LITERAL).match(text, j)
    return m.end() if m else -1


def precheck(text: str) -> str | None:
    """The first limit ``text`` breaks, as ``"line N: ..."``; None when it is within every limit. Linear time."""
    line_no = 1
    for line in text.split("\n"):
        if len(line) > MAX_LINE_CHARS:
            return f"line {line_no}: a line of {len(line)} characters (at most {MAX_LINE_CHARS})"
        line_no += 1

    line_no = 1
    n = len(text)
    stack: list[str] = []  # open arrays "[" and inline tables "{" in a value
    key_mode = True  # reading a key (start of a line, or after "{" or "," in an inline table)
    header = False  # reading a [table] or [[array]] header
    line_start = True  # nothing but blanks since the start of the line
    key_start, parts = 0, 1

    def key_problem(end: int, what: str) -> str | None:
        if end - key_start > MAX_KEY_CHARS:
            return f"line {line_no}: a {what} of {end - key_start} characters (at most {MAX_KEY_CHARS})"
        return None

    i = 0
    while i < n:
        m = _SPECIAL.search(text, i)
        if m is None:
            break
        j = m.start()
        c = text[j]
        if line_start and text[i:j].strip():
            line_start = False
        i = j + 1
        if c == "\n":
            line_no += 1
            if header:
                header = False
            if not stack:
                key_mode, line_start, key_start, parts = True, True, j + 1, 1
            continue
        if c == "#":
            k = text.find("\n", j)
            i = n if k == -1 else k
            continue
        if c in "\"'":
            end = _string_end(text, j)
            if end == -1:
                return None  # an unterminated string: tomllib stops there with its own message
            line_no += text.count("\n", j, end)
            line_start = False
            i = end
            continue
        if key_mode or header:
            if c == ".":
                parts += 1
                if parts > MAX_KEY_PARTS:
                    return f"line {line_no}: a dotted key of more than {MAX_KEY_PARTS} parts (at most {MAX_KEY_PARTS})"
                line_start = False
                continue
            if header and c == "]":
                problem = key_problem(j, "table header")
                if problem:
                    return problem
                header = False
                key_mode = False
                if text.startswith("]", i):
                    i += 1
                continue
            if key_mode and c == "=":
                problem = key_problem(j, "key")
                if problem:
                    return problem
                key_mode = False
                continue
            if key_mode and c == "[" and line_start and not stack:
                header, key_mode, line_start = True, False, False
                if text.startswith("[", i):
                    i += 1
                key_start, parts = i, 1
                continue
            if key_mode and c == "}" and stack and stack[-1] == "{":  # {} or a trailing comma
                stack.pop()
                key_mode = False
                continue
            line_start = False
            continue
        # in a value
        if c in "[{":
            stack.append(c)
            if len(stack) > MAX_NESTING:
                return f"line {line_no}: arrays or inline tables nested more than {MAX_NESTING} deep (at most {MAX_NESTING})"
            if c == "{":
                key_mode, key_start, parts = True, i, 1
        elif c in "]}":
            if stack:
                stack.pop()
        elif c == "," and stack and stack[-1] == "{":
            key_mode, key_start, parts = True, i, 1
    return None


def loads(text: str) -> dict[str, Any]:
    """``tomllib.loads(text)`` after :func:`precheck`; raises TomlLimitError or tomllib.TOMLDecodeError."""
    problem = precheck(text)
    if problem:
        raise TomlLimitError(f"{problem}; refused before parsing")
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise TomlLimitError(f"nested too deeply to parse (at most {MAX_NESTING} levels)") from None
