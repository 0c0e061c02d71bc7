"""Weights from and to files: ``[model] weights = "PATH"``, ``Simulation.save_weights`` and ``--save-weights``.

Formats, by suffix: ``.safetensors`` (read and written with ``safetensors.numpy``; the ``data`` extra) and ``.npz``
(NumPy, ``allow_pickle=False``). No pickle anywhere: a ``torch.save`` file renamed ``.safetensors`` is refused
with a line saying how to save it instead.

Names are PyTorch's (DESIGN.md §2): a ``torch.nn.RNNCell/LSTMCell/GRUCell`` state_dict (``weight_ih``,
``weight_hh``, ``bias_ih``, ``bias_hh``), or a ``torch.nn.RNN/LSTM/GRU`` one (the same names with ``_l0``; with
``model.num_layers = N`` ``_l0`` .. ``_l{N-1}``, and a file with another layer count is refused naming both); a whole model's state_dict whose recurrent layer sits under one prefix (``lstm.weight_ih_l0``) works too.
``ln.*`` (LayerNorm RNN; per layer ``ln.weight_l1`` in a stack), ``attn.*`` (attention cell and readout) as rnnsim names them. The readout
(``readout.weight``, ``readout.bias``) is optional: without it the scenario's initial readout is kept. The file's
weights replace the initialised ones, so ``init``, ``recurrent_scale`` and ``forget_bias`` have no effect on them.
Files are written with the ``_l0`` form, so ``torch.nn.LSTM(...).load_state_dict(sd, strict=False)`` takes the
recurrent part (``readout.*`` then come back as unexpected keys: load them into an ``nn.Linear``) and, without
the suffix, ``LSTMCell`` does.

Every problem is one :class:`~rnnsim.datafiles.DataFileError` line naming the file, the tensor, the shape found
and the shape the scenario implies.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from rnnsim.datafiles import DataFileError, cached, check_file, need, resolve, show

__all__ = ["SUFFIXES", "RECURRENT", "expected_shapes", "load", "check", "apply", "save", "check_save_path"]

SUFFIXES = (".safetensors", ".npz")
#: the names that carry PyTorch's layer suffix in torch.nn.RNN/LSTM/GRU
RECURRENT = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
_GATES = {"rnn": 1, "lstm": 4, "gru": 3}
_LAYER = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)$")
_FLOATS = {"F16": "float16", "F32": "float32", "F64": "float64"}
_KEY = "model.weights"


def expected_shapes(model, D: int, O: int) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    """The shapes the scenario implies, by rnnsim name, and how each follows from the scenario (for messages).

    The readout's names are included; :func:`check` treats them as optional. A test checks these against
    ``rnnsim.cells.init_params`` for every cell, so the two cannot drift apart.
    """
    H, cell = model.hidden_size, model.cell
    shapes: dict[str, tuple[int, ...]] = {}
    how: dict[str, str] = {}
    if cell == "attention":
        shapes |= {"attn.embed.weight": (H, D), "attn.embed.bias": (H,)}
        how |= {"attn.embed.weight": "H × D", "attn.embed.bias": "H"}
        for part in ("query", "key", "value", "out"):
            shapes[f"attn.{part}.weight"] = (H, H)
            how[f"attn.{part}.weight"] = "H × H"
        shapes["attn.out.bias"] = (H,)
        how["attn.out.bias"] = "H"
    else:
        G = _GATES[cell]
        g = f"{G}·H" if G > 1 else "H"
        N = getattr(model, "num_layers", 1)
        for layer in range(N):
            sfx = f"_l{layer}" if N > 1 else ""
            d, dn = (D, "D") if layer == 0 else (H, "H")   # layer l > 0 reads layer l − 1's h_t
            shapes |= {f"weight_ih{sfx}": (G * H, d), f"weight_hh{sfx}": (G * H, H), f"bias_ih{sfx}": (G * H,),
                       f"bias_hh{sfx}": (G * H,)}
            how |= {f"weight_ih{sfx}": f"{g} × {dn}", f"weight_hh{sfx}": f"{g} × H", f"bias_ih{sfx}": g,
                    f"bias_hh{sfx}": g}
            if cell == "rnn" and model.layernorm:
                shapes |= {f"ln.weight{sfx}": (H,), f"ln.bias{sfx}": (H,)}
                how |= {f"ln.weight{sfx}": "H", f"ln.bias{sfx}": "H"}
    if model.readout == "attention":
        shapes |= {"readout.weight": (O, 2 * H), "readout.bias": (O,), "attn.query.weight": (H, H)}
        how |= {"readout.weight": "O × 2H", "readout.bias": "O", "attn.query.weight": "H × H"}
    else:
        shapes |= {"readout.weight": (O, H), "readout.bias": (O,)}
        how |= {"readout.weight": "O × H", "readout.bias": "O"}
    return shapes, how


def _readout_names(model) -> set[str]:
    names = {"readout.weight", "readout.bias"}
    if model.readout == "attention" and model.cell != "attention":
        names.add("attn.query.weight")
    return names


# ------------------------------------------------------------------------------------------------ reading
def _read_safetensors(path: Path, label: str) -> dict[str, np.ndarray]:
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"PK\x03\x04"):
        raise DataFileError(f"{label}: not a safetensors file: it is a zip archive (torch.save's format, a pickle); "
                            "save with safetensors.torch.save_file(model.state_dict(), PATH)")
    if head[:1] == b"\x80":
        raise DataFileError(f"{label}: not a safetensors file: it is a Python pickle, which rnnsim never loads; "
                            "save with safetensors.torch.save_file(model.state_dict(), PATH)")
    need("safetensors.numpy", "reading .safetensors weights", "safetensors")
    from safetensors import SafetensorError, safe_open

    out: dict[str, np.ndarray] = {}
    try:
        with safe_open(os.fspath(path), framework="np") as f:
            for name in f.keys():
                dtype = f.get_slice(name).get_dtype()
                if dtype not in _FLOATS:
                    extra = "; NumPy cannot read bfloat16: save tensor.float() instead" if dtype == "BF16" else ""
                    raise DataFileError(f"{label}: tensor {show(name)} has dtype {dtype}; allowed: "
                                        f"{', '.join(_FLOATS)} (float16/32/64){extra}")
                out[name] = np.array(f.get_tensor(name), copy=True)
    except SafetensorError as exc:
        raise DataFileError(f"{label}: not a valid safetensors file ({exc})") from None
    except OSError as exc:
        raise DataFileError(f"{label}: cannot read: {exc.strerror or exc}") from None
    return out


def _read_npz(path: Path, label: str) -> dict[str, np.ndarray]:
    import zipfile
    import zlib

    out: dict[str, np.ndarray] = {}
    try:
        with np.load(path, allow_pickle=False) as z:
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise DataFileError(f"{label}: not an .npz archive (a single .npy array); save with np.savez")
            for name in z.files:
                try:
                    out[name] = z[name]
                except ValueError:
                    raise DataFileError(f"{label}: tensor {show(name)} is an object array (a pickle); allowed: "
                                        "float16/32/64 arrays") from None
    except DataFileError:
        raise
    except zipfile.BadZipFile as exc:
        raise DataFileError(f"{label}: not a valid .npz archive ({exc})") from None
    except ValueError as exc:
        if "pickle" in str(exc):
            raise DataFileError(f"{label}: not an .npz archive: it holds pickled data, which rnnsim never loads; "
                                "save with np.savez") from None
        raise DataFileError(f"{label}: not a valid .npz archive ({exc})") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise DataFileError(f"{label}: not a valid .npz archive ({getattr(exc, 'strerror', None) or exc})") from None
    for name, a in out.items():
        if a.dtype.kind != "f":
            raise DataFileError(f"{label}: tensor {show(name)} has dtype {a.dtype}; allowed: float16, float32, "
                                "float64")
    return out


def _read(path: Path, label: str) -> dict[str, np.ndarray]:
    arrays = _read_safetensors(path, label) if path.suffix.lower() == ".safetensors" else _read_npz(path, label)
    if not arrays:
        raise DataFileError(f"{label}: the file holds no tensors")
    for name, a in arrays.items():
        if not np.isfinite(a).all():
            raise DataFileError(f"{label}: tensor {show(name)} has non-finite values (NaN or inf)")
    return arrays


def load(value: str, base_dir=None) -> tuple[Path, dict[str, np.ndarray]]:
    """The file's tensors under their own names (cached by path, size and mtime). Raises DataFileError."""
    from rnnsim.scenario import max_bytes

    path = resolve(value, base_dir)
    st = check_file(path, _KEY, value, SUFFIXES, max_bytes())
    label = f"{_KEY} = {show(value)}"
    key = ("weights", os.fspath(path.resolve()), st.st_size, st.st_mtime_ns)
    return path, cached(key, lambda: _read(path, label))


