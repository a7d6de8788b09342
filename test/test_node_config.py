"""Parameter specification, the packaged YAML, and validation messages."""

from __future__ import annotations

import re
import time
from dataclasses import fields

import pytest
import yaml

from conftest import REPO
from lead_ros.node_config import MAX_PARAMS_FILE_BYTES, PARAMETERS, NodeConfig

YAML_PATH = REPO / "config" / "lead_ros.yaml"


def test_yaml_values_equal_code_defaults():
    values = yaml.safe_load(YAML_PATH.read_text())["/**"]["ros__parameters"]
    assert values == {p.name: p.default for p in PARAMETERS}
    assert NodeConfig.from_yaml(YAML_PATH) == NodeConfig.from_values({})


def test_every_yaml_parameter_has_a_comment():
    lines = YAML_PATH.read_text().splitlines()
    for index, line in enumerate(lines):
        match = re.match(r"^\s{4}(\w+):", line)
        if match:
            assert lines[index - 1].strip().startswith("#"), f"{match.group(1)} has no comment above it"


def test_spec_and_config_dataclass_agree():
    assert [f.name for f in fields(NodeConfig)] == [p.name for p in PARAMETERS]
    assert all(len(p.description) > 20 for p in PARAMETERS)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"camera_mode": "fisheye"}, "camera_mode: 'fisheye' is not one of navsim_4cam, stitched"),
        ({"sync_tolerance_ms": -1.0}, "sync_tolerance_ms: -1.0 is below the minimum 0.0"),
        ({"default_command": 9}, "default_command: 9 is above the maximum 3"),
        ({"jpeg_roundtrip": "yes"}, "jpeg_roundtrip: expected bool, got 'yes'"),
        ({"weights": ""}, "weights: must not be empty"),
        ({"sync_tolerence_ms": 3.0}, "unknown parameter 'sync_tolerence_ms' (did you mean 'sync_tolerance_ms'?)"),
        ({"xyz": 3.0}, "unknown parameter 'xyz'"),
        ({"frame_id": ""}, "frame_id: must not be empty"),
        ({"frame_id": "  "}, "frame_id: must not be empty"),
        ({"autostart": 1}, "autostart: expected bool, got 1"),
        ({"processing_budget_ms": -1.0}, "processing_budget_ms: -1.0 is below the minimum 0.0"),
    ],
)
def test_bad_values_are_named(values, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        NodeConfig.from_values(values)


def test_integers_are_accepted_for_float_parameters(tmp_path):
    params = tmp_path / "p.yaml"
    params.write_text("lead_planner:\n  ros__parameters:\n    sync_tolerance_ms: 80\n    use_sim_time: true\n")
    config = NodeConfig.from_yaml(params)
    assert config.sync_tolerance_ms == 80.0 and isinstance(config.sync_tolerance_ms, float)


def test_every_bad_value_is_listed_in_one_message():
    with pytest.raises(ValueError) as error:
        NodeConfig.from_values({"frame_id": "", "camera_mode": "fisheye", "sync_tolerence_ms": 1.0})
    message = str(error.value)
    assert "\n" not in message
    assert all(name in message for name in ("frame_id", "camera_mode", "sync_tolerence_ms"))


def test_processing_budget_zero_is_auto_per_device():
    auto = NodeConfig.from_values({})
    assert auto.processing_budget_ms == 0.0
    assert (auto.processing_budget_for("cpu"), auto.processing_budget_for("cuda")) == (2000.0, 100.0)
    fixed = NodeConfig.from_values({"processing_budget_ms": 250})
    assert fixed.processing_budget_for("cpu") == fixed.processing_budget_for("cuda") == 250.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "cannot be read: No such file or directory"),
        ("/**:\n  ros__parameters:\n    weights: [unclosed\n", "is not valid YAML (line 4, column 1)"),
        ("- a\n- b\n", "must map node names to ros__parameters, not hold a list"),
    ],
)
def test_params_file_errors_are_one_line_naming_the_file(tmp_path, text, message):
    path = tmp_path / "params.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ValueError) as error:
        NodeConfig.from_yaml(path)
    assert str(error.value).startswith(f"params file {path} ") and message in str(error.value)
    assert "\n" not in str(error.value)


