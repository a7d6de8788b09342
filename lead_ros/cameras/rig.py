"""A camera rig file: per camera (l0, f0, r0, b0) its calibration, orientation and position in
``base_link`` (ISO 8855: x forward, y left, z up).

Per camera, the calibration uses ``sensor_msgs/CameraInfo``'s field names (``width``,
``height``, ``distortion_model``, ``k``, ``d``, ``p``, ``binning_x``, ``binning_y``, ``roi``)
plus ``rectified: true`` for an image that is already rectified (then ``p`` applies and ``d``
is not used), or ``camera_info: topic`` to take them from the camera's ``CameraInfo`` topic
(then only ``rectified`` may be given beside it). The orientation is either
``quaternion: [x, y, z, w]`` of the camera's optical frame (z forward, x right, y down: what
tf2 gives for ``base_link -> <camera>_optical_frame``) or ``rpy_deg: [roll, pitch, yaw]`` of
the camera body (x forward, y left, z up), composed as tf2's ``setRPY`` (fixed axes:
R = Rz(yaw) Ry(pitch) Rx(roll)), so positive pitch tilts the camera down. ``position: [x, y,
z]`` metres. ``ground_z`` (top level) is the ground's height in ``base_link``. The name
``nuplan`` selects the shipped rig of the cameras LTFv6 was trained with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from lead_ros.camera_layout import CAMERA_NAMES
from lead_ros.cameras.calibration import DISTORTION_MODELS, CameraCalibration
from lead_ros.node_config import load_yaml, yaml_problem

NUPLAN = "nuplan"
CALIBRATION_KEYS = {"width", "height", "distortion_model", "k", "d", "p", "binning_x", "binning_y", "roi"}
_CAMERA_KEYS = CALIBRATION_KEYS | {"rectified", "camera_info", "quaternion", "rpy_deg", "position"}
FROM_TOPIC = "topic"
_TOP_KEYS = {"cameras", "ground_z"}
MAX_CAMERA_SIDE_PX = 4096  # as the node's max_camera_side_px default: a rig cannot describe more
# Optical frame axes (x right, y down, z forward) expressed in the camera body frame (x forward,
# y left, z up): the columns of R_body_from_optical.
BODY_FROM_OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


class RigError(ValueError):
    """A rig file that cannot be used; the message names the file, the camera and the field."""


@dataclass(frozen=True, eq=False)
class RigCamera:
    """One camera: calibration (None: from its CameraInfo topic, not received yet), ``rotation``
    (3x3, base_link <- optical frame), ``position``; ``rectified`` applies to a CameraInfo."""

    name: str
    calibration: CameraCalibration | None
    rotation: np.ndarray
    position: np.ndarray
    rectified: bool = False

    def calibrated(self, calibration: CameraCalibration) -> RigCamera:
        return replace(self, calibration=calibration)

    @property
    def known_calibration(self) -> CameraCalibration:
        """The calibration, which reprojection needs (a camera awaiting its CameraInfo has none)."""
        if self.calibration is None:
            raise ValueError(f"camera {self.name}: no calibration yet (awaiting its CameraInfo)")
        return self.calibration

    @property
    def optical_axis(self) -> np.ndarray:
        """The viewing direction in base_link (unit vector)."""
        return self.rotation[:, 2]

    def yaw_pitch_roll_deg(self) -> tuple[float, float, float]:
        """The camera body's yaw, pitch (positive down) and roll in degrees (tf2's getRPY)."""
        body = self.rotation @ BODY_FROM_OPTICAL.T
        pitch = math.asin(max(-1.0, min(1.0, -body[2, 0])))
        yaw = math.atan2(body[1, 0], body[0, 0])
        roll = math.atan2(body[2, 1], body[2, 2])
        return math.degrees(yaw), math.degrees(pitch), math.degrees(roll)


@dataclass(frozen=True)
class CameraRig:
    """The four cameras, by name, and the ground height; ``source`` names the file."""

    cameras: dict[str, RigCamera]
    ground_z: float
    source: str

    def size(self, name: str) -> tuple[int, int] | None:
        """(width, height) of a camera's images; None while its CameraInfo is awaited."""
        calibration = self.cameras[name].calibration
        return None if calibration is None else (calibration.width, calibration.height)

    @property
    def from_topics(self) -> tuple[str, ...]:
        """The cameras whose calibration comes from their CameraInfo topic."""
        return tuple(name for name, camera in self.cameras.items() if camera.calibration is None)

    def calibrated(self, name: str, calibration: CameraCalibration) -> CameraRig:
        """This rig with one camera's calibration given (from its CameraInfo)."""
        return replace(self, cameras={**self.cameras, name: self.cameras[name].calibrated(calibration)})


