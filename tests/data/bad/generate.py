"""The generated part of the bad-input corpus (issue 15): malformed scenario values for every schema field, sweep
files, data files (.npz, .csv, weights) with the scenarios that point at them, and `--set` strings.

    python tests/data/bad/generate.py          # (re)writes tests/data/bad/gen/ and gen/MANIFEST.json

Deterministic: the same bytes every run (no timestamps: .npz archives are written with a fixed date), which
tests/unit/test_bad_corpus.py checks. The words each message must contain come from the schema itself (the
dotted key, a bound from its Field, a choice of its Literal) or from the file's defect, never from the message.

MANIFEST.json: ``{case: {"kind": scenario|sweep|set, "file" or "set": ..., "words": [...]}}`` (sweeps also
"tui_words": what the TUI start says); the hand-written
files beside this script keep their own MANIFEST.json (scenario files only).
"""

from __future__ import annotations

import io
import json
import typing
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
GEN = HERE / "gen"
FIXED_DATE = (1980, 1, 1, 0, 0, 0)


def npz(arrays: dict[str, np.ndarray]) -> bytes:
    """An .npz archive like np.savez writes, with a fixed date (np.savez stamps the current time)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, arr in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asanyarray(arr), allow_pickle=True)
            z.writestr(zipfile.ZipInfo(name + ".npy", FIXED_DATE), member.getvalue())
    return buf.getvalue()


def _toml_value(v) -> str:
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v)


def _schema_cases() -> dict[str, tuple[str, list[str]]]:
    """Per field of [model], [task], [training]: a wrong type, each bound crossed, a word outside a Literal."""
    from annotated_types import Ge, Gt, Le, Lt

    from rnnsim.schema import ModelSection, TaskSection, TrainingSection

    out: dict[str, tuple[str, list[str]]] = {}
    for sec, model in (("model", ModelSection), ("task", TaskSection), ("training", TrainingSection)):
        for name, field in model.model_fields.items():
            key = f"{sec}.{name}"
            ann = field.annotation
            args = [a for a in typing.get_args(ann) if a is not type(None)]
            base = args[0] if args and typing.get_origin(ann) is typing.Union else ann
            if typing.get_origin(base) is typing.Literal:
                choices = typing.get_args(base)
                out[f"{sec}_{name}_literal"] = (f'[{sec}]\n{name} = "zzz"\n', [key, "'zzz'", repr(choices[0])])
                out[f"{sec}_{name}_type"] = (f"[{sec}]\n{name} = 12\n", [key, "wrong type"])
                continue
            if base is bool:
                out[f"{sec}_{name}_type"] = (f'[{sec}]\n{name} = "yes"\n', [key, "wrong type"])
                continue
            if base in (int, float):
                out[f"{sec}_{name}_type"] = (f'[{sec}]\n{name} = "7"\n', [key, "wrong type"])
                out[f"{sec}_{name}_array"] = (f"[{sec}]\n{name} = [1, 2]\n", [key])
                for m in field.metadata:
                    for cls, attr, step in ((Ge, "ge", -1), (Gt, "gt", 0), (Le, "le", 1), (Lt, "lt", 0)):
                        if isinstance(m, cls):
                            bound = getattr(m, attr)
                            bad = bound + step if base is int else (bound + step if step else bound)
                            if base is int and isinstance(bad, float):
                                bad = int(bad)
                            out[f"{sec}_{name}_{attr}"] = (f"[{sec}]\n{name} = {_toml_value(bad)}\n", [key])
                continue
            if base is str:
                out[f"{sec}_{name}_type"] = (f"[{sec}]\n{name} = 3\n", [key, "wrong type"])
    return out


SWEEP_HEAD = '[sweep]\nname = "bad"\nscenario = "vanishing"\niterations = 1\n'
SWEEPS: dict[str, tuple[str, list[str]]] = {
    "sweep_unknown_key": (SWEEP_HEAD + '[sweep.grid]\n"model.hidden_siz" = [4]\n', ["model.hidden_siz", "hidden_size"]),
    "sweep_zero_hidden": (SWEEP_HEAD + '[sweep.grid]\n"model.hidden_size" = [4, 0]\n', ["model.hidden_size = 0"]),
    "sweep_bad_cell": (SWEEP_HEAD + '[sweep.grid]\n"model.cell" = ["rnn", "lstn"]\n', ["model.cell", "'lstn'"]),
    "sweep_float_length": (SWEEP_HEAD + '[sweep.grid]\n"task.length" = [12.5]\n', ["task.length", "12.5"]),
    "sweep_not_array": (SWEEP_HEAD + '[sweep.grid]\n"model.hidden_size" = 4\n', ["model.hidden_size", "array"]),
    "sweep_empty_array": (SWEEP_HEAD + '[sweep.grid]\n"model.hidden_size" = []\n', ["model.hidden_size", "array"]),
    "sweep_twice": (SWEEP_HEAD + '[sweep.grid]\n"model.hidden_size" = [4, 4]\n', ["model.hidden_size", "twice"]),
    "sweep_seed_in_grid": (SWEEP_HEAD + '[sweep.grid]\n"scenario.seed" = [1, 2]\n', ["scenario.seed", "sweep.seeds"]),
    "sweep_copy_short": (SWEEP_HEAD + '[sweep.grid]\n"task.kind" = ["copy"]\n"task.length" = [30, 5]\n',
                         ["task.length = 5", "copy"]),
    "sweep_no_grid": (SWEEP_HEAD, ["sweep.grid"]),
    "sweep_unknown_scenario": ('[sweep]\nscenario = "no-such-lesson"\n[sweep.grid]\n"model.hidden_size" = [4]\n',
                               ["no-such-lesson"]),
    "sweep_esc_key": (SWEEP_HEAD + '[sweep.grid]\n"model.\\u001b]0;pwned\\u0007" = [4]\n', ["\\x1b"]),
    "sweep_unterminated": (SWEEP_HEAD + '[sweep.grid]\n"model.hidden_size = [4]\n', ["line"]),
    "sweep_huge_grid_value": (SWEEP_HEAD + '[sweep.grid]\n"model.hidden_size" = [100000]\n',
                              ["model.hidden_size = 100000"]),
}


def _data_cases() -> tuple[dict[str, bytes], dict[str, tuple[str, list[str]]]]:
    """Data files (bytes by name) and the scenarios that point at them."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 5, 2))
    y = rng.standard_normal((8, 5, 1))
    files = {
        "not_a_zip.npz": b"this is not a zip archive\n",
        "no_targets.npz": npz({"inputs": x}),
        "extra_array.npz": npz({"inputs": x, "targets": y, "labels": y}),
        "inputs_2d.npz": npz({"inputs": x[:, :, 0], "targets": y}),
        "nan_inputs.npz": npz({"inputs": np.where(x > 1.5, np.nan, x), "targets": y}),
        "object_array.npz": npz({"inputs": np.array([{"a": 1}] * 8, dtype=object), "targets": y}),
        "mismatched_n.npz": npz({"inputs": x, "targets": y[:5]}),
        "int_inputs.npz": npz({"inputs": (x * 10).astype(np.int64), "targets": y}),
        "empty.csv": b"",
        "header_only.csv": b"a,b\n",
        "words.csv": b"a,b\n1,2\nthree,4\n5,6\n",
        "ragged.csv": b"a,b\n1,2\n3\n5,6\n",
        "nan.csv": b"a,b\n1,2\nnan,4\n5,6\n",
        "weights_not_zip.npz": b"PK but not really\n",
        "weights_wrong_shape.npz": npz({"weight_ih_l0": np.zeros((3, 1)), "weight_hh_l0": np.zeros((3, 3)),
                                        "bias_ih_l0": np.zeros(3), "bias_hh_l0": np.zeros(3)}),
        "weights.safetensors": b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}",
    }
    file_task = '[task]\nkind = "file"\npath = "{p}"\nbatch_size = 4\n'
    series_task = '[task]\nkind = "series"\npath = "{p}"\nlength = 2\nbatch_size = 1\n'
    weights = '[model]\nhidden_size = 8\nweights = "{p}"\n[task]\nkind = "adding"\n'
    scen = {
        "data_not_a_zip": (file_task.format(p="not_a_zip.npz"), ["not_a_zip.npz", "not an .npz"]),
        "data_no_targets": (file_task.format(p="no_targets.npz"), ["no_targets.npz", "targets"]),
        "data_extra_array": (file_task.format(p="extra_array.npz"), ["extra_array.npz", "labels"]),
        "data_inputs_2d": (file_task.format(p="inputs_2d.npz"), ["inputs_2d.npz", "inputs"]),
        "data_nan_inputs": (file_task.format(p="nan_inputs.npz"), ["nan_inputs.npz"]),
        "data_object_array": (file_task.format(p="object_array.npz"), ["object_array.npz"]),
        "data_mismatched_n": (file_task.format(p="mismatched_n.npz"), ["mismatched_n.npz"]),
        "data_int_inputs": (file_task.format(p="int_inputs.npz"), ["int_inputs.npz", "inputs"]),
        "data_missing_file": (file_task.format(p="no-such-file.npz"), ["no-such-file.npz"]),
        "data_empty_csv": (series_task.format(p="empty.csv"), ["empty.csv"]),
        "data_header_only_csv": (series_task.format(p="header_only.csv"), ["header_only.csv"]),
        "data_words_csv": (series_task.format(p="words.csv"), ["words.csv", "three"]),
        "data_ragged_csv": (series_task.format(p="ragged.csv"), ["ragged.csv"]),
        "data_nan_csv": (series_task.format(p="nan.csv"), ["nan.csv"]),
        "data_csv_as_npz": (file_task.format(p="nan.csv"), ["nan.csv"]),
        "weights_not_zip": (weights.format(p="weights_not_zip.npz"), ["weights_not_zip.npz"]),
        "weights_wrong_shape": (weights.format(p="weights_wrong_shape.npz"), ["weights_wrong_shape.npz", "shape"]),
        "weights_broken_safetensors": (weights.format(p="weights.safetensors"), ["weights.safetensors"]),
        "weights_missing": (weights.format(p="nowhere.npz"), ["nowhere.npz"]),
        "weights_bad_suffix": (weights.format(p="nan.csv"), ["nan.csv"]),
    }
    return files, scen


