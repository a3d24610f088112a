"""One exporter, one calibration rule (docs/architecture.md, contract 2): only
lane_seg.training.quant.exporter writes model files, every command that writes an int8 model
calls it, and whichever command it is, the same dataset gives the same calibration frames."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import torch
from quant_helpers import write_dataset
from test_architecture import REPO, modules

from lane_seg.artifact import ModelInfo
from lane_seg.bench.contenders import BenchConfig, build_runners
from lane_seg.cli.main import main
from lane_seg.models import build_model
from lane_seg.models.checkpoint import load_model, save_checkpoint
from lane_seg.models.export import read_metadata
from lane_seg.preprocess import PreprocessConfig
from lane_seg.training.quant.calibration import CALIB_SIZE, select_calibration
from lane_seg.training.quant.subject import QuantizeConfig


def _calibration(path) -> dict:
    return ModelInfo.from_metadata(read_metadata(path)).calibration


def test_export_bench_and_quantize_calibrate_on_the_same_frames(tmp_path):
    data = write_dataset(tmp_path / "ds", n_train=CALIB_SIZE + 16, n_val=2)
    torch.manual_seed(0)
    ckpt = tmp_path / "m.pt"
    info = ModelInfo("unet", {"base": 4, "depth": 2}, PreprocessConfig(32, 64))
    save_checkpoint(ckpt, build_model("unet", base=4, depth=2), info)

    argv = ["export", "--model", str(ckpt), "--out", str(tmp_path / "m.onnx")]
    assert main([*argv, "--int8", str(tmp_path / "m_int8.onnx"), "--calib", str(data)]) == 0
    exported = _calibration(tmp_path / "m_int8.onnx")

    bench = BenchConfig(checkpoint=ckpt, data=data, engines=("ort-int8",), out=tmp_path / "b")
    model, info = load_model(ckpt)
    x = np.zeros((1, 3, 32, 64), np.float32)
    _, _, extra = build_runners(bench, model, info, x)
    benched = _calibration(tmp_path / "b" / "model_int8.onnx")

    q = QuantizeConfig([ckpt], data, data, tmp_path / "q")
    quantized = select_calibration(q.calib, q.calib_size, q.calib_seed).identity()

    assert exported == benched and exported["count"] == CALIB_SIZE
    assert {k: exported[k] for k in quantized} == quantized == extra["calibration"]
    assert exported["split"] == "train" and exported["method"] == "minmax"


def test_without_a_dataset_bench_and_models_latency_share_the_simulator_frames(
    tmp_path, monkeypatch
):
    from lane_seg.bench import contenders
    from lane_seg.cli.models import int8_latency
    from lane_seg.training.quant import exporter

    seen: list[dict] = []
    real = exporter.export_model

    def record(model, fp32, int8=None, calibration=None, **kw):
        seen.append(calibration.identity())
        return real(model, fp32, int8, calibration, **kw)

    monkeypatch.setattr(exporter, "export_model", record)
    monkeypatch.setattr(contenders, "export_model", record)
    cfg = {"base": 4, "depth": 2}
    torch.manual_seed(0)
    int8_latency(build_model("unet", **cfg), "unet", cfg, 32, 64, threads=1, runs=1)
    ckpt = tmp_path / "m.pt"
    info = ModelInfo("unet", cfg, PreprocessConfig(32, 64))
    save_checkpoint(ckpt, build_model("unet", **cfg), info)
    model, info = load_model(ckpt)
    bench = BenchConfig(checkpoint=ckpt, engines=("ort-int8",), out=tmp_path / "b")
    build_runners(bench, model, info, np.zeros((1, 3, 32, 64), np.float32))
    assert len(seen) == 2 and seen[0] == seen[1]
    assert "simulator" in seen[0]["dataset"] and seen[0]["count"] == CALIB_SIZE


# The one exporter (docs/architecture.md, contract 2): the calls that write a model file, and
# the one module of the package allowed to make each.
WRITERS = {
    "quantize_static": "lane_seg.training.quant.exporter",  # onnxruntime's int8 writer
    "quant_pre_process": "lane_seg.training.quant.exporter",
    "export_onnx": "lane_seg.training.quant.exporter",  # the fp32 file (lane_seg.models.export)
    "export_model": None,  # the exporter itself: any module may call it
}


def _calls(path: Path) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            found.setdefault(name, []).append(node.lineno)
    return found


def test_only_the_exporter_writes_model_files():
    wrong = [
        f"{m.path.relative_to(REPO)}:{line}: {name}() outside {owner}"
        for m in modules().values()
        for name, lines in _calls(m.path).items()
        if (owner := WRITERS.get(name)) and m.name != owner
        for line in lines
    ]
    wrong += [  # the one-off studies too
        f"{path.relative_to(REPO)}:{line}: {name}()"
        for path in sorted((REPO / "studies").glob("*.py"))
        for name, lines in _calls(path).items()
        if WRITERS.get(name)
        for line in lines
    ]
    assert not wrong, "\n".join(wrong)
    callers = {m.name for m in modules().values() if "export_model" in _calls(m.path)}
    # every command that writes an int8 model goes through it
    assert {
        "lane_seg.cli.export",
        "lane_seg.cli.models",
        "lane_seg.bench.contenders",
        "lane_seg.training.quant.onnx_rows",
        "lane_seg.training.adapt.run",
    } <= callers
