"""The benchmark's scaling plots (benchmarks/plots.py), its tables-only path without matplotlib, its targets without
PyTorch and its note on samples; fixed numbers, nothing timed."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET

from pathlib import Path

import numpy as np
import pytest

from benchmarks import plots
from benchmarks.bench_cells import scaling_section

H_DATA = dict(cell="lstm", dtype="float32", B=32, T=100, H=[16, 64, 256, 1024],
              series={"rnnsim": [30e-6, 170e-6, 2.2e-3, 15e-3], "torch fused nn.LSTM": [31e-6, 121e-6, 1.6e-3, 12e-3]})
T_DATA = dict(cell="lstm", dtype="float64", H=64, B=32, T=[10, 100, 1000, 10000],
              series={"rnnsim": [212e-6, 266e-6, 251e-6, 360e-6]})
TABLES = (["| H | rnnsim µs/step |", "|---|---|", "| 16 | 30.0 |"], H_DATA), (["| T | rnnsim µs/step |"], T_DATA)


def test_scaling_svgs_are_valid_labelled_and_deterministic(tmp_path):
    pytest.importorskip("matplotlib")
    paths = plots.scaling_svgs(tmp_path / "a", H_DATA, T_DATA)
    assert [p.name for p in paths] == [plots.H_SVG, plots.T_SVG]
    texts = {}
    for p in paths:
        root = ET.parse(p).getroot()                  # well-formed XML
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        texts[p.name] = p.read_text()
    h, t = texts[plots.H_SVG], texts[plots.T_SVG]
    for label in ("hidden size H", "time per step (µs", "rnnsim", "torch fused nn.LSTM", "slope 2",
                  "docs/benchmarks.md"):
        assert label in h, label
    for label in ("sequence length T", "time per step (µs)", "rnnsim", "docs/benchmarks.md"):
        assert label in t, label
    assert "torch" not in t
    again = plots.scaling_svgs(tmp_path / "b", H_DATA, T_DATA)
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in paths]


def test_without_torch_numbers_the_h_plot_has_rnnsim_only(tmp_path):
    pytest.importorskip("matplotlib")
    (h, _) = plots.scaling_svgs(tmp_path, dict(H_DATA, series={"rnnsim": H_DATA["series"]["rnnsim"]}), T_DATA)
    assert "rnnsim" in h.read_text() and "torch" not in h.read_text()


def test_without_matplotlib_tables_only_with_a_note(tmp_path, monkeypatch, capsys):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    assert plots.scaling_svgs(tmp_path, H_DATA, T_DATA) == []
    assert list(tmp_path.iterdir()) == []
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "matplotlib not installed" in err and ".[bench]" in err
    text = scaling_section("python -m benchmarks", *TABLES, images=[])
    assert "| 16 | 30.0 |" in text and "| T | rnnsim µs/step |" in text
    assert "![" not in text and "matplotlib was not installed" in text


def test_section_embeds_the_written_plots_above_their_tables():
    text = scaling_section("python -m benchmarks", *TABLES,
                           images=[f"docs/images/{plots.H_SVG}", f"docs/images/{plots.T_SVG}"])
    assert text.index(f"(images/{plots.H_SVG})") < text.index("| H | rnnsim") < text.index(f"(images/{plots.T_SVG})")
    assert "`python -m benchmarks`" in text


def test_targets_without_torch_say_not_checked():
    from benchmarks.bench_cells import targets

    row = dict(mode="1 core", dtype="float32", cell="lstm", gflops=40.0, peak=70.0)
    rows = [dict(row, H=16, B=1, times={"rnnsim": 1e-5, "numpy": 8e-5}),
            dict(row, H=512, B=32, times={"rnnsim": 5e-3, "numpy": 9e-3})]
    got = {text.split(" (")[0]: ok for text, ok in targets(rows, 1.2)}
    assert got == {"H ≤ 64, B = 1: ≥ 10x faster than the PyTorch cell loop": None,
                   "H ≤ 64, B = 1: ≥ 5x faster than NumPy": True,
                   "LSTM and GRU, float32, B = 32, H = 64 to 512, one core: no slower than torch fused": None,
                   "every one-core row: faster than JAX": None,
                   "LSTM H = 512, B = 32, float32, 1 core: ≥ 50% of peak matmul": True,
                   "`rnnsim run vanishing` warm < 1.5 s": True}


def test_targets_name_the_worst_row_against_each_peer():
    from benchmarks.bench_cells import targets

    row = dict(mode="1 core", dtype="float32", B=32, gflops=40.0, peak=70.0)
    rows = [dict(row, cell="lstm", H=64, times={"rnnsim": 1.0, "torch-fused": 1.2, "jax": 2.0}),
            dict(row, cell="gru", H=512, times={"rnnsim": 1.0, "torch-fused": 0.9, "jax": 1.5}),
            dict(row, cell="rnn", H=512, times={"rnnsim": 1.0, "torch-fused": 0.5, "jax": 1.1})]   # not a target row
    got = dict(targets(rows, None))
    fused = [t for t in got if t.startswith("LSTM and GRU")]
    assert len(fused) == 1 and "worst row: 0.90x, float32 gru H = 512 B = 32" in fused[0] and got[fused[0]] is False
    jax = [t for t in got if t.startswith("every one-core row")]
    assert "worst row: 1.10x, float32 rnn H = 512" in jax[0] and got[jax[0]] is True


def test_bench_sweep_summary_table_and_targets_from_fixed_numbers():
    """benchmarks/bench_sweep.py: its summary, table and target lines (fixed samples; nothing is run or timed)."""
    from benchmarks import bench_sweep as bs

    one = [dict(wall=w, runs=240, run_seconds=w - 0.24) for w in (1.0, 1.2, 1.1)]        # 1 ms per run outside
    two = [dict(wall=w, runs=240, run_seconds=2 * w - 0.48) for w in (0.6, 0.55, 0.65)]   # 2 ms worker-time per run
    results = [bs.summarise("1 local worker", 1, one), bs.summarise("2 local workers", 2, two)]
    assert results[0]["rate"] == 240 / 1.1 and results[0]["rate_min"] == 200 and results[0]["n"] == 3
    assert abs(results[0]["overhead_ms"] - 1.0) < 1e-9 and abs(results[1]["overhead_ms"] - 2.0) < 1e-9
    text = bs.table(results)
    assert text.splitlines()[0].startswith("| configuration |") and "| 1 local worker | 3 | 240 | 218.2 |" in text
    lines = bs.verdicts(results, [1.0 / 0.6, 1.2 / 0.55])
    assert lines[0].startswith("- per-run overhead at 1 worker: 1.0 ms") and lines[0].endswith(": met")
    assert "speed-up 2 workers vs 1: 1.83x" in lines[1] and ": met;" in lines[1]
    jax_row = bs.summarise(bs.JAX_NAME, 1, [dict(wall=0.5, runs=240, run_seconds=0.0)])
    assert f"| {bs.JAX_NAME} | 1 | 240 | 480.0 |" in bs.table([jax_row]) and "only the passes" in bs.table([jax_row])


def test_bench_sweep_interleaves_configurations_and_compares_dask_with_one_worker_beside_its_cluster():
    """bench_sweep.interleaved: A B then B A, the warm-up round not counted, the hook called once after it; the Dask
    verdict compares with the 1-worker row run beside the same cluster (fixed samples; nothing is run)."""
    from benchmarks import bench_sweep as bs

    calls, hooked = [], []

    def fake(name, wall):
        return lambda: calls.append(name) or dict(wall=wall, runs=240, run_seconds=0.0)

    configs = [("a", 1, fake("a", 1.0)), ("b", 2, fake("b", 0.5))]
    samples: dict = {}
    per_round, _ = bs.interleaved(configs, 3, Path("."), samples, None, after_warmup=hooked.append)
    assert calls == ["a", "b", "b", "a", "a", "b", "b", "a"]
    assert len(per_round) == 3 and [len(samples[k]) for k in "ab"] == [3, 3] and hooked == [None]
    one = bs.summarise("1 local worker", 1, [dict(wall=1.0, runs=240, run_seconds=0.9)])
    beside = bs.summarise(bs.ONE_BESIDE_DASK, 1, [dict(wall=1.2, runs=240, run_seconds=1.1)])
    dask = bs.summarise(bs.DASK_NAME, 2, [dict(wall=0.8, runs=240, run_seconds=1.2)])
    rounds = [{bs.ONE_BESIDE_DASK: {"wall": 1.2}, bs.DASK_NAME: {"wall": 0.8}},
              {bs.ONE_BESIDE_DASK: {"wall": 1.0}, bs.DASK_NAME: {"wall": 0.5}}]
    line = [x for x in bs.verdicts([one, beside, dask], [], rounds) if "Dask" in x]
    assert line == ["- Dask 2 workers vs 1 local worker beside the same idle cluster: 1.50x from the medians; "
                    "per-round ratios 1.50-2.00x"]


def test_rounds_rotate_the_order_and_time_every_function_each_round():
    """benchmarks/peers.py: round r starts at the r-th function, so none always runs right after the same other."""
    from benchmarks import peers

    calls = []
    fns = {k: (lambda k=k: calls.append(k)) for k in "abc"}
    times = peers.rounds(fns, min_rounds=7, warm=False)
    assert [len(v) for v in times.values()] == [7, 7, 7]
    firsts = calls[::3]
    assert firsts == ["a", "b", "c", "a", "b", "c", "a"]
    before = {(calls[i - 1], calls[i]) for i in range(1, len(calls))}
    assert {("c", "a"), ("b", "a")} <= before        # a follows both of the others over the rounds


def test_check_flags_a_peer_whose_numbers_differ():
    """peers.check: the worst relative difference per peer, and the peer over the tolerance named."""
    from benchmarks import peers

    ref = {"h": np.ones((2, 3)), "weight_hh": np.full((3, 3), 2.0)}

    def impl(delta):
        f = lambda: None  # noqa: E731
        f.result = lambda: {"h": ref["h"] + delta, "weight_hh": ref["weight_hh"]}
        return f
    rn = impl(0.0)
    fns = {"rnnsim": rn, "same": impl(1e-16), "off": impl(1e-3), "numpy": lambda: None}
    worst, bad = peers.check(fns, "float64")
    assert bad == ["off"] and worst["off"] == pytest.approx(1e-3) and worst["same"] < peers.TOL["float64"]
    assert "numpy" not in worst and fns["numpy"].first_s >= 0


def test_ab_pool_variants_undo_one_choice_each(monkeypatch):
    """benchmarks/ab_pool.py: 'trim-in-parent' trims this process where Pool.results forks (its gc.freeze) and not
    in the worker's initializer; 'no-exit-reserve' feeds the workers to the end; 'now' is the code as it is. Each is
    checked by what it calls or sets, nothing is timed."""
    from benchmarks import ab_pool as ab_trim
    from rnnsim.sweep import backends

    for name in ("_worker_init", "gc", "EXIT_RESERVE", "trim_heap"):     # restored after the test, whatever it set
        monkeypatch.setattr(backends, name, getattr(backends, name))
    calls = []
    monkeypatch.setattr(ab_trim, "_TRIM", lambda: calls.append("trim"))
    monkeypatch.setattr(ab_trim, "_INIT", lambda *a: calls.append("init") or backends.trim_heap())
    monkeypatch.setattr(backends, "trim_heap", ab_trim._TRIM)
    monkeypatch.setattr(ab_trim._GC, "freeze", lambda: calls.append("freeze"))
    ab_trim._variant("trim-in-parent")
    try:
        backends._worker_init(None, (), 0)
        assert calls == ["init"]                 # the worker does not trim
        backends.gc.freeze()
        assert calls == ["init", "trim", "freeze"]
    finally:
        ab_trim._variant("now")
    assert backends._worker_init is ab_trim._INIT and backends.gc is ab_trim._GC
    ab_trim._variant("no-exit-reserve")
    try:
        assert backends.EXIT_RESERVE < 0 and backends._worker_init is ab_trim._INIT
    finally:
        ab_trim._variant("now")
    assert backends.EXIT_RESERVE == ab_trim._RESERVE > 0
    import inspect

    lines = [line.strip() for line in inspect.getsource(backends.Pool.results).splitlines()]
    freeze = next(i for i, line in enumerate(lines) if line.startswith("gc.freeze()"))
    assert lines[freeze + 1:freeze + 3] == ["try:", "fill()"]    # the first submit (the fork) right after the freeze


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="the ceiling forks its processes")
def test_sweep_ceiling_forks_released_children_and_reports_a_failed_one(tmp_path):
    """benchmarks/sweep_ceiling.py: n forked children each time one pass over every run of the sweep (after an
    untimed one) and all are reaped; the pair's sample is its slower child's time over both children's runs; a child
    that fails is reported (its pipes closed, so the parent does not wait), and the healthy one is reaped too."""
    import os

    from benchmarks import sweep_ceiling
    from rnnsim.sweep import load_sweep

    path = tmp_path / "tiny.toml"
    path.write_text('[sweep]\nscenario = "vanishing"\niterations = 0\n\n[sweep.grid]\n"task.length" = [5, 6]\n')
    sweep = load_sweep(str(path))
    seconds = sweep_ceiling.forked_passes(sweep, 2)
    assert len(seconds) == 2 and all(0 < s < 60 for s in seconds)
    s = sweep_ceiling.sample(sweep, 2)
    assert s["runs"] == 4 and 0 < s["wall"] <= s["run_seconds"] <= 2 * s["wall"]    # the slower child's; both's
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)            # no child left behind

    # One child fails: in a process of its own, so that a parent waiting on its pipes fails this test, not hangs it.
    script = f"""
