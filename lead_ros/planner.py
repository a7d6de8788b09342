"""The ``Planner``: weights + device + precision in, ``plan(observation) -> Plan`` out.

Shared by the ROS node, the bag tools, the CLI and the benchmark so that they all run the
same preprocessing, inference and frame conversion.
"""

from __future__ import annotations

import gc
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from lead_ros.camera_layout import MODEL_IMAGE_WIDTH
from lead_ros.cameras.reprojection import Reprojection
from lead_ros.frames import carla_to_iso8855
from lead_ros.model import LTFv6Config
from lead_ros.model.aux_heads import CENTERNET_OUTPUTS
from lead_ros.model.heap import return_free_heap
from lead_ros.model.inference import optimize_for_inference
from lead_ros.model.ltfv6 import LTFv6
from lead_ros.model.runtimes import MAX_HEIGHTS, WARMUP_HEIGHT, Runtime, RuntimeRequest, choose_runtime
from lead_ros.node_config import NodeConfig
from lead_ros.observation import Observation, Plan, PlanTimings
from lead_ros.perception.outputs import Perception, perceive
from lead_ros.preprocessing import prepare_stitched, stitch_cameras
from lead_ros.weights.loader import Checkpoint, build_models, load_checkpoint

log = logging.getLogger(__name__)

PRECISIONS = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
# Re-exported: the bound on kept heights is the runtimes' (their per-height state) and the
# planner's (input buffers) alike.
__all__ = ["MAX_HEIGHTS", "Planner", "PlannerConfigError", "resolve_runtime"]


def _inference_models(checkpoint: Checkpoint) -> list[LTFv6]:
    """A checkpoint's ensemble, built and rewritten for inference (on the CPU)."""
    return [optimize_for_inference(m) for m in build_models(checkpoint)]


def _reload_inference_models(
    weights: str, ensemble_size: int, cache_dir: str | None, sha256: tuple[str, ...]
) -> list[LTFv6]:
    """The same files again (their sha256 checked), built for inference: what a runtime that
    dropped its models uses later, possibly in a child process (a module-level function, so
    that its partial pickles)."""
    again = load_checkpoint(weights, ensemble_size=ensemble_size, cache_dir=cache_dir, expected_sha256=sha256)
    return _inference_models(again)


class PlannerConfigError(ValueError):
    """A device or precision the planner cannot run with."""


