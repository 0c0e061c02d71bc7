"""The `regimes` sweep's grad_ratio in JAX: one forward and backward pass per grid point, `vmap`ped over the points
that share a shape (cell, T), for benchmarks/bench_sweep.py's JAX column. JAX is never a dependency of rnnsim.

Each point's initial weights and data come from rnnsim itself (``Simulation(scenario)``: the same seed, init and
task), prepared once and not timed; JAX computes ‖dL/dh_t‖ with ``jax.grad`` through ``lax.scan`` (the total
derivative of the loss with respect to h_t: a zero perturbation added to each h_t) and the ratio of the batch-mean
norms at t = 0 and t = T−1, as rnnsim.diagnostics.gradient_profile does. float64 (``jax_enable_x64``). Cells:
rnn (tanh or relu), lstm, gru in PyTorch's conventions (rnnsim/cells/*.py); linear readout, MSE over the masked
positions (the `random` task). Anything else raises NotImplementedError.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np


def _jax():
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


def _step(cell: str, activation: str):
    jnp = _jax().numpy
    act = jnp.tanh if activation == "tanh" else (lambda a: jnp.maximum(a, 0.0))
    sig = _jax().nn.sigmoid

    def rnn(p, x, h, c):
        return act(x @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"]), c

    def lstm(p, x, h, c):
        a = x @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"]
        i, f, g, o = jnp.split(a, 4, axis=-1)
        c = sig(f) * c + sig(i) * jnp.tanh(g)
        return sig(o) * jnp.tanh(c), c

    def gru(p, x, h, c):
        gi = x @ p["weight_ih"].T + p["bias_ih"]
        gh = h @ p["weight_hh"].T + p["bias_hh"]
        ir, iz, inn = jnp.split(gi, 3, axis=-1)
        hr, hz, hn = jnp.split(gh, 3, axis=-1)
        r, z = sig(ir + hr), sig(iz + hz)
        n = jnp.tanh(inn + r * hn)
        return (1 - z) * n + z * h, c

    return {"rnn": rnn, "lstm": lstm, "gru": gru}[cell]


def ratio_fn(cell: str, activation: str):
    """grad_ratio(params, X (T,B,D), Y (T,B,O), M (T,B)) of one point, for jax.vmap."""
    jax = _jax()
    jnp, lax = jax.numpy, jax.lax
    step = _step(cell, activation)

    def ratio(p, X, Y, M):
        T, B, _ = X.shape
        H = p["weight_hh"].shape[1]

        def loss(eps):
            def body(carry, inp):
                h, c = carry
                x, e = inp
                h, c = step(p, x, h, c)
                h = h + e
                return (h, c), h

            zero = jnp.zeros((B, H), X.dtype)
            _, hs = lax.scan(body, (zero, zero), (X, eps))
            out = hs @ p["readout.weight"].T + p["readout.bias"]
            diff = (out - Y) * M[..., None]
            return jnp.sum(diff * diff) / (jnp.sum(M) * Y.shape[-1])

        g = jax.grad(loss)(jnp.zeros((T, B, H), X.dtype))
        norms = jnp.sqrt(jnp.sum(g * g, axis=-1)).mean(axis=-1)
        return norms[0] / norms[-1]

    return ratio


def prepare(sweep) -> list[dict[str, Any]]:
    """Group the sweep's runs by shape (cell, activation, T, B, H, D); each group's stacked inputs (not timed)."""
    from rnnsim import Simulation

    groups: dict[tuple, dict[str, Any]] = {}
    for run in sweep.runs():
        sc = sweep.scenario(run)
        m, t = sc.model, sc.task
        if t.kind != "random" or m.readout != "linear" or m.layernorm or m.cell not in ("rnn", "lstm", "gru") \
                or m.dtype != "float64":
            raise NotImplementedError(f"JAX column: {m.cell}/{t.kind}/{m.readout}/{m.dtype} is not written")
        sim = Simulation(sc)
        key = (m.cell, m.activation, t.length, t.batch_size, m.hidden_size)
        g = groups.setdefault(key, {"key": key, "index": [], "params": [], "X": [], "Y": [], "M": []})
        g["index"].append(run.index)
        g["params"].append({k: v.copy() for k, v in sim.params.items()})
        g["X"].append(sim._X.copy())
        g["Y"].append(sim._Y.copy())
        g["M"].append(sim._M.astype(np.float64))
    out = []
    for g in groups.values():
        out.append({"key": g["key"], "index": g["index"],
                    "params": {k: np.stack([p[k] for p in g["params"]]) for k in g["params"][0]},
                    "X": np.stack(g["X"]), "Y": np.stack(g["Y"]), "M": np.stack(g["M"])})
    return out


class JaxGrid:
    """``compile()`` once (timed apart), then ``run()`` → {run index: grad_ratio} for the whole grid."""

    def __init__(self, sweep):
        self.groups = prepare(sweep)
        jax = _jax()
        self.fns = {}
        self.args = []
        for g in self.groups:
            cell, act = g["key"][:2]
            if (cell, act) not in self.fns:
                self.fns[(cell, act)] = jax.jit(jax.vmap(ratio_fn(cell, act)))
            dev = jax.device_put((g["params"], g["X"], g["Y"], g["M"]))
            self.args.append((self.fns[(cell, act)], dev, g["index"]))

    def compile(self) -> float:
        """Seconds to trace and compile every shape group (the first call of each)."""
        t0 = time.perf_counter()
        for fn, args, _ in self.args:
            fn(*args).block_until_ready()
        return time.perf_counter() - t0

    def run(self) -> dict[int, float]:
        out: dict[int, float] = {}
        results = [(fn(*args), index) for fn, args, index in self.args]
        for r, index in results:
            for i, v in zip(index, np.asarray(r.block_until_ready())):
                out[i] = float(v)
        return out


RTOL = 1e-9
"""Vanishing and stable runs: JAX's grad_ratio within this relative difference of rnnsim's."""
EXPLODING_LOG10_TOL = 0.1
"""Exploding runs: the same regime and log10 within this (their forward pass is chaotic: rounding differences,
e.g. the order of a matrix product's sums, grow with T; at scale 2, T = 200 they reach a few percent)."""


def check(values: dict[int, float], rows: dict[int, dict]) -> dict[str, tuple[int, float]]:
    """Compare with rnnsim's grad_ratio per run (``rows`` by index): {regime: (runs compared, largest relative
    difference)}. Runs that were not finite in rnnsim are skipped. Raises AssertionError beyond the tolerances."""
    import math

    from rnnsim.results import EXPLODING_ABOVE

    out: dict[str, tuple[int, float]] = {}
    for i, row in rows.items():
        ref = row["grad_ratio"]
        if not row["finite"] or ref is None or not math.isfinite(ref):
            continue
        got = values[i]
        rel = abs(got - ref) / max(abs(ref), np.finfo(float).tiny)
        regime = row["regime"]
        n, worst = out.get(regime, (0, 0.0))
        out[regime] = (n + 1, max(worst, rel))
        if regime == "exploding":
            ok = got > EXPLODING_ABOVE and abs(math.log10(got) - math.log10(ref)) <= EXPLODING_LOG10_TOL
        else:
            ok = rel <= RTOL
        if not ok:
            raise AssertionError(f"run {i} ({regime}): JAX grad_ratio {got!r}, rnnsim {ref!r} (relative {rel:.2g})")
    return out
