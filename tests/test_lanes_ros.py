"""`~/lanes` and `~/lanes/markers` of the segmentation node over real ROS 2 (rclpy, DDS on
loopback): one Path per line with the camera's header, points on the road in the camera's
optical frame, markers for RViz, nothing but a cleared marker array on an empty frame."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("visualization_msgs")

from sensor_msgs.msg import CameraInfo  # noqa: E402
from visualization_msgs.msg import Marker  # noqa: E402

from lane_seg.camera import Camera  # noqa: E402
from lane_seg.models.testing import road_rgb, tiny_info, write_tiny_onnx  # noqa: E402
from lane_seg.ros.harness import NodeHarness  # noqa: E402
from lane_seg.ros.messages import camera_info_msg, header, image_msg  # noqa: E402

pytestmark = pytest.mark.ros
FAST = {"engine": "onnxruntime-cpu", "threads": 1}
CAM = Camera.from_fov(640, 360, 60.0, height_m=1.5, pitch_deg=3.0)
OFFSETS = (1.75, -1.75)  # metres left: ego-left, ego-right


@pytest.fixture(scope="module")
def bright(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "bright256.onnx"
    return write_tiny_onnx(path, "bright", tiny_info(256, 512))


def _camera_params(cam: Camera) -> dict:
    return {
        "camera.fx": cam.fx, "camera.fy": cam.fy, "camera.cx": cam.cx, "camera.cy": cam.cy,
        "camera.width": cam.width, "camera.height": cam.height,
        "camera.height_m": cam.height_m, "camera.pitch_deg": cam.pitch_deg,
    }  # fmt: skip


def _points(path) -> np.ndarray:
    return np.array([[p.pose.position.x, p.pose.position.y, p.pose.position.z] for p in path.poses])


def _send(h: NodeHarness, rgb: np.ndarray, stamp: float, n: int):
    hdr = header(stamp, frame_id="front_camera_optical")
    h.publish(image_msg(rgb, "rgb8", hdr))
    h.wait_masks(n)
    h.wait_for(lambda: len(h.markers) >= n, 10.0, f"{n} marker arrays")
    return h.markers[-1].markers[0].header


def test_one_path_per_line_with_the_camera_header_and_markers(bright):
    road, empty = road_rgb(CAM, OFFSETS), np.full((360, 640, 3), 20, np.uint8)
    with NodeHarness(bright, {**FAST, **_camera_params(CAM)}) as h:
        sent = _send(h, road, 100.0, 1)
        h.wait_for(lambda: len(h.lanes) >= 2, 10.0, "two lane paths")
        left, right = h.lanes[:2]
        for path in (left, right):
            assert path.header == sent  # stamp and frame_id of the camera frame, verbatim
            assert all(p.header == sent for p in path.poses)
        # Optical frame (x right, y down, z ahead), near to far, on the road: back in the
        # vehicle frame the points lie on the ground along the painted line.
        for path, offset in ((left, OFFSETS[0]), (right, OFFSETS[1])):
            p = _points(path)
            assert len(p) >= 10
            np.testing.assert_allclose(p[:, 0], -offset, atol=0.15)
            assert np.all(np.diff(p[:, 2]) > 0) and p[0, 2] < 8.0 and p[-1, 2] > 30.0
            vehicle = p @ CAM.rotation + CAM.position
            np.testing.assert_allclose(vehicle[:, 2], 0.0, atol=1e-6)
            np.testing.assert_allclose(vehicle[:, 1], offset, atol=0.15)
            q = path.poses[0].pose.orientation
            assert abs(q.x**2 + q.y**2 + q.z**2 + q.w**2 - 1.0) < 1e-6
        # The lane centre comes from the same lines (one lane step per frame), in the vehicle
        # frame: halfway between the two painted lines.
        h.wait_for(lambda: len(h.paths) >= 1, 10.0, "the lane centre")
        centre = np.array([[p.pose.position.x, p.pose.position.y] for p in h.paths[0].poses])
        assert len(centre) > 10 and np.abs(centre[centre[:, 0] <= 20.0, 1]).max() < 0.15
        markers = h.markers[0].markers
        assert markers[0].action == Marker.DELETEALL
        assert [m.ns for m in markers[1:]] == ["ego_left", "ego_right"]
        assert all(m.type == Marker.LINE_STRIP and m.header == sent for m in markers[1:])
        np.testing.assert_allclose([[pt.x, pt.y, pt.z] for pt in markers[1].points], _points(left))

        # An empty frame: no path, markers that only clear, and the node carries on.
        _send(h, empty, 101.0, 2)
        assert [m.action for m in h.markers[1].markers] == [Marker.DELETEALL]
        _send(h, road, 102.0, 3)
        h.wait_for(lambda: len(h.lanes) >= 4, 10.0, "two more lane paths")
        assert len(h.lanes) == 4 and h.node.stats.errors == 0
        values = {kv.key: kv.value for kv in h.node.diagnostics().values}
        assert float(values["lanes_ms_p50"]) > 0.0


def test_lines_wait_for_camera_info_then_use_it(bright):
    road = road_rgb(CAM, OFFSETS)
    with NodeHarness(bright, {**FAST, "camera.height_m": 1.5, "camera.pitch_deg": 3.0}) as h:
        _send(h, road, 200.0, 1)
        assert [m.action for m in h.markers[0].markers] == [Marker.DELETEALL] and not h.lanes
        ns = h.node.get_fully_qualified_name()
        info_pub = h.client.create_publisher(CameraInfo, f"{ns}/camera_info", 5)
        h.wait_for(lambda: info_pub.get_subscription_count() > 0, 10.0, "camera_info discovery")
        info_pub.publish(camera_info_msg(CAM, header(200.5, "front_camera_optical")))
        for n in range(2, 50):  # frames until the camera info has arrived
            _send(h, road, 200.0 + n, n)
            if h.lanes:
                break
        h.wait_for(lambda: len(h.lanes) >= 2, 10.0, "two lane paths")
        np.testing.assert_allclose(_points(h.lanes[0])[:, 0], -OFFSETS[0], atol=0.15)


def test_lanes_off_publishes_no_lane_topics(bright):
    with NodeHarness(bright, {**FAST, "lanes": False}) as h:
        h.publish(image_msg(road_rgb(CAM, OFFSETS)))
        h.wait_masks(1)
        node = h.node
        topics = node.get_publisher_names_and_types_by_node(node.get_name(), node.get_namespace())
        names = {name for name, _ in topics}
        assert not any("lanes" in n for n in names)
        assert math.isnan(h.node.stats.snapshot()["lanes_ms_p50"])
