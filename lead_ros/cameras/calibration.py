"""One camera's intrinsics and lens distortion, as ``sensor_msgs/CameraInfo`` carries them, and
the two directions between pixels and rays in its optical frame (x right, y down, z forward).

Projection uses OpenCV's models: ``cv2.projectPoints`` for ``plumb_bob`` and
``rational_polynomial``; for ``equidistant`` OpenCV's fisheye model written out here with the
angle from the axis taken as ``atan2(sqrt(x^2 + y^2), z)``, because ``cv2.fisheye`` computes it
as ``atan(sqrt(x^2 + y^2) / z)`` and so cannot image a ray at 90 degrees or more from the axis,
which a lens wider than 180 degrees sees (the tests compare both below 90 degrees). OpenCV's
functions return a plausible pixel for every ray, also for rays they cannot image: behind a
pinhole camera, or past the radius where the distortion polynomial folds back (there several
rays share a pixel). ``project`` therefore also says which rays the camera really sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

# distortion_model -> number of coefficients in CameraInfo.d (ROS names, OpenCV order).
DISTORTION_MODELS = {"plumb_bob": 5, "rational_polynomial": 8, "equidistant": 4}
# undistortPoints' default (5 iterations) is off by up to 0.7 px at nuPlan's corners.
UNDISTORT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 200, 1e-12)
# The distortion polynomial is searched for its first fold out to this undistorted radius
# (tan of 89.4 deg) or angle (equidistant, up to 180 deg), in this many steps.
_FOLD_SEARCH_RADIUS = 100.0
_FOLD_SEARCH_STEPS = 200_001
# OpenCV's Python projectPoints also returns the Jacobian (2 x 15 doubles per point): points
# go through it in chunks of this many, so a 2-megapixel table needs tens of MB, not a GB.
_CHUNK = 1 << 16
# Pixel centres on the image border count as inside up to this rounding error (pixels).
_EDGE = 1e-6


@dataclass(frozen=True, eq=False)
class CameraCalibration:
    """Intrinsics (3x3 ``camera_matrix``), distortion model and coefficients, image size.

    A rectified camera (CameraInfo's P applies) is a pinhole: ``camera_matrix`` = P[:3, :3] and
    ``distortion_model`` ``plumb_bob`` with zero coefficients."""

    width: int
    height: int
    camera_matrix: np.ndarray
    distortion_model: str
    distortion: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "camera_matrix", np.asarray(self.camera_matrix, np.float64).reshape(3, 3))
        object.__setattr__(self, "distortion", np.asarray(self.distortion, np.float64).reshape(-1))

    @cached_property
    def fold(self) -> float:
        """Where the distortion polynomial stops growing (``_fold``): searched (4 ms) the first
        time a projection needs it, not for every CameraInfo parsed only to be compared."""
        return _fold(self.distortion_model, self.distortion)

    def same_as(self, other: CameraCalibration) -> bool:
        """Equal size, intrinsics and distortion: reprojecting between them changes nothing."""
        return (
            (self.width, self.height, self.distortion_model) == (other.width, other.height, other.distortion_model)
            and np.array_equal(self.camera_matrix, other.camera_matrix)
            and np.array_equal(self.distortion, other.distortion)
        )

    @property
    def fisheye(self) -> bool:
        return self.distortion_model == "equidistant"

    def project(self, rays: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3) rays in the optical frame -> (N, 2) pixel coordinates and an (N,) mask of the
        rays this camera images: in front of it (z > 0; a fisheye: less than 180 degrees from
        its axis), inside the distortion polynomial's monotonic range, landing inside the image
        (pixel centres 0..width-1, 0..height-1, so bilinear interpolation reads only real
        pixels). Pixels of masked-out rays are NaN."""
        rays = np.asarray(rays, np.float64).reshape(-1, 3)
        pixels = np.full((rays.shape[0], 2), np.nan)
        if self.fisheye:
            theta = np.arctan2(np.hypot(rays[:, 0], rays[:, 1]), rays[:, 2])
            good = theta < min(self.fold, np.pi - 1e-6)
            pixels[good] = self._project_equidistant(rays[good], theta[good])
        else:
            z = rays[:, 2]
            ahead = z > 1e-9
            safe_z = np.where(ahead, z, 1.0)
            good = ahead & (np.hypot(rays[:, 0], rays[:, 1]) / safe_z < self.fold)
            if good.any():
                points = (rays[good] / safe_z[good, None]).reshape(-1, 1, 3)
                pixels[good] = np.concatenate(
                    [self._project_points(points[i : i + _CHUNK]) for i in range(0, len(points), _CHUNK)]
                )
        u, v = pixels[:, 0], pixels[:, 1]
        with np.errstate(invalid="ignore"):
            inside = good & (u >= -_EDGE) & (v >= -_EDGE)
            inside &= (u <= self.width - 1 + _EDGE) & (v <= self.height - 1 + _EDGE)
        pixels[~inside] = np.nan
        return pixels, inside

    def _project_points(self, points: np.ndarray) -> np.ndarray:
        zero = np.zeros(3)
        projected, _ = cv2.projectPoints(points, zero, zero, self.camera_matrix, self.distortion)
        return projected.reshape(-1, 2)

    def _distorted_angle(self, theta: np.ndarray) -> np.ndarray:
        """OpenCV's fisheye polynomial: theta (1 + k1 theta^2 + k2 theta^4 + k3 theta^6 + k4 theta^8)."""
        k1, k2, k3, k4 = self.distortion[:4]
        t2 = theta * theta
        return theta * (1 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4))))

    def _project_equidistant(self, rays: np.ndarray, theta: np.ndarray) -> np.ndarray:
        rho = np.hypot(rays[:, 0], rays[:, 1])
        scale = np.divide(self._distorted_angle(theta), rho, out=np.zeros_like(rho), where=rho > 0)
        normal = np.column_stack((rays[:, 0] * scale, rays[:, 1] * scale, np.ones_like(rho)))
        return (normal @ self.camera_matrix.T)[:, :2]

    def unproject(self, pixels: np.ndarray) -> np.ndarray:
        """(N, 2) pixel coordinates -> (N, 3) unit rays in the optical frame (the inverse of
        ``project`` inside the monotonic range), with a tight iteration criterion."""
        points = np.asarray(pixels, np.float64).reshape(-1, 2)
        if self.fisheye:
            return self._unproject_equidistant(points)
        normal = cv2.undistortPoints(
            points.reshape(-1, 1, 2), self.camera_matrix, self.distortion, criteria=UNDISTORT_CRITERIA
        ).reshape(-1, 2)
        rays = np.concatenate((normal, np.ones((normal.shape[0], 1))), axis=1)
        return rays / np.linalg.norm(rays, axis=1, keepdims=True)

    def _unproject_equidistant(self, points: np.ndarray) -> np.ndarray:
        """The fisheye polynomial inverted by Newton's method from theta_d (converges inside
        the monotonic range, where its derivative is positive), up to 180 degrees."""
        homogeneous = np.column_stack((points, np.ones(len(points))))
        normal = (homogeneous @ np.linalg.inv(self.camera_matrix).T)[:, :2]
        distorted = np.hypot(normal[:, 0], normal[:, 1])
        theta = distorted.copy()
        step = 1e-7
        for _ in range(UNDISTORT_CRITERIA[1]):
            error = self._distorted_angle(theta) - distorted
            slope = (self._distorted_angle(theta + step) - self._distorted_angle(theta - step)) / (2 * step)
            theta = np.clip(theta - error / np.where(np.abs(slope) > 1e-12, slope, 1e-12), 0.0, np.pi)
            if np.max(np.abs(error)) < UNDISTORT_CRITERIA[2]:
                break
        direction = np.divide(normal, distorted[:, None], out=np.zeros_like(normal), where=distorted[:, None] > 0)
        return np.column_stack((direction * np.sin(theta)[:, None], np.cos(theta)))


def _fold(model: str, coefficients: np.ndarray) -> float:
    """The undistorted radius (tan of the angle from the axis; the angle itself for
    ``equidistant``) where the radial distortion stops growing, or inf if it grows throughout.
    Tangential terms (p1, p2) are ignored: they shift pixels, they do not fold the image."""
    x = np.linspace(0.0, np.pi if model == "equidistant" else _FOLD_SEARCH_RADIUS, _FOLD_SEARCH_STEPS)
    x2 = x * x
    k = np.zeros(8)
    if model == "equidistant":
        k1, k2, k3, k4 = coefficients[:4]
        distorted = x * (1 + x2 * (k1 + x2 * (k2 + x2 * (k3 + x2 * k4))))
    else:
        k[: len(coefficients)] = coefficients[:8]
        k1, k2, _, _, k3, k4, k5, k6 = k
        numerator = 1 + x2 * (k1 + x2 * (k2 + x2 * k3))
        denominator = 1 + x2 * (k4 + x2 * (k5 + x2 * k6))
        with np.errstate(divide="ignore", invalid="ignore"):
            distorted = x * numerator / denominator
    folds = np.flatnonzero(~(np.diff(distorted) > 0))
    return float(x[folds[0]]) if folds.size else float("inf")
