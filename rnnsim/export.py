"""Write run results as JSON, CSV or NPZ, atomically.

``result`` is a dict with:

- ``"scenario"``: the scenario as a nested dict (``Scenario.to_dict()``);
- ``"history"``: a list of dicts, one per iteration (iteration, loss, grad_norm, clipped_norm, clipped, finite, ...);
- ``"summary"``: a dict of scalars (or strings / None);
- ``"arrays"``: a dict name -> numpy array (gradient_profile, ...).

Formats, chosen by the suffix of the path:

- ``.json``: everything; arrays as nested lists; non-finite floats as the strings ``"nan"``, ``"inf"``,
  ``"-inf"`` so the file stays valid JSON.
- ``.csv``: one row per iteration of ``history`` (header row first); booleans as ``true``/``false``. The gradient
  profile goes beside it, ``NAME.profile.csv``: ``step,grad_norm_first,grad_norm_last`` (‖dL/dh_t‖ of the first and
  the last iteration), one row per time step.
- ``.npz``: every array under its own name, each history column as ``history_<column>``, the scenario and the
  summary as JSON strings ``scenario_json`` and ``summary_json`` (loadable with ``allow_pickle=False``).

Writes go to a temporary file in the same directory and replace the target with ``os.replace``: a reader never
sees half a file, and on failure the temporary file is removed and an existing file is left as it was.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from rnnsim import tempfiles

__all__ = ["ExportError", "SUFFIXES", "check_path", "write_results", "to_jsonable", "profile_csv_path"]

SUFFIXES = (".json", ".csv", ".npz")


class ExportError(ValueError):
    """A bad output path (unknown suffix, missing directory). The message is one line."""


def check_path(path: str | os.PathLike[str]) -> Path:
    """Check an output path before a long run: a known suffix and an existing directory. Returns it as a Path."""
    return check_output_path(path, SUFFIXES, "output")


def check_output_path(path: str | os.PathLike[str], suffixes, kind: str, option: str = "") -> Path:
    """An output path checked before a run: one of ``suffixes``, in an existing folder, not a folder itself; every
    file rnnsim writes (results, tables, weights, figures) is checked here. Raises ExportError (one line)."""
    shown, where = os.fspath(path), f"{option}: " if option else ""
    p = Path(path)
    if p.suffix.lower() not in suffixes:
        raise ExportError(f"{shown}: {where}unknown {kind} format {p.suffix or '(no suffix)'!r}; allowed suffixes: "
                          f"{', '.join(suffixes)}")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise ExportError(f"{shown}: {where}directory {os.fspath(parent)!r} does not exist")
    if p.is_dir():
        raise ExportError(f"{shown}: {where}is a directory")
    return p


def write_results(path: str | os.PathLike[str], result: dict[str, Any]) -> Path:
    """Write ``result`` to ``path`` in the format given by its suffix (.json, .csv, .npz), atomically."""
    p = check_path(path)
    suffix = p.suffix.lower()
    if suffix == ".json":
        _atomic_write(p, lambda f: f.write(_json_bytes(result)))
    elif suffix == ".csv":
        table = _csv_bytes(result.get("history") or [])
        profile = _profile_csv_bytes(result.get("arrays") or {})
        if profile is not None:  # the second file first: a new main file means both are complete
            _atomic_write(profile_csv_path(p), lambda f: f.write(profile))
        _atomic_write(p, lambda f: f.write(table))
    else:
        _atomic_write(p, lambda f: np.savez(f, **_npz_members(result)))
    return p


# ------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _temp_beside(p: Path) -> Iterator[tuple[Any, str]]:
    tempfiles.clean_stale(p)  # what a writer killed with SIGKILL left behind
    fd, tmp = tempfiles.make_temp(p)  # .NAME.<pid>.<random>.tmp
    try:
        with os.fdopen(fd, "wb") as f:
            yield f, tmp
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _atomic_write(p: Path, write: Callable[[Any], Any]) -> None:
    umask = os.umask(0)
    os.umask(umask)
    with _temp_beside(p) as (f, tmp):
        write(f)
        f.flush()
        os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~umask)
        f.close()
        os.replace(tmp, p)


def scenario_file_stem(sc) -> str:
    """``rnnsim-<scenario>``: the built-in's or file's name the scenario came from, else its title, as a slug."""
    source = sc.source.split(" (override")[0]
    word = Path(source).stem if source and not source.startswith("<") else sc.scenario.name
    slug = "".join(ch if ch.isalnum() else "-" for ch in word.lower().encode("ascii", "ignore").decode())
    slug = "-".join(part for part in slug.split("-") if part)[:40].strip("-") or "scenario"
    return f"rnnsim-{slug}"


def write_scenario(sc, folder: str | os.PathLike[str] | None = None) -> Path:
    """Write ``sc`` as TOML to a new file ``rnnsim-<scenario>-<n>.toml`` in ``folder`` (default: the current one),
    the first n from 1 that is free: never over an existing file (written beside it, then hard-linked into place,
    which fails rather than replace). ``model.weights`` and ``task.path`` are rewritten relative to ``folder``, so
    the file loads from there. Raises ExportError (one line) when the folder cannot be written."""
    where = Path(folder) if folder is not None else Path.cwd()
    text = sc.to_toml(folder=where).encode("utf-8")
    stem = scenario_file_stem(sc)
    umask = os.umask(0)
    os.umask(umask)
    for n in range(1, 100_000):
        target = where / f"{stem}-{n}.toml"
        if os.path.lexists(target):
            continue
        try:
            with _temp_beside(target) as (f, tmp):
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
                os.chmod(tmp, 0o666 & ~umask)
                f.close()
                try:
                    os.link(tmp, target)     # atomic, and refuses an existing name
                except FileExistsError:
                    os.unlink(tmp)
                    continue
                except OSError:              # no hard links here (some network or FAT folders)
                    if os.path.lexists(target):
                        os.unlink(tmp)
                        continue
                    os.replace(tmp, target)
                else:
                    os.unlink(tmp)
        except OSError as exc:
            raise ExportError(f"{os.fspath(where)}: cannot write the scenario file {target.name} here: "
                              f"{exc.strerror or exc} (is the folder writable?)") from None
        return target
    raise ExportError(f"{os.fspath(where)}: no free name {stem}-<n>.toml (n up to 99999)")


def _clean_float(x: float) -> float | str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def to_jsonable(obj: Any) -> Any:
    """Convert numpy values, arrays and non-finite floats into plain JSON-safe Python values."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return _clean_float(float(obj))
    if obj is None or isinstance(obj, str):
        return obj
    if hasattr(obj, "__dataclass_fields__"):
        return to_jsonable({k: getattr(obj, k) for k in obj.__dataclass_fields__})
    return str(obj)


