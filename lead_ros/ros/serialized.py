"""Camera messages kept serialized (CDR bytes) until the worker plans them.

Four raw 1080p cameras at 10 Hz are about 250 MB/s. Deserializing each one in the callbacks
(about 5 ms per image here) competes with inference for the CPU, although the worker plans
only the newest synchronized frame and drops the rest. So the node subscribes to cameras
with ``raw=True``, reads only what synchronization needs from the CDR bytes (the header
stamp, and a raw Image's encoding), and deserializes the cameras of a frame when the worker
picks it up. Offline evaluation passes deserialized messages; both kinds go through
``camera_header`` and ``as_message``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from rclpy.serialization import deserialize_message
from sensor_msgs.msg import Image

from lead_ros.preprocessing import ImageInputError
from lead_ros.ros.conversions import stamp_to_ns

# CDR encapsulation (XCDR1, as rmw_fastrtps writes): two bytes of representation id, two of
# options; the body follows, aligned relative to its own start.
CDR_BIG_ENDIAN, CDR_LITTLE_ENDIAN = b"\x00\x00", b"\x00\x01"
ENCAPSULATION_BYTES = 4


@dataclass(frozen=True)
class SerializedCamera:
    data: bytes
    message_type: type
    stamp_ns: int
    encoding: str | None  # a raw Image's encoding; None for CompressedImage

    def deserialize(self):
        return deserialize_message(self.data, self.message_type)


def _string(body: memoryview, offset: int, endian: str) -> tuple[str, int]:
    """A CDR string at ``offset`` (uint32 length including the NUL, then the bytes)."""
    offset = (offset + 3) & ~3
    (length,) = struct.unpack_from(endian + "I", body, offset)
    start = offset + 4
    if length == 0 or start + length > len(body):
        raise ValueError(f"string length {length} runs past the message")
    return bytes(body[start : start + length - 1]).decode("utf-8"), start + length


def read_serialized_camera(data: bytes, message_type: type, name: str) -> SerializedCamera:
    """The stamp (and raw encoding) of a serialized Image/CompressedImage; ImageInputError
    naming the camera when the bytes are not such a message."""
    encapsulation = bytes(data[:2])
    if encapsulation not in (CDR_LITTLE_ENDIAN, CDR_BIG_ENDIAN):  # another representation: decode fully
        message = deserialize_message(data, message_type)
        return SerializedCamera(bytes(data), message_type, *camera_header(message))
    endian = "<" if encapsulation == CDR_LITTLE_ENDIAN else ">"
    body = memoryview(data)[ENCAPSULATION_BYTES:]
    try:
        sec, nanosec = struct.unpack_from(endian + "iI", body, 0)
        _, offset = _string(body, 8, endian)  # header.frame_id
        encoding = None
        if message_type is Image:
            offset = (offset + 3) & ~3
            encoding, _ = _string(body, offset + 8, endian)  # after height, width
    except (struct.error, ValueError, UnicodeDecodeError) as error:
        raise ImageInputError(f"{name}: not a serialized {message_type.__name__} ({error})") from None
    if nanosec >= 1_000_000_000:
        raise ImageInputError(f"{name}: header stamp nanosec {nanosec} is not below 1e9")
    return SerializedCamera(bytes(data), message_type, sec * 1_000_000_000 + nanosec, encoding)


def camera_header(msg) -> tuple[int, str | None]:
    """(stamp in ns, raw encoding or None) of a camera message, serialized or not."""
    if isinstance(msg, SerializedCamera):
        return msg.stamp_ns, msg.encoding
    return stamp_to_ns(msg.header.stamp), getattr(msg, "encoding", None)


def as_message(msg):
    """The deserialized camera message."""
    return msg.deserialize() if isinstance(msg, SerializedCamera) else msg
