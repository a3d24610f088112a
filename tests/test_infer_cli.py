"""`lane-seg infer` on images, folders and videos, through the real CLI entry point."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

from lane_seg.cli.main import main
from lane_seg.data.dataset import read_mask
from lane_seg.models.testing import stripes_rgb, write_tiny_onnx
from lane_seg.runtime.segmenter import Segmenter


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_tiny_onnx(tmp_path_factory.mktemp("m") / "bright.onnx", "bright")


def _write(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def _video(path, frames, fps=10.0):
    h, w = frames[0].shape[:2]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert vw.isOpened()
    for f in frames:
        vw.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    vw.release()


def test_images_and_folders_write_masks_and_overlays(tmp_path, model, capsys):
    a = stripes_rgb(90, 160, seed=1)
    _write(tmp_path / "in" / "a.png", a)
    _write(tmp_path / "dir" / "x" / "b.png", stripes_rgb(72, 128, seed=2))
    _write(tmp_path / "dir" / "c.jpg", stripes_rgb(64, 128, seed=3))
    out = tmp_path / "out"
    args = ["infer", "--model", str(model), "--engine", "onnxruntime-cpu", "--out", str(out)]
    assert main([*args, str(tmp_path / "in" / "a.png"), str(tmp_path / "dir")]) == 0
    assert "3 frames (3 images, 0 videos)" in capsys.readouterr().out
    mask = read_mask(out / "masks" / "a.png")
    want = Segmenter.load(str(model), "onnxruntime-cpu").segment(a)
    np.testing.assert_array_equal(mask, want)
    assert (out / "masks" / "dir" / "x" / "b.png").exists()
    assert (out / "masks" / "dir" / "c.png").exists()
    over = cv2.imread(str(out / "overlays" / "a.jpg"))
    assert over.shape == (90, 160, 3)


def test_video_gives_an_overlay_video_with_every_frame(tmp_path, model, capsys):
    frames = [stripes_rgb(96, 160, seed=i) for i in range(12)]
    _video(tmp_path / "drive.mp4", frames)
    out = tmp_path / "out"
    rc = main(
        ["infer", "--model", str(model), "--engine", "onnxruntime-cpu", "--out", str(out),
         "--mask-video", str(tmp_path / "drive.mp4")]
    )  # fmt: skip
    assert rc == 0
    assert "12 frames (0 images, 1 videos)" in capsys.readouterr().out
    for name in ("drive_overlay.mp4", "drive_mask.mp4"):
        cap = cv2.VideoCapture(str(out / name))
        n = 0
        while cap.read()[0]:
            n += 1
        assert n == 12, name
        assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (160, 96)
    assert not list(out.glob(".*partial*"))


def _two_camera_bag(path, front, rear):
    """A rosbag2 with two raw image topics, /front/image_raw and /rear/image_raw, 50 ms apart."""
    pytest.importorskip("rosbags")
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_HUMBLE)
    T, image = ts.types, "sensor_msgs/msg/Image"
    with Writer(path, version=8) as w:
        for topic, frames in (("/front/image_raw", front), ("/rear/image_raw", rear)):
            conn = w.add_connection(topic, image, typestore=ts)
            for i, rgb in enumerate(frames):
                t = 10**18 + i * 50_000_000
                stamp = T["builtin_interfaces/msg/Time"](sec=t // 10**9, nanosec=t % 10**9)
                h, wd = rgb.shape[:2]
                msg = T[image](
                    header=T["std_msgs/msg/Header"](stamp=stamp, frame_id="cam"), height=h,
                    width=wd, encoding="rgb8", is_bigendian=0, step=wd * 3, data=rgb.reshape(-1),
                )  # fmt: skip
                w.write(conn, t, ts.serialize_cdr(msg, image))
    return path


def _video_frames(path):
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    size = (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    return n, size, cap.get(cv2.CAP_PROP_FPS)


def test_a_bag_gives_an_overlay_video_of_its_image_topic(tmp_path, model, capsys):
    """A rosbag2 folder is an input like a video (lane_seg.ros.recorded, the one opener): its
    first image topic, or the one --topic names, at the rate of its metadata."""
    front = [stripes_rgb(64, 128, seed=i) for i in range(5)]
    rear = [stripes_rgb(48, 96, seed=i) for i in range(3)]
    bag = _two_camera_bag(tmp_path / "drive", front, rear)
    out = tmp_path / "out"
    args = ["infer", "--model", str(model), "--engine", "onnxruntime-cpu", "--out", str(out)]
    assert main([*args, "--lanes", str(bag)]) == 0
    assert "5 frames (0 images, 1 videos)" in capsys.readouterr().out
    assert _video_frames(out / "drive_overlay.mp4") == (5, (128.0, 64.0), 20.0)
    records = (out / "drive_tusimple.json").read_text().splitlines()
    assert [json.loads(r)["raw_file"] for r in records] == [f"drive#{i}" for i in range(5)]
    assert main([*args, "--topic", "/rear/image_raw", str(bag)]) == 0
    assert _video_frames(out / "drive_overlay.mp4") == (3, (96.0, 48.0), 20.0)
    assert not list(out.glob(".*partial*"))


def test_real_dashcam_video(real_data, tmp_path, model):
    video = real_data / "udacity" / "solidWhiteRight.mp4"
    if not video.exists():
        pytest.skip("udacity video absent")
    # only the first frames: copy them into a short clip to keep the test quick
    cap = cv2.VideoCapture(str(video))
    frames = []
    while len(frames) < 8:
        ok, bgr = cap.read()
        assert ok
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    _video(tmp_path / "clip.mp4", frames, 25.0)
    out = tmp_path / "out"
    args = ["infer", "--model", str(model), "--engine", "onnxruntime-cpu", "--out", str(out)]
    assert main([*args, str(tmp_path / "clip.mp4")]) == 0
    cap = cv2.VideoCapture(str(out / "clip_overlay.mp4"))
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (960, 540)


def test_unreadable_image_is_reported_and_the_rest_still_processed(tmp_path, model, capsys):
    _write(tmp_path / "d" / "good.png", stripes_rgb(32, 64))
    (tmp_path / "d" / "bad.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    rc = main(["infer", "--model", str(model), "--out", str(out), str(tmp_path / "d")])
    assert rc == 1
    captured = capsys.readouterr()
    assert "1 failed" in captured.out and "bad.png" not in captured.out  # failures: stderr
    bad = tmp_path / "d" / "bad.png"
    assert f"  failed: cannot read image {bad}: missing or not a valid image" in captured.err
    assert (out / "masks" / "d" / "good.png").exists()


@pytest.mark.parametrize(
    "extra,message",
    [
        (["nope.png"], "nope.png: not found"),
        (["--threshold", "2", "IMG"], "--threshold must be a probability"),
        (["NOTANIMAGE"], "x.txt: give a video"),
        (["EMPTYDIR"], "no images"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, model, capsys, extra, message):
    (tmp_path / "x.txt").write_text("hi")
    (tmp_path / "empty").mkdir()
    _write(tmp_path / "i.png", stripes_rgb(8, 8))
    subst = {"IMG": str(tmp_path / "i.png"), "NOTANIMAGE": str(tmp_path / "x.txt")}
    subst["EMPTYDIR"] = str(tmp_path / "empty")
    extra = [subst.get(e, e) for e in extra]
    assert main(["infer", "--model", str(model), "--out", str(tmp_path / "o"), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_missing_model_is_a_one_line_error(tmp_path, capsys):
    _write(tmp_path / "i.png", stripes_rgb(8, 8))
    assert main(["infer", "--model", str(tmp_path / "m.onnx"), str(tmp_path / "i.png")]) == 2
    assert "model file not found" in capsys.readouterr().err


def test_lanes_in_the_benchmarks_formats_beside_the_masks(tmp_path, capsys):
    """--lanes: a CULane .lines.txt beside each mask and one TuSimple json line per image, which
    score perfectly against the true lines with the benchmarks' own metrics; overlays show them."""
    from lane_seg.camera import Camera
    from lane_seg.data.importers.culane import parse_lines as read_culane_lines
    from lane_seg.lanes.formats import read_tusimple
    from lane_seg.lanes.metrics import TUSIMPLE_H_SAMPLES, culane_frame, tusimple_frame
    from lane_seg.models.testing import road_rgb, tiny_info
    from lane_seg.visualize import EGO_LINE_RGB

    model = write_tiny_onnx(tmp_path / "bright256.onnx", "bright", tiny_info(256, 512))
    cam = Camera.from_fov(1280, 720, 60.0, height_m=1.5, pitch_deg=3.0)
    _write(tmp_path / "in" / "road.png", road_rgb(cam, (1.75, -1.75)))
    out = tmp_path / "out"
    args = ["infer", "--model", str(model), "--engine", "onnxruntime-cpu", "--out", str(out)]
    assert main([*args, "--lanes", str(tmp_path / "in")]) == 0
    capsys.readouterr()
    # The true lines at TuSimple's rows, and as CULane points.
    rows = np.asarray(TUSIMPLE_H_SAMPLES, float)
    xs = np.geomspace(1.0, 300.0, 3000)
    truth = []
    for y in (1.75, -1.75):
        uv, _ = cam.project(np.column_stack([xs, np.full_like(xs, y), np.zeros_like(xs)]))
        x = np.interp(rows, uv[::-1, 1], uv[::-1, 0], left=np.nan, right=np.nan)
        truth.append(np.where(np.isfinite(x) & (x >= 0) & (x < 1280), x, -2))
    (record,) = read_tusimple((out / "masks" / "tusimple.json").read_text())
    assert record.raw_file == "in/road.png" and record.h_samples == list(rows)
    assert len(record.lanes) == 2
    score = tusimple_frame(record.lanes, truth, rows)
    assert score.accuracy > 0.95 and score.fp == 0 and score.fn == 0
    lines = read_culane_lines((out / "masks" / "in" / "road.lines.txt").read_text())
    gt = [np.column_stack([t, rows])[t >= 0] for t in truth]
    assert culane_frame(lines, gt, (1280, 720)).tp == 2
    over = cv2.cvtColor(cv2.imread(str(out / "overlays" / "in" / "road.jpg")), cv2.COLOR_BGR2RGB)
    near = np.abs(over.astype(int) - EGO_LINE_RGB).sum(axis=2) < 60
    assert near.sum() > 1000  # the ego lines drawn


