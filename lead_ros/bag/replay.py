"""``lead-ros replay``: publish a bag's topics into a live ROS graph (``ros2 bag play`` is
not installable here). Optional /clock for ``use_sim_time``, rate, loop, remaps, and a
lockstep mode that publishes the next anchor frame only after the planner answered, so a
slow CPU plans every frame."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosbags.highlevel import AnyReader
from rosbags.interfaces import QosDurability, QosReliability
from rosbags.typesys import Stores, get_typestore
from rosgraph_msgs.msg import Clock

from lead_ros.bag.reader import MESSAGE_CLASSES, BagInputError, check_bag_path
from lead_ros.ros.conversions import ns_to_stamp

ANCHOR_SUFFIXES = ("/cameras/f0", "/input/image")


@dataclass
class ReplayStats:
    published: int = 0
    anchors: int = 0
    lockstep_timeouts: int = 0
    skipped_topics: list[str] = field(default_factory=list)


def _qos(connection) -> QoSProfile:
    """The recorded QoS where known; otherwise reliable + transient local, which every
    subscriber (reliable or best effort, volatile or transient local) accepts."""
    profiles = getattr(connection.ext, "offered_qos_profiles", None) or []
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    if profiles and not isinstance(profiles, str):
        recorded = profiles[0]
        if recorded.reliability == QosReliability.BEST_EFFORT:
            qos.reliability = ReliabilityPolicy.BEST_EFFORT
        if recorded.durability == QosDurability.VOLATILE:
            qos.durability = DurabilityPolicy.VOLATILE
    return qos


class BagReplayer:
    def __init__(
        self,
        node: Node,
        bag: Path,
        *,
        rate: float = 1.0,
        loop: bool = False,
        clock: bool = False,
        remaps: dict[str, str] | None = None,
        lockstep_topic: str | None = None,
        lockstep_timeout_s: float = 30.0,
        anchor_topic: str | None = None,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"--rate must be positive, got {rate}")
        self.node, self.bag, self.rate, self.loop = node, check_bag_path(bag), rate, loop
        self.remaps = remaps or {}
        self.lockstep_timeout_s = lockstep_timeout_s
        self.stats = ReplayStats()
        self._stop = threading.Event()
        self._answers = 0
        self._answered = threading.Condition()
        self.clock_pub = node.create_publisher(Clock, "/clock", 10) if clock else None
        self.reader = AnyReader([self.bag], default_typestore=get_typestore(Stores.ROS2_KILTED))
        try:
            self.reader.open()
        except Exception as error:
            raise BagInputError(f"{bag}: could not open the bag ({type(error).__name__}: {error})") from error
        self.publishers = {}
        for connection in self.reader.connections:
            cls = MESSAGE_CLASSES.get(connection.msgtype)
            if cls is None:
                self.stats.skipped_topics.append(f"{connection.topic} ({connection.msgtype})")
                continue
            topic = self.remaps.get(connection.topic, connection.topic)
            self.publishers[connection.topic] = node.create_publisher(cls, topic, _qos(connection))
        topics = [c.topic for c in self.reader.connections]
        self.anchor_topic = anchor_topic or next((t for t in topics if t.endswith(ANCHOR_SUFFIXES)), None)
        if lockstep_topic:
            if self.anchor_topic is None:
                raise ValueError("--lockstep needs an anchor camera topic (…/cameras/f0 or …/input/image) in the bag")
            cls = MESSAGE_CLASSES["nav_msgs/msg/Path"]
            node.create_subscription(cls, lockstep_topic, self._on_answer, 10)
        self.lockstep = bool(lockstep_topic)

    def _on_answer(self, _msg) -> None:
        with self._answered:
            self._answers += 1
            self._answered.notify_all()

    def wait_for_subscribers(self, timeout_s: float, topics: list[str] | None = None) -> bool:
        """Wait until each of ``topics`` (default: the anchor topic) has a subscriber."""
        names = topics if topics is not None else [self.anchor_topic]
        wanted = [self.publishers[t] for t in names if t in self.publishers]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(p.get_subscription_count() > 0 for p in wanted):
                return True
            time.sleep(0.05)
        return False

    def _wait_answers(self, count: int) -> None:
        with self._answered:
            if not self._answered.wait_for(lambda: self._answers >= count or self._stop.is_set(),
                                           self.lockstep_timeout_s):  # fmt: skip
                self.stats.lockstep_timeouts += 1
                self._answers = count  # go on; later frames are counted from here

    def stop(self) -> None:
        self._stop.set()
        with self._answered:
            self._answered.notify_all()

    def run(self) -> ReplayStats:
        """Publish until the bag ends (or forever with ``loop``), then wait for the last answer."""
        connections = [c for c in self.reader.connections if c.topic in self.publishers]
        while not self._stop.is_set():
            start_wall, start_log = time.monotonic(), None
            for connection, log_ns, raw in self.reader.messages(connections=connections):
                if self._stop.is_set():
                    break
                start_log = log_ns if start_log is None else start_log
                is_anchor = connection.topic == self.anchor_topic
                if self.lockstep and is_anchor and self.stats.anchors:
                    self._wait_answers(self.stats.anchors)
                elif not self.lockstep:
                    delay = start_wall + (log_ns - start_log) / 1e9 / self.rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                if self.clock_pub is not None:
                    self.clock_pub.publish(Clock(clock=ns_to_stamp(log_ns)))
                self.publishers[connection.topic].publish(bytes(raw))
                self.stats.published += 1
                self.stats.anchors += is_anchor
            if self.lockstep and self.stats.anchors:
                self._wait_answers(self.stats.anchors)
            if not self.loop:
                break
        return self.stats

    def close(self) -> None:
        self.reader.close()
