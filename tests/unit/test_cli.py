"""The command line (rnnsim/cli.py): CliRunner for behaviour, a subprocess for real exit codes and stderr."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest
from click.testing import CliRunner

import rnnsim
from rnnsim.cli import cli
from rnnsim.scenario import builtin_scenarios


def invoke(*args, **kwargs):
    runner = CliRunner()
    return runner.invoke(cli, list(args), catch_exceptions=False, **kwargs)


def run_subprocess(*args, env_extra=None, timeout=120):
    env = dict(os.environ)
    env.pop("RNNSIM_DEBUG", None)
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "rnnsim", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def bad_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[model]\nhiden_size = 3\n")
    return str(path)


# ---------------------------------------------------------------- a fake Simulation for `run`


@dataclasses.dataclass
class FakeInfo:
    iteration: int
    loss: float
    grad_norm: float
    clipped_norm: float
    clipped: bool
    finite: bool
    cosine: float = 1.0


class FakeSimulation:
    """Just enough of DESIGN §2 for the CLI: forward/backward/train, grad_hidden, grads, baseline, sentinel."""

    instances: list["FakeSimulation"] = []

    def __init__(self, sc):
        self.scenario = sc
        self.T = sc.task.length
        self.grad_hidden = np.zeros((sc.task.batch_size, self.T, sc.model.hidden_size))
        self.grads = {"weight_hh": np.full((2, 2), 0.5)}
        self.baseline = 0.167
        self.sentinel = None
        self.calls: list[str] = []
        self.train_calls: list[int] = []
        FakeSimulation.instances.append(self)

    def forward(self):
        self.calls.append("forward")
        return 0.25

    def backward(self):
        self.calls.append("backward")
        self.grad_hidden[:] = 1.0

    def train(self, n, callback=None):
        self.train_calls.append(n)
        out = []
        for i in range(1, n + 1):
            info = FakeInfo(i, 1.0 / i, 2.0, 1.0, clipped=i % 2 == 0, finite=True)
            out.append(info)
            if callback is not None and callback(info) is False:
                break
        self.grad_hidden[:] = 1.0
        return out


def fake_diagnostics():
    mod = types.ModuleType("rnnsim.diagnostics")

    def gradient_profile(sim):
        return np.geomspace(1e-6, 1.0, sim.T)

    def decay_summary(profile):
        ratio = float(profile[0] / profile[-1])
        return types.SimpleNamespace(ratio=ratio, rate=ratio ** (1 / (len(profile) - 1)), text="fake decay sentence")

    mod.gradient_profile = gradient_profile
    mod.decay_summary = decay_summary
    return mod


@pytest.fixture
def fake_sim(monkeypatch):
    FakeSimulation.instances = []
    monkeypatch.setattr(rnnsim, "Simulation", FakeSimulation, raising=False)
    diag = fake_diagnostics()
    monkeypatch.setitem(sys.modules, "rnnsim.diagnostics", diag)
    monkeypatch.setattr(rnnsim, "diagnostics", diag, raising=False)
    return FakeSimulation


# ---------------------------------------------------------------- run (fake)


def test_run_prints_summary(fake_sim):
    result = invoke("run", "vanishing", "--iterations", "4")
    assert result.exit_code == 0, result.output
    sim = fake_sim.instances[-1]
    assert sim.train_calls == [4]
    out = result.stdout
    assert "final loss" in out and "0.25" in out  # 1/4 from the last UpdateInfo
    assert "0.167" in out  # baseline
    assert "fake decay sentence" in out
    assert "1e-06" in out  # the ratio of the fake profile
    assert "clipping events" in out and "│ 2 " in out


def test_run_defaults_to_scenario_iterations(fake_sim):
    assert invoke("run", "vanishing").exit_code == 0
    assert fake_sim.instances[-1].train_calls == [50]


def test_run_applies_overrides(fake_sim):
    result = invoke("run", "vanishing", "-n", "1", "--set", "model.cell=lstm", "--set", "model.hidden_size=7")
    assert result.exit_code == 0
    sc = fake_sim.instances[-1].scenario
    assert (sc.model.cell, sc.model.hidden_size) == ("lstm", 7)


def test_run_zero_iterations_is_one_forward_backward(fake_sim):
    result = invoke("run", "vanishing", "--iterations", "0")
    assert result.exit_code == 0
    sim = fake_sim.instances[-1]
    assert sim.calls == ["forward", "backward"] and sim.train_calls == []
    assert "fake decay sentence" in result.stdout
    assert "1e-06" in result.stdout


def test_run_quiet_prints_nothing(fake_sim):
    result = invoke("run", "vanishing", "-n", "2", "--quiet")
    assert result.exit_code == 0 and result.stdout == ""


@pytest.mark.parametrize("suffix", [".json", ".csv", ".npz"])
def test_run_out_writes_results(fake_sim, tmp_path, suffix):
    out = tmp_path / f"results{suffix}"
    result = invoke("run", "vanishing", "-n", "3", "--out", str(out), "-q")
    assert result.exit_code == 0
    assert out.is_file()
    if suffix == ".json":
        data = json.loads(out.read_text())
        assert [row["iteration"] for row in data["history"]] == [1, 2, 3]
        assert data["scenario"]["model"]["cell"] == "rnn"
        assert data["summary"]["clipping_events"] == 1
        assert len(data["arrays"]["gradient_profile"]) == 100


def test_run_bad_out_suffix_fails_before_running(fake_sim, tmp_path):
    result = invoke("run", "vanishing", "--out", str(tmp_path / "r.txt"))
    assert result.exit_code == 2
    assert ".json, .csv, .npz" in result.stderr
    assert fake_sim.instances == []


def test_run_bad_override_exit_2(fake_sim):
    result = invoke("run", "vanishing", "--set", "model.cell=transformer")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "rnnsim: vanishing (override model.cell): model.cell = 'transformer': allowed: 'rnn', 'lstm', 'gru', 'attention'"
    )
    result = invoke("run", "vanishing", "--set", "model.cell")
    assert result.exit_code == 2 and "KEY=VALUE" in result.stderr


def test_run_keyboard_interrupt_exits_130_and_writes_results(fake_sim, monkeypatch, tmp_path):
    def interrupted_train(self, n, callback=None):
        for i in range(1, 3):
            callback(FakeInfo(i, 0.5, 1.0, 1.0, False, True))
        raise KeyboardInterrupt

    monkeypatch.setattr(FakeSimulation, "train", interrupted_train)
    out = tmp_path / "partial.json"
    result = invoke("run", "vanishing", "-n", "10", "--out", str(out))
    assert result.exit_code == 130
    assert "Traceback" not in result.output
    data = json.loads(out.read_text())
    assert len(data["history"]) == 2 and data["summary"]["interrupted"] is True
    assert result.stderr.strip() == f"rnnsim: interrupted after 2 of 10 iterations; the results so far are in {out}"
    result = invoke("run", "vanishing", "-n", "10")
    assert result.exit_code == 130
    assert result.stderr.strip() == "rnnsim: interrupted after 2 of 10 iterations; nothing was written (no --out)"
    result = invoke("run", "vanishing", "-n", "10", "-q")
    assert result.exit_code == 130 and result.stderr == ""


def test_run_internal_error_is_one_line_exit_1(fake_sim, monkeypatch):
    def broken(self, n, callback=None):
        raise RuntimeError("kernel\nexploded")

    monkeypatch.setattr(FakeSimulation, "train", broken)
    monkeypatch.delenv("RNNSIM_DEBUG", raising=False)
    result = invoke("run", "vanishing", "-n", "1")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("rnnsim: internal error: RuntimeError: kernel exploded")
    assert "RNNSIM_DEBUG=1" in lines[0]


def test_run_internal_error_debug_raises(fake_sim, monkeypatch):
    monkeypatch.setattr(FakeSimulation, "train", lambda self, n, callback=None: 1 / 0)
    monkeypatch.setenv("RNNSIM_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        invoke("run", "vanishing", "-n", "1")


def test_run_reports_sentinel(fake_sim, monkeypatch):
    def nonfinite(self, n, callback=None):
        self.sentinel = "iteration 3, backward, t = 17, grad_hidden"
        info = FakeInfo(1, float("nan"), float("nan"), float("nan"), False, False)
        callback(info)
        return [info]

    monkeypatch.setattr(FakeSimulation, "train", nonfinite)
    result = invoke("run", "vanishing", "-n", "5")
    assert result.exit_code == 0
    assert "t = 17" in result.stdout and "non-finite events" in result.stdout


# ---------------------------------------------------------------- TUI entry (scenario as the first word)


@pytest.fixture
def fake_tui(monkeypatch):
    calls = []
    app = types.ModuleType("rnnsim.tui.app")
    app.run_app = lambda sc: calls.append(sc)
    monkeypatch.setitem(sys.modules, "rnnsim.tui.app", app)
    import rnnsim.terminal

    monkeypatch.setattr(rnnsim.terminal, "tui_problem", lambda scenario: None)  # CliRunner has no terminal
    import rnnsim.tui

    monkeypatch.setattr(rnnsim.tui, "app", app, raising=False)
    return calls


def test_no_args_opens_tui_on_default(fake_tui):
    assert invoke().exit_code == 0
    assert fake_tui[-1].source == "vanishing"


def test_scenario_name_opens_tui(fake_tui, tmp_path):
    assert invoke("exploding").exit_code == 0
    assert fake_tui[-1] == rnnsim.load_scenario("exploding") and fake_tui[-1].source == "exploding"
    path = tmp_path / "mine.toml"
    path.write_text('[model]\ncell = "gru"\n')
    assert invoke(str(path), "--set", "model.hidden_size=8").exit_code == 0
    assert (fake_tui[-1].model.cell, fake_tui[-1].model.hidden_size) == ("gru", 8)
    assert invoke("--set", "model.cell=lstm").exit_code == 0
    assert fake_tui[-1].model.cell == "lstm" and fake_tui[-1].source == "vanishing"


def test_bad_scenario_does_not_start_tui(fake_tui, tmp_path):
    result = invoke(bad_file(tmp_path))
    assert result.exit_code == 2
    assert "model.hiden_size: unknown key; did you mean 'hidden_size'?" in result.stderr
    assert fake_tui == []
    result = invoke("vanishin")
    assert result.exit_code == 2 and "did you mean 'vanishing'" in result.stderr


def test_tui_missing_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "rnnsim.tui.app", None)  # makes the import fail
    import rnnsim.terminal

    monkeypatch.setattr(rnnsim.terminal, "tui_problem", lambda scenario: None)
    result = invoke("vanishing")
    assert result.exit_code == 1
    assert "TUI is not available" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------- validate, list, schema, version


def test_validate_ok_and_bad(tmp_path):
    paths = [str(p) for p in builtin_scenarios().values()]
    result = invoke("validate", *paths)
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [f"ok  {p}" for p in paths]

    multi = tmp_path / "multi.toml"
    multi.write_text('[model]\ncell = "x"\nhidden_size = 0\n')
    result = invoke("validate", paths[0], str(multi), "nofile.toml")
    assert result.exit_code == 2
    assert result.stdout.splitlines() == [f"ok  {paths[0]}"]
    problems = result.stderr.splitlines()
    assert len(problems) == 3
    assert any("model.cell = 'x'" in p for p in problems)
    assert any("model.hidden_size = 0" in p for p in problems)
    assert any(p.startswith("nofile.toml: no such file") for p in problems)


def test_validate_needs_a_file():
    assert invoke("validate").exit_code == 2


def test_list_plain_when_piped():
    result = invoke("list")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    from rnnsim.sweep import builtin_sweeps

    first = [line.split()[0] for line in lines]
    # the scenarios in course order (problem 1 to 6, each followed by its fixes), then the sweeps
    assert sorted(first[:len(builtin_scenarios())]) == sorted(builtin_scenarios())
    assert first[len(builtin_scenarios()):] == list(builtin_sweeps())
    labels = {line.split()[0]: line.split()[1:3] for line in lines}
    assert first[:3] == ["vanishing", "vanishing-lstm", "vanishing-gru"]
    assert labels["vanishing"][0] == "1" and labels["irnn"] == ["1", "fix"] and labels["exploding"][0] == "2"
    assert first.index("exploding") < first.index("clip-norm") < first.index("adding") < first.index("parallel") \
        < first.index("bottleneck") < first.index("recency")
    assert any("shrink geometrically" in line for line in lines)
    assert any(line.startswith("regimes ") and "rnnsim sweep regimes" in line for line in lines)


def test_schema_is_json():
    result = invoke("schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert set(schema["properties"]) == {"scenario", "model", "task", "training", "lesson"}


def test_version_and_help():
    result = invoke("--version")
    assert result.exit_code == 0 and rnnsim.__version__ in result.stdout
    for args in (["--help"], ["run", "--help"], ["validate", "--help"], ["list", "--help"], ["schema", "--help"]):
        result = invoke(*args)
        assert result.exit_code == 0 and "Usage:" in result.stdout


def test_usage_error_exit_2():
    result = invoke("run")
    assert result.exit_code == 2
    result = invoke("run", "vanishing", "--iterations", "-1")
    assert result.exit_code == 2


# ---------------------------------------------------------------- real process: exit codes, stderr, imports


def test_subprocess_exit_codes(tmp_path):
    ok = run_subprocess("validate", "vanishing")
    assert ok.returncode == 0 and ok.stdout.strip() == "ok  vanishing"

    bad = run_subprocess("run", bad_file(tmp_path))
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith("rnnsim: ") and "did you mean 'hidden_size'" in bad.stderr

    usage = run_subprocess("run", "vanishing", "--no-such-option")
    assert usage.returncode == 2 and "Traceback" not in usage.stderr

    version = run_subprocess("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"rnnsim {rnnsim.__version__}"


def test_subprocess_internal_error_exit_1(tmp_path):
    # A real process whose command hits an unexpected exception: a tiny wrapper breaks `rnnsim list`.
    wrapper = tmp_path / "boom.py"
    wrapper.write_text(
        "import sys, rnnsim.cli as c\n"
        "def boom(): raise RuntimeError('boom')\n"
        "c.builtin_scenarios = boom\n"
        "sys.argv = ['rnnsim', 'list']\n"
        "c.main()\n"
    )
    env = dict(os.environ)
    env.pop("RNNSIM_DEBUG", None)
    proc = subprocess.run([sys.executable, str(wrapper)], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "rnnsim: internal error: RuntimeError: boom (rerun with RNNSIM_DEBUG=1 for the traceback)"
    env["RNNSIM_DEBUG"] = "1"
    proc = subprocess.run([sys.executable, str(wrapper)], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 1 and "Traceback" in proc.stderr


def test_subprocess_light_commands_do_not_import_numba():
    code = (
        "import sys\n"
        "from rnnsim.cli import main\n"
        "try:\n"
        "    main(['validate', 'vanishing'])\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0, e.code\n"
        "assert 'numba' not in sys.modules and 'textual' not in sys.modules, 'heavy import'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------------- end to end with the real Simulation


def _real_simulation_available() -> bool:
    try:
        import rnnsim.diagnostics as diagnostics
        from rnnsim.simulation import Simulation  # noqa: F401
    except ImportError:
        return False
    return hasattr(diagnostics, "gradient_profile") and hasattr(diagnostics, "decay_summary")


real_sim = pytest.mark.skipif(not _real_simulation_available(), reason="rnnsim.simulation / diagnostics not there yet")


@real_sim
@pytest.mark.slow
def test_e2e_run_vanishing_real(tmp_path):
    out = tmp_path / "vanishing.json"
    proc = run_subprocess("run", "vanishing", "--iterations", "3", "--set", "task.length=30", "--out", str(out), timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "final loss" in proc.stdout and "Traceback" not in proc.stderr
    data = json.loads(out.read_text())
    assert [row["iteration"] for row in data["history"]] == [1, 2, 3]
    profile = np.array(data["arrays"]["gradient_profile"], dtype=float)
    assert profile.shape == (30,) and np.all(np.isfinite(profile))
    assert profile[0] < profile[-1], "a 0.9-scaled orthogonal tanh RNN's gradient shrinks back in time"
    assert data["summary"]["gradient_ratio"] == pytest.approx(profile[0] / profile[-1], rel=1e-6)


@real_sim
@pytest.mark.slow
def test_e2e_run_zero_iterations_real(tmp_path):
    result = invoke("run", "exploding", "--iterations", "0", "--set", "task.length=40", "--out", str(tmp_path / "r.npz"))
    assert result.exit_code == 0, result.stderr
    with np.load(tmp_path / "r.npz", allow_pickle=False) as data:
        profile = data["gradient_profile"]
        assert profile.shape == (40,)
        assert profile[0] > profile[-1], "the exploding scenario's gradient grows back in time"
        saved = json.loads(str(data["scenario_json"]))
        assert saved["task"]["length"] == 40
        assert saved["model"] == rnnsim.load_scenario("exploding").model.model_dump()
    assert "one forward and backward pass" in result.stdout


@real_sim
@pytest.mark.slow
def test_e2e_run_every_builtin_real():
    for name in builtin_scenarios():
        # digits: the length is the data's (an explicit other one is refused); its row order is the short one
        short = "task.order=row" if name.startswith("digits") else "task.length=20"
        result = invoke("run", name, "-n", "2", "--set", short, "--set", "task.batch_size=4", "-q")
        assert result.exit_code == 0, (name, result.stderr)


def test_subprocess_closed_pipe_is_quiet():
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnnsim", "schema"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    proc.stdout.read(1)
    proc.stdout.close()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode in (0, 141), err
    assert b"internal error" not in err and b"Traceback" not in err


def _console_wrapper(tmp_path, body: str):
    wrapper = tmp_path / "wrap.py"
    wrapper.write_text(
        "import atexit, sys\n"
        "import rnnsim.cli as c\n"
        "atexit.register(lambda: print('interpreter teardown ran', file=sys.stderr))\n"
        + body
        + "c.console_main()\n"
    )
    return wrapper


@pytest.mark.parametrize("debug", ["", "1"], ids=["fast-exit", "RNNSIM_DEBUG"])
def test_console_exit_keeps_status_and_output_and_skips_teardown_once_numba_is_loaded(tmp_path, debug):
    out = tmp_path / "result.json"
    wrapper = _console_wrapper(tmp_path, f"sys.argv = ['rnnsim', 'run', 'vanishing', '--iterations', '2', '--out', {str(out)!r}]\n")
    env = dict(os.environ, RNNSIM_DEBUG=debug)
    proc = subprocess.run([sys.executable, str(wrapper)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "final loss" in proc.stdout and json.loads(out.read_text())["summary"]
    # os._exit skips the interpreter's teardown (numba's unloading, ~0.45 s); RNNSIM_DEBUG keeps it for profilers
    assert ("interpreter teardown ran" in proc.stderr) == bool(debug)


def test_console_exit_status_of_an_interrupted_run(tmp_path):
    wrapper = _console_wrapper(
        tmp_path,
        "import rnnsim.simulation as s\n"
        "def train(self, n, callback=None):\n"
        "    self.forward()  # loads numba\n"
        "    raise KeyboardInterrupt\n"
        "s.Simulation.train = train\n"
        "sys.argv = ['rnnsim', 'run', 'vanishing', '--iterations', '5']\n",
    )
    proc = subprocess.run([sys.executable, str(wrapper)], capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if k != "RNNSIM_DEBUG"})
    assert proc.returncode == 130, proc.stderr
    assert "interpreter teardown ran" not in proc.stderr
