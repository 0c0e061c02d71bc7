"""End to end: the installed `rnnsim` in a real terminal (tmux), keys in, screen text out."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TMUX = shutil.which("tmux")
RNNSIM = shutil.which("rnnsim") or (
    str(Path(sys.executable).with_name("rnnsim")) if Path(sys.executable).with_name("rnnsim").exists() else None
)

SMALL = """
[scenario]
name = "e2e small"
description = "tiny tanh RNN"
seed = 0
[model]
cell = "rnn"
hidden_size = 8
init = "orthogonal"
recurrent_scale = 0.9
[task]
kind = "random"
length = 20
batch_size = 4
"""


@pytest.fixture
def tmux_session(tmp_path):
    if TMUX is None:
        pytest.skip("tmux is not installed")
    if RNNSIM is None:
        pytest.skip("the rnnsim console script is not installed")
    name = f"rnnsim-e2e-{uuid.uuid4().hex[:8]}"
    yield name
    subprocess.run([TMUX, "kill-session", "-t", name], capture_output=True)


def _screen(name: str) -> str:
    return subprocess.run(
        [TMUX, "capture-pane", "-p", "-t", name], capture_output=True, text=True, check=False
    ).stdout


def _wait_for(name: str, text: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _screen(name)
        if text in screen:
            return screen
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not on screen after {timeout} s:\n{screen}")


def _keys(name: str, *keys: str) -> None:
    subprocess.run([TMUX, "send-keys", "-t", name, *keys], check=True)


def test_rnnsim_in_tmux(tmux_session, tmp_path):
    (tmp_path / "small.toml").write_text(SMALL)
    done = tmp_path / "exit-code"
    env_cmd = "env -u COLORTERM TERM=xterm-256color"
    cmd = f"cd {tmp_path} && {env_cmd} {RNNSIM} small.toml; echo $? > {done}; sleep 30"
    subprocess.run(
        [TMUX, "new-session", "-d", "-s", tmux_session, "-x", "80", "-y", "24", cmd],
        check=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    screen = _wait_for(tmux_session, "READY")
    assert "e2e small" in screen and "t 0/20" in screen and "rnn tanh" in screen
    for _ in range(5):
        _keys(tmux_session, "n")
    screen = _wait_for(tmux_session, "t 5/20")
    assert "FORWARD" in screen and "h_t" in screen
    _keys(tmux_session, "m")  # mid-pass: pending until the next iteration
    _wait_for(tmux_session, "pending")
    for _ in range(15 + 20 + 1):
        _keys(tmux_session, "Right")
    screen = _wait_for(tmux_session, "applied: lstm")  # at the iteration boundary; same seed and data
    assert "· lstm" in screen.splitlines()[-3] and "forget" in screen  # the status line names the cell
    _keys(tmux_session, "c")
    _wait_for(tmux_session, "clip norm")
    _keys(tmux_session, "2")
    _wait_for(tmux_session, "loss per iteration")
    _keys(tmux_session, "?")
    _wait_for(tmux_session, "every key")
    _keys(tmux_session, "Escape")
    deadline = time.monotonic() + 10
    while "every key" in _screen(tmux_session) and time.monotonic() < deadline:
        time.sleep(0.1)  # a lone Escape needs a moment, or the next key reads as alt+key
    assert "every key" not in _screen(tmux_session)
    _keys(tmux_session, "q")
    deadline = time.monotonic() + 10
    while not done.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert done.exists(), "rnnsim did not exit after q:\n" + _screen(tmux_session)
    assert done.read_text().strip() == "0"


def test_bad_scenario_exits_2_before_drawing(tmp_path):
    if RNNSIM is None:
        pytest.skip("the rnnsim console script is not installed")
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\ncell = 'transformer'\n")
    proc = subprocess.run([RNNSIM, str(bad)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "model.cell" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_lesson_in_tmux(tmux_session, tmp_path):
    """A built-in lesson at 80x24 in 256 colours: the panel shows step 1, j moves on, 3 opens the spectrum view."""
    env_cmd = "env -u COLORTERM TERM=xterm-256color"
    cmd = f"cd {tmp_path} && {env_cmd} {RNNSIM} vanishing; sleep 30"
    subprocess.run([TMUX, "new-session", "-d", "-s", tmux_session, "-x", "80", "-y", "24", cmd], check=True)
    screen = _wait_for(tmux_session, "READY")
    assert "Lesson 1/4" in screen and "j: more" in screen
    _keys(tmux_session, "j")  # the rest of step 1 (3 lines per page at 80 columns)
    _wait_for(tmux_session, "j: next step")
    _keys(tmux_session, "j")
    screen = _wait_for(tmux_session, "Lesson 2/4")
    _keys(tmux_session, "k")
    _wait_for(tmux_session, "j: next step")
    _keys(tmux_session, "3")
    screen = _wait_for(tmux_session, "Eigenvalues of W_hh")
    assert "vanishing guaranteed" in screen
    assert any(0x2800 < ord(ch) <= 0x28FF for ch in screen)  # the braille canvas
    _keys(tmux_session, "L")
    deadline = time.monotonic() + 10
    while "Lesson" in _screen(tmux_session) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "Lesson" not in _screen(tmux_session)
    _keys(tmux_session, "q")
