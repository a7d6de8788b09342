"""The LTFv6 network (NAVSIM configuration). Module names equal LEAD's state-dict keys."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch import nn

from lead_ros.model.aux_heads import BEVSemanticDecoder, CenterNetDecoder
from lead_ros.model.backbone import TransfuserBackbone
from lead_ros.model.config import LTFv6Config
from lead_ros.model.planning_decoder import PlanningDecoder


@dataclass(frozen=True)
class PlanningOutput:
    """Raw model output in CARLA's frame (x forward, y right; heading positive clockwise)."""

    waypoints: torch.Tensor  # (B, 8, 2) metres
    headings: torch.Tensor  # (B, 8) radians
    bev_features: torch.Tensor  # (B, 512, 8, 8) fused BEV features: the auxiliary heads' input


class LTFv6(nn.Module):
    """Latent TransFuser v6. ``forward`` runs the planning path only."""

    def __init__(self, config: LTFv6Config | None = None) -> None:
        super().__init__()
        self.config = config or LTFv6Config()
        self.backbone = TransfuserBackbone()
        self.bev_semantic_decoder_navsim = BEVSemanticDecoder()
        self.center_net_decoder_navsim = CenterNetDecoder()
        self.planning_decoder = PlanningDecoder(self.config)

    def forward(
        self,
        rgb: torch.Tensor,
        speed: torch.Tensor,
        acceleration: torch.Tensor,
        command: torch.Tensor,
        autocast_dtype: torch.dtype | None = None,
    ) -> PlanningOutput:
        """Plan from raw inputs.

        Args:
            rgb: (B, 3, H, 1920) float RGB in 0..255 (not normalised).
            speed: (B, 1) m/s. acceleration: (B, 1) m/s². command: (B, 4) one-hot
                [left, straight, right, unknown].
            autocast_dtype: run trunk and decoder under autocast in this dtype; the output
                heads always run in float32, as LEAD does.
        """
        device_type = rgb.device.type
        autocast = torch.autocast(device_type, dtype=autocast_dtype) if autocast_dtype else nullcontext()
        with autocast:
            bev = self.backbone(rgb)
            decoded = self.planning_decoder.decode(bev, speed, acceleration, command)
        waypoints, headings = self.planning_decoder.heads(decoded.float())
        return PlanningOutput(waypoints=waypoints, headings=headings, bev_features=bev)

    def auxiliary(self, bev_features: torch.Tensor) -> dict[str, torch.Tensor]:
        """Auxiliary outputs from the BEV features (run in float32 by the caller): the 64x64
        grid, the semantic logits before and after the upsampling, the CenterNet heads."""
        grid = self.backbone.top_down(bev_features)
        semantic = self.bev_semantic_decoder_navsim
        pre_upsample = semantic.net(grid)
        outputs = {"bev_feature_grid": grid, "bev_semantic_logits_pre_upsample": pre_upsample,
                   "bev_semantic_logits": semantic.upsample(pre_upsample)}  # fmt: skip
        outputs.update({f"centernet_{k}_head": v for k, v in self.center_net_decoder_navsim(grid).items()})
        return outputs
