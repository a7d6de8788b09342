"""evaluate-bag, replay and record-path on synthetic and real rosbag2 bags."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from bag_factory import MS, START, BagSpec, command, imu, jpeg_image, odometry, raw_image
from conftest import DATA, REPO, read_rgb
from lead_ros.bag.compare import read_paths
from lead_ros.bag.evaluate import (
    OUTPUT_PATH_TOPIC,
    BagOutputError,
    EvaluationOptions,
    evaluate_bag,
)
from lead_ros.bag.reader import BagInputError, default_topics
from lead_ros.bag.sample_bag import write_sample_bag
from lead_ros.node_config import NodeConfig
from lead_ros.observation import Command, Observation
from lead_ros.ros.distro import PORTABLE_BAG_VERSION, RUNNING, SUPPORTED
from lead_ros.tools.cli import main
from lead_ros.tools.synthetic_cameras import reference_cameras

STITCHED = read_rgb(DATA / "images" / "case_02.png")
CAMERAS = dict(zip(("l0", "f0", "r0", "b0"), reference_cameras(540, 960), strict=True))
REAL_BAGS = REPO / "test" / "data" / "real_bags"


def _options(**params) -> EvaluationOptions:
    return EvaluationOptions(config=NodeConfig.from_values(params), topics=default_topics(), progress=False)


def _one_stitched_frame(path: Path, stamp_shift_ns: int = 0) -> Path:
    """A bag with one stitched frame at START and 50 Hz odometry around it; header stamps
    ``stamp_shift_ns`` away from record time."""
    bag = BagSpec()
    for j in range(-5, 10):
        stamp = START + j * 20 * MS + stamp_shift_ns
        bag.add(START + j * 20 * MS, "odometry", "nav_msgs/msg/Odometry", odometry(stamp, 2.0))
    bag.add(START + 1, "image", "sensor_msgs/msg/Image", raw_image(STITCHED, START + stamp_shift_ns))
    return bag.write(path)


def _bag_version(bag: Path) -> int:
    return yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]["version"]


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "frames.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("bag_version", [d.bag_version for d in SUPPORTED], ids=[d.name for d in SUPPORTED])
@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_stitched_raw_bag_with_imu_command_changes_and_an_odometry_gap(tmp_path, planner, storage, bag_version):
    """Read alike whichever supported distribution recorded it (rosbag2 metadata 8: Jazzy, 9: Kilted)."""
    bag = BagSpec()
    frames = [START + k * 100 * MS for k in range(5)]
    for j in range(-10, 30):  # 50 Hz odometry and IMU; odometry stops after 220 ms
        ns = START + j * 20 * MS + 5 * MS
        if ns - START < 220 * MS:
            bag.add(ns, "odometry", "nav_msgs/msg/Odometry", odometry(ns, 4.0 + (ns - START) / 1e9))
        bag.add(ns + 1, "imu", "sensor_msgs/msg/Imu", imu(ns, 0.6, 0.8))
    bag.add(START - 50 * MS, "command", "std_msgs/msg/UInt8", command(Command.LEFT))
    bag.add(START + 150 * MS, "command", "std_msgs/msg/UInt8", command(Command.RIGHT))
    for ns in frames:
        bag.add(ns + 2 * MS, "image", "sensor_msgs/msg/Image", raw_image(STITCHED, ns))
    path = bag.write(tmp_path / "bag", storage, bag_version)
    assert _bag_version(path) == bag_version
    options = _options(camera_mode="stitched", acceleration_source="imu")
    out = tmp_path / "out"
    out.mkdir()
    summary = evaluate_bag(path, out, planner, options)
    assert summary["frames_read"] == 5 and summary["planned"] == 3
    assert summary["skipped_by_reason"] == {"odometry_unavailable": 2}
    records = {r["stamp_ns"]: r for r in _records(out)}
    assert records[frames[3]]["status"] == "skipped" and records[frames[3]]["reason"] == "odometry_unavailable"
    assert _bag_version(out / "output_bag") == RUNNING.bag_version, "written as the running distribution's ros2 bag"
    paths = read_paths(out / "output_bag", OUTPUT_PATH_TOPIC)
    assert sorted(paths) == frames[:3]
    for ns in paths:
        speed = 4.0 + (ns - START) / 1e9
        cmd = Command.LEFT if ns - START < 150 * MS else Command.RIGHT
        plan = planner.plan(Observation(speed, 1.0, cmd, image=STITCHED))
        np.testing.assert_allclose(paths[ns][:, :2], plan.waypoints, atol=1e-4)
        assert records[ns]["command"] == cmd.name.lower() and records[ns]["acceleration_mps2"] == pytest.approx(1.0)


def test_compressed_four_camera_bag_with_out_of_tolerance_camera(tmp_path, planner):
    bag = BagSpec()
    frames = [START + k * 100 * MS for k in range(3)]
    for j in range(-10, 20):
        ns = START + j * 20 * MS
        bag.add(ns, "odometry", "nav_msgs/msg/Odometry", odometry(ns, 3.0))
    messages = {}
    for i, ns in enumerate(frames):
        for name, image in CAMERAS.items():
            offset = 80 * MS if (i == 1 and name == "r0") else 0
            messages[(ns, name)] = jpeg_image(image, ns + offset)
            bag.add(ns + offset + 1, name, "sensor_msgs/msg/CompressedImage", messages[(ns, name)])
    path = bag.write(tmp_path / "bag")
    out = tmp_path / "out"
    out.mkdir()
    summary = evaluate_bag(path, out, planner, _options(image_transport="compressed"))
    assert (summary["planned"], summary["skipped_by_reason"]) == (2, {"camera_missing": 1})
    paths = read_paths(out / "output_bag", OUTPUT_PATH_TOPIC)
    for ns in (frames[0], frames[2]):
        decoded = tuple(cv2.imdecode(np.asarray(messages[(ns, n)].data), cv2.IMREAD_COLOR) for n in CAMERAS)
        plan = planner.plan(Observation(3.0, 0.0, Command.UNKNOWN, cameras=decoded, encoding="bgr8"))
        np.testing.assert_allclose(paths[ns][:, :2], plan.waypoints, atol=1e-4)


@pytest.fixture(scope="module")
def sample_evaluation(tmp_path_factory, navsim_weights):
    """evaluate-bag on the shipped sample, through the CLI, with inputs copied."""
    out = tmp_path_factory.mktemp("sample") / "eval"
    argv = ["evaluate-bag", str(REPO / "data" / "sample_bag"), "--weights", str(navsim_weights), "--out", str(out)]
    code = main([*argv, "--params-file", str(REPO / "config" / "sample.yaml"), "--device", "cpu", "--write-inputs"])
    assert code == 0
    return out


def test_sample_evaluation_outputs(sample_evaluation):
    summary = json.loads((sample_evaluation / "summary.json").read_text())
    assert summary["frames_read"] == 30 and summary["planned"] == 30 and summary["skipped"] == 0
    assert summary["untrained"] is True and summary["device"] == "cpu" and len(summary["weights_sha256"]) == 1
    # config/sample.yaml derives the command from the route, so the UInt8 topic is not read.
    assert summary["skipped_connections"] == [
        "/lead_planner/input/command (std_msgs/msg/UInt8)",
        "/lead_planner/input/imu (sensor_msgs/msg/Imu)",
    ]
    assert summary["latency_ms"]["inference_ms"]["p50"] > 0
    assert (sample_evaluation / "contact_sheet.png").stat().st_size > 10_000
    assert (sample_evaluation / "frames.mp4").stat().st_size > 1_000
    sheet = cv2.imread(str(sample_evaluation / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[0] > 100
    records = _records(sample_evaluation)
    assert all(r["command_input"] == "route" and r["command_source"] == "received" for r in records)
    # The sample's route: straight, then left, then right (a short straight while the
    # look-ahead point swings from one side to the other).
    sequence = "".join(r["command"][0] for r in records)
    assert re.fullmatch(r"s{4,}l{4,}s{0,4}r{3,}", sequence), sequence
    for record in records:
        lateral = record["route_lateral_m"]
        assert record["command"] == ("left" if lateral >= 2 else "right" if lateral <= -2 else "straight")
    metadata = yaml.safe_load((sample_evaluation / "output_bag" / "metadata.yaml").read_text())
    topics = {t["topic_metadata"]["name"] for t in metadata["rosbag2_bagfile_information"]["topics_with_message_count"]}
    assert OUTPUT_PATH_TOPIC in topics and "/lead_planner/input/cameras/f0" in topics  # --write-inputs


def test_sample_bag_regenerates_bit_identically(tmp_path):
    """In the metadata version every supported distribution's ``ros2 bag`` reads."""
    regenerated = write_sample_bag(tmp_path / "sample_bag")
    shipped = REPO / "data" / "sample_bag"
    assert _bag_version(shipped) == PORTABLE_BAG_VERSION
    assert sorted(p.name for p in shipped.iterdir()) == sorted(p.name for p in regenerated.iterdir())
    for file in shipped.iterdir():
        assert file.read_bytes() == (regenerated / file.name).read_bytes(), file.name
    assert sum(f.stat().st_size for f in shipped.iterdir()) < 15 * 2**20


