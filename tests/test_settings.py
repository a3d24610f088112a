"""lane_seg.settings: the one reader of settings files (simulator, scenarios, controller,
training sections): unknown keys refused, values converted by type, ranges and choices kept."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from lane_seg.errors import LaneSegError
from lane_seg.settings import describe, from_mapping, load_yaml, setting


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
