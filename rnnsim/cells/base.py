"""The cell protocol: what every module of rnnsim/cells provides, and the pieces the recurrent cells share.

Everything outside ``cells/`` that needs to know about a cell (the Simulation, diagnostics.py, scenario.py's
``estimate_bytes``, the TUI) asks the cell module through the names below and never re-derives them. Adding a
cell means a module here, an entry in ``cells.CELLS`` and the name in the scenario's ``cell`` Literal.

The maths of each cell is readable in its ``reference_forward``/``reference_backward`` (plain NumPy) and in its
gate kernels; the speed machinery that runs them (memory modes, BLAS dispatch, the jit loader) is in
rnnsim/kernels/.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from rnnsim.kernels.modes import Plan, Workspace, chunk_steps
from rnnsim.kernels.packed import applies as packed_applies


class Cell(Protocol):
    """A cell module (rnn, lstm, gru, attention)."""

    G: int                        #: gate blocks, as in PyTorch (weight_ih is (G·H, D)); 0: no recurrence
    GATES: tuple[str, ...]        #: the gate blocks' names, in weight order
    GATE_SYMBOLS: str             #: their symbols in the equations (LSTM "ifgo", GRU "rzn")
    GATE_STATS: tuple[str, ...]   #: the gates whose mean activation per step ``gate_means`` reports
    FORGET_BLOCK: int | None      #: the gate block ``model.forget_bias`` sets (LSTM f, GRU z), or None
    CANDIDATE_BLOCK: int | None   #: the block of W_hh the spectrum reads (LSTM g, GRU n); None: all of it
    FOLDS_PROJECTION: bool        #: may run projection-folded (dL/d(input projection) = dL/d(recurrent product))
    STATE: str                    #: what the step Jacobian differentiates: "h" or "h, c"

    # parameters
    def init_params(self, model, D: int, rng) -> dict[str, np.ndarray]: ...
    def param_count(self, model, D: int, H: int) -> int: ...
    # buffers
    def cached_bytes(self, T: int, B: int, H: int, itemsize: int, model) -> int: ...
    def buffer_bytes(self, model, T, B, D, H, itemsize, K, n_params) -> int: ...
    # optional: the part that grows with T² (attention); estimate_parts reports it apart ("attention")
    def quadratic_bytes(self, T: int, B: int, H: int, itemsize: int) -> int: ...
    def allocate(self, T, B, D, H, dtype, model, plan: Plan) -> Workspace: ...
    # drivers (called by the Simulation in this order per pass)
    def begin_forward(self, ws, X, params) -> None: ...
    def run_forward(self, ws, params, model, t0: int, t1: int) -> None: ...
    def begin_backward(self, ws) -> None: ...
    def run_backward(self, ws, params, model, t_hi: int, t_lo: int) -> None: ...
    def finish_backward(self, ws, X, params, grads, model) -> None: ...
    # what the views show
    def describe(self, model) -> str: ...                  #: e.g. "rnn tanh+LN", "lstm" (the status line)
    def bounded_state(self, model) -> bool: ...            #: whether h_t stays in [−1, 1] (the heatmap's scale)
    def candidate_activation(self, model) -> str: ...      #: φ of the candidate (γ = max|φ′| in the spectrum)
    def gate_means(self, ws, t_done: int) -> dict[str, np.ndarray]: ...
    def step_jacobian(self, ws, params, model, t: int, batch) -> np.ndarray: ...
    # the readable maths
    def reference_forward(self, X, p, *args): ...
    def reference_backward(self, X, p, fw, dh_out, *args): ...


# ------------------------------------------------------------------------------------------- parameters
def _orthogonal(rng, n):
    """A Haar-random orthogonal n×n matrix (QR of a Gaussian matrix with the signs fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def recurrent_params(model, D, rng, G, forget_block) -> dict[str, np.ndarray]:
    """weight_ih (G·H, D), weight_hh (G·H, H), bias_ih, bias_hh (G·H), from ``rng`` (the cell's stream):

      pytorch     every weight and bias U(−1/√H, 1/√H), as torch.nn.RNNCell/LSTMCell/GRUCell
      orthogonal  each H×H gate block of W_hh a random orthogonal matrix; the rest as pytorch
      identity    each H×H block of W_hh = I, biases 0, W_ih ~ N(0, 0.001²) (Le, Jaitly & Hinton 2015)
      normal      W_ih, W_hh ~ N(0, 1/H) elementwise, biases 0
    then W_hh ← recurrent_scale · W_hh, and ``forget_bias`` sets gate block ``forget_block`` (the cell's
    FORGET_BLOCK) of bias_ih, and bias_hh's to 0.
    """
    H = model.hidden_size
    k = 1.0 / np.sqrt(H)
    uniform = lambda *shape: rng.uniform(-k, k, size=shape)  # noqa: E731
    p = {"weight_ih": uniform(G * H, D), "weight_hh": uniform(G * H, H), "bias_ih": uniform(G * H),
         "bias_hh": uniform(G * H)}
    if model.init == "orthogonal":
        p["weight_hh"] = np.concatenate([_orthogonal(rng, H) for _ in range(G)])
    elif model.init == "identity":
        p["weight_ih"] = rng.normal(0.0, 0.001, size=(G * H, D))
        p["weight_hh"] = np.concatenate([np.eye(H)] * G)
        p["bias_ih"][:] = 0.0
        p["bias_hh"][:] = 0.0
    elif model.init == "normal":
        p["weight_ih"] = rng.normal(0.0, k, size=(G * H, D))
        p["weight_hh"] = rng.normal(0.0, k, size=(G * H, H))
        p["bias_ih"][:] = 0.0
        p["bias_hh"][:] = 0.0
    p["weight_hh"] *= model.recurrent_scale
    if model.forget_bias is not None and forget_block is not None:
        blk = block(forget_block, H)
        p["bias_ih"][blk] = model.forget_bias
        p["bias_hh"][blk] = 0.0
    return p


def recurrent_param_count(G, D, H) -> int:
    return G * H * (D + H) + 2 * G * H


def recurrent_cell_params(G, forget_block):
    """A gated cell's ``init_params(model, D, rng)`` and ``param_count(model, D, H)`` (``recurrent_params``)."""
    return (lambda model, D, rng: recurrent_params(model, D, rng, G, forget_block),
            lambda model, D, H: recurrent_param_count(G, D, H))


def block(k: int, H: int) -> slice:
    """Rows of gate block k in a (G·H, ·) weight."""
    return slice(k * H, (k + 1) * H)


def candidate_label(cell) -> str:
    """What ``candidate_matrix`` is, in words (the spectrum view's title)."""
    if cell.CANDIDATE_BLOCK is None:
        return "W_hh"
    k = cell.CANDIDATE_BLOCK
    return (f"the candidate block {cell.GATE_SYMBOLS[k]} of W_hh (rows {k}H..{k + 1}H), not the whole gated "
            f"Jacobian")


def forget_gate(cell) -> str | None:
    """The name (in ``gate_means``) of the gate in the forget role (LSTM forget, GRU update), or None."""
    return None if cell.FORGET_BLOCK is None else cell.GATES[cell.FORGET_BLOCK]


def candidate_matrix(cell, W_hh: np.ndarray) -> np.ndarray:
    """The recurrent matrix the spectrum view reads: W_hh (RNN) or its candidate block (LSTM g, GRU n)."""
    if cell.CANDIDATE_BLOCK is None:
        return W_hh
    return W_hh[block(cell.CANDIDATE_BLOCK, W_hh.shape[1])]


# ------------------------------------------------------------------------------------------------ buffers
def estimate_bytes(cell, model, T, B, D, O, itemsize) -> int:
    """Upper estimate of the peak memory a Simulation's pass needs: the sum of `estimate_parts`."""
    return sum(estimate_parts(cell, model, T, B, D, O, itemsize).values())


#: NumPy temporaries of a pass, in units of one (T, B, ·) array: the gradient profile's norms, the readout's and the
#: cells' products (hidden-sized), the task's batch as drawn (B, T, D) and its time-major copy (input-sized), the
#: loss's difference, masked product and dL/dout (output-sized); with slack (the peak varies ~15% run to run). Fitted from below by
#: benchmarks/memory_bound.py (measured peak RSS; tests/unit/test_memory_bound.py checks it stays an upper bound).
TEMP_H, TEMP_D, TEMP_O = 2.5, 2.5, 2.5
#: the attention GEMM paths' per-sample temporaries: the product written into a strided slice of α, dα, α ⊙ dα
#: (T×T floats each) and the causal mask (T×T bytes); one sample at a time, so not times B
TEMP_T2 = 3


def quadratic_bytes(T, B, itemsize) -> int:
    """Memory of causal attention over T positions (cell or readout): α (T, B, T) and the GEMM temporaries."""
    return itemsize * T * T * (B + TEMP_T2) + T * T + itemsize * T


def estimate_parts(cell, model, T, B, D, O, itemsize) -> dict[str, int]:
    """The estimate by cause (the memory refusal names the largest), in bytes:

    - ``hidden``: the cell's per-step buffers (``cell.buffer_bytes``, see each cell's ``allocate``, without its
      T² part) and hidden-sized temporaries;
    - ``attention``: the T² terms (``cell.quadratic_bytes``; the attention readout's α and temporaries, and its
      q, c, dq, dc (T, B, H));
    - ``inputs`` / ``outputs``: X, dL/dx (T, B, D) and the outputs, dL/dout, targets (T, B, O), with temporaries;
    - ``weights``: four copies of the weights (parameters, gradients, two optimiser moments) and the cell's and
      readout's weight-sized scratch, and per layer the two packed copies of W_hh where the per-step products
      run packed (rnnsim/kernels/packed.py).
    """
    H = model.hidden_size
    K = chunk_steps(cell.cached_bytes(T, B, H, itemsize, model), T) if cell.G else 0
    # every layer of a stack (model.num_layers): layer 0 reads the D inputs, layer l > 0 the H outputs of l − 1
    dims = [D] + [H] * (getattr(model, "num_layers", 1) - 1)
    n_params = sum(cell.param_count(model, d, H) for d in dims) + O * H + O
    quad = getattr(cell, "quadratic_bytes", None)
    attention = quad(T, B, H, itemsize) if quad is not None else 0
    hidden = int(TEMP_H * itemsize * T * B * H)
    for layer, d in enumerate(dims):
        # chunked mode's weight-sized scratch is per layer (layer 0's count includes the readout, as for one layer)
        n_layer = cell.param_count(model, d, H) + (O * H + O if layer == 0 else 0)
        hidden += cell.buffer_bytes(model, T, B, d, H, itemsize, K, n_layer)
        if layer:   # its dL/dx_t, (T, B, H) (layer 0's, (T, B, D), is under inputs)
            hidden += itemsize * T * B * d
    if model.readout == "attention":
        # q, c, dq, dc (T, B, H) + slack; α (T, B, T) and its temporaries; W_q (H, H), the readout's second half
        attention += itemsize * T * B * 5 * H + quadratic_bytes(T, B, itemsize)
        n_params += H * H + O * H
    packed_w = 0
    if packed_applies(itemsize, B, H, cell.G):    # (False for G = 0, attention)
        packed_w = 2 * itemsize * cell.G * H * H * len(dims)
    return {
        "hidden": hidden,
        "attention": attention,
        "inputs": int(itemsize * T * B * D * (2 + TEMP_D)),
        "outputs": int(itemsize * T * B * O * (3 + TEMP_O)),
        "weights": 4 * itemsize * n_params + packed_w,
    }


def chunk_bytes(K, B, H, itemsize, width, n_params, T, G) -> int:
    """Chunked mode's (K, B, width·H) buffers, three weight-sized arrays (accumulators, scratch), the per-step
    gate means, and a chunk's (K, B, G·H) gate-product temporary (measured: benchmarks/memory_bound.py)."""
    return itemsize * K * B * H * (width + G) + 3 * itemsize * n_params + 8 * T * G


def folded_bytes(T, B, D, H, G, itemsize) -> int:
    """Projection-folded mode's [h_{t-1}, x_t] for every step, [W_hh^T; W_ih^T], its gradient and the b_ih rows,
    and the weight gradient's temporary (a contiguous copy of dL/da (T, B, G·H), measured)."""
    return itemsize * (T * B * (H + D) + 2 * G * H * (H + D) + B * G * H + T * B * G * H)


# ------------------------------------------------------------------------------------------ what views show
def gate_block_means(ws, t_done, names, stats):
    """Mean activation per step of each gate block in ``stats`` (``names`` in weight order)."""
    H = ws.h.shape[2]
    if ws.K:
        return {name: ws.gate_mean[:t_done, k].copy() for k, name in enumerate(names) if name in stats}
    return {name: ws.gates[:t_done, :, k * H:(k + 1) * H].mean(axis=(1, 2))
            for k, name in enumerate(names) if name in stats}


def named(name):
    """A cell's ``describe``: its name alone."""
    return lambda model: name


def bounded(model) -> bool:
    """``bounded_state`` of a cell whose h_t stays in [−1, 1] whatever the model's settings (LSTM: o ⊙ tanh(c_t);
    GRU: a convex mix of tanh values and h_{t-1})."""
    return True


def tanh_candidate(model) -> str:
    """``candidate_activation`` of the gated cells: their candidate (LSTM g, GRU n) is a tanh."""
    return "tanh"


def block_gate_means(names, stats):
    """A gated cell's ``gate_means(ws, t_done)``: the mean of each gate block in ``stats`` per step."""
    return lambda ws, t_done: gate_block_means(ws, t_done, names, stats)


def state_pair(ws, arr, t, batch):
    """(a_t, a_{t-1}) of a (T, B, H) state in float64 for the Jacobians, with a_{-1} = 0."""
    now = arr[t, batch].astype(np.float64)
    return now, (arr[t - 1, batch].astype(np.float64) if t > 0 else np.zeros_like(now))
