"""Sequences from files and real digits: ``[task] kind = "file" | "series" | "digits"``.

- ``file``: an ``.npz`` (``allow_pickle=False``) with ``inputs`` (N, T, D) float, ``targets`` (N, T, O) float
  (regression) or (N, T) integer classes (classification), optional ``mask`` (N, T) bool (default: every position).
- ``series``: a numeric CSV with a header row (one column per channel), cut into every window of ``task.length``
  steps (stride 1); the target at each step is the next step's values (next-step prediction, regression).
- ``digits``: scikit-learn's bundled 8x8 handwritten digits (1797 images, no download; the ``data`` extra), pixel
  values / 16, as sequences: ``order = "row"`` (T = 8, D = 8) or ``"pixel"`` (T = 64, D = 1), ``permute = true``
  for a fixed random pixel order (the same for every seed); the class at the last step.

``file`` and ``digits`` hold out ``task.holdout`` of the sequences (default 0 and 0.2), the same split for every seed
(a fixed shuffle); ``rnnsim run`` reports the held-out loss and accuracy (:func:`evaluate`). Each iteration draws
``task.batch_size`` training sequences without replacement within an epoch (a new shuffle from the data stream's
seed each epoch; the last incomplete batch of an epoch is skipped, as DataLoader's drop_last). ``task.length`` is
the file's T (``file``, ``digits``); an explicit different value is an error.

Every bad file is one :class:`~rnnsim.datafiles.DataFileError` line: the file, the array (or CSV row and column)
and what is allowed.
"""

from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnsim.datafiles import DataFileError, cached, check_file, need, resolve, show

__all__ = ["DATA_KINDS", "DataInfo", "Data", "info", "load", "make_stream", "evaluate", "max_batch"]

DATA_KINDS = ("file", "series", "digits")
MAX_SIZE = 4096          #: input size D, output size O, number of classes
MAX_LENGTH = 100_000     #: as task.length
_SPLIT_SEED = 20150403   #: the fixed shuffle of the held-out split (the same test set for every scenario seed)
_DIGITS_N = 1797


@dataclass(frozen=True)
class DataInfo:
    """What the scenario needs to know before anything is allocated (kept on the validated TaskSection)."""

    path: str | None       #: the resolved file, None for digits
    T: int                 #: sequence length
    D: int                 #: input size
    O: int                 #: output size (number of classes for classification)
    classification: bool
    n_train: int
    n_test: int
    nbytes: int            #: memory of the data held in memory


@dataclass(frozen=True)
class Data:
    """The loaded, checked data. ``rows(idx)`` gives batch arrays of the sequences ``idx``."""

    info: DataInfo
    inputs: np.ndarray     #: (N, T, D) float64; series: the (R, C) table
    targets: np.ndarray    #: (N, T, O) float64 or (N, T) int64; series: unused (next rows of ``inputs``)
    mask: np.ndarray       #: (N, T) bool; series: unused (every position)
    train: np.ndarray      #: indices of the training sequences
    test: np.ndarray       #: indices of the held-out sequences
    baseline: float        #: loss of the best input-blind constant answer on the training sequences
    series: bool = False

    def rows(self, idx: np.ndarray, dtype=np.float64):
        """(inputs (B, T, D), targets, mask (B, T)) of the sequences ``idx`` (copies)."""
        idx = np.asarray(idx, dtype=np.int64)
        if self.series:
            T = self.info.T
            steps = idx[:, None] + np.arange(T)[None, :]
            x = self.inputs[steps].astype(dtype)
            y = self.inputs[steps + 1].astype(dtype)
            return x, y, np.ones((len(idx), T), dtype=bool)
        x = self.inputs[idx].astype(dtype)
        y = self.targets[idx].copy() if self.info.classification else self.targets[idx].astype(dtype)
        return x, y, self.mask[idx].copy()


