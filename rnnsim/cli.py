"""The ``rnnsim`` command line.

    rnnsim [SCENARIO] [--set KEY=VALUE ...]     open the TUI (default scenario: vanishing)
    rnnsim run SCENARIO [--iterations N] [--set KEY=VALUE ...] [--out FILE] [--save-weights FILE] [--plot FIGURE]
               [--quiet]
    rnnsim serve [SCENARIO] [--host 127.0.0.1] [--port 8000]     (rnnsim/tui/serve.py; the `web` extra)
    rnnsim validate FILE...
    rnnsim sweep SWEEP [--out results.csv|.parquet] [--workers N] [--scheduler ADDRESS|local] [--plot F.svg]
    rnnsim list
    rnnsim schema

Exit status: 0 done; 2 bad usage or bad scenario (one line on stderr); 1 anything else (one line; set
RNNSIM_DEBUG=1 for the traceback); 130 interrupted with Ctrl-C; 141 output pipe closed early.

Only ``run``, ``sweep`` and the TUI import the simulation (and so Numba); ``validate``, ``list`` and ``schema`` do not.
Shell completion: rnnsim/completion.py (``_RNNSIM_COMPLETE=bash_source rnnsim``).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Sequence

import click

from rnnsim import __version__, safe_text, terminal
from rnnsim.completion import complete_scenario
from rnnsim.export import ExportError
from rnnsim.results import collect as _collect
from rnnsim.results import print_summary, run_passes
from rnnsim.scenario import Scenario, ScenarioError, builtin_scenarios, load_scenario, parse_override

DEFAULT_SCENARIO = "vanishing"
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 0, 1, 2, 130, 141


def _debug() -> bool:
    return os.environ.get("RNNSIM_DEBUG", "").strip() not in ("", "0", "false", "no")


class BadInput(click.ClickException):
    """A bad scenario, override or output path: one line on stderr, exit 2."""

    exit_code = EXIT_USAGE

    def show(self, file: Any = None) -> None:
        click.echo(f"rnnsim: {safe_text.one_line(self.message)}", err=True)


class Failure(click.ClickException):
    """Something went wrong that is not the user's input: one line on stderr, exit 1."""

    exit_code = EXIT_ERROR

    def show(self, file: Any = None) -> None:
        click.echo(f"rnnsim: {safe_text.one_line(self.message)}", err=True)


class ScenarioGroup(click.Group):
    """A group whose first word may be a scenario instead of a subcommand.

    ``rnnsim``, ``rnnsim vanishing``, ``rnnsim my.toml --set model.cell=lstm`` all go to the hidden ``tui``
    command; ``rnnsim run ...``, ``rnnsim list`` etc. go to their subcommands. A scenario file named like a
    subcommand can be given as ``./run.toml``.
    """

    _GROUP_OPTIONS = ("--help", "-h", "--version")

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        args = list(args)
        if not args and ctx.resilient_parsing:
            pass  # shell completion of the first word: subcommands and scenarios, not the hidden tui command
        elif not args:
            args = ["tui"]
        elif args[0] in self._GROUP_OPTIONS:
            pass
        elif args[0].startswith("-") or args[0] not in self.commands:
            args = ["tui", *args]
        return super().parse_args(ctx, args)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[Any]:
        from rnnsim.completion import group_items

        return group_items(self, ctx, incomplete)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort, BrokenPipeError):
            raise
        except (ScenarioError, ExportError) as exc:
            raise BadInput(str(exc)) from None
        except KeyboardInterrupt:
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
        except Exception as exc:
            if _debug():
                raise
            if isinstance(exc, OSError) and _stdout_failed(exc):
                raise Failure(f"cannot write to standard output: {exc.strerror or _one_line(exc)}") from None
            raise Failure(
                f"internal error: {type(exc).__name__}: {_one_line(exc)} (rerun with RNNSIM_DEBUG=1 for the traceback)"
            ) from None


def _one_line(exc: BaseException | str) -> str:
    return safe_text.one_line(exc) or safe_text.one_line(repr(exc))


