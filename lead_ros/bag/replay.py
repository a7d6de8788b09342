"""``lead-ros replay``: publish a bag's topics into a live ROS graph (``ros2 bag play`` is
not installable here). Optional /clock for ``use_sim_time``, rate, loop, remaps, and a
lockstep mode in which a node plans every frame exactly as ``evaluate-bag`` does.

Lockstep promises: every anchor frame reaches the node, and the node sees each message with
the clock it would have offline. How, by construction rather than by waiting "long enough":

- Before the first message: the answering node (the publisher of the lockstep topic) is
  found in the graph, and every bag topic it subscribes to, /clock included, has matched.
- Each message is acknowledged by every reliable subscriber before the next one is sent, so
  the node receives them in bag order (the node serves /clock and the route first among
  inputs that are ready together, see ``LeadPlannerNode._create_interfaces``).
- /clock is the record time of the message being published, except while an anchor frame is
  unanswered: then it stays at the anchor's record time (what offline evaluation uses as the
  clock for that frame), so no age limit or flush deadline runs ahead of the node. The bag
  goes on only as far as the node may still need for that frame (up to the next anchor, at
  most ``ARRIVAL_GRACE_NS`` past it: the node's own deadline) and then waits for the answer.
- Answers: ``~/debug/frame_status`` answers every frame, planned or skipped; a path topic
  answers planned frames only (a skipped frame then costs ``lockstep_timeout_s``).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticStatus
from nav_msgs.msg import Path as PathMsg
from rclpy.duration import Duration
from rclpy.node import Node, NodeNameNonExistentError
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosbags.interfaces import QosDurability, QosReliability
from rosgraph_msgs.msg import Clock

from lead_ros.bag.reader import MESSAGE_CLASSES, BagInputError, check_bag_path, open_bag
from lead_ros.inputs.sync import ARRIVAL_GRACE_NS
from lead_ros.ros.encoding import ns_to_stamp
from lead_ros.ros.frame_status import FrameStatus

ANCHOR_SUFFIXES = ("/cameras/f0", "/input/image")
ANSWER_TYPES = {"diagnostic_msgs/msg/DiagnosticStatus": DiagnosticStatus, "nav_msgs/msg/Path": PathMsg}
ANSWER_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
CLOCK_TOPIC = "/clock"


@dataclass
class ReplayStats:
    published: int = 0
    anchors: int = 0
    lockstep_timeouts: int = 0
    skipped_topics: list[str] = field(default_factory=list)
    statuses: list[FrameStatus] = field(default_factory=list)  # frame_status answers, in order


def wait_until(condition, timeout_s: float, stop: threading.Event | None = None) -> bool:
    """Poll ``condition`` until it holds (True), ``timeout_s`` passes or ``stop`` is set (False)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() >= deadline or (stop is not None and stop.is_set()):
            return False
        time.sleep(0.02)
    return True


# Publisher history. Lockstep sends one message at a time and waits until it is acknowledged,
# and Fast DDS makes a reliable reader acknowledge at once only when the writer's history is
# full (it then sends a heartbeat with the data); otherwise the reader answers the periodic
# heartbeat, 3 s later. With 10 places each of the first messages of a topic waited those
# 3 s (27 s of the demo's 66, before its first frame); with 1 place every message is
# acknowledged within milliseconds.
REPLAY_DEPTH, LOCKSTEP_DEPTH = 10, 1


