"""config/seg.yaml and `lane-seg node` agree with the node itself (launch files: test_launch.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lane_seg.cli.main import build_parser
from lane_seg.cli.node import ros_arguments

REPO = Path(__file__).resolve().parents[1]


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def test_params_file_is_accepted_by_the_node(tmp_path):
    pytest.importorskip("rclpy")
    import rclpy
    from rclpy.parameter import Parameter

    from lane_seg.models.testing import write_tiny_onnx
    from lane_seg.ros.seg_node import SegNode

    model = write_tiny_onnx(tmp_path / "m.onnx")
    params = _flatten(
        yaml.safe_load((REPO / "config/seg.yaml").read_text())["/**"]["ros__parameters"]
    )
    edited = tmp_path / "seg.yaml"  # same file, engine pinned so the test does not time engines
    doc = yaml.safe_load((REPO / "config/seg.yaml").read_text())
    doc["/**"]["ros__parameters"]["engine"] = "onnxruntime-cpu"
    edited.write_text(yaml.safe_dump(doc))
    ctx = rclpy.Context()
    rclpy.init(context=ctx, args=["--ros-args", "--params-file", str(edited)])
    try:
        node = SegNode(context=ctx, parameter_overrides=[Parameter("model", value=str(model))])
        try:
            for name, value in params.items():
                got = node.get_parameter(name).value
                want = "onnxruntime-cpu" if name == "engine" else value
                assert got == want, name
                assert node.describe_parameter(name).description, f"{name} has no description"
        finally:
            node.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)


def test_node_cli_builds_ros_arguments():
    args = build_parser().parse_args(
        ["node", "--model", "m.onnx", "--image-topic", "/cam/image_raw", "--transport",
         "compressed", "--params-file", "p.yaml", "--namespace", "/front", "--", "-p",
         "threshold:=0.4"]
    )  # fmt: skip
    argv = ros_arguments(args)
    assert argv[:4] == ["lane-seg-node", "--ros-args", "--params-file", "p.yaml"]
    joined = " ".join(argv)
    assert "-p model:=m.onnx" in joined and "-p input_transport:=compressed" in joined
    assert "-r ~/image/compressed:=/cam/image_raw" in joined and "-r __ns:=/front" in joined
    assert argv[-3:] == ["--ros-args", "-p", "threshold:=0.4"]


def test_lane_seg_node_with_missing_model_is_one_line(tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "lane-seg")
    r = subprocess.run(
        [exe, "node", "--model", str(tmp_path / "none.onnx")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"seg_node: error: model file not found: {tmp_path / 'none.onnx'}; pass the path of an "
        ".onnx or .pt model"
    ]


@pytest.mark.ros
def test_lane_seg_node_subprocess_segments_a_remapped_camera_topic(tmp_path):
    """`lane-seg node` as its own process: remapped input topic, namespace, a mask comes back
    with the frame's header; SIGINT stops it cleanly."""
    pytest.importorskip("rclpy")
    import signal
    import time

    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from lane_seg.models.testing import stripes_rgb, write_tiny_onnx
    from lane_seg.ros.image_codec import mask_array
    from lane_seg.ros.messages import header, image_msg

    model = write_tiny_onnx(tmp_path / "bright.onnx", "bright")
    exe = os.path.join(os.path.dirname(sys.executable), "lane-seg")
    proc = subprocess.Popen(
        [exe, "node", "--model", str(model), "--engine", "onnxruntime-cpu", "--image-topic",
         "/test_cam/image_raw", "--namespace", "/front", "--", "-p",
         "qos_overrides./test_cam/image_raw.subscription.reliability:=reliable"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node("cli_test_client", context=ctx)
    got = []
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    node.create_subscription(Image, "/front/seg_node/mask", got.append, qos)
    pub = node.create_publisher(Image, "/test_cam/image_raw", qos)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    try:
        end = time.monotonic() + 30
        while not (pub.get_subscription_count() and node.count_publishers("/front/seg_node/mask")):
            assert time.monotonic() < end and proc.poll() is None, proc.stdout.read()
            ex.spin_once(timeout_sec=0.05)
        rgb = stripes_rgb(60, 100)
        msg = image_msg(rgb, "bgr8", header(77.25, "cam_front"))
        pub.publish(msg)
        while not got:
            assert time.monotonic() < end, "no mask from the lane-seg node process"
            ex.spin_once(timeout_sec=0.05)
        assert got[0].header == msg.header and (got[0].height, got[0].width) == (60, 100)
        assert ((mask_array(got[0]) == 255) == (rgb.mean(axis=2) > 127.5)).mean() > 0.9
    finally:
        ex.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=ctx)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert "listening on /test_cam/image_raw" in out


def test_node_cli_without_a_model_leaves_it_to_the_node():
    argv = ros_arguments(build_parser().parse_args(["node", "--image-topic", "/cam"]))
    assert not any(a.startswith("model:=") for a in argv)  # the node takes the shipped model
    assert "engine:=auto" in argv
