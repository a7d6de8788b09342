"""The lead-ros CLI: JSON contract of predict, weights synth, bench figures, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import DATA, load_cases
from lead_ros.tools.cli import main
from lead_ros.tools.synthetic_cameras import reference_cameras


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_predict_image_matches_golden(capsys, navsim_weights):
    case = load_cases()[5]
    code, out, err = _run(
        capsys,
        "predict",
        "--weights",
        navsim_weights,
        "--image",
        case["image_path"],
        "--speed",
        case["speed_mps"],
        "--accel",
        case["acceleration_mps2"],
        "--command",
        case["command_name"],
        "--device",
        "cpu",
    )
    assert code == 0, err
    result = json.loads(out)
    assert set(result) >= {
        "waypoints_iso8855",
        "headings_iso8855",
        "waypoints_carla",
        "headings_carla",
        "times_s",
        "timings_ms",
        "weights_sha256",
        "untrained",
        "runtime",
    }
    assert result["untrained"] is True and result["times_s"][-1] == 4.0 and result["runtime"] == "onnxruntime"
    ref = case["outputs_float64"]
    for key in ("waypoints_iso8855", "headings_iso8855", "waypoints_carla", "headings_carla"):
        np.testing.assert_allclose(result[key], ref[key], atol=1e-4)
    assert "planner ready" in err  # logs go to stderr, stdout is pure JSON


def test_predict_from_cameras(capsys, tmp_path, navsim_weights):
    import cv2

    paths = []
    for name, image in zip(("l0", "f0", "r0", "b0"), reference_cameras(), strict=True):
        paths.append(tmp_path / f"{name}.png")
        cv2.imwrite(str(paths[-1]), image[..., ::-1])
    code, out, err = _run(
        capsys,
        "predict",
        "--weights",
        navsim_weights,
        "--cameras",
        *paths,
        "--speed",
        3.7,
        "--accel",
        0.9,
        "--command",
        "straight",
        "--device",
        "cpu",
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["model_input_shape"] == [270, 1920, 3]
    # case_07 is exactly these cameras, preprocessed, at speed 3.7, accel 0.9, straight.
    case7 = load_cases()[7]
    np.testing.assert_allclose(result["waypoints_iso8855"], case7["outputs_float64"]["waypoints_iso8855"], atol=1e-4)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--command", "north"], "command 'north' is not one of"),
        (["--command", "left", "--precision", "fp16"], "fp16 is not supported on CPU"),
        (["--command", "left", "--speed", "-1"], "speed: expected a finite value >= 0"),
    ],
)
def test_predict_errors_exit_2_with_a_message(capsys, navsim_weights, extra, message):
    argv = [
        "predict",
        "--weights",
        navsim_weights,
        "--image",
        DATA / "images" / "case_00.png",
        "--speed",
        1,
        "--accel",
        0,
        "--device",
        "cpu",
        *extra,
    ]
    code, out, err = _run(capsys, *argv)
    assert code == 2 and out == "" and message in err


def test_weights_synth_writes_lead_layout(capsys, tmp_path):
    code, out, _ = _run(capsys, "weights", "synth", "--out", tmp_path / "w", "--variant", "token256")
    assert code == 0
    result = json.loads(out)
    assert result["untrained"] is True and result["variant"] == "token256"
    config = json.loads((tmp_path / "w" / "config.json").read_text())
    assert config["transfuser_token_dim"] == 256 and config["synthetic"] is True
    assert (tmp_path / "w" / "model_0000.pth").is_file()


def test_bench_prints_figures(capsys, navsim_weights):
    code, out, err = _run(
        capsys,
        "bench",
        "--weights",
        navsim_weights,
        "--device",
        "cpu",
        "--iters",
        2,
        "--heights",
        256,
        "--json",
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["device"] == "cpu" and report["untrained"] is True and report["runtime"] == "onnxruntime"
    assert report["inference_by_height"]["256"]["runs"] == 2
    assert report["preprocess_4cam"]["p50_ms"] > 0 and report["end_to_end_fps"] > 0
    assert report["peak_rss_mib"] > 100 and report["cuda_max_allocated_mib"] is None
