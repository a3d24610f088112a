"""Benchmark the ROS 2 node: publish -> mask latency and throughput beside bare engine time.

    .venv/bin/python studies/node_latency.py                      # the shipped int8 model, auto
    .venv/bin/python studies/node_latency.py --rate 30 --frames 600   # 30 Hz sustained
    .venv/bin/python studies/node_latency.py --model m.onnx --engine onnxruntime-cpu
    .venv/bin/python studies/node_latency.py --arch unet  # random-init U-Net (lane_seg.models)

Writes runs/bench/node_latency.{json,md} and prints the table with the CPU model line.
A benchmark, not a test: it asserts nothing and takes about a minute.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "real" / "tusimple_clips" / "00_Lane"


def random_model(arch: str, path: Path) -> Path:
    """A randomly initialised model of a real architecture: right cost, meaningless masks."""
    from lane_seg.artifact import ModelInfo
    from lane_seg.models import build_model
    from lane_seg.training.quant.exporter import export_model

    info = ModelInfo(arch=arch, model_config={}, train_data="random init (benchmark only)")
    return export_model(build_model(arch), path, info=info, check=False).fp32


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", help="lane_seg .onnx model (default: the shipped int8 model)")
    p.add_argument(
        "--arch", help="without --model: export a random-init lane_seg.models net (e.g. unet)"
    )
    p.add_argument("--engine", default="auto", help="engine for node and bare timing (auto)")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--frames", type=int, default=200, help="frames for the latency phase")
    p.add_argument("--rate", type=float, default=10.0, help="Hz for the latency phase")
    p.add_argument("--load-seconds", type=float, default=5.0, help="overload phase length")
    p.add_argument(
        "--input-qos",
        choices=("reliable", "best_effort"),
        default="reliable",
        help="the node's input reliability (the node's own default follows the camera's)",
    )
    p.add_argument("--out", default=str(REPO / "runs" / "bench"))
    args = p.parse_args()

    # Loopback only, own domain unless the caller chose one (as in the tests).
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ["ROS_LOCALHOST_ONLY"] = "1"
    os.environ.setdefault("ROS_DOMAIN_ID", str(os.getpid() % 100 + 101))

    from lane_seg.bench.node_end_to_end import markdown, run_node_bench

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = args.model
    if model is None and args.arch:
        model = str(random_model(args.arch, out / f"random_{args.arch}_256x512.onnx"))
    elif model is None:
        from lane_seg.runtime.shipped_model import default_model

        model = str(default_model("int8"))
    report = run_node_bench(
        model,
        engine=args.engine,
        threads=args.threads,
        n_latency=args.frames,
        rate_hz=args.rate,
        load_s=args.load_seconds,
        real_dir=REAL,
        input_qos=args.input_qos,
    )
    table = markdown(report)
    stem = f"node_latency_{args.input_qos}"
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2))
    (out / f"{stem}.md").write_text(table + "\n")
    print(table)
    print(f"\nwrote {out / stem}.json and .md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
