import numpy as np
import pytest

from rnnsim.scenario import Scenario

#: the cell configurations every numerical test runs over
CONFIGS = {
    "rnn-tanh": {"model.cell": "rnn", "model.activation": "tanh"},
    "rnn-relu": {"model.cell": "rnn", "model.activation": "relu"},
    "rnn-layernorm": {"model.cell": "rnn", "model.activation": "tanh", "model.layernorm": True},
    "lstm": {"model.cell": "lstm", "model.forget_bias": 1.0},
    "gru": {"model.cell": "gru"},
}


def small_scenario(**changes) -> Scenario:
    """A small scenario (T=7, B=3, H=5) with every per-step array non-trivial, plus dotted-key changes."""
    base = Scenario.from_dict({
        "scenario": {"name": "test", "seed": 3},
        "model": {"hidden_size": 5},
        "task": {"kind": "sine", "length": 7, "batch_size": 3, "period": 5.0},
    })
    return base.with_changes({k.replace("__", "."): v for k, v in changes.items()}) if changes else base


@pytest.fixture(params=sorted(CONFIGS))
def config(request):
    return request.param, CONFIGS[request.param]


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
