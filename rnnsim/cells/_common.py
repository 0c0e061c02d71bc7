"""Pieces shared by the cell kernels: the jit decorator, scalar activations, the workspace.

Layout (time-major, like cuDNN): every per-step array is (T, B, width) and C-contiguous, so the slice for one time
step is a contiguous (B, width) block that BLAS can read and write in place. The Simulation exposes (B, T, ...)
views of these arrays, which is what DESIGN.md §2 promises.

Work split (the same for every cell):
- before the time loop, one GEMM computes the input projection of the whole sequence, x_t W_ih^T + b_ih;
- the time loop (``forward_step``/``backward_step``, Numba) does only what is sequential: the recurrent product
  h_{t-1} W_hh^T (forward) or da_t W_hh (backward) and the elementwise gate maths, into preallocated arrays;
- after the time loop, one GEMM each gives dW_ih, dW_hh and dL/dx_t for all steps at once.
At large sizes two things change (see CACHE_LIMIT and STEP_GEMM_FLOPS below): the whole-sequence arrays above
become per-chunk buffers (chunked mode), and the per-step product moves to NumPy's BLAS from a Python loop, where the
LSTM in cached mode also folds the input projection into it (fused-input mode, see fused_input).
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading

import numpy as np

import rnnsim._numba_env  # noqa: F401  (sets NUMBA_CACHE_DIR before numba compiles anything)

# --------------------------------------------------------------------------------------- lazy Numba kernels
# Importing numba (with llvmlite and the SciPy BLAS that np.dot calls) takes ~0.8 s, longer than everything else a
# Simulation needs before its first step. So ``@jit`` does not import numba: it records the function, and the
# first call of any kernel (or ``load_kernels()``) imports numba once, makes every recorded function a dispatcher
# (``njit(cache=True, nogil=True, error_model="numpy")``) and rebinds the kernel names in rnnsim's modules to the
# dispatchers, so later calls cost what a plain dispatcher call costs. The TUI draws a Simulation's first frame
# before that and loads or compiles the kernels in the background.

#: error_model="numpy": a float division by zero gives inf/NaN (which the sentinel reports) instead of raising, and
#: without the zero check on every division LLVM can vectorise the gate loops (measured: 12 → 1.6 ns per exp).
KERNEL_OPTIONS = dict(cache=True, nogil=True, error_model="numpy")

_lazy: list["LazyKernel"] = []
_numba_jit = None  # numba.njit(**KERNEL_OPTIONS) once the kernels are loaded
_load_lock = threading.RLock()


class LazyKernel:
    """A kernel whose Numba dispatcher is made on first use (see ``load_kernels``)."""

    def __init__(self, fn):
        self.py_func = fn
        self.dispatcher = None
        functools.update_wrapper(self, fn)

    def __call__(self, *args):
        if self.dispatcher is None:
            load_kernels()
        return self.dispatcher(*args)

    def __repr__(self) -> str:
        state = "loaded" if self.dispatcher is not None else "not loaded"
        return f"<kernel {self.__module__}.{self.__qualname__} ({state})>"


def jit(fn):
    """The kernels' decorator: numba.njit(cache=True, nogil=True, error_model="numpy"), made on first use."""
    if _numba_jit is not None:
        return _numba_jit(fn)
    kernel = LazyKernel(fn)
    _lazy.append(kernel)
    return kernel


def kernels_loaded() -> bool:
    """Whether numba is imported and the kernels are dispatchers (their machine code loads per signature, on the
    first call with those argument types: from the on-disk cache, or compiled)."""
    return _numba_jit is not None


def load_kernels() -> None:
    """Import numba and turn every ``@jit`` function into its dispatcher (idempotent, thread-safe)."""
    global _numba_jit
    if _numba_jit is not None:
        return
    with _load_lock:
        if _numba_jit is not None:
            return
        import numba
        from numba.core.typing.typeof import typeof_impl

        numba.config.CACHE_DIR = kernel_cache_dir(numba.config.CACHE_DIR or os.environ.get("NUMBA_CACHE_DIR", ""),
                                                  _kernel_sources())

        _define_intrinsics()
        _single_threaded_step_blas()
        made = numba.njit(**KERNEL_OPTIONS)
        for kernel in _lazy:
            kernel.dispatcher = made(kernel.py_func)
        # numba types a LazyKernel found among a kernel's globals (a module outside rnnsim that imported one) as
        # its dispatcher
        typeof_impl.register(LazyKernel)(lambda val, c: typeof_impl(val.dispatcher, c))
        for name, module in list(sys.modules.items()):
            if name == "rnnsim" or name.startswith("rnnsim."):
                for attr, value in list(vars(module).items()):
                    if isinstance(value, LazyKernel):
                        setattr(module, attr, value.dispatcher)
        _numba_jit = made


