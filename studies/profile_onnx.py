"""Where onnxruntime spends the time of one inference, per operator type (fp32 vs int8).

Runs each model with onnxruntime's built-in profiler (the optimized graph, the same session
options as `lane_seg.runtime.engines`), drops the warm-up runs, and sums node time per operator
type, so one sees e.g. how much of the int8 model is QLinearConv and how much is the float Resize /
Concat between Quantize and Dequantize nodes.

    .venv/bin/python studies/profile_onnx.py models/lane_unet_fp32.onnx models/lane_unet_int8.onnx \
        --threads 1 --runs 30 --out runs/profile
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

TOP_NODES = 8


def profile(path: Path, threads: int, runs: int, warmup: int, out: Path) -> dict[str, float]:
    """Mean ms per inference for each operator type (warm-up runs excluded)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.enable_profiling = True
    opts.profile_file_prefix = str(out / path.stem)
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]  # batch 1
    x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    for _ in range(warmup + runs):
        sess.run(None, {inp.name: x})
    trace = json.loads(Path(sess.end_profiling()).read_text())
    runs_seen = [e for e in trace if e.get("name") == "model_run"]
    t_start = runs_seen[warmup]["ts"] if len(runs_seen) > warmup else 0
    per_op: dict[str, float] = defaultdict(float)
    per_node: dict[str, float] = defaultdict(float)
    for e in trace:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= t_start:
            per_op[e["args"]["op_name"]] += e["dur"] / 1e3 / runs
            node = e["name"].removesuffix("_kernel_time")
            per_node[f"{node} ({e['args']['op_name']})"] += e["dur"] / 1e3 / runs
    total = sum(r["dur"] for r in runs_seen[warmup:]) / 1e3 / max(len(runs_seen) - warmup, 1)
    top = dict(sorted(per_node.items(), key=lambda kv: -kv[1])[:TOP_NODES])
    return {
        "total_ms": total,
        "per_op_ms": dict(sorted(per_op.items(), key=lambda kv: -kv[1])),
        "top_nodes_ms": top,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("models", nargs="+", type=Path, help=".onnx files")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path("runs/profile"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    from lane_seg.runtime.hwinfo import CpuInfo

    report = {"hardware": CpuInfo.detect().line(), "threads": args.threads, "runs": args.runs}
    report["load_average"] = [round(v, 2) for v in os.getloadavg()]
    report["time"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    for path in args.models:
        report[path.name] = prof = profile(path, args.threads, args.runs, args.warmup, args.out)
        print(f"\n{path.name}: {prof['total_ms']:.2f} ms per run ({args.threads} thread(s))")
        for group in ("per_op_ms", "top_nodes_ms"):
            print(f"  {group}:")
            for name, ms in prof[group].items():
                print(f"    {name:<48} {ms:8.2f} ms  {100 * ms / prof['total_ms']:5.1f} %")
    (args.out / "profile.json").write_text(json.dumps(report, indent=2))
    print(f"\n{report['hardware']}; load average {report['load_average']}")
    print(f"wrote {args.out / 'profile.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
