"""ONNX Runtime sessions of an ensemble's planning forward, one per input height.

Why ONNX Runtime is the default fp32 CPU runtime (docs/runtimes.md and docs/benchmarks.md have the
figures and the command that made them): it was the fastest of eager PyTorch,
torch.compile, AOTInductor, ONNX Runtime and the old TorchScript trace on the development
CPU; ``InferenceSession.run`` releases the GIL for the whole forward, so the node's
callback threads cannot stall it; a dropped session returns its memory; and it is not
deprecated (torch.jit is).

Graphs are exported once per (weights, height, torch and exporter version) into a cache
directory and reused by every later process; sessions are made from them in about half a
second. At most ``MAX_HEIGHTS`` heights keep sessions; the least recently used is dropped
(and its memory freed) when another height arrives.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnxruntime
import torch

import lead_ros
from lead_ros.camera_layout import MODEL_IMAGE_WIDTH
from lead_ros.model.heap import return_free_heap
from lead_ros.model.ltfv6 import LTFv6, PerceptionHeads
from lead_ros.model.onnx_export import INPUT_NAMES, export_planning_graph
from lead_ros.model.runtimes import MAX_HEIGHTS, WARMUP_HEIGHT, RuntimeRequest

log = logging.getLogger(__name__)

# Each kept height (at most MAX_HEIGHTS) costs ~0.29 GB: ONNX Runtime's own copy of the
# weights, re-laid out for its convolutions, and its activation arena.
CACHE_ENV = "LEAD_ROS_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$LEAD_ROS_CACHE_DIR``, else ``$XDG_CACHE_HOME/lead_ros`` (``~/.cache/lead_ros``)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lead_ros"


def graph_key(weights_sha256: str, height: int, width: int) -> str:
    """What an exported graph depends on: the weights, the input shape, and the versions of
    the exporter and of lead_ros' model code. (The ONNX file holds no CPU-specific code;
    ONNX Runtime optimises for the CPU when it creates the session.) The exporter's version is
    read from its package metadata: importing onnxscript takes a second that a start with a
    cached graph does not need."""
    exporter = importlib.metadata.version("onnxscript")
    parts = (weights_sha256, f"{height}x{width}", torch.__version__, exporter, lead_ros.__version__)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def graph_file(cache_dir: Path, weights_sha256: str, height: int) -> Path:
    """Where the cache keeps the planning graph of these weights at this input height."""
    return cache_dir / "onnx" / f"ltfv6_{graph_key(weights_sha256, height, MODEL_IMAGE_WIDTH)}.onnx"


def session_options(threads: int) -> onnxruntime.SessionOptions:
    """One inference at a time on ``threads`` threads (torch's setting, so evaluate-bag's
    per-job share applies), with no busy-waiting between operators: on a busy robot computer
    spinning threads take CPU from the node's callbacks."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: its warnings are about its own graph rewrites
    return options


def open_session(path: Path) -> onnxruntime.InferenceSession:
    """An ONNX file in ONNX Runtime's CPU provider with ``session_options``."""
    options = session_options(torch.get_num_threads())
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def check_feed(session: onnxruntime.InferenceSession, feed: dict[str, np.ndarray]) -> None:
    """Every graph input present with its exact shape and float32 dtype: one clear line
    instead of ONNX Runtime's node-level message."""
    for spec in session.get_inputs():
        array = feed.get(spec.name)
        if array is None:
            raise ValueError(f"input {spec.name!r} is missing; the graph takes {', '.join(INPUT_NAMES)}")
        if list(array.shape) != list(spec.shape) or array.dtype != np.float32:
            raise ValueError(
                f"input {spec.name!r}: {array.dtype} of shape {list(array.shape)}; the graph expects "
                f"float32 of shape {list(spec.shape)}"
            )