def _load_scipy_blas() -> None:
    """Load ``scipy.linalg.cython_blas``, the module through which numba's np.dot calls SciPy's BLAS.

    ``import scipy.linalg.cython_blas`` first runs ``scipy/linalg/__init__.py``, which imports SciPy's array-API
    layer, numpy.testing and unittest: ~0.3 s, a fifth of `rnnsim run vanishing`. numba needs only the extension
    module (its ``__pyx_capi__`` table of BLAS function pointers), so it is loaded from its file on its own (~20 ms);
    if that fails for any reason (another SciPy layout), the plain import runs.
    """
    import importlib.machinery
    import importlib.util

    name = "scipy.linalg.cython_blas"
    if name in sys.modules:
        return
    try:
        import scipy

        folder = os.path.join(os.path.dirname(scipy.__file__), "linalg")
        path = next(os.path.join(folder, "cython_blas" + suffix) for suffix in importlib.machinery.EXTENSION_SUFFIXES
                    if os.path.exists(os.path.join(folder, "cython_blas" + suffix)))
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        if not getattr(module, "__pyx_capi__", None):
            raise ImportError("no __pyx_capi__")
    except Exception:  # noqa: BLE001 - any failure: the documented way
        sys.modules.pop(name, None)
        import scipy.linalg.cython_blas  # noqa: F401


def _kernel_sources() -> list[str]:
    """rnnsim's files that define kernels (this one included: its activations are inlined into every caller).
    Kernels defined elsewhere (tests) keep numba's own per-file keys."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    files = {os.path.abspath(__file__)}
    for kernel in _lazy:
        path = getattr(sys.modules.get(kernel.__module__), "__file__", None)
        if path and os.path.abspath(path).startswith(package + os.sep):
            files.add(os.path.abspath(path))
    return sorted(files)


def kernel_cache_dir(base: str, sources: list[str]) -> str:
    """``base``/<hash of the kernels' sources>: numba keys a cached kernel on its own file only, so a kernel whose
    callee (an activation here, say) changed in another file would load stale machine code; one folder per version
    of the sources cannot. Without a base (no NUMBA_CACHE_DIR) numba's default place is kept."""
    if not base:
        return base
    import hashlib

    digest = hashlib.sha1()
    for path in sources:
        try:
            with open(path, "rb") as f:
                digest.update(f.read())
        except OSError:
            digest.update(path.encode())
    return os.path.join(base, "src-" + digest.hexdigest()[:12])


def _single_threaded_step_blas() -> None:
    """Run the BLAS that the jitted time loop calls (SciPy's, through numba's np.dot) on one thread.

    The per-step products are small (B×H by H×G·H); a multi-threaded BLAS spins up threads for each of them, and
    when the other core is busy (the TUI's own thread, a shared lab machine) each call waits for a descheduled
    thread: measured here 2.4 ms instead of 22 µs per step for an RNN at H = 16, B = 32. NumPy's own BLAS, used
    for the whole-sequence products outside the time loop, keeps its threads.
    """
    try:
        _load_scipy_blas()
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return
    for lib in ThreadpoolController().lib_controllers:
        folder = os.path.basename(os.path.dirname(lib.filepath or ""))
        if lib.user_api == "blas" and folder.startswith("scipy"):
            lib.set_num_threads(1)


LN_EPS = 1e-5


# -------------------------------------------------------------------------------- branch-free activations
# libm's exp and tanh are scalar calls that stop LLVM from vectorising the gate loops (numba's SVML path needs Intel's
# icc_rt). These are the Cephes algorithms written without branches (selects only), so a loop over j runs 4 doubles
# (or 8 floats) per instruction with AVX2: ~1.6 ns per exp and ~2.6 ns per tanh here against 5-30 ns for
# math.exp/math.tanh. ``exp``, ``sigmoid`` and ``tanh`` take the argument's precision: float32 arguments use
# float32 versions (Cephes expf/tanhf, float32 constants), so a float32 loop is not widened to float64 (which halves
# the lanes and adds conversions); everything else runs the float64 versions.
# Accuracy: within 2 ulp of NumPy's exp, tanh and the logistic function over the whole range, in each precision
# (tests/unit/test_vmath.py). NaN propagates (the clamps keep NaN), ±inf saturate.


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


