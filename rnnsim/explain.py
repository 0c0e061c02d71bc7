"""Explain the numbers at one time step: each formula with the values plugged in, from the arrays the kernels wrote.

``explain(sim, t)`` returns an :class:`Explanation`: a list of :class:`Line` (a label, the formula, the values
plugged in, the result), in sections, for the TUI's explain panel (key ``e``) and for tests. Nothing is estimated
from elsewhere: ‖dL/dh_t‖ is recomputed as ‖J_{t+1}ᵀ dL/dh_{t+1} + ∂ℓ_t/∂h_t‖ from ``grad_hidden``, the readout's
gradient at t (recomputed from dL/dout and the readout weights) and the step Jacobian the cell provides
(``cell.step_jacobian``), next to the kernel's own ‖dL/dh_t‖, so the two can be compared.

Sample b (default 0, the heatmap's) is explained per sample; batch means are labelled as such. Numbers a pass has
not reached yet are named as missing, not shown stale. After an update the weights are no longer those the pass
used, so the numbers that need them (Jacobians, the readout's gradient) are named as missing too.
Nothing here imports Textual.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from rnnsim.cells import CELLS
from rnnsim.cells.attention import reference_attend_backward
from rnnsim.cells.base import block
from rnnsim.play import Phase

NEEDS_WEIGHTS = ("the update changed the weights after this pass; this needs the weights the pass used "
                 "(step on with n: the next forward pass brings it back)")


@dataclass(frozen=True)
class Line:
    """One line of an explanation. ``kind``: "heading", "formula" (label, formula, values, result), "note" (text),
    "missing" (a number that is not there yet, and why)."""

    kind: str
    label: str
    formula: str = ""
    values: tuple[tuple[str, float], ...] = ()   #: (symbol, value) plugged into the formula, in order
    result: float | None = None                  #: what the formula gives
    text: str = ""                               #: words: a verdict, a reason
    key: str = ""                                #: a stable name ("grad", "identity", ...) for lookups and tests

    def value(self, symbol: str) -> float:
        return dict(self.values)[symbol]


@dataclass(frozen=True)
class Explanation:
    t: int
    lines: list[Line] = field(default_factory=list)

    def line(self, key: str) -> Line:
        """The line with this key (KeyError if absent)."""
        for ln in self.lines:
            if ln.key == key:
                return ln
        raise KeyError(key)

    def keys(self) -> list[str]:
        return [ln.key for ln in self.lines if ln.key]

    def text_lines(self) -> list[str]:
        """Plain text, one string per line (the panel wraps them)."""
        return [s for ln in self.lines for s in format_line(ln)]


def num(x: float) -> str:
    """A number as the panel shows it: 4 significant digits; NaN and ±inf in words."""
    x = float(x)
    if math.isnan(x):
        return "NaN (not finite)"
    if math.isinf(x):
        return ("+" if x > 0 else "−") + "inf (not finite)"
    if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e5):
        return f"{x:.3e}"
    return f"{x:.4g}"


def format_line(ln: Line) -> list[str]:
    if ln.kind == "heading":
        return ["", f"── {ln.label}"]
    if ln.kind in ("note", "missing"):
        prefix = "not there yet: " if ln.kind == "missing" else ""
        return [f"{ln.label}: {prefix}{ln.text}" if ln.label else f"{prefix}{ln.text}"]
    out = [f"{ln.label}" + (f" = {ln.formula}" if ln.formula else "")]
    plugged = ", ".join(f"{s} = {num(v)}" for s, v in ln.values)
    if not plugged and ln.result is not None:
        out[0] += f" = {num(ln.result)}"
    elif plugged:
        out.append("    " + plugged + (f"  →  {num(ln.result)}" if ln.result is not None else ""))
    if ln.text:
        out.append("    " + ln.text)
    return out


# ------------------------------------------------------------------------------------------------ helpers
def _norm(v) -> float:
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.linalg.norm(v))


def _finite(*arrays) -> bool:
    return all(bool(np.isfinite(a).all()) for a in arrays)


def _sigma_max(M) -> float:
    """Largest singular value; NaN when M is not finite (an SVD of NaN does not converge)."""
    M = np.asarray(M, dtype=np.float64)
    if not _finite(M):
        return math.nan
    return float(np.linalg.svd(M, compute_uv=False)[0]) if M.size else 0.0


def readout_gradient(sim, t: int, b: int, params=None) -> np.ndarray:
    """∂ℓ/∂h_t of sample b through the readout (not through the recurrence), recomputed from dL/dout and the
    readout weights: dout_t W_o for the linear readout; with the attention readout also every later output that
    reads h_t as key and value, and h_t as the query (the readout's backward, in plain NumPy)."""
    H, P = sim.H, top_layer_params(sim, sim.params) if params is None else params
    dout = sim._dout[:, b].astype(np.float64)                    # (T, O): dL/dout_t
    W = P["readout.weight"].astype(np.float64)
    if not sim.attention_readout:
        return dout[t] @ W
    ws = sim.workspace
    h = ws.h[:, b].astype(np.float64)
    q = ws.ro_q[:, b].astype(np.float64)
    alpha = ws.ro_alpha[:, b].astype(np.float64)
    dc = dout @ W[:, H:]
    dq, dk, dv = reference_attend_backward(q[:, None], h[:, None], h[:, None], alpha[:, None], dc[:, None])
    direct = dout[t] @ W[:, :H]
    return direct + dk[t, 0] + dv[t, 0] + dq[t, 0] @ P["attn.query.weight"].astype(np.float64)


def recurrent_gradient(sim, t: int, b: int, params=None) -> np.ndarray:
    """J_{t+1}ᵀ dL/ds_{t+1}, its h part: what reaches h_t of sample b from step t+1 (zero at t = T−1 and for the
    attention cell). J_{t+1} = ∂s_{t+1}/∂s_t is the cell's step Jacobian; s = h, or (h, c) for the LSTM, whose
    dL/dc_{t+1} (with h_{t+1} held: the cell-state carry) is rebuilt from grad_hidden and the gates, t = T−1 down."""
    cell = CELLS[sim.cell_name]
    ws, H, T = sim.workspace, sim.H, sim.T
    if not cell.STATE or t == T - 1:
        return np.zeros(H)
    P = top_layer_params(sim, sim.params) if params is None else params
    J = cell.step_jacobian(ws, P, sim.scenario.model, t + 1, slice(b, b + 1))[0]
    g = ws.dh[t + 1, b].astype(np.float64)
    if sim.cell_name != "lstm":
        return J.T @ g
    carry = np.zeros(H)   # dL/dc_k with h_k held, k = T−1 (nothing later), then down to t+1
    for k in range(T - 1, t + 1, -1):
        gates = ws.gates[k, b].astype(np.float64)
        f, o = gates[block(1, H)], gates[block(3, H)]
        tc = np.tanh(ws.c[k, b].astype(np.float64))
        dc = carry + ws.dh[k, b].astype(np.float64) * o * (1.0 - tc * tc)
        carry = dc * f
    return (J.T @ np.concatenate([g, carry]))[:H]


class PassWeights:
    """Copies of the parameters a pass used, taken just before the update that ends its iteration (``keep``), and
    handed back (``get``) only while they still belong to the arrays on show: the same parameter arrays (no
    rebuild since), one update later, between iterations."""

    def __init__(self) -> None:
        self._copy: dict | None = None
        self._ref = None
        self._iteration = -1

    def keep(self, sim) -> None:
        self._copy = {k: v.copy() for k, v in sim.params.items()}
        self._ref, self._iteration = sim.params, sim.iteration

    def get(self, sim) -> dict | None:
        ok = (self._copy is not None and self._ref is sim.params and sim.iteration == self._iteration + 1
              and sim.phase == Phase.IDLE)
        return self._copy if ok else None


# ------------------------------------------------------------------------------------------------ explain
def explain(sim, t: int, b: int = 0, pass_params: dict | None = None) -> Explanation:
    """Every number the Dynamics view shows at step t, as formulas with values, for sample b.

    ``pass_params``: copies of the parameters the last pass used (kept by the caller before the update, see
    :class:`PassWeights`), so that after an update the Jacobians and the readout's gradient can still be written;
    without them those numbers are named as missing."""
    T = sim.T
    t = min(max(int(t), 0), T - 1)
    b = min(max(int(b), 0), sim.B - 1)
    m = sim.scenario.model
    cell = CELLS[m.cell]
    lines: list[Line] = []
    add = lines.append
    top = getattr(sim, "num_layers", 1) - 1        # a stack: the top layer is explained (its readout term)
    done_t, done_bt = progress(sim)
    fw = t < done_t                                # the forward pass has written step t
    bw = done_bt > 0 and t >= T - done_bt          # BPTT has written step t
    updated = sim.phase == Phase.IDLE and sim.t > 0
    chunked = bool(getattr(sim.workspace, "K", 0))
    P = current = top_layer_params(sim, sim.params)
    if updated and pass_params is not None and not (chunked and cell.G > 1):   # chunked gates: current weights
        P, updated = top_layer_params(sim, pass_params), False
    add(Line("note", "", text=f"step t = {t} (of 0..{T - 1}), sample {b} of {sim.B} (the heatmap's), "
                              f"{cell.describe(m)}, iteration {sim.iteration}, phase {str(sim.phase)}"))
    if sim.sentinel is not None:
        add(Line("note", "non-finite", text=f"{sim.sentinel}; numbers after it are NaN or inf and shown as such",
                 key="sentinel"))
    if top:
        add(Line("note", "layer", key="layer",
                 text=f"the top layer ({top + 1} of {top + 1}): the one the readout reads; its J and gates"))
    if P is not current:
        add(Line("note", "weights", key="pass_weights",
                 text="those the pass used, kept before the update that followed it (Pascanu: the current W_hh)"))
    with np.errstate(all="ignore"):
        _gradient(sim, t, b, bw, updated, add, P)
        _cell_lines(sim, t, b, fw, updated, chunked, add, P)
        _pascanu(sim, add, current)
    return Explanation(t, lines)


def progress(sim) -> tuple[int, int]:
    """(forward steps, BPTT steps) of the explained layer (the top one of a stack) in the latest pass."""
    top = getattr(sim, "num_layers", 1) - 1
    return sim.layer_steps(top) if top else (sim.t, sim.bt)


def top_layer_params(sim, params: dict) -> dict:
    """``params`` with a stack's top-layer tensors under the cell's own names (``weight_hh_l2`` -> ``weight_hh``),
    the readout's kept, the lower layers' left out; a one-layer Simulation's unchanged."""
    top = getattr(sim, "num_layers", 1) - 1
    if top == 0:
        return params
    suffix = f"_l{top}"
    out = {}
    for name, value in params.items():
        if name.endswith(suffix):
            out[name[:-len(suffix)]] = value
        elif re.search(r"_l\d+$", name) is None:
            out[name] = value
    return out


def _gradient(sim, t, b, bw, updated, add, P) -> None:
    T, ws = sim.T, sim.workspace
    add(Line("heading", "gradient ‖dL/dh_t‖ (BPTT runs from t = T−1 down to 0)"))
    if not bw:
        why = ("needs a complete forward pass first, then BPTT from T−1" if sim.phase in (Phase.IDLE, Phase.FORWARD)
               else f"BPTT has done t = {T - 1}..{T - progress(sim)[1]}" if progress(sim)[1]
               else "BPTT has not started")
        add(Line("missing", "‖dL/dh_t‖, ‖∂ℓ_t/∂h_t‖, J_{t+1}ᵀ dL/dh_{t+1}, ratio", text=why, key="grad"))
        return
    norms = np.linalg.norm(ws.dh.astype(np.float64), axis=2)      # (T, B) per sample
    mean_t, mean_last = float(norms[t].mean()), float(norms[T - 1].mean())
    add(Line("formula", "‖dL/dh_t‖ (the plot's: batch mean)", "mean over the batch of ‖dL/dh_t‖",
             (("B", sim.B),), mean_t, key="grad"))
    add(Line("formula", "ratio to the last step's", "‖dL/dh_t‖ / ‖dL/dh_{T−1}‖ (batch means)",
             (("‖dL/dh_t‖", mean_t), ("‖dL/dh_{T−1}‖", mean_last)), mean_t / mean_last if mean_last else math.nan,
             key="ratio"))
    kernel = float(norms[t, b])
    if updated:
        add(Line("missing", "‖J_{t+1}ᵀ dL/dh_{t+1} + ∂ℓ_t/∂h_t‖", text=NEEDS_WEIGHTS, key="identity"))
        return
    readout = readout_gradient(sim, t, b, P)
    rec = recurrent_gradient(sim, t, b, P)
    total = _norm(rec + readout)
    jac = ("J_{t+1} = ∂(h,c)_{t+1}/∂(h,c)_t, with dL/dc_{t+1}" if sim.cell_name == "lstm"
           else "J_{t+1} = ∂h_{t+1}/∂h_t")
    if sim.cell_name == "attention":
        text = "attention cell: no recurrence, so no J term (h_t feeds only the readout; path length 1)"
    elif t == T - 1:
        text = "t = T−1: no later step, so the J term is 0"
    else:
        text = jac
    add(Line("formula", f"sample {b}: ‖dL/dh_t‖", "‖J_{t+1}ᵀ dL/dh_{t+1} + ∂ℓ_t/∂h_t‖",
             (("‖J_{t+1}ᵀ dL/dh_{t+1}‖", _norm(rec)), ("‖∂ℓ_t/∂h_t‖", _norm(readout))), total,
             text=f"{text}; the kernel's ‖dL/dh_t‖ = {num(kernel)}", key="identity"))
    where = ("the attention readout: out_t and every later output that reads h_t" if sim.attention_readout
             else "dL/dout_t · W_readout; 0 where t is not in the loss")
    add(Line("note", "∂ℓ_t/∂h_t", text=where))


def _cell_lines(sim, t, b, fw, updated, chunked, add, P) -> None:
    ws = sim.workspace
    name = sim.cell_name
    add(Line("heading", "the step at t (forward pass)"))
    if not fw:
        add(Line("missing", "h_t, ‖J_t‖, gates", text=f"the forward pass has done t < {progress(sim)[0]}" if progress(sim)[0]
                 else "no forward pass yet (press n or space)", key="forward"))
        return
    h = ws.h[t, b].astype(np.float64)
    bad = int((~np.isfinite(ws.h[t])).sum())
    if bad:
        add(Line("note", "h_t not finite", key="h_nonfinite",
                 text=f"{bad} of the batch's {ws.h[t].size} values of h_t are NaN or inf (sample {b}: "
                      f"{int((~np.isfinite(h)).sum())}); the numbers below that use them are NaN or inf too"))
    if name == "rnn":
        _rnn(sim, t, b, h, updated, add, P)
    elif name in ("lstm", "gru"):
        if chunked and sim.phase == Phase.IDLE and sim.t > 0:
            add(Line("missing", "gates", text="chunked mode recomputes the gates from the weights: " + NEEDS_WEIGHTS))
        else:
            (_lstm if name == "lstm" else _gru)(sim, t, b, h, add)
        if updated:
            add(Line("missing", "‖J_t‖", text=NEEDS_WEIGHTS, key="jacobian"))
        else:
            J = CELLS[name].step_jacobian(ws, P, sim.scenario.model, t, slice(b, b + 1))[0]
            s = "(h,c)" if name == "lstm" else "h"
            add(Line("formula", f"‖J_t‖ of sample {b}", f"σ_max(∂{s}_t/∂{s}_{{t−1}})", (), _sigma_max(J),
                     text="the plot's ‖J‖ is the mean of 8 samples", key="jacobian"))
    if name == "attention":
        _attention(sim, ws.alpha, t, b, add, "attention cell: α_tj = softmax_{j≤t}(q_t·k_j/√H)")
        add(Line("note", "path length", text="1: every position reads x_0..x_t in one attention hop, no "
                                             "recurrence (Vaswani et al. 2017, table 1)", key="path"))
    elif sim.attention_readout:
        _attention(sim, ws.ro_alpha, t, b, add, "attention readout: α_tj = softmax_{j≤t}(q_t·h_j/√H)")
        add(Line("note", "path length", text=f"1 from h_j to the output at t through the readout; {t} recurrent "
                                             f"steps from h_0 to h_t", key="path"))
    else:
        add(Line("note", "path length", text=f"{t} recurrent steps from x_0 to h_t (each waits for the previous)",
                 key="path"))


def _rnn(sim, t, b, h, updated, add, P) -> None:
    m, ws = sim.scenario.model, sim.workspace
    relu = m.activation == "relu"
    phi = "relu" if relu else "tanh"
    add(Line("note", "h_t", text=f"h_t = {phi}({'LN(' if m.layernorm else ''}W_ih x_t + b_ih + W_hh h_{{t−1}} + "
                                 f"b_hh{')' if m.layernorm else ''}); max|h_t| = {num(np.abs(h).max())}"))
    if relu:
        active = float((h > 0).mean())
        add(Line("formula", "active units", "share of h_t > 0 (relu′ = 1 there, 0 elsewhere)",
                 (("sample", active), ("batch", float((ws.h[t] > 0).mean()))), active, key="active"))
        dmax = 1.0 if (h > 0).any() else 0.0
        dname = "max relu′(h_t)"
    else:
        dmax = float(np.max(1.0 - h * h))
        dname = "max(1 − h_t²)"
    if updated:
        add(Line("missing", "‖J_t‖ and its bound", text=NEEDS_WEIGHTS, key="jacobian"))
        return
    W = P["weight_hh"].astype(np.float64)
    smax = _sigma_max(W)
    J = CELLS["rnn"].step_jacobian(ws, P, m, t, slice(b, b + 1))[0]
    jn = _sigma_max(J)
    if m.layernorm:
        ahat = ws.ahat[t, b].astype(np.float64)
        rstd = float(ws.rstd[t, b])
        Hn = len(h)
        dln = rstd * (np.eye(Hn) - 1.0 / Hn - np.outer(ahat, ahat) / Hn) * P["ln.weight"][:, None]
        lnn = _sigma_max(dln)
        add(Line("formula", "‖J_t‖ bound (includes the LN Jacobian)",
                 f"{dname} · ‖∂LN/∂a_t‖ · σ_max(W_hh)", ((dname, dmax), ("‖∂LN/∂a_t‖", lnn), ("σ_max(W_hh)", smax)),
                 dmax * lnn * smax, text=f"J_t = diag({phi}′) · ∂LN/∂a_t · W_hh; LN rescales by rstd = "
                                         f"{num(rstd)}", key="jacobian_bound"))
    else:
        add(Line("formula", "‖J_t‖ ≤ bound", f"σ_max(W_hh) · {dname}", (("σ_max(W_hh)", smax), (dname, dmax)),
                 smax * dmax, text=f"J_t = ∂h_t/∂h_{{t−1}} = diag({phi}′(h_t)) W_hh", key="jacobian_bound"))
    add(Line("formula", f"‖J_t‖ of sample {b}", "σ_max(∂h_t/∂h_{t−1})", (), jn,
             text="the plot's ‖J‖ is the mean of 8 samples", key="jacobian"))


def _gate(ws, t, k, H):
    return ws.gates[t][:, block(k, H)].astype(np.float64)   # (B, H), activated


def _lstm(sim, t, b, h, add) -> None:
    ws, H, T = sim.workspace, sim.H, sim.T
    i, f, g = (_gate(ws, t, k, H) for k in range(3))
    c = ws.c[t, b].astype(np.float64)
    c_prev = ws.c[t - 1, b].astype(np.float64) if t > 0 else np.zeros(H)
    add(Line("formula", "‖c_t‖", "‖f ⊙ c_{t−1} + i ⊙ g‖  (the forget-gate path)",
             (("mean f", float(f.mean())), ("mean i", float(i.mean())), ("mean g", float(g.mean())),
              ("‖c_{t−1}‖", _norm(c_prev))), _norm(f[b] * c_prev + i[b] * g[b]),
             text=f"means over batch and units; ‖c_t‖ of sample {b} as the kernel wrote it = {num(_norm(c))}",
             key="lstm_cell"))
    if progress(sim)[0] < T:
        add(Line("missing", "Π mean f from t to T−1", text=f"the forward pass has done t < {progress(sim)[0]}",
                 key="forget_product"))
        return
    fm = [float(_gate(ws, k, 1, H).mean()) for k in range(t, T)]
    prod = float(np.prod(fm))
    add(Line("formula", "carry decay c_{T−1} → c_{t−1}", "Π_{k=t}^{T−1} mean f_k",
             (("steps", T - t), ("mean f at t", fm[0])), prod,
             text="the cell-state path alone multiplies by f each step back (per unit; this uses the means)",
             key="forget_product"))


def _gru(sim, t, b, h, add) -> None:
    ws, H = sim.workspace, sim.H
    r, z, n = (_gate(ws, t, k, H) for k in range(3))
    h_prev = ws.h[t - 1, b].astype(np.float64) if t > 0 else np.zeros(H)
    add(Line("formula", "‖h_t‖", "‖(1 − z) ⊙ n + z ⊙ h_{t−1}‖",
             (("mean z", float(z.mean())), ("mean r", float(r.mean())), ("‖h_{t−1}‖", _norm(h_prev))),
             _norm((1 - z[b]) * n[b] + z[b] * h_prev),
             text=f"z near 1 copies h_{{t−1}} (the gradient passes through diag(z)); ‖h_t‖ of sample {b} as "
                  f"the kernel wrote it = {num(_norm(h))}", key="gru"))


def _attention(sim, alpha_arr, t, b, add, what) -> None:
    a = alpha_arr[t, b, : t + 1].astype(np.float64)
    pos = a[a > 0]
    ent = float(-(pos * np.log(pos)).sum())
    add(Line("formula", "attention weights at t", "max_j α_tj, entropy −Σ_j α_tj log α_tj",
             (("max α", float(a.max())), ("at j", int(a.argmax())), ("uniform entropy log(t+1)", math.log(t + 1))),
             ent, text=what + f" (sample {b}); entropy in nats", key="attention"))


def _pascanu(sim, add, P) -> None:
    from rnnsim import diagnostics

    m = sim.scenario.model
    cell = CELLS[m.cell]
    add(Line("heading", "Pascanu, Mikolov & Bengio 2013 (the current W_hh)"))
    if cell.G == 0:
        add(Line("note", "σ_max(W_hh) vs 1/γ", text="does not apply: the attention cell has no W_hh", key="pascanu"))
        return
    if not _finite(P["weight_hh"]):
        add(Line("note", "σ_max(W_hh) vs 1/γ", text="W_hh is not finite (NaN or inf): no spectrum", key="pascanu"))
        return
    s = diagnostics.spectrum(sim)
    which = "W_hh" if cell.CANDIDATE_BLOCK is None else f"the {cell.GATE_SYMBOLS[cell.CANDIDATE_BLOCK]} block of W_hh"
    if cell.CANDIDATE_BLOCK is not None:
        verdict = "for plain RNNs only: here the gates scale the Jacobian (see ‖J_t‖ and the gate means)"
    elif m.layernorm:
        verdict = "LayerNorm rescales each step: σ_max alone decides neither vanishing nor exploding"
    elif s.sigma_max < s.bound:
        verdict = "σ_max < 1/γ: vanishing is guaranteed (the condition is sufficient)"
    else:
        verdict = "σ_max ≥ 1/γ: exploding is possible, not certain (the condition is necessary, not sufficient)"
    add(Line("formula", f"σ_max({which}) vs 1/γ", "vanishing if σ_max < 1/γ (sufficient); exploding needs σ_max > 1/γ",
             (("σ_max", s.sigma_max), ("γ = max|φ′|", s.gamma), ("1/γ", s.bound)), s.sigma_max, text=verdict,
             key="pascanu"))
