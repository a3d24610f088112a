"""Node benchmark: publish -> mask latency and throughput over real ROS 2, beside bare engine time.

The node runs as its own process (`seg_node`, exactly what `ros2 run` starts); this process
publishes camera frames and receives the masks. Measured in one run, for each resolution:

- engine_ms: the bare `engine.infer` on a preprocessed batch (what the model costs),
- segment_ms: preprocess + infer + postprocess in-process (what the node does per frame),
- latency p50/p99 from publish to mask received, frames published at a steady rate below
  the node's capacity (the stamp carries the publish time; one clock, one host),
- throughput: masks per second received while publishing as fast as this process can,
  with the latency under that load.

The difference between latency and segment_ms is the node's overhead: DDS transport both ways,
message conversion, and scheduling.

The lane step (`lane_seg.lanes`, on by default in the node) is measured in the same run: a second
node with `lanes:=true` beside the first with `lanes:=false`, both measured the same way one
after the other at each size; the step itself timed in this process as the node times it
(`Segmenter.last.lanes_ms`, right after inference), and as the node reports it (`lanes_ms_p50`
in its /diagnostics). A shared machine's load is reported; only figures of one run compare.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from lane_seg.data.frames import timing_frames
from lane_seg.models.testing import stripes_rgb
from lane_seg.preprocess import to_input
from lane_seg.runtime.engines import load_engine, time_engine
from lane_seg.runtime.hwinfo import CpuInfo
from lane_seg.runtime.segmenter import Segmenter
from lane_seg.runtime.timing import percentile, time_calls


def bench_frames(height: int, width: int, real_dir: Path | None) -> list[np.ndarray]:
    """Real road frames resized to (height, width) when available, else a synthetic frame."""
    frames = timing_frames(real_dir, (height, width), 10)
    return frames or [stripes_rgb(height, width, seed=i) for i in range(4)]


def bench_frames_are_real(real_dir: Path | None) -> bool:
    return bool(
        real_dir
        and real_dir.is_dir()
        and any(p.suffix.lower() in (".jpg", ".png") for p in real_dir.iterdir())
    )


@dataclass
class SizeResult:
    height: int
    width: int
    engine_ms_p50: float
    segment_ms_p50: float
    latency_ms_p50: float
    latency_ms_p99: float
    latency_frames: int  # masks received of n_latency published at the steady rate
    published_steady: int
    throughput_fps: float
    loaded_latency_ms_p50: float
    published_under_load: int
    node_dropped: int  # frames the node replaced by a newer one during the overload
    # The node with its lane step (lanes:=true), measured right after the node without it.
    lane_step_ms_p50: float = float("nan")  # Segmenter.segment_lanes' lanes_ms, in process
    lane_step_cpu_ms_p50: float = float("nan")  # ... its CPU time
    lanes_node_lane_step_ms_p50: float = float("nan")  # as that node reports it, steady rate
    lanes_latency_ms_p50: float = float("nan")
    lanes_latency_ms_p99: float = float("nan")
    lanes_throughput_fps: float = float("nan")


def offline_times(
    seg: Segmenter, frames: list[np.ndarray], runs: int
) -> tuple[float, float, float, float]:
    """(engine_ms p50, segment_ms p50, lane step ms p50 and its CPU ms p50) for these frames, in
    this process; the lane step timed as the node times it (`Segmenter.last.lanes_ms`), right
    after inference. CPU time leaves out what other processes took from this thread's core."""
    inputs = [to_input(f, seg.info.preprocess) for f in frames]
    engine = time_calls(seg.engine.infer, inputs, runs, warmup=3)
    full = time_calls(seg.segment, frames, runs, warmup=3)
    step, cpu = [], []
    for _ in range(runs):
        for f in frames:
            seg.segment_lanes(f)
            step.append(seg.last.lanes_ms)
            cpu.append(seg.last.lanes_cpu_ms)
    return percentile(engine, 50), percentile(full, 50), percentile(step, 50), percentile(cpu, 50)


