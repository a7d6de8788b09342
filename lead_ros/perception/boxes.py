"""LEAD's CenterNet box decoding for the NAVSIM head (SPEC_AUX §3), step for step in torch
float32, so that the discrete decisions (local maxima, top-k order, yaw bins) are LEAD's.

Differences from LEAD, on purpose: no result is an empty array, not an exception (LEAD's
reshape of an empty array raises), and every box keeps its 64x64 grid cell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

MAX_POOL_KERNEL = 3  # center_net_max_pooling_kernel
TOP_K = 100  # top_k_center_keypoints
NUM_YAW_BINS = 12  # num_dir_bins
PIXELS_PER_METER = 4.0  # LEAD's factor from grid cells to the BEV image (SPEC_AUX §4.4)
MIN_X_M = MIN_Y_M = -32.0
DEFAULT_SCORE_THRESHOLD = 0.3  # bb_confidence_threshold, strict >
GRID = 64
# Columns of LEAD's box arrays.
COLUMNS = ("x", "y", "w", "h", "yaw", "velocity", "brake", "class", "score")


@dataclass(frozen=True)
class DecodedBoxes:
    """LEAD's decoded boxes with positive score, in rank (score) order.

    ``image_system``: (N, 9) float32, LEAD's image system (BEV pixels), columns ``COLUMNS``;
    ``vehicle_system``: (N, 9) float32, metres in LEAD's frame (x forward, y right);
    ``cells``: (N, 2) int64 (grid_row, grid_col) of the 64x64 CenterNet grid (LEAD's rows).
    """

    image_system: np.ndarray
    vehicle_system: np.ndarray
    cells: np.ndarray

    def above(self, threshold: float) -> np.ndarray:
        """Indices of the boxes with score > ``threshold`` (LEAD's strict comparison)."""
        return np.flatnonzero(self.vehicle_system[:, 8] > np.float32(threshold))


@torch.inference_mode()
def decode_boxes(heads: dict[str, torch.Tensor]) -> DecodedBoxes:
    """Decode raw CenterNet head outputs (each (1, C, 64, 64)) into boxes, as LEAD does.

    The heatmap sigmoid is taken in float32 whatever the heads' dtype (LEAD casts first);
    only the positive-score top-k rows are returned (the zero-score tail depends on torch's
    tie order and is never a box).
    """
    heads = {name: value.float() for name, value in heads.items()}
    scores = torch.sigmoid(heads["heatmap"])
    pooled = F.max_pool2d(scores, MAX_POOL_KERNEL, stride=1, padding=MAX_POOL_KERNEL // 2)
    peaks = torch.where(pooled == scores, scores, torch.zeros_like(scores))
    values, indices = torch.topk(peaks.reshape(1, -1), TOP_K)
    values, indices = values[0], indices[0]
    keep = values > 0
    values, indices = values[keep], indices[keep]
    within = indices % (GRID * GRID)
    rows, cols = within // GRID, within % GRID
    classes = (indices // (GRID * GRID)).float()

    def at(name: str, channel: int) -> torch.Tensor:
        return heads[name][0, channel, rows, cols]

    yaw_bins = heads["yaw_class"][0, :, rows, cols].argmax(dim=0)  # first index on ties
    yaw = yaw_bins.float() * (2 * math.pi / NUM_YAW_BINS) + at("yaw_res", 0)
    yaw = torch.where(yaw > math.pi, yaw - 2 * math.pi, yaw)  # wrapped once, above pi only
    x_cell, y_cell = cols.float() + at("offset", 0), rows.float() + at("offset", 1)
    image = torch.stack(
        (x_cell, y_cell, at("wh", 0), at("wh", 1), yaw, at("velocity", 0), torch.zeros_like(yaw), classes, values),
        dim=1,
    )
    image[:, :4] = image[:, :4] * PIXELS_PER_METER
    vehicle = image.clone()
    vehicle[:, :4] = vehicle[:, :4] / PIXELS_PER_METER
    vehicle[:, 0] = vehicle[:, 0] + MIN_X_M
    vehicle[:, 1] = vehicle[:, 1] + MIN_Y_M
    cells = torch.stack((rows, cols), dim=1)
    return DecodedBoxes(image.cpu().numpy(), vehicle.cpu().numpy(), cells.cpu().numpy())
