"""Camera rigs and the reprojection into nuPlan's cameras: geometry against references built
here (homographies, the optical-frame quaternion every ROS user knows), bytes against a full
remap followed by today's resize, and today's pipeline unchanged for the nuPlan rig."""

from __future__ import annotations

import copy
import math

import cv2
import numpy as np
import pytest
import yaml
from rig_factory import NUPLAN_ANGLES, NUPLAN_K, uniform_rig

from lead_ros.cameras.calibration import CameraCalibration
from lead_ros.cameras.reprojection import (
    MODEL_VIEW_WIDTH,
    Reprojection,
    full_grid,
    model_grid,
    nuplan_front_view,
    remap_tables,
    virtual_rig,
)
from lead_ros.cameras.rig import RigError, load_rig, parse_rig, rotation_from_quaternion, rotation_from_rpy
from lead_ros.preprocessing import CAMERA_NAMES, ImageInputError, stitch_cameras
from lead_ros.tools.synthetic_cameras import reference_cameras
from lead_ros.visualization import FRONT_VIEW_SCALE, front_camera_view, render_plan


def test_nuplan_rig_has_the_documented_orientations():
    rig = load_rig("nuplan")
    for name, (yaw, pitch, roll) in NUPLAN_ANGLES.items():
        assert rig.cameras[name].yaw_pitch_roll_deg() == pytest.approx((yaw, pitch, roll), abs=1e-9)
    assert rig.cameras["f0"].optical_axis[0] > 0.99 and rig.cameras["f0"].optical_axis[2] < 0  # ahead, tilted down
    assert rig.cameras["l0"].optical_axis[1] > 0.8 and rig.cameras["r0"].optical_axis[1] < -0.8
    assert rig.cameras["b0"].optical_axis[0] < -0.99


def test_rpy_composes_as_tf2_setrpy_and_matches_the_optical_frame_quaternion():
    # A level forward camera's optical frame in base_link is the quaternion (-0.5, 0.5, -0.5, 0.5)
    # (static_transform_publisher ... -1.5708 0 -1.5708 base_link camera_optical_frame).
    np.testing.assert_allclose(rotation_from_rpy(0, 0, 0), rotation_from_quaternion(-0.5, 0.5, -0.5, 0.5), atol=1e-12)
    # Positive pitch tilts the optical axis down; positive yaw turns it left; roll about the axis.
    tilted = rotation_from_rpy(0.0, 10.0, 0.0)[:, 2]
    np.testing.assert_allclose(tilted, [math.cos(math.radians(10)), 0.0, -math.sin(math.radians(10))], atol=1e-12)
    turned = rotation_from_rpy(0.0, 0.0, 30.0)[:, 2]
    np.testing.assert_allclose(turned, [math.cos(math.radians(30)), math.sin(math.radians(30)), 0.0], atol=1e-12)
    # Fixed axes: R = Rz(yaw) Ry(pitch) Rx(roll), so pitch is about base_link's y after the roll.
    composed = rotation_from_rpy(5.0, 10.0, 30.0)
    y = lambda a: rotation_from_rpy(0, 0, a)  # noqa: E731
    p = lambda a: rotation_from_rpy(0, a, 0)  # noqa: E731
    r = lambda a: rotation_from_rpy(a, 0, 0)  # noqa: E731
    optical = rotation_from_rpy(0, 0, 0)
    np.testing.assert_allclose(composed, y(30) @ optical.T @ p(10) @ optical.T @ r(5), atol=1e-12)


def test_a_rig_in_quaternions_equals_the_same_rig_in_rpy():
    by_rpy = uniform_rig(rpy=(2.0, 7.0, 0.0))
    by_quaternion = copy.deepcopy(by_rpy)
    for entry in by_quaternion["cameras"].values():
        matrix = rotation_from_rpy(*entry.pop("rpy_deg"))
        w = math.sqrt(1.0 + np.trace(matrix)) / 2
        x = (matrix[2, 1] - matrix[1, 2]) / (4 * w)
        y = (matrix[0, 2] - matrix[2, 0]) / (4 * w)
        z = (matrix[1, 0] - matrix[0, 1]) / (4 * w)
        entry["quaternion"] = [x, y, z, w]
    first, second = parse_rig(by_rpy, "rpy"), parse_rig(by_quaternion, "quaternion")
    for name in CAMERA_NAMES:
        np.testing.assert_allclose(first.cameras[name].rotation, second.cameras[name].rotation, atol=1e-12)