def rotation_from_rpy(roll_deg: float, pitch_deg: float, yaw_deg: float) -> np.ndarray:
    """base_link <- optical frame for a camera body with this roll, pitch, yaw (tf2 setRPY)."""
    roll, pitch, yaw = (math.radians(a) for a in (roll_deg, pitch_deg, yaw_deg))
    cr, sr, cp, sp = math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    rz = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
    ry = np.array([[cp, 0.0, sp], [0.0, 1.0, 0.0], [-sp, 0.0, cp]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cr, -sr], [0.0, sr, cr]])
    return rz @ ry @ rx @ BODY_FROM_OPTICAL


def rotation_from_quaternion(x: float, y: float, z: float, w: float) -> np.ndarray:
    """The rotation matrix of a unit quaternion (x, y, z, w)."""
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def load_rig(source: str | Path) -> CameraRig:
    """A rig file (or ``nuplan``, the shipped rig of the trained cameras), checked field by field."""
    if str(source) == NUPLAN:
        text = resources.files("lead_ros").joinpath("data/rigs/nuplan.yaml").read_text()
    else:
        try:
            text = Path(source).read_text()
        except OSError as error:
            raise RigError(f"camera rig {source}: cannot read it ({error.strerror or error})") from None
    try:
        document = load_yaml(text)
    except yaml.YAMLError as error:
        raise RigError(f"camera rig {source}: not valid YAML{yaml_problem(error)}") from None
    return parse_rig(document, str(source))


def parse_rig(document: Any, source: str) -> CameraRig:
    where = f"camera rig {source}"
    if not isinstance(document, dict):
        raise RigError(f"{where}: expected a mapping with 'cameras' (l0, f0, r0, b0), got {type(document).__name__}")
    _refuse_unknown(document, _TOP_KEYS, where)
    cameras = document.get("cameras")
    if not isinstance(cameras, dict) or set(cameras) != set(CAMERA_NAMES):
        found = ", ".join(map(str, cameras)) if isinstance(cameras, dict) else "none"
        raise RigError(f"{where}: 'cameras' must describe exactly {', '.join(CAMERA_NAMES)}; found {found}")
    ground_z = _number(document.get("ground_z", 0.0), f"{where}: ground_z")
    parsed = {name: _camera(name, cameras[name], f"{where}: camera {name}") for name in CAMERA_NAMES}
    return CameraRig(parsed, ground_z, source)


def _camera(name: str, entry: Any, where: str) -> RigCamera:
    if not isinstance(entry, dict):
        raise RigError(f"{where}: expected a mapping, got {type(entry).__name__}")
    _refuse_unknown(entry, _CAMERA_KEYS, where)
    rectified = entry.get("rectified", False)
    if not isinstance(rectified, bool):
        raise RigError(f"{where}: rectified must be true or false, got {rectified!r}")
    if "camera_info" in entry:
        if entry["camera_info"] != FROM_TOPIC:
            raise RigError(
                f"{where}: camera_info must be '{FROM_TOPIC}' (take the calibration from the CameraInfo "
                f"topic), got {entry['camera_info']!r}"
            )
        given = sorted(CALIBRATION_KEYS & set(entry))
        if given:
            listed = ", ".join(given)
            raise RigError(f"{where}: camera_info: topic takes the calibration from the topic; remove {listed}")
        calibration = None
    else:
        calibration = calibration_from_fields(entry, where, rectified)
    orientation, position = _orientation(entry, where), _vector(entry, "position", 3, where)
    return RigCamera(name, calibration, orientation, position, rectified)