# ------------------------------------------------------------------------------------------------ helpers
def _split(N: int, holdout: float, label: str, key: str) -> tuple[np.ndarray, np.ndarray]:
    n_test = int(round(N * holdout))
    if holdout > 0 and n_test == 0:
        n_test = 1
    if N - n_test < 1:
        raise DataFileError(f"{label}: {N} sequences leave none to train on with task.holdout = {holdout}; "
                            "allowed: a holdout that keeps at least one")
    order = np.random.default_rng(_SPLIT_SEED).permutation(N)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def _baseline(targets, mask, classification, O) -> float:
    if classification:
        counts = np.bincount(targets[mask], minlength=O).astype(np.float64)
        p = counts[counts > 0] / counts.sum()
        return float(-(p * np.log(p)).sum())
    sel = targets[mask]                     # (n, O)
    return float(((sel - sel.mean(axis=0)) ** 2).mean()) if sel.size else 0.0


def _first_bad(a: np.ndarray) -> str:
    where = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
    return ", ".join(map(str, where))


# ------------------------------------------------------------------------------------------------ file
_NPZ_ARRAYS = ("inputs", "targets", "mask")


def _npz_headers(path: Path, label: str) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shapes and dtypes of the members, read from the headers only (before any data is)."""
    import zipfile

    fmt = np.lib.format
    heads = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for member in zf.namelist():
                name = member[:-4] if member.endswith(".npy") else member
                with zf.open(member) as f:
                    version = fmt.read_magic(f)
                    read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
                    shape, _, dtype = read(f)
                heads[name] = (tuple(shape), dtype)
    except zipfile.BadZipFile:
        with open(path, "rb") as f:
            start = f.read(2)
        what = "a Python pickle, which rnnsim never loads" if start[:1] == b"\x80" else "not a zip archive"
        raise DataFileError(f"{label}: not an .npz archive ({what}); save the arrays with np.savez") from None
    except (ValueError, OSError, EOFError) as exc:
        raise DataFileError(f"{label}: not a valid .npz archive ({exc})") from None
    return heads


def _load_file(path: Path, label: str, holdout: float, limit: int) -> Data:
    heads = _npz_headers(path, label)
    unknown = [n for n in heads if n not in _NPZ_ARRAYS]
    if unknown:
        raise DataFileError(f"{label}: unexpected arrays {', '.join(map(show, unknown))}; allowed: inputs (N, T, D) "
                            "float, targets (N, T, O) float or (N, T) integer, mask (N, T) bool")
    for name in ("inputs", "targets"):
        if name not in heads:
            raise DataFileError(f"{label}: array 'inputs' (N, T, D) float and array 'targets' (N, T, O) float or "
                                f"(N, T) integer are needed; {show(name)} is missing")
    for name, (shape, dtype) in heads.items():
        if dtype.hasobject:
            raise DataFileError(f"{label}: array {show(name)} is an object array (a pickle); allowed: numbers")
    (xs, xd), (ys, yd) = heads["inputs"], heads["targets"]
    if len(xs) != 3 or xd.kind != "f" or min(xs) < 1:
        raise DataFileError(f"{label}: array 'inputs' has shape {xs} and dtype {xd}; allowed: (N, T, D) float, "
                            "every size at least 1")
    N, T, D = xs
    if T > MAX_LENGTH or D > MAX_SIZE:
        raise DataFileError(f"{label}: array 'inputs' has shape {xs}; allowed: T <= {MAX_LENGTH}, D <= {MAX_SIZE}")
    if len(ys) == 3 and yd.kind == "f" and ys[:2] == (N, T) and 1 <= ys[2] <= MAX_SIZE:
        classification = False
    elif len(ys) == 2 and yd.kind in "iu" and ys == (N, T):
        classification = True
    else:
        raise DataFileError(f"{label}: array 'targets' has shape {ys} and dtype {yd}; allowed: ({N}, {T}, O) float "
                            f"(regression, O <= {MAX_SIZE}) or ({N}, {T}) integer classes (classification)")
    if "mask" in heads and (heads["mask"][0] != (N, T) or heads["mask"][1].kind != "b"):
        raise DataFileError(f"{label}: array 'mask' has shape {heads['mask'][0]} and dtype {heads['mask'][1]}; "
                            f"allowed: ({N}, {T}) bool")
    need_bytes = 8 * N * T * (D + (1 if classification else ys[2])) + N * T
    if need_bytes > limit:
        raise DataFileError(f"{label}: the arrays need {need_bytes} bytes in memory, above the memory bound of "
                            f"{limit} bytes; raise RNNSIM_MAX_BYTES to allow more")
    try:
        with np.load(path, allow_pickle=False) as z:
            x = np.asarray(z["inputs"], dtype=np.float64)
            y = z["targets"]
            mask = np.asarray(z["mask"]) if "mask" in heads else np.ones((N, T), dtype=bool)
    except Exception as exc:  # a member that is corrupt beyond its header (zlib, truncated data)
        raise DataFileError(f"{label}: not a valid .npz archive ({type(exc).__name__}: {exc})") from None
    if not np.isfinite(x).all():
        raise DataFileError(f"{label}: array 'inputs' has a NaN or inf at [{_first_bad(x)}]; allowed: finite numbers")
    if not mask.any():
        raise DataFileError(f"{label}: array 'mask' is false everywhere; at least one position must enter the loss")
    if classification:
        y = y.astype(np.int64)
        sel = y[mask]
        if sel.min() < 0 or sel.max() >= MAX_SIZE:
            bad = int(sel.min()) if sel.min() < 0 else int(sel.max())
            raise DataFileError(f"{label}: array 'targets' has class {bad} at a masked position; allowed: classes "
                                f"0 to {MAX_SIZE - 1} (unmasked positions are ignored)")
        y = np.where(mask, y, 0)
        O = int(sel.max()) + 1
    else:
        y = np.asarray(y, dtype=np.float64)
        if not np.isfinite(y).all():
            raise DataFileError(f"{label}: array 'targets' has a NaN or inf at [{_first_bad(y)}]; allowed: finite "
                                "numbers")
        O = ys[2]
    train, test = _split(N, holdout, label, "task.holdout")
    nbytes = x.nbytes + y.nbytes + mask.nbytes
    inf = DataInfo(os.fspath(path), T, D, O, classification, len(train), len(test), nbytes)
    return Data(inf, x, y, mask, train, test, _baseline(y[train], mask[train], classification, O))


# ------------------------------------------------------------------------------------------------ series
def _load_series(path: Path, label: str, T: int, limit: int) -> Data:
    import csv

    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataFileError(f"{label}: not valid UTF-8 (byte offset {exc.start}); save the CSV as UTF-8") from None
    except OSError as exc:
        raise DataFileError(f"{label}: cannot read: {exc.strerror or exc}") from None
    lines = text.splitlines()
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        raise DataFileError(f"{label}: the CSV is empty; allowed: a header row of column names, then numbers") from None
    except csv.Error as exc:
        raise DataFileError(f"{label}: line 1: not valid CSV ({exc})") from None
    header = [h.strip() for h in header]
    C = len(header)
    if C == 0 or C > MAX_SIZE:
        raise DataFileError(f"{label}: line 1 has {C} columns; allowed: 1 to {MAX_SIZE}")

    def number(cell: str) -> float | None:
        try:
            return float(cell)
        except ValueError:
            return None

    if all(number(h) is not None for h in header):
        raise DataFileError(f"{label}: line 1 is numbers, not a header; allowed: a first row of column names "
                            "(one per channel)")
    rows = sum(1 for line in lines[1:] if line.strip())
    if 8 * rows * C > limit:
        raise DataFileError(f"{label}: {rows} rows x {C} columns need {8 * rows * C} bytes, above the memory bound "
                            f"of {limit} bytes; raise RNNSIM_MAX_BYTES to allow more")
    table = np.empty((rows, C))
    r = 0
    try:
        for cells in reader:
            line = reader.line_num
            if not cells or all(not c.strip() for c in cells):
                continue
            if len(cells) != C:
                raise DataFileError(f"{label}: line {line} has {len(cells)} cells; the header has {C} columns")
            for j, cell in enumerate(cells):
                v = number(cell)
                if v is None or not math.isfinite(v):
                    what = "not a number" if v is None else "not finite"
                    raise DataFileError(f"{label}: line {line}, column {show(header[j])}: {show(cell.strip())} is "
                                        f"{what}; allowed: finite numbers in every column after the header")
                table[r, j] = v
            r += 1
    except csv.Error as exc:
        raise DataFileError(f"{label}: line {reader.line_num}: not valid CSV ({exc})") from None
    table = table[:r]
    if r < T + 1:
        raise DataFileError(f"{label}: {r} rows of data are too few for one window of task.length = {T} (a window "
                            f"needs length + 1 = {T + 1} rows: inputs and next-step targets); allowed: a shorter "
                            "task.length or more rows")
    N = r - T
    idx = np.arange(N)
    inf = DataInfo(os.fspath(path), T, C, C, False, N, 0, table.nbytes)
    targets = table[1:]
    base = float(((targets - targets.mean(axis=0)) ** 2).mean())
    return Data(inf, table, np.empty((0, 0, 0)), np.empty((0, 0), dtype=bool), idx, idx[:0], base, series=True)


# ------------------------------------------------------------------------------------------------ digits
def _digits_info(task, holdout: float) -> DataInfo:
    T, D = (8, 8) if task.order == "row" else (64, 1)
    n_test = int(round(_DIGITS_N * holdout)) or (1 if holdout > 0 else 0)
    return DataInfo(None, T, D, 10, True, _DIGITS_N - n_test, n_test, _DIGITS_N * (T * D * 8 + T * 9))


def _load_digits(task, holdout: float) -> Data:
    datasets = need("sklearn.datasets", "task.kind = 'digits'", "scikit-learn")
    raw = datasets.load_digits()
    pixels = np.asarray(raw.images, dtype=np.float64).reshape(-1, 64) / 16.0
    if task.permute:
        pixels = pixels[:, np.random.default_rng(_SPLIT_SEED + 1).permutation(64)]
    inf = _digits_info(task, holdout)
    N = pixels.shape[0]
    x = pixels.reshape(N, inf.T, inf.D)
    y = np.zeros((N, inf.T), dtype=np.int64)
    y[:, -1] = np.asarray(raw.target, dtype=np.int64)
    mask = np.zeros((N, inf.T), dtype=bool)
    mask[:, -1] = True
    train, test = _split(N, holdout, "task.kind = 'digits'", "task.holdout")
    return Data(inf, x, y, mask, train, test, _baseline(y[train], mask[train], True, 10))


# ------------------------------------------------------------------------------------------------ entry points
def _holdout(task) -> float:
    if task.holdout is not None:
        return float(task.holdout)
    return 0.2 if task.kind == "digits" else 0.0


def _source(task, base_dir):
    """(label, resolved path, stat) of a file task; checks the file before it is read."""
    from rnnsim.scenario import max_bytes

    if task.path is None:
        example = "seqs.npz" if task.kind == "file" else "data.csv"
        raise DataFileError(f"task.kind = {show(task.kind)} needs task.path (e.g. path = {show(example)})")
    suffixes = (".npz",) if task.kind == "file" else (".csv",)
    path = resolve(task.path, base_dir)
    st = check_file(path, "task.path", task.path, suffixes, max_bytes())
    return f"task.path = {show(task.path)}", path, st


def load(task, base_dir=None) -> Data:
    """The task's data, loaded and checked (cached by file, size and mtime). Raises DataFileError."""
    from rnnsim.scenario import max_bytes

    holdout = _holdout(task)
    if task.kind == "digits":
        return cached(("digits", task.order, task.permute, holdout), lambda: _load_digits(task, holdout))
    label, path, st = _source(task, getattr(task, "_base_dir", None) if base_dir is None else base_dir)
    key = (task.kind, os.fspath(path.resolve()), st.st_size, st.st_mtime_ns)
    if task.kind == "file":
        return cached(key + (holdout,), lambda: _load_file(path, label, holdout, max_bytes()))
    return cached(key + (task.length,), lambda: _load_series(path, label, task.length, max_bytes()))