def test_connection_with_an_unparseable_definition_is_skipped_and_the_rest_evaluated(tmp_path, planner):
    """rosbags cannot parse service-event definitions (real_bags/service_events_mcap); such
    a connection beside the inputs is skipped and counted, not fatal for the whole bag."""
    from rosbags.rosbag2 import Reader, StoragePlugin, Writer

    with Reader(REAL_BAGS / "service_events_mcap") as source:
        event = next(c for c in source.connections if c.topic.endswith("_service_event"))
        event_data = next(raw for c, _, raw in source.messages(connections=[event]))
    path = _one_stitched_frame(tmp_path / "inputs")
    mixed = tmp_path / "mixed"
    mcap = StoragePlugin.MCAP
    with Reader(path) as inputs, Writer(mixed, version=RUNNING.bag_version, storage_plugin=mcap) as writer:
        copies = {
            c.id: writer.add_connection(c.topic, c.msgtype, msgdef=c.msgdef.data, rihs01=c.digest)
            for c in inputs.connections
        }
        extra = writer.add_connection(event.topic, event.msgtype, msgdef=event.msgdef.data, rihs01=event.digest)
        writer.write(extra, START, event_data)
        for connection, ns, raw in inputs.messages():
            writer.write(copies[connection.id], ns, raw)
    out = tmp_path / "out"
    out.mkdir()
    summary = evaluate_bag(mixed, out, planner, _options(camera_mode="stitched"))
    assert summary["planned"] == 1
    assert summary["skipped_connections"] == [f"{event.topic} ({event.msgtype})"]