def _qos(connection, depth: int) -> QoSProfile:
    """The recorded QoS where known; otherwise reliable + transient local, which every
    subscriber (reliable or best effort, volatile or transient local) accepts."""
    profiles = getattr(connection.ext, "offered_qos_profiles", None) or []
    qos = QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
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
        self.lockstep_topic, self.lockstep_timeout_s = lockstep_topic, lockstep_timeout_s
        self.stats = ReplayStats()
        self._stop = threading.Event()
        self._answers = 0
        self._answered = threading.Condition()
        self._answer_sub = None
        depth = LOCKSTEP_DEPTH if lockstep_topic else REPLAY_DEPTH
        self.clock_pub = node.create_publisher(Clock, CLOCK_TOPIC, depth) if clock else None
        self.reader = open_bag(self.bag)  # one line when it cannot (service events need no parsing here)
        try:
            self._make_publishers(depth)
        except BaseException:
            self.reader.close()
            raise
        topics = [c.topic for c in self.reader.connections]
        self.anchor_topic = anchor_topic or next((t for t in topics if t.endswith(ANCHOR_SUFFIXES)), None)
        if lockstep_topic and self.anchor_topic is None:
            self.reader.close()
            raise ValueError("--lockstep needs an anchor camera topic (…/cameras/f0 or …/input/image) in the bag")
        self.lockstep = bool(lockstep_topic)

    def _make_publishers(self, depth: int) -> None:
        """A publisher per connection of a type lead_ros' inputs have; the rest are skipped and
        named. A bag with none of them is refused in one line (an empty connection list would
        read as "every connection" to rosbags)."""
        self.publishers = {}
        for connection in self.reader.connections:
            cls = MESSAGE_CLASSES.get(connection.msgtype)
            if cls is None:
                self.stats.skipped_topics.append(f"{connection.topic} ({connection.msgtype})")
                continue
            topic = self.remaps.get(connection.topic, connection.topic)
            self.publishers[connection.topic] = self.node.create_publisher(cls, topic, _qos(connection, depth))
        if not self.publishers:
            found = ", ".join(sorted(self.stats.skipped_topics)) or "no topics at all"
            raise BagInputError(
                f"{self.bag}: nothing to replay: its topics ({found}) have none of the types lead_ros' inputs have "
                f"({', '.join(sorted(MESSAGE_CLASSES))})"
            )

    def _on_answer(self, msg) -> None:
        with self._answered:
            if isinstance(msg, DiagnosticStatus):
                self.stats.statuses.append(FrameStatus.from_message(msg))
            self._answers += 1
            self._answered.notify_all()

    def wait_for_subscribers(self, timeout_s: float, topics: list[str] | None = None) -> bool:
        """Wait until each of ``topics`` (default: the anchor topic) has a subscriber."""
        names = topics if topics is not None else [self.anchor_topic]
        wanted = [self.publishers[t] for t in names if t in self.publishers]
        return wait_until(lambda: all(p.get_subscription_count() > 0 for p in wanted), timeout_s, self._stop)

    def wait_until_ready(self, timeout_s: float) -> str | None:
        """Without lockstep: the anchor topic has a subscriber. With lockstep: the answering
        node is in the graph, our answer subscription has matched it, and so has every
        publisher of a topic it subscribes to (/clock too). None when ready, else what is
        missing, in one line."""
        if not self.lockstep:
            ok = self.wait_for_subscribers(timeout_s)
            return None if ok else f"no subscriber on {self.anchor_topic} after {timeout_s:g} s"
        deadline = time.monotonic() + timeout_s

        def named_answerers() -> list:
            """Publishers of the lockstep topic whose node is known. A publisher is discovered
            before its node's name is: until then rmw names it "_NODE_NAME_UNKNOWN_" in
            "_NODE_NAMESPACE_UNKNOWN_", which graph queries refuse (RCLError)."""
            infos = self.node.get_publishers_info_by_topic(self.lockstep_topic)
            return [info for info in infos if info.node_namespace.startswith("/")]

        if not wait_until(named_answerers, timeout_s, self._stop):
            return f"no node publishes the lockstep topic {self.lockstep_topic} after {timeout_s:g} s"
        answerer = named_answerers()[0]
        answer_type = ANSWER_TYPES.get(answerer.topic_type)
        if answer_type is None:
            expected = ", ".join(ANSWER_TYPES)
            return f"lockstep topic {self.lockstep_topic} is {answerer.topic_type}; expected one of {expected}"
        if self._answer_sub is None:
            self._answer_sub = self.node.create_subscription(
                answer_type, self.lockstep_topic, self._on_answer, ANSWER_QOS
            )
        who = f"{answerer.node_namespace.rstrip('/')}/{answerer.node_name}"

        def node_inputs() -> dict:
            try:
                names = {
                    name
                    for name, _ in self.node.get_subscriber_names_and_types_by_node(
                        answerer.node_name, answerer.node_namespace
                    )
                }
            except NodeNameNonExistentError:  # it left the graph meanwhile: nothing is matched
                return {}
            wanted = {t: p for t, p in self.publishers.items() if self.remaps.get(t, t) in names}
            if self.clock_pub is not None and CLOCK_TOPIC in names:
                wanted[CLOCK_TOPIC] = self.clock_pub
            return wanted

        def unmatched() -> list[str]:
            inputs = node_inputs()
            missing = [
                t
                for t, p in inputs.items()
                if p.get_subscription_count() < self.node.count_subscribers(self.remaps.get(t, t))
            ]
            if self.anchor_topic not in inputs:
                missing.append(f"{self.anchor_topic} (not subscribed by {who})")
            if self._answer_sub.get_publisher_count() < 1:
                missing.append(self.lockstep_topic)
            return missing

        if not wait_until(lambda: not unmatched(), max(0.0, deadline - time.monotonic()), self._stop):
            return f"lockstep: {who}'s topics not matched after {timeout_s:g} s: {', '.join(unmatched())}"
        return None

    def _wait_answers(self, count: int) -> None:
        with self._answered:
            if not self._answered.wait_for(
                lambda: self._answers >= count or self._stop.is_set(), self.lockstep_timeout_s
            ):
                self.stats.lockstep_timeouts += 1
                self._answers = count  # go on; later frames are counted from here

    def stop(self) -> None:
        self._stop.set()
        with self._answered:
            self._answered.notify_all()

    def _publish(self, publisher, message) -> None:
        publisher.publish(message)
        if self.lockstep:  # in every reliable subscriber before the next message is sent
            publisher.wait_for_all_acked(Duration(seconds=self.lockstep_timeout_s))

    def run(self) -> ReplayStats:
        """Publish until the bag ends (or forever with ``loop``), then wait for the last answer."""
        if self.lockstep and self._answer_sub is None:
            raise RuntimeError("lockstep replay needs wait_until_ready() first (it finds the answering node)")
        connections = [c for c in self.reader.connections if c.topic in self.publishers]
        while not self._stop.is_set():
            start_wall, start_log = time.monotonic(), None
            held_ns = None  # lockstep: record time of the anchor frame waiting for its answer
            for connection, log_ns, raw in self.reader.messages(connections=connections):
                if self._stop.is_set():
                    break
                start_log = log_ns if start_log is None else start_log
                is_anchor = connection.topic == self.anchor_topic
                if held_ns is not None and (is_anchor or log_ns > held_ns + ARRIVAL_GRACE_NS):
                    self._wait_answers(self.stats.anchors)
                    held_ns = None
                elif not self.lockstep:
                    delay = start_wall + (log_ns - start_log) / 1e9 / self.rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                if self.clock_pub is not None and held_ns is None:
                    self._publish(self.clock_pub, Clock(clock=ns_to_stamp(log_ns)))
                self._publish(self.publishers[connection.topic], bytes(raw))
                self.stats.published += 1
                self.stats.anchors += is_anchor
                held_ns = log_ns if self.lockstep and is_anchor else held_ns
            if held_ns is not None:
                self._wait_answers(self.stats.anchors)
            if not self.loop:
                break
        return self.stats

    def close(self) -> None:
        self.reader.close()
