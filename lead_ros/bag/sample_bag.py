"""The sample drive shipped in ``data/sample_bag``: 3 s at 10 Hz of four procedurally drawn
1080x1920 road cameras (JPEG CompressedImage), 50 Hz odometry and IMU running 4.7 s past the
last frame (so every frame has 4 s of logged future), a route (``nav_msgs/Path`` in the
odometry frame) and a route command that changes, on the node's default input topics.

The vehicle follows the route's centerline exactly: a straight, a left curve, a longer right
curve (``ROUTE_SEGMENTS``). With NAVSIM's rule (``lead_ros.inputs.route``) the derived command goes
straight -> left -> right over the frames; the UInt8 command topic carries the same
sequence for ``command_input: topic``. Deterministic: regenerating it gives the same bytes
(rosbags' CDR writer, fixed stamps, OpenCV JPEG).

With a camera rig (``make-sample-bag --rig``) the same drive is written as that rig's cameras
would see it: each nuPlan camera image warped into the rig's camera (rotation only, black where
the nuPlan camera saw nothing), written losslessly (PNG) so that only interpolation separates
the two, with the rig's CameraInfo on each camera's ``camera_info`` topic."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import get_typestore

from lead_ros.bag.reader import default_topics
from lead_ros.camera_layout import CAMERA_NAMES
from lead_ros.cameras.reprojection import remap_tables, virtual_rig
from lead_ros.cameras.rig import CameraRig
from lead_ros.ros.distro import PORTABLE_BAG_VERSION, RUNNING
from lead_ros.ros.topics import CAMERA_INFO_SUFFIX

START_NS = 1_700_000_000 * 1_000_000_000
CAMERA_RATE_HZ = 10.0
STATE_RATE_HZ = 50.0
DURATION_S = 3.0
ODOMETRY_TAIL_S = 4.8  # odometry past the end of the camera stream: >= 4.5 s past the last frame
JPEG_QUALITY = 80
CAMERA_SIZE = (1080, 1920)
ODOMETRY_FRAME = "odom"
# The route centerline as (length m, curvature 1/m) pieces from ROUTE_ORIGIN (x, y, yaw in
# the odometry frame), sampled every ROUTE_SPACING_M; the vehicle starts START_ARC_M along it.
ROUTE_SEGMENTS = ((22.0, 0.0), (6.0, 0.08), (20.0, -0.05), (400.0, 0.0))
ROUTE_ORIGIN = (12.0, -4.0, 0.3)
ROUTE_SPACING_M = 1.0
START_ARC_M = 5.0
# (time s, command) on the UInt8 topic: what the route gives (straight, left, right).
COMMANDS = ((0.0, 1), (0.6, 0), (2.4, 2))


def speed_at(t: float) -> float:
    return 7.5 + 0.3 * t


def arc_length_at(t: float) -> float:
    """Distance driven along the route at time t (matches ``speed_at``)."""
    return START_ARC_M + 7.5 * t + 0.15 * t * t


def curvature_at(s: float) -> float:
    start = 0.0
    for length, curvature in ROUTE_SEGMENTS:
        if s < start + length:
            return curvature
        start += length
    return ROUTE_SEGMENTS[-1][1]


def route_pose(s: float) -> tuple[float, float, float]:
    """(x, y, yaw) on the route centerline at arc length ``s``, exactly (piecewise arcs)."""
    x, y, yaw = ROUTE_ORIGIN
    start = 0.0
    for length, curvature in ROUTE_SEGMENTS:
        step = min(max(s - start, 0.0), length)
        if curvature == 0.0:
            x, y = x + step * math.cos(yaw), y + step * math.sin(yaw)
        else:
            x += (math.sin(yaw + curvature * step) - math.sin(yaw)) / curvature
            y += (math.cos(yaw) - math.cos(yaw + curvature * step)) / curvature
        yaw += curvature * step
        start += length
        if s <= start:
            break
    return x, y, yaw


def route_points() -> np.ndarray:
    """The route as published: (N, 2) centerline points every ROUTE_SPACING_M."""
    total = sum(length for length, _ in ROUTE_SEGMENTS)
    return np.array([route_pose(s)[:2] for s in np.arange(0.0, total + 1e-9, ROUTE_SPACING_M)])


def draw_camera(index: int, t: float, size: tuple[int, int] = CAMERA_SIZE) -> np.ndarray:
    """Camera ``index`` (0 l0, 1 f0, 2 r0, 3 b0) at time ``t``: RGB uint8."""
    h, w = size
    horizon = int(h * 0.45)
    image = np.empty((h, w, 3), np.uint8)
    rows = np.linspace(0.0, 1.0, horizon)[:, None]
    image[:horizon] = (np.array([110, 150, 210]) * (1 - 0.4 * rows)[..., None]).astype(np.uint8)
    image[horizon:] = (70 + 10 * index, 110, 60)
    travelled = arc_length_at(t) - START_ARC_M  # metres, matches speed_at
    if index in (1, 3):  # front and back: the road ahead/behind with a moving dashed line
        road = np.array([[w * 0.46, horizon], [w * 0.54, horizon], [w * 0.95, h], [w * 0.05, h]], np.int32)
        cv2.fillPoly(image, [road], (85, 85, 90))
        phase = (travelled * (1 if index == 1 else -1)) % 4.0
        for k in range(12):
            near = (k * 4.0 + phase) / 48.0
            far = (k * 4.0 + phase + 2.0) / 48.0
            y0, y1 = int(h - (h - horizon) * near), int(h - (h - horizon) * far)
            cv2.line(image, (w // 2, y0), (w // 2, y1), (235, 235, 235), max(2, int(18 * (1 - near))))
        shift = int(80 * math.sin(0.7 * t + index))
        cv2.rectangle(image, (w // 3 + shift, horizon - 140), (w // 3 + 260 + shift, horizon + 60), (180, 40, 40), -1)
    else:  # sides: kerb and buildings sliding past
        direction = 1 if index == 0 else -1
        cv2.line(image, (0, int(h * 0.8)), (w, int(h * 0.7)), (200, 200, 200), 14)
        for k in range(6):
            x = int((k * 420 + direction * travelled * 60) % (w + 400)) - 400
            top = horizon - 200 - 40 * ((k + index) % 3)
            colour = (120 + 20 * k % 100, 100 + 30 * index, 90 + 15 * k)
            cv2.rectangle(image, (x, top), (x + 300, horizon + 40), colour, -1)
    return image


def rig_warps(rig: CameraRig) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per camera, the float maps that take a nuPlan camera image (the drawn one) to what the
    rig's camera sees: each rig pixel's ray, rotated into the nuPlan camera and projected there."""
    nuplan = virtual_rig("nuplan")
    warps = {}
    for name, camera in rig.cameras.items():
        width, height = rig.size(name)
        columns, rows = np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64)
        warps[name], _ = remap_tables(nuplan.cameras[name], camera, columns, rows)
    return warps


