"""Packed recurrent products: the float32 per-step GEMMs against W_hh packed once per pass (issue 16).

Every time step multiplies a B×K block (h_{t-1} forward, dL/da_t backward) by the same K×N weight (W_hh^T
forward, W_hh backward). A BLAS call packs both operands again on every call (OpenBLAS has no packed-GEMM API),
which at B = 32 costs as much as the arithmetic: OpenBLAS ran h (32×528) by W (528×2048) at 58-60 GFLOP/s here
against 90 for a 2048² product. oneDNN's RNN primitive packs its weights once; so does this module:

    pack(Wp_f, W_hhT)  Wp_f[p, k, j] = W_hh^T[k, 32p + j]   (the forward's: from the W_hh^T every mode makes)
    pack(Wp_b, W_hh)   Wp_b[p, k, j] = W_hh[k, 32p + j]     (the backward's)

once per pass (``pack_weights``, from the cells' ``begin_forward``), and every step's ``out = a @ W`` runs
``packed_dot``: for each panel of 32 columns and each block of 8 rows, a micro-kernel keeps the 8×32 block of
``out`` in sixteen 16-float vector registers for the whole K loop (one panel row and 8 broadcasts per k, 16 FMAs),
so ``out`` is written once and the panel (K×32 floats, ≤ 256 KiB) stays in L2 while the row blocks pass over it.
Measured here (one core, AVX-512): 103-109 GFLOP/s at K ≥ 128, against 58-80 for OpenBLAS on the same shapes
(`python -m benchmarks.bench_packed`). Below K = 128, and for products of a few rows, OpenBLAS is as fast,
hence config.PACKED_MIN_H, PACKED_MIN_ROWS and PACKED_MIN_FLOPS.

The micro-kernel is LLVM IR written with llvmlite (a Numba intrinsic): <16 x float> vectors and llvm.fma, which
LLVM maps to AVX-512 registers. Only float32 (float64 results stay bit for bit those of np.dot) and only on
CPUs with AVX-512F (``available``; elsewhere 16 vector accumulators would spill and the BLAS path is kept;
``config.PACKED_MIN_H`` set above any H turns it off, as the tests and benchmarks do to compare). The
sums run over k in order with one FMA per term, so results differ from OpenBLAS's in the last bits only
(tests/unit/test_packed.py checks against float64 NumPy and torch).

``rec_dot(a, W, out, team, k)`` is what the cells' time loops call: for a 3-D (packed) W it is ``packed_dot`` (or,
with a team, its share of product k: rnnsim/kernels/team.py), for a 2-D W exactly the ``np.dot`` it replaced,
chosen when numba compiles (no run-time branch); ``rec_step_dot`` the same with ``step_dot`` (the RNN's).
"""

from __future__ import annotations

import numpy as np

from rnnsim.kernels import config
from rnnsim.kernels.blas import step_dot
from rnnsim.kernels.loader import jit, on_load

#: columns per panel (two 16-float vectors); the micro-kernels take 8 rows at a time (then 4, 2, 1 for the last)
NR = 32


def available() -> bool:
    """Whether this CPU has AVX-512F (read from /proc/cpuinfo: no LLVM import when a Simulation is planned)."""
    global _AVAILABLE
    if _AVAILABLE is None:
        _AVAILABLE = False
        try:
            with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
                for line in f:
                    if line.startswith("flags"):
                        _AVAILABLE = "avx512f" in line.split()
                        break
        except OSError:
            pass
    return _AVAILABLE


_AVAILABLE: bool | None = None


def applies(itemsize: int, B: int, H: int, G: int) -> bool:
    """Whether a cell of hidden size H with G gate blocks, at batch B, runs its per-step products packed
    (config.PACKED_ITEMSIZES, PACKED_MIN_H, PACKED_MIN_ROWS, PACKED_MIN_FLOPS; H a multiple of NR; AVX-512F)."""
    return (itemsize in config.PACKED_ITEMSIZES and G > 0 and H >= config.PACKED_MIN_H and H % NR == 0
            and B >= config.PACKED_MIN_ROWS and 2.0 * B * H * G * H >= config.PACKED_MIN_FLOPS and available())