def test_stale_stamps_are_planned_offline_unless_an_age_limit_is_asked_for(tmp_path, planner):
    """Header stamps an hour behind record time (e.g. a simulator bag): planned by default,
    stale_input with --max-input-age-s."""
    path = _one_stitched_frame(tmp_path / "bag", stamp_shift_ns=-3_600_000 * MS)
    for limit, planned in ((0.0, 1), (1.0, 0)):
        out = tmp_path / f"out_{limit}"
        out.mkdir()
        options = replace(_options(camera_mode="stitched"), max_input_age_s=limit)
        summary = evaluate_bag(path, out, planner, options)
        assert summary["planned"] == planned, summary
        if not planned:
            assert [r["reason"] for r in _records(out)] == ["stale_input"]


def _bag_with_a_damaged_camera(path: Path, camera: str) -> tuple[Path, list[int]]:
    """Three compressed four-camera frames; ``camera``'s JPEG of the second one is damaged."""
    from test_image_decoding import damaged

    bag = BagSpec()
    frames = [START + k * 100 * MS for k in range(3)]
    for j in range(-10, 20):
        ns = START + j * 20 * MS
        bag.add(ns, "odometry", "nav_msgs/msg/Odometry", odometry(ns, 3.0))
    for i, ns in enumerate(frames):
        for name, image in CAMERAS.items():
            message = jpeg_image(image, ns)
            if i == 1 and name == camera:
                message.data = np.frombuffer(damaged(message.data.tobytes()), np.uint8)
            bag.add(ns + 1, name, "sensor_msgs/msg/CompressedImage", message)
    return bag.write(path), frames


def test_a_corrupt_jpeg_in_a_bag_skips_its_frame_and_names_it(tmp_path, planner):
    path, frames = _bag_with_a_damaged_camera(tmp_path / "bag", "f0")
    out = tmp_path / "out"
    out.mkdir()
    summary = evaluate_bag(path, out, planner, _options(image_transport="compressed"))
    assert (summary["planned"], summary["skipped_by_reason"]) == (2, {"corrupt_image": 1})
    record = {r["stamp_ns"]: r for r in _records(out)}[frames[1]]
    assert (record["status"], record["reason"]) == ("skipped", "corrupt_image")
    assert record["detail"].startswith("camera f0 ('jpeg'): JPEG data is corrupt")


