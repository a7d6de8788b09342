"""Camera images taken when the planner can use a frame (``ros.on_demand``, ``ros.input_pump``):
the adapter over rclpy's take on this distribution, and the node under a 30 Hz stream with a
planner slower than the stream (quiet and under CPU load), a camera that stops, and lifecycle
transitions while images stream in."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.duration import Duration
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import UInt8

from lead_ros.inputs.sync import CAMERA_MISSING, ODOMETRY_UNAVAILABLE, SUPERSEDED
from lead_ros.ros.encoding import ns_to_stamp
from lead_ros.ros.frame_status import PLANNED
from lead_ros.ros.on_demand import GatedCallbackGroup, take_waiting
from lead_ros.ros.topics import CAMERA_DEPTH
from lead_ros.tools.synthetic_cameras import reference_cameras
from ros_harness import compressed

MS = 1_000_000
SIDES_FIRST = ("l0", "r0", "b0", "f0")  # the anchor last: a frame completes on it
SMALL = dict(zip(("l0", "f0", "r0", "b0"), reference_cameras(540, 960), strict=True))
PLANNER_DELAY_S = 0.5
ACK_S = 30.0


def test_take_waiting_takes_what_a_closed_gate_left_in_dds_and_an_open_gate_lets_the_executor_serve(ros_context):
    """The one use of rclpy's undocumented take: the executor never serves a gated
    subscription while its gate is closed; ``take_waiting`` then returns the newest ``depth``
    messages with their publication numbers and reception times, and nothing once destroyed."""
    node = rclpy.create_node("take_probe", namespace="/take_probe", context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    try:
        group, served = GatedCallbackGroup(), []
        qos = QoSProfile(depth=CAMERA_DEPTH, reliability=ReliabilityPolicy.RELIABLE)
        subscription = node.create_subscription(
            UInt8, "numbers", lambda msg, info: served.append((msg.data, info)), qos, callback_group=group
        )
        group.gate(subscription)
        publisher = node.create_publisher(UInt8, "numbers", qos)
        deadline = time.monotonic() + ACK_S
        while publisher.get_subscription_count() == 0:
            assert time.monotonic() < deadline, "no match"
            time.sleep(0.01)
        before = time.time_ns()
        for number in range(5):
            publisher.publish(UInt8(data=number))
        assert publisher.wait_for_all_acked(Duration(seconds=ACK_S))
        for _ in range(5):
            executor.spin_once(timeout_sec=0.02)
        assert served == []  # closed: left in DDS
        # Its QoS event handlers are out of the wait set too (each message woke the executor).
        assert subscription.event_handlers and not any(group.can_execute(h) for h in subscription.event_handlers)
        taken = take_waiting(subscription)
        assert [message.data.data for message in taken] == [3, 4]  # KEEP_LAST: the newest two
        assert [message.sequence for message in taken] == [4, 5]
        assert before <= taken[0].wall_ns <= taken[1].wall_ns <= time.time_ns()
        assert take_waiting(subscription) == []
        group.open = True
        publisher.publish(UInt8(data=9))
        deadline = time.monotonic() + ACK_S
        while not served:
            assert time.monotonic() < deadline, "an open gate's subscription was never served"
            executor.spin_once(timeout_sec=0.05)
        ((number, info),) = served
        assert number == 9 and info["publication_sequence_number"] == 6
        node.destroy_subscription(subscription)
        assert take_waiting(subscription) == []  # destroyed meanwhile (a cleanup): nothing, no error
    finally:
        executor.shutdown()
        node.destroy_node()


class SlowPlanner:
    """The session's planner, ``PLANNER_DELAY_S`` slower per frame (a busy robot computer),
    recording when each plan began and ended."""

    def __init__(self, planner) -> None:
        self._planner, self.plans = planner, []

    def __getattr__(self, name: str):
        return getattr(self._planner, name)

    def plan(self, observation, **kwargs):
        began = time.monotonic()
        time.sleep(PLANNER_DELAY_S)
        plan = self._planner.plan(observation, **kwargs)
        self.plans.append((began, time.monotonic()))
        return plan


class Stream:
    """Frames of small JPEG cameras from a thread of the test: odometry 20 ms past each frame,
    then the side cameras and the anchor, each frame acknowledged by the node's DDS before
    the next (so "published before t" means "in the node's history before t")."""

    def __init__(self, harness, rate_hz: float, speed: float = 5.0) -> None:
        self.h, self.period, self.speed = harness, 1.0 / rate_hz, speed
        self.messages = {name: compressed(image, 0) for name, image in SMALL.items()}
        self.stopped_cameras: set[str] = set()
        self.frames: list[tuple[int, float, float]] = []  # (stamp, speed, monotonic when acknowledged)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def send(self) -> None:
        h, stamp = self.h, self.h.now_ns()
        h.send_odometry(stamp + 20 * MS, self.speed)
        publishers = [h.odometry]
        for name in SIDES_FIRST:
            if name not in self.stopped_cameras:
                message = self.messages[name]
                message.header.stamp = ns_to_stamp(stamp)
                h.cameras[name].publish(message)
                publishers.append(h.cameras[name])
        for publisher in publishers:
            assert publisher.wait_for_all_acked(Duration(seconds=ACK_S))
        self.frames.append((stamp, self.speed, time.monotonic()))

    def _run(self) -> None:
        next_frame = time.monotonic()
        while not self._stop.is_set():
            self.send()
            next_frame += self.period
            time.sleep(max(0.0, next_frame - time.monotonic()))

    def start(self) -> Stream:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(ACK_S)


@contextmanager
def cpu_load(workers: int):
    """``workers`` processes that keep a core busy each (what ``with_cpu_load`` does)."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(workers)]
    try:
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


