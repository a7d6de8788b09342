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

import ctypes
import hashlib
import importlib.metadata
import json
import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
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
PR_SET_PDEATHSIG = 1  # prctl option, <linux/prctl.h>


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


DIGEST_SUFFIX = ".sha256"  # beside a graph: the sha256 of the graph and of its weights file


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _graph_files(graph: Path) -> tuple[Path, Path, Path]:
    """A cached graph's files: the graph, its weights beside it, their digests."""
    return graph, graph.with_name(f"{graph.name}.data"), graph.with_name(f"{graph.name}{DIGEST_SUFFIX}")


def record_digest(graph: Path) -> None:
    """Write the digests of a graph just exported (whole, or not at all: temporary, rename)."""
    graph, data, digest = _graph_files(graph)
    record = {"graph": _sha256(graph), "data": _sha256(data) if data.exists() else None}
    staging = digest.with_name(f".{digest.name}.partial")
    staging.write_text(json.dumps(record) + "\n")
    os.replace(staging, digest)


def graph_problem(graph: Path) -> str | None:
    """Why a cached graph cannot be trusted (a truncated or flipped file, a digest missing or
    unreadable), or None: a damaged weights file of the same size would load and plan wrong."""
    graph, data, digest = _graph_files(graph)
    try:
        record = json.loads(digest.read_text())
        if record.get("graph") != _sha256(graph):
            return "the graph differs from its digest"
        if record.get("data") != (_sha256(data) if data.exists() else None):
            return "its weights file differs from its digest"
    except FileNotFoundError as error:
        return f"{Path(error.filename).name} is missing"
    except (OSError, ValueError, AttributeError) as error:
        return f"its digest cannot be read ({type(error).__name__})"
    return None


def remove_graph(graph: Path) -> None:
    for path in _graph_files(graph):
        path.unlink(missing_ok=True)


def _export_member(load_models: Callable[[], list[LTFv6]], member: int, height: int, path: str) -> None:
    """In a spawned child: build the members from the weights files and export one graph. Its
    memory goes back to the system with the child; the child dies with the thread that
    started it (PR_SET_PDEATHSIG), so no exporter outlives a node that leaves."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux
        pass
    export_planning_graph(load_models()[member], height, MODEL_IMAGE_WIDTH, Path(path), external_data=True)


class OnnxPlanning:
    """The planning forward of each ensemble member in ONNX Runtime.

    ``models`` are what graphs are exported from. Once the sessions of the first height
    exist, ``release_models`` lets them go (the sessions hold their own copy of the
    weights); a height whose graph is not cached yet is then exported in a spawned child
    process, which builds the members with ``load_models`` (picklable: a module-level function
    or a partial of one), so the planner's process does not grow with every new height.

    Every graph is kept with the digests of its files and checked when its session is made: a
    damaged one is removed and exported again (one warning naming it). A cache directory
    that cannot be written gives way to a private temporary one, removed on ``close``."""

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
        self._private_cache: Path | None = None  # when the cache cannot be written
        self._cache_checked = False

    @property
    def heights(self) -> tuple[int, ...]:
        """Heights with sessions, least recently used first."""
        return tuple(self._sessions)

    def graph_path(self, member: int, height: int) -> Path:
        return graph_file(self.cache_dir, self._sha256[member], height)

    def release_models(self) -> None:
        """Drop the PyTorch models (208 MB per member); needs ``load_models`` for later exports
        (in a child process)."""
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
        sessions = [self._session(member, height) for member in range(len(self._sha256))]
        return_free_heap()  # the parsed model files, dropped sessions
        self._sessions[height] = sessions
        return sessions

    def _session(self, member: int, height: int) -> onnxruntime.InferenceSession:
        """The session of a member's graph at a height: from the cache when its files match
        their digests, else exported (again)."""
        path = self.graph_path(member, height)
        if path.exists():
            problem = graph_problem(path)
            if problem is None:
                try:
                    return open_session(path)
                except Exception as error:  # onnxruntime's InvalidProtobuf, Fail, ...: say so, export again
                    problem = f"ONNX Runtime cannot load it ({type(error).__name__})"
            log.warning("onnxruntime: the cached graph %s is damaged (%s): removed, exporting it again", path, problem)
            remove_graph(path)
        path = self._export(member, height)
        return open_session(path)

    def _export(self, member: int, height: int) -> Path:
        """Export a member's graph into the cache (checked writable first) and record its
        digests: in this process while it holds the models (its first height), else in a
        spawned child."""
        self._ensure_writable_cache()
        path = self.graph_path(member, height)
        start = time.perf_counter()
        if self._models:
            export_planning_graph(self._models[member], height, MODEL_IMAGE_WIDTH, path, external_data=True)
            where = "here"
        elif self._load_models is not None:
            child = multiprocessing.get_context("spawn").Process(  # a fork would copy the planner's memory and locks
                target=_export_member, args=(self._load_models, member, height, str(path)), daemon=True
            )
            child.start()
            child.join()
            if child.exitcode != 0:
                raise RuntimeError(
                    f"onnxruntime: exporting the {height}-row graph failed (exporter exit {child.exitcode})"
                )
            where = f"in a child process ({child.pid})"
        else:
            raise RuntimeError(f"onnxruntime: no models to export the {height}-row graph from")
        record_digest(path)
        log.info(
            "onnxruntime: exported the %d-row graph of member %d (%s) %s in %.1f s to %s",
            height,
            member,
            self._sha256[member][:12],
            where,
            time.perf_counter() - start,
            path,
        )
        return path

    def _ensure_writable_cache(self) -> None:
        """Before the first export: a cache that cannot be written (read-only HOME or
        directory, a path under a regular file) is replaced by a private temporary directory
        for this planner, with one warning, instead of failing after the export."""
        if self._cache_checked:
            return
        self._cache_checked = True
        folder = self.cache_dir / "onnx"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".writable."):
                pass
        except OSError as error:
            self._private_cache = Path(tempfile.mkdtemp(prefix="lead_ros_graphs_"))
            log.warning(
                "onnxruntime: the graph cache %s cannot be written (%s); graphs go to %s for this process and are "
                "removed with it: set runtime_cache_dir or %s to a writable directory to keep them",
                self.cache_dir,
                error.strerror or type(error).__name__,
                self._private_cache,
                CACHE_ENV,
            )
            self.cache_dir = self._private_cache

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
        """Drop every session (their memory goes back with them) and the models, and a
        private cache directory."""
        self._sessions.clear()
        self._models.clear()
        if self._private_cache is not None:
            shutil.rmtree(self._private_cache, ignore_errors=True)


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