def test_a_rotated_pinhole_camera_maps_by_the_homography():
    """Pinhole to pinhole with a rotation is x_real ~ K_r R K_v^-1 x_virtual: built here from
    the two cameras' matrices, compared with the remap table at every model-grid pixel."""
    k_real = np.array([[1000.0, 0.0, 640.0], [0.0, 1010.0, 470.0], [0.0, 0.0, 1.0]])
    document = uniform_rig(k=k_real.ravel(), size=(1280, 960), rpy=(1.0, 4.0, 6.0))
    rig = parse_rig(document, "pinhole")
    virtual = virtual_rig("none").cameras["f0"]
    real = rig.cameras["f0"]
    (map_x, map_y), seen = remap_tables(real, virtual, *model_grid())
    columns, rows = model_grid()
    u, v = np.meshgrid(columns, rows)
    homography = k_real @ real.rotation.T @ virtual.rotation @ np.linalg.inv(virtual.calibration.camera_matrix)
    mapped = np.stack((u, v, np.ones_like(u)), axis=-1) @ homography.T
    expected_x, expected_y = mapped[..., 0] / mapped[..., 2], mapped[..., 1] / mapped[..., 2]
    inside = (expected_x >= 0) & (expected_x <= 1279) & (expected_y >= 0) & (expected_y <= 959)
    assert 0.3 < inside.mean() < 1.0  # partly covered: the test sees both sides of the border
    np.testing.assert_array_equal(seen, inside)
    np.testing.assert_allclose(map_x[inside], expected_x[inside], atol=2e-3)
    np.testing.assert_allclose(map_y[inside], expected_y[inside], atol=2e-3)
    assert Reprojection(rig, "none").cameras["f0"].coverage == pytest.approx(inside.mean())


def test_the_distorted_virtual_camera_is_inverted_to_a_hundredth_of_a_pixel():
    nuplan = virtual_rig("nuplan").cameras["f0"].calibration
    corners = np.array([[0.0, 0.0], [1919.0, 0.0], [0.0, 1079.0], [1919.0, 1079.0], [960.0, 560.0]])
    rays = nuplan.unproject(corners)
    pixels, seen = nuplan.project(rays)
    assert seen.all()
    np.testing.assert_allclose(pixels, corners, atol=1e-2)
    # OpenCV's default criterion (5 iterations) is visibly off there: why the tight one is used.
    loose = cv2.undistortPoints(corners.reshape(-1, 1, 2), nuplan.camera_matrix, nuplan.distortion).reshape(-1, 2)
    again, _ = nuplan.project(np.concatenate((loose, np.ones((5, 1))), axis=1))
    assert np.abs(again - corners).max() > 0.3


def test_rays_past_the_fold_of_the_distortion_or_behind_the_camera_are_not_seen():
    # r (1 + k1 r^2) stops growing at r = 1 / sqrt(-3 k1): with k1 = -0.3, r = 1.054.
    folded = CameraCalibration(
        4000, 4000, np.array([[500.0, 0, 2000], [0, 500.0, 2000], [0, 0, 1]]), "plumb_bob", np.array([-0.3, 0, 0, 0, 0])
    )
    assert folded.fold == pytest.approx(1 / math.sqrt(0.9), abs=1e-3)
    rays = np.array([[1.0, 0.0, 1.0], [1.2, 0.0, 1.0], [0.0, 0.0, -1.0], [0.1, 0.1, -1.0]])
    _, seen = folded.project(rays)
    assert seen.tolist() == [True, False, False, False]
    # An equidistant lens folds in the angle: theta (1 + k1 theta^2) with k1 = -0.2 at 1.291 rad.
    fisheye = CameraCalibration(4000, 4000, folded.camera_matrix, "equidistant", np.array([-0.2, 0, 0, 0]))
    assert fisheye.fold == pytest.approx(1 / math.sqrt(0.6), abs=1e-3)


