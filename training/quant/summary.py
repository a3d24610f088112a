"""What `lane-seg quantize` writes: report.md (the rows, the low-bit study, the targets met),
report.json and the accuracy-vs-latency plot, with the machine and settings they were measured
under."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from lane_seg.runtime.hwinfo import CpuInfo
from lane_seg.training.quant.calibration import CalibrationSet
from lane_seg.training.quant.subject import QuantizeConfig, Row, cpu_backend


def markdown(rows: list[Row], lowbit: list[dict], env: dict[str, Any]) -> str:
    head = (
        "| model | precision | backend | provider | lane IoU | Dice | mIoU | size MB | B/param | "
        "p50 ms | p95 ms | fps | speed-up | notes |\n|" + "---|" * 14 + "\n"
    )
    body = "".join(
        f"| {r.model} | {r.precision} | {r.backend} | {r.provider} | {r.lane_iou:.2f} | "
        f"{r.dice:.2f} | {r.miou:.2f} | {r.size_mb:.3f} | {r.bytes_per_param:.2f} | "
        f"{r.p50_ms:.2f} | {r.p95_ms:.2f} | "
        f"{r.fps:.1f} | {r.speedup:.2f}x | {r.notes} |\n"
        for r in rows
    )
    text = "# Quantization report\n\n" + "".join(f"- {k}: {v}\n" for k, v in env.items())
    text += "\n" + head + body
    if lowbit:
        text += (
            "\n## Low-bit study (fake-quant; size = bit-packed weights + fp32 scales + other "
            "float parameters, file on disk)\n\n| model | format | W bits | A bits | steps | "
            "lane IoU | Dice | mIoU | packed file MB | bits/weight |\n|" + "---|" * 10 + "\n"
        )
        text += "".join(
            f"| {s['model']} | {s['format']} | {s['weight_bits']} | {s['act_bits']} | "
            f"{s['finetune_steps']} | {s['lane_iou']:.2f} | {s['dice']:.2f} | {s['miou']:.2f} | "
            f"{s['packed_file_mb']:.4f} | {s['bits_per_weight']:.2f} |\n"
            for s in lowbit
        )
    goals = targets(rows, lowbit)
    if goals:
        text += "\n## Targets, from the rows above\n\n| model | target | limit | measured "
        text += "| met |\n|---|---|---|---|---|\n"
        text += "".join(
            f"| {g['model']} | {g['target']} | {g['limit']} | {g['value']:.3f} | "
            f"{'yes' if g['met'] else '**no**'} |\n"
            for g in goals
        )
    return text


TARGETS = (  # (what, limit, "drop" = lane IoU points below fp32 at most, "ratio" = at least)
    ("int8 PTQ (pytorch) lane IoU drop", 1.0, "drop"),
    ("int8 QAT (pytorch) lane IoU drop", 0.3, "drop"),
    ("W4A8 QAT lane IoU drop", 2.0, "drop"),
    ("int8 ONNX file smaller than fp32 ONNX", 3.8, "ratio"),
)


def targets(rows: list[Row], lowbit: list[dict]) -> list[dict[str, Any]]:
    """The quantization targets, per model, from the measured rows (absent rows are skipped)."""
    out = []
    for model in dict.fromkeys(r.model for r in rows):
        by = {(r.precision, r.backend.split("-")[0]): r for r in rows if r.model == model}
        fp32 = by.get(("fp32", "pytorch"))
        w4a8 = next((s for s in lowbit if s["model"] == model and s["format"] == "W4A8"), None)
        values = {
            TARGETS[0][0]: by.get(("int8-ptq", "pytorch")),
            TARGETS[1][0]: by.get(("int8-qat", "pytorch")),
        }
        for (what, limit, _kind), got in zip(TARGETS[:2], values.values(), strict=True):
            if fp32 and got:
                d = fp32.lane_iou - got.lane_iou
                out.append(dict(model=model, target=what, limit=limit, value=d, met=d <= limit))
        if fp32 and w4a8:
            d = fp32.lane_iou - w4a8["lane_iou"]
            out.append(dict(model=model, target=TARGETS[2][0], limit=2.0, value=d, met=d <= 2.0))
        f32, i8 = by.get(("fp32", "onnxruntime")), by.get(("int8", "onnxruntime"))
        if f32 and i8:
            ratio = f32.size_mb / i8.size_mb
            out.append(
                dict(model=model, target=TARGETS[3][0], limit=3.8, value=ratio, met=ratio >= 3.8)
            )
    return out


def plot(rows: list[Row], path: Path) -> Path:
    """Lane IoU vs p50 latency; marker area proportional to size on disk."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 6))
    archs = sorted({r.arch for r in rows})
    markers = dict(zip(archs, "osD^v<>", strict=False))
    precisions = sorted({f"{r.precision}/{r.backend}" for r in rows})
    colors = {p: plt.cm.tab10(i % 10) for i, p in enumerate(precisions)}
    biggest = max(r.size_mb for r in rows) or 1.0
    for r in rows:
        key = f"{r.precision}/{r.backend}"
        ax.scatter(
            r.p50_ms,
            r.lane_iou,
            s=20.0 + 600.0 * r.size_mb / biggest,
            marker=markers[r.arch],
            color=colors[key],
            alpha=0.6,
            edgecolors="black",
        )
        label = f"{r.arch} {r.precision} ({r.backend.split('-')[0]})"
        ax.annotate(label, (r.p50_ms, r.lane_iou), fontsize=7)
    for p in precisions:
        ax.scatter([], [], color=colors[p], label=p)
    ax.set_xlabel("latency p50 (ms, batch 1, this CPU)")
    ax.set_ylabel("lane IoU (%)")
    ax.set_title("accuracy vs latency (marker area proportional to size on disk)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def environment(cfg: QuantizeConfig, calib: CalibrationSet, n_eval: int) -> dict[str, Any]:
    import onnxruntime

    be = cpu_backend(cfg)
    return {
        "machine": f"{platform.machine()}, {CpuInfo.detect().line()}, "
        f"{os.cpu_count()} logical CPUs",
        "cpu_backend": be.reason,
        "threads": cfg.threads,
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "eval_data": f"{cfg.data} split {cfg.split}, {n_eval} frames",
        "calibration": f"{calib.source} split {calib.split}, {len(calib.samples)} frames, seed "
        f"{calib.seed}, sha256 {calib.identity()['images_sha256'][:16]}",
        "observer (torch PTQ)": cfg.observer,
        "onnx calibration method": cfg.onnx_calib,
        "latency": f"batch 1, {cfg.warmup} warm-up + {cfg.runs} timed runs, "
        "model.eval() + torch.inference_mode()",
        "speed-up": "p50 of fp32 PyTorch (same architecture, same run) / p50 of the row",
        "load average at the end (1/5/15 min)": "/".join(f"{v:.1f}" for v in os.getloadavg()),
    }


def write_outputs(
    cfg: QuantizeConfig,
    calib: CalibrationSet,
    n_eval: int,
    rows: list[Row],
    lowbit: list[dict],
    per_model: list[dict[str, Any]],
) -> dict[str, Any]:
    env = environment(cfg, calib, n_eval)
    result = {
        "environment": env,
        "calibration": calib.identity(),
        "rows": [asdict(r) for r in rows],
        "lowbit": lowbit,
        "targets": targets(rows, lowbit),
        "models": per_model,
    }
    (cfg.out / "report.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    (cfg.out / "report.md").write_text(markdown(rows, lowbit, env))
    plot(rows, cfg.out / "accuracy_latency.png")
    return result