#: `--set` strings (run against the built-in `vanishing`) and the words their message must contain
SETS: dict[str, tuple[str, list[str]]] = {
    "set_no_equals": ("model.hidden_size", ["model.hidden_size", "KEY=VALUE"]),
    "set_no_key": ("=4", ["=4"]),
    "set_not_a_number": ("model.hidden_size=abc", ["model.hidden_size"]),
    "set_unknown_key": ("model.hiden_size=4", ["model.hiden_size", "hidden_size"]),
    "set_unknown_section": ("modle.cell=rnn", ["modle"]),
    "set_out_of_range": ("task.length=-1", ["task.length"]),
    "set_bad_literal": ("model.cell=lstn", ["model.cell", "'rnn'"]),
    "set_bad_clip": ("training.clip=sometimes", ["training.clip", "'none'"]),
    "set_overflow": ("model.hidden_size=1e400", ["model.hidden_size"]),
    "set_escape_key": ("\x1b]0;pwned\x07=1", ["\\x1b"]),
    "set_escape_value": ("scenario.name=\x1b[2Jx", ["scenario.name"]),
    "set_array": ("task.length=[1, 2]", ["task.length"]),
    "set_bad_bool": ("model.layernorm=maybe", ["model.layernorm"]),
    "set_float_seed": ("scenario.seed=1.5", ["scenario.seed"]),
    "set_deep_key": ("a.b.c.d=1", ["a.b.c.d"]),
    "set_section_only": ("model=4", ["model"]),
    "set_locked_list": ("scenario.locked=[\"model.nope\"]", ["model.nope"]),
    "set_escape_section": ("\x1b[31m.cell=rnn", ["\\x1b"]),
    "set_nan": ("training.learning_rate=nan", ["training.learning_rate"]),
    "set_inf": ("model.recurrent_scale=inf", ["model.recurrent_scale"]),
    "set_long_value": ("scenario.description=" + "x" * 5000, ["scenario.description"]),
}