def test_a_camera_facing_away_covers_nothing_and_a_narrow_one_part():
    document = uniform_rig(k=NUPLAN_K, d=(0.0,) * 5)
    for name, (yaw, pitch, roll) in NUPLAN_ANGLES.items():  # oriented exactly as nuPlan's
        document["cameras"][name]["rpy_deg"] = [roll, pitch, yaw]
    document["cameras"]["b0"]["rpy_deg"] = [0.0, 0.0, 0.0]  # the rear view from a forward camera
    narrow = np.array(NUPLAN_K)
    narrow[[0, 4]] *= 2.0
    document["cameras"]["l0"]["k"] = narrow.tolist()
    with pytest.raises(RigError, match=r"camera rig test: b0 see\(s\) none of the nuPlan camera view"):
        Reprojection(parse_rig(document, "test"), "none")
    reprojection = Reprojection(parse_rig(document, "test"), "none", require_coverage=False)
    assert reprojection.coverage["b0"] == 0.0
    # Twice the focal length, same centre: the central half of each axis, in pixel centres.
    columns, rows = model_grid()
    inside_u = np.abs(2 * (columns - 960)) <= np.minimum(960, 1919 - 960)
    inside_v = (2 * (rows - 560) + 560 >= 0) & (2 * (rows - 560) + 560 <= 1079)
    assert reprojection.coverage["l0"] == pytest.approx(inside_u.mean() * inside_v.mean(), abs=2e-3)
    assert 0.2 < reprojection.coverage["l0"] < 0.3
    # The virtual camera itself: not remapped at all.
    assert reprojection.cameras["f0"].maps is None and reprojection.coverage["f0"] == 1.0


RIGS = {
    "plumb_bob 4:3": uniform_rig(
        k=[900.0, 0, 640, 0, 900.0, 480, 0, 0, 1],
        d=(-0.25, 0.08, 0.001, -0.0005, -0.01),
        size=(1280, 960),
        rpy=(0.5, 3.0, 0.0),
    ),
    "rational_polynomial": uniform_rig(
        model="rational_polynomial",
        d=(0.1, -0.05, 0, 0, 0.01, 0.1, -0.05, 0.01),
        k=[700.0, 0, 800, 0, 700.0, 600, 0, 0, 1],
        size=(1600, 1200),
    ),
    "equidistant": uniform_rig(
        model="equidistant",
        d=(0.05, -0.01, 0.002, 0.0),
        k=[450.0, 0, 640, 0, 450.0, 400, 0, 0, 1],
        size=(1280, 800),
        rpy=(0, -2.0, 10.0),
    ),
}


