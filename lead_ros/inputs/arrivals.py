"""Input messages in the order they were received, whenever they are taken.

The live node takes camera images only when the planner can use a frame (a raw 1080p image
is a 6 MB copy; four cameras at 30 Hz are 120 of them a second against the ~2 frames a CPU
plans), while small inputs (odometry, IMU, command, route, CameraInfo) are taken as they
come. For a frame to see exactly the inputs that arrived before its last camera, as offline
evaluation does reading a bag in record order, every message is held with its reception
time and applied in that order, up to a horizon before which every input has been taken
(``ArrivalOrder``).

A publisher numbers its messages; the gaps in the numbers a subscription takes are messages
that DDS replaced by newer ones before the node took them (``PublisherSequence``): how the
node tells "this camera's image for the frame was never taken" from "this camera sent none".
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

# A subscription's rate is measured over its last this many messages taken.
RATE_WINDOW = 20


@dataclass(frozen=True)
class Arrival:
    """One input message as received: ``key`` is its topic key (``ros.topics``)."""

    key: str
    payload: Any  # the message, or its serialized bytes (cameras)
    received_wall_ns: int  # system clock when DDS received it: orders arrivals of all inputs
    clock_ns: int  # the node clock at reception (what offline evaluation takes from the bag)
    unseen_before: int = 0  # messages of this publisher replaced before they were taken


class ArrivalOrder:
    """Messages held until every input received before them has been taken."""

    def __init__(self) -> None:
        self._held: list[tuple[int, int, Arrival]] = []
        self._count = 0  # ties keep the order of holding

    def hold(self, arrival: Arrival) -> None:
        self._held.append((arrival.received_wall_ns, self._count, arrival))
        self._count += 1

    def release(self, horizon_wall_ns: int | None = None) -> list[Arrival]:
        """The held messages received before ``horizon_wall_ns`` (all when None), oldest first."""
        ready = [item for item in self._held if horizon_wall_ns is None or item[0] < horizon_wall_ns]
        if len(ready) == len(self._held):
            self._held = []
        else:
            kept = {id(item) for item in ready}
            self._held = [item for item in self._held if id(item) not in kept]
        return [arrival for _, _, arrival in sorted(ready, key=lambda item: item[:2])]

    def clear(self) -> None:
        self._held = []

    def __len__(self) -> int:
        return len(self._held)


@dataclass(frozen=True)
class SequenceRate:
    """What a subscription's publication sequence numbers say."""

    published_hz: float | None  # the publishers' rate; None when it cannot be derived
    taken_hz: float  # the rate of messages the node took


class PublisherSequence:
    """One input's publication sequence numbers (``publication_sequence_number`` of the
    message info, per publisher where the rmw names it): messages replaced before they were
    taken, and the publishers' rate. A number at or below the previous one of an unnamed
    publisher is a restart or a second publisher: the rate window starts again there (two
    unnamed publishers interleaved leave the rate underived, never wrong)."""

    def __init__(self) -> None:
        self._last: dict[Any, int] = {}
        self._taken: deque[int] = deque(maxlen=RATE_WINDOW)  # clock ns of messages taken
        self._published: deque[tuple[int, int]] = deque(maxlen=RATE_WINDOW)  # (clock ns, published so far)
        self.taken = 0
        self.published = 0  # messages published since the first taken, by the numbers (taken when unnumbered)
        self.unseen = 0  # of those, replaced before they were taken

    def observe(self, sequence: int | None, clock_ns: int, publisher: Any = None) -> int:
        """A message taken at ``clock_ns``; returns how many of its publisher's messages since
        the previous one taken were never taken (0 for the first, or when unnumbered)."""
        self.taken += 1
        self._taken.append(clock_ns)
        unseen = 0
        if sequence is None or sequence <= 0:  # this rmw does not number messages
            self._published.clear()
        else:
            last = self._last.get(publisher)
            if last is not None and sequence > last:
                unseen = sequence - last - 1
            elif last is not None:
                self._published.clear()
            self._last[publisher] = sequence
        self.published += 1 + unseen
        self.unseen += unseen
        if sequence is not None and sequence > 0:
            self._published.append((clock_ns, self.published))
        return unseen

    def rate(self) -> SequenceRate:
        taken_hz = 0.0
        if len(self._taken) >= 2 and self._taken[-1] > self._taken[0]:
            taken_hz = (len(self._taken) - 1) * 1e9 / (self._taken[-1] - self._taken[0])
        published_hz = None
        if len(self._published) >= 2 and self._published[-1][0] > self._published[0][0]:
            (t0, p0), (t1, p1) = self._published[0], self._published[-1]
            published_hz = (p1 - p0) * 1e9 / (t1 - t0)
        return SequenceRate(published_hz, taken_hz)
