"""The launch files, evaluated without launch_ros (launch_emulator.py): arguments, remappings and
parameter types, checked against the package's executables and rclpy's own name resolution;
then both nodes of lane_keeping.launch.py started as their own processes under a namespace."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from launch_emulator import launch

REPO = Path(__file__).resolve().parents[1]
SEG = REPO / "launch" / "seg.launch.py"
LANE_KEEPING = REPO / "launch" / "lane_keeping.launch.py"


def test_seg_launch_arguments_remappings_and_types():
    (seg,) = launch(SEG, REPO, model="123")  # a model path that looks like a number
    assert (seg.package, seg.executable, seg.name, seg.namespace) == (
        "lane_seg",
        "seg_node",
        "seg_node",
        "",
    )
    assert dict(seg.remappings) == {
        "~/image": "/camera/image_raw",
        "~/image/compressed": "/camera/image_raw",
        "~/camera_info": "/camera/camera_info",
    }
    params_file, typed = seg.parameters  # later entries win: the arguments override the file
    assert Path(params_file) == REPO / "config" / "seg.yaml"
    assert typed == {"model": "123", "engine": "auto", "input_transport": "raw"}  # all text


@pytest.mark.parametrize(
    ("executable", "bad_parameter", "error"),
    [
        ("seg_node", "model:=/nonexistent.onnx", "model file not found"),
        ("lane_controller", "lateral:=mpc", "lateral must be one of pure_pursuit, stanley"),
    ],
)
def test_launched_executables_are_installed_and_check_their_parameters(
    executable, bad_parameter, error
):
    """Each executable the launch files name is installed, and is the node they mean: a bad
    parameter stops it at start-up with one line."""
    assert executable in {n.executable for n in launch(LANE_KEEPING, REPO)}
    exe = Path(sys.executable).parent / executable
    r = subprocess.run(
        [str(exe), "--ros-args", "-p", bad_parameter], capture_output=True, text=True, timeout=60
    )
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert lines[0].startswith(f"{executable}: error: ") and error in lines[0]


def test_lane_keeping_wires_the_controller_to_the_segmentation_node(tmp_path):
    """Resolved by rclpy from the launch file's own remappings and namespace."""
    rclpy = pytest.importorskip("rclpy")
    nodes = {n.name: n for n in launch(LANE_KEEPING, REPO, namespace="front")}
    assert set(nodes) == {"seg_node", "lane_controller"}
    assert Path(nodes["lane_controller"].parameters[0]) == REPO / "config" / "controller.yaml"
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    try:
        seg, ctrl = (
            rclpy.create_node("x", context=ctx, cli_args=nodes[n].ros_args(tmp_path))
            for n in ("seg_node", "lane_controller")
        )
        assert ctrl.get_fully_qualified_name() == "/front/lane_controller"
        assert ctrl.resolve_topic_name("~/lane_center") == seg.resolve_topic_name("~/lane_center")
        assert seg.resolve_topic_name("~/lane_center") == "/front/seg_node/lane_center"
        assert ctrl.resolve_topic_name("~/cmd_vel") == "/front/cmd_vel"
        assert seg.resolve_topic_name("~/image") == "/camera/image_raw"  # absolute by default
    finally:
        rclpy.shutdown(context=ctx)


@pytest.mark.ros
def test_lane_keeping_nodes_run_as_processes_under_a_namespace(tmp_path):
    """Camera frames on /front/camera/... -> seg_node -> lane_controller -> /front/cmd_vel,
    each node its own process started as launch_ros would start it."""
    pytest.importorskip("rclpy")
    import node_process as np_
    from geometry_msgs.msg import TwistStamped
    from sensor_msgs.msg import CameraInfo, Image

    from lane_seg.camera import Camera
    from lane_seg.models.testing import write_tiny_onnx
    from lane_seg.ros.messages import camera_info_msg, header, image_msg
    from lane_seg.sim.world.collect import render_frame
    from lane_seg.sim.world.scene import SimConfig

    model = write_tiny_onnx(tmp_path / "bright.onnx", "bright")
    args = {"model": str(model), "engine": "onnxruntime-cpu", "namespace": "front"}
    args |= {"image_topic": "camera/image_raw", "camera_info_topic": "camera/camera_info"}
    bindir = Path(sys.executable).parent
    procs = {
        n.name: np_.start([str(bindir / n.executable), *n.ros_args(tmp_path)])
        for n in launch(LANE_KEEPING, REPO, **args)
    }
    rgb, _, meta = render_frame(0, 2, SimConfig())
    hdr = header(77.5, "camera_optical")
    try:
        with np_.Client() as client:
            cmds = client.subscribe(TwistStamped, "/front/cmd_vel")
            image = client.publisher(Image, "/front/camera/image_raw")
            info = client.publisher(CameraInfo, "/front/camera/camera_info")
            client.spin_until(
                lambda: (
                    image.get_subscription_count()
                    and client.node.count_publishers("/front/cmd_vel")
                ),
                "both nodes on the ROS graph",
                proc=procs["seg_node"],
            )
            for _ in range(20):  # again until a command comes back (discovery may lag)
                info.publish(camera_info_msg(Camera(**meta["camera"]), hdr))
                image.publish(image_msg(rgb, "rgb8", hdr))
                try:
                    client.spin_until(lambda: cmds, "a command", timeout=1.5)
                    break
                except AssertionError:
                    continue
            assert cmds, "no command on /front/cmd_vel"
    finally:
        logs = {name: np_.stop(p) for name, p in procs.items()}
    assert cmds[0].header.stamp == hdr.stamp  # the command answers this very frame
    assert cmds[0].twist.linear.x > 0
    assert all(p.returncode == 0 for p in procs.values()), logs
    assert "/front/seg_node/lane_center -> /front/cmd_vel" in logs["lane_controller"]
