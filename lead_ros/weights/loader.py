"""Turn a weights source into validated LTFv6 state dicts.

The architecture comes from the checkpoint: ``config.json`` when the directory has one
(LEAD's layout), otherwise the tensor shapes. Keys planning does not need may be dropped
only when they belong to known auxiliary heads; anything else that is missing, unexpected
or misshapen is an error naming the first offending keys.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import re
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from lead_ros.model import LTFv6, LTFv6Config
from lead_ros.weights.errors import WeightsError
from lead_ros.weights.source import HubSource, fetch_hub_snapshot, parse_source

log = logging.getLogger(__name__)

WRAPPER_PREFIXES = ("module.", "_orig_mod.")
# Heads a mixed CARLA+NAVSIM run adds; planning never reads them (variants/README.md).
CARLA_AUX_PREFIXES = ("semantic_decoder.", "bev_semantic_decoder.", "center_net_decoder.")
QUERY_KEY = "planning_decoder.query"
STATUS_KEY = "planning_decoder.planning_context_encoder.status_pos_embedding"
LAYER_PREFIX = "planning_decoder.transformer_decoder.layers."
WEIGHT_SUFFIXES = (".pth", ".pt", ".safetensors")
# Floating-point file dtypes converted to the model's float32 on load (with an info line).
CONVERTED_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float64)
_SHOWN = 5


@dataclass(frozen=True)
class WeightsFile:
    path: Path
    sha256: str


@dataclass(frozen=True)
class Checkpoint:
    """Everything needed to build the model(s): one state dict per ensemble member."""

    source: str
    config: LTFv6Config
    state_dicts: tuple[dict[str, torch.Tensor], ...]
    files: tuple[WeightsFile, ...]
    untrained: bool
    ignored_keys: tuple[str, ...] = ()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _load_failure_reason(error: Exception) -> str:
    """The reason in a load error, as one line. torch's weights-only refusal wraps it in advice
    to turn the safety off (not for our users); the reason is its ``WeightsUnpickler error``
    line or the paragraph that gives no such advice."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip()
    if (unpickler := re.search(r"WeightsUnpickler error: ([^\n]*)", text)) is not None:
        return unpickler.group(1).strip()
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]
    if text.startswith("Weights only load failed"):
        advice = ("weights_only", "Weights only load failed")
        paragraphs = [p for p in paragraphs if not any(a in p for a in advice)] or ["refused by the safe loader"]
    return paragraphs[0] if paragraphs else type(error).__name__


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a ``.pth`` (weights_only) or ``.safetensors`` file holding a plain state dict."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            with warnings.catch_warnings():  # torch's advice to drop weights_only is not for our users
                warnings.simplefilter("ignore")
                state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load parses untrusted bytes: any failure means "not a checkpoint"
        reason = _load_failure_reason(error)
        if isinstance(error, pickle.UnpicklingError) and (named := re.search(r"GLOBAL ([\w.]+)", reason)):
            raise WeightsError(
                f"weights file {path} is not a plain tensor checkpoint: it refers to Python objects "
                f"({named.group(1)}) that a safe load refuses; nothing in it was executed"
            ) from error
        raise WeightsError(
            f"weights file {path} could not be read: it is not a checkpoint (a truncated or corrupted file, "
            f"or not a plain tensor state dict) ({type(error).__name__}: {reason[:300]})"
        ) from error
    if not isinstance(state, Mapping) or not state:
        raise WeightsError(f"weights file {path} holds a {type(state).__name__}, not a state dict")
    not_tensors = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise WeightsError(
            f"weights file {path} is not a plain state dict: entries {not_tensors[:_SHOWN]} are "
            f"not tensors (a training checkpoint? save model.state_dict() instead)"
        )
    return dict(state)


