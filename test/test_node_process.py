"""lead_planner as a process: fail fast with one line on bad start-up input, and exit 0
without a traceback or an error line on SIGINT/SIGTERM at any moment.

``ros2 launch`` delivers Ctrl-C twice: SIGINT to the process group from the terminal, then a
forwarded SIGINT. Each node process here runs in its own process group so that the first
signal can go to the group and the second to the process, as under launch.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from conftest import dds_settings_problems, default_signal_disposition
from lead_ros.ros.dds_segments import owned_segments
from lead_ros.ros.encoding import array_to_image, ns_to_stamp

EXECUTABLE = Path(sys.executable).with_name("lead_planner")
MS = 1_000_000
FRAME_PERIOD_S = 0.25
# After the supervisor started its node process: that process is still importing rclpy and
# torch. (From the supervisor's start it is not: on a busy CI machine the supervisor's own
# interpreter was not yet running Python code 0.3 s after the start, and a process dies by
# a signal that comes before it could install a handler.)
IMPORTING_DELAY_S = 0.3
_NAMESPACES = itertools.count()


class NodeProcess:
    """A lead_planner process in its own process group, with its output collected."""

    def __init__(self, *ros_args: str) -> None:
        self.namespace = f"/proc{os.getpid()}_{next(_NAMESPACES)}"
        self.process = subprocess.Popen(
            [str(EXECUTABLE), "--ros-args", "-r", f"__ns:={self.namespace}", *ros_args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "RCUTILS_COLORIZED_OUTPUT": "0"},
            preexec_fn=default_signal_disposition,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.signalled_at: float | None = None

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for_line(self, text: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert self.process.poll() is None, f"exited {self.process.returncode} before {text!r}:\n{self.output}"
            assert time.monotonic() < deadline, f"no {text!r} within {timeout} s:\n{self.output}"
            time.sleep(0.01)

    def send(self, kind: str, gap_s: float = 0.0) -> None:
        """``SIGINT``, ``SIGTERM``, or ``SIGINTx2``: the process group, then the process."""
        self.signalled_at = time.monotonic()
        if kind == "SIGINTx2":
            os.killpg(self.process.pid, signal.SIGINT)
            time.sleep(gap_s)
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGINT)
        else:
            self.process.send_signal(signal.Signals[kind])

    def finish(self, timeout: float = 120.0) -> tuple[int, str, float]:
        """Exit code, whole output, and seconds from the (first) signal to the exit."""
        try:
            self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
        self._reader.join(5)
        stopped = time.monotonic() - (self.signalled_at or time.monotonic())
        return self.process.returncode, self.output, stopped


class Feeder:
    """Publishes stitched 256 x 1920 frames with odometry to a node process and counts its paths."""

    def __init__(self, context, namespace: str) -> None:
        import rclpy
        from nav_msgs.msg import Odometry, Path
        from sensor_msgs.msg import Image

        from lead_ros.ros.background_spin import BackgroundSpin

        self.node = rclpy.create_node("feeder", namespace=namespace, context=context)
        base = f"{namespace}/lead_planner"
        self.image = self.node.create_publisher(Image, f"{base}/input/image", 5)
        self.odometry = self.node.create_publisher(Odometry, f"{base}/input/odometry", 50)
        self.paths: list = []
        self.node.create_subscription(Path, f"{base}/output/path", self.paths.append, 10)
        self._odometry_type = Odometry
        self._picture = np.random.default_rng(0).integers(0, 256, (256, 1920, 3), dtype=np.uint8)
        self._stop = threading.Event()
        self.spin = BackgroundSpin(self.node)
        self._publisher = threading.Thread(target=self._publish, daemon=True)
        self._publisher.start()

    def _publish(self) -> None:
        while not self._stop.is_set():
            stamp = time.time_ns()
            for dt in (-300, -200, -100, 20):
                msg = self._odometry_type()
                msg.header.stamp = ns_to_stamp(stamp + dt * MS)
                msg.header.frame_id, msg.child_frame_id = "odom", "base_link"
                msg.twist.twist.linear.x = 5.0
                self.odometry.publish(msg)
            self.image.publish(array_to_image(self._picture, stamp, "camera"))
            self._stop.wait(FRAME_PERIOD_S)

    def close(self) -> None:
        self._stop.set()
        self._publisher.join(5)
        self.spin.close()
        self.node.destroy_node()


def _assert_one_line_failure(process: NodeProcess, *fragments: str) -> None:
    code, output, _ = process.finish()
    assert code == 1, output
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if "[FATAL]" in line or "[ERROR]" in line]
    assert len(errors) == 1, output
    for fragment in fragments:
        assert fragment in errors[0], output


# --- fail fast: one line, exit 1 ------------------------------------------------------------------


def test_unloadable_weights_fail_fast_without_traceback(ros_context):
    process = NodeProcess("-p", "weights:=/nonexistent/ltfv6.pth", "-p", "device:=cpu")
    _assert_one_line_failure(process, "cannot configure", "'/nonexistent/ltfv6.pth' is neither an existing path")


def test_text_file_named_like_a_checkpoint_fails_fast(ros_context, tmp_path):
    fake = tmp_path / "model.pth"
    fake.write_text("hello\n")
    process = NodeProcess("-p", f"weights:={fake}", "-p", "device:=cpu")
    _assert_one_line_failure(process, f"weights file {fake} could not be read: it is not a checkpoint")


def test_invalid_unknown_and_ill_typed_parameters_fail_fast_together(ros_context, navsim_weights):
    process = NodeProcess(
        "-p",
        f"weights:={navsim_weights}",
        "-p",
        "camera_mode:=fisheye",
        "-p",
        "sync_tolerence_ms:=80",
        "-p",
        "acceleration_window_s:=abc",
        "-p",
        "frame_id:=''",
    )
    _assert_one_line_failure(
        process,
        "cannot start: invalid lead_planner parameters",
        "unknown parameter 'sync_tolerence_ms' (did you mean 'sync_tolerance_ms'?)",
        "acceleration_window_s: expected float, got 'abc'",
        "camera_mode: 'fisheye' is not one of",
        "frame_id: must not be empty",
    )


def test_missing_params_file_fails_fast(ros_context, tmp_path):
    missing = tmp_path / "nowhere.yaml"
    _assert_one_line_failure(NodeProcess("--params-file", str(missing)), f"params file {missing} cannot be read")


def test_malformed_params_file_fails_fast(ros_context, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("/**:\n  ros__parameters:\n    weights: [unclosed\n")
    _assert_one_line_failure(NodeProcess("--params-file", str(broken)), f"params file {broken} is not valid YAML")


# --- signals: exit 0, no traceback, no error line, within 3 s, at every moment ---------------------

# importing: rclpy and torch; params_file: still reading its params file (a FIFO the test has
# written half of); loading: the weights and the runtime's session (graph in the cache);
# exporting: a first start, the ONNX graph being exported (empty cache); configure_client: a
# configure requested by a lifecycle client (autostart off); idle; planning: a frame in flight.
MOMENTS = ("importing", "params_file", "loading", "exporting", "configure_client", "idle", "planning")
# SIGINTx2: ros2 launch's Ctrl-C (the process group, then forwarded); a single SIGINT takes
# the same path as its first half.
KINDS = ("SIGTERM", "SIGINTx2")
# Seconds from the first signal to the exit, whatever the node is doing and while both cores
# are busy (the requirement: 2 s on a quiet machine, 3 s on a loaded one; ros2 launch
# escalates to SIGTERM after 5 s and SIGKILL after 10 s).
STOP_WITHIN_S = 3.0
NODE_ARGS = (
    "-p",
    "device:=cpu",
    "-p",
    "camera_mode:=stitched",
    "-p",
    "camera_qos:=reliable",
    "-p",
    "sync_tolerance_ms:=100",
)  # an integer for a float parameter is accepted


@pytest.fixture
def busy_cores():
    """A busy loop per core for the duration of the test, as on a loaded robot computer."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)]
    yield
    for loop in loops:
        loop.kill()
        loop.wait()


