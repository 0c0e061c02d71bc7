"""The scenario schema: the pydantic models of the four sections (and the lesson), their ranges and bounds, the
memory estimate and bound, and :class:`ScenarioError`.

Split from rnnsim/scenario.py (loading, overrides, messages, TOML output), which re-exports every name here; the
few methods of :class:`Scenario` that load or write call back into it lazily. No NumPy-heavy code, Numba or Textual.
"""

from __future__ import annotations

import difflib
import os
import re
from typing import Annotated, Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from rnnsim import safe_text
from rnnsim.scenario_guards import PlainText

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
    num_layers: int = Field(
        1,
        ge=1,
        le=8,
        description="Stacked recurrent layers (rnn, lstm, gru; not attention), as torch.nn.RNN/LSTM/GRU(num_layers=N) "
        "without dropout: layer l > 0 reads layer l-1's h_t. Parameters are then named weight_ih_l0 ... bias_hh_l{N-1}.",
    )
    weights: str | None = Field(
        None,
        min_length=1,
        max_length=4096,
        description="Start from saved weights: a .safetensors or .npz file with PyTorch names (a torch.nn.RNNCell/"
        "LSTMCell/GRUCell state_dict, or a torch.nn.RNN/LSTM/GRU one with _l0.._l{N-1} for model.num_layers = N; "
        "readout.* optional), relative "
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

    @model_validator(mode="after")
    def _attention_layers(self) -> "ModelSection":
        if self.cell == "attention" and self.num_layers != 1:
            raise PydanticCustomError(
                "cross_field",
                "model.num_layers = {n}: model.cell = 'attention' runs one self-attention layer; allowed: "
                "model.num_layers = 1 (stacked layers are for rnn, lstm and gru)",
                {"n": self.num_layers},
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
        from rnnsim import memory

        parts = memory.estimate_parts(self)
        limit = max_bytes()
        if sum(parts.values()) > limit:
            # the message names the largest part: H·T·B, T² (attention), the alphabet, the input size...
            raise PydanticCustomError("memory_bound", "{msg}", {"msg": memory.refusal(self, parts, limit)})
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

    def to_toml(self, folder: str | os.PathLike[str] | None = None, absolute: bool = False) -> str:
        """The scenario as TOML text that loads back to an equal Scenario (None values are omitted).

        ``model.weights`` and ``task.path`` are relative to the scenario file's folder. Written as they are by
        default (the text then belongs in that folder); with ``folder``, a relative one is rewritten relative to
        ``folder`` (where the text will be saved; unchanged when that is the scenario's own folder); with
        ``absolute``, it becomes an absolute path. A scenario built in memory counts the current folder as its own.
        """
        from rnnsim.scenario import _toml_value as toml_value

        data = self.to_dict()
        if folder is not None or absolute:
            own = os.path.abspath(self._base_dir or os.curdir)
            there = os.path.abspath(os.fspath(folder)) if folder is not None else None
            for section, key in (("model", "weights"), ("task", "path")):
                value = data[section][key]
                if value is None or os.path.isabs(value) or (there == own and not absolute):
                    continue
                full = os.path.normpath(os.path.join(own, value))
                data[section][key] = full if absolute or there is None else _relative(full, there)
        lines: list[str] = []
        for section, values in data.items():
            if lines:
                lines.append("")
            lines.append(f"[{section}]")
            for key, value in values.items():
                if value is None:
                    continue
                lines.append(f"{key} = {toml_value(value)}")
        return "\n".join(lines) + "\n"

    def with_changes(self, changes: Mapping[str, Any]) -> "Scenario":
        """A new validated Scenario with dotted keys changed, e.g. ``{"model.cell": "lstm"}``.

        Raises ScenarioError (same messages as for files, the source shown as ``vanishing (override model.cell)``).
        """
        from rnnsim.scenario import _apply_changes

        return _apply_changes(self.to_dict(), dict(changes), self.source, self._base_dir)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> "Scenario":
        """Validate a nested dict as read from TOML; raises ScenarioError."""
        from rnnsim.scenario import _validate

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
    """Upper estimate of the peak memory of a Simulation of ``sc``'s pass, in bytes: the cell's buffers in the
    mode it would run in, the T² terms of attention, inputs, outputs, NumPy temporaries, four copies of the
    weights and a data task's data (rnnsim/memory.py ``estimate_parts``; checked against measured peak RSS)."""
    from rnnsim import memory

    return sum(memory.estimate_parts(sc).values())


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



_SECTIONS: dict[str, type[BaseModel]] = {
    "scenario": ScenarioSection,
    "model": ModelSection,
    "task": TaskSection,
    "training": TrainingSection,
    "lesson": LessonSection,
}



def _relative(path: str, folder: str) -> str:
    """``path`` relative to ``folder``; absolute when there is no relative way (another drive)."""
    try:
        return os.path.relpath(path, folder)
    except ValueError:
        return path


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""

