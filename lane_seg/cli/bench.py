"""`lane-seg bench`: one model on PyTorch, torch.ao int8, onnxruntime and OpenVINO (and on a GPU
through PyTorch CUDA, onnxruntime CUDA and TensorRT where present), side by side."""

from __future__ import annotations

import argparse
from pathlib import Path

from lane_seg.bench import ENGINE_KEYS
from lane_seg.bench.isa import CAPPED_ENGINES, CAPS, capped_here, check_environment, run_capped
from lane_seg.cli.common import add_command, command_argv, command_line
from lane_seg.errors import LaneSegError
from lane_seg.outputs import lock_folder, output_file
from lane_seg.sizes import parse_size


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "bench",
        "Time one model on every runtime (fp32 and int8) in one run: latency p50/p95/p99, "
        "fps, memory, size, lane IoU, GMAC/s vs the CPU's peak; markdown, JSON and a plot.",
        "lane-seg bench --model runs/unet/best.pt --onnx-fp32 runs/models/unet_fp32.onnx "
        "--onnx-int8 runs/models/unet_int8.onnx --data data/sim --out runs/bench",
    )
    p.add_argument("--model", required=True, help="the .pt checkpoint (PyTorch rows)")
    p.add_argument("--onnx-fp32", help="its fp32 ONNX (default: exported into --out)")
    p.add_argument("--onnx-int8", help="its int8 QDQ ONNX (default: quantized into --out)")
    p.add_argument(
        "--data",
        help="lane_seg dataset: lane IoU on --split, calibration on its train split "
        "(without it: no IoU, calibration on simulator frames)",
    )
    p.add_argument("--split", default="val", help="split scored for lane IoU (default val)")
    p.add_argument("--eval-limit", type=int, default=50, help="frames scored (0 = all; default 50)")
    p.add_argument(
        "--calib-size", type=int, help="calibration frames (default 64, as in every command)"
    )
    p.add_argument(
        "--frames-dir",
        help="timing frames (jpg/png); default ../shared/data/real/tusimple_lanenet/image, "
        "simulator frames when absent",
    )
    p.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds (default 5)")
    p.add_argument("--iters", type=int, default=20, help="timed runs per engine per round")
    p.add_argument("--warmup", type=int, default=5, help="untimed runs per engine first")
    p.add_argument("--threads", type=int, default=0, help="inference threads (0 = default)")
    p.add_argument(
        "--engines",
        default=",".join(ENGINE_KEYS),
        help=f"comma-separated subset of {','.join(ENGINE_KEYS)}",
    )
    p.add_argument(
        "--node", action="store_true", help="also measure the node end to end over ROS 2"
    )
    p.add_argument("--node-model", help="model the node runs (default: the int8 ONNX)")
    p.add_argument(
        "--node-sizes",
        default="512x256,1280x720",
        help="camera frame sizes the node is fed, comma-separated WIDTHxHEIGHT "
        "(default 512x256,1280x720: the model's own size and a 720p camera)",
    )
    p.add_argument(
        "--node-engine", default="auto", help="engine the node runs on (default auto, as shipped)"
    )
    p.add_argument(
        "--isa",
        choices=sorted(CAPS),
        help="run the engines' code paths for this instruction set only, in a child process, "
        "and check every kernel: an emulation of that CPU class at this CPU's clock "
        f"(rows: {', '.join(CAPPED_ENGINES)}; the others say why not)",
    )
    p.add_argument("--out", default="runs/bench", help="output folder (default runs/bench)")
    p.add_argument(
        "--readme",
        help="also rewrite the results section of this README (between the "
        "'<!-- lane-seg bench: start/end -->' markers)",
    )
    p.add_argument(
        "--readme-section",
        default="bench",
        help="the README section --readme rewrites (default bench; bench-gpu for a GPU run)",
    )
    p.set_defaults(func=run)


