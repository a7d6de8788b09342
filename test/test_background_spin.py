"""``BackgroundSpin``: nodes spun in a thread, stopped without racing rclpy's shutdown.

``Executor.shutdown`` from another thread while ``spin()`` runs can hand the spinning thread
a guard condition that is already None (an AttributeError in that thread, seen once in the
suite); any exception in a thread fails the suite (setup.cfg), so these cycles would show it.
"""

from __future__ import annotations

import time

from lead_ros.ros.background_spin import BackgroundSpin

CYCLES = 30


def test_close_stops_the_thread_while_callbacks_keep_coming(ros_context):
    import rclpy

    for cycle in range(CYCLES):
        node = rclpy.create_node(f"background_spin_{cycle}", context=ros_context)
        ticks = []
        node.create_timer(0.0005, lambda ticks=ticks: ticks.append(time.monotonic()))
        spin = BackgroundSpin(node)
        deadline = time.monotonic() + 10
        while not ticks:  # the executor is serving the node
            assert time.monotonic() < deadline, "the timer never ran"
            time.sleep(0.001)
        spin.close()
        assert not spin.thread.is_alive()
        served = len(ticks)
        time.sleep(0.01)
        assert len(ticks) == served, "callbacks ran after close"
        node.destroy_node()
