"""`lane-seg baselines`: the training baseline table (training/README.md) from the runs' files."""

from __future__ import annotations

import argparse
from pathlib import Path

from lane_seg.cli.common import add_command, command_line
from lane_seg.outputs import output_dir, output_file


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "baselines",
        "Tabulate trained configs: size, GMACs, steps, CPU and wall minutes from each run's "
        "logs, and lane IoU / Dice / precision / recall / mIoU of its best.pt, evaluated now.",
        "lane-seg baselines --config training/configs/unet.yaml training/configs/enet.yaml "
        "--data data/sim --real ../shared/data/real/tusimple_lanenet --readme training/README.md",
    )
    p.add_argument("--config", nargs="+", required=True, type=Path, help="training configs")
    p.add_argument("--data", required=True, type=Path, help="dataset the runs trained on")
    p.add_argument("--split", default="val", help="its split to score (default val)")
    p.add_argument("--real", type=Path, help="labelled real frames (zero-shot column)")
    p.add_argument("--out", type=Path, default=Path("runs/baselines"), help="evaluations and table")
    p.add_argument(
        "--readme", type=Path, help="also rewrite this README's 'lane-seg baselines' section"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lane_seg.readme import check_section, replace_section
    from lane_seg.training.eval.baselines import markdown, measure, write

    output_dir(args.out)
    if args.readme:
        check_section(output_file(args.readme), "baselines")  # before the evaluations
    rows = [measure(c, args.data, args.split, args.real, args.out) for c in args.config]
    paths = write(rows, args.out)
    if args.readme:
        command = command_line("baselines", args, register)
        paths["readme"] = replace_section(args.readme, "baselines", command, markdown(rows))
    print(markdown(rows))
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0
