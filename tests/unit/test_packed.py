"""The packed per-step products (rnnsim/kernels/packed.py): the micro-kernel against NumPy, the packing layouts,
the plan's choice, and every cell through the packed path: the NumPy references and finite differences in float64
(packed only when the tests allow it, config.PACKED_ITEMSIZES), float32 against the unpacked path and torch."""

import numpy as np
import pytest

from rnnsim import Simulation
from rnnsim.kernels import config as tunables
from rnnsim.kernels import packed
from rnnsim.kernels.loader import jit, load_kernels
from tests.unit import test_cells as tc
from tests.unit.conftest import CONFIGS, small_scenario

needs_avx512 = pytest.mark.skipif(not packed.available(), reason="the packed kernels need AVX-512F")

H32 = {"model.hidden_size": 32}


@pytest.fixture
def packed_everywhere(monkeypatch):
    """Packed at test sizes (H = 32) and in float64 too."""
    for name in ("PACKED_MIN_H", "PACKED_MIN_ROWS", "PACKED_MIN_FLOPS"):
        monkeypatch.setattr(tunables, name, 0)
    monkeypatch.setattr(tunables, "PACKED_ITEMSIZES", (4, 8))


@pytest.fixture(params=["cached", "chunked"])
def memory_mode(request, monkeypatch):
    if request.param == "chunked":
        monkeypatch.setattr(tunables, "CACHE_LIMIT", -1)
        monkeypatch.setattr(tunables, "CHUNK_STEPS", 3)
    return request.param


@jit
def _call_rec_dot(a, W, out):
    packed.rec_dot(a, W, out, None, 1)


