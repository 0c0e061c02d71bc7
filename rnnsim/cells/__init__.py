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
    ``model.num_layers`` = N > 1: see ``stacked_params``.
    """
    H = model.hidden_size
    cell = CELLS[model.cell]
    p = cell.init_params(model, D, np.random.default_rng([seed, 0]))
    if getattr(model, "num_layers", 1) > 1:
        p = stacked_params(cell, model, D, seed, p)
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


def layer_name(name: str, layer: int) -> str:
    """A cell parameter's name in layer ``layer`` of a stack, as torch.nn.RNN/LSTM/GRU(num_layers=N) names it
    (``weight_ih`` → ``weight_ih_l1``); LayerNorm's per layer ``ln.weight`` → ``ln.weight_l1`` (rnnsim's own)."""
    return f"{name}_l{layer}"


def stacked_params(cell, model, D, seed, first):
    """The parameters of N stacked layers, in torch.nn.LSTM(num_layers=N)'s order: layer 0 is ``first`` (the
    single-layer network's weights from the same seed), layer l > 0 comes from its own stream [seed, 0, l] with
    input size H (layer l − 1's h_t). ``forget_bias`` and the init apply to every layer."""
    H = model.hidden_size
    out = {}
    for layer in range(model.num_layers):
        p = first if layer == 0 else cell.init_params(model, H, np.random.default_rng([seed, 0, layer]))
        out |= {layer_name(k, layer): v for k, v in p.items()}
    return out


def layer_views(params: dict, num_layers: int) -> list[dict]:
    """Per layer, the dict the cell drivers read (``weight_ih``, ..., ``ln.weight``): views of ``params`` (the
    same arrays, so an update or a load is seen at once). One layer: ``params`` itself."""
    if num_layers == 1:
        return [params]
    out = []
    for layer in range(num_layers):
        suffix = f"_l{layer}"
        out.append({k[: -len(suffix)]: v for k, v in params.items() if k.endswith(suffix)})
    return out
