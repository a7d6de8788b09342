"""Camera images to the LTFv6 model input, exactly as LEAD's NAVSIM pipeline (SPEC §3).

Four cameras [l0 | f0 | r0 | b0] are stitched side by side, resized to width 1920 with
OpenCV's INTER_LINEAR, and sent through a JPEG quality-30 round trip in which OpenCV
reads the RGB array as BGR (LEAD's channel swap: never "correct" it, it changes the
input by up to 62 levels). An already stitched image is used as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np
import simplejpeg

from lead_ros.camera_layout import (
    ANCHOR_CAMERA,
    CAMERA_NAMES,
    CAMERA_SLOT_WIDTH,
    MODEL_IMAGE_WIDTH,
    NAVSIM_LAYOUT,
    CorruptImageError,
    ImageInputError,
)

if TYPE_CHECKING:
    from lead_ros.cameras.reprojection import Reprojection

# Re-exported: users import the image errors and the layout's widths from here.
__all__ = ["CAMERA_NAMES", "MODEL_IMAGE_WIDTH", "CorruptImageError", "ImageInputError"]
# The image trunk pools its last stage (H/32 rows) to 8 token rows.
MIN_MODEL_IMAGE_HEIGHT = 256
MAX_MODEL_IMAGE_HEIGHT = 1080
SUPPORTED_ENCODINGS = ("rgb8", "bgr8")
JPEG_QUALITY = 30
MIN_CAMERA_WIDTH, MIN_CAMERA_HEIGHT = 960, 540
CAMERA_ASPECT = 16 / 9
CAMERA_ASPECT_TOLERANCE = 0.02  # relative: 1920x1080, 1280x720, 1600x900 pass; 4:3 does not


JPEG_MAGIC = b"\xff\xd8"


def decode_compressed(data: bytes | memoryview, name: str) -> np.ndarray:
    """JPEG or PNG bytes -> (H, W, 3) uint8 BGR.

    JPEGs are decoded by libjpeg-turbo in strict mode (simplejpeg), which reports the
    corruption that ``cv2.imdecode`` repairs silently (printing only a libjpeg warning on
    stderr); for intact JPEGs its pixels equal ``cv2.imdecode``'s (same library, default
    IDCT and upsampling; the tests compare them). What simplejpeg cannot decode at all (e.g.
    CMYK) goes to ``cv2.imdecode`` as before, as do PNGs.
    """
    if bytes(data[:2]) == JPEG_MAGIC:
        try:
            return simplejpeg.decode_jpeg(data, colorspace="BGR", strict=True)
        except ValueError as strict_error:
            try:
                simplejpeg.decode_jpeg(data, colorspace="BGR", strict=False, min_factor=8)
            except ValueError:
                pass  # not decodable by simplejpeg at all: cv2 below decides
            else:
                reason = " ".join(str(strict_error).split())
                raise CorruptImageError(
                    f"{name}: JPEG data is corrupt ({len(data)} bytes; libjpeg: {reason}); the decoder could only "
                    "repair it, so the frame is not planned"
                ) from None
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageInputError(f"{name}: compressed data ({len(data)} bytes) could not be decoded")
    return image


def check_encoding(encoding: str, name: str) -> None:
    if encoding not in SUPPORTED_ENCODINGS:
        raise ImageInputError(f"{name}: unsupported encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}")


def check_camera_size(name: str, width: int, height: int) -> None:
    """One NAVSIM camera: 16:9 (within CAMERA_ASPECT_TOLERANCE) and at least 960x540, so four
    of them stitch to 270 rows like NAVSIM's 1920x1080 cameras. Tiny or odd images would
    stitch and resize to something the model never saw."""
    aspect_ok = height > 0 and abs(width / height - CAMERA_ASPECT) <= CAMERA_ASPECT_TOLERANCE * CAMERA_ASPECT
    if not aspect_ok or width < MIN_CAMERA_WIDTH or height < MIN_CAMERA_HEIGHT:
        minimum = f"{MIN_CAMERA_WIDTH}x{MIN_CAMERA_HEIGHT}"
        raise ImageInputError(
            f"{name}: {width}x{height} pixels; expected a 16:9 camera of at least {minimum} "
            f"(NAVSIM's are 1920x1080; aspect tolerance {CAMERA_ASPECT_TOLERANCE:.0%})"
        )


def check_camera_limits(name: str, width: int, height: int, max_side_px: int, max_megapixels: float) -> None:
    """A camera no larger than the node accepts (``max_camera_side_px``,
    ``max_camera_megapixels``): checked from the message header before anything is decoded or
    buffered, so a stream of huge frames cannot fill the node's memory."""
    if max(width, height) > max_side_px or width * height > max_megapixels * 1e6:
        raise ImageInputError(
            f"{name}: {width}x{height} pixels ({width * height / 1e6:.1f} MP) is larger than accepted (each side "
            f"<= {max_side_px} px and <= {max_megapixels:g} MP: max_camera_side_px, max_camera_megapixels)"
        )


def check_stitched_size(name: str, width: int, height: int) -> None:
    """A ready model input: exactly 1920 wide, 256..1080 rows."""
    if width != MODEL_IMAGE_WIDTH:
        raise ImageInputError(f"{name}: width must be exactly {MODEL_IMAGE_WIDTH}, got {width}")
    if not MIN_MODEL_IMAGE_HEIGHT <= height <= MAX_MODEL_IMAGE_HEIGHT:
        raise ImageInputError(
            f"{name}: height must be {MIN_MODEL_IMAGE_HEIGHT}..{MAX_MODEL_IMAGE_HEIGHT} "
            f"(270 from NAVSIM cameras, 256 per the model card), got {height}"
        )


