"""Measure every lesson's claim on the shipped scenarios and write the numbers to docs/lessons.md.

    python -m benchmarks.lessons                 # everything (the adding runs take a few minutes)
    python -m benchmarks.lessons --only vanishing exploding
Each section of docs/lessons.md names the command that made it.
"""

from __future__ import annotations

import argparse
import math
import re
import time

import numpy as np

from benchmarks._machine import machine
from rnnsim import Simulation, diagnostics, load_scenario

DOC_HEAD = """# Lessons: six problems of plain RNNs, measured

Every number below was made by `python -m benchmarks.lessons` (section by section: `--only NAME`) on the shipped
scenarios; each section says which scenario to open in the TUI (`rnnsim NAME`) to see it live.
"""


def set_flags(changes: dict) -> str:
    """`--set KEY=VALUE ...` for a dict of scenario changes, as the command line takes them (None -> none,
    booleans lower case)."""
    def value(v):
        return "none" if v is None else str(v).lower() if isinstance(v, bool) else v

    return " ".join(f"--set {k}={value(v)}" for k, v in changes.items())


def ratio_of(sc):
    sim = Simulation(sc)
    sim.forward()
    sim.backward()
    p = diagnostics.gradient_profile(sim)
    return p[0] / p[-1], diagnostics.decay_summary(p).text, float(np.nanmean(diagnostics.jacobian_norms(sim)))


def vanishing():
    rows = []
    cases = [
        ("vanishing", "tanh RNN, orthogonal W_hh × 0.9", {}),
        ("vanishing", "tanh RNN, orthogonal W_hh × 1.0", {"model.recurrent_scale": 1.0}),
        ("vanishing", "tanh RNN, PyTorch default init", {"model.init": "pytorch", "model.recurrent_scale": 1.0}),
        ("vanishing-lstm", "LSTM, default init, no forget bias", {"model.forget_bias": None}),
        ("vanishing-lstm", "LSTM, forget bias 1", {"model.forget_bias": 1.0}),
        ("vanishing-lstm", "LSTM, forget bias 3", {}),
        ("vanishing-gru", "GRU, default init, no update bias", {"model.forget_bias": None}),
        ("vanishing-gru", "GRU, update-gate bias 3", {}),
        ("irnn", "IRNN: ReLU, W_hh = I", {}),
        ("layernorm", "tanh RNN × 0.9 with LayerNorm", {}),
    ]
    for name, what, ch in cases:
        sc = load_scenario(name)
        r, text, jn = ratio_of(sc.with_changes(ch) if ch else sc)
        flag = set_flags(ch)
        rows.append(f"| {what} | `{name}`{' ' + flag if flag else ''} | {r:.2g} | {jn:.3f} | {text} |")
    return ("Vanishing gradients (problem 1)", "\n".join([
        "T = 100, H = 32, B = 16, random inputs, loss at the last step only, float64, one forward and backward pass at "
        "the initial weights. Ratio = ‖dL/dh_0‖ / ‖dL/dh_99‖ (batch mean of per-sample norms); Jacobian = mean over "
        "steps of ‖∂s_t/∂s_{t−1}‖₂ (s = (h, c) for the LSTM). Gating alone does not keep the gradient: the "
        "forget/update-gate bias does (or training, which learns it).", "",
        "| network | scenario | ratio | mean Jacobian norm | decay |", "|---|---|---|---|---|", *rows]))


