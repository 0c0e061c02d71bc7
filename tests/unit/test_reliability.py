"""Issue 15: hostile files, safe echoes, --out safety, signals, stdout failures (no Textual, no Numba needed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

import rnnsim
from rnnsim import export, out_guard, run_signals, safe_text, tempfiles, toml_guard
from rnnsim.cli import cli
from rnnsim.scenario import Scenario, ScenarioError, load_scenario, parse_override

ROOT = Path(__file__).resolve().parents[2]

# the hostile shapes of issue 15, item 2 (each under the 1 MiB file cap)
HOSTILE = {
    "header_1mib": "[" + ".".join(["a"] * 300_000) + "]\n",
    "dotted_100kb": ".".join(["a"] * 50_000) + " = 1\n",
    "dotted_many_parts_short_line": ".".join(["a"] * 5_000) + " = 1\n",
    "header_many_parts_short_line": "[" + ".".join(["a"] * 5_000) + "]\n",
    "nested_brackets": "x = " + "[" * 500 + "]" * 500 + "\n",
    "nested_braces": "x = " + "{b = " * 500 + "1" + "}" * 500 + "\n",
    "key_500k": "k" * 500_000 + " = 1\n",
    "quoted_key_19k": '"' + "k" * 19_000 + '" = 1\n',
}
LIMIT_WORDS = {
    "header_1mib": "at most 20000",
    "dotted_100kb": "at most 20000",
    "dotted_many_parts_short_line": f"at most {toml_guard.MAX_KEY_PARTS}",
    "header_many_parts_short_line": f"at most {toml_guard.MAX_KEY_PARTS}",
    "nested_brackets": f"at most {toml_guard.MAX_NESTING}",
    "nested_braces": f"at most {toml_guard.MAX_NESTING}",
    "key_500k": "at most 20000",
    "quoted_key_19k": f"at most {toml_guard.MAX_KEY_CHARS}",
}


@pytest.mark.parametrize("shape", sorted(HOSTILE))
def test_hostile_shape_is_refused_before_tomllib_parses(shape, tmp_path, monkeypatch):
    text = HOSTILE[shape]
    assert len(text.encode()) <= 1024 * 1024
    problem = toml_guard.precheck(text)
    assert problem and LIMIT_WORDS[shape] in problem
    path = tmp_path / f"{shape}.toml"
    path.write_text(text)

    def never(*a, **k):
        raise AssertionError("tomllib.loads must not see a refused file")

    monkeypatch.setattr(toml_guard.tomllib, "loads", never)
    with pytest.raises(ScenarioError) as info:
        load_scenario(str(path))
    message = str(info.value)
    assert message.startswith(str(path)) and LIMIT_WORDS[shape] in message and "refused before parsing" in message
    assert len(message) <= safe_text.MAX_LINE


@pytest.mark.parametrize("shape", ["header_1mib", "nested_brackets", "nested_braces", "key_500k"])
def test_hostile_shape_through_the_cli_in_a_subprocess(shape, tmp_path):
    path = tmp_path / f"{shape}.toml"
    path.write_text(HOSTILE[shape])
    env = {k: v for k, v in os.environ.items() if k != "RNNSIM_DEBUG"}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, "-m", "rnnsim", "validate", str(path)], capture_output=True,
                          text=True, env=env, timeout=60)  # the old code ran > 400 s or raised RecursionError
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[:500]
    assert str(path) in lines[0] and "RecursionError" not in lines[0] and "internal" not in lines[0]


def test_recursion_error_is_still_one_line_if_the_precheck_were_bypassed(monkeypatch):
    monkeypatch.setattr(toml_guard, "precheck", lambda text: None)
    with pytest.raises(toml_guard.TomlLimitError, match="nested too deeply"):
        toml_guard.loads("x = " + "[" * 5000 + "]" * 5000)


def test_precheck_accepts_real_files_and_ignores_brackets_in_strings():
    for path in sorted((ROOT / "scenarios").glob("*.toml")):
        assert toml_guard.precheck(path.read_text()) is None, path
    text = ('a = "' + "[" * 100 + '.a' * 40 + '"\nb = """\n' + "{" * 100 + '\n"""\n' + "c = '" + "[" * 50 + "'\n"
            '[x.y]\n"q.w.e" = [[1, 2], [3, 4]]\nt = {a.b = 1, c = [1, {d = 2}]}  # [[[[ {{{{ a.a.a.a\n')
    assert toml_guard.precheck(text) is None
    assert toml_guard.loads(text)["x"]["y"]["t"] == {"a": {"b": 1}, "c": [1, {"d": 2}]}


def test_set_value_nested_too_deep_is_a_scenario_error():
    with pytest.raises(ScenarioError, match="at most 32"):
        parse_override("model.cell=" + "[" * 600)


# ---------------------------------------------------------------- safe echoes (item 3)


def test_safe_text_escapes_every_control_and_clips():
    hostile = "\x1b]0;pwned\x07\x1b[2J\x9b\u202e\u2028ok"
    out = safe_text.escape(hostile)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in out)
    assert "\\x1b]0;pwned\\x07" in out and "\\u202e" in out and out.endswith("ok")
    assert len(safe_text.clip("x" * 1000)) == safe_text.MAX_VALUE
    line = safe_text.one_line("head " + "k" * 500_000 + " tail\nnext")
    assert len(line) <= safe_text.MAX_LINE and line.startswith("head") and line.endswith("tail next")
    assert safe_text.clip("ab\x1b", 4) == "ab…"  # never half an escape
    assert safe_text.show(__import__("datetime").datetime(1979, 5, 27, 7, 32)) == "1979-05-27T07:32:00"


def test_escape_sequences_in_keys_never_reach_stderr_raw(tmp_path):
    path = tmp_path / "esc.toml"
    path.write_text('[model]\n"\\u001b]0;pwned\\u0007" = 1\n"\\u001b[2J" = 2\n["\\u001b[31mred"]\nx = 1\n')
    env = {k: v for k, v in os.environ.items() if k != "RNNSIM_DEBUG"}
    env["PYTHONPATH"] = str(ROOT)
    for cmd in (["validate", str(path)], ["run", str(path)]):
        proc = subprocess.run([sys.executable, "-m", "rnnsim", *cmd], capture_output=True, env=env, timeout=60)
        assert proc.returncode == 2
        assert b"\x1b" not in proc.stderr and b"\x07" not in proc.stderr
        assert b"\\x1b]0;pwned\\x07" in proc.stderr


def test_a_huge_key_gives_a_short_line():
    with pytest.raises(ScenarioError) as info:
        Scenario.from_dict({"model": {"k" * 500_000: 1}}, source="big.toml")
    assert len(str(info.value)) <= safe_text.MAX_LINE and str(info.value).startswith("big.toml: model.kkk")
    with pytest.raises(ScenarioError) as info:
        Scenario().with_changes({"k" * 500_000: 1})
    assert len(str(info.value)) <= safe_text.MAX_LINE


@pytest.mark.parametrize("field", ["scenario.name", "scenario.description", "lesson.steps"])
def test_control_characters_in_shown_text_are_refused(field):
    value = ["step \x1b[2J"] if field == "lesson.steps" else "x\x1b]0;pwned\x07"
    with pytest.raises(ScenarioError) as info:
        Scenario().with_changes({field: value})
    message = str(info.value)
    assert "control characters" in message and "\x1b" not in message and field in message
    ok = ["tab\there\nand a newline"] if field == "lesson.steps" else "tab\there\nnewline"
    Scenario().with_changes({field: ok})


def test_datetime_value_is_shown_as_toml_writes_it(tmp_path):
    path = tmp_path / "dt.toml"
    path.write_text("[scenario]\nname = 1979-05-27T07:32:00Z\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(str(path))
    assert "1979-05-27T07:32:00+00:00" in str(info.value) and "datetime.datetime" not in str(info.value)


def test_forget_bias_none_is_accepted_from_set():
    sc = load_scenario("vanishing").with_changes(dict([parse_override("model.cell=lstm"),
                                                       parse_override("model.forget_bias=3")]))
    assert sc.model.forget_bias == 3
    again = sc.with_changes(dict([parse_override("model.forget_bias=none")]))
    assert again.model.forget_bias is None
    with pytest.raises(ScenarioError):  # "none" only means "left out" for a field that may be left out
        sc.with_changes({"model.hidden_size": "none"})


@pytest.mark.parametrize("value", ["lots", "0", "-5"])
def test_bad_max_bytes_is_blamed_on_the_environment(value, monkeypatch):
    monkeypatch.setenv("RNNSIM_MAX_BYTES", value)
    with pytest.raises(ScenarioError) as info:
        load_scenario("vanishing")
    assert str(info.value).startswith("RNNSIM_MAX_BYTES") and "Value error" not in str(info.value)


# ---------------------------------------------------------------- --out (item 4)


def _invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_out_directory_is_one_line_exit_2(tmp_path):
    result = _invoke("run", "vanishing", "-n", "0", "--out", str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "is a directory" in result.stderr and "Usage" not in result.stderr


def test_unwritable_out_is_refused_before_the_run(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(rnnsim, "Simulation", lambda sc: calls.append(sc), raising=False)

    def no_temp(p):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfiles, "make_temp", no_temp)
    result = _invoke("run", "vanishing", "-n", "3", "--out", str(tmp_path / "r.json"))
    assert result.exit_code == 2 and "Permission denied" in result.stderr and "before the run" in result.stderr
    assert calls == []  # nothing ran


def test_prepare_creates_and_removes_the_temporary(tmp_path, monkeypatch):
    seen = []
    real = tempfiles.make_temp
    monkeypatch.setattr(tempfiles, "make_temp", lambda p: seen.append(real(p)) or seen[-1])
    out_guard.prepare(tmp_path / "r.json")
    assert len(seen) == 1 and not os.path.exists(seen[0][1]) and list(tmp_path.iterdir()) == []


def test_late_write_failure_rescues_the_results_beside(tmp_path, monkeypatch):
    target = tmp_path / "r.json"
    real = export.write_results

    def fail_target(path, result):
        if Path(path) == target:
            raise OSError(30, "Read-only file system")
        return real(path, result)

    monkeypatch.setattr(export, "write_results", fail_target)
    result = _invoke("run", "vanishing", "-n", "2", "-q", "--out", str(target))
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert "Read-only file system" in line and "the results are in" in line and "internal" not in line
    rescued = Path(line.rsplit("the results are in ", 1)[1])
    assert rescued.parent == tmp_path and json.loads(rescued.read_text())["summary"]["iterations_done"] == 2


def test_late_write_failure_everywhere_prints_json_on_stdout(tmp_path, monkeypatch):
    import io

    monkeypatch.setattr(export, "write_results", lambda path, result: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    buf = io.StringIO()
    rescue = out_guard.write_or_rescue(tmp_path / "r.json", {"summary": {"x": 1.5}, "history": []}, stdout=buf)
    assert rescue.failed and rescue.path is None and "standard output" in rescue.note
    assert json.loads(buf.getvalue())["summary"] == {"x": 1.5}


def test_stale_temporaries_of_dead_writers_are_cleaned(tmp_path):
    target = tmp_path / "r.json"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".r.json.{dead_pid}.abc123.tmp"
    live = tmp_path / f".r.json.{os.getpid()}.def456.tmp"
    other = tmp_path / f".other.json.{dead_pid}.x.tmp"
    for p in (stale, live, other):
        p.write_text("half")
    export.write_results(target, {"summary": {}, "history": []})
    assert not stale.exists() and live.exists() and other.exists() and target.exists()


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_stop_the_run_and_keep_the_results(signame, tmp_path):
    out = tmp_path / "r.json"
    env = {k: v for k, v in os.environ.items() if k != "RNNSIM_DEBUG"}
    env["PYTHONPATH"] = str(ROOT)
    code = (
        "import os, signal, sys, rnnsim.simulation as s\n"
        "real = s.Simulation.train\n"
        "def train(self, n, callback=None):\n"
        "    def cb(info):\n"
        "        callback(info)\n"
        f"        if info.iteration == 3: os.kill(os.getpid(), signal.{signame})\n"
        "    return real(self, n, cb)\n"
        "s.Simulation.train = train\n"
        "from rnnsim.cli import main\n"
        f"main(['run', 'vanishing', '-n', '100000', '--set', 'task.length=5', '--out', {str(out)!r}])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 128 + getattr(signal, signame), proc.stderr
    data = json.loads(out.read_text())
    assert data["summary"]["interrupted"] is True and data["summary"]["signal"] == signame
    done = data["summary"]["iterations_done"]
    assert 3 <= done < 100000
    assert proc.stderr.strip() == (f"rnnsim: interrupted by {signame} after {done} of 100000 iterations; "
                                   f"the results so far are in {out}")


def test_stop_signals_restores_handlers():
    before = signal.getsignal(signal.SIGTERM)
    with run_signals.StopSignals() as stop:
        assert signal.getsignal(signal.SIGTERM) == stop._handler
        with stop.shield():
            os.kill(os.getpid(), signal.SIGTERM)  # recorded, not raised
            time.sleep(0.01)
        assert stop.signum == signal.SIGTERM and stop.exit_code == 143
    assert signal.getsignal(signal.SIGTERM) == before


@pytest.mark.parametrize("failing", ["out_guard.write_or_rescue", "datasets.evaluate"])
def test_run_gives_the_signal_handlers_back_when_writing_the_results_raises(tmp_path, monkeypatch, failing):
    """`rnnsim run` in-process (a test, a notebook, a program embedding it): an unexpected error while the results
    are written must not leave StopSignals' handlers installed: they would go on catching SIGTERM and SIGHUP in that
    process, and in every process it forks later."""
    import importlib

    module, name = failing.split(".")

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(importlib.import_module(f"rnnsim.{module}"), name, boom)
    before = [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)]
    proc = CliRunner().invoke(cli, ["run", "vanishing", "-n", "1", "--set", "task.length=10", "--quiet",
                                    "--out", str(tmp_path / "r.json")])
    assert proc.exit_code == 1 and "internal error: RuntimeError: disk on fire" in proc.output
    assert [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)] == before


def test_stdout_full_is_one_line_exit_1():
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    env = {k: v for k, v in os.environ.items() if k != "RNNSIM_DEBUG"}
    env["PYTHONPATH"] = str(ROOT)
    for cmd in (["list"], ["schema"], ["--version"], ["--help"], ["run", "--help"]):  # (click writes the last 3)
        with open("/dev/full", "w") as full:
            proc = subprocess.run([sys.executable, "-m", "rnnsim", *cmd], stdout=full, stderr=subprocess.PIPE,
                                  text=True, env=env, timeout=60)
        assert proc.returncode == 1
        assert proc.stderr.strip() == "rnnsim: cannot write to standard output: No space left on device"


def test_usage_errors_are_one_line():
    proc = CliRunner().invoke(cli, ["run", "vanishing", "-n", "abc"])
    # CliRunner goes through click's standalone handling; the real entry point prints one line:
    env = {k: v for k, v in os.environ.items() if k != "RNNSIM_DEBUG"}
    env["PYTHONPATH"] = str(ROOT)
    real = subprocess.run([sys.executable, "-m", "rnnsim", "run", "vanishing", "-n", "abc"], capture_output=True,
                          text=True, env=env, timeout=60)
    assert real.returncode == 2 and real.stderr.count("\n") == 1 and "--iterations" in real.stderr
    assert proc.exit_code == 2


def test_tui_without_a_terminal_is_one_line_exit_2(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "RNNSIM_DEBUG"}
    env["PYTHONPATH"] = str(ROOT)
    out, err = tmp_path / "f", tmp_path / "g"
    with open(os.devnull) as devnull, open(out, "w") as fo, open(err, "w") as fe:
        proc = subprocess.run([sys.executable, "-m", "rnnsim", "vanishing"], stdin=devnull, stdout=fo, stderr=fe,
                              env=env, timeout=60)  # the old code never exited
    assert proc.returncode == 2 and out.read_text() == ""
    line = err.read_text()
    assert line.count("\n") == 1 and "rnnsim run vanishing" in line and "\x1b" not in line


def test_numba_cache_falls_back_when_home_is_not_writable_and_is_private(tmp_path):
    ro = tmp_path / "ro"
    ro.write_text("a file where the cache folder's parent should be")  # makedirs fails even as root
    env = {k: v for k, v in os.environ.items() if k not in ("RNNSIM_DEBUG", "NUMBA_CACHE_DIR")}
    env.update(PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(ro / "cache"))
    code = "import os, stat, rnnsim._numba_env as e; print(e.NUMBA_CACHE_DIR); print(oct(stat.S_IMODE(os.stat(e.NUMBA_CACHE_DIR).st_mode)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    where, mode = proc.stdout.split()
    assert not where.startswith(str(ro)) and "site-packages" not in where and mode == "0o700"
    assert proc.stderr.count("\n") == 1 and "cannot create the kernel cache" in proc.stderr
    env["XDG_CACHE_HOME"] = str(tmp_path / "ok")
    proc = subprocess.run(["sh", "-c", f"umask 000; exec {sys.executable} -c \"$0\"", code], capture_output=True,
                          text=True, env=env, timeout=60)
    where, mode = proc.stdout.split()
    assert where == str(tmp_path / "ok" / "rnnsim" / "numba") and mode == "0o700" and proc.stderr == ""


def test_a_served_session_needs_no_terminal(monkeypatch):
    """rnnsim serve's visitors run the TUI over pipes with Textual's web driver: the terminal check lets them."""
    from rnnsim import terminal

    monkeypatch.delenv("TEXTUAL_DRIVER", raising=False)
    assert terminal.tui_problem("vanishing") is not None  # pytest's stdin is not a terminal
    monkeypatch.setenv("TEXTUAL_DRIVER", "textual.drivers.web_driver:WebDriver")
    assert terminal.tui_problem("vanishing") is None
