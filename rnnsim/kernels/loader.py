"""The kernels' decorator: ``@jit`` is numba.njit(cache=True, nogil=True, error_model="numpy"), made on first use.

Importing numba (with llvmlite and the SciPy BLAS that np.dot calls) takes ~0.8 s, longer than everything else a
Simulation needs before its first step. So ``@jit`` does not import numba: it records the function, and the
first call of any kernel (or ``load_kernels()``) imports numba once, runs the hooks registered with ``on_load``
(the bit-cast intrinsics of rnnsim/kernels/vmath.py, one BLAS thread for the time loop), makes every recorded
function a dispatcher and rebinds the kernel names in rnnsim's modules to the dispatchers, so later calls cost what
a plain dispatcher call costs. The TUI draws a Simulation's first frame before that and loads or compiles the
kernels in the background.
"""

from __future__ import annotations

import functools
import os
import sys
import threading

import rnnsim._numba_env  # noqa: F401  (sets NUMBA_CACHE_DIR before numba compiles anything)

#: error_model="numpy": a float division by zero gives inf/NaN (which the sentinel reports) instead of raising, and
#: without the zero check on every division LLVM can vectorise the gate loops (measured: 12 → 1.6 ns per exp).
KERNEL_OPTIONS = dict(cache=True, nogil=True, error_model="numpy")

_lazy: list["LazyKernel"] = []
_numba_jit = None  # numba.njit(**KERNEL_OPTIONS) once the kernels are loaded
_load_lock = threading.RLock()
_hooks: list = []


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


def on_load(fn):
    """Run ``fn()`` when numba is imported, before the dispatchers are made (a decorator)."""
    _hooks.append(fn)
    return fn


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

        for hook in _hooks:
            hook()
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



def _kernel_sources() -> list[str]:
    """rnnsim's files that define kernels, and config.py (the compile-time constants of step_dot). Kernels defined
    elsewhere (tests) keep numba's own per-file keys."""
    here = os.path.dirname(os.path.abspath(__file__))
    package = os.path.dirname(here)
    files = {os.path.join(here, "config.py")}
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

