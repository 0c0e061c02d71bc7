"""The play loop: the phases of a Simulation and one unit of play at a time.

A pass moves through the phases idle → forward → forward_done → backward → backward_done → (update) → idle.
`finish_pass(sim)` runs the rest of a pass whole; `Simulation.train` runs its iterations through it. `Play` owns a
Simulation and plays it: `Play.advance()` is one unit of play (a forward step, a BPTT step or the update that
ends an iteration), `Play.iterate()` the rest of an iteration whole, and it keeps what an interactive loop needs:
kernel warm-up, scenario changes that wait for the next iteration boundary, and the diagnostics caches (the
Jacobian time budget, the spectrum of the current weights). The TUI's Runner only schedules these calls, for its
simulation and for the compare view's second one. Nothing here imports Textual.
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Any, Callable

import numpy as np


class Phase(StrEnum):
    """Where a Simulation is in its pass (a str: ``sim.phase == "idle"`` keeps working)."""

    IDLE = "idle"                    #: between iterations (before the first forward step, after an update)
    FORWARD = "forward"              #: 0 < t < T forward steps done
    FORWARD_DONE = "forward_done"    #: t = T, the loss is set
    BACKWARD = "backward"            #: 0 < bt < T BPTT steps done
    BACKWARD_DONE = "backward_done"  #: bt = T, the gradients are set; the update comes next

    def __repr__(self) -> str:  # messages say phase is 'idle', as when phases were plain strings
        return repr(self.value)


class Unit(StrEnum):
    """What one `Play.advance` did."""

    FORWARD = "forward"    #: one forward step
    BACKWARD = "backward"  #: one BPTT step
    UPDATE = "update"      #: clipping and the optimizer step that end an iteration


_FORWARD = (Phase.IDLE, Phase.FORWARD)
_BACKWARD = (Phase.FORWARD_DONE, Phase.BACKWARD)
# plain module globals for the per-step path: looking a member up on its Enum class costs ~0.15 µs
_IDLE = Phase.IDLE
_UNIT_FORWARD, _UNIT_BACKWARD, _UNIT_UPDATE = Unit.FORWARD, Unit.BACKWARD, Unit.UPDATE
#: phases in which h_t is filled for the whole sequence
FORWARD_COMPLETE = frozenset((Phase.FORWARD_DONE, Phase.BACKWARD, Phase.BACKWARD_DONE))


def finish_pass(sim) -> int:
    """The rest of the pass under way, whole: the forward pass (unless done), then BPTT unless a NaN/inf appeared.

    Stops at backward_done (the update is the caller's: `Play.iterate`, `Simulation.train`). Returns the
    number of time steps run, forward and backward."""
    steps = 0
    n = getattr(sim, "num_layers", 1)
    if sim.phase in _FORWARD:
        # (layer, t) steps: a stack runs layer 0 over the sequence first, then layer 1, ...
        done = (sim.layer * sim.T + sim.t) if sim.phase == Phase.FORWARD else 0
        steps += n * sim.T - done
        sim.forward()
    if sim.sentinel is None and sim.phase in _BACKWARD:
        done = ((n - 1 - sim.layer) * sim.T + sim.bt) if sim.phase == Phase.BACKWARD else 0
        steps += n * sim.T - done
        sim.backward()
    return steps


def warm_up(sim) -> None:
    """Load (or, on a first run, compile) the kernels of ``sim``'s configuration: one pass, then back to the seed."""
    sim.forward()
    sim.backward()
    sim.reset()


def changes_model(a, b) -> bool:
    """True when going from scenario a to b rebuilds the simulation (model, task or seed)."""
    return a.model != b.model or a.task != b.task or a.scenario.seed != b.scenario.seed


_DIFF_SECTIONS = ("scenario", "model", "task", "training")


def scenario_diff(a, b) -> dict[str, Any]:
    """The dotted keys whose values differ from scenario a to b, with b's values (name, description, lesson
    steps and locks left out: they do not change what runs)."""
    out: dict[str, Any] = {}
    for sec in _DIFF_SECTIONS:
        sa, sb = getattr(a, sec), getattr(b, sec)
        if sa == sb:
            continue
        for name in type(sb).model_fields:
            if sec == "scenario" and name != "seed":
                continue
            va, vb = getattr(sa, name), getattr(sb, name)
            if va != vb:
                out[f"{sec}.{name}"] = vb
    return out


class Change(StrEnum):
    """What `Play.change` did with a scenario change."""

    CHANGED = "changed"  #: training-only knobs: in effect now (at the next update)
    APPLIED = "applied"  #: a model/task/seed change, at a boundary: rebuilt now
    PENDING = "pending"  #: a model/task/seed change mid-iteration: waits for the next iteration boundary


JAC_BUDGET = 30  #: Jacobian norms get at most ~1/JAC_BUDGET of the time while playing
JAC_SLICE = 0.05  #: seconds of Jacobian norms per call at most: a large state is computed over several frames


class Play:
    """A Simulation played one unit at a time, with scenario changes that wait for the next iteration boundary.

    ``warm`` is the set of cells whose kernels are loaded (share one set between the Plays of one process).
    ``on_warm_up(cell)`` is called before a change loads a new cell's kernels (to say so: a first run compiles
    them for seconds); ``on_applied(scenario, restarted)`` after a pending change was applied.
    """

    def __init__(self, scenario, factory: Callable | None = None, *, diagnostics=None, warm: set | None = None,
                 on_warm_up: Callable[[str], None] | None = None,
                 on_applied: Callable[[Any, bool], None] | None = None) -> None:
        if factory is None:
            from rnnsim.simulation import Simulation

            factory = Simulation
        self.factory = factory
        self.warm = set() if warm is None else warm
        self.on_warm_up = on_warm_up
        self.on_applied = on_applied
        self._diag = diagnostics
        self.pending = None
        self.builds = 0  # bumps at every rebuild: keys the diagnostics caches
        self._cache: dict = {}
        self._jac_cost = self._jac_time = 0.0
        self.spectrum_version = 0
        self.sim = factory(scenario)

    # ---------------------------------------------------------------------------------------- scenarios
    @property
    def scenario(self):
        return self.sim.scenario

    @property
    def target(self):
        """The scenario the next change builds on: the pending one, else the running one."""
        return self.pending if self.pending is not None else self.sim.scenario

    def invalidate(self) -> None:
        """The simulation was rebuilt (or its weights replaced): drop the diagnostics caches."""
        self.builds += 1
        self._cache.clear()

    def load(self, scenario) -> None:
        """A new Simulation of ``scenario`` (from the factory); drops any pending change."""
        self.pending = None
        self.sim = self.factory(scenario)
        self.invalidate()

    def reset(self, seed: int | None = None) -> None:
        self.sim.reset(seed)
        self.invalidate()

    def warm_up(self, force: bool = False) -> bool:
        """Load the kernels of the running cell unless already loaded (``force``: always). True if it ran."""
        cell = self.sim.scenario.model.cell
        if not force and cell in self.warm:
            return False
        warm_up(self.sim)
        self.warm.add(cell)
        return True

    def reconfigure(self, scenario) -> None:
        """Switch the simulation to ``scenario`` now (Simulation.reconfigure), loading a new cell's kernels."""
        new_cell = scenario.model.cell not in self.warm
        if new_cell and self.on_warm_up is not None:
            self.on_warm_up(scenario.model.cell)
        if self.sim.reconfigure(scenario):
            self.invalidate()
        if new_cell:
            warm_up(self.sim)
            self.warm.add(scenario.model.cell)

    def change(self, changes: dict) -> Change:
        """Apply dotted-key changes to the target scenario (ScenarioError on a bad value, nothing changed).

        Training-only changes act now (at the next update). A change of the model, task or seed rebuilds from
        the seed: at once between iterations, else at the next iteration boundary (pending until then)."""
        new = self.target.with_changes(changes)
        if not changes_model(self.sim.scenario, new):
            self.sim.reconfigure(new)
            self.pending = None
            return Change.CHANGED
        self.pending = new
        return Change.APPLIED if self.apply_pending() else Change.PENDING

    def apply_pending(self, force: bool = False) -> bool:
        """Apply the pending change if at an iteration boundary (``force``: anywhere). True if it applied."""
        if self.pending is None or not (force or self.sim.phase == Phase.IDLE):
            return False
        new, self.pending = self.pending, None
        self.reconfigure(new)
        if self.on_applied is not None:
            self.on_applied(new, self.sim.iteration == 0)
        return True

    # ----------------------------------------------------------------------------------------- playing
    def advance(self, settle: bool = True) -> Unit | None:
        """One unit of play: a forward step, a BPTT step (attention: the whole pass, its one dependent step), or the
        update that ends an iteration; None once a NaN or inf stopped the simulation. A pending change applies at the boundary before a pass and, unless ``settle``
        is False (then call `settle` yourself, e.g. after a second simulation did the same unit), after the update."""
        sim = self.sim
        if sim.sentinel is not None:
            return None
        phase = sim.phase
        if phase in _FORWARD:
            if self.pending is not None and phase == _IDLE:
                self.apply_pending()
                sim = self.sim
            # one unit is one dependent step: a time step of a recurrent cell; attention's whole pass (every position
            # at once, from the inputs alone: sim.dependent_steps == 1), as the parallel lesson says
            sim.forward() if sim.dependent_steps == 1 else sim.step_forward()
            return _UNIT_FORWARD
        if phase in _BACKWARD:
            sim.backward() if sim.dependent_steps == 1 else sim.step_backward()
            return _UNIT_BACKWARD
        sim.apply_update()
        if settle and self.pending is not None:
            self.apply_pending()
        return _UNIT_UPDATE

    def iterate(self, settle: bool = True) -> int:
        """The rest of the iteration under way, whole: forward, BPTT, update (no update after a NaN/inf).
        Returns the time steps run (0 once a NaN/inf stopped the simulation)."""
        sim = self.sim
        if sim.sentinel is not None:
            return 0
        if self.pending is not None and sim.phase == Phase.IDLE:
            self.apply_pending()
            sim = self.sim
        steps = finish_pass(sim)
        if sim.sentinel is None:
            sim.apply_update()
        if settle:
            self.settle()
        return steps

    def settle(self) -> None:
        """Apply a pending change if the simulation is at an iteration boundary."""
        if self.pending is not None:
            self.apply_pending()

    # ------------------------------------------------------------------------------------- diagnostics
    @property
    def diagnostics(self):
        if self._diag is None:
            from rnnsim import diagnostics

            self._diag = diagnostics
        return self._diag

    def jacobian_norms(self, force: bool = False, layer: int | None = None) -> np.ndarray:
        """Per-step Jacobian norms (diagnostics.jacobian_norms), cached per (build, iteration, t).

        They are computed a slice of steps at a time, at most JAC_SLICE seconds per call (an LSTM at H = 256 costs
        ~40 ms per step, ~60 s for the whole of a long sequence), and the next call goes on where the last one
        stopped: steps not computed yet are NaN, and ``jacobian_pending`` says more is to come. Unless ``force``
        (stepping or paused: always current), a slice runs at most once per JAC_BUDGET × the last slice's cost,
        so they take at most ~1/JAC_BUDGET of the time while playing, and an unfinished computation goes on for
        the same build and iteration even after steps were played; in between the last ones are returned (NaN
        when they belong to another build, length or layer). ``layer``: which layer of a stack (default: the
        last)."""
        sim = self.sim
        key = (self.builds, sim.iteration, sim.t, sim.phase == Phase.IDLE, getattr(sim, "layer", 0), layer)
        hit = self._cache.get("jac")  # (key, norms, first step not computed yet)
        if hit is not None and hit[0] == key and hit[2] >= len(hit[1]):
            return hit[1]
        now = time.perf_counter()
        same_run = hit is not None and hit[0][:2] == key[:2] and hit[0][-1] == layer and len(hit[1]) == sim.T
        if not force and hit is not None and now - self._jac_time < JAC_BUDGET * self._jac_cost:
            return hit[1] if same_run else np.full(sim.T, np.nan)
        if hit is not None and hit[2] < len(hit[1]) and (hit[0] == key or (not force and same_run)):
            key, arr, t = hit[0], hit[1].copy(), hit[2]   # go on with the unfinished one
        else:
            arr, t = np.full(sim.T, np.nan), 0
        d, end = self.diagnostics, now + JAC_SLICE
        while t < sim.T:
            part = d.jacobian_norms(sim, layer=layer, t0=t, t1=t + 1) if layer is not None \
                else d.jacobian_norms(sim, t0=t, t1=t + 1)
            arr[t] = part[t]
            t += 1
            if time.perf_counter() >= end:
                break
        done = time.perf_counter()
        self._jac_cost, self._jac_time = done - now, done
        self._cache["jac"] = (key, arr, t)
        return arr

    @property
    def jacobian_pending(self) -> bool:
        """Whether the last Jacobian norms returned are unfinished (more slices to compute)."""
        hit = self._cache.get("jac")
        return hit is not None and hit[2] < len(hit[1])

    def spectrum(self, layer: int | None = None):
        """(text, Spectrum with read-only eigenvalues) of the current weights, computed once per (build,
        iteration, layer): the weights change only at an update or a rebuild. ("", None) if it cannot be
        computed. ``layer``: whose W_hh in a stack (default: the last)."""
        sim = self.sim
        key = (self.builds, sim.iteration, layer)
        cached = self._cache.get("spec")
        if cached is not None and cached[0] == key:
            return cached[1], cached[2]
        try:
            sp = self.diagnostics.spectrum(sim, layer) if layer is not None else self.diagnostics.spectrum(sim)
            eig = np.array(sp.eigenvalues, dtype=complex)
            eig.flags.writeable = False
            spec = type(sp)(eig, sp.radius, sp.sigma_max, sp.gamma, sp.bound, sp.verdict)
            text = f"σmax(W_hh)={sp.sigma_max:.3g} · {sp.verdict}" if sim.scenario.model.cell == "rnn" else sp.verdict
        except Exception:  # noqa: BLE001 - the spectrum is optional decoration
            return "", None
        self.spectrum_version += 1
        self._cache["spec"] = (key, text, spec)
        return text, spec
