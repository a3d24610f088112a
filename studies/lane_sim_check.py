"""Lane instances from the simulator's exact masks, CULane F1 against its own line geometry.

    .venv/bin/python studies/lane_sim_check.py  # the val split of seed 0, 2400 frames
    .venv/bin/python studies/lane_sim_check.py --data data/sim # the val split of a planar dataset
    .venv/bin/python studies/lane_sim_check.py --extend-gap-m 0  # lines not drawn to the bottom

The frames are regenerated from (seed, index) as `lane-seg collect --backend planar` renders
them (with --data: its seed, config and split fractions, and each frame's mask checked against
the stored one); what is scored is `lane_seg.sim.world.lane_truth`'s docstring. The goal: CULane
F1 >= 0.95 with the camera known. Prints the figures and writes OUT/lane_sim_check.json; exit
code 1 when the goal is missed.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOAL_F1 = 0.95


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", help="a planar dataset (dataset.json): its validation split")
    p.add_argument("--seed", type=int, default=0, help="without --data (default 0)")
    p.add_argument("--frames", type=int, default=2400, help="without --data (default 2400)")
    p.add_argument("--extend-gap-m", type=float, help="LaneConfig.extend_gap_m (default 16)")
    p.add_argument("--limit", type=int, default=0, help="at most this many frames (0 = all)")
    p.add_argument("--out", default=str(REPO / "runs" / "bench"))
    args = p.parse_args()

    from lane_seg.data.dataset import encode_mask, load_dataset
    from lane_seg.lanes.extract import LaneConfig
    from lane_seg.sim.world.collect import draw_frame
    from lane_seg.sim.world.lane_truth import check, val_indices
    from lane_seg.sim.world.scene import SimConfig

    if args.data:
        ds = load_dataset(args.data)
        params = ds.info["params"]
        if params.get("backend") != "planar":
            print(f"{args.data} is not a planar simulator dataset", file=sys.stderr)
            return 2
        seed, sim = params["seed"], SimConfig.from_dict(params["config"])
        samples = ds.split("val")
        indices = [s.meta["seed"][1] for s in samples]
        for s in samples[:3]:  # the regenerated frames are the dataset's
            mask = draw_frame(seed, s.meta["seed"][1], sim).mask
            if hashlib.sha256(encode_mask(mask)).hexdigest() != s.meta["mask_sha256"]:
                print(f"{s.id}: regenerated mask differs from the dataset's", file=sys.stderr)
                return 2
    else:
        seed, sim = args.seed, SimConfig()
        indices = val_indices(seed, args.frames)
    if args.limit:
        indices = indices[: args.limit]
    lanes = LaneConfig()
    if args.extend_gap_m is not None:
        lanes = dataclasses.replace(lanes, extend_gap_m=args.extend_gap_m)
    t0 = time.perf_counter()
    result = check(seed, indices, sim, lanes)
    result["frames_from"] = args.data or f"seed {seed}, frames 0..{args.frames - 1}, val split"
    result["seconds"] = round(time.perf_counter() - t0, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "lane_sim_check.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"{len(indices)} val frames ({result['frames_from']}), {result['labelled_lines']} "
          f"labelled lines, extend_gap_m {lanes.extend_gap_m:g}")  # fmt: skip
    for run in ("camera_known", "camera_unknown"):
        s = result[run]
        print(
            f"{run:15s} CULane F1 {s['f1']:.3f} (P {s['precision']:.3f}, R {s['recall']:.3f}; "
            f"tp {s['tp']} fp {s['fp']} fn {s['fn']})"
        )
    ok = result["camera_known"]["f1"] >= GOAL_F1
    print(f"goal F1 >= {GOAL_F1} with the camera known: {'met' if ok else 'MISSED'}")
    print(f"wrote {out / 'lane_sim_check.json'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
