"""Every number of the golden set (tests/data/golden.npz, saved from the code before the redesign of issue 10; see
tests/unit/golden_cases.py for the cases) recomputed and compared exactly: float64 and float32 bit for bit, the
sentinels as the same strings."""

import numpy as np

from tests.unit.golden_cases import GOLDEN, compute_all


def test_golden_set_is_reproduced_bit_for_bit():
    saved = np.load(GOLDEN)
    now = compute_all()
    assert sorted(now) == sorted(saved.files)
    differ = []
    for k in saved.files:
        a, b = saved[k], now[k]
        same = a.dtype == b.dtype and a.shape == b.shape and (
            np.array_equal(a, b) if a.dtype.kind in "USb" else np.array_equal(a, b, equal_nan=True))
        if not same:
            differ.append(k)
    assert not differ, f"{len(differ)} of {len(saved.files)} arrays differ, e.g. {differ[:10]}"
