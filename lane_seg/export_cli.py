"""`lane-seg export`: a training checkpoint (.pt) -> ONNX with ModelInfo in metadata_props."""

from __future__ import annotations

import argparse
from pathlib import Path

from lane_seg.cli import add_command
from lane_seg.errors import LaneSegError


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "export",
        "Export a checkpoint to ONNX (fp32, opset >= 17) and check parity with PyTorch.",
        "lane-seg export --model runs/unet/best.pt --out runs/unet/unet.onnx",
    )
    p.add_argument("--model", required=True, help="checkpoint .pt written by `lane-seg train`")
    p.add_argument("--out", required=True, help="output .onnx path")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset, >= 17 (default 17)")
    p.add_argument(
        "--no-check", action="store_true", help="skip the onnxruntime-vs-PyTorch parity check"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from lane_seg.models.checkpoint import load_model
    from lane_seg.models.export import PARITY_ATOL, PARITY_RTOL, export_onnx, onnx_parity

    if args.opset < 17:
        raise LaneSegError(f"--opset {args.opset}: use 17 or newer")
    out = Path(args.out)
    if out.suffix != ".onnx":
        raise LaneSegError(f"--out {out}: the file name must end in .onnx")
    model, info = load_model(args.model)
    export_onnx(model, info, out, opset=args.opset)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, arch {info.arch}, opset {args.opset})")
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