def strip_wrapper_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove ``module.`` (DDP) and ``_orig_mod.`` (torch.compile) prefixes, nested too."""
    changed = True
    while changed:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if state and all(k.startswith(prefix) for k in state):
                state = {k[len(prefix) :]: v for k, v in state.items()}
                changed = True
    return state


def describe(state: Mapping[str, torch.Tensor]) -> str:
    """A one-line picture of a state dict, for error messages."""
    prefixes = Counter(k.split(".", 1)[0] for k in state)
    top = ", ".join(f"{p}.* ({n})" for p, n in prefixes.most_common(6))
    return f"{len(state)} tensors; top-level prefixes: {top}; first keys: {list(state)[:3]}"


def infer_config(state: Mapping[str, torch.Tensor]) -> LTFv6Config:
    """Architecture from tensor shapes (the head count is not stored: LEAD's 8 is kept)."""
    if QUERY_KEY not in state:
        raise WeightsError(f"not an LTFv6 checkpoint: it has no {QUERY_KEY}. It holds {describe(state)}")
    query = state[QUERY_KEY].shape
    if len(query) != 3 or query[1] != 8:
        raise WeightsError(f"{QUERY_KEY} has shape {tuple(query)}; expected (1, 8, D) for 8 waypoints")
    if STATUS_KEY in state and state[STATUS_KEY].shape[1] != 3:
        raise WeightsError(
            f"{STATUS_KEY} has shape {tuple(state[STATUS_KEY].shape)}; expected (1, 3, D): "
            "speed, acceleration and command (a CARLA-leaderboard configuration is not supported)"
        )
    layers = {int(k[len(LAYER_PREFIX) :].split(".")[0]) for k in state if k.startswith(LAYER_PREFIX)}
    ffn_key = f"{LAYER_PREFIX}0.linear1.weight"
    return LTFv6Config(
        token_dim=int(query[2]),
        num_decoder_layers=max(layers) + 1 if layers else 6,
        decoder_ffn_dim=int(state[ffn_key].shape[0]) if ffn_key in state else 2048,
        mixed_data_training=any(k.startswith(CARLA_AUX_PREFIXES) for k in state),
    )


def check_dtypes(state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor], origin: str) -> None:
    """Each tensor must be of the dtype class of what it fills: floating point for weights
    (float16/bfloat16/float64 are converted to float32, logged once), integer for integer
    buffers (LEAD's ``num_batches_tracked``). Anything else (int8 or bool weights, a float
    counter) would be copied in silently by ``load_state_dict``: refused, naming the first."""
    converted: Counter[str] = Counter()
    for key, target in expected.items():
        dtype = state[key].dtype
        if target.dtype.is_floating_point:
            if dtype in CONVERTED_FLOAT_DTYPES:
                converted[str(dtype).removeprefix("torch.")] += 1
            elif dtype != target.dtype:
                raise WeightsError(
                    f"{origin}: tensor {key} has dtype {str(dtype).removeprefix('torch.')}; expected floating point "
                    "(float32, or float16/bfloat16/float64, converted)"
                )
        elif dtype.is_floating_point or dtype.is_complex or dtype == torch.bool:
            raise WeightsError(
                f"{origin}: tensor {key} has dtype {str(dtype).removeprefix('torch.')}; expected an integer "
                f"({str(target.dtype).removeprefix('torch.')})"
            )
    if converted:
        counts = ", ".join(f"{n} {name}" for name, n in sorted(converted.items()))
        log.info("%s: converting %s tensors to float32", origin, counts)


