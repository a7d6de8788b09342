"""Reprojection against exact renders of a synthetic world (no real camera data exists here).

The world is a band-limited texture defined on ray directions in ``base_link``: seen from a
fixed point at infinite distance, where translation does not matter, so any pinhole or fisheye
camera at any rotation is rendered exactly from it, pixel by pixel, with no stored panorama to
resample. The virtual nuPlan cameras are rendered directly; "user" cameras (other intrinsics,
plumb_bob and equidistant lenses, 4:3 and other sizes, rotations several degrees off, a lens
wider than 180 degrees) are rendered, reprojected by lead_ros, and compared with the direct
render inside the covered area.

The bound: bilinear interpolation of a C2 function errs by at most (1/8)(max|f_uu| +
max|f_vv|) per sample (unit pixel spacing), where f is the user image as a function of its
pixel coordinates (the texture through the camera's projection: its second differences are
measured on the float render); OpenCV's fixed-point maps place samples within 1/64 pixel per
axis, adding at most (max|f_u| + max|f_v|) / 64; rounding adds 0.5 for the user image, 0.5 for
the remapped samples, 0.5 for the direct render and 1 for the two 4x reductions.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from rig_factory import NUPLAN_ANGLES, camera_entry, rig_of

from lead_ros.cameras.calibration import CameraCalibration
from lead_ros.cameras.reprojection import MODEL_VIEW_HEIGHT, MODEL_VIEW_WIDTH, Reprojection, model_grid, remap_tables
from lead_ros.cameras.rig import RigCamera, parse_rig, rotation_from_rpy
from lead_ros.preprocessing import CAMERA_NAMES

# Texture: a few plane waves on the unit sphere, (amplitude, angular frequency, direction).
WAVES = [(45.0, 9.0, (0.8, 0.6, 0.0)), (35.0, 13.0, (0.0, 0.6, -0.8)), (25.0, 7.0, (0.6, -0.48, 0.64))]
PHASES = (0.3, 1.1, 2.0)


def texture(directions: np.ndarray) -> np.ndarray:
    """Grey level (float) of unit directions (N, 3) in base_link, three channels shifted."""
    d = directions / np.linalg.norm(directions, axis=1, keepdims=True)
    channels = []
    for shift in (0.0, 0.7, 1.9):
        value = np.full(len(d), 127.5)
        for (amplitude, omega, axis), phase in zip(WAVES, PHASES, strict=True):
            value += amplitude * np.sin(omega * d @ np.array(axis) + phase + shift)
        channels.append(value)
    return np.stack(channels, axis=-1)


def render(camera: RigCamera, columns: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The float image a camera sees at these pixel columns and rows (rays beyond its lens: 0)."""
    u, v = np.meshgrid(columns, rows)
    pixels = np.stack((u.ravel(), v.ravel()), axis=1)
    rays = camera.calibration.unproject(pixels)
    return texture(rays @ camera.rotation.T).reshape(len(rows), len(columns), 3)


def user_rig(model: str) -> dict:
    """Four user cameras a few degrees off nuPlan's orientations."""
    if model == "plumb_bob":
        camera = {
            "model": "plumb_bob",
            "k": [560.0, 0, 400, 0, 565.0, 300, 0, 0, 1],
            "size": (800, 600),
            "d": (-0.28, 0.09, 0.0008, -0.0004, -0.012),
        }
    else:  # a 1024x768 fisheye whose image diagonal spans more than 180 degrees
        camera = {
            "model": "equidistant",
            "k": [300.0, 0, 512, 0, 300.0, 384, 0, 0, 1],
            "size": (1024, 768),
            "d": (0.02, -0.004, 0.0005, 0.0),
        }
    entries = {}
    for name, (yaw, pitch, roll) in NUPLAN_ANGLES.items():
        entries[name] = camera_entry(rpy=(roll - 2.0, pitch + 3.0, yaw + 4.0), **camera)
    return rig_of(entries)


