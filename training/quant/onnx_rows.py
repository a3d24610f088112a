"""The ONNX rows of `lane-seg quantize`: the exporter's fp32, int8 and TensorRT-ready int8 files
in onnxruntime, each scored and timed, its structure checked, and against fp32 on held-out train
frames and (with --real) on real camera frames."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from lane_seg.artifact import ModelInfo
from lane_seg.data.dataset import read_image
from lane_seg.models.export import read_metadata, write_metadata
from lane_seg.preprocess import PreprocessConfig, to_input
from lane_seg.training.quant import onnx_int8 as oq
from lane_seg.training.quant.exporter import export_model
from lane_seg.training.quant.subject import Row, Subject

REAL_EXTS = (".jpg", ".jpeg", ".png")


def real_inputs(root: Path | None, n: int, pre: PreprocessConfig) -> list[np.ndarray]:
    """Up to n real camera frames (sorted paths under `root`), preprocessed for the model."""
    if root is None or not root.is_dir():
        return []
    paths = sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in REAL_EXTS and "gt_" not in str(p) and "truth" not in str(p)
    )
    step = max(1, len(paths) // max(1, n))
    return [to_input(read_image(p), pre) for p in paths[::step][:n]]


def _keep_scores(s: Subject, path: Path, row: Row) -> None:
    """The file's own metadata, with the row's accuracy as its metrics."""
    info = ModelInfo.from_metadata(read_metadata(path), source=str(path))
    write_metadata(path, s.scored_info(info, row))


def onnx_rows(s: Subject) -> None:
    cfg = s.cfg
    s.log("export: fp32, int8 and int8-trt ONNX")
    done = export_model(
        s.model,
        s.dir / "fp32.onnx",
        s.dir / "int8.onnx",
        s.calib,
        info=s.info,
        method=cfg.onnx_calib,
        trt_out=s.dir / "int8_trt.onnx",
        threads=cfg.threads,
    )
    s32 = s.onnx_engine(done.fp32)
    _keep_scores(s, done.fp32, s.row("fp32", "onnxruntime", s32.device, s32, done.fp32))
    real = real_inputs(cfg.real, cfg.real_frames, s.info.preprocess)
    s.extra["onnx"] = {"fp32_vs_pytorch": done.fp32_parity}
    for precision, path, trt in (("int8", done.int8, False), ("int8-trt", done.int8_trt, True)):
        check = oq.check_qdq(path, symmetric=trt)
        ops = oq.int8_op_counts(path)
        sess = s.onnx_engine(path)
        notes = f"{ops.summary} in ORT's optimized graph"
        notes += "" if check.ok else f"; QDQ check: {check.problems[0]}"
        _keep_scores(s, path, s.row(precision, "onnxruntime", sess.device, sess, path, notes))
        entry: dict[str, Any] = {
            "file": str(path.relative_to(cfg.out)),
            "ort_optimized_ops": asdict(ops),
            "qdq_check": {
                **asdict(check),
                "zero_points": sorted(check.zero_points),
                "zp_dtypes": sorted(check.zp_dtypes),
            },
            "held_out_vs_fp32": done.int8_parity.get(precision),
        }
        if real:
            entry["real_frames_vs_fp32"] = oq.compare_outputs(s32, sess, real)
        s.extra["onnx"][precision] = entry