def check_against_model(state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor], origin: str) -> None:
    """Raise with the first missing, unexpected and misshapen keys, if any; then check dtypes."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k}: expected {tuple(v.shape)}, found {tuple(state[k].shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or wrong:
        parts = [f"{origin} does not match the LTFv6 architecture"]
        if missing:
            parts.append(f"{len(missing)} missing keys, first: {missing[:_SHOWN]}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys, first: {unexpected[:_SHOWN]}")
        if wrong:
            parts.append(f"{len(wrong)} shape mismatches, first: {wrong[:_SHOWN]}")
        parts.append(f"the file holds {describe(state)}")
        raise WeightsError("; ".join(parts))
    check_dtypes(state, expected, origin)


def _config_json(directory: Path) -> dict | None:
    path = directory / "config.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise WeightsError(f"{path} is not valid JSON: {error}") from error


def _directory_files(directory: Path) -> list[Path]:
    """LEAD's ``model*.pth`` files, else ``model*.safetensors``/any single weights file."""
    files = sorted(directory.glob("model*.pth")) or sorted(directory.glob("model*.safetensors"))
    if not files:
        files = sorted(p for p in directory.iterdir() if p.suffix in WEIGHT_SUFFIXES)
    if not files:
        listing = sorted(p.name for p in directory.iterdir())
        raise WeightsError(
            f"{directory} matches no known checkpoint layout (config.json + model*.pth, or a "
            f".pth/.safetensors file); it holds: {listing[:20]}"
        )
    return files


def load_checkpoint(
    spec: str,
    *,
    ensemble_size: int | None = None,
    cache_dir: str | None = None,
    expected_sha256: Sequence[str] = (),
) -> Checkpoint:
    """Resolve, read, hash and validate a weights source.

    Args:
        spec: local file or directory, or ``hf://OWNER/REPO[@REVISION]``.
        ensemble_size: how many ``model*.pth`` of a directory to use (default: all).
        cache_dir: Hugging Face cache directory for hub sources.
        expected_sha256: when given, every loaded file's sha256 must be among these.
    """
    source = parse_source(spec)
    root = fetch_hub_snapshot(source, cache_dir) if isinstance(source, HubSource) else source
    config_json = _config_json(root) if root.is_dir() else None
    files = _directory_files(root) if root.is_dir() else [root]
    if ensemble_size is not None:
        if ensemble_size < 1 or ensemble_size > len(files):
            raise WeightsError(
                f"ensemble_size {ensemble_size} is out of range: {spec} has {len(files)} weights "
                f"files ({[f.name for f in files]})"
            )
        files = files[:ensemble_size]

    states, hashed, ignored = [], [], set()
    config = None
    for path in files:
        sha = file_sha256(path)
        log.info("weights file %s sha256 %s", path, sha)
        if expected_sha256 and sha not in expected_sha256:
            raise WeightsError(f"weights file {path} has sha256 {sha}, not one of the expected {list(expected_sha256)}")
        state = strip_wrapper_prefixes(read_state_dict(path))
        inferred = infer_config(state)
        if config_json is not None:
            declared = LTFv6Config.from_config_json(config_json)
            if declared.token_dim != inferred.token_dim:
                raise WeightsError(
                    f"{root / 'config.json'} declares token dim {declared.token_dim} but {path.name} "
                    f"has {QUERY_KEY} of shape {tuple(state[QUERY_KEY].shape)}"
                )
            inferred = declared
        if config is not None and inferred != config:
            raise WeightsError(f"ensemble member {path.name} has architecture {inferred}, others {config}")
        config = inferred
        dropped = [k for k in state if k.startswith(CARLA_AUX_PREFIXES)]
        ignored.update(dropped)
        states.append({k: v for k, v in state.items() if k not in dropped})
        hashed.append(WeightsFile(path, sha))
    if ignored:
        log.info("ignoring %d auxiliary CARLA-head tensors planning does not use", len(ignored))
    untrained = bool(config_json and config_json.get("synthetic"))
    return Checkpoint(str(source), config, tuple(states), tuple(hashed), untrained, tuple(sorted(ignored)))


def build_models(checkpoint: Checkpoint) -> list[LTFv6]:
    """One eval-mode model per ensemble member, loaded strictly, on the CPU."""
    models = []
    for state, file in zip(checkpoint.state_dicts, checkpoint.files, strict=True):
        model = LTFv6(checkpoint.config)
        check_against_model(state, model.state_dict(), f"weights file {file.path}")
        model.load_state_dict(state, strict=True)
        models.append(model.eval().requires_grad_(False))
    return models
