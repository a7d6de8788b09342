"""lead_planner in-process: paths equal Planner.plan, both camera modes and transports,
synchronization, bad inputs, diagnostics and parameters (CPU, synthetic weights)."""

from __future__ import annotations

import math
import time

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image

from conftest import DATA, read_rgb
from lead_ros.observation import Command, Observation
from lead_ros.tools.synthetic_cameras import reference_cameras
from ros_harness import compressed

MS = 1_000_000
STITCHED = read_rgb(DATA / "images" / "case_01.png")  # 256 x 1920
SMALL_CAMERAS = dict(zip(("l0", "f0", "r0", "b0"), reference_cameras(540, 960), strict=True))  # -> 270 rows


def _assert_path(path, stamp_ns, plan, frame_id="base_link"):
    assert path.header.frame_id == frame_id
    assert path.header.stamp.sec * 10**9 + path.header.stamp.nanosec == stamp_ns
    assert len(path.poses) == 8
    for pose, t, (x, y), heading in zip(path.poses, plan.times_s, plan.waypoints, plan.headings, strict=True):
        assert pose.header.stamp.sec * 10**9 + pose.header.stamp.nanosec == stamp_ns + round(t * 1e9)
        assert pose.header.frame_id == frame_id
        assert abs(pose.pose.position.x - x) <= 1e-4 and abs(pose.pose.position.y - y) <= 1e-4
        assert pose.pose.position.z == 0.0
        q = pose.pose.orientation
        wrapped = (2 * math.atan2(q.z, q.w) - heading + math.pi) % (2 * math.pi) - math.pi
        assert abs(wrapped) <= 1e-4 and q.x == 0.0 and q.y == 0.0


def test_navsim_4cam_raw_path_equals_planner(harness, planner):
    h = harness()
    cameras = dict(zip(("l0", "f0", "r0", "b0"), reference_cameras(), strict=True))
    h.send_command(Command.LEFT)
    h.wait_for(lambda: h.node.commands.state(0).source == "received", what="command")
    stamp = h.now_ns()
    h.send_frame(cameras, stamp, speed=5.0, encoding="bgr8")
    (path,) = h.wait_paths(1)
    expected = planner.plan(Observation(5.0, 0.0, Command.LEFT, cameras=tuple(cameras.values())))
    _assert_path(path, stamp, expected)


def test_navsim_4cam_compressed_path_equals_planner(harness, planner):
    h = harness(image_transport="compressed")
    stamp = h.now_ns()
    messages = {n: compressed(img, stamp) for n, img in SMALL_CAMERAS.items()}
    h.send_command(Command.RIGHT)
    h.wait_for(lambda: h.node.commands.state(0).source == "received", what="command")
    h.send_frame(messages, stamp, speed=3.0)
    (path,) = h.wait_paths(1)
    decoded = tuple(
        cv2.imdecode(np.frombuffer(messages[n].data, np.uint8), cv2.IMREAD_COLOR) for n in ("l0", "f0", "r0", "b0")
    )
    expected = planner.plan(Observation(3.0, 0.0, Command.RIGHT, cameras=decoded, encoding="bgr8"))
    _assert_path(path, stamp, expected)


def test_stitched_raw_with_origin_pose_and_frame_id(harness, planner):
    h = harness(camera_mode="stitched", prepend_origin_pose=True, frame_id="ego")
    stamp = h.now_ns()
    h.send_frame({"image": STITCHED}, stamp, speed=5.0)
    (path,) = h.wait_paths(1)
    assert len(path.poses) == 9 and path.header.frame_id == "ego"
    origin = path.poses[0]
    assert (origin.pose.position.x, origin.pose.position.y, origin.pose.orientation.w) == (0.0, 0.0, 1.0)
    assert origin.header.stamp == path.header.stamp
    path.poses = path.poses[1:]
    # No command received yet: default_command (3, unknown) is used.
    _assert_path(path, stamp, planner.plan(Observation(5.0, 0.0, Command.UNKNOWN, image=STITCHED)), "ego")


def test_stitched_compressed_png_is_lossless(harness, planner):
    h = harness(camera_mode="stitched", image_transport="compressed", camera_qos="reliable")
    stamp = h.now_ns()
    h.send_frame({"image": compressed(STITCHED, stamp, "png")}, stamp, speed=2.0)
    (path,) = h.wait_paths(1)
    _assert_path(path, stamp, planner.plan(Observation(2.0, 0.0, Command.UNKNOWN, image=STITCHED)))


