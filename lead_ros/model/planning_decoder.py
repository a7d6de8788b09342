"""LTFv6 planning decoder: BEV + ego-status tokens, a post-norm transformer decoder over 8
learned queries, and cumulative waypoint/heading heads (SPEC §4.6-4.9)."""

from __future__ import annotations

import math

import torch
from torch import nn

from lead_ros.model.config import LTFv6Config
from lead_ros.model.fusion import BEV_TOKEN_GRID

MAX_SPEED_MPS = 15.0
MAX_ACCELERATION_MPS2 = 4.0
NUM_COMMANDS = 4
BEV_CHANNELS = 512


def sine_position_embedding(dim: int, height: int, width: int) -> torch.Tensor:
    """DETR-style normalised 2D sine embedding, interleaved sin/cos, (1, dim, h, w), float32.

    Channels ``[0, dim/2)`` encode the row, ``[dim/2, dim)`` the column. LEAD computes it in
    float32 whatever the model dtype, and so do we.
    """
    feats = dim // 2
    eps, scale, temperature = 1e-6, 2 * math.pi, 10000.0
    rows = torch.arange(1, height + 1, dtype=torch.float32).view(height, 1).expand(height, width)
    cols = torch.arange(1, width + 1, dtype=torch.float32).view(1, width).expand(height, width)
    rows = rows / (height + eps) * scale
    cols = cols / (width + eps) * scale
    dim_t = torch.arange(feats, dtype=torch.float32)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / feats)

    def encode(pos: torch.Tensor) -> torch.Tensor:
        angles = pos[..., None] / dim_t
        return torch.stack((angles[..., 0::2].sin(), angles[..., 1::2].cos()), dim=3).flatten(2)

    return torch.cat((encode(rows), encode(cols)), dim=2).permute(2, 0, 1).unsqueeze(0)


class PlanningContextEncoder(nn.Module):
    """Builds the decoder memory: 64 BEV tokens then [speed, acceleration, command]."""

    def __init__(self, config: LTFv6Config) -> None:
        super().__init__()
        dim = config.token_dim
        self.status_pos_embedding = nn.Parameter(torch.zeros(1, config.num_status_tokens, dim))
        self.velocity_encoder = nn.Sequential(nn.Linear(1, dim))
        self.acceleration_encoder = nn.Sequential(nn.Linear(1, dim))
        self.command_encoder = nn.Sequential(nn.Linear(NUM_COMMANDS, dim))
        self.dimension_adapter = nn.Conv2d(BEV_CHANNELS, dim, 1)
        self.register_buffer("bev_pos_embedding", sine_position_embedding(dim, *BEV_TOKEN_GRID), persistent=False)

    def forward(
        self,
        bev_features: torch.Tensor,
        speed: torch.Tensor,
        acceleration: torch.Tensor,
        command: torch.Tensor,
    ) -> torch.Tensor:
        bev = self.dimension_adapter(bev_features) + self.bev_pos_embedding
        bev_tokens = bev.flatten(2).transpose(1, 2)
        status = torch.stack(
            (
                self.velocity_encoder(speed / MAX_SPEED_MPS),
                self.acceleration_encoder(acceleration / MAX_ACCELERATION_MPS2),
                self.command_encoder(command),
            ),
            dim=1,
        )
        return torch.cat((bev_tokens, status + self.status_pos_embedding), dim=1)


class PlanningDecoder(nn.Module):
    """Decodes the queries against the context; heads run in float32 (see ``heads``)."""

    def __init__(self, config: LTFv6Config) -> None:
        super().__init__()
        dim = config.token_dim
        self.query = nn.Parameter(torch.zeros(1, config.num_waypoints, dim))
        self.planning_context_encoder = PlanningContextEncoder(config)
        # LEAD passes activation=nn.GELU(), but nn.TransformerDecoder's deepcopy replaces it
        # with F.relu (SPEC §4.8): the checkpoint was trained with ReLU, so ReLU it is.
        layer = nn.TransformerDecoderLayer(
            dim,
            config.num_decoder_heads,
            dim_feedforward=config.decoder_ffn_dim,
            activation="relu",
            batch_first=True,
            norm_first=False,
        )
        self.transformer_decoder = nn.TransformerDecoder(layer, config.num_decoder_layers, norm=nn.LayerNorm(dim))
        self.wp_decoder = nn.Linear(dim, 2)
        self.heading_decoder = nn.Linear(dim, 1)

    def decode(
        self,
        bev_features: torch.Tensor,
        speed: torch.Tensor,
        acceleration: torch.Tensor,
        command: torch.Tensor,
    ) -> torch.Tensor:
        """Decoder output after the final LayerNorm, (B, 8, D)."""
        memory = self.planning_context_encoder(bev_features, speed, acceleration, command)
        query = self.query.expand(bev_features.shape[0], -1, -1)
        return self.transformer_decoder(query, memory)

    def heads(self, decoded: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cumulative waypoints (B, 8, 2) and headings (B, 8), CARLA frame."""
        waypoints = torch.cumsum(self.wp_decoder(decoded), dim=1)
        headings = torch.cumsum(self.heading_decoder(decoded).squeeze(-1), dim=1)
        return waypoints, headings
