"""rnnsim.play: the phases, one unit of play, whole passes, pending changes, warm-up and the diagnostics caches."""

from __future__ import annotations

import numpy as np
import pytest

import rnnsim
from rnnsim import Simulation
from rnnsim.play import Change, Phase, Play, Unit, finish_pass, scenario_diff

SMALL = {"model.hidden_size": 6, "task.kind": "random", "task.length": 7, "task.batch_size": 3,
         "model.init": "orthogonal", "model.recurrent_scale": 0.9}


@pytest.fixture
def sc():
    return rnnsim.load_scenario("vanishing").with_changes(SMALL)


def test_phase_is_a_str_enum_that_compares_as_before(sc):
    sim = Simulation(sc)
    assert sim.phase is Phase.IDLE and sim.phase == "idle" and f"{sim.phase}" == "idle"
    assert [p.value for p in Phase] == ["idle", "forward", "forward_done", "backward", "backward_done"]
    sim.step_forward()
    assert sim.phase is Phase.FORWARD and {"forward": 1}[sim.phase] == 1
    with pytest.raises(RuntimeError, match="phase is 'forward'"):  # messages read as with plain strings
        sim.apply_update()


def test_advance_walks_forward_bptt_update_like_the_step_api(sc):
    play, ref = Play(sc), Simulation(sc)
    T = play.sim.T
    units = [play.advance() for _ in range(2 * T + 1)]
    assert units == [Unit.FORWARD] * T + [Unit.BACKWARD] * T + [Unit.UPDATE]
    for _ in range(T):
        ref.step_forward()
    for _ in range(T):
        ref.step_backward()
    ref.apply_update()
    assert play.sim.phase is Phase.IDLE and play.sim.iteration == 1
    for k in ref.params:
        np.testing.assert_array_equal(play.sim.params[k], ref.params[k])
    assert play.advance() is Unit.FORWARD and play.sim.t == 1


def test_finish_pass_continues_a_stepped_pass_as_the_whole_calls_do(sc):
    a, b = Simulation(sc), Simulation(sc)
    for _ in range(3):
        a.step_forward()
        b.step_forward()
    assert finish_pass(a) == (a.T - 3) + a.T and a.phase is Phase.BACKWARD_DONE
    b.forward()
    b.backward()
    np.testing.assert_array_equal(a.grad_hidden, b.grad_hidden)
    assert finish_pass(a) == 0  # nothing left before the update


def test_train_is_unchanged_from_a_pass_under_way(sc):
    """train() drops a finished forward pass or a BPTT under way and continues a forward pass under way."""
    for prep in ("idle", "mid_forward", "forward_done", "mid_backward"):
        a, b = Simulation(sc), Simulation(sc)
        if prep == "mid_forward":
            a.step_forward()
            b.step_forward()
            b.forward()  # the reference: what train did before, by hand
        elif prep in ("forward_done", "mid_backward"):
            a.forward()
            if prep == "mid_backward":
                a.step_backward()
            b.forward()
        else:
            b.forward()
        b.backward()
        ref = b.apply_update()
        info = a.train(1)[0]
        assert info == ref, prep
        for k in a.params:
            np.testing.assert_array_equal(a.params[k], b.params[k], err_msg=prep)


def test_iterate_and_pending_changes(sc):
    applied = []
    play = Play(sc, on_applied=lambda new, restarted: applied.append((new.model.cell, restarted)))
    T = play.sim.T
    assert play.change({"training.clip": "norm"}) is Change.CHANGED
    assert play.sim.scenario.training.clip == "norm" and play.pending is None
    play.advance()  # mid-pass: a model change waits
    assert play.change({"model.cell": "gru"}) is Change.PENDING
    assert play.change({"training.clip": "value"}) is Change.PENDING  # on top of the pending one
    assert play.target.model.cell == "gru" and play.sim.scenario.training.clip == "norm"
    assert scenario_diff(play.scenario, play.pending) == {"model.cell": "gru", "training.clip": "value"}
    assert play.iterate(settle=False) == (T - 1) + T and play.sim.iteration == 1
    assert play.pending is not None and not applied  # settle=False: waits for the caller
    play.settle()
    assert applied == [("gru", True)] and play.pending is None
    assert play.sim.scenario.model.cell == "gru" and play.sim.scenario.training.clip == "value"
    assert play.sim.iteration == 0  # rebuilt from the seed
    assert play.change({"model.hidden_size": 5}) is Change.APPLIED  # at a boundary: at once
    assert play.sim.H == 5


