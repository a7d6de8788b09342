"""NAVSIM camera preprocessing: bit-exact against the reference golden data."""

from __future__ import annotations

import hashlib
import json
import re

import cv2
import numpy as np
import pytest

from conftest import DATA, read_rgb
from lead_ros.preprocessing import (
    ImageInputError,
    jpeg_roundtrip,
    prepare_stitched,
    stitch_cameras,
    stitched_height,
)
from lead_ros.tools.synthetic_cameras import reference_cameras

GOLDEN = DATA / "preprocessing"
META = json.loads((GOLDEN / "preprocessing.json").read_text())


def _sha(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


@pytest.fixture(scope="module")
def cameras():
    return reference_cameras()


def test_reference_cameras_are_the_golden_cameras(cameras):
    assert [_sha(c) for c in cameras] == [c["sha256_raw_hwc"] for c in META["camera_images"]]


def test_resize_is_bit_exact(cameras):
    resized = stitch_cameras(cameras, jpeg=False)
    assert resized.shape == (270, 1920, 3)
    assert _sha(resized) == META["resized"]["sha256_raw_hwc"]
    np.testing.assert_array_equal(resized, read_rgb(GOLDEN / "expected_resized_270x1920_rgb.png"))


def test_jpeg_bytes_and_decoded_input_are_bit_exact(cameras):
    resized = stitch_cameras(cameras, jpeg=False)
    ok, encoded = cv2.imencode(".jpg", resized, [cv2.IMWRITE_JPEG_QUALITY, 30])
    assert ok and encoded.tobytes() == (GOLDEN / "expected_q30.jpg").read_bytes()
    decoded = stitch_cameras(cameras)
    assert _sha(decoded) == META["decoded"]["sha256_raw_hwc"]
    np.testing.assert_array_equal(decoded, jpeg_roundtrip(resized))


def test_per_camera_resize_equals_resizing_the_stitched_image():
    rng = np.random.default_rng(7)
    cams = [rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8) for _ in range(4)]
    full = cv2.resize(np.concatenate(cams, axis=1), (1920, 270), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(stitch_cameras(cams, jpeg=False), full)


def test_bgr8_cameras_give_the_same_input_as_rgb8(cameras):
    bgr = [np.ascontiguousarray(c[..., ::-1]) for c in cameras]
    np.testing.assert_array_equal(stitch_cameras(bgr, "bgr8"), stitch_cameras(cameras, "rgb8"))


@pytest.mark.parametrize(("h", "w", "rows"), [(1080, 1920, 270), (540, 960, 270), (900, 1600, 270), (720, 1280, 270)])
def test_other_camera_sizes_resize_to_width_1920(h, w, rows):
    assert stitched_height(h, w) == rows
    cams = reference_cameras(h, w)
    out = stitch_cameras(cams, jpeg=False)
    assert out.shape == (rows, 1920, 3)
    np.testing.assert_array_equal(
        out, cv2.resize(np.concatenate(cams, axis=1), (1920, rows), interpolation=cv2.INTER_LINEAR)
    )


@pytest.mark.parametrize(("h", "w"), [(1, 1), (8, 8), (1200, 1920), (1440, 1920), (536, 952), (1080, 1800)])
def test_tiny_or_odd_cameras_are_refused_naming_the_camera_and_the_expectation(h, w):
    cams = reference_cameras(1080, 1920)
    cams = (np.zeros((h, w, 3), np.uint8), *cams[1:])
    expected = f"camera l0: {w}x{h} pixels; expected a 16:9 camera of at least 960x540"
    with pytest.raises(ImageInputError, match=re.escape(expected)):
        stitch_cameras(cams)


def test_four_cameras_of_different_sizes_are_refused():
    cams = (*reference_cameras(1080, 1920)[:3], reference_cameras(720, 1280)[3])
    with pytest.raises(ImageInputError, match=r"all four must have the same size, got l0 1920x1080, .* b0 1280x720"):
        stitch_cameras(cams)


def test_stitched_input_is_used_as_is():
    image = read_rgb(DATA / "images" / "case_00.png")
    assert prepare_stitched(image) is not None
    np.testing.assert_array_equal(prepare_stitched(image), image)
    np.testing.assert_array_equal(prepare_stitched(np.ascontiguousarray(image[..., ::-1]), "bgr8"), image)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: stitch_cameras(c, "mono8"), "unsupported encoding 'mono8'; supported: rgb8, bgr8"),
        (lambda c: stitch_cameras(c[:3]), "expected 4 images"),
        (lambda c: stitch_cameras([c[0], c[1], c[2], c[3][:540]]), "camera b0: 1920x540 pixels; expected a 16:9"),
        (lambda c: stitch_cameras([c[0].astype(np.float32), *c[1:]]), "camera l0: expected dtype uint8"),
        (lambda c: stitch_cameras([c[0][..., 0], *c[1:]]), "camera l0: expected shape (H, W, 3)"),
        (lambda c: stitch_cameras([x[:200, :1920] for x in c]), "camera l0: 1920x200 pixels"),
        (
            lambda c: prepare_stitched(np.zeros((256, 1280, 3), np.uint8)),
            "width must be exactly 1920, got 1280",
        ),
        (lambda c: prepare_stitched(np.zeros((128, 1920, 3), np.uint8)), "height must be 256..1080"),
        (lambda c: prepare_stitched(np.zeros((256, 1920, 3), np.uint16)), "expected dtype uint8"),
        (lambda c: prepare_stitched(np.zeros((256, 1920, 4), np.uint8)), "expected shape (H, W, 3)"),
        (
            lambda c: prepare_stitched(np.zeros((256, 1920, 3), np.uint8), "rgba8"),
            "unsupported encoding 'rgba8'",
        ),
    ],
)
def test_bad_images_are_refused_with_a_message(cameras, call, message):
    with pytest.raises(ImageInputError) as error:
        call(list(cameras))
    assert message in str(error.value)