def _half_written_params_file(fifo: Path, weights: Path) -> int:
    """Wait until the node opened the FIFO for reading, write half a params file into it and
    keep it open: the node is then inside its params-file check. Returns the write end."""
    deadline = time.monotonic() + 120
    while True:
        try:
            end = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # ENXIO until a reader opened it
            break
        except OSError:
            assert time.monotonic() < deadline, "the node never opened its params file"
            time.sleep(0.01)
    os.write(end, f"/**:\n  ros__parameters:\n    weights: {weights}\n".encode())
    return end


def _configure_by_client(context, namespace: str):
    """Request configure from the node's lifecycle service, as a lifecycle manager does;
    returns the client's node (destroy it once the request has arrived)."""
    import rclpy
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState

    client_node = rclpy.create_node("lifecycle_client", namespace=namespace, context=context)
    client = client_node.create_client(ChangeState, f"{namespace}/lead_planner/change_state")
    assert client.wait_for_service(timeout_sec=120), "no change_state service"
    client.call_async(ChangeState.Request(transition=Transition(id=Transition.TRANSITION_CONFIGURE)))
    return client_node


def _started_node_process(process: NodeProcess, timeout: float = 120.0):
    """The node process of the ``lead_planner`` supervisor ``process``, once it has started
    one (the supervisor installs its signal handlers before it does)."""
    deadline = time.monotonic() + timeout
    while not (children := psutil.Process(process.process.pid).children()):
        assert process.process.poll() is None, f"exited {process.process.returncode}:\n{process.output}"
        assert time.monotonic() < deadline, f"no node process within {timeout} s:\n{process.output}"
        time.sleep(0.01)
    (child,) = children
    return child


