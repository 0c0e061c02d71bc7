"""The lessons as a course: the six problems of plain RNNs in order, each with the built-in scenario that shows it and
the ones that fix it (README's lesson table), and the measured notes of docs/lessons.md, which ship in the package
(the wheel holds them as rnnsim/lessons.md; a checkout reads docs/lessons.md) so the app can show them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    number: int
    title: str
    shows: tuple[str, ...]   #: scenarios that show the problem
    fixes: tuple[str, ...]   #: scenarios that switch a fix on


#: README's table "problem | open | the fix to switch on", in the same order
PROBLEMS: tuple[Problem, ...] = (
    Problem(1, "vanishing gradients", ("vanishing",), ("vanishing-lstm", "vanishing-gru", "irnn", "layernorm")),
    Problem(2, "exploding gradients", ("exploding",), ("clip-norm", "clip-value")),
    Problem(3, "long-term dependencies: the adding problem", ("adding",), ("adding-lstm",)),
    Problem(3, "long-term dependencies: the copy task", ("copy",), ("copy-gru",)),
    Problem(4, "sequential computation", ("parallel",), ()),
    Problem(5, "fixed-size hidden state", ("bottleneck",), ()),
    Problem(6, "recency bias", ("recency",), ()),
    Problem(1, "vanishing gradients on real data", ("digits-pixel",), ()),
)


@dataclass(frozen=True)
class Entry:
    name: str
    label: str   #: "1", "1 fix", "2", ... ; "" for a built-in outside the course
    problem: Problem | None


def course(names) -> list[Entry]:
    """The built-in scenario ``names`` in course order: each problem's scenarios, then its fixes, numbered by problem;
    names the course does not know come last, in the order given (alphabetical from builtin_scenarios)."""
    names = list(names)
    out, seen = [], set()
    for p in PROBLEMS:
        for role, group in (("", p.shows), (" fix", p.fixes)):
            for n in group:
                if n in names and n not in seen:
                    out.append(Entry(n, f"{p.number}{role}", p))
                    seen.add(n)
    out += [Entry(n, "", None) for n in names if n not in seen]
    return out


def problem_of(name: str) -> Problem | None:
    return next((p for p in PROBLEMS if name in p.shows or name in p.fixes), None)


def notes_path() -> Path | None:
    """The measured lesson notes: the packaged copy, else the checkout's docs/lessons.md."""
    from rnnsim.scenario import packaged_path

    return packaged_path("lessons.md", "docs/lessons.md")


def _sections(text: str) -> list[tuple[str, str]]:
    parts = re.split(r"(?m)^(?=## )", text)
    return [(p.splitlines()[0][3:].strip(), p.rstrip()) for p in parts if p.startswith("## ")]


_IMAGE = re.compile(r"(?m)^!\[.*$|^Screenshot: .*$")


def notes(name: str) -> str:
    """The measured notes (markdown) of the lesson ``name``: the sections of docs/lessons.md on its problem that name
    it (all of that problem's sections if none does), without the image lines; "" if there are none."""
    path = notes_path()
    p = problem_of(name)
    if path is None or p is None:
        return ""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return ""
    mine = [(h, b) for h, b in _sections(text) if f"(problem {p.number})" in h]
    named = [(h, b) for h, b in mine if f"`{name}`" in b]
    chosen = named or mine
    return "\n\n".join(re.sub(r"\n{3,}", "\n\n", _IMAGE.sub("", b)).strip() for _, b in chosen)
