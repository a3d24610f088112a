"""Settings from YAML into dataclasses: unknown keys refused, every value checked.

The one reader behind the simulator's ranges (SimConfig), the closed-loop scenarios, the lane
controller (ControllerConfig) and the sections of a training config, so a typo in any of them
fails the same way, with the file's name, instead of silently falling back to a default.

Values are converted by the field's annotation (float accepts an integer; int, str and bool
must be exactly that; `tuple[float, float]` takes a list of two numbers, `tuple[int, ...]` any
number). A field made with `setting(...)` also carries a description, an inclusive range (for
a tuple, of each of its values) and choices: the reader enforces them, and the ROS 2 controller
node declares its parameters from the same metadata. Every numeric setting declares its range,
so a value no run could use is refused before any folder is made (tests/test_settings.py). A
dataclass's own `__post_init__` may raise ValueError for what a single field cannot say; it
becomes the same one-line LaneSegError.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from lane_seg.errors import LaneSegError
from lane_seg.outputs import os_reason

T = TypeVar("T")
REQUIRED: Any = dataclasses.MISSING  # `setting(REQUIRED, ...)`: a key the file must give


def setting(
    default: Any,
    help: str,
    *,
    range: tuple[float, float] | None = None,  # noqa: A002 (the word the reader uses)
    choices: Sequence[str] = (),
) -> Any:
    """A dataclass field with a description, an inclusive [low, high] range or choices."""
    return dataclasses.field(
        default=default, metadata={"help": help, "range": range, "choices": tuple(choices)}
    )


def read_yaml(path: str | Path, what: str) -> dict[str, Any]:
    """The mapping in a YAML file. A ROS 2 parameter file (`<node>: {ros__parameters: {...}}`,
    one node) gives its parameters, so one file serves a node and the Python API alike."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise LaneSegError(f"cannot read {what} {path}: {os_reason(exc)}") from None
    except UnicodeDecodeError:
        raise LaneSegError(f"cannot read {what} {path}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise LaneSegError(f"{what} {path} is not valid YAML: {yaml_error(exc)}") from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise LaneSegError(f"{path}: expected a mapping of {what} settings")
    values = list(data.values())
    if len(values) == 1 and isinstance(values[0], dict) and set(values[0]) == {"ros__parameters"}:
        data = values[0]["ros__parameters"] or {}
    return data


def yaml_error(exc: yaml.YAMLError) -> str:
    """PyYAML's several-line message as one line: where, and what was wrong."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"line {mark.line + 1}, column {mark.column + 1}: {exc.problem}"
    return " ".join(str(exc).split())


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _convert(value: Any, kind: Any, key: str, source: str) -> Any:
    def fail(expected: str) -> LaneSegError:
        return LaneSegError(f"{source}: {key} must be {expected}, got {value!r}")

    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is bool:
        if not isinstance(value, bool):
            raise fail("true or false")
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise fail("a number")
        return float(value)
    elif kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail("an integer")
    elif kind is str:
        if not isinstance(value, str):
            raise fail("text")
    elif origin is tuple:
        if not isinstance(value, list | tuple):
            raise fail("a list")
        items = args[:1] * len(value) if args[-1:] == (...,) else args
        if len(value) != len(items):
            raise fail(f"a list of {len(items)} values")
        return tuple(_convert(v, t, key, source) for v, t in zip(value, items, strict=True))
    elif origin is dict or kind is dict:
        if not isinstance(value, dict):
            raise fail("a mapping")
    elif origin in (typing.Union, types.UnionType) and value is not None:
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(value, option, key, source)
            except LaneSegError:
                continue
        raise fail(" or ".join(getattr(a, "__name__", str(a)) for a in args))
    return value


def _number(x: float) -> str:
    """A range's bound as written: 1000000, not 1e+06; 0.25 as 0.25."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _check(value: Any, meta: typing.Mapping[str, Any], key: str, source: str) -> None:
    low_high = meta.get("range")
    items = value if isinstance(value, tuple) else (value,)  # a tuple: each of its values
    if low_high is not None and not all(low_high[0] <= v <= low_high[1] for v in items):
        each = "each value of " if isinstance(value, tuple) else ""
        got = list(value) if isinstance(value, tuple) else value
        raise LaneSegError(
            f"{source}: {each}{key} must be in [{_number(low_high[0])}, {_number(low_high[1])}]"
            f", got {got!r}"
        )
    if meta.get("choices") and value not in meta["choices"]:
        raise LaneSegError(
            f"{source}: {key} must be one of {', '.join(meta['choices'])}, got {value!r}"
        )


def from_mapping(cls: type[T], data: Any, source: str, exclude: Sequence[str] = ()) -> T:
    """`cls(**data)`, every key known and every value converted and checked (module doc).

    `exclude` names fields that are not settings (they keep their defaults)."""
    if not isinstance(data, dict):
        raise LaneSegError(f"{source}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in exclude}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise LaneSegError(f"{source}: unknown keys {unknown}; known: {sorted(fields)}")
    missing = sorted(
        name
        for name, f in fields.items()
        if name not in data
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    )
    if missing:
        raise LaneSegError(f"{source}: missing keys {missing}")
    values = {}
    for key, value in data.items():
        values[key] = _convert(value, _hints(cls)[key], key, source)
        _check(values[key], fields[key].metadata, key, source)
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise LaneSegError(f"{source}: {exc}") from None


def load_yaml(cls: type[T], path: str | Path, what: str) -> T:
    """`from_mapping` of a YAML file (`read_yaml`), errors naming the file."""
    return from_mapping(cls, read_yaml(path, what), str(path))


def describe(cls: type) -> dict[str, dict[str, Any]]:
    """name -> {default, help, range, choices} of every `setting` field (for ROS parameters)."""
    return {
        f.name: {"default": f.default, **f.metadata}
        for f in dataclasses.fields(cls)
        if "help" in f.metadata
    }