class Workspace:
    """Preallocated arrays for one forward and backward pass of a cell (attribute bag, time-major)."""

    fused = False   #: the fused-input mode (see fused_input); set by fused_input_buffers

    def __init__(self, **arrays):
        self.__dict__.update(arrays)

    def nbytes(self) -> int:
        """Bytes held, each array counted once (some names alias the same memory)."""
        arrays = {id(a): a for a in self.__dict__.values() if isinstance(a, np.ndarray)}
        return sum(a.nbytes for a in arrays.values())


#: Whole-sequence products (over all T·B rows) of at least this many FLOPs use NumPy's multi-threaded BLAS; smaller
#: ones call SciPy's BLAS from Numba on one thread. A multi-threaded BLAS wakes its threads for every call: on a
#: 2-core machine whose other core is busy, a 3200×16 by 16×16 product then took up to 60 ms instead of 70 µs.
#: Above 200 MFLOP (≥ 5 ms of one core's work) a second core, when free, pays for the wake-up.
MT_GEMM_FLOPS = 2e8


@jit
def _dot(a, b, out):
    np.dot(a, b, out)


def gemm(a, b, out):
    """out = a @ b for 2-D a (C or F order: a transposed view is fine), b and C-contiguous out; threads by size."""
    if 2.0 * a.shape[0] * a.shape[1] * b.shape[1] >= MT_GEMM_FLOPS:
        np.matmul(a, b, out=out)
    else:
        _dot(a, b, out)


def small_gemms(rows, GH, *widths) -> bool:
    """Whether the whole-sequence products over ``rows`` = T·B rows, G·H columns and each of ``widths`` all stay
    below MT_GEMM_FLOPS (then ``gemm`` would run each in Numba, and one Numba call can do all of them)."""
    return 2.0 * rows * GH * max(widths) < MT_GEMM_FLOPS


@jit
def _weight_grads_small(gi2, gh2, X2, H2, h0, W_ih, gW_ih, gW_hh, gb_ih, gb_hh, dx2):
    """weight_grads in one Numba call, on the (T·B, ·) views (h0 is (B, H))."""
    B = h0.shape[0]
    TB = gi2.shape[0]
    np.dot(gi2.T, X2, gW_ih)
    if TB > B:
        np.dot(gh2[B:].T, H2[:TB - B], gW_hh)
    else:
        gW_hh[:] = 0.0
    if np.any(h0 != 0.0):
        for i in range(gW_hh.shape[0]):
            for j in range(gW_hh.shape[1]):
                s = 0.0
                for b in range(B):
                    s += gh2[b, i] * h0[b, j]
                gW_hh[i, j] += s
    gb_ih[:] = 0.0
    gb_hh[:] = 0.0
    for r in range(TB):
        for k in range(gb_ih.shape[0]):
            gb_ih[k] += gi2[r, k]
            gb_hh[k] += gh2[r, k]
    np.dot(gi2, W_ih, dx2)


def weight_grads(ws, X, h0, W_ih, grads, dgi, dgh):
    """dW_ih, dW_hh, db_ih, db_hh and dL/dx_t for all steps at once from the per-step gate gradients.

    ``dgi`` (T, B, G·H) is dL/d(x_t W_ih^T + b_ih) and ``dgh`` the same for h_{t-1} W_hh^T + b_hh (equal but for
    the GRU's n block). Computed once after the whole BPTT, as GEMMs over T·B rows (small ones: one Numba call).
    """
    T, B, GH = dgi.shape
    Hs = ws.h
    H = Hs.shape[2]
    D = X.shape[2]
    gi2 = dgi.reshape(T * B, GH)
    if small_gemms(T * B, GH, D, H):
        _weight_grads_small(gi2, dgh.reshape(T * B, GH), X.reshape(T * B, D), Hs.reshape(T * B, H), h0, W_ih,
                            grads["weight_ih"], grads["weight_hh"], grads["bias_ih"], grads["bias_hh"],
                            ws.dx.reshape(T * B, D))
        return
    gemm(gi2.T, X.reshape(T * B, D), grads["weight_ih"])
    # h_{t-1} for t = 0..T-1 is (h0, h_0, ..., h_{T-2})
    if T > 1:
        gemm(dgh[1:].reshape((T - 1) * B, GH).T, Hs[:-1].reshape((T - 1) * B, H), grads["weight_hh"])
    else:
        grads["weight_hh"][:] = 0.0
    if h0.any():
        grads["weight_hh"] += dgh[0].T @ h0
    bias_grads(gi2, None if dgh is dgi else dgh.reshape(T * B, GH), grads)
    gemm(gi2, W_ih, ws.dx.reshape(T * B, D))


