"""Weights sources given by one string: a local path, or ``hf://OWNER/REPO[@REVISION]``.

A hub source is fetched through huggingface_hub into its cache; ``HF_HUB_OFFLINE`` is
honoured at call time, so a cached snapshot loads without any network access.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from lead_ros.weights.errors import WeightsError

HUB_SCHEME = "hf://"
OFFICIAL_REPO = "ln2697/ltfv6-navsim"
OFFICIAL_SOURCE = f"{HUB_SCHEME}{OFFICIAL_REPO}"
# Files a snapshot download fetches: LEAD's layout and single-file exports.
HUB_PATTERNS = ["*.json", "*.pth", "*.safetensors"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HubSource:
    repo_id: str
    revision: str | None

    def __str__(self) -> str:
        return f"{HUB_SCHEME}{self.repo_id}" + (f"@{self.revision}" if self.revision else "")


def parse_source(spec: str) -> Path | HubSource:
    """A local path when it exists, else an ``hf://`` source; anything else is an error."""
    if not spec:
        raise WeightsError("weights source is empty; give a local path or hf://OWNER/REPO[@REVISION]")
    if spec.startswith(HUB_SCHEME):
        repo, _, revision = spec[len(HUB_SCHEME) :].partition("@")
        repo = repo or OFFICIAL_REPO
        if repo.count("/") != 1 or not all(repo.split("/")):
            raise WeightsError(f"weights source {spec!r}: expected hf://OWNER/REPO[@REVISION]")
        return HubSource(repo, revision or None)
    path = Path(spec).expanduser()
    if not path.exists():
        raise WeightsError(f"weights source {spec!r} is neither an existing path nor an hf://OWNER/REPO source")
    return path


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def fetch_hub_snapshot(source: HubSource, cache_dir: str | None = None) -> Path:
    """Download (or find in the cache) a hub snapshot and return its local directory."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    if source.revision is None:
        log.warning("weights %s: revision not pinned; pin one with @REVISION for reproducible runs", source)
    offline = _hub_offline()
    try:
        path = snapshot_download(
            source.repo_id,
            revision=source.revision,
            cache_dir=cache_dir,
            allow_patterns=HUB_PATTERNS,
            local_files_only=offline,
        )
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as error:
        where = cache_dir or "the default Hugging Face cache"
        mode = (
            "HF_HUB_OFFLINE is set, so only the cache was searched"
            if offline
            else ("the Hub could not be reached and the cache has no copy")
        )
        raise WeightsError(
            f"could not get weights {source} (revision {source.revision or 'main'}) from {where}: "
            f"{mode} ({type(error).__name__}: {str(error).splitlines()[0]})"
        ) from error
    return Path(path)
