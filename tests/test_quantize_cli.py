"""`lane-seg quantize` end to end on a tiny checkpoint and dataset."""

from __future__ import annotations

import json

import pytest
from quant_helpers import write_dataset

from lane_seg.artifact import ModelInfo
from lane_seg.cli.main import main
from lane_seg.models import build_model
from lane_seg.models.checkpoint import save_checkpoint
from lane_seg.models.export import read_metadata
from lane_seg.preprocess import PreprocessConfig


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("quant_cli")
    data = write_dataset(d / "ds", n_train=8, n_val=4)
    cfg = {"base": 4, "depth": 2}
    info = ModelInfo("unet", cfg, PreprocessConfig(height=32, width=64), train_data="ds")
    save_checkpoint(d / "run" / "best.pt", build_model("unet", **cfg).eval(), info)
    return d, data


@pytest.mark.slow
def test_quantize_writes_the_measured_report(setup, real_data):
    d, data = setup
    out = d / "out"
    argv = ["quantize", "--model", str(d / "run" / "best.pt"), "--data", str(data)]
    argv += ["--calib", str(data), "--out", str(out), "--calib-size", "4", "--runs", "2"]
    argv += ["--warmup", "1", "--lowbit", "W4A8,binary", "--lowbit-epochs", "1"]
    argv += ["--qat-epochs", "1", "--qat-frames", "4"]
    argv += ["--max-iou-drop", "100", "--sens-frames", "2", "--real", str(real_data), "--quiet"]
    assert main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    rows = {(r["precision"], r["backend"]): r for r in report["rows"]}
    assert set(rows) == {
        ("fp32", "pytorch"),
        ("int8-ptq", "pytorch-x86"),
        ("int8-qat", "pytorch-x86"),
        ("int8-mixed", "pytorch-x86"),
        ("fp32", "onnxruntime"),
        ("int8", "onnxruntime"),
        ("int8-trt", "onnxruntime"),
    }
    assert rows[("fp32", "pytorch")]["speedup"] == 1.0
    assert rows[("int8", "onnxruntime")]["provider"] == "CPUExecutionProvider"
    for r in report["rows"]:
        assert r["size_mb"] > 0 and r["p50_ms"] > 0 and r["p95_ms"] >= r["p50_ms"]
        assert 0 <= r["lane_iou"] <= 100
    assert [s["format"] for s in report["lowbit"]] == ["W4A8", "binary"]
    assert report["lowbit"][1]["bits_per_weight"] < report["lowbit"][0]["bits_per_weight"]
    model = report["models"][0]
    assert model["onnx"]["int8-trt"]["qdq_check"]["problems"] == []
    assert model["onnx"]["int8"]["real_frames_vs_fp32"]["frames"] > 0
    assert model["mixed_precision"]["float_layers"] == []
    assert model["qat"]["steps"] == 1 and model["qat"]["train_frames"] == 4
    assert all(s["finetune_steps"] == 1 for s in report["lowbit"])
    assert (out / "accuracy_latency.png").stat().st_size > 0
    md = (out / "report.md").read_text()
    assert "| int8 |" in md and "## Targets" in md
    goals = {g["target"] for g in report["targets"]}
    assert "int8 ONNX file smaller than fp32 ONNX" in goals and len(goals) == 4
    calib = json.loads((out / "calibration.json").read_text())
    assert calib["split"] == "train" and len(calib["ids"]) == 4
    meta = ModelInfo.from_metadata(read_metadata(out / "unet_run" / "int8.onnx"))
    assert meta.precision == "int8" and meta.calibration["count"] == 4
    assert meta.calibration["split"] == "train" and "lane_iou" in meta.metrics


def test_quantize_errors_are_one_line(setup, capsys):
    d, data = setup
    base = ["quantize", "--data", str(data), "--calib", str(data), "--out", str(d / "x")]
    assert main([*base, "--model", str(d / "missing.pt")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main([*base, "--model", str(d / "run" / "best.pt"), "--lowbit", "W0A0"]) == 2
    assert "bit widths" in capsys.readouterr().err
