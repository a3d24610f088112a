"""`lane-seg quantize`: every precision of every model, measured in one run on this machine.

For each checkpoint: fp32 PyTorch (the baseline every speed-up is relative to), int8 PTQ and
(optionally) QAT through torch.ao (quant_torch), mixed precision under an IoU budget, fp32
ONNX, int8 QDQ ONNX and the TensorRT-ready symmetric QDQ ONNX in onnxruntime, and the low-bit
fake-quant study with bit-packed sizes. Each row: lane IoU, Dice, mIoU on the scored split,
size of the artifact on disk, batch-1 latency p50/p95 and frames/s after warm-up, speed-up
over fp32 PyTorch, and the engine / execution provider that actually ran.
"""

from __future__ import annotations

import copy
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lane_seg.artifact import ModelInfo
from lane_seg.data.dataset import read_image
from lane_seg.models.checkpoint import load_checkpoint, model_from_checkpoint
from lane_seg.models.export import export_onnx
from lane_seg.preprocess import to_input
from lane_seg.runtime.engines import Engine, OnnxRuntimeEngine, TorchEngine
from lane_seg.runtime.timing import Latency, time_calls
from lane_seg.training.eval.score import EvalFrames, score
from lane_seg.training.quant import lowbit as lb
from lane_seg.training.quant import onnx_int8 as oq
from lane_seg.training.quant import torch_ao as qt
from lane_seg.training.quant.calibration import (
    CalibrationSet,
    check_disjoint,
    eval_samples,
    select_calibration,
)
from lane_seg.training.quant.qat import FinetuneConfig, finetune
from lane_seg.training.quant.sensitivity import layer_sensitivity, mixed_precision, plot_sensitivity
from lane_seg.training.train.data import SegmentationSet
from lane_seg.training.train.losses import build_loss

REAL_EXTS = (".jpg", ".jpeg", ".png")


@dataclass
class ReportConfig:
    models: list[Path]
    data: Path
    calib: Path
    out: Path
    split: str = "val"
    max_eval: int | None = 200
    calib_size: int = 64
    calib_seed: int = 0
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


def _mb(path: Path) -> float:
    return path.stat().st_size / 1e6


def _backend(cfg: ReportConfig) -> qt.CpuBackend:
    auto = qt.detect_backend()
    if cfg.backend == "auto":
        return auto
    return qt.CpuBackend(cfg.backend, auto.reduce_range, f"{cfg.backend} (chosen by --backend)")


