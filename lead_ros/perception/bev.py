"""The BEV semantic grid: classes, geometry and the published layout.

LEAD's grid (SPEC_AUX §2) has **rows on the lateral axis** (row 0 = LEAD y -32, i.e. 32 m to
the left, since LEAD's y points right) and columns on x (column 0 = 32 m behind), 0.25 m
cells over +-32 m. lead_ros publishes it in ISO 8855 as a ROS grid expects: index [c, i, j]
is the cell centred at x = -32 + 0.25 (j + 0.5) (forward), y = -32 + 0.25 (i + 0.5) (left).
That is LEAD's map with its rows reversed (i = 255 - LEAD row), columns unchanged, no
transpose: ``lead_to_published`` is the one place that does it.
"""

from __future__ import annotations

import numpy as np

CLASS_NAMES = ("unlabeled", "road", "walkways", "centerline", "static_objects", "vehicles", "pedestrians")
GRID_CELLS = 256
CELL_M = 0.25
GRID_MIN_M = -32.0  # x and y of the grid's low edges (ISO 8855, metres)


def lead_to_published(lead: np.ndarray) -> np.ndarray:
    """(..., 256 rows, 256 cols) in LEAD's layout -> the published ISO 8855 layout (a view)."""
    return lead[..., ::-1, :]


def cell_centre(i: int | np.ndarray, j: int | np.ndarray) -> tuple:
    """ISO 8855 (x forward, y left) of published cell (row i, column j), metres."""
    return GRID_MIN_M + CELL_M * (np.asarray(j) + 0.5), GRID_MIN_M + CELL_M * (np.asarray(i) + 0.5)


def class_pixel_counts(labels: np.ndarray) -> dict[str, int]:
    """Pixels per class name of a (256, 256) argmax label map."""
    counts = np.bincount(labels.ravel(), minlength=len(CLASS_NAMES))
    return {name: int(counts[k]) for k, name in enumerate(CLASS_NAMES)}
