"""Metrics of a closed-loop drive from its per-frame log: lateral error, lane departures,
distance, steering smoothness, perception latency; and plain-JSON output."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

OFF_ROAD_MARGIN_M = 1.0  # a drive ends when the camera point is this far beyond the line
STOPPED_S = 3.0  # ... or when the vehicle has stood still this long (the lane was lost)


@dataclass
class DriveEnd:
    """Why a closed-loop drive ends before its distance, one rule for the in-process loop and
    the loop over ROS 2: the road ran out, the vehicle left its lane, or it stood still (the
    controller brakes to a stop once the lane is lost, and a stopped car never arrives)."""

    lane_width_m: float
    fps: float
    still_s: float = 0.0

    def reason(self, frame: Any) -> str | None:
        """The end reason after `frame` (a sim.world.drive.DriveFrame), or None to go on."""
        if frame.command is None:
            return "end of road"
        self.still_s = self.still_s + 1.0 / self.fps if frame.state.speed < 0.5 else 0.0
        if abs(frame.lateral_error_m) > self.lane_width_m / 2 + OFF_ROAD_MARGIN_M:
            return "left the lane"
        if self.still_s >= STOPPED_S:
            return "stopped (lane lost)"
        return None


CAR_HALF_WIDTH_M = 0.9  # a departure is a wheel on the line: |error| > lane/2 - this


@dataclass(kw_only=True)  # 16 fields: built by keyword only, so none can be swapped unnoticed
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
    """Percentile `q` of the finite `values` (a frame with no measurement is nan), nan if none."""
    finite = [v for v in values if math.isfinite(v)]
    return float(np.percentile(finite, q)) if finite else math.nan


def _latency(values: list[float]) -> dict[str, float | int]:
    """p50 and p95 over the frames that have a latency, and how many had none (over ROS 2: no
    lane centre came back for the frame)."""
    missing = sum(not math.isfinite(v) for v in values)
    return {"p50": _pct(values, 50), "p95": _pct(values, 95), "missing": missing}


def world_metrics(
    log: list[FrameLog],
    scene: Any,
    fps: float,
    seed: int,
    target_m: float,
    end_reason: str,
    **extra: Any,
) -> dict[str, Any]:
    """drive_metrics of one simulated world, with what identifies the drive and how it ended."""
    metrics = drive_metrics(log, scene.lane_width, fps)
    metrics.update(
        seed=seed,
        scene=scene.summary(),
        target_distance_m=target_m,
        completed=end_reason == "distance",
        end_reason=end_reason,
        **extra,
    )
    return metrics


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
        "perception_latency_ms": _latency(perception),
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
            "p50": _pct([r["perception_latency_ms"]["p50"] for r in runs], 50),
            "p95": _pct([r["perception_latency_ms"]["p95"] for r in runs], 100),
            "missing": sum(r["perception_latency_ms"].get("missing", 0) for r in runs),
        },
        "confidence_mean": wmean("confidence_mean"),
        "lost_fraction": wmean("lost_fraction"),
        "mask_iou_mean": None
        if any(r.get("mask_iou_mean") is None for r in runs)
        else wmean("mask_iou_mean"),
    }


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
