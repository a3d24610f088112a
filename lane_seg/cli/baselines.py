"""`lane-seg baselines`: the training baseline table (training/README.md) from the runs' files."""

from __future__ import annotations

import argparse
from pathlib import Path

from lane_seg.cli.common import add_command, command_line
from lane_seg.cli.models import int8_latency
from lane_seg.outputs import lock_folder, output_file


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "baselines",
        "Tabulate trained configs: size, GMACs, steps, CPU and wall minutes from each run's "
        "logs, and lane IoU / Dice / precision / recall / mIoU of its best.pt, evaluated now; "
        "with --real, every labelled real source's lane IoU and F1 within 8 px.",
        "lane-seg baselines --config training/configs/unet.yaml training/configs/enet.yaml "
        "--data data/sim --real ../shared/data --readme training/README.md",
    )
    p.add_argument("--config", nargs="+", required=True, type=Path, help="training configs")
    p.add_argument("--data", required=True, type=Path, help="dataset the runs trained on")
    p.add_argument("--split", default="val", help="its split to score (default val)")
    p.add_argument(
        "--real",
        type=Path,
        metavar="DATA_ROOT",
        help="shared data root (e.g. ../shared/data): a column per labelled real source",
    )
    p.add_argument(
        "--latency",
        type=int,
        metavar="THREADS",
        help="also time each architecture's int8 ONNX (onnxruntime, OpenVINO) on THREADS threads",
    )
    p.add_argument("--section", default="baselines", help="README section to rewrite")
    p.add_argument("--out", type=Path, default=Path("runs/baselines"), help="evaluations and table")
    p.add_argument(
        "--readme", type=Path, help="also rewrite this README's 'lane-seg baselines' section"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lane_seg.cli.readme import check_section, replace_section
    from lane_seg.training.eval.baselines import markdown, measure, write

    lock_folder(args.out)  # checked, and this command's alone until it returns (lane_seg.outputs)
    if args.readme:
        check_section(output_file(args.readme), args.section)  # before the evaluations
    rows = [measure(c, args.data, args.split, args.real, args.out) for c in args.config]
    if args.latency:
        for row in rows:
            row.latency = _latency(Path(row.config), args.latency)
    paths = write(rows, args.out)
    if args.readme:
        command = command_line("baselines", args, register)
        paths["readme"] = replace_section(args.readme, args.section, command, markdown(rows))
    print(markdown(rows))
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0


def _latency(config: Path, threads: int) -> dict[str, float]:
    from lane_seg.models import build_model
    from lane_seg.training.train.config import load_config

    cfg = load_config(config)
    model = build_model(cfg.model.name, **cfg.model.options)
    h, w = cfg.data.height, cfg.data.width
    timed = int8_latency(model, cfg.model.name, cfg.model.options, h, w, threads, runs=40)
    return {k.removeprefix("int8_").removesuffix("_ms_p50"): v for k, v in timed.items()}
