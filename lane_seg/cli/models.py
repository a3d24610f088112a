"""`lane-seg models`: the registered architectures with parameters and GMACs at an input size,
and with --latency the batch-1 latency of each one's int8 QDQ ONNX on onnxruntime and OpenVINO.

Beside the GMACs, two floors: the ms a frame takes at the int8 peak (`hwinfo.CpuInfo.peak_gmacs`)
of this CPU and of the AVX2 class without VNNI at its cores and clock. They are estimates from
GMACs and the instruction set, not measurements: no engine runs a model faster than its floor,
so a model whose AVX2 floor is over a budget cannot meet it on such a CPU.

Speed does not depend on the weights, so --latency times freshly initialised models (calibrated
on simulator frames, lane_seg.bench.frames): it is how the default model's architecture is
chosen against the speed target before spending CPU hours on training (see models/README.md)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lane_seg.cli.common import add_command
from lane_seg.errors import LaneSegError
from lane_seg.runtime.hwinfo import CpuInfo
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
    p.add_argument(
        "--crop-top",
        type=float,
        default=0.0,
        help="fraction of the frame's height cut from the top before the resize (the road "
        "crop, preprocessing crop_top); --size is the model input after the cut (default 0)",
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
    from lane_seg.preprocess import PreprocessConfig

    w, h = parse_size(args.size, "--size", maximum=MAX_INPUT_SIDE)
    try:
        pre = PreprocessConfig(height=h, width=w, crop_top=args.crop_top)
    except ValueError as exc:
        raise LaneSegError(f"--crop-top: {exc}") from None
    cpu = CpuInfo.detect()
    peaks = {"here": cpu.peak_gmacs("int8"), "avx2": cpu.avx2_class().peak_gmacs("int8")}
    rows = []
    for name, source, options in _model_entries(args.config):
        model = build_model(name, **options)
        check_input_size(model, h, w)
        c = complexity(model, h, w)
        row = {"model": name, "config": source, "params": c.params, "gmacs": round(c.gmacs, 3)}
        row.update({f"int8_floor_ms_{k}": round(1e3 * c.gmacs / p, 2) for k, p in peaks.items()})
        if args.latency:
            timed = int8_latency(model, name, options, h, w, args.threads, args.runs, pre.crop_top)
            row.update(timed)
        rows.append(row)
    if args.json:
        timing = {"threads": args.threads, "runs": args.runs} if args.latency else {}
        hardware = {"hardware": cpu.line(), "int8_peak_gmacs_per_s": peaks}
        out = {"size": [h, w], "crop_top": args.crop_top, **hardware, **timing, "models": rows}
        print(json.dumps(out, indent=2))
        return 0
    print_table(rows, pre, cpu, peaks, args)
    return 0


def print_table(rows: list[dict], pre, cpu, peaks: dict[str, float], args) -> None:
    crop = f", the frame's top {pre.crop_top:g} cut first" if pre.crop_top else ""
    print(
        f"{cpu.line()}\ninput {pre.width}x{pre.height} (tensor 1x3x{pre.height}x{pre.width}"
        f"{crop}); MACs of Conv/ConvTranspose/Linear/attention matmuls"
    )
    lat = [k for k in rows[0] if k.endswith("_ms_p50")] if rows else []
    floors = ["int8_floor_ms_here", "int8_floor_ms_avx2"]
    print(
        f"{'model':<15} {'config':<20} {'params':>12} {'M params':>9} {'GMACs':>8}"
        + "".join(f" {k:>24}" for k in lat + floors)
    )
    for r in rows:
        print(
            f"{r['model']:<15} {r['config']:<20} {r['params']:>12,} "
            f"{r['params'] / 1e6:>9.3f} {r['gmacs']:>8.3f}"
            + "".join(f" {r[k]:>24.2f}" for k in lat + floors)
        )
    if lat:
        print(f"int8 latency: batch 1, {args.threads} thread(s), median of {args.runs} runs")
    print(
        f"int8_floor_ms: estimates from GMACs, not measured: GMACs / the int8 peak of this CPU "
        f"({peaks['here']:.0f} GMAC/s) and of the AVX2 class without VNNI at its cores and "
        f"clock ({peaks['avx2']:.0f} GMAC/s); no engine runs faster than its floor"
    )


def int8_latency(
    model,
    name: str,
    options: dict,
    h: int,
    w: int,
    threads: int,
    runs: int,
    crop_top: float = 0.0,
) -> dict:
    """Median ms of the model's int8 QDQ ONNX per engine (onnxruntime-cpu, openvino), written by
    the one exporter and calibrated as every command is without a dataset (simulator frames),
    cut (`crop_top`) and resized as the model's own input would be."""
    import tempfile

    import numpy as np

    from lane_seg.artifact import ModelInfo
    from lane_seg.bench.frames import calibration_set
    from lane_seg.preprocess import PreprocessConfig
    from lane_seg.runtime.engines import load_engine, openvino_available, time_engine
    from lane_seg.training.quant.exporter import export_model

    info = ModelInfo(name, options, PreprocessConfig(height=h, width=w, crop_top=crop_top))
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
