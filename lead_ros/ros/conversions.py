"""ROS messages <-> core types. The live node and offline bag evaluation both convert
through here (bags are decoded into rclpy messages first), so they see identical inputs.

Images follow environment.md §2.5: read with ``np.frombuffer`` (zero copy), write with
``array.array('B', ...)``; never assign an ndarray or memoryview to ``msg.data``.
"""

from __future__ import annotations

import array
import math

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point, Pose, PoseStamped, Quaternion, Vector3
from nav_msgs.msg import Odometry, Path
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, Imu
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from lead_ros.frames import base_link_to_odometry, quaternion_to_yaw, yaw_to_quaternion
from lead_ros.inputs.ego_state import EgoPose
from lead_ros.inputs.sync import SyncedFrame
from lead_ros.observation import Command, Observation, Plan
from lead_ros.preprocessing import CorruptImageError, ImageInputError, check_encoding, decode_compressed

COMPRESSED_FORMATS = ("jpeg", "jpg", "png")
BASE_LINK = EgoPose(0.0, 0.0, 0.0, 0.0)  # the vehicle in its own frame


def stamp_to_ns(stamp: Time) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(ns: int) -> Time:
    return Time(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


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


def camera_to_array(msg: Image | CompressedImage, name: str) -> tuple[np.ndarray, str]:
    if not isinstance(msg, (Image, CompressedImage)):  # kept serialized by the live node
        msg = msg.deserialize()
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
    return {"width": msg.width, "height": msg.height, "distortion_model": msg.distortion_model, "k": list(msg.k),
            "d": list(msg.d), "p": list(msg.p), "binning_x": msg.binning_x, "binning_y": msg.binning_y,
            "roi": window}  # fmt: skip


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
            if not fill_corrupt or name in ("f0", "image"):
                raise
            filled.append(name)
    if "image" in decoded:
        image, encoding = decoded["image"]
        return Observation(frame.speed_mps, frame.acceleration_mps2, command, image=image, encoding=encoding), ()
    encodings = {encoding for _, encoding in decoded.values()}
    encoding = encodings.pop() if len(encodings) == 1 else "rgb8"
    cameras = []
    for name in ("l0", "f0", "r0", "b0"):
        if name not in decoded:
            cameras.append(None)  # filled black by the preprocessing
            continue
        image, own = decoded[name]
        cameras.append(image[..., ::-1] if own != encoding else image)
    observation = Observation(frame.speed_mps, frame.acceleration_mps2, command, cameras=tuple(cameras),
                              encoding=encoding)  # fmt: skip
    return observation, tuple(n for n in ("l0", "r0", "b0") if n in filled)


def plan_to_path(plan: Plan, stamp_ns: int, frame_id: str, prepend_origin: bool = False) -> Path:
    """ISO 8855 poses stamped at anchor + t; z = 0, orientation from the heading."""
    return _poses_to_path(plan.times_s, plan.waypoints, plan.headings, stamp_ns, frame_id, prepend_origin, BASE_LINK)


def plan_to_odometry_path(
    plan: Plan, pose: EgoPose, stamp_ns: int, frame_id: str, prepend_origin: bool = False
) -> Path:
    """The poses of ``plan_to_path`` composed with the ego pose at the anchor stamp: in the
    odometry frame ``frame_id``, at the pose's height; same stamps."""
    points, headings = base_link_to_odometry(pose.xy, pose.yaw, plan.waypoints, plan.headings)
    return _poses_to_path(plan.times_s, points, headings, stamp_ns, frame_id, prepend_origin, pose)


def _poses_to_path(
    times, points, headings, stamp_ns: int, frame_id: str, prepend_origin: bool, origin: EgoPose
) -> Path:
    """Poses at anchor + t; ``origin`` (the vehicle at t = 0) is prepended when asked for."""
    path = Path(header=Header(stamp=ns_to_stamp(stamp_ns), frame_id=frame_id))
    times, points, headings = list(times), np.asarray(points).tolist(), np.asarray(headings).tolist()
    if prepend_origin:
        times, points, headings = [0.0, *times], [list(origin.xy), *points], [origin.yaw, *headings]
    for t, (x, y), q in zip(times, points, yaw_to_quaternion(np.array(headings)).tolist(), strict=True):
        pose = Pose(position=Point(x=x, y=y, z=origin.z), orientation=Quaternion(x=q[0], y=q[1], z=q[2], w=q[3]))
        header = Header(stamp=ns_to_stamp(stamp_ns + round(t * 1e9)), frame_id=frame_id)
        path.poses.append(PoseStamped(header=header, pose=pose))
    return path


def plan_to_markers(plan: Plan, stamp_ns: int, frame_id: str, namespace: str = "lead_planner") -> MarkerArray:
    """A line strip through the waypoints and one heading arrow per waypoint."""
    header = Header(stamp=ns_to_stamp(stamp_ns), frame_id=frame_id)
    line = Marker(header=header, ns=f"{namespace}/path", id=0, type=Marker.LINE_STRIP, action=Marker.ADD)
    line.pose.orientation.w = 1.0
    line.scale.x = 0.15
    line.color = ColorRGBA(r=1.0, g=0.25, b=0.1, a=1.0)
    line.points = [Point(x=0.0, y=0.0, z=0.0)] + [Point(x=x, y=y, z=0.0) for x, y in plan.waypoints.tolist()]
    markers = [line]
    for i, ((x, y), q) in enumerate(
        zip(plan.waypoints.tolist(), yaw_to_quaternion(plan.headings).tolist(), strict=True)
    ):
        arrow = Marker(header=header, ns=f"{namespace}/headings", id=i, type=Marker.ARROW, action=Marker.ADD)
        arrow.pose = Pose(position=Point(x=x, y=y, z=0.0), orientation=Quaternion(x=q[0], y=q[1], z=q[2], w=q[3]))
        arrow.scale = Vector3(x=1.0, y=0.12, z=0.12)
        arrow.color = ColorRGBA(r=1.0, g=0.85, b=0.3, a=1.0)
        markers.append(arrow)
    return MarkerArray(markers=markers)


def array_to_image(image: np.ndarray, stamp_ns: int, frame_id: str, encoding: str = "rgb8") -> Image:
    height, width = image.shape[:2]
    msg = Image(
        header=Header(stamp=ns_to_stamp(stamp_ns), frame_id=frame_id),
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=0,
        step=3 * width,
    )
    msg.data = array.array("B", np.ascontiguousarray(image).tobytes())
    return msg


def camera_message_type(transport: str) -> type:
    """The camera message type of an image_transport setting."""
    return {"raw": Image, "compressed": CompressedImage}[transport]
