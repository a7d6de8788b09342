"""``lead_planner``: synchronized cameras + odometry + route command (or route) in, ISO 8855
Path out (and the same plan in the odometry frame).

A managed (lifecycle) node: **configure** loads the weights and creates the topics,
**activate** starts planning and enables the publishers, **deactivate** stops planning,
**cleanup** releases the model, **shutdown** works from any state. Parameters are checked
in the constructor and fixed for the node's life. The process around it (signals,
autostart) is ``lead_ros.ros.process``.

Callbacks only take, buffer and synchronize (``ros.input_pump``: camera images are taken
only when the planner can use a frame, every input in the order received); a worker thread
plans on the newest synchronized frame (size-one queue; a frame replaced there is
``superseded``), so a slow model never blocks message intake. All stamps are header stamps
and the node clock, so ``use_sim_time`` works.
"""

from __future__ import annotations

import ctypes
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from diagnostic_msgs.msg import DiagnosticStatus
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from std_msgs.msg import Float64

from lead_ros.cameras.calibrations import RigCalibrations
from lead_ros.inputs.frame_queue import LatestFrameQueue
from lead_ros.inputs.sync import SUPERSEDED, SyncFailure
from lead_ros.node_config import PARAMETERS, NodeConfig, ParamSpec
from lead_ros.planner import Planner
from lead_ros.ros.diagnostics import (
    INPUT_STALE_S,
    ClockWatch,
    DiagnosticsContext,
    FrameTiming,
    PipelineStats,
    build_diagnostics,
)
from lead_ros.ros.distro import answer_invalid_transitions
from lead_ros.ros.frame_status import PLANNED, SKIPPED, FrameStatus
from lead_ros.ros.input_pump import InputPump
from lead_ros.ros.intake import InputIntake, InputRejected, ReadyFrame
from lead_ros.ros.interfaces import qos_profile, topic_class
from lead_ros.ros.outputs import (
    PATH,
    PATH_ODOM,
    PLAN_KEYS,
    FrameNotPlanned,
    dispatch,
    is_perception_output,
    perception_wanted,
    plan_frame,
    plan_messages,
)
from lead_ros.ros.topics import BY_KEY, CAMERA_INFO_SUFFIX, INPUT, Topic, TopicContext, active_topics

NODE_NAME = "lead_planner"
# The inference worker's OS thread name (top -H, /proc): torch's OpenMP threads started from
# it inherit the name, so its CPU use can be measured apart from message handling.
WORKER_THREAD_NAME = "lead_infer"
PR_SET_NAME = 15  # prctl option, <linux/prctl.h>
WARNING_PERIOD_S = 5.0
# Parameters rclpy itself handles; every other override must be one of ours.
ROS_OWN_PARAMETERS = ("use_sim_time", "start_type_description_service")
ROS_OWN_PARAMETER_PREFIXES = ("qos_overrides.",)
# Outputs published only while someone subscribes (the rest always, when active).
ON_DEMAND_OUTPUTS = ("path_odom", "markers")


def name_os_thread(name: str) -> None:
    """Name the calling OS thread (Linux; up to 15 bytes); a no-op elsewhere."""
    try:
        ctypes.CDLL(None).prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)
    except (OSError, AttributeError):
        pass


class ParameterError(ValueError):
    """An unknown, ill-typed or out-of-range parameter: the node cannot start."""


def one_line(error: BaseException) -> str:
    """An exception as one log line (rcl and YAML errors span several)."""
    return " ".join(str(error).split()) or type(error).__name__


@dataclass(frozen=True)
class QueuedFrame:
    ready: ReadyFrame
    synced_at: float  # time.perf_counter() when synchronization completed


def _status(ready: ReadyFrame, status: str, reason: str = "", detail: str = "") -> FrameStatus:
    """A synchronized frame's status, with the command and speed it was (or would be) planned with."""
    frame = ready.frame
    return FrameStatus(
        frame.stamp_ns,
        status,
        reason,
        detail,
        ready.command.name.lower(),
        ready.command_source,
        frame.speed_mps,
        frame.acceleration_mps2,
    )


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