def calibration_from_fields(entry: dict, where: str, rectified: bool) -> CameraCalibration:
    """A calibration from ``sensor_msgs/CameraInfo``'s fields (a rig file entry, or a received
    CameraInfo as a dict), checked field by field; ``rectified``: the image is, so P applies."""
    for key in ("width", "height"):
        value = entry.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_CAMERA_SIDE_PX:
            raise RigError(f"{where}: {key} must be an integer 1..{MAX_CAMERA_SIDE_PX}, got {value!r}")
    for key in ("binning_x", "binning_y"):
        if entry.get(key, 0) not in (0, 1):
            raise RigError(f"{where}: {key} {entry[key]!r} is not supported (only 0 or 1: no binning)")
    roi = entry.get("roi") or {}
    whole = isinstance(roi, dict) and not roi.get("x_offset", 0) and not roi.get("y_offset", 0)
    if not whole or (roi.get("width", 0), roi.get("height", 0)) not in ((0, 0), (entry["width"], entry["height"])):
        raise RigError(f"{where}: roi {roi!r} is not supported (only the full image: all zero, or the image size)")
    if rectified:
        projection = _vector(entry, "p", 12, where).reshape(3, 4)
        fx, fy = projection[0, 0], projection[1, 1]
        if not (fx > 0 and fy > 0 and projection[0, 1] == 0 and np.array_equal(projection[2, :3], [0.0, 0.0, 1.0])):
            raise RigError(
                f"{where}: p must be [fx, 0, cx, 0, 0, fy, cy, 0, 0, 0, 1, 0] with fx, fy > 0 (a rectified image "
                f"is projected with it), got {projection.ravel().tolist()}"
            )
        if np.any(projection[:, 3] != 0):
            raise RigError(f"{where}: p has a translation column (a stereo right camera); expected [.., 0] x 3")
        return CameraCalibration(entry["width"], entry["height"], projection[:, :3], "plumb_bob", np.zeros(5))
    model = entry.get("distortion_model")
    if model not in DISTORTION_MODELS:
        raise RigError(f"{where}: distortion_model must be one of {', '.join(DISTORTION_MODELS)}, got {model!r}")
    matrix = _vector(entry, "k", 9, where).reshape(3, 3)
    fx, fy = matrix[0, 0], matrix[1, 1]
    if not (fx > 0 and fy > 0 and matrix[0, 1] == 0 and np.array_equal(matrix[2], [0.0, 0.0, 1.0])):
        got = matrix.ravel().tolist()
        raise RigError(f"{where}: k must be [fx, 0, cx, 0, fy, cy, 0, 0, 1] with fx, fy > 0, got {got}")
    coefficients = _vector(entry, "d", DISTORTION_MODELS[model], where)
    return CameraCalibration(entry["width"], entry["height"], matrix, model, coefficients)


def _orientation(entry: dict, where: str) -> np.ndarray:
    if ("quaternion" in entry) == ("rpy_deg" in entry):
        raise RigError(
            f"{where}: give exactly one of quaternion [x, y, z, w] (optical frame) or rpy_deg "
            "[roll, pitch, yaw] (camera body)"
        )
    if "rpy_deg" in entry:
        return rotation_from_rpy(*_vector(entry, "rpy_deg", 3, where))
    quaternion = _vector(entry, "quaternion", 4, where)
    norm = float(np.linalg.norm(quaternion))
    if abs(norm - 1.0) > 1e-3:
        raise RigError(f"{where}: quaternion {quaternion.tolist()} is not a unit quaternion (norm {norm:.4g})")
    return rotation_from_quaternion(*(quaternion / norm))


def _vector(entry: dict, key: str, length: int, where: str) -> np.ndarray:
    value = entry.get(key)
    if not isinstance(value, list) or len(value) != length:
        raise RigError(f"{where}: {key} must be a list of {length} numbers, got {value!r}")
    return np.array([_number(v, f"{where}: {key}") for v in value], np.float64)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RigError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def _refuse_unknown(mapping: dict, known: set[str], where: str) -> None:
    unknown = sorted(map(str, set(mapping) - known))
    if unknown:
        raise RigError(f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