def test_odometry_is_interpolated_at_the_anchor_stamp(harness, planner):
    h = harness(camera_mode="stitched", acceleration_window_s=0.05)
    stamp = h.now_ns()
    h.send_odometry(stamp - 40 * MS, 4.0)
    h.send_images({"image": STITCHED}, stamp)
    h.send_odometry(stamp + 60 * MS, 9.0)
    (path,) = h.wait_paths(1)
    # 4 m/s at -40 ms and 9 m/s at +60 ms: 6 m/s at the anchor; one sample in the 50 ms window.
    _assert_path(path, stamp, planner.plan(Observation(6.0, 0.0, Command.UNKNOWN, image=STITCHED)))


def test_side_camera_tolerance_and_missing_camera_policies(harness, planner):
    h = harness(sync_tolerance_ms=50.0)
    stamp = h.now_ns()
    h.send_frame(SMALL_CAMERAS, stamp, offsets={"l0": 30 * MS})  # within tolerance
    h.wait_paths(1)
    h.send_frame(SMALL_CAMERAS, h.now_ns(), offsets={"r0": 80 * MS})  # outside (fresh: not stale_input)
    h.wait_for(lambda: h.failures().get("camera_missing") == 1, what="camera_missing")
    time.sleep(0.3)
    assert len(h.paths) == 1
    filled = harness(missing_camera_policy="fill_black")
    stamp = filled.now_ns()
    filled.send_frame({n: img for n, img in SMALL_CAMERAS.items() if n != "b0"}, stamp)
    (path,) = filled.wait_paths(1, timeout=30)
    cams = tuple(
        SMALL_CAMERAS[n] if n != "b0" else np.zeros_like(SMALL_CAMERAS["f0"]) for n in ("l0", "f0", "r0", "b0")
    )
    _assert_path(path, stamp, planner.plan(Observation(5.0, 0.0, Command.UNKNOWN, cameras=cams)))


def test_stale_command_falls_back_to_default(harness, planner):
    h = harness(camera_mode="stitched", command_timeout_s=0.3, default_command=1)
    h.send_command(Command.LEFT)
    h.wait_for(lambda: h.node.commands.state(h.now_ns()).source == "received", what="command")
    time.sleep(0.5)
    stamp = h.now_ns()
    h.send_frame({"image": STITCHED}, stamp)
    (path,) = h.wait_paths(1)
    _assert_path(path, stamp, planner.plan(Observation(5.0, 0.0, Command.STRAIGHT, image=STITCHED)))
    h.wait_for(
        lambda: any("last command stale" in s.message for d in h.diagnostics for s in d.status),
        what="stale command in diagnostics",
    )


def _assert_no_path_for(h, send, reason, count=1):
    before = len(h.paths)
    send()
    h.wait_for(lambda: h.failures().get(reason, 0) >= count, what=reason)
    time.sleep(0.2)
    assert len(h.paths) == before, f"a path was published despite {reason}"


