"""ROS 2 parameters and QoS the way every lane_seg node declares them.

- `CheckedNode`: the base of our nodes; a parameter whose value is out of its descriptor's range
  or of the wrong type (from `-p`, a parameter file or a launch file) stops the node at start-up
  with one LaneSegError line naming the parameter and what it allows. `shut_down` is where a
  node publishes its last message before a clean exit.
- `descriptor`: a described parameter, with its range or choices, read-only where it is only
  read at start-up.
- `declare_settings`: one parameter per field of a settings dataclass (lane_seg.settings), with
  the field's description and range, so the YAML file, the Python API and the node agree.
- QoS is rclpy's own mechanism: every topic is created with `QoSOverridingOptions`, which
  declares read-only `qos_overrides.<topic>.<publisher|subscription>.<policy>` parameters
  (history, depth, reliability) for the topic's resolved (remapped) name. `qos_override` names one;
  `qos_options` checks the depth (1 to MAX_QOS_DEPTH with history keep_last, as rclpy does not).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile
from rclpy.qos_overriding_options import QosCallbackResult, QoSOverridingOptions

from lane_seg.errors import LaneSegError
from lane_seg.settings import describe

MAX_QOS_DEPTH = 1000


def _allowed(d: ParameterDescriptor | None, default: Any) -> str:
    """What a parameter accepts, in words, from its descriptor (and its default's type)."""
    if d is not None and d.integer_range:
        r = d.integer_range[0]
        text = f"an integer from {r.from_value} to {r.to_value}"
    elif d is not None and d.floating_point_range:
        r = d.floating_point_range[0]
        text = f"a number from {r.from_value:g} to {r.to_value:g}"
    elif d is not None and d.additional_constraints:
        text = d.additional_constraints
    else:
        kinds = {bool: "true or false", int: "an integer", float: "a number", str: "text"}
        text = kinds.get(type(default), type(default).__name__)
    return text + (f" ({d.description})" if d is not None and d.description else "")


class CheckedNode(Node):
    """A Node whose parameter declarations fail with one line (the module docstring)."""

    def declare_parameter(  # type: ignore[override]
        self,
        name: str,
        value: Any = None,
        descriptor: ParameterDescriptor | None = None,
        ignore_override: bool = False,
    ) -> Any:
        try:
            return super().declare_parameter(name, value, descriptor, ignore_override)
        except (InvalidParameterTypeException, InvalidParameterValueException):
            given = self._parameter_overrides.get(name)
            shown = f" = {given.value!r}" if given is not None else ""
            raise LaneSegError(
                f"parameter {name}{shown}: must be {_allowed(descriptor, value)}"
            ) from None

    def warn_unused_parameters(self) -> None:
        """Name the given parameters this node does not have (a typo is otherwise silent)."""
        unused = sorted(n for n in self._parameter_overrides if not self.has_parameter(n))
        if unused:
            self.get_logger().warning(f"ignored, no such parameter: {', '.join(unused)}")

    def shut_down(self) -> None:
        """Last words on SIGINT or SIGTERM (lane_seg.ros.entry_points): called once, after the
        executor stopped and before the node is destroyed, while it can still publish."""


def qos_options(node: Node, topic: str, entity: str) -> QoSOverridingOptions:
    """rclpy's QoS overrides (history, depth, reliability) of `topic`, the depth checked."""
    depth = qos_override(node.resolve_topic_name(topic), entity, "depth")

    def check(profile: QoSProfile) -> QosCallbackResult:
        if profile.history == HistoryPolicy.KEEP_LAST and not 1 <= profile.depth <= MAX_QOS_DEPTH:
            raise LaneSegError(
                f"parameter {depth} = {profile.depth}: must be an integer from 1 to "
                f"{MAX_QOS_DEPTH} with history keep_last"
            )
        return QosCallbackResult(successful=True)

    return QoSOverridingOptions.with_default_policies(callback=check)


@contextmanager
def qos_errors() -> Iterator[None]:
    """Creating topics: a QoS override rclpy refuses becomes one LaneSegError line."""
    try:
        with warnings.catch_warnings():  # depth 0: qos_options' check says it in one line
            warnings.filterwarnings("ignore", "A zero depth", UserWarning)
            yield
    except LaneSegError:
        raise
    except Exception as exc:  # rclpy's RuntimeError/InvalidQosOverridesError
        raise LaneSegError(f"bad QoS override: {str(exc).splitlines()[0]}") from exc


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
