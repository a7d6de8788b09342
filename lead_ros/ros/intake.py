"""Input messages -> planning events, shared by the live node and offline bag evaluation.

Both feed every camera, odometry, IMU and command message through ``InputIntake`` (with
the node clock, or the bag's record time, as ``now_ns``), so a bag evaluation makes the
same synchronization and command decisions the node makes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nav_msgs.msg import Odometry
from nav_msgs.msg import Path as PathMsg
from sensor_msgs.msg import CameraInfo, Imu
from std_msgs.msg import UInt8

from lead_ros.cameras.calibrations import RigCalibrations
from lead_ros.cameras.reprojection import Reprojection
from lead_ros.cameras.rig import calibration_from_fields
from lead_ros.inputs.command import CommandState, CommandTracker
from lead_ros.inputs.route import MAX_POINTS as MAX_ROUTE_POINTS
from lead_ros.inputs.route import RouteRule, RouteTracker, route_problem
from lead_ros.inputs.sync import FrameSynchronizer, SyncedFrame, SyncFailure, SyncPolicy
from lead_ros.node_config import NodeConfig
from lead_ros.observation import Command
from lead_ros.preprocessing import (
    ImageInputError,
    check_camera_limits,
    check_camera_size,
    check_encoding,
    check_equal_sizes,
    check_stitched_size,
)
from lead_ros.ros.decoding import (
    CameraView,
    camera_info_fields,
    imu_planar_acceleration,
    odometry_pose,
    odometry_speed_yaw_rate,
    path_points,
    stamp_to_ns,
)
from lead_ros.ros.topics import CAMERA_INFO_SUFFIX

BAD_INPUT = "bad_input"
CORRUPT_IMAGE = "corrupt_image"  # compressed data the decoder could only repair
CAMERA_INFO_MISSING = "camera_info_missing"  # a rig camera's CameraInfo has not arrived yet
# Odometry speeds above this are implausible for a road vehicle (252 km/h): a unit or
# encoding error upstream, rejected rather than planned with.
MAX_SPEED_MPS = 70.0


@dataclass(frozen=True)
class ReadyFrame:
    """A synchronized frame with the route command in force when it completed."""

    frame: SyncedFrame
    command: Command
    command_source: str  # "received", or "default: <why>"
    command_input: str = "topic"  # or "route"
    route_lateral_m: float | None = None  # command_input route: the rule's lateral value
    odometry_frame: str | None = None  # header.frame_id of the odometry (frame of frame.pose)


@dataclass(frozen=True)
class InputRejected:
    """A message that was not used; ``input`` names it (camera f0, odometry, ...)."""

    input: str
    reason: str
    detail: str
    fails_frame: bool  # True when it costs a frame (an anchor camera), else only the sample
    stamp_ns: int | None = None  # an anchor camera's header stamp, when it has a usable one


Event = ReadyFrame | SyncFailure | InputRejected


class InputIntake:
    def __init__(self, config: NodeConfig) -> None:
        self.policy = SyncPolicy.from_config(config)
        self.sync = FrameSynchronizer(self.policy)
        self.command_input = config.command_input
        default = Command(config.default_command)
        self.commands = CommandTracker(default, config.command_timeout_s)
        rule = RouteRule(config.route_lookahead_m, config.route_lateral_threshold_m, config.route_max_offset_m)
        self.route = RouteTracker(default, rule, config.command_timeout_s)
        self.odometry_frame: str | None = None  # of the latest odometry message
        self.max_camera_side_px, self.max_camera_megapixels = config.max_camera_side_px, config.max_camera_megapixels
        # The camera rig's calibrations (set at configure); None: the cameras are taken to be
        # nuPlan's (16:9, all the same size).
        self.calibrations: RigCalibrations | None = None

    def reset_frames(self) -> None:
        """Forget buffered cameras, odometry and IMU (the command stays in force): frames
        resume from fresh messages, e.g. when the node is activated again."""
        self.sync = FrameSynchronizer(self.policy)

    @property
    def camera_names(self) -> tuple[str, ...]:
        return (self.policy.anchor, *self.policy.side_cameras)

    def camera(self, name: str, camera: CameraView, now_ns: int, unseen_before: bool = False) -> list[Event]:
        """A camera message's view (``decoding.CameraView``): checked, then synchronized;
        ``unseen_before``: images of this camera before it were never taken (live node)."""
        stamp_ns, encoding = camera.stamp_ns, camera.encoding
        if stamp_ns <= 0:
            return [
                self._bad_camera(name, f"camera {name}: header stamp {stamp_ns / 1e9:g} s is not set (must be > 0)")
            ]
        try:
            if encoding is not None:  # raw Image only; compressed data is checked on decode
                check_encoding(encoding, f"camera {name}")
            self._check_size(name, camera)
        except ImageInputError as error:
            return [self._bad_camera(name, error, stamp_ns)]
        return self._wrap(self.sync.add_camera(name, stamp_ns, camera, now_ns, unseen_before))

    def _check_size(self, name: str, camera: CameraView) -> None:
        """Geometry at intake, from the message fields or the JPEG/PNG header (no decoding),
        so that frames the worker drops are checked and counted too."""
        size = camera.size
        label = f"camera {name}"
        if size is None:
            empty = camera.compressed_bytes == 0
            what = "empty compressed data" if empty else "compressed data has no JPEG or PNG header (no image size)"
            raise ImageInputError(f"{label}: {what}")
        if self.policy.camera_mode == "stitched":
            check_stitched_size(label, *size)
        else:
            check_camera_limits(label, *size, self.max_camera_side_px, self.max_camera_megapixels)
            calibrations = self.calibrations
            if calibrations is None:
                check_camera_size(label, *size)
            elif (expected := calibrations.size(name)) is not None and size != expected:
                width, height = expected
                raise ImageInputError(f"{label}: {size[0]}x{size[1]} pixels; the camera rig says {width}x{height}")

    @property
    def reprojection(self) -> Reprojection | None:
        """The camera rig's reprojection in force (None without a rig, or while a CameraInfo
        is awaited); read once per frame, since a changed CameraInfo replaces it."""
        calibrations = self.calibrations
        return calibrations.reprojection if calibrations is not None else None

    def camera_info(self, name: str, msg: CameraInfo) -> list[Event]:
        """A camera's CameraInfo (rig cameras with ``camera_info: topic``): in force from now; a
        changed one rebuilds that camera's remap table, an equal one changes nothing."""
        label = f"{name}_camera_info"
        calibrations = self.calibrations  # once: cleanup may drop it from another thread
        if calibrations is None or name not in calibrations.from_topics:
            return []  # not subscribed then; a bag may hold it anyway
        try:
            calibration = calibration_from_fields(
                camera_info_fields(msg), f"camera_info {name}", calibrations.is_rectified(name)
            )
            calibrations.update(name, calibration)
        except ValueError as error:  # RigError: the message names the field
            return [InputRejected(label, BAD_INPUT, f"{error}; keeping the calibration in force", False)]
        return []

    def serialized_camera(
        self, name: str, data: bytes, message_type: type, now_ns: int, unseen_before: bool = False
    ) -> list[Event]:
        """A camera message as CDR bytes (``raw=True`` subscriptions): deserialized only if planned."""
        try:
            camera = CameraView.of_serialized(data, message_type, f"camera {name}")
        except ImageInputError as error:
            return [self._bad_camera(name, error)]
        return self.camera(name, camera, now_ns, unseen_before)

    @staticmethod
    def _unequal_sizes(frame: SyncedFrame) -> str | None:
        """Why a frame's cameras cannot be stitched (sizes differ), or None."""
        sizes = {name: camera.size for name, camera in frame.cameras.items() if camera is not None}
        try:
            check_equal_sizes(sizes)
        except ImageInputError as error:
            return str(error)
        return None

    def _bad_camera(self, name: str, error: Exception | str, stamp_ns: int | None = None) -> InputRejected:
        return InputRejected(f"camera {name}", BAD_INPUT, str(error), name == self.policy.anchor, stamp_ns)

    def odometry(self, msg: Odometry) -> list[Event]:
        stamp_ns = stamp_to_ns(msg.header.stamp)
        if stamp_ns <= 0:
            detail = f"odometry: header stamp {stamp_ns / 1e9:g} s is not set (must be > 0); sample ignored"
            return [InputRejected("odometry", BAD_INPUT, detail, fails_frame=False)]
        speed, yaw_rate = odometry_speed_yaw_rate(msg)
        events: list[Event] = []
        if not (math.isfinite(speed) and math.isfinite(yaw_rate)):
            detail = "odometry: twist holds NaN/inf; frames around it are skipped"
            events.append(InputRejected("odometry", "nan", detail, fails_frame=False))
        elif speed > MAX_SPEED_MPS:
            detail = (
                f"odometry: speed {speed:g} m/s above the {MAX_SPEED_MPS:g} m/s bound; frames around it are skipped"
            )
            events.append(InputRejected("odometry", BAD_INPUT, detail, fails_frame=False))
            speed = math.nan  # an invalid sample: frames that would use it fail
        forward = float(msg.twist.twist.linear.x)
        self.odometry_frame = msg.header.frame_id
        pose = odometry_pose(msg)
        synced = self.sync.add_odometry(stamp_ns, speed, yaw_rate, forward, pose, msg.header.frame_id)
        return events + self._wrap(synced)

    def imu(self, msg: Imu) -> list[Event]:
        if stamp_to_ns(msg.header.stamp) <= 0:
            return [
                InputRejected("imu", BAD_INPUT, "imu: header stamp is not set (must be > 0); sample ignored", False)
            ]
        acceleration = imu_planar_acceleration(msg)
        events: list[Event] = []
        if not math.isfinite(acceleration):
            detail = "imu: linear acceleration holds NaN/inf; frames around it are skipped"
            events.append(InputRejected("imu", "nan", detail, fails_frame=False))
        return events + self._wrap(self.sync.add_imu(stamp_to_ns(msg.header.stamp), acceleration))

    def command(self, msg: UInt8, now_ns: int) -> list[Event]:
        try:
            self.commands.update(msg.data, now_ns)
        except ValueError as error:
            return [InputRejected("command", "out_of_range", f"command: {error}; keeping the previous command", False)]
        return []

    def route_message(self, msg: PathMsg, now_ns: int) -> list[Event]:
        """A route (``command_input: route``): held as the latest; problems that are already
        visible (wrong frame once odometry is known, implausible geometry) are reported now."""
        if len(msg.poses) > MAX_ROUTE_POINTS:  # refused before converting, the held route stays
            detail = f"route: {len(msg.poses)} poses, at most {MAX_ROUTE_POINTS} accepted; keeping the previous route"
            return [InputRejected("route", BAD_INPUT, detail, False)]
        points = path_points(msg)
        self.route.update(points, msg.header.frame_id, now_ns)
        if (mismatch := self.route.frame_mismatch(self.odometry_frame)) is not None:
            return [InputRejected("route", "wrong_frame", f"{mismatch}; using default_command", False)]
        if (problem := route_problem(points)) is not None:
            return [InputRejected("route", BAD_INPUT, f"{problem}; using default_command", False)]
        return []

    def message(self, key: str, msg, now_ns: int) -> list[Event]:
        """A deserialized input message by its topic key (``ros.topics``): what offline
        evaluation reads from a bag, with the record time as ``now_ns``."""
        if key == "command":
            return self.command(msg, now_ns)
        if key == "route":
            return self.route_message(msg, now_ns)
        if key == "odometry":
            return self.odometry(msg)
        if key == "imu":
            return self.imu(msg)
        if key.endswith(CAMERA_INFO_SUFFIX):
            return self.camera_info(key.removesuffix(CAMERA_INFO_SUFFIX), msg)
        return self.camera(key, CameraView.of_message(msg), now_ns)

    def command_state(self, now_ns: int) -> CommandState:
        """The command in force now (diagnostics): the topic's, or the route's at the last frame."""
        return self.route.last if self.command_input == "route" else self.commands.state(now_ns)

    def _command_for(self, frame: SyncedFrame) -> CommandState:
        if self.command_input == "route":
            return self.route.state(frame.pose, self._pose_frame(frame), frame.stamp_ns)
        return self.commands.state(frame.stamp_ns)

    def _pose_frame(self, frame: SyncedFrame) -> str | None:
        """The frame of the frame's pose (the latest odometry's when it has none)."""
        return frame.pose_frame if frame.pose_frame is not None else self.odometry_frame

    def flush(self, now_ns: int | None = None) -> list[Event]:
        return self._wrap(self.sync.flush(now_ns))

    def _wrap(self, results: list[SyncedFrame | SyncFailure]) -> list[Event]:
        events: list[Event] = []
        calibrations = self.calibrations
        for result in results:
            if isinstance(result, SyncFailure):
                events.append(result)
            elif calibrations is None and (unequal := self._unequal_sizes(result)) is not None:
                events.append(SyncFailure(result.stamp_ns, BAD_INPUT, unequal))
            elif calibrations is not None and calibrations.missing:
                waiting = ", ".join(calibrations.missing)
                detail = f"no CameraInfo yet for {waiting}: frames are planned once every camera's calibration is known"
                events.append(SyncFailure(result.stamp_ns, CAMERA_INFO_MISSING, detail))
            else:
                state = self._command_for(result)
                events.append(
                    ReadyFrame(
                        result,
                        state.command,
                        state.source,
                        self.command_input,
                        state.lateral_m,
                        self._pose_frame(result),
                    )
                )
        return events
