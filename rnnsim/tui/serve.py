"""``rnnsim serve``: the TUI in a web browser, through textual-serve (the optional ``web`` extra).

Each visitor's browser tab gets its own ``rnnsim SCENARIO`` process (textual-serve starts one per websocket, with
Textual's web driver), so students do not share a simulation. Before the first visitor's process starts, one
warm-up process loads (or compiles) the numba kernels of the scenario, so 20 students opening the page at once do
not compile 20 times side by side (numba's cache writes can race, numba #4807) and the first pages open in about a
second.

The server binds 127.0.0.1 unless ``--host`` says otherwise; any other address prints one warning line on stderr.
The page's links are absolute (textual-serve's ``public_url``, default ``http://HOST:PORT``): behind an SSH
tunnel with a different local port, or a proxy, pass ``--public-url`` (textual-serve #42).

Nothing here imports Textual; textual_serve itself is imported only when the command runs.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import shlex
import socket
import sys
from typing import Any, Sequence

import click

from rnnsim.completion import complete_scenario

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
MISSING_EXTRA = "rnnsim serve needs the 'web' extra: pip install 'rnnsim[web]'"
WARM_TIMEOUT = 600  # seconds: a first compile of every kernel takes ~15-60 s on a busy 2-core machine


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_wildcard(host: str) -> bool:
    return host.strip("[]") in ("0.0.0.0", "::", "")


def default_public_url(host: str, port: int) -> str:
    """The address the page's links use: HOST:PORT, or this machine's name when HOST is 0.0.0.0 / ::."""
    shown = socket.gethostname() if is_wildcard(host) else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"  # an IPv6 literal
    return f"http://{shown}:{port}"


def visitor_command(scenario: str, overrides: Sequence[str]) -> str:
    """The shell command textual-serve runs for each visitor: this Python, ``-m rnnsim SCENARIO --set ...``."""
    argv = [sys.executable, "-m", "rnnsim", scenario]
    for item in overrides:
        argv += ["--set", item]
    return shlex.join(argv)


def warm_command(scenario: str, overrides: Sequence[str]) -> list[str]:
    argv = [sys.executable, "-c", "import sys; from rnnsim.tui.serve import _warm_main; _warm_main(sys.argv[1:])", scenario]
    for item in overrides:
        argv += ["--set", item]
    return argv


def warm_kernels(sc: Any) -> None:
    """Load (or compile) every kernel the TUI's first minute needs for scenario ``sc``: whole passes, the step API,
    the update, the Jacobian norms and the spectrum."""
    import numpy as np

    import rnnsim
    from rnnsim import diagnostics

    sim = rnnsim.Simulation(sc)
    with np.errstate(all="ignore"):
        sim.forward()
        sim.backward()
        sim.apply_update()
        while sim.step_forward():
            pass
        while sim.step_backward():
            pass
        for name in ("gradient_profile", "jacobian_norms", "spectrum", "gate_means"):
            fn = getattr(diagnostics, name, None)
            if fn is not None:
                try:
                    fn(sim)
                except Exception:  # a diagnostic this cell does not have (e.g. gates of a plain RNN)
                    pass


def _warm_main(argv: list[str]) -> None:
    """Entry point of the warm-up process: ``SCENARIO [--set KEY=VALUE ...]``."""
    from rnnsim.scenario import load_scenario, parse_override

    scenario, rest = argv[0], argv[1:]
    sc = load_scenario(scenario)
    changes = dict(parse_override(rest[i + 1]) for i in range(0, len(rest), 2) if rest[i] == "--set")
    if changes:
        sc = sc.with_changes(changes)
    warm_kernels(sc)
    sys.stdout.flush()
    os._exit(0)  # skip numba's slow interpreter teardown


def make_server(command: str, host: str, port: int, public_url: str, warm: list[str] | None, title: str) -> Any:
    """A textual_serve Server that waits for the warm-up process before it starts the first visitor's process."""
    import asyncio

    from textual_serve.server import Server

    class RnnsimServer(Server):
        def __init__(self) -> None:
            super().__init__(command, host=host, port=port, title=f"rnnsim: {title}", public_url=public_url)
            self._warm_task: Any = None
            self.warm_status: str = "not started" if warm else "skipped"

        async def on_startup(self, app: Any) -> None:
            where = f"http://{host}:{port}" if ":" not in host else f"http://[{host}]:{port}"
            say = functools.partial(self.console.print, highlight=False, soft_wrap=True)
            say(f"rnnsim serve: {title} at {where}")
            if self.public_url.rstrip("/") != where:
                say(f"the page's links use {self.public_url} (--public-url)")
            say("each visitor gets their own rnnsim process; press Ctrl+C to stop")
            if warm:
                self._warm_task = asyncio.ensure_future(self._warm())

        async def _warm(self) -> None:
            self.warm_status = "running"
            self.console.print("warming the numba cache (a first run compiles the kernels) ...", highlight=False,
                               soft_wrap=True)
            try:
                proc = await asyncio.create_subprocess_exec(
                    *warm, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.PIPE,
                )
                _, err = await asyncio.wait_for(proc.communicate(), WARM_TIMEOUT)
            except (OSError, asyncio.TimeoutError) as exc:
                self.warm_status = f"failed: {type(exc).__name__}"
            else:
                if proc.returncode == 0:
                    self.warm_status = "done"
                else:
                    last = (err or b"").decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
                    self.warm_status = f"failed (exit {proc.returncode}) {last[0]}".strip()
            self.console.print(f"numba cache warm-up {self.warm_status}", highlight=False, soft_wrap=True)

        async def handle_websocket(self, request: Any) -> Any:
            if self._warm_task is not None and not self._warm_task.done():
                await asyncio.shield(self._warm_task)  # every visitor waits for the one warm-up, not their own
            return await super().handle_websocket(request)

    return RnnsimServer()


