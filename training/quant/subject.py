"""One checkpoint under `lane-seg quantize`: its model, frames and the measured rows.

`QuantizeConfig` holds the command's options; `Subject` loads one checkpoint, its scored and
calibration frames, and turns an engine into a `Row` (lane IoU through
lane_seg.training.eval.score, size on disk, latency through lane_seg.runtime.timing). The rows
themselves are made by torch_rows (PyTorch fp32, PTQ, QAT, mixed precision), onnx_rows (the
exporter's files in onnxruntime) and lowbit_rows (the low-bit study); study runs them all.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lane_seg.artifact import ModelInfo
from lane_seg.data.dataset import Sample
from lane_seg.models.checkpoint import load_checkpoint, model_from_checkpoint
from lane_seg.runtime.engines import Engine, OnnxRuntimeEngine, TorchEngine
from lane_seg.runtime.timing import Latency, time_calls
from lane_seg.training.eval.score import EvalFrames, score
from lane_seg.training.quant import torch_ao as qt
from lane_seg.training.quant.calibration import (
    CALIB_SEED,
    CALIB_SIZE,
    CalibrationSet,
    select_calibration,
)
from lane_seg.training.train.losses import build_loss


@dataclass
class QuantizeConfig:
    models: list[Path]
    data: Path
    calib: Path
    out: Path
    split: str = "val"
    max_eval: int | None = 200
    calib_size: int = CALIB_SIZE
    calib_seed: int = CALIB_SEED
    observer: str = "histogram"
    backend: str = "auto"
    onnx_calib: str = "minmax"
    threads: int = 1
    runs: int = 30
    warmup: int = 5
    qat_epochs: float = 0.0
    qat_frames: int = 256
    qat_lr: float = 1e-4
    qat_freeze_bn: float = 0.5
    qat_freeze_observers: float = 0.75
    lowbit: list[str] = field(default_factory=list)
    lowbit_archs: list[str] = field(default_factory=lambda: ["unet"])
    lowbit_epochs: float = 1.0
    sensitivity: bool = False
    max_iou_drop: float | None = None
    sens_frames: int = 32
    sens_archs: list[str] | None = None  # None = every model
    real: Path | None = None
    real_frames: int = 8
    progress: bool = True


@dataclass
class Row:
    model: str
    arch: str
    precision: str
    backend: str
    provider: str
    lane_iou: float
    dice: float
    miou: float
    size_mb: float
    p50_ms: float
    p95_ms: float
    fps: float
    speedup: float = 1.0
    bytes_per_param: float = 0.0
    artifact: str = ""
    notes: str = ""


def cpu_backend(cfg: QuantizeConfig) -> qt.CpuBackend:
    """torch's quantized engine: by CPU, or the one --backend names."""
    auto = qt.detect_backend()
    if cfg.backend == "auto":
        return auto
    return qt.CpuBackend(cfg.backend, auto.reduce_range, f"{cfg.backend} (chosen by --backend)")


def save_state(model: nn.Module, path: Path) -> Path:
    """The weights alone (no optimizer state): what a deployment would ship for PyTorch."""
    torch.save(model.state_dict(), path)
    return path


