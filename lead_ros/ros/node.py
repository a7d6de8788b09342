"""``lead_planner``: synchronized cameras + odometry + route command in, ISO 8855 Path out.

Callbacks only buffer and synchronize; a worker thread plans on the newest synchronized
frame (size-one queue, older frames dropped and counted), so a slow model never blocks
message intake. All stamps are header stamps and the node clock, so ``use_sim_time`` works.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from nav_msgs.msg import Odometry, Path
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)
from sensor_msgs.msg import Image, Imu
from std_msgs.msg import Float64, UInt8
from visualization_msgs.msg import MarkerArray

from lead_ros.frame_queue import LatestFrameQueue
from lead_ros.node_config import PARAMETERS, NodeConfig, ParamSpec
from lead_ros.planner import Planner
from lead_ros.ros.conversions import (
    array_to_image,
    camera_message_type,
    frame_to_observation,
    plan_to_markers,
    plan_to_path,
)
from lead_ros.ros.diagnostics import DiagnosticsContext, FrameTiming, PipelineStats, build_diagnostics
from lead_ros.ros.intake import Event, InputIntake, InputRejected, ReadyFrame
from lead_ros.sync import SyncFailure
from lead_ros.visualization import render_plan

NODE_NAME = "lead_planner"
WARNING_PERIOD_S = 5.0
CAMERA_QOS_DEPTH = 5
ODOMETRY_QOS = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
COMMAND_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
OUTPUT_QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)


@dataclass(frozen=True)
class QueuedFrame:
    ready: ReadyFrame
    synced_at: float  # time.perf_counter() when synchronization completed


def _descriptor(spec: ParamSpec) -> ParameterDescriptor:
    description = spec.description + (f" One of: {', '.join(spec.choices)}." if spec.choices else "")
    descriptor = ParameterDescriptor(description=description, read_only=spec.read_only)
    if spec.choices:
        descriptor.additional_constraints = f"one of {', '.join(spec.choices)}"
    if spec.min_value is not None and isinstance(spec.default, int) and not isinstance(spec.default, bool):
        descriptor.integer_range = [IntegerRange(from_value=int(spec.min_value), to_value=int(spec.max_value), step=1)]
    elif spec.min_value is not None:
        descriptor.floating_point_range = [
            FloatingPointRange(from_value=float(spec.min_value), to_value=float(spec.max_value), step=0.0)
        ]
    return descriptor


class ThrottledWarnings:
    """At most one warning per (input, reason) per period; the rest are counted."""

    def __init__(self, logger, period_s: float = WARNING_PERIOD_S) -> None:
        self._logger, self._period = logger, period_s
        self._last: dict[tuple[str, str], float] = {}
        self._suppressed: dict[tuple[str, str], int] = {}

    def warn(self, key: tuple[str, str], message: str) -> None:
        now = time.monotonic()
        if now - self._last.get(key, -1e18) >= self._period:
            skipped = self._suppressed.pop(key, 0)
            self._logger.warning(message + (f" ({skipped} similar since last warning)" if skipped else ""))
            self._last[key] = now
        else:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1


class LeadPlannerNode(Node):
    """The planner node. ``planner`` may be injected (tests); otherwise it is built from
    the parameters and a failure to load raises, so ``main`` exits non-zero."""

    def __init__(self, node_name: str = NODE_NAME, *, planner: Planner | None = None, **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self.config = self._declare_parameters()
        self.warnings = ThrottledWarnings(self.get_logger())
        self.planner = planner or Planner.from_config(self.config)
        self.intake = InputIntake(self.config)
        self.commands = self.intake.commands
        self.queue: LatestFrameQueue[QueuedFrame] = LatestFrameQueue()
        cameras = self.intake.camera_names
        imu = self.config.acceleration_source == "imu"
        inputs = (*cameras, "odometry", "command") + (("imu",) if imu else ())
        self.stats = PipelineStats(inputs)
        self._diagnostics_context = DiagnosticsContext(
            self.get_fully_qualified_name(),
            "lead_ros",
            self.config.processing_budget_ms,
            self.config.max_consecutive_failures,
        )
        self._input_group = MutuallyExclusiveCallbackGroup()
        self._create_interfaces(cameras)
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._work, name="lead_planner_worker", daemon=True)
        self._worker.start()
        info = self.planner.info
        self.get_logger().info(
            f"LTFv6 planner ready: weights {info.weights} (sha256 {', '.join(s[:12] for s in info.weights_sha256)})"
            f"{' [UNTRAINED synthetic weights]' if info.untrained else ''}, device {info.device}, "
            f"precision {info.precision}; camera mode {self.config.camera_mode} ({self.config.image_transport}); "
            f"inputs {', '.join(s.topic_name for s in self._inputs)}; output {self.path_pub.topic_name} "
            f"in frame {self.config.frame_id}"
        )

    # --- set-up -------------------------------------------------------------------------------

    def _declare_parameters(self) -> NodeConfig:
        values = {}
        for spec in PARAMETERS:
            try:
                values[spec.name] = self.declare_parameter(spec.name, spec.default, _descriptor(spec)).value
            except Exception as error:  # rclpy's InvalidParameterValue/Type exceptions
                raise ValueError(f"parameter {spec.name}: {error}") from error
        return NodeConfig.from_values(values)

    def _create_interfaces(self, cameras: tuple[str, ...]) -> None:
        camera_type = camera_message_type(self.config.image_transport)
        camera_qos = (
            qos_profile_sensor_data
            if self.config.camera_qos == "sensor_data"
            else QoSProfile(depth=CAMERA_QOS_DEPTH, reliability=ReliabilityPolicy.RELIABLE)
        )
        self._inputs = []
        for name in cameras:
            topic = "~/input/image" if name == "image" else f"~/input/cameras/{name}"
            self._inputs.append(
                self.create_subscription(
                    camera_type,
                    topic,
                    lambda msg, n=name: self._on_camera(n, msg),
                    camera_qos,
                    callback_group=self._input_group,
                )
            )
        self._inputs.append(
            self.create_subscription(
                Odometry, "~/input/odometry", self._on_odometry, ODOMETRY_QOS, callback_group=self._input_group
            )
        )
        self._inputs.append(
            self.create_subscription(
                UInt8, "~/input/command", self._on_command, COMMAND_QOS, callback_group=self._input_group
            )
        )
        if self.config.acceleration_source == "imu":
            self._inputs.append(
                self.create_subscription(
                    Imu, "~/input/imu", self._on_imu, qos_profile_sensor_data, callback_group=self._input_group
                )
            )
        self.path_pub = self.create_publisher(Path, "~/output/path", OUTPUT_QOS)
        self.inference_time_pub = self.create_publisher(Float64, "~/debug/inference_time_ms", OUTPUT_QOS)
        self.latency_pub = self.create_publisher(Float64, "~/debug/pipeline_latency_ms", OUTPUT_QOS)
        self.markers_pub = self.create_publisher(MarkerArray, "~/debug/markers", OUTPUT_QOS)
        self.debug_image_pub = (
            self.create_publisher(Image, "~/debug/image", OUTPUT_QOS) if self.config.publish_debug_image else None
        )
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(
            self.config.diagnostics_period_s, self._on_diagnostics_timer, callback_group=self._input_group
        )
        # Pending anchors are resolved on their deadline even when no further message comes.
        self.create_timer(0.05, self._on_flush_timer, callback_group=self._input_group)

    # --- callbacks (never run the network) ------------------------------------------------------

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _on_camera(self, name: str, msg) -> None:
        now = self._now_ns()
        self.stats.received(name, now)
        self._handle(self.intake.camera(name, msg, now))

    def _on_odometry(self, msg: Odometry) -> None:
        self.stats.received("odometry", self._now_ns())
        self._handle(self.intake.odometry(msg))

    def _on_imu(self, msg: Imu) -> None:
        self.stats.received("imu", self._now_ns())
        self._handle(self.intake.imu(msg))

    def _on_command(self, msg: UInt8) -> None:
        now = self._now_ns()
        self.stats.received("command", now)
        self._handle(self.intake.command(msg, now))

    def _on_flush_timer(self) -> None:
        self._handle(self.intake.flush(self._now_ns()))

    def _handle(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, SyncFailure):
                self._fail(event.reason, event.detail, "sync")
            elif isinstance(event, InputRejected):
                self.stats.rejected(event.input.removeprefix("camera "))
                if event.fails_frame:
                    self._fail(event.reason, event.detail, event.input)
                else:
                    self.warnings.warn((event.input, event.reason), event.detail)
            else:
                if not event.frame.acceleration_estimated:
                    self.warnings.warn(
                        ("acceleration", "few_samples"),
                        "acceleration: fewer than two odometry samples in the window; using 0 m/s^2",
                    )
                if event.command_source != "received":
                    self.warnings.warn(
                        ("command", event.command_source),
                        f"command: using default {event.command.name.lower()} ({event.command_source})",
                    )
                self.queue.put(QueuedFrame(event, time.perf_counter()))

    def _fail(self, reason: str, detail: str, source: str) -> None:
        self.stats.failed(reason, detail)
        self.warnings.warn((source, reason), f"frame skipped ({reason}): {detail}")

    # --- worker -------------------------------------------------------------------------------

    def _work(self) -> None:
        while not self._stop.is_set():
            item = self.queue.get(timeout=0.1)
            if item is not None:
                self._process(item)

    def _process(self, item: QueuedFrame) -> None:
        picked = time.perf_counter()
        frame, command = item.ready.frame, item.ready.command
        try:
            observation = frame_to_observation(frame, command)
            plan = self.planner.plan(observation)
        except ValueError as error:  # image/observation errors name their input
            self._fail("bad_input", str(error), "worker")
            return
        except Exception as error:
            self._fail("inference_error", f"{type(error).__name__}: {error}", "worker")
            return
        self.path_pub.publish(plan_to_path(plan, frame.stamp_ns, self.config.frame_id, self.config.prepend_origin_pose))
        published = time.perf_counter()
        latency_ms = (self._now_ns() - frame.stamp_ns) / 1e6
        processing_ms = 1e3 * (published - item.synced_at)
        timing = FrameTiming(
            pipeline_latency_ms=latency_ms,
            queue_wait_ms=1e3 * (picked - item.synced_at),
            node_overhead_ms=1e3 * (published - picked) - plan.timings.inference_ms,
            inference_ms=plan.timings.inference_ms,
        )
        self.stats.succeeded(processing_ms, timing, self.config.processing_budget_ms)
        self.inference_time_pub.publish(Float64(data=plan.timings.inference_ms))
        self.latency_pub.publish(Float64(data=latency_ms))
        if self.markers_pub.get_subscription_count():
            self.markers_pub.publish(plan_to_markers(plan, frame.stamp_ns, self.config.frame_id))
        if self.debug_image_pub is not None:
            caption = f"{command.name.lower()}  v={frame.speed_mps:.1f} m/s  a={frame.acceleration_mps2:.1f} m/s2"
            picture = render_plan(plan.model_image, plan.waypoints, plan.headings, caption, self.planner.info.untrained)
            self.debug_image_pub.publish(array_to_image(picture, frame.stamp_ns, self.config.frame_id))

    # --- diagnostics and shutdown -----------------------------------------------------------

    def _on_diagnostics_timer(self) -> None:
        now = self.get_clock().now()
        state = self.commands.state(now.nanoseconds)
        snapshot = self.stats.snapshot()
        queue = {"put": self.queue.put_count, "dropped": self.queue.dropped_count}
        diagnostics = build_diagnostics(
            self._diagnostics_context,
            self.planner.info,
            "",
            snapshot,
            queue,
            (state.command.name.lower(), state.source),
            now.nanoseconds,
            now.to_msg(),
        )
        self.diagnostics_pub.publish(diagnostics)
        inputs = diagnostics.status[1]
        if inputs.level != DiagnosticStatus.OK:  # a camera or odometry that stopped, or never started
            self.warnings.warn(("inputs", "stale"), f"inputs: {inputs.message}")

    def shutdown(self) -> None:
        """Stop the worker (the frame in flight finishes) and release the queue."""
        self._stop.set()
        self.queue.close()
        self._worker.join(timeout=30.0)


def main(args: list[str] | None = None) -> int:
    """Run the node; exit 1 with one clear line when it cannot start, 0 on SIGINT/SIGTERM."""
    rclpy.init(args=args)
    # Built before the (slow) model load, so a signal during the load cannot interrupt it.
    executor = SingleThreadedExecutor()
    node = None
    try:
        try:
            node = LeadPlannerNode()
        except Exception as error:  # fail fast with a clear message, no traceback
            rclpy.logging.get_logger(NODE_NAME).fatal(f"cannot start: {error}")
            return 1
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        # A signal can shut the context down while the executor builds its wait set; that
        # surfaces as an RCLError about an invalid context and is a normal shutdown.
        if rclpy.ok():
            raise
    finally:
        if node is not None:
            node.shutdown()
            node.destroy_node()
        executor.shutdown()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
