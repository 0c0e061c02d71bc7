"""Runs per second of the built-in `regimes` sweep (issue 14) at 1 and 2 local workers and on a 2-worker Dask cluster.

Each timed sweep is the real `rnnsim sweep regimes --quiet --out TMP/x.csv [--workers N | --scheduler ADDRESS]`
(rnnsim.sweep.command, called in this process): validation of every grid point, the backend, the table appended
and rewritten, all included. The configurations are interleaved in rounds (A B C, then C B A, ...), so a burst of
load from other processes hits every configuration alike; after one warm-up round (Numba's compile or cache load)
the median runs/s and its spread (min-max) over the rounds are reported.

    python -m benchmarks.bench_sweep                  # 5 rounds; writes the "Sweeps" section of docs/benchmarks.md
    python -m benchmarks.bench_sweep --rounds 1 --no-write --no-dask     # a quick check, only prints

Per-run overhead: (sweep wall time x workers - the sum of the rows' `seconds`) / runs, i.e. the time a worker
spends per run outside the Simulation's own work (for 1 worker: wall time - sum(seconds), over runs). The local rows
(and JAX's) are interleaved with no Dask cluster alive: an idle LocalCluster's event loops take ~15% of a core (its
scheduler ~6%, each worker ~5%, measured with psutil over 10 s), which a 2-worker pool on 2 cores feels. Then one
LocalCluster (2 worker processes, 1 thread each) is started and reached by its tcp:// address, and its rows are
interleaved with 1 local worker run beside the same idle cluster; one extra `--scheduler local` sweep shows the cost of
starting a cluster per sweep.
A JAX vmap column (benchmarks/jax_sweep.py) is measured when `import jax` works (JAX is never a dependency; otherwise
one line says it is skipped): the same grid's grad_ratio, one forward and backward pass per point, vmapped over the
points of one shape; it is first checked equal to the warm-up table's grad_ratio (tolerances in jax_sweep.py), its
compile time is reported apart, and it joins the interleaved rounds. The ceiling (benchmarks/sweep_ceiling.py, left
out with --no-ceiling) joins them too: the same runs in one forked process, then in two at once that share nothing
(no validation, no pool, no messages, no table), so the speed-up the machine allows right now is measured in the same
minutes as the pool's. Progress goes to stderr; tables go to stdout.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import sweep_ceiling

SWEEP = "regimes"
TARGET_OVERHEAD_MS = 20.0
TARGET_SPEEDUP = 1.7
JAX_NAME = "JAX vmap (own process)"
LOCAL = [("1 local worker", 1, ["--workers", "1"]), ("2 local workers", 2, ["--workers", "2"])]
DASK_NAME = "Dask LocalCluster, 2 workers"
UNTABLED = (JAX_NAME, sweep_ceiling.ALONE, sweep_ceiling.PAIR)
ONE_BESIDE_DASK = "1 local worker, beside the idle cluster"


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def nproc() -> int:
    from rnnsim.sweep.backends import default_workers

    return default_workers()


def _cpu() -> tuple[float, float]:
    """CPU seconds (user + system) of this process and of its reaped children (a local pool's workers)."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def sweep_once(out_dir: Path, tag: str, extra: list[str]) -> dict:
    """One `rnnsim sweep regimes` through its command, into a fresh table: wall seconds, runs, sum of `seconds`."""
    from rnnsim.sweep.command import sweep_command

    out = out_dir / f"{tag}-{time.monotonic_ns()}.csv"
    c0 = _cpu()
    t0 = time.perf_counter()
    sweep_command.main([SWEEP, "--quiet", "--out", str(out), *extra], prog_name="rnnsim sweep", standalone_mode=False)
    wall = time.perf_counter() - t0
    cpu = [b - a for a, b in zip(c0, _cpu())]
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return {"wall": wall, "runs": len(rows), "run_seconds": sum(float(r["seconds"]) for r in rows),
            "cpu_parent": cpu[0], "cpu_workers": cpu[1], "rows": [{k: v for k, v in r.items() if k != "seconds"} for r in rows]}


def summarise(name: str, workers: int, samples: list[dict]) -> dict:
    rates = [s["runs"] / s["wall"] for s in samples]
    overheads = [(s["wall"] * workers - s["run_seconds"]) / s["runs"] * 1e3 for s in samples]
    return {"name": name, "workers": workers, "n": len(samples), "runs": samples[0]["runs"],
            "rate": statistics.median(rates), "rate_min": min(rates), "rate_max": max(rates),
            "wall": statistics.median(s["wall"] for s in samples),
            "overhead_ms": statistics.median(overheads), "overhead_min": min(overheads),
            "overhead_max": max(overheads),
            "cpu_parent": statistics.median(s.get("cpu_parent", math.nan) for s in samples),
            "cpu_workers": statistics.median(s.get("cpu_workers", math.nan) for s in samples)}


def table(results: list[dict]) -> str:
    lines = ["| configuration | rounds | runs | median runs/s | spread (min-max) | median wall s | "
             "per-run overhead ms (median, min-max) |", "|---|---|---|---|---|---|---|"]
    for r in results:
        over = ("- (only the passes are timed)" if r["name"] in UNTABLED else
                f"{r['overhead_ms']:.1f} ({r['overhead_min']:.1f}-{r['overhead_max']:.1f})")
        lines.append(f"| {r['name']} | {r['n']} | {r['runs']} | {r['rate']:.1f} | {r['rate_min']:.1f}-{r['rate_max']:.1f}"
                     f" | {r['wall']:.2f} | {over} |")
    return "\n".join(lines)


def verdicts(results: list[dict], ratios: list[float], dask_rounds: list[dict] | None = None) -> list[str]:
    by = {r["name"]: r for r in results}
    out = []
    one = by.get("1 local worker")
    if one is not None:
        ok = one["overhead_ms"] < TARGET_OVERHEAD_MS
        out.append(f"- per-run overhead at 1 worker: {one['overhead_ms']:.1f} ms (target < {TARGET_OVERHEAD_MS:g} ms): "
                   f"{'met' if ok else 'NOT met'}")
    two = by.get("2 local workers")
    if one is not None and two is not None:
        s = two["rate"] / one["rate"]
        spread = f"; per-round ratios {min(ratios):.2f}-{max(ratios):.2f}x" if ratios else ""
        out.append(f"- speed-up 2 workers vs 1: {s:.2f}x from the medians (target >= {TARGET_SPEEDUP:g}x): "
                   f"{'met' if s >= TARGET_SPEEDUP else 'NOT met'}{spread}")
        alone, pair = by.get(sweep_ceiling.ALONE), by.get(sweep_ceiling.PAIR)
        if alone is not None and pair is not None:
            c = pair["rate"] / alone["rate"]
            out.append(f"- ceiling, two forked processes sharing nothing against one (the runs only, interleaved with "
                       f"the sweeps): {c:.2f}x from the medians, so the machine allows {c:.2f}x now and the pool's "
                       f"{s:.2f}x is {100 * s / c:.0f}% of it")
    for name in ("1 local worker", "2 local workers"):
        r = by.get(name)
        if r is not None and not math.isnan(r["cpu_parent"]):
            out.append(f"- CPU per sweep, {name} (median): this process {r['cpu_parent']:.2f} s, its pool workers "
                       f"{r['cpu_workers']:.2f} s (getrusage: less sensitive to other load than wall time)")
    dask, beside = by.get(DASK_NAME), by.get(ONE_BESIDE_DASK)
    if beside is not None and dask is not None:
        pairs = [r[ONE_BESIDE_DASK]["wall"] / r[DASK_NAME]["wall"] for r in dask_rounds or []]
        spread = f"; per-round ratios {min(pairs):.2f}-{max(pairs):.2f}x" if pairs else ""
        out.append(f"- Dask 2 workers vs 1 local worker beside the same idle cluster: "
                   f"{dask['rate'] / beside['rate']:.2f}x from the medians{spread}")
    return out


def jax_setup(rows: list[dict]) -> tuple[object | None, str]:
    """The JAX column's grid (benchmarks/jax_sweep.py) after its check against rnnsim's table, or None and why not.
    Runs in a child process of its own (see JaxProcess): XLA starts threads, and a process with threads must not
    fork the sweep's pool."""
    try:
        import jax
    except Exception:
        return None, "JAX vmap: skipped (`import jax` fails: JAX is not installed; it is never a dependency)."
    from benchmarks import jax_sweep
    from rnnsim.sweep import load_sweep

    sweep = load_sweep(SWEEP)
    t0 = time.perf_counter()
    grid = jax_sweep.JaxGrid(sweep)
    prep = time.perf_counter() - t0
    compile_s = grid.compile()
    by_index = {i: _typed(r) for i, r in enumerate(rows)}
    compared = jax_sweep.check(grid.run(), by_index)
    note = (f"JAX {jax.__version__} vmap, float64, CPU, in a process of its own: {len(grid.groups)} jit(vmap(...)) "
            f"calls, one per shape (cell, T), each over its scales x seeds; weights and data from rnnsim's Simulation "
            f"(same seed and init), prepared once in {prep:.1f} s, not timed; trace and compile {compile_s:.1f} s, not "
            "timed (reported apart). Checked first against rnnsim's grad_ratio: "
            + "; ".join(f"{k} {n} runs, largest relative difference {w:.1g}" for k, (n, w) in sorted(compared.items()))
            + f" (tolerance: {jax_sweep.RTOL:g} relative for vanishing and stable runs; exploding runs: the same "
            f"regime and log10 within {jax_sweep.EXPLODING_LOG10_TOL:g}, their forward pass is chaotic).")
    return grid, note


def _typed(row: dict) -> dict:
    """A CSV row's grad_ratio, finite and regime as Python values."""
    ratio = row["grad_ratio"]
    return {"grad_ratio": float(ratio) if ratio not in ("", None) else None, "finite": row["finite"] == "true",
            "regime": row["regime"]}


def _jax_child(conn, rows: list[dict]) -> None:
    try:
        grid, note = jax_setup(rows)
    except Exception as exc:  # noqa: BLE001 - reported as the column's line
        conn.send((None, f"JAX vmap: failed at set-up ({type(exc).__name__}: {exc})."))
        return
    conn.send((grid is not None, note))
    while grid is not None and conn.recv() == "run":
        t0 = time.perf_counter()
        values = grid.run()
        conn.send({"wall": time.perf_counter() - t0, "runs": len(values), "run_seconds": 0.0})


class JaxProcess:
    """The JAX column in a spawned child (this process never imports JAX, so it may still fork its pool)."""

    def __init__(self, rows: list[dict]):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_jax_child, args=(child, rows), daemon=True)
        self.proc.start()
        ok, self.note = self.conn.recv()
        self.ok = bool(ok)

    def run(self) -> dict:
        self.conn.send("run")
        return self.conn.recv()

    def close(self) -> None:
        if self.proc.is_alive():
            try:
                self.conn.send("stop")
            except OSError:
                pass
            self.proc.join(10)