def write_sample_bag(out: Path, duration_s: float = DURATION_S, rig: CameraRig | None = None) -> Path:
    """Write the bag directory ``out`` (it must not exist yet); longer drives for benchmarks;
    with ``rig``, as that rig's cameras see the drive (see the module doc). In the rosbag2
    metadata version that every supported distribution's ``ros2 bag`` reads
    (``PORTABLE_BAG_VERSION``): the sample is for all of them."""
    if rig is not None and rig.from_topics:
        raise ValueError(
            f"--rig: {', '.join(rig.from_topics)} take their calibration from CameraInfo; the sample "
            "needs every camera's calibration in the rig file"
        )
    typestore = get_typestore(RUNNING.typestore)
    types = typestore.types
    Time, Header = types["builtin_interfaces/msg/Time"], types["std_msgs/msg/Header"]
    topics = default_topics()

    def header(ns: int, frame: str):
        return Header(stamp=Time(sec=ns // 10**9, nanosec=ns % 10**9), frame_id=frame)

    warps = rig_warps(rig) if rig is not None else {}
    events = []  # (record time, topic, message type, message)
    for i in range(round(duration_s * CAMERA_RATE_HZ)):
        t = i / CAMERA_RATE_HZ
        ns = START_NS + round(t * 1e9)
        for k, name in enumerate(CAMERA_NAMES):
            image = draw_camera(k, t)[..., ::-1]  # BGR, as OpenCV encodes
            if rig is None:
                ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                encoding = "rgb8; jpeg compressed bgr8"
            else:
                warped = cv2.remap(image, *warps[name], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
                ok, data = cv2.imencode(".png", warped)
                encoding = "rgb8; png compressed bgr8"
                events.append(
                    (
                        ns + k,
                        topics[f"{name}{CAMERA_INFO_SUFFIX}"],
                        "sensor_msgs/msg/CameraInfo",
                        _camera_info(types, header(ns, f"cam_{name}"), rig, name),
                    )
                )
            assert ok
            msg = types["sensor_msgs/msg/CompressedImage"](
                header=header(ns, f"cam_{name}"), format=encoding, data=data.ravel()
            )
            events.append((ns + k, topics[name], "sensor_msgs/msg/CompressedImage", msg))
    vector3, quaternion = types["geometry_msgs/msg/Vector3"], types["geometry_msgs/msg/Quaternion"]
    point, pose = types["geometry_msgs/msg/Point"], types["geometry_msgs/msg/Pose"]
    period = 1.0 / STATE_RATE_HZ
    for j in range(round((duration_s + ODOMETRY_TAIL_S) * STATE_RATE_HZ)):
        t = j * period - 0.2  # state starts before the first frame
        ns = START_NS + round(t * 1e9) + 7_000_000  # not aligned with the cameras
        t_ns = (ns - START_NS) / 1e9
        v = speed_at(t_ns)
        arc = arc_length_at(t_ns)
        r = v * curvature_at(arc)
        x, y, yaw = route_pose(arc)
        twist = types["geometry_msgs/msg/Twist"](linear=vector3(x=v, y=0.0, z=0.0), angular=vector3(x=0.0, y=0.0, z=r))
        odometry = types["nav_msgs/msg/Odometry"](
            header=header(ns, ODOMETRY_FRAME),
            child_frame_id="base_link",
            pose=types["geometry_msgs/msg/PoseWithCovariance"](
                pose=pose(
                    position=point(x=x, y=y, z=0.0),
                    orientation=quaternion(x=0.0, y=0.0, z=math.sin(yaw / 2), w=math.cos(yaw / 2)),
                ),
                covariance=np.zeros(36),
            ),
            twist=types["geometry_msgs/msg/TwistWithCovariance"](twist=twist, covariance=np.zeros(36)),
        )
        events.append((ns, topics["odometry"], "nav_msgs/msg/Odometry", odometry))
        imu = types["sensor_msgs/msg/Imu"](
            header=header(ns, "imu"),
            orientation=quaternion(x=0.0, y=0.0, z=0.0, w=1.0),
            orientation_covariance=np.zeros(9),
            angular_velocity=vector3(x=0.0, y=0.0, z=r),
            angular_velocity_covariance=np.zeros(9),
            linear_acceleration=vector3(x=0.3, y=v * r, z=9.81),
            linear_acceleration_covariance=np.zeros(9),
        )
        events.append((ns + 1, topics["imu"], "sensor_msgs/msg/Imu", imu))
    route_ns = START_NS - 500_000_000  # published once, before the drive (transient local)
    identity = quaternion(x=0.0, y=0.0, z=0.0, w=1.0)  # planners often leave route orientations unset
    route = types["nav_msgs/msg/Path"](
        header=header(route_ns, ODOMETRY_FRAME),
        poses=[
            types["geometry_msgs/msg/PoseStamped"](
                header=header(route_ns, ODOMETRY_FRAME),
                pose=pose(position=point(x=px, y=py, z=0.0), orientation=identity),
            )
            for px, py in route_points().tolist()
        ],
    )
    events.append((route_ns, topics["route"], "nav_msgs/msg/Path", route))
    for t, value in COMMANDS:
        events.append(
            (
                START_NS + round(t * 1e9) - 1,
                topics["command"],
                "std_msgs/msg/UInt8",
                types["std_msgs/msg/UInt8"](data=value),
            )
        )
    events.sort(key=lambda e: (e[0], e[1]))
    writer = Writer(out, version=PORTABLE_BAG_VERSION, storage_plugin=StoragePlugin.MCAP)
    with writer:
        connections = {}
        for _, topic, msgtype, _ in events:
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msgtype, typestore=typestore)
        for ns, topic, msgtype, msg in events:
            writer.write(connections[topic], ns, typestore.serialize_cdr(msg, msgtype))
    return out


def _camera_info(types, header, rig: CameraRig, name: str):
    """The rig camera's calibration as a CameraInfo (rosbags' message class)."""
    calibration = rig.cameras[name].calibration
    projection = np.zeros((3, 4))
    projection[:, :3] = calibration.camera_matrix
    return types["sensor_msgs/msg/CameraInfo"](
        header=header,
        height=calibration.height,
        width=calibration.width,
        distortion_model=calibration.distortion_model,
        d=calibration.distortion.copy(),
        k=calibration.camera_matrix.ravel().copy(),
        r=np.eye(3).ravel(),
        p=projection.ravel(),
        binning_x=0,
        binning_y=0,
        roi=types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False),
    )
