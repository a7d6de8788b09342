"""Pictures of a frame: a large bird's-eye panel (the plan; with perception, the BEV semantic
map in colour with a legend and the detected boxes; offline, the logged future too) beside
the camera strip the model saw.

Used by the node's ~/debug/image and the bag evaluation's contact sheet and video. The
bird's-eye panel is ISO 8855 ``base_link`` seen from above with forward up and the
vehicle's left on the left, 10 px per metre, x from -24 to 40 m and y from -32 to 32 m,
the ego vehicle at (0, 0). With four cameras, the plan is also drawn into the front camera's
view (the f0 share of the model input, enlarged) through the virtual nuPlan f0 camera: on the
ground plane of the camera rig, or of nuPlan's rig when there is none.
"""

from __future__ import annotations

import cv2
import numpy as np

from lead_ros.cameras.reprojection import MODEL_VIEW_HEIGHT, MODEL_VIEW_WIDTH, FrontView
from lead_ros.perception.bev import CELL_M, CLASS_NAMES, GRID_CELLS, GRID_MIN_M
from lead_ros.perception.outputs import Box

PANEL_PX_PER_M = 10.0
PANEL_X_RANGE_M = (-24.0, 40.0)  # forward extent (bottom to top)
PANEL_Y_HALF_M = 32.0  # lateral extent (+-, left to right)
PANEL_SIZE = round((PANEL_X_RANGE_M[1] - PANEL_X_RANGE_M[0]) * PANEL_PX_PER_M)  # 640
CAMERA_STRIP_WIDTH = 1280
FRONT_VIEW_SCALE = 1.3  # the 480x270 f0 view drawn 624x351 under the camera strip
UNTRAINED_BANNER = "UNTRAINED SYNTHETIC WEIGHTS - NOT A DRIVING POLICY"
_PATH_COLOUR = (255, 64, 32)
_EGO_COLOUR = (40, 200, 40)
_LOGGED_COLOUR = (60, 220, 255)
_BOX_COLOUR = (255, 255, 255)
# RGB per BEV class (unlabeled stays the panel background).
CLASS_COLOURS = {
    "unlabeled": (30, 30, 30),
    "road": (90, 90, 100),
    "walkways": (150, 120, 90),
    "centerline": (240, 220, 60),
    "static_objects": (200, 60, 200),
    "vehicles": (40, 120, 255),
    "pedestrians": (255, 40, 40),
}


def to_px(x, y) -> tuple[int, int]:
    """Panel pixel (column, row) of an ISO 8855 point."""
    return round((PANEL_Y_HALF_M - y) * PANEL_PX_PER_M), round((PANEL_X_RANGE_M[1] - x) * PANEL_PX_PER_M)


def _semantic_background(labels: np.ndarray) -> np.ndarray:
    """The (256, 256) published-layout label map resampled into the panel, coloured."""
    centres = (np.arange(PANEL_SIZE) + 0.5) / PANEL_PX_PER_M
    x = PANEL_X_RANGE_M[1] - centres  # per panel row
    y = PANEL_Y_HALF_M - centres  # per panel column
    j = np.floor((x - GRID_MIN_M) / CELL_M).astype(int)
    i = np.floor((y - GRID_MIN_M) / CELL_M).astype(int)
    inside = (j[:, None] >= 0) & (j[:, None] < GRID_CELLS) & (i[None, :] >= 0) & (i[None, :] < GRID_CELLS)
    palette = np.array([CLASS_COLOURS[name] for name in CLASS_NAMES], np.uint8)
    picked = labels[np.clip(i, 0, GRID_CELLS - 1)[None, :], np.clip(j, 0, GRID_CELLS - 1)[:, None]]
    panel = palette[picked]
    panel[~inside] = (18, 18, 18)
    return panel


def box_corners(box: Box) -> list[tuple[float, float]]:
    """The four corners of a box, centre + R(yaw) (+-half_length, +-half_width) (SPEC_AUX 2.7)."""
    c, s = np.cos(box.yaw), np.sin(box.yaw)
    signs = ((1, 1), (1, -1), (-1, -1), (-1, 1))
    return [
        (
            box.x + c * a * box.half_length - s * b * box.half_width,
            box.y + s * a * box.half_length + c * b * box.half_width,
        )
        for a, b in signs
    ]


def _legend(panel: np.ndarray, entries: list[tuple[str, tuple[int, int, int]]]) -> None:
    for row, (label, colour) in enumerate(entries):
        y = 16 + 16 * row
        cv2.rectangle(panel, (PANEL_SIZE - 150, y - 9), (PANEL_SIZE - 138, y + 1), colour, -1)
        cv2.putText(panel, label, (PANEL_SIZE - 132, y), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (235, 235, 235), 1, cv2.LINE_AA)


