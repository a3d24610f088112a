"""`lane-seg models`: the registered architectures with parameters and GMACs at an input size,
and with --latency the batch-1 latency of each one's int8 QDQ ONNX on onnxruntime and OpenVINO.

Speed does not depend on the weights, so --latency times freshly initialised models (calibrated
on simulator frames, lane_seg.bench.frames): it is how the default model's architecture is
chosen against the speed target before spending CPU hours on training (see models/README.md)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lane_seg.cli.common import add_command
from lane_seg.sizes import MAX_INPUT_SIDE, parse_size


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "models",
        "List the segmentation models with parameters and GMACs (conv/linear/matmul MACs).",
        "lane-seg models --size 512x256 --config training/configs/unet.yaml",
    )
    p.add_argument("--size", default="512x256", help="model input WIDTHxHEIGHT (default 512x256)")
    p.add_argument(
        "--config",
        nargs="*",
        default=[],
        help="training configs (.yaml) whose model sections to measure instead of the defaults",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--latency",
        action="store_true",
        help="also time each model's int8 QDQ ONNX (onnxruntime, OpenVINO when installed)",
    )
    p.add_argument("--threads", type=int, default=1, help="inference threads for --latency")
    p.add_argument("--runs", type=int, default=40, help="timed runs per engine for --latency")
    p.set_defaults(func=run)


def _model_entries(configs: list[str]) -> list[tuple[str, str, dict]]:
    from lane_seg.models import model_names

    if not configs:
        return [(name, "defaults", {}) for name in model_names()]
    from lane_seg.training.train.config import load_config

    entries = []
    for path in configs:
        cfg = load_config(path)
        entries.append((cfg.model.name, Path(path).name, cfg.model.options))
    return entries


def run(args: argparse.Namespace) -> int:
    from lane_seg.models import build_model, check_input_size, complexity

    w, h = parse_size(args.size, "--size", maximum=MAX_INPUT_SIDE)
    rows = []
    for name, source, options in _model_entries(args.config):
        model = build_model(name, **options)
        check_input_size(model, h, w)
        c = complexity(model, h, w)
        row = {"model": name, "config": source, "params": c.params, "gmacs": round(c.gmacs, 3)}
        if args.latency:
            row.update(int8_latency(model, name, options, h, w, args.threads, args.runs))
        rows.append(row)
    if args.json:
        timing = {"threads": args.threads, "runs": args.runs} if args.latency else {}
        print(json.dumps({"size": [h, w], **timing, "models": rows}, indent=2))
        return 0
    print(
        f"input {w}x{h} (tensor 1x3x{h}x{w}); MACs of Conv/ConvTranspose/Linear/attention matmuls"
    )
    lat = [k for k in rows[0] if k.endswith("_ms_p50")] if rows else []
    print(
        f"{'model':<15} {'config':<20} {'params':>12} {'M params':>9} {'GMACs':>8}"
        + "".join(f" {k:>24}" for k in lat)
    )
    for r in rows:
        print(
            f"{r['model']:<15} {r['config']:<20} {r['params']:>12,} "
            f"{r['params'] / 1e6:>9.3f} {r['gmacs']:>8.3f}"
            + "".join(f" {r[k]:>24.2f}" for k in lat)
        )
    if lat:
        print(f"int8 latency: batch 1, {args.threads} thread(s), median of {args.runs} runs")
    return 0


def int8_latency(model, name: str, options: dict, h: int, w: int, threads: int, runs: int) -> dict:
    """Median ms of the model's int8 QDQ ONNX per engine (onnxruntime-cpu, openvino), written by
    the one exporter and calibrated as every command is without a dataset (simulator frames)."""
    import tempfile

    import numpy as np

    from lane_seg.artifact import ModelInfo
    from lane_seg.bench.frames import calibration_set
    from lane_seg.preprocess import PreprocessConfig
    from lane_seg.runtime.engines import load_engine, openvino_available, time_engine
    from lane_seg.training.quant.exporter import export_model

    info = ModelInfo(name, options, PreprocessConfig(height=h, width=w))
    engines = ["onnxruntime-cpu"] + (["openvino"] if openvino_available() else [])
    with tempfile.TemporaryDirectory() as tmp:
        fp32, int8 = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        done = export_model(model, fp32, int8, calibration_set(None), info=info, check=False)
        return {
            f"int8_{e}_ms_p50": float(
                np.median(time_engine(load_engine(done.int8, e, threads), runs))
            )
            for e in engines
        }
