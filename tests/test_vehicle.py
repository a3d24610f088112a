import math

import numpy as np
import pytest

from lane_seg.sim.world.drive import build_world, drive, nominal_camera
from lane_seg.sim.world.scene import SimConfig
from lane_seg.sim.world.vehicle import VehicleParams, VehicleState, step


def test_constant_steering_drives_a_circle_of_the_bicycle_radius():
    p = VehicleParams(max_steer_rate=10.0)
    steer = math.radians(5.0)
    state = VehicleState(0.0, 0.0, 0.0, 10.0, steer)
    radius = p.wheelbase_m / math.tan(steer)
    for _ in range(500):
        state = step(state, steer, 0.0, 0.02, p)
        # The rear axle stays on the circle centred at (0, R).
        assert math.hypot(state.x, state.y - radius) == pytest.approx(radius, rel=1e-9)


def test_steering_is_rate_limited():
    p = VehicleParams()
    s = step(VehicleState(0, 0, 0, 10.0), 1.0, 0.0, 0.1, p)
    assert s.steer == pytest.approx(p.max_steer_rate * 0.1)


def test_groundtruth_driver_keeps_lane_on_curvy_road():
    cfg = SimConfig(max_curvature=1 / 60, vehicles=(0, 0))
    scene = build_world(11, cfg, length_m=400)
    errors = [
        abs(f.lateral_error_m)
        for f in drive(scene, nominal_camera(cfg), 12.0, fps=10, speed_mps=18.0)
    ]
    assert len(errors) >= 100
    assert np.max(errors) < 0.5 * scene.lane_width - 0.9  # the car body stays in its lane
