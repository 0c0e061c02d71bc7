"""Scenario files: schema, TOML loading, overrides and one-line errors.

A scenario is a TOML file with four optional sections, ``[scenario]``, ``[model]``, ``[task]`` and
``[training]`` (DESIGN.md section 4). Every field has a default, a documented range and a hard upper bound.
Every bad input raises :class:`ScenarioError` whose message is one line naming the file, the dotted key, what
was given and what is allowed; the "allowed" part is derived from the field metadata below, never from a
hand-kept table.

This module imports neither NumPy-heavy code nor Numba nor Textual: ``rnnsim validate/list/schema`` stay fast.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from rnnsim import safe_text, toml_guard
from rnnsim.scenario_guards import PlainText, none_word

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

DEFAULT_MAX_BYTES = 8 * 1024**3
"""Default memory bound (8 GiB) for :func:`estimate_bytes`; override with the env var ``RNNSIM_MAX_BYTES``."""

MAX_FILE_BYTES = 1024 * 1024
"""A scenario file larger than this (1 MiB) is refused before it is read."""


class ScenarioError(ValueError):
    """A bad scenario, file, name or override.

    ``str(err)`` is one line: the first problem, plus ``(+N more; see rnnsim validate FILE)`` when there are
    several. ``err.problems`` holds every problem, one line each; ``err.source`` names where it came from.
    """

    def __init__(self, problems: str | list[str], source: str | None = None, hint_path: str | None = None):
        if isinstance(problems, str):
            problems = [problems]
        self.problems: list[str] = [_one_line(p) for p in problems] or ["invalid scenario"]
        self.source = source
        message = self.problems[0]
        if len(self.problems) > 1:
            target = hint_path if hint_path else "FILE"
            message += f" (+{len(self.problems) - 1} more; see rnnsim validate {target})"
        super().__init__(_one_line(message))


def _one_line(text: str) -> str:
    return safe_text.one_line(text)  # whitespace collapsed, control characters escaped, at most 300 characters


# --------------------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------------------

_CONFIG = ConfigDict(extra="forbid", strict=True, validate_default=True, use_attribute_docstrings=False)


_Text = PlainText  # no control characters (rnnsim/scenario_guards.py)


def _float(default: Any, description: str, **bounds: float) -> Any:
    return Field(default, description=description, allow_inf_nan=False, **bounds)


class ScenarioSection(BaseModel):
    """[scenario]: what the scenario is called and how it is seeded."""

    model_config = _CONFIG

    name: _Text = Field("untitled", min_length=1, max_length=200, description="Title shown in the TUI and in `rnnsim list`.")
    description: _Text = Field("", max_length=2000, description="One or two sentences on what to watch; shown in the TUI and `rnnsim list`.")
    seed: int = Field(0, ge=0, lt=2**32, description="Seed for weights and data: the same scenario and seed give identical arrays.")
    locked: list[Annotated[str, Field(min_length=3, max_length=60)]] = Field(
        [],  # pydantic copies mutable defaults per instance
        max_length=40,
        description="Dotted keys (e.g. \"model.cell\") that the TUI will not let a student change, for lessons.",
    )


class LessonSection(BaseModel):
    """[lesson]: short steps shown in the TUI's lesson panel, one at a time."""

    model_config = _CONFIG

    steps: list[Annotated[_Text, Field(min_length=1, max_length=600)]] = Field(
        [],
        max_length=20,
        description="What to watch, which key to press, what the number means: one short paragraph per step.",
    )


