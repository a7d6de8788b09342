"""Synthetic LTFv6 weights, recipe ``ltfv6-synthetic-v1`` (reference README).

Every tensor is a deterministic function of its key and shape, so anyone can regenerate the
weights the golden cases were computed with. The result is verified tensor by tensor
against the manifest's sha256 before it is written.
"""

from __future__ import annotations

import hashlib
import json
import math
import zlib
from pathlib import Path

import torch

from lead_ros.model.config import LTFv6Config
from lead_ros.weights.manifest import Manifest, ManifestEntry, load_manifest

RECIPE = "ltfv6-synthetic-v1"
_DTYPES = {"float32": torch.float32, "int64": torch.int64}
_VARIANT_CONFIGS = {
    "navsim": LTFv6Config(),
    "token256": LTFv6Config(token_dim=256),
    "mixed": LTFv6Config(mixed_data_training=True),
}


def tensor_sha256(tensor: torch.Tensor) -> str:
    """sha256 of the little-endian C-order raw bytes (the manifest's definition)."""
    return hashlib.sha256(tensor.contiguous().numpy().tobytes()).hexdigest()


def synthetic_tensor(entry: ManifestEntry) -> torch.Tensor:
    dtype = _DTYPES[entry.dtype]
    if not dtype.is_floating_point:
        return torch.zeros(entry.shape, dtype=dtype)
    generator = torch.Generator().manual_seed(zlib.crc32(entry.key.encode("utf-8")))
    r = torch.randn(entry.shape, generator=generator, dtype=torch.float32)
    last = entry.key.rsplit(".", 1)[-1]
    if last == "running_mean" or last == "pos_emb":
        return r * 0.1
    if last == "running_var":
        return 1.0 + 0.1 * r.abs()
    if last in ("query", "status_pos_embedding"):
        return r * 1.0
    if len(entry.shape) <= 1:
        return 1.0 + 0.1 * r if last.endswith("weight") else 0.1 * r
    return r * (1.0 / math.sqrt(math.prod(entry.shape[1:])))


def synthetic_state_dict(manifest: Manifest) -> dict[str, torch.Tensor]:
    """Generate and verify every tensor; raises if this torch draws different numbers."""
    state = {}
    digest = hashlib.sha256()
    for entry in manifest.entries:
        tensor = synthetic_tensor(entry)
        found = tensor_sha256(tensor)
        if found != entry.synthetic_sha256:
            raise RuntimeError(
                f"synthetic tensor {entry.key} has sha256 {found}, manifest says "
                f"{entry.synthetic_sha256}: this torch build draws different random numbers"
            )
        digest.update(entry.key.encode("utf-8") + bytes.fromhex(found))
        state[entry.key] = tensor
    if digest.hexdigest() != manifest.synthetic_digest:
        raise RuntimeError(f"synthetic state-dict digest mismatch for variant {manifest.variant}")
    return state


def write_synthetic_checkpoint(out_dir: Path, variant: str = "navsim") -> Path:
    """Write ``config.json`` + ``model_0000.pth`` in LEAD's checkpoint layout, loadable by LEAD's
    NAVSIM agent: the config carries the variant's TrainingConfig flags (the manifest's)."""
    manifest = load_manifest(variant)
    state = synthetic_state_dict(manifest)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = {
        **manifest.lead_config,
        **_VARIANT_CONFIGS[variant].to_config_json(),
        "synthetic": True,
        "recipe": RECIPE,
        "variant": variant,
        "state_dict_digest": manifest.synthetic_digest,
    }
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    weights = out_dir / "model_0000.pth"
    torch.save(state, weights)
    return weights