class _Client:
    """Publishes frames to the node and timestamps the masks coming back."""

    def __init__(self, node_ns: str) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image

        self._rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        client = f"lane_seg_bench_client_{node_ns.strip('/')}"  # one per node measured
        self.node = rclpy.create_node(client, context=self.context)
        qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE
        )
        self.pub = self.node.create_publisher(Image, f"{node_ns}/image", qos)
        self.node.create_subscription(Image, f"{node_ns}/mask", self._on_mask, qos)
        from diagnostic_msgs.msg import DiagnosticArray

        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)
        self.diag: dict[str, str] = {}
        self._node_name = node_ns
        self._lock = threading.Lock()
        self.received: list[tuple[float, float]] = []  # (receive time, publish stamp)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()
        self.mask_topic = f"{node_ns}/mask"

    def _on_mask(self, msg) -> None:
        now = time.time()
        with self._lock:
            self.received.append((now, msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9))

    def _on_diag(self, msg) -> None:
        for status in msg.status:
            if status.name.startswith(f"{self._node_name}:"):
                self.diag = {kv.key: kv.value for kv in status.values}

    def dropped(self) -> int:
        return int(self.diag.get("dropped", "0"))

    def lanes_ms(self) -> float:
        return float(self.diag.get("lanes_ms_p50", "nan"))

    def wait_connected(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.pub.get_subscription_count() and self.node.count_publishers(self.mask_topic):
                return
            time.sleep(0.05)
        raise TimeoutError("the node did not appear on the ROS graph")

    def take(self) -> list[tuple[float, float]]:
        with self._lock:
            out, self.received = self.received, []
        return out

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        if self.context.ok():
            self._rclpy.shutdown(context=self.context)
        self._thread.join(timeout=5.0)


def _messages(frames: list[np.ndarray]):
    from lane_seg.ros.messages import image_msg

    return [image_msg(f, "bgr8") for f in frames]


def _stamp(msg, t: float) -> None:
    msg.header.stamp.sec = int(t)
    msg.header.stamp.nanosec = int((t - int(t)) * 1e9)


def measure_size(
    client: _Client, frames: list[np.ndarray], n_latency: int, rate_hz: float, load_s: float
) -> tuple[list[float], float, list[float], int, float]:
    """Publish -> mask latencies at a steady rate, throughput and latencies under overload,
    frames published under overload, and the node's lane step p50 over the steady frames."""
    msgs = _messages(frames)
    # warm-up: the node's first frames at a new size allocate buffers
    for i in range(5):
        _stamp(msgs[i % len(msgs)], time.time())
        client.pub.publish(msgs[i % len(msgs)])
        time.sleep(0.1)
    end = time.monotonic() + 10.0
    while len(client.received) < 5 and time.monotonic() < end:
        time.sleep(0.05)
    time.sleep(0.5)
    client.take()
    # steady rate: latency without queueing anywhere
    steady_t0 = time.time()
    period = 1.0 / rate_hz
    t_next = time.monotonic()
    for i in range(n_latency):
        msg = msgs[i % len(msgs)]
        _stamp(msg, time.time())
        client.pub.publish(msg)
        t_next += period
        time.sleep(max(0.0, t_next - time.monotonic()))
    time.sleep(max(1.2, 3 * period))  # and one /diagnostics period
    steady = [(r - s) * 1e3 for r, s in client.take() if s >= steady_t0]
    steady_lanes_ms = client.lanes_ms()  # the node's account, over the steady frames
    # overload: publish as fast as possible; the node keeps only the newest frame
    t0 = time.time()
    sent = 0
    while time.time() - t0 < load_s:
        msg = msgs[sent % len(msgs)]
        _stamp(msg, time.time())
        client.pub.publish(msg)
        sent += 1
        time.sleep(0.001)
    t1 = time.time()
    time.sleep(1.0)
    # masks received inside the window, of frames published inside it
    loaded = [(r - s) * 1e3 for r, s in client.take() if t0 <= s and r <= t1]
    fps = len(loaded) / (t1 - t0)
    return steady, fps, loaded, sent, steady_lanes_ms


def start_node(
    model: str,
    engine: str,
    threads: int,
    name: str,
    input_qos: str = "reliable",
    lanes: bool = True,
) -> subprocess.Popen:
    from lane_seg.ros.params import qos_override

    exe = Path(sys.executable).with_name("seg_node")
    cmd = [str(exe) if exe.exists() else "seg_node", "--ros-args", "-p", f"model:={model}"]
    cmd += ["-p", f"engine:={engine}", "-p", f"threads:={threads}", "-r", f"__node:={name}"]
    cmd += ["-p", f"lanes:={str(lanes).lower()}"]
    cmd += ["-p", f"{qos_override(f'/{name}/image')}:={input_qos}"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def run_node_bench(
    model: str,
    engine: str = "onnxruntime-cpu",
    threads: int = 0,
    sizes: tuple[tuple[int, int], ...] = ((256, 512), (720, 1280)),
    n_latency: int = 200,
    rate_hz: float = 10.0,
    load_s: float = 5.0,
    real_dir: Path | None = None,
    input_qos: str = "reliable",
    hardware: str | None = None,
) -> dict:
    """`hardware`: the run's hardware line (default this CPU's; an --isa run's says so)."""
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    seg = Segmenter(load_engine(model, engine, threads))
    engine_desc = seg.engine.describe()
    model_ms = float(np.median(time_engine(seg.engine, runs=30, warmup=5)))
    node_engine = seg.engine.name  # what `auto` picked, so both sides run the same engine
    names = {
        lanes: f"seg_bench_{os.getpid()}_{'lanes' if lanes else 'mask'}" for lanes in (False, True)
    }
    procs = {
        lanes: start_node(model, node_engine, threads, name, input_qos, lanes)
        for lanes, name in names.items()
    }
    clients: dict[bool, _Client] = {}
    results = []
    try:
        for lanes, name in names.items():
            clients[lanes] = _Client(f"/{name}")
            clients[lanes].wait_connected(30.0)
        for size in sizes:
            frames = bench_frames(*size, real_dir)
            # bare times right before the nodes' turn (they idle meanwhile), so all see the
            # same machine load
            engine_ms, segment_ms, lane_step_ms, lane_step_cpu_ms = offline_times(seg, frames, 30)
            measured = {}
            for lanes, client in clients.items():  # without the lane step, then with it
                dropped0 = client.dropped()
                measured[lanes] = measure_size(client, frames, n_latency, rate_hz, load_s)
                time.sleep(1.2)  # one more /diagnostics period
                measured[lanes] += (client.dropped() - dropped0,)
            steady, fps, loaded, sent, _, dropped = measured[False]
            l_steady, l_fps, _, _, l_step, _ = measured[True]
            results.append(
                SizeResult(
                    height=size[0],
                    width=size[1],
                    engine_ms_p50=engine_ms,
                    segment_ms_p50=segment_ms,
                    latency_ms_p50=percentile(steady, 50),
                    latency_ms_p99=percentile(steady, 99),
                    latency_frames=len(steady),
                    published_steady=n_latency,
                    throughput_fps=fps,
                    loaded_latency_ms_p50=percentile(loaded, 50),
                    published_under_load=sent,
                    node_dropped=dropped,
                    lane_step_ms_p50=lane_step_ms,
                    lane_step_cpu_ms_p50=lane_step_cpu_ms,
                    lanes_node_lane_step_ms_p50=l_step,
                    lanes_latency_ms_p50=percentile(l_steady, 50),
                    lanes_latency_ms_p99=percentile(l_steady, 99),
                    lanes_throughput_fps=l_fps,
                )
            )
    finally:
        for client in clients.values():
            client.close()
        logs = []
        for proc in procs.values():
            proc.send_signal(signal.SIGINT)
            try:
                log, _ = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                log, _ = proc.communicate()
            logs += log.strip().splitlines()[-5:]
    return {
        "cpu": hardware or CpuInfo.detect().line(),
        "model": str(model),
        "engine": engine_desc,
        "model_ms_p50_random_input": model_ms,
        "rate_hz": rate_hz,
        "input_qos": input_qos,
        "dds": dds_transport(),
        "load_average": os.getloadavg(),
        "load_s": load_s,
        "frames": "real" if bench_frames_are_real(real_dir) else "synthetic",
        "sizes": [asdict(r) for r in results],
        "node_log": logs,
    }


def dds_transport() -> str:
    """Which Fast DDS transports the camera side and the node ran on: a raw 1280x720 frame
    (2.7 MB) outgrows the default 0.5 MB shared-memory segment and goes over UDP in fragments,
    which dominates its latency (README.md, "Camera input")."""
    profile = os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE")
    if profile:
        return f"Fast DDS profile {Path(profile).name} in both processes"
    return "Fast DDS default transports (0.5 MB shared-memory segments, else UDP loopback)"


def markdown(report: dict) -> str:
    lines = [
        f"CPU: {report['cpu']}; engine {report['engine']}; "
        f"model {report['model']}; frames: {report['frames']}; node input QoS "
        f"{report['input_qos']}; DDS {report.get('dds', 'not recorded')}; "
        f"load average {report['load_average'][0]:.2f}",
        "",
        "| frame | engine ms p50 | pre+infer+post ms p50 | publish->mask ms p50 | p99 | "
        "delivered at steady rate | "
        "throughput fps | latency under overload ms p50 | published / dropped under overload |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["sizes"]:
        lines.append(
            f"| {r['width']}x{r['height']} | {r['engine_ms_p50']:.2f} | {r['segment_ms_p50']:.2f}"
            f" | {r['latency_ms_p50']:.2f} | {r['latency_ms_p99']:.2f} | "
            f"{r['latency_frames']}/{r['published_steady']} | "
            f"{r['throughput_fps']:.1f} | {r['loaded_latency_ms_p50']:.2f} | "
            f"{r['published_under_load']} / {r['node_dropped']} |"
        )
    lines += [
        "",
        "The lane step (lane_seg.lanes) in the same run: a node with lanes:=true measured right "
        "after the one above (lanes:=false) on the same frames.",
        "",
        "| frame | lane step ms p50, in process | its CPU ms p50 | node-reported at the steady "
        "rate | publish->mask ms p50 without / with | throughput fps without / with |",
        "|---|---|---|---|---|---|",
    ]
    for r in report["sizes"]:
        lines.append(
            f"| {r['width']}x{r['height']} | {r['lane_step_ms_p50']:.2f} | "
            f"{r['lane_step_cpu_ms_p50']:.2f} | {r['lanes_node_lane_step_ms_p50']:.2f} | "
            f"{r['latency_ms_p50']:.2f} / {r['lanes_latency_ms_p50']:.2f} | "
            f"{r['throughput_fps']:.1f} / {r['lanes_throughput_fps']:.1f} |"
        )
    return "\n".join(lines)
