"""The fused kernels' arguments boxed once: a Numba StructRef holding the argument tuples of a FusedPass
(rnnsim/kernels/fused.py), and one kernel per cell and direction that takes it and calls the fused kernel.

Every array argument of a Numba call is unboxed on each call (its buffer, shape and strides read, a MemInfo
allocated and freed): ~30 ns each, ~1 µs for the ~30 arrays of a fused forward or backward, a fifth of the fixed
cost of a small pass (H = 16, B = 1). A StructRef is one object: its unboxing reads one pointer, and the arrays
inside it are read in machine code. The kernels here unpack the tuples into the very fused kernels (the same
machine code, the same numbers).

Imported only once the kernels are loaded (it needs numba at import): FusedPass does that on its first call.
"""

from __future__ import annotations

from numba.core import types
from numba.experimental import structref

from rnnsim.kernels import fused
from rnnsim.kernels.loader import jit


@structref.register
class PassArgsType(types.StructRef):
    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(t)) for name, t in fields)


class PassArgs(structref.StructRefProxy):
    """``fw``: the arguments of a fused forward kernel after (t0, t1, project, check); ``bw``: those of the fused
    backward kernel after (t_hi, t_lo, begin, done, check)."""


structref.define_constructor(PassArgs, PassArgsType, ["fw", "bw"])
structref.define_boxing(PassArgsType, PassArgs)


@jit
def make(fw, bw):
    """A PassArgs of the two tuples (compiled and cached like the kernels: no compile per process)."""
    return PassArgs(fw, bw)


@jit
def rnn_forward(t0, t1, project, check, a):
    return fused.rnn_forward(t0, t1, project, check, *a.fw)


@jit
def lstm_forward(t0, t1, project, check, a):
    return fused.lstm_forward(t0, t1, project, check, *a.fw)


@jit
def gru_forward(t0, t1, project, check, a):
    return fused.gru_forward(t0, t1, project, check, *a.fw)


@jit
def rnn_backward(t_hi, t_lo, begin, done, check, a):
    return fused.rnn_backward(t_hi, t_lo, begin, done, check, *a.bw)


@jit
def lstm_backward(t_hi, t_lo, begin, done, check, a):
    return fused.lstm_backward(t_hi, t_lo, begin, done, check, *a.bw)


@jit
def gru_backward(t_hi, t_lo, begin, done, check, a):
    return fused.gru_backward(t_hi, t_lo, begin, done, check, *a.bw)


KERNELS = {"rnn": (rnn_forward, rnn_backward), "lstm": (lstm_forward, lstm_backward),
           "gru": (gru_forward, gru_backward)}