class ModelSection(BaseModel):
    """[model]: the recurrent cell and its initialisation."""

    model_config = _CONFIG

    cell: Literal["rnn", "lstm", "gru", "attention"] = Field(
        "rnn",
        description="Recurrent cell: plain RNN, LSTM or GRU; or attention: one causal single-head self-attention "
        "layer with positional encoding and a residual connection (no recurrence).",
    )
    activation: Literal["tanh", "relu"] = Field("tanh", description="RNN nonlinearity (rnn only; kept and ignored for other cells).")
    hidden_size: int = Field(32, ge=1, le=4096, description="Number of hidden units H.")
    layernorm: bool = Field(False, description="Layer normalisation of the RNN pre-activation (rnn only).")
    init: Literal["pytorch", "orthogonal", "identity", "normal"] = Field(
        "pytorch",
        description="Weight initialisation. pytorch: every weight and bias U(-1/sqrt(H), 1/sqrt(H)) as torch.nn.*Cell; "
        "orthogonal: each HxH gate block of W_hh a random orthogonal matrix, the rest as pytorch; identity: each HxH "
        "block of W_hh = I, biases 0, W_ih ~ N(0, 0.001^2) (IRNN, Le et al. 2015); normal: W_ih, W_hh ~ N(0, 1/H), biases 0.",
    )
    recurrent_scale: float = _float(1.0, "Multiplies W_hh after initialisation (0.9 vanishes, 1.5 explodes for an orthogonal tanh RNN).", ge=0, le=100)
    forget_bias: float | None = _float(
        None,
        "lstm/gru only: sets the forget-gate (LSTM) or update-gate z (GRU) block of bias_ih to this value and of bias_hh to 0; omit to keep the init's biases.",
        ge=-100,
        le=100,
    )
    readout: Literal["linear", "attention"] = Field(
        "linear",
        description="Output layer: linear on h_t; or attention: dot-product attention of h_t over h_0..h_t, the "
        "context concatenated with h_t before the linear layer (reaches past the fixed-size state).",
    )
    dtype: Literal["float64", "float32"] = Field("float64", description="Floating-point type of every array.")
    weights: str | None = Field(
        None,
        min_length=1,
        max_length=4096,
        description="Start from saved weights: a .safetensors or .npz file with PyTorch names (a torch.nn.RNNCell/"
        "LSTMCell/GRUCell state_dict, or a one-layer torch.nn.RNN/LSTM/GRU one with _l0; readout.* optional), relative "
        "to the scenario file's folder. They replace the initialised weights (init, recurrent_scale, forget_bias "
        "then have no effect).",
    )

    @model_validator(mode="after")
    def _attention_readout(self) -> "ModelSection":
        if self.cell == "attention" and self.readout != "linear":
            raise PydanticCustomError(
                "cross_field",
                "model.readout = '{readout}': model.cell = 'attention' needs model.readout = 'linear' (the "
                "self-attention layer already attends over every earlier position)",
                {"readout": self.readout},
            )
        return self


