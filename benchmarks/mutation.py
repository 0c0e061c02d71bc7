"""Mutation run: put each known-plausible bug into a copy of the code, one at a time, run the tests that should
catch it, and report which tests failed (issue 17). A mutant that no test kills is a hole in the suite.

    python -m benchmarks.mutation                 # every mutant; a table on stdout, progress on stderr
    python -m benchmarks.mutation --list          # the mutants and the test files each one runs
    python -m benchmarks.mutation --only adam-bias --only norm-clip-le
    python -m benchmarks.mutation --write         # also write the table into docs/testing.md

Each mutant is an exact text replacement in one file of a copy of the tree (the checkout is never touched), so the
list doubles as documentation of what the suite must catch. The copy keeps file times, so numba's cache is reused
for kernels whose source did not change; a mutant in a kernel file gets a fresh cache directory. Exit status 1 when
a mutant survives (or the unmutated copy fails its tests), 0 when every mutant is killed by at least MIN_KILLS tests.
Not part of CI (minutes per mutant on a small machine); run it before a release and after changing a guarded module.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MIN_KILLS = 2

OPTIM_TESTS = ["tests/unit/test_optim.py", "tests/unit/test_simulation.py", "tests/unit/test_torch_crosscheck.py"]
DIAG_TESTS = ["tests/unit/test_diagnostics.py", "tests/unit/test_diagnostics_reference.py"]
TASK_TESTS = ["tests/unit/test_tasks.py", "tests/unit/test_simulation.py"]
SCENARIO_TESTS = ["tests/unit/test_scenario.py", "tests/unit/test_cli.py"]
CHUNK_TESTS = ["tests/unit/test_chunked.py", "tests/unit/test_chunked_reference.py"]


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str          #: file inside the repository; a list of candidates is tried in order (modules move)
    old: str           #: exact text, must occur exactly once
    new: str
    what: str
    tests: tuple[str, ...]


def _m(name, path, old, new, what, tests):
    return Mutant(name, path, old, new, what, tuple(tests))


MUTANTS = [
    _m("adam-bias", "rnnsim/optim.py",
       "p -= self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)", "p -= self.lr * m / (np.sqrt(v) + self.eps)",
       "Adam without bias correction", OPTIM_TESTS),
    _m("momentum-buffer", "rnnsim/optim.py",
       "p -= self.lr * self.buf[k]", "p -= self.lr * grads[k]",
       "momentum ignoring its buffer (plain SGD)", OPTIM_TESTS),
    _m("value-clip-0", "rnnsim/optim.py",
       "np.clip(g, -threshold, threshold, out=g)", "np.clip(g, 0, threshold, out=g)",
       "value clipping to [0, θ] instead of [−θ, θ]", OPTIM_TESTS),
    _m("norm-clip-le", "rnnsim/optim.py",
       "if norm <= threshold:", "if norm < threshold:",
       "norm clipping when ‖g‖ = θ (< instead of <=)", OPTIM_TESTS),
    _m("pascanu-rho", "rnnsim/diagnostics.py",
       "elif smax < bound:", "elif float(np.abs(eig).max()) < bound:",
       "Pascanu verdict from ρ instead of σ_max", DIAG_TESTS),
    _m("jacobian-smallest", "rnnsim/diagnostics.py",
       "np.linalg.svd(J, compute_uv=False)[:, 0].mean()", "np.linalg.svd(J, compute_uv=False)[:, -1].mean()",
       "‖J_t‖ as the smallest singular value", DIAG_TESTS),
    _m("adding-second-1", "rnnsim/tasks.py",
       "x[rows, first, 0] + x[rows, second, 0]", "x[rows, first, 0] + x[rows, second - 1, 0]",
       "adding target summing x[second − 1]", TASK_TESTS),
    _m("clip-threshold-0", "rnnsim/scenario.py",
       '"Clipping threshold theta.", gt=0', '"Clipping threshold theta.", ge=0',
       "clip_threshold allowed to be 0", SCENARIO_TESTS),
    _m("lstm-recompute-bias", "rnnsim/cells/lstm.py",
       'ws.W_hhT, params["bias_hh"], ws.hs_k, ws.cs_k, ws.gates_k, ws.tmp)',
       'ws.W_hhT, 0 * params["bias_hh"], ws.hs_k, ws.cs_k, ws.gates_k, ws.tmp)',
       "bias_hh dropped in the chunked BPTT recompute (LSTM)", CHUNK_TESTS),
    _m("lstm-stepcache-bias", "rnnsim/cells/lstm.py",
       'h_prev @ p["weight_hh"].T + p["bias_hh"]', 'h_prev @ p["weight_hh"].T',
       "bias_hh dropped in the chunked gates the diagnostics read (LSTM)", CHUNK_TESTS + DIAG_TESTS),
    _m("gru-recompute-bias", "rnnsim/cells/gru.py",
       'forward_range(0, hi - lo, ws.XW, prev_state(ws, ws.h, lo, ws.h0), ws.W_hhT, params["bias_hh"], ws.hs_k,',
       'forward_range(0, hi - lo, ws.XW, prev_state(ws, ws.h, lo, ws.h0), ws.W_hhT, 0 * params["bias_hh"], ws.hs_k,',
       "bias_hh dropped in the chunked BPTT recompute (GRU)", CHUNK_TESTS),
    _m("unreadable-message", "rnnsim/scenario.py",
       '        raw = path.read_bytes()\n    except OSError as exc:\n'
       '        raise ScenarioError(f"{source}: cannot read: {exc.strerror or exc}", source=source) from None',
       '        raw = path.read_bytes()\n    except OSError as exc:\n'
       '        raise ScenarioError(f"{source}: {exc}", source=source) from None',
       "an unreadable file's message without 'cannot read' (the test skipped as root)", ["tests/unit/test_scenario.py"]),
    _m("compare-b-series", "rnnsim/tui/screens/compare.py",
       "(xs, va, A_GLYPH, A_STYLE), (xs, vb, B_GLYPH, B_STYLE)], rows, width, lo_hi)",
       "(xs, va, A_GLYPH, A_STYLE), (xs, va, B_GLYPH, B_STYLE)], rows, width, lo_hi)",
       "compare view: B's gradient profile drawn at A's values", ["tests/tui/test_views.py::test_compare_view_and_knob",
                                                                  "tests/tui/test_views.py::test_profile_lines_put_each_series_in_its_decade"]),
]

COPY = ("rnnsim", "tests", "scenarios", "benchmarks", "pyproject.toml")
KERNEL_MARK = re.compile(r"\bjit\b|njit")


def copy_tree(dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis", ".pytest_cache", "*.nbi", "*.nbc")
    for name in COPY:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dst / name, ignore=ignore, copy_function=shutil.copy2)
        elif src.exists():
            shutil.copy2(src, dst / name)


def apply(tree: Path, m: Mutant) -> Path:
    path = tree / m.path
    text = path.read_text(encoding="utf-8")
    n = text.count(m.old)
    if n != 1:
        raise SystemExit(f"mutant {m.name}: {m.path} holds the original text {n} times (expected once); "
                         "update MUTANTS in benchmarks/mutation.py to the moved or changed code")
    path.write_text(text.replace(m.old, m.new), encoding="utf-8")
    return path


def run_tests(tree: Path, tests, cache: Path, timeout: float) -> tuple[int, list[str], str]:
    """Run ``tests`` in the copy; one pytest per test folder (tests/unit and tests/tui each have a conftest that
    the other's modules import by the bare name ``conftest``). Returns (worst exit code, failed node ids, tail)."""
    env = dict(os.environ, PYTHONPATH=str(tree), NUMBA_CACHE_DIR=str(cache), PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTEST_ADDOPTS", None)
    groups: dict[str, list[str]] = {}
    for t in tests:
        groups.setdefault(t.split("/")[1], []).append(t)
    rc, failed, tail = 0, set(), ""
    for group in sorted(groups.values()):
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE", "--no-header",
               "-o", "addopts=", "--hypothesis-seed=0", *group]
        try:
            proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return -1, ["(timeout)"], ""
        rc = rc or proc.returncode
        failed |= {line.split(" ", 2)[1] for line in proc.stdout.splitlines()
                   if line.startswith(("FAILED ", "ERROR "))}
        tail += proc.stdout[-3000:]
    return rc, sorted(failed), tail


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.mutation", description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", action="append", default=[], help="run this mutant (repeatable)")
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument("--write", action="store_true", help="write the result table into docs/testing.md")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per test run (default 900)")
    args = ap.parse_args(argv)
    chosen = [m for m in MUTANTS if not args.only or m.name in args.only]
    unknown = set(args.only) - {m.name for m in MUTANTS}
    if unknown:
        ap.error(f"unknown mutant {sorted(unknown)}: choose from {', '.join(m.name for m in MUTANTS)}")
    if args.list:
        for m in MUTANTS:
            print(f"{m.name:22} {m.path}: {m.what}\n{'':22} tests: {' '.join(m.tests)}")
        return 0
    work = Path(tempfile.mkdtemp(prefix="rnnsim-mutation-"))
    tree, shared_cache = work / "tree", work / "numba"
    rows, ok = [], True
    try:
        # the unmutated copy must pass the union of the selected tests, or a "kill" means nothing
        union = sorted({t for m in chosen for t in m.tests})
        copy_tree(tree)
        t0 = time.perf_counter()
        print(f"baseline: {len(union)} test targets ...", file=sys.stderr, flush=True)
        rc, failed, tail = run_tests(tree, union, shared_cache, args.timeout)
        if rc != 0:
            print(f"the unmutated tree fails: {failed}\n{tail}", file=sys.stderr)
            return 1
        print(f"baseline passes ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
        for i, m in enumerate(chosen, 1):
            copy_tree(tree)
            path = apply(tree, m)
            cache = shared_cache
            if KERNEL_MARK.search(path.read_text(encoding="utf-8")):
                cache = work / f"numba-{m.name}"   # a fresh numba cache: no kernel compiled from other sources
            t0 = time.perf_counter()
            rc, failed, tail = run_tests(tree, list(m.tests), cache, args.timeout)
            dt = time.perf_counter() - t0
            killed = len(failed) >= MIN_KILLS or (failed == ["(timeout)"])
            ok &= killed
            rows.append((m, failed, dt))
            status = f"killed by {len(failed)}" if failed else "SURVIVED"
            print(f"[{i}/{len(chosen)}] {m.name}: {status} ({dt:.0f} s)", file=sys.stderr, flush=True)
            if not failed and rc != 0:
                print(tail, file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table = render(rows)
    print(table)
    if args.write:
        write_doc(table)
    return 0 if ok else 1


def render(rows) -> str:
    out = ["| mutant | file | bug | tests failing | which |", "|---|---|---|---|---|"]
    for m, failed, _ in rows:
        short = [f.split("::", 1)[-1] for f in failed]
        shown = ", ".join(f"`{s}`" for s in short[:6]) + (f" and {len(short) - 6} more" if len(short) > 6 else "")
        out.append(f"| `{m.name}` | {m.path} | {m.what} | {len(failed) or '**0: survived**'} | {shown} |")
    return "\n".join(out)


BEGIN, END = "<!-- mutation-table:begin -->", "<!-- mutation-table:end -->"


def write_doc(table: str) -> None:
    doc = REPO / "docs" / "testing.md"
    text = doc.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{doc}: no {BEGIN} ... {END} markers to write the table between")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
