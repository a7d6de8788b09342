"""evaluate-bag --engine ray on a local Ray instance (num_cpus=2, loopback only, no dashboard):
the same plans as the local engine, failures reported, a killed worker replaced, the fleet
summary's aggregates, and an actor API that writes nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bag_factory import MS, START, BagSpec, command, odometry, raw_image
from conftest import DATA, default_signal_disposition, read_rgb
from lead_ros.bag.evaluate import EvaluationOptions, PlannerSpec, evaluate_bags
from lead_ros.bag.fleet import BagWorker, FleetOptions, evaluate_on_ray
from lead_ros.bag.reader import default_topics
from lead_ros.node_config import NodeConfig
from lead_ros.observation import Command

STITCHED = read_rgb(DATA / "images" / "case_03.png")
GOOD = ("drive_a", "drive_b", "drive_c")


def _drive(path: Path, frames: int, speed: float, turn: str) -> Path:
    """Stitched frames every 0.5 s, 50 Hz odometry driving straight at ``speed`` for
    frames x 0.5 + 4.5 s (so the metrics have their logged future), a command."""
    bag = BagSpec()
    for j in range(-10, round((frames * 0.5 + 4.5) * 50)):
        ns = START + j * 20 * MS
        bag.add(ns, "odometry", "nav_msgs/msg/Odometry", odometry(ns, speed, 0.0, (speed * j * 0.02, 0.0, 0.0)))
    bag.add(START - 10 * MS, "command", "std_msgs/msg/UInt8", command(Command[turn.upper()]))
    for k in range(frames):
        ns = START + k * 500 * MS
        bag.add(ns + 2 * MS, "image", "sensor_msgs/msg/Image", raw_image(STITCHED, ns))
    return bag.write(path)


@pytest.fixture(scope="module")
def bags(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fleet") / "bags"
    folder.mkdir()
    for (name, turn), frames, speed in zip(
        zip(GOOD, ("left", "straight", "right"), strict=True), (2, 1, 2), (3.0, 6.0, 9.0), strict=True
    ):
        _drive(folder / name, frames, speed, turn)
    corrupt = folder / "drive_corrupt"
    corrupt.mkdir()
    (corrupt / "metadata.yaml").write_text("rosbag2_bagfile_information: {version: 9, storage_identifier: mcap}\n")
    (corrupt / "drive_corrupt_0.mcap").write_bytes(b"not an mcap file")
    return folder


def _options() -> EvaluationOptions:
    return EvaluationOptions(
        config=NodeConfig.from_values({}),
        topics=default_topics(),
        progress=False,
        follow_bag=("camera_mode", "image_transport"),
        pictures=False,
    )


def _plans(out: Path) -> dict[int, np.ndarray]:
    records = [json.loads(line) for line in (out / "frames.jsonl").read_text().splitlines()]
    return {r["stamp_ns"]: np.array(r["waypoints_iso8855"]) for r in records if r["status"] == "planned"}


@pytest.fixture(scope="module")
def local_run(bags, tmp_path_factory, navsim_weights):
    out = tmp_path_factory.mktemp("local") / "out"
    evaluate_bags([bags], out, PlannerSpec(str(navsim_weights), "cpu", "fp32"), _options(), jobs=2)
    return out


@pytest.fixture(scope="module")
def ray_run(ray_local, bags, tmp_path_factory, navsim_weights, local_run):
    """All four bags on two actors; the first actor to start a bag is killed once (test hook)."""
    root = tmp_path_factory.mktemp("ray")
    out, marker = root / "out", root / "kill_once"
    out.mkdir()
    marker.write_text("the first worker to see this file dies")
    all_bags = sorted(p for p in bags.iterdir())
    fleet = FleetOptions(workers=2, cpus_per_worker=1, kill_once_marker=str(marker))
    summary = evaluate_on_ray(all_bags, out, PlannerSpec(str(navsim_weights), "cpu", "fp32"), _options(), fleet)
    return out, summary, marker


def test_the_local_ray_instance_listens_on_loopback_only(ray_local):
    """Every socket Ray's processes listen on is bound to 127.0.0.1 (Ray would otherwise take
    the machine's network address, whatever node address is asked for)."""
    import psutil

    assert {node["NodeManagerAddress"] for node in ray_local.nodes()} == {"127.0.0.1"}
    ours = {p.pid for p in psutil.Process().children(recursive=True)} | {os.getpid()}
    listening = [c for c in psutil.net_connections("inet") if c.status == psutil.CONN_LISTEN and c.pid in ours]
    names = {psutil.Process(c.pid).name() for c in listening}
    assert {"gcs_server", "raylet"} <= names, names
    assert {c.laddr.ip for c in listening} <= {"127.0.0.1", "::ffff:127.0.0.1"}, listening


def test_local_engine_with_jobs_writes_each_bag_and_the_summaries(local_run):
    overall = json.loads((local_run / "summary.json").read_text())
    assert overall["bags"] == 4 and overall["planned"] == 5 and len(overall["failed_bags"]) == 1
    for name, planned in zip(GOOD, (2, 1, 2), strict=True):
        assert json.loads((local_run / name / "summary.json").read_text())["planned"] == planned
    fleet = json.loads((local_run / "fleet_summary.json").read_text())
    assert fleet["engine"] == "local" and fleet["frames"]["planned"] == 5 and len(fleet["succeeded"]) == 3


