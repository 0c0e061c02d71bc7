"""The kernels' branch-free exp, sigmoid and tanh against NumPy over the whole range, NaN and ±inf included."""

import numpy as np
import pytest

from rnnsim.cells._common import exp, jit, sigmoid, sigmoid_np, tanh


@jit
def _apply(kind, x, out):
    for i in range(x.size):
        if kind == 0:
            out[i] = exp(x[i])
        elif kind == 1:
            out[i] = sigmoid(x[i])
        else:
            out[i] = tanh(x[i])
    return out


def _values():
    rng = np.random.default_rng(0)
    parts = [rng.standard_normal(20000) * s for s in (1e-12, 1e-4, 0.1, 0.6, 1.0, 3.0, 30.0, 300.0)]
    parts.append(np.array([0.0, -0.0, 0.625, -0.625, 0.6249999999, 708.0, -708.0, 19.1, -19.1]))
    return np.concatenate(parts)


@pytest.mark.parametrize("kind,ref", [(0, np.exp), (1, sigmoid_np), (2, np.tanh)], ids=["exp", "sigmoid", "tanh"])
def test_within_a_few_ulp_of_numpy(kind, ref):
    x = _values()
    if kind == 0:
        x = x[np.abs(x) <= 708.0]
    got = _apply(kind, x, np.empty_like(x))
    want = ref(x)
    tiny = np.abs(want) < 1e-300                           # σ(x) for x < −708: both are ≈ 0
    rel = np.abs(got - want)[~tiny] / np.abs(want)[~tiny]
    assert rel.max() < 4 * np.finfo(float).eps
    assert np.abs(got - want)[tiny].max(initial=0.0) < 1e-300


def test_nan_propagates_and_inf_saturates():
    x = np.array([np.nan, np.inf, -np.inf])
    s = _apply(1, x, np.empty(3))
    t = _apply(2, x, np.empty(3))
    assert np.isnan(s[0]) and s[1] == 1.0 and 0.0 <= s[2] < 1e-300
    assert np.isnan(t[0]) and t[1] == 1.0 and t[2] == -1.0
    assert np.isnan(_apply(0, x[:1], np.empty(1))[0])
