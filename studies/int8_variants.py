"""Which onnxruntime int8 layout is fastest here, and what each costs in accuracy.

Every variant is written by the one exporter (lane_seg.training.quant.exporter.export_model with
an `Int8Layout`), calibrated by the one rule (lane_seg.bench.frames.calibration_set: simulator
frames without --data), and checked against the fp32 file on held-out frames of the same pool and
on real road frames. Then every file is timed on onnxruntime and OpenVINO in interleaved rounds
(lane_seg.bench.measure), batch 1, on --threads threads.

Weights: `--weights shipped` (default) puts the shipped model's own weights into the U-Net of
training/configs/roads_full.yaml: each convolution's int8 weight and int32 bias dequantized from
models/lane_unet_int8.onnx (BatchNorm was folded into them at export, so BatchNorm is set to the
identity: lane_seg.training.adapt.recover.load_folded). `--weights random` keeps the fresh
initialisation (speed does not depend on weights; accuracy parity does).

With a shared machine's load, `--clock cpu --threads 1` times each inference by the process's
CPU time (README.md, "onnxruntime int8 on x86 CPUs without VNNI"; `--reuse` times the files of
an earlier run again):

    .venv/bin/python studies/int8_variants.py --threads 1 --clock cpu --rounds 6 --iters 5 \
        --real ../shared/data/real/tusimple_lanenet/image
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

VARIANTS = {  # name -> Int8Layout keyword arguments; the first is the shipped default
    "QDQ u8s8 per-channel (default)": {},
    "QDQ u8s8 per-tensor": {"per_channel": False},
    "QDQ u8s8 per-channel reduce_range": {"reduce_range": True},
    "QDQ s8s8 per-channel": {"activations": "int8"},
    "QOperator u8s8 per-channel": {"operators": True},
}
SHIPPED = Path("models/lane_unet_int8.onnx")
CONFIG = Path("training/configs/roads_full.yaml")


def cpu_rounds(runners: list, inputs: list[np.ndarray], rounds: int, iters: int) -> None:
    """Interleaved rounds like lane_seg.bench.measure.time_rounds, timed by process CPU time."""
    for r in runners:
        for x in inputs[:5]:  # warm-up
            r.engine.infer(x)
    for k in range(rounds):
        for r in runners[k % len(runners) :] + runners[: k % len(runners)]:
            for i in range(iters):
                t0 = time.process_time()
                r.engine.infer(inputs[i % len(inputs)])
                r.times_ms.append((time.process_time() - t0) * 1e3)


def real_inputs(root: Path, count: int, pre) -> list[np.ndarray]:  # noqa: ANN001
    from lane_seg.data.dataset import read_image
    from lane_seg.preprocess import to_input

    found = root.glob("*") if root.is_dir() else []
    paths = sorted(p for p in found if p.suffix in (".jpg", ".png"))[:count]
    return [to_input(read_image(p), pre) for p in paths]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--weights", choices=("shipped", "random"), default="shipped")
    ap.add_argument("--data", type=Path, help="dataset whose train split calibrates")
    ap.add_argument("--real", type=Path, default=Path("../shared/data/real/tusimple_lanenet/image"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--out", type=Path, default=Path("runs/int8_variants"))
    ap.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="cpu: the process's CPU time per run (with --threads 1: the work of one inference, "
        "less sensitive to other processes on a shared machine than wall time)",
    )
    ap.add_argument(
        "--reuse", action="store_true", help="time the files of an earlier run in --out again"
    )
    args = ap.parse_args()

    import torch

    from lane_seg.artifact import ModelInfo
    from lane_seg.bench.frames import calibration_set, load_frames
    from lane_seg.bench.measure import Runner, time_rounds
    from lane_seg.errors import LaneSegError
    from lane_seg.models import build_model
    from lane_seg.preprocess import PreprocessConfig, to_input
    from lane_seg.runtime.engines import OnnxRuntimeEngine, OpenVinoEngine, openvino_available
    from lane_seg.runtime.hwinfo import CpuInfo
    from lane_seg.runtime.timing import percentile
    from lane_seg.training.adapt.recover import load_folded
    from lane_seg.training.quant.exporter import Int8Layout, export_model
    from lane_seg.training.quant.onnx_int8 import compare_outputs, int8_op_counts
    from lane_seg.training.train.config import load_config

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    cfg = load_config(CONFIG)
    torch.manual_seed(0)
    model = build_model(cfg.model.name, **cfg.model.options).eval()
    if args.weights == "shipped":  # the file's own computation in fp32 (the BatchNorm folded)
        model, _ = load_folded(SHIPPED)
    info = ModelInfo(
        cfg.model.name, cfg.model.options, PreprocessConfig(cfg.data.height, cfg.data.width)
    )
    calib = calibration_set(args.data)
    real = real_inputs(args.real, 8, info.preprocess)
    frames, frames_desc = load_frames(None, 8)
    inputs = [to_input(f, info.preprocess) for f in frames]
    files: dict[str, Path] = {}
    rows: dict[str, dict] = {}
    if args.reuse:
        rows = json.loads((args.out / "int8_variants.json").read_text())["variants"]
        files = {name: args.out / f"int8_{i}.onnx" for i, name in enumerate(VARIANTS)}
    for i, (name, kw) in enumerate(VARIANTS.items()):
        if args.reuse:
            break
        out = args.out / f"int8_{i}.onnx"
        layout = Int8Layout(**kw)
        done = export_model(model, args.out / "fp32.onnx", out, calib, info=info, layout=layout)
        files[name] = done.int8
        ops = int8_op_counts(done.int8)
        rows[name] = {"layout": kw, "held_out": done.int8_parity["int8"], "ops": ops.ops}
        print(name, json.dumps(rows[name]["held_out"]), ops.ops, flush=True)
    files = {"fp32": args.out / "fp32.onnx", **files}
    s32 = OnnxRuntimeEngine(files["fp32"], args.threads, "onnxruntime-cpu")
    for name, path in list(files.items())[1:]:
        if real and "real" not in rows[name]:
            s8 = OnnxRuntimeEngine(path, args.threads, "onnxruntime-cpu")
            rows[name]["real"] = compare_outputs(s32, s8, real)
    rows["fp32"] = {}
    for r in rows.values():
        r.pop("openvino", None)
    runners = []
    for name, path in files.items():
        engines = [("onnxruntime", OnnxRuntimeEngine(path, args.threads, "onnxruntime-cpu"))]
        if openvino_available():
            try:
                engines.append(("openvino", OpenVinoEngine(path, args.threads)))
            except LaneSegError as exc:  # OpenVINO reads QDQ files, not QOperator ones
                rows[name]["openvino"] = str(exc).splitlines()[0]
        for runtime, engine in engines:
            runners.append(Runner(name, runtime, "", path, runtime, engine, 0.0, 0.0))
    load = os.getloadavg()
    if args.clock == "cpu":
        cpu_rounds(runners, inputs, args.rounds, args.iters)
    else:
        time_rounds(runners, inputs, args.rounds, args.iters, warmup=5)
    timed = {(r.name, r.runtime): percentile(r.times_ms, 50) for r in runners}
    report = {
        "hardware": CpuInfo.detect().line(),
        "threads": args.threads,
        "weights": args.weights,
        "calibration": calib.identity(),
        "timing_frames": frames_desc,
        "timing": f"batch 1, {args.rounds} interleaved rounds x {args.iters} runs, p50 of "
        + ("process CPU time" if args.clock == "cpu" else "wall time"),
        "load_average_before_after": [list(load), list(os.getloadavg())],
        "time": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "p50_ms": {f"{n} | {rt}": ms for (n, rt), ms in timed.items()},
        "variants": rows,
    }
    (args.out / "int8_variants.json").write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report, files, timed, rows))
    return 0


def markdown(report: dict, files: dict, timed: dict, rows: dict) -> str:
    lines = [
        f"{report['hardware']}; {report['threads']} threads; {report['timing']}; "
        f"weights: {report['weights']}",
        "",
        "| file | onnxruntime p50 ms | OpenVINO p50 ms | masks vs fp32, held-out sim (IoU %) "
        "| masks vs fp32, real (IoU %) |",
        "|---|---|---|---|---|",
    ]
    for name in files:
        r = rows.get(name, {})
        held = r.get("held_out", {}).get("mask_agreement_iou")
        real = r.get("real", {}).get("mask_agreement_iou")
        cells = [
            f"{timed.get((name, 'onnxruntime'), float('nan')):.1f}",
            "cannot read it" if "openvino" in r else f"{timed[(name, 'openvino')]:.1f}",
            "" if held is None else f"{held:.1f}",
            "" if real is None else f"{real:.1f}",
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