def test_bad_inputs_skip_their_frame_and_the_next_good_frame_is_planned(harness):
    h = harness(camera_mode="stitched", max_input_age_s=0.0)  # no age limit: stamps are in the past
    base = h.now_ns() - 10_000 * MS  # in the past, so later frames stay behind the clock
    mono = Image(encoding="mono8", height=256, width=1920, step=1920, data=bytes(256 * 1920))
    _assert_no_path_for(h, lambda: h.send_frame({"image": mono}, base), "bad_input")
    assert h.node.stats.snapshot()["inputs"]["image"][1] == 1  # rejected count
    narrow = np.zeros((256, 1280, 3), np.uint8)
    _assert_no_path_for(h, lambda: h.send_frame({"image": narrow}, base + 100 * MS), "bad_input", 2)
    assert "width must be exactly 1920, got 1280" in h.node.stats.snapshot()["last_error"]
    _assert_no_path_for(h, lambda: h.send_images({"image": STITCHED}, base + 60_000 * MS), "stamp_in_future")
    h.send_frame({"image": STITCHED}, base + 1000 * MS)
    h.wait_paths(1)
    _assert_no_path_for(h, lambda: h.send_images({"image": STITCHED}, base + 1000 * MS), "duplicate_stamp")
    _assert_no_path_for(h, lambda: h.send_frame({"image": STITCHED}, base + 500 * MS), "stamp_backwards")
    nan_stamp = base + 2000 * MS

    def nan_frame():
        h.send_odometry(nan_stamp - 50 * MS, 5.0)
        h.send_images({"image": STITCHED}, nan_stamp)
        h.send_odometry(nan_stamp + 50 * MS, float("nan"))

    _assert_no_path_for(h, nan_frame, "odometry_unavailable")
    assert h.node.stats.snapshot()["inputs"]["odometry"][1] == 1
    h.send_command(Command.RIGHT)
    h.wait_for(lambda: h.node.commands.state(h.now_ns()).command is Command.RIGHT, what="command")
    h.send_command(7)
    h.wait_for(lambda: h.node.stats.snapshot()["inputs"]["command"][1] == 1, what="command rejected")
    assert h.node.commands.state(h.now_ns()).command is Command.RIGHT
    h.send_frame({"image": STITCHED}, base + 3000 * MS)
    h.wait_paths(2)
    # ~/debug/frame_status answered each anchor frame once, in order, planned or skipped and why.
    h.wait_for(lambda: len(h.frame_statuses) >= 8, what="8 frame statuses")
    answered = [(s.status, s.reason, s.stamp_ns - base) for s in h.frame_statuses]
    assert answered == [
        ("skipped", "bad_input", 0),
        ("skipped", "bad_input", 100 * MS),
        ("skipped", "stamp_in_future", 60_000 * MS),
        ("planned", "", 1000 * MS),
        ("skipped", "duplicate_stamp", 1000 * MS),
        ("skipped", "stamp_backwards", 500 * MS),
        ("skipped", "odometry_unavailable", 2000 * MS),
        ("planned", "", 3000 * MS),
    ], answered
    assert "width must be exactly 1920, got 1280" in h.frame_statuses[1].detail
    first, last = h.frame_statuses[3], h.frame_statuses[-1]
    assert (first.command, last.command, last.command_source) == ("unknown", "right", "received")
    assert first.speed_mps == last.speed_mps == 5.0


def test_corrupt_compressed_data_and_odometry_far_from_the_frame(harness):
    h = harness(camera_mode="stitched", image_transport="compressed", max_input_age_s=0.0)
    stamp = h.now_ns() - 10_000 * MS
    corrupt = CompressedImage(format="jpeg", data=b"\xff\xd8 not really a jpeg")
    _assert_no_path_for(h, lambda: h.send_frame({"image": corrupt}, stamp), "bad_input")
    assert "camera image: compressed data has no JPEG or PNG header" in h.node.stats.snapshot()["last_error"]
    empty = CompressedImage(format="jpeg", data=b"")
    _assert_no_path_for(h, lambda: h.send_frame({"image": empty}, stamp + 100 * MS), "bad_input", 2)
    assert "camera image: empty compressed data" in h.node.stats.snapshot()["last_error"]
    lonely = stamp + 1000 * MS

    def lonely_frame():
        h.send_odometry(lonely - 500 * MS, 1.0)
        h.send_images({"image": compressed(STITCHED, lonely)}, lonely)

    _assert_no_path_for(h, lonely_frame, "odometry_unavailable")
    h.send_frame({"image": compressed(STITCHED, stamp + 2000 * MS)}, stamp + 2000 * MS)
    h.wait_paths(1)


def test_a_jpeg_the_decoder_would_repair_skips_its_frame(harness, planner):
    """8 KB overwritten inside one camera's JPEG: OpenCV decodes it (printing only a libjpeg
    warning) and the frame used to be planned. Now it is skipped, counted and named."""
    from test_image_decoding import damaged

    h = harness(image_transport="compressed", max_input_age_s=0.0)
    stamp = h.now_ns() - 10_000 * MS
    messages = {n: compressed(img, stamp) for n, img in SMALL_CAMERAS.items()}
    messages["r0"].data = damaged(bytes(messages["r0"].data))
    _assert_no_path_for(h, lambda: h.send_frame(messages, stamp), "corrupt_image")
    assert h.node.stats.snapshot()["last_error"].startswith("corrupt_image: camera r0 ('jpeg'): JPEG data is corrupt")
    good = {n: compressed(img, stamp + 100 * MS) for n, img in SMALL_CAMERAS.items()}
    h.send_frame(good, stamp + 100 * MS)
    (path,) = h.wait_paths(1)
    decoded = tuple(
        cv2.imdecode(np.frombuffer(good[n].data, np.uint8), cv2.IMREAD_COLOR) for n in ("l0", "f0", "r0", "b0")
    )
    expected = planner.plan(Observation(5.0, 0.0, Command.UNKNOWN, cameras=decoded, encoding="bgr8"))
    _assert_path(path, stamp + 100 * MS, expected)