@pytest.mark.parametrize("camera", ["r0", "f0"])
def test_a_corrupt_side_camera_counts_as_missing_under_fill_black(tmp_path, planner, camera):
    """fill_black plans the frame with the corrupt side camera black (f0 is never filled)."""
    path, frames = _bag_with_a_damaged_camera(tmp_path / "bag", camera)
    out = tmp_path / "out"
    out.mkdir()
    options = _options(image_transport="compressed", missing_camera_policy="fill_black")
    summary = evaluate_bag(path, out, planner, options)
    record = {r["stamp_ns"]: r for r in _records(out)}[frames[1]]
    if camera == "f0":
        assert (summary["planned"], record["reason"]) == (2, "corrupt_image")
        return
    assert summary["planned"] == 3 and record["filled_cameras"] == ["r0"]
    decoded = {
        n: cv2.imdecode(np.asarray(jpeg_image(image, frames[1]).data), cv2.IMREAD_COLOR) for n, image in CAMERAS.items()
    }
    cameras = tuple(None if n == "r0" else decoded[n] for n in CAMERAS)
    plan = planner.plan(Observation(3.0, 0.0, Command.UNKNOWN, cameras=cameras, encoding="bgr8"))
    np.testing.assert_allclose(
        read_paths(out / "output_bag", OUTPUT_PATH_TOPIC)[frames[1]][:, :2], plan.waypoints, atol=1e-4
    )


def test_reorder_window_restores_header_stamp_order(tmp_path, planner):
    """An image recorded 150 ms late (after later odometry) is put back in stamp order."""
    bag = BagSpec()
    for j in range(-5, 10):
        bag.add(START + j * 20 * MS, "odometry", "nav_msgs/msg/Odometry", odometry(START + j * 20 * MS, 2.0))
    bag.add(START + 150 * MS, "image", "sensor_msgs/msg/Image", raw_image(STITCHED, START))
    out = tmp_path / "out"
    out.mkdir()
    summary = evaluate_bag(bag.write(tmp_path / "bag"), out, planner, _options(camera_mode="stitched"))
    assert summary["planned"] == 1


# --- bad input ---------------------------------------------------------------------------------


def _cli_error(capsys, *argv) -> str:
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    return err


def test_not_a_bag(capsys, tmp_path, navsim_weights):
    text = tmp_path / "notes.txt"
    text.write_text("x")
    err = _cli_error(capsys, "evaluate-bag", text, "--weights", navsim_weights, "--out", tmp_path / "o")
    assert f"{text} is not a rosbag2 bag" in err
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    err = _cli_error(capsys, "evaluate-bag", empty, "--weights", navsim_weights, "--out", tmp_path / "o")
    assert "is a directory without metadata.yaml" in err


def test_malformed_or_unknown_params_file_values_are_one_line(capsys, tmp_path, navsim_weights):
    bag = REPO / "data" / "sample_bag"
    broken = tmp_path / "broken.yaml"
    broken.write_text("/**:\n  ros__parameters:\n    weights: [unclosed\n")
    err = _cli_error(
        capsys, "evaluate-bag", bag, "--weights", navsim_weights, "--out", tmp_path / "o", "--params-file", broken
    )
    assert f"params file {broken} is not valid YAML" in err and len(err.strip().splitlines()) == 1
    typo = tmp_path / "typo.yaml"
    typo.write_text("/**:\n  ros__parameters:\n    sync_tolerence_ms: 80\n    sync_tolerance_ms: 80\n")
    err = _cli_error(
        capsys, "evaluate-bag", bag, "--weights", navsim_weights, "--out", tmp_path / "o", "--params-file", typo
    )
    assert "unknown parameter 'sync_tolerence_ms' (did you mean 'sync_tolerance_ms'?)" in err


