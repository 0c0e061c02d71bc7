"""Branch-free vector maths for the kernels: exp, sigmoid and tanh (Cephes), and the NumPy logistic function.

libm's exp and tanh are scalar calls that stop LLVM from vectorising the gate loops (numba's SVML path needs Intel's
icc_rt). These are the Cephes algorithms written without branches (selects only), so a loop over j runs 4 doubles
(or 8 floats) per instruction with AVX2: ~1.6 ns per exp and ~2.6 ns per tanh here against 5-30 ns for
math.exp/math.tanh. ``exp``, ``sigmoid`` and ``tanh`` take the argument's precision: float32 arguments use
float32 versions (Cephes expf/tanhf, float32 constants), so a float32 loop is not widened to float64 (which halves
the lanes and adds conversions); everything else runs the float64 versions.
Accuracy: within 2 ulp of NumPy's exp, tanh and the logistic function over the whole range, in each precision
(tests/unit/test_vmath.py). NaN propagates (the clamps keep NaN), ±inf saturate.
"""

from __future__ import annotations

import numpy as np

from rnnsim.kernels.loader import jit, on_load

@on_load
def _define_intrinsics() -> None:
    """The bit casts that exp uses (Numba intrinsics, so they are made when numba is imported)."""
    from llvmlite import ir
    from numba.core import types
    from numba.extending import intrinsic

    global _f64_bits, _bits_f64, _pow2_f32

    @intrinsic
    def _f64_bits(typingctx, x):
        """The IEEE-754 bits of a float64, as an int64 (a bitcast: no conversion)."""
        def codegen(context, builder, sig, args):
            return builder.bitcast(args[0], ir.IntType(64))
        return types.int64(types.float64), codegen

    @intrinsic
    def _bits_f64(typingctx, x):
        """The float64 whose IEEE-754 bits are the int64 ``x``."""
        def codegen(context, builder, sig, args):
            return builder.bitcast(args[0], ir.DoubleType())
        return types.float64(types.int64), codegen

    @intrinsic
    def _pow2_f32(typingctx, y):
        """2^k as a float32, for a float32 ``y`` = 1.5·2^23 + k (k in the low mantissa bits): the bits
        (bits(y) + 127) << 23 in int32 arithmetic (numba would widen int32 arithmetic to int64, halving the
        lanes)."""
        def codegen(context, builder, sig, args):
            i32 = ir.IntType(32)
            biased = builder.add(builder.bitcast(args[0], i32), ir.Constant(i32, 127))
            return builder.bitcast(builder.shl(biased, ir.Constant(i32, 23)), ir.FloatType())
        return types.float32(types.float32), codegen


_SHIFTER = 6755399441055744.0  # 1.5·2^52: adding it rounds to an integer, which then sits in the low mantissa bits
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93145751953125e-1   # ln 2 split so that k·_LN2_HI is exact (Cody & Waite)
_LN2_LO = 1.42860682030941723212e-6


@jit
def exp(x):
    """e^x, in float32 for a float32 x (see _exp_f32), else in float64 (_exp_f64)."""
    if isinstance(x, np.float32):   # resolved when numba compiles for x's type: no run-time branch
        return _exp_f32(x)
    return _exp_f64(x)


@jit
def sigmoid(x):
    """1 / (1 + e^−x), branch-free (exp is clamped, so no overflow; σ(−∞) ≈ 3e−308 in float64, 1.6e−38 in
    float32, instead of 0)."""
    if isinstance(x, np.float32):
        return _F32_ONE / (_F32_ONE + _exp_f32(-x))
    return 1.0 / (1.0 + _exp_f64(-x))


@jit
def tanh(x):
    """tanh x, in float32 for a float32 x (see _tanh_f32), else in float64 (_tanh_f64)."""
    if isinstance(x, np.float32):
        return _tanh_f32(x)
    return _tanh_f64(x)


