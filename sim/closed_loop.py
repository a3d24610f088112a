"""Closed-loop lane keeping in the built-in simulator: camera -> mask -> lane geometry -> control.

`LaneKeepingDriver` is a `drive()` steering callable: on every rendered frame it runs
perception (the simulator's exact mask for "groundtruth", or a model through the shared
`Segmenter` engine path), the lane-geometry tracker and the controller, and logs what happened.
`run_scenario` drives a scenario's worlds and writes metrics JSON, an overlay video and a
top-down plot.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lane_seg.camera import Camera
from lane_seg.lane_geometry import GeometryConfig, LaneEstimate, LaneTracker, poly
from lane_seg.sim.drive import Command, DriveFrame, build_world, drive, nominal_camera
from lane_seg.sim.lane_control import ControllerConfig, LaneController
from lane_seg.sim.scenarios import Scenario
from lane_seg.sim.scene import Scene
from lane_seg.sim.vehicle import VehicleParams, VehicleState

CAR_HALF_WIDTH_M = 0.9  # a departure is a wheel on the line: |error| > lane/2 - this
OFF_ROAD_MARGIN_M = 1.0  # the drive ends when the camera point is this far beyond the line
STOPPED_S = 3.0  # ... or when the vehicle has stood still this long


# --------------------------------------------------------------------------- perception


class GroundTruthPerception:
    """The simulator's exact mask: what perfect segmentation would hand to lane geometry."""

    name = "groundtruth"
    precision = "exact"
    engine = "simulator mask"

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
        self.engine = segmenter.engine.describe()
        self.last_ms = 0.0

    def __call__(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        out = self.segmenter.segment(image)
        self.last_ms = (time.perf_counter() - t0) * 1e3
        return out


Perception = Callable[[np.ndarray, np.ndarray], np.ndarray]


# --------------------------------------------------------------------------- the driver


def odometry(prev: VehicleState, cur: VehicleState) -> tuple[float, float, float]:
    """Motion (dx, dy, dyaw) from the previous vehicle pose, in the previous vehicle frame."""
    dx, dy = cur.x - prev.x, cur.y - prev.y
    c, s = math.cos(prev.yaw), math.sin(prev.yaw)
    dyaw = math.atan2(math.sin(cur.yaw - prev.yaw), math.cos(cur.yaw - prev.yaw))
    return c * dx + s * dy, -s * dx + c * dy, dyaw


@dataclass
class FrameLog:
    t: float
    s: float
    distance: float
    x: float
    y: float
    yaw: float
    speed: float
    steer_cmd: float
    steer_applied: float
    lateral_error: float
    est_offset: float  # estimated offset of the camera point from the centre (nan when lost)
    confidence: float
    lines_found: int
    perception_ms: float
    geometry_ms: float
    mask_iou: float  # predicted vs exact mask (nan for ground truth)


def mask_iou(pred: np.ndarray, truth: np.ndarray) -> float:
    p, t = pred > 127, truth > 127
    union = np.logical_or(p, t).sum()
    return float(np.logical_and(p, t).sum() / union) if union else 1.0


class LaneKeepingDriver:
    """Perception + lane geometry + controller, as a `drive()` steering callable."""

    def __init__(
        self,
        perception: Perception,
        camera: Camera,
        fps: float,
        ctrl: ControllerConfig | None = None,
        geometry: GeometryConfig | None = None,
        on_frame: Callable[[DriveFrame, np.ndarray, LaneEstimate | None], None] | None = None,
    ) -> None:
        self.perception = perception
        self.camera = camera
        self.dt = 1.0 / fps
        self.tracker = LaneTracker(camera, geometry)
        self.controller = LaneController(
            ctrl or ControllerConfig(), self.tracker.cfg.min_confidence
        )
        self.on_frame = on_frame
        self.log: list[FrameLog] = []
        self._prev: VehicleState | None = None

    def __call__(self, frame: DriveFrame, scene: Scene, params: VehicleParams) -> Command:
        state = frame.state
        mask = self.perception(frame.image, frame.mask)
        t0 = time.perf_counter()
        motion = odometry(self._prev, state) if self._prev is not None else None
        est = self.tracker.update(mask, motion)
        geometry_ms = (time.perf_counter() - t0) * 1e3
        self._prev = state
        steer, v_target = self.controller.update(est, state.speed, self.dt)
        ok = est is not None and est.confidence >= self.tracker.cfg.min_confidence
        is_model = not isinstance(self.perception, GroundTruthPerception)
        self.log.append(
            FrameLog(
                frame.time_s,
                frame.s_m,
                frame.distance_m,
                state.x,
                state.y,
                state.yaw,
                state.speed,
                steer,
                state.steer,
                frame.lateral_error_m,
                -float(poly(est.center, self.camera.x_m)) if ok else math.nan,
                est.confidence if est is not None else 0.0,
                est.lines_found if est is not None else 0,
                getattr(self.perception, "last_ms", 0.0),
                geometry_ms,
                mask_iou(mask, frame.mask) if is_model else math.nan,
            )
        )
        if self.on_frame is not None:
            self.on_frame(frame, mask, est)
        return Command(steer, self.controller.accel(state.speed, v_target))


# --------------------------------------------------------------------------- metrics


def count_departures(errors: np.ndarray, limit: float, rearm: float = 0.1) -> int:
    """Times |error| rose above `limit` (re-armed once it is back `rearm` inside)."""
    count, out = 0, False
    for e in np.abs(errors):
        if not out and e > limit:
            count, out = count + 1, True
        elif out and e < limit - rearm:
            out = False
    return count


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else math.nan


def drive_metrics(log: list[FrameLog], lane_width: float, fps: float) -> dict[str, Any]:
    """Metrics of one drive from its per-frame log."""
    if not log:
        return {"frames": 0, "distance_m": 0.0}
    err = np.array([f.lateral_error for f in log])
    steer = np.array([f.steer_cmd for f in log])
    applied = np.array([f.steer_applied for f in log])
    dist = float(log[-1].distance)
    limit = lane_width / 2 - CAR_HALF_WIDTH_M
    departures = count_departures(err, limit)
    perception = [f.perception_ms + f.geometry_ms for f in log]
    seg = [f.perception_ms for f in log]
    geo = [f.geometry_ms for f in log]
    iou = [f.mask_iou for f in log if not math.isnan(f.mask_iou)]
    est_err = [abs(f.est_offset - f.lateral_error) for f in log if not math.isnan(f.est_offset)]
    rate = np.abs(np.diff(steer)) * fps if len(steer) > 1 else np.zeros(1)
    rate_applied = np.abs(np.diff(applied)) * fps if len(applied) > 1 else np.zeros(1)
    return {
        "frames": len(log),
        "distance_m": round(dist, 2),
        "mean_abs_lateral_error_m": float(np.mean(np.abs(err))),
        "max_abs_lateral_error_m": float(np.max(np.abs(err))),
        "rms_lateral_error_m": float(np.sqrt(np.mean(err * err))),
        "final_abs_lateral_error_m": float(np.mean(np.abs(err[-10:]))),
        "departure_limit_m": limit,
        "lane_departures": departures,
        "lane_departures_per_km": departures / max(dist / 1000.0, 1e-9),
        "steer_rate_mean_abs_dps": float(np.degrees(np.mean(rate))),
        "steer_rate_applied_mean_abs_dps": float(np.degrees(np.mean(rate_applied))),
        "perception_latency_ms": {"p50": _pct(perception, 50), "p95": _pct(perception, 95)},
        "segmentation_ms": {"p50": _pct(seg, 50), "p95": _pct(seg, 95)},
        "lane_geometry_ms": {"p50": _pct(geo, 50), "p95": _pct(geo, 95)},
        "estimate_abs_error_m": float(np.mean(est_err)) if est_err else math.nan,
        "confidence_mean": float(np.mean([f.confidence for f in log])),
        "lost_fraction": float(np.mean([math.isnan(f.est_offset) for f in log])),
        "mask_iou_mean": float(np.mean(iou)) if iou else None,
        "mean_speed_mps": float(np.mean([f.speed for f in log])),
    }


def aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Scenario totals over its worlds: distance-weighted means, worst-case maxima."""
    frames = sum(r["frames"] for r in runs)
    dist = sum(r["distance_m"] for r in runs)
    deps = sum(r["lane_departures"] for r in runs)

    def wmean(key: str) -> float:
        return float(sum(r[key] * r["frames"] for r in runs) / max(frames, 1))

    return {
        "worlds": len(runs),
        "frames": frames,
        "distance_m": round(dist, 2),
        "completed": all(r["completed"] for r in runs),
        "mean_abs_lateral_error_m": wmean("mean_abs_lateral_error_m"),
        "max_abs_lateral_error_m": max(r["max_abs_lateral_error_m"] for r in runs),
        "lane_departures": deps,
        "lane_departures_per_km": deps / max(dist / 1000.0, 1e-9),
        "steer_rate_mean_abs_dps": wmean("steer_rate_mean_abs_dps"),
        "perception_latency_ms": {
            "p50": float(np.median([r["perception_latency_ms"]["p50"] for r in runs])),
            "p95": max(r["perception_latency_ms"]["p95"] for r in runs),
        },
        "confidence_mean": wmean("confidence_mean"),
        "lost_fraction": wmean("lost_fraction"),
    }


# --------------------------------------------------------------------------- pictures


def _project(cam: Camera, pts: np.ndarray) -> np.ndarray | None:
    xyz = np.column_stack([pts, np.zeros(len(pts))])
    uv, depth = cam.project(xyz)
    uv = uv[depth > 0.5]
    return uv.astype(np.int32) if len(uv) > 1 else None


def overlay_frame(
    image: np.ndarray,
    mask: np.ndarray,
    est: LaneEstimate | None,
    cam: Camera,
    text: list[str],
) -> np.ndarray:
    """BGR frame: mask tinted, measured ego lines (cyan) and the centre line (yellow), text."""
    import cv2

    from lane_seg.visualize import overlay

    bgr = cv2.cvtColor(overlay(image, mask), cv2.COLOR_RGB2BGR)
    xs = np.linspace(cam.x_m + 3.0, 40.0, 24)
    if est is not None:
        lines = [(est.left, (255, 255, 0)), (est.right, (255, 255, 0))]
        for line, color in lines:
            if line is not None:
                uv = _project(cam, np.column_stack([xs, line.y(xs)]))
                if uv is not None:
                    cv2.polylines(bgr, [uv], False, color, 2, cv2.LINE_AA)
        uv = _project(cam, np.column_stack([xs, poly(est.center, xs)]))
        if uv is not None:
            color = (0, 220, 255) if not est.held else (0, 120, 255)
            cv2.polylines(bgr, [uv], False, color, 2, cv2.LINE_AA)
    if text:
        band = bgr[: 8 + 15 * len(text)]
        band[:] = (band * 0.45).astype(np.uint8)  # a dark band keeps the text readable
    for i, line in enumerate(text):
        org = (6, 16 + 15 * i)
        cv2.putText(bgr, line, org, cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
    return bgr


def plot_top_down(scene: Scene, log: list[FrameLog], path: Path, title: str, limit: float) -> Path:
    """Top-down view of the driven path against the ego lane, and the error along the road."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = np.linspace(max(0.0, log[0].s - 10), log[-1].s + 20, 800)
    centre = scene.lane_center(scene.ego_lane)
    fig, (ax, ax2) = plt.subplots(
        2, 1, figsize=(9, 9), gridspec_kw={"height_ratios": [3, 1]}, constrained_layout=True
    )
    for d, style in ((centre - scene.lane_width / 2, "k-"), (centre + scene.lane_width / 2, "k-")):
        x, y, _ = scene.road.pose(s, d)
        ax.plot(x, y, style, lw=0.8)
    x, y, _ = scene.road.pose(s, centre)
    ax.plot(x, y, "k:", lw=0.6, label="lane centre")
    err = np.array([f.lateral_error for f in log])
    pts = ax.scatter(
        [f.x for f in log], [f.y for f in log], c=np.abs(err), s=3, cmap="viridis", zorder=3
    )
    fig.colorbar(pts, ax=ax, label="|lateral error| (m)")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title(title)
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.legend(loc="best")
    dist = [f.distance for f in log]
    ax2.plot(dist, err, lw=0.8, label="true")
    est = [f.est_offset for f in log]
    ax2.plot(dist, est, lw=0.6, alpha=0.7, label="estimated")
    for sign in (-1, 1):
        ax2.axhline(sign * limit, color="r", lw=0.6, ls="--")
    ax2.set_xlabel("distance (m)")
    ax2.set_ylabel("lateral error (m)")
    ax2.legend(loc="upper right")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


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
    geometry: GeometryConfig | None = None,
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
    if out is not None and video:
        out.mkdir(parents=True, exist_ok=True)
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

    driver = LaneKeepingDriver(perception, cam, scenario.fps, ctrl, geometry, on_frame)
    end_reason = "distance"
    still = 0.0
    limit_off = scene.lane_width / 2 + OFF_ROAD_MARGIN_M
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
        ):
            if frame.command is None:
                end_reason = "end of road"
                break
            still = still + 1.0 / scenario.fps if frame.state.speed < 0.5 else 0.0
            if abs(frame.lateral_error_m) > limit_off:
                end_reason = "left the lane"
                break
            if still >= STOPPED_S:
                end_reason = "stopped (lane lost)"
                break
    finally:
        if writer is not None:
            writer.release()
    metrics = drive_metrics(driver.log, scene.lane_width, scenario.fps)
    metrics.update(
        seed=seed,
        scene=scene.summary(),
        target_distance_m=scenario.distance_m,
        completed=end_reason == "distance",
        end_reason=end_reason,
    )
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
    geometry: GeometryConfig | None = None,
    video: bool = True,
    progress: Callable[[int], None] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Drive every world of a scenario; returns (and writes to out/metrics.json) the metrics."""
    results = [
        run_world(scenario, seed, perception, ctrl, out, geometry, video, progress)
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


def json_clean(o: Any) -> Any:
    """Plain JSON: numpy scalars as numbers, NaN as null, paths as strings."""
    if isinstance(o, dict):
        return {str(k): json_clean(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [json_clean(v) for v in o]
    if isinstance(o, np.generic):
        o = o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, Path):
        return str(o)
    return o