def test_stated_camera_settings_that_disagree_with_the_bag_name_what_would_work(capsys, tmp_path, navsim_weights):
    # The sample's cameras are four CompressedImage topics.
    sample = REPO / "data" / "sample_bag"
    err = _cli_error(
        capsys, "evaluate-bag", sample, "--weights", navsim_weights, "--out", tmp_path / "o", "--image-transport", "raw"
    )
    assert "has type sensor_msgs/msg/CompressedImage, expected sensor_msgs/msg/Image" in err
    assert "(image_transport raw); image_transport: compressed would work" in err
    # A params file that states the transport is explicit too (the packaged one says raw).
    err = _cli_error(
        capsys,
        "evaluate-bag",
        sample,
        "--weights",
        navsim_weights,
        "--out",
        tmp_path / "o",
        "--params-file",
        REPO / "config" / "lead_ros.yaml",
    )
    assert "image_transport: compressed would work" in err
    err = _cli_error(
        capsys,
        "evaluate-bag",
        sample,
        "--weights",
        navsim_weights,
        "--out",
        tmp_path / "o",
        "--camera-mode",
        "stitched",
    )
    assert "camera_mode stitched reads /lead_planner/input/image, which the bag does not have; " in err
    assert "camera_mode: navsim_4cam would work" in err


def test_camera_settings_follow_the_bag_unless_stated(tmp_path, navsim_weights, capsys, caplog):
    """Without --params-file or --camera-mode/--image-transport, each bag's camera connections
    decide; a folder can mix a stitched raw bag and a four-camera compressed one."""
    folder = tmp_path / "bags"
    folder.mkdir()
    _one_stitched_frame(folder / "stitched_raw")
    bag = BagSpec()
    for j in range(-5, 10):
        bag.add(START + j * 20 * MS, "odometry", "nav_msgs/msg/Odometry", odometry(START + j * 20 * MS, 2.0))
    for name, image in CAMERAS.items():
        bag.add(START + 1, name, "sensor_msgs/msg/CompressedImage", jpeg_image(image, START))
    bag.write(folder / "four_jpeg")
    caplog.set_level("INFO", logger="lead_ros.evaluate")
    code = main(
        [
            "evaluate-bag",
            str(folder),
            "--weights",
            str(navsim_weights),
            "--out",
            str(tmp_path / "o"),
            "--device",
            "cpu",
            "--no-pictures",
        ]
    )
    overall = json.loads(capsys.readouterr().out)
    assert code == 0 and overall["planned"] == 2 and not overall["failed_bags"], overall
    lines = [r.getMessage() for r in caplog.records if r.name == "lead_ros.evaluate"]
    assert any("stitched_raw: camera_mode stitched, image_transport raw (from the bag" in m for m in lines), lines
    assert any("four_jpeg: camera_mode navsim_4cam, image_transport compressed (from the bag" in m for m in lines)
    # A stated setting is kept; only the other one follows the bag.
    code = main(
        [
            "evaluate-bag",
            str(folder / "four_jpeg"),
            "--weights",
            str(navsim_weights),
            "--out",
            str(tmp_path / "o2"),
            "--device",
            "cpu",
            "--no-pictures",
            "--camera-mode",
            "navsim_4cam",
        ]
    )
    assert code == 0 and json.loads(capsys.readouterr().out)["planned"] == 1
    assert any(
        r.getMessage().endswith(
            "image_transport compressed (from the bag's camera topics; state them with "
            "--camera-mode/--image-transport or a params file to override)"
        )
        for r in caplog.records
    )


def test_sample_bag_has_four_seconds_of_logged_future_and_a_route():
    from rosbags.highlevel import AnyReader

    with AnyReader([REPO / "data" / "sample_bag"]) as reader:
        stamps: dict[str, list[int]] = {}
        route = None
        wanted = [c for c in reader.connections if c.msgtype != "std_msgs/msg/UInt8"]  # no header
        for connection, _, raw in reader.messages(connections=wanted):
            msg = reader.deserialize(raw, connection.msgtype)
            stamps.setdefault(connection.topic, []).append(msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec)
            if connection.topic == default_topics()["route"]:
                route = msg
    last_frame = max(stamps[default_topics()["f0"]])
    assert max(stamps[default_topics()["odometry"]]) - last_frame >= 4.5e9
    assert route is not None and route.header.frame_id == "odom" and len(route.poses) > 100


