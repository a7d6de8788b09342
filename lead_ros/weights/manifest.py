"""State-dict manifests shipped as package data (copied from the LTFv6 reference set)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

VARIANTS = ("navsim", "token256", "mixed")


@dataclass(frozen=True)
class ManifestEntry:
    key: str
    shape: tuple[int, ...]
    dtype: str
    synthetic_sha256: str


@dataclass(frozen=True)
class Manifest:
    variant: str
    entries: tuple[ManifestEntry, ...]
    synthetic_digest: str
    # The TrainingConfig fields LEAD's NAVSIM agent needs in config.json to build this variant
    # (use_navsim_data, use_carla_data, LTF, use_planning_decoder, ...): without them it builds
    # its CARLA configuration and the strict load fails.
    lead_config: dict


@cache
def load_manifest(variant: str) -> Manifest:
    """The ordered key list, shapes and synthetic-tensor digests of one checkpoint variant."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    path = resources.files("lead_ros") / "data" / "manifests" / f"{variant}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    entries = tuple(
        ManifestEntry(e["key"], tuple(e["shape"]), e["dtype"], e["synthetic_sha256"]) for e in data["entries"]
    )
    return Manifest(variant, entries, data["synthetic_state_dict_digest"], dict(data["config_overrides"]))
