"""The Simulation: owns parameters, data and every per-step array; runs forward, BPTT and updates.

All per-step arrays are stored time-major (T, B, ...) so that one step is a contiguous block for the kernels; the
attributes of the public API (DESIGN.md §2) are (B, T, ...) views of them. Nothing here imports Textual.
"""

from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass

import numpy as np

from rnnsim import tasks, weights
from rnnsim.cells import CELLS, init_params
from rnnsim.kernels import checks
from rnnsim.kernels.fused import FusedPass
from rnnsim.layers import Stack
from rnnsim.optim import clip_, global_norm, make_optimizer
from rnnsim.readout import Readout
from rnnsim.play import Phase, finish_pass
from rnnsim.history import HISTORY_CAP, History
from rnnsim.plot import SvgRepr  # _repr_svg_ for notebooks (matplotlib only when drawn)
from rnnsim.scenario import Scenario, task_dims

PHASES = tuple(Phase)
_FORWARD_DONE, _BACKWARD_DONE = Phase.FORWARD_DONE, Phase.BACKWARD_DONE   # module globals: no Enum lookup per pass

#: overflow and NaN are expected in the lessons on exploding gradients: the sentinel reports them, not warnings.
#: (The small pass runs no NumPy ufunc, so it needs no errstate: see ``_quiet`` in Simulation._build.)
_errstate = functools.partial(np.errstate, over="ignore", invalid="ignore", divide="ignore")
_null = contextlib.nullcontext()   # reusable (np.errstate is not): the small pass's ``_quiet()``


@dataclass(frozen=True)
class UpdateInfo:
    """What one training iteration did."""

    iteration: int       #: 1-based number of this update
    loss: float          #: loss of the forward pass the gradient came from
    grad_norm: float     #: global ‖g‖ before clipping
    clipped_norm: float  #: global ‖g‖ after clipping (the norm of the step's gradient)
    clipped: bool        #: whether clipping changed the gradient
    finite: bool         #: False when a NaN or inf appeared (then no update was applied)
    cosine: float = 1.0  #: cos(g before clipping, g after): 1 for norm clipping, < 1 when value clipping turns it

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Sentinel:
    """Where the first non-finite value appeared."""

    iteration: int  #: the iteration (number of updates applied before it)
    phase: str      #: "forward" | "backward" | "update"
    t: int | None   #: time step, or None for whole-sequence arrays (loss, parameter gradients, parameters)
    array: str      #: e.g. "hidden", "cell_state", "outputs", "loss", "grad_hidden", "grads[weight_hh]"

    def __str__(self) -> str:
        where = f" at t = {self.t}" if self.t is not None else ""
        return f"non-finite value in {self.array}{where} ({self.phase}, iteration {self.iteration})"


