"""Recurrent cells: one module per cell, each with Numba step kernels and a plain NumPy reference.

Every cell module has the same driver functions, used by :class:`rnnsim.Simulation`:
``allocate``, ``begin_forward``, ``run_forward``, ``begin_backward``, ``run_backward``, ``finish_backward``,
``gate_means``, and ``G`` (the number of gate blocks, as in PyTorch: weight_ih is (G·H, D); 0 for attention,
which has no recurrence and its own ``attn.*`` parameters).
"""

from __future__ import annotations

import numpy as np

from rnnsim.cells import attention, gru, lstm, rnn

CELLS = {"rnn": rnn, "lstm": lstm, "gru": gru, "attention": attention}

#: which gate block ``forget_bias`` sets: the LSTM forget gate f and the GRU update gate z (same role)
FORGET_BLOCK = {"lstm": 1, "gru": 1}


def _orthogonal(rng, n):
    """A Haar-random orthogonal n×n matrix (QR of a Gaussian matrix with the signs fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def init_params(model, D, O, seed, dtype):
    """Parameters with PyTorch names and shapes, from ``seed``.

    Two independent streams: one for the cell, one for the readout, so that switching the cell keeps the readout's
    initial weights (and a separate stream in the Simulation keeps the data).

    init:
      pytorch     every weight and bias U(−1/√H, 1/√H), as torch.nn.RNNCell/LSTMCell/GRUCell
      orthogonal  each H×H gate block of W_hh a random orthogonal matrix; the rest as pytorch
      identity    each H×H block of W_hh = I, biases 0, W_ih ~ N(0, 0.001²) (Le, Jaitly & Hinton 2015)
      normal      W_ih, W_hh ~ N(0, 1/H) elementwise, biases 0
    then W_hh ← recurrent_scale · W_hh, and ``forget_bias`` sets the forget/update block of bias_ih (bias_hh's to 0).

    cell = "attention": the attn.* weights of :mod:`rnnsim.cells.attention`, each U(−1/√H, 1/√H) from the cell's
    stream (init, recurrent_scale, forget_bias, activation and layernorm are ignored).
    readout = "attention": ``attn.query.weight`` (H, H) U(−1/√H, 1/√H) from a third stream (so switching the
    readout keeps the cell's weights), and ``readout.weight`` is (O, 2H) on [h_t; c_t], U(−1/√(2H), 1/√(2H)) as
    torch.nn.Linear(2H, O) (its bias too).
    """
    H = model.hidden_size
    rng = np.random.default_rng([seed, 0])
    k = 1.0 / np.sqrt(H)
    if model.cell == "attention":
        p = attention.init_params(H, D, rng)
        return _with_readout(p, model, H, O, seed, dtype)
    G = CELLS[model.cell].G
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
    if model.forget_bias is not None and model.cell in FORGET_BLOCK:
        blk = slice(FORGET_BLOCK[model.cell] * H, (FORGET_BLOCK[model.cell] + 1) * H)
        p["bias_ih"][blk] = model.forget_bias
        p["bias_hh"][blk] = 0.0
    if model.cell == "rnn" and model.layernorm:
        p["ln.weight"] = np.ones(H)
        p["ln.bias"] = np.zeros(H)
    return _with_readout(p, model, H, O, seed, dtype)


def _with_readout(p, model, H, O, seed, dtype):
    """Add the readout's parameters (stream 2; the attention readout's query weight from stream 3); cast."""
    rro = np.random.default_rng([seed, 2])
    if model.readout == "attention":
        k = 1.0 / np.sqrt(2 * H)
        p["readout.weight"] = rro.uniform(-k, k, size=(O, 2 * H))
        p["readout.bias"] = rro.uniform(-k, k, size=O)
        kq = 1.0 / np.sqrt(H)
        p["attn.query.weight"] = np.random.default_rng([seed, 3]).uniform(-kq, kq, size=(H, H))
    else:
        k = 1.0 / np.sqrt(H)
        p["readout.weight"] = rro.uniform(-k, k, size=(O, H))
        p["readout.bias"] = rro.uniform(-k, k, size=O)
    return {name: np.ascontiguousarray(v, dtype=dtype) for name, v in p.items()}
