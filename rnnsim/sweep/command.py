"""`rnnsim sweep`: run every grid point of a sweep file and write the tidy table (registered in rnnsim.cli)."""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import click

from rnnsim.completion import complete_sweep
from rnnsim.export import ExportError
from rnnsim.results import EXPLODING_ABOVE, REGIMES, VANISHING_BELOW
from rnnsim.sweep.spec import Sweep, load_sweep

EXIT_INTERRUPTED = 130


class _Failure(click.ClickException):
    """Not the user's input (a scheduler out of reach): one line on stderr, exit 1."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"rnnsim: {self.message}", err=True)

_EPILOG = f"""\b
SWEEP is a sweep file or a built-in sweep (`rnnsim list`):
  [sweep]
  scenario = "vanishing"   # a built-in name or a path relative to the file
  iterations = 0           # per run; 0 = one forward and backward pass
  seeds = [0, 1]           # optional; default: the scenario's seed
  [sweep.grid]             # dotted scenario keys; the runs are their product
  "model.recurrent_scale" = [0.5, 1.0, 1.5]
  "task.length" = [25, 50, 100]

\b
The table has one row per run: a column per grid key, seed, final_loss,
grad_ratio (|dL/dh_0|/|dL/dh_T-1| of the last pass, batch mean), max_grad_norm,
clip_events, finite, regime, seconds. A row equals `rnnsim run SCENARIO
--set KEY=VALUE ... --set scenario.seed=SEED --iterations N`.
regime: exploding if a value became non-finite or grad_ratio > {EXPLODING_ABOVE:g};
vanishing if grad_ratio < {VANISHING_BELOW:g}; stable otherwise.

\b
Rows are appended as runs finish; rerunning the same command finishes a
killed or interrupted sweep (OUT.sweep.json records which sweep OUT holds).
Every grid point is checked before anything runs (exit 2 with one line).

\b
A Dask cluster by hand (one thread per worker process):
  dask scheduler --host 127.0.0.1 --port 8786
  dask worker tcp://127.0.0.1:8786 --nworkers 2 --nthreads 1
  rnnsim sweep regimes --scheduler tcp://127.0.0.1:8786