def bias_grads(gi2, gh2, grads) -> None:
    """db_ih and db_hh: column sums of the (rows, G·H) gate gradients; ``gh2`` None when it equals ``gi2`` (LSTM,
    RNN: one pass over the rows instead of two)."""
    np.sum(gi2, axis=0, out=grads["bias_ih"])
    if gh2 is None:
        grads["bias_hh"][:] = grads["bias_ih"]
    else:
        np.sum(gh2, axis=0, out=grads["bias_hh"])


@jit
def transpose_into(out, a):
    """out = a^T in 32×32 tiles (np.copyto from a transposed view walks one side with a large stride: 2x slower for
    W_hh at H = 512, where it cost 5 ms per pass)."""
    n, m = a.shape
    for i0 in range(0, n, 32):
        for j0 in range(0, m, 32):
            for j in range(j0, min(j0 + 32, m)):
                for i in range(i0, min(i0 + 32, n)):
                    out[j, i] = a[i, j]


@jit
def _project_small(X2, W_ihT, b_ih, XW2, W_hh, W_hhT):
    """input_projection in one Numba call, on the (T·B, ·) views."""
    np.dot(X2, W_ihT, XW2)
    for r in range(XW2.shape[0]):
        for k in range(XW2.shape[1]):
            XW2[r, k] += b_ih[k]
    transpose_into(W_hhT, W_hh)


def input_projection(ws, X, params):
    """XW = x_t W_ih^T + b_ih for every step (one GEMM), and W_hh^T for the time loop."""
    T, B, D = X.shape
    XW2 = ws.XW.reshape(T * B, -1)
    if small_gemms(T * B, XW2.shape[1], D):
        _project_small(X.reshape(T * B, D), params["weight_ih"].T, params["bias_ih"], XW2, params["weight_hh"],
                       ws.W_hhT)
        return
    gemm(X.reshape(T * B, D), params["weight_ih"].T, XW2)
    ws.XW += params["bias_ih"]
    transpose_into(ws.W_hhT, params["weight_hh"])


def begin_forward(ws, X, params):
    """Start a pass (the same for every recurrent cell): the whole input projection in cached mode (or, in the
    fused-input mode, the buffers for its per-step GEMM); in chunked mode only W_hh^T, the projection then being made
    chunk by chunk."""
    ws.X = X
    ws.params = params
    if ws.fused:
        begin_fused_forward(ws, X, params)
    elif ws.K == 0:
        input_projection(ws, X, params)
    else:
        transpose_into(ws.W_hhT, params["weight_hh"])
        ws.fw_chunk = -1


# ------------------------------------------------------------------------------------- fused-input mode
# At the sizes whose per-step products go to NumPy's BLAS (STEP_GEMM_FLOPS, below) a cell in cached mode may fold the
# input projection into the per-step product: step t multiplies [h_{t-1}, x_t] (a row of ``hx``, (T, B, H + D)) by
# [W_hh^T; W_ih^T] (``W_cat``), K = H + D instead of H, which costs the same time within noise at H = 512, D = 16,
# where the separate whole-sequence projection (a thin 3200×16 by 16×2048 GEMM, then + b_ih) cost as much as 10% of
# a pass and its (T, B, G·H) result had to be written once and read back per step. After BPTT one GEMM over hx gives
# [dW_hh, dW_ih] (no thin GEMM for dW_ih either). b_ih enters the gates as ``xb``, b_ih in every row, where the
# cached mode's XW[t] entered. Only for cells whose dL/d(input projection) equals dL/d(recurrent product) (LSTM, RNN:
# not the GRU, whose n block differs); ``XW`` then is dL/da only.
def fused_input(K, B, D, H, G) -> bool:
    """Whether a cell runs in the fused-input mode (cached mode with NumPy's BLAS per step)."""
    return K == 0 and step_gemm_in_numpy(B, H + D, G * H)


