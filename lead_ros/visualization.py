"""Pictures of a plan: the model input with a bird's-eye panel of the planned path (and,
offline, the logged future of the drive beside it).

Used by the node's ~/debug/image and the bag evaluation's contact sheet and video. The
bird's-eye panel is in ISO 8855 (x forward = up, y left = left), metres, with the ego
vehicle at the bottom centre. No camera calibration is assumed, so the path is not
projected into the camera images.
"""

from __future__ import annotations

import cv2
import numpy as np

PANEL_RANGE_M = (-4.0, 44.0)  # forward extent shown in the bird's-eye panel
UNTRAINED_BANNER = "UNTRAINED SYNTHETIC WEIGHTS - NOT A DRIVING POLICY"
_PATH_COLOUR = (255, 64, 32)
_EGO_COLOUR = (40, 200, 40)
_LOGGED_COLOUR = (60, 220, 255)


def birds_eye_panel(
    waypoints: np.ndarray, headings: np.ndarray, size: int, logged: np.ndarray | None = None
) -> np.ndarray:
    """A size x size RGB panel of ISO 8855 waypoints (metres) and headings (radians); with
    ``logged`` (the logged future's waypoints), those too, and a legend."""
    panel = np.full((size, size, 3), 30, np.uint8)
    lo, hi = PANEL_RANGE_M
    scale = size / (hi - lo)

    def to_px(x: float, y: float) -> tuple[int, int]:
        return round(size / 2 - y * scale), round(size - (x - lo) * scale)

    for metres in range(0, int(hi) + 1, 10):
        row = to_px(metres, 0)[1]
        cv2.line(panel, (0, row), (size - 1, row), (70, 70, 70), 1)
        cv2.putText(panel, f"{metres} m", (4, row - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (150, 150, 150), 1)
    ego = np.array([[2.4, 0.0], [-1.0, 1.0], [-1.0, -1.0]])
    cv2.fillPoly(panel, [np.array([to_px(x, y) for x, y in ego], np.int32)], _EGO_COLOUR)
    if logged is not None:
        truth = [to_px(0.0, 0.0)] + [to_px(x, y) for x, y in logged]
        cv2.polylines(panel, [np.array(truth, np.int32)], False, _LOGGED_COLOUR, 2, cv2.LINE_AA)
        for point in truth[1:]:
            cv2.drawMarker(panel, point, _LOGGED_COLOUR, cv2.MARKER_SQUARE, 6, 1, cv2.LINE_AA)
        for row, (label, colour) in enumerate((("plan", _PATH_COLOUR), ("logged", _LOGGED_COLOUR))):
            y = size - 12 - 16 * (1 - row)
            cv2.line(panel, (size - 82, y - 4), (size - 62, y - 4), colour, 2, cv2.LINE_AA)
            cv2.putText(panel, label, (size - 56, y), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1, cv2.LINE_AA)
    points = [to_px(0.0, 0.0)] + [to_px(x, y) for x, y in waypoints]
    cv2.polylines(panel, [np.array(points, np.int32)], False, _PATH_COLOUR, 2, cv2.LINE_AA)
    for (x, y), heading in zip(waypoints, headings, strict=True):
        tip = to_px(x + 1.5 * np.cos(heading), y + 1.5 * np.sin(heading))
        cv2.arrowedLine(panel, to_px(x, y), tip, (255, 220, 80), 1, cv2.LINE_AA, tipLength=0.4)
        cv2.circle(panel, to_px(x, y), 3, _PATH_COLOUR, -1, cv2.LINE_AA)
    return panel


def render_plan(
    model_image: np.ndarray,
    waypoints: np.ndarray,
    headings: np.ndarray,
    caption: str = "",
    untrained: bool = False,
    logged: np.ndarray | None = None,
) -> np.ndarray:
    """The (H, 1920) RGB model input with the bird's-eye panel (H x H) on its right."""
    height = model_image.shape[0]
    canvas = np.concatenate((model_image, birds_eye_panel(waypoints, headings, height, logged)), axis=1)
    if caption:
        cv2.putText(canvas, caption, (8, height - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2, cv2.LINE_AA)
    if untrained:
        cv2.rectangle(canvas, (0, 0), (canvas.shape[1] - 1, 26), (200, 0, 0), -1)
        cv2.putText(canvas, UNTRAINED_BANNER, (8, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2, cv2.LINE_AA)
    return canvas
