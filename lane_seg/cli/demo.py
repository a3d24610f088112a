"""`lane-seg demo`: the main job on the embedded default, in about two minutes.

Without --input: the built-in simulator's camera goes over ROS 2 topics to the real segmentation
node running the shipped int8 model, whose lane centre steers the car through the controller
node (a short closed loop). With --input VIDEO or a rosbag2 folder: the recorded frames go
through the same node. Either way it prints live frames/s, latency (and lane offset in the
loop), and writes an overlay video and a metrics summary.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lane_seg.cli.common import add_command
from lane_seg.outputs import lock_folder
from lane_seg.runtime.shipped_model import model_or_default


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "demo",
        "Run the ROS 2 segmentation node on the shipped int8 model: a short closed-loop drive "
        "in the built-in simulator (default), or a video / rosbag2 through the node (--input).",
        "lane-seg demo --input ../shared/data/real/udacity/solidWhiteRight.mp4",
    )
    p.add_argument("--model", help="model to run (default: the shipped int8 model)")
    p.add_argument(
        "--input", help="a video, a folder of images or a rosbag2 folder instead of the simulator"
    )
    p.add_argument("--topic", help="image topic of the bag (default: its first image topic)")
    p.add_argument("--out", default="runs/demo", help="output directory (default runs/demo)")
    p.add_argument("--seconds", type=float, default=40.0, help="simulated drive length (s)")
    p.add_argument("--seed", type=int, default=6, help="which random world to drive in")
    p.add_argument("--max-frames", type=int, default=0, help="stop --input after N frames")
    p.add_argument("--engine", default="auto", help="inference engine (default auto)")
    p.add_argument("--threads", type=int, default=0, help="inference threads (0 = default)")
    p.set_defaults(func=run)


def _without_centre(lat: dict, frames: int) -> str:
    """Which frames the latency is over, when some had no lane centre (sim.loop.metrics)."""
    missing = lat.get("missing", 0)
    if not missing:
        return ""
    return f" (over the {frames - missing} frames with one; {missing} of {frames} had none)"


def _loop_summary(m: dict) -> list[str]:
    node = m["seg_node"]
    lat = m["perception_latency_ms"]
    return [
        f"drove {m['distance_m']:.0f} m of {m['target_distance_m']:.0f} m "
        f"({'completed' if m['completed'] else 'stopped: ' + m['end_reason']}), "
        f"{m['frames']} frames at {m['mean_speed_mps'] * 3.6:.0f} km/h",
        f"lane keeping: mean |lateral error| {m['mean_abs_lateral_error_m']:.3f} m, "
        f"max {m['max_abs_lateral_error_m']:.3f} m, {m['lane_departures']} lane departures, "
        f"lane estimate off by {m['estimate_abs_error_m']:.3f} m on average",
        f"seg node: camera -> lane centre over ROS 2 p50 {lat['p50']:.1f} ms / p95 "
        f"{lat['p95']:.1f} ms{_without_centre(lat, m['frames'])}; inference p50 "
        f"{node['inference_ms_p50']:.1f} ms; {m['command_timeouts']} command time-outs",
        "(the loop runs in lockstep with rendering, so its frames/s is the simulator's; the "
        "node's own throughput is measured by `lane-seg bench`)",
    ]


def _replay_summary(s: dict) -> list[str]:
    lat = s["latency_ms"]
    return [
        f"{s['frames']} frames through the seg node ({s['engine']}): {s['frames_per_s']:.1f} "
        f"frames/s in lockstep, latency p50 {lat['p50']:.1f} / p95 {lat['p95']:.1f} / p99 "
        f"{lat['p99']:.1f} ms, inference p50 {s['inference_ms_p50']:.1f} ms",
        f"lane pixels found in {s['frames_with_lane_pixels']} of {s['frames']} frames",
    ]


def run(args: argparse.Namespace) -> int:
    from lane_seg.runtime.engines import baseline_engine, load_engine

    model = model_or_default(args.model)
    out = Path(args.out)
    lock_folder(out)  # checked, and this command's alone until it returns (lane_seg.outputs)
    load_engine(model, baseline_engine(model), threads=1)  # a bad model: one line, now
    print(f"[demo] model {model}", flush=True)
    if args.input:
        from lane_seg.demo.replay import run_replay

        s = run_replay(
            args.input, model, out, args.engine, args.threads, args.max_frames, args.topic
        )
        lines, files = _replay_summary(s), {"overlay video": s["video"]}
        files["metrics"] = str(out / "summary.json")
    else:
        from lane_seg.demo.drive import run_sim_demo

        m = run_sim_demo(model, out, args.seconds, args.seed, args.engine, args.threads)
        lines, files = _loop_summary(m), {"overlay video": m["video"], "still": m["still"]}
        files.update({"top-down plot": m.get("plot", "-"), "metrics": str(out / "metrics.json")})
    summary = out / "summary.md"
    files["summary"] = str(summary)
    summary.write_text(
        "# lane-seg demo\n\n"
        + "\n".join(f"- {line}" for line in lines)
        + "\n\n"
        + "\n".join(f"- {k}: `{v}`" for k, v in files.items())
        + f"\n\nmodel: `{model}`\n"
    )
    print("\n".join(lines))
    for k, v in files.items():
        print(f"{k + ':':16s}{v}")
    return 0