def _reasons(h) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in h.frame_statuses:
        key = status.status if status.status == PLANNED else status.reason
        counts[key] = counts.get(key, 0) + 1
    return counts


def _accounted(node) -> int:
    snapshot = node.stats.snapshot()
    return snapshot["planned"] + snapshot["superseded"] + sum(snapshot["failures"].values())


@pytest.mark.parametrize("load", [0, 2], ids=["quiet", "with_cpu_load_2"])
def test_a_planner_slower_than_the_cameras_takes_only_frames_it_can_use_and_plans_the_newest(harness, planner, load):
    slow = SlowPlanner(planner)
    h = harness(stand_in=slow, image_transport="compressed", camera_qos="reliable", diagnostics_period_s=0.25)
    stream = Stream(h, rate_hz=30.0)
    stream.send()  # the first frame is taken before the stream: every later one is numbered after it
    h.wait_for(lambda: h.node.stats.snapshot()["inputs"]["f0"].taken >= 1, what="the first frame taken")
    with cpu_load(load):
        stream.start()
        h.wait_for(lambda: len(slow.plans) >= 6, what="six frames planned")
        stream.stop()
    published = len(stream.frames)
    h.wait_for(lambda: _accounted(h.node) == published, what=f"every one of {published} frames accounted for")
    snapshot = h.node.stats.snapshot()
    planned = snapshot["planned"]
    # Only frames the worker could use were taken: per frame planned, the newest images DDS
    # kept while it planned, and a drain or two more; not the ~27 frames published meanwhile.
    taken = snapshot["inputs"]["f0"].taken
    assert taken <= (planned + 2) * (CAMERA_DEPTH + 3), (taken, planned, published)
    assert taken < published / 2, (taken, published)
    # Every frame is planned or superseded: none is reported missing a camera or odometry that
    # was sent, acknowledged, on time.
    reasons = _reasons(h)
    assert set(reasons) <= {PLANNED, SUPERSEDED}, reasons
    assert CAMERA_MISSING not in snapshot["failures"] and ODOMETRY_UNAVAILABLE not in snapshot["failures"]
    assert snapshot["superseded"] == published - planned

    # Every planned frame is the newest complete one: newer than every frame already in the
    # node's DDS history when the planner finished the frame before it.
    def planned_stamps() -> list[int]:
        return [s.stamp_ns for s in h.frame_statuses if s.status == PLANNED]

    h.wait_for(lambda: len(planned_stamps()) == planned, what="every planned frame's status received")
    assert len(slow.plans) == planned
    for (_, finished), stamp in zip(slow.plans, planned_stamps()[1:], strict=False):
        waiting = [s for s, _, acknowledged in stream.frames if acknowledged < finished]
        assert stamp >= max(waiting), "an older frame was planned while a newer one waited in DDS"
    figures = snapshot["inputs"]["f0"]
    assert figures.rate_source == "published" and figures.not_taken > 0
    assert figures.published == published and figures.taken + figures.not_taken == published


