"""`lane-seg demo` on the built-in simulator: a short closed loop over real ROS 2 topics.

The simulator publishes its camera, the segmentation node (the default int8 model unless another
is given) publishes masks and the lane centre, the controller node steers, and the car drives
(`lane_seg.sim.loop.ros_loop`). While it runs, one status line a second; at the end an overlay video
of the node's masks with the estimated lane centre, a top-down plot and a metrics summary.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lane_seg import resources
from lane_seg.demo.live import LiveStatus, VideoOut
from lane_seg.lanes.control import ControllerConfig
from lane_seg.lanes.extract import extract_lanes
from lane_seg.sim.loop.metrics import json_clean
from lane_seg.sim.loop.pictures import overlay_frame, plot_top_down
from lane_seg.sim.loop.scenarios import Scenario
from lane_seg.sim.world.drive import build_world, nominal_camera

SPEED_MPS = 12.0
FPS = 10.0


def demo_scenario(seconds: float, seed: int) -> Scenario:
    """A daytime road without fog, no bend tighter than 100 m radius, `seconds` long at 12 m/s."""
    return Scenario.from_dict(
        {
            "name": "demo",
            "description": "lane-seg demo: day, moderate bends",
            "seeds": [seed],
            "distance_m": seconds * SPEED_MPS,
            "speed_mps": SPEED_MPS,
            "fps": FPS,
            "sim": {"night_probability": 0.0, "fog_probability": 0.0, "max_curvature": 0.01},
        },
        source="lane-seg demo",
    )


class DemoRecorder:
    """The `record` hook of the ROS loop: live line, overlay video frame, and the drive log."""

    def __init__(self, cam, video: VideoOut, still: Path, still_at: int) -> None:
        self.cam, self.video, self.live = cam, video, LiveStatus()
        self.still, self.still_at = still, still_at
        self._still_bgr: np.ndarray | None = None
        self.log: list = []

    def __call__(self, frame, mask, est, entry) -> None:
        self.log.append(entry)
        offset = (
            f"lane offset est {entry.est_offset:+.2f} m"
            if math.isfinite(entry.est_offset)
            else "lane offset est  lost  "
        )
        text = self.live.tick(
            entry.perception_ms,
            f"{offset}, true {frame.lateral_error_m:+.2f} m | {frame.state.speed * 3.6:4.1f} km/h",
        )
        if mask is None:
            mask = np.zeros(frame.image.shape[:2], np.uint8)
        lanes = extract_lanes(mask, camera=self.cam)  # the node's lines, drawn from its mask
        lines = [f"t {frame.time_s:5.1f} s", text]
        bgr = overlay_frame(frame.image, mask, est, self.cam, lines, lanes)
        self.video.write(bgr)
        if len(self.log) <= self.still_at:  # a still from mid-drive (or the last frame before)
            self._still_bgr = bgr

    def close(self) -> None:
        self.video.close()
        if self._still_bgr is not None:
            cv2.imwrite(str(self.still), self._still_bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])


def run_sim_demo(
    model: str | Path, out: Path, seconds: float, seed: int, engine: str, threads: int
) -> dict[str, Any]:
    """Drive the demo scenario through the ROS 2 nodes; returns the metrics (also written)."""
    from lane_seg.sim.loop.ros_loop import run_ros_loop

    scenario = demo_scenario(seconds, seed)
    cam = nominal_camera(scenario.sim_config())
    out.mkdir(parents=True, exist_ok=True)
    video = VideoOut(out / "drive_overlay.mp4", scenario.fps)
    still_at = int(seconds * scenario.fps / 2)
    recorder = DemoRecorder(cam, video, out / "overlay.jpg", max(still_at, 1))
    ctrl = ControllerConfig.from_yaml(resources.config_file("controller.yaml"))
    try:
        metrics = run_ros_loop(scenario, seed, model, ctrl, engine, threads, record=recorder)
    finally:
        recorder.close()
    metrics.update(model=str(model), video=str(video.path), still=str(out / "overlay.jpg"))
    (out / "metrics.json").write_text(json.dumps(json_clean(metrics), indent=2))
    if recorder.log:  # the same world again (deterministic per seed) for the plot
        scene = build_world(seed, scenario.sim_config(), length_m=scenario.distance_m + 60.0)
        title = f"lane-seg demo (seed {seed}): {Path(model).name} over ROS 2"
        limit = metrics["departure_limit_m"]
        metrics["plot"] = str(
            plot_top_down(scene, recorder.log, out / "top_down.png", title, limit)
        )
    return metrics
