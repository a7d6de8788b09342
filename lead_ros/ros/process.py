"""The ``lead_planner`` process: signals, start-up checks and the lifecycle bootstrap.

The main thread only installs the SIGINT/SIGTERM handlers and waits; everything else
(importing rclpy and torch, checking the params files, ``rclpy.init``, creating the node,
loading the weights, building the inference runtime, lifecycle transitions, spinning) runs
in the ``lead_planner_main`` thread. A Python signal handler runs only in the main thread,
and only between bytecodes: when that thread itself was inside a long call (an import, a
weights load, an ONNX export, a configure requested by a lifecycle manager), a signal
waited for the call to end, tens of seconds on a loaded machine, and ``ros2 launch`` kills
a node that has not exited 10 s after Ctrl-C. A free main thread handles it at once.

On the first signal the main thread logs one line saying which signal, asks the node
thread to close the node (shutdown transition, planner released), and waits for it at most
``STOP_GRACE_S``; if the node thread is still busy then (a load or an export under way, a
forward in flight), the process leaves without it: before the node serves nothing is lost,
while planning the frame in flight is dropped. Either way it exits 0 without a traceback,
through ``os._exit`` (nothing is left to flush but stdio).
Further signals are ignored by the OS (``ros2 launch`` delivers Ctrl-C twice: to the process
group, then forwarded). rclpy's own signal handlers are off: they shut the context down under
the worker thread ("publisher's context is invalid") and raise KeyboardInterrupt in whatever
the main thread is doing.

Exit codes: 0 after a signal, 1 when the node cannot start (bad parameters or params file,
weights that fail to load with ``autostart``).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

SPIN_PERIOD_S = 0.1  # how often the node thread looks at the stop flag
# From the first signal: how long the node thread may take to close the node before the
# process leaves without it (the requirement: exit within 2 s, 3 s on a loaded machine).
STOP_GRACE_S = 1.2
NODE_NAME = "lead_planner"  # as lead_ros.ros.node.NODE_NAME, which the main thread must not import


class StopRequest:
    """Set by the first SIGINT/SIGTERM. Further ones are then ignored by the OS (SIG_IGN): a
    Python handler would be reset to the default during interpreter teardown, where a late
    forwarded SIGINT would kill the process with -2 after a clean shutdown."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal_name = ""

    def install(self) -> StopRequest:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._on_signal)
        return self

    def _on_signal(self, signum: int, frame) -> None:
        for other in (signal.SIGINT, signal.SIGTERM):
            signal.signal(other, signal.SIG_IGN)
        self.signal_name = signal.Signals(signum).name
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout_s: float) -> bool:
        return self._event.wait(timeout_s)


def log_line(severity: str, message: str) -> None:
    """One line in rcutils' console format, written by the main thread itself: it must not
    import rclpy (the node thread may be importing it and hold the import lock)."""
    sys.stderr.write(f"[{severity}] [{time.time():.9f}] [{NODE_NAME}]: {message}\n")
    sys.stderr.flush()


def params_file_problem(argv: list[str]) -> str | None:
    """A missing, oversized or malformed ``--params-file``, named in one line. Checked before
    ``rclpy.init``: rcl parses the files inside it, holding the GIL, with no size limit, and
    raises a multi-line RCLError."""
    from lead_ros.node_config import read_params_file

    if argv and argv[-1] == "--params-file":
        return "--params-file needs a file name"
    for name in [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--params-file"]:
        try:
            read_params_file(name)
        except ValueError as error:
            return str(error)
    return None


class NodeThread(threading.Thread):
    """Imports, start-up checks, the node's life and its orderly close; ``code`` is the exit
    code once it ends by itself (1: could not start)."""

    def __init__(self, argv: list[str], stop: StopRequest) -> None:
        super().__init__(name="lead_planner_main", daemon=True)
        self.argv, self.stop, self.code = argv, stop, 0

    def run(self) -> None:
        try:
            self._run()
        except BaseException:  # a bug: its traceback is printed by threading, the exit code says so
            self.code = 1
            raise

    def _run(self) -> None:
        import rclpy
        from rclpy.signals import SignalHandlerOptions

        from lead_ros.ros.node import one_line

        logger = rclpy.logging.get_logger(NODE_NAME)
        if self.stop.requested:
            return
        problem = params_file_problem(self.argv)
        if problem:
            logger.fatal(f"cannot start: {problem}")
            self.code = 1
            return
        try:
            rclpy.init(args=self.argv, signal_handler_options=SignalHandlerOptions.NO)
        except Exception as error:  # RCLError: arguments or a params file rcl cannot use
            logger.fatal(f"cannot start: {one_line(error)}")
            self.code = 1
            return
        try:
            self.code = self._serve(logger, one_line)
        finally:
            rclpy.try_shutdown()

    def _serve(self, logger, one_line) -> int:
        from rclpy.executors import SingleThreadedExecutor

        from lead_ros.ros.node import LeadPlannerNode

        try:
            node = LeadPlannerNode()
        except Exception as error:  # ParameterError (one line already), or rclpy's own
            logger.fatal(f"cannot start: {one_line(error)}")
            return 1
        executor = SingleThreadedExecutor()
        try:
            executor.add_node(node)
            if node.config.autostart and not self.stop.requested:
                logger.info("autostart: configuring (loading the weights) and activating")
                if not node.bring_up() and not self.stop.requested:
                    return 1  # on_configure logged the reason in one line
            while not self.stop.requested:
                executor.spin_once(timeout_sec=SPIN_PERIOD_S)
            return 0
        finally:
            node.close()
            node.destroy_node()
            executor.shutdown()


def main(args: list[str] | None = None) -> int:
    """Run ``lead_planner`` until SIGINT/SIGTERM; see the module docstring for exit codes."""
    stop = StopRequest().install()
    node_thread = NodeThread(list(sys.argv if args is None else args), stop)
    node_thread.start()
    while node_thread.is_alive() and not stop.wait(SPIN_PERIOD_S):
        pass
    if not stop.requested:
        return node_thread.code  # ended by itself: it could not start
    log_line("INFO", f"{stop.signal_name}: shutting down")
    node_thread.join(STOP_GRACE_S)  # still loading, exporting or finishing a forward after it: leave without it
    # The node is closed (or need not be): skip the interpreter's teardown of torch and the
    # runtime's sessions, which alone took a second on a loaded machine.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