def _check_array(image: np.ndarray, name: str) -> None:
    if not isinstance(image, np.ndarray):
        raise ImageInputError(f"{name}: expected a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ImageInputError(f"{name}: expected dtype uint8 (0..255), got {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ImageInputError(f"{name}: expected shape (H, W, 3), got {image.shape}")


def stitched_height(camera_height: int, camera_width: int) -> int:
    """Model-input height for four cameras of this size (270 for 1080x1920 cameras)."""
    return round(camera_height * CAMERA_SLOT_WIDTH / camera_width)


def jpeg_roundtrip(image: np.ndarray) -> np.ndarray:
    """Quality-30 JPEG encode/decode of an RGB array handed to OpenCV as if it were BGR."""
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ImageInputError("JPEG encoding of the stitched image failed")
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    if decoded is None:
        raise ImageInputError("JPEG decoding of the stitched image failed")
    return decoded


def _to_rgb(image: np.ndarray, encoding: str) -> np.ndarray:
    return image[..., ::-1] if encoding == "bgr8" else image


def check_equal_sizes(sizes: dict[str, tuple[int, int]]) -> None:
    """The four cameras of a frame, name -> (width, height), must have one size."""
    if len(set(sizes.values())) != 1:
        listed = ", ".join(f"{n} {w}x{h}" for n, (w, h) in sizes.items())
        raise ImageInputError(f"cameras: all four must have the same size, got {listed}")


def stitch_cameras(
    cameras: Sequence[np.ndarray | None],
    encoding: str = "rgb8",
    jpeg: bool = True,
    reprojection: Reprojection | None = None,
) -> np.ndarray:
    """Four camera images (l0, f0, r0, b0) -> (H, 1920, 3) uint8 RGB model input. ``None`` is
    a camera filled black (``missing_camera_policy: fill_black``; never f0).

    Without a ``reprojection`` the cameras are taken to be nuPlan's: equal sizes, 16:9. For an
    exact 4x reduction (1080x1920 cameras) each output pixel reads only its own camera, so each
    camera is resized on its own: bit-identical to resizing the 7680-wide stitched image,
    without building it. With one, each camera is first reprojected into its nuPlan camera
    (any size the rig describes), then reduced the same way.
    """
    check_encoding(encoding, "cameras")
    if len(cameras) != len(CAMERA_NAMES):
        raise ImageInputError(
            f"cameras: expected {len(CAMERA_NAMES)} images ({', '.join(CAMERA_NAMES)}), got {len(cameras)}"
        )
    if cameras[NAVSIM_LAYOUT.index(ANCHOR_CAMERA)] is None:
        raise ImageInputError(f"camera {ANCHOR_CAMERA}: missing; the front camera is never filled")
    for name, image in zip(CAMERA_NAMES, cameras, strict=True):
        if image is not None:
            _check_array(image, f"camera {name}")
    if reprojection is not None:
        resized = np.concatenate(reprojection.model_views(cameras), axis=1)
    else:
        resized = _stitch_nuplan_cameras(cameras)
    # Resizing acts per channel, so swapping channels afterwards is exact and cheaper.
    rgb = np.ascontiguousarray(_to_rgb(resized, encoding))
    return jpeg_roundtrip(rgb) if jpeg else rgb


def _stitch_nuplan_cameras(cameras: Sequence[np.ndarray | None]) -> np.ndarray:
    front = cameras[NAVSIM_LAYOUT.index(ANCHOR_CAMERA)]
    assert front is not None  # stitch_cameras refuses a missing anchor
    images = [np.zeros_like(front) if image is None else image for image in cameras]
    for name, image in zip(CAMERA_NAMES, images, strict=True):
        check_camera_size(f"camera {name}", image.shape[1], image.shape[0])
    check_equal_sizes({n: (img.shape[1], img.shape[0]) for n, img in zip(CAMERA_NAMES, images, strict=True)})
    cam_h, cam_w = images[0].shape[:2]
    out_h = stitched_height(cam_h, cam_w)
    if cam_w == 4 * CAMERA_SLOT_WIDTH and cam_h == 4 * out_h:
        resized = np.empty((out_h, MODEL_IMAGE_WIDTH, 3), np.uint8)
        for k, image in enumerate(images):
            resized[:, k * CAMERA_SLOT_WIDTH : (k + 1) * CAMERA_SLOT_WIDTH] = cv2.resize(
                image, (CAMERA_SLOT_WIDTH, out_h), interpolation=cv2.INTER_LINEAR
            )
        return resized
    return cv2.resize(np.concatenate(images, axis=1), (MODEL_IMAGE_WIDTH, out_h), interpolation=cv2.INTER_LINEAR)


def prepare_stitched(image: np.ndarray, encoding: str = "rgb8") -> np.ndarray:
    """An already stitched (H, 1920, 3) model input, validated and returned as RGB."""
    check_encoding(encoding, "stitched image")
    _check_array(image, "stitched image")
    height, width = image.shape[:2]
    check_stitched_size("stitched image", width, height)
    return np.ascontiguousarray(_to_rgb(image, encoding))