def buffers(ws, H: int, G: int, dtype) -> None:
    """The two packed copies of W_hh (the forward's and the backward's), each the size of W_hh."""
    ws.Wp_f = np.zeros((G * H // NR, H, NR), dtype=dtype)
    ws.Wp_b = np.zeros((H // NR, G * H, NR), dtype=dtype)


def pack_weights(ws, W_hh) -> None:
    """Pack W_hh for a pass (its values change only in updates, between passes); ws.W_hhT must hold W_hh^T
    already (steps.begin_forward makes it first, in every mode a packed plan runs in)."""
    pack(ws.Wp_f, ws.W_hhT)
    pack(ws.Wp_b, W_hh)


@jit
def pack(Wp, W):
    """Wp[p, k, j] = W[k, NR·p + j]: W (K, N) in panels of NR columns."""
    for p in range(Wp.shape[0]):
        for k in range(Wp.shape[1]):
            row = W[k]
            for j in range(NR):
                Wp[p, k, j] = row[p * NR + j]


def _micro_kernel(rows: int):
    """A Numba intrinsic ``micro(A, Wp, out, r0, p)``: out[r0:r0+rows, NR·p:NR·(p+1)] = A[r0:r0+rows] @ panel p
    of Wp (K = A.shape[1] ≥ 1; A and out with unit column stride). float32: two <16 x float> vectors per row;
    float64 (only when config.PACKED_ITEMSIZES allows it: the tests' way to run the float64 checks through this
    path): four <8 x double>."""
    from llvmlite import ir
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    @intrinsic
    def micro(typingctx, A, Wp, out, r0, p):
        sig = types.void(A, Wp, out, r0, p)

        def codegen(context, builder, sig, args):
            a_arr = context.make_array(sig.args[0])(context, builder, args[0])
            w_arr = context.make_array(sig.args[1])(context, builder, args[1])
            o_arr = context.make_array(sig.args[2])(context, builder, args[2])
            r0 = context.cast(builder, args[3], sig.args[3], types.intp)
            p = context.cast(builder, args[4], sig.args[4], types.intp)
            wide = sig.args[0].dtype == types.float64
            elem, lanes, size = (ir.DoubleType(), 8, 8) if wide else (ir.FloatType(), 16, 4)
            nv = NR // lanes
            i64, i32 = ir.IntType(64), ir.IntType(32)
            vec = ir.VectorType(elem, lanes)
            const = lambda v: ir.Constant(i64, v)  # noqa: E731
            fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec, vec, vec]),
                                                 f"llvm.fma.v{lanes}{'f64' if wide else 'f32'}")
            item = const(size)
            lda = builder.sdiv(builder.extract_value(a_arr.strides, 0), item)
            ldo = builder.sdiv(builder.extract_value(o_arr.strides, 0), item)
            K = builder.extract_value(a_arr.shape, 1)
            w_base = builder.mul(builder.mul(p, K), const(NR))
            col0 = builder.mul(p, const(NR))
            a_rows = [builder.mul(builder.add(r0, const(r)), lda) for r in range(rows)]

            entry = builder.block
            loop = builder.append_basic_block("k_loop")
            done = builder.append_basic_block("k_done")
            builder.branch(loop)
            builder.position_at_end(loop)
            k = builder.phi(i64)
            k.add_incoming(const(0), entry)
            acc = [[builder.phi(vec) for _ in range(nv)] for _ in range(rows)]
            zero = ir.Constant(vec, [0.0] * lanes)
            for row in acc:
                for a in row:
                    a.add_incoming(zero, entry)
            w_at = builder.add(w_base, builder.mul(k, const(NR)))
            w = [builder.load(builder.bitcast(builder.gep(w_arr.data, [builder.add(w_at, const(lanes * v))]),
                                              vec.as_pointer()), align=size) for v in range(nv)]
            splat = ir.Constant(ir.VectorType(i32, lanes), [0] * lanes)
            new = []
            for r in range(rows):
                a = builder.load(builder.gep(a_arr.data, [builder.add(a_rows[r], k)]))
                av = builder.insert_element(ir.Constant(vec, ir.Undefined), a, ir.Constant(i32, 0))
                av = builder.shuffle_vector(av, ir.Constant(vec, ir.Undefined), splat)
                new.append([builder.call(fma, [av, w[v], acc[r][v]]) for v in range(nv)])
            k_next = builder.add(k, const(1))
            body_end = builder.block
            k.add_incoming(k_next, body_end)
            for r in range(rows):
                for v in range(nv):
                    acc[r][v].add_incoming(new[r][v], body_end)
            builder.cbranch(builder.icmp_signed("<", k_next, K), loop, done)
            builder.position_at_end(done)
            for r in range(rows):
                o_row = builder.mul(builder.add(r0, const(r)), ldo)
                for v in range(nv):
                    at = builder.add(o_row, builder.add(col0, const(lanes * v)))
                    builder.store(new[r][v], builder.bitcast(builder.gep(o_arr.data, [at]), vec.as_pointer()),
                                  align=size)
            return context.get_dummy_value()

        return sig, codegen

    return micro


@on_load
def _define_kernels() -> None:
    """The micro-kernels (8, 4, 2 and 1 rows) and the rec_dot / rec_step_dot overloads (made when numba loads)."""
    from numba.extending import overload

    global _micro8, _micro4, _micro2, _micro1
    _micro8, _micro4, _micro2, _micro1 = (_micro_kernel(r) for r in (8, 4, 2, 1))

    overload(rec_dot)(_choose(lambda a, W, out, team, k: np.dot(a, W, out)))
    overload(rec_step_dot)(_choose(lambda a, W, out, team, k: step_dot(a, W, out)))


def _choose(unpacked):
    """The overload of rec_dot / rec_step_dot (chosen by numba's types of W and team): shared with the helper
    thread (team.team_dot, a dispatcher by now) for a packed W and a sync array, ``packed_dot`` for a packed W and
    None, else ``unpacked`` (the 2-D weight's product)."""
    from numba.core import types

    def choose(a, W, out, team, k):
        if W.ndim != 3:
            return unpacked
        if team is None or isinstance(team, (types.NoneType, types.Omitted)):
            return lambda a, W, out, team, k: packed_dot(a, W, out)
        from rnnsim.kernels import team as team_module

        team_dot = team_module.team_dot
        return lambda a, W, out, team, k: team_dot(a, W, out, team, k)

    return choose


@jit
def packed_dot(a, Wp, out):
    """out = a @ W for W packed by ``pack`` into Wp (N/NR panels of K×NR); a (M, K), out (M, N) with unit column
    stride."""
    panels(a, Wp, out, 0, Wp.shape[0])


@jit
def panels(a, Wp, out, p_lo, p_hi):
    """Columns NR·p_lo to NR·p_hi of out = a @ W (W packed into Wp): panel by panel, rows 8 at a time (then 4, 2,
    1). A thread's share of a product split by panels (rnnsim/kernels/team.py)."""
    M = a.shape[0]
    if a.shape[1] == 0:
        out[:, NR * p_lo:NR * p_hi] = 0
        return
    for p in range(p_lo, p_hi):
        r = 0
        while r + 8 <= M:
            _micro8(a, Wp, out, r, p)
            r += 8
        if r + 4 <= M:
            _micro4(a, Wp, out, r, p)
            r += 4
        if r + 2 <= M:
            _micro2(a, Wp, out, r, p)
            r += 2
        if r < M:
            _micro1(a, Wp, out, r, p)


def rec_dot(a, W, out, team, k):
    """out = a @ W, product ``k`` of a cell's time loop: ``packed_dot`` for a packed (3-D) W, shared with the helper
    thread when ``team`` is a team's sync array (team.team_dot), else ``np.dot`` (a numba overload: chosen when the
    loop compiles, no run-time branch)."""
    if W.ndim == 3:
        return packed_dot(a, W, out)
    return np.dot(a, W, out)


def rec_step_dot(a, W, out, team, k):
    """As ``rec_dot``, with ``step_dot`` (small products as loops) for a 2-D W."""
    if W.ndim == 3:
        return packed_dot(a, W, out)
    return step_dot(a, W, out)
