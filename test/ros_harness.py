"""In-process harness for lead_planner tests: the node under test plus a driver node that
publishes inputs and records outputs, spun by one executor in a background thread."""

from __future__ import annotations

import itertools
import math
import time

import cv2
import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry, Path
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image, Imu
from std_msgs.msg import UInt8

from lead_ros.ros.background_spin import BackgroundSpin
from lead_ros.ros.encoding import array_to_image, ns_to_stamp
from lead_ros.ros.frame_status import FrameStatus
from lead_ros.ros.node import LeadPlannerNode

_NAMESPACES = itertools.count()
# How long a test waits for something that must happen: it only detects a hang, and is never a
# speed requirement (a first frame at a new height exports its ONNX graph: minutes when the
# cores are busy).
WAIT_S = 300.0
COMMAND_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def compressed(image_rgb: np.ndarray, stamp_ns: int, fmt: str = "jpeg") -> CompressedImage:
    ok, data = cv2.imencode(".jpg" if fmt == "jpeg" else ".png", image_rgb[..., ::-1])
    assert ok
    msg = CompressedImage(format=fmt, data=data.tobytes())
    msg.header.stamp = ns_to_stamp(stamp_ns)
    return msg


class Harness:
    def __init__(
        self,
        context,
        planner,
        *,
        bring_up: bool = True,
        record_odometry_paths: bool = False,
        expect_exceptions: bool = False,
        **params,
    ) -> None:
        """The node under test, configured and activated unless ``bring_up`` is False;
        ``record_odometry_paths`` subscribes to ~/output/path_odom too. ``close`` fails the
        test if an exception escaped a callback, timer or the worker (the node's last line of
        defence counts them), unless ``expect_exceptions``: the guard must not hide bugs."""
        self.context = context
        self.expect_exceptions = expect_exceptions
        self.namespace = f"/t{next(_NAMESPACES)}"
        overrides = [Parameter(k, value=v) for k, v in params.items()]
        self.node = LeadPlannerNode(
            planner=planner, context=context, namespace=self.namespace, parameter_overrides=overrides
        )
        if bring_up:
            assert self.node.bring_up()
        self.config = self.node.config
        self.driver = rclpy.create_node("driver", namespace=self.namespace, context=context)
        camera_type = CompressedImage if self.config.image_transport == "compressed" else Image
        qos = qos_profile_sensor_data if self.config.camera_qos == "sensor_data" else 5
        base = f"{self.namespace}/lead_planner/input"
        names = ("image",) if self.config.camera_mode == "stitched" else ("l0", "f0", "r0", "b0")
        self.cameras = {
            n: self.driver.create_publisher(
                camera_type, f"{base}/image" if n == "image" else f"{base}/cameras/{n}", qos
            )
            for n in names
        }
        self.odometry = self.driver.create_publisher(Odometry, f"{base}/odometry", 50)
        self.command = self.driver.create_publisher(UInt8, f"{base}/command", COMMAND_QOS)
        self.route = self.driver.create_publisher(Path, f"{base}/route", COMMAND_QOS)
        self.imu = self.driver.create_publisher(Imu, f"{base}/imu", qos_profile_sensor_data)
        self.paths: list[Path] = []
        self.odometry_paths: list[Path] = []
        self.diagnostics: list[DiagnosticArray] = []
        self.driver.create_subscription(Path, f"{base[: -len('/input')]}/output/path", self.paths.append, 10)
        if record_odometry_paths:
            self.driver.create_subscription(
                Path, f"{base[: -len('/input')]}/output/path_odom", self.odometry_paths.append, 10
            )
        self.driver.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        self.frame_statuses: list[FrameStatus] = []
        self.driver.create_subscription(
            DiagnosticStatus,
            f"{base[: -len('/input')]}/debug/frame_status",
            lambda msg: self.frame_statuses.append(FrameStatus.from_message(msg)),
            50,
        )
        # The node spun as the shipped process spins it (its own SingleThreadedExecutor, so a
        # lifecycle transition never destroys entities that another thread is waiting on),
        # the driver apart.
        self.spins = [
            BackgroundSpin(node, name=f"harness_{name}")
            for node, name in ((self.node, "node"), (self.driver, "driver"))
        ]
        if bring_up:
            self.wait_for_subscribers()

    def wait_for_subscribers(self) -> None:
        route = self.config.command_input == "route"
        publishers = [*self.cameras.values(), self.odometry, self.route if route else self.command]
        if self.config.acceleration_source == "imu":
            publishers.append(self.imu)
        self.wait_for(lambda: all(p.get_subscription_count() > 0 for p in publishers), what="subscriptions matched")

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        if any(s.name.startswith(self.node.get_fully_qualified_name() + ":") for s in msg.status):
            self.diagnostics.append(msg)

    def latest_status(self, suffix: str) -> DiagnosticStatus | None:
        """The newest /diagnostics status ``<node>: <suffix>`` received, if any."""
        name = f"{self.node.get_fully_qualified_name()}: {suffix}"
        for array in reversed(self.diagnostics):
            for status in array.status:
                if status.name == name:
                    return status
        return None

    def now_ns(self) -> int:
        return self.driver.get_clock().now().nanoseconds

    def wait_for(self, predicate, timeout: float = WAIT_S, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.02)

    def send_command(self, value: int) -> None:
        self.command.publish(UInt8(data=value))

    def send_route(self, points, frame_id: str = "odom") -> None:
        msg = Path()
        msg.header.frame_id = frame_id
        for x, y in points:
            pose = PoseStamped()
            pose.header.frame_id = frame_id
            pose.pose.position.x, pose.pose.position.y = float(x), float(y)
            msg.poses.append(pose)
        self.route.publish(msg)

    def send_odometry(
        self,
        stamp_ns: int,
        vx: float,
        vy: float = 0.0,
        yaw_rate: float = 0.0,
        pose: tuple[float, float, float] = (0.0, 0.0, 0.0),
        frame_id: str = "odom",
    ) -> None:
        """``pose``: x, y, yaw in ``frame_id``."""
        msg = Odometry()
        msg.header.stamp = ns_to_stamp(stamp_ns)
        msg.header.frame_id = frame_id
        msg.pose.pose.position.x, msg.pose.pose.position.y = float(pose[0]), float(pose[1])
        msg.pose.pose.orientation.z, msg.pose.pose.orientation.w = math.sin(pose[2] / 2), math.cos(pose[2] / 2)
        msg.child_frame_id = "base_link"
        msg.twist.twist.linear.x, msg.twist.twist.linear.y = float(vx), float(vy)
        msg.twist.twist.angular.z = float(yaw_rate)
        self.odometry.publish(msg)

    def send_imu(self, stamp_ns: int, ax: float, ay: float = 0.0) -> None:
        msg = Imu()
        msg.header.stamp = ns_to_stamp(stamp_ns)
        msg.linear_acceleration.x, msg.linear_acceleration.y = float(ax), float(ay)
        self.imu.publish(msg)

    def send_images(self, images: dict, stamp_ns: int, encoding: str = "rgb8", offsets: dict | None = None) -> None:
        """Side cameras first, anchor last, so the frame completes on the anchor or odometry."""
        for name in sorted(images, key=lambda n: n in ("f0", "image")):
            stamp = stamp_ns + (offsets or {}).get(name, 0)
            image = images[name]
            if isinstance(image, (Image, CompressedImage)):
                msg = image
            elif self.config.image_transport == "compressed":
                msg = compressed(image, stamp)
            else:
                msg = array_to_image(
                    image if encoding == "rgb8" else np.ascontiguousarray(image[..., ::-1]), stamp, "camera", encoding
                )
            msg.header.stamp = ns_to_stamp(stamp)
            self.cameras[name].publish(msg)

    def send_frame(
        self,
        images: dict,
        stamp_ns: int,
        speed: float = 5.0,
        pose: tuple[float, float, float] = (0.0, 0.0, 0.0),
        odometry_frame: str = "odom",
        **kwargs,
    ) -> None:
        """Odometry around the stamp (constant speed, standing at ``pose``), then the images:
        the frame completes when its last camera arrives, whatever the transport delay."""
        for dt in (-300, -200, -100, 20):
            self.send_odometry(stamp_ns + dt * 1_000_000, speed, pose=pose, frame_id=odometry_frame)
        self.send_images(images, stamp_ns, **kwargs)

    def wait_paths(self, count: int, timeout: float = WAIT_S) -> list[Path]:
        self.wait_for(lambda: len(self.paths) >= count, timeout, f"{count} paths")
        return self.paths

    def failures(self) -> dict:
        return self.node.stats.snapshot()["failures"]

    def close(self) -> None:
        for spin in self.spins:  # both stopped before the node closes: the driver's callbacks read the node
            spin.close()
        self.node.close()
        self.node.destroy_node()
        self.driver.destroy_node()
        escaped = self.node.stats.snapshot()["exceptions"]
        assert self.expect_exceptions or not escaped, f"exceptions escaped in the node: {escaped}"