class Subject:
    """One checkpoint: the model, its frames, and every row measured of it."""

    def __init__(
        self, ckpt: Path, cfg: QuantizeConfig, calib: CalibrationSet, scored: list[Sample]
    ) -> None:
        self.ckpt, self.cfg, self.calib = ckpt, cfg, calib
        ck = load_checkpoint(ckpt)
        key = "ema_state_dict" if ck.get("eval_weights") == "ema" else "state_dict"
        self.model, self.info = model_from_checkpoint(ck, key)
        self.train_cfg: dict[str, Any] = ck.get("config", {}) or {}
        self.arch = self.info.arch
        self.name = f"{self.arch}:{ckpt.parent.name}/{ckpt.name}"
        self.dir = cfg.out / f"{self.arch}_{ckpt.parent.name}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.backend = cpu_backend(cfg)
        self.pre = self.info.preprocess
        self.calib_x = [torch.from_numpy(x) for x in calib.inputs(self.pre)]
        self.frames = EvalFrames.load(scored, self.pre)
        self.example = torch.from_numpy(self.frames.inputs[0])
        self.rows: list[Row] = []
        self.n_params = sum(p.numel() for p in self.model.parameters())
        self.extra: dict[str, Any] = {
            "checkpoint": str(ckpt),
            "arch": self.arch,
            "params": self.n_params,
        }
        self.fp32_p50 = 0.0
        self.torch_name = f"torch {torch.__version__} CPU"

    def log(self, msg: str) -> None:
        if self.cfg.progress:
            print(f"[{time.strftime('%H:%M:%S')}] {self.arch}: {msg}", flush=True)

    def row(
        self,
        precision: str,
        backend: str,
        provider: str,
        engine: Engine,
        artifact: Path,
        notes: str = "",
    ) -> Row:
        """Score and time `engine` on the scored frames; the row is kept."""
        acc = score(engine, self.frames)
        x = self.frames.inputs[:1]
        lat = Latency.of(time_calls(engine.infer, x, self.cfg.runs, self.cfg.warmup))
        size = artifact.stat().st_size
        row = Row(
            self.name,
            self.arch,
            precision,
            backend,
            provider,
            round(acc.lane_iou, 2),
            round(acc.dice, 2),
            round(acc.miou, 2),
            round(size / 1e6, 3),
            round(lat.p50_ms, 2),
            round(lat.p95_ms, 2),
            round(lat.fps, 1),
            bytes_per_param=round(size / self.n_params, 3),
            artifact=str(artifact.relative_to(self.cfg.out)),
            notes=notes,
        )
        if precision == "fp32" and backend == "pytorch":
            self.fp32_p50 = lat.p50_ms
        row.speedup = round(self.fp32_p50 / lat.p50_ms, 2) if self.fp32_p50 else 1.0
        self.rows.append(row)
        self.log(f"{precision:>10} {backend:<22} IoU {row.lane_iou:6.2f}  p50 {row.p50_ms:.1f} ms")
        return row

    def torch_engine(self, model: nn.Module) -> TorchEngine:
        return TorchEngine(model, self.info, self.ckpt)

    def onnx_engine(self, path: Path) -> OnnxRuntimeEngine:
        return OnnxRuntimeEngine(path, self.cfg.threads, "onnxruntime-cpu")

    def lane_iou_on(self, frames: EvalFrames) -> Callable[[nn.Module], float]:
        def lane_iou(m: nn.Module) -> float:
            return score(self.torch_engine(m), frames).lane_iou

        return lane_iou

    def scored_info(self, info: ModelInfo, row: Row) -> ModelInfo:
        """`info` with the row's accuracy as its metrics (what the file's metadata says)."""
        metrics = {
            "lane_iou": row.lane_iou,
            "dice": row.dice,
            "miou": row.miou,
            "eval_data": f"{self.cfg.data}:{self.cfg.split}",
            "eval_frames": len(self.frames.inputs),
        }
        return replace(info, metrics=metrics)

    def loss_fn(self) -> nn.Module:
        """The loss the checkpoint was trained with (its saved config), else BCE + Dice."""
        loss = dict(self.train_cfg.get("loss") or {})
        name = loss.pop("name", "bce_dice")
        opts = {k: v for k, v in loss.items() if k in ("bce_weight", "dice_weight", "smooth")}
        return build_loss(name, **opts)

    def finetune_samples(self) -> list[Sample]:
        """Train frames for QAT and the low-bit fine-tune (another seed than calibration's)."""
        cfg = self.cfg
        return select_calibration(cfg.calib, cfg.qat_frames, cfg.calib_seed + 1).samples
