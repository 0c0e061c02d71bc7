"""The same job in every implementation, checked equal before it is timed, and the fair way to time them.

The job (one benchmark row): forward through T steps keeping every h_t, then BPTT keeping every dL/dh_t, the weight
gradients and dL/dx_t. rnnsim runs it with its readout and loss (``Simulation.forward() + backward()``); the peers
get the same weights and inputs (the same input size D) and, as upstream gradient, the readout's part of dL/dh_t
that rnnsim computed (``G`` = dL/dout W_o), so every implementation's h_t, dL/dh_t (where it keeps it), dW, db and
dL/dx_t must equal rnnsim's:

  torch-cell   a Python loop over torch.nn.RNNCell/LSTMCell/GRUCell, h_t.retain_grad() (keeps dL/dh_t)
  torch-fused  torch.nn.RNN/LSTM/GRU (oneDNN on CPU) forward + backward(G) (keeps no dL/dh_t: less work)
  jax          jit(grad) of a lax.scan over the steps, the input projection as one product before it; dL/dh_t
               as the gradient of a zero added to every h_t (the usual trick); its compile time reported apart
  numpy        the cells' plain NumPy references (rnnsim.cells.*.reference_forward/backward)

torch and jax are optional (never dependencies): a missing one is a missing column. Timing (``rounds``):
interleaved in one process, every implementation once per round, each round starting at the next implementation
(A B C, B C A, C A B, ...) so that none is always timed right after the same other one (the old grid timed rnnsim
always right after a torch job), ≥ 7 rounds, median and spread.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time

import numpy as np

from rnnsim import Simulation
from rnnsim.cells import gru, lstm, rnn
from rnnsim.scenario import Scenario

try:
    import torch
except ImportError:  # optional
    torch = None

REFS = {"rnn": rnn, "lstm": lstm, "gru": gru}
#: relative tolerance of the equality check (max |a − b| / max |b| per array), per dtype
TOL = {"float64": 1e-14, "float32": 1e-4}
#: fewest timed rounds of a row
MIN_ROUNDS = 7


def scenario(cell, H, B, T, dtype, D=16):
    return Scenario.from_dict({
        "scenario": {"name": "bench", "seed": 0},
        "model": {"cell": cell, "hidden_size": H, "dtype": dtype},
        "task": {"kind": "random", "length": T, "batch_size": B, "input_size": D},
    })


# ------------------------------------------------------------------------------------------------- JAX (optional)
_JAX = {}


def jax_module():
    """jax, configured once for float64 and one thread (XLA_FLAGS before the import), or None."""
    if "jax" not in _JAX:
        flags = os.environ.get("XLA_FLAGS", "")
        if "intra_op_parallelism_threads" not in flags:
            os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false "
                                       "intra_op_parallelism_threads=1").strip()
        try:
            import jax
            jax.config.update("jax_enable_x64", True)
            jax.config.update("jax_platforms", "cpu")
        except Exception:  # not installed, or broken: no column
            jax = None
        _JAX["jax"] = jax
    return _JAX["jax"]


def _jax_job(cell, p, X, G):
    jax = jax_module()
    jnp, lax = jax.numpy, jax.lax
    H = p["weight_hh"].shape[1]
    T, B, _ = X.shape

    def loss(params, x, eps, g):
        Whh_T, bhh = params["weight_hh"].T, params["bias_hh"]

        def step(carry, inp):
            xw, eps = inp
            if cell == "lstm":
                h, c = carry
                a = xw + h @ Whh_T + bhh
                i, f, g, o = (jax.nn.sigmoid(a[:, :H]), jax.nn.sigmoid(a[:, H:2 * H]), jnp.tanh(a[:, 2 * H:3 * H]),
                              jax.nn.sigmoid(a[:, 3 * H:]))
                c = f * c + i * g
                h = o * jnp.tanh(c) + eps
                return (h, c), h
            h = carry
            if cell == "gru":
                a = h @ Whh_T + bhh
                r = jax.nn.sigmoid(xw[:, :H] + a[:, :H])
                z = jax.nn.sigmoid(xw[:, H:2 * H] + a[:, H:2 * H])
                n = jnp.tanh(xw[:, 2 * H:] + r * a[:, 2 * H:])
                h = (1 - z) * n + z * h + eps
            else:
                h = jnp.tanh(xw + h @ Whh_T + bhh) + eps
            return h, h

        xw = x @ params["weight_ih"].T + params["bias_ih"]          # the whole input projection, one product
        h0 = jnp.zeros((B, H), x.dtype)
        _, hs = lax.scan(step, (h0, h0) if cell == "lstm" else h0, (xw, eps))
        return jnp.sum(hs * g), hs

    f = jax.jit(jax.grad(loss, argnums=(0, 1, 2), has_aux=True))
    args = ({k: jnp.asarray(v) for k, v in p.items()}, jnp.asarray(X), jnp.zeros(X.shape[:2] + (H,), X.dtype),
            jnp.asarray(G))

    def run():
        return jax.block_until_ready(f(*args))

    def result():
        (dp, dx, dh), hs = run()
        return dict(h=np.asarray(hs), dh=np.asarray(dh), dx=np.asarray(dx),
                    **{k: np.asarray(v) for k, v in dp.items()})

    t0 = time.perf_counter()
    run()
    run.compile_s = time.perf_counter() - t0      # trace + XLA compile + the first call
    run.result = result
    return run


# --------------------------------------------------------------------------------------------------- torch
def _torch_jobs(cell, p, X, G, dtype):
    tdt = torch.float64 if dtype == "float64" else torch.float32
    T, B, D = X.shape
    H = p["weight_hh"].shape[1]
    Cell = {"rnn": torch.nn.RNNCell, "lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}[cell]
    Layer = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    tcell = Cell(D, H).to(tdt)
    layer = Layer(D, H).to(tdt)
    with torch.no_grad():
        for k, v in p.items():
            getattr(tcell, k).copy_(torch.from_numpy(v))
            getattr(layer, k + "_l0").copy_(torch.from_numpy(v))
    x = torch.tensor(X, dtype=tdt, requires_grad=True)
    g = torch.tensor(G, dtype=tdt)
    gs = list(g.unbind(0))
    keep = {}

    def run_cell():
        tcell.zero_grad(set_to_none=True)
        x.grad = None
        h = torch.zeros(B, H, dtype=tdt)
        c = torch.zeros(B, H, dtype=tdt)
        hs = []
        for t in range(T):
            if cell == "lstm":
                h, c = tcell(x[t], (h, c))
            else:
                h = tcell(x[t], h)
            h.retain_grad()
            hs.append(h)
        torch.autograd.backward(hs, gs)
        keep["cell"] = hs

    def run_fused():
        layer.zero_grad(set_to_none=True)
        x.grad = None
        y, _ = layer(x)
        y.backward(g)
        keep["fused"] = y

    def cell_result():
        run_cell()
        hs = keep["cell"]
        return dict(h=torch.stack(hs).detach().numpy(), dh=torch.stack([h.grad for h in hs]).numpy(),
                    dx=x.grad.numpy().copy(), **{k: v.grad.numpy().copy() for k, v in tcell.named_parameters()})

    def fused_result():
        run_fused()
        return dict(h=keep["fused"].detach().numpy().copy(), dx=x.grad.numpy().copy(),
                    **{k.removesuffix("_l0"): v.grad.numpy().copy() for k, v in layer.named_parameters()})

    run_cell.result, run_fused.result = cell_result, fused_result
    return run_cell, run_fused


# ------------------------------------------------------------------------------------------------------ jobs
def jobs(cell, H, B, T, dtype, with_numpy=True, with_jax=True, with_torch=True):
    """{name: a function that runs the job once}; each has ``.result()`` (the arrays to check) but NumPy's
    (the reference is the readable maths, not a peer: its results are checked by the unit tests)."""
    sim = Simulation(scenario(cell, H, B, T, dtype))

    def run_rnnsim():
        sim.forward()
        sim.backward()

    def rnnsim_result():
        run_rnnsim()
        return dict(h=sim._ws.h.copy(), dh=sim._ws.dh.copy(), dx=sim._ws.dx.copy(),
                    **{k: v.copy() for k, v in sim.grads.items() if not k.startswith("readout")})

    run_rnnsim.sim = sim
    run_rnnsim.result = rnnsim_result
    X = sim._X.copy()
    p = {k: v.copy() for k, v in sim.params.items() if not k.startswith("readout")}
    sim.forward()
    G = sim._dout @ sim.params["readout.weight"]            # the readout's part of dL/dh_t: the peers' upstream
    out = {"rnnsim": run_rnnsim}
    if with_numpy:
        ref = REFS[cell]
        dh_out = np.ascontiguousarray(G)

        def run_numpy():
            fw = ref.reference_forward(X, p)
            ref.reference_backward(X, p, fw, dh_out)
        out["numpy"] = run_numpy
    if torch is not None and with_torch:
        out["torch-cell"], out["torch-fused"] = _torch_jobs(cell, p, X, G, dtype)
    if with_jax and jax_module() is not None:
        out["jax"] = _jax_job(cell, p, X, G)
    return out


def check(fns, dtype):
    """Run each implementation once and compare its arrays with rnnsim's: {name: worst relative difference}
    (max |a − b| / max |b| over the arrays both keep), and the names above ``TOL[dtype]`` (not equal)."""
    t0 = time.perf_counter()
    ref = fns["rnnsim"].result()
    fns["rnnsim"].first_s = time.perf_counter() - t0
    worst, bad = {}, []
    for name, f in fns.items():
        if name == "rnnsim" or not hasattr(f, "result"):
            if name != "rnnsim":
                t0 = time.perf_counter()
                f()
                f.first_s = time.perf_counter() - t0
            continue
        t0 = time.perf_counter()
        got = f.result()
        f.first_s = time.perf_counter() - t0
        errs = {}
        for k, v in got.items():
            scale = float(np.max(np.abs(ref[k]))) or 1.0
            errs[k] = float(np.max(np.abs(v.astype(np.float64) - ref[k]))) / scale
        key = max(errs, key=errs.get)
        worst[name] = errs[key]
        if not errs[key] <= TOL[dtype]:
            bad.append(name)
    return worst, bad


# ----------------------------------------------------------------------------------------------------- timing
def rounds(fns, min_rounds=MIN_ROUNDS, budget=0.0, max_rounds=200, warm=True):
    """Seconds per call of each function (a list of samples): rounds of one call each, round r starting at the
    r-th function (rotating order), at least ``min_rounds`` rounds and until ``budget`` seconds have passed.
    One warm-up call each first (in order; ``warm`` False: the caller made it, e.g. ``check``)."""
    names = list(fns)
    for k in names if warm else ():
        fns[k]()
    times = {k: [] for k in names}
    start = time.perf_counter()
    r = 0
    while r < max_rounds and (r < min_rounds or time.perf_counter() - start < budget):
        for i in range(len(names)):
            k = names[(r + i) % len(names)]
            t0 = time.perf_counter()
            fns[k]()
            times[k].append(time.perf_counter() - t0)
        r += 1
    return times


def spread(samples):
    """Interquartile range / median of at least 3 samples, else None."""
    if len(samples) < 3:
        return None
    q1, _, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return (q3 - q1) / statistics.median(samples)


def loadavg() -> str:
    """'/proc/loadavg'-style 1, 5, 15 minute load averages."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


