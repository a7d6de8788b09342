"""The ``lead_planner`` process: a small supervisor, and the node process it starts.

Why two processes: a Python signal handler runs only in the main thread, and only once that
thread holds the GIL. The node's work holds the GIL for up to a second at a time in calls
nothing can interrupt (measured on the quiet development machine: ``torch.onnx.export``
0.7-1.1 s, creating an ONNX Runtime session 0.5-0.9 s, the garbage collection after an
export 0.7-1.0 s), several times that on a busy machine: a CI run measured 3.7 s from
SIGTERM to exit during an export, and ``ros2 launch`` kills a node that has not exited 10 s
after Ctrl-C. The supervisor (``main``, the ``lead_planner`` executable) imports nothing
heavy and runs no work of its own, so it answers a signal at once, whatever the node does.

Supervisor: handles SIGINT/SIGTERM, starts the node process (``python -m
lead_ros.ros.process`` with the same arguments, the same stdout and stderr) and waits. On
the first signal it logs one line saying which signal, passes SIGTERM on, and gives the node
process ``KILL_AFTER_S`` to close before it kills it; it then exits 0. When the node process
ends by itself, its exit code is the supervisor's (1: it could not start, the reason already
logged); killed by something else (the OOM killer), one line and exit 1.

Node process (``serve``): its main thread only handles signals (SIGINT from the terminal's
process group, SIGTERM from the supervisor) and waits; imports, the params-file checks,
``rclpy.init``, the node, its transitions and spinning run in the ``lead_planner_main``
thread. On the first signal that thread closes the node (shutdown transition, planner
released); if it is still busy ``STOP_GRACE_S`` later (a load or an export under way, a
forward in flight), the process leaves without it: before the node serves nothing is lost,
while planning the frame in flight is dropped. Either way it leaves through ``os._exit(0)``
and first removes its DDS participant's shared-memory segments (``dds_segments``), which
only the interpreter's teardown would have had Fast DDS remove; the supervisor does the same
for a node process it kills. rclpy's own signal
handlers are off: they shut the context down under the node thread ("publisher's context is
invalid"). The node process dies with the supervisor (``PR_SET_PDEATHSIG``): a supervisor
killed by ``ros2 launch`` leaves no node behind.

In both processes only the first signal counts (``ros2 launch`` delivers Ctrl-C twice, to the
process group, then forwarded; the supervisor passes one on), and a signalled process leaves
through ``os._exit``: the interpreter's teardown would reset the handlers to the default,
where a late SIGINT would end a clean exit with -2. The node process is started with SIGINT
and SIGTERM blocked and unblocks them once its handlers are in place, so a signal during its
start-up is handled, never a KeyboardInterrupt traceback.

Exit codes: 0 after a signal, 1 when the node cannot start (bad parameters or params file,
weights that fail to load with ``autostart``).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from typing import NoReturn

from lead_ros.model.torch_import import is_torch_import_failure, torch_load_problem
from lead_ros.ros.dds_segments import owned_segments, remove_segments

SPIN_PERIOD_S = 0.1  # how often the node thread looks at the stop flag
# From the first signal (the requirement: exit within 2 s, 3 s on a loaded machine): how long
# the node thread may take to close the node before the node process leaves without it, and
# when the supervisor kills a node process that has still not exited.
STOP_GRACE_S = 1.2
KILL_AFTER_S = 1.6
NODE_NAME = "lead_planner"  # as lead_ros.ros.node.NODE_NAME, which neither main thread may import
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
SUPERVISOR_PID_ENV = "LEAD_PLANNER_SUPERVISOR_PID"
# Set by the launch file: the supervisor ends (SIGTERM, its orderly stop) when its parent dies.
# `ros2 launch` killed by SIGTERM exits without stopping its children (ros2/launch#666), which
# left lead_planner running under PID 1, still in the domain. `ros2 run` and `nohup lead_planner &`
# do not set it and outlive their parent as before.
EXIT_WITH_PARENT_ENV = "LEAD_ROS_EXIT_WITH_PARENT"
PR_SET_PDEATHSIG = 1  # prctl option, <linux/prctl.h>


class StopRequest:
    """Set by the first SIGINT/SIGTERM; later ones change nothing. The handler stays
    installed: setting SIG_IGN from inside it raced a second signal already pending (both
    arrive together when they were blocked, and ``ros2 launch`` sends Ctrl-C twice), which
    CPython reports with an OSError traceback. A process that was signalled leaves through
    ``os._exit``, so the interpreter's teardown never resets the handler to the default."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal_name = ""

    def install(self) -> StopRequest:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)
        return self

    def _on_signal(self, signum: int, frame) -> None:
        if not self._event.is_set():
            self.signal_name = signal.Signals(signum).name
            self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout_s: float) -> bool:
        return self._event.wait(timeout_s)


def logger_name(argv: list[str]) -> str:
    """The node's logger name as rcl makes it from ``-r __node:=`` and ``-r __ns:=`` (launch's
    ``name`` and ``namespace``): ``veh1.planner`` for ``/veh1`` and ``planner``, so that the
    supervisor's lines carry the node's name, as every other line does."""
    name, namespace = NODE_NAME, ""
    in_ros_args = False
    for flag, value in zip(argv, [*argv[1:], ""], strict=True):
        if flag == "--ros-args":
            in_ros_args = True
        elif flag == "--":
            in_ros_args = False
        elif in_ros_args and flag in ("-r", "--remap"):
            target, rule = "", value
            if ":" in value.partition(":=")[0]:  # node:from:=to, a remap for that node only
                target, _, rule = value.partition(":")
            if target not in ("", NODE_NAME):
                continue
            if rule.startswith(("__node:=", "__name:=")):
                name = rule.split(":=", 1)[1]
            elif rule.startswith("__ns:="):
                namespace = rule.split(":=", 1)[1]
    return ".".join(part for part in (*namespace.strip("/").split("/"), name) if part)


