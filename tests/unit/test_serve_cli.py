"""`rnnsim serve` without a server: the missing extra, addresses, the visitor's command; and RNNSIM_LOG."""

from __future__ import annotations

import logging
import shlex
import subprocess
import sys

import pytest
from click.testing import CliRunner

from rnnsim import applog
from rnnsim.tui import serve
from rnnsim.cli import cli
from rnnsim.export import ExportError


def test_missing_web_extra_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "textual_serve", None)
    monkeypatch.setitem(sys.modules, "textual_serve.server", None)
    res = CliRunner().invoke(cli, ["serve", "vanishing"])
    assert res.exit_code == 2
    assert res.output == "rnnsim: rnnsim serve needs the 'web' extra: pip install 'rnnsim[web]'\n"


def test_bad_scenario_is_refused_before_the_extra_is_needed(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "textual_serve.server", None)
    res = CliRunner().invoke(cli, ["serve", str(tmp_path / "missing.toml")])
    assert res.exit_code == 2 and "missing.toml" in res.output and res.output.count("\n") == 1


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True),
                                            ("localhost", True), ("0.0.0.0", False), ("::", False),
                                            ("192.168.1.5", False), ("lab.example.org", False)])
def test_loopback_addresses(host, loopback):
    assert serve.is_loopback(host) is loopback


def test_public_url_for_a_wildcard_host_is_this_machines_name(monkeypatch):
    monkeypatch.setattr(serve.socket, "gethostname", lambda: "labpc")
    assert serve.default_public_url("0.0.0.0", 8000) == "http://labpc:8000"
    assert serve.default_public_url("127.0.0.1", 9000) == "http://127.0.0.1:9000"
    assert serve.default_public_url("::1", 8000) == "http://[::1]:8000"


def test_visitor_command_runs_this_python_on_the_scenario_quoted(tmp_path):
    path = tmp_path / "my lab; rm -rf x.toml"
    cmd = serve.visitor_command(str(path), ["model.cell=lstm", "scenario.name='a b'"])
    argv = shlex.split(cmd)
    assert argv == [sys.executable, "-m", "rnnsim", str(path), "--set", "model.cell=lstm",
                    "--set", "scenario.name='a b'"]


def test_rnnsim_log_routes_to_textual_and_writes_versions(tmp_path):
    env = {"RNNSIM_LOG": str(tmp_path / "bug.log")}
    try:
        assert applog.setup(env) == str(tmp_path / "bug.log")
        assert env["TEXTUAL_LOG"] == str(tmp_path / "bug.log")
        for h in applog.log.handlers:
            h.flush()
        text = (tmp_path / "bug.log").read_text()
        assert "rnnsim 0." in text and "numpy " in text and "textual" in text
    finally:
        for h in list(applog.log.handlers):
            if isinstance(h, logging.FileHandler):
                applog.log.removeHandler(h)
                h.close()
    assert applog.setup({"TEXTUAL_LOG": "t.log"}) == "t.log"
    assert applog.setup({}) is None
    with pytest.raises(ExportError, match="does not exist"):
        applog.setup({"RNNSIM_LOG": str(tmp_path / "no" / "x.log")})
    with pytest.raises(ExportError, match="is a directory"):
        applog.setup({"RNNSIM_LOG": str(tmp_path)})


def test_bad_rnnsim_log_stops_the_tui_with_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "rnnsim", "vanishing"], capture_output=True, text=True, timeout=60,
                          env={**__import__("os").environ, "RNNSIM_LOG": str(tmp_path / "no" / "x.log")})
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("rnnsim: RNNSIM_LOG=") and proc.stderr.count("\n") == 1
