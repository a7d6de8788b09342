"""Procedural NAVSIM-like camera images from pure integer arithmetic.

The pattern is the one the reference preprocessing golden data was made with, so a
1080x1920 set reproduces the reference cameras bit for bit; benchmarks and the demo use
it as realistic-size input that needs no files.
"""

from __future__ import annotations

import numpy as np

from lead_ros.camera_layout import CAMERA_NAMES

CAMERA_SHAPE = (1080, 1920)


def reference_camera(index: int, height: int = CAMERA_SHAPE[0], width: int = CAMERA_SHAPE[1]) -> np.ndarray:
    """Camera ``index`` (0 l0, 1 f0, 2 r0, 3 b0) as (H, W, 3) uint8 RGB."""
    k = index
    y = np.arange(height, dtype=np.int64).reshape(-1, 1, 1)
    x = np.arange(width, dtype=np.int64).reshape(1, -1, 1)
    c = np.arange(3, dtype=np.int64).reshape(1, 1, 3)
    smooth = x * (40 + 30 * k + 25 * c) // 1920 + y * (120 - 20 * k + 15 * c) // 1080
    checker = (((x + 17 * k) // (48 + 8 * c) + (y + 29 * c) // (36 + 6 * k)) % 2) * (60 + 10 * c)
    texture = ((x * x + 3 * y * y + 7919 * k + 104729 * c) >> 7) % 41
    disc = ((x - (400 + 300 * k)) ** 2 + (y - (540 - 60 * c)) ** 2 < (150 + 20 * k) ** 2) * (70 - 20 * c)
    return np.clip(smooth + checker + texture + disc, 0, 255).astype(np.uint8)


def reference_cameras(height: int = CAMERA_SHAPE[0], width: int = CAMERA_SHAPE[1]) -> tuple[np.ndarray, ...]:
    """One image per camera of the layout, in stitch order (l0, f0, r0, b0)."""
    return tuple(reference_camera(k, height, width) for k in range(len(CAMERA_NAMES)))
