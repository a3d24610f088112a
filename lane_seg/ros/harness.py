"""A SegNode driven over real ROS 2 from one process: `lane-seg demo --input` and the tests.

`NodeHarness` owns its own rclpy Context (so it never touches the global one), a SegNode, a
client node that publishes frames and collects masks/overlays/paths/lane lines/diagnostics, and
an executor thread; `close()` shuts all of it down. Messages come from lane_seg.ros.messages.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import Path
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from visualization_msgs.msg import MarkerArray

from lane_seg.ros.params import qos_override
from lane_seg.ros.seg_node import NODE_NAME, SegNode


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
        input_qos: dict[str, Any] | None = None,
    ) -> None:
        """`keep_masks` bounds how many received masks are kept (None: all), so a long burst
        measures the node's memory rather than the test client's. `input_qos` overrides the
        node's input QoS policies, e.g. {"reliability": "reliable", "depth": 1000}."""
        self.context = rclpy.Context()
        self._keep_masks = keep_masks
        rclpy.init(context=self.context)
        self.node = None
        try:
            params = dict(params or {})
            suffix = "/compressed" if params.get("input_transport") == "compressed" else ""
            topic = f"/{NODE_NAME}/image{suffix}"
            for policy, value in (input_qos or {}).items():
                params[qos_override(topic, "subscription", policy)] = value
            overrides = [Parameter("model", value=str(model))]
            overrides += [Parameter(k, value=v) for k, v in params.items()]
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
        self.lanes: list[Path] = []  # ~/lanes: one per line of each frame
        self.markers: list[MarkerArray] = []
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
        self.client.create_subscription(Path, f"{ns}/lanes", self.lanes.append, reliable)
        self.client.create_subscription(
            MarkerArray, f"{ns}/lanes/markers", self.markers.append, reliable
        )
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
