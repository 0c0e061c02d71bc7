"""Gradient clipping and optimizers, on dicts of NumPy arrays (PyTorch names, updated in place).

Clipping (Pascanu, Mikolov & Bengio 2013):
  norm   if ‖g‖ > θ then g ← θ g / ‖g‖, ‖g‖ the global 2-norm over all parameters: the direction is kept;
  value  every element clamped to [−θ, θ]: the direction changes, which ``ClipResult.cosine`` measures.
Optimizers follow torch.optim: SGD, SGD with momentum (buf ← μ buf + g; p ← p − lr buf) and Adam
(β = (0.9, 0.999), ε = 1e-8, bias-corrected).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numpy as np


def global_norm(grads) -> float:
    """The 2-norm over all arrays, as if concatenated. Rescaled when the plain sum of squares over- or underflows,
    so a huge but finite gradient gets a finite norm (and can be clipped) instead of inf."""
    total = sum(float(np.vdot(g, g)) for g in grads.values())
    if 0.0 < total < math.inf:
        return math.sqrt(total)
    m = max((float(np.max(np.abs(g))) for g in grads.values() if g.size), default=0.0)
    if m == 0.0 or not math.isfinite(m):
        return m
    return m * math.sqrt(sum(float(np.vdot(g / m, g / m)) for g in grads.values()))


@dataclass(frozen=True)
class ClipResult:
    norm: float          #: ‖g‖ before clipping
    clipped_norm: float  #: ‖g‖ after clipping
    clipped: bool        #: whether clipping changed anything
    cosine: float        #: cos(g_before, g_after): 1 when the direction is kept


def clip_(grads, mode: str, threshold: float) -> ClipResult:
    """Clip ``grads`` in place by ``mode`` ("none" | "norm" | "value") and say what happened."""
    norm = global_norm(grads)
    if mode == "none" or not math.isfinite(norm):
        return ClipResult(norm, norm, False, 1.0)
    if mode == "norm":
        if norm <= threshold:
            return ClipResult(norm, norm, False, 1.0)
        scale = threshold / norm
        for g in grads.values():
            g *= scale
        return ClipResult(norm, global_norm(grads), True, 1.0)
    if mode == "value":
        # cos(g_before, g_after), summed tensor by tensor as it clips (no copy of the whole gradient). The plain
        # dot / (‖g‖·‖clip(g)‖) is the reported number; where that product under- or overflows (gradients near
        # 1e-170 or 1e300) the same sums of the vectors scaled by their largest |element| (max|g| and
        # min(max|g|, θ)) give it instead.
        ma = max((float(np.max(np.abs(g))) for g in grads.values() if g.size), default=0.0)
        mb = min(ma, threshold)
        dot = sdot = saa = sbb = 0.0
        clipped = False
        for g in grads.values():
            if not clipped and np.any(np.abs(g) > threshold):
                clipped = True
            before = g.copy()
            np.clip(g, -threshold, threshold, out=g)
            dot += float(np.vdot(before, g))
            if ma > 0:
                ua, ub = before / ma, g / mb
                sdot += float(np.vdot(ua, ub))
                saa += float(np.vdot(ua, ua))
                sbb += float(np.vdot(ub, ub))
        after = global_norm(grads)
        cosine = 1.0
        if norm > 0 and after > 0:
            den = norm * after
            cosine = dot / den if den >= sys.float_info.min and math.isfinite(den) and math.isfinite(dot) else \
                sdot / math.sqrt(saa * sbb)
            cosine = min(1.0, max(-1.0, cosine))
        return ClipResult(norm, after, clipped, cosine)
    raise ValueError(f"unknown clip mode {mode!r}: allowed none, norm, value")


class SGD:
    def __init__(self, params, lr):
        self.lr = lr

    def step(self, params, grads):
        for k, p in params.items():
            p -= self.lr * grads[k]


class Momentum:
    """torch.optim.SGD(momentum=μ): buf ← μ·buf + g (buf = g at the first step); p ← p − lr·buf."""

    def __init__(self, params, lr, momentum):
        self.lr, self.mu = lr, momentum
        self.buf = None

    def step(self, params, grads):
        if self.buf is None:
            self.buf = {k: g.copy() for k, g in grads.items()}
        else:
            for k, b in self.buf.items():
                b *= self.mu
                b += grads[k]
        for k, p in params.items():
            p -= self.lr * self.buf[k]


class Adam:
    """torch.optim.Adam with default betas and eps."""

    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-8):
        self.lr, (self.b1, self.b2), self.eps = lr, betas, eps
        self.m = {k: np.zeros_like(p) for k, p in params.items()}
        self.v = {k: np.zeros_like(p) for k, p in params.items()}
        self.t = 0

    def step(self, params, grads):
        self.t += 1
        c1 = 1.0 - self.b1**self.t
        c2 = 1.0 - self.b2**self.t
        for k, p in params.items():
            g = grads[k]
            m, v = self.m[k], self.v[k]
            m *= self.b1
            m += (1.0 - self.b1) * g
            v *= self.b2
            v += (1.0 - self.b2) * g * g
            p -= self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)


def make_optimizer(training, params):
    if training.optimizer == "sgd":
        return SGD(params, training.learning_rate)
    if training.optimizer == "momentum":
        return Momentum(params, training.learning_rate, training.momentum)
    if training.optimizer == "adam":
        return Adam(params, training.learning_rate)
    raise ValueError(f"unknown optimizer {training.optimizer!r}: allowed sgd, momentum, adam")