def _stdout_failed(exc: OSError) -> bool:
    """Whether ``exc`` came from writing standard output (click.echo or rich; e.g. >/dev/full); then stop
    writing to it (the interpreter would try again at exit)."""
    tb, frames = exc.__traceback__, []
    while tb is not None:
        frames.append(tb.tb_frame.f_code.co_filename.replace(os.sep, "/"))
        tb = tb.tb_next
    if exc.filename is not None or not any(f.endswith(("click/utils.py", "rich/console.py")) for f in frames):
        return False
    _silence_stdout()
    return True


def _load(scenario: str, overrides: Sequence[str]) -> Scenario:
    try:
        sc = load_scenario(scenario)
    except ScenarioError:
        from rnnsim.sweep.spec import is_sweep_file

        if is_sweep_file(scenario):
            raise ScenarioError(
                f"{scenario}: a sweep file, not a scenario; run it with `rnnsim sweep {scenario}`", source=scenario
            ) from None
        raise
    if overrides:
        changes = dict(parse_override(item) for item in overrides)
        sc = sc.with_changes(changes)
    return sc


_SET_HELP = "Override one scenario value, e.g. --set model.cell=lstm (repeatable; the value is read as TOML)."


@click.group(
    cls=ScenarioGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Run `rnnsim [SCENARIO]` to open the TUI (default scenario: vanishing). "
    "SCENARIO is a .toml file or a built-in name (see `rnnsim list`). "
    "Exit status: 0 done, 2 bad usage or scenario, 1 other errors, 130 interrupted.",
)
@click.version_option(__version__, "--version", prog_name="rnnsim", message="%(prog)s %(version)s")
def cli() -> None:
    """rnnsim: watch recurrent networks' gradients vanish and explode, step by step, in the terminal."""


@cli.command("tui", hidden=True)
@click.argument("scenario", required=False, default=DEFAULT_SCENARIO, shell_complete=complete_scenario)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=_SET_HELP)
def tui_command(scenario: str, overrides: tuple[str, ...]) -> None:
    """Open the TUI on SCENARIO (default: vanishing)."""
    sc = _load(scenario, overrides)  # validate before anything starts
    from rnnsim import applog

    applog.setup()  # RNNSIM_LOG=FILE: before Textual is imported (it reads TEXTUAL_LOG then)
    problem = terminal.tui_problem(safe_text.clip(scenario, 80))
    if problem:
        raise BadInput(problem)
    try:
        from rnnsim.tui.app import run_app
    except ImportError as exc:
        click.echo(
            f"rnnsim: the TUI is not available ({_one_line(exc)}); try `rnnsim run {scenario}`", err=True
        )
        raise click.exceptions.Exit(EXIT_ERROR) from None
    rv = run_app(sc)
    if isinstance(rv, int) and rv:
        raise click.exceptions.Exit(rv)


@cli.command("run")
@click.argument("scenario", shell_complete=complete_scenario)
@click.option(
    "--iterations",
    "-n",
    type=click.IntRange(0, 10_000_000),
    default=None,
    help="Training iterations (default: the scenario's training.iterations). 0: one forward and backward pass, no update.",
)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=_SET_HELP)
@click.option(
    "--out",
    "-o",
    type=click.Path(),  # a directory is refused by out_guard.prepare, in one line
    default=None,
    help="Write results to FILE: .json (everything), .csv (one row per iteration, and the gradient profile in "
    "FILE.profile.csv) or .npz (arrays).",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False),
    default=None,
    help="Draw the run to FILE.svg, .png or .pdf: gradient profile (first and last iteration), loss with the chance "
    "level, gradient norm with the clipping threshold and events. Needs the 'plot' extra.",
)
@click.option(
    "--save-weights",
    "save_weights",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the trained weights to FILE (.safetensors or .npz, PyTorch names with _l0; torch.nn.LSTM etc. load it).",
)
@click.option("--quiet", "-q", is_flag=True,
              help="No progress bar, no summary table, and no line saying how far an interrupted run got.")
