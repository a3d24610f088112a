"""models/shipped.json gets its figures from a command: `lane-seg eval --real ... --manifest`
writes each int8 model's measured mean real F1 within 8 px (shipped_model.record_real_f1)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest

from lane_seg.errors import LaneSegError
from lane_seg.models.testing import tiny_info, write_tiny_onnx
from lane_seg.runtime.shipped_model import record_real_f1, shipped_int8
from lane_seg.training.eval.scoreboard import mean_real_f1


@pytest.fixture
def manifest(tmp_path):
    path = tmp_path / "shipped.json"
    about = "what model auto picks from"
    path.write_text(json.dumps({"about": about, "int8": [{"file": "a.onnx", "real_f1_8px": 70}]}))
    write_tiny_onnx(tmp_path / "a.onnx", info=replace(tiny_info(), precision="int8"))
    return path


def test_a_measured_figure_is_written_added_then_replaced(manifest):
    fast = write_tiny_onnx(manifest.parent / "b.onnx", info=replace(tiny_info(), precision="int8"))
    record_real_f1(manifest, fast, 68.123)
    record_real_f1(manifest, manifest.parent / "a.onnx", 71.5)
    record_real_f1(manifest, fast, 69.0)
    data = json.loads(manifest.read_text())
    assert data["about"] == "what model auto picks from"
    assert data["int8"] == [
        {"file": "a.onnx", "real_f1_8px": 71.5},
        {"file": "b.onnx", "real_f1_8px": 69.0},
    ]
    assert [(m.path.name, m.real_f1) for m in shipped_int8(manifest)] == [
        ("a.onnx", 71.5),
        ("b.onnx", 69.0),
    ]


def test_what_cannot_be_listed_is_refused_and_the_manifest_kept(manifest, tmp_path):
    before = manifest.read_text()
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    away = write_tiny_onnx(elsewhere / "c.onnx", info=replace(tiny_info(), precision="int8"))
    fp32 = write_tiny_onnx(manifest.parent / "d.onnx")
    for model, f1, words in (
        (away, 60.0, "not beside"),
        (fp32, 60.0, "int8 ONNX"),
        (manifest.parent / "a.onnx", float("nan"), "percentage"),
    ):
        with pytest.raises(LaneSegError, match=words):
            record_real_f1(manifest, model, f1)
    assert manifest.read_text() == before


def test_the_mean_is_over_the_sources_all_rows():
    entry = {
        "sources": [
            {"all": {"tol_f1": 0.70}, "day": {"tol_f1": 0.1}},
            {"all": {"tol_f1": 0.60}},
            {"source": "empty"},  # no scored frame: no 'all' row
        ]
    }
    assert mean_real_f1(entry) == pytest.approx(65.0)


def test_eval_refuses_an_fp32_model_before_scoring(manifest, tmp_path):
    fp32 = write_tiny_onnx(manifest.parent / "d.onnx")
    before = manifest.read_text()
    out = tmp_path / "board"
    r = subprocess.run(
        [sys.executable, "-m", "lane_seg.cli", "eval", "--model", str(fp32), "--real",
         str(tmp_path), "--out", str(out), "--manifest", str(manifest)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "int8 ONNX" in lines[0], r.stderr
    assert manifest.read_text() == before and not out.exists()
