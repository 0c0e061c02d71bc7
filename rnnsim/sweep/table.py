"""The tidy result table of a sweep: one row per run, appended as runs finish, resumable.

Columns: one per grid key (named by the dotted key), then ``seed``, ``final_loss``, ``grad_ratio``,
``max_grad_norm``, ``clip_events``, ``finite``, ``regime``, ``seconds``.

Files, for ``--out OUT``:

- ``OUT`` itself (``.csv``) or ``OUT.partial.csv`` (for ``.parquet``) is the journal: each finished run is one
  ``write`` of one whole line to a file opened for appending, so a sweep killed at any point (even SIGKILL) leaves
  a readable CSV; a torn last line (no newline) is dropped on resume.
- ``OUT.sweep.json`` records what the table is a sweep of (scenario, iterations, seeds, grid) and its
  fingerprint; an existing ``OUT`` of another sweep, or of nothing rnnsim wrote, is refused.
- When every run is done the table is rewritten atomically in grid order (``.parquet`` through pyarrow, then the
  journal is removed), so the same sweep gives the same file whatever the backend and the finishing order.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from rnnsim import __version__
from rnnsim.export import ExportError, _atomic_write, _csv_cell, check_output_path
from rnnsim.results import REGIMES
from rnnsim.sweep.spec import Run, Sweep

__all__ = ["RESULT_COLUMNS", "SUFFIXES", "Table", "row_from_summary", "read_rows", "columns", "open_table"]

RESULT_COLUMNS = ("seed", "final_loss", "grad_ratio", "max_grad_norm", "clip_events", "finite", "regime", "seconds")
SUFFIXES = (".csv", ".parquet")
_FLOATS = ("final_loss", "grad_ratio", "max_grad_norm", "seconds")
_INTS = ("seed", "clip_events")


def columns(sweep: Sweep) -> list[str]:
    return [*sweep.keys, *RESULT_COLUMNS]


def row_from_summary(summary: dict[str, Any], seconds: float) -> dict[str, Any]:
    """The result columns of one run from the summary `rnnsim run` prints (rnnsim.results.collect)."""
    return {
        "final_loss": summary["final_loss"],
        "grad_ratio": summary["gradient_ratio"],
        "max_grad_norm": summary["max_grad_norm"],
        "clip_events": summary["clipping_events"],
        "finite": summary["finite"],
        "regime": summary["regime"],
        "seconds": seconds,
    }


def parquet_module() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise ExportError(
            "a .parquet table needs the 'data' extra: pip install 'rnnsim[data]' (or write .csv)"
        ) from None
    return pyarrow


def check_out(path: str | os.PathLike[str]) -> Path:
    p = check_output_path(path, SUFFIXES, "table")
    if p.suffix.lower() == ".parquet":
        parquet_module()
    return p


class _Index:
    """Maps the grid-key texts and seed of a row back to its run index (runs are in product order)."""

    def __init__(self, sweep: Sweep):
        self.sweep = sweep
        self.forms: list[dict[str, int]] = []
        self.sizes = [len(v) for v in (*sweep.values, sweep.seeds)]
        for values in (*sweep.values, sweep.seeds):
            forms: dict[str, int] = {}
            for i, v in enumerate(values):
                forms.setdefault(_csv_cell(v), i)
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    forms.setdefault(repr(float(v)), i)
            self.forms.append(forms)

    def find(self, texts: list[str]) -> int | None:
        index = 0
        for forms, size, text in zip(self.forms, self.sizes, texts):
            pos = forms.get(text)
            if pos is None:
                return None
            index = index * size + pos
        return index


def _parse_result(name: str, text: str) -> Any:
    if name in _FLOATS:
        return None if text == "" else float(text)
    if name in _INTS:
        return int(text)
    if name == "finite":
        if text not in ("true", "false"):
            raise ValueError(text)
        return text == "true"
    if text not in REGIMES:
        raise ValueError(text)
    return text


def read_rows(sweep: Sweep, lines: list[list[str]], where: str) -> dict[int, dict[str, Any]]:
    """Rows of a CSV (header first) as {run index: row}; raises ExportError for a table of another sweep."""
    expected = columns(sweep)
    if not lines:
        return {}
    if lines[0] != expected:
        raise ExportError(
            f"{where}: its columns ({', '.join(lines[0])}) are not this sweep's ({', '.join(expected)}); "
            "use another --out or delete it"
        )
    index = _Index(sweep)
    runs = list(sweep.runs()) if len(lines) > 1 else []
    rows: dict[int, dict[str, Any]] = {}
    nkeys = len(sweep.keys)
    for number, cells in enumerate(lines[1:], start=2):
        if len(cells) != len(expected):
            raise ExportError(f"{where}: line {number}: {len(cells)} cells, expected {len(expected)}")
        i = index.find([*cells[:nkeys], cells[nkeys]])
        if i is None:
            raise ExportError(
                f"{where}: line {number}: a run that is not in this sweep "
                f"({', '.join(f'{k}={c}' for k, c in zip(expected, cells[: nkeys + 1]))}); use another --out or delete it"
            )
        try:
            result = {c: _parse_result(c, t) for c, t in zip(RESULT_COLUMNS[1:], cells[nkeys + 1:])}
        except ValueError:
            raise ExportError(f"{where}: line {number}: not a row rnnsim sweep wrote; use another --out or delete it") from None
        rows.setdefault(i, full_row(sweep, runs[i], result))
    return rows


def full_row(sweep: Sweep, run: Run, result: dict[str, Any]) -> dict[str, Any]:
    return {**dict(zip(sweep.keys, run.values)), "seed": run.seed, **result}


def _csv_line(row: dict[str, Any], names: list[str]) -> bytes:
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\n").writerow([_csv_cell(row.get(c)) for c in names])
    return buf.getvalue().encode("utf-8")


class Table:
    """The result table of one sweep at ``out``: ``open()`` (returns the rows already there), ``append``,
    ``finish``, ``close``."""

    def __init__(self, sweep: Sweep, out: str | os.PathLike[str]):
        self.sweep = sweep
        self.path = check_out(out)
        self.parquet = self.path.suffix.lower() == ".parquet"
        self.journal = self.path.with_name(self.path.name + ".partial.csv") if self.parquet else self.path
        self.meta = self.path.with_name(self.path.name + ".sweep.json")
        self.names = columns(sweep)
        self._fd: int | None = None
        self._lines: dict[int, bytes] = {}  # run index -> the journal line written for it (reused by finish)

    # ------------------------------------------------------------------------------------------ open / resume
    def open(self) -> dict[int, dict[str, Any]]:
        """Check that ``out`` belongs to this sweep, lock the journal, and return the rows already done."""
        self._check_meta()
        rows: dict[int, dict[str, Any]] = {}
        if self.parquet and self.path.exists():
            rows.update(self._read_parquet())
        fd = os.open(self.journal, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
        try:
            _lock(fd, self.journal)
            text = _read_all(fd)
            if text and not text.endswith(b"\n"):  # a run killed mid-line: drop the torn line
                text = text[: text.rfind(b"\n") + 1]
                os.ftruncate(fd, len(text))
            lines = self._journal_lines(text, "; use another --out or delete it")
            for i, row in read_rows(self.sweep, lines, str(self.journal)).items():
                rows.setdefault(i, row)
            if not lines:
                os.write(fd, _csv_line(dict(zip(self.names, self.names)), self.names))
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._write_meta()
        return rows

    def read(self) -> dict[int, dict[str, Any]]:
        """The rows there now, without writing anything (for --show)."""
        self._check_meta()
        rows: dict[int, dict[str, Any]] = {}
        if self.parquet and self.path.exists():
            rows.update(self._read_parquet())
        if self.journal.exists():
            text = self.journal.read_bytes()
            text = text[: text.rfind(b"\n") + 1]
            for i, row in read_rows(self.sweep, self._journal_lines(text), str(self.journal)).items():
                rows.setdefault(i, row)
        return rows

    def _journal_lines(self, text: bytes, advice: str = "") -> list[list[str]]:
        """The journal's CSV lines; a file that is not UTF-8 CSV is one ExportError line (``advice`` appended)."""
        try:
            return list(csv.reader(io.StringIO(text.decode("utf-8"), newline="")))
        except (UnicodeDecodeError, csv.Error) as exc:
            raise ExportError(f"{self.journal}: not a table rnnsim sweep wrote ({exc}){advice}") from None

    def _check_meta(self) -> None:
        have_table = self.path.exists() or self.journal.exists()
        if not have_table:
            return
        if not self.meta.exists():
            raise ExportError(
                f"{self.path}: exists and is not a table of `rnnsim sweep` (no {self.meta.name} beside it); "
                "use another --out or delete it"
            )
        try:
            info = json.loads(self.meta.read_text(encoding="utf-8"))
            old = info["fingerprint"]
        except (OSError, ValueError, KeyError, TypeError):
            raise ExportError(f"{self.meta}: not readable as a sweep record; delete it and {self.path.name} to start over") from None
        if old != self.sweep.fingerprint:
            raise ExportError(
                f"{self.path}: holds the runs of another sweep (its scenario, iterations, seeds or grid differ: "
                f"fingerprint {old}, this sweep {self.sweep.fingerprint}); use another --out, or delete "
                f"{self.path.name} and {self.meta.name} to start over"
            )

    def _write_meta(self) -> None:
        info = {
            "rnnsim": __version__,
            "sweep": self.sweep.source,
            "name": self.sweep.name,
            "fingerprint": self.sweep.fingerprint,
            "columns": self.names,
            **self.sweep.describe(),
        }
        payload = (json.dumps(info, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        _atomic_write(self.meta, lambda f: f.write(payload))

    def _read_parquet(self) -> dict[int, dict[str, Any]]:
        pa = parquet_module()
        try:
            table = pa.parquet.read_table(self.path)
        except (OSError, pa.ArrowException) as exc:
            raise ExportError(f"{self.path}: not readable as Parquet ({' '.join(str(exc).split())}); use another --out or delete it") from None
        records = table.to_pylist()
        lines = [list(table.column_names)] + [[_csv_cell(r.get(c)) for c in table.column_names] for r in records]
        return read_rows(self.sweep, lines, str(self.path))

    # ------------------------------------------------------------------------------------------ write
    def append(self, row: dict[str, Any], index: int | None = None) -> None:
        """Append one finished run: one write of one whole line (atomic for a SIGKILL). With its run ``index``, the
        line is kept for ``finish`` (the row is not serialised twice)."""
        assert self._fd is not None, "Table.open() first"
        line = _csv_line(row, self.names)
        os.write(self._fd, line)
        if index is not None:
            self._lines[index] = line

    def finish(self, rows: dict[int, dict[str, Any]]) -> None:
        """Every run is done: write the table in grid order, atomically."""
        ordered = [rows[i] for i in sorted(rows)]
        if self.parquet:
            table = self._arrow_table(ordered)
            pq = parquet_module().parquet
            _atomic_write(self.path, lambda f: pq.write_table(table, f))
            self.close(sync=False)  # the journal is removed: nothing of it to keep
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.journal)
        else:
            body = b"".join([_csv_line(dict(zip(self.names, self.names)), self.names)]
                            + [self._lines.get(i) or _csv_line(rows[i], self.names) for i in sorted(rows)])
            _atomic_write(self.path, lambda f: f.write(body))
            self.close(sync=False)  # the journal's inode was just replaced by the table: nothing of it to keep

    def _arrow_table(self, rows: list[dict[str, Any]]) -> Any:
        pa = parquet_module()
        arrays = {}
        for name, values in zip(self.sweep.keys, self.sweep.values):
            arrays[name] = _arrow_column(pa, [r[name] for r in rows], values)
        types = {"seed": pa.int64(), "clip_events": pa.int64(), "finite": pa.bool_(), "regime": pa.string()}
        for name in RESULT_COLUMNS:
            arrays[name] = pa.array([r[name] for r in rows], type=types.get(name, pa.float64()))
        meta = {"rnnsim.sweep": self.sweep.source, "rnnsim.fingerprint": self.sweep.fingerprint}
        return pa.table(arrays).replace_schema_metadata(meta)

    def fds(self) -> tuple[int, ...]:
        """The file descriptors this table holds open (a forked worker closes them: it must not keep the lock)."""
        return () if self._fd is None else (self._fd,)

    def close(self, sync: bool = True) -> None:
        """Close the journal, by default synced to disk first (an interrupted sweep's rows are kept)."""
        if self._fd is not None:
            if sync:
                with contextlib.suppress(OSError):
                    os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None


def _arrow_column(pa: Any, column: list[Any], planned: tuple[Any, ...]) -> Any:
    if all(isinstance(v, bool) for v in planned):
        return pa.array(column, type=pa.bool_())
    if all(isinstance(v, int) and not isinstance(v, bool) for v in planned):
        return pa.array(column, type=pa.int64())
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in planned):
        return pa.array([float(v) for v in column], type=pa.float64())
    return pa.array([v if isinstance(v, str) else _csv_cell(v) for v in column], type=pa.string())


def _read_all(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _lock(fd: int, path: Path) -> None:
    try:
        import fcntl
    except ImportError:  # Windows: no advisory lock
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise ExportError(f"{path}: another rnnsim sweep is writing it; wait for it or use another --out") from None



def open_table(path: str | os.PathLike[str]) -> tuple[Sweep, dict[int, dict[str, Any]]]:
    """A table written by `rnnsim sweep`, read-only: its sweep (from ``OUT.sweep.json``) and its rows."""
    from rnnsim.sweep.spec import sweep_from_record

    p = check_out(path)
    meta = p.with_name(p.name + ".sweep.json")
    if not p.exists() and not p.with_name(p.name + ".partial.csv").exists():
        raise ExportError(f"{os.fspath(path)}: no such file")
    try:
        info = json.loads(meta.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExportError(f"{os.fspath(path)}: not a table of `rnnsim sweep` (no {meta.name} beside it)") from None
    except (OSError, ValueError) as exc:
        raise ExportError(f"{meta}: not readable as a sweep record ({' '.join(str(exc).split())})") from None
    sweep = sweep_from_record(info, os.fspath(path))
    return sweep, Table(sweep, p).read()
