"""Streaming rosbag2 input for the planner: topic selection and type checks, rclpy
decoding (the node's message classes, so conversion is shared), and header-stamp order
restored within a bounded reorder window of record time. Never loads a bag whole."""

from __future__ import annotations

import hashlib
import heapq
import itertools
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rclpy.serialization import deserialize_message
from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.rosbag2 import Reader
from rosbags.typesys import get_typestore
from sensor_msgs.msg import CompressedImage

from lead_ros.camera_layout import anchor_input, camera_inputs
from lead_ros.cameras.rig import load_rig
from lead_ros.node_config import CAMERA_MODES, NodeConfig
from lead_ros.ros.decoding import stamp_to_ns
from lead_ros.ros.distro import RUNNING
from lead_ros.ros.interfaces import message_class
from lead_ros.ros.topics import (
    CAMERA_INFO_SUFFIX,
    CAMERA_TYPES,
    INPUT,
    INPUT_KEYS,
    TOPICS,
    TopicContext,
    active_topics,
    default_topics,
)

# Re-exported: the bag tools' input keys and default topics are the topic table's.
__all__ = ["INPUT_KEYS", "default_topics"]
# Every type an input can have (the topic table's), by ROS type name.
MESSAGE_CLASSES = {name: message_class(name) for topic in TOPICS if topic.direction == INPUT for name in topic.types}
TYPE_NAMES = {cls: name for name, cls in MESSAGE_CLASSES.items()}
CAMERA_TRANSPORTS = {type_name: transport for transport, type_name in CAMERA_TYPES.items()}
BAG_SUFFIXES = (".mcap", ".db3")


class BagInputError(ValueError):
    """A bag that cannot be evaluated; the message names the bag and what is wrong."""


def type_name(cls: type) -> str:
    """The ROS type name of an input's message class."""
    return TYPE_NAMES[cls]


def expected_classes(config: NodeConfig) -> dict[str, type]:
    """The inputs a configuration reads (the node's subscriptions) and the message class each
    must have, by topic key."""
    from_topics = ()
    if config.camera_rig_file and config.camera_mode == "navsim_4cam":  # rig cameras calibrated by CameraInfo
        from_topics = load_rig(config.camera_rig_file).from_topics
    context = TopicContext(config, from_topics)
    return {topic.key: message_class(topic.message_type(context)) for topic in active_topics(context, INPUT)}


def check_bag_path(path: Path) -> Path:
    if path.is_dir() and (path / "metadata.yaml").is_file():
        return path
    if path.is_file() and path.suffix in BAG_SUFFIXES:
        return path
    what = (
        "does not exist"
        if not path.exists()
        else "is a directory without metadata.yaml"
        if path.is_dir()
        else (f"is a {path.suffix or 'suffix-less'} file")
    )
    raise BagInputError(
        f"{path} is not a rosbag2 bag: it {what} (expected a bag directory with metadata.yaml, "
        "or a single .mcap or .db3 file)"
    )


@dataclass(frozen=True)
class BagMessage:
    key: str
    topic: str
    log_ns: int  # record time
    stamp_ns: int  # header stamp (record time for header-less messages)
    msg: object
    raw: bytes


@dataclass
class ReadStats:
    """What reading saw, for the summary: nothing is dropped without being counted here."""

    messages_read: Counter = field(default_factory=Counter)
    decode_failures: Counter = field(default_factory=Counter)
    skipped_connections: list[str] = field(default_factory=list)
    missing_topics: list[str] = field(default_factory=list)
    # topic -> sha256 over (record time, serialized bytes) of every message read, in storage
    # order: which drive an output came from (compare-evaluations refuses different ones).
    digests: dict = field(default_factory=dict)

    def fingerprint(self) -> dict[str, str]:
        return {topic: digest.hexdigest() for topic, digest in sorted(self.digests.items())}


def _describe_topics(reader: AnyReader) -> str:
    topics = sorted({f"{c.topic} ({c.msgtype})" for c in reader.connections})
    return ", ".join(topics) if topics else "no topics at all"


def open_bag(bag: Path) -> AnyReader | Reader:
    """An open reader. AnyReader parses every connection's message definition, and fails on
    the whole bag for one it cannot parse (e.g. service events); messages are decoded with
    rclpy here, so such a bag is read with the plain rosbag2 reader instead, and connections
    other than the inputs are skipped and counted as always."""
    path = check_bag_path(bag)
    try:
        reader = AnyReader([path], default_typestore=get_typestore(RUNNING.typestore))
        reader.open()
    except AnyReaderError as error:
        if "Could not parse" not in str(error):
            raise BagInputError(f"{bag}: could not open the bag ({_first_line(error)})") from error
        reader = Reader(path)
        try:
            reader.open()
        except Exception as retry:  # rosbags raises several types for unreadable bags
            raise BagInputError(f"{bag}: could not open the bag ({_first_line(retry)})") from retry
    except Exception as error:  # rosbags raises several types for unreadable bags
        raise BagInputError(f"{bag}: could not open the bag ({_first_line(error)})") from error
    return reader


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0][:200] if text else ''}"


def camera_settings(connection_types: dict[str, str], topics: dict[str, str]) -> dict[str, str]:
    """``camera_mode`` and ``image_transport`` as a bag's camera connections (topic -> type)
    tell them; a setting the bag does not tell is left out. Four cameras win over a
    stitched image when a bag has both."""
    for mode in CAMERA_MODES:
        keys = camera_inputs(mode)
        found = {connection_types[topics[k]] for k in keys if topics[k] in connection_types}
        if found:
            transports = {CAMERA_TRANSPORTS.get(t) for t in found}
            told = {"camera_mode": mode}
            if len(transports) == 1 and None not in transports:
                told["image_transport"] = transports.pop()
            return told
    return {}


