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
runs/bench/lane_step.json. A benchmark, not a test: it asserts nothing. `--parts` adds where
the time goes: each part's share of the lane step under cProfile (which inflates the parts made
of many small calls), applied to the unprofiled CPU p50. `--avx2` runs numpy on its AVX2 code.

Issue 23 asks for the lane step within 2 ms on a 2-core AVX2 EPYC at 2.45 GHz without VNNI. Measured
on AMD EPYC, 2 cores @ 2.60 GHz, AVX-512 VNNI, load average 8-11 from other jobs, this study at
commit 455a936 and after the lane step's rework run alternately (CPU p50, median of 7 runs each):
lane step + centre 1.86 -> 1.26 ms (0.68x), lane step alone 2.07 -> 1.37 ms (0.66x); about 1.1 ms on
a quiet machine, where the old step measured 1.6-1.7 ms. The lines did not change: bit-identical on
these 270 masks (points, confidences, ego marks, ground points, fits, tracker estimates), and
`lane-seg eval --real` gave the same scoreboard.json. Where the time goes now (`--parts`, step +
centre, ms): grouping 0.60, polylines 0.28, tracker 0.14, component filter 0.10, connected
components 0.03, row runs 0.03, rest 0.06; without a camera the vanishing point adds 0.18 (before:
grouping ~0.8, polylines ~0.45, vanishing point ~0.3, connected components ~0.2).

Why not lower, and the AVX2 class. The step is now ~1,270 function calls per frame as cProfile
counts them (numpy's and OpenCV's included; ~2,530 before) on arrays of a few hundred points
and at most 16 lines, so its time is per-call overhead of the interpreter and numpy, not
arithmetic: the grouping's up to 4 rounds of about 70 calls each, every line in one batch
already; connected components and the tracker's least squares are library calls. Going lower
takes a compiled kernel for the grouping (a new dependency) or fewer rounds or points, which
changes the lines. For the same reason the ISA hardly counts: with numpy's AVX-512 kernels off
(`--avx2`) the step + centre measured 1.29-1.31 ms against 1.22-1.27 in the same session. The
AVX2 class is then the clock (2.45 against 2.60 GHz, 6 %) and its core's speed on interpreted
code, not measured here: an estimate of 1.2-1.7 ms there, under the 2 ms asked for.
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


# The parts of the lane step: a function each (cProfile's file suffix and name, and the caller
# counted when it has several: the vanishing point labels the mask's bands too).
PARTS = {
    "row runs": ("mask.py", "row_runs"),
    "vanishing point": ("extract.py", "_camera"),
    "connected components": ("~", "<connectedComponents>", "extract_lanes"),
    "component filter": ("mask.py", "line_components"),
    "grouping": ("grouping.py", "group_lines"),
    "polylines": ("extract.py", "instances_from_fits"),
    "tracker": ("tracker.py", "update"),
}


def parts(fn, n: int, cpu_p50_ms: float) -> dict[str, float]:
    """ms per frame of each of PARTS in `fn(k)` over k < n: its share of the profiled total,
    times the unprofiled CPU p50 (`cpu_p50_ms`); "rest" is what no part holds."""
    import cProfile
    import pstats

    prof = cProfile.Profile(time.thread_time)
    prof.enable()
    for k in range(n):
        fn(k)
    prof.disable()
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in stats.values())  # own time of every function
    out = {}
    for part, (file, name, *caller) in PARTS.items():
        cum = 0.0
        for key, v in stats.items():
            if key[0].endswith(file) and key[2] == name:
                by = [c[3] for k, c in v[4].items() if k[2] in caller]  # cumulative, per caller
                cum += sum(by) if caller else v[3]
        out[part] = cum / total * cpu_p50_ms
    out["rest"] = cpu_p50_ms - sum(out.values())
    out["python_calls_per_frame"] = sum(v[1] for v in stats.values()) / n
    return out


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
    p.add_argument("--parts", action="store_true", help="also where the time goes (cProfile)")
    p.add_argument(
        "--avx2",
        action="store_true",
        help="numpy's AVX-512 kernels off and OpenBLAS as on Haswell (the AVX2 code path at this\n"
        "clock; OpenCV's dispatch is not capped)",
    )
    p.add_argument("--out", default=str(REPO / "runs" / "bench"))
    args = p.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    if args.avx2:  # read when numpy loads, below
        os.environ["NPY_DISABLE_CPU_FEATURES"] = "X86_V4 AVX512_ICL AVX512_SPR"
        os.environ["OPENBLAS_CORETYPE"] = "Haswell"

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
        "hardware": CpuInfo.detect().line() + ("; numpy capped to AVX2" if args.avx2 else ""),
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
    if args.parts:
        step = lambda k: extract_lanes(masks[k], probs[k], cfg=cfg)  # noqa: E731
        both = lambda k: tracker.update(extract_lanes(masks[k], probs[k], cam, cfg))  # noqa: E731
        report["parts_ms"] = {
            "lane_step": parts(step, len(masks), report["lane_step"]["cpu_p50_ms"]),
            "lane_step_and_centre": parts(
                both, len(masks), report["lane_step_and_centre"]["cpu_p50_ms"]
            ),
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
    if args.parts:
        print(f"{'part, CPU ms per frame':24s} {'step':>7s} {'+centre':>8s}  (cProfile shares)")
        a, b = report["parts_ms"]["lane_step"], report["parts_ms"]["lane_step_and_centre"]
        for part in a:
            print(f"{part:24s} {a[part]:7.3f} {b[part]:8.3f}")
        print(
            "(python_calls_per_frame: function calls cProfile saw, numpy's and OpenCV's included)"
        )
    print(f"wrote {out / 'lane_step.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
