"""`lane-seg demo --input VIDEO|FOLDER|BAG`: recorded frames through the ROS 2 segmentation node.

Each frame is published on the node's `~/image` topic and the demo waits for its mask on
`~/mask` before sending the next (lockstep, so no frame is dropped; the latency is publish to
mask received, over DDS). The overlay video is the node's own `~/overlay` (mask and fitted lane
lines); the summary gives frames/s, latency percentiles and the share of frames in which lane
pixels were found.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from lane_seg.demo.live import LiveStatus, VideoOut
from lane_seg.errors import LaneSegError
from lane_seg.ros.image_codec import mask_array, message_to_rgb
from lane_seg.ros.recorded import recorded_frames
from lane_seg.visualize import put_text

STAMP_OFFSET_S = 1000.0


def input_frames(path: str | Path, topic: str | None = None) -> tuple[Iterator[np.ndarray], float]:
    """RGB frames and their rate (a bag's or a folder's: 15 frames/s) from a video file, a
    folder of images or a rosbag2 folder (`lane_seg.ros.recorded`, the one dispatch)."""
    recorded = recorded_frames(path, topic)
    return (f.rgb for f in recorded.frames), recorded.fps or 15.0


def run_replay(
    source: str | Path,
    model: str | Path,
    out: Path,
    engine: str = "auto",
    threads: int = 0,
    max_frames: int = 0,
    topic: str | None = None,
) -> dict[str, Any]:
    """Feed `source` through a SegNode over ROS 2; writes the overlay video and summary.json."""
    from lane_seg.ros.harness import NodeHarness
    from lane_seg.ros.messages import header, image_msg

    frames, fps = input_frames(source, topic)
    out.mkdir(parents=True, exist_ok=True)
    video = VideoOut(out / "overlay.mp4", fps)
    live = LiveStatus()
    params = {"engine": engine, "threads": threads}
    latencies, lane_frames, start = [], 0, time.monotonic()
    harness = NodeHarness(
        str(model),
        params,
        subscribe_overlay=True,  # the node's own overlay: mask and fitted lane lines
        keep_masks=1,
        input_qos={"reliability": "reliable"},
    )
    with harness as h:
        print(f"[demo] seg_node up: {h.node.segmenter.engine.describe()}", flush=True)
        for i, rgb in enumerate(frames):
            if max_frames and i >= max_frames:
                break
            msg = image_msg(rgb, "rgb8", header(STAMP_OFFSET_S + i / fps))
            sent = time.time()
            h.publish(msg)
            h.wait_masks(i + 1, timeout=30.0)
            received, mask_msg = h.masks[-1]
            mask = mask_array(mask_msg)
            latencies.append((received - sent) * 1e3)
            lane_frames += int(mask.any())
            text = live.tick(latencies[-1], f"lane pixels {100.0 * (mask > 0).mean():4.1f} %")
            h.wait_for(lambda: bool(h.overlays), 30.0, "the overlay")
            bgr = np.ascontiguousarray(message_to_rgb(h.overlays.pop(0))[..., ::-1])
            video.write(put_text(bgr, [f"{Path(source).name}", text]))
        elapsed = time.monotonic() - start
        stats = h.node.stats.snapshot(horizon_s=1e9)
        described = h.node.segmenter.engine.describe()
    video.close()
    if not latencies:
        raise LaneSegError(f"{source} holds no readable frames")
    summary = {
        "input": str(source),
        "model": str(model),
        "engine": described,
        "frames": len(latencies),
        "frames_per_s": len(latencies) / elapsed,
        "latency_ms": {
            q: float(np.percentile(latencies, int(q[1:]))) for q in ("p50", "p95", "p99")
        },
        "inference_ms_p50": stats["inference_ms_p50"],
        "frames_with_lane_pixels": lane_frames,
        "video": str(video.path),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
