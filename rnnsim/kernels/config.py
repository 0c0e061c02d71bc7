"""Every tunable threshold of rnnsim's speed machinery, in one module (as STUMPY's config.py).

The kernels and the mode choice read these names from here (``from rnnsim.kernels import config`` then
``config.NAME`` at the time of the decision), so a test or a benchmark can set them in one place:
``monkeypatch.setattr(config, "CACHE_LIMIT", -1)``. The execution mode of a Simulation is chosen from them once,
when it is built (rnnsim/kernels/modes.py); setting one later affects Simulations built later.

Two of them (SMALL_STEP_ROWS, SMALL_STEP_KN) are compile-time constants of the ``step_dot`` kernel: changing them
here changes the kernels' source hash (this file is part of it, see rnnsim/kernels/loader.py), so the cached machine
code is rebuilt.
"""

# ------------------------------------------------------------------------------------------------ memory modes
#: When a cell's per-step caches (input projection, gates, ... kept for every step) would exceed this many bytes,
#: the cell runs in chunked mode: the input projection is computed per chunk of ``CHUNK_STEPS`` steps into a
#: (K, B, G·H) buffer, BPTT recomputes a chunk's gates from h_{t-1}, c_{t-1}, x_t (one extra forward step each,
#: into scratch) instead of reading a (T, B, G·H) cache, and dW_ih, dW_hh, db and dL/dx_t are accumulated per chunk
#: from a (K, B, G·H) buffer of dL/da. Memory then is the arrays the API keeps plus O(K·B·G·H). Below the limit
#: the caches are kept (full speed, no recompute).
CACHE_LIMIT = 256 << 20
CHUNK_STEPS = 64

# ------------------------------------------------------------------------------------------ products per step
#: Per-step products with at most this many rows (B) and a right factor of at most SMALL_STEP_KN elements run as
#: plain loops in ``step_dot``: a BLAS call costs more than their arithmetic. Measured (RNN, T = 100, one core, µs
#: per forward / backward loop, BLAS → loops): H = 16, B = 1: 42 → 27 / 29 → 16; H = 64, B = 1: 116 → 101 / 94 → 76;
#: H = 16, B = 4: 85 → 59 / 67 → 38; H = 64, B = 4: 465 → 378 / 387 → 321; but B = 8 and H = 128 gain nothing and
#: B = 32 loses (H = 64: 2277 → 3387). Compile-time constants of step_dot.
SMALL_STEP_ROWS = 4
SMALL_STEP_KN = 64 * 64

#: Per-step recurrent products (B×H by H×G·H, forward and backward) of at least this many FLOPs go to NumPy's BLAS
#: from a Python loop over steps (the gate maths stay in Numba): its OpenBLAS (0.3.31 here) runs these float32
#: shapes 1.4-1.5x faster than SciPy's (0.3.30, the one numba's np.dot calls) on one thread. The threshold was 3e7
#: (≥ 0.3 ms a step, against ~5 µs of Python per step); 4e6 (B = 32: LSTM H ≥ 128, GRU H ≥ 256, RNN H ≥ 256;
#: B = 1: none up to H = 512) measured 8-27% faster at float32 B = 32 for LSTM H = 128/256, GRU H = 256 and RNN
#: H = 256/512, float64 within noise; at 1e6 the B = 1, H = 512 LSTM and GRU were 7-13% slower. Smaller products
#: stay in the Numba loop. A cached LSTM whose [h_{t-1}, x_t] product (B×(H+D) by (H+D)×4H) reaches it runs
#: projection-folded (see rnnsim/kernels/folded.py).
#: Both run on one thread: with NumPy's threads per step, LSTM H = 512, B = 32 float32 took 3.0 ms per step in one
#: measurement and 29.7 ms (a stall: the other core busy) in the next, against 3.7 ms on one thread.
STEP_GEMM_FLOPS = 4e6

#: float32 cells with H ≥ PACKED_MIN_H (a multiple of 32), B ≥ PACKED_MIN_ROWS and a per-step product B×H by
#: H×G·H of at least PACKED_MIN_FLOPS, on a CPU with AVX-512F, run their per-step products against W_hh packed
#: once per pass (rnnsim/kernels/packed.py) inside the Numba time loop, instead of either BLAS path above.
#: Measured (one core, µs per product, packed against OpenBLAS through numba): B = 32, K = 64, N = 256: 10.3 against
#: 9.4 (OpenBLAS's small-matrix path wins); K = 128, N = 512: 38.5 against 61.4; K = 256: 39.3 against 68.9. Whole
#: passes (T = 100, float32, packed / BLAS path): B = 1 0.83-1.02x (every cell, H 128 to 512: not packed), B = 8,
#: H = 128 (≤ 1.05 MFLOP) 0.94-0.96x, from 2.1 MFLOP on 1.6-3.2x (B = 4 and 8, H = 256 and 512).
PACKED_MIN_H = 128
PACKED_MIN_ROWS = 4
PACKED_MIN_FLOPS = 2e6
#: the item sizes that run packed: float32 only, so float64 results stay bit for bit those of np.dot; the tests add
#: 8 to run the float64 reference and finite-difference checks through the packed path (tests/unit/test_packed.py)
PACKED_ITEMSIZES = (4,)

#: A packed plan's time loop shares each step's product with a helper thread on another core
#: (rnnsim/kernels/team.py) when one call covers at least TEAM_MIN_STEPS steps and the process may run on at least
#: TEAM_MIN_CORES cores; the main thread works alone once it has waited TEAM_WAIT_CYCLES (CPU cycles, ~0.4 ms at
#: 2.6 GHz) for a panel the helper took.
TEAM_MIN_STEPS = 16
TEAM_MIN_CORES = 2
TEAM_WAIT_CYCLES = 1_000_000

# ------------------------------------------------------------------------------------- whole-sequence products
#: Whole-sequence products (over all T·B rows) of at least this many FLOPs use NumPy's multi-threaded BLAS; smaller
#: ones call SciPy's BLAS from Numba on one thread. A multi-threaded BLAS wakes its threads for every call: on a
#: 2-core machine whose other core is busy, a 3200×16 by 16×16 product then took up to 60 ms instead of 70 µs.
#: Above 200 MFLOP (≥ 5 ms of one core's work) a second core, when free, pays for the wake-up. When every
#: whole-sequence product of a pass stays below it (and the per-step ones in Numba), the pass takes the single-call
#: small pass (rnnsim/kernels/small_pass.py).
MT_GEMM_FLOPS = 2e8
