"""The command palette (ctrl+p): every action of the app by its help text, plus Textual's theme switcher.

The entries come from the one action table (rnnsim/tui/actions.py), which also makes the bindings, the footer and the
help screen.

``ActionsProvider`` offers them (searching titles and help texts). Textual's own system commands stay (Theme, Keys, Maximize...) except its Screenshot and Quit, which the app's
actions replace (ctrl+s saves to the current folder, or downloads in a browser; q quits and stops the worker).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from textual.app import SystemCommand
from textual.await_complete import AwaitComplete
from textual.command import CommandPalette, DiscoveryHit, Hit, Hits, Provider

from . import actions

#: Textual's system commands that an rnnsim action replaces
REPLACED_SYSTEM_COMMANDS = ("Screenshot", "Quit")

@dataclass(frozen=True)
class PaletteEntry:
    key: str          # as shown to the user, e.g. "n  →"
    action: str       # a Textual action string on the app, e.g. "view('training')"
    description: str  # short name (the footer's)
    help: str         # one line: what it does


def palette_entries(app: Any = None) -> list[PaletteEntry]:
    """One entry per action of the action table (rnnsim/tui/actions.py)."""
    return [PaletteEntry(keys, action, title, text) for title, text, action, keys in actions.palette()]


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


class SafeCommandPalette(CommandPalette):
    """Textual's command palette, closing once: Enter Enter (or Escape Escape) in one burst used to dismiss it twice
    and pop the main screen (``ScreenStackError``), as the app's own dialogs did (screens/safe_modal.py)."""

    _rnnsim_dismissed: bool = False

    def dismiss(self, result: Any = None) -> AwaitComplete:
        if self._rnnsim_dismissed or not self.is_active:
            return AwaitComplete.nothing()
        self._rnnsim_dismissed = True
        return super().dismiss(result)


def open_palette(app: Any) -> None:
    """What ctrl+p does (App.action_command_palette, with the palette that closes once)."""
    if app.use_command_palette and not CommandPalette.is_open(app):
        app.push_screen(SafeCommandPalette(id="--command-palette"))


def _guard_option_list_paging() -> None:
    """Work around a Textual race (8.2): page up/down in an OptionList that has options but is not laid out yet
    (the command palette right after ctrl+p, while its hits arrive) raises KeyError in ``_move_page``, which ends
    the app. Found by the key-storm test (tests/tui/test_reliability_keys.py). Paging then does nothing, as Textual
    already does for the same case in ``scroll_to_highlight``."""
    from textual.widgets import OptionList

    move_page = OptionList._move_page
    if getattr(move_page, "_rnnsim_guarded", False):
        return

    def guarded(self, direction):
        try:
            return move_page(self, direction)
        except KeyError:
            return None

    guarded._rnnsim_guarded = True
    OptionList._move_page = guarded


_guard_option_list_paging()
