"""Fixtures for the TUI tests: small deterministic scenarios and helpers that wait for the worker."""

from __future__ import annotations

import asyncio
import inspect

import pytest

import rnnsim

SMALL = {
    "scenario.name": "small tanh RNN",
    "scenario.description": "T=20, H=8 for fast tests.",
    "scenario.seed": 0,
    "model.cell": "rnn",
    "model.hidden_size": 8,
    "model.init": "orthogonal",
    "model.recurrent_scale": 0.9,
    "task.kind": "random",
    "task.length": 20,
    "task.batch_size": 4,
    "training.clip": "none",
    "training.clip_threshold": 1.0,
}


@pytest.fixture
def small():
    return rnnsim.load_scenario("vanishing").with_changes(SMALL)


@pytest.fixture(autouse=True)
def _no_color_unset(monkeypatch):
    # the app reads NO_COLOR when it is constructed; tests opt in explicitly
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("COLORTERM", raising=False)


async def settle(app, pilot, timeout: float = 60.0):
    """Wait (deterministically) until the worker ran every command and the UI shows its last frame."""
    await pilot.pause()
    frame = app.runner.wait_idle(timeout)
    app.poll_frame()
    await pilot.pause()
    return frame


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """Run `async def` tests with asyncio.run (no pytest-asyncio dependency needed)."""
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        names = pyfuncitem._fixtureinfo.argnames
        kwargs = {n: pyfuncitem.funcargs[n] for n in names}
        asyncio.run(pyfuncitem.obj(**kwargs))
        return True
    return None
