"""The shared check of a refused file: load_scenario raises ScenarioError with one safe line naming every part."""

import pytest

from rnnsim import load_scenario
from rnnsim.scenario import ScenarioError


def refusal(path, *parts):
    with pytest.raises(ScenarioError) as info:
        load_scenario(str(path))
    msg = str(info.value)
    assert "\n" not in msg and "\x1b" not in msg
    for part in parts:
        assert part in msg, msg
    return msg
