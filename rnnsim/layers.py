"""Stacked layers (``[model] num_layers = N``), built above the cell kernels: one cell workspace per layer.

Layer 0 reads the task inputs x_t (D), layer l > 0 reads layer l − 1's h_t (H), as
``torch.nn.RNN/LSTM/GRU(num_layers=N)`` without dropout; the readout reads the last layer's h_t.

    forward   layer by layer over the whole sequence: layer 0 for t = 0..T−1, then layer 1, ...
    backward  top layer first: BPTT of layer N−1 (dL/dh_t from the readout), its weight gradients and dL/dx_t,
              which is the whole of dL/dh_t from above for layer N−2 (copied into its dh before its BPTT), ...

One step of the step API is one (layer, t) step: ``sim.layer`` is the layer being stepped and ``sim.t`` /
``sim.bt`` count the steps done in it (forward: layer 0 first; backward: the top layer first, t = T−1 down to 0
in each). A stack's cell drivers are the single-layer ones, called with one workspace and a dict of views of the
layer's parameters (``weight_ih`` → ``params["weight_ih_l1"]``), so one layer runs exactly as before and the
numbers of a single-layer network are unchanged bit for bit. Nothing here imports Textual.
"""

from __future__ import annotations

import numpy as np

from rnnsim.cells import layer_views
from rnnsim.kernels import checks, modes


class Stack:
    """The layers of a Simulation: workspaces, per-layer parameter and gradient views, progress per layer."""

    def __init__(self, cell, model, T, B, D, H, O, dtype, params, grads):
        self.cell = cell
        self.model = model
        self.N = int(getattr(model, "num_layers", 1))
        self.T = T
        self.params = layer_views(params, self.N)
        self.grads = layer_views(grads, self.N)
        self.ws = []
        for layer in range(self.N):
            d = D if layer == 0 else H
            plan = modes.choose(cell, T, B, d, H, O, dtype.itemsize, model)
            self.ws.append(cell.allocate(T, B, d, H, dtype, model, plan))

    @property
    def top(self):
        return self.ws[-1]

    def inputs(self, layer, X):
        """What layer ``layer`` reads: the task inputs (T, B, D), or the h_t of the layer below (T, B, H)."""
        return X if layer == 0 else self.ws[layer - 1].h

    # ------------------------------------------------------------------------------------------ drivers
    def begin_forward(self, layer, X) -> None:
        self.cell.begin_forward(self.ws[layer], self.inputs(layer, X), self.params[layer])

    def run_forward(self, layer, t0, t1) -> None:
        self.cell.run_forward(self.ws[layer], self.params[layer], self.model, t0, t1)

    def begin_backward(self, layer) -> None:
        """Start BPTT of ``layer``; below the top, dL/dh_t from above is the layer above's dL/dx_t, whole."""
        if layer < self.N - 1:
            np.copyto(self.ws[layer].dh, self.ws[layer + 1].dx)
        self.cell.begin_backward(self.ws[layer])

    def run_backward(self, layer, t_hi, t_lo) -> None:
        self.cell.run_backward(self.ws[layer], self.params[layer], self.model, t_hi, t_lo)

    def finish_backward(self, layer, X) -> None:
        """The layer's weight gradients and its dL/dx_t (for layer 0, the task inputs' gradient)."""
        self.cell.finish_backward(self.ws[layer], self.inputs(layer, X), self.params[layer], self.grads[layer],
                                  self.model)

    # ------------------------------------------------------------------------------------------ checks
    def forward_checks(self, layer, t0, t1):
        """(array name, t) of the first non-finite h_t (then c_t) of a layer below the top in steps [t0, t1), or
        None. (The top layer's checks are the readout's, with the outputs.)"""
        ws = self.ws[layer]
        t = checks.first_nonfinite_step(ws.h, t0, t1, False)
        if t >= 0:
            return f"layer_hidden[{layer}]", t
        if self.cell.STATE == "h, c":   # the LSTM's c_t
            t = checks.first_nonfinite_step(ws.c, t0, t1, False)
            if t >= 0:
                return f"layer_cell_state[{layer}]", t
        return None

    # ------------------------------------------------------------------------------------------ progress
    def steps(self, sim, layer) -> tuple[int, int]:
        """(forward steps, BPTT steps) of ``layer`` in the latest pass of ``sim`` (T: the whole sequence)."""
        phase, T = str(sim.phase), self.T
        if phase == "forward":
            fw = T if layer < sim.layer else (sim.t if layer == sim.layer else 0)
            return fw, 0
        if phase == "backward":
            return T, (T if layer > sim.layer else (sim.bt if layer == sim.layer else 0))
        if phase == "idle":   # before the first pass (0, 0), or the latest pass, kept after the update
            return sim.t, sim.bt
        return T, (T if phase == "backward_done" else 0)

    def remaining(self, sim) -> tuple[int, int]:
        """(forward, BPTT) (layer, t) steps left in the pass under way (for Play's step counts)."""
        N, T, phase = self.N, self.T, str(sim.phase)
        if phase == "idle":
            return N * T, N * T
        if phase == "forward":
            return (N - sim.layer) * T - sim.t, N * T
        if phase == "forward_done":
            return 0, N * T
        if phase == "backward":
            return 0, (sim.layer + 1) * T - sim.bt
        return 0, 0

    def nbytes(self) -> int:
        return sum(ws.nbytes() for ws in self.ws)

    def stacked(self, name: str) -> np.ndarray:
        """(N, B, T, ·) copy of a per-step array of every layer (``h``, ``dh``, ``c``)."""
        return np.stack([getattr(ws, name).transpose(1, 0, 2) for ws in self.ws])


# ------------------------------------------------------------------------------------ plain NumPy reference
def reference_forward(cell, X, layer_params, *args):
    """A stack in plain NumPy, from each cell's own ``reference_forward``: layer l reads layer l − 1's h_t.
    Returns the per-layer forward dicts, bottom first."""
    fws, inputs = [], X
    for p in layer_params:
        fw = cell.reference_forward(inputs, p, *args)
        fws.append(fw)
        inputs = fw["h"]
    return fws


def reference_backward(cell, X, layer_params, fws, dh_out, *args):
    """BPTT of a stack in plain NumPy, top layer first: ``dh_out`` (T, B, H) is ∂ℓ/∂h_t of the last layer through
    the readout; each layer's dL/dx_t is the dL/dh_t from above of the layer below. Returns (per-layer grads,
    per-layer total dL/dh_t, dL/dx_t of the task inputs)."""
    N = len(layer_params)
    grads, dhs = [None] * N, [None] * N
    for layer in reversed(range(N)):
        inputs = X if layer == 0 else fws[layer - 1]["h"]
        grads[layer], dhs[layer], dh_out = cell.reference_backward(inputs, layer_params[layer], fws[layer], dh_out,
                                                                   *args)
    return grads, dhs, dh_out
