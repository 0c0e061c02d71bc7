"""BLAS dispatch: which BLAS runs a product, on how many threads.

- ``gemm``: a whole-sequence product (over all T·B rows): NumPy's multi-threaded BLAS from MT_GEMM_FLOPS on,
  else SciPy's from Numba on one thread (``small_gemms`` says whether every product of a kind stays below it).
- ``step_dot``: a per-step product inside a Numba time loop: plain loops for tiny ones, else SciPy's BLAS.
- ``step_gemm_in_numpy``: whether the per-step products go to NumPy's BLAS from a Python loop instead
  (STEP_GEMM_FLOPS), run under ``numpy_blas_one_thread``.
- the BLAS that the jitted time loop calls runs on one thread (set when numba loads, ``_single_threaded_step_blas``).
Thresholds: rnnsim/kernels/config.py.
"""

from __future__ import annotations

import contextlib
import os
import sys

import numpy as np

from rnnsim.kernels import config
from rnnsim.kernels.config import SMALL_STEP_KN, SMALL_STEP_ROWS
from rnnsim.kernels.loader import jit, on_load

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



@on_load
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


@jit
def _dot(a, b, out):
    np.dot(a, b, out)


def gemm(a, b, out, threads=True):
    """out = a @ b for 2-D a (C or F order: a transposed view is fine), b and C-contiguous out; threads by size,
    one thread when ``threads`` is False (packed plans: rnnsim/kernels/team.py)."""
    if threads and 2.0 * a.shape[0] * a.shape[1] * b.shape[1] >= config.MT_GEMM_FLOPS:
        np.matmul(a, b, out=out)
    else:
        _dot(a, b, out)


def small_gemms(rows, GH, *widths) -> bool:
    """Whether the whole-sequence products over ``rows`` = T·B rows, G·H columns and each of ``widths`` all stay
    below config.MT_GEMM_FLOPS (then ``gemm`` would run each in Numba, and one Numba call can do all of them)."""
    return 2.0 * rows * GH * max(widths) < config.MT_GEMM_FLOPS



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


def step_gemm_in_numpy(B, K, N) -> bool:
    """Whether the per-step product (B×K by K×N) goes to NumPy's BLAS from a Python loop."""
    return 2.0 * B * K * N >= config.STEP_GEMM_FLOPS


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

