"""Taking messages when the node can use them rather than as they arrive.

A raw 1080p camera image is a 6 MB copy out of DDS and another into Python; taking every
image of four 30 Hz cameras costs a core, for the ~2 frames a second a CPU plans. So the
camera subscriptions keep their newest images in DDS (KEEP_LAST) and are served by the
executor only while the planner waits for a frame (``GatedCallbackGroup``); otherwise the
node takes what is waiting when it can use it (``take_waiting``).

rclpy has no documented on-demand take: ``take_waiting`` uses ``Subscription.handle.take_message``,
what rclpy's own executor calls on Jazzy (7.x) and Kilted (9.x) alike. This module is the one
place lead_ros calls it (``test/test_distro.py`` checks it on both).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.exceptions import InvalidHandle

# Messages one take_waiting call takes at most beyond the subscription's depth: a publisher
# faster than the taking cannot keep the loop going.
EXTRA_TAKES = 8


@dataclass(frozen=True)
class Received:
    """A message with what its message info says about its delivery."""

    data: Any
    wall_ns: int  # system clock when DDS received it (when taken, where the rmw does not say)
    sequence: int | None  # the publisher's number for it; None where the rmw does not number
    publisher: bytes | None  # the publisher's id where the rmw names it (Kilted), else None


def received(data: Any, info: dict | None) -> Received:
    """``data`` with its message info (a subscription callback's second argument, or what
    ``take_message`` returns beside the message)."""
    info = info or {}
    gid = info.get("publisher_gid")
    return Received(
        data,
        int(info.get("received_timestamp") or 0) or time.time_ns(),
        info.get("publication_sequence_number") or None,
        gid.get("data") if isinstance(gid, dict) else None,
    )


def take_waiting(subscription) -> list[Received]:
    """The messages waiting in ``subscription``'s history, oldest first; none once it is
    destroyed (a cleanup meanwhile)."""
    taken: list[Received] = []
    limit = subscription.qos_profile.depth + EXTRA_TAKES
    try:
        with subscription.handle:
            while len(taken) < limit:
                message = subscription.handle.take_message(subscription.msg_type, subscription.raw)
                if message is None:
                    break
                taken.append(received(*message))
    except InvalidHandle:
        pass
    return taken


class GatedCallbackGroup(MutuallyExclusiveCallbackGroup):
    """The node's input callback group: one callback at a time, and the entities passed to
    ``gate`` (camera subscriptions) are served only while ``open``. Closed, the executor
    leaves them out of its wait set, so their messages stay in DDS until taken on demand."""

    def __init__(self) -> None:
        super().__init__()
        self.open = False
        self._gated: set[int] = set()

    def gate(self, subscription) -> None:
        """Serve ``subscription`` only while open; its QoS event handlers too: left in the
        wait set, they wake the executor for every message that reaches the subscription
        (rmw_fastrtps notifies their shared condition), ~1000 empty wake-ups a second under
        four 30 Hz cameras."""
        for entity in (subscription, *getattr(subscription, "event_handlers", ())):
            self._gated.add(id(entity))

    def ungate(self, subscription) -> None:
        for entity in (subscription, *getattr(subscription, "event_handlers", ())):
            self._gated.discard(id(entity))

    def _closed_for(self, entity) -> bool:
        return not self.open and id(entity) in self._gated

    def can_execute(self, entity) -> bool:
        return not self._closed_for(entity) and super().can_execute(entity)

    def beginning_execution(self, entity) -> bool:
        return not self._closed_for(entity) and super().beginning_execution(entity)
