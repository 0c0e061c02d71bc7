"""The lesson texts against the numbers they quote (issue 11, "lesson texts that do not match the screen").

Each test measures on the shipped scenario what the student is told to look at, and checks that the text quotes that
number: change either and the test fails.
"""

import math
import time
from types import SimpleNamespace

import numpy as np
import pytest

from rnnsim import Simulation, diagnostics, load_scenario
from rnnsim.play import Play
from rnnsim.tui import knobs


def steps(name) -> str:
    return " ".join(load_scenario(name).lesson.steps)


def ratio(sim):
    sim.forward()
    sim.backward()
    p = diagnostics.gradient_profile(sim)
    return p[0] / p[-1], p


def active_share(sim) -> float:
    """Share of the h_t entries above 0 (ReLU: the units that pass a gradient), over the batch, units and steps."""
    return float((sim.hidden > 0).mean())


# ------------------------------------------------------------------------------------------------- exploding
def test_exploding_sentinel_names_the_step_of_the_loss_and_the_lesson_quotes_it():
    sc = load_scenario("exploding")
    sim = Simulation(sc)
    hist = sim.train(sc.training.iterations)
    s = sim.sentinel
    assert (s.iteration, s.phase, s.t, s.array) == (1, "forward", sc.task.length - 1, "loss")
    assert np.isfinite(sim.hidden).all() and np.isfinite(sim.outputs).all()  # what the lesson says is finite
    assert sim.loss_mask[:, -1].all() and not sim.loss_mask[:, :-1].any()  # the last step is the only loss step
    assert len(hist) == 2 and math.isinf(hist[-1].loss)
    assert f'"{str(s).removeprefix("non-finite value in ")}"' in steps("exploding")


def test_exploding_tanh_step_quotes_what_a_gives():
    sc = load_scenario("exploding")
    tanh = sc.with_changes({"model.activation": knobs.next_value(sc, "model.activation")})
    assert tanh.model.activation == "tanh"
    sim = Simulation(tanh)
    assert diagnostics.spectrum(sim).sigma_max == pytest.approx(1.1)
    r, _ = ratio(Simulation(tanh))
    assert 2.5e3 < r < 3.5e3                                # "ratio ≈ 3·10³"
    hist = sim.train(tanh.training.iterations)
    assert len(hist) == 50 and all(h.finite for h in hist) and sim.sentinel is None   # "all 50 ... without an inf"
    assert 2.5e4 < max(h.grad_norm for h in hist) < 3.5e4   # "largest ‖g‖ ≈ 3·10⁴"
    text = steps("exploding")
    clipped = sc.with_changes({"training.clip": "norm"})  # step 3 turned clipping on; c twice turns it off
    once = clipped.with_changes({"training.clip": knobs.next_value(clipped, "training.clip")})
    assert (once.training.clip, knobs.next_value(once, "training.clip")) == ("value", "none")
    assert "c twice to turn clipping off again (norm → value → none)" in text
    assert "σ_max = 1.1" in text and "ratio ≈ 3·10³" in text and "‖g‖ ≈ 3·10⁴" in text and "1.5" not in text


# --------------------------------------------------------------------------------------------------- clipping
def test_clip_value_step_names_the_real_cycle_of_c():
    sc = load_scenario("clip-value")
    seen = [sc.training.clip]
    for _ in range(2):
        sc = sc.with_changes({"training.clip": knobs.next_value(sc, "training.clip")})
        seen.append(sc.training.clip)
    assert seen == ["value", "none", "norm"]
    assert "press c twice (value → none → norm)" in steps("clip-value").lower()


def _dead_relu(name):
    sc = load_scenario(name)
    sim = Simulation(sc)
    sim.forward()
    at_init = active_share(sim)
    sim.backward()
    per_iteration, losses = [], []
    for _ in range(sc.training.iterations):
        if sim.phase != "backward_done":
            sim.forward()
            sim.backward()
        per_iteration.append(active_share(sim))
        losses.append(sim.loss)
        sim.apply_update()
    _, p = ratio(sim)   # the pass the student plays after training (space)
    return at_init, per_iteration, active_share(sim), p, losses, sim.baseline


