"""ROS messages -> core types (the inputs' side; ``encoding`` is the outputs'), shared by the
live node and offline bag evaluation (bags are decoded into rclpy messages first), so both see
identical inputs.

Camera messages become a ``CameraView`` once, at intake: its stamp, raw encoding and size are
all that synchronization and the intake's checks need. Four raw 1080p cameras at 10 Hz are
about 250 MB/s; deserializing each in the callbacks (about 5 ms per image here) would compete
with inference, although the worker plans only the newest synchronized frame. So the node
subscribes to cameras with ``raw=True`` and a view reads those fields from the CDR bytes; the
message itself is deserialized (``CameraView.message``) when the worker picks the frame up.
Offline evaluation makes views of deserialized messages.

Images follow environment.md §2.5: read with ``np.frombuffer`` (zero copy).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np
from builtin_interfaces.msg import Time
from nav_msgs.msg import Odometry, Path
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, Imu

from lead_ros.camera_layout import CAMERA_NAMES, SIDE_CAMERAS, STITCHED_IMAGE, ImageInputError, is_anchor
from lead_ros.frames import quaternion_to_yaw
from lead_ros.inputs.ego_state import EgoPose
from lead_ros.inputs.sync import SyncedFrame
from lead_ros.observation import Command, Observation
from lead_ros.preprocessing import CorruptImageError, check_encoding, decode_compressed

COMPRESSED_FORMATS = ("jpeg", "jpg", "png")

# CDR encapsulation (XCDR1, as rmw_fastrtps writes): two bytes of representation id, two of
# options; the body follows, aligned relative to its own start.
CDR_BIG_ENDIAN, CDR_LITTLE_ENDIAN = b"\x00\x00", b"\x00\x01"
ENCAPSULATION_BYTES = 4


@dataclass(frozen=True)
class CameraView:
    """A camera message as the intake sees it, read once: the header stamp, a raw Image's
    encoding (None for CompressedImage), the size without decoding pixels (a raw Image's
    fields, the JPEG/PNG header of compressed data; None when it has none), and the message,
    kept serialized (the live node) or deserialized (bags)."""

    stamp_ns: int
    encoding: str | None
    size: tuple[int, int] | None
    compressed_bytes: int  # length of a CompressedImage's data; 0 for raw
    message_type: type
    serialized: bytes | None = None
    deserialized: Image | CompressedImage | None = None

    def message(self) -> Image | CompressedImage:
        """The message, deserialized now if it was kept serialized."""
        if self.deserialized is not None:
            return self.deserialized
        return deserialize_message(self.serialized, self.message_type)

    @classmethod
    def of_message(cls, msg: Image | CompressedImage) -> CameraView:
        """The view of a deserialized message (offline evaluation)."""
        if isinstance(msg, Image):
            size: tuple[int, int] | None = (int(msg.width), int(msg.height))
            return cls(stamp_to_ns(msg.header.stamp), msg.encoding, size, 0, Image, deserialized=msg)
        data = memoryview(msg.data)  # bytes or array("B"): no copy
        return cls(
            stamp_to_ns(msg.header.stamp),
            None,
            compressed_image_size(data),
            len(data),
            CompressedImage,
            deserialized=msg,
        )

    @classmethod
    def of_serialized(cls, data: bytes, message_type: type, name: str) -> CameraView:
        """The view of an Image/CompressedImage in CDR bytes (``raw=True`` subscriptions);
        ImageInputError naming the camera when the bytes are not such a message."""
        encapsulation = bytes(data[:2])
        if encapsulation not in (CDR_LITTLE_ENDIAN, CDR_BIG_ENDIAN):  # another representation: decode fully
            return cls.of_message(deserialize_message(data, message_type))
        endian = "<" if encapsulation == CDR_LITTLE_ENDIAN else ">"
        body = memoryview(data)[ENCAPSULATION_BYTES:]
        compressed_bytes = 0
        try:
            sec, nanosec = struct.unpack_from(endian + "iI", body, 0)
            _, offset = _string(body, 8, endian)  # header.frame_id
            if message_type is Image:
                offset = (offset + 3) & ~3
                height, width = struct.unpack_from(endian + "II", body, offset)
                encoding: str | None = _string(body, offset + 8, endian)[0]
                size: tuple[int, int] | None = (width, height)
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
        stamp_ns = sec * 1_000_000_000 + nanosec
        return cls(stamp_ns, encoding, size, compressed_bytes, message_type, serialized=bytes(data))


def _string(body: memoryview, offset: int, endian: str) -> tuple[str, int]:
    """A CDR string at ``offset`` (uint32 length including the NUL, then the bytes)."""
    offset = (offset + 3) & ~3
    (length,) = struct.unpack_from(endian + "I", body, offset)
    start = offset + 4
    if length == 0 or start + length > len(body):
        raise ValueError(f"string length {length} runs past the message")
    return bytes(body[start : start + length - 1]).decode("utf-8"), start + length


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


def stamp_to_ns(stamp: Time) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def image_to_array(msg: Image, name: str) -> tuple[np.ndarray, str]:
    """A raw rgb8/bgr8 Image as an (H, W, 3) uint8 view and its encoding."""
    check_encoding(msg.encoding, name)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0 or step < 3 * width:
        raise ImageInputError(f"{name}: invalid geometry {width}x{height} with step {step}")
    data = np.frombuffer(msg.data, np.uint8)
    if data.size != step * height:
        raise ImageInputError(f"{name}: data has {data.size} bytes, expected step*height = {step * height}")
    rows = data.reshape(height, step)
    return rows[:, : 3 * width].reshape(height, width, 3), msg.encoding


def compressed_to_array(msg: CompressedImage, name: str) -> tuple[np.ndarray, str]:
    """A jpeg/png CompressedImage decoded to (H, W, 3) uint8 BGR."""
    fmt = msg.format.lower()
    if not any(f in fmt for f in COMPRESSED_FORMATS):
        raise ImageInputError(f"{name}: unsupported compressed format {msg.format!r}; supported: jpeg, png")
    if len(msg.data) == 0:
        raise ImageInputError(f"{name}: empty compressed data ({msg.format!r})")
    return decode_compressed(msg.data, f"{name} ({msg.format!r})"), "bgr8"


def camera_to_array(camera: CameraView, name: str) -> tuple[np.ndarray, str]:
    """A camera's pixels: (H, W, 3) uint8 and their encoding (compressed data decodes to bgr8)."""
    msg = camera.message()
    if isinstance(msg, CompressedImage):
        return compressed_to_array(msg, name)
    return image_to_array(msg, name)


