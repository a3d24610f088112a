"""Closed loop in the built-in simulator: the controller keeps the car in its lane from the
exact mask through lane geometry; metrics, video and plot files; scenario/controller configs;
`lane-seg sim` errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lane_seg.cli.main import main
from lane_seg.errors import LaneSegError
from lane_seg.lanes.control import ControllerConfig, LaneController, lateral_command
from lane_seg.lanes.tracker import LaneEstimate
from lane_seg.sim.loop.closed_loop import (
    GroundTruthPerception,
    odometry,
    run_scenario,
)
from lane_seg.sim.loop.metrics import FrameLog, aggregate, count_departures, drive_metrics
from lane_seg.sim.loop.scenarios import Scenario, standard_scenarios
from lane_seg.sim.world.vehicle import VehicleState

# Small frames keep the closed-loop tests quick; geometry scales with the intrinsics.
SMALL = {"height": 128, "width": 256, "vehicles": [0, 1]}


def small_scenario(name: str = "test_curves", **kw) -> Scenario:
    data = {
        "name": name,
        "seeds": [5],
        "distance_m": 160.0,
        "speed_mps": 16.0,
        "fps": 10,
        "sim": {**SMALL, "max_curvature": 1 / 70, "lanes": [1, 2], "night_probability": 0.0},
    }
    data.update(kw)
    return Scenario.from_dict(data, source="test")


@pytest.mark.parametrize("lateral", ["pure_pursuit", "stanley"])
def test_groundtruth_run_stays_in_lane(tmp_path, lateral):
    sc = small_scenario(seeds=[6])  # two marked lines, a 160 m radius bend
    ctrl = ControllerConfig(lateral=lateral)
    out = tmp_path / "out"  # not there yet: with or without a video, the run creates it
    report = run_scenario(sc, GroundTruthPerception(), ctrl, out, video=lateral == "stanley")
    world = report["worlds"][0]
    assert world["completed"], world["end_reason"]
    assert world["distance_m"] >= 160.0
    assert world["scene"]["max_abs_curvature"] > 1 / 200  # the road does bend
    assert world["lane_departures"] == 0
    assert world["max_abs_lateral_error_m"] < 0.2
    assert world["mean_abs_lateral_error_m"] < 0.1
    assert world["estimate_abs_error_m"] < 0.1  # lane geometry agrees with the simulator
    assert world["lost_fraction"] == 0.0
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["summary"]["lane_departures_per_km"] == 0.0
    assert (out / "test_curves_s6_topdown.png").stat().st_size > 10_000
    if lateral == "stanley":
        assert (out / "test_curves_s6.mp4").stat().st_size > 10_000


def test_groundtruth_run_with_an_unmarked_edge_stays_in_lane():
    """Seed 5: the lane's right edge has no paint; the left line plus the lane-width prior
    (3.5 m against a true 2.92 m) still keeps the car in its lane, with a known bias."""
    sc = small_scenario(seeds=[5])
    world = run_scenario(sc, GroundTruthPerception(), ControllerConfig(), None)["worlds"][0]
    assert world["scene"]["boundaries"][0] == "none"
    assert world["completed"] and world["lane_departures"] == 0
    assert world["max_abs_lateral_error_m"] < 0.5


def test_blind_driver_leaves_the_lane(tmp_path):
    """The metrics can fail: perception that sees nothing ends the drive early."""

    def blind(image, mask):
        return np.zeros_like(mask)

    sc = small_scenario(distance_m=120.0)
    report = run_scenario(sc, blind, ControllerConfig(stop_after_lost_s=1.0), None)
    world = report["worlds"][0]
    assert not world["completed"]
    assert world["lost_fraction"] == 1.0
    assert world["distance_m"] < 60.0


def test_departures_are_counted_once_per_excursion():
    e = np.array([0.0, 0.3, 0.7, 0.8, 0.65, 0.2, -0.7, -0.6, 0.0, 0.61])
    assert count_departures(e, 0.6) == 3


def test_latency_is_over_the_frames_that_have_one_and_counts_the_others():
    """Over ROS 2 a frame whose lane centre never came back has no latency (nan): the
    percentiles skip it and say how many there were (a 2-core run had 2 of 404, and its
    summary read p50 nan ms)."""
    from lane_seg.cli.demo import _loop_summary

    def frame(i: int, ms: float) -> FrameLog:
        return FrameLog(t=i / 20, s=i, distance=i, x=0.0, y=0.0, yaw=0.0, speed=10.0,
                        steer_cmd=0.0, steer_applied=0.0, lateral_error=0.0, est_offset=0.0,
                        confidence=1.0, lines_found=2, perception_ms=ms, geometry_ms=0.0,
                        mask_iou=math.nan)  # fmt: skip

    log = [frame(i, math.nan if i in (100, 300) else 40.0 + i % 5) for i in range(404)]
    m = drive_metrics(log, 3.5, 20.0)
    assert m["perception_latency_ms"] == {"p50": 42.0, "p95": 44.0, "missing": 2}
    total = aggregate([m | {"completed": True}, m | {"completed": True}])
    assert total["perception_latency_ms"] == {"p50": 42.0, "p95": 44.0, "missing": 4}
    m |= {"target_distance_m": 403.0, "completed": True, "end_reason": "distance"}
    m |= {"seg_node": {"inference_ms_p50": 30.0}, "command_timeouts": 0}
    line = _loop_summary(m)[2]
    assert line.startswith("seg node: camera -> lane centre over ROS 2 p50 42.0 ms / p95 44.0 ms")
    assert "(over the 402 frames with one; 2 of 404 had none)" in line and "nan" not in line


def test_odometry_in_previous_frame():
    a = VehicleState(10.0, 5.0, math.pi / 2, 10.0)
    b = VehicleState(10.0, 7.0, math.pi / 2 + 0.1, 10.0)
    dx, dy, dyaw = odometry(a, b)
    assert (dx, dy, dyaw) == (pytest.approx(2.0), pytest.approx(0.0, abs=1e-12), pytest.approx(0.1))


def test_controller_steers_towards_the_centre():
    est = LaneEstimate(np.array([0.5, 0.0, 0.0]), 3.5, 1.0, 2, False)  # centre 0.5 m left
    for lateral in ("pure_pursuit", "stanley"):
        assert lateral_command(est, 15.0, ControllerConfig(lateral=lateral)) > 0
    ctl = LaneController(ControllerConfig(cruise_speed_mps=20.0, stop_after_lost_s=0.5))
    curve = LaneEstimate(np.array([0.0, 0.0, 0.5 / 60]), 3.5, 1.0, 2, False)  # radius 60 m
    _, v = ctl.update(curve, 20.0, 0.1)
    assert v == pytest.approx(math.sqrt(2.5 * 60), rel=0.01)  # slows for the curve
    for _ in range(6):
        _, v = ctl.update(None, 10.0, 0.1)
    assert v == 0.0  # lost for longer than stop_after_lost_s


def test_config_files_load_and_bad_ones_say_why(tmp_path):
    assert {"gentle_highway", "tight_curves", "night", "rain"} <= set(standard_scenarios())
    for name in standard_scenarios():
        sc = Scenario.load(name)
        assert sc.seeds and sc.distance_m > 0
    assert Scenario.load("night").sim_config().night_probability == 1.0
    ControllerConfig.from_yaml(Scenario.load("rain").source.replace("scenarios/rain", "controller"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nseeds: [1]\ndistance_m: 10\nspeed_mps: 5\nsim: {fog: 1}\n")
    with pytest.raises(LaneSegError, match="unknown keys"):
        Scenario.load(bad)
    bad.write_text("name: x\nseeds: one\ndistance_m: 10\nspeed_mps: 5\n")
    with pytest.raises(LaneSegError, match="seeds"):
        Scenario.load(bad)
    bad.write_text("lateral: mpc\n")
    with pytest.raises(LaneSegError, match="lateral must be"):
        ControllerConfig.from_yaml(bad)
    bad.write_text("lookahead_min_m: far\n")
    with pytest.raises(LaneSegError, match="must be a number"):
        ControllerConfig.from_yaml(bad)


def test_cli_groundtruth_run_writes_everything(tmp_path, capsys):
    sc = tmp_path / "short.yaml"
    sc.write_text(
        "name: short\nseeds: [3]\ndistance_m: 60\nspeed_mps: 15\nfps: 10\n"
        "sim: {height: 128, width: 256, vehicles: [0, 0]}\n"
    )
    out = tmp_path / "out"
    assert main(["sim", "--scenario", str(sc), "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| short |" in table
    report = json.loads((out / "short" / "metrics.json").read_text())
    assert report["perception"] == "groundtruth"
    assert report["summary"]["distance_m"] >= 60
    assert (out / "short" / "short_s3.mp4").exists()
    assert (out / "summary.md").read_text().count("| short |") == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--perception", "fp32"], "needs --model"),  # int8: auto picks a shipped model
        (["--perception", "groundtruth", "--model", "m.onnx"], "--model is for"),
        (["--scenario", "no_such_road"], "not found"),
        (["--perception", "fp32", "--model", "missing.onnx"], "missing.onnx"),
    ],
)
def test_cli_errors(argv, message, capsys):
    assert main(["sim", *argv]) == 2
    assert message in capsys.readouterr().err


def test_cli_refuses_a_model_of_another_precision(tmp_path, capsys):
    pytest.importorskip("torch")
    from lane_seg.models.testing import write_tiny_onnx

    model = write_tiny_onnx(tmp_path / "fp32.onnx", kind="bright")
    assert main(["sim", "--perception", "int8", "--model", str(model)]) == 2
    assert "is a fp32 model" in capsys.readouterr().err


def test_model_perception_goes_through_the_engine(tmp_path):
    """fp32 perception: the frame goes through the shared Segmenter (preprocess, engine,
    postprocess); latency and mask IoU against the exact mask are recorded."""
    pytest.importorskip("torch")
    from lane_seg.cli.sim import load_perception
    from lane_seg.models.testing import write_tiny_onnx

    model = write_tiny_onnx(tmp_path / "bright.onnx", kind="bright")
    perception = load_perception("fp32", str(model), "onnxruntime-cpu", 1)
    sc = small_scenario(distance_m=30.0)
    report = run_scenario(sc, perception, ControllerConfig(), None)
    world = report["worlds"][0]
    assert report["precision"] == "fp32" and "onnxruntime" in report["engine"]
    assert world["segmentation_ms"]["p50"] > 0
    assert world["mask_iou_mean"] is not None and 0.0 <= world["mask_iou_mean"] <= 1.0


def test_actuation_delay_shifts_commands_by_whole_frames():
    from test_lane_geometry import synthetic_mask

    from lane_seg.camera import Camera
    from lane_seg.sim.loop.closed_loop import LaneKeepingDriver
    from lane_seg.sim.world.drive import DriveFrame
    from lane_seg.sim.world.vehicle import VehicleParams

    cam = Camera.from_fov(256, 128, 60.0, height_m=1.45, pitch_deg=2.5, x_m=1.6)
    mask = synthetic_mask(cam, offset=0.6)  # centre 0.6 m to the left: steer left
    ctrl = ControllerConfig(actuation_delay_s=0.3, steer_filter=1.0)
    driver = LaneKeepingDriver(lambda image, m: m, cam, 10.0, ctrl)
    state = VehicleState(0.0, 0.0, 0.0, 15.0, steer=0.01)
    out = [
        driver(DriveFrame(i, i * 0.1, mask, mask, state, 0.0), None, VehicleParams())
        for i in range(5)
    ]
    assert [c.steer for c in out[:3]] == [0.01, 0.01, 0.01]  # held until the first one arrives
    assert out[3].steer == pytest.approx(driver.log[0].steer_cmd) and out[3].steer > 0.01
    with pytest.raises(LaneSegError, match="actuation_delay_s"):
        ControllerConfig.from_dict({"actuation_delay_s": -1})


def test_a_drive_that_stops_ends_whichever_loop_runs_it():
    """The controller brakes to a stop once the lane is lost; a stopped car never covers its
    distance, so both loops end the drive after STOPPED_S standing still (the loop over ROS 2
    once ran forever on a model that never found the lane)."""
    from types import SimpleNamespace

    from lane_seg.sim.loop.metrics import STOPPED_S, DriveEnd

    ending = DriveEnd(lane_width_m=3.6, fps=10.0)

    def frame(speed: float, error: float = 0.0, command: object = "go") -> SimpleNamespace:
        return SimpleNamespace(command=command, state=SimpleNamespace(speed=speed),
                               lateral_error_m=error)  # fmt: skip

    assert ending.reason(frame(12.0)) is None
    reasons = [ending.reason(frame(0.0)) for _ in range(int(STOPPED_S * 10) + 1)]
    assert reasons[0] is None and reasons[-1] == "stopped (lane lost)"
    assert DriveEnd(3.6, 10.0).reason(frame(12.0, error=2.9)) == "left the lane"
    assert DriveEnd(3.6, 10.0).reason(frame(12.0, command=None)) == "end of road"
    rolling = DriveEnd(3.6, 10.0)
    assert all(rolling.reason(frame(0.0 if i % 10 else 5.0)) is None for i in range(100))
