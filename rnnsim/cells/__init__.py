"""Recurrent cells: one module per cell, each with its kernels, its plain NumPy reference and everything else the
rest of rnnsim asks of a cell (the protocol in :mod:`rnnsim.cells.base`: parameters, buffers and their bytes,
drivers, step Jacobian, candidate block, gate statistics, gate-bias block).
"""

from __future__ import annotations

import numpy as np

from rnnsim.cells import attention, gru, lstm, rnn
from rnnsim.cells.base import Cell, estimate_bytes  # noqa: F401

#: the cells by the name of ``model.cell``
CELLS: dict[str, Cell] = {"rnn": rnn, "lstm": lstm, "gru": gru, "attention": attention}


def init_params(model, D, O, seed, dtype):
    """Parameters with PyTorch names and shapes, from ``seed``.

    Two independent streams: one for the cell (``cell.init_params``, see rnnsim/cells/base.py's
    ``recurrent_params`` for the inits and ``forget_bias``; the attention cell: rnnsim/cells/attention.py), one for
    the readout, so that switching the cell keeps the readout's initial weights (and a separate stream in the
    Simulation keeps the data).
    readout = "attention": ``attn.query.weight`` (H, H) U(−1/√H, 1/√H) from a third stream (so switching the
    readout keeps the cell's weights), and ``readout.weight`` is (O, 2H) on [h_t; c_t], U(−1/√(2H), 1/√(2H)) as
    torch.nn.Linear(2H, O) (its bias too).
    """
    H = model.hidden_size
    p = CELLS[model.cell].init_params(model, D, np.random.default_rng([seed, 0]))
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
