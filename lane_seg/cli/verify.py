"""`lane-seg verify DIR`: recompute every checksum of a dataset."""

from __future__ import annotations

import argparse
import sys

from lane_seg.cli.common import add_command


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "verify",
        "Check a dataset: every file present and matching its sha256; exit 1 if not.",
        "lane-seg verify runs/sim_data",
    )
    p.add_argument("root", help="dataset directory (the lane_seg dataset format)")
    p.add_argument("--max-lines", type=int, default=20, help="problems to print (default 20)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lane_seg.data.dataset import verify_dataset

    report = verify_dataset(args.root)
    problems = report.missing + report.corrupt + report.problems
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    for line in problems[: args.max_lines]:
        print(line, file=sys.stderr)
    if len(problems) > args.max_lines:
        print(f"... and {len(problems) - args.max_lines} more", file=sys.stderr)
    print(
        f"{args.root}: {report.checked} samples checked, {len(report.missing)} missing, "
        f"{len(report.corrupt)} corrupt, {len(report.problems)} other problems"
    )
    return 0 if report.ok else 1
