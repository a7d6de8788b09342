"""Open-loop metrics against the logged drive (evaluate-bag) and compare-evaluations.

The bag's odometry follows a known analytic trajectory; every expected figure is computed
here from that trajectory and the plans in frames.jsonl, not by calling lead_ros.bag.metrics."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from bag_factory import MS, START, BagSpec, command, jpeg_image, odometry, raw_image
from conftest import DATA, read_rgb
from lead_ros.observation import Command
from lead_ros.tools.cli import main
from lead_ros.tools.synthetic_cameras import reference_cameras

STITCHED = read_rgb(DATA / "images" / "case_02.png")
X0, Y0, YAW0 = 3.0, -2.0, 0.4  # start pose in the odom frame
SPEED, YAW_RATE = 5.0, 0.3
FRAMES_S = (0.0, 1.0, 2.5, 4.0, 5.5, 7.0, 9.0)
ODOMETRY_END_S = 10.0
HORIZONS_S = tuple(0.5 * (k + 1) for k in range(8))
# Command topic: left from the start, straight from 2.0 s, right from 5.0 s.
COMMANDS = ((-0.1, Command.LEFT), (2.0, Command.STRAIGHT), (5.0, Command.RIGHT))


def analytic_pose(t: float) -> tuple[float, float, float]:
    """Straight at 5 m/s until 2 s, a constant-rate turn (0.3 rad/s) until 5 s, braking to a
    stop at 6 s (5 m/s^2), then standing."""
    if t <= 2.0:
        return X0 + SPEED * t * math.cos(YAW0), Y0 + SPEED * t * math.sin(YAW0), YAW0
    x2, y2, _ = analytic_pose(2.0)
    turn = min(t, 5.0) - 2.0
    yaw = YAW0 + YAW_RATE * turn
    x = x2 + SPEED / YAW_RATE * (math.sin(yaw) - math.sin(YAW0))
    y = y2 + SPEED / YAW_RATE * (math.cos(YAW0) - math.cos(yaw))
    if t <= 5.0:
        return x, y, yaw
    braking = min(t, 6.0) - 5.0
    travelled = SPEED * braking - 0.5 * SPEED * braking**2
    return x + travelled * math.cos(yaw), y + travelled * math.sin(yaw), yaw


def analytic_speed(t: float) -> tuple[float, float]:
    if t < 5.0:
        return SPEED, YAW_RATE if t > 2.0 else 0.0
    return max(0.0, SPEED * (6.0 - t)), 0.0


def analytic_future(t: float) -> tuple[np.ndarray, np.ndarray]:
    """The future at t + 0.5 ... 4 s in the ISO 8855 frame of the pose at t."""
    x, y, yaw = analytic_pose(t)
    points, headings = [], []
    for h in HORIZONS_S:
        fx, fy, fyaw = analytic_pose(t + h)
        dx, dy = fx - x, fy - y
        points.append((math.cos(yaw) * dx + math.sin(yaw) * dy, -math.sin(yaw) * dx + math.cos(yaw) * dy))
        headings.append(fyaw - yaw)
    return np.array(points), np.array(headings)


@pytest.fixture(scope="module")
def analytic_evaluation(tmp_path_factory, navsim_weights):
    root = tmp_path_factory.mktemp("metrics")
    bag = BagSpec()
    for j in range(-25, round(ODOMETRY_END_S * 50) + 1):  # 50 Hz, aligned with the frames
        ns = START + j * 20 * MS
        speed, rate = analytic_speed(j * 0.02)
        bag.add(ns, "odometry", "nav_msgs/msg/Odometry", odometry(ns, speed, rate, analytic_pose(j * 0.02)))
    for t, value in COMMANDS:
        bag.add(START + round(t * 1e9), "command", "std_msgs/msg/UInt8", command(value))
    for t in FRAMES_S:
        ns = START + round(t * 1e9)
        bag.add(ns + 3 * MS, "image", "sensor_msgs/msg/Image", raw_image(STITCHED, ns))
    path = bag.write(root / "analytic")
    out = root / "out"
    code = main(["evaluate-bag", str(path), "--weights", str(navsim_weights), "--out", str(out), "--device", "cpu"])
    assert code == 0
    records = [json.loads(line) for line in (out / "frames.jsonl").read_text().splitlines()]
    return out, {r["stamp_ns"]: r for r in records}, json.loads((out / "summary.json").read_text())


def test_logged_future_equals_the_analytic_trajectory(analytic_evaluation):
    _, records, _ = analytic_evaluation
    assert sorted(records) == [START + round(t * 1e9) for t in FRAMES_S]
    measured = [t for t in FRAMES_S if t + 4.0 <= ODOMETRY_END_S]
    assert measured == [0.0, 1.0, 2.5, 4.0, 5.5]
    for t in measured:
        record = records[START + round(t * 1e9)]
        points, headings = analytic_future(t)
        np.testing.assert_allclose(record["logged_future_iso8855"], points, atol=1e-9)
        np.testing.assert_allclose(record["logged_headings_iso8855"], headings, atol=1e-9)
    # Straight, turning and stopping futures look as they should.
    straight = records[START]["logged_future_iso8855"]
    np.testing.assert_allclose(straight[:4], [[2.5 * (k + 1), 0.0] for k in range(4)], atol=1e-9)
    assert records[START + 2_500_000_000]["logged_future_iso8855"][-1][1] > 1.0  # turning left (y left)
    stop = records[START + 5_500_000_000]["logged_future_iso8855"]
    assert stop[0] == stop[-1]  # standing still from 0.5 s on


def test_frame_metrics_equal_figures_computed_from_the_plans(analytic_evaluation):
    _, records, _ = analytic_evaluation
    for record in records.values():
        if "logged_future_iso8855" not in record:
            continue
        plan, truth = np.array(record["waypoints_iso8855"]), np.array(record["logged_future_iso8855"])
        l2 = [math.dist(p, q) for p, q in zip(plan, truth, strict=True)]
        np.testing.assert_allclose(record["l2_m"], l2, atol=1e-12)
        assert record["ade_m"] == pytest.approx(sum(l2) / 8, abs=1e-12)
        assert record["fde_m"] == pytest.approx(l2[7], abs=1e-12)
        differences = np.array(record["headings_iso8855"]) - np.array(record["logged_headings_iso8855"])
        wrapped = [abs(math.remainder(d, 2 * math.pi)) for d in differences]
        np.testing.assert_allclose(record["heading_error_rad"], wrapped, atol=1e-12)
        assert all(0 <= e <= math.pi for e in record["heading_error_rad"])


def test_frames_without_four_seconds_of_odometry_have_no_ground_truth(analytic_evaluation):
    _, records, summary = analytic_evaluation
    missing = [r for r in records.values() if "no_ground_truth" in r]
    assert sorted(r["stamp_ns"] for r in missing) == [START + 7_000_000_000, START + 9_000_000_000]
    assert all("l2_m" not in r and "t + " in r["no_ground_truth"] for r in missing)
    assert summary["metrics"]["no_ground_truth"] == 2


def test_summary_metrics_overall_and_per_command(analytic_evaluation):
    out, records, summary = analytic_evaluation
    measured = [r for r in records.values() if "l2_m" in r]
    expected_groups = {"left": [0.0, 1.0], "straight": [2.5, 4.0], "right": [5.5], "unknown": []}
    for name, times in expected_groups.items():
        stamps = sorted(r["stamp_ns"] for r in measured if r["command"] == name)
        assert stamps == [START + round(t * 1e9) for t in times]

    def expected(frames: list[dict]) -> dict:
        if not frames:
            return {"frames": 0}
        l2 = np.array([f["l2_m"] for f in frames])
        figures = {"frames": len(frames)}
        for t in (1, 2, 3, 4):
            figures[f"l2_at_{t}s"] = l2[:, 2 * t - 1].mean()  # horizons 0.5 s apart: T s is index 2T - 1
            figures[f"l2_avg_upto_{t}s"] = l2[:, : 2 * t].mean()
        figures["ade"], figures["fde"] = l2.mean(), l2[:, 7].mean()
        figures["heading_error_mean_rad"] = np.mean([f["heading_error_rad"] for f in frames])
        return figures

    metrics = summary["metrics"]
    groups = {"overall": measured} | {n: [r for r in measured if r["command"] == n] for n in expected_groups}
    for name, frames in groups.items():
        written = metrics["overall"] if name == "overall" else metrics["per_command"][name]
        for key, value in expected(frames).items():
            assert written[key] == pytest.approx(value, abs=1e-12), (name, key)
    assert metrics["per_command"]["unknown"]["ade"] is None
    assert (out / "metrics.png").stat().st_size > 10_000


# --- compare-evaluations -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_jpeg_settings(tmp_path_factory, navsim_weights):
    """The same four-camera bag evaluated with and without NAVSIM's JPEG round trip."""
    root = tmp_path_factory.mktemp("compare")
    bag = BagSpec()
    for j in range(-10, 260):  # 4 s of logged future for both frames
        ns = START + j * 20 * MS
        bag.add(ns, "odometry", "nav_msgs/msg/Odometry", odometry(ns, 3.0, 0.0, (j * 0.06, 0.0, 0.0)))
    for k in range(2):
        ns = START + k * 100 * MS
        for name, image in zip(("l0", "f0", "r0", "b0"), reference_cameras(540, 960), strict=True):
            bag.add(ns + 1, name, "sensor_msgs/msg/CompressedImage", jpeg_image(image, ns))
    path = bag.write(root / "cams")
    outs = []
    for jpeg in ("true", "false"):
        params = root / f"jpeg_{jpeg}.yaml"
        params.write_text(f"/**:\n  ros__parameters:\n    image_transport: compressed\n    jpeg_roundtrip: {jpeg}\n")
        outs.append(root / f"out_{jpeg}")
        argv = [
            "evaluate-bag",
            str(path),
            "--weights",
            str(navsim_weights),
            "--out",
            str(outs[-1]),
            "--device",
            "cpu",
            "--no-pictures",
            "--params-file",
            str(params),
        ]
        assert main(argv) == 0
    return outs


