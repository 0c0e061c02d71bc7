"""Scenario files: TOML loading, overrides and one-line errors (the schema itself: rnnsim/schema.py).

A scenario is a TOML file with four optional sections, ``[scenario]``, ``[model]``, ``[task]`` and
``[training]`` (DESIGN.md section 4). Every field has a default, a documented range and a hard upper bound.
Every bad input raises :class:`ScenarioError` whose message is one line naming the file, the dotted key, what
was given and what is allowed; the "allowed" part is derived from the field metadata below, never from a
hand-kept table.

This module imports neither NumPy-heavy code nor Numba nor Textual: ``rnnsim validate/list/schema`` stay fast.
"""

from __future__ import annotations

import os
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Mapping

import annotated_types
from pydantic import BaseModel, ValidationError

from rnnsim import safe_text, toml_guard
from rnnsim.scenario_guards import none_word
from rnnsim.schema import (DEFAULT_MAX_BYTES, MAX_FILE_BYTES, LessonSection, ModelSection, Scenario,  # noqa: F401
                           ScenarioError, ScenarioSection, TaskSection, TrainingSection, _did_you_mean, _SECTIONS,
                           estimate_bytes, max_bytes, task_dims)

__all__ = [
    "ScenarioError",
    "ScenarioSection",
    "ModelSection",
    "TaskSection",
    "TrainingSection",
    "LessonSection",
    "Scenario",
    "load_scenario",
    "builtin_scenarios",
    "parse_override",
    "json_schema",
    "task_dims",
    "estimate_bytes",
    "max_bytes",
    "DEFAULT_MAX_BYTES",
    "MAX_FILE_BYTES",
]


# --------------------------------------------------------------------------------------------------------
# Validation and error messages
# --------------------------------------------------------------------------------------------------------


def _show(value: Any) -> str:
    """A given value as the user would write it (TOML-ish), escaped and clipped (rnnsim/safe_text.py)."""
    return safe_text.show(value)


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, dict):
        return "table"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


def _num(x: float) -> str:
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e16:
        return str(int(x))
    return str(x)


def _allowed(model: type[BaseModel], key: str) -> str:
    """What a field accepts, derived from its annotation and constraints."""
    info = model.model_fields[key]
    ann = info.annotation
    optional = False
    args = getattr(ann, "__args__", ())
    if type(None) in args and len(args) == 2:  # float | None
        optional = True
        ann = next(a for a in args if a is not type(None))
    if getattr(ann, "__origin__", None) is Literal:
        return ", ".join(repr(c) for c in ann.__args__)
    if ann is bool:
        return "true or false"
    if getattr(ann, "__origin__", None) is dict:
        return "a table"
    if getattr(ann, "__origin__", None) is list:
        most = next((m.max_length for m in info.metadata if isinstance(m, annotated_types.MaxLen)), None)
        item = getattr(ann, "__args__", (str,))[0]
        bounds = [m for f in getattr(item, "__metadata__", ()) for m in getattr(f, "metadata", ())]
        item = getattr(item, "__origin__", item)  # Annotated[int, ...] -> int
        kind = {int: "integers", float: "numbers"}.get(item, "strings")
        lo = next((m.ge for m in bounds if isinstance(m, annotated_types.Ge)), None)
        hi = next((m.lt - 1 for m in bounds if isinstance(m, annotated_types.Lt)), None)
        each = f" from {lo} to {hi}" if kind == "integers" and lo is not None and hi is not None else ""
        return f"an array of {kind}{each}" + (f" (at most {most})" if most is not None else "")
    ge = gt = le = lt = min_len = max_len = None
    for m in info.metadata:
        if isinstance(m, annotated_types.Ge):
            ge = m.ge
        elif isinstance(m, annotated_types.Gt):
            gt = m.gt
        elif isinstance(m, annotated_types.Le):
            le = m.le
        elif isinstance(m, annotated_types.Lt):
            lt = m.lt
        elif isinstance(m, annotated_types.MinLen):
            min_len = m.min_length
        elif isinstance(m, annotated_types.MaxLen):
            max_len = m.max_length
    if ann is str:
        lo = min_len or 0
        if max_len is None:
            text = "a string"
        else:
            text = f"a string of {lo} to {max_len} characters" if lo else f"a string of at most {max_len} characters"
        return text + (", or leave it out" if optional else "")
    if ann is int:
        if lt is not None and le is None:
            le = lt - 1
        if gt is not None and ge is None:
            ge = gt + 1
        if ge is not None and le is not None:
            return f"an integer from {ge} to {le}"
        if ge is not None:
            return f"an integer >= {ge}"
        return "an integer"
    if ann is float:
        lower = f">= {_num(ge)}" if ge is not None else (f"> {_num(gt)}" if gt is not None else None)
        upper = f"<= {_num(le)}" if le is not None else (f"< {_num(lt)}" if lt is not None else None)
        if ge is not None and le is not None:
            text = f"a number from {_num(ge)} to {_num(le)}"
        else:
            text = "a number " + " and ".join(p for p in (lower, upper) if p) if (lower or upper) else "a number"
        return text + (", or leave it out" if optional else "")
    return str(ann)



