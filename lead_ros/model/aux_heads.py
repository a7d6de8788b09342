"""Auxiliary NAVSIM heads (BEV semantics, CenterNet boxes), LEAD's trained perception.

Planning never reads them; they run only when perception is asked for
(``Planner.plan(..., perception=True)``), from the BEV features the planning forward returns.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lead_ros.model.backbone import LTF_GRID_SIZE

BEV_FEATURE_CHANNELS = 64
NUM_BEV_SEMANTIC_CLASSES = 7
CENTERNET_OUTPUTS = {
    "heatmap": 1,
    "wh": 2,
    "offset": 2,
    "yaw_class": 12,
    "yaw_res": 1,
    "velocity": 1,
}


class BEVSemanticDecoder(nn.Module):
    """7-class BEV semantic logits at 256x256."""

    def __init__(self) -> None:
        super().__init__()
        c = BEV_FEATURE_CHANNELS
        self.net = nn.Sequential(
            nn.Conv2d(c, c, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(c, NUM_BEV_SEMANTIC_CLASSES, 1, bias=False),
        )

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        return self.upsample(self.net(grid))

    @staticmethod
    def upsample(logits: torch.Tensor) -> torch.Tensor:
        """64x64 logits -> 256x256 (bilinear, align_corners False, as LEAD)."""
        size = (LTF_GRID_SIZE, LTF_GRID_SIZE)
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


class CenterNetDecoder(nn.Module):
    """Six 3x3+1x1 conv heads on the 64x64 BEV grid; returns raw head outputs by name."""

    def __init__(self) -> None:
        super().__init__()
        c = BEV_FEATURE_CHANNELS
        for name, out in CENTERNET_OUTPUTS.items():
            head = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, out, 1))
            self.add_module(f"{name}_head", head)

    def forward(self, grid: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: getattr(self, f"{name}_head")(grid) for name in CENTERNET_OUTPUTS}