def _run_signal_case(ros_context, weights: Path, moment: str, kind: str, tmp_path: Path, gap_s: float = 0.03) -> float:
    ros_args = [*NODE_ARGS, "-p", f"weights:={weights}"]
    if moment == "params_file":
        fifo = tmp_path / "params.yaml"
        os.mkfifo(fifo)
        ros_args = [*NODE_ARGS, "--params-file", str(fifo)]
    elif moment == "exporting":
        ros_args += ["-p", f"runtime_cache_dir:={tmp_path / 'empty_cache'}"]
    elif moment == "configure_client":
        ros_args += ["-p", "autostart:=false"]
    process = NodeProcess(*ros_args)
    feeder = Feeder(ros_context, process.namespace) if moment == "planning" else None
    fifo_end = client_node = None
    try:
        node_process = _started_node_process(process)
        if moment == "importing":
            time.sleep(IMPORTING_DELAY_S)
        elif moment == "params_file":
            fifo_end = _half_written_params_file(fifo, weights)
        elif moment == "loading":
            process.wait_for_line("configuring: loading the weights")
        elif moment == "exporting":
            process.wait_for_line("configuring: loading the weights")
            time.sleep(3.0)  # the weights are loaded in about a second; the export takes tens
        elif moment == "configure_client":
            client_node = _configure_by_client(ros_context, process.namespace)
            process.wait_for_line("configuring: loading the weights")
        else:
            process.wait_for_line("active: planning")
        if feeder is not None:
            deadline = time.monotonic() + 60
            while not feeder.paths:
                assert time.monotonic() < deadline, process.output
                time.sleep(0.01)
            time.sleep(0.2)  # the next frame is in flight now (a forward takes ~0.5 s here)
        segments = owned_segments(node_process.pid)  # its DDS participant's, once rclpy.init ran
        process.send(kind, gap_s)
        code, output, stopped_s = process.finish()
    finally:
        if feeder is not None:
            feeder.close()
        if fifo_end is not None:
            os.close(fifo_end)
        if client_node is not None:
            client_node.destroy_node()
    context = f"{moment}/{kind} (gap {gap_s * 1e3:.0f} ms):\n{output}"
    assert code == 0, context
    assert "Traceback" not in output and "Exception" not in output, context
    assert not [line for line in output.splitlines() if "[ERROR]" in line or "[FATAL]" in line], context
    assert stopped_s < STOP_WITHIN_S, f"took {stopped_s:.1f} s: {context}"
    assert output.count("shutting down") == 1, context  # every exit path says why, in one line
    if moment not in ("importing", "params_file"):  # after rclpy.init
        assert segments, f"no DDS segment owned by the node process: {context}"
    # Closed, or (still busy at the grace's end, or killed) removed: none left in RAM.
    assert not [segment for segment in segments if segment.exists()], f"left {segments} behind: {context}"
    if moment in ("importing", "params_file", "loading", "exporting", "configure_client"):
        # Signalled before it served: it never plans. (A load that ends inside the grace may
        # still log its planner ready; a slower one is left behind. Either is a clean stop.)
        assert "active: planning" not in output, context
    return stopped_s


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("moment", MOMENTS)
def test_signal_at_any_moment_exits_cleanly(ros_context, exported_navsim_weights, busy_cores, tmp_path, moment, kind):
    stopped_s = _run_signal_case(ros_context, exported_navsim_weights, moment, kind, tmp_path)
    print(f"{moment}/{kind}: exited {stopped_s:.2f} s after the signal, both cores busy")


