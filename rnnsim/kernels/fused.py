"""The fused small pass: a whole forward (input projection, time loop, readout, checks, loss) or a whole backward
(readout gradient, BPTT, weight gradients, checks) of a recurrent cell as ONE Numba call, and one call per step
of the step API.

At H = 16, B = 1 a pass of T = 10 steps is mostly fixed cost: the small pass (rnnsim/kernels/small_pass.py) made
it ~7 Numba calls and ~45 Python calls per pass (the cells' drivers, the Readout, property lookups, reshapes, the
loss mask's count), ~20 µs. Here every array a pass touches is looked up once, when the Simulation is built (its
arrays are preallocated and its parameters updated in place), into one argument tuple per kernel, and the two
tuples are boxed once into a Numba StructRef (rnnsim/kernels/fused_args.py: one pointer to unbox per call, not
~30 arrays); a pass is then ``entry(0, T, True, check, args)`` plus the Simulation's bookkeeping. The kernels call the very kernels the cells' drivers call,
in the same order (cached._project_small, the cell's forward_loop / backward_loop, small_pass.forward_tail /
readout_backward, cached._weight_grads_small, the checks), so the numbers are bit for bit those of the
unfused path (tests/unit/test_golden.py, tests/unit/test_fused.py).

Used when the plan takes the small pass in cached mode without per-step BLAS (``plan.small_pass``,
``plan.small_projection``, ``plan.small_grads``) for rnn, lstm and gru; everything else keeps the drivers.
"""

from __future__ import annotations

from rnnsim.cells import gru, lstm, rnn
from rnnsim.kernels import cached, checks, small_pass
from rnnsim.kernels.loader import jit, load_kernels
from rnnsim.kernels.modes import Mode


@jit
def _count(M):
    n = 0
    for t in range(M.shape[0]):
        for b in range(M.shape[1]):
            if M[t, b]:
                n += 1
    return n


@jit
def _tail(t0, t1, B, H2, WoT, bo, out2, Hs, Cs, check_c, check, out, Y_reg, Y_cls, M, dout):
    """small_pass.forward_tail, with the loss mask's count and 2/count (in the outputs' dtype, as Readout does)
    at t1 = T."""
    n = 0
    if t1 == out.shape[0]:
        n = _count(M)
    scale = dout.dtype.type(2.0 / max(1, n * out.shape[2]))
    return small_pass.forward_tail(t0, t1, B, H2, WoT, bo, out2, Hs, Cs, check_c, check, out, Y_reg, Y_cls, M,
                                   dout, scale, n)


# --------------------------------------------------------------------------------------------------- forward
@jit
def rnn_forward(t0, t1, project, check, X2, W_ihT, b_ih, XW2, W_hh, XW, h0, W_hhT, b_hh, relu, use_ln, ln_w, ln_b,
                Hs, AHAT, RSTD, tmp, B, H2, WoT, bo, out2, out, Y_reg, Y_cls, M, dout):
    if project:
        cached._project_small(X2, W_ihT, b_ih, XW2, W_hh, W_hhT)
    rnn.forward_loop(t0, t1, XW, h0, W_hhT, b_hh, relu, use_ln, ln_w, ln_b, Hs, AHAT, RSTD, tmp, None)
    return _tail(t0, t1, B, H2, WoT, bo, out2, Hs, Hs, False, check, out, Y_reg, Y_cls, M, dout)


@jit
def lstm_forward(t0, t1, project, check, X2, W_ihT, b_ih, XW2, W_hh, XW, h0, c0, W_hhT, b_hh, Hs, Cs, GT, tmp,
                 B, H2, WoT, bo, out2, out, Y_reg, Y_cls, M, dout):
    if project:
        cached._project_small(X2, W_ihT, b_ih, XW2, W_hh, W_hhT)
    lstm.forward_loop(t0, t1, XW, h0, c0, W_hhT, b_hh, Hs, Cs, GT, tmp, None)
    return _tail(t0, t1, B, H2, WoT, bo, out2, Hs, Cs, True, check, out, Y_reg, Y_cls, M, dout)


@jit
def gru_forward(t0, t1, project, check, X2, W_ihT, b_ih, XW2, W_hh, XW, h0, W_hhT, b_hh, Hs, GT, GHN, tmp,
                B, H2, WoT, bo, out2, out, Y_reg, Y_cls, M, dout):
    if project:
        cached._project_small(X2, W_ihT, b_ih, XW2, W_hh, W_hhT)
    gru.forward_loop(t0, t1, XW, h0, W_hhT, b_hh, Hs, GT, GHN, tmp, None)
    return _tail(t0, t1, B, H2, WoT, bo, out2, Hs, Hs, False, check, out, Y_reg, Y_cls, M, dout)