def test_a_camera_that_stops_is_missing_and_warned_about(harness):
    h = harness(image_transport="compressed", camera_qos="reliable", diagnostics_period_s=0.25)
    stream = Stream(h, rate_hz=10.0).start()
    try:
        h.wait_for(lambda: _reasons(h).get(PLANNED, 0) >= 2, what="two frames planned")
        stream.stopped_cameras.add("l0")
        last_l0 = stream.frames[-1][0]  # l0's last image is at most this recent
        h.wait_for(
            lambda: any(s.reason == CAMERA_MISSING and "l0" in s.detail for s in h.frame_statuses),
            what="a frame skipped for camera_missing l0",
        )

        def warned() -> bool:
            inputs = h.latest_status("inputs")
            return inputs is not None and inputs.level == DiagnosticStatus.WARN and "l0" in inputs.message

        h.wait_for(warned, what="inputs WARN naming l0")
    finally:
        stream.stop()
    # A frame waits for l0's image (superseded by the next) only while l0 might still deliver:
    # up to the tolerance + 0.5 s after its last image.
    waited = [s.stamp_ns for s in h.frame_statuses if s.reason == SUPERSEDED and "l0" in s.detail]
    assert all(stamp <= last_l0 + 650 * MS for stamp in waited), [(stamp - last_l0) / MS for stamp in waited]


def test_transitions_while_images_stream_never_race_a_drain_nor_plan_a_frame_from_before_activation(harness):
    """Four deactivate/activate cycles (two through cleanup and configure) under a 30 Hz
    stream. Each cycle's frames have a speed of their own, and frames of the new speed are
    in the node's DDS before it is activated: none of those is ever planned, nor any frame
    of an earlier cycle (every planned frame lies inside its own cycle's window)."""
    h = harness(image_transport="compressed", camera_qos="reliable")
    stream = Stream(h, rate_hz=30.0, speed=1.0).start()
    windows = [(1.0, 0)]  # (speed, last frame acknowledged before activation), closed below
    ends = []  # each window's end: the clock once its deactivation returned
    try:
        for cycle in range(4):
            h.node.trigger_deactivate()
            ends.append(h.now_ns())
            if cycle % 2:
                h.node.trigger_cleanup()
                h.node.trigger_configure()
            speed = 2.0 + cycle
            stream.speed = speed
            h.wait_for(
                lambda s=speed: sum(1 for _, v, _ in stream.frames if v == s) >= 2,
                what="frames of the new speed acknowledged",
            )
            windows.append((speed, stream.frames[-1][0]))
            h.node.trigger_activate()
            h.wait_for(
                lambda s=speed: any(f.status == PLANNED and f.speed_mps == pytest.approx(s) for f in h.frame_statuses),
                what=f"a frame of cycle {cycle} planned",
            )
        h.node.trigger_deactivate()
        ends.append(h.now_ns())
    finally:
        stream.stop()
    planned = [s for s in h.frame_statuses if s.status == PLANNED]
    for status in planned:
        inside = [
            speed
            for (speed, begin), end in zip(windows, ends, strict=True)
            if status.speed_mps == pytest.approx(speed) and begin < status.stamp_ns <= end
        ]
        assert inside, f"planned outside its cycle: {status}"
