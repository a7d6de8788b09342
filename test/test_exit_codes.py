"""The project-wide exit codes, for every ``lead-ros`` command: 0 success, 1 the run
completed but a check failed, 2 usage error or unusable input, 130/143 interrupted (SIGINT/SIGTERM),
also when started as a background job (SIGINT ignored).
(1 is also covered where it arises: selftest failures in test_selftest.py, a folder of bags
with failures in test_bags.py; the node process's 0/1 in test_node_process.py.)"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import default_signal_disposition
from lead_ros.tools import cli

LEAD_ROS = Path(sys.executable).with_name("lead-ros")
SAMPLE_BAG = Path(__file__).resolve().parent.parent / "data" / "sample_bag"


def _commands() -> list[list[str]]:
    """Every command, nested ones (``weights synth``) included."""
    found = []

    def walk(parser: argparse.ArgumentParser, prefix: list[str]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, [*prefix, name])
                return
        found.append(prefix)

    walk(cli.build_parser(), [])
    return found


COMMANDS = _commands()


def test_every_command_is_listed():
    names = {" ".join(c) for c in COMMANDS}
    assert {
        "predict",
        "bench",
        "selftest",
        "weights synth",
        "export onnx",
        "evaluate-bag",
        "replay",
        "record-path",
        "make-sample-bag",
        "bench-node",
        "bench-bag",
        "compare-evaluations",
        "rig-check",
    } <= names


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_usage_error_exits_2(command, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main([*command, "--no-such-option"])
    assert exited.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_unusable_input_exits_2_and_success_exits_0(tmp_path, capsys):
    missing = ["--weights", str(tmp_path / "missing.pth"), "--image", "x.png", "--speed", "1", "--accel", "0"]
    assert cli.main(["predict", *missing, "--command", "left"]) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert cli.main(["weights", "synth", "--out", str(tmp_path / "w")]) == 0


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_interrupt_exits_130(command, monkeypatch, capsys):
    """Ctrl-C anywhere inside a command (KeyboardInterrupt) exits 130 without a traceback."""
    args = cli.build_parser().parse_args([*command, *_required_arguments(command)])

    def interrupted(_args):
        raise KeyboardInterrupt

    args.run = interrupted
    monkeypatch.setattr(cli, "build_parser", lambda: SimpleNamespace(parse_args=lambda argv: args))
    assert cli.main([]) == 130
    assert "interrupted" in capsys.readouterr().err


def _required_arguments(command: list[str]) -> list[str]:
    return {
        "predict": ["--weights", "w", "--image", "x.png", "--speed", "1", "--accel", "0", "--command", "left"],
        "bench": ["--weights", "w"],
        "weights synth": ["--out", "o"],
        "export onnx": ["--weights", "w", "--out", "o"],
        "evaluate-bag": ["bag", "--weights", "w", "--out", "o"],
        "compare-evaluations": ["a", "b"],
        "replay": ["bag"],
        "record-path": ["--topic", "/p", "--out", "o"],
        "make-sample-bag": ["--out", "o"],
        "rig-check": ["--camera-rig", "r.yaml", "--images", "a", "b", "c", "d", "--out", "o"],
        "bench-node": ["--weights", "w"],
        "bench-bag": ["--weights", "w"],
    }.get(" ".join(command), [])


class Running:
    """A ``lead-ros`` command in a child process whose output is collected as it comes;
    ``sigint_ignored`` starts it as a shell starts a background job (``cmd &``, nohup)."""

    def __init__(self, argv: list[str], sigint_ignored: bool = False) -> None:
        def disposition() -> None:
            default_signal_disposition()
            if sigint_ignored:
                signal.signal(signal.SIGINT, signal.SIG_IGN)

        self.process = subprocess.Popen(
            [str(LEAD_ROS), *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            preexec_fn=disposition,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=lambda: self.lines.extend(self.process.stdout), daemon=True)
        self._reader.start()

    def wait_until(self, ready, what: str, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not ready():
            assert self.process.poll() is None, f"ended before {what}:\n{self.output}"
            assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{self.output}"
            time.sleep(0.05)

    def stop(self, signum: int) -> tuple[int, float]:
        """Send ``signum``; the exit code and the seconds until the process ended."""
        sent = time.monotonic()
        self.process.send_signal(signum)
        self.process.wait(timeout=60)
        self._reader.join(10)
        return self.process.returncode, time.monotonic() - sent

    @property
    def output(self) -> str:
        return "".join(self.lines)


SIGNALS = {"SIGINT": (signal.SIGINT, 130), "SIGTERM": (signal.SIGTERM, 143)}


@pytest.mark.parametrize("sigint_ignored", [False, True], ids=["foreground", "background-job"])
@pytest.mark.parametrize("name", list(SIGNALS))
def test_record_path_closes_its_bag_on_sigint_and_sigterm(ros_context, tmp_path, name, sigint_ignored):
    """SIGTERM left the bag without metadata.yaml (ExternalShutdownException, no exit in 30 s);
    started as a background job, SIGINT was ignored."""
    out = tmp_path / "paths"
    running = Running(["record-path", "--topic", "/exit_codes/path", "--out", str(out)], sigint_ignored)
    running.wait_until(lambda: list(out.glob("*.mcap")), "the bag to be created")
    time.sleep(0.5)
    signum, expected = SIGNALS[name]
    code, seconds = running.stop(signum)
    assert code == expected and "Traceback" not in running.output, running.output
    assert (out / "metadata.yaml").is_file() and seconds < 2.0, seconds


@pytest.mark.parametrize("sigint_ignored", [False, True], ids=["foreground", "background-job"])
@pytest.mark.parametrize("name", list(SIGNALS))
def test_replay_exits_with_the_table_code_on_sigint_and_sigterm(ros_context, name, sigint_ignored):
    """Ctrl-C gave -6 (abort), SIGTERM exit 1 with an RCLError."""
    running = Running(["replay", str(SAMPLE_BAG), "--loop", "--wait-s", "0"], sigint_ignored)
    running.wait_until(lambda: "publishing anyway" in running.output, "publishing")
    time.sleep(0.5)
    signum, expected = SIGNALS[name]
    code, _ = running.stop(signum)
    assert code == expected and "Traceback" not in running.output and "terminate" not in running.output, running.output


def test_a_complete_replay_exits_0(ros_context):
    """Every replay of the sample bag ended in SIGABRT (-6): "terminate called without an
    active exception" from a spin thread still inside rcl at interpreter exit."""
    running = Running(["replay", str(SAMPLE_BAG), "--wait-s", "0", "--rate", "20"])
    running.process.wait(timeout=120)
    running._reader.join(10)
    assert running.process.returncode == 0, running.output
    assert "replayed 904 messages" in running.output and "terminate" not in running.output


