"""The `lane-seg` command line: one entry point, one module per sub-command.

Each command module exposes `register(subparsers)`, which adds its parser and sets `func`.
Command modules import heavy dependencies (torch, rclpy) inside their run functions, so
`lane-seg --help` stays fast and works with only the runtime extras installed.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from lane_seg.errors import LaneSegError

COMMAND_MODULES = [
    "lane_seg.sim.collect_cli",
    "lane_seg.verify_cli",
    "lane_seg.sim.demo_cli",
    "lane_seg.import_cli",
    "lane_seg.infer_cli",
    "lane_seg.node_cli",
    "lane_seg.bag_cli",
    "lane_seg.models_cli",
    "lane_seg.export_cli",
    "lane_seg.training.train_cli",
    "lane_seg.training.eval_cli",
    "lane_seg.sim.sim_cli",
    "lane_seg.training.quantize_cli",
    "lane_seg.bench_cli",
    "lane_seg.training.model_card",
]


def add_command(
    subparsers: argparse._SubParsersAction, name: str, summary: str, example: str
) -> argparse.ArgumentParser:
    """Add a sub-command whose --help ends with a worked example."""
    return subparsers.add_parser(
        name,
        help=summary,
        description=summary,
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lane-seg",
        description="Real-time lane segmentation for ROS 2.",
        epilog="Run `lane-seg COMMAND --help` for the options and an example of each command.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except LaneSegError as exc:
        print(f"lane-seg {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"lane-seg {args.command}: interrupted; re-run the same command to resume.",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
