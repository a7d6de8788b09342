"""Compare two bags of planned paths frame by frame (by header stamp)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from nav_msgs.msg import Path as PathMsg
from rclpy.serialization import deserialize_message
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore

from lead_ros.ros.conversions import stamp_to_ns


def read_paths(bag: Path, topic: str) -> dict[int, np.ndarray]:
    """Header stamp -> (N, 3) array of [x, y, yaw] for every Path on ``topic``."""
    paths = {}
    with AnyReader([bag], default_typestore=get_typestore(Stores.ROS2_KILTED)) as reader:
        connections = [c for c in reader.connections if c.topic == topic]
        for _, _, raw in reader.messages(connections=connections):
            msg = deserialize_message(bytes(raw), PathMsg)
            poses = [(p.pose.position.x, p.pose.position.y, 2 * math.atan2(p.pose.orientation.z, p.pose.orientation.w))
                     for p in msg.poses]  # fmt: skip
            paths[stamp_to_ns(msg.header.stamp)] = np.array(poses)
    return paths


@dataclass(frozen=True)
class PathComparison:
    common: int
    only_first: list[int]
    only_second: list[int]
    max_abs_position_m: float
    max_abs_heading_rad: float

    def matches(self, tolerance: float = 1e-4) -> bool:
        return self.max_abs_position_m <= tolerance and self.max_abs_heading_rad <= tolerance


def compare_paths(first: dict[int, np.ndarray], second: dict[int, np.ndarray]) -> PathComparison:
    common = sorted(set(first) & set(second))
    position = heading = 0.0
    for stamp in common:
        a, b = first[stamp], second[stamp]
        if a.shape != b.shape:
            return PathComparison(len(common), [], [], math.inf, math.inf)
        position = max(position, float(np.abs(a[:, :2] - b[:, :2]).max()))
        wrapped = (a[:, 2] - b[:, 2] + np.pi) % (2 * np.pi) - np.pi
        heading = max(heading, float(np.abs(wrapped).max()))
    return PathComparison(
        len(common), sorted(set(first) - set(second)), sorted(set(second) - set(first)), position, heading
    )