def fused_input_buffers(ws, T, B, D, H, G, dtype) -> None:
    z = lambda *shape: np.zeros(shape, dtype=dtype)  # noqa: E731
    ws.__dict__.update(hx=z(T, B, H + D), W_cat=z(H + D, G * H), xb=z(B, G * H), dW_cat=z(G * H, H + D))
    ws.fused = True


def begin_fused_forward(ws, X, params) -> None:
    H = ws.h.shape[2]
    transpose_into(ws.W_cat[:H], params["weight_hh"])
    transpose_into(ws.W_cat[H:], params["weight_ih"])
    ws.xb[:] = params["bias_ih"]
    ws.hx[:, :, H:] = X


def fused_forward_range(t0, t1, ws, gates):
    """Steps [t0, t1) in the fused-input mode, from Python: h_{t-1} into its row of hx (copied at step t, so that
    step t reads ws.h[t − 1] as in the other modes), ``tmp`` = [h_{t-1}, x_t] W_cat, then ``gates(t)`` (the cell's
    gate kernel, with ``xb`` for its XW[t])."""
    H = ws.h.shape[2]
    with numpy_blas_one_thread():
        for t in range(t0, t1):
            ws.hx[t, :, :H] = ws.h[t - 1] if t > 0 else ws.h0
            np.matmul(ws.hx[t], ws.W_cat, out=ws.tmp)
            gates(t)


def fused_weight_grads(ws, params, grads, da) -> None:
    """weight_grads in the fused-input mode, from da (T, B, G·H) = dL/d(gate pre-activations)."""
    T, B, GH = da.shape
    H = ws.h.shape[2]
    da2 = da.reshape(T * B, GH)
    gemm(da2.T, ws.hx.reshape(T * B, -1), ws.dW_cat)
    grads["weight_hh"][:] = ws.dW_cat[:, :H]
    grads["weight_ih"][:] = ws.dW_cat[:, H:]
    bias_grads(da2, None, grads)
    gemm(da2, params["weight_ih"], ws.dx.reshape(T * B, -1))


def gate_block_means(ws, t_done, names, skip):
    """Mean activation per step of each gate block named in ``names`` (in weight order), except ``skip``."""
    H = ws.h.shape[2]
    if ws.K:
        return {name: ws.gate_mean[:t_done, k].copy() for k, name in enumerate(names) if name != skip}
    return {name: ws.gates[:t_done, :, k * H:(k + 1) * H].mean(axis=(1, 2))
            for k, name in enumerate(names) if name != skip}


# ------------------------------------------------------------------------------------------ chunked mode
#: When a cell's per-step caches (input projection, gates, ... kept for every step) would exceed this many bytes,
#: the cell runs in chunked mode: the input projection is computed per chunk of ``CHUNK_STEPS`` steps into a
#: (K, B, G·H) buffer, BPTT recomputes a chunk's gates from h_{t-1}, c_{t-1}, x_t (one extra forward step each,
#: into scratch) instead of reading a (T, B, G·H) cache, and dW_ih, dW_hh, db and dL/dx_t are accumulated per chunk
#: from a (K, B, G·H) buffer of dL/da. Memory then is the arrays the API keeps plus O(K·B·G·H). Below the limit
#: the caches are kept (full speed, no recompute). Both read at ``allocate`` time (tests monkeypatch them).
CACHE_LIMIT = 256 << 20
CHUNK_STEPS = 64


def chunk_steps(cache_bytes: int, T: int) -> int:
    """K, the steps per chunk, or 0 for the whole-sequence (cached) mode."""
    return 0 if cache_bytes <= CACHE_LIMIT else max(1, min(int(CHUNK_STEPS), T))


def chunk_buffers(ws, K, B, D, H, G, dtype) -> None:
    """The per-chunk input projection (reused as dL/da), and the weight-gradient accumulators."""
    z = lambda *shape: np.zeros(shape, dtype=dtype)  # noqa: E731
    ws.__dict__.update(XW=z(K, B, G * H), acc_ih=z(G * H, D), acc_hh=z(G * H, H), acc_bih=z(G * H),
                       acc_bhh=z(G * H), tmp_ih=z(G * H, D), tmp_hh=z(G * H, H), tmp_b=z(G * H))
    ws.K = K
    ws.fw_chunk = -1
    ws.bw_chunk = -1


