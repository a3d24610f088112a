"""Pictures of a closed-loop drive: the camera frame with mask and fitted lane lines, and a
top-down plot of the driven path against the lane (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lane_seg.camera import Camera
from lane_seg.lanes.extract import LaneInstance
from lane_seg.lanes.geometry import poly
from lane_seg.lanes.tracker import LaneEstimate
from lane_seg.sim.loop.metrics import FrameLog
from lane_seg.sim.world.scene import Scene
from lane_seg.visualize import draw_lanes, overlay, put_text


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
    lanes: list[LaneInstance] | None = None,
) -> np.ndarray:
    """BGR frame: mask tinted, the fitted lane lines (`lane_seg.lanes.extract`, when given), the
    measured ego lines (cyan) and the centre line (yellow), text."""
    import cv2

    bgr = cv2.cvtColor(draw_lanes(overlay(image, mask), lanes or []), cv2.COLOR_RGB2BGR)
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
    return put_text(bgr, text) if text else bgr


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