# -------------------------------------------------------------------------------------------------- backward
@jit
def _finish(t_hi, t_lo, done, check, gi2, gh2, X2, H2, h0, W_ih, gW_ih, gW_hh, gb_ih, gb_hh, dx2, DH, DX, grads):
    """After BPTT steps t_hi down to t_lo: at the last (``done``) the weight gradients; then the checks."""
    if done:
        cached._weight_grads_small(gi2, gh2, X2, H2, h0, W_ih, gW_ih, gW_hh, gb_ih, gb_hh, dx2)
    if not check:
        return checks.OK, -1
    if done:
        return checks.backward_checks(DH, t_lo, t_hi, DX, grads)
    t = checks.first_nonfinite_step(DH, t_lo, t_hi + 1, True)
    return (checks.GRAD_HIDDEN if t >= 0 else checks.OK), t


@jit
def rnn_backward(t_hi, t_lo, begin, done, check, dout2, Wo, dh2, gWo, gbo, Hs, W_hh, relu, use_ln, ln_w, AHAT,
                 RSTD, DH, DA, carry, dln_w, dln_b, gln_w, gln_b,
                 gi2, X2, H2, h0, W_ih, gW_ih, gW_hh, gb_ih, gb_hh, dx2, DX, grads):
    if begin:
        small_pass.readout_backward(dout2, Wo, H2, dh2, gWo, gbo)
        carry[:] = 0
        dln_w[:] = 0
        dln_b[:] = 0
    rnn.backward_loop(t_hi, t_lo, Hs, W_hh, relu, use_ln, ln_w, AHAT, RSTD, DH, DA, carry, dln_w, dln_b, None)
    if done and use_ln:
        gln_w[:] = dln_w
        gln_b[:] = dln_b
    return _finish(t_hi, t_lo, done, check, gi2, gi2, X2, H2, h0, W_ih, gW_ih, gW_hh, gb_ih, gb_hh, dx2, DH, DX,
                   grads)


@jit
def lstm_backward(t_hi, t_lo, begin, done, check, dout2, Wo, dh2, gWo, gbo, c0, W_hh, Cs, GT, DH, DA, carry,
                  carry_c, gi2, X2, H2, h0, W_ih, gW_ih, gW_hh, gb_ih, gb_hh, dx2, DX, grads):
    if begin:
        small_pass.readout_backward(dout2, Wo, H2, dh2, gWo, gbo)
        carry[:] = 0
        carry_c[:] = 0
    lstm.backward_loop(t_hi, t_lo, c0, W_hh, Cs, GT, DH, DA, carry, carry_c, None)
    return _finish(t_hi, t_lo, done, check, gi2, gi2, X2, H2, h0, W_ih, gW_ih, gW_hh, gb_ih, gb_hh, dx2, DH, DX,
                   grads)


@jit
def gru_backward(t_hi, t_lo, begin, done, check, dout2, Wo, dh2, gWo, gbo, W_hh, Hs, GT, GHN, DH, DGI, DGH, carry,
                 tmp_h, gi2, gh2, X2, H2, h0, W_ih, gW_ih, gW_hh, gb_ih, gb_hh, dx2, DX, grads):
    if begin:
        small_pass.readout_backward(dout2, Wo, H2, dh2, gWo, gbo)
        carry[:] = 0
    gru.backward_loop(t_hi, t_lo, h0, W_hh, Hs, GT, GHN, DH, DGI, DGH, carry, tmp_h, None)
    return _finish(t_hi, t_lo, done, check, gi2, gh2, X2, H2, h0, W_ih, gW_ih, gW_hh, gb_ih, gb_hh, dx2, DH, DX,
                   grads)