def chunk_of(ws, t):
    """(lo, hi): the chunk holding step t."""
    lo = t // ws.K * ws.K
    return lo, min(lo + ws.K, ws.h.shape[0])


def prev_state(ws, arr, lo, init):
    """The state before step lo: arr[lo − 1], or the initial state at lo = 0."""
    return arr[lo - 1] if lo > 0 else init


def project_chunk(ws, lo, hi, params) -> None:
    """ws.XW[:hi − lo] = x_t W_ih^T + b_ih for t in [lo, hi)."""
    X = ws.X
    n, B, D = hi - lo, X.shape[1], X.shape[2]
    xw = ws.XW[:n].reshape(n * B, -1)
    gemm(X[lo:hi].reshape(n * B, D), params["weight_ih"].T, xw)
    xw += params["bias_ih"]


def begin_chunked_backward(ws) -> None:
    ws.bw_chunk = -1
    ws.fw_chunk = -1          # BPTT writes dL/da over ws.XW
    for a in (ws.acc_ih, ws.acc_hh, ws.acc_bih, ws.acc_bhh):
        a[:] = 0


def chunk_grads(ws, lo, hi, W_ih, dgi, dgh) -> None:
    """Add chunk [lo, hi)'s share of dW_ih, dW_hh, db_ih, db_hh; write its dL/dx_t. dgi, dgh: (≥ hi − lo, B, G·H)."""
    X, Hs = ws.X, ws.h
    n, B, D = hi - lo, X.shape[1], X.shape[2]
    H = Hs.shape[2]
    GH = dgi.shape[2]
    gi2 = dgi[:n].reshape(n * B, GH)
    gh2 = dgh[:n].reshape(n * B, GH)
    gemm(gi2.T, X[lo:hi].reshape(n * B, D), ws.tmp_ih)
    ws.acc_ih += ws.tmp_ih
    if lo > 0:
        gemm(gh2.T, Hs[lo - 1:hi - 1].reshape(n * B, H), ws.tmp_hh)
        ws.acc_hh += ws.tmp_hh
    else:
        if n > 1:
            gemm(gh2[B:].T, Hs[:n - 1].reshape((n - 1) * B, H), ws.tmp_hh)
            ws.acc_hh += ws.tmp_hh
        if ws.h0.any():
            ws.acc_hh += dgh[0].T @ ws.h0
    np.sum(gi2, axis=0, out=ws.tmp_b)
    ws.acc_bih += ws.tmp_b
    np.sum(gh2, axis=0, out=ws.tmp_b)
    ws.acc_bhh += ws.tmp_b
    gemm(gi2, W_ih, ws.dx[lo:hi].reshape(n * B, D))


def finish_chunked(ws, grads) -> None:
    grads["weight_ih"][:] = ws.acc_ih
    grads["weight_hh"][:] = ws.acc_hh
    grads["bias_ih"][:] = ws.acc_bih
    grads["bias_hh"][:] = ws.acc_bhh


def run_chunked_forward(ws, params, t0, t1, steps) -> None:
    """Forward steps [t0, t1) chunk by chunk: project the chunk's inputs when entering it, then
    ``steps(lo, hi, a, b)`` runs steps [a, b) of chunk [lo, hi) (absolute indices)."""
    t = t0
    while t < t1:
        lo, hi = chunk_of(ws, t)
        if ws.fw_chunk != lo:
            project_chunk(ws, lo, hi, params)
            ws.fw_chunk = lo
        e = min(t1, hi)
        steps(lo, hi, t, e)
        t = e


def run_chunked_backward(ws, params, t_hi, t_lo, recompute, steps, dgh) -> None:
    """BPTT steps t_hi down to t_lo chunk by chunk: ``recompute(lo, hi)`` when entering a chunk (from its top),
    ``steps(lo, hi, a, b)`` runs steps a down to b; once a chunk's step lo is done, its weight gradients are added
    and its dL/dx_t written. dL/da of the chunk is in ws.XW (dL/d(W_ih x + b_ih)); ``dgh`` the same for
    W_hh h + b_hh (ws.XW but for the GRU)."""
    t = t_hi
    while t >= t_lo:
        lo, hi = chunk_of(ws, t)
        if ws.bw_chunk != lo:
            recompute(lo, hi)
            ws.bw_chunk = lo
        e = max(t_lo, lo)
        steps(lo, hi, t, e)
        if e == lo:
            chunk_grads(ws, lo, hi, params["weight_ih"], ws.XW, dgh)
        t = e - 1