def _packed(W):
    """W (K, N) packed by ``pack``."""
    K, N = W.shape
    Wp = np.zeros((N // packed.NR, K, packed.NR), dtype=W.dtype)
    packed.pack(Wp, W)
    return Wp


def test_pack_layouts_are_panels_of_32_columns(rng):
    W = rng.standard_normal((7, 96))
    Wp = _packed(W)
    np.testing.assert_array_equal(Wp, W.reshape(7, 3, 32).transpose(1, 0, 2))


@needs_avx512
def test_a_pass_packs_w_hh_transposed_for_forward_and_w_hh_for_bptt(packed_everywhere, memory_mode):
    """Every mode a packed plan runs in: the forward's panels are W_hh^T's, the backward's W_hh's, after the updates
    too."""
    sim = Simulation(small_scenario(**CONFIGS["gru"], **H32))
    sim.train(2)
    sim.forward()
    W = sim.params["weight_hh"]                      # (3H, H)
    ws = sim.workspace
    np.testing.assert_array_equal(ws.Wp_f, W.T.reshape(32, 3, 32).transpose(1, 0, 2))
    np.testing.assert_array_equal(ws.Wp_b, W.reshape(96, 1, 32).transpose(1, 0, 2))


@needs_avx512
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("M", [1, 2, 3, 7, 8, 13, 32])
@pytest.mark.parametrize("K,N", [(1, 32), (5, 64), (128, 96), (300, 512)])
def test_packed_dot_matches_numpy(rng, dtype, M, K, N):
    A64 = rng.standard_normal((M, K + 3))[:, 1:K + 1]     # a row stride that is not K
    W64 = rng.standard_normal((K, N))
    A, W = A64.astype(dtype), W64.astype(dtype)
    out = np.full((M, N + 8), np.nan, dtype=dtype)[:, :N]  # an out row stride that is not N; the rest untouched
    packed.packed_dot(A, _packed(W), out)
    ref = A.astype(np.float64) @ W.astype(np.float64)
    tol = 1e-12 if dtype == "float64" else 2e-6
    assert np.abs(out - ref).max() <= tol * np.abs(A).max() * np.abs(W).max() * K
    assert np.isnan(out.base[:, N:]).all()


@needs_avx512
def test_packed_dot_propagates_nan_and_inf(rng):
    A = rng.standard_normal((8, 16)).astype(np.float32)
    A[3, 5] = np.nan
    A[6, 2] = np.inf
    W = rng.standard_normal((16, 32)).astype(np.float32)
    out = np.zeros((8, 32), np.float32)
    packed.packed_dot(A, _packed(W), out)
    assert np.isnan(out[3]).all() and not np.isfinite(out[6]).any() and np.isfinite(np.delete(out, [3, 6], 0)).all()


def test_rec_dot_with_a_2d_weight_is_np_dot_bit_for_bit(rng):
    """The unpacked path compiles to exactly the np.dot it replaced (float64 results unchanged)."""
    load_kernels()
    a, W = rng.standard_normal((5, 40)), rng.standard_normal((40, 24))
    out, ref = np.empty((5, 24)), np.empty((5, 24))
    _call_rec_dot(a, W, out)
    np.dot(a, W, ref)
    np.testing.assert_array_equal(out, ref)


@needs_avx512
@pytest.mark.parametrize("cell,G", [("rnn", 1), ("lstm", 4), ("gru", 3)])
def test_plan_packs_float32_from_128_hidden_units_4_rows_and_2_mflop(cell, G):
    def plan(H, dtype="float32", B=32):
        sc = small_scenario(**{"model.cell": cell, "model.hidden_size": H, "model.dtype": dtype,
                               "task.batch_size": B})
        return Simulation(sc).workspace.plan

    assert plan(512).packed and plan(512, B=4).packed and plan(256, B=32).packed
    assert "packed W_hh" in plan(256).describe()
    assert not plan(96).packed and not plan(160 + 16).packed and not plan(256, "float64").packed
    assert not plan(512, B=3).packed and not plan(512, B=1).packed
    # the per-step product's FLOPs: 2·B·H·G·H against PACKED_MIN_FLOPS (2e6)
    assert plan(128, B=32).packed == (2 * 32 * 128 * G * 128 >= 2e6)
    assert plan(256, B=8).packed == (2 * 8 * 256 * G * 256 >= 2e6)
    p = plan(512)
    assert not p.step_blas and p.mode.value != "projection-folded"


def test_plan_never_packs_without_avx512(monkeypatch):
    monkeypatch.setattr(packed, "_AVAILABLE", False)
    sc = small_scenario(**{"model.cell": "lstm", "model.hidden_size": 256, "model.dtype": "float32",
                           "task.batch_size": 32})
    assert not Simulation(sc).workspace.plan.packed


@needs_avx512
def test_estimate_counts_the_packed_copies(monkeypatch):
    from rnnsim.scenario import estimate_bytes

    sc = small_scenario(**{"model.cell": "lstm", "model.hidden_size": 256, "model.dtype": "float32",
                           "task.batch_size": 32})
    with_packed = estimate_bytes(sc)
    monkeypatch.setattr(tunables, "PACKED_MIN_H", 10**9)
    assert with_packed - estimate_bytes(sc) == 2 * 4 * 4 * 256 * 256     # two float32 copies of W_hh (4H × H)


@needs_avx512
def test_every_cell_takes_the_packed_path_at_test_sizes(packed_everywhere, memory_mode):
    for name, changes in CONFIGS.items():
        ws = Simulation(small_scenario(**changes, **H32)).workspace
        assert ws.plan.packed and ws.Wp_f.shape[1] == 32 and ws.Wp_b.shape[2] == 32, name


@needs_avx512
def test_packed_matches_numpy_reference(config, packed_everywhere, memory_mode):
    name, changes = config
    sim = Simulation(small_scenario(**changes, **H32))
    assert sim.workspace.plan.packed
    sim.forward()
    sim.backward()
    fw, g, dh, dx = tc.reference(sim)
    np.testing.assert_allclose(sim._ws.h, fw["h"], rtol=0, atol=1e-13)
    np.testing.assert_allclose(sim._ws.dh, dh, rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(sim._ws.dx, dx, rtol=1e-11, atol=1e-14)
    for k, v in g.items():
        np.testing.assert_allclose(sim.grads[k], v, rtol=1e-11, atol=1e-14, err_msg=k)


@needs_avx512
@pytest.mark.parametrize("task", ["sine", "copy"])
def test_packed_gradients_match_finite_differences(config, packed_everywhere, memory_mode, task):
    _, changes = config
    extra = {"task.kind": "copy", "task.length": 9, "task.symbols": 2, "task.alphabet": 3} if task == "copy" else {}
    sim = Simulation(small_scenario(**changes, **H32).with_changes(extra))
    assert sim.workspace.plan.packed
    sim.forward()
    sim.backward()
    grads = {k: v.copy() for k, v in sim.grads.items()}
    for k in sim.params:
        err = tc._fd_check(sim, sim.params[k], grads[k])
        assert err < 1e-6, f"{k}: relative error {err:.2e}"


@needs_avx512
def test_packed_grad_hidden_matches_finite_differences(config, packed_everywhere):
    _, changes = config
    tc.check_grad_hidden_by_finite_differences(Simulation(small_scenario(**changes, **H32)), seed=5)


@needs_avx512
def test_packed_step_by_step_equals_whole_pass(config, packed_everywhere, memory_mode):
    _, changes = config
    sc = small_scenario(**changes, **H32)
    a, b = Simulation(sc), Simulation(sc)
    a.forward()
    a.backward()
    while b.step_forward():
        pass
    while b.step_backward():
        pass
    for name in ("hidden", "grad_hidden", "grad_inputs"):   # the tolerance of test_cells' unpacked version
        np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=1e-13, atol=1e-15, err_msg=name)
    for k in a.grads:
        np.testing.assert_allclose(b.grads[k], a.grads[k], rtol=1e-13, atol=1e-15, err_msg=k)


@needs_avx512
def test_packed_weights_follow_the_updates(packed_everywhere):
    """W_hh is packed at the start of every pass: training packed equals training unpacked (float64) to 1e-12."""
    sc = small_scenario(**CONFIGS["lstm"], **H32)
    a = Simulation(sc)
    assert a.workspace.plan.packed
    a.train(5)
    tunables.PACKED_ITEMSIZES = (4,)          # (the fixture's monkeypatch restores it)
    b = Simulation(sc)
    assert not b.workspace.plan.packed
    b.train(5)
    for k in a.params:
        np.testing.assert_allclose(a.params[k], b.params[k], rtol=1e-12, atol=1e-14, err_msg=k)


@needs_avx512
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("layers", [1, 2])
def test_float32_packed_matches_float32_blas_path(cell, layers, monkeypatch):
    """At a production size (H = 256, B = 32), packed float32 against the BLAS path: to float32 accuracy."""
    sc = small_scenario(**{"model.cell": cell, "model.hidden_size": 256, "model.dtype": "float32",
                           "model.num_layers": layers, "task.batch_size": 32, "task.length": 30})
    a = Simulation(sc)
    assert a.workspace.plan.packed
    a.forward()
    a.backward()
    monkeypatch.setattr(tunables, "PACKED_MIN_H", 10**9)
    b = Simulation(sc)
    assert not b.workspace.plan.packed
    b.forward()
    b.backward()
    np.testing.assert_allclose(a.hidden, b.hidden, rtol=0, atol=2e-6)
    np.testing.assert_allclose(a.grad_hidden, b.grad_hidden, rtol=0, atol=2e-5 * np.abs(b.grad_hidden).max())
    for k in a.grads:
        np.testing.assert_allclose(a.grads[k], b.grads[k], rtol=0, atol=2e-5 * np.abs(b.grads[k]).max(), err_msg=k)


@needs_avx512
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_float32_packed_matches_torch_fused(cell):
    torch = pytest.importorskip("torch")
    sc = small_scenario(**{"model.cell": cell, "model.hidden_size": 128, "model.dtype": "float32",
                           "task.batch_size": 32, "task.length": 20})
    sim = Simulation(sc)
    assert sim.workspace.plan.packed
    sim.forward()
    sim.backward()
    layer = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](sim.D, sim.H, dtype=torch.float32)
    sd = {f"{k}_l0": torch.tensor(v) for k, v in sim.state_dict().items() if not k.startswith("readout")}
    layer.load_state_dict(sd)
    x = torch.tensor(np.ascontiguousarray(sim._X), requires_grad=True)          # (T, B, D), time-major
    y, _ = layer(x)
    G = torch.tensor(sim._dout @ sim.params["readout.weight"])                    # the readout's part of dL/dh_t
    y.backward(G)
    np.testing.assert_allclose(sim._ws.h, y.detach().numpy(), rtol=0, atol=2e-6)
    np.testing.assert_allclose(sim._ws.dx, x.grad.numpy(), rtol=0, atol=2e-5 * np.abs(sim._ws.dx).max())
    for k, p in layer.named_parameters():
        ours = sim.grads[k.removesuffix("_l0")]
        np.testing.assert_allclose(ours, p.grad.numpy(), rtol=0, atol=2e-5 * np.abs(ours).max(), err_msg=k)


# ------------------------------------------------------------------ products shared with a helper thread
@pytest.fixture
def sharing(packed_everywhere, monkeypatch):
    """The team at test sizes (T = 7) whatever this process's affinity; records every call's sync array."""
    from rnnsim.kernels import team

    monkeypatch.setattr(tunables, "TEAM_MIN_STEPS", 2)
    monkeypatch.setattr(tunables, "TEAM_MIN_CORES", 1)
    monkeypatch.setattr(team, "_enabled", True)
    monkeypatch.setattr(team, "FREE_WAIT", 30.0)      # a loaded test machine may keep the helper from leaving
    monkeypatch.setattr(team, "BACKOFF", False)       # at T = 9 the helper may take no panel at all
    monkeypatch.setattr(team, "_skip", 0)
    calls = []
    start = team.start

    def recording(*args):
        sync = start(*args)
        calls.append(sync)
        return sync

    monkeypatch.setattr(team, "start", recording)
    return calls


def _wait_ack(sync):
    import time

    from rnnsim.kernels import team

    deadline = time.monotonic() + 30
    while sync[team.ACK] == 0:
        assert time.monotonic() < deadline, "the helper never left its job"
        time.sleep(0.001)


def _pass(sc):
    sim = Simulation(sc)
    sim.forward()
    sim.backward()
    return sim


@needs_avx512
@pytest.mark.parametrize("layers", [1, 2])
def test_shared_products_equal_the_alone_ones_bit_for_bit(config, sharing, layers, monkeypatch):
    """Every panel is computed by the same code whichever thread takes it: h_t, dL/dh_t, dL/da_t and the gradients
    are those of the pass without the helper, bit for bit (and dW_hh the reference's to rounding)."""
    from rnnsim.kernels import team

    _, changes = config
    sc = small_scenario(**changes, **H32, **{"model.num_layers": layers, "task.length": 9})
    _pass(sc)                     # the helper's first job of these types loads its kernel: meanwhile, alone
    for sync in filter(lambda s: s is not None, sharing):
        _wait_ack(sync)
    sharing.clear()
    a = _pass(sc)
    shared = [s for s in sharing if s is not None]
    assert len(shared) == 2 * layers                       # every layer's forward and BPTT went through the team
    for sync in shared:
        _wait_ack(sync)
        assert sync[team.GOAL] > 0 and sync[team.FIN] == sync[team.GOAL], sync   # every panel was finished
    if layers == 1:
        _, g, _, _ = tc.reference(a)
        np.testing.assert_allclose(a.grads["weight_hh"], g["weight_hh"], rtol=1e-11, atol=1e-14)
    monkeypatch.setattr(team, "_enabled", False)
    b = _pass(sc)
    for wa, wb in zip(a._stack.ws, b._stack.ws):
        for name in ("h", "dh", "dgh", "dx"):
            np.testing.assert_array_equal(getattr(wa, name), getattr(wb, name), err_msg=name)
    for k in a.grads:
        np.testing.assert_array_equal(a.grads[k], b.grads[k], err_msg=k)


@needs_avx512
def test_the_helper_computes_the_panels_it_claims():
    """The helper's side alone: product 1 published with nobody else claiming, the helper takes every panel (from
    the top) and the result is a @ W; told to stop, it acknowledges."""
    import threading

    from rnnsim.kernels import team
    from rnnsim.kernels.loader import load_kernels

    load_kernels()
    rng = np.random.default_rng(3)
    K, N, M = 64, 128, 8
    W = rng.standard_normal((K, N)).astype(np.float32)
    Wp = np.zeros((N // packed.NR, K, packed.NR), np.float32)
    packed.pack(Wp, W)
    first = rng.standard_normal((M, K)).astype(np.float32)
    src = np.zeros((3, M, K), np.float32)
    out = np.zeros((M, N), np.float32)
    sync = np.zeros(team.SIZE, np.int64)
    P = Wp.shape[0]
    sync[team.CLAIM] = (1 << team.K_SHIFT) | P           # product 1 (operand ``first``), panels 0..P-1 free
    helper = threading.Thread(target=team.help_steps, args=(sync, Wp, out, first, src, True))
    helper.start()
    import time

    deadline = time.monotonic() + 30
    while sync[team.FIN] < P:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    sync[team.STOP] = 1
    helper.join(30)
    assert sync[team.ACK] == 1 and sync[team.HELPED] == P
    np.testing.assert_allclose(out, first.astype(np.float64) @ W, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("busy", [False, True])
def test_split_runs_every_unit_once_on_either_thread(sharing, busy, monkeypatch):
    import threading
    import types

    from rnnsim.kernels import team

    ws = types.SimpleNamespace(plan=types.SimpleNamespace(packed=True))
    if busy:                              # the helper still on its last job: this thread runs every unit
        monkeypatch.setattr(team, "_last", np.zeros(team.SIZE, np.int64))
        monkeypatch.setattr(team, "_free", lambda wait=None: False)
    ran, lock = [], threading.Lock()

    def unit(i):
        def run():
            with lock:
                ran.append((i, threading.get_ident()))
        return run

    assert team.split(ws, 50, [unit(i) for i in range(5)])
    assert sorted(i for i, _ in ran) == list(range(5))
    if busy:
        assert {who for _, who in ran} == {threading.get_ident()}
    monkeypatch.setattr(team, "_enabled", False)
    assert not team.split(ws, 50, [unit(9)]) and len(ran) == 5


def test_a_failing_unit_fails_the_split_and_the_helper_lives_on(sharing, monkeypatch):
    import time
    import types

    from rnnsim.kernels import team

    ws = types.SimpleNamespace(plan=types.SimpleNamespace(packed=True))

    def fail():
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        team.split(ws, 50, [lambda: time.sleep(0.2), fail])
    monkeypatch.setattr(team, "_enabled", True)         # (turned off if the helper was the one that failed)
    assert team._free(wait=5.0)
    ran = []
    assert team.split(ws, 50, [lambda: ran.append(1), lambda: ran.append(2)]) and sorted(ran) == [1, 2]


@needs_avx512
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_whole_sequence_gradients_shared_equal_alone(sharing, cell, monkeypatch):
    """Past the small-gradient sizes, dW_hh (two parts added), dW_ih, the biases and dL/dx (a third unit) are
    the same bit for bit whichever thread ran which unit, or with no helper (a sweep's worker, a pinned process),
    and equal the NumPy reference to rounding."""
    from rnnsim.kernels import team

    monkeypatch.setattr(tunables, "MT_GEMM_FLOPS", 1e5)     # no single-call gradients at this size
    sc = small_scenario(**CONFIGS[cell], **{"model.hidden_size": 64, "task.length": 40, "task.batch_size": 16})
    a = _pass(sc)
    assert not a._ws.plan.small_grads and getattr(a._ws, "team_acc", None) is not None
    _, g, _, _ = tc.reference(a)
    for k in ("weight_hh", "weight_ih", "bias_ih", "bias_hh"):
        np.testing.assert_allclose(a.grads[k], g[k], rtol=1e-10, atol=1e-12, err_msg=k)
    monkeypatch.setattr(team, "_enabled", False)
    b = _pass(sc)
    np.testing.assert_array_equal(a._ws.dx, b._ws.dx)
    for k in a.grads:
        np.testing.assert_array_equal(a.grads[k], b.grads[k], err_msg=k)


@needs_avx512
def test_alone_when_the_helper_is_still_busy(sharing, monkeypatch):
    """A call that finds the helper still on its last job runs alone (no waiting), with the same numbers."""
    from rnnsim.kernels import team

    sc = small_scenario(**CONFIGS["gru"], **H32)
    busy = np.zeros(team.SIZE, np.int64)                 # ACK 0: a job not over yet
    monkeypatch.setattr(team, "FREE_WAIT", 0.001)
    team._last = busy
    try:
        a = _pass(sc)
    finally:
        team._last = None
    assert sharing and all(s is None for s in sharing)
    b = _pass(sc)
    assert any(s is not None for s in sharing)
    for k in a.grads:
        np.testing.assert_allclose(a.grads[k], b.grads[k], rtol=1e-12, atol=1e-15, err_msg=k)


@pytest.mark.parametrize("helped,goal,solo,skips", [(40, 100, 0, [0, 0, 0]), (24, 100, 0, [2, 4, 8]),
                                                    (10, 100, 1, [2, 4, 8]), (40, 100, 1, [0, 0, 0]),
                                                    (0, 0, 0, [0, 0, 0])])
def test_back_off_after_calls_the_helper_hardly_helped(monkeypatch, helped, goal, solo, skips):
    """Under a quarter of the panels: 2, 4, 8, ... calls alone; a call that helped resets (also one that went
    alone after one long wait)."""
    import types

    from rnnsim.kernels import team

    monkeypatch.setattr(team, "_skip", 0)
    monkeypatch.setattr(team, "_backoff", 0)
    monkeypatch.setattr(team, "applies", lambda ws, steps: True)
    monkeypatch.setattr(team, "_submit", lambda fn, args, sync: True)
    ws = types.SimpleNamespace()
    for want in skips:
        sync = np.zeros(team.SIZE, np.int64)
        sync[team.HELPED], sync[team.GOAL], sync[team.SOLO] = helped, goal, solo
        team.stop(sync)
        assert sync[team.STOP] == 1 and team._skip == want
        alone = [team.start(ws, 20, None, None, None, None, True) for _ in range(want)]
        assert alone == [None] * want and team._skip == 0
        assert team.start(ws, 20, None, None, None, None, True) is not None      # then it tries again
    good = np.zeros(team.SIZE, np.int64)
    good[team.HELPED], good[team.GOAL] = 50, 100
    team.stop(good)
    assert team._backoff == 0 and team._skip == 0


@pytest.mark.parametrize("T,D,H", [(100, 8, 256), (100, 8, 512), (3, 8, 128), (50, 512, 32), (1000, 1, 4096)])
def test_balance_gives_the_side_free_thread_at_least_half_of_dw_hh(T, D, H):
    from rnnsim.kernels import team

    a = team.balance(T, D, H)
    assert 1 <= a <= T - 1
    side, hh = 4 * D + team.INPUT_SIDE_COST, 2 * H
    here, there = side + hh * (a - 1) / (T - 1), hh * (T - a) / (T - 1)     # the two threads' work
    assert there >= here - hh / (T - 1) - 1e-9 or a == 1      # the side-free thread never gets less than half
    if 2 * hh > side and T > 20:                             # a balance exists: both end within one step's share
        assert abs(here - there) <= 2 * hh / (T - 1) + 1e-9


def test_team_alone_turns_the_helper_off_for_a_block_and_back(monkeypatch):
    from rnnsim.kernels import team

    monkeypatch.setattr(team, "_enabled", True)
    with team.alone():
        assert team._enabled is False
    assert team._enabled is True
    monkeypatch.setattr(team, "_enabled", False)  # off for good (a failed job, a pool worker): stays off
    with team.alone():
        pass
    assert team._enabled is False


def _team_enabled():
    from rnnsim.kernels import team

    return team._enabled


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="fork only")
def test_sweep_pool_workers_run_without_a_helper():
    """A sweep's pool worker (the real initializer, in a real forked pool): the other cores run the other workers."""
    import concurrent.futures as cf
    import multiprocessing as mp
    import os

    from rnnsim.kernels import team
    from rnnsim.sweep import backends

    assert team._enabled
    with cf.ProcessPoolExecutor(1, mp_context=mp.get_context("fork"), initializer=backends._worker_init,
                                initargs=(None, (), os.getpid())) as pool:
        assert pool.submit(_team_enabled).result(timeout=60) is False
    assert team._enabled  # this process is untouched


@needs_avx512
@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="fork only")
def test_team_works_in_a_forked_child_after_the_parent_used_it(sharing):
    """A sweep's pool workers are forked from a parent that may have used its helper: the child's first shared
    pass must not wait for the parent's helper thread (which the child does not have)."""
    import multiprocessing as mp

    sc = small_scenario(**CONFIGS["lstm"], **H32)
    a = _pass(sc)
    assert any(s is not None for s in sharing)
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_pass, args=(sc, q))
    p.start()
    p.join(60)
    assert p.exitcode == 0, "the child hung or failed"
    used, weight_hh = q.get(timeout=5)
    assert used
    np.testing.assert_allclose(weight_hh, a.grads["weight_hh"], rtol=1e-12, atol=1e-15)


def _child_pass(sc, q):
    from rnnsim.kernels import team

    calls = []
    start = team.start
    team.start = lambda *args: calls.append(start(*args)) or calls[-1]
    b = _pass(sc)
    q.put((any(s is not None for s in calls), b.grads["weight_hh"].copy()))
