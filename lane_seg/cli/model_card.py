"""`lane-seg model-card`: write models/README.md from the outputs of one `make model` run
(`lane_seg.training.eval.card` builds it)."""

from __future__ import annotations

import argparse
from pathlib import Path

from lane_seg.cli.common import add_command
from lane_seg.outputs import lock_file


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "model-card",
        "Write the default model's card (models/README.md) from a `make model` run's outputs.",
        "lane-seg model-card --stages training/configs/roads_full.yaml --run runs/model "
        "--out models/README.md",
    )
    p.add_argument("--fp32", type=Path, default=Path("models/lane_unet_fp32.onnx"))
    p.add_argument("--int8", type=Path, default=Path("models/lane_unet_int8.onnx"))
    p.add_argument("--data", type=Path, default=Path("data/roads"), help="training dataset")
    p.add_argument(
        "--stages", nargs="+", required=True, type=Path, help="training configs, in order"
    )
    p.add_argument(
        "--run",
        type=Path,
        default=Path("runs/model"),
        help="folder with eval_{fp32,int8}/, scoreboard/, sim_{groundtruth,fp32,int8}/, "
        "bench/bench.{json,md} and selection.json",
    )
    p.add_argument("--remedies", type=Path, help="baselines.json of `make remedies`")
    p.add_argument("--tradeoff", type=Path, help="baselines.json of `make tradeoff`")
    p.add_argument("--candidates", type=Path, help="baselines.json of `make candidates`")
    p.add_argument("--made-by", default="make model", help="the command that made it all")
    p.add_argument("--out", type=Path, default=Path("models/README.md"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lane_seg.training.eval.card import CardInputs, write_card

    lock_file(args.out)  # checked, and this command's alone until it returns (lane_seg.outputs)
    inputs = CardInputs(
        fp32=args.fp32,
        int8=args.int8,
        data=args.data,
        stages=args.stages,
        run=args.run,
        remedies=args.remedies,
        tradeoff=args.tradeoff,
        candidates=args.candidates,
        made_by=args.made_by,
    )
    write_card(inputs, args.out)
    print(f"wrote {args.out}")
    return 0