class StepCache:
    """Stands in for a (T, B, width) per-step cache that chunked mode does not keep: ``cache[t, ...]`` recomputes
    step t (from h_{t-1}, c_{t-1}, x_t and the current parameters) and indexes the (B, width) result."""

    def __init__(self, compute, shape):
        self._compute = compute
        self.shape = shape

    def __getitem__(self, key):
        if not isinstance(key, tuple):
            key = (key,)
        t = int(key[0])
        if t < 0:
            t += self.shape[0]
        if not 0 <= t < self.shape[0]:
            raise IndexError(f"step {key[0]} out of range for {self.shape[0]} steps")
        return self._compute(t)[key[1:]]


#: Per-step products with at most this many rows (B) and a right factor of at most SMALL_STEP_KN elements run as
#: plain loops in ``step_dot``: a BLAS call costs more than their arithmetic. Measured (RNN, T = 100, one core, µs
#: per forward / backward loop, BLAS → loops): H = 16, B = 1: 42 → 27 / 29 → 16; H = 64, B = 1: 116 → 101 / 94 → 76;
#: H = 16, B = 4: 85 → 59 / 67 → 38; H = 64, B = 4: 465 → 378 / 387 → 321; but B = 8 and H = 128 gain nothing and
#: B = 32 loses (H = 64: 2277 → 3387).
SMALL_STEP_ROWS = 4
SMALL_STEP_KN = 64 * 64


@jit
def step_dot(a, b, out):
    """out = a @ b for a per-step product (a, b, out C-contiguous): np.dot (BLAS), or loops for tiny ones (each row
    of ``out`` accumulated over the contiguous rows of b, which LLVM vectorises)."""
    if a.shape[0] > SMALL_STEP_ROWS or b.shape[0] * b.shape[1] > SMALL_STEP_KN:
        np.dot(a, b, out)
        return
    for i in range(a.shape[0]):
        o = out[i]
        o[:] = 0.0
        for k in range(a.shape[1]):
            aik = a[i, k]
            bk = b[k]
            for j in range(o.shape[0]):
                o[j] += aik * bk[j]


#: Per-step recurrent products (B×H by H×G·H, forward and backward) of at least this many FLOPs go to NumPy's BLAS
#: from a Python loop over steps (the gate maths stay in Numba): its OpenBLAS (0.3.31 here) runs these float32
#: shapes 1.4-1.5x faster than SciPy's (0.3.30, the one numba's np.dot calls) on one thread. The threshold was 3e7
#: (≥ 0.3 ms a step, against ~5 µs of Python per step); 4e6 (B = 32: LSTM H ≥ 128, GRU H ≥ 256, RNN H ≥ 256;
#: B = 1: none up to H = 512) measured 8-27% faster at float32 B = 32 for LSTM H = 128/256, GRU H = 256 and RNN
#: H = 256/512, float64 within noise; at 1e6 the B = 1, H = 512 LSTM and GRU were 7-13% slower. Smaller products
#: stay in the Numba loop.
#: Both run on one thread: with NumPy's threads per step, LSTM H = 512, B = 32 float32 took 3.0 ms per step in one
#: measurement and 29.7 ms (a stall: the other core busy) in the next, against 3.7 ms on one thread.
STEP_GEMM_FLOPS = 4e6


def step_gemm_in_numpy(B, K, N) -> bool:
    """Whether the per-step product (B×K by K×N) goes to NumPy's BLAS from a Python loop."""
    return 2.0 * B * K * N >= STEP_GEMM_FLOPS


_numpy_blas_libs = None


@contextlib.contextmanager
def numpy_blas_one_thread():
    """NumPy's BLAS on one thread for the duration (a direct openblas_set_num_threads; restored after)."""
    global _numpy_blas_libs
    if _numpy_blas_libs is None:
        try:
            from threadpoolctl import ThreadpoolController
            _numpy_blas_libs = [lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"
                                and not os.path.basename(os.path.dirname(lib.filepath or "")).startswith("scipy")]
        except ImportError:
            _numpy_blas_libs = []
    old = [lib.num_threads for lib in _numpy_blas_libs]
    for lib, n in zip(_numpy_blas_libs, old):
        if n != 1:
            lib.set_num_threads(1)
    try:
        yield
    finally:
        for lib, n in zip(_numpy_blas_libs, old):
            if n != 1:
                lib.set_num_threads(n)
