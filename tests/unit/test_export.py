"""Results export (rnnsim/export.py): each format reads back; writes are atomic."""

from __future__ import annotations

import csv
import json
import math
import os

import numpy as np
import pytest

from rnnsim import export
from rnnsim.export import ExportError, write_results
from rnnsim.scenario import Scenario

INF, NAN = float("inf"), float("nan")


def make_result():
    history = [
        {"iteration": 1, "loss": 0.5, "grad_norm": 2.0, "clipped_norm": 1.0, "clipped": True, "finite": True},
        {"iteration": 2, "loss": 0.25, "grad_norm": 0.5, "clipped_norm": 0.5, "clipped": False, "finite": True},
        {"iteration": 3, "loss": NAN, "grad_norm": INF, "clipped_norm": INF, "clipped": False, "finite": False},
    ]
    return {
        "scenario": Scenario().with_changes({"scenario.name": 'quote " and é'}).to_dict(),
        "history": history,
        "summary": {"final_loss": NAN, "baseline": None, "ratio": np.float64(1e-8), "events": np.int64(2)},
        "arrays": {
            "gradient_profile": np.array([1e-8, 0.5, 1.0]),
            "jacobian_norms": np.array([[0.9, -INF], [NAN, 1.1]], dtype=np.float32),
        },
    }


def test_json_round_trip(tmp_path):
    path = tmp_path / "r.json"
    write_results(path, make_result())
    text = path.read_text(encoding="utf-8")
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"invalid JSON constant {c}"))
    assert data["scenario"]["scenario"]["name"] == 'quote " and é'
    assert [row["iteration"] for row in data["history"]] == [1, 2, 3]
    assert data["history"][2]["loss"] == "nan" and data["history"][2]["grad_norm"] == "inf"
    assert data["history"][0]["clipped"] is True
    assert data["summary"] == {"final_loss": "nan", "baseline": None, "ratio": 1e-8, "events": 2}
    assert data["arrays"]["gradient_profile"] == [1e-8, 0.5, 1.0]
    assert data["arrays"]["jacobian_norms"][0][1] == "-inf"
    restored = np.array([[float(x) for x in row] for row in data["arrays"]["jacobian_norms"]])
    assert math.isnan(restored[1, 0]) and restored[1, 1] == pytest.approx(1.1)


def test_csv_one_row_per_iteration(tmp_path):
    path = tmp_path / "r.csv"
    write_results(path, make_result())
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3
    assert list(rows[0]) == ["iteration", "loss", "grad_norm", "clipped_norm", "clipped", "finite"]
    assert [int(r["iteration"]) for r in rows] == [1, 2, 3]
    assert float(rows[1]["loss"]) == 0.25
    assert math.isnan(float(rows[2]["loss"])) and math.isinf(float(rows[2]["grad_norm"]))
    assert [r["clipped"] for r in rows] == ["true", "false", "false"]


def test_csv_empty_history_has_header(tmp_path):
    path = tmp_path / "empty.csv"
    write_results(path, {"history": []})
    assert path.read_text().strip() == "iteration,loss,grad_norm,clipped_norm,clipped,finite"


def test_npz_round_trip(tmp_path):
    path = tmp_path / "r.npz"
    result = make_result()
    write_results(path, result)
    with np.load(path, allow_pickle=False) as data:
        np.testing.assert_array_equal(data["gradient_profile"], result["arrays"]["gradient_profile"])
        assert data["jacobian_norms"].dtype == np.float32
        np.testing.assert_array_equal(data["jacobian_norms"], result["arrays"]["jacobian_norms"])
        np.testing.assert_array_equal(data["history_iteration"], [1, 2, 3])
        assert data["history_iteration"].dtype == np.int64
        np.testing.assert_array_equal(data["history_clipped"], [True, False, False])
        assert np.isnan(data["history_loss"][2]) and data["history_loss"][1] == 0.25
        assert json.loads(str(data["scenario_json"])) == result["scenario"]
        assert json.loads(str(data["summary_json"]))["final_loss"] == "nan"
    assert not (tmp_path / "r.npz.npz").exists()


@pytest.mark.parametrize("name", ["r.txt", "r", "r.json.bak"])
def test_unknown_suffix(tmp_path, name):
    with pytest.raises(ExportError, match=r"allowed suffixes: \.json, \.csv, \.npz"):
        write_results(tmp_path / name, make_result())
    assert list(tmp_path.iterdir()) == []


def test_missing_directory(tmp_path):
    with pytest.raises(ExportError, match="does not exist"):
        write_results(tmp_path / "nope" / "r.json", make_result())


def test_suffix_is_case_insensitive(tmp_path):
    write_results(tmp_path / "R.JSON", make_result())
    assert json.loads((tmp_path / "R.JSON").read_text())["history"]


@pytest.mark.parametrize("suffix, writer", [(".json", "_json_bytes"), (".csv", "_csv_bytes"), (".npz", "_npz_members")])
def test_failure_mid_write_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch, suffix, writer):
    path = tmp_path / f"r{suffix}"
    path.write_bytes(b"old contents")

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export, writer, boom)
    with pytest.raises(OSError, match="No space left"):
        write_results(path, make_result())
    assert path.read_bytes() == b"old contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_failure_after_partial_bytes_keeps_old_file(tmp_path, monkeypatch):
    """The temp file already holds part of the data when the write fails; the target is untouched."""
    path = tmp_path / "r.npz"
    path.write_bytes(b"old contents")
    real_savez = np.savez

    def half_then_fail(f, **members):
        real_savez(f, **members)
        raise KeyboardInterrupt

    monkeypatch.setattr(export.np, "savez", half_then_fail)
    with pytest.raises(KeyboardInterrupt):
        write_results(path, make_result())
    assert path.read_bytes() == b"old contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_replace_failure_removes_temp(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    path.write_text("old")
    monkeypatch.setattr(export.os, "replace", lambda a, b: (_ for _ in ()).throw(PermissionError(13, "denied")))
    with pytest.raises(PermissionError):
        write_results(path, make_result())
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_overwrites_atomically_with_normal_permissions(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("old")
    write_results(path, make_result())
    assert json.loads(path.read_text())["history"]
    umask = os.umask(0)
    os.umask(umask)
    assert (path.stat().st_mode & 0o777) == (0o666 & ~umask)


def test_update_info_dataclasses_are_serialised(tmp_path):
    import dataclasses

    @dataclasses.dataclass
    class Info:
        iteration: int
        loss: float

    path = tmp_path / "r.json"
    write_results(path, {"summary": {"last": Info(1, 0.5)}})
    assert json.loads(path.read_text())["summary"]["last"] == {"iteration": 1, "loss": 0.5}
