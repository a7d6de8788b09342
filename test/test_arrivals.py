"""Inputs in reception order, and what publication numbers say (``lead_ros.inputs.arrivals``)."""

from __future__ import annotations

import pytest

from lead_ros.inputs.arrivals import Arrival, ArrivalOrder, PublisherSequence

S = 1_000_000_000


def _arrival(key: str, wall_ns: int) -> Arrival:
    return Arrival(key, f"{key}@{wall_ns}", wall_ns, clock_ns=wall_ns)


def test_held_messages_come_out_in_reception_order_up_to_the_horizon():
    """A camera taken late (received at 10) comes before the odometry received at 11 that a
    callback took first; what was received at or after the horizon waits."""
    order = ArrivalOrder()
    for key, wall in (("odometry", 11), ("command", 13), ("f0", 10), ("l0", 12), ("odometry", 20)):
        order.hold(_arrival(key, wall))
    released = order.release(horizon_wall_ns=14)
    assert [(a.key, a.received_wall_ns) for a in released] == [
        ("f0", 10),
        ("odometry", 11),
        ("l0", 12),
        ("command", 13),
    ]
    assert len(order) == 1
    assert [a.key for a in order.release()] == ["odometry"] and len(order) == 0


def test_messages_received_at_the_same_time_keep_the_order_they_were_held_in():
    order = ArrivalOrder()
    for key in ("l0", "r0", "b0", "f0"):
        order.hold(_arrival(key, 5))
    assert [a.key for a in order.release(6)] == ["l0", "r0", "b0", "f0"]


def test_gaps_in_publication_numbers_are_messages_never_taken_and_the_publishers_rate():
    """30 Hz published, every fifth message taken: 4 never taken before each; the publisher's
    rate is 30 Hz, the rate taken 6 Hz."""
    sequence = PublisherSequence()
    unseen = [sequence.observe(number, number * S // 30) for number in range(1, 100, 5)]
    assert unseen == [0] + [4] * 19
    assert (sequence.taken, sequence.published, sequence.unseen) == (20, 96, 76)
    rate = sequence.rate()
    assert rate.published_hz == pytest.approx(30.0) and rate.taken_hz == pytest.approx(6.0)


def test_without_numbers_only_the_rate_taken_is_known():
    sequence = PublisherSequence()
    for k in range(10):
        assert sequence.observe(None, k * S // 10) == 0
    rate = sequence.rate()
    assert rate.published_hz is None and rate.taken_hz == pytest.approx(10.0)


def test_a_restarted_or_second_unnamed_publisher_restarts_the_rate_and_counts_no_gap():
    sequence = PublisherSequence()
    for k, number in enumerate((100, 101, 102)):
        sequence.observe(number, k * S)
    assert sequence.observe(1, 3 * S) == 0  # restarted: its numbers start again
    assert sequence.rate().published_hz is None  # one sample since the restart
    assert sequence.observe(3, 4 * S) == 1
    assert sequence.rate().published_hz == pytest.approx(2.0)


def test_named_publishers_are_numbered_apart():
    """Kilted names each message's publisher: two publishers' numbers do not look like gaps."""
    sequence = PublisherSequence()
    for k in range(1, 11):
        assert sequence.observe(k, k * S, publisher=b"a") == 0
        assert sequence.observe(k, k * S + S // 2, publisher=b"b") == 0
    assert sequence.rate().published_hz == pytest.approx(2.0)
