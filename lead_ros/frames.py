"""The one place that converts between frames: the model's CARLA frame and ISO 8855
``base_link``, and ``base_link`` and the odometry frame.

CARLA (model output): x forward, y right, heading positive clockwise seen from above.
ISO 8855 (ROS base_link, NAVSIM): x forward, y left, z up, heading counter-clockwise.
Getting this wrong mirrors every turn, so nothing else in the package flips signs.
"""

from __future__ import annotations

import numpy as np


def carla_to_iso8855(waypoints: np.ndarray, headings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) waypoints and (N,) headings: y -> -y, heading -> -heading."""
    iso = np.array(waypoints, dtype=np.float64, copy=True)
    iso[..., 1] *= -1.0
    return iso, -np.asarray(headings, dtype=np.float64)


def yaw_to_quaternion(yaw: np.ndarray) -> np.ndarray:
    """Rotation about +z by ``yaw`` radians as (..., 4) quaternions in (x, y, z, w) order."""
    half = 0.5 * np.asarray(yaw, dtype=np.float64)
    zeros = np.zeros_like(half)
    return np.stack((zeros, zeros, np.sin(half), np.cos(half)), axis=-1)


def wrap_angle(angle):
    """Angles wrapped to (-pi, pi] (scalars or arrays)."""
    return np.pi - np.mod(np.pi - np.asarray(angle, dtype=np.float64), 2.0 * np.pi)


def quaternion_to_yaw(x: float, y: float, z: float, w: float) -> float:
    """Yaw (rotation about +z, counter-clockwise) of a quaternion, normalized first; NaN for a
    zero or non-finite quaternion, which carries no orientation."""
    norm = float(np.sqrt(x * x + y * y + z * z + w * w))
    if not np.isfinite(norm) or norm < 1e-9:
        return float("nan")
    x, y, z, w = x / norm, y / norm, z / norm, w / norm
    return float(np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z)))


def base_link_to_odometry(
    pose_xy: tuple[float, float], pose_yaw: float, waypoints: np.ndarray, headings: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """ISO 8855 ``base_link`` waypoints (N, 2) and headings (N,) expressed in the odometry
    frame, given the vehicle's pose there (position, yaw): rotate by the yaw, then translate."""
    cos, sin = np.cos(pose_yaw), np.sin(pose_yaw)
    points = np.asarray(waypoints, dtype=np.float64)
    x, y = points[..., 0], points[..., 1]
    moved = np.stack((pose_xy[0] + cos * x - sin * y, pose_xy[1] + sin * x + cos * y), axis=-1)
    return moved, wrap_angle(np.asarray(headings, dtype=np.float64) + pose_yaw)


def odometry_to_base_link(
    pose_xy: tuple[float, float], pose_yaw: float, points: np.ndarray, headings: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of ``base_link_to_odometry``: odometry-frame points and headings seen from
    the vehicle at ``pose``."""
    cos, sin = np.cos(pose_yaw), np.sin(pose_yaw)
    points = np.asarray(points, dtype=np.float64)
    dx, dy = points[..., 0] - pose_xy[0], points[..., 1] - pose_xy[1]
    local = np.stack((cos * dx + sin * dy, -sin * dx + cos * dy), axis=-1)
    return local, wrap_angle(np.asarray(headings, dtype=np.float64) - pose_yaw)
