"""TransFuser's GPT fusion block: self-attention over joint image and BEV tokens."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

IMAGE_TOKEN_GRID = (8, 60)
BEV_TOKEN_GRID = (8, 8)
NUM_TOKENS = IMAGE_TOKEN_GRID[0] * IMAGE_TOKEN_GRID[1] + BEV_TOKEN_GRID[0] * BEV_TOKEN_GRID[1]


class SelfAttention(nn.Module):
    """Multi-head self-attention with separate key/query/value projections (LEAD's layout)."""

    def __init__(self, width: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        # Registration order equals LEAD's state-dict order: key, query, value, proj.
        self.key = nn.Linear(width, width)
        self.query = nn.Linear(width, width)
        self.value = nn.Linear(width, width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, width = x.shape
        shape = (batch, tokens, self.num_heads, width // self.num_heads)
        q = self.query(x).view(shape).transpose(1, 2)
        k = self.key(x).view(shape).transpose(1, 2)
        v = self.value(x).view(shape).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.proj(y.transpose(1, 2).reshape(batch, tokens, width))


class Block(nn.Module):
    """Pre-norm transformer block with a ReLU MLP."""

    def __init__(self, width: int, num_heads: int, expansion: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(width)
        self.ln2 = nn.LayerNorm(width)
        self.attn = SelfAttention(width, num_heads)
        self.mlp = nn.Sequential(
            nn.Linear(width, expansion * width),
            nn.ReLU(),
            nn.Linear(expansion * width, width),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """Joint attention over 8x60 image tokens followed by 8x8 BEV tokens.

    Returns both token sets reshaped back to feature maps, image ``(B, C, 8, 60)`` and
    BEV ``(B, C, 8, 8)``.
    """

    def __init__(self, width: int, num_layers: int = 2, num_heads: int = 4, expansion: int = 4):
        super().__init__()
        self.pos_emb = nn.Parameter(torch.zeros(1, NUM_TOKENS, width))
        self.blocks = nn.ModuleList(Block(width, num_heads, expansion) for _ in range(num_layers))
        self.ln_f = nn.LayerNorm(width)

    def forward(self, image_tokens: torch.Tensor, bev_tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, width = image_tokens.shape[:2]
        x = torch.cat((image_tokens.flatten(2).transpose(1, 2), bev_tokens.flatten(2).transpose(1, 2)), dim=1)
        x = x + self.pos_emb
        for block in self.blocks:
            x = block(x)
        x = self.ln_f(x)
        num_image = IMAGE_TOKEN_GRID[0] * IMAGE_TOKEN_GRID[1]
        image_out = x[:, :num_image].transpose(1, 2).reshape(batch, width, *IMAGE_TOKEN_GRID)
        bev_out = x[:, num_image:].transpose(1, 2).reshape(batch, width, *BEV_TOKEN_GRID)
        return image_out, bev_out
