"""The digits-pixel lesson's claims (docs/lessons.md), measured on the shipped scenario in a few seconds."""

import numpy as np
import pytest

from rnnsim import Simulation, datasets, diagnostics, load_scenario

pytest.importorskip("sklearn")


def ratio(sc):
    sim = Simulation(sc)
    sim.forward()
    sim.backward()
    p = diagnostics.gradient_profile(sim)
    return p[0] / p[-1]


def test_tanh_rnn_vanishes_at_init_and_learns_anyway():
    sc = load_scenario("digits-pixel")
    assert sc.task.length == 64 and sc.model.cell == "rnn"
    assert ratio(sc) < 1e-10
    sim = Simulation(sc)
    hist = sim.train(300)
    assert np.mean([h.loss for h in hist[-50:]]) < 2.0          # below chance, log 10 ≈ 2.30
    assert datasets.evaluate(sim)["heldout_accuracy"] > 0.25    # chance: 10%


def test_irnn_has_the_best_gradient_at_init_and_its_units_die():
    sc = load_scenario("digits-pixel").with_changes({"model.activation": "relu", "model.init": "identity"})
    assert ratio(sc) > 1e-2
    sim = Simulation(sc)
    hist = sim.train(200)
    sim.forward()
    assert (sim.hidden <= 0).all()                              # every ReLU unit dead on this batch
    assert abs(np.mean([h.loss for h in hist[-50:]]) - np.log(10)) < 0.02
    assert datasets.evaluate(sim)["heldout_accuracy"] < 0.2