def _real_frames(root: Path | None, n: int, info: ModelInfo) -> list[np.ndarray]:
    """Up to n real camera frames (sorted paths under `root`), preprocessed for the model."""
    if root is None or not root.is_dir():
        return []
    paths = sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in REAL_EXTS and "gt_" not in str(p) and "truth" not in str(p)
    )
    step = max(1, len(paths) // max(1, n))
    return [to_input(read_image(p), info.preprocess) for p in paths[::step][:n]]


def _save_state(model: nn.Module, path: Path) -> Path:
    """The weights alone (no optimizer state): what a deployment would ship for PyTorch."""
    torch.save(model.state_dict(), path)
    return path


class ModelReport:
    """All rows for one checkpoint."""

    def __init__(
        self, ckpt: Path, cfg: ReportConfig, calib: CalibrationSet, scored: list[Any]
    ) -> None:

        self.ckpt, self.cfg = ckpt, cfg
        ck = load_checkpoint(ckpt)
        key = "ema_state_dict" if ck.get("eval_weights") == "ema" else "state_dict"
        self.model, self.info = model_from_checkpoint(ck, key)
        self.train_cfg: dict[str, Any] = ck.get("config", {}) or {}
        self.arch = self.info.arch
        self.name = f"{self.arch}:{ckpt.parent.name}/{ckpt.name}"
        self.dir = cfg.out / f"{self.arch}_{ckpt.parent.name}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.backend = _backend(cfg)
        self.pre = self.info.preprocess
        self.calib = calib
        self.calib_x = [torch.from_numpy(x) for x in calib.inputs(self.pre)]
        self.frames = EvalFrames.load(scored, self.pre)
        self.example = torch.from_numpy(self.frames.inputs[0])
        self.rows: list[Row] = []
        self.extra: dict[str, Any] = {"checkpoint": str(ckpt), "arch": self.arch}
        self.fp32_p50 = 0.0
        self.n_params = sum(p.numel() for p in self.model.parameters())
        self.extra["params"] = self.n_params

    # -- helpers ---------------------------------------------------------------------------
    def log(self, msg: str) -> None:
        if self.cfg.progress:
            print(f"[{time.strftime('%H:%M:%S')}] {self.arch}: {msg}", flush=True)

    def _row(
        self,
        precision: str,
        backend: str,
        provider: str,
        engine: Engine,
        artifact: Path,
        notes: str = "",
    ) -> Row:
        acc = score(engine, self.frames)
        x = self.frames.inputs[:1]
        lat = Latency.of(time_calls(engine.infer, x, self.cfg.runs, self.cfg.warmup))
        row = Row(
            self.name,
            self.arch,
            precision,
            backend,
            provider,
            round(acc.lane_iou, 2),
            round(acc.dice, 2),
            round(acc.miou, 2),
            round(_mb(artifact), 3),
            round(lat.p50_ms, 2),
            round(lat.p95_ms, 2),
            round(lat.fps, 1),
            artifact=str(artifact.relative_to(self.cfg.out)),
            notes=notes,
        )
        if precision == "fp32" and backend == "pytorch":
            self.fp32_p50 = lat.p50_ms
        row.speedup = round(self.fp32_p50 / lat.p50_ms, 2) if self.fp32_p50 else 1.0
        row.bytes_per_param = round(artifact.stat().st_size / self.n_params, 3)
        self.rows.append(row)
        self.log(f"{precision:>10} {backend:<22} IoU {row.lane_iou:6.2f}  p50 {row.p50_ms:.1f} ms")
        return row

    def _torch(self, model: nn.Module) -> TorchEngine:
        return TorchEngine(model, self.info, self.ckpt)

    def _onnx(self, path: Path) -> OnnxRuntimeEngine:
        return OnnxRuntimeEngine(path, self.cfg.threads, "onnxruntime-cpu")

    def _score(self, frames: EvalFrames) -> Callable[[nn.Module], float]:
        def lane_iou(m: nn.Module) -> float:
            return score(self._torch(m), frames).lane_iou

        return lane_iou

    def _info(self, precision: str, row: Row | None = None, **calib: Any) -> ModelInfo:
        metrics = {}
        if row is not None:
            metrics = {
                "lane_iou": row.lane_iou,
                "dice": row.dice,
                "miou": row.miou,
                "eval_data": f"{self.cfg.data}:{self.cfg.split}",
                "eval_frames": len(self.frames.inputs),
            }
        return replace(
            self.info,
            precision=precision,
            calibration={**calib} if calib else {},
            metrics=metrics or self.info.metrics,
        )

    # -- the rows --------------------------------------------------------------------------
    def run(self) -> None:
        torch_name = f"torch {torch.__version__} CPU"
        fp32_path = _save_state(self.model, self.dir / "fp32_state.pt")
        self._row("fp32", "pytorch", torch_name, self._torch(self.model), fp32_path)
        self.run_ptq(torch_name)
        if self.cfg.qat_epochs > 0:
            self.run_qat(torch_name)
        wanted = self.cfg.sens_archs is None or self.arch in self.cfg.sens_archs
        if wanted and (self.cfg.sensitivity or self.cfg.max_iou_drop is not None):
            self.run_sensitivity(torch_name)
        self.run_onnx()
        if self.cfg.lowbit and self.arch in self.cfg.lowbit_archs:
            self.run_lowbit()

    def run_ptq(self, torch_name: str) -> None:
        self.log(f"PTQ ({self.cfg.observer}, {self.backend.reason})")
        q = qt.ptq(self.model, self.example, self.calib_x, self.cfg.observer, self.backend)
        ops = qt.quantized_ops(q)
        self.extra["ptq_int8_ops"] = dict(ops)
        self.extra["float_kept"] = qt.float_kept_reasons(self.model)
        self.extra["ptq_float_layers"] = qt.float_compute_layers(q)
        path = _save_state(q, self.dir / "int8_ptq_state.pt")
        n_float = len(self.extra["ptq_float_layers"])
        notes = f"{sum(v for k, v in ops.items() if 'conv' in k.lower())} int8 conv modules"
        notes += f", {n_float} float weight layers" if n_float else ""
        self._row(
            "int8-ptq",
            f"pytorch-{self.backend.engine}",
            f"{torch_name}, quantized engine {self.backend.engine}"
            + (" reduce_range" if self.backend.reduce_range else ""),
            self._torch(q),
            path,
            notes,
        )

    def loss_fn(self) -> nn.Module:
        """The loss the checkpoint was trained with (its saved config), else BCE + Dice."""
        loss = dict(self.train_cfg.get("loss") or {})
        name = loss.pop("name", "bce_dice")
        opts = {k: v for k, v in loss.items() if k in ("bce_weight", "dice_weight", "smooth")}
        return build_loss(name, **opts)

    def run_qat(self, torch_name: str) -> None:
        train = select_calibration(self.cfg.calib, self.cfg.qat_frames, self.cfg.calib_seed + 1)
        data = SegmentationSet(train.samples, self.pre, None)
        ft = FinetuneConfig(
            epochs=self.cfg.qat_epochs,
            lr=self.cfg.qat_lr,
            freeze_bn_after=self.cfg.qat_freeze_bn * self.cfg.qat_epochs,
            freeze_observers_after=self.cfg.qat_freeze_observers * self.cfg.qat_epochs,
        )
        self.log(f"QAT {ft.epochs} epochs on {len(train.samples)} train frames")
        prepared = qt.prepare_qat(self.model, self.example, self.backend)
        log = finetune(
            prepared,
            data,
            self.loss_fn(),
            ft,
            qt.freeze_bn_stats,
            qt.freeze_observers,
            self.cfg.progress,
        )
        q = qt.convert(prepared)
        self.extra["qat"] = {**asdict(ft), **asdict(log), "train_frames": len(train.samples)}
        path = _save_state(q, self.dir / "int8_qat_state.pt")
        self._row(
            "int8-qat",
            f"pytorch-{self.backend.engine}",
            f"{torch_name}, quantized engine {self.backend.engine}",
            self._torch(q),
            path,
            f"{log.steps} steps, loss {log.first_loss:.3f}->{log.last_loss:.3f}",
        )

    def run_sensitivity(self, torch_name: str) -> None:
        n = self.cfg.sens_frames
        sub = EvalFrames(self.frames.inputs[:n], self.frames.masks[:n], self.frames.ids[:n])
        score = self._score(sub)
        fp32_iou = score(self.model)
        calib = self.calib_x[: max(8, len(self.calib_x) // 4)]
        self.log(f"per-layer sensitivity on {len(sub.inputs)} frames")
        ranking = layer_sensitivity(
            self.model,
            self.example,
            calib,
            score,
            fp32_iou,
            self.cfg.observer,
            self.backend,
            progress=self.cfg.progress,
        )
        plot = plot_sensitivity(
            ranking, f"{self.arch}: per-layer int8 sensitivity", self.dir / "sensitivity.png"
        )
        self.extra["sensitivity"] = {
            "frames": len(sub.inputs),
            "fp32_lane_iou": fp32_iou,
            "plot": str(plot.relative_to(self.cfg.out)),
            "layers": [asdict(s) for s in ranking],
        }
        if self.cfg.max_iou_drop is None:
            return
        mp = mixed_precision(
            self.model,
            self.example,
            self.calib_x,
            score,
            fp32_iou,
            ranking,
            self.cfg.max_iou_drop,
            self.cfg.observer,
            self.backend,
        )
        self.extra["mixed_precision"] = {
            "max_iou_drop": self.cfg.max_iou_drop,
            "float_layers": mp.float_layers,
            "drop_on_sensitivity_frames": mp.drop,
            "within_budget": mp.within_budget,
            "tried": mp.tried,
        }
        path = _save_state(mp.model, self.dir / "mixed_state.pt")
        self._row(
            "int8-mixed",
            f"pytorch-{self.backend.engine}",
            f"{torch_name}, quantized engine {self.backend.engine}",
            self._torch(mp.model),
            path,
            f"{len(mp.float_layers)} layer(s) float: {', '.join(mp.float_layers) or 'none'}",
        )

    def run_onnx(self) -> None:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            # The quantizer reads the exporter's file: its graph optimizers derive new tensor
            # names from existing ones, which can collide with compacted short names.
            export = export_onnx(self.model, self._info("fp32"), Path(tmp) / "fp32.onnx")
            self._run_onnx(export)

    def _run_onnx(self, export: Path) -> None:
        fp32 = self.dir / "fp32.onnx"
        oq.write_with_metadata(export, fp32, self._info("fp32"))  # the deployed file
        s32 = self._onnx(fp32)
        row = self._row("fp32", "onnxruntime", s32.device, s32, fp32)
        oq.write_with_metadata(fp32, fp32, self._info("fp32", row))
        reader = oq.FrameReader(x.numpy() for x in self.calib_x)
        ident = {**self.calib.identity(), "method": self.cfg.onnx_calib}
        real = _real_frames(self.cfg.real, self.cfg.real_frames, self.info)
        self.extra["onnx"] = {}
        for precision, trt in (("int8", False), ("int8-trt", True)):
            name = "int8_trt.onnx" if trt else "int8.onnx"
            self.log(f"onnxruntime static quantization -> {name}")
            path = oq.quantize_qdq(
                export, self.dir / name, reader, self._info(precision), self.cfg.onnx_calib, trt
            )
            check = oq.check_qdq(path, symmetric=trt)
            ops = oq.int8_op_counts(path)
            sess = self._onnx(path)
            row = self._row(
                precision,
                "onnxruntime",
                sess.device,
                sess,
                path,
                f"{ops.summary} in ORT's optimized graph"
                + ("" if check.ok else f"; QDQ check: {check.problems[0]}"),
            )
            info = self._info(precision, row, **ident, symmetric=trt)
            oq.write_with_metadata(path, path, info)
            entry: dict[str, Any] = {
                "file": str(path.relative_to(self.cfg.out)),
                "ort_optimized_ops": asdict(ops),
                "qdq_check": {**asdict(check), "zero_points": sorted(check.zero_points)},
            }
            entry["qdq_check"]["zp_dtypes"] = sorted(check.zp_dtypes)
            if real:
                entry["real_frames_vs_fp32"] = oq.compare_outputs(s32, sess, real)
            self.extra["onnx"][precision] = entry

    def run_lowbit(self) -> None:
        folded = lb.fold_batchnorm(self.model)

        study = []
        for text in self.cfg.lowbit:
            spec = lb.parse_spec(text)
            self.log(f"low-bit {spec.name}")
            m = lb.apply_fake_quant(copy.deepcopy(folded), spec)
            with torch.no_grad():  # initial activation ranges from the calibration frames
                for x in self.calib_x:
                    m(x)
            steps = 0
            if self.cfg.lowbit_epochs > 0:
                train = select_calibration(
                    self.cfg.calib, self.cfg.qat_frames, self.cfg.calib_seed + 1
                )
                ft = FinetuneConfig(
                    epochs=self.cfg.lowbit_epochs,
                    lr=self.cfg.qat_lr,
                    freeze_observers_after=0.75 * self.cfg.lowbit_epochs,
                )
                log = finetune(
                    m,
                    SegmentationSet(train.samples, self.pre, None),
                    self.loss_fn(),
                    ft,
                    None,
                    lambda mod: lb.set_observing(mod, False),
                    self.cfg.progress,
                )
                steps = log.steps
            lb.set_observing(m, False)
            acc = score(self._torch(m), self.frames)
            packed = lb.pack_model(m, spec, self.dir / f"lowbit_{_slug(spec.name)}.npz")
            study.append(
                {
                    "model": self.name,
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
                    "file": str(packed.path.relative_to(self.cfg.out)),
                }
            )
        self.extra["lowbit"] = study


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)


# ---------------------------------------------------------------------------------- output


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


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def environment(cfg: ReportConfig, calib: CalibrationSet, n_eval: int) -> dict[str, Any]:
    import onnxruntime

    be = _backend(cfg)
    return {
        "machine": f"{platform.machine()}, {_cpu_model()}, {os.cpu_count()} logical CPUs",
        "cpu_backend": be.reason,
        "threads": cfg.threads,
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "eval_data": f"{cfg.data} split {cfg.split}, {n_eval} frames",
        "calibration": f"{calib.root} split train, {len(calib.samples)} frames, seed "
        f"{calib.seed}, sha256 {calib.identity()['images_sha256'][:16]}",
        "observer (torch PTQ)": cfg.observer,
        "onnx calibration method": cfg.onnx_calib,
        "latency": f"batch 1, {cfg.warmup} warm-up + {cfg.runs} timed runs, "
        "model.eval() + torch.inference_mode()",
        "speed-up": "p50 of fp32 PyTorch (same architecture, same run) / p50 of the row",
        "load average at the end (1/5/15 min)": "/".join(f"{v:.1f}" for v in os.getloadavg()),
    }


def run_report(cfg: ReportConfig) -> dict[str, Any]:
    cfg.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.threads)
    scored = eval_samples(cfg.data, cfg.split, cfg.max_eval)
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
        rep = ModelReport(Path(ckpt), cfg, calib, scored)
        rep.run()
        rows += rep.rows
        per_model.append(rep.extra)
        lowbit += rep.extra.get("lowbit", [])
        # written after every model: a long run that is stopped keeps what it measured
        result = write_outputs(cfg, calib, len(scored), rows, lowbit, per_model)
    return result


def write_outputs(
    cfg: ReportConfig,
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
