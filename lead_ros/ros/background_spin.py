"""Nodes spun in a thread of their own until ``close``: the tools' replayers and recorders,
the demo's and the benchmark's drivers, and the tests' harness.

``close`` ends the spin before it shuts the executor down. rclpy's ``Executor.shutdown``
called from another thread while ``spin()`` runs sets the executor's guard condition to
None while the spinning thread may be building a wait set with it: that thread then dies
with "AttributeError: 'NoneType' object has no attribute 'handle'" (seen in the test
suite, rclpy 7.1.6), and a spin thread still inside rcl when the interpreter exits aborts
the process ("terminate called without an active exception"). So the thread spins one
callback at a time until ``close`` asks it to stop (and wakes the executor), and the executor
is shut down once the thread has left rcl. (Not ``spin_until_future_complete``: rclpy adds a
callback to the future on every turn, a list that grows for as long as a recorder runs.)
"""

from __future__ import annotations

import threading

from rclpy.executors import SingleThreadedExecutor

JOIN_TIMEOUT_S = 10.0
# Longest wait of one turn: close also wakes the executor, this only bounds a missed wake-up.
SPIN_PERIOD_S = 0.1


class BackgroundSpin:
    """``nodes`` served by one ``SingleThreadedExecutor`` (as the shipped process serves the
    planner node) in a thread named ``name``."""

    def __init__(self, *nodes, name: str = "lead_ros_spin") -> None:
        self.executor = SingleThreadedExecutor(context=nodes[0].context)
        for node in nodes:
            self.executor.add_node(node)
        self._stopping = threading.Event()
        self.thread = threading.Thread(target=self._spin, name=name)
        self.thread.start()

    def _spin(self) -> None:
        while not self._stopping.is_set() and self.executor.context.ok():
            self.executor.spin_once(timeout_sec=SPIN_PERIOD_S)

    def close(self) -> None:
        """Stop spinning (a callback in progress finishes first), then shut the executor down."""
        self._stopping.set()
        self.executor.wake()
        self.thread.join(JOIN_TIMEOUT_S)
        self.executor.shutdown(timeout_sec=JOIN_TIMEOUT_S)