@pytest.mark.parametrize("name", list(SIGNALS))
def test_evaluate_bag_started_as_a_background_job_stops_on_sigint_and_sigterm(tmp_path, exported_navsim_weights, name):
    out = tmp_path / "out"
    running = Running(
        [
            "evaluate-bag",
            str(SAMPLE_BAG),
            "--weights",
            str(exported_navsim_weights),
            "--out",
            str(out),
            "--no-pictures",
        ],
        sigint_ignored=True,
    )
    running.wait_until(lambda: (out / "summary.json").exists(), "the evaluation to start")
    signum, expected = SIGNALS[name]
    code, _ = running.stop(signum)
    assert code == expected and "Traceback" not in running.output, running.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["incomplete"] is True, "an interrupted evaluation says it is incomplete"


def test_evaluate_bag_stops_when_the_signal_lands_inside_a_message_constructor(
    tmp_path, exported_navsim_weights, monkeypatch, capsys
):
    """The race behind a background-job evaluation that ran to the end and exited 0 after SIGINT
    (1 run in 20): the handler's ``Interrupted`` was raised inside a message's ``__init__``,
    which rclpy's C deserializer calls and turns into a TypeError, so the stop became one counted
    decode failure and, the handler having ignored later signals, nothing could stop the run. Here the
    signal lands there every time: at the 100th odometry message."""
    from nav_msgs.msg import Odometry

    from lead_ros.tools.interrupts import Interrupted

    original, built = Odometry.__init__, []

    def constructor(self, **kwargs):
        built.append(None)
        if len(built) == 100:
            raise Interrupted(signal.SIGTERM)
        original(self, **kwargs)

    monkeypatch.setattr(Odometry, "__init__", constructor)
    out = tmp_path / "out"
    argv = [
        "evaluate-bag",
        str(SAMPLE_BAG),
        "--weights",
        str(exported_navsim_weights),
        "--out",
        str(out),
        "--no-pictures",
    ]
    assert cli.main(argv) == 143, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["incomplete"] is True and len(built) == 100, "the evaluation stopped at the signal"


def test_pytorch_that_cannot_be_loaded_under_an_address_space_limit_is_one_line(tmp_path):
    """Under ``ulimit -v`` / systemd ``LimitAS`` too small for PyTorch, ``predict`` and the node
    printed an 18-line ImportError traceback (libtorch_cpu.so: failed to map segment)."""
    import resource

    limit = 2 * 2**30  # numpy, OpenCV and rclpy load under it; PyTorch's libraries do not

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    image = Path(__file__).resolve().parent.parent / "lead_ros" / "data" / "ltfv6_reference" / "images" / "case_00.png"
    commands = {
        "predict": [
            str(LEAD_ROS),
            "predict",
            "--weights",
            str(tmp_path),
            "--image",
            str(image),
            "--speed",
            "1",
            "--accel",
            "0",
            "--command",
            "left",
        ],
        "lead_planner": [str(LEAD_ROS.with_name("lead_planner")), "--ros-args", "-p", f"weights:={tmp_path}"],
    }
    expected = (
        "PyTorch could not be loaded (libtorch_cpu.so: failed to map segment from shared object): the address-space "
        "limit in force (RLIMIT_AS: ulimit -v, systemd LimitAS) is 2.0 GiB; PyTorch needs about 4 GiB of address "
        "space: raise the limit or remove it"
    )
    for name, command in commands.items():
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, preexec_fn=limited)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == (2 if name == "predict" else 1), result.stderr
        assert len(lines) == 1 and lines[0].endswith(expected), (name, result.stderr)


def test_a_failed_export_write_names_the_file_and_the_folder(tmp_path, capsys, monkeypatch, navsim_weights):
    """A full disk said only "[Errno 28] No space left on device"."""
    import torch

    def full_disk(self, *args, **kwargs):
        raise OSError(28, "No space left on device")  # as the exporter's own writes raise it: no file name

    monkeypatch.setattr(torch.onnx.ONNXProgram, "save", full_disk)
    out = tmp_path / "onnx"
    assert cli.main(["export", "onnx", "--weights", str(navsim_weights), "--out", str(out)]) == 2
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("[ERROR]")]
    assert line == (
        f"[ERROR] lead_ros: writing {out / 'model.onnx'} failed (No space left on device); the export in {out} is "
        "incomplete"
    )
    assert not list(out.glob("*.onnx")) and not list(out.glob(".*partial*")), "nothing half-written stays"
