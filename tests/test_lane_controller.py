"""The lane controller node over real ROS 2: private topics under a namespace, a command per
lane-centre path, its parameters (the controller's settings) described, ranged, validated
as a whole and applied at run time; config/controller.yaml is a parameter file it accepts."""

from __future__ import annotations

import dataclasses
import pathlib

import pytest

rclpy = pytest.importorskip("rclpy")

from geometry_msgs.msg import TwistStamped  # noqa: E402
from nav_msgs.msg import Path  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from lane_seg.lanes.control import ControllerConfig  # noqa: E402
from lane_seg.ros.lane_controller import LaneControllerNode  # noqa: E402
from lane_seg.ros.messages import header, path_msg  # noqa: E402
from lane_seg.settings import describe  # noqa: E402

pytestmark = pytest.mark.ros
REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture
def ros():
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    yield ctx
    rclpy.shutdown(context=ctx)


def test_shipped_params_file_sets_every_setting_with_its_description(ros):
    params = ["--ros-args", "--params-file", str(REPO / "config" / "controller.yaml")]
    node = LaneControllerNode(context=ros, cli_args=params)
    try:
        assert node.cfg == ControllerConfig()  # the file holds the defaults, typed right
        for name, s in describe(ControllerConfig).items():
            d = node.describe_parameter(name)
            assert d.description == s["help"], name
            if s["range"]:
                r = d.floating_point_range[0]
                assert (r.from_value, r.to_value) == s["range"], name
    finally:
        node.destroy_node()


def test_commands_follow_the_lane_centre_and_parameters_change_at_run_time(ros):
    node = LaneControllerNode(context=ros, cli_args=["--ros-args", "-r", "__ns:=/car"])
    client = rclpy.create_node("client", context=ros)
    ex = SingleThreadedExecutor(context=ros)
    ex.add_node(node)
    ex.add_node(client)
    got: list[TwistStamped] = []
    client.create_subscription(TwistStamped, "/car/lane_controller/cmd_vel", got.append, 10)
    pub = client.create_publisher(Path, "/car/lane_controller/lane_center", 10)

    def command(stamp: float, offset: float) -> TwistStamped:
        points = [(float(x), offset) for x in range(31)]  # centre `offset` m to the left
        n = len(got)
        for _ in range(400):
            if len(got) > n:
                break
            if _ % 20 == 0:
                pub.publish(path_msg(header(stamp).stamp, "base_link", points))
            ex.spin_once(timeout_sec=0.01)
        assert len(got) > n, "no command"
        return got[-1]

    try:
        left = command(1.0, 0.5)
        assert left.header.stamp.sec == 1 and left.twist.angular.z > 0  # turn left, to it
        assert left.twist.linear.x == pytest.approx(ControllerConfig().cruise_speed_mps)
        bad = node.set_parameters([Parameter("lateral", value="mpc")])[0]
        assert not bad.successful and "lateral must be one of" in bad.reason
        assert not node.set_parameters([Parameter("steer_filter", value=2.0)])[0].successful
        assert node.cfg == ControllerConfig()  # nothing applied from refused changes
        ok = node.set_parameters(
            [Parameter("lateral", value="stanley"), Parameter("cruise_speed_mps", value=10.0)]
        )
        assert all(r.successful for r in ok)
        want = dataclasses.replace(ControllerConfig(), lateral="stanley", cruise_speed_mps=10.0)
        assert node.cfg == node.controller.cfg == want
        slower = command(1.1, 0.5)
        assert slower.twist.linear.x < left.twist.linear.x  # heading for the new cruise speed
    finally:
        ex.shutdown()
        client.destroy_node()
        node.destroy_node()
