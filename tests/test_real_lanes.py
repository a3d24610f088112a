"""The lane benchmarks' figures in the real-frame scoreboard: CULane F1 against .lines.txt
(exact), TuSimple accuracy against lanes read back from binary masks (approximated), none for
paint labels; on drawn road frames whose true lines are known."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from lane_seg.camera import Camera
from lane_seg.models.testing import road_rgb, tiny_info, write_tiny_onnx
from lane_seg.training.eval.scoreboard import run_scoreboard

OFFSETS = (1.75, -1.75, 5.25)  # ego-left, ego-right, the next one on the left


def _true_lines(cam: Camera) -> list[np.ndarray]:
    """Each line's image points from the bottom row up to 80 m, as a labeller draws it."""
    xs = np.geomspace(1.0, 80.0, 400)
    lines = []
    for y in OFFSETS:
        uv, _ = cam.project(np.column_stack([xs, np.full_like(xs, y), np.zeros_like(xs)]))
        inside = (uv[:, 0] >= 0) & (uv[:, 0] < cam.width) & (uv[:, 1] < cam.height)
        lines.append(uv[inside])
    return lines


def _culane_night(root, n=3):
    cam = Camera.from_fov(1640, 590, 70.0, height_m=1.5, pitch_deg=1.0)
    src = root / "real" / "culane_night"
    src.mkdir(parents=True)
    for i in range(n):
        cv2.imwrite(str(src / f"{i:05d}.jpg"), road_rgb(cam, OFFSETS, seed=i)[..., ::-1])
        text = "".join(
            " ".join(f"{x:.1f} {y:.0f}" for x, y in line[::8]) + "\n" for line in _true_lines(cam)
        )
        (src / f"{i:05d}.lines.txt").write_text(text)


def _tusimple_lanenet(root, n=3):
    cam = Camera.from_fov(1280, 720, 60.0, height_m=1.5, pitch_deg=2.0)
    src = root / "real" / "tusimple_lanenet"
    (src / "image").mkdir(parents=True)
    (src / "gt_binary_image").mkdir()
    for i in range(n):
        cv2.imwrite(str(src / "image" / f"{i}.png"), road_rgb(cam, OFFSETS, seed=i)[..., ::-1])
        mask = np.zeros((720, 1280), np.uint8)
        for line in _true_lines(cam):
            cv2.polylines(mask, [np.rint(line).astype(np.int32)], False, 255, 5)
        cv2.imwrite(str(src / "gt_binary_image" / f"{i}.png"), mask)


@pytest.fixture(scope="module")
def bright(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "bright256.onnx"
    return write_tiny_onnx(path, "bright", tiny_info(256, 512))


def test_scoreboard_reports_each_sources_lane_benchmark(tmp_path, bright):
    _culane_night(tmp_path)
    _tusimple_lanenet(tmp_path)
    out = tmp_path / "sb"
    result = run_scoreboard([bright], tmp_path, out, sheets=False)
    rows = {r["source"]: r for r in result["models"][str(bright)]["sources"]}
    culane = rows["culane_night"]["lanes"]
    assert (culane["benchmark"], culane["exact"], culane["frames"]) == ("culane", True, 3)
    assert culane["tp"] == 9 and culane["fp"] == 0 and culane["f1"] == 1.0
    tusimple = rows["tusimple_lanenet"]["lanes"]
    assert (tusimple["benchmark"], tusimple["exact"]) == ("tusimple", False)
    assert tusimple["accuracy"] > 0.9 and tusimple["fp"] == 0 and tusimple["fn"] == 0
    assert "all" in rows["culane_night"] and "lane_iou" in rows["culane_night"]["all"]
    assert json.loads((out / "scoreboard.json").read_text()) == result
    md = (out / "scoreboard.md").read_text()
    assert "| culane_night | culane (exact) | CULane .lines.txt | 3 |" in md
    assert "| tusimple_lanenet | tusimple (approx.) |" in md
