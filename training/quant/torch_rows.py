"""The PyTorch rows of `lane-seg quantize`: fp32, int8 PTQ and QAT through torch.ao, and mixed
precision (the most sensitive layers kept float) under a lane-IoU budget."""

from __future__ import annotations

from dataclasses import asdict

from lane_seg.training.eval.score import EvalFrames
from lane_seg.training.quant import torch_ao as qt
from lane_seg.training.quant.qat import FinetuneConfig, finetune
from lane_seg.training.quant.sensitivity import layer_sensitivity, mixed_precision, plot_sensitivity
from lane_seg.training.quant.subject import Subject, save_state
from lane_seg.training.train.data import SegmentationSet


def _quantized_provider(s: Subject) -> str:
    return f"{s.torch_name}, quantized engine {s.backend.engine}"


def fp32_row(s: Subject) -> None:
    """The baseline every speed-up is relative to."""
    path = save_state(s.model, s.dir / "fp32_state.pt")
    s.row("fp32", "pytorch", s.torch_name, s.torch_engine(s.model), path)


def ptq_row(s: Subject) -> None:
    s.log(f"PTQ ({s.cfg.observer}, {s.backend.reason})")
    q = qt.ptq(s.model, s.example, s.calib_x, s.cfg.observer, s.backend)
    ops = qt.quantized_ops(q)
    s.extra["ptq_int8_ops"] = dict(ops)
    s.extra["float_kept"] = qt.float_kept_reasons(s.model)
    s.extra["ptq_float_layers"] = qt.float_compute_layers(q)
    path = save_state(q, s.dir / "int8_ptq_state.pt")
    n_float = len(s.extra["ptq_float_layers"])
    notes = f"{sum(v for k, v in ops.items() if 'conv' in k.lower())} int8 conv modules"
    notes += f", {n_float} float weight layers" if n_float else ""
    provider = _quantized_provider(s) + (" reduce_range" if s.backend.reduce_range else "")
    s.row("int8-ptq", f"pytorch-{s.backend.engine}", provider, s.torch_engine(q), path, notes)


def qat_row(s: Subject) -> None:
    cfg = s.cfg
    data = SegmentationSet(s.finetune_samples(), s.pre, None)
    ft = FinetuneConfig(
        epochs=cfg.qat_epochs,
        lr=cfg.qat_lr,
        freeze_bn_after=cfg.qat_freeze_bn * cfg.qat_epochs,
        freeze_observers_after=cfg.qat_freeze_observers * cfg.qat_epochs,
    )
    s.log(f"QAT {ft.epochs} epochs on {len(data)} train frames")
    prepared = qt.prepare_qat(s.model, s.example, s.backend)
    log = finetune(
        prepared, data, s.loss_fn(), ft, qt.freeze_bn_stats, qt.freeze_observers, cfg.progress
    )
    q = qt.convert(prepared)
    s.extra["qat"] = {**asdict(ft), **asdict(log), "train_frames": len(data)}
    path = save_state(q, s.dir / "int8_qat_state.pt")
    notes = f"{log.steps} steps, loss {log.first_loss:.3f}->{log.last_loss:.3f}"
    provider = _quantized_provider(s)
    s.row("int8-qat", f"pytorch-{s.backend.engine}", provider, s.torch_engine(q), path, notes)


def sensitivity_rows(s: Subject) -> None:
    """Per-layer int8 sensitivity (and its plot); with --max-iou-drop the mixed-precision row."""
    n = s.cfg.sens_frames
    sub = EvalFrames(s.frames.inputs[:n], s.frames.masks[:n], s.frames.ids[:n])
    lane_iou = s.lane_iou_on(sub)
    fp32_iou = lane_iou(s.model)
    calib = s.calib_x[: max(8, len(s.calib_x) // 4)]
    s.log(f"per-layer sensitivity on {len(sub.inputs)} frames")
    ranking = layer_sensitivity(
        s.model,
        s.example,
        calib,
        lane_iou,
        fp32_iou,
        s.cfg.observer,
        s.backend,
        progress=s.cfg.progress,
    )
    plot = plot_sensitivity(
        ranking, f"{s.arch}: per-layer int8 sensitivity", s.dir / "sensitivity.png"
    )
    s.extra["sensitivity"] = {
        "frames": len(sub.inputs),
        "fp32_lane_iou": fp32_iou,
        "plot": str(plot.relative_to(s.cfg.out)),
        "layers": [asdict(x) for x in ranking],
    }
    if s.cfg.max_iou_drop is None:
        return
    mp = mixed_precision(
        s.model,
        s.example,
        s.calib_x,
        lane_iou,
        fp32_iou,
        ranking,
        s.cfg.max_iou_drop,
        s.cfg.observer,
        s.backend,
    )
    s.extra["mixed_precision"] = {
        "max_iou_drop": s.cfg.max_iou_drop,
        "float_layers": mp.float_layers,
        "drop_on_sensitivity_frames": mp.drop,
        "within_budget": mp.within_budget,
        "tried": mp.tried,
    }
    path = save_state(mp.model, s.dir / "mixed_state.pt")
    notes = f"{len(mp.float_layers)} layer(s) float: {', '.join(mp.float_layers) or 'none'}"
    provider = _quantized_provider(s)
    s.row(
        "int8-mixed", f"pytorch-{s.backend.engine}", provider, s.torch_engine(mp.model), path, notes
    )