# ------------------------------------------------------------------------------------------------ the driver
class FusedPass:
    """The argument tuples of one Simulation's fused kernels, built once (``make`` says whether it applies).

    ``forward(t0, t1, project, check)`` -> (code, t, loss) as Readout.forward; ``backward(t_hi, t_lo, begin, done,
    check)`` -> (code, t) as Readout.backward_checks (``begin``: the readout's gradient and the carries' reset
    first, as Simulation._begin_backward; ``done``: the weight gradients after, as the cell's finish_backward)."""

    def __init__(self, sim):
        ws, p, g, m = sim._ws, sim.params, sim.grads, sim.scenario.model
        T, B, D, H, O = sim.T, sim.B, sim.D, sim.H, sim.O
        X2, H2 = sim._X.reshape(T * B, D), ws.h.reshape(T * B, H)
        cls = sim.classification
        proj = (X2, p["weight_ih"].T, p["bias_ih"], ws.XW.reshape(T * B, -1), p["weight_hh"])
        tail = (B, H2, p["readout.weight"].T, p["readout.bias"], sim._out.reshape(T * B, O), sim._out,
                None if cls else sim._Y, sim._Y if cls else None, sim._M, sim._dout)
        head = (sim._dout.reshape(T * B, O), p["readout.weight"], ws.dh.reshape(T * B, H), g["readout.weight"],
                g["readout.bias"])
        gi2 = ws.dgi.reshape(T * B, -1)
        grads = (X2, H2, ws.h0, p["weight_ih"], g["weight_ih"], g["weight_hh"], g["bias_ih"], g["bias_hh"],
                 ws.dx.reshape(T * B, D), ws.dx, sim._ro.flat(g))
        self._fw_entry = self._bw_entry = None
        name = sim.cell_name
        if name == "rnn":
            relu, ln = m.activation == "relu", bool(m.layernorm)
            ln_w = p["ln.weight"] if ln else ws.dummy
            ln_b = p["ln.bias"] if ln else ws.dummy
            self._fw = rnn_forward
            self._fw_args = proj + (ws.XW, ws.h0, ws.W_hhT, p["bias_hh"], relu, ln, ln_w, ln_b, ws.h, ws.ahat,
                                    ws.rstd, ws.tmp) + tail
            self._bw = rnn_backward
            self._bw_args = head + (ws.h, p["weight_hh"], relu, ln, ln_w, ws.ahat, ws.rstd, ws.dh, ws.da, ws.carry,
                                    ws.dln_w, ws.dln_b, g["ln.weight"] if ln else ws.dln_w,
                                    g["ln.bias"] if ln else ws.dln_b, gi2) + grads
        elif name == "lstm":
            self._fw = lstm_forward
            self._fw_args = proj + (ws.XW, ws.h0, ws.c0, ws.W_hhT, p["bias_hh"], ws.h, ws.c, ws.gates, ws.tmp) + tail
            self._bw = lstm_backward
            self._bw_args = head + (ws.c0, p["weight_hh"], ws.c, ws.gates, ws.dh, ws.da, ws.carry, ws.carry_c,
                                    gi2) + grads
        else:
            self._fw = gru_forward
            self._fw_args = proj + (ws.XW, ws.h0, ws.W_hhT, p["bias_hh"], ws.h, ws.gates, ws.ghn, ws.tmp) + tail
            self._bw = gru_backward
            self._bw_args = head + (p["weight_hh"], ws.h, ws.gates, ws.ghn, ws.dh, ws.dgi, ws.dgh, ws.carry,
                                    ws.tmp_h, gi2, ws.dgh.reshape(T * B, -1)) + grads

        self._name = name
        self._args = None        # the arguments boxed once (rnnsim/kernels/fused_args.py), on the first call

    @staticmethod
    def make(sim):
        """A FusedPass for ``sim``, or None when its plan does not take the fused small pass."""
        plan = sim._ws.plan
        if (sim.cell_name in ("rnn", "lstm", "gru") and getattr(sim, "num_layers", 1) == 1   # a stack: per layer
                and plan.mode is Mode.CACHED and plan.small_pass
                and plan.small_projection and plan.small_grads and not plan.step_blas and not plan.packed):
            return FusedPass(sim)
        return None

    def forward(self, t0, t1, project, check):
        if self._fw_entry is None:
            return self._first_call(True, (t0, t1, project, check))
        return self._fw_entry(t0, t1, project, check, self._args)

    def backward(self, t_hi, t_lo, begin, done, check):
        if self._bw_entry is None:
            return self._first_call(False, (t_hi, t_lo, begin, done, check))
        return self._bw_entry(t_hi, t_lo, begin, done, check, self._args)

    def _first_call(self, forward, head):
        """The first forward (or backward) call: load numba, box the arguments once (fused_args.make), find the
        entry point of the boxed kernel and call it. Where boxing is not available (NUMBA_DISABLE_JIT, say) the
        entry point takes the arrays one by one, as the fused kernels do."""
        load_kernels()
        if self._args is None:
            try:
                from rnnsim.kernels import fused_args
                self._args = fused_args.make(self._fw_args, self._bw_args)
                self._boxed = fused_args.KERNELS[self._name]
            except Exception:             # noqa: BLE001  (the unboxed kernels give the same numbers)
                self._args, self._boxed = False, None
        if self._boxed is not None:
            entry, result = _entry_point(self._boxed[0 if forward else 1], head + (self._args,))
        else:
            kernel, rest = (self._fw, self._fw_args) if forward else (self._bw, self._bw_args)
            plain, result = _entry_point(kernel, head + rest)
            entry = lambda *a: plain(*a[:-1], *rest)  # noqa: E731
        if forward:
            self._fw_entry = entry
        else:
            self._bw_entry = entry
        return result


def _entry_point(kernel, args):
    """(the compiled function of ``kernel`` for these argument types, the result of calling it with ``args``).
    Calling the machine code's entry point skips the dispatcher's type resolution (~1-2 µs of a call with 30
    arguments); the types of a FusedPass's arguments never change (its arrays are fixed, t an int, flags bools)."""
    result = kernel(*args)                        # loads numba and the machine code (cache or compile)
    dispatcher = getattr(kernel, "dispatcher", kernel)
    try:
        entry = dispatcher.overloads[tuple(dispatcher.typeof_pyval(a) for a in args)].entry_point
    except (AttributeError, KeyError):            # not a numba dispatcher after all: call it as it is
        entry = dispatcher
    return entry, result
