"""A trainable model recovered from an int8 file of the one exporter: its weights dequantized,
its BatchNorm statistics measured on source frames while the folded model's output is kept;
and `lane-seg adapt` without --model starting from it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_adapt import road_frames

from lane_seg.camera import Camera
from lane_seg.cli import shipped_start
from lane_seg.cli.main import main
from lane_seg.data.dataset import sha256_file
from lane_seg.models import build_model
from lane_seg.models.checkpoint import load_checkpoint, model_from_checkpoint
from lane_seg.models.testing import road_rgb, tiny_info
from lane_seg.preprocess import to_input
from lane_seg.runtime.engines import OnnxRuntimeEngine, TorchEngine
from lane_seg.training.adapt.recover import conv_pairs, recover_int8
from lane_seg.training.quant.calibration import frames_calibration
from lane_seg.training.quant.exporter import export_model
from lane_seg.training.quant.onnx_int8 import compare_outputs


def frames(n: int, seed: int = 0) -> list[np.ndarray]:
    cam = Camera.from_fov(256, 128, 60.0, height_m=1.5, pitch_deg=3.0)
    return [road_rgb(cam, (1.7 + 0.03 * i, -1.8 + 0.02 * i), seed=seed + i) for i in range(n)]


@pytest.fixture(scope="module")
def int8_file(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
    """A tiny BatchNorm U-Net with BatchNorm that is not the identity, exported to int8."""
    info = tiny_info(64, 128)
    info.arch, info.labels = "unet", "lines"
    info.model_config = {"base": 4, "depth": 2, "batch_norm": True}
    torch.manual_seed(0)
    net = build_model("unet", **info.model_config).eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
        x = torch.from_numpy(to_input(frames(1, seed=50)[0], info.preprocess))
        net.head.bias -= net(x).median()  # about half the pixels lane: masks worth comparing
    folder = tmp_path_factory.mktemp("recover")
    calib = frames_calibration([(f"f{i}", f) for i, f in enumerate(frames(24))], "road frames")
    export_model(net, folder / "fp32.onnx", folder / "int8.onnx", calib, info=info, threads=1)
    return folder / "int8.onnx", net


def test_recovered_model_is_the_int8_file_in_fp32_with_source_statistics(int8_file):
    path, original = int8_file
    source = frames(16, seed=100)
    rec = recover_int8(path, source, "road frames")
    pairs = [(c, bn) for c, bn in conv_pairs(rec.model) if bn is not None]
    assert rec.origin["batchnorm_layers"] == len(pairs) == 12
    assert rec.origin["sha256"] == sha256_file(path)
    # BatchNorm is the identity of the folded conv on any input: logits as the folded model's.
    assert rec.origin["max_abs_logit_diff_vs_folded"] < 1e-4
    # Its running statistics are the first conv's output statistics on the source frames.
    inputs = [to_input(f, rec.info.preprocess) for f in source]
    conv, bn = pairs[0]
    with torch.no_grad():
        y = torch.cat([conv(torch.from_numpy(x)) for x in inputs])
    assert torch.allclose(bn.running_mean, y.mean(dim=(0, 2, 3)), atol=1e-4)
    assert torch.allclose(bn.running_var, y.var(dim=(0, 2, 3)), rtol=0.05)
    assert not torch.allclose(bn.weight, torch.ones_like(bn.weight))  # not the identity BN
    # What the file computes, up to int8 rounding: against the int8 file and the original net.
    held_out = [to_input(f, rec.info.preprocess) for f in frames(6, seed=300)]
    vs_int8 = compare_outputs(TorchEngine(rec.model, rec.info), OnnxRuntimeEngine(path), held_out)
    vs_original = compare_outputs(
        TorchEngine(rec.model, rec.info), TorchEngine(original, rec.info), held_out
    )
    with torch.no_grad():
        spread = float(torch.cat([original(torch.from_numpy(x)) for x in held_out]).std())
    assert vs_int8["mask_agreement_iou"] > 90 and rec.origin["vs_int8_file"]["frames"] == 8
    assert vs_int8["mean_abs_logit_diff"] < 0.1 * spread
    assert vs_original["mean_abs_logit_diff"] < 0.1 * spread  # the weights' int8 rounding


def test_adapt_without_model_starts_from_the_recovered_shipped_file(
    int8_file, tmp_path, monkeypatch, capsys
):
    path, _ = int8_file
    monkeypatch.setattr(shipped_start, "default_model", lambda precision: path)
    monkeypatch.setattr(shipped_start, "source_frames", lambda: (frames(8, 500), "road frames"))
    road_frames(tmp_path / "cam", 50)
    out = tmp_path / "out"
    argv = ["adapt", "--frames", str(tmp_path / "cam"), "--out", str(out), "--threads", "1"]
    assert main(argv) == 0
    card = json.loads((out / "adapt_card.json").read_text())
    assert card["model"]["path"] == str(out / "start.pt")
    assert card["model"]["recovered_from"]["sha256"] == sha256_file(path)
    assert card["model"]["recovered_from"]["seconds"] > 0
    text = (out / "ADAPT.md").read_text()
    assert f"recovered from `models/{path.name}` (sha256 `{sha256_file(path)}`)" in text
    start = load_checkpoint(out / "start.pt")
    model_from_checkpoint(start)  # a checkpoint like any other
    assert main(argv) == 0  # resumed: the same start.pt, the same state
    assert load_checkpoint(out / "start.pt")["recovered_from"] == start["recovered_from"]
    # Refused runs leave no folder behind, the start.pt they recovered included.
    few = ["adapt", "--frames", str(tmp_path / "cam"), "--every", "2", "--out", str(tmp_path / "a")]
    bad = ["finetune", "--labels", str(tmp_path / "cam"), "--out", str(tmp_path / "f")]
    assert main(few) == 2 and main(bad) == 2
    assert not (tmp_path / "a").exists() and not (tmp_path / "f").exists()
    # A start.pt of another file in the folder is refused, in one line, and left as it is.
    other = tmp_path / "other.onnx"
    other.write_bytes(path.read_bytes() + b"\0")
    monkeypatch.setattr(shipped_start, "default_model", lambda precision: other)
    before = sha256_file(out / "start.pt")
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "recovered from another model file" in err[0]
    assert sha256_file(out / "start.pt") == before