class Simulation(SvgRepr):
    """A recurrent network, its task data and its training state, stepped one time step at a time or whole.

    Deterministic: the same scenario and seed give identical arrays. The seed feeds three independent streams
    (cell weights, readout weights, data), so changing the cell or its init keeps the data and the readout.
    """

    def __init__(self, scenario: Scenario):
        self._build(scenario, scenario.scenario.seed)

    # ------------------------------------------------------------------------------------------ construction
    def _build(self, sc: Scenario, seed: int) -> None:
        self.scenario = sc
        self.seed = int(seed)
        m, task = sc.model, sc.task
        self.cell_name = m.cell
        self._cell = CELLS[m.cell]
        self.dtype = np.dtype(m.dtype)
        self.T, self.B, self.H = task.length, task.batch_size, m.hidden_size
        self.D, self.O, self.classification = task_dims(task)
        self.baseline: float | None = tasks.baseline(task)
        T, B, D, O = self.T, self.B, self.D, self.O

        self.params = init_params(m, D, O, self.seed, self.dtype)
        if m.weights is not None:   # the file's weights replace the initialised ones (rnnsim/weights.py)
            weights.apply(self.params, sc)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._optimizer = make_optimizer(sc.training, self.params)
        # one cell workspace per layer (rnnsim/layers.py), each with its execution mode, chosen once
        # (rnnsim/kernels/modes.py); the readout reads the last layer's
        self._stack = Stack(self._cell, m, T, B, D, self.H, O, self.dtype, self.params, self.grads)
        self.num_layers = self._stack.N
        self._ws = self._stack.top
        self.attention_readout = m.readout == "attention"
        self._quiet = (lambda: _null) if self._ws.small_pass and self.num_layers == 1 else _errstate

        self._X = np.zeros((T, B, D), dtype=self.dtype)
        self._Y = np.zeros((T, B), dtype=np.int64) if self.classification else np.zeros((T, B, O), dtype=self.dtype)
        self._M = np.zeros((T, B), dtype=bool)
        self._out = np.zeros((T, B, O), dtype=self.dtype)
        self._dout = np.zeros((T, B, O), dtype=self.dtype)

        self._ro = Readout(self)
        # the whole pass (or step) as one Numba call where the plan allows it (rnnsim/kernels/fused.py)
        self._fused = FusedPass.make(self)
        self._bw_begin = False

        self._data_rng = np.random.default_rng([self.seed, 1])
        self._stream = tasks.make_stream(task, self._data_rng, self.dtype)
        self._draw_batch()
        self._new_batch_due = False

        self.t = 0                # forward steps done in this pass (in layer ``layer`` of a stack)
        self.bt = 0               # backward steps done in this pass (in layer ``layer`` of a stack)
        self.layer = 0            # the layer being stepped (forward: 0 first; BPTT: the top one first)
        self.phase = Phase.IDLE
        self.iteration = 0        # updates applied
        self.loss: float | None = None
        # bounded: the newest iterations exact, older ones merged into Bins keeping extremes and events
        self.history: list[UpdateInfo] = History(cap=HISTORY_CAP)
        self.sentinel: Sentinel | None = None

    def _draw_batch(self) -> None:
        x, y, mask = self._stream()
        self._X[:] = x.transpose(1, 0, 2)
        self._Y[:] = y.transpose(1, 0) if self.classification else y.transpose(1, 0, 2)
        self._M[:] = mask.T

    # ----------------------------------------------------------------------------------- public array views
    inputs = property(lambda self: self._X.transpose(1, 0, 2), doc="(B, T, D) task inputs")
    targets = property(lambda self: self._Y.T if self.classification else self._Y.transpose(1, 0, 2),
                       doc="(B, T, O) float targets, or (B, T) int64 classes")
    loss_mask = property(lambda self: self._M.T, doc="(B, T) positions whose output enters the loss")
    hidden = property(lambda self: self._ws.h.transpose(1, 0, 2), doc="(B, T, H) h_t after step t")
    outputs = property(lambda self: self._out.transpose(1, 0, 2), doc="(B, T, O) readout of h_t (and c_t)")
    grad_hidden = property(lambda self: self._ws.dh.transpose(1, 0, 2), doc="(B, T, H) total dL/dh_t")
    grad_inputs = property(lambda self: self._stack.ws[0].dx.transpose(1, 0, 2), doc="(B, T, D) dL/dx_t")
    layer_hidden = property(lambda self: self._stack.stacked("h"),
                            doc="(N, B, T, H) h_t of every layer (a copy); [-1] is ``hidden``")
    layer_grad_hidden = property(lambda self: self._stack.stacked("dh"),
                                 doc="(N, B, T, H) total dL/dh_t of every layer (a copy); [-1] is ``grad_hidden``")

    @property
    def layer_cell_state(self):
        """(N, B, T, H) LSTM c_t of every layer (a copy), None for other cells."""
        return self._stack.stacked("c") if self.cell_name == "lstm" else None

    def layer_steps(self, layer: int) -> tuple[int, int]:
        """(forward steps, BPTT steps) done in ``layer`` by the latest pass (T each once it is complete)."""
        return self._stack.steps(self, layer)

    def layer_workspace(self, layer: int):
        """The cell workspace of ``layer`` (time-major arrays, for diagnostics); ``workspace`` is the last one."""
        return self._stack.ws[layer]

    def layer_params(self, layer: int) -> dict[str, np.ndarray]:
        """The parameters of ``layer`` under the cell's names (``weight_hh`` for ``weight_hh_l{layer}``): views."""
        return self._stack.params[layer]

    @property
    def cell_state(self):
        """(B, T, H) LSTM c_t, None for other cells."""
        return self._ws.c.transpose(1, 0, 2) if self.cell_name == "lstm" else None

    @property
    def dependent_steps(self) -> int:
        """Sequential operations of one forward pass (Vaswani et al. 2017, table 1): T for rnn/lstm/gru (each step
        waits for the previous one; N stacked layers: T + N − 1, the critical path of the (layer, t) grid), 1 for
        attention (every position is independent given the inputs)."""
        return 1 if self.cell_name == "attention" else self.T + self.num_layers - 1

    @property
    def max_path_length(self) -> int:
        """Hops on the longest shortest path from the input x_0 to the output at T−1 (Vaswani et al. 2017, table 1):
        T−1 recurrent steps for rnn/lstm/gru, 1 attention step for the attention cell. With the attention readout
        the output at T−1 reads h_0 directly, so it is 1 there too (T = 1: 0). A stack of N layers adds the N − 1
        hops from layer 0 up to the last layer."""
        up = self.num_layers - 1   # a stack: the layer hops from layer 0 up to the last layer
        if self.cell_name == "attention" or self.attention_readout:
            return min(1, self.T - 1) + up
        return self.T - 1 + up

    # --------------------------------------------------------------------------------------------- forward
    def _begin_forward(self) -> None:
        if self._new_batch_due:
            self._draw_batch()
            self._new_batch_due = False
        if self._fused is None:         # (fused: the first step's call projects the inputs)
            with self._quiet():
                self._stack.begin_forward(0, self._X)
        self.t = 0
        self.bt = 0
        self.layer = 0
        self.loss = None
        self.phase = Phase.FORWARD

    def _forward_to(self, t1: int) -> None:
        """Steps [t0, t1) of the current layer; in the last layer their outputs and checks, and at t1 = T the
        loss. A layer below the last that reaches t1 = T hands over to the next one (rnnsim/layers.py)."""
        fused = self._fused
        if fused is not None:           # one layer only (FusedPass.make)
            t0 = self.t
            check = self.sentinel is None
            code, t, loss = fused.forward(t0, t1, t0 == 0, check)
            self.t = t1
            if check and code:
                self.sentinel = Sentinel(self.iteration, "forward", t, checks.FORWARD_ARRAYS[code])
            if t1 == self.T:
                self._finish_forward(loss)
            return
        t0, layer = self.t, self.layer
        check = self.sentinel is None
        top = layer == self.num_layers - 1
        with self._quiet():
            self._stack.run_forward(layer, t0, t1)
            if top:
                code, t, loss = self._ro.forward(t0, t1, check)
            else:
                bad = self._stack.forward_checks(layer, t0, t1) if check else None
        self.t = t1
        if top and check and code != checks.OK:
            self.sentinel = Sentinel(self.iteration, "forward", t, checks.FORWARD_ARRAYS[code])
        elif not top and bad is not None:
            self.sentinel = Sentinel(self.iteration, "forward", bad[1], bad[0])
        if t1 == self.T:
            if top:
                self._finish_forward(loss)
            else:
                self.layer, self.t = layer + 1, 0
                with self._quiet():
                    self._stack.begin_forward(layer + 1, self._X)

    def _finish_forward(self, loss: float) -> None:
        """The pass reached t = T: keep the loss, and name it in the sentinel if it is not finite."""
        self.loss = float(loss)
        self.phase = _FORWARD_DONE
        if self.sentinel is None and not math.isfinite(self.loss):
            # the step whose loss term (or the running sum up to it) is the first non-finite one
            self.sentinel = Sentinel(self.iteration, "forward", self._ro.loss_step(), "loss")

    def _readout(self, t0: int, t1: int) -> None:
        """outputs for steps [t0, t1) from h_0..h_{t1-1} (NumPy; see rnnsim/readout.py)."""
        with self._quiet():
            self._ro.outputs(t0, t1)

    def _compute_loss(self) -> float:
        """The loss and, into ``_dout``, its gradient with respect to every output (NumPy)."""
        with _errstate():
            return self._ro.loss()

    def step_forward(self) -> bool:
        """Run one time step forward (with stacked layers one (layer, t) step: layer 0 over t = 0..T−1 first).
        Returns False once t == T in the last layer (then ``loss`` is set)."""
        if self.phase != "forward":
            if self.phase == "forward_done" or self.phase == "backward":
                return False
            self._begin_forward()
        if self.t < self.T:
            self._forward_to(self.t + 1)
        return self.t < self.T

    def forward(self) -> float:
        """The whole sequence for the whole batch (finishing a stepped pass if one is under way); the loss."""
        fused = self._fused
        if fused is not None and self.phase != "forward":   # the fused kernels: the whole pass in one call
            if self._new_batch_due:
                self._draw_batch()
                self._new_batch_due = False
            self.t, self.bt, self.layer = 0, 0, 0
            self._forward_to(self.T)
            return self.loss
        if self.phase != "forward":
            self._begin_forward()
        while self.phase == Phase.FORWARD:
            self._forward_to(self.T)
        return self.loss

    # -------------------------------------------------------------------------------------------- backward
    def _begin_backward(self) -> None:
        if self._fused is not None:     # the first BPTT call does it
            self._bw_begin = True
        else:
            with self._quiet():
                self._ro.backward()
                self._stack.begin_backward(self.num_layers - 1)
        self.bt = 0
        self.layer = self.num_layers - 1
        self.phase = Phase.BACKWARD

    def _backward_to(self, bt1: int) -> None:
        """BPTT steps of the current layer down to t = T − bt1; a layer that reaches t = 0 gets its weight
        gradients and dL/dx_t, and (below the top) hands its dL/dx_t to the layer beneath (rnnsim/layers.py)."""
        fused = self._fused
        if fused is not None:           # one layer only (FusedPass.make)
            T = self.T
            done = bt1 == T
            check = self.sentinel is None
            code, t = fused.backward(T - 1 - self.bt, T - bt1, self._bw_begin, done, check)
            self._bw_begin = False
            self.bt = bt1
            if done:
                self.phase = _BACKWARD_DONE
            if check and code:
                self._fused_backward_sentinel(code, t)
            return
        t_hi = self.T - 1 - self.bt
        t_lo = self.T - bt1
        layer = self.layer
        layer_done = bt1 == self.T
        done = layer_done and layer == 0
        with self._quiet():
            self._stack.run_backward(layer, t_hi, t_lo)
            if layer_done:
                self._stack.finish_backward(layer, self._X)
        if self.sentinel is None:
            code, t = self._ro.backward_checks(t_lo, t_hi, done, self._stack.ws[layer])
        self.bt = bt1
        if done:
            self.phase = Phase.BACKWARD_DONE
        if self.sentinel is None:
            names = checks.BACKWARD_ARRAYS if layer == self.num_layers - 1 else \
                {checks.GRAD_HIDDEN: f"layer_grad_hidden[{layer}]", checks.GRAD_INPUTS: "grad_inputs"}
            if code == checks.GRADS:
                self.sentinel = Sentinel(self.iteration, "backward", None, f"grads[{list(self.grads)[t]}]")
            elif code != checks.OK:
                self.sentinel = Sentinel(self.iteration, "backward", t, names[code])
        if layer_done and not done:
            with self._quiet():
                self._stack.begin_backward(layer - 1)
            self.layer, self.bt = layer - 1, 0

    def _fused_backward_sentinel(self, code: int, t: int) -> None:
        """The Sentinel of a fused BPTT call's check code (not OK), named as for the top layer."""
        if code == checks.GRADS:
            self.sentinel = Sentinel(self.iteration, "backward", None, f"grads[{list(self.grads)[t]}]")
        else:
            self.sentinel = Sentinel(self.iteration, "backward", t, checks.BACKWARD_ARRAYS[code])

    def _require_forward(self) -> None:
        if self.phase not in ("forward_done", "backward", "backward_done"):
            raise RuntimeError("backward needs a complete forward pass first (call forward() or step_forward() "
                               f"until it returns False); phase is {self.phase!r}")

    def step_backward(self) -> bool:
        """Run one BPTT step, from t = T−1 down to 0 (with stacked layers one (layer, t) step, the top layer
        first: layer l − 1's BPTT needs layer l's dL/dx_t for every t). Returns False once done (then ``grads``
        are set)."""
        self._require_forward()
        if self.phase == "backward_done":
            return False
        if self.phase == "forward_done":
            self._begin_backward()
        self._backward_to(self.bt + 1)
        return self.bt < self.T

    def backward(self) -> None:
        """The whole BPTT (finishing a stepped one if under way): fills grads, grad_hidden, grad_inputs."""
        if self._fused is not None and (self.phase == "forward_done" or self.phase == "backward_done"):
            self.bt, self.layer, self._bw_begin = 0, 0, True    # the fused kernels: the whole BPTT in one call
            self._backward_to(self.T)
            return
        self._require_forward()
        if self.phase != "backward":
            self._begin_backward()
        while self.phase == Phase.BACKWARD:
            self._backward_to(self.T)

    # ---------------------------------------------------------------------------------------------- update
    @_errstate()
    def apply_update(self) -> UpdateInfo:
        """Clip the gradients per the scenario (in place), then take one optimizer step."""
        if self.phase != "backward_done":
            raise RuntimeError(f"apply_update needs a complete backward pass first; phase is {self.phase!r}")
        tr = self.scenario.training
        finite = self.sentinel is None
        if finite:
            res = clip_(self.grads, tr.clip, tr.clip_threshold)
            finite = math.isfinite(res.norm)
        if not finite:
            norm = global_norm(self.grads)
            info = UpdateInfo(self.iteration + 1, self.loss, norm, norm, False, False)
            if self.sentinel is None:
                i = checks.first_nonfinite(self._ro.flat(self.grads))
                name = f"grads[{list(self.grads)[i]}]" if i >= 0 else "grad_norm"
                self.sentinel = Sentinel(self.iteration, "update", None, name)
        else:
            self._optimizer.step(self.params, self.grads)
            info = UpdateInfo(self.iteration + 1, self.loss, res.norm, res.clipped_norm, res.clipped, True,
                              res.cosine)
            i = checks.first_nonfinite(tuple([p.reshape(-1) for p in self.params.values()]))
            if i >= 0:
                self.sentinel = Sentinel(self.iteration, "update", None, f"params[{list(self.params)[i]}]")
                info = UpdateInfo(info.iteration, info.loss, info.grad_norm, info.clipped_norm, info.clipped,
                                  False, info.cosine)
        self.iteration += 1
        self.history.append(info)
        self.phase = Phase.IDLE
        self._new_batch_due = tr.fresh_data
        return info

    def train(self, iterations: int, callback=None) -> list[UpdateInfo]:
        """``iterations`` rounds of forward, backward, update. ``callback(info)`` sees every iteration, the one where
        a NaN or inf appeared included; training stops after that one (see ``sentinel``) or when the callback
        returns False. Returns the UpdateInfo of each iteration run."""
        out: list[UpdateInfo] = History()
        for _ in range(int(iterations)):
            if self.sentinel is not None:
                break
            if self.phase not in (Phase.IDLE, Phase.FORWARD):
                self._begin_forward()  # a new pass: a finished forward pass or a BPTT under way is dropped
            finish_pass(self)  # forward, then BPTT unless the forward pass went non-finite
            if self.phase == Phase.BACKWARD_DONE:
                info = self.apply_update()
            else:  # the forward pass went non-finite: no gradient to apply
                info = UpdateInfo(self.iteration + 1, self.loss if self.loss is not None else math.nan,
                                  math.nan, math.nan, False, False)
                self.history.append(info)
            out.append(info)
            stop = callback is not None and callback(info) is False
            if stop or not info.finite:
                break
        return out

    # ---------------------------------------------------------------------------------------- state control
    def reset(self, seed: int | None = None) -> None:
        """Fresh weights, optimizer state and data from ``seed`` (default: the scenario's seed)."""
        self._build(self.scenario, self.scenario.scenario.seed if seed is None else seed)

    def reconfigure(self, scenario: Scenario) -> bool:
        """Switch to a changed scenario. Changes to [training] only keep the weights and the data stream (the
        optimizer restarts if its kind or settings changed); any other change rebuilds from the seed, which keeps
        the data identical to a fresh run of the old scenario. Returns True when it rebuilt."""
        old = self.scenario
        if (old.model, old.task, old.scenario.seed) != (scenario.model, scenario.task, scenario.scenario.seed):
            self._build(scenario, scenario.scenario.seed)
            return True
        o, n = old.training, scenario.training
        self.scenario = scenario
        if (o.optimizer, o.learning_rate, o.momentum) != (n.optimizer, n.learning_rate, n.momentum):
            self._optimizer = make_optimizer(n, self.params)
        return False

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the parameters, with PyTorch names (``torch.nn.RNNCell/LSTMCell/GRUCell`` + ``readout.*``;
        ``attn.*`` for the attention cell and readout, see rnnsim/cells/attention.py)."""
        return {k: v.copy() for k, v in self.params.items()}

    def load_state_dict(self, state) -> None:
        """Load parameters by PyTorch name; NumPy arrays or torch tensors. Names and shapes must match exactly."""
        missing = sorted(set(self.params) - set(state))
        unexpected = sorted(set(state) - set(self.params))
        if missing or unexpected:
            raise KeyError(f"state_dict mismatch: missing {missing}, unexpected {unexpected}")
        for k, v in state.items():
            if hasattr(v, "detach"):
                v = v.detach().cpu().numpy()
            v = np.asarray(v)
            if v.shape != self.params[k].shape:
                raise ValueError(f"state_dict[{k!r}] has shape {v.shape}, expected {self.params[k].shape}")
            self.params[k][...] = v
        self.phase = Phase.IDLE

    def save_weights(self, path) -> None:
        """Write the parameters to ``path`` (.safetensors or .npz; PyTorch names in the ``_l0`` form), atomically."""
        weights.save(self.params, path, {"cell": self.cell_name, "hidden_size": str(self.H),
                                         "num_layers": str(self.num_layers)})

    # ------------------------------------------------------------------------------------------- internals
    @property
    def workspace(self):
        """The cell's preallocated time-major arrays (for diagnostics)."""
        return self._ws

    def __repr__(self) -> str:
        return (f"Simulation({self.scenario.scenario.name!r}, cell={self.cell_name}, T={self.T}, B={self.B}, "
                f"H={self.H}, phase={self.phase}, t={self.t}, bt={self.bt}, iteration={self.iteration})")