# ------------------------------------------------------------------------------------------------ checking
def _rename(arrays: dict[str, np.ndarray], label: str, num_layers: int = 1):
    """rnnsim names (a common prefix of the recurrent tensors dropped; one layer: ``_l0`` dropped), and each one's
    name in the file. A file whose layer count differs from ``num_layers`` is refused naming both."""
    prefix = ""
    for name in arrays:
        for base in ("weight_hh_l0", "weight_hh"):
            if name.endswith(base) and name != base and name[: -len(base)].endswith("."):
                prefix = name[: -len(base)]
                break
        if prefix:
            break
    if prefix and any(k in arrays for k in ("weight_hh", "weight_hh_l0")):
        prefix = ""
    strip = lambda name: name[len(prefix):] if prefix and name.startswith(prefix) else name  # noqa: E731
    layers = {int(m.group(2)) if m else 0 for name in arrays
              for m in [_LAYER.match(strip(name))] if m or strip(name) in RECURRENT}
    found = max(layers) + 1 if layers else 0
    if layers and found != num_layers:
        top = next((n for n in arrays if strip(n) == f"weight_hh_l{found - 1}"), None)
        shown = f" (up to {show(top)})" if top and found > 1 else ""
        raise DataFileError(f"{label}: the file holds {found} recurrent layer{'s' if found > 1 else ''}{shown}; the "
                            f"scenario has model.num_layers = {num_layers}; set model.num_layers = {found} or save a "
                            f"model with num_layers={num_layers}")
    out: dict[str, np.ndarray] = {}
    original: dict[str, str] = {}
    for name, a in arrays.items():
        short = strip(name)
        m = _LAYER.match(short)
        if m and num_layers == 1:
            short = m.group(1)
        elif not m and short in RECURRENT and num_layers > 1:
            short = f"{short}_l0"
        if short in out:
            raise DataFileError(f"{label}: tensor {show(name)} appears twice (with and without the _l0 suffix)")
        out[short] = a
        original[short] = name
    return out, original