def odometry_speed_yaw_rate(msg: Odometry) -> tuple[float, float]:
    """Planar speed (norm of the twist's x, y) and yaw rate; may be NaN/inf (caller checks)."""
    linear = msg.twist.twist.linear
    return math.hypot(linear.x, linear.y), float(msg.twist.twist.angular.z)


def odometry_pose(msg: Odometry) -> EgoPose:
    """The pose in the odometry frame (header.frame_id); NaN components (a zero quaternion
    included) mark it invalid, which the pose track records as such."""
    position, q = msg.pose.pose.position, msg.pose.pose.orientation
    yaw = quaternion_to_yaw(q.x, q.y, q.z, q.w)
    return EgoPose(float(position.x), float(position.y), float(position.z), yaw)


def path_points(msg: Path) -> np.ndarray:
    """A Path's positions as (N, 2) x, y (orientations and z are not used)."""
    return np.array([(p.pose.position.x, p.pose.position.y) for p in msg.poses], dtype=np.float64).reshape(-1, 2)


def imu_planar_acceleration(msg: Imu) -> float:
    acc = msg.linear_acceleration
    return math.hypot(acc.x, acc.y)


def camera_info_fields(msg: CameraInfo) -> dict:
    """A CameraInfo's calibration fields by name (``lead_ros.cameras.rig`` checks them)."""
    roi = msg.roi
    window = {"x_offset": roi.x_offset, "y_offset": roi.y_offset, "width": roi.width, "height": roi.height}
    return {
        "width": msg.width,
        "height": msg.height,
        "distortion_model": msg.distortion_model,
        "k": list(msg.k),
        "d": list(msg.d),
        "p": list(msg.p),
        "binning_x": msg.binning_x,
        "binning_y": msg.binning_y,
        "roi": window,
    }


def frame_to_observation(
    frame: SyncedFrame, command: Command, fill_corrupt: bool = False
) -> tuple[Observation, tuple[str, ...]]:
    """Decode a synchronized frame's images into an Observation (None for cameras filled
    black), and name the cameras filled black: those the frame lacks and, with
    ``fill_corrupt`` (``missing_camera_policy: fill_black``), side cameras whose compressed
    data is corrupt, which count as missing. A corrupt anchor camera always fails the frame."""
    decoded: dict[str, tuple[np.ndarray, str]] = {}
    filled = list(frame.filled)
    for name, msg in frame.cameras.items():
        if msg is None:
            continue
        try:
            decoded[name] = camera_to_array(msg, f"camera {name}")
        except CorruptImageError:
            if not fill_corrupt or is_anchor(name):
                raise
            filled.append(name)
    if STITCHED_IMAGE in decoded:
        image, encoding = decoded[STITCHED_IMAGE]
        return Observation(frame.speed_mps, frame.acceleration_mps2, command, image=image, encoding=encoding), ()
    encodings = {encoding for _, encoding in decoded.values()}
    encoding = encodings.pop() if len(encodings) == 1 else "rgb8"
    cameras = []
    for name in CAMERA_NAMES:
        if name not in decoded:
            cameras.append(None)  # filled black by the preprocessing
            continue
        image, own = decoded[name]
        cameras.append(image[..., ::-1] if own != encoding else image)
    observation = Observation(
        frame.speed_mps, frame.acceleration_mps2, command, cameras=tuple(cameras), encoding=encoding
    )
    return observation, tuple(n for n in SIDE_CAMERAS if n in filled)
