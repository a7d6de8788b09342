"""The one place that converts between the model's CARLA frame and ISO 8855.

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
