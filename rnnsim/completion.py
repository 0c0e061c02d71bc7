"""Shell completion for ``rnnsim`` (click's own: bash, zsh, fish).

Turn it on with one line in the shell's start-up file (README, "Shell completion"):

    eval "$(_RNNSIM_COMPLETE=bash_source rnnsim)"            # ~/.bashrc
    eval "$(_RNNSIM_COMPLETE=zsh_source rnnsim)"             # ~/.zshrc
    _RNNSIM_COMPLETE=fish_source rnnsim | source             # ~/.config/fish/completions/rnnsim.fish

Subcommands and options come from click; a SCENARIO argument completes to the built-in scenario names and to
``.toml`` files (and folders, to walk into) below the current folder. Nothing here imports numba or Textual.
"""

from __future__ import annotations

import os
from typing import Any

import click
from click.shell_completion import CompletionItem

__all__ = ["complete_scenario", "complete_sweep", "scenario_items"]


def scenario_items(incomplete: str, sweeps: bool = False) -> list[CompletionItem]:
    """Built-in scenario (or sweep) names starting with ``incomplete``, then ``*.toml`` files and folders matching
    it."""
    items: list[CompletionItem] = []
    if os.sep not in incomplete and not incomplete.startswith("."):
        if sweeps:
            from rnnsim.sweep.spec import builtin_sweeps as builtins
        else:
            from rnnsim.scenario import builtin_scenarios as builtins
        for name in builtins():
            if name.startswith(incomplete):
                items.append(CompletionItem(name, help="built-in sweep" if sweeps else "built-in scenario"))
    folder, prefix = os.path.split(incomplete)
    try:
        entries = sorted(os.scandir(folder or "."), key=lambda e: e.name)
    except OSError:
        entries = []
    for entry in entries:
        if not entry.name.startswith(prefix) or (entry.name.startswith(".") and not prefix.startswith(".")):
            continue
        path = os.path.join(folder, entry.name) if folder else entry.name
        try:
            is_dir = entry.is_dir()
        except OSError:
            continue
        if is_dir:
            items.append(CompletionItem(path + os.sep, type="plain", help="folder"))
        elif entry.name.endswith(".toml"):
            items.append(CompletionItem(path, help="scenario file"))
    return items


def complete_scenario(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """``shell_complete`` callback for SCENARIO arguments."""
    return scenario_items(incomplete)


def complete_sweep(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """``shell_complete`` callback for SWEEP arguments: built-in sweeps and ``.toml`` files."""
    return scenario_items(incomplete, sweeps=True)


def group_items(group: click.Group, ctx: click.Context, incomplete: str) -> list[Any]:
    """What the first word completes to: the visible subcommands and the built-in scenarios (``rnnsim SCENARIO``
    opens the TUI)."""
    items = list(click.Group.shell_complete(group, ctx, incomplete))
    if not incomplete.startswith("-"):
        names = {item.value for item in items}
        items.extend(i for i in scenario_items(incomplete) if i.value not in names)
    return items
