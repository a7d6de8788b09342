"""Compressed camera data: strict JPEG decoding reports what cv2.imdecode repairs silently,
and intact images decode to exactly cv2.imdecode's pixels."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import DATA, read_rgb
from lead_ros.preprocessing import CorruptImageError, ImageInputError, decode_compressed
from lead_ros.tools.synthetic_cameras import reference_cameras

CAMERA = reference_cameras(540, 960)[1]
SAMPLING = {
    "420": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420,
    "422": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422,
    "444": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444,
}


def _jpeg(image_bgr: np.ndarray, *params: int) -> bytes:
    ok, data = cv2.imencode(".jpg", image_bgr, list(params))
    assert ok
    return data.tobytes()


def damaged(data: bytes, at: float = 0.3, size: int = 8192, seed: int = 0) -> bytes:
    """``size`` bytes overwritten with random bytes ``at`` (fraction) into the file, as an
    independent check did to one JPEG of a bag."""
    broken = bytearray(data)
    start = int(len(broken) * at)
    broken[start : start + size] = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    return bytes(broken)


@pytest.mark.parametrize("quality", [30, 90])
@pytest.mark.parametrize("sampling", list(SAMPLING))
@pytest.mark.parametrize("progressive", [0, 1])
def test_intact_jpegs_decode_to_exactly_opencvs_pixels(quality, sampling, progressive):
    data = _jpeg(
        CAMERA[..., ::-1],
        cv2.IMWRITE_JPEG_QUALITY,
        quality,
        cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
        SAMPLING[sampling],
        cv2.IMWRITE_JPEG_PROGRESSIVE,
        progressive,
    )
    expected = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(decode_compressed(data, "camera f0"), expected)


def test_golden_q30_jpeg_grayscale_and_png_decode_as_opencv_does():
    golden = (DATA / "preprocessing" / "expected_q30.jpg").read_bytes()
    gray = _jpeg(cv2.cvtColor(CAMERA, cv2.COLOR_RGB2GRAY))
    ok, png = cv2.imencode(".png", read_rgb(DATA / "images" / "case_00.png"))
    assert ok
    for data in (golden, gray, png.tobytes()):
        expected = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        np.testing.assert_array_equal(decode_compressed(data, "camera f0"), expected)


@pytest.mark.parametrize("at", [0.3, 0.6])
def test_a_jpeg_the_decoder_would_repair_is_refused_naming_the_camera(at):
    data = damaged(_jpeg(CAMERA[..., ::-1], cv2.IMWRITE_JPEG_QUALITY, 90), at=at, size=2048)
    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) is not None, "OpenCV repairs it silently"
    with pytest.raises(CorruptImageError, match=r"^camera l0: JPEG data is corrupt \(\d+ bytes; libjpeg: .+\)"):
        decode_compressed(data, "camera l0")


def test_a_truncated_jpeg_is_refused():
    data = _jpeg(CAMERA[..., ::-1])
    with pytest.raises(CorruptImageError, match="Premature end of JPEG file"):
        decode_compressed(data[: len(data) // 2], "camera f0")


def test_data_no_decoder_can_read_is_a_bad_input():
    with pytest.raises(ImageInputError, match=r"camera f0: compressed data \(20 bytes\) could not be decoded") as error:
        decode_compressed(b"\xff\xd8 not really a jpeg", "camera f0")
    assert not isinstance(error.value, CorruptImageError)