def serve(scenario: str, overrides: Sequence[str], host: str, port: int, public_url: str | None,
          warm: bool = True, title: str | None = None) -> None:
    """Run the server until Ctrl+C / SIGTERM. Raises OSError when the address cannot be bound."""
    server = make_server(
        visitor_command(scenario, overrides), host, port, public_url or default_public_url(host, port),
        warm_command(scenario, overrides) if warm else None, title or scenario,
    )
    server.serve()


def register(cli: click.Group, load: Any, bad_input: type[Exception], failure: type[Exception]) -> None:
    """Add ``rnnsim serve`` to the CLI group (``load(scenario, overrides)`` validates the scenario)."""

    @cli.command("serve")
    @click.argument("scenario", required=False, default="vanishing", shell_complete=complete_scenario)
    @click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                  help="Override one scenario value for every visitor, e.g. --set model.cell=lstm (repeatable).")
    @click.option("--host", default=DEFAULT_HOST, show_default=True,
                  help="Address to listen on. Anything but loopback lets every machine that reaches it open a session.")
    @click.option("--port", type=click.IntRange(1, 65535), default=DEFAULT_PORT, show_default=True,
                  help="TCP port to listen on.")
    @click.option("--public-url", default=None, metavar="URL",
                  help="Base URL the browser uses for the page's links (default http://HOST:PORT); set it behind "
                       "a proxy or an SSH tunnel with another local port, e.g. http://localhost:9000.")
    @click.option("--no-warm", is_flag=True, help="Do not warm the numba cache before the first visitor.")
    def serve_command(scenario: str, overrides: tuple[str, ...], host: str, port: int, public_url: str | None,
                      no_warm: bool) -> None:
        """Serve the TUI on SCENARIO (default: vanishing) to web browsers; each visitor gets their own process."""
        sc = load(scenario, overrides)  # a bad scenario fails here, once, not in every visitor's tab
        try:
            import textual_serve.server  # noqa: F401
        except ImportError:  # exit 2, like the other missing extras
            raise bad_input(MISSING_EXTRA) from None
        if not host.strip():
            raise bad_input("--host: empty; give an address such as 127.0.0.1 (default) or 0.0.0.0")
        if not is_loopback(host):
            click.echo(
                f"rnnsim: warning: serving on {host}:{port}, not loopback: anyone who can reach this address gets "
                "an rnnsim session on this machine", err=True,
            )
        try:
            serve(scenario, overrides, host, port, public_url, warm=not no_warm, title=sc.scenario.name)
        except OSError as exc:
            raise failure(f"cannot listen on {host}:{port}: {exc.strerror or exc} (try another --port)") from None