def birds_eye_panel(
    waypoints: np.ndarray,
    headings: np.ndarray,
    logged: np.ndarray | None = None,
    bev_labels: np.ndarray | None = None,
    boxes: tuple[Box, ...] | None = None,
) -> np.ndarray:
    """The PANEL_SIZE x PANEL_SIZE RGB bird's-eye panel (see the module doc): ``bev_labels``
    (published layout) and ``boxes`` (ISO 8855) come from perception, when it ran."""
    if bev_labels is not None:
        panel = _semantic_background(bev_labels)
    else:
        panel = np.full((PANEL_SIZE, PANEL_SIZE, 3), 30, np.uint8)
    for metres in range(-20, 41, 10):
        row = to_px(metres, 0)[1]
        cv2.line(panel, (0, row), (PANEL_SIZE - 1, row), (70, 70, 70), 1)
        cv2.putText(panel, f"{metres} m", (4, row - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (160, 160, 160), 1)
    legend = []
    if bev_labels is not None:
        present = set(np.unique(bev_labels).tolist())
        legend += [(name, CLASS_COLOURS[name]) for k, name in enumerate(CLASS_NAMES) if k in present and k > 0]
    if boxes is not None:
        for box in boxes:
            cv2.polylines(
                panel,
                [np.array([to_px(x, y) for x, y in box_corners(box)], np.int32)],
                True,
                _BOX_COLOUR,
                1,
                cv2.LINE_AA,
            )
        legend.append(("detected vehicle", _BOX_COLOUR))
    ego = np.array([[2.4, 0.0], [-1.0, 1.0], [-1.0, -1.0]])
    cv2.fillPoly(panel, [np.array([to_px(x, y) for x, y in ego], np.int32)], _EGO_COLOUR)
    if logged is not None:
        truth = [to_px(0.0, 0.0)] + [to_px(x, y) for x, y in logged]
        cv2.polylines(panel, [np.array(truth, np.int32)], False, _LOGGED_COLOUR, 2, cv2.LINE_AA)
        for point in truth[1:]:
            cv2.drawMarker(panel, point, _LOGGED_COLOUR, cv2.MARKER_SQUARE, 8, 1, cv2.LINE_AA)
        legend.append(("logged future", _LOGGED_COLOUR))
    points = [to_px(0.0, 0.0)] + [to_px(x, y) for x, y in waypoints]
    cv2.polylines(panel, [np.array(points, np.int32)], False, _PATH_COLOUR, 2, cv2.LINE_AA)
    for (x, y), heading in zip(waypoints, headings, strict=True):
        tip = to_px(x + 2.0 * np.cos(heading), y + 2.0 * np.sin(heading))
        cv2.arrowedLine(panel, to_px(x, y), tip, (255, 220, 80), 1, cv2.LINE_AA, tipLength=0.4)
        cv2.circle(panel, to_px(x, y), 3, _PATH_COLOUR, -1, cv2.LINE_AA)
    _legend(panel, [("plan", _PATH_COLOUR), *legend])
    return panel


def render_plan(
    model_image: np.ndarray,
    waypoints: np.ndarray,
    headings: np.ndarray,
    caption: str = "",
    untrained: bool = False,
    logged: np.ndarray | None = None,
    bev_labels: np.ndarray | None = None,
    boxes: tuple[Box, ...] | None = None,
    front_view: FrontView | None = None,
) -> np.ndarray:
    """The bird's-eye panel (PANEL_SIZE square) with the camera strip the model saw beside it
    (CAMERA_STRIP_WIDTH wide, scaled), the caption under the strip and, with ``front_view``,
    the plan drawn into the front camera's view below: RGB uint8."""
    panel = birds_eye_panel(waypoints, headings, logged, bev_labels, boxes)
    top = 30
    # A tall stitched input (up to 1080 rows) is scaled to leave room for the caption.
    scale = min(CAMERA_STRIP_WIDTH / model_image.shape[1], (PANEL_SIZE - top - 80) / model_image.shape[0])
    width, height = round(model_image.shape[1] * scale), round(model_image.shape[0] * scale)
    strip = cv2.resize(model_image, (width, height), interpolation=cv2.INTER_AREA)
    right = np.full((PANEL_SIZE, CAMERA_STRIP_WIDTH, 3), 24, np.uint8)
    right[top : top + height, :width] = strip
    cv2.putText(
        right,
        "cameras l0 | f0 | r0 | b0 (model input)",
        (8, top - 8),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.55,
        (200, 200, 200),
        1,
        cv2.LINE_AA,
    )
    if caption:
        cv2.putText(
            right, caption, (8, top + height + 30), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2, cv2.LINE_AA
        )
    if front_view is not None and model_image.shape[0] == MODEL_VIEW_HEIGHT:  # four cameras
        view = front_camera_view(model_image, waypoints, front_view)
        right[top + height + 45 : top + height + 45 + view.shape[0], 8 : 8 + view.shape[1]] = view
    if untrained:
        cv2.rectangle(right, (0, PANEL_SIZE - 30), (CAMERA_STRIP_WIDTH - 1, PANEL_SIZE - 1), (200, 0, 0), -1)
        cv2.putText(
            right, UNTRAINED_BANNER, (8, PANEL_SIZE - 9), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2, cv2.LINE_AA
        )
    return np.concatenate((panel, right), axis=1)


def front_camera_view(model_image: np.ndarray, waypoints: np.ndarray, front_view: FrontView) -> np.ndarray:
    """The f0 share of the model input, enlarged by FRONT_VIEW_SCALE, with the plan's ground
    points (ISO 8855 waypoints) drawn where the front camera sees them."""
    front = model_image[:, MODEL_VIEW_WIDTH : 2 * MODEL_VIEW_WIDTH]
    size = (round(MODEL_VIEW_WIDTH * FRONT_VIEW_SCALE), round(MODEL_VIEW_HEIGHT * FRONT_VIEW_SCALE))
    view = np.ascontiguousarray(cv2.resize(front, size, interpolation=cv2.INTER_LINEAR))
    pixels, seen = front_view.project(waypoints)
    points = [tuple(np.round((p + 0.5) * FRONT_VIEW_SCALE - 0.5).astype(int)) for p in pixels[seen]]
    if len(points) > 1:
        cv2.polylines(view, [np.array(points, np.int32)], False, _PATH_COLOUR, 2, cv2.LINE_AA)
    for point in points:
        cv2.circle(view, point, 4, _PATH_COLOUR, -1, cv2.LINE_AA)
    cv2.putText(view, "f0: plan on the ground", (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return view