def test_tiny_odd_and_mismatched_cameras_are_refused_at_intake(harness):
    h = harness(image_transport="compressed")
    stamp = h.now_ns()
    tiny = {n: compressed(np.zeros((8, 8, 3), np.uint8), stamp) for n in ("l0", "f0", "r0", "b0")}
    _assert_no_path_for(h, lambda: h.send_frame(tiny, stamp), "bad_input")
    assert "camera f0: 8x8 pixels; expected a 16:9 camera of at least 960x540" in h.node.stats.snapshot()["last_error"]
    counted = lambda: all(h.node.stats.snapshot()["inputs"][n][1] == 1 for n in ("l0", "f0", "r0", "b0"))  # noqa: E731
    h.wait_for(counted, what="every camera counted as rejected")  # none of them decoded
    mixed = dict(SMALL_CAMERAS, b0=cv2.resize(SMALL_CAMERAS["b0"], (1280, 720)))
    later = h.now_ns()  # fresh: within max_input_age_s however long the first part took
    _assert_no_path_for(
        h, lambda: h.send_frame({n: compressed(i, later) for n, i in mixed.items()}, later), "bad_input", 2
    )
    assert "all four must have the same size, got" in h.node.stats.snapshot()["last_error"]


def test_implausible_ego_state_stale_and_unset_stamps(harness, planner):
    h = harness(camera_mode="stitched")  # max_input_age_s 1.0 (the default)
    stamp = h.now_ns()
    _assert_no_path_for(h, lambda: h.send_frame({"image": STITCHED}, stamp, speed=1e9), "odometry_unavailable")
    assert "sample near the frame was rejected" in h.node.stats.snapshot()["last_error"]
    assert h.node.stats.snapshot()["inputs"]["odometry"][1] >= 1  # rejected samples, counted per input
    # At least 500 ms later (the rejected samples around the first frame are out of reach),
    # and fresh (within max_input_age_s however long the first part took).
    reversing = max(h.now_ns(), stamp + 500 * MS)
    _assert_no_path_for(h, lambda: h.send_frame({"image": STITCHED}, reversing, speed=-5.0), "reversing")
    _assert_no_path_for(h, lambda: h.send_frame({"image": STITCHED}, stamp - 3_600_000 * MS), "stale_input")
    # A camera stamped 0 is bad input; it does not wipe the buffers (the next frame plans).
    _assert_no_path_for(h, lambda: h.send_images({"image": STITCHED}, 0), "bad_input")
    assert "header stamp 0 s is not set" in h.node.stats.snapshot()["last_error"]
    h.wait_for(lambda: h.now_ns() > reversing + 500 * MS, what="the clock passing the reversing frame")
    good = h.now_ns()
    h.send_frame({"image": STITCHED}, good, speed=5.0)
    (path,) = h.wait_paths(1)
    assert path.header.stamp.sec * 10**9 + path.header.stamp.nanosec == good
    # (a repeated anchor stamp, duplicate_stamp, is checked without an age limit above)


def _level(status) -> int:
    return status.level[0] if isinstance(status.level, bytes) else status.level


def _status(h, suffix):
    return h.latest_status(suffix)


