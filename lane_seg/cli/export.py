"""`lane-seg export`: a training checkpoint (.pt) -> ONNX with ModelInfo in metadata_props,
and with --int8 also its static int8 QDQ version for onnxruntime / OpenVINO, calibrated on a
fixed, seeded subset of a dataset's train split (identity recorded in the metadata)."""

from __future__ import annotations

import argparse
from pathlib import Path

from lane_seg.cli.common import add_command
from lane_seg.errors import LaneSegError
from lane_seg.outputs import output_file


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
    p.add_argument("--calib-size", type=int, default=64, help="calibration frames (default 64)")
    p.add_argument("--calib-seed", type=int, default=0, help="seed of the calibration subset")
    p.add_argument(
        "--calib-method",
        default="minmax",
        choices=("minmax", "entropy", "percentile"),
        help="activation range calibration (default minmax)",
    )
    p.set_defaults(func=run)


def _int8(args: argparse.Namespace, fp32: Path, info) -> None:
    from lane_seg.training.quant.calibration import select_calibration
    from lane_seg.training.quant.onnx_int8 import int8_op_counts, quantize_int8

    calib = select_calibration(args.calib, args.calib_size, args.calib_seed)
    inputs = calib.inputs(info.preprocess)
    out = quantize_int8(fp32, args.int8, inputs, info, calib.identity(), args.calib_method)
    ops = int8_op_counts(out)
    print(
        f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, int8 QDQ, {args.calib_method} "
        f"calibration on {args.calib_size} frames of {args.calib} train; {ops.summary})"
    )


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from lane_seg.models.checkpoint import load_model
    from lane_seg.models.export import PARITY_ATOL, PARITY_RTOL, export_onnx, onnx_parity

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
            output_file(path)
    model, info = load_model(args.model)
    export_onnx(model, info, out, opset=args.opset)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, arch {info.arch}, opset {args.opset})")
    if args.int8:
        _int8(args, out, info)
    if args.no_check:
        return 0
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, info.preprocess.height, info.preprocess.width))
    ok, diff = onnx_parity(model, out, x.astype(np.float32))
    verdict = "ok" if ok else "FAILED"
    print(
        f"parity vs PyTorch on 2 random inputs: max |diff| {diff:.2e} "
        f"(tolerance atol {PARITY_ATOL:g} + rtol {PARITY_RTOL:g}) {verdict}"
    )
    return 0 if ok else 1