FLOAT_PARAMETERS = [p.name for p in PARAMETERS if isinstance(p.default, float)]


@pytest.mark.parametrize("name", FLOAT_PARAMETERS)
@pytest.mark.parametrize("text", [".nan", ".inf", "-.inf"])
def test_nan_and_inf_are_refused_for_every_float_parameter_naming_it(tmp_path, name, text):
    """``sync_tolerance_ms: .nan`` gave "cannot convert float NaN to integer"; a NaN
    detection_score_threshold was accepted and silently kept no box."""
    path = tmp_path / "params.yaml"
    path.write_text(f"/**:\n  ros__parameters:\n    {name}: {text}\n")
    with pytest.raises(ValueError, match=rf"^invalid lead_planner parameters: {name}: -?(nan|inf) is not a finite"):
        NodeConfig.from_yaml(path)


def test_an_alias_bomb_is_refused_before_it_is_expanded(tmp_path):
    """Grew past 6 GB in evaluate-bag within two minutes; now refused at once."""
    from test_node_process import _alias_bomb

    path = tmp_path / "bomb.yaml"
    path.write_text(_alias_bomb(levels=30))  # 9**30 nodes if expanded
    started = time.monotonic()
    with pytest.raises(ValueError, match="aliases expand to more than 10000 YAML nodes; refused before expanding"):
        NodeConfig.from_yaml(path)
    assert time.monotonic() - started < 5.0


def test_a_few_aliases_are_still_fine(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("common: &classes [road, vehicles]\n/**:\n  ros__parameters:\n    perception_classes: *classes\n")
    assert NodeConfig.from_yaml(path).perception_classes == ["road", "vehicles"]


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_bytes(b"/**:\n  ros__parameters:\n    frame_id: x\n" + b"#" * MAX_PARAMS_FILE_BYTES)
    with pytest.raises(ValueError, match=f"is larger than {MAX_PARAMS_FILE_BYTES} bytes"):
        NodeConfig.from_yaml(path)


def test_a_huge_bad_value_is_shown_as_a_short_excerpt(tmp_path):
    """A smaller alias bomb gave one 47,645-byte error line (the whole expanded value)."""
    path = tmp_path / "params.yaml"
    path.write_text(
        "/**:\n  ros__parameters:\n    sync_tolerance_ms: [" + ", ".join(["lol"] * 5000) + "]\n"
        "    frame_id_typo" + "x" * 900 + ": 1\n"
    )
    with pytest.raises(ValueError) as error:
        NodeConfig.from_yaml(path)
    message = str(error.value)
    assert "sync_tolerance_ms: expected float, got ['lol', 'lol'" in message
    assert "unknown parameter 'frame_id_typo" in message
    assert len(message) < 400 and "\n" not in message


def test_predict_refuses_a_nan_threshold(capsys):
    from lead_ros.tools.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "predict",
                "--weights",
                "w",
                "--image",
                "x.png",
                "--speed",
                "1",
                "--accel",
                "0",
                "--command",
                "left",
                "--detection-score-threshold",
                "nan",
            ]
        )
    assert exit_info.value.code == 2
    assert "argument --detection-score-threshold: 'nan' is not a finite number" in capsys.readouterr().err


def test_clock_watch_needs_two_still_periods_with_messages_arriving():
    from lead_ros.ros.diagnostics import ClockWatch

    watch = ClockWatch()
    assert not watch.stopped(5, 10)  # first look
    assert not watch.stopped(5, 12)  # one still period with messages
    assert watch.stopped(5, 13)  # two
    assert not watch.stopped(6, 14)  # it moved
    assert not watch.stopped(6, 14) and not watch.stopped(6, 14)  # still, but nothing arrives: no fault
