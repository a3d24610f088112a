"""`lane-seg export`: a training checkpoint (.pt) -> ONNX with ModelInfo in metadata_props,
and with --int8 also its static int8 QDQ version for onnxruntime / OpenVINO, calibrated on a
fixed, seeded subset of a dataset's train split (identity recorded in the metadata); through
lane_seg.training.quant.exporter, the one exporter."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lane_seg.cli.common import add_command
from lane_seg.errors import LaneSegError
from lane_seg.outputs import lock_file


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "export",
        "Export a checkpoint to ONNX (fp32, opset >= 17) and check parity with PyTorch.",
        "lane-seg export --model runs/unet/best.pt --out runs/unet/unet.onnx "
        "--int8 runs/unet/unet_int8.onnx --calib data/sim",
    )
    p.add_argument("--model", required=True, help="checkpoint .pt written by `lane-seg train`")
    p.add_argument("--out", required=True, help="output .onnx path")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset, >= 17 (default 17)")
    p.add_argument(
        "--no-check", action="store_true", help="skip the onnxruntime-vs-PyTorch parity check"
    )
    p.add_argument("--int8", help="also write the int8 QDQ ONNX here (needs --calib)")
    p.add_argument("--calib", type=Path, help="dataset whose train split calibrates --int8")
    p.add_argument(
        "--calib-size", type=int, help="calibration frames (default 64, as in every command)"
    )
    p.add_argument("--calib-seed", type=int, help="seed of the calibration subset (default 0)")
    p.add_argument(
        "--calib-method",
        default="minmax",
        choices=("minmax", "entropy", "percentile"),
        help="activation range calibration (default minmax)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lane_seg.training.quant.calibration import CALIB_SEED, CALIB_SIZE, select_calibration
    from lane_seg.training.quant.exporter import export_model

    if args.opset < 17:
        raise LaneSegError(f"--opset {args.opset}: use 17 or newer")
    out = Path(args.out)
    for name, path in (("--out", out), ("--int8", args.int8)):
        if path and Path(path).suffix != ".onnx":
            raise LaneSegError(f"{name} {path}: the file name must end in .onnx")
    if args.int8 and not args.calib:
        raise LaneSegError("--int8 needs --calib DATASET (its train split calibrates)")
    for path in (out, args.int8):
        if path:
            lock_file(path)  # checked, and this command's alone until it returns (lane_seg.outputs)
    calib = None
    if args.int8:
        size = CALIB_SIZE if args.calib_size is None else args.calib_size
        seed = CALIB_SEED if args.calib_seed is None else args.calib_seed
        calib = select_calibration(args.calib, size, seed)
    done = export_model(
        Path(args.model),
        out,
        args.int8,
        calib,
        method=args.calib_method,
        opset=args.opset,
        check=not args.no_check,
    )
    _report(done, args)
    return 0 if done.ok else 1


def _report(done: Any, args: argparse.Namespace) -> None:
    """What `done` (exporter.Exported) wrote and what its parity checks found."""
    from lane_seg.models.export import PARITY_ATOL, PARITY_RTOL

    mb = done.fp32.stat().st_size / 1e6
    print(f"wrote {done.fp32} ({mb:.2f} MB, arch {done.info.arch}, opset {args.opset})")
    if done.int8 is not None:
        c = done.calibration
        print(
            f"wrote {done.int8} ({done.int8.stat().st_size / 1e6:.2f} MB, int8 QDQ, "
            f"{c['method']} calibration on {c['count']} frames of {c['dataset']} train, "
            f"seed {c['seed']}; {done.int8_ops.summary})"
        )
    if p := done.fp32_parity:
        verdict = "ok" if p["ok"] else "FAILED"
        print(
            f"parity vs PyTorch on {p['inputs']} random inputs: max |diff| "
            f"{p['max_abs_diff']:.2e} (tolerance atol {PARITY_ATOL:g} + rtol {PARITY_RTOL:g}) "
            f"{verdict}"
        )
    if q := done.int8_parity.get("int8"):
        print(
            f"int8 vs fp32 on {q['frames']} held-out train frames: masks agree "
            f"{q['mask_agreement_iou']:.1f} % (IoU), max |logit diff| "
            f"{q['max_abs_logit_diff']:.3f}"
        )