class LeadPlannerNode(LifecycleNode):
    """The planner node. ``planner`` may be injected (tests, benchmarks); otherwise
    **configure** builds it from the parameters. Invalid parameters raise ``ParameterError``
    from the constructor, in every mode."""

    def __init__(self, node_name: str = NODE_NAME, *, planner: Planner | None = None, **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        answer_invalid_transitions(self)
        self.config = self._declare_parameters()
        self.warnings = ThrottledWarnings(self.get_logger())
        self._injected_planner = planner
        self.planner: Planner | None = None
        self.configure_error = ""
        self._configured_at = time.monotonic()
        self.intake = InputIntake(self.config)
        self.commands = self.intake.commands
        self.queue: LatestFrameQueue[QueuedFrame] = LatestFrameQueue()
        cameras = self.intake.camera_names
        imu = self.config.acceleration_source == "imu"
        inputs = (*cameras, "odometry", self.config.command_input.replace("topic", "command"))
        inputs += ("imu",) if imu else ()
        self.stats = PipelineStats(inputs)
        self._diagnostics_context = self._make_diagnostics_context(self.config.processing_budget_ms)
        self._active = threading.Event()
        self.pump = InputPump(
            self.intake, self.stats, self._active, self._handle, self._now_ns, self._simulated_time, self._guarded
        )
        self._input_group = self.pump.group
        drain = self.create_guard_condition(self._guarded("input drain", self.pump.drain), self._input_group)
        self.pump.drain_request = drain.trigger
        self._inputs: list = []  # subscriptions, made by configure
        self.outputs: dict = {}  # lifecycle publishers by topic key (ros.topics), made by configure
        self._in_flight = threading.Lock()  # held by the worker while it plans and publishes one frame
        # /diagnostics reports every lifecycle state, so it lives outside configure/cleanup.
        context = TopicContext(self.config)
        self.diagnostics_pub = self.create_publisher(
            topic_class(BY_KEY["diagnostics"], context), "/diagnostics", qos_profile(BY_KEY["diagnostics"].qos(context))
        )
        # On the steady clock: diagnostics must go on (and say so) when /clock stops.
        self._clock_watch = ClockWatch()
        self.create_timer(
            self.config.diagnostics_period_s,
            self._guarded("diagnostics timer", self._on_diagnostics_timer),
            callback_group=self._input_group,
            clock=Clock(clock_type=ClockType.STEADY_TIME),
        )
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._work, name="lead_planner_worker", daemon=True)
        self._worker.start()

    # --- set-up -------------------------------------------------------------------------------

    def _declare_parameters(self) -> NodeConfig:
        """Check every override (unknown names, types, ranges) before declaring, so a bad value
        is one clear error instead of rclpy's type exception or a silently ignored typo.
        Integers are accepted for floating-point parameters (``sync_tolerance_ms:=100``)."""
        # rclpy keeps the command-line, params-file and constructor overrides here.
        overrides = {
            name: parameter.value
            for name, parameter in self._parameter_overrides.items()
            if name not in ROS_OWN_PARAMETERS and not name.startswith(ROS_OWN_PARAMETER_PREFIXES)
        }
        try:
            config = NodeConfig.from_values(overrides)
        except ValueError as error:
            raise ParameterError(str(error)) from None
        for spec in PARAMETERS:
            self.declare_parameter(spec.name, getattr(config, spec.name), _descriptor(spec), ignore_override=True)
        return config

    def _make_diagnostics_context(self, budget_ms: float) -> DiagnosticsContext:
        return DiagnosticsContext(
            self.get_fully_qualified_name(),
            "lead_ros",
            budget_ms,
            self.config.max_consecutive_failures,
            budget_auto=self.config.processing_budget_ms == 0,
        )

    def _create_interfaces(self, calibrations: RigCalibrations | None) -> None:
        """The subscriptions and lifecycle publishers of the topic table (``ros.topics``), in
        its order. Cameras arrive serialized (raw=True) and are deserialized only for planned
        frames; the input pump orders every input by reception."""
        context = TopicContext(self.config, calibrations.from_topics if calibrations is not None else ())
        for topic in active_topics(context):
            if not topic.managed:
                continue
            kind, qos = topic_class(topic, context), qos_profile(topic.qos(context))
            if topic.direction == INPUT:
                self._inputs.append(self._subscribe(topic, kind, qos))
            else:
                self.outputs[topic.key] = self.create_lifecycle_publisher(kind, topic.name, qos)
        self.pump.camera_type = topic_class(BY_KEY[self.intake.policy.anchor], context)
        # Pending anchors are resolved on their deadline even when no further message comes.
        self._flush_timer = self.create_timer(
            0.05, self._guarded("flush timer", self.pump.tick), callback_group=self._input_group
        )

    def _subscribe(self, topic: Topic, kind: type, qos):
        """One input's subscription, its callback guarded and counted under the topic's key
        (a camera's is served only while the worker waits for a frame: ``ros.input_pump``)."""
        if topic.key.endswith(CAMERA_INFO_SUFFIX):
            self.stats.track(topic.key)
        camera = topic.camera is not None and not topic.key.endswith(CAMERA_INFO_SUFFIX)
        place = f"camera {topic.key}" if camera else topic.key
        guarded = self._guarded(place, lambda data, info, key=topic.key: self.pump.arrived(key, data, info))

        def callback(data, info) -> None:  # two arguments: rclpy passes the message info
            guarded(data, info)

        subscription = self.create_subscription(
            kind, topic.name, callback, qos, callback_group=self._input_group, raw=camera
        )
        self.pump.add(topic.key, subscription, camera)
        return subscription

    def _destroy_interfaces(self) -> None:
        for subscription in self.pump.remove_all():
            self.destroy_subscription(subscription)
        for publisher in self.outputs.values():
            self.destroy_lifecycle_publisher(publisher)
        self.destroy_timer(self._flush_timer)
        self._inputs, self.outputs = [], {}

    # --- lifecycle transitions ------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the weights and create the topics. A failure is one log line and FAILURE (the
        node stays unconfigured, so configure can be retried, e.g. once the weights exist)."""
        if self._injected_planner is None:  # seconds (a first start exports the runtime's graph): say so
            self.get_logger().info(f"configuring: loading the weights {self.config.weights}")
        try:
            calibrations = RigCalibrations.from_config(self.config)
            planner = self._injected_planner or Planner.from_config(self.config)
        except Exception as error:  # RigError, WeightsError, PlannerConfigError, CUDA errors, ...
            self.configure_error = one_line(error)
            self.get_logger().error(f"cannot configure: {self.configure_error}")
            return TransitionCallbackReturn.FAILURE
        self.planner, self.configure_error = planner, ""
        self.intake.calibrations = calibrations
        self._configured_at = time.monotonic()  # CameraInfo awaited since
        if calibrations is not None:
            self.get_logger().info(calibrations.summary())
        device_type = torch.device(planner.info.device).type
        self._diagnostics_context = self._make_diagnostics_context(self.config.processing_budget_for(device_type))
        self._create_interfaces(calibrations)
        info = planner.info
        self.get_logger().info(
            f"LTFv6 planner ready: weights {info.weights} (sha256 {', '.join(s[:12] for s in info.weights_sha256)})"
            f"{' [UNTRAINED synthetic weights]' if info.untrained else ''}, device {info.device}, "
            f"precision {info.precision}, runtime {info.runtime}; "
            f"camera mode {self.config.camera_mode} ({self.config.image_transport}); "
            f"inputs {', '.join(s.topic_name for s in self._inputs)}; output {self.outputs['path'].topic_name} "
            f"in frame {self.config.frame_id}; processing budget {self._diagnostics_context.budget_ms:.0f} ms"
        )
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Plan from fresh messages: whatever arrived while inactive is forgotten."""
        with self.pump.lock:
            self.intake.reset_frames()
            self.queue.clear()
            self.pump.activate()
            self._active.set()
        self.get_logger().info("active: planning")
        return super().on_activate(state)  # enables the lifecycle publishers

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop planning: the waiting frame is dropped, the frame in flight is not published."""
        self._stop_planning()
        self.get_logger().info("inactive: not planning")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """From unconfigured, inactive or active: stop planning and release everything."""
        if self._active.is_set():
            self._stop_planning()
            super().on_deactivate(state)
        if self.planner is not None:
            self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_planning()
        if self.planner is not None:
            self._release()
        return TransitionCallbackReturn.SUCCESS  # back to unconfigured

    def bring_up(self, stopping: Callable[[], bool] = lambda: False) -> bool:
        """Configure and activate (what ``autostart`` does); False when configure failed. A
        node asked to stop while it configured (``stopping``) is not activated: it never
        plans after a signal."""
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            return False
        if stopping():
            return True
        return self.trigger_activate() == TransitionCallbackReturn.SUCCESS

    def _stop_planning(self) -> None:
        with self.pump.lock:  # after a drain in progress, before the next
            self._active.clear()
            self.pump.deactivate()
            self.queue.clear()
        with self._in_flight:  # wait for the frame in flight; it sees the flag and is not published
            pass

    def _release(self) -> None:
        """Destroy the topics and close the planner this node made (models, runtime sessions,
        buffers: its memory goes back); a planner handed in by the caller stays the caller's."""
        self._destroy_interfaces()
        if self.planner is not self._injected_planner:
            self.planner.close()
        self.planner = None
        self.intake.calibrations = None
        self.get_logger().info("cleaned up: model released")

    @property
    def lifecycle_state(self) -> str:
        return self._state_machine.current_state[1]

    # --- callbacks (never run the network) ------------------------------------------------------

    def _guarded(self, place: str, callback):
        """The last line of defence around every callback, timer and the worker's frame: an
        exception that escapes is a bug in lead_ros (bad input is handled, with its own
        messages, before this). It is logged once per (place, exception type), counted in
        /diagnostics (ERROR), and the node goes on with the next message."""

        def run(*args) -> None:
            try:
                callback(*args)
            except Exception as error:
                if self.stats.unexpected(place, error):
                    frames = traceback.extract_tb(error.__traceback__)
                    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
                    self.get_logger().error(
                        f"unexpected {type(error).__name__} in {place}{where}: {one_line(error)}; continuing with the "
                        "next message (counted in /diagnostics; further ones of this kind are only counted)"
                    )

        return run

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _simulated_time(self) -> bool:
        return self.get_clock().ros_time_is_active

    def _handle(self, events: list) -> None:
        dispatch(events, self)

    def frame_failed(self, failure: SyncFailure) -> None:
        status = FrameStatus(failure.stamp_ns, SKIPPED)
        if failure.reason == SUPERSEDED:
            self._supersede(status, failure.detail)
        else:
            self._fail(failure.reason, failure.detail, "sync", status)

    def input_rejected(self, rejected: InputRejected) -> None:
        self.stats.rejected(rejected.input.removeprefix("camera "))
        if rejected.fails_frame:
            self._fail(rejected.reason, rejected.detail, rejected.input, FrameStatus(rejected.stamp_ns, SKIPPED))
        else:
            self.warnings.warn((rejected.input, rejected.reason), rejected.detail)

    def frame_ready(self, ready: ReadyFrame) -> None:
        if not ready.frame.acceleration_estimated:
            self.warnings.warn(
                ("acceleration", "few_samples"),
                "acceleration: fewer than two odometry samples in the window; using 0 m/s^2",
            )
        if ready.command_source != "received":
            self.warnings.warn(
                ("command", ready.command_source),
                f"command: using default {ready.command.name.lower()} ({ready.command_source})",
            )
        displaced = self.queue.put(QueuedFrame(ready, time.perf_counter()))
        self.pump.frame_queued()
        if displaced is not None:
            detail = "a newer frame was synchronized before the planner was free"
            self._supersede(_status(displaced.ready, SKIPPED), detail)

    def _supersede(self, status: FrameStatus, detail: str) -> None:
        """A frame not planned because a newer one is: counted apart from failures."""
        self.stats.frames_superseded()
        self._publish_frame_status(replace(status, reason=SUPERSEDED, detail=detail))

    def _fail(self, reason: str, detail: str, source: str, status: FrameStatus) -> None:
        """A frame not planned: counted, warned about (throttled) and answered on frame_status."""
        self.stats.failed(reason, detail)
        self.warnings.warn((source, reason), f"frame skipped ({reason}): {detail}")
        self._publish_frame_status(replace(status, reason=reason, detail=detail))

    def _publish_frame_status(self, status: FrameStatus) -> None:
        if self._active.is_set():
            self.outputs["frame_status"].publish(status.to_message(self.get_fully_qualified_name()))

    # --- worker -------------------------------------------------------------------------------

    def _work(self) -> None:
        """Free, ask the input pump for the newest frame (its cameras are taken now), then
        plan it. Inactive, wait."""
        name_os_thread(WORKER_THREAD_NAME)
        process = self._guarded("inference worker", self._process)
        while not self._stop.is_set():
            if not self._active.wait(timeout=0.1):
                continue
            self.pump.request_frame(lambda: self.queue.pending > 0, self._planning)
            item = None
            while item is None and self._planning():
                item = self.queue.get(timeout=0.1)
            if item is not None:
                with self._in_flight:
                    if self._active.is_set():
                        process(item)

    def _planning(self) -> bool:
        return self._active.is_set() and not self._stop.is_set()

    def _process(self, item: QueuedFrame) -> None:
        picked = time.perf_counter()
        ready, frame = item.ready, item.ready.frame
        wanted = self._outputs_wanted()
        reprojection = self.intake.reprojection  # once: a changed CameraInfo may replace it meanwhile
        try:
            result = plan_frame(self.planner, ready, self.config, reprojection, perception_wanted(wanted))
        except Exception as error:
            self._fail("inference_error", f"{type(error).__name__}: {error}", "worker", _status(ready, SKIPPED))
            return
        if isinstance(result, FrameNotPlanned):
            self._fail(result.reason, result.detail, "worker", _status(ready, SKIPPED))
            return
        if not self._active.is_set() or self._stop.is_set():  # deactivated or stopping meanwhile
            return
        plan, publish = result.plan, self.outputs
        first = plan_messages(plan, ready, self.config, wanted & set(PLAN_KEYS))
        publish[PATH].publish(first.messages[PATH])
        self._publish_frame_status(_status(ready, PLANNED))
        if first.path_odom_error is not None:  # counted: the base_link path of this frame is published
            self.stats.degraded_frame("path_odom_no_pose")
            self.warnings.warn(("path_odom", "no_pose"), first.path_odom_error)
        if PATH_ODOM in first.messages:
            publish[PATH_ODOM].publish(first.messages[PATH_ODOM])
        published = time.perf_counter()
        latency_ms = (self._now_ns() - frame.stamp_ns) / 1e6
        processing_ms = 1e3 * (published - item.synced_at)
        timing = FrameTiming(
            pipeline_latency_ms=latency_ms,
            queue_wait_ms=1e3 * (picked - item.synced_at),
            node_overhead_ms=1e3 * (published - picked) - plan.timings.inference_ms,
            inference_ms=plan.timings.inference_ms,
        )
        self.stats.succeeded(processing_ms, timing, self._diagnostics_context.budget_ms)
        self.stats.cameras_filled(result.filled)
        publish["inference_time_ms"].publish(Float64(data=plan.timings.inference_ms))
        publish["pipeline_latency_ms"].publish(Float64(data=latency_ms))
        rest = plan_messages(
            plan,
            ready,
            self.config,
            wanted - set(PLAN_KEYS),
            untrained=self.planner.info.untrained,
            reprojection=reprojection,
        )
        for key, message in rest.messages.items():
            publish[key].publish(message)

    def _outputs_wanted(self) -> set[str]:
        """The outputs to build for this frame: every output that always publishes, and the
        on-demand ones (path_odom, markers; perception unless ``publish_perception``) only
        while someone subscribes. Perception runs only when one of its outputs is wanted, or
        for the debug image."""
        wanted = set()
        for key, publisher in self.outputs.items():
            perception = is_perception_output(key)
            on_demand = key in ON_DEMAND_OUTPUTS or (perception and not self.config.publish_perception)
            if not on_demand or publisher.get_subscription_count():
                wanted.add(key)
        return wanted

    # --- diagnostics and shutdown -----------------------------------------------------------

    def _on_diagnostics_timer(self) -> None:
        self.pump.drain_if_idle_for(INPUT_STALE_S / 2)  # a camera's age is then true, however busy the planner
        now = self.get_clock().now()
        with self.pump.lock:
            state = self.intake.command_state(now.nanoseconds)
        queue = {"put": self.queue.put_count}
        planner = self.planner
        diagnostics = build_diagnostics(
            self._diagnostics_context,
            self.lifecycle_state,
            planner.info if planner is not None else None,
            self.configure_error,
            self.stats.snapshot(),
            queue,
            self.config.command_input,
            state,
            now.nanoseconds,
            now.to_msg(),
            self._clock_watch.stopped(now.nanoseconds, self.stats.received_total()),
            self.intake.calibrations,
            time.monotonic() - self._configured_at,
        )
        self.diagnostics_pub.publish(diagnostics)
        inputs = diagnostics.status[1]
        if inputs.level != DiagnosticStatus.OK:  # a camera or odometry that stopped, or never started
            self.warnings.warn(("inputs", "stale"), f"inputs: {inputs.message}")

    def close(self) -> None:
        """Leave the lifecycle (shutdown transition unless already finalized) and stop the
        worker; the frame in flight finishes unpublished. Call before ``destroy_node``, from
        the thread that spins the node or once its executor has stopped: the transition
        destroys publishers and subscriptions that a spinning thread's wait set may hold
        (rclpy then raises InvalidHandle in that thread)."""
        if self.lifecycle_state != "finalized":
            self.trigger_shutdown()
        self._stop.set()
        self.queue.close()
        self._worker.join(timeout=30.0)