def test_decode_failures_and_unknown_connections_are_counted(tmp_path, planner):
    from bag_factory import T

    bag = BagSpec()
    for j in range(-5, 10):
        ns = START + j * 20 * MS
        bag.add(ns, "odometry", "nav_msgs/msg/Odometry", odometry(ns, 2.0) if j != 3 else b"\x00\x01garbage")
    bag.add(START + 1, "image", "sensor_msgs/msg/Image", raw_image(STITCHED, START))
    bag.add(START + 2, "/chatter", "std_msgs/msg/String", T["std_msgs/msg/String"](data="hi"))
    out = tmp_path / "out"
    out.mkdir()
    summary = evaluate_bag(bag.write(tmp_path / "bag"), out, planner, _options(camera_mode="stitched"))
    assert summary["decode_failures"] == {"/lead_planner/input/odometry": 1}
    assert summary["skipped_connections"] == ["/chatter (std_msgs/msg/String)"]
    assert summary["missing_topics"] == ["/lead_planner/input/command"]
    assert summary["planned"] == 1


def test_metadata_that_disagrees_with_storage_is_reported(tmp_path, planner):
    path = _one_stitched_frame(tmp_path / "bag")
    metadata = path / "metadata.yaml"
    data = yaml.safe_load(metadata.read_text())
    for topic in data["rosbag2_bagfile_information"]["topics_with_message_count"]:
        topic["topic_metadata"]["offered_qos_profiles"] = (
            "- history: 3\n  depth: 0\n  reliability: 1\n  durability: 2\n  deadline:\n    sec: 0\n    nsec: 0\n"
            "  lifespan:\n    sec: 0\n    nsec: 0\n  liveliness: 1\n  liveliness_lease_duration:\n    sec: 0\n"
            "    nsec: 0\n  avoid_ros_namespace_conventions: false"
        )
    metadata.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(BagInputError, match="metadata and storage disagree"):
        evaluate_bag(path, out, planner, _options(camera_mode="stitched"))


def test_empty_bag(capsys, tmp_path, navsim_weights):
    err = _cli_error(
        capsys, "evaluate-bag", REAL_BAGS / "empty_bag_sqlite3", "--weights", navsim_weights, "--out", tmp_path / "o"
    )
    assert "none of the requested topics" in err and "it has: /parameter_events" in err


def test_existing_output_directory_needs_overwrite(capsys, tmp_path, navsim_weights):
    out = tmp_path / "o"
    out.mkdir()
    (out / "old.txt").write_text("keep me")
    err = _cli_error(capsys, "evaluate-bag", REPO / "data" / "sample_bag", "--weights", navsim_weights, "--out", out)
    assert f"output directory {out} exists and is not empty; pass --overwrite" in err
    assert (out / "old.txt").exists()


def test_unwritable_output_names_the_path(capsys, tmp_path, navsim_weights):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    err = _cli_error(
        capsys, "evaluate-bag", REPO / "data" / "sample_bag", "--weights", navsim_weights, "--out", blocker / "out"
    )
    assert f"cannot create output directory {blocker / 'out'}" in err


def test_disk_full_while_writing_says_the_output_is_incomplete(tmp_path, planner, monkeypatch):
    from rosbags.rosbag2 import Writer

    def full(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Writer, "write", full)
    out = tmp_path / "out"
    out.mkdir()
    bag = out / "output_bag"
    with pytest.raises(
        BagOutputError,
        match=rf"^writing {bag} failed \(No space left on device\); the evaluation "
        rf"output in {out} is incomplete$",
    ):
        evaluate_bag(REPO / "data" / "sample_bag", out, planner, _options(image_transport="compressed"))


@pytest.mark.parametrize("name", sorted(p.name for p in REAL_BAGS.iterdir() if p.is_dir()))
def test_real_rosbag2_bags_give_a_result_or_a_clear_error(capsys, tmp_path, navsim_weights, name):
    code = main(
        [
            "evaluate-bag",
            str(REAL_BAGS / name),
            "--weights",
            str(navsim_weights),
            "--out",
            str(tmp_path / "o"),
            "--device",
            "cpu",
        ]
    )
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    if code == 2:
        assert "none of the requested topics" in captured.err or "could not open the bag" in captured.err
    else:  # a folder of single-file bags: one overall summary that names each failure
        assert code == 1
        overall = json.loads(captured.out)
        assert overall["bags"] == 3 and len(overall["failed_bags"]) == 3


# --- live node vs offline evaluation -----------------------------------------------------------