def log_line(severity: str, message: str, name: str = NODE_NAME) -> None:
    """One line in rcutils' console format, written by the main thread itself: it must not
    import rclpy (the node thread may be importing it and hold the import lock)."""
    sys.stderr.write(f"[{severity}] [{time.time():.9f}] [{name}]: {message}\n")
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

        try:
            from lead_ros.ros.node import one_line  # imports PyTorch
        except ImportError as error:
            if not is_torch_import_failure(error):
                raise
            log_line("FATAL", f"cannot start: {torch_load_problem(error)}", logger_name(self.argv))
            self.code = 1
            return

        logger = rclpy.logging.get_logger(logger_name(self.argv))
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
                if not node.bring_up(stopping=lambda: self.stop.requested) and not self.stop.requested:
                    return 1  # on_configure logged the reason in one line
            while not self.stop.requested:
                executor.spin_once(timeout_sec=SPIN_PERIOD_S)
            return 0
        finally:
            node.close()
            node.destroy_node()
            executor.shutdown()


def _signal_when_parent_dies(signum: int) -> None:
    """Have the kernel send ``signum`` to this process when its parent dies (Linux)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the supervisor stops it on its own exit paths
        pass


def _die_with_supervisor() -> bool:
    """Have the kernel send this process SIGTERM when the supervisor dies, which it handles as
    any stop (its node closed, its DDS shared-memory segments removed; a SIGKILL left them in
    /dev/shm); False when the supervisor is already gone."""
    supervisor = os.environ.get(SUPERVISOR_PID_ENV)
    if supervisor is None:
        return True  # started by hand, without a supervisor
    _signal_when_parent_dies(signal.SIGTERM)
    return os.getppid() == int(supervisor)


def serve(argv: list[str]) -> int:
    """The node process: the node thread until a signal, then its orderly close for at most
    ``STOP_GRACE_S``; see the module docstring."""
    stop = StopRequest().install()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked by the supervisor until now
    if not _die_with_supervisor() or stop.requested:
        return 0
    node_thread = NodeThread(argv, stop)
    node_thread.start()
    while node_thread.is_alive() and not stop.wait(SPIN_PERIOD_S):
        pass
    if not stop.requested:
        return node_thread.code  # ended by itself: it could not start
    node_thread.join(STOP_GRACE_S)  # still loading, exporting or finishing a forward after it: leave without it
    # The node is closed (or need not be): skip the interpreter's teardown of torch and the
    # runtime's sessions, which alone took a second on a loaded machine. That teardown is
    # also what finalizes the DDS participant (rclpy's shutdown does not), so remove the
    # shared-memory files Fast DDS would have removed then (35 MB in RAM per stop otherwise).
    remove_segments(owned_segments(os.getpid()))
    _exit_now(0)


def _exit_now(code: int) -> NoReturn:
    """Exit without the interpreter's teardown (see ``StopRequest``)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _start_node_process(argv: list[str]) -> subprocess.Popen:
    """The node process with this process's arguments, output and environment, started with
    SIGINT and SIGTERM blocked (it unblocks them once its handlers are in place; a signal
    meanwhile waits for it, here and there)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "lead_ros.ros.process", *argv[1:]],
            env={**os.environ, SUPERVISOR_PID_ENV: str(os.getpid())},
        )
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def main(args: list[str] | None = None) -> int:
    """``lead_planner``: supervise the node process until SIGINT/SIGTERM; see the module
    docstring for exit codes."""
    stop = StopRequest().install()
    argv = list(sys.argv if args is None else args)
    name = logger_name(argv)
    if os.environ.get(EXIT_WITH_PARENT_ENV) == "1":
        parent = os.getppid()
        _signal_when_parent_dies(signal.SIGTERM)
        if os.getppid() != parent:  # it died before the kernel was asked
            os.kill(os.getpid(), signal.SIGTERM)
    node_process = _start_node_process(argv)
    while node_process.poll() is None and not stop.wait(SPIN_PERIOD_S):
        pass
    if not stop.requested:
        code = node_process.returncode
        if code < 0:
            log_line("FATAL", f"the node process was killed by {signal.Signals(-code).name}", name)
            return 1
        if code == 0:  # it was signalled on its own, not through this process
            log_line("INFO", "the node process ended: shutting down", name)
        return code  # 1: it could not start, and said why
    log_line("INFO", f"{stop.signal_name}: shutting down", name)
    stop_node_process(node_process)
    _exit_now(0)


def stop_node_process(node_process: subprocess.Popen, kill_after_s: float = KILL_AFTER_S) -> None:
    """SIGTERM, and SIGKILL if it has not exited ``kill_after_s`` later (still inside a call
    that holds its GIL); a killed node process's DDS shared-memory segments are removed."""
    if node_process.poll() is not None:
        return
    node_process.send_signal(signal.SIGTERM)
    try:
        node_process.wait(kill_after_s)
    except subprocess.TimeoutExpired:
        segments = owned_segments(node_process.pid)  # read while it lives: they are its
        node_process.kill()
        node_process.wait()
        remove_segments(segments)


if __name__ == "__main__":
    sys.exit(serve(sys.argv))