def _json_bytes(result: dict[str, Any]) -> bytes:
    payload = {
        "scenario": result.get("scenario", {}),
        "summary": result.get("summary", {}),
        "history": result.get("history", []),
        "arrays": result.get("arrays", {}),
    }
    for key, value in result.items():
        payload.setdefault(key, value)
    text = json.dumps(to_jsonable(payload), indent=2, allow_nan=False, ensure_ascii=False)
    return (text + "\n").encode("utf-8")


def _history_columns(history: list[dict[str, Any]]) -> list[str]:
    columns: list[str] = []
    for row in history:
        for key in row:
            if key not in columns:
                columns.append(key)
    return columns or ["iteration", "loss", "grad_norm", "clipped_norm", "clipped", "finite"]


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return str(value)


def _csv_bytes(history: list[dict[str, Any]]) -> bytes:
    buf = io.StringIO(newline="")
    columns = _history_columns(history)
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in history:
        writer.writerow([_csv_cell(row.get(c)) for c in columns])
    return buf.getvalue().encode("utf-8")


def _npz_members(result: dict[str, Any]) -> dict[str, np.ndarray]:
    members: dict[str, np.ndarray] = {}
    for name, array in (result.get("arrays") or {}).items():
        members[str(name)] = np.asarray(array)
    history = result.get("history") or []
    for column in _history_columns(history):
        values = [row.get(column) for row in history]
        if all(isinstance(v, (bool, np.bool_)) for v in values) and values:
            members[f"history_{column}"] = np.asarray(values, dtype=bool)
        elif all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values) and values:
            members[f"history_{column}"] = np.asarray(values, dtype=np.int64)
        else:
            try:
                members[f"history_{column}"] = np.asarray(
                    [np.nan if v is None else float(v) for v in values], dtype=np.float64
                )
            except (TypeError, ValueError):
                members[f"history_{column}"] = np.asarray(["" if v is None else str(v) for v in values])
    members["scenario_json"] = np.asarray(json.dumps(to_jsonable(result.get("scenario", {})), ensure_ascii=False))
    members["summary_json"] = np.asarray(json.dumps(to_jsonable(result.get("summary", {})), ensure_ascii=False))
    return members


def profile_csv_path(path: str | os.PathLike[str]) -> Path:
    """Where ``--out results.csv`` puts the gradient profile: ``results.profile.csv`` beside it."""
    p = Path(path)
    return p.with_name(f"{p.stem}.profile{p.suffix}")


def _profile_csv_bytes(arrays: dict[str, Any]) -> bytes | None:
    """``step,grad_norm_first,grad_norm_last`` (‖dL/dh_t‖ of the first and the last iteration), one row per step."""
    last = arrays.get("gradient_profile")
    if last is None:
        return None
    last = np.asarray(last, dtype=np.float64)
    first = np.asarray(arrays.get("gradient_profile_first", last), dtype=np.float64)
    lines = ["step,grad_norm_first,grad_norm_last"]
    for t in range(last.size):
        a = repr(float(first[t])) if t < first.size else ""
        lines.append(f"{t},{a},{float(last[t])!r}")
    return ("\n".join(lines) + "\n").encode("utf-8")
