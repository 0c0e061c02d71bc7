"""A signal sent to the TUI process (kill, a closed terminal, a session manager) ends it cleanly: the terminal is
restored (the alternate screen left, the cursor shown) and the exit code is 128 + the signal (issue 15 item 8).
A real process in a pseudo-terminal, not Pilot: Pilot runs headless and has no signals of its own."""

from __future__ import annotations

import os
import pty
import select
import signal
import sys
import time

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SMALL = """
[scenario]
name = "signals"
[model]
cell = "rnn"
hidden_size = 8
[task]
kind = "random"
length = 20
batch_size = 4
"""


def _read(fd: int, buf: bytearray, until: bytes | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                data = os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                return False
            if not data:
                return False
            buf += data
            if until is not None and until in buf:
                return True
    return False


@pytest.mark.parametrize("name, code", [("SIGINT", 130), ("SIGTERM", 143), ("SIGHUP", 129)])
def test_signal_to_the_tui_restores_the_terminal_and_exits_128_plus_n(tmp_path, name, code):
    (tmp_path / "small.toml").write_text(SMALL)
    pid, fd = pty.fork()
    if pid == 0:  # the child: rnnsim in a terminal of 80x24
        os.chdir(tmp_path)
        os.environ.update(TERM="xterm-256color", COLUMNS="80", LINES="24")
        os.environ.pop("NO_COLOR", None)
        os.execv(sys.executable, [sys.executable, "-m", "rnnsim", "small.toml"])
    buf = bytearray()
    try:
        assert _read(fd, buf, b"READY", 120), f"the TUI did not start: {bytes(buf[-300:])!r}"
        time.sleep(0.3)
        mark = len(buf)
        os.kill(pid, getattr(signal, name))
        _read(fd, buf, None, 20)  # until the child closes the terminal
        _, status = os.waitpid(pid, 0)
        pid = 0
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == code  # (before: SIGINT exited 0, SIGTERM/SIGHUP killed it)
    after = bytes(buf[mark:])
    assert b"\x1b[?1049l" in after and b"\x1b[?25h" in after  # alternate screen left, cursor shown
    assert b"Traceback" not in buf