def test_ray_plans_equal_the_local_engine(ray_run, local_run):
    out, _, _ = ray_run
    for name in GOOD:
        ray_plans, local_plans = _plans(out / name), _plans(local_run / name)
        assert ray_plans.keys() == local_plans.keys() and ray_plans
        for stamp in ray_plans:
            np.testing.assert_allclose(ray_plans[stamp], local_plans[stamp], atol=1e-6, rtol=0)
        # The driver wrote exactly what the local engine writes, paths pointing under OUT.
        assert sorted(p.name for p in (out / name).iterdir()) == sorted(p.name for p in (local_run / name).iterdir())
        summary = json.loads((out / name / "summary.json").read_text())
        assert summary["outputs"]["frames"] == str(out / name / "frames.jsonl")


def test_a_corrupt_bag_is_reported_and_the_others_complete(ray_run, local_run):
    _, fleet, _ = ray_run
    assert sorted(Path(b).name for b in fleet["succeeded"]) == list(GOOD)
    (failed,) = fleet["failed"]
    assert failed["bag"].endswith("drive_corrupt") and "could not open the bag" in failed["error"]
    local = json.loads((local_run / "fleet_summary.json").read_text())
    assert local["failed"][0]["error"] == failed["error"]  # the same one-line error as locally


def test_fleet_summary_aggregates_equal_the_per_bag_figures(ray_run):
    out, fleet, _ = ray_run
    assert json.loads((out / "fleet_summary.json").read_text()) == fleet
    summaries = [json.loads((out / name / "summary.json").read_text()) for name in GOOD]
    assert fleet["frames"]["planned"] == sum(s["planned"] for s in summaries) == 5
    assert fleet["frames"]["read"] == sum(s["frames_read"] for s in summaries)
    overall = fleet["metrics"]["overall"]
    frames = [s["metrics"]["overall"]["frames"] for s in summaries]
    assert overall["frames"] == sum(frames) == 5
    for key in ("l2_at_1s", "l2_avg_upto_4s", "ade", "fde", "heading_error_mean_rad"):
        expected = sum(s["metrics"]["overall"][key] * n for s, n in zip(summaries, frames, strict=True)) / sum(frames)
        assert overall[key] == pytest.approx(expected, rel=1e-12)
    for turn, name in zip(("left", "straight", "right"), GOOD, strict=True):
        assert (
            fleet["metrics"]["per_command"][turn]["frames"]
            == json.loads((out / name / "summary.json").read_text())["planned"]
        )
    assert fleet["frames_per_second"]["overall"] > 0 and fleet["frames_per_second"]["per_worker"]
    assert fleet["engine"] == "ray" and fleet["ray_startup_s"] == 0.0  # the test's instance was reused


def test_a_killed_worker_is_replaced_and_its_bag_completes(ray_run):
    out, fleet, marker = ray_run
    assert not marker.exists()  # the hook fired: a worker died mid-bag
    # ... and every good bag still completed, its plans equal to the local engine's (above).
    assert sorted(Path(b).name for b in fleet["succeeded"]) == list(GOOD) and len(fleet["failed"]) == 1
    assert all(json.loads((out / name / "summary.json").read_text())["planned"] > 0 for name in GOOD)


def test_the_actor_api_writes_nothing(bags, tmp_path, planner, monkeypatch):
    """The actor class in this process (with the session's planner, its thread count kept):
    the bag's artefacts come back as bytes and nothing it wrote is left behind."""
    import tempfile

    import torch

    scratch_root = tmp_path / "scratch"
    scratch_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch_root))
    monkeypatch.setattr(PlannerSpec, "build", lambda spec, config: planner)
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    worker = BagWorker(
        PlannerSpec("unused", "cpu", "fp32"), replace(_options(), pictures=True), torch.get_num_threads(), None
    )
    result = worker.evaluate(str(bags / "drive_a"))
    assert sorted(tmp_path.rglob("*")) == before
    assert {"frames.jsonl", "summary.json", "metrics.png", "frames.mp4", "contact_sheet.png"} <= set(result["files"])
    assert any(name.startswith("output_bag/") for name in result["files"])
    assert result["summary"]["planned"] == 2


def test_ctrl_c_marks_in_flight_bags_interrupted_and_exits_130(bags, tmp_path, navsim_weights):
    """The CLI with its own local Ray instance, interrupted while bags are in flight."""
    out, log = tmp_path / "out", tmp_path / "cli.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    with log.open("w") as sink:
        process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("lead-ros")),
                "evaluate-bag",
                str(bags / "drive_a"),
                str(bags / "drive_c"),
                "--weights",
                str(navsim_weights),
                "--out",
                str(out),
                "--device",
                "cpu",
                "--engine",
                "ray",
                "--workers",
                "2",
                "--no-pictures",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            preexec_fn=default_signal_disposition,
        )
        deadline = time.monotonic() + 120
        while "bags in flight" not in log.read_text() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=120)
    output = log.read_text()
    assert process.returncode == 130, output
    assert "Traceback" not in output
    fleet = json.loads((out / "fleet_summary.json").read_text())
    assert fleet["interrupted"] and len(fleet["interrupted"]) + len(fleet["succeeded"]) == 2
