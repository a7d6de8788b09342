"""Camera views (``decoding.CameraView``): stamp, encoding and size read from the CDR bytes
equal those of the deserialized message's view, the message comes back whole, and broken
bytes name the camera."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CompressedImage, Image

from lead_ros.preprocessing import ImageInputError
from lead_ros.ros.decoding import CameraView, camera_to_array, compressed_image_size
from lead_ros.ros.encoding import array_to_image, ns_to_stamp

STAMP_NS = 1_795_000_000_123_456_789


def _image(frame_id: str, encoding: str) -> Image:
    pixels = np.arange(6 * 5 * 3, dtype=np.uint8).reshape(6, 5, 3)
    return array_to_image(pixels, STAMP_NS, frame_id, encoding)


@pytest.mark.parametrize("frame_id", ["", "c", "cam", "camera_front", "x" * 13])  # every alignment of the strings
@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "mono16"])
def test_raw_image_stamp_and_encoding_from_the_bytes(frame_id, encoding):
    message = _image(frame_id, encoding)
    camera = CameraView.of_serialized(serialize_message(message), Image, "camera f0")
    view = CameraView.of_message(message)
    assert (camera.stamp_ns, camera.encoding, camera.size) == (view.stamp_ns, view.encoding, view.size)
    assert (camera.stamp_ns, camera.encoding, camera.size) == (STAMP_NS, encoding, (5, 6))
    assert camera.message() == message


def test_compressed_image_stamp_and_decoded_pixels():
    message = CompressedImage(format="png", data=bytes(np.frombuffer(bytes(range(256)) * 3, np.uint8)))
    message.header.stamp, message.header.frame_id = ns_to_stamp(STAMP_NS), "cam_l0"
    camera = CameraView.of_serialized(serialize_message(message), CompressedImage, "camera l0")
    assert (camera.stamp_ns, camera.encoding, camera.compressed_bytes) == (STAMP_NS, None, 768)
    raw = _image("cam", "rgb8")
    serialized = CameraView.of_serialized(serialize_message(raw), Image, "camera f0")
    np.testing.assert_array_equal(
        camera_to_array(serialized, "f0")[0], camera_to_array(CameraView.of_message(raw), "f0")[0]
    )


@pytest.mark.parametrize("cut", [3, 10, 20, 40])
def test_truncated_bytes_name_the_camera(cut):
    data = serialize_message(_image("camera_front", "rgb8"))[:cut]
    with pytest.raises(ImageInputError, match=r"camera f0: not a serialized Image|camera f0: header stamp"):
        CameraView.of_serialized(data, Image, "camera f0")


@pytest.mark.parametrize(
    ("ext", "params"),
    [(".jpg", []), (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]), (".png", [])],
    ids=["jpeg", "progressive-jpeg", "png"],
)
def test_compressed_size_is_read_from_the_header(ext, params):
    ok, data = cv2.imencode(ext, np.zeros((540, 960, 3), np.uint8), params)
    assert ok
    message = CompressedImage(format=ext[1:], data=data.tobytes())
    message.header.stamp = ns_to_stamp(STAMP_NS)
    assert compressed_image_size(memoryview(data.tobytes())) == (960, 540)
    assert CameraView.of_serialized(serialize_message(message), CompressedImage, "camera r0").size == (960, 540)
    assert CameraView.of_message(message).size == (960, 540)


@pytest.mark.parametrize("data", [b"", b"\xff\xd8 not really a jpeg", b"GIF89a....", b"\x89PNG\r\n\x1a\n"])
def test_data_without_a_jpeg_or_png_size_gives_none(data):
    assert compressed_image_size(memoryview(data)) is None
