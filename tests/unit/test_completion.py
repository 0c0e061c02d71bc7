"""Shell completion (click's): subcommands, options, built-in scenario names and .toml files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from click.shell_completion import ShellComplete

from rnnsim.cli import cli, main
from rnnsim.scenario import builtin_scenarios


def complete(args: list[str], incomplete: str) -> list[str]:
    return [item.value for item in ShellComplete(cli, {}, "rnnsim", "_RNNSIM_COMPLETE").get_completions(args, incomplete)]


def test_first_word_completes_subcommands_not_the_hidden_tui():
    assert complete([], "r") [0] == "run"
    values = complete([], "")
    for name in ("run", "validate", "list", "schema", "serve"):
        assert name in values
    assert "tui" not in values
    assert "vanishing" in values  # `rnnsim vanishing` opens the TUI


def test_scenario_arguments_complete_builtin_names():
    assert complete(["run"], "van") == sorted(n for n in builtin_scenarios() if n.startswith("van"))
    assert "vanishing" in complete(["run"], "van")
    assert "exploding" in complete(["serve"], "expl")
    assert "clip-norm" in complete(["validate", "vanishing"], "clip-n")


def test_sweep_argument_completes_builtin_sweeps():
    from rnnsim.sweep.spec import builtin_sweeps

    names = list(builtin_sweeps())
    assert names, "no built-in sweeps to complete"
    assert complete(["sweep"], names[0][:3])[:1] == [n for n in names if n.startswith(names[0][:3])][:1]
    assert "vanishing" not in complete(["sweep"], "van")  # a scenario is not a sweep


def test_scenario_arguments_complete_toml_files_and_folders(tmp_path, monkeypatch):
    (tmp_path / "mine.toml").write_text("")
    (tmp_path / "notes.txt").write_text("")
    (tmp_path / "lab").mkdir()
    (tmp_path / "lab" / "week1.toml").write_text("")
    monkeypatch.chdir(tmp_path)
    values = complete(["run"], "")
    assert "mine.toml" in values and "lab" + os.sep in values and "notes.txt" not in values
    assert complete(["run"], "lab" + os.sep) == [os.path.join("lab", "week1.toml")]
    assert complete(["run"], "mi") == ["mine.toml"]


def test_options_complete_after_a_scenario():
    assert {"--iterations", "--set", "--out", "--plot", "--quiet"} <= set(complete(["run", "vanishing"], "--"))
    assert {"--host", "--port", "--public-url"} <= set(complete(["serve"], "--"))
    assert "--set" in complete(["vanishing"], "--s")  # the TUI's options


def test_completion_through_the_entry_point(monkeypatch, capsys):
    """The real path: the environment variable, main(), ScenarioGroup.parse_args with no words yet."""
    monkeypatch.setenv("_RNNSIM_COMPLETE", "bash_complete")
    monkeypatch.setenv("COMP_WORDS", "rnnsim r")
    monkeypatch.setenv("COMP_CWORD", "1")
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out.splitlines()
    assert "plain,run" in out


@pytest.mark.parametrize("shell, marker", [("bash", "complete -o nosort -F"), ("zsh", "compdef"),
                                           ("fish", "complete --no-files --command rnnsim")])
def test_completion_scripts_for_each_shell(shell, marker):
    env = {**os.environ, "_RNNSIM_COMPLETE": f"{shell}_source"}
    proc = subprocess.run([sys.executable, "-m", "rnnsim"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert marker in proc.stdout


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("rnnsim") is None,
                    reason="needs bash and the rnnsim console script")
def test_bash_completes_run_and_vanishing():
    script = (
        'eval "$(_RNNSIM_COMPLETE=bash_source rnnsim)"\n'
        "COMP_WORDS=(rnnsim r); COMP_CWORD=1; _rnnsim_completion rnnsim; echo \"1:${COMPREPLY[*]}\"\n"
        "COMP_WORDS=(rnnsim run van); COMP_CWORD=2; _rnnsim_completion rnnsim; echo \"2:${COMPREPLY[*]}\"\n"
    )
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    lines = dict(line.split(":", 1) for line in proc.stdout.splitlines() if ":" in line)
    assert "run" in lines["1"].split(), proc.stdout + proc.stderr
    assert "vanishing" in lines["2"].split(), proc.stdout + proc.stderr