def _describe_error(
    err: dict[str, Any], data: Mapping[str, Any], sections: Mapping[str, type[BaseModel]] | None = None
) -> str:
    """One problem (without the source prefix) from one pydantic error; ``sections`` (default: a scenario's)
    names the top-level tables and their models (sweep files pass their own)."""
    sections = _SECTIONS if sections is None else sections
    loc = tuple(safe_text.clip(p, 40) for p in err["loc"])  # keys from a file: escaped, clipped
    etype = err["type"]
    given = err.get("input")
    if etype in ("cross_field", "memory_bound", "locked_key", "data_file"):
        return err["msg"]
    if len(loc) == 1:
        name = loc[0]
        if etype == "extra_forbidden":
            names = list(sections)
            return (
                f"{name}: unknown section{_did_you_mean(name, names)} "
                f"(allowed sections: {', '.join(names)})"
            )
        if name in sections:
            return f"{name} = {_show(given)}: wrong type ({_type_name(given)}); allowed: a table [{name}]"
    if len(loc) >= 2 and loc[0] in sections:
        section, key = loc[0], loc[1]
        model = sections[section]
        dotted = f"{section}.{key}"
        if etype == "extra_forbidden":
            fields = list(model.model_fields)
            return (
                f"{dotted}: unknown key{_did_you_mean(key, fields)} "
                f"(allowed in [{section}]: {', '.join(fields)})"
            )
        if etype == "control_chars":
            return (
                f"{dotted} = {_show(given)}: contains control characters; allowed: plain text (tabs and newlines are "
                "fine), no escape sequences"
            )
        if key in model.model_fields:
            allowed = _allowed(model, key)
            if etype.endswith("_type") or (etype == "literal_error" and not isinstance(given, str)):
                return f"{dotted} = {_show(given)}: wrong type ({_type_name(given)}); allowed: {allowed}"
            return f"{dotted} = {_show(given)}: allowed: {allowed}"
    # Anything else: pydantic's own words, still on one line.
    dotted = ".".join(loc) if loc else "scenario"
    return f"{dotted}: {err['msg']}"


def _source_for(source: str, loc: tuple, overrides: list[str] | None) -> str:
    if not overrides:
        return source
    dotted = ".".join(str(p) for p in loc[:2])
    if dotted in overrides:
        return f"{source} (override {dotted})"
    return f"{source} (override {', '.join(overrides)})"


def _validate(
    data: Mapping[str, Any], source: str, overrides: list[str] | None = None, hint_path: str | None = None,
    base_dir: str | None = None,
) -> Scenario:
    if not isinstance(data, Mapping):
        raise ScenarioError(f"{source}: expected a table of sections, got {_type_name(data)}", source=source)
    max_bytes()  # a bad RNNSIM_MAX_BYTES is the environment's fault, not the file's: say so first
    try:
        sc = Scenario.model_validate(dict(data), context={"base_dir": base_dir})
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            problems.append(f"{_source_for(source, loc, overrides)}: {_describe_error(err, data)}")
        raise ScenarioError(problems, source=source, hint_path=hint_path) from None
    sc._source = source
    sc._base_dir = base_dir
    return sc


