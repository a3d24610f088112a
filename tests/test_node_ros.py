"""The segmentation node over real ROS 2 (rclpy, DDS on loopback), each test a few seconds."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest

pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402

from lane_seg.lanes.extract import LaneInstance  # noqa: E402
from lane_seg.models.testing import (  # noqa: E402
    bad_compressed_fields,
    bad_image_fields,
    stripes_rgb,
    tiny_info,
    write_tiny_onnx,
)
from lane_seg.ros.harness import NodeHarness  # noqa: E402
from lane_seg.ros.image_codec import mask_array  # noqa: E402
from lane_seg.ros.messages import (  # noqa: E402
    compressed_from_fields,
    compressed_msg,
    header,
    image_from_fields,
    image_msg,
    stamp_seconds,
)
from lane_seg.runtime.segmenter import Segmenter  # noqa: E402

pytestmark = pytest.mark.ros
FAST = {"engine": "onnxruntime-cpu", "threads": 1}


@pytest.fixture(scope="module")
def bright(tmp_path_factory):
    return write_tiny_onnx(tmp_path_factory.mktemp("m") / "bright.onnx", "bright")


@pytest.fixture(scope="module")
def slow_model(tmp_path_factory):
    """A 256x512 conv net: a few ms per frame, so a burst can outrun the node."""
    d = tmp_path_factory.mktemp("m")
    return write_tiny_onnx(d / "random256.onnx", "random", tiny_info(256, 512))


def _expected(model, rgb):
    return Segmenter.load(str(model), "onnxruntime-cpu").segment(rgb)


SIZES = [(64, 128), (37, 53), (480, 640), (720, 1280)]


def test_raw_images_every_encoding_and_size(bright):
    """Masks come back mono8 at the input resolution, header identical, content as offline."""
    seg = Segmenter.load(str(bright), "onnxruntime-cpu")
    sent = []
    with NodeHarness(bright, FAST) as h:
        i = 0
        for size in SIZES:
            rgb = stripes_rgb(*size, period=max(8, size[1] // 6), seed=i)
            for enc in ("rgb8", "bgr8", "rgba8", "bgra8", "mono8"):
                hdr = header(1000.0 + i * 0.25, frame_id=f"cam_{enc}_{size[1]}")
                msg = image_msg(rgb, enc, hdr)
                h.publish(msg)
                sent.append((msg.header, rgb if enc != "mono8" else None))
                h.wait_masks(i + 1)  # one at a time: none may be dropped here
                i += 1
        masks = h.wait_masks(len(sent))
        assert h.node.stats.bad_inputs == 0 and h.node.stats.dropped == 0
    for (hdr, rgb), mask in zip(sent, masks, strict=True):
        assert mask.header == hdr
        assert mask.encoding == "mono8" and mask.step == mask.width
        if rgb is not None:
            assert (mask.height, mask.width) == rgb.shape[:2]
            np.testing.assert_array_equal(mask_array(mask), seg.segment(rgb))


def test_compressed_images_jpeg_and_png(bright):
    seg = Segmenter.load(str(bright), "onnxruntime-cpu")
    params = {**FAST, "input_transport": "compressed"}
    sent = []
    with NodeHarness(bright, params) as h:
        for i, (size, fmt) in enumerate(
            [((64, 128), "png"), ((64, 128), "jpeg"), ((720, 1280), "jpeg"), ((99, 301), "png")]
        ):
            rgb = stripes_rgb(*size, period=32, seed=i)
            msg = compressed_msg(rgb, fmt, header(2000.0 + i, frame_id="cam"))
            h.publish(msg)
            decoded = cv2.cvtColor(
                cv2.imdecode(np.frombuffer(msg.data, np.uint8), cv2.IMREAD_COLOR),
                cv2.COLOR_BGR2RGB,
            )
            sent.append((msg.header, decoded))
            h.wait_masks(i + 1)
        masks = h.wait_masks(len(sent))
    for (hdr, rgb), mask in zip(sent, masks, strict=True):
        assert mask.header == hdr
        assert (mask.height, mask.width) == rgb.shape[:2]
        np.testing.assert_array_equal(mask_array(mask), seg.segment(rgb))


def test_fuzz_malformed_messages_are_counted_and_the_node_keeps_serving(bright):
    """2,000 malformed Images and 500 malformed CompressedImages: each is counted exactly once
    as bad input and none stops the node, which then segments good frames as before."""
    rng = np.random.default_rng(2026)
    good = stripes_rgb(64, 128)
    for transport, n, make in (
        ("raw", 2000, lambda: image_from_fields(bad_image_fields(rng))),
        ("compressed", 500, lambda: compressed_from_fields(bad_compressed_fields(rng))),
    ):
        params = {**FAST, "input_transport": transport}
        qos = {"reliability": "reliable", "depth": 1000}
        with NodeHarness(bright, params, input_qos=qos) as h:
            h.publish(image_msg(good) if transport == "raw" else compressed_msg(good, "png"))
            h.wait_masks(1)
            for start in range(0, n, 250):  # paced so that reliable delivery loses nothing
                for _ in range(min(250, n - start)):
                    h.publish(make())
                want = min(n, start + 250)
                h.wait_for(lambda w=want: h.node.stats.bad_inputs >= w, 20.0, f"{want} counted")
            time.sleep(0.2)  # anything extra (a double count) would show up now
            assert h.node.stats.bad_inputs == n and h.node.stats.received == n + 1
            assert h.node.stats.processed == 1 and h.node.stats.errors == 0
            for k in range(3):
                hdr = header(3000.0 + k)
                msg = (
                    image_msg(good, hdr=hdr)
                    if transport == "raw"
                    else compressed_msg(good, "png", hdr)
                )
                h.publish(msg)
                masks = h.wait_masks(2 + k)
                assert masks[-1].header == hdr
            np.testing.assert_array_equal(mask_array(masks[-1]), _expected(bright, good))
            diag = h.node.diagnostics()
            values = {kv.key: kv.value for kv in diag.values}
            assert values["bad_inputs"] == str(n)
            assert values["last_bad_input"]


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
def test_burst_faster_than_the_node_drops_frames_without_queueing(slow_model):
    """Publish 1280x720 frames as fast as possible for ~3 s (several times the node's rate):
    the newest frame wins, drops are counted, latency does not grow and memory stays flat."""
    rgb = stripes_rgb(720, 1280)
    latencies: list[tuple[float, float]] = []  # (receive time, publish->mask seconds)

    def on_mask(msg, now):
        latencies.append((now, now - stamp_seconds(msg.header)))

    with NodeHarness(slow_model, FAST, on_mask=on_mask, keep_masks=4) as h:
        for _ in range(5):  # warm-up
            h.publish(image_msg(rgb))
        h.wait_masks(1)
        time.sleep(0.3)
        # Memory is read twice during the burst: allocator arenas fill in the first half, but
        # anything that keeps frames (a queue, a leak) keeps growing in the second half too.
        rss = []
        t_end = time.time() + 3.0
        sent = 0
        for t_check in (t_end - 1.5, t_end):
            while time.time() < t_check:
                h.publish(image_msg(rgb, "bgr8", header(time.time())))
                sent += 1
            rss.append(_rss_mb())
        stats = h.node.stats.snapshot()
    lat = np.array([d for t, d in latencies if t > t_end - 3.0])
    assert lat.size >= 10, f"only {lat.size} masks during the burst"
    third = max(1, lat.size // 3)
    early, late = np.median(lat[:third]), np.median(lat[-third:])
    # A queue would make latency climb by one frame time per frame received; it must not.
    assert late < 3 * early + 0.05, f"latency grew: {early * 1e3:.1f} ms -> {late * 1e3:.1f} ms"
    assert lat.max() < 1.0, f"worst latency {lat.max():.2f} s"
    assert stats["processed"] < sent  # the node was outrun ...
    assert stats["dropped"] + (sent - stats["received"]) > 0  # ... and did not queue
    frame_mb = rgb.nbytes / 2**20
    growth = rss[1] - rss[0]
    assert growth < 20 * frame_mb, f"memory grew {growth:.0f} MB in the burst's second half"


def test_threshold_changes_at_run_time_and_ranges_hold(bright):
    grey = np.full((32, 64, 3), 120, np.uint8)  # p = sigmoid(40 * (120/255 - 0.5)) = 0.23
    with NodeHarness(bright, FAST) as h:
        h.publish(image_msg(grey))
        assert (mask_array(h.wait_masks(1)[-1]) == 0).all()
        assert h.set_params(threshold=0.1)[0].successful
        h.publish(image_msg(grey))
        assert (mask_array(h.wait_masks(2)[-1]) == 255).all()
        assert not h.set_params(threshold=1.5)[0].successful  # outside [0, 1]
        assert not h.set_params(model="/other.onnx")[0].successful  # read-only
        assert h.node.get_parameter("threshold").value == pytest.approx(0.1)
        desc = h.node.describe_parameter("threshold")
        assert desc.floating_point_range[0].to_value == 1.0 and desc.description


def test_overlay_only_while_subscribed_and_lane_center_hook(bright):
    rgb = stripes_rgb(48, 96)
    with NodeHarness(bright, FAST) as h:
        h.publish(image_msg(rgb))
        h.wait_masks(1)
        assert h.node.stats.overlays == 0  # nobody listens: not computed
    calls = []

    def centre(lanes):
        calls.append(lanes)  # the frame's lane lines, from its one lane step
        return [(4.0, 0.0), (8.0, 0.5), (12.0, 1.5)]

    with NodeHarness(bright, FAST, lane_center_fn=centre, subscribe_overlay=True) as h:
        h.wait_for(lambda: h.node.overlay_pub.get_subscription_count() > 0, 10, "overlay sub")
        hdr = header(42.5, "cam")
        h.publish(image_msg(rgb, hdr=hdr))
        h.wait_for(lambda: h.overlays and h.paths, 10, "overlay and path")
        over, path = h.overlays[0], h.paths[0]
    assert over.header == hdr and over.encoding == "bgr8" and (over.height, over.width) == (48, 96)
    assert len(calls) == 1 and all(isinstance(lane, LaneInstance) for lane in calls[0])
    assert path.header.stamp == hdr.stamp and path.header.frame_id == "base_link"
    assert [(p.pose.position.x, p.pose.position.y) for p in path.poses] == [
        (4.0, 0.0),
        (8.0, 0.5),
        (12.0, 1.5),
    ]


def test_diagnostics_are_published(bright):
    with NodeHarness(bright, {**FAST, "diagnostics_period": 0.1}) as h:
        for k in range(5):
            h.publish(image_msg(stripes_rgb(32, 64), hdr=header(k)))
            h.wait_masks(k + 1)
        h.publish(image_from_fields(bad_image_fields(np.random.default_rng(1))))
        h.wait_for(lambda: h.node.stats.bad_inputs == 1, 5)
        h.wait_for(
            lambda: any(
                kv.key == "bad_inputs" and kv.value == "1"
                for d in h.diagnostics
                for s in d.status
                for kv in s.values
            ),
            5,
            "diagnostics with the bad input",
        )
        status = h.diagnostics[-1].status[0]
    values = {kv.key: kv.value for kv in status.values}
    assert status.name.startswith("/seg_node")
    assert values["processed"] == "5" and values["engine"] == "onnxruntime-cpu"
    assert float(values["latency_ms_p50"]) > 0 and float(values["latency_ms_p99"]) > 0
    for key in ("fps", "dropped", "device", "threshold"):
        assert key in values


def test_the_input_follows_a_best_effort_camera_that_comes_after_the_node(bright):
    """Reliable by default (the harness's camera is reliable); a best-effort camera appearing
    later gets a best-effort subscription, and its frames arrive."""
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    with NodeHarness(bright, FAST) as h:
        assert h.node.sub.sub.qos_profile.reliability == ReliabilityPolicy.BEST_AVAILABLE
        h.publish(image_msg(stripes_rgb(32, 64)))
        h.wait_masks(1)
        sensor = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)
        camera = h.client.create_publisher(Image, "/seg_node/image", sensor)
        h.wait_for(
            lambda: h.node.sub.sub.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT,
            10.0,
            "the subscription to follow the best-effort camera",
        )
        end = time.monotonic() + 10.0
        while h.mask_count < 2:  # best effort: publish until a frame gets through
            assert time.monotonic() < end, "no mask of the best-effort camera's frames"
            camera.publish(image_msg(stripes_rgb(32, 64)))
            time.sleep(0.05)
        h.client.destroy_publisher(h.image_pub)  # only the best-effort camera is left
        advice = "the camera publishes best effort: use input_transport:=compressed, or load"
        h.wait_for(lambda: advice in h.node.sub.loss_advice(0.97), 10.0, "the graph to update")
        assert "config/fastdds_large_frames.xml" in h.node.sub.loss_advice(0.97)


def test_frames_lost_in_transport_warn_with_the_fix(bright):
    """A best-effort subscription to a reliable camera: the fix is a reliable one."""
    with NodeHarness(bright, FAST, input_qos={"reliability": "best_effort"}) as h:
        h.node.stats.received += 10
        assert h.node.diagnostics().level == DiagnosticStatus.OK
        h.node.stats.received += 2
        h.node.stats.lost += 98  # what a best-effort reader of raw 720p frames reports
        status = h.node.diagnostics()
    assert status.level == DiagnosticStatus.WARN
    assert status.message == (  # the harness's camera publishes reliably
        "98% of the frames on /seg_node/image lost in transport; the camera publishes "
        "reliably: set qos_overrides./seg_node/image.subscription.reliability:=reliable"
    )
    assert {kv.key: kv.value for kv in status.values}["lost"] == "98"


def test_frames_replaced_in_a_full_queue_are_counted_as_lost(bright):
    """Frames that come while the executor is busy replace each other in the subscription's
    queue (depth 1 here) without any event from DDS: the gaps in the camera's sequence numbers
    count them, so every frame sent is either received or lost, and the status says why."""
    with NodeHarness(bright, {**FAST, "diagnostics_period": 60.0}, input_qos={"depth": 1}) as h:
        h.publish(image_msg(stripes_rgb(32, 64)))
        h.wait_masks(1)
        busy = threading.Event()

        def hold_the_executor() -> None:
            timer.cancel()
            busy.set()
            time.sleep(1.0)

        timer = h.client.create_timer(0.001, hold_the_executor)
        h.wait_for(busy.is_set, 5, "the executor to be busy")
        for k in range(50):
            h.publish(image_msg(stripes_rgb(32, 64), hdr=header(k)))
        h.wait_masks(2)
        stats = h.node.stats
        h.wait_for(lambda: stats.received + stats.lost >= 51, 5, "every frame accounted for")
        assert (stats.received, stats.lost) == (2, 49)
        status = h.node.diagnostics()
    assert status.level == DiagnosticStatus.WARN
    assert status.message == (
        "96% of the frames on /seg_node/image never reached the node: they came faster than it "
        "takes them and were replaced in its queue (depth 1); lower the camera's rate or raise "
        "qos_overrides./seg_node/image.subscription.depth"
    )


def test_mostly_bad_input_warns(bright):
    """More than half of a period's messages bad: WARN, naming the last reason; a good period
    after it is OK again."""
    rng = np.random.default_rng(3)
    deep = {"depth": 50}  # none of the burst replaced in the queue
    with NodeHarness(bright, {**FAST, "diagnostics_period": 60.0}, input_qos=deep) as h:
        for _ in range(9):
            h.publish(image_from_fields(bad_image_fields(rng)))
        h.publish(image_msg(stripes_rgb(32, 64)))
        h.wait_masks(1)
        h.wait_for(lambda: h.node.stats.bad_inputs == 9, 5, "the bad inputs counted")
        status = h.node.diagnostics()
        h.publish(image_msg(stripes_rgb(32, 64)))
        h.wait_masks(2)
        after = h.node.diagnostics()
    assert status.level == DiagnosticStatus.WARN
    assert status.message.startswith("90% of the input on /seg_node/image is bad (last: ")
    assert after.level == DiagnosticStatus.OK


def _run_seg_node(*ros_args: str) -> subprocess.CompletedProcess:
    exe = os.path.join(os.path.dirname(sys.executable), "seg_node")
    args = [exe, "--ros-args", *ros_args] if ros_args else [exe]
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "model,expect",
    [
        (["-p", "model:=/nonexistent/model.onnx"], "model file not found"),
        (["-p", "model"], "bad ROS arguments"),
    ],
)
def test_missing_model_fails_at_start_with_one_line(tmp_path, model, expect):
    r = _run_seg_node(*model)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    ours = [ln for ln in lines if ln.startswith("seg_node: error:")]
    assert len(ours) == 1 and expect in ours[0], r.stderr
    assert "Traceback" not in r.stderr and len(lines) == 1, r.stderr  # rcl's own log held back


BAD_START = [
    ({"threads": -1}, "threads = -1: must be an integer from 0 to 256 (inference threads"),
    ({"threshold": 5.0}, "threshold = 5.0: must be a number from 0 to 1 (lane where"),
    ({"max_pixels": 0}, "max_pixels = 0: must be an integer from 1 to 1073741824 (frames"),
    ({"threads": "two"}, "threads = 'two': must be an integer from 0 to 256"),
    (
        {"qos_overrides./seg_node/image.subscription.depth": 0},
        "qos_overrides./seg_node/image.subscription.depth = 0: must be an integer from 1 to "
        "1000 with history keep_last",
    ),
]


def test_bad_start_up_parameters_are_one_line_and_the_node_is_torn_down(bright):
    """Each refused in one line naming the parameter and its range; what the node had built
    (publishers, the worker) is destroyed, so shutting rclpy down afterwards is clean."""
    import threading

    import rclpy
    from rclpy.parameter import Parameter

    from lane_seg.errors import LaneSegError
    from lane_seg.ros.seg_node import SegNode

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    try:
        probe = rclpy.create_node("teardown_probe", context=ctx)
        for params, message in BAD_START:
            overrides = [Parameter(k, value=v) for k, v in {**FAST, **params}.items()]
            overrides.append(Parameter("model", value=str(bright)))
            with pytest.raises(LaneSegError) as err:
                SegNode(context=ctx, parameter_overrides=overrides)
            assert str(err.value).startswith(f"parameter {message}"), err.value
        assert "seg_worker" not in {t.name for t in threading.enumerate()}
        end = time.monotonic() + 10  # the depth-0 node had made its publishers first
        while probe.count_publishers("/seg_node/mask"):
            assert time.monotonic() < end, "a failed node left its publishers behind"
            time.sleep(0.05)
        probe.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)  # destroys nodes still tracked: none may be half-built


def test_corrupt_model_fails_at_start_with_one_line(tmp_path):
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 50)
    r = _run_seg_node("-p", f"model:={bad}")
    assert r.returncode == 2
    assert (
        r.stderr.strip().startswith("seg_node: error:") and len(r.stderr.strip().splitlines()) == 1
    )
    assert "not a loadable ONNX model" in r.stderr


def test_node_without_a_model_runs_the_shipped_int8_model():
    """No model given: `model:=auto` picks one of the shipped int8 files and runs it."""
    from lane_seg.runtime.engines import read_onnx_info
    from lane_seg.runtime.shipped_model import shipped_int8
    from lane_seg.sim.world.collect import render_frame
    from lane_seg.sim.world.scene import SimConfig

    shipped = {m.path.name: m.path for m in shipped_int8()}
    with NodeHarness("", {"engine": "onnxruntime-cpu", "threads": 1}) as h:
        picked = shipped[h.node.model_pick.chosen.name]
        assert h.node.segmenter.info == read_onnx_info(picked)
        assert h.node.segmenter.info.precision == "int8"
        labels = h.node.segmenter.info.labels  # truth in the model's convention
        frame, truth = render_frame(0, 3, SimConfig(label=labels))[:2]
        h.publish(image_msg(frame))
        mask = mask_array(h.wait_masks(1, timeout=30.0)[0])
    assert mask.shape == truth.shape
    inter = np.logical_and(mask > 0, truth > 0).sum()
    assert inter / np.logical_or(mask > 0, truth > 0).sum() > 0.4  # a trained model, not noise


def test_readme_topic_table_says_what_the_node_takes_and_its_qos(bright):
    """The README's topic table (The node): every encoding the node decodes, and each topic's
    depth, reliability and whether its QoS can be overridden, as the running node has them."""
    from rclpy.qos import ReliabilityPolicy

    from lane_seg.ros.image_codec import COMPRESSED_FORMATS, ENCODINGS
    from lane_seg.ros.params import qos_override

    readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    rows = {}
    for line in readme.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] in ("in", "out") and len(cells) == 5:
            rows[cells[1].strip("`")] = cells
    assert all(enc in rows["~/image"][3] for enc in ENCODINGS)
    assert all(fmt.upper() in rows["~/image/compressed"][3] for fmt in COMPRESSED_FORMATS)
    with NodeHarness(bright, FAST) as h:
        n = h.node
        subs = {"~/image": n.sub.sub, "~/camera_info": n.info_sub}
        pubs = {"~/mask": n.mask_pub, "~/overlay": n.overlay_pub, "/diagnostics": n.diag_pub}
        pubs |= {"~/lane_center": n.lane_center_pub, "~/lanes": n.lanes_pub}
        pubs["~/lanes/markers"] = n.markers_pub
        entities = {t: (e, "subscription") for t, e in subs.items()}
        entities |= {t: (e, "publisher") for t, e in pubs.items()}
        assert set(entities) == set(rows) - {"~/image/compressed"}
        for topic, (entity, kind) in entities.items():
            qos, profile = rows[topic][4], entity.qos_profile
            assert f"depth {profile.depth}" in qos, (topic, qos)
            word = {ReliabilityPolicy.BEST_AVAILABLE: "best_available"}.get(
                profile.reliability, profile.reliability.name.lower()
            )
            assert word in qos, (topic, qos)
            overridable = n.has_parameter(qos_override(entity.topic_name, kind, "depth"))
            assert ("not overridable" not in qos and "overridable" in qos) == overridable, topic
