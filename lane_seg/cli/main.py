"""The `lane-seg` command line: one entry point, one module per sub-command.

Each command module exposes `register(subparsers)`, which adds its parser and sets `func`.
Command modules import their implementation (torch, rclpy, OpenCV behind it) inside their run
functions, so `lane-seg --help` stays fast and works with only the runtime extras installed.
"""

from __future__ import annotations

import argparse
import sys

from lane_seg.cli import (
    adapt,
    bag,
    baselines,
    bench,
    collect,
    demo,
    eval,
    export,
    finetune,
    import_,
    infer,
    model_card,
    models,
    node,
    pseudo_label,
    quantize,
    sim,
    train,
    verify,
)
from lane_seg.cli.common import OneLineParser
from lane_seg.errors import LaneSegError
from lane_seg.outputs import os_error_line, releasing_locks

COMMANDS = (
    collect,
    verify,
    demo,
    import_,
    pseudo_label,
    infer,
    adapt,
    node,
    bag,
    models,
    export,
    train,
    finetune,
    eval,
    baselines,
    sim,
    quantize,
    bench,
    model_card,
)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(  # its sub-commands' parsers are OneLineParsers too
        prog="lane-seg",
        description="Real-time lane segmentation for ROS 2.",
        epilog="Run `lane-seg COMMAND --help` for the options and an example of each command.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with releasing_locks():  # the output folders it locked (lane_seg.outputs)
            return int(args.func(args) or 0)
    except LaneSegError as exc:
        print(f"lane-seg {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the disk filling up, a file vanishing: never a traceback
        print(f"lane-seg {args.command}: error: {os_error_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"lane-seg {args.command}: interrupted; re-run the same command to resume.",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