# --------------------------------------------------------------------------------------------------------
# Overrides
# --------------------------------------------------------------------------------------------------------


def parse_override(text: str) -> tuple[str, Any]:
    """``"model.cell=lstm"`` -> ``("model.cell", "lstm")``.

    The value is read as a TOML value when it is one (``64`` -> int, ``true`` -> bool, ``0.5`` -> float,
    ``"x"`` -> str) and otherwise taken as a bare string. Raises ScenarioError without ``=``.
    """
    if "=" not in text:
        raise ScenarioError(f"--set {safe_text.show(text)}: expected KEY=VALUE, e.g. model.cell=lstm", source="--set")
    key, raw = text.split("=", 1)
    key = key.strip()
    raw = raw.strip()
    if not key:
        raise ScenarioError(f"--set {safe_text.show(text)}: expected KEY=VALUE with a dotted KEY such as model.cell", source="--set")
    try:
        parsed = toml_guard.loads(f"v = {raw}")
    except toml_guard.TomlLimitError as exc:
        raise ScenarioError(f"--set {safe_text.clip(key)}: {exc}", source="--set") from None
    except tomllib.TOMLDecodeError:
        return key, raw
    if set(parsed) != {"v"}:
        return key, raw
    return key, parsed["v"]


def _apply_changes(base: dict[str, dict[str, Any]], changes: dict[str, Any], source: str,
                   base_dir: str | None = None) -> Scenario:
    data: dict[str, Any] = {section: dict(values) for section, values in base.items()}
    keys = list(changes)
    for key, value in changes.items():
        parts = str(key).split(".")
        if len(parts) != 2 or not all(parts):
            sections = list(_SECTIONS)
            hint = ""
            if len(parts) == 1:
                owners = [s for s, m in _SECTIONS.items() if key in m.model_fields]
                if owners:
                    hint = f"; did you mean '{owners[0]}.{key}'?"
            raise ScenarioError(
                f"{source} (override {safe_text.clip(key)}): {safe_text.clip(key)}: an override key is SECTION.KEY{hint} "
                f"(sections: {', '.join(sections)})",
                source=source,
            )
        section, name = parts
        if section not in data:
            data[section] = {}
        if not isinstance(data[section], dict):
            data[section] = {}
        data[section][name] = none_word(_SECTIONS.get(section), name, value)  # "none": leave it out
    task = data.get("task")
    if (isinstance(task, dict) and task.get("kind") in ("file", "digits") and "task.length" not in changes
            and any(k in changes for k in ("task.kind", "task.path", "task.order"))):
        task.pop("length", None)   # a new data source: its length comes from the data
    return _validate(data, source, overrides=keys, base_dir=base_dir)


# --------------------------------------------------------------------------------------------------------
# Files and built-ins
# --------------------------------------------------------------------------------------------------------


def packaged_path(name: str, checkout: str, is_dir: bool = False) -> Path | None:
    """A file or folder the wheel ships inside the package as ``rnnsim/<name>`` (pyproject's force-include), else
    its source in a checkout (``<repo>/<checkout>``), else None."""
    def exists(p) -> bool:
        return p.is_dir() if is_dir else p.is_file()

    try:
        packaged = resources.files("rnnsim") / name
        if exists(packaged):
            return Path(str(packaged))
    except (ModuleNotFoundError, OSError, TypeError):
        pass
    source = Path(__file__).resolve().parent.parent / checkout
    return source if exists(source) else None


def _builtin_dir() -> Path | None:
    return packaged_path("scenarios", "scenarios", is_dir=True)


