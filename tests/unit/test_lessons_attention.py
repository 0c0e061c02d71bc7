"""The lessons on problems 4 to 6 (sequential computation, fixed-size state, recency bias), on the shipped files."""

import numpy as np

from rnnsim import Simulation, diagnostics, load_scenario


def test_parallel_dependent_steps_constant_for_attention_growing_for_rnn():
    sc = load_scenario("parallel")
    pts = diagnostics.parallel_timing(sc, lengths=(16, 64, 256), repeats=1, batch_size=2)
    rnn = {p.length: p for p in pts if p.cell == "rnn"}
    att = {p.length: p for p in pts if p.cell == "attention"}
    assert [rnn[T].dependent_steps for T in (16, 64, 256)] == [16, 64, 256]
    assert [att[T].dependent_steps for T in (16, 64, 256)] == [1, 1, 1]
    assert [rnn[T].max_path_length for T in (16, 64, 256)] == [15, 63, 255]
    assert {att[T].max_path_length for T in (16, 64, 256)} == {1}
    assert all(p.forward_s > 0 and p.backward_s > 0 for p in pts)


def test_attention_forward_has_no_sequential_dependency():
    """Every position of a whole attention pass equals the position computed alone by the step API."""
    sc = load_scenario("parallel").with_changes({"model.cell": "attention", "task.length": 24})
    whole, stepped = Simulation(sc), Simulation(sc)
    whole.forward()
    while stepped.step_forward():
        pass
    np.testing.assert_allclose(stepped.hidden, whole.hidden, rtol=1e-12, atol=1e-13)


def test_bottleneck_memory_capacity_below_h_and_growing():
    sc = load_scenario("bottleneck")
    totals = [diagnostics.memory_capacity(sc.with_changes({"model.hidden_size": H}), length=2000).total
              for H in (4, 8, 16, 32)]
    assert all(t <= H for t, H in zip(totals, (4, 8, 16, 32)))
    assert all(b > a for a, b in zip(totals, totals[1:]))
    mc8 = diagnostics.memory_capacity(sc, max_delay=24, length=2000)
    assert mc8.per_delay[sc.task.delay] < 0.2          # the delay the task asks for is past what H = 8 keeps


def test_bottleneck_attention_recalls_past_the_state_size():
    """Short version of the lesson: attention beats the baseline by far where the H = 8 RNN cannot."""
    sc = load_scenario("bottleneck")
    rnn = Simulation(sc).train(900)
    att = Simulation(sc.with_changes({"model.cell": "attention"})).train(900)
    mean = lambda h: np.mean([x.loss for x in h[-50:]])  # noqa: E731
    assert mean(rnn) > 0.5 * sc_baseline(sc) and mean(att) < 0.05 * mean(rnn)


def sc_baseline(sc):
    return Simulation(sc).baseline


def test_recency_rnn_concentrates_influence_on_the_last_steps():
    sc = load_scenario("recency")
    shares = {cell: share for cell, (infl, share) in diagnostics.influence_by_cell(sc).items()}
    assert shares["rnn"] > 0.95
    # the share outside the last 10% is many times larger for the LSTM and attention
    assert (1 - shares["lstm"]) > 10 * (1 - shares["rnn"])
    assert (1 - shares["attention"]) > 10 * (1 - shares["rnn"])