def test_double_sigint_while_planning_ten_times_in_a_row(ros_context, exported_navsim_weights, tmp_path):
    gaps_s = (0.001, 0.005, 0.01, 0.03, 0.05, 0.1, 0.2, 0.4, 0.7, 1.0)
    stops = [
        _run_signal_case(ros_context, exported_navsim_weights, "planning", "SIGINTx2", tmp_path, gap) for gap in gaps_s
    ]
    print("double SIGINT while planning, seconds to exit:", ", ".join(f"{s:.2f}" for s in stops))


# --- the supervisor and its node process ----------------------------------------------------------


def _node_process_of(process: NodeProcess):
    """The node process the ``lead_planner`` supervisor started, once it is loading weights."""
    process.wait_for_line("configuring: loading the weights")
    return _started_node_process(process)


def _wait_gone(process: psutil.Process, what: str) -> None:
    deadline = time.monotonic() + 60  # catches a process that lives on, however slow the machine
    while process.is_running() and process.status() != psutil.STATUS_ZOMBIE:  # a zombie: dead, not yet reaped
        assert time.monotonic() < deadline, f"{what} {process.pid} lives on"
        time.sleep(0.05)


def test_the_node_process_dies_with_its_supervisor_and_leaves_no_shared_memory(ros_context, exported_navsim_weights):
    """``ros2 launch`` SIGKILLs a node that ignores its signals: no node process may stay behind,
    and it gets a signal it handles (its DDS segments stayed in /dev/shm after the kernel's SIGKILL)."""
    process = NodeProcess(*NODE_ARGS, "-p", f"weights:={exported_navsim_weights}")
    child = _node_process_of(process)
    process.wait_for_line("active: planning")
    segments = owned_segments(child.pid)
    assert segments, "the node process owns its participant's segments"
    os.kill(process.process.pid, signal.SIGKILL)
    process.finish()
    _wait_gone(child, "the node process, whose supervisor was killed,")
    assert not [segment for segment in segments if segment.exists()], f"left {segments} behind"


LAUNCHER = (
    "import os, subprocess, sys, time; child = subprocess.Popen(sys.argv[1:], env={**os.environ, **ENV}); "
    "print(child.pid, flush=True); time.sleep(600)"
)


