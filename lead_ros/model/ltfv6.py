"""The LTFv6 network (NAVSIM configuration). Module names equal LEAD's state-dict keys."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lead_ros.model.aux_heads import BEVSemanticDecoder, CenterNetDecoder
from lead_ros.model.backbone import LTF_GRID_SIZE, TOP_DOWN_CONVS, TransfuserBackbone, top_down_convs
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
        """Auxiliary outputs from the BEV features (run in float32 by the caller): see
        ``PerceptionHeads``."""
        return PerceptionHeads.of(self)(bev_features)


class PerceptionHeads(nn.Module):
    """The auxiliary (perception) part of an LTFv6: the backbone's top-down BEV decoder
    (``backbone.c5_conv``, ``up_conv5``, ``up_conv4``), the BEV semantic decoder and CenterNet,
    about 1 MB of the model's 208. A runtime that plans without the PyTorch trunk (ONNX
    Runtime) keeps this alone: ``of`` shares a built model's modules, ``from_state_dict``
    builds them from a checkpoint without the trunk. Not a submodule of ``LTFv6``: the
    model's state dict keeps LEAD's keys."""

    # Model state-dict prefix -> this module's.
    STATE_PREFIXES = {f"backbone.{name}.": f"{name}." for name in TOP_DOWN_CONVS} | {
        "bev_semantic_decoder_navsim.": "semantic.",
        "center_net_decoder_navsim.": "centernet.",
    }

    def __init__(self, convs: dict[str, nn.Conv2d], semantic: BEVSemanticDecoder, centernet: CenterNetDecoder) -> None:
        super().__init__()
        self.c5_conv, self.up_conv5, self.up_conv4 = convs["c5_conv"], convs["up_conv5"], convs["up_conv4"]
        self.semantic, self.centernet = semantic, centernet

    @classmethod
    def of(cls, model: LTFv6) -> PerceptionHeads:
        """The heads of ``model`` (its modules, shared)."""
        backbone = model.backbone
        convs = {name: getattr(backbone, name) for name in TOP_DOWN_CONVS}
        return cls(convs, model.bev_semantic_decoder_navsim, model.center_net_decoder_navsim)

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor]) -> PerceptionHeads:
        """Eval-mode heads loaded strictly from an LTFv6 state dict (LEAD's keys)."""
        heads = cls(top_down_convs(), BEVSemanticDecoder(), CenterNetDecoder())
        own = {
            new + key[len(old) :]: value
            for key, value in state.items()
            for old, new in cls.STATE_PREFIXES.items()
            if key.startswith(old)
        }
        heads.load_state_dict(own, strict=True)
        return heads.eval().requires_grad_(False)

    def top_down(self, bev_features: torch.Tensor) -> torch.Tensor:
        """(B, 512, 8, 8) fused BEV features -> the (B, 64, 64, 64) grid of the heads."""
        p5 = F.relu(self.c5_conv(bev_features))
        p4 = F.relu(self.up_conv5(F.interpolate(p5, scale_factor=2, mode="bilinear", align_corners=False)))
        size = (LTF_GRID_SIZE // 4, LTF_GRID_SIZE // 4)
        return F.relu(self.up_conv4(F.interpolate(p4, size=size, mode="bilinear", align_corners=False)))

    def forward(self, bev_features: torch.Tensor) -> dict[str, torch.Tensor]:
        """The 64x64 grid, the semantic logits before and after the upsampling, the CenterNet
        heads."""
        grid = self.top_down(bev_features)
        pre_upsample = self.semantic.net(grid)
        outputs = {
            "bev_feature_grid": grid,
            "bev_semantic_logits_pre_upsample": pre_upsample,
            "bev_semantic_logits": self.semantic.upsample(pre_upsample),
        }
        outputs.update({f"centernet_{k}_head": v for k, v in self.centernet(grid).items()})
        return outputs