@jit
def _exp_f64(x):
    """e^x for float64 (Cephes exp: x = k ln2 + r, |r| ≤ ln2/2, a Padé form for e^r, times 2^k from bits).
    Clamped to |x| ≤ 708, so e^x stays finite and normal (the callers saturate long before)."""
    x = 708.0 if x > 708.0 else x      # written so that NaN falls through both clamps
    x = -708.0 if x < -708.0 else x
    y = x * _LOG2E + _SHIFTER
    k = y - _SHIFTER                   # round(x / ln 2), as a float
    r = x - k * _LN2_HI
    r = r - k * _LN2_LO
    rr = r * r
    px = r * ((1.26177193074810590878e-4 * rr + 3.02994407707441961300e-2) * rr + 9.99999999999999999910e-1)
    qx = ((3.00198505138664455042e-6 * rr + 2.52448340349684104192e-3) * rr + 2.27265548208155028766e-1) * rr + 2.0
    er = 1.0 + 2.0 * px / (qx - px)
    # 2^k: y's bits are bits(1.5·2^52) + k, whose low 12 bits are k mod 4096 (those of 1.5·2^52 are zero); a left
    # shift by 52 keeps only those 12 bits, so (bits + 1023) << 52 puts exactly k + 1023 in the exponent field
    return er * _bits_f64((_f64_bits(y) + 1023) << 52)


@jit
def _tanh_f64(x):
    """tanh x: Cephes' rational form x + x³P(x²)/Q(x²) for |x| < 0.625, 1 − 2/(e^{2x} + 1) beyond; both computed,
    one selected (a select vectorises, a branch does not), one division."""
    z = x * x
    small = z < 0.390625
    e2 = _exp_f64(2.0 * x)
    p = ((-9.64399179425052238628e-1 * z - 9.92877231001918586564e1) * z - 1.61468768441708447952e3) * z * x
    q = ((z + 1.12811678491632931402e2) * z + 2.23548839060100448583e3) * z + 4.84406305325125486048e3
    f = (p if small else 2.0) / (q if small else e2 + 1.0)
    return x + f if small else 1.0 - f


# float32 constants: a Python float in float32 arithmetic would widen it to float64 (numba types literals as float64)
_F32 = np.float32
_F32_ZERO, _F32_ONE, _F32_TWO = _F32(0.0), _F32(1.0), _F32(2.0)
_F32_EXP_MAX, _F32_EXP_MIN = _F32(87.0), _F32(-87.0)
_F32_SHIFTER = _F32(12582912.0)   # 1.5·2^23
_F32_LOG2E = _F32(_LOG2E)
_F32_LN2_HI, _F32_LN2_LO = _F32(0.693359375), _F32(-2.12194440e-4)   # Cephes expf's split of ln 2
_F32_EXP_P = tuple(_F32(c) for c in (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2,
                                     1.6666665459e-1, 5.0000001201e-1))
_F32_TANH_P = tuple(_F32(c) for c in (-5.70498872745e-3, 2.06390887954e-2, -5.37397155531e-2, 1.33314422036e-1,
                                      -3.33332819422e-1))
_F32_TANH_SMALL = _F32(0.390625)   # 0.625²


@jit
def _exp_f32(x):
    """e^x for float32 (Cephes expf: x = k ln2 + r, a degree-6 polynomial for e^r, times 2^k from bits). Clamped to
    |x| ≤ 87, so that e^x and 1/(1 + e^x) stay finite and normal (no subnormal results: they are slow)."""
    x = _F32_EXP_MAX if x > _F32_EXP_MAX else x      # NaN falls through both clamps
    x = _F32_EXP_MIN if x < _F32_EXP_MIN else x
    y = x * _F32_LOG2E + _F32_SHIFTER
    k = y - _F32_SHIFTER
    r = x - k * _F32_LN2_HI                          # exact: k·0.693359375 has at most 16 significant bits
    r = r - k * _F32_LN2_LO
    p0, p1, p2, p3, p4, p5 = _F32_EXP_P
    er = (((((p0 * r + p1) * r + p2) * r + p3) * r + p4) * r + p5) * (r * r) + r + _F32_ONE
    return er * _pow2_f32(y)


@jit
def _tanh_f32(x):
    """tanh x for float32 (Cephes tanhf): x + x³P(x²) for |x| < 0.625, else ±(1 − 2/(e^{2|x|} + 1)) with the sign
    of x; both computed, one selected; one division."""
    z = x * x
    p0, p1, p2, p3, p4 = _F32_TANH_P
    small = (((p0 * z + p1) * z + p2) * z + p3) * z + p4
    small = small * z * x + x
    ax = abs(x)
    big = _F32_ONE - _F32_TWO / (_exp_f32(ax + ax) + _F32_ONE)
    big = big if x >= _F32_ZERO else -big            # NaN: −NaN, still NaN
    return small if z < _F32_TANH_SMALL else big


def sigmoid_np(x):
    """Plain NumPy logistic function, for the references (stable for large |x|)."""
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1.0 + e)
    return out