@pytest.mark.parametrize("exit_with_parent", [True, False], ids=["launch-file", "nohup"])
def test_a_planner_started_by_the_launch_file_ends_with_its_launcher(
    ros_context, exported_navsim_weights, exit_with_parent
):
    """``kill -TERM`` to ``ros2 launch`` alone (ros2/launch#666: it exits without stopping its
    children) left lead_planner running under PID 1. The launch file's environment makes the
    planner end with its launcher; started otherwise it outlives it, as before."""
    from lead_ros.ros.process import EXIT_WITH_PARENT_ENV

    env = {EXIT_WITH_PARENT_ENV: "1"} if exit_with_parent else {}
    command = [
        str(EXECUTABLE),
        "--ros-args",
        "-r",
        f"__ns:=/launched{os.getpid()}",
        *NODE_ARGS,
        "-p",
        f"weights:={exported_navsim_weights}",
    ]
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER.replace("ENV", repr(env)), *command],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    planner = psutil.Process(int(launcher.stdout.readline()))
    try:
        deadline = time.monotonic() + 120
        while not planner.children():  # the supervisor started its node process
            assert time.monotonic() < deadline and planner.is_running(), "lead_planner did not start"
            time.sleep(0.05)
        node_process = planner.children()[0]
        launcher.kill()  # as `ros2 launch` leaving on SIGTERM: its children are not stopped
        launcher.wait()
        if exit_with_parent:
            _wait_gone(planner, "lead_planner, whose launcher is gone,")
            _wait_gone(node_process, "its node process")
        else:
            time.sleep(3.0)  # what the other case needs to be gone, and more
            assert planner.is_running() and planner.status() != psutil.STATUS_ZOMBIE
    finally:
        for leftover in (planner,):
            if leftover.is_running():
                leftover.terminate()
                leftover.wait(30)


def test_the_supervisor_logs_under_the_nodes_name(ros_context, exported_navsim_weights):
    """Its own lines said [lead_planner] when the node ran as namespace:=veh1 node_name:=planner."""
    process = NodeProcess(*NODE_ARGS, "-r", "__node:=planner", "-p", f"weights:={exported_navsim_weights}")
    process.wait_for_line("configuring: loading the weights")
    process.send("SIGTERM")
    code, output, _ = process.finish()
    expected = f"[{process.namespace.strip('/')}.planner]"
    lines = [line for line in output.splitlines() if line.startswith("[")]
    assert code == 0 and any("SIGTERM: shutting down" in line for line in lines), output
    assert all(expected in line for line in lines), output


STUCK_PARTICIPANT = (
    "import rclpy, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); rclpy.init(); "
    "node = rclpy.create_node('stuck'); print('up', flush=True); time.sleep(120)"
)


def test_a_node_process_the_supervisor_has_to_kill_leaves_no_shared_memory():
    """A node process that does not exit on SIGTERM (here: it ignores it; in life: a call
    holding its GIL) is killed, and its DDS participant's segments are removed."""
    from lead_ros.ros.process import stop_node_process

    stuck = subprocess.Popen([sys.executable, "-c", STUCK_PARTICIPANT], stdout=subprocess.PIPE, text=True)
    try:
        assert stuck.stdout.readline() == "up\n"
        segments = owned_segments(stuck.pid)
        assert segments and all(segment.exists() for segment in segments)
        stop_node_process(stuck, kill_after_s=0.5)
        assert stuck.returncode == -signal.SIGKILL
        assert not [segment for segment in segments if segment.exists()], segments
    finally:
        stuck.kill()
        stuck.wait()


def test_a_node_process_killed_under_the_supervisor_is_one_fatal_line_and_exit_1(ros_context, navsim_weights):
    process = NodeProcess(*NODE_ARGS, "-p", f"weights:={navsim_weights}")
    _node_process_of(process).kill()  # as the OOM killer would
    _assert_one_line_failure(process, "the node process was killed by SIGKILL")


