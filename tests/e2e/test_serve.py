"""`rnnsim serve` (the `web` extra): the page on 127.0.0.1, loopback only, and the app in a real headless Chromium.

The browser test drives Debian's `chromium` (or the one named by RNNSIM_CHROMIUM) with playwright's
`executable_path`; playwright's own browser download is not used. Without playwright or a browser it skips.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytest.importorskip("textual_serve", reason="the 'web' extra (textual-serve) is not installed")

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SMALL = """
[scenario]
name = "served small"
description = "tiny tanh RNN for the browser test"
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening_addresses(port: int) -> list[str]:
    """Local addresses of the LISTEN sockets on ``port``, from the kernel's socket table (/proc/net/tcp, tcp6)."""
    found = []
    for name, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state = fields[1], fields[3]
            addr_hex, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:  # 0A = TCP_LISTEN
                continue
            raw = bytes.fromhex(addr_hex)
            if width == 8:
                found.append(socket.inet_ntop(socket.AF_INET, raw[::-1]))
            else:  # four little-endian 32-bit words
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                found.append(socket.inet_ntop(socket.AF_INET6, words))
    return found


def wait_for_page(url: str, proc: subprocess.Popen, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"rnnsim serve exited with {proc.returncode}: {proc.stderr.read()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read().decode("utf-8")
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"no page at {url} after {timeout} s")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve")
    scenario = folder / "small.toml"
    scenario.write_text(SMALL)
    port = free_port()
    out = open(folder / "serve.out", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnnsim", "serve", str(scenario), "--port", str(port)],
        cwd=folder, stdout=out, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        page = wait_for_page(f"http://127.0.0.1:{port}/", proc)
        yield {"port": port, "proc": proc, "page": page, "folder": folder, "out": folder / "serve.out",
               "scenario": str(scenario)}
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        out.close()


def test_serve_answers_its_page_on_loopback_only(server):
    page = server["page"]
    port = server["port"]
    assert "textual-terminal" in page and f"ws://127.0.0.1:{port}/ws" in page
    assert "served small" in page  # the title names the scenario
    assert listening_addresses(port) == ["127.0.0.1"]  # not 0.0.0.0, not ::
    assert server["proc"].poll() is None


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace").split("\0")
    except OSError:
        return []


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_each_visitor_gets_their_own_process_after_one_warm_up(server):
    aiohttp = pytest.importorskip("aiohttp")
    import asyncio

    url = f"ws://127.0.0.1:{server['port']}/ws?width=100&height=30"

    async def visit(session):
        ws = await session.ws_connect(url)
        seen = ""
        deadline = time.monotonic() + 180
        while "READY" not in seen and time.monotonic() < deadline:
            msg = await ws.receive(timeout=180)
            if msg.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                data = msg.data
                seen += data.decode("utf-8", "replace") if isinstance(data, bytes) else data
            elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                break
        return ws, seen

    async def main():
        async with aiohttp.ClientSession() as session:
            (ws1, seen1), (ws2, seen2) = await asyncio.gather(visit(session), visit(session))
            assert "READY" in seen1 and "READY" in seen2
            log = server["out"].read_text()
            assert "numba cache warm-up done" in log, log  # finished (not failed) before any visitor started
            apps = [pid for pid in _descendants(server["proc"].pid)
                    if "rnnsim" in _cmdline(pid) and server["scenario"] in _cmdline(pid)
                    and "serve" not in _cmdline(pid) and "-c" not in _cmdline(pid)]
            await ws1.close()
            await ws2.close()
            return apps

    apps = asyncio.run(main())
    assert len(apps) == 2, apps  # two visitors, two rnnsim processes


def test_serve_on_another_host_warns_in_one_line(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnnsim", "serve", "vanishing", "--host", "0.0.0.0", "--port", str(port), "--no-warm"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_for_page(f"http://127.0.0.1:{port}/", proc)
        assert listening_addresses(port) == ["0.0.0.0"]
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 1, err
    assert "0.0.0.0:" in warnings[0] and "anyone who can reach" in warnings[0]


def test_serve_refuses_a_bad_scenario_and_a_busy_port(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\nhiden_size = 3\n")
    proc = subprocess.run([sys.executable, "-m", "rnnsim", "serve", str(bad)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "hiden_size" in proc.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "rnnsim", "serve", "--port", str(port), "--no-warm"],
                              capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr and "Traceback" not in proc.stderr


def _chromium() -> str | None:
    for candidate in (os.environ.get("RNNSIM_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and (path := shutil.which(candidate)):
            return path
    return None


def test_browser_shows_the_app_takes_keys_and_screenshots(server):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no Chromium installed (apt-get install chromium, or set RNNSIM_CHROMIUM)")
    port = server["port"]
    received: list[str] = []

    def on_websocket(ws):
        ws.on("framereceived", lambda payload: received.append(
            payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload))

    def wait_text(page, text: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in "".join(received):
                return
            page.wait_for_timeout(200)
        raise AssertionError(f"{text!r} never reached the browser; last output: {''.join(received)[-500:]!r}")

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": 1200, "height": 760})
            page = context.new_page()
            page.on("websocket", on_websocket)
            page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
            wait_text(page, "READY")  # the app's status line, drawn in the page's terminal
            assert "served small" in "".join(received)
            page.click("#terminal")
            received.clear()
            for _ in range(3):
                page.keyboard.press("n")  # one forward step each
            wait_text(page, "t 3/20", 60)
            png = page.screenshot()
            assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000  # a page with the app on it, not blank
            # ctrl+s: the browser gets the SVG (Textual's deliver_screenshot opens it in a new tab)
            with context.expect_page(timeout=60_000) as new_tab:
                page.keyboard.press("Control+s")
            shot = new_tab.value
            shot.wait_for_load_state()
            assert "/download/" in shot.url
            svg = shot.content()
            # w: the scenario as TOML, delivered to the browser as a download (deliver_text), not saved on the server
            page.bring_to_front()
            page.click("#terminal")
            with page.expect_download(timeout=60_000) as download:
                page.keyboard.press("w")
            toml_text = Path(download.value.path()).read_text(encoding="utf-8")
            toml_name = download.value.suggested_filename
        finally:
            browser.close()
    start = svg.find("<svg")
    root = ET.fromstring(svg[start:svg.rfind("</svg>") + 6])
    text = "".join(root.itertext()).replace("\xa0", " ")
    assert "‖dL/dh_t‖" in text and "t 3/20" in text  # the Dynamics view after three steps
    assert not list(Path(server["folder"]).glob("*.svg"))  # delivered to the browser, not saved on the server
    assert toml_name.startswith("rnnsim-") and toml_name.endswith(".toml")
    assert tomllib.loads(toml_text)["task"]["length"] == 20
    assert not list(Path(server["folder"]).glob("rnnsim-*.toml"))