"""


@click.command("sweep", epilog=_EPILOG)
@click.argument("sweep_file", metavar="SWEEP", required=False, shell_complete=complete_sweep)
@click.option(
    "--out", "-o", type=click.Path(dir_okay=False), default=None,
    help="The table: .csv (default: SWEEP's name + .csv, here) or .parquet (the 'data' extra).",
)
@click.option(
    "--workers", "-j", type=click.IntRange(1, 1024), default=None,
    help="Local workers: this process and N-1 forked processes (default: every core); with --scheduler local, "
    "the Dask workers.",
)
@click.option(
    "--scheduler", metavar="ADDRESS|local", default=None,
    help="Run on a Dask cluster: tcp://HOST:PORT of a running `dask scheduler`, or `local` for a LocalCluster "
    "(the 'dask' extra).",
)
@click.option(
    "--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
    help="Draw the regime map (log10 grad_ratio over the first two grid keys) to FILE (.svg, .png or .pdf; "
    "the 'plot' extra).",
)
@click.option(
    "--show", "show_path", type=click.Path(dir_okay=False), metavar="TABLE", default=None,
    help="Instead of running: draw the regime map of TABLE (a sweep's .csv or .parquet) in the terminal.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary line.")
def sweep_command(
    sweep_file: str | None, out: str | None, workers: int | None, scheduler: str | None, plot_path: str | None,
    show_path: str | None, quiet: bool,
) -> None:
    """Run every grid point of SWEEP (one run per point and seed) and write one row per run to --out.

    `rnnsim sweep --show TABLE` draws the regime map of a finished (or partial) table in the terminal."""
    from rnnsim.sweep import backends, table as tables

    if show_path is not None:
        if sweep_file is not None:
            raise click.UsageError("give SWEEP to run a sweep, or --show TABLE to draw one, not both")
        sweep, rows = tables.open_table(show_path)
        if plot_path is not None:
            from rnnsim.sweep.plot import regime_map

            regime_map(sweep, [rows[i] for i in sorted(rows)], plot_path)
        from rnnsim.sweep.show import show_map

        show_map(sweep, [rows[i] for i in sorted(rows)])
        return
    if sweep_file is None:
        raise click.UsageError("missing SWEEP (a sweep file or a built-in sweep; see `rnnsim list`)")
    sweep = load_sweep(sweep_file)  # every grid point validated: exit 2 with one line before anything runs
    out = out or f"{Path(sweep_file).stem}.csv"
    if plot_path is not None:
        from rnnsim.sweep.plot import check_plot_path

        check_plot_path(plot_path)
    if scheduler is not None:
        _check_dask(scheduler)
    table = tables.Table(sweep, out)
    done = table.open()
    try:
        todo = [run for run in sweep.runs() if run.index not in done]
        indices = [run.index for run in todo]
        n_workers = workers or backends.default_workers()
        if scheduler is not None:
            backend: Any = backends.DaskCluster(sweep, indices, scheduler, workers, sweep.fingerprint)
        elif n_workers == 1 or len(todo) <= 1:
            backend = backends.Serial(sweep, indices)
        else:
            backend = backends.Pool(sweep, indices, min(n_workers, len(todo)), close_fds=table.fds())
        runs = {run.index: run for run in todo}
        already = len(done)
        backends.keep_heap()  # in this process and (by fork) in its pool's workers
        start = time.perf_counter()
        if todo:
            _execute(backend, len(todo), runs, sweep, table, done, quiet)
        table.finish(done)
    except KeyboardInterrupt:
        table.close()
        click.echo(
            f"rnnsim: interrupted: {len(done)} of {sweep.n_runs} runs kept in {table.journal}; "
            "rerun the same command to finish the rest",
            err=True,
        )
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    except BaseException:
        table.close()
        raise
    elapsed = time.perf_counter() - start
    if plot_path is not None:
        from rnnsim.sweep.plot import regime_map

        regime_map(sweep, [done[i] for i in sorted(done)], plot_path)
    if not quiet:
        _print_summary(sweep, done, already, len(todo), backend.name if todo else None, elapsed, table.path, plot_path)


def _check_dask(scheduler: str) -> None:
    try:
        import dask.distributed  # noqa: F401
    except ImportError:
        from rnnsim.sweep.backends import dask_extra_line

        raise ExportError(dask_extra_line("rnnsim sweep --scheduler")) from None
    if scheduler != "local" and "://" not in scheduler and ":" not in scheduler:
        raise ExportError(f"--scheduler {scheduler!r}: allowed: tcp://HOST:PORT of a Dask scheduler, or local")


def _execute(backend: Any, total: int, runs: dict, sweep: Sweep, table: Any, done: dict, quiet: bool) -> None:
    from rnnsim.sweep.table import full_row

    progress = None
    if not quiet and sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        progress = Progress(
            TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]} runs/s"),
            TimeRemainingColumn(), console=Console(stderr=True), transient=True,
        )
    try:
        try:
            backend.start()
        except (ConnectionError, RuntimeError) as exc:
            raise _Failure(str(exc)) from None
        if progress is not None:
            progress.start()
            task = progress.add_task("sweep", total=total, rate="-")
        t0 = time.perf_counter()
        for count, (index, result) in enumerate(backend.results(), start=1):
            row = full_row(sweep, runs[index], result)
            table.append(row, index)
            done[index] = row
            if progress is not None:
                progress.update(task, advance=1, rate=f"{count / max(time.perf_counter() - t0, 1e-9):.3g}")
    finally:
        if progress is not None:
            progress.stop()
        backend.stop()


def _print_summary(
    sweep: Sweep, done: dict, already: int, ran: int, where: str | None, elapsed: float, out: Path, plot: str | None
) -> None:
    counts = Counter(row["regime"] for row in done.values())
    regimes = ", ".join(f"{counts.get(r, 0)} {r}" for r in REGIMES)
    if ran:
        how = f"{ran} runs on {where} in {elapsed:.3g} s ({ran / max(elapsed, 1e-9):.3g} runs/s)"
    else:
        how = "nothing to run"
    if already:
        how += f", {already} already in {out}"
    click.echo(f"{sweep.name}: {how}: {regimes} -> {out}" + (f", {plot}" if plot else ""))