@pytest.mark.parametrize("name, share, quoted, dead_to, first_low, low", [
    ("clip-norm", (0.004, 0.006), "0.5%", 96, 7, 0.10),
    ("clip-value", (0.0001, 0.0003), "0.02%", 98, 3, 0.02),
])
def test_clipped_relu_network_dies_as_the_lesson_says(name, share, quoted, dead_to, first_low, low):
    at_init, per_it, after, p, losses, baseline = _dead_relu(name)
    text = steps(name)
    assert 0.95 < at_init < 0.97 and "96% at init" in text
    assert share[0] < after < share[1] and f"{quoted} of the h_t entries are > 0" in text
    assert (p[: dead_to + 1] == 0).all() and p[dead_to + 1] > 0 and f"exactly 0 for t ≤ {dead_to}" in text
    first = next(i for i, x in enumerate(per_it) if x < low)
    assert first == first_low and all(x < low for x in per_it[first:])
    assert f"below {low:.0%} from iteration {first_low}" in text
    if name == "clip-norm":  # "the loss sits at the baseline 1"
        assert baseline == 1.0 and 0.8 < np.mean(losses[-10:]) < 1.2 and "baseline 1" in text
    assert "ReLU units die" in steps("exploding")  # the exploding lesson's clipping step points at it


# ----------------------------------------------------------------------------------------------- adding
@pytest.mark.slow
def test_adding_lstm_forget_gate_and_both_gradients_as_quoted():
    text = steps("adding-lstm")
    lstm = Simulation(load_scenario("adding-lstm"))
    r0, _ = ratio(Simulation(load_scenario("adding-lstm")))
    assert 1.5e-8 < r0 < 2.5e-8 and "2·10⁻⁸ at init" in text
    lstm.train(3000)
    r, _ = ratio(lstm)
    assert 0.06 < r < 0.08 and "≈ 0.07 of the last step's" in text
    mean_f = diagnostics.gate_means(lstm)["forget"]
    assert f"between {mean_f.min():.2f} and {mean_f.max():.2f} at every t ({mean_f.mean():.2f} on average)" in text
    H = lstm.H
    f = lstm.workspace.gates[:, :, H:2 * H]               # (T, B, H) forget gates of the last pass
    per_unit = f.mean(axis=(0, 1))
    open_units = np.nonzero(per_unit > 0.98)[0]
    assert len(open_units) == 2 and "2 units keep f ≈ 0.99" in text
    assert 0.92 < min(float(f[:, :, k].min()) for k in open_units) < 0.94 and "lowest f ≈ 0.93" in text
    assert int((per_unit < 0.5).sum()) == 8 and "8 sit below 0.5" in text
    assert H == 32 and "mean over 32 units" in text


@pytest.mark.slow
def test_adding_tanh_gradient_at_t0_as_quoted():
    text = steps("adding-lstm")
    sim = Simulation(load_scenario("adding"))
    r0, _ = ratio(Simulation(load_scenario("adding")))
    assert 2.5e-25 < r0 < 3.5e-25 and "≈ 3·10⁻²⁵ of the last step's at init" in text
    sim.train(3000)
    r, _ = ratio(sim)
    assert 1e-70 < r < 1e-60 and "≈ 10⁻⁶⁵ after 3000 iterations" in text


# ------------------------------------------------------------------------------------------------ vanishing
def test_vanishing_cursor_ratio_and_the_verdict_after_s_s():
    from rnnsim.tui.widgets.gradient import cursor_text

    text = steps("vanishing")
    sc = load_scenario("vanishing")
    sim = Simulation(sc)
    r, p = ratio(sim)
    frame = SimpleNamespace(hidden=sim.hidden[0], T=sim.T, profile=p, jacobian=np.full(sim.T, 0.9), gates={},
                            hidden_filled=sim.T)
    assert f"={r:.2e}×last" in cursor_text(frame, 0) and f"ratio to the last step's, {r:.2e}" in text
    assert "×last" not in cursor_text(frame, sim.T - 1)  # the last step is the reference itself
    up = sc
    for _ in range(2):  # S S
        up = up.with_changes({"model.recurrent_scale": knobs.scale_step(float(up.model.recurrent_scale), True)})
    assert up.model.recurrent_scale == pytest.approx(1.0)
    r1, _ = ratio(Simulation(up))
    assert f"reads a ratio of {r1:.2e}" in text and r1 < 1e-3  # still vanishing
    assert diagnostics.spectrum(Simulation(sc)).verdict.startswith("vanishing guaranteed")
    assert diagnostics.spectrum(Simulation(up)).verdict.startswith("exploding possible")
    assert '"exploding possible"' in text and "necessary for exploding, but not sufficient" in text


