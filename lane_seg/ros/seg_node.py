"""The ROS 2 lane segmentation node (docs/architecture.md, the node contract): camera frames in,
lane masks, lane lines and the lane centre out.

    ros2 run lane_seg seg_node --ros-args -r ~/image:=/camera/image_raw   # the shipped model
    lane-seg node --model model.onnx --image-topic /camera/image_raw      # pip-only installs

Design:
- The subscription callback only converts the message (numpy, no cv_bridge) and puts the frame
  in a one-slot buffer; a worker thread runs the model. The newest frame always wins: a frame
  still waiting when a newer one arrives is dropped and counted, so a burst never builds a
  queue and latency stays bounded by one inference.
- A bad message (unknown encoding, wrong step, truncated data, zero or huge size, undecodable
  JPEG/PNG) is counted, logged at a limited rate and skipped; the node never dies on input.
- The mask is mono8 at the input resolution with the input header copied verbatim (stamp and
  frame_id), so it pairs exactly with the camera's camera_info and depth (RTAB-Map,
  depth_image_proc).
- The overlay is computed only while someone subscribes to it.
- `~/lane_center` (nav_msgs/Path): the ego lane's centre, tracked over the lane lines of every
  frame (lane_seg.ros.lane_center); `SegNode(lane_center_fn=...)` plugs in another function
  of the lines (tests do).
- Lane lines (`lanes`, on by default): `lane_seg.lanes` on the model's output of every frame,
  with the node's camera (camera info + mounting) once known. Per frame, `~/lanes` gets one
  nav_msgs/Path per line, left to right, and `~/lanes/markers` one MarkerArray (DELETEALL, then
  a LINE_STRIP per line) for RViz, all with the input header: points on the road in the
  camera's optical frame (lane_seg.ros.lane_lines). Until the camera is known, and on a frame
  without lines, no path goes out and the markers only clear the last frame's. The overlay
  draws the lines in any case. The lane step runs once per frame, after the mask is out and
  before the lane centre, which is made from its lines; /diagnostics reports its time
  (`lanes_ms_p50`).
- Parameters are declared with descriptions and ranges; `threshold` and `overlay_alpha` change
  at run time (applied in the post-set callback; rclpy checks the ranges), the rest are
  read-only. QoS of every topic through rclpy's QoS overrides (lane_seg.ros.params).
- A bad start-up parameter or model is one line (LaneSegError, `lane_seg.ros.entry_points`
  exits 2), and whatever the node had built by then is destroyed with it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from nav_msgs.msg import Path
from rclpy.duration import Duration
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from visualization_msgs.msg import MarkerArray

from lane_seg.errors import LaneSegError
from lane_seg.lanes.extract import LaneInstance
from lane_seg.lanes.geometry import camera_from_camera_info
from lane_seg.ros.camera_input import CameraInput
from lane_seg.ros.image_codec import (
    MAX_PIXELS,
    BadImage,
    bgr8_fields,
    message_to_rgb,
    mono8_fields,
    quiet_opencv,
)
from lane_seg.ros.lane_center import LaneCenterHook, declare_camera
from lane_seg.ros.lane_lines import lines_in_camera
from lane_seg.ros.messages import image_from_fields, lane_markers_msg, lane_path_msg, path_msg
from lane_seg.ros.params import CheckedNode, descriptor, qos_errors, qos_options
from lane_seg.ros.stats import BAD_WARN, LOSS_WARN, NodeStats
from lane_seg.runtime.engines import ENGINE_NAMES
from lane_seg.runtime.model_pick import AUTO, Pick, latency_budget, load_model
from lane_seg.runtime.segmenter import Segmenter, overlay_bgr

NODE_NAME = "seg_node"
TRANSPORTS = ("raw", "compressed")
# Defaults of the QoS overrides: in, the camera's own reliability (lane_seg.ros.camera_input) and
# only what the one-slot buffer can use; out, reliable (what RTAB-Map and rviz subscribe with).
INPUT_QOS = {"depth": 5, "reliability": ReliabilityPolicy.BEST_AVAILABLE}
OUTPUT_QOS = {"depth": 1, "reliability": ReliabilityPolicy.RELIABLE}
# ~/lanes carries one message per line of a frame: deep enough for every line of a frame.
LANES_QOS = {"depth": 20, "reliability": ReliabilityPolicy.RELIABLE}


def qos(defaults: dict[str, Any]) -> QoSProfile:
    """A new profile each time: rclpy writes the overrides into the profile it is given."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, **defaults)


