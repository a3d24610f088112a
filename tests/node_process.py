"""Nodes started as their own processes (what `ros2 run` does), and a client in this process that
talks to them over real ROS 2 (DDS on loopback, see conftest.py)."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Callable

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def start(cmd: list[str], **kw) -> subprocess.Popen:
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def stop(proc: subprocess.Popen, timeout: float = 20.0) -> str:
    """SIGINT (Ctrl-C), then the process's whole output; it must have exited by then."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


class Client:
    """A node of our own in a private rclpy Context: publishers, subscriptions, waiting."""

    def __init__(self, name: str = "test_client") -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def publisher(self, msg_type, topic: str):
        return self.node.create_publisher(msg_type, topic, RELIABLE)

    def subscribe(self, msg_type, topic: str) -> list:
        got: list = []
        self.node.create_subscription(msg_type, topic, got.append, RELIABLE)
        return got

    def spin_until(
        self,
        cond: Callable[[], bool],
        what: str,
        timeout: float = 30.0,
        proc: subprocess.Popen | None = None,
    ) -> None:
        end = time.monotonic() + timeout
        while not cond():
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"the node exited while waiting for {what}: {stop(proc)}")
            if time.monotonic() > end:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            self.executor.spin_once(timeout_sec=0.05)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def segment_one_frame(client: Client, node: str, proc: subprocess.Popen, rgb) -> object:
    """Publish `rgb` on `<node>/image` once the node listens; the mask it sends back."""
    from sensor_msgs.msg import Image

    from lane_seg.ros.messages import header, image_msg

    masks = client.subscribe(Image, f"{node}/mask")
    pub = client.publisher(Image, f"{node}/image")
    client.spin_until(
        lambda: pub.get_subscription_count() and client.node.count_publishers(f"{node}/mask"),
        f"{node} on the ROS graph",
        proc=proc,
    )
    msg = image_msg(rgb, "rgb8", header(12.5, "cam"))
    for _ in range(20):  # again until one comes back: discovery may lag on the node's side
        pub.publish(msg)
        with contextlib.suppress(AssertionError):
            client.spin_until(lambda: masks, f"a mask from {node}", timeout=1.5, proc=proc)
            break
    client.spin_until(lambda: masks, f"a mask from {node}", timeout=1.0, proc=proc)
    assert masks[0].header == msg.header and (masks[0].height, masks[0].width) == rgb.shape[:2]
    return masks[0]
