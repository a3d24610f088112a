"""The segmentation node's camera subscription: QoS that follows the camera, losses counted.

Raw 1280x720 frames (2.7 MB) between two processes do not fit Fast DDS's default shared-memory
segment, so they go over UDP in fragments; a best-effort reader loses a frame with any fragment,
which measured as nearly every frame (README, "Camera input"). A reliable reader gets them all.
So the input's reliability defaults to `best_available`:

- a camera that publishes reliably (image_transport's default, most drivers) gets a reliable
  subscription, whether it started before the node or after it;
- a best-effort camera (sensor-data QoS) makes rmw report incompatible QoS when it appears
  after the node; the subscription is then made again, best effort, and the log says so.

An explicit `qos_overrides.<topic>.subscription.reliability` is kept as given. Messages that
never reached the node are counted (`NodeStats.lost`) from both things rmw tells: gaps in each
publisher's sequence numbers (`stats.SequenceGaps`; frames replaced in a full queue show only
there) and DDS's message-lost events. The two see the same messages, so `lost` grows with the
larger count. The node's /diagnostics warns when they are a large share
(`NodeStats.loss_since_last`), with what to change (`loss_advice`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

from lane_seg.ros.params import qos_options, qos_override
from lane_seg.ros.stats import NodeStats, SequenceGaps


class CameraInput:
    """`node`'s subscription to `topic` (see the module docstring)."""

    def __init__(
        self,
        node: Node,
        msg_type: type,
        topic: str,
        callback: Callable[[Any], None],
        profile: QoSProfile,
        stats: NodeStats,
    ) -> None:
        self.node, self._type, self._callback, self._stats = node, msg_type, callback, stats
        self._retry = None
        self._gaps = SequenceGaps()
        self._reported = 0  # message-lost events' total
        self._counted = 0  # what `stats.lost` holds of the two counts
        self.sub = node.create_subscription(
            msg_type,
            topic,
            self._take,
            profile,
            qos_overriding_options=qos_options(node, topic, "subscription"),
            event_callbacks=self._events(incompatible=True),
        )
        reliability = qos_override(self.sub.topic_name, "subscription", "reliability")
        self.follows_camera = node.get_parameter(reliability).value == "best_available"

    @property
    def topic_name(self) -> str:
        return self.sub.topic_name

    def loss_advice(self, loss: float) -> str:
        """What to change when a share `loss` of the frames is lost on the way."""
        topic = self.topic_name
        if self._subscribed_reliably():  # nothing is lost in transport: a queue overflowed
            return (
                f"{loss:.0%} of the frames on {topic} never reached the node: they came faster "
                f"than it takes them and were replaced in its queue (depth "
                f"{self.sub.qos_profile.depth}); lower the camera's rate or raise "
                f"{qos_override(topic, policy='depth')}"
            )
        infos = self.node.get_publishers_info_by_topic(topic)
        if any(i.qos_profile.reliability == ReliabilityPolicy.RELIABLE for i in infos):
            fix = f"the camera publishes reliably: set {qos_override(topic)}:=reliable"
        else:
            fix = (
                "the camera publishes best effort: use input_transport:=compressed, or load "
                "config/fastdds_large_frames.xml (FASTDDS_DEFAULT_PROFILES_FILE) in the "
                "camera's process and this one"
            )
        return f"{loss:.0%} of the frames on {topic} lost in transport; {fix}"

    def _subscribed_reliably(self) -> bool:
        """This subscription as the graph has it: best_available resolved to what it became."""
        me = (self.node.get_name(), self.node.get_namespace())
        return any(
            (i.node_name, i.node_namespace) == me
            and i.qos_profile.reliability == ReliabilityPolicy.RELIABLE
            for i in self.node.get_subscriptions_info_by_topic(self.topic_name)
        )

    def _take(self, msg: Any, info: dict) -> None:
        """Every message, with rclpy's MessageInfo: its sequence number first."""
        self._gaps.see(info)
        self._count_lost()
        self._callback(msg)

    def _count_lost(self) -> None:
        now = max(self._reported, self._gaps.missed)
        self._stats.lost += now - self._counted
        self._counted = now

    def _events(self, incompatible: bool) -> SubscriptionEventCallbacks:
        return SubscriptionEventCallbacks(
            incompatible_qos=self._on_incompatible if incompatible else None,
            message_lost=self._on_lost,
            use_default_callbacks=not incompatible,  # rclpy's own warning would be wrong here
        )

    def _on_lost(self, info: Any) -> None:
        self._reported += info.total_count_change
        self._count_lost()

    def _on_incompatible(self, info: Any) -> None:
        if self.follows_camera and self._retry is None:
            # not from inside the subscription's own event: from a timer, at once
            self._retry = self.node.create_timer(0.0, self._best_effort)
        elif not self.follows_camera:
            self.node.get_logger().warning(
                f"a publisher on {self.topic_name} offers QoS incompatible with the "
                f"subscription's ({info.last_policy_kind.name.lower()}); no frames from it",
                throttle_duration_sec=30.0,
            )

    def _best_effort(self) -> None:
        self.node.destroy_timer(self._retry)
        old = self.sub.qos_profile
        profile = QoSProfile(
            history=old.history, depth=old.depth, reliability=ReliabilityPolicy.BEST_EFFORT
        )
        topic = self.sub.topic_name
        self.node.destroy_subscription(self.sub)
        self.sub = self.node.create_subscription(
            self._type, topic, self._take, profile, event_callbacks=self._events(False)
        )
        self.node.get_logger().info(
            f"the camera on {topic} publishes best effort: subscribed best effort (large raw "
            "frames may then be lost in transport; /diagnostics counts them as 'lost')"
        )