def check(model, D: int, O: int, task_kind: str, base_dir=None) -> dict[str, np.ndarray]:
    """The file's tensors under rnnsim names, each checked against the shape the scenario implies (the readout may
    be absent). Raises DataFileError with one line for the first problem."""
    path, raw = load(model.weights, base_dir)
    label = f"{_KEY} = {show(model.weights)}"
    arrays, original = _rename(raw, label, getattr(model, "num_layers", 1))
    shapes, how = expected_shapes(model, D, O)
    readout = _readout_names(model)
    allowed = [n + ("[_l0]" if n in RECURRENT else "") for n in shapes]
    if len(allowed) > 10:   # a stack: name the pattern, not every layer
        allowed = [n for n in allowed if not re.search(r"_l[1-9]\d*$", n)] + ["... _l" + str(model.num_layers - 1)]
    extra = sorted(set(arrays) - set(shapes))
    if extra:
        names = ", ".join(show(original[n]) for n in extra[:6]) + (f" (+{len(extra) - 6} more)" if len(extra) > 6 else "")
        raise DataFileError(f"{label}: unexpected tensors {names}; allowed for cell {model.cell}: "
                            f"{', '.join(allowed)}")
    present_readout = readout & set(arrays)
    required = [n for n in shapes if n not in readout or present_readout]
    sizes = (f"for cell {model.cell} with H = model.hidden_size = {model.hidden_size}, D = {D} (the input size of "
             f"task {task_kind}), O = {O} (its output size)")
    for name in required:
        if name not in arrays:
            form = f" (or {name}_l0)" if name in RECURRENT and getattr(model, "num_layers", 1) == 1 else ""
            what = " (the readout is optional, but all of it or none)" if name in readout else ""
            raise DataFileError(f"{label}: tensor {show(name)}{form} is missing{what}; the scenario implies shape "
                                f"{shapes[name]} = {how[name]} {sizes}; the file has {', '.join(map(show, raw))}")
        if arrays[name].shape != shapes[name]:
            raise DataFileError(f"{label}: tensor {show(original[name])} has shape {tuple(arrays[name].shape)}; the scenario "
                                f"implies {shapes[name]} = {how[name]} {sizes}")
    return arrays


def apply(params: dict[str, np.ndarray], scenario) -> None:
    """Copy the scenario's weights file into ``params`` (cast to their dtype): the Simulation's hook after init."""
    from rnnsim.scenario import task_dims

    m = scenario.model
    D, O, _ = task_dims(scenario.task)
    arrays = check(m, D, O, scenario.task.kind, getattr(scenario, "_base_dir", None))
    for name, a in arrays.items():
        params[name][...] = a


# ------------------------------------------------------------------------------------------------ writing
def check_save_path(path: str | os.PathLike[str]) -> Path:
    """Check a weights output path before a run: a known suffix, an existing folder. Raises ExportError."""
    from rnnsim.export import ExportError, check_output_path

    p = check_output_path(path, SUFFIXES, "weights")
    if p.suffix.lower() == ".safetensors":
        try:
            need("safetensors.numpy", "writing .safetensors weights", "safetensors")
        except DataFileError as exc:
            raise ExportError(str(exc)) from None
    return p


def save(params: dict[str, np.ndarray], path: str | os.PathLike[str], metadata: dict[str, str] | None = None) -> Path:
    """Write ``params`` with PyTorch names in the ``_l0`` form (weight_ih_l0, ...), atomically: a reader never
    sees half a file, and an existing file is replaced only once the new one is complete."""
    from rnnsim.export import _atomic_write

    p = check_save_path(path)
    # one layer: weight_ih → weight_ih_l0; a stack's names already carry their _lN
    tensors = {(f"{k}_l0" if k in RECURRENT else k): np.ascontiguousarray(v) for k, v in params.items()}
    if p.suffix.lower() == ".safetensors":
        import safetensors.numpy

        meta = {"format": "pt", **(metadata or {})}
        data = safetensors.numpy.save(tensors, metadata=meta)
        _atomic_write(p, lambda f: f.write(data))
    else:
        _atomic_write(p, lambda f: np.savez(f, **tensors))
    return p
