"""The speed machinery, a wing of its own beside the cells' maths:

    config.py      every tunable threshold (the only place they are defined)
    loader.py      the lazy ``@jit`` (numba.njit(cache=True, nogil=True, error_model="numpy") made on first use)
    vmath.py       branch-free Cephes exp / sigmoid / tanh for the gate loops
    blas.py        which BLAS runs a product, on how many threads
    modes.py       the execution mode, chosen once per Simulation (Mode, Plan, choose), and the Workspace
    cached.py      cached mode: the whole-sequence input projection and weight gradients
    folded.py      projection-folded mode
    chunked.py     chunked mode
    steps.py       what every recurrent cell does the same way in each mode (ranges of steps, start, finish)
    small_pass.py  the single-call small pass (readout, loss, checks in one Numba call)
    checks.py      the sentinel's non-finite checks

See docs/architecture.md for the picture.
"""

from rnnsim.kernels import blas, vmath  # noqa: F401  (register their on_load hooks)
from rnnsim.kernels.loader import jit, kernels_loaded, load_kernels  # noqa: F401
