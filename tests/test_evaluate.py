"""Evaluation: .pt and .onnx through the same preprocessing give the same scores; outputs."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch
from lane_data import make_line_dataset

from lane_seg.artifact import ModelInfo
from lane_seg.cli.main import main
from lane_seg.errors import LaneSegError
from lane_seg.models import build_model
from lane_seg.models.checkpoint import save_checkpoint
from lane_seg.models.export import read_metadata
from lane_seg.preprocess import PreprocessConfig
from lane_seg.training.eval.evaluate import find_frames, load_model_engine, run_eval


def _rows(path):
    return list(csv.DictReader(path.read_text().splitlines()))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_line_dataset(tmp_path_factory.mktemp("ev") / "ds", n_train=2, n_val=6)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model("unet", base=4, depth=2)
    info = ModelInfo("unet", {"base": 4, "depth": 2}, PreprocessConfig(32, 64))
    path = tmp_path_factory.mktemp("ck") / "m.pt"
    save_checkpoint(path, model, info)
    return path


def test_pt_and_onnx_give_the_same_scores(data, ckpt, tmp_path):
    onnx_path = tmp_path / "m.onnx"
    assert main(["export", "--model", str(ckpt), "--out", str(onnx_path)]) == 0
    assert read_metadata(onnx_path)["arch"] == "unet"
    a = run_eval(ckpt, data, tmp_path / "pt", progress=False)
    b = run_eval(onnx_path, data, tmp_path / "onnx", progress=False)
    assert a["images"] == b["images"] == 6
    assert a["engine"] == "torch" and b["engine"] == "onnxruntime-cpu"
    for k in ("lane_iou", "dice", "precision", "recall", "miou"):
        assert a[k] == pytest.approx(b[k], abs=2e-3), k
    for name in ("per_image.csv", "summary.json", "gallery.png"):
        assert (tmp_path / "pt" / name).is_file()
    rows = _rows(tmp_path / "pt" / "per_image.csv")
    assert len(rows) == 6 and {"id", "lane_iou", "tp", "fp", "fn", "tn"} <= set(rows[0])
    summary = json.loads((tmp_path / "pt" / "summary.json").read_text())
    assert summary["threshold"] == 0.5


def test_scores_match_a_hand_count(data, ckpt, tmp_path):
    """Per-image CSV counts add up to the summary, which uses summed counts."""
    s = run_eval(ckpt, data, tmp_path / "o", progress=False, gallery_size=0)
    rows = _rows(tmp_path / "o" / "per_image.csv")
    tp, fp, fn = (sum(int(r[k]) for r in rows) for k in ("tp", "fp", "fn"))
    assert s["lane_iou"] == pytest.approx(tp / (tp + fp + fn))
    assert not (tmp_path / "o" / "gallery.png").exists()


def test_paired_folders_like_tusimple(data, ckpt, tmp_path):
    root = tmp_path / "tus"
    (root / "image").mkdir(parents=True)
    (root / "gt_binary_image").mkdir()
    for f in find_frames(data, "val")[:3]:
        shutil.copy(f.image_path, root / "image" / f"{f.id}.png")
        shutil.copy(f.mask_path, root / "gt_binary_image" / f"{f.id}.png")
    assert len(find_frames(root, "val")) == 3
    s = run_eval(ckpt, root, tmp_path / "o", progress=False)
    assert s["images"] == 3


def test_real_frames_zero_shot_runs(real_data, ckpt, tmp_path):
    s = run_eval(ckpt, real_data / "tusimple_lanenet", tmp_path / "o", progress=False)
    assert s["images"] == 6 and 0.0 <= s["lane_iou"] <= 1.0


def test_eval_errors(data, ckpt, tmp_path):
    with pytest.raises(LaneSegError, match="not found"):
        load_model_engine(tmp_path / "none.pt")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(LaneSegError, match=".onnx or .pt"):
        load_model_engine(tmp_path / "x.txt")
    with pytest.raises(LaneSegError, match="no 'test' frames"):
        find_frames(data, "test")
    with pytest.raises(LaneSegError, match="neither"):
        find_frames(tmp_path, "val")
    assert main(["eval", "--model", str(tmp_path / "none.pt"), "--data", str(data)]) == 2


def test_models_cli_table(capsys):
    assert main(["models", "--size", "128x64"]) == 0  # small size: the table code, quickly
    out = capsys.readouterr().out
    assert "input 128x64 (tensor 1x3x64x128)" in out
    for name in ("unet", "enet", "deeplabv3plus", "segformer"):
        assert name in out
    for size, error in (
        ("512x250", "input size 512x250 (WxH) is not a multiple of 16"),  # the model's stride
        ("big", "expected WIDTHxHEIGHT"),
        ("4096x2048", "each be 1..2048 px"),
    ):
        assert main(["models", "--size", size]) == 2
        assert error in capsys.readouterr().err


def test_engine_carries_the_checkpoints_preprocessing(ckpt):
    e = load_model_engine(ckpt)
    assert (e.info.preprocess.height, e.info.preprocess.width) == (32, 64)
    x = np.zeros((1, 3, 32, 64), np.float32)
    assert e.infer(x).shape == (1, 1, 32, 64)


def test_export_int8_is_calibrated_on_train_and_scores_like_fp32(data, ckpt, tmp_path):
    from lane_seg.training.quant.onnx_int8 import int8_op_counts

    fp32, int8 = tmp_path / "m.onnx", tmp_path / "m_int8.onnx"
    argv = ["export", "--model", str(ckpt), "--out", str(fp32), "--int8", str(int8)]
    assert main(argv) == 2  # --int8 without --calib
    assert main([*argv, "--calib", str(data), "--calib-size", "2"]) == 0
    meta = read_metadata(int8)
    assert meta["precision"] == "int8"
    calib = json.loads(meta["calibration"])
    assert calib["split"] == "train" and calib["count"] == 2
    counts = int8_op_counts(int8)
    assert counts.int8_convs > 0 and counts.float_convs == 0
    a = run_eval(fp32, data, tmp_path / "fp32", progress=False)
    b = run_eval(int8, data, tmp_path / "int8", progress=False)
    assert b["miou"] == pytest.approx(a["miou"], abs=0.05)


def test_models_cli_times_int8_per_engine(capsys):
    argv = ["models", "--size", "128x64", "--latency", "--runs", "3", "--json"]
    assert main([*argv, "--config", "training/configs/unet_full.yaml"]) == 0
    row = json.loads(capsys.readouterr().out)["models"][0]
    assert row["model"] == "unet" and row["config"] == "unet_full.yaml"
    assert row["int8_onnxruntime-cpu_ms_p50"] > 0
