"""Synthetic rosbag2 bags for the bag-tool tests, written with rosbags (no ROS needed)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import get_typestore

from lead_ros.bag.reader import default_topics
from lead_ros.ros.distro import RUNNING

TYPESTORE = get_typestore(RUNNING.typestore)
T = TYPESTORE.types
MS = 1_000_000
START = 1_750_000_000 * 1_000_000_000


def header(ns: int, frame: str = "base_link"):
    return T["std_msgs/msg/Header"](
        stamp=T["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9), frame_id=frame
    )


def raw_image(image: np.ndarray, ns: int, encoding: str = "rgb8"):
    h, w = image.shape[:2]
    return T["sensor_msgs/msg/Image"](
        header=header(ns),
        height=h,
        width=w,
        encoding=encoding,
        is_bigendian=0,
        step=3 * w,
        data=np.ascontiguousarray(image).ravel(),
    )


def jpeg_image(image_rgb: np.ndarray, ns: int):
    ok, data = cv2.imencode(".jpg", image_rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return T["sensor_msgs/msg/CompressedImage"](header=header(ns), format="jpeg", data=data.ravel())


def odometry(ns: int, speed: float, yaw_rate: float = 0.0, pose: tuple[float, float, float] = (0.0, 0.0, 0.0)):
    """``pose``: x, y, yaw in the odom frame."""
    v3, q = T["geometry_msgs/msg/Vector3"], T["geometry_msgs/msg/Quaternion"]
    twist = T["geometry_msgs/msg/Twist"](linear=v3(x=speed, y=0.0, z=0.0), angular=v3(x=0.0, y=0.0, z=yaw_rate))
    x, y, yaw = pose
    pose = T["geometry_msgs/msg/Pose"](
        position=T["geometry_msgs/msg/Point"](x=x, y=y, z=0.0),
        orientation=q(x=0.0, y=0.0, z=math.sin(yaw / 2), w=math.cos(yaw / 2)),
    )
    return T["nav_msgs/msg/Odometry"](
        header=header(ns, "odom"),
        child_frame_id="base_link",
        pose=T["geometry_msgs/msg/PoseWithCovariance"](pose=pose, covariance=np.zeros(36)),
        twist=T["geometry_msgs/msg/TwistWithCovariance"](twist=twist, covariance=np.zeros(36)),
    )


def imu(ns: int, ax: float, ay: float = 0.0):
    v3, q = T["geometry_msgs/msg/Vector3"], T["geometry_msgs/msg/Quaternion"]
    return T["sensor_msgs/msg/Imu"](
        header=header(ns, "imu"),
        orientation=q(x=0.0, y=0.0, z=0.0, w=1.0),
        orientation_covariance=np.zeros(9),
        angular_velocity=v3(x=0.0, y=0.0, z=0.0),
        angular_velocity_covariance=np.zeros(9),
        linear_acceleration=v3(x=ax, y=ay, z=9.81),
        linear_acceleration_covariance=np.zeros(9),
    )


def command(value: int):
    return T["std_msgs/msg/UInt8"](data=value)


@dataclass
class BagSpec:
    """Messages to write: (record time, input key or topic, message type, message or raw bytes)."""

    events: list = field(default_factory=list)

    def add(self, ns: int, key: str, msgtype: str, msg) -> None:
        self.events.append((ns, default_topics().get(key, key), msgtype, msg))

    def write(self, path: Path, storage: str = "mcap", bag_version: int = RUNNING.bag_version) -> Path:
        """As the running distribution's ``ros2 bag`` records it, or in another metadata version."""
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        with Writer(path, version=bag_version, storage_plugin=plugin) as writer:
            connections = {}
            for ns, topic, msgtype, msg in sorted(self.events, key=lambda e: e[0]):
                if topic not in connections:
                    connections[topic] = writer.add_connection(topic, msgtype, typestore=TYPESTORE)
                data = msg if isinstance(msg, bytes) else TYPESTORE.serialize_cdr(msg, msgtype)
                writer.write(connections[topic], ns, data)
        return path