def builtin_scenarios() -> dict[str, Path]:
    """Built-in scenario names -> file paths, sorted by name."""
    directory = _builtin_dir()
    if directory is None:
        return {}
    return {p.stem: p for p in sorted(directory.glob("*.toml"), key=lambda p: p.stem) if p.is_file()}


def _builtin_list(limit: int = 120) -> str:
    """The built-ins for a one-line message: in course order (rnnsim.lessons), cut after ``limit`` characters with
    a count of the rest and where to see them all."""
    from rnnsim.lessons import course

    names = [e.name for e in course(builtin_scenarios())]
    if not names:
        return "(none found)"
    shown: list[str] = []
    for i, name in enumerate(names):
        if shown and len(", ".join(shown + [name])) > limit:
            return f"{', '.join(shown)} (+{len(names) - i} more: rnnsim list)"
        shown.append(name)
    return ", ".join(shown)


_TOML_POS = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


def _read_toml(path: Path, source: str) -> dict[str, Any]:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ScenarioError(f"{source}: no such file; built-in scenarios: {_builtin_list()}", source=source) from None
    except OSError as exc:
        raise ScenarioError(f"{source}: cannot read: {exc.strerror or exc}", source=source) from None
    if path.is_dir():
        raise ScenarioError(
            f"{source}: is a directory, not a scenario file; built-in scenarios: {_builtin_list()}", source=source
        )
    if not path.is_file():
        raise ScenarioError(f"{source}: not a regular file", source=source)
    if st.st_size > MAX_FILE_BYTES:
        raise ScenarioError(
            f"{source}: file too large ({st.st_size} bytes; a scenario file is at most {MAX_FILE_BYTES} bytes)",
            source=source,
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"{source}: cannot read: {exc.strerror or exc}", source=source) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ScenarioError(
            f"{source}: line {line}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "save the file as UTF-8",
            source=source,
        ) from None
    try:
        return toml_guard.loads(text)  # bounded work: key parts, nesting, line and key length checked first
    except toml_guard.TomlLimitError as exc:
        raise ScenarioError(f"{source}: {exc}", source=source) from None
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = _TOML_POS.search(msg)
        where = ""
        if m:
            where = f"line {m.group(1)}, column {m.group(2)}: "
            msg = msg[: m.start()]
        elif getattr(exc, "lineno", None):
            where = f"line {exc.lineno}, column {exc.colno}: "
            msg = getattr(exc, "msg", msg)
        raise ScenarioError(f"{source}: {where}not valid TOML: {msg}", source=source) from None


def _looks_like_name(text: str) -> bool:
    return bool(text) and os.sep not in text and "/" not in text and not text.endswith(".toml")


def load_scenario(path_or_name: str | os.PathLike[str]) -> Scenario:
    """Load and validate a scenario from a ``.toml`` path or a built-in name such as ``"vanishing"``.

    Raises ScenarioError (a ValueError) with a one-line message for every bad input.
    """
    text = os.fspath(path_or_name)
    builtins = builtin_scenarios()
    if isinstance(path_or_name, str) and _looks_like_name(text) and not os.path.exists(text):
        if text in builtins:
            data = _read_toml(builtins[text], text)
            return _validate(data, text, hint_path=str(builtins[text]), base_dir=str(builtins[text].parent))
        raise ScenarioError(
            f"{text}: no such file or built-in scenario{_did_you_mean(text, list(builtins))} "
            f"(built-in scenarios: {_builtin_list()})",
            source=text,
        )
    data = _read_toml(Path(text), text)
    return _validate(data, text, hint_path=text, base_dir=str(Path(text).parent))


# --------------------------------------------------------------------------------------------------------
# Schema and TOML output
# --------------------------------------------------------------------------------------------------------


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a scenario file (titles and descriptions included), for editors."""
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema.setdefault("description", "An rnnsim scenario file (TOML). Every section and key is optional.")
    return schema


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        if text in ("inf", "-inf", "nan"):
            return text
        if "e" not in text and "." not in text:
            text += ".0"
        return text
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as a TOML scalar")


def _toml_string(s: str) -> str:
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)
