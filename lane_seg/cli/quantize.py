"""`lane-seg quantize`: PTQ / QAT / mixed precision / ONNX int8 / low-bit study, and the report."""

from __future__ import annotations

import argparse
from pathlib import Path

from lane_seg.cli.common import add_command
from lane_seg.errors import LaneSegError
from lane_seg.outputs import lock_folder

OBSERVERS = ("minmax", "moving-average", "histogram")
CALIB_METHODS = ("minmax", "entropy", "percentile")


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "quantize",
        "Quantize checkpoints (int8 PTQ/QAT in PyTorch, int8 QDQ ONNX for onnxruntime and "
        "TensorRT, low-bit study) and write a measured report (markdown, JSON, plot).",
        "lane-seg quantize --model runs/unet/best.pt --data data/sim --calib data/sim "
        "--out runs/quant --qat-epochs 1 --max-iou-drop 0.5",
    )
    p.add_argument("--model", action="append", required=True, help="checkpoint .pt (repeat)")
    p.add_argument("--data", required=True, type=Path, help="dataset scored (its --split)")
    p.add_argument("--calib", required=True, type=Path, help="dataset whose TRAIN split calibrates")
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument("--split", default="val", choices=("val", "test"), help="scored split")
    p.add_argument("--max-eval", type=int, default=200, help="scored frames (0 = all)")
    p.add_argument(
        "--calib-size", type=int, help="calibration frames (train; default 64, as in every command)"
    )
    p.add_argument("--calib-seed", type=int, help="seed of the calibration subset (default 0)")
    p.add_argument("--observer", default="histogram", choices=OBSERVERS)
    p.add_argument(
        "--backend",
        default="auto",
        choices=("auto", "x86", "fbgemm", "qnnpack"),
        help="torch quantized engine (auto: by CPU, VNNI from /proc/cpuinfo)",
    )
    p.add_argument("--onnx-calib", default="minmax", choices=CALIB_METHODS)
    p.add_argument("--threads", type=int, default=1, help="CPU threads, torch and onnxruntime")
    p.add_argument("--runs", type=int, default=30, help="timed runs per row")
    p.add_argument("--warmup", type=int, default=5, help="warm-up runs per row")
    p.add_argument("--qat-epochs", type=float, default=0.0, help="QAT fine-tune epochs (0: off)")
    p.add_argument("--qat-frames", type=int, default=256, help="train frames for fine-tuning")
    p.add_argument("--qat-lr", type=float, default=1e-4)
    p.add_argument(
        "--qat-freeze-bn",
        type=float,
        default=0.5,
        help="freeze BN statistics after this fraction of the fine-tune (default 0.5)",
    )
    p.add_argument(
        "--qat-freeze-observers",
        type=float,
        default=0.75,
        help="freeze quantization ranges after this fraction of the fine-tune (default 0.75)",
    )
    p.add_argument(
        "--lowbit",
        default="",
        help="low-bit study formats, comma separated, e.g. W8A8,W4A8,W4A4,Q1.6/Q4.3,ternary,"
        "binary ('default' for that list)",
    )
    p.add_argument("--lowbit-archs", default="unet", help="architectures in the study")
    p.add_argument("--lowbit-epochs", type=float, default=1.0, help="fake-quant QAT epochs")
    p.add_argument("--sensitivity", action="store_true", help="per-layer sensitivity + plot")
    p.add_argument(
        "--max-iou-drop",
        type=float,
        default=None,
        help="mixed precision: keep the most sensitive layers float until the lane IoU drop "
        "is within this many points",
    )
    p.add_argument("--sens-frames", type=int, default=32, help="frames for sensitivity")
    p.add_argument(
        "--sens-archs",
        default="",
        help="architectures for sensitivity / mixed precision, comma separated (default: all; "
        "one PTQ per weight layer, so E-Net's 91 layers take a while)",
    )
    p.add_argument("--real", type=Path, default=None, help="real frames: int8 vs fp32 check")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lane_seg.training.quant.calibration import CALIB_SEED, CALIB_SIZE
    from lane_seg.training.quant.lowbit import DEFAULT_SPECS, parse_spec
    from lane_seg.training.quant.study import run_study
    from lane_seg.training.quant.subject import QuantizeConfig

    for m in args.model:
        if not Path(m).is_file():
            raise LaneSegError(f"checkpoint {m} not found; train one with `lane-seg train`")
    calib_size = CALIB_SIZE if args.calib_size is None else args.calib_size
    if calib_size < 1 or args.runs < 1 or args.threads < 1:
        raise LaneSegError("--calib-size, --runs and --threads must be at least 1")
    lowbit = [s for s in args.lowbit.split(",") if s.strip()]
    if lowbit == ["default"]:
        lowbit = list(DEFAULT_SPECS)
    for s in lowbit:
        parse_spec(s)  # fail before any work
    lock_folder(args.out)  # checked, and this command's alone until it returns (lane_seg.outputs)
    cfg = QuantizeConfig(
        models=[Path(m) for m in args.model],
        data=args.data,
        calib=args.calib,
        out=args.out,
        split=args.split,
        max_eval=args.max_eval or None,
        calib_size=calib_size,
        calib_seed=CALIB_SEED if args.calib_seed is None else args.calib_seed,
        observer=args.observer,
        backend=args.backend,
        onnx_calib=args.onnx_calib,
        threads=args.threads,
        runs=args.runs,
        warmup=args.warmup,
        qat_epochs=args.qat_epochs,
        qat_frames=args.qat_frames,
        qat_lr=args.qat_lr,
        qat_freeze_bn=args.qat_freeze_bn,
        qat_freeze_observers=args.qat_freeze_observers,
        lowbit=lowbit,
        lowbit_archs=[a.strip() for a in args.lowbit_archs.split(",") if a.strip()],
        lowbit_epochs=args.lowbit_epochs,
        sensitivity=args.sensitivity,
        max_iou_drop=args.max_iou_drop,
        sens_frames=args.sens_frames,
        sens_archs=[a.strip() for a in args.sens_archs.split(",") if a.strip()] or None,
        real=args.real,
        progress=not args.quiet,
    )
    result = run_study(cfg)
    print((args.out / "report.md").read_text())
    print(f"wrote {args.out / 'report.md'}, report.json, accuracy_latency.png")
    return 0 if result["rows"] else 1
