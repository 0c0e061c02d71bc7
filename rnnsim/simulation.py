"""The Simulation: owns parameters, data and every per-step array; runs forward, BPTT and updates.

All per-step arrays are stored time-major (T, B, ...) so that one step is a contiguous block for the kernels; the
attributes of the public API (DESIGN.md §2) are (B, T, ...) views of them. Nothing here imports Textual.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from rnnsim import _fused, tasks
from rnnsim.cells import CELLS, init_params
from rnnsim.cells._common import gemm, small_gemms, step_gemm_in_numpy
from rnnsim.cells.attention import attend, attend_grad
from rnnsim.optim import clip_, global_norm, make_optimizer
from rnnsim.plot import History, SvgRepr  # _repr_svg_ for notebooks (matplotlib only when drawn)
from rnnsim.scenario import Scenario, task_dims

PHASES = ("idle", "forward", "forward_done", "backward", "backward_done")

#: the sentinel's array names for the codes of rnnsim._fused
_FORWARD_ARRAYS = {_fused.HIDDEN: "hidden", _fused.CELL_STATE: "cell_state", _fused.OUTPUTS: "outputs"}
_BACKWARD_ARRAYS = {_fused.GRAD_HIDDEN: "grad_hidden", _fused.GRAD_INPUTS: "grad_inputs"}

#: overflow and NaN are expected in the lessons on exploding gradients: the sentinel reports them, not warnings
_quiet = np.errstate(over="ignore", invalid="ignore", divide="ignore")


def _quiet_unless_fused(method):
    """``method`` under _quiet, except on the fused path (Simulation._fused), where no NumPy ufunc runs."""
    quiet = _quiet(method)

    @functools.wraps(method)
    def run(self, *args):
        return (method if self._fused else quiet)(self, *args)
    return run

#: the finiteness checks run over blocks of at most this many elements (a boolean temporary of that many bytes)
_CHECK_BLOCK = 16 << 20


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
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._optimizer = make_optimizer(sc.training, self.params)
        self._ws = self._cell.allocate(T, B, D, self.H, self.dtype, m)
        self.attention_readout = m.readout == "attention"
        if self.attention_readout:
            # the attention readout's arrays live in the same workspace (counted by nbytes, read by diagnostics)
            z = lambda *shape: np.zeros(shape, dtype=self.dtype)  # noqa: E731
            H = self.H
            self._ws.__dict__.update(ro_q=z(T, B, H), ro_ctx=z(T, B, H), ro_alpha=z(T, B, T), ro_dq=z(T, B, H),
                                     ro_dc=z(T, B, H), ro_dalpha=z(T))

        self._X = np.zeros((T, B, D), dtype=self.dtype)
        self._Y = np.zeros((T, B), dtype=np.int64) if self.classification else np.zeros((T, B, O), dtype=self.dtype)
        self._M = np.zeros((T, B), dtype=bool)
        self._out = np.zeros((T, B, O), dtype=self.dtype)
        self._dout = np.zeros((T, B, O), dtype=self.dtype)

        self._fused = self._can_fuse()
        if self._fused:   # (T·B, ·) views for the kernels of rnnsim._fused
            self._h2 = self._ws.h.reshape(T * B, self.H)
            self._dh2 = self._ws.dh.reshape(T * B, self.H)
            self._out2 = self._out.reshape(T * B, O)
            self._dout2 = self._dout.reshape(T * B, O)
            self._cs_checked = self._ws.c if self.cell_name == "lstm" else self._ws.h
            self._grads_ids = self._grads_flat = None

        self._data_rng = np.random.default_rng([self.seed, 1])
        self._draw_batch()
        self._new_batch_due = False

        self.t = 0                # forward steps done in this pass
        self.bt = 0               # backward steps done in this pass
        self.phase = "idle"
        self.iteration = 0        # updates applied
        self.loss: float | None = None
        self.history: list[UpdateInfo] = History()
        self.sentinel: Sentinel | None = None

    def _draw_batch(self) -> None:
        x, y, mask = tasks.make_batch(self.scenario.task, self._data_rng, self.dtype)
        self._X[:] = x.transpose(1, 0, 2)
        self._Y[:] = y.transpose(1, 0) if self.classification else y.transpose(1, 0, 2)
        self._M[:] = mask.T

    def _can_fuse(self) -> bool:
        """Whether a pass runs in Numba only: a recurrent cell in cached mode whose per-step products stay in its
        Numba loop and whole-sequence products are small (see _common.gemm), and the linear readout. Then the
        readout, the loss and the sentinel's checks run as single calls of rnnsim._fused, and no NumPy ufunc
        (nor errstate) is needed: at small sizes those NumPy calls cost more than the time loop."""
        if self.attention_readout or self._cell.G == 0 or self._ws.K:
            return False
        GH = self._cell.G * self.H
        return not step_gemm_in_numpy(self.B, self.H, GH) and small_gemms(self.T * self.B, GH, self.D, self.H,
                                                                           self.O)

    # ----------------------------------------------------------------------------------- public array views
    inputs = property(lambda self: self._X.transpose(1, 0, 2), doc="(B, T, D) task inputs")
    targets = property(lambda self: self._Y.T if self.classification else self._Y.transpose(1, 0, 2),
                       doc="(B, T, O) float targets, or (B, T) int64 classes")
    loss_mask = property(lambda self: self._M.T, doc="(B, T) positions whose output enters the loss")
    hidden = property(lambda self: self._ws.h.transpose(1, 0, 2), doc="(B, T, H) h_t after step t")
    outputs = property(lambda self: self._out.transpose(1, 0, 2), doc="(B, T, O) readout of h_t (and c_t)")
    grad_hidden = property(lambda self: self._ws.dh.transpose(1, 0, 2), doc="(B, T, H) total dL/dh_t")
    grad_inputs = property(lambda self: self._ws.dx.transpose(1, 0, 2), doc="(B, T, D) dL/dx_t")

    @property
    def cell_state(self):
        """(B, T, H) LSTM c_t, None for other cells."""
        return self._ws.c.transpose(1, 0, 2) if self.cell_name == "lstm" else None

    @property
    def dependent_steps(self) -> int:
        """Sequential operations of one forward pass (Vaswani et al. 2017, table 1): T for rnn/lstm/gru (each step
        waits for the previous one), 1 for attention (every position is independent given the inputs)."""
        return 1 if self.cell_name == "attention" else self.T

    @property
    def max_path_length(self) -> int:
        """Hops on the longest shortest path from the input x_0 to the output at T−1 (Vaswani et al. 2017, table 1):
        T−1 recurrent steps for rnn/lstm/gru, 1 attention step for the attention cell. With the attention readout
        the output at T−1 reads h_0 directly, so it is 1 there too (T = 1: 0)."""
        if self.cell_name == "attention" or self.attention_readout:
            return min(1, self.T - 1)
        return self.T - 1

    # --------------------------------------------------------------------------------------------- forward
    @_quiet_unless_fused
    def _begin_forward(self) -> None:
        if self._new_batch_due:
            self._draw_batch()
            self._new_batch_due = False
        self._cell.begin_forward(self._ws, self._X, self.params)
        self.t = 0
        self.bt = 0
        self.loss = None
        self.phase = "forward"

    @_quiet_unless_fused
    def _forward_to(self, t1: int) -> None:
        t0 = self.t
        self._cell.run_forward(self._ws, self.params, self.scenario.model, t0, t1)
        if self._fused:
            self._forward_tail_fused(t0, t1)
            return
        self._readout(t0, t1)
        self.t = t1
        if self.sentinel is None:
            arrays = [("hidden", self._ws.h)]
            if self.cell_name == "lstm":
                arrays.append(("cell_state", self._ws.c))
            arrays.append(("outputs", self._out))
            self._check_steps("forward", arrays, t0, t1)
        if t1 == self.T:
            self._finish_forward(self._compute_loss())

    def _finish_forward(self, loss: float) -> None:
        """The pass reached t = T: keep the loss, and name it in the sentinel if it is not finite."""
        self.loss = float(loss)
        self.phase = "forward_done"
        if self.sentinel is None and not math.isfinite(self.loss):
            self.sentinel = Sentinel(self.iteration, "forward", None, "loss")

    def _forward_tail_fused(self, t0: int, t1: int) -> None:
        """The rest of _forward_to in one Numba call: readout, checks, and at t1 = T the loss."""
        p, ws = self.params, self._ws
        check = self.sentinel is None
        # counted per pass, not per batch: loss_mask is a writable view of _M
        n = int(self._M.sum()) if t1 == self.T else 0
        scale = self.dtype.type(2.0 / max(1, n * self.O))  # the MSE's 2/count in the arrays' dtype, as NumPy rounds it
        code, t, loss = _fused.forward_tail(
            t0, t1, self.B, self._h2, p["readout.weight"].T, p["readout.bias"], self._out2, ws.h, self._cs_checked,
            self.cell_name == "lstm", check, self._out, None if self.classification else self._Y,
            self._Y if self.classification else None, self._M, self._dout, scale, n)
        self.t = t1
        if check and code != _fused.OK:
            self.sentinel = Sentinel(self.iteration, "forward", t, _FORWARD_ARRAYS[code])
        if t1 == self.T:
            self._finish_forward(loss)

    def _readout(self, t0: int, t1: int) -> None:
        """outputs for steps [t0, t1) from h_0..h_{t1-1}: linear, or the attention readout."""
        if self.attention_readout:
            self._attention_readout_forward(t0, t1)
        else:
            gemm(self._ws.h[t0:t1].reshape(-1, self.H), self.params["readout.weight"].T,
                 self._out[t0:t1].reshape(-1, self.O))
        self._out[t0:t1] += self.params["readout.bias"]

    def _attention_readout_forward(self, t0: int, t1: int) -> None:
        """out_t = W_o [h_t; c_t] (bias added by the caller), c_t = Σ_{j≤t} α_tj h_j, α_t = softmax_j(q_t·h_j/√H),
        q_t = W_q h_t, for t in [t0, t1): each step needs only h_0..h_t, so stepping works."""
        ws, p, H = self._ws, self.params, self.H
        h = ws.h[t0:t1].reshape(-1, H)
        np.matmul(h, p["attn.query.weight"].T, out=ws.ro_q[t0:t1].reshape(-1, H))
        attend(t0, t1, ws.ro_q, ws.h, ws.h, 1.0 / math.sqrt(H), ws.ro_alpha, ws.ro_ctx)
        W = p["readout.weight"]
        out = self._out[t0:t1].reshape(-1, self.O)
        np.matmul(h, W[:, :H].T, out=out)
        out += ws.ro_ctx[t0:t1].reshape(-1, H) @ W[:, H:].T

    def step_forward(self) -> bool:
        """Run one time step forward. Returns False once t == T (then ``loss`` is set)."""
        if self.phase != "forward":
            if self.phase == "forward_done" or self.phase == "backward":
                return False
            self._begin_forward()
        if self.t < self.T:
            self._forward_to(self.t + 1)
        return self.t < self.T

    def forward(self) -> float:
        """The whole sequence for the whole batch (finishing a stepped pass if one is under way); the loss."""
        if self.phase != "forward":
            self._begin_forward()
        self._forward_to(self.T)
        return self.loss

    def _compute_loss(self) -> float:
        """The loss and, into ``_dout``, its gradient with respect to every output."""
        out, M = self._out, self._M
        n = int(M.sum())
        self._dout[:] = 0
        if n == 0:
            return 0.0
        if self.classification:
            logits = out[M]                                   # (n, O)
            shifted = logits - logits.max(axis=1, keepdims=True)
            logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            y = self._Y[M]
            loss = -logp[np.arange(n), y].mean()
            d = np.exp(logp)
            d[np.arange(n), y] -= 1.0
            self._dout[M] = d / n
        else:
            diff = (out - self._Y) * M[:, :, None]
            count = n * self.O
            loss = float(np.vdot(diff, diff)) / count
            self._dout[:] = diff * (2.0 / count)
        return float(loss)

    # -------------------------------------------------------------------------------------------- backward
    @_quiet_unless_fused
    def _begin_backward(self) -> None:
        ws = self._ws
        Wo = self.params["readout.weight"]
        # the part of dL/dh_t that comes through the readout at step t; BPTT adds the recurrent part
        if self._fused:
            _fused.readout_backward(self._dout2, Wo, self._h2, self._dh2, self.grads["readout.weight"],
                                    self.grads["readout.bias"])
        else:
            if self.attention_readout:
                self._attention_readout_backward()
            else:
                gemm(self._dout.reshape(-1, self.O), Wo, ws.dh.reshape(-1, self.H))
                gemm(self._dout.reshape(-1, self.O).T, ws.h.reshape(-1, self.H), self.grads["readout.weight"])
            np.sum(self._dout, axis=(0, 1), out=self.grads["readout.bias"])
        self._cell.begin_backward(ws)
        self.bt = 0
        self.phase = "backward"

    def _attention_readout_backward(self) -> None:
        """The attention readout's whole gradient with respect to every h_j, into ws.dh (before BPTT: the readout
        does not feed the recurrence), and the gradients of readout.weight and attn.query.weight:
            dh_t  = dout_t W_o[:, :H]                       (direct)
            dc_t  = dout_t W_o[:, H:];  dα_tj = dc_t·h_j;  ds_tj = α_tj (dα_tj − Σ α_t dα_t)/√H
            dh_j += α_tj dc_t + ds_tj q_t   (j ≤ t: h_j as value and as key);  dq_t = Σ_j ds_tj h_j
            dh_t += dq_t W_q                                (h_t as the query)
        """
        ws, p, H, O = self._ws, self.params, self.H, self.O
        dout = self._dout.reshape(-1, O)
        h = ws.h.reshape(-1, H)
        W = p["readout.weight"]
        dh = ws.dh.reshape(-1, H)
        np.matmul(dout, W[:, :H], out=dh)
        gW = self.grads["readout.weight"]
        gW[:, :H] = dout.T @ h
        gW[:, H:] = dout.T @ ws.ro_ctx.reshape(-1, H)
        np.matmul(dout, W[:, H:], out=ws.ro_dc.reshape(-1, H))
        attend_grad(self.T - 1, 0, ws.ro_q, ws.h, ws.h, ws.ro_alpha, ws.ro_dc, 1.0 / math.sqrt(H),
                        ws.ro_dq, ws.dh, ws.dh, ws.ro_dalpha)
        dq = ws.ro_dq.reshape(-1, H)
        dh += dq @ p["attn.query.weight"]
        np.matmul(dq.T, h, out=self.grads["attn.query.weight"])

    @_quiet_unless_fused
    def _backward_to(self, bt1: int) -> None:
        t_hi = self.T - 1 - self.bt
        t_lo = self.T - bt1
        self._cell.run_backward(self._ws, self.params, self.scenario.model, t_hi, t_lo)
        self.bt = bt1
        if self._fused:
            self._backward_checks_fused(t_hi, t_lo)
            return
        if self.sentinel is None:
            self._check_steps("backward", [("grad_hidden", self._ws.dh)], t_lo, t_hi + 1, reverse=True)
        if bt1 == self.T:
            self._cell.finish_backward(self._ws, self._X, self.params, self.grads, self.scenario.model)
            self.phase = "backward_done"
            if self.sentinel is None:
                if not np.isfinite(self._ws.dx).all():
                    t = int(np.nonzero(~np.isfinite(self._ws.dx).all(axis=(1, 2)))[0][-1])
                    self.sentinel = Sentinel(self.iteration, "backward", t, "grad_inputs")
                else:
                    for name, g in self.grads.items():
                        if not np.isfinite(g).all():
                            self.sentinel = Sentinel(self.iteration, "backward", None, f"grads[{name}]")
                            break

    def _backward_checks_fused(self, t_hi: int, t_lo: int) -> None:
        """The rest of _backward_to with the checks as single Numba calls (same order, same sentinel)."""
        ws = self._ws
        done = self.bt == self.T
        if done:
            self._cell.finish_backward(ws, self._X, self.params, self.grads, self.scenario.model)
            self.phase = "backward_done"
        if self.sentinel is not None:
            return
        if not done:
            t = _fused.first_nonfinite_step(ws.dh, t_lo, t_hi + 1, True)
            code = _fused.GRAD_HIDDEN if t >= 0 else _fused.OK
        else:
            code, t = _fused.backward_checks(ws.dh, t_lo, t_hi, ws.dx, self._flat_grads())
        if code == _fused.GRADS:
            self.sentinel = Sentinel(self.iteration, "backward", None, f"grads[{list(self.grads)[t]}]")
        elif code != _fused.OK:
            self.sentinel = Sentinel(self.iteration, "backward", t, _BACKWARD_ARRAYS[code])

    def _flat_grads(self) -> tuple:
        """1-D views of the gradient arrays, in order (cached; rebuilt if an entry of ``grads`` was replaced: the
        views keep the arrays they were made from alive, so their ids cannot be reused meanwhile)."""
        ids = tuple(map(id, self.grads.values()))
        if ids != self._grads_ids:
            self._grads_flat = tuple([g.reshape(-1) for g in self.grads.values()])
            self._grads_ids = ids
        return self._grads_flat

    def _require_forward(self) -> None:
        if self.phase not in ("forward_done", "backward", "backward_done"):
            raise RuntimeError("backward needs a complete forward pass first (call forward() or step_forward() "
                               f"until it returns False); phase is {self.phase!r}")

    def step_backward(self) -> bool:
        """Run one BPTT step, from t = T−1 down to 0. Returns False once done (then ``grads`` are set)."""
        self._require_forward()
        if self.phase == "backward_done":
            return False
        if self.phase == "forward_done":
            self._begin_backward()
        self._backward_to(self.bt + 1)
        return self.bt < self.T

    def backward(self) -> None:
        """The whole BPTT (finishing a stepped one if under way): fills grads, grad_hidden, grad_inputs."""
        self._require_forward()
        if self.phase != "backward":
            self._begin_backward()
        self._backward_to(self.T)

    # ---------------------------------------------------------------------------------------------- update
    @_quiet
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
                name = next((f"grads[{k}]" for k, g in self.grads.items() if not np.isfinite(g).all()), "grad_norm")
                self.sentinel = Sentinel(self.iteration, "update", None, name)
        else:
            self._optimizer.step(self.params, self.grads)
            info = UpdateInfo(self.iteration + 1, self.loss, res.norm, res.clipped_norm, res.clipped, True,
                              res.cosine)
            for name, p in self.params.items():
                if not np.isfinite(p).all():
                    self.sentinel = Sentinel(self.iteration, "update", None, f"params[{name}]")
                    info = UpdateInfo(info.iteration, info.loss, info.grad_norm, info.clipped_norm, info.clipped,
                                      False, info.cosine)
                    break
        self.iteration += 1
        self.history.append(info)
        self.phase = "idle"
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
            self.forward()
            if self.sentinel is None:
                self.backward()
            if self.phase == "backward_done":
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
        self.phase = "idle"

    # ------------------------------------------------------------------------------------------- internals
    @property
    def workspace(self):
        """The cell's preallocated time-major arrays (for diagnostics)."""
        return self._ws

    def _check_steps(self, phase, arrays, t0, t1, reverse=False) -> None:
        """Set the sentinel at the first time step in [t0, t1) (in pass order) where an array is non-finite."""
        for name, a in arrays:
            if t1 - t0 == 1:  # the step API: one step, checked without the block bookkeeping
                if not np.isfinite(a[t0]).all():
                    self.sentinel = Sentinel(self.iteration, phase, t0, name)
                    return
                continue
            # in blocks of steps, so the boolean temporary stays small however long the sequence
            step = max(1, _CHECK_BLOCK // max(1, a[0].size))
            blocks = range(t0, t1, step)
            for lo in (reversed(blocks) if reverse else blocks):
                hi = min(lo + step, t1)
                ok = np.isfinite(a[lo:hi]).reshape(hi - lo, -1).all(axis=1)
                if not ok.all():
                    bad = np.nonzero(~ok)[0]
                    t = lo + int(bad[-1] if reverse else bad[0])
                    self.sentinel = Sentinel(self.iteration, phase, t, name)
                    return

    def __repr__(self) -> str:
        return (f"Simulation({self.scenario.scenario.name!r}, cell={self.cell_name}, T={self.T}, B={self.B}, "
                f"H={self.H}, phase={self.phase}, t={self.t}, bt={self.bt}, iteration={self.iteration})")