class OnnxPlanning:
    """The planning forward of each ensemble member in ONNX Runtime.

    ``models`` are what graphs are exported from. Once the sessions of the first height
    exist, ``release_models`` lets them go (the sessions hold their own copy of the
    weights); a height whose graph is not cached yet then has the members built again with
    ``load_models``, for that export only."""

    def __init__(
        self,
        models: Sequence[LTFv6],
        weights_sha256: Sequence[str],
        cache_dir: Path | None = None,
        max_heights: int = MAX_HEIGHTS,
        load_models: Callable[[], list[LTFv6]] | None = None,
    ) -> None:
        self._models = list(models)
        self._load_models = load_models
        self._sha256 = list(weights_sha256)
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.max_heights = max_heights
        self._sessions: OrderedDict[int, list[onnxruntime.InferenceSession]] = OrderedDict()

    @property
    def heights(self) -> tuple[int, ...]:
        """Heights with sessions, least recently used first."""
        return tuple(self._sessions)

    def graph_path(self, member: int, height: int) -> Path:
        return graph_file(self.cache_dir, self._sha256[member], height)

    def release_models(self) -> None:
        """Drop the PyTorch models (208 MB per member); needs ``load_models`` for later exports."""
        if self._load_models is None:
            raise ValueError("release_models needs load_models, to export the graphs of other heights")
        self._models.clear()

    def _sessions_for(self, height: int) -> list[onnxruntime.InferenceSession]:
        sessions = self._sessions.get(height)
        if sessions is not None:
            self._sessions.move_to_end(height)
            return sessions
        while len(self._sessions) >= self.max_heights:
            evicted, _ = self._sessions.popitem(last=False)
            log.info(
                "onnxruntime: dropped the sessions of height %d (at most %d heights kept)", evicted, self.max_heights
            )
        models = self._models  # built again below only if a graph must be exported
        sessions = []
        for member, sha256 in enumerate(self._sha256):
            path = self.graph_path(member, height)
            if not path.exists():
                if not models:
                    if self._load_models is None:
                        raise RuntimeError(f"onnxruntime: no models to export the {height}-row graph from")
                    log.info("onnxruntime: loading the weights again to export the %d-row graph", height)
                    models = self._load_models()
                start = time.perf_counter()
                export_planning_graph(models[member], height, MODEL_IMAGE_WIDTH, path, external_data=True)
                log.info(
                    "onnxruntime: exported the %d-row graph of member %d (%s) in %.1f s to %s",
                    height,
                    member,
                    sha256[:12],
                    time.perf_counter() - start,
                    path,
                )
            sessions.append(open_session(path))
        del models
        return_free_heap()  # the parsed model files, models built for an export, dropped sessions
        self._sessions[height] = sessions
        return sessions

    def run(self, inputs: Sequence[torch.Tensor]) -> list[tuple[torch.Tensor, ...]]:
        """Each member's (waypoints, headings, bev_features) for CPU float32 tensors shaped as
        the graph's inputs: (1, 3, H, 1920) contiguous RGB, (1, 1), (1, 1), (1, 4)."""
        feed = {name: tensor.numpy() for name, tensor in zip(INPUT_NAMES, inputs, strict=True)}
        outputs: list[tuple[torch.Tensor, ...]] = []
        for session in self._sessions_for(inputs[0].shape[2]):
            check_feed(session, feed)
            waypoints, headings, bev = session.run(None, feed)
            outputs.append((torch.from_numpy(waypoints), torch.from_numpy(headings), torch.from_numpy(bev)))
        return outputs

    def close(self) -> None:
        """Drop every session (their memory goes back with them) and the models."""
        self._sessions.clear()
        self._models.clear()


class OnnxRuntime(OnnxPlanning):
    """``OnnxPlanning`` as a ``runtimes.Runtime``: made from cached graphs when every member's
    graph at the warm-up height is cached (then no PyTorch trunk is built, only the
    perception heads from the state dict), else from models built to export them; the models
    are dropped once the first sessions exist (``ready``)."""

    channels_last_input = False

    def __init__(self, request: RuntimeRequest) -> None:
        cache = request.cache_dir or default_cache_dir()
        if all(graph_file(cache, sha256, WARMUP_HEIGHT).exists() for sha256 in request.weights_sha256):
            # The graphs these exact files were exported to are cached (the files were checked
            # against the model then): only the heads are built, laid out as the built model's.
            models: list[LTFv6] = []
            heads = PerceptionHeads.from_state_dict(request.state_dicts[0])
            self.perception_heads = heads.to(memory_format=torch.channels_last)
        else:
            models = request.build_models()
            self.perception_heads = PerceptionHeads.of(models[0])
        super().__init__(models, request.weights_sha256, cache, load_models=request.reload_models)

    @property
    def models(self) -> list[LTFv6]:
        return self._models

    def forward(self, inputs: Sequence[torch.Tensor]) -> list[tuple[torch.Tensor, ...]]:
        return self.run(inputs)

    def ready(self) -> None:
        """The sessions hold their own copy of the weights: the PyTorch models (208 MB per
        member) are dropped, all but the perception heads (1 MB). (Freed by reference
        counting: a model holds no reference cycle, so no collection.)"""
        self.release_models()


def create_runtime(request: RuntimeRequest) -> OnnxRuntime:
    return OnnxRuntime(request)