def build() -> tuple[dict[str, bytes], dict[str, dict]]:
    """(files by relative name, manifest) of the generated corpus."""
    files: dict[str, bytes] = {}
    manifest: dict[str, dict] = {}
    for case, (text, words) in {**_schema_cases()}.items():
        files[case + ".toml"] = text.encode()
        manifest[case] = {"kind": "scenario", "file": case + ".toml", "words": words}
    for case, (text, words) in SWEEPS.items():
        files[case + ".toml"] = text.encode()
        # the TUI takes scenarios: for a sweep file it says so (unless the file does not even parse)
        tui = words if case == "sweep_unterminated" else ["a sweep file, not a scenario", case + ".toml"]
        manifest[case] = {"kind": "sweep", "file": case + ".toml", "words": words, "tui_words": tui}
    data, scen = _data_cases()
    files.update(data)
    for case, (text, words) in scen.items():
        files[case + ".toml"] = text.encode()
        manifest[case] = {"kind": "scenario", "file": case + ".toml", "words": words}
    for case, (arg, words) in SETS.items():
        manifest[case] = {"kind": "set", "set": arg, "words": words}
    files["MANIFEST.json"] = (json.dumps(manifest, indent=1, ensure_ascii=True) + "\n").encode()
    return files, manifest


def main() -> None:
    files, _ = build()
    GEN.mkdir(exist_ok=True)
    for old in GEN.iterdir():
        if old.name not in files:
            old.unlink()
    for name, data in files.items():
        (GEN / name).write_bytes(data)
    print(f"{len(files)} files in {GEN}")


if __name__ == "__main__":
    main()