def _engines(text: str) -> tuple[str, ...]:
    keys = tuple(k.strip() for k in text.split(",") if k.strip())
    bad = [k for k in keys if k not in ENGINE_KEYS]
    if bad or not keys:
        raise LaneSegError(f"--engines {text!r}: choose from {', '.join(ENGINE_KEYS)}")
    return keys


def _node_sizes(text: str) -> tuple[tuple[int, int], ...]:
    """ "512x256,1280x720" -> ((256, 512), (720, 1280)): (height, width) pairs."""
    sizes = [parse_size(t, "--node-sizes", minimum=16) for t in text.split(",") if t.strip()]
    if not sizes:
        raise LaneSegError(f"--node-sizes {text!r}: expected WIDTHxHEIGHT[,WIDTHxHEIGHT...]")
    return tuple((h, w) for w, h in sizes)


def _path(v: str | None) -> Path | None:
    return Path(v) if v else None


def run(args: argparse.Namespace) -> int:
    from lane_seg.bench.contenders import check_inputs
    from lane_seg.bench.report_files import markdown, write_report
    from lane_seg.bench.run import REAL_FRAMES, BenchConfig, run_bench
    from lane_seg.cli.readme import check_section, replace_section
    from lane_seg.training.quant.calibration import CALIB_SIZE

    node_sizes = _node_sizes(args.node_sizes)  # refused before anything runs
    cfg = BenchConfig(
        checkpoint=Path(args.model),
        onnx_fp32=_path(args.onnx_fp32),
        onnx_int8=_path(args.onnx_int8),
        data=_path(args.data),
        split=args.split,
        eval_limit=args.eval_limit or None,
        calib_size=CALIB_SIZE if args.calib_size is None else args.calib_size,
        real_dir=_path(args.frames_dir) or REAL_FRAMES,
        rounds=args.rounds,
        iters=args.iters,
        warmup=args.warmup,
        threads=args.threads,
        engines=_engines(args.engines),
        out=Path(args.out),
        isa=args.isa,
    )
    check_environment(args.isa)
    if args.isa and args.node and args.node_engine not in ("auto", "openvino"):
        raise LaneSegError(
            f"--isa {args.isa} runs the node on openvino, the engine whose kernels are capped; "
            f"drop --node-engine {args.node_engine}"
        )
    if args.isa and not capped_here(args.isa):
        check_inputs(cfg)  # refused here, not in the child
        # the caps are read once, when the engines first ask: a fresh process (lane_seg.bench.isa)
        return run_capped(args.isa, command_argv("bench", args, register)[1:])
    lock_folder(cfg.out)  # checked, and this command's alone until it returns (lane_seg.outputs)
    if args.readme:
        # before the long run, not after it
        check_section(output_file(args.readme), args.readme_section)
    report = run_bench(cfg)
    report["command"] = command_line("bench", args, register)
    if args.node:
        report["node"] = _node(args, cfg, report, node_sizes)
    paths = write_report(report, cfg.out)
    if args.readme:
        paths["readme"] = replace_section(
            Path(args.readme), args.readme_section, report["command"], markdown(report)
        )
    print(markdown(report))
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0


def _node(args: argparse.Namespace, cfg, report: dict, sizes: tuple) -> dict:  # noqa: ANN001
    """The node's publish -> mask latency over real ROS 2, via lane_seg.bench.node_end_to_end."""
    from lane_seg.bench.node_end_to_end import run_node_bench

    model = args.node_model or next(
        (r["file"] for r in report["rows"] if " int8" in r["name"] and r["file"].endswith(".onnx")),
        None,
    )
    if model is None:
        raise LaneSegError("--node needs an int8 ONNX row or --node-model")
    return run_node_bench(
        model,
        # under --isa the node inherits the cap (lane_seg.bench.isa) and runs the capped engine
        engine="openvino" if cfg.isa else args.node_engine,
        threads=cfg.threads,
        sizes=sizes,
        real_dir=cfg.real_dir,
        hardware=report["hardware"],
    )
