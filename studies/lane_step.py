"""Time the lane step (mask -> lane lines) on the shipped model's masks of real frames.

    .venv/bin/python studies/lane_step.py                    # shipped int8 model, 2 threads
    .venv/bin/python studies/lane_step.py --repeat 10 --threads 2 --model m.onnx

The model runs once on every real frame found under ../shared/data (TuSimple, CULane, Udacity
frames); its 256x512 masks and probabilities are kept, then timed on each of them `--repeat`
times, beside the model's own inference on the same frames:

- lane_step: `extract_lanes(mask, prob)` without a camera, as `Segmenter.lanes` runs it for
  `lane-seg infer`, the scoreboard and a node that has no camera yet;
- lane_step_mask_only: the same without the probabilities;
- lane_step_and_centre: with a known camera (a nominal one), the lane step and then
  `LaneTracker.update` on its lines: all the lane work of a node per frame (lane lines and the
  lane centre from them).

Prints p50 / p95 and the CPU time's p50 with the hardware line and writes
runs/bench/lane_step.json. A benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
SOURCES = [
    "real/tusimple_lanenet/image",
    "real/tusimple_clips",
    "real/culane_night",
    "real/udacity",
    "real_train/culane_driver23/driver_23_30frame",
]


def frames(limit: int) -> list[Path]:
    from lane_seg.data.frames import image_files

    found = []
    for rel in SOURCES:
        root = SHARED / rel
        if root.is_dir():
            found += image_files(root)
    return found[:limit]


def percentiles(ms: list[float]) -> dict[str, float]:
    import numpy as np

    a = np.asarray(ms)
    return {
        "p50_ms": float(np.median(a)),
        "p95_ms": float(np.percentile(a, 95)),
        "mean_ms": float(a.mean()),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", help="lane_seg .onnx model (default: the shipped int8 model)")
    p.add_argument("--engine", default="auto")
    p.add_argument("--threads", type=int, default=2, help="threads for OpenCV, BLAS and the model")
    p.add_argument("--repeat", type=int, default=5, help="timed passes over all masks")
    p.add_argument("--limit", type=int, default=1000, help="at most this many frames")
    p.add_argument("--out", default=str(REPO / "runs" / "bench"))
    args = p.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)

    import cv2
    import numpy as np

    from lane_seg.data.dataset import read_image
    from lane_seg.errors import LaneSegError
    from lane_seg.lanes.extract import LaneConfig, extract_lanes
    from lane_seg.lanes.mask import MaskConfig, default_vanishing_point, nominal_camera
    from lane_seg.lanes.tracker import LaneTracker
    from lane_seg.preprocess import probability
    from lane_seg.runtime.hwinfo import CpuInfo
    from lane_seg.runtime.segmenter import Segmenter
    from lane_seg.runtime.shipped_model import model_or_default

    cv2.setNumThreads(args.threads)
    paths = frames(args.limit)
    if not paths:
        print(f"no real frames under {SHARED}", file=sys.stderr)
        return 1
    seg = Segmenter.load(model_or_default(args.model), args.engine, args.threads)
    masks, probs, infer_ms = [], [], []
    for path in paths:
        try:
            rgb = read_image(path)
        except LaneSegError:
            continue
        prob = probability(seg.logits(rgb))
        infer_ms.append(seg.last.inference_ms)
        probs.append(prob)
        masks.append(np.where(prob > seg.threshold, 255, 0).astype(np.uint8))
    h, w = masks[0].shape
    cfg = LaneConfig(work_size=(w, h))
    cam = nominal_camera((w, h), default_vanishing_point((w, h)), MaskConfig())
    tracker = LaneTracker()

    def timed(fn) -> dict[str, float]:
        """Wall and CPU time of fn(k) over all masks, `repeat` times: the CPU time of this
        thread leaves out the time other processes had the core (a shared machine)."""
        wall, cpu = [], []
        for _ in range(args.repeat):
            for k in range(len(masks)):
                t0, c0 = time.perf_counter(), time.thread_time()
                fn(k)
                cpu.append((time.thread_time() - c0) * 1e3)
                wall.append((time.perf_counter() - t0) * 1e3)
        return {**percentiles(wall), "cpu_p50_ms": float(np.median(cpu))}

    lanes_found = [len(extract_lanes(m, probs[k], cfg=cfg)) for k, m in enumerate(masks)]
    report = {
        "hardware": CpuInfo.detect().line(),
        "threads": args.threads,
        "model": model_or_default(args.model),
        "engine": f"{seg.info.arch} {seg.info.precision} on {args.engine}",
        "frames": len(masks),
        "mask_size": f"{w}x{h}",
        "repeat": args.repeat,
        "lanes_per_frame": float(np.mean(lanes_found)),
        "lane_step": timed(lambda k: extract_lanes(masks[k], probs[k], cfg=cfg)),
        "lane_step_mask_only": timed(lambda k: extract_lanes(masks[k], cfg=cfg)),
        "lane_step_and_centre": timed(
            lambda k: tracker.update(extract_lanes(masks[k], probs[k], cam, cfg))
        ),
        "model_inference": percentiles(infer_ms),
        "load_average": os.getloadavg()[0],
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "lane_step.json").write_text(json.dumps(report, indent=2))
    base = report["model_inference"]["p50_ms"]
    print(
        f"{report['hardware']}; {args.threads} threads; load average {report['load_average']:.1f}"
    )
    print(f"{len(masks)} real frames, {w}x{h} masks, {report['lanes_per_frame']:.1f} lanes/frame")
    print(f"{'step':24s} {'p50 ms':>7s} {'p95 ms':>7s} {'cpu p50':>8s}  p50 / inference p50")
    for key in ("lane_step", "lane_step_mask_only", "lane_step_and_centre", "model_inference"):
        r = report[key]
        cpu = f"{r['cpu_p50_ms']:8.2f}" if "cpu_p50_ms" in r else f"{'':8s}"
        print(f"{key:24s} {r['p50_ms']:7.2f} {r['p95_ms']:7.2f} {cpu}  {r['p50_ms'] / base:.2f}")
    print(f"wrote {out / 'lane_step.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
