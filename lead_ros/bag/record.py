"""``lead-ros record-path``: write the node's published paths to a bag (MCAP), so a live
run can be compared with an offline evaluation of the same input."""

from __future__ import annotations

import threading
from pathlib import Path

from nav_msgs.msg import Path as PathMsg
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import serialize_message
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import get_typestore

from lead_ros.ros.distro import RUNNING


class PathRecorder:
    def __init__(self, node: Node, topics: list[str], out: Path) -> None:
        if out.exists():
            raise FileExistsError(f"output bag {out} exists; choose another path")
        self.node = node
        self.count = 0
        self._lock = threading.Lock()
        self._writer = Writer(out, version=RUNNING.bag_version, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        try:
            typestore = get_typestore(RUNNING.typestore)
            qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
            self._subscriptions = []
            for topic in topics:
                connection = self._writer.add_connection(topic, "nav_msgs/msg/Path", typestore=typestore)
                callback = lambda msg, c=connection: self._write(c, msg)  # noqa: E731
                self._subscriptions.append(node.create_subscription(PathMsg, topic, callback, qos))
        except BaseException:  # Ctrl-C while subscribing (a loaded machine): the bag still gets its metadata
            self.close()
            raise

    @property
    def matched(self) -> bool:
        """Every topic has matched a publisher (paths published from now on are recorded)."""
        return all(s.get_publisher_count() > 0 for s in self._subscriptions)

    def _write(self, connection, msg: PathMsg) -> None:
        with self._lock:
            if self._writer is not None:
                self._writer.write(connection, self.node.get_clock().now().nanoseconds, serialize_message(msg))
                self.count += 1

    def close(self) -> None:
        with self._lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
