"""The node's input path: messages -> intake, in the order they were received, with camera
images taken only when the planner can use a frame.

Small inputs (odometry, IMU, command, route, CameraInfo) are taken by the executor as they
come. Camera subscriptions are gated (``on_demand.GatedCallbackGroup``): DDS keeps each
camera's newest images until the node *drains* them, which it does when the worker asks for
a frame (and, while the worker waits, whenever an input arrives), and once per
``stale_check_s`` otherwise, so that a camera that stops is still noticed.

While active, every message is held with its reception time (``inputs.arrivals``) and a
drain applies, oldest first, those received before it began: by then every input received
earlier has been taken, so a frame sees exactly the small inputs received before its last
camera, as ``evaluate-bag`` does reading the bag in record order. Inactive, cameras,
odometry and IMU are taken and counted but not kept (nothing received then is planned
later); command, route and CameraInfo are in force at once.

Everything here runs under one lock, which the node's transitions take too: a drain and a
deactivate or cleanup never interleave.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from lead_ros.inputs.arrivals import Arrival, ArrivalOrder
from lead_ros.ros.diagnostics import PipelineStats
from lead_ros.ros.intake import Event, InputIntake
from lead_ros.ros.on_demand import GatedCallbackGroup, Received, received, take_waiting

# A message received less than this before a drain began waits for the next drain: DDS stamps
# a message's reception just before it enters the subscription's history.
ORDER_MARGIN_NS = 1_000_000
# Inactive, these inputs are taken (and counted) but not kept.
FRAME_INPUTS = ("odometry", "imu")
# Messages held at most while the planner is busy (a first frame at a new input height can
# take minutes): beyond this a drain applies them (taking the cameras too).
MAX_HELD = 10_000
# How often a worker waiting for its drain checks that it should still wait (deactivate, stop).
REQUEST_POLL_S = 0.1


class InputPump:
    def __init__(
        self,
        intake: InputIntake,
        stats: PipelineStats,
        active: threading.Event,
        handle: Callable[[list[Event]], None],
        clock_ns: Callable[[], int],
        simulated_time: Callable[[], bool],
        guarded: Callable[[str, Callable], Callable],
    ) -> None:
        """``handle`` takes the intake's events; ``guarded(place, callback)`` wraps what
        applies one input's messages (and the flush) in the node's last line of defence, so
        an exception there is reported under the input, whichever callback drained it."""
        self.intake, self.stats, self._active, self._handle = intake, stats, active, handle
        self._clock_ns, self._simulated_time, self._guarded = clock_ns, simulated_time, guarded
        self._flush = guarded("flush timer", lambda: self._handle(self.intake.flush(self._clock_ns())))
        self.group = GatedCallbackGroup()
        self.lock = threading.RLock()
        self._subscriptions: dict[str, object] = {}  # input key -> subscription, in the topic table's order
        self._appliers: dict[str, Callable] = {}  # input key -> its messages' way into the intake, guarded
        self._cameras: set[str] = set()
        self.camera_type: type | None = None  # Image or CompressedImage, set at configure
        self._arrivals = ArrivalOrder()
        self._activated_wall_ns = 0
        self._drained = threading.Condition()
        self.drains = 0
        self._last_drain = time.monotonic()
        self.drain_request: Callable[[], None] = lambda: None  # the node's guard condition trigger

    # --- configuration and transitions (the node's) -----------------------------------------

    def add(self, key: str, subscription, camera: bool) -> None:
        self._subscriptions[key] = subscription
        place = f"camera {key}" if camera else key
        self._appliers[key] = self._guarded(place, lambda arrival: self._handle(self._apply(arrival)))
        if camera:
            self._cameras.add(key)
            self.group.gate(subscription)

    def remove_all(self) -> list:
        """Forget the subscriptions (cleanup) and return them, for the node to destroy."""
        with self.lock:
            subscriptions = list(self._subscriptions.values())
            for subscription in subscriptions:
                self.group.ungate(subscription)
            self._subscriptions, self._appliers, self._cameras = {}, {}, set()
            self._arrivals.clear()
            return subscriptions

    def activate(self) -> None:
        """From now on frames are made; a message received before now never is part of one."""
        with self.lock:
            self._arrivals.clear()
            self._activated_wall_ns = time.time_ns()

    def deactivate(self) -> None:
        with self.lock:
            self.group.open = False
            self._arrivals.clear()

    # --- taking -------------------------------------------------------------------------------

    def arrived(self, key: str, data, info: dict | None) -> None:
        """An input subscription's callback (cameras only while the gate is open)."""
        with self.lock:
            self._receive(key, received(data, info))
            if self.group.open or len(self._arrivals) > MAX_HELD:
                self._drain()

    def drain(self) -> None:
        """Take what waits in every input subscription and apply what was received before now."""
        with self.lock:
            self._drain()

    def tick(self) -> None:
        """The flush timer: while the worker waits for a frame, a pending frame whose deadline
        passed is resolved (after taking what waits). With the planner busy nothing is
        taken, so nothing is resolved without its images."""
        with self.lock:
            if self._active.is_set() and self.group.open:
                self._drain()

    def drain_if_idle_for(self, seconds: float) -> None:
        """Drain when the last drain is older than ``seconds`` (the diagnostics timer: a
        camera's age is then at most that old, however long the planner is busy)."""
        with self.lock:
            if self._active.is_set() and time.monotonic() - self._last_drain > seconds:
                self._drain()

    def frame_queued(self) -> None:
        """A frame waits for the worker: close the gate until it asks again."""
        self.group.open = False

    def request_frame(self, frame_waiting: Callable[[], bool], keep_waiting: Callable[[], bool]) -> None:
        """The worker is free: open the gate (unless a frame already waits) and have the
        executor drain, waiting for that drain (while ``keep_waiting``), so that the frame
        the worker then takes is the newest complete one, not one queued while it planned."""
        with self.lock:
            if not frame_waiting():
                self.group.open = True
        with self._drained:
            count = self.drains
            self.drain_request()
            while self.drains == count and keep_waiting():
                self._drained.wait(REQUEST_POLL_S)

    def _receive(self, key: str, message: Received) -> None:
        clock_ns = self._clock_at(message.wall_ns)
        unseen = self.stats.received(key, clock_ns, message.sequence, message.publisher)
        arrival = Arrival(key, message.data, message.wall_ns, clock_ns, unseen)
        if self._active.is_set() and message.wall_ns >= self._activated_wall_ns:
            self._arrivals.hold(arrival)
        elif key not in self._cameras and key not in FRAME_INPUTS:
            self._appliers[key](arrival)

    def _clock_at(self, wall_ns: int) -> int:
        """The node clock when a message was received (simulated time: the clock now)."""
        now = self._clock_ns()
        return now if self._simulated_time() else now - max(0, time.time_ns() - wall_ns)

    def _drain(self) -> None:
        began = time.time_ns()
        for key, subscription in self._subscriptions.items():
            for message in take_waiting(subscription):
                self._receive(key, message)
        for arrival in self._arrivals.release(began - ORDER_MARGIN_NS):
            applier = self._appliers.get(arrival.key)
            if applier is not None:  # None: its subscription went (cleanup) while it was held
                applier(arrival)
        if self._active.is_set():
            self._flush()
        self._last_drain = time.monotonic()
        with self._drained:
            self.drains += 1
            self._drained.notify_all()

    def _apply(self, arrival: Arrival) -> list[Event]:
        key = arrival.key
        if key not in self._cameras:
            return self.intake.message(key, arrival.payload, arrival.clock_ns)
        if key == self.intake.policy.anchor and arrival.unseen_before:
            self.stats.frames_superseded(arrival.unseen_before, never_taken=True)
        return self.intake.serialized_camera(
            key, arrival.payload, self.camera_type, arrival.clock_ns, arrival.unseen_before > 0
        )
