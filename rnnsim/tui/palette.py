"""The command palette (ctrl+p): every action of the app by its help text, plus Textual's theme switcher.

The entries come from one list of (key, action, description, help) rows: ``palette_entries(app)`` asks the app for
``app.palette_entries()`` when it has one (the action table), and otherwise builds the rows from the app's
``BINDINGS`` with the help text of its ``HELP_ROWS`` (the rows of the ``?`` screen, matched by key).

``ActionsProvider`` offers them (searching titles and help texts). Textual's own system commands stay (Theme, Keys, Maximize...) except its Screenshot and Quit, which the app's
actions replace (ctrl+s saves to the current folder, or downloads in a browser; q quits and stops the worker).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence

from textual.app import SystemCommand
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider

#: Textual's system commands that an rnnsim action replaces
REPLACED_SYSTEM_COMMANDS = ("Screenshot", "Quit")

_KEY_GLYPHS = {
    "space": "space", "right": "→", "left": "←", "plus": "+", "minus": "-", "equals_sign": "=", "comma": ",",
    "full_stop": ".", "less_than_sign": "<", "greater_than_sign": ">", "question_mark": "?",
    "left_square_bracket": "[", "right_square_bracket": "]",
}


@dataclass(frozen=True)
class PaletteEntry:
    key: str          # as shown to the user, e.g. "n/→"
    action: str       # a Textual action string on the app, e.g. "view('training')"
    description: str  # short name (the footer's)
    help: str         # one line: what it does


def _key_tokens(binding: Binding) -> set[str]:
    tokens = set()
    if binding.key_display:
        tokens.update(binding.key_display.split("/"))
    for key in binding.key.split(","):
        key = key.strip()
        tokens.add(key)
        tokens.add(_KEY_GLYPHS.get(key, key))
    return tokens


def entries_from_bindings(bindings: Sequence[Any], help_rows: Sequence[tuple[str, str]] = ()) -> list[PaletteEntry]:
    """One entry per binding (``Binding`` or a (key, action, description) tuple), its help text taken from the help
    row whose key column names one of the binding's keys (else the description)."""
    rows = [(set(keys.split()), text) for keys, text in help_rows]
    entries: list[PaletteEntry] = []
    for b in bindings:
        binding = b if isinstance(b, Binding) else Binding(*b)
        tokens = _key_tokens(binding)
        help_text = next((text for keys, text in rows if keys & tokens), binding.description)
        shown = binding.key_display or "/".join(_KEY_GLYPHS.get(k.strip(), k.strip()) for k in binding.key.split(","))
        entries.append(PaletteEntry(shown, binding.action, binding.description, help_text))
    return entries


def palette_entries(app: Any) -> list[PaletteEntry]:
    own = getattr(app, "palette_entries", None)
    if callable(own):
        return [e if isinstance(e, PaletteEntry) else PaletteEntry(*e) for e in own()]
    return entries_from_bindings(type(app).BINDINGS, getattr(app, "HELP_ROWS", ()))


def commands(app: Any, entries: Iterable[PaletteEntry]) -> Iterator[SystemCommand]:
    """Palette commands for ``entries``: title "description (key)", the help text below, running the action."""
    seen: set[str] = set()
    for e in entries:
        if e.action in seen:  # two bindings of one action (q and ctrl+q): one command
            continue
        seen.add(e.action)
        yield SystemCommand(f"{e.description} ({e.key})", e.help, functools.partial(app.run_action, e.action))


def system_commands(app: Any, screen: Any, base: Iterable[SystemCommand]) -> Iterator[SystemCommand]:
    """What ``App.get_system_commands`` yields: Textual's (Theme, Keys, ...) minus the ones an action replaces."""
    for command in base:
        if command.title not in REPLACED_SYSTEM_COMMANDS:
            yield command


class ActionsProvider(Provider):
    """The app's actions in the palette (add it to ``App.COMMANDS``). A query matches the title or the help text."""

    def _commands(self) -> list[SystemCommand]:
        return list(commands(self.app, palette_entries(self.app)))

    async def discover(self) -> Hits:
        for command in self._commands():
            yield DiscoveryHit(command.title, command.callback, help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in self._commands():
            score = max(matcher.match(command.title), 0.8 * matcher.match(command.help))
            if score > 0:
                yield Hit(score, matcher.highlight(command.title), command.callback, help=command.help)