def test_lanes_into_an_existing_out_keep_the_earlier_images_records(tmp_path, model, capsys):
    """--out defaults to runs/infer, so runs share it: masks/tusimple.json keeps every earlier
    image's record and replaces those of an image inferred again; a damaged one is refused."""
    for name, seed in (("a", 1), ("b", 2)):
        _write(tmp_path / f"{name}.png", stripes_rgb(64, 128, seed=seed))
    out = tmp_path / "out"
    args = ["infer", "--model", str(model), "--engine", "onnxruntime-cpu", "--out", str(out)]
    tusimple = out / "masks" / "tusimple.json"

    def raw_files() -> list[str]:
        return [json.loads(line)["raw_file"] for line in tusimple.read_text().splitlines()]

    assert main([*args, "--lanes", str(tmp_path / "a.png")]) == 0
    assert main([*args, "--lanes", str(tmp_path / "b.png")]) == 0
    assert raw_files() == ["a.png", "b.png"]
    assert main([*args, "--lanes", str(tmp_path / "b.png"), str(tmp_path / "a.png")]) == 0
    assert raw_files() == ["a.png", "b.png"]  # replaced in place, none twice
    tusimple.write_text(tusimple.read_text() + "{not json\n")
    before = tusimple.read_bytes()
    capsys.readouterr()
    assert main([*args, "--lanes", str(tmp_path / "a.png")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"lane-seg infer: error: {tusimple} line 3 is not a TuSimple record (JSON with "
        "raw_file); fix or move the file: this run adds its images' records to it"
    ]
    assert tusimple.read_bytes() == before


def test_a_truncated_video_is_a_failure_with_the_frames_it_gave(real_data, tmp_path, model):
    """A video cut short decodes fewer frames than its header declares: reported on stderr and
    exit 1, with the overlay of the frames that were decoded."""
    video = real_data / "udacity" / "solidWhiteRight.mp4"
    if not video.exists():
        pytest.skip("udacity video absent")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(video.read_bytes()[:300_000])  # its index is at the front
    out = tmp_path / "out"
    args = ["infer", "--model", str(model), "--engine", "onnxruntime-cpu", "--out", str(out)]
    r = subprocess.run(  # a process of its own: FFmpeg's complaints stay out of this one
        [sys.executable, "-m", "lane_seg.cli", *args, str(cut)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 1, r.stderr
    assert "1 failed" in r.stdout and "failed:" not in r.stdout
    found = re.search(r"failed: .*cut.mp4: decoded (\d+) of the 221 frames its header", r.stderr)
    assert found and 0 < int(found.group(1)) < 221, r.stderr
    assert (out / "cut_overlay.mp4").is_file()


def test_an_image_above_the_size_limit_is_refused_before_it_is_decoded(tmp_path, model, capsys):
    from lane_seg.sizes import MAX_IMAGE_SIDE

    wide = np.zeros((8, MAX_IMAGE_SIDE + 8, 3), np.uint8)  # 8 rows: cheap to write here
    _write(tmp_path / "wide.png", wide)
    _write(tmp_path / "ok.png", stripes_rgb(32, 64))
    out = tmp_path / "out"
    args = ["infer", "--model", str(model), "--engine", "onnxruntime-cpu", "--out", str(out)]
    assert main([*args, str(tmp_path / "wide.png"), str(tmp_path / "ok.png")]) == 1
    err = capsys.readouterr().err
    assert f"{MAX_IMAGE_SIDE + 8}x8 px, above the limit of {MAX_IMAGE_SIDE} px a side" in err
    assert (out / "masks" / "ok.png").is_file() and not (out / "masks" / "wide.png").exists()