def info(task, base_dir=None, length_given: bool = True) -> DataInfo:
    """Check a data task against its file (digits: against scikit-learn's shapes, without loading them) and
    return its sizes. ``length_given``: whether task.length was written explicitly (then it must equal T)."""
    if task.kind == "digits":
        if importlib.util.find_spec("sklearn") is None:   # checked without importing it (slow): rnnsim list
            raise DataFileError("task.kind = 'digits' needs the 'data' extra (scikit-learn is not installed): "
                                "pip install 'rnnsim[data]'")
        inf = _digits_info(task, _holdout(task))
        label = f"task.kind = 'digits' with task.order = {show(task.order)}"
    else:
        inf = load(task, base_dir).info
        label = f"task.path = {show(task.path)}"
    if task.kind != "series" and length_given and task.length != inf.T:
        raise DataFileError(f"task.length = {task.length}: {label} has sequences of length {inf.T}; allowed: leave "
                            f"task.length out (it is taken from the data) or write {inf.T}")
    if task.batch_size > inf.n_train:
        raise DataFileError(f"task.batch_size = {task.batch_size}: {label} has {inf.n_train} training sequences; "
                            f"allowed: at most {inf.n_train}")
    return inf


def max_batch(task) -> int | None:
    """The most sequences one batch of ``task`` can hold (its training sequences), None for generated tasks."""
    return task._data.n_train if task.kind in DATA_KINDS and task._data is not None else None


