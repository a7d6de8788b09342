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


def _jpeg_message(width: int, height: int, stamp_ns: int):
    import cv2
    import numpy as np
    from sensor_msgs.msg import CompressedImage

    from lead_ros.ros.encoding import ns_to_stamp

    ok, data = cv2.imencode(".jpg", np.zeros((height, width, 3), np.uint8))
    assert ok
    msg = CompressedImage(format="jpeg", data=data.tobytes())
    msg.header.stamp = ns_to_stamp(stamp_ns)
    return msg


@pytest.mark.parametrize(
    ("size", "refused"),
    [((7680, 4320), True), ((4096, 2304), False), ((5120, 2880), True), ((3840, 2160), False)],
)
def test_cameras_beyond_the_documented_maximum_are_refused_from_the_header(size, refused):
    """Four 7680x4320 cameras were accepted (16:9) and raised RSS by gigabytes for good."""
    from lead_ros.node_config import NodeConfig
    from lead_ros.ros.intake import InputIntake, InputRejected

    intake = InputIntake(NodeConfig.from_values({"image_transport": "compressed"}))
    events = intake.message("l0", _jpeg_message(*size, 10**18), 10**18)
    rejected = [e for e in events if isinstance(e, InputRejected)]
    if refused:
        (event,) = rejected
        width, height = size
        assert event.detail == (
            f"camera l0: {width}x{height} pixels ({width * height / 1e6:.1f} MP) is larger than accepted (each side "
            "<= 4096 px and <= 16.8 MP: max_camera_side_px, max_camera_megapixels)"
        )
    else:
        assert rejected == []
    raised = InputIntake(NodeConfig.from_values({"max_camera_side_px": 8000, "max_camera_megapixels": 40.0}))
    events = raised.message("l0", _jpeg_message(7680, 4320, 10**18), 10**18)
    assert not [e for e in events if isinstance(e, InputRejected)], "the limits are parameters"
