"""The camera path: 1280x720 frames from a camera process to the segmentation node, one host.

    .venv/bin/python studies/camera_path.py                 # 30 Hz, 300 frames per option
    .venv/bin/python studies/camera_path.py --rate 60 --frames 1200

Each option starts the node (`seg_node`, the shipped int8 model, engine auto) and a camera
process of its own that publishes real road frames (TuSimple clips, 1280x720) the way a camera
driver does, at a steady rate, with the camera's QoS; this process counts the masks and reads
the node's /diagnostics: frames that reached the node, frames DDS reported lost on the way,
masks published, and the diagnostics level. Options: the node's input QoS (the old best_effort
default, the new default that follows the camera, a reliable and a best-effort camera, started
before or after the node), Fast DDS shared memory for large frames (config/fastdds_large_frames.xml
in both processes), and compressed transport.

Writes runs/bench/camera_path.{json,md} with the CPU line and this command. A benchmark, not a
test: it asserts nothing. DDS stays on loopback, in a domain of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "real" / "tusimple_clips" / "00_Lane"
PROFILE = REPO / "config" / "fastdds_large_frames.xml"
TOPIC = "/bench_camera/image_raw"
LEVELS = {0: "OK", 1: "WARN", 2: "ERROR"}


@dataclass
class Option:
    name: str
    camera_qos: str  # reliable | best_effort
    node_params: dict[str, str] = field(default_factory=dict)
    camera_first: bool = False
    shared_memory: bool = False  # config/fastdds_large_frames.xml in both processes
    jpeg: bool = False  # sensor_msgs/CompressedImage, input_transport compressed


BEST_EFFORT_IN = {f"qos_overrides.{TOPIC}.subscription.reliability": "best_effort"}
OPTIONS = [
    Option("node input best_effort (the default before)", "reliable", BEST_EFFORT_IN),
    Option("node input best_effort (the default before)", "best_effort", BEST_EFFORT_IN),
    Option("default: follows the camera; camera started after the node", "reliable"),
    Option("default: follows the camera; camera started before the node", "reliable", {}, True),
    Option("default: follows the camera; camera started after the node", "best_effort"),
    Option("Fast DDS shared memory in both processes", "best_effort", {}, shared_memory=True),
    Option("input_transport compressed (JPEG quality 90)", "best_effort", {}, jpeg=True),
]


# ------------------------------------------------------------------ the camera process


def camera(qos: str, jpeg: bool, frames: int, rate: float) -> None:
    """Publish `frames` real frames at `rate` Hz once a subscriber is there; print the count."""
    import cv2
    import rclpy
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CompressedImage, Image

    from lane_seg.bench.node_end_to_end import bench_frames
    from lane_seg.ros.messages import compressed_msg, header, image_msg

    rgbs = bench_frames(720, 1280, REAL)
    if jpeg:
        msgs = [compressed_msg(f, "jpeg") for f in rgbs]
        for m, f in zip(msgs, rgbs, strict=True):
            bgr = cv2.cvtColor(f, cv2.COLOR_RGB2BGR)
            m.data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    else:
        msgs = [image_msg(f, "bgr8") for f in rgbs]
    rclpy.init()
    node = rclpy.create_node("bench_camera")
    profile = QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy[qos.upper()]
    )
    topic = f"{TOPIC}/compressed" if jpeg else TOPIC
    pub = node.create_publisher(CompressedImage if jpeg else Image, topic, profile)
    end = time.monotonic() + 120
    while not pub.get_subscription_count() and time.monotonic() < end:
        time.sleep(0.05)
    time.sleep(1.0)  # the node's subscription matched: give discovery a moment more
    t0 = time.monotonic()
    for i in range(frames):
        msg = msgs[i % len(msgs)]
        msg.header = header(time.time(), "camera_optical")
        pub.publish(msg)
        time.sleep(max(0.0, t0 + (i + 1) / rate - time.monotonic()))
    print(json.dumps({"published": frames, "seconds": time.monotonic() - t0}), flush=True)
    time.sleep(2.0)  # reliable: let the last frames be delivered
    node.destroy_node()
    rclpy.shutdown()


# ------------------------------------------------------------------ the node and the counting


class Monitor:
    """The node's last /diagnostics values, its most severe status while the camera ran, and
    the masks it published, seen from outside."""

    def __init__(self, node_name: str) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image

        self._rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("bench_monitor", context=self.context)
        self.masks = 0
        self.status: dict[str, str] = {}
        self.worst = (-1, "")  # (level, message)
        self._prefix = f"/{node_name}:"
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(Image, f"/{node_name}/mask", self._mask, reliable)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._diag, 10)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    @staticmethod
    def wait(cond, timeout: float) -> None:
        end = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > end:
                raise TimeoutError("a process did not come up on the ROS graph")
            time.sleep(0.1)

    def _mask(self, msg) -> None:
        self.masks += 1

    def _diag(self, msg) -> None:
        for s in msg.status:
            if s.name.startswith(self._prefix):
                self.status = {kv.key: kv.value for kv in s.values}
                level = int.from_bytes(s.level, "little")
                if level > self.worst[0]:
                    self.worst = (level, s.message)

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        self._rclpy.shutdown(context=self.context)
        self._thread.join(timeout=5.0)


def run_option(opt: Option, i: int, frames: int, rate: float) -> dict:
    name = f"seg_bench_{os.getpid()}_{i}"
    env = dict(os.environ)
    if opt.shared_memory:
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(PROFILE)
    node = [str(Path(sys.executable).with_name("seg_node")), "--ros-args", "-r", f"__node:={name}"]
    params = dict(opt.node_params)
    if opt.jpeg:
        params["input_transport"] = "compressed"
        node += ["-r", f"~/image/compressed:={TOPIC}/compressed"]
    else:
        node += ["-r", f"~/image:={TOPIC}"]
    for k, v in params.items():
        node += ["-p", f"{k}:={v}"]
    cam = [sys.executable, __file__, "--camera", opt.camera_qos, "--frames", str(frames)]
    cam += ["--rate", str(rate)] + (["--jpeg"] if opt.jpeg else [])
    topic = f"{TOPIC}/compressed" if opt.jpeg else TOPIC
    monitor = Monitor(name)
    procs = []
    try:
        # the first process is on the graph (its topic created) before the second starts
        first, second = (cam, node) if opt.camera_first else (node, cam)
        procs.append(subprocess.Popen(first, env=env, stdout=subprocess.PIPE, text=True))
        on_graph = (
            monitor.node.count_publishers if opt.camera_first else monitor.node.count_subscribers
        )
        monitor.wait(lambda: on_graph(topic) > 0, 180.0)
        procs.append(subprocess.Popen(second, env=env, stdout=subprocess.PIPE, text=True))
        cam_proc = procs[0] if opt.camera_first else procs[1]
        out, _ = cam_proc.communicate(timeout=frames / rate + 240)
        sent = json.loads(out.strip().splitlines()[-1])
        time.sleep(2.5)  # two more /diagnostics periods
        s = monitor.status
        return {
            "option": opt.name,
            "camera_qos": opt.camera_qos,
            "camera_first": opt.camera_first,
            "published": sent["published"],
            "received": int(s.get("received", 0)),
            "lost": int(s.get("lost", 0)),
            "masks": monitor.masks,
            "masks_per_s": monitor.masks / sent["seconds"],
            "diagnostics": LEVELS.get(monitor.worst[0], "none")
            + (f": {monitor.worst[1]}" if monitor.worst[0] > 0 else ""),
        }
    finally:
        monitor.close()
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
            try:
                p.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()


def markdown(report: dict) -> str:
    lines = [
        f"Hardware: {report['cpu']}; load average before {report['load_before']:.2f}, "
        f"after {report['load_after']:.2f}.",
        f"Command: `{report['command']}`; {report['frames']} frames of 1280x720 at "
        f"{report['rate']:g} Hz per row, each row a fresh node and camera process.",
        "",
        "| node input | camera QoS | frames at the node / published | lost (DDS) | masks/s | "
        "/diagnostics |",
        "|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        first = ", started first" if r["camera_first"] else ""
        diagnostics = r["diagnostics"].split(";")[0]  # the advice that follows: lane_seg.ros
        lines.append(
            f"| {r['option']} | {r['camera_qos']}{first} | {r['received']}/{r['published']} | "
            f"{r['lost']} | {r['masks_per_s']:.1f} | {diagnostics} |"
        )
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rate", type=float, default=30.0, help="camera frames per second (30)")
    p.add_argument("--frames", type=int, default=300, help="frames per option (300)")
    p.add_argument("--out", default=str(REPO / "runs" / "bench"))
    p.add_argument("--camera", choices=("reliable", "best_effort"), help=argparse.SUPPRESS)
    p.add_argument("--jpeg", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ["ROS_LOCALHOST_ONLY"] = "1"
    if args.camera:
        camera(args.camera, args.jpeg, args.frames, args.rate)
        return 0
    os.environ.setdefault("ROS_DOMAIN_ID", str(os.getpid() % 100 + 101))
    from lane_seg.runtime.hwinfo import CpuInfo

    load_before = os.getloadavg()[0]
    rows = []
    for i, opt in enumerate(OPTIONS):
        rows.append(run_option(opt, i, args.frames, args.rate))
        print(json.dumps(rows[-1]), flush=True)
    report = {
        "cpu": CpuInfo.detect().line(),
        "command": shlex.join(["python", "studies/camera_path.py", *sys.argv[1:]]),
        "rate": args.rate,
        "frames": args.frames,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "rows": rows,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "camera_path.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "camera_path.md").write_text(markdown(report) + "\n")
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