def test_an_evaluation_compared_with_itself_has_no_difference(two_jpeg_settings, capsys):
    out = two_jpeg_settings[0]
    assert main(["compare-evaluations", str(out), str(out), "--max-diff-m", "0", "--max-diff-rad", "0"]) == 0
    text = capsys.readouterr().out
    assert "frames: 2 in common, 0 only in A, 0 only in B" in text
    assert "largest: 0.000e+00 m, 0.000e+00 rad" in text and "result: every frame within the limits" in text
    assert "overall l2_at_1s" in text


def test_the_jpeg_round_trip_changes_the_plans(two_jpeg_settings, capsys):
    with_jpeg, without = two_jpeg_settings
    assert main(["compare-evaluations", str(with_jpeg), str(without)]) == 0  # no limits: compared
    assert main(["compare-evaluations", str(with_jpeg), str(without), "--max-diff-m", "1e-6"]) == 1
    text = capsys.readouterr().out
    largest = float(text.split("largest: ")[-1].split(" m")[0])
    assert largest > 1e-6 and "result: 2 frames beyond the limits, 0 frames in one output only" in text


def test_a_frame_in_one_output_only_fails_the_limits(two_jpeg_settings, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(two_jpeg_settings[0], copy)
    lines = (copy / "frames.jsonl").read_text().splitlines()
    (copy / "frames.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    assert main(["compare-evaluations", str(two_jpeg_settings[0]), str(copy), "--max-diff-m", "1"]) == 1
    text = capsys.readouterr().out
    assert "1 only in A" in text and f"only in A: {json.loads(lines[-1])['stamp_ns']}" in text


def test_not_an_evaluation_output_is_a_usage_error(two_jpeg_settings, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["compare-evaluations", str(two_jpeg_settings[0]), str(tmp_path / "empty")]) == 2
    assert f"{tmp_path / 'empty'} is not an evaluate-bag output of one bag" in capsys.readouterr().err
    assert main(["compare-evaluations", str(tmp_path / "missing"), str(two_jpeg_settings[0])]) == 2
