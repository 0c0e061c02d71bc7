"""The action table (rnnsim/tui/actions.py) against README's key table, the app's bindings and the schema."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import pytest

from rnnsim.scenario import ModelSection, TrainingSection
from rnnsim.tui import actions, knobs
from rnnsim.tui.app import RnnsimApp

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_key_rows() -> list[tuple[str, ...]]:
    """The key cells of README's `| key | action |` table, each as the tuple of its `backticked` keys."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index("| key | action |")
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        first = line.split("|")[1]
        rows.append(tuple(re.findall(r"`([^`]+)`", first)))
    return rows


def test_readme_key_table_matches_the_action_table_both_ways():
    table = [tuple(keys.split()) for keys, _ in actions.help_rows()]
    readme = readme_key_rows()
    assert readme, "README has no key table"
    missing_in_readme = [k for k in table if k not in readme]
    missing_in_table = [k for k in readme if k not in table]
    assert not missing_in_readme, f"keys in the app but not in README: {missing_in_readme}"
    assert not missing_in_table, f"keys in README but not in the app: {missing_in_table}"
    assert readme == table  # and in the same order


def test_bindings_help_and_app_come_from_the_table():
    assert RnnsimApp.HELP_ROWS == actions.help_rows()
    bound = [(b.key, b.action, b.description, b.show) for b in RnnsimApp.BINDINGS]
    assert sorted(bound) == sorted((a.key, a.action, a.description, a.footer > 0) for a in actions.ACTIONS)
    # the footer shows exactly the actions with a footer position, in that order
    footer = [b.description for b in RnnsimApp.BINDINGS if b.show]
    assert footer == [a.description for a in sorted(actions.ACTIONS, key=lambda a: a.footer) if a.footer]
    for a in actions.ACTIONS:  # every action exists on the app (Textual would ignore a typo silently)
        name = a.action.split("(")[0]
        assert callable(getattr(RnnsimApp, f"action_{name}", None)), a.action
    for keys, text in actions.help_rows():
        assert keys.strip() and text.strip()


def test_palette_lists_every_action_once_with_its_help_text():
    entries = actions.palette()
    names = [e[2] for e in entries]
    assert len(names) == len(set(names)) == len({a.action for a in actions.ACTIONS})
    by_action = {e[2]: e for e in entries}
    assert by_action["quit"][3] == "q  ^q  ^c"
    assert by_action["clip"][1] == "clipping: none → norm → value"
    first = {}
    for a in actions.ACTIONS:  # an action with several keys (q, ctrl+q, ctrl+c) is one entry: its first key's text
        first.setdefault(a.action, a)
    for name, a in first.items():
        assert by_action[name][1] == a.help and by_action[name][0] == a.description


@pytest.mark.parametrize("key, section", [("model.cell", ModelSection), ("training.clip", TrainingSection),
                                          ("model.init", ModelSection), ("model.activation", ModelSection)])
def test_knob_cycles_are_the_schema_literals(small, key, section):
    values = get_args(section.model_fields[key.split(".")[1]].annotation)
    assert knobs.choices(key) == values and len(values) >= 2
    sc, seen = small, []
    for _ in values:  # pressing the key len(values) times visits every value once and comes back
        seen.append(knobs.knob_value(sc, key))
        sc = sc.with_changes({key: knobs.next_value(sc, key)})
    assert sorted(seen) == sorted(values) and knobs.knob_value(sc, key) == seen[0]
    help_text = dict((a.action, a.help) for a in actions.ACTIONS)
    action = {"model.cell": "cell", "training.clip": "clip", "model.init": "init", "model.activation": "activation"}
    assert all(str(v) in help_text[action[key]] for v in values)


def test_layernorm_flips_and_threshold_steps(small):
    assert knobs.choices("model.layernorm") == (False, True)
    on = small.with_changes({"model.layernorm": True})
    assert knobs.next_value(on, "model.layernorm") is False
    assert knobs.threshold_step(1.0, 1) == 2.0 and knobs.threshold_step(1.0, -1) == 0.5
    assert knobs.threshold_step(100.0, 1) == 100.0 and knobs.threshold_step(0.01, -1) == 0.01
    assert knobs.threshold_step(0.3, 1) == 0.5 and knobs.threshold_step(0.3, -1) == 0.2
    with pytest.raises(ValueError):
        knobs.choices("model.hidden_size")
