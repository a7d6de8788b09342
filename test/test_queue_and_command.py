"""The drop-oldest frame queue and the route-command tracker."""

from __future__ import annotations

import threading

import pytest

from lead_ros.inputs.command import CommandTracker
from lead_ros.inputs.frame_queue import LatestFrameQueue
from lead_ros.observation import Command

S = 1_000_000_000


def test_queue_keeps_the_newest_and_counts_drops():
    queue = LatestFrameQueue()
    assert queue.put(1) is None
    assert queue.put(2) == 1
    assert queue.put(3) == 2
    assert queue.get(timeout=0) == 3
    assert queue.get(timeout=0) is None
    queue.put(4)
    queue.close()
    assert queue.get(timeout=0) is None
    assert (queue.put_count, queue.dropped_count) == (4, 3)  # in = processed (1) + dropped (3)


def test_queue_clear_discards_the_waiting_frame_and_counts_it():
    queue = LatestFrameQueue()
    queue.put(1)
    queue.clear()
    assert queue.get(timeout=0) is None and queue.pending == 0
    queue.clear()  # nothing waiting: nothing counted
    queue.put(2)
    assert queue.get(timeout=0) == 2
    assert (queue.put_count, queue.dropped_count) == (2, 1)


def test_queue_wakes_a_waiting_consumer():
    queue = LatestFrameQueue()
    got = []
    consumer = threading.Thread(target=lambda: got.append(queue.get(timeout=5)))
    consumer.start()
    queue.put("frame")
    consumer.join(5)
    assert got == ["frame"]


def test_command_default_until_received_then_stale():
    tracker = CommandTracker(Command.UNKNOWN, timeout_s=2.0)
    assert tracker.state(0).command is Command.UNKNOWN
    assert tracker.state(0).source == "default: none received yet"
    tracker.update(0, 10 * S)
    state = tracker.state(11 * S)
    assert (state.command, state.source, state.age_s) == (Command.LEFT, "received", 1.0)
    stale = tracker.state(13 * S)
    assert stale.command is Command.UNKNOWN and stale.source == "default: last command stale"


def test_command_never_stale_without_timeout_and_refuses_out_of_range():
    tracker = CommandTracker(Command.STRAIGHT)
    tracker.update(2, 0)
    assert tracker.state(10**6 * S).command is Command.RIGHT
    with pytest.raises(ValueError, match=r"command 7 is outside 0\.\.3"):
        tracker.update(7, 1)
    assert tracker.state(2).command is Command.RIGHT