@pytest.mark.parametrize("name", RIGS)
def test_model_views_are_the_bytes_of_a_full_remap_and_todays_resize(name):
    rig = parse_rig(RIGS[name], name)
    reprojection = Reprojection(rig)
    rng = np.random.default_rng(7)
    images = [rng.integers(0, 256, (rig.size(n)[1], rig.size(n)[0], 3), np.uint8) for n in CAMERA_NAMES]
    views = reprojection.model_views(images)
    columns, _ = full_grid()
    # The top and bottom bands of the virtual image (where the borders of coverage are): a
    # band of rows 4a..4b reduces to output rows a..b on its own.
    for first, last in ((0, 240), (840, 1080)):
        rows = np.arange(first, last, dtype=np.float64)
        for camera, image, view in zip(CAMERA_NAMES, images, views, strict=True):
            (map_x, map_y), _ = remap_tables(rig.cameras[camera], reprojection.virtual.cameras[camera], columns, rows)
            fixed = cv2.convertMaps(map_x, map_y, cv2.CV_16SC2)
            band = cv2.remap(image, *fixed, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            expected = cv2.resize(band, (MODEL_VIEW_WIDTH, len(rows) // 4), interpolation=cv2.INTER_LINEAR)
            np.testing.assert_array_equal(view[first // 4 : last // 4], expected, err_msg=camera)
    assert all(0.0 < c <= 1.0 for c in reprojection.coverage.values())


def test_the_nuplan_rig_leaves_todays_model_input_bit_identical():
    cameras = reference_cameras()
    reprojection = Reprojection(load_rig("nuplan"))
    assert all(camera.maps is None for camera in reprojection.cameras.values())
    assert reprojection.coverage == dict.fromkeys(CAMERA_NAMES, 1.0)
    for jpeg in (False, True):
        np.testing.assert_array_equal(
            stitch_cameras(cameras, "rgb8", jpeg, reprojection), stitch_cameras(cameras, "rgb8", jpeg)
        )
    # Without the virtual distortion every camera is remapped (the images differ).
    undistorted = Reprojection(load_rig("nuplan"), "none")
    assert all(camera.maps is not None for camera in undistorted.cameras.values())
    assert not np.array_equal(
        stitch_cameras(cameras, jpeg=False, reprojection=undistorted), stitch_cameras(cameras, jpeg=False)
    )


def test_a_filled_camera_is_black_in_the_virtual_image_and_sizes_are_the_rigs():
    rig = parse_rig(RIGS["plumb_bob 4:3"], "4:3")
    reprojection = Reprojection(rig)
    rng = np.random.default_rng(3)
    image = rng.integers(1, 256, (960, 1280, 3), np.uint8)
    stitched = stitch_cameras([None, image, image, image], jpeg=False, reprojection=reprojection)
    assert stitched.shape == (270, 1920, 3)
    assert not stitched[:, :480].any() and stitched[:, 480:960].any()
    # Without a rig the same 4:3 images are refused, as before.
    with pytest.raises(ImageInputError, match="camera l0: 1280x960 pixels; expected a 16:9 camera"):
        stitch_cameras([image] * 4, jpeg=False)
    with pytest.raises(ImageInputError, match="camera r0: 1920x1080 pixels; the camera rig says 1280x960"):
        stitch_cameras([image, image, np.zeros((1080, 1920, 3), np.uint8), image], reprojection=reprojection)
    with pytest.raises(ImageInputError, match="camera f0: missing"):
        stitch_cameras([image, None, image, image], reprojection=reprojection)


def _broken(path: str, value):
    document = uniform_rig()
    *parents, key = path.split(".")
    target = document
    for part in parents:
        target = target[part]
    if value is None:
        del target[key]
    else:
        target[key] = value
    return document


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([1, 2], "expected a mapping with 'cameras'"),
        ({"cameras": {"f0": {}}}, "'cameras' must describe exactly l0, f0, r0, b0; found f0"),
        (_broken("cameras.f0.distortion_model", "kannala"), "camera f0: distortion_model must be one of plumb_bob"),
        (_broken("cameras.l0.d", [0.1, 0.2]), "camera l0: d must be a list of 5 numbers"),
        (_broken("cameras.r0.k", [0.0] * 9), r"camera r0: k must be \[fx, 0, cx"),
        (_broken("cameras.b0.width", 0), "camera b0: width must be an integer 1..4096"),
        (_broken("cameras.b0.height", 5000), "camera b0: height must be an integer 1..4096"),
        (_broken("cameras.f0.binning_x", 2), "camera f0: binning_x 2 is not supported"),
        (_broken("cameras.f0.roi", {"x_offset": 10, "width": 100}), "camera f0: roi .* is not supported"),
        (_broken("cameras.f0.quaternion", [0, 0, 0, 1]), "camera f0: give exactly one of quaternion"),
        (_broken("cameras.f0.rpy_deg", None), "camera f0: give exactly one of quaternion"),
        (_broken("cameras.l0.position", [1, 2]), "camera l0: position must be a list of 3 numbers"),
        (_broken("cameras.l0.position", [1, 2, float("nan")]), "camera l0: position: expected a finite number"),
        (_broken("cameras.l0.focal", 3), "camera l0: unknown field"),
        (_broken("ground", 0), "unknown field.*ground"),
        (_broken("cameras.f0.rectified", "yes"), "camera f0: rectified must be true or false"),
        (_broken("cameras.f0.rectified", True), "camera f0: p must be a list of 12 numbers"),
        (_broken("cameras.f0.camera_info", "yes"), "camera f0: camera_info must be 'topic'"),
        (
            _broken("cameras.f0.camera_info", "topic"),
            "camera f0: camera_info: topic takes the calibration from the topic; remove d, distortion_model, "
            "height, k, width",
        ),
        (
            _broken("cameras.f0.roi", {"x_offset": 0, "y_offset": 0, "width": 1920, "height": 1000}),
            "camera f0: roi .* is not supported",
        ),
    ],
)
def test_bad_rigs_give_one_line_naming_the_camera_and_field(document, message):
    with pytest.raises(RigError, match=message) as caught:
        parse_rig(document, "rig.yaml")
    assert "\n" not in str(caught.value) and str(caught.value).startswith("camera rig rig.yaml")


def test_rig_files_are_read_and_refused_with_one_line(tmp_path):
    good = tmp_path / "rig.yaml"
    good.write_text(yaml.safe_dump(RIGS["equidistant"]))
    assert load_rig(good).size("l0") == (1280, 800)
    with pytest.raises(RigError, match=r"camera rig .*missing.yaml: cannot read it"):
        load_rig(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("cameras: [unclosed\n")
    with pytest.raises(RigError, match="not valid YAML") as caught:
        load_rig(bad)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "p",
    [
        [0.0] * 12,  # what uncalibrated drivers publish
        [-1200.0, 0, 960, 0, 0, 1200.0, 540, 0, 0, 0, 1, 0],
        [1200.0, 0, 960, 0, 0, -1200.0, 540, 0, 0, 0, 1, 0],
        [1200.0, 0, 960, 0, 0, 1200.0, 540, 0, 0, 0, 0, 0],
    ],
    ids=["all-zero", "negative-fx", "negative-fy", "no-homogeneous-row"],
)
def test_a_degenerate_projection_of_a_rectified_camera_is_refused(p):
    """It was accepted with "coverage 100 %", and every ray of that camera landed on pixel (0, 0):
    the model saw one flat colour. The same check serves a CameraInfo received on a topic."""
    from sensor_msgs.msg import CameraInfo

    from lead_ros.node_config import NodeConfig
    from lead_ros.ros.encoding import ns_to_stamp
    from lead_ros.ros.intake import InputIntake, InputRejected

    document = uniform_rig()
    document["cameras"]["f0"].update(rectified=True, p=p)
    with pytest.raises(RigError, match=r"^camera rig degenerate: camera f0: p must be \[fx, 0, cx, 0, 0, fy, cy"):
        parse_rig(document, "degenerate")
    document["cameras"]["f0"] = {
        "camera_info": "topic",
        "rectified": True,
        "rpy_deg": [0.0, 0.0, 0.0],
        "position": [1.5, 0.0, 1.6],
    }
    intake = InputIntake(NodeConfig.from_values({}))
    from lead_ros.cameras.calibrations import RigCalibrations

    intake.calibrations = RigCalibrations(parse_rig(document, "from topic"), "nuplan")
    info = CameraInfo(width=1920, height=1080, distortion_model="plumb_bob", p=p)
    info.header.stamp = ns_to_stamp(10**18)
    (event,) = intake.camera_info("f0", info)
    assert isinstance(event, InputRejected) and event.input == "f0_camera_info"
    assert event.detail.startswith("camera_info f0: p must be [fx, 0, cx, 0, 0, fy, cy, 0, 0, 0, 1, 0] with fx, fy > 0")
    assert intake.calibrations.missing == ("f0",), "the degenerate calibration is not taken"


def test_a_rig_file_that_repeats_a_key_is_refused_with_its_line(tmp_path):
    """PyYAML keeps the last of two equal keys: a second f0 silently replaced the first."""
    text = yaml.safe_dump(uniform_rig(), sort_keys=False)
    first = text.index("  f0:")
    f0_block = text[first : text.index("  r0:")]
    path = tmp_path / "twice.yaml"
    path.write_text(text + f0_block)
    line = text.count("\n") + 1
    first_line = text[:first].count("\n") + 1
    with pytest.raises(RigError) as caught:
        load_rig(path)
    assert str(caught.value) == (
        f"camera rig {path}: not valid YAML (line {line}, column 3): duplicate key 'f0' (first at line {first_line})"
    )


def test_a_params_file_that_repeats_a_parameter_is_refused_with_its_line(tmp_path):
    from lead_ros.node_config import read_params_file

    path = tmp_path / "params.yaml"
    path.write_text(
        "/**:\n  ros__parameters:\n    sync_tolerance_ms: 50.0\n    device: cpu\n    sync_tolerance_ms: 80.0\n"
    )
    with pytest.raises(ValueError) as caught:
        read_params_file(path)
    assert str(caught.value) == (
        f"params file {path} is not valid YAML (line 5, column 5): duplicate key 'sync_tolerance_ms' (first at line 3)"
    )


def test_a_roi_of_the_whole_image_is_the_whole_image():
    document = uniform_rig()
    document["cameras"]["f0"]["roi"] = {"x_offset": 0, "y_offset": 0, "width": 1920, "height": 1080}
    assert parse_rig(document, "roi").size("f0") == (1920, 1080)


def test_a_rectified_camera_uses_p_and_ignores_d():
    document = uniform_rig()
    entry = document["cameras"]["f0"]
    entry.update(rectified=True, p=[1200.0, 0, 960, 0, 0, 1200.0, 540, 0, 0, 0, 1, 0], d=[0.3, 0, 0, 0, 0])
    calibration = parse_rig(document, "rectified").cameras["f0"].calibration
    np.testing.assert_array_equal(calibration.camera_matrix, [[1200.0, 0, 960], [0, 1200.0, 540], [0, 0, 1]])
    assert not calibration.distortion.any()
    entry["p"][3] = -50.0
    with pytest.raises(RigError, match="camera f0: p has a translation column"):
        parse_rig(document, "stereo")


def test_the_front_view_projects_ground_points_as_opencv_with_extrinsics():
    """Ground points through the virtual f0 at the real camera's position, against
    cv2.projectPoints given the same camera as rotation and translation vectors."""
    rig = parse_rig(RIGS["plumb_bob 4:3"], "4:3")
    front = Reprojection(rig).front_view()
    assert front.position.tolist() == [1.5, 0.0, 1.5] and front.ground_z == 0.0
    points = np.array([[8.0, 0.0], [10.0, 2.0], [20.0, -3.0], [40.0, 1.0], [-10.0, 0.0], [1.0, 0.0]])
    pixels, seen = front.project(points)
    assert seen.tolist() == [True, True, True, True, False, False]  # behind; below the image
    rotation = front.camera.rotation.T  # base_link -> optical
    rvec, _ = cv2.Rodrigues(rotation)
    tvec = -rotation @ front.position
    world = np.column_stack((points[:4], np.zeros(4)))
    expected, _ = cv2.projectPoints(
        world, rvec, tvec, front.camera.calibration.camera_matrix, front.camera.calibration.distortion
    )
    np.testing.assert_allclose(pixels[:4], (expected.reshape(-1, 2) + 0.5) / 4 - 0.5, atol=1e-6)
    # Straight ahead is near the middle column of the 480-wide view; left (y > 0) is left of it.
    assert abs(pixels[0, 0] - 240) < 30 and pixels[1, 0] < pixels[3, 0] < pixels[2, 0]


def test_the_debug_picture_draws_the_plan_into_the_front_view():
    waypoints = np.array([[4.0 * (i + 2), 0.0] for i in range(8)])
    model_image = np.full((270, 1920, 3), 90, np.uint8)
    picture = render_plan(model_image, waypoints, np.zeros(8), front_view=nuplan_front_view())
    view = front_camera_view(model_image, waypoints, nuplan_front_view())
    pixels, seen = nuplan_front_view().project(waypoints)
    column, row = np.round((pixels[seen][-1] + 0.5) * FRONT_VIEW_SCALE - 0.5).astype(int)
    np.testing.assert_array_equal(view[row, column], (255, 64, 32))  # the plan's colour
    assert not np.array_equal(picture, render_plan(model_image, waypoints, np.zeros(8)))
    # A stitched input of 1080 rows fits the picture (it did not: a ValueError in the node).
    assert render_plan(np.zeros((1080, 1920, 3), np.uint8), waypoints, np.zeros(8)).shape == (640, 1920, 3)
