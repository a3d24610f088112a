"""The low-bit study of `lane-seg quantize`: each format (W4A8, ternary, binary, ...) as
fake-quant, briefly fine-tuned, scored, and its weights bit-packed to measure the file."""

from __future__ import annotations

import copy
from typing import Any

import torch

from lane_seg.training.eval.score import score
from lane_seg.training.quant import lowbit as lb
from lane_seg.training.quant.qat import FinetuneConfig, finetune
from lane_seg.training.quant.subject import Subject
from lane_seg.training.train.data import SegmentationSet


def lowbit_study(s: Subject) -> None:
    folded = lb.fold_batchnorm(s.model)
    s.extra["lowbit"] = [_one_format(s, folded, text) for text in s.cfg.lowbit]


def _finetune(s: Subject, m: torch.nn.Module) -> int:
    cfg = s.cfg
    ft = FinetuneConfig(
        epochs=cfg.lowbit_epochs, lr=cfg.qat_lr, freeze_observers_after=0.75 * cfg.lowbit_epochs
    )
    log = finetune(
        m,
        SegmentationSet(s.finetune_samples(), s.pre, None),
        s.loss_fn(),
        ft,
        None,
        lambda mod: lb.set_observing(mod, False),
        cfg.progress,
    )
    return log.steps


def _one_format(s: Subject, folded: torch.nn.Module, text: str) -> dict[str, Any]:
    spec = lb.parse_spec(text)
    s.log(f"low-bit {spec.name}")
    m = lb.apply_fake_quant(copy.deepcopy(folded), spec)
    with torch.no_grad():  # initial activation ranges from the calibration frames
        for x in s.calib_x:
            m(x)
    steps = _finetune(s, m) if s.cfg.lowbit_epochs > 0 else 0
    lb.set_observing(m, False)
    acc = score(s.torch_engine(m), s.frames)
    packed = lb.pack_model(m, spec, s.dir / f"lowbit_{_slug(spec.name)}.npz")
    return {
        "model": s.name,
        "format": spec.name,
        "weight_bits": spec.w_bits,
        "act_bits": spec.a_bits,
        "finetune_steps": steps,
        "lane_iou": round(acc.lane_iou, 2),
        "dice": round(acc.dice, 2),
        "miou": round(acc.miou, 2),
        "packed_file_mb": round(packed.file_bytes / 1e6, 4),
        "packed_weight_bytes": packed.packed_weight_bytes,
        "scale_bytes": packed.scale_bytes,
        "float_bytes": packed.float_bytes,
        "weight_params": packed.weight_params,
        "bits_per_weight": round(packed.bits_per_weight, 3),
        "file": str(packed.path.relative_to(s.cfg.out)),
    }


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)
