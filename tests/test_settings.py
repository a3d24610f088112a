"""lane_seg.settings: the one reader of settings files (simulator, scenarios, controller,
training sections): unknown keys refused, values converted by type, ranges and choices kept."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lane_seg.errors import LaneSegError
from lane_seg.lanes.control import ControllerConfig
from lane_seg.settings import describe, from_mapping, load_yaml, setting
from lane_seg.sim.loop.scenarios import Scenario, standard_scenarios
from lane_seg.sim.world.scene import SimConfig
from lane_seg.training.train.augment import AugmentConfig
from lane_seg.training.train.config import (
    DataSection,
    LossSection,
    OptimSection,
    Source,
    TrainSection,
    load_config,
)

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Knobs:
    name: str
    gain: float = setting(1.0, "a gain", range=(0.0, 2.0))
    mode: str = setting("a", "a mode", choices=("a", "b"))
    size: tuple[int, int] = (1, 2)
    seeds: tuple[int, ...] = ()
    on: bool = False

    def __post_init__(self) -> None:
        if self.size[0] > self.size[1]:
            raise ValueError("size must be [low, high]")


def test_values_are_converted_and_checked():
    k = from_mapping(Knobs, {"name": "x", "gain": 2, "size": [3, 4], "seeds": [5, 6, 7]}, "f")
    assert k == Knobs("x", 2.0, "a", (3, 4), (5, 6, 7))
    assert isinstance(k.gain, float)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "x", "gian": 1.0}, "f: unknown keys ['gian']"),
        ({"gain": 1.0}, "f: missing keys ['name']"),
        ({"name": "x", "gain": "high"}, "gain must be a number, got 'high'"),
        ({"name": "x", "gain": True}, "gain must be a number"),
        ({"name": "x", "gain": 2.5}, "gain must be in [0, 2], got 2.5"),
        ({"name": "x", "mode": "c"}, "mode must be one of a, b, got 'c'"),
        ({"name": "x", "size": [1]}, "size must be a list of 2 values"),
        ({"name": "x", "size": 3}, "size must be a list"),
        ({"name": "x", "size": [1, 2.5]}, "size must be an integer, got 2.5"),
        ({"name": "x", "size": [4, 3]}, "f: size must be [low, high]"),  # __post_init__
        ({"name": 7}, "name must be text"),
        ({"name": "x", "on": "yes"}, "on must be true or false"),
        ([1, 2], "f: expected a mapping"),
    ],
)
def test_bad_values_are_one_line_errors_naming_the_source(data, message):
    with pytest.raises(LaneSegError) as err:
        from_mapping(Knobs, data, "f")
    assert message in str(err.value)


def test_a_ros_parameter_file_reads_like_a_plain_one(tmp_path):
    plain, ros = tmp_path / "plain.yaml", tmp_path / "ros.yaml"
    plain.write_text("name: x\ngain: 0.5\n")
    ros.write_text("/**:\n  ros__parameters:\n    name: x\n    gain: 0.5\n")
    assert load_yaml(Knobs, plain, "knobs") == load_yaml(Knobs, ros, "knobs") == Knobs("x", 0.5)


@pytest.mark.parametrize(
    "text, message",
    [
        ("name: [x\n", "is not valid YAML: line 2, column 1: expected ',' or ']', but got"),
        ("name: x\n  gain: 1\n", "is not valid YAML: line 2, column 7: mapping values are not"),
        (b"name: \xff\n", "not UTF-8 text"),
        (None, "cannot read knobs .*missing.yaml: no such file or directory"),
    ],
)
def test_an_unreadable_settings_file_is_one_line(tmp_path, text, message):
    path = tmp_path / ("missing.yaml" if text is None else "bad.yaml")
    if isinstance(text, bytes):
        path.write_bytes(text)
    elif text is not None:
        path.write_text(text)
    with pytest.raises(LaneSegError, match=message) as err:
        load_yaml(Knobs, path, "knobs")
    assert "\n" not in str(err.value)


def test_described_fields_carry_their_metadata():
    assert describe(Knobs) == {
        "gain": {"default": 1.0, "help": "a gain", "range": (0.0, 2.0), "choices": ()},
        "mode": {"default": "a", "help": "a mode", "range": None, "choices": ("a", "b")},
    }


def _numeric(kind: Any) -> bool:
    args = typing.get_args(kind)
    return kind in (int, float) or (typing.get_origin(kind) is tuple and args[0] in (int, float))


SETTINGS = [SimConfig, Scenario, ControllerConfig, AugmentConfig]
SETTINGS += [Source, DataSection, LossSection, OptimSection, TrainSection]


@pytest.mark.parametrize("cls", SETTINGS, ids=lambda c: c.__name__)
def test_every_numeric_setting_declares_its_range(cls):
    """The one place values are checked (module doc of lane_seg.settings) knows every bound."""
    hints = typing.get_type_hints(cls)
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if _numeric(hints[f.name]) and f.metadata.get("range") is None
    ]
    assert not missing, f"{cls.__name__}: {missing} declare no range"


def test_every_shipped_settings_file_is_within_its_ranges():
    config = REPO / "config"
    for path in [*config.glob("sim*.yaml"), *config.glob("sim_variants/*.yaml")]:
        SimConfig.from_yaml(path)
    assert len(standard_scenarios()) >= 4
    for name in standard_scenarios():
        Scenario.load(name)
    paths = sorted((REPO / "training" / "configs").rglob("*.yaml"))
    assert len(paths) > 10
    for path in paths:
        load_config(path)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"hfov_deg": [0, 0]}, "each value of hfov_deg must be in [10, 170], got [0.0, 0.0]"),
        ({"width": 100000}, "width must be in [32, 8192], got 100000"),
        ({"lane_width_m": [-3.5, 3.5]}, "each value of lane_width_m must be in [1.5, 8], got"),
        ({"yellow_probability": 5}, "yellow_probability must be in [0, 1], got 5.0"),
    ],
)
def test_simulator_values_out_of_range_are_refused(data, message):
    with pytest.raises(LaneSegError) as err:
        SimConfig.from_dict(data, "sim.yaml")
    assert str(err.value).startswith(f"sim.yaml: {message}")