# a frame's lane lines (`Segmenter.lanes`) -> lane centre points (x forward, y left, metres) in
# the vehicle frame, or None when no lane is found.
LaneCenterFn = Callable[[list[LaneInstance]], "Sequence[tuple[float, float]] | None"]


@dataclass
class Frame:
    header: Any
    rgb: np.ndarray
    received: float  # time.monotonic() when the callback got it


class SegNode(CheckedNode):
    def __init__(
        self, lane_center_fn: LaneCenterFn | None = None, node_name: str = NODE_NAME, **kwargs
    ) -> None:
        super().__init__(node_name, **kwargs)
        self._cv = threading.Condition()
        self._slot: Frame | None = None
        self._stop = False
        self._worker: threading.Thread | None = None
        try:
            self._start(lane_center_fn)
        except BaseException:
            self.destroy_node()  # topics, timers and the worker built so far
            raise

    def _start(self, lane_center_fn: LaneCenterFn | None) -> None:
        self.stats = NodeStats()
        quiet_opencv()  # bad frames are counted and logged here, rate-limited
        self._declare_static_parameters()
        p = self._static_params()
        budget = latency_budget(p["latency_budget_ms"], p["camera.fps"])
        # LaneSegError: fail now; `auto` times the shipped models (lane_seg.runtime.model_pick)
        engine, self.model_pick = load_model(p["model"], p["engine"], p["threads"], budget)
        self.segmenter = Segmenter(engine)
        self.declare_parameter(
            "threshold",
            engine.info.threshold,
            descriptor(
                "lane where sigmoid(logit) > threshold; changeable at run time",
                float_range=(0.0, 1.0),
            ),
        )
        self.declare_parameter(
            "overlay_alpha",
            0.55,
            descriptor("overlay blend weight of the lane colour", float_range=(0.0, 1.0)),
        )
        self._threshold = float(self.get_parameter("threshold").value)
        self._alpha = float(self.get_parameter("overlay_alpha").value)
        self.add_post_set_parameters_callback(self._apply_parameters)
        self._max_pixels = p["max_pixels"]
        self._log_period = p["bad_input_log_period"]
        self._vehicle_frame = p["vehicle_frame"]
        self.lane_center = LaneCenterHook()
        self._mount, camera = declare_camera(self)
        self._lanes = p["lanes"]
        self._camera = camera  # for the lane lines; replaced by each good camera_info
        if camera is not None:
            self.lane_center.set_camera(camera)
        self._lane_center_fn = lane_center_fn or self.lane_center
        self._create_topics(p)
        self._worker = threading.Thread(target=self._work, name="seg_worker", daemon=True)
        self._worker.start()
        self._diag_timer = self.create_timer(p["diagnostics_period"], self._publish_diagnostics)
        self._log_start(engine, self.model_pick)
        self.warn_unused_parameters()

    def _log_start(self, engine, pick: Pick | None) -> None:
        if pick is not None:
            self.get_logger().info(pick.describe())
            if pick.warning():
                self.get_logger().warning(pick.warning())
        timings = ", ".join(f"{k} {v:.1f} ms" for k, v in engine.auto_timings.items())
        self.get_logger().info(
            f"model {engine.path} ({engine.info.arch}, {engine.info.precision}, input "
            f"{engine.info.preprocess.width}x{engine.info.preprocess.height}) on "
            f"{engine.describe()}"
            + (f" [auto: {timings}]" if timings else "")
            + f"; listening on {self.sub.topic_name}"
        )

    def _create_topics(self, p: dict[str, Any]) -> None:
        """Every topic with rclpy's QoS overrides; a bad override is a one-line start-up error."""
        with qos_errors():
            self.mask_pub = self._publisher(Image, "~/mask")
            self.overlay_pub = self._publisher(Image, "~/overlay")
            self.lane_center_pub = self._publisher(Path, "~/lane_center")
            if p["lanes"]:
                self.lanes_pub = self._publisher(Path, "~/lanes", LANES_QOS)
                self.markers_pub = self._publisher(MarkerArray, "~/lanes/markers")
            self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
            compressed = p["input_transport"] == "compressed"
            msg_type = CompressedImage if compressed else Image
            topic = "~/image/compressed" if compressed else "~/image"
            self.sub = CameraInput(
                self, msg_type, topic, self._on_image, qos(INPUT_QOS), self.stats
            )
        self.info_sub = self.create_subscription(CameraInfo, "~/camera_info", self._on_info, 5)

    def _publisher(self, msg_type: type, topic: str, defaults: dict = OUTPUT_QOS) -> Any:
        options = qos_options(self, topic, "publisher")
        return self.create_publisher(msg_type, topic, qos(defaults), qos_overriding_options=options)

    # ---------------------------------------------------------------- parameters

    def _declare_static_parameters(self) -> None:
        ro = {"read_only": True}
        self.declare_parameter(
            "model",
            AUTO,
            descriptor(
                "the .onnx (or .pt) model; auto (or empty) = the most accurate shipped int8 "
                "model that meets latency_budget_ms here",
                **ro,
            ),
        )
        self.declare_parameter(
            "latency_budget_ms",
            0.0,
            descriptor(
                "model auto's budget per frame, ms; 0 = the camera's period (camera.fps), else 33",
                float_range=(0.0, 10_000.0),
                **ro,
            ),
        )
        self.declare_parameter(
            "camera.fps",
            0.0,
            descriptor("the camera's frame rate; 0 = unknown", float_range=(0.0, 1000.0), **ro),
        )
        self.declare_parameter(
            "engine",
            "auto",
            descriptor("inference engine; auto times them all", choices=ENGINE_NAMES, **ro),
        )
        self.declare_parameter(
            "threads",
            0,
            descriptor("inference threads, 0 = runtime default", int_range=(0, 256), **ro),
        )
        self.declare_parameter(
            "input_transport",
            "raw",
            descriptor("raw: ~/image, compressed: ~/image/compressed", choices=TRANSPORTS, **ro),
        )
        self.declare_parameter(
            "max_pixels",
            MAX_PIXELS,
            descriptor(
                "frames larger than this are refused as bad input", int_range=(1, 1 << 30), **ro
            ),
        )
        self.declare_parameter(
            "diagnostics_period",
            1.0,
            descriptor("seconds between /diagnostics messages", float_range=(0.05, 60.0), **ro),
        )
        self.declare_parameter(
            "bad_input_log_period",
            5.0,
            descriptor(
                "at most one bad-input log line per this many seconds",
                float_range=(0.0, 3600.0),
                **ro,
            ),
        )
        self.declare_parameter(
            "lanes",
            True,
            descriptor("lane lines: ~/lanes, ~/lanes/markers and drawn on ~/overlay", **ro),
        )
        self.declare_parameter(
            "vehicle_frame",
            "base_link",
            descriptor("frame_id of ~/lane_center (the vehicle frame)", **ro),
        )

    def _static_params(self) -> dict[str, Any]:
        names = [
            "model", "engine", "threads", "input_transport", "max_pixels", "diagnostics_period",
            "bad_input_log_period", "vehicle_frame", "lanes", "latency_budget_ms", "camera.fps",
        ]  # fmt: skip
        p = {n: self.get_parameter(n).value for n in names}
        checks = {"engine": ENGINE_NAMES, "input_transport": TRANSPORTS}
        for name, choices in checks.items():
            if p[name] not in choices:
                raise LaneSegError(
                    f"parameter {name} = {p[name]!r}: must be one of: {', '.join(choices)}"
                )
        return p

    def _apply_parameters(self, params) -> None:
        """Post-set callback: the values passed the descriptors' range checks and are set."""
        for param in params:
            if param.name == "threshold":
                self._threshold = float(param.value)
            elif param.name == "overlay_alpha":
                self._alpha = float(param.value)

    def _on_info(self, msg: CameraInfo) -> None:
        try:
            cam = camera_from_camera_info(list(msg.k), msg.width, msg.height, **self._mount)
        except ValueError as exc:
            self._count_bad(f"camera_info: {exc}")
            return
        self.lane_center.set_camera(cam)
        self._camera = cam

    # ---------------------------------------------------------------- input

    def _on_image(self, msg) -> None:
        received = time.monotonic()
        self.stats.received += 1
        try:
            rgb = message_to_rgb(msg, self._max_pixels)
        except BadImage as exc:
            self._count_bad(str(exc))
            return
        except Exception as exc:  # a message no check foresaw still must not stop the node
            self._count_bad(f"{type(exc).__name__}: {exc}")
            return
        with self._cv:
            if self._slot is not None:
                self.stats.dropped += 1
            self._slot = Frame(msg.header, rgb, received)
            self._cv.notify()

    def _count_bad(self, reason: str) -> None:
        self.stats.bad_inputs += 1
        self.stats.last_bad_reason = reason
        self.get_logger().warning(
            f"bad input skipped ({self.stats.bad_inputs} so far): {reason}",
            throttle_duration_sec=self._log_period,
        )

    # ---------------------------------------------------------------- worker

    def _work(self) -> None:
        while True:
            with self._cv:
                while self._slot is None and not self._stop:
                    self._cv.wait()
                if self._stop:
                    return
                frame, self._slot = self._slot, None
            try:
                self._process(frame)
            except Exception as exc:  # keep serving; the diagnostics show the error count
                self.stats.errors += 1
                self.get_logger().error(
                    f"frame failed ({self.stats.errors} so far): {type(exc).__name__}: {exc}",
                    throttle_duration_sec=self._log_period,
                )

    def _process(self, frame: Frame) -> None:
        """Mask, then the lane step (once) and the lane centre tracked over its lines (what a
        controller waits for), then the lane lines and the overlay that draws them; the
        latency counted is to the lane centre."""
        mask = self.segmenter.segment(frame.rgb, self._threshold)
        self.mask_pub.publish(image_from_fields(mono8_fields(mask), frame.header))
        camera = self._camera
        lanes = []
        if camera is not None or self._lanes:
            lanes = self.segmenter.lanes(camera)
            self.stats.lanes_done(self.segmenter.last.lanes_ms)
        points = self._lane_center_fn(lanes) or []
        self.lane_center_pub.publish(path_msg(frame.header.stamp, self._vehicle_frame, points))
        latency = (time.monotonic() - frame.received) * 1e3
        self.stats.frame_done(latency, self.segmenter.last.inference_ms)
        if self._lanes:
            lines = lines_in_camera(lanes, camera) if camera is not None else []
            for line in lines:
                self.lanes_pub.publish(lane_path_msg(line, frame.header))
            self.markers_pub.publish(lane_markers_msg(lines, frame.header))
        if self.overlay_pub.get_subscription_count() > 0:
            over = overlay_bgr(frame.rgb, mask, self._alpha, lanes)
            self.overlay_pub.publish(image_from_fields(bgr8_fields(over), frame.header))
            self.stats.overlays += 1

    # ---------------------------------------------------------------- diagnostics

    def diagnostics(self) -> DiagnosticStatus:
        s = self.stats.snapshot()
        eng = self.segmenter.engine
        status = DiagnosticStatus()
        status.name = f"{self.get_fully_qualified_name()}: lane segmentation"
        status.hardware_id = eng.describe()
        warnings = self._period_warnings()
        if warnings:
            status.level, status.message = DiagnosticStatus.WARN, "; ".join(warnings)
        elif s["processed"] == 0:
            status.level, status.message = DiagnosticStatus.OK, "waiting for frames"
        else:
            status.level, status.message = DiagnosticStatus.OK, f"{s['fps']:.1f} fps"
        values = {
            **{k: (f"{v:.2f}" if isinstance(v, float) else str(v)) for k, v in s.items()},
            "model": eng.path.name,
            "model_pick": self.model_pick.describe() if self.model_pick else "given",
            "engine": eng.name,
            "device": eng.device,
            "precision": eng.info.precision,
            "threshold": f"{self._threshold:g}",
            "last_bad_input": self.stats.last_bad_reason,
        }
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        return status

    def _period_warnings(self) -> list[str]:
        """What makes this period's status WARN (docs/architecture.md, contract 3): frames lost
        on the way, mostly bad input, inference errors."""
        warnings = []
        loss = self.stats.loss_since_last()
        if loss > LOSS_WARN:
            warnings.append(self.sub.loss_advice(loss))
            self.get_logger().warning(warnings[-1], throttle_duration_sec=30.0)
        bad = self.stats.bad_since_last()
        if bad > BAD_WARN:
            warnings.append(
                f"{bad:.0%} of the input on {self.sub.topic_name} is bad "
                f"(last: {self.stats.last_bad_reason})"
            )
        if self.stats.errors:
            warnings.append("inference errors")
        return warnings

    def _publish_diagnostics(self, final: bool = False) -> None:
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [self.diagnostics()]
        if final:
            msg.status[0].message = f"stopped: {msg.status[0].message}"
        self.diag_pub.publish(msg)

    def shut_down(self) -> None:
        """On SIGINT or SIGTERM: the worker stops, then the final counts go out on /diagnostics
        ("stopped: ..."), acknowledged by reliable subscribers within a second."""
        self._stop_worker()
        self._publish_diagnostics(final=True)
        self.diag_pub.wait_for_all_acked(Duration(seconds=1.0))

    def _stop_worker(self) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        if self._worker is not None:
            self._worker.join(timeout=5.0)

    def destroy_node(self) -> None:
        self._stop_worker()
        super().destroy_node()
