"""`model=auto` (lane_seg.runtime.model_pick): the rule on fake timings, never on timed ones."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from lane_seg.errors import LaneSegError
from lane_seg.models.testing import tiny_info, write_tiny_onnx
from lane_seg.runtime import model_pick
from lane_seg.runtime.engines import read_onnx_info
from lane_seg.runtime.model_pick import (
    DEFAULT_BUDGET_MS,
    Candidate,
    choose,
    latency_budget,
    load_model,
)
from lane_seg.runtime.shipped_model import ShippedModel, shipped_int8

ACCURATE = Candidate("accurate.onnx", 71.4, 40.0)
FAST = Candidate("fast.onnx", 70.6, 12.0)
FASTEST = Candidate("fastest.onnx", 60.0, 8.0)


def test_the_most_accurate_model_within_the_budget_wins():
    assert choose([ACCURATE, FAST, FASTEST], 33.0).chosen == FAST
    assert choose([ACCURATE, FAST, FASTEST], 50.0).chosen == ACCURATE
    assert choose([FASTEST, FAST], 10.0).chosen == FASTEST
    pick = choose([ACCURATE, FAST], 40.0)  # the budget itself is within it
    assert pick.chosen == ACCURATE and pick.fits and pick.warning() is None


def test_equal_accuracy_the_faster_wins():
    twin = Candidate("twin.onnx", FAST.accuracy, 20.0)
    assert choose([twin, FAST], 33.0).chosen == FAST


def test_none_within_the_budget_gives_the_fastest_with_a_warning():
    pick = choose([ACCURATE, FAST, FASTEST], 5.0)
    assert pick.chosen == FASTEST and not pick.fits
    assert "no shipped model meets the 5.0 ms budget" in pick.warning()
    assert "fastest.onnx at 8.0 ms" in pick.warning()


def test_one_model_is_picked_whatever_the_budget():
    assert choose([ACCURATE], 100.0).chosen == ACCURATE
    assert choose([ACCURATE], 1.0).chosen == ACCURATE


def test_the_pick_names_its_figures():
    line = choose([ACCURATE, FAST], 33.0).describe()
    assert line.startswith("model auto: fast.onnx (12.0 ms, within the 33.0 ms budget)")
    assert "accurate.onnx F1 71.4 % 40.0 ms" in line and "fast.onnx F1 70.6 % 12.0 ms" in line


def test_the_budget_is_the_given_one_else_the_camera_period_else_33_ms():
    assert latency_budget(25.0, 10.0) == 25.0
    assert latency_budget(0.0, 20.0) == 50.0
    assert latency_budget(0.0, 0.0) == DEFAULT_BUDGET_MS == 33.0
    with pytest.raises(LaneSegError, match="must be >= 0"):
        latency_budget(-1.0)


@pytest.fixture
def shipped_pair(tmp_path, monkeypatch) -> dict[str, float]:
    """Two shipped models (the accurate one at 64x128, the fast one at 32x128) and the fake
    milliseconds each one "measures"; returns the timings, which tests may change."""
    models = [
        ShippedModel(write_tiny_onnx(tmp_path / "accurate.onnx"), 71.4),
        ShippedModel(write_tiny_onnx(tmp_path / "fast.onnx", info=tiny_info(32, 128)), 70.6),
    ]
    timings = {"accurate.onnx": 40.0, "fast.onnx": 12.0}
    monkeypatch.setattr(model_pick, "shipped_int8", lambda: models)
    monkeypatch.setattr(model_pick, "engine_latency", lambda engine: timings[engine.path.name])
    return timings


def test_auto_loads_the_pick_with_the_figures(shipped_pair):
    engine, pick = load_model("auto", "onnxruntime-cpu", 1, 33.0)
    assert engine.path.name == "fast.onnx" and engine.info.preprocess.height == 32
    assert [c.name for c in pick.candidates] == ["accurate.onnx", "fast.onnx"]
    engine, pick = load_model(None, "onnxruntime-cpu", 1, 50.0)  # no model given: auto too
    assert engine.path.name == "accurate.onnx" and pick.fits
    shipped_pair["fast.onnx"] = 60.0
    engine, pick = load_model("", "onnxruntime-cpu", 1, 33.0)
    assert engine.path.name == "accurate.onnx" and not pick.fits  # the fastest of the two


def test_an_explicit_model_path_bypasses_auto(tmp_path, shipped_pair, monkeypatch):
    def not_timed(engine):
        raise AssertionError("a given model is not timed")

    monkeypatch.setattr(model_pick, "engine_latency", not_timed)
    given = write_tiny_onnx(tmp_path / "mine.onnx")
    engine, pick = load_model(str(given), "onnxruntime-cpu", 1, 1.0)
    assert pick is None and engine.path == Path(given)


def test_the_shipped_list_has_the_default_model_with_its_accuracy():
    (entry,) = [m for m in shipped_int8() if m.path.name == "lane_unet_int8.onnx"]
    assert entry.path.is_file() and 0 < entry.real_f1 <= 100


@pytest.mark.parametrize(
    "text",
    ['{"int8": []}', '{"int8": [{"file": "a.onnx"}]}', '{"int8": [{"file": "a", "real_f1_8px": '
     '"NaN"}]}', "[1, 2", '{"fp32": []}'],
)  # fmt: skip
def test_a_bad_shipped_list_is_one_line(tmp_path, text):
    path = tmp_path / "shipped.json"
    path.write_text(text)
    with pytest.raises(LaneSegError) as err:
        shipped_int8(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_the_node_budget_is_the_camera_period(shipped_pair):
    """model auto in the node: camera.fps 20 makes the budget 50 ms, so the accurate model
    (40 ms) fits; an explicit latency_budget_ms wins over it; /diagnostics shows the pick."""
    rclpy = pytest.importorskip("rclpy")
    from rclpy.parameter import Parameter

    from lane_seg.ros.seg_node import SegNode

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    try:
        for params, chosen, budget in (
            ({"camera.fps": 20.0}, "accurate.onnx", 50.0),
            ({"camera.fps": 20.0, "latency_budget_ms": 33.0}, "fast.onnx", 33.0),
            ({}, "fast.onnx", DEFAULT_BUDGET_MS),
        ):
            overrides = [Parameter("engine", value="onnxruntime-cpu")]
            overrides += [Parameter(k, value=v) for k, v in params.items()]
            node = SegNode(context=ctx, parameter_overrides=overrides)
            try:
                assert node.model_pick.chosen.name == chosen
                assert node.model_pick.budget_ms == budget
                values = {kv.key: kv.value for kv in node.diagnostics().values}
                assert values["model"] == chosen
                assert values["model_pick"] == node.model_pick.describe()
            finally:
                node.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)


def test_infer_and_sim_use_the_same_rule(tmp_path, shipped_pair, capsys):
    """`lane-seg infer` and `lane-seg sim` pick with it: infer at its default 33 ms budget (no
    video), sim at the scenario's camera period (10 fps: 100 ms, so the accurate model)."""
    import cv2

    from lane_seg.cli.main import main
    from lane_seg.models.testing import stripes_rgb

    image = tmp_path / "road.png"
    cv2.imwrite(str(image), stripes_rgb(64, 128))
    args = ["--engine", "onnxruntime-cpu", "--threads", "1", "--out", str(tmp_path / "o")]
    assert main(["infer", str(image), *args]) == 0
    out = capsys.readouterr().out
    assert "model auto: fast.onnx (12.0 ms, within the 33.0 ms budget)" in out
    assert main(["infer", str(image), *args, "--latency-budget-ms", "45"]) == 0
    assert "model auto: accurate.onnx (40.0 ms, within the 45.0 ms budget)" in (
        capsys.readouterr().out
    )
    for name in ("accurate", "fast"):  # the closed loop checks the precision: int8
        path = tmp_path / f"{name}.onnx"
        info = read_onnx_info(path)
        write_tiny_onnx(path, "bright", dataclasses.replace(info, precision="int8"))
    sc = tmp_path / "short.yaml"
    sc.write_text(
        "name: short\nseeds: [3]\ndistance_m: 20\nspeed_mps: 15\nfps: 10\n"
        "sim: {height: 64, width: 128, vehicles: [0, 0]}\n"
    )
    sim = ["sim", "--perception", "int8", "--scenario", str(sc), "--no-video"]
    assert main([*sim, "--engine", "onnxruntime-cpu", "--out", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "model auto: accurate.onnx (40.0 ms, within the 100.0 ms budget)" in out