def test_an_oversized_params_file_fails_fast_before_rcl_parses_it(ros_context, tmp_path):
    """A 50 MB params file kept the node inside rclpy.init for over five minutes."""
    big = tmp_path / "big.yaml"
    big.write_text("/**:\n  ros__parameters:\n    frame_id: base_link\n" + "# padding\n" * 300_000)
    _assert_one_line_failure(NodeProcess("--params-file", str(big)), f"params file {big} is larger than 1048576 bytes")


def test_a_yaml_alias_bomb_params_file_fails_fast(ros_context, tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(_alias_bomb())
    _assert_one_line_failure(NodeProcess("--params-file", str(bomb)), "aliases expand to more than 10000 YAML nodes")


def _alias_bomb(levels: int = 9) -> str:
    """Billion laughs: each level is a list of nine aliases of the level below."""
    lines = ['a0: &a0 ["lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + f"\n/**:\n  ros__parameters:\n    perception_classes: *a{levels}\n"


def test_a_signal_during_a_child_export_ends_everything(ros_context, exported_navsim_weights, planner, tmp_path):
    """A frame of a new height exports its graph in a spawned child of the node process; a
    signal meanwhile ends the node within the bound, and the exporter does not outlive it."""
    from lead_ros.model.onnx_runtime import OnnxPlanning

    cache = tmp_path / "cache"
    cached = OnnxPlanning([], planner.info.weights_sha256).graph_path(0, 270)  # the session's: no export at start
    (cache / "onnx").mkdir(parents=True)
    for suffix in ("", ".data", ".sha256"):
        shutil.copy(cached.with_name(cached.name + suffix), cache / "onnx" / (cached.name + suffix))
    process = NodeProcess(*NODE_ARGS, "-p", f"weights:={exported_navsim_weights}", "-p", f"runtime_cache_dir:={cache}")
    node_process = _node_process_of(process)
    process.wait_for_line("active: planning")
    feeder = Feeder(ros_context, process.namespace)  # 256-row frames: a height not in the cache
    try:
        deadline = time.monotonic() + 60
        while not (exporters := [c for c in node_process.children() if "multiprocessing" in " ".join(c.cmdline())]):
            assert time.monotonic() < deadline, f"no exporter started:\n{process.output}"
            time.sleep(0.05)
        process.send("SIGTERM")
        code, output, stopped_s = process.finish()
    finally:
        feeder.close()
    assert code == 0 and stopped_s < STOP_WITHIN_S, f"took {stopped_s:.1f} s:\n{output}"
    for exporter in exporters:
        _wait_gone(exporter, "the graph exporter of a node that left")


def test_bench_node_prints_only_json_accounting_for_every_frame_per_transport(exported_navsim_weights):
    """``lead-ros bench-node`` (a benchmark; its figures are not checked here, only that it
    reports them): stdout is the JSON alone, one run per transport, CPU in named buckets, and
    planned plus skipped-by-reason frames sum to the frames published within 2 %."""
    assert not dds_settings_problems(), dds_settings_problems()
    arguments = ["--device", "cpu", "--rates", "10", "--durations-s", "6", "--transports", "raw", "jpeg"]
    result = subprocess.run(
        [
            str(EXECUTABLE.with_name("lead-ros")),
            "bench-node",
            "--weights",
            str(exported_navsim_weights),
            *arguments,
            "--publisher",
            "inline",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = json.loads(result.stdout)
    assert [run["transport"] for run in runs] == ["raw", "jpeg"]
    for run in runs:
        buckets = [run[f"{name}_cores"] for name in ("input", "dds", "inference", "other", "publisher")]
        assert all(value >= 0 for value in buckets), run
        assert run["frames_published"] > 0 and run["processed"] >= 1, run
        assert run["frames_accounted"] == run["processed"] + sum(run["skipped"].values()), run
        assert abs(run["unaccounted_fraction"]) <= 0.02, run
        assert run["skipped"]["superseded"] == run["superseded"] >= run["superseded_never_taken"], run
        assert {"inference_vs_quiet", "worker_cores", "rss_timeline_mib", "queue_wait_ms"} <= set(run)