# ------------------------------------------------------------------------------------------------- parallel
def test_parallel_attention_pass_is_one_step_of_play():
    from rnnsim.tui.screenshot import units_per_iteration

    sc = load_scenario("parallel").with_changes({"task.length": 24})
    att = sc.with_changes({"model.cell": "attention"})
    assert units_per_iteration(sc) == 2 * 24 + 1 and units_per_iteration(att) == 3
    play = Play(att)
    play.advance()
    assert play.sim.t == 24 and play.sim.phase == "forward_done"   # one n: every column at once
    play.advance()
    assert play.sim.phase == "backward_done"
    rnn = Play(sc)
    rnn.advance()
    assert rnn.sim.t == 1
    text = steps("parallel")
    assert "fills every column of the heatmap in one press" in text and "m three times" in text
    cells = [sc.model.cell]
    for _ in range(3):
        cells.append(knobs.next_value(sc.with_changes({"model.cell": cells[-1]}), "model.cell"))
    assert cells == ["rnn", "lstm", "gru", "attention"]


def test_parallel_times_are_medians_with_their_spread(monkeypatch):
    """A scripted clock: forward times 1, 5, 3 and backward 2, 2, 8 give the medians 3 and 2, spread (11−3)/7."""
    ticks = iter([0.0, 0, 1, 3, 10, 15, 17, 20, 23, 31])
    monkeypatch.setattr(time, "perf_counter", lambda: next(ticks))
    sc = load_scenario("parallel")
    (pt,) = diagnostics.parallel_timing(sc, lengths=(16,), cells=("rnn",), repeats=3, batch_size=1, budget_s=1e9)
    assert (pt.forward_s, pt.backward_s, pt.repeats) == (3, 2, 3)
    assert pt.spread == pytest.approx((11 - 3) / 7)
    assert "median of 3 to 5 runs" in steps("parallel") and "about 35 s" in steps("parallel")


# ----------------------------------------------------------------------------------------------- bottleneck
def test_bottleneck_memory_capacity_is_the_rnn_measure_not_attention():
    sc = load_scenario("bottleneck")
    rnn = diagnostics.memory_capacity(sc, length=2000)
    att = diagnostics.memory_capacity(sc.with_changes({"model.cell": "attention"}))
    assert rnn.total > 5 and 0.02 < att.total < 0.06
    text = steps("bottleneck")
    assert "MC ≈ 0.04" in text and "It is the RNN's measure" in text and "Judge attention by the training loss" in text


# -------------------------------------------------------------------------------------------------- recency
def test_recency_shares_as_the_influence_view_shows_them():
    from rnnsim.tui import jobs

    sc = load_scenario("recency")
    shares = {cell: share for cell, (_, share) in
              diagnostics.influence_by_cell(sc, cells=jobs.INFLUENCE_CELLS, samples=jobs.INFLUENCE_SAMPLES).items()}
    text = steps("recency")
    assert f"measured {shares['rnn']:.3f}, shown as {shares['rnn']:.2f}" in text   # the view prints 2 decimals
    assert f"(≈ {shares['lstm']:.2f})" in text and f"≈ {shares['attention']:.2f} (its residual" in text


# ------------------------------------------------------------------------------------------- gates without bias
@pytest.mark.parametrize("name, none_exp", [("vanishing-lstm", "10⁻²⁰"), ("vanishing-gru", "10⁻¹⁸")])
def test_forget_bias_zero_step_quotes_what_the_cursor_reads(name, none_exp):
    sc = load_scenario(name)
    r0, _ = ratio(Simulation(sc.with_changes({"model.forget_bias": 0.0})))
    rn, _ = ratio(Simulation(sc.with_changes({"model.forget_bias": None})))
    text = steps(name)
    assert f"the cursor at t = 0 reads {r0:.2e}" in text          # the cursor line's format (=…×last)
    assert f"≈ {none_exp}" in text and round(math.log10(rn)) == -int(none_exp[3:].translate(
        str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")))
