"""Lesson panel: the scenario's `[lesson]` steps, one at a time (j next, k back, L hides).

Below 120 columns it is a 4-line panel above the status line; a step longer than 4 lines is split into pages
(j shows the rest); from 120 columns it is a side panel that holds a whole step."""

from __future__ import annotations

import textwrap

from rich.text import Text
from textual.widgets import Static

NARROW_LINES = 3  # text lines of the bottom panel; its 4th line says j/k/L


def lesson_pages(steps: list[str], width: int, lines: int | None) -> list[tuple[int, int, int, list[str]]]:
    """Every step wrapped to `width` and cut into pages of `lines` lines (None: one page per step).
    Returns [(step index, page index, pages of that step, lines)] in reading order."""
    out = []
    for i, step in enumerate(steps):
        head = f"Lesson {i + 1}/{len(steps)} ▸ "
        wrapped = textwrap.wrap(head + step, max(width, 10)) or [head]
        n = lines if lines else len(wrapped)
        pages = [wrapped[a : a + n] for a in range(0, len(wrapped), n)]
        for p, page in enumerate(pages):
            out.append((i, p, len(pages), page))
    return out


class LessonPanel(Static):
    DEFAULT_CSS = """
    LessonPanel { background: $boost; color: $text; padding: 0 1; }
    LessonPanel.bottom { height: 4; border-top: none; }
    LessonPanel.side { width: 40; height: 1fr; border-left: tall $accent; }
    """

    def show(self, steps: list[str], position: int, width: int, lines: int | None) -> int:
        """Draw page `position` of the flattened pages; returns the number of pages (for j/k bounds)."""
        pages = lesson_pages(steps, width, lines)
        if not pages:
            self.update("")
            return 0
        position = min(max(position, 0), len(pages) - 1)
        step, page, npages, text_lines = pages[position]
        t = Text(no_wrap=True, overflow="ellipsis")
        body = "\n".join(text_lines)
        head_len = len(f"Lesson {step + 1}/{len(steps)} ▸ ") if page == 0 else 0
        t.append(body[:head_len], style="bold")
        t.append(body[head_len:])
        if lines is not None:
            t.append("\n" * (lines - len(text_lines) + 1))
        else:
            t.append("\n\n")
        nav = f"page {page + 1}/{npages} · j: more" if page + 1 < npages else (
            "j: next step" if step + 1 < len(steps) else "last step · ?: measured notes")
        t.append(f"{nav} · k: back · L: hide", style="dim italic")
        self.update(t)
        return len(pages)