def run_command(scenario: str, iterations: int | None, overrides: tuple[str, ...], out: str | None,
                save_weights: str | None, plot: str | None, quiet: bool) -> None:
    """Train SCENARIO without the TUI and print a summary (final loss, gradient decay, clipping, non-finite values)."""
    from rnnsim import out_guard, run_signals, weights

    sc = _load(scenario, overrides)
    if out is not None:
        out_guard.prepare(out)  # fail before a long run, not after: creates (and removes) the temporary file
    if save_weights is not None:
        weights.check_save_path(save_weights)
    if plot is not None:
        from rnnsim import plot as plotting

        try:
            plotting.check_path(plot), plotting.require()
        except plotting.MissingExtra as exc:  # exit 2, like the sweep's missing extras
            raise BadInput(str(exc)) from None
    n = sc.training.iterations if iterations is None else iterations

    import rnnsim

    sim = rnnsim.Simulation(sc)
    from rnnsim.plot import RunHistory

    history: list[Any] = RunHistory(sim)
    interrupted = False
    progress = None
    if not quiet and n > 0 and sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        progress = Progress(
            TextColumn("training"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
    single_loss: float | None = None
    # SIGTERM and SIGHUP stop the run like Ctrl-C, results kept; the handlers go back however the block ends
    with run_signals.StopSignals() as stop:
        try:
            if progress is not None:
                with progress:
                    task = progress.add_task("training", total=n, loss="-")

                    def callback(info: Any) -> None:
                        history.append(info)  # (the first also keeps that iteration's gradient profile)
                        progress.update(task, advance=1, loss=f"{info.loss:.4g}")

                    sim.train(n, callback)
            else:  # the same passes as every `rnnsim sweep` run
                _, single_loss = run_passes(sim, n, history.append)
        except KeyboardInterrupt:
            interrupted = True

        from rnnsim import datasets

        weights_error = None
        with stop.shield():  # a second signal cannot cut the writes short
            result = _collect(sim, sc, history, n, single_loss, interrupted)
            heldout = datasets.evaluate(sim) if not interrupted else None
            if heldout:
                result["summary"].update(heldout)
            if stop.name:
                result["summary"]["signal"] = stop.name
            if history.first is not None:  # ‖dL/dh_t‖ of the first iteration, for --plot and FILE.profile.csv
                result["arrays"]["gradient_profile_first"] = history.first
            if save_weights is not None:
                try:
                    sim.save_weights(save_weights)
                    result["summary"]["weights"] = save_weights
                except OSError as exc:
                    reason = exc.strerror or _one_line(exc)
                    weights_error = f"cannot write {safe_text.clip(save_weights, 120)}: {reason}"
            rescue = out_guard.write_or_rescue(out, result) if out is not None else None
    if rescue is not None and rescue.failed:
        raise Failure(rescue.note if weights_error is None else f"{weights_error}; {rescue.note}")
    if weights_error is not None:
        raise Failure(weights_error)
    if plot is not None:
        try:
            plotting.save(plot, plotting.figure_for_run(result))
        except OSError as exc:
            raise Failure(f"cannot write {safe_text.clip(plot, 120)}: {exc.strerror or _one_line(exc)}") from None
        result["summary"]["plot"] = plot
    if interrupted:
        if not quiet:  # one line on how far it got (the summary table is for finished runs)
            by = f" by {stop.name}" if stop.name else ""
            kept = (f"the results so far are in {safe_text.clip(out, 120)}" if out is not None
                    else "nothing was written (no --out)")
            click.echo(f"rnnsim: interrupted{by} after {result['summary']['iterations_done']} of {n} iterations; "
                       f"{kept}", err=True)
        raise click.exceptions.Exit(stop.exit_code)
    if not quiet:
        print_summary(sc, result["summary"], out)


@cli.command("validate")
@click.argument("files", nargs=-1, required=True, shell_complete=complete_scenario)
def validate_command(files: tuple[str, ...]) -> None:
    """Check scenario or sweep FILES (paths or built-in names); print `ok  FILE` or every problem. Exit 2 if any is bad.

    A sweep file (one with a [sweep] table) is checked at every grid point."""
    from rnnsim.sweep.spec import is_sweep_file, load_sweep

    bad = 0
    for name in files:
        try:
            load_sweep(name) if is_sweep_file(name) else load_scenario(name)
        except ScenarioError as exc:
            bad += 1
            for problem in exc.problems:
                click.echo(problem, err=True)
        else:
            click.echo(f"ok  {safe_text.clip(name, 200)}")
    if bad:
        raise click.exceptions.Exit(EXIT_USAGE)


@cli.command("list")
def list_command() -> None:
    """List the built-in scenarios in course order (problem 1 to 6, each followed by its fixes), then the sweeps."""
    from rnnsim.lessons import course

    rows = []
    for entry in course(builtin_scenarios()):
        try:
            description = load_scenario(entry.name).scenario.description
        except ScenarioError as exc:
            description = f"(invalid: {exc})"
        rows.append((entry.name, entry.label, " ".join(description.split())))
    from rnnsim.sweep.spec import builtin_sweeps, load_sweep

    for name in builtin_sweeps():
        try:
            description = load_sweep(name).description
        except ScenarioError as exc:
            description = f"(invalid: {exc})"
        rows.append((name, "sweep", f"rnnsim sweep {name}: " + " ".join(description.split())))
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table("name", "problem", "description")
        for name, label, description in rows:
            table.add_row(name, label, description)
        Console().print(table)
    else:
        width = max((len(n) for n, _, _ in rows), default=0)
        lw = max((len(x) for _, x, _ in rows), default=0)
        for name, label, description in rows:
            click.echo(f"{name.ljust(width)}  {label.ljust(lw)}  {description}".rstrip())


@cli.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of scenario files (for editors)."""
    from rnnsim.scenario import json_schema

    click.echo(json.dumps(json_schema(), indent=2, ensure_ascii=False))


from rnnsim.sweep.command import sweep_command  # noqa: E402  (imports neither numba nor the simulation)

cli.add_command(sweep_command)

from rnnsim.tui import serve as _serve  # noqa: E402  (its own module; imports textual_serve only when it runs)

_serve.register(cli, _load, BadInput, Failure)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: runs the CLI and exits with its status."""
    try:
        rv = cli.main(args=list(argv) if argv is not None else None, prog_name="rnnsim", standalone_mode=False)
    except click.exceptions.UsageError as exc:  # one line, not click's usage block
        where = exc.ctx.command_path if exc.ctx is not None else "rnnsim"
        click.echo(f"rnnsim: {safe_text.one_line(exc.format_message())} (see {where} --help)", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:  # `rnnsim list | head -1`: stop quietly, like a process killed by SIGPIPE
        _silence_stdout()
        sys.exit(EXIT_BROKEN_PIPE)
    except Exception as exc:  # outside any command (argument parsing, imports, click's --help/--version text)
        if terminal.stdout_error(exc):  # `rnnsim --version >/dev/full`
            _silence_stdout()
            click.echo(terminal.stdout_error(exc), err=True)
            sys.exit(EXIT_ERROR)
        if _debug():
            raise
        click.echo(
            f"rnnsim: internal error: {type(exc).__name__}: {_one_line(exc)} (rerun with RNNSIM_DEBUG=1 for the traceback)",
            err=True,
        )
        sys.exit(EXIT_ERROR)
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
        sys.exit(EXIT_BROKEN_PIPE)
    except OSError as exc:
        _silence_stdout()
        click.echo(f"rnnsim: cannot write to standard output: {exc.strerror or _one_line(exc)}", err=True)
        sys.exit(EXIT_ERROR)
    sys.exit(rv if isinstance(rv, int) else EXIT_OK)


def console_main() -> None:
    """The `rnnsim` command and `python -m rnnsim`: `main`, then, once numba is loaded, an exit that skips the
    interpreter's teardown.

    Unloading numba and LLVM at exit took ~0.45 s (a third of `rnnsim run vanishing`). Everything a command writes
    is flushed or closed before it returns (exports are written atomically by then), so after flushing stdout and
    stderr the process ends with os._exit and the same status. RNNSIM_DEBUG=1 keeps the normal exit (profilers and
    coverage write their data at exit). `main` itself raises SystemExit, so calling it in-process stays safe.
    """
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    else:
        code = EXIT_OK
    if "numba" not in sys.modules or _debug():
        sys.exit(code)
    if code is None:
        code = EXIT_OK
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = EXIT_ERROR
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