class Stream:
    """Training batches of a data task: ``batch_size`` sequences without replacement within an epoch."""

    def __init__(self, data: Data, rng: np.random.Generator, batch_size: int, dtype):
        self.data, self.rng, self.B, self.dtype = data, rng, int(batch_size), dtype
        self.order = np.empty(0, dtype=np.int64)
        self.pos = 0
        self.epoch = 0

    def __call__(self):
        if self.pos + self.B > len(self.order):
            self.order = self.data.train[self.rng.permutation(len(self.data.train))]
            self.pos = 0
            self.epoch += 1
        idx = self.order[self.pos:self.pos + self.B]
        self.pos += self.B
        return self.data.rows(idx, self.dtype)


def make_stream(task, rng, dtype) -> Stream:
    return Stream(load(task), rng, task.batch_size, dtype)


def evaluate(sim) -> dict | None:
    """Loss (and, for classification, accuracy) of ``sim``'s current weights on the held-out sequences, or None when
    the task has none. Runs a second Simulation of the same scenario with ``sim``'s weights, ``sim.B`` sequences
    at a time (the last batch padded with masked-out rows)."""
    task = sim.scenario.task
    if task.kind not in DATA_KINDS:
        return None
    data = load(task)
    test = data.test
    if len(test) == 0:
        return None
    from rnnsim.simulation import Simulation

    ev = Simulation(sim.scenario)
    ev.load_state_dict(sim.state_dict())
    B = ev.B
    total = count = correct = 0.0
    with np.errstate(all="ignore"):
        for lo in range(0, len(test), B):
            idx = test[lo:lo + B]
            n = len(idx)
            x, y, m = data.rows(np.concatenate([idx, np.repeat(idx[:1], B - n)]), ev.dtype)
            m[n:] = False
            ev.inputs[...] = x
            ev.targets[...] = y
            ev.loss_mask[...] = m
            ev.forward()
            out = np.asarray(ev.outputs, dtype=np.float64)[m]
            if data.info.classification:
                cls = y[m]
                shifted = out - out.max(axis=1, keepdims=True)
                logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
                total += float(-logp[np.arange(len(cls)), cls].sum())
                correct += float((out.argmax(axis=1) == cls).sum())
                count += len(cls)
            else:
                diff = out - np.asarray(y, dtype=np.float64)[m]
                total += float((diff ** 2).sum())
                count += diff.size
    result = {"heldout_sequences": int(len(test)), "heldout_loss": total / count if count else None}
    if data.info.classification:
        positions = int(np.asarray(data.mask[test]).sum())
        result["heldout_accuracy"] = correct / positions if positions else None
    return result
