"""lead_planner as a process: fail fast on bad weights, clean exit on SIGINT/SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

EXECUTABLE = Path(sys.executable).with_name("lead_planner")


def _start(*ros_args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(EXECUTABLE), "--ros-args", *ros_args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "RCUTILS_COLORIZED_OUTPUT": "0"},
    )  # fmt: skip


def test_unloadable_weights_fail_fast_without_traceback(ros_context):
    process = _start("-p", "weights:=/nonexistent/ltfv6.pth", "-p", "device:=cpu")
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 1, output
    assert "cannot start" in output and "'/nonexistent/ltfv6.pth' is neither an existing path" in output
    assert "Traceback" not in output


def test_invalid_parameter_fails_fast(ros_context, navsim_weights):
    process = _start("-p", f"weights:={navsim_weights}", "-p", "camera_mode:=fisheye")
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 1 and "camera_mode: 'fisheye' is not one of" in output
    assert "Traceback" not in output


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_the_node_cleanly(ros_context, navsim_weights, sig):
    process = _start("-p", f"weights:={navsim_weights}", "-p", "device:=cpu", "-r", "__ns:=/signal_test")
    lines = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        if "LTFv6 planner ready" in line or not line:
            break
    assert "LTFv6 planner ready" in lines[-1], "".join(lines)
    process.send_signal(sig)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, "".join(lines) + output
    assert "Traceback" not in output