class TaskSection(BaseModel):
    """[task]: the data the network is trained on."""

    model_config = _CONFIG

    kind: Literal["adding", "copy", "delayed_recall", "random", "sine", "file", "series", "digits"] = Field(
        "adding",
        description="adding: the sum of two marked values, at the last step; copy: recall S symbols after a lag of "
        "length - 2*symbols blanks; delayed_recall: at each step t >= delay, output the input from `delay` steps ago; "
        "random: N(0, 1) inputs and a N(0, 1) target at the last step only (pure dynamics); "
        "sine: predict the next sample of a sine wave with a random phase; file: sequences from an .npz (task.path); "
        "series: next-step prediction on windows of a numeric CSV (task.path); digits: scikit-learn's 8x8 digits "
        "as sequences, classified at the last step.",
    )
    length: int = Field(100, ge=1, le=100_000, description="Sequence length T.")
    batch_size: int = Field(16, ge=1, le=4096, description="Sequences per batch B.")
    symbols: int = Field(10, ge=1, le=1000, description="copy: number S of symbols to remember.")
    alphabet: int = Field(8, ge=2, le=1000, description="copy: alphabet size K.")
    delay: int = Field(10, ge=0, le=100_000, description="delayed_recall: how many steps back the target is.")
    input_size: int = Field(1, ge=1, le=4096, description="random: input size D.")
    period: float = _float(20.0, "sine: period in time steps.", ge=2, le=1e6)
    path: str | None = Field(
        None,
        min_length=1,
        max_length=4096,
        description="file: an .npz with arrays inputs (N, T, D) float, targets (N, T, O) float or (N, T) integer, "
        "optional mask (N, T) bool; series: a numeric CSV with a header row, one column per channel. Relative to the "
        "scenario file's folder.",
    )
    order: Literal["row", "pixel"] = Field("row", description="digits: row (T = 8 rows of D = 8 pixels) or pixel "
                                           "(T = 64 pixels, D = 1).")
    permute: bool = Field(False, description="digits: a fixed random order of the 64 pixels (the same for every seed).")
    holdout: float | None = _float(
        None,
        "file, digits: fraction of the sequences held out from training (a fixed split); rnnsim run reports the "
        "held-out loss and accuracy. Omit for the default: 0 for file, 0.2 for digits.",
        ge=0,
        lt=1,
    )

    _data: Any = PrivateAttr(default=None)       # rnnsim.datasets.DataInfo of a file/series/digits task
    _base_dir: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _cross_field(self) -> "TaskSection":
        if self.kind == "adding" and self.length < 2:
            raise PydanticCustomError(
                "cross_field",
                "task.length = {length}: the adding task needs task.length >= 2 (two marked positions)",
                {"length": self.length},
            )
        if self.kind == "copy" and self.length < 2 * self.symbols + 1:
            raise PydanticCustomError(
                "cross_field",
                "task.length = {length}: the copy task needs task.length >= 2*task.symbols + 1 = {need} "
                "(task.symbols = {symbols}; the lag is task.length - 2*task.symbols)",
                {"length": self.length, "need": 2 * self.symbols + 1, "symbols": self.symbols},
            )
        if self.kind == "delayed_recall" and self.delay >= self.length:
            raise PydanticCustomError(
                "cross_field",
                "task.delay = {delay}: the delayed_recall task needs task.delay < task.length (task.length = {length})",
                {"delay": self.delay, "length": self.length},
            )
        return self

    @model_validator(mode="after")
    def _data_source(self, info: ValidationInfo) -> "TaskSection":
        """file/series/digits: read and check the data (rnnsim.datasets); task.length is the data's T."""
        if self.kind in ("file", "series", "digits"):
            from rnnsim import datasets

            self._base_dir = (info.context or {}).get("base_dir")
            given = "length" in self.model_fields_set
            self._data = _data_check(lambda: datasets.info(self, self._base_dir, given))
            if self.kind != "series":
                self.length = self._data.T
        return self


class TrainingSection(BaseModel):
    """[training]: optimiser, clipping and how long to train."""

    model_config = _CONFIG

    optimizer: Literal["sgd", "momentum", "adam"] = Field("sgd", description="Optimiser.")
    learning_rate: float = _float(0.01, "Step size.", gt=0, le=10)
    momentum: float = _float(0.9, "momentum optimiser: the momentum coefficient.", ge=0, lt=1)
    clip: Literal["none", "norm", "value"] = Field(
        "none", description="Gradient clipping: none, by global norm (direction kept), or by value (each element clamped)."
    )
    clip_threshold: float = _float(1.0, "Clipping threshold theta.", gt=0, le=1e9)
    iterations: int = Field(200, ge=0, le=10_000_000, description="Training iterations run by `rnnsim run` and the TUI's train action.")
    fresh_data: bool = Field(True, description="true: a new batch from the data stream each iteration; false: one fixed batch.")


