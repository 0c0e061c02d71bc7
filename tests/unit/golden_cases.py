"""The golden set: arrays of every cell, readout, dtype, execution mode and API, saved from the code as it was before
the redesign of issue 10 (tests/data/golden.npz), which tests/unit/test_golden.py recomputes and compares exactly.

Execution modes are forced at tiny sizes by lowering the tunable thresholds (wherever they live: the kernels'
config module, or the old rnnsim/cells/_common.py), so T = 7, B = 3, H = 5 reach every path:

    small     the defaults: the single-call small pass (linear readout, cached, small products)
    numpy     MT_GEMM_FLOPS = 0: cached mode, whole-sequence products through NumPy, no small pass
    stepblas  STEP_GEMM_FLOPS = 0: the per-step products from Python through NumPy's BLAS (the LSTM then folds the
              input projection into them: projection-folded)
    chunked   CACHE_LIMIT = -1, CHUNK_STEPS = 3: chunked mode
    chunkblas chunked and STEP_GEMM_FLOPS = 0

Write the file again (only from the code of before the redesign!) with ``python -m tests.unit.golden_cases``.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
from pathlib import Path

import numpy as np

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden.npz"

MODES = {
    "small": {},
    "numpy": {"MT_GEMM_FLOPS": 0.0},
    "stepblas": {"STEP_GEMM_FLOPS": 0.0},
    "chunked": {"CACHE_LIMIT": -1, "CHUNK_STEPS": 3},
    "chunkblas": {"CACHE_LIMIT": -1, "CHUNK_STEPS": 3, "STEP_GEMM_FLOPS": 0.0},
}

CELLS = {
    "rnn-tanh": {"model.cell": "rnn"},
    "rnn-relu": {"model.cell": "rnn", "model.activation": "relu"},
    "rnn-ln": {"model.cell": "rnn", "model.layernorm": True},
    "lstm": {"model.cell": "lstm", "model.forget_bias": 1.0},
    "gru": {"model.cell": "gru", "model.forget_bias": -0.5},
    "attn": {"model.cell": "attention"},
    "rnn-aro": {"model.cell": "rnn", "model.readout": "attention"},
    "lstm-aro": {"model.cell": "lstm", "model.readout": "attention"},
}

TASKS = {
    "sine": {},
    "copy": {"task.kind": "copy", "task.length": 9, "task.symbols": 2, "task.alphabet": 3},
}

#: training settings, taken in turn by the cases
TRAINING = [
    {"training.optimizer": "sgd", "training.clip": "none"},
    {"training.optimizer": "momentum", "training.clip": "norm", "training.clip_threshold": 0.05},
    {"training.optimizer": "adam", "training.clip": "value", "training.clip_threshold": 0.01},
    {"training.optimizer": "adam", "training.clip": "norm", "training.clip_threshold": 0.5},
]


def _tunables_module():
    for name in ("rnnsim.kernels.config", "rnnsim.cells._common"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError("no module with the tunables")


@contextlib.contextmanager
def tunables(**values):
    """Set the tunable thresholds for the duration (restored after)."""
    mod = _tunables_module()
    old = {k: getattr(mod, k) for k in values}
    for k, v in values.items():
        setattr(mod, k, v)
    try:
        yield
    finally:
        for k, v in old.items():
            setattr(mod, k, v)


def scenario(**changes):
    from tests.unit.conftest import small_scenario
    return small_scenario(**changes)


def _arrays(sim, prefix, out):
    out[prefix + "loss"] = np.array(np.nan if sim.loss is None else sim.loss)
    for name in ("hidden", "outputs", "grad_hidden", "grad_inputs"):
        out[prefix + name] = np.array(getattr(sim, name))
    if sim.cell_state is not None:
        out[prefix + "cell_state"] = np.array(sim.cell_state)
    for k, v in sim.grads.items():
        out[f"{prefix}grads[{k}]"] = v.copy()


def _sentinel(sim):
    s = sim.sentinel
    return "" if s is None else f"{s.iteration}|{s.phase}|{s.t}|{s.array}"


def _diagnostics(sim, prefix, out):
    from rnnsim import diagnostics

    out[prefix + "profile"] = diagnostics.gradient_profile(sim)
    out[prefix + "influence"] = diagnostics.input_influence(sim)
    for k, v in diagnostics.gate_means(sim).items():
        out[f"{prefix}gate[{k}]"] = v
    if sim.cell_name != "attention":
        out[prefix + "jac0"] = diagnostics.step_jacobians(sim, 0, slice(0, 1))
        out[prefix + "jacT"] = diagnostics.step_jacobians(sim, sim.T - 1, slice(1, 2))
        out[prefix + "jacnorms"] = diagnostics.jacobian_norms(sim)
        sp = diagnostics.spectrum(sim)
        out[prefix + "spectrum"] = np.array([sp.radius, sp.sigma_max])
        out[prefix + "verdict"] = np.array(sp.verdict)
    else:
        out[prefix + "attnw"] = diagnostics.attention_weights(sim)
    if sim.attention_readout:
        out[prefix + "attnw"] = diagnostics.attention_weights(sim)


def cases():
    """(name, mode, scenario changes, stepwise, train settings) of every case."""
    train = itertools.cycle(TRAINING)
    for cell, mode, dtype, task, stepwise in itertools.product(CELLS, MODES, ("float64", "float32"), TASKS,
                                                               (False, True)):
        if cell in ("attn", "rnn-aro", "lstm-aro") and mode not in ("small", "numpy"):
            continue   # no chunked mode for attention; the attention readout never takes the small pass
        if task == "copy" and (stepwise or mode in ("stepblas", "chunkblas")):
            continue   # classification: whole passes, the three main modes
        changes = {**CELLS[cell], **TASKS[task], "model.dtype": dtype}
        tr = next(train) if not stepwise else None
        yield f"{cell}/{mode}/{dtype}/{task}/{'step' if stepwise else 'whole'}", mode, changes, stepwise, tr
    # B = 6 > SMALL_STEP_ROWS: step_dot's BLAS branch (RNN)
    for mode in ("small", "numpy"):
        yield f"rnn-b6/{mode}/float64/sine/whole", mode, {"task.batch_size": 6}, False, TRAINING[1]


def _sentinel_cases():
    """Scenarios that go non-finite: (name, changes, how to break the parameters)."""
    def huge_relu(sim):      # h grows 1e80 per step: inf in hidden partway through
        sim.params["weight_hh"][:] = 1e80 * np.eye(sim.H)
        sim.params["weight_ih"][:] = 1.0

    def loss_inf(sim):       # h finite (1e150 after two steps), outputs squared: inf in the loss
        sim.params["weight_hh"][:] = 1e150 * np.eye(sim.H)
        sim.params["weight_ih"][:] = 1.0

    def grad_inf(sim):       # forward finite (h_4 ~ 1e150), BPTT multiplies by 1e100 per step: inf at t = 2
        sim.params["weight_hh"][:] = 1e100 * np.eye(sim.H)
        sim.params["weight_ih"][:] = 1e-250
        sim.params["weight_ih"][::2] = -1e-250
        sim.params["bias_ih"][:] = 0.0
        sim.params["bias_hh"][:] = 0.0

    def nan_readout(sim):
        sim.params["readout.weight"][0, 0] = np.nan

    for mode in ("small", "numpy", "chunked"):
        yield f"sent-hidden/{mode}", mode, {"model.cell": "rnn", "model.activation": "relu"}, huge_relu
        yield f"sent-loss/{mode}", mode, {"model.cell": "rnn", "model.activation": "relu", "task.length": 3}, \
            loss_inf
        yield f"sent-out/{mode}", mode, {"model.cell": "lstm"}, nan_readout
        yield f"sent-grad/{mode}", mode, {"model.cell": "rnn", "model.activation": "relu", "task.length": 5}, grad_inf


def compute_all() -> dict[str, np.ndarray]:
    from rnnsim import Simulation

    out: dict[str, np.ndarray] = {}
    for name, mode, changes, stepwise, tr in cases():
        with tunables(**MODES[mode]):
            sim = Simulation(scenario(**changes, **(tr or {}), **{"training.iterations": 3}))
            p = name + ":"
            if stepwise:
                more = []
                while sim.step_forward():
                    more.append(sim.t)
                out[p + "fw_t"] = np.array(more)
                out[p + "fwloss"] = np.array(sim.loss)
                while sim.step_backward():
                    pass
            else:
                sim.forward()
                sim.backward()
            _arrays(sim, p, out)
            if not stepwise or mode == "chunked":
                _diagnostics(sim, p, out)
            if tr is not None:
                hist = sim.train(3)
                out[p + "history"] = np.array([[h.loss, h.grad_norm, h.clipped_norm, h.cosine, h.clipped, h.finite]
                                               for h in hist], dtype=np.float64)
                for k, v in sim.params.items():
                    out[f"{p}params[{k}]"] = v.copy()
                out[p + "after_loss"] = np.array(sim.forward())
            out[p + "sentinel"] = np.array(_sentinel(sim))
    for name, mode, changes, breaker in _sentinel_cases():
        with tunables(**MODES[mode]):
            for stepwise in (False, True):
                sim = Simulation(scenario(**changes))
                breaker(sim)
                p = f"{name}/{'step' if stepwise else 'whole'}:"
                if stepwise:
                    while sim.step_forward():
                        pass
                    while sim.sentinel is None and sim.step_backward():
                        pass
                    out[p + "fw_sentinel"] = np.array(_sentinel(sim))
                    _arrays(sim, p, out)
                hist = sim.train(2)
                out[p + "history"] = np.array([[h.loss, h.grad_norm, h.finite] for h in hist])
                out[p + "sentinel"] = np.array(_sentinel(sim))
    return out


if __name__ == "__main__":
    arrays = compute_all()
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(GOLDEN, **arrays)
    print(f"{GOLDEN}: {len(arrays)} arrays, {GOLDEN.stat().st_size / 1e6:.2f} MB")