@pytest.mark.parametrize("model", ["plumb_bob", "equidistant"])
def test_reprojected_user_cameras_match_the_direct_nuplan_render_within_the_bound(model):
    rig = parse_rig(user_rig(model), model)
    reprojection = Reprojection(rig)
    images, bounds = [], {}
    for name in CAMERA_NAMES:
        camera = rig.cameras[name]
        width, height = rig.size(name)
        exact = render(camera, np.arange(width, dtype=float), np.arange(height, dtype=float))
        images.append(np.clip(np.round(exact), 0, 255).astype(np.uint8))
        f_uu = np.abs(np.diff(exact, 2, axis=1)).max()
        f_vv = np.abs(np.diff(exact, 2, axis=0)).max()
        f_u, f_v = np.abs(np.diff(exact, axis=1)).max(), np.abs(np.diff(exact, axis=0)).max()
        # 10 % on the measured derivatives: their maxima fall between the samples.
        bounds[name] = 1.1 * ((f_uu + f_vv) / 8 + (f_u + f_v) / 64) + 2.5
    views = reprojection.model_views(images)
    columns, rows = model_grid()
    for name, view in zip(CAMERA_NAMES, views, strict=True):
        virtual = reprojection.cameras[name].virtual
        direct = np.clip(np.round(render(virtual, columns, rows)), 0, 255).astype(np.uint8)
        expected = cv2.resize(direct, (MODEL_VIEW_WIDTH, MODEL_VIEW_HEIGHT), interpolation=cv2.INTER_LINEAR)
        _, seen = remap_tables(rig.cameras[name], virtual, columns, rows)
        covered = seen.reshape(MODEL_VIEW_HEIGHT, 2, MODEL_VIEW_WIDTH, 2).all(axis=(1, 3))
        assert covered.mean() > 0.5, (name, covered.mean())
        error = np.abs(view.astype(int) - expected.astype(int))[covered].max()
        assert error <= bounds[name], (name, error, bounds[name])
        assert bounds[name] < 12, (name, bounds[name])  # the bound says something
        # Outside the covered area there is no data: black.
        assert not view[~seen.reshape(MODEL_VIEW_HEIGHT, 2, MODEL_VIEW_WIDTH, 2).any(axis=(1, 3))].any()


@pytest.mark.parametrize("model", ["plumb_bob", "equidistant"])
def test_rays_are_inverted_to_a_hundredth_of_a_pixel(model):
    calibration = parse_rig(user_rig(model), model).cameras["f0"].calibration
    width, height = calibration.width, calibration.height
    u, v = np.meshgrid(np.linspace(0, width - 1, 41), np.linspace(0, height - 1, 31))
    pixels = np.stack((u.ravel(), v.ravel()), axis=1)
    rays = calibration.unproject(pixels)
    again, seen = calibration.project(rays)
    assert seen.all()
    np.testing.assert_allclose(again, pixels, atol=1e-2)
    if model == "equidistant":  # the corners lie beyond 90 degrees from the axis
        assert (rays[:, 2] < 0).any()


def test_the_equidistant_model_is_opencvs_fisheye_below_90_degrees():
    calibration = parse_rig(user_rig("equidistant"), "fisheye").cameras["f0"].calibration
    rng = np.random.default_rng(5)
    rays = rng.normal(size=(500, 3))
    rays[:, 2] = np.abs(rays[:, 2]) + 0.05
    pixels, seen = calibration.project(rays)
    expected, _ = cv2.fisheye.projectPoints(
        (rays / rays[:, 2:]).reshape(-1, 1, 3),
        np.zeros(3),
        np.zeros(3),
        calibration.camera_matrix,
        calibration.distortion,
    )
    assert seen.mean() > 0.3
    np.testing.assert_allclose(pixels[seen], expected.reshape(-1, 2)[seen], atol=1e-9)


def test_coverage_follows_the_geometry_for_a_lens_wider_than_180_degrees_and_a_camera_facing_away():
    """A pure equidistant lens (no distortion) sees direction d at c + f * theta * (d_xy / |d_xy|):
    built here on its own, the covered set must equal lead_ros' mask, pixel for pixel."""
    focal, size = 250.0, (1400, 1400)  # the image holds the circle out to 2.8 rad = 160 degrees
    calibration = CameraCalibration(
        *size, np.array([[focal, 0, 699.5], [0, focal, 699.5], [0, 0, 1]]), "equidistant", np.zeros(4)
    )
    virtual = Reprojection(parse_rig(user_rig("plumb_bob"), "any")).virtual.cameras["f0"]
    columns, rows = model_grid()
    # Sideways and facing away: such a lens still sees part of the forward view, all of it
    # (facing away) or some of it (sideways) beyond 90 degrees from its axis.
    for yaw in (110.0, 180.0):
        real = RigCamera("f0", calibration, rotation_from_rpy(0.0, 0.0, yaw), np.zeros(3))
        _, seen = remap_tables(real, virtual, columns, rows)
        u, v = np.meshgrid(columns, rows)
        rays = virtual.calibration.unproject(np.stack((u.ravel(), v.ravel()), axis=1)) @ virtual.rotation.T
        local = rays @ real.rotation  # base_link -> the real camera's optical frame
        theta = np.arctan2(np.hypot(local[:, 0], local[:, 1]), local[:, 2])
        direction = local[:, :2] / np.hypot(local[:, 0], local[:, 1])[:, None]
        pixel = 699.5 + focal * theta[:, None] * direction
        inside = ((pixel >= 0) & (pixel <= 1399)).all(axis=1) & (theta < np.pi - 1e-6)
        np.testing.assert_array_equal(seen.ravel(), inside)
        assert 0.05 < seen.mean() <= 1.0, (yaw, seen.mean())
        assert (theta[inside] > np.pi / 2).all() if yaw == 180.0 else (theta[inside] > np.pi / 2).any()
