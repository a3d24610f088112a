"""Nodes started as their own processes (what `ros2 run` and `ros2 launch` do), stopped as a user
stops them, and a client in this process that talks to them over real ROS 2 (DDS on loopback,
see conftest.py)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def start(cmd: list[str], **kw) -> subprocess.Popen:
    """In a session of its own, as a terminal runs a command: `stop` can signal all of it."""
    return subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        **kw,
    )


def stop(
    proc: subprocess.Popen,
    timeout: float = 20.0,
    sig: int = signal.SIGINT,
    group: bool = False,
    again_every: float | None = None,
) -> str:
    """`sig` (SIGINT: Ctrl-C) to the process, or with `group` to its whole process group as a
    terminal's Ctrl-C does (ros2 launch and ros2 run and their nodes alike); with `again_every`
    seconds the signal repeats until it exits. Then the process's whole output."""

    def send() -> None:
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)

    if proc.poll() is None:
        send()
    end = time.monotonic() + timeout
    while again_every is not None and proc.poll() is None and time.monotonic() < end:
        time.sleep(again_every)
        send()
    try:
        out, _ = proc.communicate(timeout=max(0.1, end - time.monotonic()))
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
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

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.05)

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


def segment_one_frame(
    client: Client, node: str, proc: subprocess.Popen, rgb, image_topic: str | None = None
) -> object:
    """Publish `rgb` on `image_topic` (default `<node>/image`) once the node listens; the mask it
    sends back."""
    from sensor_msgs.msg import Image

    from lane_seg.ros.messages import header, image_msg

    masks = client.subscribe(Image, f"{node}/mask")
    pub = client.publisher(Image, image_topic or f"{node}/image")
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
