"""rosbag2 replay on bags built from real TuSimple frames and on the shared bag fixtures."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("rosbags")

from rosbags.rosbag2 import Reader  # noqa: E402
from rosbags.typesys import Stores, get_typestore  # noqa: E402

from lane_seg.cli.main import main  # noqa: E402
from lane_seg.errors import LaneSegError  # noqa: E402
from lane_seg.models.testing import stripes_rgb, write_image_bag, write_tiny_onnx  # noqa: E402
from lane_seg.ros.bag import replay  # noqa: E402
from lane_seg.ros.image_codec import (
    mask_array,  # noqa: E402
    message_to_rgb,  # noqa: E402
)
from lane_seg.runtime.segmenter import Segmenter  # noqa: E402

TS = get_typestore(Stores.ROS2_HUMBLE)
TOPIC = "/camera/image_raw"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_tiny_onnx(tmp_path_factory.mktemp("m") / "bright.onnx", "bright")


@pytest.fixture(scope="module")
def seg(model):
    return Segmenter.load(str(model), "onnxruntime-cpu")


def _clip_frames(real: Path, n: int) -> list[np.ndarray]:
    files = sorted((real / "tusimple_clips" / "00_Lane").glob("*.jpg"))[:n]
    if not files:
        pytest.skip("no TuSimple clip frames")
    return [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files]


def _read_all(path: Path) -> list[tuple[str, int, bytes]]:
    with Reader(path) as r:
        return [(c.topic, t, raw) for c, t, raw in r.messages()]


@pytest.mark.parametrize("storage,encoding", [("mcap", "bgr8"), ("sqlite3", "jpeg")])
def test_replay_every_frame_keeps_stamps_and_copies_other_topics(
    real_data, tmp_path, seg, storage, encoding
):
    frames = _clip_frames(real_data, 6)  # 1280x720 TuSimple drive
    src = write_image_bag(tmp_path / "in", frames, TOPIC, storage, encoding)
    report = replay(seg, src, tmp_path / "out", TOPIC, overlay_topic="/seg_node/overlay")
    assert (report.frames, report.masks, report.bad) == (6, 6, [])
    assert not (tmp_path / "out.partial").exists()

    src_msgs, out_msgs = _read_all(src), _read_all(tmp_path / "out")
    copied = [m for m in out_msgs if not m[0].startswith("/seg_node/")]
    assert sorted(copied) == sorted(src_msgs)  # every input message, byte for byte
    inputs = [(t, raw) for topic, t, raw in src_msgs if topic == TOPIC]
    masks = [(t, raw) for topic, t, raw in out_msgs if topic == "/seg_node/mask"]
    overlays = [raw for topic, _, raw in out_msgs if topic == "/seg_node/overlay"]
    assert len(masks) == len(overlays) == 6
    msgtype = "sensor_msgs/msg/CompressedImage" if encoding == "jpeg" else "sensor_msgs/msg/Image"
    for (t_in, raw_in), (t_mask, raw_mask) in zip(inputs, masks, strict=True):
        assert t_mask == t_in  # original receive time
        img = TS.deserialize_cdr(raw_in, msgtype)
        mask = TS.deserialize_cdr(raw_mask, "sensor_msgs/msg/Image")
        assert mask.header == img.header and mask.encoding == "mono8"
        assert (mask.height, mask.width) == (720, 1280)
        np.testing.assert_array_equal(mask_array(mask), seg.segment(message_to_rgb(img)))
    assert bool(list((tmp_path / "out").glob("*.mcap"))) == (storage == "mcap")
    with Reader(tmp_path / "out") as r:
        assert {c.topic for c in r.connections} >= {TOPIC, "/chatter", "/seg_node/mask"}


def test_replay_can_change_storage(tmp_path, seg):
    src = write_image_bag(tmp_path / "in", [stripes_rgb(40, 80)] * 3, TOPIC, "sqlite3", "rgb8")
    replay(seg, src, tmp_path / "out", TOPIC, storage="mcap")
    assert list((tmp_path / "out").glob("*.mcap"))
    assert len([m for m in _read_all(tmp_path / "out") if m[0] == "/seg_node/mask"]) == 3


def test_ros2bag_tools_fixture_tiny_mono8_frames(real_data, tmp_path, seg):
    bag = real_data / "ros2_bags/ros2bag_tools/ros2bag_tools/test/images.bag"
    report = replay(seg, bag, tmp_path / "out", "/image")
    assert (report.frames, report.masks, report.bad) == (3, 3, [])
    masks = [
        TS.deserialize_cdr(raw, "sensor_msgs/msg/Image")
        for topic, _, raw in _read_all(tmp_path / "out")
        if topic == "/seg_node/mask"
    ]
    assert [(m.height, m.width) for m in masks] == [(2, 2)] * 3


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
@pytest.mark.parametrize(
    "topic,reason",
    [
        ("/test/sensor_msgs/image", "truncated data: 30 bytes for step 1920 x 480 rows"),
        ("/test/sensor_msgs/compressed_image", "undecodable JPEG"),
    ],
)
def test_malformed_rosbags_rs_frames_are_reported_not_fatal(
    real_data, tmp_path, seg, storage, topic, reason
):
    bag = real_data / f"ros2_bags/rosbags-rs/tests/test_bags/test_bag_{storage}"
    report = replay(seg, bag, tmp_path / "out", topic, progress=False)
    assert report.frames == 2 and report.masks == 0
    assert len(report.bad) == 2 and all(reason in b for b in report.bad)
    assert report.copied == 188  # all 94 topics x 2 messages still copied through


def test_cli_reports_bad_frames_and_exit_codes(real_data, tmp_path, model, capsys):
    bag = real_data / "ros2_bags/rosbags-rs/tests/test_bags/test_bag_mcap"
    args = [
        "bag",
        str(bag),
        str(tmp_path / "o1"),
        "--model",
        str(model),
        "--engine",
        "onnxruntime-cpu",
    ]
    assert main([*args, "--topic", "/test/sensor_msgs/image"]) == 1
    out = capsys.readouterr().out
    assert "2 bad frames" in out and "truncated data" in out
    assert main([*args[:2], str(tmp_path / "o2"), *args[3:], "--topic", "/nope"]) == 2
    err = capsys.readouterr().err
    assert "topic /nope is not in" in err and "/test/sensor_msgs/image" in err
    assert (
        main([*args[:2], str(tmp_path / "o3"), *args[3:], "--topic", "/test/std_msgs/string"]) == 2
    )
    assert "not an image type" in capsys.readouterr().err


def test_clear_errors_for_missing_corrupt_and_existing(tmp_path, seg):
    with pytest.raises(LaneSegError, match="bag not found"):
        replay(seg, tmp_path / "none", tmp_path / "out", TOPIC)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "metadata.yaml").write_text("rosbag2_bagfile_information: [this is: not valid")
    with pytest.raises(LaneSegError, match="cannot read bag"):
        replay(seg, broken, tmp_path / "out", TOPIC)
    src = write_image_bag(tmp_path / "in", [stripes_rgb(8, 8)], TOPIC, "mcap", "rgb8")
    (tmp_path / "exists").mkdir()
    with pytest.raises(LaneSegError, match="already exists"):
        replay(seg, src, tmp_path / "exists", TOPIC)
    with pytest.raises(LaneSegError, match="already has topic /chatter"):
        replay(seg, src, tmp_path / "out", TOPIC, mask_topic="/chatter")


def test_bag_input_is_refused_before_the_model_loads(tmp_path, capsys):
    """A folder that is no bag, or a bag without the topic: one line about the input, although
    the model does not even exist (it is loaded only after the input passed)."""
    (tmp_path / "notabag").mkdir()
    (tmp_path / "notabag" / "x.txt").write_text("hi")
    src = write_image_bag(tmp_path / "in", [stripes_rgb(8, 8)], TOPIC, "mcap", "rgb8")
    for bag, topic, message in (
        ("notabag", TOPIC, "notabag is not a rosbag2 folder: it has no metadata.yaml"),
        ("in", "/nope", "topic /nope is not in"),
    ):
        argv = ["bag", str(tmp_path / bag), str(tmp_path / "out"), "--topic", topic]
        assert main([*argv, "--model", str(tmp_path / "none.onnx")]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and message in err, err
    assert src.is_dir() and not (tmp_path / "out").exists()


def test_truncated_data_file_is_a_clear_error(tmp_path, seg):
    src = write_image_bag(tmp_path / "in", [stripes_rgb(64, 64)] * 4, TOPIC, "sqlite3", "rgb8")
    db = next(src.glob("*.db3"))
    db.write_bytes(db.read_bytes()[:2048])
    with pytest.raises(LaneSegError, match="bag"):
        replay(seg, src, tmp_path / "out", TOPIC)
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def _lane_paths(out: Path) -> dict[int, list]:
    """Received time -> the Paths written on /seg_node/lanes at it, in order."""
    paths: dict[int, list] = {}
    for topic, t, raw in _read_all(out):
        if topic == "/seg_node/lanes":
            paths.setdefault(t, []).append(TS.deserialize_cdr(raw, "nav_msgs/msg/Path"))
    return paths


def test_lane_lines_as_the_node_publishes_them_with_the_bags_camera(tmp_path):
    """A Path per line with the image's header on /seg_node/lanes, markers beside: the camera
    from the bag's own CameraInfo; without it, only markers that clear."""
    from lane_seg.camera import Camera
    from lane_seg.models.testing import road_rgb, tiny_info

    model = write_tiny_onnx(tmp_path / "bright256.onnx", "bright", tiny_info(256, 512))
    seg = Segmenter.load(str(model), "onnxruntime-cpu")
    cam = Camera.from_fov(640, 360, 60.0, height_m=1.5, pitch_deg=3.0)
    frames = [road_rgb(cam, (1.75, -1.75), seed=i) for i in range(3)]
    src = write_image_bag(tmp_path / "in", frames, TOPIC, "mcap", "rgb8", camera=cam)
    mount = {"height_m": 1.5, "pitch_deg": 3.0}
    report = replay(seg, src, tmp_path / "out", TOPIC, mount=mount, progress=False)
    assert report.lane_paths == 6
    images = {t: TS.deserialize_cdr(raw, "sensor_msgs/msg/Image") for topic, t, raw in
              _read_all(src) if topic == TOPIC}  # fmt: skip
    paths = _lane_paths(tmp_path / "out")
    assert sorted(paths) == sorted(images)  # at each frame's receive time
    for t, (left, right) in paths.items():
        assert left.header == right.header == images[t].header
        for path, offset in ((left, 1.75), (right, -1.75)):
            p = np.array([[q.pose.position.x, q.pose.position.y, q.pose.position.z]
                          for q in path.poses])  # fmt: skip
            vehicle = p @ cam.rotation + cam.position  # optical frame -> on the road
            np.testing.assert_allclose(vehicle[:, 1], offset, atol=0.15)
    markers = [
        TS.deserialize_cdr(raw, "visualization_msgs/msg/MarkerArray")
        for topic, _, raw in _read_all(tmp_path / "out")
        if topic == "/seg_node/lanes/markers"
    ]
    assert [[m.ns for m in a.markers[1:]] for a in markers] == [["ego_left", "ego_right"]] * 3

    # No CameraInfo in the bag: markers that only clear; the node's parameter file gives one.
    bare = write_image_bag(tmp_path / "bare", frames, TOPIC, "mcap", "rgb8")
    assert replay(seg, bare, tmp_path / "out2", TOPIC, progress=False).lane_paths == 0
    params = tmp_path / "seg.yaml"
    params.write_text(
        "/**:\n  ros__parameters:\n    camera: {height_m: 1.5, pitch_deg: 3.0, "
        f"fx: {cam.fx}, fy: {cam.fy}, cx: {cam.cx}, cy: {cam.cy}, width: 640, height: 360}}\n"
    )
    args = ["bag", str(bare), str(tmp_path / "out3"), "--topic", TOPIC, "--model", str(model)]
    assert main([*args, "--engine", "onnxruntime-cpu", "--params-file", str(params)]) == 0
    assert sum(len(v) for v in _lane_paths(tmp_path / "out3").values()) == 6
