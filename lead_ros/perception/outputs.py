"""The perception of one frame, as the planner returns it beside the plan.

Everything here is in ISO 8855 ``base_link`` (x forward, y left, yaw counter-clockwise),
converted from LEAD's y-right frame in this one place: boxes y -> -y, yaw -> -yaw; the BEV
grid in the published layout of ``lead_ros.perception.bev``. LEAD's raw arrays are kept
too, for checks against the reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lead_ros.perception.bev import class_pixel_counts, lead_to_published
from lead_ros.perception.boxes import DecodedBoxes, decode_boxes


@dataclass(frozen=True)
class Box:
    """A detected vehicle in ISO 8855 ``base_link``, values exactly as LEAD decodes them:
    half extents may be negative with untrained weights (no abs or clipping here).
    ``velocity`` is the raw velocity head, untrained in a NAVSIM checkpoint. ``grid_row``,
    ``grid_col``: the 64x64 CenterNet cell in LEAD's grid (row 0 = LEAD y -32, the left)."""

    x: float
    y: float
    yaw: float
    half_length: float
    half_width: float
    score: float
    velocity: float
    grid_row: int
    grid_col: int

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Perception:
    """BEV semantics and boxes of one frame (from the first ensemble member)."""

    bev_probabilities: np.ndarray  # (7, 256, 256) float32 softmax, published layout
    bev_labels: np.ndarray  # (256, 256) uint8 argmax of the logits, published layout
    boxes: tuple[Box, ...]  # every positive-score box, by score descending
    bev_logits_lead: np.ndarray  # (7, 256, 256) float32 logits, LEAD's layout
    bev_logits_pre_upsample_lead: np.ndarray  # (7, 64, 64) float32, LEAD's layout
    decoded: DecodedBoxes  # LEAD's own arrays (image and vehicle systems)

    def boxes_above(self, threshold: float) -> tuple[Box, ...]:
        """Boxes with score > ``threshold`` (strict, as LEAD)."""
        return tuple(self.boxes[i] for i in self.decoded.above(threshold))

    def class_pixel_counts(self) -> dict[str, int]:
        return class_pixel_counts(self.bev_labels)


def perceive(logits_pre_upsample: torch.Tensor, logits: torch.Tensor, heads: dict[str, torch.Tensor]) -> Perception:
    """From the auxiliary outputs (batch 1; float32): softmax and argmax of the BEV logits,
    LEAD's box decoding, and the conversion to ISO 8855."""
    logits = logits.float()
    probabilities = torch.softmax(logits, dim=1)[0]
    labels = logits[0].argmax(dim=0).to(torch.uint8)
    decoded = decode_boxes(heads)
    boxes = tuple(
        Box(
            x=float(x),
            y=-float(y),
            yaw=-float(yaw),
            half_length=float(w),
            half_width=float(h),
            score=float(score),
            velocity=float(velocity),
            grid_row=int(row),
            grid_col=int(col),
        )
        for (x, y, w, h, yaw, velocity, _brake, _class, score), (row, col) in zip(
            decoded.vehicle_system.tolist(), decoded.cells.tolist(), strict=True
        )
    )
    lead_logits = logits[0].cpu().numpy()
    return Perception(
        bev_probabilities=np.ascontiguousarray(lead_to_published(probabilities.cpu().numpy())),
        bev_labels=np.ascontiguousarray(lead_to_published(labels.cpu().numpy())),
        boxes=boxes,
        bev_logits_lead=lead_logits,
        bev_logits_pre_upsample_lead=logits_pre_upsample.float()[0].cpu().numpy(),
        decoded=decoded,
    )
