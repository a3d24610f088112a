"""The closed loop over real ROS 2 (rclpy, DDS on loopback): simulator bridge -> segmentation
node (lane centre through lane geometry) -> controller node -> simulator."""

from __future__ import annotations

import pytest

pytest.importorskip("rclpy")
pytest.importorskip("torch")  # the tiny test model is exported from torch

from lane_seg.lanes.control import ControllerConfig  # noqa: E402
from lane_seg.lanes.geometry import center_points  # noqa: E402
from lane_seg.models.testing import write_tiny_onnx  # noqa: E402
from lane_seg.sim.loop.scenarios import Scenario  # noqa: E402

pytestmark = pytest.mark.ros

# A plain day road with two solid white lines (seed 2): the "bright" test model (logit > 0
# where a pixel is brighter than half scale) finds its markings, so the real node, engine and
# preprocessing run without a trained model.
SCENARIO = {
    "name": "ros_loop",
    "seeds": [2],
    "distance_m": 50.0,
    "speed_mps": 12.0,
    "fps": 10,
    "start_offset_m": 0.5,  # the controller has to bring the car back to the centre
    "sim": {
        "height": 128,
        "width": 256,
        "lanes": [1, 2],
        "max_curvature": 0.01,
        "vehicles": [0, 0],
        "barrier_probability": 0.0,
        "concrete_probability": 0.0,
        "night_probability": 0.0,
        "dusk_probability": 0.0,
        "rain_probability": 0.0,
        "fog_probability": 0.0,
        "glare_probability": 0.0,
        "hood_probability": 0.0,
        "shadow_probability": 0.0,
        "pole_probability": 0.0,
    },
}


def test_ros_loop_keeps_the_car_in_its_lane(tmp_path):
    from lane_seg.sim.loop.ros_loop import run_ros_loop

    model = write_tiny_onnx(tmp_path / "bright.onnx", kind="bright")
    sc = Scenario.from_dict(SCENARIO, source="test")
    m = run_ros_loop(sc, 2, model, ControllerConfig(), engine="onnxruntime-cpu", threads=1)
    assert m["completed"], m["end_reason"]
    assert m["distance_m"] >= 50.0
    assert m["command_timeouts"] == 0  # every frame's command came back over /cmd_vel
    assert m["lost_fraction"] < 0.1  # lane-centre paths arrived, non-empty
    assert m["max_abs_lateral_error_m"] < 0.7  # never near the line (lane 2.8+ m, car 1.8 m)
    assert m["final_abs_lateral_error_m"] < 0.15  # back at the centre
    assert m["estimate_abs_error_m"] < 0.15
    assert m["seg_node"]["processed"] >= m["frames"]
    assert m["perception_latency_ms"]["p50"] > 0  # image out -> lane centre back, end to end


def test_path_round_trip():
    """Centre points -> nav_msgs/Path (what the node publishes) -> the controller's estimate."""
    import numpy as np
    from nav_msgs.msg import Path

    from lane_seg.ros.messages import header, path_msg, path_to_estimate

    assert path_to_estimate(Path()) is None  # an empty path means the lane is lost
    c = np.array([0.3, -0.02, 0.004])
    msg = path_msg(header(5.0).stamp, "base_link", center_points(c, 30.0, 1.0))
    assert msg.header.frame_id == "base_link" and msg.header.stamp.sec == 5
    np.testing.assert_allclose(path_to_estimate(msg).center, c, atol=1e-9)


def test_lane_center_hook_waits_for_a_camera():
    import numpy as np
    from test_lane_geometry import synthetic_mask

    from lane_seg.camera import Camera
    from lane_seg.lanes.extract import extract_lanes
    from lane_seg.ros.lane_center import LaneCenterHook

    cam = Camera.from_fov(256, 128, 60.0, height_m=1.45, pitch_deg=2.5, x_m=1.6)
    mask = synthetic_mask(cam, offset=0.2)
    hook = LaneCenterHook()
    lanes = extract_lanes(mask, camera=cam)
    assert hook(lanes) is None  # no camera model yet: nothing to publish
    hook.set_camera(cam)
    pts = hook(lanes)
    assert pts is not None and pts[0][0] == 0.0
    assert np.interp(1.6, [p[0] for p in pts], [p[1] for p in pts]) == pytest.approx(0.2, abs=0.08)
