"""The topic table's words (``ros.topics``) as rclpy objects: message classes from ROS type
names, QoS profiles from ``QosSpec``. Kept apart from the table, which must import without
rclpy and the message packages (``ros2 launch`` reads it under the system Python)."""

from __future__ import annotations

import importlib
from functools import cache

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

from lead_ros.ros.topics import SENSOR_DATA, QosSpec, Topic, TopicContext

RELIABILITY = {"reliable": ReliabilityPolicy.RELIABLE, "best_effort": ReliabilityPolicy.BEST_EFFORT}
DURABILITY = {"volatile": DurabilityPolicy.VOLATILE, "transient_local": DurabilityPolicy.TRANSIENT_LOCAL}


@cache
def message_class(type_name: str) -> type:
    """``sensor_msgs/msg/Image`` -> the rclpy message class."""
    package, kind, name = type_name.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


def qos_profile(spec: QosSpec) -> QoSProfile:
    """The rclpy profile of a spec: rclpy's own sensor-data profile for ``SENSOR_DATA``."""
    if spec == SENSOR_DATA:
        return qos_profile_sensor_data
    return QoSProfile(
        depth=spec.depth,
        reliability=RELIABILITY[spec.reliability],
        durability=DURABILITY[spec.durability],
        history=HistoryPolicy.KEEP_LAST,
    )


def topic_class(topic: Topic, context: TopicContext) -> type:
    """A topic's message class under a configuration."""
    return message_class(topic.message_type(context))
