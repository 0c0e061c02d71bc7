"""Each built-in scenario's lesson, as a claim that could fail: measured on the shipped files, in seconds."""

import numpy as np
import pytest

from rnnsim import Simulation, diagnostics, load_scenario
from rnnsim.scenario import builtin_scenarios


def ratio(name, **changes):
    """‖dL/dh_0‖ / ‖dL/dh_{T−1}‖ of one forward and backward pass of a built-in scenario."""
    sc = load_scenario(name)
    sim = Simulation(sc.with_changes(changes) if changes else sc)
    sim.forward()
    sim.backward()
    p = diagnostics.gradient_profile(sim)
    return p[0] / p[-1]


@pytest.mark.parametrize("name", sorted(builtin_scenarios()))
def test_every_builtin_loads_runs_and_has_a_lesson(name):
    sc = load_scenario(name)
    assert sc.scenario.description and len(sc.lesson.steps) >= 2
    short = {"task.order": "row"} if sc.task.kind == "digits" else {"task.length": min(sc.task.length, 30)}
    small = sc.with_changes({**short, "task.batch_size": 4})
    sim = Simulation(small)
    hist = sim.train(2)
    assert len(hist) >= 1 and sim.iteration >= 1


def test_vanishing_tanh_rnn_vanishes_and_every_fix_keeps_the_gradient():
    assert ratio("vanishing") < 1e-3
    fixes = {name: ratio(name) for name in ("vanishing-lstm", "vanishing-gru", "irnn", "layernorm")}
    assert all(r > 1e-2 for r in fixes.values()), fixes
    # switching the cell inside the vanishing scenario (its forget_bias = 3 applies to gated cells) also fixes it
    assert ratio("vanishing", **{"model.cell": "lstm"}) > 1e-2
    assert ratio("vanishing", **{"model.cell": "gru"}) > 1e-3


def test_gating_without_the_forget_bias_vanishes_too():
    """The lesson's honest half: an LSTM or GRU at PyTorch's default biases vanishes as badly as a tanh RNN."""
    assert ratio("vanishing-lstm", **{"model.forget_bias": None}) < 1e-6
    assert ratio("vanishing-gru", **{"model.forget_bias": None}) < 1e-6


def test_irnn_needs_the_identity_init():
    assert ratio("irnn") > 0.1
    assert ratio("irnn", **{"model.init": "orthogonal"}) < 1e-10
    assert ratio("irnn", **{"model.init": "pytorch"}) < 1e-10


def test_exploding_reaches_non_finite_without_clipping_and_stays_finite_with_it():
    sc = load_scenario("exploding")
    sim = Simulation(sc)
    sim.forward()
    sim.backward()
    assert ratio("exploding") > 1e2
    hist = Simulation(sc).train(sc.training.iterations)
    assert not hist[-1].finite
    for name in ("clip-norm", "clip-value"):
        clipped = load_scenario(name)
        sim = Simulation(clipped)
        hist = sim.train(clipped.training.iterations)
        assert len(hist) == clipped.training.iterations and all(h.finite for h in hist), name
        assert sim.sentinel is None
        assert max(h.clipped_norm for h in hist) <= clipped.training.clip_threshold * (1 + 1e-9) or name == "clip-value"


def test_norm_clipping_keeps_the_direction_value_clipping_turns_it():
    norm = Simulation(load_scenario("clip-norm")).train(5)
    value = Simulation(load_scenario("clip-value")).train(5)
    assert all(h.cosine == 1.0 for h in norm)
    assert value[0].clipped and value[0].cosine < 0.9
    # same seed, same first gradient before clipping
    assert norm[0].grad_norm == pytest.approx(value[0].grad_norm, rel=1e-12)


def test_adding_scenarios_share_task_and_seed():
    a, b = load_scenario("adding"), load_scenario("adding-lstm")
    assert a.task == b.task and a.training == b.training and a.scenario.seed == b.scenario.seed
    sa, sb = Simulation(a), Simulation(b)
    np.testing.assert_array_equal(sa.inputs, sb.inputs)


def test_copy_scenarios_share_task_seed_and_budget_and_state_the_baseline():
    import math

    a, b = load_scenario("copy"), load_scenario("copy-gru")
    assert (a.model.cell, b.model.cell) == ("rnn", "gru")
    assert a.task == b.task and a.training == b.training and a.scenario.seed == b.scenario.seed
    S, K, T = a.task.symbols, a.task.alphabet, a.task.length
    assert T - 2 * S == 50                                            # the lag the lesson talks about
    assert Simulation(a).baseline == pytest.approx(S * math.log(K) / T)


def test_stacked_gradient_shrinks_down_the_stack_and_back_in_time_and_the_bottom_keeps_more_at_t0():
    """stacked's lesson: at the last step the gradient falls layer by layer down the stack; back in time it falls
    in every layer; at t = 0 the bottom layer keeps more than the top (more paths); an LSTM with a forget bias
    in every layer keeps the top layer's."""
    sim = Simulation(load_scenario("stacked"))
    sim.forward()
    sim.backward()
    d = diagnostics.depth_profile(sim)            # (3, T), row 0 = the bottom layer
    assert d[2, -1] > d[1, -1] > d[0, -1]
    assert all(d[layer, 0] < 1e-2 * d[layer, -1] for layer in range(3))
    assert d[0, 0] > 10 * d[2, 0]
    lstm = Simulation(load_scenario("stacked").with_changes({"model.cell": "lstm"}))
    lstm.forward()
    lstm.backward()
    assert diagnostics.depth_profile(lstm)[2, 0] > 1e4 * d[2, 0]
