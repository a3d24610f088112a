"""ROS 2 parameters and QoS the way every lane_seg node declares them.

- `descriptor`: a described parameter, with its range or choices, read-only where it is only
  read at start-up.
- `declare_settings`: one parameter per field of a settings dataclass (lane_seg.settings), with
  the field's description and range, so the YAML file, the Python API and the node agree.
- QoS is rclpy's own mechanism: every topic is created with `QoSOverridingOptions`, which
  declares read-only `qos_overrides.<topic>.<publisher|subscription>.<policy>` parameters
  (history, depth, reliability) for the topic's resolved (remapped) name. `qos_override` names one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node
from rclpy.qos_overriding_options import QoSOverridingOptions

from lane_seg.settings import describe

QOS_OVERRIDES = QoSOverridingOptions.with_default_policies()


def qos_override(topic: str, entity: str = "subscription", policy: str = "reliability") -> str:
    """The parameter that overrides `policy` of the `entity` on the resolved `topic`."""
    return f"qos_overrides.{topic}.{entity}.{policy}"


def descriptor(
    text: str,
    *,
    read_only: bool = False,
    float_range: tuple[float, float] | None = None,
    int_range: tuple[int, int] | None = None,
    choices: Sequence[str] = (),
) -> ParameterDescriptor:
    d = ParameterDescriptor(description=text, read_only=read_only)
    if float_range:
        d.floating_point_range = [
            FloatingPointRange(from_value=float(float_range[0]), to_value=float(float_range[1]))
        ]
    if int_range:
        d.integer_range = [IntegerRange(from_value=int_range[0], to_value=int_range[1], step=1)]
    if choices:
        d.additional_constraints = "one of: " + ", ".join(choices)
    return d


def declare_settings(node: Node, cls: type) -> dict[str, Any]:
    """Declare every `setting` field of `cls` as a parameter; returns {name: value}."""
    values = {}
    for name, s in describe(cls).items():
        integer = isinstance(s["default"], int) and not isinstance(s["default"], bool)
        limits = {"int_range" if integer else "float_range": s["range"]}
        d = descriptor(s["help"], choices=s["choices"], **limits)
        values[name] = node.declare_parameter(name, s["default"], d).value
    return values
