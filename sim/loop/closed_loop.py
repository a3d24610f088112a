"""Closed-loop lane keeping in the built-in simulator: camera -> mask -> lane lines -> control.

`LaneKeepingDriver` is a `drive()` steering callable: on every rendered frame it runs
perception (the simulator's exact mask for "groundtruth", or a model through the shared
`Segmenter` engine path), the lane step (`lane_seg.lanes.extract`, as the node runs it), the
tracker over those lines and the controller, and logs what happened.
`run_scenario` drives a scenario's worlds and writes metrics JSON, an overlay video and a
top-down plot.
"""

from __future__ import annotations

import json
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lane_seg.camera import Camera
from lane_seg.lanes.control import ControllerConfig, LaneController
from lane_seg.lanes.extract import LaneInstance, extract_lanes
from lane_seg.lanes.geometry import poly
from lane_seg.lanes.tracker import LaneEstimate, LaneTracker, TrackerConfig
from lane_seg.sim.loop.metrics import (
    DriveEnd,
    FrameLog,
    aggregate,
    json_clean,
    mask_iou,
    world_metrics,
)
from lane_seg.sim.loop.pictures import overlay_frame, plot_top_down
from lane_seg.sim.loop.scenarios import Scenario
from lane_seg.sim.world.drive import Command, DriveFrame, build_world, drive, nominal_camera
from lane_seg.sim.world.scene import Scene
from lane_seg.sim.world.vehicle import VehicleParams, VehicleState

# --------------------------------------------------------------------------- perception