def exploding():
    sc = load_scenario("exploding")
    r, text, jn = ratio_of(sc)
    sim = Simulation(sc)
    hist = sim.train(sc.training.iterations)
    lines = [f"`exploding` (ReLU RNN, W_hh = 1.1·I, T = 100, SGD 0.01): first pass ratio ‖dL/dh_0‖/‖dL/dh_99‖ = "
             f"{r:.3g} ({text}); first gradient norm {hist[0].grad_norm:.3g}. Without clipping the run stops after "
             f"{len(hist)} iteration(s): {sim.sentinel}.", "",
             "| scenario | iterations run | all finite | first ‖g‖ before clipping | max ‖g‖ after clipping | "
             "mean cos(g, clipped g) | final loss | h_t > 0 at init / after | ‖dL/dh_t‖ = 0 for t ≤ |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in ("exploding", "clip-norm", "clip-value"):
        s = load_scenario(name)
        run = Simulation(s)
        run.forward()
        alive0 = float((run.hidden > 0).mean())
        run = Simulation(s)
        h = run.train(s.training.iterations)
        fin = [x for x in h if x.finite]
        alive, dead_to = "-", "-"
        if run.sentinel is None:  # the pass a student plays after training: how many ReLU units still pass a gradient
            run.forward()
            run.backward()
            alive = f"{float((run.hidden > 0).mean()):.2%}"
            zero = np.nonzero(diagnostics.gradient_profile(run) == 0)[0]
            dead_to = str(zero.max()) if len(zero) else "none"
        lines.append(f"| `{name}` | {len(h)} | {all(x.finite for x in h)} | {h[0].grad_norm:.3g} | "
                     f"{max(x.clipped_norm for x in fin) if fin else math.nan:.3g} | "
                     f"{np.mean([x.cosine for x in fin]) if fin else math.nan:.3f} | {h[-1].loss:.3g} | "
                     f"{alive0:.0%} / {alive} | {dead_to} |")
    tanh = sc.with_changes({"model.activation": "tanh"})
    rt, _, _ = ratio_of(tanh)
    ht = Simulation(tanh).train(tanh.training.iterations)
    lines += ["", "Norm clipping keeps the direction (cosine 1); value clipping bounds every element and turns the "
              "step (cosine < 1). Neither keeps the ReLU RNN alive: after the 50 clipped iterations almost no h_t is "
              "above 0, so no gradient passes (a ReLU unit below 0 has derivative 0) and ‖dL/dh_t‖ is exactly 0 "
              "over most of the sequence.", "",
              f"The same network with tanh (`a` in the TUI; σ_max = 1.1): first pass ratio {rt:.2g}, "
              f"{len(ht)} iterations all finite: {all(x.finite for x in ht)}, largest ‖g‖ "
              f"{max(x.grad_norm for x in ht):.2g} (tanh bounds the state)."]
    return "Exploding gradients (problem 2)", "\n".join(lines)


def adding():
    runs = {"tanh RNN (`rnnsim run adding`)": load_scenario("adding"),
            "LSTM (`rnnsim run adding-lstm`)": load_scenario("adding-lstm"),
            "GRU (`rnnsim run adding-lstm --set model.cell=gru`)": load_scenario("adding-lstm").with_changes(
                {"model.cell": "gru"})}
    checkpoints = [250, 500, 1000, 1500, 2000, 2500, 3000]
    lines, after = [], []
    for label, sc in runs.items():
        t0 = time.perf_counter()
        sim = Simulation(sc)
        hist = sim.train(sc.training.iterations)
        wall = time.perf_counter() - t0
        r0, _, _ = ratio_of(sc)
        sim.forward()
        sim.backward()
        p = diagnostics.gradient_profile(sim)
        note = f"{label.split(' (')[0]}: {r0:.2g} at init, {p[0] / p[-1]:.2g} after training"
        if sc.model.cell == "lstm":
            H = sim.H
            f = sim.workspace.gates[:, :, H:2 * H]
            unit = f.mean(axis=(0, 1))
            top = np.nonzero(unit > 0.98)[0]
            note += (f"; forget gate after training: mean {f.mean():.2f} over {H} units, per unit "
                     f"{unit.min():.2f} to {unit.max():.3f}, {len(top)} unit(s) above 0.98 (lowest f "
                     f"{min((float(f[:, :, k].min()) for k in top), default=math.nan):.2f}), "
                     f"{int((unit < 0.5).sum())} below 0.5")
        after.append(note)
        loss = np.array([h.loss for h in hist])
        # mean MSE over the 100 iterations before each checkpoint (fresh batches: an unbiased test estimate)
        means = [loss[max(0, c - 100):c].mean() for c in checkpoints if c <= len(loss)]
        below = np.nonzero(np.convolve(loss, np.ones(100) / 100, mode="valid") < 0.01)[0]
        first = f"{below[0] + 100}" if len(below) else "never"
        lines.append(f"| {label} | " + " | ".join(f"{m:.3g}" for m in means) + f" | {first} | {wall:.0f} s |")
    head = ("| model | " + " | ".join(f"it. {c}" for c in checkpoints) + " | first 100-it. mean < 0.01 | time |\n|"
            + "---|" * (len(checkpoints) + 3))
    return "Long-term dependencies: the adding problem (problem 3)", "\n".join([
        "T = 100, H = 32, B = 32 fresh batches per iteration, Adam 0.01, clipping by norm 1, 3000 iterations, seed 0. "
        "Mean training MSE over the 100 iterations before each checkpoint (each batch is new, so this is a test "
        "error). Baseline (always answer 1.0): 1/6 ≈ 0.167.", "", head, *lines, "",
        "Gradient ratio ‖dL/dh_0‖/‖dL/dh_99‖: " + "; ".join(after) + ". The mean forget gate the TUI draws hides "
        "that the memory lives in a few open units."])


def copy_task():
    runs = {"tanh RNN (`rnnsim run copy`)": load_scenario("copy"),
            "GRU (`rnnsim run copy-gru`)": load_scenario("copy-gru"),
            "LSTM (`rnnsim run copy-gru --set model.cell=lstm`)": load_scenario("copy-gru").with_changes(
                {"model.cell": "lstm"})}
    checkpoints = [500, 1000, 1500, 2000, 2500, 3000]
    lines = []
    base = None
    for label, sc in runs.items():
        t0 = time.perf_counter()
        sim = Simulation(sc)
        base = sim.baseline
        hist = sim.train(sc.training.iterations)
        loss = np.array([h.loss for h in hist])
        means = [loss[max(0, c - 250):c].mean() for c in checkpoints if c <= len(loss)]
        lines.append(f"| {label} | " + " | ".join(f"{m:.3g}" for m in means)
                     + f" | {time.perf_counter() - t0:.0f} s |")
    head = ("| model | " + " | ".join(f"it. {c}" for c in checkpoints) + " | time |\n|"
            + "---|" * (len(checkpoints) + 2))
    return "Long-term dependencies: the copy task (problem 3)", "\n".join([
        f"Lag 50 (T = 60, S = 5 symbols, K = 4), H = 64, B = 32, Adam 0.005, clipping by norm 1, 3000 iterations, "
        f"seed 0. Mean cross entropy over the 250 iterations before each checkpoint (fresh batches). Memoryless "
        f"baseline S·log K / T = {base:.3f}.", "", head, *lines, "",
        "The tanh RNN sits on the baseline; the GRU gets below it; the LSTM (forget bias 1) has not left the "
        "baseline within this budget on this seed: the copy task is slow for LSTMs (Arjovsky et al. 2016)."])


def parallel():
    sc = load_scenario("parallel")
    pts = diagnostics.parallel_timing(sc)
    by = {(p.cell, p.length): p for p in pts}
    lengths = sorted({p.length for p in pts})
    lines = ["| T | RNN dependent steps | RNN path length | RNN forward ms | RNN backward ms | attention dependent "
             "steps | attention path length | attention forward ms | attention backward ms | spread rnn / attention |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for T in lengths:
        r, a = by[("rnn", T)], by[("attention", T)]
        lines.append(f"| {T} | {r.dependent_steps} | {r.max_path_length} | {1e3 * r.forward_s:.3g} | "
                     f"{1e3 * r.backward_s:.3g} | {a.dependent_steps} | {a.max_path_length} | "
                     f"{1e3 * a.forward_s:.3g} | {1e3 * a.backward_s:.3g} | {r.spread:.2g} / {a.spread:.2g} |")
    t0 = time.perf_counter()
    from rnnsim.tui import jobs

    job = jobs.parallel_job(sc).start()  # what the TUI's parallel view (5) runs, in the same background thread
    job.join(1800)
    tui_s = time.perf_counter() - t0
    return "Sequential computation (problem 4)", "\n".join([
        "`parallel`: H = 32, B = 4, random inputs, float64; one forward and one backward pass, the median of 3 to 5 "
        "runs after a warm-up (5, or fewer once a point took 1 s); spread = (max − min)/median of the runs' "
        "forward+backward times. Dependent steps: operations that must run one after another in the forward pass; path length: "
        "steps from x_0 to the last output (Vaswani et al. 2017, table 1).", "", *lines, "",
        "The counts are the lesson: the RNN's chain grows with T, attention's stays 1. The measured times are "
        "honest about this machine: attention does O(T²·H) work and, on 2 CPU cores, is slower than the RNN's "
        "O(T·H²) chain at long T; what it removes is the chain itself, which wide hardware can then run at once.",
        "", f"The TUI's parallel view (5) runs the same measurement in a background thread: {tui_s:.0f} s here "
        f"(load average before: {_load()}). In the TUI, after `m` to attention, one `n` is the whole forward pass "
        "(its one dependent step)."])


def _load() -> str:
    try:
        return open("/proc/loadavg").read().split()[0]
    except OSError:
        return "?"


def bottleneck():
    sc = load_scenario("bottleneck")
    mc_rows = []
    for H in (4, 8, 16, 32, 64):
        mc = diagnostics.memory_capacity(sc.with_changes({"model.hidden_size": H}),
                                         max_delay=max(2 * H, sc.task.delay + 1))
        mc_rows.append(f"| {H} | {mc.total:.2f} | {mc.total / H:.2f} | {mc.per_delay[sc.task.delay]:.3f} |")
    runs = {"tanh RNN, linear readout (`rnnsim run bottleneck`)": {},
            "LSTM, forget bias 3": {"model.cell": "lstm"},
            "tanh RNN + attention readout": {"model.readout": "attention"},
            "causal self-attention (`--set model.cell=attention`)": {"model.cell": "attention"}}
    att_mc = diagnostics.memory_capacity(sc.with_changes({"model.cell": "attention"})).total
    tr_rows = []
    for label, ch in runs.items():
        hist = Simulation(sc.with_changes(ch) if ch else sc).train(sc.training.iterations)
        loss = np.array([h.loss for h in hist])
        tr_rows.append(f"| {label} | {loss[:100].mean():.3g} | {loss[-100:].mean():.3g} |")
    return "Fixed-size hidden state (problem 5)", "\n".join([
        "Memory capacity (Jaeger 2001) of the `bottleneck` network (tanh RNN, orthogonal W_hh × 1.0) at its initial "
        "weights: i.i.d. input u ~ U(−0.5, 0.5), 4000 steps after a washout of 200, ridge readouts fitted on the first "
        "half and scored (squared correlation) on the second half, delays k = 0 .. max(2H, 17)−1.", "",
        "| H | total MC | MC / H | MC(16), the lesson's delay |", "|---|---|---|---|", *mc_rows, "",
        f"Training on the lesson's task (recall u_(t−16), T = 40, H = 8, B = 32, Adam 0.01, "
        f"{sc.training.iterations} iterations, seed 0; baseline 1/12 ≈ 0.083): mean MSE over the first and last 100 "
        "iterations.", "", "| model | first 100 | last 100 |", "|---|---|---|", *tr_rows, "",
        "The attention readout over the RNN's states does not help: those states carry no position to look up by. "
        "Self-attention with positional encoding looks the input up by position and solves it with the same H.", "",
        f"Memory capacity is the RNN's measure (a linear readout of a fixed-size state): the attention cell at its "
        f"initial weights scores MC = {att_mc:.2f} (what the memory view shows after `m`), yet it solves the task: "
        "it keeps no state, the past stays in the inputs it looks up."])


def recency():
    sc = load_scenario("recency")
    res = diagnostics.influence_by_cell(sc, cells=("rnn", "lstm", "gru", "attention"))
    rows = []
    for cell, (infl, share) in res.items():
        T = len(infl)
        rows.append(f"| {cell} | {share:.3f} | {infl[-1] / infl.sum():.3f} | {infl[: T // 2].sum() / infl.sum():.3g} |")
    return "Bias toward recent inputs (problem 6)", "\n".join([
        "`recency`: the adding task, T = 100, H = 32, 256 sequences, initial weights (PyTorch init; forget/update "
        "bias 3 for the gated cells), one forward and backward pass. Influence = ‖∂L/∂x_t‖ averaged over the "
        "sequences.", "", "| cell | share in the last 10% | share at the last step | share in the first half |",
        "|---|---|---|---|", *rows])


def digits_pixel():
    from rnnsim import datasets

    base = load_scenario("digits-pixel")
    irnn = {"model.activation": "relu", "model.init": "identity"}
    lstm = {"model.cell": "lstm", "model.forget_bias": 1.0}
    runs = [("tanh RNN", {}), ("IRNN (ReLU, W_hh = I)", irnn),
            ("IRNN, Adam 1e-4", irnn | {"training.learning_rate": 1e-4}), ("LSTM, forget bias 1", lstm),
            ("tanh RNN, permuted pixels", {"task.permute": True}),
            ("IRNN, Adam 1e-4, permuted", irnn | {"training.learning_rate": 1e-4, "task.permute": True}),
            ("LSTM, permuted", lstm | {"task.permute": True})]
    checkpoints = [250, 500, 1000, 2000]
    lines = []
    for label, ch in runs:
        sc = base.with_changes(ch) if ch else base
        sim = Simulation(sc)
        sim.forward()
        sim.backward()
        p = diagnostics.gradient_profile(sim)
        r0 = p[0] / p[-1]
        sim.reset()
        t0 = time.perf_counter()
        cells, losses = [], []
        for c in checkpoints:
            losses += [h.loss for h in sim.train(c - sim.iteration)]
            ev = datasets.evaluate(sim)
            cells.append(f"{np.mean(losses[-100:]):.2f} / {ev['heldout_accuracy']:.0%}")
        wall = time.perf_counter() - t0
        active = float((sim.hidden[:, -1] > 0).mean()) if sc.model.activation == "relu" and sc.model.cell == "rnn" \
            else None
        flags = set_flags(ch)
        lines.append(f"| {label} | `digits-pixel`{' ' + flags if flags else ''} | {r0:.1g} | " + " | ".join(cells)
                     + f" | {'-' if active is None else f'{active:.0%}'} | {wall:.0f} s |")
    head = ("| network | scenario | ratio at init | " + " | ".join(f"it. {c}" for c in checkpoints)
            + " | active units at the end (ReLU) | time |\n|" + "---|" * (len(checkpoints) + 5))
    return "Vanishing gradients on real data: digits pixel by pixel (problem 1)", "\n".join([
        "scikit-learn's 8x8 digits as sequences of T = 64 pixels (D = 1, values / 16), the class at the last step; "
        "1438 training images, 359 held out (the same split for every run). H = 64, B = 32, Adam 0.002 (unless "
        "said), clipping by norm 1, seed 0. Ratio = ‖dL/dh_0‖/‖dL/dh_63‖ of one pass at the initial weights. Each "
        "checkpoint: mean training cross entropy of the last 100 iterations / held-out accuracy (chance: 10%, "
        "cross entropy log 10 ≈ 2.30). In row order the last pixels are the bottom rows of the digit: a net that "
        "only remembers the last few steps already does well; permuted pixels spread the evidence over all 64 "
        "steps.", "", head, *lines, "",
        "What it shows (in the run above): vanishing at the initial weights does not decide whether a network learns "
        "a real task. The tanh RNN's gradient reaching h_0 is 10⁻¹⁴ of the last step's, yet it learns, because the "
        "evidence it needs sits in the last steps (permuting the pixels puts informative central pixels there too). "
        "The LSTM with a forget bias ends best in row order. The IRNN has the healthiest gradient at init and does not "
        "learn at this step size: its ReLU units die (pixels are >= 0, so once the first updates push the "
        "pre-activations negative, h = 0 for every input and no gradient flows); at Adam 1e-4 it leaves chance slowly."])


def stacked():
    """Per layer, ‖dL/dh_0^l‖ and ‖dL/dh_{T-1}^l‖ of one pass of `stacked` (3 layers) and its variants."""
    rows = []
    cases = [
        ("tanh RNN, orthogonal W_hh × 0.9 (the scenario)", {}),
        ("tanh RNN, orthogonal W_hh × 1.0", {"model.recurrent_scale": 1.0}),
        ("tanh RNN, PyTorch default init", {"model.init": "pytorch", "model.recurrent_scale": 1.0}),
        ("LSTM, forget bias 3 in every layer (`m`)", {"model.cell": "lstm"}),
        ("GRU, update-gate bias 3 in every layer (`m` `m`)", {"model.cell": "gru"}),
        ("tanh RNN × 0.9, one layer", {"model.num_layers": 1}),
    ]
    base = load_scenario("stacked")
    for what, ch in cases:
        sim = Simulation(base.with_changes(ch) if ch else base)
        sim.forward()
        sim.backward()
        depth = diagnostics.depth_profile(sim)
        cells = " | ".join(f"{row[0]:.2g} … {row[-1]:.2g}" for row in depth[::-1])
        pad = " | –" * (3 - len(depth))
        flag = set_flags(ch)
        rows.append(f"| {what} | {flag or '(as shipped)'} | {cells}{pad} |")
    return ("Vanishing over depth and time: stacked layers (problem 1)", "\n".join([
        "`stacked`: 3 tanh RNN layers (as torch.nn.RNN(num_layers=3)), T = 50, H = 32, B = 16, random inputs, loss at "
        "the last step of the top layer only, float64, one forward and backward pass at the initial weights. Each "
        "cell is ‖dL/dh_0^l‖ … ‖dL/dh_49^l‖ of layer l (batch mean of per-sample norms; `rnnsim run stacked -n 0` "
        "prints the same per layer). At the last step the gradient shrinks down the stack (each layer hop multiplies "
        "by W_ih^T diag(φ′) of the layer above); back in time it shrinks in every layer. At t = 0 the bottom layer "
        "keeps more than the top: a path from the loss to (layer 1, t = 0) crosses 49 steps and 2 layer hops in "
        "any order, and there are many such paths, against one for the top layer.", "",
        "| network | `rnnsim stacked` with | layer 3 (top) | layer 2 | layer 1 (bottom) |", "|---|---|---|---|---|",
        *rows]))


def regime_maps():
    """The maps view 8 draws for `regime-map` (tanh RNN) and the same scenario with the LSTM (key m): {cell: {(scale,
    T): log10 ratio}} and the sweeps; the same runs as `rnnsim sweep` (rnnsim.sweep.around)."""
    from rnnsim.sweep import around

    out = {}
    for cell in ("rnn", "lstm"):
        sc = load_scenario("regime-map")
        sc = sc.with_changes({"model.cell": cell}) if cell != sc.model.cell else sc
        sweep = around.around(sc)
        rows = around.rows_of(sweep)
        out[cell] = (sweep, {(r["model.recurrent_scale"], r["task.length"]):
                             (math.inf if not r["finite"] else math.log10(r["grad_ratio"]) if r["grad_ratio"] else
                              -math.inf) for r in rows})
    return out


def regimes():
    from rnnsim.sweep import around
    from rnnsim.sweep.show import cell_text

    maps = regime_maps()
    lines = ["`regime-map` (tanh RNN, H = 32, B = 16, orthogonal W_hh × scale, so every singular value equals the scale; "
             "random inputs, loss at the last step, float64, seed 0), one forward and backward pass at the initial "
             "weights per cell: what view 8 draws (`rnnsim regime-map`, key `8`; `m` then `8` for the LSTM). Each "
             "cell is log10 ‖dL/dh_0‖/‖dL/dh_T−1‖ and its regime (V < −2, E > 2 or not finite, S between); the same "
             "runs as `rnnsim sweep` (rnnsim/sweep/around.py). The scenario's own point (scale 1, T = 50) is *."]
    for cell, title in (("rnn", "tanh RNN"), ("lstm", "LSTM, forget_bias = 1 (key m)")):
        sweep, logs = maps[cell]
        scales, lengths = sweep.values
        lines += ["", f"{title}:", "", "| T \\ scale | " + " | ".join(f"{s:g}" for s in scales) + " |",
                  "|---|" + "---|" * len(scales)]
        for T in reversed(lengths):
            cells = []
            for s in scales:
                text = cell_text(logs[(s, T)])[0]
                cells.append(("*" if (s, T) == (1.0, 50) else "") + text)
            lines.append(f"| {T} | " + " | ".join(cells) + " |")
    rnn, lstm = maps["rnn"][1], maps["lstm"][1]
    spread = {c: max(m[(s, 100)] for s in around.SCALES) - min(m[(s, 100)] for s in around.SCALES)
              for c, m in (("rnn", rnn), ("lstm", lstm))}
    lines += ["", f"At T = 100 the tanh RNN's log10 ratio spans {spread['rnn']:.1f} decades across the 7 scales, the "
              f"LSTM's {spread['lstm']:.1f}; exploding cells: tanh RNN "
              f"{sum(v > 2 for v in rnn.values())}, LSTM {sum(v > 2 for v in lstm.values())}."]
    return "The regime map: where the gradient vanishes or explodes (view 8)", "\n".join(lines)


SECTIONS = {"vanishing": vanishing, "exploding": exploding, "adding": adding, "copy": copy_task,
            "parallel": parallel, "bottleneck": bottleneck, "recency": recency, "digits-pixel": digits_pixel,
            "stacked": stacked, "regimes": regimes}


SCREENSHOTS = {
    # section -> (image, the command that makes it); images are SVG screenshots of the TUI at 100x32
    "vanishing": ("lesson-vanishing.svg", "--scenario vanishing --steps 200"),
    "exploding": ("lesson-exploding.svg", "--scenario exploding --train 3 --keys 2"),
    "adding": ("lesson-adding.svg", "--scenario adding-lstm --train 2500 --keys 2"),
    "copy": ("lesson-copy.svg", "--scenario copy-gru --train 2000 --keys 2"),
    "parallel": ("lesson-parallel.svg", "--scenario parallel --keys 5"),
    "bottleneck": ("lesson-bottleneck.svg", "--scenario bottleneck --keys 6"),
    "recency": ("lesson-recency.svg", "--scenario recency --keys 7"),
    "stacked": ("lesson-stacked.svg", "--scenario stacked --steps 230"),
    "regimes": ("lesson-regimes.svg", "--scenario regime-map --keys 8"),
}


def _sections(text):
    """{heading: block} of a markdown file's ``## `` sections, in file order, and the text before the first."""
    parts = re.split(r"(?m)^(?=## )", text)
    head = parts[0] if not parts[0].startswith("## ") else DOC_HEAD
    return head, {p.splitlines()[0][3:].strip(): p.rstrip() + "\n" for p in parts if p.startswith("## ")}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", choices=sorted(SECTIONS), help="sections to (re)measure")
    args = ap.parse_args(argv)
    from benchmarks._machine import DOC as _bench_doc

    doc = _bench_doc.parent / "lessons.md"
    head, blocks = _sections(doc.read_text() if doc.exists() else DOC_HEAD)
    headings = {}
    for key in SECTIONS:
        if args.only and key not in args.only:
            continue
        t0 = time.perf_counter()
        heading, body = SECTIONS[key]()
        body += (f"\n\nCommand: `python -m benchmarks.lessons --only {key}` ({time.perf_counter() - t0:.0f} s on "
                 f"{machine().split(', Python')[0]}).\n")
        if key in SCREENSHOTS:
            image, how = SCREENSHOTS[key]
            body += (f"\n![{heading}](images/{image})\n\n"
                     f"Screenshot: `python -m rnnsim.tui.screenshot docs/images/{image} {how}`.\n")
        print(f"## {heading}\n\n{body}")
        blocks[heading] = f"## {heading}\n\n{body}"
        headings[key] = heading
    # keep the problems in order, whatever was measured first
    order = {h: i for i, h in enumerate(sorted(blocks, key=lambda h: (re.findall(r"problem (\d)", h) or ["9"])[0]))}
    text = head.rstrip() + "\n\n" + "\n".join(blocks[h] for h in sorted(blocks, key=order.get))
    doc.write_text(text.rstrip() + "\n")


if __name__ == "__main__":
    main()
