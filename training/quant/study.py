"""`lane-seg quantize`: every precision of every model, measured in one run on this machine.

For each checkpoint (a `Subject`): fp32 PyTorch (the baseline every speed-up is relative to),
int8 PTQ and (optionally) QAT through torch.ao, mixed precision under an IoU budget
(torch_rows), the exporter's fp32, int8 QDQ and TensorRT-ready int8 ONNX in onnxruntime
(onnx_rows), and the low-bit fake-quant study with bit-packed sizes (lowbit_rows). Each row:
lane IoU, Dice, mIoU on the scored split, size on disk, batch-1 latency p50/p95 and frames/s
after warm-up, speed-up over fp32 PyTorch, and the engine that ran; summary writes them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from lane_seg.training.eval.score import scored_samples
from lane_seg.training.quant.calibration import check_disjoint, select_calibration
from lane_seg.training.quant.lowbit_rows import lowbit_study
from lane_seg.training.quant.onnx_rows import onnx_rows
from lane_seg.training.quant.subject import QuantizeConfig, Row, Subject
from lane_seg.training.quant.summary import write_outputs
from lane_seg.training.quant.torch_rows import fp32_row, ptq_row, qat_row, sensitivity_rows


def measure(s: Subject) -> None:
    """Every row the options ask for, in the order of the report."""
    cfg = s.cfg
    fp32_row(s)
    ptq_row(s)
    if cfg.qat_epochs > 0:
        qat_row(s)
    wanted = cfg.sens_archs is None or s.arch in cfg.sens_archs
    if wanted and (cfg.sensitivity or cfg.max_iou_drop is not None):
        sensitivity_rows(s)
    onnx_rows(s)
    if cfg.lowbit and s.arch in cfg.lowbit_archs:
        lowbit_study(s)


def run_study(cfg: QuantizeConfig) -> dict[str, Any]:
    cfg.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.threads)
    scored = scored_samples(cfg.data, cfg.split, cfg.max_eval)
    calib = select_calibration(cfg.calib, cfg.calib_size, cfg.calib_seed)
    check_disjoint(calib, scored)
    (cfg.out / "calibration.json").write_text(
        json.dumps({**calib.identity(), "ids": calib.ids}, indent=2) + "\n"
    )
    rows: list[Row] = []
    per_model: list[dict[str, Any]] = []
    lowbit: list[dict] = []
    result: dict[str, Any] = {}
    for ckpt in cfg.models:
        s = Subject(Path(ckpt), cfg, calib, scored)
        measure(s)
        rows += s.rows
        per_model.append(s.extra)
        lowbit += s.extra.get("lowbit", [])
        # written after every model: a long run that is stopped keeps what it measured
        result = write_outputs(cfg, calib, len(scored), rows, lowbit, per_model)
    return result
