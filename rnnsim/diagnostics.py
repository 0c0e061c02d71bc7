"""What the views show, computed from a Simulation: gradient profiles, Jacobian norms, the spectrum of W_hh and
the Pascanu et al. (2013) condition, gate statistics, input influence, and a decay summary in words.

Every function reads the Simulation's arrays and returns NumPy arrays or small dataclasses; none changes the
Simulation. They describe the latest pass (``sim.t`` forward steps, ``sim.bt`` BPTT steps), which stays readable
after ``apply_update``/``train`` until the next forward begins. Steps a stepped pass has not reached are NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rnnsim.cells import CELLS
from rnnsim.cells.base import candidate_matrix


def _batch_mean_norm(a):
    """(T, B, K) time-major array -> (T,) mean over the batch of the per-sample 2-norm."""
    return np.linalg.norm(a, axis=2).mean(axis=1)


def _layer(sim, layer):
    """The layer a diagnostic reads: ``layer`` (0 = the bottom one), or by default the last (the readout's)."""
    n = getattr(sim, "num_layers", 1)
    if layer is None:
        return n - 1
    if not 0 <= layer < n:
        raise ValueError(f"layer {layer}: the network has {n} layer{'s' if n > 1 else ''} (0 to {n - 1})")
    return layer


def _steps(sim, layer):
    """(forward steps, BPTT steps) of ``layer`` in the latest pass (a single-layer sim: (t, bt))."""
    return sim.layer_steps(layer) if hasattr(sim, "layer_steps") else (sim.t, sim.bt)


def _ws(sim, layer):
    return sim.layer_workspace(layer) if hasattr(sim, "layer_workspace") else sim.workspace


def _params(sim, layer):
    return sim.layer_params(layer) if hasattr(sim, "layer_params") else sim.params


def gradient_profile(sim, layer: int | None = None) -> np.ndarray:
    """‖dL/dh_t‖ for t = 0..T−1, the 2-norm per sample averaged over the batch (total gradient: through the readout
    at t and through the recurrence; below the top of a stack, through the layer above). NaN where BPTT has not
    reached yet. ``layer``: which layer of a stack (default: the last)."""
    layer = _layer(sim, layer)
    out = np.full(sim.T, np.nan)
    lo = sim.T - _steps(sim, layer)[1]   # BPTT steps of the latest pass; still valid after apply_update
    out[lo:] = _batch_mean_norm(_ws(sim, layer).dh[lo:])
    return out


def depth_profile(sim) -> np.ndarray:
    """(N, T): ‖dL/dh_t^l‖ of every layer l (rows, 0 = the bottom layer) and step t, batch mean; NaN where BPTT
    has not reached. Where the gradient dies over depth and over time (the TUI's depth × time map)."""
    return np.stack([gradient_profile(sim, layer) for layer in range(getattr(sim, "num_layers", 1))])


def input_influence(sim) -> np.ndarray:
    """‖dL/dx_t‖ for t = 0..T−1, batch mean (recency bias shows as mass at the last steps). NaN before BPTT ends."""
    if _steps(sim, 0)[1] < sim.T:
        return np.full(sim.T, np.nan)
    return _batch_mean_norm(_ws(sim, 0).dx)


def influence_share_last(influence, fraction=0.1) -> float:
    """Share of the total input influence that falls on the last ``fraction`` of positions."""
    influence = np.asarray(influence, dtype=float)
    k = max(1, int(math.ceil(fraction * len(influence))))
    total = np.nansum(influence)
    return float(np.nansum(influence[-k:]) / total) if total > 0 else math.nan


# ---------------------------------------------------------------------------------------------- Jacobians
def step_jacobians(sim, t: int, batch=slice(None), layer: int | None = None) -> np.ndarray:
    """The Jacobians of the recurrent state at step t with respect to the state at t − 1, per sample: (b, S, S).

    The state is h_t (S = H) for the RNN and GRU, and (h_t, c_t) for the LSTM (S = 2H), since the gradient flows
    back through both (the cell's ``STATE``). With h_{-1} = c_{-1} = 0 at t = 0. Needs step t done forward.
    The attention cell has no recurrent state: a ValueError. (Each cell's ``step_jacobian``.) ``layer``: the
    layer of a stack whose recurrence it is (default: the last).
    """
    layer = _layer(sim, layer)
    return CELLS[sim.cell_name].step_jacobian(_ws(sim, layer), _params(sim, layer), sim.scenario.model, t, batch)


def jacobian_norms(sim, max_batch: int = 8, layer: int | None = None, t0: int = 0,
                   t1: int | None = None) -> np.ndarray:
    """Spectral norm ‖∂s_t/∂s_{t-1}‖₂ per step, averaged over the first ``max_batch`` samples; NaN where the
    forward pass has not reached. Below 1 step after step, the gradient must shrink (vanishing).
    All NaN for the attention cell (no recurrence). ``layer``: which layer of a stack (default: the last).
    ``t0``, ``t1``: only the steps in [t0, t1) (NaN elsewhere): a large state costs ~40 ms per step (8 SVDs of
    512 x 512 for an LSTM at H = 256), so the TUI computes them a slice at a time (rnnsim.play)."""
    layer = _layer(sim, layer)
    out = np.full(sim.T, np.nan)
    if not CELLS[sim.cell_name].STATE:
        return out
    b = slice(0, min(sim.B, max_batch))
    done = _steps(sim, layer)[0]
    for t in range(max(t0, 0), done if t1 is None else min(t1, done)):
        out[t] = spectral_norms(step_jacobians(sim, t, b, layer)).mean()
    return out


SPECTRAL_EIGH_FROM = 128
"""From this state size on, :func:`spectral_norms` takes the eigenvalues of JᵀJ instead of the SVD."""


def spectral_norms(J: np.ndarray) -> np.ndarray:
    """‖J_i‖₂ of each matrix of a stack (n, S, S). Below S = SPECTRAL_EIGH_FROM, or when J has a NaN or an infinity,
    the SVD's largest singular value (so the golden set's numbers stay bit for bit); from there on, where the SVD
    costs (~40 ms per matrix at S = 512), the square root of the largest eigenvalue of J_iᵀJ_i (LAPACK's symmetric
    eigensolver: ~2x faster, the same to 1e-13)."""
    if J.shape[-1] < SPECTRAL_EIGH_FROM or not np.isfinite(J).all():
        return np.linalg.svd(J, compute_uv=False)[:, 0]
    return np.sqrt(np.maximum(np.linalg.eigvalsh(np.matmul(J.transpose(0, 2, 1), J))[:, -1], 0.0))


# ---------------------------------------------------------------------------------------------- spectrum
@dataclass(frozen=True)
class Spectrum:
    eigenvalues: np.ndarray  #: eigenvalues of the recurrent matrix (RNN: W_hh; LSTM/GRU: the candidate block)
    radius: float            #: spectral radius ρ
    sigma_max: float         #: largest singular value σ_max
    gamma: float             #: bound on |φ'|: 1 for tanh and relu
    bound: float             #: 1/γ
    verdict: str             #: the Pascanu et al. 2013 condition in words


def spectrum(sim, layer: int | None = None) -> Spectrum:
    """Eigenvalues and σ_max of the recurrent weights, and the Pascanu, Mikolov & Bengio (2013) condition:
    σ_max < 1/γ is sufficient for vanishing gradients; σ_max > 1/γ is necessary for exploding ones.
    ``layer``: whose W_hh in a stack (default: the last)."""
    m = sim.scenario.model
    cell = CELLS[m.cell]
    if cell.G == 0:
        return Spectrum(np.zeros(0, dtype=complex), math.nan, math.nan, 1.0, 1.0,
                        "does not apply: the attention cell has no recurrent matrix (no W_hh; nothing is "
                        "multiplied step after step)")
    W = candidate_matrix(cell, _params(sim, _layer(sim, layer))["weight_hh"].astype(np.float64))
    eig = np.linalg.eigvals(W)
    smax = float(np.linalg.svd(W, compute_uv=False)[0])
    gamma = 1.0
    bound = 1.0 / gamma
    if cell.CANDIDATE_BLOCK is not None:
        verdict = (f"gated cell: the condition is for plain RNNs; the gates scale the Jacobian "
                   f"(see the per-step norms); candidate block σ_max = {smax:.3g}")
    elif m.layernorm:
        verdict = (f"LayerNorm rescales the pre-activation each step, so σ_max = {smax:.3g} alone decides "
                   f"neither vanishing nor exploding")
    elif smax < bound:
        verdict = f"vanishing guaranteed: σ_max = {smax:.3g} < 1/γ = {bound:.3g}"
    else:
        verdict = f"exploding possible: σ_max = {smax:.3g} ≥ 1/γ = {bound:.3g} (necessary, not sufficient)"
    return Spectrum(eig, float(np.abs(eig).max()), smax, gamma, bound, verdict)


def gate_means(sim, layer: int | None = None) -> dict[str, np.ndarray]:
    """Mean gate activations per step over the batch and units, for the steps done forward:
    LSTM "input", "forget", "output"; GRU "reset", "update"; RNN none (each cell's GATE_STATS).
    ``layer``: which layer of a stack (default: the last)."""
    layer = _layer(sim, layer)
    t_done = _steps(sim, layer)[0]
    out = {}
    for name, v in CELLS[sim.cell_name].gate_means(_ws(sim, layer), t_done).items():
        full = np.full(sim.T, np.nan)
        full[:t_done] = v
        out[name] = full
    return out


# ---------------------------------------------------------------------------------------------- attention
def attention_weights(sim) -> np.ndarray:
    """(T, T) batch-mean attention weights α[t, j]: how much the output at step t reads position j. From the
    attention readout (α over h_0..h_t) or the attention cell (α over positions 0..t). NaN above the diagonal
    (j > t, masked) and in rows the forward pass has not reached. ValueError for a model without attention."""
    ws = sim.workspace
    if getattr(sim, "attention_readout", False):
        alpha = ws.ro_alpha
    elif sim.scenario.model.cell == "attention":
        alpha = ws.alpha
    else:
        raise ValueError("no attention weights: use model.readout = 'attention' or model.cell = 'attention'")
    T = sim.T
    out = np.full((T, T), np.nan)
    n = sim.t
    out[:n] = alpha[:n].astype(np.float64).mean(axis=1)
    out[np.triu_indices(T, 1)] = np.nan
    return out


# ---------------------------------------------------------------------------------------------- summary
_SUP = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _pow10(e: int) -> str:
    return "10" + str(e).translate(_SUP)


@dataclass(frozen=True)
class DecaySummary:
    ratio: float           #: ‖dL/dh_0‖ / ‖dL/dh_{T-1}‖
    rate: float            #: geometric mean factor per step back in time, ratio^(1/(T−1))
    t_at_1e3: int | None   #: the latest t at which the gradient is down to 10⁻³ of the last step's (None: never)
    text: str              #: the same in words


def decay_summary(profile) -> DecaySummary:
    """Summarise a gradient profile: e.g. "×0.82 per step; 10⁻³ of the last step's gradient by t = 63"."""
    p = np.asarray(profile, dtype=float)
    T = len(p)
    if T < 2 or not np.isfinite(p).all():
        nan = np.isnan(p)
        # BPTT runs from t = T−1 down to 0, so the steps a stepped pass has not reached are a NaN prefix
        not_reached = nan.all() or bool(np.isfinite(p[int(nan.argmin()):]).all())
        if np.isfinite(p).all() or not_reached:
            return DecaySummary(math.nan, math.nan, None, "needs a complete backward pass" if T >= 2 else "T = 1")
        return DecaySummary(math.nan, math.nan, None, "non-finite gradient: it exploded")
    last, first = p[-1], p[0]
    if last == 0.0:
        return DecaySummary(math.nan, math.nan, None, "zero gradient at the last step (dead units?)")
    ratio = first / last
    rate = ratio ** (1.0 / (T - 1)) if ratio > 0 else 0.0
    below = np.nonzero(p <= 1e-3 * last)[0]
    t3 = int(below[-1]) if len(below) else None
    if ratio == 0.0:
        text = f"falls to exactly 0 by t = {t3}"
    elif rate < 1.0:
        text = f"×{rate:.3g} per step back in time; "
        text += (f"10⁻³ of the last step's gradient by t = {t3}" if t3 is not None
                 else f"still {ratio:.2g} of the last step's gradient at t = 0")
    else:
        text = f"×{rate:.3g} per step back in time; grows to {ratio:.3g}× the last step's gradient at t = 0"
    if ratio > 0:
        text += f" (ratio ‖dL/dh_0‖/‖dL/dh_{T - 1}‖ ≈ {_pow10(int(math.floor(math.log10(ratio))))})" \
            if ratio < 1e-2 or ratio > 1e2 else ""
    return DecaySummary(float(ratio), float(rate), t3, text)


# ---------------------------------------------------------------------------------------- memory capacity
@dataclass(frozen=True)
class MemoryCapacity:
    delays: np.ndarray     #: k = 0, 1, ..., K−1
    per_delay: np.ndarray  #: MC(k) = r²(u_{t−k}, best linear readout of h_t), measured on held-out steps
    total: float           #: Σ_k MC(k); Jaeger (2001): at most H for i.i.d. input
    hidden_size: int


def memory_capacity(scenario, max_delay: int | None = None, length: int = 4000, washout: int = 200,
                    ridge: float = 1e-8) -> MemoryCapacity:
    """Short-term memory capacity (Jaeger 2001) of the scenario's network at its initial weights.

    Drives the network with one long i.i.d. sequence u_t ~ U(−0.5, 0.5) (the delayed_recall task's input), drops
    the first ``washout`` states, and for each delay k fits a ridge readout ĥ_k(h_t) ≈ u_{t−k} on the first half
    of the remaining steps. MC(k) is the squared correlation between the readout's prediction and u_{t−k} on the
    second half (held out, so a large H cannot overfit its way past the bound). MC = Σ_k MC(k) ≤ H.
    """
    from rnnsim.simulation import Simulation

    H = scenario.model.hidden_size
    K = 2 * H if max_delay is None else int(max_delay)
    K = min(K, washout)
    from rnnsim.scenario import ScenarioError

    drive = {"task.kind": "delayed_recall", "task.delay": 0, "task.batch_size": 1, "task.length": washout + length}
    try:
        sc = scenario.with_changes(drive)
    except ScenarioError:   # a weights file made for other input/output sizes: the init's network is measured
        if scenario.model.weights is None:
            raise
        sc = scenario.with_changes(drive | {"model.weights": None})
    sim = Simulation(sc)
    sim.forward()
    h = sim.hidden[0].astype(np.float64)
    u = sim.inputs[0, :, 0].astype(np.float64)
    X = h[washout:]
    half = len(X) // 2
    Xtr, Xte = X[:half], X[half:]
    mu = Xtr.mean(axis=0)
    A = Xtr - mu
    # one factorisation serves every delay: W = (AᵀA + λ I)⁻¹ Aᵀ y
    gram = A.T @ A + ridge * len(A) * np.eye(H)
    per = np.zeros(K)
    for k in range(K):
        y = u[washout - k: len(u) - k]
        ytr, yte = y[:half], y[half:]
        w = np.linalg.solve(gram, A.T @ (ytr - ytr.mean()))
        pred = (Xte - mu) @ w
        if pred.std() > 0 and yte.std() > 0:
            per[k] = np.corrcoef(pred, yte)[0, 1] ** 2
    return MemoryCapacity(np.arange(K), per, float(per.sum()), H)


# ------------------------------------------------------------------------------------- comparisons (views)
def influence_by_cell(scenario, cells=("rnn", "lstm", "attention"), samples: int = 256, fraction: float = 0.1):
    """Input influence ‖dL/dx_t‖ over positions, averaged over ``samples`` sequences, for each cell on the same
    task, seed and data; with the share of influence in the last ``fraction`` of positions (recency bias).
    Returns {cell: (influence (T,), share)}."""
    from rnnsim import datasets
    from rnnsim.simulation import Simulation

    samples = min(samples, datasets.max_batch(scenario.task) or samples)   # a data task has so many sequences
    out = {}
    for cell in cells:
        other = {"model.weights": None} if cell != scenario.model.cell else {}  # a weights file fits its cell only
        if cell == "attention":   # one self-attention layer: a stack's num_layers does not apply
            other |= {"model.num_layers": 1}
        sim = Simulation(scenario.with_changes({"model.cell": cell, "task.batch_size": samples} | other))
        sim.forward()
        sim.backward()
        infl = input_influence(sim)
        out[cell] = (infl, influence_share_last(infl, fraction))
    return out


@dataclass(frozen=True)
class ParallelPoint:
    cell: str
    length: int
    dependent_steps: int    #: operations that must run one after another in the forward pass
    max_path_length: int    #: longest input-to-output path, in layers/steps (Vaswani et al. 2017, table 1)
    forward_s: float        #: measured wall time of one forward pass (median of the repeats)
    backward_s: float       #: measured wall time of one backward pass (median of the repeats)
    spread: float = 0.0     #: (max − min) / median of the repeats' forward+backward times: how busy the machine was
    repeats: int = 1        #: passes timed (after a warm-up)


def parallel_timing(scenario, lengths=(16, 32, 64, 128, 256, 512, 1024, 2048), cells=("rnn", "attention"),
                    repeats: int = 5, batch_size: int = 4, budget_s: float = 1.0):
    """Sequential operations counted, and forward/backward time measured, for each cell as the length T grows.

    Times are the median of ``repeats`` passes after a warm-up (at least 3 and fewer than ``repeats`` once a point
    has taken ``budget_s`` seconds: the long attention passes), with the spread (max − min)/median: on a shared
    machine (the TUI's own threads, other users of a lab server) one pass can take many times another, and the
    spread says so instead of hiding it."""
    import time

    from rnnsim.simulation import Simulation

    points = []
    for cell in cells:
        for T in lengths:
            one = {"model.num_layers": 1} if cell == "attention" else {}   # attention: one layer
            sc = scenario.with_changes({"model.cell": cell, "task.length": int(T), "task.batch_size": batch_size,
                                        "task.kind": "random", "model.weights": None, **one})
            sim = Simulation(sc)
            sim.forward()   # warm-up (and JIT on the first call)
            sim.backward()
            fw, bw = [], []
            start = time.perf_counter()
            while len(fw) < max(repeats, 1) and (len(fw) < min(3, repeats) or time.perf_counter() - start < budget_s):
                t0 = time.perf_counter()
                sim.forward()
                t1 = time.perf_counter()
                sim.backward()
                t2 = time.perf_counter()
                fw.append(t1 - t0)
                bw.append(t2 - t1)
            total = np.add(fw, bw)
            mid = float(np.median(total))
            points.append(ParallelPoint(cell, int(T), int(sim.dependent_steps), int(sim.max_path_length),
                                        float(np.median(fw)), float(np.median(bw)),
                                        float((total.max() - total.min()) / mid) if mid > 0 else 0.0, len(fw)))
    return points