class Scenario(BaseModel):
    """A whole scenario file. Attributes mirror the file: ``sc.model.hidden_size``, ``sc.task.length``, ..."""

    model_config = ConfigDict(extra="forbid", strict=True, title="rnnsim scenario")

    scenario: ScenarioSection = Field(default_factory=ScenarioSection, description="Name, description and seed.")
    model: ModelSection = Field(default_factory=ModelSection, description="The recurrent cell and its initialisation.")
    task: TaskSection = Field(default_factory=TaskSection, description="The data the network is trained on.")
    training: TrainingSection = Field(default_factory=TrainingSection, description="Optimiser, clipping, iterations.")
    lesson: LessonSection = Field(default_factory=LessonSection, description="Steps of the lesson panel.")

    _source: str = PrivateAttr(default="<dict>")
    _base_dir: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _locked_keys(self) -> "Scenario":
        known = [f"{sec}.{key}" for sec, model in _SECTIONS.items() if sec != "lesson" for key in model.model_fields]
        for key in self.scenario.locked:
            if key not in known:
                raise PydanticCustomError(
                    "locked_key",
                    "scenario.locked: '{key}' is not a scenario key{hint} (allowed: dotted keys such as "
                    "'model.cell', 'training.clip')",
                    {"key": key, "hint": _did_you_mean(key, known)},
                )
        return self

    @model_validator(mode="after")
    def _memory_bound(self) -> "Scenario":
        need = estimate_bytes(self)
        limit = max_bytes()
        if need > limit:
            raise PydanticCustomError(
                "memory_bound",
                "model.hidden_size = {h}, task.length = {t}, task.batch_size = {b}: needs about {need} "
                "(estimate), above the limit of {limit}; reduce them or raise RNNSIM_MAX_BYTES",
                {
                    "h": self.model.hidden_size,
                    "t": self.task.length,
                    "b": self.task.batch_size,
                    "need": _human_bytes(need),
                    "limit": _human_bytes(limit),
                },
            )
        return self

    @model_validator(mode="after")
    def _weights_fit(self, info: ValidationInfo) -> "Scenario":
        """model.weights: the file's tensors must have the shapes this scenario implies (rnnsim.weights)."""
        if self.model.weights is not None:
            from rnnsim import weights

            d, o, _ = task_dims(self.task)
            base = (info.context or {}).get("base_dir")
            _data_check(lambda: weights.check(self.model, d, o, self.task.kind, base))
        return self

    def __eq__(self, other: object) -> bool:
        """Equal when every value is equal; where the scenario came from (``source``) does not matter."""
        if not isinstance(other, Scenario):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    @property
    def source(self) -> str:
        """Where the scenario came from: a file path, a built-in name, or ``"<dict>"``."""
        return self._source

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain nested dict ``{section: {key: value}}`` (``forget_bias`` may be None)."""
        return self.model_dump()

    def to_toml(self) -> str:
        """The scenario as TOML text that loads back to an equal Scenario (None values are omitted)."""
        lines: list[str] = []
        for section, values in self.to_dict().items():
            if lines:
                lines.append("")
            lines.append(f"[{section}]")
            for key, value in values.items():
                if value is None:
                    continue
                lines.append(f"{key} = {_toml_value(value)}")
        return "\n".join(lines) + "\n"

    def with_changes(self, changes: Mapping[str, Any]) -> "Scenario":
        """A new validated Scenario with dotted keys changed, e.g. ``{"model.cell": "lstm"}``.

        Raises ScenarioError (same messages as for files, the source shown as ``vanishing (override model.cell)``).
        """
        return _apply_changes(self.to_dict(), dict(changes), self.source, self._base_dir)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> "Scenario":
        """Validate a nested dict as read from TOML; raises ScenarioError."""
        return _validate(data, source)


# --------------------------------------------------------------------------------------------------------
# Sizes and the memory bound
# --------------------------------------------------------------------------------------------------------


def task_dims(task: TaskSection) -> tuple[int, int, bool]:
    """(D, O, classification) for a task: input size, output size, and whether targets are class indices.

    adding: (2, 1); copy: (K + 2, K + 1, classification); delayed_recall: (1, 1); random: (input_size, 1);
    sine: (1, 1). The single place these sizes are defined.
    """
    kind = task.kind
    if kind == "adding":
        return 2, 1, False
    if kind == "copy":
        return task.alphabet + 2, task.alphabet + 1, True
    if kind == "delayed_recall":
        return 1, 1, False
    if kind == "random":
        return task.input_size, 1, False
    if kind == "sine":
        return 1, 1, False
    if kind in ("file", "series", "digits"):  # from the data (rnnsim.datasets), read when the task was validated
        if task._data is None:
            raise ValueError(f"task.kind = {kind!r}: the task was not validated (its data is unknown)")
        return task._data.D, task._data.O, task._data.classification
    raise ValueError(f"unknown task kind {kind!r}")


def _data_check(check):
    """Run a weights/data check; its one-line error becomes a validation error shown as it is."""
    from rnnsim.datafiles import DataFileError

    try:
        return check()
    except DataFileError as exc:
        raise PydanticCustomError("data_file", "{msg}", {"msg": str(exc)}) from None


def estimate_bytes(sc: Scenario) -> int:
    """Rough upper estimate of the memory a Simulation of ``sc`` allocates, in bytes: asks the cell
    (rnnsim/cells/base.py's ``estimate_bytes``: the inputs, targets and outputs, the cell's buffers in the mode it
    would run in, the attention readout's, and four copies of the weights)."""
    from rnnsim.cells import CELLS, estimate_bytes as cell_bytes

    d, o, _ = task_dims(sc.task)
    itemsize = 8 if sc.model.dtype == "float64" else 4
    cells = cell_bytes(CELLS[sc.model.cell], sc.model, sc.task.length, sc.task.batch_size, d, o, itemsize)
    return cells + _data_bytes(sc.task)


def _data_bytes(task) -> int:
    """The data a file/series/digits task holds in memory (0 for the generated tasks)."""
    return task._data.nbytes if task._data is not None else 0


def max_bytes() -> int:
    """The memory bound: ``RNNSIM_MAX_BYTES`` if set to a positive integer (suffixes K/M/G/T allowed), else 8 GiB."""
    raw = os.environ.get("RNNSIM_MAX_BYTES", "").strip()
    if not raw:
        return DEFAULT_MAX_BYTES
    m = re.fullmatch(r"(\d+)\s*([kKmMgGtT]?)(?:i?[bB])?", raw)
    if not m or int(m.group(1)) == 0:
        raise ScenarioError(
            f"RNNSIM_MAX_BYTES = {safe_text.show(raw)}: allowed: a positive number of bytes, optionally with K, M, G or T (e.g. 16G)",
            source="environment",
        )
    scale = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}[m.group(2).lower()]
    return int(m.group(1)) * scale


def _human_bytes(n: int) -> str:
    for unit, size in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


# --------------------------------------------------------------------------------------------------------
# Validation and error messages
# --------------------------------------------------------------------------------------------------------

_SECTIONS: dict[str, type[BaseModel]] = {
    "scenario": ScenarioSection,
    "model": ModelSection,
    "task": TaskSection,
    "training": TrainingSection,
    "lesson": LessonSection,
}


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


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


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


def _builtin_dir() -> Path | None:
    try:
        packaged = resources.files("rnnsim") / "scenarios"
        if packaged.is_dir():
            return Path(str(packaged))
    except (ModuleNotFoundError, OSError, TypeError):
        pass
    checkout = Path(__file__).resolve().parent.parent / "scenarios"
    if checkout.is_dir():
        return checkout
    return None


def builtin_scenarios() -> dict[str, Path]:
    """Built-in scenario names -> file paths, sorted by name."""
    directory = _builtin_dir()
    if directory is None:
        return {}
    return {p.stem: p for p in sorted(directory.glob("*.toml"), key=lambda p: p.stem) if p.is_file()}


def _builtin_list() -> str:
    names = list(builtin_scenarios())
    return ", ".join(names) if names else "(none found)"


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
