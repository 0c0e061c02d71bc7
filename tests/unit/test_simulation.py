"""The Simulation API contract (DESIGN.md §2): determinism, phases, clipping, optimizers, sentinel, state dicts."""

import math

import numpy as np
import pytest

from rnnsim import Simulation, tasks
from rnnsim.optim import clip_, global_norm
from tests.unit.conftest import small_scenario


def test_same_scenario_and_seed_give_identical_arrays():
    sc = small_scenario()
    a, b = Simulation(sc), Simulation(sc)
    a.train(3)
    b.train(3)
    for name in ("inputs", "targets", "hidden", "grad_hidden", "grad_inputs", "outputs"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    c = Simulation(sc.with_changes({"scenario.seed": 4}))
    assert not np.array_equal(c.params["weight_hh"], a.params["weight_hh"])


def test_switching_the_cell_keeps_the_data_and_the_readout():
    sc = small_scenario()
    a = Simulation(sc)
    b = Simulation(sc.with_changes({"model.cell": "lstm"}))
    np.testing.assert_array_equal(a.inputs, b.inputs)
    np.testing.assert_array_equal(a.targets, b.targets)
    np.testing.assert_array_equal(a.params["readout.weight"], b.params["readout.weight"])


def test_shapes_and_dtypes_follow_the_contract():
    sim = Simulation(small_scenario(**{"model.cell": "lstm"}))
    B, T, H = sim.B, sim.T, sim.H
    sim.forward()
    sim.backward()
    assert sim.inputs.shape == (B, T, sim.D) and sim.hidden.shape == (B, T, H)
    assert sim.cell_state.shape == (B, T, H) and sim.outputs.shape == (B, T, sim.O)
    assert sim.grad_hidden.shape == (B, T, H) and sim.grad_inputs.shape == (B, T, sim.D)
    assert sim.loss_mask.shape == (B, T) and sim.loss_mask.dtype == bool
    assert sim.params["weight_ih"].shape == (4 * H, sim.D) and sim.params["weight_hh"].shape == (4 * H, H)
    assert sim.params["bias_ih"].shape == (4 * H,) and sim.params["readout.weight"].shape == (sim.O, H)
    assert Simulation(small_scenario()).cell_state is None
    copy = Simulation(small_scenario(**{"task.kind": "copy", "task.length": 9, "task.symbols": 2}))
    assert copy.targets.dtype == np.int64 and copy.targets.shape == (copy.B, copy.T)


def test_forget_bias_sets_the_forget_and_update_blocks():
    for cell in ("lstm", "gru"):
        sim = Simulation(small_scenario(**{"model.cell": cell, "model.forget_bias": 3.0}))
        H = sim.H
        assert np.all(sim.params["bias_ih"][H:2 * H] == 3.0) and np.all(sim.params["bias_hh"][H:2 * H] == 0.0)
        assert not np.all(sim.params["bias_ih"][:H] == 3.0)


def test_inits_and_recurrent_scale():
    sim = Simulation(small_scenario(**{"model.init": "orthogonal", "model.recurrent_scale": 0.5}))
    W = sim.params["weight_hh"]
    np.testing.assert_allclose(W @ W.T, 0.25 * np.eye(sim.H), atol=1e-12)
    irnn = Simulation(small_scenario(**{"model.init": "identity", "model.activation": "relu"}))
    np.testing.assert_array_equal(irnn.params["weight_hh"], np.eye(irnn.H))
    assert not irnn.params["bias_hh"].any()


def test_step_api_phases_and_errors():
    sim = Simulation(small_scenario())
    with pytest.raises(RuntimeError, match="forward"):
        sim.step_backward()
    with pytest.raises(RuntimeError, match="backward"):
        sim.apply_update()
    assert sim.step_forward() is True and sim.t == 1 and sim.loss is None
    results = [sim.step_forward() for _ in range(sim.T - 1)]
    assert results[-1] is False and all(results[:-1]) and sim.loss is not None
    assert sim.step_forward() is False  # nothing left
    assert sim.step_backward() is True and sim.bt == 1
    # the profile is NaN where BPTT has not reached yet
    from rnnsim.diagnostics import gradient_profile
    prof = gradient_profile(sim)
    assert np.isnan(prof[:-1]).all() and np.isfinite(prof[-1])
    while sim.step_backward():
        pass
    assert sim.phase == "backward_done"
    info = sim.apply_update()
    assert info.iteration == 1 and sim.iteration == 1 and sim.phase == "idle"


def test_clip_norm_keeps_direction_and_bounds_norm(rng):
    grads = {"a": rng.standard_normal((4, 3)) * 10, "b": rng.standard_normal(5) * 10}
    before = np.concatenate([g.ravel() for g in grads.values()])
    res = clip_(grads, "norm", 1.0)
    after = np.concatenate([g.ravel() for g in grads.values()])
    assert res.clipped and res.norm == pytest.approx(np.linalg.norm(before))
    assert res.clipped_norm == pytest.approx(1.0) and global_norm(grads) == pytest.approx(1.0)
    np.testing.assert_allclose(after / np.linalg.norm(after), before / np.linalg.norm(before), atol=1e-14)
    assert res.cosine == 1.0
    small = {"a": np.full(3, 0.1)}
    assert not clip_(small, "norm", 1.0).clipped and np.all(small["a"] == 0.1)


def test_clip_value_bounds_elements_and_reports_the_turn(rng):
    grads = {"a": rng.standard_normal(50) * 3}
    before = grads["a"].copy()
    res = clip_(grads, "value", 1.0)
    assert res.clipped and (before < -1).any() and (np.abs(before) < 1).any()
    np.testing.assert_array_equal(grads["a"], np.clip(before, -1.0, 1.0))   # bounded: clamped, in-range untouched
    expected_cos = before @ grads["a"] / (np.linalg.norm(before) * np.linalg.norm(grads["a"]))
    assert res.cosine == pytest.approx(expected_cos) and res.cosine < 0.999


def test_apply_update_clips_like_the_scenario_says():
    sim = Simulation(small_scenario(**{"training.clip": "norm", "training.clip_threshold": 1e-4}))
    sim.forward()
    sim.backward()
    raw = global_norm(sim.grads)
    info = sim.apply_update()
    assert info.grad_norm == pytest.approx(raw) and info.clipped
    assert info.clipped_norm == pytest.approx(1e-4) and global_norm(sim.grads) == pytest.approx(1e-4)


@pytest.mark.parametrize("opt", ["sgd", "momentum", "adam"])
def test_optimizers_reduce_the_loss_on_a_fixed_batch(opt):
    sim = Simulation(small_scenario(**{"training.optimizer": opt, "training.learning_rate": 0.05,
                                       "training.fresh_data": False}))
    hist = sim.train(40)
    assert len(hist) == 40 and all(h.finite for h in hist)
    assert hist[-1].loss < 0.7 * hist[0].loss


def test_sgd_step_is_exactly_p_minus_lr_g():
    sim = Simulation(small_scenario(**{"training.learning_rate": 0.1}))
    before = sim.state_dict()
    sim.forward()
    sim.backward()
    g = {k: v.copy() for k, v in sim.grads.items()}
    sim.apply_update()
    for k in before:
        np.testing.assert_allclose(sim.params[k], before[k] - 0.1 * g[k], rtol=1e-15, atol=1e-15)


def test_fresh_data_each_iteration_and_fixed_batch():
    fresh = Simulation(small_scenario())
    x0 = fresh.inputs.copy()
    fresh.train(1)
    np.testing.assert_array_equal(fresh.inputs, x0)   # arrays still belong to the pass just run
    fresh.forward()
    assert not np.array_equal(fresh.inputs, x0)
    fixed = Simulation(small_scenario(**{"training.fresh_data": False}))
    fixed.train(2)
    fixed.forward()
    np.testing.assert_array_equal(fixed.inputs, x0)


def test_train_callback_can_stop():
    sim = Simulation(small_scenario())
    seen = []
    hist = sim.train(10, callback=lambda info: seen.append(info.iteration) or info.iteration < 3)
    assert [h.iteration for h in hist] == [1, 2, 3] and seen == [1, 2, 3]


def test_global_norm_survives_overflow():
    g = {"a": np.full(4, 1e200), "b": np.zeros(3)}
    assert global_norm(g) == pytest.approx(2e200)
    res = clip_(g, "norm", 1.0)
    assert res.clipped and global_norm(g) == pytest.approx(1.0)
    assert math.isinf(global_norm({"a": np.array([np.inf, 1.0])}))


def test_sentinel_catches_the_first_non_finite_value():
    sim = Simulation(small_scenario())
    sim.params["weight_hh"][0, 0] = np.nan
    hist = sim.train(5)
    assert len(hist) == 1 and not hist[0].finite
    s = sim.sentinel
    assert s is not None and s.phase == "forward" and s.t == 0 and s.array == "hidden" and s.iteration == 0
    assert "hidden" in str(s) and "t = 0" in str(s)
    assert sim.train(3) == []  # stopped cleanly; reset() clears it
    sim.reset()
    assert sim.sentinel is None and np.isfinite(sim.params["weight_hh"]).all()


def test_exploding_relu_network_trips_the_sentinel_and_leaves_weights_finite():
    sc = small_scenario(**{"model.activation": "relu", "model.init": "identity", "model.recurrent_scale": 40.0,
                           "task.length": 60, "training.learning_rate": 1.0})
    sim = Simulation(sc)
    hist = sim.train(50)
    assert sim.sentinel is not None and not hist[-1].finite
    assert all(np.isfinite(p).all() for p in sim.params.values())


def test_adding_task_always_one_baseline():
    sc = small_scenario(**{"task.kind": "adding", "task.length": 50, "task.batch_size": 4000})
    x, y, mask = tasks.make_batch(sc.task, np.random.default_rng(0))
    assert x.shape == (4000, 50, 2) and (x[:, :, 1].sum(axis=1) == 2).all()
    mse = np.mean((1.0 - y[mask]) ** 2)
    assert mse == pytest.approx(1 / 6, abs=0.01)
    assert tasks.baseline(sc.task) == pytest.approx(0.1667, abs=1e-3)


def test_copy_task_layout_and_baseline():
    sc = small_scenario(**{"task.kind": "copy", "task.length": 30, "task.symbols": 4, "task.alphabet": 5})
    x, y, mask = tasks.make_batch(sc.task, np.random.default_rng(0), batch_size=64)
    codes = x.argmax(axis=2)
    np.testing.assert_array_equal(y[:, -4:], codes[:, :4])      # recall the first S symbols
    assert (codes[:, 30 - 4 - 1] == 6).all()                     # delimiter K+1
    assert mask.all() and (y[:, :-4] == 0).all()
    assert tasks.baseline(sc.task) == pytest.approx(4 * math.log(5) / 30)


def test_delayed_recall_targets():
    sc = small_scenario(**{"task.kind": "delayed_recall", "task.length": 20, "task.delay": 3})
    x, y, mask = tasks.make_batch(sc.task, np.random.default_rng(0))
    np.testing.assert_array_equal(y[:, 3:, 0], x[:, :-3, 0])
    assert not mask[:, :3].any() and mask[:, 3:].all()


def test_state_dict_round_trip_and_mismatches():
    a = Simulation(small_scenario(**{"model.cell": "gru"}))
    b = Simulation(small_scenario(**{"model.cell": "gru", "model.init": "normal"}))
    assert a.forward() != b.forward()
    b.load_state_dict(a.state_dict())
    assert a.forward() == b.forward()
    with pytest.raises(KeyError, match="missing"):
        b.load_state_dict({"weight_ih": a.params["weight_ih"]})
    bad = a.state_dict()
    bad["weight_hh"] = bad["weight_hh"][:, :-1]
    with pytest.raises(ValueError, match="shape"):
        b.load_state_dict(bad)


def test_reconfigure_keeps_weights_for_training_changes_and_rebuilds_for_model_changes():
    sc = small_scenario()
    sim = Simulation(sc)
    sim.train(2)
    w = sim.params["weight_hh"].copy()
    assert sim.reconfigure(sc.with_changes({"training.clip": "norm"})) is False
    np.testing.assert_array_equal(sim.params["weight_hh"], w)
    assert sim.scenario.training.clip == "norm" and sim.iteration == 2
    assert sim.reconfigure(sc.with_changes({"model.cell": "gru"})) is True
    fresh = Simulation(sc.with_changes({"model.cell": "gru"}))
    np.testing.assert_array_equal(sim.params["weight_hh"], fresh.params["weight_hh"])
    np.testing.assert_array_equal(sim.inputs, fresh.inputs)
    assert sim.iteration == 0


def test_reset_with_new_seed():
    sim = Simulation(small_scenario())
    w = sim.params["weight_hh"].copy()
    sim.reset(seed=77)
    assert sim.seed == 77 and not np.array_equal(w, sim.params["weight_hh"])
    sim.reset()
    np.testing.assert_array_equal(w, sim.params["weight_hh"])


def test_callback_sees_the_non_finite_iteration():
    sim = Simulation(small_scenario())
    sim.params["weight_hh"][0, 0] = np.inf
    seen = []
    hist = sim.train(5, callback=seen.append)
    assert seen == hist and len(seen) == 1 and not seen[0].finite


def test_step_api_sentinel_names_the_step_where_nan_entered():
    sim = Simulation(small_scenario())
    sim._X[3, 1, 0] = np.nan              # a NaN in the input at t = 3, batch element 1 (time-major store)
    steps = 0
    while sim.step_forward():
        steps += 1
    assert steps == sim.T - 1             # the pass runs to the end; the sentinel remembers the first step
    s = sim.sentinel
    assert s is not None and (s.phase, s.t, s.array) == ("forward", 3, "hidden")


@pytest.mark.parametrize("changes", [
    {},
    {"model.cell": "lstm", "training.optimizer": "adam", "training.clip": "norm"},
    {"model.cell": "gru", "model.num_layers": 2, "training.optimizer": "momentum"},
    {"model.cell": "attention"},
    {"model.readout": "attention", "model.layernorm": True},
    {"model.dtype": "float32", "model.hidden_size": 128, "task.batch_size": 8, "task.length": 20},
], ids=["rnn", "lstm-adam", "gru-2-layers", "attention-cell", "attention-readout", "float32-packed-size"])
def test_a_simulation_is_freed_when_its_last_reference_goes(changes):
    """No reference cycle: a Simulation's arrays go back to the allocator as soon as nobody holds it, not at the next
    run of the cyclic garbage collector (a sweep worker grew by ~5 MB per run while it waited)."""
    import gc
    import weakref

    sc = small_scenario(**changes)
    Simulation(sc).train(2)  # compiled, caches warm: only the Simulation's own objects are left to look at
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    try:
        sim = Simulation(sc)
        sim.train(2)
        sim.forward()
        sim.backward()
        ref = weakref.ref(sim)
        del sim
        assert ref() is None
    finally:
        if was:
            gc.enable()
