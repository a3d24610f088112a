"""`lane-seg eval`: lane IoU, Dice/F1, precision, recall and mIoU of a .pt or .onnx model."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lane_seg.cli.common import add_command, command_line
from lane_seg.errors import LaneSegError
from lane_seg.outputs import lock_folder, output_file
from lane_seg.runtime.shipped_model import manifest_entry_check, record_real_f1


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "eval",
        "Evaluate a .pt or .onnx model on labelled frames (threshold 0.5 on the sigmoid); "
        "writes per_image.csv, summary.json and gallery.png.",
        "lane-seg eval --model runs/unet/best.pt --data data/sim --split val --out runs/eval/unet",
    )
    p.add_argument(
        "--model",
        required=True,
        action="append",
        help="checkpoint .pt or exported .onnx (several with --real)",
    )
    p.add_argument(
        "--data",
        help="dataset root (dataset.json), a folder with image/ + gt_binary_image/, "
        "or an image folder together with --masks",
    )
    p.add_argument(
        "--real",
        metavar="DATA_ROOT",
        help="instead of --data: the real-frame scoreboard, every labelled real source under "
        "DATA_ROOT (e.g. ../shared/data) by its own labels",
    )
    p.add_argument("--masks", help="mask folder paired by file name with the images in --data")
    p.add_argument("--split", default="val", help="dataset split: train|val|test|all (val)")
    p.add_argument("--out", help="output folder (default runs/eval/<model>-<data>)")
    p.add_argument("--gallery", type=int, default=4, help="worst/best frames shown (4; 0 = none)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--readme",
        type=Path,
        help="with --real: also rewrite this README's 'lane-seg scoreboard' section",
    )
    p.add_argument(
        "--manifest",
        type=Path,
        help="with --real: write each model's mean F1 within 8 px into this shipped-models "
        "manifest (models/shipped.json; the models must sit beside it)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lane_seg.training.eval.evaluate import run_eval

    if args.real:
        return _scoreboard(args)
    if not args.data or len(args.model) > 1:
        raise LaneSegError("give one --model and --data, or --real DATA_ROOT")
    model, data = Path(args.model[0]), Path(args.data)
    out = Path(args.out or Path("runs/eval") / f"{model.stem}-{data.name}")
    lock_folder(out)  # checked, and this command's alone until it returns (lane_seg.outputs)
    summary = run_eval(
        model,
        data,
        out,
        split=args.split,
        masks=Path(args.masks) if args.masks else None,
        gallery_size=args.gallery,
        progress=not args.no_progress,
    )
    if skipped := summary["skipped_malformed"]:
        more = f" and {len(skipped) - 1} more" if len(skipped) > 1 else ""
        print(
            f"skipped {len(skipped)} frame(s) with a malformed label ({skipped[0]}{more}; all "
            f"in {out / 'summary.json'})",
            file=sys.stderr,
        )
    keys = ("images", "lane_iou", "dice", "precision", "recall", "miou")
    print(json.dumps({k: summary[k] for k in keys} | {"out": str(out)}))
    return 0


def _scoreboard(args: argparse.Namespace) -> int:
    from lane_seg.cli.readme import check_section, replace_section
    from lane_seg.training.eval.scoreboard import mean_real_f1, run_scoreboard

    if args.readme:
        check_section(output_file(args.readme), "scoreboard")  # before scoring, not after
    if args.manifest:
        for model in args.model:  # before scoring, not after
            manifest_entry_check(output_file(args.manifest), Path(model))
    out = Path(args.out or "runs/scoreboard")
    lock_folder(out)  # checked, and this command's alone until it returns (lane_seg.outputs)
    result = run_scoreboard(
        [Path(m) for m in args.model], Path(args.real), out, sheets=args.gallery > 0
    )
    for model, entry in result["models"].items():
        for row in entry["sources"]:
            if skipped := row["skipped_malformed"]:
                more = f" and {len(skipped) - 1} more" if len(skipped) > 1 else ""
                print(
                    f"{model} on {row['source']}: skipped {len(skipped)} frame(s) with a malformed "
                    f"label ({skipped[0]}{more}; all in scoreboard.json)",
                    file=sys.stderr,
                )
    if args.manifest:
        for model, entry in result["models"].items():
            record_real_f1(args.manifest, Path(model), mean_real_f1(entry))
            print(f"{args.manifest}: {Path(model).name} mean real F1 within 8 px written")
    table = (out / "scoreboard.md").read_text()
    if args.readme:
        replace_section(args.readme, "scoreboard", command_line("eval", args, register), table)
    print(table)
    print(f"written: {out}/scoreboard.json, scoreboard.md and contact sheets")
    return 0
