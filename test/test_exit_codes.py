"""The project-wide exit codes, for every ``lead-ros`` command: 0 success, 1 the run
completed but a check failed, 2 usage error or unusable input, 130 interrupted (SIGINT).
(1 is also covered where it arises: selftest failures in test_selftest.py, a folder of bags
with failures in test_bags.py; the node process's 0/1 in test_node_process.py.)"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from lead_ros.tools import cli

LEAD_ROS = Path(sys.executable).with_name("lead-ros")


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
    assert {"predict", "bench", "selftest", "weights synth", "evaluate-bag", "replay", "record-path",
            "make-sample-bag", "bench-node", "bench-bag", "compare-evaluations"} <= names  # fmt: skip


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

    args.func = interrupted
    monkeypatch.setattr(cli, "build_parser", lambda: SimpleNamespace(parse_args=lambda argv: args))
    assert cli.main([]) == 130
    assert "interrupted" in capsys.readouterr().err


def _required_arguments(command: list[str]) -> list[str]:
    return {
        "predict": ["--weights", "w", "--image", "x.png", "--speed", "1", "--accel", "0", "--command", "left"],
        "bench": ["--weights", "w"],
        "weights synth": ["--out", "o"],
        "evaluate-bag": ["bag", "--weights", "w", "--out", "o"],
        "compare-evaluations": ["a", "b"],
        "replay": ["bag"],
        "record-path": ["--topic", "/p", "--out", "o"],
        "make-sample-bag": ["--out", "o"],
        "bench-node": ["--weights", "w"],
        "bench-bag": ["--weights", "w"],
    }.get(" ".join(command), [])


def test_sigint_to_a_running_record_path_exits_130_with_the_bag_closed(ros_context, tmp_path):
    out = tmp_path / "paths"
    process = subprocess.Popen(
        [str(LEAD_ROS), "record-path", "--topic", "/exit_codes/path", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not (out / "metadata.yaml").exists() and not list(out.glob("*.mcap")):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()[0]
        time.sleep(0.1)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 130, output
    assert "Traceback" not in output and (out / "metadata.yaml").is_file()
