"""Camera messages kept serialized (CDR bytes) until the worker plans them.

Four raw 1080p cameras at 10 Hz are about 250 MB/s. Deserializing each one in the callbacks
(about 5 ms per image here) competes with inference for the CPU, although the worker plans
only the newest synchronized frame and drops the rest. So the node subscribes to cameras
with ``raw=True``, reads only what synchronization needs from the CDR bytes (the header
stamp, and a raw Image's encoding), and deserializes the cameras of a frame when the worker
picks it up. Offline evaluation passes deserialized messages; both kinds go through
``camera_header`` and ``camera_size``; the worker deserializes in
``conversions.camera_to_array``.
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
    size: tuple[int, int] | None  # (width, height): a raw Image's fields, a JPEG/PNG header's
    compressed_bytes: int = 0  # length of a CompressedImage's data

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
        stamp_ns, encoding = camera_header(message)
        return SerializedCamera(bytes(data), message_type, stamp_ns, encoding, camera_size(message),
                                len(getattr(message, "data", b"")) if encoding is None else 0)  # fmt: skip
    endian = "<" if encapsulation == CDR_LITTLE_ENDIAN else ">"
    body = memoryview(data)[ENCAPSULATION_BYTES:]
    compressed_bytes = 0
    try:
        sec, nanosec = struct.unpack_from(endian + "iI", body, 0)
        _, offset = _string(body, 8, endian)  # header.frame_id
        if message_type is Image:
            offset = (offset + 3) & ~3
            height, width = struct.unpack_from(endian + "II", body, offset)
            encoding, _ = _string(body, offset + 8, endian)
            size = (width, height)
        else:  # CompressedImage: format, then the data sequence
            encoding = None
            _, offset = _string(body, offset, endian)
            offset = (offset + 3) & ~3
            (compressed_bytes,) = struct.unpack_from(endian + "I", body, offset)
            size = compressed_image_size(body[offset + 4 : offset + 4 + compressed_bytes])
    except (struct.error, ValueError, UnicodeDecodeError) as error:
        raise ImageInputError(f"{name}: not a serialized {message_type.__name__} ({error})") from None
    if nanosec >= 1_000_000_000:
        raise ImageInputError(f"{name}: header stamp nanosec {nanosec} is not below 1e9")
    return SerializedCamera(bytes(data), message_type, sec * 1_000_000_000 + nanosec, encoding, size, compressed_bytes)


def camera_header(msg) -> tuple[int, str | None]:
    """(stamp in ns, raw encoding or None) of a camera message, serialized or not."""
    if isinstance(msg, SerializedCamera):
        return msg.stamp_ns, msg.encoding
    return stamp_to_ns(msg.header.stamp), getattr(msg, "encoding", None)


def camera_size(msg) -> tuple[int, int] | None:
    """(width, height) of a camera message, serialized or not, without decoding pixels:
    a raw Image's fields, or the JPEG/PNG header of compressed data (None if it has none)."""
    if isinstance(msg, SerializedCamera):
        return msg.size
    if isinstance(msg, Image):
        return int(msg.width), int(msg.height)
    return compressed_image_size(memoryview(msg.data))  # bytes or array("B"): no copy


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, progressive, lossless, ...): they carry the size.
JPEG_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def compressed_image_size(data: memoryview) -> tuple[int, int] | None:
    """(width, height) from a PNG IHDR or a JPEG start-of-frame segment; None otherwise."""
    if bytes(data[:8]) == PNG_SIGNATURE and bytes(data[12:16]) == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack_from(">II", data, 16)
        return width, height
    if bytes(data[:2]) != b"\xff\xd8":
        return None
    index = 2
    while index + 9 <= len(data):
        if data[index] != 0xFF:
            return None
        marker = data[index + 1]
        if marker == 0xFF:  # fill byte
            index += 1
            continue
        if marker in JPEG_SOF_MARKERS:
            height, width = struct.unpack_from(">HH", data, index + 5)
            return width, height
        (length,) = struct.unpack_from(">H", data, index + 2)
        index += 2 + length
    return None
