"""Nodes spun in a thread of their own until ``close``: the tools' replayers and recorders,
the demo's and the benchmark's drivers, and the tests' harness.

``close`` ends the spin before it shuts the executor down. rclpy's ``Executor.shutdown``
called from another thread while ``spin()`` runs sets the executor's guard condition to
None while the spinning thread may be building a wait set with it: that thread then dies
with "AttributeError: 'NoneType' object has no attribute 'handle'" (seen in the test
suite, rclpy 7.1.6), and a spin thread still inside rcl when the interpreter exits aborts
the process ("terminate called without an active exception"). Spinning until a future is
done, which ``close`` completes (the future's callback wakes the executor), lets the thread
leave rcl on its own first.
"""

from __future__ import annotations

import threading

from rclpy.executors import SingleThreadedExecutor
from rclpy.task import Future

JOIN_TIMEOUT_S = 10.0


class BackgroundSpin:
    """``nodes`` served by one ``SingleThreadedExecutor`` (as the shipped process serves the
    planner node) in a thread named ``name``."""

    def __init__(self, *nodes, name: str = "lead_ros_spin") -> None:
        self.executor = SingleThreadedExecutor(context=nodes[0].context)
        for node in nodes:
            self.executor.add_node(node)
        self._stop = Future()
        self.thread = threading.Thread(target=self.executor.spin_until_future_complete, args=(self._stop,), name=name)
        self.thread.start()

    def close(self) -> None:
        """Stop spinning (a callback in progress finishes first), then shut the executor down."""
        if not self._stop.done():
            self._stop.set_result(None)
        self.thread.join(JOIN_TIMEOUT_S)
        self.executor.shutdown(timeout_sec=JOIN_TIMEOUT_S)