class GroundTruthPerception:
    """The simulator's exact mask: what perfect segmentation would hand to the lane step."""

    name = "groundtruth"
    precision = "exact"
    engine = "simulator mask"
    labels = "paint"  # what the lane step was built on: the visible paint

    def __init__(self) -> None:
        self.last_ms = 0.0

    def __call__(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        self.last_ms = 0.0
        return mask


class ModelPerception:
    """A model through `lane_seg.segmenter.Segmenter` (the same path as the ROS node)."""

    def __init__(self, segmenter: Any, name: str) -> None:
        self.segmenter = segmenter
        self.name = name
        self.precision = segmenter.info.precision
        self.labels = segmenter.info.labels  # the exact mask it is scored against follows it
        self.engine = segmenter.engine.describe()
        self.last_ms = 0.0

    def __call__(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        out = self.segmenter.segment(image)
        self.last_ms = (time.perf_counter() - t0) * 1e3
        return out


Perception = Callable[[np.ndarray, np.ndarray], np.ndarray]


def frame_lanes(perception: Perception, mask: np.ndarray, camera: Camera) -> list[LaneInstance]:
    """The lane lines of the frame `perception` just saw: a model's from its probabilities at
    its own scale (`Segmenter.lanes`, as the node does), any other perception's from its mask."""
    if isinstance(perception, ModelPerception):
        return perception.segmenter.lanes(camera)
    return extract_lanes(mask, None, camera)


# --------------------------------------------------------------------------- the driver


def odometry(prev: VehicleState, cur: VehicleState) -> tuple[float, float, float]:
    """Motion (dx, dy, dyaw) from the previous vehicle pose, in the previous vehicle frame."""
    dx, dy = cur.x - prev.x, cur.y - prev.y
    c, s = math.cos(prev.yaw), math.sin(prev.yaw)
    dyaw = math.atan2(math.sin(cur.yaw - prev.yaw), math.cos(cur.yaw - prev.yaw))
    return c * dx + s * dy, -s * dx + c * dy, dyaw


class LaneKeepingDriver:
    """Perception + lane lines + tracker + controller, as a `drive()` steering callable."""

    def __init__(
        self,
        perception: Perception,
        camera: Camera,
        fps: float,
        ctrl: ControllerConfig | None = None,
        tracking: TrackerConfig | None = None,
        on_frame: Callable[[DriveFrame, np.ndarray, LaneEstimate | None], None] | None = None,
    ) -> None:
        self.perception = perception
        self.camera = camera
        self.dt = 1.0 / fps
        self.tracker = LaneTracker(tracking)
        self.controller = LaneController(
            ctrl or ControllerConfig(), self.tracker.cfg.min_confidence
        )
        self.on_frame = on_frame
        self.log: list[FrameLog] = []
        self._prev: VehicleState | None = None
        # Commands reach the wheels this many frames after their camera frame (latency model).
        self.delay_frames = round(self.controller.cfg.actuation_delay_s * fps)
        self._pending: deque[Command] = deque()

    def __call__(self, frame: DriveFrame, scene: Scene, params: VehicleParams) -> Command:
        state = frame.state
        mask = self.perception(frame.image, frame.mask)
        t0 = time.perf_counter()
        motion = odometry(self._prev, state) if self._prev is not None else None
        est = self.tracker.update(frame_lanes(self.perception, mask, self.camera), motion)
        geometry_ms = (time.perf_counter() - t0) * 1e3
        self._prev = state
        steer, v_target = self.controller.update(est, state.speed, self.dt)
        ok = est is not None and est.confidence >= self.tracker.cfg.min_confidence
        is_model = not isinstance(self.perception, GroundTruthPerception)
        self.log.append(
            FrameLog(
                t=frame.time_s,
                s=frame.s_m,
                distance=frame.distance_m,
                x=state.x,
                y=state.y,
                yaw=state.yaw,
                speed=state.speed,
                steer_cmd=steer,
                steer_applied=state.steer,
                lateral_error=frame.lateral_error_m,
                est_offset=-float(poly(est.center, self.camera.x_m)) if ok else math.nan,
                confidence=est.confidence if est is not None else 0.0,
                lines_found=est.lines_found if est is not None else 0,
                perception_ms=getattr(self.perception, "last_ms", 0.0),
                geometry_ms=geometry_ms,
                mask_iou=mask_iou(mask, frame.mask) if is_model else math.nan,
            )
        )
        if self.on_frame is not None:
            self.on_frame(frame, mask, est)
        self._pending.append(Command(steer, self.controller.accel(state.speed, v_target)))
        if len(self._pending) > self.delay_frames:
            return self._pending.popleft()
        return Command(state.steer, 0.0)  # nothing has arrived yet: hold the wheel and speed


# --------------------------------------------------------------------------- a scenario


@dataclass
class DriveResult:
    seed: int
    metrics: dict[str, Any]
    video: Path | None = None
    plot: Path | None = None
    log: list[FrameLog] = field(default_factory=list, repr=False)


def run_world(
    scenario: Scenario,
    seed: int,
    perception: Perception,
    ctrl: ControllerConfig,
    out: Path | None,
    tracking: TrackerConfig | None = None,
    video: bool = True,
    progress: Callable[[int], None] | None = None,
) -> DriveResult:
    """Drive one world of a scenario; metrics (and video, plot when `out` is given)."""
    import cv2

    cfg = scenario.sim_config()
    scene = build_world(seed, cfg, length_m=scenario.distance_m + 60.0)
    cam = nominal_camera(cfg)
    ctrl = ctrl.with_speed(scenario.speed_mps)
    writer = None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)  # the plot goes here even without a video
    if out is not None and video:
        vpath = out / f"{scenario.name}_s{seed}.mp4"
        writer = cv2.VideoWriter(
            str(vpath), cv2.VideoWriter_fourcc(*"mp4v"), scenario.fps, (cam.width, cam.height)
        )

    def on_frame(frame: DriveFrame, mask: np.ndarray, est: LaneEstimate | None) -> None:
        if progress is not None:
            progress(1)
        if writer is None:
            return
        f = driver.log[-1]
        text = [
            f"{scenario.name} seed {seed} {getattr(perception, 'name', '')}  {f.distance:6.0f} m",
            f"err {f.lateral_error:+.2f} m  est {f.est_offset:+.2f} m  conf {f.confidence:.2f}",
            f"steer {math.degrees(f.steer_cmd):+5.1f} deg  v {f.speed:4.1f} m/s",
        ]
        writer.write(overlay_frame(frame.image, mask, est, cam, text))

    driver = LaneKeepingDriver(perception, cam, scenario.fps, ctrl, tracking, on_frame)
    end_reason = "distance"
    ending = DriveEnd(scene.lane_width, scenario.fps)
    try:
        for frame in drive(
            scene,
            cam,
            None,
            scenario.fps,
            scenario.speed_mps,
            seed,
            steering=driver,
            distance_m=scenario.distance_m,
            start_offset_m=scenario.start_offset_m,
            label=getattr(perception, "labels", "paint"),
        ):
            reason = ending.reason(frame)
            if reason is not None:
                end_reason = reason
                break
    finally:
        if writer is not None:
            writer.release()
    metrics = world_metrics(driver.log, scene, scenario.fps, seed, scenario.distance_m, end_reason)
    result = DriveResult(seed, metrics, log=driver.log)
    if out is not None and driver.log:
        result.video = out / f"{scenario.name}_s{seed}.mp4" if writer is not None else None
        title = f"{scenario.name} (seed {seed}), {getattr(perception, 'name', '')} perception"
        result.plot = plot_top_down(
            scene,
            driver.log,
            out / f"{scenario.name}_s{seed}_topdown.png",
            title,
            metrics["departure_limit_m"],
        )
    return result


def run_scenario(
    scenario: Scenario,
    perception: Perception,
    ctrl: ControllerConfig,
    out: Path | None,
    tracking: TrackerConfig | None = None,
    video: bool = True,
    progress: Callable[[int], None] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Drive every world of a scenario; returns (and writes to out/metrics.json) the metrics."""
    results = [
        run_world(scenario, seed, perception, ctrl, out, tracking, video, progress)
        for seed in scenario.seeds
    ]
    report = {
        "scenario": scenario.name,
        "scenario_file": str(scenario.source),
        "perception": getattr(perception, "name", "custom"),
        "precision": getattr(perception, "precision", ""),
        "engine": getattr(perception, "engine", ""),
        **(extra or {}),
        "speed_mps": scenario.speed_mps,
        "fps": scenario.fps,
        "controller": asdict(ctrl.with_speed(scenario.speed_mps)),
        "summary": aggregate([r.metrics for r in results]),
        "worlds": [r.metrics for r in results],
        "videos": [str(r.video) for r in results if r.video],
        "plots": [str(r.plot) for r in results if r.plot],
    }
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(json_clean(report), indent=2))
    return report
