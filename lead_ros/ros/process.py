"""The ``lead_planner`` process: signals, start-up checks and the lifecycle bootstrap.

Only the standard library is imported at module level, so the SIGINT/SIGTERM handlers are
in place before rclpy, torch and the model are: a Ctrl-C before the node exists (importing)
ends the process at once; later (loading the weights, idle, planning) it asks for a stop.
Either way the process exits 0 without a traceback. ``ros2 launch`` delivers Ctrl-C twice
(to the process group, then forwarded); the second request is ignored. rclpy's own signal
handlers are off: they shut the context down under the worker thread ("publisher's context
is invalid") and re-raise KeyboardInterrupt in whatever the main thread is doing.

Exit codes: 0 after a signal, 1 when the node cannot start (bad parameters or params file,
weights that fail to load with ``autostart``).
"""

from __future__ import annotations

import os
import signal
import sys
import threading

SPIN_PERIOD_S = 0.1  # how often the main loop looks at the stop flag


class StopRequest:
    """Set by the first SIGINT/SIGTERM. Further ones are then ignored by the OS (SIG_IGN): a
    Python handler would be reset to the default during interpreter teardown, where a late
    forwarded SIGINT would kill the process with -2 after a clean shutdown."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal_name = ""
        # Until the node exists there is nothing to close: a signal ends the process at once
        # instead of after the imports finish (tens of seconds on a loaded machine).
        self.exit_at_once = True

    def install(self) -> StopRequest:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._on_signal)
        return self

    def _on_signal(self, signum: int, frame) -> None:
        for other in (signal.SIGINT, signal.SIGTERM):
            signal.signal(other, signal.SIG_IGN)
        self.signal_name = signal.Signals(signum).name
        if self.exit_at_once:
            os._exit(0)
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()


def params_file_problem(argv: list[str]) -> str | None:
    """A missing or malformed ``--params-file``, named in one line (rcl would raise a
    multi-line RCLError from ``rclpy.init`` instead)."""
    from lead_ros.node_config import read_params_file

    if argv and argv[-1] == "--params-file":
        return "--params-file needs a file name"
    for name in [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--params-file"]:
        try:
            read_params_file(name)
        except ValueError as error:
            return str(error)
    return None


def main(args: list[str] | None = None) -> int:
    """Run ``lead_planner`` until SIGINT/SIGTERM; see the module docstring for exit codes."""
    stop = StopRequest().install()
    argv = list(sys.argv if args is None else args)
    # Heavy imports after the handlers: a signal meanwhile ends the process (nothing to close yet).
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    from lead_ros.ros.node import NODE_NAME, LeadPlannerNode, one_line

    logger = rclpy.logging.get_logger(NODE_NAME)
    if stop.requested:
        return 0
    problem = params_file_problem(argv)
    if problem:
        logger.fatal(f"cannot start: {problem}")
        return 1
    try:
        rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    except Exception as error:  # RCLError: arguments or a params file rcl cannot use
        logger.fatal(f"cannot start: {one_line(error)}")
        return 1
    node = executor = None
    try:
        try:
            stop.exit_at_once = False  # from here on the node is closed properly
            node = LeadPlannerNode()
        except Exception as error:  # ParameterError (one line already), or rclpy's own
            logger.fatal(f"cannot start: {one_line(error)}")
            return 1
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        if node.config.autostart and not stop.requested:
            logger.info("autostart: configuring (loading the weights) and activating")
            if not node.bring_up():
                return 1  # on_configure logged the reason in one line
        while not stop.requested:
            executor.spin_once(timeout_sec=SPIN_PERIOD_S)
        logger.info(f"{stop.signal_name}: shutting down")
        return 0
    finally:
        if node is not None:
            node.close()
            node.destroy_node()
        if executor is not None:
            executor.shutdown()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