import os
from benchmarks import sweep_ceiling
from rnnsim.sweep import load_sweep
sweep, parent, original = load_sweep({str(path)!r}), os.getpid(), sweep_ceiling.one_pass
def broken_pass(sw):
    if os.getpid() != parent:
        try:
            os.close(os.open({str(tmp_path / "first")!r}, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return original(sw)     # the second child: a real pass, then it waits to be released
        raise RuntimeError("broken")  # the first child fails before saying it is ready
    return original(sw)
sweep_ceiling.one_pass = broken_pass
try:
    sweep_ceiling.forked_passes(sweep, 2)
except RuntimeError as exc:
    print("raised:", exc)
try:
    os.waitpid(-1, os.WNOHANG)
except ChildProcessError:
    print("no child left")
"""
    import signal
    import subprocess

    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[2], start_new_session=True)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("the parent waited for a failed ceiling child")
    assert "raised: 2 of 2 ceiling children failed" in out and "no child left" in out, out + err
    assert "RuntimeError: broken" in err      # the failed child said why


def test_bench_sweep_ceiling_verdict_compares_the_pool_with_the_forked_pair():
    """bench_sweep.verdicts: the ceiling line (two forked processes against one) and the pool's share of it; the
    ceiling rows' per-run overhead column says only the passes are timed (fixed samples; nothing is run)."""
    from benchmarks import bench_sweep as bs
    from benchmarks import sweep_ceiling as sc

    results = [bs.summarise("1 local worker", 1, [dict(wall=1.0, runs=240, run_seconds=0.9)]),
               bs.summarise("2 local workers", 2, [dict(wall=0.625, runs=240, run_seconds=1.1)]),
               bs.summarise(sc.ALONE, 1, [dict(wall=0.9, runs=240, run_seconds=0.9)]),
               bs.summarise(sc.PAIR, 2, [dict(wall=1.0, runs=480, run_seconds=1.98)])]
    lines = bs.verdicts(results, [1.6])
    ceiling = [line for line in lines if line.startswith("- ceiling")]
    assert len(ceiling) == 1 and "1.80x from the medians" in ceiling[0] and "the pool's 1.60x is 89% of it" in ceiling[0]
    table = bs.table(results)
    assert f"| {sc.PAIR} | 1 | 480 | 480.0 |" in table and table.count("only the passes are timed") == 2