def bag_camera_settings(bag: Path, topics: dict[str, str]) -> dict[str, str]:
    """``camera_settings`` of a bag (opened for its connections only)."""
    reader = open_bag(bag)
    try:
        return camera_settings({c.topic: c.msgtype for c in reader.connections}, topics)
    finally:
        reader.close()


def _select(reader: AnyReader, bag: Path, topics: dict[str, str], classes: dict[str, type]) -> list:
    """The connections of the requested topics, type-checked; raises when none is there, or
    when the configuration's cameras do not match the bag's (naming the setting that would)."""
    by_topic = {topics[key]: key for key in classes}
    told = camera_settings({c.topic: c.msgtype for c in reader.connections}, topics)
    mode = "stitched" if anchor_input("stitched") in classes else "navsim_4cam"
    transport = "compressed" if classes[anchor_input(mode)] is CompressedImage else "raw"
    selected = []
    for connection in reader.connections:
        key = by_topic.get(connection.topic)
        if key is None:
            continue
        expected = TYPE_NAMES[classes[key]]
        if connection.msgtype != expected:
            hint = ""
            if connection.msgtype in CAMERA_TRANSPORTS and "image_transport" in told:
                hint = f" (image_transport {transport}); image_transport: {told['image_transport']} would work"
            raise BagInputError(
                f"{bag}: topic {connection.topic} ({key}) has type {connection.msgtype}, "
                f"expected {expected} for this configuration{hint}"
            )
        selected.append(connection)
    anchor = topics[anchor_input(mode)]
    if anchor not in {c.topic for c in selected} and told.get("camera_mode", mode) != mode:
        raise BagInputError(
            f"{bag}: camera_mode {mode} reads {anchor}, which the bag does not have; "
            f"camera_mode: {told['camera_mode']} would work"
        )
    if not selected:
        raise BagInputError(
            f"{bag}: none of the requested topics ({', '.join(sorted(by_topic))}) is in the bag; "
            f"it has: {_describe_topics(reader)}"
        )
    present = {c.topic for c in selected}
    awaited = [key for key in classes if key.endswith(CAMERA_INFO_SUFFIX) and topics[key] not in present]
    if awaited:  # no frame could ever be planned: every one would wait for these calibrations
        cameras = ", ".join(key.removesuffix(CAMERA_INFO_SUFFIX) for key in awaited)
        raise BagInputError(
            f"{bag}: the camera rig takes the calibration of {cameras} from CameraInfo, but the bag has no "
            f"{', '.join(topics[key] for key in awaited)}; record them, or give their calibration in the rig file"
        )
    return selected


def check_bag_inputs(bag: Path, topics: dict[str, str], classes: dict[str, type]) -> None:
    """Open the bag and check its topics and types, without reading messages."""
    reader = open_bag(bag)
    try:
        _select(reader, bag, topics, classes)
    finally:
        reader.close()


def stream_messages(
    bag: Path,
    topics: dict[str, str],
    classes: dict[str, type],
    reorder_window_ns: int,
    stats: ReadStats,
) -> Iterator[BagMessage]:
    """Yield the bag's input messages in header-stamp order (within the reorder window)."""
    by_topic = {topics[key]: key for key in classes}
    reader = open_bag(bag)
    try:
        selected = _select(reader, bag, topics, classes)
        present = {c.topic for c in selected}
        stats.missing_topics = sorted(set(by_topic) - present)
        stats.skipped_connections = sorted(
            {f"{c.topic} ({c.msgtype})" for c in reader.connections if c.topic not in present}
        )
        expected_count = sum(c.msgcount for c in selected)
        yield from _reordered(_decoded(reader, selected, by_topic, stats), reorder_window_ns)
        read = sum(stats.messages_read[t] for t in present)
        if expected_count and read == 0:
            raise BagInputError(
                f"{bag}: metadata.yaml lists {expected_count} messages on the requested topics but the storage "
                "yielded none (metadata and storage disagree, e.g. on QoS profiles); open the .mcap/.db3 file directly"
            )
    finally:
        reader.close()


def _decoded(reader: AnyReader, connections: Sequence, by_topic: dict[str, str], stats: ReadStats):
    for connection, log_ns, raw in reader.messages(connections=connections):
        key = by_topic[connection.topic]
        stats.messages_read[connection.topic] += 1
        digest = stats.digests.setdefault(connection.topic, hashlib.sha256())
        digest.update(log_ns.to_bytes(8, "little", signed=True))
        digest.update(raw)
        try:
            msg = deserialize_message(bytes(raw), MESSAGE_CLASSES[connection.msgtype])
        except Exception as error:  # a message that does not decode is counted and skipped
            if isinstance(error.__context__, KeyboardInterrupt):
                # Ctrl-C or SIGTERM (``Interrupted``) raised inside the message's constructor,
                # which rclpy's C code calls and reports as a TypeError: a stop, not a bad message.
                raise error.__context__ from None
            stats.decode_failures[connection.topic] += 1
            continue
        header = getattr(msg, "header", None)
        stamp = stamp_to_ns(header.stamp) if header is not None else log_ns
        yield BagMessage(key, connection.topic, log_ns, stamp, msg, bytes(raw))


def _reordered(messages: Iterator[BagMessage], window_ns: int) -> Iterator[BagMessage]:
    """Release a message once record time has moved ``window_ns`` past its stamp."""
    heap: list[tuple[int, int, BagMessage]] = []
    counter = itertools.count()
    for message in messages:
        heapq.heappush(heap, (message.stamp_ns, next(counter), message))
        while heap and heap[0][0] <= message.log_ns - window_ns:
            yield heapq.heappop(heap)[2]
    while heap:
        yield heapq.heappop(heap)[2]
