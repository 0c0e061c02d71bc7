"""The kernels' branch-free exp, sigmoid and tanh against NumPy over the whole range, NaN and ±inf included, in
float64 and in float32 (float32 arguments run the float32 versions)."""

import numpy as np
import pytest

from rnnsim.kernels.loader import jit
from rnnsim.kernels.vmath import exp, sigmoid, sigmoid_np, tanh

#: the largest |x| for which exp is not clamped, per dtype (the clamps keep e^x and 1/(1 + e^x) normal)
EXP_RANGE = {np.float64: 708.0, np.float32: 87.0}
#: below this |σ(x)| both the kernel and NumPy are "zero" (the kernel's clamp gives a tiny normal number instead)
TINY = {np.float64: 1e-300, np.float32: 1e-37}


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


def _values(dtype):
    rng = np.random.default_rng(0)
    parts = [rng.standard_normal(20000) * s for s in (1e-12, 1e-4, 0.1, 0.6, 1.0, 3.0, 30.0, 300.0)]
    parts.append(np.array([0.0, -0.0, 0.625, -0.625, 0.6249999999, 87.0, -87.0, 708.0, -708.0, 19.1, -19.1, 9.1, -9.1]))
    return np.concatenate(parts).astype(dtype)


@pytest.fixture(params=[np.float64, np.float32], ids=["float64", "float32"])
def dtype(request):
    return request.param


@pytest.mark.parametrize("kind,ref", [(0, np.exp), (1, sigmoid_np), (2, np.tanh)], ids=["exp", "sigmoid", "tanh"])
def test_within_a_few_ulp_of_numpy(kind, ref, dtype):
    x = _values(dtype)
    if kind == 0:
        x = x[np.abs(x) <= EXP_RANGE[dtype]]
    got = _apply(kind, x, np.empty_like(x))
    want = ref(x.astype(np.float64))                       # the exact value, to float64 precision
    tiny = np.abs(want) < TINY[dtype]
    rel = np.abs(got - want)[~tiny] / np.abs(want)[~tiny]
    assert rel.max() < 4 * np.finfo(dtype).eps
    assert np.abs(got - want)[tiny].max(initial=0.0) < TINY[dtype]
    if dtype == np.float32:                                # and NumPy's own float32 functions, in ulp
        want32 = ref(x)
        ulp = np.abs(got.astype(np.float64) - want32)[~tiny] / np.spacing(np.abs(want32[~tiny]))
        assert ulp.max() <= 4


def test_float32_arguments_compute_in_float32():
    """A float32 argument gives a float32 result (the float64 versions would give values no float32 can hold)."""
    for f in (exp, sigmoid, tanh):
        for v in (0.3, -1.7, 2.9):
            y = f(np.float32(v))
            assert np.float32(y) == y, f
        assert np.float64(f(0.3)) != np.float32(f(0.3)), f


def test_nan_propagates_and_inf_saturates(dtype):
    x = np.array([np.nan, np.inf, -np.inf], dtype=dtype)
    s = _apply(1, x, np.empty_like(x))
    t = _apply(2, x, np.empty_like(x))
    assert np.isnan(s[0]) and s[1] == 1.0 and 0.0 <= s[2] < TINY[dtype]
    assert np.isnan(t[0]) and t[1] == 1.0 and t[2] == -1.0
    assert np.isnan(_apply(0, x[:1], np.empty_like(x[:1]))[0])
    e = _apply(0, x[1:], np.empty_like(x[1:]))
    assert np.isfinite(e[0]) and e[0] > 1e37 and 0.0 < e[1] < TINY[dtype] * 1e10