def resolve_device(device: str) -> torch.device:
    """``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device != "cpu" and not (device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit())):
        raise PlannerConfigError(f"device {device!r}: expected auto, cpu, cuda or cuda:N")
    resolved = torch.device(device)
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise PlannerConfigError(f"device {device!r}: CUDA is not available on this machine; use cpu or auto")
        if (resolved.index or 0) >= torch.cuda.device_count():
            raise PlannerConfigError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s)")
    return resolved


def resolve_runtime(runtime: str, device: torch.device, autocast: torch.dtype | None) -> str:
    """The registered runtime (``lead_ros.model.runtimes``) that ``runtime`` means for a device
    and precision; ``auto`` is the first that runs them (see the registry). An impossible choice
    is refused in one line."""
    precision = next(name for name, dtype in PRECISIONS.items() if dtype == autocast)
    try:
        return choose_runtime(runtime, device.type, precision).name
    except ValueError as error:
        raise PlannerConfigError(str(error)) from None


def check_precision(precision: str, device: torch.device) -> torch.dtype | None:
    if precision not in PRECISIONS:
        raise PlannerConfigError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type == "cpu":
        raise PlannerConfigError("precision fp16 is not supported on CPU; use fp32 (exact) or bf16")
    return PRECISIONS[precision]


@dataclass
class _HeightState:
    """The input buffer of one height: (1, 3, H, 1920) float on the device (channels-last or
    contiguous, as the runtime wants it), plus pinned and device uint8 staging on CUDA."""

    input: torch.Tensor
    staging: torch.Tensor | None
    device_u8: torch.Tensor | None

    @classmethod
    def allocate(cls, height: int, device: torch.device, channels_last: bool) -> _HeightState:
        shape = (height, MODEL_IMAGE_WIDTH, 3)
        target = torch.empty((1, 3, height, MODEL_IMAGE_WIDTH), device=device)
        if channels_last:
            target = target.contiguous(memory_format=torch.channels_last)
        if device.type != "cuda":
            return cls(target, None, None)
        staging = torch.empty(shape, dtype=torch.uint8, pin_memory=True)
        return cls(target, staging, torch.empty(shape, dtype=torch.uint8, device=device))


@dataclass(frozen=True)
class PlannerInfo:
    """What was loaded, for logs, diagnostics and CLI output."""

    weights: str
    weights_sha256: tuple[str, ...]
    device: str
    precision: str
    runtime: str
    untrained: bool
    config: LTFv6Config
    ensemble_size: int


class Planner:
    """LTFv6 inference with NAVSIM preprocessing and ISO 8855 output."""

    def __init__(
        self,
        weights: str,
        device: str = "auto",
        precision: str = "fp32",
        *,
        runtime: str = "auto",
        runtime_cache_dir: str | None = None,
        jpeg_roundtrip: bool = True,
        ensemble_size: int | None = None,
        cache_dir: str | None = None,
        expected_sha256: Sequence[str] = (),
    ) -> None:
        self.device = resolve_device(device)
        self._autocast = check_precision(precision, self.device)
        runtime = resolve_runtime(runtime, self.device, self._autocast)
        self.jpeg_roundtrip = jpeg_roundtrip
        checkpoint = load_checkpoint(
            weights, ensemble_size=ensemble_size, cache_dir=cache_dir, expected_sha256=expected_sha256
        )
        sha256 = tuple(f.sha256 for f in checkpoint.files)
        self.info = PlannerInfo(
            weights=checkpoint.source,
            weights_sha256=sha256,
            device=str(self.device),
            precision=precision,
            runtime=runtime,
            untrained=checkpoint.untrained,
            config=checkpoint.config,
            ensemble_size=len(sha256),
        )

        request = RuntimeRequest(
            checkpoint.state_dicts,
            sha256,
            self.device,
            self._autocast,
            Path(runtime_cache_dir) if runtime_cache_dir else None,
            partial(_inference_models, checkpoint),
            partial(_reload_inference_models, weights, len(sha256), cache_dir, sha256),
        )
        self.runtime: Runtime | None = choose_runtime(runtime, self.device.type, precision).create(request)
        # The checkpoint's state dicts (one model's worth of memory per member) were copied
        # into the runtime's models: dropped before the warm-up builds its state, not after.
        del request, checkpoint
        self._cuda = self.device.type == "cuda"
        self.closed = False
        self._heights: OrderedDict[int, _HeightState] = OrderedDict()  # least recently used first
        self._speed = torch.zeros(1, 1, device=self.device)
        self._acceleration = torch.zeros(1, 1, device=self.device)
        self._command = torch.zeros(1, 4, device=self.device)
        self.infer(np.zeros((WARMUP_HEIGHT, MODEL_IMAGE_WIDTH, 3), np.uint8), 0.0, 0.0, 3)
        self.runtime.ready()  # after the warm-up: e.g. models whose weights the runtime copied
        return_free_heap()
        log.info(
            "planner ready: weights %s (sha256 %s), device %s, precision %s, runtime %s%s",
            self.info.weights,
            ", ".join(s[:12] for s in self.info.weights_sha256),
            self.info.device,
            precision,
            runtime,
            ", UNTRAINED synthetic weights" if self.info.untrained else "",
        )

    @classmethod
    def from_config(
        cls,
        config: NodeConfig,
        weights: str | None = None,
        device: str | None = None,
        precision: str | None = None,
        runtime: str | None = None,
    ) -> Planner:
        """The planner a node configuration describes (node and bag tools alike)."""
        return cls(
            weights or config.weights,
            device or config.device,
            precision or config.precision,
            runtime=runtime or config.runtime,
            runtime_cache_dir=config.runtime_cache_dir or None,
            jpeg_roundtrip=config.jpeg_roundtrip,
            ensemble_size=config.ensemble_size or None,
            cache_dir=config.hf_cache_dir or None,
            expected_sha256=config.expected_sha256_list,
        )

    def preprocess(self, observation: Observation, reprojection: Reprojection | None = None) -> np.ndarray:
        """The (H, 1920, 3) uint8 RGB model input for an observation; cameras are reprojected
        into nuPlan's when a ``reprojection`` (a camera rig) is given."""
        if observation.cameras is not None:
            return stitch_cameras(observation.cameras, observation.encoding, self.jpeg_roundtrip, reprojection)
        if observation.image is None:
            raise ValueError("observation: neither cameras nor a stitched image")
        return prepare_stitched(observation.image, observation.encoding)

    def _height_state(self, height: int) -> _HeightState:
        """The input buffer of a height. Buffers (and the runtime's state of a height) are kept for
        at most ``MAX_HEIGHTS`` heights, least recently used dropped first, so a stream whose
        height keeps changing cannot grow memory without bound."""
        state = self._heights.get(height)
        if state is None:
            while len(self._heights) >= MAX_HEIGHTS:
                self._heights.popitem(last=False)
            state = _HeightState.allocate(height, self.device, channels_last=self._runtime.channels_last_input)
            self._heights[height] = state
        self._heights.move_to_end(height)
        return state

    def _input_tensor(self, image: np.ndarray, state: _HeightState) -> torch.Tensor:
        """Copy the image into the height's (1, 3, H, 1920) float buffer on the device."""
        source = torch.from_numpy(image)
        if state.staging is not None and state.device_u8 is not None:  # CUDA
            # Pinned host buffer -> device buffer, both reused: no per-frame allocation, and
            # the copy overlaps with host work until the result is read back.
            state.staging.copy_(source)
            source = state.device_u8.copy_(state.staging, non_blocking=True)
        state.input[0].copy_(source.permute(2, 0, 1))
        return state.input

    def infer(
        self, image: np.ndarray, speed_mps: float, acceleration_mps2: float, command: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Raw model output (CARLA frame), averaged over the ensemble: (8, 2), (8,)."""
        waypoints, headings, _ = self.infer_with_perception(image, speed_mps, acceleration_mps2, command, False)
        return waypoints, headings

    @torch.inference_mode()
    def infer_with_perception(
        self, image: np.ndarray, speed_mps: float, acceleration_mps2: float, command: int, perception: bool = True
    ) -> tuple[np.ndarray, np.ndarray, Perception | None]:
        """``infer``, plus (when ``perception``) the first member's perception of the image."""
        if self.closed:
            raise RuntimeError("this planner was closed; create a new one")
        state = self._height_state(image.shape[0])
        rgb = self._input_tensor(image, state)
        self._speed.fill_(speed_mps)
        self._acceleration.fill_(acceleration_mps2)
        self._command.zero_()[0, int(command)] = 1.0
        outputs = self._forward(rgb)
        joined = [torch.cat((waypoints, headings.unsqueeze(-1)), dim=-1) for waypoints, headings, _ in outputs]
        total = joined[0]
        for member in joined[1:]:
            total = total + member
        # One device-to-host copy per frame: the only synchronisation point (perception,
        # when asked for, adds the copies of its own results).
        result = (total / self.info.ensemble_size)[0].double().cpu().numpy()
        return result[:, :2], result[:, 2], self._perceive(outputs[0][2]) if perception else None

    def _forward(self, rgb: torch.Tensor) -> list[tuple[torch.Tensor, ...]]:
        """Each ensemble member's (waypoints, headings, bev_features)."""
        return self._runtime.forward((rgb, self._speed, self._acceleration, self._command))

    @property
    def _runtime(self) -> Runtime:
        """The runtime of a planner that is not closed."""
        if self.runtime is None:
            raise RuntimeError("this planner was closed; create a new one")
        return self.runtime

    @property
    def models(self) -> list[LTFv6]:
        """The PyTorch models the runtime holds (none for a runtime that runs without them)."""
        return self.runtime.models if self.runtime is not None else []

    def _perceive(self, bev_features: torch.Tensor) -> Perception:
        """The auxiliary heads on the first member's BEV features, always in float32 (LEAD
        runs its output heads in float32 under autocast too), eagerly: about 4 % of a forward."""
        aux = self._runtime.perception_heads(bev_features.float())
        heads = {name: aux[f"centernet_{name}_head"] for name in CENTERNET_OUTPUTS}
        return perceive(aux["bev_semantic_logits_pre_upsample"], aux["bev_semantic_logits"], heads)

    @property
    def heights(self) -> tuple[int, ...]:
        """Input heights with kept buffers (and sessions), least recently used first."""
        return tuple(self._heights)

    def __enter__(self) -> Planner:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Release everything this planner holds (models, sessions, buffers), leaving other
        planners in the process alone. The planner cannot be used afterwards."""
        if self.runtime is not None:
            self.runtime.close()
        self.runtime = None
        self._heights.clear()
        self.closed = True
        gc.collect()
        if self._cuda:
            torch.cuda.empty_cache()
        return_free_heap()

    def plan(
        self, observation: Observation, perception: bool = False, reprojection: Reprojection | None = None
    ) -> Plan:
        """Preprocess, infer, convert to ISO 8855; timings in milliseconds. ``perception``
        also runs the auxiliary heads (about 4 % of the forward) and returns what the model
        perceived in ``Plan.perception``; ``reprojection`` is the camera rig's, if any."""
        t0 = time.perf_counter()
        image = self.preprocess(observation, reprojection)
        t1 = time.perf_counter()
        waypoints_carla, headings_carla, perceived = self.infer_with_perception(
            image, observation.speed_mps, observation.acceleration_mps2, observation.command, perception
        )
        t2 = time.perf_counter()
        waypoints, headings = carla_to_iso8855(waypoints_carla, headings_carla)
        t3 = time.perf_counter()
        return Plan(
            waypoints=waypoints,
            headings=headings,
            waypoints_carla=waypoints_carla,
            headings_carla=headings_carla,
            timings=PlanTimings(1e3 * (t1 - t0), 1e3 * (t2 - t1), 1e3 * (t3 - t2)),
            model_image=image,
            perception=perceived,
        )