@contextlib.contextmanager
def pinned(core, n_threads=1):
    """Every thread of this process on ``core`` (os.sched_setaffinity per thread: the BLAS, torch and XLA pools
    exist already), torch and the BLAS on ``n_threads``; restored after. ``core`` None: all cores, threads as
    they were."""
    if core is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    tids = [int(t) for t in os.listdir("/proc/self/task")]
    old = {}
    for tid in tids:
        try:
            old[tid] = os.sched_getaffinity(tid)
            os.sched_setaffinity(tid, {core})
        except OSError:   # a thread that ended meanwhile
            pass
    old_threads = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(n_threads)
    try:
        with threadpool_limits(limits=n_threads):
            yield
    finally:
        if torch is not None:
            torch.set_num_threads(old_threads)
        for tid, mask in old.items():
            try:
                os.sched_setaffinity(tid, mask)
            except OSError:
                pass
        # threads started while pinned (torch's, XLA's) inherited the pin: free them too
        every = set.union(*old.values()) if old else set(range(os.cpu_count() or 1))
        for t in os.listdir("/proc/self/task"):
            if int(t) not in old:
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(int(t), every)


def busy_core(core):
    """A process spinning on ``core`` (the 'other core busy' measurement); call .terminate() and .wait() on it. A
    fresh interpreter (not a fork of this process, whose torch and XLA threads make fork unsafe)."""
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-c", f"import os\nos.sched_setaffinity(0, {{{core}}})\nwhile True: pass"])
