"""Latent TransFuser backbone: an image ResNet-34 and a "LiDAR" ResNet-34 fed with a
constant coordinate grid, fused after every stage by a GPT (SPEC §4.1-4.5)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lead_ros.model.fusion import BEV_TOKEN_GRID, GPT, IMAGE_TOKEN_GRID

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LTF_GRID_SIZE = 256
STAGE_WIDTHS = (64, 128, 256, 512)
_STAGES = (("maxpool", "layer1"), ("layer2",), ("layer3",), ("layer4",))
TOP_DOWN_CONVS = ("up_conv5", "up_conv4", "c5_conv")


# timm's feature-extracting ResNet (FeatureListNet): its stages are attributes set by name,
# which a type checker cannot follow.
Encoder = Any


def _resnet34(in_chans: int) -> Encoder:
    # Imported here: timm brings torchvision and torch._dynamo (2.5 s), which a planner that
    # runs a cached ONNX graph never needs. pretrained=False: never touches the network.
    import timm

    return timm.create_model("resnet34", pretrained=False, features_only=True, in_chans=in_chans)


def top_down_convs() -> dict[str, nn.Conv2d]:
    """The top-down BEV decoder that feeds the auxiliary heads, by LEAD's attribute names
    (``TOP_DOWN_CONVS``; the backbone holds them, for checkpoint compatibility)."""
    convs = (nn.Conv2d(64, 64, 3, padding=1), nn.Conv2d(64, 64, 3, padding=1), nn.Conv2d(512, 64, 1))
    return dict(zip(TOP_DOWN_CONVS, convs, strict=True))


def _ltf_grid() -> torch.Tensor:
    """Channel 0 = row / 255, channel 1 = column / 255, as LEAD's linspace(0, 1, 256)."""
    ramp = torch.linspace(0.0, 1.0, LTF_GRID_SIZE)
    rows = ramp.view(-1, 1).expand(LTF_GRID_SIZE, LTF_GRID_SIZE)
    cols = ramp.view(1, -1).expand(LTF_GRID_SIZE, LTF_GRID_SIZE)
    return torch.stack((rows, cols)).unsqueeze(0).contiguous()


def _stem(encoder: Encoder, x: torch.Tensor) -> torch.Tensor:
    return encoder.act1(encoder.bn1(encoder.conv1(x)))


def _stage(encoder: Encoder, index: int, x: torch.Tensor) -> torch.Tensor:
    for name in _STAGES[index]:
        x = getattr(encoder, name)(x)
    return x


class TransfuserBackbone(nn.Module):
    """Returns the fused BEV feature map ``(B, 512, 8, 8)`` that the planner reads."""

    # Buffers (register_buffer), declared for the type checker.
    ltf_grid: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.image_encoder = _resnet34(in_chans=3)
        self.lidar_encoder = _resnet34(in_chans=2)
        self.lidar_channel_to_img = nn.ModuleList(nn.Conv2d(c, c, 1) for c in STAGE_WIDTHS)
        self.img_channel_to_lidar = nn.ModuleList(nn.Conv2d(c, c, 1) for c in STAGE_WIDTHS)
        self.transformers = nn.ModuleList(GPT(c) for c in STAGE_WIDTHS)
        for name, conv in top_down_convs().items():
            self.add_module(name, conv)
        self.register_buffer("ltf_grid", _ltf_grid(), persistent=False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        # The LTF stem and stage 0 see only the constant grid; their output is cached per
        # (device, autocast dtype) and dropped whenever weights are loaded.
        self._ltf_stage0_cache: dict[tuple, torch.Tensor] = {}
        self.register_load_state_dict_post_hook(lambda module, _: module.clear_cache())

    def clear_cache(self) -> None:
        """Forget cached LTF features (after the weights changed)."""
        self._ltf_stage0_cache.clear()

    def normalize(self, rgb: torch.Tensor) -> torch.Tensor:
        """Raw 0..255 RGB to ImageNet-normalised input."""
        return (rgb / 255.0 - self.mean) / self.std

    def ltf_stage0(self, batch: int) -> torch.Tensor:
        """Stage-0 features of the LTF branch (input independent, cached in eval mode)."""
        if self.training:
            return _stage(self.lidar_encoder, 0, _stem(self.lidar_encoder, self.ltf_grid)).expand(batch, -1, -1, -1)
        device = self.ltf_grid.device
        autocast = torch.is_autocast_enabled(device.type)
        key = (device, torch.get_autocast_dtype(device.type) if autocast else None)
        cached = self._ltf_stage0_cache.get(key)
        if cached is None:
            cached = _stage(self.lidar_encoder, 0, _stem(self.lidar_encoder, self.ltf_grid))
            self._ltf_stage0_cache[key] = cached
        return cached.expand(batch, -1, -1, -1)

    def fuse(
        self, index: int, image: torch.Tensor, bev: torch.Tensor, update_image: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fusion block ``index``: pool to tokens, GPT, upsample and add back (SPEC §4.4)."""
        image_tokens = F.adaptive_avg_pool2d(image, IMAGE_TOKEN_GRID)
        bev_tokens = self.lidar_channel_to_img[index](F.adaptive_avg_pool2d(bev, BEV_TOKEN_GRID))
        image_out, bev_out = self.transformers[index](image_tokens, bev_tokens)
        bev_out = self.img_channel_to_lidar[index](bev_out)
        bev = bev + F.interpolate(bev_out, size=bev.shape[2:], mode="bilinear", align_corners=False)
        if update_image:
            image = image + F.interpolate(image_out, size=image.shape[2:], mode="bilinear", align_corners=False)
        return image, bev

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        image = _stem(self.image_encoder, self.normalize(rgb))
        bev = self.ltf_stage0(rgb.shape[0])
        last = len(STAGE_WIDTHS) - 1
        for index in range(len(STAGE_WIDTHS)):
            image = _stage(self.image_encoder, index, image)
            if index:
                bev = _stage(self.lidar_encoder, index, bev)
            # The fused image features of the last stage are not used by the planner.
            image, bev = self.fuse(index, image, bev, update_image=index < last)
        return bev
