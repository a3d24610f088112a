"""`lane-seg models`: the registered architectures with parameters and GMACs at an input size."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lane_seg.cli import add_command
from lane_seg.errors import LaneSegError


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "models",
        "List the segmentation models with parameters and GMACs (conv/linear/matmul MACs).",
        "lane-seg models --size 256x512 --config training/configs/unet.yaml",
    )
    p.add_argument("--size", default="256x512", help="input HxW (default 256x512)")
    p.add_argument(
        "--config",
        nargs="*",
        default=[],
        help="training configs (.yaml) whose model sections to measure instead of the defaults",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def parse_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise LaneSegError(f"--size {text!r}: expected HxW such as 256x512") from None
    if h <= 0 or w <= 0:
        raise LaneSegError(f"--size {text!r}: height and width must be positive")
    return h, w


def _model_entries(configs: list[str]) -> list[tuple[str, str, dict]]:
    from lane_seg.models import model_names

    if not configs:
        return [(name, "defaults", {}) for name in model_names()]
    from lane_seg.training.config import load_config

    entries = []
    for path in configs:
        cfg = load_config(path)
        entries.append((cfg.model.name, Path(path).name, cfg.model.options))
    return entries


def run(args: argparse.Namespace) -> int:
    from lane_seg.models import build_model, check_input_size, complexity

    h, w = parse_size(args.size)
    rows = []
    for name, source, options in _model_entries(args.config):
        model = build_model(name, **options)
        check_input_size(model, h, w)
        c = complexity(model, h, w)
        rows.append(
            {"model": name, "config": source, "params": c.params, "gmacs": round(c.gmacs, 3)}
        )
    if args.json:
        print(json.dumps({"size": [h, w], "models": rows}, indent=2))
        return 0
    print(f"input 3x{h}x{w}; MACs of Conv/ConvTranspose/Linear/attention matmuls")
    print(f"{'model':<15} {'config':<20} {'params':>12} {'M params':>9} {'GMACs':>8}")
    for r in rows:
        print(
            f"{r['model']:<15} {r['config']:<20} {r['params']:>12,} "
            f"{r['params'] / 1e6:>9.3f} {r['gmacs']:>8.3f}"
        )
    return 0
