"""Scenario schema, loading, overrides and one-line errors (rnnsim/scenario.py)."""

from __future__ import annotations

import json
import tomllib
import typing

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rnnsim
from rnnsim.scenario import (
    ModelSection,
    Scenario,
    ScenarioError,
    TaskSection,
    builtin_scenarios,
    estimate_bytes,
    json_schema,
    load_scenario,
    parse_override,
    task_dims,
)


def write(tmp_path, text: str, name: str = "bad.toml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def error_for(path) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    err = info.value
    assert isinstance(err, ValueError)
    assert "\n" not in str(err), "messages are one line"
    return err


# ---------------------------------------------------------------- good input


def test_empty_file_gives_all_defaults(tmp_path):
    sc = load_scenario(write(tmp_path, "", "empty.toml"))
    assert sc == Scenario()
    assert sc.model.cell == "rnn" and sc.model.hidden_size == 32 and sc.task.kind == "adding"
    assert sc.task.length == 100 and sc.training.iterations == 200 and sc.scenario.seed == 0
    assert sc.model.forget_bias is None and sc.training.fresh_data is True
    assert sc.source.endswith("empty.toml")


def test_public_names_exported_from_package():
    assert rnnsim.load_scenario is load_scenario
    assert rnnsim.Scenario is Scenario
    assert rnnsim.ScenarioError is ScenarioError
    assert rnnsim.__version__ == "0.1.0"


def test_builtins_present_and_all_load():
    names = builtin_scenarios()
    assert {"vanishing", "exploding", "adding-lstm"} <= set(names)
    assert list(names) == sorted(names)            # "adding" before "adding-lstm", as `rnnsim list` shows them
    for name, path in names.items():
        by_name = load_scenario(name)
        by_path = load_scenario(path)
        assert by_name == by_path
        assert by_name.source == name
        assert by_name.scenario.description, f"{name} needs a description for `rnnsim list`"


def test_vanishing_builtin_matches_design():
    sc = load_scenario("vanishing")
    assert (sc.model.cell, sc.model.activation, sc.model.hidden_size) == ("rnn", "tanh", 32)
    assert sc.model.init == "orthogonal" and sc.model.recurrent_scale == 0.9
    assert (sc.task.kind, sc.task.length, sc.task.batch_size) == ("random", 100, 16)
    assert (sc.training.optimizer, sc.training.learning_rate, sc.training.clip) == ("sgd", 0.01, "none")
    assert sc.training.iterations == 50
    assert load_scenario("exploding").model.recurrent_scale > 1.0


def test_ints_accepted_for_floats(tmp_path):
    sc = load_scenario(write(tmp_path, "[model]\nrecurrent_scale = 2\nforget_bias = -3\n", "ok.toml"))
    assert sc.model.recurrent_scale == 2.0 and isinstance(sc.model.recurrent_scale, float)
    assert sc.model.forget_bias == -3.0


def test_inapplicable_fields_are_kept(tmp_path):
    sc = load_scenario(write(tmp_path, '[model]\ncell = "gru"\nactivation = "relu"\nlayernorm = true\n', "ok.toml"))
    assert sc.model.activation == "relu" and sc.model.layernorm is True
    assert sc.with_changes({"model.cell": "rnn"}).model.activation == "relu"


def test_utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes('\ufeff[model]\ncell = "lstm"\n'.encode("utf-8"))
    assert load_scenario(path).model.cell == "lstm"


# ---------------------------------------------------------------- bad input, one class at a time


def test_unknown_key_did_you_mean(tmp_path):
    path = write(tmp_path, "[model]\nhiden_size = 3\n")
    msg = str(error_for(path))
    assert msg.startswith(f"{path}: model.hiden_size: unknown key; did you mean 'hidden_size'?")
    assert "allowed in [model]:" in msg and "cell" in msg and "forget_bias" in msg


def test_unknown_section_did_you_mean(tmp_path):
    msg = str(error_for(write(tmp_path, '[modle]\ncell = "rnn"\n')))
    assert "bad.toml: modle: unknown section; did you mean 'model'?" in msg
    assert "scenario, model, task, training" in msg


def test_bad_literal_lists_choices(tmp_path):
    msg = str(error_for(write(tmp_path, '[model]\ncell = "transformer"\n')))
    assert msg.endswith("bad.toml: model.cell = 'transformer': allowed: 'rnn', 'lstm', 'gru', 'attention'")


def test_readout_allows_linear_only(tmp_path):
    msg = str(error_for(write(tmp_path, '[model]\nreadout = "transformer"\n')))
    assert "model.readout = 'transformer': allowed: 'linear', 'attention'" in msg


def test_out_of_range(tmp_path):
    msg = str(error_for(write(tmp_path, "[task]\nlength = 10000000\n")))
    assert msg.endswith("bad.toml: task.length = 10000000: allowed: an integer from 1 to 100000")


@pytest.mark.parametrize(
    "text, key, allowed",
    [
        ("[training]\nlearning_rate = 0\n", "training.learning_rate = 0", "> 0 and <= 10"),
        ("[training]\nmomentum = 1\n", "training.momentum = 1", ">= 0 and < 1"),
        ("[scenario]\nseed = -1\n", "scenario.seed = -1", f"from 0 to {2**32 - 1}"),
        ("[scenario]\nseed = 4294967296\n", "scenario.seed = 4294967296", f"from 0 to {2**32 - 1}"),
        ("[task]\nperiod = 1.5\n", "task.period = 1.5", "from 2 to 1000000"),
        ("[task]\nperiod = nan\n", "task.period = nan", "from 2 to 1000000"),
        ("[model]\nrecurrent_scale = inf\n", "model.recurrent_scale = inf", "from 0 to 100"),
        ('[scenario]\nname = ""\n', "scenario.name = ''", "a string of 1 to 200 characters"),
        ("[task]\nalphabet = 1\n", "task.alphabet = 1", "an integer from 2 to 1000"),
    ],
)
def test_ranges_are_derived_from_metadata(tmp_path, text, key, allowed):
    msg = str(error_for(write(tmp_path, text)))
    assert key in msg and allowed in msg


@pytest.mark.parametrize(
    "text, shown, type_name",
    [
        ('[model]\nhidden_size = "big"\n', "model.hidden_size = 'big'", "str"),
        ("[model]\nhidden_size = true\n", "model.hidden_size = true", "bool"),
        ("[model]\nhidden_size = 3.5\n", "model.hidden_size = 3.5", "float"),
        ("[model]\nhidden_size = 32.0\n", "model.hidden_size = 32.0", "float"),
        ("[model]\nrecurrent_scale = true\n", "model.recurrent_scale = true", "bool"),
        ("[model]\nlayernorm = 1\n", "model.layernorm = 1", "int"),
        ("[scenario]\nname = 5\n", "scenario.name = 5", "int"),
        ("[model]\ncell = 3\n", "model.cell = 3", "int"),
        ('[model]\ncell = ["rnn"]\n', "model.cell = an array", "array"),
    ],
)
def test_wrong_type(tmp_path, text, shown, type_name):
    msg = str(error_for(write(tmp_path, text)))
    assert f"{shown}: wrong type ({type_name}); allowed:" in msg


def test_section_that_is_not_a_table(tmp_path):
    msg = str(error_for(write(tmp_path, "model = 3\n")))
    assert "model = 3: wrong type (int); allowed: a table [model]" in msg


def test_bad_toml_syntax_has_line_and_column(tmp_path):
    msg = str(error_for(write(tmp_path, '[model]\ncell = "rnn"\nhidden_size = = 3\n')))
    assert msg.startswith(str(tmp_path / "bad.toml") + ": line 3, column ")
    assert "not valid TOML: " in msg and "(at line" not in msg


def test_missing_file_lists_builtins(tmp_path):
    missing = str(tmp_path / "nofile.toml")
    msg = str(error_for(missing))
    assert msg.startswith(f"{missing}: no such file; built-in scenarios: ")
    assert "vanishing" in msg and "exploding" in msg


def test_unknown_builtin_name_did_you_mean():
    msg = str(error_for("vanishin"))
    assert msg.startswith("vanishin: no such file or built-in scenario; did you mean 'vanishing'?")


def test_directory(tmp_path):
    msg = str(error_for(str(tmp_path)))
    assert msg.startswith(f"{tmp_path}: is a directory")


def test_non_utf8(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes('[scenario]\nname = "caf\xe9"\n'.encode("latin-1"))
    msg = str(error_for(path))
    assert msg.startswith(f"{path}: line 2: not valid UTF-8")


def _drop_file_override_capabilities() -> None:
    """Clear CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (the capabilities that let root read any file) from this
    process with capget/capset. The uid stays 0, so the interpreter and the checkout, owned by root (say under a
    0700 /root), stay readable by their owner's permission bits, while a mode-0 file no longer is."""
    import ctypes

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    libc = ctypes.CDLL(None, use_errno=True)
    hdr, data = Header(0x20080522, 0), (Data * 2)()   # _LINUX_CAPABILITY_VERSION_3: two 32-bit words
    if libc.capget(ctypes.byref(hdr), data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    keep = ~((1 << 1) | (1 << 2)) & 0xFFFFFFFF       # CAP_DAC_OVERRIDE = 1, CAP_DAC_READ_SEARCH = 2
    for field in ("effective", "permitted", "inheritable"):
        setattr(data[0], field, getattr(data[0], field) & keep)
    if libc.capset(ctypes.byref(hdr), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")


def in_unprivileged_child(fn) -> str:
    """``fn()`` (returning a str) in a forked child that dropped root's power to read any file, or a description of
    the exception it raised; pytest's own process keeps its privileges."""
    import os

    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:   # child: never returns into pytest
        out = "child failed before running"
        try:
            os.close(read_fd)
            _drop_file_override_capabilities()
            out = fn()
        except BaseException as exc:   # noqa: BLE001  (reported to the parent, which fails the test)
            out = f"child failed: {exc!r}"
        finally:
            try:
                os.write(write_fd, out.encode())
            finally:
                os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as f:
        out = f.read().decode()
    os.waitpid(pid, 0)
    return out


def unreadable_file(tmp_path):
    """A scenario file with mode 0 (the caller restores 0o644)."""
    path = tmp_path / "secret.toml"
    path.write_text("[model]\ncell = 'lstm'\n")
    path.chmod(0)
    return path


def _load_message(path) -> str:
    try:
        load_scenario(path)
    except ScenarioError as exc:
        return str(exc)
    return "loaded without an error"


def test_unreadable_file(tmp_path):
    """A file its user may not read: one line naming the file. As root (CI runs as root, and root reads anything)
    the load runs in a child process without the capabilities that let root read any file."""
    import os

    path = unreadable_file(tmp_path)
    try:
        msg = in_unprivileged_child(lambda: _load_message(path)) if os.geteuid() == 0 else _load_message(path)
    finally:
        path.chmod(0o644)
    assert msg == f"{path}: cannot read: Permission denied"


def test_unreadable_file_on_the_command_line(tmp_path):
    """`rnnsim validate` of an unreadable file: exit 2 and the one line on stderr (also as root, see above)."""
    import os

    from click.testing import CliRunner

    from rnnsim.cli import cli

    def validate() -> str:
        result = CliRunner().invoke(cli, ["validate", str(path)])
        return f"{result.exit_code}|{result.stderr}"

    path = unreadable_file(tmp_path)
    try:
        out = in_unprivileged_child(validate) if os.geteuid() == 0 else validate()
    finally:
        path.chmod(0o644)
    code, _, err = out.partition("|")
    assert code == "2", out
    assert err.count("\n") == 1 and f"{path}: cannot read: Permission denied" in err and "Traceback" not in err


@pytest.mark.parametrize("value", ["0", "0.0", "-1.0", "1e10"])
def test_clip_threshold_must_be_positive_and_bounded(tmp_path, value):
    """θ = 0 would make norm clipping divide by ‖g‖ into a zero gradient (and value clipping freeze training): refused
    in a file and as an override; the smallest positive θ is fine."""
    path = write(tmp_path, f'[training]\nclip = "norm"\nclip_threshold = {value}\n')
    msg = str(error_for(path))
    assert msg == f"{path}: training.clip_threshold = {value if value != '1e10' else '10000000000.0'}: allowed: " \
        "a number > 0 and <= 1000000000"
    with pytest.raises(ScenarioError, match="training.clip_threshold"):
        Scenario.from_dict({}).with_changes({"training.clip_threshold": float(value)})
    assert Scenario.from_dict({"training": {"clip_threshold": 5e-324}}).training.clip_threshold == 5e-324


def test_not_a_regular_file():
    msg = str(error_for("/dev/null"))
    assert msg == "/dev/null: not a regular file"


@pytest.mark.parametrize(
    "text, keys",
    [
        ('[task]\nkind = "adding"\nlength = 1\n', ["task.length = 1", "adding", ">= 2"]),
        ('[task]\nkind = "copy"\nlength = 20\nsymbols = 10\n', ["task.length = 20", "2*task.symbols + 1 = 21"]),
        ('[task]\nkind = "delayed_recall"\nlength = 10\ndelay = 10\n', ["task.delay = 10", "task.delay < task.length"]),
    ],
)
def test_cross_field_checks(tmp_path, text, keys):
    msg = str(error_for(write(tmp_path, text)))
    for part in keys:
        assert part in msg


def test_cross_field_boundaries_are_allowed(tmp_path):
    assert load_scenario(write(tmp_path, '[task]\nkind = "copy"\nlength = 21\nsymbols = 10\n', "ok.toml"))
    assert load_scenario(write(tmp_path, '[task]\nkind = "delayed_recall"\nlength = 10\ndelay = 9\n', "ok.toml"))
    # fields of other tasks are ignored: a copy-sized length check does not apply to the adding task
    assert load_scenario(write(tmp_path, '[task]\nkind = "adding"\nlength = 2\nsymbols = 10\n', "ok.toml"))


def test_memory_bound(tmp_path, monkeypatch):
    monkeypatch.delenv("RNNSIM_MAX_BYTES", raising=False)
    text = "[model]\nhidden_size = 4096\n[task]\nlength = 100000\nbatch_size = 4096\n"
    msg = str(error_for(write(tmp_path, text)))
    for part in ("model.hidden_size = 4096", "task.length = 100000", "task.batch_size = 4096", "8.0 GiB", "RNNSIM_MAX_BYTES"):
        assert part in msg


def test_memory_bound_env_override(tmp_path, monkeypatch):
    path = write(tmp_path, "[model]\nhidden_size = 256\n[task]\nlength = 1000\nbatch_size = 64\n", "mid.toml")
    sc = load_scenario(path)
    need = estimate_bytes(sc)
    monkeypatch.setenv("RNNSIM_MAX_BYTES", str(need - 1))
    assert "above the limit" in str(error_for(path))
    monkeypatch.setenv("RNNSIM_MAX_BYTES", str(need))
    assert load_scenario(path) == sc
    monkeypatch.setenv("RNNSIM_MAX_BYTES", "lots")
    assert "RNNSIM_MAX_BYTES" in str(error_for(path))


@pytest.mark.parametrize("changes", [
    {"model.cell": "rnn"}, {"model.cell": "rnn", "model.layernorm": True}, {"model.cell": "lstm"},
    {"model.cell": "gru"}, {"model.cell": "lstm", "task.kind": "copy", "model.dtype": "float32"},
])
def test_estimate_bytes_bounds_what_a_simulation_allocates(changes):
    """The bound checked before allocation must cover the Simulation's real arrays, and not wildly overshoot (it
    also counts a pass's NumPy temporaries: measured against peak RSS in test_memory_bound.py)."""
    from rnnsim import Simulation

    sc = Scenario().with_changes({"task.length": 40, "task.batch_size": 8, **changes})
    sim = Simulation(sc)
    real = sim.workspace.nbytes() + sum(a.nbytes for a in (sim._X, sim._Y, sim._M, sim._out, sim._dout))
    real += 2 * sum(p.nbytes for p in sim.params.values())
    assert real <= estimate_bytes(sc) <= 2.5 * real + 64 * 1024


def test_task_dims_each_kind():
    generated = [k for k in typing.get_args(TaskSection.model_fields["kind"].annotation)
                 if k not in ("file", "series", "digits")]   # the data kinds: tests/unit/test_datasets.py
    dims = {kind: task_dims(TaskSection(kind=kind, input_size=5))[:2] for kind in generated}
    assert dims == {"adding": (2, 1), "copy": (10, 9), "delayed_recall": (1, 1), "random": (5, 1), "sine": (1, 1)}


def test_several_problems_first_plus_count(tmp_path):
    text = '[model]\ncell = "x"\nhidden_size = 0\n[training]\nlearning_rate = 0\n'
    err = error_for(write(tmp_path, text))
    assert len(err.problems) == 3
    assert str(err).startswith(err.problems[0])
    assert str(err).endswith(f"(+2 more; see rnnsim validate {tmp_path / 'bad.toml'})")
    assert any("model.hidden_size = 0" in p for p in err.problems)
    assert any("training.learning_rate = 0" in p for p in err.problems)
    assert all(p.startswith(str(tmp_path / "bad.toml") + ": ") for p in err.problems)


# ---------------------------------------------------------------- overrides


@pytest.mark.parametrize(
    "text, expected",
    [
        ("model.cell=lstm", ("model.cell", "lstm")),
        ("model.hidden_size=64", ("model.hidden_size", 64)),
        ("model.layernorm=true", ("model.layernorm", True)),
        ("training.learning_rate=0.5", ("training.learning_rate", 0.5)),
        ('scenario.name="x y"', ("scenario.name", "x y")),
        ("scenario.name=hello world", ("scenario.name", "hello world")),
        (" model.cell = gru ", ("model.cell", "gru")),
        ("scenario.name=a=b", ("scenario.name", "a=b")),
        ("scenario.name=", ("scenario.name", "")),
        ("scenario.name=1\nx = 2", ("scenario.name", "1\nx = 2")),
    ],
)
def test_parse_override(text, expected):
    key, value = parse_override(text)
    assert (key, value) == expected
    assert type(value) is type(expected[1])


@pytest.mark.parametrize("text", ["model.cell", "=lstm"])
def test_parse_override_needs_key_and_equals(text):
    with pytest.raises(ScenarioError):
        parse_override(text)


def test_with_changes_returns_new_validated_scenario():
    sc = load_scenario("vanishing")
    sc2 = sc.with_changes({"model.cell": "lstm", "training.clip": "norm"})
    assert sc2.model.cell == "lstm" and sc2.training.clip == "norm"
    assert sc.model.cell == "rnn", "the original is unchanged"
    assert sc2.model.hidden_size == sc.model.hidden_size
    assert sc2.source == sc.source


def test_with_changes_errors_name_the_override():
    sc = load_scenario("vanishing")
    with pytest.raises(ScenarioError) as info:
        sc.with_changes({"model.cell": "transformer"})
    assert str(info.value) == "vanishing (override model.cell): model.cell = 'transformer': allowed: 'rnn', 'lstm', 'gru', 'attention'"
    with pytest.raises(ScenarioError, match=r"model\.hiden: unknown key; did you mean 'hidden_size'"):
        sc.with_changes({"model.hiden": 3})
    with pytest.raises(ScenarioError, match=r"modle: unknown section; did you mean 'model'"):
        sc.with_changes({"modle.cell": "lstm"})
    with pytest.raises(ScenarioError, match=r"SECTION\.KEY; did you mean 'model\.cell'"):
        sc.with_changes({"cell": "lstm"})
    with pytest.raises(ScenarioError, match=r"task\.length = 10: the copy task"):
        sc.with_changes({"task.kind": "copy", "task.length": 10})


def test_override_and_file_share_one_path(tmp_path):
    """The same bad value gives the same problem text from a file and from --set (apart from the source)."""
    from_file = str(error_for(write(tmp_path, "[model]\nhidden_size = 0\n")))
    key, value = parse_override("model.hidden_size=0")
    with pytest.raises(ScenarioError) as info:
        Scenario().with_changes({key: value})
    assert from_file.split(": ", 1)[1] == str(info.value).split(": ", 1)[1]
    key, value = parse_override("model.hidden_size=big")
    with pytest.raises(ScenarioError, match=r"model\.hidden_size = 'big': wrong type \(str\)"):
        Scenario().with_changes({key: value})


def test_forget_bias_can_be_cleared_from_python():
    sc = load_scenario("adding-lstm")
    assert sc.model.forget_bias == 1.0
    assert sc.with_changes({"model.forget_bias": None}).model.forget_bias is None


# ---------------------------------------------------------------- TOML out, schema


def test_to_toml_round_trip_builtins(tmp_path):
    for name in builtin_scenarios():
        sc = load_scenario(name)
        path = write(tmp_path, sc.to_toml(), f"{name}.toml")
        assert load_scenario(path) == sc
        assert load_scenario(path).to_dict() == sc.to_dict()


@settings(max_examples=60, deadline=None)
@given(
    name=st.text(min_size=1, max_size=200),
    description=st.text(max_size=300),
    scale=st.floats(min_value=0, max_value=100, allow_nan=False),
    lr=st.floats(min_value=1e-12, max_value=10, allow_nan=False),
    bias=st.one_of(st.none(), st.floats(min_value=-100, max_value=100)),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_to_toml_round_trip_any_values(name, description, scale, lr, bias, seed):
    from rnnsim import safe_text

    changes = {
        "scenario.name": name,
        "scenario.description": description,
        "scenario.seed": seed,
        "model.recurrent_scale": scale,
        "model.forget_bias": bias,
        "training.learning_rate": lr,
    }
    if safe_text.has_control(name, allow="\t\n\r") or safe_text.has_control(description, allow="\t\n\r"):
        with pytest.raises(ScenarioError, match="contains control characters") as info:
            Scenario().with_changes(changes)
        assert not safe_text.has_control(str(info.value))  # the message itself is safe to print
        return
    sc = Scenario().with_changes(changes)
    again = Scenario.from_dict(tomllib.loads(sc.to_toml()))
    assert again == sc


def test_json_schema_describes_every_field():
    schema = json_schema()
    json.dumps(schema)  # serialisable
    assert schema["type"] == "object"
    assert set(schema["properties"]) == {"scenario", "model", "task", "training", "lesson"}
    defs = schema["$defs"]
    model = defs["ModelSection"]
    assert model["additionalProperties"] is False
    assert model["properties"]["cell"]["enum"] == ["rnn", "lstm", "gru", "attention"]
    assert model["properties"]["hidden_size"]["maximum"] == 4096
    for section in ("ScenarioSection", "ModelSection", "TaskSection", "TrainingSection", "LessonSection"):
        for key, prop in defs[section]["properties"].items():
            assert prop.get("description"), f"{section}.{key} needs a description"
            assert "default" in prop, f"{section}.{key} needs a default"
    assert "source" not in json.dumps(schema["properties"])


def test_schema_validates_builtins():
    import jsonschema

    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    for path in builtin_scenarios().values():
        jsonschema.validate(tomllib.loads(path.read_text(encoding="utf-8")), schema)


def test_source_is_not_dumped():
    sc = load_scenario("vanishing")
    assert "source" not in sc.to_dict()
    assert "source" not in sc.to_toml()
    assert Scenario().source == "<dict>"


def test_sections_construct_directly():
    assert ModelSection(cell="gru").cell == "gru"
    with pytest.raises(ValueError):
        ModelSection(hidden_size=0)


def test_docs_list_every_field_with_default_and_range():
    from pathlib import Path

    from rnnsim.scenario import _SECTIONS, _allowed

    doc = Path(__file__).resolve().parents[2] / "docs" / "scenario-format.md"
    if not doc.is_file():
        pytest.skip("docs not in this checkout")
    text = doc.read_text(encoding="utf-8")
    for section, model in _SECTIONS.items():
        assert f"### [{section}]" in text
        for key in model.model_fields:
            rows = [line for line in text.splitlines() if line.startswith(f"| `{key}` |")]
            assert rows, f"docs/scenario-format.md does not document {section}.{key}"
            assert any(_allowed(model, key) in row for row in rows), f"{section}.{key}: range in docs is stale"


def test_locked_keys_must_name_scenario_keys(tmp_path):
    msg = str(error_for(write(tmp_path, '[scenario]\nlocked = ["model.cel"]\n')))
    assert "scenario.locked: 'model.cel' is not a scenario key; did you mean 'model.cell'?" in msg
    sc = load_scenario(write(tmp_path, '[scenario]\nlocked = ["model.cell", "training.clip"]\n'))
    assert sc.scenario.locked == ["model.cell", "training.clip"]


def test_lesson_steps(tmp_path):
    sc = load_scenario(write(tmp_path, '[lesson]\nsteps = ["Press space.", "Watch the plot."]\n'))
    assert sc.lesson.steps == ["Press space.", "Watch the plot."]
    assert "lesson.steps = 'x': wrong type (str); allowed: an array of strings (at most 20)" in str(
        error_for(write(tmp_path, '[lesson]\nsteps = "x"\n')))
    assert "did you mean 'steps'?" in str(error_for(write(tmp_path, '[lesson]\nstep = ["x"]\n')))
    too_many = "[lesson]\nsteps = [" + ", ".join('"s"' for _ in range(21)) + "]\n"
    assert "lesson.steps" in str(error_for(write(tmp_path, too_many)))
