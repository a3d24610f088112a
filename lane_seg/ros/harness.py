"""Drive a SegNode over real ROS 2 from one process: message builders and a test harness.

Used by the ROS tests and the node benchmark. `NodeHarness` owns its own rclpy Context (so it
never touches the global one), a SegNode, a client node that publishes frames and collects
masks/overlays/paths/diagnostics, and an executor thread; `close()` shuts all of it down.
"""

from __future__ import annotations

import array
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import Path
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from lane_seg.ros.seg_node import SegNode


def _bytes_array(data: bytes) -> array.array:
    out = array.array("B")
    out.frombytes(data)
    return out


def header(stamp_s: float, frame_id: str = "camera_optical") -> Header:
    h = Header()
    h.stamp.sec = int(stamp_s)
    h.stamp.nanosec = int(round((stamp_s - int(stamp_s)) * 1e9)) % 1_000_000_000
    h.frame_id = frame_id
    return h


def stamp_seconds(h: Header) -> float:
    return h.stamp.sec + h.stamp.nanosec * 1e-9


def image_msg(rgb: np.ndarray, encoding: str = "rgb8", hdr: Header | None = None) -> Image:
    """RGB uint8 HxWx3 -> sensor_msgs/Image in `encoding` (rgb8, bgr8, rgba8, bgra8, mono8)."""
    conv = {
        "rgb8": None,
        "bgr8": cv2.COLOR_RGB2BGR,
        "rgba8": cv2.COLOR_RGB2RGBA,
        "bgra8": cv2.COLOR_RGB2BGRA,
        "mono8": cv2.COLOR_RGB2GRAY,
    }[encoding]
    px = np.ascontiguousarray(rgb if conv is None else cv2.cvtColor(rgb, conv))
    msg = Image()
    msg.header = hdr or header(time.time())
    msg.height, msg.width = rgb.shape[:2]
    msg.encoding = encoding
    msg.step = int(px.strides[0])
    msg.data = _bytes_array(px.tobytes())
    return msg


def compressed_msg(
    rgb: np.ndarray, fmt: str = "jpeg", hdr: Header | None = None
) -> CompressedImage:
    ext = ".png" if fmt == "png" else ".jpg"
    ok, buf = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    msg = CompressedImage()
    msg.header = hdr or header(time.time())
    msg.format = fmt
    msg.data = _bytes_array(buf.tobytes())
    return msg


def raw_fields_msg(fields: dict) -> Image:
    """A sensor_msgs/Image from raw field values, malformed ones included."""
    msg = Image()
    msg.height, msg.width, msg.step = fields["height"], fields["width"], fields["step"]
    msg.encoding, msg.is_bigendian = fields["encoding"], fields["is_bigendian"]
    msg.data = _bytes_array(bytes(fields["data"]))
    return msg


def raw_compressed_msg(fields: dict) -> CompressedImage:
    msg = CompressedImage()
    msg.format = fields["format"]
    msg.data = _bytes_array(bytes(fields["data"]))
    return msg


def mask_array(msg: Image) -> np.ndarray:
    return np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.step)[:, : msg.width]


class NodeHarness:
    """One SegNode plus a client node in a private rclpy Context."""

    def __init__(
        self,
        model: str,
        params: dict[str, Any] | None = None,
        lane_center_fn: Callable | None = None,
        subscribe_overlay: bool = False,
        on_mask: Callable[[Image, float], None] | None = None,
        keep_masks: int | None = None,
    ) -> None:
        """`keep_masks` bounds how many received masks are kept (None: all), so a long burst
        measures the node's memory rather than the test client's."""
        self.context = rclpy.Context()
        self._keep_masks = keep_masks
        rclpy.init(context=self.context)
        self.node = None
        try:
            overrides = [Parameter("model", value=str(model))]
            overrides += [Parameter(k, value=v) for k, v in (params or {}).items()]
            self.node = SegNode(
                lane_center_fn=lane_center_fn, context=self.context, parameter_overrides=overrides
            )
            self._build_client(subscribe_overlay, on_mask)
        except Exception:
            self.close()
            raise

    def _build_client(self, subscribe_overlay: bool, on_mask) -> None:
        self.client = rclpy.create_node("seg_test_client", context=self.context)
        self.masks: deque[tuple[float, Image]] = deque(maxlen=self._keep_masks)  # (time, msg)
        self.mask_count = 0
        self.overlays: list[Image] = []
        self.paths: list[Path] = []
        self.diagnostics: list[DiagnosticArray] = []
        self._lock = threading.Lock()
        self._on_mask = on_mask
        reliable = QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE
        )
        ns = self.node.get_fully_qualified_name()
        self.client.create_subscription(Image, f"{ns}/mask", self._got_mask, reliable)
        if subscribe_overlay:
            self.client.create_subscription(Image, f"{ns}/overlay", self.overlays.append, reliable)
        self.client.create_subscription(Path, f"{ns}/lane_center", self.paths.append, reliable)
        self.client.create_subscription(
            DiagnosticArray, "/diagnostics", self.diagnostics.append, 10
        )
        # Input side: reliable publisher, which a best-effort (sensor QoS) subscription accepts.
        pub_qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=1000, reliability=ReliabilityPolicy.RELIABLE
        )
        self.image_pub = self.client.create_publisher(Image, f"{ns}/image", pub_qos)
        self.compressed_pub = self.client.create_publisher(
            CompressedImage, f"{ns}/image/compressed", pub_qos
        )
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.client)
        self._spin = threading.Thread(target=self._spin_loop, daemon=True)
        self._spin.start()
        compressed = self.node.get_parameter("input_transport").value == "compressed"
        self.input_pub = self.compressed_pub if compressed else self.image_pub
        self.wait_for(lambda: self.input_pub.get_subscription_count() > 0, 10.0, "discovery")
        self.wait_for(lambda: self.node.mask_pub.get_subscription_count() > 0, 10.0, "discovery")

    def _spin_loop(self) -> None:
        # shutdown races end the spin with an exception; close() is what matters
        with contextlib.suppress(Exception):
            self.executor.spin()

    def _got_mask(self, msg: Image) -> None:
        now = time.time()
        with self._lock:
            self.masks.append((now, msg))
            self.mask_count += 1
        if self._on_mask:
            self._on_mask(msg, now)

    def publish(self, msg) -> None:
        self.input_pub.publish(msg)

    @staticmethod
    def wait_for(cond: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
        end = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > end:
                raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
            time.sleep(0.005)

    def wait_masks(self, n: int, timeout: float = 10.0) -> list[Image]:
        self.wait_for(lambda: self.mask_count >= n, timeout, f"{n} masks")
        with self._lock:
            return [m for _, m in self.masks]

    def set_params(self, **values) -> Sequence:
        return self.node.set_parameters([Parameter(k, value=v) for k, v in values.items()])

    def close(self) -> None:
        if getattr(self, "executor", None) is not None:
            self.executor.shutdown(timeout_sec=2.0)
        if self.node is not None:
            self.node.destroy_node()
        if getattr(self, "client", None) is not None:
            self.client.destroy_node()
        if self.context.ok():
            rclpy.shutdown(context=self.context)
        if getattr(self, "_spin", None) is not None:
            self._spin.join(timeout=5.0)

    def __enter__(self) -> NodeHarness:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
