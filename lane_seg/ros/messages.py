"""The package's rclpy messages, built from numpy and back: Header, Image, CompressedImage,
CameraInfo, the lane-centre Path, and the lane lines (a Path per line, a MarkerArray for RViz).

Every node, the node harness, the closed loop over ROS 2 and the node benchmark build their
messages here. Image fields come from lane_seg.ros.image_codec, which also reads images back
without rclpy (bag replay uses it on rosbags messages).
"""

from __future__ import annotations

import array
import math
import time
from collections.abc import Sequence

import numpy as np
from geometry_msgs.msg import Point, PoseStamped
from nav_msgs.msg import Path
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from visualization_msgs.msg import Marker, MarkerArray

from lane_seg.camera import Camera
from lane_seg.lanes.tracker import LaneEstimate
from lane_seg.ros.image_codec import compressed_fields, rgb_fields
from lane_seg.ros.lane_lines import MARKER_WIDTH_M, LineGeometry


def _bytes(data) -> array.array:
    """A message's uint8[] field from bytes or a uint8 array (the fast path for rclpy)."""
    out = array.array("B")
    out.frombytes(data.tobytes() if isinstance(data, np.ndarray) else bytes(data))
    return out


def header(stamp_s: float, frame_id: str = "camera_optical") -> Header:
    h = Header()
    h.stamp.sec = int(stamp_s)
    h.stamp.nanosec = int(round((stamp_s - int(stamp_s)) * 1e9)) % 1_000_000_000
    h.frame_id = frame_id
    return h


def stamp_seconds(h: Header) -> float:
    return h.stamp.sec + h.stamp.nanosec * 1e-9


def stamp_ns(h: Header) -> int:
    return h.stamp.sec * 1_000_000_000 + h.stamp.nanosec


def image_from_fields(fields: dict, hdr: Header | None = None) -> Image:
    """A sensor_msgs/Image from field values (lane_seg.ros.image_codec), malformed ones too."""
    msg = Image()
    if hdr is not None:
        msg.header = hdr
    msg.height, msg.width, msg.step = fields["height"], fields["width"], fields["step"]
    msg.encoding, msg.is_bigendian = fields["encoding"], fields["is_bigendian"]
    msg.data = _bytes(fields["data"])
    return msg


def image_msg(rgb: np.ndarray, encoding: str = "rgb8", hdr: Header | None = None) -> Image:
    """RGB uint8 HxWx3 -> sensor_msgs/Image in `encoding` (rgb8, bgr8, rgba8, bgra8, mono8),
    stamped now unless a header is given."""
    return image_from_fields(rgb_fields(rgb, encoding), hdr or header(time.time()))


def compressed_from_fields(fields: dict, hdr: Header | None = None) -> CompressedImage:
    msg = CompressedImage()
    if hdr is not None:
        msg.header = hdr
    msg.format = fields["format"]
    msg.data = _bytes(fields["data"])
    return msg


def compressed_msg(
    rgb: np.ndarray, fmt: str = "jpeg", hdr: Header | None = None
) -> CompressedImage:
    return compressed_from_fields(compressed_fields(rgb, fmt), hdr or header(time.time()))


def camera_info_msg(cam: Camera, hdr: Header) -> CameraInfo:
    """The intrinsics of `cam` (no distortion), as a camera driver would publish them."""
    msg = CameraInfo()
    msg.header = hdr
    msg.width, msg.height = cam.width, cam.height
    msg.distortion_model = "plumb_bob"
    msg.d = [0.0] * 5
    msg.k = [float(v) for v in cam.K.ravel()]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [cam.fx, 0.0, cam.cx, 0.0, 0.0, cam.fy, cam.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


def path_msg(stamp, frame_id: str, points: Sequence[tuple[float, float]]) -> Path:
    """Points (x forward, y left, metres) as a nav_msgs/Path, each pose facing along the path;
    no points: an empty path (the lane is lost)."""
    path = Path()
    path.header.stamp = stamp
    path.header.frame_id = frame_id
    pts = list(points)
    for i, (x, y) in enumerate(pts):
        pose = PoseStamped()
        pose.header = path.header
        pose.pose.position.x, pose.pose.position.y = float(x), float(y)
        nx, ny = pts[min(i + 1, len(pts) - 1)]
        px, py = pts[max(i - 1, 0)]
        yaw = math.atan2(ny - py, nx - px) if len(pts) > 1 else 0.0
        pose.pose.orientation.z, pose.pose.orientation.w = math.sin(yaw / 2), math.cos(yaw / 2)
        path.poses.append(pose)
    return path


def path_to_estimate(msg: Path) -> LaneEstimate | None:
    """A lane-centre path back to a centre line y(x) (quadratic fit); None when the lane is lost."""
    if len(msg.poses) < 3:
        return None
    x = np.array([p.pose.position.x for p in msg.poses])
    y = np.array([p.pose.position.y for p in msg.poses])
    c = np.polyfit(x, y, 2)[::-1]
    return LaneEstimate(c, 0.0, 1.0, 2, False)


def lane_path_msg(line: LineGeometry, hdr: Header) -> Path:
    """One lane line as a nav_msgs/Path in the frame of `hdr` (the camera's), near to far."""
    path = Path()
    path.header = hdr
    for (x, y, z), (qx, qy, qz, qw) in zip(
        line.positions.tolist(), line.orientations.tolist(), strict=True
    ):
        pose = PoseStamped()
        pose.header = hdr
        p, q = pose.pose.position, pose.pose.orientation
        p.x, p.y, p.z = x, y, z
        q.x, q.y, q.z, q.w = qx, qy, qz, qw
        path.poses.append(pose)
    return path


def lane_markers_msg(lines: Sequence[LineGeometry], hdr: Header) -> MarkerArray:
    """RViz markers of a frame's lane lines: DELETEALL (the previous frame's go), then one
    LINE_STRIP per line, left to right (id = its place), namespaced ego_left / ego_right / lane."""
    clear = Marker()
    clear.header = hdr
    clear.action = Marker.DELETEALL
    markers = [clear]
    for i, line in enumerate(lines):
        m = Marker()
        m.header = hdr
        m.ns, m.id = line.marker_ns, i
        m.type, m.action = Marker.LINE_STRIP, Marker.ADD
        m.pose.orientation.w = 1.0
        m.scale.x = MARKER_WIDTH_M
        m.color.r, m.color.g, m.color.b, m.color.a = line.rgba
        m.points = [Point(x=x, y=y, z=z) for x, y, z in line.positions.tolist()]
        markers.append(m)
    out = MarkerArray()
    out.markers = markers
    return out
