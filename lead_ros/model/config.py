"""Architecture settings of an LTFv6 checkpoint.

Only what changes tensor shapes or the forward pass lives here. The values come from a
checkpoint's ``config.json`` (LEAD's layout) or are inferred from state-dict shapes; the
decoder head count is the one setting shapes cannot reveal (SPEC §9.2), so it defaults to
LEAD's 8.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

# LEAD's TrainingConfig field names, as they appear in a checkpoint's config.json.
_CONFIG_JSON_FIELDS = {
    "token_dim": "transfuser_token_dim",
    "num_decoder_heads": "transfuser_num_bev_cross_attention_heads",
    "mixed_data_training": "use_carla_data",
}


@dataclass(frozen=True)
class LTFv6Config:
    """Shape-relevant configuration of the NAVSIM LTFv6 model."""

    token_dim: int = 64
    num_decoder_heads: int = 8
    num_decoder_layers: int = 6
    decoder_ffn_dim: int = 2048
    num_waypoints: int = 8
    num_status_tokens: int = 3
    # A mixed CARLA+NAVSIM run adds CARLA auxiliary heads that planning never reads.
    mixed_data_training: bool = False

    def __post_init__(self) -> None:
        if self.token_dim <= 0 or self.token_dim % self.num_decoder_heads:
            raise ValueError(
                f"token_dim {self.token_dim} must be a positive multiple of num_decoder_heads {self.num_decoder_heads}"
            )
        if self.token_dim % 4:
            raise ValueError(f"token_dim {self.token_dim} must be a multiple of 4 (sine embedding)")

    @classmethod
    def from_config_json(cls, data: dict) -> LTFv6Config:
        """Read LEAD's ``config.json``; fields it lacks keep their NAVSIM defaults."""
        kwargs = {}
        for ours, theirs in _CONFIG_JSON_FIELDS.items():
            if theirs in data:
                kwargs[ours] = type(getattr(cls(), ours))(data[theirs])
        return cls(**kwargs)

    def to_config_json(self) -> dict:
        """The fields ``from_config_json`` reads, under LEAD's names."""
        values = asdict(self)
        return {theirs: values[ours] for ours, theirs in _CONFIG_JSON_FIELDS.items()}