def test_diagnostics_report_model_inputs_processing_and_levels(harness):
    h = harness(camera_mode="stitched", diagnostics_period_s=0.1, max_consecutive_failures=2, processing_budget_ms=1.0)
    h.wait_for(lambda: _status(h, "model") is not None, what="diagnostics")
    model = _status(h, "model")
    values = {kv.key: kv.value for kv in model.values}
    assert _level(model) == 0 and values["device"] == "cpu" and values["untrained"] == "True"
    assert len(values["sha256"]) == 64
    inputs = _status(h, "inputs")
    assert _level(inputs) == 1 and "image" in inputs.message  # nothing received yet: WARN
    assert _level(_status(h, "command")) == 1  # default command in use
    stamp = h.now_ns()
    h.send_frame({"image": STITCHED}, stamp)
    h.wait_paths(1)
    h.wait_for(lambda: "budget" in _status(h, "processing").message, what="over-budget WARN")

    # The camera then stops: a second without messages and the inputs status warns again.
    def camera_stopped():
        values = {kv.key: kv.value for kv in _status(h, "inputs").values}
        return values["image age_s"] != "never received" and float(values["image age_s"]) > 1.0

    h.wait_for(camera_stopped, what="camera stopped")
    assert _level(_status(h, "inputs")) == 1 and "image" in _status(h, "inputs").message
    assert _level(_status(h, "processing")) == 1
    for k in range(2):  # one at a time: a frame still queued when the next comes is dropped
        h.send_odometry(stamp + (k + 1) * 100 * MS + 10 * MS, 5.0)
        h.send_images({"image": np.zeros((256, 100, 3), np.uint8)}, stamp + (k + 1) * 100 * MS)
        h.wait_for(lambda n=k + 1: h.failures().get("bad_input", 0) == n, what=f"failure {k + 1}")
    h.wait_for(lambda: (s := _status(h, "processing")) is not None and _level(s) == 2, what="ERROR after 2 failures")
    processing = {kv.key: kv.value for kv in _status(h, "processing").values}
    assert processing["failed bad_input"] == "2" and processing["planned"] == "1"
    assert {"superseded_frames", "p95_latency_ms", "last_latency_ms"} <= set(processing)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"camera_mode": "fisheye"}, "camera_mode: 'fisheye' is not one of navsim_4cam, stitched"),
        ({"sync_tolerance_ms": 5000.0}, "sync_tolerance_ms: 5000.0 is above the maximum 2000.0"),
        ({"default_command": "left"}, "default_command: expected int, got 'left'"),
        ({"sync_tolerence_ms": 80.0}, "unknown parameter 'sync_tolerence_ms' (did you mean 'sync_tolerance_ms'?)"),
        ({"frame_id": ""}, "frame_id: must not be empty"),
    ],
)
def test_invalid_parameters_are_refused_at_start(ros_context, planner, params, message):
    from rclpy.parameter import Parameter

    from lead_ros.ros.node import LeadPlannerNode

    with pytest.raises(ValueError) as error:
        LeadPlannerNode(
            planner=planner,
            context=ros_context,
            namespace="/bad",
            parameter_overrides=[Parameter(k, value=v) for k, v in params.items()],
        )
    assert message in str(error.value)


def test_integer_for_a_float_parameter_is_accepted_and_declared_as_double(ros_context, planner):
    from rcl_interfaces.msg import ParameterType
    from rclpy.parameter import Parameter

    from lead_ros.ros.node import LeadPlannerNode

    node = LeadPlannerNode(
        planner=planner,
        context=ros_context,
        namespace="/int_for_float",
        parameter_overrides=[Parameter("sync_tolerance_ms", value=80)],
    )
    try:
        assert node.config.sync_tolerance_ms == 80.0 and isinstance(node.config.sync_tolerance_ms, float)
        declared = node.get_parameter("sync_tolerance_ms").get_parameter_value()
        assert declared.type == ParameterType.PARAMETER_DOUBLE and declared.double_value == 80.0
    finally:
        node.close()
        node.destroy_node()


def test_debug_image_and_markers(harness, ros_context):
    from sensor_msgs.msg import Image as ImageMsg
    from std_msgs.msg import Float64
    from visualization_msgs.msg import MarkerArray

    h = harness(camera_mode="stitched", publish_debug_image=True)
    base = f"{h.namespace}/lead_planner/debug"
    images, markers, inference = [], [], []
    h.driver.create_subscription(ImageMsg, f"{base}/image", images.append, 5)
    h.driver.create_subscription(MarkerArray, f"{base}/markers", markers.append, 5)
    h.driver.create_subscription(Float64, f"{base}/inference_time_ms", inference.append, 5)
    h.wait_for(lambda: h.node.outputs["markers"].get_subscription_count() > 0, what="markers subscription")
    stamp = h.now_ns()
    h.send_frame({"image": STITCHED}, stamp)
    h.wait_for(lambda: images and markers and inference, what="debug outputs")
    image = images[0]
    # A 640-pixel bird's-eye panel (10 px/m) beside the camera strip scaled to 1280 wide.
    assert (image.height, image.width, image.encoding) == (640, 640 + 1280, "rgb8")
    assert image.header.stamp == h.paths[0].header.stamp
    pixels = np.frombuffer(image.data, np.uint8).reshape(640, 1920, 3)
    strip = cv2.resize(STITCHED, (1280, 171), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(pixels[30 : 30 + 171, 640:], strip)
    # The semantic map is drawn (the synthetic weights' argmax has centerline pixels).
    from lead_ros.visualization import CLASS_COLOURS

    assert (pixels[:, :640] == CLASS_COLOURS["centerline"]).all(axis=-1).sum() > 100
    line = markers[0].markers[0]
    assert len(line.points) == 9 and len(markers[0].markers) == 9  # origin + 8 waypoints; 8 heading arrows
    assert abs(line.points[-1].x - h.paths[0].poses[-1].pose.position.x) < 1e-9
    assert inference[0].data > 0