def test_pending_applies_after_the_update_unit(sc):
    play = Play(sc)
    play.advance()
    play.change({"model.init": "normal"})
    T = play.sim.T
    for _ in range(2 * T - 1):
        assert play.advance() is not Unit.UPDATE
    assert play.pending is not None
    assert play.advance() is Unit.UPDATE
    assert play.pending is None and play.sim.scenario.model.init == "normal"


def test_warm_up_once_per_cell_and_announced_on_change(sc):
    calls, announced = [], []

    class Counting(Simulation):
        def forward(self):
            calls.append(self.cell_name)
            return super().forward()

    warm: set = set()
    play = Play(sc, Counting, warm=warm, on_warm_up=announced.append)
    assert play.warm_up() and warm == {"rnn"} and calls == ["rnn"]
    assert not play.warm_up() and calls == ["rnn"]
    assert play.sim.phase is Phase.IDLE and play.sim.iteration == 0  # back at the seed
    play.reconfigure(sc.with_changes({"model.cell": "lstm"}))
    assert announced == ["lstm"] and calls == ["rnn", "lstm"] and warm == {"rnn", "lstm"}
    other = Play(sc.with_changes({"model.cell": "lstm"}), Counting, warm=warm)
    assert not other.warm_up()  # the set is shared


def test_stopped_by_a_sentinel(sc):
    boom = {"model.activation": "relu", "model.init": "identity", "model.recurrent_scale": 4.0, "task.length": 600}
    play = Play(sc.with_changes(boom))
    play.iterate()
    sim = play.sim
    assert sim.sentinel is not None and sim.sentinel.phase == "forward"
    assert sim.phase is Phase.FORWARD_DONE and sim.iteration == 0  # no BPTT and no update after a NaN/inf
    assert play.advance() is None and play.iterate() == 0 and sim.phase is Phase.FORWARD_DONE


class FakeDiagnostics:
    def __init__(self):
        self.jac = 0
        self.spec = 0

    def jacobian_norms(self, sim, t0=0, t1=None):
        self.jac += t0 == 0  # one computation: the steps come one call each (Play.jacobian_norms)
        return np.full(sim.T, float(self.jac))

    def spectrum(self, sim):
        from rnnsim.diagnostics import spectrum

        self.spec += 1
        return spectrum(sim)


def test_diagnostics_caches(sc):
    d = FakeDiagnostics()
    play = Play(sc, diagnostics=d)
    text, spec = play.spectrum()
    assert spec is not None and not spec.eigenvalues.flags.writeable and "σmax" in text
    play.advance()
    assert play.spectrum()[1] is spec and d.spec == 1  # same weights: cached
    play.iterate()
    assert play.spectrum()[1] is not spec and d.spec == 2 and play.spectrum_version == 2
    j1 = play.jacobian_norms(force=True)
    assert play.jacobian_norms(force=True) is j1 and d.jac == 1  # same (iteration, t): cached
    play.advance()
    j2 = play.jacobian_norms(force=True)
    assert d.jac == 2 and j2[0] == 2.0
    play._jac_cost = 1e9  # an expensive computation: while playing, the budget keeps the last one
    play.advance()
    assert play.jacobian_norms() is j2 and d.jac == 2
    play.invalidate()  # a rebuild: nothing stale survives
    assert play.jacobian_norms()[0] == 3.0 and d.jac == 3


def test_jacobian_norms_come_a_slice_at_a_time_and_equal_the_whole(sc, monkeypatch):
    """A large state's norms (~40 ms per step at LSTM H = 256) are computed JAC_SLICE seconds per call, the next call
    going on where the last stopped, NaN for the steps not computed yet; the whole equals diagnostics' in one go."""
    import rnnsim.play as play_module
    from rnnsim import diagnostics

    play = Play(sc)
    while play.sim.phase != Phase.FORWARD_DONE:
        play.advance()
    T = play.sim.T
    monkeypatch.setattr(play_module, "JAC_SLICE", 0.0)  # one step per call
    first = play.jacobian_norms(force=True)
    assert np.isfinite(first[0]) and np.isnan(first[1:]).all() and play.jacobian_pending
    seen = [first]
    while play.jacobian_pending:
        seen.append(play.jacobian_norms(force=True))
        assert len(seen) <= T + 1
    assert len(seen) == T
    np.testing.assert_array_equal(seen[-1], diagnostics.jacobian_norms(play.sim))
    assert play.jacobian_norms(force=True) is seen[-1]  # complete: cached
    assert [int(np.isfinite(a).sum()) for a in seen] == list(range(1, T + 1))
    monkeypatch.setattr(play_module, "JAC_SLICE", 60.0)
    play.invalidate()
    whole = play.jacobian_norms(force=True)  # a generous slice: all of it in one call
    assert not play.jacobian_pending
    np.testing.assert_array_equal(whole, seen[-1])