def test_lockstep_live_run_equals_offline_evaluation(ros_context, tmp_path, navsim_weights, capsys):
    """The demo's path: lead_planner process <- lockstep replay with /clock -> record -> compare,
    on the first second of the sample drive (the suite's time budget; `make demo` runs all 3 s)."""
    from lead_ros.tools.demo import main as demo

    bag = write_sample_bag(tmp_path / "sample_bag", duration_s=1.0)
    code = demo(
        ["--out", str(tmp_path / "demo"), "--weights", str(navsim_weights), "--device", "cpu", "--bag", str(bag)]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "frames planned: live 10, offline 10, in common 10" in out
    assert "commands from the route (NAVSIM rule): straight 0.0-0.5 s (6 frames" in out
    assert "left 0.6-0.9 s (4 frames" in out and "overall        10" in out  # metrics over all 10 frames
    assert "result: OK, live and offline agree" in out


def test_lockstep_waits_for_the_answering_nodes_name(ros_context, monkeypatch):
    """A publisher is discovered before its node's name: rmw reports "_NODE_NAME_UNKNOWN_" in
    "_NODE_NAMESPACE_UNKNOWN_" meanwhile, and querying that node's subscriptions raised RCLError
    out of the demo (seen once in the suite). Such a publisher is not taken as the answerer; a
    named one that leaves the graph leaves its topics unmatched."""
    from types import SimpleNamespace

    import rclpy
    from diagnostic_msgs.msg import DiagnosticStatus
    from rclpy.node import NodeNameNonExistentError

    from lead_ros.bag.replay import BagReplayer

    driver = rclpy.create_node("replayer_of_unnamed", context=ros_context)
    answerer = rclpy.create_node("answerer", namespace="/named", context=ros_context)
    topic = "/named/debug/frame_status"
    answerer.create_publisher(DiagnosticStatus, topic, 10)
    try:
        replayer = BagReplayer(driver, REPO / "data" / "sample_bag", clock=True, lockstep_topic=topic)
        unnamed = SimpleNamespace(
            node_name="_NODE_NAME_UNKNOWN_",
            node_namespace="_NODE_NAMESPACE_UNKNOWN_",
            topic_type="diagnostic_msgs/msg/DiagnosticStatus",
        )
        monkeypatch.setattr(driver, "get_publishers_info_by_topic", lambda topic: [unnamed])
        assert replayer.wait_until_ready(0.3) == f"no node publishes the lockstep topic {topic} after 0.3 s"
        monkeypatch.undo()

        def gone(*args, **kwargs):
            raise NodeNameNonExistentError("the node left")

        monkeypatch.setattr(driver, "get_subscriber_names_and_types_by_node", gone)
        missing = replayer.wait_until_ready(5.0)
        assert missing.startswith("lockstep: /named/answerer's topics not matched after 5 s:"), missing
        assert "(not subscribed by /named/answerer)" in missing
        replayer.close()
    finally:
        answerer.destroy_node()
        driver.destroy_node()


def test_lockstep_publishers_keep_one_message_and_plain_replay_ten(ros_context):
    """Lockstep waits until each message is acknowledged, and Fast DDS has a reliable reader
    acknowledge at once only when the writer's history is full (else at the next periodic
    heartbeat, 3 s later): with 10 places each of the first messages of a topic waited 3 s
    (27 s of the demo), between processes only, so the suite's lockstep runs showed it as time."""
    import rclpy

    from lead_ros.bag.replay import BagReplayer

    for lockstep_topic, depth in ((None, 10), ("/lead_planner/debug/frame_status", 1)):
        driver = rclpy.create_node("replayer_depth", context=ros_context)
        try:
            replayer = BagReplayer(driver, REPO / "data" / "sample_bag", clock=True, lockstep_topic=lockstep_topic)
            publishers = [*replayer.publishers.values(), replayer.clock_pub]
            assert len(publishers) > 2 and {p.qos_profile.depth for p in publishers} == {depth}
            replayer.close()
        finally:
            driver.destroy_node()


def test_lockstep_replay_without_an_answering_node_says_what_is_missing(ros_context):
    """Lockstep's promise needs the node: without one, run() refuses and the wait names the topic."""
    import rclpy

    from lead_ros.bag.replay import BagReplayer

    driver = rclpy.create_node("lonely_replayer", context=ros_context)
    try:
        replayer = BagReplayer(
            driver, REPO / "data" / "sample_bag", clock=True, lockstep_topic="/nobody/debug/frame_status"
        )
        with pytest.raises(RuntimeError, match="needs wait_until_ready"):
            replayer.run()
        missing = replayer.wait_until_ready(0.3)
        assert missing == "no node publishes the lockstep topic /nobody/debug/frame_status after 0.3 s"
        assert replayer.stats.published == 0
        replayer.close()
    finally:
        driver.destroy_node()


def test_real_time_replay_plans_a_subset_that_equals_offline(ros_context, tmp_path, planner, sample_evaluation):
    """At real-time rate a CPU node drops frames; each frame it plans equals its offline twin."""
    import time

    import rclpy
    from rclpy.parameter import Parameter

    from lead_ros.bag.compare import compare_paths
    from lead_ros.bag.record import PathRecorder
    from lead_ros.bag.replay import BagReplayer
    from lead_ros.ros.background_spin import BackgroundSpin
    from lead_ros.ros.node import LeadPlannerNode

    overrides = [
        Parameter("image_transport", value="compressed"),
        Parameter("command_input", value="route"),
        Parameter("use_sim_time", value=True),
    ]  # config/sample.yaml, as the offline twin
    node = LeadPlannerNode(planner=planner, context=ros_context, parameter_overrides=overrides)
    assert node.bring_up()
    driver = rclpy.create_node("realtime_driver", context=ros_context)
    recorded = tmp_path / "live"
    recorder = PathRecorder(driver, [OUTPUT_PATH_TOPIC], recorded)
    replayer = BagReplayer(driver, REPO / "data" / "sample_bag", rate=1.0, clock=True)
    # The node spun as the shipped process spins it (its own SingleThreadedExecutor), the
    # driver apart: rclpy's MultiThreadedExecutor busy-loops and can starve the intake.
    spins = [BackgroundSpin(node), BackgroundSpin(driver)]
    try:
        inputs = [t for k, t in default_topics().items() if k not in ("image", "imu", "command")]
        assert replayer.wait_for_subscribers(20, inputs) and recorder.matched
        replayer.run()
        queue = node.queue
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and node.stats.snapshot()["planned"] + queue.dropped_count < queue.put_count:
            time.sleep(0.05)
        while time.monotonic() < deadline and recorder.count < node.stats.snapshot()["planned"]:
            time.sleep(0.05)  # the last paths reach the recorder
    finally:
        replayer.close()
        for spin in spins:
            spin.close()
        node.close()
        recorder.close()
        node.destroy_node()
        driver.destroy_node()
    snapshot = node.stats.snapshot()
    planned = snapshot["planned"]
    assert queue.put_count == planned + queue.dropped_count  # frames in = processed + dropped, exactly
    assert 1 <= planned < 30, snapshot
    # Every anchor image the node took is accounted for: planned, superseded (in the queue,
    # or for an image replaced in DDS before it was taken), skipped by synchronization
    # (counted by reason), or still waiting for inputs; and every one published was taken
    # or counted as never taken.
    anchors = snapshot["inputs"]["f0"]
    skipped = sum(snapshot["failures"].values())
    superseded_taken = snapshot["superseded"] - snapshot["never_taken"]
    assert anchors.taken == planned + superseded_taken + skipped + node.intake.sync.pending, snapshot
    assert anchors.published == anchors.taken + snapshot["never_taken"] == anchors.taken + anchors.not_taken
    live = read_paths(recorded, OUTPUT_PATH_TOPIC)
    offline = read_paths(sample_evaluation / "output_bag", OUTPUT_PATH_TOPIC)
    comparison = compare_paths(live, offline)
    assert len(live) == planned and comparison.common == planned and not comparison.only_first
    assert comparison.matches(1e-4), comparison


@pytest.mark.parametrize(
    ("bag", "expected"),
    [
        ("cdr_test_mcap", r"nothing to replay: its topics \(.*\) have none of the types lead_ros' inputs have"),
        ("service_events_mcap", r"nothing to replay: its topics \(.*service_event.*\) have none of the types"),
    ],
)
def test_replay_of_a_bag_with_nothing_it_publishes_is_one_line(bag, expected):
    """rosbag2's own test bags: replay died with KeyError (an empty connection list reads as "all"
    to rosbags), or printed rosbags' 5-20 line parse error with the message definition."""
    path = REPO / "test" / "data" / "real_bags" / bag
    result = subprocess.run(
        [sys.executable, "-m", "lead_ros.tools.cli", "replay", str(path), "--wait-s", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert re.search(expected, line) and line.startswith(f"[ERROR] lead_ros: {path}:"), line