def interleaved(configs: list, rounds: int, out_dir: Path, samples: dict, reference: list | None,
                after_warmup=None, phase: str = "") -> tuple[list[dict], list[dict]]:
    """``rounds`` timed rounds (after one warm-up round) of every configuration, in the order A B C, then C B A, ...:
    each sample goes to ``samples[name]``; every table must equal ``reference`` (the first one if None). Returns
    the per-round samples by name and the reference table. ``after_warmup(reference)`` may add configurations."""
    per_round = []
    for r in range(rounds + 1):
        order = configs if r % 2 == 0 else configs[::-1]
        this_round = {}
        for name, _, extra in order:
            if callable(extra):  # the JAX column (checked at set-up) or the ceiling rows: no table
                s = extra()
            else:
                s = sweep_once(out_dir, name.split()[0], extra)
                if reference is None:
                    reference = s["rows"]
                elif s["rows"] != reference:
                    raise SystemExit(f"bench_sweep: the table of {name!r} differs from the first one")
            this_round[name] = s
            if r > 0:
                samples.setdefault(name, []).append(s)
            log(f"{phase}{'warm-up' if r == 0 else f'round {r}'}: {name}: {s['runs']} runs in {s['wall']:.2f} s "
                f"({s['runs'] / s['wall']:.1f} runs/s)"
                + ("" if callable(extra) else f", sum of seconds {s['run_seconds']:.2f} s, CPU {s['cpu_parent']:.2f} "
                   f"s here + {s['cpu_workers']:.2f} s in pool workers"))
        if r > 0:
            per_round.append(this_round)
        elif after_warmup is not None:
            after_warmup(reference)
    return per_round, reference


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds after one warm-up round (default 5)")
    ap.add_argument("--no-dask", action="store_true", help="leave the Dask configuration out")
    ap.add_argument("--no-jax", action="store_true", help="leave the JAX vmap column out")
    ap.add_argument("--no-ceiling", action="store_true",
                    help="leave out the ceiling rows (the runs in one and in two forked processes sharing nothing)")
    ap.add_argument("--no-write", action="store_true", help="only print; do not rewrite docs/benchmarks.md")
    a = ap.parse_args(argv)
    command = "python -m benchmarks.bench_sweep" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    load_before = loadavg()
    log(f"load average before: {load_before}")
    cores, cpu = nproc(), cpu_model()

    configs: list = list(LOCAL)
    if not a.no_ceiling:
        from rnnsim.sweep import load_sweep

        ceiling_sweep = load_sweep(SWEEP)
        configs += [(sweep_ceiling.ALONE, 1, lambda: sweep_ceiling.sample(ceiling_sweep, 1)),
                    (sweep_ceiling.PAIR, 2, lambda: sweep_ceiling.sample(ceiling_sweep, 2))]
    samples: dict[str, list[dict]] = {}
    started_local = None
    dask_note = ""
    dask_rounds: list[dict] = []
    jax_proc, jax_note = None, "JAX vmap: left out (--no-jax)."
    cluster = None
    try:
        with tempfile.TemporaryDirectory(prefix="rnnsim-bench-sweep-") as tmp:
            out_dir = Path(tmp)

            def add_jax(reference: list) -> None:
                nonlocal jax_proc, jax_note
                if a.no_jax:
                    return
                log("JAX column: preparing, compiling and checking against the first table...")
                jax_proc = JaxProcess(reference)
                jax_note = jax_proc.note
                log(jax_note)
                if jax_proc.ok:
                    configs.append((JAX_NAME, 1, jax_proc.run))

            # Phase 1: the local pool, no cluster alive (an idle LocalCluster's event loops take ~15% of a core).
            local_rounds, reference = interleaved(configs, a.rounds, out_dir, samples, None, add_jax)
            ratios = [r["1 local worker"]["wall"] / r["2 local workers"]["wall"] for r in local_rounds]
            # Phase 2: Dask, against 1 local worker run beside the same (idle) cluster.
            if not a.no_dask:
                try:
                    from dask.distributed import LocalCluster
                except ImportError:
                    dask_note = "Dask: skipped (dask.distributed is not importable: pip install 'rnnsim[dask]')."
                else:
                    t0 = time.perf_counter()
                    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                           host="127.0.0.1")
                    log(f"Dask LocalCluster at {cluster.scheduler_address} started in {time.perf_counter() - t0:.2f} s")
                    pair = [(ONE_BESIDE_DASK, 1, ["--workers", "1"]),
                            (DASK_NAME, 2, ["--scheduler", cluster.scheduler_address])]
                    dask_rounds, _ = interleaved(pair, a.rounds, out_dir, samples, reference, phase="Dask phase, ")
                    configs += pair
                    cluster.close()
                    cluster = None
                    s = sweep_once(out_dir, "dask-local", ["--scheduler", "local", "--workers", "2"])
                    started_local = s
                    log(f"once: --scheduler local --workers 2 (cluster start included): {s['runs']} runs in "
                        f"{s['wall']:.2f} s ({s['runs'] / s['wall']:.1f} runs/s)")
    finally:
        if cluster is not None:
            cluster.close()
        if jax_proc is not None:
            jax_proc.close()
    load_after = loadavg()
    log(f"load average after: {load_after}")

    results = [summarise(name, workers, samples[name]) for name, workers, _ in configs if samples.get(name)]
    lines = [
        f"Command: `{command}` (each sweep: `rnnsim sweep {SWEEP} --quiet --out TMP.csv` plus the configuration's "
        "options, in this process; the tables go to a temporary folder).",
        "",
        f"Machine: {cpu}, nproc {cores}. Load average (1, 5, 15 min) before: {load_before}; after: {load_after}.",
        "",
        table(results),
        "",
        "Per-run overhead: (wall time x workers - the sum of the rows' `seconds`) / runs: a worker's time per run "
        "outside the Simulation's own work (1 worker: wall - sum(seconds), over runs). The local and JAX rows are "
        "interleaved with no Dask cluster alive; then one LocalCluster (2 processes, 1 thread each) is started and "
        "its rows (reached by `--scheduler tcp://...`) are interleaved with 1 local worker run beside the idle "
        "cluster." + ("" if a.no_ceiling else
                      " The two ceiling rows run the sweep's runs (each job built from the grid, then its "
                      "Simulation, as the 1-worker sweep does) in one forked process, then in two at once, released "
                      "together after an untimed pass each; the pair's wall time is its slower process's, its runs "
                      "both processes' (benchmarks/sweep_ceiling.py)."),
        "",
        *verdicts(results, ratios, dask_rounds),
    ]
    if started_local is not None:
        lines.append(f"- one `--scheduler local --workers 2` sweep (starting and closing the LocalCluster included): "
                     f"{started_local['wall']:.2f} s, {started_local['runs'] / started_local['wall']:.1f} runs/s")
    lines += ["", "Every table was identical to the first (apart from `seconds`)."]
    lines += [dask_note] if dask_note else []
    lines.append(jax_note)
    by = {r["name"]: r for r in results}
    if JAX_NAME in by and "1 local worker" in by:
        lines.append(f"- JAX vmap vs 1 local worker: {by[JAX_NAME]['rate'] / by['1 local worker']['rate']:.2f}x (JAX's "
                     "row times only the vmapped passes; XLA may use both cores)")
    text = "\n".join(lines)
    print(text)
    if not a.no_write:
        from benchmarks._machine import write_section

        write_section("Sweeps", text)
        log("wrote the Sweeps section of docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
