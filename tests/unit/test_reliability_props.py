"""Property tests (issue 15): any --set string and any dict of scenario values either loads as a Scenario that
round-trips through TOML, or raises ScenarioError with a safe one-line message; never another exception."""

from __future__ import annotations

import tomllib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnsim import safe_text
from rnnsim.scenario import Scenario, ScenarioError, parse_override

KEYS = [
    "scenario.name", "scenario.seed", "scenario.description", "model.cell", "model.hidden_size", "model.activation",
    "model.layernorm", "model.init", "model.recurrent_scale", "model.forget_bias", "model.readout", "model.dtype",
    "task.kind", "task.length", "task.batch_size", "task.symbols", "task.alphabet", "task.delay",
    "training.optimizer", "training.learning_rate", "training.clip", "training.clip_threshold",
    "training.iterations", "lesson.steps", "scenario.locked", "model.bogus", "bogus.key", "model", "a.b.c",
]
TOML_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=30)
    | st.sampled_from(["rnn", "lstm", "gru", "attention", "none", "norm", "adam", "copy", "float32"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def _check_error(exc: ScenarioError) -> None:
    text = str(exc)
    assert "\n" not in text and len(text) <= safe_text.MAX_LINE + 80  # the "(+N more...)" hint may follow
    assert not safe_text.has_control(text)


def _round_trip(sc: Scenario) -> None:
    assert Scenario.from_dict(tomllib.loads(sc.to_toml())) == sc


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=80) | st.builds(lambda k, v: f"{k}={v}", st.sampled_from(KEYS), st.text(max_size=40)))
def test_any_set_string_loads_or_raises_scenario_error(text):
    try:
        key, value = parse_override(text)
        sc = Scenario().with_changes({key: value})
    except ScenarioError as exc:
        _check_error(exc)
        return
    _round_trip(sc)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(KEYS), TOML_VALUES, max_size=6))
def test_any_dict_of_values_loads_or_raises_scenario_error(changes):
    try:
        sc = Scenario().with_changes(changes)
    except ScenarioError as exc:
        _check_error(exc)
        return
    _round_trip(sc)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=12), st.dictionaries(st.text(max_size=12), TOML_VALUES, max_size=3), max_size=4))
def test_any_nested_table_loads_or_raises_scenario_error(data):
    try:
        sc = Scenario.from_dict(data, source="x.toml")
    except ScenarioError as exc:
        _check_error(exc)
        return
    _round_trip(sc)
